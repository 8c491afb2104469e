/*
 * worker: `ckptd --worker dump|restore UID GID GROUPS PEER`, one process
 * per operation, started by the agent with the packed request on fd 3, a
 * report pipe on fd 4 (struct worker_msg records), its stderr going to
 * the agent's log, and from fd 5 on the fds a client passed for
 * --inherit-fd.
 *
 * For a user (UID not 0) the worker becomes that user before it reads
 * anything of the request's: real, effective, saved and fs uid and gid,
 * the supplementary GROUPS, and, for a restore the user asked for, the
 * resource limits of the asking process PEER.  It keeps only the
 * capabilities that checkpoint/restore of one's own processes needs,
 * permitted but not effective except CAP_CHECKPOINT_RESTORE (see
 * lent_caps(is_dump, d) and docs/security.md).  From there on every open, mkdir,
 * connect, bind, shmat, setpriority, setrlimit ... of the dump or restore
 * is the user's, and the kernel refuses what the user could not do; the
 * engine refuses, on the images it restores, an identity other than the
 * user's (ckpt_restore_opts.unprivileged).
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/capability.h>
#include <sys/syscall.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"
#include "core.pb-c.h"
#include "created.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "storage.h"
#include "wire.h"

static void send_msg(const struct worker_msg *m)
{
	if (write(WORKER_REPORT_FD, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(3);
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	(void)arg;
	struct worker_msg m = { .type = WMSG_PROGRESS, .done = done, .total = total };
	snprintf(m.phase, sizeof(m.phase), "%s", phase);
	send_msg(&m);
}

/* Each creation goes to the agent, which journals it: a worker killed
 * half-way (cancel, the agent killed) leaves the agent a list of exactly
 * what to remove.  Storage calls this for a file before the file has a
 * name; waiting until the agent has read the record (the pipe is empty)
 * keeps the window where a kill of the agent loses a record to the few
 * instructions between its read and its journal write. */
static void on_created(void *arg, const struct created *c)
{
	struct worker_msg m = { .type = WMSG_CREATED, .dev = c->dev, .ino = c->ino,
				.pdev = c->pdev, .pino = c->pino, .is_dir = (uint32_t)c->dir };
	int queued = 0;
	(void)arg;
	if (strlen(c->path) >= sizeof(m.path) || strchr(c->path, '\n')) {
		/* Unreportable: die before the file gets its name. */
		fprintf(stderr, "%.200s...: path too long to report to the agent\n", c->path);
		_exit(3);
	}
	strcpy(m.path, c->path);
	send_msg(&m);
	for (int i = 0; i < 20000 && !ioctl(WORKER_REPORT_FD, FIONREAD, &queued) && queued > 0; i++)
		usleep(50);
}

/* The request's srun steps (set by ckptd: steps.c) as the engine's. */
static int worker_steps(const RpcDump *d, struct ckpt_step *steps, struct ckpt_dump_opts *o)
{
	if (d->n_steps > JOB_STEPS_MAX)
		return -E2BIG;
	for (size_t s = 0; s < d->n_steps; s++) {
		const RpcStep *r = d->steps[s];
		if (!r->n_tasks && (!r->nodes || !r->num_tasks))
			return -EINVAL;
		steps[s] = (struct ckpt_step){ .client = (pid_t)r->client,
					       .tasks = (const pid_t *)r->tasks, /* uint32 pids */
					       .nr_tasks = r->n_tasks,
					       .step_id = r->step_id,
					       .nodes = r->nodes,
					       .num_tasks = r->num_tasks };
	}
	o->steps = d->n_steps ? steps : NULL;
	o->nr_steps = d->n_steps;
	return 0;
}

