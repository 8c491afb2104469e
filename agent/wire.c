/*
 * wire: see wire.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		/* send() for MSG_NOSIGNAL on sockets; pipes take write(). */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint64_t wire_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* 0 once fd has bytes (or EOF) to read, -ETIMEDOUT at the deadline.  A
 * poll before each read, not SO_RCVTIMEO: that bounds each read, and a
 * peer sending a byte just before each timeout would never hit it. */
static int wait_readable(int fd, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = wire_clock_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		uint64_t ms = (deadline_ns - now + 999999) / 1000000;
		struct pollfd pf = { fd, POLLIN, 0 };
		int n = poll(&pf, 1, ms > 60000 ? 60000 : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* 0, or -ENODATA on EOF before the first byte, -EPROTO on EOF later,
 * -ETIMEDOUT past deadline_ns (0: none). */
static int read_all(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		int ret = deadline_ns ? wait_readable(fd, deadline_ns) : 0;
		if (ret)
			return ret;
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got ? -EPROTO : -ENODATA;
		got += (size_t)n;
	}
	return 0;
}

int wire_send(int fd, const void *buf, size_t len)
{
	unsigned char hdr[4];
	if (len > WIRE_MAX_FRAME)
		return -EMSGSIZE;
	for (int i = 0; i < 4; i++)
		hdr[i] = (unsigned char)(len >> (8 * i));
	int ret = write_all(fd, hdr, sizeof(hdr));
	return ret ? ret : write_all(fd, buf, len);
}

int wire_send_msg(int fd, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	void *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(m, buf);
	int ret = wire_send(fd, buf, len);
	free(buf);
	return ret;
}

int wire_recv(int fd, void **buf, size_t *len, size_t max)
{
	return wire_recv_by(fd, buf, len, max, 0);
}

int wire_recv_by(int fd, void **buf, size_t *len, size_t max, uint64_t deadline_ns)
{
	unsigned char hdr[4];
	int ret = read_all(fd, hdr, sizeof(hdr), deadline_ns);
	if (ret)
		return ret;
	size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
		   (size_t)hdr[3] << 24;
	if (n > max)
		return -EMSGSIZE;
	char *p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	if ((ret = read_all(fd, p, n, deadline_ns))) {
		free(p);
		return ret == -ENODATA ? -EPROTO : ret;
	}
	*buf = p;
	*len = n;
	return 0;
}
