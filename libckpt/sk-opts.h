/*
 * sk-opts: the socket options of a TCP, UDP, raw, ICMP ping or UDP-Lite
 * socket, dumped and restored from one table (sk-opts.c), for sk-inet.c.
 *
 * Dump reads every option of the table that applies to the socket into
 * InetSkEntry.opts, or refuses (by name) an option set to something the
 * engine cannot bring back.  Restore sets each option in two phases:
 * SK_OPTS_NEW on the new socket before bind/connect/listen, SK_OPTS_LATE
 * once it is bound, listening or connected (an established connection:
 * once it has left repair mode, which resets SO_REUSEADDR).  An option is
 * set only where the new socket's value differs from the dumped one, and
 * read back after: a value that does not come back fails the restore.
 *
 * A unix socket (sk-unix.c) comes in an InetSkEntry whose family is
 * AF_UNIX (type and state as sock_diag gives them, opts): only the
 * table's SOL_SOCKET rows for unix sockets apply to it.  A packet or
 * netlink socket (sk-packet.c, sk-netlink.c) comes with family AF_PACKET
 * or AF_NETLINK and state TCP_CLOSE: the SOL_SOCKET rows of inet sockets.
 */
#ifndef CKPT_SK_OPTS_H
#define CKPT_SK_OPTS_H

#include <stddef.h>

#include "arena.h"
#include "fdinfo.pb-c.h"

enum sk_opts_phase { SK_OPTS_NEW, SK_OPTS_LATE };

/* Fill s->opts from socket `sk` (s->family, type and state are set).
 * 0, -ENOMEM, or -ENOTSUP with the reason in err. */
int sk_opts_dump(struct arena *a, int sk, InetSkEntry *s, char *err, size_t errlen);

/* Set the options of `phase` on sk.  0 or -errno, with the reason
 * (naming the option) in err. */
int sk_opts_restore(int sk, const InetSkEntry *s, enum sk_opts_phase phase, char *err,
		    size_t errlen);

/* Nonzero if every option of the image is one of the table (restore
 * refuses images naming others: they come from a newer engine or a
 * corrupted set). */
int sk_opts_valid(const InetSkEntry *s);

/* restore --verify: each option the restore sets whose value on sk is not
 * the image's goes to fn (its name, the value now, the dumped one); the
 * ones the kernel changes by itself as packets flow are left out.
 * Returns how many differ. */
typedef void (*sk_opts_diff_fn)(void *arg, const char *name, const char *now, const char *was);
int sk_opts_verify(int sk, const InetSkEntry *s, sk_opts_diff_fn fn, void *arg);

/* The dumped value of an integer option, or `dflt` if the image lacks it. */
long long sk_opts_int(const InetSkEntry *s, int level, int name, long long dflt);

#endif
