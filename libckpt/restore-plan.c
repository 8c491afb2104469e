/*
 * restore-plan: a multi-node set restored on a new allocation
 * (docs/coordinator.md "Restore").  The batch node restores the part
 * that holds the batch script (the job's srun clients are there); every
 * other part goes to another node of the allocation, the one of the same
 * name when it has one, else the next free node in the allocation's
 * order.  The connections between the job's processes come back on the
 * new nodes' addresses (--inet-map of each part's recorded address to
 * its new node's), locked until every part is built: the proxy of the
 * step whose tasks ran on the other nodes runs, in srun's place, one
 * ckpt-coord per node (`srun --overlap --mpi=pmix`) which restores the
 * node's part, agrees through PMIx that all are built and lifts the
 * locks.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "log.h"
#include "storage.h"

/* One bracket group "1-3,7" after `prefix`, each number with the width
 * of its text (Slurm keeps leading zeros: n[01-02]). */
static int expand_range(const char *prefix, size_t plen, const char *range, size_t rlen,
			char (*names)[72], size_t max, size_t *nr)
{
	char buf[256];
	if (rlen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, range, rlen);
	buf[rlen] = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(t, '-'), *end;
		int width = (int)(dash ? (size_t)(dash - t) : strlen(t));
		unsigned long lo = strtoul(t, &end, 10), hi = lo;
		if (end == t || (dash ? end != dash : *end))
			return -EINVAL;
		if (dash && ((hi = strtoul(dash + 1, &end, 10)) < lo || *end || end == dash + 1))
			return -EINVAL;
		for (unsigned long v = lo; v <= hi; v++) {
			if (*nr == max)
				return -E2BIG;
			if (snprintf(names[*nr], 72, "%.*s%0*lu", (int)plen, prefix, width, v) >= 72)
				return -EINVAL;
			(*nr)++;
		}
	}
	return 0;
}

int ckpt_hostlist_expand(const char *spec, char (*names)[72], size_t max, size_t *nr)
{
	*nr = 0;
	for (const char *p = spec; p && *p;) {
		size_t n = strcspn(p, ",[");
		if (p[n] == '[') {
			const char *close = strchr(p + n, ']');
			if (!close || (close[1] && close[1] != ','))
				return -EINVAL;
			int ret = expand_range(p, n, p + n + 1, (size_t)(close - p - n - 1), names, max,
					       nr);
			if (ret)
				return ret;
			p = close[1] ? close + 2 : close + 1;
			continue;
		}
		if (!n || n >= 72)
			return -EINVAL;
		if (*nr == max)
			return -E2BIG;
		snprintf(names[(*nr)++], 72, "%.*s", (int)n, p);
		p += n + (p[n] == ',');
	}
	return *nr ? 0 : -EINVAL;
}

static int resolve(const char *host, char *addr, size_t len)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) || !res)
		return -ENOENT;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
	int ok = inet_ntop(AF_INET, &sin->sin_addr, addr, (socklen_t)len) != NULL;
	freeaddrinfo(res);
	return ok ? 0 : -EINVAL;
}

struct placing {
	struct set_part_info parts[CKPT_PLAN_NODES];
	size_t nr_parts;
	char nodes[CKPT_PLAN_NODES][72];
	size_t nr_nodes;
	int node_of[CKPT_PLAN_NODES]; /* part -> node index */
	int taken[CKPT_PLAN_NODES];
};

static int node_index(const struct placing *pl, const char *name)
{
	for (size_t i = 0; i < pl->nr_nodes; i++)
		if (!strcmp(pl->nodes[i], name))
			return (int)i;
	return -1;
}

/* The batch part here; the others on their own node if free, else the
 * next free one. */
static int place_parts(struct placing *pl, const char *host)
{
	int here = node_index(pl, host), batch = -1;
	if (here < 0) {
		pr_err("this node, %s, is not one of the job's nodes", host);
		return -EINVAL;
	}
	for (size_t i = 0; i < pl->nr_parts; i++)
		if (pl->parts[i].batch)
			batch = batch < 0 ? (int)i : -2;
	if (batch < 0) {
		pr_err("the set names %s batch part", batch == -1 ? "no" : "more than one");
		return -EINVAL;
	}
	if (pl->nr_parts > pl->nr_nodes) {
		pr_err("the set has %zu nodes' parts, the allocation %zu nodes", pl->nr_parts,
		       pl->nr_nodes);
		return -EINVAL;
	}
	pl->node_of[batch] = here;
	pl->taken[here] = 1;
	for (size_t i = 0; i < pl->nr_parts; i++) {
		int same = node_index(pl, pl->parts[i].node);
		if ((int)i != batch && same >= 0 && !pl->taken[same])
			pl->node_of[i] = same, pl->taken[same] = 1;
		else if ((int)i != batch)
			pl->node_of[i] = -1;
	}
	for (size_t i = 0, n = 0; i < pl->nr_parts; i++) {
		while (pl->node_of[i] < 0 && pl->taken[n])
			n++;
		if (pl->node_of[i] < 0)
			pl->node_of[i] = (int)n, pl->taken[n] = 1;
	}
	return batch;
}

