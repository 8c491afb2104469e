/*
 * The parasite: position-independent code run inside a frozen task to read
 * what only the task itself can read (sigactions, brk, tid address,
 * sigaltstack).  Its daemon serves one command at a time over a
 * SOCK_SEQPACKET unix socket to the host (libckpt/infect.c); when the host
 * goes away (EOF or an error on the socket) every thread of the parasite
 * goes back to its frozen state by itself (self-cure, see parasite-abi.h).
 *
 * Only general registers, no libc, no relocations (cmake/blob.cmake).
 */
#include "ckpt-sys.h"
#include "parasite-abi.h"

#define AF_UNIX 1
#define SOCK_SEQPACKET 5
#define SOCK_CLOEXEC 02000000
#define MSG_NOSIGNAL 0x4000
#define SIG_SETMASK 2
#define SS_ONSTACK 1
#define PR_GET_PDEATHSIG 2
#define PR_GET_TID_ADDRESS 40
#define EINTR 4
#define PR_GET_DUMPABLE 3
#define PR_GET_SECUREBITS 27
#define PR_GET_CHILD_SUBREAPER 37
#define PR_SET_NAME 15
#define CLONE_UNTRACED 0x00800000
#define WCLONE 0x80000000
#define O_CLOEXEC 02000000
#ifndef __NR_close_range
#define __NR_close_range 436
#endif

struct raw_sockaddr_un {
	uint16_t family;
	char path[108];
};

struct raw_stack {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

/* The host puts struct parasite_args right after the blob. */
extern char blob_end[] __attribute__((visibility("hidden")));

void parasite_daemon(void);
void parasite_self_cure(void) __attribute__((noreturn));

/* gcc may emit calls to these for struct copies and zeroing. */
void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

static struct parasite_args *args(void)
{
	return (struct parasite_args *)blob_end;
}

/*
 * Go back to the frozen state: the frozen mask first (a signal arriving
 * now runs its handler here and comes back), then the thread's restore
 * stub, which reloads every general register and jumps to the frozen rip.
 */
void parasite_self_cure(void)
{
	struct parasite_args *a = args();
	long tid = sys_gettid();

	for (uint32_t i = 0; i < a->nr_threads; i++) {
		if (a->slots[i].tid != tid)
			continue;
		sys_call4(__NR_rt_sigprocmask, SIG_SETMASK, &a->slots[i].sigmask, 0, 8);
		asm volatile("jmp *%0" : : "r"(a->slots[i].restore_stub) : "memory");
		__builtin_unreachable();
	}
	__builtin_trap(); /* not ours: nothing sane to go back to */
}

static void get_sigactions(struct parasite_reply *r)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct parasite_raw_sigaction *sa = &r->u.sa[sig - 1];
		if (sig == 9 || sig == 19)
			continue;
		long ret = sys_call4(__NR_rt_sigaction, sig, 0, sa, 8);
		if (ret < 0) {
			r->ret = (int32_t)ret;
			return;
		}
	}
}

static void get_altstack(struct parasite_reply *r)
{
	struct raw_stack st;
	long ret = sys_call2(__NR_sigaltstack, 0, &st);
	if (ret < 0) {
		r->ret = (int32_t)ret;
		return;
	}
	r->u.altstack.sp = st.sp;
	r->u.altstack.size = st.size;
	r->u.altstack.flags = (uint32_t)st.flags & ~SS_ONSTACK;
}

