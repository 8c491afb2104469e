/*
 * verify: restore --verify.  Once every restored process has its
 * registers back and still sits in its ptrace stop (restore.c,
 * finish_all), what the kernel shows of it is read again with the dump's
 * own readers and compared with the images:
 *
 *   core   creds and groups, capabilities, no_new_privs, rlimits, umask,
 *          cwd, root, personality, oom_score_adj, loginuid, name; per
 *          thread its name and signal mask; which signals are ignored or
 *          caught
 *   memory every VMA (range, protection, flags, kind, file and offset,
 *          madvise state) and the mm fields of /proc/PID/stat
 *   files  the fd numbers, each fd's flags, close-on-exec and offset
 *          (of a /proc/PID file too, unless kept at the end of its text),
 *          which fds share one open file description, the process each
 *          pidfd names (or none: dead), each description's lease, and a
 *          TCP connection's state (the dumped one, or one its peer alone
 *          may have moved it to since: sk-tcp.c); which processes share
 *          one fd table, one fs (kcmp KCMP_FILES, KCMP_FS: fdtable.c)
 *   ctty   a session leader's controlling terminal (tty_nr): the system
 *          terminal it had (its device), a pty of the tree (a pty), none
 *   cgroup each thread's cgroup on every hierarchy of the images, after
 *          the --cgroup-root rules (cgroup-place.c)
 *
 * Each difference is named in one line ("pid 12: umask 0022, dumped
 * 0077"); any difference fails the restore, which then kills the tree:
 * a restore that exits 0 promises the state it dumped, and this catches a
 * state the engine forgot to restore where no test looks for it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "arena.h"
#include "cgroup.h"
#include "core.h"
#include "fdtable.h"
#include "file-kinds.h"
#include "log.h"
#include "mem.h"
#include "proc.h"
#include "restore.h"
#include "sk-opts.h"
#include "sk-raw.h"
#include "sk-packet.h"
#include "sk-tcp.h"
#include "tty.h"
#include "verify.h"

#define MAX_LINES 20

struct verify {
	int diffs;
	int tcp_close; /* restore --tcp-close: connections come back CLOSE */
	uint32_t pid; /* as dumped, for the messages */
	struct arena a;
	char lines[MAX_LINES][512]; /* printed at the end: one alone is one line */
};

