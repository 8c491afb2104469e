/*
 * cr_unix_pairs, cr_unix_named: unix sockets across a checkpoint.
 *
 *   cr-unix-sk pairs: socketpairs (stream, dgram, seqpacket) with data
 *     queued both ways, a stream pair shut down for writing one way, a
 *     stream socket whose peer is closed with data still to read, and the
 *     options SO_RCVBUF, SO_SNDBUF, SO_PASSCRED; a dgram pair bound to
 *     names, a dgram socket whose peer is closed with a datagram queued.
 *     After the restore every
 *     queued byte and message boundary is there and the pairs still talk.
 *   cr-unix-sk named: a listening stream socket bound to a path (and one to
 *     an abstract name), a bound dgram server holding datagrams from a
 *     bound, connected client, and an accepted connection with data both
 *     ways.  After the restore the listeners accept new connections (from a
 *     child forked then), the dgram pair talks, the connection goes on, and
 *     the listener's file has the owner (root gives it away) and mode it
 *     was given.  A second listener bound to a name whose file a first one
 *     took back (renamed over it) keeps its name, and the name still
 *     leads to the first.
 *   cr-unix-sk pending: a listener with connections not accepted yet (one
 *     from a named client, one unnamed) behind an accepted one: after the
 *     restore they are accepted in the same order and talk; pending-data:
 *     one whose client wrote already, refused by name.
 *   cr-unix-sk pingpong: a parent and its child bounce counters over a
 *     stream socketpair, four always in flight, through the dump; after the
 *     restore not one is lost or repeated.
 *   cr-unix-sk scm: fds in flight (SCM_RIGHTS) in stream, dgram and
 *     seqpacket queues and in a named dgram server's: pipe ends and a file
 *     the tree keeps too, a file and a socket only a message holds (the
 *     socket with data and an fd in flight of its own), the receiving
 *     socket itself and its peer.  After the restore each message has its
 *     bytes, its boundaries and its fds, each the same description (kcmp)
 *     as the tree's copy (a shared offset), a stream's fds come with their
 *     own write and not the bytes before it.
 *   cr-unix-sk scm-loop: alone in its process, a socket bound to an
 *     abstract name in its own queue; restored at once on the same host,
 *     where only that loop holds the name until the kernel's unix garbage
 *     collector runs: the name is back, the message too.
 *   cr-unix-sk scm-stream: a stream write with an fd after plain bytes:
 *     the peek does not show where it starts, refused by name
 *     (bad_dump_unix_scm_stream).
 *   cr-unix-sk gone-dir: sockets bound in a directory removed since, two
 *     levels of it (zdtm sk-unix01): two dgram servers bound to one name
 *     in turn, each with a connected client and a datagram queued; a
 *     seqpacket listener with a connection accepted and one waiting; a
 *     dgram socketpair whose both ends took one name.  After the restore
 *     each keeps its name, each client reaches its own server, the
 *     directory is still gone and the restore left no file behind.
 *   cr-unix-sk fifo-name: a dgram server whose file was replaced by a
 *     FIFO, open (zdtm fifo_upon_unix_socket00), and its connected
 *     client: after the restore the client reaches the server, and the
 *     FIFO is still there, working.
 */
#include "crlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int pair(int type, int sv[2])
{
	CHECK_SYS(!socketpair(AF_UNIX, type, 0, sv), "socketpair %d", type);
	return 0;
}

static void put(int fd, const char *s)
{
	CHECK_SYS(send(fd, s, strlen(s), MSG_DONTWAIT) == (ssize_t)strlen(s), "send %s", s);
}

/* The next message (or stream chunk of len bytes) must be `want`. */
static void expect(int fd, const char *want, const char *what)
{
	char buf[256] = { 0 };
	size_t len = strlen(want);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK(n == (ssize_t)len && !memcmp(buf, want, len), "%s: got %zd bytes \"%s\", want \"%s\"",
	      what, n, n > 0 ? buf : "", want);
}

static void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	CHECK(n < 0 && errno == EAGAIN, "%s: queue not empty (%zd)", what, n);
}

static void expect_eof(int fd, const char *what)
{
	char c;
	CHECK(recv(fd, &c, 1, MSG_DONTWAIT) == 0, "%s: no end of stream", what);
}

static int getint(int fd, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);
	CHECK_SYS(!getsockopt(fd, SOL_SOCKET, opt, &v, &len), "getsockopt %d", opt);
	return v;
}

/* ------------------------------- pairs -------------------------------- */

static int st[2], dg[2], sp[2], sh[2], lone[2], fresh_st, fresh_sp, dgn[2], dgone[2];
static char dgn_abs[64], dgn_path[300];
static int rcvbuf, sndbuf;

static int bound(int type, const char *path, int abstract);
static socklen_t addr(struct sockaddr_un *sa, const char *path, int abstract);

/* A dgram socketpair bound to names (abstract, path), and one whose peer
 * is closed with a datagram still queued. */
