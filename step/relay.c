/*
 * relay: the fences of a step whose ranks are on several nodes
 * (--fence-relay NAME, docs/coordinator.md).  libpmix gives our fence_nb
 * upcall the packed contributions of this node's ranks; the fence's
 * result must hold every node's.  This node's ckpt-coord, a PMIx client
 * of the restore's own step, gets them from the other nodes through a
 * fence of its step (coordinator/relay.c): we send it ours on the
 * abstract unix socket "ckpt-relay.NAME" and a thread of ours reads the
 * answers, in the order of the requests, and hands each to the upcall's
 * callback.  The peer must be our own user (SO_PEERCRED).
 */
#include "step.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RELAY_WAIT_S 60       /* for ckpt-coord's socket to appear */
#define RELAY_MAX (64u << 20) /* as coordinator/relay.c */
#define RELAY_PENDING 64      /* fences in flight: libpmix has one per collective */

struct pending {
	relay_cb cb;
	void *arg;
};

static struct {
	pthread_mutex_t lock;
	int fd;
	bool closing; /* relay_close: the answers' end is ours */
	struct pending q[RELAY_PENDING];
	size_t head, n;
} relay = { PTHREAD_MUTEX_INITIALIZER, -1, false, { { 0 } }, 0, 0 };

static int full_io(int fd, void *buf, size_t n, int writing)
{
	char *p = buf;
	while (n) {
		ssize_t r = writing ? send(fd, p, n, MSG_NOSIGNAL) : read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int pop(struct pending *out)
{
	pthread_mutex_lock(&relay.lock);
	int ok = relay.n > 0;
	if (ok) {
		*out = relay.q[relay.head];
		relay.head = (relay.head + 1) % RELAY_PENDING;
		relay.n--;
	}
	pthread_mutex_unlock(&relay.lock);
	return ok;
}

static int read_answer(int fd, char **data, uint32_t *len)
{
	int32_t status;
	int ret = full_io(fd, &status, sizeof(status), 0);
	if (!ret)
		ret = full_io(fd, len, sizeof(*len), 0);
	if (!ret && *len > RELAY_MAX)
		ret = -E2BIG;
	if (!ret && !(*data = malloc(*len ? *len : 1)))
		ret = -ENOMEM;
	if (!ret && (ret = full_io(fd, *data, *len, 0)))
		free(*data);
	return ret ? ret : status;
}

/* The answers, in order; once the relay is gone, every fence fails. */
static void *reader(void *unused)
{
	struct pending p;
	(void)unused;
	for (;;) {
		char *data = NULL;
		uint32_t len = 0;
		int ret = read_answer(relay.fd, &data, &len);
		if (ret && !relay.closing)
			fprintf(stderr, "ckpt-step: fence relay: %s\n", strerror(-ret));
		if (!pop(&p)) {
			free(data);
			if (ret)
				break;
			fprintf(stderr, "ckpt-step: fence relay: an answer to no fence\n");
			break;
		}
		p.cb(ret, ret ? NULL : data, ret ? 0 : len, p.arg);
		if (ret)
			break;
	}
	pthread_mutex_lock(&relay.lock);
	shutdown(relay.fd, SHUT_RDWR);
	pthread_mutex_unlock(&relay.lock);
	while (pop(&p))
		p.cb(-EPIPE, NULL, 0, p.arg);
	return NULL;
}

static int relay_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "ckpt-relay.%s", name);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path) - 1)
		return -ENAMETOOLONG;
	sa->sun_family = AF_UNIX;
	sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	return 0;
}

/* Connect, retrying while ckpt-coord is not listening yet. */
static int connect_relay(const char *name)
{
	struct sockaddr_un sa = { 0 };
	socklen_t len;
	if (relay_addr(name, &sa, &len))
		return -ENAMETOOLONG;
	for (int ms = 0; ms < RELAY_WAIT_S * 1000; ms += 50) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, len))
			return fd;
		int err = errno;
		close(fd);
		if (err != ECONNREFUSED && err != ENOENT)
			return -err;
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	}
	return -ETIMEDOUT;
}

int relay_connect(const struct step *s)
{
	int fd = connect_relay(s->relay);
	if (fd < 0) {
		fprintf(stderr, "ckpt-step: fence relay @ckpt-relay.%s: %s\n", s->relay,
			strerror(-fd));
		return fd;
	}
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != getuid()) {
		fprintf(stderr, "ckpt-step: fence relay @ckpt-relay.%s is uid %u's, not ours\n",
			s->relay, (unsigned)cred.uid);
		close(fd);
		return -EPERM;
	}
	relay.fd = fd;
	pthread_t t;
	if (pthread_create(&t, NULL, reader, NULL)) {
		close(fd);
		relay.fd = -1;
		return -EAGAIN;
	}
	pthread_detach(t);
	return 0;
}

/* Queued before it is sent: the answer may come before send returns. */
int relay_fence(const char *data, size_t len, relay_cb cb, void *arg)
{
	uint32_t n = (uint32_t)len;
	int ret = len > RELAY_MAX ? -E2BIG : 0;
	pthread_mutex_lock(&relay.lock);
	if (!ret && (relay.fd < 0 || relay.n == RELAY_PENDING))
		ret = -EAGAIN;
	if (!ret) {
		relay.q[(relay.head + relay.n) % RELAY_PENDING] = (struct pending){ cb, arg };
		relay.n++;
		ret = full_io(relay.fd, &n, sizeof(n), 1);
		if (!ret && len)
			ret = full_io(relay.fd, (void *)data, len, 1);
		if (ret)
			relay.n--; /* never sent whole: the reader ends all the same */
	}
	pthread_mutex_unlock(&relay.lock);
	return ret;
}

/* Every local rank has ended: no fence can come, and the relay (and the
 * other nodes' srun, which we wait for) may end. */
void relay_close(void)
{
	pthread_mutex_lock(&relay.lock);
	if (relay.fd >= 0 && !relay.closing) {
		relay.closing = true;
		shutdown(relay.fd, SHUT_WR);
	}
	pthread_mutex_unlock(&relay.lock);
}
