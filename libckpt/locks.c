/*
 * locks: file locks held by the tree (flock, POSIX and OFD locks), read
 * from the "lock:" lines of each description's /proc/PID/fdinfo and kept
 * in its file_entry.  This kind owns no file type: it only adds the locks
 * to the descriptions the other kinds dumped (dump_tree), and takes them
 * again on restore in each task once its fds are installed
 * (post_install): flock and OFD locks belong to the description, so any
 * task holding it may take them (again: the same owner, no conflict);
 * POSIX locks belong to a process, so only their owner takes them.
 * A lease (F_SETLEASE) belongs to the description too, but is taken by
 * one task only, the first in restore order that holds it: a second
 * F_SETLEASE would end a break.  A lease being broken (a conflicting open
 * is pending) is taken and broken again (break_again).  Delegations and
 * lease breakers are refused by name.
 *
 * A description's fdinfo shows its flock and OFD locks through every fd
 * table that holds it, but a POSIX lock only through the table that owns
 * it, and only through the description it was taken with (the owner
 * holds that one: any close of the file drops the lock).  files.c reads
 * the fdinfo of every fd of the tree anyway and hands their "lock:" lines
 * here (locks_note), once per description and table: that tells every
 * lock of the tree.  /proc/locks would tell them too, but each read of it
 * waits for an RCU grace period (10-30 ms on a small VM).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

struct lock_scan {
	struct files_dump *fdump;
	const struct file_desc *d;
	size_t *cap;
	pid_t table; /* the fd table (its owner) whose fdinfo told */
	int posix;   /* its POSIX locks, else the others (flock, OFD, lease) */
};

static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

