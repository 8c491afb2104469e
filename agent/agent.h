/*
 * ckptd internals.  The agent is one process: the main thread accepts
 * connections on the unix socket (and, when configured, TCP), one thread
 * per connection reads requests and answers them.  Dumps and restores run
 * in worker processes (ckptd itself, re-executed with --worker), one per
 * operation, so that a crash in the engine never takes the agent down, a
 * killed agent takes its workers with it (PR_SET_PDEATHSIG) and the
 * parasite cures itself, and operations on different jobs run at once.
 */
#ifndef CKPT_AGENT_H
#define CKPT_AGENT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "ckpt/ckpt.h"
#include "ckpt/client.h"
#include "rpc.pb-c.h"

/* Connections: each holds a thread until it closes; see slots.c. */
#define AGENT_MAX_CONNS 256     /* all together */
#define AGENT_ROOT_RESERVE 32   /* of those, only root's (uid 0) take these */
#define AGENT_MAX_UNAUTH 16     /* TCP ones before their munge credential */
#define AGENT_CONNS_PER_UID 16  /* default of agent.max_conns_per_uid */
#define AGENT_REQ_TIMEOUT_S 30  /* default of agent.request_timeout_s */
#define AGENT_MAX_OPS 64      /* running + recent results kept for status */
#define AGENT_MAX_PIDS 4096   /* per registered job */

/* Who sent a request (SO_PEERCRED, or the munge credential over TCP). */
struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid; /* 0 over TCP */
};

struct job {
	struct job *next;
	uint32_t id;
	uid_t uid;
	uint32_t steps[64];
	size_t nr_steps;
	pid_t *pids; /* roots, with the step each belongs to */
	uint32_t *pid_steps;
	size_t nr_pids;
	char *cgroup, *policy, *dir;
	uint32_t interval_min;
	int disabled;    /* ckptctl checkpoint disable */
	pid_t wrapper;   /* a registered pid that wraps the job's tree (ckpt-batch) */
	uint64_t next_periodic_ns; /* policy periodic: when the next checkpoint is due */
	uint32_t nodes;  /* nodes the job runs on (Slurm); > 1 needs the coordinator */
	char last_error[256]; /* the last failed operation, for ckptctl checkpoint error */
	uint64_t last_error_ns;
	/* The job ended here (unregistered as a whole): no tasks, kept as the
	 * record of where its sets are and of its last error, for ckptctl
	 * checkpoint list/error and restore --job after its end.  Hidden from
	 * plain status; forgotten retention.ended_keep_s after the end, as
	 * its sets are; at most MAX_ENDED_JOBS, the oldest forgotten first. */
	uint64_t ended_ns;
};

/* OP_CHECK: a dump with check_only (ckptctl checkpoint able): it stops
 * and writes nothing, so it never stands in the way of another operation. */
enum op_kind { OP_DUMP, OP_RESTORE, OP_CHECK };

struct op {
	int used;
	uint32_t id;
	enum op_kind kind;
	uint32_t job_id; /* 0: not a job */
	uid_t uid;
	pid_t target;    /* dump: root of the tree; restore: restored root */
	pid_t worker;
	char dir[PATH_MAX];
	uint64_t start_ns, end_ns;
	int running;
	int started;     /* restore: the tree runs, the worker waits for it */
	uint64_t ran_ns; /* restore: when it began to run (the restore's own end) */
	char phase[16];
	uint64_t done, total;
	int result;
	char error[256];
};

struct agent {
	pthread_mutex_t lock;
	struct job *jobs;
	struct op ops[AGENT_MAX_OPS];
	uint32_t next_op;
	uint64_t start_ns;
	char exe[PATH_MAX];    /* this binary, for workers */
	char run_dir[1024]; /* /run/ckpt: socket, journal of operations */
	int munge_tcp;         /* TCP connections authenticate with munge */
	char storage_base[1024]; /* storage.base: where jobs' sets live by default */
	char storage_local[1024]; /* storage.local: the node-local tier, "" for none */
	uint64_t interval_unit_s; /* agent.interval_unit_s: seconds per --checkpoint-interval unit */
	uint64_t ended_keep_s; /* retention.ended_keep_s: records of ended jobs, kept */
	uint64_t request_timeout_ns; /* agent.request_timeout_s: to read a whole request */
};

extern struct agent agent;

