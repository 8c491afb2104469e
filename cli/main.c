/*
 * ckptctl: the one command-line tool.  Subcommands follow criu where that
 * makes sense: check, dump, restore; plus demo.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "agent.h"
#include "demo.h"
#include "image.h"
#include "place.h"
#include "progress-bar.h"
#include "storage.h"

/* Every command and option; tests/cli/man.sh checks that each option of
 * the code is here and in ckptctl(8). */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: ckptctl COMMAND [options]\n"
		"  check [-v]                    kernel features ckpt relies on (-v: why one is\n"
		"                                missing)\n"
		"  dump -t|--tree PID -D|--images-dir DIR [-R|--leave-running]\n"
		"       [-s|--leave-stopped] [-v|--verbose] [--stats]\n"
		"       [--ext-unix-sk[=INODE]] [--tcp-established] [--skip-in-flight] [--shell-job]\n"
		"       [--ghost-limit SIZE] [--parent SET] [--output-copy-limit SIZE]\n"
		"       [--step CLIENT:PID[,PID...]]  (an srun step of the tree: docs/mpi.md)\n"
		"       [--page-server HOST:PORT] [--no-snapshot] [--track]\n"
		"                                checkpoint the tree rooted at PID (killed afterwards\n"
		"                                unless -R or -s); with -R the tree runs on while a\n"
		"                                copy-on-write snapshot of its memory is written\n"
		"                                (--no-snapshot: frozen until the end);\n"
		"                                --output-copy-limit: the largest\n"
		"                                output file (O_APPEND, the job's own) kept with the\n"
		"                                set (64M; ckpt.conf dump.*; 0: none);\n"
		"                                --page-server: the set is sent to a page server,\n"
		"                                DIR keeps only its metadata\n"
		"                                --track: dirty-page tracking for later --parent\n"
		"                                dumps (with -R)\n"
		"  pre-dump [dump options]       dump -R --track\n"
		"  dump -t PID --check-only [...]  what such a dump would refuse, nothing stopped\n"
		"                                or written (exit 0: it would go through)\n"
		"  dump -t PID --job JOBID [--base DIR] [--uid UID] [--parent latest|SEQ] ...\n"
		"                                a new set BASE/JOBID/SEQ (ckpt.conf: storage.*)\n"
		"  restore -D|--images-dir DIR [-d|--detach] [--lazy] [--pidfile FILE]\n"
		"          [--pidns auto|never|always] [--netns auto|never|always]\n"
		"          [--shell-job] [--skip-file-check] [--keep-later-output] [--tcp-close]\n"
		"          [--inet-map OLD=NEW[,OLD=NEW...]] [--keep-net-lock (with -d)]\n"
		"          [--net-lock-fd N]     through ckptd: the kept lock's name to fd N once\n"
		"                                the tree runs (--keep-net-lock without -d)\n"
		"          [--as-job JOBID]      with -D, through ckptd: the tree becomes the job's\n"
		"                                tasks on this node (a node's part of its set)\n"
		"          [--step-relay NAME]   a node's part of a step on several nodes: its\n"
		"                                fences through ckpt-coord --relay NAME\n"
		"                                sockets on address OLD come back on NEW, peers OLD\n"
		"                                become NEW; the connections to peers outside the\n"
		"                                tree stay dropped until net-unlock NAME (printed)\n"
		"          [--verify|--no-verify] [--inherit-fd fd[N]:RESOURCE]\n"
		"          [--cgroups exact|relative|ignore] [--cgroup-root [HIER:]/OLD=/NEW]\n"
		"                                every thread back in its dumped cgroups (exact,\n"
		"                                the default), or the dumped root's cgroup mapped\n"
		"                                onto ours (relative); OLD prefix rewritten to NEW\n"
		"                                (HIER: memory, cpu,cpuacct, name=X, cgroup2)\n"
		"          [--cpu-cap all|fpu|none] [--cpu-map exact|job]\n"
		"                                the CPU features the set needs (all: every flag and\n"
		"                                xsave component, the default; fpu: the components;\n"
		"                                none: warn) and its CPU bindings: kept, else refused\n"
		"                                (exact) or mapped onto the allowed CPUs (job)\n"
		"          [-v|--verbose] [--stats]\n"
		"                                restore it; without -d, wait and exit with its\n"
		"                                status; --verify (the default) compares the tree\n"
		"                                with its images before it runs\n"
		"  restore --job JOBID [--base DIR] ...   the job's latest committed set\n"
		"  check-restore DIR|-D DIR|--job JOBID [--base DIR] [--cpu-cap C] [--cpu-map M]\n"
		"                                whether this node can restore the set, and why\n"
		"                                not; nothing is created (exit 0: yes)\n"
		"  cpu-features [--set DIR [--only F,...]]\n"
		"                                this CPU's flags for Slurm node Features; --set:\n"
		"                                the --constraint the set needs (docs/placement.md)\n"
		"  net-unlock NAME               lift a network lock restore --keep-net-lock left\n"
		"  page-server --port PORT [--dir DIR] [--address ADDR]\n"
		"                                receive one set sent by dump --page-server (munge:\n"
		"                                our uid or root) into DIR (default .), then exit\n"
		"  demo [-k|--keep]              checkpoint and restore an example counter (-k:\n"
		"                                keep its directory)\n"
		"  status [--json] [JOBID]       the agent's jobs and operations (ckptd)\n"
		"  status --nodes JOBID          the same from every node of a multi-node job (a step\n"
		"                                of one `ckptctl status --node-name` per node)\n"
		"  cancel JOBID                  stop the job's running dump\n"
		"  checkpoint create|vacate|restart|list|able|error|disable|enable JOBID [--json]\n"
		"                                the old scontrol checkpoint verbs (via ckptd; list\n"
		"                                also after the job's end, from storage; able exits\n"
		"                                0 yes, 1 no, 2 when it cannot ask)\n"
		"  checkpoint vacate JOBID --timelimit=stop|requeue:N\n"
		"                                at the time limit (the batch wrapper): requeue only\n"
		"                                N times per job, else stop\n"
		"  register --job J [--step S] [--uid U] [--cgroup C] [--policy P] [--dir D]\n"
		"           [--interval MIN] [--nodes N] PID...\n"
		"  unregister --job J [--step S] tell ckptd about a job's tasks\n"
		"  image show DIR|FILE | decode FILE | encode JSON FILE | info DIR\n"
		"  image verify [-v] DIR | x DIR ps|fds|mems\n"
		"                                look inside images\n"
		"  image squash DIR              make an incremental set self-contained\n"
		"  image ls [--base DIR] JOBID   the job's sets\n"
		"  image rm [--base DIR] JOBID SEQ   remove one set\n"
		"  image gc [--base DIR] JOBID   remove the job's incomplete sets\n"
		"  image gc --ended [--base DIR] remove the sets of Slurm jobs over for\n"
		"                                retention.ended_keep_s\n"
		"  help, -h, --help              this summary (man ckptctl: all of it)\n");
}

