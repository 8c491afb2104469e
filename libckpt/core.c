/*
 * core: dump and restore of a process's CPU and kernel state other than
 * memory and files.  Registers were read by freeze; what only the task
 * itself can tell (sigactions, brk, pdeathsig, clear-tid addresses,
 * altstacks) comes from the parasite; the rest from /proc and ptrace.
 * Timers, identity beyond uids/gids and scheduling are in taskstate.c
 * (dump) and restore-state.c (restore), called from here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/ptrace.h>

#include "arena.h"
#include "core.h"
#include "ghost.h"
#include "infect.h"
#include "track.h"
#include "snapshot.h"
#include "aio.h"
#include "log.h"
#include "phase.h"
#include "proc.h"
#include "procfile.h"
#include "taskstate.h"

#define MAX_PENDING 256

/* ---- creds, umask, rlimits from /proc ---- */

static int parse_ids(pid_t pid, const char *key, uint32_t out[4])
{
	char buf[256];
	int ret = proc_status_field(pid, key, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%u %u %u %u", &out[0], &out[1], &out[2], &out[3]) != 4)
		return -EINVAL;
	return 0;
}

static uint64_t status_hex(pid_t pid, const char *key)
{
	char buf[64];
	if (proc_status_field(pid, key, buf, sizeof(buf)))
		return 0;
	return strtoull(buf, NULL, 16);
}

static int dump_creds(struct arena *a, pid_t pid, CredsEntry *c)
{
	uint32_t u[4], g[4];
	char buf[4096];
	int ret;

	if ((ret = parse_ids(pid, "Uid", u)) || (ret = parse_ids(pid, "Gid", g))) {
		pr_err("pid %d: cannot read credentials: %s", pid, strerror(-ret));
		return ret;
	}
	c->uid = u[0]; c->euid = u[1]; c->suid = u[2]; c->fsuid = u[3];
	c->gid = g[0]; c->egid = g[1]; c->sgid = g[2]; c->fsgid = g[3];
	c->cap_eff = status_hex(pid, "CapEff");
	c->cap_prm = status_hex(pid, "CapPrm");
	c->cap_inh = status_hex(pid, "CapInh");
	c->cap_bnd = status_hex(pid, "CapBnd");

	uint32_t *groups = arena_alloc(a, NGROUPS_MAX * sizeof(*groups));
	size_t n = 0;
	if (!groups)
		return -ENOMEM;
	if (!proc_status_field(pid, "Groups", buf, sizeof(buf))) {
		char *save, *tok = strtok_r(buf, " \t", &save);
		for (; tok && n < NGROUPS_MAX; tok = strtok_r(NULL, " \t", &save))
			groups[n++] = (uint32_t)strtoul(tok, NULL, 10);
	}
	c->groups = groups;
	c->n_groups = n;
	return 0;
}

static uint64_t parse_limit(const char *s)
{
	if (!strncmp(s, "unlimited", 9))
		return RLIM_INFINITY;
	return strtoull(s, NULL, 10);
}

struct limits_ctx {
	RlimitEntry *ents;
	RlimitEntry **ptrs;
	size_t n;
};

/* /proc/PID/limits lists the resources in RLIMIT_* order after a header;
 * the soft and hard values start at fixed columns 26 and 47. */
static int parse_limits_line(char *line, void *arg)
{
	struct limits_ctx *c = arg;
	if (!strncmp(line, "Limit", 5) || strlen(line) < 48 || c->n >= RLIM_NLIMITS)
		return 0;
	RlimitEntry *e = &c->ents[c->n];
	rlimit_entry__init(e);
	e->resource = (uint32_t)c->n;
	e->cur = parse_limit(line + 26);
	e->max = parse_limit(line + 47);
	c->ptrs[c->n] = e;
	c->n++;
	return 0;
}

static int dump_rlimits(pid_t pid, CoreEntry *core, struct limits_ctx *c)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	int ret = proc_each_line(path, parse_limits_line, c);
	if (ret < 0) {
		pr_err("pid %d: cannot read %s: %s", pid, path, strerror(-ret));
		return ret;
	}
	core->rlimits = c->ptrs;
	core->n_rlimits = c->n;
	return 0;
}

