/*
 * taskstate: dump of timers, identity beyond uids/gids, and scheduling
 * (see taskstate.h).  Where the data comes from:
 *
 *   /proc/PID/status      CapAmb, NoNewPrivs, Seccomp (of every thread)
 *   ptrace                seccomp filters (PTRACE_SECCOMP_GET_FILTER)
 *   /proc/PID/personality
 *   /proc/PID/timers      POSIX timer ids, signal, sigev value, notify, clock
 *   host syscalls         sched_getattr, sched_getaffinity, ioprio_get, comm
 *   the parasite          getitimer, timer_gettime/getoverrun, securebits,
 *                         dumpable, child subreaper, get_mempolicy
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "parasite-abi.h"
#include "priv.h"
#include "log.h"
#include "proc.h"
#include "taskstate.h"

#define MAX_TIMERS 64 /* RST_MAX_TIMERS */
/* The registrations a process can have, each a REGISTER_* command. */
#define MEMBARRIER_KEPT                                                                      \
	(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED |  \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE |                                   \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)
#define IOPRIO_WHO_PROCESS 1
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* ---- from /proc, before infection ---- */

#define MAX_SECCOMP 16       /* RST_MAX_SECCOMP */
#define MAX_SECCOMP_INSNS 8192 /* RST_SECCOMP_INSNS */
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_GET_SECCOMP_METADATA
#define PTRACE_GET_SECCOMP_METADATA 0x420d
#endif

/* The kernel lets only CAP_SYS_ADMIN read seccomp filters; a user's dump
 * holds it permitted only, effective for these ptrace calls alone. */
static long seccomp_ptrace(int req, pid_t tid, long i, void *data)
{
	int raised = priv_raise(CAP_SYS_ADMIN);
	long ret = ptrace(req, tid, (void *)i, data);
	int e = errno;
	priv_lower(CAP_SYS_ADMIN, raised);
	errno = e;
	return ret;
}

/* Filter i of a stopped thread: its length in instructions (0: none). */
static long filter_len(pid_t tid, long i)
{
	return seccomp_ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, NULL);
}

/* Filter i's len instructions into insns, and its flags. */
static int filter_read(pid_t tid, long i, void *insns, long len, uint64_t *flags)
{
	struct { uint64_t filter_off, flags; } md = { (uint64_t)i, 0 };
	if (seccomp_ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, insns) != len ||
	    seccomp_ptrace(PTRACE_GET_SECCOMP_METADATA, tid, (long)sizeof(md), &md) < 0)
		return errno ? -errno : -EIO;
	*flags = md.flags;
	return 0;
}

/* The filter chain of one stopped thread, oldest first (the kernel's
 * index 0 is the oldest, whatever ptrace(2) says; cr_seccomp checks the
 * order).  Returns how many, or -errno. */
static int read_seccomp(struct arena *a, pid_t pid, const struct thread_regs *th,
			SeccompFilterEntry **out)
{
	char buf[32];
	long n = 0;
	pid_t tid = th->tid;

	if (proc_status_field(tid, "Seccomp", buf, sizeof(buf)) || atoi(buf) == 0)
		return 0;
	/* Strict mode (no filters): dump_thread_seccomp.  The parasite ran
	 * only if seccomp was suspended for it (freeze.c). */
	if (atoi(buf) == 1) {
		if (th->seccomp_suspended)
			return 0;
		pr_err("pid %d: thread %d: seccomp strict mode: not supported without "
		       "CAP_SYS_ADMIN (PTRACE_O_SUSPEND_SECCOMP)", pid, tid);
		return -ENOTSUP;
	}
	long count = 0, total = 0;
	while ((n = filter_len(tid, count)) > 0) {
		total += n;
		if (++count > MAX_SECCOMP || total > MAX_SECCOMP_INSNS) {
			pr_err("pid %d: thread %d: more than %d seccomp filters or %d instructions: "
			       "not supported", pid, tid, MAX_SECCOMP, MAX_SECCOMP_INSNS);
			return -E2BIG;
		}
	}
	if (n < 0 && errno != ENOENT) {
		pr_err("pid %d: thread %d: cannot read its seccomp filters: %s", pid, tid,
		       strerror(errno));
		return -errno;
	}
	for (long i = 0; i < count; i++) {
		SeccompFilterEntry *e = arena_alloc(a, sizeof(*e));
		long len = filter_len(tid, i);
		uint8_t *insns = len > 0 ? arena_alloc(a, (size_t)len * 8) : NULL;
		if (len <= 0) {
			pr_err("pid %d: thread %d: seccomp filter %ld: %s", pid, tid, i,
			       len < 0 ? strerror(errno) : "empty");
			return len < 0 ? -errno : -EINVAL;
		}
		if (!e || !insns)
			return -ENOMEM;
		seccomp_filter_entry__init(e);
		int ret = filter_read(tid, i, insns, len, &e->flags);
		if (ret) {
			pr_err("pid %d: thread %d: seccomp filter %ld: %s", pid, tid, i, strerror(-ret));
			return ret;
		}
		e->insns.data = insns;
		e->insns.len = (size_t)len * 8;
		out[i] = e;
	}
	return (int)count;
}

