/*
 * cr_raw_sk, cr_ping_sk, cr_udplite, bad_dump_raw_unread: raw, ICMP ping
 * and UDP-Lite sockets across a checkpoint (libckpt/sk-raw.c).
 *
 *   raw      (in a network namespace of its own: a raw socket sees every
 *            packet of its protocol there) IPv4 raw sockets: ICMP bound to
 *            127.0.0.14 with an ICMP_FILTER; UDP bound to 127.0.0.12 with
 *            IP_HDRINCL, IP_TTL, IP_TOS; protocol 253 connected to
 *            127.0.0.1 (port 0: getpeername says ENOTCONN); IPv6 raw
 *            sockets: ICMPv6 with an ICMPV6_FILTER, UDP bound to ::1 with
 *            IPV6_CHECKSUM, IPPROTO_RAW.  After the restore: the same
 *            family, type, protocol, address and options, and they work:
 *            a UDP datagram written whole (IP header and all) on the
 *            IP_HDRINCL socket reaches a UDP socket, the connected one
 *            sends without an address and gets its own packet back.
 *   ping     (own namespace, ping_group_range opened by cr-run) ICMP ping
 *            sockets: IPv4 bound to 127.0.0.1 with echo id 4242, IPv4
 *            connected (its id picked by connect()), IPv6 unbound with
 *            IPV6_UNICAST_HOPS.  After: the same ids, and each gets the
 *            echo reply of a request it sends.
 *   udplite  UDP-Lite sockets: a pair bound and connected over 127.0.0.1
 *            with UDPLITE_SEND_CSCOV / RECV_CSCOV, an IPv6 one connected
 *            and shut down for sending.  After: the options, the
 *            addresses; datagrams both ways; the shut one says EPIPE.
 *   raw-unread  a raw socket holding a packet it has not read: the dump
 *            is refused, naming it (the queue cannot be put back), and
 *            the program, which goes on, still reads it.
 */
#include "crlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif

/* One socket of a case and what it must read back after the restore. */
struct sock {
	const char *name;
	int fd, family, type, proto;
	struct sockaddr_storage local;
	socklen_t local_len;
};

#define MAX_SOCKS 8
static struct sock socks[MAX_SOCKS];
static int nr_socks;

/* Options compared byte for byte before and after. */
struct opt {
	int level, name;
	const char *str;
};
#define OPT(l, o) { l, o, #o }
static const struct opt opts[] = {
	OPT(IPPROTO_IP, IP_HDRINCL),	  OPT(IPPROTO_IP, IP_TTL),
	OPT(IPPROTO_IP, IP_TOS),	  OPT(SOL_RAW, ICMP_FILTER),
	OPT(IPPROTO_IPV6, IPV6_CHECKSUM), OPT(IPPROTO_ICMPV6, ICMPV6_FILTER),
	OPT(IPPROTO_IPV6, IPV6_UNICAST_HOPS), OPT(IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV),
	OPT(IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV),
};
#define NR_OPTS (sizeof(opts) / sizeof(opts[0]))
static unsigned char before[MAX_SOCKS][NR_OPTS][64];
static socklen_t before_len[MAX_SOCKS][NR_OPTS];

static struct sock *add(const char *name, int family, int type, int proto)
{
	struct sock *s = &socks[nr_socks++];
	*s = (struct sock){ name, socket(family, type, proto), family, type, proto, { 0 }, 0 };
	CHECK_SYS(s->fd >= 0, "%s: socket(%d, %d, %d)", name, family, type, proto);
	return s;
}

static void set_int(struct sock *s, int level, int name, int v, const char *what)
{
	CHECK_SYS(!setsockopt(s->fd, level, name, &v, sizeof(v)), "%s: %s", s->name, what);
}

static socklen_t make4(struct sockaddr_storage *ss, const char *addr, int port)
{
	struct sockaddr_in *a = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, addr, &a->sin_addr);
	return sizeof(*a);
}

static socklen_t make6(struct sockaddr_storage *ss, const char *addr, int port)
{
	struct sockaddr_in6 *a = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, addr, &a->sin6_addr);
	return sizeof(*a);
}

