/*
 * sk-netlink: AF_NETLINK sockets, a file kind (file-kinds.h) with
 * netlink_sk_entry (proto/sk.proto).
 *
 * Dump: getsockname gives the portid (0: never bound nor autobound),
 * NETLINK_LIST_MEMBERSHIPS every group, getpeername the connected peer;
 * netlink_diag (bound sockets only: an unbound one can hold nothing) the
 * state, the bytes queued and whether a dump is running.  Options: the
 * SOL_SOCKET rows of sk-opts.c and the SOL_NETLINK rows below.
 *
 * Restore: socket(), options, bind to the dumped portid with the first 32
 * groups, NETLINK_ADD_MEMBERSHIP for the others, connect.  A portid the
 * kernel chose (autobind) is only a number unique in the network
 * namespace: it is bound explicitly, and a portid taken here fails the
 * restore naming it.  The kernel checks, as for the program, who may
 * join or send to a group (the restore runs as the user).
 *
 * Refused at dump, by name: messages queued and not read (an answer of
 * the kernel, a broadcast: nothing can put them back), a dump whose
 * answer is not read to its end (the kernel's callback state), a group
 * to connect to past 32 (connect() cannot name it), the protocols whose
 * kernel side keeps state of the socket (stateless() below).
 * Not kept (counters of the past, read only by clearing them): a pending
 * socket error (ENOBUFS after an overrun), drop counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "file-kinds.h"
#include "log.h"
#include "sk-diag.h"
#include "sk-level-opts.h"
#include "sk-opts.h"
#include "sk-packet.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define MAX_GROUP_WORDS 1024 /* 32768 groups: more than any family has */

/* clang-format off */
#define ROW(o) { #o, SOL_NETLINK, o }
/* clang-format on */
static const struct level_opt netlink_rows[] = {
	ROW(NETLINK_PKTINFO),	      ROW(NETLINK_BROADCAST_ERROR), ROW(NETLINK_NO_ENOBUFS),
	ROW(NETLINK_LISTEN_ALL_NSID), ROW(NETLINK_CAP_ACK),	    ROW(NETLINK_EXT_ACK),
	ROW(NETLINK_GET_STRICT_CHK),
};
static const struct level_opts netlink_opts = { netlink_rows,
						sizeof(netlink_rows) / sizeof(netlink_rows[0]) };

/* ------------------------------ diag --------------------------------- */

struct netlink_diag {
	uint64_t ino;
	uint8_t state;	/* NETLINK_CONNECTED (1) */
	uint32_t flags; /* NDIAG_FLAG_* */
	uint32_t rmem;
};

struct netlink_table {
	struct netlink_diag *v;
	size_t nr, cap;
};

static int parse_netlink(struct nlmsghdr *h, void *arg)
{
	struct netlink_table *t = arg;
	struct netlink_diag_msg *m = nlmsg_data(h);
	struct nlattr *tb[NETLINK_DIAG_MAX + 1];
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nla_parse(tb, NETLINK_DIAG_MAX, (struct nlattr *)(m + 1),
		      (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m))), NULL) < 0)
		return -EIO;
	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		void *v = realloc(t->v, cap * sizeof(*t->v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	struct netlink_diag *d = &t->v[t->nr++];
	memset(d, 0, sizeof(*d));
	d->ino = m->ndiag_ino;
	d->state = m->ndiag_state;
	if (tb[NETLINK_DIAG_FLAGS])
		d->flags = nla_get_u32(tb[NETLINK_DIAG_FLAGS]);
	if (tb[NETLINK_DIAG_MEMINFO] && nla_len(tb[NETLINK_DIAG_MEMINFO]) >= (int)sizeof(uint32_t))
		d->rmem = ((const uint32_t *)nla_data(
			tb[NETLINK_DIAG_MEMINFO]))[SK_MEMINFO_RMEM_ALLOC];
	return 0;
}

/* Every bound netlink socket of our network namespace, into the arena. */
static int load_table(struct netlink_table *t, struct arena *a)
{
	struct netlink_diag_req req = {
		.sdiag_family = AF_NETLINK,
		.sdiag_protocol = NDIAG_PROTO_ALL,
		.ndiag_show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_FLAGS,
	};
	memset(t, 0, sizeof(*t));
	int ret = sk_diag_dump(&req, sizeof(req), parse_netlink, t);
	struct netlink_diag *v = ret ? NULL : arena_alloc(a, (t->nr + 1) * sizeof(*v));
	if (v && t->nr)
		memcpy(v, t->v, t->nr * sizeof(*v));
	free(t->v);
	t->v = v;
	return ret ? ret : v ? 0 : -ENOMEM;
}

static const struct netlink_diag *find_diag(const struct netlink_table *t, uint64_t ino)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->v[i].ino == ino)
			return &t->v[i];
	return NULL;
}

