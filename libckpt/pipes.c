/*
 * pipes: anonymous pipes and FIFOs.  On dump: check that an anonymous
 * pipe has no end outside the tree, and save the bytes buffered in it
 * without consuming them (tee(2) into a pipe of our own).  On restore:
 * recreate each pipe once, refill it, and give every file description
 * that used it an end of its own.  A FIFO removed while open is made
 * again at its path just long enough to open it (ghost-node.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "log.h"
#include "file-kinds.h"
#include "ghost.h"
#include "proc.h"

static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

/* Is pipe:[ino] open in a process outside the tree? */
static pid_t outside_holder(const struct frozen_tree *tree, uint64_t ino)
{
	char want[64], path[300], link[64];
	DIR *proc = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)ino);
	while (proc && !found && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);
		if (pid <= 0 || in_tree(tree, pid) || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		DIR *fds = opendir(path);
		struct dirent *fe;
		while (fds && !found && (fe = readdir(fds))) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fe->d_name);
			ssize_t n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = '\0';
				if (!strcmp(link, want))
					found = pid;
			}
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	return found;
}

/* The root's stdin, stdout or stderr, which are its job step's stdio
 * (ckpt_dump_opts.root_stdio_step)? */
static int root_stdio(const struct files_dump *fdump, size_t i)
{
	const struct file_desc *d = &fdump->descs[i];
	return fdump->opts && fdump->opts->root_stdio_step && d->pid == fdump->tree->tasks[0].pid &&
	       d->fd >= 0 && d->fd <= 2;
}

/* Both ends of an anonymous pipe must be in the tree, or closed everywhere
 * (or it is the root's step stdio: marked so). */
static int check_ends(const struct files_dump *fdump, size_t i)
{
	const struct frozen_tree *tree = fdump->tree;
	const struct file_desc *d = fdump->descs;
	size_t nr = fdump->nr;
	int readers = 0, writers = 0;
	for (size_t j = 0; j < nr; j++) {
		const FileEntry *e = d[j].entry;
		if (e->type != FILE_TYPE__FILE_PIPE || e->pipe_id != d[i].entry->pipe_id)
			continue;
		if ((e->flags & O_ACCMODE) == O_WRONLY)
			writers++;
		else
			readers++;
	}
	if (readers && writers)
		return 0;
	if (root_stdio(fdump, i)) {
		d[i].entry->has_step_stdio = d[i].entry->step_stdio = 1;
		return 0;
	}
	pid_t holder = outside_holder(tree, d[i].entry->pipe_id);
	if (!holder)
		return 0;
	pr_err("pid %d: fd %d: pipe:[%llu] has its other end in pid %d, outside the dumped tree",
	       d[i].pid, d[i].fd, (unsigned long long)d[i].entry->pipe_id, holder);
	return -ENOTSUP;
}

/* Copy the buffered bytes of the pipe without taking them out. */
static int peek_pipe(pid_t pid, int fd, PipeDataEntry *pe)
{
	char path[64];
	int p[2], src, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	src = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (src < 0) {
		pr_err("pid %d: fd %d: cannot open the pipe: %s", pid, fd, strerror(errno));
		return -errno;
	}
	int size = fcntl(src, F_GETPIPE_SZ);
	if (size < 0 || pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
		ret = -errno;
		close(src);
		return ret;
	}
	pe->pipe_size = (uint32_t)size;
	if (fcntl(p[1], F_SETPIPE_SZ, size) < 0)
		ret = -errno;
	ssize_t n = ret ? -1 : tee(src, p[1], (size_t)size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN && !ret)
		ret = -errno;
	if (n > 0) {
		pe->data.data = malloc((size_t)n);
		if (!pe->data.data || read(p[0], pe->data.data, (size_t)n) != n)
			ret = -EIO;
		pe->data.len = (size_t)n;
	}
	if (ret)
		pr_err("pid %d: fd %d: cannot read the pipe's data: %s", pid, fd, strerror(-ret));
	close(p[0]);
	close(p[1]);
	close(src);
	return ret;
}

static int seen_pipe(const struct file_desc *d, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (d[j].entry->has_pipe_id && d[j].entry->pipe_id == d[i].entry->pipe_id &&
		    d[j].entry->type == d[i].entry->type)
			return 1;
	return 0;
}

