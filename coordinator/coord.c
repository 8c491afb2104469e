/*
 * ckpt-coord: the multi-node coordinator (docs/coordinator.md).  One
 * process per node of a job, started as a PMIx job step (srun --overlap
 * -N$NODES --ntasks-per-node=1 --mpi=pmix, or mpirun), each acting on its
 * own node through that node's ckptd, all agreeing through PMIx fences:
 *
 *   freeze: each ckptd freezes its part of the job and checks what could
 *           refuse the dump (a held dump, stopped at its "frozen" gate)
 *   dump:   once every node is frozen, each writes its part JOB/SEQ/nodes/
 *           NODE (SEQ: the highest any node proposed), stopped at "dumped"
 *   commit: once every part is written, rank 0's ckptd writes the set's
 *           manifest naming every part, and moves `latest`
 *   resume: each node lets its dump finish (thaw, or end the job: vacate)
 *
 * A node failing a phase, a fence failing (a node gone) or timing out
 * aborts every node: each held dump is told "abort" (or its connection
 * closes with this process), its ckptd thaws every task and removes the
 * part; no set is committed.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/client.h"
#include "coord.h"

struct coord {
	struct coord_restore restore; /* --restore */
	int restoring;
	const char *relay; /* --relay NAME: serve one ckpt-step's fences */
	uint32_t job, rank, size;
	const char *socket, *node;
	int vacate, timeout_s;
	uint32_t hold_timeout_s;
	struct fence *fence;
	struct held_dump *held;
	struct node_status *all;
	struct slurm_view view; /* with --slurm: Slurm's word on the job */
	int slurm;
	int empty; /* nothing of the job on this node: no part */
	pid_t stand_in; /* start_stand_in */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Tests: CKPT_COORD_PAUSE=PHASE:SECONDS waits after PHASE's fence, so
 * that a test can kill a ckptd or a coordinator between phases. */
static void maybe_pause(const struct coord *c, const char *phase)
{
	const char *p = getenv("CKPT_COORD_PAUSE");
	size_t n = strlen(phase);
	if (!p || strncmp(p, phase, n) || p[n] != ':')
		return;
	printf("ckpt-coord: rank %u: paused after %s (pid %d)\n", c->rank, phase, (int)getpid());
	fflush(stdout);
	sleep((unsigned)atoi(p + n + 1));
}

/* Every node's status at `phase`; 0 when all are ok, else the first
 * failure in why. */
static int agree(struct coord *c, const char *phase, struct node_status *mine, char *why,
		 size_t len)
{
	mine->batch = c->view.batch;
	snprintf(mine->address, sizeof(mine->address), "%s", c->view.address);
	int ret = fence_exchange(c->fence, phase, mine, c->all, c->timeout_s);
	if (ret) {
		snprintf(why, len, "rank %u: the %s fence failed (%s): a node is gone or late",
			 c->rank, phase, strerror(-ret));
		return ret;
	}
	for (uint32_t r = 0; r < c->size; r++)
		if (!c->all[r].ok) {
			snprintf(why, len, "node %s (rank %u): %s: %s", c->all[r].node, r, phase,
				 c->all[r].why);
			return -ECANCELED;
		}
	return 0;
}

/* This node's part of a phase failed: its word for the fence. */
static void failed(struct node_status *st, const char *node, int err, const char *why)
{
	int ok_before = st->ok;
	st->ok = 0;
	char host[64] = "?";
	if (!node && gethostname(host, sizeof(host) - 1) == 0)
		host[sizeof(host) - 1] = '\0';
	if (!st->node[0])
		snprintf(st->node, sizeof(st->node), "%s", node ? node : host);
	if (!st->why[0] || ok_before)
		snprintf(st->why, sizeof(st->why), "%s", why && *why ? why : strerror(-err));
}

