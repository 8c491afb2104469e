#!/usr/bin/env bash
# Retention across a job's life: a user's job that completed and one that
# was cancelled, each with a committed set in their --checkpoint-dir,
# keep their sets while retention.ended_keep_s has not passed since their
# end, and `ckptctl image gc --ended` (what the epilog runs) then removes
# their whole directories; a running job's sets are never touched.
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
use_test_user
export CKPT_CONF=$T/ckpt.conf
: >"$CKPT_CONF"
chmod 644 "$CKPT_CONF"

start_ckptd "$CKPTD" "$CKPTCTL"
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"
# Counts until $T/u/stop-JOB appears, then ends with 0.
cat >"$T/u/job.sh" <<S
#!/bin/bash
exec python3 -c '
import os, time
i = 0
while not os.path.exists("$T/u/stop-" + os.environ["SLURM_JOB_ID"]):
    i += 1
    print("count", i, flush=True)
    time.sleep(0.2)
'
S
chmod 755 "$T/u/job.sh"
start_job() {
	(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p high -c 1 \
		-o "$T/u/%j.out" --checkpoint-dir="$T/u/ck" "$T/u/job.sh") || fail "ckpt-sbatch failed"
}
checkpointed() {
	wait_for 60 "job $1 to run" state_is "$1" RUNNING
	wait_for 30 "job $1 to count" grep -qs '^count' "$T/u/$1.out"
	as_user "$CKPTCTL" checkpoint create "$1" >/dev/null || fail "checkpoint create $1"
	[ -L "$T/u/ck/$1/latest" ] || fail "no set of job $1"
}
done_id=$(start_job)
JOBS+=("$done_id")
checkpointed "$done_id"
as_user touch "$T/u/stop-$done_id"
wait_for 60 "job $done_id to complete" state_is "$done_id" COMPLETED
cancelled=$(start_job)
JOBS+=("$cancelled")
checkpointed "$cancelled"
scancel "$cancelled"
wait_for 60 "job $cancelled to be cancelled" state_is "$cancelled" CANCELLED
running=$(start_job)
JOBS+=("$running")
checkpointed "$running"

# Within the time kept: nothing goes.
echo "retention.ended_keep_s = 3600" >"$CKPT_CONF"
as_user "$CKPTCTL" image gc --ended --base "$T/u/ck" >"$T/gc1" || fail "gc --ended: $(cat "$T/gc1")"
for j in $done_id $cancelled $running; do
	[ -L "$T/u/ck/$j/latest" ] || fail "job $j's sets removed within retention.ended_keep_s"
done
# Past it: the completed and the cancelled job's directories go, the
# running job's stays.
sleep 2
echo "retention.ended_keep_s = 1" >"$CKPT_CONF"
as_user "$CKPTCTL" image gc --ended --base "$T/u/ck" >"$T/gc2" || fail "gc --ended: $(cat "$T/gc2")"
for j in $done_id $cancelled; do
	[ ! -e "$T/u/ck/$j" ] || fail "job $j ($(field "$j" JobState)) kept: $(ls -la "$T/u/ck/$j")"
done
grep -q "job $done_id over (COMPLETED)" "$T/gc2" && grep -q "job $cancelled over (CANCELLED)" "$T/gc2" ||
	fail "gc --ended said: $(cat "$T/gc2")"
[ -L "$T/u/ck/$running/latest" ] || fail "the running job $running lost its sets"
as_user touch "$T/u/stop-$running"
echo "ok: sets of the completed job $done_id and the cancelled job $cancelled removed after" \
	"retention.ended_keep_s, those of the running job $running kept"
