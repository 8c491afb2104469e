/*
 * checkpoint: `ckptctl checkpoint VERB JOBID`, the verbs scontrol had
 * before Slurm 20.02 removed them (its NEWS, 20.02.0pre1: "Removed the
 * checkpoint plugin interface and all associated API calls"; BLCR went in
 * 19.05), for jobs registered with this node's ckptd (the Slurm plugin
 * registers jobs submitted with --checkpoint):
 *
 *   create    checkpoint the job into a new set, the job goes on
 *   vacate    checkpoint it, then requeue it (scontrol requeue): it stops
 *             here and goes on from the checkpoint where Slurm starts it;
 *             with --timelimit=stop|requeue:N (the batch wrapper, at the
 *             time limit), requeue only while the job has been requeued
 *             at its time limit fewer than N times (timelimit.c), else
 *             just stop
 *   restart   requeue it: it starts again from its latest set
 *   list      its committed sets
 *   able      can it be checkpointed now (exit 0) or why not (exit 1): ckptd
 *             runs the dump's checks on the running tree, stopping nothing;
 *             exit 2 when it cannot be asked (a bad argument, no agent, a
 *             job the agent does not know), as grep(1) tells "no match"
 *             from an error, so that a script can tell "no" from "cannot say"
 *   error     the last failure of a checkpoint or restore of the job
 *   disable / enable   refuse / allow checkpoints of the job
 *
 * Root may act on any job, a user on their own (ckptd checks; scontrol
 * checks the requeue).  A job on several nodes (the plugin tells ckptd
 * how many) is checkpointed by the coordinator's job step, which create
 * and vacate run (coord-step.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "constraint.h"
#include "ckpt/ckpt.h"
#include "ckpt/client.h"
#include "progress-bar.h"
#include "rpc.pb-c.h"
#include "conf.h"
#include "storage.h"
#include "timelimit.h"

/* "checkpoint VERB", what our lines start with. */
static char what[32];
/* checkpoint able: its exit statuses, yes 0, no 1, cannot say 2; and
 * the answer do_able gave (-1: none, something failed before). */
enum { ABLE_YES = 0, ABLE_NO = 1, ABLE_ERROR = 2 };
static int able_answer = -1;
/* vacate --timelimit=ACTION */
static const char *timelimit;

/* The job as this node's agent has it, or the record of it if it ended
 * here (*out NULL: neither; no message). */
static RpcReply *job_status(uint32_t job, const RpcJob **out)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcStatus s = RPC_STATUS__INIT;
	s.has_job_id = s.has_ended = s.ended = 1;
	s.job_id = job;
	req.req_case = RPC_REQUEST__REQ_STATUS;
	req.status = &s;
	RpcReply *r = agent_call(&req);
	*out = r && r->n_jobs ? r->jobs[0] : NULL;
	return r;
}

static void not_registered(uint32_t job)
{
	fprintf(stderr, "ckptctl: %s: job %u is not registered with this node's ckptd (not "
			"submitted with --checkpoint, not run here, or not yours)\n", what, job);
}

static int run_scontrol(const char *verb, uint32_t job);
static int job_base(const RpcJob *j, char *base, size_t len);

/* Where the job's sets are, as its registration here says: 1 with base
 * filled, else 0. */
static int known_base(uint32_t job, char *base, size_t len)
{
	const RpcJob *j;
	RpcReply *r = job_status(job, &j);
	int known = r && j && !job_base(j, base, len);
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return known;
}

/* Requeue the job onto nodes that can restore its latest set. */
static int requeue(uint32_t job)
{
	char base[PATH_MAX];
	int known = known_base(job, base, sizeof(base));
	int ret = requeue_constrained(job, known ? base : NULL);
	return ret > 0 ? run_scontrol("requeue", job) : ret;
}

static int run_scontrol(const char *verb, uint32_t job)
{
	char id[16];
	snprintf(id, sizeof(id), "%u", job);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		execlp("scontrol", "scontrol", verb, id, (char *)NULL);
		fprintf(stderr, "ckptctl: scontrol: %s\n", strerror(errno));
		_exit(127);
	}
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "ckptctl: scontrol %s %u failed\n", verb, job);
		return -1;
	}
	return 0;
}

/* The nodes the job runs on, as its registration says (1 if unknown). */
static uint32_t job_nodes(uint32_t job)
{
	const RpcJob *j;
	RpcReply *r = job_status(job, &j);
	uint32_t n = j && j->has_nodes && j->nodes > 1 ? j->nodes : 1;
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return n;
}

/* The SEQ of the job's latest committed set under base, 0 if none. */
static unsigned long long latest_seq(uint32_t job, const char *base)
{
	char dir[PATH_MAX], jobs[16];
	snprintf(jobs, sizeof(jobs), "%u", job);
	if (ckpt_job_latest(jobs, base, dir, sizeof(dir)))
		return 0;
	const char *slash = strrchr(dir, '/');
	return strtoull(slash ? slash + 1 : dir, NULL, 10);
}

