/*
 * Page data: the bulk of a checkpoint, so the one place where speed
 * matters most.
 *
 * Writer: page_writer_add() queues runs of present pages (split at
 * IMG_CHUNK_PAGES); one worker per CPU takes a run, copies it out of the
 * stopped process with one pread of /proc/PID/mem, drops the all-zero pages,
 * compresses each stretch of non-zero pages with lz4 (or keeps it raw when
 * that does not shrink it), reserves room at the end of the pages file and
 * pwrites it there.  Buffers are allocated once per worker: fresh memory
 * is expensive (every new page is a fault, and on a VM often a trip to the
 * host).  The file's crc for the manifest is joined from the chunk crcs,
 * which sit back to back after the header, so the file is never re-read.
 *
 * Reader: page_reader_load() checks the whole (untrusted) chunk table
 * against the file first, then workers pread each chunk, check its crc and
 * decompress it straight into its destination.
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PAGE_SIZE_ 4096u
#define CHUNK_BYTES (IMG_CHUNK_PAGES * PAGE_SIZE_)
#define MAX_THREADS 64

static int nr_threads(int threads)
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
	int closing;
	int err;

	uint64_t file_end; /* next free offset in the file */
	uint64_t flushed;  /* written back and dropped from the page cache below */
	int flushing;      /* one worker does it at a time */
	struct page_chunk *chunks;
	size_t nr_chunks, cap_chunks;
	uint64_t bytes_in, bytes_out;

	pthread_t tids[MAX_THREADS];
	int nr_tids;
};

struct page_worker_buf {
	uint8_t *in;
	uint8_t *out;
	int out_cap;
};

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

static int add_chunk(struct page_writer *w, const struct page_chunk *c)
{
	int ret = 0;

	pthread_mutex_lock(&w->lock);
	if (w->nr_chunks == w->cap_chunks) {
		size_t cap = w->cap_chunks ? 2 * w->cap_chunks : 256;
		struct page_chunk *n = realloc(w->chunks, cap * sizeof(*n));
		if (n) {
			w->chunks = n;
			w->cap_chunks = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret) {
		w->chunks[w->nr_chunks++] = *c;
		w->bytes_in += (uint64_t)c->nr_pages * PAGE_SIZE_;
		w->bytes_out += c->comp_len;
	}
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

static void write_behind(struct page_writer *w, uint64_t off, uint64_t len)
{
	uint64_t start = 0, end = 0;

	sync_file_range(w->fd, off, len, SYNC_FILE_RANGE_WRITE);
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

/* Compress (or not) and write one stretch of non-zero pages. */
static int store_chunk(struct page_writer *w, struct page_worker_buf *b, uint64_t vaddr,
		       const uint8_t *src, uint32_t nr_pages)
{
	struct page_chunk c = { .vaddr = vaddr, .nr_pages = nr_pages };
	int len = nr_pages * PAGE_SIZE_;
	int clen = LZ4_compress_default((const char *)src, (char *)b->out, len, b->out_cap);
	const uint8_t *data = b->out;
	int ret;

	if (clen <= 0 || clen >= len) {
		clen = len;
		data = src;
		c.raw = 1;
	}
	c.comp_len = clen;
	c.crc = crc32c(0, data, clen);
	pthread_mutex_lock(&w->lock);
	c.offset = w->file_end;
	w->file_end += clen;
	pthread_mutex_unlock(&w->lock);
	ret = pwrite_full(w->fd, data, clen, c.offset);
	if (ret) {
		st_err("%s/%s: write: %s", w->set->dir, w->name, strerror(-ret));
		return ret;
	}
	write_behind(w, c.offset, clen);
	return add_chunk(w, &c);
}

static int process_run(struct page_writer *w, struct page_worker_buf *b,
		       const struct page_run *run)
{
	uint32_t i = 0;
	int ret = read_run(w, run, b->in);

	while (!ret && i < run->nr_pages) {
		uint32_t start;

		while (i < run->nr_pages && page_is_zero(b->in + (size_t)i * PAGE_SIZE_))
			i++;
		start = i;
		while (i < run->nr_pages && !page_is_zero(b->in + (size_t)i * PAGE_SIZE_))
			i++;
		if (i > start)
			ret = store_chunk(w, b, run->vaddr + (uint64_t)start * PAGE_SIZE_,
					  b->in + (size_t)start * PAGE_SIZE_, i - start);
	}
	return ret;
}

/* Next run to do, or 0 when the writer is closing (or failed). */
static int next_run(struct page_writer *w, struct page_run *run)
{
	int got = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->err && w->next_run == w->nr_runs && !w->closing)
		pthread_cond_wait(&w->wake, &w->lock);
	if (!w->err && w->next_run < w->nr_runs) {
		*run = w->runs[w->next_run++];
		got = 1;
	}
	pthread_mutex_unlock(&w->lock);
	return got;
}

static void *writer_worker(void *arg)
{
	struct page_writer *w = arg;
	struct page_worker_buf b = { .out_cap = LZ4_compressBound(CHUNK_BYTES) };
	struct page_run run;

	b.in = malloc(CHUNK_BYTES);
	b.out = malloc(b.out_cap);
	if (!b.in || !b.out)
		writer_fail(w, -ENOMEM);
	while (next_run(w, &run)) {
		int ret = process_run(w, &b, &run);
		if (ret)
			writer_fail(w, ret);
	}
	free(b.in);
	free(b.out);
	return NULL;
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
	free(w->chunks);
	free(w->name);
	free(w);
}

static int writer_start(struct page_writer *w, int threads)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	char path[32];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)w->pid);
	w->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (w->mem_fd < 0) {
		ret = -errno;
		st_err("pid %d: opening its memory: %s", (int)w->pid, strerror(-ret));
		return ret;
	}
	w->fd = openat(w->set->dirfd, w->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		       0600);
	if (w->fd < 0) {
		ret = -errno;
		st_err("%s/%s: create: %s", w->set->dir, w->name, strerror(-ret));
		return ret;
	}
	img_header_fill(hdr, IMG_PAGES);
	ret = pwrite_full(w->fd, hdr, sizeof(hdr), 0);
	if (ret) {
		st_err("%s/%s: write: %s", w->set->dir, w->name, strerror(-ret));
		return ret;
	}
	w->file_end = IMG_HEADER_SIZE;
	for (int i = 0; i < nr_threads(threads); i++) {
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

static int queue_run(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages)
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
	w->nr_runs++;
	return 0;
}