static int pipes_dump_tree(struct files_dump *fdump, void **priv)
{
	const struct file_desc *d = fdump->descs;
	size_t nr = fdump->nr;
	struct img *img;
	(void)priv;
	int ret = img_create(fdump->set, IMG_PIPES_DATA, "pipes-data.img", &img);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < nr; i++) {
		const FileEntry *e = d[i].entry;
		if (e->type != FILE_TYPE__FILE_PIPE && e->type != FILE_TYPE__FILE_FIFO)
			continue;
		if (seen_pipe(d, i))
			continue;
		if (e->type == FILE_TYPE__FILE_PIPE && (ret = check_ends(fdump, i)))
			break;
		PipeDataEntry pe = PIPE_DATA_ENTRY__INIT;
		pe.pipe_id = e->pipe_id;
		ret = peek_pipe(d[i].pid, d[i].fd, &pe);
		/* the step's stdio is handed over new at the restore */
		if (!ret && e->step_stdio && pe.data.len) {
			pr_err("pid %d: fd %d: its job step's %s has %zu bytes in flight: not "
			       "supported (try again)", d[i].pid, d[i].fd,
			       d[i].fd ? "output pipe" : "input pipe", pe.data.len);
			ret = -EAGAIN;
		}
		if (!ret)
			ret = img_write(img, &pe.base);
		free(pe.data.data);
	}
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

static int pipes_check_tree(struct files_dump *fdump, void **priv)
{
	const struct file_desc *d = fdump->descs;
	int ret = 0;
	(void)priv;
	for (size_t i = 0; !ret && i < fdump->nr; i++)
		if (d[i].entry->type == FILE_TYPE__FILE_PIPE && !seen_pipe(d, i))
			ret = check_ends(fdump, i);
	return ret;
}

/* ------------------------------ restore ------------------------------ */

struct pipe_slot {
	const PipeDataEntry *data;
	int ends[2];      /* anonymous pipe: read and write end, -1 once handed out */
	int keeper;       /* any fd on the pipe, to open further ends through /proc */
	int filled;
};

struct pipe_pool {
	PipeDataEntry **data;
	struct pipe_slot *slots;
	size_t nr;
};

static void pipes_free(void *priv);

/* A job step's stdio (step_stdio) comes back only as the restore's fd. */
static int check_step_stdio(const struct restore_files *rf)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PIPE || !e->step_stdio || files_inherited(rf, e))
			continue;
		pr_err("file %u: pipe:[%llu]: the stdio of the root's job step on the node it "
		       "was dumped on (a node's part of a multi-node set): restore with "
		       "--inherit-fd fd[N]:root-fd:K, as the coordinator does",
		       e->id, (unsigned long long)e->pipe_id);
		return -EINVAL;
	}
	return 0;
}

static int pipes_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	int ret = check_step_stdio(rf);
	if (ret)
		return ret;
	struct pipe_pool *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	*priv = pp;
	ret = img_read_all(set, IMG_PIPES_DATA, "pipes-data.img", &pipe_data_entry__descriptor,
			       (ProtobufCMessage ***)&pp->data, &pp->nr);
	if (ret)
		return ret;
	pp->slots = calloc(pp->nr + 1, sizeof(*pp->slots));
	if (!pp->slots)
		return -ENOMEM;
	for (size_t i = 0; i < pp->nr; i++) {
		pp->slots[i].data = pp->data[i];
		pp->slots[i].ends[0] = pp->slots[i].ends[1] = pp->slots[i].keeper = -1;
	}
	return 0;
}

static struct pipe_slot *find_slot(struct pipe_pool *pp, uint64_t id)
{
	for (size_t i = 0; i < pp->nr; i++)
		if (pp->slots[i].data->pipe_id == id)
			return &pp->slots[i];
	return NULL;
}

static int fill_pipe(struct pipe_slot *s, int wfd, const char *what)
{
	const PipeDataEntry *d = s->data;
	if (s->filled)
		return 0;
	s->filled = 1;
	if (d->pipe_size && fcntl(wfd, F_SETPIPE_SZ, d->pipe_size) < 0) {
		pr_err("%s: cannot set its size to %u: %s", what, d->pipe_size, strerror(errno));
		return -errno;
	}
	if (d->data.len && write(wfd, d->data.data, d->data.len) != (ssize_t)d->data.len) {
		pr_err("%s: cannot refill its %zu bytes: %s", what, d->data.len, strerror(errno));
		return -EIO;
	}
	return 0;
}

