/*
 * cr_shmem_*: shared memory and the madvise/mlock state of memory survive
 * a checkpoint.  One program, one case per argument:
 *
 *   anon     a MAP_SHARED|MAP_ANONYMOUS area shared by the root and two
 *            children (pages written by one child only, which the root
 *            never touched), and a second one the root cut before the
 *            fork (its VMA starts 8 pages into the object)
 *   posix    a POSIX shm object (/dev/shm) mapped by the root and two
 *            children, one unlinked while they all still hold its fd, and
 *            one unlinked and closed, held by the mappings only
 *   sysv     System V: a segment with a key attached by the root and two
 *            children, one marked removed (IPC_RMID) while attached, one
 *            created and written but attached by nobody, and a semaphore
 *            set; run with `--helper cr-shmem --helper-arg janitor`, which
 *            removes them once the dump has read them (before it kills the
 *            tree), so that the restore must recreate them with their ids,
 *            keys and contents
 *   advice   MADV_DONTFORK, MADV_WIPEONFORK, MADV_HUGEPAGE,
 *            MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_SEQUENTIAL, MADV_RANDOM,
 *            MADV_MERGEABLE, mlock, mlock2(MLOCK_ONFAULT)
 *            on private memory and mlock on a shared file mapping, and
 *            prctl(PR_SET_THP_DISABLE)
 *   ipcns    the root in an IPC namespace of its own, with a segment: the
 *            dump is refused, naming the process
 *   guard    guard pages (MADV_GUARD_INSTALL, Linux 6.13) between written
 *            pages of a private anonymous and a private file mapping, and
 *            one more in a forked child: each still faults, each other
 *            page holds its data
 *   janitor  (the helper above, not a case)
 *
 * Sharing is checked both ways after the restore: the root raises
 * `phase` in the shared memory, each child sees it, checks the contents
 * and answers in its `ack` slot; a private copy in any process leaves the
 * root waiting in vain.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define NCHILD 2
#define ACK_MS 10000

struct sync {
	volatile int phase;
	volatile int ack[NCHILD];
};

static pid_t children[NCHILD];

static unsigned char pattern(size_t pos, int gen)
{
	return (unsigned char)(pos * 7 + (pos >> 12) * 3 + gen * 59 + 1);
}

static void fill(volatile unsigned char *p, size_t from, size_t to, int gen)
{
	for (size_t i = from; i < to; i++)
		p[i] = pattern(i, gen);
}

/* Index of the first wrong byte in [from, to), or -1. */
static long bad_byte(const volatile unsigned char *p, size_t from, size_t to, int gen)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != (gen ? pattern(i, gen) : 0))
			return (long)i;
	return -1;
}

static void expect(const volatile unsigned char *p, size_t from, size_t to, int gen,
		   const char *what)
{
	long i = bad_byte(p, from, to, gen);
	CHECK(i < 0, "%s: byte %ld is 0x%x, expected 0x%x", what, i, p[i],
	      gen ? pattern((size_t)i, gen) : 0);
}

/* ---- the sharing protocol ---- */

typedef int (*check_fn)(int child);

/* A child: wait (before and after the restore) for phase 1, check, answer. */
static _Noreturn void child_wait(struct sync *s, int idx, check_fn check)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	while (s->phase != 1)
		usleep(1000);
	int ok = check(idx);
	s->ack[idx] = ok ? 1 : 2;
	_exit(ok ? 0 : 1);
}

static void start_children(struct sync *s, void (*before)(int), check_fn check)
{
	for (int i = 0; i < NCHILD; i++) {
		children[i] = fork();
		CHECK_SYS(children[i] >= 0, "fork");
		if (!children[i]) {
			if (before)
				before(i);
			child_wait(s, i, check);
		}
	}
}

/* The root, after the restore: phase 1, every child answers and exits 0. */
static void run_protocol(struct sync *s)
{
	s->phase = 1;
	for (int i = 0; i < NCHILD; i++) {
		uint64_t end = now_ns() + ACK_MS * 1000000ull;
		while (!s->ack[i] && now_ns() < end)
			usleep(1000);
		CHECK(s->ack[i], "child %d never answered: the memory is no longer shared", i);
		CHECK(s->ack[i] == 1, "child %d found the shared memory wrong", i);
	}
	for (int i = 0; i < NCHILD; i++) {
		int status;
		CHECK_SYS(waitpid(children[i], &status, 0) == children[i], "waitpid");
		CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child %d failed", i);
	}
}

