/*
 * file-kinds: the contract between files.c and one source file per kind of
 * open file (regular files and devices in regfile.c, pipes and FIFOs in
 * pipes.c, and so on).
 *
 * files.c walks every fd of the frozen tree, finds the fds that share one
 * open file description (kcmp) so that each description is dumped once,
 * asks each kind in file_kinds[] whether it `match`es a new description and
 * lets that kind fill the FileEntry.  After every fd is seen, each kind's
 * `dump_tree` runs once (checks across the tree, extra images such as pipe
 * data).  On restore, `read` loads a kind's extra images before anything is
 * created, `open` gives the driver a new fd for one description (it goes
 * into the pool every restoring task inherits), `post_install` runs in each
 * restoring task once its fds are in place (state that belongs to a
 * process, or needs the task's own fd numbers), and `free` drops what
 * `read` kept.
 *
 * An fd in flight in a unix socket's queue (SCM_RIGHTS) reaches files.c
 * through files_add_inflight: once every fd of the tree is seen, it is
 * matched to a description of the tree or dumped as one of its own (kinds
 * with alone_ok), with the dumper's pid and fd in its file_desc.  On
 * restore, pool_ready runs once every description is in the pool (a
 * queue sends those fds again).
 *
 * A check (ckpt_dump_opts.check_only, `ckptctl checkpoint able`) runs
 * `match` and `dump` on every fd of the running tree, then `check_tree`
 * instead of `dump_tree`: a kind whose dump_tree refuses something gives
 * a check_tree that refuses the same, with nothing written and nothing
 * changed (fdump->set is NULL there).
 *
 * To add a kind: a file_type value (and fields) in proto/fdinfo.proto, a
 * `const struct file_kind` in your own file, one line in file_kinds[] in
 * files.c.  A kind keeps its per-dump and per-restore state in the `priv`
 * slot it is given, never in globals (the agent runs several operations).
 */
#ifndef CKPT_FILE_KINDS_H
#define CKPT_FILE_KINDS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "arena.h"
#include "fdinfo.pb-c.h"
#include "files.h"
#include "freeze.h"
#include "storage.h"

/* One open file description of the tree, and one fd that reaches it. */
struct file_desc {
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
	FileEntry *entry;
};

/* The "lock:" lines of one fd's fdinfo (locks.c): the fd of fd table
 * `table` (its owner's pid) reaching descs[desc]; `first`: the fd the
 * description was dumped through. */
struct lock_note {
	size_t desc;
	pid_t table;
	int first;
	char *lines; /* in the arena, one per line */
};

/* An fd in flight (SCM_RIGHTS) that a peek gave the dumper. */
struct inflight_fd {
	int fd;		   /* ours, -1 once closed */
	uint64_t sk_ino;   /* the socket whose queue holds it */
	uint32_t *file_id; /* where its description's id goes */
};

struct files_dump {
	struct arena a; /* entries, strings and sub-messages live here */
	struct file_desc *descs;
	size_t nr, cap;
	struct inflight_fd *inflight;
	size_t nr_inflight, cap_inflight;
	struct lock_note *lock_notes;
	size_t nr_lock_notes, cap_lock_notes;
	const struct frozen_tree *tree;
	const struct ckpt_dump_opts *opts;
	struct img_set *set; /* NULL: a check, nothing is written */
	void *priv[FILE_KINDS_MAX]; /* each kind's own state, by its index */
};

/* The fd being dumped (the first fd seen of its description). */
struct fd_dump {
	struct files_dump *fdump;
	void **priv;            /* this kind's slot in fdump->priv */
	pid_t pid;
	int fd;
	const char *link;       /* readlink("/proc/PID/fd/N") */
	const struct stat *st;  /* stat("/proc/PID/fd/N") */
	const char *fdinfo;     /* the path "/proc/PID/fdinfo/N" */
};

