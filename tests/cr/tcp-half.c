/*
 * cr_tcp_half_*: half-closed TCP connections across a checkpoint
 * (libckpt/sk-tcp.c).  MODE[-FAMILY], FAMILY 4 (default), 6, or 46
 * (an AF_INET6 socket on v4-mapped addresses, ::ffff:127.0.0.1).
 *
 * Both ends in the tree (one process, a loopback connection a -> b):
 *   close-wait  b wrote and shut down: b FIN_WAIT2, a CLOSE_WAIT, bytes
 *               queued unread both ways.  After: a reads its bytes then
 *               EOF and still writes, b reads; a shuts down, b sees EOF.
 *   fin-wait1   a filled b's receive buffer (b reads nothing: window 0)
 *               and shut down: a FIN_WAIT1, its FIN never sent, bytes
 *               unsent.  After: b reads every byte then EOF, b still
 *               writes to a, which reads it, then EOF.
 *   last-ack    b shut down, then a filled b's buffer and shut down:
 *               a LAST_ACK (FIN unsent), b FIN_WAIT2.  After: b reads
 *               every byte then EOF.
 *   closing     a filled b's buffer and shut down (FIN_WAIT1), then b
 *               shut down: a CLOSING, b FIN_WAIT2.  After: b reads
 *               every byte then EOF; a reads EOF.
 *   MODE-auto   (fin-wait1, last-ack) with the buffers left to the kernel,
 *               which grows them as it queues: megabytes unsent, more than
 *               a new socket's send buffer holds.
 * One end outside (cr-sk-helper tcp-half, in the test's dir):
 *   ext-close-wait  the helper wrote and shut down: ours CLOSE_WAIT.
 *               After: we read its bytes, EOF, write, shut down; the
 *               helper writes what it got to "half-got".
 *   ext-fin-wait2   we wrote and shut down: ours FIN_WAIT2.  After: the
 *               helper (told by the file "half-go") writes to us and
 *               closes; we read it, then EOF; "half-got" has our bytes.
 *   syn-sent    a connect() to the helper's full listener (cr-sk-helper
 *               tcp-full), unanswered: SYN_SENT.  After: still SYN_SENT;
 *               the helper (told by "half-go") accepts, the connect
 *               completes (the SYN sent again) and the helper echoes.
 *   syn-block   the same, the connect() a blocking one, in a child: it
 *               returns once the helper accepts, after the restore.
 * Each case checks the TCP state of every socket right after the restore.
 */
#include "crlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int family = 4;
static int small_buffers = 1;

static const char *const state_names[] = { "?",		 "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
					   "FIN_WAIT1",	 "FIN_WAIT2",	"TIME_WAIT", "CLOSE",
					   "CLOSE_WAIT", "LAST_ACK",	"LISTEN",    "CLOSING" };

static int state_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	CHECK_SYS(!getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), "TCP_INFO");
	return ti.tcpi_state;
}

/* Wait (5 s at most) for fd to reach state `want`. */
static void wait_state(int fd, int want, const char *what)
{
	int s = state_of(fd);
	for (int i = 0; s != want && i < 5000; i++) {
		usleep(1000);
		s = state_of(fd);
	}
	CHECK(s == want, "%s: state %s, want %s", what, state_names[s], state_names[want]);
}

static void expect_state(int fd, int want, const char *what)
{
	int s = state_of(fd);
	CHECK(s == want, "%s: state %s after the restore, dumped %s", what, state_names[s],
	      state_names[want]);
}

static void put(int fd, const char *s)
{
	CHECK_SYS(send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s), "send %s", s);
}

/* Read exactly want (10 s at most). */
static void expect(int fd, const char *want, const char *what)
{
	char buf[256] = { 0 };
	size_t len = strlen(want), got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: nothing to read", what);
		ssize_t n = recv(fd, buf + got, len - got, 0);
		CHECK_SYS(n > 0, "%s: recv (%zd)", what, n);
		got += (size_t)n;
	}
	CHECK(!memcmp(buf, want, len), "%s: got \"%s\", want \"%s\"", what, buf, want);
}

