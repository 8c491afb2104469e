/*
 * cgroup-place: the restore side of cgroup.h.  Once every restored thread
 * exists (still stopped in the restorer), each hierarchy of the images is
 * handled on its own: the job's directories are made where missing (with
 * their dumped owner and mode), then every thread whose cgroup differs is
 * written into it ("tasks" on v1, one thread at a time, since threads may
 * differ; "cgroup.procs", or "cgroup.threads" for a thread apart, on v2).
 *
 * The kernel draws the security line: a user's restore runs as the user,
 * so mkdir, chown, chmod and the write into "tasks" succeed exactly when
 * she could do them herself (she may not enter a cgroup she cannot write
 * "tasks" of, nor create one where she may not mkdir).  A thread already
 * in its cgroup is not written (so that a user restoring into the root
 * cgroup she is in needs no write access to it).  A hierarchy this node
 * has not mounted is mounted privately (a child in its own mount
 * namespace) when the restore is root's; a user's restore is refused.
 *
 * Paths go through the --cgroup-root rules (cg_target_path): per
 * hierarchy first, then the relative mode (the dumped root's cgroup
 * becomes the one the restore runs in), then the rules for all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

#define MAX_CREATED 4096

static char *created[MAX_CREATED]; /* directories this restore made, in order */
static size_t nr_created;

/* ---- the --cgroup-root rules ---- */

/* "[HIER:]OLD=NEW": does it apply to hier, and to which prefix? */
static int parse_rule(const char *rule, const char *hier, int any, const char **old, size_t *olen,
		      const char **new)
{
	const char *spec = rule, *eq;
	if (rule[0] != '/') {
		const char *colon = strchr(rule, ':');
		if (!colon)
			return 0;
		size_t hl = (size_t)(colon - rule);
		char h[256];
		snprintf(h, sizeof(h), "%.*s", (int)hl, rule);
		if (any || !cg_same_hier(strcmp(h, "cgroup2") ? h : "", hier))
			return 0;
		spec = colon + 1;
	} else if (!any) {
		return 0;
	}
	if (!(eq = strchr(spec, '=')))
		return 0;
	*old = spec;
	*olen = (size_t)(eq - spec);
	*new = eq + 1;
	return 1;
}

/* path with the prefix old (len olen, "/" for all) replaced by new. */
static int rewrite(const char *path, const char *old, size_t olen, const char *new, char *out,
		   size_t len)
{
	while (olen > 1 && old[olen - 1] == '/')
		olen--;
	if (olen == 1 && old[0] == '/')
		olen = 0;
	if (strncmp(path, old, olen) || (path[olen] && path[olen] != '/'))
		return 0;
	const char *rest = strcmp(path + olen, "/") ? path + olen : "";
	size_t nl = strlen(new);
	while (nl > 1 && new[nl - 1] == '/')
		nl--;
	if (nl == 1 && new[0] == '/' && rest[0])
		nl = 0;
	snprintf(out, len, "%.*s%s", (int)nl, new, rest);
	if (!out[0])
		snprintf(out, len, "/");
	return 1;
}

/* The driver's own cgroups, read once before any restoring process
 * exists: they inherit this copy, and a parent that entered its cgroups
 * before forking them does not change what "ours" means. */
static struct cg_line driver_cgroups[CG_MAX_HIER];
static int nr_driver_cgroups = -1;

/* The relative mode: the root task's dumped cgroup, and ours. */
static int relative_rule(const struct restore_ctx *c, const char *hier, char *old, char *new,
			 size_t len)
{
	const CgroupSetEntry *s = cg_set_of(c->cgroups, c->tasks[0].te->pid, c->tasks[0].te->pid);
	const struct cg_line *own = driver_cgroups;
	if (nr_driver_cgroups < 0)
		nr_driver_cgroups = cg_read_lines(0, 0, driver_cgroups);
	int n = nr_driver_cgroups;
	old[0] = new[0] = 0;
	for (size_t i = 0; s && i < s->n_members; i++)
		if (cg_same_hier(s->members[i]->hierarchy, hier))
			snprintf(old, len, "%s", s->members[i]->path);
	for (int i = 0; i < n; i++)
		if (cg_same_hier(own[i].hier, hier))
			snprintf(new, len, "%s", own[i].path);
	return old[0] && new[0];
}

