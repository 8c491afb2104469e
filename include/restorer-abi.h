/*
 * The contract between the restoring process (libckpt/restore*.c) and the
 * restorer blob (restorer/).  The host maps one "restore area" at an
 * address that no dumped VMA uses and that is free in the restoring
 * process:
 *
 *   [ restorer blob | struct rst_args | arrays | thread stacks |
 *     sigframes | temporary slots for [vdso]/[vvar]... | premapped VMAs ]
 *
 * All pointers below are absolute addresses inside the area, which stays
 * where it is until the very end.  The host jumps to
 * restorer_off_main with rdi = &args and rsp = args->main_stack, all
 * signals blocked (32 and 33 too: restore-tree.c), glibc's rseq
 * unregistered.
 *
 * The restorer (main thread):
 *   1. moves every special mapping (rst_special) from `cur` to `tmp`;
 *   2. unmaps every range in `unmap` (the restoring process's own memory);
 *   3. builds the dumped address space: RST_VMA_MOVE entries are mremapped
 *      from `src` to `start` (the host premapped them with the right flags
 *      and contents), RST_VMA_MAP_FD entries are mmapped from `fd`;
 *      then mprotects each to `prot`;
 *   4. moves every special mapping from `tmp` to `target`;
 *   5. closes every fd in `close_fds` (none in a shared fd table:
 *      shared_fdt_from);
 *   6. prctl(PR_SET_MM, PR_SET_MM_MAP, &mm) (retried with exe_fd = -1 if
 *      the kernel refuses the exe file), closes mm.exe_fd;
 *   7. queues the process-wide pending signals (rt_sigqueueinfo to itself);
 *   8. sets prctl PDEATHSIG to `pdeathsig`, the NUMA memory policy
 *      (ident.mempolicy_mode >= 0; the threads inherit it);
 *   9. clones threads 1..nr_threads-1 with clone3 set_tid = their tid on
 *      their stacks in the area;
 *  10. itimers (has_itimers) and POSIX timers with their dumped ids
 *      (prctl PR_TIMER_CREATE_RESTORE_IDS; without it, created until the
 *      kernel hands out the wanted id), armed with their remaining time.
 * Then every thread (main included):
 *   a. arch_prctl SET_FS/SET_GS, set_tid_address, set_robust_list, rseq
 *      registration (when rseq_len != 0), its name (comm), scheduling
 *      (sched_setattr, affinity, ioprio when sched.set), its own pending
 *      signals (rt_tgsigqueueinfo), then identity — per thread, as the
 *      kernel keeps it: bounding set, creds (setgroups/setresgid/
 *      setresuid/... when args->creds.set, caps kept through the uid
 *      change with SECBIT_NO_SETUID_FIXUP), inheritable and ambient caps,
 *      securebits, the final capset (when ident.set; left to the host
 *      when caps_after_seccomp), no_new_privs;
 *   b. decrements `threads_left`; the thread that brings it to zero sets
 *      the dumpable flag (every thread's creds change reset it), writes
 *      a struct rst_ready to notify_fd and closes it (unless shared_fdt_from);
 *   c. waits forever (pause(), every signal blocked).
 * On any failure a thread writes a struct rst_error to notify_fd and
 * calls exit_group(1).
 *
 * The host (libckpt/restore-finish.c), which reads notify_fd, then seizes
 * and interrupts every thread, points each at restorer_off_syscall with
 * rax = rt_sigreturn and rsp = its sigreturn_rsp, lets it run to the
 * syscall exit (the thread now has its dumped registers, FPU state, signal
 * mask and altstack) — a process with seccomp filters gets them first,
 * each with one injected seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) on its
 * prog in rst_args, in the main thread (every thread shares them), then
 * each thread's own (rst_thread.seccomp_from) in that thread, then the final capset when caps_after_seccomp; the host seizes
 * with PTRACE_O_SUSPEND_SECCOMP when it may, so that these last injected
 * syscalls (capset, rt_sigreturn, munmap) never meet the filters —, unmaps the area with one more injected munmap in the
 * main thread, and detaches everything (after queueing SIGSTOP when
 * `stopped`: the process goes straight into its group stop).
 */
#ifndef CKPT_RESTORER_ABI_H
#define CKPT_RESTORER_ABI_H

#include <stdint.h>

#define RST_MAGIC 0x636b70745253544fULL

enum rst_vma_how {
	RST_VMA_MOVE = 1,   /* premapped copy at src: mremap to start */
	RST_VMA_MAP_FD = 2, /* mmap(start, len, prot, flags | MAP_FIXED, fd, pgoff) */
};

