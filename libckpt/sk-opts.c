/*
 * sk-opts: one table of the socket options of TCP and UDP sockets, of
 * raw, ICMP ping and UDP-Lite ones (sk-raw.c; rows marked RAW_, PING_,
 * LITE_, or the IP-level classes that include them), and the SOL_SOCKET
 * ones of unix sockets (rows marked ALL_SK or UNX), read
 * by the dump and replayed by the restore (see sk-opts.h).
 *
 * Each row: the option, how its value looks (kind), the sockets it applies
 * to (protocol, family, state) and when the restore sets it.  The dump
 * reads every row that applies (a kernel that does not know an option
 * answers ENOPROTOOPT/EOPNOTSUPP/EINVAL: the row is skipped, nothing to
 * keep); the restore sets the value only where the new socket's differs
 * (so that a default — even one from a sysctl, like IP_TTL — or a value
 * needing a capability that the process never set, like SO_MARK 0, costs
 * nothing) and reads it back.  Rows are set in table order, which matters:
 * IP_TOS sets SO_PRIORITY, buffers come before SO_RCVLOWAT (which grows an
 * unlocked receive buffer), SO_ATTACH_FILTER before SO_LOCK_FILTER.
 *
 * To add an option: one row, with a comment saying why it is there.
 *
 * Left out, and why (none of these can be read back by getsockopt, so the
 * dump cannot even see that they were set — known gaps, not silent
 * choices): multicast and source group memberships (IP_ADD_MEMBERSHIP,
 * IPV6_JOIN_GROUP, ...), IP_MULTICAST_IF set by ifindex (reads back as an
 * address only), the sticky IPV6_PKTINFO, reuseport groups' BPF programs
 * (SO_ATTACH_REUSEPORT_CBPF/EBPF), TCP_MD5SIG and TCP-AO keys, per-socket
 * TCP_FASTOPEN_KEY, user_mss (TCP_MAXSEG) of a connection (getsockopt
 * gives the negotiated MSS there, which repair mode restores), and which
 * of SO_TIMESTAMPING_OLD/NEW set the flags without SO_TIMESTAMP*.
 * One value comes back other than dumped, by the kernel's rule: IPV6_V6ONLY
 * of an IPv6 connection the program never bound (0) reads 1 once the
 * restore binds it to its address (forced_by_bind; no behaviour changes).
 * Read-only options (SO_ERROR, SO_ACCEPTCONN, SO_COOKIE, SO_PEERCRED,
 * IP_MTU, TCP_INFO, ...) are state, not options, and SO_SNDLOWAT cannot be
 * set on Linux.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "proc.h"
#include "sk-opts.h"
#include "sk-raw.h"

#ifndef SOCK_SNDBUF_LOCK
#define SOCK_SNDBUF_LOCK 1
#define SOCK_RCVBUF_LOCK 2
#endif
/* in linux/in.h and linux/in6.h, which clash with netinet/in.h */
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
/* linux/icmp.h, linux/icmpv6.h, linux/udp.h */
#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif
#ifndef ICMPV6_FILTER
#define ICMPV6_FILTER 1
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#ifndef SOL_RAW
#define SOL_RAW 255
#endif
#ifndef IPV6_RECVERR_RFC4884
#define IPV6_RECVERR_RFC4884 31
#endif
/* asm-generic/socket.h of newer kernels */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

enum opt_kind {
	K_INT,	   /* int */
	K_TOS,	   /* int; on TCP the ECN bits belong to the connection, not the user */
	K_TXREHASH,/* int; 255 is "the sysctl's, when it connects", which cannot be set */
	K_ULONG,   /* unsigned long */
	K_BYTES,   /* a struct, set back as getsockopt wrote it */
	K_TSTAMP,  /* struct so_timestamping; OPT_ID is refused */
	K_STRING,  /* a name: a device, a congestion control */
	K_ULP,	   /* TCP_ULP: must be empty */
	K_LINGER,  /* struct linger: l_linger is kept even while off */
	K_BUF,	   /* SO_SNDBUF/RCVBUF: restored only when locked (SO_BUF_LOCK) */
	K_FILTER,  /* a classic BPF program: SO_GET_FILTER / SO_ATTACH_FILTER */
};

