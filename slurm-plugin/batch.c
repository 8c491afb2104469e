/*
 * ckpt-batch: the wrapper the ckpt plugin puts in place of a job's batch
 * script (argv[0] swapped in slurm_spank_task_init; the script's path is
 * in CKPT_BATCH_SCRIPT, its arguments follow ours).  It runs the script as
 * its child and stays the "batch shell" Slurm signals, so that:
 *   - SIGUSR1, the job's pre-termination signal (--signal=B:USR1@T, sent at
 *     preemption with SlurmctldParameters=preempt_send_user_signal -- so in
 *     Slurm 22.05, slurm.conf(5); later releases move it to
 *     PreemptParameters=send_user_signal -- or T seconds before the time
 *     limit), runs `ckptctl checkpoint vacate $SLURM_JOB_ID`
 *     (CKPT_CKPTCTL, else ckptctl from PATH) while the job goes on;
 *   - every other signal it gets is passed on to the script;
 *   - it ends as the script ended (same exit code, or the same signal), but
 *     only once a vacate in progress has finished, so that Slurm does not
 *     see the job end before the checkpoint is committed and the requeue
 *     asked for.
 * Everything it says goes to the job's stderr, prefixed "ckpt-batch:".
 *
 * A job with --checkpoint=manual (CKPT_POLICY=manual) is checkpointed only
 * when someone asks (`ckptctl checkpoint create`): a SIGUSR1 is logged and
 * nothing else, and at preemption Slurm requeues the job without a new
 * checkpoint; the requeued run restores its latest set, as below.
 *
 * The same SIGUSR1 comes at preemption and T seconds before the job's
 * time limit.  Slurm marks a preemption (the job's PreemptTime, asked
 * with slurm_load_job); any other SIGUSR1 is taken as the time limit's,
 * and the vacate then does what CKPT_TIMELIMIT says (the plugin's
 * --checkpoint-timelimit: stop, or requeue:N, counted by ckptctl), so
 * that a time limit never extends a job forever.
 *
 * A job whose script the vacate stopped ends with CKPT_EXIT_VACATED (75,
 * EX_TEMPFAIL: stopped with a checkpoint, go on by requeueing it) instead
 * of the SIGKILL the dump ended it with, which Slurm shows as a failure
 * (Reason=NonZeroExitCode).  A requeued job is requeued before that.
 *
 * A requeued job (SLURM_RESTART_COUNT > 0) goes on from its latest
 * checkpoint: `ckptctl restore --job JOBID` runs in place of the script
 * (through ckptd, which restores the job's tree and hands back its exit
 * status; signals to ckptctl reach the tree), into this run's cgroups
 * (--cgroups relative).  If there is no usable
 * checkpoint, the restore fails before the tree runs and the script starts
 * afresh; the job's stderr says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CKPT_EXIT_VACATED 75

static const int passed_signals[] = { SIGUSR2, SIGTERM, SIGINT,	 SIGHUP,
				      SIGQUIT, SIGCONT, SIGALRM, SIGXCPU };

struct batch {
	const char *job;
	const char *ckptctl;
	pid_t script, vacate;
	int script_status, script_done;
	int manual;         /* --checkpoint=manual: no vacate on SIGUSR1 */
	int restoring;      /* script is `ckptctl restore`, the tree not yet running */
	int vacated;        /* our vacate succeeded: it stopped the script */
	char timelimit[48]; /* --timelimit=ACTION for the vacate at the time limit */
	char pidfile[64];   /* written by ckptctl once the restored tree runs */
};

#define say(b, fmt, ...) fprintf(stderr, "ckpt-batch: job %s: " fmt "\n", (b)->job, ##__VA_ARGS__)

static void watched_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof(passed_signals) / sizeof(passed_signals[0]); i++)
		sigaddset(set, passed_signals[i]);
}

