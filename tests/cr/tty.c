/*
 * tty: terminals across a checkpoint.
 *
 *   cr-tty [pty]     the root makes a pty pair (canonical mode, echo off,
 *                    a 37x101 window, a custom VKILL) and keeps its
 *                    master and a slave fd; a child becomes a session
 *                    leader with the slave as controlling terminal and
 *                    forks a grandchild that it puts in the foreground in
 *                    a group of its own.  The root and the grandchild talk
 *                    over the pty, line by line, before and after.  After
 *                    the restore the grandchild checks its controlling
 *                    terminal, session and foreground group, the root the
 *                    pair's termios and window size.
 *   cr-tty pty-queued  the same with 9000 bytes written on a slave (more than
 *                    the line discipline's 4 KiB) and not read
 *                    by the master yet (in packet mode while frozen): after
 *                    the restore the master reads exactly those bytes, as
 *                    the slave's output processing made them ("\r\n").
 *   cr-tty pty-input  the same with input written on the masters of two
 *                    more pairs that their slaves have not read
 *                    (pty-input.c): canonical lines, an end of file, a line
 *                    not finished yet, raw bytes; after the restore the
 *                    slaves read exactly those and the masters nothing more.
 *   cr-tty pty-dead  the same with the slaves of a pair whose master is
 *                    closed (hung up, node removed): they must come back so.
 *   cr-tty pty-extproc  input not read in EXTPROC mode: refused ("EXTPROC").
 *   cr-tty pty-stopped  input not read while output is stopped (XOFF): its
 *                    echo could not come back: refused ("stopped").
 *   cr-tty pty-vhangup  a slave hung up alone (TIOCVHANGUP, root only):
 *                    refused ("vhangup").
 *   cr-tty pty-outside the same with the slave also open in a process
 *                    outside the tree: the dump must refuse it.
 *   cr-tty pty-rdonly  a pty whose master is open read-only (O_RDONLY), with
 *                    bytes its slave wrote not read yet: after the restore
 *                    the master is still read-only and reads those bytes.
 *   cr-tty pty-wronly  the same with the master write-only: its queues
 *                    cannot be read through it: the dump must refuse it.
 *   cr-tty shell-job run by `cr-run --on-pty`: stdio on a terminal that a
 *                    "shell" outside the tree owns, in the foreground.
 *                    After the restore, stdio must be the restoring
 *                    ckptctl's terminal ($CR_DIR/restore-tty) and the
 *                    program still in the foreground.
 */
#include "crlib.h"
#include "cr-pty-input.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define ROWS 37
#define COLS 101
#define KILL_CHAR 0x0b /* ^K; the default is ^U */

/* ---------------------------- pty mode ----------------------------- */

/* Our controlling terminal (tty_nr of /proc/self/stat), 0 if none; the
 * inode of /dev/tty itself is always 5:0. */
static dev_t ctty_dev(void)
{
	const char *st = snapshot_file("/proc/self/stat", 0), *p = strrchr(st, ')');
	int tty = 0;
	char state;
	int ppid, pgrp, sid;
	if (!p || sscanf(p + 1, " %c %d %d %d %d", &state, &ppid, &pgrp, &sid, &tty) != 5)
		return 0;
	return makedev((tty >> 8) & 0xfff, (tty & 0xff) | ((tty >> 12) & 0xfff00));
}