/* Process-wide state only the task can read about itself. */
static void get_task_state(struct parasite_reply *r)
{
	long ret;

	for (int which = 0; which < 3; which++) {
		ret = sys_call2(__NR_getitimer, which, r->u.task.itimer[which]);
		if (ret < 0) {
			r->ret = (int32_t)ret;
			return;
		}
	}
	r->u.task.securebits = (int32_t)sys_prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	r->u.task.dumpable = (int32_t)sys_prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	ret = sys_prctl(PR_GET_CHILD_SUBREAPER, (long)&r->u.task.subreaper, 0, 0, 0);
	if (ret < 0 || r->u.task.securebits < 0 || r->u.task.dumpable < 0) {
		r->ret = (int32_t)(ret < 0 ? ret : -22);
		return;
	}
	/* No NUMA in the kernel (ENOSYS): nothing to restore. */
	ret = sys_call5(__NR_get_mempolicy, &r->u.task.mempolicy_mode, r->u.task.mempolicy_nodes,
			PARASITE_MEMPOLICY_WORDS * 64, 0, 0);
	if (ret < 0)
		r->u.task.mempolicy_mode = -1;
	/* The process's membarrier registrations (Linux 6.3+): no file of
	 * /proc shows them.  Before 6.3, each private expedited barrier
	 * fails with EPERM unless its registration was made (no thread of
	 * the frozen task runs: the barriers cost nothing). */
	ret = sys_call3(__NR_membarrier, PARASITE_MEMBARRIER_GET_REGS, 0, 0);
	if (ret == -22) {
		ret = PARASITE_MEMBARRIER_PROBED;
		for (int cmd = 1 << 3; cmd <= 1 << 7; cmd <<= 2) /* PRIVATE_EXPEDITED{,_SYNC_CORE,_RSEQ} */
			if (sys_call3(__NR_membarrier, cmd, 0, 0) == 0)
				ret |= cmd << 1; /* its REGISTER_ command */
	}
	r->u.task.membarrier = (int32_t)ret;
}

static void get_posix_timer(struct parasite_reply *r, uint32_t id)
{
	long ret = sys_call2(__NR_timer_gettime, id, r->u.timer.its);
	if (ret >= 0)
		ret = sys_call1(__NR_timer_getoverrun, id);
	if (ret < 0) {
		r->ret = (int32_t)ret;
		return;
	}
	r->u.timer.overrun = (int32_t)ret;
}

static int connect_host(struct parasite_args *a);
static long send_msg(int fd, const void *buf, size_t len);

/*
 * C2, the snapshot: a copy of the task's memory as it was frozen.  It
 * keeps none of the job's fds (a pipe's write end held here would keep
 * the job's reader from its EOF), leaves the job's session and process
 * group (a signal to the group is not for it), tells the host who it is
 * on a connection of its own and waits, every signal blocked (inherited
 * from the daemon), for that connection to close: the host is done with
 * it or dead.  Never returns.
 */
static void snapshot_child(struct parasite_args *a, uint64_t cookie, int late)
{
	static const char name[16] = "ckpt-snapshot";
	char buf[8];

	if (late)
		sys_call2(__NR_kill, sys_getpid(), 19 /* SIGSTOP */);
	sys_call3(__NR_close_range, 0, ~0U, 0);
	sys_call0(__NR_setsid);
	sys_prctl(PR_SET_NAME, (long)name, 0, 0, 0);
	int fd = connect_host(a);
	if (fd >= 0) {
		struct parasite_hello hello = {
			.magic = PARASITE_HELLO_MAGIC,
			.pid = (int32_t)sys_getpid(),
			.tid = (int32_t)sys_gettid(),
			.sock_fd = fd,
			.cookie = cookie,
		};
		if (send_msg(fd, &hello, sizeof(hello)) == sizeof(hello))
			while (sys_call6(__NR_recvfrom, fd, (long)buf, sizeof(buf), 0, 0, 0) == -EINTR)
				;
	}
	for (;;)
		sys_exit_group(0);
}

struct snapshot_start {
	int wfd;
	int late; /* PARASITE_CMD_SNAPSHOT's arg */
	uint64_t cookie;
};

/* C1: forks C2, hands its pid to the daemon through the pipe, exits.  It
 * shares the daemon's memory: `arg` is on the daemon's stack, which waits. */
static void snapshot_middle(void *arg)
{
	const struct snapshot_start *st = arg;
	int wfd = st->wfd, late = st->late;
	uint64_t cookie = st->cookie;
	long pid = sys_call5(__NR_clone, CLONE_UNTRACED, 0, 0, 0, 0);
	if (pid == 0)
		snapshot_child(args(), cookie, late);
	int32_t p = (int32_t)pid;
	if (pid > 0)
		sys_write(wfd, &p, sizeof(p));
	for (;;)
		sys_exit_group(pid > 0 ? 0 : 1);
}

