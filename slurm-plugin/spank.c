/*
 * ckpt.so: the SPANK plugin that ties Slurm jobs to ckpt.
 *
 * Options (sbatch, salloc, srun): --checkpoint[=on-preempt|periodic|manual],
 * --checkpoint-dir=DIR, --checkpoint-interval=MIN,
 * --checkpoint-timelimit=stop|requeue[:N] (what the checkpoint at the time
 * limit does: see policy.h; default the site's, else stop).  In a job that asked for
 * checkpoints, slurmstepd (remote context) then:
 *   - writes the job's policy file (policy.h) as root, before any task runs;
 *   - in the batch step, replaces the script by the ckpt-batch wrapper
 *     (the script's path goes in CKPT_BATCH_SCRIPT), so that the job's
 *     pre-termination signal (--signal=B:USR1@T) reaches the wrapper, which
 *     vacates the job with ckptctl;
 *   - registers the step's tasks (pids, uid, cgroup) with the node's ckptd
 *     once all are forked, and unregisters the step when it ends; the job's
 *     epilog unregisters the whole job in case a step died first.
 * When ckptd does not answer as a step starts, the step is refused (the
 * default, require_agent=yes): its tasks exit 1 before the script runs,
 * the reason goes to slurmd's log, the job's stderr and its AdminComment;
 * with require_agent=no it runs without checkpoints and says so there.
 *
 * Plugin arguments (plugstack.conf): wrapper=PATH ckptctl=PATH jobdir=DIR
 * socket=PATH (ckptd's socket, when not the client library's default; it
 * is also exported as CKPT_SOCKET to the job's tasks, for their ckptctl);
 * timelimit=stop|requeue:N, the default of --checkpoint-timelimit (stop);
 * timelimit_max=N, the most time-limit requeues a user may ask for (10);
 * require_agent=yes|no, whether a --checkpoint step may run when the
 * node's ckptd does not answer (yes: it may not).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "policy.h"
#include "register.h"

SPANK_PLUGIN(ckpt, 1);

static struct job_policy policy;
static const char *wrapper_path = CKPT_LIBEXEC "/ckpt-batch";
static const char *ckptctl_path = CKPT_BINDIR "/ckptctl";
static const char *job_dir = JOB_POLICY_DIR;
/* socket=PATH: ckptd's socket, for the client library in slurmstepd and
 * for the ckptctl of the job's tasks (task_init exports it); NULL: the
 * default. */
static const char *agent_socket;
/* The site's default: stop, so that no job is extended unless someone
 * asked; and a bound on what users may ask. */
static struct timelimit site_timelimit = { TIMELIMIT_STOP, 0 };
static uint32_t site_timelimit_max = 10;
static int user_timelimit; /* --checkpoint-timelimit given */
/* Refuse a --checkpoint step where ckptd does not answer.  Yes by default:
 * the user asked for checkpoints, and a job that runs without them loses
 * all its work at the first preemption, time limit or node failure, hours
 * later and in silence; a refusal at start costs seconds and names the
 * node's problem.  A site that prefers to run such jobs unprotected (an
 * agent being rolled out) says require_agent=no. */
static int require_agent = 1;
/* Set in slurmstepd before the tasks fork when the agent does not answer:
 * what the tasks print (and, with require_agent, why they exit). */
static char agent_missing[768];

static int opt_checkpoint(int val, const char *arg, int remote)
{
	/* srun/sbatch give no argument; slurmstepd gets it back as "", and
	 * an srun inside the job as "(null)": sbatch exported the option to
	 * the job's environment (SLURM_SPANK__SLURM_SPANK_OPTION_ckpt_checkpoint)
	 * printing its NULL argument with %s. */
	if (!arg || !*arg || !strcmp(arg, "(null)")) {
		policy.kind = POLICY_ON_PREEMPT;
		return 0;
	}
	if (policy_parse_kind(arg, &policy.kind)) {
		slurm_error("ckpt: --checkpoint=%s: use on-preempt, periodic or manual", arg);
		return -1;
	}
	return 0;
}

