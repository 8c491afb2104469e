/*
 * A restored step's output, as srun wrote it: each rank's stdout and
 * stderr to the proxy's fd 1 and 2 (srun's: the job's output files).
 * With --label, every line gets Slurm 22.05's prefix, "%*d: " with the
 * width of the largest task id (src/api/step_io.c _wid, src/common/
 * write_labelled_message.c), and a line that ends without a newline
 * (a rank's last, partial line) gets one, as srun adds it.
 *
 * The pending file (--pending-out) holds what srun had received from
 * slurmstepd but not written when it was checkpointed, as records:
 *   uint8 stream (1 stdout, 2 stderr), uint32 rank, uint32 length
 *   (both little-endian), then length bytes.
 * It is written first, through the same labelling; a partial line there
 * is continued by the rank's live output.
 */
#include "step.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PENDING_MAX (64 << 20) /* srun's buffers are far smaller */

int write_full(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		c += w;
		n -= w;
	}
	return 0;
}

void stream_init(struct stream *st, int fd, int out)
{
	st->fd = fd;
	st->out = out;
	st->line = NULL;
	st->len = 0;
}

static void write_labelled(const struct step *s, uint32_t rank, int out, const char *p, size_t n,
			   bool add_newline)
{
	char prefix[32];
	int len = snprintf(prefix, sizeof(prefix), "%*u: ", s->width, rank);

	/* one write per line, as srun does, so lines of ranks do not mix */
	char *buf = malloc(len + n + 1);

	if (!buf)
		return;
	memcpy(buf, prefix, len);
	memcpy(buf + len, p, n);
	if (add_newline)
		buf[len + n++] = '\n';
	write_full(out, buf, len + n);
	free(buf);
}

/* Label mode: emit every whole line of st->line, keep the rest. */
static void emit_lines(const struct step *s, uint32_t rank, struct stream *st)
{
	size_t start = 0;
	char *nl;

	while ((nl = memchr(st->line + start, '\n', st->len - start))) {
		size_t n = nl - (st->line + start) + 1;

		write_labelled(s, rank, st->out, st->line + start, n, false);
		start += n;
	}
	if (st->len - start >= STEP_LINE_MAX) { /* a line too long: cut it */
		write_labelled(s, rank, st->out, st->line + start, st->len - start, true);
		start = st->len;
	}
	memmove(st->line, st->line + start, st->len - start);
	st->len -= start;
}

static int take(const struct step *s, uint32_t rank, struct stream *st, const char *p, size_t n)
{
	if (!s->label)
		return write_full(st->out, p, n);
	if (!st->line && !(st->line = malloc(STEP_LINE_MAX + 65536)))
		return -ENOMEM;
	while (n) {
		size_t room = STEP_LINE_MAX + 65536 - st->len, k = n < room ? n : room;

		memcpy(st->line + st->len, p, k);
		st->len += k;
		p += k;
		n -= k;
		emit_lines(s, rank, st);
	}
	return 0;
}

/* The partial line at EOF, with the newline srun adds. */
void stdio_flush(struct step *s, uint32_t rank, struct stream *st)
{
	if (s->label && st->len)
		write_labelled(s, rank, st->out, st->line, st->len, true);
	free(st->line);
	st->line = NULL;
	st->len = 0;
}

/* Reads what the rank wrote; 1 at EOF (fd closed), 0 else, -errno. */
int stdio_forward(struct step *s, struct task *t, struct stream *st)
{
	char buf[65536];
	ssize_t n = read(st->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(st->fd);
		st->fd = -1;
		stdio_flush(s, t->rank, st);
		return 1;
	}
	return take(s, t->rank, st, buf, n);
}

static struct stream *pending_stream(struct step *s, uint32_t rank, int out, struct stream *tmp)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->tasks[i].rank == rank)
			return out == 1 ? &s->tasks[i].out : &s->tasks[i].err;
	stream_init(tmp, -1, out); /* a rank not on this node: its lines alone */
	return tmp;
}

static int pending_record(struct step *s, const unsigned char *p, size_t left, size_t *used)
{
	uint32_t rank, len;
	struct stream tmp, *st;
	int rc;

	if (left < 9)
		return -EINVAL;
	rank = p[1] | p[2] << 8 | p[3] << 16 | (uint32_t)p[4] << 24;
	len = p[5] | p[6] << 8 | p[7] << 16 | (uint32_t)p[8] << 24;
	if ((p[0] != 1 && p[0] != 2) || rank >= s->size || len > left - 9)
		return -EINVAL;
	st = pending_stream(s, rank, p[0], &tmp);
	rc = take(s, rank, st, (const char *)p + 9, len);
	if (st == &tmp)
		stdio_flush(s, rank, &tmp);
	*used = 9 + len;
	return rc;
}

/* Writes the pending file's output (format atop this file). */
int stdio_pending(struct step *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char *buf = NULL;
	size_t len = 0, off = 0;
	ssize_t n;
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		fprintf(stderr, "ckpt-step: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	buf = malloc(PENDING_MAX + 1);
	while (buf && (n = read(fd, buf + len, PENDING_MAX + 1 - len)) > 0)
		len += n;
	close(fd);
	if (!buf || len > PENDING_MAX) {
		fprintf(stderr, "ckpt-step: %s: larger than %d bytes\n", path, PENDING_MAX);
		free(buf);
		return -EFBIG;
	}
	while (off < len && !rc) {
		size_t used = 0;

		rc = pending_record(s, buf + off, len - off, &used);
		if (rc == -EINVAL)
			fprintf(stderr, "ckpt-step: %s: bad record at byte %zu\n", path, off);
		off += used;
	}
	free(buf);
	return rc;
}