static void __attribute__((format(printf, 2, 3))) differ(struct verify *v, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	if (++v->diffs > MAX_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(v->lines[v->diffs - 1], sizeof(v->lines[0]), "pid %u: %s", v->pid, msg);
}

#define SAME(v, what, now, was, fmt)                                                     \
	do {                                                                             \
		if ((now) != (was))                                                      \
			differ(v, "%s " fmt ", dumped " fmt, what, now, was);             \
	} while (0)

/* ------------------------------- core -------------------------------- */

static void verify_creds(struct verify *v, const CredsEntry *now, const CredsEntry *was)
{
	SAME(v, "uid", now->uid, was->uid, "%u");
	SAME(v, "euid", now->euid, was->euid, "%u");
	SAME(v, "suid", now->suid, was->suid, "%u");
	SAME(v, "fsuid", now->fsuid, was->fsuid, "%u");
	SAME(v, "gid", now->gid, was->gid, "%u");
	SAME(v, "egid", now->egid, was->egid, "%u");
	SAME(v, "sgid", now->sgid, was->sgid, "%u");
	SAME(v, "fsgid", now->fsgid, was->fsgid, "%u");
	SAME(v, "CapEff", (unsigned long long)now->cap_eff, (unsigned long long)was->cap_eff, "%#llx");
	SAME(v, "CapPrm", (unsigned long long)now->cap_prm, (unsigned long long)was->cap_prm, "%#llx");
	SAME(v, "CapInh", (unsigned long long)now->cap_inh, (unsigned long long)was->cap_inh, "%#llx");
	SAME(v, "CapBnd", (unsigned long long)now->cap_bnd, (unsigned long long)was->cap_bnd, "%#llx");
	if (was->has_cap_amb && now->has_cap_amb)
		SAME(v, "CapAmb", (unsigned long long)now->cap_amb,
		     (unsigned long long)was->cap_amb, "%#llx");
	if (was->has_no_new_privs && now->has_no_new_privs)
		SAME(v, "no_new_privs", (int)now->no_new_privs, (int)was->no_new_privs, "%d");
	int groups_same = now->n_groups == was->n_groups;
	for (size_t i = 0; groups_same && i < now->n_groups; i++)
		groups_same = now->groups[i] == was->groups[i];
	if (!groups_same)
		differ(v, "%zu supplementary groups (first %u), dumped %zu (first %u)",
		       now->n_groups, now->n_groups ? now->groups[0] : 0, was->n_groups,
		       was->n_groups ? was->groups[0] : 0);
}

static const RlimitEntry *rlimit_of(const CoreEntry *c, uint32_t resource)
{
	for (size_t i = 0; i < c->n_rlimits; i++)
		if (c->rlimits[i]->resource == resource)
			return c->rlimits[i];
	return NULL;
}

static void verify_rlimits(struct verify *v, const CoreEntry *now, const CoreEntry *was)
{
	for (size_t i = 0; i < was->n_rlimits; i++) {
		const RlimitEntry *w = was->rlimits[i], *n = rlimit_of(now, w->resource);
		if (!n)
			differ(v, "rlimit %u: not shown", w->resource);
		else if (n->cur != w->cur || n->max != w->max)
			differ(v, "rlimit %u: %llu/%llu, dumped %llu/%llu", w->resource,
			       (unsigned long long)n->cur, (unsigned long long)n->max,
			       (unsigned long long)w->cur, (unsigned long long)w->max);
	}
}

static void verify_strings(struct verify *v, const char *what, const char *now, const char *was)
{
	if (was && (!now || strcmp(now, was)))
		differ(v, "%s \"%s\", dumped \"%s\"", what, now ? now : "", was);
}

static void verify_core(struct verify *v, const struct rst_task *t)
{
	CoreEntry now = CORE_ENTRY__INIT;
	const CoreEntry *was = t->core;
	char comm[64];
	if (core_read_proc(&v->a, t->host_pid, &now)) {
		differ(v, "its /proc cannot be read");
		return;
	}
	verify_creds(v, now.creds, was->creds);
	verify_rlimits(v, &now, was);
	SAME(v, "umask", now.umask, was->umask, "%04o");
	verify_strings(v, "cwd", now.cwd, was->cwd);
	verify_strings(v, "root", now.root, was->root);
	if (was->has_personality)
		SAME(v, "personality", now.personality, was->personality, "%#x");
	if (was->has_oom_score_adj)
		SAME(v, "oom_score_adj", now.oom_score_adj, was->oom_score_adj, "%d");
	if (was->has_loginuid && now.has_loginuid)
		SAME(v, "loginuid", now.loginuid, was->loginuid, "%u");
	if (proc_thread_comm(t->host_pid, t->host_pid, comm, sizeof(comm)))
		comm[0] = 0;
	verify_strings(v, "name", comm, was->comm);
}

/* ------------------------------ signals ------------------------------ */

/* The hex value of key in a status file ("SigBlk:\t0000000000000000"). */
static int status_hex(const char *path, const char *key, uint64_t *out)
{
	char line[256];
	size_t klen = strlen(key);
	FILE *f = fopen(path, "re");
	int found = 0;
	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			*out = strtoull(line + klen + 1, NULL, 16);
			found = 1;
		}
	fclose(f);
	return found ? 0 : -ENOENT;
}

static const ThreadCoreEntry *thread_of(const CoreEntry *c, int32_t tid)
{
	for (size_t i = 0; i < c->n_threads; i++)
		if ((int32_t)c->threads[i]->tid == tid)
			return c->threads[i];
	return NULL;
}

