/*
 * freeze: stop a process tree with ptrace (see freeze.h).
 *
 * Every thread is PTRACE_SEIZEd (options: TRACESYSGOOD, never EXITKILL:
 * if we die the tree must go on; SUSPEND_SECCOMP for a thread under
 * seccomp, see seize_options) and PTRACE_INTERRUPTed, and we
 * wait for its PTRACE_EVENT_STOP before looking further.  A pass walks
 * every known process: new threads from /proc/PID/task, new children from
 * /proc/PID/task/TID/children (or, on kernels without CONFIG_PROC_CHILDREN,
 * from the ppid field of every /proc/PID/stat).  Passes repeat until one
 * finds nothing new: at that point every known thread is stopped, so no
 * fork or clone can be in flight any more.
 *
 * Stopped tasks: a task in a group stop (SIGSTOP, SIGTSTP...) is seized
 * like the others; its seize reports the group stop as an event stop and
 * the interrupt leaves one more event stop pending, which the parasite
 * code steps over.  When it is detached the kernel puts it back into its
 * group stop, and the dump records it as stopped.
 *
 * Zombies: a zombie child is kept in the tree (nothing to seize, its
 * wait status read from /proc) and restored as a child that exits at once.
 *
 * Signals: a thread may report a signal-delivery-stop before its event
 * stop (the signal was being dequeued when we seized it).  That signal was
 * already on its way in; we let it be delivered exactly as without us
 * (PTRACE_CONT with the signal) and keep waiting: the interrupt is still
 * pending and turns into the event stop right after.  No signal is lost
 * or delivered twice.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/kcmp.h>
#include <sys/wait.h>

#include "ckpt/ckpt.h"
#include "freeze.h"

#define PF_KTHREAD 0x00200000UL
#define PF_EXITING 0x00000004UL
#define XSTATE_BUF 16384

struct task_stat {
	char state;
	pid_t ppid, pgid, sid;
	unsigned long flags;
	char comm[32];
};

static int read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, size - 1, f);
	buf[n] = 0;
	fclose(f);
	return (int)n;
}

/* /proc/PID/stat; comm may hold spaces and parentheses, so the fields
 * are parsed after the last ')'. */
static int read_stat(pid_t pid, struct task_stat *st)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int n = read_file(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	if (n == 0)
		return -ESRCH; /* reaped as it was read */
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -EINVAL;
	size_t len = (size_t)(close - open - 1);
	if (len >= sizeof(st->comm))
		len = sizeof(st->comm) - 1;
	memcpy(st->comm, open + 1, len);
	st->comm[len] = 0;
	int tty, tpgid;
	if (sscanf(close + 2, "%c %d %d %d %d %d %lu", &st->state, &st->ppid, &st->pgid,
		   &st->sid, &tty, &tpgid, &st->flags) != 7)
		return -EINVAL;
	return 0;
}

static bool is_self_or_ancestor(pid_t pid)
{
	pid_t p = getpid();
	while (p > 1) {
		if (p == pid)
			return true;
		struct task_stat st;
		if (read_stat(p, &st))
			return false;
		p = st.ppid;
	}
	return false;
}

/* Does `pid` share its memory with `other` (vfork, CLONE_VM without
 * CLONE_THREAD)?  kcmp says so without touching either. */
static bool shares_mm(pid_t pid, pid_t other)
{
	return other > 0 && syscall(SYS_kcmp, pid, other, KCMP_VM, 0, 0) == 0;
}

/* A vfork parent sleeps uninterruptibly until its child execs or exits:
 * PTRACE_INTERRUPT cannot stop it, and the two share one address space
 * that the dump would split.  Most vforks end within microseconds
 * (posix_spawn, Python's subprocess): -EINPROGRESS, the line kept in
 * vfork_said, and freeze_tree_steps or list_tree_steps try again a few
 * times before they refuse both sides by name. */
#define VFORK_TRIES 50
#define VFORK_WAIT_US 2000
static char vfork_said[256];

