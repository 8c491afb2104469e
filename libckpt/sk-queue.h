/*
 * sk-queue: a unix socket's receive queue and its fds in flight
 * (SCM_RIGHTS), for sk-unix.c.
 */
#ifndef CKPT_SK_QUEUE_H
#define CKPT_SK_QUEUE_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "file-kinds.h"

#define MAX_SCM_FDS 253 /* SCM_MAX_FD: the most fds one message carries */

/* Copy the queue of sk (fd `fd` of `pid`) into u->queue, leaving it in
 * place; the fds in flight go to files.c, u->queue_fds names them.
 * Refuses by name what cannot come back exactly. */
int sk_queue_peek(struct files_dump *c, int sk, pid_t pid, int fd, UnixSkEntry *u);

/* Are u's queue_fds well formed for an image of nr_files files? */
int sk_queue_valid(const UnixSkEntry *u, size_t nr_files);

/* Send u's queued messages again from `from` (to `to` if set); pool: the
 * pool's fds for the fds in flight (NULL: u has none). */
int sk_queue_refill(int from, const UnixSkEntry *u, struct sockaddr_un *to, socklen_t len,
		    const int *pool);

#endif
