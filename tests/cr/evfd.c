/*
 * cr_evfd_*: event and special fds, memfds, unlinked files, file locks and
 * directories survive a checkpoint.  One program, one case per argument:
 *
 *   eventfd   a semaphore eventfd (count 3, O_NONBLOCK) and a plain one
 *             holding more than 32 bits
 *   signalfd  a signalfd on SIGUSR1 and SIGRTMIN+2 (blocked), O_NONBLOCK
 *   timerfd   a relative periodic monotonic timer, an absolute realtime
 *             one, and an expired one-shot timer whose tick was not read
 *   epoll     an epoll shared with a child process, watching a pipe
 *             (ready) and an eventfd (edge-triggered) with their data
 *   epoll-moved  an epoll whose targets are no longer at the fd numbers
 *             they were added with (zdtm epoll, epoll01): a pipe added as
 *             a dup since closed, and an eventfd whose number now holds
 *             another eventfd, itself watched too
 *   inotify-gone  a watch on a file unlinked while held open: a write and
 *             the close of the restored file are seen (IN_MODIFY,
 *             IN_CLOSE_WRITE)
 *   inotify-mapped  the same file only mapped (no fd holds it): refused
 *   inotify   two watches whose wds (2, 3) a fresh inotify would not give
 *   memfd     a sealed memfd with contents, two descriptions, a dup, and
 *             a MAP_SHARED mapping of it
 *   ghost     an unlinked file open twice, with contents, mode, offsets,
 *             and a MAP_SHARED mapping of it
 *   ghost-big the same, 2 MiB (over the default --ghost-limit)
 *   locks     flock, POSIX (two ranges, one taken through another open of
 *             the file, and one held by a child) and OFD
 *   locks-mapped  a POSIX lock on a file the process maps (refused; the
 *             lock must still be held after the refused dump)
 *   dirs      a directory opened O_PATH and one O_DIRECTORY, mid-listing
 *
 * After the restore, each checks its fds' state and that they still work.
 */
#include "crlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FD 40 /* the cases' fds are FD, FD + 1, ... */

static pid_t child;
static volatile char *map; /* memfd, ghost: a shared mapping of the file at FD */
static char path_a[PATH_MAX], path_b[PATH_MAX], path_c[PATH_MAX];

static _Noreturn void child_loop(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (;;)
		pause();
}

static void start_child(void)
{
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child)
		child_loop();
}

static void stop_child(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = 0;
	}
}

static const char *fdinfo(int fd, int slot)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return snapshot_file(path, slot);
}

/* ------------------------------ eventfd ------------------------------ */

static void eventfd_setup(void)
{
	uint64_t v = 3, big = 0x100000005ull;
	move_fd(eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK), FD);
	CHECK_SYS(write(FD, &v, 8) == 8, "write eventfd");
	move_fd(eventfd(0, 0), FD + 1);
	CHECK_SYS(write(FD + 1, &big, 8) == 8, "write eventfd");
}

