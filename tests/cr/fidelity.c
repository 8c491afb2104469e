/*
 * cr_fid_*: state that a restore used to change without a word (issue 15,
 * "restored with exit 0, then the program found its state changed").  One
 * program, one case per argument:
 *
 *   fown         F_SETOWN_EX (a process, a process group) and F_SETSIG of
 *                a pipe with O_ASYNC and of a socket; after the restore a
 *                write into the pipe still signals us with our signal
 *   fown-outside a pipe whose owner is our parent, outside the tree: the
 *                dump is refused, naming it
 *   memfd-mode   a memfd's mode (fchmod 0642) and times (futimens)
 *   memfd-exec   execveat() of a memfd holding a script, which fails with
 *                ETXTBSY if anything holds the memfd open for writing
 *   memfd-exec-map  the same while the memfd is mapped shared and writable
 *                and a read-only description of it is mapped private
 *   ghost-holes  an unlinked file with holes: the same data and holes
 *                (SEEK_DATA/SEEK_HOLE), no more blocks than before, and
 *                its offset, which the dump's look for holes must not
 *                move (with -R the program runs on with it)
 *   ghost-times  an unlinked file's mtime and atime
 *   stopped-tstp a child in its own process group stopped by SIGTSTP: after
 *                the restore it is still stopped, waitid() says by SIGTSTP
 *                (not SIGSTOP), and it runs on after SIGCONT
 *   membarrier   membarrier registrations (private and global expedited):
 *                the same after the restore (GET_REGISTRATIONS), and a
 *                private expedited barrier works
 *   oom          /proc/self/oom_score_adj (raised: no privilege needed)
 *   loginuid     /proc/self/loginuid, set once while unset (needs no
 *                privilege); skipped where it is already set
 *   chroot       a child chrooted into a directory, its cwd there: after
 *                the restore "/" and "." are that directory (the restore
 *                looked the cwd up inside the new root, and failed)
 *
 * After the restore each checks that the state reads back the same.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FD 40 /* the cases' fds are FD, FD + 1, ... */

static char path_a[PATH_MAX];

/* ------------------------------ fown --------------------------------- */

static volatile sig_atomic_t got_sigio;
static volatile int sigio_fd;

static void on_sigio(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got_sigio++;
	sigio_fd = si->si_fd;
}

