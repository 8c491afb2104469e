/*
 * sk-inet: TCP and UDP sockets, IPv4 and IPv6.
 *
 * Dump: sock_diag (sk-diag.c) gives each socket's state; addresses and
 * options are read through a duplicate of the target's fd.  Listening and
 * unconnected sockets are recorded as they are bound.  An established TCP
 * connection is dumped when its peer (found by its 4-tuple in sock_diag)
 * is one of the tree's sockets, frozen and restored with it; one whose
 * peer is outside the tree needs --tcp-established.  Once every fd of the
 * tree has been seen (dump_tree), each connection is put in repair mode
 * (TCP_REPAIR: the kernel stops sending on it), then its sequence numbers,
 * send and receive queues, window and negotiated options are read
 * (sk-tcp.c).  The dumped sockets stay in repair mode, so that when the
 * tree is killed they close silently (no FIN or RST reaches the peer);
 * with -R or -s they leave it.  Before the read, a connection whose peer
 * is outside the tree waits (500 ms at most) for the peer's ACK of what
 * is in flight: arriving once the tree is gone, it would be answered
 * with a RST (tcp_wait_acked).
 * A watchdog process turns repair mode off if the tree goes on after all
 * (a failed or killed dump).
 *
 * Restore: a connection is rebuilt in repair mode (sequence numbers and
 * queues set before and after a connect() that sends nothing), and leaves
 * repair mode in each restoring task (post_install), once every socket of
 * the tree exists, so that a loopback peer is never answered with a RST.
 *
 * A port held here by TIME_WAIT sockets (bind or listen: EADDRINUSE; a
 * connection's 4-tuple: EADDRNOTAVAIL) is freed by sk-ports.c, which
 * refuses, naming it, a live socket in the way.
 *
 * Options (SO_*, IP_*, IPV6_*, TCP_*, UDP_*) are sk-opts.c's table: set
 * before bind/connect, or late (after bind/listen/connect; for a
 * connection, once out of repair mode, which resets SO_REUSEADDR).  A
 * socket that cleared SO_REUSEPORT since it shared its port binds with
 * it on, and clears it once every socket is bound (sk_ports_left_reuseport).
 *
 * Half-closed connections (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK,
 * CLOSING) are dumped and restored as established ones, their FINs
 * apart: sk-tcp.c.  A connect() in progress (SYN_SENT) comes back bound,
 * and connects again in post_install, sending the same SYN.
 *
 * Raw, ICMP ping and UDP-Lite sockets are kept as UDP ones are, with
 * their protocol; what sets them apart is sk-raw.c's.
 *
 * Refused: datagrams received and not read, or held back unsent, in a
 * UDP (raw, ping, UDP-Lite) socket (check_state).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "proc.h"
#include "priv.h"
#include "ckpt/ckpt.h"
#include "file-kinds.h"
#include "inet-map.h"
#include "log.h"
#include "sk-diag.h"
#include "sk-opts.h"
#include "sk-ports.h"
#include "net-lock.h"
#include "sk-raw.h"
#include "sk-tcp.h"

#define MAX_QUEUE (64u << 20) /* bytes of one queue an image may claim */

struct repair_sk {
	pid_t pid;
	int fd;
	int sk; /* our duplicate, in repair mode once `on` */
	int on;
	InetSkEntry *entry;
	struct repair_sk *next;
};

/* The dump's state, in its arena (gone even when the dump fails). */
struct inet_dump {
	struct inet_diag_table diag;
	int loaded;
	struct repair_sk *conns; /* established connections, last seen first */
	char lock[NET_LOCK_NAME_MAX]; /* the network lock's table, "" if none */
	int locked;                   /* made by us (the watchdog: maybe) */
};

static int inet_match(const struct fd_dump *f)
{
	if (!S_ISSOCK(f->st->st_mode))
		return 0;
	int d = sk_domain(f->pid, f->fd);
	return d == AF_INET || d == AF_INET6;
}

static struct inet_dump *get_dump(struct fd_dump *f)
{
	struct inet_dump *d = *f->priv;
	if (!d && (d = arena_alloc(&f->fdump->a, sizeof(*d))))
		*f->priv = d;
	if (!d || d->loaded)
		return d;
	if (sk_diag_inet(&d->diag, &f->fdump->a))
		return NULL;
	d->loaded = 1;
	return d;
}

static int get_opt(int sk, int level, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);
	getsockopt(sk, level, opt, &v, &len);
	return v;
}

/* addr bytes and port of a sockaddr_in/in6 into the entry's fields. */
static int put_addr(struct arena *a, const struct sockaddr_storage *ss, ProtobufCBinaryData *addr,
		    uint32_t *port)
{
	const void *src;
	size_t len;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		src = &s6->sin6_addr;
		len = 16;
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;
		src = &s4->sin_addr;
		len = 4;
		*port = ntohs(s4->sin_port);
	}
	if (!(addr->data = arena_alloc(a, len)))
		return -ENOMEM;
	memcpy(addr->data, src, len);
	addr->len = len;
	return 0;
}

static int dump_addrs(struct arena *a, int sk, InetSkEntry *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int ret;
	if (getsockname(sk, (struct sockaddr *)&ss, &len))
		return -errno;
	s->has_src_addr = s->has_src_port = 1;
	if ((ret = put_addr(a, &ss, &s->src_addr, &s->src_port)))
		return ret;
	len = sizeof(ss);
	if (getpeername(sk, (struct sockaddr *)&ss, &len))
		return errno == ENOTCONN ? 0 : -errno;
	s->has_dst_addr = s->has_dst_port = 1;
	return put_addr(a, &ss, &s->dst_addr, &s->dst_port);
}

/* In SYN_SENT getpeername() says ENOTCONN: the peer sock_diag shows
 * (an IPv4 address there is v4-mapped). */