/* ---- anon ---- */

#define R_PAGES 64
#define Q_PAGES 32
#define Q_CUT 8

static unsigned char *r_area, *q_area; /* q_area: what is left after the cut */

static void anon_child_writes(int idx)
{
	if (idx == 0)
		fill(r_area, 21 * PAGE, 41 * PAGE, 2); /* the root never touches these */
	else
		fill(q_area, 0, (Q_PAGES - Q_CUT) * PAGE, 3);
}

static int anon_check(int idx)
{
	(void)idx;
	return bad_byte(r_area, PAGE, 21 * PAGE, 1) < 0 &&
	       bad_byte(r_area, 21 * PAGE, 41 * PAGE, 2) < 0 &&
	       bad_byte(r_area, 41 * PAGE, R_PAGES * PAGE, 0) < 0 &&
	       bad_byte(q_area, 0, (Q_PAGES - Q_CUT) * PAGE, 3) < 0;
}

static void anon_setup(void)
{
	int flags = MAP_SHARED | MAP_ANONYMOUS;
	r_area = mmap(NULL, R_PAGES * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);
	unsigned char *q = mmap(NULL, Q_PAGES * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);
	CHECK_SYS(r_area != MAP_FAILED && q != MAP_FAILED, "mmap");
	CHECK_SYS(!munmap(q, Q_CUT * PAGE), "munmap");
	q_area = q + Q_CUT * PAGE;
	fill(r_area, PAGE, 21 * PAGE, 1);
	start_children((struct sync *)r_area, anon_child_writes, anon_check);
	/* both children wrote before the dump */
	for (int i = 0; i < 5000 && (bad_byte(r_area, 40 * PAGE, 41 * PAGE, 2) >= 0 ||
				     bad_byte(q_area, 0, PAGE, 3) >= 0);
	     i++)
		usleep(1000);
}

static void anon_verify(void)
{
	char want[64];
	expect(r_area, PAGE, 21 * PAGE, 1, "area R, the root's pages");
	expect(r_area, 21 * PAGE, 41 * PAGE, 2, "area R, child 0's pages");
	expect(r_area, 41 * PAGE, R_PAGES * PAGE, 0, "area R, the untouched pages");
	expect(q_area, 0, (Q_PAGES - Q_CUT) * PAGE, 3, "area Q, child 1's pages");
	/* still shared anonymous memory, 8 pages into its object */
	char line[256];
	snprintf(want, sizeof(want), "%lx-", (unsigned long)q_area);
	const char *maps = snapshot_file("/proc/self/maps", 0), *at = strstr(maps, want);
	CHECK(at, "area Q is not in /proc/self/maps");
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
	CHECK(strstr(line, " rw-s 00008000 ") && strstr(line, "/dev/zero (deleted)"),
	      "area Q is not shared anonymous memory at offset 0x8000: %s", line);
	run_protocol((struct sync *)r_area);
}

/* ---- posix ---- */

#define P_LEN (256 * PAGE)
#define G_LEN (64 * PAGE) /* under the default --ghost-limit */
#define GHOST_FD 50

static char shm_name[64];
static unsigned char *p_area, *g_area, *u_area;
static char u_name[64];

static void posix_child_writes(int idx)
{
	fill(p_area, (size_t)(100 + idx * 50) * PAGE, (size_t)(150 + idx * 50) * PAGE, 4 + idx);
	fill(g_area, (size_t)(10 + idx * 10) * PAGE, (size_t)(20 + idx * 10) * PAGE, 6 + idx);
	fill(u_area, (size_t)(idx * 10) * PAGE, (size_t)(10 + idx * 10) * PAGE, 10 + idx);
}

static int posix_check(int idx)
{
	(void)idx;
	return bad_byte(p_area, PAGE, 100 * PAGE, 1) < 0 &&
	       bad_byte(p_area, 100 * PAGE, 150 * PAGE, 4) < 0 &&
	       bad_byte(p_area, 150 * PAGE, 200 * PAGE, 5) < 0 &&
	       bad_byte(g_area, 10 * PAGE, 20 * PAGE, 6) < 0 &&
	       bad_byte(g_area, 20 * PAGE, 30 * PAGE, 7) < 0 &&
	       bad_byte(u_area, 0, 10 * PAGE, 10) < 0 &&
	       bad_byte(u_area, 10 * PAGE, 20 * PAGE, 11) < 0;
}

