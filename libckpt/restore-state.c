/*
 * restore-state: the restoring process's side of the state the restorer
 * blob sets up itself (see restore-state.h, include/restorer-abi.h):
 *
 *   timers     itimers and POSIX timers, sorted by id (the restorer's
 *              fallback creates them in id order);
 *   identity   capabilities, securebits, no_new_privs, dumpable, and the
 *              NUMA memory policy, its nodes cut to those allowed here;
 *   threads    names and scheduling: policy, nice, priority, affinity
 *              (cut to the CPUs allowed here; all of them when none of
 *              the dumped CPUs is left), ioprio;
 *   seccomp    the filters, as sock_fprogs the host installs at the end.
 *
 * Every value comes from an image and is checked before the blob, which
 * cannot print, sees it.  A fallback (CPUs or nodes gone) is said on
 * stderr even without -v: the job runs, but not where it ran.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "log.h"
#include "restore-state.h"

#define MPOL_F_MEMS_ALLOWED (1 << 2)
#define MPOL_MODE_MAX 6  /* MPOL_WEIGHTED_INTERLEAVE */
#define MPOL_FLAGS ((1 << 15) | (1 << 14) | (1 << 13))
#define SCHED_DEADLINE_POLICY 6
#define SCHED_KNOWN_FLAGS 7ULL /* RESET_ON_FORK, RECLAIM, DL_OVERRUN */

/* ---- timers ---- */

static int fill_itimers(const CoreEntry *core, struct rst_args *a, pid_t pid)
{
	for (size_t i = 0; i < core->n_itimers; i++) {
		const ItimerEntry *e = core->itimers[i];
		if (e->which > 2 || e->int_usec >= 1000000 || e->val_usec >= 1000000 ||
		    e->int_sec > INT64_MAX / 2 || e->val_sec > INT64_MAX / 2) {
			pr_err("pid %d: itimer %u: bad value in the image", pid, e->which);
			return -EINVAL;
		}
		int64_t *v = a->itimers[e->which].v;
		v[0] = (int64_t)e->int_sec;
		v[1] = (int64_t)e->int_usec;
		v[2] = (int64_t)e->val_sec;
		v[3] = (int64_t)e->val_usec;
		a->has_itimers = 1;
	}
	return 0;
}

static int has_thread(const CoreEntry *core, int32_t tid)
{
	for (size_t i = 0; i < core->n_threads; i++)
		if ((int32_t)core->threads[i]->tid == tid)
			return 1;
	return 0;
}

static int check_posix_timer(const CoreEntry *core, const PosixTimerEntry *e, pid_t pid)
{
	int how = e->notify & ~4; /* SIGEV_THREAD_ID */
	int bad = e->id < 0 || e->int_nsec >= 1000000000 || e->val_nsec >= 1000000000 ||
		  e->int_sec > INT64_MAX / 2 || e->val_sec > INT64_MAX / 2 ||
		  (how != 0 && how != 1) || /* SIGEV_SIGNAL, SIGEV_NONE */
		  (how == 0 && (e->signo < 1 || e->signo > 64)) ||
		  ((e->notify & 4) && !has_thread(core, e->notify_tid));
	if (bad)
		pr_err("pid %d: POSIX timer %d: bad value in the image", pid, e->id);
	return bad ? -EINVAL : 0;
}

static int fill_posix_timers(const CoreEntry *core, struct rst_args *a, pid_t pid)
{
	if (core->n_posix_timers > RST_MAX_TIMERS) {
		pr_err("pid %d: %zu POSIX timers, at most %d supported", pid, core->n_posix_timers,
		       RST_MAX_TIMERS);
		return -E2BIG;
	}
	for (size_t i = 0; i < core->n_posix_timers; i++) {
		const PosixTimerEntry *e = core->posix_timers[i];
		int ret = check_posix_timer(core, e, pid);
		if (ret)
			return ret;
		struct rst_posix_timer t = {
			.id = e->id, .clock = e->clock, .notify = e->notify, .signo = e->signo,
			.notify_tid = e->notify_tid, .sigval = e->sigval,
			.its = { (int64_t)e->int_sec, (int64_t)e->int_nsec, (int64_t)e->val_sec,
				 (int64_t)e->val_nsec },
		};
		/* Insertion by id; a repeated id is a broken image. */
		size_t j = a->nr_timers;
		while (j > 0 && a->timers[j - 1].id > t.id) {
			a->timers[j] = a->timers[j - 1];
			j--;
		}
		if (j > 0 && a->timers[j - 1].id == t.id) {
			pr_err("pid %d: POSIX timer %d twice in the image", pid, t.id);
			return -EINVAL;
		}
		a->timers[j] = t;
		a->nr_timers++;
	}
	return 0;
}

