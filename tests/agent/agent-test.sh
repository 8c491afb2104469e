#!/usr/bin/env bash
# Integration tests of ckptd: a real agent on a private socket, real users,
# real processes.  Usage: agent-test.sh CASE CKPTD CKPTCTL COUNTER BUSY [STRESS]
#   users    a user checkpoints and restores their own process through
#            ckptctl; another user is refused, and the refusal is logged
#   two      two jobs are dumped at once
#   kill9    kill -9 of ckptd at 20 random moments during dumps: the target
#            keeps running correctly, a restarted ckptd cleans up
#   stress   malformed/oversized frames, clients that hang up, 1000
#            requests from 50 clients: the agent serves on, memory flat
#   register jobs registered by root on behalf of a user, checkpointed by
#            job id; the registration survives an agent restart
#   munge    the protocol over TCP with munge credentials
#   churn    a user's check-only on a tree whose children come and go
set -euo pipefail
CASE=$1 CKPTD=$2 CKPTCTL=$3 COUNTER=$4 BUSY=$5 STRESS=${6:-}

. "$(dirname "$0")/../lib/agent-env.sh"
agent_env ckpt-agent
user_copy CKPTD CKPTCTL COUNTER BUSY
[ -n "$STRESS" ] && cp "$STRESS" "$T/bin/"
AGENT_PID=
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; [ -f "$T/agent.log" ] && tail -20 "$T/agent.log"; exit 1; }

start_agent() {
	"$CKPTD" -f -s "$CKPT_SOCKET" -r "$T/run" "$@" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 100); do
		"$CKPTCTL" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "ckptd did not start"
}

ensure_user() {
	id "$1" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false "$1"
}

as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }
# In the background, $! must be the user's process itself, not a subshell.
# Its cwd is $T: a checkout may be closed to other users, and a restore
# (as the user) goes back to the cwd.
spawn_as() { local u=$1 log=$2; shift 2
	setpriv --reuid="$u" --regid="$u" --init-groups -- env -C "$T" "$@" >>"$log" 2>&1 \
		</dev/null 251>&- &
	SPAWNED=$!; }

# A counter of user U logging to LOG (owned by U): its pid in SPAWNED.
user_counter() {
	install -o "$1" -g "$1" -m 644 /dev/null "$2"
	spawn_as "$1" "$2" "$COUNTER"
	PIDS+=("$SPAWNED")
}

