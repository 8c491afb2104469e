/*
 * cr_unix_pairs, cr_unix_named: unix sockets across a checkpoint.
 *
 *   cr-unix-sk pairs: socketpairs (stream, dgram, seqpacket) with data
 *     queued both ways, a stream pair shut down for writing one way, a
 *     stream socket and a dgram socket whose peer is closed with data still
 *     to read (sending on the dgram one fails: ECONNREFUSED), and the
 *     options SO_RCVBUF, SO_SNDBUF, SO_PASSCRED.  After the restore every
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
 *   cr-unix-sk pingpong: a parent and its child bounce counters over a
 *     stream socketpair, four always in flight, through the dump; after the
 *     restore not one is lost or repeated.
 *   cr-unix-sk scm: a socketpair holding an fd in flight (SCM_RIGHTS): the
 *     dump must be refused (bad_dump_unix_scm), the message left in place.
 */
#include "crlib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static int st[2], dg[2], sp[2], sh[2], lone[2], lone_dg[2], fresh_st, fresh_sp;
static int rcvbuf, sndbuf;

static void setup_pairs(void)
{
	int one = 1, v = 65536;
	pair(SOCK_STREAM, st);
	pair(SOCK_DGRAM, dg);
	pair(SOCK_SEQPACKET, sp);
	pair(SOCK_STREAM, sh);
	pair(SOCK_STREAM, lone);
	pair(SOCK_DGRAM, lone_dg);
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
	put(lone_dg[0], "lone datagram"); /* zdtm socket_close_data */
	close(lone_dg[0]);
	CHECK_SYS(!setsockopt(st[1], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), "SO_RCVBUF");
	v = 50000;
	CHECK_SYS(!setsockopt(st[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), "SO_SNDBUF");
	CHECK_SYS(!setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), "SO_PASSCRED");
	rcvbuf = getint(st[1], SO_RCVBUF);
	sndbuf = getint(st[1], SO_SNDBUF);
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
	expect(lone_dg[1], "lone datagram", "dgram pair, other end closed");
	CHECK(send(lone_dg[1], "x", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED,
	      "dgram pair, other end closed: send did not fail with ECONNREFUSED");
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

static int scm[2];

static void setup_scm(void)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { "fd", 2 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int fd = 1;
	pair(SOCK_STREAM, scm);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	CHECK_SYS(sendmsg(scm[0], &mh, 0) == 2, "sendmsg SCM_RIGHTS");
}

static void check_scm(void)
{
	char ctl[CMSG_SPACE(sizeof(int))], buf[4] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)
	};
	CHECK_SYS(recvmsg(scm[1], &mh, MSG_DONTWAIT) == 2, "recvmsg");
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	CHECK(c && c->cmsg_type == SCM_RIGHTS && !strcmp(buf, "fd"), "the fd in flight is lost");
	expect_empty(scm[1], "scm pair");
}

int main(int argc, char **argv)
{
	test_init();
	if (argc > 1 && !strcmp(argv[1], "pingpong"))
		pingpong();
	/* no argument: all (the selfcheck) */
	int named = argc < 2 || !strcmp(argv[1], "named");
	int pairs = argc < 2 || !strcmp(argv[1], "pairs");
	int fds = argc < 2 || !strcmp(argv[1], "scm");
	CHECK(named || pairs || fds, "usage: cr-unix-sk [pairs|named|scm]");
	if (named)
		setup_named();
	if (pairs)
		setup_pairs();
	if (fds)
		setup_scm();
	test_ready();
	test_wait_check();
	if (named)
		check_named();
	if (pairs)
		check_pairs();
	if (fds)
		check_scm();
	pass();
}
