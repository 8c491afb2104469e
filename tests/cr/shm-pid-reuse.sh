#!/usr/bin/env bash
# bad_shm_pid_reuse: a System V segment nobody attaches is the dumped
# tree's only if one of its tasks made it.  A process makes a segment and
# exits; the test's target then gets the same pid (ns_last_pid).  The dump
# of the target must not take that segment as its own (it did, by creator
# pid alone: a user's dump then failed on another user's segment, and a
# root's dump carried a stranger's segment into the set).
#   shm-pid-reuse.sh CKPTCTL
set -euo pipefail
CKPTCTL=$1
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -w /proc/sys/kernel/ns_last_pid ] || { echo "SKIP: no ns_last_pid"; exit 77; }
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
export CKPT_SOCKET=none
T=$(mktemp -d /tmp/ckpt-shmreuse.XXXXXX)
SEG=
cleanup() {
	[ -n "$SEG" ] && ipcrm -m "$SEG" 2>/dev/null
	[ -n "${TARGET:-}" ] && kill -9 "$TARGET" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The segment's maker: prints its pid and the id, then exits.
read -r PID SEG < <(python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
i = libc.shmget(0, 4096, 0o1000 | 0o600)
print(os.getpid(), i)')
[ "$SEG" -ge 0 ] || fail "shmget"
sleep 2.5 # the maker's segment is older than the target by more than the slack (ctime's whole second, 50 ms)
for _ in $(seq 50); do
	echo $((PID - 1)) >/proc/sys/kernel/ns_last_pid
	sleep 600 </dev/null >/dev/null 2>&1 &
	TARGET=$!
	[ "$TARGET" = "$PID" ] && break
	kill -9 "$TARGET"; wait "$TARGET" 2>/dev/null || true; TARGET=
done
[ -n "$TARGET" ] || { echo "SKIP: could not get pid $PID again"; exit 77; }
awk -v id="$SEG" -v pid="$PID" '$2 == id && $5 == pid { f = 1 } END { exit !f }' /proc/sysvipc/shm ||
	fail "segment $SEG does not name pid $PID as its creator"
"$CKPTCTL" dump -t "$TARGET" -D "$T/img" -R || fail "dump"
if [ -e "$T/img/shm-sysv-$SEG.img" ]; then
	fail "segment $SEG, made by an earlier pid $PID, was dumped as the tree's"
fi
echo "PASS: segment $SEG of an earlier pid $PID left out"
