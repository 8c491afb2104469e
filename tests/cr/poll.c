/*
 * cr_poll: threads blocked in poll(), ppoll() and select() with no timeout
 * are still blocked after the restore, and wake up on data, with no EINTR.
 * poll() is the interesting one: the kernel restarts it through its
 * restart block, which does not survive a checkpoint; the restore must
 * issue it again.
 */
#include "crlib.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

enum { USE_POLL, USE_PPOLL, USE_SELECT, NR_KINDS };
static const char *const names[NR_KINDS] = { "poll", "ppoll", "select" };
static int pipes[NR_KINDS][2];
static int results[NR_KINDS], errors[NR_KINDS];
static volatile int blocked[NR_KINDS];

static int wait_readable(int kind, int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	fd_set set;
	switch (kind) {
	case USE_POLL:
		return poll(&p, 1, -1);
	case USE_PPOLL:
		return ppoll(&p, 1, NULL, NULL);
	default:
		FD_ZERO(&set);
		FD_SET(fd, &set);
		return select(fd + 1, &set, NULL, NULL, NULL);
	}
}

static void *waiter(void *arg)
{
	int kind = (int)(long)arg;
	blocked[kind] = 1;
	results[kind] = wait_readable(kind, pipes[kind][0]);
	errors[kind] = errno;
	return NULL;
}

int main(void)
{
	pthread_t t[NR_KINDS];
	test_init();
	test_block_check();
	for (int k = 0; k < NR_KINDS; k++) {
		CHECK_SYS(!pipe(pipes[k]), "pipe");
		CHECK(!pthread_create(&t[k], NULL, waiter, (void *)(long)k), "pthread_create");
	}
	for (int k = 0; k < NR_KINDS; k++)
		while (!blocked[k])
			usleep(1000);
	usleep(100000); /* inside the call by now */
	test_ready();
	test_wait_check();
	usleep(200000);
	for (int k = 0; k < NR_KINDS; k++)
		CHECK(results[k] == 0, "%s returned %d (%s) before any data", names[k], results[k],
		      strerror(errors[k]));
	for (int k = 0; k < NR_KINDS; k++) {
		CHECK_SYS(write(pipes[k][1], "x", 1) == 1, "write");
		CHECK(!pthread_join(t[k], NULL), "join");
		CHECK(results[k] == 1, "%s returned %d (%s) instead of 1", names[k], results[k],
		      strerror(errors[k]));
	}
	printf("poll, ppoll and select woke up on data\n");
	pass();
}
