/*
 * Page data: the bulk of a checkpoint, so the one place where speed
 * matters most.
 *
 * Writer: page_writer_add() queues runs of present pages (split at
 * IMG_CHUNK_PAGES); one worker per CPU takes a batch of consecutive runs
 * (a long run alone, else up to PAGE_BATCH_PAGES pages), copies each out of
 * the stopped process with one pread of /proc/PID/mem (process_vm_readv
 * would take all the ranges in one call, but pins pages: see read_run;
 * preadv reads one range only), drops the all-zero
 * pages, packs the rest and compresses them as one block with lz4 (or
 * keeps it raw when that does not shrink it), reserves room at the end of
 * the pages file and pwrites it there.  Pages that lz4 cannot shrink
 * (random data, already compressed data: page_compresses probes a few
 * hundred bytes of each) are not given to lz4 at all but written as a
 * raw block of their own, straight from where they were read (pwritev):
 * on a heap where such pages alternate with compressible ones, lz4 over
 * the whole batch ran at 1.9 GB/s and was most of the dump's CPU time.  Each stretch of stored pages is a
 * chunk of the table; the chunks of a batch share its block.  A fragmented
 * heap (runs of 3 pages between holes) then costs per run a pread and a
 * table entry, not a wake-up, an lz4 call (whose 16 KiB table reset alone
 * cost as much as a small run), a write and two locks: 1 GiB of it took
 * 2.5 s against 0.3 s in runs of 1 MiB.  Buffers are allocated once per
 * worker: fresh memory is expensive (every new page is a fault, and on a
 * VM often a trip to the host).  The file's crc for the manifest is joined
 * from the block crcs, which sit back to back after the header, so the
 * file is never re-read.
 *
 * Incremental dumps: every non-zero page gets an XXH3-64 hash (about
 * 20 GB/s, far faster than lz4); when the set has a parent, a page whose
 * hash equals the parent's page at the same address is not stored but
 * becomes part of an in_parent chunk.  The hashes go into the pagemap
 * for the next dump to compare against.  (A 64-bit hash of a page at the
 * same address: the chance that a changed page is taken for the old one
 * is 2^-64 per page.)
 *
 * The reader is in pages-read.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

int page_threads(int threads)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (threads <= 0)
		threads = cpus > 0 ? (int)cpus : 1;
	return threads > MAX_THREADS ? MAX_THREADS : threads;
}

/* ---- writer ---- */

struct page_run {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint32_t flags; /* PAGE_RUN_* */
};

struct page_writer {
	struct img_set *set;
	char *name;
	pid_t pid;
	int mem_fd; /* /proc/PID/mem */
	int fd;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct page_run *runs; /* queue: [next_run, nr_runs) waiting */
	size_t nr_runs, cap_runs, next_run;
	uint64_t queued_pages; /* in the runs waiting */
	int closing;
	int err;

	uint64_t file_end; /* next free offset in the file */
	uint64_t flushed;  /* written back and dropped from the page cache below */
	int flushing;      /* one worker does it at a time */
	uint64_t kicked;   /* writeback started below */
	uint64_t unkicked; /* bytes written since */
	struct page_chunk *chunks;
	size_t nr_chunks, cap_chunks;
	uint64_t bytes_in, bytes_out;
	struct page_hashes parent; /* incremental: the parent's page hashes */
	uint64_t unread_pages;     /* PAGE_RUN_UNWRITTEN pages taken from it */

	pthread_t tids[MAX_THREADS];
	int nr_tids;
};

/* A worker's batch: one run of up to IMG_CHUNK_PAGES pages, or runs of
 * up to PAGE_BATCH_PAGES pages in all, read one after the other into `in`; kind and hash are per page of
 * `in`.  The new pages are packed at the start of `in` and stored as one
 * block, whose chunks (one per stretch of new pages) wait in `pend`. */
struct page_worker_buf {
	uint8_t *in;
	uint8_t *out;
	int out_cap;
	uint8_t kind[IMG_CHUNK_PAGES];   /* PAGE_ZERO, PAGE_SAME, PAGE_NEW */
	uint64_t hash[IMG_CHUNK_PAGES];
	struct page_run runs[PAGE_BATCH_PAGES]; /* each run has a page at least */
	size_t nr_runs;
	struct page_chunk pend[IMG_CHUNK_PAGES];
	size_t nr_pend;
	uint32_t packed;    /* pages packed from page pack_base of `in` */
	uint32_t pack_base; /* where the first stretch of the block was read */
	/* the raw block being gathered: its stretches where they were read */
	struct iovec raw_iov[PAGE_BATCH_PAGES];
	size_t nr_raw_iov;
	uint32_t raw_pages;
	LZ4_stream_t *probe;
};