static int abort_all(struct coord *c, const char *why)
{
	uint64_t frozen;
	char end[256] = "";
	if (c->held && held_send(c->held, "abort", 0) == 0)
		held_finish(c->held, &frozen, end, sizeof(end));
	fprintf(stderr, "ckpt-coord: job %u: checkpoint failed: %s; no set committed, every "
		"task of this node thawed\n", c->job, why);
	return 1;
}

/* This node's part's name: --node, else the short hostname (as ckptd). */
static void node_name(const struct coord *c, char *name, size_t len)
{
	if (c->node) {
		snprintf(name, len, "%s", c->node);
		return;
	}
	if (gethostname(name, len - 1))
		snprintf(name, len, "node");
	name[len - 1] = '\0';
	name[strcspn(name, ".")] = '\0';
}

/* At least one node has a part (the others had nothing of the job). */
static int any_part(const struct coord *c, char *why, size_t len)
{
	for (uint32_t r = 0; r < c->size; r++)
		if (c->all[r].tasks)
			return 0;
	snprintf(why, len, "no node has a task of the job");
	return -ESRCH;
}

/*
 * On a node without the batch script, the ranks of an srun step on
 * several nodes are children of slurmstepd, which is not the job's.  This
 * child of ours, with our stdio (the coordinator step's pipes), stands as
 * their client, the part's root: restored, it is the step proxy there
 * (docs/coordinator.md).  It dies with us.
 */
static pid_t start_stand_in(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setsid(); /* the ranks' session, restored, is ours */
		close_range(3, ~0U, 0);
		for (;;)
			pause();
	}
	return pid > 0 ? pid : 0;
}

static void end_stand_in(struct coord *c)
{
	if (c->stand_in <= 0)
		return;
	kill(c->stand_in, SIGKILL);
	waitpid(c->stand_in, NULL, 0);
	c->stand_in = 0;
}

static int phase_freeze(struct coord *c, char *why, size_t len)
{
	struct node_status st = { 0 };
	/* In a Slurm job: its batch node and steps from slurmctld */
	if (c->slurm && slurm_view(c->job, &c->view)) {
		failed(&st, c->node, -ENOENT, "Slurm does not list the job or its steps");
		return agree(c, "frozen", &st, why, len);
	}
	if (c->slurm && !c->view.batch)
		c->stand_in = start_stand_in();
	int ret = held_start(c->socket, c->job, c->node, c->vacate, c->hold_timeout_s,
			     c->slurm ? &c->view : NULL, c->stand_in, &c->held);
	if (ret) {
		char e[200];
		snprintf(e, sizeof(e), "ckptd at %s: %s", c->socket ? c->socket : "-",
			 strerror(-ret));
		failed(&st, c->node, ret, e);
		c->held = NULL;
	} else if (((ret = held_wait_gate(c->held, "frozen", &st)) == -ENODATA || ret == -ENOENT) &&
		   !c->view.batch && !c->view.steps_here) {
		/* no task of the job here, or none ever, and Slurm runs no step of
		 * it here (its tasks unregistered would be lost): no part */
		held_close(c->held);
		c->held = NULL;
		c->empty = 1;
		memset(&st, 0, sizeof(st));
		st.ok = 1;
		node_name(c, st.node, sizeof(st.node));
		printf("ckpt-coord: job %u: node %s (rank %u): no task of the job here: no part\n",
		       c->job, st.node, c->rank);
	} else if (ret) {
		failed(&st, c->node, ret, st.why);
	} else {
		printf("ckpt-coord: job %u: node %s (rank %u): frozen, %u tasks\n", c->job, st.node,
		       c->rank, st.tasks);
	}
	int ret2 = agree(c, "frozen", &st, why, len);
	return ret2 ? ret2 : any_part(c, why, len);
}

