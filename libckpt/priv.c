/*
 * priv: see priv.h.  libcap for the capability sets; the bounding set
 * and securebits through prctl, which libcap wraps no better.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "ckpt/ckpt.h"
#include "priv.h"

static int set_flag(cap_value_t cap, cap_flag_t flag, cap_flag_value_t v)
{
	cap_t c = cap_get_proc();
	if (!c)
		return -errno;
	int ret = cap_set_flag(c, flag, 1, &cap, v) || cap_set_proc(c) ? -errno : 0;
	cap_free(c);
	return ret;
}

static int has_flag(cap_value_t cap, cap_flag_t flag)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t c = cap_get_proc();
	if (!c)
		return 0;
	cap_get_flag(c, cap, flag, &v);
	cap_free(c);
	return v == CAP_SET;
}

int priv_raise(int cap)
{
	if (has_flag(cap, CAP_EFFECTIVE) || !has_flag(cap, CAP_PERMITTED))
		return 0;
	return set_flag(cap, CAP_EFFECTIVE, CAP_SET) ? 0 : 1;
}

void priv_lower(int cap, int raised)
{
	if (raised)
		set_flag(cap, CAP_EFFECTIVE, CAP_CLEAR);
}

int priv_drop(uint64_t caps)
{
	cap_t c = cap_get_proc();
	if (!c)
		return -errno;
	int ret = 0;
	for (cap_value_t v = 0; v < 64 && !ret; v++) {
		if (!(caps & PRIV_BIT(v)) || !CAP_IS_SUPPORTED(v))
			continue;
		ret = cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) ||
		      cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR) ||
		      cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_CLEAR) ? -errno : 0;
	}
	if (!ret && cap_set_proc(c))
		ret = -errno;
	cap_free(c);
	return ret;
}

static uint64_t get_set(cap_flag_t flag)
{
	uint64_t bits = 0;
	cap_t c = cap_get_proc();
	for (cap_value_t v = 0; c && v < 64 && CAP_IS_SUPPORTED(v); v++) {
		cap_flag_value_t f = CAP_CLEAR;
		if (!cap_get_flag(c, v, flag, &f) && f == CAP_SET)
			bits |= PRIV_BIT(v);
	}
	cap_free(c);
	return bits;
}

uint64_t priv_permitted(void)
{
	return get_set(CAP_PERMITTED);
}

uint64_t priv_effective(void)
{
	return get_set(CAP_EFFECTIVE);
}

uint64_t priv_bounding(void)
{
	uint64_t bits = 0;
	for (cap_value_t v = 0; v < 64 && CAP_IS_SUPPORTED(v); v++)
		if (cap_get_bound(v) == 1)
			bits |= PRIV_BIT(v);
	return bits;
}

static int same_groups(const CredsEntry *c)
{
	gid_t g[64];
	int n = getgroups(64, g);
	if (n < 0 || (size_t)n != c->n_groups)
		return 0;
	for (int i = 0; i < n; i++) {
		size_t k = 0;
		while (k < c->n_groups && c->groups[k] != g[i])
			k++;
		if (k == c->n_groups)
			return 0;
	}
	return 1;
}

/* What the kernel would refuse a user, first difference only. */
static const char *identity_diff(const CredsEntry *c, char *buf, size_t len)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg))
		return "cannot read our own credentials";
	if (c->uid != r || c->euid != e || c->suid != s || c->fsuid != e)
		snprintf(buf, len, "uids %u/%u/%u/%u, not the restoring user's %u", c->uid, c->euid,
			 c->suid, c->fsuid, r);
	else if (c->gid != rg || c->egid != eg || c->sgid != sg || c->fsgid != eg)
		snprintf(buf, len, "gids %u/%u/%u/%u, not the restoring user's %u", c->gid, c->egid,
			 c->sgid, c->fsgid, rg);
	else if (!same_groups(c))
		snprintf(buf, len, "supplementary groups other than the restoring user's");
	else if (c->cap_eff || c->cap_prm || c->cap_inh || (c->has_cap_amb && c->cap_amb))
		snprintf(buf, len, "capabilities (effective %#llx, permitted %#llx, inheritable "
			 "%#llx, ambient %#llx): the user has none", (unsigned long long)c->cap_eff,
			 (unsigned long long)c->cap_prm, (unsigned long long)c->cap_inh,
			 (unsigned long long)(c->has_cap_amb ? c->cap_amb : 0));
	else if (c->has_securebits && c->securebits != (uint32_t)prctl(PR_GET_SECUREBITS))
		snprintf(buf, len, "securebits %#x (setting them needs CAP_SETPCAP)", c->securebits);
	else if (c->cap_bnd != priv_bounding())
		snprintf(buf, len, "capability bounding set %#llx, not the user's %#llx (changing it "
			 "needs CAP_SETPCAP)", (unsigned long long)c->cap_bnd,
			 (unsigned long long)priv_bounding());
	else
		return NULL;
	return buf;
}

int priv_check_identity(const CredsEntry *c, uint32_t pid)
{
	char buf[256];
	const char *why = c ? identity_diff(c, buf, sizeof(buf)) : "no credentials in the image";
	if (!why)
		return 0;
	pr_err("pid %u: %s: a user restores only their own identity", pid, why);
	return -EPERM;
}

/* The flags that stay with an installed filter (as restore-state.c keeps). */
#define KEPT_FLAGS 6ULL /* SECCOMP_FILTER_FLAG_LOG | _SPEC_ALLOW */

int priv_check_confined(const CoreEntry *core, const struct ckpt_seccomp *f, size_t n,
			uint32_t pid)
{
	size_t have = core->n_seccomp_filters;
	for (size_t i = 0; i < n; i++) {
		const SeccompFilterEntry *e = i < have ? core->seccomp_filters[i] : NULL;
		if (!e || e->insns.len != f[i].len || memcmp(e->insns.data, f[i].insns, f[i].len) ||
		    (e->flags & KEPT_FLAGS) != (f[i].flags & KEPT_FLAGS)) {
			pr_err("pid %u: seccomp filter %zu is not the one the restoring user runs under: "
			       "a user cannot shed the filters that confine her", pid, i);
			return -EPERM;
		}
	}
	return 0;
}
