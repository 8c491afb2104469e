/*
 * cr_files: regular files come back at their offsets, with their flags.
 *
 *   fd_rw:  data.bin O_RDWR at offset 4321, and fd_dup = dup(fd_rw), which
 *           shares that offset (one open file description)
 *   fd_ro:  data.bin again, O_RDONLY | O_NONBLOCK, its own offset 777
 *   fd_log: app.log O_WRONLY | O_APPEND | O_CLOEXEC
 * After the restore: F_GETFL / F_GETFD as before, offsets as before, a read
 * through fd_rw moves fd_dup but not fd_ro, a write through fd_rw reaches
 * the file, and after someone else appended to app.log an append through
 * fd_log lands after it (O_APPEND kept, not just an offset).
 */
#include "crlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_LEN 10000

enum { RW, DUP, RO, LOG, NR_FDS };

static int fds[NR_FDS], fl[NR_FDS], fdfl[NR_FDS];
static char data_path[PATH_MAX], log_path[PATH_MAX];

static unsigned char pattern(size_t pos)
{
	return (unsigned char)(pos * 7 + (pos >> 8));
}

static void setup(void)
{
	unsigned char buf[DATA_LEN];
	int i;

	snprintf(data_path, sizeof(data_path), "%s/data.bin", test_dir());
	snprintf(log_path, sizeof(log_path), "%s/app.log", test_dir());
	for (i = 0; i < DATA_LEN; i++)
		buf[i] = pattern(i);
	fds[RW] = open(data_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fds[RW] >= 0, "open %s", data_path);
	CHECK_SYS(write_full(fds[RW], buf, DATA_LEN) == DATA_LEN, "write");
	CHECK_SYS(lseek(fds[RW], 4321, SEEK_SET) == 4321, "lseek");
	fds[DUP] = dup(fds[RW]);
	fds[RO] = open(data_path, O_RDONLY | O_NONBLOCK);
	CHECK_SYS(fds[DUP] >= 0 && fds[RO] >= 0, "dup/open");
	CHECK_SYS(lseek(fds[RO], 777, SEEK_SET) == 777, "lseek");
	fds[LOG] = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK_SYS(fds[LOG] >= 0, "open %s", log_path);
	CHECK_SYS(write_full(fds[LOG], "before\n", 7) == 7, "write log");
	for (i = 0; i < NR_FDS; i++) {
		fl[i] = fcntl(fds[i], F_GETFL);
		fdfl[i] = fcntl(fds[i], F_GETFD);
	}
}

static void check_read_at(int fd, off_t pos, size_t len)
{
	unsigned char buf[256];
	size_t i;

	CHECK_SYS(read_full(fd, buf, len) == (ssize_t)len, "read fd %d", fd);
	for (i = 0; i < len; i++)
		CHECK(buf[i] == pattern(pos + i), "fd %d: byte at %lld is 0x%x", fd,
		      (long long)(pos + i), buf[i]);
}

static void check_file(const char *path, const char *want)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read_full(fd, buf, sizeof(buf) - 1);

	CHECK_SYS(n >= 0, "reading %s", path);
	close(fd);
	buf[n] = 0;
	CHECK(!strcmp(buf, want), "%s holds \"%s\", expected \"%s\"", path, buf, want);
}

static void check(void)
{
	struct stat a, b;
	char got[3];
	int i, fd;

	for (i = 0; i < NR_FDS; i++) {
		CHECK(fcntl(fds[i], F_GETFL) == fl[i], "fd %d: F_GETFL 0%o, was 0%o", fds[i],
		      fcntl(fds[i], F_GETFL), fl[i]);
		CHECK(fcntl(fds[i], F_GETFD) == fdfl[i], "fd %d: F_GETFD %d, was %d", fds[i],
		      fcntl(fds[i], F_GETFD), fdfl[i]);
	}
	CHECK_SYS(!fstat(fds[RW], &a) && !stat(data_path, &b), "stat");
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "fd %d is not %s", fds[RW], data_path);
	CHECK(lseek(fds[RW], 0, SEEK_CUR) == 4321, "fd %d offset %lld, was 4321", fds[RW],
	      (long long)lseek(fds[RW], 0, SEEK_CUR));
	CHECK(lseek(fds[RO], 0, SEEK_CUR) == 777, "fd %d offset %lld, was 777", fds[RO],
	      (long long)lseek(fds[RO], 0, SEEK_CUR));
	check_read_at(fds[RW], 4321, 100);
	CHECK(lseek(fds[DUP], 0, SEEK_CUR) == 4421, "dup'ed fd %d does not share the offset",
	      fds[DUP]);
	check_read_at(fds[RO], 777, 10);
	CHECK(lseek(fds[RW], 0, SEEK_CUR) == 4421, "independent fds share an offset");
	CHECK_SYS(write_full(fds[RW], "XYZ", 3) == 3, "write fd %d", fds[RW]);
	fd = open(data_path, O_RDONLY);
	CHECK_SYS(fd >= 0 && pread(fd, got, 3, 4421) == 3, "pread %s", data_path);
	CHECK(!memcmp(got, "XYZ", 3), "a write through fd %d did not reach the file", fds[RW]);
	close(fd);
	fd = open(log_path, O_WRONLY | O_APPEND);
	CHECK_SYS(fd >= 0 && write_full(fd, "outside\n", 8) == 8, "append to %s", log_path);
	close(fd);
	CHECK_SYS(write_full(fds[LOG], "after\n", 6) == 6, "write log");
	check_file(log_path, "before\noutside\nafter\n");
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check();
	pass();
}
