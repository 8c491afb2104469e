/*
 * Retention: after a commit, old sets go.  First the job's own: all but
 * the last `keep` sets.  Then the user's quota over all of BASE: while
 * the user's committed sets hold more than `quota` bytes, the oldest goes
 * first.  A set that an incremental child needs is never removed (its
 * child goes first, then it), nor the set just committed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "internal.h"

struct user_set {
	char *job;
	struct set_info info;
};

struct user_sets {
	struct user_set *v;
	size_t nr;
};

static int needed_in(const struct set_info *v, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].committed && v[i].parent_seq == (int64_t)seq)
			return 1;
	return 0;
}

/* Keep the newest `keep` committed sets of the job; the older ones go,
 * unless a set still there needs them. */
static int retain_job(const char *base, const char *job, uint64_t keep, uint64_t protect)
{
	struct set_info *v;
	size_t n, kept = 0, old = 0;
	int ret = imgset_list(base, job, &v, &n);

	if (ret)
		return ret;
	/* v is sorted by SEQ: the sets before index `old` are past the keep. */
	for (size_t i = n; i-- > 0 && kept < keep;) {
		if (v[i].committed)
			kept++;
		old = i;
	}
	if (kept < keep)
		old = 0;
	/* Newest first: removing a child frees its parent, further down. */
	for (size_t i = old; i-- > 0;) {
		if (!v[i].committed || v[i].seq == protect || needed_in(v, n, v[i].seq))
			continue;
		if (!imgset_remove(base, job, v[i].seq))
			v[i].committed = 0;
	}
	free(v);
	return 0;
}

static int user_sets_add(struct user_sets *us, const char *job, const struct set_info *si)
{
	struct user_set *n = realloc(us->v, (us->nr + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	us->v = n;
	n[us->nr].job = strdup(job);
	n[us->nr].info = *si;
	return n[us->nr++].job ? 0 : -ENOMEM;
}

static void user_sets_free(struct user_sets *us)
{
	for (size_t i = 0; i < us->nr; i++)
		free(us->v[i].job);
	free(us->v);
}

/* Every committed set of `uid` in BASE. */
static int collect_user(const char *base, uint32_t uid, struct user_sets *us, uint64_t *total)
{
	DIR *d = opendir(base);
	struct dirent *e;
	int ret = 0;

	if (!d)
		return -errno;
	*total = 0;
	while (!ret && (e = readdir(d))) {
		struct set_info *v;
		size_t n;

		if (e->d_name[0] == '.' || imgset_list(base, e->d_name, &v, &n))
			continue;
		for (size_t i = 0; !ret && i < n; i++) {
			if (!v[i].committed || v[i].owner_uid != uid)
				continue;
			*total += v[i].bytes;
			ret = user_sets_add(us, e->d_name, &v[i]);
		}
		free(v);
	}
	closedir(d);
	return ret;
}

static int needed_user(const struct user_sets *us, const struct user_set *s)
{
	for (size_t i = 0; i < us->nr; i++)
		if (us->v[i].info.committed && us->v[i].info.parent_seq == (int64_t)s->info.seq &&
		    !strcmp(us->v[i].job, s->job))
			return 1;
	return 0;
}

/* The oldest removable set of the user, or NULL. */
static struct user_set *oldest(struct user_sets *us, const char *job, uint64_t protect)
{
	struct user_set *best = NULL;

	for (size_t i = 0; i < us->nr; i++) {
		struct user_set *s = &us->v[i];
		if (!s->info.committed || (s->info.seq == protect && !strcmp(s->job, job)) ||
		    needed_user(us, s))
			continue;
		if (!best || s->info.created_ns < best->info.created_ns)
			best = s;
	}
	return best;
}

static int retain_quota(const char *base, const char *job, uint64_t quota, uint32_t uid,
			uint64_t protect)
{
	struct user_sets us = { NULL, 0 };
	uint64_t total = 0;
	struct user_set *s;
	int ret = collect_user(base, uid, &us, &total);

	if (ret == -EACCES) {
		/* The job's user writes the set and cannot list root's BASE
		 * (0711): the quota over all of BASE is not enforced here. */
		st_err("%s: not readable by uid %u: retention.user_quota not applied", base,
		       (unsigned)getuid());
		return 0;
	}
	while (!ret && total > quota && (s = oldest(&us, job, protect))) {
		s->info.committed = 0; /* whether removed or not: do not try again */
		if (!imgset_remove(base, s->job, s->info.seq))
			total -= s->info.bytes;
	}
	if (!ret && total > quota)
		st_err("%s: uid %u holds %llu bytes of checkpoints, over the quota of %llu", base,
		       uid, (unsigned long long)total, (unsigned long long)quota);
	user_sets_free(&us);
	return ret;
}

int imgset_retain(const char *base, const char *job, uint64_t keep, uint64_t quota, uint32_t uid,
		  uint64_t protect)
{
	int ret = keep ? retain_job(base, job, keep, protect) : 0;

	if (!ret && quota)
		ret = retain_quota(base, job, quota, uid, protect);
	return ret;
}
