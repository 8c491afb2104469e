/*
 * tty: terminals, two cases.
 *
 * A pseudo-terminal whose master (/dev/ptmx) is in the tree: on restore a
 * new pair is made (its index may change: the restored slave fds point at
 * the new /dev/pts/N), with the dumped termios, window size, packet mode
 * and lock; every description of the pair (the master, each open of the
 * slave) gets its own fd from the new master (TIOCGPTPEER).  Bytes the
 * slave side wrote and the master has not read are kept (tty-queue.c).  A
 * slave that a process outside the tree has open, or bytes the master
 * side wrote and no slave has read, are refused by name: they could not
 * be kept (a slave's queue has already passed its input processing and
 * echo, and a partial canonical line is not even counted by FIONREAD).
 *
 * Any other terminal (the shell's /dev/pts/N, a console, /dev/tty of
 * one) is the job's terminal: refused unless --shell-job, and then bound
 * on restore to the restoring ckptctl's own terminal (its fd 0, 1 or 2,
 * else /dev/tty), the root's process group made its foreground group
 * again when it was at the dump.
 *
 * Sessions: the session leader whose controlling terminal is a pty of the
 * tree gets it back (tty_restore_ctty, before it forks, see tty.h) and
 * puts back its foreground process group (post_install).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "file-kinds.h"
#include "log.h"
#include "tty-queue.h"
#include "tty.h"

#define PTS_MAJOR 136  /* /dev/pts/N */
#define TTYAUX_MAJOR TTY_AUX_MAJOR
#define VT_MAJOR TTY_VT_MAJOR
#define NR_PTY_MAX (1U << 20)
#define DEVPTS_SUPER_MAGIC 0x1cd1

uint32_t tty_encode_dev(dev_t d)
{
	unsigned maj = major(d), min = minor(d);
	return (min & 0xff) | (maj << 8) | ((min & ~0xffU) << 12);
}

static unsigned dev_major(uint32_t d)
{
	return (d >> 8) & 0xfff;
}

static unsigned dev_minor(uint32_t d)
{
	return (d & 0xff) | ((d >> 12) & 0xfff00);
}

int tty_read_stat(pid_t pid, struct stat_tty *s)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *close = strrchr(buf, ')'); /* comm may hold anything */
	int ppid, pgid, tty;
	char state;
	if (!close || sscanf(close + 1, " %c %d %d %d %d %d", &state, &ppid, &pgid, &s->sid, &tty,
			     &s->tpgid) != 6)
		return -EINVAL;
	s->tty_nr = (uint32_t)tty;
	return 0;
}

/* ------------------------------- dump ------------------------------- */

struct tty_seen {
	FileEntry *e;
	pid_t pid;
	int fd;
};

struct tty_dump {
	struct tty_seen *v;
	size_t nr, cap;
};

/* In the dump's arena: gone with it, even when a later fd fails the dump
 * before tty_dump_tree runs. */
