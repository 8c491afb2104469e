/*
 * cpu: what a set needs of the CPU that restores it — the user-visible
 * CPUID feature flags of the dumping CPU, the XSAVE components its tasks
 * used and their layout, the kernel release — recorded at dump
 * (inventory_entry.cpu, cpu.proto) and compared at restore before
 * anything is created (docs/placement.md).  placement.c adds the
 * topology the tasks' CPU and NUMA masks refer to.
 */
#ifndef CKPT_CPU_H
#define CKPT_CPU_H

#include "ckpt/ckpt.h"
#include "cpu.pb-c.h"
#include "freeze.h"
#include "restore.h"

/* Dump: fills *e (arrays malloc'ed: cpu_record_free) for the tree. */
int cpu_record(const struct frozen_tree *tree, CpuEntry *e);
void cpu_record_free(CpuEntry *e);

/* Restore: every field of an image's cpu_entry in range, else -EINVAL
 * after one line. */
int cpu_validate(const CpuEntry *e);
/* The set's CPU against this one under `cap`, and its kernel release
 * (older than the set's: a warning).  0, or -EOPNOTSUPP after one line
 * naming every missing feature and component. */
int cpu_check(const CpuEntry *e, const char *kernel, enum ckpt_cpu_cap cap);

/* The feature names recorded in e joined by sep, filtered by `only` (a
 * comma-separated list, NULL: all). 0 or -ENOSPC. */
int cpu_feature_names(const CpuEntry *e, const char *sep, const char *only, char *buf, size_t len);

/* placement.c: the topology (hwloc) and the job's CPUs, at dump. */
int placement_record(const struct frozen_tree *tree, CpuEntry *e);
/* The node's topology for placement_record, read once before a freeze. */
void placement_load(void);
void placement_unload(void);
void placement_record_free(CpuEntry *e);
int placement_validate(const CpuEntry *e);
/* Restore: every thread's CPU binding and memory-policy nodes against
 * what this node and the job's cpuset allow: kept, mapped (cpu_map
 * JOB) or refused naming the thread.  Edits the loaded core images. */
int placement_check(struct restore_ctx *c);

#endif
