/*
 * sk-tcp: a TCP connection's state in repair mode, for sk-inet.c (which
 * finds the connections, freezes them, rebuilds their sockets and says
 * when): read (tcp_read_conn: sequence numbers, queues, options, window)
 * and written back (tcp_prepare_conn before connect, tcp_fill_conn after),
 * ESTABLISHED and the half-closed states (FIN_WAIT1, FIN_WAIT2,
 * CLOSE_WAIT, LAST_ACK, CLOSING), whose FINs come last (tcp_fins_restore).
 *
 * A FIN takes one sequence number.  Ours is counted in write_seq (the
 * send queue's TCP_QUEUE_SEQ) from the shutdown on, and in SIOCOUTQ
 * (write_seq - snd_una) until the peer acknowledges it, and in SIOCOUTQNSD
 * (write_seq - snd_nxt) while it is not sent (it waits behind unsent data
 * or a zero window); no byte a peek of the send queue returns is it.  The
 * peer's is counted in rcv_nxt (the receive queue's TCP_QUEUE_SEQ), not in
 * SIOCINQ.
 *
 * No repair option sets a state: a socket in repair mode becomes
 * ESTABLISHED on connect(), and only the FINs move it on.  So a
 * connection comes back from sequence numbers without its FINs
 * (tcp_send_start, tcp_recv_start), established, its queues and window
 * restored, and then, once every socket of the tree exists (no packet
 * may find a tree's peer missing and be answered with a RST), its FINs
 * come back in the order of its state (the kernel's tcp_fin and
 * tcp_rcv_state_process):
 *
 *   ours     shutdown(SHUT_WR) in repair mode: the FIN is queued at
 *            write_seq.  With TCP_SEND_QUEUE selected the kernel takes it
 *            as sent without sending it (as the bytes restored there); it
 *            goes out when the retransmit timer fires, as it would have.
 *            One never sent (fin_unsent) is pushed with TCP_NO_QUEUE,
 *            behind the data the restore queued unsent.
 *   theirs   a FIN segment from the peer's address and port, seq the
 *            FIN's, ack our snd_una (it acknowledges nothing new), its
 *            window the peer's, written on a raw socket (CAP_NET_RAW) to
 *            our address: the kernel takes it in as a segment of the
 *            connection (repair mode changes nothing on input).
 *   acked    a bare ACK from the peer of our FIN (FIN_WAIT2).
 *
 * The peer's segments carry no timestamp option: the kernel takes them
 * all the same (checked on 6.18; a restored socket's ts_recent is 0, so
 * PAWS has nothing to hold against them).  The window (TCP_REPAIR_WINDOW)
 * is set while the socket is still ESTABLISHED, as the kernel requires,
 * with rcv_wup no further than the rcv_nxt before the peer's FIN
 * (tcp_fin_window).
 *
 *   FIN_WAIT1   ours                 CLOSE_WAIT  theirs
 *   FIN_WAIT2   ours, acked          LAST_ACK    theirs, ours
 *   CLOSING     ours, theirs
 *
 * SYN_SENT comes back bound in repair mode, its write_seq the ISN, and
 * connects again out of it (sk-inet.c): the same SYN goes out again, as
 * its retransmission would have.  TIME_WAIT has no fd; SYN_RECV is a
 * listener's request, not a socket of the tree.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "priv.h"
#include "sk-opts.h"
#include "net-lock.h"
#include "sk-tcp.h"

const char *tcp_state_name(unsigned s)
{
	static const char *const names[] = { "?",	    "ESTABLISHED", "SYN_SENT",	"SYN_RECV",
					     "FIN_WAIT1",   "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
					     "CLOSE_WAIT",  "LAST_ACK",	   "LISTEN",	"CLOSING",
					     "NEW_SYN_RECV" };
	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int tcp_conn_state(unsigned state, struct tcp_fins *f)
{
	*f = (struct tcp_fins){ 0, 0, 0 };
	switch (state) {
	case TCP_ESTABLISHED:
	case TCP_SYN_SENT: /* its SYN is sent again (sk-inet.c, resume_connect) */
		return 1;
	case TCP_FIN_WAIT1:
		f->sent = 1;
		return 1;
	case TCP_FIN_WAIT2:
		f->sent = f->acked = 1;
		return 1;
	case TCP_CLOSE_WAIT:
		f->received = 1;
		return 1;
	case TCP_LAST_ACK:
	case TCP_CLOSING:
		f->sent = f->received = 1;
		return 1;
	}
	return 0;
}