static void verify_thread(struct verify *v, const struct rst_task *t, pid_t host_tid)
{
	char path[64], comm[64];
	uint64_t blocked = 0;
	int32_t tid = proc_ns_tid(t->host_pid, host_tid);
	const ThreadCoreEntry *tc = thread_of(t->core, tid);
	if (!tc) {
		differ(v, "thread %d: not in the image", tid);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", t->host_pid, host_tid);
	if (status_hex(path, "SigBlk", &blocked) == 0 && blocked != tc->blocked)
		differ(v, "thread %d: blocked signals %#llx, dumped %#llx", tid,
		       (unsigned long long)blocked, (unsigned long long)tc->blocked);
	if (proc_thread_comm(t->host_pid, host_tid, comm, sizeof(comm)))
		comm[0] = 0;
	if (tc->comm)
		verify_strings(v, "thread name", comm, tc->comm);
}

static void verify_threads(struct verify *v, const struct rst_task *t)
{
	char path[64];
	size_t seen = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", t->host_pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		verify_thread(v, t, (pid_t)atoi(de->d_name));
		seen++;
	}
	if (d)
		closedir(d);
	if (seen != t->core->n_threads)
		differ(v, "%zu threads, dumped %zu", seen, t->core->n_threads);
}

/* ------------------------------ cgroups ------------------------------ */

static void verify_thread_cgroups(struct verify *v, const struct restore_ctx *c,
				  const struct rst_task *t, pid_t host_tid)
{
	int32_t tid = proc_ns_tid(t->host_pid, host_tid);
	const CgroupSetEntry *s = cg_set_of(c->cgroups, t->te->pid, (uint32_t)tid);
	struct cg_line now[CG_MAX_HIER];
	int n = cg_read_lines(t->host_pid, host_tid, now);
	if (!s) {
		differ(v, "thread %d: no cgroups in the image", tid);
		return;
	}
	for (size_t i = 0; i < s->n_members; i++) {
		const char *hier = s->members[i]->hierarchy, *is = NULL;
		char want[4096];
		cg_target_path(c, hier, s->members[i]->path, want, sizeof(want));
		for (int k = 0; k < n; k++)
			if (cg_same_hier(now[k].hier, hier))
				is = now[k].path;
		if (!is && !strcmp(want, "/"))
			continue; /* the root of a hierarchy this node does not have */
		if (!is || strcmp(is, want))
			differ(v, "thread %d: cgroup %s:%s, dumped %s (restored to %s)", tid,
			       cg_hier_name(hier), is ? is : "(no such hierarchy here)",
			       s->members[i]->path, want);
	}
}

static void verify_cgroups(struct verify *v, const struct restore_ctx *c, const struct rst_task *t)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", t->host_pid);
	DIR *d = c->cgroups && c->opts->cgroups != CKPT_CGROUPS_IGNORE ? opendir(path) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			verify_thread_cgroups(v, c, t, (pid_t)atoi(de->d_name));
	if (d)
		closedir(d);
}

/* Ignored and caught signals, as /proc/PID/status shows them. */
static void verify_dispositions(struct verify *v, const struct rst_task *t)
{
	char path[64];
	uint64_t ign = 0, cgt = 0, want_ign = 0, want_cgt = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", t->host_pid);
	if (status_hex(path, "SigIgn", &ign) || status_hex(path, "SigCgt", &cgt))
		return;
	for (size_t i = 0; i < t->core->n_sigactions; i++) {
		const SigactionEntry *s = t->core->sigactions[i];
		if (s->sig < 1 || s->sig > 64)
			continue;
		uint64_t bit = 1ULL << (s->sig - 1);
		if (s->handler == (uint64_t)(uintptr_t)SIG_IGN)
			want_ign |= bit;
		else if (s->handler != (uint64_t)(uintptr_t)SIG_DFL)
			want_cgt |= bit;
	}
	SAME(v, "ignored signals", (unsigned long long)ign, (unsigned long long)want_ign, "%#llx");
	SAME(v, "caught signals", (unsigned long long)cgt, (unsigned long long)want_cgt, "%#llx");
}

/* ------------------------------- memory ------------------------------ */

static int is_file_kind(const VmaEntry *e)
{
	return e->path && e->kind != VMA_KIND__VMA_ANON_PRIVATE &&
	       e->kind != VMA_KIND__VMA_ANON_SHARED;
}

/* Whether b continues a with the same attributes (the kernel may merge
 * two such VMAs on restore that the dump saw apart). */
