/*
 * output-copy: a copy of the job's output kept with the set.
 *
 * Slurm truncates a batch job's --output and --error files when it
 * requeues the job (unless it was submitted with --open-mode=append), and
 * anyone may cut a log between a dump and a restore.  The restored job
 * would find its output shorter than at the dump, the lines it wrote
 * before the checkpoint gone; with only the size kept, the restore can
 * but refuse it.  So at the dump the contents of each file regfile.c
 * marks `output` (a regular file the job appends to and owns), bytes
 * [0, size), are stored the way the files kept with the set are
 * (dump_file_pages: lz4 pages, holes left out), once per open file
 * description (pages-output-ID.img, pagemap-output-ID.img, ID the
 * entry's id), up to a limit per file: --output-copy-limit, else
 * ckpt.conf's dump.output_copy_limit, else 64 MiB.
 *
 * At restore, once every description is open, a file found shorter, or
 * not starting with the copy (cut, then written again by others: a
 * requeued job's wrapper lines, longer than the job's output was), is
 * written again from the copy on the description the restore opened as
 * the restoring user (regfile.c): no path is looked up a second time, so
 * an image cannot make it write a file the user could not open.  The
 * description is O_APPEND: truncated to 0, each write lands where the
 * last one stopped, and the restored job appends after the last.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "conf.h"
#include "log.h"
#include "output-copy.h"
#include "shmem.h"

#define PAGE 4096ULL
#define WRITE_MAX (1u << 30) /* one write(2) */

static uint64_t page_up(uint64_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

static void copy_name(char *buf, size_t len, const char *prefix, uint32_t id)
{
	snprintf(buf, len, "%soutput-%" PRIu32 ".img", prefix, id);
}

/* ---- dump ---- */

/* --output-copy-limit, else ckpt.conf's dump.output_copy_limit, else 64 MiB. */
static int copy_limit(const struct ckpt_dump_opts *o, uint64_t *limit)
{
	struct conf *c;
	int ret = 0;

	if (o && o->has_output_copy_limit) {
		*limit = o->output_copy_limit;
	} else if (!(ret = conf_load(conf_path(), &c))) {
		ret = conf_get_u64(c, "dump.output_copy_limit", OUTPUT_COPY_DEFAULT, limit);
		conf_free(c);
	}
	if (!ret && *limit > OUTPUT_COPY_MAX) {
		pr_err("the copy limit of the job's output, %" PRIu64 " bytes: more than %llu "
		       "(--output-copy-limit, dump.output_copy_limit)",
		       *limit, OUTPUT_COPY_MAX);
		return -EINVAL;
	}
	return ret;
}

/* A read-only description of our own of the file f holds: SEEK_DATA and
 * SEEK_HOLE move the offset of the one they are given, and the task's
 * must stay.  O_NOATIME where we may (the owner): reading it would change
 * the atime of a file that lives on. */
static int open_for_copy(const struct fd_dump *f)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int output_copy_dump(struct fd_dump *f, FileEntry *e)
{
	struct files_dump *c = f->fdump;
	char pages[48], pagemap[48], what[PATH_MAX + 64];
	struct mem_stats st = { 0 };
	uint64_t limit;

	if (!c->set) /* a check writes nothing */
		return 0;
	int ret = copy_limit(c->opts, &limit);
	if (ret)
		return ret;
	if (!limit || e->size > limit) {
		pr_info("pid %d: fd %d: %s: the job's output, %" PRIu64 " bytes, is over the copy "
			"limit of %" PRIu64 " (--output-copy-limit, dump.output_copy_limit): only its "
			"size is kept",
			f->pid, f->fd, f->link, e->size, limit);
		return 0;
	}
	int fd = open_for_copy(f);
	if (fd < 0) {
		pr_err("warning: pid %d: fd %d: %s: cannot read the job's output to keep a copy: %s "
		       "(a restore refuses it if it is cut shorter)",
		       f->pid, f->fd, f->link, strerror(-fd));
		return 0;
	}
	copy_name(pages, sizeof(pages), "pages-", e->id);
	copy_name(pagemap, sizeof(pagemap), "pagemap-", e->id);
	snprintf(what, sizeof(what), "pid %d: fd %d: %s (the job's output)", f->pid, f->fd,
		 f->link);
	ret = dump_file_pages(c->set, what, pages, pagemap, fd, e->size, &st);
	close(fd);
	if (ret)
		return ret;
	e->has_output_kept = e->output_kept = 1;
	pr_info("pid %d: fd %d: %s: the job's output, %" PRIu64 " bytes, kept with the set", f->pid,
		f->fd, f->link, e->size);
	return 0;
}

/* ---- restore ---- */

static int is_output(const FileEntry *e)
{
	int acc = (int)(e->flags & O_ACCMODE);
	return e->type == FILE_TYPE__FILE_REG && e->has_output && e->output && e->has_size &&
	       e->path && (e->flags & O_APPEND) && (acc == O_WRONLY || acc == O_RDWR) &&
	       (e->flags & O_PATH) != O_PATH;
}

/* Every stored page within [0, size), rounded up to a page. */
static int check_pages(struct img_set *set, const FileEntry *e)
{
	char pagemap[48];
	struct page_chunk *chunks;
	size_t nr;
	uint64_t len = page_up(e->size);

	copy_name(pagemap, sizeof(pagemap), "pagemap-", e->id);
	int ret = pagemap_read(set, pagemap, 0, &chunks, &nr);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < nr; i++) {
		uint64_t at = chunks[i].vaddr, n = (uint64_t)chunks[i].nr_pages * PAGE;
		if (at % PAGE || at > len || n > len - at) {
			pr_err("%s/%s: entry %zu (offset %" PRIu64 ", %u pages): past the %" PRIu64
			       " bytes of %s at the dump",
			       img_set_dir(set), pagemap, i, at, chunks[i].nr_pages, e->size,
			       e->path ? e->path : "its file");
			ret = -EINVAL;
		}
	}
	page_chunks_free(chunks, nr);
	return ret;
}

