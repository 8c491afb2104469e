/*
 * cr_cgroup_*: the tree's cgroup membership comes back (libckpt/cgroup.c).
 *
 *   v1-sub           the process in a sub-cgroup of the v1 cpu controller
 *   named            in a named v1 hierarchy it mounted itself
 *   named-unmounted  the same, unmounted again before the dump (the
 *                    hierarchy lives on while a cgroup of it is in use):
 *                    the restore mounts it privately for the move
 *   named-gone       in the root of a named v1 hierarchy it mounted,
 *                    which is gone at the restore (cr-run --after-dump
 *                    dropnamed:-, as on a node that never had it): the
 *                    root of a hierarchy nobody has is no difference
 *   threads          a second thread in another cpu cgroup than the main
 *   child            a child in another cpu cgroup than its parent
 *   empty            an empty sub-cgroup (mode 0750) below the process's
 *   charged          in a memory cgroup, 64 MiB of memory: after the
 *                    restore that memory is charged to the cgroup (each
 *                    process enters its cgroups before its memory comes
 *                    back; charges never follow a process that moves)
 *   props            its cpu cgroup with cpu.shares 512 and
 *                    cpu.cfs_quota_us 30000 (removed after the dump: the
 *                    restore makes it again, with them)
 *   relative         a child in a/c below the process's a, restored with
 *                    --cgroups relative from another cgroup R (cr-run
 *                    --after-dump relative:-, which writes R into the
 *                    test's file cg-expect): the process comes back in R,
 *                    the child in R/c
 *                    (with cr-run --after-dump remap:-, the same check:
 *                    a/ was mapped onto R by --cgroup-root)
 *   delegated        (as a user) in a sub-cgroup of $CR_CGROUP, a cpu
 *                    cgroup root delegated to the user (cr-run
 *                    --delegate-cgroup)
 *
 * Every directory made is listed, parents first, in the test's file
 * "cg-dirs" (for cr-run --after-dump rmcgroups:cg-dirs, which removes
 * them after the dump: the restore must make them again).  After the
 * restore each process checks /proc/self/task/TID/cgroup.
 */
#include "crlib.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ctl = "cpu";	       /* "memory" for charged */
static char cpu_mnt[1024], base[2048]; /* base: our cgroup, as a path in ctl's hierarchy */
static FILE *dirs;

