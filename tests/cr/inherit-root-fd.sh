#!/usr/bin/env bash
# --inherit-fd fd[N]:root-fd:K: the restore hands its fd N to the set's
# root process where it had its fd K, whatever that file was.  A node's
# part of a multi-node set is restored so (docs/coordinator.md): its
# root, mpirun's daemon, wrote to pipes its slurmstepd held, and gets the
# new step's.  Here a counter writes into a file; after the dump and its
# end, the restore gives it a pipe to a reader instead, which reads the
# count on from where it stopped, from the same pid, while the file gets
# no more.  A K the root never had is refused by name.  Then the set is
# crafted so that the root's stdout was its job step's pipe (FILE_PIPE
# step_stdio, a node's part): refused by hand, taken with --inherit-fd.
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
kill -9 "$PID" 2>/dev/null || true
for _ in $(seq 200); do [ -e "/proc/$PID" ] || break; sleep 0.05; done
[ ! -e "/proc/$PID" ] || fail "the restored counter $PID was not reaped"
PID=

# A node's part of a multi-node set: its root's stdout was its step's pipe
# (FILE_PIPE step_stdio, which only a dump through ckptd on such a node
# records).  Crafted here: the set's fd 1 becomes such a pipe.  A hand
# restore without --inherit-fd is refused by name, before anything is
# created; with it, the root gets the restore's fd in the pipe's place.
EDIT="python3 $(dirname "$0")/../security/imgedit.py $CKPTCTL $T/img"
rm -f "$T/after"
$EDIT files.img "
f = [x for x in e if x.get('path') == '$T/before'][0]
for k in ('path', 'pos', 'size', 'mtime_ns', 'mode', 'output', 'locks'):
    f.pop(k, None)
f.update(type='FILE_PIPE', pipe_id=4242, step_stdio=True)" || fail "crafting the step's pipe"
out=$("$CKPTCTL" restore -D "$T/img" -d 2>&1) && fail "a step_stdio pipe restored by hand: $out"
grep -q "pipe:\[4242\]: the stdio of the root's job step" <<<"$out" ||
	fail "refused without naming the step's pipe: $out"
[ "$(grep -c . <<<"$out")" = 1 ] || fail "more than one line: $out"
[ ! -e "/proc/$(sed -n 's/.* pid \([0-9]*\) .*/\1/p' "$T/before" | tail -n 1)" ] ||
	fail "the refused restore left a process behind"
exec 4> >(exec cat >"$T/after")
"$CKPTCTL" restore -D "$T/img" -d --inherit-fd 'fd[1]:root-fd:1' >&4 ||
	fail "restore of the step_stdio set with --inherit-fd fd[1]:root-fd:1"
exec 4>&-
PID=$(sed -n 's/.* pid \([0-9]*\) .*/\1/p' "$T/before" | tail -n 1)
for _ in $(seq 50); do [ "$(count "$T/after")" ] && break; sleep 0.1; done
[ "$(count "$T/after")" ] || fail "the step_stdio root wrote nothing into the inherited fd"
echo "PASS: count $last into the file before the dump, on from $first after it into the inherited pipe; a step's pipe refused by hand, taken with --inherit-fd"
