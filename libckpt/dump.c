/*
 * dump: the dump sequence, a short list of steps each calling into a
 * resource file:
 *
 *   freeze the tree → per task: core (registers, parasite data), memory
 *   → files and pipes → inventory → commit the manifest → release the
 *   tree (kill it, leave it running or leave it stopped).
 *
 * Any failure before the commit removes what was written and releases
 * the tree untouched.
 *
 * A held dump (o->gate, a coordinated one: docs/coordinator.md) stops
 * twice for the caller: frozen with its refusals checked (the image
 * directory is named and created only then), and written with its
 * manifest before the tree is released; either gate may abort it.
 *
 * A tree in a network namespace other than ours (one restored into a
 * fresh namespace, restore-netns.c) is dumped from inside it: sock_diag
 * lists the sockets of its caller's namespace, and the parasite connects
 * to an abstract unix name, which lives in one.  The dump enters the
 * tree's namespace (setns; CAP_SYS_ADMIN, raised for the call) for the
 * tree's steps and leaves it before the commit; a check too (a user's
 * check, which holds no CAP_SYS_ADMIN, is then refused by name).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "priv.h"
#include "ckpt/ckpt.h"
#include "core.h"
#include "dump-set.h"
#include "files.h"
#include "freeze.h"
#include "inventory.pb-c.h"
#include "cpu.h"
#include "log.h"
#include "progress.h"
#include "mem.h"
#include "phase.h"
#include "step.h"
#include "proc.h"
#include "saved-files.h"
#include "snapshot.h"
#include "storage.h"
#include "sysvipc.h"
#include "taskstate.h"
#include "track.h"
#include "cgroup.h"
#include "fdtable.h"

int ckpt_verbose;

#define INVENTORY_VERSION IMG_FORMAT_VERSION /* the inventory carries the image format */

/* A step's client carries its step_entry; a step's task, its PMIx rank. */
static int inventory_step(const struct frozen_tree *tree, int i, TaskEntry *te, StepEntry *st)
{
	const struct frozen_task *ft = &tree->tasks[i];
	if (ft->step_client) {
		te->step = st;
		return step_entry_read(tree, i, st);
	}
	if (!ft->step)
		return 0;
	long rank = step_task_rank(ft->pid);
	if (rank < 0) {
		pr_err("pid %d: a task of step %d with no rank in its environment: not supported",
		       ft->pid, ft->step - 1);
		return -ENOTSUP;
	}
	te->has_step_rank = 1;
	te->step_rank = (uint32_t)rank;
	return 0;
}

/* What a step needs, before anything is read: the same as the inventory. */
static int check_steps(const struct frozen_tree *tree)
{
	int ret = 0;
	for (int i = 0; !ret && i < tree->nr_tasks; i++) {
		TaskEntry te = TASK_ENTRY__INIT;
		StepEntry st = STEP_ENTRY__INIT;
		ret = inventory_step(tree, i, &te, &st);
		step_entry_free(&st);
	}
	return ret;
}

