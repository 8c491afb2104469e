/*
 * sk-unix-bind: a unix socket's name on restore, for sk-unix.c: bind()
 * to the dumped name, and the address by which the restore's other
 * sockets reach it (connect, sendto).
 *
 * A name is a path (relative ones resolved in the directory they were
 * bound in, UnixSkEntry.dir) or abstract.  A stale socket file left by
 * the dumped process is removed first; a file made as its dumped owner.
 *
 * A socket whose file was gone at dump time (UnixSkEntry.unlinked) is
 * bound at its name all the same: the kernel keeps the name bind() was
 * given (getsockname shows it) whatever becomes of the path.  Its file
 * is then linked to a private name in the same directory, its "reach"
 * (struct unix_reach), and removed from the name at once, leaving the
 * path as it was found; the restore's sockets connect and send to the
 * reach, which sk-unix.c removes once every socket is made.  Nothing is
 * reached by the name: what holds it now is not this socket (zdtm
 * del_standalone_un: another socket bound there since;
 * fifo_upon_unix_socket00: a FIFO, moved aside for the bind and put
 * back).  A directory removed since (zdtm sk-unix01) is made again for
 * the bind and removed right after it, the reach living in the nearest
 * directory that was there.  All of it runs as the restoring process:
 * for a user's restore, ckptd's worker, as the user (priv.h), so that an
 * image makes and removes directories only where its user may.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sk-unix-bind.h"

int unix_name_relative(const ProtobufCBinaryData *name)
{
	return name->len && name->data[0] != '/' && name->data[0] != '\0';
}

void unix_socket_path(const UnixSkEntry *u, const char *name, size_t len, char *buf)
{
	int rel = unix_name_relative(&u->name) && u->dir;
	snprintf(buf, PATH_MAX, "%s%s%.*s", rel ? u->dir : "", rel ? "/" : "",
		 (int)strnlen(name, len), name);
}

static void name_path(const UnixSkEntry *u, char *buf)
{
	unix_socket_path(u, (const char *)u->name.data, u->name.len, buf);
}

socklen_t unix_make_addr(struct sockaddr_un *sa, const ProtobufCBinaryData *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name->data, name->len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name->len);
}

int unix_at_dir(const UnixSkEntry *u, const ProtobufCBinaryData *name, int sk,
		  int (*op)(int, const struct sockaddr *, socklen_t))
{
	struct sockaddr_un sa;
	socklen_t len = unix_make_addr(&sa, name);
	int cwd = -1, ret;
	if (u->dir && name->data[0] != '/' && name->data[0] != '\0') {
		cwd = open(".", O_PATH | O_CLOEXEC);
		if (cwd < 0 || chdir(u->dir)) {
			ret = -errno;
			if (cwd >= 0)
				close(cwd);
			return ret;
		}
	}
	ret = op(sk, (struct sockaddr *)&sa, len) ? -errno : 0;
	if (cwd >= 0) {
		if (fchdir(cwd) && !ret)
			ret = -errno;
		close(cwd);
	}
	return ret;
}

/* ------------------------- a name that is gone ------------------------ */

/* A path of plain components: no ".", "..", or empty one. */
static int plain_path(const char *path)
{
	for (const char *c = path; *c;) {
		const char *end = strchrnul(c, '/');
		size_t n = (size_t)(end - c);
		if ((c != path && n == 0) || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		c = *end ? end + 1 : end;
	}
	return 1;
}

/* Make the directories missing above path (0700: only for the bind);
 * made: the topmost one made, "" if none. */
static int make_dirs(const char *path, char *made)
{
	char dir[PATH_MAX];
	made[0] = '\0';
	if (!plain_path(path))
		return -ENOENT;
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *c = strchr(dir + 1, '/'); c; c = strchr(c + 1, '/')) {
		*c = '\0';
		if (!mkdir(dir, 0700)) {
			if (!made[0])
				snprintf(made, PATH_MAX, "%s", dir);
		} else if (errno != EEXIST) {
			int e = errno;
			*c = '/';
			return -e;
		}
		*c = '/';
	}
	return 0;
}

