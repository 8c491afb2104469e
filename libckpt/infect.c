/*
 * infect: run the parasite blob inside a frozen task (see infect.h and
 * include/parasite-abi.h for the area layout and the protocol).
 *
 * Threads and their states.  Every thread starts in the PTRACE_EVENT_STOP
 * freeze_tree() left it in.  To run code in a thread we set its registers
 * and resume it; to give it back we always bring it into an event stop
 * first (PTRACE_INTERRUPT, then resume) and only then put back its frozen
 * registers: the kernel's syscall-restart logic runs when a thread leaves
 * an event stop, not when it leaves a syscall-exit-stop, so a thread frozen
 * inside read() or nanosleep() goes on with its syscall as if nothing had
 * happened.
 *
 * Safety when we die.  No thread ever runs parasite code, or stands in a
 * ptrace stop where resuming it would run something else than its own
 * code, without a way back to its frozen state:
 *   - in the area, each thread has a restore stub (its frozen registers
 *     and code that reloads them, see parasite-abi.h); the daemon jumps to
 *     it on EOF of its socket, and the syscall gadget falls into that same
 *     self-cure;
 *   - before the area exists (the mmap) and after it is gone (the munmap),
 *     the leader uses an rt_sigframe written below its stack's red zone
 *     (where a signal frame would go) and a `mov $15,%eax; syscall`
 *     sequence found in the task's code (libc's __restore_rt): the leader
 *     is started *at* that sequence, and at its syscall-entry stop the
 *     syscall is changed into mmap/munmap with the return address still on
 *     the sequence.  Whenever we die, it sigreturns to its frozen state
 *     (rt_sigreturn drops a pending restart_block: a leader frozen in a
 *     restarted nanosleep would see EINTR if we die in that window).
 *     Without such a sequence we fall back to a `syscall` in the [vdso]
 *     (or poked at the leader's rip), with a window of a few ptrace
 *     round trips where our death would derail the leader.
 * Leaks on self-cure: the area, and the on-stack frame's bytes below the
 * red zone (garbage there is what a signal would leave too).
 *
 * Signals.  Threads we run have every signal blocked (SIGKILL/SIGSTOP
 * aside).  A signal-delivery-stop seen while we run a thread is
 * suppressed and the signal re-sent to the task with kill() when we give
 * the task back; a fault (SIGSEGV...) means the parasite crashed: we fail
 * and put the thread back.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "infect.h"
#include "parasite-abi.h"
#include "sigframe.h"

extern const unsigned char parasite_blob[];
extern const unsigned long parasite_blob_size, parasite_blob_mem_size;
extern const unsigned long parasite_off_daemon, parasite_off_syscall;

#define ALIGN(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))
#define CONNECT_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS 10000
#define RED_ZONE_GAP 512

_Static_assert(sizeof(struct parasite_sigaction) == sizeof(struct parasite_raw_sigaction),
	       "sigaction layouts");

enum thread_state { TH_EVENT_STOP, TH_SYSCALL_STOP, TH_SIGNAL_STOP, TH_RUNNING, TH_DEAD };
enum stop_kind { STOP_EVENT, STOP_SYSCALL, STOP_FAULT };

struct infect_thread {
	const struct thread_regs *orig;
	struct parasite_slot slot;
	enum thread_state state;
	bool touched; /* registers or sigmask differ from orig */
};

/* The leader's rt_sigframe below its stack (see the top comment). */
struct stack_frame {
	uint64_t addr, rsp;
	size_t len;
	uint8_t *saved; /* the bytes it overwrote */
	bool written;
};

struct infect_ctl {
	const struct frozen_task *task;
	int nr;
	struct infect_thread *th;
	uint64_t area;
	size_t area_size;
	int listen_fd, sock, remote_fd;
	uint64_t restore_rt;   /* `mov $15,%eax; syscall` in the task, or 0 */
	uint64_t vdso_syscall; /* `syscall` in the task's [vdso], or 0 */
	struct stack_frame sf;
	uint64_t pending;      /* signals suppressed, to re-send */
};

static int remote_io(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0)
			  : process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

/* ---- finding code in the task ---- */

static uint64_t scan_range(pid_t pid, uint64_t start, uint64_t end, const void *pat, size_t plen)
{
	const size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	uint64_t found = 0;
	for (uint64_t at = start; buf && at < end;) {
		size_t len = end - at < chunk ? end - at : chunk;
		if (remote_io(pid, at, buf, len, false))
			break;
		uint8_t *hit = memmem(buf, len, pat, plen);
		if (hit) {
			found = at + (uint64_t)(hit - buf);
			break;
		}
		if (at + len >= end)
			break;
		at += len - plen + 1;
	}
	free(buf);
	return found;
}

/* `syscall` in [vdso], and a `mov $15,%eax|%rax; syscall` in the task's
 * executable file mappings (libc first). */
