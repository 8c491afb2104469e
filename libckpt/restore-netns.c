/*
 * restore-netns: whether a restore goes into a fresh network namespace
 * (--netns auto|never|always), and making it.
 *
 * A port the job binds may be taken on this node by a live socket of
 * another process (the job was requeued, or something took the port since
 * the dump): the restore could not bind it, nor share it.  In a fresh
 * network namespace every port is free.  The job can live there only when
 * its network is private (sk_ports_private): each connection has both
 * ends in the job, and each socket is bound to a wildcard or loopback
 * address or to an address of this node.  The namespace gets lo, up, and
 * on lo each address of this node the job's sockets use, as /32 or /128
 * (an MPI job's TCP transport binds the node's own address, say), so that
 * the traffic between the job's processes flows over loopback there.
 *
 *   auto    (the default) a fresh namespace only when a port is taken and
 *           the network is private; a taken port fails the restore
 *           otherwise, naming the socket, the holder and why;
 *   always  a fresh namespace, or a refusal naming the first socket that
 *           makes the network not private;
 *   never   a taken port fails the restore.
 *
 * The driver unshares the namespace itself (CAP_SYS_ADMIN, raised for the
 * call: a user's restore is lent it) before it creates any socket (the
 * file pool) or process: every restored socket is made there and every
 * process forked there, our init in a fresh PID namespace included (its
 * clone comes later and shares the driver's network namespace).
 * Configuring lo needs CAP_NET_ADMIN in the new namespace, whose owner is
 * our user namespace: raised for those calls.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <linux/if_addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include "log.h"
#include "priv.h"
#include "restore.h"
#include "sk-ports.h"

#define MAX_ADDRS 64

struct node_addrs {
	struct inet_end v[256];
	size_t nr;
};

/* Every address of this node (of our network namespace), through libnl. */
static int read_node_addrs(struct node_addrs *n)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	int ret = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (!ret)
		ret = rtnl_addr_alloc_cache(sk, &cache);
	for (struct nl_object *o = cache ? nl_cache_get_first(cache) : NULL;
	     o && n->nr < sizeof(n->v) / sizeof(n->v[0]); o = nl_cache_get_next(o)) {
		struct nl_addr *a = rtnl_addr_get_local((struct rtnl_addr *)o);
		int family = a ? nl_addr_get_family(a) : 0;
		if ((family == AF_INET && nl_addr_get_len(a) == 4) ||
		    (family == AF_INET6 && nl_addr_get_len(a) == 16))
			inet_end_set(&n->v[n->nr++], family, nl_addr_get_binary_addr(a), 0);
	}
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
	if (ret < 0)
		pr_err("network namespace: the addresses of this node: %s", nl_geterror(ret));
	return ret < 0 ? -EIO : 0;
}

static int node_has(const uint8_t a[16], void *arg)
{
	const struct node_addrs *n = arg;
	for (size_t i = 0; i < n->nr; i++)
		if (!memcmp(n->v[i].addr, a, 16))
			return 1;
	return 0;
}

/* 1 private, 0 not (why says which socket), or -errno. */
static int job_private(const struct restore_ctx *c, char *why, size_t len)
{
	struct node_addrs *n = calloc(1, sizeof(*n));
	int ret = n ? read_node_addrs(n) : -ENOMEM;
	if (!ret)
		ret = sk_ports_private(&c->files, node_has, n, why, len);
	free(n);
	return ret;
}

/* A taken port, where no fresh namespace is made: one line. */
static int refuse_taken(const struct ports_check *pc, int private, const char *why)
{
	char name[160];
	sk_ports_name(pc->taken, name, sizeof(name));
	if (private)
		pr_err("%s: port taken by a live socket (%s) (use --netns auto)", name, pc->holder);
	else
		pr_err("%s: port taken by a live socket (%s); a fresh network namespace cannot "
		       "serve: %s",
		       name, pc->holder, why);
	return -EADDRINUSE;
}

