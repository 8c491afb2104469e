/*
 * cr-pty: the harness side of --on-pty (tests/cr/tty.cmake).  The test
 * runs as the foreground job of a "shell" that owns a fresh pty, like a
 * program started from an interactive terminal; the restoring ckptctl
 * gets another pty as its stdin, stdout and controlling terminal.  We keep
 * both masters (so the terminals stay up) and print what the test wrote
 * on them when it fails.
 */
#ifndef CR_PTY_H
#define CR_PTY_H

#include "cr-run.h"

/* A new pty in slot 0 (the test's) or 1 (the restore's); its slave's
 * name goes into the test's file `name` ($CR_DIR/start-tty, restore-tty).
 * 0 or -1. */
int pty_new(struct run *r, int slot, const char *name);
/* The slave of the newest pty. */
const char *pty_slave_name(void);
/* In a child of the harness: become the shell (session leader on the
 * newest pty), run exec_test(r) in a foreground job of its own, and end
 * with the job's exit status. */
__attribute__((noreturn)) void pty_shell_run(struct run *r, void (*exec_test)(struct run *));
/* pre_exec of the restoring ckptctl: a session on the newest pty. */
void pty_restore_pre_exec(void *arg);
/* Print what is unread on our masters (a failing test's last words). */
void pty_print(void);

#endif