static int do_dump(const RpcDump *d, uid_t uid)
{
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_dump_stats st;
	o.pid = (pid_t)d->pid;
	o.dir = d->dir;
	o.leave_running = d->leave_running;
	o.leave_stopped = d->leave_stopped;
	o.ext_unix_sk_all = d->ext_unix_sk_all;
	o.ext_unix_sk = d->ext_unix_sk;
	o.nr_ext_unix_sk = d->n_ext_unix_sk;
	o.tcp_established = d->tcp_established;
	o.skip_in_flight = d->skip_in_flight;
	o.shell_job = d->shell_job;
	o.ghost_limit = d->ghost_limit;
	o.has_output_copy_limit = d->has_output_copy_limit;
	o.output_copy_limit = d->output_copy_limit;
	o.parent = d->parent;
	o.page_server = d->page_server;
	o.no_snapshot = d->no_snapshot;
	o.root_stdio_step = d->root_stdio_step;
	o.verbose = (int)d->verbose;
	o.progress = on_progress;
	o.job = d->set_job;
	o.base = d->set_base;
	/* For a user, checked by the engine on the frozen tree. */
	o.only_uid_set = d->has_only_uid;
	o.only_uid = (uid_t)d->only_uid;
	/* A set belongs to the job's user, whoever asked for it. */
	o.has_uid = d->set_job && d->has_owner;
	o.uid = (uid_t)d->owner;
	o.check_only = d->check_only;
	/* A held dump writes its part, a plain set, where its gate says. */
	struct held held;
	if (d->held) {
		held_init(&held, d);
		o.job = NULL;
		o.has_uid = d->has_owner;
		o.gate = held_gate;
		o.gate_arg = &held;
	}
	(void)uid;
	struct ckpt_step steps[JOB_STEPS_MAX];
	int ret = worker_steps(d, steps, &o);
	created_hook(on_created, NULL);
	ret = ret ? ret : ckpt_dump(&o, &st);
	struct worker_msg m = { .type = WMSG_RESULT, .result = ret };
	if (!ret) {
		m.frozen_ns = st.frozen_ns;
		m.snapshot_ns = st.snapshot_ns;
		m.snapshot_tasks = st.snapshot_tasks;
		m.frozen_copy_tasks = st.frozen_copy_tasks;
		memcpy(m.phase_ns, st.phase_ns, sizeof(m.phase_ns));
		m.total_ns = st.total_ns;
		m.memory_bytes = st.memory_bytes;
		m.written_bytes = st.written_bytes;
		m.tasks = st.nr_tasks;
		m.threads = st.nr_threads;
		m.seq = d->held ? held.seq : st.seq;
	}
	send_msg(&m);
	return ret ? 1 : 0;
}

static pid_t restored_root;

/* Without detach the tree lives as long as the client waits for it: the
 * agent sends SIGTERM when the client goes away. */
static void on_term(int sig)
{
	(void)sig;
	if (restored_root > 0)
		kill(restored_root, SIGKILL);
}

/* Our child in the tree: the restored root, or the init of its PID
 * namespace (which passes the root's status on). */
static pid_t direct_child(pid_t root)
{
	long ppid = status_number(root, "PPid");
	if (ppid > 1 && ppid != getpid())
		return (pid_t)ppid;
	return root;
}