/* Not traced by us: seized and stopped for the read, let go at once. */
int ckpt_seccomp_of(pid_t pid, struct ckpt_seccomp *out, size_t max)
{
	int status, ret = 0;
	long n = 0;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) || waitpid(pid, &status, __WALL) != pid)
		ret = -errno;
	for (long len; !ret && (len = filter_len(pid, n)) > 0; n++) {
		void *insns = (size_t)n < max && len <= 4096 ? malloc((size_t)len * 8) : NULL;
		if (!insns) {
			ret = (size_t)n < max && len <= 4096 ? -ENOMEM : -E2BIG;
			break;
		}
		out[n] = (struct ckpt_seccomp){ insns, (size_t)len * 8, 0 };
		ret = filter_read(pid, n, insns, len, &out[n].flags);
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	if (ret) /* out[0..n) hold what was allocated, the failed one included */
		ckpt_seccomp_free(out, (size_t)n);
	return ret ? ret : (int)n;
}

void ckpt_seccomp_free(struct ckpt_seccomp *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)f[i].insns);
}

static int same_filters(SeccompFilterEntry **x, SeccompFilterEntry **y, int n)
{
	for (int i = 0; i < n; i++)
		if (x[i]->insns.len != y[i]->insns.len || x[i]->flags != y[i]->flags ||
		    memcmp(x[i]->insns.data, y[i]->insns.data, x[i]->insns.len))
			return 0;
	return 1;
}

/* The main thread's chain: the process's (dump_thread_seccomp: the
 * other threads'). */
static int dump_seccomp(struct arena *a, const struct frozen_task *task, CoreEntry *core)
{
	SeccompFilterEntry **first = arena_alloc(a, MAX_SECCOMP * sizeof(*first));
	if (!first)
		return -ENOMEM;
	int n = read_seccomp(a, task->pid, &task->threads[0], first);
	if (n < 0)
		return n;
	core->seccomp_filters = first;
	core->n_seccomp_filters = (size_t)n;
	return 0;
}

/* A thread whose chain is not the main thread's keeps its own (each
 * thread may add filters of its own after the clone). */
int dump_thread_seccomp(struct arena *a, pid_t pid, const struct thread_regs *th, int is_main,
			const CoreEntry *core, ThreadCoreEntry *tc)
{
	char mode[32];
	if (!proc_status_field(th->tid, "Seccomp", mode, sizeof(mode)) && atoi(mode) == 1)
		tc->has_seccomp_strict = tc->seccomp_strict = 1;
	if (is_main)
		return 0; /* its chain is core's */
	SeccompFilterEntry **chain = arena_alloc(a, MAX_SECCOMP * sizeof(*chain));
	if (!chain)
		return -ENOMEM;
	int n = read_seccomp(a, pid, th, chain);
	if (n < 0)
		return n;
	if ((size_t)n == core->n_seccomp_filters && same_filters(core->seccomp_filters, chain, n))
		return 0;
	tc->has_seccomp_own = tc->seccomp_own = 1;
	tc->seccomp_filters = chain;
	tc->n_seccomp_filters = (size_t)n;
	return 0;
}