/* PAGE_NEW: to compress; PAGE_RAW: new, stored as read (lz4 cannot
 * shrink it) */
enum { PAGE_ZERO, PAGE_SAME, PAGE_NEW, PAGE_RAW };

/* 1 if `err` is the writer's first error (the one to print: workers
 * failing together on a full disk say it once). */
static int writer_first_error(struct page_writer *w, int err)
{
	int first;

	pthread_mutex_lock(&w->lock);
	first = !w->err;
	if (first)
		w->err = err;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return first;
}

static void writer_fail(struct page_writer *w, int err)
{
	pthread_mutex_lock(&w->lock);
	if (!w->err)
		w->err = err;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

/*
 * The run's bytes, read through /proc/PID/mem rather than process_vm_readv:
 * process_vm_readv pins the pages, and pinning an anonymous page still
 * shared copy-on-write with another process (a forked child's memory, a
 * fork()ed snapshot) makes the kernel copy it into the target first
 * ("unshare"): measured here, 520 MB/s instead of 4.5 GB/s, and the
 * target's memory doubles.  /proc/PID/mem reads without pinning, and also
 * reads pages of PROT_NONE mappings, which process_vm_readv refuses.
 */
static int read_run(struct page_writer *w, const struct page_run *run, uint8_t *buf)
{
	size_t len = (size_t)run->nr_pages * PAGE_SIZE_, done = 0;

	while (done < len) {
		uint64_t addr = run->vaddr + done;
		ssize_t n = addr > INT64_MAX ? -1 : pread(w->mem_fd, buf + done, len - done, addr);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* EIO is how /proc/PID/mem says "nothing mapped there" */
			int err = n < 0 && errno != EIO ? errno : EFAULT;
			if (writer_first_error(w, -err))
				st_err("pid %d: reading memory at 0x%llx: %s", (int)w->pid,
				       (unsigned long long)addr, strerror(err));
			return -err;
		}
		done += n;
	}
	return 0;
}

static int page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE_SIZE_ / 8; i += 8) {
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] |
		    q[i + 7])
			return 0;
	}
	return 1;
}

/* Chunks into the writer's table, under one lock; `stored`: the bytes
 * written for them (their shared block). */