static int phase_dump(struct coord *c, uint64_t *seq, char *why, size_t len)
{
	struct node_status st = { 0 };
	*seq = 0;
	for (uint32_t r = 0; r < c->size; r++)
		if (c->all[r].seq > *seq)
			*seq = c->all[r].seq;
	if (c->empty) {
		st = c->all[c->rank];
		st.seq = *seq;
		return agree(c, "dumped", &st, why, len);
	}
	int ret = held_send(c->held, "dump", *seq);
	if (ret || (ret = held_wait_gate(c->held, "dumped", &st)))
		failed(&st, c->node, ret, st.why[0] ? st.why : "ckptd went away");
	else
		printf("ckpt-coord: job %u: node %s (rank %u): part of set %llu written, "
		       "manifest crc %08x\n", c->job, st.node, c->rank, (unsigned long long)*seq,
		       st.crc);
	st.seq = *seq;
	return agree(c, "dumped", &st, why, len);
}

/* Every node's dump still held, just before the commit: a ckptd gone
 * since its part was written fails the set here rather than leave it
 * committed with that node's tasks released (the window left is the
 * fence's own). */
static int phase_ready(struct coord *c, char *why, size_t len)
{
	struct node_status st = c->all[c->rank];
	if (!c->empty && !held_alive(c->held))
		failed(&st, c->node, -ECONNABORTED, "its ckptd's dump is no longer held");
	return agree(c, "ready", &st, why, len);
}

/* Rank 0's ckptd commits the set; every node learns the outcome. */
static int phase_commit(struct coord *c, uint64_t seq, char *why, size_t len)
{
	struct node_status st = c->all[c->rank];
	struct node_status *parts = malloc(c->size * sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	memcpy(parts, c->all, c->size * sizeof(*parts));
	st.ok = 1;
	/* the parts: the nodes with tasks of the job */
	size_t n = 0;
	for (uint32_t r = 0; r < c->size; r++)
		if (c->all[r].tasks)
			parts[n++] = c->all[r];
	if (c->rank == 0) {
		char e[256] = "";
		int ret = commit_set(c->socket, c->job, seq, parts, n, e, sizeof(e));
		if (ret)
			failed(&st, c->node, ret, e);
		else
			printf("ckpt-coord: job %u: set %llu committed, %zu nodes\n", c->job,
			       (unsigned long long)seq, n);
	}
	free(parts);
	return agree(c, "committed", &st, why, len);
}

/* A vacate: every node but the batch node has ended its part. */
static void phase_others_ended(struct coord *c)
{
	struct node_status st = c->all[c->rank];
	char why[512];
	st.ok = 1;
	if (agree(c, "ended", &st, why, sizeof(why)))
		fprintf(stderr, "ckpt-coord: job %u: rank %u: %s\n", c->job, c->rank, why);
}

static int run(struct coord *c)
{
	char why[512];
	uint64_t seq, t0 = now_ms(), frozen_ns = 0;
	if (phase_freeze(c, why, sizeof(why)))
		return abort_all(c, why);
	maybe_pause(c, "frozen");
	if (phase_dump(c, &seq, why, sizeof(why)))
		return abort_all(c, why);
	maybe_pause(c, "dumped");
	if (phase_ready(c, why, sizeof(why)) || phase_commit(c, seq, why, sizeof(why)))
		return abort_all(c, why);
	maybe_pause(c, "committed");
	/* A vacate ends the batch node's tree last: its sruns going end
	 * their steps' tasks on the other nodes, which must have finished
	 * their own dumps first. */
	int last = c->vacate && c->view.batch;
	if (last)
		phase_others_ended(c);
	if (c->empty) {
		if (c->vacate)
			phase_others_ended(c);
		return 0;
	}
	int ret = held_send(c->held, "commit", 0);
	if (!ret)
		ret = held_finish(c->held, &frozen_ns, why, sizeof(why));
	if (c->vacate && !last)
		phase_others_ended(c);
	if (ret) {
		/* The set is committed: this node's tree may still be frozen
		 * or stopped if its ckptd died now; its ckptd's end thaws it. */
		fprintf(stderr, "ckpt-coord: job %u: node %s (rank %u): set %llu committed but "
			"the node did not finish: %s\n", c->job, c->all[c->rank].node, c->rank,
			(unsigned long long)seq, why[0] ? why : strerror(-ret));
		return 1;
	}
	printf("ckpt-coord: job %u: node %s (rank %u): %s, frozen %.1f ms (%llu ms in all)\n",
	       c->job, c->all[c->rank].node, c->rank, c->vacate ? "stopped" : "resumed",
	       (double)frozen_ns / 1e6, (unsigned long long)(now_ms() - t0));
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: ckpt-coord --job JOBID [--vacate] [--socket PATH] [--node NAME]\n"
			"                  [--timeout SECONDS] [--hold-timeout SECONDS]\n"
			"       ckpt-coord --job JOBID --restore --set DIR --place PART=NODE,...\n"
			"                  --batch-node NODE [--net-lock NAME] [--inet-map MAP]\n"
			"       ckpt-coord --relay NAME   (NAME's %%r: the rank; docs/coordinator.md)\n"
			"One process per node, in a PMIx job step (srun --mpi=pmix, mpirun).\n");
}