struct rst_vma {
	uint64_t start, len;
	uint64_t src;   /* RST_VMA_MOVE */
	uint64_t pgoff; /* RST_VMA_MAP_FD */
	int32_t fd;     /* RST_VMA_MAP_FD */
	uint32_t how;
	uint32_t prot;  /* final protection */
	uint32_t flags; /* mmap flags, RST_VMA_MAP_FD */
};

struct rst_special { /* [vdso], [vvar], [vvar_vclock] */
	uint64_t cur, tmp, target, len;
};

struct rst_range {
	uint64_t start, len;
};

struct rst_siginfo {
	uint8_t raw[128];
};

/* The kernel's struct prctl_mm_map, spelled out. */
struct rst_mm_map {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;     /* address of the auxv array (in the area) */
	uint32_t auxv_size; /* bytes */
	uint32_t exe_fd;    /* (uint32_t)-1: keep the current exe */
};

#define RST_MAX_TIMERS 64
#define RST_CPU_WORDS 16   /* 1024 CPUs */
#define RST_NODE_WORDS 16  /* 1024 NUMA nodes */

/* struct itimerval: interval sec/usec, value sec/usec. */
struct rst_itimer {
	int64_t v[4];
};

struct rst_posix_timer {
	int32_t id, clock, notify, signo;
	int32_t notify_tid, pad;
	uint64_t sigval;
	int64_t its[4]; /* struct itimerspec: interval sec/nsec, value sec/nsec */
};

#define RST_MAX_SECCOMP 16
#define RST_SECCOMP_INSNS 8192

/* A seccomp filter: `prog` is a struct sock_fprog {len, filter} pointing
 * into seccomp_insns, in the area. */
struct rst_seccomp {
	uint16_t len;
	uint16_t pad[3];
	uint64_t filter;
	uint64_t flags;  /* SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW */
};

/* Capabilities, securebits and the rest of the identity that is not
 * uids/gids.  set == 0: keep the restoring process's; plain: a user's
 * restore, whose lent capabilities are dropped by one capset, and whose
 * securebits and bounding set are already the dumped ones. */
struct rst_identity {
	uint32_t set;
	uint32_t plain;        /* only capset(eff, prm, inh): a user's restore */
	uint32_t securebits;
	uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb;
	uint32_t last_cap;     /* highest capability the kernel knows */
	uint32_t no_new_privs;
	int32_t dumpable;      /* -1: leave it */
	int32_t mempolicy_mode; /* -1: leave it */
	uint64_t mempolicy_nodes[RST_NODE_WORDS];
};

struct rst_creds {
	uint32_t set; /* 0: keep the restoring process's creds */
	uint32_t uid, euid, suid, fsuid;
	uint32_t gid, egid, sgid, fsgid;
	uint32_t nr_groups;
	uint32_t groups[64];
};

/* Scheduling of one thread (see sched_setattr(2)); set == 0: inherit. */
struct rst_sched {
	uint32_t set;
	uint32_t ioprio;        /* 0: leave it */
	uint32_t policy;
	int32_t nice;
	uint64_t flags;
	uint32_t priority;
	uint32_t affinity_words; /* 0: leave the affinity */
	uint64_t dl_runtime, dl_deadline, dl_period;
	uint64_t affinity[RST_CPU_WORDS];
};

struct rst_thread {
	int32_t tid;
	uint32_t nr_pending;
	uint64_t stack_top;      /* threads 1..n: initial rsp in the area */
	uint64_t sigreturn_rsp;  /* rsp for rt_sigreturn (frame in the area) */
	uint64_t fs_base, gs_base;
	uint64_t clear_tid_addr;
	uint64_t robust_list, robust_len;
	uint64_t rseq_addr;
	uint32_t rseq_len, rseq_sig;
	struct rst_siginfo *pending;
	char comm[16];           /* "": leave the name */
	struct rst_sched sched;
	/* Its own seccomp filters, after the shared ones (nr_seccomp):
	 * seccomp[seccomp_from .. seccomp_from + seccomp_nr), oldest first,
	 * installed by the host in this thread. */
	uint32_t seccomp_from, seccomp_nr;
	uint32_t seccomp_strict; /* the host puts it in strict mode, last */
	uint32_t pad_strict;
};

struct rst_ready {
	char tag;          /* 'R' */
	char pad[3];
	int32_t pid;       /* the dumped pid of this process */
	uint64_t args;     /* address of struct rst_args in the process */
};