# Wait until the counter's log has at least N lines.
wait_lines() {
	for _ in $(seq 100); do
		[ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "$1: fewer than $2 lines"
}

last_count() { tail -1 "$1" | awk '{print $2}'; }

case_users() {
	ensure_user ckpt-test1
	ensure_user ckpt-test2
	start_agent
	install -d -o ckpt-test1 -g ckpt-test1 -m 700 "$T/u1"
	install -d -o ckpt-test2 -g ckpt-test2 -m 700 "$T/u2"
	user_counter ckpt-test1 "$T/u1.log"
	local pid=$SPAWNED
	wait_lines "$T/u1.log" 3
	# Another user: refused, logged, the process untouched.
	if as_user ckpt-test2 "$CKPTCTL" dump -t "$pid" -D "$T/u2/img" 2>"$T/u2.err"; then
		fail "uid ckpt-test2 could dump ckpt-test1's process"
	fi
	grep -q "not owned by uid" "$T/u2.err" || fail "no reason given: $(cat "$T/u2.err")"
	grep -q "dump refused for uid $(id -u ckpt-test2)" "$T/agent.log" || fail "refusal not logged"
	# A tree with a task the user may not read (here: not dumpable, as a
	# set-id program would be) is refused by the engine once frozen, and
	# runs on.
	spawn_as ckpt-test1 "$T/nd.log" python3 -c '
import ctypes, os, time
if os.fork() == 0:
    ctypes.CDLL(None).prctl(4, 0)  # PR_SET_DUMPABLE
print("ready", flush=True)
time.sleep(60)'
	local nd=$SPAWNED
	PIDS+=("$nd")
	wait_lines "$T/nd.log" 2
	if as_user ckpt-test1 "$CKPTCTL" dump -t "$nd" -D "$T/u1/nd" -R 2>"$T/nd.err"; then
		fail "a tree with a non-dumpable task was dumped for a user"
	fi
	grep -q "not dumpable" "$T/nd.err" || fail "unclear refusal: $(cat "$T/nd.err")"
	kill -0 "$nd" && [ "$(tracer_of "$nd")" = 0 ] || fail "the refused tree did not run on"
	# Without an agent a user is told to use one.
	if CKPT_SOCKET=none as_user ckpt-test1 "$CKPTCTL" dump -t "$pid" -D "$T/u1/x" 2>"$T/u1.err"; then
		fail "a user dumped without the agent"
	fi
	grep -q "ckptd is not running" "$T/u1.err" || fail "unclear error: $(cat "$T/u1.err")"
	# The owner: dump (the process goes away), then restore.
	as_user ckpt-test1 "$CKPTCTL" dump -t "$pid" -D "$T/u1/img" || fail "owner's dump failed"
	local before lines
	before=$(last_count "$T/u1.log")
	lines=$(wc -l <"$T/u1.log")
	[ "$(stat -c %U "$T/u1/img/manifest")" = ckpt-test1 ] || fail "images not owned by the user"
	kill -0 "$pid" 2>/dev/null && fail "dumped process still running"
	# Another user may not restore the owner's images either.
	if as_user ckpt-test2 "$CKPTCTL" restore -D "$T/u1/img" -d 2>"$T/u2.err"; then
		fail "ckpt-test2 restored ckpt-test1's images"
	fi
	as_user ckpt-test1 "$CKPTCTL" restore -D "$T/u1/img" -d --pidfile "$T/u1/pid" ||
		fail "owner's restore failed"
	pid=$(cat "$T/u1/pid")
	PIDS+=("$pid")
	wait_lines "$T/u1.log" $((lines + 3))
	[ "$(stat -c %U /proc/"$pid")" = ckpt-test1 ] || fail "restored process not the user's"
	local after
	after=$(sed -n "$((lines + 1))p" "$T/u1.log" | awk '{print $2}')
	[ "$after" = $((before + 1)) ] || fail "restored counter went on at $after, not $((before + 1))"
	grep "state ok" "$T/u1.log" >/dev/null || fail "counter state broken"
	# A root-owned set cannot be restored by the user (credentials).
	"$COUNTER" >"$T/r.log" 2>&1 </dev/null 251>&- &
	PIDS+=("$!")
	wait_lines "$T/r.log" 2
	"$CKPTCTL" dump -t "$!" -D "$T/rootimg" || fail "root's dump failed"
	chown -R ckpt-test1 "$T/rootimg"
	if as_user ckpt-test1 "$CKPTCTL" restore -D "$T/rootimg" -d 2>"$T/u1.err"; then
		fail "a user restored root's process"
	fi
	grep -q "not the restoring user's" "$T/u1.err" || fail "unclear error: $(cat "$T/u1.err")"
	"$CKPTCTL" status | grep -q "restore" || fail "status shows no operations"
	echo PASS
}

case_two() {
	start_agent
	local p1 p2
	"$COUNTER" >"$T/a.log" 2>&1 </dev/null 251>&- &
	p1=$!
	"$COUNTER" >"$T/b.log" 2>&1 </dev/null 251>&- &
	p2=$!
	PIDS+=("$p1" "$p2")
	wait_lines "$T/a.log" 2
	wait_lines "$T/b.log" 2
	"$CKPTCTL" dump -t "$p1" -D "$T/a" -R &
	local d1=$!
	"$CKPTCTL" dump -t "$p2" -D "$T/b" -R &
	local d2=$!
	wait $d1 || fail "first dump failed"
	wait $d2 || fail "second dump failed"
	[ -f "$T/a/manifest" ] && [ -f "$T/b/manifest" ] || fail "a set is missing"
	# The same process twice at once: one of the two is refused.
	"$BUSY" >/dev/null 2>&1 </dev/null 251>&- &
	local b=$!
	PIDS+=("$b")
	sleep 1
	"$CKPTCTL" dump -t "$b" -D "$T/c1" -R 2>"$T/c1.err" &
	local e1=$!
	"$CKPTCTL" dump -t "$b" -D "$T/c2" -R 2>"$T/c2.err" &
	local e2=$!
	local r1=0 r2=0
	wait $e1 || r1=$?
	wait $e2 || r2=$?
	if [ $r1 != 0 ] || [ $r2 != 0 ]; then
		grep -q "already running" "$T/c1.err" "$T/c2.err" || fail "unclear refusal"
	fi
	[ "$("$CKPTCTL" status --json | grep -o '"kind":"dump"' | wc -l)" -ge 3 ] ||
		fail "status --json lists fewer dumps"
	echo PASS
}

tracer_of() { awk '/^TracerPid:/ {print $2}' /proc/"$1"/status; }
state_of() { awk '/^State:/ {print $2}' /proc/"$1"/status; }

case_kill9() {
	start_agent
	CR_READY=$T/busy.ready CR_DIR=$T "$BUSY" >"$T/busy.log" 2>&1 </dev/null 251>&- &
	local b=$!
	PIDS+=("$b")
	for _ in $(seq 100); do [ -s "$T/busy.ready" ] && break; sleep 0.1; done
	local killed=0 committed=0 halfway=0
	for i in $(seq 20); do
		rm -rf "$T/img"
		"$CKPTCTL" dump -t "$b" -D "$T/img" -R >/dev/null 2>&1 &
		local client=$!
		sleep "0.$(printf '%03d' $((RANDOM % 400)))"
		kill -9 "$AGENT_PID" 2>/dev/null && killed=$((killed + 1))
		wait "$AGENT_PID" 2>/dev/null || true
		wait "$client" 2>/dev/null || true
		# The worker died with the agent; the parasite cured itself.
		for _ in $(seq 50); do [ "$(tracer_of "$b")" = 0 ] && break; sleep 0.1; done
		[ "$(tracer_of "$b")" = 0 ] || fail "round $i: target still traced"
		case "$(state_of "$b")" in t|T) fail "round $i: target left stopped" ;; esac
		[ ! -f "$T/img/manifest" ] && ls "$T/img" 2>/dev/null | grep -q . && halfway=$((halfway + 1))
		start_agent
		if [ -f "$T/img/manifest" ]; then
			committed=$((committed + 1))
		elif ls "$T/img" 2>/dev/null | grep -q .; then
			fail "round $i: the restarted agent left $(ls "$T/img" | head -3)"
		fi
	done
	echo "kills: $killed, half-written sets cleaned by the next agent: $halfway," \
		"dumps that committed before the kill: $committed"
	[ "$halfway" -ge 3 ] || fail "only $halfway kills landed inside a dump"
	kill -TERM "$b"
	local rc=0
	wait "$b" || rc=$?
	[ $rc = 0 ] || fail "target's own check failed ($rc): $(tail -3 "$T/busy.log")"
	echo PASS
}

