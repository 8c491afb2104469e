#!/usr/bin/env bash
# ckpt-batch without Slurm: it runs CKPT_BATCH_SCRIPT with its arguments,
# on SIGUSR1 runs `$CKPT_CKPTCTL checkpoint vacate $SLURM_JOB_ID` and does
# not exit before that has finished, even when the script ends first; it
# passes other signals on and ends as the script ended (code or signal).
# With --checkpoint=manual (CKPT_POLICY=manual) a SIGUSR1 runs nothing,
# and a requeued run still restores the job's latest set.
set -euo pipefail
WRAP=$1
T=$(mktemp -d /tmp/ckpt-batch-wrapper.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: batch-wrapper: $*" >&2; exit 1; }
export SLURM_JOB_ID=42
# No Slurm to ask whether a SIGUSR1 is a preemption (the running test
# cluster may have a job 42): the wrapper vacates as at preemption.
export SLURM_CONF=/nonexistent/slurm.conf

# Arguments and exit code.
printf '#!/bin/sh\necho "args:$*"\nexit 7\n' >"$T/args.sh"
chmod +x "$T/args.sh"
set +e
out=$(CKPT_BATCH_SCRIPT="$T/args.sh" "$WRAP" a 'b c')
rc=$?
set -e
[ "$rc" = 7 ] && [ "$out" = "args:a b c" ] || fail "rc $rc, output '$out'"

# Killed by a signal: the wrapper dies of the same signal.
printf '#!/bin/sh\nkill -TERM $$\nsleep 5\n' >"$T/term.sh"
chmod +x "$T/term.sh"
set +e
CKPT_BATCH_SCRIPT="$T/term.sh" "$WRAP"
rc=$?
set -e
[ "$rc" = 143 ] || fail "script killed by SIGTERM: wrapper exit $rc, want 143"

# USR1: vacate, and wait for it although the script ends at once.
cat >"$T/ckptctl" <<S
#!/bin/sh
sleep 1
echo "\$*" >$T/vacate.args
exit 3
S
printf '#!/bin/bash\ntrap "echo usr2; exit 0" USR2\ntouch %s/ready\nwhile :; do sleep 0.1; done\n' "$T" >"$T/loop.sh"
chmod +x "$T/ckptctl" "$T/loop.sh"
CKPT_BATCH_SCRIPT="$T/loop.sh" CKPT_CKPTCTL="$T/ckptctl" "$WRAP" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 50); do [ -e "$T/ready" ] && break; sleep 0.1; done
kill -USR1 $pid
sleep 0.3
kill -USR2 $pid # the script ends now, the vacate is still running
wait $pid || fail "wrapper exit $?: $(cat "$T/err")"
[ "$(cat "$T/vacate.args" 2>/dev/null)" = "checkpoint vacate 42" ] ||
	fail "wrapper ended before the vacate did, or ran it wrong: $(cat "$T/err")"
grep -q 'usr2' "$T/out" || fail "USR2 did not reach the script"
grep -q 'ckpt-batch: job 42: vacate FAILED (.* exited with 3)' "$T/err" ||
	fail "vacate failure not logged: $(cat "$T/err")"

# --checkpoint=manual: SIGUSR1 checkpoints nothing, the script runs on.
rm -f "$T/ready" "$T/vacate.args"
CKPT_POLICY=manual CKPT_BATCH_SCRIPT="$T/loop.sh" CKPT_CKPTCTL="$T/ckptctl" "$WRAP" >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 50); do [ -e "$T/ready" ] && break; sleep 0.1; done
kill -USR1 $pid
sleep 1.5 # a vacate would have written vacate.args by now
kill -0 $pid 2>/dev/null || fail "manual: the wrapper ended on SIGUSR1: $(cat "$T/err")"
kill -USR2 $pid
wait $pid || fail "manual: wrapper exit $?: $(cat "$T/err")"
[ ! -e "$T/vacate.args" ] || fail "manual: SIGUSR1 ran ckptctl $(cat "$T/vacate.args")"
grep -q 'usr2' "$T/out" || fail "manual: the script did not run on after SIGUSR1"
grep -q 'ckpt-batch: job 42: SIGUSR1: --checkpoint=manual: no checkpoint' "$T/err" ||
	fail "manual: SIGUSR1 not logged: $(cat "$T/err")"
# ... and a requeued manual job restores its latest set (none here: the
# script starts afresh).
set +e
out=$(SLURM_RESTART_COUNT=1 CKPT_POLICY=manual CKPT_BATCH_SCRIPT="$T/args.sh" \
	CKPT_CKPTCTL="$T/ckptctl" "$WRAP" a 2>"$T/err")
rc=$?
set -e
[ "$rc" = 7 ] && [ "$out" = "args:a" ] || fail "manual, requeued: rc $rc, output '$out'"
grep -q "^restore --job 42 " "$T/vacate.args" || fail "manual, requeued: no restore: $(cat "$T/err")"
echo "ok: ckpt-batch"
