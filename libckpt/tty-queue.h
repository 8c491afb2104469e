/*
 * tty-queue: a pty's two queues, taken at dump and put back at restore
 * (tty-queue.c): the bytes its slave side wrote that the master has not
 * read yet (output), and the bytes its master side wrote that the slave
 * has not read yet (input, as the slave's line discipline keeps them:
 * complete lines, then the line being typed).
 */
#ifndef CKPT_TTY_QUEUE_H
#define CKPT_TTY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "tty.pb-c.h"

/* The most input bytes a pty keeps for its slave that we take: its line
 * discipline holds 4095 (4096 in canonical mode); what is beyond waits
 * in its buffers unprocessed, which we could not put back the same. */
#define TTY_INPUT_MAX 4094

struct tty_queue {
	uint8_t *data; /* malloc'd */
	size_t len;
};

/* Input: data[0, ends[nr_lines - 1]) are the complete lines as reads
 * return them (one read, one line; an empty one is an end of file),
 * the rest the line not finished yet (all of it in non-canonical mode). */
struct tty_input {
	uint8_t *data; /* malloc'd, TTY_INPUT_MAX + 1 bytes */
	size_t len;
	size_t *ends; /* malloc'd */
	size_t nr_lines;
	const char *refused; /* why it cannot be kept, when -ENOTSUP */
};

/* Nonzero when master m is in packet mode with a status not read yet. */
int tty_queue_status_pending(int m);

/* Read the queues of master m (our duplicate of the tree's frozen master)
 * into out and, when with_input (a slave of it is open or it is hung
 * up: we may open one of our own), in, and write them back at once: the
 * pty is as it was.  0 or -errno; -ENOTSUP with in->refused set for
 * input that cannot be kept.  The buffers are the caller's to free
 * (tty_queue_free) either way. */
int tty_queue_take(int m, int with_input, struct tty_queue *out, struct tty_input *in);

/* Check only: the refusals of tty_queue_take's input, seen through the
 * tree's master m and slave s, nothing taken.  0, or -ENOTSUP, *why set. */
int tty_queue_check_input(int m, int s, const char **why);

/* Bytes a read of master m's slave would return now (FIONREAD through a
 * slave of our own; not a canonical line not finished yet), or -errno. */
int tty_queue_input_pending(int m);

void tty_queue_free(struct tty_queue *out, struct tty_input *in);

/* Queue on new master m the input `in` as its slave had it, then the
 * output bytes as its slave side had written them. */
int tty_queue_put(int m, const struct tty_input *in, const uint8_t *out, size_t len);

/* Dump: tty_queue_take on master m, kept in t (in arena a).  0, -ENOTSUP
 * with *why set (to log with the fd), or -errno. */
int tty_queue_save(struct arena *a, int m, int with_input, TtyEntry *t, const char **why);

/* Load: t's input is what a dump of ours gives (sizes, modes). */
int tty_queue_valid(const TtyEntry *t);

/* Restore: t's input and output queued on new master m, logged. */
int tty_queue_restore(int m, const TtyEntry *t);

#endif