static void expect_eof(int fd, const char *what)
{
	char c;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: no EOF", what);
	ssize_t n = recv(fd, &c, 1, 0);
	CHECK(n == 0, "%s: %zd bytes where EOF was due", what, n);
}

/* ------------------------------ addresses ----------------------------- */

static socklen_t loopback(struct sockaddr_storage *ss, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == 4) {
		struct sockaddr_in *a = (void *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(port);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (void *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	if (family == 6)
		a->sin6_addr = in6addr_loopback;
	else
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &a->sin6_addr);
	return sizeof(*a);
}

static int new_socket(void)
{
	int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM, 0), small = 16384;
	CHECK_SYS(fd >= 0, "socket");
	/* small buffers: a full one is a few pages */
	CHECK_SYS(!small_buffers ||
			  (!setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) &&
			   !setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small))),
		  "buffers");
	return fd;
}

static int connect_port(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, port);
	int fd = new_socket();
	CHECK_SYS(!connect(fd, (struct sockaddr *)&ss, len), "connect to port %u", port);
	return fd;
}

static int a, b; /* a connected to b's listener, b accepted */

static void make_pair(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, 0);
	int l = new_socket();
	CHECK_SYS(!bind(l, (struct sockaddr *)&ss, len) && !listen(l, 1), "listen");
	CHECK_SYS(!getsockname(l, (struct sockaddr *)&ss, &len), "getsockname");
	uint16_t port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	a = connect_port(port);
	b = accept(l, NULL, NULL);
	CHECK_SYS(b >= 0, "accept");
	close(l);
}

/* --------------------------- bytes in bulk ---------------------------- */

static size_t filled;

/* Write to fd until its peer's receive buffer and its own send buffer
 * are full (the peer reads nothing). */
static void fill(int fd)
{
	char buf[1024];
	int fl = fcntl(fd, F_GETFL);
	CHECK_SYS(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0, "O_NONBLOCK");
	for (int idle = 0; idle < 200;) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)('a' + (filled + i) % 26);
		ssize_t n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (n > 0) {
			filled += (size_t)n;
			idle = 0;
			continue;
		}
		CHECK_SYS(errno == EAGAIN, "fill");
		idle++;
		usleep(1000);
	}
	CHECK_SYS(fcntl(fd, F_SETFL, fl) == 0, "flags back");
	printf("%zu bytes queued\n", filled);
}

/* Read what fill() wrote, then EOF. */
static void drain(int fd)
{
	char buf[4096];
	size_t got = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		CHECK_SYS(n >= 0, "drain after %zu bytes", got);
		if (!n)
			break;
		for (ssize_t i = 0; i < n; i++)
			CHECK(buf[i] == (char)('a' + (got + (size_t)i) % 26), "byte %zu differs",
			      got + (size_t)i);
		got += (size_t)n;
	}
	CHECK(got == filled, "%zu bytes before EOF, %zu sent", got, filled);
}

/* ------------------------------ in the tree --------------------------- */

static void setup_close_wait(void)
{
	make_pair();
	put(a, "to-b");
	put(b, "to-a");
	CHECK_SYS(!shutdown(b, SHUT_WR), "shutdown");
	wait_state(a, TCP_CLOSE_WAIT, "a");
	wait_state(b, TCP_FIN_WAIT2, "b");
}

static void check_close_wait(void)
{
	expect_state(a, TCP_CLOSE_WAIT, "a");
	expect_state(b, TCP_FIN_WAIT2, "b");
	expect(a, "to-a", "a: bytes queued at the dump");
	expect_eof(a, "a");
	expect(b, "to-b", "b: bytes queued at the dump");
	put(a, "after");
	expect(b, "after", "b: a's write after the restore");
	CHECK_SYS(!shutdown(a, SHUT_WR), "shutdown a");
	expect_eof(b, "b");
}

static void setup_fin_wait1(void)
{
	make_pair();
	fill(a);
	CHECK_SYS(!shutdown(a, SHUT_WR), "shutdown");
	wait_state(a, TCP_FIN_WAIT1, "a");
}

