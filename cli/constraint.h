#ifndef CKPT_CLI_CONSTRAINT_H
#define CKPT_CLI_CONSTRAINT_H
#include <stdint.h>

/* Requeue the job (requeuehold, update, release) with the CPU flags its
 * latest set (under base, NULL: storage.base) needs, among the Features the
 * site's nodes list, as its Features.  1: none apply (requeue it plainly),
 * 0 done, -errno after a line. */
int requeue_constrained(uint32_t job, const char *base);

#endif
