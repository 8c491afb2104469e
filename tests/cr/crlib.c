/*
 * crlib: see crlib.h.  The check handler only sets a flag; test_wait_check()
 * waits for it with sigsuspend() so that no wake-up can be lost.
 */
#include "crlib.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>
#include <unistd.h>

struct cr_shared cr_shared;

static volatile sig_atomic_t check_flag;
static pid_t start_pid;
static pid_t start_tid;

static void on_check(int sig)
{
	(void)sig;
	check_flag = 1;
}

void test_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_check;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(CR_CHECK_SIGNAL, &sa, NULL))
		fail_errno("sigaction(check signal)");
	start_pid = getpid();
	start_tid = gettid();
	setvbuf(stdout, NULL, _IONBF, 0);
}

void test_ready(void)
{
	const char *path = getenv("CR_READY");
	char tmp[4096], line[64];
	int fd, len;

	if (!path)
		return; /* run by hand: nobody waits */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(line, sizeof(line), "%d %p\n", getpid(), (void *)&cr_shared);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_errno("open %s", tmp);
	if (write_full(fd, line, len) != len)
		fail_errno("write %s", tmp);
	if (close(fd))
		fail_errno("close %s", tmp);
	/* rename: the harness never sees a half-written file */
	if (rename(tmp, path))
		fail_errno("rename %s", tmp);
}

void test_block_check(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, CR_CHECK_SIGNAL);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		fail("pthread_sigmask failed");
}

void test_wait_check(void)
{
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, CR_CHECK_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &block, &old))
		fail_errno("sigprocmask");
	sigdelset(&old, CR_CHECK_SIGNAL);
	/* the flag is tested with the signal blocked: no lost wake-up */
	while (!check_flag)
		sigsuspend(&old);
	if (sigprocmask(SIG_SETMASK, &old, NULL))
		fail_errno("sigprocmask");
	CHECK(getpid() == start_pid, "getpid() %d, was %d", getpid(), start_pid);
	CHECK(gettid() == start_tid, "gettid() %d, was %d", gettid(), start_tid);
}

int test_check_requested(void)
{
	return check_flag;
}

void run_case(const struct cr_case *cases, size_t n, int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : cases[0].name;
	const struct cr_case *c = NULL;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, cases[i].name))
			c = &cases[i];
	CHECK(c, "unknown case %s", name);
	c->setup();
	test_ready();
	test_wait_check();
	c->check();
}

const char *test_dir(void)
{
	const char *dir = getenv("CR_DIR");

	return dir ? dir : ".";
}

void pass(void)
{
	printf("PASS\n");
	exit(0);
}

static _Noreturn void vfail(const char *fmt, va_list ap, int err)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err)
		printf("FAIL (pid %d): %s: %s\n", getpid(), msg, strerror(err));
	else
		printf("FAIL (pid %d): %s\n", getpid(), msg);
	exit(1);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(fmt, ap, 0);
}

void fail_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vfail(fmt, ap, err ? err : EIO);
}

uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

uint64_t hash64(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t w;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; len; len--, p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

void move_fd(int fd, int to)
{
	CHECK_SYS(fd >= 0 && dup2(fd, to) == to, "dup2 to %d", to);
	if (fd != to)
		close(fd);
}

void test_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", test_dir(), name);
}

ssize_t write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += n;
	}
	return done;
}

const char *snapshot_file(const char *path, int slot)
{
	static char bufs[4][1 << 15];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_full(fd, bufs[slot], sizeof(bufs[slot]) - 1);

	if (n < 0)
		fail_errno("reading %s", path);
	close(fd);
	bufs[slot][n] = 0;
	return bufs[slot];
}

const char *snapshot_fds(int slot)
{
	static char bufs[4][8192];
	char link[64], target[256];
	int fd, len = 0;
	ssize_t n;

	for (fd = 0; fd < 128; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		len += snprintf(bufs[slot] + len, sizeof(bufs[slot]) - len, "%d -> %s\n", fd,
				target);
	}
	return bufs[slot];
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int named_cgroup_exists(const char *name)
{
	char line[4096], want[128];
	int found = 0;
	snprintf(want, sizeof(want), ":name=%s:", name);
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	return found;
}

/* The kernel drops a named hierarchy at an unmount that finds it without
 * child cgroups, once the last reference to it goes (a moment later: the
 * css_sets of tasks that were in it are freed after RCU).  But a child
 * just removed stays listed until its own references go: unmounted right
 * after that rmdir, the hierarchy stays for good (one more per test run).
 * So wait for it to go, and where it does not, mount it again (it is
 * alive, not dying) and unmount it once more. */
static int named_cgroup_gone(const char *name)
{
	for (int i = 0; i < 100; i++) {
		if (!named_cgroup_exists(name))
			return 1;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int drop_named_cgroup(const char *dir, const char *name)
{
	char opts[128];
	snprintf(opts, sizeof(opts), "none,name=%s", name);
	for (int i = 0; i < 5; i++) {
		umount2(dir, MNT_DETACH);
		if (named_cgroup_gone(name))
			return 0;
		if (mount("none", dir, "cgroup", 0, opts))
			return -1;
	}
	umount2(dir, MNT_DETACH);
	return -1;
}
