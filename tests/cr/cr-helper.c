/*
 * cr-helper: the harness side of --helper.  Some cases need a peer outside
 * the dumped tree (a server the tree's socket talks to).  Everything the
 * test forks is in the tree, and our orphans come back to us (we are a
 * child subreaper, and reap_all() waits for every child), so the helper is
 * started by a double fork while we are briefly not a subreaper: it ends
 * up outside our tree of children.  It runs in the test's dir with $CR_DIR
 * set, and writes the file "helper-ready" there once it serves.  We keep a
 * pidfd to kill it at the end.
 */
#include "cr-run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_MS (30 * 1000)

static void exec_helper(struct run *r, int report)
{
	char log[PATH_MAX + 16];
	pid_t pid = fork();
	if (pid != 0) {
		int ok = pid > 0 && write(report, &pid, sizeof(pid)) == sizeof(pid);
		_exit(ok ? 0 : 1);
	}
	path_in(r, log, sizeof(log), "helper.log");
	FILE *f = freopen(log, "a", stdout);
	if (!f || dup2(1, 2) < 0 || chdir(r->tmp))
		_exit(126);
	setenv("CR_DIR", r->tmp, 1);
	syscall(SYS_close_range, 3, ~0u, 0);
	execl(r->helper, r->helper, r->helper_arg, (char *)NULL);
	fprintf(stderr, "exec %s: %s\n", r->helper, strerror(errno));
	_exit(127);
}

static int wait_helper_ready(struct run *r, pid_t pid)
{
	char ready[PATH_MAX + 16];
	struct stat st;
	uint64_t end = clock_ms() + budget_ms(HELPER_MS);

	path_in(r, ready, sizeof(ready), "helper-ready");
	while (stat(ready, &st)) {
		if (clock_ms() > end || kill(pid, 0)) {
			say("helper %s did not get ready", r->helper);
			return -1;
		}
		sleep_ms(5);
	}
	return 0;
}

int start_helper(struct run *r)
{
	int p[2], status;
	pid_t pid = -1, mid;

	if (pipe(p) || prctl(PR_SET_CHILD_SUBREAPER, 0)) {
		say("helper: %s", strerror(errno));
		return -1;
	}
	mid = fork();
	if (mid == 0)
		exec_helper(r, p[1]);
	close(p[1]);
	if (mid < 0 || read(p[0], &pid, sizeof(pid)) != sizeof(pid))
		pid = -1;
	close(p[0]);
	if (mid > 0)
		waitpid(mid, &status, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) || pid <= 0) {
		say("helper: cannot start %s", r->helper);
		return -1;
	}
	r->helper_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (r->helper_pidfd <= 0) {
		say("helper: pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		return -1;
	}
	return wait_helper_ready(r, pid);
}

void stop_helper(struct run *r)
{
	char log[PATH_MAX + 16];
	if (r->helper_pidfd <= 0)
		return;
	syscall(SYS_pidfd_send_signal, r->helper_pidfd, SIGKILL, NULL, 0);
	close(r->helper_pidfd);
	r->helper_pidfd = 0;
	if (r->verbose) {
		path_in(r, log, sizeof(log), "helper.log");
		print_file("helper log", log);
	}
}

static struct sockaddr_un inherit_addr = { .sun_family = AF_UNIX };

/* In ckptctl, once spawn() closed our fds: the connection at fd 100. */
static void put_inherited(void *arg)
{
	(void)arg;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&inherit_addr, sizeof(inherit_addr)) ||
	    dup2(fd, 100) != 100)
		_exit(126);
	close(fd);
}

int inherit_unix(struct run *r, const char *extra[3], void (**pre_exec)(void *))
{
	static char arg[128];
	char path[PATH_MAX + 16], res[64] = { 0 };

	path_in(r, path, sizeof(path), "inherit-resource");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, res, sizeof(res) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		say("--inherit-unix: no resource in %s", path);
		return -1;
	}
	res[strcspn(res, "\n")] = '\0';
	path_in(r, inherit_addr.sun_path, sizeof(inherit_addr.sun_path), r->inherit_unix);
	snprintf(arg, sizeof(arg), "fd[100]:%s", res);
	extra[0] = "--inherit-fd";
	extra[1] = arg;
	*pre_exec = put_inherited;
	return 0;
}