/* A multi-node job's checkpoint: the coordinator's step (coord-step.c).
 * A vacate ends the job's batch script, and with it the job and the
 * coordinator's step, which may then fail after the set committed: the
 * set's manifest decides, as for every node. */
static int coordinated(uint32_t job, uint32_t nodes, int vacate)
{
	char base[PATH_MAX];
	int known = known_base(job, base, sizeof(base));
	unsigned long long before = known ? latest_seq(job, base) : 0;
	int ret = coord_step(job, nodes, vacate);
	unsigned long long after = ret && vacate && known ? latest_seq(job, base) : 0;
	if (ret && after > before) {
		printf("job %u: set %llu committed; the coordinator's step ended with the job\n",
		       job, after);
		return 0;
	}
	if (ret)
		fprintf(stderr, "ckptctl: job %u: the coordinator's step failed: no checkpoint\n",
			job);
	return ret;
}

static int do_dump(uint32_t job, int keep_running)
{
	uint32_t nodes = job_nodes(job);
	if (nodes > 1)
		return coordinated(job, nodes, !keep_running);
	char jobs[16];
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_dump_stats st;
	struct progress_bar bar;
	snprintf(jobs, sizeof(jobs), "%u", job);
	o.job = jobs;
	o.leave_running = keep_running;
	bar_init(&bar);
	o.progress = bar_callback;
	o.progress_arg = &bar;
	int ret = agent_dump(&o, 0, &st);
	bar_done(&bar);
	if (ret)
		return 1;
	printf("job %u: checkpoint %llu committed (%.0f ms, frozen %.0f ms, %llu bytes)\n", job,
	       (unsigned long long)st.seq, (double)st.total_ns / 1e6, (double)st.frozen_ns / 1e6,
	       (unsigned long long)st.written_bytes);
	return 0;
}

static int json;

static void list_json(uint32_t job, const struct set_info *sets, size_t n)
{
	printf("{\"job_id\":%u,\"sets\":[", job);
	for (size_t i = 0; i < n; i++)
		printf("%s{\"seq\":%llu,\"committed\":%s,\"created_ns\":%llu,\"bytes\":%llu,"
		       "\"parent_seq\":%lld}", i ? "," : "", (unsigned long long)sets[i].seq,
		       sets[i].committed ? "true" : "false", (unsigned long long)sets[i].created_ns,
		       (unsigned long long)sets[i].bytes, (long long)sets[i].parent_seq);
	printf("]}\n");
}

/* A job the agent knows (running or ended here) without a set yet: an
 * empty list.  One it does not know, with no sets in storage.base
 * either: an error, not "no checkpoint". */
static int list_none(uint32_t job, const RpcJob *j, const char *base)
{
	if (!j) {
		fprintf(stderr, "ckptctl: %s: job %u: not known to this node's ckptd, and no "
				"sets in %s/%u\n", what, job, base, job);
		return 1;
	}
	if (json)
		list_json(job, NULL, 0);
	else
		printf("job %u: no checkpoint\n", job);
	return 0;
}

/* Where the agent writes the job's sets: its --checkpoint-dir (also
 * known after its end, from the agent's record), else storage.base. */
static int job_base(const RpcJob *j, char *base, size_t len)
{
	struct conf *c = NULL;
	if (conf_load(conf_path(), &c))
		return -1;
	snprintf(base, len, "%s", j && j->dir ? j->dir : conf_get(c, "storage.base", "/var/lib/ckpt"));
	conf_free(c);
	return 0;
}

static int do_list(uint32_t job, const RpcJob *j)
{
	char jobs[16], base[PATH_MAX];
	struct set_info *sets = NULL;
	size_t n = 0;
	snprintf(jobs, sizeof(jobs), "%u", job);
	if (job_base(j, base, sizeof(base)))
		return 1;
	int ret = imgset_list(base, jobs, &sets, &n);
	if (ret == -ENOENT)
		return list_none(job, j, base);
	if (ret) {
		fprintf(stderr, "ckptctl: %s: job %u: cannot list its sets in %s: %s\n", what, job,
			base, strerror(-ret));
		return 1;
	}
	if (json) {
		list_json(job, sets, n);
		free(sets);
		return 0;
	}
	timelimit_print(base, job);
	printf("SEQ   COMMITTED  CREATED              BYTES        PARENT\n");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)(sets[i].created_ns / 1000000000ULL);
		struct tm tm;
		char when[32], parent[24] = "-";
		strftime(when, sizeof(when), "%F %T", localtime_r(&t, &tm));
		if (sets[i].parent_seq >= 0)
			snprintf(parent, sizeof(parent), "%lld", (long long)sets[i].parent_seq);
		printf("%-5llu %-10s %-20s %-12llu %s\n", (unsigned long long)sets[i].seq,
		       sets[i].committed ? "yes" : "no", when, (unsigned long long)sets[i].bytes,
		       parent);
	}
	free(sets);
	return 0;
}

