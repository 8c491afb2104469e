/*
 * The restorer blob: the last code that runs in a restoring process before
 * it becomes the dumped one.  The host (libckpt/restore-mem.c) premapped
 * every dumped VMA inside the "restore area", filled it and jumped here
 * with rdi = struct rst_args and rsp in the area; from now on nothing of
 * the restoring process but the area is needed.  The steps, in the order
 * of include/restorer-abi.h:
 *
 *   main thread   specials aside -> unmap the old memory -> move/map the
 *                 VMAs -> specials home -> close fds -> mm map -> shared
 *                 pending signals -> pdeathsig, memory policy -> clone the
 *                 other threads -> itimers, POSIX timers
 *   every thread  fs/gs, tid address, robust list, rseq, name, scheduling,
 *                 own pending signals, identity (creds, caps, securebits,
 *                 no_new_privs) -> count down -> the last one sets
 *                 dumpable and tells the host -> pause() until the
 *                 host's rt_sigreturn
 *
 * Freestanding: raw syscalls only (include/ckpt-sys.h), no relocations,
 * general registers only.  A failure writes a struct rst_error to the
 * notify fd and ends the whole process.
 */
#include <stddef.h>
#include <stdint.h>
#include <asm/prctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>

#include "ckpt-sys.h"
#include "restorer-abi.h"

/* _IOWR(0xAA, 0x3F, struct uffdio_api), _IOWR(0xAA, 0x00, struct uffdio_register):
 * the kernel's _IOC macros do not expand in this freestanding build */
#define RST_UFFDIO_API 0xc018aa3fUL
#define RST_UFFDIO_REGISTER 0xc020aa00UL
#define O_CLOEXEC_RST 02000000
#define O_NONBLOCK_RST 04000
#define CLONE_STACK_HINT 256 /* clone3 wants a stack range; only its top matters */

long rst_clone_thread(struct clone_args *ca, size_t size, void (*fn)(void *), void *arg);
void restorer_main(struct rst_args *a);

/* The compiler may emit calls to these for struct copies and zeroing; the
 * attribute keeps it from turning the loops back into calls to themselves. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memcpy(void *dst, const void *src, size_t n)
{
	return blob_memcpy(dst, src, n);
}

__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memset(void *dst, int c, size_t n)
{
	return blob_memset(dst, c, n);
}

/* Threads started by clone3 only get their rst_thread; the rest lives here
 * (.bss, addressed rip-relative). */
static struct rst_args *rst_args_ptr;

static int32_t dumped_pid(const struct rst_args *a)
{
	return a->threads[0].tid;
}

__attribute__((noreturn))
static void fail(int step, long err, uint64_t addr)
{
	struct rst_args *a = rst_args_ptr;
	struct rst_error e;

	blob_memset(&e, 0, sizeof(e));
	e.tag = 'E';
	e.pid = dumped_pid(a);
	e.step = step;
	e.err = err < 0 ? err : -22 /* EINVAL: a syscall returned nonsense */;
	e.addr = addr;
	sys_write(a->notify_fd, &e, sizeof(e));
	for (;;)
		sys_exit_group(1);
}

static void check(long ret, int step, uint64_t addr)
{
	if (ret < 0)
		fail(step, ret, addr);
}

/* mremap/mmap to a fixed place: anything but `want` is a failure. */
static void check_at(long ret, uint64_t want, int step, uint64_t addr)
{
	if ((uint64_t)ret != want)
		fail(step, ret < 0 ? ret : -22, addr);
}

static void move_range(uint64_t from, uint64_t to, uint64_t len, int step)
{
	if (from == to)
		return;
	long ret = sys_mremap((void *)from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to);
	check_at(ret, to, step, from);
}

static void move_specials(struct rst_args *a, int final)
{
	for (uint32_t i = 0; i < a->nr_specials; i++) {
		struct rst_special *s = &a->specials[i];
		if (final)
			move_range(s->tmp, s->target, s->len, RST_STEP_SPECIAL_FINAL);
		else
			move_range(s->cur, s->tmp, s->len, RST_STEP_SPECIAL_TMP);
	}
}

static void unmap_old(struct rst_args *a)
{
	for (uint32_t i = 0; i < a->nr_unmap; i++) {
		struct rst_range *r = &a->unmap[i];
		check(sys_munmap((void *)r->start, r->len), RST_STEP_UNMAP, r->start);
	}
}

