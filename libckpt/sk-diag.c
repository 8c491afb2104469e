/*
 * sk-diag: sock_diag dumps of unix and inet sockets through libnl-3; see
 * sk-diag.h.  Each dump is one NLM_F_DUMP request; every answer message is
 * parsed into a small plain struct kept in a growing table.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/capability.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "arena.h"
#include "file-kinds.h"
#include "freeze.h"
#include "log.h"
#include "priv.h"
#include "sk-diag.h"

static int grow(void **v, size_t *cap, size_t nr, size_t size)
{
	if (nr < *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 64;
	void *p = realloc(*v, n * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

struct diag_req {
	int (*parse)(struct nlmsghdr *h, void *arg);
	void *arg;
	int err;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct diag_req *r = arg;
	int ret = r->parse(nlmsg_hdr(msg), r->arg);
	if (ret && !r->err)
		r->err = ret;
	return NL_OK;
}

/* Send one sock_diag dump request and parse every answer. */
static int diag_dump(void *req, size_t len, struct diag_req *r)
{
	struct nl_sock *sk = nl_socket_alloc();
	int ret;

	if (!sk)
		return -ENOMEM;
	ret = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (!ret)
		ret = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_valid, r);
	if (!ret)
		ret = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, req, len);
	if (ret >= 0)
		ret = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (ret < 0) {
		pr_err("sock_diag: %s", nl_geterror(ret));
		return -EIO;
	}
	return r->err;
}

/* Move a table of nr items of `size` from the heap into the arena. */
static int to_arena(struct arena *a, void **v, size_t nr, size_t size)
{
	void *p = arena_alloc(a, nr * size + 1);
	if (p && nr)
		memcpy(p, *v, nr * size);
	free(*v);
	*v = p;
	return p ? 0 : -ENOMEM;
}

/* ------------------------------- unix -------------------------------- */

static int keep_icons(struct unix_diag_table *t, struct unix_diag *d, struct nlattr *icons)
{
	const uint32_t *v = nla_data(icons);
	d->nr_icons = (uint32_t)(nla_len(icons) / sizeof(uint32_t));
	d->icons_at = t->nr_icons;
	for (uint32_t i = 0; i < d->nr_icons; i++) {
		if (grow((void **)&t->icons, &t->cap_icons, t->nr_icons, sizeof(*t->icons)))
			return -ENOMEM;
		t->icons[t->nr_icons++] = v[i];
	}
	return 0;
}

static void parse_unix_attrs(struct unix_diag *d, struct nlattr **tb)
{
	if (tb[UNIX_DIAG_PEER])
		d->peer = nla_get_u32(tb[UNIX_DIAG_PEER]);
	if (tb[UNIX_DIAG_SHUTDOWN])
		d->shutdown = nla_get_u8(tb[UNIX_DIAG_SHUTDOWN]);
	if (tb[UNIX_DIAG_RQLEN]) {
		const struct unix_diag_rqlen *q = nla_data(tb[UNIX_DIAG_RQLEN]);
		d->rqlen = q->udiag_rqueue;
		d->wqlen = q->udiag_wqueue;
	}
	if (tb[UNIX_DIAG_VFS]) {
		const struct unix_diag_vfs *v = nla_data(tb[UNIX_DIAG_VFS]);
		d->vfs_dev = v->udiag_vfs_dev;
		d->vfs_ino = v->udiag_vfs_ino;
	}
	if (tb[UNIX_DIAG_NAME]) {
		size_t n = (size_t)nla_len(tb[UNIX_DIAG_NAME]);
		d->name_len = n < sizeof(d->name) ? n : sizeof(d->name);
		memcpy(d->name, nla_data(tb[UNIX_DIAG_NAME]), d->name_len);
	}
}

static int parse_unix(struct nlmsghdr *h, void *arg)
{
	struct unix_diag_table *t = arg;
	struct unix_diag_msg *m = nlmsg_data(h);
	struct nlattr *tb[UNIX_DIAG_MAX + 1];

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EIO;
	if (nla_parse(tb, UNIX_DIAG_MAX, (struct nlattr *)(m + 1),
		      (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m))), NULL) < 0)
		return -EIO;
	if (grow((void **)&t->v, &t->cap, t->nr, sizeof(*t->v)))
		return -ENOMEM;
	struct unix_diag *d = &t->v[t->nr++];
	memset(d, 0, sizeof(*d));
	d->ino = m->udiag_ino;
	d->type = m->udiag_type;
	d->state = m->udiag_state;
	parse_unix_attrs(d, tb);
	return tb[UNIX_DIAG_ICONS] ? keep_icons(t, d, tb[UNIX_DIAG_ICONS]) : 0;
}

