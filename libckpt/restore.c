/*
 * restore: the restore sequence, run by the driver (ckptctl restore):
 *
 *   load and verify every image → decide on a PID namespace → probe the
 *   ports the images bind, decide on a network namespace and make it
 *   (restore-netns.c) → open the file pool → create the tree
 *   (restore-tree.c; each process rebuilds itself and reports on the
 *   notify pipe) → every thread into its cgroups (cgroup-place.c) → bring every thread into its dumped registers
 *   (restore-finish.c) → let the tree run → wait for the root, or return
 *   at once with --detach.
 *
 * On any failure every process created so far is killed: a failed
 * restore leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "inet-map.h"
#include "lazy-serve.h"
#include "log.h"
#include "priv.h"
#include "progress.h"
#include "proc.h"
#include "restore-mem.h"
#include "restore.h"
#include "verify.h"
#include "restorer-abi.h"
#include "saved-files.h"
#include "shmem.h"

#define READY_TIMEOUT_MS 120000

static int pid_taken(uint32_t pid)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%u", pid);
	return access(path, F_OK) == 0;
}

static int choose_pidns(struct restore_ctx *c)
{
	enum ckpt_pidns_mode mode = c->opts->pidns;
	uint32_t taken = 0;

	for (size_t i = 0; !taken && i < c->nr_tasks; i++)
		for (size_t k = 0; !taken && k < c->tasks[i].te->n_tids; k++)
			if (pid_taken(c->tasks[i].te->tids[k]))
				taken = c->tasks[i].te->tids[k];
	if (mode == CKPT_PIDNS_ALWAYS || (mode == CKPT_PIDNS_AUTO && taken)) {
		c->use_pidns = 1;
		if (taken)
			pr_info("pid %u is taken: restoring into a fresh PID namespace", taken);
		return 0;
	}
	if (taken) {
		pr_err("pid %u is taken by another process (use --pidns auto or always)", taken);
		return -EEXIST;
	}
	return 0;
}

/* A new pair p: *ours = p[0], *theirs = p[1] moved to base or above;
 * -1 with errno set when the move failed. */
static int raise_end(const int p[2], int base, int *ours, int *theirs)
{
	*ours = p[0];
	*theirs = fcntl(p[1], F_DUPFD_CLOEXEC, base);
	int e = errno;
	close(p[1]);
	errno = e;
	return *theirs < 0 ? -1 : 0;
}

/* Fds the restoring processes inherit sit above every fd they restore. */
static int prepare_fds(struct restore_ctx *c)
{
	int p[2], base = c->files.max_fd + 1;

	if (pipe2(p, O_CLOEXEC) || raise_end(p, base, &c->notify_r, &c->notify_w))
		return -errno;
	if (c->opts->lazy &&
	    (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) ||
	     raise_end(p, base, &c->lazy_r, &c->lazy_w)))
		return -errno;
	int dirfd = img_set_move_fd(c->set, base);
	if (dirfd < 0)
		return dirfd;
	c->log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, base);
	int ret = files_open_pool(&c->files, base);
	if (ret)
		return ret;
	/* Everything at or above base is ours: the restorer closes it all
	 * (image directory and log included) but the notify fd. */
	c->fd_base = base;
	return 0;
}

static int prepare_shared(struct restore_ctx *c)
{
	c->shared_len = sizeof(struct rst_shared) + c->nr_tasks * sizeof(uint64_t);
	c->shared = mmap(NULL, c->shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c->shared == MAP_FAILED) {
		c->shared = NULL;
		return -errno;
	}
	return 0;
}