static void build_vmas(struct rst_args *a)
{
	for (uint32_t i = 0; i < a->nr_vmas; i++) {
		struct rst_vma *v = &a->vmas[i];
		if (v->how == RST_VMA_MOVE) {
			move_range(v->src, v->start, v->len, RST_STEP_VMA_MOVE);
		} else {
			long ret = sys_mmap((void *)v->start, v->len, (int)v->prot,
					    (int)(v->flags | MAP_FIXED), v->fd, (long)v->pgoff);
			check_at(ret, v->start, RST_STEP_VMA_MAP, v->start);
		}
	}
	for (uint32_t i = 0; i < a->nr_vmas; i++) {
		struct rst_vma *v = &a->vmas[i];
		check(sys_mprotect((void *)v->start, v->len, (int)v->prot), RST_STEP_VMA_PROT, v->start);
	}
}

/* What sendmsg() reads: struct msghdr and one SCM_RIGHTS cmsg, spelled out. */
struct rst_iov {
	void *base;
	uint64_t len;
};
struct rst_msghdr {
	void *name;
	int32_t namelen, pad;
	struct rst_iov *iov;
	uint64_t iovlen;
	void *control;
	uint64_t controllen;
	uint32_t flags, pad2;
};
struct rst_cmsg_fd {
	uint64_t len;
	int32_t level, type;
	int32_t fd, pad;
};
#define RST_SOL_SOCKET 1
#define RST_SCM_RIGHTS 1

static void send_uffd(struct rst_args *a, long uffd)
{
	struct rst_lazy m;
	struct rst_iov iov = { &m, sizeof(m) };
	struct rst_cmsg_fd c = { 16 + sizeof(int32_t), RST_SOL_SOCKET, RST_SCM_RIGHTS, (int32_t)uffd, 0 };
	struct rst_msghdr h;

	blob_memset(&m, 0, sizeof(m));
	blob_memset(&h, 0, sizeof(h));
	m.tag = 'U';
	m.pid = dumped_pid(a);
	h.iov = &iov;
	h.iovlen = 1;
	h.control = &c;
	h.controllen = sizeof(c);
	check(sys_call3(__NR_sendmsg, a->lazy_fd, &h, 0), RST_STEP_LAZY, (uint64_t)a->lazy_fd);
}

/* Lazy restore: the empty private VMAs go to the driver's page server
 * (struct rst_lazy in restorer-abi.h). */
static void register_lazy(struct rst_args *a)
{
	struct uffdio_api api;
	long uffd;

	if (a->lazy_fd < 0 || !a->nr_lazy)
		return;
	uffd = sys_call1(__NR_userfaultfd, O_CLOEXEC_RST | O_NONBLOCK_RST);
	check(uffd, RST_STEP_LAZY, 0);
	blob_memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
		       UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	check(sys_call3(__NR_ioctl, uffd, RST_UFFDIO_API, &api), RST_STEP_LAZY, 0);
	for (uint32_t i = 0; i < a->nr_lazy; i++) {
		struct uffdio_register reg;
		blob_memset(&reg, 0, sizeof(reg));
		reg.range.start = a->lazy[i].start;
		reg.range.len = a->lazy[i].len;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		check(sys_call3(__NR_ioctl, uffd, RST_UFFDIO_REGISTER, &reg), RST_STEP_LAZY,
		      a->lazy[i].start);
	}
	send_uffd(a, uffd);
	sys_close(uffd);
	if (!a->shared_fdt_from)
		sys_close(a->lazy_fd);
}

static void close_fds(struct rst_args *a)
{
	for (uint32_t i = 0; i < a->nr_close_fds; i++)
		sys_close(a->close_fds[i]);
}

static void set_mm(struct rst_args *a)
{
	int exe_fd = (int)a->mm.exe_fd;
	long ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (long)&a->mm, sizeof(a->mm), 0);
	if (ret < 0 && exe_fd >= 0) {
		/* The kernel may refuse the exe file (e.g. still mapped as
		 * the old exe): the mm layout matters more. */
		a->mm.exe_fd = (uint32_t)-1;
		ret = sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (long)&a->mm, sizeof(a->mm), 0);
	}
	if (exe_fd >= 0)
		sys_close(exe_fd);
	check(ret, RST_STEP_MM_MAP, 0);
}

