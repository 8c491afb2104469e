/*
 * cr_zombie: zombie children come back as zombies with their exit status.
 *
 * Before the dump the root has three children: A leads its own process
 * group and exits 42; C joins A's group and sleeps; B is killed by
 * SIGUSR1.  The root does not reap A or B (it waits for them with
 * WNOWAIT only) and counts SIGCHLD from then on.  After the restore: A
 * and B are zombies (state Z); no SIGCHLD came with the restore; C is
 * still in A's process group; reaping gives A exit 42 and B killed by
 * SIGUSR1; C still runs.
 */
#include "crlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t a, b, c;
static volatile int chld;

static void on_chld(int sig)
{
	(void)sig;
	chld++;
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

static pid_t child(int how, int go_fd)
{
	pid_t pid = fork();
	char x;

	CHECK_SYS(pid >= 0, "fork");
	if (pid)
		return pid;
	if (how == 'A') {
		setpgid(0, 0);
		/* Exit once C has joined the group. */
		if (read(go_fd, &x, 1) != 1)
			_exit(1);
		_exit(42);
	}
	for (;;)
		pause();
}

static void wait_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	CHECK_SYS(!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), "waitid %d", pid);
}

static void setup(void)
{
	struct sigaction sa;
	int go[2];

	CHECK_SYS(!pipe(go), "pipe");
	a = child('A', go[0]);
	CHECK_SYS(!setpgid(a, a), "setpgid A");
	c = child('C', -1);
	CHECK_SYS(!setpgid(c, a), "setpgid C");
	b = child('B', -1);
	CHECK_SYS(write(go[1], "g", 1) == 1, "write");
	close(go[0]);
	close(go[1]);
	CHECK_SYS(!kill(b, SIGUSR1), "kill B");
	wait_zombie(a);
	wait_zombie(b);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART;
	CHECK_SYS(!sigaction(SIGCHLD, &sa, NULL), "sigaction");
	chld = 0;
}

static void check(void)
{
	int status;

	CHECK(state_of(a) == 'Z' && state_of(b) == 'Z', "A %c, B %c: expected zombies",
	      state_of(a), state_of(b));
	CHECK(chld == 0, "%d SIGCHLD since the zombies died", chld);
	CHECK(getpgid(c) == a, "C in process group %d, expected %d", getpgid(c), a);
	CHECK(state_of(c) == 'S', "C: state %c", state_of(c));
	CHECK_SYS(waitpid(a, &status, WNOHANG) == a, "waitpid A");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42, "A: status %#x, expected exit 42",
	      status);
	CHECK_SYS(waitpid(b, &status, WNOHANG) == b, "waitpid B");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1,
	      "B: status %#x, expected killed by SIGUSR1", status);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check();
	pass();
}
