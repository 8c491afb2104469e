/*
 * clone-files: processes that share one fd table (clone with CLONE_FILES,
 * not threads), and what of that sharing the dump refuses.
 *
 *   tree     (cr_clone_files*) the root R shares its table with its child
 *            A, and A with its child B; C (A's child) and D (R's) have
 *            tables of their own, copies made at their fork.  After the
 *            restore an fd that B opens is R's and A's, not C's or D's;
 *            one R closes is closed for B, not for C or D.
 *   seccomp  (cr_clone_files_seccomp) the same under a filter that
 *            refuses close_range, which the restore injects in a shared
 *            table before the filters.
 *   sibling  (bad_dump_clone_files_sibling) R makes A and B with
 *            CLONE_FILES, then unshares its own: A and B share a table
 *            their parent does not have.  Refused by name; they still
 *            share after it.
 *   fs       (cr_clone_fs) R shares its fs (cwd, root, umask) with A,
 *            A with B, which has A's fd table too; C and D have their own.
 *            After the restore R's chdir is A's and B's, B's umask is
 *            R's, not D's; B's new fd is A's, not R's.
 *   fs-chroot (bad_dump_clone_fs_chroot) A and B share an fs whose root
 *            A changed (chroot): refused by name.
 *   thread   (bad_dump_thread_fdtable) a thread of R unshares its fd
 *            table; the restorer makes threads sharing the process's.
 *            Refused by name; the thread still has its own after it.
 *
 * Each child serves commands on a pipe: open an fd, close it, or say
 * whether it is open (or name its cwd), so that the check runs in the
 * restored processes themselves.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK (64 * 1024)
#define NEW_FD 77 /* opened after the restore */
#define OLD_FD 60 /* open in all from the start */

struct child {
	const char *name;
	pid_t pid;
	int cmd[2], reply[2];
};

static struct child kids[4]; /* A, B, C, D (tree); A, B (sibling, fs) */

/* One command: 'o' open fd, 'c' close fd, 'q' is fd open (1/0), 'w' the
 * cwd, 'u' umask fd (077: set it; else 1 if it was that), 'r' chroot
 * into the test's directory. */
struct cmd {
	char op;
	int fd;
};

