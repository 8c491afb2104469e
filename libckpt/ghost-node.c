/*
 * ghost-node: directories, device nodes and symbolic links (held with
 * O_PATH) removed while a process of the tree held them open (rmdir or
 * unlink after open: fstat says nlink 0),
 * and the helpers that FIFOs (pipes.c) and a removed cwd (core.c) share.
 *
 * Such a node has no data to keep, only what it is: its type, mode, owner
 * and (a device) its number, (a link) its target.  The restore makes it again at its old path
 * (or at PATH.ckpt-ghost-INO when the name was taken since), with the
 * missing directories above it, opens it O_PATH, and removes it and those
 * directories again; every description is then an open of that O_PATH
 * keeper through /proc/self/fd, so that descriptions of one node share it.
 * The restore makes it as whoever restores: for a user, the kernel decides
 * whether she may make a directory there, and refuses her a device node
 * (mknod needs CAP_MKNOD).  Only the memory devices are accepted, as for
 * linked ones (regfile.c): another device is not the same thing reopened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "file-kinds.h"
#include "ghost.h"
#include "log.h"
#include "tty.h"

#define DELETED " (deleted)"

/* ------------------------------ making ------------------------------- */

/* Make the directories missing above g->path, outermost first; every one
 * below the first missing one is made, and counted in g->parents. */
static int make_parents(struct ghost_made *g)
{
	g->parents = 0;
	for (char *s = strchr(g->path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		int err = mkdir(g->path, 0700) ? errno : 0;
		*s = '/';
		if (!err)
			g->parents++;
		else if (err != EEXIST || g->parents)
			return err == EEXIST ? -EBUSY : -err;
	}
	return 0;
}

static int remove_parents(struct ghost_made *g)
{
	char p[sizeof(g->path)];
	int ret = 0;
	memcpy(p, g->path, sizeof(p));
	for (; g->parents; g->parents--) {
		char *s = strrchr(p, '/');
		if (!s || s == p)
			break;
		*s = '\0';
		if (rmdir(p) < 0 && !ret)
			ret = -errno;
	}
	return ret;
}

static int make_node(const struct ghost_node *n, const char *path)
{
	int r;
	switch (n->mode & S_IFMT) {
	case S_IFDIR:
		r = mkdir(path, 0700);
		break;
	case S_IFIFO:
		r = mkfifo(path, 0600);
		break;
	case S_IFCHR:
		r = mknod(path, S_IFCHR | 0600, n->rdev);
		break;
	case S_IFLNK:
		r = symlink(n->target, path);
		break;
	default:
		return -EINVAL;
	}
	return r < 0 ? -errno : 0;
}

static int make_at(const struct ghost_node *n, struct ghost_made *g)
{
	snprintf(g->path, sizeof(g->path), "%s", n->path);
	int ret = make_parents(g);
	if (!ret && (ret = make_node(n, g->path)) == -EEXIST) {
		snprintf(g->path, sizeof(g->path), "%s.ckpt-ghost-%llu", n->path,
			 (unsigned long long)n->ino);
		ret = make_node(n, g->path);
	}
	return ret;
}

static int same_target(int fd, const char *target)
{
	char buf[PATH_MAX];
	ssize_t len = readlinkat(fd, "", buf, sizeof(buf) - 1);
	if (len < 0)
		return -errno;
	buf[len] = '\0';
	return strcmp(buf, target) ? -ESTALE : 0;
}

/* Is the node at g->fd the one made, and then its owner and mode. */
static int finish_node(const struct ghost_node *n, struct ghost_made *g)
{
	char self[64];
	struct stat st;
	if (fstat(g->fd, &st) < 0)
		return -errno;
	if ((st.st_mode & S_IFMT) != (n->mode & S_IFMT) ||
	    (S_ISCHR(st.st_mode) && st.st_rdev != n->rdev))
		return -ESTALE;
	if (n->has_owner && (st.st_uid != n->uid || st.st_gid != n->gid) &&
	    fchownat(g->fd, "", n->uid, n->gid, AT_EMPTY_PATH) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode)) /* a link's mode is always 0777 */
		return same_target(g->fd, n->target);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", g->fd);
	return chmod(self, n->mode & 07777) < 0 ? -errno : 0;
}

