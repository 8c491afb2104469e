/*
 * tcp-counter: one end of a TCP stream of a growing counter, for the
 * coordinator's tests (coord-test.sh): two of these, each its own "node"'s
 * tree, dumped by its own ckptd.
 *
 *   tcp-counter server PORT   listens on 127.0.0.1:PORT, accepts one peer
 *   tcp-counter client PORT   connects to it
 *
 * The client sends n = 1, 2, 3, ... (8 bytes each); the server checks
 * that each is the one after the last and sends it back; the client
 * checks the echo.  Every 100 numbers each prints "n=N" (stdout, a log).
 * A number lost, repeated or out of order, a reset or an early end is
 * printed as "ERROR ..." and ends the program with 1: two ends restored
 * from sets taken at different moments, or a connection reset by a peer
 * kernel, cannot go on unnoticed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int full(int fd, void *buf, size_t len, int out)
{
	char *p = buf;
	while (len) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fail(const char *what, uint64_t n, int err)
{
	printf("ERROR %s at n=%llu: %s\n", what, (unsigned long long)n, strerror(-err));
	return 1;
}

static int serve(int sk)
{
	uint64_t last = 0, n;
	for (;;) {
		int ret = full(sk, &n, sizeof(n), 0);
		if (ret)
			return fail("server: read", last, ret);
		if (n != last + 1) {
			printf("ERROR server: got %llu after %llu\n", (unsigned long long)n,
			       (unsigned long long)last);
			return 1;
		}
		last = n;
		if ((ret = full(sk, &n, sizeof(n), 1)))
			return fail("server: write", last, ret);
		if (n % 100 == 0)
			printf("n=%llu\n", (unsigned long long)n);
	}
}

static int count(int sk)
{
	for (uint64_t n = 1;; n++) {
		uint64_t echo;
		int ret = full(sk, &n, sizeof(n), 1);
		if (!ret)
			ret = full(sk, &echo, sizeof(echo), 0);
		if (ret)
			return fail("client", n, ret);
		if (echo != n) {
			printf("ERROR client: sent %llu, echo %llu\n", (unsigned long long)n,
			       (unsigned long long)echo);
			return 1;
		}
		if (n % 100 == 0)
			printf("n=%llu\n", (unsigned long long)n);
		usleep(2000);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	if (argc != 3 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: tcp-counter server|client PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	a.sin_port = htons((uint16_t)atoi(argv[2]));
	int sk = socket(AF_INET, SOCK_STREAM, 0);
	if (sk < 0)
		return 1;
	setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (!strcmp(argv[1], "server")) {
		if (bind(sk, (struct sockaddr *)&a, sizeof(a)) || listen(sk, 1)) {
			perror("tcp-counter: bind");
			return 1;
		}
		printf("listening\n");
		int c = accept(sk, NULL, NULL);
		if (c < 0)
			return 1;
		close(sk); /* one peer: nothing else listens */
		return serve(c);
	}
	for (int i = 0; connect(sk, (struct sockaddr *)&a, sizeof(a)); i++) {
		if (i == 100) {
			perror("tcp-counter: connect");
			return 1;
		}
		usleep(50000);
	}
	setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return count(sk);
}