static unsigned char *map_shm(int fd, size_t len)
{
	unsigned char *m;
	CHECK_SYS(!ftruncate(fd, (off_t)len), "ftruncate");
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap shm");
	return m;
}

static void posix_cleanup(void)
{
	shm_unlink(shm_name);
}

static void posix_setup(void)
{
	char ghost[64];
	snprintf(shm_name, sizeof(shm_name), "/cr-shmem-%d", getpid());
	snprintf(ghost, sizeof(ghost), "/cr-shmem-ghost-%d", getpid());
	snprintf(u_name, sizeof(u_name), "/cr-shmem-unlinked-%d", getpid());
	int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
	int gfd = shm_open(ghost, O_RDWR | O_CREAT | O_EXCL, 0600);
	int ufd = shm_open(u_name, O_RDWR | O_CREAT | O_EXCL, 0640);
	CHECK_SYS(fd >= 0 && gfd >= 0 && ufd >= 0, "shm_open");
	atexit(posix_cleanup);
	p_area = map_shm(fd, P_LEN);
	g_area = map_shm(gfd, G_LEN);
	/* the mapping reaches a page past the end of the file */
	CHECK_SYS(!ftruncate(ufd, 20 * PAGE + 100), "ftruncate");
	u_area = mmap(NULL, 22 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ufd, 0);
	CHECK_SYS(u_area != MAP_FAILED, "mmap");
	close(fd);
	close(ufd);
	CHECK_SYS(!shm_unlink(u_name), "shm_unlink");
	CHECK_SYS(dup2(gfd, GHOST_FD) == GHOST_FD, "dup2");
	close(gfd);
	CHECK_SYS(!shm_unlink(ghost), "shm_unlink");
	fill(p_area, PAGE, 100 * PAGE, 1);
	start_children((struct sync *)p_area, posix_child_writes, posix_check);
	for (int i = 0; i < 5000 && bad_byte(p_area, 199 * PAGE, 200 * PAGE, 5) >= 0; i++)
		usleep(1000);
}

static void posix_verify(void)
{
	static unsigned char buf[P_LEN];
	int fd = shm_open(shm_name, O_RDWR, 0);
	CHECK_SYS(fd >= 0, "shm_open %s after the restore", shm_name);
	CHECK_SYS(pread(fd, buf, P_LEN, 0) == P_LEN, "pread");
	expect(buf + 0, PAGE, 100 * PAGE, 1, "the shm file, the root's pages");
	expect(p_area, 150 * PAGE, 200 * PAGE, 5, "the shm mapping, child 1's pages");
	expect(g_area, 10 * PAGE, 20 * PAGE, 6, "the unlinked shm mapping, child 0's pages");
	expect(u_area, 10 * PAGE, 20 * PAGE, 11, "the unlinked closed shm, child 1's pages");
	expect(u_area, 20 * PAGE, 21 * PAGE, 0, "the unlinked closed shm, its last page");
	char want[64], line[256];
	snprintf(want, sizeof(want), "%lx-", (unsigned long)u_area);
	const char *maps = snapshot_file("/proc/self/maps", 0), *at = strstr(maps, want);
	CHECK(at, "the unlinked closed shm is not in /proc/self/maps");
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
	CHECK(strstr(line, " rw-s ") && strstr(line, "/dev/shm") && strstr(line, " (deleted)"),
	      "the unlinked closed shm is not an unlinked /dev/shm file: %s", line);
	p_area[300] = 0x5a;
	CHECK_SYS(pread(fd, buf, 1, 300) == 1 && buf[0] == 0x5a,
		  "the mapping no longer reaches the file");
	close(fd);
	CHECK_SYS(pread(GHOST_FD, buf + 20 * PAGE, PAGE, 20 * PAGE) == PAGE,
		  "pread of the unlinked shm");
	expect(buf, 20 * PAGE, 21 * PAGE, 7, "the unlinked shm file");
	run_protocol((struct sync *)p_area);
}

/* ---- sysv ---- */

#define S1_SIZE (3 * PAGE + 100)
#define S3_SIZE (5 * PAGE)
#define NSEMS 3

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int s1, s2, s3, sem;
static key_t k1, ksem;
static unsigned char *s1_area, *s2_area;