static int write_inventory(struct img_set *set, const struct frozen_tree *tree)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	TaskEntry *tasks = calloc((size_t)tree->nr_tasks, sizeof(*tasks));
	TaskEntry **ptrs = calloc((size_t)tree->nr_tasks, sizeof(*ptrs));
	StepEntry *steps = calloc((size_t)tree->nr_tasks, sizeof(*steps));
	uint32_t *tids = NULL;
	CpuEntry cpu;
	struct utsname un;
	struct timespec ts;
	struct img *img;
	int ret = -ENOMEM, nr_tids = 0;

	for (int i = 0; i < tree->nr_tasks; i++)
		nr_tids += tree->tasks[i].nr_threads;
	tids = calloc((size_t)nr_tids + 1, sizeof(*tids));
	if (!tasks || !ptrs || !tids || !steps || (ret = cpu_record(tree, &cpu)))
		goto out_free;
	inv.cpu = &cpu;
	uname(&un);
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.format_version = INVENTORY_VERSION;
	inv.root_pid = (uint32_t)tree->tasks[0].vpid;
	inv.kernel = un.release;
	inv.hostname = un.nodename;
	inv.dump_time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	inv.pidns_depth = 0;
	uint32_t *t = tids;
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *ft = &tree->tasks[i];
		task_entry__init(&tasks[i]);
		/* the numbers the tree knows (freeze.h) */
		tasks[i].pid = (uint32_t)ft->vpid;
		tasks[i].ppid = (uint32_t)ft->vppid;
		tasks[i].pgid = (uint32_t)ft->vpgid;
		tasks[i].sid = (uint32_t)ft->vsid;
		tasks[i].comm = (char *)ft->comm;
		tasks[i].tids = t;
		/* a step's client comes back as one process, the proxy */
		tasks[i].n_tids = ft->step_client ? 1 : (size_t)ft->nr_threads;
		tasks[i].has_zombie = tasks[i].has_exit_status = ft->zombie;
		tasks[i].zombie = ft->zombie;
		tasks[i].exit_status = ft->exit_status;
		int owner = fdtable_owner(tree, i);
		tasks[i].has_files_shared_with = owner >= 0;
		tasks[i].files_shared_with = owner >= 0 ? (uint32_t)tree->tasks[owner].vpid : 0;
		owner = fdtable_fs_owner(tree, i);
		tasks[i].has_fs_shared_with = owner >= 0;
		tasks[i].fs_shared_with = owner >= 0 ? (uint32_t)tree->tasks[owner].vpid : 0;
		for (int j = 0; j < ft->nr_threads; j++)
			*t++ = (uint32_t)ft->threads[j].vtid;
		ptrs[i] = &tasks[i];
		if ((ret = inventory_step(tree, i, &tasks[i], &steps[i])))
			goto out;
	}
	inv.tasks = ptrs;
	inv.n_tasks = (size_t)tree->nr_tasks;
	if (!(ret = img_create(set, IMG_INVENTORY, "inventory.img", &img))) {
		ret = img_write(img, &inv.base);
		int cret = img_close_write(img);
		ret = ret ? ret : cret;
	}
out:
	cpu_record_free(&cpu);
out_free:
	for (int i = 0; steps && i < tree->nr_tasks; i++)
		step_entry_free(&steps[i]);
	free(steps);
	free(tasks);
	free(ptrs);
	free(tids);
	return ret;
}

struct uid_line {
	uid_t want;
	int ok;
};

static int parse_uid_line(char *line, void *arg)
{
	struct uid_line *u = arg;
	unsigned v[4];
	if (!strncmp(line, "Uid:", 4) && sscanf(line + 4, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) == 4)
		u->ok = v[0] == u->want && v[1] == u->want && v[2] == u->want && v[3] == u->want;
	return 0;
}

/* Checked on the frozen tree, so nothing can exec a set-id program
 * between the check and the dump: every task has all its uids `uid` and
 * is dumpable (the files in /proc/PID are owned by root otherwise; the
 * directory itself may still be the user's).  A zombie has no memory,
 * and the kernel makes the files of a task without one root's: its uids
 * alone say whose it is (a job's `sleep` that exited as the tree froze
 * refused the dump). */
static int check_owner(const struct frozen_tree *tree, uid_t uid)
{
	for (int i = 0; i < tree->nr_tasks; i++) {
		pid_t pid = tree->tasks[i].pid;
		char path[64];
		struct stat st;
		struct uid_line u = { uid, 0 };
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		if (!stat(path, &st) && (st.st_uid == uid || tree->tasks[i].zombie))
			proc_each_line(path, parse_uid_line, &u);
		if (!u.ok) {
			pr_err("pid %d: not owned by uid %u (or not dumpable)", pid, uid);
			return -EPERM;
		}
	}
	return 0;
}

