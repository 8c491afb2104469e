/*
 * Benchmark of the page writer and reader (not a test: it prints figures).
 *
 *   bench-pages [MiB (1024)] [dir (/tmp/ckpt-bench)] [threads (0 = nproc)]
 *
 * A child holds MiB of memory, half compressible (128-byte records whose
 * only changing field is a counter, like arrays of structs in a simulation)
 * and half random, in alternating 2 MiB stretches, and stops itself; it
 * writes them itself after the fork, so they are its own, not pages shared
 * copy-on-write with the parent (BENCH_SHARED=1 in the environment: shared
 * with the parent, as a fork()ed snapshot would be).  Dump:
 * image set, page writer over the whole area, pagemap, commit (everything
 * fsynced).  Restore: open the set (crc of every file), read the pagemap,
 * load the pages into fresh memory, and again into memory already faulted.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "pagemap.pb-c.h"
#include "storage.h"
#include "testutil.h"

#define PG 4096ul
#define STRETCH (2ul << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill(uint8_t *mem, size_t len)
{
	uint64_t x = 88172645463325252ull;

	for (size_t off = 0; off < len; off += STRETCH) {
		uint64_t *q = (uint64_t *)(mem + off);
		size_t words = (len - off < STRETCH ? len - off : STRETCH) / 8;

		if ((off / STRETCH) % 2 == 0) {
			for (size_t i = 0; i < words; i++) {
				/* record: id, then 15 words of steady fields */
				q[i] = i % 16 == 0 ? (off + i * 8) / 128 : 0x3ff0000000000000ull + i % 16;
			}
		} else {
			for (size_t i = 0; i < words; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				q[i] = x;
			}
		}
	}
}

struct dest {
	uint8_t *old_base, *new_base;
	size_t len;
};

static void *dest_of(void *ctx, uint64_t vaddr, size_t len)
{
	struct dest *d = ctx;
	uint64_t off = vaddr - (uintptr_t)d->old_base;

	return off <= d->len && len <= d->len - off ? d->new_base + off : NULL;
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
	size_t cap = 0;
	ProtobufCMessage *msg;
	struct img *img;

	*n = 0;
	CHECK(img_open(set, IMG_PAGEMAP, "pagemap-1.img", &img) == 0);
	while (img_read(img, &pagemap_entry__descriptor, &msg) == 0 && msg) {
		PagemapEntry *pe = (PagemapEntry *)msg;
		if (*n == cap)
			c = realloc(c, (cap = cap ? 2 * cap : 1024) * sizeof(*c));
		c[(*n)++] = (struct page_chunk){ pe->vaddr, pe->nr_pages, pe->offset,
						 pe->comp_len, pe->raw, pe->crc, 0, NULL, pe->has_block_pages ? pe->block_pages : 0, pe->has_block_skip ? pe->block_skip : 0 };
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	img_close(img);
	return c;
}

static double dump(const char *dir, pid_t pid, uint8_t *mem, size_t len, int threads,
		   uint64_t *out)
{
	struct page_writer *w;
	struct page_chunk *c;
	struct img_set *set;
	uint64_t in;
	size_t n;
	double t0 = now(), t1;

	CHECK(img_set_create(dir, &set) == 0);
	CHECK(page_writer_open(set, "pages-1.img", pid, threads, &w) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem, len / PG) == 0);
	CHECK(page_writer_finish(w, &c, &n, &in, out) == 0);
	t1 = now();
	write_pagemap(set, c, n);
	CHECK(img_set_commit(set, pid) == 0);
	img_set_close(set);
	printf("dump:    %7.0f MB/s  (%.3f s; page writer incl. fsync %.3f s; %zu chunks)\n",
	       len / (now() - t0) / 1e6, now() - t0, t1 - t0, n);
	page_chunks_free(c, n);
	return now() - t0;
}

static void restore(const char *dir, uint8_t *mem, size_t len, int threads, int prefault)
{
	struct dest d = { mem, NULL, len };
	struct page_chunk *c;
	struct img_set *set;
	size_t n;
	double t0, t1, t2;

	d.new_base = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | (prefault ? MAP_POPULATE : 0), -1, 0);
	CHECK(d.new_base != MAP_FAILED);
	if (getenv("BENCH_THP")) /* destination in transparent huge pages */
		madvise(d.new_base, len, MADV_HUGEPAGE);
	if (getenv("BENCH_DROP_CACHES")) { /* restore from the disk, not the page cache */
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
		CHECK(fd >= 0 && write(fd, "3", 1) == 1);
		close(fd);
	}
	t0 = now();
	CHECK(img_set_open(dir, &set) == 0);
	t1 = now();
	c = read_pagemap(set, &n);
	CHECK(page_reader_load(set, "pages-1.img", c, n, threads, dest_of, &d) == 0);
	t2 = now();
	img_set_close(set);
	printf("restore: %7.0f MB/s  (%.3f s: open+verify %.3f s, load %.3f s = %.0f MB/s)%s\n",
	       len / (t2 - t0) / 1e6, t2 - t0, t1 - t0, t2 - t1, len / (t2 - t1) / 1e6,
	       prefault ? "  [destination pre-faulted]" : "  [fresh destination]");
	CHECK(memcmp(d.new_base, mem, len) == 0);
	munmap(d.new_base, len);
	free(c);
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 1024) << 20;
	const char *dir = argc > 2 ? argv[2] : "/tmp/ckpt-bench";
	int threads = argc > 3 ? atoi(argv[3]) : 0;
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t out;
	int status;
	pid_t pid;

	CHECK(mem != MAP_FAILED);
	fill(mem, len);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!getenv("BENCH_SHARED"))
			fill(mem, len); /* the child's own pages, as in any process */
		raise(SIGSTOP);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
	printf("%zu MiB, half compressible, half random, threads %d\n", len >> 20, threads);
	/* BENCH_ROUNDS=1: one dump, no restore (for a profiler) */
	int rounds = getenv("BENCH_ROUNDS") ? atoi(getenv("BENCH_ROUNDS")) : 3;
	for (int round = 0; round < rounds; round++) {
		if (round == 2)
			printf("(same directory again: the page cache of the old file is reused)\n");
		if (round == 1)
			remove_tree(dir);
		dump(dir, pid, mem, len, threads, &out);
	}
	printf("image:   %.1f%% of the memory (%llu bytes)\n", 100.0 * out / len,
	       (unsigned long long)out);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int round = 0; round < 2 && rounds > 1; round++) {
		restore(dir, mem, len, threads, 0);
		restore(dir, mem, len, threads, 1);
	}
	remove_tree(dir);
	return 0;
}
