/*
 * crlib: the tiny library every C/R test program under tests/cr links.
 *
 * A test program sets up some state, calls test_ready() (the harness,
 * cr-run, then checkpoints and restores it), waits for the "check now"
 * signal and verifies that its state survived, ending with pass() or
 * fail().  The harness talks to the program only through:
 *   $CR_READY  file written by test_ready(): "PID ADDR\n", where ADDR is the
 *              address of cr_shared (the harness may read it with
 *              process_vm_readv to watch progress without touching the
 *              program's fds);
 *   $CR_DIR    a fresh temporary directory for the program's files (also
 *              its initial cwd);
 *   CR_CHECK_SIGNAL, sent to the root of the (restored) tree.
 * Test programs write only to stdout/stderr (a log file) and exit 0 on
 * PASS, 1 on FAIL.
 */
#ifndef CR_CRLIB_H
#define CR_CRLIB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* No test program may use this signal for itself. */
#define CR_CHECK_SIGNAL SIGTERM

/* Published to the harness (see above).  Programs that loop bump
 * `progress`; `aux` is a second counter (e.g. verified passes); `failed`
 * non-zero means the program found its state broken. */
struct cr_shared {
	volatile uint64_t progress;
	volatile uint64_t aux;
	volatile uint64_t failed;
};
extern struct cr_shared cr_shared;

/* Install the check handler (SA_RESTART) and remember pid/tid.  First call
 * of every test program. */
void test_init(void);
/* Setup done: write the ready file.  Call from the root process only. */
void test_ready(void);
/* Block until the check signal has been handled, then verify that
 * getpid()/gettid() are unchanged.  Every other thread must block the
 * signal: call test_block_check() before creating them (they inherit the
 * mask; a thread that has not run yet cannot block it in time). */
void test_wait_check(void);
/* Non-zero once the check signal has been handled (for busy loops). */
int test_check_requested(void);
/* Keep the check signal away from the calling thread. */
void test_block_check(void);
/* $CR_DIR, or "." */
const char *test_dir(void);

/* One case of a program with several: its state is set up, then checked
 * after the restore. */
struct cr_case {
	const char *name;
	void (*setup)(void);
	void (*check)(void);
};
/* The case named argv[1] (the first with no argument: the selfcheck):
 * setup, test_ready, test_wait_check, check.  An unknown name fails. */
void run_case(const struct cr_case *cases, size_t n, int argc, char **argv);

_Noreturn void pass(void);
_Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fail() with strerror(errno) appended. */
_Noreturn void fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond))                                                               \
			fail(__VA_ARGS__);                                                 \
	} while (0)
#define CHECK_SYS(cond, ...)                                                               \
	do {                                                                               \
		if (!(cond))                                                               \
			fail_errno(__VA_ARGS__);                                           \
	} while (0)

/* Deterministic data generators and a checksum for memory patterns. */
uint64_t xorshift64(uint64_t *state);
uint64_t hash64(uint64_t h, const void *buf, size_t len);
#define HASH64_INIT 0xcbf29ce484222325ull

/* Whole-buffer I/O that retries short transfers and EINTR; -1 on error. */
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t write_full(int fd, const void *buf, size_t len);
/* fd moved to number `to` (dup2, then the old number closed); fails the
 * test if fd < 0 or the dup2 fails. */
void move_fd(int fd, int to);
/* buf (PATH_MAX bytes) = the test's directory / name. */
void test_path(char *buf, const char *name);
/* Text of a /proc/self file, or "fd -> target" lines for every fd below
 * 128, in a static buffer per slot (0..3; no malloc, so that taking a
 * snapshot does not change the mappings). */
const char *snapshot_file(const char *path, int slot);
const char *snapshot_fds(int slot);
/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t now_ns(void);

/* Unmount the named v1 cgroup hierarchy NAME mounted on DIR, and make sure
 * the kernel drops it (see crlib.c); 0 once it is gone. */
int drop_named_cgroup(const char *dir, const char *name);

#endif
