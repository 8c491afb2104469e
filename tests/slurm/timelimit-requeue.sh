#!/usr/bin/env bash
# Time limits: a user's job with --time=1, --signal 45 s before it
# (ckpt-sbatch) and --checkpoint-timelimit=requeue:2 is checkpointed and
# requeued at its first and second time limits (Restarts=1, 2), restored
# each time and counting on, and at its third it is checkpointed and
# stops: it ends (exit 75, vacated) instead of going on forever.  After
# its end `ckptctl checkpoint list` still finds its three sets in its
# --checkpoint-dir (through ckptd's record of the ended job) and says
# "time-limit requeues: 2 of 2".  A count beyond the site's bound
# (plugstack timelimit_max, 10 by default) is refused at submit.
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user

sbatch --checkpoint-timelimit=requeue:11 -p high --wrap=true >"$T/refused" 2>&1 &&
	fail "requeue:11 accepted"
grep -q "at most 10 time-limit requeues" "$T/refused" || fail "refusal: $(cat "$T/refused")"
sbatch --checkpoint-timelimit=forever -p high --wrap=true >"$T/refused" 2>&1 &&
	fail "--checkpoint-timelimit=forever accepted"

start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"
# One process, no children: a tree restored into a fresh PID namespace
# (which a restore picks when one of its pids is taken, e.g. by a child
# not yet reaped) cannot be checkpointed again by this engine yet.
cat >"$T/u/count.sh" <<'S'
#!/bin/bash
echo "start of run ${SLURM_RESTART_COUNT:-0}"
exec python3 -c '
import time
i = 0
while True:
    i += 1
    print("count", i, flush=True)
    time.sleep(0.2)
'
S
chmod 755 "$T/u/count.sh"
id=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' CKPT_SIGNAL_TIME=45 "$T/ckpt-sbatch" --parsable \
	-p high --requeue --time=1 --checkpoint-timelimit=requeue:2 -o "$T/u/out" -e "$T/u/err" \
	--checkpoint-dir="$T/u/ck" "$T/u/count.sh") || fail "ckpt-sbatch failed"
JOBS+=("$id")
wait_for 30 "the policy file of job $id" grep -qsx "timelimit=requeue:2" "/run/ckpt/jobs/$id.policy"
# ckptctl, run by the wrapper, writes to the job's output; the wrapper to its errors.
said() { grep -qs "$1" "$T/u/out"; }
counted() { [ "$(lines '^count' "$T/u/out")" -ge "$1" ]; }
restored() { [ "$(lines 'restored from the latest checkpoint' "$T/u/err")" -ge "$1" ]; }
for n in 1 2; do
	wait_for 120 "time-limit requeue $n of job $id" \
		said "^job $id: time limit: requeued, time-limit requeue $n of 2"
	grep -q "job $id: SIGUSR1 (time limit): running .*vacate $id --timelimit=requeue:2" "$T/u/err" ||
		fail "the wrapper did not take it as the time limit: $(cat "$T/u/err")"
	at=$(lines '^count' "$T/u/out")
	wait_for 60 "job $id to be requeued ($n)" restarts_is "$id" $n
	release "$id"
	wait_for 150 "job $id to run again ($n)" state_is "$id" RUNNING
	wait_for 30 "job $id to be restored ($n)" restored $n
	wait_for 30 "job $id to count on ($n)" counted $((at + 5))
done
wait_for 120 "job $id to stop at its third time limit" \
	said "^job $id: time limit: 2 of 2 time-limit requeues done: the job stops here"
ended() { ! state_is "$id" RUNNING && ! state_is "$id" COMPLETING; }
wait_for 90 "job $id to end" ended
[ "$(field "$id" Restarts)" = 2 ] || fail "Restarts=$(field "$id" Restarts), want 2"
[ "$(field "$id" ExitCode)" = 75:0 ] || fail "ExitCode=$(field "$id" ExitCode), not the vacated 75:0"
sleep 2
state_is "$id" PENDING && fail "job $id was requeued a third time"
[ "$(grep -c '^start of run' "$T/u/out")" = 1 ] ||
	fail "the job started over: $(grep -n 'start of run' "$T/u/out")"
grep '^count' "$T/u/out" | awk '$2 != NR { print "line " NR ": " $0; bad = 1 } END { exit bad }' ||
	fail "the count did not go on from where it was"
echo "ok: job $id requeued at 2 time limits, stopped at the third: $(field "$id" JobState)" \
	"ExitCode=$(field "$id" ExitCode)"
# After its end: the sets from its --checkpoint-dir, and the count.
wait_for 30 "the epilog to unregister job $id" \
	eval '! "$CKPTCTL" status --json | grep -o "\"jobs\":.*\"operations\"" | grep -q "\"job_id\":$id,"'
as_user "$CKPTCTL" checkpoint list "$id" >"$T/list" || fail "list after the end: $(cat "$T/list")"
[ "$(grep -c '^[1-3] *yes' "$T/list")" = 3 ] || fail "list after the end: $(cat "$T/list")"
grep -q "job $id: time-limit requeues: 2 of 2" "$T/list" || fail "no count: $(cat "$T/list")"
echo "ok: after its end, list shows its 3 sets and its 2 of 2 time-limit requeues"