static int remember(struct fd_dump *f, FileEntry *e)
{
	struct tty_dump *d = *f->priv;
	if (!d && !(d = *f->priv = arena_alloc(&f->fdump->a, sizeof(*d))))
		return -ENOMEM;
	if (d->nr == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		struct tty_seen *v = arena_alloc(&f->fdump->a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (d->nr)
			memcpy(v, d->v, d->nr * sizeof(*v));
		d->v = v;
		d->cap = cap;
	}
	d->v[d->nr++] = (struct tty_seen){ e, f->pid, f->fd };
	return 0;
}

static int tty_match(const struct fd_dump *f)
{
	if (!S_ISCHR(f->st->st_mode) || tty_is_system_terminal(f))
		return 0;
	unsigned maj = major(f->st->st_rdev), min = minor(f->st->st_rdev);
	return maj == PTS_MAJOR || maj == VT_MAJOR || (maj == TTYAUX_MAJOR && min <= 2);
}

static TtyTermios *save_termios(struct arena *a, const struct termios *tio)
{
	TtyTermios *t = arena_alloc(a, sizeof(*t));
	uint8_t *cc = arena_alloc(a, NCCS);
	if (!t || !cc)
		return NULL;
	tty_termios__init(t);
	t->iflag = tio->c_iflag;
	t->oflag = tio->c_oflag;
	t->cflag = tio->c_cflag;
	t->lflag = tio->c_lflag;
	t->line = tio->c_line;
	memcpy(cc, tio->c_cc, NCCS);
	t->cc.data = cc;
	t->cc.len = NCCS;
	t->ispeed = (uint32_t)cfgetispeed(tio);
	t->ospeed = (uint32_t)cfgetospeed(tio);
	return t;
}

/* The slave's owner and mode, from its node (grantpt, chown, chmod set
 * them); not kept when /dev/pts is another instance than the master's. */
static void save_slave_owner(TtyEntry *t)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/pts/%u", t->index);
	if (stat(path, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(PTS_MAJOR, t->index))
		return;
	t->has_slave_uid = t->has_slave_gid = t->has_slave_mode = 1;
	t->slave_uid = st.st_uid;
	t->slave_gid = st.st_gid;
	t->slave_mode = st.st_mode & 07777;
}

/* A packet-mode status not read yet cannot be read without being lost. */
static int check_status(struct fd_dump *f, int m, TtyEntry *t)
{
	if (!tty_queue_status_pending(m))
		return 0;
	pr_err("pid %d: fd %d: %s (pty %u): a packet-mode status not read yet is not supported",
	       f->pid, f->fd, f->link, t->index);
	return -ENOTSUP;
}

/* The pair's state, read through the master (termios and window size
 * ioctls on a master act on its slave). */
static int save_pair(struct fd_dump *f, int m, TtyEntry *t)
{
	struct termios tio;
	struct winsize ws;
	int pkt = 0, lck = 0;
	if (ioctl(m, TIOCGPTN, &t->index) || tcgetattr(m, &tio) || ioctl(m, TIOCGWINSZ, &ws) ||
	    ioctl(m, TIOCGPKT, &pkt) || ioctl(m, TIOCGPTLCK, &lck)) {
		pr_err("pid %d: fd %d: %s: cannot read the pty's state: %s", f->pid, f->fd, f->link,
		       strerror(errno));
		return -errno;
	}
	if (!(t->termios = save_termios(&f->fdump->a, &tio)))
		return -ENOMEM;
	save_slave_owner(t);
	t->rdev = tty_encode_dev(makedev(PTS_MAJOR, t->index));
	t->has_rows = t->has_cols = t->has_xpixel = t->has_ypixel = 1;
	t->rows = ws.ws_row;
	t->cols = ws.ws_col;
	t->xpixel = ws.ws_xpixel;
	t->ypixel = ws.ws_ypixel;
	t->has_packet = t->has_locked = 1;
	t->packet = pkt != 0;
	t->locked = lck != 0;
	/* every slave opened and closed again: the master reads EIO */
	struct pollfd pfd = { m, POLLIN, 0 };
	t->has_hangup = 1;
	t->hangup = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP);
	return check_status(f, m, t);
}

static int dump_master(struct fd_dump *f, TtyEntry *t)
{
	int m = files_getfd(f->pid, f->fd);
	if (m < 0) {
		pr_err("pid %d: fd %d: %s: cannot get the pty master: %s", f->pid, f->fd, f->link,
		       strerror(-m));
		return m;
	}
	t->kind = TTY_KIND__TTY_PTY_MASTER;
	int ret = save_pair(f, m, t);
	close(m);
	return ret;
}

/* /dev/tty stands for the process's controlling terminal. */
static int dump_devtty(struct fd_dump *f, TtyEntry *t)
{
	struct stat_tty s;
	int ret = tty_read_stat(f->pid, &s);
	if (ret)
		return ret;
	if (!s.tty_nr) {
		pr_err("pid %d: fd %d: /dev/tty of a process without a controlling terminal is not "
		       "supported",
		       f->pid, f->fd);
		return -ENOTSUP;
	}
	t->rdev = s.tty_nr;
	t->kind =
		dev_major(s.tty_nr) == PTS_MAJOR ? TTY_KIND__TTY_PTY_SLAVE : TTY_KIND__TTY_EXTERNAL;
	t->index = dev_minor(s.tty_nr);
	return 0;
}

int tty_dead_slave(const struct fd_dump *f)
{
	char path[64];
	struct statfs sfs;
	if (!S_ISCHR(f->st->st_mode) || major(f->st->st_rdev) != PTS_MAJOR || f->st->st_nlink)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	return statfs(path, &sfs) == 0 && sfs.f_type == DEVPTS_SUPER_MAGIC;
}

/* Its master closed, the pty is gone: the kernel hung every open of the
 * slave up and removed its node.  What is left to see is its fstat. */
static void dump_dead_slave(struct fd_dump *f, TtyEntry *t)
{
	t->has_dead = t->dead = 1;
	t->has_slave_uid = t->has_slave_gid = t->has_slave_mode = 1;
	t->slave_uid = f->st->st_uid;
	t->slave_gid = f->st->st_gid;
	t->slave_mode = f->st->st_mode & 07777;
}