int page_writer_add(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages)
{
	int ret = 0;

	if (vaddr % PAGE_SIZE_ || vaddr + (uint64_t)nr_pages * PAGE_SIZE_ < vaddr)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	ret = w->err;
	while (!ret && nr_pages) {
		uint32_t n = nr_pages < IMG_CHUNK_PAGES ? nr_pages : IMG_CHUNK_PAGES;
		ret = queue_run(w, vaddr, n);
		vaddr += (uint64_t)n * PAGE_SIZE_;
		nr_pages -= n;
	}
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return ret;
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

/* The chunks lie back to back after the header: join their crcs. */
static uint32_t file_crc(struct page_writer *w)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	uint32_t crc;

	img_header_fill(hdr, IMG_PAGES);
	crc = crc32c(0, hdr, sizeof(hdr));
	qsort(w->chunks, w->nr_chunks, sizeof(*w->chunks), cmp_offset);
	for (size_t i = 0; i < w->nr_chunks; i++)
		crc = crc32c_combine(crc, w->chunks[i].crc, w->chunks[i].comp_len);
	return crc;
}

int page_writer_finish(struct page_writer *w, struct page_chunk **chunks, size_t *nr_chunks,
		       uint64_t *bytes_in, uint64_t *bytes_out)
{
	int ret;

	writer_join(w, 0);
	ret = w->err;
	if (!ret && fsync(w->fd)) {
		ret = -errno;
		st_err("%s/%s: fsync: %s", w->set->dir, w->name, strerror(-ret));
	}
	if (ret) {
		writer_destroy(w);
		return ret;
	}
	set_track_done(w->set, w->name, w->file_end, file_crc(w));
	qsort(w->chunks, w->nr_chunks, sizeof(*w->chunks), cmp_vaddr);
	*chunks = w->chunks;
	*nr_chunks = w->nr_chunks;
	*bytes_in = w->bytes_in;
	*bytes_out = w->bytes_out;
	w->chunks = NULL;
	writer_destroy(w);
	return 0;
}

/* ---- reader ---- */

struct page_reader {
	struct img_set *set;
	const char *name;
	int fd;
	const struct page_chunk *chunks;
	size_t nr_chunks;
	size_t next; /* atomic */
	int err;     /* atomic: first error stops everyone */
	page_dest_fn dest;
	void *ctx;
};

