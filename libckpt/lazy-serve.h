/*
 * lazy-serve: the page server of a lazy restore (lazy-serve.c,
 * docs/lazy-restore.md).
 */
#ifndef CKPT_LAZY_SERVE_H
#define CKPT_LAZY_SERVE_H

#include <stdint.h>
#include <sys/types.h>

#include "restore.h"

/*
 * Forks the page server, which reads the restored processes' uffds from
 * `sock` (the receiving end of the socket whose other end they had as
 * lazy_fd) and fills their memory from c's images; `root` is the
 * driver's child (killed with every descendant if a page cannot be
 * read).  The driver writes one byte on go_r's pipe (or closes it) once
 * the tree runs.  With `report`, the server prints how long the streaming took
 * (from t0) when it is done.  Returns the server's pid or -errno.
 */
pid_t lazy_serve_start(struct restore_ctx *c, int sock, int go_r, pid_t root, uint64_t t0,
		       int report);

#endif
