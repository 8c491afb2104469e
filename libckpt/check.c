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
	int (*probe)(void);
	int needed;
};

static int probe_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return 0;
	uint64_t eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	return (eff & (1ULL << CAP_SYS_PTRACE)) && (eff & (1ULL << CAP_SYS_ADMIN));
}

static int probe_mm_map(void)
{
	unsigned int size = 0;
	return prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size > 0;
}

static int probe_kcmp(void)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0 || errno == EBADF;
}

static int probe_file(const char *path)
{
	return access(path, R_OK) == 0;
}

static int probe_map_files(void) { return probe_file("/proc/self/map_files"); }
static int probe_pagemap(void) { return probe_file("/proc/self/pagemap"); }
static int probe_children(void)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/task/%d/children", getpid());
	return probe_file(p);
}

static int probe_vm_readv(void)
{
	char src[8] = "ckpt", dst[8] = "";
	struct iovec l = { dst, 5 }, r = { src, 5 };
	return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == 5 && !strcmp(dst, "ckpt");
}

/* A child that clone3s itself a chosen PID exercises set_tid; a child
 * that we PTRACE_SEIZE exercises seize + rseq configuration. */
static int probe_clone3_set_tid(void)
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
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int probe_seize_rseq(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	int ok = 0, st;
	if (pid > 0 && ptrace(PTRACE_SEIZE, pid, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 &&
	    waitpid(pid, &st, __WALL) == pid) {
		struct { uint64_t p; uint32_t size, sig, flags, pad; } conf;
		ok = ptrace(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, pid, sizeof(conf), &conf) > 0;
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	return ok;
}

static int probe_vdso(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;
	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, "[vdso]") != NULL;
	if (f)
		fclose(f);
	return found;
}

/* SOCK_DESTROY closes a listener of ours (as it closes TIME_WAIT sockets
 * in a restore's way, sk-ports.c). */
static int probe_sock_destroy(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 0;
	if (sk < 0)
		return 0;
	if (!bind(sk, (struct sockaddr *)&a, len) && !listen(sk, 1) &&
	    !getsockname(sk, (struct sockaddr *)&a, &len)) {
		struct inet_diag d = { .family = AF_INET, .proto = IPPROTO_TCP };
		d.id.idiag_sport = a.sin_port;
		d.id.idiag_src[0] = a.sin_addr.s_addr;
		d.id.idiag_cookie[0] = d.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
		len = sizeof(on);
		on = !sk_diag_destroy(&d) && !getsockopt(sk, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) &&
		     !on;
	}
	close(sk);
	return on;
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
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		int have = features[i].probe();
		printf("%-18s %-8s %s\n", features[i].name, have ? "ok" : "MISSING", features[i].why);
		if (!have && features[i].needed)
			ok = 0;
	}
	printf(ok ? "Looks good: dump and restore can work here.\n"
		  : "Some features ckpt needs are missing.\n");
	(void)verbose;
	return ok ? 0 : -ENOTSUP;
}
