#!/usr/bin/env bash
# A requeueable job in the low partition that fills the node is preempted
# by a high-partition job: Slurm requeues it (Restarts=1) and runs the
# high one.  Plain Slurm, no checkpoint: what ckpt builds on.
. "$(dirname "$0")/lib.sh"

cat >"$T/count.sh" <<S
#!/bin/bash
i=0; while :; do i=\$((i + 1)); echo \$i >$T/count; sleep 0.5; done
S
low=$(submit -p low --requeue -c 2 -o "$T/low.out" "$T/count.sh")
wait_for 30 "job $low to count" test -s "$T/count"
high=$(submit -p high -c 2 -o "$T/high.out" --wrap='echo high ran')
wait_for 90 "job $low to be requeued" restarts_is "$low" 1
wait_for 30 "job $high to complete" state_is "$high" COMPLETED
grep -q 'high ran' "$T/high.out" || fail "high job output: $(cat "$T/high.out")"
s=$(field "$low" JobState)
case $s in PENDING | RUNNING | REQUEUED) ;; *) fail "requeued job $low is $s" ;; esac
echo "ok: job $low preempted by $high and requeued (Restarts=1, now $s)"
