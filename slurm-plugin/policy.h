/*
 * policy: a job's checkpoint policy as the user asked for it with the
 * plugin's options, and the root-owned per-job file that carries it to
 * ckptctl and the epilog: <jobdir>/<JOBID>.policy (jobdir defaults to
 * /run/ckpt/jobs), lines of key=value:
 *
 *   job_id=42
 *   uid=1000
 *   policy=on-preempt        on-preempt | periodic | manual
 *   dir=/shared/ckpt         base of the job's sets (BASE/JOBID/SEQ); empty: storage.base
 *   interval_min=0           minutes between periodic checkpoints
 *   timelimit=stop           stop | requeue:N, what a checkpoint at the time limit does
 */
#ifndef CKPT_SLURM_POLICY_H
#define CKPT_SLURM_POLICY_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define JOB_POLICY_DIR "/run/ckpt/jobs"

enum job_policy_kind { POLICY_NONE, POLICY_ON_PREEMPT, POLICY_PERIODIC, POLICY_MANUAL };

/* What the checkpoint a job's time limit brings (its --signal, sent T
 * seconds before the limit) does next: stop, the job ends with a set to
 * restart from; or requeue, the job goes on from the set in a new run,
 * at most N times (counted per job, ckptctl), then stops.  Never more
 * than TIMELIMIT_MAX_REQUEUES: a job is never extended forever. */
enum timelimit_action { TIMELIMIT_STOP, TIMELIMIT_REQUEUE };
#define TIMELIMIT_MAX_REQUEUES 1000

struct timelimit {
	enum timelimit_action action;
	uint32_t requeues; /* requeue: at most this many; 0 with stop */
};

struct job_policy {
	enum job_policy_kind kind;
	char dir[PATH_MAX];
	uint32_t interval_min;
	struct timelimit timelimit;
};

/* "on-preempt" -> POLICY_ON_PREEMPT; -EINVAL for anything else. */
int policy_parse_kind(const char *s, enum job_policy_kind *kind);
const char *policy_kind_name(enum job_policy_kind kind);
/* An absolute path, one line; -EINVAL otherwise. */
int policy_check_dir(const char *s);
/* 1..525600 minutes; -EINVAL otherwise. */
int policy_parse_interval(const char *s, uint32_t *min);
/* "stop", "requeue:N" (1 <= N <= TIMELIMIT_MAX_REQUEUES), or "requeue"
 * alone, which takes N from *t as it is (the site's default); -EINVAL
 * for anything else. */
int policy_parse_timelimit(const char *s, struct timelimit *t);
/* "stop" or "requeue:N", into buf. */
const char *policy_timelimit_name(const struct timelimit *t, char *buf, size_t len);
/* Options that only make sense together; 0 or -EINVAL with *why set. */
int policy_check(const struct job_policy *p, const char **why);

/* Write <jobdir>/<job>.policy atomically, mode 0644; with `keep`, leave
 * a file that is already there alone. */
int policy_write(const char *jobdir, uint32_t job, uid_t uid, const struct job_policy *p,
		 int keep);
/* Read it back (what ckptctl and the epilog do); -ENOENT when the job
 * asked for no checkpoints. */
int policy_read(const char *jobdir, uint32_t job, uid_t *uid, struct job_policy *p);

#endif
