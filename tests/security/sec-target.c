/*
 * sec-target: the processes attackers dump, edit and restore in
 * tests/security.  One mode per attack; each prints "ready" once set up,
 * then sleeps in steps of 0.1 s (a restore resumes it there):
 *
 *   relay TRIGGER     holds a unix socketpair (fds 3, 4).  When the file
 *                     TRIGGER appears it prints fd 3's peer credentials
 *                     ("peer uid U pid P"), sends on fd 3 a restore
 *                     request (rpc.proto, detached) of the directory named
 *                     in TRIGGER's first line, and prints the final reply:
 *                     "reply result R pid P error E".  (Through a socket
 *                     connected to ckptd by a root worker, that request
 *                     would be root's.)
 *   shm KEY TEXT      creates and attaches a 0600 System V segment of
 *                     4 KiB with KEY, writes TEXT in it; every step prints
 *                     "shm: " and the segment's first line.
 *   seccomp           installs a filter (no_new_privs) that makes mkdir(2)
 *                     fail with EPERM, then sleeps.
 *   seccomp-setuid UID GID  (started by root) installs a filter without
 *                     no_new_privs (mkdir(2) fails with EPERM), becomes
 *                     UID/GID (all caps gone, dumpable again), then sleeps.
 *   confine CMD...    runs CMD under a filter (acct(2) fails with ENOTNAM)
 *                     and no_new_privs: a site's confinement of a user.
 *   hold PATH...      opens each PATH (read-only, non-blocking; a FIFO
 *                     read-write) on fds 3, 4, ... and sleeps.
 *   listen PORT       a TCP socket listening on 127.0.0.1:PORT (fd 3).
 *   loop PORT         the same, and a connection to it (fd 4) with its
 *                     accepted end (fd 5).
 *   raw-inherit SOCKET DIR SPEC   (no "ready") sends ckptd a restore of DIR
 *                     with --inherit-fd SPEC but no fds, prints the reply.
 *   aio PATH          opens PATH read-only on fd 3, maps 8 KiB of shared
 *                     anonymous memory (written), makes an AIO context
 *                     with two completed events waiting, and sleeps.
 *   sleep             sleeps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/aio_abi.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rpc.pb-c.h"

static void nap(void)
{
	struct timespec ts = { 0, 100000000 };
	nanosleep(&ts, NULL);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_restore(int fd, const char *dir, char *inherit)
{
	RpcRequest req = RPC_REQUEST__INIT;
	RpcRestore r = RPC_RESTORE__INIT;
	r.dir = (char *)dir;
	r.inherit_fd = &inherit;
	r.n_inherit_fd = inherit != NULL;
	r.has_detach = r.detach = 1;
	req.req_case = RPC_REQUEST__REQ_RESTORE;
	req.restore = &r;
	size_t len = rpc_request__get_packed_size(&req);
	unsigned char *buf = malloc(len + 4);
	if (!buf)
		return -1;
	for (int i = 0; i < 4; i++)
		buf[i] = (unsigned char)(len >> (8 * i));
	rpc_request__pack(&req, buf + 4);
	int ret = write_all(fd, buf, len + 4);
	free(buf);
	return ret;
}

/* Print the final reply; progress replies are skipped. */
static int print_reply(int fd)
{
	for (;;) {
		unsigned char hdr[4];
		if (read_all(fd, hdr, 4)) {
			printf("reply none: the connection closed\n");
			return 1;
		}
		size_t len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (size_t)hdr[3] << 24;
		if (len > (1u << 20))
			return 1;
		void *buf = malloc(len ? len : 1);
		if (!buf || read_all(fd, buf, len))
			return 1;
		RpcReply *r = rpc_reply__unpack(NULL, len, buf);
		free(buf);
		if (!r)
			return 1;
		int done = r->done;
		if (done)
			printf("reply result %d pid %u error %s\n", r->has_result ? r->result : 0,
			       r->restore ? r->restore->pid : 0, r->error ? r->error : "-");
		rpc_reply__free_unpacked(r, NULL);
		if (done)
			return 0;
	}
}

static int relay(const char *trigger)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || sv[0] != 3) {
		perror("socketpair on fds 3, 4");
		return 1;
	}
	printf("ready\n");
	char dir[4096];
	FILE *f;
	while (!(f = fopen(trigger, "re")))
		nap();
	if (!fgets(dir, sizeof(dir), f))
		return 1;
	fclose(f);
	dir[strcspn(dir, "\n")] = '\0';
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	if (getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &crl))
		printf("peer none: %s\n", strerror(errno));
	else
		printf("peer uid %u pid %d\n", cr.uid, cr.pid);
	if (send_restore(sv[0], dir, NULL)) {
		printf("reply none: cannot send: %s\n", strerror(errno));
		return 1;
	}
	return print_reply(sv[0]);
}

