/*
 * tty-system: the machine's own terminals (a virtual terminal, major 4,
 * or the console, 5:1) held by the tree.  Their state (termios, size,
 * the screen) is the device's, not the open file's, so reopening the
 * node by path gives the same terminal again: they are regfile's
 * (FILE_REG with rdev, checked at the restore).
 *
 * One may also be the controlling terminal of a session the tree leads
 * (zdtm vt: a session leader opens it without O_NOCTTY).  Its entries
 * then name the leader (file_entry.ctty_sid) and the foreground group
 * (ctty_fg_pgrp).  At the restore the leader takes it back with
 * TIOCSCTTY right after its setsid(), before it forks (children inherit
 * a controlling terminal at fork only, see tty.h), through the pool fd:
 * the node was opened as the restoring user, and TIOCSCTTY without
 * force only takes a terminal no other session has, so the kernel
 * decides as for the user's own open.  The foreground group goes back in
 * post_install.  A terminal controlling a session led from outside the
 * tree is not a system terminal here (tty.c refuses it as the job's,
 * unless --shell-job), nor is one whose leader holds no fd on it (we
 * would have no path to reopen: refused at dump).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "tty.h"

static int is_system_rdev(dev_t rdev)
{
	return major(rdev) == TTY_VT_MAJOR || (major(rdev) == TTY_AUX_MAJOR && minor(rdev) == 1);
}

/* The live task of the tree with this pid, or NULL. */
static const struct frozen_task *tree_task(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie && tree->tasks[i].pid == pid)
			return &tree->tasks[i];
	return NULL;
}

/*
 * A console or virtual terminal (or serial port) whose every holder as a
 * controlling terminal in the tree is in a session led by a live process
 * of the tree (none at all: the plain case of zdtm console).
 */
int tty_is_system_terminal(const struct fd_dump *f)
{
	dev_t rdev = f->st->st_rdev;
	if (!S_ISCHR(f->st->st_mode) || !is_system_rdev(rdev))
		return 0;
	const struct frozen_tree *tree = f->fdump->tree;
	for (int i = 0; i < tree->nr_tasks; i++) {
		struct stat_tty s;
		if (tree->tasks[i].zombie)
			continue;
		if (tty_read_stat(tree->tasks[i].pid, &s))
			return 0;
		if (s.tty_nr == tty_encode_dev(rdev) && !tree_task(tree, s.sid))
			return 0;
	}
	return 1;
}

/* `pgrp` as the tree sees it when a live process of the tree is in it. */
static uint32_t tree_vpgrp(const struct frozen_tree *tree, int pgrp)
{
	for (int i = 0; pgrp > 0 && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie && tree->tasks[i].pgid == pgrp)
			return (uint32_t)tree->tasks[i].vpgid;
	return 0;
}

int tty_system_dump(const struct fd_dump *f, FileEntry *e)
{
	const struct frozen_tree *tree = f->fdump->tree;
	uint32_t nr = tty_encode_dev(f->st->st_rdev);
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		struct stat_tty s;
		if (t->zombie || t->sid != t->pid || tty_read_stat(t->pid, &s) || s.tty_nr != nr)
			continue;
		e->has_ctty_sid = e->has_ctty_fg_pgrp = 1;
		e->ctty_sid = (uint32_t)t->vpid;
		e->ctty_fg_pgrp = tree_vpgrp(tree, s.tpgid);
		return 0;
	}
	return 0;
}

static int has_entry(const struct files_dump *fdump, uint32_t vsid)
{
	for (size_t i = 0; i < fdump->nr; i++) {
		const FileEntry *e = fdump->descs[i].entry;
		if (e && e->type == FILE_TYPE__FILE_REG && e->has_ctty_sid && e->ctty_sid == vsid)
			return 1;
	}
	return 0;
}

int tty_system_dump_tree(struct files_dump *fdump)
{
	const struct frozen_tree *tree = fdump->tree;
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		struct stat_tty s;
		if (t->zombie || t->sid != t->pid || tty_read_stat(t->pid, &s) || !s.tty_nr)
			continue;
		dev_t rdev = makedev((s.tty_nr >> 8) & 0xfff, (s.tty_nr & 0xff) |
							      ((s.tty_nr >> 12) & 0xfff00));
		if (!is_system_rdev(rdev) || has_entry(fdump, (uint32_t)t->vpid))
			continue;
		pr_err("pid %d: its controlling terminal, %u:%u, is open in no fd of the tree: "
		       "it could not be reopened: not supported",
		       t->pid, major(rdev), minor(rdev));
		return -ENOTSUP;
	}
	return 0;
}

static const TaskEntry *inv_task(const InventoryEntry *inv, uint32_t pid)
{
	for (size_t i = 0; inv && i < inv->n_tasks; i++)
		if (inv->tasks[i]->pid == pid && !(inv->tasks[i]->has_zombie && inv->tasks[i]->zombie))
			return inv->tasks[i];
	return NULL;
}

/* A session leader of the tree, a system terminal, a group of its session. */
int tty_system_valid(const struct restore_files *rf, const FileEntry *e)
{
	if (!e->has_ctty_sid && !e->has_ctty_fg_pgrp)
		return 0;
	const TaskEntry *leader = e->has_ctty_sid ? inv_task(rf->inv, e->ctty_sid) : NULL;
	int ok = e->type == FILE_TYPE__FILE_REG && e->has_rdev && is_system_rdev((dev_t)e->rdev) &&
		 leader && leader->sid == leader->pid;
	for (size_t i = 0; ok && e->has_ctty_fg_pgrp && e->ctty_fg_pgrp && i <= rf->inv->n_tasks;
	     i++) {
		if (i == rf->inv->n_tasks)
			ok = 0; /* no process of the session in that group */
		else if (rf->inv->tasks[i]->pgid == e->ctty_fg_pgrp &&
			 rf->inv->tasks[i]->sid == leader->sid)
			break;
	}
	if (ok)
		return 0;
	pr_err("file %u: %s: a controlling terminal of session %u (foreground group %u) that "
	       "the tree does not have",
	       e->id, e->path ? e->path : "?", e->ctty_sid, e->ctty_fg_pgrp);
	return -EINVAL;
}

int tty_system_restore_ctty(const struct restore_files *rf, size_t idx)
{
	pid_t pid = rf->tasks[idx].pid;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_REG || !e->has_ctty_sid ||
		    e->ctty_sid != (uint32_t)pid)
			continue;
		int fd = rf->pool ? rf->pool[i] : -1;
		if (fd >= 0 && ioctl(fd, TIOCSCTTY, 0) == 0)
			return 0;
		int err = fd < 0 ? ENOENT : errno;
		pr_err("pid %d: cannot take %s back as its controlling terminal: %s", pid,
		       e->path ? e->path : "its terminal", strerror(err));
		return -err;
	}
	return 0;
}

int tty_system_post_install(const struct restore_files *rf, size_t idx)
{
	pid_t pid = rf->tasks[idx].pid;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type == FILE_TYPE__FILE_REG && e->has_ctty_sid &&
		    e->ctty_sid == (uint32_t)pid && e->has_ctty_fg_pgrp && e->ctty_fg_pgrp &&
		    (pid_t)e->ctty_fg_pgrp != getpgrp())
			return tty_set_foreground(pid, (pid_t)e->ctty_fg_pgrp);
	}
	return 0;
}