/* fork + exec with every signal unblocked again in the child. */
static pid_t spawn(char *const argv[])
{
	sigset_t none;
	pid_t pid = fork();

	if (pid)
		return pid;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(argv[0], argv);
	fprintf(stderr, "ckpt-batch: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Why this SIGUSR1: 1 Slurm's preemption, 0 the time limit (or a user's
 * signal), -1 unknown.  Slurm sets the job's preempt_time when it
 * preempts it (compared with this run's start: a requeued job keeps the
 * time of an earlier preemption).  libslurm exits the process on a
 * missing slurm.conf: it is looked for first. */
static int preempted(const struct batch *b)
{
	const char *conf = getenv("SLURM_CONF");
	job_info_msg_t *msg = NULL;
	int yes = -1;

	if (access(conf ? conf : "/etc/slurm/slurm.conf", R_OK))
		return -1;
	slurm_init(NULL);
	if (slurm_load_job(&msg, (uint32_t)strtoul(b->job, NULL, 10), SHOW_ALL) || !msg) {
		say(b, "SIGUSR1: cannot ask Slurm whether it preempts the job: %s",
		    slurm_strerror(slurm_get_errno()));
		return -1;
	}
	if (msg->record_count) {
		const slurm_job_info_t *j = &msg->job_array[0];
		yes = j->preempt_time && j->preempt_time >= j->start_time;
	}
	slurm_free_job_info_msg(msg);
	return yes;
}

static void start_vacate(struct batch *b)
{
	char *argv[] = { (char *)b->ckptctl, "checkpoint", "vacate", (char *)b->job, NULL, NULL };

	if (b->vacate > 0) {
		say(b, "SIGUSR1: a vacate is already running");
		return;
	}
	/* Unknown: a plain vacate, as at preemption.  Its requeue needs the
	 * slurmctld that did not answer: it does not extend the job either. */
	int why = preempted(b);
	if (!why)
		argv[4] = b->timelimit;
	say(b, "SIGUSR1 (%s): running %s checkpoint vacate %s%s%s",
	    why > 0 ? "preemption" : why ? "preemption or time limit" : "time limit", b->ckptctl,
	    b->job, argv[4] ? " " : "", argv[4] ? argv[4] : "");
	b->vacate = spawn(argv);
	if (b->vacate < 0) {
		say(b, "vacate: fork: %s; the job ends without a checkpoint", strerror(errno));
		b->vacate = 0;
	}
}

static void vacate_ended(struct batch *b, int status)
{
	b->vacate = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		say(b, "vacate done");
		b->vacated = 1;
		return;
	}
	if (WIFEXITED(status))
		say(b, "vacate FAILED (%s exited with %d); Slurm ends or requeues the job "
		       "without a checkpoint", b->ckptctl, WEXITSTATUS(status));
	else
		say(b, "vacate FAILED (%s killed by signal %d); Slurm ends or requeues the job "
		       "without a checkpoint", b->ckptctl, WTERMSIG(status));
}

static void reap(struct batch *b)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == b->script) {
			b->script_status = status;
			b->script_done = 1;
		} else if (pid == b->vacate) {
			vacate_ended(b, status);
		}
	}
}

static void handle(struct batch *b, int sig)
{
	if (sig == SIGCHLD)
		reap(b);
	else if (sig == SIGUSR1 && b->manual)
		say(b, "SIGUSR1: --checkpoint=manual: no checkpoint (`ckptctl checkpoint create` "
		       "makes them); a requeued run restores the latest");
	else if (sig == SIGUSR1 && b->restoring)
		say(b, "SIGUSR1 while the restore is starting: no checkpoint now");
	else if (sig == SIGUSR1)
		start_vacate(b);
	else if (!b->script_done)
		kill(b->script, sig);
}

/* The dump of a vacate killed the script: SIGKILL, or 137 from a
 * `ckptctl restore` whose tree it was. */
static int killed(int status)
{
	return (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
	       (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL);
}

/* Leave the way the script left: its exit code, or its signal. */
static int finish(const struct batch *b)
{
	int sig;

	if (b->vacated && killed(b->script_status)) {
		say(b, "stopped by the vacate: exit %d", CKPT_EXIT_VACATED);
		return CKPT_EXIT_VACATED;
	}
	if (WIFEXITED(b->script_status))
		return WEXITSTATUS(b->script_status);
	sig = WTERMSIG(b->script_status);
	signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	raise(sig);
	return 128 + sig;
}

static int restarted(void)
{
	const char *n = getenv("SLURM_RESTART_COUNT");
	return n && atoi(n) > 0;
}

/* A requeued job's output, without --open-mode=append, is the file
 * slurmstepd opened with O_TRUNC and without O_APPEND.  The restore puts
 * the job's lines before the checkpoint back into it from the set (its
 * own O_APPEND description, libckpt/output-copy.c); what we and ckptctl
 * then write through slurmstepd's description would land at that
 * description's offset, over those lines.  Appending, it lands after
 * them (the description is slurmstepd's too: its own writes append as
 * well, as with --open-mode=append). */
static void append_output(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_APPEND) || fstat(fd, &st) || !S_ISREG(st.st_mode))
		return;
	if (fcntl(fd, F_SETFL, fl | O_APPEND))
		fprintf(stderr, "ckpt-batch: fd %d: cannot make it append: %s\n", fd,
			strerror(errno));
}

