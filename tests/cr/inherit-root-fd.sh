#!/usr/bin/env bash
# --inherit-fd fd[N]:root-fd:K: the restore hands its fd N to the set's
# root process where it had its fd K, whatever that file was.  A node's
# part of a multi-node set is restored so (docs/coordinator.md): its
# root, mpirun's daemon, wrote to pipes its slurmstepd held, and gets the
# new step's.  Here a counter writes into a file; after the dump and its
# end, the restore gives it a pipe to a reader instead, which reads the
# count on from where it stopped, from the same pid, while the file gets
# no more.  A K the root never had is refused by name.
#   inherit-root-fd.sh CKPTCTL COUNTER
set -euo pipefail
CKPTCTL=$1 COUNTER=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
export CKPT_SOCKET=none
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
T=$(mktemp -d /tmp/ckpt-rootfd.XXXXXX)
PID=
cleanup() {
	local rc=$?
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	wait 2>/dev/null || true
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
count() { sed -n 's/^count \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }

"$COUNTER" >"$T/before" 2>/dev/null </dev/null &
PID=$!
for _ in $(seq 50); do [ "$(count "$T/before")" ] && [ "$(count "$T/before")" -ge 2 ] && break; sleep 0.1; done
[ "$(count "$T/before")" -ge 2 ] 2>/dev/null || fail "the counter did not count"
"$CKPTCTL" dump -t "$PID" -D "$T/img" || fail "dump"
kill -9 "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
PID=
last=$(count "$T/before")
sleep 0.3

out=$("$CKPTCTL" restore -D "$T/img" -d --inherit-fd 'fd[1]:root-fd:7' 2>&1) &&
	fail "restored with the root's fd 7, which it never had: $out"
grep -q 'no file root-fd:7' <<<"$out" || fail "refused without naming root-fd:7: $out"

exec 4> >(exec cat >"$T/after")
"$CKPTCTL" restore -D "$T/img" -d --inherit-fd 'fd[1]:root-fd:1' >&4 ||
	fail "restore with --inherit-fd fd[1]:root-fd:1"
exec 4>&-
PID=$(sed -n 's/.* pid \([0-9]*\) .*/\1/p' "$T/before" | tail -n 1)
for _ in $(seq 50); do [ "$(count "$T/after")" ] && [ "$(count "$T/after")" -ge $((last + 2)) ] && break; sleep 0.1; done
first=$(sed -n 's/^count \([0-9]*\) .*/\1/p' "$T/after" | head -n 1)
[ "$first" = $((last + 1)) ] || fail "the restored counter's first line is count '$first', not $((last + 1))"
grep -q "^count $((last + 1)) .* pid $PID " "$T/after" || fail "not from pid $PID: $(head -n 2 "$T/after")"
[ "$(count "$T/after")" -ge $((last + 2)) ] || fail "the restored counter does not go on"
[ "$(count "$T/before")" = "$last" ] || fail "the restored counter wrote on into its old file too"
echo "PASS: count $last into the file before the dump, on from $first after it into the inherited pipe"