static int check_vfork(pid_t pid, pid_t ppid, const char *comm)
{
	char path[320], buf[4096];
	if (shares_mm(pid, ppid)) {
		snprintf(vfork_said, sizeof(vfork_said),
			 "pid %d (%s): shares its memory with its parent %d (vfork): not supported",
			 pid, comm, ppid);
		return -EINPROGRESS;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	int ret = 0;
	while (d && !ret && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", pid, de->d_name);
		if (read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		char *save = NULL;
		for (char *tok = strtok_r(buf, " \n", &save); tok && !ret;
		     tok = strtok_r(NULL, " \n", &save)) {
			if (!shares_mm(pid, atoi(tok)))
				continue;
			snprintf(vfork_said, sizeof(vfork_said),
				 "pid %d (%s): waits for its vfork child %s: not supported", pid, comm,
				 tok);
			ret = -EINPROGRESS;
		}
	}
	if (d)
		closedir(d);
	return ret;
}

/* Can `pid` be frozen at all?  One line on stderr when not.  *stopped:
 * it is in a group stop (SIGSTOP...), which the dump keeps.  With
 * `zombie` (a child), a zombie is accepted and said so, and a child gone
 * is -ESRCH left to the caller to say. */
static int check_task(pid_t pid, bool *stopped, bool *zombie)
{
	struct task_stat st;
	int ret = read_stat(pid, &st);

	if (ret == -ESRCH || (ret == 0 && st.state == 'X')) {
		if (!zombie) /* a child's absence is said by the caller */
			fprintf(stderr, "pid %d: no such process\n", pid);
		return -ESRCH;
	}
	if (ret) {
		fprintf(stderr, "pid %d: cannot read /proc/%d/stat: %s\n", pid, pid, strerror(-ret));
		return ret;
	}
	if (pid == 1) {
		fprintf(stderr, "pid 1: refusing to freeze init\n");
		return -EPERM;
	}
	if (st.flags & PF_KTHREAD) {
		fprintf(stderr, "pid %d (%s): is a kernel thread\n", pid, st.comm);
		return -EPERM;
	}
	if (st.state == 'Z') {
		if (zombie) {
			*zombie = true;
			return 0;
		}
		fprintf(stderr, "pid %d (%s): is a zombie\n", pid, st.comm);
		return -EINVAL;
	}
	if (st.state == 't') {
		fprintf(stderr, "pid %d (%s): is traced by another process\n", pid, st.comm);
		return -EBUSY;
	}
	*stopped = st.state == 'T';
	if ((ret = check_vfork(pid, st.ppid, st.comm)))
		return ret;
	if (is_self_or_ancestor(pid)) {
		fprintf(stderr, "pid %d (%s): is the caller or one of its ancestors\n", pid, st.comm);
		return -EPERM;
	}
	return 0;
}

static struct frozen_task *add_task(struct frozen_tree *tree, pid_t pid)
{
	struct frozen_task *t = realloc(tree->tasks, (size_t)(tree->nr_tasks + 1) * sizeof(*t));
	if (!t)
		return NULL;
	tree->tasks = t;
	t = &tree->tasks[tree->nr_tasks++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	return t;
}

static void drop_task(struct frozen_tree *tree, int i)
{
	free(tree->tasks[i].threads);
	memmove(&tree->tasks[i], &tree->tasks[i + 1],
		(size_t)(tree->nr_tasks - i - 1) * sizeof(tree->tasks[0]));
	tree->nr_tasks--;
}

static bool has_task(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return true;
	return false;
}

static bool has_thread(const struct frozen_task *t, pid_t tid)
{
	for (int i = 0; i < t->nr_threads; i++)
		if (t->threads[i].tid == tid)
			return true;
	return false;
}

/* Wait for the event stop that follows PTRACE_INTERRUPT.  Returns 0, or
 * -ESRCH when the thread exited meanwhile.  *sig: its WSTOPSIG, which for
 * a thread seized in a group stop is the signal that stopped it (SIGTRAP
 * for a plain interrupt). */
static int wait_event_stop(pid_t tid, int *sig)
{
	for (;;) {
		int status;
		if (waitpid(tid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ESRCH;
		if (!WIFSTOPPED(status))
			continue;
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			*sig = WSTOPSIG(status);
			return 0;
		}
		/* A signal-delivery-stop: deliver it as it would have been. */
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)WSTOPSIG(status)) < 0)
			return -errno;
	}
}

/* A thread that has exited but is still listed refuses PTRACE_SEIZE. */
static bool thread_exited(pid_t pid, pid_t tid)
{
	char path[96], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return true;
	char *close = strrchr(buf, ')');
	return close && (close[2] == 'Z' || close[2] == 'X');
}

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif

/*
 * A thread under seccomp (a filter, or strict mode) would run the
 * parasite's syscalls through it: a filter that fails getpid, socket or
 * connect, or strict mode, makes the parasite fail to connect.  With
 * PTRACE_O_SUSPEND_SECCOMP its filters sleep while we hold it, and wake
 * when we detach, or die.  The kernel grants it only to a tracer with
 * CAP_SYS_ADMIN that is under no seccomp itself: without, we seize as
 * before and the parasite says what it met (infect.c).
 */
static bool under_seccomp(pid_t tid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return false;
	const char *line = strstr(buf, "\nSeccomp:");
	return line && atoi(line + 9) != 0;
}

static int seize(pid_t tid, int *suspended)
{
	long opts = PTRACE_O_TRACESYSGOOD;

	*suspended = under_seccomp(tid) &&
		     !ptrace(PTRACE_SEIZE, tid, 0, (void *)(opts | PTRACE_O_SUSPEND_SECCOMP));
	if (*suspended)
		return 0;
	return (int)ptrace(PTRACE_SEIZE, tid, 0, (void *)opts);
}

static int seize_thread(struct frozen_task *t, pid_t tid)
{
	int suspended;
	if (seize(tid, &suspended) < 0) {
		int err = errno;
		if (err == ESRCH || (err == EPERM && thread_exited(t->pid, tid)))
			return 0; /* gone already: nothing to freeze */
		/* For a user's dump the kernel is the judge: say why it says no. */
		fprintf(stderr, "pid %d: tid %d: PTRACE_SEIZE: %s%s\n", t->pid, tid, strerror(err),
			err == EPERM ? " (another user's, set-id, or not dumpable)" : "");
		return -err;
	}
	struct thread_regs *th = realloc(t->threads, (size_t)(t->nr_threads + 1) * sizeof(*th));
	if (!th) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -ENOMEM;
	}
	t->threads = th;
	th = &t->threads[t->nr_threads++];
	memset(th, 0, sizeof(*th));
	th->tid = tid;
	th->seccomp_suspended = suspended;
	int sig = 0;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 || wait_event_stop(tid, &sig) < 0) {
		t->nr_threads--; /* it was exiting: it is not there to freeze */
		return 0;
	}
	if (tid == t->pid && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU))
		t->stop_signal = sig;
	return 1;
}