static void check_fin_wait1(void)
{
	expect_state(a, TCP_FIN_WAIT1, "a");
	expect_state(b, TCP_ESTABLISHED, "b");
	drain(b);
	wait_state(a, TCP_FIN_WAIT2, "a, b's reading done");
	put(b, "late");
	expect(a, "late", "a: b's write after the restore");
	CHECK_SYS(!shutdown(b, SHUT_WR), "shutdown b");
	expect_eof(a, "a");
}

static void setup_last_ack(void)
{
	make_pair();
	CHECK_SYS(!shutdown(b, SHUT_WR), "shutdown b");
	wait_state(a, TCP_CLOSE_WAIT, "a");
	fill(a);
	CHECK_SYS(!shutdown(a, SHUT_WR), "shutdown a");
	wait_state(a, TCP_LAST_ACK, "a");
}

static void check_last_ack(void)
{
	expect_state(a, TCP_LAST_ACK, "a");
	expect_state(b, TCP_FIN_WAIT2, "b");
	expect_eof(a, "a");
	drain(b);
	wait_state(a, TCP_CLOSE, "a, its FIN acknowledged");
}

static void setup_closing(void)
{
	make_pair();
	fill(a);
	CHECK_SYS(!shutdown(a, SHUT_WR), "shutdown a");
	wait_state(a, TCP_FIN_WAIT1, "a");
	CHECK_SYS(!shutdown(b, SHUT_WR), "shutdown b");
	wait_state(a, TCP_CLOSING, "a");
	wait_state(b, TCP_FIN_WAIT2, "b");
}

static void check_closing(void)
{
	expect_state(a, TCP_CLOSING, "a");
	expect_state(b, TCP_FIN_WAIT2, "b");
	expect_eof(a, "a");
	drain(b);
	wait_state(a, TCP_CLOSE, "a, its FIN acknowledged (TIME_WAIT)");
}

/* ------------------------------- outside ------------------------------ */

static int ext;

static int helper_port(void)
{
	FILE *f = fopen("helper-port", "r");
	int port = 0;
	CHECK_SYS(f && fscanf(f, "%d", &port) == 1, "helper-port");
	fclose(f);
	return port;
}

/* The helper's record of what it read, once it saw EOF. */
static void expect_helper_got(const char *want)
{
	char buf[256] = { 0 };
	for (int i = 0; i < 10000 && access("half-got", F_OK); i++)
		usleep(1000);
	FILE *f = fopen("half-got", "r");
	CHECK_SYS(f && fgets(buf, sizeof(buf), f), "half-got");
	fclose(f);
	CHECK(!strcmp(buf, want), "the helper read \"%s\", want \"%s\"", buf, want);
}

static void setup_ext_close_wait(void)
{
	ext = connect_port((uint16_t)helper_port());
	put(ext, "C");
	wait_state(ext, TCP_CLOSE_WAIT, "ours");
	put(ext, "before|");
}

static void check_ext_close_wait(void)
{
	expect_state(ext, TCP_CLOSE_WAIT, "ours");
	expect(ext, "from-helper", "bytes the helper sent before its FIN");
	expect_eof(ext, "ours");
	put(ext, "after");
	CHECK_SYS(!shutdown(ext, SHUT_WR), "shutdown");
	expect_helper_got("Cbefore|after");
}

static void setup_ext_fin_wait2(void)
{
	ext = connect_port((uint16_t)helper_port());
	put(ext, "Fbefore");
	CHECK_SYS(!shutdown(ext, SHUT_WR), "shutdown");
	wait_state(ext, TCP_FIN_WAIT2, "ours");
}

static void check_ext_fin_wait2(void)
{
	expect_state(ext, TCP_FIN_WAIT2, "ours");
	expect_helper_got("Fbefore");
	FILE *f = fopen("half-go", "w");
	CHECK_SYS(f && !fclose(f), "half-go");
	expect(ext, "from-helper", "the helper's write after the restore");
	expect_eof(ext, "ours");
}