int check_user_seccomp(const struct frozen_task *task)
{
	for (int i = 0; i < task->nr_threads; i++) {
		pid_t tid = task->threads[i].tid;
		char mode[32], nnp[32];
		if (proc_status_field(tid, "Seccomp", mode, sizeof(mode)) || atoi(mode) != 2 ||
		    proc_status_field(tid, "NoNewPrivs", nnp, sizeof(nnp)) || atoi(nnp))
			continue;
		pr_err("pid %d: thread %d: seccomp filters installed without no_new_privs: only a "
		       "restore with CAP_SYS_ADMIN could install them again, not a user's",
		       task->pid, tid);
		return -EPERM;
	}
	return 0;
}

static uint64_t status_hex(pid_t pid, const char *key, int *found)
{
	char buf[64];
	if (proc_status_field(pid, key, buf, sizeof(buf))) {
		*found = 0;
		return 0;
	}
	*found = 1;
	return strtoull(buf, NULL, 16);
}

static int read_personality(pid_t pid, uint32_t *out)
{
	char path[64];
	unsigned v;
	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int n = fscanf(f, "%x", &v);
	fclose(f);
	if (n != 1)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A number from a one-line /proc file ("self" or a pid in `who`). */
static int read_proc_num(const char *who, const char *what, long long *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/%s", who, what);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int n = fscanf(f, "%lld", out);
	fclose(f);
	return n == 1 ? 0 : -EINVAL;
}

static int write_proc_num(const char *what, long long v)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/proc/self/%s", what);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = snprintf(buf, sizeof(buf), "%lld", v);
	int ret = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return ret;
}

/* oom_score_adj and loginuid: per process, in /proc alone. */
static int dump_proc_numbers(pid_t pid, CoreEntry *core)
{
	char who[16];
	long long v;
	int ret;
	snprintf(who, sizeof(who), "%d", pid);
	if ((ret = read_proc_num(who, "oom_score_adj", &v))) {
		pr_err("pid %d: cannot read its oom_score_adj: %s", pid, strerror(-ret));
		return ret;
	}
	core->has_oom_score_adj = 1;
	core->oom_score_adj = (int32_t)v;
	/* No audit in the kernel: no loginuid to keep. */
	if ((ret = read_proc_num(who, "loginuid", &v)) == -ENOENT)
		return 0;
	if (ret) {
		pr_err("pid %d: cannot read its loginuid: %s", pid, strerror(-ret));
		return ret;
	}
	core->has_loginuid = 1;
	core->loginuid = (uint32_t)v;
	return 0;
}

int read_task_status(pid_t pid, CoreEntry *core)
{
	CredsEntry *c = core->creds;
	char buf[32];
	int found, ret;

	c->cap_amb = status_hex(pid, "CapAmb", &found);
	c->has_cap_amb = found;
	if (!proc_status_field(pid, "NoNewPrivs", buf, sizeof(buf))) {
		c->has_no_new_privs = 1;
		c->no_new_privs = atoi(buf) != 0;
	}
	if ((ret = read_personality(pid, &core->personality))) {
		pr_err("pid %d: cannot read its personality: %s", pid, strerror(-ret));
		return ret;
	}
	core->has_personality = 1;
	return dump_proc_numbers(pid, core);
}

int dump_task_proc(struct arena *a, const struct frozen_task *task, CoreEntry *core)
{
	int ret = dump_seccomp(a, task, core);
	return ret ? ret : read_task_status(task->pid, core);
}

/* ---- per thread, host syscalls ---- */

struct raw_sched_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

static int read_affinity(struct arena *a, pid_t tid, SchedEntry *s)
{
	cpu_set_t set;
	size_t words = sizeof(set) / 8;
	CPU_ZERO(&set);
	if (sched_getaffinity(tid, sizeof(set), &set))
		return -errno;
	const uint64_t *w = (const uint64_t *)&set;
	while (words > 1 && !w[words - 1])
		words--;
	s->affinity = arena_alloc(a, words * sizeof(uint64_t));
	if (!s->affinity)
		return -ENOMEM;
	memcpy(s->affinity, w, words * sizeof(uint64_t));
	s->n_affinity = words;
	return 0;
}

