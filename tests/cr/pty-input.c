/*
 * pty-input: pairs of cr-tty's own (see tty.c) whose slaves have input
 * they have not read, and the slaves of a pair whose master is closed.
 *
 * The canonical pair keeps the pty's default termios (ICANON, ECHO,
 * ICRNL, IEXTEN, ISIG, IXON) and "!" as VEOL: its master writes complete
 * lines (one whose "\r" ICRNL made "\n", one ended by VEOF, an empty VEOF
 * line, one with a "\n" quoted by VLNEXT inside, one ended by VEOL), then
 * a line not finished whose last byte is erased.  What the slave echoed
 * is read before the checkpoint, and the master is in packet mode while
 * frozen: after it, the master must have nothing, not even a status (the
 * engine's own echoes and termios changes must not show), and each read
 * of the slave returns one line as before, then nothing (the unfinished
 * line is no line yet, and can still be erased into).
 * The raw pair holds bytes of every value, ECHO off.
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
#include <termios.h>
#include <unistd.h>

#define RAW_LEN 300

static const char canon_in[] = "one\n"
			       "cr\r"
			       "eof\004"
			       "\004"
			       "lit\026\neral\n"
			       "bang!"
			       "partix\177";
static const char *const canon_lines[] = { "one\n", "cr\n", "eof", "", "lit\neral\n", "bang!" };
#define NR_LINES (sizeof(canon_lines) / sizeof(canon_lines[0]))

static int canon_m = -1, canon_s, raw_m = -1, raw_s;
static struct termios canon_tio, raw_tio;

static int pair(int *slave)
{
	char name[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "posix_openpt");
	CHECK_SYS(ptsname_r(m, name, sizeof(name)) == 0, "ptsname");
	*slave = open(name, O_RDWR | O_NOCTTY);
	CHECK_SYS(*slave >= 0, "open %s", name);
	return m;
}

static unsigned char raw_byte(size_t i)
{
	return (unsigned char)(i * 37 + 11);
}

/* Everything fd has within `ms` of quiet, dropped; how many bytes. */
static size_t drain(int fd, int ms)
{
	char buf[4096];
	size_t n = 0;
	struct pollfd p = { fd, POLLIN, 0 };
	while (poll(&p, 1, ms) == 1) {
		ssize_t k = read(fd, buf, sizeof(buf));
		CHECK_SYS(k > 0, "read");
		n += (size_t)k;
	}
	return n;
}

