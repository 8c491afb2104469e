#!/usr/bin/env bash
# The same signal comes before a time limit runs out: a job submitted with
# examples/ckpt-sbatch, --time=2 and CKPT_SIGNAL_TIME=100 gets USR1 about
# 100 s before its end (slurmctld checks every 30 s or so), and its
# ckpt-batch wrapper runs `ckptctl checkpoint vacate JOBID`.
. "$(dirname "$0")/lib.sh"

printf '#!/bin/bash\nwhile :; do sleep 1; done\n' >"$T/sleep.sh"
id=$(SBATCH_SIGNAL='' CKPT_SIGNAL_TIME=100 "$ROOT/examples/ckpt-sbatch" --parsable -p high \
	--time=2 -o "$T/out" -e "$T/err" "$T/sleep.sh") || fail "ckpt-sbatch failed"
JOBS+=("$id")
wait_for 90 "job $id to get USR1 before its time limit" \
	grep -qs "ckpt-batch: job $id: SIGUSR1 (time limit): running .*checkpoint vacate $id --timelimit=stop" "$T/err"
echo "ok: job $id got USR1 ahead of its time limit"
