/*
 * saved-files: the job's own files on node-local scratch, kept with the
 * set (proto/saved.proto).
 *
 * A job's state is not only in its processes: MPI libraries map shared
 * memory segments from /dev/shm (OpenMPI's vader_segment.*) and keep a
 * session directory in /tmp (PMIx data stores mapped shared, hwloc.sm, a
 * FIFO).  Writes through a shared mapping of a tmpfs file change neither
 * its size nor its mtime, so after the job ran on past a checkpoint the
 * files hold later state than the images and nothing can tell; on
 * another node they are gone.  So, at the dump, every file that
 *   - a process of the tree maps shared or holds open,
 *   - is on tmpfs/ramfs, or below /tmp, /var/tmp or /dev/shm,
 *   - is still linked at its path, and owned by the process's user,
 *   - is a FIFO, or a regular file that is mapped shared, or held open and
 *     at most SAVED_OPEN_MAX bytes and not an append-only log,
 * is saved: its contents (holes left out), mode, owner, times, and the
 * directories leading to it from that scratch directory.  The restore
 * puts each back at its path before any process of the tree exists: a
 * fresh inode filled and then renamed over whatever the path holds, so a
 * process still using the old file keeps it, and the restored tree opens
 * and maps exactly what was dumped (the size and mtime checks of
 * regfile.c and restore-mem.c then pass).  Shared writable mappings of
 * other files (a disk file on shared storage) are not saved: the dump
 * says so by name, and the restore refuses them if their size or mtime
 * changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <dirent.h>

#include "created.h"
#include "files.h"
#include "freeze.h"
#include "log.h"
#include "proc.h"
#include "saved-files.h"
#include "step.h"
#include "saved.pb-c.h"
#include "shmem.h"

#define TMPFS_MAGIC_NR 0x01021994
#define RAMFS_MAGIC_NR 0x858458f6
#define SAVED_OPEN_MAX (64ULL << 20) /* largest file saved for being held open */
#define SAVED_MAX_FILES 4096
#define SAVED_MAX_SIZE (1ULL << 40)
#define PAGE 4096ULL

static const char *const scratch_dirs[] = { "/tmp/", "/var/tmp/", "/dev/shm/" };

struct saved {
	SavedFile e;
	int fd;     /* reads the contents (regular files) */
	int mapped; /* some process maps it shared */
	size_t base; /* path[0, base) is the scratch directory, kept as it is */
};

struct saved_list {
	struct saved *v;
	size_t nr, cap;
	SavedDir *dirs;
	size_t nr_dirs, cap_dirs;
};

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int is_memory_fs(const struct statfs *sfs)
{
	return sfs->f_type == TMPFS_MAGIC_NR || sfs->f_type == RAMFS_MAGIC_NR;
}

static int on_memory_fs(const char *path)
{
	struct statfs sfs;
	return !statfs(path, &sfs) && is_memory_fs(&sfs);
}

/* The length of the scratch directory prefix of path ("/tmp/x/y": 4), or 0. */
static size_t scratch_prefix(const char *path)
{
	for (size_t i = 0; i < sizeof(scratch_dirs) / sizeof(scratch_dirs[0]); i++) {
		size_t n = strlen(scratch_dirs[i]);
		if (!strncmp(path, scratch_dirs[i], n) && path[n])
			return n - 1;
	}
	return 0;
}

/* Where the tmpfs that holds path (device dev) is mounted: the highest
 * ancestor on the same device ("/run/user/1000/x": "/run/user/1000"). */
static size_t mount_prefix(const char *path, dev_t dev)
{
	char dir[PATH_MAX];
	size_t base = strrchr(path, '/') - path;
	struct stat st;

	while (base > 0) {
		memcpy(dir, path, base);
		dir[base] = 0;
		char *up = strrchr(dir, '/');
		size_t parent = (size_t)(up - dir);
		if (parent == 0)
			break;
		dir[parent] = 0;
		if (stat(dir, &st) || st.st_dev != dev)
			break;
		base = parent;
	}
	return base;
}