/* Can the job be checkpointed now?  ckptd answers by running the
 * dump's checks on the job's tree as it runs (a check: nothing stopped,
 * nothing written): 0, or -errno with the reason the dump would give in
 * why, without the "job N: " or "ckpt: " its line starts with; 1 when no
 * answer came (agent_call said why). */
static int check_job(uint32_t job, char *why, size_t len)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcDump d = RPC_DUMP__INIT;
	char prefix[32];
	d.has_job_id = d.has_check_only = 1;
	d.job_id = job;
	d.check_only = 1;
	req.req_case = RPC_REQUEST__REQ_DUMP;
	req.dump = &d;
	RpcReply *r = agent_call(&req);
	if (!r)
		return 1;
	int ret = r->has_result ? r->result : 0;
	const char *e = ret ? (r->error ? r->error : strerror(-ret)) : "";
	snprintf(prefix, sizeof(prefix), "job %u: ", job);
	if (!strncmp(e, prefix, strlen(prefix)))
		e += strlen(prefix);
	if (!strncmp(e, "ckpt: ", 6))
		e += 6;
	snprintf(why, len, "%s", e);
	rpc_reply__free_unpacked(r, NULL);
	return ret;
}

/* 0 after its answer (in able_answer), 1 after a message. */
static int do_able(uint32_t job, const RpcJob *j)
{
	char why[512];
	if (!j) {
		not_registered(job);
		return 1;
	}
	int no = j->has_ended_ns ? -ESRCH : check_job(job, why, sizeof(why));
	if (no > 0)
		return 1;
	if (j->has_ended_ns)
		snprintf(why, sizeof(why), "it ended on this node");
	if (json) {
		printf("{\"job_id\":%u,\"able\":%s,\"reason\":", job, no ? "false" : "true");
		json_str(no ? why : "");
		printf("}\n");
	} else if (no) {
		printf("job %u: no: %s\n", job, why);
	} else {
		printf("job %u: yes\n", job);
	}
	able_answer = no ? ABLE_NO : ABLE_YES;
	return 0;
}

static int do_error(uint32_t job, const RpcJob *j)
{
	if (!j) {
		not_registered(job);
		return 1;
	}
	if (json) {
		printf("{\"job_id\":%u,\"error\":", job);
		json_str(j->last_error ? j->last_error : "");
		printf(",\"when_ns\":%llu}\n", (unsigned long long)j->last_error_ns);
		return 0;
	}
	if (!j->last_error) {
		printf("job %u: no error\n", job);
		return 0;
	}
	time_t t = (time_t)(j->last_error_ns / 1000000000ULL);
	struct tm tm;
	char when[32];
	strftime(when, sizeof(when), "%F %T", localtime_r(&t, &tm));
	printf("job %u: %s: %s\n", job, when, j->last_error);
	return 0;
}

static int do_ctl(uint32_t job, int enable)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcJobCtl c = RPC_JOB_CTL__INIT;
	c.job_id = job;
	c.enable = enable;
	req.req_case = RPC_REQUEST__REQ_CTL;
	req.ctl = &c;
	return agent_finish(agent_call(&req));
}

/* Requeue at the time limit?  1 while the count is below max (and then
 * counted), else 0 with the line that says why the job stops. */
static int count_requeue(uint32_t job, const char *base, uint32_t max)
{
	uint32_t done = 0, was_max;
	int err = timelimit_count_read(base, job, &done, &was_max);
	if (err && err != -ENOENT) {
		printf("job %u: time limit: cannot read its count of requeues (%s): the job stops\n",
		       job, strerror(-err));
		return 0;
	}
	if (done >= max) {
		printf("job %u: time limit: %u of %u time-limit requeues done: the job stops here; "
		       "`ckptctl checkpoint restart %u` goes on from its checkpoint\n", job, done, max,
		       job);
		return 0;
	}
	err = timelimit_count_write(base, job, done + 1, max);
	if (err) {
		printf("job %u: time limit: cannot count this requeue (%s): the job stops\n", job,
		       strerror(-err));
		return 0;
	}
	printf("job %u: time limit: requeued, time-limit requeue %u of %u\n", job, done + 1, max);
	return 1;
}

/* vacate --timelimit=stop|requeue:N: checkpoint and stop; requeue only
 * while the job was requeued at its time limit fewer than N times.  What
 * cannot be counted stops the job: a time limit never extends it forever. */
