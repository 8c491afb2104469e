/*
 * cr-packet-nl: packet and netlink sockets (libckpt/sk-packet.c,
 * sk-netlink.c).  Modes:
 *   packet      packet sockets of every type: bound or not, options,
 *               memberships (one added twice), a fanout group, rings (a
 *               V2 pair mapped at a fixed address, a V3 TX ring), the
 *               copy threshold.  After the restore each reads back as it
 *               was, and a frame sent on lo reaches the bound ones.
 *   netlink     netlink sockets: bound to a portid with groups (one past
 *               32), autobound by connect() to the kernel, connected to a
 *               socket of its own, unbound; options.  After the restore
 *               they read back, the kernel answers, a message goes through.
 *   packet-queued   a frame received and not read (the dump is refused)
 *   packet-tx-used  a TX ring frame written (refused)
 *   fanout-hold     a packet socket in a fanout group whose id it writes
 *                   to "hold-fanout" (cr-sk-helper fanout-hold joins it
 *                   once the test is gone: the restore is refused)
 *   fanout-outside  a fanout group the helper (fanout-hold, started first)
 *                   joins too: a member outside the tree (refused)
 *   portid-hold     a netlink socket bound to a portid it writes to
 *                   "hold-portid" (cr-sk-helper portid-hold takes it)
 *   netlink-generic a NETLINK_GENERIC socket (refused: its families may
 *                   keep state of the socket)
 * The ethertype and the fanout id derive from the pid: two runs at once
 * do not queue frames in each other's sockets.
 */
#include "crlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define RING_AT ((void *)0x5a0000000000ul)
#define FAR_GROUP 34	      /* RTNLGRP_MCTP_IFADDR: quiet on this host */
#define NEAR_GROUPS (1u << 8) /* RTNLGRP_DECnet_IFADDR: gone, never sent */

static int p_raw, p_dgram, p_spkt, p_any, p_v3, p_vnet;
static int n_bound, n_auto, n_server, n_client, n_unbound;
static struct sockaddr_ll ll_raw, ll_dgram, ll_any;
static uint32_t port_auto, port_client;
static int lo;

static uint16_t ethertype(void)
{
	return (uint16_t)(0xa000 | (getpid() & 0xfff));
}

static int fanout_id(void)
{
	return 0x1000 | (getpid() & 0xfff);
}

/* PACKET_FANOUT of the group of p_dgram */
static int fanout_value(void)
{
	return fanout_id() | (PACKET_FANOUT_LB | PACKET_FANOUT_FLAG_ROLLOVER) << 16;
}

static int get_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	CHECK_SYS(!getsockopt(fd, level, opt, &v, &len), "getsockopt %d/%d on fd %d", level, opt,
		  fd);
	return v;
}

static void set_int(int fd, int level, int opt, int v)
{
	CHECK_SYS(!setsockopt(fd, level, opt, &v, sizeof(v)), "setsockopt %d/%d = %d on fd %d",
		  level, opt, v, fd);
}

/* Whole or not at all (a helper may be waiting for it): renamed in place. */
static void write_text(const char *name, unsigned v)
{
	char path[4096], tmp[4096];
	test_path(path, name);
	test_path(tmp, "tmp-text");
	FILE *f = fopen(tmp, "w");
	CHECK_SYS(f && fprintf(f, "%u\n", v) > 0 && !fclose(f) && !rename(tmp, path), "%s", name);
}

/* ------------------------------ packet ------------------------------- */

static void mreq(int fd, int op, int type, int alen)
{
	struct packet_mreq m = { .mr_ifindex = lo,
				 .mr_type = (unsigned short)type,
				 .mr_alen = (unsigned short)alen };
	CHECK_SYS(!setsockopt(fd, SOL_PACKET, op, &m, sizeof(m)), "%s membership type %d",
		  op == PACKET_ADD_MEMBERSHIP ? "add" : "drop", type);
}

static void ring(int fd, int opt, unsigned block, unsigned nr, unsigned frame)
{
	struct tpacket_req3 r = { .tp_block_size = block,
				  .tp_block_nr = nr,
				  .tp_frame_size = frame,
				  .tp_frame_nr = block / frame * nr };
	CHECK_SYS(!setsockopt(fd, SOL_PACKET, opt, &r, sizeof(r)), "ring %d", opt);
}

