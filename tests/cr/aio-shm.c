/*
 * cr_aio_*, cr_shmem_fd: AIO contexts and shared anonymous memory opened
 * as a file survive a checkpoint (libckpt/aio.c, shmem-fd.c).  Cases:
 *
 *   aio        four contexts: one never used; one with ten completed
 *              events waiting after 200 requests (tail wrapped once);
 *              one whose waiting events wrap around the ring's end; one
 *              full (as many events waiting as the kernel takes on one
 *              CPU: the restore must get them all in again).  After
 *              the restore each context id still works, the rings hold
 *              the same bytes (but the kernel's id), io_getevents returns
 *              the waiting events in order, new requests complete
 *   aio-scribbled  a ring whose header the program overwrote: refused
 *   aio-forked a child that inherited its parent's ring mapping (no
 *              context of its own: the kernel does not copy them): refused
 *   shmem-fd   a MAP_SHARED|MAP_ANONYMOUS object reached only by fds
 *              (unmapped, truncated to 5000 bytes, mode 0640, O_APPEND,
 *              an offset, a second description), and one mapped shared by
 *              the root and a child, through the fd shared at another
 *              offset and privately with a copied-on-write page: after the
 *              restore the fds, the mappings and the child share each
 *              object again, and the private copy keeps its page
 *   shmem-priv-closed  such an object mapped privately through an fd
 *              that was closed, by the root and a child (forked after), and
 *              mapped nowhere else: each keeps its copied pages and sees
 *              the object's in the others
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

/* ------------------------------ aio ---------------------------------- */

struct ring_header {
	unsigned id, nr, head, tail, magic, compat, incompat, header_length;
};

struct ctx_state {
	aio_context_t ctx;
	size_t len;
	uint8_t *copy; /* the ring's bytes at the dump */
	unsigned first, waiting; /* data of the first waiting event, how many */
};

static struct ctx_state rings[4];
static int null_fd;
static char byte;

static void submit(aio_context_t ctx, uint64_t data)
{
	struct iocb cb = { .aio_data = data, .aio_fildes = (uint32_t)null_fd,
			   .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_buf = (uint64_t)(uintptr_t)&byte,
			   .aio_nbytes = 1 };
	struct iocb *p = &cb;
	CHECK_SYS(syscall(SYS_io_submit, ctx, 1, &p) == 1, "io_submit %llu",
		  (unsigned long long)data);
}

static void reap(aio_context_t ctx, uint64_t data)
{
	struct io_event ev;
	CHECK_SYS(syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) == 1, "io_getevents");
	CHECK(ev.data == data && ev.res == 1, "event %llu res %lld, want %llu",
	      (unsigned long long)ev.data, (long long)ev.res, (unsigned long long)data);
}

/* Requests until the kernel takes no more (fewer than nr - 1: it hands
 * free slots to each CPU in batches); how many. */
static unsigned fill_up(aio_context_t ctx)
{
	struct iocb cb = { .aio_fildes = (uint32_t)null_fd, .aio_lio_opcode = IOCB_CMD_PWRITE,
			   .aio_buf = (uint64_t)(uintptr_t)&byte, .aio_nbytes = 1 };
	struct iocb *p = &cb;
	unsigned n = 0;
	for (;; n++) {
		cb.aio_data = n;
		if (syscall(SYS_io_submit, ctx, 1, &p) != 1)
			break;
	}
	CHECK(errno == EAGAIN && n > 0, "filling a ring: %u requests, then %s", n, strerror(errno));
	return n;
}

#define FULL 0xffffffffu /* total: as many as the kernel takes, all waiting */

/* `total` requests, all but the last `left` reaped at once. */
static void make_ring(struct ctx_state *r, unsigned nr_events, unsigned total, unsigned left)
{
	CHECK_SYS(syscall(SYS_io_setup, nr_events, &r->ctx) == 0, "io_setup");
	struct ring_header *h = (void *)r->ctx;
	unsigned from = 0;
	if (total == FULL)
		from = total = left = fill_up(r->ctx); /* submitted already */
	r->len = ((sizeof(*h) + (size_t)h->nr * sizeof(struct io_event)) + PAGE - 1) & ~(size_t)(PAGE - 1);
	for (unsigned i = from; i < total; i++) {
		submit(r->ctx, i);
		if (i < total - left)
			reap(r->ctx, i);
	}
	r->first = total - left;
	r->waiting = left;
	r->copy = malloc(r->len);
	CHECK(r->copy, "malloc");
	memcpy(r->copy, (void *)r->ctx, r->len);
}

