/*
 * Page data, read side: page_reader_load() puts a process's pages back,
 * read with O_DIRECT where they are not in the page cache (block_read).
 * Every fd it opens (pages files, parent sets) is closed when it returns:
 * restore calls it in the restored process itself.
 *
 * The chunk table is untrusted: every chunk is checked against its file
 * first.  Stored chunks of the set itself are read and decompressed by
 * worker threads straight into their destination, or, where several
 * chunks share one stored block (the runs of a fragmented heap, see
 * pages.c), the block once into a buffer and each chunk copied from it to
 * its place.  Chunks marked
 * in_parent (incremental sets) are resolved down the chain of parents:
 * each parent level is that set's own chunk table for the same process
 * (sorted, checked), and an in_parent range becomes pieces of the first
 * ancestor chunks that store those pages.  Pieces are grouped by stored
 * block so that every block is read and decompressed once, however many
 * pieces of it the restore needs.
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

/* Readers at least, by default (page_reader_load_keep). */
#define DIRECT_READERS 8

/* One set of the chain: level 0 is the set restored, 1 its parent... */
struct level {
	struct img_set *set;
	char name[NAME_MAX + 1];
	int fd;
	int direct_fd; /* the same file with O_DIRECT, or -1 */
	uint64_t size;
	const struct page_chunk *chunks;
	struct page_chunk *owned; /* parents: their table, freed at the end */
	size_t nr_chunks;
};

/* What a stored block is: chunks that agree on all of it share it (a
 * crafted table that disagrees only makes more blocks, each checked). */
struct block_key {
	uint64_t offset;
	uint32_t comp_len, crc, pages;
	int raw;
};

/* `count` pages from page `skip` of the block of chunk `chunk` of `level`,
 * going to `vaddr`. */
struct piece {
	uint32_t level;
	uint32_t skip, count;
	size_t chunk;
	struct block_key block;
	uint64_t vaddr;
};

struct page_reader {
	struct level levels[MAX_PARENT_DEPTH + 1];
	int nr_levels;
	struct piece *pieces;
	size_t nr_pieces, cap_pieces;
	size_t *groups; /* index of the first piece of each source chunk */
	size_t nr_groups;
	size_t next; /* atomic */
	int err;     /* atomic: first error stops everyone */
	page_dest_fn dest;
	page_keep_fn keep; /* may be NULL */
	void *ctx;
};

/* Pages of the chunk's block once decompressed. */
static uint32_t block_pages(const struct page_chunk *c)
{
	return c->block_pages ? c->block_pages : c->nr_pages;
}

static int chunk_check(const struct level *lv, size_t i)
{
	const struct page_chunk *c = &lv->chunks[i];
	uint64_t len = (uint64_t)c->nr_pages * PAGE_SIZE_;
	const char *bad = NULL;

	if (c->nr_pages == 0 || c->nr_pages > IMG_CHUNK_PAGES)
		bad = "bad number of pages";
	else if (c->vaddr % PAGE_SIZE_ || c->vaddr + len < c->vaddr)
		bad = "bad address";
	else if (c->in_parent)
		bad = c->block_pages || c->block_skip ? "block of a chunk in the parent" : NULL;
	else if (block_pages(c) > IMG_CHUNK_PAGES ||
		 (uint64_t)c->block_skip + c->nr_pages > block_pages(c))
		bad = "pages outside its block";
	else if (c->comp_len == 0 ||
		 c->comp_len > (uint64_t)LZ4_compressBound(block_pages(c) * PAGE_SIZE_))
		bad = "bad stored length";
	else if (c->raw && c->comp_len != (uint64_t)block_pages(c) * PAGE_SIZE_)
		bad = "raw chunk of the wrong length";
	else if (c->offset < IMG_HEADER_SIZE || c->offset > lv->size ||
		 c->comp_len > lv->size - c->offset)
		bad = "outside the file";
	if (!bad)
		return 0;
	st_err("%s/%s: chunk %zu (0x%llx): %s", lv->set->dir, lv->name, i,
	       (unsigned long long)c->vaddr, bad);
	return -EINVAL;
}

static struct block_key block_of(const struct page_chunk *c)
{
	return (struct block_key){ .offset = c->offset, .comp_len = c->comp_len, .crc = c->crc,
				   .pages = block_pages(c), .raw = !!c->raw };
}

