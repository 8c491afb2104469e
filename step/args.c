/*
 * ckpt-step's command line (the list is atop main.c).  Every value comes
 * from the restore, which takes it from the image: checked here as any
 * image field, and the fds of --task must be open in this process.
 */
#include "step.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_NSPACE = 256, OPT_SIZE, OPT_UID, OPT_GID, OPT_LABEL, OPT_TMPDIR, OPT_SECURITY,
       OPT_BFROPS, OPT_BUFTYPE, OPT_GDS, OPT_VERSION, OPT_TASK, OPT_PENDING, OPT_ROOT,
       OPT_RELAY, OPT_ALSO };

static const struct option options[] = {
	{ "nspace", required_argument, NULL, OPT_NSPACE },
	{ "job-size", required_argument, NULL, OPT_SIZE },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "label", no_argument, NULL, OPT_LABEL },
	{ "tmpdir", required_argument, NULL, OPT_TMPDIR },
	{ "security", required_argument, NULL, OPT_SECURITY },
	{ "bfrops", required_argument, NULL, OPT_BFROPS },
	{ "buffer-type", required_argument, NULL, OPT_BUFTYPE },
	{ "gds", required_argument, NULL, OPT_GDS },
	{ "pmix-version", required_argument, NULL, OPT_VERSION },
	{ "task", required_argument, NULL, OPT_TASK },
	{ "pending-out", required_argument, NULL, OPT_PENDING },
	{ "allow-root", no_argument, NULL, OPT_ROOT },
	{ "fence-relay", required_argument, NULL, OPT_RELAY },
	{ "also", required_argument, NULL, OPT_ALSO },
	{ NULL, 0, NULL, 0 },
};

static int parse_ulong(const char *str, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(str, &end, 10);
	if (errno || end == str || *end || *out > max || str[0] == '-')
		return -EINVAL;
	return 0;
}

static int parse_fd(const char *str, bool may_be_none, int *out)
{
	unsigned long v;

	if (may_be_none && !strcmp(str, "-1")) {
		*out = -1;
		return 0;
	}
	if (parse_ulong(str, INT_MAX, &v) || fcntl((int)v, F_GETFD) < 0)
		return -EBADF;
	*out = v;
	return 0;
}

/* RANK:PID:IN:OUT:ERR:PMIX */
static int parse_task(struct step *s, const char *arg)
{
	char copy[128], *f[6], *save = NULL;
	unsigned long rank, pid;
	struct task *t;
	int n = 0;

	if (s->ntasks >= STEP_MAX_TASKS || strlen(arg) >= sizeof(copy))
		return -E2BIG;
	strcpy(copy, arg);
	for (char *p = strtok_r(copy, ":", &save); p && n < 6; p = strtok_r(NULL, ":", &save))
		f[n++] = p;
	if (n != 6 || strtok_r(NULL, ":", &save))
		return -EINVAL;
	t = &s->tasks[s->ntasks];
	memset(t, 0, sizeof(*t));
	if (parse_ulong(f[0], UINT32_MAX - 2, &rank) || parse_ulong(f[1], INT_MAX, &pid) || pid == 0)
		return -EINVAL;
	t->rank = rank;
	t->pid = pid;
	stream_init(&t->out, -1, 1);
	stream_init(&t->err, -1, 2);
	/* -1: not a pipe to slurmstepd (/dev/null, a file of --output) */
	if (parse_fd(f[2], true, &t->in) || parse_fd(f[3], true, &t->out.fd) ||
	    parse_fd(f[4], true, &t->err.fd) || parse_fd(f[5], true, &t->pmix))
		return -EBADF;
	t->conn = -1;
	s->ntasks++;
	return 0;
}

static int option(struct step *s, int c, const char *arg, bool *allow_root, const char **pending)
{
	unsigned long v;

	switch (c) {
	case OPT_NSPACE:
		s->nspace = arg;
		return strlen(arg) && strlen(arg) < 256 ? 0 : -EINVAL;
	case OPT_SIZE:
		if (parse_ulong(arg, STEP_MAX_TASKS * 4096UL, &v) || !v)
			return -EINVAL;
		s->size = v;
		return 0;
	case OPT_UID:
	case OPT_GID:
		if (parse_ulong(arg, UINT32_MAX - 1, &v))
			return -EINVAL;
		*(c == OPT_UID ? &s->uid : &s->gid) = v;
		return 0;
	case OPT_LABEL: s->label = true; return 0;
	case OPT_TMPDIR: s->tmpdir = (char *)arg; return 0;
	case OPT_SECURITY: return choose_security(arg, &s->pmix.security);
	case OPT_GDS: return choose_gds(arg, &s->pmix.gds);
	case OPT_BUFTYPE: return choose_buffer_type(arg, &s->pmix.buffer_type);
	case OPT_BFROPS:
		s->pmix.bfrops = arg;
		return strspn(arg, "v0123456789") == strlen(arg) && strlen(arg) < 8 ? 0 : -EINVAL;
	case OPT_VERSION:
		s->pmix.version = arg;
		return strlen(arg) < 32 ? 0 : -EINVAL;
	case OPT_TASK: return parse_task(s, arg);
	case OPT_PENDING: *pending = arg; return 0;
	case OPT_ROOT: *allow_root = true; return 0;
	case OPT_RELAY: s->relay = arg; return 0;
	case OPT_ALSO:
		if (parse_ulong(arg, INT_MAX, &v) || !v)
			return -EINVAL;
		s->also = (pid_t)v;
		return 0;
	}
	return -EINVAL;
}

/* Every rank once, inside the job. */
static int check_tasks(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		if (s->tasks[i].rank >= s->size) {
			fprintf(stderr, "ckpt-step: task %u: rank beyond --job-size %u\n",
				s->tasks[i].rank, s->size);
			return -EINVAL;
		}
		for (int j = 0; j < i; j++)
			if (s->tasks[j].rank == s->tasks[i].rank || s->tasks[j].pid == s->tasks[i].pid) {
				fprintf(stderr, "ckpt-step: task %u given twice\n", s->tasks[i].rank);
				return -EINVAL;
			}
	}
	return 0;
}

int step_parse_args(struct step *s, int argc, char **argv, bool *allow_root, const char **pending)
{
	int c, rc;
	bool have_uid = false, have_gid = false;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == '?')
			break;
		have_uid |= c == OPT_UID;
		have_gid |= c == OPT_GID;
		rc = option(s, c, optarg, allow_root, pending);
		if (rc) {
			fprintf(stderr, "ckpt-step: --%s %s: %s\n", options[c - OPT_NSPACE].name,
				optarg ? optarg : "", strerror(-rc));
			return rc;
		}
	}
	/* a step without PMIx (srun --mpi=none) has no namespace */
	int pmix = 0;
	for (int i = 0; i < s->ntasks; i++)
		pmix |= s->tasks[i].pmix >= 0;
	if (c == '?' || optind != argc || (pmix && !s->nspace) || !s->size || !have_uid ||
	    !have_gid || !s->ntasks) {
		fprintf(stderr, "usage: ckpt-step [--nspace NS] --job-size N --uid U --gid G "
				"--task RANK:PID:IN:OUT:ERR:PMIX... [options] (see docs/mpi.md)\n");
		return -EINVAL;
	}
	return check_tasks(s);
}
