/*
 * fdtable: processes that share one fd table (clone with CLONE_FILES and
 * not CLONE_THREAD), and what else clone shares between processes that
 * the restore would split (CLONE_FS: cwd, root, umask).
 *
 * Dump: the processes of the tree that share one table form a group; the
 * first of them in tree order (parents come before their children) owns
 * it: its fdinfo image is the table, the others name it in their
 * task_entry (files_shared_with) and have none.  A group comes back when
 * every member but the owner has the table of its parent: the restore
 * creates each with CLONE_FILES from its parent (restore-tree.c), the
 * owner installs the fds, the others wait for that and install nothing.
 * What it cannot bring back is refused by name: a table shared with a
 * process that is not the parent (a sibling after the parent unshared, a
 * process reparented after its parent exited), with a process outside
 * the tree, a thread's table or fs of its own (unshare in a thread: the
 * restorer clones threads sharing both), and processes sharing their fs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "fdtable.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

static int same(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

int fdtable_owner(const struct frozen_tree *tree, int i)
{
	const struct frozen_task *t = &tree->tasks[i];
	if (t->zombie) /* exited: no table */
		return -1;
	for (int j = 0; j < i; j++)
		if (!tree->tasks[j].zombie && same(tree->tasks[j].pid, t->pid, KCMP_FILES))
			return j;
	return -1;
}

static int index_of(const struct frozen_tree *tree, pid_t pid)
{
	for (int j = 0; j < tree->nr_tasks; j++)
		if (tree->tasks[j].pid == pid)
			return j;
	return -1;
}

/* A table or fs of a thread's own (unshare() in a thread). */
static int check_threads(const struct frozen_task *t)
{
	for (int k = 1; k < t->nr_threads; k++) {
		pid_t tid = t->threads[k].tid;
		const char *what = !same(t->pid, tid, KCMP_FILES) ? "an fd table" :
				   !same(t->pid, tid, KCMP_FS)    ? "a cwd, root and umask" :
								    NULL;
		if (!what)
			continue;
		pr_err("pid %d: thread %d has %s of its own (unshare in a thread): not supported",
		       t->pid, tid, what);
		return -ENOTSUP;
	}
	return 0;
}

/* The root's parent is not dumped: it must not share the root's table
 * or fs. */
static int check_root(const struct frozen_task *t)
{
	char buf[32];
	if (proc_status_field(t->pid, "PPid", buf, sizeof(buf)))
		return 0;
	pid_t ppid = (pid_t)atoi(buf);
	int files = ppid > 0 && same(ppid, t->pid, KCMP_FILES);
	if (ppid <= 0 || (!files && !same(ppid, t->pid, KCMP_FS)))
		return 0;
	pr_err("pid %d: shares its %s with its parent %d, outside the dumped tree: not supported",
	       t->pid, files ? "fd table (CLONE_FILES)" : "cwd, root and umask (CLONE_FS)", ppid);
	return -ENOTSUP;
}

/* A member of a group: its parent has the table, and it is created by
 * its parent itself (not by a helper of a session that is gone). */
static int check_member(const struct frozen_tree *tree, int i, int owner)
{
	const struct frozen_task *t = &tree->tasks[i];
	int p = index_of(tree, t->ppid);
	if (p < 0 || !same(t->ppid, t->pid, KCMP_FILES)) {
		pr_err("pid %d: shares its fd table with pid %d, not with its parent %d (clone with "
		       "CLONE_FILES, then reparented or unshared): not supported",
		       t->pid, tree->tasks[owner].pid, t->ppid);
		return -ENOTSUP;
	}
	if (t->vsid != t->vpid && t->vsid != tree->tasks[p].vsid) {
		pr_err("pid %d: shares its fd table with its parent %d but is in another session "
		       "(%d) that it does not lead: not supported",
		       t->pid, t->ppid, t->sid);
		return -ENOTSUP;
	}
	return 0;
}

/* Processes that share their fs: a restore would give each its own. */
static int check_fs(const struct frozen_tree *tree, int i)
{
	const struct frozen_task *t = &tree->tasks[i];
	for (int j = 0; j < i; j++) {
		if (tree->tasks[j].zombie || !same(tree->tasks[j].pid, t->pid, KCMP_FS))
			continue;
		pr_err("pid %d: shares its cwd, root and umask with pid %d (clone with CLONE_FS): "
		       "not supported",
		       t->pid, tree->tasks[j].pid);
		return -ENOTSUP;
	}
	return 0;
}

int fdtable_check(const struct frozen_tree *tree)
{
	int ret = tree->nr_tasks ? check_root(&tree->tasks[0]) : 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		if (tree->tasks[i].zombie)
			continue;
		int owner = fdtable_owner(tree, i);
		if ((ret = check_threads(&tree->tasks[i])) || (ret = check_fs(tree, i)))
			break;
		if (owner >= 0)
			ret = check_member(tree, i, owner);
	}
	return ret;
}

/* ------------------------------ restore ------------------------------ */

static int task_index(const struct restore_ctx *c, uint32_t pid, size_t before)
{
	for (size_t j = 0; j < before; j++)
		if (c->tasks[j].te->pid == pid)
			return (int)j;
	return -1;
}

static int is_zombie(const TaskEntry *te)
{
	return te->has_zombie && te->zombie;
}

/*
 * files_shared_with of task i names an earlier process of the tree that
 * owns its table (names none itself), the way the restore can make it: the
 * parent is the owner or shares its table, and creates it itself.
 */
static int check_sharer(const struct restore_ctx *c, size_t i)
{
	const TaskEntry *t = c->tasks[i].te;
	int o = task_index(c, t->files_shared_with, i);
	int p = task_index(c, t->ppid, i);
	const TaskEntry *owner = o >= 0 ? c->tasks[o].te : NULL;
	const TaskEntry *parent = p >= 0 ? c->tasks[p].te : NULL;
	if (owner && parent && !is_zombie(t) && !is_zombie(owner) &&
	    !owner->has_files_shared_with &&
	    (parent == owner || (parent->has_files_shared_with &&
				 parent->files_shared_with == owner->pid)) &&
	    (t->sid == t->pid || t->sid == parent->sid))
		return 0;
	pr_err("%s/inventory.img: pid %u: shares the fd table of pid %u, which it cannot be "
	       "created with (not an earlier process whose table its parent has)",
	       img_set_dir(c->set), t->pid, t->files_shared_with);
	return -EINVAL;
}

int fdtable_load(struct restore_ctx *c)
{
	c->nr_fdt_owners = 0;
	for (size_t i = 0; i < c->nr_tasks; i++) {
		const TaskEntry *t = c->tasks[i].te;
		if (!t->has_files_shared_with)
			continue;
		int ret = check_sharer(c, i);
		if (ret)
			return ret;
		size_t o = (size_t)task_index(c, t->files_shared_with, i);
		c->tasks[i].fdt = FDT_SHARER;
		c->nr_fdt_owners += c->tasks[o].fdt != FDT_OWNER;
		c->tasks[o].fdt = FDT_OWNER;
	}
	return 0;
}

/* The owner's pid for a sharer, the task's own otherwise. */
uint32_t fdtable_pid(const TaskEntry *te)
{
	return te->has_files_shared_with ? te->files_shared_with : te->pid;
}