/* Remove what make_dirs made, deepest first (only while empty). */
static void remove_dirs(const char *path, const char *made)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *c = strrchr(dir, '/'); made[0] && c && c != dir; c = strrchr(dir, '/')) {
		*c = '\0';
		if ((rmdir(dir) && errno != ENOENT) || !strcmp(dir, made))
			return;
	}
}

/* Link the socket file just bound at path to a reach in dir (the
 * directory it is in, or above what make_dirs made). */
static int link_reach(const char *path, const char *made, uint64_t ino, struct unix_reach *r)
{
	char dir[PATH_MAX];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s", made[0] ? made : path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (lstat(path, &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EINVAL;
	r->dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->dir < 0)
		return -errno;
	snprintf(r->name, sizeof(r->name), ".ckpt-sk-%d-%llu", (int)getpid(),
		 (unsigned long long)ino);
	if (linkat(AT_FDCWD, path, r->dir, r->name, 0)) {
		int e = errno;
		close(r->dir);
		r->dir = -1;
		return -e;
	}
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return 0;
}

/* path is still the file that r reaches: remove it. */
static void unlink_if_reached(const char *path, const struct unix_reach *r)
{
	struct stat st;
	if (!lstat(path, &st) && st.st_dev == r->dev && st.st_ino == r->ino)
		unlink(path);
}

/* bind() where something else holds the name now: it is moved aside
 * for the bind and put back, over the new file (which then lives on
 * only as the reach). */
static int bind_aside(int sk, const UnixSkEntry *u, const char *path, struct unix_reach *r)
{
	char aside[PATH_MAX + 32];
	snprintf(aside, sizeof(aside), "%s.ckpt-aside-%d", path, (int)getpid());
	if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE))
		return -errno;
	int ret = unix_at_dir(u, &u->name, sk, bind);
	if (!ret)
		ret = link_reach(path, "", u->ino, r);
	if (rename(aside, path) && !ret)
		ret = -errno;
	return ret;
}

static int bind_unlinked(int sk, const UnixSkEntry *u, struct unix_reach *r)
{
	char path[PATH_MAX], made[PATH_MAX] = "";
	int ret = unix_at_dir(u, &u->name, sk, bind);
	if (!u->name.data[0])
		return ret;
	name_path(u, path);
	if (ret == -ENOENT && !(ret = make_dirs(path, made)))
		ret = unix_at_dir(u, &u->name, sk, bind);
	if (ret == -EADDRINUSE)
		return bind_aside(sk, u, path, r);
	if (!ret)
		ret = link_reach(path, made, u->ino, r);
	if (!ret)
		unlink_if_reached(path, r);
	remove_dirs(path, made);
	return ret;
}

int unix_enter_reach(const UnixSkEntry *u, const struct unix_reach *r, struct sockaddr_un *sa,
		     socklen_t *len, int *cwd)
{
	*cwd = -1;
	if (r->dir < 0) {
		*len = unix_make_addr(sa, &u->name);
		if (!u->dir || !unix_name_relative(&u->name))
			return 0;
	} else {
		ProtobufCBinaryData name = { strlen(r->name), (uint8_t *)r->name };
		*len = unix_make_addr(sa, &name);
	}
	*cwd = open(".", O_PATH | O_CLOEXEC);
	if (*cwd < 0 || (r->dir >= 0 ? fchdir(r->dir) : chdir(u->dir))) {
		int e = errno;
		if (*cwd >= 0)
			close(*cwd);
		*cwd = -1;
		return -e;
	}
	return 0;
}

int unix_leave_reach(int cwd, int ret)
{
	if (cwd < 0)
		return ret;
	if (fchdir(cwd) && !ret)
		ret = -errno;
	close(cwd);
	return ret;
}

int unix_connect_reach(const UnixSkEntry *u, const struct unix_reach *r, int sk)
{
	struct sockaddr_un sa;
	socklen_t len;
	int cwd, ret = unix_enter_reach(u, r, &sa, &len, &cwd);
	if (ret)
		return ret;
	ret = connect(sk, (struct sockaddr *)&sa, len) ? -errno : 0;
	return unix_leave_reach(cwd, ret);
}