static int add_chunks(struct page_writer *w, const struct page_chunk *c, size_t nr,
		      uint64_t stored)
{
	int ret = 0;

	pthread_mutex_lock(&w->lock);
	while (w->cap_chunks - w->nr_chunks < nr) {
		size_t cap = w->cap_chunks ? 2 * w->cap_chunks : 256;
		struct page_chunk *n = realloc(w->chunks, cap * sizeof(*n));
		if (!n) {
			ret = -ENOMEM;
			break;
		}
		w->chunks = n;
		w->cap_chunks = cap;
	}
	for (size_t i = 0; !ret && i < nr; i++) {
		w->chunks[w->nr_chunks++] = c[i];
		w->bytes_in += (uint64_t)c[i].nr_pages * PAGE_SIZE_;
	}
	if (!ret)
		w->bytes_out += stored;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

/*
 * Write-behind: start the writeback of each chunk as soon as it is
 * written, and once the file is FLUSH_WINDOW past the last flush, wait
 * for what lies behind the window and drop it from the page cache.  The
 * page cache of the file then stays small and its pages are recycled:
 * filling fresh memory is what made a first dump slow (on this VM, new
 * memory comes from the host at a few hundred MB/s), and the final fsync
 * has little left to do.
 */
#define FLUSH_WINDOW (32ull << 20)
/* Writeback is started for this much at a time, not per chunk: a
 * fragmented heap makes chunks of a few pages, and one small I/O each
 * cost more than everything else the dump does (3.7 s instead of 1.1 s
 * for 768 MiB in runs of 3 pages). */
#define KICK_BYTES (4ull << 20)

static void write_behind(struct page_writer *w, uint64_t len)
{
	uint64_t start = 0, end = 0, kick = 0, kick_end = 0;

	pthread_mutex_lock(&w->lock);
	w->unkicked += len;
	if (w->unkicked >= KICK_BYTES) {
		kick = w->kicked;
		kick_end = w->kicked = w->file_end;
		w->unkicked = 0;
	}
	pthread_mutex_unlock(&w->lock);
	if (kick_end > kick)
		sync_file_range(w->fd, kick, kick_end - kick, SYNC_FILE_RANGE_WRITE);
	pthread_mutex_lock(&w->lock);
	if (!w->flushing && w->file_end - w->flushed > 2 * FLUSH_WINDOW) {
		start = w->flushed;
		end = w->file_end - FLUSH_WINDOW;
		w->flushing = 1;
	}
	pthread_mutex_unlock(&w->lock);
	if (end <= start)
		return;
	sync_file_range(w->fd, start, end - start,
			SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	posix_fadvise(w->fd, start, end - start, POSIX_FADV_DONTNEED);
	pthread_mutex_lock(&w->lock);
	w->flushed = end;
	w->flushing = 0;
	pthread_mutex_unlock(&w->lock);
}

/* The chunk's copy of its pages' hashes. */
static int chunk_hashes(struct page_chunk *c, const uint64_t *hash)
{
	c->hashes = malloc((size_t)c->nr_pages * sizeof(*hash));
	if (!c->hashes)
		return -ENOMEM;
	memcpy(c->hashes, hash, (size_t)c->nr_pages * sizeof(*hash));
	return 0;
}

static void pend_drop(struct page_worker_buf *b)
{
	for (size_t i = 0; i < b->nr_pend; i++)
		free(b->pend[i].hashes);
	b->nr_pend = 0;
	b->packed = 0;
	b->raw_pages = 0;
	b->nr_raw_iov = 0;
}

/* Room for `len` bytes at the end of the pages file: their offset.  A raw
 * block starts on a page of the file, so that a restore can read it with
 * O_DIRECT straight into its place (pages-read.c); the gap before it is a
 * hole, read as zeros (file_crc counts them). */
static uint64_t reserve(struct page_writer *w, uint64_t len, int raw)
{
	pthread_mutex_lock(&w->lock);
	uint64_t offset = w->file_end;
	if (raw)
		offset = (offset + PAGE_SIZE_ - 1) & ~(uint64_t)(PAGE_SIZE_ - 1);
	w->file_end = offset + len;
	pthread_mutex_unlock(&w->lock);
	return offset;
}

static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t done = pwritev(fd, iov, n, (off_t)off);
		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return done < 0 ? -errno : -EIO;
		off += (uint64_t)done;
		for (; n > 0 && (size_t)done >= iov->iov_len; iov++, n--)
			done -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

static int write_failed(struct page_writer *w, struct page_worker_buf *b, int err)
{
	/* to the page server (w->fd is -1), remote_write printed it */
	if (writer_first_error(w, err) && w->fd >= 0)
		st_err("%s/%s: write: %s", w->set->dir, w->name, strerror(-err));
	pend_drop(b);
	return err;
}

/* The pending chunks' block of `pages` pages was written at `offset`
 * (`len` stored bytes): fill them in and hand them to the writer. */
static int pend_done(struct page_writer *w, struct page_worker_buf *b, uint64_t offset,
		     uint32_t len, uint32_t crc, int raw, uint32_t pages)
{
	int ret;

	if (len && w->fd >= 0)
		write_behind(w, len);
	for (size_t i = 0; i < b->nr_pend; i++) {
		struct page_chunk *c = &b->pend[i];
		if (c->in_parent)
			continue;
		c->offset = offset;
		c->comp_len = len;
		c->crc = crc;
		c->raw = raw;
		/* a chunk alone in its block says nothing of it (as on disk) */
		c->block_pages = c->nr_pages == pages ? 0 : pages;
	}
	ret = add_chunks(w, b->pend, b->nr_pend, len);
	if (ret)
		pend_drop(b);
	b->nr_pend = 0;
	return ret;
}

/* Compress (or not) and write the packed pages of the batch as one block
 * shared by its pending chunks, then hand the chunks to the writer. */
static int store_block(struct page_writer *w, struct page_worker_buf *b)
{
	const uint8_t *in = b->in + (size_t)b->pack_base * PAGE_SIZE_;
	int len = b->packed * PAGE_SIZE_, raw = 0;
	int clen = len ? LZ4_compress_default((const char *)in, (char *)b->out, len, b->out_cap) : 0;
	const uint8_t *data = b->out;
	uint64_t offset = 0;
	uint32_t crc = 0, pages = b->packed;
	int ret = 0;

	if (len && (clen <= 0 || clen >= len)) {
		clen = len;
		data = in;
		raw = 1;
	}
	if (len) {
		crc = crc32c(0, data, clen);
		offset = reserve(w, (uint64_t)clen, raw);
		ret = w->fd < 0 ? remote_write(w->set, w->name, data, clen, offset)
				: pwrite_full(w->fd, data, clen, offset);
	}
	if (ret)
		return write_failed(w, b, ret);
	b->packed = 0;
	return pend_done(w, b, offset, (uint32_t)clen, crc, raw, pages);
}

/* Write the raw block gathered in raw_iov, its pages where they were
 * read (one pwritev; a page server takes one buffer: gathered in `out`),
 * then hand its chunks to the writer. */
static int store_raw(struct page_writer *w, struct page_worker_buf *b)
{
	uint32_t len = b->raw_pages * (uint32_t)PAGE_SIZE_, crc = 0, pages = b->raw_pages;
	uint64_t offset = reserve(w, len, 1);
	size_t at = 0;
	int ret;

	for (size_t i = 0; i < b->nr_raw_iov; i++)
		crc = crc32c(crc, b->raw_iov[i].iov_base, b->raw_iov[i].iov_len);
	if (w->fd >= 0) {
		ret = pwritev_full(w->fd, b->raw_iov, (int)b->nr_raw_iov, offset);
	} else {
		for (size_t i = 0; i < b->nr_raw_iov; at += b->raw_iov[i++].iov_len)
			memcpy(b->out + at, b->raw_iov[i].iov_base, b->raw_iov[i].iov_len);
		ret = remote_write(w->set, w->name, b->out, len, offset);
	}
	if (ret)
		return write_failed(w, b, ret);
	b->raw_pages = 0;
	b->nr_raw_iov = 0;
	return pend_done(w, b, offset, len, crc, 1, pages);
}

/* A stretch of raw pages into the raw block, left where it was read: the
 * block is written before anything is packed over it.  As a compressed
 * one, a block shared by chunks stays within PAGE_BATCH_PAGES. */
static int pend_raw(struct page_writer *w, struct page_worker_buf *b, uint64_t vaddr, uint32_t at,
		    uint32_t nr)
{
	struct page_chunk *c;
	int ret;

	if (b->raw_pages && b->raw_pages + nr > PAGE_BATCH_PAGES && (ret = store_raw(w, b)))
		return ret;
	c = &b->pend[b->nr_pend];
	*c = (struct page_chunk){ .vaddr = vaddr, .nr_pages = nr, .block_skip = b->raw_pages };
	if (chunk_hashes(c, b->hash + at))
		return -ENOMEM;
	b->nr_pend++;
	b->raw_iov[b->nr_raw_iov++] = (struct iovec){ .iov_base = b->in + (size_t)at * PAGE_SIZE_,
						      .iov_len = (size_t)nr * PAGE_SIZE_ };
	b->raw_pages += nr;
	return 0;
}

/* One stretch of pages of one kind, from page `at` of `in`: a chunk of
 * the block (new pages, packed) or of the parent (same pages).  A block
 * shared by chunks stays within PAGE_BATCH_PAGES: a long run with zero
 * pages in it is stored as before, a block per stretch, each decompressed
 * straight into place at restore. */
static int pend_stretch(struct page_writer *w, struct page_worker_buf *b, uint64_t vaddr,
			uint32_t at, uint32_t nr, int kind)
{
	struct page_chunk *c;
	int ret;

	if (kind == PAGE_NEW && b->packed && b->packed + nr > PAGE_BATCH_PAGES &&
	    (ret = store_block(w, b)))
		return ret;
	c = &b->pend[b->nr_pend];
	*c = (struct page_chunk){ .vaddr = vaddr, .nr_pages = nr };
	if (kind == PAGE_SAME) {
		c->in_parent = 1;
	} else {
		/* A block starts where its first stretch was read (a long
		 * one after raw pages is not moved); the zero, same and raw
		 * pages between its stretches are dropped. */
		if (!b->packed)
			b->pack_base = at;
		uint32_t to = b->pack_base + b->packed;
		c->block_skip = b->packed;
		if (to != at)
			memmove(b->in + (size_t)to * PAGE_SIZE_, b->in + (size_t)at * PAGE_SIZE_,
				(size_t)nr * PAGE_SIZE_);
		b->packed += nr;
	}
	if (chunk_hashes(c, b->hash + at))
		return -ENOMEM;
	b->nr_pend++;
	return 0;
}

/* First parent page at or after vaddr. */
static size_t parent_first(const struct page_hashes *ph, uint64_t vaddr)
{
	size_t lo = 0, hi = ph->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ph->vaddr[mid] < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Does lz4 shrink this page?  Asked of a sample, PROBE_PIECES pieces of
 * PROBE_BYTES / PROBE_PIECES bytes from across the page put end to end,
 * at a tenth of the cost of compressing the page.  A sample too short for
 * lz4 to find the repeats of moderately redundant data (small integers,
 * words: lz4 shrinks such pages to 0.8) says no to them as to random
 * data, so a sample that does not shrink by a sixteenth must also look
 * random byte by byte (PROBE_DISTINCT byte values or more; random bytes
 * give 150-170, such data 20-65) for its page to be stored raw.
 * (Two samples of 256 bytes, start and middle, cost 11% of the dump.)
 * A wrong guess costs room or time, never data.
 */
#define PROBE_BYTES 256
#define PROBE_PIECES 4
#define PROBE_DISTINCT 80

static int distinct_bytes(const uint8_t *p, size_t len)
{
	uint64_t seen[4] = { 0 };

	for (size_t i = 0; i < len; i++)
		seen[p[i] >> 6] |= 1ull << (p[i] & 63);
	return __builtin_popcountll(seen[0]) + __builtin_popcountll(seen[1]) +
	       __builtin_popcountll(seen[2]) + __builtin_popcountll(seen[3]);
}

static int page_compresses(LZ4_stream_t *probe, const uint8_t *p)
{
	const size_t piece = PROBE_BYTES / PROBE_PIECES;
	uint8_t in[PROBE_BYTES];
	char out[LZ4_COMPRESSBOUND(PROBE_BYTES)];

	for (size_t i = 0; i < PROBE_PIECES; i++)
		memcpy(in + i * piece, p + i * (PAGE_SIZE_ / PROBE_PIECES), piece);
	LZ4_resetStream_fast(probe);
	int n = LZ4_compress_fast_continue(probe, (const char *)in, out, PROBE_BYTES,
					   (int)sizeof(out), 1);
	if (n > 0 && n < PROBE_BYTES - PROBE_BYTES / 16)
		return 1;
	return distinct_bytes(in, sizeof(in)) < PROBE_DISTINCT;
}

/* Zero, same as the parent's page at that address, or new: for each page
 * of the run (read at page `at` of the batch), with its hash. */
static void classify_run(struct page_writer *w, struct page_worker_buf *b,
			 const struct page_run *run, uint32_t at)
{
	const struct page_hashes *ph = &w->parent;
	size_t j = parent_first(ph, run->vaddr);

	for (uint32_t i = at; i < at + run->nr_pages; i++) {
		const uint8_t *p = b->in + (size_t)i * PAGE_SIZE_;
		uint64_t vaddr = run->vaddr + (uint64_t)(i - at) * PAGE_SIZE_;

		if (!(run->flags & PAGE_RUN_KEEP_ZERO) && page_is_zero(p)) {
			b->kind[i] = PAGE_ZERO;
			continue;
		}
		b->hash[i] = XXH3_64bits(p, PAGE_SIZE_);
		while (j < ph->nr && ph->vaddr[j] < vaddr)
			j++;
		if (j < ph->nr && ph->vaddr[j] == vaddr && ph->hash[j] == b->hash[i])
			b->kind[i] = PAGE_SAME;
		else
			b->kind[i] = page_compresses(b->probe, p) ? PAGE_NEW : PAGE_RAW;
	}
}

/* The stretches of one run (read at page `at`) into the pending blocks:
 * its raw ones (`raw`), or the others. */
static int pend_run(struct page_writer *w, struct page_worker_buf *b, const struct page_run *run,
		    uint32_t at, int raw)
{
	uint32_t i = 0;
	int ret = 0;

	while (!ret && i < run->nr_pages) {
		uint32_t start = i;
		int kind = b->kind[at + i];
		uint64_t vaddr = run->vaddr + (uint64_t)start * PAGE_SIZE_;

		while (i < run->nr_pages && b->kind[at + i] == kind)
			i++;
		if (kind == PAGE_ZERO || (kind == PAGE_RAW) != raw)
			continue;
		ret = raw ? pend_raw(w, b, vaddr, at + start, i - start)
			  : pend_stretch(w, b, vaddr, at + start, i - start, kind);
	}
	return ret;
}

/* Every run of the batch into the pending blocks, raw ones or others. */
static int pend_runs(struct page_writer *w, struct page_worker_buf *b, int raw)
{
	uint32_t at = 0;
	int ret = 0;

	for (size_t r = 0; !ret && r < b->nr_runs; r++) {
		ret = pend_run(w, b, &b->runs[r], at, raw);
		at += b->runs[r].nr_pages;
	}
	return ret;
}

/* A batch: read every run (one pread each: /proc/PID/mem reads one
 * range per call), classify, write the raw pages as they lie, then pack
 * the new pages over them and store them as one block.  Per run, only
 * the pread and a few table entries remain. */
static int process_batch(struct page_writer *w, struct page_worker_buf *b)
{
	uint32_t at = 0;
	int ret = 0;

	for (size_t r = 0; !ret && r < b->nr_runs; r++) {
		ret = read_run(w, &b->runs[r], b->in + (size_t)at * PAGE_SIZE_);
		if (!ret)
			classify_run(w, b, &b->runs[r], at);
		at += b->runs[r].nr_pages;
	}
	if (!ret)
		ret = pend_runs(w, b, 1);
	if (!ret && b->raw_pages)
		ret = store_raw(w, b);
	if (!ret)
		ret = pend_runs(w, b, 0);
	if (ret) {
		pend_drop(b);
		return ret;
	}
	return store_block(w, b);
}

/* Runs waiting: enough for a full batch, or the last ones. */
static int batch_ready(const struct page_writer *w)
{
	return w->queued_pages >= PAGE_BATCH_PAGES || (w->closing && w->next_run < w->nr_runs);
}

/* The next batch of runs to do (consecutive runs, up to PAGE_BATCH_PAGES
 * pages in all), or 0 when the writer is closing (or failed). */
static int next_batch(struct page_writer *w, struct page_worker_buf *b)
{
	uint32_t pages = 0;

	b->nr_runs = 0;
	pthread_mutex_lock(&w->lock);
	while (!w->err && !batch_ready(w) && !w->closing)
		pthread_cond_wait(&w->wake, &w->lock);
	while (!w->err && w->next_run < w->nr_runs &&
	       (!b->nr_runs || pages + w->runs[w->next_run].nr_pages <= PAGE_BATCH_PAGES)) {
		pages += w->runs[w->next_run].nr_pages;
		w->queued_pages -= w->runs[w->next_run].nr_pages;
		b->runs[b->nr_runs++] = w->runs[w->next_run++];
	}
	pthread_mutex_unlock(&w->lock);
	return b->nr_runs > 0;
}

static void *writer_worker(void *arg)
{
	struct page_writer *w = arg;
	struct page_worker_buf *b = calloc(1, sizeof(*b));

	if (!b) {
		writer_fail(w, -ENOMEM);
		return NULL;
	}
	b->out_cap = LZ4_compressBound(CHUNK_BYTES);
	b->in = malloc(CHUNK_BYTES);
	b->out = malloc(b->out_cap);
	b->probe = LZ4_createStream();
	if (!b->in || !b->out || !b->probe)
		writer_fail(w, -ENOMEM);
	while (next_batch(w, b)) {
		int ret = process_batch(w, b);
		if (ret)
			writer_fail(w, ret);
	}
	free(b->in);
	free(b->out);
	LZ4_freeStream(b->probe);
	free(b);
	return NULL;
}

void page_chunks_free(struct page_chunk *chunks, size_t nr)
{
	for (size_t i = 0; chunks && i < nr; i++)
		free(chunks[i].hashes);
	free(chunks);
}

static void writer_destroy(struct page_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->mem_fd >= 0)
		close(w->mem_fd);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->runs);
	page_chunks_free(w->chunks, w->nr_chunks);
	page_hashes_free(&w->parent);
	free(w->name);
	free(w);
}

/* Our own memory (shared objects the dump mapped) too: a user's worker
 * is not dumpable, which gives its /proc files to root, so it is dumpable
 * for this open alone (the user still cannot trace or read it: it holds
 * capabilities the user lacks). */
static int open_mem(const char *path, int self)
{
	int was = self ? prctl(PR_GET_DUMPABLE) : 1;
	if (!was)
		prctl(PR_SET_DUMPABLE, 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	if (!was)
		prctl(PR_SET_DUMPABLE, 0);
	errno = e;
	return fd;
}

static int writer_start(struct page_writer *w, int threads)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	char path[32];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)w->pid);
	w->mem_fd = open_mem(path, w->pid == getpid());
	if (w->mem_fd < 0) {
		ret = -errno;
		st_err("pid %d: opening its memory: %s", (int)w->pid, strerror(-ret));
		return ret;
	}
	img_header_fill(hdr, IMG_PAGES);
	if (w->set->remote) {
		/* Straight to the page server (remote.c): w->fd stays -1. */
		set_mark_sent(w->set, w->name);
		ret = remote_write(w->set, w->name, hdr, sizeof(hdr), 0);
		if (ret)
			return ret;
	} else {
		w->fd = set_create_fd(w->set, w->name);
		if (w->fd < 0) {
			ret = w->fd;
			st_err("%s/%s: create: %s", w->set->dir, w->name, strerror(-ret));
			return ret;
		}
		ret = pwrite_full(w->fd, hdr, sizeof(hdr), 0);
		if (ret) {
			st_err("%s/%s: write: %s", w->set->dir, w->name, strerror(-ret));
			return ret;
		}
	}
	w->file_end = IMG_HEADER_SIZE;
	if (w->set->parent && (ret = page_hashes_load(w->set->parent, w->name, &w->parent)))
		return ret;
	for (int i = 0; i < page_threads(threads); i++) {
		ret = -pthread_create(&w->tids[w->nr_tids], NULL, writer_worker, w);
		if (ret)
			return ret;
		w->nr_tids++;
	}
	return 0;
}

