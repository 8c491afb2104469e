/*
 * shmem: shared memory objects that several VMAs, of one process or of
 * many, map: MAP_SHARED|MAP_ANONYMOUS areas (one shmem inode, inherited
 * across fork), System V shm segments, and unlinked tmpfs files (POSIX
 * shm after shm_unlink) mapped shared that no fd holds any more.  Each is dumped once (see
 * proto/ipc.proto); on restore the driver recreates and fills it before
 * the tree exists, keeps it mapped, and every restoring process maps
 * its VMAs from that mapping, which it inherited (restore-mem.c), so
 * that the processes share it again.
 */
#ifndef CKPT_SHMEM_H
#define CKPT_SHMEM_H

#include <stdint.h>
#include <sys/types.h>

#include "ipc.pb-c.h"
#include "mem.h"
#include "mm.pb-c.h"
#include "storage.h"

struct restore_ctx;

/* Dump the object VMA e (VMA_ANON_SHARED, VMA_SYSV_SHM, VMA_SHMEM_FILE) of pid maps,
 * unless an earlier process of the tree already did. */
int dump_shm_vma(struct img_set *set, pid_t pid, const VmaEntry *e, struct mem_stats *st);
/* Dump object (kind, id) whose contents fd reads (shmem file); `pid`
 * for messages.  The object image is fully filled by the caller but for
 * kind, id and size. */
int dump_shm_object(struct img_set *set, pid_t pid, ShmObjectEntry *obj, int fd,
		    struct mem_stats *st);
/* Store the pages that file fd has in [0, size) as images `pages` and
 * `pagemap` (chunk addresses: offsets in the file); `what` names it in
 * messages.  Holes are not stored. */
int dump_file_pages(struct img_set *set, const char *what, const char *pages,
		    const char *pagemap, int fd, uint64_t size, struct mem_stats *st);
/* Fill base[0, len) from what dump_file_pages stored; an entry outside
 * it is refused. */
int load_file_pages(struct img_set *set, const char *pages, const char *pagemap, void *base,
		    uint64_t len);
/* prefix + "shm-anon-ID.img" / "shm-sysv-ID.img" / "shm-file-DEV-ID.img" */
void shm_object_name(char *buf, size_t len, const char *prefix, const ShmObjectEntry *obj);

/* Driver, after the images are loaded and before the tree is created:
 * semaphores, unattached segments, and every shared object the tree's
 * VMAs name, created, filled and mapped here. */
int restore_shm_prepare(struct restore_ctx *c);
/* Driver, FILE_SHMEM (shmem-fd.c), while the file pool is opened: an fd,
 * kept here until restore_shm_done, on anonymous object `id` made again
 * and filled from its images (once; restore_shm_prepare maps the VMAs of
 * it from that fd).  -errno, logged. */
int restore_shm_anon_file(struct img_set *set, uint64_t id);
/* Driver, once every process is ready: drop its own mappings. */
void restore_shm_detach(void);
/* Driver, at the end: drop its own mappings; on failure (ret != 0) also
 * remove the IPC objects it created. */
void restore_shm_done(struct restore_ctx *c, int ret);

#endif
