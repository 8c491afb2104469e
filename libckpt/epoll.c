/*
 * epoll: an epoll instance and every fd registered in it, with its events
 * and data (from the "tfd:" lines of /proc/PID/fdinfo).
 *
 * The kernel keys an epoll item by (file, fd number) in the process that
 * added it, so the items are re-added on restore by one task, the owner
 * (the first task the dump saw holding the epoll), with its own fd
 * numbers, in its post_install once all its fds are in place.  The dump
 * checks with kcmp(KCMP_EPOLL_TFD) that the owner's fd of each number is
 * the very file registered.  One that is not (the fd closed or replaced
 * since it was added, zdtm epoll/epoll01) is looked for among the owner's
 * other fds and recorded as that file: the restore puts the file at the
 * old number for the EPOLL_CTL_ADD, then puts back what was there (the
 * kernel keeps the item while the file lives).  A target the owner no
 * longer holds at all is refused by name.
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

/* Is fd `fd` of `pid` the file of the toff-th item watching number tfd? */
static int same_target(pid_t pid, int epfd, int tfd, int toff, int fd)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)epfd, .tfd = (uint32_t)tfd,
					.toff = (uint32_t)toff };
	return syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* Item i's file among the owner's fds: -2 its fd tfd (the plain case),
 * else the file id of another fd of it; -1 if it holds none. */
static long find_target(const struct files_dump *fdump, const struct file_desc *owner,
			const EpollEntry *ep, size_t i)
{
	int tfd = (int)ep->tfds[i]->tfd, toff = 0;
	long found = -1;

	for (size_t j = 0; j < i; j++)
		toff += ep->tfds[j]->tfd == ep->tfds[i]->tfd;
	for (size_t k = 0; k < fdump->nr && found != -2; k++) {
		const struct file_desc *d = &fdump->descs[k];
		if (d->pid == owner->pid && d->entry &&
		    same_target(owner->pid, owner->fd, tfd, toff, d->fd))
			found = d->fd == tfd ? -2 : (long)d->entry->id;
	}
	return found;
}

static int check_targets(const struct files_dump *fdump, const struct file_desc *f,
			 EpollEntry *ep)
{
	for (size_t i = 0; i < ep->n_tfds; i++) {
		long id = find_target(fdump, f, ep, i);
		if (id == -2)
			continue; /* the owner's fd tfd: the plain case */
		if (id >= 0) {
			ep->tfds[i]->has_file_id = 1;
			ep->tfds[i]->file_id = (uint32_t)id;
			continue;
		}
		pr_err("pid %d: fd %d: epoll watches a file its fd %u was once, which pid %d no "
		       "longer holds at any fd: not supported",
		       f->pid, f->fd, ep->tfds[i]->tfd, f->pid);
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
	e->type = FILE_TYPE__FILE_EPOLL;
	e->epoll = ep;
	return 0;
}

/* Once every fd of the tree is seen: each epoll's targets, through the
 * fd the owner has it at (the first holder the dump saw). */
static int epoll_dump_tree(struct files_dump *fdump, void **priv)
{
	(void)priv;
	for (size_t i = 0; i < fdump->nr; i++) {
		const struct file_desc *d = &fdump->descs[i];
		EpollEntry *ep = d->entry && d->entry->type == FILE_TYPE__FILE_EPOLL ? d->entry->epoll
										      : NULL;
		int ret;
		if (!ep || (int)ep->owner_fd != d->fd ||
		    ep->owner_pid != (uint32_t)tree_vpid(fdump->tree, d->pid))
			continue;
		if ((ret = check_targets(fdump, d, ep)))
			return ret;
	}
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

/* The first fd of task `tf` with file `id`, or -1. */
static int task_fd_of(const struct task_fds *tf, uint32_t id)
{
	for (size_t i = 0; i < tf->nr; i++)
		if (tf->fds[i]->file_id == id)
			return (int)tf->fds[i]->fd;
	return -1;
}

/* An item whose file is no longer the owner's fd tfd: that file goes to
 * number tfd for the add, then whatever is there now (the owner's fd, or
 * one of the restore's own) comes back with its fd flags. */
static int add_moved(const struct task_fds *tf, int epfd, const EpollTfdEntry *t,
		     struct epoll_event *ev)
{
	int src = task_fd_of(tf, t->file_id), saved = -1, ret = 0;
	int num = (int)t->tfd, flags = fcntl(num, F_GETFD);

	if (src < 0) {
		pr_err("pid %d: fd %d: epoll target file %u is not among its fds", tf->pid, epfd,
		       t->file_id);
		return -EINVAL;
	}
	if (flags >= 0 && (saved = fcntl(num, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	if (dup2(src, num) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, num, ev) < 0)
		ret = -errno;
	if (saved >= 0) {
		if (dup2(saved, num) < 0 || fcntl(num, F_SETFD, flags) < 0)
			ret = ret ? ret : -errno;
		close(saved);
	} else {
		close(num);
	}
	if (ret)
		pr_err("pid %d: fd %d: cannot watch file %u as fd %d again: %s", tf->pid, epfd,
		       t->file_id, num, strerror(-ret));
	return ret;
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
		int ret;
		if (t->has_file_id) {
			if ((ret = add_moved(tf, (int)ep->owner_fd, t, &ev)))
				return ret;
			continue;
		}
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
	.dump_tree = epoll_dump_tree,
	.check_tree = epoll_dump_tree, /* checks only: the ids it sets are not written */
	.open = epoll_open,
	.post_install = epoll_post_install,
	.late = 1,
};
