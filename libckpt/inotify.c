/*
 * inotify: an inotify instance and its watches.  fdinfo gives each watch's
 * wd, mask and a file handle of the watched inode; the dump turns the
 * handle into a path (open_by_handle_at on a mount of that filesystem,
 * then readlink of /proc/self/fd) and restore adds the watch again by
 * path, with the same wd.  An inode that has no name any more (zdtm
 * inotify00: a watched file unlinked while open) is watched again through
 * a description of the tree that holds it (an unlinked file comes back
 * as one, memfd.c): the watch names that description, found once every
 * fd is seen (dump_tree), and the restore adds it through /proc/self/fd
 * of that description's pool fd, once every description is open
 * (pool_ready), with every other watch of that inotify in wd order.
 * Events still queued at dump time cannot be read without taking them
 * away: such an inotify is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

#define MAX_HANDLE 128
/* The kernel's dev_t in fdinfo: 12 bits of major above 20 of minor. */
#define KDEV_MAJOR(d) ((unsigned)((d) >> 20))
#define KDEV_MINOR(d) ((unsigned)((d) & 0xfffff))

struct mount_find {
	unsigned maj, min;
	char path[PATH_MAX];
	int found; /* 2: a mount of the filesystem's root */
};

/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
static int mountinfo_line(char *line, void *arg)
{
	struct mount_find *m = arg;
	unsigned maj, min;
	char root[PATH_MAX], point[PATH_MAX];
	if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, point) != 4)
		return 0;
	if (maj != m->maj || min != m->min)
		return 0;
	int rank = strcmp(root, "/") ? 1 : 2;
	if (rank > m->found) {
		snprintf(m->path, sizeof(m->path), "%s", point);
		m->found = rank;
	}
	return 0;
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* The path of the inode behind a file handle, on filesystem `sdev`
 * (file-kinds.h; fanotify.c's inode marks too). */
int fhandle_to_path(unsigned long sdev, int type, const char *hex, unsigned bytes,
			  char *path, size_t len)
{
	struct mount_find m = { .maj = KDEV_MAJOR(sdev), .min = KDEV_MINOR(sdev) };
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE];
	} h;
	char link[64];

	if (bytes > MAX_HANDLE || strlen(hex) < 2 * bytes)
		return -EINVAL;
	h.fh.handle_bytes = bytes;
	h.fh.handle_type = type;
	if (hex_to_bytes(hex, h.fh.f_handle, bytes))
		return -EINVAL;
	int ret = proc_each_line("/proc/self/mountinfo", mountinfo_line, &m);
	if (ret < 0)
		return ret;
	if (!m.found)
		return -ENOENT;
	/* open_by_handle_at() takes no O_PATH fd for the mount. */
	int mfd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	int fd = open_by_handle_at(mfd, &h.fh, O_PATH | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	close(mfd);
	if (ret)
		return ret;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, len - 1);
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	path[n] = '\0';
	return strstr(path, " (deleted)") || path[0] != '/' ? -ENOENT : 0;
}

struct inotify_scan {
	const struct fd_dump *f;
	InotifyEntry *in;
	size_t cap;
};

/* A watch whose inode has no name: resolved in dump_tree. */
struct nameless_watch {
	InotifyWdEntry *w;
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
	struct nameless_watch *next;
};