int sk_diag_unix(struct unix_diag_table *t, struct arena *a)
{
	struct unix_diag_req req = {
		.sdiag_family = AF_UNIX,
		.udiag_states = ~0u,
		.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
			      UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN, /* SHUTDOWN comes always */
	};
	struct diag_req r = { parse_unix, t, 0 };
	int ret = diag_dump(&req, sizeof(req), &r);
	int aret = to_arena(a, (void **)&t->v, t->nr, sizeof(*t->v));
	int iret = to_arena(a, (void **)&t->icons, t->nr_icons, sizeof(*t->icons));
	return ret ? ret : aret ? aret : iret;
}

const struct unix_diag *sk_diag_unix_find(const struct unix_diag_table *t, uint64_t ino)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->v[i].ino == ino)
			return &t->v[i];
	return NULL;
}

/* ------------------------------- inet -------------------------------- */

void inet_end_set(struct inet_end *e, int family, const void *addr, uint32_t port)
{
	memset(e, 0, sizeof(*e));
	e->port = (uint16_t)port;
	if (family == AF_INET6) {
		memcpy(e->addr, addr, 16);
		return;
	}
	e->addr[10] = e->addr[11] = 0xff;
	memcpy(e->addr + 12, addr, 4);
}

int inet_end_eq(const struct inet_end *a, const struct inet_end *b)
{
	return a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

static int is_mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return !memcmp(a, prefix, 12);
}

int inet_addr_any(const uint8_t a[16])
{
	static const uint8_t zero[16];
	return !memcmp(a, zero, 16) || (is_mapped(a) && !memcmp(a + 12, zero, 4));
}

int inet_addr_loopback(const uint8_t a[16])
{
	static const uint8_t one[16] = { [15] = 1 };
	return !memcmp(a, one, 16) || (is_mapped(a) && a[12] == 127);
}

const char *inet_end_str(const struct inet_end *e, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (is_mapped(e->addr)) {
		inet_ntop(AF_INET, e->addr + 12, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, e->port);
	} else {
		inet_ntop(AF_INET6, e->addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, e->port);
	}
	return buf;
}

static int parse_inet(struct nlmsghdr *h, void *arg)
{
	struct inet_diag_table *t = arg;
	struct inet_diag_msg *m = nlmsg_data(h);
	struct nlattr *tb[INET_DIAG_MAX + 1];

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EIO;
	if (nla_parse(tb, INET_DIAG_MAX, (struct nlattr *)(m + 1),
		      (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m))), NULL) < 0)
		return -EIO;
	if (grow((void **)&t->v, &t->cap, t->nr, sizeof(*t->v)))
		return -ENOMEM;
	struct inet_diag *d = &t->v[t->nr++];
	*d = (struct inet_diag){
		.ino = m->idiag_inode,
		.family = m->idiag_family,
		.state = m->idiag_state,
		/* INET_DIAG_SHUTDOWN comes always */
		.shutdown = tb[INET_DIAG_SHUTDOWN] ? nla_get_u8(tb[INET_DIAG_SHUTDOWN]) : 0,
		.v6only = tb[INET_DIAG_SKV6ONLY] ? nla_get_u8(tb[INET_DIAG_SKV6ONLY]) : 0,
		.rqueue = m->idiag_rqueue,
		.wqueue = m->idiag_wqueue,
		.id = m->id
	};
	d->proto = tb[INET_DIAG_PROTOCOL] ? nla_get_u8(tb[INET_DIAG_PROTOCOL]) : 0;
	inet_end_set(&d->local, d->family, m->id.idiag_src, ntohs(m->id.idiag_sport));
	inet_end_set(&d->remote, d->family, m->id.idiag_dst, ntohs(m->id.idiag_dport));
	return 0;
}

static int diag_inet_one(struct inet_diag_table *t, int family, int proto)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = (uint8_t)family,
		.sdiag_protocol = (uint8_t)proto,
		.idiag_states = ~0u,
	};
	struct diag_req r = { parse_inet, t, 0 };
	size_t first = t->nr;
	int ret = diag_dump(&req, sizeof(req), &r);
	for (size_t i = first; i < t->nr; i++)
		t->v[i].proto = (uint8_t)proto; /* INET_DIAG_PROTOCOL comes for some only */
	return ret;
}

