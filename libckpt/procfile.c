/*
 * procfile: files and directories under /proc/PID of a process of the
 * tree itself (/proc/self, /proc/thread-self: the kernel shows them as
 * their number), as zdtm child_opened_proc and memfd02 hold.  Reopened by
 * path from the driver, before the tree exists, they would name no process
 * or another one; they are recorded as which process of the tree (its pid
 * as the tree sees it, the same after the restore), which of its threads
 * (/proc/PID/task/TID), and the rest of the path, and opened again in
 * post_install by the first process that holds them, once every process
 * exists, in the tree's PID namespace and through its /proc (a fresh
 * namespace gets its own /proc, restore-tree.c), then passed to the other
 * holders (fd-relay.h).
 *
 * Refused by name at dump: /proc/PID of a process outside the tree, of a
 * thread other than a main one (threads come back after the fds), a
 * /proc of another PID namespace, and a position inside text the kernel
 * makes anew at each read (stat, maps: what follows the position at the
 * dump is gone, and the same byte offset in the new text may cut a line).  Kept: position 0, the end of
 * that text (put at the new end), and positions that mean the same again:
 * a directory's, an address in mem or pagemap.  The tree's cwd and root
 * under /proc/PID get the same checks (dump_tree): the restore enters them
 * by path once every process exists.  A cwd "/proc/PID (deleted)", the
 * directory of a process that has exited (zdtm unhashed_proc), is made
 * again as CRIU does: a helper numbered PID is made, its directory
 * entered, the helper reaped (core.c records it: cwd_proc_dead).  Files
 * under such a directory (`dead`, zdtm remap_dead_pid) the same way, in
 * before_tree, in the tree's PID namespace: a helper per number, each
 * file opened on it, the helper reaped; their position 0 or a
 * directory's (a dead file's text cannot be read).
 *
 * An fd on a namespace ("net:[4026531840]", from /proc/PID/ns/NAME or
 * passed along) is kept the same way, as /proc/PID/ns/NAME of the first
 * process of the tree (the holder first) that is in it, and opened from
 * there: it names that process's namespace again, whichever the restore
 * gave it.  One no process of the tree is in is refused by name.
 *
 * Other files under /proc (/proc/meminfo, /proc/sys/...) are regfile's.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-relay.h"
#include "file-kinds.h"
#include "log.h"
#include "proc.h"
#include "procfile.h"

/* /proc/PID[/task/TID]SUB[ (deleted)], parsed. */
struct proc_path {
	long pid;
	long tid; /* 0: not under task/ */
	char sub[PATH_MAX];
	int deleted;
};

static long number_at(const char **s)
{
	char *end;
	if (!isdigit((unsigned char)**s))
		return -1;
	errno = 0;
	long n = strtol(*s, &end, 10);
	if (errno || n <= 0 || n > INT_MAX || (*end && *end != '/' && *end != ' '))
		return -1;
	*s = end;
	return n;
}

/* 0 when `link` is /proc/NUMBER..., -1 otherwise. */
static int parse_proc_path(const char *link, struct proc_path *p)
{
	const char *s = link + 6;
	size_t d = strlen(" (deleted)");
	memset(p, 0, sizeof(*p));
	if (strncmp(link, "/proc/", 6) || (p->pid = number_at(&s)) < 0)
		return -1;
	if (!strncmp(s, "/task/", 6)) {
		s += 6;
		if ((p->tid = number_at(&s)) < 0)
			return -1;
	}
	size_t n = strlen(s);
	if (n >= sizeof(p->sub) || (n && *s != '/' && *s != ' '))
		return -1;
	memcpy(p->sub, s, n + 1);
	if (n >= d && !strcmp(p->sub + n - d, " (deleted)")) {
		p->deleted = 1;
		p->sub[n - d] = '\0';
	}
	return p->sub[0] && p->sub[0] != '/' ? -1 : 0;
}

/* The namespaces /proc/PID/ns shows, by the name their fds' links carry
 * ("net:[4026531840]"); pid and time also have a *_for_children entry. */