static void sysv_child_writes(int idx)
{
	if (idx == 0)
		fill(s1_area, 2 * PAGE, 3 * PAGE + 100, 2);
	else {
		struct sembuf op = { 0, -1, 0 }; /* sem 0: 3 -> 2, its pid: child 1 */
		CHECK_SYS(!semop(sem, &op, 1), "semop");
	}
}

static int sysv_check(int idx)
{
	(void)idx;
	return bad_byte(s1_area, PAGE, 2 * PAGE, 1) < 0 &&
	       bad_byte(s1_area, 2 * PAGE, 3 * PAGE + 100, 2) < 0 &&
	       bad_byte(s2_area, 0, PAGE, 8) < 0;
}

static void sysv_cleanup(void)
{
	shmctl(s1, IPC_RMID, NULL);
	shmctl(s3, IPC_RMID, NULL);
	semctl(sem, 0, IPC_RMID);
}

static void sysv_setup(void)
{
	char path[4096];
	k1 = (key_t)(0x43520000 | (getpid() & 0xffff));
	ksem = k1 ^ 0x00010000;
	s1 = shmget(k1, S1_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	s2 = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
	s3 = shmget(IPC_PRIVATE, S3_SIZE, IPC_CREAT | 0604);
	sem = semget(ksem, NSEMS, IPC_CREAT | IPC_EXCL | 0660);
	CHECK_SYS(s1 >= 0 && s2 >= 0 && s3 >= 0 && sem >= 0, "shmget/semget");
	atexit(sysv_cleanup);
	s1_area = shmat(s1, NULL, 0);
	s2_area = shmat(s2, NULL, 0);
	unsigned char *s3_area = shmat(s3, NULL, 0);
	CHECK_SYS(s1_area != (void *)-1 && s2_area != (void *)-1 && s3_area != (void *)-1, "shmat");
	CHECK_SYS(!shmctl(s2, IPC_RMID, NULL), "IPC_RMID");
	fill(s1_area, PAGE, 2 * PAGE, 1);
	fill(s2_area, 0, PAGE, 8);
	fill(s3_area, PAGE, S3_SIZE, 9);
	CHECK_SYS(!shmdt(s3_area), "shmdt");
	unsigned short vals[NSEMS] = { 3, 7, 0 };
	CHECK_SYS(semctl(sem, 0, SETALL, (union semun){ .array = vals }) == 0, "SETALL");
	start_children((struct sync *)s1_area, sysv_child_writes, sysv_check);
	for (int i = 0; i < 5000 && (bad_byte(s1_area, 3 * PAGE, 3 * PAGE + 100, 2) >= 0 ||
				     semctl(sem, 0, GETVAL) != 2);
	     i++)
		usleep(1000);
	/* for the janitor: what to remove once the dump killed us */
	snprintf(path, sizeof(path), "%s/ipc-ids", test_dir());
	FILE *f = fopen(path, "w");
	CHECK_SYS(f && fprintf(f, "%d %d %d %d\n", getpid(), s1, s3, sem) > 0 && !fclose(f), "%s",
		  path);
}

static void sysv_verify(void)
{
	char path[4096];
	struct shmid_ds ds;
	struct stat st;

	snprintf(path, sizeof(path), "%s/helper-ready", test_dir());
	if (!stat(path, &st)) {
		snprintf(path, sizeof(path), "%s/janitor-done", test_dir());
		CHECK(!stat(path, &st),
		      "the janitor did not remove the objects between dump and restore");
	}
	CHECK_SYS(shmget(k1, 0, 0) == s1, "segment 1 by its key 0x%x", k1);
	CHECK_SYS(!shmctl(s1, IPC_STAT, &ds), "IPC_STAT segment 1");
	CHECK(ds.shm_segsz == S1_SIZE && (ds.shm_perm.mode & 0777) == 0640 && ds.shm_nattch == 3,
	      "segment 1: %zu bytes, mode %o, %lu attached", (size_t)ds.shm_segsz, ds.shm_perm.mode,
	      (unsigned long)ds.shm_nattch);
	expect(s1_area, PAGE, 2 * PAGE, 1, "segment 1, the root's page");
	expect(s1_area, 2 * PAGE, 3 * PAGE + 100, 2, "segment 1, child 0's bytes");
	CHECK_SYS(!shmctl(s2, IPC_STAT, &ds), "IPC_STAT segment 2 (removed, attached)");
	CHECK(ds.shm_perm.mode & SHM_DEST, "segment 2 is no longer marked removed");
	expect(s2_area, 0, PAGE, 8, "segment 2");
	unsigned char *s3_area = shmat(s3, NULL, SHM_RDONLY);
	CHECK_SYS(s3_area != (void *)-1, "shmat segment 3 (unattached at the dump)");
	CHECK_SYS(!shmctl(s3, IPC_STAT, &ds) && ds.shm_segsz == S3_SIZE, "segment 3 size");
	expect(s3_area, 0, PAGE, 0, "segment 3, first page");
	expect(s3_area, PAGE, S3_SIZE, 9, "segment 3");
	shmdt(s3_area);
	CHECK_SYS(semget(ksem, 0, 0) == sem, "semaphore set by its key");
	unsigned short vals[NSEMS] = { 0 };
	CHECK_SYS(semctl(sem, 0, GETALL, (union semun){ .array = vals }) == 0, "GETALL");
	CHECK(vals[0] == 2 && vals[1] == 7 && vals[2] == 0,
	      "semaphores are %u %u %u, expected 2 7 0", vals[0], vals[1], vals[2]);
	run_protocol((struct sync *)s1_area);
}

/* The helper: remove the tree's objects behind the dump's back. */
static int janitor(void)
{
	char path[4096];
	int pid = 0, ids[3];
	FILE *f = fopen("helper-ready", "w");
	if (!f || fclose(f))
		return 1;
	for (int i = 0; i < 60000; i++) {
		f = fopen("ipc-ids", "r");
		if (f && fscanf(f, "%d %d %d %d", &pid, &ids[0], &ids[1], &ids[2]) == 4)
			break;
		if (f)
			fclose(f);
		f = NULL;
		usleep(1000);
	}
	if (!f)
		return 1;
	fclose(f);
	/* Once the dump has read them (its ipc.img exists), or at the
	 * latest when the tree dies: well before the restore starts. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	struct stat st;
	int n = 0;
	for (int i = 0; pidfd >= 0 && !n && i < 300000; i++)
		n = !stat("images/ipc.img", &st) || poll(&pfd, 1, 1) == 1;
	if (!n)
		return 1;
	int r1 = shmctl(ids[0], IPC_RMID, NULL), r2 = shmctl(ids[1], IPC_RMID, NULL);
	int r3 = semctl(ids[2], 0, IPC_RMID);
	printf("janitor: removed %d %d %d (%s): %d %d %d\n", ids[0], ids[1], ids[2],
	       stat("images/ipc.img", &st) ? "the tree died" : "the dump read them", r1, r2, r3);
	snprintf(path, sizeof(path), "janitor-done");
	f = fopen(path, "w");
	return !f || fclose(f) || r1 || r2 || r3;
}

/* ---- advice ---- */

#define A_PAGES 16

struct advised {
	const char *what;
	int madv; /* -1: none */
	int lock; /* 1: mlock, 2: mlock2 ONFAULT */
	const char *flag;
	unsigned char *addr;
	int shared_file;
	int droppable; /* MAP_DROPPABLE (6.11): its data may go, its type may not */
};

static struct advised adv[] = {
	{ "MADV_DONTFORK", MADV_DONTFORK, 0, "dc", NULL, 0, 0 },
	{ "MADV_WIPEONFORK", MADV_WIPEONFORK, 0, "wf", NULL, 0, 0 },
	{ "MADV_HUGEPAGE", MADV_HUGEPAGE, 0, "hg", NULL, 0, 0 },
	{ "MADV_NOHUGEPAGE", MADV_NOHUGEPAGE, 0, "nh", NULL, 0, 0 },
	{ "MADV_DONTDUMP", MADV_DONTDUMP, 0, "dd", NULL, 0, 0 },
	{ "MADV_SEQUENTIAL", MADV_SEQUENTIAL, 0, "sr", NULL, 0, 0 },
	{ "MADV_RANDOM", MADV_RANDOM, 0, "rr", NULL, 0, 0 },
	{ "MADV_MERGEABLE", MADV_MERGEABLE, 0, "mg", NULL, 0, 0 },
	{ "mlock", -1, 1, "lo", NULL, 0, 0 },
	{ "mlock2(MLOCK_ONFAULT)", -1, 2, "lf", NULL, 0, 0 },
	{ "mlock of a shared file mapping", -1, 1, "lo", NULL, 1, 0 },
	{ "MAP_DROPPABLE", -1, 0, "dp", NULL, 0, 1 },
};
#define NR_ADV (sizeof(adv) / sizeof(adv[0]))

static void advice_setup(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/locked.bin", test_dir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0 && !ftruncate(fd, A_PAGES * PAGE), "%s", path);
	for (size_t i = 0; i < NR_ADV; i++) {
		struct advised *a = &adv[i];
		int type = a->droppable ? 0x08 /* MAP_DROPPABLE */ : MAP_PRIVATE;
		a->addr = a->shared_file ? mmap(NULL, A_PAGES * PAGE, PROT_READ | PROT_WRITE,
						MAP_SHARED, fd, 0)
					 : mmap(NULL, A_PAGES * PAGE, PROT_READ | PROT_WRITE,
						type | MAP_ANONYMOUS, -1, 0);
		CHECK_SYS(a->addr != MAP_FAILED, "mmap");
		if (a->madv >= 0)
			CHECK_SYS(!madvise(a->addr, A_PAGES * PAGE, a->madv), "%s", a->what);
		if (a->lock == 1)
			CHECK_SYS(!mlock(a->addr, A_PAGES * PAGE), "%s", a->what);
		if (a->lock == 2)
			CHECK_SYS(!mlock2(a->addr, A_PAGES * PAGE, MLOCK_ONFAULT), "%s", a->what);
		fill(a->addr, 0, 2 * PAGE, (int)i + 1);
	}
	close(fd);
	CHECK_SYS(!prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), "PR_SET_THP_DISABLE");
}

/* The VmFlags of the VMA at addr, from smaps. */
static const char *vm_flags(const unsigned char *addr)
{
	char want[32];
	snprintf(want, sizeof(want), "\n%lx-", (unsigned long)addr);
	const char *smaps = snapshot_file("/proc/self/smaps", 1), *at = strstr(smaps, want);
	CHECK(at, "no VMA at %p in smaps", (void *)addr);
	at = strstr(at, "VmFlags:");
	CHECK(at, "no VmFlags");
	static char line[256];
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(at, "\n"), at);
	return line;
}

