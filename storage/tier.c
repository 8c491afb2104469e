/*
 * tier: a dump into job sets, with the storage policy of ckpt.conf.
 *
 *   storage.base   shared directory of job sets (BASE/JOB/SEQ)
 *   storage.local  node-local directory; empty: none.  With one, the dump
 *                  writes there (fast, the job resumes sooner) and the set
 *                  is then flushed to BASE; it is committed (a checkpoint
 *                  one can restart from anywhere) only when its manifest
 *                  is on BASE.
 *   storage.flush  sync: the flush happens before the dump returns;
 *                  background: a child process does it.
 *   retention.keep, retention.user_quota: see retention.c.
 *
 * The SEQ is taken on BASE at the start (its directory locked by this
 * process and then by the flusher): the local set uses the same SEQ.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "internal.h"
#include "tier.h"

static void canonical(char *path, size_t len)
{
	char real[PATH_MAX];

	if (path[0] && realpath(path, real) && strlen(real) < len)
		strcpy(path, real);
}

int set_policy_load(struct set_policy *p, const char *base)
{
	struct conf *c;
	const char *flush;
	int ret = conf_load(conf_path(), &c);

	if (ret)
		return ret;
	memset(p, 0, sizeof(*p));
	snprintf(p->base, sizeof(p->base), "%s",
		 base ? base : conf_get(c, "storage.base", SET_DEFAULT_BASE));
	snprintf(p->local, sizeof(p->local), "%s", conf_get(c, "storage.local", ""));
	/* Sets are reached without following symlinks; root's own choices
	 * in ckpt.conf may hold some (/var/lib/ckpt -> /data/ckpt): resolved
	 * here, once.  A base the caller names is taken as it is. */
	if (!base)
		canonical(p->base, sizeof(p->base));
	canonical(p->local, sizeof(p->local));
	flush = conf_get(c, "storage.flush", "sync");
	if (!strcmp(flush, "background")) {
		p->background = 1;
	} else if (strcmp(flush, "sync")) {
		st_err("%s: storage.flush = %s: sync or background", conf_path(), flush);
		ret = -EINVAL;
	}
	if (!ret)
		ret = conf_get_u64(c, "retention.keep", 0, &p->keep);
	if (!ret)
		ret = conf_get_u64(c, "retention.user_quota", 0, &p->quota);
	if (!ret)
		ret = conf_get_u64(c, "retention.ended_keep_s", 7 * 24 * 3600, &p->ended_keep_s);
	if (!ret && !p->base[0]) {
		st_err("%s: storage.base is empty", conf_path());
		ret = -EINVAL;
	}
	conf_free(c);
	return ret;
}

struct job_dump {
	struct set_policy policy;
	char *job;
	uint64_t seq;
	uint32_t uid;
	struct img_set *shared, *local;
};

