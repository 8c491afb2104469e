/*
 * node: the coordinator's side of its node's ckptd: one held dump on one
 * connection (rpc_dump with held set, then rpc_gate words as the phases
 * go, each gate answered with an rpc_gate_reply), and the commit of the
 * whole set (rpc_commit_set) on a connection of its own.  The held dump
 * ends when its connection closes: ckptd then thaws every task and
 * removes the part, whatever the coordinator was doing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/client.h"
#include "coord.h"
#include "rpc.pb-c.h"

#define MAX_REPLY (1u << 20)

struct held_dump {
	struct ckpt_conn *conn;
	char node[72];
	int done; /* the final reply came */
	int result;
	uint64_t frozen_ns;
	char why[256];
};

static int send_request(struct ckpt_conn *c, const RpcRequest *q)
{
	size_t len = rpc_request__get_packed_size(q);
	void *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	rpc_request__pack(q, buf);
	int ret = ckpt_conn_send(c, buf, len);
	free(buf);
	return ret;
}

/* The steps launched from this node, for its ckptd (steps.c there). */
static void remote_steps(const struct slurm_view *v, RpcRemoteStep *r, RpcRemoteStep **ptrs,
			 RpcDump *d)
{
	for (size_t i = 0; v && i < v->nr_steps; i++) {
		rpc_remote_step__init(&r[i]);
		r[i].step_id = v->steps[i].step_id;
		r[i].srun_pid = v->steps[i].srun_pid;
		r[i].nodes = (char *)v->steps[i].nodes;
		r[i].has_num_tasks = 1;
		r[i].num_tasks = v->steps[i].num_tasks;
		ptrs[i] = &r[i];
	}
	d->n_remote_steps = v ? v->nr_steps : 0;
	d->remote_steps = d->n_remote_steps ? ptrs : NULL;
}

int held_start(const char *socket, uint32_t job, const char *node, int vacate,
	       uint32_t hold_timeout_s, const struct slurm_view *view, pid_t stand_in,
	       struct held_dump **out)
{
	RpcRemoteStep rs[SLURM_VIEW_STEPS], *rsp[SLURM_VIEW_STEPS];
	struct held_dump *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	snprintf(h->node, sizeof(h->node), "%s", node ? node : "");
	int ret = ckpt_conn_open(socket, &h->conn);
	if (ret) {
		free(h);
		return ret;
	}
	RpcRequest q = RPC_REQUEST__INIT;
	RpcDump d = RPC_DUMP__INIT;
	d.has_job_id = d.has_held = d.has_leave_running = d.has_hold_timeout_s = 1;
	d.job_id = job;
	d.held = 1;
	d.leave_running = !vacate;
	d.hold_timeout_s = hold_timeout_s;
	d.node = node ? (char *)node : NULL;
	remote_steps(view, rs, rsp, &d);
	/* ckptctl checkpoint create|vacate run by the job's wrapper: its
	 * child, beside the job's tree (cli/coord-step.c) */
	const char *client = getenv("CKPT_COORD_CLIENT"), *step = getenv("SLURM_STEP_ID");
	d.has_coord_step = step != NULL;
	d.coord_step = step ? (uint32_t)strtoul(step, NULL, 10) : 0;
	d.has_stand_in = stand_in > 0;
	d.stand_in = stand_in > 0 ? (uint32_t)stand_in : 0;
	d.has_wrapper_exclude = client != NULL;
	d.wrapper_exclude = client ? (uint32_t)strtoul(client, NULL, 10) : 0;
	q.req_case = RPC_REQUEST__REQ_DUMP;
	q.dump = &d;
	ret = send_request(h->conn, &q);
	if (ret) {
		held_close(h);
		return ret;
	}
	*out = h;
	return 0;
}

/* The next reply: a gate (1), the final one (0, h->done set), or an error. */
static int next_reply(struct held_dump *h, RpcGateReply **gate, RpcReply **keep)
{
	for (;;) {
		void *buf;
		size_t len;
		int ret = ckpt_conn_recv(h->conn, &buf, &len, MAX_REPLY);
		if (ret) {
			snprintf(h->why, sizeof(h->why), "the node's ckptd went away (%s)",
				 strerror(-ret));
			h->done = 1;
			h->result = ret;
			return ret;
		}
		RpcReply *r = rpc_reply__unpack(NULL, len, buf);
		free(buf);
		if (!r) {
			snprintf(h->why, sizeof(h->why), "a malformed reply from ckptd");
			h->done = 1;
			h->result = -EPROTO;
			return -EPROTO;
		}
		if (r->done) {
			h->done = 1;
			h->result = r->has_result ? r->result : -EPROTO;
			snprintf(h->why, sizeof(h->why), "%s", r->error ? r->error : "");
			if (r->dump)
				h->frozen_ns = r->dump->frozen_ns;
			rpc_reply__free_unpacked(r, NULL);
			return 0;
		}
		if (r->gate) {
			*gate = r->gate;
			*keep = r;
			return 1;
		}
		rpc_reply__free_unpacked(r, NULL); /* progress */
	}
}

