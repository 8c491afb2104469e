/*
 * ops: dumps and restores the agent runs.  Each runs in a worker process
 * (worker.c) started by the connection's thread, which then relays the
 * worker's progress to the client, logs its messages with the job id and
 * records its result for `status`.  At most one operation per job (and
 * per target process) runs at a time; a second is refused with the reason.
 *
 * Crash safety is journal.c's; whom a worker becomes is ident.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "storage.h"
#include "wire.h"

/* ---- the op table ---- */

static const char *op_kind_name(enum op_kind k)
{
	return k == OP_DUMP ? "dump" : k == OP_RESTORE ? "restore" : "check";
}

static int op_busy_locked(uint32_t job, pid_t target, char *err, size_t errlen)
{
	for (int i = 0; i < AGENT_MAX_OPS; i++) {
		struct op *o = &agent.ops[i];
		/* A restore whose tree runs (the client waits for it to end)
		 * no longer stands in the way of the job's checkpoints. */
		if (!o->used || !o->running || o->started || o->kind == OP_CHECK)
			continue;
		if ((job && o->job_id == job) || (target && o->kind == OP_DUMP && o->target == target)) {
			snprintf(err, errlen, "%s%u: a %s (operation %u) is already running",
				 job ? "job " : "pid ", job ? job : (uint32_t)target,
				 op_kind_name(o->kind), o->id);
			return -EBUSY;
		}
	}
	return 0;
}

/* A free slot, else the oldest finished one. */
static struct op *op_alloc_locked(void)
{
	struct op *best = NULL;
	for (int i = 0; i < AGENT_MAX_OPS; i++) {
		struct op *o = &agent.ops[i];
		if (!o->used)
			return o;
		if (!o->running && (!best || o->end_ns < best->end_ns))
			best = o;
	}
	return best;
}

static struct op *op_start(enum op_kind kind, uint32_t job, uid_t uid, pid_t target,
			   const char *dir, char *err, size_t errlen, uint32_t *id)
{
	pthread_mutex_lock(&agent.lock);
	struct op *o = NULL;
	if (!op_busy_locked(job, target, err, errlen)) {
		o = op_alloc_locked();
		if (!o)
			snprintf(err, errlen, "too many operations running (%d)", AGENT_MAX_OPS);
	}
	if (o) {
		memset(o, 0, sizeof(*o));
		*o = (struct op){ .used = 1, .id = ++agent.next_op, .kind = kind, .job_id = job,
				  .uid = uid, .target = target, .start_ns = agent_now_ns(),
				  .running = 1 };
		snprintf(o->dir, sizeof(o->dir), "%s", dir ? dir : "");
		*id = o->id;
	}
	pthread_mutex_unlock(&agent.lock);
	return o;
}

/* The op with `id`, locked; NULL if it has been recycled. */
static struct op *op_get_locked(uint32_t id)
{
	for (int i = 0; i < AGENT_MAX_OPS; i++)
		if (agent.ops[i].used && agent.ops[i].id == id)
			return &agent.ops[i];
	return NULL;
}

/* ---- the worker ---- */

struct worker {
	pid_t pid;
	int report, errfd;
	int gate;         /* a held dump: the request pipe, for the client's gate words */
	const char *node; /* a held dump: the part's name */
};

/* The worker's fds: 3 request, 4 report, 2 log, WORKER_FD_BASE.. the
 * client's --inherit-fd fds, nothing else of the agent's. */
static void worker_child(int req, int report, int errw, const struct ident *id, const char *what,
			 const int *fds, size_t nr_fds)
{
	char u[16], g[16], p[16];
	/* The worker dies with the thread that started it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The client's fds above every number placed below, then into
	 * place once the others are. */
	int high[CKPT_MAX_INHERIT_FDS];
	for (size_t i = 0; i < nr_fds; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD, WORKER_FD_BASE + CKPT_MAX_INHERIT_FDS)) < 0)
			_exit(127);
	if (dup2(req, WORKER_REQ_FD) < 0 || dup2(report, WORKER_REPORT_FD) < 0 || dup2(errw, 2) < 0)
		_exit(127);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
	}
	for (size_t i = 0; i < nr_fds; i++)
		if (dup2(high[i], WORKER_FD_BASE + (int)i) < 0)
			_exit(127);
	close_range(WORKER_FD_BASE + (unsigned)nr_fds, ~0U, 0);
	snprintf(u, sizeof(u), "%u", id->uid);
	snprintf(g, sizeof(g), "%u", id->gid);
	snprintf(p, sizeof(p), "%d", id->peer);
	execl(agent.exe, "ckptd", "--worker", what, u, g, id->groups, p, (char *)NULL);
	_exit(127);
}

