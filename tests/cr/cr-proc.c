/*
 * cr-proc: see cr-proc.h.
 */
#include "cr-proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cr-run: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t deadline;

void sleep_us(uint64_t us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void set_deadline(int seconds)
{
	deadline = clock_ms() + (uint64_t)seconds * 1000;
}

int budget_ms(int ms)
{
	uint64_t now = clock_ms();

	if (!deadline || now + ms <= deadline)
		return ms;
	return now < deadline ? (int)(deadline - now) : 0;
}

uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *status_str(int status)
{
	static char buf[64];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, sizeof(buf), "status 0x%x", status);
	return buf;
}

static void redirect(int fd, const char *path, int flags)
{
	int f = open(path ? path : "/dev/null", flags, 0600);

	if (f < 0 || dup2(f, fd) < 0)
		_exit(126);
	if (f != fd)
		close(f);
}

pid_t spawn(char *const argv[], const char *out, const char *err, void (*pre_exec)(void *),
	    void *arg)
{
	pid_t pid = fork();

	if (pid < 0) {
		say("fork: %s", strerror(errno));
		return -1;
	}
	if (pid)
		return pid;
	redirect(0, NULL, O_RDONLY);
	redirect(1, out, O_WRONLY | O_CREAT | O_TRUNC);
	redirect(2, err, O_WRONLY | O_CREAT | O_TRUNC);
	syscall(SYS_close_range, 3, ~0u, 0);
	signal(SIGPIPE, SIG_DFL);
	if (pre_exec)
		pre_exec(arg);
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int wait_child(pid_t pid, int timeout_ms, int *status)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd;
	int ret;

	if (pidfd < 0) {
		say("pidfd_open %d: %s", pid, strerror(errno));
		return -1;
	}
	pfd.fd = pidfd;
	pfd.events = POLLIN;
	timeout_ms = budget_ms(timeout_ms);
	do
		ret = poll(&pfd, 1, timeout_ms);
	while (ret < 0 && errno == EINTR);
	close(pidfd);
	if (ret == 0)
		return -1;
	if (waitpid(pid, status, 0) != pid) {
		say("waitpid %d: %s", pid, strerror(errno));
		return -1;
	}
	return 0;
}

void kill_child(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int reap_all(int timeout_ms)
{
	uint64_t end = clock_ms() + budget_ms(timeout_ms);
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, NULL, WNOHANG);
		if (pid < 0 && errno == ECHILD)
			return 0;
		if (pid > 0)
			continue;
		if (clock_ms() > end)
			return -1;
		sleep_ms(2);
	}
}

/* Parent pid and state letter from /proc/PID/stat (comm may hold ')'). */
static int read_stat(pid_t pid, pid_t *ppid, char *state)
{
	char path[64], buf[1024], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d", state, ppid) != 2)
		return -1;
	return 0;
}

int list_children(pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid(), ppid, pid;
	char state;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		pid = atoi(de->d_name);
		if (pid > 0 && !read_stat(pid, &ppid, &state) && ppid == self)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

/* A snapshot process of a dump (libckpt/snapshot.c, comm ckpt-snapshot)
 * is orphaned to us, the subreaper above the tree.  None may outlive its
 * dump: wait up to timeout_ms for every one to be gone (reaping the
 * zombies).  0, or -1 with its pid in *left. */
int wait_no_snapshot(int timeout_ms, pid_t *left)
{
	uint64_t end = clock_ms() + budget_ms(timeout_ms);
	pid_t pids[MAX_TREE];
	for (;;) {
		int n = list_children(pids, MAX_TREE), alive = 0;
		for (int i = 0; i < n; i++) {
			char path[64], comm[32] = "";
			pid_t ppid;
			char state;
			snprintf(path, sizeof(path), "/proc/%d/comm", pids[i]);
			FILE *f = fopen(path, "re");
			if (f && fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			if (f)
				fclose(f);
			if (strcmp(comm, "ckpt-snapshot") || read_stat(pids[i], &ppid, &state))
				continue;
			if (state == 'Z') {
				waitpid(pids[i], NULL, WNOHANG);
				continue;
			}
			*left = pids[i];
			alive++;
		}
		if (!alive)
			return 0;
		if (clock_ms() > end)
			return -1;
		sleep_ms(5);
	}
}

void kill_all_children(int timeout_ms)
{
	uint64_t end = clock_ms() + timeout_ms;
	pid_t pids[MAX_TREE];
	int n, i;

	do {
		n = list_children(pids, MAX_TREE);
		for (i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		if (!reap_all(n ? 50 : 0) && !n)
			return;
	} while (clock_ms() < end);
	say("could not kill every leftover child");
}

/* Append the children of every thread of pid. */
static int add_children(pid_t pid, pid_t *pids, int n, int max)
{
	char path[320], buf[4096], *p, *end;
	struct dirent *de;
	DIR *d;
	int fd, len;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return n;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", pid, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[len > 0 ? len : 0] = 0;
		for (p = buf; n < max; p = end) {
			long c = strtol(p, &end, 10);
			if (end == p)
				break;
			pids[n++] = c;
		}
	}
	closedir(d);
	return n;
}

int list_tree(pid_t root, pid_t *pids, int max)
{
	int n = 0, i;

	if (!pid_exists(root))
		return 0;
	pids[n++] = root;
	for (i = 0; i < n; i++)
		n = add_children(pids[i], pids, n, max);
	return n;
}

int pid_exists(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* "" if thread tid of pid runs untraced, else what is wrong. */
static const char *task_problem(pid_t pid, const char *tid)
{
	static char why[384];
	char path[320], buf[4096], *s, *t;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "gone";
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	s = strstr(buf, "\nState:\t");
	t = strstr(buf, "\nTracerPid:\t");
	if (!s || !t)
		return "unreadable status";
	s += 8;
	t += 12;
	/* CR_STATES_OK: states a test keeps on purpose ("T": cr_stopped,
	 * "Z": cr_zombie); traced always counts as a problem. */
	const char *ok = getenv("CR_STATES_OK");
	if (strchr("TtZXx", *s) && !(ok && *s != 't' && strchr(ok, *s))) {
		snprintf(why, sizeof(why), "pid %d tid %s: state %c", pid, tid, *s);
		return why;
	}
	if (atoi(t) != 0) {
		snprintf(why, sizeof(why), "pid %d tid %s: TracerPid %d", pid, tid, atoi(t));
		return why;
	}
	return "";
}

static const char *tree_problem(pid_t root)
{
	pid_t pids[MAX_TREE];
	struct dirent *de;
	const char *why;
	char path[64];
	int n, i;
	DIR *d;

	n = list_tree(root, pids, MAX_TREE);
	if (!n)
		return "root is gone";
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task", pids[i]);
		d = opendir(path);
		if (!d)
			return "process is gone";
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			why = task_problem(pids[i], de->d_name);
			if (*why) {
				closedir(d);
				return why;
			}
		}
		closedir(d);
	}
	return "";
}

int check_running(pid_t root, int timeout_ms)
{
	uint64_t end = clock_ms() + budget_ms(timeout_ms);
	const char *why;

	while (*(why = tree_problem(root))) {
		if (clock_ms() > end) {
			say("tree of %d is not running freely: %s", root, why);
			return -1;
		}
		sleep_ms(5);
	}
	return 0;
}

int peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)len) {
		say("pid %d: process_vm_readv at 0x%llx: %s", pid, (unsigned long long)addr,
		    strerror(errno));
		return -1;
	}
	return 0;
}