static int add_wd(struct inotify_scan *s, int wd, uint32_t mask, const char *path)
{
	struct arena *a = &s->f->fdump->a;
	InotifyEntry *in = s->in;
	if (in->n_wds == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		InotifyWdEntry **v = arena_alloc(a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (in->n_wds)
			memcpy(v, in->wds, in->n_wds * sizeof(*v));
		in->wds = v;
		s->cap = cap;
	}
	InotifyWdEntry *w = arena_alloc(a, sizeof(*w));
	if (!w)
		return -ENOMEM;
	inotify_wd_entry__init(w);
	w->wd = wd;
	w->mask = mask;
	w->path = arena_strdup(a, path);
	in->wds[in->n_wds++] = w;
	return w->path ? 0 : -ENOMEM;
}

/* Kept in the dump's arena, on this kind's list (f->priv). */
static int add_nameless(struct inotify_scan *s, int wd, uint32_t mask, dev_t dev, ino_t ino)
{
	const struct fd_dump *f = s->f;
	struct nameless_watch *n = arena_alloc(&f->fdump->a, sizeof(*n));
	int ret = n ? add_wd(s, wd, mask, "") : -ENOMEM;
	if (ret)
		return ret;
	*n = (struct nameless_watch){ s->in->wds[s->in->n_wds - 1], f->pid, f->fd, dev, ino,
				      *f->priv };
	*f->priv = n;
	return 0;
}

static int inotify_line(char *line, void *arg)
{
	struct inotify_scan *s = arg;
	const struct fd_dump *f = s->f;
	unsigned wd, mask, bytes;
	int type;
	unsigned long ino, sdev;
	char hex[2 * MAX_HANDLE + 2], path[PATH_MAX];

	if (strncmp(line, "inotify ", 8))
		return 0;
	if (sscanf(line, "inotify wd:%x ino:%lx sdev:%lx mask:%x ignored_mask:%*x "
			 "fhandle-bytes:%x fhandle-type:%x f_handle:%257s",
		   &wd, &ino, &sdev, &mask, &bytes, &type, hex) != 7) {
		pr_err("pid %d: fd %d: unexpected inotify line \"%s\"", f->pid, f->fd, line);
		return -EINVAL;
	}
	int ret = fhandle_to_path(sdev, type, hex, bytes, path, sizeof(path));
	if (ret == -ENOENT)
		return add_nameless(s, (int)wd, mask, makedev(KDEV_MAJOR(sdev), KDEV_MINOR(sdev)),
				    (ino_t)ino);
	if (ret) {
		pr_err("pid %d: fd %d: inotify watch %u on inode %lu: cannot find its path: %s",
		       f->pid, f->fd, wd, ino, strerror(-ret));
		return ret;
	}
	return add_wd(s, (int)wd, mask, path);
}

static int inotify_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:inotify");
}

static int inotify_dump(struct fd_dump *f, FileEntry *e)
{
	InotifyEntry *in = arena_alloc(&f->fdump->a, sizeof(*in));
	if (!in)
		return -ENOMEM;
	inotify_entry__init(in);
	int queued = files_refuse_queued(f, "inotify");
	if (queued)
		return queued;
	struct inotify_scan s = { .f = f, .in = in };
	int ret = proc_each_line(f->fdinfo, inotify_line, &s);
	if (ret < 0)
		return ret;
	e->type = FILE_TYPE__FILE_INOTIFY;
	e->inotify = in;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

/* wds count up from the last one given out: add, and drop what comes
 * before the wanted number, until the watch gets it. */
#define MAX_WD_SKIP 65536

static int add_watch(int fd, const FileEntry *e, const InotifyWdEntry *w)
{
	for (int tries = 0; tries <= MAX_WD_SKIP; tries++) {
		int wd = inotify_add_watch(fd, w->path, w->mask);
		if (wd < 0) {
			pr_err("file %u: inotify watch of %s: %s", e->id, w->path, strerror(errno));
			return -errno;
		}
		if (wd == w->wd)
			return 0;
		if (wd > w->wd || inotify_rm_watch(fd, wd) < 0)
			break;
	}
	pr_err("file %u: inotify watch of %s cannot get wd %d back", e->id, w->path, w->wd);
	return -EINVAL;
}

/* Removing watches queued IN_IGNORED events the program never saw. */
static int drain(int fd)
{
	char buf[4096];
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return errno == EAGAIN ? 0 : -errno;
}

static int cmp_wd(const void *a, const void *b)
{
	const InotifyWdEntry *x = *(InotifyWdEntry *const *)a, *y = *(InotifyWdEntry *const *)b;
	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int through_file(const InotifyEntry *in)
{
	for (size_t i = 0; i < in->n_wds; i++)
		if (in->wds[i]->has_file_id)
			return 1;
	return 0;
}

/* The pool fd of description `id`, or -1. */
static int pool_fd_of(const struct restore_files *rf, uint32_t id)
{
	for (size_t i = 0; i < rf->nr_files; i++)
		if (rf->files[i]->id == id)
			return rf->pool[i];
	return -1;
}

/* Every watch, in wd order; a nameless one through its description. */
static int add_watches(const struct restore_files *rf, int fd, const FileEntry *e)
{
	InotifyEntry *in = e->inotify;
	int ret = 0;
	/* The image's own array: sorting it in place is harmless. */
	qsort(in->wds, in->n_wds, sizeof(*in->wds), cmp_wd);
	for (size_t i = 0; !ret && i < in->n_wds; i++) {
		InotifyWdEntry w = *in->wds[i];
		char self[64];
		if (w.has_file_id) {
			int at = pool_fd_of(rf, w.file_id);
			if (at < 0) {
				pr_err("file %u: inotify watch %d: file %u is not open", e->id, w.wd,
				       w.file_id);
				return -EINVAL;
			}
			snprintf(self, sizeof(self), "/proc/self/fd/%d", at);
			w.path = self;
		}
		ret = w.path && w.wd > 0 ? add_watch(fd, e, &w) : -EINVAL;
	}
	return ret ? ret : drain(fd);
}

/* Before anything is made: each watch through a file names a file of the
 * set (a crafted image could name any number).  The kind's state (its
 * pool_ready runs only with one) marks that some watch waits. */
static int inotify_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)set;
	int waits = 0;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_INOTIFY || !e->inotify)
			continue;
		for (size_t j = 0; j < e->inotify->n_wds; j++) {
			const InotifyWdEntry *w = e->inotify->wds[j];
			if (!w->has_file_id)
				continue;
			int found = 0;
			for (size_t k = 0; k < rf->nr_files && !found; k++)
				found = rf->files[k]->id == w->file_id && k != i;
			if (!found) {
				pr_err("file %u: inotify watch %d through file %u, which is not in the set",
				       e->id, w->wd, w->file_id);
				return -EINVAL;
			}
			waits = 1;
		}
	}
	if (waits && !(*priv = calloc(1, 1)))
		return -ENOMEM;
	return 0;
}