static void setup_dgram_pairs(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	pair(SOCK_DGRAM, dgn);
	snprintf(dgn_abs, sizeof(dgn_abs), "cr-unix-sk-pair-%d", getpid());
	snprintf(dgn_path, sizeof(dgn_path), "%s/pair.sock", test_dir());
	len = addr(&sa, dgn_abs, 1);
	CHECK_SYS(!bind(dgn[0], (struct sockaddr *)&sa, len), "bind %s", dgn_abs);
	len = addr(&sa, dgn_path, 0);
	CHECK_SYS(!bind(dgn[1], (struct sockaddr *)&sa, len), "bind %s", dgn_path);
	put(dgn[0], "to the path");
	put(dgn[1], "to the abstract");
	pair(SOCK_DGRAM, dgone);
	put(dgone[0], "to the orphan");
	close(dgone[0]);
}

/* getsockname of fd is `name` (abstract: after a NUL). */
static void expect_name(int fd, const char *name, int abstract, const char *what)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	CHECK_SYS(!getsockname(fd, (struct sockaddr *)&sa, &len), "getsockname");
	/* a path's length may count its NUL, an abstract name's is exact */
	size_t head = offsetof(struct sockaddr_un, sun_path) + !!abstract;
	size_t n = len > head ? len - head : 0;
	if (!abstract)
		n = strnlen(sa.sun_path, n);
	CHECK(n == strlen(name) && !memcmp(sa.sun_path + !!abstract, name, n) &&
		      (!abstract || !sa.sun_path[0]),
	      "%s: name \"%.*s\", want \"%s\"", what, (int)n, sa.sun_path + !!abstract, name);
}

static void check_dgram_pairs(void)
{
	expect_name(dgn[0], dgn_abs, 1, "bound dgram pair");
	expect_name(dgn[1], dgn_path, 0, "bound dgram pair, other end");
	expect(dgn[1], "to the path", "bound dgram pair");
	expect(dgn[0], "to the abstract", "bound dgram pair, other way");
	put(dgn[0], "again");
	expect(dgn[1], "again", "bound dgram pair after the restore");
	expect(dgone[1], "to the orphan", "dgram with its peer closed");
	expect_empty(dgone[1], "dgram with its peer closed");
	CHECK(send(dgone[1], "x", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED,
	      "dgram with its peer closed: send did not fail with ECONNREFUSED");
}

static void setup_pairs(void)
{
	int one = 1, v = 65536;
	pair(SOCK_STREAM, st);
	pair(SOCK_DGRAM, dg);
	pair(SOCK_SEQPACKET, sp);
	pair(SOCK_STREAM, sh);
	pair(SOCK_STREAM, lone);
	fresh_st = socket(AF_UNIX, SOCK_STREAM, 0); /* never bound nor connected */
	fresh_sp = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CHECK_SYS(fresh_st >= 0 && fresh_sp >= 0, "socket");
	put(st[0], "hello ");
	put(st[0], "stream");
	put(st[1], "back");
	put(dg[0], "d1");
	put(dg[0], "");
	put(dg[0], "datagram-2");
	put(dg[1], "reply");
	put(sp[0], "seq-1");
	put(sp[0], "seq-22");
	put(sp[1], "seq-back");
	put(sh[0], "last words");
	CHECK_SYS(!shutdown(sh[0], SHUT_WR), "shutdown");
	put(lone[0], "orphan data");
	close(lone[0]);
	CHECK_SYS(!setsockopt(st[1], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), "SO_RCVBUF");
	v = 50000;
	CHECK_SYS(!setsockopt(st[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), "SO_SNDBUF");
	CHECK_SYS(!setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), "SO_PASSCRED");
	rcvbuf = getint(st[1], SO_RCVBUF);
	sndbuf = getint(st[1], SO_SNDBUF);
	setup_dgram_pairs();
}

static void check_pairs(void)
{
	char buf[64];
	expect(st[1], "hello stream", "stream pair");
	expect_empty(st[1], "stream pair");
	expect(st[0], "back", "stream pair, other way");
	expect(dg[1], "d1", "dgram 1");
	expect(dg[1], "", "dgram 2 (empty)");
	expect(dg[1], "datagram-2", "dgram 3");
	expect_empty(dg[1], "dgram pair");
	expect(dg[0], "reply", "dgram pair, other way");
	expect(sp[1], "seq-1", "seqpacket 1");
	expect(sp[1], "seq-22", "seqpacket 2");
	expect(sp[0], "seq-back", "seqpacket, other way");
	expect(sh[1], "last words", "shut down pair");
	expect_eof(sh[1], "shut down pair");
	CHECK(send(sh[0], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE,
	      "shut down end can still send");
	put(sh[1], "still open");
	expect(sh[0], "still open", "shut down pair, open way");
	CHECK(getint(fresh_st, SO_TYPE) == SOCK_STREAM &&
		      getint(fresh_sp, SO_TYPE) == SOCK_SEQPACKET,
	      "fresh sockets changed type");
	expect(lone[1], "orphan data", "closed peer");
	expect_eof(lone[1], "closed peer");
	CHECK(getint(st[1], SO_RCVBUF) == rcvbuf, "SO_RCVBUF %d, was %d", getint(st[1], SO_RCVBUF),
	      rcvbuf);
	CHECK(getint(st[1], SO_SNDBUF) == sndbuf, "SO_SNDBUF %d, was %d", getint(st[1], SO_SNDBUF),
	      sndbuf);
	CHECK(getint(dg[1], SO_PASSCRED) == 1, "SO_PASSCRED lost");
	check_dgram_pairs();
	/* ping-pong after the restore */
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "ping %d", i);
		put(st[0], buf);
		expect(st[1], buf, "stream ping");
		put(sp[1], buf);
		expect(sp[0], buf, "seqpacket ping");
		put(dg[0], buf);
		expect(dg[1], buf, "dgram ping");
	}
}

