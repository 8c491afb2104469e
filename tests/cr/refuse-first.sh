#!/usr/bin/env bash
# A dump that will be refused says so before it reads any memory: the job
# is not frozen for a memory copy that is thrown away.  cr-badfd holds an
# fd the engine refuses (a netlink socket at fd 42);
# `dump -v` logs each task's memory once it is read ("bytes of memory"):
# no such line may come before the refusal, and the program runs on.
#   refuse-first.sh CKPTCTL CR-BADFD
set -euo pipefail
CKPTCTL=$1 BADFD=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
export CKPT_SOCKET=none
T=$(mktemp -d /tmp/ckpt-refuse-first.XXXXXX)
PID=
cleanup() {
	local rc=$?
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$T" && CR_DIR=$T CR_READY=$T/ready exec "$BADFD" netlink >"$T/log" 2>&1 \
	</dev/null 251>&-) &
PID=$!
for _ in $(seq 200); do [ -s "$T/ready" ] && break; sleep 0.05; done
[ -s "$T/ready" ] || fail "cr-badfd not ready: $(cat "$T/log")"
rc=0
"$CKPTCTL" dump -t "$PID" -D "$T/img" -v >"$T/dump.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "the dump of a netlink socket succeeded"
line=$(grep -n "fd 42" "$T/dump.out" | head -n 1 | cut -d: -f1)
[ -n "$line" ] || fail "the refusal does not name fd 42: $(cat "$T/dump.out")"
if head -n "$line" "$T/dump.out" | grep -q "bytes of memory"; then
	fail "memory was read before the refusal: $(head -n "$line" "$T/dump.out" | grep "bytes of memory")"
fi
kill -0 "$PID" || fail "cr-badfd is gone after the refused dump"
grep -q "State:.*[RS]" "/proc/$PID/status" || fail "cr-badfd is not running: $(grep State "/proc/$PID/status")"
echo "PASS: refused at line $line, before any memory was read"
