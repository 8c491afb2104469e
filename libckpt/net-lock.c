/*
 * net-lock: an nftables table per locked dump (see net-lock.h), made and
 * removed with libnftables.  Its two chains sit at the raw priority,
 * before connection tracking, on input and output, and drop the locked
 * connections' segments unless they carry NET_LOCK_MARK:
 *
 *   table inet ckpt_lock_UID_PID_NS {
 *     chain in  { type filter hook input priority -300; ... drop }
 *     chain out { type filter hook output priority -300; ... drop }
 *   }
 */
#include <dlfcn.h>
#include <errno.h>
#include <linux/capability.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ckpt/ckpt.h"
#include "log.h"
#include "net-lock.h"
#include "priv.h"

#define PREFIX "ckpt_lock_"

void net_lock_name(char *buf, size_t len, uid_t uid)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, PREFIX "%u_%d_%lld%09ld", (unsigned)uid, (int)getpid(),
		 (long long)ts.tv_sec, ts.tv_nsec);
}

int net_lock_name_ok(const char *name, uid_t uid)
{
	char *end;
	size_t n = strlen(PREFIX);
	if (strlen(name) >= NET_LOCK_NAME_MAX || strncmp(name, PREFIX, n))
		return 0;
	for (const char *c = name + n; *c; c++)
		if (!strchr("0123456789_", *c))
			return 0;
	errno = 0;
	unsigned long owner = strtoul(name + n, &end, 10);
	return !errno && *end == '_' && (uid == 0 || owner == (unsigned long)uid);
}

static int is_v4(const struct inet_end *e)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(e->addr, prefix, 12);
}

static void addr_str(const struct inet_end *e, char *buf, size_t len)
{
	if (is_v4(e))
		inet_ntop(AF_INET, e->addr + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, e->addr, buf, (socklen_t)len);
}

/* "ip saddr A tcp sport P ip daddr B tcp dport Q" of a segment from->to. */
static int match(char *buf, size_t len, const struct inet_end *from, const struct inet_end *to)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	const char *ip = is_v4(from) ? "ip" : "ip6";
	addr_str(from, a, sizeof(a));
	addr_str(to, b, sizeof(b));
	return snprintf(buf, len, "%s saddr %s tcp sport %u %s daddr %s tcp dport %u", ip, a,
			from->port, ip, b, to->port);
}

/* One nftables transaction; its first error line into why. */
/*
 * libnftables is loaded when a lock is first made or removed, not linked:
 * with the five libraries it pulls in, it was a third of what every
 * ckptctl and agent start mapped, and from a cold page cache (a job's
 * node after a restore elsewhere) it cost each dump milliseconds for
 * something few dumps use.
 */
static struct {
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	int (*buffer_output)(struct nft_ctx *ctx);
	int (*buffer_error)(struct nft_ctx *ctx);
	int (*run_cmd)(struct nft_ctx *ctx, const char *buf);
	const char *(*error_buffer)(struct nft_ctx *ctx);
	void (*ctx_free)(struct nft_ctx *ctx);
	char why[200]; /* why not loaded, or "" */
} nft;
static pthread_once_t nft_once = PTHREAD_ONCE_INIT;

static void *nft_sym(void *so, const char *name)
{
	void *f = dlsym(so, name);
	if (!f && !nft.why[0])
		snprintf(nft.why, sizeof(nft.why), "libnftables.so.1: no %s", name);
	return f;
}

static void nft_load(void)
{
	void *so = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		const char *err = dlerror();
		snprintf(nft.why, sizeof(nft.why), "%s", err ? err : "libnftables.so.1: cannot load");
		return;
	}
	*(void **)&nft.ctx_new = nft_sym(so, "nft_ctx_new");
	*(void **)&nft.buffer_output = nft_sym(so, "nft_ctx_buffer_output");
	*(void **)&nft.buffer_error = nft_sym(so, "nft_ctx_buffer_error");
	*(void **)&nft.run_cmd = nft_sym(so, "nft_run_cmd_from_buffer");
	*(void **)&nft.error_buffer = nft_sym(so, "nft_ctx_get_error_buffer");
	*(void **)&nft.ctx_free = nft_sym(so, "nft_ctx_free");
}

static int run(const char *cmd, char *why, size_t len)
{
	pthread_once(&nft_once, nft_load);
	if (nft.why[0]) {
		snprintf(why, len, "nftables: %s", nft.why);
		return -ENOSYS;
	}
	struct nft_ctx *ctx = nft.ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return -ENOMEM;
	nft.buffer_output(ctx);
	nft.buffer_error(ctx);
	/* a user's worker holds CAP_NET_ADMIN lent, not raised (priv.h) */
	int raised = priv_raise(CAP_NET_ADMIN);
	int ret = nft.run_cmd(ctx, cmd) ? -EIO : 0;
	priv_lower(CAP_NET_ADMIN, raised);
	if (ret) {
		const char *err = nft.error_buffer(ctx);
		snprintf(why, len, "nftables: %s", err && err[0] ? err : "failed");
		why[strcspn(why, "\n")] = '\0';
	}
	nft.ctx_free(ctx);
	return ret;
}

/* Appends to *buf (grown with realloc); 0 or -ENOMEM. */
static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > *cap) {
		size_t c = (*len + n + 1) * 2;
		char *b = realloc(*buf, c);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
	return 0;
}

int net_lock_add(const char *name, const struct net_lock_conn *conns, size_t n, char *why,
		 size_t why_len)
{
	char *cmd = NULL, line[512], m[256];
	size_t len = 0, cap = 0;
	int ret = 0;
	snprintf(line, sizeof(line),
		 "add table inet %s\n"
		 "add chain inet %s in { type filter hook input priority -300; }\n"
		 "add chain inet %s out { type filter hook output priority -300; }\n",
		 name, name, name);
	ret = append(&cmd, &len, &cap, line);
	for (size_t i = 0; !ret && i < n; i++) {
		match(m, sizeof(m), &conns[i].peer, &conns[i].local);
		snprintf(line, sizeof(line), "add rule inet %s in meta mark != %#x %s drop\n", name,
			 NET_LOCK_MARK, m);
		ret = append(&cmd, &len, &cap, line);
		match(m, sizeof(m), &conns[i].local, &conns[i].peer);
		snprintf(line, sizeof(line), "add rule inet %s out meta mark != %#x %s drop\n",
			 name, NET_LOCK_MARK, m);
		if (!ret)
			ret = append(&cmd, &len, &cap, line);
	}
	if (!ret)
		ret = run(cmd, why, why_len);
	free(cmd);
	return ret;
}

int net_lock_remove(const char *name, char *why, size_t why_len)
{
	char cmd[NET_LOCK_NAME_MAX + 64];
	/* "destroy" (nft 1.0.8) is not in Debian 12's: add, then delete */
	snprintf(cmd, sizeof(cmd), "add table inet %s\ndelete table inet %s\n", name, name);
	return run(cmd, why, why_len);
}

int ckpt_net_unlock(const char *name, uid_t uid)
{
	char why[256] = "";
	if (!net_lock_name_ok(name, uid)) {
		pr_err("network lock %s: not a lock of uid %u's (ckpt_lock_UID_...)", name,
		       (unsigned)uid);
		return -EPERM;
	}
	int ret = net_lock_remove(name, why, sizeof(why));
	if (ret)
		pr_err("network lock %s: cannot remove it: %s", name, why);
	return ret;
}