static void aio_setup(void)
{
	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK_SYS(null_fd >= 0, "/dev/null");
	make_ring(&rings[0], 1, 0, 0);
	make_ring(&rings[1], 16, 200, 10);
	/* nr is 127 here with 16 requested: 130 requests put the waiting
	 * ones across the end of the ring */
	make_ring(&rings[2], 16, 130, 8);
	struct ring_header *h = (void *)rings[2].ctx;
	CHECK(h->tail < h->head, "ring 2 does not wrap: head %u tail %u nr %u", h->head, h->tail,
	      h->nr);
	/* slots the kernel handed to another CPU would be missing at the end */
	cpu_set_t was, one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CHECK_SYS(!sched_getaffinity(0, sizeof(was), &was) &&
			  !sched_setaffinity(0, sizeof(one), &one),
		  "affinity");
	make_ring(&rings[3], 1, FULL, 0);
	CHECK_SYS(!sched_setaffinity(0, sizeof(was), &was), "affinity back");
}

static void check_ring(struct ctx_state *r, int i)
{
	const struct ring_header *h = (void *)r->ctx, *was = (void *)r->copy;
	CHECK(h->nr == was->nr && h->head == was->head && h->tail == was->tail,
	      "ring %d: nr %u head %u tail %u, dumped %u %u %u", i, h->nr, h->head, h->tail, was->nr,
	      was->head, was->tail);
	CHECK(!memcmp((uint8_t *)r->ctx + 4, r->copy + 4, r->len - 4), "ring %d: bytes differ", i);
	for (unsigned k = 0; k < r->waiting; k++)
		reap(r->ctx, r->first + k);
	struct timespec zero = { 0, 0 };
	struct io_event ev;
	CHECK(syscall(SYS_io_getevents, r->ctx, 0, 1, &ev, &zero) == 0, "ring %d: more events", i);
	submit(r->ctx, 1000 + i);
	reap(r->ctx, 1000 + i);
	CHECK_SYS(syscall(SYS_io_destroy, r->ctx) == 0, "ring %d: io_destroy", i);
}

static void aio_check(void)
{
	for (int i = 0; i < 4; i++)
		check_ring(&rings[i], i);
}

static void aio_scribbled_setup(void)
{
	make_ring(&rings[0], 1, 0, 0);
	((struct ring_header *)rings[0].ctx)->magic = 0;
}

static void nothing(void)
{
}

static pid_t ring_child;

static void aio_forked_setup(void)
{
	make_ring(&rings[0], 1, 0, 0);
	ring_child = fork();
	CHECK_SYS(ring_child >= 0, "fork");
	if (!ring_child) {
		test_block_check();
		for (;;)
			pause();
	}
}

static void aio_forked_check(void)
{
	int st;
	kill(ring_child, SIGKILL);
	CHECK_SYS(waitpid(ring_child, &st, 0) == ring_child, "waitpid");
}

/* ---------------------------- shmem-fd ------------------------------- */

#define FD_ONLY 10 /* fds of the object no mapping holds */
#define FD_ONLY_RO 11
#define FD_ONLY_DUP 12
#define FD_MAPPED 13

static volatile int *shared, *through_fd, *priv;
static pid_t child;
static int fl_only;

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 13 + 7);
}

/* An fd on shared anonymous memory of `pages`, mapped at *map (or NULL
 * if it is unmapped again). */
static int anon_fd(size_t pages, volatile int **map, int keep)
{
	char path[128];
	unsigned char *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap");
	for (size_t i = 0; i < pages * PAGE; i++)
		m[i] = pat(i);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)(m + pages * PAGE));
	int fd = open(path, O_RDWR);
	CHECK_SYS(fd >= 0, "%s", path);
	if (!keep)
		munmap(m, pages * PAGE);
	*map = keep ? (volatile int *)m : NULL;
	return fd;
}

static void shmem_fd_setup(void)
{
	volatile int *none;
	char path[64];

	move_fd(anon_fd(3, &none, 0), FD_ONLY);
	CHECK_SYS(ftruncate(FD_ONLY, 5000) == 0, "ftruncate");
	CHECK_SYS(pwrite(FD_ONLY, "tail", 4, 4990) == 4, "pwrite");
	CHECK_SYS(fchmod(FD_ONLY, 0640) == 0, "fchmod");
	CHECK_SYS(fcntl(FD_ONLY, F_SETFL, O_APPEND | O_NONBLOCK) == 0, "F_SETFL");
	CHECK_SYS(lseek(FD_ONLY, 1234, SEEK_SET) == 1234, "lseek");
	fl_only = fcntl(FD_ONLY, F_GETFL);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", FD_ONLY);
	move_fd(open(path, O_RDONLY), FD_ONLY_RO);
	CHECK_SYS(lseek(FD_ONLY_RO, 77, SEEK_SET) == 77, "lseek");
	CHECK_SYS(dup2(FD_ONLY, FD_ONLY_DUP) == FD_ONLY_DUP, "dup2");

	move_fd(anon_fd(4, &shared, 1), FD_MAPPED);
	through_fd = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, FD_MAPPED, 2 * PAGE);
	priv = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, FD_MAPPED, PAGE);
	CHECK_SYS(through_fd != MAP_FAILED && priv != MAP_FAILED, "mmap through the fd");
	priv[0] = 4242; /* copied: object page 1 stays */
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child) {
		/* the root writes 2 through its fd after the restore */
		while (shared[0] != 2)
			usleep(1000);
		shared[1] = 3;
		_exit(0);
	}
}

