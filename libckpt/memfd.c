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
#include <sys/stat.h>
#include <time.h>
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

/* The data extents of `fd` below `size`, (offset, length) pairs in
 * ce->extents, and their bytes in *total: holes (SEEK_HOLE) stay holes.
 * A file system that knows no holes reports one extent, the whole file. */
static int find_extents(struct arena *a, int fd, ContentsEntry *ce, uint64_t *total)
{
	uint64_t *v = NULL, *nv;
	size_t nr = 0, cap = 0;
	off_t at = 0, size = (off_t)ce->size;
	*total = 0;
	while (at < size) {
		off_t data = lseek(fd, at, SEEK_DATA), hole;
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 || (hole = lseek(fd, data, SEEK_HOLE)) < 0) {
			free(v);
			return -errno;
		}
		if (data >= size)
			break;
		if (hole > size)
			hole = size;
		if (nr + 2 > cap) {
			cap = cap ? cap * 2 : 16;
			if (!(nv = realloc(v, cap * sizeof(*v)))) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[nr++] = (uint64_t)data;
		v[nr++] = (uint64_t)(hole - data);
		*total += (uint64_t)(hole - data);
		at = hole;
	}
	ce->extents = arena_alloc(a, (nr ? nr : 1) * sizeof(*v));
	if (ce->extents && nr)
		memcpy(ce->extents, v, nr * sizeof(*v));
	ce->n_extents = nr;
	free(v);
	return ce->extents ? 0 : -ENOMEM;
}

