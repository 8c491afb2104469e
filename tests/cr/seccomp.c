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
 * With the argument "differ" the worker adds a third filter of its own:
 * threads with different filters are not supported, and the dump must
 * be refused (bad_dump_seccomp_threads) with the filters left in place.
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
static int differ;

static void install(int nr1, int err1, int nr2, int err2)
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

	CHECK_SYS(!syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), "seccomp");
}

static int filters_of(pid_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	const char *s = strstr(snapshot_file(path, 0), "Seccomp_filters:");
	return s ? atoi(s + 16) : -1;
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

int main(int argc, char **argv)
{
	pthread_t th;

	test_init();
	differ = argc > 1 && !strcmp(argv[1], "differ");
	CHECK_SYS(!prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
	install(SYS_uname, EPERM, SYS_getpgrp, EACCES);
	install(SYS_uname, ENOENT, SYS_uname, ENOENT);
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
	CHECK(filters_of(gettid()) == 2, "main thread: %d filters", filters_of(gettid()));
	CHECK(filters_of(worker_tid) == 2 + differ, "worker: %d filters", filters_of(worker_tid));
	pass();
}
