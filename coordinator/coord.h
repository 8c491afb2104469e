/*
 * ckpt-coord's parts: node.c talks to this node's ckptd (one held dump,
 * the commit of the set), fence.c agrees with the other nodes through
 * PMIx (a Put of this node's status, a Fence collecting every node's, a
 * Get of each).  coord.c runs the phases.
 */
#ifndef CKPT_COORD_H
#define CKPT_COORD_H

#include <stddef.h>
#include <stdint.h>

/* One node's word at a phase, as every node sees it after the fence. */
struct node_status {
	int ok;
	char node[72];       /* the part's name */
	uint64_t seq;        /* frozen: the SEQ it would take; dumped: the set's */
	uint32_t crc, root, tasks;
	char why[256];       /* !ok: the one-line reason */
};

/* node.c: the held dump on this node's ckptd. */
struct held_dump;
int held_start(const char *socket, uint32_t job, const char *node, int vacate,
	       uint32_t hold_timeout_s, struct held_dump **out);
/* Wait for the next gate (frozen, dumped): 0 with *st filled, or the
 * dump ended (st->why says why). */
int held_wait_gate(struct held_dump *h, const char *phase, struct node_status *st);
/* Send a gate word: "dump" (with seq), "commit", "abort". */
int held_send(struct held_dump *h, const char *action, uint64_t seq);
/* Wait for the dump's end: 0, or its error in why; the frozen time. */
int held_finish(struct held_dump *h, uint64_t *frozen_ns, char *why, size_t len);
/* 1 while the dump waits at its gate (its ckptd alive, no end yet). */
int held_alive(struct held_dump *h);
void held_close(struct held_dump *h);
/* The commit of the whole set by this node's ckptd. */
int commit_set(const char *socket, uint32_t job, uint64_t seq, const struct node_status *v,
	       size_t n, char *why, size_t len);

/* fence.c */
struct fence;
int fence_init(struct fence **out, uint32_t *rank, uint32_t *size);
/* Every node's status at `phase` into v[size] (this node's is *mine):
 * 0, or the fence failed (a node gone, the timeout). */
int fence_exchange(struct fence *f, const char *phase, const struct node_status *mine,
		   struct node_status *v, int timeout_s);
void fence_fini(struct fence *f);

#endif
