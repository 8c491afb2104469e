/*
 * sk-ports: the ports a restore binds, as this node holds them; see
 * sk-ports.h.  Every question is answered from one sock_diag dump of the
 * protocol's sockets (both families), each socket compared with the
 * image's by its local end: same port, and addresses that overlap (equal,
 * or one of them a wildcard that reaches the other's family).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sk-opts.h"
#include "sk-ports.h"
#include "sk-raw.h"
#include "sk-tcp.h"

static int proto_of(const InetSkEntry *s)
{
	return s->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
}

static int connected(const InetSkEntry *s)
{
	return s->has_dst_addr && s->dst_port && (s->type == SOCK_DGRAM || tcp_is_conn(s));
}

void sk_ports_local(const InetSkEntry *s, struct inet_end *e)
{
	static const uint8_t zero[16];
	inet_end_set(e, (int)s->family, s->has_src_addr ? s->src_addr.data : zero, s->src_port);
}

void sk_ports_peer(const InetSkEntry *s, struct inet_end *e)
{
	static const uint8_t zero[16];
	inet_end_set(e, (int)s->family, s->has_dst_addr ? s->dst_addr.data : zero, s->dst_port);
}

const char *sk_ports_name(const InetSkEntry *s, char *buf, size_t len)
{
	struct inet_end e;
	char a[64], b[64] = "";
	sk_ports_local(s, &e);
	inet_end_str(&e, a, sizeof(a));
	if (connected(s)) {
		sk_ports_peer(s, &e);
		strcpy(b, " -> ");
		inet_end_str(&e, b + 4, sizeof(b) - 4);
	}
	snprintf(buf, len, "socket:[%llu] %s %s%s", (unsigned long long)s->ino,
		 inet_kind_name(s), a, b);
	return buf;
}

static int is_v4(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(a, prefix, 12);
}

/* Could socket h (of this node) and an image's socket at `me` (IPv6 only
 * or not) share an address?  A wildcard reaches its own family, and an
 * IPv6 wildcard IPv4 too unless IPV6_V6ONLY. */
static int ends_overlap(const struct inet_end *x, int x_v6only, const struct inet_end *y,
			int y_v6only)
{
	const uint8_t *a = x->addr, *b = y->addr;
	if (x->port != y->port)
		return 0;
	if (is_v4(a) != is_v4(b)) {
		const uint8_t *v6 = is_v4(a) ? b : a;
		int v6only = is_v4(a) ? y_v6only : x_v6only;
		return inet_addr_any(v6) && !v6only;
	}
	return !memcmp(a, b, 16) || inet_addr_any(a) || inet_addr_any(b);
}

static int overlaps(const struct inet_diag *h, const struct inet_end *me, int me_v6only)
{
	return ends_overlap(&h->local, h->v6only, me, me_v6only);
}

static int is_ours(const struct inet_diag *h, const uint64_t *ours, size_t nr)
{
	for (size_t i = 0; h->ino && i < nr; i++)
		if (ours[i] == h->ino)
			return 1;
	return 0;
}

static int v6only_of(const InetSkEntry *s)
{
	return s->family == AF_INET6 && sk_opts_int(s, IPPROTO_IPV6, IPV6_V6ONLY, s->v6only) != 0;
}

/* The first socket that holds s's port and is neither TIME_WAIT nor ours. */
static const struct inet_diag *first_live(const struct inet_diag_table *t, const InetSkEntry *s,
					  const uint64_t *ours, size_t nr)
{
	struct inet_end me;
	sk_ports_local(s, &me);
	for (size_t i = 0; i < t->nr; i++) {
		const struct inet_diag *h = &t->v[i];
		if (h->state != TCP_TIME_WAIT && !is_ours(h, ours, nr) &&
		    overlaps(h, &me, v6only_of(s)))
			return h;
	}
	return NULL;
}