static void eventfd_check(void)
{
	uint64_t v;
	CHECK(fcntl(FD, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(strstr(fdinfo(FD, 0), "eventfd-semaphore: 1"), "not a semaphore:\n%s", fdinfo(FD, 0));
	for (int i = 0; i < 3; i++) {
		CHECK_SYS(read(FD, &v, 8) == 8, "read semaphore %d", i);
		CHECK(v == 1, "semaphore read %" PRIu64, v);
	}
	CHECK(read(FD, &v, 8) < 0 && errno == EAGAIN, "semaphore not empty after 3 reads");
	CHECK_SYS(read(FD + 1, &v, 8) == 8, "read eventfd");
	CHECK(v == 0x100000005ull, "eventfd count %#" PRIx64, v);
}

/* ------------------------------ signalfd ----------------------------- */

static void signalfd_setup(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 2);
	CHECK_SYS(!sigprocmask(SIG_BLOCK, &set, NULL), "sigprocmask");
	move_fd(signalfd(-1, &set, SFD_NONBLOCK), FD);
}

static void signalfd_check(void)
{
	struct signalfd_siginfo si;
	CHECK(fcntl(FD, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(read(FD, &si, sizeof(si)) < 0 && errno == EAGAIN, "signal before any was sent");
	kill(getpid(), SIGRTMIN + 2);
	CHECK_SYS(read(FD, &si, sizeof(si)) == sizeof(si), "read signalfd");
	CHECK((int)si.ssi_signo == SIGRTMIN + 2, "got signal %u", si.ssi_signo);
	kill(getpid(), SIGUSR1);
	CHECK_SYS(read(FD, &si, sizeof(si)) == sizeof(si), "read signalfd");
	CHECK(si.ssi_signo == SIGUSR1, "got signal %u", si.ssi_signo);
	const char *mask = strstr(fdinfo(FD, 0), "sigmask:\t");
	uint64_t want = 1ull << (SIGUSR1 - 1) | 1ull << (SIGRTMIN + 2 - 1);
	CHECK(mask && strtoull(mask + 9, NULL, 16) == want, "mask:\n%s", fdinfo(FD, 0));
}

/* ------------------------------ timerfd ------------------------------ */

static void timerfd_setup(void)
{
	struct itimerspec rel = { { 7, 0 }, { 100, 0 } }, abs = { { 0, 0 }, { 0, 0 } };
	struct itimerspec once = { { 0, 0 }, { 0, 1000000 } };
	struct timespec now;
	move_fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), FD);
	CHECK_SYS(!timerfd_settime(FD, 0, &rel, NULL), "timerfd_settime");
	move_fd(timerfd_create(CLOCK_REALTIME, 0), FD + 1);
	clock_gettime(CLOCK_REALTIME, &now);
	abs.it_value.tv_sec = now.tv_sec + 1000;
	CHECK_SYS(!timerfd_settime(FD + 1, TFD_TIMER_ABSTIME, &abs, NULL), "timerfd_settime");
	move_fd(timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK), FD + 2);
	CHECK_SYS(!timerfd_settime(FD + 2, 0, &once, NULL), "timerfd_settime");
	usleep(20000); /* it expires, nobody reads it */
}

static void timerfd_check(void)
{
	struct itimerspec its;
	uint64_t ticks = 0;
	CHECK_SYS(!timerfd_gettime(FD, &its), "timerfd_gettime");
	CHECK(its.it_interval.tv_sec == 7 && its.it_interval.tv_nsec == 0, "interval %lld.%09ld",
	      (long long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	CHECK(its.it_value.tv_sec >= 40 && its.it_value.tv_sec < 100, "%lld s left of 100",
	      (long long)its.it_value.tv_sec);
	CHECK(strstr(fdinfo(FD, 0), "clockid: 1\n"), "clock:\n%s", fdinfo(FD, 0));
	CHECK(fcntl(FD, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(read(FD, &ticks, 8) < 0 && errno == EAGAIN, "the 100 s timer expired");
	CHECK(strstr(fdinfo(FD + 1, 1), "settime flags: 01\n"), "TFD_TIMER_ABSTIME lost:\n%s",
	      fdinfo(FD + 1, 1));
	CHECK_SYS(!timerfd_gettime(FD + 1, &its), "timerfd_gettime");
	CHECK(its.it_value.tv_sec >= 900 && its.it_value.tv_sec < 1000, "%lld s left of 1000",
	      (long long)its.it_value.tv_sec);
	CHECK(strstr(fdinfo(FD + 2, 2), "clockid: 7\n"), "clock:\n%s", fdinfo(FD + 2, 2));
	CHECK_SYS(read(FD + 2, &ticks, 8) == 8, "the expiry not read before the dump is lost");
	CHECK(ticks == 1, "%" PRIu64 " ticks", ticks);
	CHECK_SYS(!timerfd_gettime(FD + 2, &its), "timerfd_gettime");
	CHECK(!its.it_value.tv_sec && !its.it_value.tv_nsec, "one-shot timer armed again");
}

/* ------------------------------ epoll -------------------------------- */

static void epoll_setup(void)
{
	int p[2];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xfeedULL << 32 };
	CHECK_SYS(!pipe(p), "pipe");
	move_fd(p[0], FD + 1);
	move_fd(p[1], FD + 2);
	move_fd(eventfd(0, EFD_NONBLOCK), FD + 3);
	move_fd(epoll_create1(EPOLL_CLOEXEC), FD);
	CHECK_SYS(!fcntl(FD, F_SETFD, FD_CLOEXEC), "FD_CLOEXEC");
	CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, FD + 1, &ev), "epoll_ctl");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0xbeef;
	CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, FD + 3, &ev), "epoll_ctl");
	CHECK_SYS(write(FD + 2, "x", 1) == 1, "write pipe");
	start_child(); /* shares the epoll: it must be filled once */
}