static int worker_start(struct worker *w, const ProtobufCMessage *req, const struct ident *id,
			const char *what, const int *fds, size_t nr_fds)
{
	w->gate = -1;
	int rq[2], rp[2], er[2];
	if (pipe2(rq, O_CLOEXEC))
		return -errno;
	if (pipe2(rp, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
		close(rq[0]);
		close(rq[1]);
		return -EMFILE;
	}
	w->pid = fork();
	if (w->pid == 0)
		worker_child(rq[0], rp[1], er[1], id, what, fds, nr_fds);
	close(rq[0]);
	close(rp[1]);
	close(er[1]);
	w->report = rp[0];
	w->errfd = er[0];
	int ret = w->pid < 0 ? -errno : wire_send_msg(rq[1], req);
	if (!ret && w->node)
		w->gate = rq[1]; /* a held dump: the client's words follow */
	else
		close(rq[1]);
	return ret;
}

/* Relay a progress record to the op and to the client. */
static void on_progress(struct conn *c, uint32_t id, const struct worker_msg *m)
{
	pthread_mutex_lock(&agent.lock);
	struct op *o = op_get_locked(id);
	if (o) {
		memcpy(o->phase, m->phase, sizeof(o->phase));
		o->phase[sizeof(o->phase) - 1] = '\0';
		o->done = m->done;
		o->total = m->total;
	}
	pthread_mutex_unlock(&agent.lock);
	RpcReply r = RPC_REPLY__INIT;
	RpcProgress pg = RPC_PROGRESS__INIT;
	char phase[16];
	memcpy(phase, m->phase, sizeof(phase));
	phase[15] = '\0';
	pg.phase = phase;
	pg.done = m->done;
	pg.total = m->total;
	r.progress = &pg;
	conn_reply(c->fd, &r); /* a client that left does not stop the op */
}

/* Log the worker's stderr lines; keep the last one as the error. */
static void on_stderr(uint32_t job, char *buf, size_t *len, char *last, size_t lastlen)
{
	char *nl;
	while ((nl = memchr(buf, '\n', *len))) {
		*nl = '\0';
		if (*buf) {
			agent_log(job, "%s", buf);
			snprintf(last, lastlen, "%.500s", buf);
		}
		size_t used = (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, *len - used);
		*len -= used;
	}
	if (*len == 4095) /* an endless line: flush it */
		*len = 0;
}

static void fill_restore_result(RpcRestoreResult *rr, const struct worker_msg *m)
{
	rr->total_ns = m->total_ns;
	rr->memory_bytes = m->memory_bytes;
	rr->image_bytes = m->image_bytes;
	rr->pidns = m->pidns;
	rr->has_netns = 1;
	rr->netns = m->netns;
	rr->pid = (uint32_t)m->pid;
	/* the worker's message is a record: its string ends within it */
	if (memchr(m->net_lock, '\0', sizeof(m->net_lock)) && m->net_lock[0])
		rr->net_lock = (char *)m->net_lock;
}

/* The last reply to a request: its result and, on failure, the error. */
static void final_reply(RpcReply *r, int ret, const char *err)
{
	r->done = 1;
	r->has_result = 1;
	r->result = ret;
	r->error = ret ? (char *)err : NULL;
}

/* The restored tree runs: tell the client its pid (it forwards signals). */
static void on_started(struct conn *c, uint32_t id, const struct worker_msg *m)
{
	pthread_mutex_lock(&agent.lock);
	struct op *o = op_get_locked(id);
	if (o)
		o->target = m->pid, o->started = 1, o->ran_ns = agent_now_ns();
	if (o && o->job_id)
		jobs_set_root_locked(o->job_id, m->pid);
	pthread_mutex_unlock(&agent.lock);
	RpcReply r = RPC_REPLY__INIT;
	RpcRestoreResult rr = RPC_RESTORE_RESULT__INIT;
	fill_restore_result(&rr, m);
	r.restore = &rr;
	conn_reply(c->fd, &r);
}

static void worker_relay(struct conn *c, struct worker *w, uint32_t id, uint32_t job, int journal,
			 struct worker_msg *res, int *have_res, char *last, size_t lastlen)
{
	char ebuf[4096];
	size_t elen = 0;
	int started = 0;
	/* pf[2]: the client; once a tree it waits for runs, its going away
	 * ends the tree (SIGTERM to the worker). */
	/* pf[3]: a held dump's client, whose words go on to the worker. */
	struct pollfd pf[4] = { { w->report, POLLIN, 0 }, { w->errfd, POLLIN, 0 },
				{ -1, POLLRDHUP, 0 }, { -1, POLLIN | POLLRDHUP, 0 } };
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		pf[2].fd = started ? c->fd : -1;
		pf[3].fd = w->gate >= 0 ? c->fd : -1;
		if (poll(pf, 4, -1) < 0 && errno != EINTR)
			break;
		if (pf[3].revents)
			w->gate = held_relay_client(c, job, w->gate);
		if (pf[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			agent_log(job, "operation %u: the client went away: ending the restored tree", id);
			kill(w->pid, SIGTERM);
			started = 0;
		}
		if (pf[0].revents) {
			struct worker_msg m;
			ssize_t n = read(w->report, &m, sizeof(m));
			if (n == (ssize_t)sizeof(m) && m.type == WMSG_PROGRESS)
				on_progress(c, id, &m);
			else if (n == (ssize_t)sizeof(m) && m.type == WMSG_RESULT)
				*res = m, *have_res = 1;
			else if (n == (ssize_t)sizeof(m) && m.type == WMSG_STARTED)
				on_started(c, id, &m), started = 1;
			else if (n == (ssize_t)sizeof(m) && m.type == WMSG_CREATED)
				journal_created(journal, &m);
			else if (n == (ssize_t)sizeof(m) && m.type == WMSG_GATE && w->node)
				held_reply_gate(c, &m, w->node);
			else if (n <= 0)
				pf[0].fd = -1;
		}
		if (pf[1].revents) {
			ssize_t n = read(w->errfd, ebuf + elen, sizeof(ebuf) - 1 - elen);
			if (n <= 0)
				pf[1].fd = -1;
			else
				elen += (size_t)n;
			on_stderr(job, ebuf, &elen, last, lastlen);
		}
	}
	close(w->report);
	close(w->errfd);
	if (w->gate >= 0)
		close(w->gate);
}

/* Run one worker to its end; *res holds its result record.  `held`: the
 * part's name of a held dump (held.c), else NULL. */
int ops_worker_run(struct conn *c, const ProtobufCMessage *req, const char *what, uint32_t id,
		   uint32_t job, const struct ident *who, const struct fd_list *fds, int journal,
		   const char *held, struct worker_msg *res, char *err, size_t errlen)
{
	struct worker w = { .pid = -1, .report = -1, .errfd = -1, .gate = -1, .node = held };
	int have = 0, status = 0;
	int ret = worker_start(&w, req, who, what, fds ? fds->fd : NULL, fds ? fds->nr : 0);
	if (w.pid > 0) {
		pthread_mutex_lock(&agent.lock);
		struct op *o = op_get_locked(id);
		if (o)
			o->worker = w.pid;
		pthread_mutex_unlock(&agent.lock);
		worker_relay(c, &w, id, job, journal, res, &have, err, errlen);
		while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (ret) {
		snprintf(err, errlen, "cannot start the %s worker: %s", what, strerror(-ret));
		return ret;
	}
	if (!have) {
		if (WIFSIGNALED(status))
			snprintf(err, errlen, "%s worker killed by signal %d", what, WTERMSIG(status));
		else if (!*err)
			snprintf(err, errlen, "%s worker exited with %d", what, WEXITSTATUS(status));
		return -ECANCELED;
	}
	if (res->result && !*err)
		snprintf(err, errlen, "%s failed: %s", what, strerror(-res->result));
	return res->result;
}

/* A job with no set yet to restore (the first start after a failed
 * checkpoint) is not the job's error: that stays the failure before. */
static void op_finish(uint32_t id, int result, const char *err, int no_set)
{
	pthread_mutex_lock(&agent.lock);
	struct op *o = op_get_locked(id);
	/* A check's answer is not a failure of the job's checkpoints. */
	if (o && result && o->job_id && !no_set && o->kind != OP_CHECK)
		jobs_failed_locked(o->job_id, op_kind_name(o->kind), err);
	if (o) {
		o->running = 0;
		o->worker = 0;
		o->result = result;
		o->end_ns = agent_now_ns();
		snprintf(o->error, sizeof(o->error), "%s", result ? err : "");
	}
	pthread_mutex_unlock(&agent.lock);
}

/* ---- requests ---- */

/* Where and as whom a dump writes. */
struct dump_target {
	pid_t pid;
	char dir[PATH_MAX];  /* dir mode */
	char job[16];        /* set mode: BASE/JOB/SEQ */
	char base[PATH_MAX]; /* set mode: "" = storage.base */
	uid_t owner;         /* set mode: owner of the set */
	uid_t worker_uid;    /* whom the worker becomes (dump_ident) */
	gid_t worker_gid;
	int job_user;        /* a job's own place: written as the job's user */
	struct job_steps steps; /* a job's srun steps (steps.c) */
	int has_batch;          /* a job whose batch script runs here */
};

static int primary_gid(uid_t uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*gid = res->pw_gid;
	return 0;
}

#define SLURM_STEP_SPECIAL 0xfffffff0u /* batch, extern, interactive ... */

static size_t steps_tasks(const struct job_steps *st)
{
	size_t n = 0;
	for (size_t s = 0; s < st->nr; s++)
		n += st->nr_tasks[s];
	return n;
}

/* The root of the job's one tree: the registered pid that is no srun
 * step's task (the wrapper's, negated, when it is one). */
static pid_t batch_root(const struct job *j, const struct job_steps *st)
{
	for (size_t i = 0; i < j->nr_pids; i++) {
		int task = 0;
		for (size_t s = 0; s < st->nr; s++)
			for (size_t k = 0; k < st->nr_tasks[s]; k++)
				task |= st->tasks[s][k] == (uint32_t)j->pids[i];
		if (!task)
			return j->pids[i] == j->wrapper ? -j->wrapper : j->pids[i];
	}
	return 0;
}

/* The job as a held dump sees it: without the tasks of the
 * coordinator's own step (the plugin registers them as any step's).
 * view's arrays are malloc'ed (free them); j itself when none is left
 * out. */
static struct job *without_coord(struct job *j, const RpcDump *d, struct job *view)
{
	if (!j || !d->held || !d->has_coord_step)
		return j;
	*view = *j;
	view->pids = malloc((j->nr_pids + 1) * sizeof(*view->pids));
	view->pid_steps = malloc((j->nr_pids + 1) * sizeof(*view->pid_steps));
	view->nr_pids = 0;
	if (!view->pids || !view->pid_steps) {
		free(view->pids);
		free(view->pid_steps);
		return j;
	}
	for (size_t i = 0; i < j->nr_pids; i++)
		if (j->pid_steps[i] != d->coord_step) {
			view->pids[view->nr_pids] = j->pids[i];
			view->pid_steps[view->nr_pids++] = j->pid_steps[i];
		}
	return view;
}

/* A registered job: its one tree; a set of the job unless a dir is given. */
static int resolve_job(const struct peer *p, const RpcDump *d, struct dump_target *t, char *err,
		       size_t errlen)
{
	int ret = 0, stand = 0;
	struct job view = { 0 };
	pthread_mutex_lock(&agent.lock);
	struct job *j = without_coord(jobs_find_locked(d->job_id), d, &view);
	if (!j) {
		snprintf(err, errlen, "job %u is not registered with this agent", d->job_id);
		ret = -ENOENT;
	} else if (p->uid && p->uid != j->uid) {
		snprintf(err, errlen, "uid %u may not checkpoint job %u of uid %u", p->uid, d->job_id,
			 j->uid);
		ret = -EPERM;
	} else if (j->disabled) {
		snprintf(err, errlen, "job %u: checkpoints are disabled (ckptctl checkpoint enable)",
			 d->job_id);
		ret = -EPERM;
	} else if (j->nodes > 1 && !d->held) {
		/* Each node alone would dump its ranks at another moment. */
		snprintf(err, errlen, "job %u runs on %u nodes: its checkpoints are the "
			 "coordinator's (ckptctl checkpoint create %u runs it)", d->job_id, j->nodes,
			 d->job_id);
		ret = -ENOTSUP;
	} else if (!j->nr_pids && j->ended_ns) {
		snprintf(err, errlen, "job %u has ended on this node", d->job_id);
		ret = -ESRCH;
	} else if (!j->nr_pids) {
		/* -ENODATA: nothing of the job here (a node of a multi-node job
		 * where no step runs), which the coordinator takes as no part */
		snprintf(err, errlen, "job %u: no task of it is registered (it does not run here)",
			 d->job_id);
		ret = -ENODATA;
	} else if ((ret = steps_collect_locked(j, &t->steps, err, errlen))) {
		;
	} else if (d->held && !steps_job_has_batch(j) &&
		   (stand = steps_stand_in(j, d, p->pid, &t->steps, err, errlen)) < 0) {
		ret = stand;
	} else if (stand <= 0 && j->nr_pids - steps_tasks(&t->steps) != 1) {
		snprintf(err, errlen, "job %u has %zu task trees; one dump covers one tree", d->job_id,
			 j->nr_pids - steps_tasks(&t->steps));
		ret = -ENOTSUP;
	} else {
		t->pid = stand > 0 ? (pid_t)d->stand_in : batch_root(j, &t->steps);
		t->has_batch = steps_job_has_batch(j);
		t->owner = j->uid;
		snprintf(t->job, sizeof(t->job), "%u", j->id);
		if (d->dir)
			snprintf(t->dir, sizeof(t->dir), "%s", d->dir);
		else if (d->set_base)
			snprintf(t->base, sizeof(t->base), "%s", d->set_base);
		else if (j->dir)
			snprintf(t->base, sizeof(t->base), "%s", j->dir);
		/* The job's own place (its --checkpoint-dir, which its user
		 * chose, or BASE/JOB in storage.base) is written by the job's
		 * user, whoever asks: never by root. */
		if (!d->dir && !d->set_base)
			t->job_user = 1, t->worker_uid = j->uid;
	}
	pthread_mutex_unlock(&agent.lock);
	free(view.pids);
	free(view.pid_steps);
	if (!ret && t->job_user && (ret = primary_gid(t->worker_uid, &t->worker_gid)) != 0)
		snprintf(err, errlen, "job %u: uid %u has no passwd entry", d->job_id, t->worker_uid);
	if (!ret && t->pid < 0) {
		pid_t w = -t->pid;
		t->pid = auth_wrapped_child(w, p->pid, d->held ? (pid_t)d->wrapper_exclude : 0);
		if (t->pid < 0) {
			snprintf(err, errlen, "job %u: %s under its wrapper (pid %d)", d->job_id,
				 t->pid == -ESRCH ? "no batch script runs" : "several processes run",
				 w);
			ret = t->pid == -ESRCH ? -ESRCH : -ENOTSUP;
		}
	}
	if (!ret && t->steps.nr && stand <= 0)
		ret = steps_find_clients(d->job_id, t->pid, &t->steps, err, errlen);
	if (!ret && d->n_remote_steps && t->has_batch)
		ret = steps_add_remote(d->job_id, t->pid, d, &t->steps, err, errlen);
	return ret;
}

static int resolve_dump(const struct peer *p, const RpcDump *d, struct dump_target *t,
			char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->worker_uid = p->uid;
	t->worker_gid = p->gid;
	if (d->has_job_id) {
		int ret = resolve_job(p, d, t, err, errlen);
		if (ret)
			return ret;
	} else if (d->has_pid) {
		t->pid = (pid_t)d->pid;
		snprintf(t->dir, sizeof(t->dir), "%s", d->dir ? d->dir : "");
		if (d->set_job) {
			snprintf(t->job, sizeof(t->job), "%.15s", d->set_job);
			snprintf(t->base, sizeof(t->base), "%s", d->set_base ? d->set_base : "");
			t->owner = p->uid || !d->has_owner ? p->uid : d->owner;
		}
	} else {
		snprintf(err, errlen, "dump: neither a job nor a pid");
		return -EINVAL;
	}
	if (!t->job[0] && t->dir[0] != '/' && !d->check_only) {
		snprintf(err, errlen, "dump: the image directory must be an absolute path ('%.300s')",
			 t->dir);
		return -EINVAL;
	}
	if (t->job[0] && t->dir[0])
		t->job[0] = '\0'; /* an explicit dir wins */
	if (t->base[0] && t->base[0] != '/') {
		snprintf(err, errlen, "dump: the base directory must be an absolute path ('%.300s')",
			 t->base);
		return -EINVAL;
	}
	if (strlen(t->dir) > AGENT_DUMP_PATH_MAX || strlen(t->base) > AGENT_DUMP_PATH_MAX ||
	    strchr(t->dir, '\n') || strchr(t->base, '\n')) {
		snprintf(err, errlen, "dump: the image directory is longer than %d bytes or has a "
			 "newline", AGENT_DUMP_PATH_MAX);
		return -ENAMETOOLONG;
	}
	return auth_may_dump_tree(p, t->pid, err, errlen);
}

/* Whom a dump's worker becomes: t->worker_uid, the job's user for a dump
 * into the job's own place, else the asking client (resolve_dump).  The
 * gid is the tree's own (ptrace wants the same real, effective and saved
 * gids) when the user has that group. */
static int dump_ident(const struct conn *c, const struct dump_target *t, struct ident *who)
{
	gid_t tree_gid = gid_of(t->pid);
	int ret;
	if (!t->worker_uid) {
		memset(who, 0, sizeof(*who));
		snprintf(who->groups, sizeof(who->groups), "-");
		return 0;
	}
	if (t->worker_uid != c->peer.uid || c->fd < 0) {
		ret = ident_of_user(t->worker_uid, tree_gid, who);
	} else {
		ret = ident_of_peer(c, who);
		if (!ret && tree_gid != (gid_t)-1 && in_groups(tree_gid, who->groups))
			who->gid = tree_gid;
	}
	who->peer = 0;
	return ret;
}

/* In a directory of root's alone, JOB (0700) for `uid`: made, never
 * chowned when it exists (it may be another user's).  1: made here. */
static int prepare_in(uint32_t job, const char *base, const char *name, uid_t uid, gid_t gid)
{
	struct stat st;
	int made = 0;
	if (mkdir(base, 0711) && errno != EEXIST) {
		agent_log(job, "%s: %s", base, strerror(errno));
		return 0;
	}
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) || st.st_uid != 0 || (st.st_mode & 022))
		agent_log(job, "%s is not root's alone: %s in it left to the dump", base, name);
	else if (mkdirat(fd, name, 0700))
		; /* there already (or not makeable): not ours to remove */
	else if (fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW))
		unlinkat(fd, name, AT_REMOVEDIR);
	else
		made = 1;
	close(fd);
	return made;
}