int dump_thread_sched(struct arena *a, pid_t pid, pid_t tid, ThreadCoreEntry *tc)
{
	struct raw_sched_attr attr;
	char comm[32];
	SchedEntry *s = arena_alloc(a, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	sched_entry__init(s);
	if ((ret = proc_thread_comm(pid, tid, comm, sizeof(comm))) == 0)
		tc->comm = arena_strdup(a, comm);
	memset(&attr, 0, sizeof(attr));
	long io = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if (ret || syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0) || io < 0 ||
	    (ret = read_affinity(a, tid, s))) {
		ret = ret ? ret : -errno;
		pr_err("pid %d: thread %d: cannot read its scheduling: %s", pid, tid, strerror(-ret));
		return ret;
	}
	s->policy = attr.policy;
	s->flags = attr.flags;
	s->nice = attr.nice;
	s->priority = attr.priority;
	if (attr.policy == 6) { /* SCHED_DEADLINE */
		s->has_dl_runtime = s->has_dl_deadline = s->has_dl_period = 1;
		s->dl_runtime = attr.runtime;
		s->dl_deadline = attr.deadline;
		s->dl_period = attr.period;
	}
	s->ioprio = (uint32_t)io;
	tc->sched = s;
	return tc->comm ? 0 : -ENOMEM;
}

/* ---- through the parasite ---- */

struct timers_ctx {
	struct arena *a;
	pid_t pid;
	PosixTimerEntry *cur;
	PosixTimerEntry **list;
	size_t n;
	int err;
};

static const char *const notify_names[] = { "signal", "none", "thread" };

static int parse_notify(PosixTimerEntry *t, const char *v)
{
	char how[16], whom[8];
	int id;
	if (sscanf(v, "%15[a-z]/%7[a-z].%d", how, whom, &id) != 3)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		if (strcmp(how, notify_names[i]))
			continue;
		t->notify = i;
		if (!strcmp(whom, "tid")) {
			t->notify |= SIGEV_THREAD_ID;
			t->notify_tid = id;
		}
		return 0;
	}
	return -EINVAL;
}

static int parse_timer_line(char *line, void *arg)
{
	struct timers_ctx *c = arg;
	int id;
	unsigned long long value;

	if (sscanf(line, "ID: %d", &id) == 1) {
		if (c->n >= MAX_TIMERS) {
			c->err = -E2BIG;
			return 1;
		}
		c->cur = arena_alloc(c->a, sizeof(*c->cur));
		if (!c->cur) {
			c->err = -ENOMEM;
			return 1;
		}
		posix_timer_entry__init(c->cur);
		c->cur->id = id;
		c->list[c->n++] = c->cur;
		return 0;
	}
	if (!c->cur)
		return 0;
	if (sscanf(line, "signal: %d/%llx", &id, &value) == 2) {
		c->cur->signo = id;
		c->cur->sigval = value;
	} else if (!strncmp(line, "notify: ", 8)) {
		if (parse_notify(c->cur, line + 8))
			c->err = -EINVAL;
	} else if (sscanf(line, "ClockID: %d", &id) == 1) {
		c->cur->clock = id;
	}
	return c->err ? 1 : 0;
}

/* /proc/PID/timers names the target thread by our number: the image
 * keeps the tree's (freeze.h). */
static int32_t thread_vtid(const struct frozen_task *task, int32_t tid)
{
	for (int i = 0; i < task->nr_threads; i++)
		if (task->threads[i].tid == tid)
			return task->threads[i].vtid;
	return tid;
}

