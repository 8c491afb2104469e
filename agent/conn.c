/*
 * conn: one thread per client connection.  Reads request frames (at most
 * WIRE_MAX_FRAME bytes), checks and answers them in order.  A malformed
 * or oversized frame gets an error reply and the connection is closed;
 * the agent carries on.
 *
 * Each request must be in whole by a deadline (agent.request_timeout_s):
 * from accept for the first, from the last reply for the next ones.  It
 * bounds the wait for a whole frame, not each read, so neither an idle
 * client nor one sending a byte now and then keeps its slot (slots.c).
 * An operation the client waits on (a dump, an attached restore) is not
 * a request being read: it runs as long as it takes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"
#include "wire.h"

int conn_reply(int fd, RpcReply *r)
{
	return wire_send_msg(fd, &r->base);
}

int conn_error(int fd, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	RpcReply r = RPC_REPLY__INIT;
	r.done = 1;
	r.has_result = 1;
	r.result = err < 0 ? err : -EINVAL;
	r.error = msg;
	return conn_reply(fd, &r);
}

static int reply_result(int fd, int ret, const char *err)
{
	if (ret)
		return conn_error(fd, ret, "%s", err);
	RpcReply r = RPC_REPLY__INIT;
	r.done = 1;
	r.has_result = 1;
	return conn_reply(fd, &r);
}

static int do_status(struct conn *c, const RpcStatus *s, int with_ops)
{
	RpcReply r = RPC_REPLY__INIT;
	uint32_t job = s && s->has_job_id ? s->job_id : 0;
	r.done = 1;
	r.has_result = 1;
	r.has_agent_pid = r.has_agent_start_ns = 1;
	r.agent_pid = (uint32_t)getpid();
	r.agent_start_ns = agent.start_ns;
	pthread_mutex_lock(&agent.lock);
	jobs_fill_locked(&c->peer, job, s && s->has_ended && s->ended, &r);
	if (with_ops)
		ops_fill_locked(&c->peer, job, &r);
	pthread_mutex_unlock(&agent.lock);
	int ret = conn_reply(c->fd, &r);
	jobs_free_reply(&r);
	ops_free_reply(&r);
	return ret;
}

/* "batch step", "extern step", "step 3": Slurm gives its batch and extern
 * steps reserved ids (SLURM_BATCH_SCRIPT, SLURM_EXTERN_CONT in slurm.h,
 * which the agent does not include), that read as noise in a log. */
static const char *step_name(uint32_t step, char *buf, size_t len)
{
	if (step == 0xfffffffbU)
		return "batch step";
	if (step == 0xffffffffU)
		return "extern step";
	snprintf(buf, len, "step %u", step);
	return buf;
}

static int dispatch(struct conn *c, const RpcRequest *q)
{
	char err[512] = "", step[24];
	int ret;
	switch (q->req_case) {
	case RPC_REQUEST__REQ_REG:
		ret = jobs_register(&c->peer, q->reg, err, sizeof(err));
		agent_log(q->reg->job_id, "register %s of uid %u (%zu tasks) by uid %u: %s",
			  step_name(q->reg->step_id, step, sizeof(step)), q->reg->uid,
			  q->reg->n_pids, c->peer.uid, ret ? err : "ok");
		return reply_result(c->fd, ret, err);
	case RPC_REQUEST__REQ_UNREG:
		ret = jobs_unregister(&c->peer, q->unreg, err, sizeof(err));
		agent_log(q->unreg->job_id, "unregister %s by uid %u: %s",
			  q->unreg->has_step_id ? step_name(q->unreg->step_id, step, sizeof(step))
						: "the job",
			  c->peer.uid,
			  ret ? err : "ok");
		return reply_result(c->fd, ret, err);
	case RPC_REQUEST__REQ_DUMP:
		return ops_dump(c, q->dump);
	case RPC_REQUEST__REQ_RESTORE:
		return ops_restore(c, q->restore);
	case RPC_REQUEST__REQ_STATUS:
		return do_status(c, q->status, 1);
	case RPC_REQUEST__REQ_LIST:
		return do_status(c, q->list, 0);
	case RPC_REQUEST__REQ_CANCEL:
		ret = ops_cancel(&c->peer, q->cancel->job_id, err, sizeof(err));
		agent_log(q->cancel->job_id, "cancel by uid %u: %s", c->peer.uid, ret ? err : "ok");
		return reply_result(c->fd, ret, err);
	case RPC_REQUEST__REQ_CTL:
		ret = jobs_ctl(&c->peer, q->ctl, err, sizeof(err));
		agent_log(q->ctl->job_id, "checkpoints %s by uid %u: %s",
			  q->ctl->enable ? "enabled" : "disabled", c->peer.uid, ret ? err : "ok");
		return reply_result(c->fd, ret, err);
	case RPC_REQUEST__REQ_COMMIT_SET:
		return ops_commit_set(c, q->commit_set);
	case RPC_REQUEST__REQ_GATE:
		return conn_error(c->fd, -EINVAL, "%.32s: no held dump waits on this connection",
				  q->gate->action);
	case RPC_REQUEST__REQ_NET_UNLOCK:
		/* the name says whose the lock is (net_lock_name_ok) */
		ret = ckpt_net_unlock(q->net_unlock->name, c->peer.uid);
		snprintf(err, sizeof(err), "network lock %.80s: %s", q->net_unlock->name,
			 ret == -EPERM ? "not a lock of yours" : strerror(-ret));
		agent_log(0, "net-unlock %.80s by uid %u: %s", q->net_unlock->name, c->peer.uid,
			  ret ? err : "ok");
		return reply_result(c->fd, ret, err);
	default:
		return conn_error(c->fd, -EINVAL, "unknown request");
	}
}

static struct log_burst timeouts = LOG_BURST_INIT;

static void on_timeout(struct conn *c)
{
	unsigned s = (unsigned)(agent.request_timeout_ns / 1000000000ULL);
	agent_log_burst(&timeouts, "uid %u: no whole request within %u s: connection closed",
			c->peer.uid, s);
	conn_error(c->fd, -ETIMEDOUT, "no whole request within %u s", s);
}

static void serve(struct conn *c)
{
	for (;;) {
		void *buf;
		size_t len;
		int ret = wire_recv_by(c->fd, &buf, &len, WIRE_MAX_FRAME, c->deadline_ns);
		if (ret == -ETIMEDOUT)
			on_timeout(c);
		if (ret == -EMSGSIZE) {
			agent_log(0, "uid %u: request over %u bytes refused", c->peer.uid,
				  WIRE_MAX_FRAME);
			conn_error(c->fd, ret, "request over %u bytes", WIRE_MAX_FRAME);
		}
		if (ret)
			return;
		RpcRequest *q = rpc_request__unpack(NULL, len, buf);
		free(buf);
		if (!q) {
			agent_log(0, "uid %u: malformed request", c->peer.uid);
			conn_error(c->fd, -EPROTO, "malformed request");
			return;
		}
		ret = dispatch(c, q);
		rpc_request__free_unpacked(q, NULL);
		if (ret)
			return;
		c->deadline_ns = wire_clock_ns() + agent.request_timeout_ns;
	}
}

void *conn_thread(void *arg)
{
	struct conn *c = arg;
	if (!c->tcp || !tcp_auth(c))
		serve(c);
	close(c->fd);
	slots_give_back(c);
	free(c);
	return NULL;
}
