/*
 * cr_unlinked_*: what a process holds after its name was removed comes
 * back removed, the same object it was (libckpt/ghost-node.c, pipes.c,
 * core.c, memfd.c).  One program, one case per argument:
 *
 *   dir       a directory and the one above it removed, the inner one open
 *             O_DIRECTORY and O_PATH (two descriptions), mode 0751
 *   cwd       a cwd removed (rmdir by path), no fd on it
 *   cwd-fd    a cwd removed while an fd is also open on it: one directory
 *   fifo      a FIFO removed while open for reading and for writing, with
 *             5 bytes buffered in it, mode 0640
 *   dev       a device node (1:3, /dev/null) made, opened, removed
 *   tmpfile   a file made with O_TMPFILE (never named), with data
 *   mmap-private  a file mapped MAP_PRIVATE twice (a page written, one
 *             not), closed and removed: no fd holds it
 *   mmap-shared   a file mapped MAP_SHARED, closed and removed, the
 *             mapping shared with a child that copies byte 0 to byte 1
 *   mmap-two-names  one file mapped through two links (private, and
 *             shared), both removed: each mapping keeps its name
 *   mmap-memfd    a memfd mapped private and shared, then closed
 *   dev-other a removed device node that is not a memory device (1:11,
 *             /dev/kmsg): refused by name at the dump
 *   other-link  a file whose name was removed but which has another link
 *             in the same directory: the same file again, at its removed
 *             name (libckpt/regfile.c)
 *   linked-elsewhere  the same with the other link in another directory:
 *             refused by name at the dump
 *
 * After the restore, each checks that the object is removed (nlink 0, its
 * path gone), of the same type and mode, and that it still works.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FD 40 /* the cases' fds are FD, FD + 1, ... */

static char path_a[PATH_MAX + 64], path_b[PATH_MAX];
static struct stat was;

/* fd's /proc link is "PATH (deleted)", and PATH does not exist. */
static void check_removed(int fd, const char *path)
{
	char link[PATH_MAX + 96], want[PATH_MAX + 96], self[64];
	struct stat st;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(self, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", self);
	link[n] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", path);
	CHECK(!strcmp(link, want), "fd %d is %s, want %s", fd, link, want);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT, "%s exists again", path);
	CHECK_SYS(!fstat(fd, &st), "fstat %d", fd);
	CHECK(st.st_nlink == 0 && (st.st_mode & S_IFMT) == (was.st_mode & S_IFMT) &&
		      (st.st_mode & 07777) == (was.st_mode & 07777) && st.st_uid == was.st_uid,
	      "fd %d: nlink %lu mode %o uid %u, was mode %o uid %u", fd,
	      (unsigned long)st.st_nlink, st.st_mode, st.st_uid, was.st_mode, was.st_uid);
}

static void same_file(int a, int b)
{
	struct stat sa, sb;
	CHECK_SYS(!fstat(a, &sa) && !fstat(b, &sb), "fstat");
	CHECK(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino, "fds %d and %d: not one file", a, b);
}

/* ------------------------------ dir ---------------------------------- */

static void dir_setup(void)
{
	test_path(path_b, "outer");
	snprintf(path_a, sizeof(path_a), "%s/inner", path_b);
	CHECK_SYS(!mkdir(path_b, 0700) && !mkdir(path_a, 0700) && !chmod(path_a, 0751), "mkdir");
	move_fd(open(path_a, O_RDONLY | O_DIRECTORY), FD);
	move_fd(open(path_a, O_PATH | O_DIRECTORY), FD + 1);
	CHECK_SYS(!rmdir(path_a) && !rmdir(path_b), "rmdir");
	CHECK_SYS(!fstat(FD, &was), "fstat");
}

static void dir_check(void)
{
	struct stat st;
	check_removed(FD, path_a);
	same_file(FD, FD + 1);
	CHECK(fcntl(FD + 1, F_GETFL) & O_PATH, "O_PATH lost");
	CHECK(lstat(path_b, &st) < 0 && errno == ENOENT, "%s was left behind", path_b);
	CHECK(openat(FD, "x", O_CREAT | O_WRONLY, 0600) < 0 && errno == ENOENT,
	      "a removed directory took a new entry");
}

/* ------------------------------ cwd ---------------------------------- */

static void cwd_setup_with(int with_fd)
{
	test_path(path_a, "cwd");
	CHECK_SYS(!mkdir(path_a, 0700) && !chmod(path_a, 0750), "mkdir");
	CHECK_SYS(!chdir(path_a), "chdir");
	if (with_fd)
		move_fd(open(path_a, O_RDONLY | O_DIRECTORY), FD);
	CHECK_SYS(!rmdir(path_a), "rmdir");
	CHECK_SYS(!stat(".", &was), "stat .");
}