int cg_target_path(const struct restore_ctx *c, const char *hier, const char *path, char *out,
		   size_t len)
{
	const struct ckpt_restore_opts *o = c->opts;
	const char *old, *new;
	size_t olen;
	char rold[4096], rnew[4096];

	for (size_t i = 0; i < o->nr_cgroup_root; i++)
		if (parse_rule(o->cgroup_root[i], hier, 0, &old, &olen, &new) &&
		    rewrite(path, old, olen, new, out, len))
			return 0;
	if (o->cgroups == CKPT_CGROUPS_RELATIVE &&
	    relative_rule(c, hier, rold, rnew, sizeof(rold)) &&
	    rewrite(path, rold, strlen(rold), rnew, out, len))
		return 0;
	for (size_t i = 0; i < o->nr_cgroup_root; i++)
		if (parse_rule(o->cgroup_root[i], hier, 1, &old, &olen, &new) &&
		    rewrite(path, old, olen, new, out, len))
			return 0;
	snprintf(out, len, "%s", path);
	return 0;
}

/* ---- directories ---- */

struct hier_mount {
	const char *hier;
	char mnt[4096];
	char root[4096]; /* the cgroup the mount shows at its top */
};

/* The directory of cgroup `path` through the mount, or -EXDEV. */
static int full_path(const struct hier_mount *m, const char *path, char *out, size_t len)
{
	size_t rl = strcmp(m->root, "/") ? strlen(m->root) : 0;
	if (strncmp(path, m->root, rl) || (path[rl] && path[rl] != '/'))
		return -EXDEV;
	snprintf(out, len, "%s%s", m->mnt, path + rl);
	return 0;
}