static int read_exact(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static const char *step_name(int step)
{
	static const char *names[] = { "setup",         "moving vdso",     "unmapping",
				       "moving memory", "mapping files",   "protecting memory",
				       "placing vdso",  "setting mm",      "queueing signals",
				       "creating threads", "thread state", "credentials",
				       "restoring timers", "scheduling", "capabilities",
				       "handing its memory to the page server (lazy restore)" };
	return step >= 0 && step <= RST_STEP_LAZY ? names[step] : "unknown step";
}

/* One report from the notify pipe: ready (args address) or error. */
static int read_report(struct restore_ctx *c, uint64_t *args, size_t *idx)
{
	char tag;
	if (read_exact(c->notify_r, &tag, 1))
		return -EIO;
	if (tag == 'R') {
		struct rst_ready r;
		if (read_exact(c->notify_r, (char *)&r + 1, sizeof(r) - 1))
			return -EIO;
		for (size_t i = 0; i < c->nr_tasks; i++)
			if (c->tasks[i].te->pid == (uint32_t)r.pid) {
				*idx = i;
				*args = r.args;
				return 0;
			}
		return -EINVAL;
	}
	struct rst_error e;
	if (tag != 'E' || read_exact(c->notify_r, (char *)&e + 1, sizeof(e) - 1))
		return -EIO;
	/* Steps before the restorer print their own line; the restorer
	 * cannot print, so say here what it was doing. */
	if (e.step > 0)
		pr_err("pid %d: restorer failed while %s (at %#llx): %s", e.pid, step_name(e.step),
		       (unsigned long long)e.addr, strerror((int)-e.err));
	return e.err < 0 ? (int)e.err : -EIO;
}

static int wait_ready(struct restore_ctx *c, uint64_t *args)
{
	size_t ready = 0, want = 0;
	for (size_t i = 0; i < c->nr_tasks; i++)
		want += !restore_task_zombie(&c->tasks[i]); /* zombies do not report */
	uint64_t deadline = now_ns() + READY_TIMEOUT_MS * 1000000ull;
	while (ready < want) {
		struct pollfd pfd = { .fd = c->notify_r, .events = POLLIN };
		int n = poll(&pfd, 1, 500);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && waitpid(c->child, NULL, WNOHANG) == c->child) {
			c->child = -1;
			pr_err("restore: the restored %s died before the tree was ready",
			       c->use_pidns ? "namespace's init" : "root");
			return -ESRCH;
		}
		if (n == 0 && now_ns() < deadline)
			continue;
		if (n <= 0) {
			pr_err("restore: processes did not report within %d s", READY_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		size_t idx = 0;
		uint64_t a = 0;
		int ret = read_report(c, &a, &idx);
		if (ret == -EIO)
			pr_err("restore: a restoring process died before reporting");
		if (ret)
			return ret;
		args[idx] = a;
		ready++;
	}
	return 0;
}

/* Kill every process we created: they are all our descendants (we are a
 * child subreaper), so loop until we have none left. */
static void kill_descendants(void)
{
	for (int round = 0; round < 100; round++) {
		pid_t *kids;
		size_t n = 0;
		if (!proc_children(getpid(), &kids, &n)) {
			for (size_t i = 0; i < n; i++)
				kill(kids[i], SIGKILL);
			free(kids);
		}
		while (waitpid(-1, NULL, n ? 0 : WNOHANG) > 0)
			;
		if (!n)
			return;
	}
}

static int unlock_restored(struct restore_ctx *c)
{
	int ret = ckpt_net_unlock(c->net_lock, getuid());
	if (!ret)
		c->net_lock[0] = '\0';
	return ret;
}

/* --inet-map, --keep-net-lock: our own lock on the new 4-tuples, in the
 * namespace the sockets are made in, before any is (inet-map.h). */
static int lock_restored(struct restore_ctx *c)
{
	if (!c->opts->inet_map && !c->opts->keep_net_lock)
		return 0;
	return inet_lock_restored(&c->files, c->net_lock, sizeof(c->net_lock));
}

static int finish_all(struct restore_ctx *c, const uint64_t *args)
{
	struct rst_finished **fin = calloc(c->nr_tasks, sizeof(*fin));
	int ret = fin ? 0 : -ENOMEM;

	if (!ret && c->use_pidns)
		ret = restore_map_host_pids(c);
	else
		for (size_t i = 0; i < c->nr_tasks; i++)
			c->tasks[i].host_pid = (pid_t)c->tasks[i].te->pid;
	/* Every thread exists and none has run: into their cgroups. */
	if (!ret && c->opts->cgroups != CKPT_CGROUPS_IGNORE && !ckpt_test_fault("cgroup"))
		ret = restore_cgroups(c);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		if (!restore_task_zombie(&c->tasks[i]) && !restore_task_proxy(&c->tasks[i]))
			ret = restore_finish_task(c->tasks[i].host_pid, args[i], &fin[i]);
	/* Every process is whole and still stopped: compare before any runs. */
	if (!ret && c->opts->verify)
		ret = restore_verify(c);
	/* about to run: the peers outside the tree may reach it again, unless
	 * the caller lifts our own lock later (--keep-net-lock) */
	if (!ret)
		ret = inet_unlock(&c->files);
	if (!ret && c->net_lock[0] && !c->opts->keep_net_lock)
		ret = unlock_restored(c);
	for (size_t i = 0; fin && i < c->nr_tasks; i++) {
		if (!fin[i])
			continue;
		if (ret)
			restore_finish_abort(fin[i]);
		else
			restore_finish_release(fin[i]);
	}
	free(fin);
	/* the tree runs: the step proxies may start serving it */
	return ret ? ret : restore_step_release(c);
}

static int write_pidfile(const char *path, pid_t pid)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) || rename(tmp, path)) {
		pr_err("pidfile %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A user's restore gives back each lent capability it will not need:
 * CAP_NET_ADMIN serves TCP_REPAIR and the closing of TIME_WAIT sockets. */
static void drop_unneeded(struct restore_ctx *c)
{
	if (!c->opts->unprivileged)
		return;
	uint64_t drop = c->use_pidns ? 0 : PRIV_BIT(CAP_SYS_ADMIN);
	if (!inet_needs_repair(&c->files) && !c->clear_time_wait)
		drop |= PRIV_BIT(CAP_NET_ADMIN);
	priv_drop(drop);
}

/*
 * Lazy restore (docs/lazy-restore.md): refused before anything is
 * created where it cannot work.  A user's restore through ckptd does
 * not get it: a userfaultfd that also catches the kernel's own writes
 * into the restored memory (rseq, robust futexes) needs CAP_SYS_PTRACE
 * (or vm.unprivileged_userfaultfd), which a user's worker does not hold.
 */
static int lazy_check(const struct restore_ctx *c)
{
	if (!c->opts->lazy)
		return 0;
	if (c->opts->unprivileged) {
		pr_err("restore --lazy: not offered for a user's restore through ckptd");
		return -EPERM;
	}
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0) {
		pr_err("restore --lazy: this kernel gives no userfaultfd: %s", strerror(errno));
		return -errno;
	}
	close((int)fd);
	return 0;
}

/* The page server, once the tree exists; the processes' end of its
 * socket is theirs alone (EOF once every restorer sent its uffd). */
static int start_lazy(struct restore_ctx *c, uint64_t t0)
{
	int go[2];
	close(c->lazy_w);
	c->lazy_w = -1;
	/* a socket: a server done already must not SIGPIPE us (MSG_NOSIGNAL) */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go))
		return -errno;
	c->lazy_go = go[1]; /* the server closes it: EOF there is our word */
	c->lazy_server = lazy_serve_start(c, c->lazy_r, go[0], c->child, t0, c->opts->lazy_report);
	close(go[0]);
	close(c->lazy_r);
	c->lazy_r = -1;
	return c->lazy_server < 0 ? (int)c->lazy_server : 0;
}

