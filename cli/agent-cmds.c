/*
 * agent-cmds: ckptctl's commands that only make sense with an agent:
 *   status [--json] [JOBID]     the agent's jobs and operations
 *   cancel JOBID                stop a running dump of the job
 *   register --job J [--step S] [--uid U] [--cgroup C] [--policy P]
 *            [--dir D] [--interval MIN] [--nodes N] PID...
 *   unregister --job J [--step S]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/client.h"
#include "conf.h"
#include "rpc.pb-c.h"
#include "timelimit.h"

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int parse_job_id(const char *what, const char *s, uint32_t *job)
{
	/* strtoul alone takes "-5", " 5" and "+5". */
	int digits = *s && strspn(s, "0123456789") == strlen(s);
	if (!digits || parse_u32(s, job) || !*job) {
		fprintf(stderr, "ckptctl: %s: bad job id '%s'\n", what, s);
		return -1;
	}
	return 0;
}

void bad_option(const char *what, int c, char **argv)
{
	/* A short option's letter is optopt (it may sit in a cluster, -Rx);
	 * for a long one optopt is 0 or its value, and the word is the last
	 * one getopt read. */
	char shortopt[3] = { '-', (char)optopt, 0 };
	const char *last = argv[optind - 1];
	int is_short = optopt > ' ' && optopt < 127 && strncmp(last, "--", 2);
	const char *opt = is_short ? shortopt : last;
	if (c == ':')
		fprintf(stderr, "ckptctl: %s: option '%s' needs an argument\n", what, opt);
	else
		fprintf(stderr, "ckptctl: %s: unknown option '%s'\n", what, opt);
}

void agent_error(const RpcReply *r)
{
	const char *e = r->error ? r->error : strerror(-r->result);
	/* A worker's line from the engine already says "ckpt: ". */
	if (!strncmp(e, "ckpt: ", 6))
		e += 6;
	fprintf(stderr, "ckptctl: %s\n", e);
}

int agent_finish(RpcReply *r)
{
	if (!r)
		return 1;
	int ret = r->has_result && r->result;
	if (ret)
		agent_error(r);
	rpc_reply__free_unpacked(r, NULL);
	return ret;
}

