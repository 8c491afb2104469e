/*
 * cr_sched: per-thread names and scheduling, and the NUMA policy survive.
 *
 * Before the dump: the main thread is "cr-sched-main", SCHED_BATCH nice 7,
 * pinned to the last CPU, ioprio best-effort level 3, memory policy
 * MPOL_PREFERRED on node 0 (when the kernel has NUMA); a second thread is
 * "cr-worker", SCHED_OTHER nice 11 with SCHED_RESET_ON_FORK, pinned to CPU
 * 0, ioprio idle.  After the restore every one of these reads back the
 * same (through the thread's tid, from the main thread).
 */
#include "crlib.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO(class, level) (((class) << 13) | (level))
#define MPOL_PREFERRED 1
#define SCHED_FLAG_RESET_ON_FORK 1

struct sched_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

struct tstate {
	char comm[16];
	struct sched_attr attr;
	cpu_set_t cpus;
	long ioprio;
};

static struct tstate before[2];
static pid_t tids[2];
static int numa, mode_before;
static unsigned long nodes_before;
static volatile int worker_ready;

static void take(pid_t tid, struct tstate *s)
{
	char path[64];
	FILE *f;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	f = fopen(path, "re");
	CHECK_SYS(f && fgets(s->comm, sizeof(s->comm), f), "%s", path);
	fclose(f);
	CHECK_SYS(!syscall(SYS_sched_getattr, tid, &s->attr, sizeof(s->attr), 0), "sched_getattr");
	CHECK_SYS(!sched_getaffinity(tid, sizeof(s->cpus), &s->cpus), "sched_getaffinity");
	s->ioprio = syscall(SYS_ioprio_get, 1, tid);
}

static void set_sched(uint32_t policy, int nice, uint64_t flags)
{
	struct sched_attr a = { .size = sizeof(a), .policy = policy, .flags = flags, .nice = nice };
	CHECK_SYS(!syscall(SYS_sched_setattr, 0, &a, 0), "sched_setattr");
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK_SYS(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity %d", cpu);
}

static void *worker(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "cr-worker");
	set_sched(SCHED_OTHER, 11, SCHED_FLAG_RESET_ON_FORK);
	pin(0);
	CHECK_SYS(!syscall(SYS_ioprio_set, 1, 0, IOPRIO(3, 0)), "ioprio_set");
	tids[1] = gettid();
	__atomic_store_n(&worker_ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return NULL;
}

static void setup(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th;

	prctl(PR_SET_NAME, "cr-sched-main");
	set_sched(SCHED_BATCH, 7, 0);
	pin(ncpu > 1 ? (int)ncpu - 1 : 0);
	CHECK_SYS(!syscall(SYS_ioprio_set, 1, 0, IOPRIO(2, 3)), "ioprio_set");
	unsigned long node0 = 1;
	numa = syscall(SYS_set_mempolicy, MPOL_PREFERRED, &node0, 65) == 0;
	if (!numa)
		printf("no NUMA here (%s): memory policy not checked\n", strerror(errno));
	tids[0] = gettid();
	test_block_check();
	CHECK(!pthread_create(&th, NULL, worker, NULL), "pthread_create");
	while (!__atomic_load_n(&worker_ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	for (int i = 0; i < 2; i++)
		take(tids[i], &before[i]);
	if (numa)
		CHECK_SYS(!syscall(SYS_get_mempolicy, &mode_before, &nodes_before, 64, NULL, 0),
			  "get_mempolicy");
}

static void check(void)
{
	for (int i = 0; i < 2; i++) {
		struct tstate now;
		take(tids[i], &now);
		CHECK(!strcmp(now.comm, before[i].comm), "thread %d: name %s, was %s", tids[i],
		      now.comm, before[i].comm);
		CHECK(now.attr.policy == before[i].attr.policy && now.attr.nice == before[i].attr.nice &&
			      now.attr.flags == before[i].attr.flags,
		      "thread %d: policy %u nice %d flags %#llx, was %u %d %#llx", tids[i],
		      now.attr.policy, now.attr.nice, (unsigned long long)now.attr.flags,
		      before[i].attr.policy, before[i].attr.nice,
		      (unsigned long long)before[i].attr.flags);
		CHECK(CPU_EQUAL(&now.cpus, &before[i].cpus), "thread %d: affinity changed", tids[i]);
		CHECK(now.ioprio == before[i].ioprio, "thread %d: ioprio %#lx, was %#lx", tids[i],
		      now.ioprio, before[i].ioprio);
	}
	if (numa) {
		int mode;
		unsigned long nodes = 0;
		CHECK_SYS(!syscall(SYS_get_mempolicy, &mode, &nodes, 64, NULL, 0), "get_mempolicy");
		CHECK(mode == mode_before && nodes == nodes_before,
		      "memory policy %d nodes %#lx, was %d %#lx", mode, nodes, mode_before,
		      nodes_before);
	}
}

int main(void)
{
	test_init();
	setup();
	test_ready();
	test_wait_check();
	check();
	pass();
}
