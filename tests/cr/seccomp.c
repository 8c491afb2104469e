/*
 * cr_seccomp: stacked seccomp filters survive, in every thread, in order.
 *
 * Before the dump (no_new_privs set): filter 1 makes uname(2) fail with
 * EPERM and getpgrp(2) with EACCES; filter 2, installed after it, makes
 * uname fail with ENOENT (of two ERRNO results the newer filter's wins).
 * A worker thread is created after both.  After the restore: uname fails
 * with ENOENT (order kept), getpgrp with EACCES, the rest works, and both
 * threads show 2 filters in /proc.
 *
 * With the argument "differ" (cr_seccomp_threads) the worker adds a third
 * filter of its own (getppid(2) fails with EPERM): after the restore the
 * worker has 3 filters, the main thread its 2 (getppid works there).
 *
 * With "no-nnp" (cr_seccomp_no_nnp, a root restore) the filters are
 * installed without no_new_privs, under CAP_SYS_ADMIN, the second one also
 * making setresuid(2) fail with EPERM, and the process then
 * drops CAP_SYS_ADMIN: the restore must install them while it still has
 * CAP_SYS_ADMIN to lend, after its own setresuid, and leave the
 * process without CAP_SYS_ADMIN and without no_new_privs.
 *
 * With "tsync" (cr_seccomp_tsync) the second filter makes socket(2) and
 * connect(2) fail with EPERM, as the parasite needs them (the dump seizes
 * with PTRACE_O_SUSPEND_SECCOMP), and after the restore the main thread
 * adds a third filter with SECCOMP_FILTER_FLAG_TSYNC: the kernel accepts
 * it only if every thread holds the very filter objects of the main
 * thread, which the worker then shows as its third filter.
 *
 * With "strict" (cr_seccomp_strict) there are no filters: a thread enters
 * strict mode and waits in read(2) on a pipe; after the restore it is
 * still in strict mode, answers one byte through a second pipe, and
 * leaves with exit(2) (the only syscalls strict mode allows).
 */
#include "crlib.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static pid_t worker_tid;
static volatile int ready;
static int differ, no_nnp, tsync;

#define CAP_SYS_ADMIN_BIT (1ULL << 21)

static void install_flags(unsigned flags, int nr1, int err1, int nr2, int err2)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr1, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err1),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err2),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };

	long ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	CHECK_SYS(ret >= 0, "seccomp");
	CHECK(ret == 0, "seccomp: thread %ld does not share the main thread's filters", ret);
}

static void install(int nr1, int err1, int nr2, int err2)
{
	install_flags(0, nr1, err1, nr2, err2);
}

static int filters_of(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	const char *s = strstr(snapshot_file(path, 0), "Seccomp_filters:");
	return s ? atoi(s + 16) : -1;
}

static unsigned long long status_hex(const char *key)
{
	const char *s = strstr(snapshot_file("/proc/self/status", 0), key);
	return s ? strtoull(s + strlen(key), NULL, 16) : ~0ULL;
}

/* capset(2) with the raw ABI: CAP_SYS_ADMIN out of every set. */
static void drop_sys_admin(void)
{
	uint32_t header[2] = { 0x20080522, 0 }, data[6];

	CHECK_SYS(!syscall(SYS_capget, header, data), "capget");
	for (int i = 0; i < 3; i++)
		data[i] &= ~(uint32_t)CAP_SYS_ADMIN_BIT;
	CHECK_SYS(!syscall(SYS_capset, header, data), "capset");
}

static void check_no_nnp(void)
{
	errno = 0;
	CHECK(syscall(SYS_setresuid, -1, -1, -1) < 0 && errno == EPERM,
	      "setresuid: %s, expected EPERM", strerror(errno));
	CHECK(!(status_hex("CapEff:") & CAP_SYS_ADMIN_BIT) &&
	      !(status_hex("CapPrm:") & CAP_SYS_ADMIN_BIT), "CAP_SYS_ADMIN is back");
	CHECK(status_hex("NoNewPrivs:") == 0, "no_new_privs is set");
}

