/*
 * output-copy: the contents of the job's output (a regular file it
 * appends to and owns, FileEntry.output) kept with the set, so that a
 * restore puts back a file that was cut shorter since the dump (Slurm
 * truncates --output and --error at a requeue without --open-mode=append).
 * Called by regfile.c; see output-copy.c and docs/files.md.
 */
#ifndef CKPT_OUTPUT_COPY_H
#define CKPT_OUTPUT_COPY_H

#include <stdint.h>

#include "fdinfo.pb-c.h"
#include "file-kinds.h"
#include "storage.h"

#define OUTPUT_COPY_DEFAULT (64ULL << 20) /* per file, without an option */
#define OUTPUT_COPY_MAX (4ULL << 30)      /* the most an option may ask, a restore take */

/* Dump: keep bytes [0, e->size) of the output file that f holds with the
 * set (pages-output-ID.img, pagemap-output-ID.img) and set
 * e->output_kept; over the limit, or where it cannot be read, only the
 * size is kept, and the dump says so.  Nothing in a check. */
int output_copy_dump(struct fd_dump *f, FileEntry *e);

/* Restore, at load: an entry that claims a copy must be the job's output,
 * at most OUTPUT_COPY_MAX bytes, with no stored page past its size.
 * -EINVAL after one line naming the entry. */
int output_copy_check(struct img_set *set, const FileEntry *e);

/* Restore: bring the job's output that fd reaches (the description the
 * restore opened, as the restoring user; `now` bytes) back to exactly its
 * contents at the dump from its copy where it is shorter, or where its
 * first e->size bytes are not the copy's (cut, then written again by
 * others: a requeued job's wrapper lines, longer than the job's).  1 if
 * it did, 0 if the file already starts with the copy (the caller cuts
 * back what follows), or -errno, logged. */
int output_copy_restore(struct img_set *set, int fd, const FileEntry *e, uint64_t now);

#endif
