/*
 * taskstate: the dump side of per-process state beyond registers and
 * signals (core.c): itimers and POSIX timers, capabilities beyond the
 * four sets, securebits, no_new_privs, personality, dumpable, child
 * subreaper, NUMA memory policy, seccomp filters, and per thread its
 * name, scheduling, affinity and ioprio.  The
 * restoring side is restore-state.c (what the restorer blob sets) and
 * restore_task_misc() below (what the restoring process sets itself).
 */
#ifndef CKPT_TASKSTATE_H
#define CKPT_TASKSTATE_H

#include "arena.h"
#include "core.pb-c.h"
#include "freeze.h"
#include "infect.h"

/* From /proc and ptrace, before infection: the main thread's seccomp
 * filters (refusing strict mode), the rest of
 * core->creds and the personality. */
int dump_task_proc(struct arena *a, const struct frozen_task *task, CoreEntry *core);
/* A user's dump: refuses filters installed without no_new_privs, which
 * only a restore with CAP_SYS_ADMIN could install again. */
int check_user_seccomp(const struct frozen_task *task);
/* Its part that /proc/PID/status shows: ambient capabilities,
 * no_new_privs, and the personality (restore --verify reads it again). */
int read_task_status(pid_t pid, CoreEntry *core);

/* Whether a thread is in seccomp strict mode, and the chain of a thread
 * other than the main one when it is not the main thread's
 * (core->seccomp_filters, read before). */
int dump_thread_seccomp(struct arena *a, pid_t pid, const struct thread_regs *th, int is_main,
			const CoreEntry *core, ThreadCoreEntry *tc);
/* Name, scheduling, affinity and ioprio of one thread (host syscalls). */
int dump_thread_sched(struct arena *a, pid_t pid, pid_t tid, ThreadCoreEntry *tc);

/* Through the parasite: timers, securebits, dumpable, subreaper,
 * memory policy. */
int dump_task_parasite(struct arena *a, struct infect_ctl *ctl, const struct frozen_task *task,
		       CoreEntry *core);

/* In the restoring process before the restorer: personality and child
 * subreaper. */
int restore_task_misc(const CoreEntry *core);

#endif
