/*
 * step: the dump side of srun steps (step.h, docs/mpi.md): the drain of a
 * step's output before its client is frozen, and what the proxy needs to
 * know of the step, read from its tasks' environment.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "file-kinds.h"
#include "log.h"
#include "step.h"

#define DRAIN_TIMEOUT_MS 3000

const struct frozen_task *step_task(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return &tree->tasks[i];
	return NULL;
}

/* Bytes waiting in fd `fd` of `pid` (a pipe): FIONREAD on a duplicate. */
static int pipe_queued(pid_t pid, int fd)
{
	int dup = files_getfd(pid, fd), n = 0;
	if (dup < 0)
		return 0; /* closed, or not ours to see: nothing of it to wait for */
	struct stat st;
	if (fstat(dup, &st) || !S_ISFIFO(st.st_mode) || ioctl(dup, FIONREAD, &n))
		n = 0;
	close(dup);
	return n;
}

/* Socket inodes of `pid`'s fds, into ino[max]; how many. */
static size_t socket_inodes(pid_t pid, unsigned long *ino, size_t max)
{
	char path[300], link[64];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && n < max && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		ssize_t len = readlink(path, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = 0;
			if (sscanf(link, "socket:[%lu]", &ino[n]) == 1)
				n++;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* Does a TCP socket of srun (inodes ino[]) have bytes to read, or a peer
 * of one (slurmstepd's end) bytes not sent yet?  From /proc/PID/net/tcp*. */
static int srun_queues_busy(pid_t srun, const unsigned long *ino, size_t n)
{
	char ends[64][64];
	size_t nr_ends = 0;
	int busy = 0;
	for (int pass = 0; pass < 2 && !busy; pass++)
		for (int v6 = 0; v6 < 2 && !busy; v6++) {
			char path[64], line[512];
			snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", srun, v6 ? "6" : "");
			FILE *f = fopen(path, "re");
			while (f && !busy && fgets(line, sizeof(line), f)) {
				char local[64], remote[64];
				unsigned long tx, rx, inode;
				if (sscanf(line, " %*d: %63s %63s %*x %lx:%lx %*x:%*x %*x %*u %*u %lu", local,
					   remote, &tx, &rx, &inode) != 5)
					continue;
				for (size_t k = 0; pass == 0 && k < n; k++)
					if (ino[k] == inode) {
						busy |= rx != 0;
						if (nr_ends < 64)
							snprintf(ends[nr_ends++], sizeof(ends[0]), "%s", local);
					}
				for (size_t k = 0; pass == 1 && k < nr_ends; k++)
					busy |= !strcmp(remote, ends[k]) && tx != 0;
			}
			if (f)
				fclose(f);
		}
	return busy;
}

static int step_busy(const struct frozen_tree *tree, size_t s)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].step == (int)s + 1 &&
		    (pipe_queued(tree->tasks[i].pid, 1) || pipe_queued(tree->tasks[i].pid, 2)))
			return 1;
	unsigned long ino[64];
	size_t n = socket_inodes(tree->steps[s].client, ino, 64);
	return srun_queues_busy(tree->steps[s].client, ino, n);
}

int steps_drained(const struct frozen_tree *tree)
{
	for (size_t s = 0; s < tree->nr_steps; s++) {
		int quiet = 0;
		/* twice quiet in a row: slurmstepd reads, then sends */
		for (int ms = 0; quiet < 2; ms += 5) {
			if (ms >= DRAIN_TIMEOUT_MS) {
				pr_err("step %zu: the output of its tasks did not reach srun (pid %d) "
				       "within %d s",
				       s, tree->steps[s].client, DRAIN_TIMEOUT_MS / 1000);
				return -ETIMEDOUT;
			}
			quiet = step_busy(tree, s) ? 0 : quiet + 1;
			nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
		}
	}
	return 0;
}

char *step_tmpdir(pid_t pid)
{
	char *dir = ckpt_environ_get(pid, "PMIX_SERVER_TMPDIR"), *slash = NULL;
	size_t len = dir ? strlen(dir) : 0;
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = 0;
	if (len > 1 && dir[0] == '/' && asprintf(&slash, "%s/", dir) < 0)
		slash = NULL;
	free(dir);
	return slash;
}