#define TCP_ (1u << 0)
#define UDP_ (1u << 1)  /* UDP, and UDP-Lite, which takes every UDP option */
#define V4 (1u << 2)
#define V6 (1u << 3)
#define RAW_ (1u << 5)  /* SOCK_RAW, any protocol (sk-raw.c) */
#define PING_ (1u << 6) /* SOCK_DGRAM, IPPROTO_ICMP/ICMPV6 */
#define LITE_ (1u << 7) /* UDP-Lite's own */
#define INET (TCP_ | UDP_ | RAW_ | PING_)
#define DGRAM (UDP_ | RAW_ | PING_)
#define ANY (INET | V4 | V6)
#define TCP4 (TCP_ | V4 | V6) /* a TCP option, both families */
#define UDP4 (UDP_ | V4 | V6)
#define IP6 (INET | V6)	       /* an IPV6_* option: AF_INET6 sockets */
#define UNX (1u << 4)	       /* AF_UNIX sockets (sk-unix.c) */
#define ALL_SK (ANY | UNX)     /* a SOL_SOCKET option every socket has */

#define S_CLOSE (1u << 0)  /* unbound, bound, UDP unconnected */
#define S_LISTEN (1u << 1) /* TCP listening */
#define S_ESTAB (1u << 2)  /* TCP established, UDP connected */
#define S_ALL (S_CLOSE | S_LISTEN | S_ESTAB)

struct opt_desc {
	const char *name;
	int level, opt;
	enum opt_kind kind;
	unsigned on, states;
	enum sk_opts_phase phase;
};

#define NEW SK_OPTS_NEW
#define LATE SK_OPTS_LATE
#define ROW(lvl, o, k, on, st, ph) { #o, lvl, o, k, on, st, ph }

