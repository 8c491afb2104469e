/*
 * infect-target: the task the infect tests freeze and infect.  It checks
 * itself: after the test is done with it, every thread must have gone on
 * exactly as if nothing had happened.
 *
 *   infect-target READY_FD CTL_FD EXPECT_FILE [leak-ok]
 *
 * Threads: the leader (blocked in read(CTL_FD) while the test works),
 * "sleeper" (nanosleep loop: every sleep must last its full length),
 * "fp" (AVX/AVX-512 registers loaded once and compared in a counter loop),
 * and a forked child process (pause loop) for the tree discovery.  Before
 * it signals READY_FD it writes to EXPECT_FILE what the parasite must
 * report (raw sigactions, brk, pdeathsig, per-thread tid address and
 * sigaltstack) and snapshots /proc/self/fd and /proc/self/maps.  When
 * "go[N]" arrives on CTL_FD it checks: the read got it, N SIGUSR1s
 * (sent while it was frozen) were handled, the fp
 * thread's counter still advances with intact registers, sleeps were never
 * cut short, no extra fd, no extra mapping ("leak-ok": extra anonymous
 * rwx mappings are tolerated, the area a self-cure leaves).  Exit 0 = ok.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct thread_info {
	pid_t tid;
	uint64_t tid_address;
	stack_t ss;
};

static struct thread_info info[3]; /* leader, sleeper, fp */
static pthread_barrier_t barrier;
static volatile long fp_counter, sleeps_done;
static volatile int fp_stop, fp_bad, sleep_bad, stop_all;
static volatile long sleep_short_ns;
static const uint64_t pattern[8] __attribute__((aligned(64))) = {
	0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1122334455667788ULL, 0x99aabbccddeeff00ULL,
	0x0f1e2d3c4b5a6978ULL, 0x8796a5b4c3d2e1f0ULL, 0x13579bdf02468aceULL, 0xeca86420fdb97531ULL,
};
static char altstack_main[65536], altstack_sleeper[65536];
static char fds_before[4096], maps_before[65536];

static volatile int usr1_count;

static void handler(int sig)
{
	if (sig == SIGUSR1)
		usr1_count++;
}

static void fail(const char *what)
{
	fprintf(stderr, "infect-target: FAIL: %s\n", what);
	exit(1);
}

static void record_self(int idx)
{
	info[idx].tid = (pid_t)syscall(SYS_gettid);
	prctl(PR_GET_TID_ADDRESS, &info[idx].tid_address);
	sigaltstack(NULL, &info[idx].ss);
}

static void *sleeper(void *arg __attribute__((unused)))
{
	stack_t ss = { .ss_sp = altstack_sleeper, .ss_size = sizeof(altstack_sleeper) };
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* a handler would cut a sleep short */
	sigaltstack(&ss, NULL);
	record_self(1);
	pthread_barrier_wait(&barrier);
	while (!stop_all) {
		struct timespec a, b, d = { 0, 150 * 1000 * 1000 };
		clock_gettime(CLOCK_MONOTONIC, &a);
		int ret = nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
		if (ret) {
			sleep_bad = errno;
		} else if (ns < d.tv_nsec) {
			sleep_bad = -1;
			sleep_short_ns = ns;
		}
		sleeps_done++;
	}
	return NULL;
}

/* ymm8/ymm12 hold the pattern for the whole loop; any corruption of the
 * saved FPU/AVX state shows. */
static void fp_loop_avx(void)
{
	asm volatile("vmovdqa %[pat], %%ymm8\n\t"
		     "vmovdqa %[pat], %%ymm12\n\t"
		     "1: incq %[cnt]\n\t"
		     "vpcmpeqq %[pat], %%ymm8, %%ymm9\n\t"
		     "vpmovmskb %%ymm9, %%eax\n\t"
		     "cmpl $-1, %%eax\n\t"
		     "jne 2f\n\t"
		     "vpcmpeqq %[pat], %%ymm12, %%ymm9\n\t"
		     "vpmovmskb %%ymm9, %%eax\n\t"
		     "cmpl $-1, %%eax\n\t"
		     "jne 2f\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "jmp 3f\n\t"
		     "2: movl $1, %[bad]\n\t"
		     "3: vzeroupper\n\t"
		     : [cnt] "+m"(fp_counter), [bad] "+m"(fp_bad)
		     : [pat] "m"(*(const uint64_t(*)[4])pattern), [stop] "m"(fp_stop)
		     : "rax", "xmm8", "xmm9", "xmm12", "memory", "cc");
}

/* Same with zmm20 (AVX-512 high registers: their own XSAVE component). */
__attribute__((target("avx512f"))) static void fp_loop_avx512(void)
{
	asm volatile("vmovdqa64 %[pat], %%zmm20\n\t"
		     "vmovdqa %[pat], %%ymm8\n\t"
		     "1: incq %[cnt]\n\t"
		     "vpcmpeqq %[pat], %%zmm20, %%k1\n\t"
		     "kmovw %%k1, %%eax\n\t"
		     "cmpl $0xff, %%eax\n\t"
		     "jne 2f\n\t"
		     "vpcmpeqq %[pat], %%ymm8, %%ymm9\n\t"
		     "vpmovmskb %%ymm9, %%eax\n\t"
		     "cmpl $-1, %%eax\n\t"
		     "jne 2f\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "jmp 3f\n\t"
		     "2: movl $1, %[bad]\n\t"
		     "3: vzeroupper\n\t"
		     : [cnt] "+m"(fp_counter), [bad] "+m"(fp_bad)
		     : [pat] "m"(pattern), [stop] "m"(fp_stop)
		     : "rax", "xmm8", "xmm9", "xmm20", "k1", "memory", "cc");
}

