/*
 * sk-packet: AF_PACKET sockets (SOCK_RAW, SOCK_DGRAM, SOCK_PACKET), a file
 * kind (file-kinds.h) with packet_sk_entry (proto/sk.proto).
 *
 * Dump: packet_diag (sock_diag, one dump of every packet socket of the
 * network namespace, kept per dump) gives what getsockopt cannot: the
 * bound device, the running state, PACKET_COPY_THRESH, the membership
 * list, the rings' parameters and the bytes queued.  Options come from
 * getsockopt: SOL_SOCKET ones from sk-opts.c's table, SOL_PACKET ones from
 * this file's (sk-level-opts.c), PACKET_FANOUT with its flags.
 *
 * Restore, in this order (the kernel's rules): socket(), SOL_SOCKET and
 * SOL_PACKET options (PACKET_VERSION and PACKET_RESERVE refuse a socket
 * with a ring), bind (a device is named: its index here must be the
 * dumped one, the program holds the number), memberships, rings, fanout
 * (only a bound, running socket joins a group, and no bind comes after).
 *
 * Refused at dump, by name: packets queued and not read (they cannot be
 * put back in a receive queue), a ring in use (a frame ever filled: the
 * kernel's position in the ring cannot be read, nor set), a TPACKET_V3
 * receive ring (its block headers hold the kernel's timestamps), fanout
 * groups with a BPF program or a kernel-chosen id (UNIQUEID) or a member
 * outside the tree, a socket that has a protocol but does not run (its
 * device went down or away).
 * Refused at load: a user's restore (packet sockets need CAP_NET_RAW,
 * which no restore lends), a fanout group id some socket here uses.
 * A ring mapped by the program comes back mapped at the same address
 * (mem.c records its fd, packet_map_check checks the mapping is whole).
 * Not kept (counters of the past, which only a read that clears them
 * shows): PACKET_STATISTICS, PACKET_ROLLOVER_STATS, a pending socket error.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>
#include <linux/sock_diag.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "file-kinds.h"
#include "log.h"
#include "priv.h"
#include "proc.h"
#include "sk-diag.h"
#include "sk-level-opts.h"
#include "sk-opts.h"
#include "sk-packet.h"

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24
#endif
#define MAX_ADDR 32	      /* MAX_ADDR_LEN: a membership's address */
#define MAX_MREQS 1024	      /* memberships an image may claim */
#define MAX_MREQ_COUNT 65536  /* times one membership was added */
#define MAX_RING (1ULL << 32) /* bytes of one ring an image may claim */

/* SOL_PACKET options, in the order the restore sets them: the version
 * and the reserve before the rings (set_ring); VNET_HDR before its size. */
/* clang-format off */
#define ROW(o) { #o, SOL_PACKET, o }
/* clang-format on */
static const struct level_opt packet_rows[] = {
	ROW(PACKET_VERSION),	  ROW(PACKET_RESERVE),	       ROW(PACKET_AUXDATA),
	ROW(PACKET_ORIGDEV),	  ROW(PACKET_VNET_HDR),	       ROW(PACKET_VNET_HDR_SZ),
	ROW(PACKET_LOSS),	  ROW(PACKET_TIMESTAMP),       ROW(PACKET_TX_HAS_OFF),
	ROW(PACKET_QDISC_BYPASS), ROW(PACKET_IGNORE_OUTGOING),
};
static const struct level_opts packet_opts = { packet_rows,
					       sizeof(packet_rows) / sizeof(packet_rows[0]) };

/* ------------------------------ diag --------------------------------- */

struct packet_diag {
	uint64_t ino;
	uint32_t num; /* protocol, host order */
	int has_info, has_rx, has_tx, has_fanout;
	struct packet_diag_info info;
	struct packet_diag_ring rx, tx;
	uint32_t fanout;
	uint32_t rmem; /* bytes queued for reading */
	struct packet_diag_mclist *mc;
	size_t nr_mc;
};

struct packet_table {
	struct packet_diag *v;
	size_t nr, cap;
};

static int keep_mclist(struct packet_diag *d, const struct nlattr *a)
{
	size_t n = (size_t)nla_len(a) / sizeof(struct packet_diag_mclist);
	if (!n)
		return 0;
	d->mc = malloc(n * sizeof(*d->mc));
	if (!d->mc)
		return -ENOMEM;
	memcpy(d->mc, nla_data(a), n * sizeof(*d->mc));
	d->nr_mc = n;
	return 0;
}

