/*
 * cr_tcp_listen, cr_tcp_ext, cr_tcp_loopback, cr_udp: TCP and UDP sockets
 * across a checkpoint.
 *
 *   listen    listening sockets on 127.0.0.1 and ::1 (v6only, SO_REUSEADDR),
 *             on ports the kernel chose, a bound TCP socket and a fresh
 *             one; after the restore they have the same ports, the
 *             listeners accept a client forked then, and the fresh socket
 *             connects to one and talks both ways.
 *   ext       a TCP connection to the echo server outside the tree (cr-run
 *             --helper cr-sk-helper tcp-echo, port in the file helper-port),
 *             dumped with --tcp-established, with an echo waiting unread in
 *             the receive queue; afterwards the echo is there and the
 *             connection goes on.  Without --tcp-established the dump is
 *             refused (bad_dump_tcp_established).
 *   loopback  both ends of a TCP connection in the tree (connected and
 *             accepted here), bytes queued both ways, the listener kept
 *             (loopback6: the same over ::1).
 *   udp       a bound UDP socket and a second one bound and connected to
 *             it; after the restore they talk, with the same addresses.
 *   ext-loop  a TCP connection to the echo helper, used without a pause
 *             (progress: bytes sent, aux: echoes checked) through dumps
 *             killed mid-way (killdump_tcp): it must never stay mute (in
 *             repair mode) after one.
 *   ext-push  a TCP connection to the pushing helper (cr-sk-helper
 *             tcp-push), which writes all along, also while the tree is
 *             gone between the dump and the restore: the network lock
 *             (libckpt/net-lock.c) keeps its segments from meeting a
 *             closed port (a RST); after the restore, or a dump that left
 *             the tree running or failed, the counters go on without a
 *             gap.
 *   tcp-close the loopback pair restored with --tcp-close: both ends are
 *             closed as a peer's reset closes them (CLOSE, the received
 *             bytes then end of file, POLLHUP, EPIPE); the listener
 *             accepts a new connection.
 *   udp-ext   a UDP socket connected to the helper outside the tree
 *             (cr-sk-helper udp-echo); it talks to it after the restore.
 *   pair      a TCP connection between two processes of the tree (the
 *             child echoes what it reads), an echo queued unread at the
 *             dump; dumped without --tcp-established (both ends are the
 *             tree's), data flows both ways after the restore.
 *   timewait  a listener on 0.0.0.0 without SO_REUSEADDR whose port has a
 *             TIME_WAIT socket of ours (a connection it accepted and we
 *             closed first), which blocks a bind even with SO_REUSEADDR;
 *             after the restore the listener accepts a new client.
 *   inflight  a listener with a connection it has not accepted yet (its
 *             client, ours, closed since), dumped with --skip-in-flight:
 *             after the restore its queue is empty (accept says EAGAIN),
 *             and it accepts a new client.
 *   inflight-client  as inflight, the client ours and still open (zdtm
 *             socket-tcp-skip-in-flight): it comes back alone, and its
 *             connection ends (end of stream or reset) once it sends.
 *   inflight-kept  the same without the option: the dump is refused
 *             (bad_dump_tcp_inflight), and the queue is as it was.
 *   taken     a listener on 0.0.0.0, its port written to "hold-port":
 *             once the test is dumped and gone, another process listens
 *             there (cr-sk-helper tcp-hold); the restore takes a fresh
 *             network namespace, where the listener accepts a client of
 *             the tree.
 *   node      as loopback, on an address of this node that is not
 *             loopback (the first IPv4 one of an interface that is up),
 *             as MPI's TCP transports use (127.0.0.1 if there is none).
 *   reuseport two TCP listeners sharing a port with SO_REUSEPORT, then one
 *             of them clears it (zdtm socket-tcp-reuseport), twice: the
 *             first made clears it, then the second; and two UDP
 *             sockets likewise.  After the restore each has its port and
 *             its SO_REUSEPORT as dumped, and the port takes a client
 *             (a datagram).
 */
#include "crlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void put(int fd, const char *s)
{
	CHECK_SYS(send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s), "send %s", s);
}

/* Read exactly strlen(want) bytes (waiting up to 10 s) and compare. */
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