/* The mount of the v1 controller ctl. */
static void find_cpu(void)
{
	char line[4096], mnt[1024], type[64], opts[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	CHECK_SYS(f, "mountinfo");
	while (fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2 || strcmp(type, "cgroup"))
			continue;
		for (char *save, *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (!strcmp(t, ctl)) {
				snprintf(cpu_mnt, sizeof(cpu_mnt), "%s", mnt);
				fclose(f);
				return;
			}
	}
	fail("no v1 %s controller mounted here", ctl);
}

static void make_dir(const char *path, mode_t mode)
{
	CHECK_SYS(mkdir(path, mode) == 0 || errno == EEXIST, "mkdir %s", path);
	CHECK_SYS(chmod(path, mode) == 0, "chmod %s", path);
	fprintf(dirs, "%s\n", path);
	fflush(dirs);
}

static void enter(const char *dir, pid_t tid)
{
	char path[PATH_MAX + 8], buf[16];
	snprintf(path, sizeof(path), "%s/tasks", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC), n = snprintf(buf, sizeof(buf), "%d", tid);
	CHECK_SYS(fd >= 0 && write(fd, buf, (size_t)n) == n, "enter %s", path);
	close(fd);
}

/* The cgroup of tid (of pid) on the hierarchy whose controllers field has `ctl`. */
static void cgroup_of(pid_t pid, pid_t tid, const char *ctl, char *out, size_t len)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	FILE *f = fopen(path, "re");
	CHECK_SYS(f, "%s", path);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		char *h = strchr(line, ':'), *p = h ? strchr(h + 1, ':') : NULL;
		if (!p)
			continue;
		*p++ = 0;
		p[strcspn(p, "\n")] = 0;
		for (char *save, *t = strtok_r(h + 1, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			if (!strcmp(t, ctl))
				snprintf(out, len, "%s", p);
	}
	fclose(f);
}

static void expect(pid_t pid, pid_t tid, const char *ctl, const char *want)
{
	char now[4096];
	cgroup_of(pid, tid, ctl, now, sizeof(now));
	CHECK(!strcmp(now, want), "pid %d tid %d: cgroup %s:%s, expected %s", pid, tid, ctl, now,
	      want);
}

/* base's path inside the cpu hierarchy. */
static const char *in_cpu(const char *dir)
{
	return dir + strlen(cpu_mnt);
}

static void set_prop(const char *name, const char *value);
#define CHARGED (64ul << 20)
static volatile char *charged;

static volatile int thread_ready;
static pid_t thread_tid;

static void *idle_thread(void *arg)
{
	(void)arg;
	test_block_check();
	thread_tid = gettid();
	thread_ready = 1;
	for (;;)
		pause();
	return NULL;
}

static char sub_a[3072], sub_b[3072], named_dir[2048];
static char named_name[64];
static pid_t child;

static void setup_cpu(const char *mode)
{
	const char *deleg = getenv("CR_CGROUP");
	find_cpu();
	if (!strcmp(mode, "delegated")) {
		CHECK(deleg, "no $CR_CGROUP (cr-run --delegate-cgroup)");
		snprintf(base, sizeof(base), "%s%.900s/job", cpu_mnt, deleg);
	} else {
		snprintf(base, sizeof(base), "%s/ckpt-cr-%d", cpu_mnt, getpid());
	}
	make_dir(base, 0755);
	snprintf(sub_a, sizeof(sub_a), "%s/a", base);
	snprintf(sub_b, sizeof(sub_b), "%s/b", base);
	make_dir(sub_a, 0755);
	enter(sub_a, getpid());
}

/* The named hierarchy name=ckptcrPID, mounted on the test's cg. */
static void mount_named(void)
{
	char opts[128];
	snprintf(named_name, sizeof(named_name), "ckptcr%d", getpid());
	snprintf(named_dir, sizeof(named_dir), "%.1900s/cg", test_dir());
	snprintf(opts, sizeof(opts), "none,name=%s", named_name);
	CHECK_SYS(mkdir(named_dir, 0700) == 0, "mkdir %s", named_dir);
	CHECK_SYS(mount("none", named_dir, "cgroup", 0, opts) == 0, "mount %s", opts);
}

static void setup_named(int unmount)
{
	mount_named();
	snprintf(sub_a, sizeof(sub_a), "%s/job", named_dir);
	CHECK_SYS(mkdir(sub_a, 0755) == 0, "mkdir %s", sub_a);
	enter(sub_a, getpid());
	snprintf(sub_b, sizeof(sub_b), "%.2000s/empty", sub_a);
	CHECK_SYS(mkdir(sub_b, 0750) == 0 && chmod(sub_b, 0750) == 0, "mkdir %s", sub_b);
	if (unmount)
		CHECK_SYS(umount2(named_dir, MNT_DETACH) == 0, "umount %s", named_dir);
}

/* The restore did not make the hierarchy again for a root nobody needs. */
static void check_named_gone(void)
{
	char line[4096], want[128];
	snprintf(want, sizeof(want), ":name=%s:", named_name);
	FILE *f = fopen("/proc/self/cgroup", "re");
	CHECK_SYS(f, "/proc/self/cgroup");
	while (fgets(line, sizeof(line), f))
		CHECK(!strstr(line, want), "name=%s is here again: %s", named_name, line);
	fclose(f);
}

static void setup(const char *mode)
{
	if (!strcmp(mode, "named-gone")) {
		mount_named(); /* and stays in its root */
		return;
	}
	if (!strncmp(mode, "named", 5)) {
		setup_named(!strcmp(mode, "named-unmounted"));
		return;
	}
	setup_cpu(mode);
	if (!strcmp(mode, "relative"))
		snprintf(sub_b, sizeof(sub_b), "%.3000s/c", sub_a);
	if (!strcmp(mode, "threads") || !strcmp(mode, "child") || !strcmp(mode, "relative"))
		make_dir(sub_b, 0755);
	if (!strcmp(mode, "threads")) {
		pthread_t t;
		CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0, "pthread_create");
		while (!thread_ready)
			usleep(1000);
		enter(sub_b, thread_tid);
	} else if (!strcmp(mode, "child") || !strcmp(mode, "relative")) {
		int p[2];
		CHECK_SYS(pipe(p) == 0, "pipe");
		if ((child = fork()) == 0) {
			enter(sub_b, getpid());
			close(p[0]);
			close(p[1]);
			for (;;)
				pause();
		}
		close(p[1]);
		char c;
		CHECK(read(p[0], &c, 1) == 0, "child");
		close(p[0]);
	} else if (!strcmp(mode, "charged")) {
		charged = malloc(CHARGED);
		CHECK(charged, "malloc");
		for (size_t i = 0; i < CHARGED; i += 4096)
			charged[i] = (char)(i >> 12 | 1);
	} else if (!strcmp(mode, "props")) {
		set_prop("cpu.shares", "512");
		set_prop("cpu.cfs_quota_us", "30000");
	} else if (!strcmp(mode, "empty")) {
		char empty[PATH_MAX + 32];
		snprintf(empty, sizeof(empty), "%s/empty", sub_a);
		make_dir(empty, 0750);
	}
}

static void set_prop(const char *name, const char *value)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%.3000s/%s", sub_a, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK_SYS(fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value), "%s", path);
	close(fd);
}

