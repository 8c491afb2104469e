/*
 * tty-queue: a pty's queues, both ways.
 *
 * Output: bytes a pty's slave side wrote that its master has not read
 * yet (the ranks' output that mpirun reads, a shell's output that a
 * terminal emulator reads).  There is no peek for a tty, so the dump
 * reads them from the master, which empties the queue, and writes them
 * straight back through a slave of its own (TIOCGPTPEER) while the tree
 * is still frozen: the tree sees the same queue.  The restore writes them
 * into the new pair the same way.  What the master reads has already
 * passed the slave's output processing (OPOST: "\n" became "\r\n"), so
 * it is written back with OPOST off, then the termios put back.
 *
 * Input: bytes the master side wrote that the slave has not read yet.
 * They sit in the slave's line discipline already processed (ICRNL,
 * erase, echo done) and, in canonical mode, cut into lines, the last one
 * perhaps not finished.  The dump reads them through a slave of its own:
 * line by line (a canonical read returns one line), then the unfinished
 * line with ICANON off for that read (the only way to see it).  They go
 * back, at dump and at restore, through the master with an injecting
 * termios that makes the line discipline store each byte as it is: no
 * input processing, no signals, and in canonical mode a line ends only
 * where we say (a "\n", or VEOF after a line that did not end with one;
 * the bytes that would be special are quoted with VLNEXT).  Echo is on
 * while injecting, with OPOST off: each stored byte echoes one byte to
 * the master, which we read and drop, and that count is how we know that
 * the line discipline processed all of it (it does so in a work queue,
 * not in our write) before the real termios is set back.  Not kept:
 * what no read shows (a pending VLNEXT, the echo column), refused: input
 * in EXTPROC mode, a full line discipline, input while output is stopped
 * (its echo could not come back).
 *
 * The end of this file moves both between these buffers and the master's
 * tty_entry (tty.c hands it over): kept at dump, checked at load.
 *
 * Packet mode is off while we read and write: a packet-mode read starts
 * with a status byte, and our termios changes would queue a status in
 * packet mode (flow control chars, EXTPROC).  A status already pending
 * (POLLPRI) cannot be read without being lost: refused by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "tty-queue.h"

#define EOF_BYTE 0x04   /* ^D: VEOF while injecting */
#define LNEXT_BYTE 0x16 /* ^V: VLNEXT while injecting */
#define CHUNK 512       /* bytes written at a time */

/* More than a pty holds (64 KiB of flip buffers and the 4 KiB line
 * discipline buffer): a bound, not a limit anyone meets. */
#define QUEUE_MAX (1U << 20)

/* Bytes ready on the master, 0 when none.  poll runs the pty's pending
 * buffer work first, so bytes still on their way count too. */
static int ready_bytes(int m)
{
	struct pollfd pfd = { m, POLLIN, 0 };
	int n = 0;
	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (!(pfd.revents & POLLIN))
		return 0;
	if (ioctl(m, FIONREAD, &n))
		return -errno;
	return n;
}

/* Read the whole queue into q (malloc'd); the master is not O_NONBLOCK
 * in general (it is the tree's description), so read only what FIONREAD
 * says is there. */
static int drain(int m, struct tty_queue *q)
{
	size_t cap = 0;
	int n;
	while ((n = ready_bytes(m)) > 0) {
		if (q->len + (size_t)n > QUEUE_MAX)
			return -EFBIG;
		if (q->len + (size_t)n > cap) {
			cap = 2 * (q->len + (size_t)n);
			uint8_t *b = realloc(q->data, cap);
			if (!b)
				return -ENOMEM;
			q->data = b;
		}
		ssize_t r = read(m, q->data + q->len, (size_t)n);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		q->len += (size_t)r;
	}
	return n < 0 ? n : 0;
}

/* A slave of our own; a locked pair (its slave opened before it was
 * locked again) is unlocked for that open only. */
static int open_peer(int m)
{
	int locked = 0, zero = 0, one = 1;
	if (ioctl(m, TIOCGPTLCK, &locked))
		return -errno;
	if (locked && ioctl(m, TIOCSPTLCK, &zero))
		return -errno;
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int err = s < 0 ? -errno : 0;
	if (locked && ioctl(m, TIOCSPTLCK, &one) && !err) {
		err = -errno;
		close(s);
	}
	return err ? err : s;
}

