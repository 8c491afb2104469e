/*
 * fdtable: processes sharing one fd table (CLONE_FILES) or one fs
 * (CLONE_FS); see fdtable.c.
 */
#ifndef CKPT_FDTABLE_H
#define CKPT_FDTABLE_H

#include "freeze.h"
#include "inventory.pb-c.h"

struct restore_ctx;

/* Dump: the index of the first task before `i` with task i's fd table
 * (its owner), or -1. */
int fdtable_owner(const struct frozen_tree *tree, int i);
/* The same for its cwd, root and umask (CLONE_FS). */
int fdtable_fs_owner(const struct frozen_tree *tree, int i);
/* Dump: refuse, by name, the sharing a restore cannot make again. */
int fdtable_check(const struct frozen_tree *tree);

/* Restore: check files_shared_with and fs_shared_with of the inventory,
 * set each task's roles (rst_task.fdt, .fs) and count the owners of fd
 * tables (restore_ctx.nr_fdt_owners). */
int fdtable_load(struct restore_ctx *c);
/* The pid whose fdinfo image is the task's table. */
uint32_t fdtable_pid(const TaskEntry *te);

#endif