static int valid_path(const char *p)
{
	size_t n = strlen(p);
	return p[0] == '/' && n > 1 && n < PATH_MAX && p[n - 1] != '/' && !strstr(p, "//") &&
	       !strstr(p, "/./") && !strstr(p, "/../") &&
	       !(n >= 2 && !strcmp(p + n - 2, "/.")) && !(n >= 3 && !strcmp(p + n - 3, "/.."));
}

static struct saved *find_saved(struct saved_list *l, const struct stat *st)
{
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].e.dev == st->st_dev && l->v[i].e.ino == st->st_ino)
			return &l->v[i];
	return NULL;
}

/* What a process has at `link` (/proc/PID/fd/N or map_files/A-B): */
struct candidate {
	pid_t pid;
	uid_t euid;
	const char *link;
	const char *path; /* where it is linked, as /proc shows it */
	int mapped, writable, append_only;
};

static int add_saved(struct saved_list *l, const struct candidate *c, const struct stat *st,
		     size_t base)
{
	if (l->nr == SAVED_MAX_FILES) {
		pr_err("pid %d: %s: more than %d files to keep with the set", c->pid, c->path,
		       SAVED_MAX_FILES);
		return -E2BIG;
	}
	if (l->nr == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct saved *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct saved *s = &l->v[l->nr];
	saved_file__init(&s->e);
	s->fd = -1;
	if (S_ISREG(st->st_mode) && (s->fd = open(c->link, O_RDONLY | O_CLOEXEC)) < 0) {
		int err = errno;
		pr_err("pid %d: %s: cannot read it to keep it with the set: %s", c->pid, c->path,
		       strerror(err));
		return -err;
	}
	s->e.path = strdup(c->path);
	if (!s->e.path) {
		if (s->fd >= 0)
			close(s->fd);
		return -ENOMEM;
	}
	s->e.mode = st->st_mode & (S_IFMT | 07777);
	s->e.uid = st->st_uid;
	s->e.gid = st->st_gid;
	s->e.size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	s->e.atime_ns = ns_of(&st->st_atim);
	s->e.mtime_ns = ns_of(&st->st_mtim);
	s->e.dev = st->st_dev;
	s->e.ino = st->st_ino;
	s->mapped = c->mapped;
	s->base = base;
	l->nr++;
	return 0;
}

/* Keep the file c names with the set if it is the job's, on scratch. */
static int consider(struct saved_list *l, const struct candidate *c)
{
	struct stat st, at;

	if (stat(c->link, &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) ||
	    c->path[0] != '/' || strstr(c->path, " (deleted)") || st.st_nlink == 0)
		return 0; /* gone, or not a file kept by path (ghosts: memfd.c) */
	struct saved *s = find_saved(l, &st);
	if (s) {
		s->mapped |= c->mapped;
		return 0;
	}
	size_t base = scratch_prefix(c->path);
	if (!base && on_memory_fs(c->link))
		base = mount_prefix(c->path, st.st_dev);
	if (!base) {
		if (c->mapped && c->writable)
			pr_err("warning: pid %d: %s is mapped shared and writable but is not on "
			       "node-local scratch: not kept with the set (a restore refuses it if "
			       "its size or mtime changed)",
			       c->pid, c->path);
		return 0;
	}
	if (!valid_path(c->path) || stat(c->path, &at) || at.st_dev != st.st_dev ||
	    at.st_ino != st.st_ino) {
		pr_info("pid %d: %s: no longer at its path: left to the file checks", c->pid,
			c->path);
		return 0;
	}
	if (st.st_uid != c->euid) {
		pr_info("pid %d: %s: owned by uid %u, not the job's: left as it is", c->pid,
			c->path, st.st_uid);
		return 0;
	}
	/* Any open to read it, even O_NONBLOCK, would break a write lease
	 * (and start the break, which the job would see). */
	if (locks_inode_leased(st.st_dev, st.st_ino)) {
		pr_info("pid %d: %s: under a lease: left to the file checks", c->pid, c->path);
		return 0;
	}
	if (S_ISREG(st.st_mode) && !c->mapped &&
	    ((uint64_t)st.st_size > SAVED_OPEN_MAX || c->append_only)) {
		pr_info("pid %d: %s: %s: left to the file checks", c->pid, c->path,
			c->append_only ? "an append-only log" : "larger than 64 MiB");
		return 0;
	}
	return add_saved(l, c, &st, base);
}

/* ---- dump: what the tree has ---- */

struct maps_scan {
	struct saved_list *l;
	pid_t pid;
	uid_t euid;
	int ret;
	const char *step_dir; /* an srun step's PMIx store: mem.c keeps it */
};

/* "start-end perms offset dev inode   path": shared file mappings. */
static int scan_maps_line(char *line, void *arg)
{
	struct maps_scan *m = arg;
	unsigned long long start, end, ino;
	char perms[8], link[80];
	int path_at = 0;

	if (m->ret || sscanf(line, "%llx-%llx %7s %*s %*s %llu %n", &start, &end, perms, &ino,
			     &path_at) != 4 || !path_at || perms[3] != 's' || line[path_at] != '/')
		return 0;
	line[strcspn(line, "\n")] = 0;
	if (m->step_dir && !strncmp(line + path_at, m->step_dir, strlen(m->step_dir)))
		return 0;
	snprintf(link, sizeof(link), "/proc/%d/map_files/%llx-%llx", m->pid, start, end);
	struct candidate c = { m->pid, m->euid, link, line + path_at, 1, perms[1] == 'w', 0 };
	m->ret = consider(m->l, &c);
	return m->ret;
}

/* O_WRONLY|O_APPEND: a log the job writes to, which the file checks let grow. */
static int fd_append_only(pid_t pid, const char *fd)
{
	char path[320], line[128];
	unsigned flags = 0;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %o", &flags) == 1)
			break;
	if (f)
		fclose(f);
	return (flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND);
}

static int scan_fds(struct saved_list *l, pid_t pid, uid_t euid)
{
	char dir[64], link[320], path[PATH_MAX];
	struct dirent *de;
	int ret = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		if (n <= 0 || path[0] != '/')
			continue;
		path[n] = 0;
		struct candidate c = { pid, euid, link, path, 0, 0, fd_append_only(pid, de->d_name) };
		ret = consider(l, &c);
	}
	closedir(d);
	return ret;
}

