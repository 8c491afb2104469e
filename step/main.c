/*
 * ckpt-step: stands in for srun and slurmstepd for a restored
 * `srun --mpi=pmix` step, as the parent of its ranks (docs/mpi.md,
 * "Restore").  The restore creates the ranks as children of a process
 * with srun's pid, which execs this program with their fds:
 *
 *   ckpt-step --nspace NS --job-size N --uid U --gid G
 *             --task RANK:PID:IN:OUT:ERR:PMIX ...   one per local rank
 *             [--label] [--tmpdir DIR] [--pending-out FILE]
 *             [--security LIST] [--gds LIST] [--buffer-type T]
 *             [--bfrops V] [--pmix-version X.Y.Z] [--allow-root]
 *             [--fence-relay NAME] [--also PID]
 *
 *   --task      fds this process holds: IN the write end of the rank's
 *               stdin pipe or -1 (closed at once: the step read
 *               /dev/null), OUT and ERR the read ends of its stdout and
 *               stderr pipes or -1 (not slurmstepd's: /dev/null, a
 *               file), PMIX our end of a socketpair whose other end is
 *               the rank's PMIx fd, or -1 (no PMIx)
 *   --label     srun -l: "%*d: " before each line (stdio.c)
 *   --tmpdir    where our PMIx server's directory goes ($TMPDIR, /tmp)
 *   --pending-out  output srun had received but not written (stdio.c)
 *   --security  the rank's PMIX_SECURITY_MODE (list; default native)
 *   --gds       the rank's PMIX_GDS_MODULE (list; default ds21,ds12,hash)
 *   --buffer-type  the rank's PMIX_BFROP_BUFFER_TYPE (default NON_DESC)
 *   --bfrops    v41 if the rank has PMIX_SERVER_URI41, else v4 (URI4),
 *               v3 (URI3), v21 (URI21), v20 (URI2) (default v41)
 *   --pmix-version  the rank's libpmix version (default: ours)
 *   --allow-root   tests only: the proxy runs as the job's user
 *   --also      a child of ours (the srun that restored the other nodes'
 *               ranks) waited for as a task: its exit status counts
 *   --fence-relay  ranks on other nodes too: fences through this node's
 *               ckpt-coord --relay NAME (relay.c)
 *
 * The loop: poll the ranks' output pipes, their PMIx sockets and our
 * connections to our server (spliced byte for byte: the server keys a
 * message by its connection, never by the peer index in its header),
 * a signalfd (SIGCHLD, and SIGINT/SIGTERM/SIGHUP passed to the ranks)
 * and the abort pipe.  Ends when every rank is reaped and its output
 * drained; exits as srun 22.05 does (exit_code below).
 */
#include "step.h"

#include <errno.h>
#include <fcntl.h>
#include <pmix_version.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_MAX (STEP_MAX_TASKS * 4 + 2)

int write_full(int fd, const void *p, size_t n);

static void kill_ranks(struct step *s, int sig)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->tasks[i].reaped && s->tasks[i].pid > 0) /* never pid <= 0 */
			kill(s->tasks[i].pid, sig);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One direction of a rank's PMIx splice; at EOF both sides close. */
static void splice_once(struct task *t, int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/*
	 * A blocking write: the server reads on its own thread, and a rank's
	 * libpmix reads its socket on its progress thread at all times.
	 */
	if (n > 0 && !write_full(to, buf, n))
		return;
	close_fd(&t->pmix);
	close_fd(&t->conn);
}

static const char *host_name(void)
{
	static char host[256];

	if (!host[0] && gethostname(host, sizeof(host) - 1))
		strcpy(host, "localhost");
	return host;
}

/* srun's line for a rank that did not exit 0 (launch_slurm.c _task_finish). */
static void report_exit(struct task *t)
{
	int st = t->status;

	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "srun: error: %s: task %u: Exited with exit code %d\n", host_name(),
			t->rank, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		fprintf(stderr, "srun: error: %s: task %u: %s%s\n", host_name(), t->rank,
			strsignal(WTERMSIG(st)), WCOREDUMP(st) ? " (core dumped)" : "");
}

static void reap(struct step *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->also)
			s->also_reaped = true, s->also_status = status;
		for (int i = 0; i < s->ntasks; i++)
			if (s->tasks[i].pid == pid) {
				s->tasks[i].reaped = true;
				s->tasks[i].status = status;
				report_exit(&s->tasks[i]);
			}
	}
}

static bool all_reaped(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!s->tasks[i].reaped)
			return false;
	/* our ranks are done: the other nodes' may end too (--also) */
	if (s->relay)
		relay_close();
	return !s->also || s->also_reaped;
}

