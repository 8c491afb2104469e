/*
 * timelimit: how often a job has been requeued from a checkpoint at its
 * time limit.  `ckptctl checkpoint vacate JOB --timelimit=requeue:N` (what
 * the batch wrapper runs when the time limit's signal comes) requeues the
 * job only while that count is below N, so that a time limit never
 * extends a job forever.  The count lives next to the job's sets, on the
 * shared storage every run of the job sees wherever Slurm starts it:
 * BASE/JOBID/timelimit-requeues, one line "K N" (K requeues of at most
 * N), written by the job's user (the wrapper runs as the user) with a
 * rename.  Storage ignores it: sets are the numbered directories.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "timelimit.h"

#define COUNT_FILE "timelimit-requeues"

int timelimit_parse(const char *s, uint32_t *max)
{
	char *end;
	unsigned long n;

	if (!strcmp(s, "stop")) {
		*max = 0;
		return 0;
	}
	if (strncmp(s, "requeue:", 8) || s[8] < '1' || s[8] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s + 8, &end, 10);
	if (errno || *end || n > TIMELIMIT_MAX)
		return -EINVAL;
	*max = (uint32_t)n;
	return 0;
}

/* BASE/JOB, opened without following a symlink there. */
static int open_job_dir(const char *base, uint32_t job)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/%u", base, job) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int timelimit_count_read(const char *base, uint32_t job, uint32_t *done, uint32_t *max)
{
	char line[64];
	int dir = open_job_dir(base, job);
	if (dir < 0)
		return dir;
	int fd = openat(dir, COUNT_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int err = fd < 0 ? -errno : 0;
	ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
	if (fd >= 0)
		close(fd);
	close(dir);
	if (err)
		return err;
	line[n > 0 ? n : 0] = '\0';
	unsigned k, m;
	if (sscanf(line, "%u %u", &k, &m) != 2 || k > TIMELIMIT_MAX || m > TIMELIMIT_MAX)
		return -EINVAL;
	*done = k;
	*max = m;
	return 0;
}

int timelimit_count_write(const char *base, uint32_t job, uint32_t done, uint32_t max)
{
	char line[64], tmp[64];
	int len = snprintf(line, sizeof(line), "%u %u\n", done, max);
	snprintf(tmp, sizeof(tmp), "%s.%d", COUNT_FILE, (int)getpid());
	int dir = open_job_dir(base, job);
	if (dir < 0)
		return dir;
	int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = fd < 0 ? -errno : 0;
	errno = 0;
	if (!err && (write(fd, line, (size_t)len) != len || fsync(fd)))
		err = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) && !err)
		err = -errno;
	if (!err && renameat(dir, tmp, dir, COUNT_FILE))
		err = -errno;
	if (err && fd >= 0)
		unlinkat(dir, tmp, 0);
	close(dir);
	return err;
}

void timelimit_print(const char *base, uint32_t job)
{
	uint32_t done, max;
	if (!timelimit_count_read(base, job, &done, &max))
		printf("job %u: time-limit requeues: %u of %u\n", job, done, max);
}
