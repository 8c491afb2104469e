/*
 * libckpt public API: dump a live process tree into an image directory and
 * restore it.  Everything else in libckpt/ is internal.
 */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include <stdint.h>
#include <sys/types.h>

/* Progress of a long operation: `phase` is "memory" (dump) or "restore";
 * done/total are bytes (an estimate: total is the tree's resident memory
 * for a dump, the page images' size for a restore).  Called from a thread
 * of the engine's about every 200 ms while the operation runs. */
typedef void (*ckpt_progress_fn)(void *arg, const char *phase, uint64_t done, uint64_t total);

/* A held dump's gates (a coordinated dump, docs/coordinator.md). */
enum ckpt_gate {
	/* Every task is frozen and everything that can refuse the dump has
	 * been checked; nothing is written yet.  The gate names the image
	 * directory to write (info->dir), which opts->dir may leave unset. */
	CKPT_GATE_FROZEN,
	/* The set is written, fsynced and has its manifest (crc in
	 * info->manifest_crc); the tree is still frozen.  0 lets the dump
	 * release the tree as the options say. */
	CKPT_GATE_DUMPED,
};

struct ckpt_gate_info {
	uint32_t nr_tasks;
	pid_t root;
	const char *dir;       /* FROZEN: set by the gate; DUMPED: the set written */
	uint32_t manifest_crc; /* DUMPED */
};

/* 0 goes on; anything else aborts the dump: the part is removed and
 * every task thawed, as for any failed dump, and ckpt_dump returns it. */
typedef int (*ckpt_gate_fn)(void *arg, enum ckpt_gate gate, struct ckpt_gate_info *info);

struct ckpt_dump_opts {
	pid_t pid;         /* root of the tree */
	const char *dir;   /* image directory, created if missing */
	int leave_running; /* -R: tree goes on after the dump */
	int leave_stopped; /* -s: tree is left stopped (SIGSTOP) */
	int verbose;
	int ext_unix_sk_all;         /* --ext-unix-sk: every external unix socket */
	const uint64_t *ext_unix_sk; /* --ext-unix-sk=INODE (repeatable) */
	size_t nr_ext_unix_sk;
	int tcp_established;         /* --tcp-established: connections to outside peers too */
	int skip_in_flight;          /* --skip-in-flight: drop connections not accepted yet */
	int shell_job;               /* --shell-job: the tree's tty is the caller's */
	uint64_t ghost_limit;        /* --ghost-limit: largest unlinked file kept; 0: 1 MiB */
	/* --output-copy-limit: the largest output file (O_APPEND, the job's
	 * own) whose contents are kept with the set; unset: ckpt.conf's
	 * dump.output_copy_limit, or 64 MiB.  0: none is kept. */
	int has_output_copy_limit;
	uint64_t output_copy_limit;
	const char *parent;          /* --parent SET: store only pages changed since SET */
	ckpt_progress_fn progress;   /* optional */
	void *progress_arg;
	int only_uid_set;            /* refuse unless every frozen task is wholly only_uid's */
	uid_t only_uid;              /* (all four uids) and dumpable: the agent, for users */
	const char *job;             /* --job JOBID: write set BASE/JOBID/SEQ instead of dir */
	const char *base;            /* --base DIR: instead of storage.base of ckpt.conf */
	int has_uid;                 /* --uid: the job's user owns the set (else the root's owner) */
	uid_t uid;
	/* --check-only: find what this dump would refuse (the tree's shape,
	 * every mapping, every fd and what it is connected to) on the
	 * running tree, without seizing, stopping or changing any task and
	 * without writing anything; dir and job are not needed.  0, or the
	 * dump's refusal (one line naming the object). */
	int check_only;
	/* srun steps of a batch job (docs/mpi.md): each client (an srun of
	 * the tree) is not dumped but recorded, and the step's tasks, which
	 * run under slurmstepd outside the tree, are dumped as its children.
	 * The restore puts the step proxy, ckpt-step, in the client's place. */
	const struct ckpt_step *steps;
	size_t nr_steps;
	/* --page-server HOST:PORT: the pages go to `ckptctl page-server` there
	 * (munge-authenticated), then the rest of the set and its manifest:
	 * the committed set is the server's directory; dir keeps only the
	 * metadata.  Not with job or parent. */
	const char *page_server;
	/* A held dump: called at each gate (see enum ckpt_gate).  Only with
	 * an image directory the FROZEN gate names (not job, page_server). */
	ckpt_gate_fn gate;
	void *gate_arg;
	/* The root's fds 0-2 are its job step's stdio (a node's part of a
	 * multi-node set, docs/coordinator.md): a pipe there whose other end
	 * is outside the tree is recorded as such (step_stdio), and only a
	 * restore that hands it an fd (--inherit-fd fd[K]:root-fd:K) takes
	 * it.  Bytes in flight on it refuse the dump. */
	int root_stdio_step;
	/* --no-snapshot: the tree stays frozen while its memory is copied.
	 * By default a tree left running (-R) is thawed once all but its
	 * private memory is dumped, and that is read from copy-on-write
	 * snapshots of its processes (libckpt/snapshot.c). */
	int no_snapshot;
	/* --track (ckptctl pre-dump): start dirty-page tracking of the tree
	 * (libckpt/track.c), which goes on running: a later dump with this
	 * set as --parent reads only the pages written since.  Tracking
	 * once started goes on at every dump that leaves the tree running. */
	int track;
};