static int cmd_check(int argc, char **argv)
{
	int verbose = argc == 2 && !strcmp(argv[1], "-v");
	if (argc > 1 && !verbose) {
		fprintf(stderr, "ckptctl: check: unexpected argument '%s' (only -v)\n", argv[1]);
		return 1;
	}
	return ckpt_check(verbose) ? 1 : 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0 || v > 4194304)
		return -1;
	*out = (pid_t)v;
	return 0;
}

enum {
	OPT_STATS = 1000,
	OPT_CPU_CAP,
	OPT_CPU_MAP,
	OPT_PIDFILE,
	OPT_PIDNS,
	OPT_NETNS,
	OPT_EXT_UNIX_SK,
	OPT_TCP_ESTABLISHED,
	OPT_SKIP_IN_FLIGHT,
	OPT_SHELL_JOB,
	OPT_GHOST_LIMIT,
	OPT_PARENT,
	OPT_STEP,
	OPT_SKIP_FILE_CHECK,
	OPT_KEEP_LATER_OUTPUT,
	OPT_TCP_CLOSE,
	OPT_VERIFY,
	OPT_LAZY,
	OPT_NO_VERIFY,
	OPT_INHERIT_FD,
	OPT_JOB,
	OPT_BASE,
	OPT_UID,
	OPT_CHECK_ONLY,
	OPT_CGROUP_ROOT,
	OPT_CGROUPS,
	OPT_OUTPUT_COPY_LIMIT,
	OPT_PAGE_SERVER,
	OPT_NO_SNAPSHOT,
	OPT_TRACK,
	OPT_INET_MAP,
	OPT_KEEP_NET_LOCK,
	OPT_NET_LOCK_FD,
	OPT_AS_JOB,
	OPT_STEP_RELAY,
	OPT_PORT,
	OPT_DIR,
	OPT_ADDRESS,
};

