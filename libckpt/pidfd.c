/*
 * pidfd: fds from pidfd_open() or clone(CLONE_PIDFD), read from
 * /proc/PID/fdinfo ("Pid:" in our namespace, -1 once the process is
 * reaped) and from the flags (O_NONBLOCK, PIDFD_THREAD).
 *
 * A pidfd for a process of the tree is opened again with pidfd_open() on
 * its restored pid, which only exists once the tree does: the driver's
 * pool holds a placeholder, and the one process holding the description
 * replaces it in its post_install (all processes exist by then, zombies
 * included).  Such a description shared by several processes could not
 * come back as one, and is refused by name, as are pidfds of processes
 * outside the tree and of threads other than a main thread (restored
 * after the fds).
 *
 * A dead pidfd (its process reaped) refers to no number: the kernel only
 * tells it apart by its pidfs inode, which every pidfd of that process
 * shares.  The driver makes a short-lived helper per dumped inode, opens
 * every description of that inode on it, kills and reaps it: each is then
 * dead, readable, and equal (fstat) to exactly its old companions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define PIDFD_OPEN_FLAGS (O_NONBLOCK | PIDFD_THREAD)

static int pidfd_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[pidfd]") || !strncmp(f->link, "pidfd:", 6);
}

static int pid_line(char *line, void *arg)
{
	if (!strncmp(line, "Pid:", 4))
		*(long *)arg = strtol(line + 4, NULL, 10);
	return 0;
}

/* 1: `pid` is a process of the tree; 2: a thread of one, not its main
 * thread; 0: neither. */
static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		if (t->pid == pid)
			return 1;
		for (int j = 1; j < t->nr_threads; j++)
			if (t->threads[j].tid == pid)
				return 2;
	}
	return 0;
}