static void epoll_check(void)
{
	struct epoll_event ev[4];
	uint64_t one = 1;
	CHECK(fcntl(FD, F_GETFD) & FD_CLOEXEC, "cloexec lost");
	int n = epoll_wait(FD, ev, 4, 0);
	CHECK(n == 1 && ev[0].data.u64 == 0xfeedULL << 32 && (ev[0].events & EPOLLIN),
	      "%d events, first data %#" PRIx64 " (pipe watch lost)", n, n > 0 ? ev[0].data.u64 : 0);
	CHECK_SYS(write(FD + 3, &one, 8) == 8, "write eventfd");
	n = epoll_wait(FD, ev, 4, 0);
	CHECK(n == 2, "%d events after the eventfd write", n);
	CHECK(ev[0].data.u64 == 0xbeef || ev[1].data.u64 == 0xbeef, "eventfd watch lost");
	/* edge-triggered: reported once */
	n = epoll_wait(FD, ev, 4, 0);
	CHECK(n == 1 && ev[0].data.u64 == 0xfeedULL << 32, "EPOLLET lost: %d events", n);
	stop_child();
}

/* Data of the events epoll FD reports now, OR'ed as bits 1 << (data & 7). */
static unsigned ready_bits(void)
{
	struct epoll_event ev[8];
	unsigned bits = 0;
	int n = epoll_wait(FD, ev, 8, 0);
	CHECK_SYS(n >= 0, "epoll_wait");
	for (int i = 0; i < n; i++)
		bits |= 1u << (ev[i].data.u64 & 7);
	return bits;
}

static void epoll_moved_setup(void)
{
	int p[2];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	CHECK_SYS(!pipe(p), "pipe");
	move_fd(p[0], FD + 1);
	move_fd(p[1], FD + 2);
	move_fd(epoll_create1(0), FD);
	/* the pipe, added as fd FD+5, which is closed since */
	CHECK_SYS(dup2(FD + 1, FD + 5) == FD + 5, "dup2");
	ev.data.u64 = 1;
	CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, FD + 5, &ev), "epoll_ctl");
	close(FD + 5);
	/* eventfd A added as FD+6, kept at FD+7; FD+6 is eventfd B now, added too */
	move_fd(eventfd(0, EFD_NONBLOCK), FD + 6);
	ev.data.u64 = 2;
	CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, FD + 6, &ev), "epoll_ctl");
	CHECK_SYS(dup2(FD + 6, FD + 7) == FD + 7, "dup2");
	move_fd(eventfd(0, EFD_NONBLOCK), FD + 6);
	ev.data.u64 = 3;
	CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, FD + 6, &ev), "epoll_ctl");
	CHECK_SYS(write(FD + 2, "x", 1) == 1, "write pipe"); /* not reported yet */
}

