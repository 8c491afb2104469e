/*
 * restore: ckpt-coord --restore, the restore of a multi-node set on a new
 * allocation (docs/coordinator.md "Restore").  The batch node's ckptd has
 * restored the part with the batch script, its connections locked; the
 * proxy of the job's step whose tasks ran on the other nodes runs, in
 * that srun's place, one ckpt-coord per node (`srun --overlap
 * --mpi=pmix`):
 *
 *   built:   each other node restores its part through its ckptd as the
 *            user (`ckptctl restore`, its step's stdio the tasks' stdio,
 *            the connections mapped onto the new addresses and locked)
 *   running: once every part is built, each node lifts its lock (the
 *            batch node the batch part's, --net-lock) and the job talks
 *
 * Then the batch node's ckpt-coord ends; the others wait for their part's
 * tree and end with its exit status, as the step's tasks would have: the
 * proxy's srun (srun's stand-in for mpirun) ends when they do.  A node
 * that cannot build its part fails the fence everywhere: every node
 * ends its tree and the srun fails, as a lost daemon's step would.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coord.h"

struct part_restore {
	pid_t ckptctl;     /* the restore of this node's part, waiting for its tree */
	char lock[128];    /* its kept network lock */
	int ended, status; /* ckptctl reaped already (serve_relay), its wait status */
};

/* ckptctl beside us, or the build tree's. */
static int ckptctl_path(char *path, size_t len)
{
	static const char *const where[] = { "/ckptctl", "/../cli/ckptctl" };
	ssize_t n = readlink("/proc/self/exe", path, len - 1);
	if (n <= 0)
		return -errno;
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	for (size_t i = 0; slash && i < 2; i++) {
		if ((size_t)(slash - path) + strlen(where[i]) + 1 > len)
			return -ENAMETOOLONG;
		strcpy(slash, where[i]);
		if (!access(path, X_OK))
			return 0;
	}
	return -ENOENT;
}

/* PART placed on `host` in "PART=NODE,...", into part; 1 if any. */
static int my_part(const char *place, const char *host, char *part, size_t len)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s", place);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq && !strcmp(eq + 1, host) && (size_t)(eq - t) < len) {
			snprintf(part, len, "%.*s", (int)(eq - t), t);
			return 1;
		}
	}
	return 0;
}