/* ---- per-thread state through ptrace ---- */

static int peek_pending(struct arena *a, pid_t tid, int shared, SiginfoEntry ***out, size_t *nr)
{
	static siginfo_t infos[MAX_PENDING];
	struct ptrace_peeksiginfo_args args = {
		.off = 0, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = MAX_PENDING,
	};
	long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, infos);
	if (n < 0) {
		pr_err("pid %d: cannot read pending signals: %s", tid, strerror(errno));
		return -errno;
	}
	*nr = 0;
	*out = NULL;
	if (n == 0)
		return 0;
	SiginfoEntry **arr = arena_alloc(a, (size_t)n * sizeof(*arr));
	SiginfoEntry *ents = arena_alloc(a, (size_t)n * sizeof(*ents));
	uint8_t *raw = arena_alloc(a, (size_t)n * sizeof(siginfo_t));
	if (!arr || !ents || !raw)
		return -ENOMEM;
	memcpy(raw, infos, (size_t)n * sizeof(siginfo_t));
	for (long i = 0; i < n; i++) {
		siginfo_entry__init(&ents[i]);
		ents[i].siginfo.data = raw + i * sizeof(siginfo_t);
		ents[i].siginfo.len = sizeof(siginfo_t);
		arr[i] = &ents[i];
	}
	*out = arr;
	*nr = (size_t)n;
	return 0;
}

/* What ptrace tells of a stopped thread; must run while no parasite runs
 * in it. */
static int dump_thread_ptrace(struct arena *a, const struct thread_regs *t, ThreadCoreEntry *tc)
{
	pid_t tid = t->tid;
	thread_core_entry__init(tc);
	tc->tid = (uint32_t)t->vtid;
	tc->gpregs.data = (uint8_t *)&t->regs;
	tc->gpregs.len = sizeof(t->regs);
	tc->xstate.data = t->xstate;
	tc->xstate.len = t->xstate_len;
	tc->blocked = t->sigmask;

	void *head = NULL;
	size_t len = 0;
	if (syscall(SYS_get_robust_list, tid, &head, &len)) {
		pr_err("pid %d: get_robust_list: %s", tid, strerror(errno));
		return -errno;
	}
	tc->robust_list = (uint64_t)(uintptr_t)head;
	tc->robust_len = len;

	struct ptrace_rseq_configuration rseq;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rseq), &rseq) == sizeof(rseq) &&
	    rseq.rseq_abi_pointer) {
		tc->has_rseq_addr = tc->has_rseq_len = tc->has_rseq_sig = 1;
		tc->rseq_addr = rseq.rseq_abi_pointer;
		tc->rseq_len = rseq.rseq_abi_size;
		tc->rseq_sig = rseq.signature;
	}
	return peek_pending(a, tid, 0, &tc->pending, &tc->n_pending);
}

/* What only the thread itself can tell, through the parasite. */
static int dump_thread_parasite(struct infect_ctl *ctl, int idx, ThreadCoreEntry *tc)
{
	int ret = infect_get_tid_address(ctl, idx, &tc->clear_tid_addr);
	if (ret)
		return ret;
	uint64_t sp, size;
	uint32_t flags;
	ret = infect_get_sigaltstack(ctl, idx, &sp, &size, &flags);
	if (ret)
		return ret;
	tc->has_altstack_sp = tc->has_altstack_size = tc->has_altstack_flags = 1;
	tc->altstack_sp = sp;
	tc->altstack_size = size;
	tc->altstack_flags = flags;
	return 0;
}

/* ---- sigactions ---- */