static int diag_peer(struct arena *a, const struct inet_diag *di, InetSkEntry *s)
{
	size_t len = s->family == AF_INET ? 4 : 16;
	if (s->has_dst_addr || di->state != TCP_SYN_SENT)
		return 0;
	if (!(s->dst_addr.data = arena_alloc(a, len)))
		return -ENOMEM;
	memcpy(s->dst_addr.data, di->remote.addr + 16 - len, len);
	s->dst_addr.len = len;
	s->dst_port = di->remote.port;
	s->has_dst_addr = s->has_dst_port = 1;
	return 0;
}

/* The shutdown state: sock_diag's, or for a socket it does not list (never
 * bound nor connected) what poll() tells.  POLLRDHUP is RCV_SHUTDOWN; a
 * lone SEND_SHUTDOWN does not show (it changes nothing such a socket could
 * do but send).  POLLHUP is both for a datagram socket, but for TCP it
 * only says "not connected" (zdtm socket-tcp-listen: a fresh client socket
 * came back shut down, and its first write after connect() failed). */
static void dump_shutdown(int sk, const struct inet_diag *di, InetSkEntry *s)
{
	struct pollfd p = { .fd = sk, .events = POLLRDHUP };
	s->has_shutdown = 1;
	s->shutdown = di->shutdown & 3;
	if (di->rqueue || di->wqueue || s->shutdown || s->state != TCP_CLOSE ||
	    poll(&p, 1, 0) != 1)
		return;
	if (s->type != SOCK_STREAM && (p.revents & POLLHUP))
		s->shutdown = 3;
	else if (p.revents & POLLRDHUP)
		s->shutdown = 1;
}

static int add_conn(struct fd_dump *f, struct inet_dump *d, InetSkEntry *s)
{
	struct repair_sk *c = arena_alloc(&f->fdump->a, sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct repair_sk){ f->pid, f->fd, -1, 0, s, d->conns };
	d->conns = c;
	return 0;
}

/* --skip-in-flight: connections a listener has not accepted yet are not
 * kept: the restored listener's queue is empty, and a client of the tree
 * comes back connected to nobody (its first send is reset), as CRIU's
 * option of that name does.  Only when asked: it changes what the program
 * sees. */
static int skip_in_flight(const struct fd_dump *f)
{
	return f->fdump->opts && f->fdump->opts->skip_in_flight;
}

/* The state decides what is kept; what cannot be is refused here. */
static int check_state(struct fd_dump *f, struct inet_dump *d, const struct inet_diag *di,
		       InetSkEntry *s)
{
	const char *what = inet_kind_name(s);
	/* Datagrams held back (UDP_CORK, MSG_MORE) live in the socket's write
	 * queue, which nothing can read back (zdtm socket_udp-corked: the
	 * restore passed, the datagram gone). */
	if (s->type != SOCK_STREAM && di->wqueue) {
		pr_err("pid %d: fd %d: %s: %s socket holding a datagram not sent yet "
		       "(UDP_CORK or MSG_MORE; %u bytes of write memory): not supported",
		       f->pid, f->fd, f->link, what, di->wqueue);
		return -ENOTSUP;
	}
	/* Datagrams received and not read yet: a datagram's sender cannot be
	 * put back with it (its address is someone else's port), and one
	 * restored from another address, or dropped, would be a silent
	 * change.  Read them first, or dump again: such a queue drains. */
	if (s->type != SOCK_STREAM && di->rqueue) {
		pr_err("pid %d: fd %d: %s: %s socket with datagrams received and not read yet "
		       "(%u bytes of read memory): not supported%s",
		       f->pid, f->fd, f->link, what, di->rqueue,
		       s->type == SOCK_RAW ? " (a raw socket gets a copy of every packet of its "
					     "protocol in its network namespace)"
					   : "");
		return -ENOTSUP;
	}
	if (s->type != SOCK_STREAM)
		return 0;
	if (di->state == TCP_LISTEN) {
		if (di->rqueue && !skip_in_flight(f)) {
			pr_err("pid %d: fd %d: %s: listening TCP socket with %u connections not "
			       "accepted yet, not supported (--skip-in-flight drops them)",
			       f->pid, f->fd, f->link, di->rqueue);
			return -ENOTSUP;
		}
		if (di->rqueue)
			pr_info("pid %d: fd %d: %s: %u connections not accepted yet are dropped "
				"(--skip-in-flight)",
				f->pid, f->fd, f->link, di->rqueue);
		s->has_backlog = 1;
		s->backlog = di->wqueue; /* sk_max_ack_backlog */
		return 0;
	}
	if (s->state == TCP_CLOSE)
		return 0;
	if (!tcp_is_conn(s)) {
		pr_err("pid %d: fd %d: %s: %s socket in state %s is not supported", f->pid, f->fd,
		       f->link, what, tcp_state_name(di->state));
		return -ENOTSUP;
	}
	return add_conn(f, d, s); /* its peer is looked for once all fds are seen */
}

/* sock_diag lists the sockets in the kernel's lookup tables: one never
 * bound nor connected is not there (nor is it in any state but CLOSE). */
static int fresh_socket(int sk, int type, uint64_t ino, struct inet_diag *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (type == SOCK_STREAM &&
	    (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &len) || ti.tcpi_state != TCP_CLOSE))
		return 0;
	*out = (struct inet_diag){ .ino = ino,
				   .family = (uint8_t)get_opt(sk, SOL_SOCKET, SO_DOMAIN),
				   .state = TCP_CLOSE };
	return 1;
}

/* What sock_diag (or /proc for raw and ping sockets, sk-raw.c) says of
 * socket sk, in *di; refused by name when it is of no kind we keep. */