/* clone(flags, stack) whose child runs fn(arg) on `stack` and never
 * returns; the parent gets the child's pid or -errno.  In asm: the child
 * has no frame of its own on the new stack, so it may not go back into
 * compiled code that would look for one. */
static long clone_call(unsigned long flags, void *stack, void (*fn)(void *), void *arg)
{
	register long r10 __asm__("r10") = 0;
	register long r8 __asm__("r8") = 0;
	register void (*rbx)(void *) __asm__("rbx") = fn;
	register void *r12 __asm__("r12") = arg;
	long ret = __NR_clone;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov %%r12, %%rdi\n\t"
			 "call *%%rbx\n\t"
			 "ud2\n"
			 "1:"
			 : "+a"(ret)
			 : "D"(flags), "S"(stack), "d"(0), "r"(r10), "r"(r8), "r"(rbx), "r"(r12)
			 : "rcx", "r11", "memory");
	return ret;
}

#define CLONE_VM 0x00000100
#define SNAPSHOT_STACK 65536

/* The double fork (parasite-abi.h, PARASITE_CMD_SNAPSHOT): C1 is a child
 * with exit signal 0 (no SIGCHLD, invisible to wait() without __WCLONE)
 * and reaped here, so the job never sees it; C2 is nobody's child in the
 * job (the host checked who its reaper is).  C1 shares the task's mm
 * (CLONE_VM, on a stack of its own): only C2's fork copies the page
 * tables, the time that grows with memory while the tree is frozen. */
static void take_snapshot(struct parasite_reply *r, uint32_t late)
{
	int p[2];
	int32_t pid = 0;
	struct snapshot_start st = { 0, late != 0, 0 };
	long ret = sys_call3(__NR_getrandom, &st.cookie, sizeof(st.cookie), 0);
	if (ret == sizeof(st.cookie))
		ret = sys_call2(__NR_pipe2, p, O_CLOEXEC);
	else if (ret >= 0)
		ret = -11; /* EAGAIN */
	if (ret < 0) {
		r->ret = (int32_t)ret;
		return;
	}
	st.wfd = p[1];
	long stack = sys_mmap(0, SNAPSHOT_STACK, 3 /* PROT_READ | PROT_WRITE */,
			      0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0);
	long c1 = stack < 0 ? stack
			    : clone_call(CLONE_VM | CLONE_UNTRACED, (char *)stack + SNAPSHOT_STACK,
					 snapshot_middle, &st);
	sys_close(p[1]);
	if (c1 > 0) {
		int status = 0;
		while (sys_call4(__NR_wait4, c1, &status, WCLONE, 0) == -EINTR)
			;
		if (sys_read(p[0], &pid, sizeof(pid)) != sizeof(pid) || pid <= 0)
			c1 = -11; /* EAGAIN: C1 could not fork */
	}
	if (stack >= 0)
		sys_munmap((void *)stack, SNAPSHOT_STACK);
	sys_close(p[0]);
	r->ret = c1 < 0 ? (int32_t)c1 : 0;
	r->u.snapshot.pid = pid;
	r->u.snapshot.cookie = st.cookie;
}

/* struct uffdio_api of <linux/userfaultfd.h>, which the blob does not
 * include: api, features, ioctls. */
#define UFFD_API_VERSION 0xAA
#define UFFD_USER_MODE_ONLY 1
#define UFFDIO_API_IOCTL 0xc018aa3fUL

