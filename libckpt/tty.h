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
#include <stdint.h>
#include <sys/types.h>

#include "files.h"

struct fd_dump;
struct files_dump;

/* Dump: the fd is a slave of a pty that is gone (its master closed, its
 * /dev/pts node removed): the tty kind's, not a removed device node. */
int tty_dead_slave(const struct fd_dump *f);

/* In restoring task `idx`, a new session leader: make the pty it had as
 * controlling terminal its controlling terminal again (TIOCSCTTY on a
 * pool fd).  0 when it had none.  0 or -errno, logged. */
int tty_restore_ctty(const struct restore_files *rf, size_t idx);

/* tty-system.c: a console or virtual terminal that is no process's
 * controlling terminal but, maybe, that of sessions led by a process of
 * the tree: reopened by path (regfile.c), the session's terminal again. */
int tty_is_system_terminal(const struct fd_dump *f);
/* Dump: e (FILE_REG of such a terminal) gets the session it controls. */
int tty_system_dump(const struct fd_dump *f, FileEntry *e);
/* Dump (and check): every session leader of the tree whose controlling
 * terminal is a system terminal has a description of it in the dump. */
int tty_system_dump_tree(struct files_dump *fdump);
/* Load: e's ctty fields name a session leader of the tree. */
int tty_system_valid(const struct restore_files *rf, const FileEntry *e);
/* Restore, in session leader idx before it forks: TIOCSCTTY again. */
int tty_system_restore_ctty(const struct restore_files *rf, size_t idx);
/* Restore, in task idx with its fds: the foreground group back. */
int tty_system_post_install(const struct restore_files *rf, size_t idx);

/* Shared by tty.c and tty-system.c. */
#define TTY_VT_MAJOR 4	   /* virtual consoles and serial ports */
#define TTY_AUX_MAJOR 5	   /* 5:0 /dev/tty, 5:1 /dev/console, 5:2 /dev/ptmx */
struct stat_tty {
	uint32_t tty_nr; /* the kernel's encoding (tty_encode_dev) */
	int tpgid, sid;
};
/* tty_nr, tpgid and sid of a process (/proc/PID/stat). */
int tty_read_stat(pid_t pid, struct stat_tty *s);
/* The kernel's encoding of a device number, as in /proc/PID/stat tty_nr. */
uint32_t tty_encode_dev(dev_t d);
/* Through /dev/tty: pgrp becomes its foreground group (pid: for the log). */
int tty_set_foreground(pid_t pid, pid_t pgrp);

#endif