static int netns_ino(pid_t pid, ino_t *ino)
{
	char path[64];
	struct stat st;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/net");
	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

static int set_netns(int fd)
{
	int raised = priv_raise(CAP_SYS_ADMIN);
	int ret = setns(fd, CLONE_NEWNET) ? -errno : 0;
	priv_lower(CAP_SYS_ADMIN, raised);
	return ret;
}

/* Into the tree's network namespace, if not ours: *back (our own, to
 * come back to) is then >= 0.  Every task must share it. */
static int enter_tree_netns(const struct frozen_tree *tree, int *back)
{
	ino_t self = 0, root = 0, other = 0;
	char path[64];
	int ret = netns_ino(0, &self);
	*back = -1;
	if (!ret)
		ret = netns_ino(tree->tasks[0].pid, &root);
	for (int i = 1; !ret && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie && !(ret = netns_ino(tree->tasks[i].pid, &other)) &&
		    other != root) {
			pr_err("pid %d: in another network namespace than the root %d: not supported",
			       tree->tasks[i].pid, tree->tasks[0].pid);
			return -ENOTSUP;
		}
	if (ret || root == self)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", tree->tasks[0].pid);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	*back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ret = ns < 0 || *back < 0 ? -errno : set_netns(ns);
	if (ns >= 0)
		close(ns);
	if (ret)
		pr_err("pid %d: cannot enter its network namespace: %s", tree->tasks[0].pid,
		       strerror(-ret));
	return ret;
}

static int leave_tree_netns(int back)
{
	if (back < 0)
		return 0;
	int ret = set_netns(back);
	close(back);
	if (ret)
		pr_err("cannot come back to our network namespace: %s", strerror(-ret));
	return ret;
}

/* What can refuse the dump (mappings, fds): a check runs it alone; a dump
 * asks it of the frozen tree before any memory is read, so that a refusal
 * does not first cost the job the whole memory copy (seconds at GiBs). */
static int check_refusals(const struct frozen_tree *tree, const struct ckpt_dump_opts *o)
{
	int ret = check_steps(tree);
	for (int i = 0; !ret && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie && !tree->tasks[i].step_client)
			ret = check_mm(tree->tasks[i].pid);
	for (int i = 0; !ret && o->only_uid_set && i < tree->nr_tasks; i++)
		if (!tree->tasks[i].zombie)
			ret = check_user_seccomp(&tree->tasks[i]);
	return ret ? ret : dump_files(NULL, tree, o);
}

/* Task i's memory: its pages wait in later[i] for the thaw when it has a
 * snapshot that holds them all, else are copied now. */
static int dump_task_mm(struct img_set *set, const struct frozen_task *t, int i, uint64_t brk,
			struct snapshot_set *snaps, const struct track_state *ts,
			struct mm_dump **later, struct mem_stats *ms)
{
	struct mm_dump *d;
	char *step_dir = t->step ? step_tmpdir(t->pid) : NULL;
	uint64_t t0 = now_ns();
	int ret = dump_mm_start(set, t->pid, t->vpid, brk, 0, step_dir, ms, &d);
	free(step_dir);
	t0 = phase_add(CKPT_PHASE_MM, t0);
	if (ret)
		return ret;
	mm_dump_set_track(d, track_task_of(ts, t->pid));
	struct snapshot *sn = snaps->snap ? &snaps->snap[i] : NULL;
	const char *gap = sn && sn->vpid ? mm_dump_snapshot_gap(d) : NULL;
	if (gap) {
		pr_info("pid %d: no snapshot: %s; memory copied while frozen", t->pid, gap);
		snapshot_release(sn);
	}
	if (sn && sn->vpid) {
		later[i] = d;
		snaps->taken++;
		return 0;
	}
	snaps->frozen += sn != NULL;
	ret = dump_mm_pages(set, d, 0, ms);
	phase_add(CKPT_PHASE_PAGES, t0);
	return ret;
}

/* Called with the refusals checked (check_refusals). */
static int dump_tree(struct img_set *set, const struct frozen_tree *tree,
		     const struct ckpt_dump_opts *o, struct ckpt_dump_stats *st,
		     struct snapshot_set *snaps, struct track_state *ts, struct mm_dump **later)
{
	int ret = 0;
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		struct mem_stats ms = { 0 };
		uint64_t brk = 0;
		if (t->zombie || t->step_client)
			continue; /* all of it is in the inventory (and fdinfo) */
		ret = dump_core(set, t, &brk, snaps->snap ? snaps : NULL, ts, i);
		if (!ret)
			ret = dump_task_mm(set, t, i, brk, snaps, ts, later, &ms);
		if (ret)
			return ret;
		st->memory_bytes += ms.bytes_in;
		st->tracked_unread_pages += ms.unread_pages;
		st->nr_threads += (uint32_t)t->nr_threads;
		pr_info("pid %d: %d threads, %llu bytes of memory%s", t->pid, t->nr_threads,
			(unsigned long long)ms.bytes_in, later[i] ? " (not counting its snapshot)" : "");
	}
	struct mem_stats ms = { 0 };
	uint64_t t0 = now_ns();
	ret = dump_sysvipc(set, tree, &ms); /* semaphores, unattached shm segments */
	ret = ret ? ret : dump_saved_files(set, tree, &ms); /* the job's files on scratch */
	st->memory_bytes += ms.bytes_in;
	ret = ret ? ret : dump_files(set, tree, o);
	ret = ret ? ret : dump_cgroups(set, tree);
	t0 = phase_add(CKPT_PHASE_FILES, t0);
	ret = ret ? ret : write_inventory(set, tree);
	phase_add(CKPT_PHASE_INVENTORY, t0);
	return ret;
}

