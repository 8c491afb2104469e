/*
 * confine: a user whom the site confines with seccomp stays confined
 * through ckptd's restores.  ckptd itself is not under her filters, so
 * without this her restore worker could do, and her restored processes
 * could be left without, what the filters forbid her.  The filters of the
 * asking process are read here with ptrace (the kernel shows them only to
 * CAP_SYS_ADMIN) and handed to the restore worker, which installs them on
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
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "agent.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_GET_SECCOMP_METADATA
#define PTRACE_GET_SECCOMP_METADATA 0x420d
#endif
#define CONFINE_MAX 16         /* filters, as the engine's RST_MAX_SECCOMP */
#define CONFINE_MAX_INSNS 4096 /* per filter, the kernel's BPF_MAXINSNS */

static int read_one(pid_t pid, long i, RpcSeccompFilter *out)
{
	struct { uint64_t filter_off, flags; } md = { (uint64_t)i, 0 };
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)i, NULL);
	if (n <= 0 || n > CONFINE_MAX_INSNS)
		return n < 0 ? -errno : -E2BIG;
	rpc_seccomp_filter__init(out);
	out->insns.data = malloc((size_t)n * 8);
	out->insns.len = (size_t)n * 8;
	if (!out->insns.data)
		return -ENOMEM;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)i, out->insns.data) != n ||
	    ptrace(PTRACE_GET_SECCOMP_METADATA, pid, (void *)sizeof(md), &md) < 0)
		return -errno;
	out->flags = md.flags & (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
	return 0;
}

/* Every filter of the stopped `pid`, oldest first (index 0 is the
 * oldest, as for the engine's dump). */
static int read_all(pid_t pid, struct confinement *c)
{
	long count = 0;
	while (ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)count, NULL) > 0)
		if (++count > CONFINE_MAX)
			return -E2BIG;
	for (long i = 0; i < count; i++) {
		int ret = read_one(pid, i, &c->filter[i]);
		c->ptr[i] = &c->filter[i];
		c->nr = (size_t)i + 1;
		if (ret)
			return ret;
	}
	return count ? 0 : -ENOENT;
}

/* Stop the client a moment (it waits for our answer anyway), read, let
 * it go on. */
static int read_stopped(pid_t pid, struct confinement *c)
{
	int status, ret;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) || waitpid(pid, &status, __WALL) != pid)
		ret = -errno;
	else
		ret = read_all(pid, c);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return ret;
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