int tcp_is_conn(const InetSkEntry *s)
{
	struct tcp_fins f;
	return s->type == SOCK_STREAM && tcp_conn_state(s->state, &f);
}

int tcp_fin_unacked(const InetSkEntry *s)
{
	struct tcp_fins f;
	return tcp_conn_state(s->state, &f) && f.sent && !f.acked;
}

uint32_t tcp_send_start(const InetSkEntry *s)
{
	struct tcp_fins f;
	tcp_conn_state(s->state, &f);
	/* SYN_SENT: the SYN took one (write_seq is the ISN + 1), and the ISN
	 * is what the connect() of the restore sends again */
	return s->snd_seq - (uint32_t)s->send_queue.len - (uint32_t)f.sent -
	       (s->state == TCP_SYN_SENT);
}

uint32_t tcp_recv_start(const InetSkEntry *s)
{
	struct tcp_fins f;
	tcp_conn_state(s->state, &f);
	return s->rcv_seq - (uint32_t)s->recv_queue.len - (uint32_t)f.received;
}

void tcp_fin_window(const InetSkEntry *s, uint32_t *rcv_wnd, uint32_t *rcv_wup)
{
	uint32_t nxt = tcp_recv_start(s) + (uint32_t)s->recv_queue.len;
	*rcv_wnd = s->rcv_wnd;
	*rcv_wup = s->rcv_wup;
	if ((int32_t)(*rcv_wup - nxt) > 0) { /* the same right edge */
		*rcv_wnd += *rcv_wup - nxt;
		*rcv_wup = nxt;
	}
}

int tcp_fin_needs_raw(const InetSkEntry *s)
{
	struct tcp_fins f;
	return tcp_is_conn(s) && tcp_conn_state(s->state, &f) && (f.received || f.acked);
}

#define F(s) (1u << (s))

int tcp_state_follows(unsigned dumped, unsigned now)
{
	static const unsigned next[] = {
		[TCP_ESTABLISHED] = F(TCP_CLOSE_WAIT),
		[TCP_SYN_SENT] = F(TCP_ESTABLISHED) | F(TCP_CLOSE_WAIT),
		[TCP_FIN_WAIT1] = F(TCP_FIN_WAIT2) | F(TCP_CLOSING) | F(TCP_CLOSE),
		[TCP_FIN_WAIT2] = F(TCP_CLOSE),
		[TCP_LAST_ACK] = F(TCP_CLOSE),
		[TCP_CLOSING] = F(TCP_CLOSE),
	};
	if (dumped == now)
		return 1;
	return dumped < sizeof(next) / sizeof(next[0]) && now < 32 && (next[dumped] & F(now));
}

/* ----------------------------- repair mode ---------------------------- */

static int get_opt(int sk, int level, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);
	getsockopt(sk, level, opt, &v, &len);
	return v;
}

static int set_int(int sk, int level, int opt, int v)
{
	return setsockopt(sk, level, opt, &v, sizeof(v)) ? -errno : 0;
}

/* TCP_REPAIR needs CAP_NET_ADMIN, which a user's dump or restore holds
 * only in its permitted set: effective for this call alone. */
int tcp_set_repair(int sk, int on)
{
	int raised = priv_raise(CAP_NET_ADMIN);
	int ret = setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ? -errno : 0;
	priv_lower(CAP_NET_ADMIN, raised);
	return ret;
}

static int select_queue(int sk, int q)
{
	return setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ? -errno : 0;
}

/* One queue's sequence number and bytes (a peek: nothing is consumed);
 * `fin` of SIOCOUTQ is our FIN, no byte. */