static int append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(buf);
	if ((size_t)snprintf(buf + n, len - n, fmt, n ? "," : "", a, b) >= len - n)
		return -ENAMETOOLONG;
	return 0;
}

/* PART=NODE for each part, OLD=NEW for each address that changes. */
static int write_maps(const struct placing *pl, struct ckpt_restore_plan *p)
{
	int ret = 0;
	for (size_t i = 0; !ret && i < pl->nr_parts; i++) {
		const char *node = pl->nodes[pl->node_of[i]];
		char addr[64];
		ret = append(p->place, sizeof(p->place), "%s%s=%s", pl->parts[i].node, node);
		if (!ret)
			ret = append(p->nodes, sizeof(p->nodes), "%s%s%s", node, "");
		if (ret || !pl->parts[i].address[0])
			continue;
		if (resolve(node, addr, sizeof(addr))) {
			pr_err("node %s: no IPv4 address for its name", node);
			return -ENOENT;
		}
		if (strcmp(addr, pl->parts[i].address))
			ret = append(p->inet_map, sizeof(p->inet_map), "%s%s=%s",
				     pl->parts[i].address, addr);
	}
	if (ret)
		pr_err("the set's %zu parts: their names do not fit in a command line",
		       pl->nr_parts);
	return ret;
}

static void write_argv(struct ckpt_restore_plan *p, const char *job, const char *coord)
{
	static char opt_jobid[] = "--jobid", opt_n[] = "-N", opt_tasks[] = "-n", opt_w[] = "-w";
	size_t n = 0;
	char **a = p->argv;
	snprintf(p->ntasks, sizeof(p->ntasks), "%zu", p->nr_parts);
	a[n++] = "srun";
	a[n++] = "--overlap";
	a[n++] = opt_jobid;
	a[n++] = (char *)job;
	a[n++] = opt_n;
	a[n++] = p->ntasks;
	a[n++] = opt_tasks;
	a[n++] = p->ntasks;
	a[n++] = "--ntasks-per-node=1";
	a[n++] = opt_w;
	a[n++] = p->nodes;
	a[n++] = "--mpi=pmix";
	a[n++] = (char *)coord;
	a[n++] = "--restore";
	a[n++] = "--job";
	a[n++] = (char *)job;
	a[n++] = "--set";
	a[n++] = p->set_dir;
	a[n++] = "--place";
	a[n++] = p->place;
	a[n++] = "--batch-node";
	a[n++] = p->host;
	if (p->inet_map[0]) {
		a[n++] = "--inet-map";
		a[n++] = p->inet_map;
	}
	a[n] = NULL;
}

int ckpt_restore_plan(struct ckpt_restore_opts *o, const char *job, const char *job_nodes,
		      const char *host, const char *coord, struct ckpt_restore_plan *p)
{
	static struct placing pl;
	memset(p, 0, sizeof(*p));
	memset(&pl, 0, sizeof(pl));
	if (!o->dir || !realpath(o->dir, p->set_dir))
		return 0; /* the restore names what is missing */
	int ret = imgset_read_parts(p->set_dir, pl.parts, CKPT_PLAN_NODES, &pl.nr_parts);
	if (ret || !pl.nr_parts)
		return 0; /* not a job's set: restored as it is */
	if (!job || !job_nodes || !coord) {
		pr_err("%s: a set of %zu nodes restores as a job's, on its batch node, in an "
		       "allocation of as many nodes (ckptctl restore --job JOB in the job)",
		       p->set_dir, pl.nr_parts);
		return -EINVAL;
	}
	ret = ckpt_hostlist_expand(job_nodes, pl.nodes, CKPT_PLAN_NODES, &pl.nr_nodes);
	if (ret) {
		pr_err("the job's nodes '%.200s': not a hostlist this restore reads", job_nodes);
		return ret;
	}
	int batch = place_parts(&pl, host);
	if (batch < 0)
		return batch;
	if ((ret = write_maps(&pl, p)))
		return ret;
	p->nr_parts = pl.nr_parts;
	snprintf(p->part_dir, sizeof(p->part_dir), "%s/nodes/%s", p->set_dir,
		 pl.parts[batch].node);
	snprintf(p->host, sizeof(p->host), "%s", host);
	write_argv(p, job, coord);
	o->dir = p->part_dir;
	o->inet_map = p->inet_map[0] ? p->inet_map : NULL;
	/* the other parts' coordinator lifts the lock once they are built;
	 * a set of one part (the job's other nodes had nothing of it) has
	 * none to wait for */
	o->keep_net_lock = pl.nr_parts > 1;
	o->step_remote_argv = pl.nr_parts > 1 ? (const char *const *)p->argv : NULL;
	return 0;
}
