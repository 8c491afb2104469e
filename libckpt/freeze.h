/*
 * freeze: stop a whole process tree with ptrace so that it can be dumped
 * consistently, and let it go again.
 *
 * Every thread is PTRACE_SEIZEd and PTRACE_INTERRUPTed; the tree is then
 * re-scanned (children of every thread, threads of every process) until no
 * new task appears, so a fork or clone racing the freeze is caught.  The
 * registers of every thread are read while it is stopped.
 */
#ifndef CKPT_FREEZE_H
#define CKPT_FREEZE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct thread_regs {
	pid_t tid;
	pid_t vtid;                   /* as the tree sees it (see frozen_task) */
	struct user_regs_struct regs; /* as read at freeze time */
	uint8_t *xstate;              /* NT_X86_XSTATE, malloc'd */
	size_t xstate_len;
	uint64_t sigmask;             /* PTRACE_GETSIGMASK */
	int seccomp_suspended;        /* seized with PTRACE_O_SUSPEND_SECCOMP */
};

struct frozen_task {
	pid_t pid, ppid, pgid, sid; /* ppid: the parent's pid, 0 for the root */
	/* The same as the tree sees them: a tree restored into a PID
	 * namespace of its own lives below ours, and its images keep the
	 * numbers its processes know (getpid), not ours.  Equal to the above
	 * for a tree in our namespace; 0 where not visible from the tree's. */
	pid_t vpid, vppid, vpgid, vsid;
	char comm[32];
	bool stopped;               /* in a group stop when frozen */
	int stop_signal;            /* the signal of that stop (SIGSTOP, SIGTSTP...), 0: unknown */
	bool zombie;                /* dead, not reaped yet: no threads */
	int exit_status;            /* zombie: its wait status */
	int nr_threads;
	struct thread_regs *threads; /* threads[0].tid == pid */
	/* srun steps (ckpt_dump_opts.steps): 1 + the index of the step whose
	 * client (step_client) or task this is; 0 for the others.  A step's
	 * tasks read as the client's children, in its session (docs/mpi.md). */
	int step;
	bool step_client;
};

struct ckpt_step;
struct frozen_tree {
	int nr_tasks;
	struct frozen_task *tasks; /* tasks[0] is the root; parents before children */
	const struct ckpt_step *steps; /* as given to freeze_tree or list_tree */
	size_t nr_steps;
};

/*
 * Freeze the tree rooted at `root`.  Refuses, with one line on stderr
 * naming the task, a pid that does not exist, PID 1, a kernel thread, a
 * zombie root, a task traced by someone else, the caller itself or one of
 * its ancestors.  Stopped (group-stop) tasks are frozen and marked
 * stopped; zombie children are kept (zombie, exit_status, no threads).
 * On failure nothing stays frozen.  Returns 0 or -errno.
 */
int freeze_tree(pid_t root, struct frozen_tree *tree);
/* The same with srun steps grafted on (docs/mpi.md): each step's tasks
 * are frozen first, then `drained` lets their output reach the step's
 * client (an srun of the tree, whose own children are left out), then
 * the tree is frozen. */
int freeze_tree_steps(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		      int (*drained)(const struct frozen_tree *), struct frozen_tree *tree);

/*
 * The tree rooted at `root` as it is now, nothing seized or stopped: the
 * same tasks and checks as freeze_tree (one line on stderr naming what is
 * refused), thread ids without registers.  For a check of what a dump
 * would refuse (ckpt_dump_opts.check_only); the tree may change under it.
 * Free with frozen_tree_free, never unfreeze_tree.
 */
int list_tree(pid_t root, struct frozen_tree *tree);
int list_tree_steps(pid_t root, const struct ckpt_step *steps, size_t nr_steps,
		    struct frozen_tree *tree);
/* Drops from a listed tree the tasks that died since (and what they
 * had listed below them); returns how many. */
int list_tree_drop_dead(struct frozen_tree *tree);

/* Pid or tid `host` (ours) as the tree's PID namespace numbers it; 0 when
 * it has no number there. */
pid_t tree_vpid(const struct frozen_tree *tree, pid_t host);
/* The same for a process group id. */
pid_t tree_vpgid(const struct frozen_tree *tree, pid_t host);

enum unfreeze_how {
	UNFREEZE_RESUME,       /* detach: every task runs on as before */
	UNFREEZE_KILL,         /* SIGKILL every task, then detach */
	UNFREEZE_LEAVE_STOPPED /* detach leaving every task in SIGSTOP group-stop */
};
/* Always succeeds as far as possible; tasks that vanished are skipped. */
void unfreeze_tree(struct frozen_tree *tree, enum unfreeze_how how);
void frozen_tree_free(struct frozen_tree *tree);

/* Where `pid` is in the tree: 1, a process (*task: it); 2, a thread of
 * one that is not its main thread (*task: its process); 0, neither
 * (*task: NULL).  task may be NULL. */
int frozen_tree_where(const struct frozen_tree *tree, long pid, const struct frozen_task **task);

#endif