struct rst_error {
	char tag;      /* 'E' */
	char pad[3];
	int32_t pid;   /* the dumped pid of this process */
	int32_t step;  /* enum rst_step */
	int32_t pad2;
	int64_t err;   /* negative errno */
	uint64_t addr; /* the object (address, fd, tid) it failed on */
};

enum rst_step {
	RST_STEP_SPECIAL_TMP = 1,
	RST_STEP_UNMAP,
	RST_STEP_VMA_MOVE,
	RST_STEP_VMA_MAP,
	RST_STEP_VMA_PROT,
	RST_STEP_SPECIAL_FINAL,
	RST_STEP_MM_MAP,
	RST_STEP_SIGQUEUE,
	RST_STEP_CLONE,
	RST_STEP_THREAD_STATE,
	RST_STEP_CREDS,
	RST_STEP_TIMERS,
	RST_STEP_SCHED,
	RST_STEP_CAPS,
	RST_STEP_LAZY,
};

/*
 * Lazy restore (docs/lazy-restore.md): right after step 3 the restorer
 * creates a userfaultfd (missing faults, with the fork/remap/remove/unmap
 * events), registers every range in `lazy` (private anonymous VMAs left
 * empty by the host, now at their dumped addresses) and sends the uffd
 * with one struct rst_lazy on lazy_fd (a SOCK_SEQPACKET socket to the
 * driver's page server, SCM_RIGHTS), then closes both (lazy_fd: unless
 * shared_fdt_from).  Registering after the moves, not in the area: an
 * mremap drops a registration whose uffd lacks EVENT_REMAP, and with it
 * every move would wait for the server to read a remap event.  Not
 * UFFD_USER_MODE_ONLY: the kernel itself writes the restored memory
 * (rseq's cpu_id at the next return to user space, robust futexes,
 * clear_tid) and must wait for the page like the task does.
 */
struct rst_lazy {
	char tag;      /* 'U' */
	char pad[3];
	int32_t pid;   /* the dumped pid of this process */
};

struct rst_args {
	uint64_t magic;
	uint64_t area_start, area_len;
	uint64_t main_stack;

	uint32_t nr_unmap, nr_vmas, nr_specials, nr_close_fds;
	struct rst_range *unmap;
	struct rst_vma *vmas;
	struct rst_special *specials;
	int32_t *close_fds;

	struct rst_mm_map mm;
	uint32_t nr_shared_pending;
	int32_t pdeathsig;
	struct rst_siginfo *shared_pending;
	struct rst_creds creds;
	struct rst_identity ident;
	uint32_t has_itimers;
	uint32_t nr_timers;
	struct rst_itimer itimers[3]; /* REAL, VIRTUAL, PROF */
	struct rst_posix_timer timers[RST_MAX_TIMERS];
	uint32_t stopped;      /* the host leaves it in a group stop by this signal (0: none) */
	uint32_t nr_seccomp;   /* filters every thread shares, oldest first: installed by the host */
	uint32_t nr_seccomp_all; /* with the threads' own (rst_thread.seccomp_from) */
	/* Filters installed without no_new_privs need CAP_SYS_ADMIN in the
	 * installing thread: the restorer then leaves the thread with its
	 * capabilities plus CAP_SYS_ADMIN, and the host, after the filters,
	 * injects capset(&final_cap_header, final_cap_data): the dumped sets. */
	uint32_t caps_after_seccomp;
	uint32_t final_cap_header[2];   /* version 3, pid 0 */
	uint32_t final_cap_data[6];     /* struct __user_cap_data_struct[2] */
	struct rst_seccomp seccomp[RST_MAX_SECCOMP];
	uint64_t seccomp_insns[RST_SECCOMP_INSNS]; /* struct sock_filter, all filters */

	int32_t notify_fd;
	int32_t nr_threads;
	volatile int32_t threads_left;
	/* 0, or the fd table is shared with other processes of the tree
	 * (CLONE_FILES), which may still need the fds above it: the restorer
	 * closes neither close_fds (left empty) nor notify_fd; the host
	 * closes every fd >= shared_fdt_from with one injected close_range
	 * in the main thread, before anything else it injects. */
	int32_t shared_fdt_from;
	struct rst_thread *threads; /* threads[0] is the main thread */
	/* lazy restore: lazy_fd -1 or nr_lazy 0: none (see struct rst_lazy) */
	int32_t lazy_fd;
	uint32_t nr_lazy;
	struct rst_range *lazy;
};

#endif