static void epoll_moved_check(void)
{
	uint64_t one = 1;
	CHECK(fcntl(FD + 5, F_GETFD) < 0 && errno == EBADF, "fd %d is back", FD + 5);
	CHECK(ready_bits() == 1u << 1, "the pipe's watch (added as a closed fd) lost");
	CHECK(ready_bits() == 0, "EPOLLET: an event reported twice");
	CHECK_SYS(write(FD + 7, &one, 8) == 8, "write eventfd A");
	CHECK(ready_bits() == 1u << 2, "eventfd A's watch (its number taken since) lost");
	CHECK_SYS(write(FD + 6, &one, 8) == 8, "write eventfd B");
	CHECK(ready_bits() == 1u << 3, "eventfd B's watch lost");
}

/* ------------------------------ inotify ------------------------------ */

static void inotify_setup(void)
{
	char buf[4096];
	test_path(path_a, "a");
	test_path(path_b, "b");
	test_path(path_c, "c");
	CHECK_SYS(!mkdir(path_a, 0700) && !mkdir(path_b, 0700) && !mkdir(path_c, 0700), "mkdir");
	move_fd(inotify_init1(IN_NONBLOCK), FD);
	CHECK(inotify_add_watch(FD, path_a, IN_CREATE) == 1, "first wd");
	CHECK(inotify_add_watch(FD, path_b, IN_CREATE | IN_DELETE) == 2, "second wd");
	CHECK_SYS(!inotify_rm_watch(FD, 1), "inotify_rm_watch");
	CHECK(read(FD, buf, sizeof(buf)) > 0, "no IN_IGNORED");
	CHECK(inotify_add_watch(FD, path_c, IN_CREATE) == 3, "third wd");
}

static void expect_event(int wd, const char *name, uint32_t mask)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(FD, buf, sizeof(buf));
	CHECK_SYS(n >= (ssize_t)sizeof(struct inotify_event), "no event for %s", name);
	struct inotify_event *ev = (struct inotify_event *)buf;
	CHECK(ev->wd == wd && (ev->mask & mask) && !strcmp(ev->name, name),
	      "event wd %d mask %#x name %s, expected wd %d for %s", ev->wd, ev->mask,
	      ev->len ? ev->name : "", wd, name);
	CHECK((ssize_t)(sizeof(*ev) + ev->len) == n, "more events than one");
}

static void touch(const char *dir, const char *name)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	CHECK_SYS(fd >= 0, "create %s", p);
	close(fd);
}

static void inotify_check(void)
{
	char buf[4096];
	CHECK(read(FD, buf, sizeof(buf)) < 0 && errno == EAGAIN, "events queued after restore");
	touch(path_a, "x"); /* no longer watched */
	touch(path_b, "y");
	expect_event(2, "y", IN_CREATE);
	touch(path_c, "z");
	expect_event(3, "z", IN_CREATE);
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/y", path_b);
	CHECK_SYS(!unlink(p), "unlink");
	expect_event(2, "y", IN_DELETE);
}

/* A watched file unlinked while held open (zdtm inotify00): the watch
 * follows the inode, which the restore brings back as an unlinked file. */
static void inotify_gone_setup(void)
{
	char buf[4096];
	test_path(path_a, "watched");
	int f = open(path_a, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	CHECK_SYS(f >= 0, "create %s", path_a);
	move_fd(f, FD + 1);
	move_fd(inotify_init1(IN_NONBLOCK), FD);
	CHECK(inotify_add_watch(FD, path_a, IN_MODIFY | IN_CLOSE_WRITE) == 1, "wd");
	CHECK_SYS(!unlink(path_a), "unlink %s", path_a);
	while (read(FD, buf, sizeof(buf)) > 0) /* IN_ATTRIB of the unlink, if asked */
		;
}

/* The same file only mapped, no fd holding it: refused by name. */
static void inotify_mapped_setup(void)
{
	test_path(path_a, "watched");
	int f = open(path_a, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	CHECK_SYS(f >= 0 && !ftruncate(f, 4096), "create %s", path_a);
	CHECK_SYS(mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 0) != MAP_FAILED, "mmap");
	close(f);
	move_fd(inotify_init1(IN_NONBLOCK), 42);
	CHECK(inotify_add_watch(42, path_a, IN_MODIFY) == 1, "wd");
	CHECK_SYS(!unlink(path_a), "unlink %s", path_a);
}

static void inotify_mapped_check(void)
{
	char buf[4096];
	while (read(42, buf, sizeof(buf)) > 0)
		;
	CHECK(inotify_add_watch(42, "/", IN_MODIFY) == 2, "the refused dump changed the inotify");
}

static void expect_mask(uint32_t mask, const char *what)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(FD, buf, sizeof(buf));
	CHECK_SYS(n >= (ssize_t)sizeof(struct inotify_event), "no event for %s", what);
	struct inotify_event *ev = (struct inotify_event *)buf;
	CHECK(ev->wd == 1 && (ev->mask & mask), "%s: event wd %d mask %#x", what, ev->wd, ev->mask);
}