/* ------------------------------ dump --------------------------------- */

static int netlink_match(const struct fd_dump *f)
{
	return S_ISSOCK(f->st->st_mode) && sk_domain(f->pid, f->fd) == AF_NETLINK;
}

static struct netlink_table *get_table(struct fd_dump *f)
{
	struct netlink_table *t = *f->priv;
	if (t)
		return t;
	t = arena_alloc(&f->fdump->a, sizeof(*t));
	if (!t || load_table(t, &f->fdump->a))
		return NULL;
	*f->priv = t;
	return t;
}

static int netlink_dump_tree(struct files_dump *fdump, void **priv)
{
	(void)fdump;
	*priv = NULL; /* the table lives in the arena */
	return 0;
}

static const char *refusal(const struct netlink_diag *d, char *buf, size_t len)
{
	if (!d)
		return NULL;
	if (d->flags & NDIAG_FLAG_CB_RUNNING)
		return "a dump (NLM_F_DUMP) whose answer is not read to its end";
	if (d->rmem) {
		snprintf(buf, len, "%u bytes of messages received and not read yet", d->rmem);
		return buf;
	}
	return NULL;
}

/*
 * The protocols whose kernel side keeps nothing of a socket but what is
 * dumped here (its portid, groups, options): a request is answered and
 * forgotten.  Others tie state to the socket or its portid that nothing
 * reads back, and drop it when the dumped socket closes: NETLINK_AUDIT
 * (the audit daemon's registration), NETLINK_CONNECTOR (the proc
 * connector's per-socket filter), NETLINK_NETFILTER (nfqueue and nflog
 * instances bound to the portid), NETLINK_GENERIC (families such as
 * nl80211 or taskstats own objects by socket), the SCSI, iSCSI and RDMA
 * ones (daemons' registrations).  They are refused by name.
 */
static int stateless(uint32_t protocol)
{
	switch (protocol) {
	case NETLINK_ROUTE:
	case NETLINK_USERSOCK:
	case NETLINK_SOCK_DIAG:
	case NETLINK_XFRM:
	case NETLINK_SELINUX:
	case NETLINK_FIB_LOOKUP:
	case NETLINK_KOBJECT_UEVENT:
		return 1;
	}
	return 0;
}

static int dump_groups(struct arena *a, int sk, NetlinkSkEntry *n)
{
	static _Thread_local uint32_t words[MAX_GROUP_WORDS];
	socklen_t len = sizeof(words);
	memset(words, 0, sizeof(words));
	if (getsockopt(sk, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len))
		return -errno;
	size_t nr = (len < sizeof(words) ? len : sizeof(words)) / sizeof(uint32_t);
	while (nr && !words[nr - 1])
		nr--; /* none past the last group joined */
	if (!nr)
		return 0;
	if (!(n->groups = arena_alloc(a, nr * sizeof(*n->groups))))
		return -ENOMEM;
	memcpy(n->groups, words, nr * sizeof(uint32_t));
	n->n_groups = nr;
	return 0;
}

static int dump_addrs(int sk, const struct netlink_diag *d, NetlinkSkEntry *n, char *why,
		      size_t len)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(sk, (struct sockaddr *)&a, &l))
		return -errno;
	n->has_portid = a.nl_pid != 0;
	n->portid = a.nl_pid;
	if (!d || d->state != NETLINK_CONNECTED)
		return 0;
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(sk, (struct sockaddr *)&a, &l))
		return -errno;
	n->has_dst_portid = n->has_dst_group = 1;
	n->dst_portid = a.nl_pid;
	n->dst_group = (uint32_t)__builtin_ffs((int)a.nl_groups); /* connect() sets one */
	if (a.nl_groups && (a.nl_groups & (a.nl_groups - 1))) {
		snprintf(why, len, "connected to groups %#x", a.nl_groups);
		return -ENOTSUP;
	}
	return 0;
}