static int task_euid(pid_t pid, uid_t *euid)
{
	char buf[128];
	unsigned r, e;
	if (proc_status_field(pid, "Uid", buf, sizeof(buf)) || sscanf(buf, "%u %u", &r, &e) != 2)
		return -ESRCH;
	*euid = e;
	return 0;
}

/* The directories from the scratch directory down to s's parent. */
static int add_dirs(struct saved_list *l, const struct saved *s)
{
	char dir[PATH_MAX];
	const char *p = s->e.path;
	size_t end = (size_t)(strrchr(p, '/') - p);

	for (size_t at = s->base + 1; at <= end; at++) {
		if (p[at] != '/' && at != end)
			continue;
		memcpy(dir, p, at);
		dir[at] = 0;
		size_t k;
		for (k = 0; k < l->nr_dirs && strcmp(l->dirs[k].path, dir); k++)
			;
		struct stat st;
		if (k < l->nr_dirs || at <= s->base || lstat(dir, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (l->nr_dirs == l->cap_dirs) {
			size_t cap = l->cap_dirs ? 2 * l->cap_dirs : 16;
			SavedDir *v = realloc(l->dirs, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			l->dirs = v;
			l->cap_dirs = cap;
		}
		SavedDir *d = &l->dirs[l->nr_dirs];
		saved_dir__init(d);
		if (!(d->path = strdup(dir)))
			return -ENOMEM;
		d->mode = st.st_mode & 07777;
		d->uid = st.st_uid;
		d->gid = st.st_gid;
		l->nr_dirs++;
	}
	return 0;
}

static void saved_name(char *buf, size_t len, const char *prefix, const SavedFile *e)
{
	snprintf(buf, len, "%ssaved-%" PRIu64 "-%" PRIu64 ".img", prefix, e->dev, e->ino);
}

static int write_saved(struct img_set *set, struct saved_list *l, struct mem_stats *st)
{
	SavedFilesEntry all = SAVED_FILES_ENTRY__INIT;
	SavedFile **files = calloc(l->nr, sizeof(*files));
	SavedDir **dirs = calloc(l->nr_dirs + 1, sizeof(*dirs));
	struct img *img;
	int ret = files && dirs ? 0 : -ENOMEM;

	for (size_t i = 0; !ret && i < l->nr; i++) {
		struct saved *s = &l->v[i];
		char pages[96], pagemap[96], what[PATH_MAX + 32];
		files[i] = &s->e;
		if (!S_ISREG(s->e.mode))
			continue;
		saved_name(pages, sizeof(pages), "pages-", &s->e);
		saved_name(pagemap, sizeof(pagemap), "pagemap-", &s->e);
		snprintf(what, sizeof(what), "%s (kept with the set)", s->e.path);
		ret = dump_file_pages(set, what, pages, pagemap, s->fd, s->e.size, st);
		pr_info("%s: kept with the set (%" PRIu64 " bytes%s)", s->e.path, s->e.size,
			s->mapped ? ", mapped shared" : "");
	}
	for (size_t i = 0; i < l->nr_dirs; i++)
		dirs[i] = &l->dirs[i];
	all.n_files = l->nr;
	all.files = files;
	all.n_dirs = l->nr_dirs;
	all.dirs = dirs;
	if (!ret && !(ret = img_create(set, IMG_SAVED, "saved.img", &img))) {
		ret = img_write(img, &all.base);
		int cret = img_close_write(img);
		ret = ret ? ret : cret;
	}
	free(files);
	free(dirs);
	return ret;
}

static void saved_list_free(struct saved_list *l)
{
	for (size_t i = 0; i < l->nr; i++) {
		free(l->v[i].e.path);
		if (l->v[i].fd >= 0)
			close(l->v[i].fd);
	}
	for (size_t i = 0; i < l->nr_dirs; i++)
		free(l->dirs[i].path);
	free(l->v);
	free(l->dirs);
}

int dump_saved_files(struct img_set *set, const struct frozen_tree *tree, struct mem_stats *st)
{
	struct saved_list l = { 0 };
	int ret = 0;

	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		char maps[64];
		uid_t euid;
		if (t->zombie || t->step_client)
			continue; /* a step's client: not restored */
		if ((ret = task_euid(t->pid, &euid)))
			break;
		char *step_dir = t->step ? step_tmpdir(t->pid) : NULL;
		struct maps_scan m = { &l, t->pid, euid, 0, step_dir };
		snprintf(maps, sizeof(maps), "/proc/%d/maps", t->pid);
		ret = proc_each_line(maps, scan_maps_line, &m);
		free(step_dir);
		ret = ret ? ret : m.ret;
		if (!ret)
			ret = scan_fds(&l, t->pid, euid);
	}
	for (size_t i = 0; !ret && i < l.nr; i++)
		ret = add_dirs(&l, &l.v[i]);
	if (!ret && l.nr)
		ret = write_saved(set, &l, st);
	saved_list_free(&l);
	return ret;
}

/* ---- restore, in the driver, before the tree exists ---- */

/* The directory that holds path, opened without following a symlink, and
 * the last component.  Only scratch: below /tmp, /var/tmp, /dev/shm, or on
 * tmpfs/ramfs (a crafted set must not make a root restore write
 * elsewhere). */
static int open_parent(const char *path, const char **name)
{
	char dir[PATH_MAX];
	struct statfs sfs;
	size_t n = (size_t)(strrchr(path, '/') - path);

	*name = path + n + 1;
	memcpy(dir, path, n);
	dir[n] = 0;
	int fd = dir_open_nofollow(n ? dir : "/", O_RDONLY);
	if (fd < 0) {
		pr_err("%s (kept with the set): %s: %s", path, n ? dir : "/", strerror(-fd));
		return fd;
	}
	if (!scratch_prefix(path) && (fstatfs(fd, &sfs) || !is_memory_fs(&sfs))) {
		pr_err("%s (kept with the set): not on node-local scratch here", path);
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int make_dir(struct img_set *set, const SavedDir *d, int as_root)
{
	const char *name;
	if (!valid_path(d->path)) {
		pr_err("%s/saved.img: directory %s: not a plain absolute path", img_set_dir(set),
		       d->path);
		return -EINVAL;
	}
	int dfd = open_parent(d->path, &name);
	if (dfd < 0)
		return dfd;
	int ret = 0;
	if (!mkdirat(dfd, name, 0700)) {
		if (fchmodat(dfd, name, d->mode & 07777, 0) ||
		    (as_root && fchownat(dfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW)))
			ret = -errno;
	} else if (errno != EEXIST) {
		ret = -errno;
	}
	if (ret)
		pr_err("%s (kept with the set): cannot make the directory: %s", d->path,
		       strerror(-ret));
	close(dfd);
	return ret;
}

/* A FIFO is made again only where it is missing: it holds no data. */
static int put_fifo(int dfd, const char *name, const SavedFile *e, int as_root)
{
	struct stat st;
	if (!mkfifoat(dfd, name, 0600)) {
		if (fchmodat(dfd, name, e->mode & 07777, 0) ||
		    (as_root && fchownat(dfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW)))
			return -errno;
		return 0;
	}
	if (errno != EEXIST)
		return -errno;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISFIFO(st.st_mode))
		return -EEXIST;
	return 0;
}

static int fill_file(struct img_set *set, int fd, const SavedFile *e)
{
	char pages[96], pagemap[96];
	uint64_t len = (e->size + PAGE - 1) & ~(PAGE - 1);

	if (ftruncate(fd, (off_t)e->size))
		return -errno;
	if (!len)
		return 0;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	saved_name(pages, sizeof(pages), "pages-", e);
	saved_name(pagemap, sizeof(pagemap), "pagemap-", e);
	int ret = load_file_pages(set, pages, pagemap, m, len);
	munmap(m, len);
	return ret;
}

/* A fresh inode with the dumped contents, renamed over the path. */
static int put_file(struct img_set *set, int dfd, const char *name, const SavedFile *e,
		    int as_root)
{
	char tmp[NAME_MAX + 1], self[64];
	struct timespec times[2] = { { e->atime_ns / 1000000000, e->atime_ns % 1000000000 },
				     { e->mtime_ns / 1000000000, e->mtime_ns % 1000000000 } };
	int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), ret = 0;
	if (fd < 0)
		return -errno;
	ret = fill_file(set, fd, e);
	if (!ret && (fchmod(fd, e->mode & 07777) || (as_root && fchown(fd, e->uid, e->gid)) ||
		     futimens(fd, times)))
		ret = -errno;
	snprintf(tmp, sizeof(tmp), ".ckpt-%d-%" PRIu64, getpid(), e->ino);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (!ret && linkat(AT_FDCWD, self, dfd, tmp, AT_SYMLINK_FOLLOW))
		ret = -errno;
	if (!ret && renameat(dfd, tmp, dfd, name)) {
		ret = -errno;
		unlinkat(dfd, tmp, 0);
	}
	close(fd);
	return ret;
}

static int valid_file(const SavedFile *e)
{
	return valid_path(e->path) && (S_ISREG(e->mode) || S_ISFIFO(e->mode)) &&
	       e->size <= SAVED_MAX_SIZE && e->atime_ns >= 0 && e->mtime_ns >= 0;
}

static int restore_one(struct img_set *set, const SavedFile *e, int as_root)
{
	const char *name;
	if (!valid_file(e)) {
		pr_err("%s/saved.img: %s: not a file to keep", img_set_dir(set), e->path);
		return -EINVAL;
	}
	int dfd = open_parent(e->path, &name);
	if (dfd < 0)
		return dfd;
	int ret = S_ISFIFO(e->mode) ? put_fifo(dfd, name, e, as_root)
				    : put_file(set, dfd, name, e, as_root);
	if (ret)
		pr_err("%s (kept with the set): cannot put it back: %s", e->path, strerror(-ret));
	close(dfd);
	return ret;
}

int restore_saved_files(struct img_set *set)
{
	SavedFilesEntry *all;
	int as_root = geteuid() == 0, ret;

	if (!img_exists(set, "saved.img"))
		return 0;
	ret = img_read_one(set, IMG_SAVED, "saved.img", &saved_files_entry__descriptor,
			   (ProtobufCMessage **)&all);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < all->n_dirs; i++)
		ret = make_dir(set, all->dirs[i], as_root);
	for (size_t i = 0; !ret && i < all->n_files; i++)
		ret = restore_one(set, all->files[i], as_root);
	protobuf_c_message_free_unpacked(&all->base, NULL);
	return ret;
}
