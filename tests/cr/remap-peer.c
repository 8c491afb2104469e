/*
 * remap-peer: the two ends of one TCP connection for inet-remap.sh
 * (restore --inet-map): each end sends the counter 0, 1, ... N-1 (uint32)
 * as fast as the other lets it, and reads the other's slowly (8 KiB every
 * 10 ms, small socket buffers), so that both queues are full whenever the
 * ends are dumped.  Every value read must be the next one: a byte lost,
 * duplicated or reset fails the run.  While DIR/hold exists an end does not
 * read at all (the script holds both ends from before the first dump to
 * after the restore, so that the queues stay full across the gap between
 * the two dumps, whatever its length).  Once both directions are whole, an
 * end shuts its side, waits for the other's FIN, and writes DIR/ROLE.result:
 * "ok LOCAL PEER" (its addresses as getsockname/getpeername give them
 * now) or "FAIL why".  DIR/ROLE.ready says that data flows both ways.
 *
 *   remap-peer server ADDR PORT DIR    listen on ADDR:PORT, one connection
 *   remap-peer client ADDR PORT DIR    connect to ADDR:PORT
 *   remap-peer in NETNS-PATH [as UID:GID] server|client|exec CMD ...
 *                                      the same (or CMD), in that network
 *                                      namespace, as that user (run_in)
 *   remap-peer reaper CMD [ARGS...]    run CMD as a child subreaper's child:
 *                                      the restored trees (ckptctl restore
 *                                      -d) are reparented to us and reaped
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_VALUES (1u << 20) /* 4 MiB each way: ~5 s at the reader's pace */
#define READ_CHUNK 8192
#define BUF_SIZE 65536

static const char *dir, *role;

static void result(const char *fmt, const char *a, const char *b)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%s.result", dir, role);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fprintf(f, fmt, a, b);
	fputc('\n', f);
	fclose(f);
	rename(tmp, path);
}

static void fail(const char *why)
{
	char e[64];
	snprintf(e, sizeof(e), "%s", strerror(errno));
	result("FAIL %s: %s", why, e);
	exit(1);
}

static void mark_ready(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.ready", dir, role);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
}

/* A small receive buffer: the reader's pace is the stream's.  (Not the
 * send buffer: a send queue overshoots a locked SO_SNDBUF, and the
 * restore refuses a queue that does not fit it.) */
static void small_buffers(int sk)
{
	int v = BUF_SIZE;
	setsockopt(sk, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

/* ADDR (IPv4 or IPv6) and PORT into *ss; its length. */
static socklen_t make_addr(const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
		fail("address");
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	return sizeof(*s6);
}

static int open_conn(int server, const char *addr, int port)
{
	struct sockaddr_storage sa;
	socklen_t len = make_addr(addr, port, &sa);
	int sk = socket(sa.ss_family, SOCK_STREAM, 0), one = 1;
	if (sk < 0)
		fail("socket");
	small_buffers(sk);
	if (!server) {
		for (int i = 0; connect(sk, (struct sockaddr *)&sa, len); i++)
			if (i > 100 || usleep(50000))
				fail("connect");
		return sk;
	}
	setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(sk, (struct sockaddr *)&sa, len) || listen(sk, 1))
		fail("bind/listen");
	int c = accept(sk, NULL, NULL);
	if (c < 0)
		fail("accept");
	/* the listener stays open: it is dumped and re-bound too */
	return c;
}

struct stream {
	uint32_t sent, got; /* values */
	uint8_t out[4 * 1024], in[READ_CHUNK + 4];
	size_t out_off, out_len, in_len;
};

static void send_some(int sk, struct stream *s)
{
	while (s->sent < N_VALUES || s->out_off < s->out_len) {
		if (s->out_off == s->out_len) {
			uint32_t *v = (uint32_t *)s->out;
			size_t n = 0;
			while (n < sizeof(s->out) / 4 && s->sent < N_VALUES)
				v[n++] = s->sent++;
			s->out_off = 0;
			s->out_len = n * 4;
		}
		ssize_t w = send(sk, s->out + s->out_off, s->out_len - s->out_off, MSG_DONTWAIT);
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0)
			fail("send");
		s->out_off += (size_t)w;
	}
}