void unix_drop_reach(struct unix_reach *r)
{
	struct stat st;
	if (r->dir < 0)
		return;
	if (!fstatat(r->dir, r->name, &st, AT_SYMLINK_NOFOLLOW) && st.st_dev == r->dev &&
	    st.st_ino == r->ino)
		unlinkat(r->dir, r->name, 0);
	close(r->dir);
	r->dir = -1;
}

/* ------------------------------- bind --------------------------------- */

/* Remove the socket file at u's name (a path), if there is one: the
 * dumped process is dead, its socket file stays behind. */
static void unlink_socket_file(const UnixSkEntry *u)
{
	char path[PATH_MAX];
	struct stat st;
	if (!u->has_name || !u->name.data[0])
		return;
	name_path(u, path);
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
}

/* Its owner could not create it (a root daemon's socket, handed to a
 * service user, in a directory only root writes): bind as we are, then
 * owner and mode by name, where only those who may write there (root)
 * could have swapped the file. */
static int bind_then_chown(int sk, const UnixSkEntry *u)
{
	char path[PATH_MAX];
	struct stat st;
	int ret = unix_at_dir(u, &u->name, sk, bind);
	if (ret)
		return ret;
	name_path(u, path);
	if (lstat(path, &st))
		ret = -errno;
	else if (!S_ISSOCK(st.st_mode) || st.st_nlink != 1)
		ret = -EINVAL;
	else if (fchownat(AT_FDCWD, path, (uid_t)u->file_uid, (gid_t)u->file_gid,
			  AT_SYMLINK_NOFOLLOW) ||
		 fchmodat(AT_FDCWD, path, (mode_t)u->file_mode & 07777, 0))
		ret = -errno;
	if (ret) {
		pr_err("unix socket %s: cannot give its file the owner %u:%u and mode %04o: %s",
		       path, u->file_uid, u->file_gid, u->file_mode, strerror(-ret));
	}
	return ret;
}

/*
 * An abstract name of a tree dumped and killed on this host may still be
 * taken: sockets that only fds in flight hold (a loop: a socket in its own
 * queue or its peer's) live on until the kernel's unix garbage collector
 * runs, which the release of a unix socket schedules (on a workqueue).
 * Release one and try again, for up to a second.
 */
static int bind_abstract(int sk, const UnixSkEntry *u)
{
	int ret = unix_at_dir(u, &u->name, sk, bind);
	for (int i = 0; ret == -EADDRINUSE && i < 50; i++) {
		int nudge = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (nudge >= 0)
			close(nudge);
		usleep(20000);
		ret = unix_at_dir(u, &u->name, sk, bind);
	}
	return ret;
}

int unix_bind_name(int sk, const UnixSkEntry *u, struct unix_reach *r)
{
	if (u->unlinked)
		return bind_unlinked(sk, u, r);
	unlink_socket_file(u);
	if (!u->name.data[0])
		return bind_abstract(sk, u);
	if (!u->has_file_uid || !u->has_file_gid || !u->has_file_mode)
		return unix_at_dir(u, &u->name, sk, bind);
	/* The file bind() makes gets the dumped owner and mode as it is made
	 * (fsuid, fsgid, umask), not a chown after it by name: a path can be
	 * swapped in between.  A user's restore cannot take another owner:
	 * setfsuid then leaves its own. */
	mode_t old_mask = umask(~(mode_t)u->file_mode & 0777);
	uid_t old_uid = (uid_t)setfsuid((uid_t)u->file_uid);
	gid_t old_gid = (gid_t)setfsgid((gid_t)u->file_gid);
	int ret = unix_at_dir(u, &u->name, sk, bind);
	setfsgid(old_gid);
	setfsuid(old_uid);
	umask(old_mask);
	if (ret == -EACCES || ret == -EPERM)
		ret = bind_then_chown(sk, u);
	return ret;
}

