/*
 * limits: what this machine allows a dump and a restore at best, to set
 * bench/criu-compare's and bench/run's figures beside (issue 13):
 *
 *   limits MIB DIR
 *
 *   memcpy      MB/s copying MIB MiB already faulted in (the best of 3)
 *   fresh pages MB/s touching MIB MiB of new anonymous memory, one write
 *               per page (what a restore pays for memory it fills; this VM
 *               hands freed memory back to its host, so it is slow)
 *   disk write  MB/s writing MIB MiB to DIR/limits.tmp and fsync
 *   disk read   MB/s reading it back with the page cache dropped first
 *               (root: /proc/sys/vm/drop_caches; else cached, said so)
 *   lz4         MB/s compressing and decompressing memhog's mix (1 MiB
 *               runs, half text-like, half random) with LZ4_compress_default
 *               in 64 KiB blocks, one thread
 *
 * MB = 10^6 bytes.  One line per figure, "name: value MB/s".
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1u << 20)
#define PAGE 4096u
#define LZ4_BLOCK (64u << 10)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *what, size_t bytes, double secs, const char *note)
{
	printf("%s: %.0f MB/s%s\n", what, (double)bytes / 1e6 / secs, note);
}

static void *fresh(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("limits: mmap");
		exit(1);
	}
	return p;
}

/* memhog's mix: 1 MiB runs of 64-byte lines drawn from 16 (text-like,
 * which lz4 shrinks to a few percent) and of random bytes, alternating. */
static void fill(unsigned char *p, size_t len)
{
	char lines[16][64];
	uint64_t x = 42;
	for (int i = 0; i < 16; i++) {
		snprintf(lines[i], sizeof(lines[i]), "rank %02d step %06d residual %.6e %-8s", i,
			 i * 1237, 1.0 / (i + 3), i % 2 ? "ok" : "retry");
		memset(lines[i] + strlen(lines[i]), ' ', sizeof(lines[i]) - strlen(lines[i]));
		lines[i][63] = '\n';
	}
	for (size_t off = 0; off + 64 <= len; off += 64) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if ((off / MIB) % 2)
			for (int k = 0; k < 64; k += 8)
				memcpy(p + off + k, &x, 8), x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		else
			memcpy(p + off, lines[x % 16], 64);
	}
}

static void bench_memory(size_t len)
{
	double t = now();
	unsigned char *a = fresh(len);
	for (size_t i = 0; i < len; i += PAGE)
		a[i] = 1;
	say("fresh pages", len, now() - t, "");
	unsigned char *b = fresh(len);
	memset(b, 0, len);
	double best = 1e9;
	for (int r = 0; r < 3; r++) {
		t = now();
		memcpy(b, a, len);
		double d = now() - t;
		best = d < best ? d : best;
	}
	say("memcpy", len, best, "");
	munmap(a, len);
	munmap(b, len);
}

static int drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, "3", 1) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int bench_disk(const unsigned char *data, size_t len, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/limits.tmp", dir);
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "limits: %s: %s\n", path, strerror(errno));
		return 1;
	}
	double t = now();
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off < 8 * MIB ? len - off : 8 * MIB);
		if (n <= 0) {
			perror("limits: write");
			return 1;
		}
		off += (size_t)n;
	}
	fsync(fd);
	say("disk write+fsync", len, now() - t, "");
	sync();
	int cold = drop_caches();
	unsigned char *back = fresh(len);
	for (size_t i = 0; i < len; i += PAGE)
		back[i] = 0;
	t = now();
	for (size_t off = 0; off < len;) {
		ssize_t n = pread(fd, back + off, len - off, (off_t)off);
		if (n <= 0) {
			perror("limits: read");
			return 1;
		}
		off += (size_t)n;
	}
	say("disk read", len, now() - t, cold ? " (page cache dropped)" : " (cached: not root)");
	close(fd);
	unlink(path);
	munmap(back, len);
	return 0;
}

static void bench_lz4(const unsigned char *data, size_t len)
{
	int bound = LZ4_compressBound((int)LZ4_BLOCK);
	size_t nblocks = len / LZ4_BLOCK;
	char *out = malloc((size_t)bound * nblocks);
	int *sizes = calloc(nblocks, sizeof(*sizes));
	unsigned char *back = fresh(len);
	if (!out || !sizes) {
		perror("limits: malloc");
		exit(1);
	}
	memset(back, 0, len);
	double t = now();
	size_t stored = 0;
	for (size_t b = 0; b < nblocks; b++) {
		sizes[b] = LZ4_compress_default((const char *)data + b * LZ4_BLOCK,
						out + b * (size_t)bound, (int)LZ4_BLOCK, bound);
		stored += (size_t)sizes[b];
	}
	double c = now() - t;
	t = now();
	for (size_t b = 0; b < nblocks; b++)
		LZ4_decompress_safe(out + b * (size_t)bound, (char *)back + b * LZ4_BLOCK, sizes[b],
				    (int)LZ4_BLOCK);
	double d = now() - t;
	char note[64];
	snprintf(note, sizeof(note), " (to %.0f%%)", 100.0 * (double)stored / (double)len);
	say("lz4 compress", nblocks * LZ4_BLOCK, c, note);
	say("lz4 decompress", nblocks * LZ4_BLOCK, d, "");
	if (memcmp(back, data, nblocks * LZ4_BLOCK))
		fprintf(stderr, "limits: lz4 round trip differs\n");
	free(out);
	free(sizes);
	munmap(back, len);
}

int main(int argc, char **argv)
{
	if (argc != 3 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: limits MIB DIR\n");
		return 2;
	}
	size_t len = (size_t)atol(argv[1]) * MIB;
	bench_memory(len);
	unsigned char *data = fresh(len);
	fill(data, len);
	bench_lz4(data, len);
	int ret = bench_disk(data, len, argv[2]);
	munmap(data, len);
	return ret;
}
