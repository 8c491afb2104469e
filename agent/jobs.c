/*
 * jobs: the registry of jobs whose tasks the agent may checkpoint.  The
 * Slurm plugin registers each step's task roots (as root, on behalf of
 * the job's user); users may register their own processes.  Each job is
 * also kept in RUN_DIR/registry/JOBID.job (a packed rpc_job) so that a
 * restarted agent still knows it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

struct job *jobs_find_locked(uint32_t id)
{
	for (struct job *j = agent.jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static void job_free(struct job *j)
{
	free(j->pids);
	free(j->pid_steps);
	free(j->cgroup);
	free(j->policy);
	free(j->dir);
	free(j);
}

static RpcJob *job_to_msg(const struct job *j, RpcJob *m, uint32_t *pids)
{
	rpc_job__init(m);
	m->job_id = j->id;
	m->uid = (uint32_t)j->uid;
	m->steps = (uint32_t *)j->steps;
	m->n_steps = j->nr_steps;
	for (size_t i = 0; i < j->nr_pids; i++)
		pids[i] = (uint32_t)j->pids[i];
	m->pids = pids;
	m->n_pids = j->nr_pids;
	m->cgroup = j->cgroup;
	m->policy = j->policy;
	m->dir = j->dir;
	m->has_interval_min = j->interval_min != 0;
	m->interval_min = j->interval_min;
	m->has_nodes = j->nodes > 1;
	m->nodes = j->nodes;
	m->has_wrapper_pid = j->wrapper != 0;
	m->wrapper_pid = (uint32_t)j->wrapper;
	m->has_disabled = 1;
	m->disabled = j->disabled;
	m->last_error = j->last_error[0] ? (char *)j->last_error : NULL;
	m->has_last_error_ns = j->last_error_ns != 0;
	m->last_error_ns = j->last_error_ns;
	m->has_ended_ns = j->ended_ns != 0;
	m->ended_ns = j->ended_ns;
	return m;
}

/* RUN_DIR/registry/JOBID.job, replaced atomically; removed when gone. */
static void job_save(const struct job *j, uint32_t id)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/registry/%u.job", agent.run_dir, id);
	if (!j) {
		unlink(path);
		return;
	}
	uint32_t *pids = calloc(j->nr_pids + 1, sizeof(*pids));
	RpcJob m;
	if (!pids)
		return;
	job_to_msg(j, &m, pids);
	size_t len = rpc_job__get_packed_size(&m);
	uint8_t *buf = malloc(len + 1);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = buf ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	if (fd >= 0) {
		rpc_job__pack(&m, buf);
		if (write(fd, buf, len) == (ssize_t)len && !close(fd))
			rename(tmp, path);
		else
			unlink(tmp);
	}
	free(buf);
	free(pids);
}

static int add_step(struct job *j, uint32_t step)
{
	for (size_t i = 0; i < j->nr_steps; i++)
		if (j->steps[i] == step)
			return 0;
	if (j->nr_steps == sizeof(j->steps) / sizeof(j->steps[0]))
		return -E2BIG;
	j->steps[j->nr_steps++] = step;
	return 0;
}

static int add_pids(struct job *j, uint32_t step, const uint32_t *pids, size_t n)
{
	if (j->nr_pids + n > AGENT_MAX_PIDS)
		return -E2BIG;
	pid_t *p = realloc(j->pids, (j->nr_pids + n + 1) * sizeof(*p));
	if (p)
		j->pids = p;
	uint32_t *s = realloc(j->pid_steps, (j->nr_pids + n + 1) * sizeof(*s));
	if (s)
		j->pid_steps = s;
	if (!p || !s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		j->pids[j->nr_pids] = (pid_t)pids[i];
		j->pid_steps[j->nr_pids++] = step;
	}
	return 0;
}

static void set_str(char **dst, const char *src)
{
	if (!src)
		return;
	free(*dst);
	*dst = strndup(src, PATH_MAX);
}

