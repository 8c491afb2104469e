/*
 * dump-set: where a dump writes — a plain image directory (-D DIR) or a
 * new job set BASE/JOB/SEQ with the storage policy of ckpt.conf (--job;
 * storage/tier.h) — and what the manifest records about the tree.
 */
#ifndef CKPT_DUMP_SET_H
#define CKPT_DUMP_SET_H

#include "ckpt/ckpt.h"
#include "freeze.h"
#include "storage.h"
#include "tier.h"

struct dump_target {
	struct img_set *set;   /* -D DIR */
	struct job_dump *job;  /* --job */
};

/* Creates the set to write (with its parent for --parent); *set is it. */
int dump_target_open(const struct ckpt_dump_opts *o, struct dump_target *t, struct img_set **set);
/* The tree's processes into the manifest, then the commit. */
int dump_target_commit(struct dump_target *t, const struct frozen_tree *tree, uint32_t root_pid);
/* Failed dump: removes what was written. */
void dump_target_abort(struct dump_target *t);
/* After the tree is released: flush, latest pointer, retention (--job). */
int dump_target_finish(struct dump_target *t, struct ckpt_dump_stats *st);
void dump_target_close(struct dump_target *t);

/* Restore: the set of -D DIR, or the latest committed set of --job. */
int restore_open_set(const struct ckpt_restore_opts *o, struct img_set **set);

#endif
