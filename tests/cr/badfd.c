/*
 * bad_dump_io_uring / _perf / _epoll_gone / _netlink / _udp_corked /
 * _udp_unread: a dump that must be refused.  (netlink: a socket with the
 * kernel's answer not read yet, which nothing could put back.)
 *
 * The program holds an fd of a kind the engine does not support, at fd 42
 * (cr-run expects the error line to name it), with some state in it.
 * (epoll-gone: an epoll watching a pipe that only a child holds now: the
 * kernel keeps the watch while the file lives, but the restore can only
 * add it again through a file the epoll's owner holds.)  It
 * counts in a loop, as cr_counter does.  The dump must be refused; then,
 * on the check signal, the program verifies that it was left untouched:
 * the fd still holds its state, /proc/self/fd and /proc/self/maps are as
 * before (no parasite left behind), it is not traced, and its registers
 * and counter are consistent.
 */
#include "crlib.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/netlink.h>
#include <unistd.h>

#define FD 42

static int pipefd[2];

static int make_io_uring(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	return (int)syscall(SYS_io_uring_setup, 4, &p);
}

/* Counts this task's CPU time: it only grows. */
static int make_perf(void)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_TASK_CLOCK;
	a.exclude_kernel = a.exclude_hv = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static int link_is(int fd, const char *want)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = 0;
	return !strcmp(link, want);
}

/* A UDP socket connected to itself, with a datagram held back by UDP_CORK. */
static int corked_udp(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&a, len) &&
			  !getsockname(fd, (struct sockaddr *)&a, &len) &&
			  !connect(fd, (struct sockaddr *)&a, len) &&
			  !setsockopt(fd, IPPROTO_UDP, UDP_CORK, &one, sizeof(one)) &&
			  write(fd, "corked", 6) == 6,
		  "corked UDP socket");
	return fd;
}

/* A UDP socket connected to itself, with a datagram it has not read. */
static int unread_udp(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(fd >= 0 && !bind(fd, (struct sockaddr *)&a, len) &&
			  !getsockname(fd, (struct sockaddr *)&a, &len) &&
			  !connect(fd, (struct sockaddr *)&a, len) && write(fd, "unread", 6) == 6,
		  "UDP socket");
	return fd;
}

/* A netlink socket holding the kernel's answer (an ACK) it has not read. */
static int unread_netlink(void)
{
	struct nlmsghdr h = { .nlmsg_len = sizeof(h), .nlmsg_type = NLMSG_NOOP,
			      .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 42 };
	int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(fd >= 0 && send(fd, &h, sizeof(h), 0) == sizeof(h), "netlink request");
	return fd;
}

static void setup(const char *kind)
{
	int sk[2];
	struct epoll_event ev = { .events = EPOLLIN };

	if (!strcmp(kind, "io_uring")) {
		move_fd(make_io_uring(), FD);
	} else if (!strcmp(kind, "perf")) {
		move_fd(make_perf(), FD);
	} else if (!strcmp(kind, "socketpair")) {
		CHECK_SYS(!socketpair(AF_UNIX, SOCK_STREAM, 0, sk), "socketpair");
		move_fd(sk[0], FD);
		move_fd(sk[1], FD + 1);
		CHECK_SYS(write(FD + 1, "ping", 4) == 4, "write socket");
	} else if (!strcmp(kind, "netlink")) {
		move_fd(unread_netlink(), FD);
	} else if (!strcmp(kind, "udp-corked")) {
		move_fd(corked_udp(), FD);
	} else if (!strcmp(kind, "udp-unread")) {
		move_fd(unread_udp(), FD);
	} else if (!strcmp(kind, "epoll-gone")) {
		CHECK_SYS(!pipe(pipefd), "pipe");
		move_fd(epoll_create1(0), FD);
		ev.data.u64 = 0xfeed;
		CHECK_SYS(!epoll_ctl(FD, EPOLL_CTL_ADD, pipefd[0], &ev), "epoll_ctl");
		CHECK_SYS(write(pipefd[1], "x", 1) == 1, "write pipe");
		pid_t kid = fork();
		CHECK_SYS(kid >= 0, "fork");
		if (!kid) { /* holds the pipe, which we close: the watch stays */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		close(pipefd[0]);
	} else {
		fail("unknown fd kind %s", kind);
	}
}

static void check_fd(const char *kind)
{
	struct epoll_event ev;
	uint64_t v = 0;
	char buf[5] = { 0 };

	if (!strcmp(kind, "io_uring")) {
		CHECK(link_is(FD, "anon_inode:[io_uring]"), "io_uring lost");
	} else if (!strcmp(kind, "perf")) {
		CHECK(link_is(FD, "anon_inode:[perf_event]"), "perf event lost");
		CHECK_SYS(read(FD, &v, 8) == 8, "read perf counter");
		CHECK(v > 0, "perf counter %" PRIu64, v);
	} else if (!strcmp(kind, "socketpair")) {
		CHECK_SYS(read(FD, buf, 4) == 4, "read socket");
		CHECK(!strcmp(buf, "ping"), "socket data \"%s\"", buf);
	} else if (!strcmp(kind, "udp-unread")) {
		CHECK_SYS(read(FD, buf, 5) == 5 && !strcmp(buf, "unrea"), "the unread datagram");
	} else if (!strcmp(kind, "udp-corked")) {
		int zero = 0;
		CHECK_SYS(!setsockopt(FD, IPPROTO_UDP, UDP_CORK, &zero, sizeof(zero)), "uncork");
		CHECK_SYS(read(FD, buf, 5) == 5 && !strcmp(buf, "corke"), "the corked datagram");
	} else if (!strcmp(kind, "netlink")) {
		int proto = -1;
		socklen_t len = sizeof(proto);
		CHECK_SYS(!getsockopt(FD, SOL_SOCKET, SO_PROTOCOL, &proto, &len), "SO_PROTOCOL");
		CHECK(proto == NETLINK_ROUTE, "netlink protocol %d", proto);
		char ack[64];
		struct nlmsghdr *h = (struct nlmsghdr *)ack;
		CHECK_SYS(recv(FD, ack, sizeof(ack), MSG_DONTWAIT) >= (ssize_t)sizeof(*h), "the ACK");
		CHECK(h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == 42, "the ACK lost");
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
	CHECK(argc == 2,
	      "usage: cr-badfd io_uring|perf|epoll-gone|socketpair|netlink|udp-corked|udp-unread");
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