static int tty_dump(struct fd_dump *f, FileEntry *e)
{
	struct arena *a = &f->fdump->a;
	TtyEntry *t = arena_alloc(a, sizeof(*t));
	if (!t || !(e->path = arena_strdup(a, f->link)))
		return -ENOMEM;
	tty_entry__init(t);
	e->type = FILE_TYPE__FILE_TTY;
	e->tty = t;
	dev_t rdev = f->st->st_rdev;
	unsigned maj = major(rdev), min = minor(rdev);
	int ret = 0;
	t->rdev = tty_encode_dev(rdev);
	if (maj == TTYAUX_MAJOR && min == 2 && (e->flags & O_ACCMODE) == O_WRONLY) {
		/* what its slave wrote can only be read, and put back, through
		 * the master, and no second description of it can be opened */
		pr_err("pid %d: fd %d: %s: a pty master opened write-only: its queues cannot be "
		       "read through it: not supported",
		       f->pid, f->fd, f->link);
		return -ENOTSUP;
	} else if (maj == TTYAUX_MAJOR && min == 2) {
		ret = dump_master(f, t);
	} else if (maj == TTYAUX_MAJOR && min == 0) {
		ret = dump_devtty(f, t);
	} else if (maj == PTS_MAJOR) {
		t->kind = TTY_KIND__TTY_PTY_SLAVE; /* external if its master is not ours */
		t->index = min;
		if (f->st->st_nlink == 0)
			dump_dead_slave(f, t);
	} else {
		t->kind = TTY_KIND__TTY_EXTERNAL;
	}
	return ret ? ret : remember(f, e);
}

static TtyEntry *master_of(struct tty_dump *d, uint32_t index)
{
	for (size_t i = 0; i < d->nr; i++) {
		TtyEntry *t = d->v[i].e->tty;
		if (t->kind == TTY_KIND__TTY_PTY_MASTER && t->index == index)
			return t;
	}
	return NULL;
}

/* A slave of a live pair is restored as a new open of it: one that was
 * hung up alone (vhangup, TIOCVHANGUP: its termios ioctls fail with EIO)
 * could not be made so again without CAP_SYS_ADMIN. */
static int check_live_slave(const struct tty_seen *s)
{
	struct termios tio;
	int fd = files_getfd(s->pid, s->fd);
	if (fd < 0)
		return fd;
	int ret = tcgetattr(fd, &tio) ? -errno : 0;
	close(fd);
	if (ret == -EIO)
		pr_err("pid %d: fd %d: %s (pty %u): a slave hung up while its pty lives "
		       "(vhangup) is not supported",
		       s->pid, s->fd, s->e->path, s->e->tty->index);
	return ret == -EIO ? -ENOTSUP : ret;
}

/* Slaves whose master is in the tree stay ptys; the others are the job's
 * terminal, which needs --shell-job (and one terminal at most). */
static int resolve_slaves(struct files_dump *c, struct tty_dump *d)
{
	uint32_t job_tty = 0;
	for (size_t i = 0; i < d->nr; i++) {
		const struct tty_seen *s = &d->v[i];
		TtyEntry *t = s->e->tty;
		if (t->kind == TTY_KIND__TTY_PTY_SLAVE && t->dead)
			continue;
		if (t->kind == TTY_KIND__TTY_PTY_SLAVE && master_of(d, t->index)) {
			int ret = check_live_slave(s);
			if (ret)
				return ret;
			continue;
		}
		if (t->kind != TTY_KIND__TTY_PTY_SLAVE && t->kind != TTY_KIND__TTY_EXTERNAL)
			continue;
		t->kind = TTY_KIND__TTY_EXTERNAL;
		if (!c->opts || !c->opts->shell_job) {
			pr_err("pid %d: fd %d: %s: a terminal outside the tree (character device "
			       "%u:%u): dump with --shell-job to bind it to the restoring terminal",
			       s->pid, s->fd, s->e->path, dev_major(t->rdev), dev_minor(t->rdev));
			return -ENOTSUP;
		}
		if (job_tty && job_tty != t->rdev) {
			pr_err("pid %d: fd %d: %s: a second terminal outside the tree (%u:%u, the "
			       "first is %u:%u): --shell-job binds one",
			       s->pid, s->fd, s->e->path, dev_major(t->rdev), dev_minor(t->rdev),
			       dev_major(job_tty), dev_minor(job_tty));
			return -ENOTSUP;
		}
		job_tty = t->rdev;
	}
	return 0;
}

static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

/* The master's new pair gets another index: an outside process that has
 * the old /dev/pts/N open would be left on the old one. */
static int check_outside_slaves(struct tty_dump *d, pid_t pid)
{
	char path[300];
	struct stat st;
	struct dirent *fe;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *fds = opendir(path);
	while (fds && (fe = readdir(fds))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fe->d_name);
		if (fe->d_name[0] == '.' || stat(path, &st) || !S_ISCHR(st.st_mode) ||
		    major(st.st_rdev) != PTS_MAJOR)
			continue;
		TtyEntry *m = master_of(d, minor(st.st_rdev));
		if (!m)
			continue;
		for (size_t i = 0; i < d->nr; i++)
			if (d->v[i].e->tty == m)
				pr_err("pid %d: fd %d: pty %u: its slave /dev/pts/%u is open in "
				       "pid %d (fd %s), outside the dumped tree",
				       d->v[i].pid, d->v[i].fd, m->index, m->index, pid,
				       fe->d_name);
		closedir(fds);
		return -ENOTSUP;
	}
	if (fds)
		closedir(fds);
	return 0;
}

