/*
 * cr_stopped: a child stopped by SIGSTOP before the dump stays stopped
 * after the restore, and runs on after SIGCONT.
 *
 * The child writes one byte to a pipe every 5 ms; the parent stops it
 * (SIGSTOP, confirmed with waitpid WUNTRACED) and drains the pipe.  After
 * the restore the parent checks that the child is in state T and that
 * nothing comes through the pipe for 300 ms; after SIGCONT bytes come
 * again within 5 s.
 *
 * cr-stopped twice: the stopped child is sent SIGSTOP again, which stays
 * pending (zdtm stopped02; the restore hung, the restoring child stopped
 * by its own pending SIGSTOP).
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipefd[2];
static pid_t child;

static _Noreturn void child_main(void)
{
	close(pipefd[0]);
	for (;;) {
		if (write(pipefd[1], "x", 1) < 0 && errno != EAGAIN)
			_exit(1);
		usleep(5000);
	}
}

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	CHECK_SYS(f && fgets(buf, sizeof(buf), f), "%s", path);
	fclose(f);
	char *close = strrchr(buf, ')');
	CHECK(close && close[1] == ' ', "cannot parse %s", path);
	return close[2];
}

static int drain(void)
{
	char buf[4096];
	int total = 0;
	ssize_t n;

	while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
		total += (int)n;
	CHECK(n == 0 || errno == EAGAIN, "read: %s", strerror(errno));
	return total;
}

/* Is sig pending for the whole process? (ShdPnd of /proc/PID/status) */
static int shared_pending(pid_t pid, int sig)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	CHECK_SYS(f, "%s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "ShdPnd: %llx", &mask) == 1)
			break;
	fclose(f);
	return !!(mask & (1ULL << (sig - 1)));
}

static void setup(int twice)
{
	int status;

	CHECK_SYS(!pipe2(pipefd, O_NONBLOCK), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0)
		child_main();
	close(pipefd[1]);
	usleep(50000);
	CHECK(drain() > 0, "the child does not write");
	CHECK_SYS(!kill(child, SIGSTOP), "kill");
	CHECK_SYS(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status),
		  "waitpid WUNTRACED");
	usleep(20000);
	drain();
	if (twice) {
		CHECK_SYS(!kill(child, SIGSTOP), "kill");
		CHECK(shared_pending(child, SIGSTOP), "a second SIGSTOP is not pending");
	}
}

static void check(void)
{
	uint64_t end;
	int got = 0;

	CHECK(state_of(child) == 'T', "child %d: state %c, expected T (stopped)", child,
	      state_of(child));
	usleep(300000);
	got = drain();
	CHECK(got == 0, "child %d wrote %d bytes while it should be stopped", child, got);
	CHECK_SYS(!kill(child, SIGCONT), "SIGCONT");
	end = now_ns() + 5000000000ull;
	while (!(got = drain()) && now_ns() < end)
		usleep(10000);
	CHECK(got > 0, "child %d does not run after SIGCONT", child);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

int main(int argc, char **argv)
{
	test_init();
	setup(argc > 1 && !strcmp(argv[1], "twice"));
	test_ready();
	test_wait_check();
	check();
	pass();
}
