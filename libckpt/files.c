/*
 * files: dump and restore of open files; see files.h.  Each kind of file
 * is handled in its own source file (file-kinds.h); this file walks the
 * fds, shares descriptions and runs the pool.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "arena.h"
#include "ckpt/ckpt.h"
#include "files.h"
#include "log.h"
#include "fdtable.h"
#include "file-kinds.h"
#include "proc.h"

static const struct file_kind *const file_kinds[] = {
	&pidfd_kind, /* first: its post_install puts live pidfds in place for the others */
	&step_end_kind, /* before pipes and sockets: a step's ends of slurmstepd's (step-fds.c) */
	&pipe_kind,
	&unix_sk_kind,
	&eventfd_kind,
	&signalfd_kind,
	&timerfd_kind,
	&epoll_kind,
	&fanotify_kind,
	&bpfmap_kind,
	&memfd_kind, /* before ghost and regfile: a memfd has a path too */
	&procfile_kind, /* before ghost, ghost_node and regfile: /proc/PID of the tree */
	&shmem_fd_kind, /* before ghost: shared anonymous memory is an unlinked file too */
	&ghost_kind, /* before regfile: unlinked files */
	&ghost_node_kind, /* before tty and regfile: removed directories, devices */
	&inotify_kind, /* after memfd and ghost: their pool_ready closes keepers first */
	&locks_kind, /* matches nothing: adds locks to the others' files */
	&packet_sk_kind, /* sk-packet.c */
	&netlink_sk_kind, /* sk-netlink.c */
	&inet_sk_kind, /* late: its dump_tree puts TCP connections in repair mode */
	&tty_kind, /* before regfile: terminals are character devices with a path */
	&regfile_kind, /* last: it matches what has a path */
};
#define NR_KINDS (sizeof(file_kinds) / sizeof(file_kinds[0]))
_Static_assert(NR_KINDS <= FILE_KINDS_MAX, "raise FILE_KINDS_MAX (files.h)");

