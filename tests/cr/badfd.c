/*
 * bad_dump_eventfd / _socketpair / _epoll: a dump that must be refused.
 *
 * The program holds an fd of a kind the engine does not support, at fd 42
 * (cr-run expects the error line to name it), with some state in it.  It
 * counts in a loop, as cr_counter does.  The dump must be refused; then,
 * on the check signal, the program verifies that it was left untouched:
 * the fd still holds its state, /proc/self/fd and /proc/self/maps are as
 * before (no parasite left behind), it is not traced, and its registers
 * and counter are consistent.
 */
#include "crlib.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD 42

static int pipefd[2];

static void move_to(int fd, int to)
{
	CHECK_SYS(fd >= 0 && dup2(fd, to) == to, "dup2");
	if (fd != to)
		close(fd);
}

static void setup(const char *kind)
{
	int sk[2];
	uint64_t v = 7;
	struct epoll_event ev = { .events = EPOLLIN };

	if (!strcmp(kind, "eventfd")) {
		move_to(eventfd(0, 0), FD);
		CHECK_SYS(write(FD, &v, 8) == 8, "write eventfd");
	} else if (!strcmp(kind, "socketpair")) {
		CHECK_SYS(!socketpair(AF_UNIX, SOCK_STREAM, 0, sk), "socketpair");
		move_to(sk[0], FD);
		move_to(sk[1], FD + 1);
		CHECK_SYS(write(FD + 1, "ping", 4) == 4, "write socket");
	} else if (!strcmp(kind, "epoll")) {
		CHECK_SYS(!pipe(pipefd), "pipe");
		move_to(epoll_create1(0), FD);
		ev.data.u64 = 0xfeed;
		CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, pipefd[0], &ev), "epoll_ctl");
		CHECK_SYS(write(pipefd[1], "x", 1) == 1, "write pipe");
	} else {
		fail("unknown fd kind %s", kind);
	}
}

static void check_fd(const char *kind)
{
	struct epoll_event ev;
	uint64_t v = 0;
	char buf[5] = { 0 };

	if (!strcmp(kind, "eventfd")) {
		CHECK_SYS(read(FD, &v, 8) == 8, "read eventfd");
		CHECK(v == 7, "eventfd counter %" PRIu64 ", was 7", v);
	} else if (!strcmp(kind, "socketpair")) {
		CHECK_SYS(read(FD, buf, 4) == 4, "read socket");
		CHECK(!strcmp(buf, "ping"), "socket data \"%s\"", buf);
	} else {
		CHECK(epoll_wait(FD, &ev, 1, 0) == 1 && ev.data.u64 == 0xfeed,
		      "epoll lost its watch");
	}
}

int main(int argc, char **argv)
{
	const char *maps_was, *fds_was, *status;
	uint64_t c = 0, shadow = 7;

	test_init();
	CHECK(argc == 2, "usage: cr-badfd eventfd|socketpair|epoll");
	setup(argv[1]);
	fds_was = snapshot_fds(0);
	maps_was = snapshot_file("/proc/self/maps", 0);
	test_ready();
	while (!test_check_requested()) {
		c++;
		shadow += 3;
		__asm__ volatile("" : "+r"(c), "+r"(shadow));
	}
	CHECK(shadow == 3 * c + 7, "registers broken");
	CHECK(!strcmp(snapshot_fds(1), fds_was), "fds changed:\n%s\nwere:\n%s", snapshot_fds(1),
	      fds_was);
	CHECK(!strcmp(snapshot_file("/proc/self/maps", 1), maps_was),
	      "mappings changed:\n%s\nwere:\n%s", snapshot_file("/proc/self/maps", 1), maps_was);
	status = snapshot_file("/proc/self/status", 2);
	CHECK(strstr(status, "\nTracerPid:\t0\n"), "traced after the refused dump");
	check_fd(argv[1]);
	pass();
}