static const char *const ns_names[] = { "net", "uts", "ipc", "pid", "user",
					"mnt", "cgroup", "time" };

/* The name of the namespace an fd's link "NAME:[INODE]" is of, or NULL. */
static const char *ns_of_link(const char *link)
{
	for (size_t i = 0; i < sizeof(ns_names) / sizeof(ns_names[0]); i++) {
		size_t n = strlen(ns_names[i]);
		const char *s = link + n + 2;
		if (strncmp(link, ns_names[i], n) || strncmp(link + n, ":[", 2) ||
		    !isdigit((unsigned char)*s))
			continue;
		while (isdigit((unsigned char)*s))
			s++;
		if (!strcmp(s, "]"))
			return ns_names[i];
	}
	return NULL;
}

static int procfile_match(const struct fd_dump *f)
{
	return (!strncmp(f->link, "/proc/", 6) && isdigit((unsigned char)f->link[6])) ||
	       ns_of_link(f->link);
}


/* Is `path` (it may go through a magic link) on our /proc (1), on a proc
 * of another instance (-1: another PID namespace's), or elsewhere (0)? */
static int on_our_proc(const char *path)
{
	struct statfs sfs;
	struct stat st, ours;
	if (statfs(path, &sfs) || sfs.f_type != PROC_SUPER_MAGIC)
		return 0;
	if (stat(path, &st) || stat("/proc/self", &ours))
		return -1;
	return st.st_dev == ours.st_dev ? 1 : -1;
}

/* "pid 12: fd 3" or "pid 12: cwd", for the error lines. */
struct holder {
	pid_t pid;
	const char *what;
	int fd;
};

static void holder_name(const struct holder *h, char *buf, size_t len)
{
	if (h->fd >= 0)
		snprintf(buf, len, "pid %d: fd %d", h->pid, h->fd);
	else
		snprintf(buf, len, "pid %d: %s", h->pid, h->what);
}

/* Has the process of this /proc/PID exited?  Its directory is then out
 * of /proc, and so is all below it, though only the directory's name
 * tells (" (deleted)"): the path now reaches nothing, or the directory
 * of a process that took its number, not the file `st` the task holds. */
static int exited(const char *link, const struct proc_path *p, const struct stat *st)
{
	char path[PATH_MAX];
	struct stat now;
	if (p->deleted)
		return 1;
	snprintf(path, sizeof(path), "%s", link);
	return lstat(path, &now) || now.st_dev != st->st_dev || now.st_ino != st->st_ino;
}

/* The process of the tree whose /proc/PID `p` is under, or a refusal by
 * name.  st: the file the task holds.  0 or -ENOTSUP. */
static int check_owner(const struct frozen_tree *tree, const struct holder *h, const char *link,
		       const struct proc_path *p, const struct stat *st,
		       const struct frozen_task **task)
{
	char who[64];
	holder_name(h, who, sizeof(who));
	if (exited(link, p, st)) {
		pr_err("%s: %s: the /proc directory of a process that has exited: not supported",
		       who, link);
		return -ENOTSUP;
	}
	int where = frozen_tree_where(tree, p->pid, task);
	if (where == 1 && p->tid && p->tid != p->pid)
		where = frozen_tree_where(tree, p->tid, task) == 2 ? 2 : 0;
	if (where == 0) {
		pr_err("%s: %s of pid %ld outside the tree: not supported", who, link,
		       p->tid ? p->tid : p->pid);
		return -ENOTSUP;
	}
	if (where == 2) {
		pr_err("%s: %s of thread %ld, not a main thread of the tree: not supported", who,
		       link, p->tid ? p->tid : p->pid);
		return -ENOTSUP;
	}
	return 0;
}

/* Files whose position is an address or an index into the task's memory,
 * not a place in made text: the same position means the same again. */
static int position_is_address(const char *sub)
{
	return !strcmp(sub, "/mem") || !strcmp(sub, "/pagemap");
}

