/*
 * test-freeze-race: freeze_tree() catches a fork or clone racing it.
 *
 * A "forker" process keeps creating short-lived threads (one of its
 * threads does nothing else) and long-lived children (every child also
 * starts a thread).  Many times while that
 * goes on: freeze the tree, then check that it is complete and stable:
 * every process whose parent is in the tree is in it, every thread of
 * every process is traced by us and stopped; then resume it and check
 * that nothing stays traced.  We are a child subreaper and kill the whole
 * tree (one process group) at the end.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "freeze.h"

#define MAX_CHILDREN 150

static pid_t forker;

#define FAIL(...)                                            \
	do {                                                 \
		fprintf(stderr, "test-freeze-race: FAIL: "); \
		fprintf(stderr, __VA_ARGS__);                \
		fprintf(stderr, "\n");                       \
		kill(-forker, SIGKILL);                      \
		exit(1);                                     \
	} while (0)

static void *short_thread(void *arg)
{
	usleep((useconds_t)(long)arg);
	return NULL;
}

static void spawn_thread(long us)
{
	pthread_t t;
	if (pthread_create(&t, NULL, short_thread, (void *)us) == 0)
		pthread_detach(t);
}

/* Thread churn: a new thread every few microseconds. */
static void *spawner(void *arg)
{
	for (;;)
		spawn_thread((long)arg);
	return NULL;
}

static void run_forker(void)
{
	pthread_t t;
	setpgid(0, 0); /* the whole tree in one group, killed at the end */
	pthread_create(&t, NULL, spawner, (void *)0L);
	for (int n = 0;; n++) {
		spawn_thread(500);
		if (n % 4 == 0 && n / 4 < MAX_CHILDREN && fork() == 0) {
			spawn_thread(1000000000L);
			for (;;)
				pause();
		}
		usleep(1000);
	}
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	int ppid = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
		ppid = -1;
	fclose(f);
	return ppid;
}

static int in_tree(const struct frozen_tree *t, pid_t pid)
{
	for (int i = 0; i < t->nr_tasks; i++)
		if (t->tasks[i].pid == pid)
			return i;
	return -1;
}

static int tracer_of(pid_t pid, const char *tid)
{
	char path[320], line[256];
	int tracer = -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, tid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "TracerPid:", 10))
			tracer = atoi(line + 10);
	if (f)
		fclose(f);
	return tracer;
}

/* Every thread of every task traced by `want`; every frozen thread listed. */
static void check_threads(const struct frozen_tree *t, int want)
{
	for (int i = 0; i < t->nr_tasks; i++) {
		char path[64];
		int listed = 0;
		snprintf(path, sizeof(path), "/proc/%d/task", t->tasks[i].pid);
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			int tracer = tracer_of(t->tasks[i].pid, de->d_name);
			if (tracer != want && tracer != -1) /* -1: it just exited */
				FAIL("pid %d tid %s: tracer %d, want %d", t->tasks[i].pid, de->d_name,
				     tracer, want);
			listed++;
		}
		if (d)
			closedir(d);
		if (want && listed != t->tasks[i].nr_threads)
			FAIL("pid %d: %d threads listed, %d frozen", t->tasks[i].pid, listed,
			     t->tasks[i].nr_threads);
	}
}

static void check_complete(const struct frozen_tree *t)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		if (pid <= 0 || in_tree(t, pid) >= 0)
			continue;
		if (in_tree(t, ppid_of(pid)) >= 0)
			FAIL("pid %d (child of %d) not frozen", pid, ppid_of(pid));
	}
	closedir(d);
	for (int i = 1; i < t->nr_tasks; i++)
		if (in_tree(t, t->tasks[i].ppid) < 0 || in_tree(t, t->tasks[i].ppid) >= i)
			FAIL("task %d: parent %d not before it", t->tasks[i].pid, t->tasks[i].ppid);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 40, max_tasks = 0;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	forker = fork();
	if (forker == 0)
		run_forker();
	setpgid(forker, forker); /* no race with the child's own setpgid */
	usleep(5000);
	for (int r = 0; r < rounds; r++) {
		struct frozen_tree tree;
		if (freeze_tree(forker, &tree))
			FAIL("round %d: freeze_tree", r);
		check_complete(&tree);
		check_threads(&tree, getpid());
		if (tree.nr_tasks > max_tasks)
			max_tasks = tree.nr_tasks;
		unfreeze_tree(&tree, UNFREEZE_RESUME);
		check_threads(&tree, 0);
		frozen_tree_free(&tree);
		usleep((useconds_t)(rand() % 5000));
	}
	kill(-forker, SIGKILL);
	/* Orphaned grandchildren come to us (subreaper): reap them all. */
	while (waitpid(-1, NULL, 0) > 0)
		;
	printf("test-freeze-race: PASS (%d rounds, up to %d tasks)\n", rounds, max_tasks);
	return 0;
}