case_stress() {
	start_agent
	"$T/bin/$(basename "$STRESS")" "$CKPT_SOCKET" "$AGENT_PID" || fail "stress"
	"$CKPTCTL" status >/dev/null || fail "agent not serving after the stress"
	# A clean stop; in a sanitizer build, LeakSanitizer checks it too.
	kill -TERM "$AGENT_PID"
	local rc=0
	wait "$AGENT_PID" || rc=$?
	AGENT_PID=
	[ $rc = 0 ] || fail "ckptd exited with $rc after SIGTERM"
	[ -e "$CKPT_SOCKET" ] && fail "socket left behind"
	echo PASS
}

case_register() {
	ensure_user ckpt-test1
	start_agent
	install -d -o ckpt-test1 -g ckpt-test1 -m 700 "$T/j"
	user_counter ckpt-test1 "$T/j.log"
	local pid=$SPAWNED
	wait_lines "$T/j.log" 2
	# A symlink already in the job's directory (an admin's /home ->
	# /export/home) is resolved at registration: the user's worker later
	# refuses symlinks on its way.
	ln -s "$T/j" "$T/jlink"
	"$CKPTCTL" register --job 4242 --step 0 --uid "$(id -u ckpt-test1)" --policy manual \
		--dir "$T/jlink/img/sub" "$pid" || fail "register"
	"$CKPTCTL" status --json 4242 | grep -q "\"dir\":\"$T/j/img/sub\"" ||
		fail "the job's dir is not resolved: $("$CKPTCTL" status --json 4242)"
	as_user ckpt-test1 "$CKPTCTL" checkpoint create 4242 || fail "checkpoint through a resolved dir"
	[ -f "$T/j/img/sub/4242/1/manifest" ] || fail "no set in the job's dir: $(find "$T/j")"
	# The registration outlives the agent.
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	start_agent
	as_user ckpt-test1 "$CKPTCTL" status --json 4242 | grep -q '"job_id":4242' ||
		fail "job not visible to its user after an agent restart"
	ensure_user ckpt-test2
	as_user ckpt-test2 "$CKPTCTL" status --json 4242 | grep -q '"job_id":4242' &&
		fail "job visible to another user"
	as_user ckpt-test2 "$CKPTCTL" cancel 4242 2>/dev/null && fail "another user cancelled"
	as_user ckpt-test1 "$CKPTCTL" unregister --job 4242 --step 1 2>/dev/null || true
	as_user ckpt-test2 "$CKPTCTL" unregister --job 4242 2>/dev/null &&
		fail "another user unregistered the job"
	as_user ckpt-test1 "$CKPTCTL" unregister --job 4242 || fail "owner could not unregister"
	"$CKPTCTL" status --json | grep -q '"job_id":4242' && fail "job still registered"
	echo PASS
}

