/*
 * cr-run: the harness of the C/R test suite (zdtm style).
 *
 *   cr-run --ckptctl PATH [flow options] -- TEST-PROGRAM [ARGS...]
 *   cr-run --ckptctl PATH --bad-dump free|kthread|pid1
 *
 * Normal flow: start the test program in its own session (stdio to a log
 * file in a fresh temp dir, stdin /dev/null), wait for its ready file,
 * `ckptctl dump` (which kills the tree), reap the whole tree (we are a
 * child subreaper, so its orphans are ours), `ckptctl restore --pidfile`,
 * send the check signal to the restored root and take ckptctl's exit
 * status (the restored root's) as the verdict.
 *
 * Flow options (see usage()) add steps around that cycle: dumps with
 * --leave-running, kills of ckptctl in the middle of a dump, an occupied
 * PID, dumps and restores that must fail cleanly (one line on stderr,
 * nothing left behind).  Every wait has a timeout; everything we started is
 * killed at the end.  Exit: 0 PASS, 1 FAIL, 77 SKIP.
 *
 * --user NAME runs the test program and every ckptctl as that user (with
 * the user's groups), the way a user's job is checkpointed: through the
 * agent at $CKPT_SOCKET, which a user's ckptctl must use.  The temp dir
 * is the user's, so the test's files (log, ready file, images, pidfile)
 * are too; the harness itself stays root (subreaper, peeks, kills).
 */
#include "cr-run.h"
#include "cr-pty.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr,
		"usage: cr-run [--ckptctl PATH] [options] -- PROGRAM [ARGS...]\n"
		"  --no-cr               no checkpoint: run, signal, check\n"
		"  --leave-running-twice two dumps with -R first, then the cycle\n"
		"  --check-progress      after a -R dump, cr_shared.progress must grow\n"
		"  --kill-dump N         kill -9 ckptctl dump -R at N random moments\n"
		"  --occupy-pid          restore while another process holds the PID\n"
		"  --expect-dump-fail    dump must be refused, target untouched\n"
		"  --corrupt KIND        damage the images; restore must fail cleanly\n"
		"  --after-dump K:FILE   between dump and restore, FILE of $CR_DIR is\n"
		"                        removed (rm, rmtree) or overwritten in place, size and mtime\n"
		"                        kept (scribble); the restore must still succeed;\n"
		"                        rmcgroups:FILE: rmdir of the cgroups FILE lists;\n"
		"                        undelegate:-: the --delegate-cgroup is root's again\n"
		"                        KIND: truncate-core truncate-pages flip-core\n"
		"                        flip-pages rm-manifest unreadable nodir rm:FILE\n"
"                        append:FILE (FILE in $CR_DIR)\n"
		"  --expect-msg S        the one error line contains S (%%p: pid)\n"
		"  --dump-opt O / --restore-opt O   extra ckptctl options\n"
		"  --bad-dump free|kthread|pid1   dump of what cannot be dumped\n"
		"  --timeout S           give up (and clean up) after S seconds\n"
		"  --helper P [--helper-arg A]  run P A outside the tree, in the test's\n"
		"                        dir, before the test; wait for its file helper-ready\n"
		"  --inherit-unix PATH   restore with --inherit-fd: a new connection to PATH\n"
		"                        for the socket named in the test's inherit-resource\n"
		"  --expect-restore-fail the restore must fail cleanly (see --expect-msg)\n"
		"  --on-pty              run the test as the foreground job of a shell on a\n"
		"                        fresh pty ($CR_DIR/start-tty); restore from a session\n"
		"                        whose terminal is another one ($CR_DIR/restore-tty)\n"
		"  --user NAME           the test and ckptctl run as NAME with NAME's groups\n"
		"                        (ckptctl through ckptd at $CKPT_SOCKET); the temp\n"
		"                        dir is NAME's; the restored root must be NAME's\n"
		"  --ckptctl-user NAME   ckptctl runs as NAME instead (not the test's owner)\n"
		"  --helper-after-dump   start the --helper once the dumped tree is gone\n"
		"  --fail-first-opt O    before the restore, one with these extra options\n"
		"                        must fail (see --expect-msg)\n"
		"  --expect-restore-out S  the restore's stdout holds S (with --stats)\n"
		"  --restore-after-exit  dump -R, let the test check and exit, restore that dump\n"
		"  --own-netns           run everything in a fresh network namespace (lo up)\n"
		"  --net-sysctl N=V      with --own-netns: /proc/sys/net/N = V there\n"
		"  --redump              dump the restored tree again, restore and check that\n"
		"  --redump-refused      --redump, but the first dump of the restored tree\n"
		"                        must be refused (see --expect-msg): the second one\n"
		"                        waits until a lazy restore has all memory in\n"
		"  --delegate-cgroup     with --user: a cpu cgroup of the user's, $CR_CGROUP\n"
		"  --no-verify           restore without --verify (by default every restore\n"
		"                        compares the restored tree with its images)\n"
		"  --page-server         dump through ckptctl page-server on 127.0.0.1, restore\n"
		"                        from its directory\n"
		"  --dump-running        the cycle's dump leaves the tree running (-R: a\n"
		"                        snapshot dump), then the tree is killed\n"
		"  --expect-dump-out S   every successful dump's stdout holds S (--dump-opt --stats)\n"
		"  --no-snapshot         every dump with --no-snapshot (also $CR_NO_SNAPSHOT=1)\n"
		"  --cold                before each restore, the page cache of every file\n"
		"                        under the test's dir is dropped (also $CR_COLD=1)\n"
		"  $CR_LAZY=1            every restore not through ckptd with --lazy\n"
		"  $CR_PAGE_SERVER=1     every full cycle through a page server\n");
	exit(2);
}