/* Write buf into the pair through a slave of our own, with the slave's
 * output processing off.  Waits up to 2 s for room (the pty's buffers
 * were just emptied by as much, so it is there unless output is stopped). */
static int write_raw(int m, const uint8_t *buf, size_t len)
{
	struct termios tio, raw;
	int s = open_peer(m);
	if (s < 0)
		return s;
	if (tcgetattr(m, &tio)) {
		int err = errno;
		close(s);
		return -err;
	}
	raw = tio;
	raw.c_oflag &= ~(tcflag_t)OPOST;
	int ret = tcsetattr(m, TCSANOW, &raw) ? -errno : 0;
	size_t done = 0;
	for (int tries = 0; !ret && done < len && tries < 200;) {
		ssize_t w = write(s, buf + done, len - done);
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			ret = -errno;
		} else {
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
			tries++;
		}
	}
	if (!ret && done < len)
		ret = -EAGAIN;
	if (tcsetattr(m, TCSANOW, &tio) && !ret)
		ret = -errno;
	close(s);
	return ret;
}

/* ------------------------------ input ------------------------------ */

/* Append what one read of slave s gives; `line`: it is one line.  1 when
 * something was read (an empty line too), 0 when nothing is there. */
static int read_input(int s, struct tty_input *in, int line)
{
	struct pollfd pfd = { s, POLLIN, 0 };
	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (!(pfd.revents & POLLIN))
		return 0;
	if (in->len > TTY_INPUT_MAX)
		return -EFBIG;
	ssize_t r = read(s, in->data + in->len, TTY_INPUT_MAX + 1 - in->len);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (r == 0 && !line)
		return 0;
	in->len += (size_t)r;
	if (line) {
		if (in->nr_lines > TTY_INPUT_MAX)
			return -EFBIG;
		in->ends[in->nr_lines++] = in->len;
	}
	return 1;
}

/* What is left, with `clear` off in lflag and VMIN 1 (so that poll sees
 * each byte) for these reads, then the termios back. */
static int read_rest(int m, int s, const struct termios *tio, tcflag_t clear,
		     struct tty_input *in)
{
	struct termios raw = *tio;
	int r;
	raw.c_lflag &= ~clear;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(m, TCSANOW, &raw))
		return -errno;
	while ((r = read_input(s, in, 0)) > 0)
		;
	if (tcsetattr(m, TCSANOW, tio) && !r)
		r = -errno;
	return r;
}

/* Canonical: the lines one read each (poll runs the pty's pending buffer
 * work, so nothing waits unprocessed after), then the unfinished line
 * with ICANON off for that read. */
static int read_lines(int m, int s, const struct termios *tio, struct tty_input *in)
{
	int r;
	while ((r = read_input(s, in, 1)) > 0)
		;
	return r < 0 ? r : read_rest(m, s, tio, ICANON, in);
}

/* Non-canonical: everything. */
static int read_raw(int m, int s, const struct termios *tio, struct tty_input *in)
{
	return read_rest(m, s, tio, 0, in);
}

/* What a dump refuses before it takes anything: 0 or -ENOTSUP, *why.
 * The slave cannot write (no POLLOUT) when its output is stopped, or when
 * the master's buffers are full (4 KiB in its line discipline, then 8 in
 * flight): `full` says they may be.  Stopped, neither the output we read
 * nor the echo of the input we put back could come back. */
static int input_refusal(int s, const struct termios *tio, int full, const char **why)
{
	int queued = 0;
	struct pollfd pfd = { s, POLLOUT, 0 };
	if (ioctl(s, FIONREAD, &queued))
		return -errno;
	if ((tio->c_lflag & EXTPROC) && queued > 0)
		*why = "input not read by its slave in EXTPROC mode is not supported";
	else if (queued >= TTY_INPUT_MAX)
		*why = "its slave's input buffer is full: not supported";
	else if (!full && poll(&pfd, 1, 0) >= 0 && !(pfd.revents & POLLOUT))
		*why = "its output is stopped (XOFF): what its queues hold could not be put back";
	else
		return 0;
	return -ENOTSUP;
}

/* The master's line discipline is full: the slave may be unable to
 * write for that alone. */
static int master_full(int m)
{
	int out = ready_bytes(m);
	return out < 0 ? out : out >= TTY_INPUT_MAX;
}

int tty_queue_check_input(int m, int s, const char **why)
{
	struct termios tio;
	int full = master_full(m);
	if (full < 0)
		return full;
	if (tcgetattr(s, &tio))
		return -errno;
	return input_refusal(s, &tio, full, why);
}