int page_writer_open(struct img_set *set, const char *name, pid_t pid, int threads,
		     struct page_writer **out)
{
	struct page_writer *w;
	int ret;

	if (!set->writing || !set_valid_name(name))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->set = set;
	w->pid = pid;
	w->fd = -1;
	w->mem_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	w->name = strdup(name);
	ret = w->name ? set_track(set, name) : -ENOMEM;
	if (ret) {
		writer_destroy(w);
		return ret;
	}
	ret = writer_start(w, threads);
	if (ret) {
		page_writer_free(w);
		return ret;
	}
	*out = w;
	return 0;
}

static int queue_run(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages, uint32_t flags)
{
	if (w->nr_runs == w->cap_runs) {
		size_t cap = w->cap_runs ? 2 * w->cap_runs : 1024;
		struct page_run *n = realloc(w->runs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->runs = n;
		w->cap_runs = cap;
	}
	w->runs[w->nr_runs].vaddr = vaddr;
	w->runs[w->nr_runs].nr_pages = nr_pages;
	w->runs[w->nr_runs].flags = flags;
	w->nr_runs++;
	w->queued_pages += nr_pages;
	return 0;
}

/* An in_parent chunk of `nr` pages from vaddr, the parent's hashes from
 * its page j on; not read, so not in bytes_in.  Called with the lock. */
static int add_parent_chunk(struct page_writer *w, uint64_t vaddr, uint32_t nr, size_t j)
{
	struct page_chunk c = { .vaddr = vaddr, .nr_pages = nr, .in_parent = 1 };
	if (chunk_hashes(&c, w->parent.hash + j))
		return -ENOMEM;
	if (w->cap_chunks == w->nr_chunks) {
		size_t cap = w->cap_chunks ? 2 * w->cap_chunks : 256;
		struct page_chunk *n = realloc(w->chunks, cap * sizeof(*n));
		if (!n) {
			free(c.hashes);
			return -ENOMEM;
		}
		w->chunks = n;
		w->cap_chunks = cap;
	}
	w->chunks[w->nr_chunks++] = c;
	w->unread_pages += nr;
	return 0;
}

/* Pages found at the parent's page j on, from vaddr: at most `nr`. */
static uint32_t parent_stretch(const struct page_hashes *ph, size_t j, uint64_t vaddr, uint32_t nr)
{
	uint32_t k = 0;
	while (k < nr && k < IMG_CHUNK_PAGES && j + k < ph->nr &&
	       ph->vaddr[j + k] == vaddr + (uint64_t)k * PAGE_SIZE_)
		k++;
	return k;
}

/* A PAGE_RUN_UNWRITTEN run: the stretches the parent holds become its
 * chunks at once; the pages it lacks (zero then, or read since as the
 * zero page) are queued to be read like any others.  Called with the
 * lock. */
static int add_unwritten(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages, uint32_t flags)
{
	const struct page_hashes *ph = &w->parent;
	size_t j = parent_first(ph, vaddr);
	int ret = 0;

	flags &= ~PAGE_RUN_UNWRITTEN;
	while (!ret && nr_pages) {
		uint32_t n = parent_stretch(ph, j, vaddr, nr_pages);
		if (n) {
			ret = add_parent_chunk(w, vaddr, n, j);
			j += n;
		} else {
			uint64_t next = j < ph->nr ? ph->vaddr[j] : UINT64_MAX;
			uint64_t gap = (next - vaddr) / PAGE_SIZE_;
			n = gap < nr_pages ? (uint32_t)gap : nr_pages;
			n = n < IMG_CHUNK_PAGES ? n : IMG_CHUNK_PAGES;
			ret = queue_run(w, vaddr, n, flags);
		}
		vaddr += (uint64_t)n * PAGE_SIZE_;
		nr_pages -= n;
	}
	return ret;
}

uint64_t page_writer_unread_pages(const struct page_writer *w)
{
	return w->unread_pages;
}

int page_writer_add_flags(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages, uint32_t flags)
{
	int ret = 0;

	if (vaddr % PAGE_SIZE_ || vaddr + (uint64_t)nr_pages * PAGE_SIZE_ < vaddr)
		return -EINVAL;
	if ((flags & PAGE_RUN_UNWRITTEN) && !w->set->parent)
		flags &= ~PAGE_RUN_UNWRITTEN;
	if (flags & PAGE_RUN_UNWRITTEN) {
		pthread_mutex_lock(&w->lock);
		ret = w->err ? w->err : add_unwritten(w, vaddr, nr_pages, flags);
		if (batch_ready(w))
			pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->lock);
		return ret;
	}
	pthread_mutex_lock(&w->lock);
	ret = w->err;
	while (!ret && nr_pages) {
		uint32_t n = nr_pages < IMG_CHUNK_PAGES ? nr_pages : IMG_CHUNK_PAGES;
		ret = queue_run(w, vaddr, n, flags);
		vaddr += (uint64_t)n * PAGE_SIZE_;
		nr_pages -= n;
	}
	/* Workers wake for a full batch (or at the end, writer_join): one
	 * wake-up per run of a fragmented heap cost more than the run. */
	if (batch_ready(w))
		pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int page_writer_add(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages)
{
	return page_writer_add_flags(w, vaddr, nr_pages, 0);
}

static void writer_join(struct page_writer *w, int err)
{
	pthread_mutex_lock(&w->lock);
	w->closing = 1;
	if (err && !w->err)
		w->err = err;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->nr_tids; i++)
		pthread_join(w->tids[i], NULL);
	w->nr_tids = 0;
}