static int check_outside(struct files_dump *c, struct tty_dump *d)
{
	struct dirent *de;
	int ret = 0, masters = 0;
	for (size_t i = 0; i < d->nr; i++)
		masters += d->v[i].e->tty->kind == TTY_KIND__TTY_PTY_MASTER;
	if (!masters)
		return 0;
	DIR *proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (!ret && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);
		if (pid > 0 && pid != getpid() && !in_tree(c->tree, pid))
			ret = check_outside_slaves(d, pid);
	}
	closedir(proc);
	return ret;
}

/* `pgrp` if some process of the tree is in it (a group it can make the
 * foreground again), else 0. */
static uint32_t tree_pgrp(const struct frozen_tree *tree, int pgrp)
{
	for (int i = 0; pgrp > 0 && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie && tree->tasks[i].pgid == pgrp)
			return (uint32_t)tree->tasks[i].vpgid;
	return 0;
}

/* A console or virtual terminal: regfile's when the tree leads its
 * session (tty-system.c), not the job's terminal. */
static int is_system_nr(uint32_t nr)
{
	return dev_major(nr) == VT_MAJOR || (dev_major(nr) == TTYAUX_MAJOR && dev_minor(nr) == 1);
}

/* Controlling terminals and foreground groups of the tree's sessions. */
static int dump_sessions(struct files_dump *c, struct tty_dump *d)
{
	for (int i = 0; i < c->tree->nr_tasks; i++) {
		const struct frozen_task *task = &c->tree->tasks[i];
		struct stat_tty s;
		if (task->zombie || tty_read_stat(task->pid, &s) || !s.tty_nr)
			continue;
		TtyEntry *m =
			dev_major(s.tty_nr) == PTS_MAJOR ? master_of(d, dev_minor(s.tty_nr)) : NULL;
		if (m && s.sid == task->pid) {
			m->has_ctty_sid = m->has_fg_pgrp = 1;
			m->ctty_sid = (uint32_t)task->vpid;
			m->fg_pgrp = tree_pgrp(c->tree, s.tpgid);
		} else if (m && !in_tree(c->tree, s.sid)) {
			pr_err("pid %d: its controlling terminal, pty %u of the tree, belongs to "
			       "session %d outside the tree: not supported",
			       task->pid, m->index, s.sid);
			return -ENOTSUP;
		} else if (!m && s.sid == task->pid && c->opts && c->opts->shell_job &&
			   !is_system_nr(s.tty_nr)) {
			pr_err("pid %d: a session leader whose controlling terminal (%u:%u) is "
			       "outside the tree: --shell-job cannot give it back",
			       task->pid, dev_major(s.tty_nr), dev_minor(s.tty_nr));
			return -ENOTSUP;
		}
		/* a shell job: was the root's group in the foreground? */
		for (size_t k = 0; !m && i == 0 && k < d->nr; k++) {
			TtyEntry *t = d->v[k].e->tty;
			if (t->kind == TTY_KIND__TTY_EXTERNAL && t->rdev == s.tty_nr &&
			    s.tpgid == task->pgid) {
				t->has_fg_pgrp = 1;
				t->fg_pgrp = (uint32_t)task->vpgid;
			}
		}
	}
	return 0;
}

/* A slave description of the tree on live pty `index`, or NULL. */
static const struct tty_seen *slave_of(struct tty_dump *d, uint32_t index)
{
	for (size_t i = 0; i < d->nr; i++) {
		const TtyEntry *t = d->v[i].e->tty;
		if (t->kind == TTY_KIND__TTY_PTY_SLAVE && !t->dead && t->index == index)
			return &d->v[i];
	}
	return NULL;
}

/* A check: the refusals alone, through the tree's fds (nothing read). */
static int check_queues(const struct tty_seen *ms, const struct tty_seen *ss, uint32_t index)
{
	const char *why = NULL;
	int s = files_getfd(ss->pid, ss->fd), m = files_getfd(ms->pid, ms->fd), ret;
	if (s < 0 || m < 0)
		ret = s < 0 ? s : m;
	else
		ret = tty_queue_check_input(m, s, &why);
	if (s >= 0)
		close(s);
	if (m >= 0)
		close(m);
	if (ret)
		pr_err("pid %d: fd %d: %s (pty %u): %s", ss->pid, ss->fd, ss->e->path, index,
		       why ? why : strerror(-ret));
	return ret;
}

/* A master opened read-only cannot write input back once taken (the
 * queue work goes through the master): none may be waiting for the
 * slave.  It cannot have written any itself; only TIOCSTI could have,
 * and a canonical line not finished yet is not counted by FIONREAD:
 * that one would be lost (the same gap as a check's, tty-queue.h). */
static int rdonly_input(const struct tty_seen *ms, const TtyEntry *t)
{
	int m = files_getfd(ms->pid, ms->fd);
	int n = m < 0 ? m : tty_queue_input_pending(m);
	if (m >= 0)
		close(m);
	if (n > 0)
		pr_err("pid %d: fd %d: %s (pty %u): a master opened read-only, with %d bytes "
		       "its slave has not read: they could not be put back through it: not "
		       "supported",
		       ms->pid, ms->fd, ms->e->path, t->index, n);
	else if (n < 0)
		pr_err("pid %d: fd %d: %s (pty %u): cannot see its slave's input: %s", ms->pid,
		       ms->fd, ms->e->path, t->index, strerror(-n));
	return n;
}

