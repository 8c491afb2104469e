/*
 * fdtable: processes that share one fd table (clone with CLONE_FILES and
 * not CLONE_THREAD) or one fs, that is cwd, root and umask (CLONE_FS).
 *
 * Dump: the processes of the tree that share one table (one fs) form a
 * group; the first of them in tree order (parents come before their
 * children) owns it: its fdinfo image is the table, its core the cwd,
 * root and umask; the others name it in their task_entry
 * (files_shared_with, fs_shared_with) and a sharer of the table has no
 * fdinfo image.  A group comes back when every member but the owner has
 * the table (fs) of its parent: the restore creates each with CLONE_FILES
 * (CLONE_FS) from its parent (restore-tree.c); the owner installs the fds
 * (restores cwd and umask), the others wait for the fds and install
 * nothing (leave cwd and umask alone).
 *
 * What it cannot bring back is refused by name: a table or fs shared with
 * a process that is not the parent (a sibling after the parent unshared, a
 * process reparented after its parent exited), with a process outside the
 * tree, a thread's table or fs of its own (unshare in a thread: the
 * restorer clones threads sharing both), and a shared fs whose root is not
 * "/" (the owner's chroot would change the root under the others while
 * they still restore through /proc).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Known to differ: a check sees the tree running, and a thread or parent
 * gone meanwhile (ESRCH) is no longer there to refuse. */
static int differs(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) > 0;
}

/* The first task before `i` that shares kcmp resource `type` with it. */
static int share_owner(const struct frozen_tree *tree, int i, int type)
{
	const struct frozen_task *t = &tree->tasks[i];
	if (t->zombie) /* exited: no table, no fs */
		return -1;
	for (int j = 0; j < i; j++)
		if (!tree->tasks[j].zombie && same(tree->tasks[j].pid, t->pid, type))
			return j;
	return -1;
}

int fdtable_owner(const struct frozen_tree *tree, int i)
{
	return share_owner(tree, i, KCMP_FILES);
}

