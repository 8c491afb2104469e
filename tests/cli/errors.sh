#!/usr/bin/env bash
# ckptctl's errors: every verb given a bad argument (a job id abc, -5, 0,
# 99999999999; an unknown verb or option; a missing id) exits non-zero
# with exactly one line on stderr, "ckptctl: VERB: ...", that names the
# argument, and nothing on stdout.  Then, against a private ckptd, what
# the agent refuses reaches the user the same way, and a job that ended
# (unregistered as a whole, as Slurm's epilog does) is still listed from
# its --checkpoint-dir, with its sets, exit 0; a failed dump leaves no
# empty job directory; `checkpoint able` exits 0 (yes), 1 (no, and why)
# or 2 (it cannot say); without CKPT_SOCKET, ckptctl finds the agent by
# agent.socket of ckpt.conf.  Also: `status` reports a
# restore's own time, not the time its tree then ran; the agent's log
# names Slurm's batch step instead of printing its id 4294967291.
#   errors.sh CKPTD CKPTCTL COUNTER
set -euo pipefail
CKPTD=$1 CKPTCTL=$2 COUNTER=$3

. "$(dirname "$0")/../lib/agent-env.sh"
agent_env ckpt-cli-errors
user_copy CKPTD CKPTCTL COUNTER
AGENT_PID=
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/agent.log" ] && tail -n 20 "$T/agent.log"; exit 1; }

# one_error PATTERN ARGS...: ckptctl ARGS fails with one stderr line that
# matches PATTERN (grep -E, anchored at "ckptctl: ") and prints nothing else.
one_error() {
	local want=$1 rc=0
	shift
	"$CKPTCTL" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ $rc -ne 0 ] || fail "ckptctl $*: exit 0"
	[ ! -s "$T/out" ] || fail "ckptctl $*: stdout: $(cat "$T/out")"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "ckptctl $*: not one line: $(cat "$T/err")"
	grep -Eq "^ckptctl: $want" "$T/err" || fail "ckptctl $*: '$(cat "$T/err")', not '$want'"
}

# exits RC ARGS...: ckptctl ARGS exits with exactly RC (checkpoint able:
# 0 yes, 1 no, 2 when it cannot say), its stdout in $T/out.
exits() {
	local want=$1 rc=0
	shift
	"$CKPTCTL" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ $rc = "$want" ] || fail "ckptctl $*: exit $rc, not $want: $(cat "$T/out" "$T/err")"
}

# Arguments: no agent is needed to refuse them.
export CKPT_SOCKET=$T/none.sock
one_error "missing command"
one_error "unknown command 'chekpoint'" chekpoint create 5
one_error "checkpoint: missing verb" checkpoint
one_error "checkpoint: unknown verb 'frobnicate'" checkpoint frobnicate 5
for verb in create vacate restart list able error disable enable; do
	one_error "checkpoint $verb: missing job id" checkpoint $verb
	for id in abc -5 0 99999999999 12abc ""; do
		one_error "checkpoint $verb: bad job id '$id'" checkpoint $verb "$id"
	done
	one_error "checkpoint $verb: unexpected argument '6'" checkpoint $verb 5 6
	one_error "checkpoint $verb: unknown option '--jsn'" checkpoint $verb 5 --jsn
done
# able's errors are 2, not the 1 of its "no".
exits 2 checkpoint able
exits 2 checkpoint able abc
exits 2 checkpoint able 5 --jsn
exits 2 checkpoint able 5 # no agent
for id in abc -5 0 99999999999; do
	one_error "status: bad job id '$id'" status "$id"
	one_error "cancel: bad job id '$id'" cancel "$id"
	one_error "register: bad job id '$id'" register --job "$id" 1234
	one_error "unregister: bad job id '$id'" unregister --job "$id"
done
one_error "status: unknown option '--jsn'" status --jsn
one_error "cancel: missing job id" cancel
one_error "cancel: unexpected argument '6'" cancel 5 6
one_error "register: missing --job JOBID" register 1234
one_error "register: missing PID" register --job 5
one_error "register: option '--job' needs an argument" register --job
one_error "register: --step: bad number 'x'" register --job 5 --step x 1234
one_error "register: 'x' is not a pid" register --job 5 x
one_error "unregister: unknown option '--bogus'" unregister --job 5 --bogus
one_error "unregister: unexpected argument '7'" unregister --job 5 7
one_error "dump: 'abc' is not a pid" dump -t abc -D "$T/d"
one_error "dump: unknown option '--bogus'" dump --bogus
one_error "dump: option '-t' needs an argument" dump -t
one_error "dump: unexpected argument 'extra'" dump -t 1 -D "$T/d" extra
one_error "restore: unknown option '-x'" restore -x
one_error "restore: option '--job' needs an argument" restore --job
one_error "restore: --pidns takes auto, never or always" restore -D "$T/d" --pidns maybe
one_error "check: unexpected argument '-x'" check -x
one_error "demo: unexpected argument '-q'" demo -q
one_error "image: missing subcommand" image
one_error "image: unknown subcommand 'shw'" image shw "$T"
one_error "image show: usage: ckptctl image show DIR\|FILE" image show
one_error "image x: 'pss' is not ps, fds or mems" image x "$T" pss
# No agent: list reads storage; a job it has no sets of is an error.
echo "storage.base = $T/base" >"$CKPT_CONF"
one_error "checkpoint list: job 5: not known to this node's ckptd, and no sets in $T/base/5" \
	checkpoint list 5
