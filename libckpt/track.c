/*
 * track: dirty-page tracking with userfaultfd write-protection (see
 * track.h).  Why it is right:
 *
 *   - A set is read at T_read, after its mappings were (re)armed at
 *     T_arm <= T_read (the scan right after the freeze, or the
 *     registration while infected, before the snapshot).  A page written
 *     between the two is reported at the next dump, so "not written since
 *     the arm" means "as this set holds it".
 *   - A mapping is trusted only while registered (PM_SCAN_CHECK_WPASYNC):
 *     a new mmap, an mremap (no UFFD_FEATURE_EVENT_REMAP), a fork's copy
 *     or an exec'd mm is not, and the keeper's death unregisters all; such
 *     ranges are hashed against the parent as before, and registered for
 *     the next dump.
 *   - A task is trusted only if the keeper armed it (its pid list) and
 *     the keeper's set is this dump's parent: realpath of the set and the
 *     inode and mtime of its manifest (written last, by rename), so that
 *     a set made again at that path does not pass.  The keeper forgets
 *     its set when a dump asks for it; a dump that fails leaves none, and
 *     the next one hashes.
 *   - MADV_DONTNEED drops the protection with the page: the page reads
 *     as written (and is a hole or the zero page now).
 *   - A page pinned for DMA is written by its device without a fault: a
 *     task with pinned pages (VmPin) is hashed.  (Pins taken and dropped
 *     between two dumps are not seen: docs/sets.md.)
 *
 * The keeper: a process forked (twice, setsid) by the dump that starts
 * tracking a tree, named ckpt-track; holds the userfaultfds and listens
 * on the abstract unix name "ckpt-track/ROOTPID" for root or its own
 * user (SO_PEERCRED).  It exits when the tree's root does (pidfd), or
 * after an hour without a dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "freeze.h"
#include "infect.h"
#include "log.h"
#include "pagemap-scan.h"
#include "proc.h"
#include "track.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#define TRACK_MAX_TASKS 250 /* one message's fds (SCM_MAX_FD is 253) */
#define KEEPER_IDLE_MS (3600 * 1000)
#define SCAN_VEC 512

struct track_msg {
	char op; /* 'T': take the set (reply: it, then none); 'A': armed at `id` */
	char id[PATH_MAX + 64];
	int32_t nr, keeper;
	pid_t pids[TRACK_MAX_TASKS];
};

/* ---- the set's identity ---- */