static int dump_sigactions(struct infect_ctl *ctl, CoreEntry *core, SigactionEntry *ents,
			   SigactionEntry **ptrs)
{
	struct parasite_sigaction sa[64];
	int ret = infect_get_sigactions(ctl, sa);
	if (ret)
		return ret;
	size_t n = 0;
	for (int i = 0; i < 64; i++) {
		if (!sa[i].handler && !sa[i].flags && !sa[i].mask)
			continue; /* SIG_DFL, nothing to restore */
		sigaction_entry__init(&ents[n]);
		ents[n].sig = (uint32_t)i + 1;
		ents[n].handler = sa[i].handler;
		ents[n].flags = sa[i].flags;
		ents[n].restorer = sa[i].restorer;
		ents[n].mask = sa[i].mask;
		ptrs[n] = &ents[n];
		n++;
	}
	core->sigactions = ptrs;
	core->n_sigactions = n;
	return 0;
}

/* An fd of the task on the directory `st` (its removed cwd), or -1. */
static int fd_on_dir(pid_t pid, const struct stat *st)
{
	char path[64];
	struct stat fst;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	int found = -1;
	while (d && found < 0 && (de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		if (!stat(path, &fst) && S_ISDIR(fst.st_mode) && fst.st_dev == st->st_dev &&
		    fst.st_ino == st->st_ino)
			found = fd;
	}
	if (d)
		closedir(d);
	return found;
}

/* A cwd removed while the task was in it (fstat: nlink 0; not the name,
 * which may really end " (deleted)"): what the restore needs to enter it. */
static int dump_removed_cwd(pid_t pid, CoreEntry *core)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	if (stat(path, &st) < 0) {
		pr_err("pid %d: cwd %s: %s", pid, core->cwd, strerror(errno));
		return -errno;
	}
	if (st.st_nlink != 0)
		return 0;
	core->has_cwd_removed_mode = core->has_cwd_uid = core->has_cwd_gid = 1;
	core->has_cwd_ino = core->has_cwd_fd = 1;
	core->cwd_removed_mode = st.st_mode;
	core->cwd_uid = st.st_uid;
	core->cwd_gid = st.st_gid;
	core->cwd_ino = st.st_ino;
	core->cwd_fd = fd_on_dir(pid, &st);
	return 0;
}

static int dump_fs(struct arena *a, pid_t pid, CoreEntry *core)
{
	char buf[PATH_MAX], val[32];
	int ret;

	if ((ret = proc_readlink(pid, "cwd", buf, sizeof(buf)))) {
		pr_err("pid %d: cannot read cwd: %s", pid, strerror(-ret));
		return ret;
	}
	core->cwd = arena_strdup(a, buf);
	pid_t dead = proc_dead_dir(pid, buf);
	core->has_cwd_proc_dead = dead > 0;
	core->cwd_proc_dead = dead > 0 ? (uint32_t)dead : 0;
	if (core->cwd && !dead && (ret = dump_removed_cwd(pid, core)))
		return ret;
	if ((ret = proc_readlink(pid, "root", buf, sizeof(buf)))) {
		pr_err("pid %d: cannot read root: %s", pid, strerror(-ret));
		return ret;
	}
	core->root = arena_strdup(a, buf);
	if ((ret = proc_status_field(pid, "Umask", val, sizeof(val)))) {
		pr_err("pid %d: cannot read umask: %s", pid, strerror(-ret));
		return ret;
	}
	core->umask = (uint32_t)strtoul(val, NULL, 8);
	return core->cwd && core->root ? 0 : -ENOMEM;
}

/* What the parasite tells: sigactions, tid addresses, altstacks, brk. */
struct aio_scan {
	struct infect_ctl *ctl;
	pid_t pid;
	int err; /* logged already */
};

/* A ring mapping a fork left in the child has no context there (the
 * kernel does not copy contexts): made again, it would be one, and no
 * more the parent's ring.  Only the task itself can tell. */