/* A restore request naming --inherit-fd SPEC, sent to SOCKET without the
 * fds ckptctl would send: the agent's worker must never stand in. */
static int raw_inherit(const char *sock, const char *dir, char *spec)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) || send_restore(fd, dir, spec)) {
		perror(sock);
		return 1;
	}
	shutdown(fd, SHUT_WR);
	return print_reply(fd);
}

static int shm(const char *key, const char *text)
{
	int id = shmget((key_t)strtol(key, NULL, 0), 4096, IPC_CREAT | 0600);
	char *p = id < 0 ? NULL : shmat(id, NULL, 0);
	if (!p || p == (void *)-1) {
		perror("shm");
		return 1;
	}
	snprintf(p, 4096, "%s\n", text);
	printf("ready id %d\n", id);
	for (;;) {
		printf("shm: %.*s\n", (int)strcspn(p, "\n"), p);
		nap();
	}
}

/* A filter (no_new_privs when `nnp`): syscall `nr` fails with `err`. */
static int filter_syscall(int nr, int err, int nnp)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if ((nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("seccomp");
		return 1;
	}
	return 0;
}

static int fail_syscall(int nr, int err)
{
	return filter_syscall(nr, err, 1);
}

static int seccomp_setuid(const char *uid_arg, const char *gid_arg)
{
	uid_t uid = (uid_t)atoi(uid_arg);
	gid_t gid = (gid_t)atoi(gid_arg);
	if (!uid || filter_syscall(SYS_mkdir, EPERM, 0) || setgroups(0, NULL) || setgid(gid) ||
	    setuid(uid) ||
	    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)) {
		perror("seccomp-setuid");
		return 1;
	}
	printf("ready\n");
	for (;;)
		nap();
}

static int seccomp(void)
{
	if (fail_syscall(SYS_mkdir, EPERM))
		return 1;
	printf("ready\n");
	for (;;)
		nap();
}

/* A site's confinement: acct(2) fails with ENOTNAM (nothing the engine
 * or the tests otherwise call), no_new_privs, then CMD runs under it. */
static int confine(char **cmd)
{
	if (fail_syscall(SYS_acct, ENOTNAM))
		return 1;
	execvp(cmd[0], cmd);
	perror(cmd[0]);
	return 127;
}

static int hold(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		struct stat st;
		int fl = !stat(argv[i], &st) && S_ISFIFO(st.st_mode) ? O_RDWR : O_RDONLY;
		if (open(argv[i], fl | O_NONBLOCK) < 0) {
			perror(argv[i]);
			return 1;
		}
	}
	printf("ready\n");
	for (;;)
		nap();
}

static int listen_on(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
		perror("listen");
		return 1;
	}
	printf("ready\n");
	for (;;)
		nap();
}

static int loop_on(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l != 3 || c != 4 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 8) ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) || accept(l, NULL, NULL) != 5) {
		perror("loop");
		return 1;
	}
	printf("ready\n");
	for (;;)
		nap();
}

static int aio_ring(const char *path)
{
	static char byte;
	aio_context_t ctx = 0;
	int fd = open(path, O_RDONLY), null = open("/dev/null", O_WRONLY);
	if (fd < 0 || dup2(fd, 3) != 3 || null < 0 || syscall(SYS_io_setup, 4, &ctx)) {
		perror("aio");
		return 1;
	}
	char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	strcpy(m, "alice-shared");
	struct iocb cb = { .aio_fildes = (uint32_t)null, .aio_lio_opcode = IOCB_CMD_PWRITE,
			   .aio_buf = (uint64_t)(uintptr_t)&byte, .aio_nbytes = 1 };
	struct iocb *p = &cb;
	struct io_event ev;
	for (int i = 0; i < 3; i++)
		if (syscall(SYS_io_submit, ctx, 1, &p) != 1)
			return 1;
	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		return 1;
	printf("ready\n");
	for (;;)
		nap();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "relay"))
		return relay(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "raw-inherit"))
		return raw_inherit(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "shm"))
		return shm(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "seccomp"))
		return seccomp();
	if (argc == 4 && !strcmp(argv[1], "seccomp-setuid"))
		return seccomp_setuid(argv[2], argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "confine"))
		return confine(argv + 2);
	if (argc >= 3 && !strcmp(argv[1], "hold"))
		return hold(argc - 2, argv + 2);
	if (argc == 3 && !strcmp(argv[1], "loop"))
		return loop_on(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return listen_on(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "aio"))
		return aio_ring(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "sleep")) {
		printf("ready\n");
		for (;;)
			nap();
	}
	fprintf(stderr, "usage: sec-target relay TRIGGER | shm KEY TEXT | seccomp | seccomp-setuid UID GID | hold PATH... | listen PORT | aio PATH | sleep\n");
	return 2;
}