static int has_flag(const char *flags, const char *f)
{
	char want[8];
	snprintf(want, sizeof(want), " %s", f);
	const char *p = strstr(flags, want);
	return p && (p[3] == ' ' || p[3] == 0);
}

static void advice_verify(void)
{
	for (size_t i = 0; i < NR_ADV; i++) {
		const char *flags = vm_flags(adv[i].addr);
		CHECK(has_flag(flags, adv[i].flag), "%s: \"%s\" lacks %s", adv[i].what, flags,
		      adv[i].flag);
		if (!adv[i].droppable)
			expect(adv[i].addr, 0, 2 * PAGE, (int)i + 1, adv[i].what);
	}
	CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "PR_SET_THP_DISABLE was lost");
	/* and they act: a child has no DONTFORK memory and zeroed WIPEONFORK memory */
	pid_t pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (!pid) {
		int gone = msync(adv[0].addr, PAGE, MS_ASYNC) < 0 && errno == ENOMEM;
		_exit(!gone ? 3 : bad_byte(adv[1].addr, 0, 2 * PAGE, 0) >= 0 ? 4 : 0);
	}
	int status;
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 3, "MADV_DONTFORK memory is in a fork");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 4,
	      "MADV_WIPEONFORK memory kept its data");
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "fork child failed");
}

