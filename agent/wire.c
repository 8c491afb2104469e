/*
 * wire: see wire.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* 0, or -ENODATA on EOF before the first byte, -EPROTO on EOF later. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
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
	unsigned char hdr[4];
	int ret = read_all(fd, hdr, sizeof(hdr));
	if (ret)
		return ret;
	size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
		   (size_t)hdr[3] << 24;
	if (n > max)
		return -EMSGSIZE;
	char *p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	if ((ret = read_all(fd, p, n))) {
		free(p);
		return ret == -ENODATA ? -EPROTO : ret;
	}
	*buf = p;
	*len = n;
	return 0;
}