static void fown_setup(void)
{
	int p[2], sv[2];
	struct f_owner_ex own = { F_OWNER_PID, getpid() };
	struct sigaction sa = { .sa_sigaction = on_sigio, .sa_flags = SA_SIGINFO | SA_RESTART };
	CHECK_SYS(!sigaction(SIGRTMIN + 3, &sa, NULL), "sigaction");
	CHECK_SYS(!pipe(p), "pipe");
	move_fd(p[0], FD);
	move_fd(p[1], FD + 1);
	CHECK_SYS(!fcntl(FD, F_SETOWN_EX, &own), "F_SETOWN_EX pid");
	CHECK_SYS(!fcntl(FD, F_SETSIG, SIGRTMIN + 3), "F_SETSIG");
	CHECK_SYS(!fcntl(FD, F_SETFL, fcntl(FD, F_GETFL) | O_ASYNC), "O_ASYNC");
	CHECK_SYS(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	move_fd(sv[0], FD + 2);
	move_fd(sv[1], FD + 3);
	CHECK_SYS(!setpgid(0, 0) || errno == EPERM, "setpgid");
	own = (struct f_owner_ex){ F_OWNER_PGRP, getpgrp() };
	CHECK_SYS(!fcntl(FD + 2, F_SETOWN_EX, &own), "F_SETOWN_EX pgrp");
	CHECK_SYS(!fcntl(FD + 2, F_SETSIG, SIGUSR2), "F_SETSIG");
}

static void fown_check(void)
{
	struct f_owner_ex own;
	CHECK_SYS(!fcntl(FD, F_GETOWN_EX, &own), "F_GETOWN_EX");
	CHECK(own.type == F_OWNER_PID && own.pid == getpid(), "pipe owner: type %d pid %d, not %d",
	      own.type, own.pid, getpid());
	CHECK(fcntl(FD, F_GETSIG) == SIGRTMIN + 3, "pipe F_GETSIG %d, not %d", fcntl(FD, F_GETSIG),
	      SIGRTMIN + 3);
	CHECK(fcntl(FD, F_GETFL) & O_ASYNC, "pipe lost O_ASYNC");
	CHECK_SYS(!fcntl(FD + 2, F_GETOWN_EX, &own), "F_GETOWN_EX");
	CHECK(own.type == F_OWNER_PGRP && own.pid == getpgrp(),
	      "socket owner: type %d pid %d, not group %d", own.type, own.pid, getpgrp());
	CHECK(fcntl(FD + 2, F_GETSIG) == SIGUSR2, "socket F_GETSIG %d", fcntl(FD + 2, F_GETSIG));
	CHECK(fcntl(FD + 3, F_GETSIG) == 0, "the socket's peer got F_GETSIG %d",
	      fcntl(FD + 3, F_GETSIG));
	got_sigio = 0;
	CHECK_SYS(write(FD + 1, "x", 1) == 1, "write pipe");
	for (int i = 0; i < 1000 && !got_sigio; i++)
		usleep(1000);
	CHECK(got_sigio, "no signal from the pipe after a write");
	CHECK(sigio_fd == FD, "signal for fd %d, not %d", sigio_fd, FD);
}

static void fown_outside_setup(void)
{
	int p[2];
	CHECK_SYS(!pipe(p), "pipe");
	move_fd(p[0], FD);
	CHECK_SYS(!fcntl(FD, F_SETOWN, getppid()), "F_SETOWN");
}

static void fown_outside_check(void)
{
	CHECK(fcntl(FD, F_GETOWN) == getppid(), "owner changed");
}

/* ------------------------------ memfd -------------------------------- */

static const struct timespec times_set[2] = { { 1000000000, 123456789 }, { 1100000000, 5 } };

static void check_times(int fd, const char *what)
{
	struct stat st;
	CHECK_SYS(!fstat(fd, &st), "fstat %s", what);
	CHECK(st.st_mtim.tv_sec == times_set[1].tv_sec && st.st_mtim.tv_nsec == times_set[1].tv_nsec,
	      "%s: mtime %lld.%09ld, not %lld.%09ld", what, (long long)st.st_mtim.tv_sec,
	      st.st_mtim.tv_nsec, (long long)times_set[1].tv_sec, times_set[1].tv_nsec);
	CHECK(st.st_atim.tv_sec == times_set[0].tv_sec && st.st_atim.tv_nsec == times_set[0].tv_nsec,
	      "%s: atime %lld.%09ld, not %lld.%09ld", what, (long long)st.st_atim.tv_sec,
	      st.st_atim.tv_nsec, (long long)times_set[0].tv_sec, times_set[0].tv_nsec);
}

static void memfd_mode_setup(void)
{
	move_fd(memfd_create("mode", 0), FD);
	CHECK_SYS(write(FD, "some data", 9) == 9, "write memfd");
	CHECK_SYS(!fchmod(FD, 0642), "fchmod");
	CHECK_SYS(!futimens(FD, times_set), "futimens");
}

static void memfd_mode_check(void)
{
	struct stat st;
	CHECK_SYS(!fstat(FD, &st), "fstat");
	CHECK((st.st_mode & 07777) == 0642, "memfd mode %o, not 642", st.st_mode & 07777);
	check_times(FD, "memfd");
}

static const char script[] = "#!/bin/true\n";
static volatile char *map_shared, *map_private;

static void exec_fd(int fd, const char *when)
{
	pid_t pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (!pid) {
		char *const argv[] = { "true", NULL }, *const envp[] = { NULL };
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(errno);
	}
	int status;
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "%s: execveat of the memfd: %s", when,
	      WIFEXITED(status) ? strerror(WEXITSTATUS(status)) : "killed");
}

