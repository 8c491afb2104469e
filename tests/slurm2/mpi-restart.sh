#!/usr/bin/env bash
# An OpenMPI job across both nodes, submitted with ckpt-sbatch as a user
# would, checkpointed by the coordinator (every rank on both nodes frozen
# before any is dumped, one set of two parts), stopped, requeued and
# restored on its next allocation: the batch node restores its part and
# the step proxy in place of mpirun's `srun orted` runs ckpt-coord on
# both nodes, which restores the other node's part and lifts the network
# locks once both are built (docs/coordinator.md "Restore").  The job
# then ends with exit 0 and the checksum of an uninterrupted run, from a
# single start.
#   mpi-restart.sh RING ALLREDUCE CASE
# CASE: ring2-vacate (mpirun -n 2, one rank per node, `ckptctl checkpoint
# vacate` by the user), ring4-preempt (mpirun -n 4, two ranks per node,
# preempted by an --exclusive job of the high partition: the wrapper's
# vacate at the preemption signal), allreduce2-preempt (64 MiB of doubles
# per rank, reduced across the nodes); ring2-nodelost (ckn1 is lost while
# the job waits to run again: its next allocation is ckn2 and ckn3, the
# batch script's part comes back on ckn2 and ckn2's on ckn3, every rank on
# another node and every connection on other addresses).  All over btl
# self,tcp.  ring2-twice: vacated, restored, vacated and restored again.
# srun-ring2-vacate, srun-ring4-preempt: the ring as an `srun --mpi=pmix
# -N2` step of the batch script instead of under mpirun (srun-allreduce2-
# preempt and srun-ring2-nodelost too): the ranks on ckn2
# are slurmstepd's children, their part's root the coordinator's
# stand-in, and every node's step proxy relays its fences through its
# ckpt-coord (docs/coordinator.md).
. "$(dirname "$0")/lib.sh"
RING=$1 ALLREDUCE=$2 CASE=$3
if [ "$RING" = none ] || ! command -v mpirun >/dev/null; then
	echo "$NAME: no OpenMPI (scripts/setup installs it): skipped"
	exit 77
fi
launch="mpirun -n \$n --map-by node"
case $CASE in
srun-*) launch="srun --mpi=pmix -N2 -n \$n" ;;
esac
case ${CASE#srun-} in
ring2-vacate | ring2-nodelost) n=2 prog="ring 500 20" progress='^round ' ;;
ring2-twice) n=2 prog="ring 800 20" progress='^round ' ;;
ring4-preempt) n=4 prog="ring 400 20" progress='^round ' ;;
allreduce2-preempt) n=2 prog="allreduce 30 64 150" progress='^iter ' ;;
*) fail "unknown case '$CASE'" ;;
esac
use_test_user
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$RING" "$T/u/ring"
install -m 755 "$ALLREDUCE" "$T/u/allreduce"
install -m 755 "$ROOT/examples/ckpt-sbatch" "$T/ckpt-sbatch"

cat >"$T/u/job.sh" <<S
#!/bin/bash
echo "start of run \${SLURM_RESTART_COUNT:-0}"
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
export OMPI_MCA_oob_tcp_if_include=10.77.0.0/24 OMPI_MCA_plm=slurm
n=$n
$launch $T/u/$prog
echo "exit status \$?"
S
chmod 755 "$T/u/job.sh"

# The uninterrupted run, on one node (ckn2's namespaces), beside the job.
(on_node ckn2 setpriv --reuid="$U" --regid="$U" --init-groups -- \
	mpirun --oversubscribe -n $n --mca btl self,vader $T/u/$prog) >"$T/reference.log" 2>&1 &
ref=$!
at_exit "kill $ref 2>/dev/null"

cd "$T/u" || exit 1
wait_for 60 "every node to be idle" nodes_idle
id=$(as_user env CKPT_SIGNAL_TIME=30 "$T/ckpt-sbatch" --parsable -N2 --ntasks-per-node=2 -p low \
	-o "$T/u/job.out" "$T/u/job.sh") || fail "ckpt-sbatch failed"
JOBS+=("$id")
at_exit "rm -rf /var/lib/ckpt/$id"
progressed() { [ "$(lines "$progress" "$T/u/job.out")" -ge "$1" ]; }
wait_for 60 "job $id to make progress" progressed 2
[ "$(field "$id" NodeList)" = "ckn[1-2]" ] || fail "job $id runs on $(field "$id" NodeList)"

