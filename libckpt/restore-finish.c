/*
 * restore-finish: the driver's side of the handoff (restore-mem.h).  Once
 * a restored process reported struct rst_ready, all its threads sit in
 * pause() inside the restorer blob.  For each thread we
 *
 *   seize + interrupt it (the tids in /proc are the driver's view; the
 *   NSpid line maps them to the dumped tids of a child PID namespace),
 *   point it at the blob's lone `syscall` with rax = rt_sigreturn and rsp
 *   at its signal frame, and step it to that syscall's exit:
 *
 * the thread now has its dumped registers, FPU state, mask and altstack
 * (its seccomp filters, if any, injected just before: once, in the main
 * thread, with TSYNC, so that every thread shares the filter objects).
 * Last, one injected munmap in the main thread removes the restore area
 * (signals blocked meanwhile with PTRACE_SETSIGMASK, so that none is
 * delivered in the middle).  Where the fd table is shared with other
 * processes, an injected close_range in the main thread, first of all,
 * closes the restore's fds (restorer-abi.h, shared_fdt_from).  The
 * threads stay stopped until
 * restore_finish_release() detaches them; a process dumped in a group
 * stop gets a SIGSTOP first and goes back into it.
 */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "restore-mem.h"
#include "restorer-abi.h"

extern const unsigned long restorer_off_syscall;

#define MAX_THREADS 65536
#define PAUSE_TRIES 2000 /* 1 ms apart */
#define SYSCALL_STOP (SIGTRAP | 0x80)

struct fin_thread {
	pid_t host_tid;
	int32_t tid;   /* as dumped */
	int seized;
	uint64_t sigreturn_rsp;
	uint32_t seccomp_from, seccomp_nr; /* its own filters (restorer-abi.h) */
	int seccomp_strict;
	int seccomp_suspended; /* seized with PTRACE_O_SUSPEND_SECCOMP */
	struct user_regs_struct regs; /* in the restorer's pause() */
};

struct rst_finished {
	pid_t host_pid;
	uint32_t nr_seccomp;       /* filters every thread shares: in the main thread, TSYNC */
	uint32_t nr_seccomp_all;   /* with the threads' own */
	int32_t shared_fdt_from;   /* rst_args: close the fds >= it (a shared fd table) */
	int any_strict;            /* a thread goes into strict mode */
	uint64_t seccomp_prog[RST_MAX_SECCOMP]; /* struct sock_fprog, in the area */
	uint64_t seccomp_flags[RST_MAX_SECCOMP];
	uint64_t final_capset[2]; /* its header and data, in the area: 0 when none */
	int stopped; /* dumped in a group stop: that signal before the detach */
	uint64_t area_start, area_len;
	size_t nr;
	struct fin_thread *t; /* t[0]: the main thread */
};

static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	int err = n < 0 ? errno : EIO;
	pr_err("pid %d: restorer arguments at 0x%" PRIx64 ": %s", pid, addr, strerror(err));
	return -err;
}

/* The tid of host_tid in its own (innermost) PID namespace. */
static int32_t ns_tid(pid_t host_pid, pid_t host_tid)
{
	char path[64], line[256];
	int32_t tid = host_tid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", host_pid, host_tid);
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		char *last = strrchr(line, '\t');
		tid = (int32_t)strtol(last ? last + 1 : line + 6, NULL, 10);
		break;
	}
	if (f)
		fclose(f);
	return tid;
}

/* Which host tid runs the dumped thread `tid`? */
static int map_threads(struct rst_finished *f, const struct rst_thread *rt)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", f->host_pid);
	DIR *d = opendir(path);
	struct dirent *de;
	size_t seen = 0;

	if (!d) {
		pr_err("pid %d: %s: %s", f->host_pid, path, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d))) {
		pid_t host_tid = atoi(de->d_name);
		if (host_tid <= 0)
			continue;
		int32_t tid = ns_tid(f->host_pid, host_tid);
		seen++;
		for (size_t i = 0; i < f->nr; i++)
			if (rt[i].tid == tid)
				f->t[i].host_tid = host_tid;
	}
	closedir(d);
	for (size_t i = 0; i < f->nr; i++) {
		if (!f->t[i].host_tid || seen != f->nr) {
			pr_err("pid %d: thread %d: not found among %zu running threads", f->host_pid,
			       rt[i].tid, seen);
			return -ESRCH;
		}
	}
	return 0;
}