static int fill_entry(struct fd_dump *f, int sk, const struct netlink_diag *d, NetlinkSkEntry *n,
		      char *why, size_t len)
{
	struct arena *a = &f->fdump->a;
	int v = 0;
	socklen_t l = sizeof(v);
	getsockopt(sk, SOL_SOCKET, SO_TYPE, &v, &l);
	n->type = (uint32_t)v;
	l = sizeof(v);
	getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &v, &l);
	n->protocol = (uint32_t)v;
	n->ino = f->st->st_ino;
	if (!stateless(n->protocol)) {
		snprintf(why, len,
			 "protocol %u: its kernel side may hold state of the socket "
			 "(registrations, subscriptions, objects it owns) that cannot be read back",
			 n->protocol);
		return -ENOTSUP;
	}
	int ret = dump_addrs(sk, d, n, why, len);
	if (!ret)
		ret = dump_groups(a, sk, n);
	InetSkEntry view = INET_SK_ENTRY__INIT;
	view.family = AF_NETLINK;
	view.type = n->type;
	view.state = 7; /* TCP_CLOSE */
	if (!ret)
		ret = sk_opts_dump(a, sk, &view, why, len);
	n->n_opts = view.n_opts;
	n->opts = view.opts;
	if (!ret)
		ret = level_opts_dump(a, sk, &netlink_opts, &n->netlink_opts, &n->n_netlink_opts);
	return ret;
}

static int netlink_dump(struct fd_dump *f, FileEntry *e)
{
	struct netlink_table *t = get_table(f);
	if (!t)
		return -ENOMEM;
	/* sock_diag lists bound sockets only: one not there holds nothing */
	const struct netlink_diag *d = find_diag(t, f->st->st_ino);
	char buf[128], why[256] = "";
	const char *no = refusal(d, buf, sizeof(buf));
	if (no) {
		pr_err("pid %d: fd %d: %s: netlink socket with %s: not supported", f->pid, f->fd,
		       f->link, no);
		return -ENOTSUP;
	}
	NetlinkSkEntry *n = arena_alloc(&f->fdump->a, sizeof(*n));
	int sk = files_getfd(f->pid, f->fd);
	if (!n || sk < 0) {
		if (sk >= 0)
			close(sk);
		return sk < 0 ? sk : -ENOMEM;
	}
	netlink_sk_entry__init(n);
	int ret = fill_entry(f, sk, d, n, why, sizeof(why));
	close(sk);
	if (ret) {
		pr_err("pid %d: fd %d: %s: netlink socket: %s%s", f->pid, f->fd, f->link,
		       why[0] ? why : strerror(-ret), ret == -ENOTSUP ? ": not supported" : "");
		return ret;
	}
	e->type = FILE_TYPE__FILE_NETLINK_SK;
	e->netlink_sk = n;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

static InetSkEntry opts_view(const NetlinkSkEntry *n)
{
	InetSkEntry v = INET_SK_ENTRY__INIT;
	v.family = AF_NETLINK;
	v.type = n->type;
	v.state = 7; /* TCP_CLOSE */
	v.n_opts = n->n_opts;
	v.opts = n->opts;
	return v;
}

static int valid_entry(const NetlinkSkEntry *n)
{
	if (!n || (n->type != SOCK_RAW && n->type != SOCK_DGRAM) || !stateless(n->protocol))
		return 0;
	if (n->n_groups > MAX_GROUP_WORDS || (n->has_portid && !n->portid) ||
	    (n->n_groups && !n->has_portid) || n->has_dst_portid != n->has_dst_group ||
	    (n->has_dst_portid && !n->has_portid) || n->dst_group > 32)
		return 0;
	InetSkEntry view = opts_view(n);
	return sk_opts_valid(&view) &&
	       level_opts_valid(n->netlink_opts, n->n_netlink_opts, &netlink_opts);
}

static int netlink_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type == FILE_TYPE__FILE_NETLINK_SK && !valid_entry(e->netlink_sk)) {
			pr_err("%s/files.img: entry %zu: bad netlink socket", img_set_dir(set), i);
			return -EINVAL;
		}
	}
	return 0;
}

static int do_bind(int sk, const NetlinkSkEntry *n, char *why, size_t len)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK,
				 .nl_pid = n->portid,
				 .nl_groups = n->n_groups ? n->groups[0] : 0 };
	if (!n->has_portid)
		return 0;
	if (bind(sk, (struct sockaddr *)&a, sizeof(a))) {
		int ret = -errno;
		if (ret == -EADDRINUSE)
			snprintf(why, len, "portid %u is taken here", n->portid);
		else
			snprintf(why, len, "bind to portid %u, groups %#x: %s", n->portid,
				 a.nl_groups, strerror(-ret));
		return ret;
	}
	for (size_t w = 1; w < n->n_groups; w++)
		for (int b = 0; b < 32; b++) {
			int g = (int)(w * 32) + b + 1;
			if (!(n->groups[w] & (1u << b)) ||
			    !setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)))
				continue;
			snprintf(why, len, "NETLINK_ADD_MEMBERSHIP %d: %s", g, strerror(errno));
			return -errno;
		}
	return 0;
}

