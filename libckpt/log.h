/*
 * Logging for the engine: one line per problem, printed where the context
 * is (`pid 4123: fd 7: ...`), never repeated by the callers above.
 */
#ifndef CKPT_LOG_H
#define CKPT_LOG_H

#include <stdio.h>

extern int ckpt_verbose;

#define pr_err(fmt, ...) fprintf(stderr, "ckpt: " fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...)                                          \
	do {                                                       \
		if (ckpt_verbose)                                  \
			fprintf(stderr, "ckpt: " fmt "\n", ##__VA_ARGS__); \
	} while (0)
#define pr_debug(fmt, ...)                                         \
	do {                                                       \
		if (ckpt_verbose > 1)                              \
			fprintf(stderr, "ckpt: " fmt "\n", ##__VA_ARGS__); \
	} while (0)

#endif