/*
 * A signal when every rank has ended: what still holds an output pipe
 * open is some rank's child; stop waiting for it.
 */
static void stop_reading(struct step *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct task *t = &s->tasks[i];

		if (t->out.fd >= 0)
			stdio_flush(s, t->rank, &t->out);
		if (t->err.fd >= 0)
			stdio_flush(s, t->rank, &t->err);
		close_fd(&t->out.fd);
		close_fd(&t->err.fd);
	}
}

static void on_signal(struct step *s, int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reap(s);
		else if (all_reaped(s))
			stop_reading(s);
		else
			kill_ranks(s, si.ssi_signo);
	}
}

static bool finished(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		const struct task *t = &s->tasks[i];

		if (t->out.fd >= 0 || t->err.fd >= 0)
			return false;
	}
	return all_reaped(s);
}

struct watch {
	struct pollfd fds[POLL_MAX];
	int owner[POLL_MAX]; /* task index, -1 signalfd, -2 abort pipe */
	int n;
};

static void watch(struct watch *w, int fd, int owner)
{
	if (fd < 0)
		return;
	w->fds[w->n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	w->owner[w->n++] = owner;
}

static void dispatch(struct step *s, struct task *t, int fd)
{
	if (fd == t->out.fd)
		stdio_forward(s, t, &t->out);
	else if (fd == t->err.fd)
		stdio_forward(s, t, &t->err);
	else if (fd == t->pmix)
		splice_once(t, t->pmix, t->conn);
	else if (fd == t->conn)
		splice_once(t, t->conn, t->pmix);
}

/* Returns true once a rank called abort. */
static bool loop_once(struct step *s, int sfd, int abort_fd)
{
	struct watch w = { .n = 0 };

	watch(&w, sfd, -1);
	watch(&w, abort_fd, -2);
	for (int i = 0; i < s->ntasks; i++) {
		watch(&w, s->tasks[i].out.fd, i);
		watch(&w, s->tasks[i].err.fd, i);
		watch(&w, s->tasks[i].pmix, i);
		watch(&w, s->tasks[i].conn, i);
	}
	if (poll(w.fds, w.n, -1) < 0)
		return false;
	for (int k = 0; k < w.n; k++) {
		if (!w.fds[k].revents)
			continue;
		if (w.owner[k] == -1)
			on_signal(s, sfd);
		else if (w.owner[k] == -2)
			return true;
		else
			dispatch(s, &s->tasks[w.owner[k]], w.fds[k].fd);
	}
	return false;
}

/*
 * srun 22.05 (launch_slurm.c _task_finish, srun_job.c fini_srun): a rank
 * killed by a signal outranks any exit code, the highest signal wins,
 * else the highest exit code; a signal becomes 128 + signal.
 */
static int exit_code(const struct step *s)
{
	int best = 0;
	bool have = false;

	for (int i = 0; i < s->ntasks; i++) {
		int st = s->tasks[i].status;

		if (!have) {
			best = st;
			have = true;
		} else if (WIFSIGNALED(st)) {
			if (!WIFSIGNALED(best) || WTERMSIG(st) > WTERMSIG(best))
				best = st;
		} else if (!WIFSIGNALED(best) && WEXITSTATUS(st) > WEXITSTATUS(best)) {
			best = st;
		}
	}
	if (WIFSIGNALED(best))
		return 128 + WTERMSIG(best);
	/* the other nodes' ranks, through their srun: theirs counts too */
	if (!WEXITSTATUS(best) && s->also && s->also_status)
		return WIFSIGNALED(s->also_status) ? 128 + WTERMSIG(s->also_status) :
						     WEXITSTATUS(s->also_status);
	return WEXITSTATUS(best);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static int make_tmpdir(struct step *s)
{
	const char *base = s->tmpdir ? s->tmpdir : getenv("TMPDIR");
	char *dir;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&dir, "%s/ckpt-step.XXXXXX", base) < 0)
		return -ENOMEM;
	if (!mkdtemp(dir)) {
		int e = errno;

		fprintf(stderr, "ckpt-step: mkdtemp %s: %s\n", dir, strerror(e));
		free(dir);
		return -e;
	}
	s->tmpdir = dir;
	s->own_tmpdir = true;
	return 0;
}

/* Our server, and one connection per rank, spliced to its socket. */
static int start_pmix(struct step *s, int abort_fd)
{
	int port, rc = make_tmpdir(s);

	if (!rc)
		rc = host_start(s, abort_fd);
	if (rc)
		return rc;
	port = host_server_port(s);
	if (port < 0)
		return port;
	for (int i = 0; i < s->ntasks; i++) {
		if (s->tasks[i].pmix < 0)
			continue;
		s->tasks[i].conn = handshake_connect(s, s->tasks[i].rank, port);
		if (s->tasks[i].conn < 0)
			return s->tasks[i].conn;
	}
	return 0;
}