static void wait_readable(int fd, size_t bytes)
{
	for (int i = 0; i < 10000; i++) {
		char buf[256];
		if (recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT) >= (ssize_t)bytes)
			return;
		usleep(1000);
	}
	fail("no %zu bytes arrived", bytes);
}

static struct in_addr listen_addr4 = { .s_addr = 0x0100007f }; /* 127.0.0.1 */

static int tcp_listener(int family, int reuse)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr = listen_addr4 };
	int fd = socket(family, SOCK_STREAM, 0), one = 1;
	CHECK_SYS(fd >= 0, "socket");
	if (reuse)
		CHECK_SYS(!setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "reuse");
	if (family == AF_INET6) {
		CHECK_SYS(!setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), "v6only");
		CHECK_SYS(!bind(fd, (struct sockaddr *)&a6, sizeof(a6)), "bind ::1");
	} else {
		CHECK_SYS(!bind(fd, (struct sockaddr *)&a4, sizeof(a4)), "bind %s",
			  inet_ntoa(listen_addr4));
	}
	CHECK_SYS(!listen(fd, 7), "listen");
	return fd;
}

static struct sockaddr_storage name_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	CHECK_SYS(!getsockname(fd, (struct sockaddr *)&ss, &len), "getsockname");
	return ss;
}

static int connect_to(const struct sockaddr_storage *ss, int type)
{
	int fd = socket(ss->ss_family, type, 0);
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	CHECK_SYS(fd >= 0 && !connect(fd, (const struct sockaddr *)ss, len), "connect");
	return fd;
}

static int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	CHECK_SYS(!getsockopt(fd, level, opt, &v, &len), "getsockopt");
	return v;
}

/* ------------------------------- listen ------------------------------- */

static int l4, l6, fresh, bound4;
static struct sockaddr_storage nb4;
static struct sockaddr_storage n4, n6;

static void setup_listen(void)
{
	fresh = socket(AF_INET6, SOCK_STREAM, 0); /* never bound nor connected */
	CHECK_SYS(fresh >= 0, "socket");
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bound4 = socket(AF_INET, SOCK_STREAM, 0); /* bound, neither listening nor connected */
	CHECK_SYS(bound4 >= 0 && !bind(bound4, (struct sockaddr *)&a4, sizeof(a4)), "bind");
	nb4 = name_of(bound4);
	l4 = tcp_listener(AF_INET, 1);
	l6 = tcp_listener(AF_INET6, 0);
	n4 = name_of(l4);
	n6 = name_of(l6);
}

static void accept_one(int l, const struct sockaddr_storage *ss)
{
	pid_t pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		int fd = connect_to(ss, SOCK_STREAM);
		char buf[4] = { 0 };
		_exit(write(fd, "abc", 3) == 3 && read(fd, buf, 3) == 3 && !strcmp(buf, "cba") ? 0
											       : 1);
	}
	int fd = accept(l, NULL, NULL), status;
	CHECK_SYS(fd >= 0, "accept after the restore");
	expect(fd, "abc", "new client");
	put(fd, "cba");
	CHECK_SYS(waitpid(pid, &status, 0) == pid && status == 0, "client failed (%d)", status);
	close(fd);
}