/* ---- identity ---- */

static uint32_t last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	unsigned v = CAP_LAST_CAP;
	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = CAP_LAST_CAP;
		fclose(f);
	}
	return v < 63 ? v : 63;
}

/* Do we already have exactly these capabilities and securebits? */
static int same_caps(const struct rst_identity *id)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uint64_t bnd = 0, amb = 0;

	if (syscall(SYS_capget, &h, d))
		return 0;
	for (uint32_t c = 0; c <= id->last_cap; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			bnd |= 1ULL << c;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			amb |= 1ULL << c;
	}
	return (d[0].effective | (uint64_t)d[1].effective << 32) == id->cap_eff &&
	       (d[0].permitted | (uint64_t)d[1].permitted << 32) == id->cap_prm &&
	       (d[0].inheritable | (uint64_t)d[1].inheritable << 32) == id->cap_inh &&
	       bnd == id->cap_bnd && amb == id->cap_amb &&
	       prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) == (int)id->securebits;
}

static int fill_identity(const CoreEntry *core, struct rst_identity *id, pid_t pid, int plain)
{
	const CredsEntry *c = core->creds;

	id->dumpable = -1;
	if (core->has_dumpable && core->dumpable <= 1)
		id->dumpable = (int32_t)core->dumpable;
	if (plain) {
		/* The lent capabilities go, whatever the image says (it was
		 * checked to hold none): capset(0, 0, 0) and nothing that
		 * would need CAP_SETPCAP. */
		id->set = id->plain = 1;
		id->cap_eff = id->cap_prm = id->cap_inh = id->cap_amb = 0;
		id->no_new_privs = c && c->has_no_new_privs && c->no_new_privs;
		return 0;
	}
	if (!c || !c->has_securebits)
		return 0; /* an image of before: keep what we have */
	id->no_new_privs = c->has_no_new_privs && c->no_new_privs;
	id->last_cap = last_cap();
	uint64_t known = id->last_cap >= 63 ? ~0ULL : (1ULL << (id->last_cap + 1)) - 1;
	if ((c->cap_eff | c->cap_prm | c->cap_inh | c->cap_amb) & ~known) {
		pr_err("pid %d: capabilities %#llx: unknown to this kernel", pid,
		       (unsigned long long)((c->cap_eff | c->cap_prm | c->cap_inh | c->cap_amb) & ~known));
		return -EINVAL;
	}
	if ((c->cap_eff & ~c->cap_prm) || (c->cap_amb & ~(c->cap_prm & c->cap_inh)) ||
	    (c->securebits & ~0xffU)) {
		pr_err("pid %d: inconsistent capabilities or securebits in the image", pid);
		return -EINVAL;
	}
	id->cap_eff = c->cap_eff;
	id->cap_prm = c->cap_prm;
	id->cap_inh = c->cap_inh;
	id->cap_bnd = c->cap_bnd & known;
	id->cap_amb = c->has_cap_amb ? c->cap_amb : 0;
	id->securebits = c->securebits;
	id->set = !same_caps(id);
	return 0;
}

/* The dumped nodes that exist here; all allowed ones when none does. */
static int fill_mempolicy(const CoreEntry *core, struct rst_identity *id, pid_t pid)
{
	uint64_t allowed[RST_NODE_WORDS] = { 0 }, any = 0;
	int mode = core->mempolicy_mode;

	id->mempolicy_mode = -1;
	if (!core->has_mempolicy_mode || mode < 0)
		return 0;
	if ((mode & ~MPOL_FLAGS) > MPOL_MODE_MAX || core->n_mempolicy_nodes > RST_NODE_WORDS) {
		pr_err("pid %d: memory policy %#x: bad value in the image", pid, mode);
		return -EINVAL;
	}
	if (syscall(SYS_get_mempolicy, NULL, allowed, RST_NODE_WORDS * 64, NULL,
		    MPOL_F_MEMS_ALLOWED)) {
		return 0; /* no NUMA here: the default policy */
	}
	for (size_t i = 0; i < core->n_mempolicy_nodes; i++) {
		id->mempolicy_nodes[i] = core->mempolicy_nodes[i] & allowed[i];
		any |= id->mempolicy_nodes[i];
	}
	int needs_nodes = (mode & 0xff) != 0 && (mode & 0xff) != 1 && (mode & 0xff) != 4;
	if (!any && needs_nodes) {
		pr_err("pid %d: none of its NUMA nodes is here: using every allowed node", pid);
		memcpy(id->mempolicy_nodes, allowed, sizeof(allowed));
	}
	id->mempolicy_mode = mode;
	return 0;
}

/* ---- threads: names and scheduling ---- */