static int same_description(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

int files_getfd(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	int ret = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	ret = ret < 0 ? -errno : ret;
	close(pidfd);
	return ret;
}

struct fdinfo {
	uint64_t pos;
	uint32_t flags;
	FILE *locks_out; /* its "lock:" lines, for locks.c, into `locks` */
	char *locks;
	size_t locks_len;
};

static int parse_fdinfo_line(char *line, void *arg)
{
	struct fdinfo *fi = arg;
	if (!strncmp(line, "pos:", 4))
		fi->pos = strtoull(line + 4, NULL, 10);
	else if (!strncmp(line, "flags:", 6))
		fi->flags = (uint32_t)strtoul(line + 6, NULL, 8);
	else if (!strncmp(line, "lock:", 5)) {
		if (!fi->locks_out && !(fi->locks_out = open_memstream(&fi->locks, &fi->locks_len)))
			return -ENOMEM;
		fprintf(fi->locks_out, "%s\n", line);
	}
	return 0;
}

static struct file_desc *find_desc(struct files_dump *c, pid_t pid, int fd, const struct stat *st)
{
	for (size_t i = 0; i < c->nr; i++) {
		struct file_desc *d = &c->descs[i];
		if (d->dev == st->st_dev && d->ino == st->st_ino &&
		    same_description(d->pid, d->fd, pid, fd))
			return d;
	}
	return NULL;
}

static int add_desc(struct files_dump *c, pid_t pid, int fd, const struct stat *st, FileEntry *e)
{
	if (c->nr == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		struct file_desc *d = realloc(c->descs, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		c->descs = d;
		c->cap = cap;
	}
	c->descs[c->nr++] = (struct file_desc){ pid, fd, st->st_dev, st->st_ino, e };
	return 0;
}

/*
 * Hand a new description to the first kind that claims it.  One that
 * only a queue holds (in flight on socket:[sk_ino], fd f->fd is ours)
 * comes back from the pool with no task holding it: a kind whose restore
 * needs one (alone_ok unset) is refused.
 */
static int dump_desc(struct files_dump *c, struct fd_dump *f, FileEntry *e, uint64_t sk_ino)
{
	for (size_t k = 0; k < NR_KINDS; k++) {
		f->priv = &c->priv[k];
		if (!file_kinds[k]->match(f))
			continue;
		if (sk_ino && !file_kinds[k]->alone_ok) {
			pr_err("socket:[%llu]: an fd in flight (SCM_RIGHTS) is the only reference to "
			       "%s (%s): not supported",
			       (unsigned long long)sk_ino, f->link, file_kinds[k]->name);
			return -ENOTSUP;
		}
		return file_kinds[k]->dump(f, e);
	}
	if (sk_ino)
		pr_err("socket:[%llu]: an fd in flight (SCM_RIGHTS) on it is %s: not supported",
		       (unsigned long long)sk_ino, f->link);
	else
		pr_err("pid %d: fd %d: %s is not supported", f->pid, f->fd, f->link);
	return -ENOTSUP;
}

/* Is `pid` a process of the tree (a process group of it: `group`)? */
static int tree_has(const struct frozen_tree *tree, pid_t pid, int group)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (group ? getpgid(tree->tasks[i].pid) == pid : tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

/*
 * The description's owner and signal (F_GETOWN_EX, F_GETSIG: the kernel
 * keeps them per open file, so a duplicate reads them).  The owner must be
 * a process or a process group of the tree, or a main thread: the restore
 * sets it once every process exists, before their other threads do.
 */
static int dump_fown(struct files_dump *c, const struct fd_dump *f, FileEntry *e)
{
	struct f_owner_ex own = { 0, 0 };
	if (e->flags & O_PATH) /* no owner: fcntl refuses both with EBADF */
		return 0;
	int fd = files_getfd(f->pid, f->fd);
	if (fd < 0) {
		pr_err("pid %d: fd %d: %s: cannot read its owner: %s", f->pid, f->fd, f->link,
		       strerror(-fd));
		return fd;
	}
	int sig = fcntl(fd, F_GETSIG);
	int ret = sig < 0 || fcntl(fd, F_GETOWN_EX, &own) ? -errno : 0;
	close(fd);
	if (ret) {
		pr_err("pid %d: fd %d: %s: cannot read its owner: %s", f->pid, f->fd, f->link,
		       strerror(-ret));
		return ret;
	}
	if (sig) {
		e->has_fown_sig = 1;
		e->fown_sig = (uint32_t)sig;
	}
	if (!own.pid)
		return 0;
	int group = own.type == F_OWNER_PGRP;
	if ((own.type != F_OWNER_PID && own.type != F_OWNER_TID && !group) ||
	    !tree_has(c->tree, own.pid, group)) {
		pr_err("pid %d: fd %d: %s: its owner (F_SETOWN) is %s %d, %s", f->pid, f->fd,
		       f->link, group ? "process group" : own.type == F_OWNER_TID ? "thread" : "pid",
		       own.pid,
		       own.type == F_OWNER_TID && own.pid > 0 ?
			       "not a main thread of the tree: not supported" :
			       "outside the tree");
		return -ENOTSUP;
	}
	e->has_fown_type = e->has_fown_pid = 1;
	e->fown_type = (uint32_t)own.type;
	e->fown_pid = (uint32_t)(group ? tree_vpgid(c->tree, own.pid) : tree_vpid(c->tree, own.pid));
	return 0;
}

/* The locks the fdinfo just read showed, for locks.c: that file (the
 * POSIX locks only in their owner's fd table) tells them all, without a
 * read of /proc/locks (which waits for an RCU grace period). */
static int fd_locks(struct files_dump *c, size_t desc, pid_t pid, int first, struct fdinfo *fi)
{
	int ret = fi->locks ? locks_note(c, desc, pid, first, fi->locks) : 0;
	free(fi->locks);
	fi->locks = NULL;
	return ret;
}

/* Record fd `fd` of `pid`; *out gets the fd_entry.  sk_ino: the fd is
 * ours, in flight on that socket (0: an fd of the tree). */
static int dump_one_fd(struct files_dump *c, pid_t pid, int fd, FdEntry *out, uint64_t sk_ino)
{
	char path[64], info[64], link[PATH_MAX];
	struct stat st;
	struct fdinfo fi = { 0 };
	int ret;

	snprintf(path, sizeof(path), "fd/%d", fd);
	if ((ret = proc_readlink(pid, path, link, sizeof(link))))
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	if (stat(path, &st)) {
		pr_err("pid %d: fd %d: %s: %s", pid, fd, link, strerror(errno));
		return -errno;
	}
	snprintf(info, sizeof(info), "/proc/%d/fdinfo/%d", pid, fd);
	ret = proc_each_line(info, parse_fdinfo_line, &fi);
	if (fi.locks_out && fclose(fi.locks_out) && ret >= 0)
		ret = -ENOMEM;
	if (ret < 0) {
		free(fi.locks);
		return ret;
	}

	fd_entry__init(out);
	out->fd = (uint32_t)fd;
	out->cloexec = !!(fi.flags & O_CLOEXEC);
	struct file_desc *d = find_desc(c, pid, fd, &st);
	if (d) {
		out->file_id = d->entry->id;
		return fd_locks(c, (size_t)(d - c->descs), pid, 0, &fi);
	}
	FileEntry *e = arena_alloc(&c->a, sizeof(*e));
	if (!e) {
		free(fi.locks);
		return -ENOMEM;
	}
	file_entry__init(e);
	e->id = (uint32_t)c->nr;
	e->flags = fi.flags & ~(uint32_t)O_CLOEXEC;
	e->has_pos = e->has_mode = 1;
	e->pos = fi.pos;
	e->mode = st.st_mode;
	struct fd_dump f = { .fdump = c, .pid = pid, .fd = fd, .link = link, .st = &st, .fdinfo = info };
	if ((ret = dump_desc(c, &f, e, sk_ino)) || (ret = dump_fown(c, &f, e)) ||
	    (ret = add_desc(c, pid, fd, &st, e))) {
		free(fi.locks);
		return ret;
	}
	out->file_id = e->id;
	return fd_locks(c, c->nr - 1, pid, 1, &fi);
}

int files_refuse_queued(const struct fd_dump *f, const char *what)
{
	int n = 0, fd = files_getfd(f->pid, f->fd);
	if (fd < 0)
		return fd;
	int ret = ioctl(fd, FIONREAD, &n) < 0 ? -errno : 0;
	close(fd);
	if (ret)
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, what, strerror(-ret));
	else if (n > 0)
		pr_err("pid %d: fd %d: %s has %d bytes of unread events: not supported", f->pid,
		       f->fd, what, n);
	return ret ? ret : n > 0 ? -ENOTSUP : 0;
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

static int fd_closed(pid_t pid, int fd)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return lstat(path, &st) && errno == ENOENT;
}

/* A zombie has no fd table left (and its /proc/PID/fd is root's: a
 * user's dump may not even list it): none. */
static int dump_task_fds(struct files_dump *c, struct img_set *set, const struct frozen_task *t)
{
	int *fds = NULL;
	size_t nr = 0;
	char name[64];
	struct img *img;
	pid_t pid = t->pid;
	int ret = t->zombie ? 0 : list_fds(pid, &fds, &nr);
	if (ret)
		return ret;
	/* a step's client (srun) is not restored: only its stdio is, the proxy's */
	while (t->step_client && nr && fds[nr - 1] > 2)
		nr--;
	FdEntry *ents = arena_alloc(&c->a, (nr + 1) * sizeof(*ents));
	ret = ents ? 0 : -ENOMEM;
	for (size_t i = 0; !ret && i < nr; i++) {
		ret = dump_one_fd(c, pid, fds[i], &ents[i], 0);
		/* A check sees the tree running: an fd closed since it was
		 * listed is no longer there to refuse. */
		if (ret == -ENOENT && !set && fd_closed(pid, fds[i]))
			ret = 0;
	}
	free(fds);
	if (ret || !set)
		return ret;
	snprintf(name, sizeof(name), "fdinfo-%d.img", tree_vpid(c->tree, pid));
	if ((ret = img_create(set, IMG_FDINFO, name, &img)))
		return ret;
	for (size_t i = 0; !ret && i < nr; i++)
		ret = img_write(img, &ents[i].base);
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

static int write_files(struct files_dump *c, struct img_set *set)
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

int files_add_inflight(struct files_dump *c, int fd, uint64_t sk_ino, uint32_t *file_id)
{
	if (c->nr_inflight == c->cap_inflight) {
		size_t cap = c->cap_inflight ? c->cap_inflight * 2 : 16;
		struct inflight_fd *v = realloc(c->inflight, cap * sizeof(*v));
		if (!v) {
			close(fd);
			return -ENOMEM;
		}
		c->inflight = v;
		c->cap_inflight = cap;
	}
	c->inflight[c->nr_inflight++] = (struct inflight_fd){ fd, sk_ino, file_id };
	return 0;
}

/* The description of in-flight fd i: one the tree holds (kcmp against
 * our fd), or a new one dumped through our fd, which stays open until
 * the end of the dump (its file_desc names it). */
static int resolve_inflight(struct files_dump *c, size_t i)
{
	struct inflight_fd in = c->inflight[i]; /* the array grows meanwhile */
	size_t before = c->nr;
	FdEntry fe;
	int ret = dump_one_fd(c, getpid(), in.fd, &fe, in.sk_ino);
	if (ret)
		return ret;
	*in.file_id = fe.file_id;
	if (c->nr == before) {
		close(in.fd);
		c->inflight[i].fd = -1;
	}
	return 0;
}

static void close_inflight(struct files_dump *c)
{
	for (size_t i = 0; i < c->nr_inflight; i++)
		if (c->inflight[i].fd >= 0)
			close(c->inflight[i].fd);
	free(c->inflight);
}

int dump_files(struct img_set *set, const struct frozen_tree *tree,
	       const struct ckpt_dump_opts *opts)
{
	struct files_dump c = { .tree = tree, .set = set, .opts = opts };
	int ret = fdtable_check(tree);

	/* a table shared by several processes: once, with its owner */
	for (int i = 0; !ret && i < tree->nr_tasks; i++)
		if (fdtable_owner(tree, i) < 0)
			ret = dump_task_fds(&c, set, &tree->tasks[i]);
	/* a queue peeked meanwhile may add fds in flight */
	for (size_t i = 0; !ret && i < c.nr_inflight; i++)
		ret = resolve_inflight(&c, i);
	for (size_t k = 0; !ret && k < NR_KINDS; k++) {
		int (*tree_fn)(struct files_dump *, void **) =
			set ? file_kinds[k]->dump_tree : file_kinds[k]->check_tree;
		if (tree_fn)
			ret = tree_fn(&c, &c.priv[k]);
	}
	if (!ret && set)
		ret = write_files(&c, set);
	close_inflight(&c);
	free(c.lock_notes);
	free(c.descs);
	arena_free(&c.a);
	return ret;
}

/* ------------------------------ restore ------------------------------ */

/*
 * --inherit-fd fd[N]:RESOURCE: the description the dump knew as RESOURCE
 * (its /proc/PID/fd link: socket:[INO], pipe:[INO] or a path) is not
 * recreated: the driver's fd N stands for it, whatever its kind.
 */
static int parse_inherit(const char *s, int *fd, const char **res)
{
	char *end;
	if (strncmp(s, "fd[", 3))
		return -EINVAL;
	errno = 0;
	long n = strtol(s + 3, &end, 10);
	if (end == s + 3 || errno || n < 0 || n > INT_MAX || strncmp(end, "]:", 2) || !end[2])
		return -EINVAL;
	*fd = (int)n;
	*res = end + 2;
	return 0;
}

static void resource_name(const FileEntry *e, char *buf, size_t len)
{
	if (e->unix_sk)
		snprintf(buf, len, "socket:[%llu]", (unsigned long long)e->unix_sk->ino);
	else if (e->inet_sk)
		snprintf(buf, len, "socket:[%llu]", (unsigned long long)e->inet_sk->ino);
	else if (e->type == FILE_TYPE__FILE_PIPE && e->has_pipe_id)
		snprintf(buf, len, "pipe:[%llu]", (unsigned long long)e->pipe_id);
	else
		snprintf(buf, len, "%s", e->path ? e->path : "");
}

/* "root-fd:K": the file the set's root process had as its fd K (a
 * node's part of a multi-node set gets its step's stdio so: the pipes
 * slurmstepd held, docs/coordinator.md). */
static int root_fd_is(const struct restore_files *rf, const char *res, const FileEntry *e)
{
	char *end;
	if (strncmp(res, "root-fd:", 8) || !rf->inv)
		return 0;
	long k = strtol(res + 8, &end, 10);
	if (end == res + 8 || *end || k < 0 || k > INT_MAX)
		return 0;
	for (size_t t = 0; t < rf->nr_tasks; t++) {
		if ((uint32_t)rf->tasks[t].pid != rf->inv->root_pid)
			continue;
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			if (rf->tasks[t].fds[i]->fd == k)
				return rf->tasks[t].fds[i]->file_id == e->id;
	}
	return 0;
}

static int names(const struct restore_files *rf, const char *res, const FileEntry *e)
{
	char name[PATH_MAX + 8];
	resource_name(e, name, sizeof(name));
	return !strcmp(res, name) || root_fd_is(rf, res, e);
}

/* The driver's fd that stands for `e`, or -1. */
static int inherited_fd(const struct restore_files *rf, const FileEntry *e)
{
	const char *res;
	int fd;
	for (size_t i = 0; rf->opts && i < rf->opts->nr_inherit_fd; i++)
		if (!parse_inherit(rf->opts->inherit_fd[i], &fd, &res) && names(rf, res, e))
			return fd;
	return -1;
}

int files_inherited(const struct restore_files *rf, const FileEntry *e)
{
	return inherited_fd(rf, e) >= 0;
}

/* Every --inherit-fd is well formed, open, and names a file of the image. */
static int check_inherit(const struct restore_files *rf)
{
	const char *res, *s;
	int fd;
	for (size_t i = 0; rf->opts && i < rf->opts->nr_inherit_fd; i++) {
		s = rf->opts->inherit_fd[i];
		if (parse_inherit(s, &fd, &res)) {
			pr_err("--inherit-fd %s: expected fd[N]:RESOURCE", s);
			return -EINVAL;
		}
		if (fcntl(fd, F_GETFD) < 0) {
			pr_err("--inherit-fd %s: fd %d is not open", s, fd);
			return -EBADF;
		}
		size_t f = 0;
		while (f < rf->nr_files && !names(rf, res, rf->files[f]))
			f++;
		if (f == rf->nr_files) {
			pr_err("--inherit-fd %s: the image has no file %s", s, res);
			return -ENOENT;
		}
	}
	return 0;
}

/* Once the pool holds them: the restored tasks get their own copies, and
 * ours would keep a socket or pipe from closing (0-2 stay: our stdio). */
static void close_inherited(const struct restore_files *rf)
{
	const char *res;
	int fd;
	for (size_t i = 0; rf->opts && i < rf->opts->nr_inherit_fd; i++)
		if (!parse_inherit(rf->opts->inherit_fd[i], &fd, &res) && fd > 2)
			close(fd);
}

static size_t kind_of(const FileEntry *e)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (e->type < 64 && (file_kinds[k]->types & (1ULL << e->type)))
			return k;
	return NR_KINDS;
}

int files_read(struct img_set *set, const InventoryEntry *inv, const struct ckpt_restore_opts *opts,
	       struct restore_files *rf)
{
	char name[64];
	int ret;

	memset(rf, 0, sizeof(*rf));
	rf->opts = opts;
	rf->inv = inv;
	rf->max_fd = -1;
	ret = img_read_all(set, IMG_FILES, "files.img", &file_entry__descriptor,
		       (ProtobufCMessage ***)&rf->files, &rf->nr_files);
	if (ret)
		return ret;
	for (size_t i = 0; i < rf->nr_files; i++)
		if (rf->files[i]->id != i || kind_of(rf->files[i]) == NR_KINDS ||
		    (rf->files[i]->has_fown_type && rf->files[i]->fown_type > F_OWNER_PGRP) ||
		    (rf->files[i]->has_fown_pid && rf->files[i]->fown_pid > INT_MAX) ||
		    (rf->files[i]->has_fown_sig && rf->files[i]->fown_sig > 64)) {
			pr_err("%s/files.img: entry %zu: bad id %u, type %d or owner", img_set_dir(set), i,
			       rf->files[i]->id, rf->files[i]->type);
			return -EINVAL;
		}
	rf->tasks = calloc(inv->n_tasks, sizeof(*rf->tasks));
	if (!rf->tasks)
		return -ENOMEM;
	rf->nr_tasks = inv->n_tasks;
	for (size_t t = 0; t < inv->n_tasks; t++) {
		struct task_fds *tf = &rf->tasks[t];
		tf->pid = (pid_t)inv->tasks[t]->pid;
		/* a table shared with an earlier task is that task's, installed
		 * by it: this one has none of its own to install */
		if (inv->tasks[t]->has_files_shared_with)
			continue;
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
	if ((ret = check_inherit(rf)))
		return ret;
	for (size_t k = 0; !ret && k < NR_KINDS; k++)
		if (file_kinds[k]->read)
			ret = file_kinds[k]->read(set, rf, &rf->priv[k]);
	return ret;
}


/* F_SETSIG, per description, in the driver (O_ASYNC and the owner are
 * set by the restoring process: files_install). */
static int set_sig(const FileEntry *e, int fd)
{
	if (e->has_fown_sig && fcntl(fd, F_SETSIG, (int)e->fown_sig)) {
		int err = errno;
		pr_err("file %u: cannot set F_SETSIG %u: %s", e->id, e->fown_sig, strerror(err));
		return -err;
	}
	return 0;
}

static int open_one(struct restore_files *rf, size_t i, int base)
{
	const FileEntry *e = rf->files[i];
	size_t k = kind_of(e);
	int in = inherited_fd(rf, e);
	int fd = in >= 0 ? fcntl(in, F_DUPFD_CLOEXEC, 0) : file_kinds[k]->open(rf, rf->priv[k], e);
	if (in >= 0 && fd < 0) {
		int err = errno;
		pr_err("--inherit-fd fd[%d]: %s", in, strerror(err));
		return -err;
	}
	if (fd < 0)
		return fd;
	int ret = in >= 0 ? 0 : set_sig(e, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	rf->pool[i] = fcntl(fd, F_DUPFD_CLOEXEC, base);
	ret = rf->pool[i] < 0 ? -errno : 0;
	close(fd);
	return ret;
}

int files_open_pool(struct restore_files *rf, int base)
{
	int ret = 0;
	rf->pool = malloc((rf->nr_files + 1) * sizeof(int));
	if (!rf->pool)
		return -ENOMEM;
	for (size_t i = 0; i < rf->nr_files; i++)
		rf->pool[i] = -1;
	for (int late = 0; late < 2; late++)
		for (size_t i = 0; !ret && i < rf->nr_files; i++)
			if (file_kinds[kind_of(rf->files[i])]->late == late)
				ret = open_one(rf, i, base);
	for (size_t k = 0; !ret && k < NR_KINDS; k++)
		if (file_kinds[k]->pool_ready && rf->priv[k])
			ret = file_kinds[k]->pool_ready(rf, rf->priv[k]);
	if (ret)
		files_close_pool(rf);
	else
		close_inherited(rf);
	return ret;
}

int files_before_tree(struct restore_files *rf)
{
	int ret = 0;
	for (size_t k = 0; !ret && k < NR_KINDS; k++)
		if (file_kinds[k]->before_tree)
			ret = file_kinds[k]->before_tree(rf, rf->priv[k]);
	return ret;
}

void *files_kind_priv(const struct restore_files *rf, const struct file_kind *kind)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (file_kinds[k] == kind)
			return rf->priv[k];
	return NULL;
}

int files_task_fd_to_pool(const struct restore_files *rf, size_t idx, int fd)
{
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < tf->nr; i++)
		if ((int)tf->fds[i]->fd == fd)
			return rf->pool ? rf->pool[tf->fds[i]->file_id] : -1;
	return -1;
}

static int in_list(int fd, const int *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == fd)
			return 1;
	return 0;
}

/* Close every fd of this process not in keep[] (own fds or keepers),
 * below keep_from. */
static void close_others(const int *own, size_t nr_own, const int *keep, size_t nr_keep,
			 int keep_from)
{
	int *fds;
	size_t n;
	if (list_fds(getpid(), &fds, &n))
		return;
	for (size_t i = 0; i < n; i++)
		if (fds[i] < keep_from && !in_list(fds[i], own, nr_own) &&
		    !in_list(fds[i], keep, nr_keep))
			close(fds[i]);
	free(fds);
}

/* The first fd of task `tf` with the description of its fd i? */
static int first_fd_of(const struct task_fds *tf, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (tf->fds[j]->file_id == tf->fds[i]->file_id)
			return 0;
	return 1;
}

static int has_lease(const FileEntry *e)
{
	for (size_t i = 0; i < e->n_locks; i++)
		if (e->locks[i]->kind == FILE_LOCK_KIND__LOCK_LEASE)
			return 1;
	return 0;
}

/*
 * In the restoring process, its fds in place: the owner (a pid of the
 * restored tree's namespace), and O_ASYNC, which works only once F_SETFL
 * turned it on (open() keeps the flag but registers nothing).  The kernel
 * keeps one fd number per description for the signal's si_fd, the one
 * F_SETFL last came through: here the first fd of the description in the
 * last process that installs it.  A leased description gets its owner
 * from the process that takes the lease, after it (locks.c): set here by
 * another process meanwhile, it could turn the break the restore makes
 * into a signal to the job.
 */
static int set_owner(const struct restore_files *rf, const struct task_fds *tf, size_t i)
{
	const FileEntry *e = rf->files[tf->fds[i]->file_id];
	int fd = (int)tf->fds[i]->fd;
	if (files_inherited(rf, e) || !first_fd_of(tf, i))
		return 0;
	struct f_owner_ex own = { (int)e->fown_type, (pid_t)e->fown_pid };
	if (e->has_fown_pid && !has_lease(e) && fcntl(fd, F_SETOWN_EX, &own)) {
		pr_err("pid %d: fd %d: cannot give it owner %d (type %u): %s", tf->pid, fd, own.pid,
		       e->fown_type, strerror(errno));
		return -errno;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (e->flags & O_ASYNC) &&
	    (fcntl(fd, F_SETFL, fl & ~O_ASYNC) || fcntl(fd, F_SETFL, fl | O_ASYNC)))
		fl = -1;
	if (fl < 0) {
		pr_err("pid %d: fd %d: cannot set O_ASYNC: %s", tf->pid, fd, strerror(errno));
		return -errno;
	}
	return 0;
}

int files_install(struct restore_files *rf, size_t idx, const int *keep, size_t nr_keep,
		  int keep_from)
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
	close_others(own, tf->nr, keep, nr_keep, keep_from);
	free(own);
	for (size_t i = 0; i < tf->nr; i++) {
		int ret = set_owner(rf, tf, i);
		if (ret)
			return ret;
	}
	for (size_t k = 0; k < NR_KINDS; k++) {
		int ret = file_kinds[k]->post_install ?
				  file_kinds[k]->post_install(rf, rf->priv[k], idx) : 0;
		if (ret)
			return ret;
	}
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
	for (size_t k = 0; k < NR_KINDS; k++)
		if (file_kinds[k]->free && rf->priv[k])
			file_kinds[k]->free(rf->priv[k]);
	memset(rf, 0, sizeof(*rf));
}
