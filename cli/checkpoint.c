/*
 * checkpoint: `ckptctl checkpoint VERB JOBID`, the verbs scontrol had
 * before Slurm 20.02 removed them, for jobs registered with this node's
 * ckptd (the Slurm plugin registers jobs submitted with --checkpoint):
 *
 *   create    checkpoint the job into a new set, the job goes on
 *   vacate    checkpoint it, then requeue it (scontrol requeue): it stops
 *             here and goes on from the checkpoint where Slurm starts it
 *   restart   requeue it: it starts again from its latest set
 *   list      its committed sets
 *   able      can it be checkpointed now (exit 0) or why not (exit 1): ckptd
 *             runs the dump's checks on the running tree, stopping nothing
 *   error     the last failure of a checkpoint or restore of the job
 *   disable / enable   refuse / allow checkpoints of the job
 *
 * Root may act on any job, a user on their own (ckptd checks; scontrol
 * checks the requeue).  Multi-node jobs need the coordinator, which is
 * not there yet: ckptd refuses them with that reason (the plugin tells it
 * how many nodes a job has).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"
#include "progress-bar.h"
#include "rpc.pb-c.h"
#include "conf.h"
#include "storage.h"

static int parse_job(const char *s, uint32_t *job)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || !v || v > UINT32_MAX)
		return -1;
	*job = (uint32_t)v;
	return 0;
}

/* The job as this node's agent has it (NULL: not registered; message). */
static RpcReply *job_status(uint32_t job, const RpcJob **out)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcStatus s = RPC_STATUS__INIT;
	s.has_job_id = 1;
	s.job_id = job;
	req.req_case = RPC_REQUEST__REQ_STATUS;
	req.status = &s;
	RpcReply *r = agent_call(&req);
	*out = r && r->n_jobs ? r->jobs[0] : NULL;
	if (r && !*out)
		fprintf(stderr, "ckptctl: job %u is not registered with this node's ckptd "
				"(not submitted with --checkpoint, not running here, or not yours)\n",
			job);
	return r;
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

static int do_dump(uint32_t job, int keep_running)
{
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

static int do_list(uint32_t job, const RpcJob *j)
{
	char jobs[16];
	struct set_info *sets = NULL;
	size_t n = 0;
	snprintf(jobs, sizeof(jobs), "%u", job);
	struct conf *c = NULL;
	if (conf_load(conf_path(), &c))
		return 1;
	/* Where the agent writes the job's sets: its --checkpoint-dir, else
	 * storage.base. */
	const char *base = j && j->dir ? j->dir : conf_get(c, "storage.base", "/var/lib/ckpt");
	int ret = imgset_list(base, jobs, &sets, &n);
	conf_free(c);
	if (ret == -ENOENT && json)
		list_json(job, NULL, 0);
	else if (ret == -ENOENT)
		printf("job %u: no checkpoint\n", job);
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		fprintf(stderr, "ckptctl: job %u: cannot list its sets: %s\n", job, strerror(-ret));
		return 1;
	}
	if (json) {
		list_json(job, sets, n);
		free(sets);
		return 0;
	}
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
 * why, without the "job N: " or "ckpt: " its line starts with. */
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
	if (!r) {
		snprintf(why, len, "no answer from ckptd");
		return -EPROTO;
	}
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

static int do_able(uint32_t job, const RpcJob *j)
{
	char why[512];
	if (!j)
		return 1;
	int no = check_job(job, why, sizeof(why)) != 0;
	if (json) {
		printf("{\"job_id\":%u,\"able\":%s,\"reason\":", job, no ? "false" : "true");
		json_str(no ? why : "");
		printf("}\n");
	} else if (no) {
		printf("job %u: no: %s\n", job, why);
	} else {
		printf("job %u: yes\n", job);
	}
	return no;
}

static int do_error(uint32_t job, const RpcJob *j)
{
	if (!j)
		return 1;
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

static int usage(void)
{
	fprintf(stderr, "usage: ckptctl checkpoint create|vacate|restart|list|able|error|"
			"disable|enable JOBID [--json]\n");
	return 1;
}

int cmd_checkpoint(int argc, char **argv)
{
	uint32_t job;
	if (argc == 4 && !strcmp(argv[3], "--json")) {
		json = 1;
		argc--;
	}
	if (argc != 3 || parse_job(argv[2], &job))
		return usage();
	const char *verb = argv[1];
	if (agent_route("checkpoint") != 1) {
		fprintf(stderr, "ckptctl: checkpoint %s: needs ckptd (the job's registration)\n",
			verb);
		return 1;
	}
	if (!strcmp(verb, "create"))
		return do_dump(job, 1);
	if (!strcmp(verb, "vacate"))
		return do_dump(job, 0) || run_scontrol("requeue", job) ? 1 : 0;
	if (!strcmp(verb, "restart"))
		return run_scontrol("requeue", job) ? 1 : 0;
	if (!strcmp(verb, "disable") || !strcmp(verb, "enable"))
		return do_ctl(job, !strcmp(verb, "enable"));
	const RpcJob *j;
	RpcReply *r = job_status(job, &j);
	int ret = 1;
	if (!strcmp(verb, "list"))
		ret = do_list(job, j);
	else if (!strcmp(verb, "able"))
		ret = do_able(job, j);
	else if (!strcmp(verb, "error"))
		ret = do_error(job, j);
	else
		ret = usage();
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return ret;
}
