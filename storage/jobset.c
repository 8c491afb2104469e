/*
 * Job sets: BASE/JOB/SEQ/ directories, the "latest" pointer and garbage
 * collection (see storage.h).  Retention is in retention.c.
 *
 * The job directory's flock serialises what changes its list of sets:
 * picking the next SEQ (and locking the new set), collecting garbage,
 * removing sets.  A set being written holds its own flock (imgset.c), so
 * the collector removes a manifest-less set only when its flock is free:
 * its writer died.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LATEST "latest"
#define LATEST_TMP "latest.tmp"

/* SEQ as a directory name: decimal, no leading zero, not 0. */
static int parse_seq(const char *name, uint64_t *seq)
{
	char *end;
	unsigned long long v;

	if (name[0] < '1' || name[0] > '9' || strlen(name) > 19)
		return -EINVAL;
	v = strtoull(name, &end, 10);
	if (*end)
		return -EINVAL;
	*seq = v;
	return 0;
}

static int job_path(const char *base, const char *job, char *path, size_t len)
{
	if (!set_valid_name(job) || job[0] == '.') {
		st_err("job id '%s': not a valid name", job);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, len, "%s/%s", base, job) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* BASE (0711: users reach their own job directories) and BASE/JOB
 * (0700, the job's user's); the job directory comes back open and locked.
 * Both are reached without following symlinks: BASE may be a directory a
 * user named (--checkpoint-dir), written by that user's process. */
static int job_open(const char *base, const char *job, int64_t uid, int create, int *fd_out)
{
	struct created_log made = { 0 };
	char path[PATH_MAX];
	int ret = job_path(base, job, path, sizeof(path)), fd;

	if (ret)
		return ret;
	if (create) {
		/* The base and its missing parents (sbatch --checkpoint-dir
		 * names a directory that may not exist yet), by whoever writes. */
		fd = dir_create_nofollow(base, 0711, 1, NULL);
		if (fd < 0) {
			ret = fd;
			st_err("%s: %s", base, ret == -ELOOP ? "a symlink on the way" : strerror(-ret));
			return ret;
		}
		close(fd);
		fd = dir_create_nofollow(path, 0700, 0, &made);
	} else {
		fd = dir_open_nofollow(path, O_RDONLY);
	}
	if (fd >= 0 && made.nr && uid >= 0) {
		struct passwd *pw = getpwuid((uid_t)uid);
		if (fchown(fd, (uid_t)uid, pw ? pw->pw_gid : (gid_t)-1))
			fd = -errno;
	}
	created_log_free(&made);
	if (fd < 0) {
		ret = fd;
		if (ret != -ENOENT || create)
			st_err("%s: %s", path, ret == -ELOOP ? "a symlink on the way" : strerror(-ret));
		return ret;
	}
	if (flock(fd, LOCK_EX)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

/* The highest SEQ in the job directory. */
static int max_seq(int dirfd, uint64_t *max)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;
	uint64_t seq;

	if (!d)
		return -errno;
	rewinddir(d); /* the dup shares its offset with dirfd */
	*max = 0;
	while ((e = readdir(d)))
		if (!parse_seq(e->d_name, &seq) && seq > *max)
			*max = seq;
	closedir(d);
	return 0;
}

/* A set's directory; in a multi-node set, nodes/ and each part in it
 * too (depth 2: the set, nodes/, a part), each its manifest first. */
static int remove_dir_depth(int dirfd, const char *name, int depth)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return -errno;
	/* A part being written (a held dump's flock) is its writer's. */
	if (depth == 2 && flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -EBUSY;
	}
	/* The manifest first: a set half-removed is garbage, never a
	 * checkpoint with holes. */
	if (!unlinkat(fd, MANIFEST_NAME, 0))
		fsync(fd);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    unlinkat(fd, e->d_name, 0) && errno == EISDIR && depth < 2)
			remove_dir_depth(fd, e->d_name, depth + 1);
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR))
		return -errno;
	fsync(dirfd);
	return 0;
}

static int remove_dir_at(int dirfd, const char *name)
{
	return remove_dir_depth(dirfd, name, 0);
}

