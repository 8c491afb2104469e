/*
 * place: whether this node can restore a set, and what a node offers
 * (docs/placement.md).  `check-restore` runs the restore's load — the
 * CPU, kernel and CPU-binding checks among the others — and creates
 * nothing; the Slurm side runs it to pick nodes.  `cpu-features` prints
 * this CPU's flags as a site lists them in Slurm node Features, or, with
 * --set, the --constraint a requeue of that set asks for.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "place.h"

enum { OPT_CPU_CAP = 2000, OPT_CPU_MAP, OPT_JOB, OPT_BASE, OPT_SET, OPT_ONLY };

int parse_cpu_cap(const char *cmd, const char *arg, enum ckpt_cpu_cap *cap)
{
	static const char *const names[] = { "all", "fpu", "none" };
	_Static_assert(CKPT_CPU_CAP_ALL == 0 && CKPT_CPU_CAP_FPU == 1 && CKPT_CPU_CAP_NONE == 2,
		       "names' order");
	for (int i = 0; i < 3; i++)
		if (!strcmp(arg, names[i])) {
			*cap = (enum ckpt_cpu_cap)i;
			return 0;
		}
	fprintf(stderr, "ckptctl: %s: --cpu-cap takes all, fpu or none\n", cmd);
	return 1;
}

int parse_cpu_map(const char *cmd, const char *arg, enum ckpt_cpu_map *map)
{
	if (strcmp(arg, "exact") && strcmp(arg, "job")) {
		fprintf(stderr, "ckptctl: %s: --cpu-map takes exact or job\n", cmd);
		return 1;
	}
	*map = strcmp(arg, "job") ? CKPT_CPU_MAP_EXACT : CKPT_CPU_MAP_JOB;
	return 0;
}

int cmd_check_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, 0, 'D' },
		{ "job", required_argument, 0, OPT_JOB },
		{ "base", required_argument, 0, OPT_BASE },
		{ "cpu-cap", required_argument, 0, OPT_CPU_CAP },
		{ "cpu-map", required_argument, 0, OPT_CPU_MAP },
		{ "verbose", no_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	struct ckpt_restore_opts o = { 0 };
	const char *job = NULL, *base = NULL;
	char job_dir[4096];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":D:v", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case OPT_JOB:
			job = optarg;
			break;
		case OPT_BASE:
			base = optarg;
			break;
		case 'v':
			o.verbose++;
			break;
		case OPT_CPU_CAP:
			if (parse_cpu_cap("check-restore", optarg, &o.cpu_cap))
				return 1;
			break;
		case OPT_CPU_MAP:
			if (parse_cpu_map("check-restore", optarg, &o.cpu_map))
				return 1;
			break;
		default:
			bad_option("check-restore", c, argv);
			return 1;
		}
	}
	if (optind < argc && !o.dir && !job)
		o.dir = argv[optind++]; /* check-restore SET */
	if (optind != argc || !o.dir == !job) {
		fprintf(stderr,
			"ckptctl: check-restore needs one set: DIR, -D DIR or --job JOBID\n");
		return 1;
	}
	if (job && ckpt_job_latest(job, base, job_dir, sizeof(job_dir)))
		return 1;
	if (job)
		o.dir = job_dir;
	if (ckpt_check_restore(&o)) {
		printf("no: this node cannot restore %s (above: why)\n", o.dir);
		return 1;
	}
	printf("yes: this node can restore %s\n", o.dir);
	return 0;
}

int cmd_cpu_features(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "set", required_argument, 0, OPT_SET },
		{ "only", required_argument, 0, OPT_ONLY },
		{ 0, 0, 0, 0 },
	};
	const char *set = NULL, *only = NULL;
	char buf[4096];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SET:
			set = optarg;
			break;
		case OPT_ONLY:
			only = optarg;
			break;
		default:
			bad_option("cpu-features", c, argv);
			return 1;
		}
	}
	if (optind != argc || (only && !set)) {
		fprintf(stderr, "ckptctl: cpu-features takes [--set DIR [--only F1,F2...]]\n");
		return 1;
	}
	int ret = set ? ckpt_set_constraint(set, only, buf, sizeof(buf))
		      : ckpt_cpu_features(buf, sizeof(buf));
	if (ret)
		return 1;
	printf("%s\n", buf);
	return 0;
}
