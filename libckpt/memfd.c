/*
 * memfd: the files whose contents only the image can give back: memfds
 * (name, contents, seals) and ghost files, regular files unlinked while
 * open (contents up to --ghost-limit, owner and mode).  Two kinds, one
 * contents_entry each.
 *
 * The descriptions of one file share its (dev, ino); the first of them in
 * files.img carries the data.  On restore that one creates the file again
 * (memfd_create, or create + unlink at its old path) and keeps it open in
 * the driver as a keeper; every description is then a fresh open of the
 * keeper through /proc/self/fd, so shared files stay shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "file-kinds.h"
#include "log.h"

#define MEMFD_PREFIX "/memfd:"
#define DELETED " (deleted)"
/* One message of the image holds the data, with room for the rest. */
#define CONTENTS_MAX (IMG_MAX_ENTRY - (1u << 20))
#define GHOST_LIMIT_DEFAULT (1u << 20)

static int is_memfd_link(const char *link)
{
	size_t n = strlen(link), d = strlen(DELETED);
	return !strncmp(link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) && n > d &&
	       !strcmp(link + n - d, DELETED);
}

/* The entry of an earlier description of the same file, if any. */
static const FileEntry *earlier(const struct fd_dump *f, FileType type)
{
	const struct files_dump *c = f->fdump;
	for (size_t i = 0; i < c->nr; i++)
		if (c->descs[i].dev == f->st->st_dev && c->descs[i].ino == f->st->st_ino &&
		    c->descs[i].entry->type == type)
			return c->descs[i].entry;
	return NULL;
}

/* Read the whole file through a duplicate of the task's fd. */
static int read_contents(const struct fd_dump *f, ContentsEntry *ce)
{
	int fd = files_getfd(f->pid, f->fd), ret = 0;
	if (fd < 0) {
		pr_err("pid %d: fd %d: %s: cannot read it: %s", f->pid, f->fd, f->link, strerror(-fd));
		return fd;
	}
	/* A write-only description cannot be read: open the file again. */
	int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
	if (acc == O_WRONLY) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		close(fd);
		if ((fd = rfd) < 0) {
			pr_err("pid %d: fd %d: %s: cannot read it: %s", f->pid, f->fd, f->link,
			       strerror(errno));
			return -errno;
		}
	}
	size_t len = ce->size;
	uint8_t *buf = arena_alloc(&f->fdump->a, len ? len : 1);
	size_t done = 0;
	while (buf && done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	if (!buf)
		return -ENOMEM;
	if (ret) {
		pr_err("pid %d: fd %d: %s: read: %s", f->pid, f->fd, f->link, strerror(-ret));
		return ret;
	}
	ce->has_data = 1;
	ce->data.data = buf;
	ce->data.len = len;
	return 0;
}

static ContentsEntry *new_contents(const struct fd_dump *f)
{
	ContentsEntry *ce = arena_alloc(&f->fdump->a, sizeof(*ce));
	if (!ce)
		return NULL;
	contents_entry__init(ce);
	ce->ino = f->st->st_ino;
	ce->has_dev = 1;
	ce->dev = f->st->st_dev;
	ce->size = (uint64_t)f->st->st_size;
	return ce;
}

/* ------------------------------ memfd -------------------------------- */

static int memfd_match(const struct fd_dump *f)
{
	return S_ISREG(f->st->st_mode) && f->st->st_nlink == 0 && is_memfd_link(f->link);
}

static int memfd_seals(const struct fd_dump *f, uint32_t *seals)
{
	int fd = files_getfd(f->pid, f->fd);
	if (fd < 0)
		return fd;
	int s = fcntl(fd, F_GET_SEALS);
	int ret = s < 0 ? -errno : 0;
	close(fd);
	*seals = (uint32_t)s;
	return ret;
}