static int opt_dir(int val, const char *arg, int remote)
{
	if (policy_check_dir(arg)) {
		slurm_error("ckpt: --checkpoint-dir=%s: need an absolute path", arg ? arg : "");
		return -1;
	}
	strcpy(policy.dir, arg); /* length checked */
	return 0;
}

static int opt_interval(int val, const char *arg, int remote)
{
	if (policy_parse_interval(arg, &policy.interval_min)) {
		slurm_error("ckpt: --checkpoint-interval=%s: need minutes, 1 to 525600",
			    arg ? arg : "");
		return -1;
	}
	return 0;
}

static int opt_timelimit(int val, const char *arg, int remote)
{
	struct timelimit t = site_timelimit;

	if (policy_parse_timelimit(arg, &t)) {
		slurm_error("ckpt: --checkpoint-timelimit=%s: use stop, requeue or requeue:N "
			    "(N from 1 to %u)", arg ? arg : "", site_timelimit_max);
		return -1;
	}
	if (t.requeues > site_timelimit_max) {
		slurm_error("ckpt: --checkpoint-timelimit=%s: this site allows at most %u "
			    "time-limit requeues (plugstack.conf timelimit_max)", arg, site_timelimit_max);
		return -1;
	}
	policy.timelimit = t;
	user_timelimit = 1;
	return 0;
}

/* Registered from slurm_spank_init: sbatch and salloc ignore an exported
 * spank_options table. */
static struct spank_option options[] = {
	{ "checkpoint", "[on-preempt|periodic|manual]",
	  "Checkpoint this job (default on-preempt: when it is preempted or its time "
	  "limit nears; needs --signal=B:USR1@T, see ckpt-sbatch).  Refused on a node whose "
	  "ckpt agent does not answer, unless the site set require_agent=no",
	  2, 0, opt_checkpoint },
	{ "checkpoint-dir", "DIR", "Where this job's checkpoints go (shared storage)", 1, 0,
	  opt_dir },
	{ "checkpoint-interval", "MIN", "Minutes between checkpoints (--checkpoint=periodic)",
	  1, 0, opt_interval },
	{ "checkpoint-timelimit", "stop|requeue[:N]",
	  "At the time limit: checkpoint and stop (default), or checkpoint and requeue, at "
	  "most N times", 1, 0, opt_timelimit },
	SPANK_OPTIONS_TABLE_END
};

/* timelimit=ACTION and timelimit_max=N of plugstack.conf. */
static void parse_site_timelimit(const char *key, const char *val)
{
	char *end;
	unsigned long n;

	if (!strcmp(key, "timelimit")) {
		if (policy_parse_timelimit(val, &site_timelimit))
			slurm_error("ckpt: plugstack.conf: timelimit=%s: use stop or requeue:N", val);
		return;
	}
	n = strtoul(val, &end, 10);
	if (*val < '0' || *val > '9' || *end || n > TIMELIMIT_MAX_REQUEUES)
		slurm_error("ckpt: plugstack.conf: timelimit_max=%s: a number, 0 to %u", val,
			    TIMELIMIT_MAX_REQUEUES);
	else
		site_timelimit_max = (uint32_t)n;
}

static void set_agent_socket(const char *path)
{
	agent_socket = path;
	setenv("CKPT_SOCKET", path, 1); /* read by the client library, here */
}

static void parse_plugin_args(int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		if (!strncmp(av[i], "wrapper=", 8))
			wrapper_path = av[i] + 8;
		else if (!strncmp(av[i], "ckptctl=", 8))
			ckptctl_path = av[i] + 8;
		else if (!strncmp(av[i], "jobdir=", 7))
			job_dir = av[i] + 7;
		else if (!strncmp(av[i], "timelimit=", 10))
			parse_site_timelimit("timelimit", av[i] + 10);
		else if (!strncmp(av[i], "timelimit_max=", 14))
			parse_site_timelimit("timelimit_max", av[i] + 14);
		else if (!strcmp(av[i], "require_agent=yes"))
			require_agent = 1;
		else if (!strcmp(av[i], "require_agent=no"))
			require_agent = 0;
		else if (!strncmp(av[i], "require_agent=", 14))
			slurm_error("ckpt: plugstack.conf: %s: use require_agent=yes or no", av[i]);
		else if (!strncmp(av[i], "socket=", 7))
			set_agent_socket(av[i] + 7);
		else
			slurm_error("ckpt: plugstack.conf: unknown argument '%s'", av[i]);
	}
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	parse_plugin_args(ac, av);
	/* slurmd and the prolog/epilog take no options. */
	if (ctx != S_CTX_LOCAL && ctx != S_CTX_REMOTE && ctx != S_CTX_ALLOCATOR)
		return 0;
	for (struct spank_option *o = options; o->name; o++)
		if (spank_option_register(sp, o) != ESPANK_SUCCESS) {
			slurm_error("ckpt: cannot register --%s", o->name);
			return -1;
		}
	return 0;
}

