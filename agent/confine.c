/*
 * confine: a user whom the site confines with seccomp stays confined
 * through ckptd's restores.  ckptd itself is not under her filters, so
 * without this her restore worker could do, and her restored processes
 * could be left without, what the filters forbid her.  The filters of the
 * asking process are read with the engine's ckpt_seccomp_of (ptrace: the
 * kernel shows them only to CAP_SYS_ADMIN) and handed to the restore
 * worker, which installs them on
 * itself before it does anything for her (worker.c): every syscall of the
 * restore is then filtered as hers are, the restored processes inherit
 * them, and an image whose processes lack them is refused
 * (libckpt/priv.c).  A dump is not confined: it creates no process, and
 * a tracer under seccomp cannot read the filters of the tasks it dumps
 * (the kernel refuses PTRACE_SECCOMP_GET_FILTER to it).
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ckpt/ckpt.h"

/* ckptd keeps only the flags a filter can be installed with. */
#define KEPT_FLAGS (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW)

/* The engine reads them (libckpt/taskstate.c); we pass them on. */
static int read_stopped(pid_t pid, struct confinement *c)
{
	struct ckpt_seccomp f[16];
	int n = ckpt_seccomp_of(pid, f, 16);
	for (int i = 0; i < n; i++) {
		rpc_seccomp_filter__init(&c->filter[i]);
		c->filter[i].insns.data = (uint8_t *)f[i].insns; /* confine_free frees it */
		c->filter[i].insns.len = f[i].len;
		c->filter[i].flags = f[i].flags & KEPT_FLAGS;
		c->ptr[i] = &c->filter[i];
	}
	c->nr = n > 0 ? (size_t)n : 0;
	return n > 0 ? 0 : n ? n : -ENOENT;
}

int confine_read(const struct conn *c, struct confinement *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!c->peer.uid || c->tcp || c->peer.pid <= 0)
		return 0;
	/* "Seccomp:" 0 none, 1 strict, 2 filters; -1 gone. */
	int mode = (int)status_number(c->peer.pid, "Seccomp");
	if (mode == 0)
		return 0;
	int ret = mode == 2 ? read_stopped(c->peer.pid, out) : -EPERM;
	if (ret) {
		confine_free(out);
		snprintf(err, errlen, "uid %u: pid %d asks under seccomp %s, whose filters cannot be "
			 "read (%s): ckptd would not confine the operation as it is", c->peer.uid,
			 c->peer.pid, mode == 1 ? "strict mode" : "filters", strerror(-ret));
	}
	return ret;
}

void confine_free(struct confinement *c)
{
	for (size_t i = 0; i < c->nr; i++)
		free(c->filter[i].insns.data);
	c->nr = 0;
}