echo "ok: bad arguments, each one line and a non-zero exit"

# What the agent refuses.
export CKPT_SOCKET=$T/ckptd.sock
id ckpt-test1 >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false ckpt-test1
id ckpt-test2 >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false ckpt-test2
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }
mkdir -m 755 "$T/base"
"$CKPTD" -f -s "$CKPT_SOCKET" -r "$T/run" >"$T/agent.log" 2>&1 </dev/null 251>&- &
AGENT_PID=$!
for _ in $(seq 100); do "$CKPTCTL" status >/dev/null 2>&1 && break; sleep 0.05; done
"$CKPTCTL" status >/dev/null || fail "ckptd did not start"
one_error "status: job 777 is not known to this node's ckptd" status 777
one_error "job 777: no operation running" cancel 777
one_error "job 777 is not registered" unregister --job 777
one_error "job 777 is not registered with this agent" checkpoint create 777
for verb in able error; do
	one_error "checkpoint $verb: job 777 is not registered with this node's ckptd" \
		checkpoint $verb 777
done
exits 2 checkpoint able 777
one_error "checkpoint list: job 777: not known to this node's ckptd, and no sets in $T/base/777" \
	checkpoint list 777

# A job of ckpt-test1 with its own --checkpoint-dir, checkpointed, then
# ended: its sets are listed from that directory, not storage.base.
u1=$(id -u ckpt-test1)
install -d -o ckpt-test1 -g ckpt-test1 -m 755 "$T/u"
install -o ckpt-test1 -g ckpt-test1 -m 644 /dev/null "$T/u/c.log"
setpriv --reuid=ckpt-test1 --regid=ckpt-test1 --init-groups -- env -C "$T/u" "$COUNTER" \
	>>"$T/u/c.log" 2>&1 </dev/null 251>&- &
PIDS+=("$!")
pid=$!
"$CKPTCTL" register --job 601 --step 4294967291 --uid "$u1" --dir "$T/u/ck" "$pid" ||
	fail "register 601"
grep -q "job 601: register batch step of uid $u1" "$T/agent.log" ||
	fail "the agent's log does not name the batch step: $(grep 601 "$T/agent.log")"
as_user ckpt-test1 "$CKPTCTL" checkpoint able 601 >"$T/able" || fail "able 601: exit $?"
grep -qx "job 601: yes" "$T/able" || fail "able 601: $(cat "$T/able")"
as_user ckpt-test1 "$CKPTCTL" checkpoint create 601 >/dev/null || fail "create 601"
"$CKPTCTL" unregister --job 601 || fail "unregister 601"
"$CKPTCTL" status --json | grep -o '"jobs":.*"operations"' | grep -q '"job_id":601' &&
	fail "an ended job in plain status"
"$CKPTCTL" status 601 | grep -Eq "^601 +$u1 +0 +ended" || fail "status 601: $("$CKPTCTL" status 601)"
as_user ckpt-test1 "$CKPTCTL" checkpoint list 601 >"$T/list" || fail "list of an ended job: exit $?"
grep -q "^1 *yes" "$T/list" || fail "list of an ended job: $(cat "$T/list")"
as_user ckpt-test1 "$CKPTCTL" checkpoint list 601 --json | grep -q '"seq":1,"committed":true' ||
	fail "list --json of an ended job"
rc=0
as_user ckpt-test1 "$CKPTCTL" checkpoint able 601 >"$T/able" || rc=$?
[ $rc = 1 ] || fail "able of an ended job: exit $rc, not 1"
grep -q "^job 601: no: it ended on this node" "$T/able" || fail "able of an ended job: $(cat "$T/able")"
# Another user's ended job is not theirs to see.
as_user ckpt-test2 "$CKPTCTL" checkpoint list 601 >"$T/out" 2>"$T/err" && fail "ckpt-test2 listed 601"
grep -q "^ckptctl: checkpoint list: job 601: not known" "$T/err" && [ "$(wc -l <"$T/err")" = 1 ] ||
	fail "ckpt-test2's list: $(cat "$T/err")"
