/*
 * created: the no-symlink walk, the records of what a writer created and
 * their removal by inode (see created.h).
 *
 * created_remove() runs in a child the agent forks from a multi-threaded
 * process: it allocates nothing and calls nothing but syscalls.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "created.h"
#include "internal.h"

static created_fn hook;
static void *hook_arg;

void created_hook(created_fn fn, void *arg)
{
	hook = fn;
	hook_arg = arg;
}

static int openat2_nofollow(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_DIRECTORY | O_CLOEXEC),
				.resolve = resolve | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

int dir_open_nofollow(const char *path, int flags)
{
	return openat2_nofollow(AT_FDCWD, path, flags, 0);
}

int created_log_add(struct created_log *log, const struct created *c)
{
	if (log->nr == log->cap) {
		size_t cap = log->cap ? 2 * log->cap : 8;
		struct created *v = realloc(log->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		log->v = v;
		log->cap = cap;
	}
	log->v[log->nr++] = *c;
	return 0;
}

void created_log_free(struct created_log *log)
{
	free(log->v);
	memset(log, 0, sizeof(*log));
}

int created_record(int dirfd, const char *dirpath, const char *name, int fd, int dir,
		   struct created_log *log)
{
	struct created c = { .dir = dir };
	struct stat st, pst;
	int ret;

	if (fstat(dirfd, &pst) ||
	    (fd >= 0 ? fstat(fd, &st) : fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)))
		return -errno;
	if ((size_t)snprintf(c.path, sizeof(c.path), "%s%s%s", dirpath,
			     dirpath[0] && dirpath[strlen(dirpath) - 1] != '/' ? "/" : "",
			     name) >= sizeof(c.path))
		return -ENAMETOOLONG;
	c.dev = st.st_dev;
	c.ino = st.st_ino;
	c.pdev = pst.st_dev;
	c.pino = pst.st_ino;
	ret = log ? created_log_add(log, &c) : 0;
	if (!ret && hook)
		hook(hook_arg, &c);
	return ret;
}

int dir_create_nofollow(const char *path, mode_t mode, int parents, struct created_log *log)
{
	char cur[PATH_MAX] = "", name[NAME_MAX + 1];
	const char *p = path;
	int fd, ret = 0;

	if (!*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(cur))
		return -ENAMETOOLONG;
	fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!ret) {
		const char *end, *rest;
		int made = 0, next;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		if (end - p > NAME_MAX) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, (size_t)(end - p));
		name[end - p] = '\0';
		for (rest = end; *rest == '/'; rest++)
			;
		if ((parents || !*rest) && !mkdirat(fd, name, mode))
			made = 1;
		else if ((parents || !*rest) && errno != EEXIST)
			ret = -errno;
		/* BENEATH: no ".." out of the directory just reached either. */
		next = ret ? ret : openat2_nofollow(fd, name, O_PATH, RESOLVE_BENEATH);
		if (next < 0)
			ret = next;
		if (!ret) {
			size_t len = strlen(cur);
			const char *parent = len ? cur : (path[0] == '/' ? "/" : "");
			if (made && (ret = created_record(fd, parent, name, next, 1, log)) != 0)
				unlinkat(fd, name, AT_REMOVEDIR);
			snprintf(cur + len, sizeof(cur) - len, "%s%s",
				 (path[0] == '/' || len) ? "/" : "", name);
		}
		close(fd);
		fd = next;
		p = end;
	}
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = openat2_nofollow(fd, ".", O_RDONLY, 0);
	if (ret == -EACCES) /* BASE of job sets, 0711: reached, not read */
		ret = openat2_nofollow(fd, ".", O_PATH, 0);
	close(fd);
	return ret;
}

/* path -> its directory and last name, in caller's buffers (no malloc). */
static int split(const char *path, char *dir, char *name)
{
	const char *slash = strrchr(path, '/');
	size_t dlen;

	if (!slash) {
		strcpy(dir, ".");
		slash = path - 1;
	} else {
		dlen = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	if (strlen(slash + 1) > NAME_MAX || !slash[1])
		return -EINVAL;
	strcpy(name, slash + 1);
	return 0;
}

/* 0 when `c` is still there as made (*dfd open on its directory), or
 * -errno / -ESTALE. */
static int created_check(const struct created *c, int *dfd, char *name)
{
	char dir[PATH_MAX];
	struct stat st;
	int ret = 0;

	if (strnlen(c->path, sizeof(c->path)) == sizeof(c->path) || split(c->path, dir, name))
		return -EINVAL;
	*dfd = dir_open_nofollow(dir, O_RDONLY);
	if (*dfd < 0)
		return *dfd;
	if (fstat(*dfd, &st) || st.st_dev != c->pdev || st.st_ino != c->pino)
		ret = -ESTALE;
	else if (fstatat(*dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	else if (st.st_dev != c->dev || st.st_ino != c->ino || !S_ISDIR(st.st_mode) != !c->dir)
		ret = -ESTALE;
	if (ret)
		close(*dfd);
	return ret;
}

int created_present(const struct created *c)
{
	char name[NAME_MAX + 1];
	int dfd, ret = created_check(c, &dfd, name);

	if (!ret)
		close(dfd);
	return ret;
}

int created_remove(const struct created *c)
{
	char name[NAME_MAX + 1];
	int dfd, ret = created_check(c, &dfd, name);

	if (ret)
		return ret;
	ret = unlinkat(dfd, name, c->dir ? AT_REMOVEDIR : 0) ? -errno : 0;
	close(dfd);
	return ret;
}

int created_log_remove(struct created_log *log)
{
	int removed = 0;

	for (size_t i = log->nr; i-- > 0;)
		if (!created_remove(&log->v[i]))
			removed++;
	log->nr = 0;
	return removed;
}

/* The file `name` in the set's directory, created O_WRONLY, recorded. */
int set_create_fd(struct img_set *set, const char *name)
{
	char proc[64];
	int fd, ret;

	/* Unnamed first (O_TMPFILE): recorded before it has a name, so no
	 * visible file of ours ever lacks its record. */
	fd = openat(set->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		pthread_mutex_lock(&set->lock);
		ret = created_record(set->dirfd, set->dir, name, fd, 0, &set->created);
		pthread_mutex_unlock(&set->lock);
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		for (int again = 1; !ret; again = 0) {
			if (!linkat(AT_FDCWD, proc, set->dirfd, name, AT_SYMLINK_FOLLOW))
				return fd;
			ret = -errno;
			/* An old file of that name (a dump into the same
			 * directory again): replaced, as O_TRUNC did. */
			if (ret == -EEXIST && again && !unlinkat(set->dirfd, name, 0))
				ret = 0;
		}
		close(fd);
		return ret;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* No O_TMPFILE here (NFS): by name, exclusively, recorded at once. */
	fd = openat(set->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && !unlinkat(set->dirfd, name, 0))
		fd = openat(set->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&set->lock);
	ret = created_record(set->dirfd, set->dir, name, fd, 0, &set->created);
	pthread_mutex_unlock(&set->lock);
	if (ret) {
		unlinkat(set->dirfd, name, 0);
		close(fd);
		return ret;
	}
	return fd;
}