static int run_restore(struct restore_ctx *c, struct ckpt_restore_stats *st, uint64_t t0)
{
	uint64_t *args = calloc(c->nr_tasks, sizeof(*args));
	int ret;

	if (!args)
		return -ENOMEM;
	if ((ret = lazy_check(c)) || (ret = choose_pidns(c)) || (ret = restore_choose_netns(c)))
		goto out;
	if (c->use_netns && (ret = restore_make_netns(c)))
		goto out;
	drop_unneeded(c);
	if (c->opts->cgroups != CKPT_CGROUPS_IGNORE && (ret = restore_cgroup_dirs(c)))
		goto out;
	/* Files kept with the set go back first: the fds opened next and the
	 * mappings made later find them as they were dumped.  The network
	 * lock just before the sockets: a port another process holds was
	 * refused above (restore_choose_netns), so it drops only ours. */
	if ((ret = restore_saved_files(c->set)) || (ret = lock_restored(c)) ||
	    (ret = prepare_fds(c)) || (ret = restore_step_prepare(c)) ||
	    (ret = prepare_shared(c)) || (ret = restore_shm_prepare(c)))
		goto out;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int rel[2];
	if (pipe2(rel, O_CLOEXEC)) {
		ret = -errno;
		goto out;
	}
	c->release_r = rel[0];
	c->release_w = rel[1];
	c->child = restore_spawn(c);
	if (c->opts->unprivileged)
		priv_drop(PRIV_BIT(CAP_SYS_ADMIN)); /* the PID namespace exists */
	close(c->release_r);
	c->release_r = -1;
	if (c->child < 0) {
		ret = c->child;
		goto out;
	}
	/* The restored processes hold every pipe end now; ours would keep
	 * pipes open (no EOF) and the notify pipe from reporting death. */
	files_close_pool(&c->files);
	close(c->notify_w);
	c->notify_w = -1;
	if (c->opts->lazy && (ret = start_lazy(c, t0)))
		goto out;
	uint64_t t_spawned = now_ns();
	ret = wait_ready(c, args);
	restore_shm_detach(); /* every process mapped the shared objects it needs */
	uint64_t t_ready = now_ns();
	if (!ret)
		ret = finish_all(c, args);
	pr_info("restore: processes rebuilt in %.1f ms, registers and resume %.1f ms",
		(double)(t_ready - t_spawned) / 1e6, (double)(now_ns() - t_ready) / 1e6);
	if (!ret && c->use_pidns)
		ret = restore_release_init(c);
	if (!ret)
		st->root_pid = c->tasks[0].host_pid;
	if (!ret)
		snprintf(st->net_lock, sizeof(st->net_lock), "%s", c->net_lock);
	if (!ret && c->lazy_go >= 0)
		send(c->lazy_go, "G", 1, MSG_NOSIGNAL); /* the server may be done already */
	if (!ret && c->opts->pidfile)
		ret = write_pidfile(c->opts->pidfile, c->tasks[0].host_pid);
	if (ret && c->lazy_go >= 0) {
		close(c->lazy_go); /* EOF, no byte: the page server ends quietly */
		c->lazy_go = -1;
	}
	if (ret)
		kill_descendants();
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		st->memory_bytes += c->shared->memory_bytes[i];
out:
	if (ret && c->net_lock[0])
		unlock_restored(c); /* a failed restore leaves nothing behind */
	restore_cgroups_done(ret != 0); /* the processes are gone */
	restore_shm_done(c, ret); /* shared memory objects: the tree has them now */
	restore_step_done(c);
	free(args);
	return ret;
}

