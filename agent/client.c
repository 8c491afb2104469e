/*
 * client: the library side of the agent protocol; see ckpt/client.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ckpt/client.h"
#include "rpc.pb-c.h"
#include "wire.h"

struct ckpt_conn {
	int fd;
};

const char *ckpt_client_socket(void)
{
	const char *s = getenv("CKPT_SOCKET");
	if (s && !strcmp(s, "none"))
		return NULL;
	return s && *s ? s : CKPT_SOCKET_DEFAULT;
}

int ckpt_conn_open(const char *path, struct ckpt_conn **out)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (!path)
		return -ENOENT;
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;
		close(fd);
		return err;
	}
	struct ckpt_conn *c = malloc(sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	*out = c;
	return 0;
}

int ckpt_conn_send(struct ckpt_conn *c, const void *buf, size_t len)
{
	return wire_send(c->fd, buf, len);
}

int ckpt_conn_send_fds(struct ckpt_conn *c, const int *fds, size_t n)
{
	union {
		char buf[CMSG_SPACE(CKPT_MAX_INHERIT_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'F';
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (!n || n > CKPT_MAX_INHERIT_FDS)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	m.msg_control = u.buf;
	m.msg_controllen = CMSG_SPACE(n * sizeof(int));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	return sendmsg(c->fd, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int ckpt_conn_recv(struct ckpt_conn *c, void **buf, size_t *len, size_t max)
{
	return wire_recv(c->fd, buf, len, max);
}

void ckpt_conn_close(struct ckpt_conn *c)
{
	if (c) {
		close(c->fd);
		free(c);
	}
}

int ckpt_conn_fd(const struct ckpt_conn *c)
{
	return c->fd;
}

int ckpt_client_agent_up(void)
{
	struct ckpt_conn *c;
	if (ckpt_conn_open(ckpt_client_socket(), &c))
		return 0;
	ckpt_conn_close(c);
	return 1;
}

/* Send `req`, skip progress replies, return the final reply's result. */
static int call(const RpcRequest *req)
{
	struct ckpt_conn *c;
	int ret = ckpt_conn_open(ckpt_client_socket(), &c);
	if (ret)
		return ret;
	ret = wire_send_msg(c->fd, &req->base);
	/* A connection ckptd refuses (too many) is answered and closed before
	 * the request is read: the send fails, the answer is there to read. */
	if (ret == -EPIPE || ret == -ECONNRESET)
		ret = 0;
	while (!ret) {
		void *buf;
		size_t len;
		if ((ret = wire_recv(c->fd, &buf, &len, WIRE_MAX_FRAME)))
			break;
		RpcReply *r = rpc_reply__unpack(NULL, len, buf);
		free(buf);
		if (!r) {
			ret = -EPROTO;
			break;
		}
		int done = r->done;
		if (done && r->has_result)
			ret = r->result;
		if (done && ret && r->error)
			fprintf(stderr, "ckptd: %s\n", r->error);
		rpc_reply__free_unpacked(r, NULL);
		if (done)
			break;
	}
	ckpt_conn_close(c);
	return ret;
}

int ckpt_client_register(const struct ckpt_job_reg *r)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRegister reg = RPC_REGISTER__INIT;
	uint32_t *pids = calloc(r->nr_pids + 1, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr_pids; i++)
		pids[i] = (uint32_t)r->pids[i];
	reg.job_id = r->job_id;
	reg.step_id = r->step_id;
	reg.uid = (uint32_t)r->uid;
	reg.pids = pids;
	reg.n_pids = r->nr_pids;
	reg.cgroup = (char *)r->cgroup;
	reg.policy = (char *)r->policy;
	reg.dir = (char *)r->dir;
	reg.has_nodes = r->nodes > 1;
	reg.nodes = r->nodes;
	reg.has_wrapper = r->wrapper != 0;
	reg.wrapper = r->wrapper != 0;
	reg.has_interval_min = r->interval_min != 0;
	reg.interval_min = r->interval_min;
	req.req_case = RPC_REQUEST__REQ_REG;
	req.reg = &reg;
	int ret = call(&req);
	free(pids);
	return ret;
}

int ckpt_client_unregister(uint32_t job_id, int64_t step_id)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcUnregister u = RPC_UNREGISTER__INIT;
	u.job_id = job_id;
	u.has_step_id = step_id >= 0;
	u.step_id = step_id >= 0 ? (uint32_t)step_id : 0;
	req.req_case = RPC_REQUEST__REQ_UNREG;
	req.unreg = &u;
	return call(&req);
}