static void find_gadgets(struct infect_ctl *ctl)
{
	static const uint8_t sys[] = { 0x0f, 0x05 };
	static const uint8_t rt1[] = { 0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	static const uint8_t rt2[] = { 0xb8, 0x0f, 0, 0, 0, 0x0f, 0x05 };
	char path[64], line[512];
	pid_t pid = ctl->task->pid;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	for (int pass = 0; pass < 2 && (!ctl->restore_rt || !ctl->vdso_syscall); pass++) {
		FILE *f = fopen(path, "re");
		if (!f)
			return;
		while (fgets(line, sizeof(line), f)) {
			unsigned long start, end;
			char perms[8], name[256] = "";
			if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &start, &end, perms, name) < 3 ||
			    perms[2] != 'x')
				continue;
			if (!strcmp(name, "[vdso]")) {
				if (!ctl->vdso_syscall)
					ctl->vdso_syscall = scan_range(pid, start, end, sys, sizeof(sys));
				continue;
			}
			if (ctl->restore_rt || name[0] != '/' ||
			    (pass == 0) != (strstr(name, "libc") != NULL))
				continue;
			ctl->restore_rt = scan_range(pid, start, end, rt1, sizeof(rt1));
			if (!ctl->restore_rt)
				ctl->restore_rt = scan_range(pid, start, end, rt2, sizeof(rt2));
		}
		fclose(f);
	}
}

/* ---- ptrace stops ---- */

static bool is_fault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
	       sig == SIGTRAP || sig == SIGSYS;
}

/*
 * Wait for thread `idx` to stop.  Signal-delivery-stops of ordinary
 * signals are suppressed (resuming with `resume`) and remembered.
 * Returns a stop_kind, -EAGAIN (WNOHANG, still running) or -ESRCH.
 */
static int wait_stop(struct infect_ctl *ctl, int idx, int resume, int flags)
{
	struct infect_thread *t = &ctl->th[idx];
	for (;;) {
		int status;
		pid_t r = waitpid(t->slot.tid, &status, __WALL | flags);
		if (r == 0)
			return -EAGAIN;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
			t->state = TH_DEAD;
			return -ESRCH;
		}
		if (!WIFSTOPPED(status))
			continue;
		int sig = WSTOPSIG(status);
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			t->state = TH_EVENT_STOP;
			return STOP_EVENT;
		}
		if (sig == (SIGTRAP | 0x80)) {
			t->state = TH_SYSCALL_STOP;
			return STOP_SYSCALL;
		}
		t->state = TH_SIGNAL_STOP;
		if (is_fault(sig)) {
			struct user_regs_struct r = { 0 };
			ptrace(PTRACE_GETREGS, t->slot.tid, 0, &r);
			fprintf(stderr, "pid %d: tid %d: parasite got signal %d at rip %#llx (area %#lx)\n",
				ctl->task->pid, t->slot.tid, sig, r.rip, (unsigned long)ctl->area);
			return STOP_FAULT;
		}
		ctl->pending |= 1ULL << (sig - 1);
		if (ptrace(resume, t->slot.tid, 0, 0) < 0)
			return -ESRCH;
		t->state = TH_RUNNING;
	}
}

/* Resume to the next syscall stop (entry or exit). */
static int next_syscall_stop(struct infect_ctl *ctl, int idx)
{
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, ctl->th[idx].slot.tid, 0, 0) < 0)
			return -errno;
		ctl->th[idx].state = TH_RUNNING;
		int ret = wait_stop(ctl, idx, PTRACE_SYSCALL, 0);
		if (ret == STOP_SYSCALL)
			return 0;
		if (ret == STOP_FAULT)
			return -EFAULT;
		if (ret < 0)
			return ret;
		/* an event stop (group stop): go on */
	}
}

/* Bring thread `idx` into an event stop, from wherever it is. */
static int interrupt_stop(struct infect_ctl *ctl, int idx)
{
	struct infect_thread *t = &ctl->th[idx];
	if (t->state == TH_EVENT_STOP)
		return 0;
	if (t->state == TH_DEAD)
		return -ESRCH;
	if (ptrace(PTRACE_INTERRUPT, t->slot.tid, 0, 0) < 0)
		return -errno;
	/* From a syscall or signal stop the trap is taken on the way back to
	 * user mode, before any instruction; a fault signal is dropped. */
	if (t->state != TH_RUNNING && ptrace(PTRACE_CONT, t->slot.tid, 0, 0) < 0)
		return -errno;
	t->state = TH_RUNNING;
	for (;;) {
		int ret = wait_stop(ctl, idx, PTRACE_CONT, 0);
		if (ret == STOP_EVENT)
			return 0;
		if (ret < 0)
			return ret;
		if (ptrace(PTRACE_CONT, t->slot.tid, 0, 0) < 0)
			return -errno;
		t->state = TH_RUNNING;
	}
}

