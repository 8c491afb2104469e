/*
 * bad_dump_vfork: a tree with a vfork parent waiting for its child is
 * refused at dump time, by name, and left as it was.
 *
 * The root forks P; P vforks G, which sleeps without exec (P stays in its
 * uninterruptible vfork wait).  PTRACE_INTERRUPT cannot stop P and the two
 * share one address space: the dump must refuse (naming the vfork) and
 * not hang.  On the check signal the root verifies that P still waits
 * (state D) and G still runs, then kills G, P goes on and exits 7.
 *
 * cr_vfork_spawn (argument "spawn"): a process that vforks and execs
 * /bin/true all the time, as posix_spawn and Python's subprocess do, so
 * that a freeze often finds it in its vfork wait.  Such a wait ends by
 * itself: the dump waits it out and goes through, every time.
 */
#include "crlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t p, g;
static int gpipe[2];

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

static _Noreturn void p_main(void)
{
	pid_t me = getpid();
	pid_t child = vfork();
	if (child == 0) {
		/* G: tell the root who we are (write(2) only), then sleep. */
		pid_t self = getpid();
		if (write(gpipe[1], &self, sizeof(self)) != sizeof(self))
			_exit(1);
		for (;;)
			pause();
	}
	(void)me;
	_exit(7);
}

/* vfork + exec /bin/true + wait, until the check; the children's exit
 * statuses all 0. */
static _Noreturn void spawn_main(void)
{
	static unsigned long n; /* static: vfork may clobber a local */
	test_init();
	test_ready();
	while (!test_check_requested()) {
		int status;
		pid_t c = vfork();
		if (c == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		CHECK_SYS(c > 0, "vfork");
		CHECK_SYS(waitpid(c, &status, 0) == c, "waitpid %d", c);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", c, status);
		n++;
	}
	CHECK(n > 0, "no child was spawned");
	pass();
}

int main(int argc, char **argv)
{
	int status;

	if (argc > 1 && !strcmp(argv[1], "spawn"))
		spawn_main();
	test_init();
	CHECK_SYS(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper");
	CHECK_SYS(!pipe(gpipe), "pipe");
	p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (p == 0)
		p_main();
	CHECK_SYS(read_full(gpipe[0], &g, sizeof(g)) == sizeof(g), "read");
	for (int i = 0; i < 1000 && state_of(p) != 'D'; i++)
		usleep(1000);
	CHECK(state_of(p) == 'D', "P %d is not in its vfork wait", p);
	test_ready();
	test_wait_check();
	CHECK(state_of(p) == 'D', "P %d: state %c, no longer in its vfork wait", p, state_of(p));
	CHECK(state_of(g) == 'S', "G %d: state %c", g, state_of(g));
	CHECK_SYS(!kill(g, SIGKILL), "kill G");
	CHECK_SYS(waitpid(p, &status, 0) == p, "waitpid P");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "P: status %#x", status);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	pass();
}
