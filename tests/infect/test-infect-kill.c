/*
 * test-infect-kill: the dumper dies, the task lives on (self-cure).
 *
 *   test-infect-kill PATH_TO_INFECT_TARGET [ROUNDS]
 *
 * ROUNDS times (default 20): a driver process freezes infect-target's
 * tree and then loops infect / every query / cure; we SIGKILL it after a
 * random delay spread over the whole sequence (freeze included).  After
 * each kill every thread of the tree must be running again: not traced
 * (TracerPid: 0) and not stopped.  At the end the target checks itself
 * (registers, AVX state, sleeps, read(), fds; the areas that self-cures
 * leave mapped are tolerated) and must exit 0.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "freeze.h"
#include "infect.h"

static pid_t target;

#define FAIL(...)                                                 \
	do {                                                      \
		if (target > 0)                                   \
			kill(target, SIGKILL);                    \
		fprintf(stderr, "test-infect-kill: FAIL: ");      \
		fprintf(stderr, __VA_ARGS__);                     \
		fprintf(stderr, "\n");                            \
		exit(1);                                          \
	} while (0)

static long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* The driver: never returns; any failure before the kill is reported
 * by its exit status. */
static void driver(pid_t target, int report)
{
	struct frozen_tree tree;
	if (freeze_tree(target, &tree))
		_exit(10);
	for (long cycles = 0;; cycles++) {
		for (int t = 0; t < tree.nr_tasks; t++) {
			const struct frozen_task *task = &tree.tasks[t];
			struct infect_ctl *ctl;
			struct parasite_sigaction sa[64];
			struct parasite_misc misc;
			uint64_t a, b;
			uint32_t f;
			if (infect_start(task, &ctl))
				_exit(11);
			if (infect_get_sigactions(ctl, sa) || infect_get_misc(ctl, &misc))
				_exit(12);
			for (int i = 0; i < task->nr_threads; i++)
				if (infect_get_tid_address(ctl, i, &a) ||
				    infect_get_sigaltstack(ctl, i, &a, &b, &f))
					_exit(13);
			if (infect_cure(ctl))
				_exit(14);
		}
		if (write(report, &cycles, sizeof(cycles)) < 0)
			_exit(15);
	}
}

static int read_status_field(const char *path, const char *key, char *out, size_t size)
{
	char line[256];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int found = -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			size_t n = strlen(line + strlen(key));
			if (n >= size)
				n = size - 1;
			memcpy(out, line + strlen(key), n);
			out[n] = '\0';
			found = 0;
		}
	fclose(f);
	return found;
}

/* 1 if every thread of pid is untraced and not stopped. */
static int threads_free(pid_t pid, char *why, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(why, size, "pid %d is gone", pid);
		return 0;
	}
	struct dirent *de;
	int ok = 1;
	while ((de = readdir(d)) && ok) {
		char st[64], tracer[64], spath[320];
		if (de->d_name[0] == '.')
			continue;
		snprintf(spath, sizeof(spath), "/proc/%d/task/%s/status", pid, de->d_name);
		if (read_status_field(spath, "State:\t", st, sizeof(st)) ||
		    read_status_field(spath, "TracerPid:\t", tracer, sizeof(tracer)))
			continue;
		if (atoi(tracer) != 0 || st[0] == 'T' || st[0] == 't' || st[0] == 'Z') {
			snprintf(why, size, "tid %s: state %c tracer %d", de->d_name, st[0], atoi(tracer));
			ok = 0;
		}
	}
	closedir(d);
	return ok;
}

/* The target's forked child, from /proc/PID/stat. */
static pid_t find_child(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;
	while (d && (de = readdir(d)) && !found) {
		char path[64], buf[512];
		pid_t pid = atoi(de->d_name), ppid;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = pid > 0 ? fopen(path, "r") : NULL;
		if (!f)
			continue;
		char *p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == parent)
			found = pid;
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

static pid_t start_target(const char *exe, int *ctl_w, char *expect)
{
	int ready[2], ctl[2];
	if (pipe(ready) || pipe(ctl))
		FAIL("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		char r[16], c[16];
		close(ready[0]);
		close(ctl[1]);
		snprintf(r, sizeof(r), "%d", ready[1]);
		snprintf(c, sizeof(c), "%d", ctl[0]);
		execl(exe, exe, r, c, expect, "leak-ok", NULL);
		_exit(127);
	}
	close(ready[1]);
	close(ctl[0]);
	char b;
	if (read(ready[0], &b, 1) != 1)
		FAIL("target did not get ready");
	close(ready[0]);
	*ctl_w = ctl[1];
	return pid;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		FAIL("usage: test-infect-kill PATH_TO_INFECT_TARGET [ROUNDS]");
	int rounds = argc > 2 ? atoi(argv[2]) : 20, ctl_w, status;
	char expect[] = "/tmp/infect-kill-XXXXXX";
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	close(mkstemp(expect));
	srand((unsigned)(now_us() ^ getpid()));
	target = start_target(argv[1], &ctl_w, expect);
	usleep(100 * 1000);
	pid_t child = find_child(target);
	if (!child)
		FAIL("the target's child not found");

	/* Measure one cycle so that the kills spread over all of it. */
	long cycle_us = 20000;
	for (int r = 0; r < rounds; r++) {
		int rep[2];
		if (pipe(rep))
			FAIL("pipe");
		long t0 = now_us();
		pid_t d = fork();
		if (d == 0) {
			close(rep[0]);
			driver(target, rep[1]);
		}
		close(rep[1]);
		long delay = r == 0 ? 0 : rand() % (2 * cycle_us);
		if (r == 0) {
			long cycles;
			if (read(rep[0], &cycles, sizeof(cycles)) == sizeof(cycles))
				cycle_us = now_us() - t0;
			delay = rand() % cycle_us;
		}
		usleep((useconds_t)delay);
		kill(d, SIGKILL);
		waitpid(d, &status, 0);
		close(rep[0]);
		if (!WIFSIGNALED(status))
			FAIL("round %d: driver failed before the kill: status %x", r, status);
		char why[512] = "";
		int ok = 0;
		for (int i = 0; i < 200 && !ok; i++) {
			ok = threads_free(target, why, sizeof(why)) &&
			     threads_free(child, why, sizeof(why));
			if (!ok)
				usleep(10 * 1000);
		}
		if (!ok)
			FAIL("round %d (killed after %ld us): %s", r, delay, why);
		printf("round %d: killed after %ld us (cycle %ld us): target runs on\n", r, delay,
		       cycle_us);
	}
	if (write(ctl_w, "go", 2) != 2)
		FAIL("write go");
	if (waitpid(target, &status, 0) != target || !WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("target failed its self-check: status %x", status);
	unlink(expect);
	printf("test-infect-kill: PASS\n");
	return 0;
}
