/*
 * storage-bench: how fast the storage layer compresses and decompresses
 * page data, and how small an incremental set is.  bench/storage runs it.
 *
 *   storage-bench MIB DIR
 *
 * Fills MIB MiB of its own memory like memhog (1 MiB blocks, alternately
 * text-like and random: half compressible, no zero page), then with 1 and
 * 2 worker threads: writes it with the page writer into a set in DIR
 * (read, lz4, write, fsync: "compress") and reads it back into fresh
 * memory (read, crc, lz4 decompress: "decompress"), checking every byte;
 * the best of 2 runs each (the machine is shared).
 * Then it rewrites 5% of the pages (same kinds of content) and writes an
 * incremental set with the full one as parent.  MB = 10^6 bytes; the
 * rates count memory bytes, not stored bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"

#define BLOCK (1u << 20)
#define PAGE 4096u
#define LINE 64
#define RUNS 2

static uint64_t rng = 42;

static uint64_t splitmix(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_text(char *p, size_t len)
{
	char line[LINE];

	for (size_t off = 0; off < len; off += LINE) {
		unsigned i = splitmix() % 16;
		snprintf(line, sizeof(line), "rank %02u step %06u residual %.6e %-8s", i, i * 1237,
			 1.0 / (i + 3), i % 2 ? "ok" : "retry");
		memset(line + strlen(line), ' ', LINE - strlen(line));
		line[LINE - 1] = '\n';
		memcpy(p + off, line, LINE);
	}
}

static void fill_random(char *p, size_t len)
{
	for (size_t i = 0; i < len / 8; i++)
		((uint64_t *)p)[i] = splitmix();
}

static void fill(char *mem, size_t len)
{
	for (size_t off = 0; off < len; off += BLOCK)
		(off / BLOCK) % 2 ? fill_random(mem + off, BLOCK) : fill_text(mem + off, BLOCK);
}

static size_t dirty(char *mem, size_t len)
{
	size_t n = 0;

	for (size_t off = 0; off < len; off += PAGE) {
		if (splitmix() % 100 >= 5)
			continue;
		(off / BLOCK) % 2 ? fill_random(mem + off, PAGE) : fill_text(mem + off, PAGE);
		n++;
	}
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "storage-bench: %s: %s\n", what, strerror(-err));
	exit(1);
}

/* A set of `mem` in dir (incremental on `parent` if not NULL); its size. */
static uint64_t write_set(const char *dir, const char *parent, char *mem, size_t len,
			  int threads)
{
	struct img_set *set;
	struct page_writer *w;
	struct page_chunk *c;
	size_t nr;
	uint64_t in, out;
	int ret;

	if ((ret = img_set_create(dir, &set)))
		die(dir, ret);
	if (parent && (ret = img_set_use_parent(set, parent, NULL)))
		die("parent", ret);
	if ((ret = page_writer_open(set, "pages-1.img", getpid(), threads, &w)) ||
	    (ret = page_writer_add(w, (uintptr_t)mem, len / PAGE)) ||
	    (ret = page_writer_finish(w, &c, &nr, &in, &out)))
		die("page writer", ret);
	if ((ret = pagemap_write(set, "pagemap-1.img", c, nr)) || (ret = img_set_commit(set, 1)))
		die("commit", ret);
	page_chunks_free(c, nr);
	out = img_set_bytes(set);
	img_set_close(set);
	return out;
}

struct dest {
	char *from, *to;
};

static void *to_copy(void *ctx, uint64_t vaddr, size_t len)
{
	struct dest *d = ctx;

	(void)len;
	return d->to + (vaddr - (uintptr_t)d->from);
}

/* Seconds of the page reader alone; *verify: of img_set_open (the crc
 * check of every file, which a restore does first). */
static double read_set(const char *dir, char *mem, size_t len, int threads, double *verify)
{
	struct img_set *set;
	struct page_chunk *c;
	size_t nr;
	struct dest d = { mem, mmap(NULL, len, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) };
	double t0 = now(), t;
	int ret;

	if (d.to == MAP_FAILED)
		die("mmap", -errno);
	if ((ret = img_set_open(dir, &set)) ||
	    (ret = pagemap_read(set, "pagemap-1.img", 0, &c, &nr)))
		die("open", ret);
	*verify = now() - t0;
	t0 = now();
	if ((ret = page_reader_load(set, "pages-1.img", c, nr, threads, to_copy, &d)))
		die("page reader", ret);
	t = now() - t0;
	if (memcmp(d.to, mem, len))
		die("restored memory differs", -EBADMSG);
	page_chunks_free(c, nr);
	img_set_close(set);
	munmap(d.to, len);
	return t;
}

int main(int argc, char **argv)
{
	char full[4096], inc[4096];
	size_t len;
	char *mem;
	uint64_t bytes = 0;

	if (argc != 3 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: storage-bench MIB DIR\n");
		return 2;
	}
	len = (size_t)atol(argv[1]) * BLOCK;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap", -errno);
	fill(mem, len);
	snprintf(full, sizeof(full), "%s/full", argv[2]);
	snprintf(inc, sizeof(inc), "%s/incremental", argv[2]);
	printf("%zu MiB, half compressible, sets in %s\n", len >> 20, argv[2]);
	/* This machine is shared: the best of RUNS runs. */
	for (int threads = 1; threads <= 2; threads++) {
		double tw = 1e9, tr = 1e9, tv = 1e9;
		for (int run = 0; run < RUNS; run++) {
			double t0 = now(), v, r;
			bytes = write_set(full, NULL, mem, len, threads);
			tw = now() - t0 < tw ? now() - t0 : tw;
			r = read_set(full, mem, len, threads, &v);
			tr = r < tr ? r : tr;
			tv = v < tv ? v : tv;
		}
		printf("%d thread%s: compress %5.0f MB/s, decompress %5.0f MB/s (open + crc check "
		       "of the set before: %.2f s), ratio %.3f (%llu bytes stored)\n",
		       threads, threads > 1 ? "s" : " ", len / tw / 1e6, len / tr / 1e6, tv,
		       (double)bytes / len, (unsigned long long)bytes);
	}
	size_t n = dirty(mem, len);
	double t0 = now();
	uint64_t ib = write_set(inc, full, mem, len, 0);
	double ti = now() - t0;
	double v;
	read_set(inc, mem, len, 0, &v);
	printf("incremental after %zu pages (%.1f%%) changed: %llu bytes, %.1f%% of the full set "
	       "(written in %.2f s, restores identically)\n",
	       n, 100.0 * n * PAGE / len, (unsigned long long)ib, 100.0 * ib / bytes, ti);
	return 0;
}
