/*
 * proc: the shared line reader for /proc files and a few tiny helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "proc.h"

int proc_each_line(const char *path, int (*fn)(char *line, void *arg), void *arg)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		ret = fn(line, arg);
		if (ret)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}

int text_each_line(char *text, int (*fn)(char *line, void *arg), void *arg)
{
	int ret = 0;
	for (char *line = text, *nl; !ret && line && (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		ret = fn(line, arg);
		*nl = '\n';
	}
	return ret;
}

struct field_req {
	const char *key;
	size_t keylen;
	char *buf;
	size_t len;
	int found;
};

static int match_field(char *line, void *arg)
{
	struct field_req *r = arg;
	if (strncmp(line, r->key, r->keylen) || line[r->keylen] != ':')
		return 0;
	char *v = line + r->keylen + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	snprintf(r->buf, r->len, "%s", v);
	r->found = 1;
	return 1;
}

int proc_status_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64];
	struct field_req r = { key, strlen(key), buf, len, 0 };
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	int ret = proc_each_line(path, match_field, &r);
	if (ret < 0)
		return ret;
	return r.found ? 0 : -ENOENT;
}

ssize_t read_small_file(int dir, const char *path, char *buf, size_t len)
{
	int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int err = n < 0 ? errno : EIO;
	close(fd);
	if (n <= 0)
		return -err;
	buf[n] = '\0';
	return n;
}

const char *proc_stat_fields(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small_file(AT_FDCWD, path, buf, len) < 0)
		return NULL;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p + 2 : NULL;
}

int proc_start_ticks(int dir, uint64_t *ticks)
{
	char buf[1024];
	ssize_t n = read_small_file(dir, "stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	const char *p = strrchr(buf, ')');
	unsigned long long t;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
				"%*d %*d %*d %*d %llu", &t) != 1)
		return -EINVAL;
	*ticks = t;
	return 0;
}

int proc_boot_id(char *buf, size_t len)
{
	char id[64];
	ssize_t n = read_small_file(AT_FDCWD, "/proc/sys/kernel/random/boot_id", id, sizeof(id));
	if (n < 36 || len < 37)
		return n < 0 ? (int)n : -EINVAL;
	memcpy(buf, id, 36);
	buf[36] = '\0';
	return 0;
}

int proc_readlink(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	ssize_t n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int proc_thread_comm(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int ckpt_test_fault(const char *what)
{
	const char *f = getenv("CKPT_TEST_FAULT");
	return f && !strcmp(f, what);
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int push_pid(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		pid_t *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = pid;
	return 0;
}

static pid_t stat_ppid(const char *pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

int proc_children(pid_t pid, pid_t **out, size_t *nr)
{
	size_t n = 0, cap = 0;
	pid_t *v = NULL;
	DIR *d = opendir("/proc");
	struct dirent *de;
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		if (stat_ppid(de->d_name) == pid)
			ret = push_pid(&v, &n, &cap, atoi(de->d_name));
	}
	closedir(d);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*nr = n;
	return 0;
}

pid_t proc_ns_tid(pid_t pid, pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	FILE *f = fopen(path, "re");
	pid_t last = tid;
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		char *save, *tok = strtok_r(line + 6, " \t\n", &save);
		for (; tok; tok = strtok_r(NULL, " \t\n", &save))
			last = (pid_t)atoi(tok);
	}
	if (f)
		fclose(f);
	return last;
}

char *ckpt_environ_get(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc((1 << 20) + 1), *val = NULL;
	ssize_t n = buf ? read(fd, buf, (1 << 20)) : -1;
	close(fd);
	size_t klen = strlen(key);
	for (ssize_t off = 0; n > 0 && off < n && !val;) {
		buf[n] = 0;
		char *e = buf + off;
		if (!strncmp(e, key, klen) && e[klen] == '=')
			val = strdup(e + klen + 1);
		off += (ssize_t)strlen(e) + 1;
	}
	free(buf);
	return val;
}
