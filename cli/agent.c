/*
 * agent: see agent.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/client.h"
#include "conf.h"
#include "progress-bar.h"
#include "rpc.pb-c.h"

#define REPLY_MAX (1u << 20)

/* The client library reads CKPT_SOCKET; without it, the agent.socket of
 * ckpt.conf is where ckptd listens, so it is ours too.  A user who points
 * CKPT_CONF at a file of hers only moves where her own ckptctl connects.
 * A file she may not read (a site's 0600) leaves the default: status and
 * cancel never needed to read it. */
int agent_socket_from_conf(void)
{
	const char *env = getenv("CKPT_SOCKET");
	struct conf *c = NULL;
	if ((env && *env) || access(conf_path(), R_OK))
		return 0;
	if (conf_load(conf_path(), &c))
		return -1;
	const char *sock = conf_get(c, "agent.socket", NULL);
	int ret = sock && *sock ? setenv("CKPT_SOCKET", sock, 1) : 0;
	if (ret)
		fprintf(stderr, "ckptctl: agent.socket %s: %s\n", sock, strerror(errno));
	conf_free(c);
	return ret;
}

int agent_route(const char *what)
{
	const char *sock = ckpt_client_socket();
	if (sock && ckpt_client_agent_up())
		return 1;
	if (geteuid() == 0)
		return 0;
	fprintf(stderr, "ckptctl: %s: ckptd is not running (%s); users checkpoint through it\n",
		what, sock ? sock : "CKPT_SOCKET=none");
	return -1;
}

/* The agent has another cwd: send it absolute paths. */
static char *absolute(const char *path, char *out)
{
	char tmp[PATH_MAX], parent[PATH_MAX];
	if (realpath(path, out))
		return out;
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(parent, sizeof(parent), "%s", path);
	char *dir = dirname(parent), *base = basename(tmp);
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return NULL;
	if (strlen(real) + strlen(base) + 2 > PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(out, real);
	strcat(strcat(out, "/"), base);
	return out;
}

/* A restore we wait for: signals we get go to the restored root, as they
 * would to a program started in the foreground. */
static volatile pid_t forward_pid;
static int net_lock_fd = -1;

/* --net-lock-fd: the kept lock's name, once the tree runs. */
static void tell_net_lock(const char *name)
{
	if (net_lock_fd < 0 || !name)
		return;
	dprintf(net_lock_fd, "%s\n", name);
	close(net_lock_fd);
	net_lock_fd = -1;
}

static const char *pidfile_path; /* --pidfile: written once the tree runs */

static int write_pidfile(pid_t pid)
{
	if (!pidfile_path)
		return 0;
	FILE *f = fopen(pidfile_path, "w");
	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f)) {
		fprintf(stderr, "ckptctl: pidfile %s: %s\n", pidfile_path, strerror(errno));
		return -EIO;
	}
	pidfile_path = NULL;
	return 0;
}

static void forward(int sig)
{
	if (forward_pid > 0)
		kill(forward_pid, sig);
}

static void start_forwarding(pid_t pid)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT };
	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
	forward_pid = pid;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Send req (and fds, for --inherit-fd); relay progress to a bar; return
 * the final reply (caller frees). */
static RpcReply *call_fds(const RpcRequest *req, const int *fds, size_t nr_fds, int *err)
{
	struct ckpt_conn *c;
	struct progress_bar bar;
	RpcReply *final = NULL;
	size_t len = rpc_request__get_packed_size(req);
	void *buf = malloc(len + 1);
	*err = buf ? ckpt_conn_open(ckpt_client_socket(), &c) : -ENOMEM;
	if (*err) {
		free(buf);
		return NULL;
	}
	rpc_request__pack(req, buf);
	*err = ckpt_conn_send(c, buf, len);
	free(buf);
	if (!*err && nr_fds)
		*err = ckpt_conn_send_fds(c, fds, nr_fds);
	/* A connection ckptd refuses (too many) is answered and closed before
	 * the request is read: the send fails, the answer is there to read. */
	if (*err == -EPIPE || *err == -ECONNRESET)
		*err = 0;
	bar_init(&bar);
	while (!*err && !final) {
		if ((*err = ckpt_conn_recv(c, &buf, &len, REPLY_MAX)))
			break;
		RpcReply *r = rpc_reply__unpack(NULL, len, buf);
		free(buf);
		if (!r) {
			*err = -EPROTO;
		} else if (r->done) {
			final = r;
		} else {
			if (r->progress)
				bar_update(&bar, r->progress->phase, r->progress->done,
					   r->progress->total);
			if (r->restore && r->restore->pid > 0) {
				bar_done(&bar);
				write_pidfile((pid_t)r->restore->pid);
				tell_net_lock(r->restore->net_lock);
				start_forwarding((pid_t)r->restore->pid);
			}
			rpc_reply__free_unpacked(r, NULL);
		}
	}
	bar_done(&bar);
	forward_pid = 0;
	ckpt_conn_close(c);
	if (*err == -ENODATA || *err == -EPROTO)
		fprintf(stderr, "ckptctl: the agent closed the connection\n");
	return final;
}

