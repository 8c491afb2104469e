/*
 * tty-queue: bytes a pty's slave side wrote that its master has not read
 * yet (the ranks' output that mpirun reads, a shell's output that a
 * terminal emulator reads).
 *
 * There is no peek for a tty, so the dump reads them from the master,
 * which empties the queue, and writes them straight back through a slave
 * of its own (TIOCGPTPEER) while the tree is still frozen: the tree sees
 * the same queue.  The restore writes them into the new pair the same way.
 *
 * What the master reads has already passed the slave's output processing
 * (OPOST: "\n" became "\r\n"), so it is written back with OPOST off, then
 * the termios put back.  Packet mode is off while we read and write: a
 * packet-mode read starts with a status byte, and our termios change
 * would queue a status in packet mode with EXTPROC.  A status already
 * pending (POLLPRI) cannot be read without being lost: refused by name.
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

#include "log.h"
#include "tty-queue.h"

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

/* Packet mode off around fn, on again after (which also clears a status
 * that could not be pending: tty_queue_take refused that). */
static int without_packet(int m, int (*fn)(int, struct tty_queue *), struct tty_queue *q)
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

static int put(int m, struct tty_queue *q)
{
	return write_raw(m, q->data, q->len);
}

static int take(int m, struct tty_queue *q)
{
	int ret = drain(m, q);
	if (q->len) {
		/* Back before anything else: the tree must not lose them. */
		int put_ret = put(m, q);
		if (put_ret) {
			pr_err("pty: %zu bytes read from its master could not be written back: %s",
			       q->len, strerror(-put_ret));
			return put_ret;
		}
	}
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

int tty_queue_take(int m, struct tty_queue *q)
{
	q->data = NULL;
	q->len = 0;
	return without_packet(m, take, q);
}

int tty_queue_put(int m, const uint8_t *data, size_t len)
{
	struct tty_queue q = { (uint8_t *)data, len };
	return len ? without_packet(m, put, &q) : 0;
}
