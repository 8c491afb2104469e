#!/usr/bin/env bash
# An OpenMPI ring (tests/mpi/ring.c) across both nodes over btl self,tcp,
# as an unprivileged user: launched by srun --mpi=pmix with 2 and 4 ranks
# (PMIx served by each node's slurmstepd), and by mpirun in the batch
# script with 2 (its daemon on the other node started through Slurm, plm
# slurm).  Each run ends with the checksum that an uninterrupted run of as
# many ranks prints, and while the 2-rank runs go, the rank on ckn1 holds
# a TCP connection to 10.77.0.2: the ranks really talk across the bridge.
#   mpi-ring.sh RING
. "$(dirname "$0")/lib.sh"
RING=$1
if [ "$RING" = none ] || ! command -v mpirun >/dev/null; then
	echo "$NAME: no OpenMPI (scripts/setup installs it): skipped"
	exit 77
fi
use_test_user
install -d -o $U -g $U -m 755 "$T/u"
install -m 755 "$RING" "$T/u/ring"

# The job: each launch in turn, with `ss` watching the 2-rank ones from
# ckn1 (the batch step's node) for an established connection of a ring
# process to the other node.
cat >"$T/u/job.sh" <<'S'
#!/bin/bash
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
export OMPI_MCA_oob_tcp_if_include=10.77.0.0/24 OMPI_MCA_plm=slurm
watch() {
	for _ in $(seq 200); do
		ss -tnpH state established dst 10.77.0.2 | grep -q '"ring"' && { echo "$1: ring talks to 10.77.0.2"; return; }
		sleep 0.1
	done
}
run() {
	local what=$1
	shift
	"$@" >"$what.out" 2>&1 &
	local pid=$!
	[ "${what#*-n2}" != "$what" ] && watch "$what"
	wait $pid
	echo "$what: exit $? $(grep ' done: ' "$what.out")"
}
run srun-n2 srun --mpi=pmix -N2 -n2 ./ring 150 20
run srun-n4 srun --mpi=pmix -N2 -n4 ./ring 100 10
run mpirun-n2 mpirun -n 2 --map-by node ./ring 150 20
S
chmod 755 "$T/u/job.sh"

# Uninterrupted runs of as many ranks on one node (self,vader), for the
# checksums, in ckn2's namespaces (its only network is the bridge's),
# while the job runs.
sum() { # sum RANKS ROUNDS MS
	on_node ckn2 setpriv --reuid="$U" --regid="$U" --init-groups -- \
		mpirun --oversubscribe -n "$1" --mca btl self,vader "$T/u/ring" "$2" "$3" 2>&1 |
		sed -n 's/.* done: .* checksum //p'
}
sum 2 150 20 >"$T/want2" &
sum2=$!
sum 4 100 10 >"$T/want4" &
sum4=$!

cd "$T/u" || exit 1
id=$(as_user sbatch --parsable -N2 --ntasks-per-node=2 --wait -o "$T/u/job.out" ./job.sh) ||
	fail "the job failed: $(cat "$T/u/job.out"; tail -n 5 "$T"/u/*.out)"
JOBS+=("$id")
cat "$T/u/job.out"
wait $sum2 $sum4
want2=$(cat "$T/want2") want4=$(cat "$T/want4")
[ -n "$want2" ] && [ -n "$want4" ] || fail "no checksum from the runs on one node"
for w in "srun-n2 $want2" "srun-n4 $want4" "mpirun-n2 $want2"; do
	set -- $w
	grep -qx "$1: exit 0 .* checksum $2" "$T/u/job.out" || fail "$1: not 'exit 0 ... checksum $2': $(tail -n 5 "$T/u/$1.out")"
done
for r in srun-n2 mpirun-n2; do
	grep -qx "$r: ring talks to 10.77.0.2" "$T/u/job.out" || fail "$r: no ring connection to 10.77.0.2 seen"
done
echo "ok: job $id: the ring ran across ckn1 and ckn2 over tcp under srun (2 and 4 ranks) and mpirun"
