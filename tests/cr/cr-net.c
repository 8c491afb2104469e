/*
 * cr-net: the harness flows of the network cases (tests/cr/sockets.cmake).
 *
 *   --own-netns, --net-sysctl N=V   the whole case in a fresh network
 *                        namespace of its own, lo up, with sysctls of its
 *                        own (net.ipv4.tcp_timestamps=0, say), so that a
 *                        case may change what the node's namespace must keep
 *   --helper-after-dump  a peer that appears once the dumped tree is gone
 *                        (a process taking its port)
 *   --fail-first-opt O   a restore with extra options that must fail (one
 *                        line, see --expect-msg) before the real one
 *   --expect-restore-out S   the real restore's stdout holds S (--stats)
 *   --restore-after-exit a -R dump, then the test checks (its connections
 *                        close, leaving TIME_WAIT sockets) and exits, then
 *                        that dump is restored and checks again
 *   --redump             the restored tree (in a fresh network namespace,
 *                        say) is dumped again, and that dump restored
 */
#include "cr-run.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int lo_up(void)
{
	struct ifreq ifr;
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (sk >= 0 && !ioctl(sk, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		ret = ioctl(sk, SIOCSIFFLAGS, &ifr);
	}
	if (sk >= 0)
		close(sk);
	return ret;
}

/* "ipv4/tcp_timestamps=0" into /proc/sys/net/ipv4/tcp_timestamps */
static int set_sysctl(const char *nv)
{
	char path[256];
	const char *eq = strchr(nv, '=');
	if (!eq || strstr(nv, "..")) {
		say("--net-sysctl %s: expected NAME=VALUE", nv);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/%.*s", (int)(eq - nv), nv);
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok = 0;
	if (fd >= 0) {
		ok = write(fd, eq + 1, strlen(eq + 1)) == (ssize_t)strlen(eq + 1);
		close(fd);
	}
	if (!ok)
		say("%s: %s", path, strerror(errno));
	return ok ? 0 : -1;
}

int own_netns(struct run *r)
{
	if (unshare(CLONE_NEWNET) || lo_up()) {
		say("a network namespace of our own: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < r->nr_net_sysctl; i++)
		if (set_sysctl(r->net_sysctl[i]))
			return -1;
	return 0;
}

int net_after_dump(struct run *r, const char *dir)
{
	if (r->helper && r->helper_after_dump && start_helper(r))
		return -1;
	if (!r->nr_fail_first_opts)
		return 0;
	r->fail_first_opts[r->nr_fail_first_opts] = NULL;
	return restore_must_fail(r, dir, r->fail_first_opts, NULL, "the first restore");
}

/* The last ckptctl run was the restore: its stdout is tmp/NN-restore.out. */
int net_after_restore(struct run *r)
{
	char name[32], path[PATH_MAX + 32];
	if (!r->expect_restore_out)
		return 0;
	snprintf(name, sizeof(name), "%02d-restore.out", r->step);
	path_in(r, path, sizeof(path), name);
	return output_has(path, r->expect_restore_out, "restore");
}

int restore_after_exit(struct run *r)
{
	char dir[PATH_MAX + 16];
	pid_t pid = r->pid;
	if (leave_running(r, "lr-1") || check_live_test(r))
		return -1;
	if (reap_all(30000)) {
		say("the test's processes still live 30 s after it passed");
		return -1;
	}
	say("the test ran on after the dump and exited: restoring that dump");
	r->pid = pid; /* the restored root must have it again */
	path_in(r, dir, sizeof(dir), "lr-1");
	if (r->expect_restore_fail)
		return restore_must_fail(r, dir, NULL, NULL, "restore");
	if (restore_and_check(r, dir))
		return -1;
	return net_after_restore(r);
}

int redump_restored(struct run *r, pid_t restore, pid_t pid)
{
	char dir[PATH_MAX + 16];
	r->redumped = 1;
	r->pid = pid;
	path_in(r, dir, sizeof(dir), "images-2");
	/* the restore ends with the tree it waits for: reaped with it */
	if (dump_and_reap(r, dir)) {
		kill_child(restore);
		return -1;
	}
	say("the restored tree %d dumped again", pid);
	return restore_and_check(r, dir);
}