/* Run `ckptctl restore --job JOB` as the "script". */
static void start_restore(struct batch *b)
{
	/* --skip-file-check: slurmd writes the batch script's spool copy
	 * anew for each run of the job, so its mtime always changed.
	 * --cgroups relative: the tree goes into this run's step cgroup (the
	 * one we run in, which ckptd's worker joins), its sub-cgroups below
	 * it, not back into the dumped run's paths (docs/cgroups.md).
	 * --cpu-map job: likewise a task's CPU binding is one within the
	 * allocation; this run's has other CPU numbers, and a binding that
	 * does not fit is mapped onto them, count and NUMA node kept
	 * (docs/placement.md). */
	char *argv[] = { (char *)b->ckptctl, "restore", "--job", (char *)b->job, "--pidfile",
			 b->pidfile, "--skip-file-check", "--cgroups", "relative", "--cpu-map", "job",
			 NULL };
	const char *tmp = getenv("TMPDIR");
	snprintf(b->pidfile, sizeof(b->pidfile), "%.40s/ckpt-batch.%d.pid", tmp ? tmp : "/tmp",
		 (int)getpid());
	unlink(b->pidfile);
	say(b, "requeued: restoring the latest checkpoint");
	b->script = spawn(argv);
	b->restoring = b->script > 0;
}

/* The restored tree runs once ckptctl wrote its pid. */
static void check_restored(struct batch *b)
{
	FILE *f = fopen(b->pidfile, "r");
	int pid = 0;
	if (f && fscanf(f, "%d", &pid) == 1 && pid > 0) {
		b->restoring = 0;
		say(b, "restored from the latest checkpoint: pid %d", pid);
		unlink(b->pidfile);
	}
	if (f)
		fclose(f);
}

/* The restore ended before the tree ran: start the script afresh. */
static void restore_failed(struct batch *b, char **argv)
{
	b->restoring = 0;
	unlink(b->pidfile);
	if (WIFEXITED(b->script_status))
		say(b, "no usable checkpoint (%s restore exited with %d): starting the script "
		       "afresh", b->ckptctl, WEXITSTATUS(b->script_status));
	else
		say(b, "no usable checkpoint (%s restore killed by signal %d): starting the "
		       "script afresh", b->ckptctl, WTERMSIG(b->script_status));
	b->script_done = 0;
	b->script = spawn(argv);
}

int main(int argc, char **argv)
{
	struct batch b = { .job = getenv("SLURM_JOB_ID") };
	char *script = getenv("CKPT_BATCH_SCRIPT");
	sigset_t set;
	int sig;

	if (!script || !*script) {
		fprintf(stderr, "ckpt-batch: CKPT_BATCH_SCRIPT is not set: the ckpt Slurm "
				"plugin runs me in place of a batch script\n");
		return 2;
	}
	if (!b.job)
		b.job = "?";
	b.ckptctl = getenv("CKPT_CKPTCTL");
	if (!b.ckptctl || !*b.ckptctl)
		b.ckptctl = "ckptctl";
	const char *policy = getenv("CKPT_POLICY");
	b.manual = policy && !strcmp(policy, "manual");
	const char *limit = getenv("CKPT_TIMELIMIT");
	snprintf(b.timelimit, sizeof(b.timelimit), "--timelimit=%.30s",
		 limit && *limit ? limit : "stop");

	watched_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	argv[0] = script;
	if (restarted()) {
		append_output(STDOUT_FILENO);
		append_output(STDERR_FILENO);
		start_restore(&b);
	}
	else
		b.script = spawn(argv);
	if (b.script < 0) {
		fprintf(stderr, "ckpt-batch: fork: %s\n", strerror(errno));
		return 1;
	}
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	while (!b.script_done || b.vacate > 0 || b.restoring) {
		sig = b.restoring ? sigtimedwait(&set, NULL, &tick) : sigwaitinfo(&set, NULL);
		if (sig > 0)
			handle(&b, sig);
		if (b.restoring)
			check_restored(&b);
		if (b.restoring && b.script_done)
			restore_failed(&b, argv);
	}
	return finish(&b);
}