static int bound(int type, uint16_t proto)
{
	int fd = socket(AF_PACKET, type, htons(proto));
	struct sockaddr_ll a = { .sll_family = AF_PACKET,
				 .sll_protocol = htons(proto),
				 .sll_ifindex = lo };
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)), "bound packet socket");
	return fd;
}

static void name_of(int fd, struct sockaddr_ll *a)
{
	socklen_t len = sizeof(*a);
	memset(a, 0, sizeof(*a));
	CHECK_SYS(!getsockname(fd, (struct sockaddr *)a, &len), "getsockname %d", fd);
}

static void setup_packet(void)
{
	lo = (int)if_nametoindex("lo");
	CHECK(lo > 0, "no lo");
	/* SOCK_RAW, no protocol: a V2 RX + TX ring pair, mapped */
	p_raw = socket(AF_PACKET, SOCK_RAW, 0);
	CHECK_SYS(p_raw >= 0, "packet socket");
	set_int(p_raw, SOL_PACKET, PACKET_VERSION, TPACKET_V2);
	set_int(p_raw, SOL_PACKET, PACKET_AUXDATA, 1);
	set_int(p_raw, SOL_SOCKET, SO_RCVBUF, 65536);
	ring(p_raw, PACKET_RX_RING, 8192, 2, 2048);
	ring(p_raw, PACKET_TX_RING, 4096, 1, 1024);
	void *m = mmap(RING_AT, 5 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
		       p_raw, 0);
	CHECK_SYS(m == RING_AT, "map the rings");
	mreq(p_raw, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC, 0);
	/* SOCK_DGRAM bound to lo: reserve, origdev, fanout, memberships */
	p_dgram = bound(SOCK_DGRAM, ethertype());
	set_int(p_dgram, SOL_PACKET, PACKET_RESERVE, 8);
	set_int(p_dgram, SOL_PACKET, PACKET_ORIGDEV, 1);
	set_int(p_dgram, SOL_PACKET, PACKET_COPY_THRESH, 256);
	set_int(p_dgram, SOL_PACKET, PACKET_FANOUT, fanout_value());
	mreq(p_dgram, PACKET_ADD_MEMBERSHIP, PACKET_MR_UNICAST, 6);
	mreq(p_dgram, PACKET_ADD_MEMBERSHIP, PACKET_MR_ALLMULTI, 0);
	mreq(p_dgram, PACKET_ADD_MEMBERSHIP, PACKET_MR_ALLMULTI, 0);
	/* SOCK_PACKET bound to lo by name */
	p_spkt = socket(AF_PACKET, SOCK_PACKET, htons(ethertype()));
	struct sockaddr sa = { .sa_family = AF_PACKET, .sa_data = "lo" };
	CHECK_SYS(p_spkt >= 0 && !bind(p_spkt, &sa, sizeof(sa)), "SOCK_PACKET");
	/* SOCK_RAW with a protocol, on every device: the sender */
	p_any = socket(AF_PACKET, SOCK_RAW, htons(ethertype()));
	CHECK_SYS(p_any >= 0, "raw packet socket");
	set_int(p_any, SOL_PACKET, PACKET_TIMESTAMP, SOF_TIMESTAMPING_RAW_HARDWARE);
	set_int(p_any, SOL_PACKET, PACKET_QDISC_BYPASS, 1);
	set_int(p_any, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
	/* a V3 TX ring, and a virtio header */
	p_v3 = socket(AF_PACKET, SOCK_RAW, 0);
	CHECK_SYS(p_v3 >= 0, "V3 socket");
	set_int(p_v3, SOL_PACKET, PACKET_VERSION, TPACKET_V3);
	ring(p_v3, PACKET_TX_RING, 4096, 2, 2048);
	p_vnet = socket(AF_PACKET, SOCK_RAW, 0);
	CHECK_SYS(p_vnet >= 0, "vnet socket");
	set_int(p_vnet, SOL_PACKET, PACKET_VNET_HDR, 1);
	name_of(p_raw, &ll_raw);
	name_of(p_dgram, &ll_dgram);
	name_of(p_any, &ll_any);
}

static void same_name(int fd, const struct sockaddr_ll *was)
{
	struct sockaddr_ll now;
	name_of(fd, &now);
	CHECK(now.sll_protocol == was->sll_protocol && now.sll_ifindex == was->sll_ifindex,
	      "fd %d: bound to protocol %#x index %d, was %#x index %d", fd,
	      ntohs(now.sll_protocol), now.sll_ifindex, ntohs(was->sll_protocol), was->sll_ifindex);
}

/* The mapping at RING_AT is still one of p_raw's rings, and the kernel
 * counts it (a ring cannot change while mapped). */
static void check_ring_map(void)
{
	struct stat st;
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK_SYS(f && !fstat(p_raw, &st), "maps");
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		unsigned maj, mn;
		unsigned long long ino;
		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %llu", &start, &end, &maj, &mn, &ino) ==
			    5 &&
		    start == (unsigned long)RING_AT)
			found = end - start == 5 * 4096 && makedev(maj, mn) == st.st_dev &&
				ino == st.st_ino;
	}
	fclose(f);
	CHECK(found, "the rings are not mapped at %p", RING_AT);
	struct tpacket_req r = { 0 };
	CHECK(setsockopt(p_raw, SOL_PACKET, PACKET_RX_RING, &r, sizeof(r)) && errno == EBUSY,
	      "the ring changed while mapped: %s", strerror(errno));
	static const char zero[4096];
	CHECK(!memcmp(RING_AT, zero, sizeof(zero)), "the ring is not fresh");
}

