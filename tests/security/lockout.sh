#!/bin/bash
# Attack 8, lock-out: alice fills ckptd's connections with idle ones (or
# keeps one alive a byte at a time) so that root's and bob's requests
# fail.  ckptd must cap each uid's connections, keep slots users cannot
# take for root, and give a whole request one deadline, not each read;
# its log must not grow a line per refused connection.
. "$(dirname "$0")/lib.sh" "$@"
# lib.sh copied every extra argument to $T/bin: conn-flood is our $6.
FLOOD=$T/bin/$(basename "$6")

# Alice's idle connections: N to TARGET (the socket; tcp:PORT); the
# holder's report in $T/alice/NAME.log.
alice_holds() { local name=$1 n=$2 target=${3:-$CKPT_SOCKET}
	install -o $ALICE -g $ALICE -m 644 /dev/null "$T/alice/$name.log"
	spawn_as $ALICE "$T/alice/$name.log" "$FLOOD" hold "$target" "$n"
	HOLDER=$SPAWNED
	wait_lines "$T/alice/$name.log" 2
	read -r _ HELD _ REFUSED _ CLOSED <"$T/alice/$name.log"
	REFUSAL=$(sed -n 2p "$T/alice/$name.log")
}

restart_agent() {
	kill -9 "$HOLDER" "$AGENT_PID" 2>/dev/null || true
	wait "$HOLDER" "$AGENT_PID" 2>/dev/null || true
	start_agent "$@"
}

# 1. The per-uid limit (default 16): alice gets 16 of her 256 connections,
# the rest one refusal each; bob and root are served meanwhile, and the
# log does not grow a line per refusal.
start_agent
before=$(wc -l <"$T/agent.log")
alice_holds idle 256
[ "$HELD" = 16 ] && [ "$REFUSED" = 240 ] ||
	fail "alice holds $HELD of 256 connections ($REFUSED refused, $CLOSED closed), not 16"
echo "$REFUSAL" | grep -qE "^uid $(id -u $ALICE): too many connections to ckptd \(16\)$" ||
	fail "unclear refusal: $REFUSAL"
as_bob "$CKPTCTL" status >/dev/null 2>"$T/bob.err" || fail "bob locked out: $(cat "$T/bob.err")"
"$CKPTCTL" status >/dev/null 2>"$T/root.err" || fail "root locked out: $(cat "$T/root.err")"
as_alice "$CKPTCTL" status >/dev/null 2>"$T/alice.err" && fail "alice's 17th connection served"
assert_refused "$T/alice.err" "too many connections to ckptd \(16\)"
grown=$(($(wc -l <"$T/agent.log") - before))
[ "$grown" -le 3 ] || fail "241 refusals grew the log by $grown lines"

# 2. The root reserve: with no per-uid limit to speak of, alice takes what
# users may take together, and root is still served.
printf 'agent.max_conns_per_uid = 1000\n' >"$CKPT_CONF"
restart_agent
alice_holds pool 256
[ "$HELD" -gt 16 ] && [ "$REFUSED" -gt 0 ] ||
	fail "alice holds $HELD of 256 connections ($REFUSED refused, $CLOSED closed)"
"$CKPTCTL" status >/dev/null 2>"$T/root.err" ||
	fail "root locked out by $HELD of alice's connections: $(cat "$T/root.err")"
echo "$REFUSAL" | grep -qE "users" || fail "unclear refusal: $REFUSAL"

# 3. The request deadline (3 s here): a byte a second does not keep a
# connection; a restore the client waits on is no request being read and
# outlives it.
printf 'agent.request_timeout_s = 3\n' >"$CKPT_CONF"
restart_agent
out=$(as_alice "$FLOOD" trickle "$CKPT_SOCKET" 15)
echo "trickle: $out"
t=$(echo "$out" | sed -n 's/^closed after \([0-9]*\)\..*/\1/p')
[ -n "$t" ] && [ "$t" -ge 2 ] && [ "$t" -le 8 ] || fail "trickling client: $out (deadline 3 s)"
alice_counter c
as_alice "$CKPTCTL" dump -t "$SPAWNED" -D "$T/alice/img" >/dev/null || fail "alice's dump"
spawn_as $ALICE "$T/alice/restore.log" "$CKPTCTL" restore -D "$T/alice/img" \
	--pidfile "$T/alice/pid"
client=$SPAWNED
for _ in $(seq 100); do [ -s "$T/alice/pid" ] && break; sleep 0.05; done
[ -s "$T/alice/pid" ] || fail "restore: $(cat "$T/alice/restore.log")"
sleep 5
kill -0 "$(cat "$T/alice/pid")" 2>/dev/null ||
	fail "the restored tree ended within the request deadline"
kill -0 "$client" 2>/dev/null || fail "ckptctl restore ended: $(cat "$T/alice/restore.log")"

# 4. TCP connections that never send a munge credential have a pool of
# their own: they cannot take the users' slots, let alone root's.
printf '' >"$CKPT_CONF"
port=$((20000 + RANDOM % 20000))
restart_agent --tcp "$port"
alice_holds tcp 64 "tcp:$port"
[ "$HELD" = 16 ] && [ "$REFUSED" = 48 ] ||
	fail "unauthenticated: $HELD of 64 held ($REFUSED refused, $CLOSED closed), not 16"
echo "$REFUSAL" | grep -q "too many unauthenticated connections" ||
	fail "unclear refusal: $REFUSAL"
as_bob "$CKPTCTL" status >/dev/null 2>"$T/bob.err" || fail "bob locked out: $(cat "$T/bob.err")"
echo PASS
