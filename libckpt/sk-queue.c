/*
 * sk-queue: a unix socket's receive queue, message by message, with the
 * fds in flight (SCM_RIGHTS) its messages carry; sk-unix.c's queues.
 *
 * Dump: MSG_PEEK walking SO_PEEK_OFF copies each message (a stream: each
 * chunk a read would give) without consuming it; the fds a message
 * carries land in the dumper with the peek and go to files.c
 * (files_add_inflight), which names their descriptions; queue_fds records
 * which message carries which files.  Restore: the messages are sent
 * again, those with fds with the pool's fds (SCM_RIGHTS).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "sk-queue.h"

#define QUEUE_BUF (1 << 20) /* larger than any unix datagram */

static int get_int(int sk, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);
	getsockopt(sk, SOL_SOCKET, opt, &v, &len);
	return v;
}

/* Room for a message's fds and its credentials (SO_PASSCRED). */
union queue_ctl {
	char buf[CMSG_SPACE(MAX_SCM_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	struct cmsghdr align;
};

/* The fds a peeked message carries (now ours, in order) into fds[];
 * *nr gets their count.  MSG_CTRUNC: some were lost to us, refused. */
static int take_fds(struct msghdr *mh, int *fds, size_t *nr)
{
	*nr = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nr < MAX_SCM_FDS)
				fds[(*nr)++] = fd;
			else
				close(fd);
		}
	}
	return (mh->msg_flags & MSG_CTRUNC) ? -EMSGSIZE : 0;
}

static void close_fds(const int *fds, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		close(fds[i]);
}

/* Peek up to len bytes at the peek offset; *nr_fds: the fds it carries. */
static ssize_t peek_at(int sk, char *buf, size_t len, int *fds, size_t *nr_fds, int *err)
{
	union queue_ctl ctl;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	*nr_fds = 0;
	*err = n < 0 ? -errno : take_fds(&mh, fds, nr_fds);
	if (*err && n >= 0) {
		close_fds(fds, *nr_fds);
		*nr_fds = 0;
	}
	return n;
}

static int add_message(struct arena *a, UnixSkEntry *u, const char *buf, size_t len)
{
	if (!(u->n_queue & 63)) {
		ProtobufCBinaryData *q = arena_alloc(a, (u->n_queue + 64) * sizeof(*q));
		if (!q)
			return -ENOMEM;
		if (u->n_queue)
			memcpy(q, u->queue, u->n_queue * sizeof(*q));
		u->queue = q;
	}
	uint8_t *d = arena_alloc(a, len + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d, buf, len);
	u->queue[u->n_queue++] = (ProtobufCBinaryData){ len, d };
	return 0;
}

/* The last message of u's queue carries fds[]: files.c resolves them. */
static int add_fds(struct files_dump *c, UnixSkEntry *u, const int *fds, size_t nr)
{
	struct arena *a = &c->a;
	size_t i = 0;
	if (!(u->n_queue_fds & 63)) {
		UnixQueueFds **q = arena_alloc(a, (u->n_queue_fds + 64) * sizeof(*q));
		if (!q)
			goto fail;
		if (u->n_queue_fds)
			memcpy(q, u->queue_fds, u->n_queue_fds * sizeof(*q));
		u->queue_fds = q;
	}
	UnixQueueFds *m = arena_alloc(a, sizeof(*m));
	uint32_t *ids = arena_alloc(a, nr * sizeof(*ids));
	if (!m || !ids)
		goto fail;
	unix_queue_fds__init(m);
	m->msg = (uint32_t)(u->n_queue - 1);
	m->n_file_ids = nr;
	m->file_ids = ids;
	u->queue_fds[u->n_queue_fds++] = m;
	for (; i < nr; i++) {
		int ret = files_add_inflight(c, fds[i], u->ino, &ids[i]);
		if (ret) {
			close_fds(fds + i + 1, nr - i - 1);
			return ret;
		}
	}
	return 0;
fail:
	close_fds(fds, nr);
	return -ENOMEM;
}

/*
 * A stream read glues writes together and stops after the first write
 * that carries fds, and a peek shows no more: it goes on from any offset
 * to that write and gives its fds (seen on 6.x kernels), so where the
 * write starts in its chunk is not known.  A receiver reading only the
 * bytes before it gets no fds; restored as one write, it would.  A chunk
 * of one byte is that write alone; a longer one is refused by name.
 */
static int check_stream_chunk(const UnixSkEntry *u, size_t n, size_t nr)
{
	return u->type == SOCK_STREAM && nr && n > 1 ? -ENOTSUP : 0;
}