/*
 * A child listed while it ran that exited before it could be frozen: its
 * parent, frozen, cannot reap it, so it is a zombie once its exit is
 * through (it may still be on its way: wait a moment), and is dumped as
 * one.  1: a zombie now; 0: gone (reaped by the kernel, a parent ignoring
 * SIGCHLD); -1: neither.
 */
static int settle_exited(struct frozen_task *t)
{
	for (int i = 0; i < 100; i++) {
		struct task_stat st;
		int ret = read_stat(t->pid, &st);
		if (ret == -ESRCH || (!ret && st.state == 'X'))
			return 0;
		if (!ret && st.state == 'Z') {
			t->zombie = true;
			t->stopped = false;
			return 1;
		}
		usleep(2000);
	}
	return -1;
}

/* Seize the threads of `t` not seized yet; returns how many, or -errno. */
static int seize_threads(struct frozen_task *t, bool root)
{
	char path[64];
	int added = 0, ret = 0;

	if (t->zombie)
		return 0; /* nothing runs there: nothing to seize */
	/* The leader first, so that threads[0].tid == pid. */
	if (t->nr_threads == 0) {
		ret = seize_thread(t, t->pid);
		int settled = ret == 0 && !root ? settle_exited(t) : -1;
		if (settled >= 0)
			return settled ? 0 : -ECHILD; /* a zombie; or gone: dropped */
		if (ret == 0)
			fprintf(stderr, "pid %d: exited while being frozen\n", t->pid);
		if (ret <= 0)
			return ret < 0 ? ret : -ESRCH;
		added++;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "pid %d: exited while being frozen\n", t->pid);
		return -ESRCH;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		if (tid <= 0 || has_thread(t, tid))
			continue;
		ret = seize_thread(t, tid);
		if (ret < 0)
			break;
		added += ret;
	}
	closedir(d);
	return ret < 0 ? ret : added;
}

/* The step whose client `pid` is, or -1. */
static int step_client_of(const struct frozen_tree *tree, pid_t pid)
{
	for (size_t s = 0; s < tree->nr_steps; s++)
		if (tree->steps[s].client == pid)
			return (int)s;
	return -1;
}

/* A child that was reaped since it was listed in its parent's children
 * is no longer the tree's (gone_ok); a step's task is. */
static int add_child(struct frozen_tree *tree, pid_t child, bool gone_ok)
{
	if (child <= 0 || has_task(tree, child))
		return 0;
	bool stopped = false, zombie = false;
	int ret = check_task(child, &stopped, &zombie);
	if (ret == -ESRCH && gone_ok)
		return 0;
	if (ret == -ESRCH)
		fprintf(stderr, "pid %d: no such process\n", child);
	if (ret)
		return ret;
	struct frozen_task *t = add_task(tree, child);
	if (!t)
		return -ENOMEM;
	t->stopped = stopped;
	t->zombie = zombie;
	return 1;
}

