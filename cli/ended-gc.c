/*
 * ended-gc: `ckptctl image gc --ended [--base DIR]`, retention across a
 * job's life.  The sets of a Slurm job that is over (completed,
 * cancelled, failed, timed out...) are kept retention.ended_keep_s
 * (ckpt.conf, default 7 days) after its end, then its whole directory
 * goes.  Slurm says whether a job is over and since when (`scontrol show
 * job`: a final JobState, its EndTime); a job Slurm no longer knows
 * (purged MinJobAge after its end) is counted from the last change of its
 * directory.  What Slurm cannot tell (slurmctld down, no scontrol) is
 * kept: nothing is removed on a guess.  A pending, running or requeued
 * job is never touched.  The epilog runs it after each job; a site may
 * also run it from cron.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "image-sets.h"
#include "storage.h"

enum job_fate { JOB_UNKNOWN, JOB_ALIVE, JOB_OVER, JOB_PURGED };

static int final_state(const char *s)
{
	static const char *const over[] = { "COMPLETED", "CANCELLED", "FAILED",	  "TIMEOUT",
					    "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
					    "OUT_OF_MEMORY" };
	for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++)
		if (!strcmp(s, over[i]))
			return 1;
	return 0;
}

/* The value of KEY= in a `scontrol show job -o` line, into buf. */
static int field(const char *line, const char *key, char *buf, size_t len)
{
	char pat[32];
	snprintf(pat, sizeof(pat), " %s=", key);
	const char *p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	size_t n = strcspn(p, " \n");
	snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
	return 0;
}

/* What Slurm says of job `job` (digits only: checked by the caller). */
static enum job_fate ask_slurm(const char *job, char *state, size_t len, time_t *end)
{
	char cmd[64], line[8192] = " ", when[32];
	snprintf(cmd, sizeof(cmd), "scontrol show job -o %s 2>&1", job);
	FILE *f = popen(cmd, "r");
	if (!f)
		return JOB_UNKNOWN;
	size_t n = fread(line + 1, 1, sizeof(line) - 2, f);
	line[n + 1] = '\0';
	int rc = pclose(f);
	if (strstr(line, "Invalid job id specified"))
		return JOB_PURGED;
	if (rc || field(line, "JobState", state, len))
		return JOB_UNKNOWN;
	if (!final_state(state))
		return JOB_ALIVE;
	struct tm tm = { .tm_isdst = -1 };
	if (field(line, "EndTime", when, sizeof(when)) || !strptime(when, "%Y-%m-%dT%H:%M:%S", &tm))
		return JOB_UNKNOWN;
	*end = mktime(&tm);
	return JOB_OVER;
}

static int job_id_name(const char *s)
{
	return s[0] >= '1' && s[0] <= '9' && strlen(s) <= 10 && strspn(s, "0123456789") == strlen(s);
}

/* One job directory: removed when over for keep_s seconds. */
static int collect(const char *base, const char *job, uint64_t keep_s, time_t now)
{
	char state[32] = "purged", path[4096];
	time_t end = 0;
	struct stat st;
	enum job_fate f = ask_slurm(job, state, sizeof(state), &end);
	snprintf(path, sizeof(path), "%s/%s", base, job);
	if (f == JOB_PURGED && !lstat(path, &st))
		end = st.st_mtime;
	if (f == JOB_UNKNOWN || f == JOB_ALIVE || (f == JOB_PURGED && !end) ||
	    (uint64_t)(now > end ? now - end : 0) < keep_s)
		return 0;
	if (imgset_remove_job(base, job))
		return -1;
	printf("%s: job %s over (%s) for %llds: its sets removed\n", path, job, state,
	       (long long)(now - end));
	return 0;
}

int gc_ended(const char *base, uint64_t keep_s)
{
	DIR *d = opendir(base);
	struct dirent *e;
	int ret = 0;
	if (!d) {
		fprintf(stderr, "ckptctl: image gc --ended: %s: %s\n", base, strerror(errno));
		return 1;
	}
	time_t now = time(NULL);
	while ((e = readdir(d)))
		if (job_id_name(e->d_name) && collect(base, e->d_name, keep_s, now))
			ret = 1;
	closedir(d);
	return ret;
}
