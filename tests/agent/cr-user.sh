#!/usr/bin/env bash
# C/R cases of tests/cr run by a user through ckptd: a private agent, the
# user ckpt-test1, and cr-run --user, which starts the test program as that
# user and runs every `ckptctl dump` and `restore` as that user too (so
# through the agent: a user's ckptctl has no other way).  The worker that
# does the work holds only what the user may do plus the capabilities it
# is lent (agent/worker.c), so each case checks that a user's own job
# survives a checkpoint with no more than that.
#
#   cr-user.sh MODE CKPTD CKPTCTL CR-RUN [cr-run options] -- PROGRAM [ARGS...]
#
#   pass      cr-run --user must PASS, and the agent's log must show the
#             dump and the restore done for the user's uid
#   noagent   the agent is killed before the run: cr-run must FAIL, its
#             ckptctl saying that ckptd does not answer
#   notowner  ckptctl runs as another user (ckpt-test2): cr-run must FAIL
#             on the agent's refusal, which the agent logs
set -euo pipefail
MODE=$1 CKPTD=$2 CKPTCTL=$3 CR_RUN=$4
shift 4
OPTS=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do OPTS+=("$1"); shift; done
[ $# -ge 2 ] || { echo "usage: $0 MODE CKPTD CKPTCTL CR-RUN [opts] -- PROGRAM [ARGS]"; exit 2; }
shift
PROG=$1
shift
ARGS=("$@")
USER1=ckpt-test1 USER2=ckpt-test2

. "$(dirname "$0")/../lib/agent-env.sh"
agent_env ckpt-cruser
# (ckptd and cr-run, and any --helper, run as root where they are.)
user_copy CKPTCTL PROG
# cr-run's own temp dirs (the user's) go under $T, kept on a failure.
export CR_TMPDIR=$T
AGENT_PID=
KEEP=0

cleanup() {
	if [ -n "$AGENT_PID" ]; then
		kill -9 "$AGENT_PID" 2>/dev/null || true
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	if [ $KEEP = 1 ]; then echo "files kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	[ -f "$T/agent.log" ] && { echo "----- agent log -----"; tail -30 "$T/agent.log"; }
	KEEP=1
	exit 1
}

ensure_user() {
	id "$1" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false "$1"
}

start_agent() {
	"$CKPTD" -f -s "$CKPT_SOCKET" -r "$T/run" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 100); do
		"$CKPTCTL" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "ckptd did not start"
}

# cr-run with the case's options; its exit status in RC, output in $T/cr-run.out.
run_cr() {
	RC=0
	"$CR_RUN" --ckptctl "$CKPTCTL" --timeout 150 "$@" "${OPTS[@]}" -- "$PROG" "${ARGS[@]}" \
		>"$T/cr-run.out" 2>&1 </dev/null || RC=$?
	cat "$T/cr-run.out"
}

ensure_user $USER1
UID1=$(id -u $USER1)
start_agent

case $MODE in
pass)
	run_cr --user $USER1
	[ $RC = 77 ] && exit 77 # cr-run's SKIP (a mode the case cannot run in)
	[ $RC = 0 ] || fail "cr-run --user $USER1 exited $RC"
	# Both operations went through this agent, for the user.
	grep -q "dump [0-9]*: pid [0-9]* by uid $UID1 " "$T/agent.log" ||
		fail "the agent did no dump for uid $UID1"
	# (a dump refused as the case expects: no restore to look for)
	[[ " ${OPTS[*]} " == *" --expect-dump-fail "* ]] ||
		grep -q "restore [0-9]*: .* by uid $UID1\$" "$T/agent.log" ||
		fail "the agent did no restore for uid $UID1"
	;;
noagent)
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
	run_cr --user $USER1
	[ $RC = 1 ] || fail "cr-run without an agent exited $RC, not 1 (FAIL)"
	grep -q "ckptctl dump .*: exit" "$T/cr-run.out" || fail "cr-run failed, not on the dump"
	grep -q "ckptd is not running" "$T/cr-run.out" || fail "ckptctl did not say why"
	;;
notowner)
	ensure_user $USER2
	run_cr --user $USER1 --ckptctl-user $USER2
	[ $RC = 1 ] || fail "a dump by $USER2 of $USER1's program: cr-run exited $RC, not 1"
	grep -q "not owned by uid $(id -u $USER2)" "$T/cr-run.out" || fail "no reason given"
	grep -q "dump refused for uid $(id -u $USER2)" "$T/agent.log" || fail "refusal not logged"
	;;
*)
	echo "unknown mode $MODE"
	exit 2
	;;
esac
echo PASS
