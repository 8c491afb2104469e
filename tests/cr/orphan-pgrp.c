/*
 * cr_orphan_pgrp: an orphaned process group (its leader gone) survives.
 *
 * The root is a child subreaper.  L makes itself a process group, forks M1
 * and M2 (both in group L) and exits; the root reaps L, and M1, M2 are
 * reparented to it.  After the restore both are still in process group L,
 * which no process of the tree leads, and a signal to the group reaches
 * both of them.
 */
#include "crlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t l, m[2];

static _Noreturn void l_main(int report)
{
	CHECK_SYS(!setpgid(0, 0), "setpgid");
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (;;)
				pause();
		}
		if (pid < 0 || write(report, &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
	}
	_exit(0);
}

static void setup(void)
{
	int p[2], status;

	CHECK_SYS(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper");
	CHECK_SYS(!pipe(p), "pipe");
	l = fork();
	CHECK_SYS(l >= 0, "fork");
	if (l == 0)
		l_main(p[1]);
	close(p[1]);
	CHECK_SYS(read_full(p[0], m, sizeof(m)) == sizeof(m), "read");
	close(p[0]);
	CHECK_SYS(waitpid(l, &status, 0) == l && WIFEXITED(status) && !WEXITSTATUS(status),
		  "L failed");
	for (int i = 0; i < 2; i++) {
		for (int t = 0; t < 1000 && getppid() && getpgid(m[i]) != l; t++)
			usleep(1000);
		CHECK(getpgid(m[i]) == l, "M%d: group %d, expected %d", i + 1, getpgid(m[i]), l);
	}
}

static void check(void)
{
	int status;

	for (int i = 0; i < 2; i++)
		CHECK(getpgid(m[i]) == l, "M%d (%d): process group %d, expected %d", i + 1, m[i],
		      getpgid(m[i]), l);
	CHECK(getpgid(0) != l, "the root joined group %d", l);
	CHECK_SYS(!kill(-l, SIGKILL), "kill group %d", l);
	for (int i = 0; i < 2; i++) {
		CHECK_SYS(waitpid(m[i], &status, 0) == m[i], "waitpid M%d", i + 1);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "M%d: status %#x", i + 1,
		      status);
	}
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
