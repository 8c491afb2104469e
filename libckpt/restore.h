/*
 * restore: the restore sequence (restore.c), the images it loads
 * (restore-load.c) and the processes it creates (restore-tree.c).
 */
#ifndef CKPT_RESTORE_H
#define CKPT_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "ckpt/ckpt.h"
#include "cgroup.pb-c.h"
#include "core.pb-c.h"
#include "files.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "storage.h"

/* A task's fd table (fs): its own, shared with others that it restores
 * (owner), or shared with an earlier task (member). */
enum share_role { SHARE_NONE, SHARE_OWNER, SHARE_MEMBER };

struct rst_task {
	const TaskEntry *te;
	CoreEntry *core;
	MmEntry *mm;
	struct page_chunk *chunks;
	size_t nr_chunks;
	pid_t host_pid; /* as the driver sees it, once known */
	enum share_role fdt, fs; /* its fd table, its cwd, root and umask (fdtable.c) */
};

/* Shared (MAP_SHARED) between the driver and every restoring process. */
struct rst_shared {
	volatile int created; /* processes that exist and have their session */
	volatile int leaders; /* processes past their own setpgid */
	volatile int fdt_installed; /* owners of a shared fd table that installed it */
	uint64_t memory_bytes[]; /* per task, filled by restore_mem_prepare */
};

struct restore_ctx {
	const struct ckpt_restore_opts *opts;
	struct img_set *set;
	InventoryEntry *inv;
	CgroupEntry *cgroups; /* cgroup.img, NULL for a set without one */
	struct rst_task *tasks;
	size_t nr_tasks;
	int nr_fdt_owners; /* tasks whose fd table others share (fdtable.c) */
	struct restore_files files;
	int notify_r, notify_w; /* restoring processes report on notify_w */
	int fd_base;            /* first fd free for restore_mem_jump */
	int log_fd;             /* the driver's stderr, for messages after fds are installed */
	int release_r, release_w; /* pidns: the driver lets our init outlive it */
	struct rst_shared *shared;
	size_t shared_len;
	int use_pidns;
	int use_netns;
	char net_lock[64];   /* the restore's own network lock (inet-map.h), "" if none */
	int clear_time_wait; /* TIME_WAIT sockets hold a port: closing them needs CAP_NET_ADMIN */
	pid_t child; /* the driver's child: the root, or our init in a new pidns */
	/* srun steps (restore-step.c): how many proxies, ckpt-step (O_PATH),
	 * the pipe on which the driver lets them go */
	int nr_proxies;
	int step_exe, step_go_r, step_go_w;
	char step_relay[64]; /* a step on several nodes: its fence relay */
	/* lazy restore: the page server's socket (lazy_w: the processes'
	 * end, >= fd_base), the server (lazy-serve.c) */
	int lazy_r, lazy_w;
	int lazy_go; /* written (or closed) once the tree runs */
	pid_t lazy_server;
};

int restore_load(struct restore_ctx *c);

/* restore-netns.c: probe the ports of the images (sk-ports.h) and decide
 * on a fresh network namespace (use_netns), or fail after one line; then
 * make it: the driver moves into it, before it creates any socket. */
int restore_choose_netns(struct restore_ctx *c);
int restore_make_netns(struct restore_ctx *c);

/* A zombie is restored as a child that exits at once: no core, no mm. */
static inline int restore_task_zombie(const struct rst_task *t)
{
	return t->te->has_zombie && t->te->zombie;
}
/* An srun step's client, restored as the step proxy (restore-step.c):
 * no core, no mm; it execs ckpt-step once the tree runs. */
static inline int restore_task_proxy(const struct rst_task *t)
{
	return t->te->step != NULL;
}
/* restore-step.c: in the driver, once fd_base is known: ckpt-step and
 * the go pipe, when the set has proxies; release: let them exec; done:
 * close what prepare opened. */
int restore_step_open_exe(struct restore_ctx *c);
int restore_step_prepare(struct restore_ctx *c);
int restore_step_release(struct restore_ctx *c);
void restore_step_done(struct restore_ctx *c);
/* In the proxy's process, its children forked and its group joined. */
void restore_step_proxy(struct restore_ctx *c, size_t idx) __attribute__((noreturn));
void restore_unload(struct restore_ctx *c);

/* Create the tree: returns the driver's child (host pid) or -errno. */
pid_t restore_spawn(struct restore_ctx *c);
/* Tell our init the restore is done, so that it may outlive the driver
 * (it dies with the driver until then); waits for its answer. */
int restore_release_init(struct restore_ctx *c);
/* Fill tasks[].host_pid for a tree in a child PID namespace. */
int restore_map_host_pids(struct restore_ctx *c);

#endif
