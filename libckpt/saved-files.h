/*
 * saved-files: the job's own files on node-local scratch (tmpfs, /tmp,
 * /var/tmp, /dev/shm) that the tree maps shared or holds open, kept with
 * the set and put back at their paths by the restore (see saved-files.c
 * and proto/saved.proto).
 */
#ifndef CKPT_SAVED_FILES_H
#define CKPT_SAVED_FILES_H

#include "freeze.h"
#include "mem.h"
#include "storage.h"

/* Dump: saved.img and each regular file's pages, for the frozen tree. */
int dump_saved_files(struct img_set *set, const struct frozen_tree *tree, struct mem_stats *st);

/* Restore, in the driver, before any process of the tree exists. */
int restore_saved_files(struct img_set *set);

#endif