int ghost_unmake(struct ghost_made *g)
{
	struct stat st;
	int ret = 0;
	if (fstat(g->fd, &st) < 0)
		ret = -errno;
	else if ((S_ISDIR(st.st_mode) ? rmdir(g->path) : unlink(g->path)) < 0)
		ret = -errno;
	int pret = remove_parents(g);
	return ret ? ret : pret;
}

static const char *type_name(mode_t mode)
{
	return S_ISDIR(mode)  ? "directory" :
	       S_ISFIFO(mode) ? "FIFO" :
	       S_ISLNK(mode)  ? "symbolic link" :
				"device node";
}

int ghost_make(const struct ghost_node *n, struct ghost_made *g)
{
	g->fd = -1;
	int ret = make_at(n, g);
	if (ret) {
		remove_parents(g);
	} else if ((g->fd = open(g->path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		ret = -errno;
		if (S_ISDIR(n->mode) ? rmdir(g->path) : unlink(g->path))
			pr_err("%s: cannot remove it: %s", g->path, strerror(errno));
		remove_parents(g);
	} else if ((ret = finish_node(n, g))) {
		ghost_unmake(g);
		close(g->fd);
		g->fd = -1;
	}
	if (ret)
		pr_err("%s: cannot make the removed %s again: %s", n->path, type_name(n->mode),
		       strerror(-ret));
	return ret;
}

/* ------------------------------ records ------------------------------ */

int ghost_node_entry(const struct fd_dump *f, FileEntry *e)
{
	struct arena *a = &f->fdump->a;
	ContentsEntry *ce = arena_alloc(a, sizeof(*ce));
	size_t n = strlen(f->link), d = strlen(DELETED);
	if (!ce)
		return -ENOMEM;
	contents_entry__init(ce);
	ce->ino = f->st->st_ino;
	ce->has_dev = ce->has_uid = ce->has_gid = ce->has_rdev = 1;
	ce->dev = f->st->st_dev;
	ce->uid = f->st->st_uid;
	ce->gid = f->st->st_gid;
	ce->rdev = f->st->st_rdev;
	if (n > d && !strcmp(f->link + n - d, DELETED))
		n -= d;
	if (!(e->path = arena_alloc(a, n + 1)))
		return -ENOMEM;
	memcpy(e->path, f->link, n);
	e->path[n] = '\0';
	e->contents = ce;
	return 0;
}

int ghost_node_of(const FileEntry *e, struct ghost_node *n)
{
	const ContentsEntry *ce = e->contents;
	mode_t type = e->mode & S_IFMT;
	/* A FIFO is the pipe kind's (a FIFO opened here would block) */
	int fifo = e->type == FILE_TYPE__FILE_FIFO;
	if (!ce || !e->path || e->path[0] != '/' || !e->has_mode || (type == S_IFIFO) != fifo ||
	    (type != S_IFDIR && type != S_IFIFO && type != S_IFCHR && type != S_IFLNK) ||
	    (type == S_IFCHR && (!ce->has_rdev || !regfile_is_memory_device((dev_t)ce->rdev))) ||
	    (type == S_IFLNK && (!ce->link_target || !ce->link_target[0] ||
				 strlen(ce->link_target) >= PATH_MAX))) {
		pr_err("file %u: bad record of a removed node", e->id);
		return -EINVAL;
	}
	*n = (struct ghost_node){ e->path, ce->ino, (mode_t)e->mode, (dev_t)ce->rdev,
				  ce->uid,  ce->gid, ce->has_uid && ce->has_gid,
				  type == S_IFLNK ? ce->link_target : NULL };
	return 0;
}

/* ------------------------------ the kind ----------------------------- */

static int node_match(const struct fd_dump *f)
{
	mode_t m = f->st->st_mode;
	return f->link[0] == '/' && f->st->st_nlink == 0 &&
	       (S_ISDIR(m) || S_ISCHR(m) || S_ISBLK(m) || S_ISLNK(m)) && !tty_dead_slave(f);
}

/* A removed link's target, read through a copy of the task's O_PATH fd. */
static int dump_link_target(const struct fd_dump *f, ContentsEntry *ce)
{
	char buf[PATH_MAX];
	int fd = files_getfd(f->pid, f->fd);
	if (fd < 0) {
		pr_err("pid %d: fd %d: %s: cannot get the link: %s", f->pid, f->fd, f->link,
		       strerror(-fd));
		return fd;
	}
	ssize_t len = readlinkat(fd, "", buf, sizeof(buf) - 1);
	int err = len < 0 ? errno : 0;
	close(fd);
	if (err) {
		pr_err("pid %d: fd %d: %s: cannot read the removed link: %s", f->pid, f->fd,
		       f->link, strerror(err));
		return -err;
	}
	buf[len] = '\0';
	ce->link_target = arena_strdup(&f->fdump->a, buf);
	return ce->link_target ? 0 : -ENOMEM;
}

static int node_dump(struct fd_dump *f, FileEntry *e)
{
	const struct stat *st = f->st;
	if (S_ISLNK(st->st_mode)) {
		e->type = FILE_TYPE__FILE_GHOST_NODE;
		int ret = ghost_node_entry(f, e);
		return ret ? ret : dump_link_target(f, e->contents);
	}
	if (!S_ISDIR(st->st_mode) &&
	    !(S_ISCHR(st->st_mode) && regfile_is_memory_device(st->st_rdev))) {
		pr_err("pid %d: fd %d: %s: removed device node %u:%u is not supported", f->pid, f->fd,
		       f->link, major(st->st_rdev), minor(st->st_rdev));
		return -ENOTSUP;
	}
	e->type = FILE_TYPE__FILE_GHOST_NODE;
	return ghost_node_entry(f, e);
}

struct node_keeper {
	uint64_t dev, ino;
	int fd;
};

struct node_keepers {
	struct node_keeper *v;
	size_t nr, cap;
};

static int node_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)set;
	(void)rf;
	*priv = calloc(1, sizeof(struct node_keepers));
	return *priv ? 0 : -ENOMEM;
}