static RpcReply *call(const RpcRequest *req, int *err)
{
	return call_fds(req, NULL, 0, err);
}

/* --inherit-fd fd[N]:RESOURCE: our fd N goes to the agent with the
 * request (the restore never sees an fd number of the agent's). */
static int inherit_fds(const struct ckpt_restore_opts *o, int *fds)
{
	if (o->nr_inherit_fd > CKPT_MAX_INHERIT_FDS) {
		fprintf(stderr, "ckptctl: restore: at most %d --inherit-fd\n", CKPT_MAX_INHERIT_FDS);
		return -E2BIG;
	}
	for (size_t i = 0; i < o->nr_inherit_fd; i++) {
		int n = -1;
		if (sscanf(o->inherit_fd[i], "fd[%d]:", &n) != 1 || n < 0) {
			fprintf(stderr, "ckptctl: --inherit-fd %s: expected fd[N]:RESOURCE\n",
				o->inherit_fd[i]);
			return -EINVAL;
		}
		if (fcntl(n, F_GETFD) < 0) {
			fprintf(stderr, "ckptctl: --inherit-fd %s: fd %d is not open\n",
				o->inherit_fd[i], n);
			return -EBADF;
		}
		fds[i] = n;
	}
	return 0;
}

RpcReply *agent_call(const RpcRequest *req)
{
	int err;
	RpcReply *r = call(req, &err);
	if (!r && (err == -ENOENT || err == -ECONNREFUSED))
		fprintf(stderr, "ckptctl: ckptd is not running (%s): %s\n",
			ckpt_client_socket() ? ckpt_client_socket() : "CKPT_SOCKET=none",
			strerror(-err));
	else if (!r)
		fprintf(stderr, "ckptctl: no valid answer from ckptd: %s\n", strerror(-err));
	return r;
}

/* The final reply's result; prints its error line. */
static int result_of(RpcReply *r, int err)
{
	if (!r)
		return err ? err : -EPROTO;
	int ret = r->has_result ? r->result : 0;
	if (ret)
		agent_error(r);
	return ret;
}

int agent_dump(const struct ckpt_dump_opts *o, uint32_t job, struct ckpt_dump_stats *st)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcDump d = RPC_DUMP__INIT;
	char dir[PATH_MAX];
	if (o->dir && !absolute(o->dir, dir)) {
		fprintf(stderr, "ckptctl: dump: %s: %s\n", o->dir, strerror(errno));
		return -errno;
	}
	char *end = NULL;
	/* --job without -t: the job's registered tree, into a set of the job. */
	if (o->job && !o->pid)
		job = (uint32_t)strtoul(o->job, &end, 10);
	if (end && (*end || !job)) {
		fprintf(stderr, "ckptctl: dump: --job %s: a registered job is a number\n", o->job);
		return -EINVAL;
	}
	if (o->job && o->pid) {
		d.set_job = (char *)o->job;
		d.has_owner = o->has_uid;
		d.owner = (uint32_t)o->uid;
	}
	d.set_base = (char *)o->base;
	d.has_job_id = job != 0;
	d.job_id = job;
	d.has_pid = o->pid != 0;
	d.pid = (uint32_t)o->pid;
	d.dir = o->dir ? dir : NULL;
	d.has_leave_running = d.has_leave_stopped = 1;
	d.leave_running = o->leave_running;
	d.leave_stopped = o->leave_stopped;
	d.has_ext_unix_sk_all = d.has_tcp_established = d.has_shell_job = 1;
	d.ext_unix_sk_all = o->ext_unix_sk_all;
	d.ext_unix_sk = (uint64_t *)o->ext_unix_sk;
	d.n_ext_unix_sk = o->nr_ext_unix_sk;
	d.tcp_established = o->tcp_established;
	d.has_skip_in_flight = o->skip_in_flight != 0;
	d.skip_in_flight = o->skip_in_flight;
	d.shell_job = o->shell_job;
	d.has_ghost_limit = o->ghost_limit != 0;
	d.ghost_limit = o->ghost_limit;
	d.has_output_copy_limit = o->has_output_copy_limit != 0;
	d.output_copy_limit = o->output_copy_limit;
	d.parent = (char *)o->parent;
	d.page_server = (char *)o->page_server;
	d.has_no_snapshot = o->no_snapshot != 0;
	d.no_snapshot = o->no_snapshot;
	d.has_verbose = 1;
	d.verbose = (uint32_t)o->verbose;
	d.has_check_only = o->check_only != 0;
	d.check_only = o->check_only;
	RpcStep steps[16], *step_ptrs[16];
	for (size_t i = 0; i < o->nr_steps && i < 16; i++) {
		rpc_step__init(&steps[i]);
		steps[i].client = (uint32_t)o->steps[i].client;
		steps[i].tasks = (uint32_t *)o->steps[i].tasks; /* pids as uint32 */
		steps[i].n_tasks = o->steps[i].nr_tasks;
		step_ptrs[i] = &steps[i];
	}
	d.steps = o->nr_steps ? step_ptrs : NULL;
	d.n_steps = o->nr_steps < 16 ? o->nr_steps : 16;
	req.req_case = RPC_REQUEST__REQ_DUMP;
	req.dump = &d;
	int err;
	RpcReply *r = call(&req, &err);
	int ret = result_of(r, err);
	memset(st, 0, sizeof(*st));
	if (!ret && r->dump) {
		st->frozen_ns = r->dump->frozen_ns;
		st->snapshot_ns = r->dump->snapshot_ns;
		st->snapshot_tasks = r->dump->snapshot_tasks;
		st->frozen_copy_tasks = r->dump->frozen_copy_tasks;
		/* an older ckptd sends none: then none is printed */
		for (size_t i = 0; i < r->dump->n_frozen_phase_ns && i < CKPT_PHASE_NR; i++)
			st->phase_ns[i] = r->dump->frozen_phase_ns[i];
		st->total_ns = r->dump->total_ns;
		st->memory_bytes = r->dump->memory_bytes;
		st->written_bytes = r->dump->written_bytes;
		st->nr_tasks = r->dump->tasks;
		st->nr_threads = r->dump->threads;
		st->seq = r->dump->seq;
	}
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return ret;
}