/* ------------------------------- named -------------------------------- */

static int lst, abs_lst, srv, cli, conn_c, conn_s, rel, gone, dup_old, dup_new;
static char gone_path[300], dup_path[300];
static char lst_path[300], srv_path[300], cli_path[300];

static socklen_t addr(struct sockaddr_un *sa, const char *path, int abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path + !!abstract, sizeof(sa->sun_path) - 1, "%s", path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + !!abstract + strlen(path));
}

static int bound(int type, const char *path, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len = addr(&sa, path, abstract);
	int fd = socket(AF_UNIX, type, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&sa, len), "bind %s", path);
	return fd;
}

static int connected(int type, const char *path, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len = addr(&sa, path, abstract);
	int fd = socket(AF_UNIX, type, 0);
	CHECK_SYS(fd >= 0 && !connect(fd, (struct sockaddr *)&sa, len), "connect %s", path);
	return fd;
}

static char abs_name[64];
static struct stat lst_st; /* its socket file at the dump */

static void setup_named(void)
{
	snprintf(lst_path, sizeof(lst_path), "%s/listener.sock", test_dir());
	snprintf(srv_path, sizeof(srv_path), "%s/dgram-server.sock", test_dir());
	snprintf(cli_path, sizeof(cli_path), "%s/dgram-client.sock", test_dir());
	snprintf(abs_name, sizeof(abs_name), "cr-unix-sk-%d", getpid());
	lst = bound(SOCK_STREAM, lst_path, 0);
	CHECK_SYS(!listen(lst, 8), "listen");
	/* its file given away (root) and its mode changed: connect() checks them */
	if (geteuid() == 0)
		CHECK_SYS(!chown(lst_path, 65534, 65534), "chown %s", lst_path);
	CHECK_SYS(!chmod(lst_path, 0751), "chmod %s", lst_path);
	CHECK_SYS(!stat(lst_path, &lst_st), "stat %s", lst_path);
	abs_lst = bound(SOCK_STREAM, abs_name, 1);
	CHECK_SYS(!listen(abs_lst, 8), "listen");
	srv = bound(SOCK_DGRAM, srv_path, 0);
	cli = bound(SOCK_DGRAM, cli_path, 0);
	struct sockaddr_un sa;
	socklen_t len = addr(&sa, srv_path, 0);
	CHECK_SYS(!connect(cli, (struct sockaddr *)&sa, len), "connect dgram");
	put(cli, "to server 1");
	put(cli, "to server 2");
	len = addr(&sa, cli_path, 0);
	CHECK_SYS(sendto(srv, "to client", 9, 0, (struct sockaddr *)&sa, len) == 9, "sendto");
	conn_c = connected(SOCK_STREAM, lst_path, 0);
	conn_s = accept(lst, NULL, NULL);
	CHECK_SYS(conn_s >= 0, "accept");
	put(conn_c, "request");
	put(conn_s, "response");
	/* a socket whose file was removed: it must not come back */
	snprintf(gone_path, sizeof(gone_path), "%s/gone.sock", test_dir());
	gone = bound(SOCK_DGRAM, gone_path, 0);
	CHECK_SYS(!unlink(gone_path), "unlink");
	/* a listener whose name another one took since (zdtm
	 * del_standalone_un): dup_new's file was replaced by dup_old's */
	char aside[320];
	snprintf(dup_path, sizeof(dup_path), "%s/dup.sock", test_dir());
	snprintf(aside, sizeof(aside), "%s.aside", dup_path);
	dup_old = bound(SOCK_STREAM, dup_path, 0);
	CHECK_SYS(!listen(dup_old, 8) && !rename(dup_path, aside), "listen, rename");
	dup_new = bound(SOCK_STREAM, dup_path, 0);
	CHECK_SYS(!listen(dup_new, 8) && !rename(aside, dup_path), "listen, rename back");
	/* a relative name: bound in our cwd, not the restorer's */
	rel = bound(SOCK_DGRAM, "rel.sock", 0);
	len = addr(&sa, "rel.sock", 0);
	CHECK_SYS(sendto(rel, "to myself", 9, 0, (struct sockaddr *)&sa, len) == 9, "sendto");
}

