/*
 * track: dirty-page tracking for incremental dumps, without soft-dirty
 * bits (docs/sets.md, "Dirty-page tracking").  Each private mapping of a
 * task is registered, write-protect mode, on a userfaultfd with
 * UFFD_FEATURE_WP_ASYNC: a write clears the page's protection in the
 * kernel, with no fault for anyone to handle, and PAGEMAP_SCAN lists the
 * pages so written (PAGE_IS_WRITTEN) and protects them again
 * (PM_SCAN_WP_MATCHING), in one call, while the tree is frozen.
 *
 * A registration lives as long as its userfaultfd: a small keeper
 * process (ckpt-track, forked by the dump that starts tracking) holds
 * them between dumps, with the identity of the set they were armed at.
 * An incremental dump whose parent is that set reads only the pages
 * written since; any other page of a tracked mapping is the parent's.
 */
#ifndef CKPT_TRACK_H
#define CKPT_TRACK_H

#include <stdint.h>
#include <sys/types.h>

struct frozen_tree;

struct infect_ctl;

struct track_range {
	uint64_t start, end;
};

struct track_task {
	pid_t pid;
	int armed; /* the keeper armed it at the parent: `written` holds */
	/* mappings under tracking at the freeze, and the pages written in
	 * them since the parent (both sorted) */
	struct track_range *tracked, *written;
	size_t nr_tracked, nr_written, cap_tracked, cap_written;
	/* mappings not under tracking at the freeze: to register */
	struct track_range *untracked;
	size_t nr_untracked, cap_untracked;
	int uffd;    /* registrations made in this dump, or -1 */
	int arm_now; /* armed by the end of this dump */
};

struct track_state {
	int use;   /* the parent is the keeper's set: written lists hold */
	int rearm; /* tracking goes on after this dump */
	pid_t root;
	int nr;
	struct track_task *tasks;
	uint64_t pages_written; /* pages reported written in tracked mappings */
	pid_t keeper;           /* track_end: the keeper holding the tracking */
};

/*
 * Right after the freeze: ask the keeper of the tree (if any) which set
 * it was armed at, and scan (and protect again) every tracked mapping.
 * `start`: start tracking this tree (pre-dump); `parent_dir`: the set's
 * parent, or NULL; `keep_running`: the tree runs on after the dump.
 * Without a keeper, or with another parent, every page is hashed as
 * before.  0 or a negative errno.
 */
int track_begin(struct track_state *ts, const struct frozen_tree *tree, int start,
		const char *parent_dir, int keep_running);

/* Task idx, infected: register its mappings not under tracking yet and
 * protect their pages.  Before its memory is read (its snapshot taken). */
void track_arm_task(struct track_state *ts, int idx, struct infect_ctl *ctl);

/* Task idx's lists, or NULL when its pages must all be hashed. */
const struct track_task *track_task_of(const struct track_state *ts, pid_t pid);

/* After the commit of the set in `set_dir` (NULL: the dump failed):
 * hand the registrations to the keeper (started if none) with the set's
 * identity.  Frees ts. */
void track_end(struct track_state *ts, const char *set_dir);

#endif
