/*
 * subreaper: run a command as a child subreaper and reap every orphan.
 *
 *   subreaper CMD [ARGS...]
 *
 * bench/run re-runs itself under this.  A restored memhog's parent is
 * `ckptctl restore -d`, which exits at once; the orphan is then re-parented
 * to us instead of to PID 1 (which reaps late here), and we reap it as soon
 * as bench/run kills it, so its PID and memory are free for the next run.
 * Exits with CMD's exit code (128 + signal if it was killed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status, code = 1;
	pid_t cmd, got;

	if (argc < 2) {
		fprintf(stderr, "usage: subreaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		fprintf(stderr, "subreaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	cmd = fork();
	if (cmd < 0) {
		fprintf(stderr, "subreaper: fork: %s\n", strerror(errno));
		return 1;
	}
	if (cmd == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "subreaper: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	/* Ctrl-C is for CMD, which cleans up; we outlive it to report. */
	signal(SIGINT, SIG_IGN);
	while ((got = wait(&status)) != cmd) {
		if (got < 0 && errno != EINTR)
			return 1;
	}
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		; /* orphans already dead; live ones go on to PID 1 */
	return code;
}