static int set_regs(struct infect_ctl *ctl, int idx, struct user_regs_struct *r)
{
	struct infect_thread *t = &ctl->th[idx];
	uint64_t all = ~0ULL;
	if (!t->touched &&
	    ptrace(PTRACE_SETSIGMASK, t->slot.tid, (void *)sizeof(all), &all) < 0)
		return -errno;
	t->touched = true;
	return ptrace(PTRACE_SETREGS, t->slot.tid, 0, r) < 0 ? -errno : 0;
}

/* Put back the frozen state of thread `idx`: it ends in an event stop. */
static int restore_thread(struct infect_ctl *ctl, int idx)
{
	struct infect_thread *t = &ctl->th[idx];
	int ret;
	if (!t->touched)
		return 0;
	ret = interrupt_stop(ctl, idx);
	if (ret)
		goto out;
	/* Registers last: should we die before, the thread is still on the
	 * parasite's code and cures itself. */
	struct iovec iov = { t->orig->xstate, t->orig->xstate_len };
	if (ptrace(PTRACE_SETREGSET, t->slot.tid, (void *)NT_X86_XSTATE, &iov) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, t->slot.tid, (void *)sizeof(uint64_t), &t->orig->sigmask) < 0 ||
	    ptrace(PTRACE_SETREGS, t->slot.tid, 0, &t->orig->regs) < 0)
		ret = -errno;
	else
		t->touched = false;
out:
	if (ret)
		fprintf(stderr, "pid %d: tid %d: cannot restore registers: %s\n", ctl->task->pid,
			t->slot.tid, strerror(-ret));
	return ret;
}

/* ---- injected syscalls ---- */

static void set_args(struct user_regs_struct *r, long nr, const long a[6])
{
	r->orig_rax = (uint64_t)nr;
	r->rax = (uint64_t)nr;
	r->rdi = (uint64_t)a[0];
	r->rsi = (uint64_t)a[1];
	r->rdx = (uint64_t)a[2];
	r->r10 = (uint64_t)a[3];
	r->r8 = (uint64_t)a[4];
	r->r9 = (uint64_t)a[5];
}

static struct user_regs_struct base_regs(const struct infect_thread *t)
{
	struct user_regs_struct r = t->orig->regs;
	r.orig_rax = (uint64_t)-1; /* no syscall restart when it leaves its stop */
	r.eflags &= ~0x500ULL;     /* TF, DF */
	return r;
}

/* One syscall through the `syscall` at `gadget`; rsp = `rsp`. */
static int syscall_at(struct infect_ctl *ctl, int idx, uint64_t gadget, uint64_t rsp, long nr,
		      const long a[6], long *result)
{
	struct user_regs_struct r = base_regs(&ctl->th[idx]);
	set_args(&r, nr, a);
	r.orig_rax = (uint64_t)-1;
	r.rip = gadget;
	r.rsp = rsp;
	int ret = set_regs(ctl, idx, &r);
	if (!ret)
		ret = next_syscall_stop(ctl, idx); /* entry */
	if (!ret)
		ret = next_syscall_stop(ctl, idx); /* exit */
	if (!ret && ptrace(PTRACE_GETREGS, ctl->th[idx].slot.tid, 0, &r) < 0)
		ret = -errno;
	if (!ret)
		*result = (long)r.rax;
	return ret;
}

/*
 * The leader starts on the rt_sigreturn sequence with rsp on its on-stack
 * frame; at the syscall-entry stop the syscall becomes `nr`, returning to
 * the same sequence.  See the top comment.
 */
static int syscall_via_sigreturn(struct infect_ctl *ctl, long nr, const long a[6], long *result)
{
	struct infect_thread *t = &ctl->th[0];
	struct user_regs_struct r = base_regs(t);
	r.rip = ctl->restore_rt;
	r.rsp = ctl->sf.rsp;
	int ret = set_regs(ctl, 0, &r);
	if (!ret)
		ret = next_syscall_stop(ctl, 0);
	if (!ret && ptrace(PTRACE_GETREGS, t->slot.tid, 0, &r) < 0)
		ret = -errno;
	if (ret)
		return ret;
	if (r.orig_rax != __NR_rt_sigreturn)
		return -EPROTO;
	set_args(&r, nr, a);
	r.rax = (uint64_t)-ENOSYS;
	r.rip = ctl->restore_rt;
	r.rsp = ctl->sf.rsp;
	if (ptrace(PTRACE_SETREGS, t->slot.tid, 0, &r) < 0)
		return -errno;
	ret = next_syscall_stop(ctl, 0);
	if (!ret && ptrace(PTRACE_GETREGS, t->slot.tid, 0, &r) < 0)
		ret = -errno;
	if (!ret)
		*result = (long)r.rax;
	return ret;
}