static int set_identity(const char *dir, char *id, size_t len)
{
	char real[PATH_MAX], path[PATH_MAX + 16];
	struct stat st;
	if (!realpath(dir, real))
		return -errno;
	snprintf(path, sizeof(path), "%s/manifest", real);
	if (stat(path, &st))
		return -errno;
	snprintf(id, len, "%s|%llu|%lld.%09ld", real, (unsigned long long)st.st_ino,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

/* ---- ranges ---- */

static int add_range(struct track_range **v, size_t *n, size_t *cap, uint64_t s, uint64_t e)
{
	if (*n && (*v)[*n - 1].end == s) {
		(*v)[*n - 1].end = e;
		return 0;
	}
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct track_range *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = (struct track_range){ s, e };
	return 0;
}

/* ---- the scan ---- */

/* The private mappings of /proc/PID/maps whose pages a dump stores. */
struct vma_walk {
	struct track_range *v;
	size_t n, cap;
};

static int is_special(const char *path)
{
	return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") ||
	       !strcmp(path, "[vvar_vclock]") || !strcmp(path, "[vsyscall]");
}

static int parse_vma(char *line, void *arg)
{
	struct vma_walk *w = arg;
	uint64_t s, e;
	char perms[8];
	int pos = 0;
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %n", &s, &e, perms, &pos) < 3)
		return 0;
	if (perms[3] != 'p' || is_special(line + pos))
		return 0;
	if (w->n == w->cap) { /* not add_range: two mappings side by side stay two */
		size_t cap = w->cap ? 2 * w->cap : 256;
		struct track_range *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct track_range){ s, e };
	return 0;
}

static int read_vmas(pid_t pid, struct vma_walk *w)
{
	char path[64];
	w->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	return proc_each_line(path, parse_vma, w);
}

/*
 * Scan [s, e) of a WP_ASYNC-registered mapping for written pages
 * (protecting them again when `protect`), adding them to t->written when
 * `keep`.  -EPERM: not (all) registered.
 */
static int scan_range(int pm, struct track_task *t, uint64_t s, uint64_t e, int protect, int keep,
		      uint64_t *written)
{
	static struct page_region regs[SCAN_VEC];
	while (s < e) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_CHECK_WPASYNC | (protect ? PM_SCAN_WP_MATCHING : 0),
			.start = s, .end = e, .vec = (uint64_t)(uintptr_t)regs, .vec_len = SCAN_VEC,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(pm, PAGEMAP_SCAN_IOCTL, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			*written += (regs[i].end - regs[i].start) / 4096;
			if (keep && add_range(&t->written, &t->nr_written, &t->cap_written,
					      regs[i].start, regs[i].end))
				return -ENOMEM;
		}
		if (a.walk_end <= s)
			break;
		s = a.walk_end;
	}
	return 0;
}

static int open_pagemap(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Pages pinned for DMA (RDMA memory regions, io_uring fixed buffers):
 * a device writes them without a fault, so without clearing their
 * protection.  Such a task is hashed. */
static int has_pinned(pid_t pid)
{
	char v[32];
	return !proc_status_field(pid, "VmPin", v, sizeof(v)) && strtoull(v, NULL, 10) != 0;
}

/* Task t at the freeze: which mappings are tracked, and (`ours`) what was
 * written in them since the keeper's set, protected again.  Registered
 * mappings of a task the keeper did not arm are someone else's: the task
 * is left alone (arm_now -1). */
static int scan_task(struct track_state *ts, struct track_task *t, int ours, struct vma_walk *w)
{
	int pm = open_pagemap(t->pid), ret = 0;
	if (pm < 0 || read_vmas(t->pid, w)) {
		if (pm >= 0)
			close(pm);
		return 0; /* nothing tracked: hashed */
	}
	for (size_t i = 0; !ret && i < w->n; i++) {
		uint64_t written = 0;
		int r = scan_range(pm, t, w->v[i].start, w->v[i].end, ours, ours && t->armed, &written);
		if (r == -ENOTTY || r == -EINVAL)
			continue; /* no PAGEMAP_SCAN here: hashed */
		if (r == -EPERM) { /* not registered: hashed, registered later */
			if (add_range(&t->untracked, &t->nr_untracked, &t->cap_untracked,
				      w->v[i].start, w->v[i].end))
				ret = -ENOMEM;
			continue;
		}
		if (r) {
			ret = r;
			break;
		}
		if (!ours) {
			pr_info("pid %d: mapping %" PRIx64 "-%" PRIx64 " is write-protected by "
				"another userfaultfd: no dirty-page tracking for this process",
				t->pid, w->v[i].start, w->v[i].end);
			t->arm_now = -1;
			t->armed = 0;
			break;
		}
		ts->pages_written += t->armed ? written : 0;
		ret = add_range(&t->tracked, &t->nr_tracked, &t->cap_tracked, w->v[i].start,
				w->v[i].end);
	}
	close(pm);
	return ret;
}

/* ---- keeper client ---- */

static socklen_t keeper_addr(pid_t root, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "ckpt-track/%d", (int)root);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The keeper must be ours (our euid): anyone may bind an abstract name
 * first, and a keeper that lied about its set would make a dump take
 * written pages from the parent. */
static int keeper_connect(pid_t root)
{
	struct sockaddr_un a;
	struct ucred cr = { 0 };
	socklen_t len = keeper_addr(root, &a), crlen = sizeof(cr);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, len))
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) || cr.uid != geteuid()) {
		pr_err("pid %d: ckpt-track/%d is held by uid %d: no dirty-page tracking", (int)root,
		       (int)root, (int)cr.uid);
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int send_msg_fds(int sock, const struct track_msg *m, const int *fds, int nr)
{
	char ctl[CMSG_SPACE(sizeof(int) * TRACK_MAX_TASKS)];
	struct iovec io = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1 };
	if (nr) {
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nr);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nr);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nr);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -EPROTO;
}