static int set_flags(int fd, const FileEntry *e)
{
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int open_anon(struct pipe_slot *s, const FileEntry *e)
{
	char what[64], path[64];
	int w = (e->flags & O_ACCMODE) == O_WRONLY, fd;

	snprintf(what, sizeof(what), "pipe:[%llu]", (unsigned long long)e->pipe_id);
	if (s->keeper < 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC))
			return -errno;
		s->ends[0] = p[0];
		s->ends[1] = p[1];
		s->keeper = dup(p[0]);
		int ret = fill_pipe(s, p[1], what);
		if (ret)
			return ret;
	}
	if (s->ends[w] >= 0) {
		fd = s->ends[w];
		s->ends[w] = -1;
		return set_flags(fd, e);
	}
	/* A second description of the same end: open the pipe again. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->keeper);
	fd = open(path, (w ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		pr_err("%s: cannot reopen: %s", what, strerror(errno));
		return -errno;
	}
	return set_flags(fd, e);
}

/* A FIFO removed while open (e->contents): made again, opened by our
 * keeper, removed (ghost-node.c). */
static int open_removed_fifo(const FileEntry *e)
{
	struct ghost_node n;
	struct ghost_made g;
	char self[64];
	int ret = ghost_node_of(e, &n);
	if (ret || (ret = ghost_make(&n, &g)))
		return ret;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", g.fd);
	int fd = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		ret = -errno;
	int uret = ghost_unmake(&g);
	close(g.fd);
	if (!ret && uret) {
		close(fd);
		ret = uret;
	}
	if (ret)
		pr_err("fifo %s: cannot make the removed FIFO again: %s", e->path, strerror(-ret));
	return ret ? ret : fd;
}

static int open_fifo(struct pipe_slot *s, const FileEntry *e)
{
	char self[64];
	if (!e->path)
		return -EINVAL;
	if (s->keeper < 0) {
		/* O_RDWR never blocks on a FIFO and keeps it open while the
		 * real ends are opened. */
		s->keeper = e->contents ? open_removed_fifo(e)
					: open(e->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (s->keeper < 0 && e->contents)
			return s->keeper;
		if (s->keeper < 0) {
			pr_err("fifo %s: cannot reopen: %s", e->path, strerror(errno));
			return -errno;
		}
		int ret = fill_pipe(s, s->keeper, e->path);
		if (ret)
			return ret;
	}
	/* A removed FIFO is reached through the keeper only. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", s->keeper);
	const char *at = e->contents ? self : e->path;
	int fd = open(at, (int)(e->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		pr_err("fifo %s: cannot reopen: %s", e->path, strerror(errno));
		return -errno;
	}
	return set_flags(fd, e);
}

static int pipes_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	struct pipe_pool *pp = priv;
	(void)rf;
	struct pipe_slot *s = e->has_pipe_id ? find_slot(pp, e->pipe_id) : NULL;
	if (!s) {
		pr_err("pipe:[%llu]: no data record in the image", (unsigned long long)e->pipe_id);
		return -EINVAL;
	}
	return e->type == FILE_TYPE__FILE_PIPE ? open_anon(s, e) : open_fifo(s, e);
}

static void pipes_free(void *priv)
{
	struct pipe_pool *pp = priv;
	for (size_t i = 0; pp->slots && i < pp->nr; i++) {
		struct pipe_slot *s = &pp->slots[i];
		if (s->ends[0] >= 0)
			close(s->ends[0]);
		if (s->ends[1] >= 0)
			close(s->ends[1]);
		if (s->keeper >= 0)
			close(s->keeper);
	}
	free(pp->slots);
	for (size_t i = 0; i < pp->nr; i++)
		protobuf_c_message_free_unpacked(&pp->data[i]->base, NULL);
	free(pp->data);
	free(pp);
}

static int pipes_match(const struct fd_dump *f)
{
	return S_ISFIFO(f->st->st_mode);
}

static int pipes_dump(struct fd_dump *f, FileEntry *e)
{
	int anon = !strncmp(f->link, "pipe:[", 6);
	e->type = anon ? FILE_TYPE__FILE_PIPE : FILE_TYPE__FILE_FIFO;
	e->has_pipe_id = 1;
	e->pipe_id = f->st->st_ino;
	if (!anon && f->st->st_nlink == 0)
		return ghost_node_entry(f, e);
	if (!anon && !(e->path = arena_strdup(&f->fdump->a, f->link)))
		return -ENOMEM;
	return 0;
}

const struct file_kind pipe_kind = {
	.name = "pipe",
	.types = 1ULL << FILE_TYPE__FILE_PIPE | 1ULL << FILE_TYPE__FILE_FIFO,
	.match = pipes_match,
	.dump = pipes_dump,
	.dump_tree = pipes_dump_tree,
	.check_tree = pipes_check_tree,
	.read = pipes_read,
	.open = pipes_open,
	.free = pipes_free,
	.alone_ok = 1,
};
