/*
 * policy: parse and check the plugin's options, and write and read the
 * per-job policy file (format in policy.h).  Written by slurmstepd as root
 * into a root-owned directory, so a job cannot forge another job's policy;
 * everything in it is still checked again when it is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

static const char *const kind_names[] = {
	[POLICY_NONE] = "none",
	[POLICY_ON_PREEMPT] = "on-preempt",
	[POLICY_PERIODIC] = "periodic",
	[POLICY_MANUAL] = "manual",
};

#define MAX_INTERVAL_MIN 525600 /* a year */

int policy_parse_kind(const char *s, enum job_policy_kind *kind)
{
	for (int k = POLICY_ON_PREEMPT; k <= POLICY_MANUAL; k++)
		if (s && !strcmp(s, kind_names[k])) {
			*kind = k;
			return 0;
		}
	return -EINVAL;
}

const char *policy_kind_name(enum job_policy_kind kind)
{
	if (kind < POLICY_NONE || kind > POLICY_MANUAL)
		return "?";
	return kind_names[kind];
}

int policy_check_dir(const char *s)
{
	if (!s || s[0] != '/' || strlen(s) >= PATH_MAX || strchr(s, '\n'))
		return -EINVAL;
	return 0;
}

int policy_parse_interval(const char *s, uint32_t *min)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > MAX_INTERVAL_MIN)
		return -EINVAL;
	*min = v;
	return 0;
}

int policy_parse_timelimit(const char *s, struct timelimit *t)
{
	char *end;
	unsigned long n;

	if (s && !strcmp(s, "stop")) {
		*t = (struct timelimit){ TIMELIMIT_STOP, 0 };
		return 0;
	}
	if (!s || strncmp(s, "requeue", 7) || (s[7] && s[7] != ':'))
		return -EINVAL;
	if (!s[7]) {
		/* The site's number, or one if the site's default is stop. */
		t->requeues = t->action == TIMELIMIT_REQUEUE && t->requeues ? t->requeues : 1;
		t->action = TIMELIMIT_REQUEUE;
		return 0;
	}
	if (s[8] < '1' || s[8] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s + 8, &end, 10);
	if (errno || *end || n > TIMELIMIT_MAX_REQUEUES)
		return -EINVAL;
	*t = (struct timelimit){ TIMELIMIT_REQUEUE, (uint32_t)n };
	return 0;
}

const char *policy_timelimit_name(const struct timelimit *t, char *buf, size_t len)
{
	if (t->action == TIMELIMIT_REQUEUE)
		snprintf(buf, len, "requeue:%u", t->requeues);
	else
		snprintf(buf, len, "stop");
	return buf;
}

int policy_check(const struct job_policy *p, const char **why)
{
	if (p->kind == POLICY_PERIODIC && !p->interval_min) {
		*why = "--checkpoint=periodic needs --checkpoint-interval=MIN";
		return -EINVAL;
	}
	if (p->kind != POLICY_PERIODIC && p->interval_min) {
		*why = "--checkpoint-interval goes with --checkpoint=periodic";
		return -EINVAL;
	}
	return 0;
}

static int policy_path(char *buf, size_t len, const char *jobdir, uint32_t job,
		       const char *suffix)
{
	int n = snprintf(buf, len, "%s/%u.policy%s", jobdir, job, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

int policy_write(const char *jobdir, uint32_t job, uid_t uid, const struct job_policy *p,
		 int keep)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[PATH_MAX + 256], limit[32];
	int fd, err, n;

	if (policy_path(path, sizeof(path), jobdir, job, "") ||
	    policy_path(tmp, sizeof(tmp), jobdir, job, ".tmp"))
		return -ENAMETOOLONG;
	if (keep && !access(path, F_OK))
		return 0;
	if (mkdir(jobdir, 0755) && errno != EEXIST)
		return -errno;
	n = snprintf(text, sizeof(text),
		     "job_id=%u\nuid=%u\npolicy=%s\ndir=%s\ninterval_min=%u\ntimelimit=%s\n", job,
		     (unsigned)uid, policy_kind_name(p->kind), p->dir, p->interval_min,
		     policy_timelimit_name(&p->timelimit, limit, sizeof(limit)));
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	/* Each step of a job may write it: a private name, then rename. */
	snprintf(tmp + strlen(tmp), sizeof(tmp) - strlen(tmp), ".%d", (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = write_all(fd, text, n);
	if (!err && fchmod(fd, 0644))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* One key=value line into the policy; unknown keys are ignored so the
 * format can grow. */
static int parse_line(char *line, uid_t *uid, struct job_policy *p, uint32_t job)
{
	char *eq = strchr(line, '=');
	char *end;
	unsigned long v;

	if (!eq)
		return -EINVAL;
	*eq++ = '\0';
	if (!strcmp(line, "policy"))
		return policy_parse_kind(eq, &p->kind);
	if (!strcmp(line, "dir")) {
		if (*eq && policy_check_dir(eq))
			return -EINVAL;
		strcpy(p->dir, eq); /* length checked above, or empty */
		return 0;
	}
	if (!strcmp(line, "timelimit")) {
		/* A file has the number: a bare "requeue" is not one of ours. */
		if (!strcmp(eq, "requeue"))
			return -EINVAL;
		return policy_parse_timelimit(eq, &p->timelimit);
	}
	if (!strcmp(line, "interval_min")) {
		p->interval_min = 0;
		return strcmp(eq, "0") ? policy_parse_interval(eq, &p->interval_min) : 0;
	}
	if (strcmp(line, "uid") && strcmp(line, "job_id"))
		return 0;
	errno = 0;
	v = strtoul(eq, &end, 10);
	if (errno || *end || !*eq || v > UINT32_MAX)
		return -EINVAL;
	if (!strcmp(line, "uid"))
		*uid = v;
	else if (v != job)
		return -EINVAL;
	return 0;
}

int policy_read(const char *jobdir, uint32_t job, uid_t *uid, struct job_policy *p)
{
	char path[PATH_MAX], line[PATH_MAX + 64];
	FILE *f;
	int err = 0;

	if (policy_path(path, sizeof(path), jobdir, job, ""))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	memset(p, 0, sizeof(*p));
	*uid = (uid_t)-1;
	while (!err && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		if (!len || line[len - 1] != '\n') {
			err = -EINVAL; /* too long, or cut short */
			break;
		}
		line[len - 1] = '\0';
		err = parse_line(line, uid, p, job);
	}
	fclose(f);
	if (!err && (p->kind == POLICY_NONE || *uid == (uid_t)-1))
		err = -EINVAL;
	return err;
}