static int find_state(struct fd_dump *f, struct inet_dump *d, int sk, int type, int proto,
		      struct inet_diag *di)
{
	int family = get_opt(sk, SOL_SOCKET, SO_DOMAIN);
	if (!inet_kind_supported(family, type, proto)) {
		pr_err("pid %d: fd %d: %s: inet socket of type %d, protocol %d is not supported",
		       f->pid, f->fd, f->link, type, proto);
		return -ENOTSUP;
	}
	const struct inet_diag *found = sk_diag_inet_find(&d->diag, f->st->st_ino);
	if (type == SOCK_RAW || (type == SOCK_DGRAM && proto != IPPROTO_UDP &&
				 proto != IPPROTO_UDPLITE)) {
		int ret = inet_proc_state(f->pid, f->fd, sk, type, f->st->st_ino, di);
		/* raw_diag tells a lone SEND_SHUTDOWN, which poll() does not */
		if (!ret && found && found->proto == IPPROTO_RAW && type == SOCK_RAW)
			di->shutdown = found->shutdown;
		return ret;
	}
	if (found && (found->proto == proto || type == SOCK_STREAM)) {
		*di = *found;
		return 0;
	}
	if (fresh_socket(sk, type, f->st->st_ino, di))
		return 0;
	pr_err("pid %d: fd %d: %s: inet socket of type %d, protocol %d: not in sock_diag",
	       f->pid, f->fd, f->link, type, proto);
	return -ENOTSUP;
}

/* The peer of a connected raw or ping socket, from /proc (sk-raw.c):
 * getpeername() says ENOTCONN where connect() was given port 0. */
static int proc_peer(struct arena *a, const struct inet_diag *di, InetSkEntry *s)
{
	size_t len = s->family == AF_INET ? 4 : 16;
	if (s->has_dst_addr || s->state != TCP_ESTABLISHED || s->type == SOCK_STREAM)
		return 0;
	if (!(s->dst_addr.data = arena_alloc(a, len)))
		return -ENOMEM;
	memcpy(s->dst_addr.data, di->remote.addr + 16 - len, len);
	s->dst_addr.len = len;
	s->dst_port = 0;
	s->has_dst_addr = s->has_dst_port = 1;
	return 0;
}

static int inet_dump(struct fd_dump *f, FileEntry *e)
{
	struct inet_dump *d = get_dump(f);
	if (!d)
		return -ENOMEM;
	int sk = files_getfd(f->pid, f->fd), ret = 0;
	if (sk < 0)
		return sk;
	int type = get_opt(sk, SOL_SOCKET, SO_TYPE), proto = get_opt(sk, SOL_SOCKET, SO_PROTOCOL);
	struct inet_diag state;
	const struct inet_diag *di = &state;
	if ((ret = find_state(f, d, sk, type, proto, &state))) {
		close(sk);
		return ret;
	}
	InetSkEntry *s = arena_alloc(&f->fdump->a, sizeof(*s));
	if (!s) {
		close(sk);
		return -ENOMEM;
	}
	inet_sk_entry__init(s);
	e->type = FILE_TYPE__FILE_INET_SK;
	e->inet_sk = s;
	s->ino = di->ino;
	s->family = di->family;
	s->type = (uint32_t)type;
	/* TCP and UDP images stay as they were: the protocol follows the type */
	if (inet_kind_other(type, proto))
		s->has_protocol = 1, s->protocol = (uint32_t)proto;
	/* TCP_BOUND_INACTIVE (13, newer kernels): bound, a CLOSE socket */
	s->state = di->state == 13 ? TCP_CLOSE : di->state;
	char why[160] = "";
	ret = dump_addrs(&f->fdump->a, sk, s);
	if (!ret)
		ret = diag_peer(&f->fdump->a, di, s);
	if (!ret && inet_kind_other(type, proto))
		ret = proc_peer(&f->fdump->a, di, s);
	if (ret) {
		pr_err("pid %d: fd %d: %s: cannot read its addresses: %s", f->pid, f->fd, f->link,
		       strerror(-ret));
		close(sk);
		return ret;
	}
	ret = sk_opts_dump(&f->fdump->a, sk, s, why, sizeof(why));
	if (!ret)
		dump_shutdown(sk, di, s);
	close(sk);
	if (ret) {
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->link,
		       why[0] ? why : strerror(-ret));
		return ret;
	}
	return check_state(f, d, di, s);
}

/* ---------------------- established connections --------------------- */

int inet_needs_repair(const struct restore_files *rf)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk && tcp_is_conn(e->inet_sk))
			return 1;
	}
	return 0;
}

int inet_unlock(const struct restore_files *rf)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		char why[256];
		if (e->type != FILE_TYPE__FILE_INET_SK || !e->inet_sk || !e->inet_sk->net_lock)
			continue;
		int seen = 0;
		for (size_t j = 0; j < i && !seen; j++)
			seen = rf->files[j]->type == FILE_TYPE__FILE_INET_SK && rf->files[j]->inet_sk &&
			       rf->files[j]->inet_sk->net_lock &&
			       !strcmp(rf->files[j]->inet_sk->net_lock, e->inet_sk->net_lock);
		if (!seen && net_lock_remove(e->inet_sk->net_lock, why, sizeof(why))) {
			pr_err("network lock %s of the connections to peers outside the tree: cannot "
			       "remove it: %s",
			       e->inet_sk->net_lock, why);
			return -EIO;
		}
	}
	return 0;
}

/* Leaving repair mode turns SO_REUSEADDR off (sk_reuse = SK_NO_REUSE):
 * the program's value goes back. */
static void repair_off(int sk, const InetSkEntry *s)
{
	int reuse = (int)sk_opts_int(s, SOL_SOCKET, SO_REUSEADDR, 0);
	tcp_set_repair(sk, 0);
	setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse));
}

static void unlock(struct inet_dump *d)
{
	char why[256];
	if (!d->locked)
		return;
	if (net_lock_remove(d->lock, why, sizeof(why)))
		pr_err("network lock %s: cannot remove it: %s", d->lock, why);
	else
		d->locked = 0;
}

static void repair_off_all(struct inet_dump *d)
{
	unlock(d);
	for (struct repair_sk *c = d->conns; c; c = c->next) {
		if (c->on)
			repair_off(c->sk, c->entry);
		c->on = 0;
	}
}

/* ------------------------------ watchdog ----------------------------- */

/*
 * Connections in repair mode stay mute.  A dump that kills the tree wants
 * that (they close silently), but if the tree goes on instead (the dump
 * failed after this point, or ckptctl was killed: the kernel lets its
 * tracees go), they must leave repair mode.  A watchdog process, outside
 * our children (double fork), holds a duplicate of each socket and watches
 * its task: traced (frozen) → wait; killed or gone → done; running
 * untraced → repair mode off.
 */