/* ---- ipcns ---- */

static void ipcns_setup(void)
{
	CHECK_SYS(!unshare(CLONE_NEWIPC), "unshare(CLONE_NEWIPC)");
	int id = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);
	CHECK_SYS(id >= 0, "shmget");
	unsigned char *m = shmat(id, NULL, 0);
	CHECK_SYS(m != (void *)-1, "shmat");
	CHECK_SYS(!shmctl(id, IPC_RMID, NULL), "IPC_RMID");
	m[0] = 1;
}

/* ---- guard ---- */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define GUARD_PAGES 6

/* What each page of the guarded mapping is: 1 a guard page, else data. */
static const int guard_map[GUARD_PAGES] = { 0, 1, 1, 0, 1, 0 };
static unsigned char *guard_anon, *guard_file;
static int guard_pipe[2];
static pid_t guard_child;
static sigjmp_buf guard_jump;

static void guard_fault(int sig)
{
	(void)sig;
	siglongjmp(guard_jump, 1);
}

/* 1 when reading the byte faults. */
static int faults(volatile unsigned char *p, unsigned char *val)
{
	if (sigsetjmp(guard_jump, 1))
		return 1;
	*val = *p;
	return 0;
}

/* Every page: a guard where guard_map says, else its byte `base + i`. */
static void guard_check(const char *who, unsigned char *m, int base)
{
	for (int i = 0; i < GUARD_PAGES; i++) {
		unsigned char v = 0;
		int f = faults(m + (size_t)i * PAGE + 100, &v);
		if (f != guard_map[i])
			fail("%s: page %d: %s", who, i, f ? "faults, it held data" : "readable, it was a guard page");
		if (!f && v != (unsigned char)(base + i))
			fail("%s: page %d holds %d, not %d", who, i, v, base + i);
	}
}