static int memfd_dump(struct fd_dump *f, FileEntry *e)
{
	ContentsEntry *ce = new_contents(f);
	if (!ce)
		return -ENOMEM;
	size_t n = strlen(f->link) - strlen(MEMFD_PREFIX) - strlen(DELETED);
	ce->name = arena_alloc(&f->fdump->a, n + 1);
	if (!ce->name)
		return -ENOMEM;
	memcpy(ce->name, f->link + strlen(MEMFD_PREFIX), n);
	int ret = memfd_seals(f, &ce->seals);
	if (ret) {
		pr_err("pid %d: fd %d: %s: cannot read its seals: %s", f->pid, f->fd, f->link,
		       strerror(-ret));
		return ret;
	}
	ce->has_seals = 1;
	e->type = FILE_TYPE__FILE_MEMFD;
	e->contents = ce;
	if (earlier(f, FILE_TYPE__FILE_MEMFD))
		return 0;
	if (ce->size > CONTENTS_MAX) {
		pr_err("pid %d: fd %d: %s: memfd of %llu bytes is over the %u bytes supported",
		       f->pid, f->fd, f->link, (unsigned long long)ce->size, CONTENTS_MAX);
		return -ENOTSUP;
	}
	return read_contents(f, ce);
}

/* ------------------------------ ghost -------------------------------- */

static int ghost_match(const struct fd_dump *f)
{
	return f->link[0] == '/' && S_ISREG(f->st->st_mode) && f->st->st_nlink == 0;
}

static int ghost_dump(struct fd_dump *f, FileEntry *e)
{
	const struct ckpt_dump_opts *o = f->fdump->opts;
	uint64_t limit = o && o->ghost_limit ? o->ghost_limit : GHOST_LIMIT_DEFAULT;
	size_t n = strlen(f->link), d = strlen(DELETED);
	ContentsEntry *ce = new_contents(f);
	if (!ce)
		return -ENOMEM;
	ce->has_uid = ce->has_gid = 1;
	ce->uid = f->st->st_uid;
	ce->gid = f->st->st_gid;
	e->type = FILE_TYPE__FILE_GHOST;
	e->contents = ce;
	if (n > d && !strcmp(f->link + n - d, DELETED))
		n -= d;
	if (!(e->path = arena_alloc(&f->fdump->a, n + 1)))
		return -ENOMEM;
	memcpy(e->path, f->link, n);
	if (earlier(f, FILE_TYPE__FILE_GHOST))
		return 0;
	if (ce->size > limit || ce->size > CONTENTS_MAX) {
		pr_err("pid %d: fd %d: %s: unlinked file of %llu bytes is over the ghost limit of "
		       "%llu bytes",
		       f->pid, f->fd, f->link, (unsigned long long)ce->size,
		       (unsigned long long)(limit < CONTENTS_MAX ? limit : CONTENTS_MAX));
		return -ENOTSUP;
	}
	return read_contents(f, ce);
}

/* ------------------------------ restore ------------------------------ */

struct keeper {
	uint64_t dev, ino;
	int fd;
};

struct keepers {
	struct keeper *v;
	size_t nr, cap;
};

static int keepers_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)set;
	(void)rf;
	*priv = calloc(1, sizeof(struct keepers));
	return *priv ? 0 : -ENOMEM;
}

static void keepers_free(void *priv)
{
	struct keepers *k = priv;
	for (size_t i = 0; i < k->nr; i++)
		close(k->v[i].fd);
	free(k->v);
	free(k);
}

static int find_keeper(const struct keepers *k, const ContentsEntry *ce)
{
	for (size_t i = 0; i < k->nr; i++)
		if (k->v[i].ino == ce->ino && k->v[i].dev == ce->dev)
			return k->v[i].fd;
	return -1;
}

static int add_keeper(struct keepers *k, const ContentsEntry *ce, int fd)
{
	if (k->nr == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		struct keeper *v = realloc(k->v, cap * sizeof(*v));
		if (!v) {
			close(fd);
			return -ENOMEM;
		}
		k->v = v;
		k->cap = cap;
	}
	k->v[k->nr++] = (struct keeper){ ce->dev, ce->ino, fd };
	return 0;
}

