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
 *
 * An epoll that only socket queues hold (fds in flight, SCM_RIGHTS; zdtm
 * scm05) has no owner: files.c hands it over through the dumper's own fd
 * of it, and each item's file is looked for among every description of
 * the tree (kcmp of that fd's item against each).  A file no process of
 * the tree holds is refused by name.  The restore adds its items in the
 * driver once every description is in the pool (pool_ready), each target
 * put at the number it was added with, in a child of the driver: the
 * driver's own fds (its log, stdio) are not moved meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* Is fd `fd` of `pid` the file of the toff-th item watching number tfd
 * in the epoll that `epid` has at epfd? */
static int same_target(pid_t pid, int fd, pid_t epid, int epfd, int tfd, int toff)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)epfd, .tfd = (uint32_t)tfd,
					.toff = (uint32_t)toff };
	return syscall(SYS_kcmp, pid, epid, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* Item i is the toff-th of those watching its number (kcmp's slot). */
static int item_toff(const EpollEntry *ep, size_t i)
{
	int toff = 0;
	for (size_t j = 0; j < i; j++)
		toff += ep->tfds[j]->tfd == ep->tfds[i]->tfd;
	return toff;
}

/* Item i's file among the owner's fds: -2 its fd tfd (the plain case),
 * else the file id of another fd of it; -1 if it holds none. */
static long find_target(const struct files_dump *fdump, const struct file_desc *owner,
			const EpollEntry *ep, size_t i)
{
	int tfd = (int)ep->tfds[i]->tfd, toff = item_toff(ep, i);
	long found = -1;

	for (size_t k = 0; k < fdump->nr && found != -2; k++) {
		const struct file_desc *d = &fdump->descs[k];
		if (d->pid == owner->pid && d->entry &&
		    same_target(owner->pid, d->fd, owner->pid, owner->fd, tfd, toff))
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

/* The socket whose queue holds our fd `fd` (in flight), for messages. */
static unsigned long long inflight_socket(const struct files_dump *fdump, int fd)
{
	for (size_t i = 0; i < fdump->nr_inflight; i++)
		if (fdump->inflight[i].fd == fd)
			return (unsigned long long)fdump->inflight[i].sk_ino;
	return 0;
}

/* An epoll only queues hold (our fd self->fd): each item's file among
 * every description of the tree, those in flight included. */
static int resolve_alone(const struct files_dump *fdump, const struct file_desc *self,
			 EpollEntry *ep)
{
	for (size_t i = 0; i < ep->n_tfds; i++) {
		EpollTfdEntry *t = ep->tfds[i];
		int toff = item_toff(ep, i);
		const struct file_desc *d = NULL;
		for (size_t k = 0; !d && k < fdump->nr; k++)
			if (fdump->descs[k].entry &&
			    same_target(fdump->descs[k].pid, fdump->descs[k].fd, self->pid, self->fd,
					(int)t->tfd, toff))
				d = &fdump->descs[k];
		if (!d) {
			pr_err("socket:[%llu]: the epoll in flight (SCM_RIGHTS) on it watches a file "
			       "(added as fd %u) that no process of the tree holds: not supported",
			       inflight_socket(fdump, self->fd), t->tfd);
			return -ENOTSUP;
		}
		t->has_file_id = 1;
		t->file_id = d->entry->id;
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
	/* files.c gives an fd in flight with the dumper's pid (our own fd) */
	if (f->pid == getpid()) {
		ep->has_alone = ep->alone = 1;
	} else {
		ep->owner_pid = (uint32_t)tree_vpid(f->fdump->tree, f->pid);
		ep->owner_fd = (uint32_t)f->fd;
	}
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
		if (ep && ep->alone && d->pid == getpid()) {
			if ((ret = resolve_alone(fdump, d, ep)))
				return ret;
			continue;
		}
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

/* Add file `src` to epoll `epfd` as fd number `num` (the kernel keys an
 * item by file and number): the file goes to num for the add, then
 * whatever was there (epfd itself, another file) comes back with its fd
 * flags.  Logs nothing (a child of the driver calls it too). */
static int add_as(int epfd, int src, int num, struct epoll_event *ev)
{
	int saved = -1, ret = 0, flags = fcntl(num, F_GETFD);
	int ep = num == epfd ? fcntl(epfd, F_DUPFD_CLOEXEC, 0) : epfd;

	if (ep < 0 || (flags >= 0 && (saved = fcntl(num, F_DUPFD_CLOEXEC, 0)) < 0))
		ret = -errno;
	else if (dup2(src, num) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, num, ev) < 0)
		ret = -errno;
	if (saved >= 0) {
		if (dup2(saved, num) < 0 || fcntl(num, F_SETFD, flags) < 0)
			ret = ret ? ret : -errno;
		close(saved);
	} else if (flags < 0) { /* nothing was there */
		close(num);
	}
	if (ep >= 0 && ep != epfd)
		close(ep);
	return ret;
}

/* An item whose file is no longer the owner's fd tfd: added as tfd from
 * the owner's other fd of it. */
static int add_moved(const struct task_fds *tf, int epfd, const EpollTfdEntry *t,
		     struct epoll_event *ev)
{
	int src = task_fd_of(tf, t->file_id), ret;

	if (src < 0) {
		pr_err("pid %d: fd %d: epoll target file %u is not among its fds", tf->pid, epfd,
		       t->file_id);
		return -EINVAL;
	}
	if ((ret = add_as(epfd, src, (int)t->tfd, ev)))
		pr_err("pid %d: fd %d: cannot watch file %u as fd %u again: %s", tf->pid, epfd,
		       t->file_id, t->tfd, strerror(-ret));
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
		if (e->type != FILE_TYPE__FILE_EPOLL || !e->epoll || e->epoll->alone ||
		    e->epoll->owner_pid != (uint32_t)tf->pid)
			continue;
		int ret = fill_epoll(tf, e);
		if (ret)
			return ret;
	}
	return 0;
}

/* Before anything is made: an epoll alone names, for each item, a file of
 * the set other than itself, and a number an fd can have.  The kind's
 * state (its pool_ready runs only with one) marks that there is one. */
static int epoll_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	int alone = 0;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_EPOLL || !e->epoll || !e->epoll->alone)
			continue;
		for (size_t j = 0; j < e->epoll->n_tfds; j++) {
			const EpollTfdEntry *t = e->epoll->tfds[j];
			if (!t->has_file_id || t->file_id >= rf->nr_files || t->file_id == e->id ||
			    t->tfd > INT_MAX / 2) {
				pr_err("%s/files.img: file %u: epoll in flight, item %zu: bad file %u or "
				       "fd %u",
				       img_set_dir(set), e->id, j, t->file_id, t->tfd);
				return -EINVAL;
			}
		}
		alone = 1;
	}
	if (alone && !(*priv = calloc(1, 1)))
		return -ENOMEM;
	return 0;
}

static void epoll_free(void *priv)
{
	free(priv);
}

/* What failed in the child that fills the epolls alone. */
struct alone_failure {
	uint32_t file, item;
	int err;
};

/* In the child: every item of every epoll alone, from the pool. */
static int fill_alone(const struct restore_files *rf, struct alone_failure *f)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_EPOLL || !e->epoll || !e->epoll->alone ||
		    files_inherited(rf, e))
			continue;
		for (size_t j = 0; j < e->epoll->n_tfds; j++) {
			const EpollTfdEntry *t = e->epoll->tfds[j];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
			*f = (struct alone_failure){ e->id, (uint32_t)j, -EBADF };
			if (rf->pool[i] < 0 || rf->pool[t->file_id] < 0)
				return -EBADF;
			if ((f->err = add_as(rf->pool[i], rf->pool[t->file_id], (int)t->tfd, &ev)))
				return f->err;
		}
	}
	return 0;
}