/* The length of the text a fresh read of fd `fd` of `pid` gives. */
static long long text_length(pid_t pid, int fd)
{
	char path[64], buf[8192];
	long long len = 0;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	while ((n = read(f, buf, sizeof(buf))) > 0 && len < (1LL << 30))
		len += n;
	int err = n < 0 ? -errno : 0;
	close(f);
	return err ? err : len;
}

/* Position 0, an index that means the same again, or the end of the
 * made text (at_end); any other is refused (see above). */
static int dump_position(const struct fd_dump *f, const FileEntry *e, ProcFileEntry *pe)
{
	if (!e->pos || (e->flags & O_PATH) || S_ISDIR(f->st->st_mode) ||
	    position_is_address(pe->sub))
		return 0;
	long long len = text_length(f->pid, f->fd);
	if (len >= 0 && e->pos >= (uint64_t)len) {
		pe->has_at_end = pe->at_end = 1;
		return 0;
	}
	if (len < 0)
		pr_err("pid %d: fd %d: %s at offset %llu: cannot read its length: %s", f->pid,
		       f->fd, f->link, (unsigned long long)e->pos, strerror((int)-len));
	else
		pr_err("pid %d: fd %d: %s at offset %llu of %lld bytes: a position inside text "
		       "the kernel makes anew at each read cannot be restored: not supported",
		       f->pid, f->fd, f->link, (unsigned long long)e->pos, len);
	return -ENOTSUP;
}

/* A file under /proc/PID of a process that has exited, not under a
 * thread's directory, with the tree in our PID namespace (PID is its
 * number there): made again before the tree (procfile_before_tree). */
static int dead_ok(const struct frozen_tree *tree, const char *link, const struct proc_path *p,
		   const struct stat *st)
{
	return exited(link, p, st) && !p->tid && tree->tasks[0].vpid == tree->tasks[0].pid;
}

/* A dead one's position: 0, or a directory's (its entries are the same
 * fixed list); its text cannot be read. */
static int dead_position(const struct fd_dump *f, const FileEntry *e)
{
	if (!e->pos || (e->flags & O_PATH) || S_ISDIR(f->st->st_mode))
		return 0;
	pr_err("pid %d: fd %d: %s at offset %llu, of a process that has exited: not supported",
	       f->pid, f->fd, f->link, (unsigned long long)e->pos);
	return -ENOTSUP;
}

/* A file under /proc/PID of a live process outside the tree, not under
 * a thread's directory, with the tree in our PID namespace: the restore
 * opens it again where the same process still has that number. */
static int outside_ok(const struct frozen_tree *tree, const char *link, const struct proc_path *p,
		      const struct stat *st)
{
	const struct frozen_task *t;
	return !exited(link, p, st) && !p->tid && !frozen_tree_where(tree, p->pid, &t) &&
	       tree->tasks[0].vpid == tree->tasks[0].pid;
}

/* Which process it is: its start time and this boot. */
static int mark_outside(struct fd_dump *f, ProcFileEntry *pe)
{
	char dir[32], boot[40];
	uint64_t ticks = 0;
	snprintf(dir, sizeof(dir), "/proc/%u", pe->pid);
	int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int ret = d < 0 ? -errno : proc_start_ticks(d, &ticks);
	if (d >= 0)
		close(d);
	if (!ret)
		ret = proc_boot_id(boot, sizeof(boot));
	if (ret) {
		pr_err("pid %d: fd %d: %s: which process pid %u is: %s", f->pid, f->fd, f->link,
		       pe->pid, strerror(-ret));
		return ret;
	}
	pe->has_outside = pe->outside = 1;
	pe->has_start_ticks = 1;
	pe->start_ticks = ticks;
	pe->boot_id = arena_strdup(&f->fdump->a, boot);
	return pe->boot_id ? 0 : -ENOMEM;
}