int held_wait_gate(struct held_dump *h, const char *phase, struct node_status *st)
{
	RpcGateReply *g = NULL;
	RpcReply *r = NULL;
	memset(st, 0, sizeof(*st));
	snprintf(st->node, sizeof(st->node), "%s", h->node);
	int ret = h->done ? 0 : next_reply(h, &g, &r);
	if (ret == 1 && strcmp(g->phase, phase)) {
		snprintf(st->why, sizeof(st->why), "ckptd at gate %.16s, expected %s", g->phase, phase);
		ret = -EPROTO;
	} else if (ret == 1) {
		st->ok = 1;
		snprintf(st->node, sizeof(st->node), "%s", g->node ? g->node : h->node);
		snprintf(h->node, sizeof(h->node), "%s", st->node);
		st->seq = g->next_seq;
		st->crc = g->manifest_crc;
		st->root = g->root_pid;
		st->tasks = g->tasks;
		ret = 0;
	} else {
		snprintf(st->why, sizeof(st->why), "%s",
			 h->why[0] ? h->why : "the dump ended before the gate");
		ret = ret ? ret : (h->result ? h->result : -EPROTO);
	}
	if (r)
		rpc_reply__free_unpacked(r, NULL);
	return ret;
}

int held_send(struct held_dump *h, const char *action, uint64_t seq)
{
	RpcRequest q = RPC_REQUEST__INIT;
	RpcGate g = RPC_GATE__INIT;
	if (h->done)
		return -ECANCELED;
	g.action = (char *)action;
	g.has_seq = seq != 0;
	g.seq = seq;
	q.req_case = RPC_REQUEST__REQ_GATE;
	q.gate = &g;
	return send_request(h->conn, &q);
}

int held_finish(struct held_dump *h, uint64_t *frozen_ns, char *why, size_t len)
{
	RpcGateReply *g;
	RpcReply *r = NULL;
	while (!h->done) {
		int ret = next_reply(h, &g, &r);
		if (r)
			rpc_reply__free_unpacked(r, NULL);
		r = NULL;
		if (ret < 0)
			break;
	}
	*frozen_ns = h->frozen_ns;
	snprintf(why, len, "%s", h->why);
	return h->result;
}

int held_alive(struct held_dump *h)
{
	struct pollfd pf = { ckpt_conn_fd(h->conn), POLLIN | POLLRDHUP, 0 };
	/* Nothing to read and no hang-up: the dump still waits at its gate
	 * (a reply now would be its end: a timeout, its ckptd gone). */
	return !h->done && poll(&pf, 1, 0) == 0;
}

void held_close(struct held_dump *h)
{
	if (!h)
		return;
	ckpt_conn_close(h->conn);
	free(h);
}

int commit_set(const char *socket, uint32_t job, uint64_t seq, const struct node_status *v,
	       size_t n, char *why, size_t len)
{
	struct ckpt_conn *c;
	RpcRequest q = RPC_REQUEST__INIT;
	RpcCommitSet cs = RPC_COMMIT_SET__INIT;
	RpcPart parts[64], *ptrs[64];
	if (n > 64) {
		snprintf(why, len, "%zu nodes: at most 64", n);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++) {
		rpc_part__init(&parts[i]);
		parts[i].node = (char *)v[i].node;
		parts[i].manifest_crc = v[i].crc;
		parts[i].has_rank = parts[i].has_root_pid = 1;
		parts[i].rank = (uint32_t)i;
		parts[i].root_pid = v[i].root;
		parts[i].has_batch = 1;
		parts[i].batch = v[i].batch;
		parts[i].address = v[i].address[0] ? (char *)v[i].address : NULL;
		ptrs[i] = &parts[i];
	}
	cs.job_id = job;
	cs.seq = seq;
	cs.n_parts = n;
	cs.parts = ptrs;
	q.req_case = RPC_REQUEST__REQ_COMMIT_SET;
	q.commit_set = &cs;
	int ret = ckpt_conn_open(socket, &c);
	if (ret) {
		snprintf(why, len, "ckptd: %s", strerror(-ret));
		return ret;
	}
	ret = send_request(c, &q);
	struct held_dump h = { .conn = c };
	RpcGateReply *g;
	RpcReply *r = NULL;
	while (!ret && !h.done && next_reply(&h, &g, &r) >= 0) {
		if (r)
			rpc_reply__free_unpacked(r, NULL);
		r = NULL;
	}
	ckpt_conn_close(c);
	if (!ret)
		ret = h.result;
	snprintf(why, len, "%s", h.why);
	return ret;
}