/* The value of `key` in process pid's environment as it started
 * (/proc/PID/environ), malloc'ed; NULL if none or unreadable. */
char *ckpt_environ_get(pid_t pid, const char *key);

/* One srun step on this node: its client in the tree and its tasks. */
struct ckpt_step {
	pid_t client;
	const pid_t *tasks;
	size_t nr_tasks;
	/* No task here (nr_tasks 0): a step whose tasks all run on other
	 * nodes, as Slurm lists it; their nodes' parts hold them. */
	uint32_t step_id;
	const char *nodes;
	uint32_t num_tasks;
};

/* The steps of a dump's frozen window, timed (ckpt_dump_stats.phase_ns):
 * freeze the tree; check what may refuse it; a task's /proc state and
 * registers; inject the parasite; what it reads; the snapshot's fork;
 * cure; the VMA list (mm); pages copied while frozen; files, IPC and
 * cgroups; the inventory; thaw. */
enum ckpt_dump_phase {
	CKPT_PHASE_FREEZE,
	CKPT_PHASE_CHECK,
	CKPT_PHASE_TASK,
	CKPT_PHASE_INFECT,
	CKPT_PHASE_PARASITE,
	CKPT_PHASE_SNAPSHOT,
	CKPT_PHASE_CURE,
	CKPT_PHASE_MM,
	CKPT_PHASE_PAGES,
	CKPT_PHASE_FILES,
	CKPT_PHASE_INVENTORY,
	CKPT_PHASE_THAW,
	CKPT_PHASE_NR
};

/* "freeze", "check"... ("?" for a number out of range). */
const char *ckpt_dump_phase_name(int phase);

struct ckpt_dump_stats {
	uint64_t frozen_ns;     /* first thread frozen .. tree released (thawed) */
	uint64_t phase_ns[CKPT_PHASE_NR]; /* frozen_ns by step (phase.h) */
	uint64_t snapshot_ns;   /* thaw .. the last snapshot read and written */
	uint32_t snapshot_tasks;    /* processes whose memory came from a snapshot */
	uint32_t frozen_copy_tasks; /* processes that could have one, copied frozen */
	uint64_t total_ns;      /* whole dump, commit included */
	uint64_t memory_bytes;  /* non-zero page bytes read from the tree */
	uint64_t written_bytes; /* bytes of all image files */
	uint32_t nr_tasks, nr_threads;
	uint64_t seq;    /* --job: the SEQ of the new set */
	pid_t flusher;   /* --job with storage.flush = background: the flushing process */
	/* dirty-page tracking (docs/sets.md): pages written since the parent
	 * in tracked mappings, pages taken from the parent unread, and the
	 * ckpt-track process keeping the tracking for the next dump (0: none) */
	uint64_t tracked_written_pages, tracked_unread_pages;
	pid_t track_keeper;
};

/* 0 or a negative errno; one line on stderr names what failed.  On
 * failure the tree runs on exactly as before (-s applies to a dump that
 * succeeded only) and no committed image is left in dir. */