static int fill(int fd, const ContentsEntry *ce)
{
	size_t done = 0;
	while (done < ce->data.len) {
		ssize_t n = pwrite(fd, ce->data.data + done, ce->data.len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return ftruncate(fd, (off_t)ce->size) < 0 ? -errno : 0;
}

static int check_contents(const FileEntry *e)
{
	const ContentsEntry *ce = e->contents;
	if (!ce || (ce->has_data && ce->data.len > ce->size) || ce->size > CONTENTS_MAX ||
	    (e->type == FILE_TYPE__FILE_GHOST && !e->path)) {
		pr_err("file %u: bad contents record", e->id);
		return -EINVAL;
	}
	return 0;
}

static int create_memfd(const FileEntry *e)
{
	const ContentsEntry *ce = e->contents;
	const char *name = ce->name ? ce->name : "";
	if (strlen(name) > 249) {
		pr_err("file %u: memfd name too long", e->id);
		return -EINVAL;
	}
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), ret = 0;
	if (fd < 0)
		ret = -errno;
	if (!ret)
		ret = fill(fd, ce);
	if (!ret && ce->seals && fcntl(fd, F_ADD_SEALS, ce->seals) < 0)
		ret = -errno;
	if (ret) {
		pr_err("file %u: cannot recreate memfd:%s: %s", e->id, name, strerror(-ret));
		if (fd >= 0)
			close(fd);
	}
	return ret ? ret : fd;
}

/* Create at the old path (or next to it when the name is taken again). */
static int create_ghost_at(const FileEntry *e, char *path, size_t len)
{
	mode_t mode = 0600;
	snprintf(path, len, "%s", e->path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) {
		snprintf(path, len, "%s.ckpt-ghost-%llu", e->path,
			 (unsigned long long)e->contents->ino);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	return fd < 0 ? -errno : fd;
}

static int create_ghost(const FileEntry *e)
{
	const ContentsEntry *ce = e->contents;
	char path[4096 + 64];
	int fd = create_ghost_at(e, path, sizeof(path)), ret = 0;
	if (fd < 0) {
		pr_err("file %s: cannot create the unlinked file again: %s", e->path, strerror(-fd));
		return fd;
	}
	ret = fill(fd, ce);
	if (!ret && ce->has_uid && ce->has_gid && fchown(fd, ce->uid, ce->gid) < 0)
		ret = -errno;
	if (!ret && fchmod(fd, e->mode & 07777) < 0)
		ret = -errno;
	if (unlink(path) < 0 && !ret)
		ret = -errno;
	if (ret) {
		pr_err("file %s: cannot recreate the unlinked file: %s", e->path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

static int contents_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	struct keepers *k = priv;
	char path[64];
	int ret = check_contents(e);
	if (ret)
		return ret;
	int keeper = find_keeper(k, e->contents);
	if (keeper < 0) {
		if (!e->contents->has_data) {
			pr_err("file %u: no data for its file in the image", e->id);
			return -EINVAL;
		}
		keeper = e->type == FILE_TYPE__FILE_MEMFD ? create_memfd(e) : create_ghost(e);
		if (keeper < 0 || (ret = add_keeper(k, e->contents, keeper)))
			return keeper < 0 ? keeper : ret;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", keeper);
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_NOFOLLOW); /* shm_open */
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		pr_err("file %u: cannot open its %s again: %s", e->id,
		       e->type == FILE_TYPE__FILE_MEMFD ? "memfd" : e->path, strerror(errno));
		return -errno;
	}
	if (e->has_pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

const struct file_kind memfd_kind = {
	.name = "memfd",
	.types = 1ULL << FILE_TYPE__FILE_MEMFD,
	.match = memfd_match,
	.dump = memfd_dump,
	.read = keepers_read,
	.open = contents_open,
	.free = keepers_free,
};

const struct file_kind ghost_kind = {
	.name = "ghost",
	.types = 1ULL << FILE_TYPE__FILE_GHOST,
	.match = ghost_match,
	.dump = ghost_dump,
	.read = keepers_read,
	.open = contents_open,
	.free = keepers_free,
};