static ProcFileEntry *new_entry(struct fd_dump *f, FileEntry *e, uint32_t pid, const char *sub)
{
	ProcFileEntry *pe = arena_alloc(&f->fdump->a, sizeof(*pe));
	if (!pe)
		return NULL;
	proc_file_entry__init(pe);
	pe->pid = pid;
	pe->sub = arena_strdup(&f->fdump->a, sub);
	e->path = arena_strdup(&f->fdump->a, f->link);
	if (!pe->sub || !e->path)
		return NULL;
	e->type = FILE_TYPE__FILE_PROC;
	e->proc = pe;
	return pe;
}

/* Is /proc/PID/ns/NAME the namespace st is? */
static int ns_is(pid_t pid, const char *name, const struct stat *st)
{
	char path[96];
	struct stat now;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	return !stat(path, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* "ns/NAME" (or NAME_for_children) of process t if the namespace st is
 * one of t's, else NULL. */
static const char *ns_entry_of(const struct frozen_task *t, const char *name,
			       const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "/ns/%s", name);
	if (ns_is(t->pid, name, st))
		return buf;
	snprintf(buf, len, "/ns/%s_for_children", name);
	if ((!strcmp(name, "pid") || !strcmp(name, "time")) && ns_is(t->pid, buf + 4, st))
		return buf;
	return NULL;
}

/* An fd on a namespace (opened from /proc/PID/ns/NAME, or passed along):
 * kept as the namespace of a process of the tree, the holder's own
 * first, and opened again from that process's /proc/PID/ns once the tree
 * exists: the fd then names that process's namespace as it did at the
 * dump, whichever namespaces the restore gave the tree.  One no process
 * of the tree is in is refused by name. */
static int dump_ns_file(struct fd_dump *f, FileEntry *e, const char *name)
{
	const struct frozen_tree *tree = f->fdump->tree;
	char sub[64];
	const struct frozen_task *holder = NULL, *t = NULL;
	frozen_tree_where(tree, f->pid, &holder);
	const char *found = holder ? ns_entry_of(holder, name, f->st, sub, sizeof(sub)) : NULL;
	for (int i = 0; !found && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie &&
		    (found = ns_entry_of(&tree->tasks[i], name, f->st, sub, sizeof(sub))))
			t = &tree->tasks[i];
	if (found && !t)
		t = holder;
	if (!found) {
		pr_err("pid %d: fd %d: %s, a namespace no process of the tree is in: not supported",
		       f->pid, f->fd, f->link);
		return -ENOTSUP;
	}
	return new_entry(f, e, (uint32_t)t->vpid, found) ? 0 : -ENOMEM;
}

static int procfile_dump(struct fd_dump *f, FileEntry *e)
{
	char path[64];
	const char *ns = ns_of_link(f->link);
	if (ns)
		return dump_ns_file(f, e, ns);
	struct proc_path p;
	const struct frozen_task *task;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", f->pid, f->fd);
	int where = on_our_proc(path);
	if (!where || parse_proc_path(f->link, &p)) { /* a file of that name elsewhere */
		if (regfile_kind.match(f))
			return regfile_kind.dump(f, e);
		pr_err("pid %d: fd %d: %s is not supported", f->pid, f->fd, f->link);
		return -ENOTSUP;
	}
	if (where < 0) {
		pr_err("pid %d: fd %d: %s: on a /proc of another PID namespace: not supported",
		       f->pid, f->fd, f->link);
		return -ENOTSUP;
	}
	struct holder h = { f->pid, NULL, f->fd };
	int dead = dead_ok(f->fdump->tree, f->link, &p, f->st);
	int outside = !dead && outside_ok(f->fdump->tree, f->link, &p, f->st);
	int ret = dead || outside ? 0 : check_owner(f->fdump->tree, &h, f->link, &p, f->st, &task);
	if (ret)
		return ret;
	ProcFileEntry *pe =
		new_entry(f, e, dead || outside ? (uint32_t)p.pid : (uint32_t)task->vpid, p.sub);
	if (!pe)
		return -ENOMEM;
	if (outside && (ret = mark_outside(f, pe)))
		return ret;
	if (outside)
		return dump_position(f, e, pe);
	pe->has_tid = p.tid != 0;
	pe->tid = pe->pid; /* a main thread: check_owner */
	pe->has_dead = pe->dead = dead;
	return dead ? dead_position(f, e) : dump_position(f, e, pe);
}

/* A cwd that is the /proc/PID directory itself of a process that has
 * exited, not of the tree (its number is free for a helper before the
 * tree is made), numbered as the tree numbers it (the tree is in our PID
 * namespace): made again at the restore (enter_dead_proc_dir). */
static int dead_dir_ok(const struct frozen_tree *tree, const struct proc_path *p)
{
	const struct frozen_task *t;
	return p->deleted && !p->tid && !p->sub[0] && !frozen_tree_where(tree, p->pid, &t) &&
	       tree->tasks[0].vpid == tree->tasks[0].pid;
}

pid_t proc_dead_dir(pid_t pid, const char *cwd)
{
	char path[64];
	struct proc_path p;
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	if (parse_proc_path(cwd, &p) || !p.deleted || p.tid || p.sub[0] || on_our_proc(path) != 1)
		return 0;
	return (pid_t)p.pid;
}

/* A cwd or root under /proc/PID: entered again by path once every
 * process exists (core.c), so it must be of a process of the tree, with
 * the number the tree sees. */
static int check_dir(const struct frozen_tree *tree, const struct frozen_task *t,
		     const char *what)
{
	char link[PATH_MAX], path[64];
	struct proc_path p;
	const struct frozen_task *owner;
	snprintf(path, sizeof(path), "/proc/%d/%s", t->pid, what);
	if (proc_readlink(t->pid, what, link, sizeof(link)) || strncmp(link, "/proc/", 6) ||
	    parse_proc_path(link, &p))
		return 0;
	int where = on_our_proc(path);
	struct holder h = { t->pid, what, -1 };
	struct stat st;
	if (!where)
		return 0;
	if (stat(path, &st)) {
		pr_err("pid %d: %s %s: %s", t->pid, what, link, strerror(errno));
		return -errno;
	}
	if (where < 0) {
		pr_err("pid %d: %s %s: on a /proc of another PID namespace: not supported", t->pid,
		       what, link);
		return -ENOTSUP;
	}
	if (!strcmp(what, "cwd") && dead_dir_ok(tree, &p))
		return 0; /* core.c recorded it: cwd_proc_dead */
	int ret = check_owner(tree, &h, link, &p, &st, &owner);
	if (!ret && owner->vpid != owner->pid) {
		pr_err("pid %d: %s %s: pid %d is %d in the tree's PID namespace: not supported",
		       t->pid, what, link, owner->pid, owner->vpid);
		ret = -ENOTSUP;
	}
	return ret;
}

static int check_dirs(struct files_dump *fdump, void **priv)
{
	(void)priv;
	const struct frozen_tree *tree = fdump->tree;
	int ret = 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie)
			ret = check_dir(tree, &tree->tasks[i], "cwd") ||
				      check_dir(tree, &tree->tasks[i], "root") ?
				      -ENOTSUP :
				      0;
	return ret;
}

