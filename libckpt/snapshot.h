/*
 * snapshot: copy-on-write snapshots of the tree's private memory, so that
 * the job is frozen only for what is not memory (docs in snapshot.c).
 */
#ifndef CKPT_SNAPSHOT_H
#define CKPT_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "freeze.h"

struct infect_ctl;

/* One task's snapshot: a process outside the job holding a copy of the
 * task's mm as it was frozen. */
struct snapshot {
	pid_t vpid;	 /* as the task's namespace numbers it; 0: none taken */
	int listen_fd;	 /* where it connects to us (snapshot_connect); -1: none */
	pid_t pid;	 /* in our namespace, once connected; 0: not yet */
	int sock;	 /* our end of its connection; -1: none */
	uint64_t cookie; /* its hello must hold it (infect_snapshot) */
	int traced;	 /* PTRACE_SEIZEd by us: its pid is ours until reaped */
};

/* The snapshots of one dump, one slot per task of the tree. */
struct snapshot_set {
	const struct frozen_tree *tree;
	int nr;
	struct snapshot *snap;
	bool *subreaper;   /* per task, as the parasite read it */
	int taken, frozen; /* tasks read from a snapshot, copied while frozen */
};

/* `want`: snapshots asked for (a dump that leaves the tree running, not
 * --no-snapshot); otherwise every slot stays empty. */
int snapshot_set_init(struct snapshot_set *s, const struct frozen_tree *tree, int want);
/* Kills what is left (snapshot_release of each) and frees. */
void snapshot_set_free(struct snapshot_set *s);

/* In task `idx`'s parasite session, after everything else was read:
 * record its subreaper flag and, when it is safe, take its snapshot.  A
 * snapshot that cannot be taken is not an error: the task's memory is
 * copied while frozen, and the reason is logged. */
void snapshot_take(struct snapshot_set *s, int idx, struct infect_ctl *ctl, int subreaper);

/* After the thaw: wait for the snapshot's connection, check who it is;
 * sn->pid is then the process to read. */
int snapshot_connect(struct snapshot *sn);

/* Done with it: close its connection (it exits) and SIGKILL it.  One
 * that never connected finds no socket to connect to and exits. */
void snapshot_release(struct snapshot *sn);

#endif