static void check_listen(void)
{
	struct sockaddr_storage a = name_of(l4), b = name_of(l6);
	CHECK(!memcmp(&a, &n4, sizeof(a)) && !memcmp(&b, &n6, sizeof(b)), "listener addresses");
	CHECK(getint(l4, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost");
	CHECK(getint(l6, SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR gained");
	CHECK(getint(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY lost");
	CHECK(getint(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1, "not listening");
	CHECK(getint(fresh, SOL_SOCKET, SO_TYPE) == SOCK_STREAM &&
		      getint(fresh, SOL_SOCKET, SO_DOMAIN) == AF_INET6,
	      "fresh socket changed");
	struct sockaddr_storage b4 = name_of(bound4);
	CHECK(!memcmp(&b4, &nb4, sizeof(b4)), "bound socket's address");
	accept_one(l4, &n4);
	accept_one(l6, &n6);
	/* the fresh socket connects and talks both ways (it once came back
	 * shut down: zdtm socket-tcp-listen) */
	CHECK_SYS(!connect(fresh, (struct sockaddr *)&n6, sizeof(struct sockaddr_in6)),
		  "connect the fresh socket");
	int fd = accept(l6, NULL, NULL);
	CHECK_SYS(fd >= 0, "accept the fresh socket");
	put(fresh, "up");
	expect(fd, "up", "fresh socket, sent");
	put(fd, "down");
	expect(fresh, "down", "fresh socket, received");
	close(fd);
}

/* -------------------------------- ext --------------------------------- */

static int ext;

/* A socket connected to the helper's port on 127.0.0.1. */
static int connect_helper(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage ss;
	FILE *f = fopen("helper-port", "r");
	int port = 0;
	CHECK_SYS(f && fscanf(f, "%d", &port) == 1, "helper-port");
	fclose(f);
	sa.sin_port = htons((uint16_t)port);
	memcpy(&ss, &sa, sizeof(sa));
	return connect_to(&ss, type);
}

static void setup_ext(void)
{
	int one = 1, idle = 77;
	ext = connect_helper(SOCK_STREAM);
	CHECK_SYS(!setsockopt(ext, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), "SO_KEEPALIVE");
	CHECK_SYS(!setsockopt(ext, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)), "TCP_KEEPIDLE");
	CHECK_SYS(!setsockopt(ext, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), "TCP_NODELAY");
	put(ext, "hello");
	expect(ext, "hello", "first echo");
	put(ext, "in flight");
	wait_readable(ext, 9); /* the echo waits in our receive queue */
}

static void check_ext(void)
{
	char buf[64];
	expect(ext, "in flight", "echo queued at the dump");
	CHECK(getint(ext, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE lost");
	CHECK(getint(ext, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "TCP_KEEPIDLE lost");
	CHECK(getint(ext, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY lost");
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "ping %d", i);
		put(ext, buf);
		expect(ext, buf, "echo after the restore");
	}
}

static void setup_ext_loop(void)
{
	ext = connect_helper(SOCK_STREAM);
}

static int transient;

/* One counter out or in.  A connection a failed dump left in repair mode
 * answers EPERM (recv) or EINVAL (send) until the dump's watchdog takes it
 * out, within milliseconds (bad_dump_tcp_fault): counted, not a failure. */
static void transfer(int out, uint64_t *v)
{
	for (int tries = 0;; tries++) {
		ssize_t n = out ? send(ext, v, 8, MSG_NOSIGNAL) : recv(ext, v, 8, MSG_WAITALL);
		if (n == 8)
			return;
		CHECK_SYS(n < 0 && (errno == EPERM || errno == EINVAL) && tries < 2000,
			  "%s %llu (%zd)", out ? "send" : "echo of", (unsigned long long)*v, n);
		transient++;
		usleep(1000);
	}
}

/* Counters go out and come back, a few always in flight. */
static void check_ext_loop(void)
{
	uint64_t sent = 0, got = 0, n;
	while (!test_check_requested() || got < sent || got < 100) {
		if (sent - got < 4 && (!test_check_requested() || sent < 100)) {
			n = sent++;
			transfer(1, &n);
			cr_shared.progress++;
			continue;
		}
		transfer(0, &n);
		CHECK(n == got, "echo %llu, want %llu", (unsigned long long)n,
		      (unsigned long long)got);
		got++;
		cr_shared.aux++;
	}
	printf("%llu echoes, %d transient errors\n", (unsigned long long)got, transient);
}

/* The pushing helper's counters, one after the other. */
static uint64_t pushed;

static void read_pushed(uint64_t upto)
{
	for (int tries = 0; pushed < upto; pushed++) {
		uint64_t n;
		ssize_t got = recv(ext, &n, sizeof(n), MSG_WAITALL);
		/* a failed dump's watchdog takes it out of repair mode soon
		 * (bad_dump_tcp_push_fault; see transfer) */
		if (got < 0 && errno == EPERM && tries++ < 2000) {
			usleep(1000);
			pushed--;
			continue;
		}
		CHECK_SYS(got == sizeof(n), "counter %llu from the pushing peer (%zd)",
			  (unsigned long long)pushed, got);
		CHECK(n == pushed, "counter %llu, want %llu", (unsigned long long)n,
		      (unsigned long long)pushed);
	}
}

static void setup_ext_push(void)
{
	ext = connect_helper(SOCK_STREAM);
	read_pushed(10);
}

/* The peer went on writing while the tree was gone: it kept the
 * connection (no RST met it) and the stream goes on without a gap. */
static void check_ext_push(void)
{
	struct timeval tv = { .tv_sec = 10 };
	CHECK_SYS(!setsockopt(ext, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), "SO_RCVTIMEO");
	read_pushed(pushed + 500);
}

/* A UDP socket connected to the helper (udp-echo answers "echo:" + it). */
static void setup_udp_ext(void)
{
	ext = connect_helper(SOCK_DGRAM);
	put(ext, "hello");
	expect(ext, "echo:hello", "first udp echo");
}

static void check_udp_ext(void)
{
	char buf[64], want[80];
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "ping %d", i);
		snprintf(want, sizeof(want), "echo:%s", buf);
		put(ext, buf);
		expect(ext, want, "udp echo after the restore");
	}
}

/* ------------------------------ loopback ------------------------------ */

static int lst, cli, srv;
static struct sockaddr_storage nl;

static int loop_family = AF_INET;

static void setup_loopback(void)
{
	lst = tcp_listener(loop_family, 0);
	nl = name_of(lst);
	cli = connect_to(&nl, SOCK_STREAM);
	srv = accept(lst, NULL, NULL);
	CHECK_SYS(srv >= 0, "accept");
	put(cli, "request");
	put(srv, "response");
	wait_readable(srv, 7);
	wait_readable(cli, 8);
}

/* restore --tcp-close: both ends come back closed, as reset by the peer;
 * what each had received is still read first; the listener is as it was. */
static void setup_tcp_close(void)
{
	setup_loopback();
	signal(SIGPIPE, SIG_IGN);
}

static void is_closed(int sk, const char *queued, const char *who)
{
	char buf[64] = "";
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	CHECK_SYS(!getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len), "%s: TCP_INFO", who);
	CHECK(ti.tcpi_state == TCP_CLOSE, "%s: state %d, not closed", who, ti.tcpi_state);
	size_t n = strlen(queued);
	CHECK(recv(sk, buf, n, MSG_WAITALL) == (ssize_t)n && !memcmp(buf, queued, n),
	      "%s: the bytes it had received are lost", who);
	CHECK(recv(sk, buf, sizeof(buf), MSG_DONTWAIT) == 0, "%s: no end of file", who);
	struct pollfd p = { sk, POLLHUP, 0 };
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLHUP, "%s: poll %#x", who, p.revents);
	CHECK(send(sk, "x", 1, MSG_DONTWAIT) < 0 && errno == EPIPE, "%s: a write did not fail with EPIPE",
	      who);
}

static void check_tcp_close(void)
{
	is_closed(srv, "request", "the accepted end");
	is_closed(cli, "response", "the client");
	int c = connect_to(&nl, SOCK_STREAM), a = accept(lst, NULL, NULL);
	CHECK_SYS(a >= 0, "accept after the restore");
	put(c, "again");
	expect(a, "again", "a new connection");
	close(a);
	close(c);
}

static void check_loopback(void)
{
	char buf[64];
	expect(srv, "request", "server side");
	expect(cli, "response", "client side");
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "ping %d", i);
		put(cli, buf);
		expect(srv, buf, "client to server");
		put(srv, buf);
		expect(cli, buf, "server to client");
	}
	accept_one(lst, &nl);
	/* The client closes first: the TIME_WAIT socket is of its 4-tuple,
	 * over which cr_tcp_loopback_after_exit restores it. */
	char b;
	close(cli);
	CHECK_SYS(read(srv, &b, 1) == 0, "EOF after the client's close");
	close(srv);
}

/* -------------------------------- udp --------------------------------- */

static int ua, ub;
static struct sockaddr_storage na, nb;

static int udp_bound(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)), "bind udp");
	return fd;
}