/* One peeked chunk of n bytes, with its fds. */
static int add_chunk(struct files_dump *c, UnixSkEntry *u, const char *buf, size_t n,
		     const int *fds, size_t nr)
{
	int ret = check_stream_chunk(u, n, nr);
	if (!ret)
		ret = add_message(&c->a, u, buf, n);
	if (ret) {
		close_fds(fds, nr);
		return ret;
	}
	return nr ? add_fds(c, u, fds, nr) : 0;
}

/* Copy the receive queue message by message, leaving it in place; the
 * fds in flight it carries go to files.c. */
int sk_queue_peek(struct files_dump *c, int sk, pid_t pid, int fd, UnixSkEntry *u)
{
	int fds[MAX_SCM_FDS];
	size_t nr;
	int zero = 0, ret = 0, was = get_int(sk, SO_PEEK_OFF); /* the program's own */
	char *buf = malloc(QUEUE_BUF);
	if (!buf)
		return -ENOMEM;
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero))) {
		pr_err("pid %d: fd %d: SO_PEEK_OFF: %s", pid, fd, strerror(errno));
		free(buf);
		return -errno;
	}
	ssize_t n;
	for (;;) {
		n = peek_at(sk, buf, QUEUE_BUF, fds, &nr, &ret);
		if (n < 0 || ret) {
			if (ret == -EAGAIN)
				ret = 0;
			break;
		}
		/* 0 at the end of a stream, or from a socket shut down for
		 * receiving (a zero-length datagram there is lost) */
		if (n == 0 && (u->type == SOCK_STREAM || (u->shutdown & 1))) {
			close_fds(fds, nr);
			break;
		}
		if (u->n_queue >= (1 << 20)) {
			close_fds(fds, nr);
			ret = -E2BIG;
			break;
		}
		if ((ret = add_chunk(c, u, buf, (size_t)n, fds, nr)))
			break;
	}
	setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &was, sizeof(was));
	free(buf);
	if (ret == -ENOTSUP)
		pr_err("pid %d: fd %d: socket:[%llu]: fds in flight (SCM_RIGHTS) come with %zu "
		       "stream bytes, written before them or with them (the kernel does not show "
		       "which): not supported",
		       pid, fd, (unsigned long long)u->ino, (size_t)n);
	else if (ret == -EMSGSIZE)
		pr_err("pid %d: fd %d: socket:[%llu]: a queued message carries more fds in flight "
		       "(SCM_RIGHTS) than the dumper could take (RLIMIT_NOFILE?)",
		       pid, fd, (unsigned long long)u->ino);
	else if (ret)
		pr_err("pid %d: fd %d: cannot read the socket's queue: %s", pid, fd,
		       strerror(-ret));
	return ret;
}

/* ------------------------------ restore ------------------------------ */

/* Each message's fds: in queue order, 1 to SCM_MAX_FD of them, files of
 * the image; a stream chunk that carries fds is not empty (an empty
 * write sends nothing, its fds neither). */
int sk_queue_valid(const UnixSkEntry *u, size_t nr_files)
{
	for (size_t i = 0; i < u->n_queue_fds; i++) {
		const UnixQueueFds *q = u->queue_fds[i];
		if (q->msg >= u->n_queue || (i && q->msg <= u->queue_fds[i - 1]->msg) ||
		    !q->n_file_ids || q->n_file_ids > MAX_SCM_FDS ||
		    (u->type == SOCK_STREAM && !u->queue[q->msg].len))
			return 0;
		for (size_t j = 0; j < q->n_file_ids; j++)
			if (q->file_ids[j] >= nr_files)
				return 0;
	}
	return 1;
}

/* Send one queued message from `from` (to sa if set), with the pool's
 * fds for the files it carries (q). */
static int send_message(int from, const ProtobufCBinaryData *m, const UnixQueueFds *q,
			const int *pool, struct sockaddr_un *sa, socklen_t len)
{
	union queue_ctl ctl;
	struct iovec iov = { m->data, m->len };
	struct msghdr mh = { .msg_name = sa, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
	if (q) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(q->n_file_ids * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(q->n_file_ids * sizeof(int));
		for (size_t i = 0; i < q->n_file_ids; i++) {
			int fd = pool ? pool[q->file_ids[i]] : -1;
			if (fd < 0)
				return -EBADF;
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(fd));
		}
	}
	ssize_t n = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t)m->len)
		return n < 0 ? -errno : -EIO;
	return 0;
}

int sk_queue_refill(int from, const UnixSkEntry *u, struct sockaddr_un *to, socklen_t len,
		    const int *pool)
{
	size_t next = 0; /* queue_fds is in queue order */
	for (size_t i = 0; i < u->n_queue; i++) {
		const UnixQueueFds *q = NULL;
		if (next < u->n_queue_fds && u->queue_fds[next]->msg == i)
			q = u->queue_fds[next++];
		int ret = send_message(from, &u->queue[i], q, pool, to, len);
		if (ret)
			return ret;
	}
	return 0;
}