/* The pair's queues both ways into its master's entry (tty-queue.c).  Its
 * input is seen through a slave of ours, which may be opened only when
 * one is open already or the pair is hung up: the close of the last
 * slave would hang it up.  (A slave never opened: nothing to read.) */
static int save_queues(struct files_dump *c, struct tty_dump *d, const struct tty_seen *ms)
{
	TtyEntry *t = ms->e->tty;
	const struct tty_seen *ss = slave_of(d, t->index);
	const char *why = NULL;
	int rdonly = (ms->e->flags & O_ACCMODE) == O_RDONLY, with_input = ss || t->hangup;
	if (rdonly && with_input && rdonly_input(ms, t))
		return -ENOTSUP;
	if (!c->set)
		return ss ? check_queues(ms, ss, t->index) : 0;
	int m = files_getfd(ms->pid, ms->fd), ret;
	if (m < 0)
		return m;
	ret = tty_queue_save(&c->a, m, with_input && !rdonly, t, &why);
	close(m);
	if (ret)
		pr_err("pid %d: fd %d: %s (pty %u): %s%s", ms->pid, ms->fd, ms->e->path, t->index,
		       why ? why : "cannot read what its queues hold: ", why ? "" : strerror(-ret));
	return ret;
}

static int save_all_queues(struct files_dump *c, struct tty_dump *d)
{
	int ret = 0;
	for (size_t i = 0; !ret && i < d->nr; i++)
		if (d->v[i].e->tty->kind == TTY_KIND__TTY_PTY_MASTER)
			ret = save_queues(c, d, &d->v[i]);
	return ret;
}

static int tty_dump_tree(struct files_dump *fdump, void **priv)
{
	struct tty_dump *d = *priv;
	int ret = 0;
	if (!d)
		return 0;
	/* the queues last: every refusal that needs nothing read comes first.
	 * Slaves open outside the tree: in the check only (check_refusals,
	 * dump.c), on the same frozen tree.  By the write, a snapshot dump's
	 * copies of the tasks (C2, snapshot.c) exist, and hold copies of
	 * the tree's fds until they first run: no outsiders, but a scan then
	 * took them for some. */
	if (!(ret = resolve_slaves(fdump, d)) && !(ret = fdump->set ? 0 : check_outside(fdump, d)) &&
	    !(ret = dump_sessions(fdump, d)))
		ret = save_all_queues(fdump, d);
	*priv = NULL;
	return ret;
}

/* ------------------------------ restore ----------------------------- */

struct pty_pair {
	uint32_t index;	       /* at dump */
	int dead;	       /* a pty gone at dump: slaves only, hung up (dump_dead_slave) */
	const TtyEntry *state; /* the master's entry (dead: the first slave's) */
	int master;	       /* our fd on the new master while descriptions are left */
	int left;	       /* descriptions of the pair not opened yet */
	int slaves;	       /* slave descriptions in the image */
	int mode;	       /* the master's access mode: the new pair is opened so */
};

struct tty_restore {
	struct pty_pair *pairs;
	size_t nr;
	int term, own_term; /* --shell-job: the terminal the job's fds go to */
};

static struct pty_pair *pair_of(struct tty_restore *r, const TtyEntry *t)
{
	int dead = t->has_dead && t->dead;
	for (size_t i = 0; i < r->nr; i++)
		if (r->pairs[i].index == t->index && r->pairs[i].dead == dead)
			return &r->pairs[i];
	return NULL;
}

static int valid_entry(const FileEntry *e)
{
	const TtyEntry *t = e->tty;
	int acc = (int)e->flags & O_ACCMODE;
	if (!t || t->kind < TTY_KIND__TTY_PTY_MASTER || t->kind > TTY_KIND__TTY_EXTERNAL ||
	    t->index >= NR_PTY_MAX)
		return 0;
	if (t->has_dead && t->dead)
		return t->kind == TTY_KIND__TTY_PTY_SLAVE;
	if (t->kind != TTY_KIND__TTY_PTY_MASTER)
		return !t->n_input_lines && !t->has_input_tail;
	/* a read-only master: no input to write back through it (dump) */
	if (acc == O_WRONLY || acc == O_ACCMODE ||
	    (acc == O_RDONLY && (t->n_input_lines || t->has_input_tail)))
		return 0;
	return t->termios && t->termios->cc.len <= NCCS && t->has_rows && t->has_cols &&
	       tty_queue_valid(t);
}

/* Our terminal: the first of fds 0-2 that is one, else /dev/tty.  When
 * the job was in the foreground it must also be our controlling one. */
