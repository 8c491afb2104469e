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
#include "rpc.pb-c.h"

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

int agent_finish(RpcReply *r)
{
	if (!r)
		return 1;
	int ret = r->has_result && r->result;
	if (ret)
		fprintf(stderr, "%s\n", r->error ? r->error : strerror(-r->result));
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
		printf(",\"interval_min\":%u}", j->interval_min);
	}
	printf("],\"operations\":[");
	for (size_t i = 0; i < r->n_ops; i++) {
		const RpcOp *o = r->ops[i];
		printf("%s{\"id\":%u,\"kind\":\"%s\",\"job_id\":%u,\"uid\":%u,\"pid\":%u,\"dir\":",
		       i ? "," : "", o->id, o->kind, o->job_id, o->uid, o->pid);
		json_str(o->dir);
		printf(",\"start_ns\":%llu,\"running\":%s", (unsigned long long)o->start_ns,
		       o->has_result ? "false" : "true");
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

static void print_text(const RpcReply *r)
{
	printf("ckptd pid %u, up since ", r->agent_pid);
	print_when(r->agent_start_ns);
	printf("\n\nJOB        UID    STEPS  TASKS  POLICY      DIR\n");
	for (size_t i = 0; i < r->n_jobs; i++) {
		const RpcJob *j = r->jobs[i];
		printf("%-10u %-6u %-6zu %-6zu %-11s %s\n", j->job_id, j->uid, j->n_steps, j->n_pids,
		       j->policy ? j->policy : "-", j->dir ? j->dir : "-");
	}
	printf("\nOP   KIND     JOB        UID    PID      STARTED              STATE\n");
	for (size_t i = 0; i < r->n_ops; i++) {
		const RpcOp *o = r->ops[i];
		printf("%-4u %-8s %-10u %-6u %-8u ", o->id, o->kind, o->job_id, o->uid, o->pid);
		print_when(o->start_ns);
		if (!o->has_result && o->progress)
			printf("  running: %s %llu/%llu MiB\n", o->progress->phase,
			       (unsigned long long)(o->progress->done >> 20),
			       (unsigned long long)(o->progress->total >> 20));
		else if (!o->has_result)
			printf("  running\n");
		else if (!o->result)
			printf("  ok in %.1f s\n", (double)(o->end_ns - o->start_ns) / 1e9);
		else
			printf("  failed: %s\n", o->error ? o->error : strerror(-o->result));
	}
}

int cmd_status(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcStatus s = RPC_STATUS__INIT;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!parse_u32(argv[i], &s.job_id))
			s.has_job_id = 1;
		else {
			fprintf(stderr, "usage: ckptctl status [--json] [JOBID]\n");
			return 1;
		}
	}
	req.req_case = RPC_REQUEST__REQ_STATUS;
	req.status = &s;
	RpcReply *r = agent_call(&req);
	if (r && !(r->has_result && r->result)) {
		if (json)
			print_json(r);
		else
			print_text(r);
	}
	return agent_finish(r);
}

int cmd_cancel(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcCancel c = RPC_CANCEL__INIT;
	if (argc != 2 || parse_u32(argv[1], &c.job_id)) {
		fprintf(stderr, "usage: ckptctl cancel JOBID\n");
		return 1;
	}
	req.req_case = RPC_REQUEST__REQ_CANCEL;
	req.cancel = &c;
	return agent_finish(agent_call(&req));
}

enum { R_JOB = 1, R_STEP, R_UID, R_CGROUP, R_POLICY, R_DIR, R_INTERVAL, R_NODES };

static int parse_reg(int argc, char **argv, RpcRegister *g, int *have_step)
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
	int c, bad = 0;
	g->uid = (uint32_t)getuid();
	while (!bad && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case R_JOB: bad = parse_u32(optarg, &g->job_id); break;
		case R_STEP: bad = parse_u32(optarg, &g->step_id); *have_step = 1; break;
		case R_UID: bad = parse_u32(optarg, &g->uid); break;
		case R_CGROUP: g->cgroup = optarg; break;
		case R_POLICY: g->policy = optarg; break;
		case R_DIR: g->dir = optarg; break;
		case R_INTERVAL: bad = parse_u32(optarg, &g->interval_min); g->has_interval_min = 1; break;
		case R_NODES: bad = parse_u32(optarg, &g->nodes); g->has_nodes = 1; break;
		default: bad = 1;
		}
	}
	return bad || !g->job_id ? -1 : 0;
}

int cmd_register(int argc, char **argv)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRegister g = RPC_REGISTER__INIT;
	int have_step = 0;
	uint32_t pids[256];
	if (parse_reg(argc, argv, &g, &have_step) || optind == argc || argc - optind > 256) {
		fprintf(stderr, "usage: ckptctl register --job J [--step S] [--uid U] [--cgroup C] "
				"[--policy P] [--dir D] [--interval MIN] PID...\n");
		return 1;
	}
	for (int i = optind; i < argc; i++)
		if (parse_u32(argv[i], &pids[g.n_pids++])) {
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
	if (parse_reg(argc, argv, &g, &have_step) || optind != argc) {
		fprintf(stderr, "usage: ckptctl unregister --job J [--step S]\n");
		return 1;
	}
	u.job_id = g.job_id;
	u.has_step_id = have_step;
	u.step_id = g.step_id;
	req.req_case = RPC_REQUEST__REQ_UNREG;
	req.unreg = &u;
	return agent_finish(agent_call(&req));
}
