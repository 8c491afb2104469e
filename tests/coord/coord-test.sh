#!/usr/bin/env bash
# The coordinator (docs/coordinator.md) on two "nodes" of this machine:
# two ckptd, each with its own socket and run dir, sharing one storage
# base; a job 700 registered on both with --nodes 2, its tree on node n0
# the server of a TCP counter stream, on n1 its client (tcp-counter.c);
# ckpt-coord run as a PMIx job step by mpirun -n 2, rank R talking to nR.
# Usage: coord-test.sh CASE CKPTD CKPTCTL CKPT-COORD TCP-COUNTER COORD-RPC
#   pair          create: both trees frozen before either is dumped, one
#                 set naming both parts, both run on; vacate: both end;
#                 each part restored by its node's ckptd: the stream goes on
#                 with no number lost or repeated and no reset
#   pair_user     the same, the job and its trees the user ckpt-test1's,
#                 the coordinator run as that user
#   agent_killed  node n1's ckptd killed -9 between the freeze and the
#                 dump: every tree thawed and running, no set committed
#   agent_killed_written  the same once its part is written, before the
#                 commit: caught by the "ready" fence, nothing committed
#   tree_exits    node n1's tree ends before the freeze: a clear error
#                 naming n1, node n0's tree thawed and running
#   coord_killed  a coordinator killed -9 between phases: both thawed
#   coord_killed_committed  killed -9 once the set is committed: the set
#                 stands whole, both trees resume
#   hold_timeout  the coordinator silent past --hold-timeout: both nodes
#                 abort on their own, both trees thawed
#   refusals      a user's held dump of another's job, a bad part name, a
#                 commit of another's job or of parts that are not there,
#                 a gate word with no dump, crafted multi-node manifests:
#                 each refused in one line, nothing stopped or written
set -euo pipefail
CASE=$1 CKPTD=$2 CKPTCTL=$3 COORD=$4 COUNTER=$5 RPC=$6

command -v mpirun >/dev/null || { echo "SKIP: no mpirun (OpenMPI)"; exit 77; }
. "$(dirname "$0")/../lib/agent-env.sh"
agent_env ckpt-coord
user_copy CKPTD CKPTCTL COORD COUNTER RPC
JOB=700
PORT=$((20000 + $$ % 20000))
AGENTS=() PIDS=()

