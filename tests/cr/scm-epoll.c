/*
 * cr_scm_epoll_*: an epoll that only socket queues hold (fds in flight,
 * SCM_RIGHTS; zdtm scm05), libckpt/epoll.c.  One program, one case per
 * argument:
 *
 *   alone    an epoll sent twice in a dgram queue and closed, watching a
 *            dgram socket with a datagram queued (level-triggered), a pipe
 *            end with data (edge-triggered) that only a third message
 *            holds, and an eventfd added as a number it no longer has.
 *            After the restore both messages carry the one epoll, with
 *            both events pending and their data, the edge-triggered one
 *            once; the pipe's new data and the eventfd's count wake it
 *            again; the eventfd's item is keyed by the number it was
 *            added with (EPOLL_CTL_DEL through that number).
 *   outside  the same epoll watching an eventfd that only a process
 *            outside the tree holds: refused by name
 *            (bad_dump_scm_epoll_outside).
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#define EFD_AT 60     /* the eventfd's number when added */
#define EFD_NOW 61    /* and since */
#define D_SOCK 0x1111 /* the items' data */
#define D_PIPE 0x2222
#define D_EFD 0x3333

static int carrier[2];  /* dgram pair: the epoll waits in carrier[1]'s queue */
static int watched[2];  /* dgram pair: watched[1] holds a datagram, watched */
static int pipe_w = -1; /* the write end of the watched pipe */

static void send_fd(int via, const char *data, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	CHECK_SYS(sendmsg(via, &mh, MSG_DONTWAIT) == (ssize_t)strlen(data), "sendmsg %s", data);
}

/* The next message must be `want` with one fd, returned. */
static int recv_fd(int via, const char *want)
{
	char ctl[CMSG_SPACE(sizeof(int))], buf[32] = { 0 };
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(via, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	CHECK_SYS(n >= 0, "recvmsg %s", want);
	CHECK(!strcmp(buf, want), "message \"%s\", want \"%s\"", buf, want);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	CHECK(c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)),
	      "message %s: no fd attached", want);
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

static void watch(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	CHECK_SYS(!epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl add %d", fd);
}

/* The epoll's pending events, as a bit per item (1 sock, 2 pipe, 4 efd). */
static int pending(int ep)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 0), got = 0;
	CHECK_SYS(n >= 0, "epoll_wait");
	for (int i = 0; i < n; i++) {
		CHECK(ev[i].events == EPOLLIN, "item %llx: events %x", (unsigned long long)ev[i].data.u64,
		      ev[i].events);
		got |= ev[i].data.u64 == D_SOCK ? 1 : ev[i].data.u64 == D_PIPE ? 2 :
		       ev[i].data.u64 == D_EFD ? 4 : 8;
	}
	return got;
}

/* An epoll with three items, sent twice on carrier[0] and closed. */
static int setup_epoll(void)
{
	int ep = epoll_create1(0), p[2];
	CHECK_SYS(ep >= 0 && !pipe(p), "epoll_create1, pipe");
	CHECK_SYS(!socketpair(AF_UNIX, SOCK_DGRAM, 0, carrier) &&
			  !socketpair(AF_UNIX, SOCK_DGRAM, 0, watched),
		  "socketpair");
	CHECK_SYS(send(watched[0], "x", 1, 0) == 1 && write(p[1], "y", 1) == 1, "send, write");
	watch(ep, watched[1], EPOLLIN, D_SOCK);
	watch(ep, p[0], EPOLLIN | EPOLLET, D_PIPE);
	send_fd(carrier[0], "ep1", ep);
	send_fd(carrier[0], "ep2", ep);
	send_fd(carrier[0], "pipe", p[0]);
	close(p[0]);
	pipe_w = p[1];
	return ep;
}

static void alone_setup(void)
{
	int ep = setup_epoll();
	move_fd(eventfd(0, 0), EFD_AT);
	watch(ep, EFD_AT, EPOLLIN, D_EFD);
	move_fd(EFD_AT, EFD_NOW); /* the item keeps its number, EFD_AT */
	close(ep);
}

static void alone_check(void)
{
	int ep = recv_fd(carrier[1], "ep1"), again = recv_fd(carrier[1], "ep2");
	int r = recv_fd(carrier[1], "pipe");
	pid_t me = getpid();
	char c = 0;
	uint64_t one = 1;
	CHECK(syscall(SYS_kcmp, me, me, KCMP_FILE, ep, again) == 0, "two epolls, not one");
	int got = pending(ep);
	CHECK(got == 3, "pending items %x after the restore, want 3 (socket, pipe)", got);
	CHECK((got = pending(ep)) == 1, "pending items %x, want 1 (the pipe's edge is gone)", got);
	CHECK_SYS(read(r, &c, 1) == 1 && c == 'y', "the pipe in flight: its data");
	CHECK_SYS(write(pipe_w, "z", 1) == 1 && write(EFD_NOW, &one, 8) == 8, "write");
	CHECK((got = pending(ep)) == 7, "pending items %x, want 7 (all three)", got);
	CHECK(recv(watched[1], &c, 1, 0) == 1 && c == 'x', "the watched socket's datagram");
	move_fd(dup(EFD_NOW), EFD_AT);
	CHECK_SYS(!epoll_ctl(ep, EPOLL_CTL_DEL, EFD_AT, NULL), "EPOLL_CTL_DEL of fd %d", EFD_AT);
	CHECK((got = pending(ep)) == 0, "pending items %x, want none", got);
	CHECK_SYS(write(pipe_w, "w", 1) == 1, "write");
	CHECK((got = pending(ep)) == 2, "pending items %x, want 2 (the pipe's new edge)", got);
	pass();
}

/* A process outside the tree (its parent gone) that holds `fd` alone of
 * the test's fds, until the test ends (a pidfd of it, polled: a pipe to
 * the test would be refused first, its other end outside the tree). */
static void start_holder(int fd)
{
	int ready[2];
	char c;
	pid_t test = getpid();
	CHECK_SYS(!pipe(ready), "pipe");
	pid_t mid = fork();
	CHECK_SYS(mid >= 0, "fork");
	if (!mid) {
		if (fork() == 0) {
			struct pollfd p = { (int)syscall(SYS_pidfd_open, test, 0), POLLIN, 0 };
			for (int i = 0; i < 1024; i++)
				if (i != fd && i != p.fd)
					close(i); /* ready[1] too: in place */
			poll(&p, 1, 120 * 1000);
			_exit(0);
		}
		_exit(0);
	}
	close(ready[1]);
	CHECK_SYS(waitpid(mid, NULL, 0) == mid && read(ready[0], &c, 1) == 0, "the holder");
	close(ready[0]);
}

/* The epoll also watches an eventfd that only that process holds. */
static void outside_setup(void)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK_SYS(efd >= 0, "eventfd");
	start_holder(efd);
	int ep = setup_epoll();
	watch(ep, efd, EPOLLIN, D_EFD);
	close(efd);
	close(ep);
}

static void outside_check(void)
{
	int ep = recv_fd(carrier[1], "ep1");
	CHECK(pending(ep) == 3, "the refused dump changed the epoll");
	pass();
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "alone", alone_setup, alone_check },
		{ "outside", outside_setup, outside_check },
	};
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	return 0;
}