static int dump_posix_timers(struct arena *a, struct infect_ctl *ctl,
			     const struct frozen_task *task, CoreEntry *core)
{
	pid_t pid = task->pid;
	char path[64];
	struct timers_ctx c = { .a = a, .pid = pid, .list = arena_alloc(a, MAX_TIMERS * sizeof(void *)) };
	if (!c.list)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	int ret = proc_each_line(path, parse_timer_line, &c);
	if (ret < 0 || c.err) {
		ret = c.err ? c.err : ret;
		if (ret == -E2BIG)
			pr_err("pid %d: more than %d POSIX timers are not supported", pid, MAX_TIMERS);
		else
			pr_err("pid %d: cannot read %s: %s", pid, path, strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < c.n; i++) {
		PosixTimerEntry *t = c.list[i];
		struct parasite_posix_timer pt;
		if ((ret = infect_get_posix_timer(ctl, t->id, &pt))) {
			pr_err("pid %d: POSIX timer %d: cannot read it: %s", pid, t->id, strerror(-ret));
			return ret;
		}
		t->int_sec = (uint64_t)pt.its[0];
		t->int_nsec = (uint64_t)pt.its[1];
		t->val_sec = (uint64_t)pt.its[2];
		t->val_nsec = (uint64_t)pt.its[3];
		t->overrun = pt.overrun;
		if (t->notify & SIGEV_THREAD_ID)
			t->notify_tid = thread_vtid(task, t->notify_tid);
	}
	core->posix_timers = c.list;
	core->n_posix_timers = c.n;
	return 0;
}

static int dump_itimers(struct arena *a, const struct parasite_task_state *st, CoreEntry *core)
{
	ItimerEntry *e = arena_alloc(a, 3 * sizeof(*e));
	ItimerEntry **p = arena_alloc(a, 3 * sizeof(*p));
	if (!e || !p)
		return -ENOMEM;
	for (int w = 0; w < 3; w++) {
		itimer_entry__init(&e[w]);
		e[w].which = (uint32_t)w;
		e[w].int_sec = (uint64_t)st->itimer[w][0];
		e[w].int_usec = (uint64_t)st->itimer[w][1];
		e[w].val_sec = (uint64_t)st->itimer[w][2];
		e[w].val_usec = (uint64_t)st->itimer[w][3];
		p[w] = &e[w];
	}
	core->itimers = p;
	core->n_itimers = 3;
	return 0;
}

static int dump_mempolicy(struct arena *a, const struct parasite_task_state *st, CoreEntry *core)
{
	size_t words = sizeof(st->mempolicy_nodes) / 8;
	if (st->mempolicy_mode < 0)
		return 0;
	while (words > 1 && !st->mempolicy_nodes[words - 1])
		words--;
	core->mempolicy_nodes = arena_alloc(a, words * sizeof(uint64_t));
	if (!core->mempolicy_nodes)
		return -ENOMEM;
	memcpy(core->mempolicy_nodes, st->mempolicy_nodes, words * sizeof(uint64_t));
	core->n_mempolicy_nodes = words;
	core->has_mempolicy_mode = 1;
	core->mempolicy_mode = st->mempolicy_mode;
	return 0;
}

/*
 * Membarrier registrations, as MEMBARRIER_CMD_GET_REGISTRATIONS (6.3+)
 * gives them inside the task: the REGISTER_* commands the restore issues
 * again.  Before 6.3 the parasite probes the private ones (their barrier
 * fails with EPERM when not registered); a global expedited registration
 * cannot be seen there at all — a known gap of those kernels alone.
 */
static int dump_membarrier(const struct parasite_task_state *st, pid_t pid, CoreEntry *core)
{
	if (st->membarrier == -ENOSYS)
		return 0; /* no membarrier in the kernel: nothing registered */
	if (st->membarrier >= 0 && (st->membarrier & PARASITE_MEMBARRIER_PROBED))
		pr_debug("pid %d: membarrier registrations probed (kernel before 6.3)", pid);
	int32_t regs = st->membarrier & ~PARASITE_MEMBARRIER_PROBED;
	if (st->membarrier < 0) {
		pr_err("pid %d: cannot read its membarrier registrations (MEMBARRIER_CMD_GET_"
		       "REGISTRATIONS: %s; Linux 6.3+)",
		       pid, strerror(-st->membarrier));
		return -ENOTSUP;
	}
	if ((uint32_t)regs & ~MEMBARRIER_KEPT) {
		pr_err("pid %d: membarrier registrations %#x: %#x not supported", pid,
		       (unsigned)regs, (unsigned)regs & ~MEMBARRIER_KEPT);
		return -ENOTSUP;
	}
	core->has_membarrier = regs != 0;
	core->membarrier = (uint32_t)regs;
	return 0;
}

int dump_task_parasite(struct arena *a, struct infect_ctl *ctl, const struct frozen_task *task,
		       CoreEntry *core)
{
	struct parasite_task_state st;
	int ret = infect_get_task_state(ctl, &st);
	if (ret) {
		pr_err("pid %d: cannot read its timers and prctl state: %s", task->pid, strerror(-ret));
		return ret;
	}
	core->creds->has_securebits = 1;
	core->creds->securebits = (uint32_t)st.securebits;
	core->has_dumpable = 1;
	core->dumpable = (uint32_t)st.dumpable;
	core->has_child_subreaper = 1;
	core->child_subreaper = st.subreaper != 0;
	if ((ret = dump_itimers(a, &st, core)) || (ret = dump_mempolicy(a, &st, core)) ||
	    (ret = dump_membarrier(&st, task->pid, core)))
		return ret;
	return dump_posix_timers(a, ctl, task, core);
}

/* ---- restore, in the restoring process ---- */

/*
 * Written only where the value differs from what the restoring process
 * inherited.  Lowering oom_score_adj below what the process may set needs
 * CAP_SYS_RESOURCE; a loginuid once set needs CAP_AUDIT_CONTROL to change
 * (an unset one any process may set once).  Without them the restore is
 * refused, naming the value, rather than the process going on without it.
 */
/* Each registration again, one REGISTER_* command per bit, in this
 * process whose mm the restored one keeps. */
static int restore_membarrier(const CoreEntry *core)
{
	uint32_t want = core->has_membarrier ? core->membarrier : 0;
	if (want & ~(uint32_t)MEMBARRIER_KEPT) {
		pr_err("pid %d: membarrier registrations %#x: %#x not supported", core->pid, want,
		       want & ~(uint32_t)MEMBARRIER_KEPT);
		return -ENOTSUP;
	}
	for (uint32_t bit = 1; want && bit; bit <<= 1)
		if ((want & bit) && syscall(SYS_membarrier, (int)bit, 0, 0) < 0) {
			int err = errno;
			pr_err("pid %d: membarrier registration %#x: %s", core->pid, bit, strerror(err));
			return -err;
		}
	return 0;
}

static int restore_proc_numbers(const CoreEntry *core)
{
	long long now;
	int ret;
	if (core->has_oom_score_adj &&
	    (read_proc_num("self", "oom_score_adj", &now) || now != core->oom_score_adj) &&
	    (ret = write_proc_num("oom_score_adj", core->oom_score_adj))) {
		pr_err("pid %d: cannot set oom_score_adj %d: %s%s", core->pid, core->oom_score_adj,
		       strerror(-ret), ret == -EACCES ? " (lowering it needs CAP_SYS_RESOURCE)" : "");
		return ret;
	}
	if (core->has_loginuid &&
	    (read_proc_num("self", "loginuid", &now) || now != (long long)core->loginuid) &&
	    (ret = write_proc_num("loginuid", core->loginuid))) {
		pr_err("pid %d: cannot set loginuid %u: %s%s", core->pid, core->loginuid,
		       strerror(-ret),
		       ret == -EPERM ? " (changing a set loginuid needs CAP_AUDIT_CONTROL)" : "");
		return ret;
	}
	return 0;
}

int restore_task_misc(const CoreEntry *core)
{
	if (core->has_personality && core->personality != 0xffffffffU &&
	    personality(core->personality) < 0) {
		pr_err("pid %d: personality %#x: %s", core->pid, core->personality, strerror(errno));
		return -errno;
	}
	if (core->has_child_subreaper &&
	    prctl(PR_SET_CHILD_SUBREAPER, core->child_subreaper ? 1 : 0, 0, 0, 0)) {
		pr_err("pid %d: child subreaper: %s", core->pid, strerror(errno));
		return -errno;
	}
	int ret = restore_membarrier(core);
	return ret ? ret : restore_proc_numbers(core);
}