void page_writer_free(struct page_writer *w)
{
	if (!w)
		return;
	writer_join(w, -ECANCELED);
	writer_destroy(w);
}

static int cmp_offset(const void *a, const void *b)
{
	const struct page_chunk *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_vaddr(const void *a, const void *b)
{
	const struct page_chunk *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* The blocks lie after the header, back to back but for the zeros before
 * a raw one (reserve): join their crcs. */
static uint32_t file_crc(struct page_writer *w)
{
	static const uint8_t zeros[PAGE_SIZE_];
	uint8_t hdr[IMG_HEADER_SIZE];
	uint64_t at = sizeof(hdr);
	uint32_t crc;

	img_header_fill(hdr, IMG_PAGES);
	crc = crc32c(0, hdr, sizeof(hdr));
	if (w->nr_chunks)
		qsort(w->chunks, w->nr_chunks, sizeof(*w->chunks), cmp_offset);
	for (size_t i = 0; i < w->nr_chunks; i++) {
		const struct page_chunk *c = &w->chunks[i];

		/* a shared block once: with its first chunk */
		if (c->in_parent || c->block_skip)
			continue;
		if (c->offset > at) /* under a page: see reserve */
			crc = crc32c(crc, zeros, c->offset - at);
		crc = crc32c_combine(crc, c->crc, c->comp_len);
		at = c->offset + c->comp_len;
	}
	return crc;
}

int page_writer_finish(struct page_writer *w, struct page_chunk **chunks, size_t *nr_chunks,
		       uint64_t *bytes_in, uint64_t *bytes_out)
{
	int ret;

	writer_join(w, 0);
	ret = w->err;
	if (!ret && w->fd >= 0 && !w->set->defer_sync && fsync(w->fd)) {
		ret = -errno;
		st_err("%s/%s: fsync: %s", w->set->dir, w->name, strerror(-ret));
	}
	if (ret) {
		writer_destroy(w);
		return ret;
	}
	set_track_done(w->set, w->name, w->file_end, file_crc(w));
	if (w->nr_chunks)
		qsort(w->chunks, w->nr_chunks, sizeof(*w->chunks), cmp_vaddr);
	*chunks = w->chunks;
	*nr_chunks = w->nr_chunks;
	*bytes_in = w->bytes_in;
	*bytes_out = w->bytes_out;
	w->chunks = NULL;
	w->nr_chunks = 0;
	writer_destroy(w);
	return 0;
}