static size_t count_env(char **env)
{
	size_t n = 0;
	while (env && env[n])
		n++;
	return n;
}

int agent_restore(const struct ckpt_restore_opts *o, uint32_t job,
		  const struct restore_job_extra *x, struct ckpt_restore_stats *st, int *status)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRestore rs = RPC_RESTORE__INIT;
	char dir[PATH_MAX];
	if (o->dir && !absolute(o->dir, dir)) {
		fprintf(stderr, "ckptctl: restore: %s: %s\n", o->dir, strerror(errno));
		return -errno;
	}
	rs.dir = o->dir ? dir : NULL;
	rs.has_job_id = job != 0;
	rs.job_id = job;
	rs.has_pidns = rs.has_skip_file_check = rs.has_verbose = rs.has_detach = 1;
	rs.pidns = (uint32_t)o->pidns;
	rs.has_netns = 1;
	rs.netns = (uint32_t)o->netns;
	rs.skip_file_check = o->skip_file_check;
	rs.has_keep_later_output = 1;
	rs.keep_later_output = o->keep_later_output;
	rs.has_tcp_close = 1;
	rs.tcp_close = o->tcp_close;
	rs.inet_map = (char *)o->inet_map;
	rs.has_keep_net_lock = 1;
	rs.keep_net_lock = o->keep_net_lock;
	rs.step_relay = (char *)o->step_relay;
	rs.has_verify = 1;
	rs.verify = o->verify;
	rs.inherit_fd = (char **)o->inherit_fd;
	rs.n_inherit_fd = o->nr_inherit_fd;
	rs.verbose = (uint32_t)o->verbose;
	rs.detach = o->detach;
	rs.cgroup_root = (char **)o->cgroup_root;
	rs.n_cgroup_root = o->nr_cgroup_root;
	rs.has_cgroups = 1;
	rs.cgroups = (uint32_t)o->cgroups;
	rs.has_cpu_cap = 1;
	rs.cpu_cap = (uint32_t)o->cpu_cap;
	rs.has_cpu_map = 1;
	rs.cpu_map = (uint32_t)o->cpu_map;
	if (x) {
		rs.job_nodes = (char *)x->job_nodes;
		rs.coord = (char *)x->coord;
		rs.step_env = x->env;
		rs.n_step_env = count_env(x->env);
		net_lock_fd = x->net_lock_fd;
	}
	req.req_case = RPC_REQUEST__REQ_RESTORE;
	req.restore = &rs;
	int fds[CKPT_MAX_INHERIT_FDS];
	int err = inherit_fds(o, fds);
	if (err)
		return err;
	pidfile_path = o->pidfile;
	RpcReply *r = call_fds(&req, fds, o->nr_inherit_fd, &err);
	int ret = result_of(r, err);
	memset(st, 0, sizeof(*st));
	if (!ret && r->restore) {
		st->total_ns = r->restore->total_ns;
		st->memory_bytes = r->restore->memory_bytes;
		st->image_bytes = r->restore->image_bytes;
		st->used_pidns = r->restore->pidns;
		st->used_netns = r->restore->has_netns && r->restore->netns;
		st->root_pid = (pid_t)r->restore->pid;
		*status = r->restore->status;
		if (r->restore->net_lock)
			snprintf(st->net_lock, sizeof(st->net_lock), "%s", r->restore->net_lock);
		tell_net_lock(r->restore->net_lock);
	}
	if (!ret)
		ret = write_pidfile(st->root_pid);
	pidfile_path = NULL;
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return ret;
}

int agent_net_unlock(const char *name)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcNetUnlock u = RPC_NET_UNLOCK__INIT;
	u.name = (char *)name;
	req.req_case = RPC_REQUEST__REQ_NET_UNLOCK;
	req.net_unlock = &u;
	int err = 0;
	RpcReply *r = call(&req, &err);
	int ret = result_of(r, err);
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return ret;
}
