/*
 * cr_pidfd_*: pidfds survive a checkpoint.  One program, one case per
 * argument:
 *
 *   pidfd     the root holds pidfds for itself (O_NONBLOCK, inherited by
 *             its children), a live child (twice, dup'd; inherited by the
 *             next child), another child (PIDFD_THREAD, its main thread),
 *             a zombie child, dead pidfds (two descriptions of one reaped
 *             child and one of another), and an epoll watching the two
 *             live children's.  After the restore each names the same
 *             process (fdinfo Pid:), keeps its flags and is the same open
 *             file in every process holding it (kcmp); pidfd_send_signal
 *             reaches the child, epoll and poll see its pidfd ready once
 *             it exits and waitid(P_PIDFD) reaps it; the zombie's is
 *             readable and reaps it; the dead ones are readable, Pid -1,
 *             and equal (fstat) exactly to their companions.
 *   no-zombie the same without the zombie (a user's dump refuses zombies)
 *   outside   a pidfd of the harness (a process outside the tree): refused
 *   thread    a PIDFD_THREAD pidfd of a thread that is not the main one:
 *             refused
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define FD 40 /* the cases' fds are FD, FD + 1, ... */

static pid_t live, other, zombie, dead_a, dead_b;

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static _Noreturn void child_loop(void)
{
	test_block_check();
	for (;;)
		pause();
}

static pid_t start_child(void)
{
	pid_t p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (!p)
		child_loop();
	return p;
}

/* fdinfo's Pid: of fd, or -2. */
static long pid_of(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	const char *s = strstr(snapshot_file(path, 0), "\nPid:");
	return s ? strtol(s + 5, NULL, 10) : -2;
}

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static ino_t ino_of(int fd)
{
	struct stat st;
	CHECK_SYS(!fstat(fd, &st), "fstat %d", fd);
	return st.st_ino;
}

/* A child that is reaped, with pidfds for it at fds[0..n-1]. */
static pid_t dead_child(const int *fds, int n)
{
	pid_t p = start_child();
	for (int i = 0; i < n; i++)
		move_fd(pidfd_open(p, 0), fds[i]);
	kill(p, SIGKILL);
	CHECK_SYS(waitpid(p, NULL, 0) == p, "waitpid");
	return p;
}

static int with_zombie = 1;

static void zombie_setup(void)
{
	zombie = fork();
	CHECK_SYS(zombie >= 0, "fork");
	if (!zombie)
		_exit(7);
	move_fd(pidfd_open(zombie, 0), FD + 4);
	siginfo_t si;
	CHECK_SYS(!waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT), "waitid zombie");
}

static void pidfd_setup(void)
{
	move_fd(pidfd_open(getpid(), O_NONBLOCK), FD);
	live = start_child();
	move_fd(pidfd_open(live, 0), FD + 1);
	move_fd(dup(FD + 1), FD + 2);
	other = start_child(); /* holds FD and FD + 1 too */
	move_fd(pidfd_open(other, PIDFD_THREAD), FD + 3);
	move_fd(epoll_create1(0), FD + 8);
	for (int fd = FD + 1; fd <= FD + 3; fd += 2) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)fd };
		CHECK_SYS(!epoll_ctl(FD + 8, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl %d", fd);
	}
	if (with_zombie)
		zombie_setup();
	dead_a = dead_child((const int[]){ FD + 5, FD + 6 }, 2);
	dead_b = dead_child((const int[]){ FD + 7 }, 1);
}

/* A user's dump does not take zombies yet (their owner is unreadable). */
static void no_zombie_setup(void)
{
	with_zombie = 0;
	pidfd_setup();
}

static int same_file(pid_t other_pid, int fd)
{
	return syscall(SYS_kcmp, getpid(), other_pid, 0 /* KCMP_FILE */, fd, fd) == 0;
}