/* A child (forked after the restore) connects, says its name, gets it back. */
static void talk_to(int listener, const char *path, int abstract)
{
	pid_t pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		char buf[32] = { 0 };
		int fd = connected(SOCK_STREAM, path, abstract);
		if (write(fd, "new", 3) != 3 || read(fd, buf, sizeof(buf)) != 3 ||
		    strcmp(buf, "wen"))
			_exit(1);
		_exit(0);
	}
	int fd = accept(listener, NULL, NULL), status;
	char buf[4] = { 0 };
	CHECK_SYS(fd >= 0, "accept after the restore (%s)", path);
	CHECK_SYS(read(fd, buf, 3) == 3 && !strcmp(buf, "new"), "read from the new client");
	CHECK_SYS(write(fd, "wen", 3) == 3, "write to the new client");
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(status == 0, "the new client failed (%d)", status);
	close(fd);
}

static void check_named(void)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	expect(srv, "to server 1", "dgram server 1");
	expect(srv, "to server 2", "dgram server 2");
	expect_empty(srv, "dgram server");
	expect(cli, "to client", "dgram client");
	expect(conn_s, "request", "accepted connection");
	expect(conn_c, "response", "connected client");
	CHECK_SYS(!getsockname(lst, (struct sockaddr *)&sa, &len), "getsockname");
	CHECK(!strcmp(sa.sun_path, lst_path), "listener name %s, was %s", sa.sun_path, lst_path);
	len = sizeof(sa);
	CHECK_SYS(!getsockname(conn_s, (struct sockaddr *)&sa, &len), "getsockname");
	CHECK(!strcmp(sa.sun_path, lst_path), "accepted socket's name \"%s\"", sa.sun_path);
	len = sizeof(sa);
	CHECK_SYS(!getpeername(conn_c, (struct sockaddr *)&sa, &len), "getpeername");
	CHECK(!strcmp(sa.sun_path, lst_path), "client's peer name \"%s\"", sa.sun_path);
	len = sizeof(sa);
	CHECK_SYS(!getsockname(rel, (struct sockaddr *)&sa, &len), "getsockname");
	CHECK(!strcmp(sa.sun_path, "rel.sock"), "relative name \"%s\"", sa.sun_path);
	expect(rel, "to myself", "relative name");
	len = sizeof(sa);
	CHECK_SYS(!getsockname(gone, (struct sockaddr *)&sa, &len), "getsockname");
	CHECK(!strcmp(sa.sun_path, gone_path), "unlinked socket's name \"%s\"", sa.sun_path);
	CHECK(access(gone_path, F_OK) && errno == ENOENT, "%s is back", gone_path);
	len = addr(&sa, "rel.sock", 0);
	CHECK_SYS(sendto(rel, "again", 5, 0, (struct sockaddr *)&sa, len) == 5, "sendto rel.sock");
	expect(rel, "again", "relative name after the restore");
	struct stat st;
	CHECK_SYS(!stat(lst_path, &st), "stat %s", lst_path);
	CHECK(st.st_uid == lst_st.st_uid && st.st_gid == lst_st.st_gid &&
		      (st.st_mode & 07777) == (lst_st.st_mode & 07777),
	      "%s: owner %u:%u mode %04o, was %u:%u %04o", lst_path, st.st_uid, st.st_gid,
	      st.st_mode & 07777, lst_st.st_uid, lst_st.st_gid, lst_st.st_mode & 07777);
	talk_to(lst, lst_path, 0);
	talk_to(abs_lst, abs_name, 1);
	/* the name leads to the socket whose file it is; both keep the name */
	talk_to(dup_old, dup_path, 0);
	len = sizeof(sa);
	CHECK_SYS(!getsockname(dup_new, (struct sockaddr *)&sa, &len), "getsockname");
	CHECK(!strcmp(sa.sun_path, dup_path), "replaced listener's name \"%s\"", sa.sun_path);
	put(cli, "after");
	expect(srv, "after", "dgram server after the restore");
	len = addr(&sa, cli_path, 0);
	CHECK_SYS(sendto(srv, "back", 4, 0, (struct sockaddr *)&sa, len) == 4, "sendto");
	expect(cli, "back", "dgram client after the restore");
	put(conn_c, "more");
	expect(conn_s, "more", "connection after the restore");
}

/* ------------------------------ pingpong ------------------------------ */

#define IN_FLIGHT 4

static void pingpong(void)
{
	int sv[2], status;
	uint64_t n, want = 0;
	pair(SOCK_STREAM, sv);
	pid_t pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) { /* echo n + 1 for every n, until the parent is gone */
		close(sv[0]);
		signal(SIGPIPE, SIG_IGN);
		while (read_full(sv[1], &n, 8) == 8) {
			n++;
			if (write_full(sv[1], &n, 8) != 8)
				_exit(errno == EPIPE ? 0 : 1);
		}
		_exit(0);
	}
	close(sv[1]);
	for (n = 0; n < IN_FLIGHT; n++)
		CHECK_SYS(write_full(sv[0], &n, 8) == 8, "write");
	test_ready();
	while (!test_check_requested() || want < 1000) {
		CHECK_SYS(read_full(sv[0], &n, 8) == 8, "read");
		CHECK(n == want + 1, "got %llu, want %llu", (unsigned long long)n,
		      (unsigned long long)want + 1);
		want++;
		n = want + IN_FLIGHT - 1;
		CHECK_SYS(write_full(sv[0], &n, 8) == 8, "write");
		cr_shared.progress++;
	}
	close(sv[0]);
	CHECK_SYS(waitpid(pid, &status, 0) == pid && status == 0, "child failed (%d)", status);
	pass();
}

