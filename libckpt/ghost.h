/*
 * ghost: a path removed while the tree still used it (a directory, FIFO or
 * device node open or entered after rmdir/unlink: nlink 0 at the dump),
 * made again at restore just long enough to open it, then removed again
 * (ghost-node.c).  Regular files are memfd.c's, with their data.
 */
#ifndef CKPT_GHOST_H
#define CKPT_GHOST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "file-kinds.h"

/* What ghost_make made, for ghost_unmake. */
struct ghost_made {
	char path[PATH_MAX + 64]; /* the node: the dumped path, or next to it */
	size_t parents;           /* missing directories above it made, innermost last */
	int fd;                   /* O_PATH on the node */
};

/* The node as the dump saw it. */
struct ghost_node {
	const char *path; /* without " (deleted)" */
	uint64_t ino;     /* the old inode: names the fallback path */
	mode_t mode;      /* type and permissions */
	dev_t rdev;
	uid_t uid;
	gid_t gid;
	int has_owner;
	const char *target; /* a symbolic link's */
};

/* Make the node at its path (at PATH.ckpt-ghost-INO where the name is
 * taken again), and the missing directories above it, as the caller: the
 * kernel decides whether the caller may; then its owner and mode.
 * 0 with g->fd open, or -errno (logged, naming the path). */
int ghost_make(const struct ghost_node *n, struct ghost_made *g);

/* Remove the node and the directories ghost_make made for it; g->fd
 * stays open (the caller's, to open the node through /proc/self/fd). */
int ghost_unmake(struct ghost_made *g);

/* Dump: e->path (the link without " (deleted)") and e->contents (identity
 * and owner, no data) of a removed node held at f, which has nlink 0. */
int ghost_node_entry(const struct fd_dump *f, FileEntry *e);

/* Restore: the ghost_node of an entry that ghost_node_entry filled. */
int ghost_node_of(const FileEntry *e, struct ghost_node *n);

/* Is it /dev/null, zero, full, random or urandom (regfile.c)? */
int regfile_is_memory_device(dev_t rdev);

#endif