#define MAX_REPEAT 64

/* Parse a size with an optional K/M/G suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (!*s || *end || errno || v > (~0ULL >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* --ext-unix-sk or --ext-unix-sk=INODE */
static int parse_ext_unix_sk(const char *arg, struct ckpt_dump_opts *o, uint64_t *inodes)
{
	char *end;
	if (!arg) {
		o->ext_unix_sk_all = 1;
		return 0;
	}
	unsigned long long v = strtoull(arg, &end, 10);
	if (!*arg || *end || o->nr_ext_unix_sk == MAX_REPEAT) {
		fprintf(stderr, "ckptctl: dump: --ext-unix-sk=%s: not a socket inode\n", arg);
		return -1;
	}
	inodes[o->nr_ext_unix_sk++] = v;
	o->ext_unix_sk = inodes;
	return 0;
}

/* --output-copy-limit SIZE: at most OUTPUT_COPY_MAX of libckpt, 4 GiB. */
static int parse_copy_limit(const char *arg, struct ckpt_dump_opts *o)
{
	if (parse_size(arg, &o->output_copy_limit) || o->output_copy_limit > (4ULL << 30)) {
		fprintf(stderr, "ckptctl: dump: --output-copy-limit %s: not a size up to 4G\n", arg);
		return -1;
	}
	o->has_output_copy_limit = 1;
	return 0;
}

#define MAX_STEPS 16
#define MAX_STEP_TASKS 1024

/* --step CLIENT:PID[,PID...]: an srun step of the tree (docs/mpi.md). */
static int parse_step(const char *arg, struct ckpt_dump_opts *o, struct ckpt_step *steps,
		      pid_t (*tasks)[MAX_STEP_TASKS])
{
	struct ckpt_step *st = &steps[o->nr_steps];
	char *end;
	long v = strtol(arg, &end, 10);
	if (o->nr_steps == MAX_STEPS || end == arg || *end != ':' || v <= 0)
		goto bad;
	st->client = (pid_t)v;
	st->tasks = tasks[o->nr_steps];
	st->nr_tasks = 0;
	do {
		const char *p = end + 1;
		v = strtol(p, &end, 10);
		if (end == p || v <= 0 || (*end && *end != ',') || st->nr_tasks == MAX_STEP_TASKS)
			goto bad;
		tasks[o->nr_steps][st->nr_tasks++] = (pid_t)v;
	} while (*end);
	o->steps = steps;
	o->nr_steps++;
	return 0;
bad:
	fprintf(stderr, "ckptctl: dump: --step %s: expected CLIENT:PID[,PID...]\n", arg);
	return -1;
}

/* A ckptd older than --page-server drops the field and commits the set
 * into DIR: say so rather than let the user believe it is on the server. */
static int agent_ignored_page_server(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/manifest", dir);
	if (access(path, F_OK))
		return 0;
	fprintf(stderr, "ckptctl: dump: ckptd does not know --page-server (an older ckptd): "
			"the set was committed into %s, not sent\n", dir);
	return 1;
}

