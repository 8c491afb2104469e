/*
 * infect: put the parasite into a frozen process, talk to it, take it out.
 * The one place (with freeze.c) that touches registers and injects
 * syscalls; the rest of the engine uses this narrow API (CRIU's compel is
 * the model).
 *
 * The parasite cures itself: before it runs, a signal frame holding each
 * thread's frozen registers is placed in the parasite area.  If the dumper
 * dies at any moment (the parasite sees EOF on its socket, or a thread
 * comes back from an injected syscall with nobody tracing it), the thread
 * rt_sigreturns to that frame and the task carries on as if nothing
 * happened.
 */
#ifndef CKPT_INFECT_H
#define CKPT_INFECT_H

#include <stdint.h>
#include <sys/types.h>
#include "freeze.h"

struct infect_ctl;

/* Raw kernel sigaction as rt_sigaction(2) returns it. */
struct parasite_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* Process-wide values only the task itself can read. */
struct parasite_misc {
	uint64_t brk;        /* brk(0) */
	uint64_t pdeathsig;  /* prctl(PR_GET_PDEATHSIG) */
};

/* Process-wide timer and identity state, read inside the task. */
struct parasite_task_state {
	int64_t itimer[3][4]; /* REAL, VIRTUAL, PROF: interval sec/usec, value sec/usec */
	int32_t securebits, dumpable, subreaper;
	int32_t mempolicy_mode; /* -1: unknown (no NUMA) */
	uint64_t mempolicy_nodes[16];
	int32_t membarrier; /* registrations (MEMBARRIER_CMD_REGISTER_* bits), or -errno */
};

/* One POSIX timer: timer_gettime (interval sec/nsec, value sec/nsec) and
 * timer_getoverrun. */
struct parasite_posix_timer {
	int64_t its[4];
	int32_t overrun;
};

/*
 * `task` must be frozen by freeze_tree() (every thread in a ptrace stop,
 * registers read).  Maps the parasite area in the task (by a syscall
 * injected in task->threads[0]), loads the blob and its arguments, and
 * starts it as a command server on task->threads[0].
 */
int infect_start(const struct frozen_task *task, struct infect_ctl **ctl);

/* sa[0] is signal 1 ... sa[63] is signal 64; SIGKILL/SIGSTOP come back zero. */
int infect_get_sigactions(struct infect_ctl *ctl, struct parasite_sigaction sa[64]);
int infect_get_misc(struct infect_ctl *ctl, struct parasite_misc *misc);
/* prctl(PR_GET_TID_ADDRESS) of thread number `idx` of the task. */
int infect_get_tid_address(struct infect_ctl *ctl, int idx, uint64_t *addr);
/* sigaltstack of thread `idx`. */
int infect_get_sigaltstack(struct infect_ctl *ctl, int idx, uint64_t *sp, uint64_t *size, uint32_t *flags);

int infect_get_task_state(struct infect_ctl *ctl, struct parasite_task_state *st);
int infect_get_posix_timer(struct infect_ctl *ctl, int32_t id, struct parasite_posix_timer *t);
/* Is the AIO ring mapped at `ring` a context of the task's own (1), or a
 * mapping it inherited across fork, its context the parent's (0)? */
int infect_aio_owned(struct infect_ctl *ctl, uint64_t ring);

/*
 * A copy-on-write snapshot of the task's memory at this frozen moment
 * (PARASITE_CMD_SNAPSHOT): a process outside the job, *vpid as the task's
 * namespace numbers it, that holds a copy of the task's mm.  It connects
 * to *listen_fd (a duplicate of the parasite's listening socket, the
 * caller's to close) and sends a parasite_hello when it gets to run, which
 * the caller need not wait for while the tree is frozen; the hello holds
 * *cookie, which nobody else knows.  The caller
 * decides beforehand that a snapshot is safe here (snapshot.c).
 */
int infect_snapshot(struct infect_ctl *ctl, int late, pid_t *vpid, uint64_t *cookie,
		    int *listen_fd);

/*
 * A userfaultfd of the task's mm (PARASITE_CMD_USERFAULTFD), API done with
 * `features`: *fd is our copy (O_CLOEXEC), the task's own is closed again,
 * so its fd table is as before; *granted: the features the kernel gave.
 */
int infect_userfaultfd(struct infect_ctl *ctl, uint64_t features, int *fd, uint64_t *granted);

/*
 * Take the parasite out: every thread goes back to the registers (and
 * FPU state) it was frozen with, in a ptrace stop, the parasite's fd is
 * closed and its area unmapped.  The task is as freeze_tree() left it.
 * Frees ctl.
 */
int infect_cure(struct infect_ctl *ctl);

#endif