case_munge() {
	command -v munge >/dev/null && [ -x /usr/sbin/munged ] || { echo "SKIP: no munge"; exit 77; }
	if ! pgrep -x munged >/dev/null; then
		[ -f /etc/munge/munge.key ] || { mkdir -p /etc/munge &&
			dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null &&
			chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key; }
		mkdir -p /run/munge && chown munge:munge /run/munge
		runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
	fi
	local port=$((20000 + RANDOM % 20000))
	start_agent --tcp "$port"
	"$T/bin/$(basename "$STRESS")" --tcp "$port" || fail "tcp"
	echo PASS
}

# restore without -d through the agent: ckptctl stands for the tree.
case_attach() {
	start_agent
	local p r rc
	"$COUNTER" >"$T/a.log" 2>&1 </dev/null 251>&- &
	p=$!
	wait_lines "$T/a.log" 2
	"$CKPTCTL" dump -t "$p" -D "$T/img" -R || fail "dump"
	kill -9 "$p"
	wait "$p" 2>/dev/null || true
	# Signals to ckptctl reach the restored root; its status is ckptctl's.
	"$CKPTCTL" restore -D "$T/img" --pidfile "$T/pid" &
	local c=$!
	for _ in $(seq 400); do [ -s "$T/pid" ] && break; sleep 0.05; done
	r=$(cat "$T/pid")
	kill -0 "$r" || fail "no restored root"
	kill -TERM "$c"
	rc=0
	wait "$c" || rc=$?
	[ $rc = 143 ] || fail "ckptctl exited $rc, not 143 (the root's SIGTERM)"
	kill -0 "$r" 2>/dev/null && fail "root survived the forwarded SIGTERM"
	# A client killed outright takes the tree with it.
	rm -f "$T/pid"
	"$CKPTCTL" restore -D "$T/img" --pidfile "$T/pid" &
	c=$!
	for _ in $(seq 400); do [ -s "$T/pid" ] && break; sleep 0.05; done
	r=$(cat "$T/pid")
	kill -9 "$c"
	for _ in $(seq 50); do kill -0 "$r" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$r" 2>/dev/null && fail "restored tree outlived its ckptctl"
	grep -q "the client went away" "$T/agent.log" || fail "not logged"
	# A user's attached tree ends when the agent is killed (its worker,
	# which runs as the user, still dies with the agent).
	ensure_user ckpt-test1
	install -d -o ckpt-test1 -g ckpt-test1 -m 700 "$T/u"
	user_counter ckpt-test1 "$T/u.log"
	wait_lines "$T/u.log" 2
	as_user ckpt-test1 "$CKPTCTL" dump -t "$SPAWNED" -D "$T/u/img" || fail "user dump"
	as_user ckpt-test1 "$CKPTCTL" restore -D "$T/u/img" --pidfile "$T/u/pid" &
	c=$!
	for _ in $(seq 400); do [ -s "$T/u/pid" ] && break; sleep 0.05; done
	r=$(cat "$T/u/pid")
	kill -0 "$r" || fail "no restored user tree"
	kill -9 "$AGENT_PID"
	for _ in $(seq 50); do kill -0 "$r" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$r" 2>/dev/null && fail "a user's restored tree outlived the agent"
	wait "$c" 2>/dev/null || true
	echo PASS
}

