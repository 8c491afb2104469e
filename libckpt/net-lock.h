/*
 * net-lock: the network lock of TCP connections whose peer is outside the
 * tree (--tcp-established).  Between the dump's read of such a connection
 * and its restore, no socket of ours holds it: a segment the peer sends
 * (a retransmission, a window probe) would be answered with a RST, and
 * the peer's end of the connection would be gone when ours comes back.
 * So the dump drops the connection's segments, both ways, from its read
 * on, in an nftables table of its own (libnftables), named in the images;
 * a dump that leaves the tree running, or fails, removes it at once; a
 * restore removes it once the tree is whole and about to run, and the
 * peer's retransmissions then reach the restored socket.  Segments the
 * restore writes itself as the peer's (FINs, sk-tcp.c) carry the mark
 * NET_LOCK_MARK, which the lock lets pass.
 */
#ifndef CKPT_NET_LOCK_H
#define CKPT_NET_LOCK_H

#include <stddef.h>
#include <sys/types.h>

#include "sk-diag.h"

#define NET_LOCK_MARK 0x636b7074 /* "ckpt" */
#define NET_LOCK_NAME_MAX 64

/* A fresh table name for the connections of user uid's tree. */
void net_lock_name(char *buf, size_t len, uid_t uid);

/* Is `name` a lock table the restoring user (uid; 0: anyone's) may
 * remove: one a dump of hers made?  (Crafted images name it.) */
int net_lock_name_ok(const char *name, uid_t uid);

/* One connection: our end and the peer's. */
struct net_lock_conn {
	struct inet_end local, peer;
};

/* Make table `name` dropping every segment of conns[n], both ways.
 * 0 or -errno, nftables' reason in why. */
int net_lock_add(const char *name, const struct net_lock_conn *conns, size_t n, char *why,
		 size_t why_len);

/* Remove table `name`; one already gone is no error. */
int net_lock_remove(const char *name, char *why, size_t why_len);

#endif
