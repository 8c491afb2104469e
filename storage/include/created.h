/*
 * created: what a writer of checkpoints creates, identified by inode, and
 * the walk that gets it there without following symlinks.
 *
 * Paths that users name (a dump's directory, a job's --checkpoint-dir)
 * are opened with openat2(RESOLVE_NO_SYMLINKS): the client sends a
 * realpath, so a symlink found later was swapped in, and following it
 * would write where nobody asked.  Every directory and file a set's
 * writer creates is recorded (path, its dev/ino, its directory's dev/ino)
 * so that the one who created it can remove exactly it: a failed dump
 * removes what it made, never what merely has an image-like name.
 *
 * A process that must tell someone else (ckptd's worker tells the agent,
 * which cleans up after a worker killed half-way) sets a hook: it is
 * called right after each creation, and for files before the file gets
 * its name (O_TMPFILE, then linkat), so a record is never missing for a
 * file that can be seen.
 */
#ifndef CKPT_CREATED_H
#define CKPT_CREATED_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

/* A list of records, newest last. */
struct created_log {
	struct created *v;
	size_t nr, cap;
};

struct created {
	uint64_t dev, ino;   /* the entry */
	uint64_t pdev, pino; /* the directory it was created in */
	int dir;             /* a directory (removed with rmdir, when empty) */
	char path[PATH_MAX];
};

/* Called after every creation by this process (all threads); NULL: none. */
typedef void (*created_fn)(void *arg, const struct created *c);
void created_hook(created_fn fn, void *arg);

/* Open the directory `path` (absolute, or relative to the cwd) without
 * following a symlink anywhere in it; `flags` besides O_DIRECTORY and
 * O_CLOEXEC (O_RDONLY or O_PATH).  -ELOOP for a symlink. */
int dir_open_nofollow(const char *path, int flags);

/* mkdir -p without following symlinks: levels created get `mode`, are
 * recorded (hook, and `log` when not NULL), and the last one is returned
 * open O_RDONLY (O_PATH when it may be searched, not read).  `parents` 0: only the last level may be created. */
int dir_create_nofollow(const char *path, mode_t mode, int parents, struct created_log *log);

/* `name` in `dirfd` (the directory `dirpath`) was just created by us;
 * `fd` (or -1) is open on it.  Recorded in `log` (or not: NULL) and told
 * to the hook. */
int created_record(int dirfd, const char *dirpath, const char *name, int fd, int dir,
		   struct created_log *log);

/* Remove `c` if it is still what was created: its directory reached
 * without symlinks and still the same inode, the entry the same inode.
 * 0, -ESTALE when something else sits there now, or -errno (ENOENT:
 * already gone, ENOTEMPTY: a directory someone put files in). */
int created_remove(const struct created *c);
/* 0 when `c` is still there as it was made; errors as created_remove. */
int created_present(const struct created *c);

int created_log_add(struct created_log *log, const struct created *c);
/* Removes every entry, newest first (files before their directory);
 * the number removed. */
int created_log_remove(struct created_log *log);
void created_log_free(struct created_log *log);

#endif