static const struct opt_desc opts[] = {
	/* --- IPPROTO_IP (an AF_INET6 socket has them too, for v4-mapped
	 * peers).  First: IP_TOS sets SO_PRIORITY, which comes after. */
	ROW(IPPROTO_IP, IP_TOS, K_TOS, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_TTL, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_MINTTL, K_INT, ANY, S_ALL, NEW),
	/* datagrams only: TCP refuses it (and an accepted socket reads the
	 * TTL of its SYN there) */
	ROW(IPPROTO_IP, IP_MULTICAST_TTL, K_INT, DGRAM | V4 | V6, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_MULTICAST_LOOP, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_MULTICAST_ALL, K_INT, ANY, S_ALL, NEW),
	/* before bind: they decide which addresses bind() accepts */
	ROW(IPPROTO_IP, IP_FREEBIND, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_TRANSPARENT, K_INT, ANY, S_ALL, NEW), /* needs CAP_NET_RAW/ADMIN */
	ROW(IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_LOCAL_PORT_RANGE, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_UNICAST_IF, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_MTU_DISCOVER, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_OPTIONS, K_BYTES, ANY, S_ALL, NEW),
	/* what recvmsg() reports: control messages the program parses */
	ROW(IPPROTO_IP, IP_RECVERR, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVERR_RFC4884, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_PKTINFO, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVTTL, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVTOS, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVOPTS, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RETOPTS, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVORIGDSTADDR, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_RECVFRAGSIZE, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_CHECKSUM, K_INT, ANY, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_PASSSEC, K_INT, ANY, S_ALL, NEW),

	/* --- IPPROTO_IPV6.  IPV6_V6ONLY before bind: it decides whether
	 * the port is taken in IPv4 too. */
	ROW(IPPROTO_IPV6, IPV6_V6ONLY, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_TCLASS, K_TOS, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_UNICAST_HOPS, K_INT, IP6, S_ALL, NEW),
	/* HOPS and IF: datagrams only, TCP refuses them */
	ROW(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, K_INT, DGRAM | V6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_MULTICAST_IF, K_INT, DGRAM | V6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_MULTICAST_ALL, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_UNICAST_IF, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_FREEBIND, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_TRANSPARENT, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_MTU_DISCOVER, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_DONTFRAG, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_FLOWINFO_SEND, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_ADDR_PREFERENCES, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_MINHOPCOUNT, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVERR, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVERR_RFC4884, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVPKTINFO, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVTCLASS, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVRTHDR, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVHOPOPTS, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVDSTOPTS, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVPATHMTU, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_RECVFRAGSIZE, K_INT, IP6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_FLOWINFO, K_INT, IP6, S_ALL, NEW),

	/* --- SOL_SOCKET.  Before bind: SO_REUSEPORT (joins the port's
	 * group), SO_BINDTODEVICE (the device's addresses and routes; the
	 * device must exist here: the restore names it if not), SO_MARK
	 * (routing; needs CAP_NET_ADMIN, set only when not 0). */
	ROW(SOL_SOCKET, SO_REUSEPORT, K_INT, ANY, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_BINDTODEVICE, K_STRING, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_MARK, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_PRIORITY, K_INT, ALL_SK, S_ALL, NEW), /* after IP_TOS */
	ROW(SOL_SOCKET, SO_KEEPALIVE, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_BROADCAST, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_DONTROUTE, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_OOBINLINE, K_INT, ALL_SK, S_ALL, NEW),
	/* sk_no_check_tx: only UDP sends honour it, every socket keeps it */
	ROW(SOL_SOCKET, SO_NO_CHECK, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_LINGER, K_LINGER, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RCVTIMEO_OLD, K_BYTES, ALL_SK, S_ALL, NEW), /* _NEW: the same value */
	ROW(SOL_SOCKET, SO_SNDTIMEO_OLD, K_BYTES, ALL_SK, S_ALL, NEW),
	/* An unlocked buffer is the kernel's to size (autotuning): only a
	 * size the program set (SOCK_*BUF_LOCK, read with SO_BUF_LOCK, 5.18+)
	 * is restored.  getsockopt gives the doubled value setsockopt made. */
	/* (a unix socket's buffers are sk-unix.c's own: set whatever their
	 * lock, then SO_BUF_LOCK puts the dumped lock back) */
	ROW(SOL_SOCKET, SO_SNDBUF, K_BUF, ANY, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RCVBUF, K_BUF, ANY, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_BUF_LOCK, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RCVLOWAT, K_INT, ALL_SK, S_ALL, NEW), /* after SO_RCVBUF */
	ROW(SOL_SOCKET, SO_TIMESTAMP_OLD, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_TIMESTAMPNS_OLD, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_TIMESTAMP_NEW, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_TIMESTAMPNS_NEW, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_TIMESTAMPING_OLD, K_TSTAMP, ALL_SK, S_ALL, NEW),
	/* SO_PASSCRED/PASSSEC: refused on inet sockets since 6.16 (then the
	 * dump finds nothing to keep), kept where a kernel allows them */
	ROW(SOL_SOCKET, SO_PASSCRED, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_PASSSEC, K_INT, ALL_SK, S_ALL, NEW),
	/* unix only: a pidfd of the sender (6.5+), whether SCM_RIGHTS may
	 * come (6.16+) */
	ROW(SOL_SOCKET, SO_PASSPIDFD, K_INT, UNX, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_PASSRIGHTS, K_INT, UNX, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RCVMARK, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RXQ_OVFL, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_WIFI_STATUS, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_NOFCS, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_SELECT_ERR_QUEUE, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_ZEROCOPY, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_INCOMING_CPU, K_INT, ALL_SK, S_ALL, NEW),
	/* busy polling: raising them needs CAP_NET_ADMIN (set only if not
	 * the default) */
	ROW(SOL_SOCKET, SO_BUSY_POLL, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_PREFER_BUSY_POLL, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_BUSY_POLL_BUDGET, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_TXREHASH, K_TXREHASH, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_MAX_PACING_RATE, K_ULONG, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_PEEK_OFF, K_INT, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_RESERVE_MEM, K_INT, ALL_SK, S_ALL, NEW),
	/* classic BPF, read back with SO_GET_FILTER; an eBPF program
	 * (SO_ATTACH_BPF) cannot be: refused.  The lock comes after. */
	ROW(SOL_SOCKET, SO_ATTACH_FILTER, K_FILTER, ALL_SK, S_ALL, NEW),
	ROW(SOL_SOCKET, SO_LOCK_FILTER, K_INT, ALL_SK, S_ALL, NEW),
	/* Late: bind() needs it on (the port may have connections of the
	 * dumped process in TIME_WAIT), and leaving repair mode turns it off. */
	ROW(SOL_SOCKET, SO_REUSEADDR, K_INT, ALL_SK, S_ALL, LATE),

	/* --- IPPROTO_TCP.  The connection itself (sequence numbers, MSS,
	 * windows) is sk-inet.c's, in repair mode. */
	ROW(IPPROTO_TCP, TCP_ULP, K_ULP, TCP4, S_ALL, NEW), /* kTLS, ...: refused */
	ROW(IPPROTO_TCP, TCP_CONGESTION, K_STRING, TCP4, S_ALL, NEW), /* must exist here */
	ROW(IPPROTO_TCP, TCP_NODELAY, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_CORK, K_INT, TCP4, S_ALL, NEW), /* after NODELAY, which pushes */
	/* always, not only with SO_KEEPALIVE on: it may be turned on later */
	ROW(IPPROTO_TCP, TCP_KEEPIDLE, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_KEEPINTVL, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_KEEPCNT, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_USER_TIMEOUT, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_SYNCNT, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_LINGER2, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_DEFER_ACCEPT, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_NOTSENT_LOWAT, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_SAVE_SYN, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_INQ, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_TX_DELAY, K_INT, TCP4, S_ALL, NEW),
	ROW(IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, K_INT, TCP4, S_ALL, NEW),
	/* only before a connection exists: the kernel refuses them later, and
	 * getsockopt(TCP_MAXSEG) of a connection is its negotiated MSS */
	ROW(IPPROTO_TCP, TCP_MAXSEG, K_INT, TCP4, S_CLOSE | S_LISTEN, NEW),
	ROW(IPPROTO_TCP, TCP_FASTOPEN, K_INT, TCP4, S_CLOSE | S_LISTEN, NEW),
	ROW(IPPROTO_TCP, TCP_FASTOPEN_CONNECT, K_INT, TCP4, S_CLOSE | S_LISTEN, NEW),
	/* connect() computes the clamp and the ACK mode: set after it */
	ROW(IPPROTO_TCP, TCP_WINDOW_CLAMP, K_INT, TCP4, S_ALL, LATE),
	ROW(IPPROTO_TCP, TCP_QUICKACK, K_INT, TCP4, S_ALL, LATE),

	/* --- IPPROTO_UDP (the shutdown state is InetSkEntry.shutdown) */
	ROW(IPPROTO_UDP, UDP_CORK, K_INT, UDP4, S_ALL, NEW),
	ROW(IPPROTO_UDP, UDP_SEGMENT, K_INT, UDP4, S_ALL, NEW),
	ROW(IPPROTO_UDP, UDP_GRO, K_INT, UDP4, S_ALL, NEW),
	ROW(IPPROTO_UDP, UDP_ENCAP, K_INT, UDP4, S_ALL, NEW),
	ROW(IPPROTO_UDP, UDP_NO_CHECK6_TX, K_INT, UDP4, S_ALL, NEW), /* v4 sockets take them too */
	ROW(IPPROTO_UDP, UDP_NO_CHECK6_RX, K_INT, UDP4, S_ALL, NEW),
	/* UDP-Lite: how much of a datagram its checksum covers */
	ROW(IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, K_INT, LITE_ | V4 | V6, S_ALL, NEW),
	ROW(IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, K_INT, LITE_ | V4 | V6, S_ALL, NEW),

	/* --- raw sockets.  The header the program writes itself (on an
	 * IPPROTO_RAW socket always on); no defragmentation; which ICMP
	 * types are let through (getsockopt says EOPNOTSUPP on a socket of
	 * another protocol: nothing kept); where the kernel writes an IPv6
	 * checksum (-1: nowhere; ICMPv6's is fixed, and reads 2). */
	ROW(IPPROTO_IP, IP_HDRINCL, K_INT, RAW_ | V4, S_ALL, NEW),
	ROW(IPPROTO_IP, IP_NODEFRAG, K_INT, RAW_ | V4, S_ALL, NEW),
	ROW(SOL_RAW, ICMP_FILTER, K_BYTES, RAW_ | V4, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_HDRINCL, K_INT, RAW_ | V6, S_ALL, NEW),
	ROW(IPPROTO_IPV6, IPV6_CHECKSUM, K_INT, RAW_ | V6, S_ALL, NEW),
	ROW(IPPROTO_ICMPV6, ICMPV6_FILTER, K_BYTES, RAW_ | V6, S_ALL, NEW),
};