static int continues(const VmaEntry *a, const VmaEntry *b)
{
	if (a->end != b->start || a->prot != b->prot || a->flags != b->flags ||
	    a->kind != b->kind || a->advice != b->advice || !!a->name != !!b->name ||
	    (a->name && strcmp(a->name, b->name)) || a->kind == VMA_KIND__VMA_ANON_SHARED)
		return 0;
	if (!is_file_kind(a))
		return 1;
	return !strcmp(a->path, b->path) && a->pgoff + (a->end - a->start) == b->pgoff;
}

/* VMAs with adjacent equals joined, in the arena. */
static size_t joined(struct arena *a, VmaEntry *const *in, size_t n, VmaEntry ***out)
{
	VmaEntry **v = arena_alloc(a, (n + 1) * sizeof(*v));
	size_t k = 0;
	if (!v)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (k && continues(v[k - 1], in[i])) {
			VmaEntry *copy = arena_alloc(a, sizeof(*copy));
			if (!copy)
				return 0;
			*copy = *v[k - 1];
			copy->end = in[i]->end;
			v[k - 1] = copy;
			continue;
		}
		v[k++] = in[i];
	}
	*out = v;
	return k;
}

static int same_vma(const VmaEntry *n, const VmaEntry *w)
{
	if (n->start != w->start || n->end != w->end || n->prot != w->prot ||
	    n->flags != w->flags || n->kind != w->kind || n->advice != w->advice)
		return 0;
	if (!is_file_kind(w))
		return 1;
	return n->path && !strcmp(n->path, w->path) && n->pgoff == w->pgoff;
}

static void vma_words(const VmaEntry *e, char *buf, size_t len)
{
	snprintf(buf, len, "%#llx-%#llx prot %u flags %#x kind %d advice %#x%s%s",
		 (unsigned long long)e->start, (unsigned long long)e->end, e->prot, e->flags,
		 (int)e->kind, e->advice, e->path ? " " : "", e->path ? e->path : "");
}

static void verify_vmas(struct verify *v, const MmEntry *now, const MmEntry *was)
{
	VmaEntry **n = NULL, **w = NULL;
	size_t nn = joined(&v->a, now->vmas, now->n_vmas, &n);
	size_t nw = joined(&v->a, was->vmas, was->n_vmas, &w);
	char a[512], b[512];
	for (size_t i = 0; i < nn || i < nw; i++) {
		if (i < nn && i < nw && same_vma(n[i], w[i]))
			continue;
		if (i < nn)
			vma_words(n[i], a, sizeof(a));
		if (i < nw)
			vma_words(w[i], b, sizeof(b));
		differ(v, "mapping %zu: %s, dumped %s", i, i < nn ? a : "none",
		       i < nw ? b : "none");
		return; /* the rest would all differ */
	}
}

/* Guard pages as one ascending list of runs (VMAs may join); in the arena. */
static size_t guard_runs(struct arena *a, const MmEntry *mm, uint64_t **out)
{
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		cap += mm->vmas[i]->n_guards;
	uint64_t *r = arena_alloc(a, (cap + 1) * 2 * sizeof(*r));
	if (!r)
		return 0;
	for (size_t i = 0; i < mm->n_vmas; i++)
		for (size_t j = 0; j < mm->vmas[i]->n_guards; j++) {
			const VmaGuardEntry *g = mm->vmas[i]->guards[j];
			if (n && r[2 * n - 1] == g->start) {
				r[2 * n - 1] = g->end;
				continue;
			}
			r[2 * n] = g->start;
			r[2 * n + 1] = g->end;
			n++;
		}
	*out = r;
	return n;
}

