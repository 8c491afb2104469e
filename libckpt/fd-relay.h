/*
 * fd-relay: one open file that can only be made once the tree exists (a
 * pidfd of a process of the tree, a file under its /proc/PID), shared by
 * every process that holds it, as after a fork.
 *
 * The driver's pool holds, in the description's place, a datagram socket
 * connected to itself (relay_socket); every holder inherits it at its fd
 * numbers.  In post_install (every process of the tree exists by then,
 * zombies included) the first holder in restore order makes the file and
 * sends it on that socket once for each other holder, which receive it;
 * each then puts it at its fd numbers in place of the socket.
 */
#ifndef CKPT_FD_RELAY_H
#define CKPT_FD_RELAY_H

#include <stddef.h>

#include "fdinfo.pb-c.h"
#include "files.h"

/* The pool's stand-in: a new O_CLOEXEC socket, or -errno. */
int relay_socket(void);

/* Makes the file in the first holder: a new fd, or -errno. */
typedef int (*relay_open_fn)(const FileEntry *e);

/* Fd i of restoring task `idx` (its stand-in installed): the file, made
 * by `open` here or received, or a dup of an earlier fd of the same
 * description, put at its number with its close-on-exec, owner and
 * signal.  0 or -errno; the caller names the file in its error line. */
int relay_install(const struct restore_files *rf, size_t idx, size_t i, const FileEntry *e,
		  relay_open_fn open);

#endif