static int siginfo_signo(const struct rst_siginfo *si)
{
	int32_t signo;
	blob_memcpy(&signo, si->raw, sizeof(signo));
	return signo;
}

static void queue_shared_pending(struct rst_args *a)
{
	long pid = sys_getpid();
	for (uint32_t i = 0; i < a->nr_shared_pending; i++) {
		struct rst_siginfo *si = &a->shared_pending[i];
		long ret = sys_call3(__NR_rt_sigqueueinfo, pid, siginfo_signo(si), si->raw);
		check(ret, RST_STEP_SIGQUEUE, (uint64_t)siginfo_signo(si));
	}
}

static void set_pdeathsig(struct rst_args *a)
{
	check(sys_prctl(PR_SET_PDEATHSIG, a->pdeathsig, 0, 0, 0), RST_STEP_THREAD_STATE, (uint64_t)a->pdeathsig);
}

#define PR_TIMER_CREATE_RESTORE_IDS 77
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define IOPRIO_WHO_PROCESS 1
#define TIMER_ID_TRIES 65536

/* Step 8: the main thread's NUMA policy, inherited by the threads. */
static void set_mempolicy(struct rst_args *a)
{
	struct rst_identity *id = &a->ident;
	if (id->mempolicy_mode < 0)
		return;
	long ret = sys_call3(__NR_set_mempolicy, id->mempolicy_mode, id->mempolicy_nodes,
			     RST_NODE_WORDS * 64 + 1);
	check(ret, RST_STEP_SCHED, (uint64_t)id->mempolicy_mode);
}

static void set_itimers(struct rst_args *a)
{
	if (!a->has_itimers)
		return;
	for (int which = 0; which < 3; which++)
		check(sys_call3(__NR_setitimer, which, a->itimers[which].v, 0), RST_STEP_TIMERS,
		      (uint64_t)which);
}

/* struct sigevent as the kernel reads it. */
struct raw_sigevent {
	uint64_t value;
	int32_t signo, notify;
	int32_t tid;
	int32_t pad[11];
};

static long create_timer(struct rst_posix_timer *t, int exact)
{
	struct raw_sigevent ev;
	int32_t id = t->id;

	blob_memset(&ev, 0, sizeof(ev));
	ev.value = t->sigval;
	ev.signo = t->signo;
	ev.notify = t->notify;
	ev.tid = t->notify_tid;
	long ret = sys_call3(__NR_timer_create, t->clock, &ev, &id);
	if (ret < 0)
		return ret;
	if (exact && id != t->id)
		return -17; /* EEXIST: the kernel ignored the wanted id */
	return id;
}

/* Without PR_TIMER_CREATE_RESTORE_IDS the kernel hands out ids in
 * order: create (and delete) timers until the wanted id comes up.
 * Timers are restored in increasing id order. */
static long create_timer_linear(struct rst_posix_timer *t)
{
	for (int i = 0; i < TIMER_ID_TRIES; i++) {
		long id = create_timer(t, 0);
		if (id < 0 || id == t->id)
			return id;
		sys_call1(__NR_timer_delete, id);
		if (id > t->id)
			return -17;
	}
	return -17;
}

static void set_posix_timers(struct rst_args *a)
{
	if (!a->nr_timers)
		return;
	int exact = sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) == 0;
	for (uint32_t i = 0; i < a->nr_timers && i < RST_MAX_TIMERS; i++) {
		struct rst_posix_timer *t = &a->timers[i];
		long ret = exact ? create_timer(t, 1) : create_timer_linear(t);
		check(ret, RST_STEP_TIMERS, (uint64_t)t->id);
		check(sys_call4(__NR_timer_settime, t->id, 0, t->its, 0), RST_STEP_TIMERS,
		      (uint64_t)t->id);
	}
	if (exact)
		sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
}

/* struct sched_attr, SCHED_ATTR_SIZE_VER0 (no utilization clamps). */
struct raw_sched_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