/* Children of every thread of tree->tasks[i] from /proc/.../children. */
static int scan_children_file(struct frozen_tree *tree, int i, bool *supported)
{
	int added = 0;
	if (step_client_of(tree, tree->tasks[i].pid) >= 0)
		return 0; /* its step's tasks are there already; srun's shepherd is not */
	for (int j = 0; j < tree->tasks[i].nr_threads; j++) {
		char path[96], buf[8192];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", tree->tasks[i].pid,
			 tree->tasks[i].threads[j].tid);
		int n = read_file(path, buf, sizeof(buf));
		if (n == -ENOENT && j == 0) {
			/* the kernel has no such file, or the task just exited
			 * (a listed tree runs on: list_tree drops it) */
			snprintf(path, sizeof(path), "/proc/%d", tree->tasks[i].pid);
			*supported = access(path, F_OK) != 0;
			return 0;
		}
		if (n <= 0)
			continue;
		char *save = NULL;
		for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			int ret = add_child(tree, atoi(tok), true);
			if (ret < 0)
				return ret;
			added += ret;
		}
	}
	return added;
}

/* Fallback without CONFIG_PROC_CHILDREN: one walk over /proc. */
static int scan_children_proc(struct frozen_tree *tree)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	int added = 0, ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		struct task_stat st;
		if (pid <= 0 || has_task(tree, pid) || read_stat(pid, &st))
			continue;
		if (!has_task(tree, st.ppid) || step_client_of(tree, st.ppid) >= 0)
			continue;
		ret = add_child(tree, pid, true);
		if (ret < 0)
			break;
		added += ret;
	}
	closedir(d);
	return ret < 0 ? ret : added;
}

/* One pass; returns how many new tasks or threads it froze, or -errno. */
static int freeze_pass(struct frozen_tree *tree)
{
	bool children_file = true;
	int added = 0, ret;

	for (int i = 0; i < tree->nr_tasks; i++) {
		ret = seize_threads(&tree->tasks[i], i == 0);
		if (ret == -ECHILD) {
			/* Never frozen, so none of its children were listed. */
			drop_task(tree, i--);
			continue;
		}
		if (ret < 0)
			return ret;
		added += ret;
		if (children_file) {
			ret = scan_children_file(tree, i, &children_file);
			if (ret < 0)
				return ret;
			added += ret;
		}
	}
	if (!children_file) {
		ret = scan_children_proc(tree);
		if (ret < 0)
			return ret;
		added += ret;
	}
	return added;
}

static int read_thread_regs(pid_t pid, struct thread_regs *th)
{
	if (ptrace(PTRACE_GETREGS, th->tid, 0, &th->regs) < 0)
		goto fail;
	th->xstate = malloc(XSTATE_BUF);
	if (!th->xstate)
		return -ENOMEM;
	struct iovec iov = { th->xstate, XSTATE_BUF };
	if (ptrace(PTRACE_GETREGSET, th->tid, (void *)NT_X86_XSTATE, &iov) < 0)
		goto fail;
	th->xstate_len = iov.iov_len;
	if (ptrace(PTRACE_GETSIGMASK, th->tid, (void *)sizeof(th->sigmask), &th->sigmask) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "pid %d: tid %d: reading registers: %m\n", pid, th->tid);
	return -errno;
}

/* The wait status a zombie holds for its parent: the last field of
 * /proc/PID/stat (exit_code, since Linux 3.5). */
static int read_exit_status(struct frozen_task *t, bool gone_ok)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", t->pid);
	int n = read_file(path, buf, sizeof(buf));
	char *last = n > 0 ? strrchr(buf, ' ') : NULL;
	if (gone_ok && (n == -ENOENT || n == 0))
		return -ESRCH; /* reaped since: the caller drops it */
	if (!last) {
		fprintf(stderr, "pid %d: zombie: cannot read its exit status\n", t->pid);
		return n < 0 ? n : -EINVAL;
	}
	t->exit_status = atoi(last + 1);
	/* A dead leader whose threads still run is no zombie to restore. */
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	DIR *d = opendir(path);
	int threads = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		threads += de->d_name[0] != '.';
	if (d)
		closedir(d);
	if (threads > 1) {
		fprintf(stderr, "pid %d (%s): its leader exited, %d threads run on: not supported\n",
			t->pid, t->comm, threads - 1);
		return -ENOTSUP;
	}
	return 0;
}

#define NS_MAX 32 /* PID namespaces nest 32 deep at most */