static void memfd_exec_setup(int mapped)
{
	move_fd(memfd_create("script", 0), FD);
	CHECK_SYS(write(FD, script, strlen(script)) == (ssize_t)strlen(script), "write memfd");
	if (mapped) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", FD);
		move_fd(open(path, O_RDONLY), FD + 1);
		map_private = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, FD + 1, 0);
		map_shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0);
		CHECK_SYS(map_private != MAP_FAILED && map_shared != MAP_FAILED, "mmap");
		map_private[1] = '?'; /* a private copy of the first page */
	}
	exec_fd(FD, "before the dump");
}

static void memfd_exec_setup_plain(void)
{
	memfd_exec_setup(0);
}

static void memfd_exec_setup_mapped(void)
{
	memfd_exec_setup(1);
}

static void memfd_exec_check(void)
{
	exec_fd(FD, "after the restore");
	if (map_shared) {
		CHECK(map_shared[0] == '#' && map_private[1] == '?', "mappings changed");
	}
}

/* ------------------------------ ghost -------------------------------- */

#define HOLE_FILE (960u << 10) /* under the default --ghost-limit */
/* data extents of the file, page aligned; the rest are holes */
static const struct {
	off_t at, len;
} extents[] = { { 0, 8192 }, { 256u << 10, 4096 }, { 704u << 10, 12288 } };
#define NR_EXTENTS (sizeof(extents) / sizeof(extents[0]))
static blkcnt_t blocks_before;

static char pattern(off_t at)
{
	return (char)('a' + at % 23);
}

static void ghost_holes_setup(void)
{
	char buf[16384];
	struct stat st;
	test_path(path_a, "holes");
	move_fd(open(path_a, O_RDWR | O_CREAT | O_EXCL, 0640), FD);
	for (size_t i = 0; i < NR_EXTENTS; i++) {
		for (off_t j = 0; j < extents[i].len; j++)
			buf[j] = pattern(extents[i].at + j);
		CHECK_SYS(pwrite(FD, buf, (size_t)extents[i].len, extents[i].at) == extents[i].len,
			  "pwrite");
	}
	CHECK_SYS(!ftruncate(FD, HOLE_FILE), "ftruncate");
	CHECK_SYS(!fsync(FD), "fsync");
	CHECK_SYS(!unlink(path_a), "unlink");
	CHECK_SYS(!fstat(FD, &st), "fstat");
	blocks_before = st.st_blocks;
	/* Where the file system cannot tell holes, the case says nothing. */
	if (lseek(FD, 0, SEEK_HOLE) != 8192) {
		printf("SKIP: %s does not report holes\n", test_dir());
		exit(77);
	}
	CHECK_SYS(lseek(FD, 12345, SEEK_SET) == 12345, "lseek");
}

static void ghost_holes_check(void)
{
	struct stat st;
	char buf[16384];
	CHECK_SYS(!fstat(FD, &st), "fstat");
	CHECK(st.st_size == HOLE_FILE, "size %lld", (long long)st.st_size);
	CHECK(st.st_blocks <= blocks_before, "%lld blocks, %lld before: holes filled",
	      (long long)st.st_blocks, (long long)blocks_before);
	off_t pos = lseek(FD, 0, SEEK_CUR);
	CHECK(pos == 12345, "offset %lld, not 12345", (long long)pos);
	off_t at = 0;
	for (size_t i = 0; i < NR_EXTENTS; i++) {
		off_t data = lseek(FD, at, SEEK_DATA);
		CHECK(data == extents[i].at, "extent %zu: data at %lld, not %lld", i, (long long)data,
		      (long long)extents[i].at);
		at = lseek(FD, data, SEEK_HOLE);
		CHECK(at == extents[i].at + extents[i].len, "extent %zu: hole at %lld, not %lld", i,
		      (long long)at, (long long)(extents[i].at + extents[i].len));
		CHECK_SYS(pread(FD, buf, (size_t)extents[i].len, extents[i].at) == extents[i].len,
			  "pread");
		for (off_t j = 0; j < extents[i].len; j++)
			CHECK(buf[j] == pattern(extents[i].at + j), "byte %lld differs",
			      (long long)(extents[i].at + j));
	}
	CHECK(lseek(FD, at, SEEK_DATA) < 0 && errno == ENXIO, "data after the last extent");
}