void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_u32s(const uint32_t *v, size_t n)
{
	putchar('[');
	for (size_t i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", v[i]);
	putchar(']');
}

static void print_json(const RpcReply *r)
{
	printf("{\"agent_pid\":%u,\"agent_start_ns\":%llu,\"jobs\":[", r->agent_pid,
	       (unsigned long long)r->agent_start_ns);
	for (size_t i = 0; i < r->n_jobs; i++) {
		const RpcJob *j = r->jobs[i];
		printf("%s{\"job_id\":%u,\"uid\":%u,\"steps\":", i ? "," : "", j->job_id, j->uid);
		json_u32s(j->steps, j->n_steps);
		printf(",\"pids\":");
		json_u32s(j->pids, j->n_pids);
		printf(",\"cgroup\":");
		json_str(j->cgroup);
		printf(",\"policy\":");
		json_str(j->policy);
		printf(",\"dir\":");
		json_str(j->dir);
		printf(",\"interval_min\":%u", j->interval_min);
		if (j->has_ended_ns)
			printf(",\"ended_ns\":%llu", (unsigned long long)j->ended_ns);
		putchar('}');
	}
	printf("],\"operations\":[");
	for (size_t i = 0; i < r->n_ops; i++) {
		const RpcOp *o = r->ops[i];
		printf("%s{\"id\":%u,\"kind\":\"%s\",\"job_id\":%u,\"uid\":%u,\"pid\":%u,\"dir\":",
		       i ? "," : "", o->id, o->kind, o->job_id, o->uid, o->pid);
		json_str(o->dir);
		printf(",\"start_ns\":%llu,\"running\":%s", (unsigned long long)o->start_ns,
		       o->has_result ? "false" : "true");
		if (o->has_ran_ns)
			printf(",\"ran_ns\":%llu", (unsigned long long)o->ran_ns);
		if (o->progress)
			printf(",\"phase\":\"%s\",\"done\":%llu,\"total\":%llu", o->progress->phase,
			       (unsigned long long)o->progress->done,
			       (unsigned long long)o->progress->total);
		if (o->has_result) {
			printf(",\"result\":%d,\"end_ns\":%llu,\"error\":", o->result,
			       (unsigned long long)o->end_ns);
			json_str(o->error ? o->error : "");
		}
		putchar('}');
	}
	printf("]}\n");
}

static void print_when(uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char buf[32];
	strftime(buf, sizeof(buf), "%F %T", localtime_r(&t, &tm));
	printf("%s", buf);
}

static double secs(uint64_t from, uint64_t to)
{
	return (double)(to - from) / 1e9;
}

/* An operation's state.  A restore (without --detach) ends when the
 * restored tree does: its own time is until the tree ran (ran_ns), the
 * rest is the job's. */
static void print_op_state(const RpcOp *o)
{
	int ran = o->has_ran_ns && o->ran_ns >= o->start_ns;
	if (!o->has_result && o->progress)
		printf("  running: %s %llu/%llu MiB\n", o->progress->phase,
		       (unsigned long long)(o->progress->done >> 20),
		       (unsigned long long)(o->progress->total >> 20));
	else if (!o->has_result && ran)
		printf("  restored in %.1f s, the tree runs\n", secs(o->start_ns, o->ran_ns));
	else if (!o->has_result)
		printf("  running\n");
	else if (ran)
		printf("  restored in %.1f s, the tree ran %.1f s%s%s\n", secs(o->start_ns, o->ran_ns),
		       secs(o->ran_ns, o->end_ns), o->result ? ": " : "",
		       o->result ? (o->error ? o->error : strerror(-o->result)) : "");
	else if (!o->result)
		printf("  ok in %.1f s\n", secs(o->start_ns, o->end_ns));
	else
		printf("  failed: %s\n", o->error ? o->error : strerror(-o->result));
}

static void print_text(const RpcReply *r)
{
	printf("ckptd pid %u, up since ", r->agent_pid);
	print_when(r->agent_start_ns);
	printf("\n\nJOB        UID    STEPS  TASKS  POLICY      DIR\n");
	for (size_t i = 0; i < r->n_jobs; i++) {
		const RpcJob *j = r->jobs[i];
		char tasks[24];
		/* A job that ended here has a record, no tasks. */
		snprintf(tasks, sizeof(tasks), "%zu", j->n_pids);
		printf("%-10u %-6u %-6zu %-6s %-11s %s\n", j->job_id, j->uid, j->n_steps,
		       j->has_ended_ns ? "ended" : tasks, j->policy ? j->policy : "-",
		       j->dir ? j->dir : "-");
	}
	printf("\nOP   KIND     JOB        UID    PID      STARTED              STATE\n");
	for (size_t i = 0; i < r->n_ops; i++) {
		const RpcOp *o = r->ops[i];
		printf("%-4u %-8s %-10u %-6u %-8u ", o->id, o->kind, o->job_id, o->uid, o->pid);
		print_when(o->start_ns);
		print_op_state(o);
	}
}

/* One job's count of requeues at its time limit, next to its sets. */
static void print_timelimit(const RpcJob *j)
{
	struct conf *c = NULL;
	if (conf_load(conf_path(), &c))
		return;
	const char *base = j->dir ? j->dir : conf_get(c, "storage.base", "/var/lib/ckpt");
	uint32_t done, max;
	if (!timelimit_count_read(base, j->job_id, &done, &max))
		printf("\njob %u: time-limit requeues: %u of %u\n", j->job_id, done, max);
	conf_free(c);
}

/* status [--json] [--nodes|--node-name] [JOBID]: 0, or -1 after the line
 * naming what is wrong. */
static int parse_status(int argc, char **argv, RpcStatus *s, int *json, int *nodes, int *named)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			*json = 1;
		} else if (!strcmp(argv[i], "--nodes")) {
			*nodes = 1;
		} else if (!strcmp(argv[i], "--node-name")) {
			*named = 1;
		} else if (!strncmp(argv[i], "--", 2)) {
			fprintf(stderr, "ckptctl: status: unknown option '%s'\n", argv[i]);
			return -1;
		} else if (s->has_job_id) {
			fprintf(stderr, "ckptctl: status: unexpected argument '%s'\n", argv[i]);
			return -1;
		} else if (parse_job_id("status", argv[i], &s->job_id)) {
			return -1;
		} else {
			s->has_job_id = 1;
		}
	}
	return 0;
}

int cmd_status(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcStatus s = RPC_STATUS__INIT;
	int json = 0, nodes = 0, named = 0;
	if (parse_status(argc, argv, &s, &json, &nodes, &named))
		return 1;
	if ((nodes || named) && (!s.has_job_id || json)) {
		fprintf(stderr, "ckptctl: status: --nodes goes with a JOBID (and not --json)\n");
		return 1;
	}
	/* One job: also the record of it if it ended here. */
	s.has_ended = s.ended = s.has_job_id;
	req.req_case = RPC_REQUEST__REQ_STATUS;
	req.status = &s;
	RpcReply *r = agent_call(&req);
	if (!r || (r->has_result && r->result))
		return agent_finish(r);
	if (s.has_job_id && !r->n_jobs && !r->n_ops) {
		fprintf(stderr, "ckptctl: status: job %u is not known to this node's ckptd\n",
			s.job_id);
		rpc_reply__free_unpacked(r, NULL);
		return 1;
	}
	if (nodes) {
		/* every node's: the job's node count as this node knows it */
		uint32_t n = r->n_jobs && r->jobs[0]->has_nodes ? r->jobs[0]->nodes : 1;
		rpc_reply__free_unpacked(r, NULL);
		return status_nodes(s.job_id, n);
	}
	if (named) {
		char host[256] = "?";
		gethostname(host, sizeof(host) - 1);
		printf("node %s:\n", host);
	}
	if (json)
		print_json(r);
	else
		print_text(r);
	if (!json && s.has_job_id && r->n_jobs)
		print_timelimit(r->jobs[0]);
	return agent_finish(r);
}

