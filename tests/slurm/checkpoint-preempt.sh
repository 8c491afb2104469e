#!/usr/bin/env bash
# The point of ckpt: a user's low-priority --checkpoint --requeue job that
# counts is preempted by a high-priority job, checkpointed within its
# grace time (the ckpt-batch wrapper's vacate through ckptd), requeued by
# Slurm (Restarts=1), and when it runs again it is restored and counts on
# from where it was -- not from zero -- in the same output file.  Then a
# job whose checkpoint fails (an unsupported netlink socket: generic netlink) is requeued
# the old way, starts afresh, and `ckptctl checkpoint error` says why.
# ckptd runs as this test's child on the plugin's socket (CKPT_SOCKET).
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user

start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
# The checkout may be closed to other users.
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"

count_script "$T/u/count.sh"

low=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p low \
	--requeue -c 2 -o "$T/u/low.out" -e "$T/u/low.err" --checkpoint-dir="$T/u/ck" \
	"$T/u/count.sh") || fail "ckpt-sbatch failed"
JOBS+=("$low")
counted() { [ "$(lines '^count' "$T/u/low.out")" -ge "$1" ]; }
wait_for 30 "job $low to count" counted 10
high=$(submit -p high -c 2 -o "$T/high.out" --wrap='sleep 5; echo high ran')
wait_for 60 "the vacate of job $low" grep -qs "ckpt-batch: job $low: vacate" "$T/u/low.err"
grep -q "vacate done" "$T/u/low.err" || fail "vacate failed: $(cat "$T/u/low.err")"
[ -L "$T/u/ck/$low/latest" ] || fail "no committed checkpoint in $T/u/ck/$low"
[ "$(stat -c %U "$T/u/ck/$low/latest/")" = $U ] || fail "the checkpoint is not the user's"
at_vacate=$(grep -c '^count' "$T/u/low.out")
wait_for 60 "job $low to be requeued" restarts_is "$low" 1
wait_for 60 "job $high to complete" state_is "$high" COMPLETED
release "$low"
wait_for 150 "job $low to run again" state_is "$low" RUNNING
wait_for 30 "job $low to be restored" grep -qs "restored from the latest checkpoint" "$T/u/low.err"
wait_for 30 "job $low to count on" counted $((at_vacate + 10))
# One start, one counting sequence 1, 2, 3 ... with nothing lost or repeated.
[ "$(grep -c '^start of run' "$T/u/low.out")" = 1 ] ||
	fail "the job started over: $(grep -n 'start of run' "$T/u/low.out")"
grep '^count' "$T/u/low.out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "the count did not go on from where it was"
[ "$(field "$low" Restarts)" = 1 ] || fail "Restarts=$(field "$low" Restarts)"
echo "ok: job $low counted to $at_vacate, was checkpointed on preemption, requeued (Restarts=1)" \
	"and restored, and counts on ($(grep -c '^count' "$T/u/low.out") now)"
# Another user may not checkpoint it; its owner may.
id ckpt-test2 >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false ckpt-test2
setpriv --reuid=ckpt-test2 --regid=ckpt-test2 --init-groups -- "$CKPTCTL" checkpoint create "$low" \
	2>"$T/other.err" && fail "another user checkpointed job $low"
