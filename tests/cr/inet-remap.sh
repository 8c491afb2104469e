#!/usr/bin/env bash
# restore --inet-map (docs/files.md, "Connections onto new addresses"):
# a TCP connection between two trees in two network namespaces, each end
# dumped by itself with --tcp-established (the server first: its lock
# holds while the client is dumped), both killed, and both ends restored
# onto new addresses in repair mode with --keep-net-lock, then unlocked:
# the counters both ways go on with no byte lost, duplicated or reset
# (remap-peer.c checks it), and getsockname/getpeername give the new
# addresses.
#   swap    the server comes back in the client's namespace and the
#           client in the server's: 10.78.0.1=10.78.0.2,10.78.0.2=10.78.0.1
#   same    each in its own namespace, onto a second address added there
#   swap6   swap, over IPv6 (fd78::1/64, fd78::2/64)
#   refuse  a NEW not of the restoring namespace, malformed maps: refused
#           by name, nothing restored
#   nomap   swap without --inet-map (what main does): must fail
#   user    swap by the user ckpt-test1 through a ckptd in each namespace
#           (the programs, every ckptctl and net-unlock as the user); the
#           user may not lift root's lock
#   inet-remap.sh MODE CKPTCTL REMAP-PEER [CKPTD]
set -euo pipefail
MODE=$1 CKPTCTL=$2 PEER=$3 CKPTD=${4:-}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: no ip"; exit 77; }
export CKPT_SOCKET=none
T=$(mktemp -d /tmp/ckpt-remap.XXXXXX)
chmod 755 "$T"
# the programs' cwd, which a user's restore reopens as that user (the
# checkout's build directory may be closed to users)
cd "$T"
# D: the programs' directory (results, images); AS: whom they run as
D=$T AS=() SOCK1=none SOCK2=none
if [ "$MODE" = user ]; then
	[ -x "$CKPTD" ] || { echo "SKIP: no ckptd"; exit 77; }
	id ckpt-test1 >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /bin/false ckpt-test1
	AS=(as "$(id -u ckpt-test1):$(id -g ckpt-test1)")
	D=$T/u
	install -d -m 755 -o ckpt-test1 "$D"
	# a checkout may be closed to the user: copies she can run
	install -d -m 755 "$T/bin"
	install -m 755 "$CKPTCTL" "$PEER" "$T/bin/"
	CKPTCTL=$T/bin/$(basename "$CKPTCTL") PEER=$T/bin/$(basename "$PEER")
	export CKPT_CONF=$T/ckpt.conf
	: >"$CKPT_CONF"
	SOCK1=$T/ckptd1.sock SOCK2=$T/ckptd2.sock
