/*
 * cr_lazy_*: memory restored lazily (ckptctl restore --lazy, lazy-serve.c)
 * is the dumped memory, byte for byte, whatever the job does while the
 * page server still streams it.
 *
 *   lazymem plain MIB   MIB of anonymous memory with pages of several
 *                       kinds (untouched, zero, random, dropped...),
 *                       checked page by page and by checksum
 *   lazymem churn MIB   the same, but right after the restore, before
 *                       reading anything: fork a child that checks every
 *                       page (its own uffd, EVENT_FORK), mremap the last
 *                       quarter elsewhere (EVENT_REMAP: its pages follow),
 *                       munmap one 4 MiB range and map a new one there
 *                       (EVENT_UNMAP: never filled with old data), and
 *                       MADV_DONTNEED another (EVENT_REMOVE: reads zero)
 */
#include "crlib.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096ull
#define HOLE_OFF (8ull << 20)  /* munmapped and mapped again */
#define ZAP_OFF (16ull << 20)  /* MADV_DONTNEED */
#define RANGE (4ull << 20)

enum kind { UNTOUCHED, ZEROED, RANDOM, BYTE, HALF, DROPPED, NR_KINDS };

static unsigned char *area;
static uint64_t size, nr_pages;

static enum kind kind_of(uint64_t i)
{
	uint64_t s = i * 0x9e3779b97f4a7c15ull + 777;
	xorshift64(&s);
	return xorshift64(&s) % NR_KINDS;
}

static void make_page(uint64_t *p, uint64_t i, enum kind k)
{
	uint64_t s = i + 0x7654321ull;
	for (uint64_t n = 0; n < PAGE / 8; n++) {
		switch (k) {
		case RANDOM: p[n] = xorshift64(&s); break;
		case BYTE: p[n] = 0x0101010101010101ull * ((i & 0xff) | 1); break;
		case HALF: p[n] = n < PAGE / 16 ? xorshift64(&s) : 0; break;
		default: p[n] = 0; break;
		}
	}
}

static void fill(void)
{
	for (uint64_t i = 0; i < nr_pages; i++) {
		enum kind k = kind_of(i);
		if (k != UNTOUCHED)
			make_page((uint64_t *)(area + i * PAGE), i, k == DROPPED ? RANDOM : k);
	}
	for (uint64_t i = 0; i < nr_pages; i++)
		if (kind_of(i) == DROPPED && madvise(area + i * PAGE, PAGE, MADV_DONTNEED))
			fail_errno("madvise DONTNEED page %" PRIu64, i);
}

/* Page i as the job expects it now; NULL: not checked (mapped away). */
static const unsigned char *page_at(unsigned char *tail, uint64_t tail_from, uint64_t i)
{
	if (tail && i >= tail_from)
		return tail + (i - tail_from) * PAGE;
	return area + i * PAGE;
}

static int zeroed_now(uint64_t i, int churned)
{
	uint64_t off = i * PAGE;
	return churned && ((off >= HOLE_OFF && off < HOLE_OFF + RANGE) ||
			   (off >= ZAP_OFF && off < ZAP_OFF + RANGE));
}

static void verify(unsigned char *tail, uint64_t tail_from, int churned, const char *who)
{
	static uint64_t want[PAGE / 8];
	uint64_t bad = 0, first = 0;

	for (uint64_t i = 0; i < nr_pages; i++) {
		make_page(want, i, zeroed_now(i, churned) ? ZEROED : kind_of(i));
		if (memcmp(want, page_at(tail, tail_from, i), PAGE) && !bad++)
			first = i;
	}
	CHECK(!bad, "%s: %" PRIu64 " pages differ, first: page %" PRIu64 " (kind %d)", who, bad,
	      first, kind_of(first));
}

static uint64_t checksum(void)
{
	uint64_t h = HASH64_INIT;
	for (uint64_t i = 0; i < nr_pages; i++)
		h = hash64(h, area + i * PAGE, PAGE);
	return h;
}

/* Right after the restore: fork, mremap, munmap + mmap, DONTNEED. */
static void churn(unsigned char **tail, uint64_t *tail_from)
{
	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		verify(NULL, 0, 0, "forked child");
		_exit(0);
	}
	*tail_from = nr_pages * 3 / 4;
	uint64_t len = size - *tail_from * PAGE;
	void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(to != MAP_FAILED, "mmap target");
	*tail = mremap(area + *tail_from * PAGE, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	CHECK_SYS(*tail != MAP_FAILED, "mremap");
	CHECK_SYS(!munmap(area + HOLE_OFF, RANGE), "munmap");
	CHECK_SYS(mmap(area + HOLE_OFF, RANGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == area + HOLE_OFF, "mmap");
	CHECK_SYS(!madvise(area + ZAP_OFF, RANGE, MADV_DONTNEED), "madvise");
	int st;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "forked child failed: status 0x%x", st);
}

int main(int argc, char **argv)
{
	CHECK(argc == 1 || argc == 3, "usage: lazymem [plain|churn MIB]");
	int churned = argc == 3 && !strcmp(argv[1], "churn");
	size = (argc == 3 ? strtoull(argv[2], NULL, 10) : 64) << 20;
	CHECK(size >= 64ull << 20, "at least 64 MiB");
	nr_pages = size / PAGE;
	unsigned char *tail = NULL;
	uint64_t tail_from = 0;

	test_init();
	area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(area != MAP_FAILED, "mmap");
	fill();
	uint64_t sum = checksum();
	test_ready();
	test_wait_check();

	if (churned)
		churn(&tail, &tail_from);
	verify(tail, tail_from, churned, "restored process");
	if (!churned)
		CHECK(checksum() == sum, "checksum changed");
	area[0] ^= 1;
	printf("%" PRIu64 " MiB verified\n", size >> 20);
	pass();
}