static void inotify_free(void *priv)
{
	free(priv);
}

/* The inotifies whose watches wait for every description. */
static int inotify_pool_ready(struct restore_files *rf, void *priv)
{
	(void)priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_INOTIFY || !e->inotify || rf->pool[i] < 0 ||
		    files_inherited(rf, e) || !through_file(e->inotify))
			continue;
		int ret = add_watches(rf, rf->pool[i], e);
		if (ret)
			return ret;
	}
	return 0;
}

static int inotify_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)priv;
	int ret = 0;
	if (!e->inotify) {
		pr_err("file %u: inotify without its watches", e->id);
		return -EINVAL;
	}
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0) {
		pr_err("file %u: cannot create the inotify: %s", e->id, strerror(errno));
		return -errno;
	}
	/* watches through a file wait for it (pool_ready) */
	if (!through_file(e->inotify))
		ret = add_watches(rf, fd, e);
	if (!ret && fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Each nameless watch, on a description of the tree that holds its
 * inode, or refused by name. */
static int resolve_nameless(struct files_dump *fdump, void **priv)
{
	for (struct nameless_watch *n = *priv; n; n = n->next) {
		const struct file_desc *d = NULL;
		for (size_t i = 0; !d && i < fdump->nr; i++)
			if (fdump->descs[i].entry && fdump->descs[i].dev == n->dev &&
			    fdump->descs[i].ino == n->ino)
				d = &fdump->descs[i];
		if (!d) {
			pr_err("pid %d: fd %d: inotify watch %d on inode %lu: its file has no name any "
			       "more, and no fd of the tree holds it: not supported",
			       n->pid, n->fd, n->w->wd, (unsigned long)n->ino);
			return -ENOTSUP;
		}
		n->w->has_file_id = 1;
		n->w->file_id = d->entry->id;
		n->w->path = d->entry->path ? d->entry->path : "";
	}
	*priv = NULL; /* the list lives in the arena */
	return 0;
}

const struct file_kind inotify_kind = {
	.name = "inotify",
	.types = 1ULL << FILE_TYPE__FILE_INOTIFY,
	.match = inotify_match,
	.dump = inotify_dump,
	.dump_tree = resolve_nameless,
	.check_tree = resolve_nameless,
	.read = inotify_read,
	.open = inotify_open,
	.pool_ready = inotify_pool_ready,
	.free = inotify_free,
};
