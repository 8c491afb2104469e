#!/usr/bin/env bash
# Preemption across both nodes: a high-priority --exclusive job preempts
# a 2-node job of the low partition (PreemptMode=REQUEUE, the partitions
# of examples/slurm.conf.d/), which is requeued and runs again, its second
# run with SLURM_RESTART_COUNT=1, soon after the high job ends (the bed's
# credentials expire in 10 s, not 121).  The job leaves as a --checkpoint
# job's wrapper does after its vacate: at the preemption signal
# (--signal=B:USR1, sent at once by preempt_send_user_signal) it requeues
# itself, so that the high job starts within seconds, not at the end of
# the GraceTime (slurmctld enforces that only every 30 s).
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
count_script "$T/count.sh"
sed -i '2i trap '\''echo "USR1 at $(date +%s)"; scontrol requeue $SLURM_JOB_ID'\'' USR1' "$T/count.sh"
id=$(submit -N2 -p low --signal=B:USR1@5 -o "$T/low.out" --open-mode=append "$T/count.sh")
wait_for 30 "job $id to run" state_is "$id" RUNNING
wait_for 10 "job $id to count" grep -qs '^count 2$' "$T/low.out"
[ "$(field "$id" NodeList)" = "ckn[1-2]" ] || fail "job $id runs on $(field "$id" NodeList)"

t0=$(date +%s)
high=$(submit -N1 -w ckn1 -p high --exclusive -o "$T/high.out" --wrap='hostname; sleep 3')
wait_for 60 "job $high to run" state_is "$high" RUNNING
waited=$(($(date +%s) - t0))
echo "job $high ran $waited s after its submission, on $(field "$high" NodeList)"
[ $waited -le 10 ] || fail "job $high waited $waited s for the nodes of job $id"
wait_for 30 "job $id to be requeued" restarts_is "$id" 1
wait_for 30 "job $high to end" state_is "$high" COMPLETED
release "$id"
wait_for 60 "job $id to run again" grep -qs '^start of run 1 ' "$T/low.out"
echo "job $id ran again $(($(date +%s) - t0)) s after the preemption"
state_is "$id" RUNNING || fail "job $id: $(field "$id" JobState)"
[ "$(lines '^start of run' "$T/low.out")" = 2 ] || fail "job $id: $(grep 'start of run' "$T/low.out")"
grep -q "^USR1 at" "$T/low.out" || fail "job $id: no preemption signal: $(head -n 3 "$T/low.out")"
scancel "$id"
echo "ok: job $id preempted by $high on both nodes, requeued, second run with SLURM_RESTART_COUNT=1"
