/*
 * register: the step's registration with ckptd (see register.h).  The
 * plugin lives in one slurmstepd per step, so the step's state is a few
 * globals: the tasks forked so far and whether the agent took them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#ifdef CKPT_HAVE_CLIENT
#include "ckpt/client.h"
#endif
#include "register.h"

static struct {
	uint32_t job, step;
	pid_t *pids;
	size_t nr, max;
	int registered;
	uint32_t nodes;
} cur;

/* "batch", "extern" or the step's number, for messages. */
static const char *step_name(uint32_t step)
{
	static char buf[16];

	if (step == SLURM_BATCH_SCRIPT)
		return "batch";
	if (step == SLURM_EXTERN_CONT)
		return "extern";
	snprintf(buf, sizeof(buf), "%u", step);
	return buf;
}

/* Copy `at` into buf if it fits. */
static void copy_path(char *buf, size_t len, const char *at)
{
	if (strlen(at) < len)
		strcpy(buf, at);
}

int task_cgroup(pid_t pid, char *buf, size_t len)
{
	char path[64], line[4096], v1[4096] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *nl = strchr(line, '\n'), *at;
		if (nl)
			*nl = '\0';
		if (!strncmp(line, "0::", 3))
			copy_path(buf, len, line + 3);
		else if ((at = strstr(line, ":freezer:")))
			copy_path(v1, sizeof(v1), at + 9);
	}
	fclose(f);
	/* Hybrid v1/v2 trees put everything at "/" in v2: use v1's then. */
	if (v1[0] && (!buf[0] || !strcmp(buf, "/")))
		copy_path(buf, len, v1);
	return 0;
}

#ifdef CKPT_HAVE_CLIENT
static void send_registration(uid_t uid, const struct job_policy *p)
{
	char cgroup[4096];
	struct ckpt_job_reg r = {
		.job_id = cur.job,
		.step_id = cur.step,
		.uid = uid,
		.pids = cur.pids,
		.nr_pids = cur.nr,
		.cgroup = cgroup,
		.policy = policy_kind_name(p->kind),
		.dir = p->dir[0] ? p->dir : NULL,
		.interval_min = p->interval_min,
		/* The batch step's task is the ckpt-batch wrapper. */
		.wrapper = cur.step == SLURM_BATCH_SCRIPT,
		.nodes = cur.nodes,
	};
	int err;

	task_cgroup(cur.pids[0], cgroup, sizeof(cgroup));
	if (!cgroup[0])
		r.cgroup = NULL;
	err = ckpt_client_register(&r);
	if (err) {
		slurm_error("ckpt: job %u step %s: cannot register with ckptd: %s; "
			    "this step runs without checkpoints", cur.job, step_name(cur.step), strerror(-err));
		return;
	}
	cur.registered = 1;
	slurm_verbose("ckpt: job %u step %s: %zu task(s) registered with ckptd", cur.job,
		      step_name(cur.step), cur.nr);
}
#else
static void send_registration(uid_t uid, const struct job_policy *p)
{
	slurm_info("ckpt: job %u step %s: built without ckptd's client library; "
		   "tasks not registered", cur.job, step_name(cur.step));
}
#endif

void step_add_task(uint32_t job, uint32_t step, uid_t uid, pid_t pid, uint32_t ntasks,
		   uint32_t nnodes, const struct job_policy *p)
{
	cur.nodes = nnodes;
	if (!cur.pids) {
		cur.pids = calloc(ntasks ? ntasks : 1, sizeof(pid_t));
		if (!cur.pids) {
			slurm_error("ckpt: job %u step %s: out of memory", job, step_name(step));
			return;
		}
		cur.max = ntasks ? ntasks : 1;
		cur.job = job;
		cur.step = step;
	}
	if (cur.nr < cur.max)
		cur.pids[cur.nr++] = pid;
	if (cur.nr == cur.max)
		send_registration(uid, p);
}

int agent_check(char *why, size_t len)
{
#ifdef CKPT_HAVE_CLIENT
	const char *sock = ckpt_client_socket();
	struct ckpt_conn *c;
	int err;

	if (!sock) {
		snprintf(why, len, "CKPT_SOCKET=none: no agent");
		return -ENOENT;
	}
	err = ckpt_conn_open(sock, &c);
	if (err) {
		snprintf(why, len, "ckptd does not answer on %s: %s", sock, strerror(-err));
		return err;
	}
	ckpt_conn_close(c);
	return 0;
#else
	snprintf(why, len, "ckpt.so was built without ckptd's client library");
	return -ENOSYS;
#endif
}

void step_unregister(void)
{
#ifdef CKPT_HAVE_CLIENT
	int err;

	if (!cur.registered)
		return;
	err = ckpt_client_unregister(cur.job, cur.step);
	if (err)
		slurm_error("ckpt: job %u step %s: unregister: %s", cur.job, step_name(cur.step),
			    strerror(-err));
	cur.registered = 0;
#endif
}

void job_unregister(uint32_t job)
{
#ifdef CKPT_HAVE_CLIENT
	int err = ckpt_client_unregister(job, -1);

	/* No agent, or it never knew the job: nothing to forget. */
	if (err && err != -ENOENT && err != -ECONNREFUSED)
		slurm_error("ckpt: job %u: unregister: %s", job, strerror(-err));
#endif
}
