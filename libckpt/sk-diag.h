/*
 * sk-diag: what the kernel tells about sockets through sock_diag
 * (NETLINK_SOCK_DIAG, spoken with libnl-3).  One dump lists every socket of
 * a family in our network namespace; the socket kinds (sk-unix.c,
 * sk-inet.c) look their sockets up in it by inode.
 */
#ifndef CKPT_SK_DIAG_H
#define CKPT_SK_DIAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>
#include <linux/inet_diag.h>

struct unix_diag {
	uint64_t ino;
	uint64_t peer;		   /* inode of the peer, 0 if none */
	uint8_t type;		   /* SOCK_STREAM, ... */
	uint8_t state;		   /* TCP_LISTEN, TCP_ESTABLISHED, TCP_CLOSE */
	uint8_t shutdown;	   /* RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
	uint32_t rqlen;		   /* listening: connections waiting; else bytes queued */
	uint32_t wqlen;		   /* listening: the backlog */
	uint32_t nr_icons;	   /* listening: connections not accepted yet */
	size_t icons_at;	   /* their inodes, in queue order: table's icons[at..] */
	uint32_t vfs_dev, vfs_ino; /* its socket file, when bound to a path */
	size_t name_len;	   /* bytes of name (0: unnamed) */
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct unix_diag_table {
	struct unix_diag *v;
	size_t nr, cap;
	uint32_t *icons; /* every listener's (unix_diag.icons_at) */
	size_t nr_icons, cap_icons;
};

/* Every unix socket of our network namespace, in arena `a` (a dump's
 * state lives in its arena: it goes away even when the dump fails). */
struct arena;
int sk_diag_unix(struct unix_diag_table *t, struct arena *a);
const struct unix_diag *sk_diag_unix_find(const struct unix_diag_table *t, uint64_t ino);

/* An address and port; an IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * so that the sockets of both families compare. */
struct inet_end {
	uint8_t addr[16];
	uint16_t port;
};

/* `family`'s address bytes (4 or 16) and a port in host order. */
void inet_end_set(struct inet_end *e, int family, const void *addr, uint32_t port);
int inet_end_eq(const struct inet_end *a, const struct inet_end *b);
int inet_addr_any(const uint8_t a[16]);	     /* 0.0.0.0 or :: */
int inet_addr_loopback(const uint8_t a[16]); /* 127/8 or ::1 */
/* "127.0.0.1:80", "[::1]:80" */
const char *inet_end_str(const struct inet_end *e, char *buf, size_t len);

struct inet_diag {
	uint64_t ino;	       /* 0: no socket file (TIME_WAIT) */
	uint8_t family, state; /* AF_INET/AF_INET6, TCP_* */
	uint8_t proto;	       /* IPPROTO_TCP, _UDP, _UDPLITE, _RAW (any raw socket) */
	uint8_t shutdown;      /* RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
	uint8_t v6only;
	uint32_t rqueue, wqueue;
	struct inet_end local, remote;
	struct inet_diag_sockid id; /* as the kernel gave it: names it for SOCK_DESTROY */
};

struct inet_diag_table {
	struct inet_diag *v;
	size_t nr, cap;
};

/* Every TCP, UDP, UDP-Lite and raw socket, IPv4 and IPv6, in arena `a`. */
int sk_diag_inet(struct inet_diag_table *t, struct arena *a);
const struct inet_diag *sk_diag_inet_find(const struct inet_diag_table *t, uint64_t ino);
/* Every socket of protocol `proto` (IPPROTO_TCP, _UDP) into *t, on the heap
 * (free(t->v)): what a restore asks about its ports. */
int sk_diag_inet_proto(struct inet_diag_table *t, int proto);

/* Close socket d in the kernel (SOCK_DESTROY; for a TIME_WAIT socket, its
 * end before its time).  Needs CAP_NET_ADMIN (raised here if permitted)
 * and a kernel with CONFIG_INET_DIAG_DESTROY: 0 or -errno. */
int sk_diag_destroy(const struct inet_diag *d);

/* A process outside the tree (tree NULL: any but us) holding
 * socket:[ino], or 0 (none, or none we may see: /proc/PID/fd). */
struct frozen_tree;
int sk_outside_holder(const struct frozen_tree *tree, uint64_t ino);

/* One sock_diag dump request of another family (packet and netlink
 * sockets: sk-packet.c, sk-netlink.c): parse gets each answer. */
struct nlmsghdr;
int sk_diag_dump(void *req, size_t len, int (*parse)(struct nlmsghdr *h, void *arg), void *arg);

/* SO_DOMAIN of fd `fd` of `pid` (a socket), or -errno. */
int sk_domain(pid_t pid, int fd);

#endif