static void node_free(void *priv)
{
	struct node_keepers *k = priv;
	for (size_t i = 0; i < k->nr; i++)
		close(k->v[i].fd);
	free(k->v);
	free(k);
}

/* The O_PATH keeper of the node: made, opened and removed on first use. */
static int node_keeper(struct node_keepers *k, const FileEntry *e)
{
	const ContentsEntry *ce = e->contents;
	struct ghost_node n;
	struct ghost_made g;
	for (size_t i = 0; i < k->nr; i++)
		if (k->v[i].dev == ce->dev && k->v[i].ino == ce->ino)
			return k->v[i].fd;
	int ret = ghost_node_of(e, &n);
	if (ret || (ret = ghost_make(&n, &g)))
		return ret;
	if ((ret = ghost_unmake(&g))) {
		pr_err("%s: cannot remove it again: %s", g.path, strerror(-ret));
		close(g.fd);
		return ret;
	}
	if (k->nr == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		struct node_keeper *v = realloc(k->v, cap * sizeof(*v));
		if (!v) {
			close(g.fd);
			return -ENOMEM;
		}
		k->v = v;
		k->cap = cap;
	}
	k->v[k->nr++] = (struct node_keeper){ ce->dev, ce->ino, g.fd };
	return g.fd;
}

static int node_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	char self[64];
	int keeper = node_keeper(priv, e);
	if (keeper < 0)
		return keeper;
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	/* the keeper's magic link leads to the link itself; with O_NOFOLLOW
	 * the open would stop at the magic link */
	if (S_ISLNK(e->mode))
		flags = O_PATH;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", keeper);
	int fd = open(self, flags | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		pr_err("file %s: cannot open the removed node again: %s", e->path, strerror(err));
		return -err;
	}
	if (!(flags & O_PATH) && e->has_pos && e->pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0) {
		int err = errno;
		pr_err("file %s: cannot seek to %llu: %s", e->path, (unsigned long long)e->pos,
		       strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

const struct file_kind ghost_node_kind = {
	.name = "removed node",
	.types = 1ULL << FILE_TYPE__FILE_GHOST_NODE,
	.match = node_match,
	.dump = node_dump,
	.read = node_read,
	.open = node_open,
	.free = node_free,
};