static bool any_pmix(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->tasks[i].pmix >= 0)
			return true;
	return false;
}

static int block_signals(void)
{
	sigset_t set;

	static const int sigs[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP };

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		/*
		 * An ignored signal never reaches a signalfd, and exec keeps
		 * SIG_IGN: a background `srun &` had SIGINT ignored (srun set
		 * its own handlers), and SIGCHLD ignored would reap the ranks
		 * behind our back.
		 */
		signal(sigs[i], SIG_DFL);
		sigaddset(&set, sigs[i]);
	}
	/* before libpmix starts its threads, so that they inherit the mask */
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int label_width(uint32_t n)
{
	int width = 1;

	n--; /* Slurm's _wid: for zero origin */
	while (n /= 10)
		width++;
	return width;
}

static int check_user(const struct step *s, bool allow_root)
{
	if (geteuid() == 0 && !allow_root) {
		fprintf(stderr, "ckpt-step: refusing to run as root (the step runs as its user)\n");
		return -EPERM;
	}
	if (geteuid() != s->uid || getegid() != s->gid) {
		fprintf(stderr, "ckpt-step: running as %u:%u, the step's user is %u:%u\n",
			geteuid(), getegid(), s->uid, s->gid);
		return -EPERM;
	}
	return 0;
}

/*
 * Every --task pid must be our child: we signal them, and only a child's
 * pid cannot be reused under us before we reap it.
 */
static bool our_child(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 1, " %*c %d", &ppid);
	if (f)
		fclose(f);
	return ppid == getpid();
}

static int check_children(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++)
		if (!our_child(s->tasks[i].pid)) {
			fprintf(stderr, "ckpt-step: task %u: pid %d is not a child of ckpt-step\n",
				s->tasks[i].rank, s->tasks[i].pid);
			return -ESRCH;
		}
	if (s->also && !our_child(s->also)) {
		fprintf(stderr, "ckpt-step: --also %d: not a child of ckpt-step\n", s->also);
		return -ESRCH;
	}
	return 0;
}

static int setup(struct step *s, int argc, char **argv, int *sfd, int abort_pipe[2])
{
	const char *pending = NULL;
	bool allow_root = false;
	int rc = step_parse_args(s, argc, argv, &allow_root, &pending);

	if (rc || (rc = check_user(s, allow_root)) || (rc = check_children(s)))
		return rc;
	s->width = label_width(s->size);
	for (int i = 0; i < s->ntasks; i++)
		close_fd(&s->tasks[i].in); /* the step's stdin was /dev/null */
	*sfd = block_signals();
	if (*sfd < 0 || pipe2(abort_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (pending && (rc = stdio_pending(s, pending)))
		return rc;
	reap(s); /* ranks that ended before we blocked SIGCHLD */
	return any_pmix(s) ? start_pmix(s, abort_pipe[1]) : 0;
}

/*
 * No PMIx_server_finalize: 4.2.2's crashes (SIGSEGV in it) when a fence
 * was pending and its participants are gone, as after an abort, and that
 * would turn the step's exit status into 139.  Nothing it releases
 * outlives this process but its files, removed here; _exit, so that no
 * exit handler runs beside libpmix's threads.
 */
static void finish(struct step *s, int code)
{
	if (s->own_tmpdir)
		nftw(s->tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	fflush(NULL);
	_exit(code);
}

int main(int argc, char **argv)
{
	static struct step s = { .pmix = { "native", "v41", 1, "ds21", NULL } };
	int sfd = -1, abort_pipe[2] = { -1, -1 };
	char version[32];
	bool aborted = false;

	/* a rank's libpmix is, on one node, the one we are built with */
	snprintf(version, sizeof(version), "%ld.%ld.%ld", (long)PMIX_VERSION_MAJOR,
		 (long)PMIX_VERSION_MINOR, (long)PMIX_VERSION_RELEASE);
	s.pmix.version = version;
	if (setup(&s, argc, argv, &sfd, abort_pipe)) {
		if (s.ntasks && sfd >= 0)
			kill_ranks(&s, SIGKILL); /* they cannot go on without us */
		finish(&s, 1);
	}
	while (!finished(&s)) {
		if (!aborted && loop_once(&s, sfd, abort_pipe[0])) {
			aborted = true;
			close_fd(&abort_pipe[0]);
			kill_ranks(&s, SIGKILL);
		} else if (aborted) {
			loop_once(&s, sfd, -1);
		}
	}
	finish(&s, aborted ? 1 : exit_code(&s));
}