/* Last resort: a `syscall` poked over the leader's code at rip. */
static int syscall_poked(struct infect_ctl *ctl, long nr, const long a[6], long *result)
{
	pid_t tid = ctl->th[0].slot.tid;
	uint64_t at = ctl->th[0].orig->regs.rip;
	errno = 0;
	long word = ptrace(PTRACE_PEEKTEXT, tid, (void *)at, 0);
	if (errno)
		return -errno;
	long poked = (word & ~0xffffL) | 0x050f;
	if (ptrace(PTRACE_POKETEXT, tid, (void *)at, (void *)poked) < 0)
		return -errno;
	int ret = syscall_at(ctl, 0, at, ctl->th[0].orig->regs.rsp, nr, a, result);
	if (ptrace(PTRACE_POKETEXT, tid, (void *)at, (void *)word) < 0 && !ret)
		ret = -errno;
	return ret;
}

/* mmap/munmap in the leader, when the area is not there to help. */
static int leader_syscall(struct infect_ctl *ctl, long nr, const long a[6], long *result)
{
	if (ctl->sf.written)
		return syscall_via_sigreturn(ctl, nr, a, result);
	if (ctl->vdso_syscall)
		return syscall_at(ctl, 0, ctl->vdso_syscall, ctl->th[0].orig->regs.rsp, nr, a, result);
	return syscall_poked(ctl, nr, a, result);
}

/* A syscall in thread `idx` through the blob's gadget (self-curing). */
static int blob_syscall(struct infect_ctl *ctl, int idx, long nr, const long a[6], long *result)
{
	return syscall_at(ctl, idx, ctl->area + parasite_off_syscall, ctl->th[idx].slot.stack_top,
			  nr, a, result);
}

/* ---- the leader's on-stack frame ---- */

static int write_stack_frame(struct infect_ctl *ctl, const struct sigframe_altstack *alt)
{
	const struct thread_regs *o = ctl->th[0].orig;
	struct stack_frame *sf = &ctl->sf;
	pid_t pid = ctl->task->pid;
	int ret;

	if (!sf->saved) {
		sf->len = sigframe_size(o->xstate_len);
		sf->addr = (o->regs.rsp - RED_ZONE_GAP - sf->len) & ~63ULL;
		sf->saved = malloc(sf->len);
		if (!sf->saved)
			return -ENOMEM;
		ret = remote_io(pid, sf->addr, sf->saved, sf->len, false);
		if (ret) {
			free(sf->saved);
			sf->saved = NULL;
			return ret;
		}
	}
	uint8_t *frame = calloc(1, sf->len);
	if (!frame)
		return -ENOMEM;
	ret = sigframe_build(frame, sf->addr, &o->regs, o->xstate, o->xstate_len, o->sigmask, alt,
			     &sf->rsp);
	if (!ret)
		ret = remote_io(pid, sf->addr, frame, sf->len, true);
	free(frame);
	if (!ret)
		sf->written = true;
	return ret;
}

static void restore_stack_bytes(struct infect_ctl *ctl)
{
	if (ctl->sf.written)
		remote_io(ctl->task->pid, ctl->sf.addr, ctl->sf.saved, ctl->sf.len, true);
	ctl->sf.written = false;
}

/* ---- the area ---- */

struct area_layout {
	size_t args_off, regions_off, region, daemon_stack_off, size;
};

static void compute_layout(const struct frozen_task *task, struct area_layout *l)
{
	l->args_off = parasite_blob_mem_size;
	l->regions_off = ALIGN(l->args_off + sizeof(struct parasite_args) +
			       (size_t)task->nr_threads * sizeof(struct parasite_slot), 64);
	l->region = PARASITE_STUB_SIZE + PARASITE_SCRATCH_SIZE + PARASITE_THREAD_STACK;
	l->daemon_stack_off = l->regions_off + (size_t)task->nr_threads * l->region;
	l->size = ALIGN(l->daemon_stack_off + PARASITE_DAEMON_STACK, 4096);
}

/*
 * What the kernel does to a thread leaving a ptrace stop without a signal
 * handler to run: an interrupted syscall is restarted, through
 * restart_syscall when it left a restart_block.
 */
static void fixup_resume(struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return;
	switch (-(long)r->rax) {
	case 512: /* ERESTARTSYS */
	case 513: /* ERESTARTNOINTR */
	case 514: /* ERESTARTNOHAND */
		r->rax = r->orig_rax;
		r->rip -= 2;
		break;
	case 516: /* ERESTART_RESTARTBLOCK */
		r->rax = __NR_restart_syscall;
		r->rip -= 2;
		break;
	}
}

/* The restore stub of one thread at `addr` (PARASITE_STUB_SIZE bytes):
 * its registers, then movabs $regs,%rsp; pop each; popfq; pop %rsp;
 * jmp *0(%rip); .quad rip.  Returns the stub's entry address. */