cleanup() {
	for p in "${PIDS[@]}" "${AGENTS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$T"/n*.log "$T"/coord.out "$T"/*.tree; do
		[ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }
	done
	exit 1
}

# start_agent N: ckptd of node nN on $T/nN.sock.
start_agent() {
	"$CKPTD" -f -s "$T/n$1.sock" -r "$T/run$1" >>"$T/n$1.log" 2>&1 </dev/null 251>&- &
	AGENTS[$1]=$!
	for _ in $(seq 100); do
		CKPT_SOCKET=$T/n$1.sock "$CKPTCTL" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "ckptd n$1 did not start"
}

as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }

# start_tree ROLE LOG [USER]: a tcp-counter, pid in SPAWNED.
start_tree() {
	local run=()
	[ -n "${3:-}" ] && run=(setpriv --reuid="$3" --regid="$3" --init-groups --)
	install -m 644 ${3:+-o "$3"} /dev/null "$2"
	"${run[@]}" env -C "$T" "$COUNTER" "$1" "$PORT" >>"$2" 2>&1 </dev/null 251>&- &
	SPAWNED=$!
	PIDS+=("$SPAWNED")
}

count_of() { grep -o '^n=[0-9]*' "$1" | tail -1 | cut -d= -f2; }

# wait_count LOG N: the log's count reaches N, with no error.
wait_count() {
	for _ in $(seq 200); do
		grep -q ERROR "$1" && fail "$1: $(grep ERROR "$1")"
		[ "$(count_of "$1" || echo 0)" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.05
	done
	fail "$1: count stuck at $(count_of "$1" || true), wanted $2"
}

running() { # not stopped, not traced: State R or S
	local s
	s=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ "$s" = R ] || [ "$s" = S ]
}

# The job on both nodes: server on n0, client on n1 (USER: theirs).
setup() {
	local user=${1:-} uid=0
	[ -n "$user" ] && uid=$(id -u "$user")
	mkdir -m 755 "$T/base"
	echo "storage.base = $T/base" >"$CKPT_CONF"
	start_agent 0
	start_agent 1
	start_tree server "$T/server.tree" "$user"
	SERVER=$SPAWNED
	grep -q listening "$T/server.tree" 2>/dev/null || sleep 0.3
	start_tree client "$T/client.tree" "$user"
	CLIENT=$SPAWNED
	wait_count "$T/client.tree" 200
	CKPT_SOCKET=$T/n0.sock "$CKPTCTL" register --job $JOB --uid "$uid" --nodes 2 "$SERVER" ||
		fail "register on n0"
	CKPT_SOCKET=$T/n1.sock "$CKPTCTL" register --job $JOB --uid "$uid" --nodes 2 "$CLIENT" ||
		fail "register on n1"
}

# coord [USER] [ckpt-coord options]: mpirun -n 2, rank R on node nR.
coord() {
	local run=()
	if [ "${1:-}" = --user ]; then
		run=(setpriv --reuid="$2" --regid="$2" --init-groups --)
		shift 2
	fi
	"${run[@]}" env -C "$T" mpirun --allow-run-as-root --oversubscribe -n 2 \
		sh -c 'd=$1; shift; exec "$0" --socket "$d/n$PMIX_RANK.sock" --node "n$PMIX_RANK" "$@"' \
		"$COORD" "$T" --job $JOB --timeout 30 "$@" </dev/null 251>&-
}

committed_sets() { find "$T/base/$JOB" -maxdepth 2 -name manifest 2>/dev/null | wc -l; }

check_thawed() {
	running "$SERVER" || fail "server tree not running after $1"
	running "$CLIENT" || fail "client tree not running after $1"
	local c
	c=$(count_of "$T/client.tree")
	wait_count "$T/client.tree" $((c + 100))
	wait_count "$T/server.tree" $((c + 100))
	[ "$(committed_sets)" = 0 ] || fail "a set was committed after $1"
	[ -e "$T/base/$JOB/latest" ] && fail "latest exists after $1"
	return 0
}

case_pair() {
	local user=${1:-} as=()
	setup "$user"
	[ -n "$user" ] && as=(--user "$user")
	coord "${as[@]}" >"$T/coord.out" 2>&1 || fail "create: $(cat "$T/coord.out")"
	cat "$T/coord.out"
	grep -q "set 1 committed, 2 nodes" "$T/coord.out" || fail "no commit line"
	for n in 0 1; do
		grep -q "node n$n (rank $n): resumed, frozen [0-9.]* ms" "$T/coord.out" ||
			fail "no frozen time of n$n"
		[ -f "$T/base/$JOB/1/nodes/n$n/manifest" ] || fail "no part n$n"
	done
	"$CKPTCTL" image decode "$T/base/$JOB/1/manifest" >"$T/m.json" || fail "decode"
	grep -q '"node": *"n0"' "$T/m.json" && grep -q '"node": *"n1"' "$T/m.json" ||
		fail "the set's manifest does not name both parts: $(cat "$T/m.json")"
	[ "$(readlink "$T/base/$JOB/latest")" = 1 ] || fail "latest is not set 1"
	CKPT_SOCKET=$T/n0.sock "${as[@]/--user/as_user}" "$CKPTCTL" checkpoint list $JOB >"$T/list"
	[ "$(grep -c '^[0-9]' "$T/list")" = 1 ] && grep -q '^1 *yes' "$T/list" ||
		fail "list: $(cat "$T/list")"
	# A committed set is never committed again (nor overwritten).
	CKPT_SOCKET=$T/n0.sock "$RPC" commit $JOB 1 n0:0 n1:0 >"$T/rpc.out" 2>&1 &&
		fail "set 1 committed twice"
	grep -q "committed already" "$T/rpc.out" || fail "recommit: $(cat "$T/rpc.out")"
	[ -n "$user" ] && { [ "$(stat -c %U "$T/base/$JOB/1/nodes/n1/manifest")" = "$user" ] ||
		fail "part not the user's"; }
	# Both ends go on from where they were: nothing lost or repeated.
	running "$SERVER" && running "$CLIENT" || fail "a tree does not run after create"
	local c
	c=$(count_of "$T/client.tree")
	wait_count "$T/server.tree" $((c + 100))
	# vacate: both end, set 2; each part restored by its node's ckptd.
	coord "${as[@]}" --vacate >"$T/coord.out" 2>&1 || fail "vacate: $(cat "$T/coord.out")"
	grep -q "set 2 committed" "$T/coord.out" || fail "vacate: no commit line"
	for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || kill -0 "$CLIENT" 2>/dev/null ||
		break; sleep 0.1; done
	kill -0 "$SERVER" 2>/dev/null && fail "server runs after vacate"
	kill -0 "$CLIENT" 2>/dev/null && fail "client runs after vacate"
	c=$(count_of "$T/client.tree")
	for n in 0 1; do
		local r=()
		[ -n "$user" ] && r=(as_user "$user") && install -d -o "$user" -m 700 "$T/p$n"
		[ -z "$user" ] && mkdir -p "$T/p$n"
		CKPT_SOCKET=$T/n$n.sock "${r[@]}" "$CKPTCTL" restore -D "$T/base/$JOB/2/nodes/n$n" -d \
			--pidfile "$T/p$n/pid" || fail "restore of part n$n"
		PIDS+=("$(cat "$T/p$n/pid")")
	done
	wait_count "$T/client.tree" $((c + 300))
	wait_count "$T/server.tree" $((c + 300))
	echo "PASS: the stream went on from $c to $(count_of "$T/client.tree")"
}

case_pair_user() {
	id ckpt-test1 >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false ckpt-test1
	case_pair ckpt-test1
}

case_agent_killed() {
	setup
	CKPT_COORD_PAUSE=${1:-frozen}:3 coord >"$T/coord.out" 2>&1 &
	local cpid=$!
	for _ in $(seq 100); do grep -q "rank 1: paused" "$T/coord.out" 2>/dev/null && break; sleep 0.05; done
	grep -q "rank 1: paused" "$T/coord.out" || fail "the coordinator did not freeze"
	kill -9 "${AGENTS[1]}"
	wait "$cpid" && fail "the coordinator succeeded without node n1"
	cat "$T/coord.out"
	grep -q "checkpoint failed: node n1" "$T/coord.out" || fail "unclear: $(cat "$T/coord.out")"
	check_thawed "n1's ckptd was killed"
	echo "PASS"
}

# Killed once its part is written: the set is not committed all the same.
case_agent_killed_written() {
	case_agent_killed dumped
	grep -q "ready: its ckptd's dump is no longer held" "$T/coord.out" ||
		fail "not caught before the commit"
}

# n0: a server that waits for its peer (it outlives n1's tree); n1: a
# process that ends before the coordinator freezes it.
case_tree_exits() {
	mkdir -m 755 "$T/base"
	echo "storage.base = $T/base" >"$CKPT_CONF"
	start_agent 0
	start_agent 1
	start_tree server "$T/server.tree"
	SERVER=$SPAWNED
	sleep 1000 </dev/null 251>&- &
	local gone=$!
	PIDS+=("$gone")
	CKPT_SOCKET=$T/n0.sock "$CKPTCTL" register --job $JOB --nodes 2 "$SERVER" || fail "register"
	CKPT_SOCKET=$T/n1.sock "$CKPTCTL" register --job $JOB --nodes 2 "$gone" || fail "register"
	kill -9 "$gone"
	wait "$gone" 2>/dev/null || true
	coord >"$T/coord.out" 2>&1 && fail "the coordinator succeeded without n1's tree"
	cat "$T/coord.out"
	grep -q "checkpoint failed: node n1 (rank 1): frozen: .*$gone" "$T/coord.out" ||
		fail "unclear: $(cat "$T/coord.out")"
	running "$SERVER" || fail "the server tree was left frozen"
	grep -q "^TracerPid:[[:space:]]*0$" "/proc/$SERVER/status" || fail "the server is traced"
	[ "$(committed_sets)" = 0 ] || fail "a set was committed"
	echo "PASS"
}

case_coord_killed() {
	setup
	CKPT_COORD_PAUSE=frozen:30 coord >"$T/coord.out" 2>&1 &
	local cpid=$! victim=
	for _ in $(seq 100); do grep -q "rank 1: paused" "$T/coord.out" 2>/dev/null && break; sleep 0.05; done
	victim=$(sed -n 's/.*rank 1: paused after frozen (pid \([0-9]*\)).*/\1/p' "$T/coord.out")
	[ -n "$victim" ] || fail "the coordinator did not freeze"
	kill -9 "$victim"
	wait "$cpid" && fail "the coordinator succeeded"
	cat "$T/coord.out"
	check_thawed "a coordinator was killed"
	echo "PASS"
}