static void verify_guards(struct verify *v, const MmEntry *now, const MmEntry *was)
{
	uint64_t *n = NULL, *w = NULL;
	size_t nn = guard_runs(&v->a, now, &n), nw = guard_runs(&v->a, was, &w);
	for (size_t i = 0; i < nn || i < nw; i++) {
		if (i < nn && i < nw && n[2 * i] == w[2 * i] && n[2 * i + 1] == w[2 * i + 1])
			continue;
		if (i < nw)
			differ(v, "guard pages %#llx-%#llx: %s", (unsigned long long)w[2 * i],
			       (unsigned long long)w[2 * i + 1], i < nn ? "moved" : "missing");
		else
			differ(v, "guard pages %#llx-%#llx: not in the dump",
			       (unsigned long long)n[2 * i], (unsigned long long)n[2 * i + 1]);
		return;
	}
}

static void verify_mm(struct verify *v, const struct rst_task *t)
{
	MmEntry now = MM_ENTRY__INIT;
	const MmEntry *was = t->mm;
	if (!was)
		return;
	if (mm_read_proc(&v->a, t->host_pid, &now)) {
		differ(v, "its mappings cannot be read");
		return;
	}
	verify_vmas(v, &now, was);
	verify_guards(v, &now, was);
#define MM_FIELD(f) SAME(v, #f, (unsigned long long)now.f, (unsigned long long)was->f, "%#llx")
	MM_FIELD(start_code);
	MM_FIELD(end_code);
	MM_FIELD(start_data);
	MM_FIELD(end_data);
	MM_FIELD(start_stack);
	MM_FIELD(start_brk);
	MM_FIELD(arg_start);
	MM_FIELD(arg_end);
	MM_FIELD(env_start);
	MM_FIELD(env_end);
#undef MM_FIELD
}

/* ------------------------------- files ------------------------------- */

struct fdinfo_now {
	uint32_t flags;
	uint64_t pos;
	long nspid;        /* a pidfd's process, innermost number; -1: dead */
	char lease[2][16]; /* a lease's state and type words, "" without */
};

/* NSpid:	4123	12 (the last: as the tree numbers it) */
static long last_number(const char *s)
{
	const char *last = strrchr(s, '\t');
	return strtol(last ? last + 1 : s, NULL, 10);
}

static int read_fdinfo(pid_t pid, uint32_t fd, struct fdinfo_now *fi)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%u", pid, fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "flags:", 6))
			fi->flags = (uint32_t)strtoul(line + 6, NULL, 8);
		else if (!strncmp(line, "pos:", 4))
			fi->pos = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "NSpid:", 6))
			fi->nspid = last_number(line + 6);
		else if (!strncmp(line, "lock:", 5) && !strstr(line, "->"))
			sscanf(line, "lock: %*u: LEASE %15s %15s", fi->lease[0], fi->lease[1]);
	}
	fclose(f);
	return 0;
}

/* A pidfd names the process it named, a lease is as it was. */
static void verify_pidfd_lease(struct verify *v, const FdEntry *fe, const FileEntry *e,
			       const struct fdinfo_now *fi)
{
	static const char *const type[] = { "READ", "WRITE", "UNLCK" };
	if (e->type == FILE_TYPE__FILE_PIDFD && e->pidfd && fi->nspid != e->pidfd->pid)
		differ(v, "fd %u: pidfd of pid %ld, dumped %d", fe->fd, fi->nspid, e->pidfd->pid);
	const FileLockEntry *l = NULL;
	for (size_t i = 0; i < e->n_locks; i++)
		if (e->locks[i]->kind == FILE_LOCK_KIND__LOCK_LEASE && e->locks[i]->lease_type < 3)
			l = e->locks[i];
	const char *state = l ? (l->breaking ? "BREAKING" : "ACTIVE") : "";
	const char *want = l ? type[l->lease_type] : "";
	if (strcmp(fi->lease[0], state) || strcmp(fi->lease[1], want))
		differ(v, "fd %u: lease \"%s %s\", dumped \"%s %s\"", fe->fd, fi->lease[0],
		       fi->lease[1], state, want);
}

static const FileEntry *file_by_id(const struct restore_files *rf, uint32_t id)
{
	for (size_t i = 0; i < rf->nr_files; i++)
		if (rf->files[i]->id == id)
			return rf->files[i];
	return NULL;
}