/* --on-pty (cr-pty.c): the "shell" that owns the test's terminal is its
 * parent, and its exit status is the test's. */
static int on_pty;
static pid_t pty_shell;

/* ---- --user ---- */

static void lookup_user(struct run_user *u, const char *name)
{
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		say("user %s: no such user", name);
		exit(2);
	}
	u->name = name;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
}

/* In a child before exec: become the user with their groups; the groups
 * first, since setgroups and setresgid need the root we then give up. */
static void become_user(const struct run_user *u)
{
	if (!u->name)
		return;
	if (initgroups(u->name, u->gid) || setresgid(u->gid, u->gid, u->gid) ||
	    setresuid(u->uid, u->uid, u->uid)) {
		dprintf(2, "cr-run: cannot become %s: %s\n", u->name, strerror(errno));
		_exit(126);
	}
}

/* spawn()'s pre_exec for ckptctl: the flow's own step (a pty, a
 * connection to inherit: done as root), then become the user. */
static void (*flow_pre_exec)(void *);

static void ckptctl_pre_exec(void *arg)
{
	if (flow_pre_exec)
		flow_pre_exec(NULL);
	become_user(arg);
}

/* The restored root is the user's again (not root's, and dumpable:
 * /proc/PID belongs to root for a task that is not). */
static int check_restored_user(const struct run *r, pid_t pid)
{
	char path[32];
	struct stat st;

	if (!r->user.name)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st)) {
		say("stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid != r->user.uid || st.st_gid != r->user.gid) {
		say("restored root %d belongs to %u:%u, not to %s (%u:%u)", pid, st.st_uid,
		    st.st_gid, r->user.name, r->user.uid, r->user.gid);
		return -1;
	}
	return 0;
}

/* Static storage: the three paths live as long as the harness. */
static char *absolute(const char *path)
{
	static char bufs[3][PATH_MAX];
	static int used;
	char *buf = bufs[used++ % 3];

	if (!realpath(path, buf))
		snprintf(buf, PATH_MAX, "%s", path);
	return buf;
}

/*
 * The whole suite in another mode (scripts/cr-modes): $CR_LAZY=1 restores
 * with --lazy, $CR_PAGE_SERVER=1 dumps through a page server.  A restore
 * through ckptd (--user) cannot be lazy (refused by name there), so such a
 * case keeps its eager restore; the page server is the dump's own route
 * and leaves the cases that do not end in one full cycle as they are.
 */
static int env_on(const char *name)
{
	const char *v = getenv(name);

	return v && strcmp(v, "0");
}

static void env_modes(struct run *r)
{
	if (env_on("CR_LAZY") && !r->user.name && !r->ctl_user.name &&
	    r->nr_restore_opts < MAX_OPTS)
		r->restore_opts[r->nr_restore_opts++] = "--lazy";
	if (env_on("CR_PAGE_SERVER"))
		r->page_server = 1;
	if (env_on("CR_COLD"))
		r->cold = 1;
}