static int fill_affinity(const SchedEntry *e, struct rst_sched *s, pid_t pid, uint32_t tid)
{
	cpu_set_t here;
	uint64_t any = 0;

	if (!e->n_affinity)
		return 0;
	if (e->n_affinity > RST_CPU_WORDS) {
		pr_err("pid %d: thread %u: affinity of %zu words, at most %d", pid, tid,
		       e->n_affinity, RST_CPU_WORDS);
		return -EINVAL;
	}
	CPU_ZERO(&here);
	if (sched_getaffinity(0, sizeof(here), &here)) {
		pr_err("pid %d: sched_getaffinity: %s", pid, strerror(errno));
		return -errno;
	}
	_Static_assert(sizeof(here) >= RST_CPU_WORDS * 8, "cpu_set_t");
	const uint64_t *allowed = (const uint64_t *)&here;
	for (size_t i = 0; i < e->n_affinity; i++) {
		s->affinity[i] = e->affinity[i] & allowed[i];
		any |= s->affinity[i];
	}
	s->affinity_words = (uint32_t)e->n_affinity;
	if (!any) {
		pr_err("pid %d: thread %u: none of its CPUs is here: any allowed CPU", pid, tid);
		memcpy(s->affinity, allowed, RST_CPU_WORDS * 8);
		s->affinity_words = RST_CPU_WORDS;
	}
	return 0;
}

static int fill_sched(const SchedEntry *e, struct rst_sched *s, pid_t pid, uint32_t tid)
{
	int policy_ok = e->policy <= 3 || e->policy == 5 || e->policy == SCHED_DEADLINE_POLICY;
	int rt = e->policy == 1 || e->policy == 2;
	if (!policy_ok || e->nice < -20 || e->nice > 19 || e->priority > (rt ? 99u : 0u) ||
	    (e->ioprio >> 13) > 3) {
		pr_err("pid %d: thread %u: bad scheduling values in the image", pid, tid);
		return -EINVAL;
	}
	s->policy = e->policy;
	s->flags = e->flags & SCHED_KNOWN_FLAGS;
	s->nice = e->nice;
	s->priority = e->priority;
	if (e->policy == SCHED_DEADLINE_POLICY) {
		s->dl_runtime = e->dl_runtime;
		s->dl_deadline = e->dl_deadline;
		s->dl_period = e->dl_period;
	}
	s->ioprio = e->ioprio;
	s->set = 1;
	return fill_affinity(e, s, pid, tid);
}

