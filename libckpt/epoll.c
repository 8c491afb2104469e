/*
 * epoll: an epoll instance and every fd registered in it, with its events
 * and data (from the "tfd:" lines of /proc/PID/fdinfo).
 *
 * The kernel keys an epoll item by (file, fd number) in the process that
 * added it, so the items are re-added on restore by one task, the owner
 * (the first task the dump saw holding the epoll), with its own fd
 * numbers, in its post_install once all its fds are in place.  The dump
 * checks with kcmp(KCMP_EPOLL_TFD) that the owner's fd of each number is
 * the very file registered: a target that is not a file of the tree (the
 * fd closed or replaced since it was added) is refused by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

struct epoll_scan {
	struct files_dump *fdump;
	EpollEntry *ep;
	size_t cap;
	int bad;
};

static int epoll_line(char *line, void *arg)
{
	struct epoll_scan *s = arg;
	unsigned int tfd, events;
	unsigned long long data;

	if (strncmp(line, "tfd:", 4))
		return 0;
	if (sscanf(line, "tfd: %u events: %x data: %llx", &tfd, &events, &data) != 3) {
		s->bad = 1;
		return -EINVAL;
	}
	EpollEntry *ep = s->ep;
	if (ep->n_tfds == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		EpollTfdEntry **v = arena_alloc(&s->fdump->a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (ep->n_tfds)
			memcpy(v, ep->tfds, ep->n_tfds * sizeof(*v));
		ep->tfds = v;
		s->cap = cap;
	}
	EpollTfdEntry *t = arena_alloc(&s->fdump->a, sizeof(*t));
	if (!t)
		return -ENOMEM;
	epoll_tfd_entry__init(t);
	t->tfd = tfd;
	t->events = events;
	t->data = data;
	ep->tfds[ep->n_tfds++] = t;
	return 0;
}

/* Is fd `tfd` of `pid` the file registered under that number? */
static int same_target(pid_t pid, int epfd, int tfd)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)epfd, .tfd = (uint32_t)tfd, .toff = 0 };
	return syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot) == 0;
}

static int check_targets(const struct fd_dump *f, const EpollEntry *ep)
{
	for (size_t i = 0; i < ep->n_tfds; i++) {
		int tfd = (int)ep->tfds[i]->tfd;
		for (size_t j = 0; j < i; j++)
			if (ep->tfds[j]->tfd == ep->tfds[i]->tfd)
				goto stale;
		if (!same_target(f->pid, f->fd, tfd))
			goto stale;
		continue;
stale:
		pr_err("pid %d: fd %d: epoll watches fd %d, which is no longer that file in pid %d "
		       "(closed or replaced since it was added): not supported",
		       f->pid, f->fd, tfd, f->pid);
		return -ENOTSUP;
	}
	return 0;
}

static int epoll_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[eventpoll]");
}

static int epoll_dump(struct fd_dump *f, FileEntry *e)
{
	EpollEntry *ep = arena_alloc(&f->fdump->a, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	epoll_entry__init(ep);
	ep->owner_pid = (uint32_t)tree_vpid(f->fdump->tree, f->pid);
	ep->owner_fd = (uint32_t)f->fd;
	struct epoll_scan s = { .fdump = f->fdump, .ep = ep };
	int ret = proc_each_line(f->fdinfo, epoll_line, &s);
	if (ret < 0) {
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->fdinfo,
		       s.bad ? "unexpected tfd line" : strerror(-ret));
		return ret;
	}
	if ((ret = check_targets(f, ep)))
		return ret;
	e->type = FILE_TYPE__FILE_EPOLL;
	e->epoll = ep;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

static int epoll_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	if (!e->epoll) {
		pr_err("file %u: epoll without its items", e->id);
		return -EINVAL;
	}
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		pr_err("file %u: cannot create the epoll: %s", e->id, strerror(errno));
		return -errno;
	}
	return fd;
}

/* The file id task `tf` has at fd `fd`, or -1. */
static long task_file_at(const struct task_fds *tf, uint32_t fd)
{
	for (size_t i = 0; i < tf->nr; i++)
		if (tf->fds[i]->fd == fd)
			return tf->fds[i]->file_id;
	return -1;
}

static int fill_epoll(const struct task_fds *tf, const FileEntry *e)
{
	const EpollEntry *ep = e->epoll;
	if (task_file_at(tf, ep->owner_fd) != (long)e->id) {
		pr_err("pid %d: fd %u: not the epoll of file %u in the image", tf->pid, ep->owner_fd,
		       e->id);
		return -EINVAL;
	}
	for (size_t i = 0; i < ep->n_tfds; i++) {
		const EpollTfdEntry *t = ep->tfds[i];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (task_file_at(tf, t->tfd) < 0) {
			pr_err("pid %d: fd %u: epoll target fd %u is not in the image", tf->pid,
			       ep->owner_fd, t->tfd);
			return -EINVAL;
		}
		if (epoll_ctl((int)ep->owner_fd, EPOLL_CTL_ADD, (int)t->tfd, &ev) < 0) {
			pr_err("pid %d: fd %u: cannot watch fd %u again: %s", tf->pid, ep->owner_fd,
			       t->tfd, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int epoll_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_EPOLL || !e->epoll ||
		    e->epoll->owner_pid != (uint32_t)tf->pid)
			continue;
		int ret = fill_epoll(tf, e);
		if (ret)
			return ret;
	}
	return 0;
}

const struct file_kind epoll_kind = {
	.name = "epoll",
	.types = 1ULL << FILE_TYPE__FILE_EPOLL,
	.match = epoll_match,
	.dump = epoll_dump,
	.open = epoll_open,
	.post_install = epoll_post_install,
	.late = 1,
};