/* log.c: one line to stderr or syslog; job 0 prints "-". */
void agent_log(uint32_t job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void agent_log_to_syslog(void);
uint64_t agent_now_ns(void);
/* A line any client can cause at will (a refused connection): logged at
 * most once per LOG_BURST_S for each struct log_burst, the next line
 * counting those left out, so that a flood of them cannot flood the log
 * (nor the disk under it). */
#define LOG_BURST_S 10
struct log_burst {
	pthread_mutex_t lock;
	uint64_t last_ns;
	unsigned left_out;
};
#define LOG_BURST_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }
void agent_log_burst(struct log_burst *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* conn.c */
enum conn_slot { SLOT_NONE, SLOT_ROOT, SLOT_USER, SLOT_UNAUTH };
struct conn {
	int fd;
	struct peer peer;
	int tcp;
	int authed;           /* peer is known: unix, or TCP after munge */
	enum conn_slot slot;  /* the slot it holds (slots.c) */
	uint64_t deadline_ns; /* wire_clock_ns by which the next request must be in */
};
void *conn_thread(void *arg); /* arg: struct conn * */

/* slots.c: who may hold a connection.  0, or -EAGAIN with the reason in
 * why (for the client; slots logs it). */
int slots_take(struct conn *c, char *why, size_t len);
void slots_give_back(struct conn *c);
int slots_in_use(void);
void slots_set_per_uid(int max);

/* ckptd.c */
void start_conn(int fd, int tcp);

/* tcp.c */
int tcp_listen(int port);
int tcp_auth(struct conn *c); /* first frame: munge credential -> c->peer */
int accept_loop(int lfd, int tfd, int stopfd);
int conn_reply(int fd, RpcReply *r);
int conn_error(int fd, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* jobs.c (agent.lock held by the callers of *_locked) */
int jobs_register(const struct peer *p, const RpcRegister *r, char *err, size_t errlen);
int jobs_unregister(const struct peer *p, const RpcUnregister *r, char *err, size_t errlen);
struct job *jobs_find_locked(uint32_t id);
/* with_ended: also the records of jobs that ended here. */
void jobs_fill_locked(const struct peer *p, uint32_t job_id, int with_ended, RpcReply *r);
void jobs_free_reply(RpcReply *r);

/* auth.c */
int auth_may_dump_tree(const struct peer *p, pid_t root, char *err, size_t errlen);
int auth_peer_groups(const struct peer *p, gid_t *groups, int *nr);
pid_t auth_wrapped_child(pid_t wrapper, pid_t exclude, pid_t exclude2);

/* steps.c: the srun steps of a job (docs/mpi.md) */
#define JOB_STEPS_MAX 16
#define JOB_STEP_TASKS_MAX 256
struct job_steps {
	size_t nr;
	uint32_t id[JOB_STEPS_MAX];
	uint32_t client[JOB_STEPS_MAX];
	uint32_t tasks[JOB_STEPS_MAX][JOB_STEP_TASKS_MAX];
	size_t nr_tasks[JOB_STEPS_MAX];
	/* a step without a task here (all on other nodes): Slurm's record */
	char nodes[JOB_STEPS_MAX][256];
	uint32_t num_tasks[JOB_STEPS_MAX];
	RpcStep rpc[JOB_STEPS_MAX];
	RpcStep *ptrs[JOB_STEPS_MAX];
};
/* A held dump on a node without the batch script whose tasks are ranks
 * of one step on several nodes (PMIx clients of their slurmstepd): the
 * stand-in (d->stand_in, a child of the caller, the coordinator) is
 * their client and the part's root.  1 with st filled, 0 when the tasks
 * are something else (mpirun's daemon: a tree of its own), -errno with
 * err set.  Under agent.lock. */
int steps_stand_in(const struct job *j, const RpcDump *d, pid_t caller, struct job_steps *st,
		   char *err, size_t errlen);
/* Does the job have its batch script here?  Under agent.lock. */
int steps_job_has_batch(const struct job *j);
/* Each srun step's registered tasks, under agent.lock.  0, or -errno
 * with err set. */
int steps_collect_locked(const struct job *j, struct job_steps *out, char *err, size_t errlen);
/* Each step's client: the srun of the tree rooted at root that listens
 * on the step's SLURM_SRUN_COMM_PORT.  0, or -ENOTSUP with err set. */
int steps_find_clients(uint32_t job, pid_t root, struct job_steps *st, char *err, size_t errlen);
/* The job's steps launched from the batch script's tree (root) whose
 * tasks all run on other nodes (d->remote_steps: Slurm's list, through
 * the coordinator), added to st with their srun as client, which must be
 * a process of that tree.  0, or -ENOTSUP with err set. */
int steps_add_remote(uint32_t job, pid_t root, const RpcDump *d, struct job_steps *st, char *err,
		     size_t errlen);
/* Point req's steps at st's (which must outlive req). */
void steps_to_rpc(struct job_steps *st, RpcDump *req);

/* periodic.c: checkpoints of jobs with policy "periodic". */
int periodic_start(void);

/* ops.c */
int ops_dump(struct conn *c, const RpcDump *d);
/* A dump the agent starts itself (periodic): no client to answer. */
int ops_dump_job(uint32_t job, int leave_running);
int ops_restore(struct conn *c, const RpcRestore *r);
int ops_cancel(const struct peer *p, uint32_t job, char *err, size_t errlen);
struct ident;
struct fd_list;
struct worker_msg;
int ops_worker_run(struct conn *c, const ProtobufCMessage *req, const char *what, uint32_t id,
		   uint32_t job, const struct ident *who, const struct fd_list *fds, int journal,
		   const char *held, struct worker_msg *res, char *err, size_t errlen);
void ops_fill_locked(const struct peer *p, uint32_t job_id, RpcReply *r);
void ops_free_reply(RpcReply *r);
void ops_recover(void); /* at start: clean what a killed agent left */
void jobs_load(void);   /* at start: registrations of a previous agent */
void jobs_free_all(void);
void jobs_set_root_locked(uint32_t id, pid_t root);
void jobs_failed_locked(uint32_t id, const char *what, const char *err);
int jobs_ctl(const struct peer *p, const RpcJobCtl *c, char *err, size_t errlen);

/* worker.c: main of `ckptd --worker dump|restore`. */
int worker_main(int argc, char **argv);

/* What a worker tells the agent on fd WORKER_REPORT_FD. */
#define WORKER_REQ_FD 3
#define WORKER_REPORT_FD 4
#define WORKER_FD_BASE 5 /* the client's --inherit-fd fds, in order */
enum {
	WMSG_PROGRESS = 1,
	WMSG_RESULT,
	WMSG_STARTED, /* restore: the tree runs, pid */
	WMSG_CREATED, /* dump: made `path` (dev, ino, in the directory pdev, pino) */
	WMSG_GATE,    /* held dump at a gate: phase, seq, tasks, pid, crc, path (held.c) */
};
/* A created path fits a record; the agent refuses longer dump paths. */
#define WMSG_PATH_MAX 3072
#define AGENT_DUMP_PATH_MAX 2048
struct worker_msg {
	uint32_t type;
	char phase[16];
	uint64_t done, total;
	int32_t result;
	uint64_t frozen_ns, total_ns, memory_bytes, written_bytes, image_bytes;
	uint32_t tasks, threads, pidns, status_valid, netns;
	uint64_t seq;
	uint64_t snapshot_ns;
	uint32_t snapshot_tasks, frozen_copy_tasks;
	uint64_t phase_ns[CKPT_PHASE_NR]; /* frozen_ns by step */
	int32_t pid, status;
	uint64_t dev, ino, pdev, pino; /* WMSG_CREATED */
	uint32_t is_dir;
	uint32_t no_set; /* WMSG_RESULT of a restore: the job has no committed set */
	uint32_t crc;    /* WMSG_GATE "dumped": the part's manifest crc32c */
	char net_lock[64]; /* WMSG_RESULT of a restore --keep-net-lock: the lock left */
	char path[WMSG_PATH_MAX];
};
/* One write, one read: a record must be written atomically (the
 * background flusher shares the pipe with the worker). */
_Static_assert(sizeof(struct worker_msg) <= 4096, "worker_msg larger than PIPE_BUF");

/* ident.c: whom a worker becomes; root stays root, anyone else see
 * worker.c. */
struct ident {
	uid_t uid;
	gid_t gid;
	char groups[256 * 11]; /* "G1,G2,..." or "-" */
	pid_t peer;            /* a user's restore takes this process's limits */
};

int ident_of_user(uid_t uid, gid_t gid, struct ident *id); /* gid (gid_t)-1: primary */
int ident_of_peer(const struct conn *c, struct ident *id);
int in_groups(gid_t gid, const char *groups);
gid_t gid_of(pid_t pid); /* real gid of pid, or (gid_t)-1 */
/* The first number of /proc/PID/status's line "KEY:", or -1. */
long status_number(pid_t pid, const char *key);

/* --inherit-fd: the client's fds and the specs rewritten to name them
 * where the worker will have them. */
struct fd_list {
	int fd[CKPT_MAX_INHERIT_FDS];
	size_t nr;
	char *spec[CKPT_MAX_INHERIT_FDS];
	char text[CKPT_MAX_INHERIT_FDS][PATH_MAX + 32];
};

int recv_inherit(struct conn *c, const RpcRestore *r, struct fd_list *l, char *err,
		 size_t errlen);
void fds_close(struct fd_list *l);

/* confine.c: the seccomp filters of a confined user's asking process. */
struct confinement {
	RpcSeccompFilter filter[16];
	RpcSeccompFilter *ptr[16];
	size_t nr;
};
int confine_read(const struct conn *c, struct confinement *out, char *err, size_t errlen);
void confine_free(struct confinement *c);

/* held.c: a coordinated dump (see there). */
struct held {
	const char *job, *base, *node;
	uint32_t timeout_s;
	uint64_t seq;
	char dir[PATH_MAX];
};
enum ckpt_gate;
struct ckpt_gate_info;
void held_init(struct held *h, const RpcDump *d);
int held_gate(void *arg, enum ckpt_gate gate, struct ckpt_gate_info *info);
int do_commit_set(const RpcCommitSet *cs);
int held_relay_client(struct conn *c, uint32_t job, int pipe);
void held_reply_gate(struct conn *c, const struct worker_msg *m, const char *node);
int held_node_name(const char *name);
int ops_commit_set(struct conn *c, const RpcCommitSet *cs);

/* journal.c (see there) */
int journal_add(uint32_t id, uint32_t job, uid_t uid, gid_t gid, const char *where);
void journal_created(int fd, const struct worker_msg *m);
void journal_path(uint32_t id, char *path, size_t len);
void journal_del(uint32_t id);
void journal_clean(int dirfd, const char *name);

#endif
