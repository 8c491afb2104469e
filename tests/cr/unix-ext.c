/*
 * cr_unix_ext_dgram, cr_unix_ext_stream: unix sockets whose peer is a
 * server outside the tree (cr-run --helper cr-sk-helper, in the test's
 * dir; it answers "echo:" + datagram, or echoes a stream).
 *
 *   cr-unix-ext [dgram]: a client bound to client.sock and connected to
 *     ext-dgram.sock has one answer waiting in its queue when it is dumped
 *     (with --ext-unix-sk).  After the restore the answer is still there,
 *     and the client, reconnected to the server's path, talks to it again.
 *     Without --ext-unix-sk the dump is refused (bad_dump_ext_unix).
 *   cr-unix-ext stream: a stream client of ext-stream.sock, dumped with
 *     --ext-unix-sk; it writes its socket's name (socket:[INO]) into the
 *     file inherit-resource, and cr-run --inherit-unix hands the restore a
 *     new connection to the server for it (--inherit-fd).  After the
 *     restore the client talks to the server over it.
 */
#include "crlib.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int stream;

static void roundtrip(int fd, const char *msg, int read_it)
{
	char buf[128] = { 0 }, want[128];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	CHECK_SYS(send(fd, msg, strlen(msg), 0) == (ssize_t)strlen(msg), "send %s", msg);
	CHECK_SYS(poll(&p, 1, 10000) == 1, "no answer to %s", msg);
	if (!read_it)
		return;
	snprintf(want, sizeof(want), stream ? "%s" : "echo:%s", msg);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	CHECK(n == (ssize_t)strlen(want) && !strcmp(buf, want), "answer \"%s\", want \"%s\"", buf,
	      want);
}

static int dgram_client(void)
{
	struct sockaddr_un me = { .sun_family = AF_UNIX, .sun_path = "client.sock" };
	struct sockaddr_un srv = { .sun_family = AF_UNIX, .sun_path = "ext-dgram.sock" };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&me, sizeof(me)), "bind client.sock");
	CHECK_SYS(!connect(fd, (struct sockaddr *)&srv, sizeof(srv)), "connect ext-dgram.sock");
	roundtrip(fd, "one", 1);
	roundtrip(fd, "two", 0); /* its answer waits in the queue */
	return fd;
}

static int stream_client(void)
{
	struct sockaddr_un srv = { .sun_family = AF_UNIX, .sun_path = "ext-stream.sock" };
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(fd >= 0 && !connect(fd, (struct sockaddr *)&srv, sizeof(srv)), "connect");
	roundtrip(fd, "one", 1);
	CHECK_SYS(!fstat(fd, &st), "fstat");
	FILE *f = fopen("inherit-resource", "w");
	CHECK_SYS(f && fprintf(f, "socket:[%lu]\n", (unsigned long)st.st_ino) > 0 && !fclose(f),
		  "write inherit-resource");
	return fd;
}

int main(int argc, char **argv)
{
	char buf[64] = { 0 };

	test_init();
	stream = argc > 1 && !strcmp(argv[1], "stream");
	int fd = stream ? stream_client() : dgram_client();
	test_ready();
	test_wait_check();
	if (!stream) {
		CHECK_SYS(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) == 8, "queued answer");
		CHECK(!strcmp(buf, "echo:two"), "queued answer \"%s\"", buf);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "after-%d", i);
		roundtrip(fd, buf, 1);
	}
	pass();
}
