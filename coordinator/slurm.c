/*
 * slurm: what Slurm says of the job (docs/coordinator.md "Topology from
 * the source"): the node of its batch script, and the steps launched
 * from this node with their srun's pid, whose tasks may all run on other
 * nodes (mpirun's `srun orted`): this node's ckptd records such an srun
 * as the step's client, and the other nodes' parts hold its tasks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "coord.h"

#define STEP_SPECIAL 0xfffffff0u /* batch, extern, interactive ... */

static void short_name(char *host)
{
	char *dot = strchr(host, '.');
	if (dot)
		*dot = '\0';
}

int node_address(const char *host, char *addr, size_t len)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) || !res)
		return -ENOENT;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
	int ok = inet_ntop(AF_INET, &sin->sin_addr, addr, (socklen_t)len) != NULL;
	freeaddrinfo(res);
	return ok ? 0 : -EINVAL;
}

static int batch_host(uint32_t job, const char *me, int *batch)
{
	job_info_msg_t *jobs = NULL;
	if (slurm_load_job(&jobs, job, SHOW_DETAIL) || !jobs || !jobs->record_count)
		return -ENOENT;
	char host[256] = "";
	if (jobs->job_array[0].batch_host)
		snprintf(host, sizeof(host), "%s", jobs->job_array[0].batch_host);
	slurm_free_job_info_msg(jobs);
	short_name(host);
	*batch = !strcmp(host, me);
	return 0;
}

/* Is `me` one of the hostlist's nodes? */
static int on_node(const char *nodes, const char *me)
{
	hostlist_t hl = nodes ? slurm_hostlist_create(nodes) : NULL;
	int found = hl && slurm_hostlist_find(hl, me) >= 0;
	if (hl)
		slurm_hostlist_destroy(hl);
	return found;
}

static int add_step(struct slurm_view *v, const job_step_info_t *s)
{
	if (v->nr_steps == SLURM_VIEW_STEPS)
		return -E2BIG;
	struct remote_step *r = &v->steps[v->nr_steps++];
	r->step_id = s->step_id.step_id;
	r->srun_pid = s->srun_pid;
	r->num_tasks = s->num_tasks;
	snprintf(r->nodes, sizeof(r->nodes), "%s", s->nodes ? s->nodes : "");
	return 0;
}

int slurm_view(uint32_t job, struct slurm_view *v)
{
	char me[256] = "", host[256];
	const char *own = getenv("SLURM_STEP_ID");
	uint32_t own_step = own ? (uint32_t)strtoul(own, NULL, 10) : STEP_SPECIAL;
	job_step_info_response_msg_t *steps = NULL;
	memset(v, 0, sizeof(*v));
	gethostname(me, sizeof(me) - 1);
	short_name(me);
	node_address(me, v->address, sizeof(v->address));
	slurm_init(NULL);
	if (batch_host(job, me, &v->batch)) {
		fprintf(stderr, "ckpt-coord: job %u: Slurm does not list it: %s\n", job,
			slurm_strerror(slurm_get_errno()));
		return -ENOENT;
	}
	if (slurm_get_job_steps(0, job, NO_VAL, &steps, SHOW_ALL) || !steps) {
		fprintf(stderr, "ckpt-coord: job %u: Slurm does not list its steps: %s\n", job,
			slurm_strerror(slurm_get_errno()));
		return -ENOENT;
	}
	int ret = 0;
	for (uint32_t i = 0; !ret && i < steps->job_step_count; i++) {
		const job_step_info_t *s = &steps->job_steps[i];
		if (s->step_id.step_id >= STEP_SPECIAL || s->step_id.step_id == own_step)
			continue;
		v->steps_here |= on_node(s->nodes, me);
		snprintf(host, sizeof(host), "%s", s->srun_host ? s->srun_host : "");
		short_name(host);
		if (strcmp(host, me) || !s->srun_pid)
			continue;
		ret = add_step(v, s);
	}
	slurm_free_job_step_info_response_msg(steps);
	return ret;
}