enum task_fate { TASK_FROZEN, TASK_DYING, TASK_RUNNING };

static int has_sigkill(const char *line)
{
	return line && (strtoull(strchr(line, ':') + 1, NULL, 16) & (1ULL << (SIGKILL - 1)));
}

static int exiting(pid_t pid)
{
	char buf[1024];
	unsigned flags = 0;
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	if (!p || sscanf(p, "%*c %*d %*d %*d %*d %*d %u", &flags) != 1)
		return 1;
	return !!(flags & 0x4); /* PF_EXITING */
}

static enum task_fate fate_of(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return TASK_DYING;
	buf[n] = '\0';
	const char *state = strstr(buf, "\nState:\t"), *tracer = strstr(buf, "\nTracerPid:\t");
	if (!state || state[8] == 'Z' || state[8] == 'X' || exiting(pid))
		return TASK_DYING;
	/* SIGKILL is queued before the tracer lets the tree go */
	if (has_sigkill(strstr(buf, "\nShdPnd:\t")) || has_sigkill(strstr(buf, "\nSigPnd:\t")))
		return TASK_DYING;
	return tracer && atoi(tracer + 12) ? TASK_FROZEN : TASK_RUNNING;
}

static void watch(struct inet_dump *d)
{
	/* an hour frozen is more than any dump: give up then */
	for (int round = 0; round < 3600 * 1000; round++) {
		int left = 0;
		for (struct repair_sk *c = d->conns; c; c = c->next) {
			if (c->sk < 0)
				continue;
			enum task_fate f = fate_of(c->pid);
			if (f == TASK_FROZEN) {
				left++;
				continue;
			}
			if (f == TASK_RUNNING && get_opt(c->sk, IPPROTO_TCP, TCP_REPAIR) == 1) {
				/* forked before the lock: it may or may not exist */
				char why[256];
				if (d->lock[0])
					net_lock_remove(d->lock, why, sizeof(why));
				d->lock[0] = '\0';
				repair_off(c->sk, c->entry);
			}
			close(c->sk);
			c->sk = -1;
		}
		if (!left)
			return;
		usleep(1000);
	}
}

/* Keep only the sockets: no pipe or file of ckptctl may stay open here. */
static void close_others(const struct inet_dump *d)
{
	int max = 2;
	for (const struct repair_sk *c = d->conns; c; c = c->next)
		max = c->sk > max ? c->sk : max;
	for (int fd = 0; fd <= max; fd++) {
		int keep = 0;
		for (const struct repair_sk *c = d->conns; c; c = c->next)
			keep |= c->sk == fd;
		if (!keep)
			close(fd);
	}
	syscall(SYS_close_range, (unsigned)max + 1, ~0u, 0);
}

static int start_watchdog(struct inet_dump *d)
{
	pid_t child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		if (fork() == 0) {
			close_others(d);
			watch(d);
		}
		_exit(0);
	}
	int status;
	if (waitpid(child, &status, 0) != child || status)
		return -ECHILD;
	return 0;
}

static int tree_socket(const struct files_dump *fdump, uint64_t ino);
static uint64_t peer_of(const struct inet_dump *d, const InetSkEntry *s);

/* The owner of the tree's root: whose the lock is (net_lock_name_ok). */
static uid_t tree_owner(const struct files_dump *fdump)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d", fdump->tree->tasks[0].pid);
	return stat(path, &st) ? 0 : st.st_uid;
}

/* The connections whose peer is outside the tree, locked (net-lock.h)
 * once their peers acknowledged what was in flight, before they are
 * read; each entry names the table. */
static int lock_outside(struct files_dump *fdump, struct inet_dump *d)
{
	size_t n = 0, i = 0;
	for (struct repair_sk *c = d->conns; c; c = c->next)
		n += !tree_socket(fdump, peer_of(d, c->entry));
	if (!n)
		return 0;
	struct net_lock_conn *v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (struct repair_sk *c = d->conns; c; c = c->next) {
		if (tree_socket(fdump, peer_of(d, c->entry)))
			continue;
		sk_ports_local(c->entry, &v[i].local);
		sk_ports_peer(c->entry, &v[i].peer);
		c->entry->net_lock = d->lock;
		i++;
	}
	char why[256];
	int ret = net_lock_add(d->lock, v, n, why, sizeof(why));
	free(v);
	d->locked = !ret;
	if (ret) {
		for (struct repair_sk *c = d->conns; c; c = c->next)
			c->entry->net_lock = NULL;
		pr_err("pid %d: fd %d: socket:[%llu]: the network lock of the connections to peers "
		       "outside the tree: %s",
		       d->conns->pid, d->conns->fd, (unsigned long long)d->conns->entry->ino, why);
		char w2[256];
		net_lock_remove(d->lock, w2, sizeof(w2)); /* what part of it was made */
	}
	return ret;
}

/* How long the dump waits for a peer outside the tree to acknowledge what
 * is in flight to it: RFC 1122's bound on a delayed ACK (sk-tcp.c). */
#define ACK_WAIT_MS 500

/* Under the watchdog's eye, every connection into repair mode first
 * (nothing more leaves them), then read them. */