int restore_choose_netns(struct restore_ctx *c)
{
	enum ckpt_netns_mode mode = c->opts->netns;
	struct ports_check pc;
	char why[256] = "";
	int ret = sk_ports_check(&c->files, &pc), private = 0;
	if (ret)
		return ret;
	c->clear_time_wait = pc.time_wait;
	if (mode != CKPT_NETNS_ALWAYS && !pc.taken)
		return 0;
	if ((private = job_private(c, why, sizeof(why))) < 0)
		return private;
	if (mode == CKPT_NETNS_ALWAYS && !private) {
		pr_err("--netns always: the job's network is not private: %s", why);
		return -ENOTSUP;
	}
	if (mode == CKPT_NETNS_NEVER || !private)
		return refuse_taken(&pc, private, why);
	if (mode == CKPT_NETNS_ALWAYS)
		pr_info("--netns always: restoring into a fresh network namespace");
	else
		pr_info("port %u is taken: restoring into a fresh network namespace",
			pc.taken->src_port);
	c->use_netns = 1;
	c->clear_time_wait = 0; /* none there */
	return 0;
}

static int add_addr(struct nl_sock *sk, int ifindex, const struct inet_end *e)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	int v4 = !memcmp(e->addr, mapped, 12);
	struct nl_addr *local = nl_addr_build(v4 ? AF_INET : AF_INET6, v4 ? e->addr + 12 : e->addr,
					      v4 ? 4 : 16);
	struct rtnl_addr *a = rtnl_addr_alloc();
	int ret = local && a ? 0 : -NLE_NOMEM;
	if (!ret) {
		nl_addr_set_prefixlen(local, v4 ? 32 : 128);
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_local(a, local);
		rtnl_addr_set_flags(a, IFA_F_NODAD | IFA_F_PERMANENT);
		ret = rtnl_addr_add(sk, a, 0);
	}
	if (ret < 0) {
		char buf[64];
		pr_err("network namespace: cannot add %s to lo: %s", inet_end_str(e, buf, sizeof(buf)),
		       nl_geterror(ret));
	}
	rtnl_addr_put(a);
	nl_addr_put(local);
	return ret < 0 ? -EIO : 0;
}

/* lo up, with the job's addresses of this node. */
static int setup_lo(struct nl_sock *sk, const struct inet_end *addrs, size_t n)
{
	struct rtnl_link *lo = NULL, *up = rtnl_link_alloc();
	int ret = up ? rtnl_link_get_kernel(sk, 0, "lo", &lo) : -NLE_NOMEM;
	if (!ret) {
		rtnl_link_set_flags(up, IFF_UP);
		ret = rtnl_link_change(sk, lo, up, 0);
	}
	if (ret < 0)
		pr_err("network namespace: cannot bring lo up: %s", nl_geterror(ret));
	int err = ret < 0 ? -EIO : 0;
	for (size_t i = 0; !err && i < n; i++)
		err = add_addr(sk, rtnl_link_get_ifindex(lo), &addrs[i]);
	rtnl_link_put(up);
	if (lo)
		rtnl_link_put(lo);
	return err;
}

int restore_make_netns(struct restore_ctx *c)
{
	struct inet_end addrs[MAX_ADDRS];
	size_t n = sk_ports_addrs(&c->files, addrs, MAX_ADDRS);
	int raised = priv_raise(CAP_SYS_ADMIN);
	int ret = unshare(CLONE_NEWNET) ? -errno : 0;
	priv_lower(CAP_SYS_ADMIN, raised);
	if (ret) {
		pr_err("cannot make a fresh network namespace: %s", strerror(-ret));
		return ret;
	}
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk || nl_connect(sk, NETLINK_ROUTE)) {
		pr_err("network namespace: no rtnetlink socket");
		nl_socket_free(sk);
		return -EIO;
	}
	raised = priv_raise(CAP_NET_ADMIN);
	ret = setup_lo(sk, addrs, n);
	priv_lower(CAP_NET_ADMIN, raised);
	nl_socket_free(sk);
	if (!ret)
		pr_info("network namespace: lo up, with %zu address%s of this node", n,
			n == 1 ? "" : "es");
	return ret;
}
