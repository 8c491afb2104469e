/*
 * restore-tree: create the processes of the tree with their dumped PIDs
 * (clone3 set_tid), optionally under an init of ours in a fresh PID
 * namespace, and walk each one through its restore steps:
 *
 *   session → children → process group (two barriers, so that group
 *   leaders exist before members join) → a zombie exits here, its parent
 *   waits for that (without reaping it) → fds → cwd, umask, rlimits,
 *   sigactions → memory, threads and the rest (restore_mem_jump).  Memory is
 *   premapped and filled before the children are forked, so that what a
 *   child shares copy-on-write with its parent is shared again.
 *
 * A process that shares its parent's fd table or fs (clone with
 * CLONE_FILES, CLONE_FS) is created sharing it (fdtable.c): the table is
 * installed by its owner alone, the cwd and umask restored by theirs.
 *
 * What is gone is recreated by short-lived helpers with its number: a
 * lost session (its leader not in the tree) by a helper that calls
 * setsid() and creates the session's members, which then are reparented
 * to their dumped parent; an orphaned process group by a helper that
 * makes the group and exits.
 *
 * A process that fails writes a struct rst_error on the notify pipe and
 * exits; the driver then kills the whole tree.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "cgroup.h"
#include "log.h"
#include "proc.h"
#include "restore-mem.h"
#include "priv.h"
#include "restore.h"
#include "restorer-abi.h"
#include "shmem.h"
#include "tty.h"

static pid_t clone_with_pid(pid_t pid, uint64_t flags)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = SIGCHLD;
	if (pid) {
		args.set_tid = (uint64_t)(uintptr_t)&pid;
		args.set_tid_size = 1;
	}
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static __attribute__((noreturn)) void task_fail(struct restore_ctx *c, pid_t pid, int err)
{
	struct rst_error e;
	memset(&e, 0, sizeof(e));
	e.tag = 'E';
	e.pid = pid;
	e.step = 0;
	e.err = err;
	if (write(c->notify_w, &e, sizeof(e)) < 0)
		_exit(2);
	_exit(1);
}

static void futex_wake_all(volatile int *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

static int tree_has_pid(struct restore_ctx *c, uint32_t pid)
{
	for (size_t i = 0; i < c->nr_tasks; i++)
		if (c->tasks[i].te->pid == pid)
			return 1;
	return 0;
}

/* No process of the tree exits before the barriers are passed (a zombie
 * exits after them, and is not counted here): one that did crashed, and
 * the others would wait for it until the driver's timeout.  Fail now,
 * naming it. */
static int is_zombie_pid(struct restore_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->nr_tasks; i++)
		if (c->tasks[i].te->pid == (uint32_t)pid)
			return restore_task_zombie(&c->tasks[i]);
	return 1; /* not of the tree: a helper of ours */
}

static void check_children(struct restore_ctx *c, pid_t me)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || !si.si_pid ||
	    is_zombie_pid(c, si.si_pid))
		return;
	pr_err("pid %d: its child %d died while it was being restored (%s %d)", me, si.si_pid,
	       si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
	task_fail(c, me, -ECHILD);
}

/* Wait until *addr reaches `want`. */
static void wait_count(struct restore_ctx *c, pid_t me, volatile int *addr, int want)
{
	for (;;) {
		struct timespec tick = { 0, 200 * 1000 * 1000 };
		int v = __atomic_load_n(addr, __ATOMIC_SEQ_CST);
		if (v >= want)
			return;
		syscall(SYS_futex, addr, FUTEX_WAIT, v, &tick, NULL, 0);
		if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) < want)
			check_children(c, me);
	}
}

static void count_up(volatile int *addr)
{
	__atomic_add_fetch(addr, 1, __ATOMIC_SEQ_CST);
	futex_wake_all(addr);
}

/* Wait until *addr reaches `want` (every process increments it once). */
static void barrier(struct restore_ctx *c, pid_t me, volatile int *addr, int want)
{
	count_up(addr);
	wait_count(c, me, addr, want);
}