static int repair_all(struct files_dump *fdump, struct inet_dump *d)
{
	struct repair_sk *c, *bad = NULL;
	int ret = 0;
	for (c = d->conns; c && !bad; c = c->next) {
		c->sk = files_getfd(c->pid, c->fd);
		if (c->sk < 0) {
			ret = c->sk;
			bad = c;
		}
	}
	/* named before the watchdog: it removes the lock if the tree goes on */
	for (c = d->conns; c && !d->lock[0]; c = c->next)
		if (!tree_socket(fdump, peer_of(d, c->entry)))
			net_lock_name(d->lock, sizeof(d->lock), tree_owner(fdump));
	if (!bad && (ret = start_watchdog(d)))
		bad = d->conns;
	for (c = d->conns; c && !bad; c = c->next) {
		ret = tcp_set_repair(c->sk, 1);
		c->on = !ret;
		if (ret)
			bad = c;
	}
	/* a peer outside the tree: its ACKs due before the gap (sk-tcp.c) */
	long long deadline = tcp_now_ms() + ACK_WAIT_MS;
	for (c = d->conns; c && !bad; c = c->next)
		if (!tree_socket(fdump, peer_of(d, c->entry)) &&
		    tcp_wait_acked(c->sk, deadline) == -ETIMEDOUT)
			pr_debug("pid %d: fd %d: socket:[%llu]: dumped with bytes in flight, "
				 "not acknowledged in %d ms",
				 c->pid, c->fd, (unsigned long long)c->entry->ino, ACK_WAIT_MS);
	if (!bad && (ret = lock_outside(fdump, d))) {
		repair_off_all(d);
		return ret;
	}
	for (c = d->conns; c && !bad; c = c->next)
		if ((ret = tcp_read_conn(&fdump->a, c->sk, c->entry)))
			bad = c;
	if (bad) {
		pr_err("pid %d: fd %d: socket:[%llu]: cannot dump the connection in repair mode: "
		       "%s",
		       bad->pid, bad->fd, (unsigned long long)bad->entry->ino, strerror(-ret));
		repair_off_all(d);
	}
	return ret;
}

/* Is socket `ino` one of the tree's? */
static int tree_socket(const struct files_dump *fdump, uint64_t ino)
{
	for (size_t i = 0; i < fdump->nr; i++) {
		const FileEntry *e = fdump->descs[i].entry;
		if (e && e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk && e->inet_sk->ino == ino)
			return 1;
	}
	return 0;
}

/* The peer of connection s, by its 4-tuple reversed: its inode, or 0. */
static uint64_t peer_of(const struct inet_dump *d, const InetSkEntry *s)
{
	struct inet_end me, peer;
	sk_ports_local(s, &me);
	sk_ports_peer(s, &peer);
	for (size_t i = 0; i < d->diag.nr; i++) {
		const struct inet_diag *p = &d->diag.v[i];
		if (p->proto == IPPROTO_TCP && p->ino && inet_end_eq(&p->local, &peer) &&
		    inet_end_eq(&p->remote, &me))
			return p->ino;
	}
	return 0;
}

/* Is the peer of connection s one a listener has not accepted yet?  Such a
 * socket has no file: sock_diag shows it with inode 0. */
static int peer_in_flight(const struct inet_dump *d, const InetSkEntry *s)
{
	struct inet_end me, peer;
	sk_ports_local(s, &me);
	sk_ports_peer(s, &peer);
	for (size_t i = 0; i < d->diag.nr; i++) {
		const struct inet_diag *p = &d->diag.v[i];
		if (p->proto == IPPROTO_TCP && !p->ino && inet_end_eq(&p->local, &peer) &&
		    inet_end_eq(&p->remote, &me))
			return 1;
	}
	return 0;
}

/* --skip-in-flight: a connection of the tree whose peer is dropped with
 * its listener's queue comes back alone; the peer's listener resets it
 * once it talks (as CRIU's option does). */
static void mark_dropped_peers(const struct files_dump *fdump, const struct inet_dump *d)
{
	if (!fdump->opts || !fdump->opts->skip_in_flight)
		return;
	for (struct repair_sk *c = d->conns; c; c = c->next)
		if (peer_in_flight(d, c->entry))
			c->entry->has_peer_dropped = c->entry->peer_dropped = 1;
}

/* Without --tcp-established, only connections whose both ends are the
 * tree's are dumped: both are frozen now and come back together. */
static int check_peers(const struct files_dump *fdump, const struct inet_dump *d)
{
	if (fdump->opts && fdump->opts->tcp_established)
		return 0;
	for (const struct repair_sk *c = d->conns; c; c = c->next) {
		if (c->entry->peer_dropped || tree_socket(fdump, peer_of(d, c->entry)))
			continue;
		struct inet_end e;
		char src[64], dst[64];
		sk_ports_local(c->entry, &e);
		inet_end_str(&e, src, sizeof(src));
		sk_ports_peer(c->entry, &e);
		inet_end_str(&e, dst, sizeof(dst));
		pr_err("pid %d: fd %d: socket:[%llu]: established TCP connection %s -> %s: "
		       "its peer is outside the tree (dump it with --tcp-established)",
		       c->pid, c->fd, (unsigned long long)c->entry->ino, src, dst);
		return -ENOTSUP;
	}
	return 0;
}

static int inet_dump_tree(struct files_dump *fdump, void **priv)
{
	struct inet_dump *d = *priv;
	int ret = 0;
	if (!d)
		return 0;
	mark_dropped_peers(fdump, d);
	if (d->conns && !(ret = check_peers(fdump, d)))
		ret = repair_all(fdump, d);
	/* Fault injection (tests): fail here as a later step of the dump
	 * could, leaving repair mode to the watchdog. */
	const char *fault = getenv("CKPT_FAULT");
	if (!ret && d->conns && fault && !strcmp(fault, "after-tcp-repair")) {
		pr_err("pid %d: fd %d: CKPT_FAULT=%s", d->conns->pid, d->conns->fd, fault);
		ret = -EIO;
	}
	/* A tree that goes on keeps its connections: out of repair mode.
	 * A killed one closes them in repair mode, silently. */
	if (!ret && fdump->opts && (fdump->opts->leave_running || fdump->opts->leave_stopped))
		repair_off_all(d);
	for (struct repair_sk *c = d->conns; c; c = c->next)
		if (c->sk >= 0)
			close(c->sk);
	*priv = NULL; /* d lives in the arena */
	return ret;
}

/* A check (file-kinds.h): what dump_tree refuses (a connection to a peer
 * outside the tree without --tcp-established), nothing put in repair
 * mode; the duplicates of the connections are closed. */
static int inet_check_tree(struct files_dump *fdump, void **priv)
{
	struct inet_dump *d = *priv;
	if (d)
		mark_dropped_peers(fdump, d);
	int ret = d ? check_peers(fdump, d) : 0;
	for (struct repair_sk *c = d ? d->conns : NULL; c; c = c->next)
		if (c->sk >= 0)
			close(c->sk);
	*priv = NULL; /* d lives in the arena */
	return ret;
}

