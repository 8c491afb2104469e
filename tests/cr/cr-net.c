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
#include <sys/wait.h>
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

/* Does pid have a VMA still registered for missing pages ("um")? */
static int uffd_missing(pid_t pid)
{
	char path[64], line[512];
	int found = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "VmFlags:", 8) &&
			(strstr(line, " um ") || strstr(line, " um\n"));
	if (f)
		fclose(f);
	return found;
}

/* A lazy restore's memory is all in once its page server has closed
 * every userfaultfd: until then a dump is refused (mem.c). */
static int wait_lazy_filled(struct run *r)
{
	for (int ms = 0; ms < 30000; ms += 20) {
		int busy = uffd_missing(r->pid);
		for (int i = 0; i < r->tree_len && !busy; i++)
			busy = uffd_missing(r->tree[i]);
		if (!busy)
			return 0;
		sleep_ms(20);
	}
	say("the restored tree's memory was not all in after 30 s");
	return -1;
}

/* --redump-refused: the tree is still being filled lazily; the dump must
 * say so and leave it running. */
static int redump_refused(struct run *r, const char *dir)
{
	char err[PATH_MAX + 64];
	int status = run_dump(r, dir, NULL, err);
	if (status == -1)
		return -1;
	if (!WIFEXITED(status) || !WEXITSTATUS(status)) {
		say("ckptctl dump of the restored tree: %s, expected a refusal", status_str(status));
		return -1;
	}
	if (check_error_line(r, "dump", err) || check_no_manifest(dir) ||
	    check_running(r->pid, 3000))
		return -1;
	say("the dump of the restored tree %d was refused while it was filled", r->pid);
	return 0;
}

int redump_restored(struct run *r, pid_t restore, pid_t pid)
{
	char dir[PATH_MAX + 16];
	r->redumped = 1;
	r->pid = pid;
	path_in(r, dir, sizeof(dir), "images-2");
	if ((r->redump_refused && redump_refused(r, dir)) || wait_lazy_filled(r)) {
		kill_child(restore);
		return -1;
	}
	if (r->redump_refused)
		rm_tree(dir);
	/* the restore ends with the tree it waits for: reaped with it */
	if (dump_and_reap(r, dir)) {
		kill_child(restore);
		return -1;
	}
	say("the restored tree %d dumped again", pid);
	return restore_and_check(r, dir);
}