static int read_queue(struct arena *a, int sk, int q, int fin, uint32_t *seq,
		      ProtobufCBinaryData *data)
{
	socklen_t len = sizeof(*seq);
	int size = 0, ret = select_queue(sk, q);
	if (ret)
		return ret;
	if (getsockopt(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len))
		return -errno;
	if (ioctl(sk, q == TCP_SEND_QUEUE ? SIOCOUTQ : SIOCINQ, &size))
		return -errno;
	size -= fin;
	if (size <= 0)
		return 0;
	if (!(data->data = arena_alloc(a, (size_t)size)))
		return -ENOMEM;
	/* In repair mode the kernel still takes ACKs in: one that came after
	 * SIOCOUTQ freed the bytes it acknowledged, the first ones.  What is
	 * left ends at write_seq all the same (cr_tcp_pair_netns_redump
	 * failed on it: "cannot dump the connection ...: Input/output error"). */
	ssize_t n = recv(sk, data->data, (size_t)size, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (n != size && (q != TCP_SEND_QUEUE || n > size))
		return -EIO;
	data->len = (size_t)n;
	return 0;
}

static int read_tcp_options(int sk, InetSkEntry *s)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti);
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	s->has_tcpi_options = s->has_snd_wscale = s->has_rcv_wscale = s->has_mss = 1;
	s->tcpi_options = ti.tcpi_options;
	s->snd_wscale = ti.tcpi_snd_wscale;
	s->rcv_wscale = ti.tcpi_rcv_wscale;
	s->mss = (uint32_t)get_opt(sk, IPPROTO_TCP, TCP_MAXSEG);
	if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
		s->has_timestamp = 1;
		s->timestamp = (uint32_t)get_opt(sk, IPPROTO_TCP, TCP_TIMESTAMP);
	}
	len = sizeof(w);
	if (getsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len))
		return -errno;
	s->has_snd_wl1 = s->has_snd_wnd = s->has_max_window = s->has_rcv_wnd = s->has_rcv_wup = 1;
	s->snd_wl1 = w.snd_wl1;
	s->snd_wnd = w.snd_wnd;
	s->max_window = w.max_window;
	s->rcv_wnd = w.rcv_wnd;
	s->rcv_wup = w.rcv_wup;
	return 0;
}

/* The state again, in repair mode (nothing moves it now): the one
 * sock_diag gave may have moved on since (a FIN or an ACK came in). */
static int settle_state(int sk, InetSkEntry *s)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	if (!tcp_is_conn(&(InetSkEntry){ .type = SOCK_STREAM, .state = ti.tcpi_state }))
		return -ENOTSUP;
	s->state = ti.tcpi_state;
	return 0;
}

int tcp_read_conn(struct arena *a, int sk, InetSkEntry *s)
{
	int unsent = 0, ret = settle_state(sk, s);
	int fin = ret ? 0 : tcp_fin_unacked(s);
	s->has_snd_seq = s->has_rcv_seq = s->has_send_queue = s->has_recv_queue = 1;
	s->has_unsent = 1;
	if (ret || (ret = read_queue(a, sk, TCP_SEND_QUEUE, fin, &s->snd_seq, &s->send_queue)) ||
	    (ret = read_queue(a, sk, TCP_RECV_QUEUE, 0, &s->rcv_seq, &s->recv_queue)))
		return ret;
	if (ioctl(sk, SIOCOUTQNSD, &unsent))
		return -errno;
	/* an unsent FIN is the last of what is unsent */
	s->has_fin_unsent = s->fin_unsent = fin && unsent > 0;
	s->unsent = (uint32_t)(unsent - s->fin_unsent);
	select_queue(sk, TCP_NO_QUEUE);
	return read_tcp_options(sk, s);
}

/* A peer outside the tree owes an ACK for every byte (or FIN) in flight
 * to it, and may delay it (Linux up to 200 ms, TCP_DELACK_MAX; RFC 1122
 * up to 500 ms).  Once the tree is killed no socket holds the 4-tuple
 * until the restore's connect(): that ACK, arriving then, is answered
 * with a RST (tcp_v4_send_reset), which kills the peer's end, and the
 * restored socket is reset in turn when it retransmits (nstat:
 * TcpOutRsts 2; cr_tcp_half_ext_close_wait whenever the dump took less
 * than the peer's delayed ACK).  In repair mode the kernel still takes
 * ACKs in: the dump waits for it here, while the socket exists.  What the
 * peer sends of its own accord in the gap (new data, a window update) no
 * wait can cover: that needs the packets dropped (CRIU's network lock). */
long long tcp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int in_flight(int sk)
{
	int outq = 0, unsent = 0;
	if (ioctl(sk, SIOCOUTQ, &outq) || ioctl(sk, SIOCOUTQNSD, &unsent))
		return -errno;
	return outq - unsent;
}

int tcp_wait_acked(int sk, long long deadline_ms)
{
	int n;
	while ((n = in_flight(sk)) > 0 && tcp_now_ms() < deadline_ms)
		usleep(1000);
	return n < 0 ? n : n ? -ETIMEDOUT : 0;
}