static size_t count_fds(pid_t pid)
{
	char path[64];
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void verify_tcp(struct verify *v, pid_t pid, const FdEntry *fe, const InetSkEntry *s)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int sk = files_getfd(pid, (int)fe->fd);
	int ret = sk < 0 ? sk : getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -errno : 0;
	if (sk >= 0)
		close(sk);
	int closed = v->tcp_close && s->state != TCP_SYN_SENT;
	if (ret)
		differ(v, "fd %u: TCP state unreadable: %s", fe->fd, strerror(-ret));
	else if (closed && ti.tcpi_state != TCP_CLOSE)
		differ(v, "fd %u: TCP state %s, not closed (--tcp-close)", fe->fd,
		       tcp_state_name(ti.tcpi_state));
	else if (!closed && !tcp_state_follows(s->state, ti.tcpi_state))
		differ(v, "fd %u: TCP state %s, dumped %s", fe->fd, tcp_state_name(ti.tcpi_state),
		       tcp_state_name(s->state));
}

struct sockopt_diff {
	struct verify *v;
	uint32_t fd;
};

static void sockopt_differs(void *arg, const char *name, const char *now, const char *was)
{
	struct sockopt_diff *d = arg;
	differ(d->v, "fd %u: socket option %s %s, dumped %s", d->fd, name, now, was);
}

/* The options the restore set (sk-opts.c's table) read again from the
 * restored socket.  A unix socket's come in the same view (sk-opts.h). */
static void verify_sockopts(struct verify *v, pid_t pid, const FdEntry *fe, const FileEntry *e)
{
	InetSkEntry view = INET_SK_ENTRY__INIT;
	if (e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk) {
		view = *e->inet_sk;
	} else if (e->type == FILE_TYPE__FILE_UNIX_SK && e->unix_sk) {
		view.family = AF_UNIX;
		view.type = e->unix_sk->type;
		view.state = e->unix_sk->state;
		view.n_opts = e->unix_sk->n_opts;
		view.opts = e->unix_sk->opts;
	}
	int other = e->type == FILE_TYPE__FILE_PACKET_SK || e->type == FILE_TYPE__FILE_NETLINK_SK;
	if (!view.n_opts && !other)
		return; /* not a socket, or an image from before the table */
	int sk = files_getfd(pid, (int)fe->fd);
	if (sk < 0) {
		differ(v, "fd %u: socket options unreadable: %s", fe->fd, strerror(-sk));
		return;
	}
	struct sockopt_diff d = { v, fe->fd };
	if (e->type == FILE_TYPE__FILE_PACKET_SK && e->packet_sk)
		packet_sk_verify(sk, e->packet_sk, sockopt_differs, &d);
	else if (e->type == FILE_TYPE__FILE_NETLINK_SK && e->netlink_sk)
		netlink_sk_verify(sk, e->netlink_sk, sockopt_differs, &d);
	else
		sk_opts_verify(sk, &view, sockopt_differs, &d);
	/* its kind (a raw socket of the same protocol ...) and, for a raw,
	 * ping or UDP-Lite socket, its local address (sk-raw.c) */
	if (e->type == FILE_TYPE__FILE_INET_SK)
		inet_kind_verify(sk, &view, sockopt_differs, &d);
	close(sk);
}

