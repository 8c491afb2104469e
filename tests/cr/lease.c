/*
 * cr_lease: file leases (F_SETLEASE) survive a checkpoint.  The root holds
 *
 *   FD      a read lease (file opened O_RDONLY)
 *   FD + 1  a write lease (O_RDWR)
 *   FD + 2  a read lease being broken by an open for writing (it breaks
 *           to F_UNLCK)
 *   FD + 3  a write lease being broken by an open for reading (it breaks
 *           to F_RDLCK)
 *
 * each with F_SETSIG SIGUSR2, and a child holds them too (one open file
 * each, inherited).  After the restore F_GETLEASE says the same, no lease
 * signal came again (the two breaks were signalled before the dump), the
 * read lease still breaks (an open for writing fails with EWOULDBLOCK and
 * signals us with its fd), and the breaking lease still blocks opens until
 * we give it up.
 *
 * With the argument "two-breaking": two opens of one file with a read
 * lease each, both being broken: refused by name, and the leases are
 * still breaking after the refused dump.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 40

static char path[4][PATH_MAX];
static volatile int nr_signals, last_fd = -1;
static pid_t child;

static void on_lease(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	nr_signals++;
	last_fd = si->si_fd;
}

/* fd `fd` on a new file `name`, opened with `flags`, with lease `type`. */
static void leased(int fd, const char *name, int flags, int type)
{
	test_path(path[fd - FD], name);
	close(open(path[fd - FD], O_CREAT | O_WRONLY, 0600));
	move_fd(open(path[fd - FD], flags), fd);
	CHECK_SYS(!fcntl(fd, F_SETSIG, SIGUSR2), "F_SETSIG %d", fd);
	CHECK_SYS(!fcntl(fd, F_SETLEASE, type), "F_SETLEASE %d", fd);
}

/* An open of fd's file that conflicts with its lease: it must fail. */
static void conflict(int fd, int flags)
{
	int f = open(path[fd - FD], flags | O_NONBLOCK);
	CHECK(f < 0 && errno == EWOULDBLOCK, "open of %s did not break its lease (%d, %s)",
	      path[fd - FD], f, strerror(errno));
}

static void setup(void)
{
	struct sigaction sa = { .sa_sigaction = on_lease, .sa_flags = SA_SIGINFO | SA_RESTART };
	CHECK_SYS(!sigaction(SIGUSR2, &sa, NULL), "sigaction");
	leased(FD, "lease-rd", O_RDONLY, F_RDLCK);
	leased(FD + 1, "lease-wr", O_RDWR, F_WRLCK);
	leased(FD + 2, "lease-rd-breaking", O_RDONLY, F_RDLCK);
	leased(FD + 3, "lease-wr-breaking", O_WRONLY, F_WRLCK);
	conflict(FD + 2, O_WRONLY);
	conflict(FD + 3, O_RDONLY);
	CHECK(nr_signals == 2 && last_fd == FD + 3, "%d lease signals, last fd %d", nr_signals,
	      last_fd);
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child) {
		test_block_check();
		for (;;)
			pause();
	}
}

static void check_type(int fd, int want)
{
	int type = fcntl(fd, F_GETLEASE);
	CHECK(type == want, "fd %d: lease %d, not %d", fd, type, want);
}

static void check(void)
{
	check_type(FD, F_RDLCK);
	check_type(FD + 1, F_WRLCK);
	check_type(FD + 2, F_UNLCK);
	check_type(FD + 3, F_RDLCK);
	usleep(100 * 1000);
	CHECK(nr_signals == 2, "%d lease signals since the restore", nr_signals - 2);
	conflict(FD, O_WRONLY);
	for (int i = 0; i < 500 && nr_signals == 2; i++)
		usleep(10 * 1000);
	CHECK(nr_signals == 3 && last_fd == FD, "the read lease's break: %d signals, fd %d",
	      nr_signals - 2, last_fd);
	conflict(FD + 2, O_WRONLY);
	CHECK_SYS(!fcntl(FD + 2, F_SETLEASE, F_UNLCK), "give up the breaking lease");
	int f = open(path[2], O_WRONLY | O_NONBLOCK);
	CHECK_SYS(f >= 0, "open after the break");
	close(f);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static void two_breaking_setup(void)
{
	struct sigaction sa = { .sa_sigaction = on_lease, .sa_flags = SA_SIGINFO | SA_RESTART };
	CHECK_SYS(!sigaction(SIGUSR2, &sa, NULL), "sigaction");
	leased(FD, "lease-two", O_RDONLY, F_RDLCK);
	strcpy(path[1], path[0]);
	move_fd(open(path[1], O_RDONLY), FD + 1);
	CHECK_SYS(!fcntl(FD + 1, F_SETSIG, SIGUSR2), "F_SETSIG");
	CHECK_SYS(!fcntl(FD + 1, F_SETLEASE, F_RDLCK), "F_SETLEASE");
	conflict(FD, O_WRONLY);
}

static void two_breaking_check(void)
{
	check_type(FD, F_UNLCK);
	check_type(FD + 1, F_UNLCK);
	conflict(FD, O_WRONLY);
}

int main(int argc, char **argv)
{
	int two = argc > 1 && !strcmp(argv[1], "two-breaking");
	test_init();
	if (two)
		two_breaking_setup();
	else
		setup();
	test_ready();
	test_wait_check();
	if (two)
		two_breaking_check();
	else
		check();
	pass();
}
