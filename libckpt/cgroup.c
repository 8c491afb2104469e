/*
 * cgroup: the hierarchies of this node and the dump of a tree's cgroup
 * membership into cgroup.img (see cgroup.h; the restore side is
 * cgroup-place.c).  A set is one combination of (hierarchy, path) pairs;
 * each thread names its set, so that a tree of many threads in the same
 * cgroups costs one set.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "ckpt/ckpt.h"
#include "cgroup.h"
#include "log.h"
#include "proc.h"

/* ---- /proc/PID/cgroup ---- */

struct lines_arg {
	struct cg_line *out;
	int n;
};

static int take_line(char *line, void *arg)
{
	struct lines_arg *la = arg;
	char *hier = strchr(line, ':');
	char *path = hier ? strchr(hier + 1, ':') : NULL;
	if (!path)
		return 0;
	if (la->n >= CG_MAX_HIER)
		return -E2BIG;
	*path = 0;
	snprintf(la->out[la->n].hier, sizeof(la->out[la->n].hier), "%s", hier + 1);
	snprintf(la->out[la->n].path, sizeof(la->out[la->n].path), "%s", path + 1);
	la->n++;
	return 0;
}

int cg_read_lines(pid_t pid, pid_t tid, struct cg_line *out)
{
	char path[64];
	struct lines_arg la = { out, 0 };
	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	int ret = proc_each_line(path, take_line, &la);
	return ret ? ret : la.n;
}

const char *cg_hier_name(const char *hier)
{
	return hier[0] ? hier : "cgroup2";
}

/* Is `tok` one of the controllers of the comma list `list`? */
static int has_token(const char *list, const char *tok, size_t len)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && !strncmp(p, tok, len))
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

static size_t count_tokens(const char *list)
{
	size_t n = 0;
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, ",");
		n += k > 0;
		p += k + (p[k] == ',');
	}
	return n;
}

int cg_same_hier(const char *a, const char *b)
{
	if (count_tokens(a) != count_tokens(b))
		return 0;
	for (const char *p = a; *p;) {
		size_t n = strcspn(p, ",");
		if (n && !has_token(b, p, n))
			return 0;
		p += n + (p[n] == ',');
	}
	return 1;
}

/* ---- mounts of this node (/proc/self/mountinfo) ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] && r[3]) {
			*w = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w = *r++;
		}
	}
	*w = 0;
}

/* The controllers of a v1 mount from its super options: what is a
 * subsystem of /proc/cgroups, or name=. */
static void mount_hier(const char *opts, char *out, size_t len)
{
	char subsys[64], line[256];
	size_t used = 0;
	out[0] = 0;
	for (const char *p = opts; *p;) {
		size_t n = strcspn(p, ",");
		int keep = n > 5 && !strncmp(p, "name=", 5);
		FILE *f = keep ? NULL : fopen("/proc/cgroups", "re");
		while (f && !keep && fgets(line, sizeof(line), f))
			keep = sscanf(line, "%63s", subsys) == 1 && strlen(subsys) == n &&
			       !strncmp(subsys, p, n);
		if (f)
			fclose(f);
		if (keep && used + n + 2 < len)
			used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "," : "",
						 (int)n, p);
		p += n + (p[n] == ',');
	}
}

struct find_arg {
	const char *hier;
	char *mnt, *root;
	size_t mlen, rlen;
	int found;
};

static int match_mount(char *line, void *arg)
{
	struct find_arg *fa = arg;
	char *f[6], *save, *dash = strstr(line, " - ");
	if (!dash)
		return 0;
	*dash = 0;
	f[0] = strtok_r(line, " ", &save);
	for (int i = 1; i < 5 && f[i - 1]; i++)
		f[i] = strtok_r(NULL, " ", &save);
	char *type = strtok_r(dash + 3, " ", &save), *src = strtok_r(NULL, " ", &save);
	char *opts = src ? strtok_r(NULL, " ", &save) : NULL;
	if (!f[0] || !f[4] || !opts)
		return 0;
	char hier[256] = "";
	if (!strcmp(type, "cgroup"))
		mount_hier(opts, hier, sizeof(hier));
	else if (strcmp(type, "cgroup2"))
		return 0;
	int v1 = !strcmp(type, "cgroup"), want_v1 = fa->hier[0] != 0;
	if (v1 != want_v1 || !cg_same_hier(hier, fa->hier))
		return 0;
	unescape(f[3]);
	unescape(f[4]);
	snprintf(fa->root, fa->rlen, "%s", f[3]);
	snprintf(fa->mnt, fa->mlen, "%s", f[4]);
	fa->found = 1;
	return !strcmp(f[3], "/"); /* a mount of the whole hierarchy: done */
}