# cycle N: checkpoint the job on both nodes and stop it (the user's
# vacate, or a preemption), let it run again, see it restored.
cycle() {
	local n=$1 what
	if [[ $CASE = *-preempt ]]; then
		high=$(submit -N1 -w ckn1 -p high --exclusive -o "$T/high.out" \
			--wrap='sleep 3; echo high ran')
		JOBS+=("$high")
		wait_for 60 "the vacate of job $id" grep -qs "ckpt-batch: job $id: vacate" "$T/u/job.out"
		grep -q "vacate done" "$T/u/job.out" ||
			fail "vacate of job $id failed: $(grep 'ckpt' "$T/u/job.out")"
		what=$T/u/job.out
	else
		on_node ckn1 setpriv --reuid="$U" --regid="$U" --init-groups -- \
			"$CKPTCTL" checkpoint vacate "$id" >"$T/vacate$n" 2>&1 ||
			fail "checkpoint vacate $id: $(cat "$T/vacate$n")"
		cat "$T/vacate$n"
		what=$T/vacate$n
	fi
	[ "$(grep -c "set [0-9]* committed, 2 nodes" "$what")" -ge 1 ] ||
		fail "no set of 2 nodes committed: $(grep ckpt "$what")"
	at_vacate=$(lines "$progress" "$T/u/job.out")
	echo "job $id checkpointed on both nodes after $at_vacate progress lines"
	wait_for 60 "job $id to be requeued" restarts_is "$id" "$n"
	[ -z "${high:-}" ] || wait_for 60 "job $high to complete" state_is "$high" COMPLETED
	want=ckn[1-2]
	if [[ $CASE = *ring2-nodelost ]]; then
		# back for the next test: resumed, and idle before this one ends
		at_exit "scontrol update nodename=ckn1 state=resume >/dev/null 2>&1;
			for _ in \$(seq 100); do sinfo -h -n ckn1 -o %t | grep -qx idle && break; sleep 0.2; done"
		scontrol update nodename=ckn1 state=down reason="ckpt test: node lost" ||
			fail "cannot take ckn1 down"
		want=ckn[2-3]
	fi
	release "$id"
	wait_for 120 "job $id to run again" state_is "$id" RUNNING
	restored() { [ "$(lines "restored from the latest checkpoint\|no usable checkpoint" "$T/u/job.out")" -ge "$n" ]; }
	wait_for 120 "the restore of job $id" restored
	[ "$(lines "restored from the latest checkpoint" "$T/u/job.out")" = "$n" ] ||
		fail "job $id was not restored: $(grep 'ckpt' "$T/u/job.out" | tail -n 5)"
	[ "$(field "$id" NodeList)" = "$want" ] || fail "job $id runs again on $(field "$id" NodeList)"
	# Both parts run: the ranks of the node without the batch script too.
	other=$([ "$want" = "ckn[2-3]" ] && echo ckn3 || echo ckn2)
	on_node $other pgrep -u $U -x "${prog%% *}" >/dev/null ||
		fail "job $id: no rank on $other after the restore"
}
cycle 1
# ring2-twice: the restored job is checkpointed and restored again (each
# node's ckptd knows its restored part as the job's tasks there)
if [ "$CASE" = ring2-twice ]; then
	wait_for 60 "job $id to make progress after its restore" progressed $((at_vacate + 2))
	cycle 2
fi

wait "$ref" || fail "the uninterrupted run failed: $(tail -n 5 "$T/reference.log")"
grep ' done: .* checksum ' "$T/reference.log" >"$T/reference" ||
	fail "no checksum in the uninterrupted run: $(tail -n 5 "$T/reference.log")"
wait_for 240 "job $id to complete" state_is "$id" COMPLETED
[ "$(field "$id" ExitCode)" = 0:0 ] || fail "job $id: ExitCode=$(field "$id" ExitCode)"
[ "$(lines '^start of run' "$T/u/job.out")" = 1 ] ||
	fail "job $id started over: $(grep -n 'start of run' "$T/u/job.out")"
grep ' done: .* checksum ' "$T/u/job.out" >"$T/final" ||
	fail "job $id: no checksum line: $(tail -n 5 "$T/u/job.out")"
cmp -s "$T/final" "$T/reference" ||
	fail "job $id ended with '$(cat "$T/final")', not '$(cat "$T/reference")'"
grep -qx "exit status 0" "$T/u/job.out" || fail "job $id: $(tail -n 3 "$T/u/job.out")"
[ "$(lines "$progress" "$T/u/job.out")" -gt "$at_vacate" ] ||
	fail "job $id made no progress after its restore"
# Every progress line once: nothing repeated or lost across the restart.
dups=$(grep "$progress" "$T/u/job.out" | sort | uniq -d | head -n 3)
[ -z "$dups" ] || fail "job $id repeated lines: $dups"
for n in ckn1 ckn2 ckn3; do
	{ grep "job $id: dump [0-9]*: done in" /var/log/ckpt-slurm2/ckptd-$n.log || true; } |
		tail -n 1 | sed "s/.*: done in/$n: dump done in/"
	{ grep "job $id: restore [0-9]*: pid .* running after" /var/log/ckpt-slurm2/ckptd-$n.log ||
		true; } | tail -n 1 | sed "s/.*running after/$n: restore running after/"
done
echo "ok: job $id ($CASE) checkpointed across ckn[1-2], requeued, restored on $want" \
	"and ended with the reference checksum: $(cat "$T/final")"