static int wait_stop(pid_t tid, int *sig, int *event)
{
	int st;
	for (;;) {
		pid_t r = waitpid(tid, &st, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		break;
	}
	if (!WIFSTOPPED(st)) {
		pr_err("tid %d: exited while being restored (status 0x%x)", tid, st);
		return -ECHILD;
	}
	*sig = WSTOPSIG(st);
	*event = st >> 16;
	return 0;
}

#ifndef PTRACE_O_SUSPEND_SECCOMP
#define PTRACE_O_SUSPEND_SECCOMP (1 << 21)
#endif

/* A thread getting filters is seized with seccomp suspended, so that the
 * syscalls injected after them (capset, rt_sigreturn, munmap) run whatever
 * the filters say.  The kernel grants that only to a tracer with
 * CAP_SYS_ADMIN and no filters of its own: a user's restore, or one run
 * under filters, does without (its filters had no_new_privs, and were
 * installed last anyway). */
static int seize(pid_t tid, int suspend_seccomp, int *suspended)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;

	*suspended = suspend_seccomp &&
		     !ptrace(PTRACE_SEIZE, tid, 0, opts | PTRACE_O_SUSPEND_SECCOMP);
	if (*suspended)
		return 0;
	if (suspend_seccomp && errno != EPERM && errno != EINVAL)
		return -errno;
	return ptrace(PTRACE_SEIZE, tid, 0, opts) ? -errno : 0;
}

static int seize_thread(struct fin_thread *t, int suspend_seccomp)
{
	int sig = 0, event = 0, ret;

	if ((ret = seize(t->host_tid, suspend_seccomp, &t->seccomp_suspended))) {
		pr_err("tid %d: ptrace seize: %s", t->host_tid, strerror(-ret));
		return ret;
	}
	t->seized = 1;
	if (ptrace(PTRACE_INTERRUPT, t->host_tid, 0, 0)) {
		pr_err("tid %d: ptrace interrupt: %s", t->host_tid, strerror(errno));
		return -errno;
	}
	if ((ret = wait_stop(t->host_tid, &sig, &event)))
		return ret;
	if (event != PTRACE_EVENT_STOP) {
		pr_err("tid %d: unexpected stop (signal %d, event %d)", t->host_tid, sig, event);
		return -EPROTO;
	}
	return 0;
}

/* A thread may still be between its count-down and pause() (e.g. closing
 * the notify fd): let it get there. */
static int wait_in_pause(struct fin_thread *t, struct user_regs_struct *regs)
{
	int sig = 0, event = 0, ret;

	for (int i = 0; i < PAUSE_TRIES; i++) {
		if (ptrace(PTRACE_GETREGS, t->host_tid, 0, regs))
			return -errno;
		if (regs->orig_rax == __NR_pause)
			return 0;
		if (ptrace(PTRACE_CONT, t->host_tid, 0, 0))
			return -errno;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		if (ptrace(PTRACE_INTERRUPT, t->host_tid, 0, 0))
			return -errno;
		if ((ret = wait_stop(t->host_tid, &sig, &event)))
			return ret;
	}
	pr_err("tid %d: never reached the restorer's pause()", t->host_tid);
	return -ETIMEDOUT;
}

/* Run the syscall set up in `regs` at the blob's syscall gadget, from
 * entry to exit stop; *ret gets its return value. */
static int inject_syscall(struct rst_finished *f, pid_t tid, struct user_regs_struct *regs,
			  long *ret)
{
	int sig, event, err;
	long nr = (long)regs->rax;

	regs->rip = f->area_start + restorer_off_syscall;
	regs->orig_rax = (uint64_t)-1; /* no syscall restart on the way out */
	if (ptrace(PTRACE_SETREGS, tid, 0, regs))
		return -errno;
	for (int stop = 0; stop < 2; stop++) {
		if (ptrace(PTRACE_SYSCALL, tid, 0, 0))
			return -errno;
		if ((err = wait_stop(tid, &sig, &event)))
			return err;
		if (sig != SYSCALL_STOP) {
			pr_err("tid %d: syscall %ld: stopped by signal %d instead", tid, nr, sig);
			return -EPROTO;
		}
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, regs))
		return -errno;
	*ret = (long)regs->rax;
	return 0;
}

/* The dumped capability sets, which the restorer left to us because the
 * filters needed CAP_SYS_ADMIN (restorer-abi.h, caps_after_seccomp). */