/* After the thaw: the pages of every snapshot, one task after the other,
 * each snapshot killed as soon as it is read. */
static int dump_snapshots(struct img_set *set, const struct frozen_tree *tree,
			  struct snapshot_set *snaps, struct mm_dump **later,
			  struct ckpt_dump_stats *st)
{
	int ret = 0;
	for (int i = 0; i < tree->nr_tasks; i++) {
		struct mem_stats ms = { 0 };
		if (!later[i])
			continue;
		if (!ret)
			ret = snapshot_connect(&snaps->snap[i]);
		if (!ret)
			ret = dump_mm_pages(set, later[i], snaps->snap[i].pid, &ms);
		else
			mm_dump_free(later[i]);
		later[i] = NULL;
		snapshot_release(&snaps->snap[i]);
		st->memory_bytes += ms.bytes_in;
		st->tracked_unread_pages += ms.unread_pages;
		if (!ret)
			pr_info("pid %d: %llu bytes of memory from its snapshot", tree->tasks[i].pid,
				(unsigned long long)ms.bytes_in);
	}
	return ret;
}

static void free_later(struct mm_dump **later, int nr)
{
	for (int i = 0; later && i < nr; i++)
		mm_dump_free(later[i]);
	free(later);
}

/* While a check runs on a tree that is not frozen, its lines on stderr
 * wait in a memfd (check_dump).  Without one they are printed as they
 * come. */
struct held_err {
	int saved, fd;
	char text[1024]; /* the first of what was held */
};

static void err_hold(struct held_err *h)
{
	fflush(stderr);
	h->text[0] = '\0';
	h->fd = memfd_create("ckpt-check-err", MFD_CLOEXEC);
	h->saved = h->fd < 0 ? -1 : fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (h->saved >= 0 && dup2(h->fd, 2) < 0) {
		close(h->saved);
		h->saved = -1;
	}
}

/* Back to the real stderr; h->text: the start of what was held. */
static void err_restore(struct held_err *h)
{
	fflush(stderr);
	if (h->saved < 0)
		return;
	dup2(h->saved, 2);
	close(h->saved);
	ssize_t n = pread(h->fd, h->text, sizeof(h->text) - 1, 0);
	h->text[n > 0 ? n : 0] = '\0';
}

/* `show`: print all that was held. */
static void err_done(struct held_err *h, int show)
{
	char buf[4096];
	ssize_t n;
	for (off_t off = 0; show && h->saved >= 0 && (n = pread(h->fd, buf, sizeof(buf), off)) > 0;
	     off += n)
		if (write(2, buf, (size_t)n) != n)
			break;
	if (h->fd >= 0)
		close(h->fd);
}

static int check_listed(const struct ckpt_dump_opts *o, const struct frozen_tree *tree)
{
	int ret = o->only_uid_set ? check_owner(tree, o->only_uid) : 0;
	int netns_back = -1;
	if (!ret)
		ret = enter_tree_netns(tree, &netns_back);
	if (!ret)
		ret = check_refusals(tree, o);
	int back = leave_tree_netns(netns_back);
	return ret ? ret : back;
}

/* --check-only: the dump's checks on the running tree, in the dump's
 * order; no task is seized (list_tree), no parasite, nothing written.
 * The tree runs on: a task that exits or execs during the check can
 * fail it (its files gone, root's once its memory is, its mappings
 * replaced; a child born since, not listed, looked at from outside),
 * which says nothing of the tree.  So a refusal is told only once the
 * same one came twice in a row, the dead dropped between two tries (a
 * dump would not have seen them), and never while the task it names is
 * gone; a few tries at most. */
#define CHECK_TRIES 16

/* The task the first "pid N" of an error line names is gone, or dead. */
static int named_task_gone(const char *text)
{
	const char *p = strstr(text, "pid ");
	char buf[1024];
	if (!p || atoi(p + 4) <= 0)
		return 0;
	const char *state = proc_stat_fields(atoi(p + 4), buf, sizeof(buf));
	return !state || *state == 'Z' || *state == 'X';
}