static void set_sched(struct rst_thread *t)
{
	struct rst_sched *s = &t->sched;
	struct raw_sched_attr attr;

	if (!s->set)
		return;
	blob_memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.policy = s->policy;
	attr.flags = s->flags;
	attr.nice = s->nice;
	attr.priority = s->priority;
	attr.runtime = s->dl_runtime;
	attr.deadline = s->dl_deadline;
	attr.period = s->dl_period;
	check(sys_call3(__NR_sched_setattr, 0, &attr, 0), RST_STEP_SCHED, (uint64_t)t->tid);
	if (s->affinity_words && s->affinity_words <= RST_CPU_WORDS)
		check(sys_call3(__NR_sched_setaffinity, 0, s->affinity_words * 8, s->affinity),
		      RST_STEP_SCHED, (uint64_t)t->tid);
	if (s->ioprio)
		check(sys_call3(__NR_ioprio_set, IOPRIO_WHO_PROCESS, 0, s->ioprio), RST_STEP_SCHED,
		      (uint64_t)t->tid);
}

struct raw_cap_header {
	uint32_t version;
	int32_t pid;
};

struct raw_cap_data {
	uint32_t eff, prm, inh;
};

static void capset(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct raw_cap_header h = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
	struct raw_cap_data d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};
	check(sys_call2(__NR_capset, &h, d), RST_STEP_CAPS, prm);
}

/* Before the uid change: the bounding set, and securebits that keep
 * every capability through setresuid. */
static void drop_bounding(struct rst_identity *id)
{
	for (uint32_t cap = 0; cap <= id->last_cap && cap < 64; cap++) {
		if (id->cap_bnd & (1ULL << cap))
			continue;
		if (sys_prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			check(sys_prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), RST_STEP_CAPS, cap);
	}
	check(sys_prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0), RST_STEP_CAPS, 0);
}

/* After it: inheritable and ambient (which need the cap permitted and
 * inheritable), the dumped securebits (need CAP_SETPCAP), last the
 * dumped sets — unless the host installs seccomp filters that need
 * CAP_SYS_ADMIN first (caps_after_seccomp): it does that capset itself. */
static void set_caps(struct rst_identity *id, int keep_sys_admin)
{
	const uint64_t setpcap = 1ULL << 8, sys_admin = 1ULL << 21;
	uint64_t lent = setpcap | (keep_sys_admin ? sys_admin : 0);
	capset(id->cap_prm | lent, id->cap_prm | lent, id->cap_inh);
	for (uint32_t cap = 0; cap <= id->last_cap && cap < 64; cap++)
		if (id->cap_amb & (1ULL << cap))
			check(sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), RST_STEP_CAPS,
			      cap);
	check(sys_prctl(PR_SET_SECUREBITS, id->securebits, 0, 0, 0), RST_STEP_CAPS, id->securebits);
	if (!keep_sys_admin)
		capset(id->cap_eff, id->cap_prm, id->cap_inh);
}

static void set_creds(struct rst_args *a)
{
	struct rst_creds *c = &a->creds;
	long ret;

	ret = sys_call2(__NR_setgroups, c->nr_groups, c->groups);
	check(ret, RST_STEP_CREDS, 0);
	ret = sys_call3(__NR_setresgid, c->gid, c->egid, c->sgid);
	check(ret, RST_STEP_CREDS, c->gid);
	/* setfsgid/setfsuid report the previous value, never an error:
	 * read back with -1 to see whether it took. */
	sys_call1(__NR_setfsgid, c->fsgid);
	if ((uint32_t)sys_call1(__NR_setfsgid, -1) != c->fsgid)
		fail(RST_STEP_CREDS, -1, c->fsgid);
	ret = sys_call3(__NR_setresuid, c->uid, c->euid, c->suid);
	check(ret, RST_STEP_CREDS, c->uid);
	sys_call1(__NR_setfsuid, c->fsuid);
	if ((uint32_t)sys_call1(__NR_setfsuid, -1) != c->fsuid)
		fail(RST_STEP_CREDS, -1, c->fsuid);
}