/* After a failed dump: the JOB prepare_in made, if it is still empty,
 * so that a job whose every checkpoint failed leaves nothing on storage.
 * A JOB with anything in it is not empty and stays. */
static void unprepare_in(const char *base, const char *name)
{
	struct stat st;
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!fstat(fd, &st) && st.st_uid == 0 && !(st.st_mode & 022))
		unlinkat(fd, name, AT_REMOVEDIR);
	close(fd);
}

static void unprepare_job_dirs(const struct dump_target *t, int made)
{
	if (made & 1)
		unprepare_in(agent.storage_base, t->job);
	if (made & 2)
		unprepare_in(agent.storage_local, t->job);
}

/* storage.base (and storage.local) are root's, from ckpt.conf: BASE
 * (0711) and BASE/JOB (0700, the set owner's) are made by root, and only
 * for a job registered to that user or at root's request, so that no
 * user takes another's job id ahead of it.  The set in BASE/JOB is then
 * written by the user's worker. */
/* Which of storage.base (1) and storage.local (2) got BASE/JOB made here. */
static int prepare_job_dirs(const struct peer *p, const struct dump_target *t, uint32_t job)
{
	char *end;
	unsigned long id = strtoul(t->job, &end, 10);
	gid_t gid;
	if (*end || t->job[0] < '1' || t->job[0] > '9' || id > UINT32_MAX)
		return 0; /* not a job id: nothing root makes for it */
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked((uint32_t)id);
	int allowed = !p->uid || (j && j->uid == t->owner);
	pthread_mutex_unlock(&agent.lock);
	if (!allowed || primary_gid(t->owner, &gid))
		return 0;
	int made = prepare_in(job, agent.storage_base, t->job, t->owner, gid);
	if (agent.storage_local[0])
		made |= prepare_in(job, agent.storage_local, t->job, t->owner, gid) << 1;
	return made;
}