int cg_find_mount(const char *hier, char *mnt, size_t mlen, char *root, size_t rlen)
{
	struct find_arg fa = { hier, mnt, root, mlen, rlen, 0 };
	int ret = proc_each_line("/proc/self/mountinfo", match_mount, &fa);
	if (ret < 0)
		return ret;
	return fa.found ? 0 : -ENOENT;
}

int cg_mount_private(const char *hier, char *dir)
{
	char data[300];
	int named_only = !strchr(hier, ',') && !strncmp(hier, "name=", 5);
	snprintf(data, sizeof(data), "%s%s", named_only ? "none," : "", hier);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	if (!mkdtemp(dir))
		return -errno;
	if (mount("cgroup", dir, hier[0] ? "cgroup" : "cgroup2", 0, hier[0] ? data : NULL)) {
		int e = errno;
		rmdir(dir);
		return -e;
	}
	return 0;
}

/* ---- dump ---- */

#define CG_MAX_UNMOUNTED 32 /* hierarchies walked through a private mount */

struct cg_dump {
	struct arena a;
	CgroupEntry e;
	CgroupSetEntry **sets;
	CgroupThreadEntry **threads;
	CgroupDirEntry **dirs;
	CgroupEntry *unmounted[CG_MAX_UNMOUNTED]; /* what the children sent, freed last */
	size_t nr_unmounted;
};

static int same_set(const CgroupSetEntry *s, const struct cg_line *l, int n)
{
	if (s->n_members != (size_t)n)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(s->members[i]->hierarchy, l[i].hier) ||
		    strcmp(s->members[i]->path, l[i].path))
			return 0;
	return 1;
}

static CgroupSetEntry *new_set(struct cg_dump *d, const struct cg_line *l, int n)
{
	CgroupSetEntry *s = arena_alloc(&d->a, sizeof(*s));
	CgroupMember **m = arena_alloc(&d->a, (size_t)n * sizeof(*m) + 1);
	if (!s || !m)
		return NULL;
	cgroup_set_entry__init(s);
	s->id = (uint32_t)d->e.n_sets;
	s->members = m;
	for (int i = 0; i < n; i++) {
		m[i] = arena_alloc(&d->a, sizeof(**m));
		if (!m[i])
			return NULL;
		cgroup_member__init(m[i]);
		m[i]->hierarchy = arena_strdup(&d->a, l[i].hier);
		m[i]->path = arena_strdup(&d->a, l[i].path);
		if (!m[i]->hierarchy || !m[i]->path)
			return NULL;
		s->n_members++;
	}
	d->sets[d->e.n_sets++] = s;
	return s;
}

/* from: the process whose cgroups the thread is restored in, 0: its own. */
static int dump_thread(struct cg_dump *d, const struct frozen_task *t, int i, pid_t from)
{
	struct cg_line l[CG_MAX_HIER];
	int n = from ? cg_read_lines(from, from, l) : cg_read_lines(t->pid, t->threads[i].tid, l);
	if (n < 0) {
		pr_err("pid %d: thread %d: cgroups: %s", t->pid, t->threads[i].tid, strerror(-n));
		return n;
	}
	CgroupSetEntry *s = NULL;
	for (size_t k = 0; !s && k < d->e.n_sets; k++)
		if (same_set(d->sets[k], l, n))
			s = d->sets[k];
	if (!s && !(s = new_set(d, l, n)))
		return -ENOMEM;
	CgroupThreadEntry *te = arena_alloc(&d->a, sizeof(*te));
	if (!te)
		return -ENOMEM;
	cgroup_thread_entry__init(te);
	te->pid = (uint32_t)t->vpid;
	te->tid = (uint32_t)t->threads[i].vtid;
	te->set = s->id;
	d->threads[d->e.n_threads++] = te;
	return 0;
}

static int dir_known(const struct cg_dump *d, const char *hier, const char *path)
{
	for (size_t i = 0; i < d->e.n_dirs; i++)
		if (!strcmp(d->dirs[i]->path, path) && !strcmp(d->dirs[i]->hierarchy, hier))
			return 1;
	return 0;
}