static void cwd_setup(void)
{
	cwd_setup_with(0);
}

static void cwd_fd_setup(void)
{
	cwd_setup_with(1);
}

static void cwd_check(void)
{
	int fd = open(".", O_RDONLY | O_DIRECTORY);
	CHECK_SYS(fd >= 0, "open .");
	check_removed(fd, path_a);
	close(fd);
}

static void cwd_fd_check(void)
{
	struct stat cwd, st;
	cwd_check();
	check_removed(FD, path_a);
	CHECK_SYS(!stat(".", &cwd) && !fstat(FD, &st), "stat");
	CHECK(cwd.st_dev == st.st_dev && cwd.st_ino == st.st_ino, "cwd and fd %d: not one directory",
	      FD);
}

/* ------------------------------ fifo --------------------------------- */

static void fifo_setup(void)
{
	test_path(path_a, "fifo");
	CHECK_SYS(!mkfifo(path_a, 0600) && !chmod(path_a, 0640), "mkfifo");
	move_fd(open(path_a, O_RDONLY | O_NONBLOCK), FD);
	move_fd(open(path_a, O_WRONLY), FD + 1);
	CHECK_SYS(write(FD + 1, "hello", 5) == 5, "write");
	CHECK_SYS(!unlink(path_a), "unlink");
	CHECK_SYS(!fstat(FD, &was), "fstat");
}

static void fifo_check(void)
{
	char buf[16];
	check_removed(FD, path_a);
	check_removed(FD + 1, path_a);
	same_file(FD, FD + 1);
	CHECK(read(FD, buf, sizeof(buf)) == 5 && !memcmp(buf, "hello", 5), "buffered data lost");
	CHECK_SYS(write(FD + 1, "again", 5) == 5, "write");
	CHECK(read(FD, buf, sizeof(buf)) == 5 && !memcmp(buf, "again", 5),
	      "the writer does not reach the reader");
}

/* ------------------------------ dev ---------------------------------- */

static void dev_setup_with(unsigned minor_nr)
{
	test_path(path_a, "dev");
	CHECK_SYS(!mknod(path_a, S_IFCHR | 0600, makedev(1, minor_nr)) && !chmod(path_a, 0604),
		  "mknod (needs CAP_MKNOD)");
	move_fd(open(path_a, minor_nr == 3 ? O_RDWR : O_RDONLY | O_NONBLOCK), FD);
	CHECK_SYS(!unlink(path_a), "unlink");
	CHECK_SYS(!fstat(FD, &was), "fstat");
}

static void dev_setup(void)
{
	dev_setup_with(3);
}

static void dev_other_setup(void)
{
	dev_setup_with(11);
}

static void dev_check(void)
{
	char buf[4];
	struct stat st;
	check_removed(FD, path_a);
	CHECK(!fstat(FD, &st) && st.st_rdev == was.st_rdev, "rdev %u:%u", major(st.st_rdev),
	      minor(st.st_rdev));
	CHECK(write(FD, "x", 1) == 1 && read(FD, buf, sizeof(buf)) == 0, "not /dev/null");
}

static void dev_other_check(void)
{
	check_removed(FD, path_a);
}

/* ------------------------------ tmpfile ------------------------------ */

static void tmpfile_setup(void)
{
	test_path(path_b, "tmpdir");
	CHECK_SYS(!mkdir(path_b, 0700), "mkdir");
	move_fd(open(path_b, O_RDWR | O_TMPFILE, 0640), FD);
	CHECK_SYS(write(FD, "tmpfile data", 12) == 12, "write");
	CHECK_SYS(!fstat(FD, &was), "fstat");
	snprintf(path_a, sizeof(path_a), "%s/#%llu", path_b, (unsigned long long)was.st_ino);
}

static void tmpfile_check(void)
{
	char buf[32];
	check_removed(FD, path_a);
	CHECK(pread(FD, buf, sizeof(buf), 0) == 12 && !memcmp(buf, "tmpfile data", 12),
	      "contents lost");
	CHECK(lseek(FD, 0, SEEK_CUR) == 12, "offset %lld", (long long)lseek(FD, 0, SEEK_CUR));
}

/* ------------------------------ mmap --------------------------------- */

#define PAGE 4096
static volatile char *map_a, *map_b;
static pid_t child;