static int cmp_block(const struct block_key *x, const struct block_key *y)
{
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->comp_len != y->comp_len)
		return x->comp_len < y->comp_len ? -1 : 1;
	if (x->crc != y->crc)
		return x->crc < y->crc ? -1 : 1;
	if (x->pages != y->pages)
		return x->pages < y->pages ? -1 : 1;
	return x->raw - y->raw;
}

/* The file again, for reads that bypass the page cache; none where its
 * file system takes no O_DIRECT (tmpfs before 6.6...). */
static int level_open_direct(struct level *lv, const struct stat *st)
{
	struct stat again;

	lv->direct_fd = openat(lv->set->dirfd, lv->name,
			       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECT);
	if (lv->direct_fd < 0)
		return 0;
	if (fstat(lv->direct_fd, &again) || again.st_dev != st->st_dev ||
	    again.st_ino != st->st_ino) {
		st_err("%s/%s: replaced while it was opened", lv->set->dir, lv->name);
		return -ESTALE;
	}
	return 0;
}

static int level_open(struct level *lv)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	struct stat st;
	int ret;

	if (!set_valid_name(lv->name) || !set_find(lv->set, lv->name)) {
		st_err("%s/%s: not in the image set", lv->set->dir, lv->name);
		return -ENOENT;
	}
	lv->fd = openat(lv->set->dirfd, lv->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (lv->fd < 0 || fstat(lv->fd, &st)) {
		ret = -errno;
		st_err("%s/%s: open: %s", lv->set->dir, lv->name, strerror(-ret));
		return ret;
	}
	if (st.st_size < IMG_HEADER_SIZE || pread_full(lv->fd, hdr, sizeof(hdr), 0))
		return img_header_check(lv->set, lv->name, hdr, 0, IMG_PAGES);
	lv->size = st.st_size;
	ret = img_header_check(lv->set, lv->name, hdr, sizeof(hdr), IMG_PAGES);
	for (size_t i = 0; !ret && i < lv->nr_chunks; i++)
		ret = chunk_check(lv, i);
	if (!ret)
		posix_fadvise(lv->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!ret)
		ret = level_open_direct(lv, &st);
	return ret;
}

