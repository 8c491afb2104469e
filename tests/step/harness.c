/*
 * Builds a restored step's situation and becomes ckpt-step: for each
 * rank, pipes for its stdin, stdout and stderr and a socketpair for PMIx
 * (its end on the rank's fd 3); forks the rank (a shell command); then
 * execs ckpt-step with the proxy's ends as --task, so that the ranks are
 * the proxy's children, as after a restore.
 *
 *   step-harness CKPT_STEP [ckpt-step options] -- CMD0 [CMD1 ...]
 *
 * Rank i runs `sh -c CMDi` with STEP_RANK=i in its environment.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX 16

static void fail(const char *what)
{
	perror(what);
	exit(99);
}

static pid_t start_rank(int i, const char *cmd, int in[2], int out[2], int err[2], int sp[2])
{
	pid_t pid = fork();
	char rank[16];

	if (pid < 0)
		fail("fork");
	if (pid)
		return pid;
	snprintf(rank, sizeof(rank), "%d", i);
	setenv("STEP_RANK", rank, 1);
	if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0 || dup2(sp[1], 3) < 0)
		fail("dup2");
	/* everything above 3 is the proxy's, not the rank's */
	for (int fd = 4; fd < 1024; fd++)
		close(fd);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	fail("exec sh");
	return -1;
}

int main(int argc, char **argv)
{
	char *args[256], tasks[MAX][64];
	int nargs = 0, sep = 0, nranks;

	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			sep = i;
			break;
		}
	nranks = sep ? argc - sep - 1 : 0;
	if (argc < 3 || !sep || nranks < 1 || nranks > MAX || sep > 200) {
		fprintf(stderr, "usage: step-harness CKPT_STEP [options] -- CMD...\n");
		return 99;
	}
	for (int i = 1; i < sep; i++)
		args[nargs++] = argv[i];
	for (int i = 0; i < nranks; i++) {
		int in[2], out[2], err[2], sp[2];
		pid_t pid;

		if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
			fail("pipe");
		pid = start_rank(i, argv[sep + 1 + i], in, out, err, sp);
		close(in[0]);
		close(out[1]);
		close(err[1]);
		close(sp[1]);
		/* the proxy's ends survive the exec */
		fcntl(in[1], F_SETFD, 0);
		fcntl(out[0], F_SETFD, 0);
		fcntl(err[0], F_SETFD, 0);
		fcntl(sp[0], F_SETFD, 0);
		snprintf(tasks[i], sizeof(tasks[i]), "%d:%d:%d:%d:%d:%d", i, pid, in[1], out[0], err[0],
			 sp[0]);
		args[nargs++] = "--task";
		args[nargs++] = tasks[i];
	}
	args[nargs] = NULL;
	execv(args[0], args);
	fail("exec ckpt-step");
	return 99;
}