static void copy_attr(void *to, size_t len, int *has, const struct nlattr *a)
{
	if (!a || (size_t)nla_len(a) < len)
		return;
	memcpy(to, nla_data(a), len);
	*has = 1;
}

static int parse_packet(struct nlmsghdr *h, void *arg)
{
	struct packet_table *t = arg;
	struct packet_diag_msg *m = nlmsg_data(h);
	struct nlattr *tb[PACKET_DIAG_MAX + 1];
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
	    nla_parse(tb, PACKET_DIAG_MAX, (struct nlattr *)(m + 1),
		      (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m))), NULL) < 0)
		return -EIO;
	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *v = realloc(t->v, cap * sizeof(*t->v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	struct packet_diag *d = &t->v[t->nr++];
	memset(d, 0, sizeof(*d));
	d->ino = m->pdiag_ino;
	d->num = m->pdiag_num;
	copy_attr(&d->info, sizeof(d->info), &d->has_info, tb[PACKET_DIAG_INFO]);
	copy_attr(&d->rx, sizeof(d->rx), &d->has_rx, tb[PACKET_DIAG_RX_RING]);
	copy_attr(&d->tx, sizeof(d->tx), &d->has_tx, tb[PACKET_DIAG_TX_RING]);
	copy_attr(&d->fanout, sizeof(d->fanout), &d->has_fanout, tb[PACKET_DIAG_FANOUT]);
	if (tb[PACKET_DIAG_MEMINFO] && nla_len(tb[PACKET_DIAG_MEMINFO]) >= (int)sizeof(uint32_t))
		d->rmem = ((const uint32_t *)nla_data(
			tb[PACKET_DIAG_MEMINFO]))[SK_MEMINFO_RMEM_ALLOC];
	return tb[PACKET_DIAG_MCLIST] ? keep_mclist(d, tb[PACKET_DIAG_MCLIST]) : 0;
}

static void free_table(struct packet_table *t)
{
	for (size_t i = 0; i < t->nr; i++)
		free(t->v[i].mc);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* Every packet socket of our network namespace (on the heap). */
static int load_table(struct packet_table *t)
{
	struct packet_diag_req req = {
		.sdiag_family = AF_PACKET,
		.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG |
			      PACKET_SHOW_FANOUT | PACKET_SHOW_MEMINFO,
	};
	memset(t, 0, sizeof(*t));
	int ret = sk_diag_dump(&req, sizeof(req), parse_packet, t);
	if (ret)
		free_table(t);
	return ret;
}

static const struct packet_diag *find_diag(const struct packet_table *t, uint64_t ino)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->v[i].ino == ino)
			return &t->v[i];
	return NULL;
}

/* ------------------------------ dump --------------------------------- */

static int packet_match(const struct fd_dump *f)
{
	return S_ISSOCK(f->st->st_mode) && sk_domain(f->pid, f->fd) == AF_PACKET;
}

/* The table moved into the dump's arena (gone even when the dump fails). */
static int table_to_arena(struct arena *a, struct packet_table *t)
{
	struct packet_diag *v = arena_alloc(a, (t->nr + 1) * sizeof(*v));
	for (size_t i = 0; v && i < t->nr; i++) {
		v[i] = t->v[i];
		v[i].mc = arena_alloc(a, (t->v[i].nr_mc + 1) * sizeof(*v[i].mc));
		if (!v[i].mc)
			v = NULL;
		else if (t->v[i].nr_mc)
			memcpy(v[i].mc, t->v[i].mc, t->v[i].nr_mc * sizeof(*v[i].mc));
	}
	size_t nr = t->nr;
	free_table(t);
	t->v = v;
	t->nr = t->cap = v ? nr : 0;
	return v ? 0 : -ENOMEM;
}

/* The dump's table, loaded at its first packet socket. */
static struct packet_table *get_table(struct fd_dump *f)
{
	struct packet_table *t = *f->priv;
	if (t)
		return t;
	t = arena_alloc(&f->fdump->a, sizeof(*t));
	if (!t || load_table(t) || table_to_arena(&f->fdump->a, t))
		return NULL;
	*f->priv = t;
	return t;
}

static int tree_packet_socket(const struct files_dump *fdump, uint64_t ino)
{
	for (size_t i = 0; i < fdump->nr; i++) {
		const FileEntry *e = fdump->descs[i].entry;
		if (e && e->type == FILE_TYPE__FILE_PACKET_SK && e->packet_sk->ino == ino)
			return 1;
	}
	return 0;
}

/* A fanout group must be the tree's alone: a member outside would stay
 * in the old group (or the restore would join a stranger's). */