/* All of len at offset `at`, reading (pread) or writing (pwrite). */
static int rw_all(int fd, uint8_t *buf, size_t len, off_t at, int write)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write ? pwrite(fd, buf + done, len - done, at + (off_t)done)
				  : pread(fd, buf + done, len - done, at + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int read_all(int fd, uint8_t *buf, size_t len, off_t at)
{
	return rw_all(fd, buf, len, at, 0);
}

/* Read the file's data (its extents, not its holes) through a duplicate
 * of the task's fd; over `limit` bytes of data it is refused by the
 * caller, with *total set. */
static int read_contents(const struct fd_dump *f, ContentsEntry *ce, uint64_t limit,
			 uint64_t *total)
{
	int fd = files_getfd(f->pid, f->fd), ret = 0;
	if (fd < 0) {
		pr_err("pid %d: fd %d: %s: cannot read it: %s", f->pid, f->fd, f->link, strerror(-fd));
		return fd;
	}
	/* A description of our own: SEEK_DATA/SEEK_HOLE move the offset of
	 * the one they are given, and the task's must stay (it runs on after
	 * a dump with -R, or during a check).  Where the file cannot be
	 * opened again, its own, read-only, offset put back after. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
	/* O_NOATIME where we may (the owner, CAP_FOWNER): reading it would
	 * change the atime of the file that runs on */
	int rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (rfd < 0 && errno == EPERM)
		rfd = open(path, O_RDONLY | O_CLOEXEC);
	off_t was = -1;
	if (rfd >= 0) {
		close(fd);
		fd = rfd;
	} else if (acc == O_WRONLY) { /* a write-only description cannot be read */
		ret = -errno;
		pr_err("pid %d: fd %d: %s: cannot read it: %s", f->pid, f->fd, f->link,
		       strerror(-ret));
		close(fd);
		return ret;
	} else {
		was = lseek(fd, 0, SEEK_CUR);
	}
	ret = find_extents(&f->fdump->a, fd, ce, total);
	if (was >= 0 && lseek(fd, was, SEEK_SET) < 0 && !ret)
		ret = -errno;
	if (ret) {
		pr_err("pid %d: fd %d: %s: cannot find its data: %s", f->pid, f->fd, f->link,
		       strerror(-ret));
		close(fd);
		return ret;
	}
	if (*total > limit) {
		close(fd);
		return -EFBIG;
	}
	uint8_t *buf = arena_alloc(&f->fdump->a, *total ? *total : 1);
	size_t done = 0;
	for (size_t i = 0; buf && !ret && i < ce->n_extents; i += 2) {
		ret = read_all(fd, buf + done, ce->extents[i + 1], (off_t)ce->extents[i]);
		done += ce->extents[i + 1];
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
	ce->data.len = *total;
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
	ce->has_atime_ns = ce->has_mtime_ns = 1;
	ce->atime_ns = (int64_t)f->st->st_atim.tv_sec * 1000000000LL + f->st->st_atim.tv_nsec;
	ce->mtime_ns = (int64_t)f->st->st_mtim.tv_sec * 1000000000LL + f->st->st_mtim.tv_nsec;
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
	uint64_t total;
	if ((ret = read_contents(f, ce, CONTENTS_MAX, &total)) == -EFBIG) {
		pr_err("pid %d: fd %d: %s: memfd with %llu bytes of data is over the %u bytes "
		       "supported",
		       f->pid, f->fd, f->link, (unsigned long long)total, CONTENTS_MAX);
		return -ENOTSUP;
	}
	return ret;
}

/* ------------------------------ ghost -------------------------------- */

static int ghost_match(const struct fd_dump *f)
{
	return f->link[0] == '/' && S_ISREG(f->st->st_mode) && f->st->st_nlink == 0;
}

static int ghost_dump(struct fd_dump *f, FileEntry *e)
{
	/* (shared anonymous memory, "/dev/zero (deleted)", is shmem-fd.c's) */
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
	/* The limit counts data, not holes. */
	uint64_t total;
	if (limit > CONTENTS_MAX)
		limit = CONTENTS_MAX;
	int ret = read_contents(f, ce, limit, &total);
	if (ret == -EFBIG) {
		pr_err("pid %d: fd %d: %s: unlinked file with %llu bytes of data is over the ghost "
		       "limit of %llu bytes",
		       f->pid, f->fd, f->link, (unsigned long long)total, (unsigned long long)limit);
		return -ENOTSUP;
	}
	return ret;
}

/* ------------------------------ restore ------------------------------ */

struct keeper {
	uint64_t dev, ino;
	int fd;
	int given; /* a memfd's keeper is a description of the tree (below) */
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
		if (k->v[i].fd >= 0)
			close(k->v[i].fd);
	free(k->v);
	free(k);
}

/* Every description is open (a given keeper is one through its dup):
 * the keepers go now, before watches (inotify.c) are added on their
 * files, so that their close is no event of the restored job's. */
static int keepers_close(struct restore_files *rf, void *priv)
{
	(void)rf;
	struct keepers *k = priv;
	for (size_t i = 0; i < k->nr; i++)
		if (k->v[i].fd >= 0) {
			close(k->v[i].fd);
			k->v[i].fd = -1;
		}
	return 0;
}

static struct keeper *find_keeper(struct keepers *k, const ContentsEntry *ce)
{
	for (size_t i = 0; i < k->nr; i++)
		if (k->v[i].ino == ce->ino && k->v[i].dev == ce->dev)
			return &k->v[i];
	return NULL;
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
	k->v[k->nr++] = (struct keeper){ ce->dev, ce->ino, fd, 0 };
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len, off_t at)
{
	return rw_all(fd, (uint8_t *)buf, len, at, 1);
}

/* The data at its extents (holes are not written: they stay holes), then
 * the size. */
static int fill(int fd, const ContentsEntry *ce)
{
	int ret = 0;
	if (!ce->n_extents)
		ret = write_all(fd, ce->data.data, ce->data.len, 0);
	for (size_t i = 0, done = 0; !ret && i < ce->n_extents; i += 2) {
		ret = write_all(fd, ce->data.data + done, ce->extents[i + 1], (off_t)ce->extents[i]);
		done += ce->extents[i + 1];
	}
	return ret ? ret : ftruncate(fd, (off_t)ce->size) < 0 ? -errno : 0;
}

/* Last, once data, owner and mode are in place: the dumped times. */
static int set_times(int fd, const ContentsEntry *ce)
{
	if (!ce->has_atime_ns || !ce->has_mtime_ns)
		return 0;
	struct timespec ts[2] = {
		{ (time_t)(ce->atime_ns / 1000000000), (long)(ce->atime_ns % 1000000000) },
		{ (time_t)(ce->mtime_ns / 1000000000), (long)(ce->mtime_ns % 1000000000) },
	};
	return futimens(fd, ts) < 0 ? -errno : 0;
}

/* Extents: pairs, in order, inside the file, as many bytes as the data. */
static int valid_extents(const ContentsEntry *ce)
{
	uint64_t end = 0, sum = 0;
	if (ce->n_extents % 2 || (ce->n_extents && !ce->has_data))
		return 0;
	for (size_t i = 0; i < ce->n_extents; i += 2) {
		uint64_t at = ce->extents[i], len = ce->extents[i + 1];
		if (at < end || len > ce->size || at > ce->size - len || at > INT64_MAX)
			return 0;
		end = at + len;
		sum += len;
	}
	return !ce->n_extents || sum == ce->data.len;
}

static int check_contents(const FileEntry *e)
{
	const ContentsEntry *ce = e->contents;
	if (!ce || (ce->has_data && ce->data.len > ce->size) || ce->size > INT64_MAX ||
	    (!ce->n_extents && ce->size > CONTENTS_MAX) || !valid_extents(ce) ||
	    (ce->has_atime_ns && (ce->atime_ns < 0)) || (ce->has_mtime_ns && ce->mtime_ns < 0) ||
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
	if (!ret && fchmod(fd, e->mode & 07777) < 0)
		ret = -errno;
	if (!ret)
		ret = set_times(fd, ce);
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
	if (!ret)
		ret = set_times(fd, ce);
	if (ret) {
		pr_err("file %s: cannot recreate the unlinked file: %s", e->path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * The description memfd_create() made is the one that does not count as a
 * writer of the file (the kernel's alloc_file does not take write access;
 * an open of /proc/self/fd/N does): a memfd held only through it can be
 * run with execveat(), and one reopened read-write would fail that with
 * ETXTBSY.  So the first read-write description of a memfd is its keeper
 * itself, flags set with F_SETFL; the others are opens of it, as before.
 */
static int give_keeper(struct keeper *kp, const FileEntry *e)
{
	int fd = fcntl(kp->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int fl = (int)e->flags & (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME);
	if (fcntl(fd, F_SETFL, fl) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	kp->given = 1;
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
	struct keeper *kp = find_keeper(k, e->contents);
	if (!kp) {
		if (!e->contents->has_data) {
			pr_err("file %u: no data for its file in the image", e->id);
			return -EINVAL;
		}
		int keeper = e->type == FILE_TYPE__FILE_MEMFD ? create_memfd(e) : create_ghost(e);
		if (keeper < 0 || (ret = add_keeper(k, e->contents, keeper)))
			return keeper < 0 ? keeper : ret;
		kp = &k->v[k->nr - 1];
	}
	int fd;
	if (e->type == FILE_TYPE__FILE_MEMFD && !kp->given && (e->flags & O_ACCMODE) == O_RDWR) {
		fd = give_keeper(kp, e);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", kp->fd);
		/* O_TMPFILE (made by open(dir, O_TMPFILE)) carries O_DIRECTORY:
		 * a reopen of the file with it fails with ENOTDIR */
		int flags = (int)e->flags &
			    ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_NOFOLLOW | O_TMPFILE);
		fd = open(path, flags | O_CLOEXEC);
		fd = fd < 0 ? -errno : fd;
	}
	if (fd < 0) {
		pr_err("file %u: cannot open its %s again: %s", e->id,
		       e->type == FILE_TYPE__FILE_MEMFD ? "memfd" : e->path, strerror(-fd));
		return fd;
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
	.pool_ready = keepers_close,
	.open = contents_open,
	.free = keepers_free,
	.alone_ok = 1,
};

const struct file_kind ghost_kind = {
	.name = "ghost",
	.types = 1ULL << FILE_TYPE__FILE_GHOST,
	.match = ghost_match,
	.dump = ghost_dump,
	.read = keepers_read,
	.pool_ready = keepers_close,
	.open = contents_open,
	.free = keepers_free,
	.alone_ok = 1,
};