# Killed once the set is committed: the set stands, both parts in it,
# each node's dump ends as a committed one (the trees resume).
case_coord_killed_committed() {
	setup
	CKPT_COORD_PAUSE=committed:30 coord >"$T/coord.out" 2>&1 &
	local cpid=$! victim=
	for _ in $(seq 100); do grep -q "rank 1: paused" "$T/coord.out" 2>/dev/null && break; sleep 0.05; done
	victim=$(sed -n 's/.*rank 1: paused after committed (pid \([0-9]*\)).*/\1/p' "$T/coord.out")
	[ -n "$victim" ] || fail "the coordinator did not commit"
	kill -9 "$victim"
	wait "$cpid" || true
	cat "$T/coord.out"
	running "$SERVER" && running "$CLIENT" || fail "a tree does not run"
	local c
	c=$(count_of "$T/client.tree")
	wait_count "$T/server.tree" $((c + 100))
	[ "$(readlink "$T/base/$JOB/latest")" = 1 ] || fail "set 1 is not the latest"
	for n in 0 1; do
		[ -f "$T/base/$JOB/1/nodes/n$n/manifest" ] || fail "part n$n removed from a committed set"
	done
	grep -q "set 1 is committed: this part stays" "$T/n1.log" || fail "n1 did not go on"
	echo "PASS"
}