static int wait_tree(pid_t root, int *status)
{
	struct sigaction sa = { .sa_handler = on_term };
	pid_t child = direct_child(root);
	restored_root = root;
	sigaction(SIGTERM, &sa, NULL);
	while (waitpid(child, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* The job's latest set in r->set_base, found as the user (ckptd does
 * not follow a user's `latest` link as root). */
static int job_latest(const RpcRestore *r, char *dir, size_t len)
{
	char job[16];
	snprintf(job, sizeof(job), "%u", r->job_id);
	int e = ckpt_job_latest(job, r->set_base, dir, len);
	if (e) {
		fprintf(stderr, "job %s: no committed checkpoint in %s/%s%s%s\n", job, r->set_base,
			job, e == -ENOENT ? "" : ": ", e == -ENOENT ? "" : strerror(-e));
		struct worker_msg m = { .type = WMSG_RESULT, .result = e, .no_set = 1 };
		send_msg(&m);
	}
	return e;
}

/* A job's set of several nodes: this node's part, the others through the
 * coordinator (ckpt_restore_plan), with the client's nodes and
 * environment for the step proxy's srun. */
static int plan_restore(const RpcRestore *r, struct ckpt_restore_opts *o)
{
	static struct ckpt_restore_plan plan;
	static char *env[512];
	char job[16], host[256] = "";
	if (!r->has_job_id)
		return 0;
	snprintf(job, sizeof(job), "%u", r->job_id);
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	size_t n = r->n_step_env < 511 ? r->n_step_env : 511;
	memcpy(env, r->step_env, n * sizeof(*env));
	env[n] = NULL;
	o->step_env = (const char *const *)env;
	return ckpt_restore_plan(o, job, r->job_nodes, host, r->coord, &plan);
}

static int do_restore(const RpcRestore *r, uid_t uid)
{
	struct ckpt_restore_opts o = { 0 };
	struct ckpt_restore_stats st;
	int status = 0;
	char dir[PATH_MAX];
	o.dir = r->dir;
	if (!r->dir && r->set_base && r->has_job_id) {
		if (job_latest(r, dir, sizeof(dir)))
			return 1;
		o.dir = dir;
	}
	o.detach = 1; /* the worker waits for the tree itself */
	o.pidns = (enum ckpt_pidns_mode)(r->pidns <= CKPT_PIDNS_ALWAYS ? r->pidns : 0);
	o.netns = (enum ckpt_netns_mode)(r->netns <= CKPT_NETNS_ALWAYS ? r->netns : 0);
	o.skip_file_check = r->skip_file_check;
	o.keep_later_output = r->keep_later_output;
	o.tcp_close = r->tcp_close;
	o.inet_map = r->inet_map;
	o.keep_net_lock = r->keep_net_lock;
	o.step_relay = r->step_relay;
	o.verify = r->verify;
	o.inherit_fd = (const char *const *)r->inherit_fd;
	o.nr_inherit_fd = r->n_inherit_fd;
	o.verbose = (int)r->verbose;
	o.cgroup_root = (const char *const *)r->cgroup_root;
	o.nr_cgroup_root = r->n_cgroup_root < 64 ? r->n_cgroup_root : 64;
	o.cgroups = (enum ckpt_cgroups_mode)(r->cgroups <= CKPT_CGROUPS_IGNORE ? r->cgroups : 0);
	/* An unknown value is the strictest, never a looser one. */
	o.cpu_cap = (enum ckpt_cpu_cap)(r->cpu_cap <= CKPT_CPU_CAP_NONE ? r->cpu_cap : 0);
	o.cpu_map = r->cpu_map == CKPT_CPU_MAP_JOB ? CKPT_CPU_MAP_JOB : CKPT_CPU_MAP_EXACT;
	o.progress = on_progress;
	o.unprivileged = uid != 0;
	struct ckpt_seccomp confined[16];
	for (size_t i = 0; i < r->n_confine && i < 16; i++)
		confined[i] = (struct ckpt_seccomp){ r->confine[i]->insns.data,
						     r->confine[i]->insns.len, r->confine[i]->flags };
	o.confine = confined;
	o.nr_confine = r->n_confine < 16 ? r->n_confine : 16;
	int ret = plan_restore(r, &o);
	if (!ret)
		ret = ckpt_restore(&o, &st, &status);
	restored_root = ret ? 0 : st.root_pid;
	struct worker_msg m = { .type = WMSG_RESULT, .result = ret };
	if (!ret) {
		m.total_ns = st.total_ns;
		m.memory_bytes = st.memory_bytes;
		m.image_bytes = st.image_bytes;
		m.pidns = (uint32_t)st.used_pidns;
		m.netns = (uint32_t)st.used_netns;
		m.pid = st.root_pid;
		snprintf(m.net_lock, sizeof(m.net_lock), "%s", st.net_lock);
	}
	if (!ret && !r->detach) {
		m.type = WMSG_STARTED;
		send_msg(&m);
		m.type = WMSG_RESULT;
		m.status_valid = !wait_tree(st.root_pid, &m.status);
	}
	send_msg(&m);
	return ret ? 1 : 0;
}

/* What a user's worker keeps (docs/security.md), permitted only:
 * CAP_CHECKPOINT_RESTORE for the whole operation (map_files, set_tid,
 * PR_SET_MM, ns_last_pid/shm_next_id); CAP_NET_ADMIN for TCP_REPAIR in
 * every dump (a job's connections between its own processes, mpirun's to
 * its ranks, are dumped without the user asking for them), and for a
 * restore until its images show no connection and no port held by
 * TIME_WAIT sockets; CAP_SYS_ADMIN for a dump until the seccomp filters
 * are read (PTRACE_SECCOMP_GET_FILTER; and to enter the tree's network
 * namespace, when not ours), for a restore until it knows it needs no
 * fresh PID or network namespace, or has made them. */
static uint64_t lent_caps(int is_dump, const RpcDump *d)
{
	uint64_t caps = 1ULL << CAP_CHECKPOINT_RESTORE | 1ULL << CAP_SYS_ADMIN;
	/* A check seizes nothing and reads no filter: map_files alone. */
	if (is_dump && d && d->check_only)
		return 1ULL << CAP_CHECKPOINT_RESTORE;
	return caps | 1ULL << CAP_NET_ADMIN;
}

static int set_caps(uint64_t permitted)
{
	cap_t c = cap_init(); /* all clear */
	cap_value_t cr = CAP_CHECKPOINT_RESTORE;
	for (cap_value_t v = 0; c && v < 64; v++)
		if ((permitted & (1ULL << v)) && cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_SET))
			goto fail;
	if (!c || cap_set_flag(c, CAP_EFFECTIVE, 1, &cr, CAP_SET) || cap_set_proc(c))
		goto fail;
	cap_free(c);
	return cap_reset_ambient() ? -errno : 0;
fail:
	cap_free(c);
	return -EPERM;
}

/* "G1,G2,..." or "-". */
static int parse_groups(const char *s, gid_t *groups, int max)
{
	int n = 0;
	while (*s && strcmp(s, "-") && n < max) {
		char *end;
		groups[n++] = (gid_t)strtoul(s, &end, 10);
		if (*end != ',' && *end)
			return -1;
		s = *end ? end + 1 : end;
	}
	return n;
}

static int check_became(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg) || r != uid || e != uid ||
	    s != uid || rg != gid || eg != gid || sg != gid ||
	    (uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid)
		return -EPERM;
	return 0;
}

/* The user's own limits: those of the process that asked (lowering a
 * limit needs no privilege; the kernel then refuses a restore that
 * would raise one). */
static void take_limits(pid_t peer)
{
	static const struct { const char *name; int res; } names[] = {
		{ "Max cpu time", RLIMIT_CPU }, { "Max file size", RLIMIT_FSIZE },
		{ "Max data size", RLIMIT_DATA }, { "Max stack size", RLIMIT_STACK },
		{ "Max core file size", RLIMIT_CORE }, { "Max resident set", RLIMIT_RSS },
		{ "Max processes", RLIMIT_NPROC }, { "Max open files", RLIMIT_NOFILE },
		{ "Max locked memory", RLIMIT_MEMLOCK }, { "Max address space", RLIMIT_AS },
		{ "Max file locks", RLIMIT_LOCKS }, { "Max pending signals", RLIMIT_SIGPENDING },
		{ "Max msgqueue size", RLIMIT_MSGQUEUE }, { "Max nice priority", RLIMIT_NICE },
		{ "Max realtime priority", RLIMIT_RTPRIO }, { "Max realtime timeout", RLIMIT_RTTIME },
	};
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/limits", peer);
	FILE *f = peer > 0 ? fopen(path, "re") : NULL;
	while (f && fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t n = strlen(names[i].name);
			char cur[32], max[32];
			struct rlimit rl;
			if (strncmp(line, names[i].name, n) || line[n] != ' ' ||
			    sscanf(line + 26, "%31s %31s", cur, max) != 2)
				continue;
			rl.rlim_cur = strcmp(cur, "unlimited") ? strtoull(cur, NULL, 10) : RLIM_INFINITY;
			rl.rlim_max = strcmp(max, "unlimited") ? strtoull(max, NULL, 10) : RLIM_INFINITY;
			struct rlimit now;
			if (getrlimit(names[i].res, &now))
				continue;
			if (rl.rlim_max > now.rlim_max)
				rl.rlim_max = now.rlim_max;
			if (rl.rlim_cur > rl.rlim_max)
				rl.rlim_cur = rl.rlim_max;
			setrlimit(names[i].res, &rl);
		}
	}
	if (f)
		fclose(f);
}