static int parse_args(struct coord *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, 0, 'j' },	  { "vacate", no_argument, 0, 'v' },
		{ "socket", required_argument, 0, 's' },  { "node", required_argument, 0, 'n' },
		{ "timeout", required_argument, 0, 't' }, { "hold-timeout", required_argument, 0, 'H' },
		{ "restore", no_argument, 0, 'R' },	  { "set", required_argument, 0, 'S' },
		{ "place", required_argument, 0, 'P' },	  { "inet-map", required_argument, 0, 'M' },
		{ "batch-node", required_argument, 0, 'B' },
		{ "net-lock", required_argument, 0, 'L' },
		{ "relay", required_argument, 0, 'F' },
		{ 0, 0, 0, 0 }
	};
	struct coord_restore *r = &c->restore;
	int o;
	c->socket = ckpt_client_socket();
	c->node = getenv("CKPT_COORD_NODE");
	c->timeout_s = 60;
	while ((o = getopt_long(argc, argv, "j:vs:n:t:H:", opts, NULL)) != -1) {
		switch (o) {
		case 'j': c->job = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'v': c->vacate = 1; break;
		case 's': c->socket = optarg; break;
		case 'n': c->node = optarg; break;
		case 't': c->timeout_s = atoi(optarg); break;
		case 'H': c->hold_timeout_s = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'R': c->restoring = 1; break;
		case 'S': r->set = optarg; break;
		case 'P': r->place = optarg; break;
		case 'M': r->inet_map = optarg; break;
		case 'B': r->batch_node = optarg; break;
		case 'L': r->net_lock = optarg; break;
		case 'F': c->relay = r->relay = optarg; break;
		default: usage(); return -EINVAL;
		}
	}
	r->job = c->job;
	if (c->relay && optind == argc && !c->job && !c->restoring)
		return 0;
	if (!c->job || optind != argc || c->timeout_s <= 0 ||
	    (c->restoring && (!r->set || !r->place || !r->batch_node))) {
		usage();
		return -EINVAL;
	}
	/* A node's hold outlasts the fences around it by a margin. */
	if (!c->hold_timeout_s)
		c->hold_timeout_s = (uint32_t)c->timeout_s + 30;
	return 0;
}

int main(int argc, char **argv)
{
	struct coord c = { 0 };
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(&c, argc, argv))
		return 2;
	if (fence_init(&c.fence, &c.rank, &c.size))
		return 1;
	c.slurm = getenv("SLURM_JOB_ID") && getenv("SLURM_STEP_ID");
	c.all = calloc(c.size ? c.size : 1, sizeof(*c.all));
	int ret = !c.all		 ? 1 :
		  c.relay && !c.restoring ? (relay_serve(c.fence, c.relay, c.rank) ? 1 : 0) :
		  c.restoring ? coord_restore(&c.restore, c.rank, c.size, c.fence, c.all,
					      c.timeout_s) :
				run(&c);
	held_close(c.held);
	end_stand_in(&c);
	free(c.all);
	fence_fini(c.fence);
	return ret;
}