static int reply_dump(struct conn *c, int ret, const char *err, const struct worker_msg *m,
		      const char *dir)
{
	RpcReply r = RPC_REPLY__INIT;
	RpcDumpResult dr = RPC_DUMP_RESULT__INIT;
	final_reply(&r, ret, err);
	if (!ret) {
		dr.frozen_ns = m->frozen_ns;
		dr.has_snapshot_ns = dr.has_snapshot_tasks = dr.has_frozen_copy_tasks = 1;
		dr.snapshot_ns = m->snapshot_ns;
		dr.snapshot_tasks = m->snapshot_tasks;
		dr.frozen_copy_tasks = m->frozen_copy_tasks;
		dr.n_frozen_phase_ns = CKPT_PHASE_NR;
		dr.frozen_phase_ns = (uint64_t *)m->phase_ns;
		dr.total_ns = m->total_ns;
		dr.memory_bytes = m->memory_bytes;
		dr.written_bytes = m->written_bytes;
		dr.tasks = m->tasks;
		dr.threads = m->threads;
		dr.dir = (char *)dir;
		dr.has_seq = m->seq != 0;
		dr.seq = m->seq;
		r.dump = &dr;
	}
	return conn_reply(c->fd, &r);
}

/* A held dump (held.c) is of a registered job, into the job's own place,
 * as a part named `node` (the client's, else the hostname). */