static int check_dump(const struct ckpt_dump_opts *o, struct ckpt_dump_stats *st)
{
	struct frozen_tree tree = { 0 };
	char last[sizeof(((struct held_err *)0)->text)] = "";
	int ret, listed = 0;
	for (int try = 1;; try++) {
		struct held_err h;
		int dropped = 0;
		err_hold(&h);
		if (!listed)
			listed = !(ret = list_tree_steps(o->pid, o->steps, o->nr_steps, &tree));
		if (listed && (ret = check_listed(o, &tree)))
			dropped = list_tree_drop_dead(&tree);
		err_restore(&h);
		int again = ret && try < CHECK_TRIES && h.saved >= 0 &&
			    (dropped || try == 1 || strcmp(h.text, last) || named_task_gone(h.text));
		err_done(&h, !again);
		if (!again)
			break;
		snprintf(last, sizeof(last), "%s", h.text);
	}
	st->nr_tasks = (uint32_t)tree.nr_tasks;
	for (int i = 0; i < tree.nr_tasks; i++)
		st->nr_threads += (uint32_t)tree.tasks[i].nr_threads;
	if (listed)
		frozen_tree_free(&tree);
	return ret;
}

/* A held dump at its FROZEN gate: the gate names the directory, which is
 * only then created (nothing is written before every node froze). */
static int gate_frozen(const struct ckpt_dump_opts *o, const struct frozen_tree *tree,
		       struct dump_target *target, struct img_set **set)
{
	struct ckpt_gate_info info = { .nr_tasks = (uint32_t)tree->nr_tasks, .root = o->pid };
	int ret = o->gate(o->gate_arg, CKPT_GATE_FROZEN, &info);
	if (ret)
		return ret;
	if (!info.dir) {
		pr_err("pid %d: held dump: no directory named at the frozen gate", o->pid);
		return -EINVAL;
	}
	struct ckpt_dump_opts here = *o;
	here.dir = info.dir;
	return dump_target_open(&here, target, set);
}

/* A held dump at its DUMPED gate: the part is committed, the tree still
 * frozen; a refusal here removes the part (dump_target_abort). */
static int gate_dumped(const struct ckpt_dump_opts *o, const struct frozen_tree *tree,
		       struct img_set *set)
{
	struct ckpt_gate_info info = { .nr_tasks = (uint32_t)tree->nr_tasks, .root = o->pid,
				       .dir = img_set_dir(set) };
	int ret = img_set_manifest_crc(set, &info.manifest_crc);
	return ret ? ret : o->gate(o->gate_arg, CKPT_GATE_DUMPED, &info);
}

/* The write, between freeze and commit: the refusals first (so that a
 * refusal does not first cost the job the memory copy), then a held
 * dump's FROZEN gate and its target, then the tree's images. */
static int check_and_write(const struct ckpt_dump_opts *o, const struct frozen_tree *tree,
			   struct dump_target *target, struct img_set **set,
			   struct ckpt_dump_stats *st, struct snapshot_set *snaps,
			   struct track_state *ts, struct mm_dump **later)
{
	uint64_t t0 = now_ns();
	int ret = check_refusals(tree, o);
	phase_add(CKPT_PHASE_CHECK, t0);
	if (!ret && o->gate)
		ret = gate_frozen(o, tree, target, set);
	return ret ? ret : dump_tree(*set, tree, o, st, snaps, ts, later);
}

/* Snapshots apply to a tree that goes on running after the dump; one
 * that is killed or left stopped gains nothing from a thaw.  A held dump
 * stays frozen until its coordinator's commit: its peers on other nodes
 * are frozen until then too, and a thawed rank would talk to them. */
static int want_snapshots(const struct ckpt_dump_opts *o)
{
	return o->leave_running && !o->leave_stopped && !o->no_snapshot && !o->gate;
}

