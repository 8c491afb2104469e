/*
 * cr-pty: the harness side of --on-pty; see cr-pty.h.
 */
#include "cr-pty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int masters[2] = { -1, -1 };
static char slave[64];

int pty_new(struct run *r, int slot, const char *name)
{
	char path[PATH_MAX + 16];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), fd;

	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, slave, sizeof(slave))) {
		say("a new pty: %s", strerror(errno));
		return -1;
	}
	if (masters[slot] >= 0)
		close(masters[slot]);
	masters[slot] = m;
	path_in(r, path, sizeof(path), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s\n", slave) < 0) {
		say("%s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

const char *pty_slave_name(void)
{
	return slave;
}

/* Become a session leader whose controlling terminal is the slave. */
static int take_pty(void)
{
	if (setsid() < 0)
		return -1;
	return open(slave, O_RDWR);
}

void pty_shell_run(struct run *r, void (*exec_test)(struct run *))
{
	int tty = take_pty(), status;
	pid_t job;

	if (tty < 0)
		_exit(126);
	job = fork();
	if (job == 0) {
		/* what a job-control shell does for a foreground job */
		setpgid(0, 0);
		signal(SIGTTOU, SIG_IGN);
		if (tcsetpgrp(tty, getpgrp()))
			_exit(126);
		signal(SIGTTOU, SIG_DFL);
		exec_test(r);
		_exit(127);
	}
	setpgid(job, job);
	while (waitpid(job, &status, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

void pty_restore_pre_exec(void *arg)
{
	int tty = take_pty();

	(void)arg;
	/* stderr stays the harness's error file */
	if (tty < 0 || dup2(tty, 0) < 0 || dup2(tty, 1) < 0)
		_exit(126);
	close(tty);
}

void pty_print(void)
{
	char buf[4096];
	ssize_t n;

	for (int i = 0; i < 2; i++) {
		if (masters[i] < 0)
			continue;
		fcntl(masters[i], F_SETFL, O_NONBLOCK);
		while ((n = read(masters[i], buf, sizeof(buf))) > 0) {
			fprintf(stderr, "----- what the test wrote on pty %d -----\n", i);
			fwrite(buf, 1, (size_t)n, stderr);
		}
	}
}
