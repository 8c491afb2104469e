#!/usr/bin/env bash
# A job submitted with examples/ckpt-sbatch (--checkpoint, --signal=B:USR1)
# to the low partition is preempted: Slurm sends it USR1 at once (GraceTime
# starts), the ckpt-batch wrapper runs `ckptctl checkpoint vacate JOBID`
# and logs the outcome, and Slurm requeues the job (Restarts=1).
. "$(dirname "$0")/lib.sh"

cat >"$T/count.sh" <<S
#!/bin/bash
i=0; while :; do i=\$((i + 1)); echo \$i >$T/count; sleep 0.5; done
S
low=$(SBATCH_SIGNAL='' "$ROOT/examples/ckpt-sbatch" --parsable -p low --requeue -c 2 \
	-o "$T/low.out" -e "$T/low.err" --checkpoint-dir="$T/ck" "$T/count.sh") ||
	fail "ckpt-sbatch failed"
JOBS+=("$low")
wait_for 30 "job $low to count" test -s "$T/count"
[ "$(field "$low" Requeue)" = 1 ] || fail "job $low is not requeueable"
high=$(submit -p high -c 2 -o "$T/high.out" --wrap='echo high ran')
wait_for 60 "the wrapper of job $low to get USR1" \
	grep -qs "ckpt-batch: job $low: SIGUSR1 (preemption): running .*ckptctl checkpoint vacate $low\$" "$T/low.err"
wait_for 60 "the vacate of job $low to end" grep -qs "ckpt-batch: job $low: vacate" "$T/low.err"
wait_for 90 "job $low to be requeued" restarts_is "$low" 1
wait_for 30 "job $high to complete" state_is "$high" COMPLETED
echo "ok: job $low got USR1 on preemption and was requeued; wrapper said:"
grep 'ckpt-batch:' "$T/low.err"