static void extproc_setup(void)
{
	int s, m = pair(&s);
	struct termios t;
	CHECK_SYS(tcgetattr(s, &t) == 0, "tcgetattr");
	t.c_lflag |= EXTPROC;
	CHECK_SYS(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr");
	CHECK_SYS(write_full(m, "x\n", 2) == 2, "write to the master");
}

/* A slave hung up alone (TIOCVHANGUP needs CAP_SYS_ADMIN: root only). */
static void vhangup_setup(void)
{
	int s;
	pair(&s);
	CHECK_SYS(ioctl(s, TIOCVHANGUP) == 0, "TIOCVHANGUP (as root)");
}

/* Output stopped by the XOFF its master wrote (IXON), a line of input. */
static void stopped_setup(void)
{
	int s, m = pair(&s);
	(void)s;
	CHECK_SYS(write_full(m, "\023x\n", 3) == 3, "write to the master");
}

void input_setup(const char *variant)
{
	if (!strcmp(variant, "pty-stopped")) {
		stopped_setup();
		return;
	}
	if (!strcmp(variant, "pty-extproc")) {
		extproc_setup();
		return;
	}
	if (!strcmp(variant, "pty-vhangup")) {
		vhangup_setup();
		return;
	}
	int one = 1;
	canon_m = pair(&canon_s);
	CHECK_SYS(tcgetattr(canon_s, &canon_tio) == 0, "tcgetattr");
	canon_tio.c_cc[VEOL] = '!';
	CHECK_SYS(tcsetattr(canon_s, TCSANOW, &canon_tio) == 0, "tcsetattr");
	CHECK_SYS(tcgetattr(canon_s, &canon_tio) == 0, "tcgetattr");
	CHECK(canon_tio.c_lflag & ICANON && canon_tio.c_lflag & ECHO &&
		      canon_tio.c_iflag & ICRNL && canon_tio.c_cc[VERASE] == 0177,
	      "a new pty is not canonical with echo, ICRNL and DEL as erase");
	CHECK_SYS(write_full(canon_m, canon_in, sizeof(canon_in) - 1) == sizeof(canon_in) - 1,
		  "write to the master");
	CHECK(drain(canon_m, 200) > 0, "the slave echoed nothing");
	CHECK_SYS(ioctl(canon_m, TIOCPKT, &one) == 0, "TIOCPKT");
	raw_m = pair(&raw_s);
	CHECK_SYS(tcgetattr(raw_s, &raw_tio) == 0, "tcgetattr");
	cfmakeraw(&raw_tio);
	CHECK_SYS(tcsetattr(raw_s, TCSANOW, &raw_tio) == 0, "tcsetattr");
	CHECK_SYS(tcgetattr(raw_s, &raw_tio) == 0, "tcgetattr");
	unsigned char buf[RAW_LEN];
	for (size_t i = 0; i < RAW_LEN; i++)
		buf[i] = raw_byte(i);
	CHECK_SYS(write_full(raw_m, buf, RAW_LEN) == RAW_LEN, "write to the master");
}

static void same_termios(int fd, const struct termios *was, const char *who)
{
	struct termios t;
	CHECK_SYS(tcgetattr(fd, &t) == 0, "tcgetattr");
	CHECK(t.c_iflag == was->c_iflag && t.c_oflag == was->c_oflag &&
		      t.c_lflag == was->c_lflag && !memcmp(t.c_cc, was->c_cc, NCCS),
	      "%s: termios iflag %#x oflag %#x lflag %#x, was %#x %#x %#x", who, t.c_iflag,
	      t.c_oflag, t.c_lflag, was->c_iflag, was->c_oflag, was->c_lflag);
}

/* One read of the slave, as a reader would do it. */
static ssize_t read_slave(int s, char *buf, size_t len)
{
	struct pollfd p = { s, POLLIN, 0 };
	CHECK(poll(&p, 1, 5000) == 1, "the slave has no input within 5 s");
	ssize_t k = read(s, buf, len);
	CHECK_SYS(k >= 0, "read the slave");
	return k;
}

static void check_canon(void)
{
	char buf[4096];
	int pkt = 0, off = 0;
	same_termios(canon_s, &canon_tio, "the canonical pair");
	struct pollfd pm = { canon_m, POLLIN | POLLPRI, 0 };
	CHECK(poll(&pm, 1, 200) == 0, "the canonical pair's master has bytes or a status (%#x)",
	      pm.revents);
	CHECK_SYS(ioctl(canon_m, TIOCGPKT, &pkt) == 0 && pkt, "packet mode lost");
	CHECK_SYS(ioctl(canon_m, TIOCPKT, &off) == 0, "TIOCPKT");
	for (size_t i = 0; i < NR_LINES; i++) {
		ssize_t k = read_slave(canon_s, buf, sizeof(buf));
		CHECK((size_t)k == strlen(canon_lines[i]) && !memcmp(buf, canon_lines[i], (size_t)k),
		      "line %zu: read %zd bytes \"%.*s\", wanted \"%s\"", i, k, (int)(k > 0 ? k : 0),
		      buf, canon_lines[i]);
	}
	struct pollfd p = { canon_s, POLLIN, 0 };
	CHECK(poll(&p, 1, 200) == 0, "the unfinished line reads as a line");
	/* still being typed: it can be erased into, and ends with its "\n" */
	CHECK_SYS(write_full(canon_m, "Z\177al\n", 5) == 5, "write to the master");
	ssize_t k = read_slave(canon_s, buf, sizeof(buf));
	CHECK(k == 8 && !memcmp(buf, "partial\n", 8), "the unfinished line ended as \"%.*s\"",
	      (int)(k > 0 ? k : 0), buf);
}

static void check_raw(void)
{
	unsigned char buf[RAW_LEN + 16];
	size_t n = 0;
	same_termios(raw_s, &raw_tio, "the raw pair");
	while (n < RAW_LEN)
		n += (size_t)read_slave(raw_s, (char *)buf + n, RAW_LEN - n);
	for (size_t i = 0; i < RAW_LEN; i++)
		CHECK(buf[i] == raw_byte(i), "raw byte %zu is %#x, wanted %#x", i, buf[i],
		      raw_byte(i));
	struct pollfd p = { raw_s, POLLIN, 0 };
	CHECK(poll(&p, 1, 200) == 0, "the raw slave has more than its input");
	CHECK(drain(raw_m, 100) == 0, "the raw pair's master has bytes after the restore");
}

void input_check(void)
{
	check_canon();
	check_raw();
}

/* ------------------------------ dead ------------------------------- */

static int dead_rw = -1, dead_ro = -1;
static struct stat dead_st;

void dead_setup(void)
{
	int m = pair(&dead_rw);
	char name[64];
	CHECK_SYS(ptsname_r(m, name, sizeof(name)) == 0, "ptsname");
	dead_ro = open(name, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	CHECK_SYS(dead_ro >= 0, "open %s", name);
	CHECK_SYS(fchmod(dead_rw, 0640) == 0, "chmod %s", name);
	close(m);
	CHECK_SYS(fstat(dead_rw, &dead_st) == 0, "fstat");
	CHECK(dead_st.st_nlink == 0, "the slave of a closed master has %lu links",
	      (unsigned long)dead_st.st_nlink);
}

static void check_dead_fd(int fd, int flags)
{
	struct stat st;
	char path[64], link[256];
	CHECK_SYS(fstat(fd, &st) == 0, "fstat");
	CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 && st.st_nlink == 0,
	      "fd %d: mode %o rdev %u:%u nlink %lu: not a slave of a pty gone", fd, st.st_mode,
	      major(st.st_rdev), minor(st.st_rdev), (unsigned long)st.st_nlink);
	CHECK(st.st_uid == dead_st.st_uid && st.st_gid == dead_st.st_gid &&
		      (st.st_mode & 07777) == (dead_st.st_mode & 07777),
	      "fd %d: owner %u:%u mode %04o, was %u:%u %04o", fd, st.st_uid, st.st_gid,
	      st.st_mode & 07777, dead_st.st_uid, dead_st.st_gid, dead_st.st_mode & 07777);
	int fl = fcntl(fd, F_GETFL);
	CHECK((fl & (O_ACCMODE | O_NONBLOCK)) == flags, "fd %d: flags %#x, wanted %#x", fd,
	      fl & (O_ACCMODE | O_NONBLOCK), flags);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	link[n] = 0;
	CHECK(n > 10 && !strcmp(link + n - 10, " (deleted)"), "fd %d is %s", fd, link);
}

void dead_check(void)
{
	char b;
	check_dead_fd(dead_rw, O_RDWR);
	check_dead_fd(dead_ro, O_RDONLY | O_NONBLOCK);
	struct stat a, c;
	CHECK_SYS(fstat(dead_rw, &a) == 0 && fstat(dead_ro, &c) == 0, "fstat");
	CHECK(a.st_rdev == c.st_rdev, "the two slaves are on two ptys");
	/* hung up: end of file to a read, EIO to a write */
	CHECK(read(dead_ro, &b, 1) == 0, "a slave of a pty gone reads: %s", strerror(errno));
	errno = 0;
	CHECK(write(dead_rw, "x", 1) < 0 && errno == EIO, "a slave of a pty gone writes: %s",
	      strerror(errno));
}
