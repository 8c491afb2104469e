/*
 * agent: ckptctl as a client of ckptd.  A dump or restore goes through the
 * agent when one answers on its socket ($CKPT_SOCKET, else agent.socket
 * of ckpt.conf, else /run/ckpt/ckptd.sock; CKPT_SOCKET=none never uses
 * one); a user must go through it, root without an agent works standalone.
 */
#ifndef CKPT_CLI_AGENT_H
#define CKPT_CLI_AGENT_H

#include <stdint.h>

#include "ckpt/ckpt.h"

/* Without CKPT_SOCKET, set it to agent.socket of ckpt.conf, if there is
 * one: 0, or -1 after a message (a file that does not parse). */
int agent_socket_from_conf(void);
/* 1: use the agent; 0: standalone; -1: neither possible (message printed). */
int agent_route(const char *what);
int agent_dump(const struct ckpt_dump_opts *o, uint32_t job, struct ckpt_dump_stats *st);
/* *status is the restored root's wait status (without detach). */
/* ckptctl net-unlock NAME through ckptd: 0 or -errno (said). */
int agent_net_unlock(const char *name);
/* A job's restore in the job (docs/coordinator.md "Restore"): what a
 * multi-node set's plan needs from here.  net_lock_fd >= 0: the
 * restore's kept lock's name is written there, with a newline, once the
 * tree runs. */
struct restore_job_extra {
	const char *job_nodes; /* SLURM_JOB_NODELIST */
	const char *coord;     /* ckpt-coord's path */
	char **env;            /* for the step proxy's srun */
	int net_lock_fd;
};
int agent_restore(const struct ckpt_restore_opts *o, uint32_t job,
		  const struct restore_job_extra *x, struct ckpt_restore_stats *st, int *status);
/* coord-step.c: ckpt-coord beside ckptctl (or the build tree's). */
int coord_find(char *path, size_t len);
struct RpcRequest;
struct RpcReply;
/* One request, its one reply (NULL after a message when none came). */
struct RpcReply *agent_call(const struct RpcRequest *req);
/* 0 if r says the request worked, else 1 after its error line; frees r. */
int agent_finish(struct RpcReply *r);
/* The agent's error line of r, as one of ours ("ckptctl: ..."). */
void agent_error(const struct RpcReply *r);
/* A Slurm job id, digits only, 1 to 4294967295; else one line
 * "ckptctl: WHAT: bad job id 'S'" and -1. */
int parse_job_id(const char *what, const char *s, uint32_t *job);
/* One line for what getopt refused in argv (getopt_long returned c, with
 * ':' first in its optstring): an unknown option or a missing argument. */
void bad_option(const char *what, int c, char **argv);
/* A JSON string literal of s (NULL: ""), on stdout. */
void json_str(const char *s);
int cmd_status(int argc, char **argv);
/* status-nodes.c: status --nodes JOBID, each of its nodes' ckptd. */
int status_nodes(uint32_t job, uint32_t nodes);
int cmd_checkpoint(int argc, char **argv);
/* coord-step.c: the coordinator's job step for a job on `nodes` nodes. */
int coord_step(uint32_t job, uint32_t nodes, int vacate);
int cmd_cancel(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_unregister(int argc, char **argv);

#endif