static void verify_fd(struct verify *v, pid_t pid, const FdEntry *fe, const FileEntry *e)
{
	struct fdinfo_now fi = { 0, 0, 0, { "", "" } };
	/* Flags of the open itself, which change nothing after it: the
	 * kernel's O_LARGEFILE (glibc's is 0 here), which open() sets on
	 * 64-bit and other ways of making an fd do not; O_NOFOLLOW, which
	 * shm_open passes and a file reopened through /proc/self/fd cannot
	 * have; O_TMPFILE (with its O_DIRECTORY) of a regular file, which
	 * says how it was made and which no reopen can give (memfd.c). */
	uint32_t ignore = 0100000 | O_NOFOLLOW | O_CLOEXEC;
	if (e->has_mode && S_ISREG(e->mode))
		ignore |= O_TMPFILE;
	if (read_fdinfo(pid, fe->fd, &fi)) {
		differ(v, "fd %u: not open", fe->fd);
		return;
	}
	if ((fi.flags & ~ignore) != (e->flags & ~ignore))
		differ(v, "fd %u: flags %#o, dumped %#o", fe->fd, fi.flags & ~ignore,
		       e->flags & ~ignore);
	if (!!(fi.flags & O_CLOEXEC) != !!fe->cloexec)
		differ(v, "fd %u: close-on-exec %d, dumped %d", fe->fd, !!(fi.flags & O_CLOEXEC),
		       (int)fe->cloexec);
	if (((e->type == FILE_TYPE__FILE_REG && e->has_mode && S_ISREG(e->mode)) ||
	     (e->type == FILE_TYPE__FILE_PROC && e->proc && !e->proc->at_end)) &&
	    e->has_pos && fi.pos != e->pos)
		differ(v, "fd %u: offset %llu, dumped %llu", fe->fd, (unsigned long long)fi.pos,
		       (unsigned long long)e->pos);
	verify_pidfd_lease(v, fe, e, &fi);
	/* (a peer dropped by --skip-in-flight may have reset it already) */
	if (e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk && tcp_is_conn(e->inet_sk) &&
	    !e->inet_sk->peer_dropped)
		verify_tcp(v, pid, fe, e->inet_sk);
	verify_sockopts(v, pid, fe, e);
}

/* The first fd seen of each description, to compare the others with. */
struct first_fd {
	uint32_t id;
	pid_t pid;
	uint32_t fd;
};

static void verify_shared(struct verify *v, struct first_fd *seen, size_t *nr, pid_t pid,
			  const FdEntry *fe)
{
	for (size_t i = 0; i < *nr; i++) {
		if (seen[i].id != fe->file_id)
			continue;
		if (syscall(SYS_kcmp, seen[i].pid, pid, KCMP_FILE, seen[i].fd, fe->fd) != 0)
			differ(v, "fd %u: no longer shares its open file with pid %d fd %u",
			       fe->fd, seen[i].pid, seen[i].fd);
		return;
	}
	seen[(*nr)++] = (struct first_fd){ fe->file_id, pid, fe->fd };
}

static const struct task_fds *fds_of(const struct restore_files *rf, pid_t pid)
{
	for (size_t i = 0; i < rf->nr_tasks; i++)
		if (rf->tasks[i].pid == pid)
			return &rf->tasks[i];
	return NULL;
}

static const struct rst_task *live_task(const struct restore_ctx *c, uint32_t pid)
{
	for (size_t j = 0; j < c->nr_tasks; j++)
		if (c->tasks[j].te->pid == pid && !restore_task_zombie(&c->tasks[j]))
			return &c->tasks[j];
	return NULL;
}

/* Its fd table (fs): the one of the process it shared it with
 * (fdtable.c), or its own, not its parent's. */
static void verify_sharing(struct verify *v, const struct restore_ctx *c, size_t idx, int type)
{
	const TaskEntry *te = c->tasks[idx].te;
	int fs = type == KCMP_FS;
	int has = fs ? te->has_fs_shared_with : te->has_files_shared_with;
	uint32_t with = fs ? te->fs_shared_with : te->files_shared_with;
	const struct rst_task *o = live_task(c, has ? with : te->ppid);
	const char *what = fs ? "cwd, root and umask" : "fd table";
	if (!o)
		return;
	int shared = syscall(SYS_kcmp, o->host_pid, c->tasks[idx].host_pid, type, 0, 0) == 0;
	if (shared && !has)
		differ(v, "shares its parent's %s, dumped with its own", what);
	else if (!shared && has)
		differ(v, "does not share the %s of pid %u, as dumped", what, with);
}

static void verify_fds(struct verify *v, const struct restore_ctx *c, size_t idx,
		       struct first_fd *seen, size_t *nr_seen)
{
	/* a shared table: the owner's list, each fd compared again here */
	const struct task_fds *tf = fds_of(&c->files, (pid_t)fdtable_pid(c->tasks[idx].te));
	pid_t pid = c->tasks[idx].host_pid;
	if (!tf)
		return;
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = file_by_id(&c->files, tf->fds[i]->file_id);
		if (!e || files_inherited(&c->files, e))
			continue;
		verify_fd(v, pid, tf->fds[i], e);
		verify_shared(v, seen, nr_seen, pid, tf->fds[i]);
	}
	size_t open = count_fds(pid);
	if (open != tf->nr)
		differ(v, "%zu fds open, dumped %zu", open, tf->nr);
}

