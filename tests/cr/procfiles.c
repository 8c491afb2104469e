/*
 * cr_procfiles_*: files under /proc/PID of the tree itself survive a
 * checkpoint (libckpt/procfile.c; zdtm child_opened_proc, memfd02).  One
 * program, one case per argument:
 *
 *   parent   a child holds /proc/<parent>/stat and the parent directory
 *            /proc/<parent>; the parent holds /proc/<child>/stat (as zdtm
 *            child_opened_proc).  After the restore each reads the stat of
 *            the restored process it names (the pid field), through the
 *            same open file (the child's, with pidfd_getfd), and the
 *            directory reaches its stat.
 *   maps     /proc/self/maps open at offset 0, and another read to its end:
 *            the first reads this process's maps now, the second is at the
 *            end of them.
 *   thread   with a second thread: /proc/thread-self (the main thread's
 *            /proc/PID/task/PID), /proc/PID/task/PID/stat and the
 *            directory /proc/PID/task, which lists both threads again.
 *   deadcwd  the cwd is /proc/<child> of a child reaped since (zdtm
 *            unhashed_proc): it comes back out of /proc, under that name.
 *   deadfd   /proc/<child>/mountinfo and /proc/<child> of a child reaped
 *            since (zdtm remap_dead_pid, _root): they come back dead (the
 *            link of the file does not say " (deleted)", only that of its
 *            directory).
 *   ns       fds on namespaces (zdtm proc-self): /proc/self/ns/net, pid,
 *            pid_for_children and the child's /proc/<child>/ns/uts: after
 *            the restore each names the namespace the restored process is
 *            in (the same fstat as its /proc/PID/ns entry now; with
 *            --pidns always, the new PID namespace)
 *   nsout    an fd on a network namespace no process of the tree is in (a
 *            child's, made with unshare, the child reaped since): refused
 *   outside  /proc/<harness>/stat and /proc/<harness> (a process outside
 *            the tree, alive through the cycle, as zdtm pid_file's
 *            /proc/1/status): the same process's files again; in a fresh
 *            PID namespace, where that number is not it, the restore fails
 *   outthread /proc/<harness>/task/<harness>/stat: refused
 *   tthread  /proc/<tid>/stat of a thread other than the main one: refused
 *   middle   /proc/self/maps read 10 bytes into: refused (the text is made
 *            anew at each read)
 *   exited   /proc/<child>/stat of a child reaped since, read 10 bytes into:
 *            refused (its text cannot be read again)
 */
#include "crlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 40 /* the cases' fds are FD, FD + 1, ... */

static pid_t child;
static int ready[2];

static int open_at(const char *path, int flags, int to)
{
	int fd = open(path, flags | O_CLOEXEC);
	CHECK_SYS(fd >= 0, "open %s", path);
	move_fd(fd, to);
	return to;
}

/* The pid field of the stat text in buf. */
static long stat_pid(const char *buf)
{
	return strtol(buf, NULL, 10);
}

/* The pid field of what fd reads from where it is. */
static long read_stat_pid(int fd)
{
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	CHECK_SYS(n > 0, "read fd %d", fd);
	buf[n] = 0;
	return stat_pid(buf);
}

/* fd -1: the cwd */
static void link_is(pid_t pid, int fd, const char *want)
{
	char path[64], link[256];
	if (fd < 0)
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	else
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	link[n] = 0;
	CHECK(!strcmp(link, want), "pid %d fd %d is %s, not %s", pid, fd, link, want);
}

/* ------------------------------ parent ------------------------------- */

static _Noreturn void child_main(void)
{
	char path[64];
	test_block_check();
	snprintf(path, sizeof(path), "/proc/%d/stat", getppid());
	open_at(path, O_RDONLY, FD);
	snprintf(path, sizeof(path), "/proc/%d", getppid());
	open_at(path, O_RDONLY | O_DIRECTORY, FD + 1);
	CHECK_SYS(write(ready[1], "r", 1) == 1, "write");
	for (;;)
		pause();
}

static void parent_setup(void)
{
	char path[64], b;
	CHECK_SYS(!pipe(ready), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child)
		child_main();
	CHECK_SYS(read(ready[0], &b, 1) == 1, "read");
	close(ready[0]);
	close(ready[1]);
	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	open_at(path, O_RDONLY, FD + 2);
}