/* Without --detach, the page server's end: a page it could not fill
 * (it said which, and killed the tree) fails the restore. */
static int wait_lazy(pid_t server)
{
	int ws;
	if (server <= 0)
		return 0;
	while (waitpid(server, &ws, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(ws) && !WEXITSTATUS(ws) ? 0 : -EIO;
}

int ckpt_restore(const struct ckpt_restore_opts *o, struct ckpt_restore_stats *st, int *status)
{
	struct restore_ctx c;
	uint64_t t0 = now_ns();
	int ret;

	memset(&c, 0, sizeof(c));
	memset(st, 0, sizeof(*st));
	c.opts = o;
	c.notify_r = c.notify_w = c.log_fd = c.release_r = c.release_w = -1;
	c.step_exe = c.step_go_r = c.step_go_w = -1;
	c.lazy_r = c.lazy_w = c.lazy_go = -1;
	c.files.max_fd = -1;
	ckpt_verbose = o->verbose;
	/* The file pool sits above the highest fd of the job. */
	struct rlimit nofile;
	if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	struct progress *pg = o->progress ? progress_start(o->progress, o->progress_arg, "restore",
							o->dir ? progress_dir_bytes(o->dir) : 0) : NULL;
	ret = restore_load(&c);
	pr_info("restore: images read and verified in %.1f ms", (double)(now_ns() - t0) / 1e6);
	if (!ret)
		ret = run_restore(&c, st, t0);
	progress_stop(pg, !ret);
	st->total_ns = now_ns() - t0;
	st->used_pidns = c.use_pidns;
	st->used_netns = c.use_netns;
	if (c.set)
		st->image_bytes = img_set_bytes(c.set);
	if (c.notify_r >= 0)
		close(c.notify_r);
	if (c.notify_w >= 0)
		close(c.notify_w);
	if (c.log_fd >= 0)
		close(c.log_fd);
	if (c.release_w >= 0)
		close(c.release_w);
	if (c.lazy_r >= 0)
		close(c.lazy_r);
	if (c.lazy_w >= 0)
		close(c.lazy_w);
	if (c.lazy_go >= 0)
		close(c.lazy_go);
	st->lazy_server = ret ? 0 : c.lazy_server;
	if (c.shared)
		munmap(c.shared, c.shared_len);
	pid_t child = c.child;
	restore_unload(&c);
	if (ret || o->detach)
		return ret;
	/* The root (or our init, which passes the root's status on). */
	while (waitpid(child, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return wait_lazy(st->lazy_server);
}

/* check-restore: the restore's load, which compares the CPU, kernel and
 * CPU bindings (restore-load.c), and nothing after it. */
int ckpt_check_restore(const struct ckpt_restore_opts *o)
{
	struct restore_ctx c;
	memset(&c, 0, sizeof(c));
	c.opts = o;
	c.notify_r = c.notify_w = c.log_fd = c.release_r = c.release_w = -1;
	c.step_exe = c.step_go_r = c.step_go_w = -1;
	c.lazy_r = c.lazy_w = c.lazy_go = -1;
	c.files.max_fd = -1;
	ckpt_verbose = o->verbose;
	int ret = restore_load(&c);
	restore_unload(&c);
	return ret;
}
