/*
 * cr_pstate: per-process state of a small tree: umask, cwd, rlimits,
 * process groups and sessions.
 *
 *   root  (session and group leader, as cr-run starts it): umask 027, cwd
 *         "work dir" in $CR_DIR, RLIMIT_NOFILE soft 500, RLIMIT_CORE and
 *         RLIMIT_MSGQUEUE lowered
 *   A     child in its own process group, umask 077, cwd /
 *   B     child in the root's group
 *   C     B's child, leader of its own session, umask 0, cwd /tmp
 * Every process records pid, ppid, pgid, sid, umask, cwd and rlimits,
 * then waits on a pipe.  After the restore each compares them with what it
 * recorded; the root also checks the others' pgid/sid from outside.
 */
#include "crlib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const int limits[] = { RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_MSGQUEUE };
#define NR_LIMITS 3

struct pstate {
	pid_t pid, ppid, pgid, sid;
	mode_t umask;
	char cwd[PATH_MAX];
	struct rlimit rl[NR_LIMITS];
};

static int ready_pipe[2], go_pipe[2];

static void capture(struct pstate *s)
{
	int i;

	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgrp();
	s->sid = getsid(0);
	s->umask = umask(0);
	umask(s->umask);
	CHECK_SYS(getcwd(s->cwd, sizeof(s->cwd)), "getcwd");
	for (i = 0; i < NR_LIMITS; i++)
		CHECK_SYS(!getrlimit(limits[i], &s->rl[i]), "getrlimit");
}

static void compare(const char *who, const struct pstate *was, int check_ppid)
{
	struct pstate now;
	int i;

	capture(&now);
	CHECK(now.pid == was->pid, "%s: pid %d, was %d", who, now.pid, was->pid);
	CHECK(!check_ppid || now.ppid == was->ppid, "%s: ppid %d, was %d", who, now.ppid,
	      was->ppid);
	CHECK(now.pgid == was->pgid, "%s: pgid %d, was %d", who, now.pgid, was->pgid);
	CHECK(now.sid == was->sid, "%s: sid %d, was %d", who, now.sid, was->sid);
	CHECK(now.umask == was->umask, "%s: umask 0%o, was 0%o", who, now.umask, was->umask);
	CHECK(!strcmp(now.cwd, was->cwd), "%s: cwd \"%s\", was \"%s\"", who, now.cwd, was->cwd);
	for (i = 0; i < NR_LIMITS; i++)
		CHECK(now.rl[i].rlim_cur == was->rl[i].rlim_cur &&
			      now.rl[i].rlim_max == was->rl[i].rlim_max,
		      "%s: rlimit %d is %llu/%llu, was %llu/%llu", who, limits[i],
		      (unsigned long long)now.rl[i].rlim_cur,
		      (unsigned long long)now.rl[i].rlim_max,
		      (unsigned long long)was->rl[i].rlim_cur,
		      (unsigned long long)was->rl[i].rlim_max);
}

/* A child: record, tell the root, wait for "go", compare. */
static void settle_and_wait(const char *who)
{
	struct pstate was;
	char c = 0;

	capture(&was);
	CHECK_SYS(write(ready_pipe[1], &c, 1) == 1, "%s: write", who);
	CHECK(read_full(go_pipe[0], &c, 1) == 1, "%s: go pipe closed", who);
	compare(who, &was, 1);
}

static _Noreturn void child_c(void)
{
	CHECK_SYS(setsid() > 0, "C: setsid");
	umask(0);
	CHECK_SYS(!chdir("/tmp"), "C: chdir");
	settle_and_wait("C");
	exit(0);
}

static _Noreturn void child_b(void)
{
	int status;
	pid_t c = fork();

	CHECK_SYS(c >= 0, "B: fork");
	if (c == 0)
		child_c();
	settle_and_wait("B");
	CHECK_SYS(waitpid(c, &status, 0) == c, "B: waitpid");
	CHECK(status == 0, "B: C ended with status 0x%x", status);
	exit(0);
}

static _Noreturn void child_a(void)
{
	CHECK_SYS(!setpgid(0, 0), "A: setpgid");
	umask(077);
	CHECK_SYS(!chdir("/"), "A: chdir");
	settle_and_wait("A");
	exit(0);
}

static void set_limits(void)
{
	struct rlimit rl;

	CHECK_SYS(!getrlimit(RLIMIT_NOFILE, &rl), "getrlimit");
	rl.rlim_cur = 500;
	CHECK_SYS(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit NOFILE");
	CHECK_SYS(!getrlimit(RLIMIT_CORE, &rl), "getrlimit");
	/* lower only: raising a hard limit needs CAP_SYS_RESOURCE */
	if (rl.rlim_max > (1 << 20))
		rl.rlim_max = 1 << 20;
	rl.rlim_cur = rl.rlim_max / 2;
	CHECK_SYS(!setrlimit(RLIMIT_CORE, &rl), "setrlimit CORE");
	CHECK_SYS(!getrlimit(RLIMIT_MSGQUEUE, &rl), "getrlimit");
	rl.rlim_cur = rl.rlim_cur / 2;
	CHECK_SYS(!setrlimit(RLIMIT_MSGQUEUE, &rl), "setrlimit MSGQUEUE");
}

static pid_t start(void (*fn)(void))
{
	pid_t pid = fork();

	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0)
		fn();
	return pid;
}

int main(void)
{
	struct pstate was;
	pid_t a, b;
	char buf[3] = { 0 };
	int status;

	test_init();
	umask(027);
	CHECK_SYS(!mkdir("work dir", 0700) && !chdir("work dir"), "work dir");
	set_limits();
	CHECK_SYS(!pipe(ready_pipe) && !pipe(go_pipe), "pipe");
	a = start(child_a);
	b = start(child_b);
	CHECK(read_full(ready_pipe[0], buf, 3) == 3, "children did not settle");
	capture(&was);
	test_ready();
	test_wait_check();

	compare("root", &was, 0);
	CHECK(getpgid(a) == a && getsid(a) == was.sid, "A: pgid %d sid %d", getpgid(a), getsid(a));
	CHECK(getpgid(b) == was.pgid && getsid(b) == was.sid, "B: pgid %d sid %d", getpgid(b),
	      getsid(b));
	CHECK_SYS(write_full(go_pipe[1], buf, 3) == 3, "write go");
	CHECK_SYS(waitpid(a, &status, 0) == a, "waitpid A");
	CHECK(status == 0, "A ended with status 0x%x", status);
	CHECK_SYS(waitpid(b, &status, 0) == b, "waitpid B");
	CHECK(status == 0, "B ended with status 0x%x", status);
	pass();
}