/* A line from fd within 10 s, without its "\r\n" or "\n". */
static void read_line(int fd, char *buf, size_t len, const char *who)
{
	size_t n = 0;
	while (n + 1 < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		int r = poll(&p, 1, 10000);
		if (r == 0)
			fail("%s: no line within 10 s (got \"%.*s\")", who, (int)n, buf);
		if (r < 0 && errno == EINTR)
			continue;
		CHECK_SYS(r > 0, "%s: poll", who);
		ssize_t k = read(fd, buf + n, 1);
		if (k < 0 && errno == EINTR)
			continue;
		CHECK_SYS(k == 1, "%s: read", who);
		if (buf[n] == '\n')
			break;
		n++;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
}

/* The grandchild: answers "ping N" with "pong N", "check" with its view
 * of its terminal, session and foreground group. */
static void answer_loop(int slave, pid_t leader)
{
	char line[256], out[300];
	/* answers go out through /dev/tty, kept open across the checkpoint */
	int devtty = open("/dev/tty", O_RDWR);
	CHECK_SYS(devtty >= 0, "open /dev/tty");
	/* Read only once our parent made us the foreground group: a read
	 * from the background would stop us (SIGTTIN) for good. */
	for (int i = 0; tcgetpgrp(slave) != getpgrp(); i++) {
		CHECK(i < 10000, "not made the foreground group within 10 s");
		usleep(1000);
	}
	for (;;) {
		read_line(slave, line, sizeof(line), "grandchild");
		if (!strncmp(line, "ping ", 5)) {
			snprintf(out, sizeof(out), "pong %s\n", line + 5);
		} else if (!strcmp(line, "check")) {
			struct stat b;
			int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
			const char *bad = NULL;
			if (tty < 0)
				bad = "no controlling terminal (/dev/tty)";
			else if (fstat(slave, &b) || ctty_dev() != b.st_rdev)
				bad = "the controlling terminal is not the pty slave";
			else if (getsid(0) != leader)
				bad = "not in its parent's session";
			else if (tcgetpgrp(slave) != getpgrp())
				bad = "not the foreground process group";
			else if (getpgrp() != getpid())
				bad = "not leading its own process group";
			else if (tcgetsid(slave) != leader)
				bad = "the terminal's session is not the leader's";
			snprintf(out, sizeof(out), "%s%s\n", bad ? "bad: " : "ok", bad ? bad : "");
			if (tty >= 0)
				close(tty);
		} else if (!strcmp(line, "quit")) {
			exit(0);
		} else {
			snprintf(out, sizeof(out), "bad: unknown request\n");
		}
		CHECK_SYS(write_full(devtty, out, strlen(out)) == (ssize_t)strlen(out), "write");
	}
}

/* The child: a session leader whose controlling terminal is the slave. */
static void session_leader(const char *name)
{
	CHECK_SYS(setsid() > 0, "setsid");
	int slave = open(name, O_RDWR); /* no O_NOCTTY: our controlling tty */
	CHECK_SYS(slave >= 0, "open %s", name);
	CHECK_SYS(tcgetsid(slave) == getpid(), "the slave did not become our tty");
	pid_t g = fork();
	CHECK_SYS(g >= 0, "fork");
	if (g == 0) {
		setpgid(0, 0);
		answer_loop(slave, getppid());
	}
	setpgid(g, g);
	CHECK_SYS(tcsetpgrp(slave, g) == 0, "tcsetpgrp");
	int status;
	while (waitpid(g, &status, 0) < 0 && errno == EINTR)
		;
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static void ask(int master, const char *req, const char *want)
{
	char line[256];
	CHECK_SYS(write_full(master, req, strlen(req)) == (ssize_t)strlen(req), "write %s", req);
	read_line(master, line, sizeof(line), "root");
	CHECK(!strcmp(line, want), "asked \"%.*s\", got \"%s\", wanted \"%s\"",
	      (int)strcspn(req, "\n"), req, line, want);
}

/* A pty whose only slave was opened and closed: its master reads EIO. */
static int hung_up_pty(void)
{
	char name[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
	CHECK_SYS(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "posix_openpt");
	CHECK_SYS(ptsname_r(m, name, sizeof(name)) == 0, "ptsname");
	int s = open(name, O_RDWR | O_NOCTTY);
	CHECK_SYS(s >= 0, "open %s", name);
	close(s);
	return m;
}

static void check_hung_up(int m)
{
	char b;
	errno = 0;
	CHECK(read(m, &b, 1) < 0 && errno == EIO, "the hung-up master reads: %s (was EIO)",
	      strerror(errno));
}

static struct stat slave_st; /* the slave's node at the dump */

static void check_pair(int master, int slave, int locked)
{
	struct termios t;
	struct winsize ws;
	struct stat st;
	unsigned n;
	int pkt = 0, lck = 1;
	CHECK_SYS(ioctl(master, TIOCGPKT, &pkt) == 0 && ioctl(master, TIOCGPTLCK, &lck) == 0,
		  "TIOCGPKT");
	CHECK(pkt && !lck, "packet mode %d (was 1), locked %d (was 0)", pkt, lck);
	pkt = 0;
	CHECK_SYS(ioctl(master, TIOCPKT, &pkt) == 0, "TIOCPKT");
	CHECK_SYS(ioctl(locked, TIOCGPTLCK, &lck) == 0, "TIOCGPTLCK");
	CHECK(lck, "a pty never unlocked came back unlocked");
	CHECK_SYS(tcgetattr(master, &t) == 0, "tcgetattr");
	CHECK(t.c_lflag & ICANON, "canonical mode lost");
	CHECK(!(t.c_lflag & ECHO), "echo came back");
	CHECK(t.c_cc[VKILL] == KILL_CHAR, "VKILL is %#x, was %#x", t.c_cc[VKILL], KILL_CHAR);
	CHECK((t.c_oflag & (OPOST | ONLCR)) == (OPOST | ONLCR), "output flags %#x", t.c_oflag);
	CHECK_SYS(ioctl(master, TIOCGWINSZ, &ws) == 0, "TIOCGWINSZ");
	CHECK(ws.ws_row == ROWS && ws.ws_col == COLS && ws.ws_xpixel == 640,
	      "window %ux%u (%u px), was %ux%u (640 px)", ws.ws_row, ws.ws_col, ws.ws_xpixel, ROWS,
	      COLS);
	CHECK_SYS(ioctl(master, TIOCGPTN, &n) == 0 && fstat(slave, &st) == 0, "TIOCGPTN");
	CHECK(minor(st.st_rdev) == n, "our slave fd is pty %u, our master pty %u",
	      minor(st.st_rdev), n);
	CHECK(st.st_uid == slave_st.st_uid && st.st_gid == slave_st.st_gid &&
		      (st.st_mode & 07777) == (slave_st.st_mode & 07777),
	      "the slave: owner %u:%u mode %04o, was %u:%u %04o", st.st_uid, st.st_gid,
	      st.st_mode & 07777, slave_st.st_uid, slave_st.st_gid, slave_st.st_mode & 07777);
}

/* A process outside our tree (reparented to the harness, a subreaper)
 * that holds the slave open by its path. */
static void hold_outside(const char *name)
{
	int p[2];
	char b;
	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t a = fork();
	CHECK_SYS(a >= 0, "fork");
	if (a == 0) {
		if (fork() == 0) {
			int fd = open(name, O_RDWR | O_NOCTTY);
			if (fd < 0 || write(p[1], "x", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		_exit(0);
	}
	waitpid(a, NULL, 0);
	close(p[1]);
	CHECK_SYS(read(p[0], &b, 1) == 1, "the outside holder did not start");
	close(p[0]);
}

/* Byte i of what the slave side writes in pty-queued: lines of 60. */
static char queued_byte(size_t i)
{
	return i % 61 == 60 ? '\n' : (char)('!' + (i * 7) % 90);
}

#define QUEUED_LEN 9000 /* a pty holds 12 KiB: 8 in flight, 4 in the ldisc */

static void queue_on_slave(int slave)
{
	static char buf[QUEUED_LEN];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = queued_byte(i);
	CHECK_SYS(write_full(slave, buf, sizeof(buf)) == (ssize_t)sizeof(buf),
		  "write to our slave");
}

/* What the master reads: each "\n" as "\r\n" (OPOST|ONLCR), then nothing. */
static void check_queue(int master)
{
	static char want[2 * QUEUED_LEN], got[2 * QUEUED_LEN];
	size_t len = 0, n = 0;
	for (size_t i = 0; i < QUEUED_LEN; i++) {
		if (queued_byte(i) == '\n')
			want[len++] = '\r';
		want[len++] = queued_byte(i);
	}
	while (n < len) {
		struct pollfd p = { master, POLLIN, 0 };
		CHECK(poll(&p, 1, 10000) == 1, "the master read %zu of %zu queued bytes, then nothing",
		      n, len);
		ssize_t k = read(master, got + n, len - n);
		CHECK_SYS(k > 0, "read the master");
		n += (size_t)k;
	}
	for (size_t i = 0; i < len; i++)
		CHECK(got[i] == want[i], "queued byte %zu of %zu is %#x, wanted %#x", i, len,
		      (unsigned char)got[i], (unsigned char)want[i]);
	struct pollfd p = { master, POLLIN, 0 };
	CHECK(poll(&p, 1, 200) == 0, "the master has more than the queued bytes");
}

static void pty_mode(const char *variant)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0, "posix_openpt");
	char name[64];
	CHECK_SYS(ptsname_r(master, name, sizeof(name)) == 0, "ptsname");
	int slave = open(name, O_RDWR | O_NOCTTY);
	CHECK_SYS(slave >= 0, "open %s", name);
	/* the slave's node given away (root) and its mode changed */
	if (geteuid() == 0)
		CHECK_SYS(!fchown(slave, 65534, 5), "chown %s", name);
	CHECK_SYS(!fchmod(slave, 0600), "chmod %s", name);
	CHECK_SYS(!fstat(slave, &slave_st), "fstat %s", name);
	struct termios t;
	CHECK_SYS(tcgetattr(slave, &t) == 0, "tcgetattr");
	t.c_lflag |= ICANON;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	t.c_cc[VKILL] = KILL_CHAR;
	CHECK_SYS(tcsetattr(slave, TCSANOW, &t) == 0, "tcsetattr");
	struct winsize ws = { ROWS, COLS, 640, 480 };
	int locked = posix_openpt(O_RDWR | O_NOCTTY), one = 1; /* no unlockpt */
	CHECK_SYS(locked >= 0, "posix_openpt");
	int hung = hung_up_pty();
	check_hung_up(hung);
	CHECK_SYS(ioctl(master, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0)
		session_leader(name);
	ask(master, "ping 1\n", "pong 1");
	ask(master, "check\n", "ok");
	ask(master, "ping 2\n", "pong 2");
	if (!strcmp(variant, "pty-queued"))
		queue_on_slave(slave);
	if (!strncmp(variant, "pty-input", 9) || !strcmp(variant, "pty-extproc") ||
	    !strcmp(variant, "pty-vhangup") || !strcmp(variant, "pty-stopped"))
		input_setup(variant);
	if (!strcmp(variant, "pty-dead"))
		dead_setup();
	if (!strcmp(variant, "pty-outside"))
		hold_outside(name);
	/* packet mode while frozen only: our line reads cannot take it */
	CHECK_SYS(ioctl(master, TIOCPKT, &one) == 0, "TIOCPKT");
	test_ready();
	test_wait_check();
	check_pair(master, slave, locked);
	check_hung_up(hung);
	if (!strcmp(variant, "pty-queued"))
		check_queue(master);
	if (!strncmp(variant, "pty-input", 9))
		input_check();
	if (!strcmp(variant, "pty-dead"))
		dead_check();
	ask(master, "ping 3\n", "pong 3");
	ask(master, "check\n", "ok");
	printf("pty pair, session, controlling tty and foreground group survived\n");
	CHECK_SYS(write_full(master, "quit\n", 5) == 5, "write quit");
	int status;
	while (waitpid(c, &status, 0) < 0)
		CHECK_SYS(errno == EINTR, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the session leader ended with %#x",
	      status);
	pass();
}

/* -------------------------- shell-job mode ------------------------- */

static void read_name(const char *file, char *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", test_dir(), file);
	int fd = open(path, O_RDONLY);
	buf[0] = 0;
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

/* What is wrong with our stdio and terminal now, or NULL. */
static const char *terminal_problem(const char *want, char *why, size_t len)
{
	struct stat st[3];
	char name[64];
	for (int fd = 0; fd < 3; fd++)
		if (!isatty(fd) || fstat(fd, &st[fd]) || st[fd].st_rdev != st[0].st_rdev) {
			snprintf(why, len, "fd %d is not the terminal of fd 0", fd);
			return why;
		}
	if (ttyname_r(0, name, sizeof(name)) || strcmp(name, want)) {
		snprintf(why, len, "stdin is %s, expected %s", name, want);
		return why;
	}
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	if (tty < 0 || ctty_dev() != st[0].st_rdev) {
		snprintf(why, len, "the controlling terminal is not %s", want);
		return why;
	}
	close(tty);
	if (tcgetpgrp(0) != getpgrp()) {
		snprintf(why, len, "not in the foreground of %s (foreground %d, ours %d)", want,
			 tcgetpgrp(0), getpgrp());
		return why;
	}
	if (getsid(0) == getpid()) {
		snprintf(why, len, "a session leader: a job of a shell is not");
		return why;
	}
	return NULL;
}

/* From here on our output goes to the test log, not the terminal. */
static void log_to_file(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/test.log", test_dir());
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

static void shell_job_mode(void)
{
	char start[64], restored[64], why[256];
	read_name("start-tty", start, sizeof(start));
	if (!start[0]) {
		log_to_file();
		fail("no $CR_DIR/start-tty: run me with cr-run --on-pty");
	}
	const char *bad = terminal_problem(start, why, sizeof(why));
	if (bad) {
		log_to_file();
		fail("before: %s", bad);
	}
	test_ready();
	test_wait_check();
	read_name("restore-tty", restored, sizeof(restored));
	const char *want = restored[0] ? restored : start;
	bad = terminal_problem(want, why, sizeof(why));
	log_to_file();
	CHECK(!bad, "after: %s", bad);
	printf("stdio on %s (was %s), in its foreground\n", want, start);
	pass();
}

/* ------------------------- master access mode ------------------------ */

static void access_mode(int mode)
{
	int m = open("/dev/ptmx", mode | O_NOCTTY), zero = 0;
	unsigned index;
	char name[64];
	CHECK_SYS(m >= 0, "open /dev/ptmx");
	CHECK_SYS(!ioctl(m, TIOCSPTLCK, &zero) && !ioctl(m, TIOCGPTN, &index), "unlock");
	snprintf(name, sizeof(name), "/dev/pts/%u", index);
	int s = open(name, O_RDWR | O_NOCTTY);
	CHECK_SYS(s >= 0, "open %s", name);
	CHECK_SYS(write_full(s, "queued\n", 7) == 7, "write the slave");
	test_ready();
	test_wait_check();
	CHECK((fcntl(m, F_GETFL) & O_ACCMODE) == mode, "the master's access mode is %#x, not %#x",
	      fcntl(m, F_GETFL) & O_ACCMODE, mode);
	char buf[16] = "";
	struct pollfd p = { m, POLLIN, 0 };
	if (mode == O_WRONLY)
		pass(); /* refused at dump, nothing changed: no read through it */
	CHECK(poll(&p, 1, 5000) == 1, "nothing to read on the master");
	CHECK_SYS(read(m, buf, sizeof(buf)) == 8 && !memcmp(buf, "queued\r\n", 8),
		  "the master read something else than the queued line");
	CHECK(write(m, "x", 1) < 0 && errno == EBADF, "the read-only master writes");
	printf("pty master access mode and its queue survived\n");
	pass();
}

int main(int argc, char **argv)
{
	test_init();
	if (argc > 1 && !strcmp(argv[1], "shell-job"))
		shell_job_mode();
	if (argc > 1 && !strcmp(argv[1], "pty-rdonly"))
		access_mode(O_RDONLY);
	if (argc > 1 && !strcmp(argv[1], "pty-wronly"))
		access_mode(O_WRONLY);
	pty_mode(argc > 1 ? argv[1] : "pty");
}