static void inotify_gone_check(void)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n = read(FD, buf, sizeof(buf));
	CHECK(n < 0 && errno == EAGAIN, "events queued after restore: mask %#x",
	      n > 0 ? ((struct inotify_event *)buf)->mask : 0);
	CHECK_SYS(write(FD + 1, "x", 1) == 1, "write");
	expect_mask(IN_MODIFY, "write to the unlinked file");
	close(FD + 1);
	expect_mask(IN_CLOSE_WRITE, "its close");
}

/* ------------------------------ memfd -------------------------------- */

#define MEMFD_LEN 20000

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 13 + (i >> 9));
}

static void memfd_setup(void)
{
	unsigned char buf[MEMFD_LEN];
	char p[64];
	for (size_t i = 0; i < MEMFD_LEN; i++)
		buf[i] = pat(i);
	move_fd(memfd_create("cr-evfd data", MFD_ALLOW_SEALING), FD);
	CHECK_SYS(write_full(FD, buf, MEMFD_LEN) == MEMFD_LEN, "write memfd");
	CHECK_SYS(!fcntl(FD, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seals");
	CHECK_SYS(lseek(FD, 1234, SEEK_SET) == 1234, "lseek");
	move_fd(dup(FD), FD + 1);
	snprintf(p, sizeof(p), "/proc/self/fd/%d", FD);
	move_fd(open(p, O_RDONLY), FD + 2);
	CHECK_SYS(lseek(FD + 2, 999, SEEK_SET) == 999, "lseek");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 16384);
	CHECK_SYS(map != MAP_FAILED, "mmap");
	map[0] = 'M';
}

/* The mapping and the fds still reach one file, both ways. */
static void check_map(off_t off, char was)
{
	char c;
	CHECK(map[0] == was, "mapping holds %#x, not %#x", map[0], was);
	CHECK_SYS(pwrite(FD, "w", 1, off + 1) == 1, "pwrite");
	CHECK(map[1] == 'w', "a write through the fd is not in the mapping");
	map[2] = 'm';
	CHECK_SYS(pread(FD + 1, &c, 1, off + 2) == 1, "pread");
	CHECK(c == 'm', "a write to the mapping is not in the file");
}

static void memfd_check(void)
{
	unsigned char buf[MEMFD_LEN];
	char link[256];
	struct stat a, b;
	ssize_t n = readlink("/proc/self/fd/40", link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink");
	link[n] = 0;
	CHECK(!strcmp(link, "/memfd:cr-evfd data (deleted)"), "memfd is %s", link);
	CHECK(fcntl(FD, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "seals %#x",
	      fcntl(FD, F_GET_SEALS));
	CHECK(lseek(FD, 0, SEEK_CUR) == 1234 && lseek(FD + 2, 0, SEEK_CUR) == 999, "offsets");
	CHECK((fcntl(FD + 2, F_GETFL) & O_ACCMODE) == O_RDONLY, "O_RDONLY lost");
	CHECK_SYS(pread(FD + 2, buf, MEMFD_LEN, 0) == MEMFD_LEN, "pread");
	for (size_t i = 0; i < MEMFD_LEN; i++)
		CHECK(buf[i] == (i == 16384 ? 'M' : pat(i)), "byte %zu is %#x", i, buf[i]);
	check_map(16384, 'M');
	CHECK(!fstat(FD, &a) && !fstat(FD + 2, &b) && a.st_ino == b.st_ino, "not one memfd");
	CHECK(ftruncate(FD, 10) < 0 && errno == EPERM, "F_SEAL_SHRINK not enforced");
	CHECK_SYS(write(FD + 1, "ZZ", 2) == 2, "write");
	CHECK(lseek(FD, 0, SEEK_CUR) == 1236, "dup does not share the offset");
	CHECK_SYS(pread(FD + 2, buf, 2, 1234) == 2 && buf[0] == 'Z', "write not seen");
}

/* ------------------------------ ghost -------------------------------- */

static size_t ghost_len;

static void ghost_setup(size_t len)
{
	unsigned char *buf = malloc(len);
	CHECK(buf, "malloc");
	ghost_len = len;
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(i);
	test_path(path_a, "ghost");
	move_fd(open(path_a, O_RDWR | O_CREAT | O_EXCL, 0640), FD);
	CHECK_SYS(write_full(FD, buf, len) == (ssize_t)len, "write");
	free(buf);
	move_fd(open(path_a, O_RDONLY), FD + 1);
	CHECK_SYS(lseek(FD + 1, 77, SEEK_SET) == 77, "lseek");
	CHECK_SYS(!unlink(path_a), "unlink");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0);
	CHECK_SYS(map != MAP_FAILED, "mmap");
	map[0] = 'G';
}

static void ghost_check(void)
{
	char link[PATH_MAX + 16], want[PATH_MAX + 16];
	unsigned char b[64];
	struct stat a, st;
	ssize_t n = readlink("/proc/self/fd/40", link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink");
	link[n] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", path_a);
	CHECK(!strcmp(link, want), "ghost is %s", link);
	CHECK(access(path_a, F_OK) < 0, "%s exists again", path_a);
	CHECK(!fstat(FD, &a) && !fstat(FD + 1, &st) && a.st_ino == st.st_ino, "not one file");
	CHECK(a.st_nlink == 0 && (size_t)a.st_size == ghost_len && (a.st_mode & 0777) == 0640,
	      "nlink %lu size %lld mode %o", (unsigned long)a.st_nlink, (long long)a.st_size,
	      a.st_mode & 0777);
	CHECK(lseek(FD, 0, SEEK_CUR) == (off_t)ghost_len && lseek(FD + 1, 0, SEEK_CUR) == 77,
	      "offsets");
	for (size_t off = 4093; off < ghost_len; off += 4093) {
		CHECK_SYS(pread(FD + 1, b, 1, (off_t)off) == 1, "pread");
		CHECK(b[0] == pat(off), "byte %zu", off);
	}
	check_map(0, 'G');
	CHECK_SYS(write(FD, "tail", 4) == 4, "write");
	CHECK_SYS(pread(FD + 1, b, 4, (off_t)ghost_len) == 4 && !memcmp(b, "tail", 4),
	      "write not seen through the other fd");
}

/* ------------------------------ locks -------------------------------- */

static void lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	CHECK_SYS(!fcntl(fd, cmd, &fl), "lock %d", fd);
}

static void locks_setup(void)
{
	test_path(path_a, "lk-flock");
	test_path(path_b, "lk-posix");
	test_path(path_c, "lk-ofd");
	move_fd(open(path_a, O_RDWR | O_CREAT, 0600), FD);
	CHECK_SYS(!flock(FD, LOCK_EX), "flock");
	move_fd(open(path_b, O_RDWR | O_CREAT, 0600), FD + 1);
	/* Another open of path_b (before any lock on it: move_fd's close
	 * would drop them), and a POSIX lock taken through it, shown only in
	 * the fdinfo of this description's fds, two of them in the table */
	move_fd(open(path_b, O_RDWR), FD + 3);
	CHECK_SYS(dup2(FD + 3, FD + 4) == FD + 4, "dup2");
	lock_range(FD + 3, F_SETLK, F_WRLCK, 70, 10);
	lock_range(FD + 1, F_SETLK, F_WRLCK, 10, 20);
	lock_range(FD + 1, F_SETLK, F_RDLCK, 100, 0);
	move_fd(open(path_c, O_RDWR | O_CREAT, 0600), FD + 2);
	lock_range(FD + 2, F_OFD_SETLK, F_WRLCK, 0, 0);
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child) {
		/* The child's own POSIX lock, on the same description. */
		lock_range(FD + 1, F_SETLK, F_WRLCK, 50, 10);
		child_loop();
	}
	/* The child's lock is in place before the dump. */
	for (int i = 0; i < 1000; i++) {
		/* Through our own fd: a close() would drop our POSIX locks. */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 55, .l_len = 1 };
		CHECK_SYS(!fcntl(FD + 1, F_GETLK, &fl), "F_GETLK");
		if (fl.l_type != F_UNLCK)
			return;
		usleep(1000);
	}
	fail("the child did not lock");
}

