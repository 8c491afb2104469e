/*
 * files: dump and restore of open files; see files.h.  Pipe data is in
 * pipes.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "arena.h"
#include "files.h"
#include "log.h"
#include "pipes.h"
#include "proc.h"

/* One open file description found in the tree. */
struct desc {
	pid_t pid; /* a task and fd through which it is reachable */
	int fd;
	dev_t dev;
	ino_t ino;
	FileEntry *entry;
};

struct dump_ctx {
	struct arena a;
	struct desc *descs;
	size_t nr, cap;
	const struct frozen_tree *tree;
};

static int same_description(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

struct fdinfo {
	uint64_t pos;
	uint32_t flags;
};

static int parse_fdinfo_line(char *line, void *arg)
{
	struct fdinfo *fi = arg;
	if (!strncmp(line, "pos:", 4))
		fi->pos = strtoull(line + 4, NULL, 10);
	else if (!strncmp(line, "flags:", 6))
		fi->flags = (uint32_t)strtoul(line + 6, NULL, 8);
	return 0;
}

static int is_memory_device(const struct stat *st)
{
	/* /dev/null, zero, full, random, urandom: reopening by path gives
	 * the same thing.  Terminals and other devices need more. */
	if (major(st->st_rdev) != 1)
		return 0;
	unsigned m = minor(st->st_rdev);
	return m == 3 || m == 5 || m == 7 || m == 8 || m == 9;
}

static int classify(struct dump_ctx *c, pid_t pid, int fd, const char *link, const struct stat *st,
		    FileEntry *e)
{
	if (S_ISFIFO(st->st_mode)) {
		int anon = !strncmp(link, "pipe:[", 6);
		e->type = anon ? FILE_TYPE__FILE_PIPE : FILE_TYPE__FILE_FIFO;
		e->has_pipe_id = 1;
		e->pipe_id = st->st_ino;
		if (!anon)
			e->path = arena_strdup(&c->a, link);
		return 0;
	}
	if (S_ISSOCK(st->st_mode)) {
		pr_err("pid %d: fd %d: %s: sockets are not supported", pid, fd, link);
		return -ENOTSUP;
	}
	if (link[0] != '/') {
		pr_err("pid %d: fd %d: %s is not supported", pid, fd, link);
		return -ENOTSUP;
	}
	if (S_ISCHR(st->st_mode) && !is_memory_device(st)) {
		pr_err("pid %d: fd %d: %s: character device %u:%u is not supported", pid, fd, link,
		       major(st->st_rdev), minor(st->st_rdev));
		return -ENOTSUP;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISCHR(st->st_mode)) {
		pr_err("pid %d: fd %d: %s: file type %o is not supported", pid, fd, link,
		       st->st_mode & S_IFMT);
		return -ENOTSUP;
	}
	if (strstr(link, " (deleted)") || (S_ISREG(st->st_mode) && st->st_nlink == 0)) {
		pr_err("pid %d: fd %d: %s: unlinked open files are not supported", pid, fd, link);
		return -ENOTSUP;
	}
	e->type = FILE_TYPE__FILE_REG;
	e->path = arena_strdup(&c->a, link);
	e->has_size = e->has_mtime_ns = 1;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	return 0;
}

static struct desc *find_desc(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st)
{
	for (size_t i = 0; i < c->nr; i++) {
		struct desc *d = &c->descs[i];
		if (d->dev == st->st_dev && d->ino == st->st_ino &&
		    same_description(d->pid, d->fd, pid, fd))
			return d;
	}
	return NULL;
}

static int add_desc(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st, FileEntry *e)
{
	if (c->nr == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct desc *d = realloc(c->descs, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		c->descs = d;
		c->cap = cap;
	}
	c->descs[c->nr++] = (struct desc){ pid, fd, st->st_dev, st->st_ino, e };
	return 0;
}

/* Record fd `fd` of `pid`; *out gets the fd_entry. */
static int dump_one_fd(struct dump_ctx *c, pid_t pid, int fd, FdEntry *out)
{
	char path[64], link[PATH_MAX];
	struct stat st;
	struct fdinfo fi = { 0, 0 };
	int ret;

	snprintf(path, sizeof(path), "fd/%d", fd);
	if ((ret = proc_readlink(pid, path, link, sizeof(link))))
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	if (stat(path, &st)) {
		pr_err("pid %d: fd %d: %s: %s", pid, fd, link, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if ((ret = proc_each_line(path, parse_fdinfo_line, &fi)) < 0)
		return ret;

	fd_entry__init(out);
	out->fd = (uint32_t)fd;
	out->cloexec = !!(fi.flags & O_CLOEXEC);
	struct desc *d = find_desc(c, pid, fd, &st);
	if (d) {
		out->file_id = d->entry->id;
		return 0;
	}
	FileEntry *e = arena_alloc(&c->a, sizeof(*e));
	if (!e)
		return -ENOMEM;
	file_entry__init(e);
	e->id = (uint32_t)c->nr;
	e->flags = fi.flags & ~(uint32_t)O_CLOEXEC;
	e->has_pos = e->has_mode = 1;
	e->pos = fi.pos;
	e->mode = st.st_mode;
	if ((ret = classify(c, pid, fd, link, &st, e)))
		return ret;
	out->file_id = e->id;
	return add_desc(c, pid, fd, &st, e);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The fd numbers of a task, sorted. */
static int list_fds(pid_t pid, int **out, size_t *nr)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *dir = opendir(path);
	if (!dir) {
		pr_err("pid %d: cannot list fds: %s", pid, strerror(errno));
		return -errno;
	}
	size_t n = 0, cap = 64;
	int *fds = malloc(cap * sizeof(*fds));
	struct dirent *de;
	while (fds && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			int *f = realloc(fds, (cap *= 2) * sizeof(*fds));
			if (!f) {
				free(fds);
				fds = NULL;
				break;
			}
			fds = f;
		}
		fds[n++] = atoi(de->d_name);
	}
	closedir(dir);
	if (!fds)
		return -ENOMEM;
	qsort(fds, n, sizeof(*fds), cmp_int);
	*out = fds;
	*nr = n;
	return 0;
}

static int dump_task_fds(struct dump_ctx *c, struct img_set *set, pid_t pid)
{
	int *fds;
	size_t nr;
	char name[64];
	struct img *img;
	int ret = list_fds(pid, &fds, &nr);
	if (ret)
		return ret;
	FdEntry *ents = arena_alloc(&c->a, (nr + 1) * sizeof(*ents));
	ret = ents ? 0 : -ENOMEM;
	for (size_t i = 0; !ret && i < nr; i++)
		ret = dump_one_fd(c, pid, fds[i], &ents[i]);
	free(fds);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "fdinfo-%d.img", pid);
	if ((ret = img_create(set, IMG_FDINFO, name, &img)))
		return ret;
	for (size_t i = 0; !ret && i < nr; i++)
		ret = img_write(img, &ents[i].base);
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

static int write_files(struct dump_ctx *c, struct img_set *set)
{
	struct img *img;
	int ret = img_create(set, IMG_FILES, "files.img", &img);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < c->nr; i++)
		ret = img_write(img, &c->descs[i].entry->base);
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

int dump_files(struct img_set *set, const struct frozen_tree *tree)
{
	struct dump_ctx c = { .tree = tree };
	int ret = 0;

	for (int i = 0; !ret && i < tree->nr_tasks; i++)
		ret = dump_task_fds(&c, set, tree->tasks[i].pid);
	if (!ret) {
		struct pipe_desc *pd = calloc(c.nr + 1, sizeof(*pd));
		ret = pd ? 0 : -ENOMEM;
		for (size_t i = 0; pd && i < c.nr; i++)
			pd[i] = (struct pipe_desc){ c.descs[i].pid, c.descs[i].fd, c.descs[i].entry };
		if (!ret)
			ret = dump_pipes(set, tree, pd, c.nr);
		free(pd);
	}
	if (!ret)
		ret = write_files(&c, set);
	free(c.descs);
	arena_free(&c.a);
	return ret;
}

/* ------------------------------ restore ------------------------------ */

int files_read(struct img_set *set, const InventoryEntry *inv, struct restore_files *rf)
{
	char name[64];
	int ret;

	memset(rf, 0, sizeof(*rf));
	rf->max_fd = -1;
	ret = img_read_all(set, IMG_FILES, "files.img", &file_entry__descriptor,
		       (ProtobufCMessage ***)&rf->files, &rf->nr_files);
	if (ret)
		return ret;
	for (size_t i = 0; i < rf->nr_files; i++)
		if (rf->files[i]->id != i) {
			pr_err("%s/files.img: entry %zu: bad id %u", img_set_dir(set), i,
			       rf->files[i]->id);
			return -EINVAL;
		}
	rf->tasks = calloc(inv->n_tasks, sizeof(*rf->tasks));
	if (!rf->tasks)
		return -ENOMEM;
	rf->nr_tasks = inv->n_tasks;
	for (size_t t = 0; t < inv->n_tasks; t++) {
		struct task_fds *tf = &rf->tasks[t];
		tf->pid = (pid_t)inv->tasks[t]->pid;
		snprintf(name, sizeof(name), "fdinfo-%d.img", tf->pid);
		ret = img_read_all(set, IMG_FDINFO, name, &fd_entry__descriptor,
			       (ProtobufCMessage ***)&tf->fds, &tf->nr);
		if (ret)
			return ret;
		for (size_t i = 0; i < tf->nr; i++) {
			if (tf->fds[i]->file_id >= rf->nr_files || tf->fds[i]->fd > INT_MAX / 2) {
				pr_err("%s/%s: entry %zu: bad fd %u or file id %u", img_set_dir(set), name, i,
				       tf->fds[i]->fd, tf->fds[i]->file_id);
				return -EINVAL;
			}
			if ((int)tf->fds[i]->fd > rf->max_fd)
				rf->max_fd = (int)tf->fds[i]->fd;
		}
	}
	return img_read_all(set, IMG_PIPES_DATA, "pipes-data.img", &pipe_data_entry__descriptor,
			(ProtobufCMessage ***)&rf->pipes, &rf->nr_pipes);
}

static int open_regular(const FileEntry *e)
{
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	if (!e->path)
		return -EINVAL;
	int fd = open(e->path, flags | O_CLOEXEC);
	if (fd < 0) {
		pr_err("file %s: cannot reopen: %s", e->path, strerror(errno));
		return -errno;
	}
	if (!(flags & O_PATH) && e->has_pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0 &&
	    errno != ESPIPE && S_ISREG(e->mode)) {
		pr_err("file %s: cannot seek to %llu: %s", e->path, (unsigned long long)e->pos,
		       strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

int files_open_pool(struct restore_files *rf, int base)
{
	struct pipe_pool pp;
	int ret = pipes_pool_init(&pp, rf->pipes, rf->nr_pipes);
	if (ret)
		return ret;
	rf->pool = malloc((rf->nr_files + 1) * sizeof(int));
	if (!rf->pool) {
		pipes_pool_fini(&pp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rf->nr_files; i++)
		rf->pool[i] = -1;
	for (size_t i = 0; !ret && i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		int fd = e->type == FILE_TYPE__FILE_REG ? open_regular(e) : pipes_open(&pp, e);
		if (fd < 0) {
			ret = fd;
			break;
		}
		rf->pool[i] = fcntl(fd, F_DUPFD_CLOEXEC, base);
		if (rf->pool[i] < 0)
			ret = -errno;
		close(fd);
	}
	pipes_pool_fini(&pp);
	if (ret)
		files_close_pool(rf);
	return ret;
}

static int in_list(int fd, const int *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == fd)
			return 1;
	return 0;
}

/* Close every fd of this process not in keep[] (own fds or keepers). */
static void close_others(const int *own, size_t nr_own, const int *keep, size_t nr_keep)
{
	int *fds;
	size_t n;
	if (list_fds(getpid(), &fds, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (!in_list(fds[i], own, nr_own) && !in_list(fds[i], keep, nr_keep))
			close(fds[i]);
	free(fds);
}

int files_install(struct restore_files *rf, size_t idx, const int *keep, size_t nr_keep)
{
	struct task_fds *tf = &rf->tasks[idx];
	int *own = malloc((tf->nr + 1) * sizeof(int));
	if (!own)
		return -ENOMEM;
	for (size_t i = 0; i < tf->nr; i++) {
		const FdEntry *e = tf->fds[i];
		int src = rf->pool[e->file_id];
		own[i] = (int)e->fd;
		if (dup2(src, (int)e->fd) < 0 ||
		    fcntl((int)e->fd, F_SETFD, e->cloexec ? FD_CLOEXEC : 0) < 0) {
			pr_err("pid %d: fd %u: cannot install: %s", tf->pid, e->fd, strerror(errno));
			free(own);
			return -errno;
		}
	}
	close_others(own, tf->nr, keep, nr_keep);
	free(own);
	return 0;
}

void files_close_pool(struct restore_files *rf)
{
	for (size_t i = 0; rf->pool && i < rf->nr_files; i++)
		if (rf->pool[i] >= 0) {
			close(rf->pool[i]);
			rf->pool[i] = -1;
		}
}

void files_free(struct restore_files *rf)
{
	files_close_pool(rf);
	free(rf->pool);
	for (size_t i = 0; i < rf->nr_files; i++)
		protobuf_c_message_free_unpacked(&rf->files[i]->base, NULL);
	free(rf->files);
	for (size_t t = 0; t < rf->nr_tasks; t++) {
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			protobuf_c_message_free_unpacked(&rf->tasks[t].fds[i]->base, NULL);
		free(rf->tasks[t].fds);
	}
	free(rf->tasks);
	for (size_t i = 0; i < rf->nr_pipes; i++)
		protobuf_c_message_free_unpacked(&rf->pipes[i]->base, NULL);
	free(rf->pipes);
	memset(rf, 0, sizeof(*rf));
}
