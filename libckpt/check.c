/*
 * check: `ckptctl check`: every kernel feature the engine relies on, and
 * whether this machine has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "sk-diag.h"

struct feature {
	const char *name;
	const char *why;
	/* 1: there; 0: missing, with what failed in why (the call and its
	 * error, or what was not found), which -v prints. */
	int (*probe)(char *why, size_t len);
	int needed;
};

/* 0, with why "CALL: strerror(errno)": for a probe's failing call. */
static int failed(char *why, size_t len, const char *call)
{
	snprintf(why, len, "%s: %s", call, strerror(errno));
	return 0;
}

static int probe_caps(char *why, size_t len)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return failed(why, len, "capget");
	uint64_t eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	int ptrace_cap = !!(eff & (1ULL << CAP_SYS_PTRACE)), admin = !!(eff & (1ULL << CAP_SYS_ADMIN));
	snprintf(why, len, "the effective set lacks %s%s%s (euid %d)", admin ? "" : "CAP_SYS_ADMIN",
		 !admin && !ptrace_cap ? " and " : "", ptrace_cap ? "" : "CAP_SYS_PTRACE",
		 (int)geteuid());
	return ptrace_cap && admin;
}

static int probe_mm_map(char *why, size_t len)
{
	unsigned int size = 0;
	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0))
		return failed(why, len, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)");
	snprintf(why, len, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE) says size 0");
	return size > 0;
}

static int probe_kcmp(char *why, size_t len)
{
	if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0 || errno == EBADF)
		return 1;
	return failed(why, len, "kcmp(KCMP_FILE)");
}

static int probe_file(const char *path, char *why, size_t len)
{
	return access(path, R_OK) == 0 || failed(why, len, path);
}

static int probe_map_files(char *why, size_t len)
{
	return probe_file("/proc/self/map_files", why, len);
}

static int probe_pagemap(char *why, size_t len)
{
	return probe_file("/proc/self/pagemap", why, len);
}

static int probe_children(char *why, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/task/%d/children", getpid());
	return probe_file(p, why, len);
}

static int probe_vm_readv(char *why, size_t len)
{
	char src[8] = "ckpt", dst[8] = "";
	struct iovec l = { dst, 5 }, r = { src, 5 };
	ssize_t n = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	if (n < 0)
		return failed(why, len, "process_vm_readv");
	snprintf(why, len, "process_vm_readv read %zd bytes of 5, or the wrong ones", n);
	return n == 5 && !strcmp(dst, "ckpt");
}

/* 1 when child pid exited 0, else 0 with what it did in why. */
static int child_ok(pid_t pid, const char *what, char *why, size_t len)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return failed(why, len, "waitpid");
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 1;
	snprintf(why, len, "%s: the child %s %d", what, WIFEXITED(st) ? "exited" : "was killed by signal",
		 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 0;
}

/* A child that clone3s itself a chosen PID exercises set_tid; a child
 * that we PTRACE_SEIZE exercises seize + rseq configuration. */
static int probe_clone3_set_tid(char *why, size_t len)
{
	struct clone_args a;
	memset(&a, 0, sizeof(a));
	a.flags = CLONE_NEWPID;
	a.exit_signal = SIGCHLD;
	pid_t want = 1;
	a.set_tid = (uint64_t)(uintptr_t)&want;
	a.set_tid_size = 1;
	pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));
	if (pid == 0)
		_exit(getpid() == 1 ? 0 : 1);
	if (pid < 0)
		return failed(why, len, "clone3(CLONE_NEWPID, set_tid 1)");
	return child_ok(pid, "clone3 set_tid 1", why, len);
}

/* The ptrace steps on a stopped child; 1 or 0 with the failing one. */
static int seize_child(pid_t pid, char *why, size_t len)
{
	struct { uint64_t p; uint32_t size, sig, flags, pad; } conf;
	int st;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return failed(why, len, "ptrace(PTRACE_SEIZE)");
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0))
		return failed(why, len, "ptrace(PTRACE_INTERRUPT)");
	if (waitpid(pid, &st, __WALL) != pid)
		return failed(why, len, "waitpid");
	if (ptrace(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, pid, sizeof(conf), &conf) > 0)
		return 1;
	return failed(why, len, "ptrace(PTRACE_GET_RSEQ_CONFIGURATION)");
}