#define NR_OPTS (sizeof(opts) / sizeof(opts[0]))
#define MAX_BYTES 256			       /* of a K_BYTES/K_STRING value */
#define MAX_FILTER (BPF_MAXINSNS * sizeof(struct sock_filter))
_Static_assert(NR_OPTS < 256, "sk_opts_dump allocates one SkOpt per row");

/* The rows' class of socket s (RAW_, PING_, UDP_ | LITE_, ...). */
static unsigned proto_bits(const InetSkEntry *s)
{
	int p = inet_sk_protocol(s);
	if (s->type == SOCK_STREAM)
		return TCP_;
	if (s->type == SOCK_RAW)
		return RAW_;
	if (p == IPPROTO_UDPLITE)
		return UDP_ | LITE_;
	return p == IPPROTO_ICMP || p == IPPROTO_ICMPV6 ? PING_ : UDP_;
}

static int applies(const struct opt_desc *d, const InetSkEntry *s)
{
	unsigned proto = proto_bits(s);
	unsigned fam = s->family == AF_INET6 ? V6 : V4;
	unsigned st = s->state == TCP_LISTEN ? S_LISTEN : s->state == TCP_CLOSE ? S_CLOSE : S_ESTAB;
	if (s->family == AF_UNIX)
		return (d->on & UNX) && (d->states & st);
	/* packet and netlink sockets (sk-packet.c, sk-netlink.c): the
	 * SOL_SOCKET rows an inet socket has */
	if (s->family == AF_PACKET || s->family == AF_NETLINK)
		return d->level == SOL_SOCKET && (d->on & ANY) && (d->states & st);
	return (d->on & proto) && (d->on & fam) && (d->states & st);
}