static void parse_args(struct run *r, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ckptctl", 1, 0, 'c' },    { "no-cr", 0, 0, 'n' },
		{ "leave-running-twice", 0, 0, 'l' }, { "check-progress", 0, 0, 'p' },
		{ "kill-dump", 1, 0, 'k' },  { "occupy-pid", 0, 0, 'o' },
		{ "expect-dump-fail", 0, 0, 'f' }, { "corrupt", 1, 0, 'x' },
		{ "expect-msg", 1, 0, 'm' }, { "dump-opt", 1, 0, 'D' },
		{ "restore-opt", 1, 0, 'R' }, { "bad-dump", 1, 0, 'b' },
		{ "timeout", 1, 0, 't' },    { "helper", 1, 0, 'H' },
		{ "helper-arg", 1, 0, 'A' }, { "inherit-unix", 1, 0, 'I' },
		{ "on-pty", 0, 0, 'P' },      { "expect-restore-fail", 0, 0, 'F' },
		{ "user", 1, 0, 'u' },        { "ckptctl-user", 1, 0, 'U' },
		{ "after-dump", 1, 0, 'a' },
		{ "helper-after-dump", 0, 0, 'h' }, { "fail-first-opt", 1, 0, 'O' },
		{ "expect-restore-out", 1, 0, 'e' }, { "restore-after-exit", 0, 0, 'E' },
		{ "own-netns", 0, 0, 'N' },   { "net-sysctl", 1, 0, 'S' },
		{ "redump", 0, 0, 'r' },       { "redump-refused", 0, 0, 'y' },       { "no-verify", 0, 0, 'V' },
		{ "delegate-cgroup", 0, 0, 'G' }, { "page-server", 0, 0, 's' },
		{ "dump-running", 0, 0, 'W' }, { "expect-dump-out", 1, 0, 'X' },
		{ "no-snapshot", 0, 0, 'Z' }, { "cold", 0, 0, 'C' },
		{ 0, 0, 0, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'c': r->ckptctl = optarg; break;
		case 'n': r->no_cr = 1; break;
		case 'l': r->lr_twice = 1; break;
		case 'p': r->check_progress = 1; break;
		case 'k': r->kill_dumps = atoi(optarg); break;
		case 'o': r->occupy = 1; break;
		case 'f': r->expect_dump_fail = 1; break;
		case 'x': r->corrupt = optarg; break;
		case 'a': r->after_dump = optarg; break;
		case 'b': r->bad_dump = optarg; break;
		case 't': set_deadline(atoi(optarg)); break;
		case 'H': r->helper = absolute(optarg); break;
		case 'A': r->helper_arg = optarg; break;
		case 'I': r->inherit_unix = optarg; break;
		case 'P': on_pty = 1; break;
		case 'F': r->expect_restore_fail = 1; break;
		case 'u': lookup_user(&r->user, optarg); break;
		case 'U': lookup_user(&r->ctl_user, optarg); break;
		case 'h': r->helper_after_dump = 1; break;
		case 'e': r->expect_restore_out = optarg; break;
		case 'E': r->restore_after_exit = 1; break;
		case 'N': r->own_netns = 1; break;
		case 'r': r->redump = 1; break;
		case 'y': r->redump = r->redump_refused = 1; break;
		case 'V': r->no_verify = 1; break;
		case 'G': r->delegate_cgroup = 1; break;
		case 's': r->page_server = 1; break;
		case 'W': r->dump_running = 1; break;
		case 'X': r->expect_dump_out = optarg; break;
		case 'Z': r->no_snapshot = 1; break;
		case 'C': r->cold = 1; break;
		case 'O':
			if (r->nr_fail_first_opts < MAX_OPTS)
				r->fail_first_opts[r->nr_fail_first_opts++] = optarg;
			break;
		case 'S':
			if (r->nr_net_sysctl < MAX_OPTS)
				r->net_sysctl[r->nr_net_sysctl++] = optarg;
			break;
		case 'm':
			if (r->nr_expect < MAX_OPTS)
				r->expect_msg[r->nr_expect++] = optarg;
			break;
		case 'D':
			if (r->nr_dump_opts < MAX_OPTS)
				r->dump_opts[r->nr_dump_opts++] = optarg;
			break;
		case 'R':
			if (r->nr_restore_opts < MAX_OPTS)
				r->restore_opts[r->nr_restore_opts++] = optarg;
			break;
		default: usage();
		}
	}
	r->test_argv = argv + optind;
	if ((!r->bad_dump && !argv[optind]) || (!r->no_cr && !r->ckptctl))
		usage();
	r->verbose = getenv("CR_VERBOSE") != NULL;
	/* a case that checks the snapshot itself cannot run without one */
	if (env_on("CR_NO_SNAPSHOT") && !r->no_snapshot && r->expect_dump_out &&
	    (strstr(r->expect_dump_out, "snapshot_tasks: 1") ||
	     strstr(r->expect_dump_out, "frozen_copy_tasks: 1"))) {
		say("SKIP: $CR_NO_SNAPSHOT, and the case checks that its dump took a snapshot");
		exit(77);
	}
	if (env_on("CR_NO_SNAPSHOT"))
		r->no_snapshot = 1;
	if (r->no_snapshot && r->nr_dump_opts < MAX_OPTS)
		r->dump_opts[r->nr_dump_opts++] = "--no-snapshot";
	env_modes(r);
	/* the test starts in its temp dir: relative paths would break */
	if (r->test_argv[0])
		r->test_argv[0] = absolute(r->test_argv[0]);
	if (r->ckptctl)
		r->ckptctl = absolute(r->ckptctl);
	if (r->user.name && !r->ctl_user.name)
		r->ctl_user = r->user;
}

/* ---- files ---- */

void path_in(const struct run *r, char *buf, size_t len, const char *name)
{
	if (snprintf(buf, len, "%s/%s", r->tmp, name) >= (int)len)
		abort(); /* our own names: never that long */
}

void print_file(const char *title, const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	fprintf(stderr, "----- %s (%s) -----\n", title, path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "----- end of %s -----\n", title);
	close(fd);
}

/* 0 when the file at path holds want (in its first 4 KiB), else says
 * which output (what: "dump", "restore") lacks it and prints the file. */
int output_has(const char *path, const char *want, const char *what)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (strstr(buf, want))
		return 0;
	say("the %s's output lacks \"%s\"", what, want);
	char title[64];
	snprintf(title, sizeof(title), "ckptctl %s stdout", what);
	print_file(title, path);
	return -1;
}

/* Lines of a file; *first gets the first line (no newline). */
static int count_lines(const char *path, char *first, size_t len)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC), lines = 0;
	ssize_t n, i;

	*first = 0;
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (i = 0; i < n; i++)
		lines += buf[i] == '\n';
	if (buf[n - 1] != '\n')
		lines++;
	snprintf(first, len, "%.*s", (int)strcspn(buf, "\n"), buf);
	return lines;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