static void make_userfaultfd(struct parasite_reply *r, uint64_t features)
{
	uint64_t api[3] = { UFFD_API_VERSION, features, 0 };
	long fd = sys_call1(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	long ret = fd < 0 ? fd : sys_call3(__NR_ioctl, fd, UFFDIO_API_IOCTL, api);
	if (ret < 0 && fd >= 0)
		sys_close((int)fd);
	r->ret = ret < 0 ? (int32_t)ret : 0;
	r->u.uffd.fd = ret < 0 ? -1 : (int32_t)fd;
	r->u.uffd.features = api[1];
}

static void handle(const struct parasite_req *req, struct parasite_reply *r)
{
	blob_memset(r, 0, sizeof(*r));
	r->cmd = req->cmd;
	switch (req->cmd) {
	case PARASITE_CMD_GET_SIGACTIONS:
		get_sigactions(r);
		break;
	case PARASITE_CMD_GET_MISC:
		r->u.misc.brk = (uint64_t)sys_call1(__NR_brk, 0);
		r->ret = (int32_t)sys_prctl(PR_GET_PDEATHSIG, (long)&r->u.misc.pdeathsig, 0, 0, 0);
		break;
	case PARASITE_CMD_GET_TID_ADDRESS:
		r->ret = (int32_t)sys_prctl(PR_GET_TID_ADDRESS, (long)&r->u.tid_address, 0, 0, 0);
		break;
	case PARASITE_CMD_GET_SIGALTSTACK:
		get_altstack(r);
		break;
	case PARASITE_CMD_GET_TASK_STATE:
		get_task_state(r);
		break;
	case PARASITE_CMD_GET_POSIX_TIMER:
		get_posix_timer(r, req->arg);
		break;
	case PARASITE_CMD_AIO_OWNED:
		r->ret = (int32_t)sys_call5(__NR_io_getevents, req->arg64, 0, 0, 0, 0);
		break;
	case PARASITE_CMD_SNAPSHOT:
		take_snapshot(r, req->arg);
		break;
	case PARASITE_CMD_USERFAULTFD:
		make_userfaultfd(r, req->arg64);
		break;
	case PARASITE_CMD_CLOSE_FD:
		r->ret = (int32_t)sys_close((int)req->arg);
		break;
	case PARASITE_CMD_FINI:
		break;
	default:
		r->ret = -22; /* EINVAL */
	}
}

static int connect_host(struct parasite_args *a)
{
	struct raw_sockaddr_un addr;
	uint32_t len = a->sock_name_len;

	if (len > PARASITE_SOCK_NAME_MAX)
		return -22;
	long fd = sys_call3(__NR_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return (int)fd;
	blob_memset(&addr, 0, sizeof(addr));
	addr.family = AF_UNIX;
	blob_memcpy(addr.path + 1, a->sock_name, len);
	long ret = sys_call3(__NR_connect, fd, &addr, 2 + 1 + len);
	if (ret < 0) {
		sys_close((int)fd);
		return (int)ret;
	}
	return (int)fd;
}

static long send_msg(int fd, const void *buf, size_t len)
{
	return sys_call6(__NR_sendto, fd, (long)buf, (long)len, MSG_NOSIGNAL, 0, 0);
}

/*
 * Command loop.  Returns on EOF or any error, after closing the socket;
 * the caller (parasite_export_daemon) then cures the thread.
 */
void parasite_daemon(void)
{
	struct parasite_args *a = args();
	uint64_t all = ~0ULL;
	struct parasite_reply reply;
	struct parasite_req req;

	sys_call4(__NR_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
	if (a->magic != PARASITE_ARGS_MAGIC)
		return;
	int fd = connect_host(a);
	if (fd < 0)
		return;
	struct parasite_hello hello = {
		.magic = PARASITE_HELLO_MAGIC,
		.pid = (int32_t)sys_getpid(),
		.tid = (int32_t)sys_gettid(),
		.sock_fd = fd,
	};
	if (send_msg(fd, &hello, sizeof(hello)) != sizeof(hello))
		goto out;
	for (;;) {
		long n = sys_call6(__NR_recvfrom, fd, (long)&req, sizeof(req), 0, 0, 0);
		if (n == -EINTR)
			continue;
		if (n != sizeof(req))
			break; /* EOF: the host is gone */
		handle(&req, &reply);
		if (send_msg(fd, &reply, sizeof(reply)) != sizeof(reply))
			break;
	}
out:
	sys_close(fd);
}