static void setup_udp(void)
{
	int one = 1;
	ua = udp_bound();
	ub = udp_bound();
	CHECK_SYS(!setsockopt(ua, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)), "SO_BROADCAST");
	na = name_of(ua);
	nb = name_of(ub);
	CHECK_SYS(!connect(ub, (struct sockaddr *)&na, sizeof(struct sockaddr_in)), "connect udp");
	put(ub, "before");
	expect(ua, "before", "udp before the dump");
}

static void check_udp(void)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	char buf[16] = { 0 };
	struct sockaddr_storage a = name_of(ua), b = name_of(ub);
	CHECK(!memcmp(&a, &na, sizeof(a)) && !memcmp(&b, &nb, sizeof(b)), "udp addresses");
	CHECK(getint(ua, SOL_SOCKET, SO_BROADCAST) == 1, "SO_BROADCAST lost");
	put(ub, "after");
	struct pollfd p = { .fd = ua, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 10000) == 1, "udp: nothing received");
	memset(&from, 0, sizeof(from));
	CHECK_SYS(recvfrom(ua, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len) == 5,
		  "recvfrom");
	CHECK(!strcmp(buf, "after") && !memcmp(&from, &nb, sizeof(struct sockaddr_in)),
	      "udp datagram \"%s\" from the wrong sender", buf);
	CHECK_SYS(sendto(ua, "back", 4, 0, (struct sockaddr *)&nb, sizeof(struct sockaddr_in)) == 4,
		  "sendto");
	expect(ub, "back", "udp answer");
}