/* ------------------------------ restore ------------------------------ */

static int is_tree_pid(const struct restore_files *rf, uint32_t pid)
{
	for (size_t t = 0; t < rf->nr_tasks; t++)
		if ((uint32_t)rf->tasks[t].pid == pid)
			return 1;
	return 0;
}

/* "" or "/name[/name...]", plain names, no "." or "..": a crafted image
 * reaches nothing but what is under /proc/PID. */
static int sub_ok(const char *sub)
{
	size_t n = strlen(sub);
	if (n > 255 || (n && sub[0] != '/') || (n && sub[n - 1] == '/'))
		return 0;
	for (const char *c = sub; *c; c++) {
		if (*c == '/' && (c[1] == '/' || (c[1] == '.' && (!c[2] || c[2] == '/' ||
								   (c[2] == '.' && (!c[3] || c[3] == '/'))))))
			return 0;
		if (!isalnum((unsigned char)*c) && !strchr("/._-:", *c))
			return 0;
	}
	return 1;
}

static int is_outside(const FileEntry *e)
{
	return e->type == FILE_TYPE__FILE_PROC && e->proc->has_outside && e->proc->outside;
}

static int procfile_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PROC)
			continue;
		const ProcFileEntry *p = e->proc;
		int dead = p && p->has_dead && p->dead;
		int outside = p && !dead && is_outside(e);
		if (!p || !p->sub ||
		    (dead || outside ? !p->pid || p->pid > INT_MAX || p->has_tid :
				       !is_tree_pid(rf, p->pid)) ||
		    (outside && (!p->has_start_ticks || !p->boot_id)) ||
		    (p->has_tid && p->tid != p->pid) || !sub_ok(p->sub)) {
			pr_err("%s/files.img: file %u: not a file under /proc/PID of a process of the "
			       "tree (pid %u)",
			       img_set_dir(set), e->id, p ? p->pid : 0);
			return -EINVAL;
		}
	}
	return 0;
}

