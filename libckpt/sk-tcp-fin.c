/*
 * sk-tcp-fin: half-closed TCP connections (FIN_WAIT1, FIN_WAIT2,
 * CLOSE_WAIT, LAST_ACK, CLOSING), for sk-inet.c, which dumps and restores
 * them in repair mode as it does established ones.
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
 *   FIN_WAIT1   ours                 CLOSE_WAIT  theirs
 *   FIN_WAIT2   ours, acked          LAST_ACK    theirs, ours
 *   CLOSING     ours, theirs
 *
 * TIME_WAIT has no fd; SYN_SENT and SYN_RECV are refused by sk-inet.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <unistd.h>

#include "priv.h"
#include "sk-tcp-fin.h"

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
	return s->snd_seq - (uint32_t)s->send_queue.len - (uint32_t)f.sent;
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
		[TCP_FIN_WAIT1] = F(TCP_FIN_WAIT2) | F(TCP_CLOSING) | F(TCP_CLOSE),
		[TCP_FIN_WAIT2] = F(TCP_CLOSE),
		[TCP_LAST_ACK] = F(TCP_CLOSE),
		[TCP_CLOSING] = F(TCP_CLOSE),
	};
	if (dumped == now)
		return 1;
	return dumped < sizeof(next) / sizeof(next[0]) && now < 32 && (next[dumped] & F(now));
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
	if (!ret && sendto(raw, pkt, off + sizeof(struct tcphdr), 0, (struct sockaddr *)&to,
			   tolen) != (ssize_t)(off + sizeof(struct tcphdr)))
		ret = -errno;
	if (raw >= 0)
		close(raw);
	return ret;
}

/* ------------------------------- restore ------------------------------ */

static int select_queue(int sk, int q)
{
	return setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ? -errno : 0;
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
