/*
 * restore-mem: the last steps of restoring one process, run inside it:
 * lay out the restore area, premap and fill every dumped VMA, prepare the
 * restorer's arguments (threads, signal frames, mm map, creds) and jump
 * into the restorer blob; and, in the restoring driver, the final handoff
 * (restore-finish.c) that resumes the process in its dumped registers.
 */
#ifndef CKPT_RESTORE_MEM_H
#define CKPT_RESTORE_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "mm.pb-c.h"
#include "storage.h"

struct restore_mem_ctx {
	pid_t pid;                       /* dumped pid, for messages */
	const CoreEntry *core;           /* threads, creds, pending signals, pdeathsig */
	const MmEntry *mm;
	const struct page_chunk *chunks; /* from pagemap-PID.img, sorted by vaddr */
	size_t nr_chunks;
	struct img_set *set;             /* pages-PID.img is read from here */
	int fd_base;                     /* fds >= fd_base are free for the restorer's use */
	int notify_fd;                   /* see restorer-abi.h; >= fd_base */
	int page_threads;                /* decompression threads, <= 0: one per CPU */
	uint64_t *memory_bytes;          /* out: page bytes restored (may be NULL) */
	int unprivileged;                /* ckpt_restore_opts.unprivileged */
	int skip_file_check;             /* ckpt_restore_opts.skip_file_check */
	size_t inherited_seccomp;        /* filters we run under: first in every chain */
	const char *root;                /* chroot() here last (NULL, "/": none) */
	int shared_fdt;                  /* its fd table is shared (CLONE_FILES): the driver
					  * closes the fds >= fd_base (restorer-abi.h) */
	int lazy_fd;                     /* >= fd_base: lazy restore, the page server's
					  * socket (struct rst_lazy); -1: fill every VMA */
	MmEntry *const *child_mms;       /* lazy: its children's, whose VMAs may share
					  * pages with its own (adopt_slot) */
	size_t nr_child_mms;
};

/* A VMA that a lazy restore leaves empty for the page server: private
 * anonymous, neither droppable nor locked. */
int restore_mem_vma_lazy(const VmaEntry *e);

/*
 * Called in the restoring process in two steps.  restore_mem_prepare(),
 * before it forks its children: lay out the restore area, premap and fill
 * the dumped VMAs (taking over those it inherited from its parent's
 * prepare, so that pages shared copy-on-write stay shared).
 * restore_mem_jump() as its very last step: it already has its dumped
 * PID, session, fds, cwd, sigactions and rlimits, and every signal
 * blocked; it maps what only its fds reach, and jumps into the restorer.
 * On success it never returns.  Both return -errno on failure after
 * printing one line naming the object.  ctx must live until the jump.
 */
struct restore_mem_plan;
int restore_mem_prepare(const struct restore_mem_ctx *ctx, struct restore_mem_plan **out);
int restore_mem_jump(struct restore_mem_plan *plan);

/*
 * In the driver, before the tree is created: the shared memory object
 * `id` (vma_entry.shmid; `dev`: vma_entry.dev for VMA_SHMEM_FILE, else 0)
 * of VMAs of `kind` (VMA_ANON_SHARED, VMA_SYSV_SHM, VMA_SHMEM_FILE) is
 * mapped at `base`, `len` bytes, MAP_SHARED and writable; the restoring
 * processes inherit that mapping and map their VMAs of it from there
 * (shmem.c creates and fills the objects).
 */
int restore_mem_add_shared(VmaKind kind, uint64_t dev, uint64_t id, uint64_t base, uint64_t len,
			   int fd);
/* The fds of the objects (the first `max` in fds), which each restoring
 * process keeps until its restorer closes every fd at or above fd_base;
 * returns how many there are. */
size_t restore_mem_shared_fds(int *fds, size_t max);
/* Another name `path` (kept, not copied) of unlinked file object (dev,
 * id), open on fd: the VMAs that name it map it through that fd. */
int restore_mem_add_name(uint64_t dev, uint64_t id, const char *path, int fd);
void restore_mem_clear_shared(void);

/*
 * In the driver, once `host_pid` (the process as the driver sees it) sent
 * its struct rst_ready: bring every thread back into its dumped
 * registers via rt_sigreturn and unmap the restore area.  The threads
 * stay stopped under ptrace until restore_finish_release().
 */
struct rst_finished;
int restore_finish_task(pid_t host_pid, uint64_t args_addr, struct rst_finished **out);
/* Detach every thread: the process runs. Frees f. */
void restore_finish_release(struct rst_finished *f);
/* Restore failed elsewhere: SIGKILL the process, detach, free f. */
void restore_finish_abort(struct rst_finished *f);

#endif