static int is_dead(const FileEntry *e)
{
	return e->type == FILE_TYPE__FILE_PROC && e->proc->has_dead && e->proc->dead;
}

/* A live one's stand-in: the relay socket; a dead one's until
 * before_tree: /dev/null. */
static int procfile_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	if (!is_dead(e))
		return relay_socket();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void proc_file_path(const ProcFileEntry *p, char *buf, size_t len)
{
	if (p->has_tid)
		snprintf(buf, len, "/proc/%u/task/%u%s", p->pid, p->tid, p->sub);
	else
		snprintf(buf, len, "/proc/%u%s", p->pid, p->sub);
}

/* Our /proc shows our own PID namespace: else /proc/PID is another
 * process (a fresh namespace whose /proc could not be mounted). */
static int proc_is_ours(void)
{
	char self[32], want[32];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	snprintf(want, sizeof(want), "%d", getpid());
	if (n > 0 && (self[n] = '\0', !strcmp(self, want)))
		return 0;
	return -EXDEV;
}

/* A process numbered `n` that only waits to be killed; no SIGCHLD to
 * the restored process (exit_signal 0: reaped with __WALL). */
static pid_t start_helper(pid_t n)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.set_tid = (uint64_t)(uintptr_t)&n;
	args.set_tid_size = 1;
	pid_t h = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (h == 0)
		for (;;)
			pause();
	return h;
}

/* The directory /proc/`dead` of a helper numbered `dead`, entered while
 * it lives (a dead task's directory refuses to be entered: ESRCH): once
 * the helper is reaped, the directory is out of /proc, as it was at the
 * dump (CRIU does the same). */
int enter_dead_proc_dir(uint32_t pid, uint32_t dead)
{
	char path[32];
	siginfo_t si;
	snprintf(path, sizeof(path), "/proc/%u", dead);
	int err = dead && dead <= INT_MAX ? -proc_is_ours() : EINVAL;
	pid_t h = err ? -1 : start_helper((pid_t)dead);
	if (!err && h < 0)
		err = errno;
	if (!err && chdir(path))
		err = errno;
	if (h > 0) {
		kill(h, SIGKILL);
		while (waitid(P_PID, (id_t)h, &si, WEXITED | __WALL) < 0 && errno == EINTR)
			;
	}
	if (err)
		pr_err("pid %u: cwd %s (deleted), of a process that had exited: cannot make it again "
		       "with a helper numbered %u: %s",
		       pid, path, dead, strerror(err));
	return -err;
}

/* Read to the end of the made text. */
static int seek_to_end(int fd)
{
	char buf[8192];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	return n < 0 ? -errno : 0;
}

static int place(int fd, const FileEntry *e)
{
	if ((e->flags & O_PATH) || !e->has_pos || !e->pos)
		return 0;
	if (e->proc->has_at_end && e->proc->at_end)
		return seek_to_end(fd);
	return lseek(fd, (off_t)e->pos, SEEK_SET) < 0 ? -errno : 0;
}

static int open_no_links(int dir, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	return (int)syscall(SYS_openat2, dir, path, &how, sizeof(how));
}