static uint64_t build_restore_stub(uint8_t *buf, uint64_t addr, const struct user_regs_struct *orig)
{
	static const uint8_t pops[] = {
		0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, /* r15 r14 r13 r12 */
		0x5d, 0x5b, 0x41, 0x5b, 0x41, 0x5a,             /* rbp rbx r11 r10 */
		0x41, 0x59, 0x41, 0x58, 0x58, 0x59,             /* r9 r8 rax rcx */
		0x5a, 0x5e, 0x5f, 0x9d, 0x5c,                   /* rdx rsi rdi popfq rsp */
		0xff, 0x25, 0, 0, 0, 0,                         /* jmp *0(%rip) */
	};
	struct user_regs_struct r = *orig;
	fixup_resume(&r);
	uint64_t regs[] = { r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9,
			    r.r8,  r.rax, r.rcx, r.rdx, r.rsi, r.rdi, r.eflags, r.rsp };
	_Static_assert(sizeof(regs) + 16 + 10 + sizeof(pops) + 8 <= PARASITE_STUB_SIZE, "stub");
	memcpy(buf, regs, sizeof(regs));
	uint8_t *code = buf + ALIGN(sizeof(regs), 16);
	code[0] = 0x48; /* movabs $addr, %rsp */
	code[1] = 0xbc;
	memcpy(code + 2, &addr, 8);
	memcpy(code + 10, pops, sizeof(pops));
	memcpy(code + 10 + sizeof(pops), &r.rip, 8);
	return addr + (uint64_t)(code - buf);
}

/* Build args + stubs locally and write them, and the blob, to the area. */
static int load_area(struct infect_ctl *ctl, const struct area_layout *l, const char *name)
{
	size_t len = l->daemon_stack_off - l->args_off;
	uint8_t *buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	struct parasite_args *a = (struct parasite_args *)buf;
	a->magic = PARASITE_ARGS_MAGIC;
	a->nr_threads = (uint32_t)ctl->nr;
	a->sock_name_len = (uint32_t)strlen(name);
	memcpy(a->sock_name, name, a->sock_name_len);
	for (int i = 0; i < ctl->nr; i++) {
		const struct thread_regs *o = ctl->th[i].orig;
		size_t off = l->regions_off + (size_t)i * l->region;
		struct parasite_slot *s = &ctl->th[i].slot;
		s->restore_stub = build_restore_stub(buf + off - l->args_off, ctl->area + off, &o->regs);
		s->sigmask = o->sigmask;
		s->scratch = ctl->area + off + PARASITE_STUB_SIZE;
		s->stack_top = s->scratch + PARASITE_SCRATCH_SIZE + PARASITE_THREAD_STACK;
		a->slots[i] = *s;
	}
	pid_t pid = ctl->task->pid;
	int ret = remote_io(pid, ctl->area, (void *)parasite_blob, parasite_blob_size, true);
	if (!ret)
		ret = remote_io(pid, ctl->area + l->args_off, buf, len, true);
	free(buf);
	if (ret)
		fprintf(stderr, "pid %d: cannot load the parasite: %s\n", pid, strerror(-ret));
	return ret;
}

static int map_area(struct infect_ctl *ctl, size_t size)
{
	long a[6] = { 0, (long)size, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 };
	long addr;
	int ret = leader_syscall(ctl, __NR_mmap, a, &addr);
	if (!ret && addr < 0 && addr > -4096)
		ret = (int)addr;
	if (ret) {
		fprintf(stderr, "pid %d: cannot map the parasite area: %s\n", ctl->task->pid,
			strerror(-ret));
		return ret;
	}
	ctl->area = (uint64_t)addr;
	ctl->area_size = size;
	return 0;
}

/* ---- the socket ---- */

static int listen_socket(struct infect_ctl *ctl, char *name, size_t size)
{
	static unsigned counter;
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = (uint32_t)time(NULL);
	snprintf(name, size, "ckpt-parasite-%d-%d-%u-%08x", getpid(), ctl->task->pid, counter++, rnd);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	memcpy(addr.sun_path + 1, name, strlen(name));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, 1) < 0) {
		fprintf(stderr, "pid %d: parasite socket: %m\n", ctl->task->pid);
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	ctl->listen_fd = fd;
	return 0;
}

/* Wait until `fd` is readable while watching the daemon thread. */
static int wait_daemon(struct infect_ctl *ctl, int fd, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 5) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5) > 0)
			return 0;
		int ret = wait_stop(ctl, 0, PTRACE_CONT, WNOHANG);
		if (ret == -EAGAIN)
			continue;
		if (ret == STOP_FAULT)
			return -EFAULT;
		if (ret < 0)
			return ret;
		if (ptrace(PTRACE_CONT, ctl->th[0].slot.tid, 0, 0) < 0)
			return -errno;
		ctl->th[0].state = TH_RUNNING;
	}
	return -ETIMEDOUT;
}

/* The parasite says getpid(): the task's pid in its own namespace. */
static pid_t task_vpid(const struct frozen_task *t)
{
	return t->vpid ? t->vpid : t->pid;
}

/* The parasite's connection: anyone may connect to our abstract name
 * (listed in /proc/net/unix), so a connection from another process is
 * closed and the wait goes on, that a stranger cannot make the dump fail
 * by connecting first (up to STRANGERS_MAX of them). */
