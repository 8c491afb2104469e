/*
 * held: a coordinated dump's two halves in ckptd (docs/coordinator.md).
 *
 * In the worker, held_gate is the engine's gate (ckpt_dump_opts.gate):
 * at FROZEN it reports the SEQ this node would take and waits for the
 * client's "dump" with the SEQ every node agreed on, which names the part
 * BASE/JOB/SEQ/nodes/NODE; at DUMPED it reports the part's manifest crc
 * and waits for "commit".  The client's words come from the agent on the
 * request pipe (fd 3, kept open for a held dump), one rpc_gate frame
 * each; "abort", its end (the client went, the agent died) or the hold
 * timeout make the gate refuse, and the engine then removes the part and
 * thaws every task, as for any failed dump.
 *
 * In the agent, held_relay_client passes the client's frames on to the
 * worker while it relays the worker's reports (ops.c), and ops_commit_set
 * is the commit of the whole set by one node: a worker, as the job's
 * user, checks each part's manifest against its crc and writes the set's
 * manifest and `latest` (storage/jobparts.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"
#include "wire.h"

#define HOLD_TIMEOUT_S 60
#define HOLD_TIMEOUT_MAX_S 3600

/* ---- the worker's side ---- */

static void send_gate(const char *phase, const struct ckpt_gate_info *info, uint64_t seq)
{
	struct worker_msg m = { .type = WMSG_GATE, .seq = seq, .tasks = info->nr_tasks,
				.pid = info->root, .crc = info->manifest_crc };
	snprintf(m.phase, sizeof(m.phase), "%s", phase);
	snprintf(m.path, sizeof(m.path), "%s", info->dir ? info->dir : "");
	if (write(WORKER_REPORT_FD, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(3);
}

/* The client's next word: 0 with *g (free it), or why there is none. */
static int wait_word(const struct held *h, RpcGate **g)
{
	void *buf;
	size_t len;
	uint64_t deadline = wire_clock_ns() + (uint64_t)h->timeout_s * 1000000000ULL;
	int ret = wire_recv_by(WORKER_REQ_FD, &buf, &len, WIRE_MAX_FRAME, deadline);
	if (ret == -ETIMEDOUT) {
		fprintf(stderr, "job %s: held dump: no word from the coordinator within %u s: "
			"aborted, every task thawed\n", h->job, h->timeout_s);
		return ret;
	}
	if (ret) {
		fprintf(stderr, "job %s: held dump: the coordinator went away: aborted, every "
			"task thawed\n", h->job);
		return -ECONNABORTED;
	}
	*g = rpc_gate__unpack(NULL, len, buf);
	free(buf);
	return *g ? 0 : -EPROTO;
}

/* Wait for `want` ("dump" or "commit"); anything else aborts. */
static int wait_for(const struct held *h, const char *want, uint64_t *seq)
{
	RpcGate *g = NULL;
	int ret = wait_word(h, &g);
	if (ret)
		return ret;
	if (strcmp(g->action, want)) {
		fprintf(stderr, "job %s: held dump: %.32s from the coordinator: aborted, every "
			"task thawed\n", h->job, g->action);
		ret = -ECANCELED;
	} else if (seq && (!g->has_seq || !g->seq || g->seq > (1ULL << 62))) {
		fprintf(stderr, "job %s: held dump: no valid SEQ to dump into\n", h->job);
		ret = -EINVAL;
	} else if (seq) {
		*seq = g->seq;
	}
	rpc_gate__free_unpacked(g, NULL);
	return ret;
}

/* The set's own manifest, SEQ/manifest above nodes/NODE: the commit
 * point of a multi-node set.  Once it is there the set is committed,
 * whatever this node hears after. */
static int set_committed(const struct held *h)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", h->dir);
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(path, '/');
		if (!slash)
			return 0;
		*slash = '\0';
	}
	size_t n = strlen(path);
	if (n + sizeof("/manifest") > sizeof(path))
		return 0;
	strcpy(path + n, "/manifest");
	return !faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW);
}