long step_task_rank(pid_t pid)
{
	char *v = ckpt_environ_get(pid, "PMIX_RANK"), *end = NULL;
	if (!v) /* a step without PMIx: Slurm's task rank */
		v = ckpt_environ_get(pid, "SLURM_PROCID");
	long r = v ? strtol(v, &end, 10) : -1;
	if (!v || end == v || *end || r < 0 || r > 1 << 24)
		r = -1;
	free(v);
	return r;
}

unsigned step_pmix_port(pid_t pid)
{
	static const char *const keys[] = { "PMIX_SERVER_URI41", "PMIX_SERVER_URI4",
					    "PMIX_SERVER_URI3", "PMIX_SERVER_URI2" };
	unsigned port = 0;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && !port; k++) {
		char *v = ckpt_environ_get(pid, keys[k]);
		char *at = v ? strstr(v, ";tcp4://127.0.0.1:") : NULL;
		if (at)
			port = (unsigned)strtoul(at + strlen(";tcp4://127.0.0.1:"), NULL, 10);
		free(v);
	}
	return port < 65536 ? port : 0;
}

unsigned ckpt_step_pmix_port(pid_t pid)
{
	return step_pmix_port(pid);
}

static int uid_gid_of(pid_t pid, uint32_t *uid, uint32_t *gid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st))
		return -errno;
	*uid = st.st_uid;
	*gid = st.st_gid;
	return 0;
}

/* A step whose tasks all run on other nodes: what Slurm said of it; the
 * proxy restores its tasks there (docs/coordinator.md). */
static int remote_entry_read(const struct frozen_task *client, const struct ckpt_step *st,
			     StepEntry *out)
{
	out->job_size = st->num_tasks;
	out->step_id = st->step_id;
	out->has_label = 1;
	out->remote_nodes = strdup(st->nodes);
	if (!out->remote_nodes)
		return -ENOMEM;
	return uid_gid_of(client->pid, &out->uid, &out->gid);
}

int step_entry_read(const struct frozen_tree *tree, int i, StepEntry *out)
{
	const struct frozen_task *client = &tree->tasks[i];
	const struct ckpt_step *st = &tree->steps[client->step - 1];
	step_entry__init(out);
	if (!st->nr_tasks)
		return remote_entry_read(client, st, out);
	pid_t first = st->tasks[0];
	out->nspace = ckpt_environ_get(first, "PMIX_NAMESPACE");
	char *size = ckpt_environ_get(first, "SLURM_STEP_NUM_TASKS");
	char *nodes = ckpt_environ_get(first, "SLURM_STEP_NUM_NODES");
	char *id = ckpt_environ_get(first, "SLURM_STEP_ID");
	char *label = ckpt_environ_get(first, "SLURM_LABELIO");
	out->job_size = size ? (uint32_t)strtoul(size, NULL, 10) : 0;
	out->step_id = id ? (uint32_t)strtoul(id, NULL, 10) : 0;
	out->has_label = 1;
	out->label = label && !strcmp(label, "1");
	int ret = 0;
	if (!id) {
		pr_err("step %d: task %d: no step id in its environment", client->step - 1, first);
		ret = -ENOTSUP;
	} else if (!nodes || !(out->nodes = (uint32_t)strtoul(nodes, NULL, 10)) ||
		   (out->nodes == 1 && out->job_size != st->nr_tasks) ||
		   out->job_size < st->nr_tasks) {
		pr_err("step %u: %s nodes, %u tasks of which %zu here: not a step this dump "
		       "understands", out->step_id, nodes ? nodes : "?", out->job_size,
		       st->nr_tasks);
		ret = -ENOTSUP;
	}
	/* ranks on other nodes: their parts hold them, the fences relayed */
	out->has_nodes = out->nodes > 1;
	out->security = ckpt_environ_get(first, "PMIX_SECURITY_MODE");
	out->bfrops = ckpt_environ_get(first, "PMIX_BFROPS_MODULE"); /* unset: the library's */
	out->buffer_type = ckpt_environ_get(first, "PMIX_BFROP_BUFFER_TYPE");
	out->gds = ckpt_environ_get(first, "PMIX_GDS_MODULE");
	if (!ret)
		ret = uid_gid_of(first, &out->uid, &out->gid);
	free(size);
	free(nodes);
	free(id);
	free(label);
	return ret;
}

void step_entry_free(StepEntry *e)
{
	free(e->nspace);
	free(e->security);
	free(e->bfrops);
	free(e->buffer_type);
	free(e->gds);
	free(e->remote_nodes);
	memset(e, 0, sizeof(*e));
}
