/*
 * cr_pipe_data: bytes in flight in pipes survive, in order, exactly.
 *
 *   A: 1000 bytes written, not read; read end O_NONBLOCK
 *   B: filled up to the last byte (write end O_NONBLOCK until EAGAIN)
 *   C: resized to 1 MiB (F_SETPIPE_SZ) and 300000 bytes in it
 *   D: 5000 bytes in it and the write end closed: data, then EOF
 *   E: a FIFO (named pipe) in the test's directory with 2000 bytes in it
 * After the restore: flags and pipe sizes as before, FIONREAD as before,
 * every byte read back and compared, nothing more in the pipe, and both
 * ends of A, B and C still belong to one pipe (a new write comes out of
 * the read end).
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct tpipe {
	const char *name;
	int fd[2];
	size_t len;      /* bytes in flight */
	int flags[2];    /* F_GETFL of both ends before the dump */
	int size;        /* F_GETPIPE_SZ */
	int closed_writer;
	int fifo;
};

#define NR_PIPES 5
static struct tpipe pipes[NR_PIPES] = { { .name = "A", .len = 1000 },
					{ .name = "B" },
					{ .name = "C", .len = 300000 },
					{ .name = "D", .len = 5000, .closed_writer = 1 },
					{ .name = "E", .len = 2000, .fifo = 1 } };

static unsigned char pattern(const struct tpipe *p, size_t pos)
{
	return (unsigned char)(pos * 131 + (pos >> 8) * 7 + p->name[0]);
}

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	CHECK_SYS(fl >= 0 && fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) == 0,
		  "fcntl");
}

/* Write len bytes of the pattern; len 0: until the pipe is full. */
static void fill(struct tpipe *p)
{
	unsigned char buf[4096];
	size_t pos = 0, i, chunk;
	ssize_t n;

	for (;;) {
		chunk = p->len ? p->len - pos : sizeof(buf);
		if (chunk > sizeof(buf))
			chunk = sizeof(buf);
		if (!chunk)
			break;
		for (i = 0; i < chunk; i++)
			buf[i] = pattern(p, pos + i);
		n = write(p->fd[1], buf, chunk);
		if (n < 0 && errno == EAGAIN && !p->len)
			break;
		CHECK_SYS(n > 0, "pipe %s: write", p->name);
		pos += n;
	}
	p->len = pos;
}

static void setup(void)
{
	struct tpipe *p;

	for (p = pipes; p < pipes + NR_PIPES; p++) {
		if (!p->fifo) {
			CHECK_SYS(!pipe(p->fd), "pipe");
			continue;
		}
		unlink("fifo-e");
		CHECK_SYS(!mkfifo("fifo-e", 0600), "mkfifo");
		p->fd[0] = open("fifo-e", O_RDONLY | O_NONBLOCK);
		p->fd[1] = open("fifo-e", O_WRONLY);
		CHECK_SYS(p->fd[0] >= 0 && p->fd[1] >= 0, "open fifo-e");
	}
	set_nonblock(pipes[0].fd[0], 1);
	set_nonblock(pipes[1].fd[1], 1);
	CHECK_SYS(fcntl(pipes[2].fd[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 20), "F_SETPIPE_SZ");
	for (p = pipes; p < pipes + NR_PIPES; p++) {
		fill(p);
		p->size = fcntl(p->fd[0], F_GETPIPE_SZ);
		p->flags[0] = fcntl(p->fd[0], F_GETFL);
		p->flags[1] = fcntl(p->fd[1], F_GETFL);
		if (p->closed_writer)
			close(p->fd[1]);
	}
	CHECK(pipes[1].len >= 4096, "pipe B holds only %zu bytes", pipes[1].len);
}

static void check_attrs(const struct tpipe *p)
{
	int avail = -1;

	CHECK(fcntl(p->fd[0], F_GETFL) == p->flags[0], "pipe %s: read end flags 0%o, were 0%o",
	      p->name, fcntl(p->fd[0], F_GETFL), p->flags[0]);
	CHECK(p->closed_writer || fcntl(p->fd[1], F_GETFL) == p->flags[1],
	      "pipe %s: write end flags 0%o, were 0%o", p->name, fcntl(p->fd[1], F_GETFL),
	      p->flags[1]);
	CHECK(fcntl(p->fd[0], F_GETPIPE_SZ) == p->size, "pipe %s: size %d, was %d", p->name,
	      fcntl(p->fd[0], F_GETPIPE_SZ), p->size);
	CHECK_SYS(!ioctl(p->fd[0], FIONREAD, &avail), "pipe %s: FIONREAD", p->name);
	CHECK((size_t)avail == p->len, "pipe %s: %d bytes in it, expected %zu", p->name, avail,
	      p->len);
}

static void check_data(struct tpipe *p)
{
	unsigned char *buf = malloc(p->len + 1), byte;
	ssize_t n;
	size_t i;

	CHECK(buf, "malloc");
	set_nonblock(p->fd[0], 0);
	n = read_full(p->fd[0], buf, p->len);
	CHECK(n == (ssize_t)p->len, "pipe %s: read %zd of %zu bytes", p->name, n, p->len);
	for (i = 0; i < p->len; i++)
		CHECK(buf[i] == pattern(p, i), "pipe %s: byte %zu is 0x%x, expected 0x%x",
		      p->name, i, buf[i], pattern(p, i));
	free(buf);
	if (p->closed_writer) {
		CHECK(read(p->fd[0], &byte, 1) == 0, "pipe %s: no EOF after the data", p->name);
		return;
	}
	set_nonblock(p->fd[0], 1);
	CHECK(read(p->fd[0], &byte, 1) < 0 && errno == EAGAIN, "pipe %s: extra data", p->name);
	/* both ends still one pipe */
	byte = 0xa5;
	CHECK_SYS(write(p->fd[1], &byte, 1) == 1, "pipe %s: write", p->name);
	byte = 0;
	CHECK(read(p->fd[0], &byte, 1) == 1 && byte == 0xa5,
	      "pipe %s: the write end does not feed the read end", p->name);
}

int main(void)
{
	int i;

	test_init();
	setup();
	test_ready();
	test_wait_check();
	for (i = 0; i < NR_PIPES; i++)
		check_attrs(&pipes[i]);
	for (i = 0; i < NR_PIPES; i++)
		check_data(&pipes[i]);
	printf("pipe B was full with %zu bytes\n", pipes[1].len);
	pass();
}