#define STRANGERS_MAX 64
static int accept_parasite(struct infect_ctl *ctl)
{
	for (int n = 0; n <= STRANGERS_MAX; n++) {
		int ret = wait_daemon(ctl, ctl->listen_fd, CONNECT_TIMEOUT_MS);
		if (ret)
			return ret;
		int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return -errno;
		struct ucred cred = { 0 };
		socklen_t clen = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
		    cred.pid == ctl->task->pid) {
			ctl->sock = fd;
			return 0;
		}
		fprintf(stderr, "pid %d: a connection to the parasite's socket from pid %d refused\n",
			ctl->task->pid, cred.pid);
		close(fd);
	}
	return -EPERM;
}

static int accept_daemon(struct infect_ctl *ctl)
{
	struct parasite_hello hello;
	int ret = accept_parasite(ctl);
	if (!ret)
		ret = wait_daemon(ctl, ctl->sock, CONNECT_TIMEOUT_MS);
	if (!ret && recv(ctl->sock, &hello, sizeof(hello), MSG_DONTWAIT) != sizeof(hello))
		ret = -EPROTO;
	if (!ret && (hello.magic != PARASITE_HELLO_MAGIC || hello.pid != task_vpid(ctl->task)))
		ret = -EPROTO;
	if (!ret)
		ctl->remote_fd = hello.sock_fd;
	if (ret)
		fprintf(stderr, "pid %d: parasite did not connect: %s\n", ctl->task->pid,
			strerror(-ret));
	return ret;
}

/* One command and its reply; reply->ret is the caller's to read. */
static int call_daemon_req(struct infect_ctl *ctl, const struct parasite_req *req,
			   struct parasite_reply *reply)
{
	int ret = 0;
	if (ctl->sock < 0)
		return -ENOTCONN;
	if (send(ctl->sock, req, sizeof(*req), MSG_NOSIGNAL) != sizeof(*req))
		ret = errno ? -errno : -EPROTO;
	if (!ret)
		ret = wait_daemon(ctl, ctl->sock, REPLY_TIMEOUT_MS);
	if (!ret && recv(ctl->sock, reply, sizeof(*reply), MSG_DONTWAIT) != sizeof(*reply))
		ret = -EPROTO;
	if (!ret && reply->cmd != req->cmd)
		ret = -EPROTO;
	return ret;
}

static int call_daemon_arg(struct infect_ctl *ctl, uint32_t cmd, uint32_t arg,
			   struct parasite_reply *reply)
{
	struct parasite_req req = { .cmd = cmd, .arg = arg };
	int ret = call_daemon_req(ctl, &req, reply);
	if (!ret)
		ret = reply->ret;
	if (ret)
		fprintf(stderr, "pid %d: parasite command %u: %s\n", ctl->task->pid, cmd,
			strerror(-ret));
	return ret;
}

static int call_daemon(struct infect_ctl *ctl, uint32_t cmd, struct parasite_reply *reply)
{
	return call_daemon_arg(ctl, cmd, 0, reply);
}

/* ---- start and cure ---- */

static int start_daemon(struct infect_ctl *ctl, const struct area_layout *l)
{
	struct user_regs_struct r = base_regs(&ctl->th[0]);
	r.rip = ctl->area + parasite_off_daemon;
	r.rsp = ctl->area + l->daemon_stack_off + PARASITE_DAEMON_STACK;
	r.rax = 0;
	int ret = set_regs(ctl, 0, &r);
	if (!ret && ptrace(PTRACE_CONT, ctl->th[0].slot.tid, 0, 0) < 0)
		ret = -errno;
	if (!ret)
		ctl->th[0].state = TH_RUNNING;
	return ret;
}

/* Remember the leader's altstack in its on-stack frame (before munmap). */
static void refresh_stack_frame(struct infect_ctl *ctl)
{
	struct parasite_reply r;
	if (!ctl->sf.written || call_daemon(ctl, PARASITE_CMD_GET_SIGALTSTACK, &r))
		return;
	struct sigframe_altstack alt = { r.u.altstack.sp, r.u.altstack.size, r.u.altstack.flags };
	write_stack_frame(ctl, &alt);
}

/* Stop the daemon, close its fd, unmap the area, put every thread back. */
static int teardown(struct infect_ctl *ctl)
{
	int ret = interrupt_stop(ctl, 0);
	long res, a[6] = { ctl->remote_fd };
	if (!ret && ctl->remote_fd >= 0 && ctl->area) {
		ret = blob_syscall(ctl, 0, __NR_close, a, &res);
		if (!ret)
			ctl->remote_fd = -1;
	}
	if (!ret && ctl->area) {
		long b[6] = { (long)ctl->area, (long)ctl->area_size };
		ret = leader_syscall(ctl, __NR_munmap, b, &res);
		if (!ret && res < 0)
			ret = (int)res;
		if (!ret)
			ctl->area = 0;
	}
	for (int i = 0; i < ctl->nr; i++) {
		int r = restore_thread(ctl, i);
		if (!ret)
			ret = r;
	}
	if (!ctl->th[0].touched)
		restore_stack_bytes(ctl);
	for (int sig = 1; sig <= 64; sig++)
		if (ctl->pending & (1ULL << (sig - 1)))
			kill(ctl->task->pid, sig);
	if (ret)
		fprintf(stderr, "pid %d: cannot remove the parasite: %s\n", ctl->task->pid,
			strerror(-ret));
	return ret;
}