static int find_term(struct tty_restore *r, int want_fg)
{
	struct stat b;
	for (int fd = 0; fd < 3 && r->term < 0; fd++)
		if (isatty(fd))
			r->term = fd;
	int ctty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (r->term < 0 && ctty >= 0) {
		r->term = ctty;
		r->own_term = 1;
		return 0;
	}
	if (r->term < 0) {
		pr_err("--shell-job: ckptctl restore has no terminal to give the job (none on "
		       "fds 0-2, no /dev/tty)");
		return -ENOTTY;
	}
	/* /dev/tty's own inode is 5:0: our stat's tty_nr names the terminal */
	struct stat_tty s;
	int same = ctty >= 0 && !tty_read_stat(getpid(), &s) && !fstat(r->term, &b) &&
		   s.tty_nr == tty_encode_dev(b.st_rdev);
	if (ctty >= 0)
		close(ctty);
	if (want_fg && !same) {
		pr_err("--shell-job: the terminal on fd %d is not ckptctl's controlling terminal: "
		       "cannot put the job back in its foreground",
		       r->term);
		return -ENOTTY;
	}
	return 0;
}

static int add_entry(struct tty_restore *r, const FileEntry *e)
{
	struct pty_pair *p = pair_of(r, e->tty);
	int dead = e->tty->has_dead && e->tty->dead;
	if (!p) {
		p = realloc(r->pairs, (r->nr + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->pairs = p;
		p = &r->pairs[r->nr++];
		*p = (struct pty_pair){ e->tty->index, dead, NULL, -1, 0, 0, O_RDWR };
	}
	if (dead) {
		if (!p->state)
			p->state = e->tty;
		p->slaves++;
	} else if (e->tty->kind == TTY_KIND__TTY_PTY_MASTER) {
		if (p->state) {
			pr_err("file %u: a second master for pty %u", e->id, e->tty->index);
			return -EINVAL;
		}
		p->state = e->tty;
		p->mode = (int)e->flags & O_ACCMODE;
	} else {
		p->slaves++;
	}
	p->left++;
	return 0;
}

static int read_entries(struct restore_files *rf, struct tty_restore *r, int *want_fg)
{
	int shell_job = rf->opts && rf->opts->shell_job, ret;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_TTY)
			continue;
		if (!valid_entry(e)) {
			pr_err("file %u: bad terminal entry", e->id);
			return -EINVAL;
		}
		if (e->tty->kind != TTY_KIND__TTY_EXTERNAL) {
			if ((ret = add_entry(r, e)))
				return ret;
			continue;
		}
		if (!shell_job) {
			pr_err("file %u: %s is the job's terminal (dumped with --shell-job): "
			       "restore with --shell-job",
			       e->id, e->path ? e->path : "a terminal");
			return -ENOTSUP;
		}
		*want_fg |= e->tty->has_fg_pgrp && e->tty->fg_pgrp;
		if (r->term < 0)
			r->term = -2; /* needed */
	}
	for (size_t i = 0; i < r->nr; i++) {
		const struct pty_pair *p = &r->pairs[i];
		if (!p->state) {
			pr_err("pty %u: slave without its master in the image", p->index);
			return -EINVAL;
		}
		/* a dump reads input only through an open slave or a hung-up pair */
		if ((p->state->n_input_lines || p->state->has_input_tail) && !p->slaves &&
		    !(p->state->has_hangup && p->state->hangup)) {
			pr_err("pty %u: input for a slave that was never opened", p->index);
			return -EINVAL;
		}
	}
	return 0;
}

static void tty_free(void *priv)
{
	struct tty_restore *r = priv;
	for (size_t i = 0; i < r->nr; i++)
		if (r->pairs[i].master >= 0)
			close(r->pairs[i].master);
	if (r->own_term)
		close(r->term);
	free(r->pairs);
	free(r);
}

static int tty_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)set;
	struct tty_restore *r = calloc(1, sizeof(*r));
	int want_fg = 0;
	if (!r)
		return -ENOMEM;
	r->term = -1;
	*priv = r;
	int ret = read_entries(rf, r, &want_fg);
	if (!ret && r->term == -2) {
		r->term = -1;
		ret = find_term(r, want_fg);
	}
	return ret;
}

static void load_termios(const TtyTermios *t, struct termios *tio)
{
	memset(tio, 0, sizeof(*tio));
	tio->c_iflag = t->iflag;
	tio->c_oflag = t->oflag;
	tio->c_cflag = t->cflag;
	tio->c_lflag = t->lflag;
	tio->c_line = (cc_t)t->line;
	memcpy(tio->c_cc, t->cc.data, t->cc.len);
	cfsetispeed(tio, (speed_t)t->ispeed);
	cfsetospeed(tio, (speed_t)t->ospeed);
}