/* ------------------------------ restore ------------------------------ */

static int valid_addr(const InetSkEntry *s, int has, const ProtobufCBinaryData *a, uint32_t port)
{
	if (!has)
		return 1;
	return a->len == (s->family == AF_INET ? 4u : 16u) && port <= 65535;
}

static int valid_entry(const InetSkEntry *s)
{
	if (!s || (s->family != AF_INET && s->family != AF_INET6))
		return 0;
	/* a user removes only a lock of her own dumps */
	if (s->net_lock && (!tcp_is_conn(s) || !net_lock_name_ok(s->net_lock, getuid())))
		return 0;
	if (!inet_kind_valid(s))
		return 0;
	if (!valid_addr(s, s->has_src_addr, &s->src_addr, s->src_port) ||
	    !valid_addr(s, s->has_dst_addr, &s->dst_addr, s->dst_port))
		return 0;
	if (tcp_is_conn(s) &&
	    (!s->has_dst_addr || !s->has_src_addr || s->send_queue.len > MAX_QUEUE ||
	     s->recv_queue.len > MAX_QUEUE || s->unsent > s->send_queue.len ||
	     (s->fin_unsent && !tcp_fin_unacked(s))))
		return 0;
	if (s->type != SOCK_STREAM)
		return s->state == TCP_ESTABLISHED || s->state == TCP_CLOSE;
	return s->state == TCP_LISTEN || s->state == TCP_CLOSE || tcp_is_conn(s);
}

/* restore --tcp-close: the connections (not one in progress) come back
 * closed, as a reset by the peer closes them (sk-tcp.c). */
static int closes(const struct restore_files *rf, const InetSkEntry *s)
{
	return rf->opts && rf->opts->tcp_close && tcp_is_conn(s) && s->state != TCP_SYN_SENT;
}

/* The peer's FIN or ACK comes back on a raw socket (sk-tcp.c): a
 * restore that may not open one is refused before anything is made. */
static int check_raw(const InetSkEntry *s, int reset)
{
	char name[160];
	if ((!tcp_fin_needs_raw(s) && !reset) || (priv_permitted() & PRIV_BIT(CAP_NET_RAW)))
		return 0;
	if (reset)
		pr_err("%s: --tcp-close closes it with a reset from its peer: it needs CAP_NET_RAW",
		       sk_ports_name(s, name, sizeof(name)));
	else
		pr_err("%s: a half-closed connection (state %s): its restore needs CAP_NET_RAW",
		       sk_ports_name(s, name, sizeof(name)), tcp_state_name(s->state));
	return -EPERM;
}

/* What a restore keeps: the sockets that bind with SO_REUSEPORT on and
 * clear it once every socket is bound (sk_ports_left_reuseport), by
 * their index in rf->files. */
struct inet_restore {
	unsigned char *rejoin;
	struct inet_map map; /* --inet-map; nr 0: none */
};

/* restore --inet-map: entry s onto its new addresses (inet-map.h). */
static int remap(struct inet_map *m, InetSkEntry *s)
{
	char why[300] = "", name[160];
	if (!m->nr)
		return 0;
	sk_ports_name(s, name, sizeof(name));
	int ret = inet_map_entry(m, s, why, sizeof(why));
	if (ret)
		pr_err("%s: %s", name, why[0] ? why : strerror(-ret));
	return ret;
}

static int read_map(const struct restore_files *rf, struct inet_map *m)
{
	char why[300] = "";
	const char *spec = rf->opts ? rf->opts->inet_map : NULL;
	int ret = spec ? inet_map_parse(spec, m, why, sizeof(why)) : 0;
	if (ret)
		pr_err("restore: --inet-map %s: %s", spec, why[0] ? why : strerror(-ret));
	return ret;
}

static int inet_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	struct inet_restore *ir = calloc(1, sizeof(*ir));
	if (!ir || !(ir->rejoin = calloc(rf->nr_files + 1, 1))) {
		free(ir);
		return -ENOMEM;
	}
	*priv = ir;
	int ret = read_map(rf, &ir->map);
	if (ret)
		return ret;
	for (size_t i = 0; i < rf->nr_files; i++) {
		InetSkEntry *s = rf->files[i]->inet_sk;
		if (rf->files[i]->type != FILE_TYPE__FILE_INET_SK)
			continue;
		if (!valid_entry(s) || !sk_opts_valid(s)) {
			pr_err("%s/files.img: entry %zu: bad inet socket", img_set_dir(set), i);
			return -EINVAL;
		}
		if (!files_inherited(rf, rf->files[i]) && (ret = remap(&ir->map, s)))
			return ret;
		if (!files_inherited(rf, rf->files[i]) &&
		    (check_raw(s, closes(rf, s)) || inet_kind_permitted(s)))
			return -EPERM;
		ir->rejoin[i] = (unsigned char)sk_ports_left_reuseport(rf, rf->files[i]);
	}
	return 0;
}

