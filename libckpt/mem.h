/*
 * mem: dump of a process's address space: VMAs from /proc/PID/maps, the
 * mm_struct fields from /proc/PID/stat and auxv, and the contents of
 * present pages found through /proc/PID/pagemap, handed to the storage
 * page writer.  (Restore is in restore-mem.c and the restorer blob.)
 */
#ifndef CKPT_MEM_H
#define CKPT_MEM_H

#include <stdint.h>
#include <sys/types.h>

#include "storage.h"

/* mmap's MAP_DROPPABLE (Linux 6.11), which our headers may lack. */
#define VMA_MAP_DROPPABLE 0x08

struct mem_stats {
	uint64_t bytes_in;  /* non-zero page bytes read */
	uint64_t bytes_out; /* page bytes stored */
	uint64_t unread_pages; /* not read: unwritten since the parent (track.c) */
};

/* Writes mm-VPID.img, pagemap-VPID.img and pages-VPID.img for frozen
 * process `pid` (VPID: its pid in its own namespace, freeze.h). `brk` is
 * the task's current brk (from the parasite).  step_dir: an srun step's
 * task's PMIx directory (docs/mpi.md), or NULL. */
int dump_mm(struct img_set *set, pid_t pid, pid_t vpid, uint64_t brk, int threads,
	    const char *step_dir, struct mem_stats *st);

/* The same in two steps, for a snapshot dump (snapshot.c): start, while
 * the task is frozen, dumps everything but private pages (shared memory
 * included); pages finds which pages to store and reads them, both from
 * `src` (the task's snapshot; 0: the task itself), writes the images and
 * frees d, as mm_dump_free does for a dump given up. */
struct mm_dump;
int dump_mm_start(struct img_set *set, pid_t pid, pid_t vpid, uint64_t brk, int threads,
		  const char *step_dir, struct mem_stats *st, struct mm_dump **d);
int dump_mm_pages(struct img_set *set, struct mm_dump *d, pid_t src, struct mem_stats *st);
void mm_dump_free(struct mm_dump *d);
/* Dirty-page tracking (track.c): the task's pages not written since the
 * parent are taken from it unread.  t may be NULL; it must outlive d. */
struct track_task;
void mm_dump_set_track(struct mm_dump *d, const struct track_task *t);
/* What the task's snapshot would not hold (a one-line reason), or NULL. */
const char *mm_dump_snapshot_gap(const struct mm_dump *d);

/* The VMAs (from smaps, classified as the dump does) and the mm fields
 * of /proc/PID/stat, into mm, allocated in a: restore --verify. */
struct arena;
struct MmEntry;
int mm_read_proc(struct arena *a, pid_t pid, struct MmEntry *mm);

/* What dump_mm would refuse of pid's mappings (one line naming the
 * mapping), read from a running process; nothing is written. */
int check_mm(pid_t pid);

#endif