/* "/ns/NAME" (or NAME_for_children) of a namespace /proc/PID/ns shows. */
static int is_ns_entry(const char *sub)
{
	if (strncmp(sub, "/ns/", 4))
		return 0;
	for (size_t i = 0; i < sizeof(ns_names) / sizeof(ns_names[0]); i++) {
		size_t n = strlen(ns_names[i]);
		if (!strncmp(sub + 4, ns_names[i], n) &&
		    (!sub[4 + n] || !strcmp(sub + 4 + n, "_for_children")))
			return 1;
	}
	return 0;
}

/* /proc/PID/ns/NAME is a magic link, the namespace itself: the directory
 * is reached with no link followed, then only that last link. */
static int open_ns_entry(const char *path, int flags)
{
	char dir[PATH_MAX];
	const char *name = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", (int)(name - path), path);
	int d = open_no_links(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
	if (d < 0)
		return -1;
	int fd = openat(d, name + 1, flags | O_CLOEXEC);
	int err = errno;
	close(d);
	errno = err;
	return fd;
}

/* The file of a process outside the tree, through its /proc/PID opened
 * first: that directory stays the process it was opened on, so the
 * check that it is the dumped one (same boot, same start time) holds for
 * the file too.  -ESRCH: another process, or none, has the number now. */
static int open_outside(const ProcFileEntry *p, int flags)
{
	char dir[32], boot[40];
	uint64_t ticks = 0;
	snprintf(dir, sizeof(dir), "/proc/%u", p->pid);
	int d = open_no_links(AT_FDCWD, dir, O_PATH | O_DIRECTORY);
	if (d < 0)
		return errno == ENOENT ? (errno = ESRCH, -1) : -1;
	int err = proc_start_ticks(d, &ticks) || proc_boot_id(boot, sizeof(boot)) ||
			  ticks != p->start_ticks || strcmp(boot, p->boot_id) ?
			  ESRCH :
			  0;
	int fd = err ? -1 : open_no_links(d, p->sub[0] ? p->sub + 1 : ".", flags);
	if (!err && fd < 0)
		err = errno;
	close(d);
	errno = err;
	return fd;
}

/* In the first process that holds it (fd-relay.h): opened as that
 * process, which is the restoring user; no symlink followed (a magic
 * link, /proc/PID/root or fd/N, would reach beyond /proc/PID).  Logs
 * nothing: the caller names the file. */
static int open_proc_file(const FileEntry *e)
{
	char path[PATH_MAX];
	proc_file_path(e->proc, path, sizeof(path));
	int ret = proc_is_ours();
	if (ret)
		return ret;
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	if (flags & O_PATH)
		flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW;
	int fd = is_outside(e)		    ? open_outside(e->proc, flags)
		 : is_ns_entry(e->proc->sub) ? open_ns_entry(path, flags)
					     : open_no_links(AT_FDCWD, path, flags);
	if (fd < 0)
		return -errno;
	if ((ret = place(fd, e)))
		close(fd);
	return ret ? ret : fd;
}

/* Dead file i, opened (helper `dead` lives), in its pool slot. */
static int open_dead_one(struct restore_files *rf, size_t i)
{
	const FileEntry *e = rf->files[i];
	int fd = open_proc_file(e);
	int ret = fd < 0 ? fd : 0;
	if (!ret && (dup3(fd, rf->pool[i], O_CLOEXEC) < 0 ||
		     (e->has_fown_sig && fcntl(rf->pool[i], F_SETSIG, (int)e->fown_sig))))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		pr_err("file %u: %s, of a process that had exited: cannot open it again on a helper "
		       "numbered %u: %s",
		       e->id, e->path ? e->path : "/proc", e->proc->pid, strerror(-ret));
	return ret;
}

/* Every dead file of pid `dead`, opened on one helper with that number,
 * which is then reaped: as at the dump, out of /proc. */
static int open_dead_group(struct restore_files *rf, uint32_t dead)
{
	siginfo_t si;
	pid_t h = start_helper((pid_t)dead);
	if (h < 0) {
		int err = errno;
		pr_err("/proc/%u, of a process that had exited: cannot make a helper with that "
		       "number: %s",
		       dead, strerror(err));
		return -err;
	}
	int ret = 0;
	for (size_t i = 0; !ret && i < rf->nr_files; i++)
		if (is_dead(rf->files[i]) && rf->files[i]->proc->pid == dead && rf->pool[i] >= 0 &&
		    !files_inherited(rf, rf->files[i]))
			ret = open_dead_one(rf, i);
	kill(h, SIGKILL);
	while (waitid(P_PID, (id_t)h, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
	return ret;
}

/* Is file i the first dead one of its pid? */
static int first_of_pid(const struct restore_files *rf, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (is_dead(rf->files[j]) && rf->files[j]->proc->pid == rf->files[i]->proc->pid)
			return 0;
	return 1;
}

/* Is the process outside the tree still there, under its number?  Told
 * before anything of the tree is made; the open itself checks again. */
static int check_outside(const FileEntry *e)
{
	int fd = proc_is_ours() ? (errno = EXDEV, -1) : open_outside(e->proc, O_PATH);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int err = errno;
	char path[PATH_MAX];
	proc_file_path(e->proc, path, sizeof(path));
	if (err == ESRCH)
		pr_err("file %u: %s: pid %u is not the process of the dump (outside the tree: "
		       "another process, or none, has the number now)",
		       e->id, path, e->proc->pid);
	else
		pr_err("file %u: %s: %s", e->id, path, strerror(err));
	return -err;
}

/* In the tree's PID namespace, before the tree: the dead ones, a helper
 * per number (its number is free: the tree's are not taken yet). */
static int procfile_before_tree(struct restore_files *rf, void *priv)
{
	(void)priv;
	int ret = 0;
	for (size_t i = 0; !ret && i < rf->nr_files; i++)
		if (is_dead(rf->files[i]) && first_of_pid(rf, i))
			ret = open_dead_group(rf, rf->files[i]->proc->pid);
	for (size_t i = 0; !ret && i < rf->nr_files; i++)
		if (is_outside(rf->files[i]))
			ret = check_outside(rf->files[i]);
	return ret;
}

static int open_failed(const struct task_fds *tf, size_t i, const FileEntry *e, int ret)
{
	char path[PATH_MAX];
	proc_file_path(e->proc, path, sizeof(path));
	if (ret == -EXDEV)
		pr_err("pid %d: fd %u: %s: /proc here is not of the restored tree's PID namespace",
		       tf->pid, tf->fds[i]->fd, path);
	else if (ret == -ESRCH && is_outside(e))
		pr_err("pid %d: fd %u: %s: pid %u is not the process of the dump (outside the "
		       "tree: another process, or none, has the number now)",
		       tf->pid, tf->fds[i]->fd, path, e->proc->pid);
	else
		pr_err("pid %d: fd %u: %s at offset %llu%s: cannot open it again: %s", tf->pid,
		       tf->fds[i]->fd, path, (unsigned long long)e->pos,
		       e->proc->at_end ? " (the end)" : "", strerror(-ret));
	return ret;
}

static int procfile_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	const struct task_fds *tf = &rf->tasks[idx];
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = rf->files[tf->fds[i]->file_id];
		if (e->type != FILE_TYPE__FILE_PROC || is_dead(e) || files_inherited(rf, e))
			continue;
		int ret = relay_install(rf, idx, i, e, open_proc_file);
		if (ret)
			return open_failed(tf, i, e, ret);
	}
	return 0;
}

const struct file_kind procfile_kind = {
	.name = "proc file",
	.types = 1ULL << FILE_TYPE__FILE_PROC,
	.match = procfile_match,
	.dump = procfile_dump,
	.dump_tree = check_dirs,
	.check_tree = check_dirs,
	.read = procfile_read,
	.open = procfile_open,
	.before_tree = procfile_before_tree,
	.post_install = procfile_post_install,
};
