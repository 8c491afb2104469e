/*
 * proc: the one small line reader for /proc files, plus the few parsers
 * the dump needs that are shared by several resource files.  Each
 * resource file parses what only it uses next to its code.
 */
#ifndef CKPT_PROC_H
#define CKPT_PROC_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Calls fn(line, arg) for each line (without '\n') of the file at path;
 * stops early when fn returns non-zero and returns that value. -errno if
 * the file cannot be opened. */
int proc_each_line(const char *path, int (*fn)(char *line, void *arg), void *arg);
/* The same over text held in memory, lines ending in '\n' (NULL: none);
 * each is passed NUL-ended and the text is left as it was. */
int text_each_line(char *text, int (*fn)(char *line, void *arg), void *arg);
/* /proc/PID/stat into buf, returned from its state field on (what
 * follows "(comm) ", which may hold spaces and parentheses); NULL when
 * the task is gone or the line cannot be parsed. */
const char *proc_stat_fields(pid_t pid, char *buf, size_t len);

/* Value of "Key:" in /proc/PID/status (or task status), trimmed; 0 or -errno. */
int proc_status_field(pid_t pid, const char *key, char *buf, size_t len);

/* The name of thread tid of pid (/proc/PID/task/TID/comm); 0 or -errno. */
int proc_thread_comm(pid_t pid, pid_t tid, char *buf, size_t len);

/* readlink of /proc/PID/<what> ("cwd", "root", "exe", "fd/3") into buf. */
int proc_readlink(pid_t pid, const char *what, char *buf, size_t len);

/* The tid of host thread `tid` of `pid` in its own (innermost) PID
 * namespace: the last NSpid field; tid itself when unknown. */
pid_t proc_ns_tid(pid_t pid, pid_t tid);

/* The whole of a small file (at dir, AT_FDCWD for a path), NUL-ended, in
 * buf: its length, or -errno (-EIO: empty). */
ssize_t read_small_file(int dir, const char *path, char *buf, size_t len);

/* When the process of the /proc/PID directory `dir` started (field 22 of
 * its stat: clock ticks after boot); 0 or -errno. */
int proc_start_ticks(int dir, uint64_t *ticks);

/* This boot's id (/proc/sys/kernel/random/boot_id, 36 characters). */
int proc_boot_id(char *buf, size_t len);

uint64_t now_ns(void);

/* Test-only fault switch: nonzero when $CKPT_TEST_FAULT names `what`, for
 * the tests that prove restore --verify catches a state restored wrong
 * (tests/cr/verify.cmake).  Only a caller's own ckptctl reads it: ckptd's
 * workers get no environment from their clients. */
int ckpt_test_fault(const char *what);

/* The children of `pid` (from the task children files when the kernel
 * has it, else by scanning the ppid of every /proc/N/stat).  malloc'd. */
int proc_children(pid_t pid, pid_t **out, size_t *nr);

#endif