int fdtable_fs_owner(const struct frozen_tree *tree, int i)
{
	return share_owner(tree, i, KCMP_FS);
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
		const char *what = differs(t->pid, tid, KCMP_FILES) ? "an fd table" :
				   differs(t->pid, tid, KCMP_FS)    ? "a cwd, root and umask" :
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

static const char *what(int type)
{
	return type == KCMP_FILES ? "fd table (CLONE_FILES)" : "cwd, root and umask (CLONE_FS)";
}

/* A member of a group: its parent has the table (fs), and it is created
 * by its parent itself (not by a helper of a session that is gone). */
static int check_member(const struct frozen_tree *tree, int i, int owner, int type)
{
	const struct frozen_task *t = &tree->tasks[i];
	int p = index_of(tree, t->ppid);
	if (p < 0 || differs(t->ppid, t->pid, type)) {
		pr_err("pid %d: shares its %s with pid %d, not with its parent %d (reparented, or "
		       "the parent unshared): not supported",
		       t->pid, what(type), tree->tasks[owner].pid, t->ppid);
		return -ENOTSUP;
	}
	if (t->vsid != t->vpid && t->vsid != tree->tasks[p].vsid) {
		pr_err("pid %d: shares its %s with its parent %d but is in another session (%d) "
		       "that it does not lead: not supported",
		       t->pid, what(type), t->ppid, t->sid);
		return -ENOTSUP;
	}
	return 0;
}

/* A shared fs with a root of its own (chroot): see the top. */
static int check_fs_root(const struct frozen_task *t, const struct frozen_task *owner)
{
	char root[PATH_MAX];
	int ret = proc_readlink(t->pid, "root", root, sizeof(root));
	if (ret == -ENOENT) /* gone: a check sees the tree running */
		return 0;
	if (ret) {
		pr_err("pid %d: cannot read its root: %s", t->pid, strerror(-ret));
		return ret;
	}
	if (!strcmp(root, "/"))
		return 0;
	pr_err("pid %d: shares its cwd, root and umask (CLONE_FS) with pid %d, and its root is %s "
	       "(chroot): not supported",
	       t->pid, owner->pid, root);
	return -ENOTSUP;
}

static int check_task(const struct frozen_tree *tree, int i)
{
	int files = fdtable_owner(tree, i), fs = fdtable_fs_owner(tree, i), ret;
	if ((ret = check_threads(&tree->tasks[i])))
		return ret;
	if (files >= 0 && (ret = check_member(tree, i, files, KCMP_FILES)))
		return ret;
	if (fs >= 0 && ((ret = check_member(tree, i, fs, KCMP_FS)) ||
			(ret = check_fs_root(&tree->tasks[i], &tree->tasks[fs]))))
		return ret;
	return 0;
}

int fdtable_check(const struct frozen_tree *tree)
{
	int ret = tree->nr_tasks ? check_root(&tree->tasks[0]) : 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie)
			ret = check_task(tree, i);
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

/* Does te share its table (fs: its fs), and with whom? */
static int shares(const TaskEntry *te, int fs, uint32_t *with)
{
	*with = fs ? te->fs_shared_with : te->files_shared_with;
	return fs ? te->has_fs_shared_with : te->has_files_shared_with;
}

/* The fs of a sharer is its owner's: the same cwd, umask, and root "/". */
static int same_fs(const CoreEntry *a, const CoreEntry *b)
{
	return a && b && a->umask == b->umask && !strcmp(a->cwd, b->cwd) && !strcmp(a->root, "/") &&
	       !strcmp(b->root, "/");
}

/*
 * The owner named by task i is an earlier process of the tree that names
 * none itself, the way the restore can make it: the parent is the owner or
 * shares its table (fs), and creates it itself.
 */
static int check_sharer(const struct restore_ctx *c, size_t i, int fs)
{
	const TaskEntry *t = c->tasks[i].te;
	uint32_t with, parent_with, owner_with;
	shares(t, fs, &with);
	int o = task_index(c, with, i), p = task_index(c, t->ppid, i);
	const TaskEntry *owner = o >= 0 ? c->tasks[o].te : NULL;
	const TaskEntry *parent = p >= 0 ? c->tasks[p].te : NULL;
	if (owner && parent && !is_zombie(t) && !is_zombie(owner) && !shares(owner, fs, &owner_with) &&
	    (parent == owner || (shares(parent, fs, &parent_with) && parent_with == owner->pid)) &&
	    (t->sid == t->pid || t->sid == parent->sid) &&
	    (!fs || same_fs(c->tasks[i].core, c->tasks[o].core)))
		return 0;
	pr_err("%s/inventory.img: pid %u: shares the %s of pid %u, which it cannot be created with "
	       "(not an earlier process whose %s its parent has%s)",
	       img_set_dir(c->set), t->pid, fs ? "fs" : "fd table", with, fs ? "fs" : "table",
	       fs ? ", with the same cwd, umask and root /" : "");
	return -EINVAL;
}

/* Roles of the sharing of the table (fs) of task i. */
static int load_one(struct restore_ctx *c, size_t i, int fs)
{
	uint32_t with;
	if (!shares(c->tasks[i].te, fs, &with))
		return 0;
	int ret = check_sharer(c, i, fs);
	if (ret)
		return ret;
	struct rst_task *owner = &c->tasks[task_index(c, with, i)];
	enum share_role *me = fs ? &c->tasks[i].fs : &c->tasks[i].fdt;
	enum share_role *its = fs ? &owner->fs : &owner->fdt;
	*me = SHARE_MEMBER;
	if (!fs)
		c->nr_fdt_owners += *its != SHARE_OWNER;
	*its = SHARE_OWNER;
	return 0;
}

int fdtable_load(struct restore_ctx *c)
{
	int ret = 0;
	c->nr_fdt_owners = 0;
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		if (!(ret = load_one(c, i, 0)))
			ret = load_one(c, i, 1);
	return ret;
}

/* The owner's pid for a sharer, the task's own otherwise. */
uint32_t fdtable_pid(const TaskEntry *te)
{
	return te->has_files_shared_with ? te->files_shared_with : te->pid;
}