static int do_connect(int sk, const NetlinkSkEntry *n, char *why, size_t len)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK,
				 .nl_pid = n->dst_portid,
				 .nl_groups = n->dst_group ? 1u << (n->dst_group - 1) : 0 };
	if (!n->has_dst_portid || !connect(sk, (struct sockaddr *)&a, sizeof(a)))
		return 0;
	snprintf(why, len, "connect to portid %u, group %u: %s", n->dst_portid, n->dst_group,
		 strerror(errno));
	return -errno;
}

static int build(int sk, const NetlinkSkEntry *n, char *why, size_t len)
{
	InetSkEntry view = opts_view(n);
	int ret = sk_opts_restore(sk, &view, SK_OPTS_NEW, why, len);
	if (!ret)
		ret = level_opts_restore(sk, n->netlink_opts, n->n_netlink_opts, &netlink_opts, why,
					 len);
	if (!ret)
		ret = do_bind(sk, n, why, len);
	if (!ret)
		ret = do_connect(sk, n, why, len);
	if (!ret)
		ret = sk_opts_restore(sk, &view, SK_OPTS_LATE, why, len);
	return ret;
}

static int netlink_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	const NetlinkSkEntry *n = e->netlink_sk;
	char why[256] = "";
	(void)rf;
	(void)priv;
	int sk = socket(AF_NETLINK, (int)n->type | SOCK_CLOEXEC, (int)n->protocol), ret;
	if (sk < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "socket (protocol %u): %s", n->protocol, strerror(-ret));
	} else {
		ret = build(sk, n, why, sizeof(why));
	}
	if (!ret && fcntl(sk, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0)
		ret = -errno;
	if (ret) {
		pr_err("socket:[%llu]: netlink socket: cannot recreate: %s",
		       (unsigned long long)n->ino, why[0] ? why : strerror(-ret));
		if (sk >= 0)
			close(sk);
		return ret;
	}
	return sk;
}

/* ------------------------------ verify ------------------------------- */

static void differ_u32(sk_opts_diff_fn fn, void *arg, const char *what, uint32_t now, uint32_t was,
		       int *n)
{
	char a[24], b[24];
	if (now == was)
		return;
	snprintf(a, sizeof(a), "%u", now);
	snprintf(b, sizeof(b), "%u", was);
	fn(arg, what, a, b);
	(*n)++;
}

static void verify_groups(int sk, const NetlinkSkEntry *n, sk_opts_diff_fn fn, void *arg, int *nr)
{
	static _Thread_local uint32_t words[MAX_GROUP_WORDS];
	socklen_t len = sizeof(words);
	memset(words, 0, sizeof(words));
	getsockopt(sk, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len);
	for (size_t w = 0; w < MAX_GROUP_WORDS; w++) {
		uint32_t was = w < n->n_groups ? n->groups[w] : 0;
		if (words[w] == was)
			continue;
		char what[48];
		snprintf(what, sizeof(what), "netlink groups %zu-%zu", w * 32 + 1, w * 32 + 32);
		differ_u32(fn, arg, what, words[w], was, nr);
	}
}

int netlink_sk_verify(int sk, const NetlinkSkEntry *n, sk_opts_diff_fn fn, void *arg)
{
	InetSkEntry view = opts_view(n);
	int nr = sk_opts_verify(sk, &view, fn, arg);
	nr += level_opts_verify(sk, n->netlink_opts, n->n_netlink_opts, &netlink_opts, fn, arg);
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (!getsockname(sk, (struct sockaddr *)&a, &l))
		differ_u32(fn, arg, "netlink portid", a.nl_pid, n->portid, &nr);
	verify_groups(sk, n, fn, arg, &nr);
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (!getpeername(sk, (struct sockaddr *)&a, &l)) {
		differ_u32(fn, arg, "netlink peer portid", a.nl_pid, n->dst_portid, &nr);
		differ_u32(fn, arg, "netlink peer group", (uint32_t)__builtin_ffs((int)a.nl_groups),
			   n->dst_group, &nr);
	}
	return nr;
}

const struct file_kind netlink_sk_kind = {
	.name = "netlink socket",
	.types = 1ULL << FILE_TYPE__FILE_NETLINK_SK,
	.match = netlink_match,
	.dump = netlink_dump,
	.dump_tree = netlink_dump_tree,
	.check_tree = netlink_dump_tree,
	.read = netlink_read,
	.open = netlink_open,
};
