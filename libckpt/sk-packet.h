/*
 * sk-packet: AF_PACKET sockets (packet_sk_kind in file-kinds.h): what
 * mem.c and verify.c ask of them.
 */
#ifndef CKPT_SK_PACKET_H
#define CKPT_SK_PACKET_H

#include <stdint.h>
#include <sys/types.h>

#include "fdinfo.pb-c.h"
#include "sk-opts.h"

/* mem.c: a mapping of `len` bytes at `pgoff` of socket:[ino], fd `fd` of
 * `pid`: 0 if it maps the whole rings of a packet socket (a restore can
 * map them again so), else -ENOTSUP after one line naming it. */
int packet_map_check(pid_t pid, int fd, uint64_t ino, uint64_t pgoff, uint64_t len);

/* restore --verify: the options, device and fanout of restored socket sk
 * read back; each difference goes to fn.  How many. */
int packet_sk_verify(int sk, const PacketSkEntry *p, sk_opts_diff_fn fn, void *arg);

/* The same for a netlink socket (sk-netlink.c): options, portid, groups,
 * peer. */
int netlink_sk_verify(int sk, const NetlinkSkEntry *n, sk_opts_diff_fn fn, void *arg);

#endif
