/*
 * core: per-process and per-thread kernel state that is neither memory nor
 * files: registers (from freeze), sigactions, pending signals, rlimits,
 * creds, umask, cwd/root, robust lists, rseq, clear-tid addresses.
 */
#ifndef CKPT_CORE_H
#define CKPT_CORE_H

#include "core.pb-c.h"
#include "freeze.h"
#include "storage.h"

/* Collect everything for one frozen task (infects it for what only the
 * task can tell) and write core-PID.img. `brk` comes back for mm. */
struct snapshot_set;
struct track_state;
/* snaps: where the task's memory snapshot goes (snapshot.c), task
 * number idx of the tree; NULL: none.  ts: dirty-page tracking to arm
 * while infected (track.c), or NULL. */
int dump_core(struct img_set *set, const struct frozen_task *task, uint64_t *brk,
	      struct snapshot_set *snaps, struct track_state *ts, int idx);

/* What /proc shows of a task's core (creds, rlimits, cwd, root, umask,
 * ambient capabilities, no_new_privs, personality), read as the dump
 * reads it: restore --verify compares it with the image. */
struct arena;
int core_read_proc(struct arena *a, pid_t pid, CoreEntry *core);

/* In the restoring process: umask, cwd (unless fs is 0: a shared fs that
 * another process restores, fdtable.c), rlimits, sigactions (the root:
 * restore-mem.c, last). */
int restore_core_misc(const CoreEntry *core, int fs);

#endif
