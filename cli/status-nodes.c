/*
 * status-nodes: `ckptctl status --nodes JOBID`, every node's view of a job
 * on several nodes (docs/coordinator.md): its registered tasks there and
 * the operations of its ckptd, a coordinated checkpoint's held dump and
 * its progress among them.  Each node's own ckptd answers, through a job
 * step of one `ckptctl status JOBID` per node inside the job's allocation
 * (`srun --overlap --label`, as the coordinator's step); the lines come
 * back labelled with their task, and are printed node by node.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define MAX_NODES 64

struct node_out {
	char *text;
	size_t len;
};

static int add_line(struct node_out *n, const char *line)
{
	size_t l = strlen(line);
	char *t = realloc(n->text, n->len + l + 1);
	if (!t)
		return -ENOMEM;
	memcpy(t + n->len, line, l + 1);
	n->text = t;
	n->len += l;
	return 0;
}

/* srun --label's "N: line": into out[N]. */
static void collect(FILE *f, struct node_out *out, uint32_t nodes)
{
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long task = strtoul(line, &end, 10);
		if (end == line || strncmp(end, ": ", 2) || task >= nodes) {
			fputs(line, stdout); /* srun's own words */
			continue;
		}
		add_line(&out[task], end + 2);
	}
}

static pid_t start_step(uint32_t job, uint32_t nodes, int fd)
{
	char self[PATH_MAX], id[16], n[16];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return -1;
	self[len] = '\0';
	snprintf(id, sizeof(id), "%u", job);
	snprintf(n, sizeof(n), "%u", nodes);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		dup2(fd, 1);
		close(fd);
		execlp("srun", "srun", "--overlap", "--jobid", id, "-N", n, "-n", n,
		       "--ntasks-per-node=1", "--label", "--mpi=none", self, "status", "--node-name",
		       id, (char *)NULL);
		fprintf(stderr, "ckptctl: srun: %s\n", strerror(errno));
		_exit(127);
	}
	return p;
}

int status_nodes(uint32_t job, uint32_t nodes)
{
	struct node_out out[MAX_NODES] = { { 0 } };
	int p[2];
	if (nodes < 1 || nodes > MAX_NODES) {
		fprintf(stderr, "ckptctl: status --nodes: job %u: %u nodes\n", job, nodes);
		return 1;
	}
	if (pipe(p))
		return 1;
	pid_t step = start_step(job, nodes, p[1]);
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	if (f)
		collect(f, out, nodes);
	if (f)
		fclose(f);
	else
		close(p[0]);
	int st = 0;
	if (step < 0 || waitpid(step, &st, 0) < 0)
		st = -1;
	for (uint32_t i = 0; i < nodes; i++) {
		printf("%s%s", i ? "\n" : "", out[i].text ? out[i].text : "(no answer)\n");
		free(out[i].text);
	}
	if (st) {
		fprintf(stderr, "ckptctl: status --nodes: job %u: the step on its nodes failed\n", job);
		return 1;
	}
	return 0;
}