/* The options a --checkpoint-dir or -interval implies. */
static void complete_policy(void)
{
	if (!user_timelimit)
		policy.timelimit = site_timelimit;
	if (policy.kind == POLICY_NONE && policy.interval_min)
		policy.kind = POLICY_PERIODIC;
	else if (policy.kind == POLICY_NONE && policy.dir[0])
		policy.kind = POLICY_ON_PREEMPT;
}

static int get_ids(spank_t sp, uint32_t *job, uint32_t *step, uid_t *uid)
{
	if (spank_get_item(sp, S_JOB_ID, job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, uid) != ESPANK_SUCCESS) {
		slurm_error("ckpt: cannot get the job's ids");
		return -1;
	}
	return 0;
}

/* The job's AdminComment (scontrol show job, sacct) says why we refused
 * it; slurmstepd runs as root, which may set it. */
static void note_refusal(uint32_t job, const char *why)
{
	job_desc_msg_t d;
	char note[sizeof(agent_missing)];

	slurm_init_job_desc_msg(&d);
	d.job_id = job;
	snprintf(note, sizeof(note), "%s", why);
	d.admin_comment = note;
	if (slurm_update_job(&d))
		slurm_error("ckpt: job %u: cannot set its AdminComment: %s", job,
			    slurm_strerror(slurm_get_errno()));
}

/* In slurmstepd, before the tasks fork: does the node's agent answer?  If
 * not, agent_missing says so, for the tasks to print (task_init). */
static void check_agent(uint32_t job)
{
	char why[512], host[256] = "";

	if (!agent_check(why, sizeof(why)))
		return;
	gethostname(host, sizeof(host) - 1);
	if (require_agent) {
		snprintf(agent_missing, sizeof(agent_missing),
			 "ckpt: job %u refused on node %.64s: %.300s; this site runs --checkpoint jobs only "
			 "where the agent answers (plugstack.conf require_agent=yes)", job, host, why);
		slurm_error("%s", agent_missing);
		note_refusal(job, agent_missing);
	} else {
		snprintf(agent_missing, sizeof(agent_missing),
			 "ckpt: job %u: warning: %.300s on node %.64s; the job runs WITHOUT checkpoints "
			 "(plugstack.conf require_agent=no)", job, why, host);
		slurm_error("%s", agent_missing);
	}
}

/* In slurmstepd, as root, before the tasks start: the batch step writes
 * the job's policy file; an srun step of a job without one (srun outside
 * sbatch) writes it if it is not there yet. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	const char *why;
	uint32_t job, step;
	uid_t uid;
	int err;

	complete_policy();
	if (policy.kind == POLICY_NONE)
		return 0;
	if (policy_check(&policy, &why)) {
		slurm_error("ckpt: %s", why);
		return -1;
	}
	if (spank_context() != S_CTX_REMOTE || get_ids(sp, &job, &step, &uid))
		return 0;
	if (step == SLURM_EXTERN_CONT)
		return 0;
	err = policy_write(job_dir, job, uid, &policy, step != SLURM_BATCH_SCRIPT);
	if (err)
		slurm_error("ckpt: job %u: %s/%u.policy: %s", job, job_dir, job, strerror(-err));
	check_agent(job);
	return 0;
}

/* In the batch task, as the user, just before exec: run the wrapper with
 * the script's arguments instead of the script.  The task's argv and env
 * are the ones slurmstepd passes to execve, in this child only. */