int ckpt_dump(const struct ckpt_dump_opts *opts, struct ckpt_dump_stats *stats);

/* The SEQ the next set of job `job` in `base` (NULL: storage.base) would
 * take: one above the highest there (1 for none). */
int ckpt_job_next_seq(const char *job, const char *base, uint64_t *seq);

/* BASE/JOB, BASE `base` or storage.base (NULL). */
int ckpt_job_dir(const char *job, const char *base, char *dir, size_t len);

/* One node's part of a multi-node set, for ckpt_job_commit_parts. */
struct ckpt_part {
	const char *node;
	uint32_t manifest_crc;
	uint32_t rank, root_pid;
	int batch;           /* the part with the job's batch script */
	const char *address; /* the node's address at the dump, or NULL */
};

/* Commit the multi-node set BASE/JOB/SEQ: each part's nodes/NODE/manifest
 * must be there with its crc; then the set's manifest naming them, then
 * `latest`.  `uid` >= 0: the owner of the set's manifest. */
int ckpt_job_commit_parts(const char *job, const char *base, uint64_t seq, int64_t uid,
			  const struct ckpt_part *parts, size_t nr);

/* A seccomp filter: struct sock_filter[] of len bytes, and its flags. */
struct ckpt_seccomp {
	const void *insns;
	size_t len;
	uint64_t flags;
};

/* The seccomp filters of process `pid`'s main thread, oldest first, into
 * out[max]: it is seized and stopped for the read and let go at once (it
 * must not be traced; reading needs CAP_SYS_ADMIN).  Each insns is
 * malloc'ed: ckpt_seccomp_free.  How many, or a negative errno (-E2BIG:
 * more than max, or one longer than the kernel's BPF_MAXINSNS). */
int ckpt_seccomp_of(pid_t pid, struct ckpt_seccomp *out, size_t max);
void ckpt_seccomp_free(struct ckpt_seccomp *f, size_t n);

enum ckpt_pidns_mode {
	CKPT_PIDNS_AUTO = 0, /* fresh PID namespace only when a PID is taken */
	CKPT_PIDNS_NEVER,
	CKPT_PIDNS_ALWAYS,
};

/* A fresh network namespace, where every port is free, for a job whose
 * network is private: each connection has both ends in the job, each
 * socket is bound to a wildcard or loopback address or one of this
 * node's (which the namespace gets, on lo).  The calling process moves
 * into it (unshare): a process restores at most once. */
enum ckpt_netns_mode {
	CKPT_NETNS_AUTO = 0, /* only when a port the job binds is taken here by a live socket */
	CKPT_NETNS_NEVER,
	CKPT_NETNS_ALWAYS, /* refused when the network is not private */
};

/* Where restored threads go (docs/cgroups.md). */
enum ckpt_cgroups_mode {
	CKPT_CGROUPS_EXACT = 0, /* the dumped cgroups (after --cgroup-root), or fail naming one */
	CKPT_CGROUPS_RELATIVE,  /* the dumped root's cgroup is the restoring process's */
	CKPT_CGROUPS_IGNORE,    /* asked for: left in the restorer's cgroups, not compared */
};

/* What of the dumping CPU a restore requires of this one
 * (docs/placement.md): CKPT_CPU_CAP_ALL, the default, every recorded
 * feature flag and every XSAVE component the tasks used; FPU only the
 * XSAVE components and layout (the registers must come back); NONE
 * compares nothing (warns).  Checked before anything is created. */
enum ckpt_cpu_cap {
	CKPT_CPU_CAP_ALL = 0,
	CKPT_CPU_CAP_FPU,
	CKPT_CPU_CAP_NONE,
};

/* A thread's CPU binding (and its memory policy's nodes) that this node
 * or the job's cpuset does not allow: EXACT, the default, refuses the
 * restore naming the thread; JOB maps it onto the allowed CPUs, keeping
 * the number of CPUs and their NUMA node where it can. */
enum ckpt_cpu_map {
	CKPT_CPU_MAP_EXACT = 0,
	CKPT_CPU_MAP_JOB,
};

