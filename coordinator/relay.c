/*
 * relay: the fences of a restored `srun --mpi=pmix` step whose ranks are
 * on several nodes (docs/coordinator.md).  Each node's ckpt-step serves
 * its own ranks' PMIx; when they enter a fence, libpmix hands ckpt-step
 * (its fence_nb upcall) the node's packed contributions, and ckpt-step
 * sends them here, to this node's ckpt-coord.  We Put the blob, fence with
 * PMIX_COLLECT_DATA over our own step (one ckpt-coord per node), Get every
 * node's and answer with their concatenation in rank order: what libpmix's
 * server takes as the fence's result (one envelope per server, as Slurm's
 * pmixp hands them over).  No network protocol of ours between nodes.
 *
 * The socket is an abstract unix one, "ckpt-relay.NAME" ("%r" in NAME is
 * our PMIx rank), so that each node (each network namespace) has its
 * own; the peer must be our own user (SO_PEERCRED), as ckpt-step checks
 * of us.  One connection, requests in order:
 *   request: u32 length, the bytes
 *   answer:  i32 status (0 or -errno), u32 length, the bytes
 * Its end (EOF) ends the relay.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "coord.h"

#define RELAY_MAX (64u << 20) /* a fence's data: keys of every local rank */

/* "ckpt-relay.NAME" with %r our rank, as an abstract address. */
static int relay_addr(const char *name, uint32_t rank, struct sockaddr_un *sa, socklen_t *len)
{
	char path[sizeof(sa->sun_path) - 1];
	size_t n = (size_t)snprintf(path, sizeof(path), "ckpt-relay.");
	for (const char *p = name; *p && n < sizeof(path) - 12; p++)
		if (p[0] == '%' && p[1] == 'r')
			n += (size_t)snprintf(path + n, sizeof(path) - n, "%u", rank), p++;
		else
			path[n++] = *p;
	if (n >= sizeof(path) - 12 || !*name)
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, path, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	return 0;
}

int relay_listen(const char *name, uint32_t rank)
{
	struct sockaddr_un sa;
	socklen_t len;
	int ret = relay_addr(name, rank, &sa, &len);
	if (ret) {
		fprintf(stderr, "ckpt-coord: relay name '%s' too long\n", name);
		return ret;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 1)) {
		fprintf(stderr, "ckpt-coord: relay @%s: %s\n", sa.sun_path + 1, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EADDRINUSE;
	}
	return fd;
}

static int full_io(int fd, void *buf, size_t n, int writing)
{
	char *p = buf;
	while (n) {
		ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The first connection of our own user (ckpt-step); another user's, who
 * could reach the name too, is closed and the wait goes on. */
static int accept_step(int listener)
{
	for (;;) {
		int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return -1;
		struct ucred cred = { 0 };
		socklen_t len = sizeof(cred);
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && cred.uid == getuid())
			return fd;
		fprintf(stderr, "ckpt-coord: relay: a connection of uid %u (pid %d) refused\n",
			(unsigned)cred.uid, (int)cred.pid);
		close(fd);
	}
}

static int answer(int fd, int32_t status, const char *data, size_t len)
{
	uint32_t n = (uint32_t)len;
	int ret = full_io(fd, &status, sizeof(status), 1);
	if (!ret)
		ret = full_io(fd, &n, sizeof(n), 1);
	if (!ret && len)
		ret = full_io(fd, (void *)data, len, 1);
	return ret;
}

/* Each request: one fence of every node; 0 at the step's EOF. */
static int relay_loop(struct fence *f, int fd)
{
	for (uint64_t seq = 0;; seq++) {
		uint32_t len;
		int ret = full_io(fd, &len, sizeof(len), 0);
		if (ret == -EPIPE)
			return 0;
		if (ret || len > RELAY_MAX)
			return ret ? ret : -E2BIG;
		char *data = malloc(len ? len : 1), *all = NULL;
		size_t alen = 0;
		ret = data ? full_io(fd, data, len, 0) : -ENOMEM;
		if (!ret)
			ret = fence_blob(f, seq, data, len, &all, &alen);
		free(data);
		if (alen > RELAY_MAX)
			ret = -E2BIG;
		int sent = answer(fd, ret, all, ret ? 0 : alen);
		free(all);
		if (ret || sent)
			return ret ? ret : sent;
	}
}

int relay_run(struct fence *f, int listener, int wait_s)
{
	struct pollfd p = { .fd = listener, .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, wait_s < 0 ? -1 : wait_s * 1000)) < 0 && errno == EINTR)
		;
	if (n == 0) {
		fprintf(stderr, "ckpt-coord: relay: no step proxy came within %d s\n", wait_s);
		return -ETIMEDOUT;
	}
	int fd = n > 0 ? accept_step(listener) : -1;
	if (fd < 0)
		return -EPROTO;
	int ret = relay_loop(f, fd);
	close(fd);
	if (ret)
		fprintf(stderr, "ckpt-coord: relay: %s\n", strerror(-ret));
	return ret;
}

int relay_serve(struct fence *f, const char *name, uint32_t rank)
{
	int listener = relay_listen(name, rank);
	if (listener < 0)
		return listener;
	int ret = relay_run(f, listener, -1);
	close(listener);
	return ret;
}
