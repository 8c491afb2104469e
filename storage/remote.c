/*
 * remote: the dumping side of the page server (see remote.h for the wire,
 * page-server.c for the other end).  A set "sent to" a page server keeps
 * its directory for the small images, as always, but its pages files
 * are not written there: the page writer's workers hand each compressed
 * chunk to remote_write(), which sends it (one frame at a time, under the
 * connection's lock) to be written at the same offset on the server.  At
 * commit every other file of the set is sent from the directory, then the
 * manifest; the set is committed when the server says so.  The local
 * directory then holds the metadata and no manifest: it is not a set, the
 * server's directory is.
 */
#include <errno.h>
#include <fcntl.h>
#include <munge.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "remote.h"

/* A page server that takes no data for this long is gone (a stopped or
 * unreachable node): the dump fails rather than hangs. */
#define SEND_TIMEOUT_S 60
/* The commit answer waits for the server's fsync of the whole set. */
#define COMMIT_TIMEOUT_S 600

struct set_remote {
	int fd;
	pthread_mutex_t lock;
	int err;
	char *where;
};

void remote_hdr_pack(uint8_t out[REMOTE_HDR], const struct remote_hdr *h)
{
	put_le32(out, h->type);
	put_le32(out + 4, h->name_len);
	put_le32(out + 8, (uint32_t)h->offset);
	put_le32(out + 12, (uint32_t)(h->offset >> 32));
	put_le32(out + 16, h->len);
	put_le32(out + 20, 0);
}

void remote_hdr_unpack(const uint8_t in[REMOTE_HDR], struct remote_hdr *h)
{
	h->type = get_le32(in);
	h->name_len = get_le32(in + 4);
	h->offset = get_le32(in + 8) | (uint64_t)get_le32(in + 12) << 32;
	h->len = get_le32(in + 16);
}

int remote_recv_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