static void ghost_times_setup(void)
{
	test_path(path_a, "times");
	move_fd(open(path_a, O_RDWR | O_CREAT | O_EXCL, 0640), FD);
	CHECK_SYS(write(FD, "ghost contents", 14) == 14, "write");
	CHECK_SYS(!futimens(FD, times_set), "futimens");
	CHECK_SYS(!unlink(path_a), "unlink");
}

static void ghost_times_check(void)
{
	check_times(FD, "ghost");
}

/* ------------------------------ stopped ------------------------------ */

static pid_t child;

static int stop_signal_of(pid_t pid)
{
	siginfo_t si = { 0 };
	CHECK_SYS(!waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOWAIT), "waitid");
	CHECK(si.si_code == CLD_STOPPED, "child %d: si_code %d, not stopped", pid, si.si_code);
	return si.si_status;
}

static void stopped_setup(void)
{
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child) {
		for (;;)
			pause();
	}
	/* its own group, whose parent (we) is in another group of the
	 * session: not orphaned, so SIGTSTP stops it */
	CHECK_SYS(!setpgid(child, child), "setpgid");
	CHECK_SYS(!kill(child, SIGTSTP), "kill SIGTSTP");
	int sig = stop_signal_of(child);
	CHECK(sig == SIGTSTP, "stopped by %d, not SIGTSTP", sig);
}