/* The asking user's seccomp filters (agent/confine.c), oldest first, on
 * ourselves: from here on we, and every process we restore, are filtered
 * as the user's processes are.  Installing without no_new_privs needs
 * CAP_SYS_ADMIN, lent for this too (no_new_privs would be inherited by
 * the restored processes and change them). */
static int confine(RpcSeccompFilter *const *f, size_t n)
{
	cap_value_t sa = CAP_SYS_ADMIN;
	cap_t c = n ? cap_get_proc() : NULL;
	int ret = 0;
	if (n && (!c || cap_set_flag(c, CAP_EFFECTIVE, 1, &sa, CAP_SET) || cap_set_proc(c)))
		ret = -EPERM;
	for (size_t i = 0; !ret && i < n; i++) {
		struct sock_fprog prog = { (unsigned short)(f[i]->insns.len / 8),
					   (struct sock_filter *)f[i]->insns.data };
		if (f[i]->insns.len % 8 || !prog.len)
			ret = -EINVAL;
		else if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)f[i]->flags, &prog))
			ret = -errno;
	}
	if (c) {
		cap_set_flag(c, CAP_EFFECTIVE, 1, &sa, CAP_CLEAR);
		cap_set_proc(c);
		cap_free(c);
	}
	if (ret)
		fprintf(stderr, "cannot run under the asking process's seccomp filters: %s\n",
			strerror(-ret));
	return ret;
}