# ckptctl checkpoint verbs on a registered job (without Slurm: create,
# list, able, error, disable/enable; vacate/restart are in tests/slurm),
# and cancel of a running dump.
case_verbs() {
	ensure_user ckpt-test1
	local u1
	u1=$(id -u ckpt-test1)
	mkdir -m 755 "$T/base"
	echo "storage.base = $T/base" >"$CKPT_CONF"
	start_agent
	user_counter ckpt-test1 "$T/j.log"
	local pid=$SPAWNED
	wait_lines "$T/j.log" 2
	"$CKPTCTL" register --job 501 --uid "$u1" "$pid" || fail "register"
	as_user ckpt-test1 "$CKPTCTL" checkpoint able 501 || fail "able"
	as_user ckpt-test1 "$CKPTCTL" checkpoint create 501 || fail "create"
	as_user ckpt-test1 "$CKPTCTL" checkpoint create 501 || fail "second create"
	kill -0 "$pid" || fail "create stopped the job"
	[ "$(stat -c %U "$T/base/501/1")" = ckpt-test1 ] || fail "set not owned by the job's user"
	as_user ckpt-test1 "$CKPTCTL" checkpoint list 501 | grep -q "^2 *yes" || fail "list"
	as_user ckpt-test1 "$CKPTCTL" checkpoint list 501 --json | grep -q '"seq":2,"committed":true' ||
		fail "list --json"
	as_user ckpt-test1 "$CKPTCTL" checkpoint able 501 --json | grep -q '"able":true' ||
		fail "able --json"
	ensure_user ckpt-test2
	as_user ckpt-test2 "$CKPTCTL" checkpoint create 501 2>/dev/null && fail "another user's create"
	as_user ckpt-test1 "$CKPTCTL" checkpoint disable 501 || fail "disable"
	as_user ckpt-test1 "$CKPTCTL" checkpoint able 501 >/dev/null && fail "able while disabled"
	as_user ckpt-test1 "$CKPTCTL" checkpoint create 501 2>"$T/e" && fail "create while disabled"
	grep -q disabled "$T/e" || fail "no reason: $(cat "$T/e")"
	as_user ckpt-test1 "$CKPTCTL" checkpoint enable 501 || fail "enable"
	as_user ckpt-test1 "$CKPTCTL" checkpoint error 501 | grep -q "no error" || fail "error"
	# The latest set restores the job as it was at the second create.
	kill -9 "$pid"
	install -d -o ckpt-test1 -g ckpt-test1 -m 700 "$T/j"
	as_user ckpt-test1 "$CKPTCTL" restore --job 501 -d --pidfile "$T/j/pid" || fail "restore --job"
	PIDS+=("$(cat "$T/j/pid")")
	"$CKPTCTL" status --json 501 | grep -q "\"pids\":\[$(cat "$T/j/pid")\]" ||
		fail "the job's tree is not the restored one"
	# A checkpoint that fails (an unsupported netlink socket: generic
	# netlink, whose families may keep state of the socket) is kept as
	# the job's error.
	python3 -c 'import socket, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
time.sleep(60)' </dev/null >/dev/null 2>&1 &
	local bad=$!
	PIDS+=("$bad")
	# Its socket exists before it is dumped (a loaded machine is slow).
	for _ in $(seq 100); do
		ls -l /proc/"$bad"/fd 2>/dev/null | grep -q 'socket:' && break
		sleep 0.1
	done
	"$CKPTCTL" register --job 502 "$bad" || fail "register 502"
	# able runs the dump's checks on the running tree: no, naming the fd,
	# nothing stopped, and not an error of the job's checkpoints.
	"$CKPTCTL" checkpoint able 502 >"$T/a" && fail "a job with a netlink socket is able"
	grep -q "^job 502: no: pid $bad: fd [0-9]*: .*not supported" "$T/a" || fail "able: $(cat "$T/a")"
	"$CKPTCTL" checkpoint able 502 --json >"$T/a" && fail "job 502 is able (--json)"
	grep -q '"able":false,"reason":"pid '"$bad"': fd' "$T/a" || fail "able --json: $(cat "$T/a")"
	"$CKPTCTL" checkpoint error 502 | grep -q "no error" || fail "able recorded an error"
	"$CKPTCTL" checkpoint create 502 2>/dev/null && fail "dump of a netlink socket"
	"$CKPTCTL" checkpoint error 502 | grep -q "netlink\|not supported" ||
		fail "error not kept: $("$CKPTCTL" checkpoint error 502)"
	kill -0 "$bad" || fail "failed dump killed the job"
	# Multi-node jobs wait for the coordinator: refused with that reason.
	"$CKPTCTL" register --job 504 --nodes 2 "$bad" || fail "register 504"
	"$CKPTCTL" checkpoint able 504 >"$T/a" && fail "a 2-node job is able"
	grep -q "2 nodes" "$T/a" || fail "able of a 2-node job: $(cat "$T/a")"
	"$CKPTCTL" checkpoint create 504 2>"$T/e" && fail "a 2-node job was dumped"
	grep -q coordinator "$T/e" || fail "unclear: $(cat "$T/e")"
	# cancel: the dump stops, the job runs on untraced.
	CR_READY=$T/busy.ready CR_DIR=$T "$BUSY" >"$T/busy.log" 2>&1 </dev/null 251>&- &
	local b=$!
	PIDS+=("$b")
	for _ in $(seq 100); do [ -s "$T/busy.ready" ] && break; sleep 0.1; done
	"$CKPTCTL" register --job 503 "$b" || fail "register 503"
	local cancelled=0
	for _ in $(seq 10); do
		"$CKPTCTL" dump --job 503 -R 2>"$T/c.err" &
		local d=$!
		sleep 0.15
		if "$CKPTCTL" cancel 503 2>/dev/null; then
			wait "$d" && fail "a cancelled dump succeeded"
			cancelled=1
			break
		fi
		wait "$d" || true
	done
	[ $cancelled = 1 ] || fail "no cancel landed during a dump"
	for _ in $(seq 50); do [ "$(tracer_of "$b")" = 0 ] && break; sleep 0.1; done
	[ "$(tracer_of "$b")" = 0 ] || fail "cancelled target still traced"
	kill -TERM "$b"
	local rc=0
	wait "$b" || rc=$?
	[ $rc = 0 ] || fail "target's own check after cancel failed ($rc)"
	echo PASS
}

