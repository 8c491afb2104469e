/*
 * place: the CLI's side of placement (docs/placement.md) — restore's
 * --cpu-cap and --cpu-map, `ckptctl check-restore` and
 * `ckptctl cpu-features`.
 */
#ifndef CKPTCTL_PLACE_H
#define CKPTCTL_PLACE_H

#include "ckpt/ckpt.h"

/* --cpu-cap fpu|all|none, --cpu-map exact|job: 0, or 1 after a message. */
int parse_cpu_cap(const char *cmd, const char *arg, enum ckpt_cpu_cap *cap);
int parse_cpu_map(const char *cmd, const char *arg, enum ckpt_cpu_map *map);

int cmd_check_restore(int argc, char **argv);
int cmd_cpu_features(int argc, char **argv);

#endif