echo "ok: agent refusals in one line; an ended job's sets are listed from its directory"

# Without CKPT_SOCKET, ckptctl connects where agent.socket of ckpt.conf
# says (where ckptd listens), and CKPT_SOCKET wins over it.
cp "$CKPT_CONF" "$T/conf.saved"
echo "agent.socket = $CKPT_SOCKET" >>"$CKPT_CONF"
env -u CKPT_SOCKET "$CKPTCTL" status 601 >"$T/out" 2>&1 || fail "status by agent.socket: $(cat "$T/out")"
grep -Eq "^601 " "$T/out" || fail "status by agent.socket: $(cat "$T/out")"
CKPT_SOCKET=$T/none.sock "$CKPTCTL" status 601 >"$T/out" 2>&1 && fail "agent.socket won over CKPT_SOCKET"
rc=0
env -u CKPT_SOCKET "$CKPTCTL" checkpoint able 601 >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] || fail "able by agent.socket: exit $rc: $(cat "$T/out")"
cp "$T/conf.saved" "$CKPT_CONF"
echo "ok: ckptctl finds ckptd by agent.socket"

# A dump that fails (a generic netlink socket is not supported) leaves no
# empty job directory behind, in storage.base or in the job's
# --checkpoint-dir.
python3 -c 'import socket, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
time.sleep(60)' </dev/null >/dev/null 2>&1 251>&- &
bad=$!
PIDS+=("$bad")
for _ in $(seq 100); do
	ls -l /proc/"$bad"/fd 2>/dev/null | grep -q 'socket:' && break
	sleep 0.1
done
"$CKPTCTL" register --job 602 "$bad" || fail "register 602"
"$CKPTCTL" register --job 603 --dir "$T/ck3" "$bad" || fail "register 603"
for j in 602 603; do
	one_error "pid $bad: fd [0-9]*: .*not supported" checkpoint create $j
done
# able says no (exit 1, not a -errno), and why, on stdout.
exits 1 checkpoint able 602
grep -Eq "^job 602: no: pid $bad: fd [0-9]*: .*not supported" "$T/out" ||
	fail "able 602: $(cat "$T/out")"
exits 1 checkpoint able 602 --json
grep -q '"able":false,"reason":"pid' "$T/out" || fail "able 602 --json: $(cat "$T/out")"
[ ! -e "$T/base/602" ] || fail "a failed dump left $T/base/602: $(ls -la "$T/base/602")"
[ ! -e "$T/ck3/603" ] || fail "a failed dump left $T/ck3/603: $(ls -la "$T/ck3/603")"
echo "ok: failed dumps leave no job directory"

# A restore's time in status is the restore's, not the time its tree ran.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
as_user ckpt-test1 "$CKPTCTL" restore --job 601 --pidfile "$T/u/rpid" >/dev/null 2>&1 &
waiter=$!
for _ in $(seq 100); do [ -s "$T/u/rpid" ] && break; sleep 0.1; done
[ -s "$T/u/rpid" ] || fail "the restore did not run"
sleep 3
kill "$(cat "$T/u/rpid")"
wait "$waiter" || true
"$CKPTCTL" status 601 >"$T/status" || fail "status 601 after the restore"
line=$(grep " restore " "$T/status" | tail -n 1)
[[ $line =~ restored\ in\ ([0-9.]+)\ s,\ the\ tree\ ran\ ([0-9.]+)\ s ]] ||
	fail "status does not tell the restore's time apart: $line"
awk -v r="${BASH_REMATCH[1]}" -v t="${BASH_REMATCH[2]}" 'BEGIN { exit !(r < t && t >= 2.5) }' ||
	fail "restore ${BASH_REMATCH[1]} s, ran ${BASH_REMATCH[2]} s: $line"
echo "ok: $line"

# The record of an ended job is forgotten retention.ended_keep_s after
# its end, as its sets are: a second agent that keeps them 1 s.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
echo "retention.ended_keep_s = 1" >>"$CKPT_CONF"
"$CKPTD" -f -s "$CKPT_SOCKET" -r "$T/run2" >>"$T/agent.log" 2>&1 </dev/null 251>&- &
AGENT_PID=$!
for _ in $(seq 100); do "$CKPTCTL" status >/dev/null 2>&1 && break; sleep 0.05; done
"$CKPTCTL" register --job 605 "$bad" && "$CKPTCTL" unregister --job 605 || fail "605"
"$CKPTCTL" status 605 | grep -Eq "^605 .* ended" || fail "605 not ended: $("$CKPTCTL" status 605)"
sleep 2
one_error "status: job 605 is not known to this node's ckptd" status 605
echo "ok: the record of an ended job is forgotten after retention.ended_keep_s"