/* "inode N, pid P"; a socket no process holds, by its state. */
static void describe(const struct inet_diag *h, char *buf, size_t len)
{
	if (!h->ino) {
		snprintf(buf, len, "a closed connection still in state %s",
			 tcp_state_name(h->state));
		return;
	}
	pid_t pid = sk_outside_holder(NULL, h->ino);
	if (pid)
		snprintf(buf, len, "inode %llu, pid %d", (unsigned long long)h->ino, pid);
	else
		snprintf(buf, len, "inode %llu", (unsigned long long)h->ino);
}

static int destroy_time_wait(const struct inet_diag_table *t, const InetSkEntry *s, size_t *cleared)
{
	struct inet_end me;
	sk_ports_local(s, &me);
	for (size_t i = 0; i < t->nr; i++) {
		const struct inet_diag *h = &t->v[i];
		if (h->state != TCP_TIME_WAIT || !overlaps(h, &me, v6only_of(s)))
			continue;
		int ret = sk_diag_destroy(h);
		if (ret && ret != -ENOENT) /* ENOENT: its time ran out meanwhile */
			return ret;
		(*cleared)++;
	}
	return 0;
}

static void why_not_cleared(int err, char *why, size_t len)
{
	snprintf(why, len, "its port is held by TIME_WAIT sockets, which cannot be closed: %s%s",
		 strerror(-err),
		 err == -EPERM	      ? " (CAP_NET_ADMIN)"
		 : err == -EOPNOTSUPP ? " (a kernel without CONFIG_INET_DIAG_DESTROY)"
				      : "");
}

int sk_ports_clear(const InetSkEntry *s, const uint64_t *ours, size_t nr, char *why, size_t len)
{
	struct inet_diag_table t;
	char who[96];
	size_t cleared = 0;
	int ret = sk_diag_inet_proto(&t, IPPROTO_TCP);
	if (ret) {
		snprintf(why, len, "port in use, and sock_diag fails: %s", strerror(-ret));
		return -EADDRINUSE;
	}
	const struct inet_diag *live = first_live(&t, s, ours, nr);
	if (live) {
		describe(live, who, sizeof(who));
		snprintf(why, len, "port taken by a live socket (%s)", who);
		ret = -EADDRINUSE;
	} else if ((ret = destroy_time_wait(&t, s, &cleared))) {
		why_not_cleared(ret, why, len);
	} else if (!cleared) {
		snprintf(why, len, "port in use, by no socket sock_diag shows");
		ret = -EADDRINUSE;
	} else {
		pr_info("socket:[%llu]: port %u: closed %zu TIME_WAIT sockets that held it",
			(unsigned long long)s->ino, s->src_port, cleared);
	}
	free(t.v);
	return ret;
}

/* Socket h has s's 4-tuple. */
static int same_conn(const struct inet_diag *h, const InetSkEntry *s)
{
	struct inet_end me, peer;
	sk_ports_local(s, &me);
	sk_ports_peer(s, &peer);
	return inet_end_eq(&h->local, &me) && inet_end_eq(&h->remote, &peer);
}

int sk_ports_clear_conn(const InetSkEntry *s, char *why, size_t len)
{
	struct inet_diag_table t;
	int ret = sk_diag_inet_proto(&t, IPPROTO_TCP), found = 0;
	for (size_t i = 0; !ret && i < t.nr && !found; i++) {
		const struct inet_diag *h = &t.v[i];
		if (!same_conn(h, s))
			continue;
		found = 1;
		if (h->state != TCP_TIME_WAIT) {
			char who[96];
			describe(h, who, sizeof(who));
			snprintf(why, len, "its 4-tuple is taken by a live socket (%s)", who);
			ret = -EADDRNOTAVAIL;
		} else if ((ret = sk_diag_destroy(h)) && ret != -ENOENT) {
			why_not_cleared(ret, why, len);
		} else {
			ret = 0;
			pr_info("socket:[%llu]: closed the TIME_WAIT socket of its 4-tuple",
				(unsigned long long)s->ino);
		}
	}
	free(t.v);
	if (!ret && !found) {
		snprintf(why, len, "connect: %s", strerror(EADDRNOTAVAIL));
		ret = -EADDRNOTAVAIL;
	}
	return ret;
}

/* ------------------------- before the restore ------------------------ */

