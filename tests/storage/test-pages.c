/*
 * Page data round trip against a real process: a child holds 64 MiB of
 * zero, compressible, random and almost-zero pages, stops itself, and the
 * page writer reads it with process_vm_readv.  The reader must give back
 * exactly the child's bytes, zero pages must not be stored, and damage to
 * the pages file or to the (untrusted) chunk table must be caught and
 * named.  Random pages amid text ones are stored apart, raw.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "internal.h"
#include "pagemap.pb-c.h"
#include "storage.h"
#include "testutil.h"

#define PG 4096ul
#define NR_PAGES 16384ul /* 64 MiB */
#define GUARD_PAGES 256ul /* mapped by the parent, unmapped by the child */

enum { ZERO, TEXT, RANDOM, LAST_BYTE, SMALL_INTS };

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Stretches of a few hundred pages of one kind, so there are long holes,
 * long raw runs, runs longer than a chunk (pages 4096..7199 non-zero) and
 * a long compressed one (7000..7199);
 * elsewhere short runs between zero pages, stored together in blocks
 * shared by their chunks, but for one run of random pages that fills a
 * block of its own (the run dump() queues from page 10717), stored raw. */
static int page_kind(size_t i)
{
	if (i >= 10717 && i < 10717 + IMG_CHUNK_PAGES)
		return RANDOM;
	if (i >= 4096 && i < 7000)
		return i % 3 ? TEXT : RANDOM;
	if (i >= 7000 && i < 7200)
		return TEXT;
	if (i >= 7200 && i < 7300)
		return SMALL_INTS;
	if (i >= 9000 && i < 9400)
		return ZERO;
	return mix(i / 37 + 1) % 4 == 0 ? ZERO : (int)(mix(i) % 4);
}

static void fill(uint8_t *mem)
{
	for (size_t i = 0; i < NR_PAGES; i++) {
		uint8_t *p = mem + i * PG;
		switch (page_kind(i)) {
		case ZERO:
			memset(p, 0, PG); /* present, but zero */
			break;
		case TEXT:
			for (size_t j = 0; j < PG; j++)
				p[j] = "checkpoint restart "[j % 19] + (j / 512) % 3;
			break;
		case RANDOM:
			for (size_t j = 0; j < PG; j += 8) {
				uint64_t v = mix(i * PG + j);
				memcpy(p + j, &v, 8);
			}
			break;
		case LAST_BYTE:
			memset(p, 0, PG);
			p[PG - 1] = 1;
			break;
		case SMALL_INTS: /* lz4 shrinks these to 0.8 */
			for (size_t j = 0; j < PG; j += 4) {
				uint32_t v = (uint32_t)(mix(i * PG + j) % 1000);
				memcpy(p + j, &v, 4);
			}
			break;
		}
	}
}

/* What the child changes after the fork, so that reading the parent's own
 * copy by mistake would show. */
static void touch_non_zero(uint8_t *mem)
{
	for (size_t i = 0; i < NR_PAGES; i++) {
		if (page_kind(i) != ZERO) {
			uint64_t v = i + 0x1000;
			memcpy(mem + i * PG + 8, &v, 8);
		}
	}
}

static pid_t start_child(uint8_t *mem)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		touch_non_zero(mem);
		munmap(mem + NR_PAGES * PG, GUARD_PAGES * PG);
		/* still dumped: the writer reads what the process cannot */
		mprotect(mem + 100 * PG, 50 * PG, PROT_NONE);
		raise(SIGSTOP);
		pause();
		_exit(0);
	}
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
	return pid;
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, NULL, 0) == pid);
}

struct dest {
	uint8_t *old_base, *new_base;
	size_t len;
};

static void *dest_of(void *ctx, uint64_t vaddr, size_t len)
{
	struct dest *d = ctx;
	uint64_t base = (uintptr_t)d->old_base;

	if (vaddr < base || vaddr - base > d->len || len > d->len - (vaddr - base))
		return NULL;
	return d->new_base + (vaddr - base);
}

/* Pages lz4 cannot shrink are kept apart, raw: where text and random
 * pages alternate (pages 4096..6999), no chunk holds both kinds, every
 * random one is raw and the text ones are compressed; so are the small
 * integers of 7200..7299, which lz4 shrinks a little (a probe too short
 * to see it must not take them for random data). */
static void check_raw_apart(const struct page_chunk *c, size_t n, uint8_t *mem)
{
	size_t random = 0, text = 0, small = 0;

	for (size_t i = 0; i < n; i++) {
		size_t first = (c[i].vaddr - (uintptr_t)mem) / PG;
		if (first < 4096 || first >= 7300)
			continue;
		int random_chunk = page_kind(first) == RANDOM;
		for (size_t p = first; p < first + c[i].nr_pages; p++) {
			CHECK((page_kind(p) == RANDOM) == random_chunk);
			small += page_kind(p) == SMALL_INTS;
			text += page_kind(p) == TEXT;
		}
		CHECK(c[i].raw == random_chunk);
		random += random_chunk;
	}
	CHECK(random > 900 && text > 1800 && small == 100);
}

