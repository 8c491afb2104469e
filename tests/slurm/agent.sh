#!/usr/bin/env bash
# The node agent is part of the cluster: `slurm-cluster start` started
# ckptd on the plugin's socket, and a --checkpoint job is registered with
# it.  Then the agent stops, and a --checkpoint job either
#   required: is refused (plugstack.conf require_agent=yes, the default):
#     it fails before its script runs, and the reason is in its
#     AdminComment, its stderr and slurmd's log;
#   optional: runs (require_agent=no) with a warning naming the option in
#     its stderr and slurmd's log.
# A job without --checkpoint runs either way.
. "$(dirname "$0")/lib.sh"
MODE=$1 CKPTCTL=$2
: "${CKPT_SOCKET:?}"
LOGFILE=/var/log/ckpt-slurm/slurmd.log
PLUGSTACK=/etc/slurm/plugstack.conf.d/ckpt.conf

registered() { "$CKPTCTL" status --json "$1" 2>/dev/null | grep -q "\"job_id\":$1,"; }
id=$(submit -p high -o "$T/up.out" --checkpoint=manual --checkpoint-dir="$T/ck" --wrap='sleep 30')
wait_for 30 "job $id to run" state_is "$id" RUNNING
wait_for 10 "job $id to be registered with the cluster's ckptd" registered "$id"
scancel "$id"
echo "ok: the cluster's ckptd answers on $CKPT_SOCKET and registered job $id"

case $MODE in
required) ;;
optional)
	cp "$PLUGSTACK" "$T/plugstack.conf"
	at_exit "cp \"$T/plugstack.conf\" $PLUGSTACK"
	sed -i '/^required /s|$| require_agent=no|' "$PLUGSTACK"
	;;
*) fail "mode $MODE: use required or optional" ;;
esac
agent_stop
"$CKPTCTL" status >/dev/null 2>&1 && fail "ckptd still answers after agent-stop"

id=$(submit -p high -o "$T/job.out" -e "$T/job.err" --checkpoint-dir="$T/ck" \
	--wrap='echo the script ran')
wait_for 60 "job $id to end" eval "! state_is $id PENDING && ! state_is $id RUNNING && ! state_is $id COMPLETING"
state=$(field "$id" JobState)
if [ "$MODE" = required ]; then
	[ "$state" = FAILED ] || fail "job $id: JobState=$state, not FAILED: $(cat "$T/job.out" "$T/job.err")"
	grep -q "the script ran" "$T/job.out" && fail "job $id: the script ran without the agent"
	why="ckpt: job $id refused on node $(hostname).*ckptd does not answer on $CKPT_SOCKET.*require_agent=yes"
	scontrol show job "$id" | grep -q "AdminComment=$why" ||
		fail "job $id: no reason in scontrol show job: $(scontrol show job "$id" | grep -i comment)"
	grep -q "$why" "$T/job.err" || fail "job $id: no reason in its stderr: $(cat "$T/job.err")"
	grep -q "$why" $LOGFILE || fail "job $id: no reason in $LOGFILE"
	echo "ok: job $id refused without the agent: $(scontrol show job "$id" | sed -n "s/^ *AdminComment=//p")"
else
	[ "$state" = COMPLETED ] || fail "job $id: JobState=$state, not COMPLETED: $(cat "$T/job.err")"
	grep -q "the script ran" "$T/job.out" || fail "job $id: the script did not run"
	why="ckpt: job $id: warning: ckptd does not answer on $CKPT_SOCKET.*WITHOUT checkpoints (plugstack.conf require_agent=no)"
	grep -q "$why" "$T/job.err" || fail "job $id: no warning in its stderr: $(cat "$T/job.err")"
	grep -q "$why" $LOGFILE || fail "job $id: no warning in $LOGFILE"
	echo "ok: job $id ran without the agent, warned: $(grep -m1 warning "$T/job.err")"
fi
id=$(submit --wait -p high -o "$T/plain.out" --wrap='echo plain ran')
grep -q "plain ran" "$T/plain.out" || fail "job $id without --checkpoint did not run"
echo "ok: job $id without --checkpoint ran without the agent"