static int add_dir(struct cg_dump *d, const char *hier, const char *path, const struct stat *st,
		   int dfd)
{
	if (d->e.n_dirs >= CG_MAX_DIRS) {
		pr_err("cgroup %s:%s: more than %d directories below the job's cgroups",
		       cg_hier_name(hier), path, CG_MAX_DIRS);
		return -E2BIG;
	}
	CgroupDirEntry *e = arena_alloc(&d->a, sizeof(*e));
	if (!e)
		return -ENOMEM;
	cgroup_dir_entry__init(e);
	e->hierarchy = arena_strdup(&d->a, hier);
	e->path = arena_strdup(&d->a, path);
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->mode = st->st_mode & 07777;
	d->dirs[d->e.n_dirs++] = e;
	return e->hierarchy && e->path ? cg_dump_props(&d->a, e, dfd) : -ENOMEM;
}

/* The control files of a directory worth recording (cgroup_file_entry). */
static int add_file(struct cg_dump *d, CgroupDirEntry *e, int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
	    (!st.st_uid && !st.st_gid && !(st.st_mode & 022)))
		return 0;
	if (e->n_files >= CG_MAX_FILES)
		return 0; /* a cgroup has far fewer control files */
	CgroupFileEntry *f = arena_alloc(&d->a, sizeof(*f));
	if (!e->files)
		e->files = arena_alloc(&d->a, CG_MAX_FILES * sizeof(*e->files));
	if (!f || !e->files)
		return -ENOMEM;
	cgroup_file_entry__init(f);
	f->name = arena_strdup(&d->a, name);
	f->uid = st.st_uid;
	f->gid = st.st_gid;
	f->mode = st.st_mode & 07777;
	e->files[e->n_files++] = f;
	return f->name ? 0 : -ENOMEM;
}

/* Record `path` (a directory at dfd) and every directory below it. */
static int walk_dir(struct cg_dump *d, const char *hier, const char *path, int dfd)
{
	struct stat st;
	int ret = fstat(dfd, &st) ? -errno : 0;
	if (!ret && !dir_known(d, hier, path))
		ret = add_dir(d, hier, path, &st, dfd);
	CgroupDirEntry *e = ret ? NULL : d->dirs[d->e.n_dirs - 1];
	DIR *dir = ret ? NULL : fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return ret ? ret : -errno;
	}
	struct dirent *de;
	while (!ret && (de = readdir(dir))) {
		char sub[4096];
		if (de->d_type == DT_REG && strcmp(e->path, path) == 0)
			ret = add_file(d, e, dirfd(dir), de->d_name);
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		int fd = openat(dirfd(dir), de->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		snprintf(sub, sizeof(sub), "%s%s%s", path, strcmp(path, "/") ? "/" : "",
			 de->d_name);
		ret = walk_dir(d, hier, sub, fd);
	}
	closedir(dir);
	return ret;
}

/* In a child: mount hier privately, walk path, write the directories
 * to fd as a packed cgroup_entry. */
static int walk_child(const char *hier, const char *path, int fd)
{
	struct cg_dump c;
	char mnt[] = "/tmp/ckpt-cgroup.XXXXXX", full[8192];
	memset(&c, 0, sizeof(c));
	cgroup_entry__init(&c.e);
	c.dirs = arena_alloc(&c.a, CG_MAX_DIRS * sizeof(*c.dirs));
	int ret = c.dirs ? cg_mount_private(hier, mnt) : -ENOMEM;
	snprintf(full, sizeof(full), "%s%s", mnt, path);
	int dfd = ret ? -1 : open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (!ret && dfd < 0)
		ret = -errno;
	ret = ret ? ret : walk_dir(&c, hier, path, dfd);
	c.e.dirs = c.dirs;
	size_t len = ret ? 0 : cgroup_entry__get_packed_size(&c.e);
	uint8_t *buf = len ? malloc(len) : NULL;
	if (!ret && !buf)
		ret = -ENOMEM;
	if (buf && (cgroup_entry__pack(&c.e, buf) != len || write(fd, buf, len) != (ssize_t)len))
		ret = -EIO;
	free(buf);
	if (ret)
		pr_err("cgroup %s:%s: walking it through a private mount: %s", cg_hier_name(hier),
		       path, strerror(-ret));
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	return ret;
}

static int read_all_fd(int fd, uint8_t **out, size_t *len)
{
	size_t cap = 1 << 16;
	uint8_t *buf = malloc(cap);
	ssize_t n;
	*len = 0;
	while (buf && (n = read(fd, buf + *len, cap - *len)) > 0) {
		*len += (size_t)n;
		uint8_t *more = *len == cap && cap < IMG_MAX_ENTRY ? realloc(buf, cap *= 2) : buf;
		if (!more || *len == cap)
			break;
		buf = more;
	}
	*out = buf;
	return buf ? 0 : -ENOMEM;
}