static void check_options(void)
{
	CHECK(get_int(p_raw, SOL_PACKET, PACKET_VERSION) == TPACKET_V2, "version");
	CHECK(get_int(p_raw, SOL_PACKET, PACKET_AUXDATA) == 1, "auxdata");
	CHECK(get_int(p_raw, SOL_SOCKET, SO_RCVBUF) == 131072, "rcvbuf %d",
	      get_int(p_raw, SOL_SOCKET, SO_RCVBUF));
	CHECK(get_int(p_dgram, SOL_PACKET, PACKET_RESERVE) == 8, "reserve");
	CHECK(get_int(p_dgram, SOL_PACKET, PACKET_ORIGDEV) == 1, "origdev");
	CHECK(get_int(p_dgram, SOL_PACKET, PACKET_FANOUT) ==
		      (fanout_id() | (PACKET_FANOUT_LB | PACKET_FANOUT_FLAG_ROLLOVER) << 16),
	      "fanout %#x", get_int(p_dgram, SOL_PACKET, PACKET_FANOUT));
	CHECK(get_int(p_raw, SOL_PACKET, PACKET_FANOUT) == 0, "fanout on the raw socket");
	CHECK(get_int(p_any, SOL_PACKET, PACKET_TIMESTAMP) == SOF_TIMESTAMPING_RAW_HARDWARE,
	      "timestamp");
	CHECK(get_int(p_any, SOL_PACKET, PACKET_QDISC_BYPASS) == 1, "qdisc bypass");
	CHECK(get_int(p_any, SOL_PACKET, PACKET_IGNORE_OUTGOING) == 1, "ignore outgoing");
	CHECK(get_int(p_v3, SOL_PACKET, PACKET_VERSION) == TPACKET_V3, "V3");
	CHECK(get_int(p_vnet, SOL_PACKET, PACKET_VNET_HDR) == 1, "vnet hdr");
	struct sockaddr sa;
	socklen_t len = sizeof(sa);
	CHECK_SYS(!getsockname(p_spkt, &sa, &len) && !strcmp(sa.sa_data, "lo"), "spkt bound");
}

/* Each membership is there. */
static void check_memberships(void)
{
	mreq(p_raw, PACKET_DROP_MEMBERSHIP, PACKET_MR_PROMISC, 0);
	mreq(p_dgram, PACKET_DROP_MEMBERSHIP, PACKET_MR_UNICAST, 6);
	mreq(p_dgram, PACKET_DROP_MEMBERSHIP, PACKET_MR_ALLMULTI, 0);
	mreq(p_dgram, PACKET_DROP_MEMBERSHIP, PACKET_MR_ALLMULTI, 0);
	/* (a drop of what is not there succeeds too: the count is the
	 * dump's check, packet_diag's mclist) */
}