/* A new pty with the dumped state, unlocked until its slaves are open. */
static int make_pair(struct pty_pair *p)
{
	const TtyEntry *t = p->state;
	struct termios tio;
	struct winsize ws = { (unsigned short)t->rows, (unsigned short)t->cols,
			      (unsigned short)t->xpixel, (unsigned short)t->ypixel };
	int zero = 0, pkt = t->has_packet && t->packet;
	unsigned index;
	int m = open("/dev/ptmx", p->mode | O_NOCTTY | O_CLOEXEC);
	if (m < 0) {
		pr_err("pty %u: cannot open /dev/ptmx: %s", p->index, strerror(errno));
		return -errno;
	}
	load_termios(t->termios, &tio);
	if (ioctl(m, TIOCSPTLCK, &zero) || tcsetattr(m, TCSANOW, &tio) ||
	    ioctl(m, TIOCSWINSZ, &ws) || ioctl(m, TIOCPKT, &pkt) || ioctl(m, TIOCGPTN, &index)) {
		int err = errno;
		pr_err("pty %u: cannot set up its new pair: %s", p->index, strerror(err));
		close(m);
		return -err;
	}
	if (index != p->index)
		pr_debug("pty %u: restored as pty %u", p->index, index);
	p->master = m;
	return 0;
}

/* A new slave fd of the pair: its node gets the dumped owner and mode
 * (left alone where they are already; a user's restore cannot give it
 * away, and says so). */
static int set_slave_owner(const TtyEntry *t, int fd)
{
	struct stat st;
	if (!t->has_slave_uid || !t->has_slave_gid || !t->has_slave_mode || fstat(fd, &st))
		return 0;
	if ((st.st_uid != t->slave_uid || st.st_gid != t->slave_gid) &&
	    fchown(fd, (uid_t)t->slave_uid, (gid_t)t->slave_gid)) {
		pr_err("pty %u: cannot give its slave the owner %u:%u: %s", t->index, t->slave_uid,
		       t->slave_gid, strerror(errno));
		return -errno;
	}
	if ((st.st_mode & 07777) != t->slave_mode && fchmod(fd, (mode_t)t->slave_mode)) {
		pr_err("pty %u: cannot give its slave the mode %04o: %s", t->index, t->slave_mode,
		       strerror(errno));
		return -errno;
	}
	return 0;
}

/* Every description of the pair is open: lock it again if it was; a
 * slave open and closed makes the master hung up as it was. */
static int finish_pair(struct pty_pair *p)
{
	int one = 1, ret = 0, peer = -1;
	if (p->state->has_hangup && p->state->hangup && !p->slaves &&
	    (peer = ioctl(p->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		ret = -errno;
		pr_err("pty %u: cannot hang its master up again: %s", p->index, strerror(errno));
	}
	if (peer >= 0) {
		ret = set_slave_owner(p->state, peer);
		close(peer);
	}
	if (!ret)
		ret = tty_queue_restore(p->master, p->state);
	if (!ret && p->state->has_locked && p->state->locked &&
	    ioctl(p->master, TIOCSPTLCK, &one)) {
		ret = -errno;
		pr_err("pty %u: cannot lock it again: %s", p->index, strerror(errno));
	}
	close(p->master);
	p->master = -1;
	return ret;
}

/* A pty gone at dump: its slaves are open, the master goes, which hangs
 * them up and removes its node, as the kernel did to the old ones. */
static int finish_dead(struct pty_pair *p)
{
	close(p->master);
	p->master = -1;
	return 0;
}

/* A new pair, with the dumped state unless it is a dead one. */
static int new_pair(struct pty_pair *p)
{
	int zero = 0;
	if (!p->dead)
		return make_pair(p);
	p->master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->master < 0 || ioctl(p->master, TIOCSPTLCK, &zero)) {
		int err = errno;
		pr_err("pty %u: cannot make a pair for its slaves left after its master: %s",
		       p->index, strerror(err));
		if (p->master >= 0)
			close(p->master);
		p->master = -1;
		return -err;
	}
	return 0;
}

static int open_pty(struct tty_restore *r, const FileEntry *e)
{
	struct pty_pair *p = pair_of(r, e->tty);
	int flags = (int)e->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND), fd, ret;
	if (!p)
		return -EINVAL;
	if (p->master < 0 && (ret = new_pair(p)))
		return ret;
	if (e->tty->kind == TTY_KIND__TTY_PTY_MASTER) {
		fd = fcntl(p->master, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && fcntl(fd, F_SETFL, flags & ~O_ACCMODE) < 0) {
			close(fd);
			fd = -1;
		}
	} else {
		/* Not O_CLOEXEC here: TIOCGPTPEER would keep it in the file's
		 * own flags (F_GETFL), which the job's slave never had. */
		fd = ioctl(p->master, TIOCGPTPEER, flags | O_NOCTTY);
		if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 && (ret = set_slave_owner(p->state, fd))) {
			close(fd);
			return ret;
		}
	}
	if (fd < 0) {
		ret = -errno;
		pr_err("file %u: pty %u: cannot open its %s: %s", e->id, p->index,
		       e->tty->kind == TTY_KIND__TTY_PTY_MASTER ? "master" : "slave",
		       strerror(errno));
		return ret;
	}
	if (--p->left == 0 && (ret = p->dead ? finish_dead(p) : finish_pair(p))) {
		close(fd);
		return ret;
	}
	return fd;
}