static int wrap_batch_script(spank_t sp)
{
	char **argv, *wrapper, limit[32];
	int argc;

	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1) {
		slurm_error("ckpt: batch step: no argv to wrap");
		return -1;
	}
	if (access(wrapper_path, X_OK)) {
		slurm_error("ckpt: %s: %s; the job runs unwrapped and is not checkpointed "
			    "on signal", wrapper_path, strerror(errno));
		return 0;
	}
	wrapper = strdup(wrapper_path);
	if (!wrapper ||
	    spank_setenv(sp, "CKPT_BATCH_SCRIPT", argv[0], 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "CKPT_CKPTCTL", ckptctl_path, 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "CKPT_POLICY", policy_kind_name(policy.kind), 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "CKPT_TIMELIMIT", policy_timelimit_name(&policy.timelimit, limit,
								     sizeof(limit)), 1) != ESPANK_SUCCESS) {
		slurm_error("ckpt: batch step: cannot set up the wrapper");
		free(wrapper);
		return -1;
	}
	argv[0] = wrapper; /* the child execs it: never freed */
	return 0;
}

/* In each task of a --checkpoint job: socket= reaches its ckptctl (the
 * batch wrapper's vacate and restore, the user's own) as CKPT_SOCKET, so
 * that a site that moves the socket says so once, in plugstack.conf.  It
 * wins over a CKPT_SOCKET the job brought from where it was submitted. */
static void export_agent_socket(spank_t sp)
{
	if (agent_socket && spank_setenv(sp, "CKPT_SOCKET", agent_socket, 1) != ESPANK_SUCCESS)
		slurm_error("ckpt: cannot set CKPT_SOCKET=%s in the job's environment", agent_socket);
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	uint32_t step;

	if (policy.kind == POLICY_NONE || spank_context() != S_CTX_REMOTE)
		return 0;
	export_agent_socket(sp);
	/* In the task, before the script: its stderr is the job's. */
	if (agent_missing[0]) {
		fprintf(stderr, "%s\n", agent_missing);
		if (require_agent)
			return -1; /* slurmstepd: _exit(1) before exec */
	}
	if (spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    step != SLURM_BATCH_SCRIPT)
		return 0;
	return wrap_batch_script(sp);
}

/* In slurmstepd, as root, after each task is forked. */
int slurm_spank_task_post_fork(spank_t sp, int ac, char **av)
{
	uint32_t job, step, ntasks, nnodes = 0;
	uid_t uid;
	pid_t pid;

	/* A refused step's tasks exit at once: nothing to register. */
	if (policy.kind == POLICY_NONE || (agent_missing[0] && require_agent) ||
	    get_ids(sp, &job, &step, &uid) || step == SLURM_EXTERN_CONT)
		return 0;
	if (spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) != ESPANK_SUCCESS)
		return 0;
	/* The job's nodes, which its checkpoint covers: the allocation's
	 * (S_JOB_NNODES is the step's: 1 for the batch step, and for an
	 * `srun -N1` of mpirun's daemon on the other node). */
	char n[16];
	if (spank_getenv(sp, "SLURM_JOB_NUM_NODES", n, sizeof(n)) == ESPANK_SUCCESS)
		nnodes = (uint32_t)strtoul(n, NULL, 10);
	if (nnodes < 1 && spank_get_item(sp, S_JOB_NNODES, &nnodes) != ESPANK_SUCCESS)
		nnodes = 1;
	step_add_task(job, step, uid, pid, ntasks, nnodes, &policy);
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	if (spank_context() == S_CTX_REMOTE)
		step_unregister();
	return 0;
}

/* Did the job use any of our options?  (In the epilog, from its env.) */
static int job_asked_checkpoint(spank_t sp)
{
	char *arg;

	for (struct spank_option *o = options; o->name; o++)
		if (spank_option_getopt(sp, o, &arg) == ESPANK_SUCCESS)
			return 1;
	return 0;
}

/* slurmd's epilog, as root: forget every step of a checkpointed job in
 * ckptd, in case a step's slurmstepd died before it could. */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	uint32_t job;

	parse_plugin_args(ac, av); /* slurm_spank_init is not called here */
	if (job_asked_checkpoint(sp) && spank_get_item(sp, S_JOB_ID, &job) == ESPANK_SUCCESS)
		job_unregister(job);
	return 0;
}