static const struct opt_desc *find_desc(uint32_t level, uint32_t name)
{
	for (size_t i = 0; i < NR_OPTS; i++)
		if ((uint32_t)opts[i].level == level && (uint32_t)opts[i].opt == name)
			return &opts[i];
	return NULL;
}

static const SkOpt *find_opt(const InetSkEntry *s, int level, int name)
{
	for (size_t i = 0; i < s->n_opts; i++)
		if (s->opts[i]->level == (uint32_t)level && s->opts[i]->name == (uint32_t)name)
			return s->opts[i];
	return NULL;
}

long long sk_opts_int(const InetSkEntry *s, int level, int name, long long dflt)
{
	const SkOpt *o = find_opt(s, level, name);
	return o && o->has_value ? (long long)o->value : dflt;
}

static int is_int(enum opt_kind k)
{
	return k == K_INT || k == K_TOS || k == K_TXREHASH || k == K_ULONG || k == K_BUF;
}

/* getsockopt into buf (len: its size in, the value's out), or -errno. */
static int get_raw(int sk, const struct opt_desc *d, void *buf, socklen_t *len)
{
	if (d->kind == K_FILTER) {
		/* optlen counts instructions: 0 asks for the count */
		socklen_t n = 0;
		/* an eBPF program is not shown (EACCES; EINVAL on older kernels:
		 * no classic original) and may be longer than any classic one:
		 * (socklen_t)-1 tells it */
		if (getsockopt(sk, d->level, SO_GET_FILTER, NULL, &n)) {
			if (errno != EACCES)
				return -errno;
			*len = (socklen_t)-1;
			return 0;
		}
		if (n && (n * sizeof(struct sock_filter) > *len ||
			  getsockopt(sk, d->level, SO_GET_FILTER, buf, &n))) {
			*len = (socklen_t)-1;
			return 0;
		}
		*len = n * (socklen_t)sizeof(struct sock_filter);
		return 0;
	}
	return getsockopt(sk, d->level, d->opt, buf, len) ? -errno : 0;
}

static long long get_int(int sk, const struct opt_desc *d, int *err)
{
	unsigned long ul = 0;
	int v = 0;
	socklen_t len = d->kind == K_ULONG ? sizeof(ul) : sizeof(v);
	*err = get_raw(sk, d, d->kind == K_ULONG ? (void *)&ul : (void *)&v, &len);
	return d->kind == K_ULONG ? (long long)ul : v;
}

/* ------------------------------- dump -------------------------------- */

static int refuse(const struct opt_desc *d, const void *buf, socklen_t len, char *err,
		  size_t errlen)
{
	if (d->kind == K_FILTER && len == (socklen_t)-1) {
		snprintf(err, errlen, "an eBPF socket filter (SO_ATTACH_BPF) cannot be read back");
		return -ENOTSUP;
	}
	if (d->kind == K_ULP && len && ((const char *)buf)[0]) {
		snprintf(err, errlen, "TCP_ULP \"%.*s\": an upper layer protocol's state cannot be "
			 "dumped", (int)strnlen(buf, len), (const char *)buf);
		return -ENOTSUP;
	}
	if (d->kind == K_TSTAMP && len >= sizeof(int) &&
	    (*(const int *)buf & SOF_TIMESTAMPING_OPT_ID)) {
		snprintf(err, errlen, "SO_TIMESTAMPING with SOF_TIMESTAMPING_OPT_ID: its counter "
			 "cannot be restored");
		return -ENOTSUP;
	}
	return 0;
}

