/*
 * cr_unix_opts: socket options of unix sockets across a checkpoint
 * (libckpt/sk-unix.c with sk-opts.c's table).
 *
 * A stream socketpair, a dgram socketpair, a named stream listener and an
 * unbound dgram socket.  Every socket but the last is given a non-default
 * value of each option below (priority, linger, a device, reuseaddr,
 * keepalive, timeouts, receive low mark, timestamps, peek offset,
 * dontroute, oobinline, broadcast, a classic BPF filter on the dgram
 * pair); the last is left alone (its buffers unlocked: SO_BUF_LOCK 0).
 * Just before the dump every option of the list is read (getsockopt
 * bytes); after the restore each must read the same, or the test names
 * the first difference.
 */
#include "crlib.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

#define FD 40
#define NR_SOCKS 6 /* FD .. FD + 5 */

#define OPT(o) { o, #o }
static const struct {
	int name;
	const char *str;
} opts[] = {
	OPT(SO_PRIORITY),     OPT(SO_LINGER),	   OPT(SO_BINDTODEVICE), OPT(SO_BUF_LOCK),
	OPT(SO_REUSEADDR),    OPT(SO_KEEPALIVE),   OPT(SO_RCVTIMEO_OLD), OPT(SO_SNDTIMEO_OLD),
	OPT(SO_RCVLOWAT),     OPT(SO_PASSCRED),	   OPT(SO_TIMESTAMP_OLD), OPT(SO_TIMESTAMPNS_OLD),
	OPT(SO_PEEK_OFF),     OPT(SO_DONTROUTE),   OPT(SO_OOBINLINE),	 OPT(SO_BROADCAST),
	OPT(SO_SNDBUF),	      OPT(SO_RCVBUF),	   OPT(SO_GET_FILTER),	 OPT(SO_NO_CHECK),
};
#define NR_OPTS (sizeof(opts) / sizeof(opts[0]))

struct value {
	unsigned char buf[256];
	socklen_t len;
	int err;
};
static struct value before[NR_SOCKS][NR_OPTS];

static void set_int(int sk, int opt, const char *name, int v)
{
	CHECK_SYS(!setsockopt(sk, SOL_SOCKET, opt, &v, sizeof(v)), "fd %d: %s %d", sk, name, v);
}

static void set_all(int sk, int dgram)
{
	struct linger l = { 1, 7 };
	struct timeval rt = { 2, 500000 }, st = { 3, 0 };
	set_int(sk, SO_PRIORITY, "SO_PRIORITY", 5);
	CHECK_SYS(!setsockopt(sk, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), "SO_LINGER");
	CHECK_SYS(!setsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), "SO_BINDTODEVICE");
	set_int(sk, SO_REUSEADDR, "SO_REUSEADDR", 1);
	set_int(sk, SO_KEEPALIVE, "SO_KEEPALIVE", 1);
	CHECK_SYS(!setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO_OLD, &rt, sizeof(rt)), "SO_RCVTIMEO");
	CHECK_SYS(!setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO_OLD, &st, sizeof(st)), "SO_SNDTIMEO");
	set_int(sk, SO_RCVLOWAT, "SO_RCVLOWAT", 4);
	set_int(sk, SO_DONTROUTE, "SO_DONTROUTE", 1);
	set_int(sk, SO_OOBINLINE, "SO_OOBINLINE", 1);
	set_int(sk, SO_NO_CHECK, "SO_NO_CHECK", 1);
	set_int(sk, SO_BROADCAST, "SO_BROADCAST", 1);
	set_int(sk, SO_TIMESTAMP_OLD, "SO_TIMESTAMP", 1);
	if (dgram) {
		set_int(sk, SO_PEEK_OFF, "SO_PEEK_OFF", 0);
		/* accept every packet whole: ret #-1 */
		struct sock_filter insn[] = { BPF_STMT(BPF_RET | BPF_K, 0xffffffff) };
		struct sock_fprog prog = { 1, insn };
		CHECK_SYS(!setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)),
			  "SO_ATTACH_FILTER");
	}
}

static void read_all(struct value v[NR_OPTS], int sk)
{
	for (size_t i = 0; i < NR_OPTS; i++) {
		memset(v[i].buf, 0, sizeof(v[i].buf));
		/* SO_GET_FILTER: its length counts instructions */
		v[i].len = opts[i].name == SO_GET_FILTER ? 16 : sizeof(v[i].buf);
		v[i].err = getsockopt(sk, SOL_SOCKET, opts[i].name, v[i].buf, &v[i].len) ? errno : 0;
	}
}

int main(void)
{
	int sv[2], dv[2];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	test_init();
	CHECK_SYS(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	move_fd(sv[0], FD);
	move_fd(sv[1], FD + 1);
	CHECK_SYS(!socketpair(AF_UNIX, SOCK_DGRAM, 0, dv), "socketpair dgram");
	move_fd(dv[0], FD + 2);
	move_fd(dv[1], FD + 3);
	move_fd(socket(AF_UNIX, SOCK_STREAM, 0), FD + 4);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/listen.sock", test_dir());
	CHECK_SYS(!bind(FD + 4, (struct sockaddr *)&sa, sizeof(sa)), "bind");
	CHECK_SYS(!listen(FD + 4, 5), "listen");
	move_fd(socket(AF_UNIX, SOCK_DGRAM, 0), FD + 5);
	for (int i = 0; i < NR_SOCKS - 1; i++)
		set_all(FD + i, i == 2 || i == 3);
	CHECK_SYS(write(FD + 1, "abc", 3) == 3, "write"); /* something queued */
	for (int i = 0; i < NR_SOCKS; i++)
		read_all(before[i], FD + i);

	test_ready();
	test_wait_check();

	for (int i = 0; i < NR_SOCKS; i++) {
		struct value now[NR_OPTS];
		read_all(now, FD + i);
		for (size_t j = 0; j < NR_OPTS; j++) {
			const struct value *b = &before[i][j], *a = &now[j];
			CHECK(b->err == a->err && b->len == a->len && !memcmp(b->buf, a->buf, b->len),
			      "fd %d: %s: %d bytes (err %d) before, %d bytes (err %d) now, first "
			      "word %#x then %#x",
			      FD + i, opts[j].str, (int)b->len, b->err, (int)a->len, a->err,
			      *(const unsigned *)b->buf, *(const unsigned *)a->buf);
		}
	}
	char buf[8];
	/* MSG_DONTWAIT: SO_RCVLOWAT 4 would wait SO_RCVTIMEO for a fourth byte */
	CHECK_SYS(recv(FD, buf, sizeof(buf), MSG_DONTWAIT) == 3 && !memcmp(buf, "abc", 3),
		  "queued data");
	pass();
}