/* The numbers of an NS* line of a status file ("NSpid:\t50123\t4123"),
 * outermost first: how many (0: no such line). */
static int ns_ids(const char *status, const char *key, pid_t ids[NS_MAX])
{
	char line[512];
	size_t klen = strlen(key);
	FILE *f = fopen(status, "re");
	int n = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		char *save, *tok = strtok_r(line + klen + 1, " \t\n", &save);
		for (; tok && n < NS_MAX; tok = strtok_r(NULL, " \t\n", &save))
			ids[n++] = (pid_t)atoi(tok);
		break;
	}
	if (f)
		fclose(f);
	return n;
}

/* The id in the task's own PID namespace (the innermost), else fallback. */
static pid_t ns_last(const char *status, const char *key, pid_t fallback)
{
	pid_t ids[NS_MAX];
	int n = ns_ids(status, key, ids);
	return n ? ids[n - 1] : fallback;
}

/* pid, group and session as the task's own namespace sees them. */
static void read_vids(struct frozen_task *t)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", t->pid);
	t->vpid = ns_last(path, "NSpid", t->pid);
	t->vpgid = ns_last(path, "NSpgid", t->pgid);
	t->vsid = ns_last(path, "NSsid", t->sid);
	for (int i = 0; i < t->nr_threads; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", t->pid, t->threads[i].tid);
		t->threads[i].vtid = ns_last(path, "NSpid", t->threads[i].tid);
	}
}

pid_t tree_vpid(const struct frozen_tree *tree, pid_t host)
{
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		if (t->pid == host)
			return t->vpid;
		for (int j = 0; j < t->nr_threads; j++)
			if (t->threads[j].tid == host)
				return t->threads[j].vtid;
	}
	if (!tree->nr_tasks || tree->tasks[0].vpid == tree->tasks[0].pid)
		return host; /* the tree lives in our namespace */
	/* Outside the tree: its number at the tree's depth, if it has one. */
	char path[64];
	pid_t ids[NS_MAX];
	snprintf(path, sizeof(path), "/proc/%d/status", tree->tasks[0].pid);
	int depth = ns_ids(path, "NSpid", ids);
	snprintf(path, sizeof(path), "/proc/%d/status", host);
	int n = ns_ids(path, "NSpid", ids);
	return depth && n >= depth ? ids[depth - 1] : 0;
}

pid_t tree_vpgid(const struct frozen_tree *tree, pid_t host)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pgid == host)
			return tree->tasks[i].vpgid;
	return tree_vpid(tree, host);
}

/* Every task's ids as the tree sees them; parents are in the tree. */
static void read_tree_vids(struct frozen_tree *tree)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		read_vids(&tree->tasks[i]);
	for (int i = 1; i < tree->nr_tasks; i++)
		tree->tasks[i].vppid = tree_vpid(tree, tree->tasks[i].ppid);
}

/* Parent, group, session, name; a zombie's exit status.  With gone_ok
 * (a listed tree, which runs on), a task gone is -ESRCH, left unsaid. */
static int read_task_ids(struct frozen_task *t, bool root, bool gone_ok)
{
	struct task_stat st;
	int ret = read_stat(t->pid, &st);
	if (ret == -ESRCH && gone_ok)
		return ret;
	if (ret) {
		fprintf(stderr, "pid %d: reading /proc/%d/stat: %s\n", t->pid, t->pid, strerror(-ret));
		return ret;
	}
	t->ppid = root ? 0 : st.ppid;
	t->pgid = st.pgid;
	t->sid = st.sid;
	snprintf(t->comm, sizeof(t->comm), "%s", st.comm);
	return t->zombie ? read_exit_status(t, gone_ok) : 0;
}

static int read_task_state(struct frozen_task *t, bool root)
{
	int ret = read_task_ids(t, root, false);
	for (int i = 0; !ret && !t->zombie && i < t->nr_threads; i++)
		ret = read_thread_regs(t->pid, &t->threads[i]);
	return ret;
}

/* Restore puts a task in its session by setsid (its own), inheritance
 * (its parent's) or a helper standing in for a leader that is gone (a
 * session not in the tree, nor the root's).  A task reparented out of a
 * session whose leader is still in the tree is refused here. */
static int check_session(const struct frozen_tree *tree, const struct frozen_task *t)
{
	bool leader_here = false;
	for (int i = 0; i < tree->nr_tasks; i++)
		leader_here |= tree->tasks[i].pid == t->sid;
	if (!leader_here && t->sid != tree->tasks[0].sid)
		return 0;
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == t->ppid &&
		    (t->sid == t->pid || t->sid == tree->tasks[i].sid))
			return 0;
	fprintf(stderr, "pid %d (%s): session %d is neither its own nor its parent's: not supported\n",
		t->pid, t->comm, t->sid);
	return -ENOTSUP;
}