static int held_check(const RpcDump *d, const struct dump_target *t, char *node, size_t len,
		      char *err, size_t errlen)
{
	if (!d->held)
		return 0;
	if (!d->has_job_id || d->dir || d->set_base || d->parent || d->page_server ||
	    d->leave_stopped || !t->job[0] || !t->job_user) {
		snprintf(err, errlen, "held dump: only of a registered job, into its own place");
		return -EINVAL;
	}
	node[len - 1] = '\0';
	if (d->node)
		snprintf(node, len, "%s", d->node);
	else if (gethostname(node, len - 1))
		snprintf(node, len, "node");
	char *dot = d->node ? NULL : strchr(node, '.');
	if (dot)
		*dot = '\0'; /* the short name */
	if (!held_node_name(node)) {
		snprintf(err, errlen, "held dump: node name '%.64s': letters, digits, '.', '_', "
			 "'-' only", node);
		return -EINVAL;
	}
	return 0;
}

/* A check (d->check_only): what the dump would refuse, on the running
 * tree, by the worker the dump would have (the job's user for a job), no
 * set made, nothing journalled; not a failure of the job when it says no. */
static int ops_check(struct conn *c, const RpcDump *d, struct dump_target *t, uint32_t job)
{
	char err[512] = "";
	uint32_t id = 0;
	struct worker_msg res = { 0 };
	struct ident who;
	if (!op_start(OP_CHECK, job, c->peer.uid, t->pid, "-", err, sizeof(err), &id))
		return conn_error(c->fd, -EBUSY, "%s", err);
	RpcDump req = RPC_DUMP__INIT;
	req.has_pid = req.has_check_only = 1;
	req.pid = (uint32_t)t->pid;
	req.check_only = 1;
	req.has_ext_unix_sk_all = d->has_ext_unix_sk_all;
	req.ext_unix_sk_all = d->ext_unix_sk_all;
	req.ext_unix_sk = d->ext_unix_sk;
	req.n_ext_unix_sk = d->n_ext_unix_sk;
	req.has_tcp_established = d->has_tcp_established;
	req.tcp_established = d->tcp_established;
	req.has_skip_in_flight = d->has_skip_in_flight;
	req.skip_in_flight = d->skip_in_flight;
	req.has_shell_job = d->has_shell_job;
	req.shell_job = d->shell_job;
	/* Nothing is seized: the engine checks that every task is wholly
	 * the user's, as PTRACE_SEIZE would for the dump. */
	req.has_only_uid = t->worker_uid != 0;
	req.only_uid = (uint32_t)t->worker_uid;
	steps_to_rpc(&t->steps, &req);
	if (!d->has_job_id) { /* root's --step (users': refused in ops_dump) */
		req.steps = d->steps;
		req.n_steps = d->n_steps;
	}
	int ret = dump_ident(c, t, &who);
	if (ret)
		snprintf(err, sizeof(err), "uid %u: cannot list the user's groups", t->worker_uid);
	else
		ret = ops_worker_run(c, &req.base, "dump", id, job, &who, NULL, -1, NULL, &res, err,
				 sizeof(err));
	op_finish(id, ret, err, 0);
	agent_log(job, "check %u: pid %d by uid %u: %s", id, t->pid, c->peer.uid,
		  ret ? err : "a dump would go through");
	return reply_dump(c, ret, err, &res, NULL);
}