static int set_seq(int sk, int q, uint32_t seq)
{
	int ret = select_queue(sk, q);
	return ret ? ret : set_int(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)seq);
}

static int send_all(int sk, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(sk, p, len, MSG_NOSIGNAL | MSG_DONTWAIT); /* never wait */
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int set_tcp_options(int sk, const InetSkEntry *s)
{
	struct tcp_repair_opt o[4];
	int n = 0;
	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, s->mss };
	if (s->tcpi_options & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW,
						  s->snd_wscale | s->rcv_wscale << 16 };
	if (s->tcpi_options & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (s->tcpi_options & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))))
		return -errno;
	if (s->has_timestamp && set_int(sk, IPPROTO_TCP, TCP_TIMESTAMP, (int)s->timestamp))
		return -errno;
	return 0;
}

/* The send queue (at most what inet_read lets an image claim) must fit
 * the send buffer, which the kernel may have grown past what a new socket
 * starts with (tcp_sndbuf_expand): beyond it send() waits for room that a
 * shut window never makes (zdtm socket-tcp-last-ack hung so, 4 MB
 * unsent).  Forced big enough, then the dumped lock is put back
 * (SO_BUF_LOCK): the size stays the kernel's. */
static void fit_send_queue(int sk, const InetSkEntry *s)
{
	int have = get_opt(sk, SOL_SOCKET, SO_SNDBUF);
	int lock = (int)sk_opts_int(s, SOL_SOCKET, SO_BUF_LOCK, 0);
	/* a size the program set (SOCK_SNDBUF_LOCK, 1) is back, and held it */
	if ((lock & 1) || s->send_queue.len < (size_t)have / 2)
		return;
	int raised = priv_raise(CAP_NET_ADMIN);
	set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, (int)s->send_queue.len + (have / 2));
	priv_lower(CAP_NET_ADMIN, raised);
	set_int(sk, SOL_SOCKET, SO_BUF_LOCK, lock);
}

/* Queues: received bytes, then sent-but-unacknowledged bytes in repair
 * mode; bytes never sent go out of repair mode, as new data. */
static int fill_queues(int sk, const InetSkEntry *s, char *why, size_t len)
{
	size_t sent = s->send_queue.len - s->unsent;
	fit_send_queue(sk, s);
	int ret = select_queue(sk, TCP_RECV_QUEUE);
	if (!ret)
		ret = send_all(sk, s->recv_queue.data, s->recv_queue.len);
	if (!ret)
		ret = select_queue(sk, TCP_SEND_QUEUE);
	if (!ret)
		ret = send_all(sk, s->send_queue.data, sent);
	/* Out of repair mode without a window probe (TCP_REPAIR_OFF_NO_WP): a
	 * peer of the tree may not exist yet, and would answer with a RST.
	 * The window is still 0 (set_window comes after): nothing is sent. */
	if (!ret && s->unsent) {
		ret = tcp_set_repair(sk, TCP_REPAIR_OFF_NO_WP);
		if (!ret)
			ret = send_all(sk, s->send_queue.data + sent, s->unsent);
		if (!ret)
			ret = tcp_set_repair(sk, 1);
	}
	if (ret == -EAGAIN)
		snprintf(why, len, "its send queue (%zu bytes) does not fit its send buffer (%d)",
			 s->send_queue.len, get_opt(sk, SOL_SOCKET, SO_SNDBUF));
	return ret;
}

static int set_window(int sk, const InetSkEntry *s)
{
	struct tcp_repair_window w = { s->snd_wl1, s->snd_wnd, s->max_window, 0, 0 };
	tcp_fin_window(s, &w.rcv_wnd, &w.rcv_wup);
	return setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) ? -errno : 0;
}

int tcp_prepare_conn(int sk, const InetSkEntry *s)
{
	int ret = tcp_set_repair(sk, 1);
	if (!ret)
		ret = set_seq(sk, TCP_SEND_QUEUE, tcp_send_start(s));
	if (!ret)
		ret = set_seq(sk, TCP_RECV_QUEUE, tcp_recv_start(s));
	return ret;
}

int tcp_fill_conn(int sk, const InetSkEntry *s, char *why, size_t len)
{
	int ret = set_tcp_options(sk, s);
	if (!ret)
		ret = fill_queues(sk, s, why, len);
	if (!ret)
		ret = set_window(sk, s);
	return ret;
}