int held_gate(void *arg, enum ckpt_gate gate, struct ckpt_gate_info *info)
{
	struct held *h = arg;
	uint64_t seq = 0;
	if (gate == CKPT_GATE_DUMPED) {
		send_gate("dumped", info, h->seq);
		int ret = wait_for(h, "commit", NULL);
		/* The word lost after the set committed (the coordinator
		 * killed between commit and resume): the set names this part,
		 * which must stay; the dump ends as a committed one. */
		if (ret && set_committed(h)) {
			fprintf(stderr, "job %s: set %llu is committed: this part stays, the dump "
				"goes on\n", h->job, (unsigned long long)h->seq);
			ret = 0;
		}
		return ret;
	}
	int ret = ckpt_job_next_seq(h->job, h->base, &seq);
	if (ret) {
		fprintf(stderr, "job %s: held dump: cannot read the job's sets: %s\n", h->job,
			strerror(-ret));
		return ret;
	}
	send_gate("frozen", info, seq);
	if ((ret = wait_for(h, "dump", &h->seq)))
		return ret;
	ret = ckpt_job_dir(h->job, h->base, h->dir, sizeof(h->dir));
	size_t n = strlen(h->dir);
	if (!ret && (size_t)snprintf(h->dir + n, sizeof(h->dir) - n, "/%llu/nodes/%s",
				     (unsigned long long)h->seq, h->node) >= sizeof(h->dir) - n)
		ret = -ENAMETOOLONG;
	info->dir = h->dir;
	/* Never into a set committed already (a SEQ of the past). */
	if (!ret && set_committed(h)) {
		fprintf(stderr, "job %s: held dump: set %llu is a committed set already\n", h->job,
			(unsigned long long)h->seq);
		ret = -EEXIST;
	}
	return ret;
}

void held_init(struct held *h, const RpcDump *d)
{
	memset(h, 0, sizeof(*h));
	h->job = d->set_job;
	h->base = d->set_base;
	h->node = d->node;
	h->timeout_s = d->hold_timeout_s ? d->hold_timeout_s : HOLD_TIMEOUT_S;
	if (h->timeout_s > HOLD_TIMEOUT_MAX_S)
		h->timeout_s = HOLD_TIMEOUT_MAX_S; /* a job is never held for long */
}

int do_commit_set(const RpcCommitSet *cs)
{
	struct ckpt_part parts[64];
	char job[16];
	if (cs->n_parts > 64 || !cs->n_parts) {
		fprintf(stderr, "job %u: commit of %zu parts: 1 to 64\n", cs->job_id, cs->n_parts);
		return -EINVAL;
	}
	for (size_t i = 0; i < cs->n_parts; i++)
		parts[i] = (struct ckpt_part){ cs->parts[i]->node, cs->parts[i]->manifest_crc,
					       cs->parts[i]->rank, cs->parts[i]->root_pid,
					       cs->parts[i]->batch, cs->parts[i]->address };
	snprintf(job, sizeof(job), "%u", cs->job_id);
	return ckpt_job_commit_parts(job, cs->set_base, cs->seq,
				     cs->has_owner ? (int64_t)cs->owner : -1, parts, cs->n_parts);
}

/* ---- the agent's side ---- */

/* A frame of the client's during a held dump: a gate word goes on to the
 * worker; anything else, or the client gone, closes the worker's pipe
 * (the worker aborts).  Returns the pipe, or -1 once closed. */
int held_relay_client(struct conn *c, uint32_t job, int pipe)
{
	void *buf;
	size_t len;
	int ret = wire_recv_by(c->fd, &buf, &len, WIRE_MAX_FRAME,
			       wire_clock_ns() + agent.request_timeout_ns);
	RpcRequest *q = ret ? NULL : rpc_request__unpack(NULL, len, buf);
	if (!ret)
		free(buf);
	if (q && q->req_case == RPC_REQUEST__REQ_GATE && q->gate->action) {
		agent_log(job, "held dump: %.32s from the coordinator", q->gate->action);
		if (!wire_send_msg(pipe, &q->gate->base)) {
			rpc_request__free_unpacked(q, NULL);
			return pipe;
		}
	}
	agent_log(job, "held dump: %s: aborting", ret ? "the client went away" :
		  "not a gate word from the client");
	if (q)
		rpc_request__free_unpacked(q, NULL);
	close(pipe);
	return -1;
}