# --checkpoint=periodic: the agent checkpoints the job every interval and
# keeps the last retention.keep sets.
case_periodic() {
	mkdir -m 755 "$T/base"
	printf 'storage.base = %s\nagent.interval_unit_s = 1\nretention.keep = 2\n' "$T/base" \
		>"$CKPT_CONF"
	start_agent
	"$COUNTER" >"$T/p.log" 2>&1 </dev/null 251>&- &
	local p=$!
	PIDS+=("$p")
	wait_lines "$T/p.log" 2
	"$CKPTCTL" register --job 601 --policy periodic --interval 1 "$p" || fail "register"
	for _ in $(seq 100); do [ -d "$T/base/601/4" ] && break; sleep 0.1; done
	[ -d "$T/base/601/4" ] || fail "no 4th periodic checkpoint: $(ls "$T/base/601" 2>&1)"
	sleep 0.5
	local kept
	kept=$(ls "$T/base/601" | grep -c '^[0-9]*$')
	[ "$kept" -le 2 ] || fail "$kept sets kept, retention.keep is 2"
	kill -0 "$p" || fail "periodic checkpoints stopped the job"
	grep -q "periodic checkpoint" "$T/agent.log" || fail "not logged"
	echo PASS
}

# dump --check-only by a user on a tree whose children come and go (a
# job's shell loop: `sleep 0.1` every turn): a child that exits between
# the listing and the owner check has no memory, so the kernel makes its
# /proc files root's, and a gone one has none; neither is a task the
# user does not own.  Nothing is frozen, so the dump itself checks again.
# The state of the pid an error line names, as seen now.
proc_state() {
	local x
	x=$(grep -o "pid [0-9]*" "$1" | head -n 1 | cut -d' ' -f2)
	[ -n "$x" ] || return 0
	echo "pid $x now: $(stat -c 'status owned by %u' /proc/"$x"/status 2>&1)," \
		"$(grep -E '^(Name|State|PPid|Uid):' /proc/"$x"/status 2>&1 | tr '\n\t' '  ')"
}