void rm_tree(const char *path)
{
	chmod(path, 0700);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- ckptctl ---- */

static void set_argv(const char **argv, int *n, const char *arg)
{
	if (*n < 62)
		argv[(*n)++] = arg;
}

pid_t start_ckptctl(struct run *r, const char *what, const char **args, int nr,
		    char *errpath, void (*pre_exec)(void *))
{
	const char *argv[64];
	char out[PATH_MAX + 64];
	int n = 0, i;

	set_argv(argv, &n, r->ckptctl);
	for (i = 0; i < nr; i++)
		set_argv(argv, &n, args[i]);
	if (r->verbose && strcmp(what, "bad") && strcmp(what, "page-server"))
		set_argv(argv, &n, "-v");
	argv[n] = NULL;
	r->step++;
	snprintf(out, sizeof(out), "%s/%02d-%s.out", r->tmp, r->step, what);
	snprintf(errpath, PATH_MAX + 64, "%s/%02d-%s.err", r->tmp, r->step, what);
	if (!r->ctl_user.name)
		return spawn((char *const *)argv, out, errpath, pre_exec, NULL);
	flow_pre_exec = pre_exec;
	return spawn((char *const *)argv, out, errpath, ckptctl_pre_exec, &r->ctl_user);
}

static void add_opts(const char **args, int *n, const char *const *opts, int nr)
{
	int i;

	for (i = 0; i < nr; i++)
		set_argv(args, n, opts[i]);
}

/* `ckptctl dump -t PID -D dir [extra]`; returns the wait status or -1. */
int run_dump(struct run *r, const char *dir, const char *extra, char *errpath)
{
	const char *args[40];
	char pid[16];
	int n = 0, status;
	pid_t c;

	snprintf(pid, sizeof(pid), "%d", r->pid);
	set_argv(args, &n, "dump");
	set_argv(args, &n, "-t");
	set_argv(args, &n, pid);
	set_argv(args, &n, "-D");
	set_argv(args, &n, dir);
	if (extra)
		set_argv(args, &n, extra);
	add_opts(args, &n, r->dump_opts, r->nr_dump_opts);
	c = start_ckptctl(r, "dump", args, n, errpath, NULL);
	if (c < 0)
		return -1;
	if (wait_child(c, DUMP_MS, &status)) {
		say("ckptctl dump of %d did not finish in %d s", r->pid, DUMP_MS / 1000);
		kill_child(c);
		print_file("ckptctl dump stderr", errpath);
		return -1;
	}
	return status;
}

/* --expect-dump-out: the dump's stdout is its stderr's path, .out. */
static int check_dump_out(struct run *r, const char *errpath)
{
	char path[PATH_MAX + 64];
	size_t len = strlen(errpath);
	if (!r->expect_dump_out || len < 4)
		return 0;
	snprintf(path, sizeof(path), "%.*s.out", (int)(len - 4), errpath);
	return output_has(path, r->expect_dump_out, "dump");
}

/* --dump-running: the tree ran on after the dump; gone now, as a dump
 * without -R would leave it (pids from list_tree: all > 0). */
static void kill_dumped_tree(struct run *r)
{
	pid_t pids[MAX_TREE];
	int n = list_tree(r->pid, pids, MAX_TREE);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* A dump that must succeed. */
static int dump_ok(struct run *r, const char *dir, const char *extra)
{
	char err[PATH_MAX + 64];
	int status = run_dump(r, dir, extra, err);

	if (status == -1)
		return -1;
	if (status) {
		say("ckptctl dump -t %d %s: %s", r->pid, extra ? extra : "", status_str(status));
		print_file("ckptctl dump stderr", err);
		return -1;
	}
	pid_t left;
	if (wait_no_snapshot(3000, &left)) {
		say("snapshot process %d outlived the dump", left);
		return -1;
	}
	return check_dump_out(r, err);
}

/* The failed command printed exactly one line holding every --expect-msg. */
int check_error_line(struct run *r, const char *what, const char *errpath)
{
	char line[1024], want[256], pid[16];
	int lines = count_lines(errpath, line, sizeof(line)), i;

	if (lines != 1 || !line[0]) {
		say("%s: expected exactly one error line on stderr, got %d", what, lines);
		print_file("stderr", errpath);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d", r->pid);
	for (i = 0; i < r->nr_expect; i++) {
		const char *p = strstr(r->expect_msg[i], "%p");
		if (p)
			snprintf(want, sizeof(want), "%.*s%s%s", (int)(p - r->expect_msg[i]),
				 r->expect_msg[i], pid, p + 2);
		else
			snprintf(want, sizeof(want), "%s", r->expect_msg[i]);
		if (!strstr(line, want)) {
			say("%s: error line lacks \"%s\": %s", what, want, line);
			return -1;
		}
	}
	say("%s failed as expected: %s", what, line);
	return 0;
}

/* A refused dump leaves no committed image set behind. */
int check_no_manifest(const char *dir)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/manifest", dir);
	if (access(path, F_OK) == 0) {
		say("a failed dump left a committed image set: %s", path);
		return -1;
	}
	return 0;
}

/* The test itself printed PASS last: an exit status of 0 alone could come
 * from a ckptctl that never ran the restored program. */
static int log_says_pass(const struct run *r)
{
	char path[PATH_MAX + 16], buf[4096];
	int fd, n;

	path_in(r, path, sizeof(path), "test.log");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf) - 1, lseek(fd, 0, SEEK_END) > 1000 ?
		  lseek(fd, 0, SEEK_END) - 1000 : 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (n >= 5 && !strcmp(buf + n - 5, "PASS\n"))
		return 0;
	say("exit status 0, but the test log does not end with PASS");
	return -1;
}

/* ---- the test program ---- */

static void child_exec_test(struct run *r)
{
	char log[PATH_MAX + 16], ready[PATH_MAX + 16];
	int fd;

	path_in(r, log, sizeof(log), "test.log");
	path_in(r, ready, sizeof(ready), "ready");
	if (!on_pty && setsid() < 0)
		_exit(126);
	become_user(&r->user); /* before the log is made: a restore reopens it as the user */
	if (chdir(r->tmp))
		_exit(126);
	fd = open(on_pty ? pty_slave_name() : "/dev/null", on_pty ? O_RDWR : O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(126);
	if (!on_pty)
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	else
		close(open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(126);
	syscall(SYS_close_range, 3, ~0u, 0);
	setenv("CR_READY", ready, 1);
	setenv("CR_DIR", r->tmp, 1);
	signal(SIGPIPE, SIG_DFL);
	execv(r->test_argv[0], r->test_argv);
	dprintf(2, "exec %s: %s\n", r->test_argv[0], strerror(errno));
	_exit(127);
}

static int read_ready(struct run *r, const char *path)
{
	char buf[128];
	int fd = open(path, O_RDONLY | O_CLOEXEC), n;
	unsigned long long addr;
	int pid;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (pty_shell && sscanf(buf, "%d", &pid) == 1 && pid > 0)
		r->pid = pid; /* the shell's child */
	if (sscanf(buf, "%d %llx", &pid, &addr) != 2 || pid != r->pid) {
		say("bad ready file: %s", buf);
		return -2;
	}
	r->shared = addr;
	return 0;
}

static int start_test(struct run *r)
{
	char ready[PATH_MAX + 16];
	uint64_t end = clock_ms() + budget_ms(READY_MS);
	int status, ret;

	path_in(r, ready, sizeof(ready), "ready");
	if (on_pty && pty_new(r, 0, "start-tty"))
		return -1;
	r->pid = fork();
	if (r->pid < 0) {
		say("fork: %s", strerror(errno));
		return -1;
	}
	if (r->pid == 0 && on_pty)
		pty_shell_run(r, child_exec_test);
	if (r->pid == 0)
		child_exec_test(r);
	if (on_pty)
		pty_shell = r->pid;
	while ((ret = read_ready(r, ready)) == -1) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			say("test exited before it was ready: %s", status_str(status));
			r->pid = 0;
			return -1;
		}
		if (clock_ms() > end) {
			say("test not ready after %d s", READY_MS / 1000);
			return -1;
		}
		sleep_ms(5);
	}
	return ret ? -1 : 0;
}

int check_live_test(struct run *r)
{
	int status;

	if (kill(r->pid, CR_CHECK_SIGNAL)) {
		say("kill %d: %s", r->pid, strerror(errno));
		return -1;
	}
	if (wait_child(pty_shell ? pty_shell : r->pid, FAIL_MS, &status)) {
		say("test %d did not finish its check in %d s", r->pid, FAIL_MS / 1000);
		return -1;
	}
	r->pid = 0;
	if (status) {
		say("test: %s", status_str(status));
		return -1;
	}
	return log_says_pass(r);
}

static int read_shared(struct run *r, struct cr_shared *s)
{
	if (peek(r->pid, r->shared, s, sizeof(*s)))
		return -1;
	if (s->failed) {
		say("test %d reports a failure (failed=%llu)", r->pid,
		    (unsigned long long)s->failed);
		return -1;
	}
	return 0;
}

/* progress (and aux if want_aux) grow within timeout: the program runs. */
static int wait_progress(struct run *r, int want_aux, int timeout_ms)
{
	uint64_t end = clock_ms() + budget_ms(timeout_ms);
	struct cr_shared a, b;

	if (read_shared(r, &a))
		return -1;
	do {
		sleep_ms(2);
		if (read_shared(r, &b))
			return -1;
		if (b.progress > a.progress && (!want_aux || b.aux > a.aux))
			return 0;
	} while (clock_ms() < end);
	say("test %d makes no progress (progress %llu -> %llu, aux %llu -> %llu)", r->pid,
	    (unsigned long long)a.progress, (unsigned long long)b.progress,
	    (unsigned long long)a.aux, (unsigned long long)b.aux);
	return -1;
}

/* ---- restore ---- */

static int read_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC), n, pid = 0;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (sscanf(buf, "%d", &pid) != 1)
		return 0;
	return pid;
}