static int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, 0, 't' },
		{ "images-dir", required_argument, 0, 'D' },
		{ "leave-running", no_argument, 0, 'R' },
		{ "leave-stopped", no_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },
		{ "stats", no_argument, 0, OPT_STATS },
		{ "ext-unix-sk", optional_argument, 0, OPT_EXT_UNIX_SK },
		{ "tcp-established", no_argument, 0, OPT_TCP_ESTABLISHED },
		{ "skip-in-flight", no_argument, 0, OPT_SKIP_IN_FLIGHT },
		{ "shell-job", no_argument, 0, OPT_SHELL_JOB },
		{ "ghost-limit", required_argument, 0, OPT_GHOST_LIMIT },
		{ "output-copy-limit", required_argument, 0, OPT_OUTPUT_COPY_LIMIT },
		{ "parent", required_argument, 0, OPT_PARENT },
		{ "step", required_argument, 0, OPT_STEP },
		{ "job", required_argument, 0, OPT_JOB },
		{ "base", required_argument, 0, OPT_BASE },
		{ "uid", required_argument, 0, OPT_UID },
		{ "check-only", no_argument, 0, OPT_CHECK_ONLY },
		{ "page-server", required_argument, 0, OPT_PAGE_SERVER },
		{ "no-snapshot", no_argument, 0, OPT_NO_SNAPSHOT },
		{ "track", no_argument, 0, OPT_TRACK },
		{ 0, 0, 0, 0 },
	};
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_dump_stats st;
	uint64_t ext_inodes[MAX_REPEAT];
	static struct ckpt_step steps[MAX_STEPS];
	static pid_t step_tasks[MAX_STEPS][MAX_STEP_TASKS];
	int c, stats = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:D:Rsv", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_pid(optarg, &o.pid)) {
				fprintf(stderr, "ckptctl: dump: '%s' is not a pid\n", optarg);
				return 1;
			}
			break;
		case 'D': o.dir = optarg; break;
		case 'R': o.leave_running = 1; break;
		case 's': o.leave_stopped = 1; break;
		case 'v': o.verbose++; break;
		case OPT_STATS: stats = 1; break;
		case OPT_EXT_UNIX_SK:
			if (parse_ext_unix_sk(optarg, &o, ext_inodes))
				return 1;
			break;
		case OPT_TCP_ESTABLISHED: o.tcp_established = 1; break;
		case OPT_SKIP_IN_FLIGHT: o.skip_in_flight = 1; break;
		case OPT_SHELL_JOB: o.shell_job = 1; break;
		case OPT_GHOST_LIMIT:
			if (parse_size(optarg, &o.ghost_limit)) {
				fprintf(stderr, "ckptctl: dump: --ghost-limit %s: not a size\n", optarg);
				return 1;
			}
			break;
		case OPT_OUTPUT_COPY_LIMIT:
			if (parse_copy_limit(optarg, &o))
				return 1;
			break;
		case OPT_PARENT: o.parent = optarg; break;
		case OPT_STEP:
			if (parse_step(optarg, &o, steps, step_tasks))
				return 1;
			break;
		case OPT_CHECK_ONLY: o.check_only = 1; break;
		case OPT_PAGE_SERVER: o.page_server = optarg; break;
		case OPT_NO_SNAPSHOT: o.no_snapshot = 1; break;
		case OPT_TRACK: o.track = 1; break;
		case OPT_JOB: o.job = optarg; break;
		case OPT_BASE: o.base = optarg; break;
		case OPT_UID: {
			char *end;
			unsigned long uid = strtoul(optarg, &end, 10);
			if (!*optarg || *end || uid >= (uid_t)-1) {
				fprintf(stderr, "ckptctl: dump: --uid %s: not a uid\n", optarg);
				return 1;
			}
			o.has_uid = 1;
			o.uid = (uid_t)uid;
			break;
		}
		default: bad_option("dump", c, argv); return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ckptctl: dump: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (o.check_only && (!o.pid || o.dir || o.job)) {
		fprintf(stderr, "ckptctl: dump --check-only needs -t PID, and no -D or --job\n");
		return 1;
	}
	if (!o.check_only && ((!o.pid && !o.job) || !o.dir == !o.job)) {
		fprintf(stderr, "ckptctl: dump needs -t PID and -D DIR or --job JOBID\n");
		return 1;
	}
	if (o.page_server && (!o.dir || o.check_only)) {
		fprintf(stderr, "ckptctl: dump --page-server needs -D DIR (its metadata), and no "
				"--job or --check-only\n");
		return 1;
	}
	if (!strcmp(argv[0], "pre-dump"))
		o.leave_running = o.track = 1;
	if (o.track && (!o.leave_running || o.leave_stopped || o.check_only)) {
		fprintf(stderr, "ckptctl: dump --track: the tree must go on running (-R)\n");
		return 1;
	}
	int route = agent_route("dump");
	if (route < 0)
		return 1;
	if (route && o.track) {
		fprintf(stderr, "ckptctl: dump --track: not through ckptd (its keeper would be "
				"ckptd's); run it as root without ckptd\n");
		return 1;
	}
	/* --job without -t: the tree ckptd has registered for the job. */
	if (!o.pid && !route) {
		fprintf(stderr, "ckptctl: dump --job %s without -t PID needs ckptd (the job's "
				"registered tasks)\n", o.job);
		return 1;
	}
	struct progress_bar bar;
	bar_init(&bar);
	o.progress = bar_callback;
	o.progress_arg = &bar;
	int ret = route ? agent_dump(&o, 0, &st) : ckpt_dump(&o, &st);
	bar_done(&bar);
	if (ret)
		return 1;
	if (route && o.page_server && agent_ignored_page_server(o.dir))
		return 1;
	if (o.check_only) {
		printf("pid %d: can be dumped (%u tasks, %u threads)\n", o.pid, st.nr_tasks,
		       st.nr_threads);
		return 0;
	}
	if (stats)
		printf("frozen_ms: %.1f\ndump_ms: %.1f\nmemory_bytes: %llu\nwritten_bytes: %llu\n"
		       "compression_ratio: %.3f\ntasks: %u\nthreads: %u\n",
		       ms(st.frozen_ns), ms(st.total_ns), (unsigned long long)st.memory_bytes,
		       (unsigned long long)st.written_bytes,
		       st.memory_bytes ? (double)st.written_bytes / (double)st.memory_bytes : 0.0,
		       st.nr_tasks, st.nr_threads);
	/* frozen_ms runs from the freeze to the thaw; snapshot_ms, from the
	 * thaw to the last snapshot written, the job running */
	if (stats)
		printf("snapshot_ms: %.1f\nsnapshot_tasks: %u\nfrozen_copy_tasks: %u\n",
		       ms(st.snapshot_ns), st.snapshot_tasks, st.frozen_copy_tasks);
	/* where frozen_ms went, step by step (ckpt_dump_phase); none from
	 * an agent that does not say */
	int phases = 0;
	for (int i = 0; i < CKPT_PHASE_NR; i++)
		phases |= st.phase_ns[i] != 0;
	for (int i = 0; stats && phases && i < CKPT_PHASE_NR; i++)
		printf("frozen_%s_ms: %.1f\n", ckpt_dump_phase_name(i), ms(st.phase_ns[i]));
	if (stats)
		printf("tracked_written_pages: %llu\ntracked_unread_pages: %llu\ntrack_keeper: %d\n",
		       (unsigned long long)st.tracked_written_pages,
		       (unsigned long long)st.tracked_unread_pages, (int)st.track_keeper);
	if (stats && o.job)
		printf("seq: %llu\nflusher: %d\n", (unsigned long long)st.seq, (int)st.flusher);
	return 0;
}

