/*
 * cr_threads: four threads with TLS and a mutex/condvar ping-pong.
 *
 * Each worker keeps its own __thread values (reached through the fs base)
 * and takes its turn in a ring: wait on the condvar until `turn` is its
 * index, pass the turn on, broadcast.  The ping-pong runs while the tree is
 * dumped (threads blocked in futex waits, one in the middle of a turn) and
 * must keep going after the restore; each thread then checks its TLS, its
 * gettid() and pthread_self(), and /proc/self/task lists the same tids.
 */
#include "crlib.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NR_WORKERS 4
#define TLS_MAGIC 0x5eed0000abcd0000ull

struct worker {
	int idx;
	pthread_t self; /* set by pthread_create */
	pthread_t me;   /* set by the thread itself */
	pid_t tid;
	char error[160];
};

static __thread uint64_t tls_value;
static __thread char tls_name[24];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn, stop;
static uint64_t rounds;
static struct worker workers[NR_WORKERS];

static void check_self(struct worker *w)
{
	char name[24];

	snprintf(name, sizeof(name), "worker-%d", w->idx);
	if (tls_value != TLS_MAGIC + w->idx * 0x1111)
		snprintf(w->error, sizeof(w->error), "worker %d: TLS value %" PRIx64, w->idx,
			 tls_value);
	else if (strcmp(tls_name, name))
		snprintf(w->error, sizeof(w->error), "worker %d: TLS name \"%s\"", w->idx,
			 tls_name);
	else if (gettid() != w->tid)
		snprintf(w->error, sizeof(w->error), "worker %d: gettid() %d, was %d", w->idx,
			 gettid(), w->tid);
	else if (!pthread_equal(pthread_self(), w->me))
		snprintf(w->error, sizeof(w->error), "worker %d: pthread_self() changed", w->idx);
}

static void *work(void *arg)
{
	struct worker *w = arg;

	test_block_check();
	tls_value = TLS_MAGIC + w->idx * 0x1111;
	snprintf(tls_name, sizeof(tls_name), "worker-%d", w->idx);
	pthread_mutex_lock(&lock);
	w->tid = gettid();
	w->me = pthread_self();
	for (;;) {
		while (turn != w->idx && !stop)
			pthread_cond_wait(&cond, &lock);
		if (stop)
			break;
		if (tls_value != TLS_MAGIC + w->idx * 0x1111) {
			check_self(w);
			stop = 1;
		}
		turn = (turn + 1) % NR_WORKERS;
		rounds++;
		cr_shared.progress = rounds;
		pthread_cond_broadcast(&cond);
	}
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	check_self(w);
	return NULL;
}

/* Wait (mutex held) until `rounds` reaches target; 0, or -1 after 20 s. */
static int wait_rounds(uint64_t target)
{
	struct timespec end;

	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 20;
	while (rounds < target && !stop)
		if (pthread_cond_timedwait(&cond, &lock, &end) == ETIMEDOUT)
			return -1;
	return stop ? -1 : 0;
}

static void check_task_list(void)
{
	int found = 0, i, n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");

	CHECK_SYS(d, "opendir /proc/self/task");
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		for (i = 0; i < NR_WORKERS; i++)
			found += atoi(de->d_name) == workers[i].tid;
	}
	closedir(d);
	CHECK(n == NR_WORKERS + 1 && found == NR_WORKERS,
	      "/proc/self/task: %d threads, %d of the old tids", n, found);
}

int main(void)
{
	uint64_t before;
	int i;

	test_init();
	tls_value = 42;
	test_block_check(); /* inherited by the threads */
	for (i = 0; i < NR_WORKERS; i++) {
		workers[i].idx = i;
		CHECK(!pthread_create(&workers[i].self, NULL, work, &workers[i]), "pthread_create");
	}
	pthread_mutex_lock(&lock);
	CHECK(!wait_rounds(10000), "ping-pong does not start");
	pthread_mutex_unlock(&lock);
	test_ready();
	test_wait_check();

	check_task_list();
	CHECK(tls_value == 42, "main thread TLS %" PRIu64, tls_value);
	pthread_mutex_lock(&lock);
	before = rounds;
	CHECK(!wait_rounds(before + 10000), "ping-pong stalled at round %" PRIu64, rounds);
	stop = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < NR_WORKERS; i++)
		CHECK(!pthread_join(workers[i].self, NULL), "pthread_join");
	for (i = 0; i < NR_WORKERS; i++)
		CHECK(!workers[i].error[0], "%s", workers[i].error);
	printf("%" PRIu64 " rounds, %" PRIu64 " after the check\n", rounds, rounds - before);
	pass();
}
