/*
 * tcp: the agent's protocol over TCP, for clients that cannot reach the
 * unix socket (off unless agent.tcp_port or --tcp is set).  There is no
 * SO_PEERCRED over TCP: the first frame of a connection must be an
 * rpc_auth holding a munge credential (munge(1), the same keys Slurm
 * uses), which munged decodes into the client's uid and gid.  munged
 * refuses a credential that is replayed or expired.
 */
#include <errno.h>
#include <munge.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "wire.h"

int tcp_listen(int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				  .sin6_addr = IN6ADDR_ANY_INIT };
	int one = 1;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128)) {
		agent_log(0, "tcp port %d: %s", port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Authenticated: the connection leaves the pool of unauthenticated ones
 * for its uid's slots (slots.c), or is refused like a unix one over them. */
static int tcp_promote(struct conn *c, uid_t uid, gid_t gid)
{
	char why[256];
	slots_give_back(c);
	c->peer = (struct peer){ uid, gid, 0 };
	c->authed = 1;
	int ret = slots_take(c, why, sizeof(why));
	if (ret)
		conn_error(c->fd, ret, "%s", why);
	return ret;
}

int tcp_auth(struct conn *c)
{
	void *buf;
	size_t len;
	int ret = wire_recv_by(c->fd, &buf, &len, 4096, c->deadline_ns);
	if (ret == -ETIMEDOUT)
		conn_error(c->fd, ret, "no munge credential within the request deadline");
	if (ret)
		return ret;
	RpcAuth *a = rpc_auth__unpack(NULL, len, buf);
	free(buf);
	if (!a || !a->munge_cred.len || a->munge_cred.len > 4000) {
		if (a)
			rpc_auth__free_unpacked(a, NULL);
		conn_error(c->fd, -EACCES, "the first message must be a munge credential");
		return -EACCES;
	}
	char cred[4096];
	memcpy(cred, a->munge_cred.data, a->munge_cred.len);
	cred[a->munge_cred.len] = '\0';
	rpc_auth__free_unpacked(a, NULL);
	uid_t uid;
	gid_t gid;
	munge_err_t e = munge_decode(cred, NULL, NULL, NULL, &uid, &gid);
	if (e != EMUNGE_SUCCESS) {
		agent_log(0, "tcp client refused: munge: %s", munge_strerror(e));
		conn_error(c->fd, -EACCES, "munge: %s", munge_strerror(e));
		return -EACCES;
	}
	if ((ret = tcp_promote(c, uid, gid)))
		return ret;
	RpcReply r = RPC_REPLY__INIT;
	r.done = 1;
	r.has_result = 1;
	return conn_reply(c->fd, &r);
}

/* Serve until `stopfd` becomes readable (SIGTERM). */
int accept_loop(int lfd, int tfd, int stopfd)
{
	struct pollfd pf[3] = { { lfd, POLLIN, 0 }, { tfd, POLLIN, 0 }, { stopfd, POLLIN, 0 } };
	for (;;) {
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pf[2].revents)
			return 0;
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & POLLIN))
				continue;
			int fd = accept4(pf[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				start_conn(fd, i == 1);
		}
	}
}