static int check_aio_line(char *line, void *arg)
{
	struct aio_scan *s = arg;
	VmaEntry e = VMA_ENTRY__INIT;
	char perms[8];
	int pos = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*x %*s %*u %n", &e.start, &e.end, perms,
		   &pos) < 3 || !pos || perms[3] != 's' || strcmp(line + pos, "/[aio] (deleted)") ||
	    !aio_is_ring(s->pid, &e))
		return 0;
	int owned = infect_aio_owned(s->ctl, e.start);
	if (owned == 0)
		pr_err("pid %d: AIO ring at %" PRIx64 "-%" PRIx64 ": inherited across fork, the "
		       "context is its parent's: not supported",
		       s->pid, e.start, e.end);
	s->err = owned < 0 ? owned : owned ? 0 : -ENOTSUP;
	return s->err != 0;
}

/* Refuse, by name, AIO ring mappings that are no context of the task's
 * own (aio.c dumps the others with the memory). */
static int check_aio_rings(struct infect_ctl *ctl, pid_t pid)
{
	struct aio_scan s = { ctl, pid, 0 };
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int ret = proc_each_line(path, check_aio_line, &s);
	if (ret < 0)
		pr_err("pid %d: %s: %s", pid, path, strerror(-ret));
	return ret < 0 ? ret : s.err;
}

static int dump_from_parasite(struct arena *a, const struct frozen_task *task, CoreEntry *core,
			      uint64_t *brk, struct snapshot_set *snaps, struct track_state *ts,
			      int idx, uint64_t t_task)
{
	struct infect_ctl *ctl;
	SigactionEntry *sa = arena_alloc(a, 64 * sizeof(*sa));
	SigactionEntry **sap = arena_alloc(a, 64 * sizeof(*sap));
	ThreadCoreEntry *tc = arena_alloc(a, (size_t)task->nr_threads * sizeof(*tc));
	ThreadCoreEntry **tcp = arena_alloc(a, (size_t)task->nr_threads * sizeof(*tcp));
	struct parasite_misc misc;
	int ret = 0;

	if (!sa || !sap || !tc || !tcp)
		return -ENOMEM;
	for (int i = 0; !ret && i < task->nr_threads; i++) {
		ret = dump_thread_ptrace(a, &task->threads[i], &tc[i]);
		if (!ret)
			ret = dump_thread_sched(a, task->pid, task->threads[i].tid, &tc[i]);
		if (!ret)
			ret = dump_thread_seccomp(a, task->pid, &task->threads[i], i == 0, core, &tc[i]);
		tcp[i] = &tc[i];
	}
	uint64_t t = phase_add(CKPT_PHASE_TASK, t_task);
	if (ret || (ret = infect_start(task, &ctl)))
		return ret;
	t = phase_add(CKPT_PHASE_INFECT, t);
	ret = dump_sigactions(ctl, core, sa, sap);
	if (!ret)
		ret = infect_get_misc(ctl, &misc);
	if (!ret)
		ret = check_aio_rings(ctl, task->pid);
	if (!ret)
		ret = dump_task_parasite(a, ctl, task, core);
	for (int i = 0; !ret && i < task->nr_threads; i++)
		ret = dump_thread_parasite(ctl, i, &tc[i]);
	if (!ret) {
		core->threads = tcp;
		core->n_threads = (size_t)task->nr_threads;
		core->pdeathsig = (int32_t)misc.pdeathsig;
		*brk = misc.brk;
	}
	t = phase_add(CKPT_PHASE_PARASITE, t);
	/* tracking armed before the memory is read (track.c) */
	if (!ret && ts)
		track_arm_task(ts, idx, ctl);
	/* last: the task's memory as it is now, all else read */
	if (!ret && snaps)
		snapshot_take(snaps, idx, ctl, core->child_subreaper);
	t = phase_add(CKPT_PHASE_SNAPSHOT, t);
	int cret = infect_cure(ctl);
	phase_add(CKPT_PHASE_CURE, t);
	return ret ? ret : cret;
}