static int chunk_check(const struct page_reader *r, size_t i, uint64_t file_size)
{
	const struct page_chunk *c = &r->chunks[i];
	uint64_t len = (uint64_t)c->nr_pages * PAGE_SIZE_;
	const char *bad = NULL;

	if (c->nr_pages == 0 || c->nr_pages > IMG_CHUNK_PAGES)
		bad = "bad number of pages";
	else if (c->vaddr % PAGE_SIZE_ || c->vaddr + len < c->vaddr)
		bad = "bad address";
	else if (c->comp_len == 0 || c->comp_len > (uint64_t)LZ4_compressBound(len))
		bad = "bad stored length";
	else if (c->raw && c->comp_len != len)
		bad = "raw chunk of the wrong length";
	else if (c->offset < IMG_HEADER_SIZE || c->offset > file_size ||
		 c->comp_len > file_size - c->offset)
		bad = "outside the file";
	if (!bad)
		return 0;
	st_err("%s/%s: chunk %zu (0x%llx): %s", r->set->dir, r->name, i,
	       (unsigned long long)c->vaddr, bad);
	return -EINVAL;
}

static int load_chunk(struct page_reader *r, size_t i, uint8_t *buf)
{
	const struct page_chunk *c = &r->chunks[i];
	int len = c->nr_pages * PAGE_SIZE_;
	uint8_t *d = r->dest(r->ctx, c->vaddr, len);
	const char *bad = NULL;
	int ret;

	if (!d) {
		bad = "no destination for it";
		goto fail;
	}
	/* One call to fault in the whole destination: much cheaper than a
	 * fault per page as the copy goes (kernels before 5.14 ignore it). */
	madvise(d, len, MADV_POPULATE_WRITE);
	ret = pread_full(r->fd, c->raw ? d : buf, c->comp_len, c->offset);
	if (ret) {
		st_err("%s/%s: chunk %zu: read: %s", r->set->dir, r->name, i, strerror(-ret));
		return ret;
	}
	if (crc32c(0, c->raw ? d : buf, c->comp_len) != c->crc) {
		bad = "checksum mismatch";
		goto fail;
	}
	if (!c->raw && LZ4_decompress_safe((const char *)buf, (char *)d, c->comp_len, len) != len)
		bad = "bad lz4 data";
	if (!bad)
		return 0;
fail:
	st_err("%s/%s: chunk %zu (0x%llx): %s", r->set->dir, r->name, i,
	       (unsigned long long)c->vaddr, bad);
	return -EBADMSG;
}

static void *reader_worker(void *arg)
{
	struct page_reader *r = arg;
	uint8_t *buf = malloc(LZ4_compressBound(CHUNK_BYTES));

	if (!buf) {
		__atomic_store_n(&r->err, -ENOMEM, __ATOMIC_RELAXED);
		return NULL;
	}
	while (!__atomic_load_n(&r->err, __ATOMIC_RELAXED)) {
		size_t i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
		int ret;

		if (i >= r->nr_chunks)
			break;
		ret = load_chunk(r, i, buf);
		if (ret) {
			int zero = 0;
			__atomic_compare_exchange_n(&r->err, &zero, ret, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		}
	}
	free(buf);
	return NULL;
}

static int reader_open(struct page_reader *r, uint64_t *size)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	struct stat st;
	int ret;

	if (!set_valid_name(r->name) || !set_find(r->set, r->name)) {
		st_err("%s/%s: not in the image set", r->set->dir, r->name);
		return -ENOENT;
	}
	r->fd = openat(r->set->dirfd, r->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &st)) {
		ret = -errno;
		st_err("%s/%s: open: %s", r->set->dir, r->name, strerror(-ret));
		return ret;
	}
	if (st.st_size < IMG_HEADER_SIZE || pread_full(r->fd, hdr, sizeof(hdr), 0))
		return img_header_check(r->set, r->name, hdr, 0, IMG_PAGES);
	*size = st.st_size;
	return img_header_check(r->set, r->name, hdr, sizeof(hdr), IMG_PAGES);
}

int page_reader_load(struct img_set *set, const char *name, const struct page_chunk *chunks,
		     size_t nr_chunks, int threads, page_dest_fn dest, void *ctx)
{
	struct page_reader r = { .set = set, .name = name, .fd = -1, .chunks = chunks,
				 .nr_chunks = nr_chunks, .dest = dest, .ctx = ctx };
	pthread_t tids[MAX_THREADS];
	int n = nr_threads(threads), started = 0;
	uint64_t size = 0;
	int ret = reader_open(&r, &size);

	for (size_t i = 0; !ret && i < nr_chunks; i++)
		ret = chunk_check(&r, i, size);
	if (ret)
		goto out;
	posix_fadvise(r.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (int i = 1; i < n && (size_t)i < nr_chunks; i++)
		if (!pthread_create(&tids[started], NULL, reader_worker, &r))
			started++;
	reader_worker(&r);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	ret = r.err;
out:
	if (r.fd >= 0)
		close(r.fd);
	return ret;
}
