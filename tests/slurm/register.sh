#!/usr/bin/env bash
# The plugin registers a --checkpoint job's batch task with ckptd (job,
# step, uid, pid, policy, dir) while it runs and unregisters it when it
# ends.  ckptd runs here as this test's child on the socket the cluster's
# plugstack.conf names (CKPT_SOCKET, set by CMakeLists.txt).
. "$(dirname "$0")/lib.sh"
CKPTD=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"

start_ckptd "$CKPTD" "$CKPTCTL"

id=$(submit -p high -o "$T/job.out" --checkpoint=manual --checkpoint-dir="$T/ck" --wrap='sleep 60')
wait_for 30 "job $id to run" state_is "$id" RUNNING
# A job that ended is still shown for its id, as ended (ckptd keeps a
# record of where its sets are): registered means there and not ended.
registered() {
	local j
	j=$("$CKPTCTL" status --json "$id" 2>/dev/null) || return 1
	grep -q "\"job_id\":$id," <<<"$j" && ! grep -q '"ended_ns"' <<<"$j"
}
wait_for 10 "job $id to be registered" registered
json=$("$CKPTCTL" status --json "$id")
pid=$(scontrol listpids "$id" | awk '$3 == "batch" && $4 == 0 { print $1 }')
for want in '"uid":0' '"steps":\[4294967291\]' "\"pids\":\\[$pid\\]" '"policy":"manual"' \
	"\"dir\":\"$T/ck\""; do
	grep -q "$want" <<<"$json" || fail "job $id: no $want in $json"
done
scancel "$id"
wait_for 30 "job $id to be unregistered" eval '! registered'
"$CKPTCTL" status "$id" | grep -Eq "^$id +0 +0 +ended" || fail "status $id: $("$CKPTCTL" status "$id")"
echo "ok: job $id registered with ckptd (batch task $pid) and unregistered (ended)"

# The step's slurmstepd dies without unregistering: the job's epilog does.
id=$(submit -p high -o "$T/job2.out" --checkpoint --wrap='exec sleep 60')
wait_for 30 "job $id to be registered" registered
pid=$(scontrol listpids "$id" | awk '$3 == "batch" && $4 == 0 { print $1 }')
stepd=$(ps -o ppid= -p "$pid" | tr -d ' ')
[ "$(ps -o comm= -p "$stepd")" = slurmstepd ] || fail "job $id: no slurmstepd above $pid"
# Without its slurmstepd nobody ends the job's processes: this test does.
at_exit "kill $pid 2>/dev/null"
kill -KILL "$stepd"
scancel "$id"
wait_for 30 "the epilog to unregister job $id" eval '! registered'
echo "ok: job $id unregistered by the epilog after its slurmstepd died"
