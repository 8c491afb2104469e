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
	int batch;           /* the node of the job's batch script */
	char address[64];    /* the node's IPv4 address (its hostname's) */
	char why[256];       /* !ok: the one-line reason */
};

/* slurm.c: what Slurm says of the job, from this node. */
#define SLURM_VIEW_STEPS 16
struct remote_step {
	uint32_t step_id, srun_pid, num_tasks;
	char nodes[256];
};
struct slurm_view {
	int batch;            /* the batch script runs on this node */
	int steps_here;       /* a step of the job (not ours) has this node */
	char address[64];     /* this node's address (its hostname's), or "" */
	struct remote_step steps[SLURM_VIEW_STEPS]; /* launched from here */
	size_t nr_steps;
};
int slurm_view(uint32_t job, struct slurm_view *v);
/* The IPv4 address host resolves to, as text. */
int node_address(const char *host, char *addr, size_t len);

/* node.c: the held dump on this node's ckptd. */
struct held_dump;
/* stand_in: on a node without the batch script, our child that stands
 * as the client of the node's ranks of a step on several nodes, if the
 * tasks here are such (ckptd decides), or 0. */
int held_start(const char *socket, uint32_t job, const char *node, int vacate,
	       uint32_t hold_timeout_s, const struct slurm_view *view, pid_t stand_in,
	       struct held_dump **out);
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

/* restore.c: --restore of a multi-node set (docs/coordinator.md). */
struct coord_restore {
	uint32_t job;
	const char *set;        /* BASE/JOB/SEQ */
	const char *place;      /* PART=NODE,... */
	const char *inet_map;   /* OLD=NEW,... or NULL */
	const char *batch_node; /* the node that restored the batch part */
	const char *net_lock;   /* that part's kept lock */
	const char *relay;      /* --relay: the fence relay of a step on every node */
};
struct fence;
/* This node's part; its exit status (0 on the batch node), 1 on failure. */
int coord_restore(struct coord_restore *r, uint32_t rank, uint32_t size, struct fence *f,
		  struct node_status *all, int timeout_s);

/* fence.c */
struct fence;
int fence_init(struct fence **out, uint32_t *rank, uint32_t *size);
/* Every node's status at `phase` into v[size] (this node's is *mine):
 * 0, or the fence failed (a node gone, the timeout). */
int fence_exchange(struct fence *f, const char *phase, const struct node_status *mine,
		   struct node_status *v, int timeout_s);
/* A fence of the restored job's ranks, relayed (relay.c): this node's
 * blob in, every node's out (rank order, concatenated, malloc'd). */
int fence_blob(struct fence *f, uint64_t seq, const char *data, size_t len, char **out,
	       size_t *outlen);
void fence_fini(struct fence *f);

/* relay.c: serve one ckpt-step's fences (--relay NAME, "%r": our rank),
 * until it closes; 0, or the relay failed. */
int relay_serve(struct fence *f, const char *name, uint32_t rank);
int relay_listen(const char *name, uint32_t rank);
/* Serve the first step proxy that connects within wait_s (-1: forever). */
int relay_run(struct fence *f, int listener, int wait_s);

#endif