/* --parent: "latest", a SEQ of the job, or a set directory. */
static int parent_dir(const struct job_dump *jd, const char *parent, char *dir, size_t len,
		      char *record, size_t rlen)
{
	uint64_t seq;
	char *end;

	record[0] = '\0';
	if (!strcmp(parent, "latest")) {
		int ret = imgset_latest(jd->policy.base, jd->job, dir, len);
		if (ret)
			return ret;
		snprintf(record, rlen, "..%s", strrchr(dir, '/'));
		return 0;
	}
	seq = strtoull(parent, &end, 10);
	if (*parent >= '1' && *parent <= '9' && !*end) {
		snprintf(record, rlen, "../%llu", (unsigned long long)seq);
		if ((size_t)snprintf(dir, len, "%s/%s/%llu", jd->policy.base, jd->job,
				     (unsigned long long)seq) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	snprintf(dir, len, "%s", parent);
	return 0;
}

static int job_begin_sets(struct job_dump *jd, int64_t uid)
{
	const struct set_policy *p = &jd->policy;
	uint64_t seq;
	int ret = img_set_create_job(p->base, jd->job, uid, 0, &jd->shared, &jd->seq);

	if (ret || !p->local[0])
		return ret;
	imgset_gc(p->local, jd->job);
	return img_set_create_job(p->local, jd->job, uid, jd->seq, &jd->local, &seq);
}

int job_dump_begin(const struct set_policy *p, const char *job, int64_t uid, const char *parent,
		   struct job_dump **out)
{
	struct job_dump *jd = calloc(1, sizeof(*jd));
	char dir[PATH_MAX], record[64];
	int ret;

	if (!jd || !(jd->job = strdup(job))) {
		free(jd);
		return -ENOMEM;
	}
	jd->policy = *p;
	ret = job_begin_sets(jd, uid);
	if (!ret && parent)
		ret = parent_dir(jd, parent, dir, sizeof(dir), record, sizeof(record));
	if (!ret && parent)
		ret = img_set_use_parent(job_dump_set(jd), dir, record[0] ? record : NULL);
	if (ret) {
		job_dump_abort(jd);
		job_dump_free(jd);
		return ret;
	}
	*out = jd;
	return 0;
}

struct img_set *job_dump_set(struct job_dump *jd)
{
	return jd->local ? jd->local : jd->shared;
}

uint64_t job_dump_seq(const struct job_dump *jd)
{
	return jd->seq;
}

/* Remove what was written and the SEQ directory itself (the set
 * recorded both). */
static void abort_set(struct img_set **set)
{
	if (!*set)
		return;
	img_set_abort(*set);
	img_set_close(*set);
	*set = NULL;
}

void job_dump_abort(struct job_dump *jd)
{
	abort_set(&jd->local);
	abort_set(&jd->shared);
}

int job_dump_commit(struct job_dump *jd, uint32_t root_pid)
{
	struct img_set *set = job_dump_set(jd);
	int ret = img_set_commit(set, root_pid);

	if (!ret)
		jd->uid = (uint32_t)set->owner_uid;
	return ret;
}

/* Local → shared, then the local copy goes. */
static int flush(struct job_dump *jd)
{
	struct img_set *from;
	char dir[PATH_MAX];
	int ret;

	snprintf(dir, sizeof(dir), "%s", jd->local->dir);
	img_set_close(jd->local); /* its manifest is there: nothing to abort any more */
	jd->local = NULL;
	ret = img_set_open_manifest(dir, &from);
	if (!ret) {
		ret = img_set_copy(from, jd->shared);
		img_set_close(from);
	}
	if (ret) {
		st_err("%s: not flushed to %s; the committed set stays there", dir,
		       jd->policy.base);
		abort_set(&jd->shared);
		return ret;
	}
	imgset_remove(jd->policy.local, jd->job, jd->seq);
	return 0;
}

/* On BASE: the latest pointer, then retention. */
static int publish(struct job_dump *jd)
{
	const struct set_policy *p = &jd->policy;
	int ret;

	img_set_close(jd->shared); /* committed: unlocked */
	jd->shared = NULL;
	ret = imgset_set_latest(p->base, jd->job, jd->seq);
	if (!ret)
		ret = imgset_retain(p->base, jd->job, p->keep, p->quota, jd->uid, jd->seq);
	return ret;
}

int job_dump_finish(struct job_dump *jd, pid_t *flusher)
{
	pid_t pid;
	int ret;

	*flusher = 0;
	if (!jd->local)
		return publish(jd);
	if (!jd->policy.background) {
		ret = flush(jd);
		return ret ? ret : publish(jd);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The flusher: it shares our fds, so the locks of both sets
		 * stay held until it is done. */
		ret = flush(jd);
		_exit(ret || publish(jd) ? 1 : 0);
	}
	img_set_close(jd->local);
	jd->local = NULL;
	img_set_close(jd->shared);
	jd->shared = NULL;
	*flusher = pid;
	return 0;
}

void job_dump_free(struct job_dump *jd)
{
	if (!jd)
		return;
	img_set_close(jd->local);
	img_set_close(jd->shared);
	free(jd->job);
	free(jd);
}