/* ------------------------- the peer's segments ------------------------ */

struct pseudo_sum {
	uint32_t sum;
};

static void sum_bytes(struct pseudo_sum *c, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		c->sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		c->sum += (uint32_t)b[len - 1] << 8;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* The peer's end as the packet's source, ours as its destination, each
 * 4 bytes (AF_INET, or a v4-mapped AF_INET6 socket) or 16. */
struct seg_ends {
	int v4;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

static int v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return !memcmp(a, prefix, sizeof(prefix));
}

static void seg_ends_of(const InetSkEntry *s, struct seg_ends *e)
{
	memset(e, 0, sizeof(*e));
	e->v4 = s->family == AF_INET || v4_mapped(s->src_addr.data);
	size_t off = s->family == AF_INET6 && e->v4 ? 12 : 0;
	memcpy(e->src, s->dst_addr.data + off, e->v4 ? 4 : 16);
	memcpy(e->dst, s->src_addr.data + off, e->v4 ? 4 : 16);
	e->sport = htons((uint16_t)s->dst_port);
	e->dport = htons((uint16_t)s->src_port);
}

static void tcp_header(const struct seg_ends *e, uint32_t seq, uint32_t ack, uint8_t flags,
		       uint16_t win, struct tcphdr *th)
{
	struct pseudo_sum c = { IPPROTO_TCP + sizeof(*th) };
	memset(th, 0, sizeof(*th));
	th->source = e->sport;
	th->dest = e->dport;
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = sizeof(*th) / 4;
	th->fin = !!(flags & TH_FIN);
	th->ack = !!(flags & TH_ACK);
	th->rst = !!(flags & TH_RST);
	th->window = htons(win);
	sum_bytes(&c, e->src, e->v4 ? 4 : 16);
	sum_bytes(&c, e->dst, e->v4 ? 4 : 16);
	sum_bytes(&c, th, sizeof(*th));
	th->check = fold(c.sum);
}

/* The IP header (IPPROTO_RAW: ours; for IPv4 the kernel fills in the id
 * and the header checksum). */
static size_t ip_header(const struct seg_ends *e, uint8_t *buf)
{
	if (e->v4) {
		buf[0] = 0x45;
		buf[2] = 0;
		buf[3] = 20 + sizeof(struct tcphdr);
		buf[6] = 0x40; /* DF */
		buf[8] = 64;
		buf[9] = IPPROTO_TCP;
		memcpy(buf + 12, e->src, 4);
		memcpy(buf + 16, e->dst, 4);
		return 20;
	}
	buf[0] = 0x60;
	buf[5] = sizeof(struct tcphdr);
	buf[6] = IPPROTO_TCP;
	buf[7] = 64;
	memcpy(buf + 8, e->src, 16);
	memcpy(buf + 24, e->dst, 16);
	return 40;
}

/* One segment from the peer to socket s, on a raw socket. */
static int inject(const InetSkEntry *s, uint32_t seq, uint32_t ack, uint8_t flags)
{
	struct seg_ends e;
	struct sockaddr_storage to;
	uint8_t pkt[64] = { 0 };
	seg_ends_of(s, &e);
	uint32_t wnd = s->snd_wnd >> ((s->tcpi_options & TCPI_OPT_WSCALE) ? s->snd_wscale : 0);
	size_t off = ip_header(&e, pkt);
	tcp_header(&e, seq, ack, flags, (uint16_t)(wnd > 65535 ? 65535 : wnd),
		   (struct tcphdr *)(pkt + off));
	memset(&to, 0, sizeof(to));
	socklen_t tolen = e.v4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (e.v4) {
		((struct sockaddr_in *)&to)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&to)->sin_addr, e.dst, 4);
	} else {
		((struct sockaddr_in6 *)&to)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&to)->sin6_addr, e.dst, 16);
	}
	int raised = priv_raise(CAP_NET_RAW);
	int raw = socket(e.v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	int ret = raw < 0 ? -errno : 0;
	priv_lower(CAP_NET_RAW, raised);
	/* past the network lock of the connection, if any (net-lock.h);
	 * without CAP_NET_ADMIN there is none of ours to pass */
	int mark = NET_LOCK_MARK;
	if (!ret)
		setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	if (!ret && sendto(raw, pkt, off + sizeof(struct tcphdr), 0, (struct sockaddr *)&to,
			   tolen) != (ssize_t)(off + sizeof(struct tcphdr)))
		ret = -errno;
	if (raw >= 0)
		close(raw);
	return ret;
}

