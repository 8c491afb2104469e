/*
 * coord-step: `ckptctl checkpoint create|vacate JOBID` of a job on several
 * nodes.  No node's ckptd may dump its part alone (its ranks' peers on
 * the other nodes would run on, and the parts would be of different
 * moments), so the checkpoint is the coordinator's (docs/coordinator.md):
 * a job step of one ckpt-coord per node inside the job's allocation,
 *
 *   srun --overlap --jobid JOB -N NODES -n NODES --ntasks-per-node=1 \
 *        --mpi=pmix ckpt-coord --job JOB [--vacate]
 *
 * (-n: the job's own SLURM_NTASKS, in the environment of a vacate the
 * batch wrapper runs, would ask for its task count.)
 * --overlap: the step shares the job's CPUs with its running steps; each
 * ckpt-coord talks to its node's ckptd (the default socket) and they
 * agree through PMIx.  ckpt-coord is the one installed beside ckptctl.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

/* DIR_OF_CKPTCTL/ckpt-coord where installed, else the build tree's
 * DIR_OF_CKPTCTL/../coordinator/ckpt-coord. */
int coord_find(char *path, size_t len)
{
	static const char *const where[] = { "/ckpt-coord", "/../coordinator/ckpt-coord" };
	ssize_t n = readlink("/proc/self/exe", path, len - 1);
	if (n <= 0)
		return -errno;
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	int ret = -ENOENT;
	for (size_t i = 0; slash && i < sizeof(where) / sizeof(where[0]); i++) {
		if ((size_t)(slash - path) + strlen(where[i]) + 1 > len)
			return -ENAMETOOLONG;
		strcpy(slash, where[i]);
		if (!access(path, X_OK))
			return 0;
		ret = -errno;
	}
	return ret;
}

int coord_step(uint32_t job, uint32_t nodes, int vacate)
{
	char coord[PATH_MAX], id[16], n[16];
	int ret = coord_find(coord, sizeof(coord));
	if (ret) {
		fprintf(stderr, "ckptctl: job %u runs on %u nodes: its checkpoint needs the coordinator, ckpt-coord, "
			"beside ckptctl (%s)\n", job, nodes, strerror(-ret));
		return 1;
	}
	snprintf(id, sizeof(id), "%u", job);
	snprintf(n, sizeof(n), "%u", nodes);
	printf("job %u: %u nodes: checkpoint by the coordinator (srun --overlap --jobid %u -N%u "
	       "-n%u --ntasks-per-node=1 --mpi=pmix ckpt-coord)\n", job, nodes, job, nodes, nodes);
	fflush(NULL);
	char me[16];
	snprintf(me, sizeof(me), "%d", (int)getpid());
	pid_t p = fork();
	if (p == 0) {
		/* which of a wrapper's children is not the job's tree */
		setenv("CKPT_COORD_CLIENT", me, 1);
		execlp("srun", "srun", "--overlap", "--jobid", id, "-N", n, "-n", n, "--ntasks-per-node=1",
		       "--mpi=pmix", coord, "--job", id, vacate ? "--vacate" : NULL, (char *)NULL);
		fprintf(stderr, "ckptctl: srun: %s\n", strerror(errno));
		_exit(127);
	}
	int st = 0;
	/* its failure is said by the caller, which looks at the sets */
	return p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? 1 : 0;
}