static int check_groups(const struct files_dump *fdump, const struct packet_table *t)
{
	for (size_t i = 0; i < fdump->nr; i++) {
		const FileEntry *e = fdump->descs[i].entry;
		if (!e || e->type != FILE_TYPE__FILE_PACKET_SK || !e->packet_sk->fanout)
			continue;
		uint32_t id = e->packet_sk->fanout & 0xffff;
		for (size_t k = 0; k < t->nr; k++) {
			if (!t->v[k].has_fanout || (t->v[k].fanout & 0xffff) != id ||
			    tree_packet_socket(fdump, t->v[k].ino))
				continue;
			pr_err("pid %d: fd %d: socket:[%llu]: packet fanout group %u has a member "
			       "outside the tree (socket:[%llu]): not supported",
			       fdump->descs[i].pid, fdump->descs[i].fd,
			       (unsigned long long)e->packet_sk->ino, id,
			       (unsigned long long)t->v[k].ino);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int packet_dump_tree(struct files_dump *fdump, void **priv)
{
	int ret = *priv ? check_groups(fdump, *priv) : 0;
	*priv = NULL; /* the table lives in the arena */
	return ret;
}

static uint64_t ring_bytes(const struct packet_diag_ring *r)
{
	return (uint64_t)r->pdr_block_size * r->pdr_block_nr;
}

static int all_zero(const unsigned char *p, uint64_t len)
{
	static const unsigned char zero[4096];
	for (uint64_t at = 0; at < len; at += sizeof(zero)) {
		uint64_t n = len - at < sizeof(zero) ? len - at : sizeof(zero);
		if (memcmp(p + at, zero, n))
			return 0;
	}
	return 1;
}

/* Were the rings ever used?  A fresh ring is zero (its pages come zeroed,
 * a V1/V2 frame's status TP_STATUS_KERNEL/AVAILABLE is 0); the kernel
 * writes a frame's header as it fills or sends it.  Read through a
 * mapping of our own (the kernel lets any holder of the socket map it). */
static const char *rings_used(int sk, const struct packet_diag *d)
{
	uint64_t rx = d->has_rx ? ring_bytes(&d->rx) : 0, tx = d->has_tx ? ring_bytes(&d->tx) : 0;
	if (!rx && !tx)
		return NULL;
	unsigned char *m = mmap(NULL, rx + tx, PROT_READ, MAP_SHARED, sk, 0);
	if (m == MAP_FAILED)
		return "its rings cannot be mapped to be read";
	const char *why = NULL;
	if (!all_zero(m, rx))
		why = "its RX ring holds frames the kernel filled (the ring's position in the "
		      "kernel cannot be read back)";
	else if (!all_zero(m + rx, tx))
		why = "its TX ring holds frames written to be sent (the ring's position in the "
		      "kernel cannot be read back)";
	munmap(m, rx + tx);
	return why;
}

/* What cannot come back exactly: its reason, or NULL. */
static const char *refusal(int sk, const struct packet_diag *d, char *buf, size_t len)
{
	unsigned ftype = (d->fanout >> 16) & 0xff, fflags = d->fanout >> 24;
	if (d->rmem) {
		snprintf(buf, len, "%u bytes of packets received and not read yet", d->rmem);
		return buf;
	}
	if (d->num && !(d->info.pdi_flags & PDI_RUNNING))
		return "it has a protocol but does not receive (its device is down or gone)";
	if (d->has_fanout && (ftype == PACKET_FANOUT_CBPF || ftype == PACKET_FANOUT_EBPF))
		return "PACKET_FANOUT with a BPF program (PACKET_FANOUT_CBPF/EBPF) cannot be read "
		       "back";
	if (d->has_fanout && (fflags & (PACKET_FANOUT_FLAG_UNIQUEID >> 8)))
		return "PACKET_FANOUT_FLAG_UNIQUEID: a group id the kernel chose";
	if (d->has_rx && d->info.pdi_version == TPACKET_V3)
		return "a TPACKET_V3 RX ring (its block headers hold the kernel's timestamps)";
	return rings_used(sk, d);
}

static PacketRingEntry *dump_ring(struct arena *a, const struct packet_diag_ring *r, int v3)
{
	PacketRingEntry *e = arena_alloc(a, sizeof(*e));
	if (!e)
		return NULL;
	packet_ring_entry__init(e);
	e->block_size = r->pdr_block_size;
	e->block_nr = r->pdr_block_nr;
	e->frame_size = r->pdr_frame_size;
	e->frame_nr = r->pdr_frame_nr;
	if (v3) {
		e->has_retire_tmo = e->has_sizeof_priv = e->has_features = 1;
		e->retire_tmo = r->pdr_retire_tmo;
		e->sizeof_priv = r->pdr_sizeof_priv;
		e->features = r->pdr_features;
	}
	return e;
}

/* The name of device `index` here, in the arena; NULL if none. */
static char *dev_name(struct arena *a, uint32_t index)
{
	char name[IF_NAMESIZE];
	if (!if_indextoname(index, name))
		return NULL;
	return arena_strdup(a, name);
}

static int dump_mreqs(struct arena *a, const struct packet_diag *d, PacketSkEntry *p)
{
	if (!d->nr_mc)
		return 0;
	p->mreqs = arena_alloc(a, d->nr_mc * sizeof(*p->mreqs));
	if (!p->mreqs)
		return -ENOMEM;
	for (size_t i = 0; i < d->nr_mc; i++) {
		const struct packet_diag_mclist *mc = &d->mc[i];
		PacketMreqEntry *m = arena_alloc(a, sizeof(*m));
		if (!m)
			return -ENOMEM;
		packet_mreq_entry__init(m);
		m->ifindex = mc->pdmc_index;
		m->type = mc->pdmc_type;
		m->count = mc->pdmc_count;
		if (!(m->ifname = dev_name(a, mc->pdmc_index)))
			return -ENODEV;
		size_t alen = mc->pdmc_alen < MAX_ADDR ? mc->pdmc_alen : MAX_ADDR;
		m->has_addr = 1;
		m->addr.len = alen;
		if (alen && !(m->addr.data = arena_alloc(a, alen)))
			return -ENOMEM;
		if (alen)
			memcpy(m->addr.data, mc->pdmc_addr, alen);
		p->mreqs[p->n_mreqs++] = m;
	}
	return 0;
}

static int dump_options(struct arena *a, int sk, PacketSkEntry *p, char *why, size_t len)
{
	InetSkEntry view = INET_SK_ENTRY__INIT;
	view.family = AF_PACKET;
	view.type = p->type;
	view.state = 7; /* TCP_CLOSE */
	int ret = sk_opts_dump(a, sk, &view, why, len);
	p->n_opts = view.n_opts;
	p->opts = view.opts;
	if (!ret)
		ret = level_opts_dump(a, sk, &packet_opts, &p->packet_opts, &p->n_packet_opts);
	return ret;
}

static int fill_entry(struct fd_dump *f, int sk, const struct packet_diag *d, PacketSkEntry *p,
		      char *why, size_t len)
{
	struct arena *a = &f->fdump->a;
	int v3 = d->info.pdi_version == TPACKET_V3;
	p->ino = d->ino;
	p->protocol = d->num;
	p->has_copy_thresh = d->info.pdi_copy_thresh != 0;
	p->copy_thresh = d->info.pdi_copy_thresh;
	if (d->info.pdi_index) {
		p->has_ifindex = 1;
		p->ifindex = d->info.pdi_index;
		if (!(p->ifname = dev_name(a, d->info.pdi_index))) {
			snprintf(why, len, "its device %u has no name", d->info.pdi_index);
			return -ENOTSUP;
		}
	}
	if (d->has_rx && !(p->rx_ring = dump_ring(a, &d->rx, v3)))
		return -ENOMEM;
	if (d->has_tx && !(p->tx_ring = dump_ring(a, &d->tx, v3)))
		return -ENOMEM;
	int ret = dump_mreqs(a, d, p);
	if (ret == -ENODEV)
		snprintf(why, len, "a membership's device has no name");
	if (ret)
		return ret == -ENODEV ? -ENOTSUP : ret;
	if (d->has_fanout) {
		int v = 0;
		socklen_t l = sizeof(v);
		p->has_fanout = 1; /* getsockopt adds the flags to what diag says */
		p->fanout =
			getsockopt(sk, SOL_PACKET, PACKET_FANOUT, &v, &l) ? d->fanout : (uint32_t)v;
	}
	return dump_options(a, sk, p, why, len);
}

static int packet_dump(struct fd_dump *f, FileEntry *e)
{
	struct packet_table *t = get_table(f);
	const struct packet_diag *d = t ? find_diag(t, f->st->st_ino) : NULL;
	if (!d) {
		pr_err("pid %d: fd %d: %s: packet socket %s", f->pid, f->fd, f->link,
		       t ? "not found by packet_diag" : "not listed: packet_diag failed");
		return t ? -ENOENT : -EIO;
	}
	int sk = files_getfd(f->pid, f->fd), type = 0;
	socklen_t l = sizeof(type);
	if (sk < 0)
		return sk;
	getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &l);
	char buf[160], why[256] = "";
	const char *no = refusal(sk, d, buf, sizeof(buf));
	PacketSkEntry *p = no ? NULL : arena_alloc(&f->fdump->a, sizeof(*p));
	int ret = no ? -ENOTSUP : p ? 0 : -ENOMEM;
	if (no)
		snprintf(why, sizeof(why), "%s", no);
	if (p) {
		packet_sk_entry__init(p);
		p->type = (uint32_t)type;
		ret = fill_entry(f, sk, d, p, why, sizeof(why));
	}
	close(sk);
	if (ret) {
		pr_err("pid %d: fd %d: %s: packet socket: %s%s", f->pid, f->fd, f->link,
		       why[0] ? why : strerror(-ret), ret == -ENOTSUP ? ": not supported" : "");
		return ret;
	}
	e->type = FILE_TYPE__FILE_PACKET_SK;
	e->packet_sk = p;
	return 0;
}

int packet_map_check(pid_t pid, int fd, uint64_t ino, uint64_t pgoff, uint64_t len)
{
	struct packet_table t;
	int ret = load_table(&t);
	if (ret)
		return ret;
	const struct packet_diag *d = find_diag(&t, ino);
	uint64_t whole =
		d ? (d->has_rx ? ring_bytes(&d->rx) : 0) + (d->has_tx ? ring_bytes(&d->tx) : 0) : 0;
	if (!d || pgoff || len != whole) {
		pr_err("pid %d: fd %d: socket:[%llu]: a mapping of %llu bytes at offset %llu of "
		       "its rings (%llu bytes): only a mapping of the whole rings is supported",
		       pid, fd, (unsigned long long)ino, (unsigned long long)len,
		       (unsigned long long)pgoff, (unsigned long long)whole);
		ret = -ENOTSUP;
	}
	free_table(&t);
	return ret;
}

/* ------------------------------ restore ------------------------------ */

static int valid_ring(const PacketRingEntry *r)
{
	if (!r)
		return 1;
	return r->block_size && r->block_nr && r->frame_size && r->frame_nr &&
	       !(r->block_size % 4096) && (uint64_t)r->block_size * r->block_nr <= MAX_RING;
}

static int valid_name(const char *n)
{
	size_t len = n ? strnlen(n, IF_NAMESIZE) : 0;
	if (!len || len >= IF_NAMESIZE || !strcmp(n, ".") || !strcmp(n, ".."))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (n[i] <= ' ' || n[i] == '/' || n[i] == ':' || (unsigned char)n[i] >= 0x7f)
			return 0;
	return 1;
}

static int valid_mreqs(const PacketSkEntry *p)
{
	if (p->n_mreqs > MAX_MREQS)
		return 0;
	for (size_t i = 0; i < p->n_mreqs; i++) {
		const PacketMreqEntry *m = p->mreqs[i];
		if (!m || !m->ifindex || !valid_name(m->ifname) || !m->count ||
		    m->count > MAX_MREQ_COUNT || m->addr.len > MAX_ADDR)
			return 0;
	}
	return 1;
}

static int valid_entry(const PacketSkEntry *p)
{
	if (!p || (p->type != SOCK_RAW && p->type != SOCK_DGRAM && p->type != SOCK_PACKET))
		return 0;
	if (p->protocol > 0xffff || (p->has_ifindex && (!p->ifindex || !valid_name(p->ifname))))
		return 0;
	if (!valid_ring(p->rx_ring) || !valid_ring(p->tx_ring) || !valid_mreqs(p))
		return 0;
	unsigned ftype = (p->fanout >> 16) & 0xff, fflags = p->fanout >> 24;
	if (p->fanout && (ftype == PACKET_FANOUT_CBPF || ftype == PACKET_FANOUT_EBPF ||
			  (fflags & (PACKET_FANOUT_FLAG_UNIQUEID >> 8))))
		return 0;
	/* SOCK_PACKET has none of these (its ops refuse SOL_PACKET) */
	if (p->type == SOCK_PACKET && (p->n_mreqs || p->rx_ring || p->tx_ring || p->fanout))
		return 0;
	InetSkEntry view = INET_SK_ENTRY__INIT;
	view.family = AF_PACKET;
	view.n_opts = p->n_opts;
	view.opts = p->opts;
	return sk_opts_valid(&view) &&
	       level_opts_valid(p->packet_opts, p->n_packet_opts, &packet_opts);
}

/* A fanout group of the images that a socket here is in already: the
 * tree's sockets would join a stranger's group. */
static int check_fanout(const struct restore_files *rf, const struct packet_table *t)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PACKET_SK || !e->packet_sk->fanout)
			continue;
		uint32_t id = e->packet_sk->fanout & 0xffff;
		for (size_t k = 0; k < t->nr; k++) {
			if (!t->v[k].has_fanout || (t->v[k].fanout & 0xffff) != id)
				continue;
			pr_err("socket:[%llu]: packet fanout group %u is in use here "
			       "(socket:[%llu])",
			       (unsigned long long)e->packet_sk->ino, id,
			       (unsigned long long)t->v[k].ino);
			return -EADDRINUSE;
		}
	}
	return 0;
}

