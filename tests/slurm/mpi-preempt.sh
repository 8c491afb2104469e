#!/usr/bin/env bash
# An MPI job submitted with --checkpoint, as a user would: no flag of
# ckpt's.  It is preempted mid-run, checkpointed within its grace time
# (the wrapper's vacate through ckptd), requeued, restored, and ends with
# the checksum of an uninterrupted run and exit 0, from a single start.
#   mpi-preempt.sh CKPTD CKPTCTL RING ALLREDUCE CASE
# CASE: ring-vader, allreduce-vader, allreduce-tcp (mpirun -np 2 over btl
# self,vader or self,tcp, OpenMPI's shared memory segments and session
# directory, TCP between mpirun and its ranks), singleton (the program
# alone: MPI_Init forks OpenMPI's orted, connected to it over TCP);
# srun-ring-vader, srun-allreduce-tcp: the same programs as an
# `srun -n2 --mpi=pmix` step of the batch script (docs/mpi.md): the
# ranks run under the step's slurmstepd, outside the script's tree, and
# come back under the step proxy, ckpt-step, which serves their stdio and
# PMIx (MPI_Finalize) to the end; srun-plain: a step without MPI (srun
# --mpi=none of a shell loop), whose proxy serves its output alone;
# ring-vader-newnode: the job's files on node-local scratch (the ranks'
# shared memory segments in /dev/shm, OpenMPI's session directory in
# /tmp) are removed between the checkpoint and the restore, as when the
# requeued job starts on another node: the set must hold them.
# Prints the dump's and the restore's time and the set's size (ckptd's log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi-lib.sh"

case $CASE in
ring-vader | ring-vader-newnode) prog="ring 1500 20" btl=vader ;;
allreduce-vader) prog="allreduce 40 64 100" btl=vader ;;
allreduce-tcp) prog="allreduce 40 64 100" btl=tcp ;;
singleton) prog="ring 1500 20" btl= ;;
srun-ring-vader) prog="ring 1500 20" btl=vader srun=1 ;;
srun-allreduce-tcp) prog="allreduce 40 64 100" btl=tcp srun=1 ;;
srun-plain) prog="count.sh 300" btl= srun=1 ;;
*) fail "unknown case '$CASE'" ;;
esac
# ring prints a line every 50 rounds, allreduce one every iteration.
progress=${prog%% *}
case $progress in
ring) progress='^round ' ;;
count.sh) progress='^count [0-9]' ;;
*) progress='^iter ' ;;
esac
# count.sh: a step without MPI, a line every 0.1 s and a checksum of them
cat >"$T/u/count.sh" <<'S'
#!/bin/bash
for i in $(seq "$1"); do echo "count $i"; sleep 0.1; done
echo "count done: $1 lines checksum $(seq "$1" | md5sum | cut -c1-16)"
S
chmod 755 "$T/u/count.sh"
if [ -n "$btl" ]; then
	run="mpirun --oversubscribe -np 2 --mca btl self,$btl $T/u/$prog"
else
	run="$T/u/$prog"
fi
# shellcheck disable=SC2086
reference "$T/reference" $run
# an srun step: two tasks of one core each, where mpirun had two cores
shape="-c 2"
if [ -n "${srun:-}" ]; then
	srun --mpi=list 2>&1 | grep -qw pmix || { echo "$NAME: no mpi/pmix in Slurm: skipped"; exit 77; }
	run="OMPI_MCA_btl=self,$btl srun -n2 --mpi=pmix $T/u/$prog"
	[ -n "$btl" ] || run="srun -n1 --mpi=none $T/u/$prog"
	shape="-n 2"
fi

cat >"$T/u/job.sh" <<S
#!/bin/bash
echo "start of run \${SLURM_RESTART_COUNT:-0}"
$run
echo "exit status \$?"
S
chmod 755 "$T/u/job.sh"

 # shellcheck disable=SC2086
low=$(cd "$T/u" && as_user env SBATCH_SIGNAL='' "$T/ckpt-sbatch" --parsable -p low \
	--requeue $shape -o "$T/u/low.out" -e "$T/u/low.err" --checkpoint-dir="$T/u/ck" \
	"$T/u/job.sh") || fail "ckpt-sbatch failed"