int core_read_proc(struct arena *a, pid_t pid, CoreEntry *core)
{
	CredsEntry *creds = arena_alloc(a, sizeof(*creds));
	struct limits_ctx lim = {
		.ents = arena_alloc(a, RLIM_NLIMITS * sizeof(RlimitEntry)),
		.ptrs = arena_alloc(a, RLIM_NLIMITS * sizeof(RlimitEntry *)),
	};
	if (!creds || !lim.ents || !lim.ptrs)
		return -ENOMEM;
	creds_entry__init(creds);
	core->creds = creds;
	int ret = dump_creds(a, pid, creds);
	if (!ret)
		ret = dump_rlimits(pid, core, &lim);
	if (!ret)
		ret = dump_fs(a, pid, core);
	return ret ? ret : read_task_status(pid, core);
}

int dump_core(struct img_set *set, const struct frozen_task *task, uint64_t *brk,
	      struct snapshot_set *snaps, struct track_state *ts, int idx)
{
	struct arena a = { 0 };
	CoreEntry core = CORE_ENTRY__INIT;
	CredsEntry creds = CREDS_ENTRY__INIT;
	struct limits_ctx lim = {
		.ents = arena_alloc(&a, RLIM_NLIMITS * sizeof(RlimitEntry)),
		.ptrs = arena_alloc(&a, RLIM_NLIMITS * sizeof(RlimitEntry *)),
	};
	char name[64];
	struct img *img;
	int ret = -ENOMEM;
	uint64_t t_task = now_ns();

	if (!lim.ents || !lim.ptrs)
		goto out;
	core.pid = (uint32_t)task->vpid;
	core.comm = (char *)task->comm;
	core.has_stopped = task->stopped;
	core.stopped = task->stopped;
	core.has_stop_signal = task->stopped && task->stop_signal;
	core.stop_signal = (uint32_t)task->stop_signal;
	core.creds = &creds;
	if ((ret = dump_creds(&a, task->pid, &creds)) || (ret = dump_rlimits(task->pid, &core, &lim)) ||
	    (ret = dump_fs(&a, task->pid, &core)) || (ret = dump_task_proc(&a, task, &core)))
		goto out;
	ret = peek_pending(&a, task->pid, 1, &core.shared_pending, &core.n_shared_pending);
	if (ret)
		goto out;
	if ((ret = dump_from_parasite(&a, task, &core, brk, snaps, ts, idx, t_task)))
		goto out;
	t_task = now_ns();

	snprintf(name, sizeof(name), "core-%d.img", task->vpid);
	if (!(ret = img_create(set, IMG_CORE, name, &img))) {
		ret = img_write(img, &core.base);
		int cret = img_close_write(img);
		ret = ret ? ret : cret;
	}
	phase_add(CKPT_PHASE_TASK, t_task);
out:
	arena_free(&a);
	return ret;
}

/* ---- restore side, run inside the restoring process ---- */

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

