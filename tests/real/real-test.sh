#!/usr/bin/env bash
# Real programs go through checkpoint/restore mid-run and finish with the
# same output as an untouched run.
#   real-test.sh CASE CKPTCTL SRCDIR [OMP]
#   python    a Python 3 computation
#   pipeline  sort | uniq -c fed by a pipeline (a shell and four processes)
#   openmp    an OpenMP program on 2 threads
#   redis     redis-server holding 100 000 keys, a client connected over
#             TCP before and after (--tcp-established)
set -euo pipefail
CASE=$1 CKPTCTL=$2 SRC=$3 OMP=${4:-}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done
export CKPT_SOCKET=none
T=$(mktemp -d /tmp/ckpt-real.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

wait_lines() {
	for _ in $(seq 300); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "$1: fewer than $2 lines"
}

# Dump the tree at $1 (killing it), restore it and wait for its end.
cr_wait() {
	"$CKPTCTL" dump -t "$1" -D "$T/img" || fail "dump"
	"$CKPTCTL" restore -D "$T/img" || fail "restore or the restored program failed ($?)"
}

case_python() {
	python3 "$SRC/calc.py" 60 >"$T/ref" </dev/null
	python3 "$SRC/calc.py" 60 >"$T/out" 2>&1 </dev/null 251>&- &
	local p=$!
	PIDS+=("$p")
	wait_lines "$T/out" 20
	cr_wait "$p"
	cmp "$T/ref" "$T/out" || fail "output differs: $(diff "$T/ref" "$T/out" | head -5)"
	echo "PASS: $(tail -1 "$T/out")"
}

case_pipeline() {
	bash -c "bash $SRC/gen.sh | sort | uniq -c" >"$T/ref" </dev/null
	setsid bash -c "bash $SRC/gen.sh | sort | uniq -c >$T/out" </dev/null >/dev/null 2>&1 &
	local p=$!
	PIDS+=("$p")
	sleep 1
	[ -s "$T/out" ] && fail "the pipeline ended before the dump"
	cr_wait "$p"
	cmp "$T/ref" "$T/out" || fail "output differs: $(diff "$T/ref" "$T/out" | head -5)"
	echo "PASS: $(wc -l <"$T/out") lines"
}

case_openmp() {
	"$OMP" 25 >"$T/ref" </dev/null
	"$OMP" 25 >"$T/out" 2>&1 </dev/null 251>&- &
	local p=$!
	PIDS+=("$p")
	wait_lines "$T/out" 5
	[ "$(ls /proc/"$p"/task | wc -l)" -ge 2 ] || fail "not running 2 threads"
	cr_wait "$p"
	cmp "$T/ref" "$T/out" || fail "output differs: $(diff "$T/ref" "$T/out" | head -5)"
	echo "PASS: $(tail -1 "$T/out")"
}

case_redis() {
	command -v redis-server >/dev/null || { echo "SKIP: no redis-server"; exit 77; }
	local port=$((21000 + RANDOM % 20000))
	redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize no --dir "$T" >"$T/redis.log" 2>&1 </dev/null &
	local r=$!
	PIDS+=("$r")
	for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
	python3 "$SRC/redis-client.py" "$port" "$T" >"$T/client.log" 2>&1 &
	local c=$!
	PIDS+=("$c")
	for _ in $(seq 600); do [ -f "$T/client.ready" ] && break; sleep 0.1; done
	[ -f "$T/client.ready" ] || fail "client not ready: $(cat "$T/client.log")"
	"$CKPTCTL" dump -t "$r" -D "$T/img" --tcp-established || fail "dump"
	"$CKPTCTL" restore -D "$T/img" -d || fail "restore"
	touch "$T/client.go"
	local rc=0
	wait "$c" || rc=$?
	cat "$T/client.log"
	[ $rc = 0 ] || fail "client after the restore"
	[ "$(redis-cli -p "$port" dbsize)" = 100001 ] || fail "dbsize after restore"
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
	echo PASS
}

"case_$CASE"