grep -q "may not" "$T/other.err" || fail "unclear refusal: $(cat "$T/other.err")"
as_user "$CKPTCTL" checkpoint create "$low" || fail "the owner's checkpoint create"
as_user "$CKPTCTL" checkpoint list "$low" | grep -q "^2 *yes" || fail "checkpoint list"
# vacate by the owner: checkpoint, requeue, and on with the count.
restored() { [ "$(lines 'restored from the latest checkpoint' "$T/u/low.err")" -ge "$1" ]; }
as_user "$CKPTCTL" checkpoint vacate "$low" || fail "checkpoint vacate"
at_vacate=$(lines '^count' "$T/u/low.out")
wait_for 60 "job $low to be requeued by vacate" restarts_is "$low" 2
release "$low"
wait_for 150 "job $low to run again" state_is "$low" RUNNING
wait_for 30 "job $low to be restored again" restored 2
wait_for 30 "job $low to count on" counted $((at_vacate + 5))
grep '^count' "$T/u/low.out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "the count did not go on after the vacate"
# restart (root): back to the latest checkpoint, the vacate's.
"$CKPTCTL" checkpoint restart "$low" || fail "checkpoint restart"
wait_for 60 "job $low to be requeued by restart" restarts_is "$low" 3
quiet() { local a; a=$(lines '^count' "$T/u/low.out"); sleep 0.6; [ "$a" = "$(lines '^count' "$T/u/low.out")" ]; }
wait_for 30 "the requeued run of job $low to stop counting" quiet
after=$(lines '^count' "$T/u/low.out")
release "$low"
wait_for 150 "job $low to run again" state_is "$low" RUNNING
# The restore cut the output back to its size at the vacate's dump (the
# lines after it, up to $after, were the killed run's): the count goes
# on from there, and no line comes twice.
wait_for 60 "job $low to count on" counted $((after + 3))
[ "$(grep -c '^start of run' "$T/u/low.out")" = 1 ] || fail "the job started over after restart"
grep '^count' "$T/u/low.out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "after restart the output repeats or lost lines (at the vacate: $at_vacate, before restart: $after)"
echo "ok: vacate (Restarts=2) and restart (Restarts=3) went on from the vacate's checkpoint," \
	"the output cut back from $after to its $at_vacate lines then"
# scancel ends the restored tree too (its ckptctl goes away).
scancel "$low"
wait_for 30 "job $low to end" eval "! state_is $low RUNNING"
n=$(grep -c '^count' "$T/u/low.out")
sleep 1
[ "$(grep -c '^count' "$T/u/low.out")" -le $((n + 1)) ] || fail "the restored job counts on after scancel"
echo "ok: create/list by the owner, refused for another user, scancel ends the restored job"

# A checkpoint that fails: Slurm requeues the job as before, it starts afresh.
cat >"$T/u/bad.sh" <<'S'
#!/bin/bash
echo "start of run ${SLURM_RESTART_COUNT:-0}"
exec python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
i = 0
while True:
    i += 1
    print("count", i, flush=True)
    time.sleep(0.2)
'
S
chmod 755 "$T/u/bad.sh"
bad=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p low \
	--requeue -c 2 -o "$T/u/bad.out" -e "$T/u/bad.err" --checkpoint-dir="$T/u/ck" \
	"$T/u/bad.sh") || fail "ckpt-sbatch failed"
JOBS+=("$bad")
bad_counted() { [ "$(lines '^count' "$T/u/bad.out")" -ge 5 ]; }
wait_for 30 "job $bad to count" bad_counted
high=$(submit -p high -c 2 -o "$T/high2.out" --wrap='sleep 3')
wait_for 60 "the vacate of job $bad" grep -qs "ckpt-batch: job $bad: vacate" "$T/u/bad.err"
grep -q "vacate FAILED" "$T/u/bad.err" || fail "the vacate of job $bad did not fail"
wait_for 90 "job $bad to be requeued" restarts_is "$bad" 1
wait_for 60 "job $high to complete" state_is "$high" COMPLETED
release "$bad"
wait_for 150 "job $bad to start again" grep -qs "start of run 1" "$T/u/bad.out"
grep -q "no usable checkpoint" "$T/u/bad.err" || fail "the job log does not say why it starts afresh"
as_user "$CKPTCTL" checkpoint error "$bad" >"$T/error"
grep -q "socket.*not supported" "$T/error" || fail "checkpoint error: $(cat "$T/error")"
echo "ok: job $bad failed to checkpoint, was requeued and started afresh; $(cat "$T/error")"