/* A file of two pages, "A..." and "B...", mapped, closed and removed. */
static int mapped_file(void)
{
	char buf[2 * PAGE];
	test_path(path_a, "mapped");
	int fd = open(path_a, O_RDWR | O_CREAT | O_EXCL, 0640);
	CHECK_SYS(fd >= 0, "open %s", path_a);
	memset(buf, 'A', PAGE);
	memset(buf + PAGE, 'B', PAGE);
	CHECK_SYS(write_full(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "write");
	CHECK_SYS(!fstat(fd, &was), "fstat");
	return fd;
}

static void mmap_private_setup(void)
{
	int fd = mapped_file();
	map_a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	map_b = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
	CHECK_SYS(map_a != MAP_FAILED && map_b != MAP_FAILED, "mmap");
	map_a[0] = 'a'; /* page 0 is ours now; page 1 still the file's */
	close(fd);
	CHECK_SYS(!unlink(path_a), "unlink");
}

/* The /proc/self/maps line of addr names "PATH (deleted)". */
static void check_mapped_at(volatile char *addr, const char *path)
{
	char line[PATH_MAX + 256], want[PATH_MAX + 96];
	FILE *f = fopen("/proc/self/maps", "re");
	int found = 0;
	CHECK_SYS(f, "maps");
	snprintf(want, sizeof(want), "%s (deleted)\n", path);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long start = strtoul(line, NULL, 16);
		size_t n = strlen(line), w = strlen(want);
		found = start == (unsigned long)addr;
		CHECK(!found || (n >= w && !strcmp(line + n - w, want)), "mapping: %s", line);
	}
	fclose(f);
	CHECK(found, "no mapping at %p", (void *)addr);
	CHECK(lstat(path, &(struct stat){ 0 }) < 0 && errno == ENOENT, "%s exists again", path);
}

static void check_mapped_removed(volatile char *addr)
{
	check_mapped_at(addr, path_a);
}

static void mmap_private_check(void)
{
	check_mapped_removed(map_a);
	check_mapped_removed(map_b);
	CHECK(map_a[0] == 'a' && map_a[1] == 'A' && map_a[PAGE] == 'B' && map_b[0] == 'B' &&
		      map_b[PAGE - 1] == 'B',
	      "contents: %c %c %c %c", map_a[0], map_a[1], map_a[PAGE], map_b[0]);
}

static _Noreturn void copy_loop(void)
{
	for (;;) {
		map_a[1] = map_a[0];
		usleep(1000);
	}
}

static void mmap_shared_setup(void)
{
	int fd = mapped_file();
	map_a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_SYS(map_a != MAP_FAILED, "mmap");
	close(fd);
	CHECK_SYS(!unlink(path_a), "unlink");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child)
		copy_loop();
}

