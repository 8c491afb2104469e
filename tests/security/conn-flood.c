/*
 * conn-flood: the lock-out attacker of lockout.sh (attack 8).
 *
 *   conn-flood hold SOCKET N      opens N connections to ckptd (SOCKET:
 *                                 a unix socket, or tcp:PORT on the
 *                                 loopback) and sends
 *                                 nothing.  Once the agent has answered
 *                                 those it refuses (no new answer for
 *                                 half a second), prints
 *                                   held H refused R closed C
 *                                   <the first refusal's message>
 *                                 and holds the rest until killed.
 *   conn-flood trickle SOCKET S   starts a request frame and sends one
 *                                 byte a second, for at most S seconds;
 *                                 prints "closed after T s" when the agent
 *                                 drops it, "open after S s" otherwise.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc.pb-c.h"
#include "wire.h"

static int connect_to(const char *target)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_in6 in = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int tcp = !strncmp(target, "tcp:", 4);
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", target);
	in.sin6_port = htons((uint16_t)atoi(target + 4));
	int fd = socket(tcp ? AF_INET6 : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || (tcp ? connect(fd, (struct sockaddr *)&in, sizeof(in))
			   : connect(fd, (struct sockaddr *)&un, sizeof(un)))) {
		perror("conn-flood: connect");
		exit(2);
	}
	return fd;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the agent said on fd: 1 a refusal (its message kept in msg when
 * msg is still empty), 0 a bare close. */
static int read_refusal(int fd, char *msg, size_t len)
{
	void *buf;
	size_t n;
	if (wire_recv(fd, &buf, &n, WIRE_MAX_FRAME))
		return 0;
	RpcReply *r = rpc_reply__unpack(NULL, n, buf);
	free(buf);
	if (!r)
		return 0;
	if (!*msg)
		snprintf(msg, len, "%s", r->error ? r->error : "(no message)");
	rpc_reply__free_unpacked(r, NULL);
	return 1;
}

static int hold(const char *path, int n)
{
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	char msg[512] = "";
	int refused = 0, closed = 0;
	if (!pf)
		return 2;
	for (int i = 0; i < n; i++)
		pf[i] = (struct pollfd){ connect_to(path), POLLIN, 0 };
	/* Refusals come at accept: once none came for 500 ms, the rest are held. */
	double quiet_since = now_s(), start = quiet_since;
	while (now_s() - quiet_since < 0.5 && now_s() - start < 20) {
		if (poll(pf, (nfds_t)n, 100) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			if (read_refusal(pf[i].fd, msg, sizeof(msg)))
				refused++;
			else
				closed++;
			close(pf[i].fd);
			pf[i].fd = -1;
			quiet_since = now_s();
		}
	}
	printf("held %d refused %d closed %d\n%s\n", n - refused - closed, refused, closed, msg);
	fflush(stdout);
	for (;;)
		pause();
}

static int trickle(const char *path, int seconds)
{
	int fd = connect_to(path);
	double start = now_s();
	/* A frame announcing 1000 bytes, which never all come. */
	unsigned char frame[4 + 1000] = { 0xe8, 0x03, 0, 0 };
	for (int i = 0; now_s() - start < seconds; i++) {
		if (send(fd, frame + i, 1, MSG_NOSIGNAL) != 1)
			break;
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, 1000) > 0)
			break; /* the agent's error reply or its close */
	}
	double t = now_s() - start;
	if (t < seconds)
		printf("closed after %.1f s\n", t);
	else
		printf("open after %d s\n", seconds);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return hold(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "trickle"))
		return trickle(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: conn-flood hold SOCKET N | trickle SOCKET SECONDS\n");
	return 2;
}