static void guard_install(unsigned char *m, int base)
{
	for (int i = 0; i < GUARD_PAGES; i++)
		memset(m + (size_t)i * PAGE, base + i, PAGE);
	for (int i = 0; i < GUARD_PAGES; i++)
		if (guard_map[i])
			CHECK_SYS(!madvise(m + (size_t)i * PAGE, PAGE, MADV_GUARD_INSTALL),
				  "MADV_GUARD_INSTALL");
}

/*
 * Guard pages in a private anonymous and a private file mapping, and in
 * a child that inherited both (guards are inherited by fork) and added
 * one of its own: the child's restore fills its memory from its parent's
 * before its own guards go in.
 */
static void guard_setup(void)
{
	char path[256];
	struct sigaction sa = { .sa_handler = guard_fault };
	CHECK_SYS(!sigaction(SIGSEGV, &sa, NULL), "sigaction");
	guard_anon = mmap(NULL, GUARD_PAGES * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(guard_anon != MAP_FAILED, "mmap");
	test_path(path, "guarded-file");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0 && !ftruncate(fd, GUARD_PAGES * PAGE), "%s", path);
	guard_file = mmap(NULL, GUARD_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(guard_file != MAP_FAILED, "mmap %s", path);
	close(fd);
	guard_install(guard_anon, 10);
	guard_install(guard_file, 40);
	CHECK_SYS(!pipe(guard_pipe), "pipe");
	guard_child = fork();
	CHECK_SYS(guard_child >= 0, "fork");
	if (guard_child == 0) {
		char c;
		/* one more guard, on a page of the parent's data: the child's own */
		CHECK_SYS(!madvise(guard_anon + 3 * PAGE, PAGE, MADV_GUARD_INSTALL), "MADV_GUARD_INSTALL");
		if (read(guard_pipe[0], &c, 1) != 1)
			_exit(3);
		signal(SIGSEGV, SIG_DFL);
		guard_anon[3 * PAGE] = 13; /* kills it, if the guard is there */
		_exit(5);
	}
}

static void guard_verify(void)
{
	int st;
	guard_check("anonymous mapping", guard_anon, 10);
	guard_check("file mapping", guard_file, 40);
	CHECK_SYS(write(guard_pipe[1], "x", 1) == 1, "write");
	CHECK_SYS(waitpid(guard_child, &st, 0) == guard_child, "waitpid");
	/* the child's write to its own guard page kills it with SIGSEGV */
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		fail("child: its guard page at page 3 was not restored (status %#x)", st);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "anon";

	if (!strcmp(c, "janitor"))
		return janitor();
	test_init();
	if (!strcmp(c, "anon"))
		anon_setup();
	else if (!strcmp(c, "posix"))
		posix_setup();
	else if (!strcmp(c, "sysv"))
		sysv_setup();
	else if (!strcmp(c, "advice"))
		advice_setup();
	else if (!strcmp(c, "ipcns"))
		ipcns_setup();
	else if (!strcmp(c, "guard"))
		guard_setup();
	else
		fail("unknown case %s", c);
	test_ready();
	test_wait_check();
	if (!strcmp(c, "anon"))
		anon_verify();
	else if (!strcmp(c, "posix"))
		posix_verify();
	else if (!strcmp(c, "sysv"))
		sysv_verify();
	else if (!strcmp(c, "advice"))
		advice_verify();
	else if (!strcmp(c, "guard"))
		guard_verify();
	pass();
}