static void __attribute__((noreturn)) task_main(struct restore_ctx *c, size_t idx);

/* fd 2 now is the restored process's own stderr: our messages go to the
 * driver's stderr instead. */
static void use_log_fd(struct restore_ctx *c)
{
	if (c->log_fd < 0)
		return;
	FILE *f = fdopen(c->log_fd, "w");
	if (!f)
		return;
	setvbuf(f, NULL, _IONBF, 0);
	stderr = f;
}

/* A session whose leader is gone (not in the tree): recreated by a
 * helper.  The root's own session is the restoring driver's, never
 * recreated. */
static int lost_session(struct restore_ctx *c, uint32_t sid)
{
	return !tree_has_pid(c, sid) && sid != c->tasks[0].te->sid;
}

/* Set in a session helper: its children wait to be reparented before
 * they arm their parent-death signal (the helper's exit would fire it). */
static pid_t session_helper_pid;

static pid_t spawn_one(struct restore_ctx *c, size_t j)
{
	/* one that shares its parent's fd table (fs) shares ours (fdtable.c) */
	uint64_t flags = (c->tasks[j].fdt == SHARE_MEMBER ? CLONE_FILES : 0) |
			 (c->tasks[j].fs == SHARE_MEMBER ? CLONE_FS : 0);
	pid_t pid = clone_with_pid((pid_t)c->tasks[j].te->pid, flags);
	if (pid < 0)
		pr_err("pid %u: cannot create it: %s", c->tasks[j].te->pid, strerror(errno));
	if (pid == 0)
		task_main(c, j);
	return pid;
}

/*
 * Children of `idx` that live in lost session `sid`: a helper with the
 * session's number calls setsid(), creates them and exits; they are
 * reparented to us (a child subreaper from now on; the dumped setting
 * comes back with restore_core_misc) and we reap the helper.
 */
static int spawn_in_session(struct restore_ctx *c, size_t idx, uint32_t sid)
{
	const TaskEntry *me = c->tasks[idx].te;
	int status;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t helper = clone_with_pid((pid_t)sid, 0);
	if (helper == 0) {
		session_helper_pid = getpid();
		if (setsid() < 0)
			_exit(1);
		for (size_t j = idx + 1; j < c->nr_tasks; j++) {
			const TaskEntry *t = c->tasks[j].te;
			if (t->ppid == me->pid && t->sid == sid && spawn_one(c, j) < 0)
				_exit(2);
		}
		_exit(0);
	}
	int err = helper < 0 ? errno : 0;
	while (!err && waitpid(helper, &status, 0) < 0)
		if (errno != EINTR)
			err = errno;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status)))
		err = WIFEXITED(status) && WEXITSTATUS(status) == 2 ? EAGAIN : EPERM;
	if (err)
		pr_err("pid %u: cannot recreate session %u for its children: %s", me->pid, sid,
		       strerror(err));
	return -err;
}

static int spawn_children(struct restore_ctx *c, size_t idx)
{
	const TaskEntry *me = c->tasks[idx].te;
	for (size_t j = idx + 1; j < c->nr_tasks; j++) {
		const TaskEntry *t = c->tasks[j].te;
		if (t->ppid != me->pid)
			continue;
		if (t->sid != t->pid && t->sid != me->sid) {
			if (!lost_session(c, t->sid)) {
				pr_err("pid %u: its session %u is neither its own nor its parent's: "
				       "not supported", t->pid, t->sid);
				return -ENOTSUP;
			}
			int first = 1; /* one helper per session */
			for (size_t k = idx + 1; k < j; k++)
				first &= !(c->tasks[k].te->ppid == me->pid &&
					   c->tasks[k].te->sid == t->sid);
			int ret = first ? spawn_in_session(c, idx, t->sid) : 0;
			if (ret)
				return ret;
			continue;
		}
		if (spawn_one(c, j) < 0)
			return -errno;
	}
	return 0;
}

