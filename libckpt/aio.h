/*
 * aio: AIO contexts (io_setup rings), dumped with the VMA that maps the
 * ring and made again in the restoring process (see aio.c).
 */
#ifndef CKPT_AIO_H
#define CKPT_AIO_H

#include <stdint.h>
#include <sys/types.h>

#include "mm.pb-c.h"

#define AIO_RING_MAX (16u << 20) /* bytes of one ring; the image must hold it */

/* Dump: is VMA e of pid ("/[aio] (deleted)", shared) an AIO ring, not a
 * removed file of that name? */
int aio_is_ring(pid_t pid, const VmaEntry *e);
/* Dump: fill ae for ring VMA e (its bytes in buf, e->end - e->start of
 * them, kept by the caller) and make e a VMA_AIO_RING, or refuse by name
 * (-ENOTSUP). */
int aio_ring_dump(pid_t pid, VmaEntry *e, AioRingEntry *ae, uint8_t *buf);
/* Dump, after the task's memory: refuse, by name, a ring whose tail moved
 * since aio_ring_dump (a request was in flight, see aio.c). */
int aio_ring_recheck(pid_t pid, const VmaEntry *e);
/* Restore: is VMA e's ring record one the kernel could have made? */
int aio_ring_check(pid_t pid, const VmaEntry *e);
/* Restore, in the driver, as the images are read: every ring of mm is
 * one the kernel could have made, and that io_setup can make again here
 * (a machine with more CPUs makes larger rings: refused by name). */
int aio_rings_check(pid_t pid, const MmEntry *mm);
/* Restore, in the restoring process: a new context like the dumped one,
 * its ring at `addr` (the VMA's slot). */
int aio_ring_restore(pid_t pid, const VmaEntry *e, uint64_t addr);

#endif