static int packet_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	int any = 0, fanout = 0;
	(void)priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_PACKET_SK)
			continue;
		if (!valid_entry(e->packet_sk)) {
			pr_err("%s/files.img: entry %zu: bad packet socket", img_set_dir(set), i);
			return -EINVAL;
		}
		if (files_inherited(rf, e))
			continue;
		/* Never lent: a user's restore makes no packet socket. */
		if (!(priv_effective() & PRIV_BIT(CAP_NET_RAW))) {
			pr_err("socket:[%llu]: a packet socket: its restore needs CAP_NET_RAW, "
			       "which "
			       "this restore does not have",
			       (unsigned long long)e->packet_sk->ino);
			return -EPERM;
		}
		any = 1;
		fanout |= e->packet_sk->fanout != 0;
	}
	if (!any || !fanout)
		return 0;
	struct packet_table t;
	int ret = load_table(&t);
	if (!ret) {
		ret = check_fanout(rf, &t);
		free_table(&t);
	}
	return ret;
}

/* Device `name` must be index `index` here: the program knows the number. */
static int check_dev(const char *name, uint32_t index, char *why, size_t len)
{
	unsigned now = if_nametoindex(name);
	if (now == index)
		return 0;
	if (!now)
		snprintf(why, len, "device %s (index %u) is not here", name, index);
	else
		snprintf(why, len, "device %s is index %u here, %u at the dump", name, now, index);
	return -ENODEV;
}