static void ctl_free(struct infect_ctl *ctl)
{
	if (ctl->sock >= 0)
		close(ctl->sock);
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	free(ctl->sf.saved);
	free(ctl->th);
	free(ctl);
}

static struct infect_ctl *ctl_new(const struct frozen_task *task)
{
	struct infect_ctl *ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->th = calloc((size_t)task->nr_threads, sizeof(*ctl->th));
	if (!ctl->th) {
		free(ctl);
		return NULL;
	}
	ctl->task = task;
	ctl->nr = task->nr_threads;
	ctl->listen_fd = ctl->sock = ctl->remote_fd = -1;
	for (int i = 0; i < ctl->nr; i++) {
		ctl->th[i].orig = &task->threads[i];
		ctl->th[i].slot.tid = task->threads[i].tid;
		ctl->th[i].state = TH_EVENT_STOP;
	}
	return ctl;
}

int infect_start(const struct frozen_task *task, struct infect_ctl **out)
{
	struct area_layout l;
	char name[PARASITE_SOCK_NAME_MAX];
	struct infect_ctl *ctl = ctl_new(task);
	if (!ctl)
		return -ENOMEM;
	compute_layout(task, &l);
	int ret = listen_socket(ctl, name, sizeof(name));
	if (ret)
		goto fail_free;
	find_gadgets(ctl);
	if (ctl->restore_rt) {
		struct sigframe_altstack none = { 0, 0, SS_DISABLE };
		write_stack_frame(ctl, &none); /* on failure: the fallbacks */
	}
	ret = map_area(ctl, l.size);
	if (ret)
		goto fail;
	ret = load_area(ctl, &l, name);
	if (!ret)
		ret = start_daemon(ctl, &l);
	if (!ret)
		ret = accept_daemon(ctl);
	if (ret)
		goto fail;
	/* kept open: a snapshot (infect_snapshot) connects to it too */
	*out = ctl;
	return 0;
fail:
	teardown(ctl);
fail_free:
	ctl_free(ctl);
	return ret;
}

int infect_cure(struct infect_ctl *ctl)
{
	struct parasite_reply r;
	refresh_stack_frame(ctl);
	/* The daemon replies, then waits in recvmsg until we take it back. */
	call_daemon(ctl, PARASITE_CMD_FINI, &r);
	int ret = teardown(ctl);
	ctl_free(ctl);
	return ret;
}

int infect_get_sigactions(struct infect_ctl *ctl, struct parasite_sigaction sa[64])
{
	struct parasite_reply r;
	int ret = call_daemon(ctl, PARASITE_CMD_GET_SIGACTIONS, &r);
	if (!ret)
		memcpy(sa, r.u.sa, sizeof(r.u.sa));
	return ret;
}

int infect_get_misc(struct infect_ctl *ctl, struct parasite_misc *misc)
{
	struct parasite_reply r;
	int ret = call_daemon(ctl, PARASITE_CMD_GET_MISC, &r);
	if (!ret) {
		misc->brk = r.u.misc.brk;
		misc->pdeathsig = r.u.misc.pdeathsig;
	}
	return ret;
}

/* A syscall in thread idx >= 1 whose output lands in its scratch buffer;
 * the thread is put back right after. */
static int thread_query(struct infect_ctl *ctl, int idx, long nr, long a0, long a1, void *out,
			size_t len)
{
	struct infect_thread *t = &ctl->th[idx];
	long a[6] = { a0, a1 }, res;
	int ret = blob_syscall(ctl, idx, nr, a, &res);
	if (!ret && res < 0)
		ret = (int)res;
	if (!ret)
		ret = remote_io(ctl->task->pid, t->slot.scratch, out, len, false);
	int r = restore_thread(ctl, idx);
	if (!ret)
		ret = r;
	if (ret)
		fprintf(stderr, "pid %d: tid %d: syscall %ld: %s\n", ctl->task->pid, t->slot.tid, nr,
			strerror(-ret));
	return ret;
}

int infect_get_tid_address(struct infect_ctl *ctl, int idx, uint64_t *addr)
{
	struct parasite_reply r;
	if (idx < 0 || idx >= ctl->nr)
		return -EINVAL;
	if (idx > 0)
		return thread_query(ctl, idx, __NR_prctl, PR_GET_TID_ADDRESS,
				    (long)ctl->th[idx].slot.scratch, addr, sizeof(*addr));
	int ret = call_daemon(ctl, PARASITE_CMD_GET_TID_ADDRESS, &r);
	if (!ret)
		*addr = r.u.tid_address;
	return ret;
}