/* Bytes of the master that are there within 2 s, up to n, dropped. */
static int drop_echo(int m, size_t n)
{
	uint8_t buf[CHUNK];
	for (int tries = 0; n > 0;) {
		int k = ready_bytes(m);
		if (k < 0)
			return k;
		if (k == 0) {
			if (++tries > 200)
				return -ETIMEDOUT;
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
			continue;
		}
		size_t want = (size_t)k < n ? (size_t)k : n;
		ssize_t r = read(m, buf, want < sizeof(buf) ? want : sizeof(buf));
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		n -= (size_t)r;
	}
	return 0;
}

/* The termios under which every byte we write is stored as it is. */
static void injecting(const struct termios *tio, struct termios *inj)
{
	static const int off[] = { VINTR, VQUIT, VSUSP, VERASE, VKILL, VWERASE, VREPRINT,
				   VEOL,  VEOL2, VSTART, VSTOP, VDISCARD };
	*inj = *tio;
	inj->c_iflag &= ~(tcflag_t)(ISTRIP | IUCLC | IGNCR | ICRNL | INLCR | PARMRK | IXANY);
	inj->c_oflag &= ~(tcflag_t)OPOST;
	inj->c_lflag &= ~(tcflag_t)(ISIG | ECHOCTL | ECHOE | ECHOK | ECHONL | ECHOPRT | ECHOKE |
				    FLUSHO | PENDIN | TOSTOP);
	inj->c_lflag |= ECHO | IEXTEN;
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		inj->c_cc[off[i]] = _POSIX_VDISABLE;
	inj->c_cc[VEOF] = EOF_BYTE;
	inj->c_cc[VLNEXT] = LNEXT_BYTE;
	inj->c_cc[VMIN] = 1;
	inj->c_cc[VTIME] = 0;
}

struct injection {
	uint8_t *buf; /* the bytes to write, quoted */
	size_t len;
	size_t echo; /* how many bytes they echo */
};

static void add_byte(struct injection *j, uint8_t c, int canon, int quote)
{
	if (canon && quote && (c == '\n' || c == EOF_BYTE || c == LNEXT_BYTE))
		j->buf[j->len++] = LNEXT_BYTE;
	j->buf[j->len++] = c;
	j->echo++;
}

/* In canonical mode each line ends as a read returned it: with its "\n",
 * else with VEOF (not stored as data, not echoed). */
static void encode(const struct tty_input *in, int canon, struct injection *j)
{
	size_t start = 0;
	for (size_t l = 0; canon && l < in->nr_lines; l++) {
		size_t end = in->ends[l];
		int nl = end > start && in->data[end - 1] == '\n';
		for (size_t i = start; i < end - (size_t)nl; i++)
			add_byte(j, in->data[i], canon, 1);
		if (nl)
			add_byte(j, '\n', canon, 0);
		else
			j->buf[j->len++] = EOF_BYTE;
		start = end;
	}
	for (size_t i = start; i < in->len; i++)
		add_byte(j, in->data[i], canon, 1);
}

/* Write j through master m, then wait until all of it echoed back.  The
 * master may be the tree's blocking description: write what has room. */
static int inject(int m, const struct injection *j)
{
	size_t done = 0;
	for (int tries = 0; done < j->len && tries < 200;) {
		size_t n = j->len - done < CHUNK ? j->len - done : CHUNK;
		ssize_t w = write(m, j->buf + done, n);
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else {
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
			tries++;
		}
	}
	return done < j->len ? -EAGAIN : drop_echo(m, j->echo);
}

/* Queue `in` on the slave of master m (whose own queue is empty), under
 * the injecting termios, then the real one back. */
static int put_input(int m, const struct tty_input *in)
{
	struct termios tio, inj;
	struct injection j = { NULL, 0, 0 };
	if (!in->len && !in->nr_lines)
		return 0;
	if (tcgetattr(m, &tio))
		return -errno;
	/* a slave of ours open meanwhile: a pair whose slaves are all
	 * closed would drop what comes in (see the kernel's tty->closing) */
	int s = open_peer(m);
	if (s < 0)
		return s;
	if (!(j.buf = malloc(2 * in->len + in->nr_lines + 1))) {
		close(s);
		return -ENOMEM;
	}
	encode(in, (tio.c_lflag & ICANON) != 0, &j);
	injecting(&tio, &inj);
	int ret = tcsetattr(m, TCSANOW, &inj) ? -errno : inject(m, &j);
	if (tcsetattr(m, TCSANOW, &tio) && !ret)
		ret = -errno;
	free(j.buf);
	close(s);
	return ret;
}

