#!/bin/bash
# A job for a preemptible partition that survives preemption.  Submit it
# with examples/ckpt-sbatch (which adds --checkpoint and the signal that
# starts the checkpoint):
#
#   ckpt-sbatch examples/slurm-preemptible.sh
#
# - -p low: the partition higher-tier jobs may preempt (slurm.conf.d/).
# - --requeue: when preempted, go back to the queue rather than end.
# - --checkpoint-dir: shared storage that every node sees; the job's
#   checkpoints go there and a requeued run restores from the last one.
# - --open-mode=append: a requeued run continues the same output file.
# Nothing else changes in the script: ckpt checkpoints the processes as
# they are, without their cooperation.
#SBATCH -p low
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --checkpoint=on-preempt
#SBATCH --checkpoint-dir=/shared/ckpt
#SBATCH -o slurm-%j.out

echo "run ${SLURM_RESTART_COUNT:-0} of job $SLURM_JOB_ID on $(hostname)"
i=0
while [ $i -lt 3600 ]; do
	i=$((i + 1))
	echo "step $i"
	sleep 1
done
