/*
 * The contract between the host (libckpt/infect.c) and the parasite blob
 * (parasite/).  The host maps one "parasite area" in the target:
 *
 *   [ parasite blob (parasite_blob_mem_size) | struct parasite_args |
 *     one struct parasite_slot per thread | per-thread regions | daemon stack ]
 *
 * The args start exactly at the blob's end (the blob finds them through its
 * `blob_end` symbol), so the blob needs no pointer from the host.  Each
 * per-thread region holds a restore stub written by the host (the frozen
 * general registers, with the kernel's syscall-restart fix-up applied, and
 * code that pops them all and jumps to the frozen rip), a scratch buffer
 * for the outputs of injected syscalls and a small stack for the
 * self-cure code.
 *
 * Entry points (offsets `parasite_off_*` from the area start):
 *   daemon    rsp = daemon stack top: connects to the host's abstract unix
 *             socket `sock_name` (SOCK_SEQPACKET), sends a parasite_hello,
 *             then serves parasite_req -> parasite_reply until EOF, then
 *             cures itself.
 *   syscall   a `syscall` instruction followed by the self-cure code: the
 *             host injects single syscalls into any thread through it.
 *   self_cure finds the caller's slot by gettid(), puts back its frozen
 *             signal mask and jumps to its restore stub.
 *
 * Why a stub and not rt_sigreturn: rt_sigreturn resets the kernel's
 * restart_block, so a thread frozen in a restarted nanosleep/poll
 * (-ERESTART_RESTARTBLOCK, common once a task has been stopped before)
 * would get EINTR.  The stub resumes it exactly as the kernel does when it
 * leaves a ptrace stop: restart_syscall with the restart_block intact.
 * The parasite never touches the FPU/vector state (-mgeneral-regs-only),
 * so the general registers, rip, rflags and the mask are all there is.
 */
#ifndef CKPT_PARASITE_ABI_H
#define CKPT_PARASITE_ABI_H

#include <stdint.h>

#define PARASITE_ARGS_MAGIC 0x7061726173697465ULL /* "parasite" */
#define PARASITE_HELLO_MAGIC 0x68656c6fU
#define PARASITE_SOCK_NAME_MAX 100

struct parasite_slot {
	int32_t tid;
	uint32_t pad;
	uint64_t restore_stub; /* jump here (all signals blocked) to resume */
	uint64_t sigmask;      /* the frozen signal mask */
	uint64_t stack_top;    /* 16-aligned top of the thread's small stack */
	uint64_t scratch;      /* PARASITE_SCRATCH_SIZE bytes for outputs */
};

#define PARASITE_STUB_SIZE 256
#define PARASITE_SCRATCH_SIZE 256
#define PARASITE_THREAD_STACK 16384
#define PARASITE_DAEMON_STACK 65536

struct parasite_args {
	uint64_t magic;
	uint32_t nr_threads;
	uint32_t sock_name_len; /* abstract name, without the leading NUL */
	char sock_name[PARASITE_SOCK_NAME_MAX];
	uint32_t pad;
	struct parasite_slot slots[]; /* nr_threads, slots[0] is the daemon */
};