static int take_input(int m, struct tty_input *in)
{
	struct termios tio;
	int full = master_full(m), s, ret;
	if (full < 0 || (s = open_peer(m)) < 0)
		return full < 0 ? full : s;
	if (tcgetattr(m, &tio) || (ret = input_refusal(s, &tio, full, &in->refused))) {
		ret = in->refused ? -ENOTSUP : -errno;
		close(s);
		return ret;
	}
	if (tio.c_lflag & EXTPROC)
		ret = 0; /* nothing there: input_refusal */
	else if (tio.c_lflag & ICANON)
		ret = read_lines(m, s, &tio, in);
	else
		ret = read_raw(m, s, &tio, in);
	close(s);
	if (!ret && in->len > TTY_INPUT_MAX - 1) {
		in->refused = "its slave's input buffer is full: not supported";
		ret = -ENOTSUP;
	}
	return ret;
}

/* ------------------------------ both ------------------------------- */

struct queues {
	int with_input;
	struct tty_queue *out;
	struct tty_input *in;
	const uint8_t *out_data; /* put: the output */
	size_t out_len;
};

/* Packet mode off around fn, on again after (which also clears a status
 * that could not be pending: tty_queue_take refused that). */
static int without_packet(int m, int (*fn)(int, struct queues *), struct queues *q)
{
	int pkt = 0, off = 0, on = 1;
	if (ioctl(m, TIOCGPKT, &pkt))
		return -errno;
	if (pkt && ioctl(m, TIOCPKT, &off))
		return -errno;
	int ret = fn(m, q);
	if (pkt && ioctl(m, TIOCPKT, &on) && !ret)
		ret = -errno;
	return ret;
}

/* Input first (refused before anything is read when it cannot be
 * kept), then output (with what the slave echoed of input that was still
 * on its way), then both back, input first: our echoes come back on an
 * empty master queue.  Whatever fails, what was read is written back. */
static int take(int m, struct queues *q)
{
	int ret = q->with_input ? take_input(m, q->in) : 0, put_ret = 0;
	if (ret && !q->in->len && !q->in->nr_lines)
		return ret; /* nothing read */
	int r = drain(m, q->out);
	ret = ret ? ret : r;
	if (q->in->len || q->in->nr_lines)
		put_ret = put_input(m, q->in);
	if (q->out->len) {
		int w = write_raw(m, q->out->data, q->out->len);
		put_ret = put_ret ? put_ret : w;
	}
	if (put_ret) {
		/* The tree must not lose them: say so loudly. */
		pr_err("pty: %zu output and %zu input bytes read could not all be written back: "
		       "%s",
		       q->out->len, q->in->len, strerror(-put_ret));
		return put_ret;
	}
	return ret;
}

static int put(int m, struct queues *q)
{
	int ret = q->in ? put_input(m, q->in) : 0;
	if (!ret && q->out_len)
		ret = write_raw(m, q->out_data, q->out_len);
	return ret;
}

int tty_queue_status_pending(int m)
{
	int pkt = 0;
	struct pollfd pfd = { m, POLLPRI, 0 };
	if (ioctl(m, TIOCGPKT, &pkt) || !pkt)
		return 0;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLPRI);
}

int tty_queue_take(int m, int with_input, struct tty_queue *out, struct tty_input *in)
{
	*out = (struct tty_queue){ NULL, 0 };
	*in = (struct tty_input){ NULL, 0, NULL, 0, NULL };
	if (with_input) {
		in->data = malloc(TTY_INPUT_MAX + 1);
		in->ends = malloc((TTY_INPUT_MAX + 1) * sizeof(*in->ends));
		if (!in->data || !in->ends)
			return -ENOMEM;
	}
	struct queues q = { with_input, out, in, NULL, 0 };
	return without_packet(m, take, &q);
}

int tty_queue_input_pending(int m)
{
	int s = open_peer(m), n = 0;
	if (s < 0)
		return s;
	int ret = ioctl(s, FIONREAD, &n) ? -errno : n;
	close(s);
	return ret;
}

void tty_queue_free(struct tty_queue *out, struct tty_input *in)
{
	free(out->data);
	free(in->data);
	free(in->ends);
}