/* A bind like the restore's, undone at once: 0, or -errno (EADDRINUSE). */
static int probe_bind(const InetSkEntry *s)
{
	char why[200];
	int sk = inet_new_socket(s, why, sizeof(why));
	if (sk < 0)
		return 0; /* the restore will say why */
	int ret = inet_bind_src(sk, s);
	close(sk);
	return ret;
}

/* The port of s (or its 4-tuple): free (0), held by TIME_WAIT sockets
 * only (1), or by a live socket (2, *live). */
static int probe_one(const InetSkEntry *s, const struct inet_diag_table *t,
		     const struct inet_diag **live)
{
	int tw = 0;
	if (tcp_is_conn(s)) {
		for (size_t i = 0; i < t->nr; i++)
			if (same_conn(&t->v[i], s)) {
				if (t->v[i].state != TCP_TIME_WAIT) {
					*live = &t->v[i];
					return 2;
				}
				tw = 1;
			}
		return tw;
	}
	if (probe_bind(s) != -EADDRINUSE)
		return 0;
	if ((*live = first_live(t, s, NULL, 0)))
		return 2;
	return s->type == SOCK_STREAM;
}

/* An inet socket the restore makes (not one the caller hands in with
 * --inherit-fd, which keeps its own namespace and port). */
static int made_here(const struct restore_files *rf, const FileEntry *e)
{
	return e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk && !files_inherited(rf, e);
}

/* (a raw socket's "port" is its protocol, a ping socket's its echo id,
 * UDP-Lite's its own table's: none is a TCP or UDP port) */
static int has_port(const struct restore_files *rf, const FileEntry *e)
{
	return made_here(rf, e) && e->inet_sk->has_src_addr && e->inet_sk->src_port &&
	       !e->inet_sk->has_protocol;
}

int sk_ports_check(const struct restore_files *rf, struct ports_check *out)
{
	struct inet_diag_table t[2] = { { 0 } }; /* TCP, UDP */
	int ret = 0, loaded[2] = { 0, 0 };
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; !ret && !out->taken && i < rf->nr_files; i++) {
		if (!has_port(rf, rf->files[i]))
			continue;
		const InetSkEntry *s = rf->files[i]->inet_sk;
		int k = s->type == SOCK_STREAM ? 0 : 1;
		if (!loaded[k] && (ret = sk_diag_inet_proto(&t[k], proto_of(s))))
			break;
		loaded[k] = 1;
		const struct inet_diag *live = NULL;
		int held = probe_one(s, &t[k], &live);
		if (held == 2) {
			out->taken = s;
			describe(live, out->holder, sizeof(out->holder));
		}
		out->time_wait |= held == 1;
	}
	free(t[0].v);
	free(t[1].v);
	if (ret)
		pr_err("the ports of the images: sock_diag: %s", strerror(-ret));
	return ret;
}

/* ------------------------- SO_REUSEPORT groups ----------------------- */

static int opt_on(const InetSkEntry *s, int opt, uint32_t old)
{
	return sk_opts_int(s, SOL_SOCKET, opt, old) != 0;
}

/* A bound socket (not a connection) of the images, made by the restore. */
static int bound_here(const struct restore_files *rf, const FileEntry *e)
{
	return has_port(rf, e) && !tcp_is_conn(e->inet_sk);
}

/* Could t and s, both bound, have shared their port as they are now?
 * UDP: both with SO_REUSEADDR shares it too (udp_lib_lport_inuse). */
static int shares_port(const InetSkEntry *s, const InetSkEntry *t)
{
	struct inet_end a, b;
	sk_ports_local(s, &a);
	sk_ports_local(t, &b);
	if (t == s || t->type != s->type || !ends_overlap(&a, v6only_of(s), &b, v6only_of(t)))
		return 0;
	return s->type == SOCK_STREAM || !opt_on(s, SO_REUSEADDR, s->reuseaddr) ||
	       !opt_on(t, SO_REUSEADDR, t->reuseaddr);
}

