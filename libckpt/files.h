/*
 * files: open files of a process tree.  On dump, every fd of every task is
 * classified (regular file, directory, memory device, pipe, FIFO; anything
 * else is refused by name) and fds that share one open file description
 * (kcmp) are recorded once, so that shared offsets and pipe ends stay
 * shared.  On restore the driver opens every description once, in a pool
 * that every restoring task inherits through fork; each task then dup2()s
 * its own fds out of the pool and closes the rest.  A table shared by
 * several processes (CLONE_FILES) is dumped and installed once, by its
 * owner (fdtable.c).
 */
#ifndef CKPT_FILES_H
#define CKPT_FILES_H

#include <sys/types.h>

#include "fdinfo.pb-c.h"
#include "freeze.h"
#include "inventory.pb-c.h"
#include "storage.h"

/* files.img, fdinfo-PID.img for every task, pipes-data.img. */
struct ckpt_dump_opts;
struct ckpt_restore_opts;

int dump_files(struct img_set *set, const struct frozen_tree *tree,
	       const struct ckpt_dump_opts *opts);
/* With set NULL: a check of what the dump would refuse, nothing written
 * (file-kinds.h, check_tree). */

struct task_fds {
	pid_t pid;
	size_t nr;
	FdEntry **fds;
	void *msgs; /* unpacked messages, freed with the set */
};

#define FILE_KINDS_MAX 24

struct restore_files {
	size_t nr_files;
	FileEntry **files;
	int *pool; /* pool[i]: the driver's fd for files[i], -1 when closed */
	size_t nr_tasks;
	struct task_fds *tasks;
	int max_fd; /* largest fd number any task uses, -1 if none */
	const struct ckpt_restore_opts *opts;
	const InventoryEntry *inv; /* the tree's tasks (pids, sessions, groups) */
	void *priv[FILE_KINDS_MAX]; /* each kind's restore state (file-kinds.h) */
};

int files_read(struct img_set *set, const InventoryEntry *inv, const struct ckpt_restore_opts *opts,
	       struct restore_files *rf);
/* Open every file description into the pool at fds >= base. */
int files_open_pool(struct restore_files *rf, int base);
/* In the process about to create the tree's root, in the tree's PID
 * namespace: each kind's before_tree (file-kinds.h). */
int files_before_tree(struct restore_files *rf);
/* In the restoring task `idx` (inventory order): install its fds from the
 * pool, close every fd below keep_from that is not its own or in keep[],
 * then run each kind's post_install. */
int files_install(struct restore_files *rf, size_t idx, const int *keep, size_t nr_keep,
		  int keep_from);
void files_close_pool(struct restore_files *rf);
/* Is `e` not recreated but the caller's --inherit-fd? */
int files_inherited(const struct restore_files *rf, const FileEntry *e);
/* locks.c: does a lease (F_SETLEASE) sit on inode dev:ino?  (/proc/locks,
 * or the copy of it read in the background since locks_leases_start, until
 * locks_leases_stop: a dump's, in its thread) */
int locks_inode_leased(dev_t dev, ino_t ino);
void locks_leases_start(void);
void locks_leases_stop(void);
/* sk-inet.c: does any connection come back in repair mode (CAP_NET_ADMIN)? */
int inet_needs_repair(const struct restore_files *rf);

/* Remove the network locks the dump left on the connections to peers
 * outside the tree (net-lock.h): the tree is whole and about to run.
 * 0 or -errno, logged. */
int inet_unlock(const struct restore_files *rf);
void files_free(struct restore_files *rf);

#endif
