/*
 * sk-unix-bind: a unix socket's name on restore (bind, and the address
 * the restore's other sockets reach it at), for sk-unix.c; see
 * sk-unix-bind.c.
 */
#ifndef CKPT_SK_UNIX_BIND_H
#define CKPT_SK_UNIX_BIND_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "fdinfo.pb-c.h"

/* Where the restore reaches a socket whose file was gone at dump time:
 * a private link to its file, name in dir (dir -1: reached by name). */
struct unix_reach {
	int dir;
	char name[48];
	dev_t dev;
	ino_t ino;
};

/* A name that is a relative path. */
int unix_name_relative(const ProtobufCBinaryData *name);

/* The path of a socket's file: name, under u->dir when u's name is
 * relative (buf: PATH_MAX bytes). */
void unix_socket_path(const UnixSkEntry *u, const char *name, size_t len, char *buf);

socklen_t unix_make_addr(struct sockaddr_un *sa, const ProtobufCBinaryData *name);

/* Run bind() or connect() with a name, a relative one resolved in u->dir. */
int unix_at_dir(const UnixSkEntry *u, const ProtobufCBinaryData *name, int sk,
		int (*op)(int, const struct sockaddr *, socklen_t));

/* Bind sk to u's name as dumped; r: its reach, when u->unlinked. */
int unix_bind_name(int sk, const UnixSkEntry *u, struct unix_reach *r);

/* The address to reach u at (r, or u's name) in *sa, with the cwd moved
 * to where it resolves (*cwd: the old one, -1 if not moved); then
 * unix_leave_reach(cwd, ret) moves back and returns ret (or -errno). */
int unix_enter_reach(const UnixSkEntry *u, const struct unix_reach *r, struct sockaddr_un *sa,
		     socklen_t *len, int *cwd);
int unix_leave_reach(int cwd, int ret);

/* connect() sk to u, at r or by name. */
int unix_connect_reach(const UnixSkEntry *u, const struct unix_reach *r, int sk);

/* Remove r's link, if it is still the socket's file, and close its dir. */
void unix_drop_reach(struct unix_reach *r);

#endif
