#!/usr/bin/env bash
# The two-node bed runs a job on both nodes: `srun --mpi=list` offers
# pmix, and a 2-node batch job's `srun --mpi=pmix` step prints both
# nodes' names (each slurmd has its own hostname and TmpFS; with one
# TmpFS the second node's PMIx step directory fails "File exists").
. "$(dirname "$0")/lib.sh"

srun --mpi=list 2>&1 | grep -qw pmix || fail "srun --mpi=list: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
cd "$T" || exit 1
id=$(submit -N2 --wait -o "$T/job.out" --wrap='srun -N2 --ntasks-per-node=1 --mpi=pmix hostname') ||
	fail "the job failed: $(cat "$T/job.out")"
[ "$(sort "$T/job.out" | tr '\n' ' ')" = "ckn1 ckn2 " ] || fail "job $id printed: $(cat "$T/job.out")"
[ "$(field "$id" ExitCode)" = 0:0 ] || fail "job $id: ExitCode=$(field "$id" ExitCode)"
echo "ok: job $id ran on ckn1 and ckn2 with --mpi=pmix"