static int set_final_caps(struct rst_finished *f, struct fin_thread *t,
			  const struct user_regs_struct *base)
{
	struct user_regs_struct regs = *base;
	long ret;

	regs.rax = __NR_capset;
	regs.rdi = f->final_capset[0];
	regs.rsi = f->final_capset[1];
	int err = inject_syscall(f, t->host_tid, &regs, &ret);
	if (!err && ret < 0)
		err = (int)ret;
	if (err)
		pr_err("pid %d: thread %d: capset after the seccomp filters: %s", f->host_pid,
		       t->tid, strerror(-err));
	return err;
}

#define SECCOMP_FILTER_FLAG_TSYNC_BIT 1ULL

/*
 * The filters, oldest first, as the very last thing before rt_sigreturn:
 * nothing of the restorer runs under them.  The main thread installs them
 * with SECCOMP_FILTER_FLAG_TSYNC: every thread then holds the same filter
 * objects, as after the dumped process's own clone()s, and a later TSYNC
 * of the process itself finds every thread on its chain (a copy per
 * thread would make it fail, naming a thread).
 */
static int install_filters(struct rst_finished *f, struct fin_thread *t, uint32_t from,
			   uint32_t nr, uint64_t tsync)
{
	for (uint32_t i = from; i < from + nr; i++) {
		struct user_regs_struct regs = t->regs;
		long ret;
		regs.rax = __NR_seccomp;
		regs.rdi = 1; /* SECCOMP_SET_MODE_FILTER */
		regs.rsi = f->seccomp_flags[i] | tsync;
		regs.rdx = f->seccomp_prog[i];
		int err = inject_syscall(f, t->host_tid, &regs, &ret);
		if (!err && ret > 0) {
			pr_err("pid %d: seccomp filter %u: thread %ld cannot take it (TSYNC)",
			       f->host_pid, i, ret);
			return -EBUSY;
		}
		if (!err && ret < 0)
			err = (int)ret;
		if (err) {
			pr_err("pid %d: thread %d: seccomp filter %u: %s", f->host_pid, t->tid, i,
			       strerror(-err));
			return err;
		}
	}
	return 0;
}

static int install_seccomp(struct rst_finished *f, struct fin_thread *t)
{
	return install_filters(f, t, 0, f->nr_seccomp, SECCOMP_FILTER_FLAG_TSYNC_BIT);
}

/* Strict mode allows only read, write, exit and sigreturn: it must be the
 * thread's last act, and the munmap after it (unmap_area) runs only
 * because seccomp is suspended while we hold the thread. */
static int enter_strict(struct rst_finished *f, struct fin_thread *t)
{
	struct user_regs_struct regs = t->regs;
	long ret;

	if (!t->seccomp_suspended) {
		pr_err("pid %d: thread %d: seccomp strict mode: the restore needs CAP_SYS_ADMIN "
		       "(PTRACE_O_SUSPEND_SECCOMP)", f->host_pid, t->tid);
		return -EPERM;
	}
	regs.rax = __NR_seccomp;
	regs.rdi = 0; /* SECCOMP_SET_MODE_STRICT */
	regs.rsi = 0;
	regs.rdx = 0;
	int err = inject_syscall(f, t->host_tid, &regs, &ret);
	if (!err && ret < 0)
		err = (int)ret;
	if (err)
		pr_err("pid %d: thread %d: seccomp strict mode: %s", f->host_pid, t->tid,
		       strerror(-err));
	return err;
}

/* A thread's own filters, after the shared ones, in its own context: the
 * sequence of programs each thread runs is the dumped one. */
static int sigreturn_thread(struct rst_finished *f, struct fin_thread *t)
{
	struct user_regs_struct regs = t->regs;
	long ret;
	int err = install_filters(f, t, t->seccomp_from, t->seccomp_nr, 0);

	if (!err && f->final_capset[0])
		err = set_final_caps(f, t, &t->regs);
	if (!err && t->seccomp_strict)
		err = enter_strict(f, t);

	if (err)
		return err;
	regs.rax = __NR_rt_sigreturn;
	regs.rsp = t->sigreturn_rsp;
	if ((err = inject_syscall(f, t->host_tid, &regs, &ret))) {
		pr_err("pid %d: thread %d: rt_sigreturn: %s", f->host_pid, t->tid, strerror(-err));
		return err;
	}
	return 0;
}

/* A shared fd table: the restorer left our fds in it (restorer-abi.h),
 * and every process sharing it is past using them once it reported.  In
 * the main thread, stopped in the restorer's pause(). */