struct ckpt_restore_opts {
	const char *dir;
	int detach;          /* -d: return once the tree runs */
	int lazy;            /* --lazy: run at once, memory filled by a page server (lazy-serve.c) */
	int lazy_report;     /* --lazy --stats: the server prints its figures when done */
	const char *pidfile; /* restored root's PID as the caller sees it */
	enum ckpt_pidns_mode pidns;
	enum ckpt_netns_mode netns;
	int verbose;
	int shell_job;                 /* --shell-job: attach the tree to our tty */
	int skip_file_check;           /* --skip-file-check: restore files changed since the dump */
	int keep_later_output;         /* --keep-later-output: no cut back of the job's output */
	int tcp_close;                 /* --tcp-close: TCP connections come back closed (reset) */
	/* --inet-map OLD=NEW[,OLD=NEW...]: inet sockets bound on OLD are bound
	 * on NEW, connections to OLD go to NEW (docs/files.md, "Connections
	 * onto new addresses"). */
	const char *inet_map;
	/* --keep-net-lock: the restore's network lock on the connections to
	 * peers outside the tree stays once the tree runs (its name in
	 * ckpt_restore_stats.net_lock), until ckpt_net_unlock. */
	int keep_net_lock;
	int verify;                    /* --verify: compare the stopped tree with the images */
	const char *const *inherit_fd; /* --inherit-fd fd[N]:RESOURCE (repeatable) */
	size_t nr_inherit_fd;
	ckpt_progress_fn progress; /* optional */
	void *progress_arg;
	const char *job;  /* --job JOBID: the latest committed set of the job (instead of dir) */
	const char *base; /* --base DIR: instead of storage.base of ckpt.conf */
	/* A user's restore (ckptd's worker, which runs as the user): every
	 * capability this process holds was lent for the restore.  Each
	 * process must come back with exactly our uids, gids and groups and
	 * no capability (checked on the loaded images, one line naming what
	 * differs), no set-id program as its exe, and none of what we hold
	 * reaches the restored program (docs/security.md). */
	int unprivileged;
	/* The seccomp filters this process runs under (a confined user's,
	 * ckptd's worker installed them): every process of the images must
	 * have them first in its chain, and inherits them instead of
	 * installing them again. */
	const struct ckpt_seccomp *confine;
	size_t nr_confine;
	/* Cgroups (docs/cgroups.md): by default every thread goes back into
	 * the cgroup it was dumped in, on every hierarchy, or the restore
	 * fails naming it.  --cgroup-root "[HIER:]OLD=NEW" (repeatable)
	 * rewrites the dumped prefix OLD into NEW, on hierarchy HIER
	 * ("memory", "cpu,cpuacct", "name=systemd", "cgroup2") or on all;
	 * --cgroups relative: the dumped root's cgroup on each hierarchy
	 * becomes the one the restoring process is in (rules given first). */
	const char *const *cgroup_root;
	size_t nr_cgroup_root;
	enum ckpt_cgroups_mode cgroups;
	enum ckpt_cpu_cap cpu_cap; /* --cpu-cap */
	enum ckpt_cpu_map cpu_map; /* --cpu-map */
	/* A multi-node set's batch part (ckpt_restore_plan): the proxy of its
	 * step whose tasks ran on other nodes execs this command line (srun
	 * of the coordinator's restore on every node, NULL-terminated), with
	 * "--net-lock=NAME" added, in this environment (NULL: ours). */
	const char *const *step_remote_argv;
	const char *const *step_env;
	/* A node's part of a set whose srun step had ranks on several nodes:
	 * the step proxy's fences go through this node's ckpt-coord --relay
	 * NAME (ckptctl restore --step-relay, given by ckpt-coord). */
	const char *step_relay;
};

/* A multi-node set restored from its batch node (docs/coordinator.md
 * "Restore"): which part goes to which node of the new allocation, the
 * addresses that change, and the coordinator's step that restores the
 * other parts once this one is built. */
