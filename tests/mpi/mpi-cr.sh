#!/usr/bin/env bash
# A 2-rank OpenMPI job (mpirun -np 2) checkpointed mid-run and restored by
# ckptctl; the restored run must print exactly what an uninterrupted run
# prints (rank 0's final checksum included) and exit 0.
#   mpi-cr.sh CKPTCTL PROGRAM BTL SCENARIO [PROGRAM ARGS...]
#   BTL       vader or tcp (--mca btl self,BTL)
#   SCENARIO  kill      dumped (the job is killed), restored
#             ranon     dumped with -R, the job runs on and is killed
#                       (SIGKILL, as a crash), restored from the checkpoint
#             newnode   dumped, then the job's shared memory segments and
#                       OpenMPI session directory removed (as on another
#                       node), restored
#             timewait  dumped with -R, the job runs on and ends its
#                       connections itself (SIGTERM to mpirun), restored
#                       while its ports are in TIME-WAIT
#             porttaken dumped, then another process listens on the job's
#                       port; restored (into a fresh network namespace)
# Runs under tests/mpi/reaper, so that the killed ranks are reaped at once.
set -euo pipefail
CKPTCTL=$1 PROG=$2 BTL=$3 SCENARIO=$4
shift 4
ARGS=("$@")
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
for fd in $(ls /proc/$$/fd); do
	[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done
export CKPT_SOCKET=none OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,$BTL
# Our own session directory root: other jobs' files are never touched.
T=$(mktemp -d /tmp/ckpt-mpi.XXXXXX)
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -9 -- "-$p" "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "files kept in $T" >&2; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $SCENARIO: $*"; exit 1; }

wait_lines() {
	for _ in $(seq 600); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "$1: fewer than $2 lines: $(cat "$1")"
}

ranks_of() { pgrep -P "$1" -x "$(basename "$PROG" | cut -c1-15)" || true; }

# Every file of /dev/shm and of the session directory the ranks map.
job_files() {
	local r
	for r in $(ranks_of "$1"); do
		awk '$6 ~ "^/dev/shm/|^'"$TMPDIR"'/" { print $6 }' "/proc/$r/maps"
	done | sort -u
}

mpirun -np 2 "$PROG" "${ARGS[@]}" >"$T/ref" 2>&1 </dev/null || fail "reference run: $(cat "$T/ref")"
grep -q checksum "$T/ref" || fail "reference run printed no checksum"

setsid mpirun -np 2 "$PROG" "${ARGS[@]}" >"$T/out" 2>&1 </dev/null &
JOB=$!
PIDS+=("$JOB")
wait_lines "$T/out" 2
for _ in $(seq 100); do [ "$(ranks_of "$JOB" | wc -l)" = 2 ] && break; sleep 0.05; done
FILES=$(job_files "$JOB")
[ -n "$FILES" ] || fail "the ranks map nothing from /dev/shm or $TMPDIR"
PORTS=$(ss -Htlnp | awk -v p="pid=$JOB," 'index($0, p) { n = split($4, a, ":"); print a[n] }')

# MPI_CR_DUMP_OPTS: extra dump options, for trying things by hand.
# shellcheck disable=SC2086
dump() { "$CKPTCTL" dump -t "$JOB" -D "$T/img" ${MPI_CR_DUMP_OPTS:-} "$@" || fail "dump $*"; }
killed() {
	wait "$JOB" 2>/dev/null || true
	for _ in $(seq 200); do
		[ -z "$(ranks_of "$JOB")" ] && ! kill -0 "$JOB" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "the job did not end"
}

RESTORE_OPTS=()
case $SCENARIO in
kill)
	dump
	killed ;;
ranon)
	dump -R
	n=$(wc -l <"$T/out")
	wait_lines "$T/out" $((n + 1))
	kill -9 -- "-$JOB"
	killed ;;
newnode)
	dump
	killed
	# shellcheck disable=SC2086
	rm -f $FILES
	rm -rf "${TMPDIR:?}"/*
	[ -z "$(ls -A "$TMPDIR")" ] || fail "session directory still there" ;;
timewait)
	dump -R
	n=$(wc -l <"$T/out")
	wait_lines "$T/out" $((n + 1))
	kill -TERM "$JOB"
	killed
	tw=0
	for p in $PORTS; do
		ss -Htan state time-wait "( sport = :$p or dport = :$p )" | grep -q . && tw=1
	done
	[ $tw = 1 ] || echo "note: no TIME-WAIT left on ports $PORTS" ;;
porttaken)
	dump
	killed
	p=$(echo "$PORTS" | head -n 1)
	[ -n "$p" ] || fail "the job listens on no TCP port"
	python3 -c "
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', $p)); s.listen(); print('held', flush=True); time.sleep(600)" >"$T/holder" 2>&1 &
	PIDS+=($!)
	wait_lines "$T/holder" 1
	RESTORE_OPTS=(--stats) ;;
*) fail "unknown scenario" ;;
esac

"$CKPTCTL" restore --verify -D "$T/img" "${RESTORE_OPTS[@]}" >"$T/restore.log" 2>&1 ||
	fail "restore or the restored job failed ($?): $(tail -5 "$T/restore.log")"
if [ "$SCENARIO" = porttaken ]; then
	grep -q '^netns: 1' "$T/restore.log" || fail "not restored into a fresh network namespace"
fi
cmp -s "$T/ref" "$T/out" || fail "output differs from the uninterrupted run's: $(diff "$T/ref" "$T/out" | head -6)"
echo "PASS: $SCENARIO: $(tail -n 1 "$T/out")"