static int close_shared_fdt(struct rst_finished *f, const struct user_regs_struct *base)
{
	struct user_regs_struct regs = *base;
	long ret;

	if (!f->shared_fdt_from)
		return 0;
	regs.rax = __NR_close_range;
	regs.rdi = (uint64_t)f->shared_fdt_from;
	regs.rsi = ~0U;
	regs.rdx = 0;
	int err = inject_syscall(f, f->t[0].host_tid, &regs, &ret);
	if (!err && ret)
		err = (int)ret;
	if (err)
		pr_err("pid %d: close_range(%d) in its shared fd table: %s", f->host_pid,
		       f->shared_fdt_from, strerror(-err));
	return err;
}

static int unmap_area(struct rst_finished *f)
{
	pid_t tid = f->t[0].host_tid;
	struct user_regs_struct saved, regs;
	uint64_t mask, all = ~0ULL;
	long ret;
	int err;

	if (ptrace(PTRACE_GETREGS, tid, 0, &saved) ||
	    ptrace(PTRACE_GETSIGMASK, tid, sizeof(mask), &mask) ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(all), &all)) {
		pr_err("pid %d: main thread: %s", f->host_pid, strerror(errno));
		return -errno;
	}
	regs = saved;
	regs.rax = __NR_munmap;
	regs.rdi = f->area_start;
	regs.rsi = f->area_len;
	err = inject_syscall(f, tid, &regs, &ret);
	if (!err && ret)
		err = (int)ret;
	if (err) {
		pr_err("pid %d: munmap of the restore area 0x%" PRIx64 ": %s", f->host_pid,
		       f->area_start, strerror(-err));
		return err;
	}
	if (ptrace(PTRACE_SETREGS, tid, 0, &saved) ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask)) {
		pr_err("pid %d: main thread: %s", f->host_pid, strerror(errno));
		return -errno;
	}
	return 0;
}

static int load_args(struct rst_finished *f, uint64_t args_addr, struct rst_thread **rt)
{
	struct rst_args a;
	int ret = read_remote(f->host_pid, args_addr, &a, sizeof(a));

	if (ret)
		return ret;
	if (a.magic != RST_MAGIC || a.nr_threads < 1 || a.nr_threads > MAX_THREADS) {
		pr_err("pid %d: bad restorer arguments at 0x%" PRIx64, f->host_pid, args_addr);
		return -EINVAL;
	}
	f->stopped = (int)a.stopped;
	if (a.stopped && a.stopped != SIGSTOP && a.stopped != SIGTSTP && a.stopped != SIGTTIN &&
	    a.stopped != SIGTTOU) {
		pr_err("pid %d: bad restorer arguments at 0x%" PRIx64 ": stop signal %u", f->host_pid,
		       args_addr, a.stopped);
		return -EINVAL;
	}
	if (a.nr_seccomp_all > RST_MAX_SECCOMP || a.nr_seccomp > a.nr_seccomp_all) {
		pr_err("pid %d: bad restorer arguments at 0x%" PRIx64, f->host_pid, args_addr);
		return -EINVAL;
	}
	if (a.shared_fdt_from < 0 || (a.shared_fdt_from > 0 && a.shared_fdt_from < 3)) {
		pr_err("pid %d: bad restorer arguments at 0x%" PRIx64 ": fd %d", f->host_pid,
		       args_addr, a.shared_fdt_from);
		return -EINVAL;
	}
	f->shared_fdt_from = a.shared_fdt_from;
	f->nr_seccomp = a.nr_seccomp;
	f->nr_seccomp_all = a.nr_seccomp_all;
	for (uint32_t i = 0; i < a.nr_seccomp_all; i++) {
		f->seccomp_prog[i] = args_addr + offsetof(struct rst_args, seccomp) +
				     i * sizeof(struct rst_seccomp);
		f->seccomp_flags[i] = a.seccomp[i].flags;
	}
	if (a.nr_seccomp_all && a.caps_after_seccomp) {
		f->final_capset[0] = args_addr + offsetof(struct rst_args, final_cap_header);
		f->final_capset[1] = args_addr + offsetof(struct rst_args, final_cap_data);
	}
	f->area_start = a.area_start;
	f->area_len = a.area_len;
	f->nr = (size_t)a.nr_threads;
	f->t = calloc(f->nr, sizeof(*f->t));
	*rt = calloc(f->nr, sizeof(**rt));
	if (!f->t || !*rt)
		return -ENOMEM;
	ret = read_remote(f->host_pid, (uint64_t)a.threads, *rt, f->nr * sizeof(**rt));
	for (size_t i = 0; !ret && i < f->nr; i++) {
		f->t[i].tid = (*rt)[i].tid;
		f->t[i].sigreturn_rsp = (*rt)[i].sigreturn_rsp;
		f->t[i].seccomp_from = (*rt)[i].seccomp_from;
		f->t[i].seccomp_nr = (*rt)[i].seccomp_nr;
		f->t[i].seccomp_strict = (*rt)[i].seccomp_strict != 0;
		f->any_strict |= f->t[i].seccomp_strict;
		if (f->t[i].seccomp_from > f->nr_seccomp_all ||
		    f->t[i].seccomp_nr > f->nr_seccomp_all - f->t[i].seccomp_from) {
			pr_err("pid %d: bad restorer arguments at 0x%" PRIx64, f->host_pid, args_addr);
			return -EINVAL;
		}
	}
	return ret;
}