/* A step's tasks, added (not seized yet) and marked. */
static int add_step_tasks(struct frozen_tree *tree)
{
	for (size_t s = 0; s < tree->nr_steps; s++)
		for (size_t k = 0; k < tree->steps[s].nr_tasks; k++) {
			pid_t pid = tree->steps[s].tasks[k];
			if (has_task(tree, pid)) {
				fprintf(stderr, "step %zu: task %d is in the tree already\n", s, pid);
				return -EINVAL;
			}
			int ret = add_child(tree, pid, false);
			if (ret < 0)
				return ret;
			tree->tasks[tree->nr_tasks - 1].step = (int)s + 1;
		}
	return 0;
}

/* Each step's client is a process of the tree; a step's tasks read as its
 * children, in its session (the tasks' own is slurmstepd's: docs/mpi.md). */
static int graft_steps(struct frozen_tree *tree)
{
	for (size_t s = 0; s < tree->nr_steps; s++) {
		struct frozen_task *client = NULL;
		for (int i = 0; i < tree->nr_tasks; i++)
			if (tree->tasks[i].pid == tree->steps[s].client)
				client = &tree->tasks[i];
		/* the root may be one: a node's part of a step on several nodes,
		 * its coordinator's stand-in (docs/coordinator.md) */
		if (!client || client->step || client->zombie) {
			fprintf(stderr, "step %zu: its client, pid %d, is not a process of the tree\n", s,
				tree->steps[s].client);
			return -EINVAL;
		}
		client->step = (int)s + 1;
		client->step_client = true;
		for (int i = 0; i < tree->nr_tasks; i++)
			if (tree->tasks[i].step == (int)s + 1 && !tree->tasks[i].step_client) {
				pid_t stepd_sid = tree->tasks[i].sid;
				tree->tasks[i].ppid = client->pid;
				/* and its descendants in slurmstepd's session */
				for (int j = 0; j < tree->nr_tasks; j++)
					if (tree->tasks[j].sid == stepd_sid && !tree->tasks[j].step_client)
						tree->tasks[j].sid = client->sid;
			}
	}
	return 0;
}

/* Parents before children again (a step's tasks were added first). */
static int order_tree(struct frozen_tree *tree)
{
	struct frozen_task *out = calloc((size_t)tree->nr_tasks, sizeof(*out));
	bool *placed = calloc((size_t)tree->nr_tasks, sizeof(*placed));
	int n = 0, ret = out && placed ? 0 : -ENOMEM;
	for (int round = 0; !ret && n < tree->nr_tasks; round++) {
		int before = n;
		for (int i = 0; i < tree->nr_tasks; i++) {
			bool parent_placed = i == 0;
			for (int j = 0; !parent_placed && j < n; j++)
				parent_placed = out[j].pid == tree->tasks[i].ppid;
			if (!placed[i] && parent_placed) {
				out[n++] = tree->tasks[i];
				placed[i] = true;
			}
		}
		if (n == before)
			ret = -EINVAL; /* cannot happen: every parent is in the tree */
	}
	if (!ret) {
		free(tree->tasks);
		tree->tasks = out;
		out = NULL;
	}
	free(out);
	free(placed);
	return ret;
}

/* A task grafted into a client's session sees it as the client does. */
static void set_step_vsids(struct frozen_tree *tree)
{
	for (int c = 0; c < tree->nr_tasks; c++)
		for (int i = 0; tree->tasks[c].step_client && i < tree->nr_tasks; i++)
			if (tree->tasks[i].sid == tree->tasks[c].sid)
				tree->tasks[i].vsid = tree->tasks[c].vsid;
}

/* Ids, grafted steps, parents first, numbers as the tree sees them,
 * sessions: what freeze_tree and list_tree do once every task is in. */
static int settle_tree(struct frozen_tree *tree)
{
	int ret = graft_steps(tree);
	if (!ret && tree->nr_steps)
		ret = order_tree(tree);
	if (!ret)
		read_tree_vids(tree);
	set_step_vsids(tree);
	for (int i = 1; ret == 0 && i < tree->nr_tasks; i++)
		ret = check_session(tree, &tree->tasks[i]);
	return ret;
}

int freeze_tree(pid_t root, struct frozen_tree *tree)
{
	return freeze_tree_steps(root, NULL, 0, NULL, tree);
}