/* A new cpuset cgroup has no CPU and no node: nothing could join it. */
static void inherit_cpuset(const char *dir)
{
	static const char *files[] = { "cpuset.cpus", "cpuset.mems" };
	for (int i = 0; i < 2; i++) {
		char path[8300], parent[8300], buf[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		snprintf(parent, sizeof(parent), "%s/../%s", dir, files[i]);
		int fd = open(parent, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		fd = n > 0 ? open(path, O_WRONLY | O_CLOEXEC) : -1;
		if (fd >= 0 && write(fd, buf, (size_t)n) < 0)
			pr_debug("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
}

/* path (a file, or the directory itself) with uid, gid and mode. */
static int own_one(int dfd, const char *name, uint32_t uid, uint32_t gid, uint32_t mode)
{
	struct stat st;
	int flags = name[0] ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH;
	if (fstatat(dfd, name, &st, flags))
		return -errno;
	if ((st.st_uid != uid || st.st_gid != gid) && fchownat(dfd, name, uid, gid, flags))
		return -errno;
	if (!name[0])
		return fchmod(dfd, mode & 07777) ? -errno : 0;
	return fchmodat(dfd, name, mode & 07777, 0) ? -errno : 0;
}

/* A directory the restore made gets its dumped settings (before the
 * owner: a user given the directory must not have set them), owner and
 * mode, and so do its recorded control files. */
static int own_dir(const char *full, const CgroupDirEntry *rec, const char **what)
{
	int dfd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret = dfd < 0 ? -errno : cg_restore_props(dfd, rec, what);
	*what = ret ? *what : "owner and mode";
	if (!ret)
		ret = own_one(dfd, "", rec->uid, rec->gid, rec->mode);
	for (size_t i = 0; !ret && i < rec->n_files; i++) {
		*what = rec->files[i]->name;
		ret = own_one(dfd, rec->files[i]->name, rec->files[i]->uid, rec->files[i]->gid,
			      rec->files[i]->mode);
	}
	if (dfd >= 0)
		close(dfd);
	return ret;
}

/* mkdir -p of cgroup `path`; the last level, when made, gets rec's owner
 * and mode.  0, or -errno with *what naming the step. */
static int make_dirs(const struct hier_mount *m, const char *path, const CgroupDirEntry *rec,
		     const char **what)
{
	char full[8192];
	int ret = full_path(m, path, full, sizeof(full));
	*what = "not below the node's mount of the hierarchy";
	if (ret || !strcmp(full, m->mnt) || !strcmp(path, "/"))
		return ret; /* the top of the mount is there */
	size_t base = strlen(m->mnt);
	for (char *p = full + base; p && *p;) {
		char *slash = strchr(p + 1, '/');
		if (slash)
			*slash = 0;
		*what = "mkdir";
		if (mkdir(full, 0755) == 0) {
			if (nr_created < MAX_CREATED)
				created[nr_created++] = strdup(full);
			if (strstr(m->hier, "cpuset"))
				inherit_cpuset(full);
			*what = "owner and mode";
			if (!slash && rec && (ret = own_dir(full, rec, what)))
				return ret;
		} else if (errno != EEXIST) {
			return -errno;
		}
		if (slash)
			*slash = '/';
		p = slash;
	}
	return 0;
}

static int make_job_dirs(const struct restore_ctx *c, const struct hier_mount *m)
{
	for (size_t i = 0; i < c->cgroups->n_dirs; i++) {
		const CgroupDirEntry *d = c->cgroups->dirs[i];
		char target[4096];
		const char *what;
		if (!cg_same_hier(d->hierarchy, m->hier))
			continue;
		int ret = cg_target_path(c, d->hierarchy, d->path, target, sizeof(target));
		if (!ret && (ret = make_dirs(m, target, d, &what)))
			pr_err("cgroup %s:%s: %s: %s", cg_hier_name(m->hier), target, what,
			       strerror(-ret));
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- moving threads ---- */

/* The host tid of dumped thread tid of process t (its own namespace's). */
static pid_t host_tid(const struct restore_ctx *c, const struct rst_task *t, uint32_t tid)
{
	if (!c->use_pidns)
		return (pid_t)tid;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", t->host_pid);
	pid_t found = -ESRCH;
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && found < 0 && (de = readdir(d))) {
		pid_t h = atoi(de->d_name);
		if (h > 0 && proc_ns_tid(t->host_pid, h) == (pid_t)tid)
			found = h;
	}
	if (d)
		closedir(d);
	return found;
}

/* The root of a hierarchy that does not exist here (a named hierarchy
 * that was mounted somewhere on the dump's node, by anyone, while the job
 * sat in its root) is where a thread already is. */
static int in_cgroup(pid_t pid, pid_t tid, const char *hier, const char *path)
{
	struct cg_line l[CG_MAX_HIER];
	int n = cg_read_lines(pid, tid, l);
	for (int i = 0; i < n; i++)
		if (cg_same_hier(l[i].hier, hier))
			return !strcmp(l[i].path, path);
	return !strcmp(path, "/");
}

static int write_id(const char *dir, const char *file, pid_t id)
{
	char path[8300], buf[16];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int len = snprintf(buf, sizeof(buf), "%d", id);
	int ret = fd < 0 || write(fd, buf, (size_t)len) != len ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return ret;
}

static int move_thread(const struct hier_mount *m, pid_t pid, pid_t tid, int main_thread,
		       const char *dir)
{
	if (m->hier[0])
		return write_id(dir, "tasks", tid);
	return main_thread ? write_id(dir, "cgroup.procs", pid)
			   : write_id(dir, "cgroup.threads", tid);
}

static int place_thread(const struct restore_ctx *c, const struct hier_mount *m,
			const struct rst_task *t, size_t k)
{
	uint32_t pid = t->te->pid, tid = t->te->tids[k];
	const CgroupSetEntry *s = cg_set_of(c->cgroups, pid, tid);
	char target[4096], full[8192], who[64] = "";
	const char *what = "thread not found";
	int ret = 0;
	if (k)
		snprintf(who, sizeof(who), "thread %u: ", tid);
	for (size_t i = 0; s && !ret && i < s->n_members; i++) {
		if (!cg_same_hier(s->members[i]->hierarchy, m->hier))
			continue;
		pid_t h = host_tid(c, t, tid);
		ret = cg_target_path(c, m->hier, s->members[i]->path, target, sizeof(target));
		if (!ret && h < 0)
			ret = h;
		if (ret || in_cgroup(t->host_pid, h, m->hier, target))
			break;
		if (!(ret = make_dirs(m, target, NULL, &what)) &&
		    !(ret = full_path(m, target, full, sizeof(full)))) {
			what = "cannot enter it";
			ret = move_thread(m, t->host_pid, h, k == 0, full);
		}
	}
	if (ret)
		pr_err("pid %u: %scgroup %s:%s: %s: %s", pid, who, cg_hier_name(m->hier), target,
		       what, strerror(-ret));
	return ret;
}

static int place_hier(const struct restore_ctx *c, const struct hier_mount *m)
{
	int ret = make_job_dirs(c, m);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		for (size_t k = 0;
		     !ret && !restore_task_zombie(&c->tasks[i]) && k < c->tasks[i].te->n_tids; k++)
			ret = place_thread(c, m, &c->tasks[i], k);
	return ret;
}

/* ---- hierarchies this node has not mounted ---- */

/* The first thread and cgroup of hierarchy `hier`, for a refusal. */
static void name_first(const struct restore_ctx *c, const char *hier, const char *why)
{
	const CgroupEntry *cg = c->cgroups;
	for (size_t i = 0; i < cg->n_threads; i++) {
		const CgroupSetEntry *s = cg->sets[cg->threads[i]->set];
		for (size_t m = 0; m < s->n_members; m++)
			if (cg_same_hier(s->members[m]->hierarchy, hier)) {
				pr_err("pid %u: cgroup %s:%s: %s", cg->threads[i]->pid,
				       cg_hier_name(hier), s->members[m]->path, why);
				return;
			}
	}
	pr_err("cgroup %s: %s", cg_hier_name(hier), why);
}

/* Nothing to do on hierarchy `hier`: no directory of the job's, every
 * thread in its cgroup already (a hierarchy nobody mounts, where all are
 * in "/", is the common case). */
static int hier_settled(const struct restore_ctx *c, const char *hier)
{
	for (size_t i = 0; i < c->cgroups->n_dirs; i++)
		if (cg_same_hier(c->cgroups->dirs[i]->hierarchy, hier))
			return 0;
	for (size_t i = 0; i < c->nr_tasks; i++) {
		const struct rst_task *t = &c->tasks[i];
		for (size_t k = 0; !restore_task_zombie(t) && k < t->te->n_tids; k++) {
			const CgroupSetEntry *s = cg_set_of(c->cgroups, t->te->pid, t->te->tids[k]);
			pid_t h = host_tid(c, t, t->te->tids[k]);
			char target[4096];
			for (size_t m = 0; s && m < s->n_members; m++)
				if (cg_same_hier(s->members[m]->hierarchy, hier) &&
				    (h < 0 ||
				     cg_target_path(c, hier, s->members[m]->path, target,
						    sizeof(target)) ||
				     !in_cgroup(t->host_pid, h, hier, target)))
					return 0;
		}
	}
	return 1;
}

/* A child in a mount namespace of its own mounts the hierarchy, places
 * the threads, and is gone with its mount. */
static int place_unmounted(const struct restore_ctx *c, const char *hier)
{
	if (hier_settled(c, hier))
		return 0;
	if (c->opts->unprivileged) {
		name_first(c, hier,
			   "hierarchy not mounted on this node, and only root may mount it");
		return -EPERM;
	}
	pid_t p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		struct hier_mount m = { .hier = hier, .root = "/" };
		snprintf(m.mnt, sizeof(m.mnt), "/tmp/ckpt-cgroup.XXXXXX");
		int ret = cg_mount_private(hier, m.mnt);
		if (ret)
			name_first(c, hier, strerror(-ret));
		ret = ret ? ret : place_hier(c, &m);
		umount2(m.mnt, MNT_DETACH);
		rmdir(m.mnt);
		_exit(ret ? 1 : 0);
	}
	int st;
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* ---- the sequence ---- */

static int seen_before(const CgroupEntry *cg, size_t s, size_t m)
{
	const char *h = cg->sets[s]->members[m]->hierarchy;
	for (size_t i = 0; i <= s; i++)
		for (size_t k = 0; k < (i == s ? m : cg->sets[i]->n_members); k++)
			if (cg_same_hier(cg->sets[i]->members[k]->hierarchy, h))
				return 1;
	return 0;
}

static int place_one(const struct restore_ctx *c, const char *hier)
{
	struct hier_mount m = { .hier = hier };
	if (cg_find_mount(hier, m.mnt, sizeof(m.mnt), m.root, sizeof(m.root)))
		return place_unmounted(c, hier);
	return place_hier(c, &m);
}

/* Every directory of hierarchy m: the job's, and the threads' cgroups. */
static int make_hier_dirs(const struct restore_ctx *c, const struct hier_mount *m)
{
	const CgroupEntry *cg = c->cgroups;
	int ret = make_job_dirs(c, m);
	for (size_t s = 0; !ret && s < cg->n_sets; s++)
		for (size_t k = 0; !ret && k < cg->sets[s]->n_members; k++) {
			const CgroupMember *mb = cg->sets[s]->members[k];
			char target[4096];
			const char *what;
			if (!cg_same_hier(mb->hierarchy, m->hier) ||
			    cg_target_path(c, mb->hierarchy, mb->path, target, sizeof(target)))
				continue;
			if ((ret = make_dirs(m, target, NULL, &what)))
				pr_err("cgroup %s:%s: %s: %s", cg_hier_name(m->hier), target, what,
				       strerror(-ret));
		}
	return ret;
}

int restore_cgroup_dirs(struct restore_ctx *c)
{
	const CgroupEntry *cg = c->cgroups;
	int ret = 0;
	nr_created = 0;
	nr_driver_cgroups = cg_read_lines(0, 0, driver_cgroups);
	for (size_t s = 0; cg && !ret && s < cg->n_sets; s++)
		for (size_t k = 0; !ret && k < cg->sets[s]->n_members; k++) {
			struct hier_mount m = { .hier = cg->sets[s]->members[k]->hierarchy };
			if (!seen_before(cg, s, k) &&
			    !cg_find_mount(m.hier, m.mnt, sizeof(m.mnt), m.root, sizeof(m.root)))
				ret = make_hier_dirs(c, &m);
		}
	return ret;
}

int restore_cgroups(struct restore_ctx *c)
{
	const CgroupEntry *cg = c->cgroups;
	int ret = 0;
	for (size_t s = 0; cg && !ret && s < cg->n_sets; s++)
		for (size_t m = 0; !ret && m < cg->sets[s]->n_members; m++)
			if (!seen_before(cg, s, m))
				ret = place_one(c, cg->sets[s]->members[m]->hierarchy);
	return ret;
}

void restore_cgroups_done(int failed)
{
	while (nr_created) {
		char *d = created[--nr_created];
		if (d && failed && rmdir(d))
			pr_info("cgroup directory %s: not removed: %s", d, strerror(errno));
		free(d);
	}
}

/* ---- a restoring process enters its cgroups itself ---- */

/* Called by each restoring process before its memory is restored and
 * its children forked (so that its memory is charged, and limited, where
 * it belongs: charges do not move with a process; the relative mode uses
 * the driver's cgroups as read before, driver_cgroups).  The
 * main thread's cgroups, on every hierarchy mounted here; threads apart
 * and unmounted hierarchies are restore_cgroups' work. */
int cgroup_enter_self(const struct restore_ctx *c, size_t idx)
{
	const TaskEntry *te = c->tasks[idx].te;
	const CgroupSetEntry *s = cg_set_of(c->cgroups, te->pid, te->pid);
	int ret = 0;
	for (size_t i = 0; s && !ret && i < s->n_members; i++) {
		struct hier_mount m = { .hier = s->members[i]->hierarchy };
		char target[4096], full[8192];
		if (cg_find_mount(m.hier, m.mnt, sizeof(m.mnt), m.root, sizeof(m.root)) ||
		    cg_target_path(c, m.hier, s->members[i]->path, target, sizeof(target)) ||
		    full_path(&m, target, full, sizeof(full)) ||
		    in_cgroup(getpid(), getpid(), m.hier, target))
			continue;
		if ((ret = write_id(full, "cgroup.procs", 0)))
			pr_err("pid %u: cgroup %s:%s: cannot enter it: %s", te->pid,
			       cg_hier_name(m.hier), target, strerror(-ret));
	}
	return ret;
}

/* ---- ckptd's worker joins its client's cgroups ---- */

static int join_one(const struct cg_line *l)
{
	struct hier_mount m = { .hier = l->hier };
	char dir[8192];
	if (cg_find_mount(l->hier, m.mnt, sizeof(m.mnt), m.root, sizeof(m.root)))
		return 0; /* nobody here can be placed on it */
	int ret = full_path(&m, l->path, dir, sizeof(dir));
	if (!ret && !in_cgroup(getpid(), getpid(), l->hier, l->path))
		ret = write_id(dir, "cgroup.procs", 0);
	if (ret)
		pr_err("cannot join the client's cgroup %s:%s: %s", cg_hier_name(l->hier), l->path,
		       strerror(-ret));
	return ret;
}

int ckpt_join_cgroups(pid_t pid, uid_t uid)
{
	struct cg_line l[CG_MAX_HIER];
	char path[32];
	struct stat st;
	int n = cg_read_lines(pid, pid, l), ret = 0;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (n >= 0 && uid && (stat(path, &st) || st.st_uid != uid))
		n = -ESRCH; /* gone, and its pid taken by another's process */
	if (n < 0) {
		pr_err("pid %d: cgroups: %s", pid, strerror(-n));
		return n;
	}
	for (int i = 0; !ret && i < n; i++)
		ret = join_one(&l[i]);
	return ret;
}
