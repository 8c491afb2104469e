/* phase: the frozen window's time by step (phase.h). */
#include <string.h>

#include "phase.h"
#include "proc.h"

static _Thread_local uint64_t phase_ns[CKPT_PHASE_NR];

static const char *const names[CKPT_PHASE_NR] = {
	[CKPT_PHASE_FREEZE] = "freeze",	    [CKPT_PHASE_CHECK] = "check",
	[CKPT_PHASE_TASK] = "task",	    [CKPT_PHASE_INFECT] = "infect",
	[CKPT_PHASE_PARASITE] = "parasite", [CKPT_PHASE_SNAPSHOT] = "snapshot",
	[CKPT_PHASE_CURE] = "cure",	    [CKPT_PHASE_MM] = "mm",
	[CKPT_PHASE_PAGES] = "pages",	    [CKPT_PHASE_FILES] = "files",
	[CKPT_PHASE_INVENTORY] = "inventory", [CKPT_PHASE_THAW] = "thaw",
};

void phase_reset(void)
{
	memset(phase_ns, 0, sizeof(phase_ns));
}

uint64_t phase_add(enum ckpt_dump_phase p, uint64_t t0)
{
	uint64_t now = now_ns();
	phase_ns[p] += now - t0;
	return now;
}

void phase_read(uint64_t out[CKPT_PHASE_NR])
{
	memcpy(out, phase_ns, sizeof(phase_ns));
}

const char *ckpt_dump_phase_name(int p)
{
	return p >= 0 && p < CKPT_PHASE_NR ? names[p] : "?";
}
