/*
 * steps: the srun steps of a job on this node (docs/mpi.md), for its
 * dump: each step's tasks are the ones the plugin registered (children of
 * their step's slurmstepd), and its client is the srun of the batch
 * script's tree that listens for the step's messages: the port Slurm gave
 * the tasks as SLURM_SRUN_COMM_PORT, held by a process of that tree (the
 * topmost one: srun's shepherd, its fork, holds the same socket).  Found
 * from Slurm's own numbers and the kernel's socket table, never from
 * process names.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"

#define SLURM_STEP_SPECIAL 0xfffffff0u /* batch, extern, interactive ... */
#define SLURM_BATCH_STEP 0xfffffffbu /* SLURM_BATCH_SCRIPT */

/* A number in pid's environment (as it started), or 0. */
static unsigned long env_number(pid_t pid, const char *key)
{
	char *v = ckpt_environ_get(pid, key);
	unsigned long n = v ? strtoul(v, NULL, 10) : 0;
	free(v);
	return n;
}

/* The inode of the TCP listener on `port` in pid's network namespace. */
static unsigned long listener_inode(pid_t pid, unsigned port)
{
	unsigned long found = 0;
	for (int v6 = 0; v6 < 2 && !found; v6++) {
		char path[64], line[512];
		snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", pid, v6 ? "6" : "");
		FILE *f = fopen(path, "re");
		while (f && !found && fgets(line, sizeof(line), f)) {
			unsigned lport, state;
			unsigned long inode;
			if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*x:%*x %*x:%*x %*x "
					 "%*u %*u %lu", &lport, &state, &inode) == 3 &&
			    lport == port && state == 0x0A)
				found = inode;
		}
		if (f)
			fclose(f);
	}
	return found;
}

static int holds_socket(pid_t pid, unsigned long ino)
{
	char path[300], link[64], want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	int found = 0;
	while (d && !found && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			found = !strcmp(link, want);
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* Breadth first from root: the first process that holds socket ino. */
static pid_t find_holder(pid_t root, unsigned long ino)
{
	pid_t queue[4096];
	size_t head = 0, tail = 0;
	queue[tail++] = root;
	while (head < tail) {
		pid_t pid = queue[head++];
		if (holds_socket(pid, ino))
			return pid;
		char path[64], buf[8192];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		char *save = NULL;
		for (char *t = strtok_r(buf, " \n", &save); t && tail < 4096;
		     t = strtok_r(NULL, " \n", &save))
			queue[tail++] = atoi(t);
	}
	return 0;
}

/* Does the job have a batch script here (the tree its sruns are in)? */
int steps_job_has_batch(const struct job *j)
{
	for (size_t i = 0; i < j->nr_pids; i++)
		if (j->pid_steps[i] == SLURM_BATCH_STEP)
			return 1;
	return 0;
}

int steps_collect_locked(const struct job *j, struct job_steps *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	/* without one, each registered tree stands alone (ckptctl register) */
	for (size_t i = 0; steps_job_has_batch(j) && i < j->nr_pids; i++) {
		uint32_t step = j->pid_steps[i];
		if (step >= SLURM_STEP_SPECIAL)
			continue;
		size_t s = 0;
		while (s < out->nr && out->id[s] != step)
			s++;
		if (s == out->nr) {
			if (out->nr == JOB_STEPS_MAX) {
				snprintf(err, errlen, "job %u: more than %d srun steps", j->id,
					 JOB_STEPS_MAX);
				return -ENOTSUP;
			}
			out->id[out->nr++] = step;
		}
		if (out->nr_tasks[s] == JOB_STEP_TASKS_MAX) {
			snprintf(err, errlen, "job %u: step %u: more than %d tasks here", j->id, step,
				 JOB_STEP_TASKS_MAX);
			return -ENOTSUP;
		}
		out->tasks[s][out->nr_tasks[s]++] = (uint32_t)j->pids[i];
	}
	return 0;
}

int steps_find_clients(uint32_t job, pid_t root, struct job_steps *st, char *err, size_t errlen)
{
	for (size_t s = 0; s < st->nr; s++) {
		if (!st->nr_tasks[s])
			continue; /* its srun is Slurm's word (steps_add_remote) */
		pid_t first = (pid_t)st->tasks[s][0];
		unsigned long port = env_number(first, "SLURM_SRUN_COMM_PORT");
		unsigned long ino = port && port < 65536 ? listener_inode(root, (unsigned)port) : 0;
		pid_t client = ino ? find_holder(root, ino) : 0;
		if (client <= 0 || client == root) {
			snprintf(err, errlen, "job %u: step %u: its srun is not a process of the "
				 "batch script's tree (an srun from elsewhere into the allocation "
				 "is not supported)", job, st->id[s]);
			return -ENOTSUP;
		}
		st->client[s] = (uint32_t)client;
	}
	return 0;
}

/* Does pid hold a TCP connection to 127.0.0.1:port? */
static int connected_to(pid_t pid, unsigned port)
{
	char path[64], line[512];
	int found = 0;
	snprintf(path, sizeof(path), "/proc/%d/net/tcp", pid);
	FILE *f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned rport, state;
		unsigned long inode;
		if (sscanf(line, " %*d: %*x:%*x 0100007F:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
			   &rport, &state, &inode) == 3 &&
		    rport == port && state == 1 && inode)
			found = holds_socket(pid, inode);
	}
	if (f)
		fclose(f);
	return found;
}

/* pid's parent (/proc/PID/stat), or 0. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *paren = strrchr(buf, ')');
	int ppid = 0;
	return paren && sscanf(paren + 1, " %*c %d", &ppid) == 1 ? ppid : 0;
}

int steps_stand_in(const struct job *j, const RpcDump *d, pid_t caller, struct job_steps *st,
		   char *err, size_t errlen)
{
	size_t clients = 0;
	for (size_t i = 0; i < j->nr_pids; i++) {
		unsigned port = ckpt_step_pmix_port(j->pids[i]);
		clients += port && connected_to(j->pids[i], port);
	}
	/* no PMIx (mpirun's daemon, a plain srun task): the part is the
	 * tasks' own tree, one or refused by name as such */
	if (!clients)
		return 0;
	uint32_t step = j->pid_steps[0];
	for (size_t i = 0; i < j->nr_pids; i++)
		if (j->pid_steps[i] != step || step >= SLURM_STEP_SPECIAL ||
		    clients != j->nr_pids) {
			snprintf(err, errlen, "job %u: the tasks here are not all PMIx clients of one "
				 "step (task %d of step %u): not restorable yet", j->id, j->pids[i],
				 j->pid_steps[i]);
			return -ENOTSUP;
		}
	pid_t s = (pid_t)d->stand_in;
	if (!d->has_stand_in || s <= 0 || parent_of(s) != caller) {
		snprintf(err, errlen, "job %u: step %u: its ranks here need the coordinator's "
			 "stand-in (a child of the caller) as their client", j->id, step);
		return -EINVAL;
	}
	if (j->nr_pids > JOB_STEP_TASKS_MAX) {
		snprintf(err, errlen, "job %u: step %u: more than %d tasks here", j->id, step,
			 JOB_STEP_TASKS_MAX);
		return -ENOTSUP;
	}
	memset(st, 0, sizeof(*st));
	st->nr = 1;
	st->id[0] = step;
	st->client[0] = (uint32_t)s;
	for (size_t i = 0; i < j->nr_pids; i++)
		st->tasks[0][st->nr_tasks[0]++] = (uint32_t)j->pids[i];
	return 1;
}

