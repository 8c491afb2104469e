/*
 * cr_mem_fragmented: a fragmented heap survives, byte for byte, holes
 * included.
 *
 * The page writer stores the runs a worker takes at once (up to
 * PAGE_BATCH_PAGES pages in all) as one block that their chunks share;
 * this program makes every edge of that: 8192 pages in runs of 3 between
 * holes (2048 runs, many batches), some of them
 * with a page written with zeros in the middle (dropped: the pages after
 * it move up in the block), a run of 3000 pages (longer than a block,
 * with zero pages: 10 pages stored, then a stretch too long to share
 * their block), a
 * stretch of single pages between holes, a read-only range that splits
 * runs across two VMAs, and a private file mapping whose COWed pages
 * (zeros among them: those are kept, the file shows through a hole) lie
 * in short runs.  After the restore every page is regenerated and
 * compared, the checksum recomputed, and the holes of the heap must still
 * be holes (mincore: a restore that filled them would grow the process).
 */
#include "crlib.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096ull
#define RUNS_END 8192ull             /* runs of 3 between holes */
#define LONG_END (RUNS_END + 3000)   /* one run longer than a block */
#define NR_PAGES (LONG_END + 1024)   /* then single pages between holes */
#define RO_FIRST 4001ull             /* read-only pages: mid-run to mid-run */
#define RO_PAGES 300ull
#define FILE_PAGES 256ull

enum kind { UNTOUCHED, ZEROED, TEXT, RANDOM };

static unsigned char *area, *fmap;

static enum kind kind_of(uint64_t i)
{
	if (i < RUNS_END) {
		if (i % 4 == 0)
			return UNTOUCHED;
		if (i % 4 == 3 && (i / 4) % 5 == 0)
			return ZEROED;
		return i % 4 == 1 ? TEXT : RANDOM;
	}
	if (i < LONG_END)
		return i == RUNS_END + 1034 || i == RUNS_END + 1500 ? ZEROED
		       : i % 7 < 3				     ? TEXT
								     : RANDOM;
	return i % 2 ? UNTOUCHED : i % 6 == 0 ? TEXT : RANDOM;
}

static void make_page(uint64_t *p, uint64_t i, enum kind k)
{
	static const char line[] = "fragmented heap, page ";
	uint64_t s = i * 0x9e3779b97f4a7c15ull + 77;

	for (uint64_t n = 0; n < PAGE / 8; n++) {
		if (k == RANDOM)
			p[n] = xorshift64(&s);
		else if (k == TEXT)
			memcpy(&p[n], line + (n + i) % (sizeof(line) - 8), 8);
		else
			p[n] = 0;
	}
}

/* File page i: the file's bytes, or the private copy written over them
 * (every third page; a zero page every sixth). */
static void file_page(uint64_t *p, uint64_t i, int cowed)
{
	uint64_t s = i + 991;

	for (uint64_t n = 0; n < PAGE / 8; n++)
		p[n] = !cowed ? 0xababababababababull : i % 6 == 0 ? 0 : xorshift64(&s);
}

static uint64_t checksum(void)
{
	uint64_t h = HASH64_INIT;

	for (uint64_t i = 0; i < NR_PAGES; i++)
		if (kind_of(i) != UNTOUCHED)
			h = hash64(h, area + i * PAGE, PAGE);
	return hash64(h, fmap, FILE_PAGES * PAGE);
}

static void setup_file(void)
{
	static uint64_t page[PAGE / 8];
	char path[PATH_MAX];
	int fd;

	test_path(path, "mapped");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_SYS(fd >= 0, "create %s", path);
	file_page(page, 0, 0);
	for (uint64_t i = 0; i < FILE_PAGES; i++)
		CHECK_SYS(write_full(fd, page, PAGE) == (ssize_t)PAGE, "write %s", path);
	fmap = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(fmap != MAP_FAILED, "mmap %s", path);
	close(fd);
	for (uint64_t i = 0; i < FILE_PAGES; i += 3)
		file_page((uint64_t *)(fmap + i * PAGE), i, 1);
}

static void verify(void)
{
	static uint64_t want[PAGE / 8];
	static unsigned char in_core[NR_PAGES];
	uint64_t bad = 0, first = 0, filled = 0;

	CHECK_SYS(!mincore(area, NR_PAGES * PAGE, in_core), "mincore");
	for (uint64_t i = 0; i < NR_PAGES; i++)
		filled += kind_of(i) == UNTOUCHED && (in_core[i] & 1);
	CHECK(!filled, "%" PRIu64 " holes of the heap are filled after the restore", filled);
	for (uint64_t i = 0; i < NR_PAGES; i++) {
		make_page(want, i, kind_of(i));
		if (memcmp(want, area + i * PAGE, PAGE) && !bad++)
			first = i;
	}
	CHECK(!bad, "%" PRIu64 " heap pages differ, first: page %" PRIu64 " (kind %d)", bad, first,
	      kind_of(first));
	for (uint64_t i = 0; i < FILE_PAGES; i++) {
		file_page(want, i, i % 3 == 0);
		if (memcmp(want, fmap + i * PAGE, PAGE) && !bad++)
			first = i;
	}
	CHECK(!bad, "%" PRIu64 " file pages differ, first: page %" PRIu64, bad, first);
}

int main(void)
{
	uint64_t sum, now;

	test_init();
	area = mmap(NULL, NR_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CHECK_SYS(area != MAP_FAILED, "mmap");
	/* a huge page would fill the holes around what it backs */
	CHECK_SYS(!madvise(area, NR_PAGES * PAGE, MADV_NOHUGEPAGE), "madvise");
	for (uint64_t i = 0; i < NR_PAGES; i++)
		if (kind_of(i) != UNTOUCHED)
			make_page((uint64_t *)(area + i * PAGE), i, kind_of(i));
	CHECK_SYS(!mprotect(area + RO_FIRST * PAGE, RO_PAGES * PAGE, PROT_READ), "mprotect");
	setup_file();
	sum = checksum();
	test_ready();
	test_wait_check();

	verify();
	now = checksum();
	CHECK(now == sum, "checksum %" PRIx64 ", was %" PRIx64, now, sum);
	printf("%llu pages verified, checksum %" PRIx64 "\n", NR_PAGES, sum);
	pass();
}
