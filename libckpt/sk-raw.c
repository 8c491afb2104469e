/*
 * sk-raw: raw sockets, ICMP ping sockets and UDP-Lite sockets, IPv4 and
 * IPv6, for sk-inet.c, which dumps and restores them as it does UDP:
 * the image names the protocol (InetSkEntry.protocol), the addresses,
 * the connected peer, the shutdown state and the options of sk-opts.c's
 * table (IP_HDRINCL, ICMP_FILTER, IPV6_CHECKSUM, UDPLITE_*_CSCOV, the
 * IP-level ones ...).
 *
 * What differs from UDP:
 *  - sock_diag's TCP/UDP tables do not list raw or ping sockets, and
 *    getpeername() cannot tell that one is connected: connect() keeps the
 *    port it was given, usually 0 on such a socket, and a peer port of 0
 *    reads ENOTCONN.  /proc/PID/net/raw (raw6, icmp, icmp6), which lists
 *    the sockets of the owner's network namespace by inode, gives the
 *    state (TCP_ESTABLISHED once connected), the peer's address and the
 *    bytes of the receive and send queues.  UDP-Lite is in sock_diag
 *    (udp_diag), as UDP is.
 *  - A raw socket's local "port" is its protocol (bind ignores a port);
 *    a ping socket's is its ICMP echo id, which bind() takes back.
 *  - Packets received and not read, and a datagram held back (MSG_MORE),
 *    are refused at dump time as UDP's are (sk-inet.c, check_state): a
 *    raw socket's queue cannot be put back into it without sending the
 *    packets for real, to every raw socket and to the stack.  A raw
 *    socket that receives traffic (one of IPPROTO_TCP sees every TCP
 *    segment of the namespace) may therefore not be dumpable until it is
 *    read; no packet is ever lost in silence.
 *  - A raw socket needs CAP_NET_RAW: a user's restore through the agent
 *    (which is not lent it) is refused before anything is made; a ping
 *    socket needs the restoring user's group in net.ipv4.ping_group_range
 *    of the namespace restored into, which the kernel checks at socket().
 *
 *  - The shutdown state: poll() tells RCV_SHUTDOWN, or both; sock_diag's
 *    raw table (raw_diag, where the kernel has it) a raw socket's own.
 *
 * Known gap: SEND_SHUTDOWN alone on a ping socket (its send() says EPIPE
 * then), or on a raw one where the kernel lacks raw_diag (6.18 here: then
 * only a send of a whole packet, IP_HDRINCL, says EPIPE), shows in no
 * interface that does not send: it comes back unset.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"
#include "sk-raw.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

int inet_sk_protocol(const InetSkEntry *s)
{
	if (s->has_protocol)
		return (int)s->protocol;
	return s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
}

static int is_ping(int family, int proto)
{
	return proto == (family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
}

int inet_kind_supported(int family, int type, int proto)
{
	if (type == SOCK_STREAM)
		return proto == IPPROTO_TCP;
	if (type == SOCK_DGRAM)
		return proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE || is_ping(family, proto);
	/* 1..IPPROTO_MAX-1 (262 on 6.18: a raw socket of a protocol over
	 * 255 is made, and never receives anything); 0 only in the kernel */
	return type == SOCK_RAW && proto > 0 && proto <= 65535;
}

int inet_kind_other(int type, int proto)
{
	return !(type == SOCK_STREAM && proto == IPPROTO_TCP) &&
	       !(type == SOCK_DGRAM && proto == IPPROTO_UDP);
}

const char *inet_kind_name(const InetSkEntry *s)
{
	int proto = inet_sk_protocol(s);
	if (s->type == SOCK_STREAM)
		return "TCP";
	if (s->type == SOCK_RAW)
		return "raw";
	if (proto == IPPROTO_UDPLITE)
		return "UDP-Lite";
	return is_ping((int)s->family, proto) ? "ICMP" : "UDP";
}

/* ------------------------------- dump -------------------------------- */

/* "0100007F" (a __be32 printed as the u32 it is in memory, 4 of them for
 * IPv6) into the address bytes. */
static int parse_addr(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != len * 2)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		char word[9];
		memcpy(word, hex + i * 2, 8);
		word[8] = '\0';
		uint32_t v = (uint32_t)strtoul(word, NULL, 16);
		memcpy(out + i, &v, 4);
	}
	return 0;
}

/* One line of /proc/PID/net/{raw,icmp}[6]: the socket `ino`?  Fills out. */
static int parse_line(const char *line, int family, uint64_t ino, struct inet_diag *out)
{
	char local[40], remote[40];
	unsigned lport, rport, st, tx, rx;
	unsigned long long inode;
	size_t alen = family == AF_INET6 ? 16 : 4;
	uint8_t addr[16];
	if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %x:%x %*x:%*x %*x %*u %*d %llu",
		   local, &lport, remote, &rport, &st, &tx, &rx, &inode) != 8 || inode != ino)
		return 0;
	if (parse_addr(remote, addr, alen))
		return 0;
	out->state = (uint8_t)st;
	out->rqueue = rx;
	out->wqueue = tx;
	inet_end_set(&out->remote, family, addr, rport);
	return 1;
}

static int find_in_proc(pid_t pid, int family, int type, uint64_t ino, struct inet_diag *out)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/net/%s%s", pid, type == SOCK_RAW ? "raw" : "icmp",
		 family == AF_INET6 ? "6" : "");
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = parse_line(line, family, ino, out);
	fclose(f);
	return found ? 0 : -ENOENT;
}

/* RCV_SHUTDOWN reads POLLRDHUP on any datagram socket, both POLLHUP. */
static uint8_t poll_shutdown(int sk)
{
	struct pollfd p = { .fd = sk, .events = POLLRDHUP };
	if (poll(&p, 1, 0) != 1)
		return 0;
	return (p.revents & POLLHUP) ? 3 : (p.revents & POLLRDHUP) ? 1 : 0;
}

