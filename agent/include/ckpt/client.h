/*
 * The client side of the node agent's protocol (proto/rpc.proto): what
 * ckptctl, the Slurm plugin and the coordinator use to talk to ckptd.
 * Every call connects to the agent's unix socket (CKPT_SOCKET in the
 * environment, else /run/ckpt/ckptd.sock), sends one request and reads
 * the replies.  Calls return 0 or -errno; -ENOENT/-ECONNREFUSED mean no
 * agent is running.  An error the agent sends back is copied into the
 * caller's buffer when one is given.
 */
#ifndef CKPT_CLIENT_H
#define CKPT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CKPT_SOCKET_DEFAULT "/run/ckpt/ckptd.sock"

/* The agent's socket path: $CKPT_SOCKET or the default; NULL when
 * CKPT_SOCKET=none (never use an agent). */
const char *ckpt_client_socket(void);

/* 1 when an agent answers on its socket. */
int ckpt_client_agent_up(void);

struct ckpt_job_reg {
	uint32_t job_id, step_id;
	uid_t uid;
	const pid_t *pids; /* roots of the step's task trees */
	size_t nr_pids;
	const char *cgroup; /* may be NULL */
	const char *policy; /* on-preempt | periodic | manual, may be NULL */
	const char *dir;    /* checkpoint directory, may be NULL */
	uint32_t interval_min;
	int wrapper; /* pids are wrappers (ckpt-batch): the tree is each one's child */
	uint32_t nodes; /* nodes the job runs on (0: 1) */
};

int ckpt_client_register(const struct ckpt_job_reg *r);
/* step_id < 0: the whole job. */
int ckpt_client_unregister(uint32_t job_id, int64_t step_id);

/* A connection for requests with several replies (used by ckptctl). */
struct ckpt_conn;
#define CKPT_MAX_INHERIT_FDS 16
int ckpt_conn_open(const char *path, struct ckpt_conn **out);
/* Send a packed rpc_request. */
int ckpt_conn_send(struct ckpt_conn *c, const void *buf, size_t len);
/* Right after a restore request with --inherit-fd: the caller's fds, in
 * the order of the request's inherit_fd entries (one byte, SCM_RIGHTS).
 * The agent hands the restore exactly these, never fds of its own. */
int ckpt_conn_send_fds(struct ckpt_conn *c, const int *fds, size_t n);
/* Receive one frame (malloc'ed into *buf), at most `max` bytes. */
int ckpt_conn_recv(struct ckpt_conn *c, void **buf, size_t *len, size_t max);
void ckpt_conn_close(struct ckpt_conn *c);
/* The connection's socket, to poll (the coordinator: is its dump held?). */
int ckpt_conn_fd(const struct ckpt_conn *c);

#endif
