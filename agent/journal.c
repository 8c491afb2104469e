/*
 * journal: crash safety of dumps.  A dump's journal, RUN_DIR/ops/ID, is
 * written before the worker starts and lists every entry the worker
 * creates as it goes; it is removed after the worker ends.  If the worker
 * dies, or the agent itself is killed (its workers die with it through
 * PR_SET_PDEATHSIG, and the parasite in the target cures itself), exactly
 * what the journal lists is removed, as the worker's user: by the
 * operation's thread (ops.c), or by the next agent at start (ops_recover).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "created.h"

/*
 * The journal of a dump, RUN_DIR/ops/ID: "JOB UID GID WHERE", then one
 * line per entry the worker created, in order: "c DIR DEV INO PDEV PINO
 * PATH".  When the worker ends without its result (cancel, a crash, the
 * agent killed), exactly those entries are removed, newest first, each
 * only if it and its directory are still the inodes created (see
 * storage's created.h), and by a child that has become the worker's user:
 * a name swapped since can only lead to what that user could remove.
 * Nothing is ever removed because of its name.
 */

void journal_path(uint32_t id, char *path, size_t len)
{
	snprintf(path, len, "%s/ops/%u", agent.run_dir, id);
}

/* Before the worker starts; the journal stays open for its records. */
int journal_add(uint32_t id, uint32_t job, uid_t uid, gid_t gid, const char *where)
{
	char path[PATH_MAX], line[PATH_MAX + 64];
	journal_path(id, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int n = snprintf(line, sizeof(line), "%u %u %u %s\n", job, uid, gid, where);
	if (n < 0 || (size_t)n >= sizeof(line) || write(fd, line, (size_t)n) != n || fsync(fd)) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	return fd;
}

void journal_created(int fd, const struct worker_msg *m)
{
	char line[WMSG_PATH_MAX + 128];
	if (fd < 0 || !memchr(m->path, '\0', sizeof(m->path)) || strchr(m->path, '\n'))
		return;
	int n = snprintf(line, sizeof(line), "c %u %llu %llu %llu %llu %s\n", m->is_dir ? 1 : 0,
			 (unsigned long long)m->dev, (unsigned long long)m->ino,
			 (unsigned long long)m->pdev, (unsigned long long)m->pino, m->path);
	if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) != n)
		agent_log(0, "journal: cannot record %s: %s", m->path, strerror(errno));
}

void journal_del(uint32_t id)
{
	char path[PATH_MAX];
	journal_path(id, path, sizeof(path));
	unlink(path);
}

struct journal {
	uint32_t job;
	uid_t uid;
	gid_t gid;
	char where[PATH_MAX];
	struct created_log entries;
};

static int journal_read(FILE *f, struct journal *j)
{
	char line[PATH_MAX + 128];
	unsigned job, uid, gid;
	memset(j, 0, sizeof(*j));
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "%u %u %u %4095[^\n]", &job, &uid, &gid, j->where) != 4)
		return -EINVAL;
	j->job = job, j->uid = uid, j->gid = gid;
	while (fgets(line, sizeof(line), f)) {
		struct created c = { 0 };
		unsigned dir;
		unsigned long long dev, ino, pdev, pino;
		if (sscanf(line, "c %u %llu %llu %llu %llu %4095[^\n]", &dir, &dev, &ino, &pdev,
			   &pino, c.path) != 6 || c.path[0] != '/')
			continue; /* a torn last line: its entry was never linked */
		c.dir = dir != 0, c.dev = dev, c.ino = ino, c.pdev = pdev, c.pino = pino;
		if (created_log_add(&j->entries, &c))
			return -ENOMEM;
	}
	return 0;
}

/* A manifest made by this dump: it committed before the worker died. */
static int committed(const struct created_log *log)
{
	for (size_t i = 0; i < log->nr; i++) {
		struct created c = log->v[i];
		char *base = strrchr(c.path, '/');
		if (c.dir || !base || strcmp(base + 1, "manifest.tmp"))
			continue;
		strcpy(base + 1, "manifest");
		if (!created_present(&c))
			return 1;
	}
	return 0;
}

/* Raw syscalls: glibc's set*id wrappers signal every thread of the
 * process, and this child of a multi-threaded agent has only one. */
static int become_user(uid_t uid, gid_t gid, const gid_t *groups, int nr)
{
	if (syscall(SYS_setgroups, nr, groups) || syscall(SYS_setresgid, gid, gid, gid) ||
	    syscall(SYS_setresuid, uid, uid, uid))
		return -1;
	return 0;
}

/* Remove what the journal lists, as its user; the number removed. */
static int remove_created(struct journal *j)
{
	gid_t groups[256];
	int nr = 256;
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (!j->entries.nr)
		return 0;
	if (!getpwuid_r(j->uid, &pw, buf, sizeof(buf), &res) && res) {
		if (getgrouplist(res->pw_name, j->gid, groups, &nr) < 0)
			nr = 0;
	} else {
		nr = 0;
	}
	if (j->uid && !nr)
		groups[0] = j->gid, nr = 1;
	pid_t pid = fork();
	if (pid == 0) {
		if (j->uid && become_user(j->uid, j->gid, groups, nr))
			_exit(255);
		if (committed(&j->entries))
			_exit(254);
		int removed = 0;
		for (size_t i = j->entries.nr; i-- > 0;)
			if (!created_remove(&j->entries.v[i]))
				removed++;
		_exit(removed > 250 ? 250 : removed);
	}
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int code = pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 255;
	if (code == 255)
		agent_log(j->job, "%s: cannot clean up as uid %u", j->where, j->uid);
	else if (code == 254)
		agent_log(j->job, "%s: the dump committed before its worker died: kept", j->where);
	else if (code)
		agent_log(j->job, "%s: removed %d entries an unfinished dump created", j->where,
			  code);
	return code < 250 ? code : 0;
}

void journal_clean(int dirfd, const char *name)
{
	/* A journal of an older agent ("JOB DIR") lists nothing to remove. */
	FILE *f = fdopen(openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), "r");
	struct journal *j = calloc(1, sizeof(*j));
	if (f && j && !journal_read(f, j))
		remove_created(j);
	if (j)
		created_log_free(&j->entries);
	free(j);
	if (f)
		fclose(f);
}

void ops_recover(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ops", agent.run_dir);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		journal_clean(dirfd(d), de->d_name);
		unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
}