int output_copy_check(struct img_set *set, const FileEntry *e)
{
	if (!e->has_output_kept || !e->output_kept)
		return 0;
	if (!is_output(e)) {
		pr_err("%s/files.img: file %" PRIu32 ": a copy kept with the set, but not of the "
		       "job's output (a regular file it appends to and owns)",
		       img_set_dir(set), e->id);
		return -EINVAL;
	}
	if (e->size > OUTPUT_COPY_MAX) {
		pr_err("%s/files.img: file %" PRIu32 " (%s): a copy of %" PRIu64 " bytes kept with "
		       "the set: more than %llu",
		       img_set_dir(set), e->id, e->path, e->size, OUTPUT_COPY_MAX);
		return -EINVAL;
	}
	return check_pages(set, e);
}

/* The file from 0: cut to nothing, then buf written on the restore's own
 * O_APPEND description (each write lands at the end, where the last one
 * stopped).  Nothing else writes it yet: then it holds exactly buf. */
static int rewrite(int fd, const uint8_t *buf, uint64_t size)
{
	struct stat st;
	uint64_t done = 0;

	if (!(fcntl(fd, F_GETFL) & O_APPEND))
		return -EINVAL;
	if (ftruncate(fd, 0))
		return -errno;
	while (done < size) {
		size_t len = size - done > WRITE_MAX ? WRITE_MAX : (size_t)(size - done);
		ssize_t n = write(fd, buf + done, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (uint64_t)n;
	}
	if (fstat(fd, &st))
		return -errno;
	return (uint64_t)st.st_size == size ? 0 : -EIO;
}

/* The copy, bytes [0, e->size), in a private mapping of *len bytes. */
static int load_copy(struct img_set *set, const FileEntry *e, uint8_t **m, uint64_t *len)
{
	char pages[48], pagemap[48];

	*len = page_up(e->size);
	*m = NULL;
	if (!*len)
		return 0;
	void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*m = p;
	copy_name(pages, sizeof(pages), "pages-", e->id);
	copy_name(pagemap, sizeof(pagemap), "pagemap-", e->id);
	return load_file_pages(set, pages, pagemap, p, *len);
}

/* Does the file fd reaches not start with copy[0, size)?  Read through a
 * description of our own (the restore's is write-only, as the job's
 * output usually is), opened through /proc/self/fd: the same file, no
 * path looked up.  1, 0, or 0 where it cannot be read (the size rule
 * alone then). */
static int differs(int fd, const uint8_t *copy, uint64_t size, const char *path)
{
	char self[64], buf[1 << 16];
	uint64_t at = 0;
	int ret = 0;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int rfd = open(self, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (rfd < 0 && errno == EPERM)
		rfd = open(self, O_RDONLY | O_CLOEXEC);
	if (rfd < 0) {
		pr_info("file %s: cannot read it to compare it with its copy: %s", path,
			strerror(errno));
		return 0;
	}
	while (!ret && at < size) {
		size_t want = size - at > sizeof(buf) ? sizeof(buf) : (size_t)(size - at);
		ssize_t n = pread(rfd, buf, want, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || memcmp(buf, copy + at, (size_t)n))
			ret = 1; /* shorter than it was a moment ago, or other bytes */
		at += n > 0 ? (uint64_t)n : 0;
	}
	close(rfd);
	return ret;
}

int output_copy_restore(struct img_set *set, int fd, const FileEntry *e, uint64_t now)
{
	uint8_t *m;
	uint64_t len;
	int ret = load_copy(set, e, &m, &len);
	int shorter = now < e->size, changed = 0;

	if (!ret && !shorter)
		changed = differs(fd, m, e->size, e->path);
	if (!ret && (shorter || changed))
		ret = rewrite(fd, m, e->size);
	if (m)
		munmap(m, len);
	if (ret) {
		pr_err("file %s: cannot put it back from the set (%" PRIu64 " bytes, %" PRIu64
		       " now): %s",
		       e->path, e->size, now, strerror(-ret));
		return ret;
	}
	if (shorter || changed)
		pr_info("file %s: put back from the set, %" PRIu64 " bytes (it was %" PRIu64
			" bytes%s)",
			e->path, e->size, now, changed ? ", not starting with them" : "");
	return shorter || changed;
}