static int dump_one(struct arena *a, int sk, const struct opt_desc *d, SkOpt *o, char *err,
		    size_t errlen)
{
	static _Thread_local unsigned char buf[MAX_FILTER];
	sk_opt__init(o);
	o->level = (uint32_t)d->level;
	o->name = (uint32_t)d->opt;
	if (is_int(d->kind)) {
		int e;
		o->value = get_int(sk, d, &e);
		o->has_value = 1;
		return e ? 1 : 0;
	}
	socklen_t len = d->kind == K_FILTER ? sizeof(buf) : MAX_BYTES;
	memset(buf, 0, MAX_BYTES);
	if (get_raw(sk, d, buf, &len))
		return 1;
	int ret = refuse(d, buf, len, err, errlen);
	if (ret)
		return ret;
	if (d->kind == K_ULP || (d->kind == K_FILTER && !len))
		return 1; /* nothing to keep */
	if (d->kind == K_STRING)
		len = (socklen_t)strnlen((const char *)buf, len);
	o->has_data = 1;
	o->data.len = len;
	if (len && !(o->data.data = arena_alloc(a, len)))
		return -ENOMEM;
	if (len)
		memcpy(o->data.data, buf, len);
	return 0;
}

int sk_opts_dump(struct arena *a, int sk, InetSkEntry *s, char *err, size_t errlen)
{
	SkOpt *all = arena_alloc(a, NR_OPTS * sizeof(*all));
	if (!all || !(s->opts = arena_alloc(a, NR_OPTS * sizeof(*s->opts))))
		return -ENOMEM;
	s->n_opts = 0;
	for (size_t i = 0; i < NR_OPTS; i++) {
		if (!applies(&opts[i], s))
			continue;
		int ret = dump_one(a, sk, &opts[i], &all[i], err, errlen);
		if (ret < 0)
			return ret;
		if (ret == 0) /* 1: this kernel has no such option, or it is empty */
			s->opts[s->n_opts++] = &all[i];
	}
	return 0;
}

/* ------------------------------ restore ------------------------------ */

int sk_opts_valid(const InetSkEntry *s)
{
	for (size_t i = 0; i < s->n_opts; i++) {
		const SkOpt *o = s->opts[i];
		const struct opt_desc *d = o ? find_desc(o->level, o->name) : NULL;
		if (!d || is_int(d->kind) != !!o->has_value || is_int(d->kind) == !!o->has_data)
			return 0;
		if (d->kind == K_FILTER && (o->data.len % sizeof(struct sock_filter) ||
					   !o->data.len || o->data.len > MAX_FILTER))
			return 0;
		if (!is_int(d->kind) && d->kind != K_FILTER && o->data.len > MAX_BYTES - 1)
			return 0;
		if (d->kind == K_LINGER && o->data.len != sizeof(struct linger))
			return 0;
		if (d->kind != K_ULONG && is_int(d->kind) &&
		    (o->value < -2147483648LL || o->value > 2147483647LL))
			return 0;
	}
	return 1;
}

static int set_int(int sk, const struct opt_desc *d, int opt, long long v)
{
	unsigned long ul = (unsigned long)v;
	int i = (int)v;
	if (d->kind == K_ULONG)
		return setsockopt(sk, d->level, opt, &ul, sizeof(ul)) ? -errno : 0;
	return setsockopt(sk, d->level, opt, &i, sizeof(i)) ? -errno : 0;
}

static long long tos_bits(const struct opt_desc *d, const InetSkEntry *s, long long v)
{
	return d->kind == K_TOS && s->type == SOCK_STREAM ? (v & ~3LL) : v;
}

/* Is the dumped value o of integer option d one the restore sets? */
static int int_kept(const struct opt_desc *d, const SkOpt *o, const InetSkEntry *s)
{
	if (d->kind == K_BUF) {
		long long lock = sk_opts_int(s, SOL_SOCKET, SO_BUF_LOCK, 0);
		if (!(lock & (d->opt == SO_SNDBUF ? SOCK_SNDBUF_LOCK : SOCK_RCVBUF_LOCK)))
			return 0;
	}
	if (d->kind == K_TXREHASH && o->value == 255)
		return 0;
	/* A closed socket that was connected reads its last MSS, which may be
	 * no value a program could have set (88..32767; zdtm
	 * socket-tcp-close2: 32768 over loopback): not a setting, left alone. */
	if (d->level == IPPROTO_TCP && d->opt == TCP_MAXSEG && (o->value < 88 || o->value > 32767))
		return 0;
	return 1;
}

