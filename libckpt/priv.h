/*
 * priv: the capabilities a restore or dump was lent, and the rule that
 * nothing lent reaches the restored program (docs/security.md).
 *
 * ckptd's worker runs as the user it acts for, with a few capabilities
 * in its permitted set only: CAP_CHECKPOINT_RESTORE for the whole
 * operation, CAP_NET_ADMIN when TCP connections are repaired or TIME_WAIT
 * sockets closed (sk-ports.c), and
 * CAP_SYS_ADMIN until a fresh PID namespace is made.  Each is effective
 * only around the calls that need it (priv_raise/priv_lower) and dropped
 * from the permitted set once nothing further needs it (priv_drop).
 * For root, whose capabilities are all effective, these are no-ops.
 */
#ifndef CKPT_PRIV_H
#define CKPT_PRIV_H

#include <stdint.h>

#include "core.pb-c.h"

#define PRIV_BIT(cap) (1ULL << (cap))

/* Make `cap` effective for a call if it is permitted but not effective:
 * returns 1 when it did (pass that to priv_lower), else 0. */
int priv_raise(int cap);
void priv_lower(int cap, int raised);

/* Remove `caps` from the effective, permitted and inheritable sets. */
int priv_drop(uint64_t caps);

/* This process's permitted set, effective set, bounding set, securebits. */
uint64_t priv_permitted(void);
uint64_t priv_effective(void);
uint64_t priv_bounding(void);

/*
 * For a user's restore (ckpt_restore_opts.unprivileged): the process
 * `pid` of the images may come back only with exactly the restoring
 * process's uids, gids and groups, no capability, and its bounding set
 * and securebits, since the kernel lets a user set nothing else and
 * the capabilities we hold are lent, not the user's.  0, or -EPERM after
 * one line naming what differs.
 */
int priv_check_identity(const CredsEntry *c, uint32_t pid);

/*
 * A confined user's restore (ckpt_restore_opts.confine): the process
 * `pid` must have the restoring process's seccomp filters first in its
 * chain (it inherits them); one that lacks them would shed what the user
 * cannot.  0, or -EPERM after one line.
 */
struct ckpt_seccomp;
int priv_check_confined(const CoreEntry *core, const struct ckpt_seccomp *f, size_t n,
			uint32_t pid);

#endif