static int do_bind(int sk, const PacketSkEntry *p, char *why, size_t len)
{
	if (!p->has_ifindex)
		return 0;
	int ret = check_dev(p->ifname, p->ifindex, why, len);
	if (ret)
		return ret;
	if (p->type == SOCK_PACKET) {
		struct sockaddr sa = { .sa_family = AF_PACKET };
		strncpy(sa.sa_data, p->ifname, sizeof(sa.sa_data) - 1);
		ret = bind(sk, &sa, sizeof(sa)) ? -errno : 0;
	} else {
		struct sockaddr_ll ll = { .sll_family = AF_PACKET,
					  .sll_protocol = htons((uint16_t)p->protocol),
					  .sll_ifindex = (int)p->ifindex };
		ret = bind(sk, (struct sockaddr *)&ll, sizeof(ll)) ? -errno : 0;
	}
	if (ret)
		snprintf(why, len, "bind to %s: %s", p->ifname, strerror(-ret));
	return ret;
}

struct mreq_max {
	int mr_ifindex;
	unsigned short mr_type, mr_alen;
	unsigned char mr_address[MAX_ADDR];
};

static int add_mreqs(int sk, const PacketSkEntry *p, char *why, size_t len)
{
	for (size_t i = 0; i < p->n_mreqs; i++) {
		const PacketMreqEntry *m = p->mreqs[i];
		struct mreq_max mr = { .mr_ifindex = (int)m->ifindex,
				       .mr_type = (unsigned short)m->type,
				       .mr_alen = (unsigned short)m->addr.len };
		int ret = check_dev(m->ifname, m->ifindex, why, len);
		if (ret)
			return ret;
		if (m->addr.len)
			memcpy(mr.mr_address, m->addr.data, m->addr.len);
		/* A test-only fault (CKPT_TEST_FAULT=packet-mreq): a membership
		 * added once less, for restore --verify to catch. */
		uint32_t count = m->count - (m->count > 1 && ckpt_test_fault("packet-mreq"));
		for (uint32_t n = 0; n < count; n++) {
			if (!setsockopt(sk, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
				continue;
			ret = -errno;
			snprintf(why, len, "PACKET_ADD_MEMBERSHIP %s type %u: %s", m->ifname,
				 m->type, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int set_ring(int sk, int opt, const PacketRingEntry *r, char *why, size_t len)
{
	struct tpacket_req3 req = { r->block_size, r->block_nr,	   r->frame_size, r->frame_nr,
				    r->retire_tmo, r->sizeof_priv, r->features };
	if (!setsockopt(sk, SOL_PACKET, opt, &req, sizeof(req)))
		return 0;
	int ret = -errno;
	snprintf(why, len, "%s: %s", opt == PACKET_RX_RING ? "PACKET_RX_RING" : "PACKET_TX_RING",
		 strerror(-ret));
	return ret;
}

static int set_fanout(int sk, uint32_t fanout, char *why, size_t len)
{
	int v = (int)fanout;
	if (!fanout || !setsockopt(sk, SOL_PACKET, PACKET_FANOUT, &v, sizeof(v)))
		return 0;
	int ret = -errno;
	snprintf(why, len, "PACKET_FANOUT %#x: %s", fanout, strerror(-ret));
	return ret;
}

static InetSkEntry opts_view(const PacketSkEntry *p)
{
	InetSkEntry v = INET_SK_ENTRY__INIT;
	v.family = AF_PACKET;
	v.type = p->type;
	v.state = 7; /* TCP_CLOSE */
	v.n_opts = p->n_opts;
	v.opts = p->opts;
	return v;
}

static int copy_thresh(int sk, const PacketSkEntry *p, char *why, size_t len)
{
	int v = (int)p->copy_thresh;
	if (!p->copy_thresh || !setsockopt(sk, SOL_PACKET, PACKET_COPY_THRESH, &v, sizeof(v)))
		return 0;
	snprintf(why, len, "PACKET_COPY_THRESH: %s", strerror(errno));
	return -errno;
}

/* Everything after socket(), in the kernel's order (see the top). */
static int build(int sk, const PacketSkEntry *p, char *why, size_t len)
{
	InetSkEntry view = opts_view(p);
	int ret = sk_opts_restore(sk, &view, SK_OPTS_NEW, why, len);
	if (!ret)
		ret = level_opts_restore(sk, p->packet_opts, p->n_packet_opts, &packet_opts, why,
					 len);
	if (!ret)
		ret = copy_thresh(sk, p, why, len);
	if (!ret)
		ret = do_bind(sk, p, why, len);
	if (!ret)
		ret = add_mreqs(sk, p, why, len);
	if (!ret && p->rx_ring)
		ret = set_ring(sk, PACKET_RX_RING, p->rx_ring, why, len);
	if (!ret && p->tx_ring)
		ret = set_ring(sk, PACKET_TX_RING, p->tx_ring, why, len);
	if (!ret)
		ret = set_fanout(sk, p->fanout, why, len);
	if (!ret)
		ret = sk_opts_restore(sk, &view, SK_OPTS_LATE, why, len);
	return ret;
}

static int packet_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	const PacketSkEntry *p = e->packet_sk;
	char why[256] = "";
	(void)rf;
	(void)priv;
	/* Bound to a device: made with no protocol, so that nothing but that
	 * device's packets reach it; SOCK_PACKET binds keep the protocol. */
	int proto = p->has_ifindex && p->type != SOCK_PACKET ? 0 : htons((uint16_t)p->protocol);
	int sk = socket(AF_PACKET, (int)p->type | SOCK_CLOEXEC, proto), ret;
	if (sk < 0) {
		ret = -errno;
		snprintf(why, sizeof(why), "socket: %s", strerror(-ret));
	} else {
		ret = build(sk, p, why, sizeof(why));
	}
	if (!ret && fcntl(sk, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0)
		ret = -errno;
	if (ret) {
		pr_err("socket:[%llu]: packet socket: cannot recreate: %s",
		       (unsigned long long)p->ino, why[0] ? why : strerror(-ret));
		if (sk >= 0)
			close(sk);
		return ret;
	}
	return sk;
}

/* ------------------------------ verify ------------------------------- */

static void verify_bind(int sk, const PacketSkEntry *p, sk_opts_diff_fn fn, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char now[64], was[64];
	memset(&ss, 0, sizeof(ss));
	if (getsockname(sk, (struct sockaddr *)&ss, &l))
		return;
	snprintf(was, sizeof(was), "%s", p->has_ifindex ? p->ifname : "");
	if (p->type == SOCK_PACKET) {
		const struct sockaddr *sa = (const void *)&ss;
		snprintf(now, sizeof(now), "%.*s", (int)sizeof(sa->sa_data), sa->sa_data);
	} else {
		const struct sockaddr_ll *ll = (const void *)&ss;
		char name[IF_NAMESIZE] = "";
		if (ll->sll_ifindex)
			if_indextoname((unsigned)ll->sll_ifindex, name);
		snprintf(now, sizeof(now), "%s", name);
		if ((uint32_t)ll->sll_ifindex != (p->has_ifindex ? p->ifindex : 0))
			snprintf(now + strlen(now), sizeof(now) - strlen(now), " (index %d)",
				 ll->sll_ifindex);
		if (ntohs(ll->sll_protocol) != p->protocol)
			fn(arg, "packet protocol", "other", "the dumped one");
	}
	if (strcmp(now, was))
		fn(arg, "packet bound device", now, was);
}

static void differ(sk_opts_diff_fn fn, void *arg, const char *what, unsigned long long now,
		   unsigned long long was, int *n)
{
	char a[32], b[32];
	if (now == was)
		return;
	snprintf(a, sizeof(a), "%llu", now);
	snprintf(b, sizeof(b), "%llu", was);
	fn(arg, what, a, b);
	(*n)++;
}

static void verify_ring(const char *what, int has, const struct packet_diag_ring *r,
			const PacketRingEntry *e, sk_opts_diff_fn fn, void *arg, int *n)
{
	unsigned long long now = has ? ring_bytes(r) : 0;
	unsigned long long was = e ? (unsigned long long)e->block_size * e->block_nr : 0;
	differ(fn, arg, what, now, was, n);
	if (has && e && now == was)
		differ(fn, arg, what, r->pdr_frame_nr * (unsigned long long)r->pdr_frame_size,
		       e->frame_nr * (unsigned long long)e->frame_size, n);
}

static const struct packet_diag_mclist *find_mc(const struct packet_diag *d,
						const PacketMreqEntry *m)
{
	for (size_t i = 0; i < d->nr_mc; i++) {
		const struct packet_diag_mclist *mc = &d->mc[i];
		if (mc->pdmc_index == m->ifindex && mc->pdmc_type == m->type &&
		    mc->pdmc_alen == m->addr.len &&
		    (!m->addr.len || !memcmp(mc->pdmc_addr, m->addr.data, m->addr.len)))
			return mc;
	}
	return NULL;
}

/* What packet_diag alone shows: rings, memberships, the copy threshold. */
static int verify_diag(int sk, const PacketSkEntry *p, sk_opts_diff_fn fn, void *arg)
{
	struct packet_table t;
	struct stat st;
	int n = 0;
	if (fstat(sk, &st) || load_table(&t))
		return 0;
	const struct packet_diag *d = find_diag(&t, st.st_ino);
	if (d) {
		verify_ring("packet RX ring bytes", d->has_rx, &d->rx, p->rx_ring, fn, arg, &n);
		verify_ring("packet TX ring bytes", d->has_tx, &d->tx, p->tx_ring, fn, arg, &n);
		differ(fn, arg, "PACKET_COPY_THRESH", d->info.pdi_copy_thresh, p->copy_thresh, &n);
		differ(fn, arg, "packet memberships", d->nr_mc, p->n_mreqs, &n);
		for (size_t i = 0; i < p->n_mreqs; i++) {
			const struct packet_diag_mclist *mc = find_mc(d, p->mreqs[i]);
			differ(fn, arg, "packet membership count", mc ? mc->pdmc_count : 0,
			       p->mreqs[i]->count, &n);
		}
	}
	free_table(&t);
	return n;
}

int packet_sk_verify(int sk, const PacketSkEntry *p, sk_opts_diff_fn fn, void *arg)
{
	InetSkEntry view = opts_view(p);
	int n = sk_opts_verify(sk, &view, fn, arg);
	n += level_opts_verify(sk, p->packet_opts, p->n_packet_opts, &packet_opts, fn, arg);
	verify_bind(sk, p, fn, arg);
	n += verify_diag(sk, p, fn, arg);
	int v = 0;
	socklen_t l = sizeof(v);
	if (p->type != SOCK_PACKET && !getsockopt(sk, SOL_PACKET, PACKET_FANOUT, &v, &l) &&
	    (uint32_t)v != p->fanout) {
		char now[32], was[32];
		snprintf(now, sizeof(now), "%#x", (unsigned)v);
		snprintf(was, sizeof(was), "%#x", p->fanout);
		fn(arg, "PACKET_FANOUT", now, was);
		n++;
	}
	return n;
}

const struct file_kind packet_sk_kind = {
	.name = "packet socket",
	.types = 1ULL << FILE_TYPE__FILE_PACKET_SK,
	.match = packet_match,
	.dump = packet_dump,
	.dump_tree = packet_dump_tree,
	.check_tree = packet_dump_tree,
	.read = packet_read,
	.open = packet_open,
};