static void mmap_shared_check(void)
{
	check_mapped_removed(map_a);
	CHECK(map_a[PAGE] == 'B', "contents: %c", map_a[PAGE]);
	map_a[0] = 'Z';
	for (int i = 0; i < 5000 && map_a[1] != 'Z'; i++)
		usleep(1000);
	CHECK(map_a[1] == 'Z', "the child no longer shares the mapping: byte 1 is %c", map_a[1]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static void mmap_two_names_setup(void)
{
	int fd = mapped_file();
	map_a = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK_SYS(map_a != MAP_FAILED, "mmap");
	close(fd);
	test_path(path_b, "mapped.link");
	CHECK_SYS(!link(path_a, path_b) && !unlink(path_a), "link, unlink");
	fd = open(path_b, O_RDWR);
	CHECK_SYS(fd >= 0, "open %s", path_b);
	map_b = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_SYS(map_b != MAP_FAILED, "mmap");
	close(fd);
	CHECK_SYS(!unlink(path_b), "unlink");
	map_b[0] = 'S'; /* the file's page 0: the private mapping never wrote it */
}

static void mmap_two_names_check(void)
{
	check_mapped_at(map_a, path_a);
	check_mapped_at(map_b, path_b);
	CHECK(map_b[0] == 'S' && map_b[PAGE] == 'B', "contents: %c %c", map_b[0], map_b[PAGE]);
	map_b[1] = 'T';
	CHECK(map_a[1] == 'T', "the two names are two files now: %c", map_a[1]);
}

static void mmap_memfd_setup(void)
{
	int fd = memfd_create("cr-mapped", 0);
	CHECK_SYS(fd >= 0 && write(fd, "memfd", 5) == 5 && !ftruncate(fd, 2 * PAGE), "memfd");
	map_a = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	map_b = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK_SYS(map_a != MAP_FAILED && map_b != MAP_FAILED, "mmap");
	close(fd);
	snprintf(path_a, sizeof(path_a), "/memfd:cr-mapped");
}

static void mmap_memfd_check(void)
{
	check_mapped_removed(map_a);
	check_mapped_removed(map_b);
	CHECK(!memcmp((const char *)map_b, "memfd", 5), "contents lost");
	/* a memfd again, not a file made at "/memfd:cr-mapped": it has seals
	 * (map_files needs CAP_CHECKPOINT_RESTORE: root's run checks it) */
	char mf[128];
	snprintf(mf, sizeof(mf), "/proc/self/map_files/%lx-%lx", (unsigned long)map_a,
		 (unsigned long)map_a + 2 * PAGE);
	int fd = open(mf, O_RDONLY);
	CHECK(fd >= 0 || errno == EPERM, "%s: %s", mf, strerror(errno));
	CHECK(fd < 0 || fcntl(fd, F_GET_SEALS) >= 0, "not a memfd: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	map_a[0] = 'M';
	CHECK(map_b[0] == 'M', "the private mapping is of another file: %c", map_b[0]);
}

/* ------------------------------ linked elsewhere --------------------- */

/* A removed name, the file linked in the same directory (zdtm
 * unlink_fstat03): the same file after the restore, at "first (deleted)". */
static void other_link_setup(void)
{
	test_path(path_a, "first");
	test_path(path_b, "second");
	move_fd(open(path_a, O_RDWR | O_CREAT | O_EXCL, 0600), FD);
	CHECK_SYS(!link(path_a, path_b) && !unlink(path_a), "link, unlink");
	CHECK_SYS(write(FD, "data", 4) == 4, "write");
	CHECK_SYS(!fstat(FD, &was), "fstat");
}

static void other_link_check(void)
{
	struct stat st, other;
	char link[PATH_MAX], self[64], buf[8];
	CHECK_SYS(!fstat(FD, &st) && !stat(path_b, &other), "stat");
	CHECK(st.st_ino == other.st_ino && st.st_dev == other.st_dev && st.st_nlink == 1,
	      "fd %d is another file than %s (nlink %lu)", FD, path_b, (unsigned long)st.st_nlink);
	CHECK(st.st_size == 4, "size %lld", (long long)st.st_size);
	CHECK(lstat(path_a, &st) && errno == ENOENT, "%s is there again", path_a);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", FD);
	ssize_t n = readlink(self, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink");
	link[n] = 0;
	CHECK(n > 10 && !strcmp(link + n - 10, " (deleted)") && !strncmp(link, path_a, strlen(path_a)),
	      "fd %d is %s", FD, link);
	CHECK(lseek(FD, 0, SEEK_CUR) == 4, "offset");
	CHECK_SYS(write(FD, "more", 4) == 4, "write");
	int f = open(path_b, O_RDONLY | O_CLOEXEC);
	CHECK_SYS(f >= 0 && pread(f, buf, 8, 0) == 8 && !memcmp(buf, "datamore", 8),
		  "%s does not read what fd %d wrote", path_b, FD);
	close(f);
}

/* The other link in another directory: not found, refused. */
static void linked_elsewhere_setup(void)
{
	char dir[PATH_MAX];
	test_path(path_a, "first");
	test_path(dir, "sub");
	snprintf(path_b, sizeof(path_b), "%.*s/second", (int)(sizeof(path_b) - 8), dir);
	CHECK_SYS(!mkdir(dir, 0700), "mkdir");
	move_fd(open(path_a, O_RDWR | O_CREAT | O_EXCL, 0600), FD);
	CHECK_SYS(!link(path_a, path_b) && !unlink(path_a), "link, unlink");
	CHECK_SYS(!fstat(FD, &was), "fstat");
}

static void linked_elsewhere_check(void)
{
	struct stat st;
	CHECK(!fstat(FD, &st) && st.st_nlink == 1, "nlink %lu", (unsigned long)st.st_nlink);
}

/* ------------------------------ main --------------------------------- */

static const struct cr_case cases[] = {
	{ "dir", dir_setup, dir_check },
	{ "cwd", cwd_setup, cwd_check },
	{ "cwd-fd", cwd_fd_setup, cwd_fd_check },
	{ "fifo", fifo_setup, fifo_check },
	{ "dev", dev_setup, dev_check },
	{ "dev-other", dev_other_setup, dev_other_check },
	{ "other-link", other_link_setup, other_link_check },
	{ "tmpfile", tmpfile_setup, tmpfile_check },
	{ "mmap-private", mmap_private_setup, mmap_private_check },
	{ "mmap-shared", mmap_shared_setup, mmap_shared_check },
	{ "mmap-two-names", mmap_two_names_setup, mmap_two_names_check },
	{ "mmap-memfd", mmap_memfd_setup, mmap_memfd_check },
	{ "linked-elsewhere", linked_elsewhere_setup, linked_elsewhere_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