/* Written back and out of the page cache, as on a node that did not
 * write it (storage/pages-read.c then reads pages with O_DIRECT). */
static int drop_cached(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int fd = type == FTW_F && S_ISREG(st->st_mode) ? open(path, O_RDONLY | O_NOFOLLOW) : -1;

	(void)ftw;
	if (fd >= 0) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	return 0;
}

static pid_t start_restore(struct run *r, const char *dir, const char *pidfile,
			   const char *const *extra, char *errpath, void (*pre_exec)(void *))
{
	const char *args[40];
	int n = 0;

	if (r->cold)
		nftw(r->tmp, drop_cached, 16, FTW_PHYS);

	set_argv(args, &n, "restore");
	set_argv(args, &n, "-D");
	set_argv(args, &n, dir);
	if (pidfile) {
		set_argv(args, &n, "--pidfile");
		set_argv(args, &n, pidfile);
	}
	for (; extra && *extra; extra++)
		set_argv(args, &n, *extra);
	/* Every restore compares the restored tree with its images. */
	if (!r->no_verify)
		set_argv(args, &n, "--verify");
	add_opts(args, &n, r->restore_opts, r->nr_restore_opts);
	return start_ckptctl(r, pre_exec ? "bad" : "restore", args, n, errpath, pre_exec);
}

/* Wait for the pidfile while ckptctl restore runs; the pid or -1. */
static pid_t wait_pidfile(pid_t ckptctl, const char *pidfile, const char *errpath)
{
	uint64_t end = clock_ms() + budget_ms(RESTORE_MS);
	int status;
	pid_t pid;

	for (;;) {
		pid = read_pidfile(pidfile);
		/* read twice: a half-written number must not fool us */
		if (pid > 0 && pid_exists(pid)) {
			sleep_ms(2);
			if (read_pidfile(pidfile) == pid)
				return pid;
		}
		if (waitpid(ckptctl, &status, WNOHANG) == ckptctl) {
			say("ckptctl restore ended before writing the pidfile: %s",
			    status_str(status));
			print_file("ckptctl restore stderr", errpath);
			return -1;
		}
		if (clock_ms() > end) {
			say("no pidfile after %d s", RESTORE_MS / 1000);
			return -1;
		}
		sleep_ms(2);
	}
}