int restore_finish_task(pid_t host_pid, uint64_t args_addr, struct rst_finished **out)
{
	struct rst_finished *f = calloc(1, sizeof(*f));
	struct rst_thread *rt = NULL;
	int ret;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->host_pid = host_pid;
	ret = load_args(f, args_addr, &rt);
	if (!ret)
		ret = map_threads(f, rt);
	free(rt);
	/* Every thread is stopped before any leaves the restorer. */
	for (size_t i = 0; !ret && i < f->nr; i++)
		ret = seize_thread(&f->t[i], f->nr_seccomp_all > 0 || f->any_strict);
	for (size_t i = 0; !ret && i < f->nr; i++)
		ret = wait_in_pause(&f->t[i], &f->t[i].regs);
	/* before the job's seccomp filters, which may not allow it */
	if (!ret)
		ret = close_shared_fdt(f, &f->t[0].regs);
	if (!ret)
		ret = install_seccomp(f, &f->t[0]);
	for (size_t i = 0; !ret && i < f->nr; i++)
		ret = sigreturn_thread(f, &f->t[i]);
	if (!ret)
		ret = unmap_area(f);
	*out = f; /* even on failure: the caller aborts it */
	return ret;
}

static void detach_all(struct rst_finished *f)
{
	for (size_t i = 0; f->t && i < f->nr; i++)
		if (f->t[i].seized)
			ptrace(PTRACE_DETACH, f->t[i].host_tid, 0, 0);
	free(f->t);
	free(f);
}

/* Field `n` (1: pid, 3: state, ...) of /proc/PID/stat as a number. */
static long long stat_field(pid_t pid, int n)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -1;
	char *p = fgets(buf, sizeof(buf), fp) ? strrchr(buf, ')') : NULL;
	fclose(fp);
	for (int i = 2; p && i < n; i++)
		p = strchr(p + 1, ' ');
	return p ? strtoll(p + 1, NULL, 10) : -1;
}

/*
 * Is the process group of `pid` orphaned (no member has a parent in
 * another group of its session)?  The kernel throws SIGTSTP, SIGTTIN and
 * SIGTTOU away there instead of stopping.
 */
static int pgrp_orphaned(pid_t pid)
{
	long long pgid = stat_field(pid, 5), sid = stat_field(pid, 6);
	DIR *d = opendir("/proc");
	struct dirent *de;
	int orphaned = 1;
	while (d && orphaned && (de = readdir(d))) {
		pid_t p = (pid_t)atoi(de->d_name);
		if (p <= 0 || stat_field(p, 5) != pgid)
			continue;
		pid_t pp = (pid_t)stat_field(p, 4);
		if (pp > 0 && stat_field(pp, 5) != pgid && stat_field(pp, 6) == sid)
			orphaned = 0;
	}
	if (d)
		closedir(d);
	return orphaned;
}

void restore_finish_release(struct rst_finished *f)
{
	/* Queued while every thread is in its ptrace stop: a thread leaving
	 * the stop takes the signal before running any of its code.  The
	 * signal it stopped with (waitid tells its parent which): SIGTSTP,
	 * SIGTTIN, SIGTTOU would be thrown away in an orphaned group (where
	 * it stopped before its group became one): SIGSTOP there, said. */
	if (f && f->stopped) {
		int sig = f->stopped;
		if (sig != SIGSTOP && pgrp_orphaned(f->host_pid)) {
			fprintf(stderr, "ckpt: pid %d: stopped by %s, its process group is orphaned now: "
					"stopped by SIGSTOP instead\n",
				f->host_pid, strsignal(sig));
			sig = SIGSTOP;
		}
		kill(f->host_pid, sig);
	}
	if (f)
		detach_all(f);
}

void restore_finish_abort(struct rst_finished *f)
{
	if (!f)
		return;
	kill(f->host_pid, SIGKILL);
	detach_all(f);
}