int tty_queue_put(int m, const struct tty_input *in, const uint8_t *out, size_t len)
{
	struct queues q = { 0, NULL, (struct tty_input *)in, out, len };
	if (!len && (!in || (!in->len && !in->nr_lines)))
		return 0;
	return without_packet(m, put, &q);
}

/* ------------------------- the image entry -------------------------- */

static int keep_input(struct arena *a, TtyEntry *t, const struct tty_input *in)
{
	uint8_t *copy = arena_alloc(a, in->len + 1);
	size_t start = 0;
	if (!copy || !(t->input_lines = arena_alloc(a, (in->nr_lines + 1) * sizeof(*t->input_lines))))
		return -ENOMEM;
	if (in->len)
		memcpy(copy, in->data, in->len);
	for (size_t l = 0; l < in->nr_lines; l++) {
		t->input_lines[l] = (ProtobufCBinaryData){ in->ends[l] - start, copy + start };
		start = in->ends[l];
	}
	t->n_input_lines = in->nr_lines;
	t->has_input_tail = in->len > start;
	t->input_tail = (ProtobufCBinaryData){ in->len - start, copy + start };
	return 0;
}

static int keep_queues(struct arena *a, TtyEntry *t, const struct tty_queue *out,
		       const struct tty_input *in)
{
	if (out->len) {
		uint8_t *copy = arena_alloc(a, out->len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, out->data, out->len);
		t->has_queued = 1;
		t->queued = (ProtobufCBinaryData){ out->len, copy };
	}
	if (in->len || in->nr_lines)
		pr_debug("pty %u: %zu output bytes, %zu input lines and %zu bytes not read yet",
			 t->index, out->len, in->nr_lines, in->len);
	return in->len || in->nr_lines ? keep_input(a, t, in) : 0;
}

int tty_queue_save(struct arena *a, int m, int with_input, TtyEntry *t, const char **why)
{
	struct tty_queue out;
	struct tty_input in;
	int ret = tty_queue_take(m, with_input, &out, &in);
	*why = ret ? in.refused : NULL;
	if (!ret)
		ret = keep_queues(a, t, &out, &in);
	tty_queue_free(&out, &in);
	return ret;
}

/* Input as a dump of ours gives it: what a line discipline holds, lines
 * only in canonical mode, none in EXTPROC mode. */
int tty_queue_valid(const TtyEntry *t)
{
	size_t total = t->has_input_tail ? t->input_tail.len : 0;
	if (!t->n_input_lines && !t->has_input_tail)
		return 1;
	if (!t->termios || (t->termios->lflag & EXTPROC) ||
	    (t->n_input_lines && !(t->termios->lflag & ICANON)) ||
	    t->n_input_lines > TTY_INPUT_MAX)
		return 0;
	for (size_t i = 0; i < t->n_input_lines; i++)
		total += t->input_lines[i].len;
	return total <= TTY_INPUT_MAX;
}

int tty_queue_restore(int m, const TtyEntry *t)
{
	struct tty_input in = { NULL, 0, NULL, 0, NULL };
	size_t *ends = NULL;
	uint8_t *data = NULL;
	int ret = -ENOMEM;
	if (t->n_input_lines || t->has_input_tail) {
		ends = calloc(t->n_input_lines + 1, sizeof(*ends));
		data = malloc(TTY_INPUT_MAX + 1);
		if (!ends || !data)
			goto out;
		for (size_t i = 0; i < t->n_input_lines; i++) {
			if (t->input_lines[i].len) /* an end-of-file line has no bytes */
				memcpy(data + in.len, t->input_lines[i].data, t->input_lines[i].len);
			in.len += t->input_lines[i].len;
			ends[in.nr_lines++] = in.len;
		}
		if (t->has_input_tail) {
			if (t->input_tail.len)
				memcpy(data + in.len, t->input_tail.data, t->input_tail.len);
			in.len += t->input_tail.len;
		}
		in.data = data;
		in.ends = ends;
	}
	ret = tty_queue_put(m, &in, t->has_queued ? t->queued.data : NULL,
			    t->has_queued ? t->queued.len : 0);
	if (ret)
		pr_err("pty %u: cannot queue the bytes neither side had read (%zu input, %zu "
		       "output): %s",
		       t->index, in.len, t->has_queued ? t->queued.len : 0, strerror(-ret));
out:
	free(ends);
	free(data);
	return ret;
}