/* auto, never, always: --pidns and --netns (both enums count them so). */
static int parse_ns_mode(const char *s, int *m)
{
	static const char *const names[] = { "auto", "never", "always" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*m = i;
			return 0;
		}
	return -1;
}

static int parse_pidns(const char *s, enum ckpt_pidns_mode *m)
{
	_Static_assert(CKPT_PIDNS_AUTO == 0 && CKPT_PIDNS_NEVER == 1 && CKPT_PIDNS_ALWAYS == 2,
		       "parse_ns_mode's order");
	int v;
	if (parse_ns_mode(s, &v))
		return -1;
	*m = (enum ckpt_pidns_mode)v;
	return 0;
}

static int parse_netns(const char *s, enum ckpt_netns_mode *m)
{
	_Static_assert(CKPT_NETNS_AUTO == 0 && CKPT_NETNS_NEVER == 1 && CKPT_NETNS_ALWAYS == 2,
		       "parse_ns_mode's order");
	int v;
	if (parse_ns_mode(s, &v))
		return -1;
	*m = (enum ckpt_netns_mode)v;
	return 0;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static int parse_cgroups(const char *arg, enum ckpt_cgroups_mode *mode)
{
	static const char *names[] = { "exact", "relative", "ignore" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(arg, names[i])) {
			*mode = (enum ckpt_cgroups_mode)i;
			return 0;
		}
	return -1;
}

/* --cgroup-root [HIER:]OLD=NEW: both paths absolute. */
static int add_cgroup_root(struct ckpt_restore_opts *o, const char **rules, const char *arg)
{
	const char *spec = arg[0] == '/' ? arg : strchr(arg, ':');
	spec = spec && spec != arg ? spec + (spec[0] == ':') : spec;
	const char *eq = spec ? strchr(spec, '=') : NULL;
	if (!spec || spec[0] != '/' || !eq || eq[1] != '/') {
		fprintf(stderr, "ckptctl: restore: --cgroup-root %s: not [HIERARCHY:]/OLD=/NEW\n", arg);
		return 1;
	}
	if (o->nr_cgroup_root == MAX_REPEAT) {
		fprintf(stderr, "ckptctl: restore: too many --cgroup-root\n");
		return 1;
	}
	rules[o->nr_cgroup_root++] = arg;
	o->cgroup_root = rules;
	return 0;
}
/* Root's restore of a job's set without ckptd: plan a multi-node one here
 * (ckptd's worker does it for the others). */
static int restore_plan_here(struct ckpt_restore_opts *o, const struct restore_job_extra *x,
			     struct ckpt_restore_plan *plan)
{
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	if (ckpt_restore_plan(o, o->job, x->job_nodes, host, x->coord, plan))
		return -1;
	o->step_env = (const char *const *)x->env;
	return 0;
}


static int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "detach", no_argument, 0, 'd' },
		{ "lazy", no_argument, 0, OPT_LAZY },
		{ "pidfile", required_argument, 0, OPT_PIDFILE },
		{ "pidns", required_argument, 0, OPT_PIDNS },
		{ "netns", required_argument, 0, OPT_NETNS },
		{ "verbose", no_argument, 0, 'v' },
		{ "stats", no_argument, 0, OPT_STATS },
		{ "shell-job", no_argument, 0, OPT_SHELL_JOB },
		{ "skip-file-check", no_argument, 0, OPT_SKIP_FILE_CHECK },
		{ "keep-later-output", no_argument, 0, OPT_KEEP_LATER_OUTPUT },
		{ "tcp-close", no_argument, 0, OPT_TCP_CLOSE },
		{ "inet-map", required_argument, 0, OPT_INET_MAP },
		{ "keep-net-lock", no_argument, 0, OPT_KEEP_NET_LOCK },
		{ "net-lock-fd", required_argument, 0, OPT_NET_LOCK_FD },
		{ "as-job", required_argument, 0, OPT_AS_JOB },
		{ "step-relay", required_argument, 0, OPT_STEP_RELAY },
		{ "verify", no_argument, 0, OPT_VERIFY },
		{ "no-verify", no_argument, 0, OPT_NO_VERIFY },
		{ "inherit-fd", required_argument, 0, OPT_INHERIT_FD },
		{ "job", required_argument, 0, OPT_JOB },
		{ "base", required_argument, 0, OPT_BASE },
		{ "cgroup-root", required_argument, 0, OPT_CGROUP_ROOT },
		{ "cgroups", required_argument, 0, OPT_CGROUPS },
		{ "cpu-cap", required_argument, 0, OPT_CPU_CAP },
		{ "cpu-map", required_argument, 0, OPT_CPU_MAP },
		{ 0, 0, 0, 0 },
	};
	/* The restored tree is compared with its images before it runs
	 * (verify.c): a few ms, and a restore that says 0 then means it. */
	struct ckpt_restore_opts o = { .verify = 1 };
	struct ckpt_restore_stats st;
	struct restore_job_extra x = { .net_lock_fd = -1 };
	const char *as_job = NULL;
	struct ckpt_restore_plan plan;
	char coord[PATH_MAX];
	const char *inherit[MAX_REPEAT], *cg_root[MAX_REPEAT];
	char job_dir[4096];
	int c, stats = 0, status = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":D:dv", opts, NULL)) != -1) {
		switch (c) {
		case 'D': o.dir = optarg; break;
		case 'd': o.detach = 1; break;
		case OPT_LAZY: o.lazy = 1; break;
		case OPT_PIDFILE: o.pidfile = optarg; break;
		case OPT_PIDNS:
			if (parse_pidns(optarg, &o.pidns)) {
				fprintf(stderr, "ckptctl: restore: --pidns takes auto, never or always\n");
				return 1;
			}
			break;
		case OPT_NETNS:
			if (parse_netns(optarg, &o.netns)) {
				fprintf(stderr, "ckptctl: restore: --netns takes auto, never or always\n");
				return 1;
			}
			break;
		case 'v': o.verbose++; break;
		case OPT_STATS: stats = 1; break;
		case OPT_SHELL_JOB: o.shell_job = 1; break;
		case OPT_SKIP_FILE_CHECK: o.skip_file_check = 1; break;
		case OPT_KEEP_LATER_OUTPUT: o.keep_later_output = 1; break;
		case OPT_TCP_CLOSE: o.tcp_close = 1; break;
		case OPT_INET_MAP:
			if (o.inet_map) {
				fprintf(stderr, "ckptctl: restore: --inet-map given twice (one list: "
						"OLD=NEW,OLD=NEW)\n");
				return 1;
			}
			o.inet_map = optarg;
			break;
		case OPT_KEEP_NET_LOCK: o.keep_net_lock = 1; break;
		case OPT_AS_JOB: as_job = optarg; break;
		case OPT_STEP_RELAY: o.step_relay = optarg; break;
		case OPT_NET_LOCK_FD:
			x.net_lock_fd = atoi(optarg);
			if (x.net_lock_fd < 3 || fcntl(x.net_lock_fd, F_GETFD) < 0) {
				fprintf(stderr, "ckptctl: restore: --net-lock-fd %s: not an open fd "
						"above 2\n", optarg);
				return 1;
			}
			break;
		case OPT_VERIFY: o.verify = 1; break;
		case OPT_NO_VERIFY: o.verify = 0; break;
		case OPT_INHERIT_FD:
			if (o.nr_inherit_fd == MAX_REPEAT) {
				fprintf(stderr, "ckptctl: restore: too many --inherit-fd\n");
				return 1;
			}
			inherit[o.nr_inherit_fd++] = optarg;
			o.inherit_fd = inherit;
			break;
		case OPT_JOB: o.job = optarg; break;
		case OPT_BASE: o.base = optarg; break;
		case OPT_CGROUP_ROOT:
			if (add_cgroup_root(&o, cg_root, optarg))
				return 1;
			break;
		case OPT_CGROUPS:
			if (parse_cgroups(optarg, &o.cgroups)) {
				fprintf(stderr, "ckptctl: restore: --cgroups takes exact, relative or ignore\n");
				return 1;
			}
			break;
		case OPT_CPU_CAP:
			if (parse_cpu_cap("restore", optarg, &o.cpu_cap))
				return 1;
			break;
		case OPT_CPU_MAP:
			if (parse_cpu_map("restore", optarg, &o.cpu_map))
				return 1;
			break;
		default: bad_option("restore", c, argv); return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ckptctl: restore: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (!o.dir == !o.job) {
		fprintf(stderr, "ckptctl: restore needs -D DIR or --job JOBID\n");
		return 1;
	}
	int route = agent_route("restore");
	if (route < 0)
		return 1;
	if (as_job && (!route || !o.dir || !isdigit((unsigned char)as_job[0]))) {
		fprintf(stderr, "ckptctl: restore: --as-job JOBID goes with -D DIR, through ckptd\n");
		return 1;
	}
	/* the lock's name is printed once the tree runs: we must return
	 * then, or (through ckptd) write it to --net-lock-fd */
	if (o.keep_net_lock && !o.detach && !(route && x.net_lock_fd >= 0)) {
		fprintf(stderr, "ckptctl: restore: --keep-net-lock needs -d (the lock's name is "
				"printed once the tree runs, for net-unlock), or --net-lock-fd "
				"through ckptd\n");
		return 1;
	}
	if (route && o.lazy) {
		fprintf(stderr, "ckptctl: restore --lazy: not offered through ckptd (docs/lazy-restore.md)\n");
		return 1;
	}
	o.lazy_report = o.lazy && stats;
	/* A job id, or a set name that is not one ("12abc" is not job 12). */
	char *end = NULL;
	unsigned long v = o.job && isdigit((unsigned char)o.job[0]) ? strtoul(o.job, &end, 10) : 0;
	uint32_t job_id = end && !*end && v <= UINT32_MAX ? (uint32_t)v : 0;
	/* -D DIR --as-job JOB: a node's part of the job's set, whose tree
	 * becomes the job's tasks on this node (docs/coordinator.md) */
	if (as_job)
		job_id = (uint32_t)strtoul(as_job, NULL, 10);
	/* ckptd finds a registered job's latest set itself (in the job's
	 * checkpoint directory); otherwise it is resolved here, once. */
	if (o.job && (!route || o.base || !job_id)) {
		if (ckpt_job_latest(o.job, o.base, job_dir, sizeof(job_dir)))
			return 1;
		o.dir = job_dir;
	}
	/* A job's set of several nodes (docs/coordinator.md "Restore"):
	 * this node's part, the other parts through the coordinator. */
	if (o.job) {
		extern char **environ;
		x.job_nodes = getenv("SLURM_JOB_NODELIST");
		x.coord = coord_find(coord, sizeof(coord)) ? NULL : coord;
		x.env = environ;
	}
	if (!route && o.job && restore_plan_here(&o, &x, &plan))
		return 1;
	o.job = NULL;
	/* The restored tree must not inherit our buffered output. */
	fflush(NULL);
	struct progress_bar bar;
	bar_init(&bar);
	o.progress = bar_callback;
	o.progress_arg = &bar;
	int ret = route ? agent_restore(&o, job_id, &x, &st, &status) : ckpt_restore(&o, &st, &status);
	bar_done(&bar);
	if (stats && !ret)
		printf("restore_ms: %.1f\nmemory_bytes: %llu\nimage_bytes: %llu\npidns: %d\n"
		       "netns: %d\n",
		       ms(st.total_ns), (unsigned long long)st.memory_bytes,
		       (unsigned long long)st.image_bytes, st.used_pidns, st.used_netns);
	if (stats && !ret && o.lazy)
		printf("lazy_server_pid: %d\n%s", (int)st.lazy_server,
		       o.detach ? "lazy: the page server fills the memory in the background\n" : "");
	if (ret)
		return 1;
	if (st.net_lock[0] && o.detach)
		printf("net_lock: %s\n", st.net_lock);
	return o.detach ? 0 : exit_code(status);
}

/* net-unlock NAME: lift what restore --keep-net-lock left (net-lock.h):
 * root, or through ckptd the lock's owner. */
static int cmd_net_unlock(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "ckptctl: net-unlock NAME (a name restore --keep-net-lock printed)\n");
		return 1;
	}
	int route = geteuid() ? agent_route("net-unlock") : 0;
	if (route < 0)
		return 1;
	int ret = route ? agent_net_unlock(argv[1]) : ckpt_net_unlock(argv[1], 0);
	return ret ? 1 : 0;
}

