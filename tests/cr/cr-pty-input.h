/*
 * pty-input.c: the parts of cr-tty (tty.c) with pairs of their own: input
 * their slaves have not read, slaves of a pair whose master is gone.
 */
#ifndef CR_PTY_INPUT_H
#define CR_PTY_INPUT_H

/* Before the checkpoint; variant "pty-input..." or "pty-extproc". */
void input_setup(const char *variant);
/* After the restore: each slave reads exactly its input, nothing more. */
void input_check(void);
void dead_setup(void);
void dead_check(void);

#endif