/* A hierarchy not mounted here (the job mounted it, then unmounted it):
 * root walks it in a child with a private mount; a user cannot. */
static int dump_dirs_unmounted(struct cg_dump *d, const char *hier, const char *path)
{
	int p[2];
	if (geteuid() || d->nr_unmounted == CG_MAX_UNMOUNTED) {
		pr_info("cgroup %s:%s: hierarchy not mounted here: its directories are not "
			"recorded",
			cg_hier_name(hier), path);
		return 0;
	}
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(walk_child(hier, path, p[1]) ? 1 : 0);
	}
	close(p[1]);
	uint8_t *buf = NULL;
	size_t len = 0;
	int st = 0, ret = pid < 0 ? -errno : read_all_fd(p[0], &buf, &len);
	close(p[0]);
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!ret && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		ret = -EIO; /* the child said why */
	CgroupEntry *e = ret ? NULL : cgroup_entry__unpack(NULL, len, buf);
	free(buf);
	if (!ret && !e)
		ret = -EIO;
	for (size_t i = 0; !ret && i < e->n_dirs; i++) {
		if (dir_known(d, hier, e->dirs[i]->path))
			continue;
		if (d->e.n_dirs == CG_MAX_DIRS) {
			pr_err("cgroup %s:%s: more than %d directories below the job's cgroups",
			       cg_hier_name(hier), path, CG_MAX_DIRS);
			ret = -E2BIG;
		} else {
			d->dirs[d->e.n_dirs++] = e->dirs[i];
		}
	}
	if (e)
		d->unmounted[d->nr_unmounted++] = e;
	return ret;
}

/* The directories of one cgroup of the job: itself and all below it.
 * The root of a hierarchy is everybody's, not the job's. */
static int dump_dirs_of(struct cg_dump *d, const char *hier, const char *path)
{
	char mnt[4096], root[4096], full[8192];
	if (!strcmp(path, "/") || dir_known(d, hier, path))
		return 0;
	if (cg_find_mount(hier, mnt, sizeof(mnt), root, sizeof(root)))
		return dump_dirs_unmounted(d, hier, path);
	size_t rl = strcmp(root, "/") ? strlen(root) : 0;
	if (strncmp(path, root, rl) || (path[rl] && path[rl] != '/'))
		return 0; /* outside the mounted sub-tree */
	snprintf(full, sizeof(full), "%s%s", mnt, path + rl);
	int fd = open(full, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		pr_err("cgroup %s:%s: %s: %s", cg_hier_name(hier), path, full, strerror(e));
		return -e;
	}
	return walk_dir(d, hier, path, fd);
}

/* The client of the srun step whose task tree->tasks[i] is, or is a
 * descendant of (a shell's sleep), or 0. */
static pid_t step_client_above(const struct frozen_tree *tree, int i)
{
	for (int hops = 0; i >= 0 && hops < tree->nr_tasks; hops++) {
		const struct frozen_task *t = &tree->tasks[i];
		if (t->step_client)
			return 0;
		if (t->step)
			return tree->steps[t->step - 1].client;
		int parent = -1;
		for (int j = 0; j < tree->nr_tasks && parent < 0; j++)
			if (tree->tasks[j].pid == t->ppid)
				parent = j;
		i = parent;
	}
	return 0;
}

static int collect(struct cg_dump *d, const struct frozen_tree *tree)
{
	int ret = 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		/* a step's client comes back as one thread, the proxy; the
		 * step's tasks in its cgroups, the batch step's (docs/mpi.md) */
		int n = t->step_client ? 1 : t->nr_threads;
		pid_t from = step_client_above(tree, i);
		for (int k = 0; !ret && !t->zombie && k < n; k++)
			ret = dump_thread(d, t, k, from);
	}
	for (size_t s = 0; !ret && s < d->e.n_sets; s++)
		for (size_t m = 0; !ret && m < d->sets[s]->n_members; m++)
			ret = dump_dirs_of(d, d->sets[s]->members[m]->hierarchy,
					   d->sets[s]->members[m]->path);
	return ret;
}

