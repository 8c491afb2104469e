/*
 * cr-cgroup: the harness's part in the cgroup cases (tests/cr/cgroups.c).
 *
 *   --delegate-cgroup   before the test starts, root makes a cpu cgroup
 *                       and gives it (directory, tasks, cgroup.procs) to
 *                       the --user, the way a batch system delegates one;
 *                       its path in the hierarchy is $CR_CGROUP
 *   --after-dump rmcgroups:FILE    rmdir of every directory FILE lists,
 *                       deepest first (the restore must make them again)
 *   --after-dump relative:-   cr-run moves itself (and so the restoring
 *                       ckptctl) into a new cpu cgroup R, written into the
 *                       test's file cg-expect, for --cgroups relative
 *   --after-dump remap:-      the restore gets --cgroup-root
 *                       HIER:/ckpt-cr-PID/a=R (HIER: the cpu hierarchy as
 *                       /proc/self/cgroup names it), R into cg-expect
 *   --after-dump rmnamed:-    the test's named hierarchy name=ckptcrPID,
 *                       unmounted: mounted here for a moment, its job and
 *                       job/empty removed (the restore must make both)
 *   --after-dump dropnamed:-  the test's named hierarchy name=ckptcrPID,
 *                       mounted on its cg, unmounted until the kernel drops it
 *   --after-dump undelegate:-      root takes the delegated cgroup back
 *                       (it and all below owned by root again): the user may no longer
 *                       enter it, and her restore must say so
 *
 * At the end whatever the test listed in cg-dirs and the delegated
 * cgroup are removed, best effort.
 */
#include "cr-run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char delegated[PATH_MAX]; /* the delegated cgroup's directory */
static char relative[PATH_MAX];	 /* relative:-, the cgroup cr-run moved into */
static size_t mnt_len;

static int cpu_mount(char *out, size_t len)
{
	char line[4096], mnt[PATH_MAX], type[64], opts[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2 || strcmp(type, "cgroup"))
			continue;
		for (char *save, *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
			found |= !strcmp(t, "cpu");
	}
	if (f)
		fclose(f);
	if (found)
		snprintf(out, len, "%s", mnt);
	return found ? 0 : -1;
}