int remote_send_frame(int fd, const struct remote_hdr *h, const char *name, const void *data)
{
	uint8_t hdr[REMOTE_HDR];
	struct iovec iov[3] = { { hdr, REMOTE_HDR },
				{ (void *)name, h->name_len },
				{ (void *)data, h->len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
	size_t left = REMOTE_HDR + h->name_len + h->len;

	remote_hdr_pack(hdr, h);
	while (left) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 && errno == EAGAIN ? -ETIMEDOUT : n < 0 ? -errno : -EPIPE;
		left -= n;
		while (n && (size_t)n >= m.msg_iov->iov_len) {
			n -= m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (n) {
			m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + n;
			m.msg_iov->iov_len -= n;
		}
	}
	return 0;
}

/* "HOST:PORT", "[V6]:PORT": connected, or -errno after one line. */
static int remote_connect(const char *where)
{
	char host[256];
	const char *colon = strrchr(where, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, ret;

	if (!colon || colon == where || !colon[1] || (size_t)(colon - where) >= sizeof(host)) {
		st_err("page server %s: not HOST:PORT", where);
		return -EINVAL;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - where), where);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	ret = getaddrinfo(host, colon + 1, &hints, &res);
	if (ret) {
		st_err("page server %s: %s", where, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	ret = -ECONNREFUSED;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			ret = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		st_err("page server %s: connect: %s", where, strerror(-ret));
	return fd < 0 ? ret : fd;
}

static void set_timeout(int fd, int opt, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* The server's REPLY: 0, or its error after printing its reason. */
static int remote_reply(struct set_remote *r, const char *what)
{
	uint8_t hdr[REMOTE_HDR];
	struct remote_hdr h;
	char why[512] = "";
	int ret = remote_recv_full(r->fd, hdr, sizeof(hdr));

	if (!ret) {
		remote_hdr_unpack(hdr, &h);
		if (h.type != REMOTE_REPLY || h.name_len || h.len >= sizeof(why))
			ret = -EPROTO;
	}
	if (!ret)
		ret = remote_recv_full(r->fd, why, h.len);
	if (ret) {
		st_err("page server %s: %s: %s", r->where, what,
		       ret == -EPIPE ? "the server closed the connection" : strerror(-ret));
		return ret;
	}
	if ((int64_t)h.offset >= 0)
		return 0;
	st_err("page server %s: %s: %s", r->where, what, why[0] ? why : "refused");
	return (int64_t)h.offset < -4095 ? -EPROTO : (int)(int64_t)h.offset;
}

static int remote_auth(struct set_remote *r)
{
	char *cred = NULL;
	munge_err_t e = munge_encode(&cred, NULL, NULL, 0);
	struct remote_hdr h = { .type = REMOTE_AUTH };
	int ret;

	if (e != EMUNGE_SUCCESS) {
		st_err("page server %s: munge: %s", r->where, munge_strerror(e));
		free(cred);
		return -EACCES;
	}
	h.len = strlen(cred);
	ret = remote_send_frame(r->fd, &h, "", cred);
	free(cred);
	if (ret) {
		st_err("page server %s: sending the credential: %s", r->where, strerror(-ret));
		return ret;
	}
	return remote_reply(r, "authentication");
}

void remote_close(struct set_remote *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	pthread_mutex_destroy(&r->lock);
	free(r->where);
	free(r);
}

int img_set_send_to(struct img_set *set, const char *where)
{
	struct set_remote *r;
	int ret;

	if (!set->writing || set->remote || set->parent)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->where = strdup(where))) {
		free(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->fd = remote_connect(where);
	if (r->fd < 0) {
		ret = r->fd;
		remote_close(r);
		return ret;
	}
	set_timeout(r->fd, SO_SNDTIMEO, SEND_TIMEOUT_S);
	set_timeout(r->fd, SO_RCVTIMEO, SEND_TIMEOUT_S);
	ret = remote_auth(r);
	if (ret) {
		remote_close(r);
		return ret;
	}
	set->remote = r;
	return 0;
}

/* One piece of file `name` at `off`; from any worker.  The first error
 * sticks and is printed once. */
int remote_write(struct img_set *set, const char *name, const void *data, size_t len, uint64_t off)
{
	struct set_remote *r = set->remote;
	struct remote_hdr h = { .type = REMOTE_DATA, .name_len = strlen(name), .offset = off };
	const uint8_t *p = data;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = r->err;
	while (!ret && len) {
		h.len = len > REMOTE_MAX_DATA ? REMOTE_MAX_DATA : (uint32_t)len;
		ret = remote_send_frame(r->fd, &h, name, p);
		p += h.len;
		h.offset += h.len;
		len -= h.len;
		if (ret) {
			r->err = ret;
			st_err("page server %s: sending %s: %s", r->where, name,
			       ret == -EPIPE || ret == -ECONNRESET ? "the server went away"
								   : strerror(-ret));
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* An empty file exists on the server too. */
int remote_write_empty(struct img_set *set, const char *name)
{
	struct set_remote *r = set->remote;
	struct remote_hdr h = { .type = REMOTE_DATA, .name_len = strlen(name) };
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = r->err ? r->err : remote_send_frame(r->fd, &h, name, "");
	if (ret && !r->err) {
		r->err = ret;
		st_err("page server %s: sending %s: %s", r->where, name, strerror(-ret));
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* A file of the local directory, sent whole. */
static int send_local(struct img_set *set, const char *name, uint64_t size)
{
	uint8_t *buf = malloc(1u << 20);
	int fd = openat(set->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t off = 0;
	int ret = fd < 0 ? -errno : buf ? 0 : -ENOMEM;

	if (ret && ret != -ENOMEM)
		st_err("%s/%s: open: %s", set->dir, name, strerror(-ret));
	while (!ret && off < size) {
		size_t n = size - off < (1u << 20) ? size - off : (1u << 20);
		ret = pread_full(fd, buf, n, off);
		if (ret)
			st_err("%s/%s: read: %s", set->dir, name, strerror(-ret));
		else
			ret = remote_write(set, name, buf, n, off);
		off += n;
	}
	/* An empty file exists on the server too. */
	if (!ret && !size)
		ret = remote_write_empty(set, name);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* Every file not sent yet, then the manifest written as `tmp`: committed
 * on the server when this returns 0. */
int remote_commit(struct img_set *set, const char *tmp)
{
	struct set_remote *r = set->remote;
	struct stat st;
	uint8_t *buf = NULL;
	int fd, ret = 0;

	for (size_t i = 0; !ret && i < set->nr_files; i++)
		if (!set->files[i].sent)
			ret = send_local(set, set->files[i].name, set->files[i].size);
	if (ret)
		return ret;
	errno = 0;
	fd = openat(set->dirfd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || st.st_size > REMOTE_MAX_MANIFEST ||
	    !(buf = malloc(st.st_size ? st.st_size : 1)) || pread_full(fd, buf, st.st_size, 0)) {
		ret = errno ? -errno : -EIO;
		st_err("%s/%s: reading the manifest: %s", set->dir, tmp, strerror(-ret));
	}
	if (fd >= 0)
		close(fd);
	if (!ret) {
		struct remote_hdr h = { .type = REMOTE_COMMIT, .len = (uint32_t)st.st_size };
		pthread_mutex_lock(&r->lock);
		ret = r->err ? r->err : remote_send_frame(r->fd, &h, "", buf);
		pthread_mutex_unlock(&r->lock);
		if (ret)
			st_err("page server %s: sending the manifest: %s", r->where,
			       strerror(-ret));
	}
	free(buf);
	if (!ret) {
		set_timeout(r->fd, SO_RCVTIMEO, COMMIT_TIMEOUT_S);
		ret = remote_reply(r, "commit");
	}
	return ret;
}