static void expect_frame(int fd, const char *what, size_t skip)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[256];
	CHECK(poll(&p, 1, 3000) == 1, "%s: no frame", what);
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	CHECK_SYS(n > 0, "%s: recv", what);
	CHECK((size_t)n >= skip + 10 && !memcmp(buf + skip, "hello-ckpt", 10), "%s: got %zd bytes",
	      what, n);
}

/* A frame of our ethertype on lo reaches the bound sockets. */
static void check_traffic(void)
{
	unsigned char f[64] = { 0 };
	f[12] = (unsigned char)(ethertype() >> 8);
	f[13] = (unsigned char)ethertype();
	memcpy(f + 14, "hello-ckpt", 10);
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ethertype()),
				  .sll_ifindex = lo };
	CHECK_SYS(sendto(p_any, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)) == sizeof(f),
		  "send a frame");
	expect_frame(p_dgram, "SOCK_DGRAM", 0);
	expect_frame(p_spkt, "SOCK_PACKET", 14);
}

static void check_packet(void)
{
	same_name(p_raw, &ll_raw);
	same_name(p_dgram, &ll_dgram);
	same_name(p_any, &ll_any);
	check_options();
	check_ring_map();
	check_memberships();
	check_traffic();
}

static void setup_queued(void)
{
	setup_packet();
	check_traffic();
	unsigned char f[64] = { 0 };
	f[12] = (unsigned char)(ethertype() >> 8);
	f[13] = (unsigned char)ethertype();
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ethertype()),
				  .sll_ifindex = lo };
	CHECK_SYS(sendto(p_any, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)) == sizeof(f),
		  "send a frame");
	usleep(100000);
}

static void check_queued(void)
{
	char buf[128];
	CHECK_SYS(recv(p_dgram, buf, sizeof(buf), MSG_DONTWAIT) > 0, "the queued frame");
}

static void setup_tx_used(void)
{
	setup_packet();
	struct tpacket2_hdr *h = (void *)((char *)RING_AT + 4 * 4096);
	h->tp_len = 60;
	h->tp_status = TP_STATUS_SEND_REQUEST;
}

static void check_tx_used(void)
{
	const struct tpacket2_hdr *h = (const void *)((char *)RING_AT + 4 * 4096);
	CHECK(h->tp_status == TP_STATUS_SEND_REQUEST, "the frame changed");
}

static void setup_fanout_hold(void)
{
	setup_packet();
	write_text("hold-ethertype", ethertype());
	write_text("hold-fanout", (unsigned)fanout_value()); /* the helper waits for it */
}

static void setup_fanout_outside(void)
{
	char path[4096];
	setup_fanout_hold();
	test_path(path, "fanout-joined");
	for (int i = 0; i < 1000 && access(path, F_OK); i++)
		usleep(10000);
	CHECK(!access(path, F_OK), "the helper did not join the fanout group");
}

static void check_fanout_outside(void)
{
	check_options();
	check_ring_map();
}

/* ------------------------------ netlink ------------------------------ */

static uint32_t portid_of(int fd)
{
	struct sockaddr_nl a;
	socklen_t len = sizeof(a);
	CHECK_SYS(!getsockname(fd, (struct sockaddr *)&a, &len), "getsockname");
	return a.nl_pid;
}

static uint32_t bound_portid(void)
{
	return 0x7e000000u | (uint32_t)getpid();
}

static void setup_netlink(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK,
				 .nl_pid = bound_portid(),
				 .nl_groups = NEAR_GROUPS };
	n_bound = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(n_bound >= 0 && !bind(n_bound, (struct sockaddr *)&a, sizeof(a)), "bind");
	set_int(n_bound, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, FAR_GROUP);
	set_int(n_bound, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	set_int(n_bound, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
	set_int(n_bound, SOL_NETLINK, NETLINK_PKTINFO, 1);
	set_int(n_bound, SOL_SOCKET, SO_RCVBUF, 50000);
	/* autobound by a connect() to the kernel */
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	n_auto = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(n_auto >= 0 && !connect(n_auto, (struct sockaddr *)&k, sizeof(k)), "connect");
	set_int(n_auto, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
	port_auto = portid_of(n_auto);
	/* a user socket talking to another */
	struct sockaddr_nl s = { .nl_family = AF_NETLINK, .nl_pid = bound_portid() + 1 };
	n_server = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_USERSOCK);
	CHECK_SYS(n_server >= 0 && !bind(n_server, (struct sockaddr *)&s, sizeof(s)), "server");
	set_int(n_server, SOL_SOCKET, SO_PASSCRED, 1);
	n_client = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_USERSOCK);
	CHECK_SYS(n_client >= 0 && !connect(n_client, (struct sockaddr *)&s, sizeof(s)), "client");
	port_client = portid_of(n_client);
	n_unbound = socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT);
	CHECK_SYS(n_unbound >= 0, "uevent socket");
}

