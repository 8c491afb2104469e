/*
 * restore-step: the step proxy in place of an srun step's client
 * (docs/mpi.md).  The process with srun's pid, session and group is
 * created as any process of the tree, forks the step's tasks (its
 * children in the set), joins its group, installs srun's fds 0-2 and
 * keeps the other ends of its tasks' stdio pipes and PMIx socket pairs
 * (step-fds.c).  It reports ready as the others do and, once the driver
 * has let every restored process go, execs ckpt-step, which forwards the
 * tasks' output, serves their PMIx connections and exits as srun would.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "restore.h"
#include "restorer-abi.h"

#define STEP_FD_FIRST 3 /* the proxy's ends go to 3, 4, ... for ckpt-step */

/* ckpt-step: next to the program that restores (build tree: ../step/),
 * else where it is installed. */
int restore_step_open_exe(struct restore_ctx *c)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	const char *env = getenv("CKPT_STEP");
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	const char *tries[] = { env, path, path, CKPT_STEP_INSTALLED };
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (i == 1)
			snprintf(path, sizeof(path), "%s/ckpt-step", self);
		if (i == 2)
			snprintf(path, sizeof(path), "%s/../step/ckpt-step", self);
		if (!tries[i] || (i == 0 && geteuid() != getuid()))
			continue;
		int fd = open(tries[i], O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			c->step_exe = fcntl(fd, F_DUPFD_CLOEXEC, c->fd_base);
			close(fd);
			return c->step_exe >= 0 ? 0 : -errno;
		}
	}
	pr_err("the step proxy ckpt-step is not installed (%s)", CKPT_STEP_INSTALLED);
	return -ENOENT;
}