static int run_ckptctl(char *const argv[], int keep_fd)
{
	pid_t p = fork();
	if (p == 0) {
		for (int fd = 3; fd < 1024; fd++)
			if (fd != keep_fd)
				close(fd);
		execv(argv[0], argv);
		fprintf(stderr, "ckpt-coord: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return p;
}

/* Read the kept lock's name (ckptctl --net-lock-fd), or its end. */
static int read_lock(int fd, char *lock, size_t len)
{
	size_t n = 0;
	ssize_t r;
	while (n < len - 1 && (r = read(fd, lock + n, len - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	lock[n] = '\0';
	lock[strcspn(lock, "\n")] = '\0';
	return lock[0] ? 0 : -ECHILD;
}

static int restore_part(const struct coord_restore *r, const char *part, struct part_restore *pr,
			char *why, size_t len)
{
	char ckptctl[4096], dir[4200], lockfd[16], job[16];
	int p[2];
	if (ckptctl_path(ckptctl, sizeof(ckptctl))) {
		snprintf(why, len, "no ckptctl beside ckpt-coord");
		return -ENOENT;
	}
	if (pipe(p))
		return -errno;
	snprintf(dir, sizeof(dir), "%s/nodes/%s", r->set, part);
	snprintf(lockfd, sizeof(lockfd), "%d", p[1]);
	snprintf(job, sizeof(job), "%u", r->job);
	/* --as-job: the tree is the job's tasks here, for its next checkpoint */
	char *argv[26] = { ckptctl, "restore", "-D", dir, "--as-job", job, "--keep-net-lock",
			   "--net-lock-fd", lockfd, "--inherit-fd", "fd[0]:root-fd:0",
			   "--inherit-fd", "fd[1]:root-fd:1", "--inherit-fd", "fd[2]:root-fd:2" };
	size_t n = 15;
	if (r->relay) {
		argv[n++] = "--step-relay";
		argv[n++] = (char *)r->relay;
	}
	if (r->inet_map) {
		argv[n++] = "--inet-map";
		argv[n++] = (char *)r->inet_map;
	}
	argv[n] = NULL;
	pr->ckptctl = run_ckptctl(argv, p[1]);
	close(p[1]);
	int ret = pr->ckptctl < 0 ? -errno : read_lock(p[0], pr->lock, sizeof(pr->lock));
	close(p[0]);
	if (ret)
		snprintf(why, len, "the restore of part %s failed (ckptctl's error above)", part);
	return ret;
}

static int unlock(const char *lock)
{
	char ckptctl[4096];
	if (ckptctl_path(ckptctl, sizeof(ckptctl)))
		return -ENOENT;
	char *argv[] = { ckptctl, "net-unlock", (char *)lock, NULL };
	pid_t p = run_ckptctl(argv, -1);
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -EIO;
}

/* The tree this node restored ends: its ckptctl passes on SIGTERM. */
static int end_part(struct part_restore *pr)
{
	int st = 0;
	if (pr->ckptctl <= 0 || pr->ended)
		return 0;
	kill(pr->ckptctl, SIGTERM);
	waitpid(pr->ckptctl, &st, 0);
	return 1;
}

static int part_status(struct part_restore *pr)
{
	int st = pr->status;
	if (pr->ckptctl <= 0)
		return 0;
	while (!pr->ended && waitpid(pr->ckptctl, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * --relay: the job's srun step had ranks on every node.  Each node's
 * step proxy (ckpt-step) relays its fences through us for as long as it
 * runs (relay.c): listening before the part is restored, served once the
 * job runs, until the proxy ends.
 */
#define RELAY_FIRST_S 120 /* for the proxy to connect, once all run */

/* Until a proxy connects: a node's part may have none (a task of its own
 * tree, no PMIx), and then its end is the relay's; the batch node's proxy
 * always comes. */
static int wait_proxy(int listener, struct part_restore *pr)
{
	for (int ms = 0; pr->ckptctl > 0 || ms < RELAY_FIRST_S * 1000; ms += 200) {
		struct pollfd p = { .fd = listener, .events = POLLIN };
		if (poll(&p, 1, 200) > 0)
			return 1;
		if (pr->ckptctl > 0 && waitpid(pr->ckptctl, &pr->status, WNOHANG) == pr->ckptctl) {
			pr->ended = 1;
			return 0;
		}
	}
	return -ETIMEDOUT;
}

static int serve_relay(const struct coord_restore *r, struct fence *f, int listener,
		       uint32_t rank, struct part_restore *pr)
{
	if (listener < 0)
		return 0;
	int ret = wait_proxy(listener, pr);
	ret = ret == 1 ? relay_run(f, listener, 0) : ret;
	close(listener);
	if (ret)
		fprintf(stderr, "ckpt-coord: job %u: rank %u: the step's fence relay failed: %s\n",
			r->job, rank, strerror(-ret));
	return ret;
}

int coord_restore(struct coord_restore *r, uint32_t rank, uint32_t size, struct fence *f,
		  struct node_status *all, int timeout_s)
{
	struct node_status st = { .ok = 1 };
	struct part_restore pr = { .ckptctl = -1 };
	char host[72] = "", part[72], why[512] = "";
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	snprintf(st.node, sizeof(st.node), "%s", host);
	int batch = r->batch_node && !strcmp(r->batch_node, host);
	int listener = r->relay ? relay_listen(r->relay, rank) : -1;
	if (r->relay && listener < 0) {
		st.ok = 0;
		snprintf(st.why, sizeof(st.why), "cannot listen as the fence relay %s", r->relay);
	} else if (!batch && my_part(r->place, host, part, sizeof(part)) &&
		   restore_part(r, part, &pr, st.why, sizeof(st.why)))
		st.ok = 0;
	int ret = fence_exchange(f, "built", &st, all, timeout_s);
	for (uint32_t i = 0; !ret && i < size; i++)
		if (!all[i].ok) {
			snprintf(why, sizeof(why), "node %s: %s", all[i].node, all[i].why);
			ret = -ECANCELED;
		}
	const char *lock = batch ? r->net_lock : pr.lock;
	if (!ret && lock && lock[0] && unlock(lock)) {
		st.ok = 0;
		snprintf(st.why, sizeof(st.why), "cannot lift the network lock %s", lock);
	}
	if (!ret)
		ret = fence_exchange(f, "running", &st, all, timeout_s);
	if (ret) {
		if (listener >= 0)
			close(listener);
		fprintf(stderr, "ckpt-coord: job %u: rank %u: the restore failed: %s%s\n", r->job,
			rank, why[0] ? why : strerror(-ret),
			end_part(&pr) ? "; this node's part ended" : "");
		return 1;
	}
	if (serve_relay(r, f, listener, rank, &pr) && end_part(&pr))
		return 1;
	return part_status(&pr);
}
