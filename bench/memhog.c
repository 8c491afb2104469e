/*
 * memhog: the bench workload -- a process holding N MiB worth dumping.
 *
 *   memhog MIB DIR [blocks|pages]
 *
 * blocks (the default) fills MIB MiB of anonymous memory, alternating 1 MiB blocks of two
 * kinds: text-like (64-byte log lines drawn from a small vocabulary, which
 * lz4 shrinks to a few percent) and random (which it cannot shrink at
 * all).  So half the memory is compressible, half is not, and no page is
 * zero (zero pages would become holes in the image and skew the bench).
 * pages is a fragmented heap: in every 4 pages one is never touched, one
 * is text-like and two are random, so 3/4 of MIB is memory to dump in
 * runs of 3 pages.
 *
 * Once every page is written it computes a checksum of the whole area and
 * writes "PID CHECKSUM" to DIR/ready, then idles.  On SIGUSR1 it checksums
 * the memory again and writes "ok CHECKSUM" or "bad GOT WANT" to DIR/check
 * (atomically, via a rename), which is how bench/run proves that a
 * restored memhog got its memory back byte for byte.
 *
 * On SIGUSR2 it rewrites 5% of its pages (picked at random, new random
 * contents: what an incremental dump must store), takes the new checksum
 * as the one to check against and writes "PID CHECKSUM PAGES" to
 * DIR/dirtied: the workload of incremental dumps (bench/storage,
 * tests/sets).
 *
 * busy (bench/frozen): once ready, instead of idling, it loops reading
 * the clock and writing a byte of the next page (so that it writes its
 * memory all the while), and keeps the longest gap between two clock
 * reads: the time it was kept from running, frozen by a dump.  SIGUSR1
 * then writes "GAP_NS" to DIR/gap (the longest gap since the last one)
 * and starts over; no checksum.  SIGUSR2 there opens (or, the next time,
 * closes) a netlink socket holding the kernel's answer to a request it
 * never reads, which no dump can bring back: the next dump is refused
 * (bench/frozen's refused mode), and it writes "open" or "closed" to
 * DIR/refusing.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define LINE 64
#define VOCABULARY 16

static volatile sig_atomic_t check_requested, dirty_requested;

static uint64_t splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_text(char *block, uint64_t *rng)
{
	static char lines[VOCABULARY][LINE];

	for (int i = 0; i < VOCABULARY; i++) {
		snprintf(lines[i], LINE, "rank %02d step %06d residual %.6e %-8s", i, i * 1237,
			 1.0 / (i + 3), i % 2 ? "ok" : "retry");
		memset(lines[i] + strlen(lines[i]), ' ', LINE - strlen(lines[i]));
		lines[i][LINE - 1] = '\n';
	}
	for (size_t off = 0; off < BLOCK; off += LINE)
		memcpy(block + off, lines[splitmix(rng) % VOCABULARY], LINE);
}

static void fill_random(char *block, uint64_t *rng)
{
	uint64_t *words = (uint64_t *)block;

	for (size_t i = 0; i < BLOCK / sizeof(*words); i++)
		words[i] = splitmix(rng);
}

/* Four independent lanes so the loop runs near memory bandwidth. */
static uint64_t checksum(const char *mem, size_t len)
{
	const uint64_t *w = (const uint64_t *)mem;
	uint64_t a = 1, b = 2, c = 3, d = 4;

	for (size_t i = 0; i < len / 8; i += 4) {
		a = (a ^ w[i]) * 0x100000001b3ULL;
		b = (b ^ w[i + 1]) * 0x100000001b3ULL;
		c = (c ^ w[i + 2]) * 0x100000001b3ULL;
		d = (d ^ w[i + 3]) * 0x100000001b3ULL;
	}
	return a ^ (b << 1) ^ (c << 2) ^ (d << 3);
}

/* Write text to DIR/NAME through a temp file and rename, so a reader never
 * sees half a line. */
