/*
 * snapshot: copy-on-write snapshots of private memory.  While the tree is
 * frozen, everything but private memory is dumped, and the parasite of
 * each task makes a copy of the task's mm by a double fork
 * (PARASITE_CMD_SNAPSHOT, parasite-abi.h): the kernel's copy-on-write
 * keeps, in that copy (C2), the pages as they were at the frozen moment.
 * The job is thawed at once (C2 connects to us when it gets to run, which
 * we wait for only then); the pages are then read from C2 through
 * /proc/C2/mem (storage/pages.c: no pinning, no unsharing), compressed
 * and written while the job runs, and C2 is killed.  The VMA list, the
 * pagemap and what to store are taken from the task itself while frozen
 * (mem.c); only page contents come from C2, and never the parasite's own
 * area (it is gone from the task's VMA list by then).
 *
 * C2 is nobody's child in the job: C1, its parent, has exit signal 0 and
 * is reaped by the parasite before the cure, so C2 is orphaned to the
 * nearest child subreaper above the task, or the PID namespace's init,
 * which gets SIGCHLD when C2 dies.  If that reaper is a task of the tree
 * (the task itself or an ancestor of it in the tree is a subreaper or a
 * namespace init: a job run in a PID namespace of its own, as restored
 * trees are), the job would see an unknown child die: no snapshot then.
 * Neither is there one for a task under seccomp (C1 and C2 run the job's
 * filter, which may kill them, trap into the job's own handler or notify
 * the job's supervisor), nor where fork fails (the job's pids cgroup or
 * RLIMIT_NPROC): such tasks are copied while frozen, as before, and the
 * dump says so (--stats, and a line with -v).  C2 counts against the
 * job's pids cgroup for the dump's duration, and every page the job
 * writes meanwhile is copied and charged to the job's memory cgroup
 * (at most the size of what is being dumped).
 *
 * C2 exits when its connection to us closes, so a dumper killed at any
 * moment leaves no C2 behind (the parasite cures itself the same way).
 * Anyone may connect to its name: only the process whose hello has the
 * cookie and whose pid is C2's is taken, the others are refused by name
 * and the wait goes on.  Once taken, C2 is PTRACE_SEIZEd: its user may
 * kill it, but its pid stays a zombie of ours until we reap it, so the
 * /proc/PID files read by number afterwards are never another process's.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "infect.h"
#include "log.h"
#include "parasite-abi.h"
#include "proc.h"
#include "snapshot.h"

int snapshot_set_init(struct snapshot_set *s, const struct frozen_tree *tree, int want)
{
	memset(s, 0, sizeof(*s));
	s->tree = tree;
	if (!want)
		return 0;
	s->nr = tree->nr_tasks;
	s->snap = calloc((size_t)s->nr, sizeof(*s->snap));
	s->subreaper = calloc((size_t)s->nr, sizeof(*s->subreaper));
	if (!s->snap || !s->subreaper) {
		snapshot_set_free(s);
		return -ENOMEM;
	}
	for (int i = 0; i < s->nr; i++)
		s->snap[i].sock = s->snap[i].listen_fd = -1;
	return 0;
}

void snapshot_release(struct snapshot *sn)
{
	if (sn->listen_fd >= 0)
		close(sn->listen_fd);
	if (sn->sock >= 0)
		close(sn->sock);
	/* never a pid <= 0: kill(0) and kill(-1) reach far more than C2 */
	if (sn->pid > 0) {
		kill(sn->pid, SIGKILL);
		/* we trace it (snapshot_connect): its death is ours to reap
		 * first, then its reaper's */
		if (sn->traced)
			while (waitpid(sn->pid, NULL, __WALL) < 0 && errno == EINTR)
				;
	}
	sn->traced = 0;
	sn->sock = sn->listen_fd = -1;
	sn->pid = sn->vpid = 0;
}

void snapshot_set_free(struct snapshot_set *s)
{
	for (int i = 0; s->snap && i < s->nr; i++)
		snapshot_release(&s->snap[i]);
	free(s->snap);
	free(s->subreaper);
	s->snap = NULL;
	s->subreaper = NULL;
	s->nr = 0;
}

static int parent_index(const struct frozen_tree *tree, int idx)
{
	pid_t ppid = tree->tasks[idx].ppid;
	for (int i = 0; ppid > 0 && i < idx; i++) /* parents come first */
		if (tree->tasks[i].pid == ppid)
			return i;
	return -1;
}

/* Would C2's reaper be a task of the tree?  Walks up from the task: the
 * first subreaper or namespace init met is the reaper. */