static int fill_threads(const CoreEntry *core, struct rst_args *a, pid_t pid)
{
	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadCoreEntry *te = core->threads[i];
		struct rst_thread *t = &a->threads[i];
		if (te->comm) {
			size_t len = strnlen(te->comm, sizeof(t->comm) - 1);
			memcpy(t->comm, te->comm, len);
			t->comm[len] = 0;
		}
		if (te->sched) {
			int ret = fill_sched(te->sched, &t->sched, pid, te->tid);
			if (ret)
				return ret;
		}
		t->seccomp_strict = te->has_seccomp_strict && te->seccomp_strict;
		if (t->seccomp_strict && t->seccomp_nr) {
			pr_err("pid %d: thread %u: seccomp strict mode and filters: bad image", pid,
			       te->tid);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- seccomp: laid out here, installed by the host (restore-finish.c) ---- */

#define SECCOMP_FLAGS_KEPT 6ULL /* SECCOMP_FILTER_FLAG_LOG | _SPEC_ALLOW */

/*
 * A filter installed without no_new_privs needs CAP_SYS_ADMIN in the
 * installing thread (seccomp(2), EACCES), which the dumped capability sets
 * may lack: the restorer keeps it, and the host drops it with the final
 * capset once the filters are in.  A user's restore (plain) never has it
 * to lend: refused here, before anything is created.
 */
static int order_caps_and_seccomp(struct rst_args *a, pid_t pid)
{
	const struct rst_identity *id = &a->ident;

	if (id->no_new_privs || !id->set)
		return 0;
	if (id->plain) {
		pr_err("pid %d: seccomp filters installed without no_new_privs: only a restore "
		       "with CAP_SYS_ADMIN can install them, not a user's restore", pid);
		return -EPERM;
	}
	a->caps_after_seccomp = 1;
	a->final_cap_header[0] = 0x20080522; /* _LINUX_CAPABILITY_VERSION_3 */
	a->final_cap_header[1] = 0;
	uint64_t sets[3] = { id->cap_eff, id->cap_prm, id->cap_inh };
	for (int i = 0; i < 3; i++) {
		a->final_cap_data[i] = (uint32_t)sets[i];
		a->final_cap_data[3 + i] = (uint32_t)(sets[i] >> 32);
	}
	return 0;
}

/* The chain of thread `i`: its own, or the main thread's. */
static SeccompFilterEntry **chain_of(const CoreEntry *core, size_t i, size_t *n)
{
	const ThreadCoreEntry *te = i < core->n_threads ? core->threads[i] : NULL;
	if (i > 0 && te && te->has_seccomp_own && te->seccomp_own) {
		*n = te->n_seccomp_filters;
		return te->seccomp_filters;
	}
	*n = core->n_seccomp_filters;
	return core->seccomp_filters;
}

static int same_filter(const SeccompFilterEntry *x, const SeccompFilterEntry *y)
{
	return x->insns.len == y->insns.len && x->flags == y->flags &&
	       !memcmp(x->insns.data, y->insns.data, x->insns.len);
}

/* How many filters, oldest first, every thread's chain begins with. */
static size_t shared_prefix(const CoreEntry *core)
{
	size_t shared = core->n_seccomp_filters;
	for (size_t i = 1; i < core->n_threads; i++) {
		size_t n, k = 0;
		SeccompFilterEntry **c = chain_of(core, i, &n);
		while (k < shared && k < n && same_filter(core->seccomp_filters[k], c[k]))
			k++;
		shared = k;
	}
	return shared;
}

struct filter_pool {
	size_t used; /* instructions */
	uint32_t k;  /* filters */
};

static int add_filter(struct rst_args *a, struct filter_pool *p, const SeccompFilterEntry *e,
		      pid_t pid, size_t i)
{
	size_t n = e->insns.len / 8;
	if (p->k >= RST_MAX_SECCOMP) {
		pr_err("pid %d: more than %d seccomp filters in all its threads: not supported", pid,
		       RST_MAX_SECCOMP);
		return -E2BIG;
	}
	if (!n || e->insns.len % 8 || n > 4096 || p->used + n > RST_SECCOMP_INSNS) {
		pr_err("pid %d: seccomp filter %zu: %zu bytes: bad or too large", pid, i, e->insns.len);
		return -EINVAL;
	}
	memcpy(&a->seccomp_insns[p->used], e->insns.data, e->insns.len);
	a->seccomp[p->k].len = (uint16_t)n;
	a->seccomp[p->k].filter = (uint64_t)(uintptr_t)&a->seccomp_insns[p->used];
	a->seccomp[p->k].flags = e->flags & SECCOMP_FLAGS_KEPT;
	p->used += n;
	p->k++;
	return 0;
}

/*
 * The filters every thread begins with go first (the host installs them
 * once, with TSYNC, so that the threads share them as after their
 * clone()s), then each thread's own rest (installed in that thread).
 */
static int fill_seccomp(const CoreEntry *core, struct rst_args *a, pid_t pid, size_t inherited)
{
	struct filter_pool pool = { 0, 0 };
	size_t shared = shared_prefix(core);
	int ret = 0;

	/* The first `inherited` are ours already (the main thread's checked
	 * at load): every thread must begin with them. */
	if (shared < inherited) {
		pr_err("pid %d: a thread's seccomp filters do not begin with the ones the restoring "
		       "user runs under: a user cannot shed the filters that confine her", pid);
		return -EPERM;
	}
	for (size_t i = inherited; !ret && i < shared; i++)
		ret = add_filter(a, &pool, core->seccomp_filters[i], pid, i);
	a->nr_seccomp = pool.k;
	for (size_t t = 0; !ret && t < core->n_threads; t++) {
		size_t n;
		SeccompFilterEntry **c = chain_of(core, t, &n);
		a->threads[t].seccomp_from = pool.k;
		for (size_t i = shared; !ret && i < n; i++)
			ret = add_filter(a, &pool, c[i], pid, i);
		a->threads[t].seccomp_nr = pool.k - a->threads[t].seccomp_from;
	}
	a->nr_seccomp_all = pool.k;
	if (ret)
		return ret;
	return pool.k ? order_caps_and_seccomp(a, pid) : 0;
}

int restore_fill_task_state(const CoreEntry *core, struct rst_args *a, pid_t pid, int plain,
			    size_t inherited)
{
	int ret;
	a->stopped = core->has_stopped && core->stopped ?
			     (core->has_stop_signal ? core->stop_signal : SIGSTOP) : 0;
	if ((ret = fill_itimers(core, a, pid)) || (ret = fill_posix_timers(core, a, pid)) ||
	    (ret = fill_identity(core, &a->ident, pid, plain)) ||
	    (ret = fill_mempolicy(core, &a->ident, pid)) || (ret = fill_seccomp(core, a, pid, inherited)))
		return ret;
	return fill_threads(core, a, pid);
}
