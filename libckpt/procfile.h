/*
 * procfile: files under /proc/PID of the tree (procfile.c); here what
 * core.c needs for a cwd that is the /proc/PID directory of a process
 * that has exited.
 */
#ifndef CKPT_PROCFILE_H
#define CKPT_PROCFILE_H

#include <stdint.h>
#include <sys/types.h>

/* Dump: PID when `cwd` (the link of /proc/`pid`/cwd) is "/proc/PID
 * (deleted)" on our /proc, the directory of a process that has exited;
 * 0 otherwise.  procfile.c's checks at the end of the dump refuse what
 * the restore cannot make again. */
pid_t proc_dead_dir(pid_t pid, const char *cwd);

/* Restore, in process `pid`: its cwd becomes the /proc directory of a
 * process `dead` that has exited (a helper with that number, reaped).
 * 0 or -errno, logged. */
int enter_dead_proc_dir(uint32_t pid, uint32_t dead);

#endif
