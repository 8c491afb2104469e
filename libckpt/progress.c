/*
 * progress: see progress.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "proc.h"

struct progress {
	ckpt_progress_fn fn;
	void *arg;
	const char *phase;
	uint64_t total, base;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
};

static int parse_key(char *line, void *arg, const char *key)
{
	size_t n = strlen(key);
	if (!strncmp(line, key, n))
		*(uint64_t *)arg = strtoull(line + n, NULL, 10);
	return 0;
}

static int parse_rchar(char *line, void *arg)
{
	return parse_key(line, arg, "rchar:");
}

static uint64_t read_rchar(void)
{
	uint64_t v = 0;
	proc_each_line("/proc/self/io", parse_rchar, &v);
	return v;
}

/* statm, not smaps_rollup: its resident field is the mm's RSS counters,
 * where smaps_rollup walks every page table (ms per GiB, and the tree is
 * frozen by then). */
uint64_t progress_rss(pid_t pid)
{
	char path[64], buf[256];
	unsigned long long size = 0, resident = 0;
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	ssize_t n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (n <= 0 || sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void report(struct progress *p)
{
	uint64_t done = read_rchar() - p->base;
	p->fn(p->arg, p->phase, done < p->total ? done : p->total, p->total);
}

static void *sampler(void *arg)
{
	struct progress *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (!p->stop)
			report(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct progress *progress_start(ckpt_progress_fn fn, void *arg, const char *phase,
				uint64_t total)
{
	if (!fn)
		return NULL;
	struct progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	*p = (struct progress){ .fn = fn, .arg = arg, .phase = phase, .total = total,
				.base = read_rchar() };
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->thread, NULL, sampler, p)) {
		free(p);
		return NULL;
	}
	return p;
}

void progress_stop(struct progress *p, int finished)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (finished)
		p->fn(p->arg, p->phase, p->total, p->total);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

uint64_t progress_dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;
	while (d && (de = readdir(d)))
		if (!fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	if (d)
		closedir(d);
	return sum;
}