static void check_bytes(int fd, size_t from, size_t to, const char *what)
{
	unsigned char buf[5000];
	CHECK_SYS(pread(fd, buf, to - from, (off_t)from) == (ssize_t)(to - from), "%s: pread", what);
	for (size_t i = from; i < to; i++)
		CHECK(buf[i - from] == pat(i), "%s: byte %zu is %u", what, i, buf[i - from]);
}

static void check_fd_only(void)
{
	struct stat st;
	char tail[4];
	CHECK_SYS(fstat(FD_ONLY, &st) == 0, "fstat");
	CHECK(st.st_size == 5000 && (st.st_mode & 07777) == 0640 && st.st_nlink == 0,
	      "size %lld mode %o nlink %lu", (long long)st.st_size, st.st_mode & 07777,
	      (unsigned long)st.st_nlink);
	CHECK(fcntl(FD_ONLY, F_GETFL) == fl_only, "flags %#x, want %#x", fcntl(FD_ONLY, F_GETFL),
	      fl_only);
	CHECK(lseek(FD_ONLY, 0, SEEK_CUR) == 1234 && lseek(FD_ONLY_RO, 0, SEEK_CUR) == 77,
	      "offsets %ld %ld", (long)lseek(FD_ONLY, 0, SEEK_CUR),
	      (long)lseek(FD_ONLY_RO, 0, SEEK_CUR));
	check_bytes(FD_ONLY_RO, 0, 4990, "unmapped object");
	CHECK(pread(FD_ONLY_RO, tail, 4, 4990) == 4 && !memcmp(tail, "tail", 4), "tail lost");
	/* one object, one description: an append shows through both */
	CHECK_SYS(write(FD_ONLY_DUP, "more", 4) == 4, "write");
	CHECK(lseek(FD_ONLY, 0, SEEK_CUR) == 5004, "the dup'd fd is another description");
	CHECK(pread(FD_ONLY_RO, tail, 4, 5000) == 4 && !memcmp(tail, "more", 4),
	      "the second description is another object");
}

static void check_mapped(void)
{
	check_bytes(FD_MAPPED, 0, PAGE, "mapped object");
	CHECK(priv[0] == 4242, "the private copy lost its page: %d", priv[0]);
	CHECK(through_fd[0] == (int)(pat(2 * PAGE) | pat(2 * PAGE + 1) << 8 |
				   pat(2 * PAGE + 2) << 16 | (unsigned)pat(2 * PAGE + 3) << 24),
	      "the fd's shared mapping is not the object");
	through_fd[PAGE / sizeof(int)] = 777; /* object page 3 */
	CHECK(shared[3 * PAGE / sizeof(int)] == 777, "the fd's mapping is not shared");
	CHECK(priv[2 * PAGE / sizeof(int)] == 777, "the private mapping does not see the object");
	int two = 2;
	CHECK_SYS(pwrite(FD_MAPPED, &two, sizeof(two), 0) == sizeof(two), "pwrite");
	for (int i = 0; i < 10000 && shared[1] != 3; i++)
		usleep(1000);
	CHECK(shared[1] == 3, "the child does not share the object with the fd");
	int st;
	CHECK_SYS(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st), "child");
}

static volatile int *go; /* shared: the root tells the child to check */

/* 0 when the pages are the object's (pattern) but those copied. */
static long priv_wrong(int copied_page1)
{
	const volatile unsigned char *b = (const volatile unsigned char *)priv;
	if (priv[0] != 1 || (copied_page1 && priv[PAGE / sizeof(int)] != 2))
		return 1;
	for (size_t i = sizeof(int); i < 3 * PAGE; i++)
		if (!(copied_page1 && i >= PAGE && i < PAGE + sizeof(int)) && b[i] != pat(i))
			return (long)i;
	return 0;
}

static void shmem_priv_closed_setup(void)
{
	volatile int *m;
	int fd = anon_fd(3, &m, 0);
	go = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(priv != MAP_FAILED && go != MAP_FAILED, "mmap");
	close(fd);
	priv[0] = 1; /* copied in the root, and in the child by the fork */
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child)
		return;
	priv[PAGE / sizeof(int)] = 2; /* copied in the child only */
	test_block_check();
	while (!*go)
		usleep(1000);
	_exit(priv_wrong(1) ? 1 : 0);
}

static void shmem_priv_closed_check(void)
{
	int st;
	long at = priv_wrong(0);
	CHECK(!at, "root: private mapping wrong at byte %ld", at);
	*go = 1;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "child: private mapping wrong (status %#x)", st);
}

static void shmem_fd_check(void)
{
	check_fd_only();
	check_mapped();
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "aio", aio_setup, aio_check },
		{ "aio-scribbled", aio_scribbled_setup, nothing },
		{ "aio-forked", aio_forked_setup, aio_forked_check },
		{ "shmem-fd", shmem_fd_setup, shmem_fd_check },
		{ "shmem-priv-closed", shmem_priv_closed_setup, shmem_priv_closed_check },
	};
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