/* One message and its fds (into fds, *nr of them, at most `max`). */
static int recv_msg_fds(int sock, struct track_msg *m, int *fds, int *nr, int max)
{
	char ctl[CMSG_SPACE(sizeof(int) * TRACK_MAX_TASKS)];
	struct iovec io = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	*nr = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nr < max)
				fds[(*nr)++] = fd;
			else
				close(fd);
		}
	}
	m->id[sizeof(m->id) - 1] = 0;
	return n == (ssize_t)sizeof(*m) && m->nr >= 0 && m->nr <= TRACK_MAX_TASKS ? 0 : -EPROTO;
}

/* ---- the keeper ---- */

struct keeper {
	struct track_msg set; /* op unused */
	int *fds;
	int nr_fds;
};

static int peer_allowed(int c)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	return !getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) &&
	       (cr.uid == 0 || cr.uid == geteuid());
}

static void keeper_serve(struct keeper *k, int c)
{
	struct track_msg m;
	int fds[TRACK_MAX_TASKS], nr = 0;
	if (!peer_allowed(c) || recv_msg_fds(c, &m, fds, &nr, TRACK_MAX_TASKS))
		goto out;
	if (m.op == 'T') {
		m = k->set;
		m.op = 'T';
		k->set.id[0] = 0; /* until a dump armed since says again */
	} else if (m.op == 'A') {
		int *v = realloc(k->fds, (size_t)(k->nr_fds + nr) * sizeof(*v));
		if (!v)
			goto out;
		memcpy(v + k->nr_fds, fds, (size_t)nr * sizeof(*v));
		k->fds = v;
		k->nr_fds += nr;
		nr = 0;
		k->set = m;
	} else {
		goto out;
	}
	m.keeper = (int32_t)getpid();
	send_msg_fds(c, &m, NULL, 0);
out:
	for (int i = 0; i < nr; i++)
		close(fds[i]);
	close(c);
}