static socklen_t make_addr(const InetSkEntry *s, const ProtobufCBinaryData *a, uint32_t port,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (s->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, a->data, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (void *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	memcpy(&s4->sin_addr, a->data, 4);
	return sizeof(*s4);
}

static int set_int(int sk, int level, int opt, int v)
{
	return setsockopt(sk, level, opt, &v, sizeof(v)) ? -errno : 0;
}

static void set_buf(int sk, int force, int plain, uint32_t v)
{
	if (v && set_int(sk, SOL_SOCKET, force, (int)(v / 2)))
		set_int(sk, SOL_SOCKET, plain, (int)(v / 2));
}

static int set_keepalive(int sk, const InetSkEntry *s)
{
	int ret = set_int(sk, SOL_SOCKET, SO_KEEPALIVE, 1);
	if (!ret && s->keepidle)
		ret = set_int(sk, IPPROTO_TCP, TCP_KEEPIDLE, (int)s->keepidle);
	if (!ret && s->keepintvl)
		ret = set_int(sk, IPPROTO_TCP, TCP_KEEPINTVL, (int)s->keepintvl);
	if (!ret && s->keepcnt)
		ret = set_int(sk, IPPROTO_TCP, TCP_KEEPCNT, (int)s->keepcnt);
	return ret;
}

/* Images without opts (before sk-opts.c): the few options they hold. */
static int set_old_options(int sk, const InetSkEntry *s)
{
	int ret = 0;
	set_buf(sk, SO_RCVBUFFORCE, SO_RCVBUF, s->rcvbuf);
	set_buf(sk, SO_SNDBUFFORCE, SO_SNDBUF, s->sndbuf);
	if (s->family == AF_INET6)
		ret = set_int(sk, IPPROTO_IPV6, IPV6_V6ONLY, s->v6only);
	if (!ret && s->reuseport)
		ret = set_int(sk, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!ret && s->nodelay && s->type == SOCK_STREAM)
		ret = set_int(sk, IPPROTO_TCP, TCP_NODELAY, 1);
	if (!ret && s->keepalive && s->type == SOCK_STREAM)
		ret = set_keepalive(sk, s);
	if (!ret && s->broadcast && s->type == SOCK_DGRAM)
		ret = set_int(sk, SOL_SOCKET, SO_BROADCAST, 1);
	return ret;
}

/* An address not (or no longer) this host's: the program bound it with
 * IP_FREEBIND, perhaps cleared since (zdtm sk-freebind-false).  Bind the
 * same way, then put the option back as dumped. */
static int bind_freely(int sk, const InetSkEntry *s, const struct sockaddr_storage *ss,
		       socklen_t len)
{
	int v6 = s->family == AF_INET6;
	int level = v6 ? IPPROTO_IPV6 : IPPROTO_IP, opt = v6 ? IPV6_FREEBIND : IP_FREEBIND;
	int ret = set_int(sk, level, opt, 1);

	if (!ret && bind(sk, (const struct sockaddr *)ss, len))
		ret = -errno;
	if (!ret)
		ret = set_int(sk, level, opt, (int)sk_opts_int(s, level, opt, 0));
	return ret;
}

/* bind() to the dumped address.  TCP: SO_REUSEADDR meanwhile, for the
 * tree's own sockets share ports (a listener and the connections it
 * accepted); TIME_WAIT sockets in the way are sk-ports.c's.  UDP: the
 * dumped value, so that the socket shares its port with no one the
 * program did not let share it. */
int inet_bind_src(int sk, const InetSkEntry *s)
{
	struct sockaddr_storage ss;
	if (!s->has_src_addr || !s->src_port || inet_kind_skip_bind(s))
		return 0;
	socklen_t len = make_addr(s, &s->src_addr, s->src_port, &ss);
	int dumped = (int)sk_opts_int(s, SOL_SOCKET, SO_REUSEADDR, s->reuseaddr);
	int ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, s->type == SOCK_STREAM ? 1 : dumped);
	if (!ret && bind(sk, (struct sockaddr *)&ss, len))
		ret = -errno;
	if (ret == -EADDRNOTAVAIL)
		ret = bind_freely(sk, s, &ss, len);
	if (!ret && !s->n_opts && !s->reuseaddr) /* else sk-opts' late phase */
		ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, 0);
	return ret;
}

static int connect_dst(int sk, const InetSkEntry *s)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(s, &s->dst_addr, s->dst_port, &ss);
	return connect(sk, (struct sockaddr *)&ss, len) ? -errno : 0;
}

/* Repair mode lets bind() share the port of a listener (SK_FORCE_REUSE),
 * which SO_REUSEADDR would undo: it is set before.  connect() finds a
 * TIME_WAIT socket of the same 4-tuple in the way only when that one had
 * no timestamps (tcp_twsk_unique): sk-ports.c closes it. */
static int restore_conn(int sk, const InetSkEntry *s, char *why, size_t why_len)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(s, &s->src_addr, s->src_port, &ss);
	int ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, s->reuseaddr);
	if (!ret)
		ret = tcp_prepare_conn(sk, s);
	if (!ret && bind(sk, (struct sockaddr *)&ss, len))
		ret = -errno;
	if (ret || s->state == TCP_SYN_SENT) /* it connects in post_install */
		return ret;
	ret = connect_dst(sk, s); /* in repair mode: established, nothing sent */
	if (ret == -EADDRNOTAVAIL && !(ret = sk_ports_clear_conn(s, why, why_len)))
		ret = connect_dst(sk, s);
	if (!ret)
		ret = tcp_fill_conn(sk, s, why, why_len); /* options, queues, window */
	return ret;
}

static int in_repair(const InetSkEntry *s)
{
	return tcp_is_conn(s);
}

/* What comes once the socket is bound, listening or connected (a
 * connection: out of repair mode): late options, then the shutdown state
 * (an unconnected socket takes it too, and says ENOTCONN). */
static int finish(int sk, const InetSkEntry *s, char *why, size_t len)
{
	static const int how[] = { 0, SHUT_RD, SHUT_WR, SHUT_RDWR };
	int ret = sk_opts_restore(sk, s, SK_OPTS_LATE, why, len);
	if (!ret && !s->n_opts && s->has_reuseaddr && in_repair(s))
		ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, s->reuseaddr);
	if (!ret && (s->shutdown & 3) && shutdown(sk, how[s->shutdown & 3]) && errno != ENOTCONN) {
		ret = -errno;
		snprintf(why, len, "shutdown %u: %s", s->shutdown & 3, strerror(errno));
	}
	return ret;
}

int inet_new_socket(const InetSkEntry *s, char *why, size_t len)
{
	int sk = socket((int)s->family, (int)s->type | SOCK_CLOEXEC, inet_sk_protocol(s)), ret;
	if (sk < 0) {
		ret = -errno;
		inet_kind_why(s, -ret, why, len);
		return ret;
	}
	ret = s->n_opts ? sk_opts_restore(sk, s, SK_OPTS_NEW, why, len) : set_old_options(sk, s);
	if (ret) {
		close(sk);
		return ret;
	}
	return sk;
}

