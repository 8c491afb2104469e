/*
 * verify: restore --verify (verify.c), the restored tree compared with
 * its images while every process is still stopped.
 */
#ifndef CKPT_VERIFY_H
#define CKPT_VERIFY_H

struct restore_ctx;

/* 0, or -ESTALE after one line per difference (at most 20) and a last
 * line with their number. */
int restore_verify(const struct restore_ctx *c);

#endif