/* ------------------------------- restore ------------------------------ */

static int state_of(int sk);

int tcp_close_restored(int sk, const InetSkEntry *s, char *why, size_t len)
{
	int seq = 0, err = 0;
	socklen_t l = sizeof(seq), el = sizeof(err);
	int ret = select_queue(sk, TCP_RECV_QUEUE);
	if (!ret && getsockopt(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &l))
		ret = -errno;
	if (!ret)
		ret = inject(s, (uint32_t)seq, 0, TH_RST);
	if (!ret && state_of(sk) != TCP_CLOSE)
		ret = -EPROTO;
	if (!ret && getsockopt(sk, SOL_SOCKET, SO_ERROR, &err, &el))
		ret = -errno;
	if (ret)
		snprintf(why, len, "cannot close the connection (--tcp-close): %s", strerror(-ret));
	return ret;
}


static int state_of(int sk)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	return getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -errno : ti.tcpi_state;
}

/* Ours: taken as sent (TCP_SEND_QUEUE), or pushed behind what is unsent. */
static int our_fin(int sk, const InetSkEntry *s)
{
	int unsent = s->fin_unsent || s->unsent;
	int ret = select_queue(sk, unsent ? TCP_NO_QUEUE : TCP_SEND_QUEUE);
	if (!ret && shutdown(sk, SHUT_WR))
		ret = -errno;
	if (!ret)
		ret = select_queue(sk, TCP_NO_QUEUE);
	return ret;
}

/* The peer's FIN: at rcv_nxt, acknowledging what the peer had then. */
static int their_fin(const InetSkEntry *s)
{
	uint32_t una = s->snd_seq - (uint32_t)s->send_queue.len - (uint32_t)tcp_fin_unacked(s);
	return inject(s, s->rcv_seq - 1, una, TH_FIN | TH_ACK);
}

/* Each step, then the state it must have led to. */
static int step(int sk, const InetSkEntry *s, int what, int want, char *why, size_t len)
{
	static const char *const names[] = { "our FIN", "the peer's FIN", "the peer's ACK" };
	int ret = what == 0   ? our_fin(sk, s)
		  : what == 1 ? their_fin(s)
			      : inject(s, s->rcv_seq, s->snd_seq, TH_ACK);
	if (ret) {
		snprintf(why, len, "%s: %s%s", names[what], strerror(-ret),
			 ret == -EPERM && what ? " (needs CAP_NET_RAW)" : "");
		return ret;
	}
	int now = state_of(sk);
	for (int i = 0; now != want && now >= 0 && i < 1000; i++) { /* a softirq away */
		usleep(1000);
		now = state_of(sk);
	}
	if (now != want) {
		snprintf(why, len, "%s led to state %s, not %s", names[what],
			 now < 0 ? strerror(-now) : tcp_state_name((unsigned)now),
			 tcp_state_name((unsigned)want));
		return -EPROTO;
	}
	return 0;
}

int tcp_fins_restore(int sk, const InetSkEntry *s, char *why, size_t len)
{
	/* Fault injection (tests): the FINs forgotten, which restore --verify
	 * must catch. */
	const char *fault = getenv("CKPT_FAULT");
	if (fault && !strcmp(fault, "skip-tcp-fins"))
		return 0;
	switch (s->state) {
	case TCP_FIN_WAIT1:
		return step(sk, s, 0, TCP_FIN_WAIT1, why, len);
	case TCP_FIN_WAIT2:
		return step(sk, s, 0, TCP_FIN_WAIT1, why, len)
			       ?: step(sk, s, 2, TCP_FIN_WAIT2, why, len);
	case TCP_CLOSE_WAIT:
		return step(sk, s, 1, TCP_CLOSE_WAIT, why, len);
	case TCP_LAST_ACK:
		return step(sk, s, 1, TCP_CLOSE_WAIT, why, len)
			       ?: step(sk, s, 0, TCP_LAST_ACK, why, len);
	case TCP_CLOSING:
		return step(sk, s, 0, TCP_FIN_WAIT1, why, len)
			       ?: step(sk, s, 1, TCP_CLOSING, why, len);
	}
	return 0;
}