/* Become uid/gid/groups with only `caps` permitted. */
static int become_user(uid_t uid, gid_t gid, const gid_t *groups, int nr, uint64_t caps)
{
	if (!uid)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 1) || setgroups((size_t)nr, groups) ||
	    setresgid(gid, gid, gid) || setresuid(uid, uid, uid) || prctl(PR_SET_KEEPCAPS, 0) ||
	    set_caps(caps) || check_became(uid, gid)) {
		fprintf(stderr, "cannot become uid %u gid %u: %s\n", uid, gid, strerror(errno));
		return -EPERM;
	}
	/* The user may signal us, not read or trace us: we hold what they do not. */
	prctl(PR_SET_DUMPABLE, 0);
	return 0;
}

/* Die with the agent.  Changing the uids cleared the parent-death
 * signal the agent set, so it is set again here: SIGKILL for a dump (the
 * parasite cures itself), SIGTERM for a restore (on_term ends the tree
 * the worker waits for). */
static int follow_agent(pid_t agent_pid, int sig)
{
	prctl(PR_SET_PDEATHSIG, sig);
	return getppid() == agent_pid ? 0 : -ESRCH;
}

/* `ckptd --worker commit`: the commit of a multi-node set (held.c), as
 * the job's user, with no capability of use. */
static int commit_main(uid_t uid, gid_t gid, const char *group_list, pid_t agent_pid)
{
	gid_t groups[256];
	void *buf;
	size_t len;
	int nr = parse_groups(group_list, groups, 256);
	if (nr < 0 || wire_recv(WORKER_REQ_FD, &buf, &len, WIRE_MAX_FRAME))
		return 2;
	close(WORKER_REQ_FD);
	RpcCommitSet *cs = rpc_commit_set__unpack(NULL, len, buf);
	free(buf);
	int ret = -EINVAL;
	if (cs && !become_user(uid, gid, groups, nr, 1ULL << CAP_CHECKPOINT_RESTORE) &&
	    !follow_agent(agent_pid, SIGKILL))
		ret = do_commit_set(cs);
	if (cs)
		rpc_commit_set__free_unpacked(cs, NULL);
	struct worker_msg m = { .type = WMSG_RESULT, .result = ret };
	send_msg(&m);
	return ret ? 1 : 0;
}

int worker_main(int argc, char **argv)
{
	void *buf;
	size_t len;
	gid_t groups[256];
	if (argc != 7)
		return 2;
	uid_t uid = (uid_t)strtoul(argv[3], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[4], NULL, 10);
	int nr = parse_groups(argv[5], groups, 256);
	pid_t peer = (pid_t)strtol(argv[6], NULL, 10);
	pid_t agent_pid = getppid();
	int is_dump = !strcmp(argv[2], "dump");
	if (!strcmp(argv[2], "commit"))
		return commit_main(uid, gid, argv[5], agent_pid);
	if (nr < 0 || wire_recv(WORKER_REQ_FD, &buf, &len, WIRE_MAX_FRAME))
		return 2;
	RpcDump *d = is_dump ? rpc_dump__unpack(NULL, len, buf) : NULL;
	RpcRestore *r = is_dump ? NULL : rpc_restore__unpack(NULL, len, buf);
	free(buf);
	/* A held dump's gate words come on the request pipe. */
	if (!d || !d->held)
		close(WORKER_REQ_FD);
	int ret = 2;
	if (!is_dump && uid)
		take_limits(peer);
	/* What a restore creates belongs where the client runs (a Slurm job
	 * step's cgroups: its limits, binding and accounting). */
	if (!is_dump && peer > 0 && ckpt_join_cgroups(peer, uid))
		return 2;
	if ((d || r) && !become_user(uid, gid, groups, nr, lent_caps(is_dump, d)) &&
	    !follow_agent(agent_pid, is_dump ? SIGKILL : SIGTERM) &&
	    (d || !confine(r->confine, r->n_confine))) {
		if (d && d->has_pid && (d->dir || d->set_job || d->check_only))
			ret = do_dump(d, uid);
		else if (r && (r->dir || r->set_base))
			ret = do_restore(r, uid);
	}
	if (d)
		rpc_dump__free_unpacked(d, NULL);
	if (r)
		rpc_restore__free_unpacked(r, NULL);
	return ret;
}