static void bind_to(struct sock *s, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = s->family == AF_INET ? make4(&ss, addr, port) : make6(&ss, addr, port);
	CHECK_SYS(!bind(s->fd, (struct sockaddr *)&ss, len), "%s: bind %s", s->name, addr);
}

static void connect_to(struct sock *s, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = s->family == AF_INET ? make4(&ss, addr, port) : make6(&ss, addr, port);
	CHECK_SYS(!connect(s->fd, (struct sockaddr *)&ss, len), "%s: connect %s", s->name, addr);
}

/* Everything that must read the same after the restore. */
static void snapshot(void)
{
	for (int i = 0; i < nr_socks; i++) {
		struct sock *s = &socks[i];
		s->local_len = sizeof(s->local);
		CHECK_SYS(!getsockname(s->fd, (struct sockaddr *)&s->local, &s->local_len),
			  "%s: getsockname", s->name);
		for (size_t k = 0; k < NR_OPTS; k++) {
			before_len[i][k] = sizeof(before[i][k]);
			if (getsockopt(s->fd, opts[k].level, opts[k].name, before[i][k],
				       &before_len[i][k]))
				before_len[i][k] = (socklen_t)-1; /* not this socket's */
		}
	}
}

static int get_int(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	getsockopt(fd, SOL_SOCKET, name, &v, &len);
	return v;
}

static void compare(void)
{
	for (int i = 0; i < nr_socks; i++) {
		struct sock *s = &socks[i];
		struct sockaddr_storage now;
		socklen_t len = sizeof(now);
		unsigned char buf[64];
		CHECK(get_int(s->fd, SO_DOMAIN) == s->family && get_int(s->fd, SO_TYPE) == s->type &&
			      get_int(s->fd, SO_PROTOCOL) == s->proto,
		      "%s: domain %d type %d protocol %d, was %d %d %d", s->name,
		      get_int(s->fd, SO_DOMAIN), get_int(s->fd, SO_TYPE),
		      get_int(s->fd, SO_PROTOCOL), s->family, s->type, s->proto);
		CHECK_SYS(!getsockname(s->fd, (struct sockaddr *)&now, &len), "%s: getsockname",
			  s->name);
		CHECK(len == s->local_len && !memcmp(&now, &s->local, len),
		      "%s: local address changed", s->name);
		for (size_t k = 0; k < NR_OPTS; k++) {
			socklen_t n = sizeof(buf);
			int e = getsockopt(s->fd, opts[k].level, opts[k].name, buf, &n) ? -1 : 0;
			if (before_len[i][k] == (socklen_t)-1) {
				CHECK(e, "%s: %s readable now, not before", s->name, opts[k].str);
				continue;
			}
			CHECK(!e && n == before_len[i][k] && !memcmp(buf, before[i][k], n),
			      "%s: %s reads other than before", s->name, opts[k].str);
		}
	}
}

/* A datagram of the socket's within 10 s, into buf; its length. */
static ssize_t receive(int fd, void *buf, size_t len, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: nothing received", what);
	ssize_t n = recv(fd, buf, len, 0);
	CHECK_SYS(n > 0, "%s: recv", what);
	return n;
}

/* --------------------------------- raw -------------------------------- */

static int udp_rx; /* a UDP socket at 127.0.0.12:udp_port for the raw one */
static int udp_port;

