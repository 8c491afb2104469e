/*
 * progress-bar: the one-line progress display of long dumps and restores
 * on a terminal: bytes done of the total, MB/s and the time left.  Shown
 * on stderr only when it is a TTY and the operation has run for a second.
 */
#ifndef CKPT_PROGRESS_BAR_H
#define CKPT_PROGRESS_BAR_H

#include <stdint.h>

struct progress_bar {
	uint64_t start_ns;
	int shown;
	int tty;
};

void bar_init(struct progress_bar *b);
void bar_update(struct progress_bar *b, const char *phase, uint64_t done, uint64_t total);
/* Clear the line if anything was drawn. */
void bar_done(struct progress_bar *b);
/* A ckpt_progress_fn for the engine's own progress (arg: the bar). */
void bar_callback(void *arg, const char *phase, uint64_t done, uint64_t total);

#endif