int infect_get_sigaltstack(struct infect_ctl *ctl, int idx, uint64_t *sp, uint64_t *size,
			   uint32_t *flags)
{
	struct parasite_reply r;
	if (idx < 0 || idx >= ctl->nr)
		return -EINVAL;
	if (idx > 0) {
		stack_t st;
		int ret = thread_query(ctl, idx, __NR_sigaltstack, 0, (long)ctl->th[idx].slot.scratch,
				       &st, sizeof(st));
		if (!ret) {
			*sp = (uint64_t)st.ss_sp;
			*size = st.ss_size;
			*flags = (uint32_t)st.ss_flags & ~(uint32_t)SS_ONSTACK;
		}
		return ret;
	}
	int ret = call_daemon(ctl, PARASITE_CMD_GET_SIGALTSTACK, &r);
	if (!ret) {
		*sp = r.u.altstack.sp;
		*size = r.u.altstack.size;
		*flags = r.u.altstack.flags;
	}
	return ret;
}

int infect_get_task_state(struct infect_ctl *ctl, struct parasite_task_state *st)
{
	struct parasite_reply r;
	_Static_assert(sizeof(st->itimer) == sizeof(r.u.task.itimer), "itimer layout");
	_Static_assert(sizeof(st->mempolicy_nodes) == sizeof(r.u.task.mempolicy_nodes), "nodes");
	int ret = call_daemon(ctl, PARASITE_CMD_GET_TASK_STATE, &r);
	if (ret)
		return ret;
	memcpy(st->itimer, r.u.task.itimer, sizeof(st->itimer));
	st->securebits = r.u.task.securebits;
	st->dumpable = r.u.task.dumpable;
	st->subreaper = r.u.task.subreaper;
	st->mempolicy_mode = r.u.task.mempolicy_mode;
	st->membarrier = r.u.task.membarrier;
	memcpy(st->mempolicy_nodes, r.u.task.mempolicy_nodes, sizeof(st->mempolicy_nodes));
	return 0;
}

int infect_get_posix_timer(struct infect_ctl *ctl, int32_t id, struct parasite_posix_timer *t)
{
	struct parasite_reply r;
	int ret = call_daemon_arg(ctl, PARASITE_CMD_GET_POSIX_TIMER, (uint32_t)id, &r);
	if (ret)
		return ret;
	memcpy(t->its, r.u.timer.its, sizeof(t->its));
	t->overrun = r.u.timer.overrun;
	return 0;
}

int infect_aio_owned(struct infect_ctl *ctl, uint64_t ring)
{
	struct parasite_req req = { .cmd = PARASITE_CMD_AIO_OWNED, .arg64 = ring };
	struct parasite_reply r;
	int ret = call_daemon_req(ctl, &req, &r);
	if (!ret && r.ret && r.ret != -EINVAL)
		ret = r.ret;
	if (ret)
		fprintf(stderr, "pid %d: AIO ring at %" PRIx64 ": cannot ask the task: %s\n",
			ctl->task->pid, ring, strerror(-ret));
	return ret ? ret : !r.ret;
}

int infect_snapshot(struct infect_ctl *ctl, int late, pid_t *vpid, uint64_t *cookie,
		    int *listen_fd)
{
	struct parasite_reply r;
	if (ctl->listen_fd < 0)
		return -ENOTCONN;
	int ret = call_daemon_arg(ctl, PARASITE_CMD_SNAPSHOT, late != 0, &r);
	if (!ret && r.u.snapshot.pid <= 0)
		ret = -EPROTO;
	int fd = ret ? -1 : fcntl(ctl->listen_fd, F_DUPFD_CLOEXEC, 0);
	if (!ret && fd < 0)
		ret = -errno;
	if (ret)
		return ret;
	*vpid = r.u.snapshot.pid;
	*cookie = r.u.snapshot.cookie;
	*listen_fd = fd;
	return 0;
}

int infect_userfaultfd(struct infect_ctl *ctl, uint64_t features, int *fd, uint64_t *granted)
{
	struct parasite_req req = { .cmd = PARASITE_CMD_USERFAULTFD, .arg64 = features };
	struct parasite_reply r;
	int ret = call_daemon_req(ctl, &req, &r);
	if (ret || r.ret)
		return ret ? ret : r.ret; /* the caller says what it does without */
	int pidfd = (int)syscall(SYS_pidfd_open, ctl->task->pid, 0);
	int ours = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, r.u.uffd.fd, 0);
	ret = ours < 0 ? -errno : 0;
	if (pidfd >= 0)
		close(pidfd);
	struct parasite_reply c;
	int cret = call_daemon_arg(ctl, PARASITE_CMD_CLOSE_FD, (uint32_t)r.u.uffd.fd, &c);
	if (!ret && cret) {
		close(ours);
		ret = cret;
	}
	if (ret)
		return ret;
	*fd = ours;
	*granted = r.u.uffd.features;
	return 0;
}