struct file_kind {
	const char *name;
	uint64_t types; /* bit (1 << file_type) for each type this kind restores */
	/* Dump: nonzero if the fd is of this kind. */
	int (*match)(const struct fd_dump *f);
	/* Dump: fill e->type and the kind's fields (id, flags without
	 * O_CLOEXEC, pos and mode are already set).  Refuse by name. */
	int (*dump)(struct fd_dump *f, FileEntry *e);
	/* Dump, optional: once after every fd of the tree is seen. */
	int (*dump_tree)(struct files_dump *fdump, void **priv);
	/* Check, optional: dump_tree's refusals alone (see above). */
	int (*check_tree)(struct files_dump *fdump, void **priv);
	/* Restore, optional: read the kind's images (nothing created yet). */
	int (*read)(struct img_set *set, struct restore_files *rf, void **priv);
	/* Restore: a new O_CLOEXEC fd for the description, in the driver. */
	int (*open)(struct restore_files *rf, void *priv, const FileEntry *e);
	/* Restore, optional: in the tree's PID namespace, in the process that
	 * is about to create the tree's root (the driver, or our init in a
	 * fresh namespace), the pool open: what must be made there replaces
	 * its pool fds (rf->pool[id], same number, O_CLOEXEC). */
	int (*before_tree)(struct restore_files *rf, void *priv);
	/* Restore, optional: in restoring task `idx`, its fds installed. */
	int (*post_install)(struct restore_files *rf, void *priv, size_t idx);
	/* Restore, optional: in the driver, once every description is in
	 * the pool (a socket queue that carries fds of others). */
	int (*pool_ready)(struct restore_files *rf, void *priv);
	/* Restore, optional: release what read/open kept. */
	void (*free)(void *priv);
	/* Restore: kinds with `late` set are opened after all the others
	 * (an epoll needs its targets). */
	int late;
	/* Dump: a description of this kind that only a socket queue holds
	 * (an fd in flight, SCM_RIGHTS) can be dumped through the dumper's
	 * fd and restored with no task holding it (not: a tty, TCP in
	 * repair mode).  Its kind knows it by f->pid == getpid(). */
	int alone_ok;
};

/* locks.c: keep the "lock:" lines (each ending in '\n') that fd table
 * `table` showed through an fd of descs[desc]. */
int locks_note(struct files_dump *c, size_t desc, pid_t table, int first, const char *lines);

extern const struct file_kind regfile_kind, pipe_kind;
extern const struct file_kind unix_sk_kind, inet_sk_kind; /* sk-unix.c, sk-inet.c */
/* evfd.c, epoll.c, inotify.c, memfd.c, locks.c */
extern const struct file_kind eventfd_kind, signalfd_kind, timerfd_kind, epoll_kind, inotify_kind;
extern const struct file_kind memfd_kind, ghost_kind, locks_kind;
extern const struct file_kind tty_kind; /* tty.c */
extern const struct file_kind pidfd_kind; /* pidfd.c */
extern const struct file_kind ghost_node_kind; /* ghost-node.c */
extern const struct file_kind procfile_kind; /* procfile.c */
extern const struct file_kind bpfmap_kind, fanotify_kind; /* bpfmap.c, fanotify.c */
extern const struct file_kind packet_sk_kind, netlink_sk_kind; /* sk-packet.c, sk-netlink.c */
extern const struct file_kind shmem_fd_kind; /* shmem-fd.c */
extern const struct file_kind step_end_kind; /* step-fds.c */

/* The restore state of `kind` (what its read made), or NULL. */
void *files_kind_priv(const struct restore_files *rf, const struct file_kind *kind);

/* step-fds.c: the proxy's end of the fd that task `pid` has in role
 * `role` (step_role), in the driver's pool range; -1 if none. */
int step_proxy_end(const struct restore_files *rf, uint32_t pid, int role);

/* A duplicate of fd `fd` of `pid` in the dumper (pidfd_getfd; the task
 * must be traced by us or we are root).  -errno on failure. */
int files_getfd(pid_t pid, int fd);

/* An inotify or fanotify (`what`) with events queued and not read yet is
 * refused by name: they cannot be read without taking them from the job.
 * 0, or -ENOTSUP / -errno, logged. */
int files_refuse_queued(const struct fd_dump *f, const char *what);

/* inotify.c: the path of the inode behind a file handle as fdinfo shows
 * it (sdev in the kernel's dev_t encoding, hex bytes of the handle), through
 * a mount of that filesystem in our mount namespace.  -ENOENT when the
 * inode has no path (removed). */
int fhandle_to_path(unsigned long sdev, int type, const char *hex, unsigned bytes, char *path,
		    size_t len);

/* Dump: `fd`, the dumper's own, is an fd in flight on socket:[sk_ino]
 * (a MSG_PEEK of its queue installed it here).  files.c takes it: once
 * every fd of the tree is seen, *file_id gets its description's id (a
 * new file_entry when no fd of the tree holds it).  Closes fd on error. */
int files_add_inflight(struct files_dump *c, int fd, uint64_t sk_ino, uint32_t *file_id);

/* The pool fd of the description that task `idx` has at fd `fd`, or -1. */
int files_task_fd_to_pool(const struct restore_files *rf, size_t idx, int fd);

#endif