static void setup_raw(void)
{
	struct icmp_filter f4 = { .data = ~(1u << ICMP_ECHOREPLY) };
	struct icmp6_filter f6;
	memset(&f6, 0xff, sizeof(f6));
	f6.data[ICMPV6_ECHO_REPLY >> 5] &= ~(1u << (ICMPV6_ECHO_REPLY & 31));

	struct sock *s = add("raw icmp", AF_INET, SOCK_RAW, IPPROTO_ICMP);
	bind_to(s, "127.0.0.14", 0);
	CHECK_SYS(!setsockopt(s->fd, SOL_RAW, ICMP_FILTER, &f4, sizeof(f4)), "ICMP_FILTER");
	s = add("raw udp", AF_INET, SOCK_RAW, IPPROTO_UDP);
	bind_to(s, "127.0.0.12", 0);
	set_int(s, IPPROTO_IP, IP_HDRINCL, 1, "IP_HDRINCL");
	set_int(s, IPPROTO_IP, IP_TTL, 33, "IP_TTL");
	set_int(s, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
	s = add("raw 253 connected", AF_INET, SOCK_RAW, 253);
	connect_to(s, "127.0.0.1", 0);
	s = add("raw icmpv6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	CHECK_SYS(!setsockopt(s->fd, IPPROTO_ICMPV6, ICMPV6_FILTER, &f6, sizeof(f6)),
		  "ICMPV6_FILTER");
	s = add("raw6 udp", AF_INET6, SOCK_RAW, IPPROTO_UDP);
	bind_to(s, "::1", 0);
	set_int(s, IPPROTO_IPV6, IPV6_CHECKSUM, 6, "IPV6_CHECKSUM");
	add("raw6 raw", AF_INET6, SOCK_RAW, IPPROTO_RAW);

	struct sockaddr_storage ss;
	socklen_t len = make4(&ss, "127.0.0.12", 0);
	udp_rx = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(udp_rx >= 0 && !bind(udp_rx, (struct sockaddr *)&ss, len), "udp socket");
	CHECK_SYS(!getsockname(udp_rx, (struct sockaddr *)&ss, &len), "getsockname udp");
	udp_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snapshot();
}

/* A UDP datagram to 127.0.0.12:udp_port written whole on the IP_HDRINCL
 * socket (the kernel fills the IP checksum; a UDP checksum of 0 is none). */
static ssize_t send_hdrincl(int fd)
{
	unsigned char pkt[sizeof(struct iphdr) + sizeof(struct udphdr) + 8] = { 0 };
	struct iphdr *ip = (void *)pkt;
	struct udphdr *udp = (void *)(ip + 1);
	memcpy(udp + 1, "raw-data", 8);
	ip->ihl = 5;
	ip->version = 4;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(pkt));
	inet_pton(AF_INET, "127.0.0.12", &ip->saddr);
	ip->daddr = ip->saddr;
	udp->source = htons(9);
	udp->dest = htons((uint16_t)udp_port);
	udp->len = htons(sizeof(*udp) + 8);
	struct sockaddr_storage ss;
	socklen_t len = make4(&ss, "127.0.0.12", 0);
	return sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, len);
}

static void check_raw(void)
{
	char buf[256];
	compare();
	CHECK_SYS(send_hdrincl(socks[1].fd) > 0, "send on the IP_HDRINCL socket");
	ssize_t n = receive(udp_rx, buf, sizeof(buf), "udp from the raw socket");
	CHECK(n == 8 && !memcmp(buf, "raw-data", 8), "udp from the raw socket: %zd bytes", n);
	/* connected: send() needs no address, and the packet comes back */
	CHECK_SYS(send(socks[2].fd, "conn", 4, 0) == 4, "send on the connected raw socket");
	n = receive(socks[2].fd, buf, sizeof(buf), "the connected raw socket");
	CHECK(n == (ssize_t)sizeof(struct iphdr) + 4 &&
		      !memcmp(buf + sizeof(struct iphdr), "conn", 4),
	      "the connected raw socket: %zd bytes", n);
	/* an unconnected one does need it */
	CHECK(send(socks[0].fd, "x", 1, 0) < 0 && errno == EDESTADDRREQ,
	      "the unconnected raw socket sent without an address");
}

/* -------------------------------- ping -------------------------------- */

static int echo(struct sock *s, const char *to, int connected)
{
	unsigned char req[16] = { 0 }, reply[256];
	struct sockaddr_storage ss;
	socklen_t len = s->family == AF_INET ? make4(&ss, to, 0) : make6(&ss, to, 0);
	req[0] = s->family == AF_INET ? ICMP_ECHO : ICMPV6_ECHO_REQUEST;
	memcpy(req + 8, "pingdata", 8);
	ssize_t n = connected ? send(s->fd, req, sizeof(req), 0)
			      : sendto(s->fd, req, sizeof(req), 0, (struct sockaddr *)&ss, len);
	CHECK_SYS(n == sizeof(req), "%s: send an echo request", s->name);
	n = receive(s->fd, reply, sizeof(reply), s->name);
	CHECK(n == sizeof(req) && reply[0] == (s->family == AF_INET ? ICMP_ECHOREPLY : ICMPV6_ECHO_REPLY)
	      && !memcmp(reply + 8, "pingdata", 8), "%s: not an echo reply (%zd bytes)", s->name, n);
	return (reply[4] << 8) | reply[5]; /* the id: the socket's */
}

