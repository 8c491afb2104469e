/*
 * cr-sk-helper: a peer outside the dumped tree, started by cr-run --helper
 * in the test's dir.  It writes "helper-port" (inet modes) and then
 * "helper-ready", and serves until it is killed:
 *   unix-dgram  a dgram server bound to ext-dgram.sock; answers each
 *               datagram with "echo:" + datagram, to its sender
 *   unix-stream a stream server listening on ext-stream.sock; echoes
 *   tcp-echo    a TCP server on 127.0.0.1; echoes every byte it gets
 *   udp-echo    a UDP server on 127.0.0.1; answers each datagram as above
 *   tcp-half    a TCP server on 127.0.0.1 for cr-tcp-half: per connection, a
 *               command byte, then 'C': writes "from-helper" and shuts
 *               down, 'F': nothing; reads up to EOF and writes what it read
 *               (the command byte first) to "half-got"; then 'F': once the
 *               file "half-go" exists, writes "from-helper" and closes
 *   tcp-full    a TCP listener on 127.0.0.1 whose accept queue is full (a
 *               connection of its own, not accepted): a SYN to it is
 *               dropped, its sender stays in SYN_SENT; once the file
 *               "half-go" exists, it accepts (its own, then the next) and
 *               echoes as tcp-echo
 *   tcp-push    a TCP server on 127.0.0.1 that writes, to each connection
 *               it accepts, 8-byte counters 0, 1, 2... every 2 ms, all
 *               along (during a dump and until the restore too), and
 *               stops on the first error (a reset connection)
 *   tcp-hold    a plain TCP listener (no SO_REUSEADDR) on 0.0.0.0 at the
 *               port the test wrote in "hold-port": it takes that port
 *               from a restore (started once the dumped test is gone)
 *   fanout-hold a packet socket of the ethertype in "hold-ethertype", on
 *               lo, in the fanout group "hold-fanout" (PACKET_FANOUT's
 *               value), once the test wrote it if started first; then
 *               it writes "fanout-joined"
 *   portid-hold a netlink socket bound to the portid in "hold-portid"
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen("tmp-helper", "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || rename("tmp-helper", name))
		die(name);
}

static void echo_datagrams(int fd)
{
	char buf[70000];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		ssize_t n =
			recvfrom(fd, buf + 5, sizeof(buf) - 5, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			die("recvfrom");
		memcpy(buf, "echo:", 5);
		if (sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len) < 0)
			perror("sendto");
	}
}

static int inet_socket(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char port[16];
	int fd = socket(AF_INET, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 16))
		die("listen");
	snprintf(port, sizeof(port), "%d\n", ntohs(sa.sin_port));
	write_file("helper-port", port);
	return fd;
}

static void echo_streams(int lfd)
{
	struct pollfd p[64] = { { .fd = lfd, .events = POLLIN } };
	int n = 1;
	char buf[65536];
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0)
			die("poll");
		for (int i = n - 1; i >= 1; i--) {
			if (!p[i].revents)
				continue;
			ssize_t got = read(p[i].fd, buf, sizeof(buf));
			if (got <= 0 || write(p[i].fd, buf, (size_t)got) != got) {
				printf("connection %d closed (%zd)\n", i, got);
				fflush(stdout);
				close(p[i].fd);
				p[i] = p[--n];
			}
		}
		if ((p[0].revents & POLLIN) && n < 64) {
			int c = accept(lfd, NULL, NULL);
			if (c >= 0)
				p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
	}
}

static void serve_half(int c)
{
	char buf[256], cmd = 0;
	size_t got = 0;
	ssize_t n;
	if (read(c, &cmd, 1) != 1)
		return;
	buf[got++] = cmd;
	if (cmd == 'C' && (write(c, "from-helper", 11) != 11 || shutdown(c, SHUT_WR)))
		die("from-helper");
	while (got < sizeof(buf) - 1 && (n = read(c, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	write_file("half-got", buf);
	while (cmd == 'F' && access("half-go", F_OK))
		usleep(1000);
	if (cmd == 'F' && write(c, "from-helper", 11) != 11)
		die("from-helper");
}

static void half_closes(int lfd)
{
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			die("accept");
		serve_half(c);
		close(c);
	}
}

static void push_counters(int lfd)
{
	int c = accept(lfd, NULL, NULL), one = 1;
	/* each counter its own segment, ACKed or not: some reach the tree's
	 * address while the tree is gone */
	if (c < 0 || setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("accept");
	for (uint64_t n = 0;; n++) {
		if (send(c, &n, sizeof(n), MSG_NOSIGNAL) != sizeof(n)) {
			printf("push: counter %llu: %m\n", (unsigned long long)n);
			fflush(stdout);
			exit(1);
		}
		usleep(2000);
	}
}