static void stopped_check(void)
{
	int sig = stop_signal_of(child);
	CHECK(sig == SIGTSTP, "after the restore: stopped by %s, not SIGTSTP", strsignal(sig));
	CHECK_SYS(!kill(child, SIGCONT), "SIGCONT");
	siginfo_t si = { 0 };
	CHECK_SYS(!waitid(P_PID, (id_t)child, &si, WCONTINUED), "waitid WCONTINUED");
	CHECK(si.si_code == CLD_CONTINUED, "child not continued: si_code %d", si.si_code);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* ----------------------------- membarrier ----------------------------- */

#define MB_GET_REGISTRATIONS (1 << 9)
#define MB_REGISTER_GLOBAL_EXPEDITED (1 << 2)
#define MB_PRIVATE_EXPEDITED (1 << 3)
#define MB_REGISTER_PRIVATE_EXPEDITED (1 << 4)

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static void membarrier_setup(void)
{
	if (membarrier(MB_GET_REGISTRATIONS) < 0) {
		printf("SKIP: no MEMBARRIER_CMD_GET_REGISTRATIONS\n");
		exit(77);
	}
	CHECK_SYS(!membarrier(MB_REGISTER_PRIVATE_EXPEDITED), "register private expedited");
	CHECK_SYS(!membarrier(MB_REGISTER_GLOBAL_EXPEDITED), "register global expedited");
	long r = membarrier(MB_GET_REGISTRATIONS);
	CHECK(r == (MB_REGISTER_PRIVATE_EXPEDITED | MB_REGISTER_GLOBAL_EXPEDITED),
	      "registrations %#lx", r);
}

static void membarrier_check(void)
{
	long r = membarrier(MB_GET_REGISTRATIONS);
	CHECK(r == (MB_REGISTER_PRIVATE_EXPEDITED | MB_REGISTER_GLOBAL_EXPEDITED),
	      "registrations %#lx after the restore, not %#x", r,
	      MB_REGISTER_PRIVATE_EXPEDITED | MB_REGISTER_GLOBAL_EXPEDITED);
	CHECK_SYS(!membarrier(MB_PRIVATE_EXPEDITED), "private expedited barrier");
}

/* ---------------------------- oom, loginuid --------------------------- */

static long read_proc_long(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	CHECK_SYS(fd >= 0, "%s", path);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	CHECK_SYS(n > 0, "read %s", path);
	close(fd);
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static int write_proc(const char *path, long v)
{
	char buf[64];
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	int n = snprintf(buf, sizeof(buf), "%ld", v);
	int ret = write(fd, buf, (size_t)n) == n ? 0 : -1;
	close(fd);
	return ret;
}

static void oom_setup(void)
{
	CHECK_SYS(!write_proc("/proc/self/oom_score_adj", 345), "oom_score_adj");
}

static void oom_check(void)
{
	long v = read_proc_long("/proc/self/oom_score_adj");
	CHECK(v == 345, "oom_score_adj %ld, not 345", v);
}

#define LOGINUID 4321

static void loginuid_setup(void)
{
	if (read_proc_long("/proc/self/loginuid") != 4294967295L) {
		printf("SKIP: loginuid already set\n");
		exit(77);
	}
	CHECK_SYS(!write_proc("/proc/self/loginuid", LOGINUID), "loginuid");
}

static void loginuid_check(void)
{
	long v = read_proc_long("/proc/self/loginuid");
	CHECK(v == LOGINUID, "loginuid %ld, not %d", v, LOGINUID);
}

/* A child in a chroot whose cwd is its new root (zdtm chroot: the restore
 * looked the cwd up inside the new root).  Checked by the child: "/" is
 * the jail, "." too, and /inside is readable. */
static pid_t jailed;
static int jail_done[2];

static void jail_check_child(ino_t jail_ino)
{
	struct stat root, cwd;
	char buf[16] = { 0 };
	int fd = open("/inside", O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != 6 || strcmp(buf, "jailed"))
		_exit(2);
	if (stat("/", &root) || stat(".", &cwd) || root.st_ino != jail_ino || cwd.st_ino != jail_ino)
		_exit(3);
	_exit(0);
}

static void chroot_setup(void)
{
	char jail[PATH_MAX], inside[PATH_MAX + 8];
	struct stat st;
	sigset_t usr1;
	char c;

	test_path(jail, "jail");
	snprintf(inside, sizeof(inside), "%s/inside", jail);
	CHECK_SYS(!mkdir(jail, 0755) && !stat(jail, &st), "mkdir %s", jail);
	int fd = open(inside, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(fd >= 0 && write(fd, "jailed", 6) == 6 && !close(fd), "%s", inside);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	CHECK_SYS(!pipe(jail_done), "pipe");
	jailed = fork();
	CHECK_SYS(jailed >= 0, "fork");
	if (!jailed) {
		if (chroot(jail) || chdir("/"))
			_exit(1);
		c = 'j';
		if (write(jail_done[1], &c, 1) != 1)
			_exit(1);
		while (sigwaitinfo(&usr1, NULL) < 0)
			;
		jail_check_child(st.st_ino);
	}
	CHECK_SYS(read(jail_done[0], &c, 1) == 1, "the jailed child failed to chroot");
}

static void chroot_check(void)
{
	int status;

	CHECK_SYS(!kill(jailed, SIGUSR1), "kill");
	CHECK_SYS(waitpid(jailed, &status, 0) == jailed, "waitpid");
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status),
	      "the jailed child: exit %d (2: /inside, 3: root or cwd not the jail)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ------------------------------ main --------------------------------- */

static const struct cr_case cases[] = {
	{ "fown", fown_setup, fown_check },
	{ "fown-outside", fown_outside_setup, fown_outside_check },
	{ "memfd-mode", memfd_mode_setup, memfd_mode_check },
	{ "memfd-exec", memfd_exec_setup_plain, memfd_exec_check },
	{ "memfd-exec-map", memfd_exec_setup_mapped, memfd_exec_check },
	{ "ghost-holes", ghost_holes_setup, ghost_holes_check },
	{ "ghost-times", ghost_times_setup, ghost_times_check },
	{ "stopped-tstp", stopped_setup, stopped_check },
	{ "membarrier", membarrier_setup, membarrier_check },
	{ "oom", oom_setup, oom_check },
	{ "loginuid", loginuid_setup, loginuid_check },
	{ "chroot", chroot_setup, chroot_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