static int reaper_in_tree(const struct snapshot_set *s, int idx, pid_t *who)
{
	for (int i = idx; i >= 0; i = parent_index(s->tree, i)) {
		pid_t pid = s->tree->tasks[i].pid;
		if (s->subreaper[i] || proc_ns_tid(pid, pid) == 1) {
			*who = pid;
			return 1;
		}
	}
	return 0;
}

static int under_seccomp(pid_t pid)
{
	char val[16];
	return proc_status_field(pid, "Seccomp", val, sizeof(val)) || strcmp(val, "0") != 0;
}

void snapshot_take(struct snapshot_set *s, int idx, struct infect_ctl *ctl, int subreaper)
{
	pid_t pid = s->tree->tasks[idx].pid, reaper = 0;
	if (!s->snap || idx < 0 || idx >= s->nr)
		return;
	s->subreaper[idx] = subreaper != 0;
	if (reaper_in_tree(s, idx, &reaper)) {
		pr_info("pid %d: no snapshot: its reaper would be pid %d of the tree (a subreaper "
			"or a namespace init); memory copied while frozen",
			pid, reaper);
		return;
	}
	if (under_seccomp(pid)) {
		pr_info("pid %d: no snapshot: under seccomp; memory copied while frozen", pid);
		return;
	}
	struct snapshot *sn = &s->snap[idx];
	int ret = infect_snapshot(ctl, ckpt_test_fault("snapshot-late"), &sn->vpid, &sn->cookie,
				  &sn->listen_fd);
	if (ret)
		pr_info("pid %d: no snapshot (%s); memory copied while frozen", pid,
			strerror(-ret));
}

#define CONNECT_MS 30000 /* C2 runs when the machine lets it: be patient */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, 0 when past. */
static int left_ms(uint64_t deadline)
{
	uint64_t now = now_ms();
	return now < deadline ? (int)(deadline - now) : 0;
}

static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return n > 0 ? 0 : n < 0 ? -errno : -ETIMEDOUT;
}

/* One connection on the snapshot's name: 0 when it is C2's (its hello
 * has the pid and cookie the parasite reported, and our namespace's view
 * of the peer agrees: its NSpid ends in that pid), with *pid its pid. */
static int check_peer(const struct snapshot *sn, int fd, pid_t *pid, uint64_t deadline)
{
	struct parasite_hello hello;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.pid <= 0)
		return -EPERM;
	int ret = wait_readable(fd, left_ms(deadline));
	if (!ret && (recv(fd, &hello, sizeof(hello), MSG_DONTWAIT) != sizeof(hello) ||
		     hello.magic != PARASITE_HELLO_MAGIC || hello.pid != sn->vpid ||
		     hello.cookie != sn->cookie))
		ret = -EPROTO;
	if (!ret && proc_ns_tid(cred.pid, cred.pid) != sn->vpid)
		ret = -EPERM;
	*pid = cred.pid;
	return ret;
}

/* Anyone may connect to the abstract name (listed in /proc/net/unix):
 * a stranger's connection is closed and the wait goes on for C2's, so
 * that another user cannot make the dump fail by connecting first. */
int snapshot_connect(struct snapshot *sn)
{
	uint64_t deadline = now_ms() + CONNECT_MS;
	int ret = -ETIMEDOUT, fd = -1;
	pid_t pid = 0;
	/* CKPT_TEST_FAULT=snapshot-late (tests, no PID namespace): C2 stopped
	 * itself before its first step (parasite-abi.h) */
	if (ckpt_test_fault("snapshot-late") && sn->vpid > 0)
		kill(sn->vpid, SIGCONT);
	while (now_ms() < deadline) {
		ret = wait_readable(sn->listen_fd, left_ms(deadline));
		if (ret)
			break;
		fd = accept4(sn->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			if (ret == -EINTR || ret == -ECONNABORTED)
				continue;
			break;
		}
		ret = check_peer(sn, fd, &pid, deadline);
		/* Traced by us, C2's pid stays its own until we reap it,
		 * even if its user kills it: /proc/PID/mem and pagemap, opened
		 * by number later, can never be another process's (a setuid
		 * one's, for a root dump writing a user's image). */
		if (!ret && ptrace(PTRACE_SEIZE, pid, 0, 0))
			ret = -errno;
		else if (!ret)
			sn->traced = 1;
		if (!ret)
			break;
		pr_err("snapshot %d: a connection from pid %d refused: %s", sn->vpid, pid,
			strerror(-ret));
		close(fd);
		fd = -1;
		ret = -ETIMEDOUT;
	}
	close(sn->listen_fd);
	sn->listen_fd = -1;
	if (ret) {
		if (fd >= 0)
			close(fd); /* it sees EOF and exits */
		pr_err("snapshot %d: did not connect: %s", sn->vpid, strerror(-ret));
		return ret;
	}
	sn->pid = pid;
	sn->sock = fd;
	return 0;
}