/* Step a: what the kernel keeps per thread. */
static void setup_thread(struct rst_args *a, struct rst_thread *t, int is_main)
{
	long tgid = sys_getpid(), tid = sys_gettid();

	check(sys_arch_prctl(ARCH_SET_FS, t->fs_base), RST_STEP_THREAD_STATE, (uint64_t)t->tid);
	check(sys_arch_prctl(ARCH_SET_GS, t->gs_base), RST_STEP_THREAD_STATE, (uint64_t)t->tid);
	sys_call1(__NR_set_tid_address, t->clear_tid_addr);
	if (t->robust_len)
		check(sys_call2(__NR_set_robust_list, t->robust_list, t->robust_len),
		      RST_STEP_THREAD_STATE, (uint64_t)t->tid);
	if (t->rseq_len)
		check(sys_call4(__NR_rseq, t->rseq_addr, t->rseq_len, 0, t->rseq_sig),
		      RST_STEP_THREAD_STATE, (uint64_t)t->tid);
	if (t->comm[0])
		sys_prctl(PR_SET_NAME, (long)t->comm, 0, 0, 0);
	set_sched(t);
	for (uint32_t i = 0; i < t->nr_pending; i++) {
		struct rst_siginfo *si = &t->pending[i];
		long ret = sys_call4(__NR_rt_tgsigqueueinfo, tgid, tid, siginfo_signo(si), si->raw);
		check(ret, RST_STEP_SIGQUEUE, (uint64_t)siginfo_signo(si));
	}
	if (a->ident.set && !a->ident.plain)
		drop_bounding(&a->ident);
	if (a->creds.set)
		set_creds(a);
	if (a->ident.plain)
		capset(a->ident.cap_eff, a->ident.cap_prm, a->ident.cap_inh);
	else if (a->ident.set)
		set_caps(&a->ident, (int)a->caps_after_seccomp);
	if (a->ident.no_new_privs)
		check(sys_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), RST_STEP_CAPS, 0);
	/* A change of creds clears pdeathsig (and dumpable, see
	 * finish_thread). */
	if (a->creds.set && is_main)
		set_pdeathsig(a);
}

/* Every thread's creds change reset the mm's dumpable flag: set it once
 * they are all done. */
static void set_dumpable(struct rst_args *a)
{
	if (a->ident.dumpable >= 0)
		check(sys_prctl(PR_SET_DUMPABLE, a->ident.dumpable, 0, 0, 0), RST_STEP_CAPS,
		      (uint64_t)a->ident.dumpable);
	else if (a->creds.set)
		sys_prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Steps b and c. */
__attribute__((noreturn))
static void finish_thread(struct rst_args *a)
{
	if (__atomic_sub_fetch(&a->threads_left, 1, __ATOMIC_SEQ_CST) == 0) {
		struct rst_ready r;
		set_dumpable(a);
		blob_memset(&r, 0, sizeof(r));
		r.tag = 'R';
		r.pid = dumped_pid(a);
		r.args = (uint64_t)a;
		sys_write(a->notify_fd, &r, sizeof(r));
		if (!a->shared_fdt_from) /* else the host closes it (restorer-abi.h) */
			sys_close(a->notify_fd);
	}
	for (;;)
		sys_call0(__NR_pause);
}

static void thread_main(void *arg)
{
	struct rst_thread *t = arg;
	setup_thread(rst_args_ptr, t, 0);
	finish_thread(rst_args_ptr);
}

static void clone_threads(struct rst_args *a)
{
	for (int32_t i = 1; i < a->nr_threads; i++) {
		struct rst_thread *t = &a->threads[i];
		int32_t tid = t->tid;
		struct clone_args ca;

		blob_memset(&ca, 0, sizeof(ca));
		ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			   CLONE_SYSVSEM;
		ca.stack = t->stack_top - CLONE_STACK_HINT;
		ca.stack_size = CLONE_STACK_HINT;
		ca.set_tid = (uint64_t)&tid;
		ca.set_tid_size = 1;
		long ret = rst_clone_thread(&ca, sizeof(ca), thread_main, t);
		check(ret, RST_STEP_CLONE, (uint64_t)tid);
	}
}

void restorer_main(struct rst_args *a)
{
	rst_args_ptr = a;
	if (a->magic != RST_MAGIC)
		sys_exit_group(1);

	move_specials(a, 0);
	unmap_old(a);
	build_vmas(a);
	register_lazy(a);
	move_specials(a, 1);
	close_fds(a);
	set_mm(a);
	queue_shared_pending(a);
	set_pdeathsig(a);
	set_mempolicy(a);
	clone_threads(a);
	set_itimers(a);
	set_posix_timers(a);

	setup_thread(a, &a->threads[0], 1);
	finish_thread(a);
}