/*
 * An orphaned process group: its leader is gone, but the group lives on
 * in our session.  The first member in tree order recreates it: a helper
 * child with the group's number makes itself a group and exits; the
 * member joins (the helper's zombie still holds the group) and reaps it.
 * The other members join after the leaders barrier, as usual.
 */
static int orphan_group(struct restore_ctx *c, const TaskEntry *me)
{
	for (size_t j = 0; j < c->nr_tasks && c->tasks[j].te != me; j++)
		if (c->tasks[j].te->pgid == me->pgid)
			return 0; /* an earlier member makes it */
	pid_t helper = clone_with_pid((pid_t)me->pgid, 0);
	if (helper == 0)
		_exit(setpgid(0, 0) ? 1 : 0);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int ret = helper < 0 ? -errno : 0;
	while (!ret && waitid(P_PID, (id_t)helper, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			ret = -errno;
	if (!ret && (si.si_code != CLD_EXITED || si.si_status != 0))
		ret = -EPERM;
	if (!ret && setpgid(0, (pid_t)me->pgid))
		ret = -errno;
	if (helper > 0)
		waitpid(helper, NULL, 0);
	if (ret)
		pr_err("pid %u: cannot recreate its orphaned process group %u: %s", me->pid, me->pgid,
		       strerror(-ret));
	return ret;
}

static int restore_pgrp(struct restore_ctx *c, const TaskEntry *me)
{
	int n = (int)c->nr_tasks, ret;
	if (me->pgid == me->pid && me->sid != me->pid && setpgid(0, 0)) {
		pr_err("pid %u: cannot lead process group: %s", me->pid, strerror(errno));
		return -errno;
	}
	/* Only where the session is restored too (in the tree, or a lost one
	 * a helper recreated): a root in a session of the dumping host stays
	 * in the restoring driver's group. */
	int orphan = me->pgid != me->pid && me->pgid != me->sid && !tree_has_pid(c, me->pgid) &&
		     (tree_has_pid(c, me->sid) || lost_session(c, me->sid));
	if (orphan && (ret = orphan_group(c, me)))
		return ret;
	barrier(c, (pid_t)me->pid, &c->shared->leaders, n);
	if (me->pgid != me->pid && (orphan || tree_has_pid(c, me->pgid)) &&
	    getpgid(0) != (pid_t)me->pgid && setpgid(0, (pid_t)me->pgid)) {
		pr_err("pid %u: cannot join process group %u: %s", me->pid, me->pgid, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A zombie: end now with the dumped wait status (its parent does not
 * wait before it is restored).  A core-dump flag is not reproduced. */
static void __attribute__((noreturn)) become_zombie(const TaskEntry *me)
{
	int status = me->exit_status;
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		sigset_t one;
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		kill(getpid(), sig);
	}
	_exit(WEXITSTATUS(status));
}

/*
 * Before the restorer: wait until every zombie child has exited (without
 * reaping it), and take back the SIGCHLD each exit queued unless one was
 * pending at dump time.
 */
static int settle_zombies(struct restore_ctx *c, size_t idx)
{
	const TaskEntry *me = c->tasks[idx].te;
	int zombies = 0;
	for (size_t j = idx + 1; j < c->nr_tasks; j++) {
		const TaskEntry *t = c->tasks[j].te;
		siginfo_t si;
		if (t->ppid != me->pid || !restore_task_zombie(&c->tasks[j]))
			continue;
		while (waitid(P_PID, (id_t)t->pid, &si, WEXITED | WNOWAIT) < 0)
			if (errno != EINTR) {
				pr_err("pid %u: zombie child %u: %s", me->pid, t->pid, strerror(errno));
				return -errno;
			}
		zombies++;
	}
	const CoreEntry *core = c->tasks[idx].core;
	for (size_t k = 0; k < core->n_shared_pending; k++)
		if (core->shared_pending[k]->siginfo.len >= 4 &&
		    *(const int32_t *)core->shared_pending[k]->siginfo.data == SIGCHLD)
			return 0;
	if (zombies) {
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigtimedwait(&chld, NULL, &(struct timespec){ 0, 0 });
	}
	return 0;
}

/*
 * The task's fds, keeping ours and the fds of unlinked files that
 * private mappings map (shmem.c): the restorer closes them.  A shared fd
 * table (fdtable.c) is installed by its owner alone, which leaves every fd
 * from fd_base on to the driver: the sharers' fds of the restore live
 * there too.  A sharer waits until every owner is done (it must not open
 * an fd that the owner's dup2() would replace), then installs no fd and
 * closes none, but runs what the kinds do per process (a session
 * leader's foreground group: tty.c).
 */
static int install_fds(struct restore_ctx *c, size_t idx)
{
	if (c->tasks[idx].fdt == SHARE_MEMBER) {
		wait_count(c, (pid_t)c->tasks[idx].te->pid, &c->shared->fdt_installed,
			   c->nr_fdt_owners);
		return files_install(&c->files, idx, NULL, 0, 0);
	}
	int owner = c->tasks[idx].fdt == SHARE_OWNER;
	size_t nr = restore_mem_shared_fds(NULL, 0);
	int *keep = malloc((4 + nr) * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	keep[0] = c->notify_w;
	keep[1] = img_set_dirfd(c->set);
	keep[2] = c->log_fd;
	keep[3] = c->lazy_w; /* -1 but for a lazy restore */
	restore_mem_shared_fds(keep + 4, nr);
	int ret = files_install(&c->files, idx, keep, 4 + nr, owner ? c->fd_base : INT_MAX);
	free(keep);
	if (!ret && owner)
		count_up(&c->shared->fdt_installed);
	return ret;
}

/*
 * Every signal blocked until the host's final rt_sigreturn sets the dumped
 * mask: the restorer and the threads it clones inherit it.  A raw
 * rt_sigprocmask, because glibc's sigprocmask() quietly leaves its own
 * signals 32 (SIGCANCEL, also SIGTIMER) and 33 (SIGSETXID) unblocked,
 * while the dumped sigactions are in place before the restorer runs and
 * glibc's SIGEV_THREAD timers signal 32 to a helper thread.  A 32 that
 * reaches a thread in the restorer (a pending one queued again, or a timer
 * expiring) is then: with SIG_DFL, the death of the process; with SIG_IGN,
 * dropped, and a periodic timer whose signal is ignored is parked by the
 * kernel (6.13+) until 32 is no longer ignored, that is for good: the
 * timer reads as armed and never fires again.  A 33 would run glibc's
 * handler in the restorer.
 */
static void block_all_signals(void)
{
	uint64_t all = ~0ULL;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
}

static void __attribute__((noreturn)) task_main(struct restore_ctx *c, size_t idx)
{
	const TaskEntry *me = c->tasks[idx].te;
	struct restore_mem_plan *mem = NULL;
	int ret;

	block_all_signals();
	if (session_helper_pid) {
		while (getppid() == session_helper_pid)
			usleep(1000);
		session_helper_pid = 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (me->sid == me->pid && setsid() < 0) {
		pr_err("pid %u: cannot create its session: %s", me->pid, strerror(errno));
		task_fail(c, (pid_t)me->pid, -errno);
	}
	/* its controlling tty, before its children are forked (tty.h) */
	if (me->sid == me->pid && (ret = tty_restore_ctty(&c->files, idx)))
		task_fail(c, (pid_t)me->pid, ret);
	struct restore_mem_ctx mc = {
		.pid = (pid_t)me->pid,
		.core = c->tasks[idx].core,
		.mm = c->tasks[idx].mm,
		.chunks = c->tasks[idx].chunks,
		.nr_chunks = c->tasks[idx].nr_chunks,
		.set = c->set,
		.fd_base = c->fd_base,
		.notify_fd = c->notify_w,
		.page_threads = 0,
		.memory_bytes = &c->shared->memory_bytes[idx],
		.unprivileged = c->opts->unprivileged,
		.skip_file_check = c->opts->skip_file_check,
		.inherited_seccomp = c->opts->nr_confine,
		.root = c->tasks[idx].core ? c->tasks[idx].core->root : NULL, /* zombie: no core */
		.shared_fdt = c->tasks[idx].fdt != SHARE_NONE,
		.lazy_fd = c->lazy_w,
	};
	/* lazy: a VMA shared copy-on-write with a child stays eager (restore-mem.c) */
	MmEntry **kids = c->lazy_w >= 0 ? calloc(c->nr_tasks, sizeof(*kids)) : NULL;
	for (size_t j = 0; kids && j < c->nr_tasks; j++)
		if (c->tasks[j].te->ppid == me->pid && c->tasks[j].mm)
			kids[mc.nr_child_mms++] = c->tasks[j].mm;
	mc.child_mms = kids;
	/* into its cgroups before anything of it is charged (cgroup-place.c) */
	if (c->cgroups && c->opts->cgroups != CKPT_CGROUPS_IGNORE && !ckpt_test_fault("cgroup") &&
	    (ret = cgroup_enter_self(c, idx)))
		task_fail(c, (pid_t)me->pid, ret);
	/* memory before the children: they inherit it (restore-mem.h) */
	if (!restore_task_zombie(&c->tasks[idx]) && !restore_task_proxy(&c->tasks[idx]) &&
	    (ret = restore_mem_prepare(&mc, &mem)))
		task_fail(c, (pid_t)me->pid, ret);
	if ((ret = spawn_children(c, idx)))
		task_fail(c, (pid_t)me->pid, ret);
	/* the fault: a process of the tree dies here, as if it crashed */
	if (idx && ckpt_test_fault("child-crash"))
		kill(getpid(), SIGKILL);
	barrier(c, (pid_t)me->pid, &c->shared->created, (int)c->nr_tasks);
	if ((ret = restore_pgrp(c, me)))
		task_fail(c, (pid_t)me->pid, ret);
	if (restore_task_zombie(&c->tasks[idx]))
		become_zombie(me);
	/* no core: nothing pending to keep, it execs ckpt-step */
	if (restore_task_proxy(&c->tasks[idx]))
		restore_step_proxy(c, idx);
	if ((ret = settle_zombies(c, idx)))
		task_fail(c, (pid_t)me->pid, ret);

	if ((ret = install_fds(c, idx)))
		task_fail(c, (pid_t)me->pid, ret);
	use_log_fd(c);
	if ((ret = restore_core_misc(c->tasks[idx].core, c->tasks[idx].fs != SHARE_MEMBER)))
		task_fail(c, (pid_t)me->pid, ret);
	ret = restore_mem_jump(mem);
	task_fail(c, (pid_t)me->pid, ret);
}

/* ---- our init in a fresh PID namespace ---- */

static volatile pid_t init_root;

static void forward_signal(int sig)
{
	if (init_root > 0)
		kill(init_root, sig);
}

static void init_setup(int unprivileged)
{
	static const int fwd[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_signal;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "ckpt-init");
	/* Our own /proc, so that the restored processes see their own PIDs
	 * there; mounts stay private to this namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		pr_info("ckpt-init: cannot mount /proc for the new namespace: %s", strerror(errno));
	/* That was the last use of CAP_SYS_ADMIN: the tree never has it. */
	if (unprivileged)
		priv_drop(PRIV_BIT(CAP_SYS_ADMIN));
}

/* Until the driver says the tree is restored, init dies with it (and the
 * whole namespace with init); after that it outlives a detached driver. */
static void wait_release(struct restore_ctx *c)
{
	char b;
	close(c->release_w);
	if (read(c->release_r, &b, 1) != 1)
		_exit(1); /* the driver gave up or died */
	prctl(PR_SET_PDEATHSIG, 0);
	if (write(c->notify_w, "A", 1) != 1)
		_exit(1);
}

/* PID 1 of the new namespace: create the root, then reap until the root
 * exits and pass its status on as our exit code. */
static void __attribute__((noreturn)) init_main(struct restore_ctx *c)
{
	sigset_t none;
	int status;

	init_setup(c->opts->unprivileged);
	int ret = files_before_tree(&c->files);
	if (ret)
		task_fail(c, (pid_t)c->tasks[0].te->pid, ret);
	pid_t root = clone_with_pid((pid_t)c->tasks[0].te->pid, 0);
	if (root < 0) {
		pr_err("pid %u: cannot create it in the new PID namespace: %s", c->tasks[0].te->pid,
		       strerror(errno));
		task_fail(c, (pid_t)c->tasks[0].te->pid, -errno);
	}
	if (root == 0)
		task_main(c, 0);
	init_root = root;
	/* A user's init, which outlives the restore, keeps nothing lent. */
	if (c->opts->unprivileged && priv_drop(~0ULL))
		_exit(1);
	restore_shm_detach(); /* the root has its copy of the shared memory objects */
	wait_release(c);
	/* init holds no file of the job or of the driver: a pipe end kept
	 * here would hide EOF from a reader. */
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; null >= 0 && fd < 3; fd++)
		dup2(null, fd);
	close_range(3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;) {
		pid_t pid = wait(&status);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			_exit(127);
		if (pid != root)
			continue;
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		_exit(128 + WTERMSIG(status));
	}
}

int restore_release_init(struct restore_ctx *c)
{
	char b;
	if (write(c->release_w, "G", 1) != 1)
		return -errno;
	while (read(c->notify_r, &b, 1) != 1 || b != 'A')
		if (errno != EINTR) {
			pr_err("restore: our init in the new PID namespace did not answer");
			return -EIO;
		}
	return 0;
}

pid_t restore_spawn(struct restore_ctx *c)
{
	pid_t pid;
	if (c->use_pidns) {
		/* CAP_SYS_ADMIN (lent to a user's restore for this alone). */
		int raised = priv_raise(CAP_SYS_ADMIN);
		pid = clone_with_pid(0, CLONE_NEWPID | CLONE_NEWNS);
		priv_lower(CAP_SYS_ADMIN, raised && pid != 0);
	} else {
		int ret = files_before_tree(&c->files);
		if (ret)
			return ret;
		pid = clone_with_pid((pid_t)c->tasks[0].te->pid, 0);
	}
	if (pid < 0) {
		int err = -errno;
		pr_err("pid %u: cannot create it: %s", c->tasks[0].te->pid, strerror(errno));
		return err;
	}
	if (pid == 0) {
		if (c->use_pidns)
			init_main(c);
		task_main(c, 0);
	}
	return pid;
}

/* ---- host pids of a tree in a child PID namespace ---- */

static pid_t ns_pid_of(pid_t host)
{
	char buf[256];
	if (proc_status_field(host, "NSpid", buf, sizeof(buf)))
		return -1;
	char *last = strrchr(buf, '\t');
	last = last ? last + 1 : buf;
	char *sp = strrchr(last, ' ');
	return atoi(sp ? sp + 1 : last);
}

static int walk_children(struct restore_ctx *c, pid_t host, int depth)
{
	pid_t *kids;
	size_t n;
	if (depth > 64 || proc_children(host, &kids, &n))
		return 0;
	for (size_t k = 0; k < n; k++) {
		pid_t ns = ns_pid_of(kids[k]);
		for (size_t i = 0; i < c->nr_tasks; i++)
			if (c->tasks[i].te->pid == (uint32_t)ns)
				c->tasks[i].host_pid = kids[k];
		walk_children(c, kids[k], depth + 1);
	}
	free(kids);
	return 0;
}

int restore_map_host_pids(struct restore_ctx *c)
{
	walk_children(c, c->child, 0);
	for (size_t i = 0; i < c->nr_tasks; i++)
		if (c->tasks[i].host_pid <= 0) {
			pr_err("pid %u: not found in the new PID namespace", c->tasks[i].te->pid);
			return -ESRCH;
		}
	return 0;
}