int dump_cgroups(struct img_set *set, const struct frozen_tree *tree)
{
	struct cg_dump d;
	size_t threads = 0;
	memset(&d, 0, sizeof(d));
	cgroup_entry__init(&d.e);
	for (int i = 0; i < tree->nr_tasks; i++)
		threads += (size_t)tree->tasks[i].nr_threads;
	d.sets = arena_alloc(&d.a, (threads + 1) * sizeof(*d.sets));
	d.threads = arena_alloc(&d.a, (threads + 1) * sizeof(*d.threads));
	d.dirs = arena_alloc(&d.a, CG_MAX_DIRS * sizeof(*d.dirs));
	int ret = d.sets && d.threads && d.dirs ? collect(&d, tree) : -ENOMEM;
	d.e.sets = d.sets;
	d.e.threads = d.threads;
	d.e.dirs = d.dirs;
	struct img *img;
	if (!ret && !(ret = img_create(set, IMG_CGROUP, "cgroup.img", &img))) {
		ret = img_write(img, &d.e.base);
		int cret = img_close_write(img);
		ret = ret ? ret : cret;
	}
	arena_free(&d.a);
	for (size_t i = 0; i < d.nr_unmounted; i++)
		cgroup_entry__free_unpacked(d.unmounted[i], NULL);
	return ret;
}

/* ---- restore: load and check ---- */

/* A path the restore may write under a mount: absolute, no "." or "..". */
static int good_path(const char *p)
{
	if (p[0] != '/' || strstr(p, "//"))
		return 0;
	for (const char *s = p; (s = strchr(s, '/')); s++)
		if ((s[1] == '.' && (s[2] == '/' || !s[2])) ||
		    (s[1] == '.' && s[2] == '.' && (s[3] == '/' || !s[3])))
			return 0;
	return strlen(p) < 4000;
}

/* What is wrong with directory entry i, or NULL. */
static const char *check_dir(const CgroupDirEntry *de, size_t i)
{
	if (!good_path(de->path) || i >= CG_MAX_DIRS)
		return "bad path, or too many directories";
	if (de->n_files > CG_MAX_FILES || de->n_props > CG_MAX_PROPS)
		return "too many files or settings";
	for (size_t k = 0; k < de->n_props; k++)
		if (!cg_prop_known(de->props[k]->name))
			return "a setting ckpt does not restore";
	for (size_t k = 0; k < de->n_files; k++)
		if (strchr(de->files[k]->name, '/') || de->files[k]->name[0] == '.' ||
		    !de->files[k]->name[0])
			return "a bad file name";
	return NULL;
}

static int check_entry(const char *dir, const CgroupEntry *e)
{
	for (size_t i = 0; i < e->n_sets; i++) {
		if (e->sets[i]->id != i || e->sets[i]->n_members > CG_MAX_HIER) {
			pr_err("%s/cgroup.img: set %zu: bad id or too many hierarchies", dir, i);
			return -EINVAL;
		}
		for (size_t m = 0; m < e->sets[i]->n_members; m++)
			if (!good_path(e->sets[i]->members[m]->path) ||
			    strlen(e->sets[i]->members[m]->hierarchy) > 200) {
				pr_err("%s/cgroup.img: set %zu: bad cgroup %s", dir, i,
				       e->sets[i]->members[m]->path);
				return -EINVAL;
			}
	}
	for (size_t i = 0; i < e->n_threads; i++)
		if (e->threads[i]->set >= e->n_sets) {
			pr_err("%s/cgroup.img: thread %u: no set %u", dir, e->threads[i]->tid,
			       e->threads[i]->set);
			return -EINVAL;
		}
	for (size_t i = 0; i < e->n_dirs; i++) {
		const char *why = check_dir(e->dirs[i], i);
		if (why) {
			pr_err("%s/cgroup.img: cgroup %s:%s: %s", dir,
			       cg_hier_name(e->dirs[i]->hierarchy), e->dirs[i]->path, why);
			return -EINVAL;
		}
	}
	return 0;
}

int cgroups_load(struct img_set *set, CgroupEntry **out)
{
	*out = NULL;
	if (!img_exists(set, "cgroup.img"))
		return 0;
	int ret = img_read_one(set, IMG_CGROUP, "cgroup.img", &cgroup_entry__descriptor,
			       (ProtobufCMessage **)out);
	return ret ? ret : check_entry(img_set_dir(set), *out);
}

const CgroupSetEntry *cg_set_of(const CgroupEntry *cg, uint32_t pid, uint32_t tid)
{
	for (size_t i = 0; cg && i < cg->n_threads; i++)
		if (cg->threads[i]->pid == pid && cg->threads[i]->tid == tid)
			return cg->sets[cg->threads[i]->set];
	return NULL;
}