int ckpt_dump(const struct ckpt_dump_opts *o, struct ckpt_dump_stats *st)
{
	struct frozen_tree tree = { 0 };
	struct img_set *set = NULL;
	struct dump_target target = { 0 };
	struct snapshot_set snaps;
	struct mm_dump **later = NULL;
	struct track_state track = { 0 };
	uint64_t t0 = now_ns(), t_frozen;
	int ret, thawed = 0;

	memset(st, 0, sizeof(*st));
	phase_reset();
	ckpt_verbose = o->verbose;
	if (o->check_only) {
		ret = check_dump(o, st);
		st->total_ns = now_ns() - t0;
		return ret;
	}
	if (o->gate && (o->job || o->page_server || o->parent)) {
		pr_err("dump: a held dump writes a plain image directory only");
		return -EINVAL;
	}
	if (!o->gate && (ret = dump_target_open(o, &target, &set)))
		return ret;
	/* The files' fsyncs wait for the commit: a snapshot's tree is
	 * thawed before it, and done together they share a journal commit
	 * instead of one each as a file is closed (a dozen small files). */
	if (set)
		img_set_defer_sync(set);
	/* what a frozen tree would otherwise wait for */
	locks_leases_start();
	placement_load();
	t_frozen = now_ns();
	if ((ret = freeze_tree_steps(o->pid, o->steps, o->nr_steps, steps_drained, &tree))) {
		locks_leases_stop();
		placement_unload();
		dump_target_abort(&target);
		dump_target_close(&target);
		return ret;
	}
	uint64_t t_phase = phase_add(CKPT_PHASE_FREEZE, t_frozen);
	st->nr_tasks = (uint32_t)tree.nr_tasks;
	uint64_t rss = 0;
	for (int i = 0; o->progress && i < tree.nr_tasks; i++)
		rss += progress_rss(tree.tasks[i].pid);
	struct progress *pg = progress_start(o->progress, o->progress_arg, "memory", rss);
	int netns_back = -1;
	ret = snapshot_set_init(&snaps, &tree, want_snapshots(o));
	later = calloc((size_t)tree.nr_tasks, sizeof(*later));
	if (!ret && !later)
		ret = -ENOMEM;
	if (!ret && o->only_uid_set)
		ret = check_owner(&tree, o->only_uid);
	/* first, before anything writes into the tree, and in our network
	 * namespace, where the keeper's abstract name is (track.c) */
	if (!ret && !o->gate) {
		ret = track_begin(&track, &tree, o->track, img_set_parent_dir(set),
				  o->leave_running && !o->leave_stopped);
		st->tracked_written_pages = track.pages_written;
	}
	if (!ret)
		ret = enter_tree_netns(&tree, &netns_back);
	phase_add(CKPT_PHASE_CHECK, t_phase);
	if (!ret)
		ret = check_and_write(o, &tree, &target, &set, st, &snaps, &track, later);
	int back = leave_tree_netns(netns_back);
	ret = ret ? ret : back;
	/* A user's dump read the seccomp filters: CAP_SYS_ADMIN goes. */
	if (o->only_uid_set)
		priv_drop(PRIV_BIT(CAP_SYS_ADMIN));
	st->snapshot_tasks = (uint32_t)snaps.taken;
	st->frozen_copy_tasks = (uint32_t)snaps.frozen;
	if (!ret && snaps.taken) {
		/* everything else is dumped: the job runs on while the
		 * snapshots are read */
		uint64_t t_thaw = now_ns();
		unfreeze_tree(&tree, UNFREEZE_RESUME);
		thawed = 1;
		t_thaw = phase_add(CKPT_PHASE_THAW, t_thaw);
		st->frozen_ns = t_thaw - t_frozen;
		ret = dump_snapshots(set, &tree, &snaps, later, st);
		st->snapshot_ns = now_ns() - t_thaw;
	}
	placement_unload();
	free_later(later, tree.nr_tasks);
	snapshot_set_free(&snaps);
	progress_stop(pg, !ret);
	if (!ret)
		ret = dump_target_commit(&target, &tree, (uint32_t)o->pid);
	if (!ret && o->gate)
		ret = gate_dumped(o, &tree, set);
	if (ret) {
		/* A refused or failed dump changes nothing, -s included: no
		 * task of the tree (another user's least of all) stays stopped. */
		dump_target_abort(&target);
		if (!thawed)
			unfreeze_tree(&tree, UNFREEZE_RESUME);
	} else if (thawed) {
		/* running since the thaw, as -R asks */
	} else if (o->leave_stopped) {
		unfreeze_tree(&tree, UNFREEZE_LEAVE_STOPPED);
	} else if (o->leave_running) {
		unfreeze_tree(&tree, UNFREEZE_RESUME);
	} else {
		unfreeze_tree(&tree, UNFREEZE_KILL);
	}
	if (!thawed)
		st->frozen_ns = now_ns() - t_frozen;
	/* not before: a refused dump would wait for its read with the tree
	 * frozen */
	locks_leases_stop();
	phase_read(st->phase_ns);
	/* the tracking goes to its keeper once we trace the tree no more */
	track_end(&track, !ret && set ? img_set_dir(set) : NULL);
	st->track_keeper = track.keeper;
	if (!ret && set)
		st->written_bytes = img_set_bytes(set);
	frozen_tree_free(&tree);
	if (!ret)
		ret = dump_target_finish(&target, st);
	dump_target_close(&target);
	st->total_ns = now_ns() - t0;
	return ret;
}
