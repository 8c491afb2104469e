#!/usr/bin/env bash
# ckptd's settings: a key of ckpt.conf with a bad value stops it, exit 1,
# with one line naming the file, the key and the value; an option wins over
# its key, also one that turns something off (--tcp 0 and agent.tcp_port).
#   ckptd-conf.sh CKPTD
set -euo pipefail
CKPTD=$1
fail() { echo "FAIL: ckptd-conf: $*"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "SKIP: ckptd runs as root"; exit 77; }
T=$(mktemp -d /tmp/ckpt-ckptd-conf.XXXXXX)
AGENT_PID=
cleanup() {
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export CKPT_CONF=$T/ckpt.conf

# refused LINE WANT: ckptd with LINE in its ckpt.conf exits 1 with one
# line on stderr matching WANT (grep -E).
refused() {
	local line=$1 want=$2 rc=0
	echo "$line" >"$CKPT_CONF"
	timeout 10 "$CKPTD" -f -s "$T/ckptd.sock" -r "$T/run" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	[ $rc = 1 ] || fail "'$line': exit $rc, not 1: $(cat "$T/err")"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "'$line': not one line: '$(cat "$T/err")'"
	grep -Eq "$want" "$T/err" || fail "'$line': '$(cat "$T/err")', not '$want'"
}
refused "agent.interval_unit_s = 0" "^ckptd: $CKPT_CONF: agent.interval_unit_s = 0: must be over 0"
refused "agent.interval_unit_s = x" "^ckpt: $CKPT_CONF: agent.interval_unit_s = x: not a number"
refused "agent.max_conns_per_uid = 0" "^ckptd: $CKPT_CONF: agent.max_conns_per_uid = 0: must be over 0"
refused "agent.request_timeout_s = 86401" \
	"^ckptd: $CKPT_CONF: agent.request_timeout_s = 86401: must be from 1 to 86400"
refused "agent.tcp_port = 70000" "^ckptd: $CKPT_CONF: agent.tcp_port = 70000: not a port"
echo "ok: bad keys, each one line naming the key and its value"

# serving ARGS...: ckptd's "serving" line, started with ARGS, then stopped.
serving() {
	"$CKPTD" -f -s "$T/ckptd.sock" -r "$T/run" "$@" >"$T/log" 2>&1 </dev/null &
	AGENT_PID=$!
	for _ in $(seq 100); do grep -q "serving" "$T/log" && break; sleep 0.05; done
	kill "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=
	grep "serving" "$T/log" || fail "ckptd $*: no serving line: $(cat "$T/log")"
}
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::", 0)); print(s.getsockname()[1])')
echo "agent.tcp_port = $port" >"$CKPT_CONF"
serving | grep -q " and TCP" || fail "agent.tcp_port = $port: no TCP listener"
serving --tcp 0 | grep -q " and TCP" && fail "--tcp 0 did not turn off agent.tcp_port = $port"
echo "ok: --tcp 0 wins over agent.tcp_port"
