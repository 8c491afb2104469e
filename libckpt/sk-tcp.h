/*
 * sk-tcp: a TCP connection's state in repair mode, and the FINs of a
 * half-closed one (sk-tcp.c).
 */
#ifndef CKPT_SK_TCP_H
#define CKPT_SK_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "fdinfo.pb-c.h"

/* What a connection state says of the two FINs. */
struct tcp_fins {
	int sent;     /* ours is in the send queue: it took one sequence number */
	int acked;    /* and the peer acknowledged it */
	int received; /* the peer's came in: it took one sequence number */
};

/* TCP_REPAIR on (1) or off (0, or TCP_REPAIR_OFF_NO_WP), CAP_NET_ADMIN
 * effective for this call alone (a user's worker holds it permitted). */
int tcp_set_repair(int sk, int on);

/* Dump: the state, sequence numbers, queues, options and window of a
 * connection in repair mode into s (its state from sock_diag, settled). */
int tcp_read_conn(struct arena *a, int sk, InetSkEntry *s);

/* Dump, a connection in repair mode whose peer is outside the tree: wait
 * (until deadline_ms, CLOCK_MONOTONIC) for the peer to acknowledge what
 * was sent to it.  0 once nothing is in flight, -ETIMEDOUT. */
int tcp_wait_acked(int sk, long long deadline_ms);
long long tcp_now_ms(void);

/* Restore, on a new socket: repair mode and the sequence numbers, before
 * bind and connect; then the options, queues and window. */
int tcp_prepare_conn(int sk, const InetSkEntry *s);
int tcp_fill_conn(int sk, const InetSkEntry *s, char *why, size_t len);

/* "ESTABLISHED", ... (the kernel's TCP_* states), "?" past them. */
const char *tcp_state_name(unsigned state);

/* A connection state sk-inet.c dumps in repair mode (ESTABLISHED, the
 * half-closed ones, SYN_SENT): 1 and *f filled, else 0. */
int tcp_conn_state(unsigned state, struct tcp_fins *f);
/* The entry is such a connection (TCP, one of those states). */
int tcp_is_conn(const InetSkEntry *s);
/* Our FIN, when it was sent and is not acknowledged yet: 1 (it counts in
 * SIOCOUTQ and SIOCOUTQNSD, though no byte of the queue is it). */
int tcp_fin_unacked(const InetSkEntry *s);

/* The sequence numbers a restored socket starts from in repair mode:
 * the dumped ones less the queues and less the FINs, which come back
 * last (tcp_fins_restore). */
uint32_t tcp_send_start(const InetSkEntry *s);
uint32_t tcp_recv_start(const InetSkEntry *s);
/* The window as it was before the peer's FIN came in (rcv_wup may not
 * lie past the restored rcv_nxt). */
void tcp_fin_window(const InetSkEntry *s, uint32_t *rcv_wnd, uint32_t *rcv_wup);

/* Does the restore of s inject a segment of the peer (its FIN, or its ACK
 * of ours: CAP_NET_RAW)? */
int tcp_fin_needs_raw(const InetSkEntry *s);

/* May a connection dumped in state `dumped` be in state `now` right after
 * the restore?  The dumped state, or one its peer alone moved it to since
 * (its FIN or ACK came in; CLOSE: it went on to TIME_WAIT, or LAST_ACK
 * ended).  Never CLOSE from ESTABLISHED or CLOSE_WAIT: a reset. */
int tcp_state_follows(unsigned dumped, unsigned now);

/* In repair mode, once every socket of the tree exists: the FINs of the
 * dumped state, in its order, and the peer's acknowledgement of ours. */
int tcp_fins_restore(int sk, const InetSkEntry *s, char *why, size_t len);

/* restore --tcp-close, in repair mode, in place of the FINs: a RST from
 * the peer's address at our rcv_nxt, so that the connection is closed as
 * a peer's reset closes it (CLOSE; a read gives what was received, then
 * end of file; a write EPIPE); the reset's error, which the program never
 * saw, is taken (SO_ERROR).  Nothing reaches the peer. */
int tcp_close_restored(int sk, const InetSkEntry *s, char *why, size_t len);

#endif