#define CKPT_PLAN_NODES 64
struct ckpt_restore_plan {
	char set_dir[4096];      /* BASE/JOB/SEQ */
	char part_dir[4200];     /* SEQ/nodes/PART: this node's, the batch part */
	char inet_map[2048];     /* OLD=NEW,... ("" when no address changes) */
	char place[2048];        /* PART=NODE,... */
	char nodes[2048];        /* the nodes that get a part, for srun -w */
	char ntasks[16];
	char host[72];           /* this node: the batch part's */
	char *argv[40];          /* the proxy's srun (step_remote_argv) */
	size_t nr_parts;
};
/* If o->dir is a multi-node set: plan its restore on this node (`host`),
 * one of `job_nodes` (a Slurm hostlist: SLURM_JOB_NODELIST), and point o
 * at the batch part, with its addresses mapped, the network lock kept
 * and the proxy's command line (`coord`: ckpt-coord's path, `job`: the
 * job id).  0 (plan->nr_parts 0: a set of one node, o unchanged), or
 * -errno after one line naming what does not fit. */
int ckpt_restore_plan(struct ckpt_restore_opts *o, const char *job, const char *job_nodes,
		      const char *host, const char *coord, struct ckpt_restore_plan *plan);
/* The port of the PMIx server (slurmstepd's) that pid's environment names
 * (PMIX_SERVER_URI*: "...;tcp4://127.0.0.1:PORT"), or 0. */
unsigned ckpt_step_pmix_port(pid_t pid);
/* Expand a Slurm hostlist ("ckn[1-2,5],login") into names[max]; *nr.
 * -EINVAL on a malformed one, -E2BIG beyond max. */
int ckpt_hostlist_expand(const char *spec, char (*names)[72], size_t max, size_t *nr);

struct ckpt_restore_stats {
	uint64_t total_ns;     /* start of restore .. tree running */
	uint64_t memory_bytes; /* page bytes restored */
	uint64_t image_bytes;  /* bytes of image files read */
	int used_pidns;        /* restored into a fresh PID namespace */
	int used_netns;        /* restored into a fresh network namespace */
	pid_t root_pid;        /* the restored root as the caller sees it */
	char net_lock[64];     /* --keep-net-lock: the lock left in place, "" if none */
	pid_t lazy_server;     /* --lazy: the page server still filling memory (0: none) */
};

/* Lift network lock `name` (restore --keep-net-lock) of this network
 * namespace: one whose name says it is uid's (0: anyone's).  0 or -errno
 * after one line. */
int ckpt_net_unlock(const char *name, uid_t uid);

/* Without detach: waits for the restored root and stores its wait status
 * in *status.  0 or a negative errno; on failure nothing restored is left
 * running. */
int ckpt_restore(const struct ckpt_restore_opts *opts, struct ckpt_restore_stats *stats,
		 int *status);

/* Move the calling process into every cgroup process `pid` is in, on
 * every hierarchy mounted here (ckptd's restore worker, as root, joins its
 * client's, e.g. a Slurm job step's, before it becomes the user: what it
 * restores is created there).  With uid not 0, pid must be uid's.  0, or
 * a negative errno after one line naming the cgroup. */
int ckpt_join_cgroups(pid_t pid, uid_t uid);

/* Prints each kernel feature ckpt relies on; 0 when dump and restore can
 * work on this machine. */
int ckpt_check(int verbose);

/* check-restore: whether this node can restore the set of opts->dir
 * (its CPU, kernel and CPU bindings, under opts->cpu_cap and cpu_map),
 * without creating anything.  0, or a negative errno after one line per
 * reason on stderr. */
int ckpt_check_restore(const struct ckpt_restore_opts *opts);

/* This CPU's feature flags as Slurm node Features would list them,
 * comma-separated ("avx2,avx512f,..."), into buf. 0 or -ENOSPC. */
int ckpt_cpu_features(char *buf, size_t len);

/* The --constraint a requeue gives sbatch so that the job lands on a node
 * that can restore the set in dir: the set's feature flags joined by '&',
 * only those in `only` (the comma-separated features the site gives its
 * nodes; NULL: all; docs/placement.md).  0 or a negative errno. */
int ckpt_set_constraint(const char *dir, const char *only, char *buf, size_t len);

/* The directory of job `job`'s latest committed set under `base` (NULL:
 * storage.base of ckpt.conf).  0 or a negative errno (-ENOENT: none). */
int ckpt_job_latest(const char *job, const char *base, char *dir, size_t len);

#endif