/* -------------------------------- scm --------------------------------- */

#define MAX_FDS 4

/* Send `data` with fds[] attached (SCM_RIGHTS), to `to` if set. */
static void send_fds(int via, const char *data, const int *fds, size_t n, const char *to)
{
	char ctl[CMSG_SPACE(MAX_FDS * sizeof(int))] = { 0 };
	struct sockaddr_un sa;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	if (to) {
		mh.msg_name = &sa;
		mh.msg_namelen = addr(&sa, to, 0);
	}
	CHECK_SYS(sendmsg(via, &mh, MSG_DONTWAIT) == (ssize_t)strlen(data), "sendmsg \"%s\"", data);
}

/* The next message (or `len` bytes of a stream) must be `want` with
 * exactly `nr` fds attached, returned in fds[]. */
static void expect_fds(int via, const char *want, size_t len, int *fds, size_t nr, const char *what)
{
	char ctl[CMSG_SPACE(MAX_FDS * sizeof(int))], buf[64] = { 0 };
	struct iovec iov = { buf, len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)
	};
	size_t got = 0;
	ssize_t n = recvmsg(via, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	CHECK_SYS(n >= 0, "%s: recvmsg", what);
	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n),
	      "%s: got %zd bytes \"%s\", want \"%s\"", what, n, buf, want);
	CHECK(!(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)), "%s: truncated", what);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		CHECK(c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS,
		      "%s: control message %d:%d", what, c->cmsg_level, c->cmsg_type);
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		CHECK(got + k <= nr, "%s: more than %zu fds", what, nr);
		memcpy(fds + got, CMSG_DATA(c), k * sizeof(int));
		got += k;
	}
	CHECK(got == nr, "%s: %zu fds attached, want %zu", what, got, nr);
}

/* Same open file description (shared offset and flags), by kcmp. */
static void expect_same(int a, int b, const char *what)
{
	pid_t me = getpid();
	CHECK(syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0,
	      "%s: fd %d is not the description of fd %d", what, a, b);
}

static off_t offset(int fd)
{
	off_t o = lseek(fd, 0, SEEK_CUR);
	CHECK_SYS(o >= 0, "lseek");
	return o;
}

static int scm_st[2], scm_dg[2], scm_sp[2], scm_inner, scm_pipe[2], scm_file, scm_srv, scm_loop;
static char scm_loop_name[64];
static char scm_lone_path[300], scm_srv_path[300];

static int open_file(const char *name, const char *data, off_t pos, char *path)
{
	char buf[300];
	snprintf(path ? path : buf, 300, "%s/%s", test_dir(), name);
	int fd = open(path ? path : buf, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0 && write(fd, data, strlen(data)) == (ssize_t)strlen(data) &&
			  lseek(fd, pos, SEEK_SET) == pos,
		  "file %s", name);
	return fd;
}

static void setup_scm(void)
{
	int q[2], two[2], lone;
	CHECK_SYS(!pipe(scm_pipe), "pipe");
	scm_file = open_file("scm-file", "0123456789", 4, NULL);
	lone = open_file("scm-lone", "abcdefgh", 3, scm_lone_path);
	/* a stream: a byte with a pipe end, one with a file and the other
	 * end, then plain bytes (a peek shows where a write with fds ends,
	 * not where it starts: scm-stream) */
	pair(SOCK_STREAM, scm_st);
	send_fds(scm_st[0], "f", &scm_pipe[0], 1, NULL);
	two[0] = scm_file;
	two[1] = scm_pipe[1];
	send_fds(scm_st[0], "x", two, 2, NULL);
	put(scm_st[0], "ab");
	put(scm_st[0], "cd");
	/* datagrams: the receiving socket itself and its peer in flight (a
	 * loop), a plain one, an empty one with a file only it holds */
	pair(SOCK_DGRAM, scm_dg);
	send_fds(scm_dg[0], "self", &scm_dg[1], 1, NULL);
	send_fds(scm_dg[0], "peer", &scm_dg[0], 1, NULL);
	put(scm_dg[0], "plain");
	send_fds(scm_dg[0], "", &lone, 1, NULL);
	close(lone);
	/* seqpacket: a socket only the message holds, its own queue holding
	 * data and an fd in flight */
	pair(SOCK_SEQPACKET, scm_sp);
	pair(SOCK_SEQPACKET, q);
	put(q[0], "inner");
	send_fds(q[0], "nested", &scm_pipe[1], 1, NULL);
	send_fds(scm_sp[0], "sock", &q[1], 1, NULL);
	close(q[1]);
	scm_inner = q[0];
	/* a bound dgram server, sent to by a client that is gone */
	snprintf(scm_srv_path, sizeof(scm_srv_path), "%s/scm-srv.sock", test_dir());
	scm_srv = bound(SOCK_DGRAM, scm_srv_path, 0);
	int cl = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(cl >= 0, "socket");
	send_fds(cl, "to-srv", &scm_pipe[0], 1, scm_srv_path);
	close(cl);
}

