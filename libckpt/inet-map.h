/*
 * inet-map: restore --inet-map OLD=NEW[,OLD=NEW...], the addresses a
 * restore puts its inet sockets on instead of the dumped ones (a job
 * requeued onto other nodes: docs/files.md, "Connections onto new
 * addresses").  Each socket whose local address is OLD is bound on NEW,
 * each connection whose peer is OLD gets NEW as its peer; the entries
 * are rewritten once they are loaded and checked, before anything is
 * created, so that every later step (bind, the repair-mode connect, the
 * ports' probe, the network lock, --verify) sees the new 4-tuples.
 */
#ifndef CKPT_INET_MAP_H
#define CKPT_INET_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "fdinfo.pb-c.h"

struct restore_files;

/* One pair; an IPv4 address as IPv4-mapped IPv6 (sk-diag.h's inet_end). */
struct inet_map_pair {
	uint8_t old[16], new[16];
};

struct inet_map {
	struct inet_map_pair *v;
	size_t nr;
	uint8_t (*local)[16]; /* this namespace's addresses, read at first need */
	size_t nr_local;
	int local_read;
};

/* Parse spec ("10.0.0.1=10.0.1.1,fd00::1=fd00::2"): OLD and NEW of one
 * family, neither a wildcard, no OLD and no NEW twice.  0, or -EINVAL
 * with the reason in why (-ENOMEM). */
int inet_map_parse(const char *spec, struct inet_map *m, char *why, size_t len);
void inet_map_free(struct inet_map *m);

/* Rewrite entry s's local and peer addresses by m; a local one only
 * onto an address of this network namespace (the caller's): else
 * -EADDRNOTAVAIL, the reason in why.  0 or -errno. */
int inet_map_entry(struct inet_map *m, InetSkEntry *s, char *why, size_t len);

/* restore --inet-map or --keep-net-lock: a network lock of the restore's
 * own (net-lock.h) on the connections to peers outside the tree, on
 * their new 4-tuples, made before any socket is: until it is lifted, the
 * restored end neither sends (a segment to a peer's host whose end is not
 * restored yet is answered with a RST) nor hears a thing.  Its name into
 * name[len] ("" when no connection needs it).  0 or -errno, logged. */
int inet_lock_restored(const struct restore_files *rf, char *name, size_t len);

#endif