static void check_chunks(const struct page_chunk *c, size_t n, uint8_t *mem, uint64_t in,
			 uint64_t out)
{
	uint64_t pages = 0, stored = 0, want = 0, shared = 0;
	int raw = 0, lz4 = 0;

	for (size_t i = 0; i < NR_PAGES; i++)
		want += page_kind(i) != ZERO;
	for (size_t i = 0; i < n; i++) {
		size_t first = (c[i].vaddr - (uintptr_t)mem) / PG;
		CHECK(c[i].nr_pages >= 1 && c[i].nr_pages <= IMG_CHUNK_PAGES);
		CHECK(i == 0 || c[i].vaddr >= c[i - 1].vaddr + c[i - 1].nr_pages * PG);
		for (size_t p = first; p < first + c[i].nr_pages; p++)
			CHECK(page_kind(p) != ZERO); /* zero pages are never stored */
		pages += c[i].nr_pages;
		CHECK(!c[i].block_pages || c[i].block_skip + c[i].nr_pages <= c[i].block_pages);
		shared += c[i].block_pages != 0;
		if (c[i].block_skip)
			continue; /* the block was counted with its first chunk */
		stored += c[i].comp_len;
		/* a raw block starts on a page of the file, for O_DIRECT */
		CHECK(!c[i].raw || c[i].offset % PG == 0);
		raw += c[i].raw;
		lz4 += !c[i].raw;
	}
	CHECK(shared > 100);
	CHECK(pages == want);
	check_raw_apart(c, n, mem);
	CHECK(in == want * PG && out == stored);
	CHECK(raw > 0 && lz4 > 0);
	printf("%zu chunks (%d raw), %llu pages of %lu stored, %llu -> %llu bytes\n", n, raw,
	       (unsigned long long)pages, NR_PAGES, (unsigned long long)in,
	       (unsigned long long)out);
}

static void write_pagemap(struct img_set *set, const struct page_chunk *c, size_t n)
{
	struct img *img;

	CHECK(img_create(set, IMG_PAGEMAP, "pagemap-1.img", &img) == 0);
	for (size_t i = 0; i < n; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		pe.vaddr = c[i].vaddr;
		pe.nr_pages = c[i].nr_pages;
		pe.offset = c[i].offset;
		pe.comp_len = c[i].comp_len;
		pe.raw = c[i].raw;
		pe.crc = c[i].crc;
		pe.has_block_pages = pe.has_block_skip = c[i].block_pages != 0;
		pe.block_pages = c[i].block_pages;
		pe.block_skip = c[i].block_skip;
		CHECK(img_write(img, &pe.base) == 0);
	}
	CHECK(img_close_write(img) == 0);
}

static struct page_chunk *read_pagemap(struct img_set *set, size_t *n)
{
	struct page_chunk *c = NULL;
	ProtobufCMessage *msg;
	struct img *img;

	*n = 0;
	CHECK(img_open(set, IMG_PAGEMAP, "pagemap-1.img", &img) == 0);
	for (;;) {
		CHECK(img_read(img, &pagemap_entry__descriptor, &msg) == 0);
		if (!msg)
			break;
		PagemapEntry *pe = (PagemapEntry *)msg;
		c = realloc(c, (*n + 1) * sizeof(*c));
		c[*n] = (struct page_chunk){ pe->vaddr, pe->nr_pages, pe->offset, pe->comp_len,
					     pe->raw, pe->crc, 0, NULL, pe->has_block_pages ? pe->block_pages : 0, pe->has_block_skip ? pe->block_skip : 0 };
		(*n)++;
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	img_close(img);
	return c;
}

/* Dump the child into `dir`; the chunk table comes back. */
static struct page_chunk *dump(const char *dir, pid_t pid, uint8_t *mem, size_t *n)
{
	struct page_writer *w;
	struct page_chunk *c;
	struct img_set *set;
	uint64_t in, out;

	CHECK(img_set_create(dir, &set) == 0);
	CHECK(page_writer_open(set, "pages-1.img", pid, 0, &w) == 0);
	/* Uneven runs: the writer splits them at IMG_CHUNK_PAGES. */
	CHECK(page_writer_add(w, (uintptr_t)mem, 1500) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem + 1500 * PG, 1) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem + 1501 * PG, 0) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem + 1501 * PG, NR_PAGES - 1501) == 0);
	CHECK(page_writer_finish(w, &c, n, &in, &out) == 0);
	check_chunks(c, *n, mem, in, out);
	write_pagemap(set, c, *n);
	CHECK(img_set_commit(set, pid) == 0);
	img_set_close(set);
	return c;
}