case_churn() {
	ensure_user ckpt-test1
	start_agent
	install -o ckpt-test1 -g ckpt-test1 -m 644 /dev/null "$T/churn.log"
	spawn_as ckpt-test1 "$T/churn.log" bash -c 'while :; do /bin/true; done'
	PIDS+=("$SPAWNED")
	local pid=$SPAWNED i
	for _ in $(seq 50); do pgrep -P "$pid" >/dev/null && break; sleep 0.05; done
	for i in $(seq 200); do
		as_user ckpt-test1 "$CKPTCTL" dump -t "$pid" --check-only >"$T/c.out" 2>&1 ||
			fail "check $i of a churning tree: $(cat "$T/c.out")"
	done
	kill -0 "$pid" || fail "the loop ended"
	# ... and what the dump refuses is still refused, by name, every time.
	install -o ckpt-test1 -g ckpt-test1 -m 644 /dev/null "$T/nl.log"
	spawn_as ckpt-test1 "$T/nl.log" python3 -c 'import socket, subprocess
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
print("ready", flush=True)
while True:
    subprocess.run(["/bin/true"])'
	PIDS+=("$SPAWNED")
	pid=$SPAWNED
	for _ in $(seq 100); do grep -q ready "$T/nl.log" && break; sleep 0.05; done
	for i in $(seq 20); do
		as_user ckpt-test1 "$CKPTCTL" dump -t "$pid" --check-only >"$T/c.out" 2>&1 &&
			fail "check $i: a netlink socket went through"
		grep -q "pid $pid: fd [0-9]*: .*not supported" "$T/c.out" ||
			fail "check $i of a churning tree with a netlink socket: $(cat "$T/c.out")" \
				"(root $pid; $(proc_state "$T/c.out"))"
	done
	echo PASS
}

"case_$CASE"