/* -------------------------------- pair -------------------------------- */

static pid_t echo_child;

static void setup_pair(void)
{
	setup_loopback(); /* lst, cli and srv; request and response queued */
	expect(srv, "request", "server side");
	expect(cli, "response", "client side");
	echo_child = fork();
	CHECK_SYS(echo_child >= 0, "fork");
	if (echo_child == 0) {
		char buf[4096];
		ssize_t n;
		close(cli);
		close(lst);
		while ((n = read(srv, buf, sizeof(buf))) > 0)
			if (write(srv, buf, (size_t)n) != n)
				_exit(1);
		_exit(n == 0 ? 0 : 1);
	}
	close(srv);
	put(cli, "queued");
	wait_readable(cli, 6); /* the echo waits in our receive queue */
}

static void check_pair(void)
{
	char buf[64];
	int status;
	expect(cli, "queued", "echo queued at the dump");
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "ping %d", i);
		put(cli, buf);
		expect(cli, buf, "echo after the restore");
	}
	close(cli);
	CHECK_SYS(waitpid(echo_child, &status, 0) == echo_child && status == 0,
		  "echo child failed (%d)", status);
}

/* ------------------------------ timewait ------------------------------ */

static int tw_l;
static struct sockaddr_storage tw_n; /* 127.0.0.1 and the listener's port */

/* A TIME_WAIT socket of 127.0.0.1:port is in /proc/net/tcp (state 06). */
static int time_wait_on(unsigned port)
{
	char line[512], want[32];
	int found = 0;
	FILE *f = fopen("/proc/net/tcp", "r");
	snprintf(want, sizeof(want), "0100007F:%04X", port);
	while (f && !found && fgets(line, sizeof(line), f)) {
		char local[64], st[8];
		found = sscanf(line, " %*s %63s %*s %7s", local, st) == 2 && !strcmp(local, want) &&
			!strcmp(st, "06");
	}
	if (f)
		fclose(f);
	return found;
}

static int listen_any(void)
{
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&any, sizeof(any)) && !listen(fd, 4),
		  "listen on 0.0.0.0");
	return fd;
}

