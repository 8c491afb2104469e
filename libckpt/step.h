/*
 * step: srun steps of a batch job in one set (docs/mpi.md).  A step's
 * tasks run under slurmstepd, outside the batch script's tree; the dump
 * grafts them under the step's client (an srun of the tree, not dumped:
 * the restore puts the step proxy, ckpt-step, in its place) and records
 * what the proxy needs: the tasks' stdio and PMIx connection (step-fds.c)
 * and the step's PMIx namespace (step_entry in inventory.proto).
 */
#ifndef CKPT_STEP_H
#define CKPT_STEP_H

#include <stddef.h>
#include <sys/types.h>

#include "freeze.h"
#include "inventory.pb-c.h"

/* Dump, between freezing the steps' tasks and the rest of the tree: wait
 * until what the tasks wrote to their stdout and stderr has left the pipes
 * and reached srun (slurmstepd forwards it; srun writes it out), so that
 * no output of the step is in flight when srun is frozen.  0, or -ETIMEDOUT
 * after one line naming the step. */
int steps_drained(const struct frozen_tree *tree);

/* Dump: the step_entry of the client tree->tasks[i] (the step's PMIx
 * namespace and modules, from its tasks' environment), in the arena-less
 * StepEntry *out (strings malloc'ed: step_entry_free).  0 or -errno,
 * logged. */
int step_entry_read(const struct frozen_tree *tree, int i, StepEntry *out);
void step_entry_free(StepEntry *e);

/* Dump: the directory of the step's PMIx data store (PMIX_SERVER_TMPDIR
 * of task `pid`), ending in '/', malloc'ed; NULL if none. */
char *step_tmpdir(pid_t pid);

/* Dump: the rank of task `pid` (PMIX_RANK of its environment, else
 * SLURM_PROCID), or -1. */
long step_task_rank(pid_t pid);

/* Dump: the port of the PMIx server task `pid` connects to (its
 * PMIX_SERVER_URI*: "...;tcp4://127.0.0.1:PORT"), or 0. */
unsigned step_pmix_port(pid_t pid);

/* The task of the tree that is `pid`, or NULL. */
const struct frozen_task *step_task(const struct frozen_tree *tree, pid_t pid);

#endif
