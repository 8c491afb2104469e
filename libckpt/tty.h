/*
 * tty: terminals, a file kind (tty_kind, see file-kinds.h and tty.c).
 * One step lies outside the kind table: a session leader must take its
 * controlling terminal back before it forks its children (they inherit
 * it at fork, never later), so restore-tree.c calls tty_restore_ctty
 * right after the leader's setsid(), while the pool is still open.
 */
#ifndef CKPT_TTY_H
#define CKPT_TTY_H

#include <stddef.h>

#include "files.h"

struct fd_dump;

/* Dump: the fd is a slave of a pty that is gone (its master closed, its
 * /dev/pts node removed): the tty kind's, not a removed device node. */
int tty_dead_slave(const struct fd_dump *f);

/* In restoring task `idx`, a new session leader: make the pty it had as
 * controlling terminal its controlling terminal again (TIOCSCTTY on a
 * pool fd).  0 when it had none.  0 or -errno, logged. */
int tty_restore_ctty(const struct restore_files *rf, size_t idx);

/* A console or virtual terminal no process of the tree has as its
 * controlling terminal: reopened by path (regfile.c). */
int tty_is_system_terminal(const struct fd_dump *f);

#endif