static int probe_seize_rseq(char *why, size_t len)
{
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	if (pid < 0)
		return failed(why, len, "fork");
	int ok = seize_child(pid, why, len);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return ok;
}

static int probe_vdso(char *why, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;
	if (!f)
		return failed(why, len, "/proc/self/maps");
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, "[vdso]") != NULL;
	fclose(f);
	snprintf(why, len, "no [vdso] in /proc/self/maps");
	return found;
}

/* SOCK_DESTROY closes a listener of ours (as it closes TIME_WAIT sockets
 * in a restore's way, sk-ports.c). */
static int destroy_listener(int sk, char *why, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a), olen = sizeof(int);
	int on = 1;
	if (bind(sk, (struct sockaddr *)&a, alen) || listen(sk, 1) ||
	    getsockname(sk, (struct sockaddr *)&a, &alen))
		return failed(why, len, "a loopback listener");
	struct inet_diag d = { .family = AF_INET, .proto = IPPROTO_TCP };
	d.id.idiag_sport = a.sin_port;
	d.id.idiag_src[0] = a.sin_addr.s_addr;
	d.id.idiag_cookie[0] = d.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	int err = sk_diag_destroy(&d);
	if (err) {
		snprintf(why, len, "SOCK_DESTROY: %s", strerror(-err));
		return 0;
	}
	if (getsockopt(sk, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen))
		return failed(why, len, "getsockopt(SO_ACCEPTCONN)");
	snprintf(why, len, "SOCK_DESTROY left the listener listening");
	return !on;
}

static int probe_sock_destroy(char *why, size_t len)
{
	int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return failed(why, len, "socket(AF_INET)");
	int ok = destroy_listener(sk, why, len);
	close(sk);
	return ok;
}

static const struct feature features[] = {
	{ "capabilities", "CAP_SYS_ADMIN and CAP_SYS_PTRACE (run as root)", probe_caps, 1 },
	{ "ptrace_seize", "PTRACE_SEIZE/INTERRUPT and PTRACE_GET_RSEQ_CONFIGURATION", probe_seize_rseq, 1 },
	{ "clone3_set_tid", "clone3 with set_tid, to restore PIDs", probe_clone3_set_tid, 1 },
	{ "prctl_mm_map", "PR_SET_MM_MAP (CONFIG_CHECKPOINT_RESTORE)", probe_mm_map, 1 },
	{ "kcmp", "kcmp(2), to find shared files", probe_kcmp, 1 },
	{ "proc_children", "/proc/PID/task/TID/children (else /proc/*/stat is scanned)", probe_children, 0 },
	{ "proc_map_files", "/proc/PID/map_files", probe_map_files, 1 },
	{ "proc_pagemap", "/proc/PID/pagemap", probe_pagemap, 1 },
	{ "process_vm_readv", "process_vm_readv(2)", probe_vm_readv, 1 },
	{ "vdso", "a [vdso] mapping", probe_vdso, 0 },
	{ "sock_destroy", "SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY), to close TIME_WAIT sockets "
			  "that block a restored port", probe_sock_destroy, 0 },
};

int ckpt_check(int verbose)
{
	int ok = 1;
	char why[256];
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		why[0] = '\0';
		int have = features[i].probe(why, sizeof(why));
		printf("%-18s %-8s %s\n", features[i].name, have ? "ok" : "MISSING", features[i].why);
		if (!have && verbose)
			printf("%-18s %-8s why: %s\n", "", "", why[0] ? why : "not found");
		if (!have && features[i].needed)
			ok = 0;
	}
	printf(ok ? "Looks good: dump and restore can work here.\n"
		  : "Some features ckpt needs are missing.\n");
	return ok ? 0 : -ENOTSUP;
}