/* One slow read; the values it completes must be the next ones. */
static void read_some(int sk, struct stream *s)
{
	ssize_t r = recv(sk, s->in + s->in_len, READ_CHUNK, MSG_DONTWAIT);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r == 0) {
		errno = 0;
		fail("end of stream before every value");
	}
	if (r < 0)
		fail("recv");
	s->in_len += (size_t)r;
	size_t n = s->in_len / 4;
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, s->in + 4 * i, 4);
		if (v != s->got || s->got >= N_VALUES) {
			char a[64], b[64];
			snprintf(a, sizeof(a), "%u", v);
			snprintf(b, sizeof(b), "%u", s->got);
			result("FAIL got %s, expected %s", a, b);
			exit(1);
		}
		s->got++;
	}
	memmove(s->in, s->in + 4 * n, s->in_len - 4 * n);
	s->in_len -= 4 * n;
}

static void wait_eof(int sk)
{
	char c;
	struct pollfd p = { .fd = sk, .events = POLLIN };
	if (poll(&p, 1, 60000) != 1 || recv(sk, &c, 1, 0) != 0)
		fail("no end of stream after every value");
}

/* "10.78.0.1:5000", "[fd78::1]:5000" */
static void name_of(int sk, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	if (peer ? getpeername(sk, (struct sockaddr *)&ss, &l)
		 : getsockname(sk, (struct sockaddr *)&ss, &l))
		fail("getsockname/getpeername");
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
		return;
	}
	struct sockaddr_in *s4 = (void *)&ss;
	inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
	snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
}

static int held(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/hold", dir);
	return !access(path, F_OK);
}

static int exchange(int sk)
{
	static struct stream s;
	int ready = 0;
	alarm(120);
	while (s.got < N_VALUES || s.sent < N_VALUES || s.out_off < s.out_len) {
		send_some(sk, &s);
		if (!held())
			read_some(sk, &s);
		if (!ready && s.got > 1000 && s.sent > 1000)
			mark_ready(), ready = 1;
		usleep(10000);
	}
	/* before the FINs: a closed socket has no peer */
	char local[64], peer[64];
	name_of(sk, 0, local, sizeof(local));
	name_of(sk, 1, peer, sizeof(peer));
	shutdown(sk, SHUT_WR);
	wait_eof(sk);
	result("ok %s %s", local, peer);
	return 0;
}

/* in NETNS [as UID:GID] (exec CMD...|server ...|client ...): into that
 * network namespace (nsenter forks: a tree's root must be the program
 * itself), as that user (no groups), then exec: CMD, or ourselves again
 * (a process whose uid changed is not dumpable until its next exec). */
static int run_in(char **argv)
{
	int ns = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNET)) {
		perror(argv[0]);
		return 2;
	}
	close(ns);
	argv++;
	if (argv[0] && argv[1] && !strcmp(argv[0], "as")) {
		unsigned uid, gid;
		if (sscanf(argv[1], "%u:%u", &uid, &gid) != 2 || setgroups(0, NULL) ||
		    setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) {
			perror("as");
			return 2;
		}
		argv += 2;
	}
	if (argv[0] && !strcmp(argv[0], "exec") && argv[1]) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		return 127;
	}
	argv[-1] = "remap-peer"; /* "in" or the uid: ours to reuse */
	execv("/proc/self/exe", argv - 1);
	perror("/proc/self/exe");
	return 127;
}

/* reaper: the script is our child; so is each tree it restores (-d). */
static int reap(char **argv)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t child = fork();
	if (child == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int status = 0, st;
	pid_t p;
	while ((p = wait(&st)) > 0 || (p < 0 && errno == EINTR))
		if (p == child)
			status = st;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "reaper"))
		return reap(argv + 2);
	if (argc >= 3 && !strcmp(argv[1], "in"))
		return run_in(argv + 2);
	if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: remap-peer server|client ADDR PORT DIR | reaper CMD...\n");
		return 2;
	}
	/* the tree is ours alone: no fd of whoever started us (ctest's pipes) */
	syscall(SYS_close_range, 3, ~0U, 0);
	role = argv[1];
	dir = argv[4];
	int sk = open_conn(!strcmp(role, "server"), argv[2], atoi(argv[3]));
	return exchange(sk);
}