fi
ID=$(basename "$T" | tr -dc 'a-zA-Z0-9' | tail -c 6)
NS1=ck-rm$ID-1 NS2=ck-rm$ID-2
PIDS=()
cleanup() {
	local rc=$? p
	# only ours: a pid of the list may have been reused
	for p in "${PIDS[@]}"; do
		if [ "$p" -gt 0 ] && grep -qs "$T" "/proc/$p/cmdline"; then kill -9 "$p" || true; fi
	done
	ip netns del "$NS1" 2>/dev/null || true
	ip netns del "$NS2" 2>/dev/null || true
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# CMD in a namespace, as the programs' user, with that namespace's ckptd
in1() { "$PEER" in "/run/netns/$NS1" "${AS[@]}" exec env CKPT_SOCKET="$SOCK1" "$@"; }
in2() { "$PEER" in "/run/netns/$NS2" "${AS[@]}" exec env CKPT_SOCKET="$SOCK2" "$@"; }

# Two namespaces joined by a veth pair; nothing goes anywhere else.
ip netns add "$NS1"
ip netns add "$NS2"
ip link add "rm$ID-a" netns "$NS1" type veth peer name "rm$ID-b" netns "$NS2"
ip -n "$NS1" addr add 10.78.0.1/24 dev "rm$ID-a"
ip -n "$NS2" addr add 10.78.0.2/24 dev "rm$ID-b"
for n in "$NS1:rm$ID-a" "$NS2:rm$ID-b"; do
	ip -n "${n%%:*}" link set lo up
	ip -n "${n%%:*}" link set "${n#*:}" up
done
A1=10.78.0.1 A2=10.78.0.2
if [ "$MODE" = swap6 ]; then
	A1=fd78::1 A2=fd78::2
	ip -n "$NS1" addr add fd78::1/64 dev "rm$ID-a" nodad
	ip -n "$NS2" addr add fd78::2/64 dev "rm$ID-b" nodad
fi
if [ "$MODE" = same ]; then
	ip -n "$NS1" addr add 10.78.0.11/24 dev "rm$ID-a"
	ip -n "$NS2" addr add 10.78.0.12/24 dev "rm$ID-b"
fi

wait_file() { # FILE SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
	return 1
}

if [ "$MODE" = user ]; then # root's ckptd in each namespace
	for n in 1 2; do
		ns=NS$n sock=SOCK$n
		"$PEER" in "/run/netns/${!ns}" exec "$CKPTD" -f -s "${!sock}" -r "$T/run$n" \
			</dev/null >>"$T/agent$n.log" 2>&1 &
		PIDS+=("$!")
		for _ in $(seq 100); do
			[ -S "${!sock}" ] && CKPT_SOCKET=${!sock} "$CKPTCTL" status >/dev/null 2>&1 && break
			sleep 0.05
		done
	done
fi
# their output files the programs' own: a restore reopens them as their user
for f in server.out client.out; do : >"$D/$f" && chown --reference="$D" "$D/$f"; done
"$PEER" in "/run/netns/$NS1" "${AS[@]}" server "$A1" 5000 "$D" </dev/null >"$D/server.out" 2>&1 &
SPID=$!
PIDS+=("$SPID")
"$PEER" in "/run/netns/$NS2" "${AS[@]}" client "$A1" 5000 "$D" </dev/null >"$D/client.out" 2>&1 &
CPID=$!
PIDS+=("$CPID")
wait_file "$D/server.ready" 20 && wait_file "$D/client.ready" 20 || fail "no data flows"
# neither end reads from now until both are restored: full queues both
# ways at both dumps, however long the gap between them
touch "$D/hold"
sleep 0.5
# the server first: its lock drops the client's segments until the
# client is dumped too, so that neither end moves on alone
in1 "$CKPTCTL" dump -t "$SPID" -D "$D/img-s" --tcp-established >"$T/dump-s.log" 2>&1 ||
	fail "server dump: $(cat "$T/dump-s.log")"
wait "$SPID" || true

restore() { # NSFUNC DIR LOG [OPTS...]: 0 or the restore's status; the pid in DIR.pid
	local ns=$1 img=$2 log=$3
	shift 3
	$ns "$CKPTCTL" restore -D "$img" -d --pidfile "$img.pid" "$@" >"$log" 2>&1 || return $?
	PIDS+=("$(cat "$img.pid")")
}

if [ "$MODE" = refuse ]; then
	kill -9 "$CPID"
	wait "$CPID" || true
	check_refused() { # WHAT MSG OPTS...
		local what=$1 msg=$2
		shift 2
		if restore in1 "$D/img-s" "$T/r.log" "$@"; then fail "$what: restored"; fi
		grep -qF -- "$msg" "$T/r.log" || fail "$what: no '$msg' in: $(cat "$T/r.log")"
		[ ! -e "$D/img-s.pid" ] || fail "$what: a pidfile was written"
		! kill -0 "$SPID" 2>/dev/null || fail "$what: pid $SPID exists"
		echo "refused ($what): $(grep -F -- "$msg" "$T/r.log" | head -1)"
	}
	check_refused "NEW not here" "10.78.0.99 is not an address of this network namespace" \
		--inet-map 10.78.0.1=10.78.0.99
	check_refused "no =" "'10.78.0.1': not OLD=NEW" --inet-map 10.78.0.1
	check_refused "not an address" "'10.78.0.300': not an IPv4 or IPv6 address" \
		--inet-map 10.78.0.1=10.78.0.300
	check_refused "twice" "an address mapped twice" \
		--inet-map 10.78.0.1=10.78.0.2,10.78.0.1=10.78.0.3
	check_refused "families" "of different families" --inet-map 10.78.0.1=fd00::1
	check_refused "wildcard" "a wildcard address" --inet-map 0.0.0.0=10.78.0.1
	check_refused "empty" "no OLD=NEW pair" --inet-map ,
	# the same image restores where it was, unchanged: the refusals left nothing in the way
	restore in1 "$D/img-s" "$T/r.log" || fail "plain restore: $(cat "$T/r.log")"
	echo "PASS"
	exit 0
fi

in2 "$CKPTCTL" dump -t "$CPID" -D "$D/img-c" --tcp-established >"$T/dump-c.log" 2>&1 ||
	fail "client dump: $(cat "$T/dump-c.log")"
wait "$CPID" || true
rm -f "$D/server.ready" "$D/client.ready"
# data in flight both ways: each end dumped with both queues non-empty
for d in img-s img-c; do
	"$CKPTCTL" image decode "$D/$d/files.img" >"$T/$d.json"
	grep -q '"send_queue": "[0-9a-f]' "$T/$d.json" && grep -q '"recv_queue": "[0-9a-f]' "$T/$d.json" ||
		fail "$d: a queue of the connection was empty at the dump"
done

case $MODE in
swap | nomap | user)
	MAP=(--inet-map 10.78.0.1=10.78.0.2,10.78.0.2=10.78.0.1 --keep-net-lock)
	[ "$MODE" != nomap ] || MAP=()
	S_NS=in2 C_NS=in1 S_ADDR=10.78.0.2:5000 C_ADDR=10.78.0.1
	;;