/* A user registers only their own uid and processes; root anything. */
static int may_register(const struct peer *p, const RpcRegister *r, char *err, size_t errlen)
{
	if (p->uid == 0)
		return 0;
	if (r->uid != p->uid) {
		snprintf(err, errlen, "uid %u may not register a job for uid %u", p->uid, r->uid);
		return -EPERM;
	}
	for (size_t i = 0; i < r->n_pids; i++) {
		int ret = auth_may_dump_tree(p, (pid_t)r->pids[i], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_register(const RpcRegister *r, char *err, size_t errlen)
{
	if (!r->job_id || r->n_pids > AGENT_MAX_PIDS) {
		snprintf(err, errlen, "bad registration: job id %u with %zu pids", r->job_id,
			 r->n_pids);
		return -EINVAL;
	}
	for (size_t i = 0; i < r->n_pids; i++)
		if (r->pids[i] < 2 || r->pids[i] > 4194304) {
			snprintf(err, errlen, "bad registration: pid %u", r->pids[i]);
			return -EINVAL;
		}
	if (r->dir && r->dir[0] != '/') {
		snprintf(err, errlen, "checkpoint directory %s is not absolute", r->dir);
		return -EINVAL;
	}
	return 0;
}

/* The job's directory with the symlinks of its existing part resolved
 * now (/home -> /export/home), as `dump -D` resolves its path in the
 * client: the worker, as the user, then creates the rest and refuses any
 * symlink found on the way later.  Nothing is created here. */
static int canonical_dir(const char *dir, char *out, size_t len, char *err, size_t errlen)
{
	char head[PATH_MAX], real[PATH_MAX];
	if (strlen(dir) >= sizeof(head) || strstr(dir, "/../") ||
	    (strlen(dir) >= 3 && !strcmp(dir + strlen(dir) - 3, "/.."))) {
		snprintf(err, errlen, "checkpoint directory %.300s: too long or with '..'", dir);
		return -EINVAL;
	}
	snprintf(head, sizeof(head), "%s", dir);
	size_t cut = strlen(head);
	for (;;) {
		if (realpath(head, real))
			break;
		char *slash = strrchr(head, '/');
		if (!slash || slash == head) {
			snprintf(real, sizeof(real), "/");
			cut = 0;
			break;
		}
		*slash = '\0';
		cut = (size_t)(slash - head);
	}
	const char *rest = dir + cut;
	while (*rest == '/')
		rest++;
	if ((size_t)snprintf(out, len, "%s%s%s", real, strcmp(real, "/") && *rest ? "/" : "", rest) >=
	    len) {
		snprintf(err, errlen, "checkpoint directory %.300s: too long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

#define MAX_ENDED_JOBS 256

/* Drop a job from the registry, and its file. */
static void forget_locked(struct job *j)
{
	struct job **pp = &agent.jobs;
	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = j->next;
	job_save(NULL, j->id);
	job_free(j);
}

/* Records of ended jobs: kept retention.ended_keep_s (their sets are
 * collected then), at most MAX_ENDED_JOBS, the oldest out. */
static void forget_old_locked(void)
{
	size_t n = 0;
	struct job *oldest = NULL, *next;
	uint64_t now = agent_now_ns();
	for (struct job *j = agent.jobs; j; j = next) {
		next = j->next;
		if (!j->ended_ns)
			continue;
		if (now - j->ended_ns > agent.ended_keep_s * 1000000000ULL) {
			forget_locked(j);
			continue;
		}
		n++;
		if (!oldest || j->ended_ns < oldest->ended_ns)
			oldest = j;
	}
	if (n > MAX_ENDED_JOBS)
		forget_locked(oldest);
}

int jobs_register(const struct peer *p, const RpcRegister *r, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int ret = check_register(r, err, errlen);
	if (!ret && r->dir)
		ret = canonical_dir(r->dir, dir, sizeof(dir), err, errlen);
	if (!ret)
		ret = may_register(p, r, err, errlen);
	if (ret)
		return ret;
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked(r->job_id);
	/* Another user's record of an ended job: the id was reused (a new
	 * cluster, or a user's own registration), that job is over. */
	if (j && j->ended_ns && j->uid != r->uid)
		forget_locked(j);
	j = jobs_find_locked(r->job_id);
	int fresh = !j;
	if (j && j->uid != r->uid) {
		snprintf(err, errlen, "job %u is registered for uid %u", r->job_id, j->uid);
		ret = -EPERM;
	} else if (fresh && !(j = calloc(1, sizeof(*j)))) {
		ret = -ENOMEM;
	}
	if (!ret) {
		j->id = r->job_id;
		j->uid = r->uid;
		ret = add_step(j, r->step_id);
		if (!ret)
			ret = add_pids(j, r->step_id, r->pids, r->n_pids);
		set_str(&j->cgroup, r->cgroup);
		set_str(&j->policy, r->policy);
		set_str(&j->dir, r->dir ? dir : NULL);
		if (r->has_nodes)
			j->nodes = r->nodes;
		if (r->wrapper && r->n_pids == 1)
			j->wrapper = (pid_t)r->pids[0];
		if (r->has_interval_min)
			j->interval_min = r->interval_min;
		j->ended_ns = 0; /* a requeued job runs again */
		if (fresh && !ret) {
			j->next = agent.jobs;
			agent.jobs = j;
		} else if (fresh) {
			job_free(j);
		}
		if (!ret)
			job_save(j, j->id);
	}
	pthread_mutex_unlock(&agent.lock);
	if (ret && !*err)
		snprintf(err, errlen, "job %u: cannot register: %s", r->job_id, strerror(-ret));
	return ret;
}

/* Drop one step's pids (and the step) from a job. */
static void drop_step(struct job *j, uint32_t step)
{
	size_t n = 0;
	for (size_t i = 0; i < j->nr_pids; i++)
		if (j->pid_steps[i] != step) {
			j->pids[n] = j->pids[i];
			j->pid_steps[n++] = j->pid_steps[i];
		}
	j->nr_pids = n;
	n = 0;
	for (size_t i = 0; i < j->nr_steps; i++)
		if (j->steps[i] != step)
			j->steps[n++] = j->steps[i];
	j->nr_steps = n;
}

int jobs_unregister(const struct peer *p, const RpcUnregister *r, char *err, size_t errlen)
{
	int ret = 0;
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked(r->job_id);
	if (!j || j->ended_ns) {
		snprintf(err, errlen, "job %u is not registered", r->job_id);
		ret = -ENOENT;
	} else if (p->uid != 0 && p->uid != j->uid) {
		snprintf(err, errlen, "uid %u may not unregister job %u of uid %u", p->uid,
			 r->job_id, j->uid);
		ret = -EPERM;
	} else {
		if (r->has_step_id)
			drop_step(j, r->step_id);
		if (!r->has_step_id || !j->nr_steps) {
			/* Ended here: `ckptctl checkpoint list` still finds its
			 * sets (its --checkpoint-dir), `error` tells why its last
			 * checkpoint failed, a requeued run registers again. */
			j->nr_pids = j->nr_steps = 0;
			j->wrapper = 0;
			j->ended_ns = agent_now_ns();
			job_save(j, j->id);
			forget_old_locked();
		} else {
			job_save(j, j->id);
		}
	}
	pthread_mutex_unlock(&agent.lock);
	return ret;
}

/* Jobs the peer may see (root: all; a user: their own). */
void jobs_fill_locked(const struct peer *p, uint32_t job_id, int with_ended, RpcReply *r)
{
	forget_old_locked();
	size_t n = 0;
	for (struct job *j = agent.jobs; j; j = j->next)
		n++;
	r->jobs = calloc(n + 1, sizeof(*r->jobs));
	for (struct job *j = agent.jobs; r->jobs && j; j = j->next) {
		if ((p->uid && p->uid != j->uid) || (job_id && j->id != job_id) ||
		    (j->ended_ns && !with_ended))
			continue;
		RpcJob *m = malloc(sizeof(*m));
		uint32_t *pids = calloc(j->nr_pids + 1, sizeof(*pids));
		uint32_t *steps = calloc(j->nr_steps + 1, sizeof(*steps));
		if (!m || !pids || !steps) {
			free(m);
			free(pids);
			free(steps);
			break;
		}
		job_to_msg(j, m, pids);
		memcpy(steps, j->steps, j->nr_steps * sizeof(*steps));
		m->steps = steps;
		m->cgroup = j->cgroup ? strdup(j->cgroup) : NULL;
		m->policy = j->policy ? strdup(j->policy) : NULL;
		m->dir = j->dir ? strdup(j->dir) : NULL;
		m->last_error = j->last_error[0] ? strdup(j->last_error) : NULL;
		r->jobs[r->n_jobs++] = m;
	}
}

void jobs_free_reply(RpcReply *r)
{
	for (size_t i = 0; i < r->n_jobs; i++) {
		free(r->jobs[i]->pids);
		free(r->jobs[i]->steps);
		free(r->jobs[i]->cgroup);
		free(r->jobs[i]->policy);
		free(r->jobs[i]->dir);
		free(r->jobs[i]->last_error);
		free(r->jobs[i]);
	}
	free(r->jobs);
	r->jobs = NULL;
	r->n_jobs = 0;
}

/* At start: the jobs a previous agent registered. */
void jobs_load(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/registry", agent.run_dir);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".job"))
			continue;
		uint8_t buf[65536];
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		RpcJob *m = n > 0 ? rpc_job__unpack(NULL, (size_t)n, buf) : NULL;
		if (!m || m->n_pids > AGENT_MAX_PIDS) {
			agent_log(0, "%s/%s: unreadable registration, ignored", path, de->d_name);
			if (m)
				rpc_job__free_unpacked(m, NULL);
			continue;
		}
		struct job *j = calloc(1, sizeof(*j));
		if (j) {
			j->id = m->job_id;
			j->uid = m->uid;
			for (size_t i = 0; i < m->n_steps; i++)
				add_step(j, m->steps[i]);
			add_pids(j, m->n_steps ? m->steps[0] : 0, m->pids, m->n_pids);
			set_str(&j->cgroup, m->cgroup);
			set_str(&j->policy, m->policy);
			set_str(&j->dir, m->dir);
			j->interval_min = m->interval_min;
			j->disabled = m->disabled;
			j->wrapper = (pid_t)m->wrapper_pid;
			j->nodes = m->nodes;
			snprintf(j->last_error, sizeof(j->last_error), "%s",
				 m->last_error ? m->last_error : "");
			j->last_error_ns = m->last_error_ns;
			j->ended_ns = m->ended_ns;
			j->next = agent.jobs;
			agent.jobs = j;
			agent_log(j->id, "registration of uid %u reloaded (%zu tasks)", j->uid,
				  j->nr_pids);
		}
		rpc_job__free_unpacked(m, NULL);
	}
	if (d)
		closedir(d);
}

void jobs_free_all(void)
{
	pthread_mutex_lock(&agent.lock);
	while (agent.jobs) {
		struct job *j = agent.jobs;
		agent.jobs = j->next;
		job_free(j);
	}
	pthread_mutex_unlock(&agent.lock);
}

/* A restored job: its one tree is now the restored one. */
void jobs_set_root_locked(uint32_t id, pid_t root)
{
	struct job *j = jobs_find_locked(id);
	/* A job that ended here, restored by hand, is just a set restored:
	 * nothing would unregister that tree. */
	if (!j || root <= 0 || j->ended_ns)
		return;
	uint32_t step = j->nr_pids ? j->pid_steps[0] : (j->nr_steps ? j->steps[0] : 0);
	j->nr_pids = 0;
	j->wrapper = 0;
	uint32_t pid = (uint32_t)root;
	if (!add_pids(j, step, &pid, 1))
		job_save(j, j->id);
	agent_log(id, "the job's tree is now the restored pid %d", root);
}

/* Kept for `ckptctl checkpoint error`, also across agent restarts. */
void jobs_failed_locked(uint32_t id, const char *what, const char *err)
{
	struct job *j = jobs_find_locked(id);
	if (!j)
		return;
	snprintf(j->last_error, sizeof(j->last_error), "%s: %s", what, err);
	j->last_error_ns = agent_now_ns();
	job_save(j, j->id);
}

int jobs_ctl(const struct peer *p, const RpcJobCtl *c, char *err, size_t errlen)
{
	int ret = 0;
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked(c->job_id);
	if (!j) {
		snprintf(err, errlen, "job %u is not registered with this agent", c->job_id);
		ret = -ENOENT;
	} else if (p->uid && p->uid != j->uid) {
		snprintf(err, errlen, "uid %u may not change job %u of uid %u", p->uid, c->job_id,
			 j->uid);
		ret = -EPERM;
	} else {
		j->disabled = !c->enable;
		job_save(j, j->id);
	}
	pthread_mutex_unlock(&agent.lock);
	return ret;
}