static int restore_int(int sk, const struct opt_desc *d, const SkOpt *o, const InetSkEntry *s,
		       char *err, size_t errlen)
{
	int e;
	long long want = o->value, now = get_int(sk, d, &e);
	if (!int_kept(d, o, s))
		return 0;
	if (!e && tos_bits(d, s, now) == tos_bits(d, s, want))
		return 0;
	/* a buffer is set to half what getsockopt gives; FORCE (CAP_NET_ADMIN)
	 * beyond net.core.[rw]mem_max, as the program may have done */
	e = set_int(sk, d, d->opt, d->kind == K_BUF ? want / 2 : want);
	if (!e && d->kind == K_BUF && get_int(sk, d, &e) != want)
		e = set_int(sk, d, d->opt == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, want / 2);
	if (e) {
		snprintf(err, errlen, "%s %lld: %s", d->name, want, strerror(-e));
		return e;
	}
	now = get_int(sk, d, &e);
	if (e || tos_bits(d, s, now) != tos_bits(d, s, want)) {
		snprintf(err, errlen, "%s: set to %lld, reads %lld", d->name, want, now);
		return -EINVAL;
	}
	return 0;
}

static int set_data(int sk, const struct opt_desc *d, const SkOpt *o)
{
	if (d->kind == K_FILTER) {
		struct sock_fprog p = { (unsigned short)(o->data.len / sizeof(struct sock_filter)),
					(struct sock_filter *)o->data.data };
		return setsockopt(sk, d->level, SO_ATTACH_FILTER, &p, sizeof(p)) ? -errno : 0;
	}
	if (d->kind == K_LINGER) {
		struct linger l;
		memcpy(&l, o->data.data, sizeof(l));
		/* l_linger changes only while on: on with it, then off */
		struct linger on = { 1, l.l_linger }, off = { 0, 0 };
		if (setsockopt(sk, d->level, d->opt, &on, sizeof(on)) ||
		    (!l.l_onoff && setsockopt(sk, d->level, d->opt, &off, sizeof(off))))
			return -errno;
		return 0;
	}
	return setsockopt(sk, d->level, d->opt, o->data.data, (socklen_t)o->data.len) ? -errno : 0;
}

static int same_data(int sk, const struct opt_desc *d, const SkOpt *o)
{
	static _Thread_local unsigned char buf[MAX_FILTER];
	socklen_t len = d->kind == K_FILTER ? sizeof(buf) : MAX_BYTES;
	memset(buf, 0, MAX_BYTES);
	if (get_raw(sk, d, buf, &len))
		return 0;
	if (d->kind == K_STRING)
		len = (socklen_t)strnlen((const char *)buf, len);
	return len == o->data.len && (!len || !memcmp(buf, o->data.data, len));
}

static int restore_data(int sk, const struct opt_desc *d, const SkOpt *o, char *err,
			size_t errlen)
{
	if (same_data(sk, d, o))
		return 0;
	int e = set_data(sk, d, o);
	if (e && d->kind == K_STRING)
		snprintf(err, errlen, "%s \"%.*s\": %s", d->name, (int)o->data.len,
			 (const char *)o->data.data, strerror(-e));
	else if (e)
		snprintf(err, errlen, "%s: %s", d->name, strerror(-e));
	else if (!same_data(sk, d, o))
		snprintf(err, errlen, "%s: reads back other than it was set", d->name);
	return e ? e : same_data(sk, d, o) ? 0 : -EINVAL;
}

/* A test-only fault (CKPT_TEST_FAULT=sockopt): one restored option made
 * wrong after it was read back, for restore --verify to catch. */
static void fault_sockopt(int sk, const InetSkEntry *s)
{
	static int done; /* one socket: one difference to name */
	const SkOpt *o = find_opt(s, SOL_SOCKET, SO_PRIORITY);
	int wrong = o && o->value == 1 ? 2 : 1;
	if (o && !done && ckpt_test_fault("sockopt")) {
		setsockopt(sk, SOL_SOCKET, SO_PRIORITY, &wrong, sizeof(wrong));
		done = 1;
	}
}

