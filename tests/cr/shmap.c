/*
 * cr_shmap: a MAP_SHARED file mapping stays shared with the file.
 *
 * shared.bin (1 MiB) is mapped twice, MAP_SHARED: `whole` (all of it) and
 * `part` (128 KiB from offset 64 KiB), and the fd is closed.  Before the
 * dump, half of the pages are written through the mapping.  After the
 * restore: those bytes are in the mapping and in the file (pread through a
 * new fd); a write through the mapping reaches the file, a pwrite reaches
 * the mapping, and `whole` and `part` still alias the same page cache (a
 * private copy would break each of these).  A third mapping, read-only
 * from the same read-write fd, can still be made writable (mprotect).
 */
#include "crlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LEN (1 << 20)
#define PART_OFF (64 << 10)
#define PART_LEN (128 << 10)
#define PAGE 4096

static char path[PATH_MAX];
static unsigned char *whole, *part, *ro;

static unsigned char pattern(size_t pos, int gen)
{
	return (unsigned char)(pos * 13 + (pos >> 12) + gen * 101);
}

static void setup(void)
{
	int fd;
	size_t i;

	snprintf(path, sizeof(path), "%s/shared.bin", test_dir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0 && !ftruncate(fd, LEN), "creating %s", path);
	whole = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	part = mmap(NULL, PART_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PART_OFF);
	/* read-only for now, from a read-write fd: it may be made writable */
	ro = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK_SYS(whole != MAP_FAILED && part != MAP_FAILED && ro != MAP_FAILED, "mmap %s", path);
	close(fd);
	/* even pages written before the dump, odd pages left as holes */
	for (i = 0; i < LEN; i++)
		if ((i / PAGE) % 2 == 0)
			whole[i] = pattern(i, 1);
}

static int open_file(void)
{
	int fd = open(path, O_RDWR);

	CHECK_SYS(fd >= 0, "open %s", path);
	return fd;
}

static void check_old_data(void)
{
	static unsigned char buf[LEN];
	int fd = open_file();
	size_t i;

	CHECK_SYS(pread(fd, buf, LEN, 0) == LEN, "pread %s", path);
	close(fd);
	for (i = 0; i < LEN; i++) {
		unsigned char want = (i / PAGE) % 2 == 0 ? pattern(i, 1) : 0;
		CHECK(whole[i] == want, "mapping byte %zu is 0x%x, expected 0x%x", i, whole[i],
		      want);
		CHECK(buf[i] == want, "file byte %zu is 0x%x, expected 0x%x", i, buf[i], want);
	}
}

static void check_sharing(void)
{
	unsigned char b = 0;
	int fd = open_file();
	size_t i;

	for (i = 0; i < LEN; i += 999)
		whole[i] = pattern(i, 2);
	for (i = 0; i < LEN; i += 999) {
		CHECK_SYS(pread(fd, &b, 1, i) == 1, "pread");
		CHECK(b == pattern(i, 2), "a store to the mapping at %zu did not reach the file", i);
	}
	b = 0x77;
	CHECK_SYS(pwrite(fd, &b, 1, 12345) == 1, "pwrite");
	CHECK(whole[12345] == 0x77, "a pwrite did not reach the mapping");
	close(fd);
	part[100] = 0x33;
	CHECK(whole[PART_OFF + 100] == 0x33, "the two mappings no longer alias");
	whole[PART_OFF + 200] = 0x44;
	CHECK(part[200] == 0x44, "the two mappings no longer alias");
	CHECK_SYS(!mprotect(ro, PAGE, PROT_READ | PROT_WRITE),
		  "mprotect PROT_WRITE of a read-only mapping of a read-write fd");
	ro[7] = 0x55;
	CHECK(whole[7] == 0x55, "the mapping made writable does not reach the file");
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check_old_data();
	check_sharing();
	pass();
}