static void check_groups(void)
{
	uint32_t g[4] = { 0 };
	socklen_t len = sizeof(g);
	CHECK_SYS(!getsockopt(n_bound, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &len), "groups");
	CHECK(g[0] == NEAR_GROUPS && g[1] == 1u << (FAR_GROUP - 33), "groups %#x %#x", g[0], g[1]);
	set_int(n_bound, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, FAR_GROUP);
}

/* The kernel answers a request on the autobound socket. */
static void check_kernel_answers(void)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { { sizeof(req), RTM_GETLINK, NLM_F_REQUEST, 7, 0 }, { .ifi_index = 1 } };
	char buf[8192];
	CHECK_SYS(send(n_auto, &req, sizeof(req), 0) == sizeof(req), "send RTM_GETLINK");
	ssize_t n = recv(n_auto, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	CHECK_SYS(n > 0, "recv");
	CHECK(h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 7 && h->nlmsg_pid == port_auto,
	      "answer type %u seq %u to %u", h->nlmsg_type, h->nlmsg_seq, h->nlmsg_pid);
}

static void check_user_message(void)
{
	struct sockaddr_nl from;
	socklen_t len = sizeof(from);
	char buf[64];
	CHECK_SYS(send(n_client, "ping", 4, 0) == 4, "send");
	ssize_t n = recvfrom(n_server, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
	CHECK_SYS(n == 4 && !memcmp(buf, "ping", 4), "recv");
	CHECK(from.nl_pid == port_client, "from %u, want %u", from.nl_pid, port_client);
}

static void check_netlink(void)
{
	CHECK(portid_of(n_bound) == bound_portid(), "bound portid %u", portid_of(n_bound));
	CHECK(portid_of(n_auto) == port_auto, "autobound portid %u, was %u", portid_of(n_auto),
	      port_auto);
	CHECK(portid_of(n_client) == port_client, "client portid");
	CHECK(portid_of(n_unbound) == 0, "the unbound socket is bound");
	CHECK(get_int(n_bound, SOL_NETLINK, NETLINK_EXT_ACK) == 1, "ext ack");
	CHECK(get_int(n_bound, SOL_NETLINK, NETLINK_NO_ENOBUFS) == 1, "no enobufs");
	CHECK(get_int(n_bound, SOL_NETLINK, NETLINK_PKTINFO) == 1, "pktinfo");
	CHECK(get_int(n_bound, SOL_SOCKET, SO_RCVBUF) == 100000, "rcvbuf");
	CHECK(get_int(n_auto, SOL_NETLINK, NETLINK_GET_STRICT_CHK) == 1, "strict");
	CHECK(get_int(n_server, SOL_SOCKET, SO_PASSCRED) == 1, "passcred");
	check_groups();
	check_kernel_answers();
	check_user_message();
}

static void setup_portid_hold(void)
{
	setup_netlink();
	write_text("hold-portid", bound_portid());
}

static int n_generic;

static void setup_generic(void)
{
	n_generic = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	CHECK_SYS(n_generic >= 0, "generic netlink socket");
}

static void check_generic(void)
{
	CHECK(get_int(n_generic, SOL_SOCKET, SO_PROTOCOL) == NETLINK_GENERIC, "protocol");
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "packet", setup_packet, check_packet },
		{ "netlink", setup_netlink, check_netlink },
		{ "packet-queued", setup_queued, check_queued },
		{ "packet-tx-used", setup_tx_used, check_tx_used },
		{ "fanout-hold", setup_fanout_hold, check_packet },
		{ "portid-hold", setup_portid_hold, check_netlink },
		{ "netlink-generic", setup_generic, check_generic },
		{ "fanout-outside", setup_fanout_outside, check_fanout_outside },
	};
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