static int __attribute__((format(printf, 3, 4)))
add_arg(char ***argv, size_t *n, const char *fmt, ...)
{
	char **a = realloc(*argv, (*n + 2) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*argv = a;
	va_list ap;
	va_start(ap, fmt);
	int ret = vasprintf(&a[*n], fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	a[++*n] = NULL;
	return 0;
}

/* Move the proxy end of `role` of task `pid` to the next low fd. */
static int low_end(struct restore_ctx *c, uint32_t pid, int role, int *next)
{
	int end = step_proxy_end(&c->files, pid, role);
	if (end < 0)
		return -1; /* the task had no such fd (e.g. stdin /dev/null) */
	if (dup2(end, *next) < 0)
		return -2;
	return (*next)++;
}

/* A step with tasks here and on other nodes: the batch node's proxy
 * starts the coordinator that restores the others. */
static int spans_nodes(const StepEntry *st)
{
	return st->has_nodes && st->nodes > 1 && !st->remote_nodes;
}

/* ... and with PMIx: its fences are relayed between the nodes' proxies. */
static int relayed(const StepEntry *st)
{
	return spans_nodes(st) && st->nspace;
}

/* ckpt-step's command line (step/ckpt-step.c documents it). */
static int proxy_argv(struct restore_ctx *c, size_t idx, char ***argv)
{
	const TaskEntry *me = c->tasks[idx].te;
	const StepEntry *st = me->step;
	size_t n = 0;
	int next = STEP_FD_FIRST, ret;
	ret = add_arg(argv, &n, "ckpt-step");
	if (!ret && st->nspace) /* none: a step without PMIx */
		ret = add_arg(argv, &n, "--nspace=%s", st->nspace);
	ret = ret ? ret : add_arg(argv, &n, "--job-size=%u", st->job_size);
	if (!ret && relayed(st))
		ret = add_arg(argv, &n, "--fence-relay=%s", c->step_relay);
	ret = ret ? ret : add_arg(argv, &n, "--uid=%u", st->uid);
	ret = ret ? ret : add_arg(argv, &n, "--gid=%u", st->gid);
	/* root's own step: its proxy is root's too, as its srun was */
	if (!ret && st->uid == 0)
		ret = add_arg(argv, &n, "--allow-root");
	if (!ret && st->has_label && st->label)
		ret = add_arg(argv, &n, "--label");
	if (!ret && st->security)
		ret = add_arg(argv, &n, "--security=%s", st->security);
	if (!ret && st->buffer_type)
		ret = add_arg(argv, &n, "--buffer-type=%s", st->buffer_type);
	if (!ret && st->gds)
		ret = add_arg(argv, &n, "--gds=%s", st->gds);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++) {
		const TaskEntry *t = c->tasks[i].te;
		if (t->ppid != me->pid || !t->has_step_rank)
			continue;
		if (next + 4 >= c->fd_base)
			return -EMFILE; /* more tasks than the fds below the restore's */
		int in = low_end(c, t->pid, STEP_ROLE__STEP_STDIN, &next);
		int out = low_end(c, t->pid, STEP_ROLE__STEP_STDOUT, &next);
		int err = low_end(c, t->pid, STEP_ROLE__STEP_STDERR, &next);
		int pmix = low_end(c, t->pid, STEP_ROLE__STEP_PMIX, &next);
		if (in == -2 || out == -2 || err == -2 || pmix == -2)
			return -errno;
		ret = add_arg(argv, &n, "--task=%u:%u:%d:%d:%d:%d", t->step_rank, t->pid, in, out,
			      err, pmix);
	}
	return ret;
}

/* A step whose tasks all ran on other nodes: srun of the coordinator's
 * restore of their parts (ckpt_restore_plan), with our network lock's
 * name, which it lifts once every part is built. */
static int remote_argv(struct restore_ctx *c, size_t idx, char ***argv)
{
	const StepEntry *st = c->tasks[idx].te->step;
	size_t n = 0;
	int ret = 0;
	if (!c->opts->step_remote_argv) {
		pr_err("step %u: its tasks ran on %s: the job's set restores on its batch node, "
		       "with the other nodes' parts (ckptctl restore --job JOB in the job)",
		       st->step_id, st->remote_nodes);
		return -EINVAL;
	}
	for (size_t i = 0; !ret && c->opts->step_remote_argv[i]; i++)
		ret = add_arg(argv, &n, "%s", c->opts->step_remote_argv[i]);
	if (!ret && c->net_lock[0])
		ret = add_arg(argv, &n, "--net-lock=%s", c->net_lock);
	if (!ret && relayed(st))
		ret = add_arg(argv, &n, "--relay=%s", c->step_relay);
	return ret;
}

static void exec_remote(struct restore_ctx *c, size_t idx, char **argv)
{
	const TaskEntry *me = c->tasks[idx].te;
	char *const *env = (char *const *)c->opts->step_env;
	extern char **environ;
	execvpe(argv[0], argv, env ? env : environ);
	pr_err("pid %u: the step proxy cannot run %s: %s", me->pid, argv[0], strerror(errno));
	_exit(127);
}

/* The other nodes' coordinator, as ckpt-step's child, which waits for
 * it as for a task (--also): with srun's stdio only, none of the ranks'
 * ends. */
static void launch_remote(struct restore_ctx *c, size_t idx, char **argv, char ***step_argv)
{
	size_t n = 0;
	while ((*step_argv)[n])
		n++;
	pid_t pid = fork();
	if (pid < 0 || (pid > 0 && add_arg(step_argv, &n, "--also=%d", pid))) {
		pr_err("pid %u: the step proxy: fork: %s", c->tasks[idx].te->pid, strerror(errno));
		if (pid > 0)
			kill(pid, SIGKILL);
		_exit(1);
	}
	if (pid == 0) {
		close_range(3, ~0U, 0);
		exec_remote(c, idx, argv);
	}
}

/* Wait until the driver lets the tree go: a byte per proxy. */
static int wait_go(struct restore_ctx *c)
{
	char b;
	close(c->step_go_w);
	ssize_t n;
	while ((n = read(c->step_go_r, &b, 1)) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : -EPIPE;
}

/*
 * The relay of a step with ranks on several nodes: on the batch node a
 * name of our drawing (unguessable: another user of the node could take
 * a name it can guess first, and fail the restore), which the coordinator
 * we start gets too; on another node the one its coordinator gave.
 */
static int relay_name(struct restore_ctx *c, const StepEntry *st, int part_root)
{
	uint64_t r;
	const char *given = c->opts->step_relay;
	if (part_root && !given) {
		pr_err("step %u: its %u ranks ran on %u nodes: this node's part restores with "
		       "the job's set, through its coordinator (ckptctl restore --job JOB in the "
		       "job)", st->step_id, st->job_size, st->nodes);
		return -EINVAL;
	}
	if (part_root) {
		size_t n = strlen(given);
		if (!n || n >= sizeof(c->step_relay) ||
		    strspn(given, "0123456789abcdefghijklmnopqrstuvwxyz.") != n) {
			pr_err("--step-relay '%.80s': not a relay's name (up to %zu of [0-9a-z.])",
			       given, sizeof(c->step_relay) - 1);
			return -EINVAL;
		}
		memcpy(c->step_relay, given, n + 1);
		return 0;
	}
	if (!c->opts->step_remote_argv) {
		pr_err("step %u: its %u ranks ran on %u nodes: the job's set restores on its "
		       "batch node, with the other nodes' parts (ckptctl restore --job JOB in "
		       "the job)", st->step_id, st->job_size, st->nodes);
		return -EINVAL;
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return -EIO;
	snprintf(c->step_relay, sizeof(c->step_relay), "%u.%016llx", st->step_id,
		 (unsigned long long)r);
	return 0;
}

int restore_step_prepare(struct restore_ctx *c)
{
	int p[2], ret;
	size_t remote = 0;
	for (size_t i = 0; i < c->nr_tasks; i++) {
		c->nr_proxies += restore_task_proxy(&c->tasks[i]);
		if (!restore_task_proxy(&c->tasks[i]))
			continue;
		const StepEntry *st = c->tasks[i].te->step;
		/* the root: a node's part of the step (the stand-in); else the
		 * batch tree's srun, which restores the other parts */
		if (relayed(st) && (ret = relay_name(c, st, i == 0)))
			return ret;
		if (!st->remote_nodes && !(spans_nodes(st) && i != 0))
			continue;
		/* one coordinator restores every other node's part */
		if (!c->opts->step_remote_argv || remote++) {
			pr_err("step %u: its tasks ran on %s: %s", st->step_id,
			       st->remote_nodes ? st->remote_nodes : "several nodes",
			       remote > 1 ? "a second step across nodes is not restorable yet" :
					    "the job's set restores on its batch node, with the other "
					    "nodes' parts (ckptctl restore --job JOB in the job)");
			return -EINVAL;
		}
	}
	if (!c->nr_proxies)
		return 0;
	if ((ret = restore_step_open_exe(c)))
		return ret;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	c->step_go_r = fcntl(p[0], F_DUPFD_CLOEXEC, c->fd_base);
	c->step_go_w = fcntl(p[1], F_DUPFD_CLOEXEC, c->fd_base);
	close(p[0]);
	close(p[1]);
	return c->step_go_r < 0 || c->step_go_w < 0 ? -errno : 0;
}

int restore_step_release(struct restore_ctx *c)
{
	for (int i = 0; i < c->nr_proxies; i++)
		if (write(c->step_go_w, "g", 1) != 1)
			return -errno;
	return 0;
}

void restore_step_done(struct restore_ctx *c)
{
	int *fds[] = { &c->step_go_r, &c->step_go_w, &c->step_exe };
	for (size_t i = 0; i < 3; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static int report_ready(struct restore_ctx *c, pid_t pid)
{
	struct rst_ready r = { .tag = 'R', .pid = pid, .args = 0 };
	return write(c->notify_w, &r, sizeof(r)) == sizeof(r) ? 0 : -EIO;
}

void restore_step_proxy(struct restore_ctx *c, size_t idx)
{
	const TaskEntry *me = c->tasks[idx].te;
	char **argv = NULL;
	int keep[5] = { c->notify_w, c->log_fd, c->step_exe, c->step_go_r, c->step_go_w };
	/* srun's 0-2 as the proxy's own; every other fd of ours goes but the
	 * ends ckpt-step gets and what the restore still needs */
	int remote = me->step->remote_nodes != NULL;
	/* ranks here and elsewhere, from the batch node: ckpt-step for ours,
	 * and the coordinator's srun for the other nodes' parts */
	char **launch = NULL;
	int both = spans_nodes(me->step) && idx != 0; /* the batch tree's srun */
	int ret = files_install(&c->files, idx, keep, 5, c->fd_base);
	if (!ret)
		ret = remote ? remote_argv(c, idx, &argv) : proxy_argv(c, idx, &argv);
	if (!ret && both)
		ret = remote_argv(c, idx, &launch);
	if (!ret)
		ret = report_ready(c, (pid_t)me->pid);
	if (!ret)
		ret = wait_go(c);
	if (ret) {
		pr_err("pid %u: the step proxy: %s", me->pid, strerror(-ret));
		_exit(1);
	}
	/* root's restore: the proxy becomes the step's user (ckpt-step runs
	 * as the user its server checks the ranks' credentials against) */
	if (!geteuid() && (setgroups(0, NULL) || setresgid(me->step->gid, me->step->gid,
							   me->step->gid) ||
			   setresuid(me->step->uid, me->step->uid, me->step->uid))) {
		pr_err("pid %u: the step proxy: cannot become uid %u: %s", me->pid, me->step->uid,
		       strerror(errno));
		_exit(1);
	}
	if (remote)
		exec_remote(c, idx, argv);
	if (both)
		launch_remote(c, idx, launch, &argv);
	/* everything of the restore at or above fd_base is O_CLOEXEC */
	extern char **environ;
	syscall(SYS_execveat, c->step_exe, "", argv, environ, AT_EMPTY_PATH);
	pr_err("pid %u: cannot run the step proxy ckpt-step: %s", me->pid, strerror(errno));
	_exit(127);
}
