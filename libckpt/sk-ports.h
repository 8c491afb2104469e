/*
 * sk-ports: the TCP and UDP ports a restore binds, as this node holds them
 * now (sock_diag, sk-diag.c), for sk-inet.c and the restore driver.
 *
 * A port the images bind may be held here by
 *   - TIME_WAIT sockets, left by the job's own connections (closed
 *     actively before the dump, or after it by a job that ran on after a
 *     -R dump, or by a restored job since killed).  A TIME_WAIT socket
 *     whose sk_reuse is 0 blocks a bind even with SO_REUSEADDR.  They
 *     hold no process's state: they are closed (SOCK_DESTROY) and the bind
 *     retried.  Repair mode cannot serve here, although it lets bind()
 *     and listen() share the port (SK_FORCE_REUSE): the kernel refuses
 *     TCP_REPAIR on a listening socket (tcp_can_repair_sock), so the
 *     listener would stay in repair mode, and so would every connection
 *     it accepts (recv EPERM, send EINVAL; checked on 6.18);
 *   - a live socket, of another process: the restore must not share its
 *     port.  It is refused by name, or restored into a fresh network
 *     namespace (restore-netns.c) when the job's network is private.
 */
#ifndef CKPT_SK_PORTS_H
#define CKPT_SK_PORTS_H

#include <stddef.h>
#include <stdint.h>

#include "fdinfo.pb-c.h"
#include "files.h"
#include "sk-diag.h"

/* sk-inet.c: a new socket for s with the options it takes before bind,
 * or -errno with the reason in why; bind it as the restore does. */
int inet_new_socket(const InetSkEntry *s, char *why, size_t len);
int inet_bind_src(int sk, const InetSkEntry *s);

/* "socket:[INO] TCP 127.0.0.1:80" (+ " -> 127.0.0.1:4000" when connected) */
const char *sk_ports_name(const InetSkEntry *s, char *buf, size_t len);

/* The dumped local (or peer) end of s. */
void sk_ports_local(const InetSkEntry *s, struct inet_end *e);
void sk_ports_peer(const InetSkEntry *s, struct inet_end *e);

/*
 * bind() or listen() of s (TCP) said EADDRINUSE: close the TIME_WAIT
 * sockets holding its port, if nothing else holds it but sockets this
 * restore made (ours[nr], inodes).  0: retry; else -errno with the
 * reason in why (a live socket named: -EADDRINUSE).
 */
int sk_ports_clear(const InetSkEntry *s, const uint64_t *ours, size_t nr, char *why, size_t len);

/* connect() of connection s in repair mode said EADDRNOTAVAIL: close
 * the TIME_WAIT socket of its very 4-tuple (the kernel reuses one only
 * when it had timestamps).  0: retry; else -errno with why. */
int sk_ports_clear_conn(const InetSkEntry *s, char *why, size_t len);

/* What sk_ports_check found, before anything is created. */
struct ports_check {
	const InetSkEntry *taken; /* the first socket whose port a live socket holds */
	char holder[96];	  /* that socket: "inode N, pid P" */
	int time_wait;		  /* a TCP port is held by TIME_WAIT sockets only */
};

/* Probe each port of the images (a bind like the restore's, at once
 * undone; a connection: its 4-tuple in sock_diag). */
int sk_ports_check(const struct restore_files *rf, struct ports_check *out);

/*
 * A bound socket e of the images with SO_REUSEPORT off shares its port
 * with one that has it on (zdtm socket-tcp-reuseport): the kernel let
 * the later of them bind (and listen) only because both had it on then;
 * e cleared it since (a listener stays in the port's group).  1: e binds
 * and listens with SO_REUSEPORT on, and clears it once every socket of
 * the images is bound (a sibling bound after it needs it too); else 0.
 */
int sk_ports_left_reuseport(const struct restore_files *rf, const FileEntry *e);

/*
 * The job's network is private when every connected socket's peer is
 * the local end of another socket of the images, and every socket is
 * bound to a wildcard or loopback address or one that is_local() knows
 * (this node's), and no unix socket has an abstract name (which lives
 * in the network namespace).  1, or 0 with the first socket that is not
 * in why.
 */
int sk_ports_private(const struct restore_files *rf, int (*is_local)(const uint8_t a[16], void *),
		     void *arg, char *why, size_t len);

/* The addresses of this node the images' sockets use (neither wildcard
 * nor loopback), each once, into out[max]: how many (at most max). */
size_t sk_ports_addrs(const struct restore_files *rf, struct inet_end *out, size_t max);

#endif