/* The inodes of the sockets this restore made so far (the pool). */
static size_t our_sockets(const struct restore_files *rf, uint64_t *out)
{
	size_t n = 0;
	for (size_t i = 0; rf->pool && i < rf->nr_files; i++) {
		struct stat st;
		if (rf->files[i]->type == FILE_TYPE__FILE_INET_SK && rf->pool[i] >= 0 &&
		    !fstat(rf->pool[i], &st))
			out[n++] = st.st_ino;
	}
	return n;
}

/* bind, then listen: where TIME_WAIT sockets hold the port (EADDRINUSE),
 * once more after sk-ports.c closed them.  rejoin: with SO_REUSEPORT on,
 * which inet_pool_ready clears. */
static int bind_and_listen(const struct restore_files *rf, int sk, const InetSkEntry *s,
			   int rejoin, char *why, size_t len)
{
	int err = rejoin ? set_int(sk, SOL_SOCKET, SO_REUSEPORT, 1) : 0;
	if (err)
		return err;
	for (int tries = 0, bound = 0;; tries++) {
		int ret = bound ? 0 : inet_bind_src(sk, s);
		bound = !ret;
		if (!ret && s->state == TCP_LISTEN && listen(sk, (int)s->backlog))
			ret = -errno;
		if (ret != -EADDRINUSE || s->type != SOCK_STREAM || tries)
			return ret;
		uint64_t *ours = calloc(rf->nr_files + 1, sizeof(*ours));
		if (!ours)
			return -ENOMEM;
		ret = sk_ports_clear(s, ours, our_sockets(rf, ours), why, len);
		free(ours);
		if (ret)
			return ret;
	}
}

static int create(const struct restore_files *rf, const InetSkEntry *s, int rejoin, char *why,
		  size_t len)
{
	int sk = inet_new_socket(s, why, len), ret = 0;
	if (sk < 0)
		return sk;
	if (in_repair(s))
		ret = restore_conn(sk, s, why, len);
	else
		ret = bind_and_listen(rf, sk, s, rejoin, why, len);
	if (!ret && s->type != SOCK_STREAM && s->has_dst_addr)
		ret = connect_dst(sk, s);
	if (!ret && !in_repair(s))
		ret = finish(sk, s, why, len);
	if (ret) {
		close(sk);
		return ret;
	}
	return sk;
}

static int inet_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	const InetSkEntry *s = e->inet_sk;
	const struct inet_restore *ir = priv;
	char why[200] = "", name[160];
	int sk = create(rf, s, ir->rejoin[e->id], why, sizeof(why));
	if (sk < 0) {
		pr_err("%s: cannot recreate: %s", sk_ports_name(s, name, sizeof(name)),
		       why[0] ? why : strerror(-sk));
		return sk;
	}
	if (fcntl(sk, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0) {
		int ret = -errno;
		close(sk);
		return ret;
	}
	return sk;
}

/* SYN_SENT, bound in repair mode: out of it, the connect() again, which
 * sends the same SYN (write_seq is its ISN), without waiting; a blocking
 * connect() the program was in goes on waiting for it once resumed. */
static int resume_connect(int sk, const InetSkEntry *s, char *why, size_t len)
{
	int fl = fcntl(sk, F_GETFL), ret = 0;
	if (fl < 0 || fcntl(sk, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if ((ret = connect_dst(sk, s)) == -EINPROGRESS)
		ret = 0;
	if (fcntl(sk, F_SETFL, fl) < 0 && !ret)
		ret = -errno;
	if (ret)
		snprintf(why, len, "connect again: %s", strerror(-ret));
	return ret;
}

/* Every socket of the tree exists now: connections leave repair mode,
 * then take their late options. */
static int inet_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	const struct task_fds *tf = &rf->tasks[idx];
	(void)priv;
	for (size_t i = 0; i < tf->nr; i++) {
		const FileEntry *e = rf->files[tf->fds[i]->file_id];
		if (e->type != FILE_TYPE__FILE_INET_SK || !tcp_is_conn(e->inet_sk))
			continue;
		char why[200] = "";
		int sk = (int)tf->fds[i]->fd;
		int ret = closes(rf, e->inet_sk) ? tcp_close_restored(sk, e->inet_sk, why, sizeof(why))
						  : tcp_fins_restore(sk, e->inet_sk, why, sizeof(why));
		if (!ret && (ret = tcp_set_repair(sk, 0)))
			snprintf(why, sizeof(why), "cannot leave repair mode: %s", strerror(-ret));
		if (!ret && e->inet_sk->state == TCP_SYN_SENT)
			ret = resume_connect(sk, e->inet_sk, why, sizeof(why));
		if (!ret)
			ret = finish(sk, e->inet_sk, why, sizeof(why));
		if (ret) {
			pr_err("pid %d: fd %u: socket:[%llu]: %s", tf->pid, tf->fds[i]->fd,
			       (unsigned long long)e->inet_sk->ino, why[0] ? why : strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Every socket is bound: those that bound with SO_REUSEPORT on for their
 * siblings' sake clear it, as dumped. */
static int inet_pool_ready(struct restore_files *rf, void *priv)
{
	const struct inet_restore *ir = priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		if (!ir->rejoin[i] || rf->pool[i] < 0)
			continue;
		int ret = set_int(rf->pool[i], SOL_SOCKET, SO_REUSEPORT, 0);
		if (ret) {
			pr_err("socket:[%llu]: cannot clear SO_REUSEPORT: %s",
			       (unsigned long long)rf->files[i]->inet_sk->ino, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void inet_free(void *priv)
{
	struct inet_restore *ir = priv;
	inet_map_free(&ir->map);
	free(ir->rejoin);
	free(ir);
}

const struct file_kind inet_sk_kind = {
	.name = "inet socket",
	.types = 1ULL << FILE_TYPE__FILE_INET_SK,
	.match = inet_match,
	.dump = inet_dump,
	.dump_tree = inet_dump_tree,
	.check_tree = inet_check_tree,
	.read = inet_read,
	.open = inet_open,
	.post_install = inet_post_install,
	.pool_ready = inet_pool_ready,
	.free = inet_free,
};
