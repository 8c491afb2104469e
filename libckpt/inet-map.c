/*
 * inet-map: the parse of restore --inet-map and the rewrite of the loaded
 * inet socket entries (inet-map.h).  A NEW that a socket is bound on must
 * be an address of the restoring network namespace (libnl-route-3's
 * address cache, read once): refused by name at load, before anything is
 * created, rather than bound there with IP_FREEBIND and never reached.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>

#include "inet-map.h"
#include "files.h"
#include "log.h"
#include "net-lock.h"
#include "sk-ports.h"
#include "sk-diag.h"

/* One address, v4 as v4-mapped; its family, or 0 if it is none. */
static int parse_addr(const char *s, uint8_t out[16])
{
	struct in_addr a4;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return AF_INET;
	}
	return inet_pton(AF_INET6, s, out) == 1 ? AF_INET6 : 0;
}

static int is_v4(const uint8_t a[16])
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(a, prefix, 12);
}

static const char *addr_str(const uint8_t a[16], char *buf, size_t len)
{
	if (is_v4(a))
		return inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	return inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

static int seen(const struct inet_map *m, const struct inet_map_pair *p)
{
	for (size_t i = 0; i < m->nr; i++)
		if (!memcmp(m->v[i].old, p->old, 16) || !memcmp(m->v[i].new, p->new, 16))
			return 1;
	return 0;
}

/* "OLD=NEW" (NUL-terminated, modified) into p. */
static int parse_pair(char *item, struct inet_map_pair *p, char *why, size_t len)
{
	char *eq = strchr(item, '=');
	if (!eq) {
		snprintf(why, len, "'%.80s': not OLD=NEW", item);
		return -EINVAL;
	}
	*eq = '\0';
	int f_old = parse_addr(item, p->old), f_new = parse_addr(eq + 1, p->new);
	if (!f_old || !f_new) {
		snprintf(why, len, "'%.80s': not an IPv4 or IPv6 address", f_old ? eq + 1 : item);
		return -EINVAL;
	}
	/* an AF_INET socket cannot take an IPv6 address, nor the reverse */
	if (f_old != f_new) {
		snprintf(why, len, "%.80s=%.80s: the two addresses are of different families", item,
			 eq + 1);
		return -EINVAL;
	}
	if (inet_addr_any(p->old) || inet_addr_any(p->new)) {
		snprintf(why, len, "%.80s=%.80s: a wildcard address is no address to map", item,
			 eq + 1);
		return -EINVAL;
	}
	return 0;
}

int inet_map_parse(const char *spec, struct inet_map *m, char *why, size_t len)
{
	memset(m, 0, sizeof(*m));
	char *copy = strdup(spec), *save = NULL;
	size_t cap = 1;
	for (const char *c = spec; *c; c++)
		cap += *c == ',';
	m->v = calloc(cap, sizeof(*m->v));
	if (!copy || !m->v) {
		free(copy);
		inet_map_free(m);
		return -ENOMEM;
	}
	int ret = 0;
	for (char *item = strtok_r(copy, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		char shown[100];
		snprintf(shown, sizeof(shown), "%s", item);
		ret = parse_pair(item, &m->v[m->nr], why, len);
		if (!ret && seen(m, &m->v[m->nr])) {
			snprintf(why, len, "%s: an address mapped twice, or two onto one", shown);
			ret = -EINVAL;
		}
		m->nr += !ret;
	}
	if (!ret && !m->nr) {
		snprintf(why, len, "no OLD=NEW pair");
		ret = -EINVAL;
	}
	free(copy);
	if (ret)
		inet_map_free(m);
	return ret;
}

void inet_map_free(struct inet_map *m)
{
	free(m->v);
	free(m->local);
	memset(m, 0, sizeof(*m));
}

/* Every address of our network namespace, through libnl, into m->local. */
static int read_local(struct inet_map *m)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	int ret = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (!ret)
		ret = rtnl_addr_alloc_cache(sk, &cache);
	size_t n = cache ? (size_t)nl_cache_nitems(cache) : 0;
	if (!ret && !(m->local = calloc(n + 1, 16)))
		ret = -NLE_NOMEM;
	for (struct nl_object *o = cache ? nl_cache_get_first(cache) : NULL;
	     o && m->local && m->nr_local < n; o = nl_cache_get_next(o)) {
		struct nl_addr *a = rtnl_addr_get_local((struct rtnl_addr *)o);
		int family = a ? nl_addr_get_family(a) : 0;
		struct inet_end e;
		if ((family == AF_INET && nl_addr_get_len(a) == 4) ||
		    (family == AF_INET6 && nl_addr_get_len(a) == 16)) {
			inet_end_set(&e, family, nl_addr_get_binary_addr(a), 0);
			memcpy(m->local[m->nr_local++], e.addr, 16);
		}
	}
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
	if (ret < 0)
		pr_err("--inet-map: the addresses of this network namespace: %s", nl_geterror(ret));
	m->local_read = !ret;
	return ret < 0 ? -EIO : 0;
}

static int is_local(struct inet_map *m, const uint8_t a[16])
{
	if (!m->local_read && read_local(m))
		return -EIO;
	for (size_t i = 0; i < m->nr_local; i++)
		if (!memcmp(m->local[i], a, 16))
			return 1;
	return 0;
}

/* The pair whose OLD is the entry's address a (4 or 16 bytes), or NULL. */
static const struct inet_map_pair *find(const struct inet_map *m, const ProtobufCBinaryData *a)
{
	struct inet_end e;
	inet_end_set(&e, a->len == 4 ? AF_INET : AF_INET6, a->data, 0);
	for (size_t i = 0; i < m->nr; i++)
		if (!memcmp(m->v[i].old, e.addr, 16))
			return &m->v[i];
	return NULL;
}

/* NEW into the entry's bytes: as long as they were (the same family;
 * an AF_INET6 socket's v4-mapped address stays v4-mapped). */
static void put(ProtobufCBinaryData *a, const uint8_t new[16])
{
	memcpy(a->data, a->len == 4 ? new + 12 : new, a->len);
}

int inet_map_entry(struct inet_map *m, InetSkEntry *s, char *why, size_t len)
{
	const struct inet_map_pair *src = s->has_src_addr ? find(m, &s->src_addr) : NULL;
	const struct inet_map_pair *dst = s->has_dst_addr ? find(m, &s->dst_addr) : NULL;
	if (src) {
		int local = is_local(m, src->new);
		char o[INET6_ADDRSTRLEN], n[INET6_ADDRSTRLEN];
		if (local < 0)
			return local;
		if (!local) {
			snprintf(why, len,
				 "--inet-map %s=%s: %s is not an address of this network "
				 "namespace (the socket is bound to %s)",
				 addr_str(src->old, o, sizeof(o)), addr_str(src->new, n, sizeof(n)),
				 n, o);
			return -EADDRNOTAVAIL;
		}
		put(&s->src_addr, src->new);
	}
	if (dst)
		put(&s->dst_addr, dst->new);
	return 0;
}

/* A connection of the images whose peer is outside the tree: the dump
 * locked it (its entry names the dump's lock). */
static int outside(const FileEntry *e)
{
	return e->type == FILE_TYPE__FILE_INET_SK && e->inet_sk && e->inet_sk->net_lock;
}

int inet_lock_restored(const struct restore_files *rf, char *name, size_t len)
{
	size_t n = 0;
	name[0] = '\0';
	for (size_t i = 0; i < rf->nr_files; i++)
		n += outside(rf->files[i]) && !files_inherited(rf, rf->files[i]);
	if (!n)
		return 0;
	struct net_lock_conn *v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < rf->nr_files; i++) {
		if (!outside(rf->files[i]) || files_inherited(rf, rf->files[i]))
			continue;
		sk_ports_local(rf->files[i]->inet_sk, &v[n].local);
		sk_ports_peer(rf->files[i]->inet_sk, &v[n].peer);
		n++;
	}
	char why[256] = "";
	net_lock_name(name, len, getuid());
	int ret = net_lock_add(name, v, n, why, sizeof(why));
	free(v);
	if (ret) {
		pr_err("restore: network lock %s of the connections to peers outside the tree: %s",
		       name, why);
		net_lock_remove(name, why, sizeof(why)); /* what part of it was made */
		name[0] = '\0';
	}
	return ret;
}