/* With restore -d, ckptctl is gone by now and the restored root (or our
 * init holding its namespace) has been reparented to us, the subreaper:
 * its exit status is the verdict. */
/* restore --lazy -d leaves its page server behind (comm "ckpt-lazy",
 * and its watchdog "ckpt-lazy-watch", docs/lazy-restore.md), reparented
 * to us too: not the verdict. */
static int is_lazy_server(pid_t pid)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
	}
	return !strncmp(comm, "ckpt-lazy", strlen("ckpt-lazy"));
}

static int wait_detached(struct run *r, int *status)
{
	for (int ms = 0; ms < RESTORE_MS; ms += 10) {
		siginfo_t si = { 0 };
		if (!waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid > 0 &&
		    is_lazy_server(si.si_pid)) {
			waitpid(si.si_pid, NULL, 0);
			continue;
		}
		pid_t p = waitpid(-1, status, WNOHANG);
		if (p > 0 && p != r->occupier)
			return 0;
		if (p <= 0)
			usleep(10000);
	}
	return -1;
}

/* Restore, signal the restored root, take ckptctl's exit status. */
int restore_and_check(struct run *r, const char *dir)
{
	char pidfile[PATH_MAX + 16], err[PATH_MAX + 64];
	int status, in_ns = r->occupier > 0, any_ns = in_ns, detach = 0, i;
	pid_t c, pid;

	for (i = 0; i < r->nr_restore_opts; i++) {
		any_ns |= strstr(r->restore_opts[i], "always") != NULL;
		detach |= !strcmp(r->restore_opts[i], "-d");
	}

	path_in(r, pidfile, sizeof(pidfile), "restore.pid");
	unlink(pidfile);
	const char *extra[3] = { NULL, NULL, NULL };
	void (*pre_exec)(void *) = NULL;
	if (r->inherit_unix && inherit_unix(r, extra, &pre_exec))
		return -1;
	if (on_pty && !pre_exec) {
		if (pty_new(r, 1, "restore-tty"))
			return -1;
		pre_exec = pty_restore_pre_exec;
	}
	c = start_restore(r, dir, pidfile, extra, err, pre_exec);
	if (c < 0)
		return -1;
	pid = wait_pidfile(c, pidfile, err);
	if (pid < 0) {
		kill_child(c);
		return -1;
	}
	if (!any_ns && pid != r->pid) {
		say("restored root has pid %d, was %d", pid, r->pid);
		goto fail;
	}
	if (in_ns && pid == r->pid) {
		say("pidfile holds %d, the occupied pid: not the caller's view", pid);
		goto fail;
	}
	if (detach && (wait_child(c, RESTORE_MS, &status) || status)) {
		say("ckptctl restore -d did not return 0 once the tree ran");
		goto fail;
	}
	if (check_running(pid, 3000) || check_restored_user(r, pid))
		goto fail;
	if (r->redump && !r->redumped)
		return redump_restored(r, c, pid);
	say("restored as pid %d, sending the check signal", pid);
	if (kill(pid, CR_CHECK_SIGNAL)) {
		say("kill %d: %s", pid, strerror(errno));
		goto fail;
	}
	if (detach ? wait_detached(r, &status) : wait_child(c, RESTORE_MS, &status)) {
		say("ckptctl restore did not end %d s after the check signal", RESTORE_MS / 1000);
		goto fail;
	}
	if (status) {
		say("ckptctl restore: %s (the restored test failed or died)", status_str(status));
		print_file("ckptctl restore stderr", err);
		return -1;
	}
	r->pid = 0;
	return log_says_pass(r);
fail:
	kill_child(c);
	print_file("ckptctl restore stderr", err);
	return -1;
}

/* No restored process may be left: none of ours but the occupier, and
 * none of the dumped pids (unless the occupier holds it). */