static void setup_syn_sent(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, (uint16_t)helper_port());
	ext = new_socket();
	CHECK_SYS(fcntl(ext, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	CHECK_SYS(connect(ext, (struct sockaddr *)&ss, len) && errno == EINPROGRESS, "connect");
	wait_state(ext, TCP_SYN_SENT, "ours");
}

static void check_syn_sent(void)
{
	expect_state(ext, TCP_SYN_SENT, "ours");
	FILE *f = fopen("half-go", "w");
	CHECK_SYS(f && !fclose(f), "half-go");
	wait_state(ext, TCP_ESTABLISHED, "ours, the helper accepting");
	CHECK_SYS(fcntl(ext, F_SETFL, 0) == 0, "blocking");
	put(ext, "hello");
	expect(ext, "hello", "the helper's echo");
}

static pid_t child;
static int ctl[2];

/* SYN_SENT to the helper's port on 127.0.0.1 (/proc/net/tcp: state 02). */
static int syn_sent_to(int port)
{
	char line[512], want[32];
	int found = 0;
	FILE *f = fopen("/proc/net/tcp", "r");
	snprintf(want, sizeof(want), "0100007F:%04X", port);
	while (f && !found && fgets(line, sizeof(line), f)) {
		char remote[64], st[8];
		found = sscanf(line, " %*s %*s %63s %7s", remote, st) == 2 &&
			!strcmp(remote, want) && !strcmp(st, "02");
	}
	if (f)
		fclose(f);
	return found;
}

static void setup_syn_block(void)
{
	int port = helper_port();
	CHECK_SYS(!pipe(ctl), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		int fd = connect_port((uint16_t)port); /* blocks */
		char buf[8] = { 0 };
		_exit(write(ctl[1], "ok", 2) != 2 || send(fd, "hi", 2, 0) != 2 ||
		      recv(fd, buf, 2, MSG_WAITALL) != 2 || strcmp(buf, "hi"));
	}
	for (int i = 0; i < 5000 && !syn_sent_to(port); i++)
		usleep(1000);
	CHECK(syn_sent_to(port), "no SYN_SENT socket to port %d", port);
}

static void check_syn_block(void)
{
	char buf[2];
	int status;
	FILE *f = fopen("half-go", "w");
	CHECK_SYS(f && !fclose(f), "half-go");
	struct pollfd p = { .fd = ctl[0], .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 10000) == 1 && read(ctl[0], buf, 2) == 2,
		  "the connect never returned");
	CHECK_SYS(waitpid(child, &status, 0) == child, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (%d)", status);
}

static const struct mode {
	const char *name;
	void (*setup)(void);
	void (*check)(void);
} modes[] = {
	{ "close-wait", setup_close_wait, check_close_wait },
	{ "fin-wait1", setup_fin_wait1, check_fin_wait1 },
	{ "last-ack", setup_last_ack, check_last_ack },
	{ "closing", setup_closing, check_closing },
	{ "ext-close-wait", setup_ext_close_wait, check_ext_close_wait },
	{ "ext-fin-wait2", setup_ext_fin_wait2, check_ext_fin_wait2 },
	{ "syn-sent", setup_syn_sent, check_syn_sent },
	{ "syn-block", setup_syn_block, check_syn_block },
};

int main(int argc, char **argv)
{
	char name[64];
	snprintf(name, sizeof(name), "%s", argc > 1 ? argv[1] : "");
	char *dash = strrchr(name, '-');
	if (dash && (!strcmp(dash, "-6") || !strcmp(dash, "-46") || !strcmp(dash, "-4"))) {
		family = atoi(dash + 1);
		*dash = '\0';
	}
	if ((dash = strrchr(name, '-')) && !strcmp(dash, "-auto")) {
		small_buffers = 0;
		*dash = '\0';
	}
	test_init();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(name, modes[i].name))
			continue;
		modes[i].setup();
		test_ready();
		test_wait_check();
		modes[i].check();
		pass();
	}
	fail("usage: cr-tcp-half close-wait|fin-wait1|last-ack|closing|ext-close-wait|"
	     "ext-fin-wait2|syn-sent[-auto][-4|-6|-46]");
}