/*
 * A socket bound to an abstract name and connected to itself, in its own
 * queue: once the dumped process is killed, only that loop holds the
 * name, until a unix socket's release runs the kernel's collector (alone
 * in its process, as in scm-loop, nothing else releases one).
 */
static void setup_scm_loop(void)
{
	struct sockaddr_un sa;
	snprintf(scm_loop_name, sizeof(scm_loop_name), "cr-unix-sk-loop-%d", getpid());
	scm_loop = bound(SOCK_DGRAM, scm_loop_name, 1);
	socklen_t len = addr(&sa, scm_loop_name, 1);
	CHECK_SYS(!connect(scm_loop, (struct sockaddr *)&sa, len), "connect %s", scm_loop_name);
	send_fds(scm_loop, "loop", &scm_loop, 1, NULL);
}

static void check_scm_loop(void)
{
	int fds[MAX_FDS];
	expect_fds(scm_loop, "loop", 8, fds, 1, "abstract socket in its own queue");
	expect_same(fds[0], scm_loop, "abstract socket in its own queue");
	close(fds[0]);
	expect_name(scm_loop, scm_loop_name, 1, "abstract socket in its own queue");
}

static void check_scm_stream(void)
{
	int fds[MAX_FDS];
	char c = 0;
	expect_fds(scm_st[1], "f", 8, fds, 1, "stream, a pipe end");
	expect_same(fds[0], scm_pipe[0], "stream, a pipe end");
	CHECK_SYS(write(scm_pipe[1], "z", 1) == 1 && read(fds[0], &c, 1) == 1 && c == 'z',
		  "the pipe in flight");
	close(fds[0]);
	expect_fds(scm_st[1], "x", 8, fds, 2, "stream, two fds");
	expect_same(fds[0], scm_file, "stream, a file");
	expect_same(fds[1], scm_pipe[1], "stream, the other pipe end");
	CHECK(offset(fds[0]) == 4, "the file in flight at offset %lld, want 4",
	      (long long)offset(fds[0]));
	CHECK_SYS(lseek(scm_file, 7, SEEK_SET) == 7, "lseek");
	CHECK(offset(fds[0]) == 7, "the file's offset is not shared");
	close(fds[0]);
	close(fds[1]);
	expect_fds(scm_st[1], "abcd", 8, fds, 0, "stream, plain bytes");
	expect_empty(scm_st[1], "scm stream");
}

static void check_scm_dgram(void)
{
	int fds[MAX_FDS];
	struct stat a, b;
	char c = 0;
	expect_fds(scm_dg[1], "self", 8, fds, 1, "dgram, itself");
	expect_same(fds[0], scm_dg[1], "dgram, itself");
	close(fds[0]);
	expect_fds(scm_dg[1], "peer", 8, fds, 1, "dgram, its peer");
	expect_same(fds[0], scm_dg[0], "dgram, its peer");
	close(fds[0]);
	expect_fds(scm_dg[1], "plain", 8, fds, 0, "dgram, plain");
	expect_fds(scm_dg[1], "", 8, fds, 1, "dgram, empty with a file");
	CHECK_SYS(!fstat(fds[0], &a) && !stat(scm_lone_path, &b), "stat %s", scm_lone_path);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "not the file %s", scm_lone_path);
	CHECK(offset(fds[0]) == 3, "the file only in flight at offset %lld, want 3",
	      (long long)offset(fds[0]));
	CHECK_SYS(read(fds[0], &c, 1) == 1 && c == 'd', "read the file only in flight");
	close(fds[0]);
	expect_empty(scm_dg[1], "scm dgram");
}

static void check_scm_nested(void)
{
	int fds[MAX_FDS], sk;
	expect_fds(scm_sp[1], "sock", 8, fds, 1, "seqpacket, a socket");
	sk = fds[0];
	expect_fds(sk, "inner", 8, fds, 0, "the socket in flight, its data");
	expect_fds(sk, "nested", 8, fds, 1, "the socket in flight, its fd in flight");
	expect_same(fds[0], scm_pipe[1], "the socket in flight, its fd in flight");
	close(fds[0]);
	put(sk, "back");
	expect(scm_inner, "back", "the socket in flight, its peer");
	close(sk);
	expect_empty(scm_sp[1], "scm seqpacket");
	expect_fds(scm_srv, "to-srv", 8, fds, 1, "named dgram server");
	expect_same(fds[0], scm_pipe[0], "named dgram server");
	close(fds[0]);
}

