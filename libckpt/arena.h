/*
 * arena: zeroed allocations freed all at once.  A dump builds many small
 * protobuf structs per task; they live until the image is written.
 */
#ifndef CKPT_ARENA_H
#define CKPT_ARENA_H

#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
};

/* Zeroed memory, NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void arena_free(struct arena *a);

#endif
