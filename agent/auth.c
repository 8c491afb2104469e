/*
 * auth: who may do what.  Root may do anything.  A user may dump only a
 * tree in which every process is theirs: real, effective, saved and fs
 * uid all theirs and the process dumpable (a setuid program, or one that
 * dropped its dumpable flag, makes /proc/PID owned by root, and its
 * memory must not reach the user's images).  The agent checks the root;
 * the engine checks every task of the frozen tree.  What a user may restore is
 * checked by the worker against the images (worker.c).
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"

/* "Uid:\tR\tE\tS\tF": all four equal to uid. */
static int ids_all(const char *status, const char *key, unsigned id)
{
	const char *p = strstr(status, key);
	unsigned v[4];
	if (!p || sscanf(p + strlen(key), "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) != 4)
		return 0;
	return v[0] == id && v[1] == id && v[2] == id && v[3] == id;
}

static int read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

static int owns_task(const struct peer *p, pid_t pid, char *err, size_t errlen)
{
	char path[64], status[4096];
	struct stat st;
	/* Not the directory: it can stay the user's when the task is not
	 * dumpable, the files in it then belong to root. */
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (stat(path, &st) || read_small(path, status, sizeof(status))) {
		snprintf(err, errlen, "pid %d: no such process", pid);
		return -ESRCH;
	}
	if (st.st_uid != p->uid || !ids_all(status, "\nUid:", p->uid) ||
	    !ids_all(status, "\nGid:", st.st_gid)) {
		snprintf(err, errlen, "pid %d: not owned by uid %u (or not dumpable)", pid, p->uid);
		return -EPERM;
	}
	return 0;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)))
		return 0;
	char *p = strrchr(buf, ')');
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* The root only, for a clear answer before a worker starts: the whole
 * tree is checked by the engine once it is frozen (ckpt_dump_opts.only_uid),
 * when no task can exec a set-id program any more. */
int auth_may_dump_tree(const struct peer *p, pid_t root, char *err, size_t errlen)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", root);
	if (root < 1 || stat(path, &st)) {
		snprintf(err, errlen, "pid %d: no such process", root);
		return -ESRCH;
	}
	return p->uid ? owns_task(p, root, err, errlen) : 0;
}

/* The peer's supplementary groups, from its user's entry. */
int auth_peer_groups(const struct peer *p, gid_t *groups, int *nr)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(p->uid, &pw, buf, sizeof(buf), &res) || !res) {
		groups[0] = p->gid;
		*nr = 1;
		return 0;
	}
	if (getgrouplist(res->pw_name, p->gid, groups, nr) < 0)
		return -E2BIG;
	return 0;
}

/* The one child of a wrapper (ckpt-batch) that is the job's tree; the
 * wrapper's other child may be the ckptctl asking for the dump, or the
 * one that runs the coordinator's step (exclude2). */
pid_t auth_wrapped_child(pid_t wrapper, pid_t exclude, pid_t exclude2)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;
	int n = 0;
	while (d && (de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		if (pid > 0 && pid != exclude && pid != exclude2 && parent_of(pid) == wrapper) {
			found = pid;
			n++;
		}
	}
	if (d)
		closedir(d);
	return n == 1 ? found : n ? -ENOTSUP : -ESRCH;
}