/* The child's fd `fd`, the same open file (pidfd_getfd). */
static int child_fd(int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	CHECK_SYS(pidfd >= 0, "pidfd_open %d", child);
	int dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	CHECK_SYS(dup >= 0, "pidfd_getfd %d", fd);
	close(pidfd);
	return dup;
}

static void parent_check(void)
{
	char want[64];
	CHECK(read_stat_pid(FD + 2) == child, "/proc/%d/stat reads another pid", child);
	snprintf(want, sizeof(want), "/proc/%d/stat", getpid());
	link_is(child, FD, want);
	int fd = child_fd(FD);
	CHECK(read_stat_pid(fd) == getpid(), "the child's /proc/%d/stat reads another pid",
	      getpid());
	close(fd);
	fd = child_fd(FD + 1);
	int st = openat(fd, "stat", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(st >= 0, "openat stat in the child's /proc/%d", getpid());
	CHECK(read_stat_pid(st) == getpid(), "the child's /proc/%d directory names another pid",
	      getpid());
	close(st);
	close(fd);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* ------------------------------- maps -------------------------------- */

static void maps_setup(void)
{
	char buf[4096];
	open_at("/proc/self/maps", O_RDONLY, FD);
	open_at("/proc/self/maps", O_RDONLY, FD + 1);
	while (read(FD + 1, buf, sizeof(buf)) > 0)
		;
}

static void maps_check(void)
{
	static char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	CHECK(lseek(FD, 0, SEEK_CUR) == 0, "maps not at offset 0");
	while ((n = read(FD, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	CHECK_SYS(n == 0, "read maps");
	buf[len] = 0;
	const char *now = snapshot_file("/proc/self/maps", 0);
	CHECK(!strncmp(buf, now, strcspn(now, "\n") + 1), "maps read \"%.80s\", not \"%.80s\"",
	      buf, now);
	CHECK(strstr(buf, "[stack]"), "maps read without [stack]");
	CHECK(read(FD + 1, buf, sizeof(buf)) == 0, "maps read to the end reads more");
}

/* ------------------------------ thread ------------------------------- */

static volatile pid_t thread_tid;

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static void start_thread(void)
{
	pthread_t t;
	test_block_check(); /* inherited by the thread */
	CHECK(!pthread_create(&t, NULL, thread_main, NULL), "pthread_create");
	while (!thread_tid)
		usleep(1000);
}

static void thread_setup(void)
{
	char path[64];
	start_thread();
	open_at("/proc/thread-self", O_RDONLY | O_DIRECTORY, FD);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", getpid(), getpid());
	open_at(path, O_RDONLY, FD + 1);
	snprintf(path, sizeof(path), "/proc/%d/task", getpid());
	open_at(path, O_RDONLY | O_DIRECTORY, FD + 2);
}

static int lists(DIR *d, pid_t tid)
{
	struct dirent *de;
	rewinddir(d);
	while ((de = readdir(d)))
		if (atoi(de->d_name) == tid)
			return 1;
	return 0;
}

static void thread_check(void)
{
	char want[64];
	snprintf(want, sizeof(want), "/proc/%d/task/%d", getpid(), getpid());
	link_is(getpid(), FD, want);
	int st = openat(FD, "stat", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(st >= 0, "openat stat in %s", want);
	CHECK(read_stat_pid(st) == getpid(), "%s names another thread", want);
	close(st);
	CHECK(read_stat_pid(FD + 1) == getpid(), "task stat names another thread");
	DIR *d = fdopendir(FD + 2);
	CHECK_SYS(d, "fdopendir");
	CHECK(lists(d, getpid()) && lists(d, thread_tid), "/proc/%d/task lacks %d or %d", getpid(),
	      getpid(), thread_tid);
}

/* ------------------------------ deadcwd ------------------------------ */

static pid_t dead_child;

static void deadcwd_setup(void)
{
	char path[64];
	dead_child = fork();
	CHECK_SYS(dead_child >= 0, "fork");
	if (!dead_child)
		for (;;)
			pause();
	snprintf(path, sizeof(path), "/proc/%d", dead_child);
	CHECK_SYS(!chdir(path), "chdir %s", path);
	kill(dead_child, SIGKILL);
	CHECK_SYS(waitpid(dead_child, NULL, 0) == dead_child, "waitpid");
}

/* The cwd is the directory of a process that has exited: getcwd fails,
 * /proc names it as before, its number is free again, and no SIGCHLD of
 * the restore's helper is left pending. */
static void deadcwd_check(void)
{
	char buf[256], want[64];
	sigset_t pending;
	CHECK(!getcwd(buf, sizeof(buf)) && errno == ENOENT, "getcwd: %s",
	      getcwd(buf, sizeof(buf)) ? buf : strerror(errno));
	snprintf(want, sizeof(want), "/proc/%d (deleted)", dead_child);
	link_is(getpid(), -1, want);
	CHECK(kill(dead_child, 0) < 0 && errno == ESRCH, "pid %d lives", dead_child);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child to reap");
	CHECK_SYS(!sigpending(&pending), "sigpending");
	CHECK(!sigismember(&pending, SIGCHLD), "SIGCHLD pending");
}

/* ------------------------------ deadfd ------------------------------- */

/* /proc/<child>/mountinfo and the directory /proc/<child> of a child
 * reaped since (zdtm remap_dead_pid, remap_dead_pid_root). */
static void deadfd_setup(void)
{
	char path[64];
	dead_child = fork();
	CHECK_SYS(dead_child >= 0, "fork");
	if (!dead_child)
		for (;;)
			pause();
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", dead_child);
	open_at(path, O_RDONLY, FD);
	snprintf(path, sizeof(path), "/proc/%d", dead_child);
	open_at(path, O_RDONLY | O_DIRECTORY, FD + 1);
	kill(dead_child, SIGKILL);
	CHECK_SYS(waitpid(dead_child, NULL, 0) == dead_child, "waitpid");
}

/* Both name what they named, out of /proc; the helper that made them
 * again is gone, its number free. */
static void deadfd_check(void)
{
	char want[64];
	snprintf(want, sizeof(want), "/proc/%d/mountinfo", dead_child);
	link_is(getpid(), FD, want);
	snprintf(want, sizeof(want), "/proc/%d (deleted)", dead_child);
	link_is(getpid(), FD + 1, want);
	CHECK(openat(FD + 1, "stat", O_RDONLY) < 0, "the dead directory opens stat");
	CHECK(kill(dead_child, 0) < 0 && errno == ESRCH, "pid %d lives", dead_child);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child to reap");
}

/* ------------------------- refused /proc files ----------------------- */

static pid_t refused_pid;

/* The harness (our parent) lives on through the cycle: the same process. */
static void outside_setup(void)
{
	char path[64];
	refused_pid = getppid();
	snprintf(path, sizeof(path), "/proc/%d/stat", refused_pid);
	open_at(path, O_RDONLY, FD);
	snprintf(path, sizeof(path), "/proc/%d", refused_pid);
	open_at(path, O_RDONLY | O_DIRECTORY, FD + 1);
}

static void outside_check(void)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/stat", refused_pid);
	CHECK_SYS(!fstat(FD, &a) && !stat(path, &b), "stat fd %d, %s", FD, path);
	CHECK(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "fd %d is not %s", FD, path);
	CHECK(read_stat_pid(FD) == refused_pid, "fd %d reads another pid than %d", FD, refused_pid);
	int st = openat(FD + 1, "stat", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(st >= 0, "openat(/proc/%d, stat)", refused_pid);
	CHECK(read_stat_pid(st) == refused_pid, "the /proc/%d directory names another pid",
	      refused_pid);
	close(st);
}

/* A thread's directory of a process outside the tree: refused. */
static void outthread_setup(void)
{
	char path[64];
	refused_pid = getppid();
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", refused_pid, refused_pid);
	open_at(path, O_RDONLY, 42);
}

static void tthread_setup(void)
{
	char path[64];
	start_thread();
	refused_pid = thread_tid;
	snprintf(path, sizeof(path), "/proc/%d/stat", refused_pid);
	open_at(path, O_RDONLY, 42);
}

/* The refused dump changed nothing: fd 42 names the same process. */
static void refused_check(void)
{
	CHECK(read_stat_pid(42) == refused_pid, "fd 42 reads another pid than %d", refused_pid);
}

static void middle_setup(void)
{
	char buf[10];
	open_at("/proc/self/maps", O_RDONLY, 42);
	CHECK_SYS(read(42, buf, sizeof(buf)) == sizeof(buf), "read maps");
}

static void middle_check(void)
{
	CHECK(lseek(42, 0, SEEK_CUR) == 10, "maps no longer at offset 10");
}

/* A child reaped, after fd 42 read 10 bytes of its stat. */
static void exited_setup(void)
{
	char path[64], buf[10];
	pid_t p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (!p)
		for (;;)
			pause();
	snprintf(path, sizeof(path), "/proc/%d/stat", p);
	open_at(path, O_RDONLY, 42);
	CHECK_SYS(read(42, buf, sizeof(buf)) == sizeof(buf), "read %s", path);
	kill(p, SIGKILL);
	CHECK_SYS(waitpid(p, NULL, 0) == p, "waitpid");
	refused_pid = p;
}

/* Still the file of the exited child, at 10. */
static void exited_check(void)
{
	char want[80];
	snprintf(want, sizeof(want), "/proc/%d/stat", refused_pid);
	link_is(getpid(), 42, want);
	CHECK(lseek(42, 0, SEEK_CUR) == 10, "fd 42 no longer at offset 10");
}

/* ------------------------------ main --------------------------------- */

/* -------------------------------- ns --------------------------------- */

static const char *const ns_entries[] = { "net", "pid", "pid_for_children" };

static _Noreturn void idle_child(void)
{
	test_block_check();
	CHECK_SYS(write(ready[1], "r", 1) == 1, "write");
	for (;;)
		pause();
}

static void ns_setup(void)
{
	char path[64], b;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_entries[i]);
		open_at(path, O_RDONLY, FD + i);
	}
	CHECK_SYS(!pipe(ready), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child)
		idle_child();
	CHECK_SYS(read(ready[0], &b, 1) == 1, "read");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", child);
	open_at(path, O_RDONLY, FD + 3);
}

/* fd names the namespace /proc/PID/ns/NAME shows now. */
static void ns_is(int fd, pid_t pid, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	CHECK_SYS(!fstat(fd, &a) && !stat(path, &b), "stat fd %d, %s", fd, path);
	CHECK(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "fd %d: inode %lu, %s is %lu", fd,
	      (unsigned long)a.st_ino, path, (unsigned long)b.st_ino);
}

static void ns_check(void)
{
	for (int i = 0; i < 3; i++)
		ns_is(FD + i, getpid(), ns_entries[i]);
	ns_is(FD + 3, child, "uts");
}

static void nsout_setup(void)
{
	char path[64], b;
	CHECK_SYS(!pipe(ready), "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (!c) {
		CHECK_SYS(!unshare(CLONE_NEWNET), "unshare");
		idle_child();
	}
	CHECK_SYS(read(ready[0], &b, 1) == 1, "read");
	snprintf(path, sizeof(path), "/proc/%d/ns/net", c);
	open_at(path, O_RDONLY, 42);
	CHECK_SYS(!kill(c, SIGKILL) && waitpid(c, NULL, 0) == c, "kill %d", c);
}

static void nsout_check(void)
{
	struct stat a, b;
	CHECK_SYS(!fstat(42, &a) && !stat("/proc/self/ns/net", &b), "stat");
	CHECK(a.st_ino != b.st_ino, "fd 42 is our own network namespace");
}

static const struct cr_case cases[] = {
	{ "ns", ns_setup, ns_check },
	{ "nsout", nsout_setup, nsout_check },
	{ "parent", parent_setup, parent_check },
	{ "maps", maps_setup, maps_check },
	{ "thread", thread_setup, thread_check },
	{ "deadcwd", deadcwd_setup, deadcwd_check },
	{ "deadfd", deadfd_setup, deadfd_check },
	{ "outside", outside_setup, outside_check },
	{ "outthread", outthread_setup, refused_check },
	{ "tthread", tthread_setup, refused_check },
	{ "middle", middle_setup, middle_check },
	{ "exited", exited_setup, exited_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
