/*
 * A restored OpenMPI 4.1 rank at MPI_Finalize, with no libpmix: speaks
 * the PMIx 4.2.2 wire protocol by hand on fd 3 (its old, already
 * connected PMIx socket; ckpt-step holds the other end), as a client
 * whose environment chose bfrops v41 and non-described buffers.
 *
 *   pmix-rank NSPACE finalize   FENCENB over NSPACE:* with no data, wait
 *                               for its reply, FINALIZE, wait, exit 0
 *   pmix-rank NSPACE abort      ABORT (status 7), wait (we are killed)
 *
 * v41 packing (src/mca/bfrops/v41, base/bfrop_base_pack.c,
 * psquash/flex128): every PMIX_BFROPS_PACK writes the count as an INT32
 * and then the values; INT32 is zigzag-then-LEB128 (flex128), SIZE and
 * UINT32 plain LEB128, COMMAND one byte, a string its INT32 length
 * (with the NUL) and its bytes, a PROC the nspace string and the rank
 * (UINT32).  A message: header {pindex, tag, nbytes, padding}, each
 * uint32 in network order, then the packed bytes.
 *
 * Exits 2 with a line on stderr when a reply does not come or is not
 * PMIX_SUCCESS; an alarm turns a hang into a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FD 3
#define PMIX_RANK_WILDCARD (UINT32_MAX - 1)
#define CMD_ABORT 1
#define CMD_FENCENB 3
#define CMD_FINALIZE 5

struct buf {
	unsigned char b[4096];
	size_t n;
};

static void leb128(struct buf *m, uint64_t v)
{
	do {
		unsigned char c = v & 0x7f;

		v >>= 7;
		m->b[m->n++] = c | (v ? 0x80 : 0);
	} while (v);
}

static void int32(struct buf *m, int32_t v)
{
	uint64_t u = (uint64_t)(int64_t)v;

	leb128(m, v < 0 ? (~u << 1) | 1 : u << 1);
}

static void count(struct buf *m, int32_t n)
{
	int32(m, n);
}

static void string(struct buf *m, const char *s)
{
	size_t len = strlen(s) + 1;

	int32(m, len);
	memcpy(m->b + m->n, s, len);
	m->n += len;
}

static void command(struct buf *m, uint8_t cmd)
{
	count(m, 1);
	m->b[m->n++] = cmd;
}

static void die(const char *what)
{
	fprintf(stderr, "pmix-rank %d: %s\n", getpid(), what);
	exit(2);
}

static void send_msg(const struct buf *m, uint32_t tag)
{
	/* pindex: an index the old server gave us; the new one ignores it */
	uint32_t hdr[4] = { htonl(7), htonl(tag), htonl(m->n), 0 };

	if (write(FD, hdr, sizeof(hdr)) != sizeof(hdr) || write(FD, m->b, m->n) != (ssize_t)m->n)
		die("send failed");
}

static void read_full(void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(FD, c, n);

		if (r <= 0)
			die(r ? strerror(errno) : "server closed the connection");
		c += r;
		n -= r;
	}
}

/* Waits for the reply to `tag`; its first packed value is a status. */
static void expect_success(uint32_t tag)
{
	unsigned char body[65536];
	uint32_t hdr[4];
	uint32_t n;

	for (;;) {
		read_full(hdr, sizeof(hdr));
		n = ntohl(hdr[2]);
		if (n > sizeof(body))
			die("reply too large");
		read_full(body, n);
		if (ntohl(hdr[1]) != tag)
			continue; /* an event notification: not ours */
		if (n < 2 || body[0] != 2 || body[1] != 0) {
			fprintf(stderr, "pmix-rank %d: tag %u: status bytes %02x %02x\n", getpid(), tag,
				n > 0 ? body[0] : 0, n > 1 ? body[1] : 0);
			exit(2);
		}
		return;
	}
}

static void fence(const char *nspace)
{
	struct buf m = { .n = 0 };

	command(&m, CMD_FENCENB);
	count(&m, 1);
	leb128(&m, 1); /* nprocs */
	count(&m, 1);
	string(&m, nspace); /* procs[0] = NSPACE:WILDCARD */
	leb128(&m, PMIX_RANK_WILDCARD);
	count(&m, 1);
	leb128(&m, 0); /* ninfo: no data collection asked */
	send_msg(&m, 100);
	expect_success(100);
}

static void finalize(void)
{
	struct buf m = { .n = 0 };

	command(&m, CMD_FINALIZE);
	send_msg(&m, 101);
	expect_success(101);
}

static void do_abort(void)
{
	struct buf m = { .n = 0 };

	command(&m, CMD_ABORT);
	count(&m, 1);
	int32(&m, 7);
	count(&m, 1);
	string(&m, "test abort");
	count(&m, 1);
	leb128(&m, 0); /* nprocs: the whole namespace */
	send_msg(&m, 102);
	expect_success(102);
	pause(); /* ckpt-step kills us */
}

int main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: pmix-rank NSPACE finalize|abort");
	alarm(30);
	if (!strcmp(argv[2], "finalize")) {
		fence(argv[1]);
		finalize();
		printf("finalized\n");
		return 0;
	}
	if (!strcmp(argv[2], "abort"))
		do_abort();
	die("unknown mode");
}