/* From a process of its own: who holds [start, start+1) of path? */
static pid_t holder(const char *path, off_t start, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1 };
	int fd = open(path, O_RDWR);
	CHECK_SYS(fd >= 0 && !fcntl(fd, F_GETLK, &fl), "F_GETLK %s", path);
	close(fd);
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

static void locks_check(void)
{
	pid_t me = getpid();
	CHECK(strstr(fdinfo(FD, 0), "FLOCK  ADVISORY  WRITE"), "flock lost:\n%s", fdinfo(FD, 0));
	CHECK(strstr(fdinfo(FD + 2, 1), "OFDLCK ADVISORY  WRITE"), "OFD lock lost:\n%s",
	      fdinfo(FD + 2, 1));
	pid_t p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (!p) {
		int fd = open(path_a, O_RDWR);
		if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			fail("flock not held");
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1 };
		fd = open(path_c, O_RDWR);
		if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl) || fl.l_type != F_WRLCK)
			fail("OFD lock not held");
		if (holder(path_b, 15, F_RDLCK) != me || holder(path_b, 30, F_WRLCK) != 0 ||
		    holder(path_b, 75, F_RDLCK) != me || holder(path_b, 80, F_WRLCK) != 0 ||
		    holder(path_b, 5000, F_WRLCK) != me || holder(path_b, 5000, F_RDLCK) != 0)
			fail("POSIX locks of %d not as before", me);
		if (holder(path_b, 55, F_RDLCK) != child)
			fail("the child's POSIX lock: held by %d, not %d", holder(path_b, 55, F_RDLCK),
			     child);
		_exit(0);
	}
	int st;
	CHECK_SYS(waitpid(p, &st, 0) == p, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "lock checks failed (see above)");
	stop_child();
}