int inet_proc_state(pid_t pid, int fd, int sk, int type, uint64_t ino, struct inet_diag *out)
{
	int family = 0;
	socklen_t len = sizeof(family);
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &len))
		return -errno;
	*out = (struct inet_diag){ .ino = ino, .family = (uint8_t)family };
	int ret = find_in_proc(pid, family, type, ino, out);
	/* a ping socket is listed once bound (bind, or a send picks its id):
	 * one that is not holds nothing, and is not connected */
	if (ret == -ENOENT && type == SOCK_DGRAM) {
		out->state = TCP_CLOSE;
		ret = 0;
	}
	if (ret) {
		pr_err("pid %d: fd %d: socket:[%llu]: not found in /proc/%d/net/%s%s: %s", pid, fd,
		       (unsigned long long)ino, pid, type == SOCK_RAW ? "raw" : "icmp",
		       family == AF_INET6 ? "6" : "", strerror(-ret));
		return ret;
	}
	if (out->state != TCP_ESTABLISHED && out->state != TCP_CLOSE) {
		pr_err("pid %d: fd %d: socket:[%llu]: a %s socket in state %u is not supported",
		       pid, fd, (unsigned long long)ino, type == SOCK_RAW ? "raw" : "ICMP",
		       out->state);
		return -ENOTSUP;
	}
	out->shutdown = poll_shutdown(sk);
	return 0;
}

/* ------------------------------ restore ------------------------------ */

int inet_kind_valid(const InetSkEntry *s)
{
	if (!s->has_protocol)
		return s->type == SOCK_STREAM || s->type == SOCK_DGRAM;
	if (s->protocol > 65535 || !inet_kind_supported((int)s->family, (int)s->type,
						      (int)s->protocol))
		return 0;
	if (s->type == SOCK_STREAM)
		return 1;
	/* connected: the peer's address is what connect() takes again */
	if (s->state == TCP_ESTABLISHED && !s->has_dst_addr)
		return 0;
	return s->state == TCP_ESTABLISHED || s->state == TCP_CLOSE;
}

int inet_kind_permitted(const InetSkEntry *s)
{
	if (s->type != SOCK_RAW || (priv_effective() & PRIV_BIT(CAP_NET_RAW)))
		return 0;
	pr_err("socket:[%llu]: a raw socket (%s, protocol %u): its restore needs CAP_NET_RAW",
	       (unsigned long long)s->ino, s->family == AF_INET6 ? "IPv6" : "IPv4", s->protocol);
	return -EPERM;
}

void inet_kind_why(const InetSkEntry *s, int err, char *why, size_t len)
{
	const char *hint = NULL;
	int proto = inet_sk_protocol(s);
	if (s->type == SOCK_DGRAM && is_ping((int)s->family, proto) && err == EACCES)
		hint = "a ping socket: the restoring user's group must be in "
		       "net.ipv4.ping_group_range of this network namespace";
	else if (s->type == SOCK_RAW && err == EPERM)
		hint = "a raw socket needs CAP_NET_RAW";
	else if (proto == IPPROTO_UDPLITE && (err == EPROTONOSUPPORT || err == ESOCKTNOSUPPORT))
		hint = "this kernel has no UDP-Lite";
	if (hint)
		snprintf(why, len, "socket(): %s (%s)", strerror(err), hint);
}

static int addr_any(const InetSkEntry *s)
{
	for (size_t i = 0; i < s->src_addr.len; i++)
		if (s->src_addr.data[i])
			return 0;
	return 1;
}

int inet_kind_skip_bind(const InetSkEntry *s)
{
	return s->type == SOCK_RAW && (!s->has_src_addr || addr_any(s));
}

/* ------------------------------ verify ------------------------------- */

static void int_differs(int now, int was, const char *name, sk_opts_diff_fn fn, void *arg,
			int *n)
{
	char a[32], b[32];
	if (now == was)
		return;
	snprintf(a, sizeof(a), "%d", now);
	snprintf(b, sizeof(b), "%d", was);
	fn(arg, name, a, b);
	(*n)++;
}

static int get_int(int sk, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	getsockopt(sk, SOL_SOCKET, opt, &v, &len);
	return v;
}

int inet_kind_verify(int sk, const InetSkEntry *s, sk_opts_diff_fn fn, void *arg)
{
	int n = 0;
	int_differs(get_int(sk, SO_DOMAIN), (int)s->family, "SO_DOMAIN", fn, arg, &n);
	int_differs(get_int(sk, SO_TYPE), (int)s->type, "SO_TYPE", fn, arg, &n);
	int_differs(get_int(sk, SO_PROTOCOL), inet_sk_protocol(s), "SO_PROTOCOL", fn, arg, &n);
	if (!s->has_src_addr || !inet_kind_other((int)s->type, inet_sk_protocol(s)))
		return n;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct inet_end now, was;
	char a[64], b[64];
	memset(&ss, 0, sizeof(ss));
	if (getsockname(sk, (struct sockaddr *)&ss, &len))
		memset(&ss, 0, sizeof(ss));
	if (s->family == AF_INET6)
		inet_end_set(&now, AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	else
		inet_end_set(&now, AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			     ntohs(((struct sockaddr_in *)&ss)->sin_port));
	inet_end_set(&was, (int)s->family, s->src_addr.data, s->src_port);
	if (!inet_end_eq(&now, &was)) {
		fn(arg, "local address", inet_end_str(&now, a, sizeof(a)),
		   inet_end_str(&was, b, sizeof(b)));
		n++;
	}
	return n;
}