static int write_file(const char *dir, const char *name, const char *text)
{
	char tmp[4096], path[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "memhog: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static uint64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		check_requested = 1;
	else
		dirty_requested = 1;
}

#define PAGE 4096
#define DIRTY_PERCENT 5

/* About DIRTY_PERCENT of the pages get new contents of their block's
 * kind: other log lines in a text block, other random words in a random
 * one (the memory stays half compressible). */
static size_t dirty_pages(char *mem, size_t len, uint64_t *rng)
{
	static char text[BLOCK];
	size_t n = 0;

	fill_text(text, rng);
	for (size_t off = 0; off < len; off += PAGE) {
		if (splitmix(rng) % 100 >= DIRTY_PERCENT)
			continue;
		if ((off / BLOCK) % 2 == 0) {
			memcpy(mem + off, text + splitmix(rng) % (BLOCK / PAGE) * PAGE, PAGE);
			mem[off + splitmix(rng) % PAGE] ^= 1; /* not a copy of another page */
		} else {
			uint64_t *w = (uint64_t *)(mem + off);
			for (size_t i = 0; i < PAGE / 8; i++)
				w[i] = splitmix(rng);
		}
		n++;
	}
	return n;
}

static void fill_blocks(char *mem, size_t len, uint64_t *rng)
{
	for (size_t off = 0; off < len; off += BLOCK) {
		if ((off / BLOCK) % 2 == 0)
			fill_text(mem + off, rng);
		else
			fill_random(mem + off, rng);
	}
}

/* A fragmented heap: in every 4 pages, one never touched (a hole in the
 * process's memory), one text-like, two random. */
static void fill_pages(char *mem, size_t len, uint64_t *rng)
{
	static char text[BLOCK], rnd[BLOCK];
	for (size_t off = 0; off < len; off += BLOCK) {
		fill_text(text, rng);
		fill_random(rnd, rng);
		for (size_t p = 0; p < BLOCK; p += 4 * PAGE) {
			memcpy(mem + off + p + PAGE, text + p, PAGE);
			memcpy(mem + off + p + 2 * PAGE, rnd + p, 2 * PAGE);
		}
	}
}

/* busy: see the top of the file.  Never returns. */
/* A netlink socket with the kernel's unread answer to RTM_GETLINK. */
static int unread_netlink(void)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd >= 0 && send(fd, &req, sizeof(req), 0) != sizeof(req)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void toggle_refusing(int *fd, const char *dir)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	} else {
		*fd = unread_netlink();
	}
	write_file(dir, "refusing", *fd >= 0 ? "open\n" : "closed\n");
}

static void busy_loop(char *mem, size_t len, const char *dir, const sigset_t *old)
{
	int refusing = -1;
	uint64_t last, max = 0;
	size_t off = 0;
	char text[64];

	sigprocmask(SIG_SETMASK, old, NULL);
	last = clock_ns();
	for (;;) {
		mem[off] ^= 1;
		off = (off + 4096) % len;
		uint64_t t = clock_ns();
		if (t - last > max)
			max = t - last;
		last = t;
		if (check_requested) {
			check_requested = 0;
			snprintf(text, sizeof(text), "%" PRIu64 "\n", max);
			write_file(dir, "gap", text);
			max = 0;
			last = clock_ns();
		}
		if (dirty_requested) {
			dirty_requested = 0;
			toggle_refusing(&refusing, dir);
			last = clock_ns();
		}
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t usr1, old;
	uint64_t rng = 42, want;
	size_t len;
	char *mem, text[128];

	int busy = argc == 5 && !strcmp(argv[4], "busy");
	if ((argc != 3 && argc != 4 && !busy) || atol(argv[1]) <= 0 ||
	    (argc >= 4 && strcmp(argv[3], "blocks") && strcmp(argv[3], "pages"))) {
		fprintf(stderr, "usage: memhog MIB DIR [blocks|pages [busy]]\n");
		return 2;
	}
	int by_page = argc >= 4 && !strcmp(argv[3], "pages");
	len = (size_t)atol(argv[1]) * BLOCK;
	/* Drop fds inherited from whoever started us (a pipe to a process
	 * outside the dumped tree would make the dump refuse it). */
	close_range(3, ~0U, 0);

	/* Block SIGUSR1 first: a request that arrives before we idle waits. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigaddset(&usr1, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "memhog: mmap %zu bytes: %s\n", len, strerror(errno));
		return 1;
	}
	if (by_page)
		fill_pages(mem, len, &rng);
	else
		fill_blocks(mem, len, &rng);
	want = checksum(mem, len);
	snprintf(text, sizeof(text), "%d %016" PRIx64 "\n", (int)getpid(), want);
	if (write_file(argv[2], "ready", text))
		return 1;
	if (busy)
		busy_loop(mem, len, argv[2], &old);

	for (;;) {
		while (!check_requested && !dirty_requested)
			sigsuspend(&old);
		if (dirty_requested) {
			dirty_requested = 0;
			size_t n = dirty_pages(mem, len, &rng);
			want = checksum(mem, len);
			snprintf(text, sizeof(text), "%d %016" PRIx64 " %zu\n", (int)getpid(), want, n);
			write_file(argv[2], "dirtied", text);
			continue;
		}
		check_requested = 0;
		uint64_t got = checksum(mem, len);
		if (got == want)
			snprintf(text, sizeof(text), "ok %016" PRIx64 "\n", got);
		else
			snprintf(text, sizeof(text), "bad %016" PRIx64 " %016" PRIx64 "\n", got,
				 want);
		write_file(argv[2], "check", text);
	}
}