/*
 * The epolls alone, once every description is in the pool.  An item must
 * be added as the number it had, which may be any fd of the driver's (its
 * log, its stdio): a child does it, with a copy of the fd table, so that
 * nothing of the driver's moves, even for a moment.
 */
static int epoll_pool_ready(struct restore_files *rf, void *priv)
{
	(void)priv;
	struct alone_failure f = { 0, 0, -ECHILD };
	int p[2], status = 0, err = 0;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t child = fork();
	if (child == 0) {
		close(p[0]);
		if (!fill_alone(rf, &f))
			_exit(0);
		_exit(write(p[1], &f, sizeof(f)) == (ssize_t)sizeof(f) ? 1 : 2);
	}
	close(p[1]);
	if (child < 0)
		err = -errno;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!err && (!WIFEXITED(status) || WEXITSTATUS(status)))
		err = read(p[0], &f, sizeof(f)) == (ssize_t)sizeof(f) && f.err < 0 ? f.err : -ECHILD;
	close(p[0]);
	if (err)
		pr_err("file %u: epoll in flight, item %u: cannot watch its file again: %s", f.file,
		       f.item, strerror(-err));
	return err;
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
	.read = epoll_read,
	.pool_ready = epoll_pool_ready,
	.free = epoll_free,
	.late = 1,
	.alone_ok = 1, /* its items are added in the driver (pool_ready) */
};
