/*
 * cr_pipe_ring: four processes pass a token around a ring of pipes.
 *
 * Process i reads from ring[i] and writes to ring[i + 1]; the root (i = 0)
 * forks the three others.  The token carries a sequence number that every
 * process checks (+4 per lap), so a lost, duplicated or replayed message is
 * caught.  After the restore the root sends a CHECK message around the
 * ring: each process verifies its pid, ppid, pgid and sid; then the token
 * must make more laps before a STOP message ends the ring.
 */
#include "crlib.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR 4
#define LAPS_BEFORE 1000
#define LAPS_AFTER 1000

enum cmd { TOKEN, CHECKIDS, STOP };

struct msg {
	uint32_t seq;
	int32_t cmd;
};

struct ident {
	pid_t pid, ppid, pgid, sid;
};

static int ring[NR][2];
static pid_t kids[NR];

static void get_ident(struct ident *id)
{
	id->pid = getpid();
	id->ppid = getppid();
	id->pgid = getpgrp();
	id->sid = getsid(0);
}

static void check_ident(int i, const struct ident *was)
{
	struct ident now;

	get_ident(&now);
	CHECK(now.pid == was->pid, "process %d: pid %d, was %d", i, now.pid, was->pid);
	/* the root's parent is whoever restored it */
	CHECK(i == 0 || now.ppid == was->ppid, "process %d: ppid %d, was %d", i, now.ppid,
	      was->ppid);
	CHECK(now.pgid == was->pgid, "process %d: pgid %d, was %d", i, now.pgid, was->pgid);
	CHECK(now.sid == was->sid, "process %d: sid %d, was %d", i, now.sid, was->sid);
}

static void recv_msg(int i, struct msg *m)
{
	ssize_t n = read_full(ring[i][0], m, sizeof(*m));

	CHECK_SYS(n >= 0, "process %d: read", i);
	CHECK(n == sizeof(*m), "process %d: ring broken (read %zd bytes)", i, n);
}

static void send_msg(int i, const struct msg *m)
{
	CHECK_SYS(write_full(ring[(i + 1) % NR][1], m, sizeof(*m)) == sizeof(*m),
		  "process %d: write", i);
}

static void keep_my_ends(int i)
{
	int j;

	for (j = 0; j < NR; j++) {
		if (j != i)
			close(ring[j][0]);
		if (j != (i + 1) % NR)
			close(ring[j][1]);
	}
}

static _Noreturn void member(int i)
{
	struct ident me;
	struct msg m;
	uint32_t last = 0;
	int first = 1;

	keep_my_ends(i);
	get_ident(&me);
	for (;;) {
		recv_msg(i, &m);
		if (m.cmd == TOKEN) {
			CHECK(first || m.seq == last + NR, "process %d: token %u after %u", i,
			      m.seq, last);
			first = 0;
			last = m.seq;
			m.seq++;
		} else if (m.cmd == CHECKIDS) {
			check_ident(i, &me);
		}
		send_msg(i, &m);
		if (m.cmd == STOP)
			exit(0);
	}
}

/* Root: one lap of the ring; returns the message that came back. */
static void lap(struct msg *m)
{
	struct pollfd pfd = { ring[0][0], POLLIN, 0 };
	uint32_t sent = m->seq;
	int ret;

	send_msg(0, m);
	for (;;) {
		ret = poll(&pfd, 1, 20000);
		if (ret > 0)
			break;
		CHECK_SYS(ret == 0 || errno == EINTR, "poll");
		CHECK(ret != 0, "ring stalled: message %u (cmd %d) is 20 s late", sent, m->cmd);
	}
	recv_msg(0, m);
	CHECK(m->cmd != TOKEN || m->seq == sent + NR - 1, "token %u came back as %u", sent,
	      m->seq);
	if (m->cmd == TOKEN) {
		m->seq++;
		cr_shared.progress++;
	}
}

static void run_laps(struct msg *m, int laps)
{
	while (laps-- > 0)
		lap(m);
}

int main(void)
{
	struct msg m = { 0, TOKEN };
	struct ident me;
	int i, status;

	test_init();
	for (i = 0; i < NR; i++)
		CHECK_SYS(!pipe(ring[i]), "pipe");
	for (i = 1; i < NR; i++) {
		kids[i] = fork();
		CHECK_SYS(kids[i] >= 0, "fork");
		if (kids[i] == 0)
			member(i);
	}
	keep_my_ends(0);
	get_ident(&me);
	run_laps(&m, LAPS_BEFORE);
	test_ready();
	while (!test_check_requested())
		lap(&m);

	check_ident(0, &me);
	for (i = 1; i < NR; i++) {
		CHECK(getpgid(kids[i]) == me.pgid, "child %d: pgid %d", kids[i], getpgid(kids[i]));
		CHECK(getsid(kids[i]) == me.sid, "child %d: sid %d", kids[i], getsid(kids[i]));
	}
	m.cmd = CHECKIDS;
	lap(&m);
	CHECK(m.cmd == CHECKIDS, "CHECK message came back as %d", m.cmd);
	m.cmd = TOKEN;
	run_laps(&m, LAPS_AFTER);
	m.cmd = STOP;
	lap(&m);
	for (i = 1; i < NR; i++) {
		CHECK_SYS(waitpid(kids[i], &status, 0) == kids[i], "waitpid %d", kids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status 0x%x",
		      kids[i], status);
	}
	printf("%" PRIu64 " laps\n", cr_shared.progress);
	pass();
}
