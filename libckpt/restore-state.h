/*
 * restore-state: turn the per-process state of a core image that the
 * restorer blob sets up (timers, identity, scheduling, thread names, NUMA
 * policy) into its struct rst_args fields.  Runs in the restoring process
 * right before the jump (restore-mem.c); the dump side is taskstate.c.
 */
#ifndef CKPT_RESTORE_STATE_H
#define CKPT_RESTORE_STATE_H

#include <sys/types.h>

#include "core.pb-c.h"
#include "restorer-abi.h"

/* Fill a->ident, a->itimers, a->timers and each a->threads[i].comm/sched
 * (threads already filled).  Every image value is checked; 0 or -errno
 * after one line naming the object. */
/* plain: a user's restore, whose identity was checked to be ours with no
 * capability (priv.h): the restorer then only drops what we hold. */
/* inherited: the first filters of the image's chain, which the process
 * has from us already (a confined user's restore): not installed again. */
int restore_fill_task_state(const CoreEntry *core, struct rst_args *a, pid_t pid, int plain,
			    size_t inherited);

#endif