static _Noreturn void keeper_main(int ls, int pidfd, struct keeper *k)
{
	for (;;) {
		struct pollfd p[2] = { { ls, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		int n = poll(p, 2, KEEPER_IDLE_MS);
		if (n == 0 || (n > 0 && p[1].revents))
			_exit(0); /* idle for an hour, or the tree's root is gone */
		if (n < 0 && errno != EINTR)
			_exit(1);
		if (n > 0 && (p[0].revents & POLLIN)) {
			int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				keeper_serve(k, c);
		}
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Close every fd but those of keep[] (sorted), stdio to /dev/null. */
static void close_all_but(int *keep, int nr)
{
	int from = 3;
	qsort(keep, (size_t)nr, sizeof(*keep), cmp_int);
	for (int i = 0; i < nr; i++) {
		if (keep[i] > from)
			syscall(SYS_close_range, from, keep[i] - 1, 0);
		if (keep[i] >= from)
			from = keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; null >= 0 && fd < 3; fd++)
		if (fd != null)
			dup2(null, fd);
	if (null > 2)
		close(null);
}

/* A keeper for the tree of `root`, holding fds, armed at m; its pid. */
static pid_t spawn_keeper(pid_t root, const struct track_msg *m, int *fds, int nr)
{
	struct sockaddr_un a;
	socklen_t len = keeper_addr(root, &a);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int pidfd = (int)syscall(SYS_pidfd_open, root, 0);
	int p[2] = { -1, -1 };
	pid_t keeper = -1;
	if (ls < 0 || pidfd < 0 || bind(ls, (struct sockaddr *)&a, len) || listen(ls, 8) ||
	    pipe2(p, O_CLOEXEC)) {
		pr_info("pid %d: no dirty-page tracking keeper: %s", (int)root, strerror(errno));
		goto out;
	}
	pid_t c = fork();
	if (c == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		/* named before it says its pid: whoever is given the pid sees
		 * ckpt-track */
		prctl(PR_SET_NAME, "ckpt-track");
		pid_t self = getpid();
		if (write(p[1], &self, sizeof(self)) != sizeof(self))
			_exit(1);
		int keep[TRACK_MAX_TASKS + 2];
		struct keeper k = { .set = *m, .fds = malloc((size_t)(nr + 1) * sizeof(int)) };
		memcpy(keep, fds, (size_t)nr * sizeof(int));
		keep[nr] = ls;
		keep[nr + 1] = pidfd;
		if (!k.fds)
			_exit(1);
		memcpy(k.fds, fds, (size_t)nr * sizeof(int));
		k.nr_fds = nr;
		close_all_but(keep, nr + 2);
		/* it only holds fds: no capability, no directory in use */
		cap_t none = cap_init();
		if (!none || cap_set_proc(none) || chdir("/"))
			_exit(1);
		cap_free(none);
		keeper_main(ls, pidfd, &k);
	}
	close(p[1]);
	p[1] = -1;
	if (c > 0) {
		waitpid(c, NULL, 0);
		if (read(p[0], &keeper, sizeof(keeper)) != sizeof(keeper))
			keeper = -1;
	}
out:
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	if (pidfd >= 0)
		close(pidfd);
	if (ls >= 0)
		close(ls);
	return keeper;
}

/* ---- the dump's side ---- */

static int pid_in(const struct track_msg *m, pid_t pid)
{
	for (int i = 0; i < m->nr; i++)
		if (m->pids[i] == pid)
			return 1;
	return 0;
}

/* The keeper's set (m->id empty: none) and pids; -1: no keeper. */
static int keeper_take(pid_t root, struct track_msg *m)
{
	int fds[1], nr, k = keeper_connect(root), ret = -1;
	memset(m, 0, sizeof(*m));
	if (k < 0)
		return -1;
	m->op = 'T';
	if (!send_msg_fds(k, m, NULL, 0) && !recv_msg_fds(k, m, fds, &nr, 0))
		ret = 0;
	close(k);
	return ret;
}

int track_begin(struct track_state *ts, const struct frozen_tree *tree, int start,
		const char *parent_dir, int keep_running)
{
	struct track_msg m;
	char id[sizeof(m.id)];
	memset(ts, 0, sizeof(*ts));
	ts->root = tree->tasks[0].pid;
	int keeper = keeper_take(tree->tasks[0].pid, &m);
	ts->rearm = keep_running && (start || keeper == 0);
	ts->use = keeper == 0 && m.id[0] && parent_dir && !set_identity(parent_dir, id, sizeof(id)) &&
		  !strcmp(id, m.id);
	if (parent_dir && keeper == 0 && !ts->use)
		pr_info("pid %d: the tracked pages are not since %s: all pages hashed",
			tree->tasks[0].pid, parent_dir);
	if (!ts->use && !ts->rearm)
		return 0;
	ts->tasks = calloc((size_t)tree->nr_tasks, sizeof(*ts->tasks));
	struct vma_walk walk = { 0 }, *w = &walk;
	if (!ts->tasks)
		return -ENOMEM;
	ts->nr = tree->nr_tasks;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		struct track_task *t = &ts->tasks[i];
		t->pid = tree->tasks[i].pid;
		t->uffd = -1;
		if (tree->tasks[i].zombie || tree->tasks[i].step_client) {
			t->arm_now = -1;
			continue;
		}
		int ours = keeper == 0 && pid_in(&m, t->pid);
		t->armed = ts->use && ours;
		if (t->armed && has_pinned(t->pid)) {
			pr_info("pid %d: pages pinned for DMA (VmPin): all pages hashed", t->pid);
			t->armed = 0;
		}
		ret = scan_task(ts, t, ours, w);
		t->arm_now = t->arm_now < 0 ? -1 : 0;
	}
	free(walk.v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pr_info("pid %d: dirty-page scan: %llu pages written since the parent, %.1f ms", ts->root,
		(unsigned long long)ts->pages_written,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return ret;
}

/* Register [s, e) (a mapping) on uffd and protect its pages. */
static int register_vma(int uffd, int pm, struct track_task *t, uint64_t s, uint64_t e)
{
	struct uffdio_register r = { .range = { s, e - s }, .mode = UFFDIO_REGISTER_MODE_WP };
	uint64_t n = 0;
	if (ioctl(uffd, UFFDIO_REGISTER, &r))
		return -errno;
	return scan_range(pm, t, s, e, 1, 0, &n);
}

static int get_uffd(struct track_task *t, struct infect_ctl *ctl)
{
	static int said;
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, got = 0;
	int ret = infect_userfaultfd(ctl, want, &t->uffd, &got);
	if (ret == -EINVAL) /* an older kernel: without WP_UNPOPULATED */
		ret = infect_userfaultfd(ctl, UFFD_FEATURE_WP_ASYNC, &t->uffd, &got);
	if (!ret && !(got & UFFD_FEATURE_WP_ASYNC)) {
		close(t->uffd);
		t->uffd = -1;
		ret = -EOPNOTSUPP;
	}
	if (ret && !said++)
		pr_err("pid %d: no dirty-page tracking: userfaultfd with WP_ASYNC: %s; incremental "
			"dumps hash every page",
			t->pid, strerror(-ret));
	return ret;
}

/* The mappings found untracked at the freeze (not those made since, as
 * the parasite's own) are registered; a userfaultfd that holds none is
 * closed, not kept. */
void track_arm_task(struct track_state *ts, int idx, struct infect_ctl *ctl)
{
	struct track_task *t = idx < ts->nr ? &ts->tasks[idx] : NULL;
	int registered = 0;
	if (!ts->rearm || !t || t->arm_now < 0)
		return;
	int pm = open_pagemap(t->pid);
	if (pm < 0)
		return;
	t->arm_now = 1;
	for (size_t i = 0; i < t->nr_untracked; i++) {
		const struct track_range *v = &t->untracked[i];
		if (t->uffd < 0 && get_uffd(t, ctl)) {
			t->arm_now = 0;
			break;
		}
		int r = register_vma(t->uffd, pm, t, v->start, v->end);
		registered += !r;
		if (r)
			pr_info("pid %d: mapping %" PRIx64 "-%" PRIx64 ": not tracked (%s): hashed",
				t->pid, v->start, v->end, strerror(-r));
	}
	if (t->uffd >= 0 && !registered) {
		close(t->uffd);
		t->uffd = -1;
	}
	close(pm);
}

const struct track_task *track_task_of(const struct track_state *ts, pid_t pid)
{
	for (int i = 0; ts->use && i < ts->nr; i++)
		if (ts->tasks[i].pid == pid)
			return ts->tasks[i].armed ? &ts->tasks[i] : NULL;
	return NULL;
}

/* Hand the armed tasks and the new userfaultfds to the keeper. */
static pid_t give_keeper(struct track_state *ts, pid_t root, const char *set_dir)
{
	struct track_msg m = { .op = 'A' };
	int fds[TRACK_MAX_TASKS], nr_fds = 0;
	if (set_identity(set_dir, m.id, sizeof(m.id)))
		return -1;
	for (int i = 0; i < ts->nr && m.nr < TRACK_MAX_TASKS; i++) {
		if (ts->tasks[i].arm_now != 1)
			continue;
		m.pids[m.nr++] = ts->tasks[i].pid;
		if (ts->tasks[i].uffd >= 0)
			fds[nr_fds++] = ts->tasks[i].uffd;
	}
	int k = keeper_connect(root), nr;
	if (k < 0)
		return spawn_keeper(root, &m, fds, nr_fds);
	pid_t pid = -1;
	if (!send_msg_fds(k, &m, fds, nr_fds) && !recv_msg_fds(k, &m, fds, &nr, 0))
		pid = m.keeper;
	close(k);
	return pid;
}

void track_end(struct track_state *ts, const char *set_dir)
{
	if (set_dir && ts->rearm && ts->nr) {
		pid_t k = give_keeper(ts, ts->root, set_dir);
		ts->keeper = k > 0 ? k : 0;
	}
	for (int i = 0; i < ts->nr; i++) {
		if (ts->tasks[i].uffd >= 0)
			close(ts->tasks[i].uffd);
		free(ts->tasks[i].tracked);
		free(ts->tasks[i].written);
		free(ts->tasks[i].untracked);
	}
	free(ts->tasks);
	ts->tasks = NULL;
	ts->nr = 0;
}