static int cmp_vaddr(const void *a, const void *b)
{
	const struct page_chunk *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Level n+1: the parent set's table for the same process, sorted and
 * without overlaps (the lookup below relies on both). */
static int level_load_parent(struct page_reader *r, int n)
{
	struct level *lv = &r->levels[n], *up = &r->levels[n + 1];
	char map[NAME_MAX + 1];
	int ret;

	if (n + 1 > MAX_PARENT_DEPTH) {
		st_err("%s: more than %d parent sets", lv->set->dir, MAX_PARENT_DEPTH);
		return -ELOOP;
	}
	up->fd = up->direct_fd = -1;
	if ((ret = set_parent(lv->set, &up->set)))
		return ret;
	r->nr_levels = n + 2; /* from here reader_free closes it */
	memcpy(up->name, lv->name, sizeof(up->name));
	if ((ret = pagemap_name_of(up->name, map, sizeof(map))) ||
	    (ret = pagemap_read(up->set, map, 0, &up->owned, &up->nr_chunks)))
		return ret;
	up->chunks = up->owned;
	qsort(up->owned, up->nr_chunks, sizeof(*up->owned), cmp_vaddr);
	if ((ret = level_open(up)))
		return ret;
	for (size_t i = 1; i < up->nr_chunks; i++) {
		if (up->chunks[i - 1].vaddr + (uint64_t)up->chunks[i - 1].nr_pages * PAGE_SIZE_ >
		    up->chunks[i].vaddr) {
			st_err("%s/%s: chunk %zu overlaps the one before", up->set->dir, map, i);
			return -EINVAL;
		}
	}
	return 0;
}

static int add_piece(struct page_reader *r, const struct piece *p)
{
	if (r->nr_pieces == r->cap_pieces) {
		size_t cap = r->cap_pieces ? 2 * r->cap_pieces : 1024;
		struct piece *n = realloc(r->pieces, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->pieces = n;
		r->cap_pieces = cap;
	}
	r->pieces[r->nr_pieces++] = *p;
	return 0;
}

/* First chunk of the level that ends after vaddr. */
static size_t level_find(const struct level *lv, uint64_t vaddr)
{
	size_t lo = 0, hi = lv->nr_chunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct page_chunk *c = &lv->chunks[mid];
		if (c->vaddr + (uint64_t)c->nr_pages * PAGE_SIZE_ <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The pages [vaddr, vaddr + pages) of level n's parent, as pieces. */
static int resolve(struct page_reader *r, int n, uint64_t vaddr, uint64_t pages)
{
	const struct level *up;
	uint64_t end = vaddr + pages * PAGE_SIZE_;
	int ret = 0;

	if (n + 1 >= r->nr_levels && (ret = level_load_parent(r, n)))
		return ret;
	up = &r->levels[n + 1];
	for (size_t i = level_find(up, vaddr); !ret && vaddr < end; i++) {
		const struct page_chunk *c = i < up->nr_chunks ? &up->chunks[i] : NULL;
		uint64_t c_end;

		if (!c || c->vaddr > vaddr) {
			st_err("%s/%s: pages at 0x%llx are not in the parent set %s",
			       r->levels[n].set->dir, r->levels[n].name, (unsigned long long)vaddr,
			       up->set->dir);
			return -EINVAL;
		}
		c_end = c->vaddr + (uint64_t)c->nr_pages * PAGE_SIZE_;
		uint64_t upto = end < c_end ? end : c_end;
		if (c->in_parent) {
			ret = resolve(r, n + 1, vaddr, (upto - vaddr) / PAGE_SIZE_);
		} else {
			struct piece p = { .level = n + 1, .chunk = i, .vaddr = vaddr,
					   .block = block_of(c),
					   .skip = c->block_skip + (vaddr - c->vaddr) / PAGE_SIZE_,
					   .count = (upto - vaddr) / PAGE_SIZE_ };
			ret = add_piece(r, &p);
		}
		vaddr = upto;
	}
	return ret;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	int c = cmp_block(&x->block, &y->block);
	if (c)
		return c;
	return x->skip < y->skip ? -1 : x->skip > y->skip;
}

/* Every piece to load, grouped by the chunk that stores it. */
static int plan(struct page_reader *r)
{
	const struct level *lv = &r->levels[0];
	int ret = 0;

	for (size_t i = 0; !ret && i < lv->nr_chunks; i++) {
		const struct page_chunk *c = &lv->chunks[i];
		struct piece p = { .level = 0, .chunk = i, .vaddr = c->vaddr, .count = c->nr_pages,
				   .block = block_of(c), .skip = c->block_skip };

		ret = c->in_parent ? resolve(r, 0, c->vaddr, c->nr_pages) : add_piece(r, &p);
	}
	if (ret)
		return ret;
	if (r->nr_pieces)
		qsort(r->pieces, r->nr_pieces, sizeof(*r->pieces), cmp_piece);
	r->groups = malloc((r->nr_pieces + 1) * sizeof(*r->groups));
	if (!r->groups)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_pieces; i++) {
		const struct piece *p = &r->pieces[i];
		if (!i || cmp_block(&p[-1].block, &p->block) || p[-1].level != p->level)
			r->groups[r->nr_groups++] = i;
	}
	r->groups[r->nr_groups] = r->nr_pieces;
	return 0;
}

static int chunk_fail(const struct level *lv, size_t i, const char *bad)
{
	st_err("%s/%s: chunk %zu (0x%llx): %s", lv->set->dir, lv->name, i,
	       (unsigned long long)lv->chunks[i].vaddr, bad);
	return -EBADMSG;
}

/* cachestat(2) (Linux 6.5), which the C library does not wrap yet. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cache_range {
	uint64_t off, len;
};
struct cache_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Whether [off, off + len) of the file is all in the page cache, or the
 * kernel cannot tell us (then the page cache is used, as it always was). */
static int all_cached(int fd, uint64_t off, uint64_t len)
{
	struct cache_range r = { off, len };
	struct cache_stat cs;

	if (syscall(__NR_cachestat, fd, &r, &cs, 0))
		return 1;
	return cs.nr_cache >= (len + PAGE_SIZE_ - 1) / PAGE_SIZE_;
}

/*
 * The stored block of chunk `c` into `to` (page-aligned, with a page to
 * spare at each end when the block is lz4): *data is where it starts.
 * A block not in the page cache is read with O_DIRECT, straight into
 * `to`: a restore from a cold cache then neither fills the page cache
 * nor copies out of it.  On this VM, which hands freed memory back to its
 * host, the page cache's fresh pages and that copy made a 4 GiB restore
 * take 6-8 s once the host had taken memory back, against 3-4.5 s read
 * directly.  A raw block starts on a page of the file (pages.c: reserve),
 * so it goes straight into the restored memory; sets written before that
 * was so are read through the page cache.
 */
static int block_read(const struct level *lv, const struct page_chunk *c, uint8_t *to,
		      const uint8_t **data)
{
	uint64_t start = c->offset & ~(uint64_t)(PAGE_SIZE_ - 1);
	uint64_t end = (c->offset + c->comp_len + PAGE_SIZE_ - 1) & ~(uint64_t)(PAGE_SIZE_ - 1);
	int aligned = c->raw ? start == c->offset : 1;
	int ret;

	/* (`to` is a page of the restored memory or a worker's aligned
	 * buffer; a read O_DIRECT cannot take is EINVAL, and goes the other
	 * way) */
	if (lv->direct_fd >= 0 && aligned && !all_cached(lv->fd, start, end - start)) {
		ret = pread_least(lv->direct_fd, to, end - start, start,
				  c->offset - start + c->comp_len);
		*data = to + (c->offset - start);
		if (ret != -EINVAL)
			return ret;
	}
	/* Through the page cache, read once: its pages go back at once, to
	 * be the restored memory's next pages, rather than each page of both
	 * coming fresh. */
	ret = pread_full(lv->fd, to, c->comp_len, c->offset);
	posix_fadvise(lv->fd, (off_t)c->offset, (off_t)c->comp_len, POSIX_FADV_DONTNEED);
	*data = to;
	return ret;
}

/* Read chunk `i` of `lv`, check it and decompress it into `out`. */
static int chunk_load(const struct level *lv, size_t i, uint8_t *buf, uint8_t *out)
{
	const struct page_chunk *c = &lv->chunks[i];
	int len = block_pages(c) * PAGE_SIZE_;
	const uint8_t *data;
	int ret = block_read(lv, c, c->raw ? out : buf, &data);

	if (ret) {
		st_err("%s/%s: chunk %zu: read: %s", lv->set->dir, lv->name, i, strerror(-ret));
		return ret;
	}
	if (crc32c(0, data, c->comp_len) != c->crc)
		return chunk_fail(lv, i, "checksum mismatch");
	if (!c->raw && LZ4_decompress_safe((const char *)data, (char *)out, c->comp_len, len) != len)
		return chunk_fail(lv, i, "bad lz4 data");
	return 0;
}

static int piece_kept(struct page_reader *r, const struct piece *p)
{
	return r->keep && r->keep(r->ctx, p->vaddr, (size_t)p->count * PAGE_SIZE_);
}

static uint8_t *piece_dest(struct page_reader *r, const struct piece *p, int kept)
{
	size_t len = (size_t)p->count * PAGE_SIZE_;
	uint8_t *d = r->dest(r->ctx, p->vaddr, len);

	/* One call to fault in the whole destination: much cheaper than a
	 * fault per page as the copy goes (kernels before 5.14 ignore it).
	 * Not where pages are kept: that would unshare them all. */
	if (d && !kept)
		madvise(d, len, MADV_POPULATE_WRITE);
	return d;
}

/* Write only the pages that differ: the others stay shared. */
static void copy_changed(uint8_t *d, const uint8_t *src, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE_SIZE_)
		if (memcmp(d + off, src + off, PAGE_SIZE_))
			memcpy(d + off, src + off, PAGE_SIZE_);
}

/* One source chunk: straight into place when it is wanted whole, else
 * through `tmp` and copied piece by piece. */
static int load_group(struct page_reader *r, size_t g, uint8_t *buf, uint8_t *tmp)
{
	const struct piece *first = &r->pieces[r->groups[g]];
	size_t nr = r->groups[g + 1] - r->groups[g];
	const struct level *lv = &r->levels[first->level];
	const struct page_chunk *c = &lv->chunks[first->chunk];
	int whole = nr == 1 && first->skip == 0 && first->count == block_pages(c);
	int ret;

	if (whole && !piece_kept(r, first)) {
		uint8_t *d = piece_dest(r, first, 0);
		return d ? chunk_load(lv, first->chunk, buf, d)
			 : chunk_fail(lv, first->chunk, "no destination for it");
	}
	if ((ret = chunk_load(lv, first->chunk, buf, tmp)))
		return ret;
	for (size_t k = 0; k < nr; k++) {
		const struct piece *p = first + k;
		int kept = piece_kept(r, p);
		uint8_t *d = piece_dest(r, p, kept);
		const uint8_t *src = tmp + (size_t)p->skip * PAGE_SIZE_;

		if (!d)
			return chunk_fail(lv, p->chunk, "no destination for it");
		if (kept)
			copy_changed(d, src, (size_t)p->count * PAGE_SIZE_);
		else
			memcpy(d, src, (size_t)p->count * PAGE_SIZE_);
	}
	return 0;
}

static void *reader_worker(void *arg)
{
	struct page_reader *r = arg;
	/* page-aligned, for O_DIRECT (block_read) */
	size_t buf_len = (LZ4_compressBound(CHUNK_BYTES) + 3 * PAGE_SIZE_ - 1) & ~(PAGE_SIZE_ - 1);
	uint8_t *buf = aligned_alloc(PAGE_SIZE_, buf_len);
	uint8_t *tmp = aligned_alloc(PAGE_SIZE_, CHUNK_BYTES); /* for blocks shared by chunks */

	if (!buf || !tmp) {
		__atomic_store_n(&r->err, -ENOMEM, __ATOMIC_RELAXED);
		goto out;
	}
	while (!__atomic_load_n(&r->err, __ATOMIC_RELAXED)) {
		size_t g = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
		int ret;

		if (g >= r->nr_groups)
			break;
		ret = load_group(r, g, buf, tmp);
		if (ret) {
			int zero = 0;
			__atomic_compare_exchange_n(&r->err, &zero, ret, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		}
	}
out:
	free(buf);
	free(tmp);
	return NULL;
}

static void reader_free(struct page_reader *r)
{
	for (int i = 0; i < r->nr_levels; i++) {
		if (r->levels[i].fd >= 0)
			close(r->levels[i].fd);
		if (r->levels[i].direct_fd >= 0)
			close(r->levels[i].direct_fd);
		page_chunks_free(r->levels[i].owned, r->levels[i].nr_chunks);
		if (i > 0)
			img_set_close(r->levels[i].set); /* parents are ours */
	}
	free(r->pieces);
	free(r->groups);
}

int page_reader_load_keep(struct img_set *set, const char *name, const struct page_chunk *chunks,
			  size_t nr_chunks, int threads, page_dest_fn dest, page_keep_fn keep,
			  void *ctx)
{
	struct page_reader r = { .nr_levels = 1, .dest = dest, .keep = keep, .ctx = ctx };
	struct level *lv = &r.levels[0];
	pthread_t tids[MAX_THREADS];
	int n = page_threads(threads), started = 0;
	int ret;

	lv->set = set;
	lv->fd = lv->direct_fd = -1;
	lv->chunks = chunks;
	lv->nr_chunks = nr_chunks;
	if (strlen(name) >= sizeof(lv->name))
		return -EINVAL;
	strcpy(lv->name, name);
	ret = level_open(lv);
	if (!ret)
		ret = plan(&r);
	if (ret)
		goto out;
	/* A reader of O_DIRECT blocks mostly waits for the disk (no readahead
	 * runs ahead of it): one per CPU left this VM's 2 CPUs idle half the
	 * time.  A 1 GiB cold restore: 580-900 ms with 2, 410-610 with 8, no
	 * better with 16. */
	if (threads <= 0 && n < DIRECT_READERS && lv->direct_fd >= 0 &&
	    !all_cached(lv->fd, 0, lv->size))
		n = DIRECT_READERS;
	for (int i = 1; i < n && (size_t)i < r.nr_groups; i++)
		if (!pthread_create(&tids[started], NULL, reader_worker, &r))
			started++;
	reader_worker(&r);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	ret = r.err;
out:
	reader_free(&r);
	return ret;
}

int page_reader_load(struct img_set *set, const char *name, const struct page_chunk *chunks,
		     size_t nr_chunks, int threads, page_dest_fn dest, void *ctx)
{
	return page_reader_load_keep(set, name, chunks, nr_chunks, threads, dest, NULL, ctx);
}