/* 127.0.0.1 and the port of listener fd */
static struct sockaddr_storage loopback_of(int fd)
{
	struct sockaddr_storage ss = name_of(fd);
	((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ss;
}

static void setup_timewait(void)
{
	char b;
	tw_l = listen_any();
	tw_n = loopback_of(tw_l);
	int c = connect_to(&tw_n, SOCK_STREAM), s = accept(tw_l, NULL, NULL);
	CHECK_SYS(s >= 0, "accept");
	close(s); /* we close first: the TIME_WAIT socket is this side's */
	CHECK_SYS(read(c, &b, 1) == 0, "EOF");
	close(c);
	unsigned port = ntohs(((struct sockaddr_in *)&tw_n)->sin_port);
	for (int i = 0; i < 5000 && !time_wait_on(port); i++)
		usleep(1000);
	CHECK(time_wait_on(port), "no TIME_WAIT socket on port %u", port);
	printf("port %u has a TIME_WAIT socket\n", port);
}

static void check_timewait(void)
{
	struct sockaddr_storage now = loopback_of(tw_l);
	CHECK(!memcmp(&now, &tw_n, sizeof(now)), "listener's port changed");
	CHECK(getint(tw_l, SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR gained");
	CHECK(getint(tw_l, IPPROTO_TCP, TCP_REPAIR) == 0, "listener left in repair mode");
	accept_one(tw_l, &tw_n);
}

/* ------------------------------- taken -------------------------------- */

static void setup_taken(void)
{
	tw_l = listen_any();
	tw_n = loopback_of(tw_l);
	FILE *f = fopen("hold-port", "w");
	CHECK_SYS(f && fprintf(f, "%u\n", ntohs(((struct sockaddr_in *)&tw_n)->sin_port)) > 0 &&
			  !fclose(f),
		  "hold-port");
}

/* ------------------------------- node --------------------------------- */

static void setup_node(void)
{
	struct ifaddrs *ifs, *i;
	CHECK_SYS(!getifaddrs(&ifs), "getifaddrs");
	for (i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK))
			break;
	if (i)
		listen_addr4 = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
	printf("node address %s (%s)\n", inet_ntoa(listen_addr4), i ? i->ifa_name : "none");
	freeifaddrs(ifs);
	setup_loopback();
}
/* ------------------------------ inflight ----------------------------- */

static int if_l, if_c;
static struct sockaddr_storage if_n;

static void setup_inflight(void)
{
	if_l = tcp_listener(AF_INET, 1);
	if_n = name_of(if_l);
	if_c = connect_to(&if_n, SOCK_STREAM); /* queued, never accepted */
	close(if_c);
	int fl = fcntl(if_l, F_GETFL);
	CHECK_SYS(fl >= 0 && !fcntl(if_l, F_SETFL, fl | O_NONBLOCK), "O_NONBLOCK");
}

static void check_inflight(void);

static void setup_inflight_client(void)
{
	if_l = tcp_listener(AF_INET, 1);
	if_n = name_of(if_l);
	if_c = connect_to(&if_n, SOCK_STREAM);
	int fl = fcntl(if_l, F_GETFL);
	CHECK_SYS(fl >= 0 && !fcntl(if_l, F_SETFL, fl | O_NONBLOCK), "O_NONBLOCK");
}

/* Its peer dropped, the client's connection ends once it sends. */
static void check_inflight_client(void)
{
	struct pollfd p = { if_c, POLLIN, 0 };
	char c;
	signal(SIGPIPE, SIG_IGN);
	if (write(if_c, "x", 1) == 1)
		CHECK_SYS(poll(&p, 1, 5000) == 1, "no answer to the dropped connection's client");
	ssize_t n = read(if_c, &c, 1);
	CHECK(n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)),
	      "the dropped connection's client did not end: read %zd (%s)", n,
	      n < 0 ? strerror(errno) : "-");
	close(if_c);
	check_inflight();
}

static void check_inflight_kept(void)
{
	int fd = accept(if_l, NULL, NULL);
	CHECK_SYS(fd >= 0, "the refused dump lost the connection not accepted yet");
	close(fd);
}

static void check_inflight(void)
{
	CHECK(accept(if_l, NULL, NULL) < 0 && errno == EAGAIN,
	      "the listener's queue still holds a connection dropped by --skip-in-flight");
	int fl = fcntl(if_l, F_GETFL);
	CHECK_SYS(fl >= 0 && !fcntl(if_l, F_SETFL, fl & ~O_NONBLOCK), "blocking again");
	accept_one(if_l, &if_n);
}

/* ------------------------------ reuseport ----------------------------- */

/* TCP: rp[0] cleared, rp[1] not; rp[2] not, rp[3] cleared.  UDP: rp[4]
 * cleared, rp[5] not. */
static int rp[6];
static struct sockaddr_storage rp_name[3];

static int reuseport_socket(int type, const struct sockaddr_storage *at)
{
	int fd = socket(AF_INET, type, 0), one = 1;
	CHECK_SYS(fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)),
		  "SO_REUSEPORT");
	CHECK_SYS(!bind(fd, (const struct sockaddr *)at, sizeof(struct sockaddr_in)), "bind");
	if (type == SOCK_STREAM)
		CHECK_SYS(!listen(fd, 7), "listen");
	return fd;
}