static void serve(struct child *k)
{
	struct cmd c;
	char cwd[PATH_MAX];
	while (read_full(k->cmd[0], &c, sizeof(c)) == sizeof(c)) {
		int r = 0;
		if (c.op == 'o') {
			int fd = open("/dev/null", O_RDONLY);
			r = fd >= 0 && dup2(fd, c.fd) == c.fd;
			close(fd);
		} else if (c.op == 'c') {
			r = close(c.fd) == 0;
		} else if (c.op == 'q') {
			r = fcntl(c.fd, F_GETFD) >= 0;
		} else if (c.op == 'u') { /* 1: the umask was fd's value (or set it) */
			mode_t old = umask((mode_t)c.fd);
			r = old == (mode_t)c.fd || c.fd == 077;
		} else if (c.op == 'r') {
			r = !chroot(test_dir()) && !chdir("/");
		} else if (c.op == 'w') {
			memset(cwd, 0, sizeof(cwd));
			if (!getcwd(cwd, sizeof(cwd)))
				_exit(3);
			if (write_full(k->reply[1], cwd, sizeof(cwd)) != sizeof(cwd))
				_exit(3);
			continue;
		}
		char b = (char)r;
		if (write_full(k->reply[1], &b, 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static int serve_main(void *arg)
{
	serve(arg);
	return 0;
}

static int ask(struct child *k, char op, int fd)
{
	struct cmd c = { op, fd };
	char b;
	CHECK_SYS(write_full(k->cmd[1], &c, sizeof(c)) == sizeof(c), "%s: command", k->name);
	CHECK_SYS(read_full(k->reply[0], &b, 1) == 1, "%s: reply", k->name);
	return b;
}

static void make_pipes(struct child *k, const char *name)
{
	k->name = name;
	CHECK_SYS(!pipe(k->cmd) && !pipe(k->reply), "%s: pipe", name);
}

/* A's children: B with b_flags, C with 0 (tree case); set before A is made. */
static int b_flags;

static int a_main(void *arg);

/* k served by a new process made with clone(flags); kids[0] (A) first
 * makes B and C. */
static void spawn(struct child *k, int flags)
{
	char *stack = malloc(STACK);
	CHECK_SYS(stack != NULL, "malloc");
	k->pid = clone(k == &kids[0] ? a_main : serve_main, stack + STACK, flags | SIGCHLD, k);
	CHECK_SYS(k->pid > 0, "%s: clone", k->name);
}

static int a_main(void *arg)
{
	(void)arg;
	spawn(&kids[1], b_flags);
	spawn(&kids[2], 0);
	pid_t pids[2] = { kids[1].pid, kids[2].pid };
	if (write_full(kids[0].reply[1], pids, sizeof(pids)) != sizeof(pids))
		_exit(4);
	serve(&kids[0]);
	return 0;
}

/* R makes A with a_flags, A makes B with B's and C, R makes D. */
static void make_tree(int a_flags, int flags_of_b)
{
	const char *names[] = { "A", "B", "C", "D" };
	for (int i = 0; i < 4; i++)
		make_pipes(&kids[i], names[i]);
	b_flags = flags_of_b;
	spawn(&kids[0], a_flags);
	pid_t pids[2];
	CHECK_SYS(read_full(kids[0].reply[0], pids, sizeof(pids)) == sizeof(pids), "A: pids");
	kids[1].pid = pids[0];
	kids[2].pid = pids[1];
	spawn(&kids[3], 0);
}

static void setup_tree(void)
{
	int fd = open("/dev/null", O_RDONLY);
	move_fd(fd, OLD_FD);
	make_tree(CLONE_FILES, CLONE_FILES);
}

static void check_tree(void)
{
	static const int sees_new[4] = { 1, 1, 0, 0 }; /* A, B share R's table */
	CHECK(fcntl(NEW_FD, F_GETFD) < 0, "fd %d open before the check", NEW_FD);
	CHECK(ask(&kids[1], 'o', NEW_FD), "B: cannot open fd %d", NEW_FD);
	CHECK(fcntl(NEW_FD, F_GETFD) >= 0, "fd %d that B opened is not ours: table not shared",
	      NEW_FD);
	for (int i = 0; i < 4; i++)
		CHECK(ask(&kids[i], 'q', NEW_FD) == sees_new[i], "%s: fd %d that B opened is %s",
		      kids[i].name, NEW_FD, sees_new[i] ? "not in its table" : "in its table too");
	CHECK_SYS(!close(OLD_FD), "close %d", OLD_FD);
	for (int i = 0; i < 4; i++)
		CHECK(ask(&kids[i], 'q', OLD_FD) == !sees_new[i], "%s: fd %d that we closed is %s",
		      kids[i].name, OLD_FD, sees_new[i] ? "still open" : "closed too");
}

/* The tree case under a seccomp filter that refuses close_range (EPERM):
 * the restore's own close_range in a shared table comes before the
 * filters. */
static void setup_seccomp(void)
{
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = { sizeof(prog) / sizeof(prog[0]), prog };
	CHECK_SYS(!prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
	CHECK_SYS(!prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog), "seccomp");
	CHECK(syscall(SYS_close_range, 1000, 1000, 0) < 0 && errno == EPERM,
	      "close_range not refused by the filter");
	setup_tree();
}

static void check_seccomp(void)
{
	CHECK(syscall(SYS_close_range, 1000, 1000, 0) < 0 && errno == EPERM,
	      "close_range no longer refused: filter lost");
	check_tree();
}

/* R's children A and B share a table that R, after unshare, has not. */
static void setup_sibling(void)
{
	make_pipes(&kids[0], "A");
	make_pipes(&kids[1], "B");
	char *stack = malloc(2 * STACK);
	CHECK_SYS(stack != NULL, "malloc");
	for (int i = 0; i < 2; i++) {
		kids[i].pid = clone(serve_main, stack + (i + 1) * STACK,
				    CLONE_FILES | SIGCHLD, &kids[i]);
		CHECK_SYS(kids[i].pid > 0, "%s: clone", kids[i].name);
	}
	CHECK_SYS(!unshare(CLONE_FILES), "unshare");
}

static void check_sibling(void)
{
	CHECK(ask(&kids[0], 'o', NEW_FD), "A: cannot open fd %d", NEW_FD);
	CHECK(ask(&kids[1], 'q', NEW_FD), "B: fd %d that A opened is not in its table", NEW_FD);
	CHECK(fcntl(NEW_FD, F_GETFD) < 0, "fd %d that A opened is ours: table not unshared",
	      NEW_FD);
}

/* R, A, B share one fs; A and B one fd table too; C and D have their own. */
static void setup_fs(void)
{
	umask(022);
	make_tree(CLONE_FS, CLONE_FS | CLONE_FILES);
}

static void cwd_of(struct child *k, char *cwd)
{
	struct cmd c = { 'w', 0 };
	CHECK_SYS(write_full(k->cmd[1], &c, sizeof(c)) == sizeof(c), "%s: command", k->name);
	CHECK_SYS(read_full(k->reply[0], cwd, PATH_MAX) == PATH_MAX, "%s: cwd", k->name);
}

static void check_fs(void)
{
	static const int shares[4] = { 1, 1, 0, 0 }; /* A, B share our fs */
	char was[PATH_MAX], now[PATH_MAX];
	CHECK_SYS(getcwd(was, sizeof(was)) != NULL, "getcwd");
	CHECK_SYS(!chdir("/"), "chdir /");
	for (int i = 0; i < 4; i++) {
		cwd_of(&kids[i], now);
		CHECK((strcmp(now, "/") == 0) == shares[i], "%s: cwd %s after our chdir /: %s", kids[i].name,
		      now, shares[i] ? "fs not shared" : "fs shared");
	}
	CHECK(ask(&kids[1], 'u', 077), "B: umask");
	mode_t m = umask(022);
	CHECK(m == 077, "umask %03o after B set 077: fs not shared", (unsigned)m);
	CHECK(ask(&kids[3], 'u', 022) == 1, "D: umask"); /* reply: was it 022 */
	CHECK(ask(&kids[1], 'o', NEW_FD), "B: cannot open fd %d", NEW_FD);
	CHECK(ask(&kids[0], 'q', NEW_FD), "A: fd %d that B opened is not in its table", NEW_FD);
	CHECK(fcntl(NEW_FD, F_GETFD) < 0, "fd %d that B opened is ours: table shared", NEW_FD);
	CHECK_SYS(!chdir(was), "chdir %s", was);
}

/* X (R's child) makes Y sharing its fs, then both chroot. */
static void setup_fs_chroot(void)
{
	make_tree(0, CLONE_FS);
	CHECK(ask(&kids[0], 'r', 0), "A: chroot");
}

static void check_fs_chroot(void)
{
	CHECK(ask(&kids[1], 'q', kids[1].cmd[0]), "B: not answering");
}

static int thread_go[2], thread_unshared[2], thread_cmd[2];

static void *thread_main(void *arg)
{
	(void)arg;
	char b = !unshare(CLONE_FILES) && !close(thread_go[0]);
	if (write_full(thread_unshared[1], &b, 1) != 1)
		_exit(5);
	/* each byte on thread_cmd: is thread_go[0] open in our table? */
	while (read_full(thread_cmd[0], &b, 1) == 1) {
		b = fcntl(thread_go[0], F_GETFD) >= 0;
		if (write_full(thread_unshared[1], &b, 1) != 1)
			_exit(5);
	}
	return NULL;
}

/* thread_go[0] is closed in the thread's own table only. */
static void setup_thread(void)
{
	pthread_t t;
	char b = 0;
	CHECK_SYS(!pipe(thread_go) && !pipe(thread_unshared) && !pipe(thread_cmd), "pipe");
	test_block_check();
	CHECK(!pthread_create(&t, NULL, thread_main, NULL), "pthread_create");
	CHECK_SYS(read_full(thread_unshared[0], &b, 1) == 1 && b, "thread: unshare");
	sigset_t check;
	sigemptyset(&check);
	sigaddset(&check, CR_CHECK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &check, NULL);
}

static void check_thread(void)
{
	char b = 0;
	CHECK(fcntl(thread_go[0], F_GETFD) >= 0, "fd %d that the thread closed in its own "
	      "table is closed in ours", thread_go[0]);
	CHECK_SYS(write_full(thread_cmd[1], &b, 1) == 1 && read_full(thread_unshared[0], &b, 1) == 1,
		  "thread: ask");
	CHECK(!b, "fd %d that the thread closed in its own table is open in it: the table is "
	      "no longer its own", thread_go[0]);
}

static void end_children(void)
{
	for (int i = 0; i < 4; i++)
		if (kids[i].pid > 0) {
			kill(kids[i].pid, SIGKILL);
			/* C is A's child: reaped by A, or by init */
			waitpid(kids[i].pid, NULL, __WALL | WNOHANG);
		}
}

static const struct cr_case cases[] = {
	{ "tree", setup_tree, check_tree },
	{ "seccomp", setup_seccomp, check_seccomp },
	{ "sibling", setup_sibling, check_sibling },
	{ "fs", setup_fs, check_fs },
	{ "fs-chroot", setup_fs_chroot, check_fs_chroot },
	{ "thread", setup_thread, check_thread },
};

int main(int argc, char **argv)
{
	test_init();
	atexit(end_children);
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
