/*
 * pipes: anonymous pipes and FIFOs.  On dump: check that an anonymous
 * pipe has no end outside the tree, and save the bytes buffered in it
 * without consuming them (tee(2) into a pipe of our own).  On restore:
 * recreate each pipe once, refill it, and give every file description
 * that used it an end of its own.
 */
#ifndef CKPT_PIPES_H
#define CKPT_PIPES_H

#include <stddef.h>
#include <sys/types.h>

#include "fdinfo.pb-c.h"
#include "freeze.h"
#include "storage.h"

struct pipe_desc {
	pid_t pid; /* a task and fd through which the description is reachable */
	int fd;
	FileEntry *entry;
};

int dump_pipes(struct img_set *set, const struct frozen_tree *tree, const struct pipe_desc *d,
	       size_t nr);

struct pipe_slot;
struct pipe_pool {
	struct pipe_slot *slots;
	size_t nr;
};

int pipes_pool_init(struct pipe_pool *pp, PipeDataEntry **data, size_t nr);
/* A new fd for the pipe/FIFO file description `e` (flags applied). */
int pipes_open(struct pipe_pool *pp, const FileEntry *e);
void pipes_pool_fini(struct pipe_pool *pp);

#endif
