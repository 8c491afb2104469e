/*
 * pidfd: fds from pidfd_open() or clone(CLONE_PIDFD), read from
 * /proc/PID/fdinfo ("Pid:" in our namespace, -1 once the process is
 * reaped) and from the flags (O_NONBLOCK, PIDFD_THREAD).
 *
 * A pidfd for a process of the tree is opened again with pidfd_open() on
 * its restored pid, which only exists once the tree does: by the first
 * process of the restore order that holds it, in post_install, and passed
 * to the others (fd-relay.h): all hold one open file again, as after a
 * fork.  Pidfds of processes outside the tree, and of threads other
 * than a main thread (restored after the fds), are refused by name.
 *
 * A dead pidfd (its process reaped) refers to no number: the kernel only
 * tells it apart by its pidfs inode, which every pidfd of that process
 * shares.  Just before the tree's root is created, in the tree's PID
 * namespace (before_tree: the driver, or our init), a short-lived helper
 * is made per dumped inode, every description of that inode opened on it,
 * and the helper killed and reaped: each is then dead, readable, equal
 * (fstat) to exactly its old companions, and its number free again for
 * the tree.
 */
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

#include "fd-relay.h"
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

static int pidfd_dump(struct fd_dump *f, FileEntry *e)
{
	long pid = 0;
	int ret = proc_each_line(f->fdinfo, pid_line, &pid);
	if (ret < 0)
		return ret;
	int where = pid > 0 ? frozen_tree_where(f->fdump->tree, pid, NULL) : 0;
	if (pid == 0 || (pid > 0 && where != 1)) {
		pr_err("pid %d: fd %d: pidfd of pid %ld, %s: not supported", f->pid, f->fd, pid,
		       where == 2 ? "a thread of the tree that is not a main thread"
		       : pid == 0 ? "a process outside our PID namespace"
				  : "a process outside the tree");
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

/* A dead pidfd's stand-in until before_tree. */
static int pidfd_open_file(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	if (e->pidfd->pid != -1)
		return relay_socket();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Dead pidfds, made in the tree's PID namespace: a pidfd of a process of
 * another one fails pidfd_send_signal with EINVAL instead of ESRCH. */
static int pidfd_before_tree(struct restore_files *rf, void *priv)
{
	struct pidfd_restore *r = priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PIDFD || e->pidfd->pid != -1 || rf->pool[i] < 0 ||
		    files_inherited(rf, e))
			continue;
		int ret = r->fds[i] < 0 ? open_dead_group(rf, r, e->pidfd->ino) : 0;
		if (!ret && (dup3(r->fds[i], rf->pool[i], O_CLOEXEC) < 0 ||
			     (e->has_fown_sig && fcntl(rf->pool[i], F_SETSIG, (int)e->fown_sig))))
			ret = -errno;
		if (ret)
			return ret;
		close(r->fds[i]);
		r->fds[i] = -1;
	}
	return 0;
}

/* A live pidfd, in the first process that holds it (fd-relay.h). */
static int open_live(const FileEntry *e)
{
	int fd = (int)syscall(SYS_pidfd_open, e->pidfd->pid, e->flags & PIDFD_OPEN_FLAGS);
	return fd < 0 ? -errno : fd;
}

/* Fd i of task `idx`: its pidfd, opened in the first holder. */
static int reopen_live(const struct restore_files *rf, size_t idx, size_t i, const FileEntry *e)
{
	const FdEntry *fe = rf->tasks[idx].fds[i];
	int ret = relay_install(rf, idx, i, e, open_live);
	if (ret)
		pr_err("pid %d: fd %u: cannot open its pidfd of pid %d again: %s", rf->tasks[idx].pid,
		       fe->fd, e->pidfd->pid, strerror(-ret));
	return ret;
}

static int pidfd_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = rf->files[tf->fds[i]->file_id];
		if (e->type != FILE_TYPE__FILE_PIDFD || e->pidfd->pid == -1 ||
		    files_inherited(rf, e))
			continue;
		int ret = reopen_live(rf, idx, i, e);
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
	.read = pidfd_read,
	.open = pidfd_open_file,
	.before_tree = pidfd_before_tree,
	.post_install = pidfd_post_install,
	.free = pidfd_free,
};