static int push_lock(struct lock_scan *s, FileLockEntry *l)
{
	FileEntry *e = s->d->entry;
	if (e->n_locks == *s->cap) {
		size_t cap = *s->cap ? *s->cap * 2 : 4;
		FileLockEntry **v = arena_alloc(&s->fdump->a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (e->n_locks)
			memcpy(v, e->locks, e->n_locks * sizeof(*v));
		e->locks = v;
		*s->cap = cap;
	}
	e->locks[e->n_locks++] = l;
	return 0;
}

static int kind_of(const char *k)
{
	if (!strcmp(k, "FLOCK"))
		return FILE_LOCK_KIND__LOCK_FLOCK;
	if (!strcmp(k, "POSIX"))
		return FILE_LOCK_KIND__LOCK_POSIX;
	if (!strcmp(k, "OFDLCK"))
		return FILE_LOCK_KIND__LOCK_OFD;
	if (!strcmp(k, "LEASE"))
		return FILE_LOCK_KIND__LOCK_LEASE;
	return -1;
}

/*
 * A lease (state ACTIVE or BREAKING): its type is what F_GETLEASE says
 * through our duplicate of the description (the type it breaks to while
 * breaking).  A breaking one is broken again on restore by an open of its
 * path, so it needs one.
 */
static int lease_of(const struct file_desc *d, const char *state, FileLockEntry *l)
{
	int breaking = !strcmp(state, "BREAKING");
	if ((!breaking && strcmp(state, "ACTIVE")) ||
	    (breaking && d->entry->type != FILE_TYPE__FILE_REG)) {
		pr_err("pid %d: fd %d: lease %s%s: not supported", d->pid, d->fd, state,
		       breaking ? " on a file without a path" : "");
		return -ENOTSUP;
	}
	int fd = files_getfd(d->pid, d->fd);
	int type = fd < 0 ? -1 : fcntl(fd, F_GETLEASE);
	int err = fd < 0 ? -fd : errno;
	if (fd >= 0)
		close(fd);
	if (type < 0) {
		pr_err("pid %d: fd %d: cannot read its lease: %s", d->pid, d->fd, strerror(err));
		return -err;
	}
	l->has_lease_type = l->has_breaking = 1;
	l->lease_type = (uint32_t)type;
	l->breaking = breaking;
	return 0;
}

/* Does a line of a /proc file name inode dev:ino?  `fmt` reads its
 * MAJ:MIN:INO (or MAJ:MIN INO) as %x %x %llu. */
struct inode_find {
	const char *fmt;
	dev_t dev;
	ino_t ino;
	int found;
};

static int inode_line(char *line, void *arg)
{
	struct inode_find *f = arg;
	unsigned maj, min;
	unsigned long long ino;
	if (sscanf(line, f->fmt, &maj, &min, &ino) == 3 && makedev(maj, min) == f->dev &&
	    ino == f->ino)
		f->found = 1;
	return 0;
}

/* Restoring the mappings opens and closes the file, and any close drops
 * the process's POSIX locks on it: refuse what could not be kept. */
static int check_not_mapped(pid_t pid, dev_t dev, ino_t ino)
{
	char path[64];
	/* maps: START-END PERMS OFFSET MAJ:MIN INODE PATH */
	struct inode_find m = { "%*x-%*x %*s %*x %x:%x %llu", dev, ino, 0 };
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int ret = proc_each_line(path, inode_line, &m);
	if (ret < 0) {
		pr_err("pid %d: cannot read its maps: %s", pid, strerror(-ret));
		return ret;
	}
	if (!m.found)
		return 0;
	pr_err("pid %d: POSIX lock on inode %u:%u:%llu, a file it also maps: not supported", pid,
	       major(dev), minor(dev), (unsigned long long)ino);
	return -ENOTSUP;
}

/* A POSIX lock of fd table `s->table` on d's file, taken by `pid`: one of
 * the tree, and on a file it does not also map (check_not_mapped). */
static int check_posix(const struct lock_scan *s, pid_t pid)
{
	const struct file_desc *d = s->d;
	if (!in_tree(s->fdump->tree, pid)) {
		pr_err("pid %d: fd %d: POSIX lock of its fd table taken by pid %d, outside the tree: "
		       "not supported", s->table, d->fd, pid);
		return -ENOTSUP;
	}
	return check_not_mapped(pid, d->dev, d->ino);
}

/* lock:	1: POSIX  ADVISORY  WRITE 18207 fe:00:10987355 10 29 */
static int lock_line(char *line, void *arg)
{
	struct lock_scan *s = arg;
	const struct file_desc *d = s->d;
	char kind[16], state[16], mode[16], end[24];
	int pid;
	unsigned long long start;

	if (strstr(line, "->"))
		return 0; /* a waiter blocked on a lock */
	if (sscanf(line, "lock: %*u: %15s %15s %15s %d %*s %llu %23s", kind, state, mode, &pid,
		   &start, end) != 6 || kind_of(kind) < 0) {
		pr_err("pid %d: fd %d: lock \"%s\" is not supported", d->pid, d->fd, line + 5);
		return -ENOTSUP;
	}
	int k = kind_of(kind);
	if ((k == FILE_LOCK_KIND__LOCK_POSIX) != s->posix)
		return 0;
	int ret = s->posix ? check_posix(s, pid) : 0;
	if (ret)
		return ret;
	FileLockEntry *l = arena_alloc(&s->fdump->a, sizeof(*l));
	if (!l)
		return -ENOMEM;
	file_lock_entry__init(l);
	l->kind = (FileLockKind)k;
	l->write = !strcmp(mode, "WRITE");
	l->pid = pid > 0 ? (uint32_t)tree_vpid(s->fdump->tree, pid) : 0;
	l->start = start;
	l->end = strcmp(end, "EOF") ? strtoll(end, NULL, 10) : -1;
	ret = k == FILE_LOCK_KIND__LOCK_LEASE ? lease_of(d, state, l) : 0;
	return ret ? ret : push_lock(s, l);
}

int locks_note(struct files_dump *c, size_t desc, pid_t table, int first, const char *lines)
{
	/* every fd of one description in one table shows the same locks */
	for (size_t i = 0; i < c->nr_lock_notes; i++)
		if (c->lock_notes[i].desc == desc && c->lock_notes[i].table == table)
			return 0;
	if (c->nr_lock_notes == c->cap_lock_notes) {
		size_t cap = c->cap_lock_notes ? c->cap_lock_notes * 2 : 8;
		struct lock_note *v = realloc(c->lock_notes, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		c->lock_notes = v;
		c->cap_lock_notes = cap;
	}
	char *copy = arena_strdup(&c->a, lines);
	if (!copy)
		return -ENOMEM;
	c->lock_notes[c->nr_lock_notes++] = (struct lock_note){ desc, table, first, copy };
	return 0;
}

static int locks_match(const struct fd_dump *f)
{
	(void)f;
	return 0;
}

static int locks_dump(struct fd_dump *f, FileEntry *e)
{
	(void)f;
	(void)e;
	return -EINVAL;
}

/*
 * Leases anywhere: a process outside the tree may hold one on a file the
 * tree has open, which an open of ours would break, and only /proc/locks
 * tells them.  Each read of it waits for an RCU grace period (10-30 ms),
 * which the frozen tree should not: a dump reads it in the background
 * from its start (locks_leases_start), and its lease checks look in that
 * copy.  A lease taken since then is broken by our open, as one taken
 * between a check and the open always could be; the tree's own leases
 * cannot change, it is frozen.
 */
struct lease_copy {
	pthread_t thread;
	int running; /* not joined yet */
	FILE *f; /* the copy, read back by each check */
	char *text;
	size_t len;
	int err;
};
static _Thread_local struct lease_copy *leases;

static int copy_line(char *line, void *arg)
{
	struct lease_copy *c = arg;
	if (strstr(line, " LEASE "))
		fprintf(c->f, "%s\n", line);
	return 0;
}

static void *read_leases(void *arg)
{
	struct lease_copy *c = arg;
	c->err = proc_each_line("/proc/locks", copy_line, c);
	if (fclose(c->f) && !c->err)
		c->err = -ENOMEM;
	c->f = NULL;
	return NULL;
}

void locks_leases_start(void)
{
	struct lease_copy *c = calloc(1, sizeof(*c));
	if (c && (c->f = open_memstream(&c->text, &c->len)) &&
	    !pthread_create(&c->thread, NULL, read_leases, c)) {
		c->running = 1;
		leases = c;
		return;
	}
	if (c && c->f)
		fclose(c->f);
	if (c)
		free(c->text);
	free(c);
}

/* Called once the tree is thawed or gone (a wait here is not the job's):
 * a dump shorter than the grace period waits for the rest of it. */
void locks_leases_stop(void)
{
	if (!leases)
		return;
	if (leases->running)
		pthread_join(leases->thread, NULL);
	free(leases->text);
	free(leases);
	leases = NULL;
}

/* 1: LEASE  ACTIVE    READ 8888 fe:00:5371015 0 EOF */
int locks_inode_leased(dev_t dev, ino_t ino)
{
	struct inode_find f = { "%*u: LEASE %*s %*s %*d %x:%x:%llu", dev, ino, 0 };
	if (!leases)
		return proc_each_line("/proc/locks", inode_line, &f) < 0 || f.found;
	if (leases->running) {
		pthread_join(leases->thread, NULL);
		leases->running = 0;
	}
	if (!leases->err)
		text_each_line(leases->text, inode_line, &f);
	return leases->err < 0 || f.found;
}

static const FileLockEntry *lease_in(const FileEntry *e)
{
	for (size_t i = 0; i < e->n_locks; i++)
		if (e->locks[i]->kind == FILE_LOCK_KIND__LOCK_LEASE)
			return e->locks[i];
	return NULL;
}

/*
 * A break breaks every lease of the file, and a file with a lease being
 * broken takes no new one (F_SETLEASE fails with EAGAIN): breaking
 * leases of several descriptions of one file could only come back
 * together, from one process.  Refused by name.
 */
static int check_breaking_leases(const struct files_dump *fdump)
{
	for (size_t i = 0; i < fdump->nr; i++) {
		const struct file_desc *d = &fdump->descs[i];
		const FileLockEntry *l = lease_in(d->entry);
		if (!l || !l->breaking)
			continue;
		for (size_t j = 0; j < fdump->nr; j++) {
			const struct file_desc *o = &fdump->descs[j];
			if (j == i || o->dev != d->dev || o->ino != d->ino || !lease_in(o->entry))
				continue;
			pr_err("pid %d: fd %d: lease being broken, and pid %d fd %d holds another "
			       "lease on the same file (another open of it): not supported",
			       d->pid, d->fd, o->pid, o->fd);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* The locks each fd's fdinfo showed (locks_note): the description's
 * first, then the POSIX locks of every fd table that holds it. */
static int locks_dump_tree(struct files_dump *fdump, void **priv)
{
	(void)priv;
	size_t *caps = calloc(fdump->nr + 1, sizeof(*caps));
	int ret = caps ? 0 : -ENOMEM;
	for (int posix = 0; posix < 2; posix++)
		for (size_t i = 0; !ret && i < fdump->nr_lock_notes; i++) {
			const struct lock_note *n = &fdump->lock_notes[i];
			struct lock_scan s = { .fdump = fdump, .d = &fdump->descs[n->desc],
					       .cap = &caps[n->desc], .table = n->table,
					       .posix = posix };
			if (posix || n->first)
				ret = text_each_line(n->lines, lock_line, &s);
		}
	if (!ret)
		ret = check_breaking_leases(fdump);
	free(caps);
	return ret < 0 ? ret : 0;
}

/* ------------------------------ restore ------------------------------ */

static int take_lock(int fd, const FileLockEntry *l)
{
	if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK)
		return flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	struct flock fl = {
		.l_type = l->write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = (off_t)l->start,
		.l_len = l->end < 0 || l->end == INT64_MAX ? 0 : (off_t)(l->end - (int64_t)l->start + 1),
	};
	return fcntl(fd, l->kind == FILE_LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
}

static int bad_lock(const FileLockEntry *l)
{
	if (l->kind == FILE_LOCK_KIND__LOCK_LEASE)
		return l->lease_type > F_UNLCK || (l->breaking && l->lease_type == F_WRLCK) ||
		       (!l->breaking && l->lease_type == F_UNLCK);
	return l->start > INT64_MAX || (l->end >= 0 && l->end < (int64_t)l->start) ||
	       l->end < -1 || l->kind < FILE_LOCK_KIND__LOCK_FLOCK ||
	       l->kind > FILE_LOCK_KIND__LOCK_OFD;
}

/* Did a task before `idx` (restore order) install file `id`? */
static int held_before(const struct restore_files *rf, size_t idx, uint32_t id)
{
	for (size_t t = 0; t < idx; t++)
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			if (rf->tasks[t].fds[i]->file_id == id)
				return 1;
	return 0;
}

/*
 * Break the lease on fd again, as a conflicting open did before the dump:
 * an open of the path for writing (it breaks to F_UNLCK) or reading (to
 * F_RDLCK), which fails with EWOULDBLOCK and starts a new break period
 * (/proc/sys/fs/lease-break-time).  The lease's signal, which the process
 * got before the dump, comes to us (take_lease made us the owner) and is
 * taken back here: every signal is blocked while a process restores.
 */
static int break_again(const FileEntry *e, const FileLockEntry *l)
{
	if (!e->path)
		return -EINVAL; /* the dump refuses it: a crafted image */
	int fd = open(e->path, (l->lease_type == F_UNLCK ? O_WRONLY : O_RDONLY) | O_NONBLOCK |
				       O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 || errno != EWOULDBLOCK) {
		int err = fd >= 0 ? EEXIST : errno;
		if (fd >= 0)
			close(fd);
		return -err;
	}
	sigset_t sig;
	sigemptyset(&sig);
	sigaddset(&sig, e->has_fown_sig && e->fown_sig ? (int)e->fown_sig : SIGIO);
	sigtimedwait(&sig, NULL, &(struct timespec){ 0, 0 });
	return 0;
}

/* F_SETLEASE (the type before a break), the break, then the owner the
 * dump saw.  The break's signal goes to the description's owner: we are
 * its owner until the break is done (files_install leaves the owner of a
 * leased description to us). */
static int take_lease(int fd, const FileEntry *e, const FileLockEntry *l)
{
	int type = (int)l->lease_type;
	if (l->breaking)
		type = (e->flags & O_ACCMODE) == O_RDONLY ? F_RDLCK : F_WRLCK;
	struct f_owner_ex me = { F_OWNER_PID, getpid() };
	if (fcntl(fd, F_SETOWN_EX, &me) < 0 || fcntl(fd, F_SETLEASE, type) < 0)
		return -errno;
	int ret = l->breaking ? break_again(e, l) : 0;
	struct f_owner_ex own = { (int)e->fown_type, e->has_fown_pid ? (pid_t)e->fown_pid : 0 };
	if (!ret && fcntl(fd, F_SETOWN_EX, &own) < 0)
		ret = -errno;
	return ret;
}

static int restore_lease(const struct restore_files *rf, size_t idx, const FdEntry *fe,
			 const FileLockEntry *l)
{
	const FileEntry *e = rf->files[fe->file_id];
	if (held_before(rf, idx, fe->file_id))
		return 0; /* one task takes it: a second F_SETLEASE would end a break */
	int ret = take_lease((int)fe->fd, e, l);
	if (ret)
		pr_err("pid %d: fd %u: %s: cannot take its %slease again: %s", rf->tasks[idx].pid,
		       fe->fd, e->path ? e->path : "file", l->breaking ? "breaking " : "",
		       strerror(-ret));
	return ret;
}

static int restore_locks(const struct restore_files *rf, size_t idx, const FdEntry *fe,
			 const FileEntry *e)
{
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < e->n_locks; i++) {
		const FileLockEntry *l = e->locks[i];
		if (bad_lock(l)) {
			pr_err("file %u: bad lock record", e->id);
			return -EINVAL;
		}
		if (l->kind == FILE_LOCK_KIND__LOCK_LEASE) {
			int ret = restore_lease(rf, idx, fe, l);
			if (ret)
				return ret;
			continue;
		}
		if (l->kind == FILE_LOCK_KIND__LOCK_POSIX && l->pid != (uint32_t)tf->pid)
			continue;
		if (take_lock((int)fe->fd, l) < 0) {
			pr_err("pid %d: fd %u: %s: cannot take its lock again: %s", tf->pid, fe->fd,
			       e->path ? e->path : "file", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* The first fd of this task on the same description is enough. */
static int first_of_file(const struct task_fds *tf, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (tf->fds[j]->file_id == tf->fds[i]->file_id)
			return 0;
	return 1;
}

static int locks_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = rf->files[tf->fds[i]->file_id];
		if (!e->n_locks || !first_of_file(tf, i))
			continue;
		int ret = restore_locks(rf, idx, tf->fds[i], e);
		if (ret)
			return ret;
	}
	return 0;
}

const struct file_kind locks_kind = {
	.name = "locks",
	.types = 0,
	.match = locks_match,
	.dump = locks_dump,
	.dump_tree = locks_dump_tree,
	.check_tree = locks_dump_tree, /* checks only, nothing written */
	.post_install = locks_post_install,
};