static void locks_mapped_setup(void)
{
	test_path(path_b, "lk-mapped");
	move_fd(open(path_b, O_RDWR | O_CREAT, 0600), FD);
	CHECK_SYS(!ftruncate(FD, 4096), "ftruncate");
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0);
	CHECK_SYS(map != MAP_FAILED, "mmap");
	lock_range(FD, F_SETLK, F_WRLCK, 0, 100);
}

static void locks_mapped_check(void)
{
	pid_t me = getpid(), p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (!p) {
		if (holder(path_b, 50, F_RDLCK) != me)
			fail("POSIX lock of %d lost", me);
		_exit(0);
	}
	int st;
	CHECK_SYS(waitpid(p, &st, 0) == p, "waitpid");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "lock check failed (see above)");
}

/* ------------------------------ dirs --------------------------------- */

static long dir_pos;
static struct stat dir_st;

static void dirs_setup(void)
{
	char buf[4096];
	test_path(path_a, "d");
	CHECK_SYS(!mkdir(path_a, 0700), "mkdir");
	for (int i = 0; i < 50; i++) {
		snprintf(buf, sizeof(buf), "entry-%02d", i);
		touch(path_a, buf);
	}
	move_fd(open(path_a, O_PATH | O_DIRECTORY), FD);
	move_fd(open(path_a, O_RDONLY | O_DIRECTORY), FD + 1);
	CHECK_SYS(syscall(SYS_getdents64, FD + 1, buf, 200) > 0, "getdents64");
	dir_pos = lseek(FD + 1, 0, SEEK_CUR);
	CHECK_SYS(!fstat(FD + 1, &dir_st), "fstat");
}

