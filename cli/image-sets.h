/*
 * ckptctl image squash|gc|rm|ls: checkpoint sets of jobs (storage.h, job
 * sets).  cmd_image() hands these subcommands over.
 */
#ifndef CKPT_CLI_IMAGE_SETS_H
#define CKPT_CLI_IMAGE_SETS_H

#include <stdint.h>

/* 1 if `sub` is one of ours. */
int image_sets_cmd(const char *sub);
/* argv[0] is "image", argv[1] the subcommand. */
int cmd_image_sets(int argc, char **argv);
/* image gc --ended: the sets of Slurm jobs over for keep_s (ended-gc.c). */
int gc_ended(const char *base, uint64_t keep_s);

#endif
