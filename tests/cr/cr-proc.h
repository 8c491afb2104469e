/*
 * cr-proc: process helpers of the C/R harness (cr-run): spawning with
 * redirected stdio, waiting with timeouts (pidfd + poll, never a hang),
 * walking a process tree through /proc, and checking that a tree is
 * running untraced.  Every function prints one line "cr-run: ..." on
 * failure and returns -1 (or 0 on success).
 */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdint.h>
#include <sys/types.h>

#define MAX_TREE 256

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fork + exec argv with stdin /dev/null, stdout and stderr to the given
 * files (NULL: /dev/null).  `pre_exec` (may be NULL) runs in the child
 * before exec.  Returns the pid or -1. */
pid_t spawn(char *const argv[], const char *out, const char *err, void (*pre_exec)(void *),
	    void *arg);
/* Wait for our child `pid` at most timeout_ms.  0 and *status on exit,
 * -1 on timeout or error (the child is left alone). */
int wait_child(pid_t pid, int timeout_ms, int *status);
/* SIGKILL + reap a child (no-op if pid <= 0). */
void kill_child(pid_t pid);
/* Reap every child (we are a subreaper: orphans are ours) until none is
 * left, at most timeout_ms.  0 when none is left. */
int reap_all(int timeout_ms);
/* Pids whose parent is us.  Returns their number (<= max). */
int list_children(pid_t *pids, int max);
/* No snapshot process of a dump (comm ckpt-snapshot) left among our
 * children within timeout_ms (zombies reaped); -1 and *left if one is. */
int wait_no_snapshot(int timeout_ms, pid_t *left);
/* Kill and reap everything below us, repeatedly, at most timeout_ms. */
void kill_all_children(int timeout_ms);
/* Every process of the tree rooted at `root`, root first. */
int list_tree(pid_t root, pid_t *pids, int max);
/* Every thread of every process of the tree is neither stopped, traced
 * nor dead; polls at most timeout_ms before failing. */
int check_running(pid_t root, int timeout_ms);
int pid_exists(pid_t pid);
/* Read len bytes at addr of pid (process_vm_readv). */
int peek(pid_t pid, uint64_t addr, void *buf, size_t len);
void sleep_ms(int ms);
void sleep_us(uint64_t us);
/* Overall time limit of the run: every wait below is cut to what is left
 * of it, so that cr-run fails cleanly (killing what it started) before
 * ctest's TIMEOUT kills it. */
void set_deadline(int seconds);
int budget_ms(int ms);
uint64_t clock_ms(void);
/* Status text: "exit N", "signal N". */
const char *status_str(int status);

#endif