case_hold_timeout() {
	setup
	CKPT_COORD_PAUSE=frozen:5 coord --hold-timeout 2 >"$T/coord.out" 2>&1 &&
		fail "the coordinator succeeded past the hold timeout"
	cat "$T/coord.out"
	grep -q "no word from the coordinator within 2 s" "$T/n0.log" ||
		fail "n0 did not time out: $(tail -5 "$T/n0.log")"
	check_thawed "the hold timeout"
	echo "PASS"
}

# refused RPC-ARGS... PATTERN: alice's request refused with PATTERN.
refused() {
	local pat=${*: -1}
	as_user ckpt-test1 env -C "$T" "$RPC" "${@:1:$#-1}" >"$T/rpc.out" 2>&1 &&
		fail "went through: $* ($(cat "$T/rpc.out"))"
	grep -q -- "$pat" "$T/rpc.out" || fail "unclear refusal of $*: $(cat "$T/rpc.out")"
	echo "refused: $1 $2 $3: $(tail -1 "$T/rpc.out")"
}

case_refusals() {
	local u
	for u in ckpt-test1 ckpt-test2; do
		id $u >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/false $u
	done
	mkdir -m 755 "$T/base"
	echo "storage.base = $T/base" >"$CKPT_CONF"
	start_agent 0
	export CKPT_SOCKET=$T/n0.sock
	start_tree server "$T/server.tree" ckpt-test1
	local alice=$SPAWNED
	setpriv --reuid=ckpt-test2 --regid=ckpt-test2 --init-groups -- sleep 1000 </dev/null 251>&- &
	local bob=$!
	PIDS+=("$bob")
	sleep 0.3
	"$CKPTCTL" register --job 710 --uid "$(id -u ckpt-test1)" --nodes 2 "$alice" || fail "register"
	"$CKPTCTL" register --job 711 --uid "$(id -u ckpt-test2)" --nodes 2 "$bob" || fail "register"
	refused held 711 n0 "may not checkpoint job 711"
	grep -q "^TracerPid:[[:space:]]*0$" "/proc/$bob/status" && running "$bob" ||
		fail "bob's process was touched"
	refused held 710 ../x "node name"
	refused held 710 "" "node name"
	# Alice's own held dump, aborted at its first gate: nothing left.
	refused held 710 n0 "aborted"
	running "$alice" || fail "alice's tree left frozen"
	[ -z "$(ls "$T/base/710" 2>/dev/null | grep -v latest || true)" ] || fail "left: $(ls -R "$T/base/710")"
	refused commit 711 1 n0:0 "may not commit"
	refused commit 710 1 n0:0 "No such file"
	mkdir -p "$T/base/710/1" && chown ckpt-test1 "$T/base/710" "$T/base/710/1"
	refused commit 710 1 ../../etc:0 "not a valid node name"
	refused commit 710 1 n0:0 n0:0 "named twice"
	refused commit 710 1 n0:0 "nodes/n0/manifest"
	[ -e "$T/base/710/1/manifest" ] || [ -e "$T/base/710/latest" ] && fail "a set was committed"
	refused gate dump "no held dump waits"
	# Crafted manifests of a set of alice's: parts with a bad or repeated
	# name are refused at load, a multi-node set is never restored whole.
	install -d -o ckpt-test1 -m 700 "$T/a"
	as_user ckpt-test1 env -C "$T" "$CKPTCTL" dump -t "$alice" -D "$T/a/s" -R >/dev/null ||
		fail "alice's dump"
	as_user ckpt-test1 "$CKPTCTL" image decode "$T/a/s/manifest" >"$T/m.json" || fail decode
	local parts
	for parts in "[{'node': '../../etc', 'manifest_crc': 1}]|bad or repeated node name" \
		"[{'node': 'n0', 'manifest_crc': 1}, {'node': 'n0', 'manifest_crc': 2}]|bad or repeated" \
		"[{'node': 'n0', 'manifest_crc': 1}]|a multi-node set: restore each node's part"; do
		python3 -c "import json, sys
d = json.load(open('$T/m.json')); e = d['entries'][0]
e.pop('files', None); e['parts'] = ${parts%%|*}
json.dump(d, open('$T/m2.json', 'w'))" || fail "edit"
		chmod 644 "$T/m2.json"
		rm -f "$T/a/s/manifest"
		as_user ckpt-test1 "$CKPTCTL" image encode "$T/m2.json" "$T/a/s/manifest" ||
			fail "encode"
		as_user ckpt-test1 env -C "$T" "$CKPTCTL" restore -D "$T/a/s" -d >"$T/r.out" 2>&1 &&
			fail "a crafted multi-node manifest restored"
		grep -q "${parts#*|}" "$T/r.out" || fail "crafted: unclear: $(cat "$T/r.out")"
		echo "refused: crafted parts ${parts%%|*}: $(tail -1 "$T/r.out")"
	done
	echo "PASS"
}

"case_$CASE"
