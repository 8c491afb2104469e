/*
 * sysvipc: System V shared memory segments and semaphore sets of a tree
 * in the host's IPC namespace: their identity (key, id, mode, owner)
 * and semaphore values, recreated on restore with the same ids
 * (/proc/sys/kernel/{shm,sem}_next_id).  An id that another object
 * holds at restore is refused by name.  Segment contents and
 * attachments are shmem.c's.
 */
#ifndef CKPT_SYSVIPC_H
#define CKPT_SYSVIPC_H

#include <sys/types.h>

#include "freeze.h"
#include "ipc.pb-c.h"
#include "mem.h"
#include "storage.h"

/* Dump: key, size, mode, owner of segment obj->id (attached by pid). */
int sysv_shm_stat(pid_t pid, ShmObjectEntry *obj);
/* Dump, once per tree after every process's memory: "ipc.img" with the
 * semaphore sets the tree operated on, and the segments it created but
 * does not attach (their contents too). */
int dump_sysvipc(struct img_set *set, const struct frozen_tree *tree, struct mem_stats *st);

/* Restore (driver), before anything is changed: refuse (by id) a segment
 * whose id another one holds, or that is still in use. */
int sysv_shm_check(const ShmObjectEntry *e);
/* Restore (driver): the segment with its dumped id, or the same one
 * still there (after sysv_shm_check); *created: made by us. */
int sysv_shm_create(const ShmObjectEntry *e, int *created);
/* Once filled and attached: mark it removed if it was at the dump. */
int sysv_shm_finish(const ShmObjectEntry *e);
void sysv_shm_remove(uint64_t id);
/* Restore (driver): read and check ipc.img (*out NULL without one),
 * refusing a semaphore set whose id another set holds... */
int sysv_ipc_load(struct img_set *set, IpcEntry **out);
/* ...then, once every check passed, recreate the sets. */
int restore_sysv_sems(const IpcEntry *ipc);
/* End of restore: on failure (ret != 0) remove the sets we created. */
void sysv_sems_done(int ret);

#endif
