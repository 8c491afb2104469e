/*
 * tty-queue: a pty's bytes written on the slave side and not yet read on
 * the master, taken at dump and put back at restore (tty-queue.c).
 */
#ifndef CKPT_TTY_QUEUE_H
#define CKPT_TTY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct tty_queue {
	uint8_t *data; /* malloc'd */
	size_t len;
};

/* Nonzero when master m is in packet mode with a status not read yet. */
int tty_queue_status_pending(int m);

/* Read the queue of master m (our duplicate of the tree's frozen master)
 * into q and write it back at once: the pty is as it was.  0 or -errno;
 * q->data is the caller's to free either way. */
int tty_queue_take(int m, struct tty_queue *q);

/* Queue len bytes on new master m as the slave side had written them. */
int tty_queue_put(int m, const uint8_t *data, size_t len);

#endif