/* Two sockets on one port, both with SO_REUSEPORT; fds[off] clears it. */
static void reuseport_pair(int type, int off, int *fds, struct sockaddr_storage *name)
{
	struct sockaddr_storage any = { 0 };
	struct sockaddr_in *a = (struct sockaddr_in *)&any;
	int no = 0;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds[0] = reuseport_socket(type, &any);
	*name = name_of(fds[0]);
	fds[1] = reuseport_socket(type, name);
	CHECK_SYS(!setsockopt(fds[off], SOL_SOCKET, SO_REUSEPORT, &no, sizeof(no)),
		  "clear SO_REUSEPORT");
}

static void setup_reuseport(void)
{
	reuseport_pair(SOCK_STREAM, 0, &rp[0], &rp_name[0]);
	reuseport_pair(SOCK_STREAM, 1, &rp[2], &rp_name[1]);
	reuseport_pair(SOCK_DGRAM, 0, &rp[4], &rp_name[2]);
}

/* Which of fds[0], fds[1] becomes readable first (10 s at most). */
static int readable(const int *fds)
{
	struct pollfd p[2] = { { .fd = fds[0], .events = POLLIN },
			       { .fd = fds[1], .events = POLLIN } };
	CHECK_SYS(poll(p, 2, 10000) > 0, "nothing arrived on port %d's sockets",
		  ntohs(((struct sockaddr_in *)&rp_name[0])->sin_port));
	return (p[0].revents & POLLIN) ? fds[0] : fds[1];
}

static void check_reuseport_pair(const int *fds, int off, const struct sockaddr_storage *name,
				 int type)
{
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage a = name_of(fds[i]);
		CHECK(!memcmp(&a, name, sizeof(a)), "fd %d: its address changed", fds[i]);
		CHECK(getint(fds[i], SOL_SOCKET, SO_REUSEPORT) == (i != off),
		      "fd %d: SO_REUSEPORT %d, dumped %d", fds[i],
		      getint(fds[i], SOL_SOCKET, SO_REUSEPORT), i != off);
	}
	int c = connect_to(name, type);
	put(c, "rp");
	int got = readable(fds);
	int fd = type == SOCK_STREAM ? accept(got, NULL, NULL) : got;
	CHECK_SYS(fd >= 0, "accept on the shared port");
	expect(fd, "rp", "on the shared port");
	if (fd != got)
		close(fd);
	close(c);
}

static void check_reuseport(void)
{
	check_reuseport_pair(&rp[0], 0, &rp_name[0], SOCK_STREAM);
	check_reuseport_pair(&rp[2], 1, &rp_name[1], SOCK_STREAM);
	check_reuseport_pair(&rp[4], 0, &rp_name[2], SOCK_DGRAM);
}

static const struct mode {
	const char *name;
	void (*setup)(void);
	void (*check)(void);
	int loops; /* check runs at once, until the check signal */
} modes[] = {
	{ "listen", setup_listen, check_listen, 0 },
	{ "ext", setup_ext, check_ext, 0 },
	{ "loopback", setup_loopback, check_loopback, 0 },
	{ "udp", setup_udp, check_udp, 0 },
	{ "udp-ext", setup_udp_ext, check_udp_ext, 0 },
	{ "ext-loop", setup_ext_loop, check_ext_loop, 1 },
	{ "ext-push", setup_ext_push, check_ext_push, 0 },
	{ "tcp-close", setup_tcp_close, check_tcp_close, 0 },
	{ "pair", setup_pair, check_pair, 0 },
	{ "timewait", setup_timewait, check_timewait, 0 },
	{ "taken", setup_taken, check_timewait, 0 },
	{ "inflight", setup_inflight, check_inflight, 0 },
	{ "inflight-kept", setup_inflight, check_inflight_kept, 0 },
	{ "inflight-client", setup_inflight_client, check_inflight_client, 0 },
	{ "node", setup_node, check_loopback, 0 },
	{ "reuseport", setup_reuseport, check_reuseport, 0 },
};

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";
	test_init();
	if (!strcmp(name, "loopback6")) {
		loop_family = AF_INET6;
		name = "loopback";
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(name, modes[i].name))
			continue;
		modes[i].setup();
		test_ready();
		if (!modes[i].loops)
			test_wait_check();
		modes[i].check();
		pass();
	}
	fail("usage: cr-inet-sk listen|ext|ext-loop|ext-push|tcp-close|loopback|loopback6|udp|udp-ext|pair|"
	     "timewait|taken|node|reuseport|inflight|inflight-kept|inflight-client");
}