/* Listen on 0.0.0.0:port of the file hold-port, and never accept. */
static void hold_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	FILE *f = fopen("hold-port", "r");
	int port = 0, fd = socket(AF_INET, SOCK_STREAM, 0);
	if (!f || fscanf(f, "%d", &port) != 1)
		die("hold-port");
	fclose(f);
	sa.sin_port = htons((uint16_t)port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		die("listen on the held port");
	printf("holding 0.0.0.0:%d\n", port);
	fflush(stdout);
	write_file("helper-ready", "");
	for (;;)
		pause();
}

static unsigned read_number(const char *name)
{
	unsigned v = 0;
	FILE *f = fopen(name, "r");
	if (!f || fscanf(f, "%u", &v) != 1)
		die(name);
	fclose(f);
	return v;
}

static int join_fanout(void)
{
	int val = (int)read_number("hold-fanout");
	uint16_t proto = htons((uint16_t)read_number("hold-ethertype"));
	struct sockaddr_ll lo = { .sll_family = AF_PACKET, .sll_protocol = proto,
				  .sll_ifindex = (int)if_nametoindex("lo") };
	int fd = socket(AF_PACKET, SOCK_RAW, proto);
	/* a group's members share its protocol and device */
	if (fd < 0 || bind(fd, (struct sockaddr *)&lo, sizeof(lo)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)))
		die("join the fanout group");
	write_file("fanout-joined", "");
	return fd;
}

/* Hold a packet fanout group id or a netlink portid (cr-packet-nl).  A
 * helper started before the test joins once the test wrote the id. */
static void hold_packet_or_netlink(const char *mode)
{
	if (!strcmp(mode, "fanout-hold") && access("hold-fanout", F_OK)) {
		write_file("helper-ready", "");
		while (access("hold-fanout", F_OK))
			usleep(10000);
		join_fanout();
		for (;;)
			pause();
	}
	if (!strcmp(mode, "fanout-hold")) {
		join_fanout();
	} else {
		struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = read_number("hold-portid") };
		int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)))
			die("bind the netlink portid");
	}
	write_file("helper-ready", "");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "unix-dgram")) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "ext-dgram.sock" };
		int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("bind ext-dgram.sock");
		write_file("helper-ready", "");
		echo_datagrams(fd);
	} else if (!strcmp(mode, "unix-stream")) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "ext-stream.sock" };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16))
			die("listen ext-stream.sock");
		write_file("helper-ready", "");
		echo_streams(fd);
	} else if (!strcmp(mode, "tcp-echo")) {
		int fd = inet_socket(SOCK_STREAM);
		write_file("helper-ready", "");
		echo_streams(fd);
	} else if (!strcmp(mode, "tcp-push")) {
		int fd = inet_socket(SOCK_STREAM);
		write_file("helper-ready", "");
		push_counters(fd);
	} else if (!strcmp(mode, "udp-echo")) {
		int fd = inet_socket(SOCK_DGRAM);
		write_file("helper-ready", "");
		echo_datagrams(fd);
	}
	if (!strcmp(mode, "tcp-half")) {
		int fd = inet_socket(SOCK_STREAM);
		write_file("helper-ready", "");
		half_closes(fd);
	}
	if (!strcmp(mode, "tcp-full")) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sa);
		int fd = inet_socket(SOCK_STREAM), c = socket(AF_INET, SOCK_STREAM, 0);
		if (listen(fd, 0) || getsockname(fd, (struct sockaddr *)&sa, &len) || c < 0 ||
		    connect(c, (struct sockaddr *)&sa, len))
			die("fill the accept queue");
		write_file("helper-ready", "");
		while (access("half-go", F_OK))
			usleep(1000);
		close(accept(fd, NULL, NULL));
		echo_streams(fd);
	}
	if (!strcmp(mode, "tcp-hold"))
		hold_port();
	if (!strcmp(mode, "fanout-hold") || !strcmp(mode, "portid-hold"))
		hold_packet_or_netlink(mode);
	fprintf(stderr, "usage: cr-sk-helper "
			"unix-dgram|unix-stream|tcp-echo|tcp-push|udp-echo|tcp-half|tcp-full|tcp-hold|"
			"fanout-hold|portid-hold\n");
	return 2;
}