JOBS+=("$low")
progressed() { [ "$(lines "$progress" "$T/u/low.out")" -ge "$1" ]; }
wait_for 120 "job $low to make progress" progressed 2
# What a dump of it would refuse: nothing.
as_user "$CKPTCTL" checkpoint able "$low" >"$T/able" 2>&1 ||
	fail "$(cat "$T/able")"
# The job's files on scratch, as its processes see them.
scratch() {
	local p
	for p in $(scontrol listpids "$low" | awk '$3 == "batch" { print $1 }'); do
		awk '$6 ~ /^\/(dev\/shm|tmp)\// { print $6 }' "/proc/$p/maps" 2>/dev/null
		find "/proc/$p/fd" -mindepth 1 -printf '%l\n' 2>/dev/null | grep '^/\(dev/shm\|tmp\)/'
	done | sort -u
}
scratch >"$T/scratch"
high=$(submit -p high -c 2 -o "$T/high.out" --wrap='sleep 3; echo high ran')
wait_for 90 "the vacate of job $low" grep -qs "ckpt-batch: job $low: vacate" "$T/u/low.err"
grep -q "vacate done" "$T/u/low.err" ||
	fail "vacate of job $low failed: $(grep ckpt "$T/u/low.err"; "$CKPTCTL" checkpoint error "$low")"
at_vacate=$(lines "$progress" "$T/u/low.out")
wait_for 60 "job $low to be requeued" restarts_is "$low" 1
wait_for 60 "job $high to complete" state_is "$high" COMPLETED
if [ "$CASE" = ring-vader-newnode ]; then
	grep -q '^/dev/shm/vader_segment' "$T/scratch" ||
		fail "job $low maps no vader segment: $(cat "$T/scratch")"
	# OpenMPI's session directory: /tmp/ompi.HOST.UID/pid.MPIRUN/...
	sessions=$(sed -n 's|^\(/tmp/ompi\.[^/]*/pid\.[0-9]*\)/.*|\1|p' "$T/scratch" | sort -u)
	[ -n "$sessions" ] || fail "job $low has no OpenMPI session directory: $(cat "$T/scratch")"
	grep '^/dev/shm/' "$T/scratch" | grep -v ' (deleted)$' >"$T/shm" || true
	# shellcheck disable=SC2046
	rm -rf $(cat "$T/shm") $sessions
	echo "removed, as on another node: $(tr '\n' ' ' <"$T/shm")and $sessions"
fi
release "$low"
wait_for 150 "job $low to run again" state_is "$low" RUNNING
restore_ended() { grep -qs "restored from the latest checkpoint\|no usable checkpoint" "$T/u/low.err"; }
wait_for 120 "the restore of job $low" restore_ended
grep -q "restored from the latest checkpoint" "$T/u/low.err" ||
	fail "job $low was not restored: $(grep '^ckpt: \|no usable checkpoint' "$T/u/low.err" | head -n 3)"
if [ -n "${srun:-}" ]; then
	# the step's tasks came back under the proxy, not as a new step
	proxy=$(pgrep -u $U -x ckpt-step) || fail "job $low: no step proxy after the restore"
	want=$([ -n "$btl" ] && echo 2 || echo 1)
	[ "$(pgrep -P "$proxy" | wc -l)" = "$want" ] || fail "job $low: the proxy has not its $want tasks"
	[ "$(scontrol listpids "$low" | awk '$3 == 0' | wc -l)" = 0 ] ||
		fail "job $low: the restore started a new step"
fi
ended_ok "$low" "$T/u/low.out" "$T/reference"
[ "$(lines "$progress" "$T/u/low.out")" -gt "$at_vacate" ] ||
	fail "job $low made no progress after its restore"
dump=$(grep "job $low: dump [0-9]*: done in" "$T/ckptd.log" | tail -n 1 | sed 's/.*: done in/done in/')
restore=$(grep "job $low: restore [0-9]*: pid .* running after" "$T/ckptd.log" | tail -n 1 |
	sed 's/.*running after/running after/')
echo "ok: job $low ($CASE) preempted after $at_vacate progress lines, checkpointed, requeued," \
	"restored and ended with the reference checksum"
echo "figures ($CASE): dump $dump; restore $restore; set $(du -sb "$T/u/ck/$low" | cut -f1) bytes"
