/*
 * cgroup: the cgroup membership of a tree (proto/cgroup.proto).
 *
 * Dump (cgroup.c): every thread's cgroup on every hierarchy, from
 * /proc/PID/task/TID/cgroup, grouped into sets; the directories of the
 * job (its cgroups and every directory below them) with owner and mode.
 * Restore (cgroup-place.c): after every thread exists and before any
 * runs (and before --verify), the directories are made where missing and
 * each thread is written into its cgroup on every hierarchy, through
 * the node's mount of it, or (root only) a private mount made for the
 * move.  A hierarchy is named by its controllers ("cpu,cpuacct",
 * "name=systemd", "" for cgroup2), never by its id.
 */
#ifndef CKPT_CGROUP_H
#define CKPT_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

#include "cgroup.pb-c.h"
#include "freeze.h"
#include "storage.h"

#define CG_MAX_HIER 32	 /* hierarchies of one thread */
#define CG_MAX_DIRS 4096 /* directories of a job */
#define CG_MAX_FILES 256 /* recorded control files of one directory */
#define CG_MAX_PROPS 32	 /* settings of one directory (cgroup-props.c) */

/* One line of /proc/PID/cgroup: the hierarchy's controllers and the path. */
struct cg_line {
	char hier[256];
	char path[4096];
};

/* The lines of /proc/PID/task/TID/cgroup (tid 0: /proc/self/cgroup) into
 * out[CG_MAX_HIER]; how many, or -errno. */
int cg_read_lines(pid_t pid, pid_t tid, struct cg_line *out);

/* Do two controller lists name the same hierarchy (order does not count)? */
int cg_same_hier(const char *a, const char *b);

/* How a hierarchy is printed: "" (cgroup2) as "cgroup2". */
const char *cg_hier_name(const char *hier);

/* Where hierarchy `hier` is mounted here, and the cgroup path its mount
 * shows at its top ("/" unless a sub-tree is mounted): 0, or -ENOENT. */
int cg_find_mount(const char *hier, char *mnt, size_t mlen, char *root, size_t rlen);

struct arena;

/* cgroup-props.c: the settings of directory e (open at dfd) into
 * e->props; written back (the directory made again) with
 * cg_restore_props, *what naming the file on failure; only names of its
 * table are known (an image may name no other). */
int cg_dump_props(struct arena *a, CgroupDirEntry *e, int dfd);
int cg_restore_props(int dfd, const CgroupDirEntry *e, const char **what);
int cg_prop_known(const char *name);

/* In a child that may change its mount namespace (it unshares one): mount
 * hierarchy `hier` on a new directory made from the template dir
 * ("/tmp/ckpt-cgroup.XXXXXX"), private.  0 or -errno. */
int cg_mount_private(const char *hier, char *dir);

/* Dump: write cgroup.img for the frozen tree (zombies have no cgroup). */
int dump_cgroups(struct img_set *set, const struct frozen_tree *tree);

/* Restore: cgroup.img if the set has one (*out NULL otherwise), checked. */
int cgroups_load(struct img_set *set, CgroupEntry **out);

struct restore_ctx;

/* Before any file is opened (a job may hold one of its cgroup
 * directories open): the directories on every hierarchy mounted here. */
int restore_cgroup_dirs(struct restore_ctx *c);

/* In a restoring process, before its memory: into the cgroups of its
 * main thread, on the hierarchies mounted here (one line on failure). */
int cgroup_enter_self(const struct restore_ctx *c, size_t idx);

/* Make the directories and put every restored thread into its cgroup
 * on every hierarchy; one line naming the pid and cgroup on failure. */
int restore_cgroups(struct restore_ctx *c);

/* After the restore: a failed one (its processes gone) removes the
 * directories restore_cgroups made. */
void restore_cgroups_done(int failed);

/* The cgroup a dumped path of `hier` is restored to, after the
 * --cgroup-root rules and the relative mode: 0, or -errno. */
int cg_target_path(const struct restore_ctx *c, const char *hier, const char *path, char *out,
		   size_t len);

/* The set thread `tid` of process `pid` (as dumped) was in, or NULL. */
const CgroupSetEntry *cg_set_of(const CgroupEntry *cg, uint32_t pid, uint32_t tid);

#endif
