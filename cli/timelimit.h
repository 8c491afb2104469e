/*
 * timelimit: the count of a job's requeues at its time limit (see
 * timelimit.c).
 */
#ifndef CKPT_CLI_TIMELIMIT_H
#define CKPT_CLI_TIMELIMIT_H

#include <stdint.h>

/* The plugin's bound (slurm-plugin/policy.h, TIMELIMIT_MAX_REQUEUES). */
#define TIMELIMIT_MAX 1000

/* "stop" -> 0, "requeue:N" -> N (1 to TIMELIMIT_MAX); -EINVAL otherwise. */
int timelimit_parse(const char *s, uint32_t *max);
/* BASE/JOB/timelimit-requeues: 0, -ENOENT (none yet), or -errno. */
int timelimit_count_read(const char *base, uint32_t job, uint32_t *done, uint32_t *max);
int timelimit_count_write(const char *base, uint32_t job, uint32_t done, uint32_t max);
/* "job J: time-limit requeues: K of N" on stdout, when there is a count. */
void timelimit_print(const char *base, uint32_t job);

#endif