static uint8_t *fresh_area(void)
{
	uint8_t *p = mmap(NULL, NR_PAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static void restore_and_compare(struct img_set *set, const struct page_chunk *c, size_t n,
				uint8_t *mem, int threads)
{
	struct dest d = { mem, fresh_area(), NR_PAGES * PG };

	CHECK(page_reader_load(set, "pages-1.img", c, n, threads, dest_of, &d) == 0);
	CHECK(memcmp(d.new_base, mem, NR_PAGES * PG) == 0);
	munmap(d.new_base, NR_PAGES * PG);
}

static void load_must_fail(struct img_set *set, const struct page_chunk *c, size_t n,
			   uint8_t *mem, const char *what)
{
	struct dest d = { mem, fresh_area(), NR_PAGES * PG };
	const char *err;

	capture_begin();
	CHECK(page_reader_load(set, "pages-1.img", c, n, 2, dest_of, &d) < 0);
	err = capture_end();
	CHECK(strstr(err, "pages-1.img: chunk ") && strstr(err, what));
	munmap(d.new_base, NR_PAGES * PG);
}

/* The largest chunk stored raw (or lz4). */
static size_t find_chunk(const struct page_chunk *c, size_t n, int raw)
{
	size_t best = n;

	for (size_t i = 0; i < n; i++)
		if (c[i].raw == raw && (best == n || c[i].nr_pages > c[best].nr_pages))
			best = i;
	CHECK(best < n);
	return best;
}

static int same_chunks(const struct page_chunk *a, const struct page_chunk *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].vaddr != b[i].vaddr || a[i].nr_pages != b[i].nr_pages ||
		    a[i].offset != b[i].offset || a[i].comp_len != b[i].comp_len ||
		    a[i].raw != b[i].raw || a[i].crc != b[i].crc ||
		    a[i].block_pages != b[i].block_pages || a[i].block_skip != b[i].block_skip)
			return 0;
	return 1;
}

/* The pages file written back and out of the page cache: a load then
 * reads it with O_DIRECT (pages-read.c block_read). */
static void evict(const char *dir)
{
	char path[600];
	int fd;

	snprintf(path, sizeof(path), "%s/pages-1.img", dir);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && fdatasync(fd) == 0);
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	close(fd);
}

/* Damage the stored bytes of one raw and one lz4 chunk. */
static void test_damage(const char *dir, const struct page_chunk *c, size_t n, uint8_t *mem)
{
	char path[600];
	struct img_set *set;

	snprintf(path, sizeof(path), "%s/pages-1.img", dir);
	for (int raw = 0; raw < 2; raw++) {
		size_t i = find_chunk(c, n, raw);
		off_t off = c[i].offset + c[i].comp_len / 2;
		CHECK(img_set_open(dir, &set) == 0);
		flip_bit(path, off, 5);
		load_must_fail(set, c, n, mem, "checksum mismatch");
		evict(dir);
		load_must_fail(set, c, n, mem, "checksum mismatch");
		img_set_close(set);
		/* The set check at open names the chunk too (from the pagemap). */
		char want[160];
		snprintf(want, sizeof(want), "pages-1.img: chunk %zu (0x%llx, offset %llu): "
			 "checksum mismatch", i, (unsigned long long)c[i].vaddr,
			 (unsigned long long)c[i].offset);
		capture_begin();
		CHECK(img_set_open(dir, &set) == -EBADMSG);
		CHECK(strstr(capture_end(), want));
		flip_bit(path, off, 5);
	}
}