/* Names in a getdents64 buffer, counted. */
static int count_entries(int fd)
{
	char buf[8192];
	int n = 0;
	long len;
	while ((len = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < len;) {
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, 2);
			n++;
			off += reclen;
		}
	CHECK_SYS(len == 0, "getdents64");
	return n;
}

static void dirs_check(void)
{
	struct stat st;
	CHECK(fcntl(FD, F_GETFL) & O_PATH, "O_PATH lost: flags %#o", fcntl(FD, F_GETFL));
	CHECK(!fstat(FD, &st) && st.st_ino == dir_st.st_ino && S_ISDIR(st.st_mode), "not the dir");
	CHECK_SYS(!fstatat(FD, "entry-07", &st, 0), "fstatat through the O_PATH fd");
	CHECK(fcntl(FD + 1, F_GETFL) & O_DIRECTORY, "O_DIRECTORY lost");
	CHECK(lseek(FD + 1, 0, SEEK_CUR) == dir_pos, "dir offset %lld, was %ld",
	      (long long)lseek(FD + 1, 0, SEEK_CUR), dir_pos);
	int rest = count_entries(FD + 1);
	CHECK_SYS(lseek(FD + 1, 0, SEEK_SET) == 0, "rewind");
	int all = count_entries(FD + 1);
	CHECK(all == 52 && rest > 0 && rest < all, "%d entries left of %d", rest, all);
}

/* ------------------------------ main --------------------------------- */

static const struct {
	const char *name;
	void (*setup)(void);
	void (*check)(void);
} cases[] = {
	{ "eventfd", eventfd_setup, eventfd_check },
	{ "signalfd", signalfd_setup, signalfd_check },
	{ "timerfd", timerfd_setup, timerfd_check },
	{ "epoll", epoll_setup, epoll_check },
	{ "epoll-moved", epoll_moved_setup, epoll_moved_check },
	{ "inotify", inotify_setup, inotify_check },
	{ "inotify-gone", inotify_gone_setup, inotify_gone_check },
	{ "inotify-mapped", inotify_mapped_setup, inotify_mapped_check },
	{ "memfd", memfd_setup, memfd_check },
	{ "locks", locks_setup, locks_check },
	{ "locks-mapped", locks_mapped_setup, locks_mapped_check },
	{ "dirs", dirs_setup, dirs_check },
};

static void ghost_small(void)
{
	ghost_setup(5000);
}

static void ghost_big(void)
{
	ghost_setup(2u << 20);
}

int main(int argc, char **argv)
{
	void (*setup)(void) = NULL, (*check)(void) = NULL;

	test_init();
	/* No argument (selfcheck_evfd): the first case. */
	const char *name = argc > 1 ? argv[1] : "eventfd";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!strcmp(name, cases[i].name)) {
			setup = cases[i].setup;
			check = cases[i].check;
		}
	if (!strcmp(name, "ghost") || !strcmp(name, "ghost-big")) {
		setup = name[5] ? ghost_big : ghost_small;
		check = ghost_check;
	}
	CHECK(setup, "unknown case %s", name);
	setup();
	test_ready();
	test_wait_check();
	check();
	stop_child();
	pass();
}