static int check_no_leftovers(struct run *r, const char *what)
{
	pid_t kids[MAX_TREE];
	int n = list_children(kids, MAX_TREE), i, bad = 0;

	for (i = 0; i < n; i++) {
		if (kids[i] == r->occupier)
			continue;
		say("%s: process %d left behind", what, kids[i]);
		bad = 1;
	}
	for (i = 0; i < r->tree_len; i++) {
		if (r->tree[i] == r->occupier || !pid_exists(r->tree[i]))
			continue;
		say("%s: dumped pid %d exists again", what, r->tree[i]);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* A restore that must fail cleanly. */
int restore_must_fail(struct run *r, const char *dir, const char *const *extra,
			     void (*pre_exec)(void *), const char *what)
{
	char pidfile[PATH_MAX + 16], err[PATH_MAX + 64];
	int status;
	pid_t c;

	path_in(r, pidfile, sizeof(pidfile), "restore.pid");
	unlink(pidfile);
	c = start_restore(r, dir, pidfile, extra, err, pre_exec);
	if (c < 0)
		return -1;
	if (wait_child(c, FAIL_MS, &status)) {
		say("%s: ckptctl restore still runs after %d s", what, FAIL_MS / 1000);
		kill_child(c);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 0) {
		say("%s: ckptctl restore: %s, expected a failure", what, status_str(status));
		print_file("ckptctl restore stderr", err);
		return -1;
	}
	if (check_error_line(r, what, err))
		return -1;
	/* ckptctl is gone: any process it made is now our child */
	reap_all(0);
	return check_no_leftovers(r, what);
}

/* ---- flows ---- */

int dump_and_reap(struct run *r, const char *dir)
{
	r->tree_len = list_tree(r->pid, r->tree, MAX_TREE);
	if (dump_ok(r, dir, r->dump_running ? "-R" : NULL))
		return -1;
	if (r->dump_running)
		kill_dumped_tree(r);
	if (reap_all(30000)) {
		say("the tree of %d still lives 30 s after the dump", r->pid);
		return -1;
	}
	/* a restored tree's processes are reaped by whoever restored them
	 * (ckptd's worker, for --user): a moment for that */
	uint64_t end = clock_ms() + budget_ms(10000);
	for (int i = 0; i < r->tree_len; i++) {
		while (pid_exists(r->tree[i]) && clock_ms() < end)
			sleep_ms(5);
		if (pid_exists(r->tree[i])) {
			say("pid %d of the dumped tree still exists", r->tree[i]);
			return -1;
		}
	}
	return 0;
}

/* The tree has as many processes as when the test got ready: nothing of
 * the dumper (a snapshot child, say) may stay in it. */
static int check_tree_size(struct run *r, int timeout_ms)
{
	uint64_t end = clock_ms() + budget_ms(timeout_ms);
	pid_t pids[MAX_TREE];
	int n;

	while ((n = list_tree(r->pid, pids, MAX_TREE)) != r->tree_len) {
		if (clock_ms() > end) {
			say("the tree of %d has %d processes, it had %d", r->pid, n, r->tree_len);
			return -1;
		}
		sleep_ms(5);
	}
	return 0;
}

int leave_running(struct run *r, const char *name)
{
	char dir[PATH_MAX + 16];

	path_in(r, dir, sizeof(dir), name);
	r->tree_len = list_tree(r->pid, r->tree, MAX_TREE);
	if (dump_ok(r, dir, "-R") || check_running(r->pid, 3000) || check_tree_size(r, 3000))
		return -1;
	if (r->check_progress && wait_progress(r, 0, 10000))
		return -1;
	say("dump -R into %s: the test goes on", name);
	return 0;
}

static uint64_t next_random(void)
{
	static uint64_t state;

	if (!state) {
		const char *seed = getenv("CR_SEED");
		state = seed ? strtoull(seed, NULL, 0) : (clock_ms() ^ ((uint64_t)getpid() << 32));
		if (!state)
			state = 1;
		say("random seed %llu (set CR_SEED to replay)", (unsigned long long)state);
	}
	return xorshift64(&state);
}

/* After a killed dump: reap ckptctl's orphans, the test must run on. */
static int after_killed_dump(struct run *r)
{
	pid_t p;

	while ((p = waitpid(-1, NULL, WNOHANG)) > 0) {
		if (p == r->pid) {
			say("the test died");
			r->pid = 0;
			return -1;
		}
	}
	if (check_running(r->pid, 5000) || check_tree_size(r, 5000))
		return -1;
	if (wait_no_snapshot(3000, &p)) {
		say("snapshot process %d outlived the killed dump", p);
		return -1;
	}
	return wait_progress(r, 1, 30000);
}

/* One dump -R killed after a random delay below max_us: 1 if it was killed
 * mid-dump, 0 if it had already finished, -1 on failure. */
static int kill_one_dump(struct run *r, int i, uint64_t max_us)
{
	char dir[PATH_MAX + 16], name[32], err[PATH_MAX + 64], pid[16];
	const char *args[6 + MAX_OPTS] = { "dump", "-t", pid, "-D", dir, "-R" };
	uint64_t delay = next_random() % max_us;
	int status, alive, n = 6;
	pid_t c;

	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(name, sizeof(name), "kill-%d", i);
	path_in(r, dir, sizeof(dir), name);
	add_opts(args, &n, r->dump_opts, r->nr_dump_opts);
	c = start_ckptctl(r, "killed", args, n, err, NULL);
	if (c < 0)
		return -1;
	sleep_us(delay);
	alive = waitpid(c, &status, WNOHANG) == 0;
	if (alive) {
		kill(c, SIGKILL);
		waitpid(c, &status, 0);
	} else if (status) {
		say("try %d: unkilled dump failed: %s", i, status_str(status));
		print_file("stderr", err);
		return -1;
	}
	say("try %d: after %llu us: %s", i, (unsigned long long)delay,
	    alive ? "killed mid-dump" : "the dump had already finished");
	if (after_killed_dump(r))
		return -1;
	rm_tree(dir);
	return alive;
}

/* A whole dump -R; its duration in us, 0 on failure. */
static uint64_t timed_dump(struct run *r, const char *name)
{
	char dir[PATH_MAX + 16];
	uint64_t t0 = clock_ms(), us;

	path_in(r, dir, sizeof(dir), name);
	if (dump_ok(r, dir, "-R") || after_killed_dump(r))
		return 0;
	us = (clock_ms() - t0) * 1000;
	rm_tree(dir);
	return us ? us : 1000;
}

/* kill -9 of ckptctl dump -R in the middle of r->kill_dumps dumps. */
static int kill_dumps(struct run *r)
{
	uint64_t a, b, max_us;
	int killed = 0, tries, ret;

	r->tree_len = list_tree(r->pid, r->tree, MAX_TREE);
	/* the shorter of two whole dumps (the first one pays for cold caches) */
	a = timed_dump(r, "kill-calibrate-1");
	b = a ? timed_dump(r, "kill-calibrate-2") : 0;
	if (!a || !b)
		return -1;
	max_us = (a < b ? a : b) * 9 / 10 + 1;
	say("whole dumps -R took %llu and %llu ms", (unsigned long long)a / 1000,
	    (unsigned long long)b / 1000);
	for (tries = 0; killed < r->kill_dumps && tries < 3 * r->kill_dumps; tries++) {
		ret = kill_one_dump(r, tries, max_us);
		if (ret < 0)
			return -1;
		killed += ret;
	}
	if (killed < r->kill_dumps) {
		say("only %d of %d kills hit a running dump", killed, r->kill_dumps);
		return -1;
	}
	say("%d dumps killed mid-way, the test ran on each time", killed);
	return 0;
}

static int expect_dump_fail(struct run *r)
{
	char dir[PATH_MAX + 16], err[PATH_MAX + 64];
	int status;

	path_in(r, dir, sizeof(dir), "images");
	status = run_dump(r, dir, NULL, err);
	if (status == -1)
		return -1;
	if (!WIFEXITED(status) || !WEXITSTATUS(status)) {
		say("ckptctl dump: %s, expected a refusal", status_str(status));
		return -1;
	}
	if (check_error_line(r, "dump", err) || check_no_manifest(dir) ||
	    check_running(r->pid, 3000))
		return -1;
	return check_live_test(r);
}

/* Make a child hold pid `pid` (clone3 with set_tid; we are root). */
static pid_t occupy(pid_t pid)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
			tls, set_tid, set_tid_size, cgroup;
	} args;
	pid_t tid = pid;
	long ret;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&tid;
	args.set_tid_size = 1;
	ret = syscall(SYS_clone3, &args, sizeof(args));
	if (ret == 0) {
		for (;;)
			pause();
	}
	if (ret < 0)
		say("clone3 with set_tid %d: %s", pid, strerror(errno));
	return ret;
}

