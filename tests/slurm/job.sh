#!/usr/bin/env bash
# A plain batch job runs on the test cluster, and srun works.
. "$(dirname "$0")/lib.sh"

cat >"$T/hello.sh" <<'S'
#!/bin/bash
echo "hello from job $SLURM_JOB_ID on $SLURMD_NODENAME"
S
id=$(submit --wait -o "$T/hello.out" "$T/hello.sh")
grep -q "hello from job $id on $(hostname -s)" "$T/hello.out" || fail "output: $(cat "$T/hello.out")"
# sbatch --wait may return while the epilog still runs (COMPLETING).
wait_for 30 "job $id to be COMPLETED" state_is "$id" COMPLETED
[ "$(srun -p high hostname -s)" = "$(hostname -s)" ] || fail "srun hostname"
echo "ok: job $id ran"
