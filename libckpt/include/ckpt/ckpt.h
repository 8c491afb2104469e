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
};

/* The value of `key` in process pid's environment as it started
 * (/proc/PID/environ), malloc'ed; NULL if none or unreadable. */
char *ckpt_environ_get(pid_t pid, const char *key);

/* One srun step on this node: its client in the tree and its tasks. */
struct ckpt_step {
	pid_t client;
	const pid_t *tasks;
	size_t nr_tasks;
};

struct ckpt_dump_stats {
	uint64_t frozen_ns;     /* first thread frozen .. tree released */
	uint64_t total_ns;      /* whole dump, commit included */
	uint64_t memory_bytes;  /* non-zero page bytes read from the tree */
	uint64_t written_bytes; /* bytes of all image files */
	uint32_t nr_tasks, nr_threads;
	uint64_t seq;    /* --job: the SEQ of the new set */
	pid_t flusher;   /* --job with storage.flush = background: the flushing process */
};

/* 0 or a negative errno; one line on stderr names what failed.  On
 * failure the tree runs on exactly as before (-s applies to a dump that
 * succeeded only) and no committed image is left in dir. */
int ckpt_dump(const struct ckpt_dump_opts *opts, struct ckpt_dump_stats *stats);

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
};

struct ckpt_restore_stats {
	uint64_t total_ns;     /* start of restore .. tree running */
	uint64_t memory_bytes; /* page bytes restored */
	uint64_t image_bytes;  /* bytes of image files read */
	int used_pidns;        /* restored into a fresh PID namespace */
	int used_netns;        /* restored into a fresh network namespace */
	pid_t root_pid;        /* the restored root as the caller sees it */
	pid_t lazy_server;     /* --lazy: the page server still filling memory (0: none) */
};

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

/* The directory of job `job`'s latest committed set under `base` (NULL:
 * storage.base of ckpt.conf).  0 or a negative errno (-ENOENT: none). */
int ckpt_job_latest(const char *job, const char *base, char *dir, size_t len);

#endif