int sk_diag_inet(struct inet_diag_table *t, struct arena *a)
{
	static const int fam[] = { AF_INET, AF_INET6 }, proto[] = { IPPROTO_TCP, IPPROTO_UDP };
	int ret = 0;
	for (int i = 0; !ret && i < 4; i++)
		ret = diag_inet_one(t, fam[i / 2], proto[i % 2]);
	/* UDP-Lite (sk-raw.c): a kernel without it (or without its diag)
	 * has no such socket to list, and an unbound one is not listed */
	for (int i = 0; !ret && i < 2; i++)
		diag_inet_one(t, fam[i], IPPROTO_UDPLITE);
	/* raw sockets (raw_diag, every protocol; proto reads IPPROTO_RAW):
	 * only their shutdown state is taken from here (sk-raw.c) */
	for (int i = 0; !ret && i < 2; i++)
		diag_inet_one(t, fam[i], IPPROTO_RAW);
	int aret = to_arena(a, (void **)&t->v, t->nr, sizeof(*t->v));
	return ret ? ret : aret;
}

int sk_diag_inet_proto(struct inet_diag_table *t, int proto)
{
	memset(t, 0, sizeof(*t));
	int ret = diag_inet_one(t, AF_INET, proto);
	if (!ret)
		ret = diag_inet_one(t, AF_INET6, proto);
	if (ret) {
		free(t->v);
		memset(t, 0, sizeof(*t));
	}
	return ret;
}

const struct inet_diag *sk_diag_inet_find(const struct inet_diag_table *t, uint64_t ino)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->v[i].ino == ino)
			return &t->v[i];
	return NULL;
}

static int on_ack_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	(void)who;
	*(int *)arg = e->error;
	return NL_STOP;
}

int sk_diag_destroy(const struct inet_diag *d)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = d->family,
		.sdiag_protocol = d->proto,
		.idiag_states = ~0u,
		.id = d->id, /* its cookie too: this socket, not a later one */
	};
	struct nl_sock *sk = nl_socket_alloc();
	int err = 0, ret;
	if (!sk)
		return -ENOMEM;
	ret = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (!ret)
		ret = nl_socket_modify_err_cb(sk, NL_CB_CUSTOM, on_ack_error, &err);
	/* the kernel acts (and checks CAP_NET_ADMIN) within the send */
	int raised = priv_raise(CAP_NET_ADMIN);
	if (!ret)
		ret = nl_send_simple(sk, SOCK_DESTROY, 0, &req, sizeof(req));
	priv_lower(CAP_NET_ADMIN, raised);
	if (ret >= 0)
		ret = nl_wait_for_ack(sk);
	nl_socket_free(sk);
	if (err)
		return err; /* the kernel's -errno */
	return ret < 0 ? -EIO : 0;
}

/* ------------------------------ holders ------------------------------ */

static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; tree && i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

static int holds(pid_t pid, const char *want)
{
	char path[300], link[64];
	struct dirent *fe;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *fds = opendir(path);
	while (fds && !found && (fe = readdir(fds))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fe->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = !strcmp(link, want);
		}
	}
	if (fds)
		closedir(fds);
	return found;
}

int sk_outside_holder(const struct frozen_tree *tree, uint64_t ino)
{
	char want[64];
	struct dirent *de;
	pid_t found = 0;
	DIR *proc = opendir("/proc");

	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)ino);
	while (proc && !found && (de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);
		if (pid > 0 && !in_tree(tree, pid) && pid != getpid() && holds(pid, want))
			found = pid;
	}
	if (proc)
		closedir(proc);
	return found;
}

int sk_domain(pid_t pid, int fd)
{
	int sk = files_getfd(pid, fd), domain = 0;
	socklen_t len = sizeof(domain);
	if (sk < 0)
		return sk;
	int ret = getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &domain, &len) ? -errno : domain;
	close(sk);
	return ret;
}

/* ------------------------------- other ------------------------------- */

int sk_diag_dump(void *req, size_t len, int (*parse)(struct nlmsghdr *h, void *arg), void *arg)
{
	struct diag_req r = { parse, arg, 0 };
	return diag_dump(req, len, &r);
}