static void check_live(void)
{
	CHECK(same_file(live, FD) && same_file(other, FD) && same_file(other, FD + 1),
	      "an inherited pidfd is no longer shared with the children");
	CHECK(pid_of(FD) == getpid(), "self pidfd names %ld", pid_of(FD));
	CHECK(fcntl(FD, F_GETFL) & O_NONBLOCK, "self pidfd lost O_NONBLOCK");
	CHECK(pid_of(FD + 1) == live && pid_of(FD + 2) == live, "child pidfd names %ld",
	      pid_of(FD + 1));
	CHECK(ino_of(FD + 1) == ino_of(FD + 2), "dup'd pidfd not the same file");
	CHECK(pid_of(FD + 3) == other, "thread pidfd names %ld", pid_of(FD + 3));
	CHECK(fcntl(FD + 3, F_GETFL) & PIDFD_THREAD, "PIDFD_THREAD lost");
	CHECK(!readable(FD + 1) && !readable(FD + 3), "pidfd of a live child readable");
	struct epoll_event ev;
	CHECK(epoll_wait(FD + 8, &ev, 1, 0) == 0, "epoll says a live child's pidfd is ready");
	CHECK_SYS(!syscall(SYS_pidfd_send_signal, FD + 1, SIGKILL, NULL, 0), "pidfd_send_signal");
	CHECK(epoll_wait(FD + 8, &ev, 1, 5000) == 1 && ev.data.u32 == FD + 1,
	      "epoll did not see the child's pidfd ready");
	struct pollfd p = { .fd = FD + 1, .events = POLLIN };
	CHECK(poll(&p, 1, 5000) == 1, "pidfd not readable after the child exited");
	siginfo_t si = { 0 };
	CHECK_SYS(!waitid((idtype_t)P_PIDFD, FD + 1, &si, WEXITED), "waitid(P_PIDFD)");
	CHECK(si.si_pid == live && si.si_code == CLD_KILLED, "waitid: pid %d code %d", si.si_pid,
	      si.si_code);
	if (!with_zombie)
		return;
	CHECK(readable(FD + 4), "the zombie's pidfd not readable");
	CHECK_SYS(!waitid((idtype_t)P_PIDFD, FD + 4, &si, WEXITED), "waitid zombie");
	CHECK(si.si_pid == zombie && si.si_status == 7, "zombie: pid %d status %d", si.si_pid,
	      si.si_status);
}

static void check_dead(void)
{
	for (int fd = FD + 5; fd <= FD + 7; fd++) {
		CHECK(pid_of(fd) == -1, "dead pidfd %d names %ld", fd, pid_of(fd));
		CHECK(readable(fd), "dead pidfd %d not readable", fd);
	}
	CHECK(ino_of(FD + 5) == ino_of(FD + 6), "pidfds of one dead process differ");
	CHECK(ino_of(FD + 5) != ino_of(FD + 7), "pidfds of two dead processes are equal");
	CHECK(syscall(SYS_pidfd_send_signal, FD + 5, SIGKILL, NULL, 0) && errno == ESRCH,
	      "a signal through a dead pidfd did not fail with ESRCH");
}

static void pidfd_check(void)
{
	check_live();
	check_dead();
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

/* ------------------------- refused pidfds ---------------------------- */

static void outside_setup(void)
{
	move_fd(pidfd_open(getppid(), 0), 42);
}

static volatile pid_t thread_tid;

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static void thread_setup(void)
{
	pthread_t t;
	test_block_check(); /* inherited by the thread */
	CHECK(!pthread_create(&t, NULL, thread_main, NULL), "pthread_create");
	while (!thread_tid)
		usleep(1000);
	move_fd(pidfd_open(thread_tid, PIDFD_THREAD), 42);
}

/* The refused dump changed nothing: fd 42 names the same process. */
static void refused_check(void)
{
	long want = thread_tid ? thread_tid : getppid();
	CHECK(pid_of(42) == want, "pidfd names %ld, not %ld", pid_of(42), want);
}

/* ------------------------------ main --------------------------------- */

static const struct cr_case cases[] = {
	{ "pidfd", pidfd_setup, pidfd_check },
	{ "no-zombie", no_zombie_setup, pidfd_check },
	{ "outside", outside_setup, refused_check },
	{ "thread", thread_setup, refused_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
