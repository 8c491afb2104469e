/*
 * cr_ident: the identity of a process that dropped root survives.
 *
 * Before the dump, starting as root: supplementary groups 5 6 7; two
 * capabilities dropped from the bounding set; securebits KEEP_CAPS |
 * NOROOT; gids 1001/1002/1003 (fs 1004); uids 2001/2002/2003 (fs 2003, not
 * the euid); capabilities effective {KILL, NET_BIND_SERVICE}, permitted
 * {KILL, NET_BIND_SERVICE, SYS_NICE}, inheritable {KILL, SYS_NICE},
 * ambient {KILL}; no_new_privs; personality UNAME26; dumpable 0; child
 * subreaper.  After the restore all of it reads back the same.
 */
#include "crlib.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BIT(c) (1ULL << (c))

struct ident {
	uid_t uid[4];
	gid_t gid[4];
	int nr_groups;
	gid_t groups[16];
	unsigned long long eff, prm, inh, bnd, amb;
	int securebits, nnp, persona, dumpable, subreaper;
};

static struct ident before;

static void caps(unsigned long long *eff, unsigned long long *prm, unsigned long long *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	CHECK_SYS(!syscall(SYS_capget, &h, d), "capget");
	*eff = d[0].effective | (unsigned long long)d[1].effective << 32;
	*prm = d[0].permitted | (unsigned long long)d[1].permitted << 32;
	*inh = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
}

static void set_caps(unsigned long long eff, unsigned long long prm, unsigned long long inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (unsigned)eff, (unsigned)prm, (unsigned)inh },
		{ (unsigned)(eff >> 32), (unsigned)(prm >> 32), (unsigned)(inh >> 32) },
	};
	CHECK_SYS(!syscall(SYS_capset, &h, d), "capset");
}

static void take(struct ident *s)
{
	memset(s, 0, sizeof(*s));
	getresuid(&s->uid[0], &s->uid[1], &s->uid[2]);
	s->uid[3] = (uid_t)setfsuid(-1);
	getresgid(&s->gid[0], &s->gid[1], &s->gid[2]);
	s->gid[3] = (gid_t)setfsgid(-1);
	s->nr_groups = getgroups(16, s->groups);
	caps(&s->eff, &s->prm, &s->inh);
	for (int c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			s->bnd |= BIT(c);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			s->amb |= BIT(c);
	}
	s->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->persona = personality(0xffffffff);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &s->subreaper, 0, 0, 0);
}

static void setup(void)
{
	static const gid_t groups[] = { 5, 6, 7 };

	/* The ready file is written after the uid change. */
	CHECK_SYS(!chmod(test_dir(), 0777), "chmod %s", test_dir());
	CHECK_SYS(personality(PER_LINUX | UNAME26) >= 0, "personality");
	CHECK_SYS(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper");
	CHECK_SYS(!setgroups(3, groups), "setgroups");
	CHECK_SYS(!prctl(PR_CAPBSET_DROP, CAP_SYS_MODULE, 0, 0, 0), "capbset drop");
	CHECK_SYS(!prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0), "capbset drop");
	CHECK_SYS(!prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NOROOT, 0, 0, 0),
		  "securebits");
	CHECK_SYS(!setresgid(1001, 1002, 1003), "setresgid");
	setfsgid(1004);
	CHECK_SYS(!setresuid(2001, 2002, 2003), "setresuid");
	setfsuid(2003);
	set_caps(BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE),
		 BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SYS_NICE),
		 BIT(CAP_KILL) | BIT(CAP_SYS_NICE));
	CHECK_SYS(!prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0), "ambient");
	CHECK_SYS(!prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
	CHECK_SYS(!prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable");
	take(&before);
	CHECK(before.uid[3] == 2003 && before.gid[3] == 1004 && before.amb == BIT(CAP_KILL),
	      "setup did not take");
}

#define SAME(field, fmt)                                                                   \
	CHECK(now.field == before.field, #field " " fmt ", was " fmt, now.field, before.field)

static void check(void)
{
	struct ident now;

	take(&now);
	for (int i = 0; i < 4; i++) {
		SAME(uid[i], "%u");
		SAME(gid[i], "%u");
	}
	SAME(nr_groups, "%d");
	for (int i = 0; i < now.nr_groups && i < 16; i++)
		SAME(groups[i], "%u");
	SAME(eff, "%#llx");
	SAME(prm, "%#llx");
	SAME(inh, "%#llx");
	SAME(bnd, "%#llx");
	SAME(amb, "%#llx");
	SAME(securebits, "%#x");
	SAME(nnp, "%d");
	SAME(persona, "%#x");
	SAME(dumpable, "%d");
	SAME(subreaper, "%d");
}

int main(void)
{
	test_init();
	if (geteuid()) {
		printf("SKIP: needs root\n");
		return 77;
	}
	setup();
	test_ready();
	test_wait_check();
	check();
	pass();
}