int sk_opts_restore(int sk, const InetSkEntry *s, enum sk_opts_phase phase, char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < NR_OPTS; i++) {
		const struct opt_desc *d = &opts[i];
		const SkOpt *o = d->phase == phase && applies(d, s) ? find_opt(s, d->level, d->opt)
								    : NULL;
		if (!o)
			continue;
		int ret = is_int(d->kind) ? restore_int(sk, d, o, s, err, errlen)
					  : restore_data(sk, d, o, err, errlen);
		if (ret)
			return ret;
	}
	if (phase == SK_OPTS_LATE)
		fault_sockopt(sk, s);
	return 0;
}

/* ------------------------------ verify ------------------------------- */

/* Options the kernel changes by itself once packets flow: the CPU that
 * took the last one, the quick-ACK mode, the window clamp that receive
 * autotuning grows on a connection.  The restore sets them; a later value
 * is no difference. */
static int moves_alone(const struct opt_desc *d, const InetSkEntry *s)
{
	if (d->level == SOL_SOCKET)
		return d->opt == SO_INCOMING_CPU;
	if (d->level != IPPROTO_TCP)
		return 0;
	return d->opt == TCP_QUICKACK ||
	       (d->opt == TCP_WINDOW_CLAMP && s->state != TCP_LISTEN && s->state != TCP_CLOSE);
}

/* An AF_INET6 socket bound to an address of its own (not the wildcard,
 * not v4-mapped) has IPV6_V6ONLY on: the kernel sets it at that bind(),
 * and refuses to change it once bound.  A connection the program made
 * without bind() (the port picked by connect()) read 0; its restore binds
 * (repair mode needs the dumped port), and it reads 1.  Nothing else
 * differs: such a socket cannot take IPv4 traffic either way. */
static int forced_by_bind(const struct opt_desc *d, const InetSkEntry *s)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (d->level != IPPROTO_IPV6 || d->opt != IPV6_V6ONLY || s->family != AF_INET6 ||
	    !s->has_src_addr || s->src_addr.len != 16)
		return 0;
	size_t zero = 0;
	while (zero < 16 && !s->src_addr.data[zero])
		zero++;
	return zero < 16 && memcmp(s->src_addr.data, mapped, sizeof(mapped));
}

/* Tell fn about option d of sk, which differs from o. */
static void name_difference(int sk, const struct opt_desc *d, const SkOpt *o,
			    sk_opts_diff_fn fn, void *arg)
{
	char now[80], was[80];
	int e = 0;
	if (is_int(d->kind)) {
		long long v = get_int(sk, d, &e);
		snprintf(now, sizeof(now), "%lld", v);
		snprintf(was, sizeof(was), "%lld", (long long)o->value);
	} else if (d->kind == K_STRING) {
		unsigned char buf[MAX_BYTES];
		socklen_t len = sizeof(buf);
		memset(buf, 0, sizeof(buf));
		e = get_raw(sk, d, buf, &len);
		snprintf(now, sizeof(now), "\"%.*s\"", (int)strnlen((char *)buf, len), (char *)buf);
		snprintf(was, sizeof(was), "\"%.*s\"", (int)o->data.len, (const char *)o->data.data);
	} else {
		snprintf(now, sizeof(now), "other bytes");
		snprintf(was, sizeof(was), "%zu bytes", o->data.len);
	}
	if (e)
		snprintf(now, sizeof(now), "unreadable (%s)", strerror(-e));
	fn(arg, d->name, now, was);
}

int sk_opts_verify(int sk, const InetSkEntry *s, sk_opts_diff_fn fn, void *arg)
{
	int n = 0;
	for (size_t i = 0; i < NR_OPTS; i++) {
		const struct opt_desc *d = &opts[i];
		const SkOpt *o = applies(d, s) ? find_opt(s, d->level, d->opt) : NULL;
		if (!o || moves_alone(d, s) || forced_by_bind(d, s))
			continue;
		if (is_int(d->kind)) {
			int e;
			long long v = get_int(sk, d, &e);
			if (!int_kept(d, o, s) || (!e && tos_bits(d, s, v) == tos_bits(d, s, o->value)))
				continue;
		} else if (same_data(sk, d, o)) {
			continue;
		}
		name_difference(sk, d, o, fn, arg);
		n++;
	}
	return n;
}
