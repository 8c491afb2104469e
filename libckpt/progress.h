/*
 * progress: reports how far a dump or restore is, without the engine's
 * inner loops knowing about it.  Both operations are dominated by reading
 * (pages through /proc/PID/mem, or page images), so a sampling thread
 * reads this process's own read-byte counter (/proc/self/io rchar) and
 * hands the growth since the start to the caller's callback.
 */
#ifndef CKPT_PROGRESS_H
#define CKPT_PROGRESS_H

#include <stdint.h>
#include <sys/types.h>

#include "ckpt/ckpt.h"

struct progress;

/* NULL (and nothing started) when fn is NULL or on failure. */
struct progress *progress_start(ckpt_progress_fn fn, void *arg, const char *phase,
				uint64_t total);
/* Stops the thread; a last report of done == total when `finished`. */
void progress_stop(struct progress *p, int finished);

/* Bytes of the regular files in a directory (a restore's total). */
uint64_t progress_dir_bytes(const char *dir);

/* Resident bytes of a process (statm), 0 if unknown. */
uint64_t progress_rss(pid_t pid);

#endif