/* The worker at a gate: to the client. */
void held_reply_gate(struct conn *c, const struct worker_msg *m, const char *node)
{
	RpcReply r = RPC_REPLY__INIT;
	RpcGateReply g = RPC_GATE_REPLY__INIT;
	char phase[16], host[256] = "";
	memcpy(phase, m->phase, sizeof(phase));
	phase[15] = '\0';
	gethostname(host, sizeof(host) - 1);
	g.phase = phase;
	g.has_next_seq = !strcmp(phase, "frozen");
	g.next_seq = m->seq;
	g.node = (char *)node;
	g.hostname = host;
	g.has_manifest_crc = g.has_root_pid = g.has_tasks = 1;
	g.manifest_crc = m->crc;
	g.root_pid = (uint32_t)m->pid;
	g.tasks = m->tasks;
	g.dir = memchr(m->path, '\0', sizeof(m->path)) && m->path[0] ? (char *)m->path : NULL;
	r.gate = &g;
	conn_reply(c->fd, &r);
}

/* A part's name: what a directory may be called, no more. */
int held_node_name(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > 64 || name[0] == '.' || name[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    name[i]))
			return 0;
	return 1;
}

/* The job's base and user for its commit: as for its dumps (ops.c's
 * resolve_job), the job's own place, written by the job's user. */
static int commit_resolve(const struct peer *p, const RpcCommitSet *cs, char *base, size_t len,
			  uid_t *uid, char *err, size_t errlen)
{
	int ret = 0;
	pthread_mutex_lock(&agent.lock);
	struct job *j = jobs_find_locked(cs->job_id);
	if (!j) {
		snprintf(err, errlen, "job %u is not registered with this agent", cs->job_id);
		ret = -ENOENT;
	} else if (p->uid && p->uid != j->uid) {
		snprintf(err, errlen, "uid %u may not commit a set of job %u of uid %u", p->uid,
			 cs->job_id, j->uid);
		ret = -EPERM;
	} else if (j->disabled) {
		snprintf(err, errlen, "job %u: checkpoints are disabled", cs->job_id);
		ret = -EPERM;
	} else {
		snprintf(base, len, "%s", j->dir ? j->dir : "");
		*uid = j->uid;
	}
	pthread_mutex_unlock(&agent.lock);
	return ret;
}

static int commit_reply(struct conn *c, int ret, const char *err)
{
	RpcReply r = RPC_REPLY__INIT;
	r.done = 1;
	r.has_result = 1;
	r.result = ret;
	r.error = ret ? (char *)err : NULL;
	return conn_reply(c->fd, &r);
}

int ops_commit_set(struct conn *c, const RpcCommitSet *cs)
{
	char err[512] = "", base[PATH_MAX];
	uid_t uid = 0;
	struct ident who;
	struct worker_msg res = { 0 };
	int ret = commit_resolve(&c->peer, cs, base, sizeof(base), &uid, err, sizeof(err));
	if (!ret && !uid) {
		memset(&who, 0, sizeof(who));
		snprintf(who.groups, sizeof(who.groups), "-");
	} else if (!ret && (ret = ident_of_user(uid, (gid_t)-1, &who))) {
		snprintf(err, sizeof(err), "uid %u: cannot list the user's groups", uid);
	}
	if (!ret) {
		RpcCommitSet req = *cs;
		req.set_base = base[0] ? base : NULL;
		req.has_owner = 1;
		req.owner = (uint32_t)uid;
		ret = ops_worker_run(c, &req.base, "commit", 0, cs->job_id, &who, NULL, -1, NULL,
				     &res, err, sizeof(err));
	}
	agent_log(cs->job_id, "commit of set %llu (%zu nodes) by uid %u: %s",
		  (unsigned long long)cs->seq, cs->n_parts, c->peer.uid, ret ? err : "committed");
	return commit_reply(c, ret, err);
}