/* A manifest-less set whose writer is gone (its flock is free). */
static int abandoned(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return 0;
	if (faccessat(fd, MANIFEST_NAME, F_OK, AT_SYMLINK_NOFOLLOW) && errno == ENOENT &&
	    !flock(fd, LOCK_EX | LOCK_NB))
		ret = 1;
	close(fd);
	return ret;
}

static int gc_locked(const char *base, const char *job, int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;
	uint64_t seq;
	int ret = 0;

	if (!d)
		return -errno;
	rewinddir(d); /* the dup shares its offset with dirfd */
	while ((e = readdir(d))) {
		if (parse_seq(e->d_name, &seq) || !abandoned(dirfd, e->d_name))
			continue;
		int r = remove_dir_at(dirfd, e->d_name);
		if (r) {
			st_err("%s/%s/%s: removing an incomplete set: %s", base, job, e->d_name,
			       strerror(-r));
			ret = r;
		}
	}
	closedir(d);
	return ret;
}

int imgset_gc(const char *base, const char *job)
{
	int fd, ret = job_open(base, job, -1, 0, &fd);

	if (ret)
		return ret == -ENOENT ? 0 : ret;
	ret = gc_locked(base, job, fd);
	close(fd);
	return ret;
}

int img_set_create_job(const char *base, const char *job, int64_t uid, uint64_t seq,
		       struct img_set **out, uint64_t *seq_out)
{
	char path[PATH_MAX], name[32];
	int fd, ret = job_open(base, job, uid, 1, &fd);

	if (ret)
		return ret;
	gc_locked(base, job, fd);
	if (!seq && (ret = max_seq(fd, &seq)) == 0)
		seq++;
	snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
	if (!ret && mkdirat(fd, name, 0700)) {
		ret = -errno;
		st_err("%s/%s/%s: mkdir: %s", base, job, name, strerror(-ret));
	}
	if (!ret) {
		/* The SEQ directory is the set's: an abort removes it. */
		struct created_log made = { 0 };
		snprintf(path, sizeof(path), "%s/%s", base, job);
		ret = created_record(fd, path, name, -1, 1, &made);
		snprintf(path, sizeof(path), "%s/%s/%s", base, job, name);
		if (!ret)
			ret = set_create_with(path, 0, &made, out);
		else
			unlinkat(fd, name, AT_REMOVEDIR);
		created_log_free(&made);
	}
	if (!ret && (ret = img_set_set_job(*out, job, seq)) == 0 && uid >= 0)
		img_set_set_owner(*out, (uid_t)uid);
	close(fd); /* the new set is locked by its own fd from here */
	*seq_out = seq;
	return ret;
}

int imgset_next_seq(const char *base, const char *job, int64_t uid, uint64_t *seq)
{
	int fd, ret = job_open(base, job, uid, 1, &fd);

	if (ret)
		return ret;
	ret = max_seq(fd, seq);
	*seq += 1;
	close(fd);
	return ret;
}

int imgset_set_latest(const char *base, const char *job, uint64_t seq)
{
	char path[PATH_MAX], name[32];
	int fd, ret = job_open(base, job, -1, 0, &fd);

	if (ret)
		return ret;
	snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
	unlinkat(fd, LATEST_TMP, 0);
	if (symlinkat(name, fd, LATEST_TMP) || renameat(fd, LATEST_TMP, fd, LATEST) || fsync(fd)) {
		ret = -errno;
		job_path(base, job, path, sizeof(path));
		st_err("%s/%s: %s", path, LATEST, strerror(-ret));
	}
	close(fd);
	return ret;
}