static int tty_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	struct tty_restore *r = priv;
	char path[64];
	if (e->tty->kind != TTY_KIND__TTY_EXTERNAL)
		return open_pty(r, e);
	/* A description of our own on our terminal, with the job's flags. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->term);
	int flags = (int)e->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND);
	int fd = open(path, flags | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("file %u: cannot open our terminal (fd %d) for the job's %s: %s", e->id,
		       r->term, e->path ? e->path : "terminal", strerror(errno));
		return -errno;
	}
	return fd;
}

/* A description of the slave of pty `index`: in the pool (use_pool) or
 * among task idx's own fds. */
static int slave_fd(const struct restore_files *rf, size_t idx, uint32_t index, int use_pool)
{
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_TTY || e->tty->kind != TTY_KIND__TTY_PTY_SLAVE ||
		    e->tty->index != index)
			continue;
		if (use_pool && rf->pool && rf->pool[i] >= 0)
			return rf->pool[i];
		for (size_t k = 0; !use_pool && k < tf->nr; k++)
			if (tf->fds[k]->file_id == i)
				return (int)tf->fds[k]->fd;
	}
	return -1;
}

/* Pool fd of the master of pty `index`, or -1. */
static int master_pool_fd(const struct restore_files *rf, uint32_t index)
{
	for (size_t i = 0; rf->pool && i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type == FILE_TYPE__FILE_TTY && e->tty->kind == TTY_KIND__TTY_PTY_MASTER &&
		    e->tty->index == index)
			return rf->pool[i];
	}
	return -1;
}

static int take_ctty(pid_t pid, const TtyEntry *t, int fd)
{
	if (fd >= 0 && ioctl(fd, TIOCSCTTY, 0) == 0)
		return 0;
	pr_err("pid %d: cannot take pty %u back as its controlling terminal: %s", pid, t->index,
	       fd < 0 ? "no fd on its slave" : strerror(errno));
	return fd < 0 ? -ENOENT : -errno;
}

int tty_restore_ctty(const struct restore_files *rf, size_t idx)
{
	pid_t pid = rf->tasks[idx].pid;
	int sys = tty_system_restore_ctty(rf, idx);
	if (sys)
		return sys;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_TTY || e->tty->kind != TTY_KIND__TTY_PTY_MASTER ||
		    !e->tty->has_ctty_sid || e->tty->ctty_sid != (uint32_t)pid)
			continue;
		int fd = slave_fd(rf, idx, e->tty->index, 1), ret;
		if (fd >= 0)
			return take_ctty(pid, e->tty, fd);
		/* No process has the slave open: a short-lived one of ours. */
		int m = master_pool_fd(rf, e->tty->index);
		fd = m < 0 ? -1 : ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		ret = take_ctty(pid, e->tty, fd);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return 0;
}

int tty_set_foreground(pid_t pid, pid_t pgrp)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 && tcsetpgrp(fd, pgrp) == 0) {
		close(fd);
		return 0;
	}
	int err = errno;
	pr_err("pid %d: cannot make process group %d the foreground of its terminal: %s", pid, pgrp,
	       strerror(err));
	if (fd >= 0)
		close(fd);
	return -err;
}

/* In each restoring task: a session leader's terminal gets its foreground
 * group back; with --shell-job the root's group takes our terminal's
 * foreground when it had the job's. */
static int tty_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	pid_t pid = rf->tasks[idx].pid;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		const TtyEntry *t = e->tty;
		int ret;
		if (e->type != FILE_TYPE__FILE_TTY || !t->has_fg_pgrp || !t->fg_pgrp)
			continue;
		if (t->kind == TTY_KIND__TTY_PTY_MASTER && t->has_ctty_sid &&
		    t->ctty_sid == (uint32_t)pid) {
			/* Taken before the fork of its children (tty.h); TIOCSCTTY
			 * of the terminal we already control is a no-op. */
			int own = slave_fd(rf, idx, t->index, 0);
			if (own >= 0 && (ret = take_ctty(pid, t, own)))
				return ret;
			if ((pid_t)t->fg_pgrp != getpgrp() &&
			    (ret = tty_set_foreground(pid, (pid_t)t->fg_pgrp)))
				return ret;
		}
		if (t->kind == TTY_KIND__TTY_EXTERNAL && idx == 0 &&
		    (pid_t)t->fg_pgrp == getpgrp() && getsid(0) != getpid())
			return tty_set_foreground(pid, getpgrp());
	}
	return 0;
}

const struct file_kind tty_kind = {
	.name = "tty",
	.types = 1ULL << FILE_TYPE__FILE_TTY,
	.match = tty_match,
	.dump = tty_dump,
	.dump_tree = tty_dump_tree,
	.check_tree = tty_dump_tree, /* checks only, nothing written */
	.read = tty_read,
	.open = tty_open,
	.post_install = tty_post_install,
	.free = tty_free,
};
