/*
 * cr_scratch_files: the job's files on node-local scratch are kept with
 * the set.  In $CR_DIR (below /tmp) the program makes sess/seg (a sparse
 * file mapped shared, mode 0640), sess/open (held open at an offset, an
 * old mtime), sess/fifo (a FIFO held open), and /dev/shm/cr-scratch-PID
 * (POSIX shm, mapped shared, fd closed).  cr-run changes sess/seg in place
 * after the dump, size and mtime kept (--after-dump scribble), or removes
 * the whole of sess/ (rmtree, as on another node): the restored program
 * must find every file exactly as it was at the dump, its mappings and
 * fds on the files at those paths.
 */
#include "crlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_LEN (256 * 1024)
#define OLD_MTIME 1500000000

static char seg_path[PATH_MAX], open_path[PATH_MAX], fifo_path[PATH_MAX], shm_name[64];

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

static void check_fill(const unsigned char *p, size_t len, unsigned seed, const char *what)
{
	for (size_t i = 0; i < len; i++)
		CHECK(p[i] == (unsigned char)(i * 7 + seed), "%s: byte %zu is 0x%02x", what, i, p[i]);
}

static unsigned char *map_file(const char *path, int flags, size_t len)
{
	int fd = open(path, flags, 0600);
	CHECK_SYS(fd >= 0 && !ftruncate(fd, (off_t)len), "creating %s", path);
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap %s", path);
	close(fd);
	return m;
}

/* The mapping and the file at the path are one: a write shows through. */
static void check_same(unsigned char *m, const char *path)
{
	unsigned char b = 0;
	m[100] ^= 0xff;
	int fd = open(path, O_RDONLY);
	CHECK_SYS(fd >= 0 && pread(fd, &b, 1, 100) == 1, "reading %s", path);
	close(fd);
	CHECK(b == m[100], "%s: not the file the mapping shows", path);
	m[100] ^= 0xff;
}

int main(void)
{
	char dir[PATH_MAX - 16], buf[16] = { 0 };
	struct stat st;

	test_init();
	snprintf(dir, sizeof(dir), "%s/sess", test_dir());
	snprintf(seg_path, sizeof(seg_path), "%s/seg", dir);
	snprintf(open_path, sizeof(open_path), "%s/open", dir);
	snprintf(fifo_path, sizeof(fifo_path), "%s/fifo", dir);
	snprintf(shm_name, sizeof(shm_name), "/dev/shm/cr-scratch-%d", getpid());
	CHECK_SYS(!mkdir(dir, 0750) && !chmod(dir, 0750), "mkdir %s", dir);

	unsigned char *seg = map_file(seg_path, O_RDWR | O_CREAT | O_TRUNC, SEG_LEN);
	fill(seg, 4096, 1); /* the first page and the last: a hole between */
	fill(seg + SEG_LEN - 4096, 4096, 2);
	CHECK_SYS(!chmod(seg_path, 0640), "chmod");
	unsigned char *shm = map_file(shm_name, O_RDWR | O_CREAT | O_TRUNC, 8192);
	fill(shm, 8192, 3);

	int ofd = open(open_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(ofd >= 0 && write_full(ofd, "hello world", 11) == 11, "writing %s", open_path);
	CHECK_SYS(lseek(ofd, 6, SEEK_SET) == 6, "lseek");
	struct timespec old[2] = { { OLD_MTIME, 0 }, { OLD_MTIME, 123 } };
	CHECK_SYS(!futimens(ofd, old), "futimens");
	CHECK_SYS(!mkfifo(fifo_path, 0620) && !chmod(fifo_path, 0620), "mkfifo");
	int ffd = open(fifo_path, O_RDWR);
	CHECK_SYS(ffd >= 0, "open fifo");

	test_ready();
	test_wait_check();

	check_fill(seg, 4096, 1, "sess/seg first page");
	check_fill(seg + SEG_LEN - 4096, 4096, 2, "sess/seg last page");
	for (size_t i = 4096; i < SEG_LEN - 4096; i++)
		CHECK(!seg[i], "sess/seg: the hole has 0x%02x at %zu", seg[i], i);
	check_same(seg, seg_path);
	check_fill(shm, 8192, 3, shm_name);
	check_same(shm, shm_name);
	CHECK_SYS(!stat(seg_path, &st), "stat");
	CHECK((st.st_mode & 07777) == 0640 && st.st_size == SEG_LEN, "sess/seg: mode %o size %lld",
	      st.st_mode & 07777, (long long)st.st_size);
	CHECK_SYS(!stat(dir, &st), "stat");
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "sess: mode %o",
	      st.st_mode & 07777);
	CHECK_SYS(!fstat(ofd, &st), "fstat");
	CHECK(st.st_mtim.tv_sec == OLD_MTIME && st.st_mtim.tv_nsec == 123, "sess/open: mtime %lld",
	      (long long)st.st_mtim.tv_sec);
	CHECK(read_full(ofd, buf, 5) == 5 && !strcmp(buf, "world"), "sess/open: read \"%s\"", buf);
	CHECK_SYS(!stat(fifo_path, &st) && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0620,
		  "sess/fifo");
	CHECK_SYS(write(ffd, "x", 1) == 1 && read(ffd, buf, 1) == 1 && buf[0] == 'x', "fifo I/O");
	unlink(shm_name);
	pass();
}
