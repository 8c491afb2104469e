#!/usr/bin/env bash
# An srun step whose srun is not in the batch script's tree (`srun
# --jobid=J` from a login shell into the job's allocation): its output
# goes to a terminal elsewhere, which no restore can give back, so
# `checkpoint able`, `create` and the wrapper's vacate refuse the job by
# name before anything is stopped (docs/mpi.md); the job runs on
# untouched (never traced, never requeued) and the step ends with the
# checksum of an uninterrupted run.  The steps a batch script runs itself
# are checkpointed: mpi-preempt.sh's srun-* cases.
#   srun-step.sh CKPTD CKPTCTL RING ALLREDUCE
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi-lib.sh"

srun --mpi=list 2>&1 | grep -qw pmix || { echo "$NAME: no mpi/pmix in Slurm: skipped"; exit 77; }
reference "$T/reference" mpirun --oversubscribe -np 2 --mca btl self,vader "$T/u/ring" 600 20

count_script "$T/u/job.sh"
id=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p low --requeue \
	-n 2 -o "$T/u/job.out" -e "$T/u/job.err" --checkpoint-dir="$T/u/ck" "$T/u/job.sh") ||
	fail "ckpt-sbatch failed"
JOBS+=("$id")
wait_for 60 "job $id to run" grep -qs '^count 2$' "$T/u/job.out"
# the step, from outside the job: this test's srun
(cd "$T/u" && as_user env OMPI_MCA_btl=self,vader srun --jobid="$id" --overlap --checkpoint \
	-n2 --mpi=pmix \
	"$T/u/ring" 600 20 >"$T/step.out" 2>&1) &
outside=$!
step_registered() { "$CKPTCTL" status --json "$id" | grep -q '"steps":\[[0-9,]*\b0\b'; }
wait_for 60 "step 0 of job $id to be registered" step_registered
progressed() { [ "$(lines '^round ' "$T/step.out")" -ge "$1" ]; }
wait_for 60 "step 0 to make progress" progressed 2

# The ranks are watched for a tracer while the job is asked about and
# checkpointed: nothing may seize them.
ranks=$(scontrol listpids "$id" | awk '$3 == 0 { print $1 }' | tr '\n' ' ')
[ -n "$ranks" ] || fail "job $id: no task of step 0: $(scontrol listpids "$id")"
traced() {
	local p
	for p in $ranks; do
		[ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = 0 ] || return 0
	done
	return 1
}
why="step 0: its srun is not a process of the batch script's tree (an srun from elsewhere into the allocation is not supported)"
as_user "$CKPTCTL" checkpoint able "$id" >"$T/able" 2>&1 && fail "job $id is able: $(cat "$T/able")"
[ "$(cat "$T/able")" = "job $id: no: $why" ] || fail "able: $(cat "$T/able")"
as_user "$CKPTCTL" checkpoint create "$id" >"$T/create" 2>&1 && fail "job $id was checkpointed"
[ "$(cat "$T/create")" = "ckptctl: job $id: $why" ] || fail "create: $(cat "$T/create")"
! traced || fail "a rank of job $id is traced"
# The pre-termination signal: the wrapper's vacate is refused the same
# way, the job is not requeued and runs on.
at_signal=$(lines '^round ' "$T/step.out")
scancel -b -s USR1 "$id"
wait_for 30 "the vacate of job $id" grep -qs "ckpt-batch: job $id: vacate" "$T/u/job.err"
grep -q "vacate FAILED" "$T/u/job.err" || fail "the vacate of job $id: $(cat "$T/u/job.err")"
grep -q "dump refused for uid [0-9]*: job $id: $why" "$T/ckptd.log" ||
	fail "ckptd's log: $(grep "job $id" "$T/ckptd.log")"
! grep -q "job $id: dump [0-9]*:" "$T/ckptd.log" || fail "a dump of job $id was started"
! traced || fail "a rank of job $id is traced"
wait_for 60 "step 0 to go on" progressed $((at_signal + 1))
wait "$outside" || fail "the step failed: $(tail -n 5 "$T/step.out")"
reference_done
grep ' done: .* checksum ' "$T/step.out" >"$T/final" || fail "step 0: $(tail -n 5 "$T/step.out")"
cmp -s "$T/final" "$T/reference" || fail "step 0 ended with '$(cat "$T/final")'"
[ "$(field "$id" Restarts)" = 0 ] || fail "job $id was requeued"
echo "ok: job $id ($why) refused before anything stopped, ran on and ended right"