static int restore_sigactions(const CoreEntry *core)
{
	/* Only non-default actions are in the image: every other signal goes
	 * back to SIG_DFL first (our init in a new PID namespace, which the
	 * tree is cloned from, has handlers of its own). */
	struct kernel_sigaction dfl = { 0, 0, 0, 0 };
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	for (size_t i = 0; i < core->n_sigactions; i++) {
		const SigactionEntry *e = core->sigactions[i];
		struct kernel_sigaction ksa = { e->handler, e->flags, e->restorer, e->mask };
		if (e->sig == SIGKILL || e->sig == SIGSTOP || e->sig < 1 || e->sig > 64)
			continue;
		/* Raw syscall: glibc's sigaction() would put its own restorer in. */
		if (syscall(SYS_rt_sigaction, e->sig, &ksa, NULL, 8)) {
			pr_err("pid %d: signal %u: cannot restore its action: %s", core->pid, e->sig,
			       strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int restore_rlimits(const CoreEntry *core)
{
	for (size_t i = 0; i < core->n_rlimits; i++) {
		const RlimitEntry *e = core->rlimits[i];
		struct rlimit rl = { e->cur, e->max };
		if (e->resource >= RLIM_NLIMITS)
			continue;
		if (setrlimit((int)e->resource, &rl) == 0)
			continue;
		/* Raising a hard limit needs CAP_SYS_RESOURCE: keep what the
		 * restoring host allows and say so. */
		if (errno == EPERM) {
			pr_info("pid %d: rlimit %u: cannot raise to %llu/%llu here, keeping ours",
				core->pid, e->resource, (unsigned long long)e->cur,
				(unsigned long long)e->max);
			continue;
		}
		pr_err("pid %d: rlimit %u: %s", core->pid, e->resource, strerror(errno));
		return -errno;
	}
	return 0;
}

/* The removed cwd made again at its path, entered, and removed. */
static int make_removed_cwd(const CoreEntry *core)
{
	char path[PATH_MAX];
	size_t n = strlen(core->cwd), d = strlen(" (deleted)");
	if (n <= d || n - d >= sizeof(path) || strcmp(core->cwd + n - d, " (deleted)") ||
	    !S_ISDIR(core->cwd_removed_mode)) {
		pr_err("pid %d: cwd %s: bad record of a removed directory", core->pid, core->cwd);
		return -EINVAL;
	}
	memcpy(path, core->cwd, n - d);
	path[n - d] = '\0';
	struct ghost_node node = { path, core->cwd_ino, core->cwd_removed_mode, 0,
				   core->cwd_uid, core->cwd_gid, core->has_cwd_uid && core->has_cwd_gid, NULL };
	struct ghost_made g;
	int ret = ghost_make(&node, &g);
	if (ret)
		return ret;
	if (fchdir(g.fd) < 0) {
		ret = -errno;
		pr_err("pid %d: cwd %s: %s", core->pid, core->cwd, strerror(-ret));
	}
	int uret = ghost_unmake(&g);
	close(g.fd);
	if (uret && !ret)
		pr_err("pid %d: cwd %s: cannot remove it again: %s", core->pid, path, strerror(-uret));
	return ret ? ret : uret;
}

/* A removed cwd: the task's own fd on it (installed already), or made. */
static int restore_removed_cwd(const CoreEntry *core)
{
	struct stat st;
	if (core->has_cwd_fd && core->cwd_fd >= 0 && !fstat(core->cwd_fd, &st) &&
	    S_ISDIR(st.st_mode) && st.st_nlink == 0) {
		if (!fchdir(core->cwd_fd))
			return 0;
		pr_err("pid %d: cwd %s: fd %d: %s", core->pid, core->cwd, core->cwd_fd,
		       strerror(errno));
		return -errno;
	}
	return make_removed_cwd(core);
}

static int restore_cwd(const CoreEntry *core)
{
	if (core->has_cwd_proc_dead)
		return enter_dead_proc_dir(core->pid, core->cwd_proc_dead);
	if (core->has_cwd_removed_mode)
		return restore_removed_cwd(core);
	if (chdir(core->cwd)) {
		pr_err("pid %d: cwd %s: %s", core->pid, core->cwd, strerror(errno));
		return -errno;
	}
	return 0;
}

int restore_core_misc(const CoreEntry *core, int fs)
{
	/* The cwd as the dumper saw it, from the host's root; the root comes
	 * last (restore-mem.c enter_root), and chroot() leaves the cwd alone. */
	int ret = fs ? restore_cwd(core) : 0;
	if (ret)
		return ret;
	/* the fault: a umask restored wrong, for restore --verify to find */
	if (fs)
		umask((mode_t)(core->umask ^ (ckpt_test_fault("umask") ? 077 : 0)));
	ret = restore_rlimits(core);
	if (!ret)
		ret = restore_task_misc(core);
	return ret ? ret : restore_sigactions(core);
}
