/*
 * sk-raw: the inet sockets other than TCP and UDP that sk-inet.c dumps
 * and restores — raw sockets (SOCK_RAW, any protocol), ICMP ping sockets
 * (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6) and UDP-Lite (SOCK_DGRAM
 * with IPPROTO_UDPLITE) — what sets them apart (sk-raw.c says how).
 */
#ifndef CKPT_SK_RAW_H
#define CKPT_SK_RAW_H

#include <stdint.h>
#include <sys/types.h>

#include "fdinfo.pb-c.h"
#include "sk-diag.h"
#include "sk-opts.h"

/* The protocol socket() takes for s: the image's, or TCP/UDP by type. */
int inet_sk_protocol(const InetSkEntry *s);

/* Is a socket of this family, type and protocol one the engine keeps? */
int inet_kind_supported(int family, int type, int proto);

/* Is it one of sk-raw.c's (not TCP, not UDP)? */
int inet_kind_other(int type, int proto);

/* "TCP", "UDP", "UDP-Lite", "ICMP", "raw" */
const char *inet_kind_name(const InetSkEntry *s);

/* A raw or ping socket, which sock_diag's TCP/UDP tables do not list:
 * its state, peer and queues from /proc/PID/net/{raw,raw6,icmp,icmp6}
 * (the owner's network namespace), its shutdown state from poll().  0,
 * or -errno after one line naming the socket (pid, fd). */
int inet_proc_state(pid_t pid, int fd, int sk, int type, uint64_t ino, struct inet_diag *out);

/* Restore: are the image's type, protocol and state one this file makes?
 * (Old images: no protocol field, TCP or UDP.) */
int inet_kind_valid(const InetSkEntry *s);

/* Restore: a raw socket needs CAP_NET_RAW (in the network namespace's
 * user namespace): refused by name before anything is made when the
 * restore does not hold it effective — a user's restore through the
 * agent never does; the kernel would refuse socket() anyway.  0 or
 * -EPERM. */
int inet_kind_permitted(const InetSkEntry *s);

/* Restore: socket() for s failed with errno `err`: why, where it is
 * one of this file's kinds' reasons (ping_group_range, CAP_NET_RAW, a
 * kernel without UDP-Lite), into why (left as it is otherwise). */
void inet_kind_why(const InetSkEntry *s, int err, char *why, size_t len);

/* Restore: is the bind of s one to skip?  A raw socket's "port" is its
 * protocol and an unbound one reads the wildcard: nothing to bind. */
int inet_kind_skip_bind(const InetSkEntry *s);

/* restore --verify: the family, type, protocol and local address of the
 * restored socket sk against the image; each difference to fn (as
 * sk_opts_verify does).  Returns how many differ. */
int inet_kind_verify(int sk, const InetSkEntry *s, sk_opts_diff_fn fn, void *arg);

#endif