int ops_dump(struct conn *c, const RpcDump *d)
{
	char err[512] = "";
	uint32_t job = d->has_job_id ? d->job_id : 0, id = 0;
	struct dump_target t;
	int ret = resolve_dump(&c->peer, d, &t, err, sizeof(err));
	if (!ret && d->n_steps && c->peer.uid) {
		snprintf(err, sizeof(err), "dump: --step is root's (a job's steps are found by ckptd)");
		ret = -EPERM;
	}
	if (ret) {
		agent_log(job, "%s refused for uid %u: %s", d->check_only ? "check" : "dump",
			  c->peer.uid, err);
		return conn_error(c->fd, ret, "%s", err);
	}
	if (d->check_only)
		return ops_check(c, d, &t, job);
	char node[72];
	if ((ret = held_check(d, &t, node, sizeof(node), err, sizeof(err)))) {
		agent_log(job, "held dump refused for uid %u: %s", c->peer.uid, err);
		return conn_error(c->fd, ret, "%s", err);
	}
	const char *where = t.job[0] ? (t.base[0] ? t.base : "storage.base") : t.dir;
	if (!op_start(OP_DUMP, job, c->peer.uid, t.pid, where, err, sizeof(err), &id))
		return conn_error(c->fd, -EBUSY, "%s", err);
	agent_log(job, "dump %u: pid %d by uid %u into %s%s%s", id, t.pid, c->peer.uid, where,
		  t.job[0] ? "/" : "", t.job);
	RpcDump req = *d;
	req.has_pid = 1;
	req.pid = (uint32_t)t.pid;
	req.dir = t.job[0] ? NULL : t.dir;
	req.set_job = t.job[0] ? t.job : NULL;
	req.set_base = t.base[0] ? t.base : NULL;
	req.has_owner = t.job[0] != 0;
	req.owner = (uint32_t)t.owner;
	req.has_only_uid = c->peer.uid != 0;
	req.only_uid = (uint32_t)c->peer.uid;
	/* steps: a job's, found here; root may name them for a tree */
	if (d->has_job_id)
		steps_to_rpc(&t.steps, &req);
	/* A held dump's peers on other nodes are frozen too: its connections
	 * to them are dumped in repair mode (docs/coordinator.md). */
	if (d->held) {
		req.has_tcp_established = 1;
		req.tcp_established = 1;
		req.node = node;
	}
	/* A node's part without the batch script: its root is a task of a
	 * step whose srun is on another node; its stdio are that step's. */
	req.has_root_stdio_step = 1;
	req.root_stdio_step = d->held && d->has_job_id && !t.has_batch;
	struct worker_msg res = { 0 };
	struct ident who;
	char jwhere[PATH_MAX + sizeof(t.job) + 1]; /* room for all: never cut */
	snprintf(jwhere, sizeof(jwhere), "%s%s%s", where, t.job[0] ? "/" : "", t.job);
	int made = t.job[0] && !t.base[0] ? prepare_job_dirs(&c->peer, &t, job) : 0;
	int journal = -1;
	if ((ret = dump_ident(c, &t, &who))) {
		snprintf(err, sizeof(err), "uid %u: cannot list the user's groups", t.worker_uid);
	} else {
		/* What the worker creates is journalled as it goes: removed
		 * here when the worker ends without its result, or by the
		 * next agent. */
		journal = journal_add(id, job, who.uid, who.gid, jwhere);
		ret = journal < 0 ? journal : 0;
		if (ret)
			snprintf(err, sizeof(err), "%.300s/ops: cannot record the dump: %s",
				 agent.run_dir, strerror(-ret));
	}
	if (!ret)
		ret = ops_worker_run(c, &req.base, "dump", id, job, &who, NULL, journal,
				     d->held ? node : NULL, &res, err,
				 sizeof(err));
	if (journal >= 0) {
		char path[PATH_MAX];
		close(journal);
		journal_path(id, path, sizeof(path));
		if (ret)
			journal_clean(AT_FDCWD, path);
		journal_del(id);
	}
	op_finish(id, ret, err, 0);
	if (ret)
		unprepare_job_dirs(&t, made);
	if (ret)
		agent_log(job, "dump %u failed: %s", id, err);
	else
		agent_log(job, "dump %u: done in %.1f ms (frozen %.1f ms), %llu bytes written%s%.0llu",
			  id, (double)res.total_ns / 1e6, (double)res.frozen_ns / 1e6,
			  (unsigned long long)res.written_bytes, t.job[0] ? ", set " : "",
			  (unsigned long long)res.seq);
	return reply_dump(c, ret, err, &res, t.job[0] ? where : t.dir);
}