enum parasite_cmd {
	PARASITE_CMD_GET_SIGACTIONS = 1,
	PARASITE_CMD_GET_MISC,
	PARASITE_CMD_GET_TID_ADDRESS, /* of the daemon thread itself */
	PARASITE_CMD_GET_SIGALTSTACK, /* of the daemon thread itself */
	PARASITE_CMD_FINI,            /* reply, then wait for EOF or the host */
	PARASITE_CMD_GET_TASK_STATE,  /* itimers, securebits, dumpable, subreaper, mempolicy */
	PARASITE_CMD_GET_POSIX_TIMER, /* arg: the timer id */
	/* arg64: an AIO ring's address.  io_getevents(ring, 0, 0, NULL, NULL):
	 * 0 when it is a context of this mm, -EINVAL when the mapping came
	 * through fork (the context stays the parent's); reads no event */
	PARASITE_CMD_AIO_OWNED,
	/* A copy-on-write snapshot of the task's memory (libckpt/snapshot.c):
	 * a double fork.  C1 (exit signal 0, untraced) forks C2 and exits;
	 * the daemon reaps C1 (__WCLONE), so the task keeps no child and no
	 * zombie.  C2 closes every fd, leaves the job's session, connects to
	 * the host's socket (sock_name), sends a parasite_hello and waits,
	 * every signal blocked, until the host closes that connection (or
	 * dies), then exits.  Reply: ret 0, u.snapshot.pid (C2 as the task's
	 * namespace numbers it) and u.snapshot.cookie, random, which C2's
	 * hello carries too.  arg 1 (tests only, CKPT_TEST_FAULT=
	 * snapshot-late): C2 first stops itself (SIGSTOP), still holding the
	 * job's fds, until the host's SIGCONT (snapshot_connect): as a C2
	 * that no CPU has run yet. */
	PARASITE_CMD_SNAPSHOT,
	/* Dirty-page tracking (libckpt/track.c): userfaultfd(O_CLOEXEC |
	 * UFFD_USER_MODE_ONLY) and UFFDIO_API with the features of arg64.
	 * Reply: ret 0 or -errno, u.uffd.fd (the host takes it with
	 * pidfd_getfd, then has it closed: PARASITE_CMD_CLOSE_FD), and the
	 * features the kernel granted. */
	PARASITE_CMD_USERFAULTFD,
	PARASITE_CMD_CLOSE_FD, /* arg: the fd */
};

#define PARASITE_MEMPOLICY_WORDS 16 /* node mask: 1024 nodes */
#define PARASITE_MEMBARRIER_GET_REGS (1 << 9) /* MEMBARRIER_CMD_GET_REGISTRATIONS */
#define PARASITE_MEMBARRIER_PROBED (1 << 30)  /* before 6.3: private ones probed */

struct parasite_req {
	uint32_t cmd;
	uint32_t arg;
	uint64_t arg64;
};

/* First message on the socket, sent by the daemon once connected. */
struct parasite_hello {
	uint32_t magic;
	int32_t pid, tid;
	int32_t sock_fd; /* the daemon's socket fd, closed by the host at cure */
	uint32_t pad;
	/* a snapshot's: the cookie of the SNAPSHOT reply, which only the
	 * daemon and its snapshot know (the socket's abstract name is in
	 * /proc/net/unix for anyone to connect to) */
	uint64_t cookie;
};

/* Kernel struct sigaction as rt_sigaction(2) fills it on x86-64. */
struct parasite_raw_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct parasite_reply {
	uint32_t cmd;
	int32_t ret; /* 0 or -errno */
	union {
		struct parasite_raw_sigaction sa[64]; /* sa[0] is signal 1 */
		struct {
			uint64_t brk, pdeathsig;
		} misc;
		uint64_t tid_address;
		struct {
			int32_t pid;
			uint32_t pad;
			uint64_t cookie;
		} snapshot;
		struct {
			uint64_t sp, size;
			uint32_t flags;
		} altstack;
		struct {
			/* struct itimerval of REAL, VIRTUAL, PROF:
			 * interval sec/usec, value sec/usec */
			int64_t itimer[3][4];
			int32_t securebits, dumpable, subreaper;
			int32_t mempolicy_mode; /* -1: get_mempolicy failed */
			uint64_t mempolicy_nodes[PARASITE_MEMPOLICY_WORDS];
			/* membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS), or -errno */
			int32_t membarrier;
		} task;
		struct {
			int32_t fd;
			uint32_t pad;
			uint64_t features;
		} uffd;
		struct {
			int64_t its[4]; /* interval sec/nsec, value sec/nsec */
			int32_t overrun;
		} timer;
	} u;
};

#endif
