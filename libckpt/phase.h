/*
 * phase: where a dump's frozen window goes (issue 13).  Each step between
 * the freeze and the thaw adds its time to its phase; ckpt_dump hands the
 * totals out in ckpt_dump_stats.phase_ns (ckptctl dump --stats prints
 * them as frozen_NAME_ms).  Per thread: a dump runs on one.
 */
#ifndef CKPT_PHASE_H
#define CKPT_PHASE_H

#include <stdint.h>

#include "ckpt/ckpt.h"

void phase_reset(void);
/* Adds now - t0 to phase p; returns now, the start of what follows. */
uint64_t phase_add(enum ckpt_dump_phase p, uint64_t t0);
void phase_read(uint64_t out[CKPT_PHASE_NR]);

#endif
