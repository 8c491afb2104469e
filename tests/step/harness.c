/*
 * Builds a restored step's situation and becomes ckpt-step: for each
 * rank, pipes for its stdin, stdout and stderr and a socketpair for PMIx
 * (its end on the rank's fd 3); forks the rank (a shell command); then
 * execs ckpt-step with the proxy's ends as --task, so that the ranks are
 * the proxy's children, as after a restore.
 *
 *   step-harness [--first-rank R] [--old-server NS] CKPT_STEP [ckpt-step options] -- CMD0 [CMD1 ...]
 *
 * Rank R+i (R: 0 unless --first-rank, the first of this "node"'s ranks)
 * runs `sh -c CMDi` with STEP_RANK=R+i in its environment.
 *
 * --old-server NS: plays slurmstepd's PMIx server for real libpmix
 * clients, as far as the handshake: the ranks get the environment
 * PMIx_server_setup_fork would give them (gds hash, so that they ask the
 * server for the job's data instead of mapping a store), connect to our
 * loopback listener and handshake; we answer success and a peer index of
 * 42, then hand the accepted sockets to ckpt-step as their PMIX fds.  The
 * rest of their PMIx_Init (the job-data request) and everything after
 * goes to ckpt-step's server through its splice: a rank already
 * connected to a server that is not the one serving it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
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

static int old_port; /* --old-server: our listener's port */
static int first_rank; /* --first-rank */
static const char *old_nspace;

static void old_server_env(int i)
{
	char uri[128], rank[16];

	snprintf(uri, sizeof(uri), "%s.0;tcp4://127.0.0.1:%d", old_nspace, old_port);
	snprintf(rank, sizeof(rank), "%d", i);
	setenv("PMIX_NAMESPACE", old_nspace, 1);
	setenv("PMIX_RANK", rank, 1);
	setenv("PMIX_SERVER_URI41", uri, 1);
	setenv("PMIX_SECURITY_MODE", "native", 1);
	setenv("PMIX_GDS_MODULE", "hash", 1);
	setenv("PMIX_BFROP_BUFFER_TYPE", "PMIX_BFROP_BUFFER_NON_DESC", 1);
	setenv("PMIX_SERVER_TMPDIR", "/nonexistent", 1);
	setenv("PMIX_SYSTEM_TMPDIR", "/nonexistent", 1);
}

static int listen_loopback(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len))
		fail("listen");
	old_port = ntohs(sin.sin_port);
	return fd;
}

static void read_full(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r <= 0)
			fail("old server: read");
		c += r;
		n -= r;
	}
}

/* The server side of the handshake; returns the rank that connected. */
static int old_handshake(int fd)
{
	uint32_t hdr[4], reply[2] = { htonl(0), htonl(42) }, credlen, rank;
	char body[4096], *p = body;

	read_full(fd, hdr, sizeof(hdr)); /* host order in the handshake */
	if (hdr[2] >= sizeof(body))
		fail("old server: handshake too long");
	read_full(fd, body, hdr[2]);
	p += strlen(p) + 1; /* psec */
	memcpy(&credlen, p, 4);
	p += 4 + ntohl(credlen) + 1; /* credential, flag */
	p += strlen(p) + 1; /* nspace */
	memcpy(&rank, p, 4);
	if (write(fd, reply, sizeof(reply)) != sizeof(reply))
		fail("old server: reply");
	return ntohl(rank);
}

static pid_t start_rank(int i, const char *cmd, int in[2], int out[2], int err[2], int sp[2])
{
	pid_t pid = fork();
	char rank[16];

	if (pid < 0)
		fail("fork");
	if (pid)
		return pid;
	snprintf(rank, sizeof(rank), "%d", first_rank + i);
	setenv("STEP_RANK", rank, 1);
	if (old_nspace)
		old_server_env(first_rank + i);
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
	int nargs = 0, sep = 0, nranks, listener = -1, pmix[MAX];

	if (argc > 2 && !strcmp(argv[1], "--first-rank")) {
		first_rank = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && !strcmp(argv[1], "--old-server")) {
		old_nspace = argv[2];
		listener = listen_loopback();
		argv += 2;
		argc -= 2;
	}
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
		pmix[i] = sp[0];
		snprintf(tasks[i], sizeof(tasks[i]), "%d:%d:%d:%d:%d:", first_rank + i, pid, in[1],
			 out[0], err[0]);
	}
	for (int i = 0; listener >= 0 && i < nranks; i++) {
		int fd = accept4(listener, NULL, NULL, 0), rank;

		if (fd < 0)
			fail("accept");
		rank = old_handshake(fd) - first_rank;
		if (rank < 0 || rank >= nranks)
			fail("old server: rank");
		close(pmix[rank]);
		pmix[rank] = fd;
	}
	for (int i = 0; i < nranks; i++) {
		snprintf(tasks[i] + strlen(tasks[i]), 16, "%d", pmix[i]);
		args[nargs++] = "--task";
		args[nargs++] = tasks[i];
	}
	if (listener >= 0)
		close(listener);
	args[nargs] = NULL;
	execv(args[0], args);
	fail("exec ckpt-step");
	return 99;
}