static int id_of(const struct sock *s)
{
	return ntohs(((const struct sockaddr_in *)&s->local)->sin_port);
}

static void setup_ping(void)
{
	struct sock *s = add("ping bound", AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	bind_to(s, "127.0.0.1", 4242);
	echo(s, "127.0.0.1", 0); /* its queue read: nothing kept */
	s = add("ping connected", AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	connect_to(s, "127.0.0.1", 0);
	s = add("ping6", AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
	set_int(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7, "IPV6_UNICAST_HOPS");
	snapshot();
	CHECK(id_of(&socks[0]) == 4242 && id_of(&socks[1]), "ping ids %d %d", id_of(&socks[0]),
	      id_of(&socks[1]));
}

static void check_ping(void)
{
	compare();
	int id = echo(&socks[0], "127.0.0.1", 0);
	CHECK(id == 4242, "ping bound: reply to id %d", id);
	id = echo(&socks[1], "127.0.0.1", 1);
	CHECK(id == id_of(&socks[1]), "ping connected: reply to id %d, its id %d", id,
	      id_of(&socks[1]));
	echo(&socks[2], "::1", 0);
}

/* ------------------------------ udplite ------------------------------- */

static void setup_udplite(void)
{
	struct sock *a = add("udplite a", AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	struct sock *b = add("udplite b", AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	struct sock *c = add("udplite6 shut", AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE);
	bind_to(a, "127.0.0.1", 0);
	bind_to(b, "127.0.0.1", 0);
	set_int(a, IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, 12, "UDPLITE_RECV_CSCOV");
	set_int(b, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, 20, "UDPLITE_SEND_CSCOV");
	snapshot(); /* the ports */
	CHECK_SYS(!connect(b->fd, (struct sockaddr *)&a->local, a->local_len), "connect b");
	bind_to(c, "::1", 0);
	snapshot();
	CHECK_SYS(!connect(c->fd, (struct sockaddr *)&c->local, c->local_len), "connect c");
	CHECK_SYS(!shutdown(c->fd, SHUT_WR), "shutdown c");
}

static void check_udplite(void)
{
	char buf[64];
	compare();
	CHECK_SYS(send(socks[1].fd, "b-to-a", 6, 0) == 6, "send b");
	CHECK(receive(socks[0].fd, buf, sizeof(buf), "a") == 6 && !memcmp(buf, "b-to-a", 6),
	      "a: wrong datagram");
	CHECK_SYS(sendto(socks[0].fd, "a-to-b", 6, 0, (struct sockaddr *)&socks[1].local,
			 socks[1].local_len) == 6, "send a");
	CHECK(receive(socks[1].fd, buf, sizeof(buf), "b") == 6 && !memcmp(buf, "a-to-b", 6),
	      "b: wrong datagram");
	CHECK(send(socks[2].fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
	      "the shut down socket sent");
}

/* ----------------------------- raw-unread ----------------------------- */

static void setup_unread(void)
{
	struct sock *s = add("raw unread", AF_INET, SOCK_RAW, 253);
	connect_to(s, "127.0.0.1", 0);
	CHECK_SYS(send(s->fd, "kept", 4, 0) == 4, "send");
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	CHECK_SYS(poll(&p, 1, 10000) == 1, "its own packet did not come");
}

/* (after the refused dump the program goes on: its packet is still there) */
static void check_unread(void)
{
	char buf[64];
	ssize_t n = receive(socks[0].fd, buf, sizeof(buf), "raw unread");
	CHECK(n == (ssize_t)sizeof(struct iphdr) + 4 && !memcmp(buf + sizeof(struct iphdr), "kept", 4),
	      "raw unread: %zd bytes", n);
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "raw", setup_raw, check_raw },
		{ "ping", setup_ping, check_ping },
		{ "udplite", setup_udplite, check_udplite },
		{ "raw-unread", setup_unread, check_unread },
	};
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