static int freeze_once(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		       int (*drained)(const struct frozen_tree *), struct frozen_tree *tree)
{
	int ret;

	memset(tree, 0, sizeof(*tree));
	tree->steps = steps;
	tree->nr_steps = nr_steps;
	bool stopped = false;
	ret = check_task(root, &stopped, NULL);
	if (ret)
		return ret;
	struct frozen_task *t = add_task(tree, root);
	if (!t)
		return -ENOMEM;
	t->stopped = stopped;
	/* the steps' tasks first, and what they wrote on its way to srun */
	ret = add_step_tasks(tree);
	for (int i = 1; !ret && i < tree->nr_tasks; i++)
		ret = seize_threads(&tree->tasks[i], false) < 0 ? -ESRCH : 0;
	if (!ret && nr_steps && drained)
		ret = drained(tree);
	if (!ret) {
		do
			ret = freeze_pass(tree);
		while (ret > 0);
	}
	for (int i = 0; ret == 0 && i < tree->nr_tasks; i++)
		ret = read_task_state(&tree->tasks[i], i == 0);
	if (!ret)
		ret = settle_tree(tree);
	if (ret) {
		unfreeze_tree(tree, UNFREEZE_RESUME);
		frozen_tree_free(tree);
	}
	return ret;
}

/* The threads of a running task, as listed now (no registers). */
static int list_threads(struct frozen_task *t)
{
	char path[64];
	if (t->zombie)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	DIR *d = opendir(path);
	if (!d)
		return -ESRCH;
	struct dirent *de;
	int ret = 0;
	/* The leader first, so that threads[0].tid == pid. */
	for (int pass = 0; pass < 2 && !ret; pass++) {
		rewinddir(d);
		while (!ret && (de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			if (tid <= 0 || (tid == t->pid) != (pass == 0) || has_thread(t, tid))
				continue;
			struct thread_regs *th =
				realloc(t->threads, (size_t)(t->nr_threads + 1) * sizeof(*th));
			if (!th) {
				ret = -ENOMEM;
				break;
			}
			t->threads = th;
			memset(&th[t->nr_threads], 0, sizeof(*th));
			th[t->nr_threads++].tid = tid;
		}
	}
	closedir(d);
	return ret;
}

/* Gone, or on its way (exiting: its memory may already be released),
 * since list_tree saw it; a zombie seen as one stays until reaped. */
static bool died_since_listed(const struct frozen_task *t)
{
	struct task_stat st;
	if (read_stat(t->pid, &st))
		return true;
	if (t->zombie)
		return st.state == 'X';
	return st.state == 'Z' || st.state == 'X' || (st.flags & PF_EXITING);
}

int list_tree_drop_dead(struct frozen_tree *tree)
{
	int dropped = 0;
	/* Parents come before their children: a dropped task's listed
	 * children were reparented out of the tree, and go with it. */
	for (int i = 1; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		if (died_since_listed(t) || !has_task(tree, t->ppid)) {
			drop_task(tree, i--);
			dropped++;
		}
	}
	return dropped;
}

int list_tree(pid_t root, struct frozen_tree *tree)
{
	return list_tree_steps(root, NULL, 0, tree);
}

/* A listed tree runs on: task *i, gone as it was read (ret -ESRCH), is
 * dropped and *i steps back; the root's absence stays an error. */
static int drop_if_gone(struct frozen_tree *tree, int *i, int ret)
{
	if (ret != -ESRCH || *i == 0)
		return ret;
	drop_task(tree, (*i)--);
	return 0;
}

static int list_once(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		     struct frozen_tree *tree)
{
	bool stopped = false, children_file = true;
	int ret, added;

	memset(tree, 0, sizeof(*tree));
	tree->steps = steps;
	tree->nr_steps = nr_steps;
	if ((ret = check_task(root, &stopped, NULL)))
		return ret;
	if (!add_task(tree, root))
		return -ENOMEM;
	tree->tasks[0].stopped = stopped;
	if ((ret = add_step_tasks(tree))) {
		frozen_tree_free(tree);
		return ret;
	}
	/* Breadth first: the children a task adds are listed in turn. */
	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		int was = i;
		ret = drop_if_gone(tree, &i, list_threads(&tree->tasks[i]));
		if (!ret && i == was && children_file &&
		    (added = scan_children_file(tree, i, &children_file)) < 0)
			ret = added;
	}
	while (!ret && !children_file && (added = scan_children_proc(tree)) != 0)
		ret = added < 0 ? added : 0;
	for (int i = 0; !ret && !children_file && i < tree->nr_tasks; i++)
		ret = drop_if_gone(tree, &i, list_threads(&tree->tasks[i]));
	for (int i = 0; ret == 0 && i < tree->nr_tasks; i++)
		ret = drop_if_gone(tree, &i, read_task_ids(&tree->tasks[i], i == 0, i > 0));
	if (!ret)
		ret = settle_tree(tree);
	if (ret)
		frozen_tree_free(tree);
	return ret;
}

