/*
 * cr_memory_1g: 1 GiB of anonymous memory survives, byte for byte.
 *
 * Every 4 KiB page gets one of several kinds of content, chosen by a hash
 * of its index: never touched (not present), written with zeros, random,
 * one repeated byte, indexed words, half random half zero, or random then
 * dropped with MADV_DONTNEED.  A range in the middle is made read-only (two
 * extra VMAs).  After the restore every page is regenerated and compared
 * (the first bad page is reported), the whole checksum is recomputed, the
 * read-only range must still be read-only and the rest writable.
 */
#include "crlib.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (1ull << 30)
#define PAGE 4096ull
#define NR_PAGES (SIZE / PAGE)
#define RO_OFF (512ull << 20)
#define RO_LEN (16ull << 20)

enum kind { UNTOUCHED, ZEROED, RANDOM, BYTE, WORDS, HALF, DROPPED, NR_KINDS };

static unsigned char *area;

static enum kind kind_of(uint64_t i)
{
	uint64_t s = i * 0x9e3779b97f4a7c15ull + 12345;

	xorshift64(&s);
	return xorshift64(&s) % NR_KINDS;
}

static void make_page(uint64_t *p, uint64_t i, enum kind k)
{
	uint64_t s = i + 0x1234567ull, n;

	for (n = 0; n < PAGE / 8; n++) {
		switch (k) {
		case RANDOM: p[n] = xorshift64(&s); break;
		case BYTE: p[n] = 0x0101010101010101ull * ((i & 0xff) | 1); break;
		case WORDS: p[n] = (i << 32) | n; break;
		case HALF: p[n] = n < PAGE / 16 ? xorshift64(&s) : 0; break;
		default: p[n] = 0; break;
		}
	}
}

static void fill(void)
{
	uint64_t i;

	for (i = 0; i < NR_PAGES; i++) {
		enum kind k = kind_of(i);
		if (k == UNTOUCHED)
			continue;
		make_page((uint64_t *)(area + i * PAGE), i, k == DROPPED ? RANDOM : k);
	}
	for (i = 0; i < NR_PAGES; i++)
		if (kind_of(i) == DROPPED && madvise(area + i * PAGE, PAGE, MADV_DONTNEED))
			fail_errno("madvise DONTNEED page %" PRIu64, i);
}

/* Checksum of every page but the untouched ones (reading those would map
 * the zero page). */
static uint64_t checksum(void)
{
	uint64_t h = HASH64_INIT, i;

	for (i = 0; i < NR_PAGES; i++)
		if (kind_of(i) != UNTOUCHED)
			h = hash64(h, area + i * PAGE, PAGE);
	return h;
}

static void verify_pages(void)
{
	static uint64_t want[PAGE / 8];
	uint64_t i, bad = 0, first = 0;

	for (i = 0; i < NR_PAGES; i++) {
		make_page(want, i, kind_of(i));
		if (memcmp(want, area + i * PAGE, PAGE)) {
			if (!bad++)
				first = i;
		}
	}
	CHECK(!bad, "%" PRIu64 " pages differ, first: page %" PRIu64 " (kind %d) at %p", bad,
	      first, kind_of(first), (void *)(area + first * PAGE));
}

/* The permissions of the mapping holding addr, from /proc/self/maps. */
static void perms_at(const void *addr, char perms[5])
{
	static char buf[1 << 16];
	unsigned long start, end;
	char *line;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_full(fd, buf, sizeof(buf) - 1);

	if (n < 0)
		fail_errno("reading /proc/self/maps");
	close(fd);
	buf[n] = 0;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) == 3 &&
		    (unsigned long)addr >= start && (unsigned long)addr < end)
			return;
	}
	fail("no mapping holds %p", addr);
}

int main(void)
{
	uint64_t sum, now;
	char perms[5];

	test_init();
	area = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	CHECK_SYS(area != MAP_FAILED, "mmap 1 GiB");
	fill();
	CHECK_SYS(!mprotect(area + RO_OFF, RO_LEN, PROT_READ), "mprotect");
	sum = checksum();
	test_ready();
	test_wait_check();

	perms_at(area + RO_OFF, perms);
	CHECK(!strcmp(perms, "r--p"), "read-only range is %s", perms);
	perms_at(area, perms);
	CHECK(!strcmp(perms, "rw-p"), "first range is %s", perms);
	perms_at(area + RO_OFF + RO_LEN, perms);
	CHECK(!strcmp(perms, "rw-p"), "last range is %s", perms);
	verify_pages();
	now = checksum();
	CHECK(now == sum, "checksum %" PRIx64 ", was %" PRIx64, now, sum);
	/* still writable (a read-only restore would kill us here) */
	area[0] ^= 1;
	area[SIZE - 1] ^= 1;
	printf("1 GiB verified, checksum %" PRIx64 "\n", sum);
	pass();
}