static int pidfd_dump(struct fd_dump *f, FileEntry *e)
{
	long pid = 0;
	int ret = proc_each_line(f->fdinfo, pid_line, &pid);
	if (ret < 0)
		return ret;
	int where = pid > 0 ? in_tree(f->fdump->tree, (pid_t)pid) : 0;
	if (pid == 0 || (pid > 0 && where != 1)) {
		pr_err("pid %d: fd %d: pidfd of pid %ld, %s: not supported", f->pid, f->fd, pid,
		       where == 2 ? "a thread of the tree that is not a main thread" :
		       pid == 0   ? "a process outside our PID namespace" :
				    "a process outside the tree");
		return -ENOTSUP;
	}
	PidfdEntry *p = arena_alloc(&f->fdump->a, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pidfd_entry__init(p);
	p->pid = pid < 0 ? -1 : tree_vpid(f->fdump->tree, (pid_t)pid);
	p->ino = f->st->st_ino;
	e->type = FILE_TYPE__FILE_PIDFD;
	e->pidfd = p;
	return 0;
}

/* Does task `pid` hold description `d` (a pidfd) at one of its fds? */
static int holds(pid_t pid, const struct file_desc *d)
{
	char path[300];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *dir = opendir(path);
	struct dirent *de;
	struct stat st;
	int found = 0;
	while (dir && !found && (de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		found = de->d_name[0] != '.' && !stat(path, &st) && st.st_dev == d->dev &&
			st.st_ino == d->ino &&
			syscall(SYS_kcmp, d->pid, pid, KCMP_FILE, d->fd, atoi(de->d_name)) == 0;
	}
	if (dir)
		closedir(dir);
	return found;
}

/* A live pidfd is opened again by the one process that holds it. */
static int pidfd_dump_tree(struct files_dump *fdump, void **priv)
{
	const struct frozen_tree *tree = fdump->tree;
	(void)priv;
	for (size_t i = 0; i < fdump->nr; i++) {
		const struct file_desc *d = &fdump->descs[i];
		if (d->entry->type != FILE_TYPE__FILE_PIDFD || d->entry->pidfd->pid < 0)
			continue;
		for (int t = 0; t < tree->nr_tasks; t++) {
			pid_t other = tree->tasks[t].pid;
			if (other == d->pid || tree->tasks[t].zombie || !holds(other, d))
				continue;
			pr_err("pid %d: fd %d: pidfd of pid %d shared with pid %d (one open file "
			       "in two processes): not supported",
			       d->pid, d->fd, d->entry->pidfd->pid, other);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* ------------------------------ restore ------------------------------ */

/* fds[id]: a dead pidfd opened for file `id`, not yet given to the pool. */
struct pidfd_restore {
	size_t nr;
	int *fds;
};

static int is_tree_pid(const struct restore_files *rf, int32_t pid)
{
	for (size_t t = 0; t < rf->nr_tasks; t++)
		if (rf->tasks[t].pid == pid)
			return 1;
	return 0;
}

static int pidfd_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PIDFD)
			continue;
		if (!e->pidfd || (e->pidfd->pid != -1 && !is_tree_pid(rf, e->pidfd->pid))) {
			pr_err("%s/files.img: file %u: a pidfd of no process of the tree",
			       img_set_dir(set), e->id);
			return -EINVAL;
		}
	}
	struct pidfd_restore *r = calloc(1, sizeof(*r));
	int *fds = calloc(rf->nr_files + 1, sizeof(int));
	if (!r || !fds) {
		free(r);
		free(fds);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rf->nr_files; i++)
		fds[i] = -1;
	r->nr = rf->nr_files;
	r->fds = fds;
	*priv = r;
	return 0;
}

static int is_dead_of(const FileEntry *e, uint64_t ino)
{
	return e->type == FILE_TYPE__FILE_PIDFD && e->pidfd->pid == -1 && e->pidfd->ino == ino;
}

/* Kill and reap the helper: its pidfds are dead from now on. */
static int end_helper(pid_t helper)
{
	int status;
	kill(helper, SIGKILL);
	while (waitpid(helper, &status, 0) < 0)
		if (errno != EINTR) {
			pr_err("pidfd helper %d: cannot reap it: %s", helper, strerror(errno));
			return -errno;
		}
	return 0;
}

/* Every dead pidfd of inode `ino`, opened on one helper that then dies. */
static int open_dead_group(struct restore_files *rf, struct pidfd_restore *r, uint64_t ino)
{
	pid_t helper = fork();
	if (helper < 0) {
		pr_err("dead pidfd (inode %llu): cannot fork its helper: %s",
		       (unsigned long long)ino, strerror(errno));
		return -errno;
	}
	if (!helper) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	int ret = 0;
	for (size_t i = 0; !ret && i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (!is_dead_of(e, ino))
			continue;
		r->fds[i] = (int)syscall(SYS_pidfd_open, helper, e->flags & PIDFD_OPEN_FLAGS);
		if (r->fds[i] < 0) {
			ret = -errno;
			pr_err("file %u: cannot open a dead pidfd: %s", e->id, strerror(errno));
		}
	}
	int eret = end_helper(helper);
	return ret ? ret : eret;
}

/* A live pidfd's placeholder until its process replaces it (see above). */
static int pidfd_open_file(struct restore_files *rf, void *priv, const FileEntry *e)
{
	struct pidfd_restore *r = priv;
	if (e->pidfd->pid != -1) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	if (r->fds[e->id] < 0) {
		int ret = open_dead_group(rf, r, e->pidfd->ino);
		if (ret)
			return ret;
	}
	int fd = r->fds[e->id];
	r->fds[e->id] = -1;
	return fd;
}

/* The owner and signal files_install gave the placeholder. */
static int set_fown(const FileEntry *e, int fd)
{
	struct f_owner_ex own = { (int)e->fown_type, (pid_t)e->fown_pid };
	if ((e->has_fown_sig && fcntl(fd, F_SETSIG, (int)e->fown_sig)) ||
	    (e->has_fown_pid && fcntl(fd, F_SETOWN_EX, &own)))
		return -errno;
	return 0;
}

/* Fd i of task `tf`: its pidfd, or a dup of the one an earlier fd of the
 * same description got. */
static int reopen_live(const struct task_fds *tf, size_t i, const FileEntry *e)
{
	const FdEntry *fe = tf->fds[i];
	int fd = -1;
	for (size_t j = 0; j < i && fd < 0; j++)
		if (tf->fds[j]->file_id == fe->file_id)
			fd = fcntl((int)tf->fds[j]->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		fd = (int)syscall(SYS_pidfd_open, e->pidfd->pid, e->flags & PIDFD_OPEN_FLAGS);
	int ret = fd < 0 || dup3(fd, (int)fe->fd, fe->cloexec ? O_CLOEXEC : 0) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = set_fown(e, (int)fe->fd);
	if (ret)
		pr_err("pid %d: fd %u: cannot open its pidfd of pid %d again: %s", tf->pid, fe->fd,
		       e->pidfd->pid, strerror(-ret));
	return ret;
}

static int pidfd_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = rf->files[tf->fds[i]->file_id];
		if (e->type != FILE_TYPE__FILE_PIDFD || e->pidfd->pid == -1 || files_inherited(rf, e))
			continue;
		int ret = reopen_live(tf, i, e);
		if (ret)
			return ret;
	}
	return 0;
}

static void pidfd_free(void *priv)
{
	struct pidfd_restore *r = priv;
	for (size_t i = 0; i < r->nr; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	free(r->fds);
	free(r);
}

const struct file_kind pidfd_kind = {
	.name = "pidfd",
	.types = 1ULL << FILE_TYPE__FILE_PIDFD,
	.match = pidfd_match,
	.dump = pidfd_dump,
	.dump_tree = pidfd_dump_tree,
	.check_tree = pidfd_dump_tree, /* checks only, nothing written */
	.read = pidfd_read,
	.open = pidfd_open_file,
	.post_install = pidfd_post_install,
	.free = pidfd_free,
};
