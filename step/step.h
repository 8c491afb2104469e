/*
 * ckpt-step: the step proxy that stands in for slurmstepd and srun for a
 * restored `srun --mpi=pmix` step (docs/mpi.md, "Restore").  One process,
 * the parent of the step's restored ranks, that forwards their output
 * (stdio.c), serves their PMIx requests through libpmix (pmix-host.c) over
 * connections it opened on their behalf (handshake.c) and spliced to their
 * old sockets (main.c), and exits as srun would.
 *
 * struct task is one local rank; struct step the whole step as the
 * command line gives it.
 */
#ifndef CKPT_STEP_H
#define CKPT_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STEP_MAX_TASKS 256
#define STEP_LINE_MAX 65536 /* a longer line is cut, as srun cuts a message */

/* One output stream of a rank, with the partial line a label waits for. */
struct stream {
	int fd;         /* read end of the rank's pipe, -1 at EOF */
	int out;        /* 1 or 2: where it goes */
	char *line;     /* label mode: the bytes since the last newline */
	size_t len;
};

struct task {
	uint32_t rank;
	pid_t pid;
	int in;          /* write end of the rank's stdin pipe, closed at start */
	struct stream out, err;
	int pmix;        /* our end of the rank's PMIx socketpair, -1 when closed */
	int conn;        /* our connection to our own server as this rank */
	bool reaped;
	int status;      /* wait status once reaped */
};

/* What the rank's libpmix client chose at PMIx_Init (from its environment). */
struct pmix_choice {
	const char *security; /* psec module: native, munge, none */
	const char *bfrops;   /* v41, v4, v3, v21, v20 */
	uint8_t buffer_type;  /* 1 non-described, 2 fully described */
	const char *gds;      /* ds21, ds12, hash */
	const char *version;  /* the client library's PMIX_VERSION */
};

struct step {
	const char *nspace;
	uint32_t size;
	uid_t uid;
	gid_t gid;
	bool label;
	int width;       /* label width, Slurm's _wid(job size) */
	char *tmpdir;    /* --tmpdir, then ours under it */
	bool own_tmpdir; /* ours made: removed at exit */
	struct pmix_choice pmix;
	const char *relay; /* --fence-relay NAME: fences across nodes (relay.c) */
	pid_t also;        /* --also PID: the other nodes' srun, ended as a task */
	bool also_reaped;
	int also_status;
	struct task tasks[STEP_MAX_TASKS];
	int ntasks;
};

/* stdio.c */
int stdio_forward(struct step *s, struct task *t, struct stream *st);
void stdio_flush(struct step *s, uint32_t rank, struct stream *st);
int stdio_pending(struct step *s, const char *path);
void stream_init(struct stream *st, int fd, int out);

/* pmix-host.c */
int host_start(struct step *s, int abort_fd);
int host_server_port(struct step *s);

/* relay.c: the fences of a step on several nodes, through this node's
 * ckpt-coord (docs/coordinator.md). */
int relay_connect(const struct step *s);
/* Send this node's contributions; cb(status, data, len, arg) is called
 * from the relay's thread with every node's, in the order sent. */
typedef void (*relay_cb)(int status, char *data, size_t len, void *arg);
int relay_fence(const char *data, size_t len, relay_cb cb, void *arg);
void relay_close(void);

/* handshake.c */
int handshake_connect(const struct step *s, uint32_t rank, int port);
int choose_security(const char *list, const char **out);
int choose_gds(const char *list, const char **out);
int choose_buffer_type(const char *value, uint8_t *out);

/* args.c */
int step_parse_args(struct step *s, int argc, char **argv, bool *allow_root,
		    const char **pending);

#endif