/* The chunk table is untrusted too. */
static void test_bad_table(const char *dir, const struct page_chunk *good, size_t n,
			   uint8_t *mem)
{
	struct page_chunk *c = malloc(n * sizeof(*c));
	size_t raw = find_chunk(good, n, 1), lz = find_chunk(good, n, 0);
	struct img_set *set;

	size_t sh = 0;
	while (sh < n && !(good[sh].block_pages && good[sh].block_skip && !good[sh].raw))
		sh++;
	CHECK(sh < n);
	CHECK(good[lz].nr_pages >= 100);
	CHECK(img_set_open(dir, &set) == 0);
#define WITH(field_change, what)                              \
	do {                                                  \
		memcpy(c, good, n * sizeof(*c));              \
		field_change;                                 \
		load_must_fail(set, c, n, mem, what);         \
	} while (0)
	WITH(c[lz].offset = 1ull << 40, "outside the file");
	WITH(c[lz].offset = 3, "outside the file");
	WITH(c[lz].comp_len = 0xffffffff, "bad stored length");
	WITH(c[lz].nr_pages = IMG_CHUNK_PAGES + 1, "bad number of pages");
	WITH(c[lz].nr_pages = 0, "bad number of pages");
	WITH(c[raw].comp_len--, "raw chunk of the wrong length");
	WITH(c[lz].vaddr += 1, "bad address");
	WITH(c[lz].vaddr = (uintptr_t)mem - PG, "no destination");
	WITH(c[lz].raw = 1, "raw chunk of the wrong length");
	WITH(c[lz].crc ^= 1, "checksum mismatch");
	/* Right crc over wrong bytes: lz4 must refuse to decode them (the
	 * stored bytes of the raw chunk are random data). */
	CHECK(good[lz].nr_pages <= good[raw].nr_pages);
	WITH((c[lz].offset = good[raw].offset, c[lz].comp_len = c[lz].nr_pages * PG,
	      c[lz].crc = crc32c(0, mem + (good[raw].vaddr - (uintptr_t)mem), c[lz].comp_len)),
	     "bad lz4 data");
	/* Too few pages for what the lz4 data holds. */
	WITH(c[lz].nr_pages--, "bad lz4 data");
	/* Chunks of a shared block: pages outside it; a block the others
	 * of it do not agree on is a block of its own, checked as such. */
	WITH(c[sh].block_skip = c[sh].block_pages, "pages outside its block");
	WITH(c[sh].block_pages = IMG_CHUNK_PAGES + 1, "pages outside its block");
	WITH(c[sh].crc ^= 1, "checksum mismatch");
	WITH(c[sh].block_pages--, "bad lz4 data");
	WITH((c[sh].in_parent = 1), "block of a chunk in the parent");
#undef WITH
	img_set_close(set);
	free(c);
}

/* A run the child does not have mapped: the error names pid and address. */
static void test_read_error(const char *dir, pid_t pid, uint8_t *mem)
{
	struct page_writer *w;
	struct page_chunk *c;
	struct img_set *set;
	uint64_t in, out;
	size_t n;
	char want[128];
	const char *err;

	CHECK(img_set_create(dir, &set) == 0);
	CHECK(page_writer_open(set, "pages-2.img", pid, 2, &w) == 0);
	capture_begin(); /* a worker may fail at once */
	CHECK(page_writer_add(w, (uintptr_t)mem + (NR_PAGES - 8) * PG, 16) == 0);
	CHECK(page_writer_finish(w, &c, &n, &in, &out) == -EFAULT);
	err = capture_end();
	snprintf(want, sizeof(want), "pid %d: reading memory at 0x%lx: Bad address", (int)pid,
		 (unsigned long)(uintptr_t)(mem + NR_PAGES * PG));
	if (!strstr(err, want))
		fprintf(stderr, "expected \"%s\"\n", want);
	CHECK(strstr(err, want));
	capture_begin();
	CHECK(img_set_commit(set, pid) == -EBUSY); /* the failed file is not complete */
	capture_end();
	img_set_abort(set);
	img_set_close(set);
	snprintf(want, sizeof(want), "%s/pages-2.img", dir);
	CHECK(access(want, F_OK) == -1);

	/* Giving up before finish. */
	CHECK(img_set_create(dir, &set) == 0);
	CHECK(page_writer_open(set, "pages-3.img", pid, 0, &w) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem, 2048) == 0);
	page_writer_free(w);
	img_set_abort(set);
	img_set_close(set);
}

int main(void)
{
	char *base = make_tmpdir();
	char dir[400];
	size_t len = (NR_PAGES + GUARD_PAGES) * PG, n;
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page_chunk *c, *back;
	struct img_set *set;
	pid_t pid;

	CHECK(mem != MAP_FAILED);
	fill(mem);
	pid = start_child(mem);
	snprintf(dir, sizeof(dir), "%s/set", base);
	c = dump(dir, pid, mem, &n);
	test_read_error(base, pid, mem);
	stop_child(pid);
	touch_non_zero(mem); /* now the same bytes as the child had */

	CHECK(img_set_open(dir, &set) == 0);
	back = read_pagemap(set, &n);
	CHECK(same_chunks(back, c, n));
	restore_and_compare(set, back, n, mem, 0);
	restore_and_compare(set, back, n, mem, 1);
	restore_and_compare(set, back, n, mem, 5);
	evict(dir);
	restore_and_compare(set, back, n, mem, 2);
	img_set_close(set);

	test_damage(dir, c, n, mem);
	test_bad_table(dir, c, n, mem);
	free(back);
	page_chunks_free(c, n);
	remove_tree(base);
	free(base);
	printf("test-pages: ok\n");
	return 0;
}
