/*
 * cr-fail: the harness flows that must fail cleanly (see cr-run.c for the
 * rest).  Dumps of what cannot be dumped (a free pid, a kernel thread, PID
 * 1 of a namespace of ours) must be refused with one error line and leave
 * no image set; restores from damaged image sets must fail with one line
 * and leave no restored process.
 */
#include "cr-run.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void drop_dac_caps(void *arg)
{
	(void)arg;
	/* root without these cannot read a 000 directory */
	if (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0))
		_exit(125);
}


/* Damage the image file PREFIX-PID.img: cut it in half or flip the byte
 * in its middle. */
static int damage_image(struct run *r, const char *dir, const char *prefix, int flip)
{
	char path[PATH_MAX + 64];
	unsigned char byte;
	struct stat st;
	int fd, ret = -1;

	snprintf(path, sizeof(path), "%s/%s-%d.img", dir, prefix, r->pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		say("%s: %s", path, strerror(errno));
		goto out;
	}
	if (!flip) {
		ret = ftruncate(fd, st.st_size / 2);
	} else if (pread(fd, &byte, 1, st.st_size / 2) == 1) {
		byte ^= 0x5a;
		ret = pwrite(fd, &byte, 1, st.st_size / 2) == 1 ? 0 : -1;
	}
	if (ret)
		say("damaging %s: %s", path, strerror(errno));
	else
		say("%s %s (%lld bytes)", flip ? "flipped a byte in" : "truncated", path,
		    (long long)st.st_size);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The file changes after the dump: one more byte at its end. */
static int append_to(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = write(fd, "!", 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

int corrupt_and_restore(struct run *r, const char *dir)
{
	const char *k = r->corrupt;
	char path[PATH_MAX + 64];
	void (*pre)(void *) = NULL;
	int ret = 0;

	if (!strcmp(k, "truncate-core") || !strcmp(k, "flip-core"))
		ret = damage_image(r, dir, "core", k[0] == 'f');
	else if (!strcmp(k, "truncate-pages") || !strcmp(k, "flip-pages"))
		ret = damage_image(r, dir, "pages", k[0] == 'f');
	else if (!strcmp(k, "rm-manifest")) {
		snprintf(path, sizeof(path), "%s/manifest", dir);
		ret = unlink(path);
	} else if (!strcmp(k, "unreadable")) {
		ret = chmod(dir, 0);
		pre = drop_dac_caps;
	} else if (!strcmp(k, "nodir")) {
		rm_tree(dir);
	} else if (!strncmp(k, "rm:", 3)) {
		path_in(r, path, sizeof(path), k + 3);
		ret = unlink(path);
	} else if (!strncmp(k, "append:", 7)) {
		path_in(r, path, sizeof(path), k + 7);
		ret = append_to(path);
	} else {
		say("unknown --corrupt %s", k);
		return -1;
	}
	if (ret) {
		say("--corrupt %s: %s", k, strerror(errno));
		return -1;
	}
	ret = restore_must_fail(r, dir, NULL, pre, k);
	chmod(dir, 0700);
	return ret;
}


/* Overwrite FILE in place with '#', its size and times kept: what a write
 * through a shared mapping of a tmpfs file looks like to the file checks. */
static int scribble(const char *path)
{
	struct stat st;
	char buf[4096];
	int fd = open(path, O_RDWR | O_CLOEXEC), ret = -1;

	if (fd < 0 || fstat(fd, &st))
		goto out;
	memset(buf, '#', sizeof(buf));
	for (off_t at = 0; at < st.st_size; at += (off_t)sizeof(buf)) {
		size_t n = (size_t)(st.st_size - at) < sizeof(buf) ? (size_t)(st.st_size - at) : sizeof(buf);
		if (pwrite(fd, buf, n, at) != (ssize_t)n)
			goto out;
	}
	struct timespec times[2] = { st.st_atim, st.st_mtim };
	ret = futimens(fd, times);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* exec:CMD — CMD run by sh with two more arguments, the images
 * directory and ckptctl: a set crafted between the dump and the restore
 * (cpu-craft.sh). */
static int exec_after_dump(struct run *r, const char *cmd)
{
	char dir[PATH_MAX + 16], line[PATH_MAX + 16];
	int status;
	path_in(r, dir, sizeof(dir), r->page_server ? "served" : "images");
	snprintf(line, sizeof(line), "%s \"$@\"", cmd);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", line, "sh", dir, r->ckptctl, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		say("after the dump: %s", cmd);
		return 0;
	}
	say("--after-dump exec:%s failed", cmd);
	return -1;
}

int change_after_dump(struct run *r)
{
	const char *k = r->after_dump, *file = strchr(k, ':');
	char path[PATH_MAX + 64];
	int ret;

	if (!strncmp(k, "exec:", 5))
		return exec_after_dump(r, k + 5);

	if (!file) {
		say("--after-dump %s: KIND:FILE", k);
		return -1;
	}
	path_in(r, path, sizeof(path), file + 1);
	char kind[32];
	snprintf(kind, sizeof(kind), "%.*s", (int)(file - k), k);
	if ((ret = cgroup_after_dump(r, kind, path)) != 1)
		;
	else if (!strncmp(k, "rm:", 3))
		ret = unlink(path);
	else if (!strncmp(k, "rmtree:", 7))
		rm_tree(path), ret = access(path, F_OK) ? 0 : -1;
	else if (!strncmp(k, "scribble:", 9))
		ret = scribble(path);
	else {
		say("unknown --after-dump %s", k);
		return -1;
	}
	if (ret)
		say("--after-dump %s: %s", k, strerror(errno));
	else
		say("after the dump: %s", k);
	return ret;
}

/* ---- dumps of what cannot be dumped ---- */

static int is_kthread(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	/* field 9, flags: PF_KTHREAD */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return 0;
	return (flags & 0x00200000) != 0;
}

static int refused_dump(struct run *r, const char *what)
{
	char dir[PATH_MAX + 16], err[PATH_MAX + 64];
	int status;

	path_in(r, dir, sizeof(dir), "images");
	/* -R: should the refusal be missing, nothing gets killed */
	status = run_dump(r, dir, "-R", err);
	if (status == -1)
		return -1;
	if (!WIFEXITED(status) || !WEXITSTATUS(status)) {
		say("dump of %s %d: %s, expected a refusal", what, r->pid, status_str(status));
		return -1;
	}
	if (check_no_manifest(dir))
		return -1;
	return check_error_line(r, what, err);
}

/* PID 1 of a fresh PID namespace (ours, never the machine's init) asks
 * ckptctl to dump itself. */
static _Noreturn void ns_init(struct run *r)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		say("mounting /proc in the new namespace: %s", strerror(errno));
		_exit(1);
	}
	r->pid = getpid();
	if (refused_dump(r, "pid 1") || check_running(1, 3000))
		_exit(1);
	_exit(0);
}

static int dump_pid1(struct run *r)
{
	int status;
	pid_t helper = fork();

	if (helper == 0) {
		if (unshare(CLONE_NEWPID | CLONE_NEWNS)) {
			say("unshare: %s", strerror(errno));
			_exit(77);
		}
		pid_t init = fork();
		if (init == 0)
			ns_init(r);
		if (init < 0 || waitpid(init, &status, 0) != init)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	if (helper < 0 || wait_child(helper, DUMP_MS, &status))
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return 77;
	return status ? -1 : 0;
}

int bad_dump(struct run *r)
{
	const char *k = r->bad_dump;

	if (!strcmp(k, "free")) {
		r->pid = fork();
		if (r->pid == 0)
			_exit(0);
		if (r->pid < 0 || waitpid(r->pid, NULL, 0) != r->pid || pid_exists(r->pid))
			return -1;
		return refused_dump(r, "a nonexistent pid");
	}
	if (!strcmp(k, "kthread")) {
		r->pid = 2;
		if (!is_kthread(r->pid)) {
			say("pid 2 is no kernel thread here: skip");
			return 77;
		}
		if (refused_dump(r, "a kernel thread"))
			return -1;
		return check_running(2, 3000);
	}
	if (!strcmp(k, "pid1"))
		return dump_pid1(r);
	say("unknown --bad-dump %s", k);
	return -1;
}