int imgset_latest(const char *base, const char *job, char *path, size_t len)
{
	char dir[PATH_MAX], target[64];
	uint64_t seq;
	ssize_t n;
	int ret = job_path(base, job, dir, sizeof(dir));

	if (ret)
		return ret;
	if ((size_t)snprintf(path, len, "%s/%s", dir, LATEST) >= len)
		return -ENAMETOOLONG;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		ret = -errno;
		st_err("%s: %s", path, ret == -ENOENT ? "no committed checkpoint" : strerror(-ret));
		return ret;
	}
	target[n] = '\0';
	if (parse_seq(target, &seq)) {
		st_err("%s: points to '%s', not a set", path, target);
		return -EINVAL;
	}
	if ((size_t)snprintf(path, len, "%s/%s", dir, target) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* "../SEQ": the parent within the job. */
static int64_t parent_seq(const char *parent)
{
	uint64_t seq;

	if (!parent || strncmp(parent, "../", 3) || parse_seq(parent + 3, &seq))
		return -1;
	return (int64_t)seq;
}

static int info_of(const char *dir, uint64_t seq, struct set_info *si)
{
	struct img_set *set;
	char path[PATH_MAX];
	struct stat st;

	memset(si, 0, sizeof(*si));
	si->seq = seq;
	si->parent_seq = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%llu/%s", dir, (unsigned long long)seq,
			     MANIFEST_NAME) >= sizeof(path) ||
	    lstat(path, &st))
		return 0; /* not committed */
	path[strlen(path) - strlen(MANIFEST_NAME) - 1] = '\0';
	if (img_set_open_manifest(path, &set))
		return 0; /* a damaged manifest: listed, not committed */
	si->committed = 1;
	si->created_ns = set->created_ns;
	si->bytes = img_set_bytes(set) + (uint64_t)st.st_size;
	si->owner_uid = (uint32_t)set->owner_uid;
	si->parent_seq = parent_seq(set->parent_path);
	img_set_close(set);
	return 0;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct set_info *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int imgset_list(const char *base, const char *job, struct set_info **out, size_t *nr)
{
	char dir[PATH_MAX];
	struct set_info *v = NULL;
	size_t n = 0;
	struct dirent *e;
	uint64_t seq;
	DIR *d;
	int ret = job_path(base, job, dir, sizeof(dir));

	if (ret)
		return ret;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (parse_seq(e->d_name, &seq))
			continue;
		struct set_info *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		info_of(dir, seq, &v[n++]);
	}
	closedir(d);
	if (ret) {
		free(v);
		return ret;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_seq);
	*out = v;
	*nr = n;
	return 0;
}

static int needed(const struct set_info *v, size_t n, uint64_t seq)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].committed && v[i].parent_seq == (int64_t)seq)
			return 1;
	return 0;
}

int imgset_remove_job(const char *base, const char *job)
{
	int fd, ret = job_open(base, job, -1, 0, &fd);
	if (ret)
		return ret;
	int lfd = dup(fd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	struct dirent *e;
	uint64_t seq;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!parse_seq(e->d_name, &seq))
			remove_dir_at(fd, e->d_name);
		else
			unlinkat(fd, e->d_name, 0); /* latest, the time-limit count */
	}
	if (d)
		closedir(d);
	else if (lfd >= 0)
		close(lfd);
	close(fd);
	/* The job directory, from BASE reached without symlinks. */
	int bfd = dir_open_nofollow(base, O_RDONLY);
	if (bfd < 0)
		ret = bfd;
	else if (unlinkat(bfd, job, AT_REMOVEDIR))
		ret = -errno;
	if (bfd >= 0)
		close(bfd);
	if (ret)
		st_err("%s/%s: %s", base, job, strerror(-ret));
	return ret;
}

int imgset_remove(const char *base, const char *job, uint64_t seq)
{
	struct set_info *v = NULL;
	char name[32];
	size_t n;
	int fd, ret = job_open(base, job, -1, 0, &fd);

	if (ret)
		return ret;
	ret = imgset_list(base, job, &v, &n);
	if (!ret && needed(v, n, seq)) {
		st_err("%s/%s/%llu: an incremental set needs it (squash that one first)", base, job,
		       (unsigned long long)seq);
		ret = -EBUSY;
	}
	if (!ret) {
		snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
		ret = remove_dir_at(fd, name);
		if (ret)
			st_err("%s/%s/%s: %s", base, job, name, strerror(-ret));
	}
	free(v);
	close(fd);
	return ret;
}