int sk_ports_left_reuseport(const struct restore_files *rf, const FileEntry *e)
{
	if (!bound_here(rf, e) || opt_on(e->inet_sk, SO_REUSEPORT, e->inet_sk->reuseport))
		return 0;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *t = rf->files[i];
		if (bound_here(rf, t) && opt_on(t->inet_sk, SO_REUSEPORT, t->inet_sk->reuseport) &&
		    shares_port(e->inet_sk, t->inet_sk))
			return 1;
	}
	return 0;
}

/* ---------------------------- private network ------------------------ */

/* Does socket t of the images receive what s sends? */
static int is_peer(const InetSkEntry *s, const InetSkEntry *t)
{
	struct inet_end dst, src, t_local, t_peer;
	sk_ports_peer(s, &dst);
	sk_ports_local(s, &src);
	sk_ports_local(t, &t_local);
	if (t == s || t->type != s->type || !t->src_port ||
	    inet_sk_protocol(t) != inet_sk_protocol(s))
		return 0;
	if (s->type == SOCK_STREAM) {
		sk_ports_peer(t, &t_peer);
		return tcp_is_conn(t) && inet_end_eq(&t_local, &dst) && inet_end_eq(&t_peer, &src);
	}
	return t_local.port == dst.port &&
	       (!memcmp(t_local.addr, dst.addr, 16) || inet_addr_any(t_local.addr));
}

static int peer_in_images(const struct restore_files *rf, const InetSkEntry *s)
{
	for (size_t i = 0; i < rf->nr_files; i++)
		if (made_here(rf, rf->files[i]) && is_peer(s, rf->files[i]->inet_sk))
			return 1;
	return 0;
}

static int inet_private(const struct restore_files *rf, const InetSkEntry *s,
			int (*is_local)(const uint8_t a[16], void *), void *arg, char *why,
			size_t len)
{
	struct inet_end me;
	char name[160];
	sk_ports_local(s, &me);
	if (!inet_addr_any(me.addr) && !inet_addr_loopback(me.addr) && !is_local(me.addr, arg)) {
		snprintf(why, len, "%s: bound to an address this node does not have",
			 sk_ports_name(s, name, sizeof(name)));
		return 0;
	}
	if (connected(s) && !peer_in_images(rf, s)) {
		snprintf(why, len, "%s: its peer is outside the job",
			 sk_ports_name(s, name, sizeof(name)));
		return 0;
	}
	return 1;
}

int sk_ports_private(const struct restore_files *rf, int (*is_local)(const uint8_t a[16], void *),
		     void *arg, char *why, size_t len)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (made_here(rf, e) && !inet_private(rf, e->inet_sk, is_local, arg, why, len))
			return 0;
		/* they see the namespace's own devices, portids and kernel state */
		if (e->type == FILE_TYPE__FILE_PACKET_SK || e->type == FILE_TYPE__FILE_NETLINK_SK) {
			snprintf(why, len, "socket:[%llu]: a %s socket sees the network namespace",
				 (unsigned long long)(e->packet_sk ? e->packet_sk->ino
								   : e->netlink_sk ? e->netlink_sk->ino : 0),
				 e->packet_sk ? "packet" : "netlink");
			return 0;
		}
		if (e->type == FILE_TYPE__FILE_UNIX_SK && e->unix_sk && e->unix_sk->has_name &&
		    e->unix_sk->name.len > 1 && !e->unix_sk->name.data[0]) {
			snprintf(why, len,
				 "socket:[%llu] @%.*s: an abstract unix socket name lives "
				 "in the network namespace",
				 (unsigned long long)e->unix_sk->ino, (int)e->unix_sk->name.len - 1,
				 (const char *)e->unix_sk->name.data + 1);
			return 0;
		}
	}
	return 1;
}

size_t sk_ports_addrs(const struct restore_files *rf, struct inet_end *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < rf->nr_files && n < max; i++) {
		if (!made_here(rf, rf->files[i]))
			continue;
		struct inet_end e;
		sk_ports_local(rf->files[i]->inet_sk, &e);
		e.port = 0;
		size_t k = 0;
		while (k < n && !inet_end_eq(&out[k], &e))
			k++;
		if (k == n && !inet_addr_any(e.addr) && !inet_addr_loopback(e.addr))
			out[n++] = e;
	}
	return n;
}
