/*
 * sk-level-opts: small tables of a socket family's own integer options
 * (SOL_PACKET for sk-packet.c, SOL_NETLINK for sk-netlink.c), kept as
 * sk_opt entries beside the SOL_SOCKET ones of sk-opts.c's table.
 *
 * Dump reads every row getsockopt answers (a kernel without the option,
 * or a socket type that has none, is skipped: nothing to keep).  Restore
 * sets the rows in table order (order matters: PACKET_VERSION before the
 * rings), only where the new socket's value differs, and reads each back.
 */
#ifndef CKPT_SK_LEVEL_OPTS_H
#define CKPT_SK_LEVEL_OPTS_H

#include <stddef.h>

#include "arena.h"
#include "fdinfo.pb-c.h"
#include "sk-opts.h"

struct level_opt {
	const char *name;
	int level, opt;
};

struct level_opts {
	const struct level_opt *rows;
	size_t nr;
};

/* Every row of t that sk answers, into *out (arena a).  0 or -ENOMEM. */
int level_opts_dump(struct arena *a, int sk, const struct level_opts *t, SkOpt ***out, size_t *nr);

/* Nonzero if each option is a row of t, an int, given once. */
int level_opts_valid(SkOpt *const *o, size_t nr, const struct level_opts *t);

/* Set them on sk; 0 or -errno with the option named in err. */
int level_opts_restore(int sk, SkOpt *const *o, size_t nr, const struct level_opts *t, char *err,
		       size_t errlen);

/* restore --verify: each that reads otherwise goes to fn; how many. */
int level_opts_verify(int sk, SkOpt *const *o, size_t nr, const struct level_opts *t,
		      sk_opts_diff_fn fn, void *arg);

#endif