/* The controlling terminal the images give session leader `pid`: 1 with
 * *nr the device (tty_nr encoding) or *pty set, 0 when none. */
static int image_ctty(const struct restore_files *rf, uint32_t pid, uint32_t *nr, int *pty)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type == FILE_TYPE__FILE_REG && e->has_ctty_sid && e->ctty_sid == pid) {
			*nr = tty_encode_dev((dev_t)e->rdev);
			return 1;
		}
		if (e->type == FILE_TYPE__FILE_TTY && e->tty->kind == TTY_KIND__TTY_PTY_MASTER &&
		    e->tty->has_ctty_sid && e->tty->ctty_sid == pid) {
			*pty = 1;
			return 1;
		}
	}
	return 0;
}

#define PTS_MAJOR 136

static void verify_ctty(struct verify *v, const struct restore_ctx *c, const struct rst_task *t)
{
	struct stat_tty s;
	uint32_t want = 0;
	int pty = 0;
	if (t->te->sid != t->te->pid || tty_read_stat(t->host_pid, &s))
		return;
	int has = image_ctty(&c->files, t->te->pid, &want, &pty);
	unsigned maj = (s.tty_nr >> 8) & 0xfff, min = (s.tty_nr & 0xff) | ((s.tty_nr >> 12) & 0xfff00);
	if (!has && s.tty_nr)
		differ(v, "has controlling terminal %u:%u, dumped none", maj, min);
	else if (has && pty && maj != PTS_MAJOR)
		differ(v, "has controlling terminal %u:%u, dumped a pty of the tree", maj, min);
	else if (has && !pty && s.tty_nr != want)
		differ(v, "has controlling terminal %u:%u, dumped %u:%u", maj, min,
		       (want >> 8) & 0xfff, (want & 0xff) | ((want >> 12) & 0xfff00));
}

/* -------------------------------------------------------------------- */

static size_t total_fds(const struct restore_ctx *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nr_tasks; i++)
		n += c->files.tasks[i].nr;
	return n;
}

/* Every process of the tree, its differences into v. */
static int check_tree(const struct restore_ctx *c, struct verify *v)
{
	struct first_fd *seen = calloc(total_fds(c) + 1, sizeof(*seen));
	size_t nr_seen = 0;
	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_tasks; i++) {
		const struct rst_task *t = &c->tasks[i];
		if (restore_task_zombie(t) || restore_task_proxy(t))
			continue;
		v->pid = t->te->pid;
		verify_core(v, t);
		verify_threads(v, t);
		verify_dispositions(v, t);
		verify_mm(v, t);
		verify_sharing(v, c, i, KCMP_FILES);
		verify_sharing(v, c, i, KCMP_FS);
		verify_fds(v, c, i, seen, &nr_seen);
		verify_ctty(v, c, t);
		verify_cgroups(v, c, t);
	}
	free(seen);
	return 0;
}

int restore_verify(const struct restore_ctx *c)
{
	struct verify *v = calloc(1, sizeof(*v));
	if (v)
		v->tcp_close = c->opts->tcp_close;
	int ret = v ? check_tree(c, v) : -ENOMEM;
	if (!ret && v->diffs == 1)
		pr_err("restore --verify: %s: the restored tree is killed", v->lines[0]);
	for (int i = 0; !ret && v->diffs > 1 && i < v->diffs && i < MAX_LINES; i++)
		pr_err("verify: %s", v->lines[i]);
	if (!ret && v->diffs > 1)
		pr_err("restore --verify: %d differences from the images%s: the restored tree is "
		       "killed",
		       v->diffs, v->diffs > MAX_LINES ? " (the first shown)" : "");
	if (!ret && v->diffs)
		ret = -ESTALE;
	if (v)
		arena_free(&v->a);
	free(v);
	return ret;
}
