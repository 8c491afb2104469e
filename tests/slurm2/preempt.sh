#!/usr/bin/env bash
# Preemption across both nodes: a high-priority --exclusive job preempts
# a 2-node job of the low partition (PreemptMode=REQUEUE, the partitions
# of examples/slurm.conf.d/), which is requeued and runs again, its second
# run with SLURM_RESTART_COUNT=1, soon after the high job ends (the bed's
# credentials expire in 10 s, not 121).
. "$(dirname "$0")/lib.sh"

cd "$T"
count_script "$T/count.sh"
id=$(submit -N2 -p low -o "$T/low.out" --open-mode=append "$T/count.sh")
wait_for 30 "job $id to run" state_is "$id" RUNNING
wait_for 10 "job $id to count" grep -qs '^count 2$' "$T/low.out"
[ "$(field "$id" NodeList)" = "ckn[1-2]" ] || fail "job $id runs on $(field "$id" NodeList)"

t0=$(date +%s)
high=$(submit -N1 -p high --exclusive -o "$T/high.out" --wrap='hostname; sleep 3')
wait_for 60 "job $high to run" state_is "$high" RUNNING
echo "job $high ran $(($(date +%s) - t0)) s after its submission, on $(field "$high" NodeList)"
wait_for 30 "job $id to be requeued" restarts_is "$id" 1
wait_for 30 "job $high to end" state_is "$high" COMPLETED
release "$id"
wait_for 60 "job $id to run again" grep -qs '^start of run 1 ' "$T/low.out"
echo "job $id ran again $(($(date +%s) - t0)) s after the preemption"
state_is "$id" RUNNING || fail "job $id: $(field "$id" JobState)"
[ "$(lines '^start of run' "$T/low.out")" = 2 ] || fail "job $id: $(grep 'start of run' "$T/low.out")"
scancel "$id"
echo "ok: job $id preempted by $high on both nodes, requeued, second run with SLURM_RESTART_COUNT=1"
