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
 *   swap     (the helper of bad_restore_sysdev_swapped, not a case) once
 *            the dumped tree is gone, replaces the node by one of
 *            /dev/null (1:3): the restore must refuse the other device
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "swap"))
		return swap();
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
