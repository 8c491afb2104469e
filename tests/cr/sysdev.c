/*
 * cr_sysdev_*: a console of the machine that is no process's controlling
 * terminal (zdtm console) is reopened by path and is the same device
 * again (libckpt/regfile.c, tty.c tty_is_system_terminal).  One program,
 * one case per argument:
 *
 *   console  a node for /dev/console (5:1) made in the test's dir, open
 *            read-write and O_NONBLOCK, no controlling terminal: after
 *            the restore fd 40 is that device again, with its flags, and
 *            still not our controlling terminal
 *   vt       a node for virtual terminal 4:7 made in the test's dir and
 *            opened read-only without O_NOCTTY by us, a session leader
 *            without a terminal (zdtm vt): it is our controlling terminal,
 *            a child of ours in a group of its own its foreground group.
 *            After the restore: the same device on fd 40, read-only, our
 *            controlling terminal again (tty_nr), the child's group in its
 *            foreground (libckpt/tty-system.c)
 *   vt-closed  the same, our fd then held by a daemon of ours outside the
 *            tree (reparented) and closed here: the terminal stays ours
 *            (the kernel drops it at its last close only) but no fd of
 *            the tree names it: the dump must refuse it
 *   swap     (the helper of bad_restore_sysdev_swapped, not a case) once
 *            the dumped tree is gone, replaces the node by one of
 *            /dev/null (1:3): the restore must refuse the other device
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 40

static dev_t console = 0;

static void console_setup(void)
{
	char path[4096];
	console = makedev(5, 1);
	CHECK_SYS(setsid() > 0 || errno == EPERM, "setsid");
	test_path(path, "console");
	CHECK_SYS(!mknod(path, S_IFCHR | 0600, console), "mknod %s", path);
	int fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	CHECK_SYS(fd >= 0, "open %s", path);
	move_fd(fd, FD);
}

static void console_check(void)
{
	struct stat st;
	CHECK_SYS(!fstat(FD, &st), "fstat %d", FD);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(5, 1),
	      "fd %d is device %u:%u, not the console", FD, major(st.st_rdev), minor(st.st_rdev));
	int fl = fcntl(FD, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_RDWR && (fl & O_NONBLOCK), "fd %d: flags %#x", FD, fl);
	CHECK(isatty(FD), "fd %d is no terminal", FD);
	CHECK(tcgetpgrp(FD) < 0, "the console became our controlling terminal");
}

#define VT_MINOR 7 /* not zdtm vt's 5: both may run at once */

static pid_t child;

/* tty_nr of /proc/self/stat: our controlling terminal, 0 if none. */
static unsigned self_tty_nr(void)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	CHECK_SYS(f != NULL, "open /proc/self/stat");
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned nr = 0;
	CHECK(p && sscanf(p + 1, " %*c %*d %*d %*d %u", &nr) == 1, "parse /proc/self/stat");
	return nr;
}

static void vt_open(void)
{
	char path[4096];
	CHECK_SYS(setsid() > 0 || errno == EPERM, "setsid");
	CHECK(getsid(0) == getpid(), "not a session leader");
	CHECK(self_tty_nr() == 0, "a controlling terminal already");
	test_path(path, "vt");
	CHECK_SYS(!mknod(path, S_IFCHR | 0600, makedev(4, VT_MINOR)), "mknod %s", path);
	int fd = open(path, O_RDONLY); /* no O_NOCTTY: it becomes ours */
	CHECK_SYS(fd >= 0, "open %s", path);
	move_fd(fd, FD);
	CHECK(self_tty_nr() == ((4u << 8) | VT_MINOR), "the terminal did not become ours");
}

static void vt_setup(void)
{
	vt_open();
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		setpgid(0, 0);
		for (;;)
			pause();
	}
	CHECK_SYS(!setpgid(child, child) || errno == EACCES, "setpgid");
	CHECK_SYS(!tcsetpgrp(FD, child), "tcsetpgrp");
}

static void vt_check(void)
{
	struct stat st;
	CHECK_SYS(!fstat(FD, &st), "fstat %d", FD);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(4, VT_MINOR),
	      "fd %d is device %u:%u, not the terminal", FD, major(st.st_rdev), minor(st.st_rdev));
	CHECK((fcntl(FD, F_GETFL) & O_ACCMODE) == O_RDONLY, "fd %d is not read-only", FD);
	CHECK(getsid(0) == getpid(), "no longer a session leader");
	unsigned nr = self_tty_nr();
	CHECK(nr == ((4u << 8) | VT_MINOR), "controlling terminal %u:%u, not 4:%d", nr >> 8,
	      nr & 0xff, VT_MINOR);
	pid_t fg = tcgetpgrp(FD);
	CHECK(fg == child, "foreground group %d, not %d (the child's)", fg, child);
	CHECK_SYS(!kill(child, SIGKILL), "kill %d", child);
	CHECK_SYS(waitpid(child, NULL, 0) == child, "waitpid");
	/* give the terminal up: the test's node goes, the VT stays free */
	CHECK_SYS(!ioctl(FD, TIOCNOTTY), "TIOCNOTTY");
}

static pid_t holder;

/* A grandchild, reparented away from the tree, keeps fd FD open. */
static void vt_closed_setup(void)
{
	int p[2];
	vt_open();
	CHECK_SYS(!pipe(p), "pipe");
	pid_t mid = fork();
	CHECK_SYS(mid >= 0, "fork");
	if (mid == 0) {
		pid_t g = fork();
		if (g == 0) {
			sleep(60); /* in case nobody kills it */
			_exit(0);
		}
		_exit(write(p[1], &g, sizeof(g)) == sizeof(g) ? 0 : 1);
	}
	CHECK_SYS(waitpid(mid, NULL, 0) == mid, "waitpid");
	CHECK_SYS(read(p[0], &holder, sizeof(holder)) == sizeof(holder) && holder > 0, "read pid");
	close(p[0]);
	close(p[1]);
	close(FD);
	CHECK(self_tty_nr() == ((4u << 8) | VT_MINOR), "the terminal is no longer ours");
}

/* The dump refused: nothing changed. */
static void vt_closed_check(void)
{
	CHECK(self_tty_nr() == ((4u << 8) | VT_MINOR), "the terminal is no longer ours");
	CHECK_SYS(!kill(holder, SIGKILL), "kill %d", holder);
}

/* The helper: the node names another device once the tree is gone. */
static int swap(void)
{
	FILE *f = fopen("helper-ready", "w");
	if (unlink("console") || mknod("console", S_IFCHR | 0600, makedev(1, 3)) || !f ||
	    fclose(f))
		return 1;
	return 0;
}

static const struct cr_case cases[] = {
	{ "console", console_setup, console_check },
	{ "vt", vt_setup, vt_check },
	{ "vt-closed", vt_closed_setup, vt_closed_check },
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "swap"))
		return swap();
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
