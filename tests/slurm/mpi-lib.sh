# shellcheck shell=bash
# tests/slurm/mpi-lib.sh: what the Slurm tests of MPI jobs share, sourced
# after lib.sh by a script called as
#   SCRIPT CKPTD CKPTCTL RING ALLREDUCE [CASE]
# RING and ALLREDUCE are tests/mpi/ring.c and allreduce.c built against
# OpenMPI ("none" where CMake found no MPI: skipped).  The job runs as
# the user ckpt-test1 with ckptd as this test's child on $CKPT_SOCKET.
CKPTD=$1 CKPTCTL=$2 RING=$3 ALLREDUCE=$4
CASE=${5:-}
: "${CKPT_SOCKET:?}"
if [ "$RING" = none ] || ! command -v mpirun >/dev/null; then
	echo "$NAME: no OpenMPI (scripts/setup installs it): skipped"
	exit 77
fi
use_test_user

start_ckptd "$CKPTD" "$CKPTCTL"
# The user's directory, with what the job runs (the checkout may be
# closed to other users).
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"
install -m 755 "$RING" "$T/u/ring"
install -m 755 "$ALLREDUCE" "$T/u/allreduce"


# reference OUT COMMAND...: starts an uninterrupted run of COMMAND as the
# user beside the job (the programs mostly sleep, and the run took half
# of each test's time when it came first); reference_done waits for it
# and leaves its final line ("... done: ... checksum ...") in OUT.
REF_PID= REF_OUT=
reference() {
	REF_OUT=$1
	shift
	(cd "$T/u" && exec setpriv --reuid="$U" --regid="$U" --init-groups -- "$@") \
		>"$T/reference.log" 2>&1 </dev/null &
	REF_PID=$!
	at_exit "kill $REF_PID 2>/dev/null"
}
reference_done() {
	[ -n "$REF_PID" ] || return 0
	wait "$REF_PID" || fail "the uninterrupted run failed: $(tail -n 5 "$T/reference.log")"
	REF_PID=
	grep ' done: .* checksum ' "$T/reference.log" >"$REF_OUT" ||
		fail "no checksum line in the uninterrupted run: $(tail -n 5 "$T/reference.log")"
	echo "reference: $(cat "$REF_OUT")"
}

# ended_ok JOB OUT REF: the job ended (COMPLETED, exit 0:0) with the
# reference's checksum line, from a single start.
ended_ok() {
	local job=$1 out=$2 ref=$3
	reference_done
	wait_for 300 "job $job to complete" state_is "$job" COMPLETED
	[ "$(field "$job" ExitCode)" = 0:0 ] || fail "job $job: ExitCode=$(field "$job" ExitCode)"
	[ "$(lines '^start of run' "$out")" = 1 ] ||
		fail "job $job started over: $(grep -n 'start of run' "$out")"
	grep ' done: .* checksum ' "$out" >"$T/final" || fail "job $job: no checksum line: $(tail -n 5 "$out")"
	cmp -s "$T/final" "$ref" || fail "job $job ended with '$(cat "$T/final")', not '$(cat "$ref")'"
	grep -qx "exit status 0" "$out" || fail "job $job: $(tail -n 3 "$out")"
}
