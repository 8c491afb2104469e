/*
 * register: tell the node's ckptd which processes make up a job step, so
 * that `ckptctl checkpoint ...` can find them.  One registration per step,
 * sent when the last local task has been forked.  Built without the
 * agent's client library (agent/include/ckpt/client.h), these only log.
 */
#ifndef CKPT_SLURM_REGISTER_H
#define CKPT_SLURM_REGISTER_H

#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

/* Called once per task, from slurm_spank_task_post_fork. */
void step_add_task(uint32_t job, uint32_t step, uid_t uid, pid_t pid, uint32_t ntasks,
		   uint32_t nnodes,
		   const struct job_policy *p);
/* 0 when the node's ckptd answers on its socket; else a negative errno
 * and, in why, what is wrong ("ckptd does not answer on PATH: ..."). */
int agent_check(char *why, size_t len);
/* The step ends: unregister it if it was registered. */
void step_unregister(void);
/* The job ends on this node: unregister all its steps. */
void job_unregister(uint32_t job);

/* The task's cgroup from /proc/PID/cgroup: the cgroup v2 path, else the
 * v1 freezer one; "" when there is none. */
int task_cgroup(pid_t pid, char *buf, size_t len);

#endif