static int give(const char *dir, uid_t uid, gid_t gid)
{
	static const char *files[] = { "", "/tasks", "/cgroup.procs" };
	for (int i = 0; i < 3; i++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s%s", dir, files[i]);
		if (chown(path, uid, gid)) {
			say("chown %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int delegate_cgroup(struct run *r)
{
	char mnt[PATH_MAX];
	if (!r->user.name || cpu_mount(mnt, sizeof(mnt))) {
		say("--delegate-cgroup needs --user and a v1 cpu controller");
		return -1;
	}
	mnt_len = strlen(mnt);
	snprintf(delegated, sizeof(delegated), "%.3800s/ckpt-cr-deleg-%d", mnt, getpid());
	if (mkdir(delegated, 0755) && errno != EEXIST) {
		say("mkdir %s: %s", delegated, strerror(errno));
		return -1;
	}
	setenv("CR_CGROUP", delegated + mnt_len, 1);
	return give(delegated, r->user.uid, r->user.gid);
}

/* rmdir of FILE's directories, last listed first. */
static int remove_listed(const char *file)
{
	char *lines[256];
	int n = 0, ret = 0;
	char line[PATH_MAX + 2];
	FILE *f = fopen(file, "re");
	if (!f)
		return -1;
	while (n < 256 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		lines[n++] = strdup(line);
	}
	fclose(f);
	while (n--) {
		if (lines[n] && rmdir(lines[n]) && errno != ENOENT) {
			say("rmdir %s: %s", lines[n], strerror(errno));
			ret = -1;
		}
		free(lines[n]);
	}
	return ret;
}

static int enter_self(const char *dir)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "we");
	int ret = f && fprintf(f, "0") > 0 ? 0 : -1;
	if (f && fclose(f))
		ret = -1;
	if (ret)
		say("enter %s: %s", dir, strerror(errno));
	return ret;
}

/* relative:- : into a fresh cpu cgroup R; R into the test's cg-expect. */
static int move_for_relative(struct run *r)
{
	char mnt[PATH_MAX], expect[PATH_MAX + 16];
	if (cpu_mount(mnt, sizeof(mnt)))
		return -1;
	mnt_len = strlen(mnt);
	snprintf(relative, sizeof(relative), "%.3800s/ckpt-cr-rel-%d", mnt, getpid());
	path_in(r, expect, sizeof(expect), "cg-expect");
	FILE *f = fopen(expect, "we");
	if (!f || fprintf(f, "%s\n", relative + mnt_len) < 0 || fclose(f))
		return -1;
	return mkdir(relative, 0755) || enter_self(relative) ? -1 : 0;
}

/* The cpu hierarchy's controllers as /proc/self/cgroup names them. */
static int cpu_hier(char *out, size_t len)
{
	char line[4096];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *h = strchr(line, ':'), *e = h ? strchr(h + 1, ':') : NULL;
		if (!e)
			continue;
		*e = 0;
		snprintf(out, len, "%s", h + 1);
		for (char *save, *t = strtok_r(h + 1, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			found |= !strcmp(t, "cpu");
	}
	if (f)
		fclose(f);
	return found ? 0 : -1;
}

/* remap:- : --cgroup-root HIER:/ckpt-cr-PID/a=R for the restore. */
static int remap_rule(struct run *r)
{
	static char opt[PATH_MAX], hier[256];
	char expect[PATH_MAX + 16];
	if (cpu_hier(hier, sizeof(hier)) || r->nr_restore_opts + 2 > MAX_OPTS)
		return -1;
	snprintf(opt, sizeof(opt), "%s:/ckpt-cr-%d/a=/ckpt-cr-remap-%d", hier, r->pid, getpid());
	r->restore_opts[r->nr_restore_opts++] = "--cgroup-root";
	r->restore_opts[r->nr_restore_opts++] = opt;
	path_in(r, expect, sizeof(expect), "cg-expect");
	FILE *f = fopen(expect, "we");
	if (!f || fprintf(f, "/ckpt-cr-remap-%d\n", getpid()) < 0 || fclose(f))
		return -1;
	return 0;
}

/* rmnamed:- : rmdir job/empty and job of name=ckptcrPID. */
static int remove_named(struct run *r)
{
	char dir[PATH_MAX + 16], opts[64], sub[PATH_MAX + 32];
	path_in(r, dir, sizeof(dir), "rmnamed");
	snprintf(opts, sizeof(opts), "none,name=ckptcr%d", r->pid);
	if (mkdir(dir, 0700) || mount("none", dir, "cgroup", 0, opts)) {
		say("mount %s: %s", opts, strerror(errno));
		return -1;
	}
	snprintf(sub, sizeof(sub), "%s/job/empty", dir);
	int ret = rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/job", dir);
	ret = ret ? ret : rmdir(sub);
	if (ret)
		say("rmdir %s: %s", sub, strerror(errno));
	snprintf(opts, sizeof(opts), "ckptcr%d", r->pid);
	if (drop_named_cgroup(dir, opts))
		say("name=%s: still there after its unmount", opts);
	rmdir(dir);
	return ret;
}

/* dropnamed:- : name=ckptcrPID, which the test left mounted on its cg,
 * gone for good (the test, in its root, is dead). */
static int drop_named(struct run *r)
{
	char dir[PATH_MAX + 16], name[64];
	path_in(r, dir, sizeof(dir), "cg");
	snprintf(name, sizeof(name), "ckptcr%d", r->pid);
	if (drop_named_cgroup(dir, name)) {
		say("name=%s: still there after its unmount", name);
		return -1;
	}
	return 0;
}

int cgroup_after_dump(struct run *r, const char *kind, const char *file)
{
	if (!strcmp(kind, "dropnamed"))
		return drop_named(r);
	if (!strcmp(kind, "rmnamed"))
		return remove_named(r);
	if (!strcmp(kind, "remap"))
		return remap_rule(r);
	if (!strcmp(kind, "relative"))
		return move_for_relative(r);
	if (!strcmp(kind, "rmcgroups"))
		return remove_listed(file);
	if (!strcmp(kind, "undelegate") && delegated[0]) {
		char cmd[PATH_MAX + 32];
		snprintf(cmd, sizeof(cmd), "chown -R 0:0 '%s'", delegated);
		return system(cmd) ? -1 : 0;
	}
	(void)r;
	return 1; /* not ours */
}

void cgroup_cleanup(struct run *r)
{
	char path[PATH_MAX + 16];
	path_in(r, path, sizeof(path), "cg-dirs");
	if (!access(path, F_OK))
		remove_listed(path);
	char remapped[PATH_MAX], mnt[PATH_MAX];
	if (!cpu_mount(mnt, sizeof(mnt))) {
		snprintf(remapped, sizeof(remapped), "%.2000s/ckpt-cr-remap-%d/c", mnt, getpid());
		rmdir(remapped);
		remapped[strlen(remapped) - 2] = 0;
		rmdir(remapped);
	}
	if (relative[0]) {
		char parent[PATH_MAX + 8];
		snprintf(parent, sizeof(parent), "%s/..", relative);
		enter_self(parent);
		if (rmdir(relative) && errno != ENOENT)
			say("rmdir %s: %s", relative, strerror(errno));
	}
	if (delegated[0] && rmdir(delegated) && errno != ENOENT)
		say("rmdir %s: %s", delegated, strerror(errno));
}