static void check_filters(void)
{
	struct utsname u;

	errno = 0;
	CHECK(uname(&u) < 0 && errno == ENOENT, "uname: %s, expected ENOENT", strerror(errno));
	errno = 0;
	CHECK(syscall(SYS_getpgrp) < 0 && errno == EACCES, "getpgrp: %s, expected EACCES",
	      strerror(errno));
	CHECK(getpid() > 0 && getppid() > 0, "getpid/getppid");
}

static void *worker(void *arg)
{
	(void)arg;
	if (differ)
		install(SYS_getppid, EPERM, SYS_getppid, EPERM);
	worker_tid = gettid();
	__atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return NULL;
}

static int to_strict[2], from_strict[2];

static void *strict_worker(void *arg)
{
	char c;
	(void)arg;
	worker_tid = gettid();
	CHECK_SYS(!prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0), "strict mode");
	__atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
	/* From here on: read, write, exit only. */
	if (read(to_strict[0], &c, 1) == 1) {
		c++;
		if (write(from_strict[1], &c, 1) != 1)
			syscall(SYS_exit, 1);
	}
	syscall(SYS_exit, 0);
	return NULL;
}

static void run_strict(void)
{
	pthread_t th;
	char c = 'a';

	CHECK_SYS(!pipe(to_strict) && !pipe(from_strict), "pipe");
	test_block_check();
	CHECK(!pthread_create(&th, NULL, strict_worker, NULL), "pthread_create");
	while (!__atomic_load_n(&ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	sigset_t check;
	sigemptyset(&check);
	sigaddset(&check, CR_CHECK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &check, NULL);
	test_ready();
	test_wait_check();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", worker_tid);
	const char *s = strstr(snapshot_file(path, 0), "Seccomp:");
	CHECK(s && atoi(s + 8) == 1, "worker: Seccomp %d, not strict (1)", s ? atoi(s + 8) : -1);
	CHECK_SYS(write(to_strict[1], &c, 1) == 1, "write");
	CHECK_SYS(read(from_strict[0], &c, 1) == 1, "read");
	CHECK(c == 'b', "strict worker answered %c", c);
	CHECK(!pthread_join(th, NULL), "pthread_join");
	pass();
}

int main(int argc, char **argv)
{
	pthread_t th;

	test_init();
	differ = argc > 1 && !strcmp(argv[1], "differ");
	no_nnp = argc > 1 && !strcmp(argv[1], "no-nnp");
	tsync = argc > 1 && !strcmp(argv[1], "tsync");
	if (argc > 1 && !strcmp(argv[1], "strict"))
		run_strict();
	if (!no_nnp)
		CHECK_SYS(!prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
	install(SYS_uname, EPERM, SYS_getpgrp, EACCES);
	if (no_nnp) {
		install(SYS_setresuid, EPERM, SYS_uname, ENOENT);
		drop_sys_admin();
		check_no_nnp();
	} else if (tsync) {
		install(SYS_socket, EPERM, SYS_connect, EPERM);
		install(SYS_uname, ENOENT, SYS_uname, ENOENT);
	} else {
		install(SYS_uname, ENOENT, SYS_uname, ENOENT);
	}
	check_filters();
	test_block_check();
	CHECK(!pthread_create(&th, NULL, worker, NULL), "pthread_create");
	while (!__atomic_load_n(&ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	sigset_t check;
	sigemptyset(&check);
	sigaddset(&check, CR_CHECK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &check, NULL);
	test_ready();
	test_wait_check();
	check_filters();
	if (no_nnp)
		check_no_nnp();
	CHECK(filters_of(worker_tid) == 2 + tsync + differ, "worker: %d filters",
	      filters_of(worker_tid));
	if (tsync)
		install_flags(SECCOMP_FILTER_FLAG_TSYNC, SYS_getpgid, EPERM, SYS_getpgid, EPERM);
	int want = 2 + 2 * tsync;
	CHECK(filters_of(gettid()) == want, "main thread: %d filters", filters_of(gettid()));
	CHECK(filters_of(worker_tid) == want + differ, "worker: %d filters", filters_of(worker_tid));
	pass();
}