static void expect_prop(const char *name, const char *value)
{
	char path[PATH_MAX], buf[64] = "";
	snprintf(path, sizeof(path), "%.3000s/%s", sub_a, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_SYS(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0, "%s", path);
	close(fd);
	buf[strcspn(buf, "\n")] = 0;
	CHECK(!strcmp(buf, value), "%s: %s, dumped %s", path, buf, value);
}

static void check_charged(void)
{
	for (size_t i = 0; i < CHARGED; i += 4096)
		CHECK(charged[i] == (char)(i >> 12 | 1), "memory at %zu changed", i);
	char path[PATH_MAX], buf[64] = "";
	snprintf(path, sizeof(path), "%.3000s/memory.usage_in_bytes", sub_a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_SYS(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0, "%s", path);
	close(fd);
	CHECK(strtoull(buf, NULL, 10) >= (48ull << 20), "%s: %s bytes charged, 64 MiB expected",
	      path, strtok(buf, "\n"));
}

static void check_empty(void)
{
	char empty[PATH_MAX + 32];
	struct stat st;
	snprintf(empty, sizeof(empty), "%s/empty", sub_a);
	CHECK_SYS(stat(empty, &st) == 0, "the empty cgroup %s", empty);
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "%s: mode %o, dumped 750", empty,
	      st.st_mode & 07777);
}

static char relative_root[1024]; /* R, the cgroup the restore ran in */

static void check_relative(void)
{
	char path[PATH_MAX], want[1100];
	test_path(path, "cg-expect");
	FILE *f = fopen(path, "re");
	CHECK_SYS(f && fgets(relative_root, sizeof(relative_root), f), "%s", path);
	fclose(f);
	relative_root[strcspn(relative_root, "\n")] = 0;
	expect(getpid(), getpid(), "cpu", relative_root);
	snprintf(want, sizeof(want), "%s/c", relative_root);
	expect(child, child, "cpu", want);
}

/* job/empty of the named hierarchy, mode 0750 (mounted again first
 * when the test unmounted it). */
static void check_named_empty(int mount_it)
{
	char opts[128];
	struct stat st;
	snprintf(opts, sizeof(opts), "none,name=%s", named_name);
	CHECK_SYS(!mount_it || mount("none", named_dir, "cgroup", 0, opts) == 0, "mount %s", opts);
	CHECK_SYS(stat(sub_b, &st) == 0, "the empty cgroup %s", sub_b);
	CHECK((st.st_mode & 07777) == 0750, "%s: mode %o, dumped 750", sub_b, st.st_mode & 07777);
}

static void check(const char *mode)
{
	char want[PATH_MAX + 64];
	if (!strcmp(mode, "relative")) {
		check_relative();
		return;
	}
	if (!strcmp(mode, "named-gone")) {
		check_named_gone();
		return;
	}
	if (!strncmp(mode, "named", 5)) {
		snprintf(want, sizeof(want), "name=%s", named_name);
		expect(getpid(), getpid(), want, "/job");
		check_named_empty(strcmp(mode, "named") != 0);
		return;
	}
	expect(getpid(), getpid(), ctl, in_cpu(sub_a));
	if (!strcmp(mode, "threads"))
		expect(getpid(), thread_tid, "cpu", in_cpu(sub_b));
	if (!strcmp(mode, "child"))
		expect(child, child, "cpu", in_cpu(sub_b));
	if (!strcmp(mode, "empty"))
		check_empty();
	if (!strcmp(mode, "charged"))
		check_charged();
	if (!strcmp(mode, "props")) {
		expect_prop("cpu.shares", "512");
		expect_prop("cpu.cfs_quota_us", "30000");
	}
}

/* Out of our cgroups (into their parent) and remove them, best effort. */
static void cleanup(const char *mode)
{
	char parent[PATH_MAX + 8];
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (!strcmp(mode, "named-gone")) {
		drop_named_cgroup(named_dir, named_name); /* dropped already by cr-run */
		rmdir(named_dir);
		return;
	}
	if (!strncmp(mode, "named", 5)) {
		enter(named_dir, getpid()); /* mounted (again) by the check */
		rmdir(sub_b);
		rmdir(sub_a);
		drop_named_cgroup(named_dir, named_name);
		return;
	}
	if (relative_root[0]) {
		char c[2048];
		snprintf(c, sizeof(c), "%.1000s%.1000s/c", cpu_mnt, relative_root);
		rmdir(c);
	}
	snprintf(parent, sizeof(parent), "%s/..", base);
	if (!strcmp(mode, "threads"))
		enter(parent, thread_tid);
	enter(parent, getpid());
	char empty[PATH_MAX + 32];
	snprintf(empty, sizeof(empty), "%s/empty", sub_a);
	rmdir(empty);
	rmdir(sub_a);
	rmdir(sub_b);
	rmdir(base);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	CHECK(argc == 2, "usage: cgroups MODE");
	if (!strcmp(argv[1], "charged"))
		ctl = "memory";
	test_init();
	test_path(path, "cg-dirs");
	dirs = fopen(path, "we");
	CHECK_SYS(dirs, "%s", path);
	setup(argv[1]);
	test_ready();
	test_wait_check();
	check(argv[1]);
	cleanup(argv[1]);
	pass();
}