static void check_scm(void)
{
	check_scm_stream();
	check_scm_dgram();
	check_scm_nested();
}

static void setup_scm_stream(void)
{
	pair(SOCK_STREAM, scm_st);
	put(scm_st[0], "ab");
	send_fds(scm_st[0], "cd", &scm_st[0], 1, NULL);
}

/* ------------------------------ pending ------------------------------ */

/* A listener with an accepted connection and two not accepted yet, from
 * a named client and an unnamed one (zdtm sockets00, sk-unix-listen01);
 * pending-data: a third whose client already wrote (refused by name). */
static int pl, pl_acc, pl_cli, pa, pb, pc;
static char pl_path[300], pa_path[300];

static void setup_pending(int with_data)
{
	snprintf(pl_path, sizeof(pl_path), "%s/pending.sock", test_dir());
	snprintf(pa_path, sizeof(pa_path), "%s/client-a.sock", test_dir());
	pl = bound(SOCK_STREAM, pl_path, 0);
	CHECK_SYS(!listen(pl, 8), "listen");
	pl_cli = connected(SOCK_STREAM, pl_path, 0);
	pl_acc = accept(pl, NULL, NULL);
	CHECK_SYS(pl_acc >= 0, "accept");
	put(pl_cli, "accepted");
	pa = bound(SOCK_STREAM, pa_path, 0);
	struct sockaddr_un sa;
	socklen_t len = addr(&sa, pl_path, 0);
	CHECK_SYS(!connect(pa, (struct sockaddr *)&sa, len), "connect a");
	pb = connected(SOCK_STREAM, pl_path, 0);
	if (with_data) {
		pc = connected(SOCK_STREAM, pl_path, 0);
		put(pc, "early");
	}
}

static void check_pending(void)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	expect(pl_acc, "accepted", "the accepted connection");
	int a = accept(pl, NULL, NULL), b;
	CHECK_SYS(a >= 0, "accept the first pending connection");
	memset(&sa, 0, sizeof(sa));
	CHECK_SYS(!getpeername(a, (struct sockaddr *)&sa, &len), "getpeername");
	CHECK(!strcmp(sa.sun_path, pa_path), "first pending connection from \"%s\", not %s",
	      sa.sun_path, pa_path);
	b = accept(pl, NULL, NULL);
	CHECK_SYS(b >= 0, "accept the second pending connection");
	put(pa, "from a");
	put(pb, "from b");
	expect(a, "from a", "first pending connection");
	expect(b, "from b", "second pending connection");
	put(b, "to b");
	expect(pb, "to b", "second pending connection, other way");
}

/* ------------------------- gone-dir, fifo-name ------------------------ */

static int gd_dg[4], gd_sp[5], gd_pair[2];
static char gd_dir[80], gd_sub[88], gd_dg_path[100], gd_sp_path[100], gd_pair_path[100];

static void setup_gone_dir(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	snprintf(gd_dir, sizeof(gd_dir), "%s/gone", test_dir());
	snprintf(gd_sub, sizeof(gd_sub), "%s/sub", gd_dir);
	CHECK_SYS(!mkdir(gd_dir, 0755) && !mkdir(gd_sub, 0755), "mkdir %s", gd_sub);
	snprintf(gd_dg_path, sizeof(gd_dg_path), "%s/dg.sock", gd_sub);
	for (int i = 0; i < 4; i += 2) {
		gd_dg[i] = bound(SOCK_DGRAM, gd_dg_path, 0);
		gd_dg[i + 1] = connected(SOCK_DGRAM, gd_dg_path, 0);
		put(gd_dg[i + 1], i ? "queued 2" : "queued 0");
		CHECK_SYS(!unlink(gd_dg_path), "unlink %s", gd_dg_path);
	}
	snprintf(gd_sp_path, sizeof(gd_sp_path), "%s/sp.sock", gd_sub);
	gd_sp[0] = bound(SOCK_SEQPACKET, gd_sp_path, 0);
	CHECK_SYS(!listen(gd_sp[0], 8), "listen");
	gd_sp[1] = connected(SOCK_SEQPACKET, gd_sp_path, 0);
	gd_sp[2] = accept(gd_sp[0], NULL, NULL);
	CHECK_SYS(gd_sp[2] >= 0, "accept");
	gd_sp[3] = connected(SOCK_SEQPACKET, gd_sp_path, 0); /* not accepted yet */
	CHECK_SYS(!unlink(gd_sp_path), "unlink %s", gd_sp_path);
	snprintf(gd_pair_path, sizeof(gd_pair_path), "%s/pair.sock", gd_sub);
	pair(SOCK_DGRAM, gd_pair);
	for (int i = 0; i < 2; i++) {
		len = addr(&sa, gd_pair_path, 0);
		CHECK_SYS(!bind(gd_pair[i], (struct sockaddr *)&sa, len) && !unlink(gd_pair_path),
			  "bind, unlink %s", gd_pair_path);
	}
	CHECK_SYS(!rmdir(gd_sub) && !rmdir(gd_dir), "rmdir %s", gd_sub);
}