static void *fp_thread(void *arg __attribute__((unused)))
{
	unsigned a, b, c, d;
	record_self(2);
	pthread_barrier_wait(&barrier);
	__cpuid_count(7, 0, a, b, c, d);
	if (b & (1u << 16))
		fp_loop_avx512();
	else
		fp_loop_avx();
	return NULL;
}

static void set_sigactions(void)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART | SA_SIGINFO };
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGRTMIN + 3);
	sigaction(SIGUSR1, &sa, NULL);
	struct sigaction on = { .sa_handler = handler, .sa_flags = SA_NODEFER | SA_ONSTACK };
	sigaction(SIGTERM, &on, NULL);
	sigaction(SIGRTMIN + 5, &on, NULL);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGUSR2);
}

static int read_all(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;
	if (fd < 0)
		return -1;
	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
	return 0;
}

static void list_fds(char *buf, size_t size)
{
	DIR *d = opendir("/proc/self/fd");
	int self = dirfd(d);
	struct dirent *de;
	size_t n = 0;
	buf[0] = 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != self)
			n += (size_t)snprintf(buf + n, size - n, "%s ", de->d_name);
	closedir(d);
}

static void write_expect(const char *path)
{
	static char buf[16384];
	size_t n = 0;
	for (int sig = 1; sig <= 64; sig++) {
		struct kernel_sigaction k = { 0 };
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		syscall(SYS_rt_sigaction, sig, NULL, &k, 8);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "sig %d %lx %lx %lx %lx\n", sig,
				      k.handler, k.flags, k.restorer, k.mask);
	}
	int pdeath = 0;
	prctl(PR_GET_PDEATHSIG, &pdeath);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "misc %lx %d\n", syscall(SYS_brk, 0), pdeath);
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "thread %d %lx %lx %lx %x\n",
				      info[i].tid, info[i].tid_address, (unsigned long)info[i].ss.ss_sp,
				      (unsigned long)info[i].ss.ss_size, info[i].ss.ss_flags);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
		fail("cannot write the expect file");
	close(fd);
}

/* Every line of `before` must still be there; extra lines only anonymous
 * rwx ones, and only with leak_ok. */
static void check_maps(int leak_ok)
{
	static char after[65536];
	read_all("/proc/self/maps", after, sizeof(after));
	for (char *line = strtok(after, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(maps_before, line))
			continue;
		char perms[8] = "", path[256] = "";
		sscanf(line, "%*s %7s %*s %*s %*s %255s", perms, path);
		if (leak_ok && !strcmp(perms, "rwxp") && !path[0])
			continue;
		if (strstr(path, "[stack]"))
			continue; /* the stack may have grown */
		fprintf(stderr, "infect-target: extra mapping: %s\n", line);
		fail("mappings changed");
	}
}

static void check_after(const char *got, int leak_ok)
{
	static char fds_after[4096];
	if (strncmp(got, "go", 2))
		fail("read() did not get its data");
	int usr1_want = atoi(got + 2); /* SIGUSR1s sent while we were infected */
	long c0 = fp_counter;
	long s0 = sleeps_done;
	usleep(400 * 1000);
	if (fp_counter == c0)
		fail("fp counter does not advance");
	if (sleeps_done == s0)
		fail("sleeper does not advance");
	if (fp_bad)
		fail("AVX registers corrupted");
	if (usr1_count != usr1_want) {
		fprintf(stderr, "infect-target: %d SIGUSR1, want %d\n", usr1_count, usr1_want);
		fail("a signal was lost or duplicated");
	}
	if (sleep_bad) {
		fprintf(stderr, "infect-target: nanosleep: %s\n",
			sleep_bad > 0 ? strerror(sleep_bad) : "returned early");
		if (sleep_bad < 0)
			fprintf(stderr, "infect-target: slept %ld ns\n", sleep_short_ns);
		fail("a nanosleep was cut short");
	}
	list_fds(fds_after, sizeof(fds_after));
	if (strcmp(fds_before, fds_after)) {
		fprintf(stderr, "infect-target: fds before: %s after: %s\n", fds_before, fds_after);
		fail("fds changed");
	}
	check_maps(leak_ok);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: infect-target READY_FD CTL_FD EXPECT_FILE [leak-ok]\n");
		return 2;
	}
	int ready = atoi(argv[1]), ctl = atoi(argv[2]);
	int leak_ok = argc > 4 && !strcmp(argv[4], "leak-ok");
	pthread_t t1, t2;

	set_sigactions();
	stack_t ss = { .ss_sp = altstack_main, .ss_size = sizeof(altstack_main), .ss_flags = 0 };
	sigaltstack(&ss, NULL);
	record_self(0);
	pthread_barrier_init(&barrier, NULL, 3);
	pthread_create(&t1, NULL, sleeper, NULL);
	pthread_create(&t2, NULL, fp_thread, NULL);
	pthread_barrier_wait(&barrier);
	pid_t child = fork(); /* after the threads: same sigactions as ours */
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	write_expect(argv[3]);
	list_fds(fds_before, sizeof(fds_before));
	read_all("/proc/self/maps", maps_before, sizeof(maps_before));
	if (write(ready, "R", 1) != 1)
		fail("ready");

	char buf[16] = "";
	ssize_t n = read(ctl, buf, sizeof(buf) - 1);
	if (n < 0)
		fail("read() failed");
	buf[n] = 0;
	check_after(buf, leak_ok);
	fp_stop = stop_all = 1;
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	printf("infect-target: ok (%ld fp iterations, %ld sleeps)\n", fp_counter, sleeps_done);
	return 0;
}