static int occupied_restore(struct run *r, const char *dir)
{
	static const char *const never[] = { "--pidns", "never", NULL };

	r->occupier = occupy(r->pid);
	if (r->occupier < 0)
		return -1;
	say("pid %d is now held by another process", r->pid);
	if (restore_must_fail(r, dir, never, NULL, "restore --pidns never"))
		return -1;
	return restore_and_check(r, dir);
}

static int full_cycle(struct run *r)
{
	char dir[PATH_MAX + 16], served[PATH_MAX + 16];

	path_in(r, dir, sizeof(dir), "images");
	int ret = r->page_server ? page_server_start(r, served, sizeof(served)) : 0;
	if (ret)
		return ret;
	if (dump_and_reap(r, dir))
		return -1;
	if (r->page_server) {
		if (page_server_check(dir, served))
			return -1;
		strcpy(dir, served);
		page_server_done(r);
	}
	say("dumped %d (%d processes), tree reaped", r->pid, r->tree_len);
	if (r->corrupt)
		return corrupt_and_restore(r, dir);
	if (r->occupy)
		return occupied_restore(r, dir);
	if (r->after_dump && change_after_dump(r))
		return -1;
	if (net_after_dump(r, dir))
		return -1;
	if (r->expect_restore_fail) {
		if (on_pty && pty_new(r, 1, "restore-tty"))
			return -1;
		return restore_must_fail(r, dir, NULL, on_pty ? pty_restore_pre_exec : NULL, "restore");
	}
	if (restore_and_check(r, dir))
		return -1;
	return net_after_restore(r);
}

static int test_flow(struct run *r)
{
	if (r->helper && !r->helper_after_dump && start_helper(r))
		return -1;
	if (start_test(r))
		return -1;
	if (r->no_cr)
		return check_live_test(r);
	if (r->expect_dump_fail)
		return expect_dump_fail(r);
	if (r->lr_twice && (leave_running(r, "lr-1") || leave_running(r, "lr-2")))
		return -1;
	if (r->kill_dumps && kill_dumps(r))
		return -1;
	if (r->restore_after_exit)
		return restore_after_exit(r);
	return full_cycle(r);
}

static int make_tmp(struct run *r)
{
	const char *base = getenv("CR_TMPDIR");

	snprintf(r->tmp, sizeof(r->tmp), "%s/cr-XXXXXX", base ? base : "/tmp");
	if (base)
		mkdir(base, 0755);
	if (!mkdtemp(r->tmp)) {
		say("mkdtemp %s: %s", r->tmp, strerror(errno));
		return -1;
	}
	if (r->user.name && chown(r->tmp, r->user.uid, r->user.gid)) {
		say("chown %s to %s: %s", r->tmp, r->user.name, strerror(errno));
		rm_tree(r->tmp);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run r;
	char log[PATH_MAX + 16];
	int ret;

	memset(&r, 0, sizeof(r));
	parse_args(&r, argc, argv);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		say("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return 1;
	}
	if ((r.own_netns && own_netns(&r)) || make_tmp(&r))
		return 1;
	ret = r.delegate_cgroup && delegate_cgroup(&r) ? -1 : 0;
	ret = ret ? ret : r.bad_dump ? bad_dump(&r) : test_flow(&r);
	kill_all_children(10000);
	stop_helper(&r);
	cgroup_cleanup(&r);
	if (ret == 77) {
		rm_tree(r.tmp);
		return 77;
	}
	if (ret) {
		pty_print();
		path_in(&r, log, sizeof(log), "test.log");
		print_file("test log", log);
		say("FAIL (files kept in %s)", r.tmp);
		return 1;
	}
	path_in(&r, log, sizeof(log), "test.log");
	if (!r.bad_dump)
		print_file("test log", log);
	say("PASS");
	rm_tree(r.tmp);
	return 0;
}