int ops_dump_job(uint32_t job, int leave_running)
{
	struct conn c = { .fd = -1, .peer = { 0, 0, getpid() } };
	RpcDump d = RPC_DUMP__INIT;
	d.has_job_id = 1;
	d.job_id = job;
	d.has_leave_running = 1;
	d.leave_running = leave_running;
	return ops_dump(&c, &d);
}

/* The set to restore: dir, or for a job without one, the job's base in
 * job_base: its latest set is found by the worker, as the user (root
 * never follows the user's `latest` link). */
static int resolve_restore(const struct peer *p, const RpcRestore *r, char *dir, char *job_base,
			   uid_t *job_uid, char *err, size_t errlen)
{
	if (r->has_job_id) {
		/* A registered job must be the caller's; the restored tree then
		 * becomes the job's tree.  An unregistered one is just a set. */
		char base[PATH_MAX], job[16];
		pthread_mutex_lock(&agent.lock);
		struct job *j = jobs_find_locked(r->job_id);
		int mine = !j || !p->uid || p->uid == j->uid;
		if (j)
			*job_uid = j->uid;
		snprintf(base, sizeof(base), "%s", j && j->dir ? j->dir : agent.storage_base);
		pthread_mutex_unlock(&agent.lock);
		if (!mine) {
			snprintf(err, errlen, "job %u: uid %u may not restore another user's job",
				 r->job_id, p->uid);
			return -EPERM;
		}
		snprintf(job, sizeof(job), "%u", r->job_id);
		if (!r->dir) {
			snprintf(job_base, PATH_MAX, "%s", base);
			snprintf(dir, PATH_MAX, "%.3000s/%s/latest", base, job);
			return 0;
		}
	}
	snprintf(dir, PATH_MAX, "%s", r->dir ? r->dir : "");
	if (dir[0] != '/') {
		snprintf(err, errlen, "restore: the image directory must be an absolute path ('%.300s')",
			 dir);
		return -EINVAL;
	}
	return 0;
}

static int reply_restore(struct conn *c, int ret, const char *err, const struct worker_msg *m)
{
	RpcReply r = RPC_REPLY__INIT;
	RpcRestoreResult rr = RPC_RESTORE_RESULT__INIT;
	final_reply(&r, ret, err);
	if (!ret) {
		fill_restore_result(&rr, m);
		rr.has_status = m->status_valid;
		rr.status = m->status;
		r.restore = &rr;
	}
	return conn_reply(c->fd, &r);
}