/* page-server: receive one set from `dump --page-server` (storage/page-server.c). */
static int cmd_page_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, 0, OPT_PORT },
		{ "dir", required_argument, 0, OPT_DIR },
		{ "address", required_argument, 0, OPT_ADDRESS },
		{ 0, 0, 0, 0 },
	};
	const char *dir = ".", *address = NULL;
	long port = -1;
	char *end;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PORT:
			port = strtol(optarg, &end, 10);
			if (!*optarg || *end || port < 0 || port > 65535) {
				fprintf(stderr, "ckptctl: page-server: --port %s: not a port\n", optarg);
				return 1;
			}
			break;
		case OPT_DIR: dir = optarg; break;
		case OPT_ADDRESS: address = optarg; break;
		default: bad_option("page-server", c, argv); return 1;
		}
	}
	if (optind != argc || port < 0) {
		fprintf(stderr, "ckptctl: page-server needs --port PORT (0: any free one)\n");
		return 1;
	}
	return page_server_run(dir, address, (int)port) ? 1 : 0;
}

/* The commands that may talk to ckptd, but checkpoint. */
static int talks_to_agent(const char *cmd)
{
	static const char *const cmds[] = { "dump",	  "pre-dump", "restore",	"status",    "cancel",
					    "register", "unregister", "net-unlock" };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmd, cmds[i]))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "ckptctl: missing command (ckptctl help lists them)\n");
		return 1;
	}
	const char *cmd = argv[1];
	argv++;
	argc--;
	/* checkpoint finds its socket itself, for its own exit statuses. */
	if (talks_to_agent(cmd) && agent_socket_from_conf())
		return 1;
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "dump") || !strcmp(cmd, "pre-dump"))
		return cmd_dump(argc, argv);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc, argv);
	if (!strcmp(cmd, "check-restore"))
		return cmd_check_restore(argc, argv);
	if (!strcmp(cmd, "cpu-features"))
		return cmd_cpu_features(argc, argv);
	if (!strcmp(cmd, "demo"))
		return cmd_demo(argc, argv);
	if (!strcmp(cmd, "net-unlock"))
		return cmd_net_unlock(argc, argv);
	if (!strcmp(cmd, "page-server"))
		return cmd_page_server(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "cancel"))
		return cmd_cancel(argc, argv);
	if (!strcmp(cmd, "checkpoint"))
		return cmd_checkpoint(argc, argv);
	if (!strcmp(cmd, "register"))
		return cmd_register(argc, argv);
	if (!strcmp(cmd, "unregister"))
		return cmd_unregister(argc, argv);
	if (!strcmp(cmd, "image"))
		return cmd_image(argc, argv);
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ckptctl: unknown command '%s' (ckptctl help lists them)\n", cmd);
	return 1;
}