/* Is pid a descendant of root (by the parents /proc tells)? */
static int below(pid_t pid, pid_t root)
{
	for (int hops = 0; pid > 1 && hops < 4096; hops++) {
		pid_t ppid = parent_of(pid);
		if (ppid == root)
			return 1;
		pid = ppid;
	}
	return 0;
}

static int has_step(const struct job_steps *st, uint32_t id)
{
	for (size_t s = 0; s < st->nr; s++)
		if (st->id[s] == id)
			return 1;
	return 0;
}

int steps_add_remote(uint32_t job, pid_t root, const RpcDump *d, struct job_steps *st, char *err,
		     size_t errlen)
{
	size_t added = 0;
	for (size_t i = 0; i < d->n_remote_steps; i++) {
		const RpcRemoteStep *r = d->remote_steps[i];
		if (r->step_id >= SLURM_STEP_SPECIAL || has_step(st, r->step_id))
			continue; /* a step with tasks here has its client found above */
		/* its restore runs one coordinator for every other node's part */
		if (added++) {
			snprintf(err, errlen, "job %u: step %u: a second step whose tasks all run on "
				 "other nodes: not restorable yet (docs/coordinator.md)", job,
				 r->step_id);
			return -ENOTSUP;
		}
		if (!r->nodes || !r->has_num_tasks || !r->num_tasks || strlen(r->nodes) >= 256) {
			snprintf(err, errlen, "job %u: step %u: no nodes or tasks in Slurm's record",
				 job, r->step_id);
			return -EINVAL;
		}
		if (!below((pid_t)r->srun_pid, root)) {
			snprintf(err, errlen, "job %u: step %u: its srun (pid %u) is not a process of "
				 "the batch script's tree (an srun from elsewhere into the allocation "
				 "is not supported)", job, r->step_id, r->srun_pid);
			return -ENOTSUP;
		}
		if (st->nr == JOB_STEPS_MAX) {
			snprintf(err, errlen, "job %u: more than %d srun steps", job, JOB_STEPS_MAX);
			return -ENOTSUP;
		}
		size_t s = st->nr++;
		st->id[s] = r->step_id;
		st->client[s] = r->srun_pid;
		st->nr_tasks[s] = 0;
		snprintf(st->nodes[s], sizeof(st->nodes[s]), "%s", r->nodes);
		st->num_tasks[s] = r->num_tasks;
	}
	return 0;
}

void steps_to_rpc(struct job_steps *st, RpcDump *req)
{
	for (size_t s = 0; s < st->nr; s++) {
		rpc_step__init(&st->rpc[s]);
		st->rpc[s].client = st->client[s];
		st->rpc[s].tasks = st->tasks[s];
		st->rpc[s].n_tasks = st->nr_tasks[s];
		if (!st->nr_tasks[s]) {
			st->rpc[s].has_step_id = st->rpc[s].has_num_tasks = 1;
			st->rpc[s].step_id = st->id[s];
			st->rpc[s].nodes = st->nodes[s];
			st->rpc[s].num_tasks = st->num_tasks[s];
		}
		st->ptrs[s] = &st->rpc[s];
	}
	req->steps = st->nr ? st->ptrs : NULL;
	req->n_steps = st->nr;
}
