/*
 * cr_symlink_*: a symbolic link itself held open with O_PATH | O_NOFOLLOW
 * (zdtm symlink): the fd comes back on the same link, not on what it
 * points to (libckpt/regfile.c).  One program, one case per argument:
 *
 *   opath     two links held open: one to a file, one dangling; after the
 *             restore each fd is the link (S_IFLNK, the inode lstat gives
 *             its path), still O_PATH, and readlinkat(fd, "") reads the
 *             same target
 *   removed   a link held open and then removed, and one removed with its
 *             directory (zdtm symlink01): each fd is a removed link again
 *             (nlink 0, O_PATH) reading the same target, and neither name
 *             is there (libckpt/ghost-node.c)
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD 40

static char link_a[4096], link_b[4096], target[4096];

static void make_link(const char *to, char *path, const char *name, int fd)
{
	test_path(path, name);
	CHECK_SYS(!symlink(to, path), "symlink %s", path);
	int f = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	CHECK_SYS(f >= 0, "open %s", path);
	move_fd(f, fd);
}

static void opath_setup(void)
{
	test_path(target, "target");
	int f = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK_SYS(f >= 0, "create %s", target);
	close(f);
	make_link(target, link_a, "link-a", FD);
	make_link("nowhere/at/all", link_b, "link-b", FD + 1);
}

/* fd is the link at path (not what it points to), reading `to`. */
static void is_link(int fd, const char *path, const char *to)
{
	struct stat a, b;
	char buf[4096];
	CHECK_SYS(!fstat(fd, &a) && !lstat(path, &b), "stat fd %d, %s", fd, path);
	CHECK(S_ISLNK(a.st_mode), "fd %d: mode %o, not a symbolic link", fd, a.st_mode);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "fd %d: another inode than %s", fd,
	      path);
	CHECK(fcntl(fd, F_GETFL) & O_PATH, "fd %d: O_PATH lost", fd);
	ssize_t n = readlinkat(fd, "", buf, sizeof(buf) - 1);
	CHECK_SYS(n > 0, "readlinkat fd %d", fd);
	buf[n] = 0;
	CHECK(!strcmp(buf, to), "fd %d reads %s, not %s", fd, buf, to);
}

static void opath_check(void)
{
	is_link(FD, link_a, target);
	is_link(FD + 1, link_b, "nowhere/at/all");
}

static char dir_gone[3000];

/* One link removed, one removed with its directory. */
static void removed_setup(void)
{
	make_link("somewhere", link_a, "link-gone", FD);
	CHECK_SYS(!unlink(link_a), "unlink %s", link_a);
	test_path(dir_gone, "dir-gone");
	CHECK_SYS(!mkdir(dir_gone, 0700), "mkdir %s", dir_gone);
	snprintf(link_b, sizeof(link_b), "%s/link", dir_gone);
	CHECK_SYS(!symlink("../elsewhere", link_b), "symlink %s", link_b);
	int f = open(link_b, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	CHECK_SYS(f >= 0, "open %s", link_b);
	move_fd(f, FD + 1);
	CHECK_SYS(!unlink(link_b) && !rmdir(dir_gone), "remove %s", link_b);
}

static void is_removed_link(int fd, const char *path, const char *to)
{
	struct stat st;
	char buf[4096];
	CHECK_SYS(!fstat(fd, &st), "fstat %d", fd);
	CHECK(S_ISLNK(st.st_mode) && st.st_nlink == 0, "fd %d: mode %o, %lu links", fd,
	      st.st_mode, (unsigned long)st.st_nlink);
	CHECK(fcntl(fd, F_GETFL) & O_PATH, "fd %d: O_PATH lost", fd);
	ssize_t n = readlinkat(fd, "", buf, sizeof(buf) - 1);
	CHECK_SYS(n > 0, "readlinkat fd %d", fd);
	buf[n] = 0;
	CHECK(!strcmp(buf, to), "fd %d reads %s, not %s", fd, buf, to);
	CHECK(lstat(path, &st) && errno == ENOENT, "%s is there again", path);
}

static void removed_check(void)
{
	struct stat st;
	is_removed_link(FD, link_a, "somewhere");
	is_removed_link(FD + 1, link_b, "../elsewhere");
	CHECK(lstat(dir_gone, &st) && errno == ENOENT, "%s is there again", dir_gone);
}

static const struct cr_case cases[] = {
	{ "opath", opath_setup, opath_check },
	{ "removed", removed_setup, removed_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