/* cmd JOBID, nothing else. */
static int parse_one_job(const char *what, int argc, char **argv, uint32_t *job)
{
	if (argc < 2) {
		fprintf(stderr, "ckptctl: %s: missing job id\n", what);
		return -1;
	}
	if (argc > 2) {
		fprintf(stderr, "ckptctl: %s: unexpected argument '%s'\n", what, argv[2]);
		return -1;
	}
	return parse_job_id(what, argv[1], job);
}

int cmd_cancel(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcCancel c = RPC_CANCEL__INIT;
	if (parse_one_job("cancel", argc, argv, &c.job_id))
		return 1;
	req.req_case = RPC_REQUEST__REQ_CANCEL;
	req.cancel = &c;
	return agent_finish(agent_call(&req));
}

enum { R_JOB = 1, R_STEP, R_UID, R_CGROUP, R_POLICY, R_DIR, R_INTERVAL, R_NODES };

/* A number option of register: 0, or -1 after the line naming it. */
static int parse_reg_u32(const char *what, const char *opt, const char *s, uint32_t *out)
{
	if (!strcmp(opt, "job"))
		return parse_job_id(what, s, out);
	if (*s && strspn(s, "0123456789") == strlen(s) && !parse_u32(s, out))
		return 0;
	fprintf(stderr, "ckptctl: %s: --%s: bad number '%s'\n", what, opt, s);
	return -1;
}

static int parse_reg(const char *what, int argc, char **argv, RpcRegister *g, int *have_step)
{
	static const struct option opts[] = {
		{ "job", required_argument, 0, R_JOB },
		{ "step", required_argument, 0, R_STEP },
		{ "uid", required_argument, 0, R_UID },
		{ "cgroup", required_argument, 0, R_CGROUP },
		{ "policy", required_argument, 0, R_POLICY },
		{ "dir", required_argument, 0, R_DIR },
		{ "interval", required_argument, 0, R_INTERVAL },
		{ "nodes", required_argument, 0, R_NODES },
		{ 0, 0, 0, 0 },
	};
	int c, bad = 0, idx = 0;
	g->uid = (uint32_t)getuid();
	opterr = 0;
	while (!bad && (c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		const char *name = c > 0 && c <= R_NODES ? opts[c - 1].name : "";
		switch (c) {
		case R_JOB: bad = parse_reg_u32(what, name, optarg, &g->job_id); break;
		case R_STEP: bad = parse_reg_u32(what, name, optarg, &g->step_id); *have_step = 1; break;
		case R_UID: bad = parse_reg_u32(what, name, optarg, &g->uid); break;
		case R_CGROUP: g->cgroup = optarg; break;
		case R_POLICY: g->policy = optarg; break;
		case R_DIR: g->dir = optarg; break;
		case R_INTERVAL:
			bad = parse_reg_u32(what, name, optarg, &g->interval_min);
			g->has_interval_min = 1;
			break;
		case R_NODES: bad = parse_reg_u32(what, name, optarg, &g->nodes); g->has_nodes = 1; break;
		default: bad_option(what, c, argv); bad = 1;
		}
	}
	if (!bad && !g->job_id) {
		fprintf(stderr, "ckptctl: %s: missing --job JOBID\n", what);
		bad = 1;
	}
	return bad ? -1 : 0;
}

int cmd_register(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRegister g = RPC_REGISTER__INIT;
	int have_step = 0;
	uint32_t pids[256];
	if (parse_reg("register", argc, argv, &g, &have_step))
		return 1;
	if (optind == argc || argc - optind > 256) {
		fprintf(stderr, "ckptctl: register: %s\n",
			optind == argc ? "missing PID (the job's task roots)" : "more than 256 pids");
		return 1;
	}
	for (int i = optind; i < argc; i++)
		if (parse_u32(argv[i], &pids[g.n_pids++]) || !pids[g.n_pids - 1]) {
			fprintf(stderr, "ckptctl: register: '%s' is not a pid\n", argv[i]);
			return 1;
		}
	g.pids = pids;
	req.req_case = RPC_REQUEST__REQ_REG;
	req.reg = &g;
	return agent_finish(agent_call(&req));
}

int cmd_unregister(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRegister g = RPC_REGISTER__INIT;
	RpcUnregister u = RPC_UNREGISTER__INIT;
	int have_step = 0;
	if (parse_reg("unregister", argc, argv, &g, &have_step))
		return 1;
	if (optind != argc) {
		fprintf(stderr, "ckptctl: unregister: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	u.job_id = g.job_id;
	u.has_step_id = have_step;
	u.step_id = g.step_id;
	req.req_case = RPC_REQUEST__REQ_UNREG;
	req.unreg = &u;
	return agent_finish(agent_call(&req));
}