same)
	MAP=(--inet-map 10.78.0.1=10.78.0.11,10.78.0.2=10.78.0.12 --keep-net-lock)
	S_NS=in1 C_NS=in2 S_ADDR=10.78.0.11:5000 C_ADDR=10.78.0.12
	;;
swap6)
	MAP=(--inet-map fd78::1=fd78::2,fd78::2=fd78::1 --keep-net-lock)
	S_NS=in2 C_NS=in1 S_ADDR=[fd78::2]:5000 C_ADDR=[fd78::1]
	;;
*) fail "mode $MODE" ;;
esac
restore $S_NS "$D/img-s" "$T/restore-s.log" "${MAP[@]}" || fail "server restore: $(cat "$T/restore-s.log")"
# the first end restored: locked until the other is back (no RST from a host without it)
sleep 1
restore $C_NS "$D/img-c" "$T/restore-c.log" "${MAP[@]}" || fail "client restore: $(cat "$T/restore-c.log")"
rm -f "$D/hold"
if [ "$MODE" != nomap ]; then
	LS=$(sed -n 's/^net_lock: //p' "$T/restore-s.log")
	LC=$(sed -n 's/^net_lock: //p' "$T/restore-c.log")
	[ -n "$LS" ] && [ -n "$LC" ] || fail "no net_lock printed: $(cat "$T"/restore-?.log)"
	# locked: neither end has heard of the other since the dump
	sleep 1
	[ ! -e "$D/server.result" ] && [ ! -e "$D/client.result" ] || fail "finished while locked"
	if [ "$MODE" = user ]; then # her own locks only
		! $S_NS "$CKPTCTL" net-unlock ckpt_lock_0_1_1 2>"$T/unlock.err" ||
			fail "the user lifted a lock of root's"
		grep -q "not a lock of yours" "$T/unlock.err" || fail "no reason: $(cat "$T/unlock.err")"
	fi
	$S_NS "$CKPTCTL" net-unlock "$LS" || fail "net-unlock $LS"
	$C_NS "$CKPTCTL" net-unlock "$LC" || fail "net-unlock $LC"
fi
wait_file "$D/server.result" 90 && wait_file "$D/client.result" 30 ||
	fail "no result: $(cat "$D"/*.result 2>/dev/null)"
cat "$D/server.result" "$D/client.result"
read -r sok sl sp <"$D/server.result"
read -r cok cl cp <"$D/client.result"
[ "$sok" = ok ] && [ "$cok" = ok ] || fail "the stream broke"
[ "$sl" = "$S_ADDR" ] && [ "$cp" = "$S_ADDR" ] || fail "server address: $sl, client's peer $cp (want $S_ADDR)"
[ "${cl%:*}" = "$C_ADDR" ] && [ "${sp%:*}" = "$C_ADDR" ] || fail "client address: $cl, server's peer $sp"
if [ "$MODE" = user ]; then # every step by the agents, for the user
	U=$(id -u ckpt-test1)
	for n in 1 2; do
		grep -q "dump [0-9]*: pid [0-9]* by uid $U " "$T/agent$n.log" &&
			grep -q "restore [0-9]*: .* by uid $U\$" "$T/agent$n.log" &&
			grep -q "net-unlock ckpt_lock_${U}_[0-9_]* by uid $U: ok" "$T/agent$n.log" ||
			fail "agent $n: $(cat "$T/agent$n.log")"
	done
fi
echo "PASS"