/* Wait (a little) until the stopped tasks show up as group-stopped. */
static void wait_group_stopped(const struct frozen_tree *tree)
{
	for (int tries = 0; tries < 1000; tries++) {
		bool all = true;
		for (int i = 0; i < tree->nr_tasks && all; i++) {
			struct task_stat st;
			if (read_stat(tree->tasks[i].pid, &st) == 0 && st.state != 'T' &&
			    st.state != 'Z' && st.state != 'X')
				all = false;
		}
		if (all)
			return;
		usleep(1000);
	}
}

/*
 * A killed tracee cannot be detached (SIGKILL ends its ptrace stop): it
 * stays a traced zombie until its tracer waits for it.  Collect those
 * notifications; the tracer's wait passes the exit on to the real parent.
 * The leader of one of our own children is left to the caller to reap.
 */
static void collect_killed(const struct frozen_task *t)
{
	bool own_child = false;
	struct task_stat st;
	if (read_stat(t->pid, &st) == 0 && st.ppid == getpid())
		own_child = true;
	for (int j = t->nr_threads - 1; j >= 0; j--) {
		pid_t tid = t->threads[j].tid;
		if (own_child && tid == t->pid)
			continue;
		for (;;) {
			int status;
			if (waitpid(tid, &status, __WALL) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (WIFEXITED(status) || WIFSIGNALED(status))
				break;
		}
	}
}

void unfreeze_tree(struct frozen_tree *tree, enum unfreeze_how how)
{
	/* SIGKILL and SIGSTOP are queued while every thread is still in its
	 * ptrace stop; they take effect as soon as the threads run again. */
	for (int i = 0; i < tree->nr_tasks; i++) {
		if (how == UNFREEZE_KILL)
			kill(tree->tasks[i].pid, SIGKILL);
		else if (how == UNFREEZE_LEAVE_STOPPED)
			kill(tree->tasks[i].pid, SIGSTOP);
	}
	for (int i = 0; i < tree->nr_tasks; i++)
		for (int j = 0; j < tree->tasks[i].nr_threads; j++)
			ptrace(PTRACE_DETACH, tree->tasks[i].threads[j].tid, 0, 0);
	if (how == UNFREEZE_LEAVE_STOPPED)
		wait_group_stopped(tree);
	if (how == UNFREEZE_KILL)
		for (int i = 0; i < tree->nr_tasks; i++)
			collect_killed(&tree->tasks[i]);
}

void frozen_tree_free(struct frozen_tree *tree)
{
	for (int i = 0; i < tree->nr_tasks; i++) {
		for (int j = 0; j < tree->tasks[i].nr_threads; j++)
			free(tree->tasks[i].threads[j].xstate);
		free(tree->tasks[i].threads);
	}
	free(tree->tasks);
	memset(tree, 0, sizeof(*tree));
}

int frozen_tree_where(const struct frozen_tree *tree, long pid, const struct frozen_task **task)
{
	const struct frozen_task *unused;
	if (!task)
		task = &unused;
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		*task = t;
		if (t->pid == pid)
			return 1;
		for (int j = 1; j < t->nr_threads; j++)
			if (t->threads[j].tid == pid)
				return 2;
	}
	*task = NULL;
	return 0;
}

/* A vfork in the tree (check_vfork): wait for it to end, a few times. */
static int vfork_again(int ret, int *tries)
{
	if (ret != -EINPROGRESS)
		return 0;
	if (++*tries < VFORK_TRIES) {
		usleep(VFORK_WAIT_US);
		return 1;
	}
	fprintf(stderr, "%s\n", vfork_said);
	return 0;
}

int freeze_tree_steps(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		      int (*drained)(const struct frozen_tree *), struct frozen_tree *tree)
{
	int ret, tries = 0;
	while (vfork_again(ret = freeze_once(root, steps, nr_steps, drained, tree), &tries))
		;
	return ret == -EINPROGRESS ? -ENOTSUP : ret;
}

int list_tree_steps(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		    struct frozen_tree *tree)
{
	int ret, tries = 0;
	while (vfork_again(ret = list_once(root, steps, nr_steps, tree), &tries))
		;
	return ret == -EINPROGRESS ? -ENOTSUP : ret;
}