/* Nothing the restore made is left in the test's directory. */
static void expect_no_leftover(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -q ckpt", test_dir());
	CHECK(system(cmd) != 0, "the restore left files in %s", test_dir());
}

static void check_gone_dir(void)
{
	for (int i = 0; i < 4; i += 2) {
		expect_name(gd_dg[i], gd_dg_path, 0, "dgram server in a removed directory");
		expect(gd_dg[i], i ? "queued 2" : "queued 0", "its queue");
	}
	for (int i = 0; i < 4; i += 2) {
		put(gd_dg[i + 1], "after");
		expect(gd_dg[i], "after", "from its own client");
		expect_empty(gd_dg[2 - i], "the other server");
	}
	expect_name(gd_sp[0], gd_sp_path, 0, "seqpacket listener in a removed directory");
	expect_name(gd_sp[2], gd_sp_path, 0, "its accepted socket");
	put(gd_sp[1], "to accepted");
	expect(gd_sp[2], "to accepted", "accepted connection");
	gd_sp[4] = accept(gd_sp[0], NULL, NULL);
	CHECK_SYS(gd_sp[4] >= 0, "accept the waiting connection");
	put(gd_sp[3], "waited");
	expect(gd_sp[4], "waited", "the connection accepted after the restore");
	expect_name(gd_pair[0], gd_pair_path, 0, "dgram pair in a removed directory");
	expect_name(gd_pair[1], gd_pair_path, 0, "its other end");
	put(gd_pair[1], "pair");
	expect(gd_pair[0], "pair", "dgram pair");
	CHECK(access(gd_dir, F_OK) && errno == ENOENT, "%s is back", gd_dir);
	expect_no_leftover();
}

static int ff_srv, ff_cli, ff_fifo;
static char ff_path[100];

static void setup_fifo_name(void)
{
	snprintf(ff_path, sizeof(ff_path), "%s/fifo-sk", test_dir());
	ff_srv = bound(SOCK_DGRAM, ff_path, 0);
	ff_cli = connected(SOCK_DGRAM, ff_path, 0);
	CHECK_SYS(!unlink(ff_path) && !mkfifo(ff_path, 0600), "mkfifo %s", ff_path);
	ff_fifo = open(ff_path, O_RDWR);
	CHECK_SYS(ff_fifo >= 0, "open %s", ff_path);
}

static void check_fifo_name(void)
{
	struct stat st;
	char c = 0;
	expect_name(ff_srv, ff_path, 0, "dgram server whose file is now a FIFO");
	put(ff_cli, "through");
	expect(ff_srv, "through", "its client");
	CHECK_SYS(!lstat(ff_path, &st) && S_ISFIFO(st.st_mode), "%s is no FIFO", ff_path);
	CHECK_SYS(write(ff_fifo, "f", 1) == 1 && read(ff_fifo, &c, 1) == 1 && c == 'f', "the FIFO");
	expect_no_leftover();
}

int main(int argc, char **argv)
{
	test_init();
	if (argc > 1 && !strcmp(argv[1], "pending")) {
		setup_pending(0);
		test_ready();
		test_wait_check();
		check_pending();
		pass();
	}
	if (argc > 1 && !strcmp(argv[1], "pending-data")) {
		setup_pending(1);
		test_ready();
		test_wait_check();
		int first = accept(pl, NULL, NULL), second = accept(pl, NULL, NULL);
		CHECK_SYS(first >= 0 && second >= 0, "accept");
		expect(accept(pl, NULL, NULL), "early", "the refused dump's pending data");
		pass();
	}
	if (argc > 1 && !strcmp(argv[1], "pingpong"))
		pingpong();
	if (argc > 1 && !strcmp(argv[1], "gone-dir")) {
		setup_gone_dir();
		test_ready();
		test_wait_check();
		check_gone_dir();
		pass();
	}
	if (argc > 1 && !strcmp(argv[1], "fifo-name")) {
		setup_fifo_name();
		test_ready();
		test_wait_check();
		check_fifo_name();
		pass();
	}
	/* no argument: all (the selfcheck) */
	int named = argc < 2 || !strcmp(argv[1], "named");
	int pairs = argc < 2 || !strcmp(argv[1], "pairs");
	int fds = argc < 2 || !strcmp(argv[1], "scm");
	int glued = argc > 1 && !strcmp(argv[1], "scm-stream");
	int loop = argc < 2 || !strcmp(argv[1], "scm-loop");
	CHECK(named || pairs || fds || glued || loop,
	      "usage: cr-unix-sk [pairs|named|scm|scm-loop|scm-stream|pending|pending-data|"
	      "gone-dir|fifo-name]");
	if (named)
		setup_named();
	if (pairs)
		setup_pairs();
	if (fds)
		setup_scm();
	if (glued)
		setup_scm_stream();
	if (loop)
		setup_scm_loop();
	test_ready();
	test_wait_check();
	if (named)
		check_named();
	if (pairs)
		check_pairs();
	if (fds)
		check_scm();
	if (loop)
		check_scm_loop();
	pass();
}