static int do_timelimit(uint32_t job)
{
	uint32_t max;
	char base[PATH_MAX];
	const RpcJob *j;
	if (timelimit_parse(timelimit, &max)) {
		fprintf(stderr, "ckptctl: %s: --timelimit=%s: use stop or requeue:N (N from 1 to %d)\n",
			what, timelimit, TIMELIMIT_MAX);
		return 1;
	}
	RpcReply *r = job_status(job, &j);
	if (!r)
		return 1;
	/* The count is written where the job's user writes: as that user. */
	int root_for_user = j && geteuid() == 0 && j->uid != 0;
	int ret = !j || root_for_user || job_base(j, base, sizeof(base));
	if (!j)
		not_registered(job);
	else if (root_for_user)
		fprintf(stderr, "ckptctl: %s: --timelimit is run by the job's user (its batch "
				"wrapper), not root\n", what);
	rpc_reply__free_unpacked(r, NULL);
	if (ret || do_dump(job, 0))
		return 1;
	if (max && count_requeue(job, base, max))
		return requeue(job) ? 1 : 0;
	if (!max)
		printf("job %u: time limit: the job stops here (--checkpoint-timelimit=stop); "
		       "`ckptctl checkpoint restart %u` goes on from its checkpoint\n", job, job);
	return 0;
}

#define VERBS "create, vacate, restart, list, able, error, disable or enable"

static int known_verb(const char *v)
{
	static const char *const verbs[] = { "create", "vacate", "restart", "list",
					     "able",   "error",  "disable", "enable" };
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(v, verbs[i]))
			return 1;
	return 0;
}

/* checkpoint VERB JOBID [--json], --json anywhere after the verb; 0, or
 * -1 after one line naming what is wrong. */
static int parse_args(int argc, char **argv, uint32_t *job)
{
	int have_job = 0;
	if (argc < 2 || !known_verb(argv[1])) {
		if (argc < 2)
			fprintf(stderr, "ckptctl: checkpoint: missing verb (" VERBS ")\n");
		else
			fprintf(stderr, "ckptctl: checkpoint: unknown verb '%s' (" VERBS ")\n",
				argv[1]);
		return -1;
	}
	snprintf(what, sizeof(what), "checkpoint %s", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "--timelimit=", 12) && !strcmp(argv[1], "vacate")) {
			timelimit = argv[i] + 12;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strncmp(argv[i], "--", 2)) {
			fprintf(stderr, "ckptctl: %s: unknown option '%s'\n", what, argv[i]);
			return -1;
		} else if (have_job) {
			fprintf(stderr, "ckptctl: %s: unexpected argument '%s'\n", what, argv[i]);
			return -1;
		} else if (parse_job_id(what, argv[i], job)) {
			return -1;
		} else {
			have_job = 1;
		}
	}
	if (!have_job)
		fprintf(stderr, "ckptctl: %s: missing job id\n", what);
	return have_job ? 0 : -1;
}

/* The verbs that read what ckptd knows of the job. */
static int job_query(const char *verb, uint32_t job)
{
	const RpcJob *j;
	RpcReply *r = job_status(job, &j);
	if (!r)
		return 1;
	int ret;
	if (!strcmp(verb, "list"))
		ret = do_list(job, j);
	else if (!strcmp(verb, "able"))
		ret = do_able(job, j);
	else
		ret = do_error(job, j);
	rpc_reply__free_unpacked(r, NULL);
	return ret;
}

static int run_verb(int argc, char **argv)
{
	uint32_t job;
	if (parse_args(argc, argv, &job) || agent_socket_from_conf())
		return 1;
	const char *verb = argv[1];
	/* The sets of a job are on storage: list reads them without ckptd. */
	if (!strcmp(verb, "list") && (!ckpt_client_socket() || !ckpt_client_agent_up()))
		return do_list(job, NULL);
	int route = agent_route(what); /* -1: it said why */
	if (!route)
		fprintf(stderr, "ckptctl: %s: needs ckptd (the job's registration)\n", what);
	if (route != 1)
		return 1;
	if (!strcmp(verb, "create"))
		return do_dump(job, 1);
	if (!strcmp(verb, "vacate"))
		return timelimit ? do_timelimit(job)
				 : do_dump(job, 0) || requeue(job) ? 1 : 0;
	if (!strcmp(verb, "restart"))
		return requeue(job) ? 1 : 0;
	if (!strcmp(verb, "disable") || !strcmp(verb, "enable"))
		return do_ctl(job, !strcmp(verb, "enable"));
	return job_query(verb, job);
}

/* Every verb exits 0 or, after its one line, 1; but able: 0 yes, 1 no,
 * and 2 when it could not ask (a bad argument, no agent, an unknown job). */
int cmd_checkpoint(int argc, char **argv)
{
	int ret = run_verb(argc, argv);
	if (argc < 2 || strcmp(argv[1], "able"))
		return ret;
	return !ret && able_answer >= 0 ? able_answer : ABLE_ERROR;
}
