/*
 * cr_vdso: the vDSO works after the restore.
 *
 * glibc resolved the vDSO functions at startup and calls them through
 * those addresses: the [vdso] and [vvar] mappings must come back where
 * they were, with live clock data.  The program reads clocks in a loop
 * while it is dumped; after the restore the vDSO clocks must agree with
 * the clock_gettime system call (a stale copy of vvar would freeze them),
 * go on increasing from the values seen before the dump, and advance in
 * real time.  getpid()/gettid() unchanged (crlib), sched_getcpu() sane.
 */
#include "crlib.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000ll

static int64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * SEC + ts->tv_nsec;
}

static int64_t vdso_ns(clockid_t clk)
{
	struct timespec ts;

	CHECK_SYS(!clock_gettime(clk, &ts), "clock_gettime(%d)", clk);
	return ts_ns(&ts);
}

static int64_t sys_ns(clockid_t clk)
{
	struct timespec ts;

	CHECK_SYS(!syscall(SYS_clock_gettime, clk, &ts), "SYS_clock_gettime(%d)", clk);
	return ts_ns(&ts);
}

/* The lines of /proc/self/maps naming name ("[vdso]"), or "". */
static void mapping_of(const char *name, char *out, size_t len)
{
	static char buf[1 << 16];
	char *line;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_full(fd, buf, sizeof(buf) - 1);

	CHECK_SYS(n >= 0, "reading /proc/self/maps");
	close(fd);
	buf[n] = 0;
	*out = 0;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, name))
			snprintf(out + strlen(out), len - strlen(out), "%.*s ",
				 (int)strcspn(line, " "), line);
}

static void check_agree(clockid_t clk, const char *name, int64_t slack)
{
	int64_t a = sys_ns(clk), v = vdso_ns(clk), b = sys_ns(clk);

	CHECK(v >= a - slack && v <= b + slack,
	      "%s: vDSO says %lld ns, the system call %lld..%lld", name, (long long)v,
	      (long long)a, (long long)b);
}

static void check_advances(void)
{
	int64_t v0 = vdso_ns(CLOCK_MONOTONIC), s0 = sys_ns(CLOCK_MONOTONIC);

	while (sys_ns(CLOCK_MONOTONIC) - s0 < 20000000)
		;
	CHECK(vdso_ns(CLOCK_MONOTONIC) - v0 >= 10000000,
	      "vDSO CLOCK_MONOTONIC does not advance (20 ms passed)");
}

int main(void)
{
	char vdso_was[256], vvar_was[256], now[256];
	int64_t last_mono = 0, m, first_real;
	struct timeval tv;
	int cpu;

	test_init();
	mapping_of("[vdso]", vdso_was, sizeof(vdso_was));
	mapping_of("[vvar", vvar_was, sizeof(vvar_was));
	CHECK(vdso_was[0], "no [vdso] mapping");
	first_real = vdso_ns(CLOCK_REALTIME);
	test_ready();
	while (!test_check_requested()) {
		m = vdso_ns(CLOCK_MONOTONIC);
		CHECK(m >= last_mono, "CLOCK_MONOTONIC went back");
		last_mono = m;
		cr_shared.progress++;
	}

	mapping_of("[vdso]", now, sizeof(now));
	CHECK(!strcmp(now, vdso_was), "[vdso] at %s, was at %s", now, vdso_was);
	mapping_of("[vvar", now, sizeof(now));
	CHECK(!strcmp(now, vvar_was), "[vvar] at %s, was at %s", now, vvar_was);
	m = vdso_ns(CLOCK_MONOTONIC);
	CHECK(m >= last_mono && m - last_mono < 3600 * SEC,
	      "CLOCK_MONOTONIC %lld after %lld before the check", (long long)m,
	      (long long)last_mono);
	check_agree(CLOCK_MONOTONIC, "CLOCK_MONOTONIC", 0);
	check_agree(CLOCK_REALTIME, "CLOCK_REALTIME", 0);
	check_agree(CLOCK_BOOTTIME, "CLOCK_BOOTTIME", 0);
	/* coarse clocks tick with the scheduler: a few ms of slack */
	check_agree(CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", 20000000);
	m = vdso_ns(CLOCK_REALTIME);
	CHECK(m >= first_real && m - first_real < 3600 * SEC, "CLOCK_REALTIME %lld, %lld at start",
	      (long long)m, (long long)first_real);
	check_advances();
	CHECK_SYS(!gettimeofday(&tv, NULL), "gettimeofday");
	CHECK(tv.tv_sec >= first_real / SEC && tv.tv_sec <= time(NULL) + 1,
	      "gettimeofday() says %lld", (long long)tv.tv_sec);
	cpu = sched_getcpu();
	CHECK(cpu >= 0 && cpu < sysconf(_SC_NPROCESSORS_CONF), "sched_getcpu() %d", cpu);
	printf("%llu clock reads\n", (unsigned long long)cr_shared.progress);
	pass();
}
