/* tests/mpi/reaper.c: run a command as a child subreaper and reap every
 * orphan at once, so that the PIDs of a killed job (MPI ranks whose
 * mpirun died first) are free again before the test restores them: PID 1
 * of this machine reaps late.  Exits with the command's status. */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status, code = 127;

	if (argc < 2 || prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		fprintf(stderr, "usage: reaper COMMAND [ARGS...]\n");
		return 2;
	}
	pid_t cmd = fork();
	if (cmd == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	for (;;) {
		pid_t pid = wait(&status);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			return code; /* no child left */
		if (pid == cmd)
			code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
}