int ops_restore(struct conn *c, const RpcRestore *r)
{
	char err[512] = "", dir[PATH_MAX];
	uint32_t job = r->has_job_id ? r->job_id : 0, id = 0;
	uid_t job_uid = 0;
	struct fd_list fds;
	char job_base[PATH_MAX] = "";
	int ret = recv_inherit(c, r, &fds, err, sizeof(err));
	if (!ret)
		ret = resolve_restore(&c->peer, r, dir, job_base, &job_uid, err, sizeof(err));
	if (ret) {
		fds_close(&fds);
		agent_log(job, "restore refused for uid %u: %s", c->peer.uid, err);
		return conn_error(c->fd, ret, "%s", err);
	}
	if (!op_start(OP_RESTORE, job, c->peer.uid, 0, dir, err, sizeof(err), &id)) {
		fds_close(&fds);
		return conn_error(c->fd, -EBUSY, "%s", err);
	}
	agent_log(job, "restore %u: %s by uid %u", id, dir, c->peer.uid);
	RpcRestore req = *r;
	req.dir = job_base[0] ? NULL : dir;
	req.set_base = job_base[0] ? job_base : NULL;
	req.inherit_fd = fds.spec;
	struct worker_msg res = { 0 };
	struct ident who;
	/* Root's restore of a user's registered job is the user's too. */
	ret = c->peer.uid || !job_uid ? ident_of_peer(c, &who) : ident_of_user(job_uid, -1, &who);
	if (ret)
		snprintf(err, sizeof(err), "uid %u: cannot list the user's groups",
			 c->peer.uid ? c->peer.uid : job_uid);
	struct confinement conf = { .nr = 0 };
	if (!ret)
		ret = confine_read(c, &conf, err, sizeof(err));
	req.confine = conf.ptr;
	req.n_confine = conf.nr;
	if (!ret)
		ret = ops_worker_run(c, &req.base, "restore", id, job, &who, &fds, -1, NULL, &res, err,
				 sizeof(err));
	confine_free(&conf);
	fds_close(&fds);
	pthread_mutex_lock(&agent.lock);
	struct op *o = op_get_locked(id);
	if (o && !ret)
		o->target = res.pid;
	if (!ret && job && r->detach)
		jobs_set_root_locked(job, res.pid);
	pthread_mutex_unlock(&agent.lock);
	op_finish(id, ret, err, res.no_set);
	if (ret)
		agent_log(job, "restore %u failed: %s", id, err);
	else
		agent_log(job, "restore %u: pid %d running after %.1f ms", id, res.pid,
			  (double)res.total_ns / 1e6);
	return reply_restore(c, ret, err, &res);
}

int ops_cancel(const struct peer *p, uint32_t job, char *err, size_t errlen)
{
	int ret = -ENOENT;
	pthread_mutex_lock(&agent.lock);
	snprintf(err, errlen, "job %u: no operation running", job);
	for (int i = 0; i < AGENT_MAX_OPS; i++) {
		struct op *o = &agent.ops[i];
		if (!o->used || !o->running || o->job_id != job)
			continue;
		if (p->uid && p->uid != o->uid) {
			snprintf(err, errlen, "job %u: operation %u is not yours", job, o->id);
			ret = -EPERM;
		} else if (o->kind == OP_RESTORE) {
			snprintf(err, errlen, "job %u: a restore cannot be cancelled", job);
			ret = -EBUSY;
		} else if (o->worker > 0) {
			/* The parasite cures itself and the tree runs on; the
			 * operation's thread removes the unfinished set. */
			kill(o->worker, SIGKILL);
			ret = 0;
		}
	}
	pthread_mutex_unlock(&agent.lock);
	return ret;
}

void ops_fill_locked(const struct peer *p, uint32_t job_id, RpcReply *r)
{
	r->ops = calloc(AGENT_MAX_OPS, sizeof(*r->ops));
	for (int i = 0; r->ops && i < AGENT_MAX_OPS; i++) {
		struct op *o = &agent.ops[i];
		if (!o->used || (p->uid && p->uid != o->uid) || (job_id && o->job_id != job_id))
			continue;
		RpcOp *m = calloc(1, sizeof(*m) + sizeof(RpcProgress));
		if (!m)
			break;
		rpc_op__init(m);
		m->id = o->id;
		m->kind = (char *)op_kind_name(o->kind);
		m->has_job_id = o->job_id != 0;
		m->job_id = o->job_id;
		m->uid = (uint32_t)o->uid;
		m->pid = (uint32_t)o->target;
		m->dir = strdup(o->dir);
		m->start_ns = o->start_ns;
		m->has_ran_ns = o->ran_ns != 0;
		m->ran_ns = o->ran_ns;
		if (o->running && o->phase[0]) {
			RpcProgress *pg = (RpcProgress *)(m + 1);
			rpc_progress__init(pg);
			pg->phase = strdup(o->phase);
			pg->done = o->done;
			pg->total = o->total;
			m->progress = pg;
		}
		if (!o->running) {
			m->has_result = m->has_end_ns = 1;
			m->result = o->result;
			m->end_ns = o->end_ns;
			m->error = o->error[0] ? strdup(o->error) : NULL;
		}
		r->ops[r->n_ops++] = m;
	}
}

void ops_free_reply(RpcReply *r)
{
	for (size_t i = 0; i < r->n_ops; i++) {
		free(r->ops[i]->dir);
		free(r->ops[i]->error);
		if (r->ops[i]->progress)
			free(r->ops[i]->progress->phase);
		free(r->ops[i]);
	}
	free(r->ops);
	r->ops = NULL;
	r->n_ops = 0;
}
