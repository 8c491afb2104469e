/*
 * constraint: a requeue that lands on nodes able to restore the set
 * (docs/placement.md, "Choosing nodes").  The job is requeued held, its
 * Features (its --constraint) become the flags the job's latest set
 * needs, and it is released: the flags among the ones the site gives its
 * nodes as Slurm node Features
 * (`sinfo -o %f`): every part's, for a multi-node set.  A site that lists
 * no CPU flag as a Feature gets no constraint: the restore still checks
 * every flag itself, and refuses by name.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "constraint.h"
#include "storage.h"

/* token not yet in list (sep-separated)? then add it. */
static int add_token(char *list, size_t len, const char *tok, char sep)
{
	size_t n = strlen(tok), have = strlen(list);
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, (char[]){ sep, 0 });
		if (k == n && !strncmp(p, tok, n))
			return 0;
		p += k + (p[k] == sep);
	}
	if (have + n + 2 > len)
		return -ENAMETOOLONG;
	if (have)
		list[have++] = sep;
	memcpy(list + have, tok, n + 1);
	return 0;
}

/* The Features the site gives its nodes, comma-separated ("" if none). */
static int site_features(char *out, size_t len)
{
	char line[4096];
	out[0] = '\0';
	FILE *f = popen("sinfo -h -o %f 2>/dev/null", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL;
		line[strcspn(line, "\n")] = '\0';
		for (char *t = strtok_r(line, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (strcmp(t, "(null)") && add_token(out, len, t, ','))
				break;
	}
	return pclose(f) == 0 ? 0 : -EIO;
}

/* The constraint of dir (one set), its tokens added to out. */
static int add_constraint(const char *dir, const char *only, char *out, size_t len)
{
	char c[4096];
	int ret = ckpt_set_constraint(dir, only, c, sizeof(c));
	char *save = NULL;
	for (char *t = ret ? NULL : strtok_r(c, "&", &save); t; t = strtok_r(NULL, "&", &save))
		if ((ret = add_token(out, len, t, '&')))
			break;
	return ret;
}

/* The set's constraint: each part's flags (a set of one node: its own). */
static int set_constraint(const char *dir, const char *only, char *out, size_t len)
{
	struct set_part_info parts[64];
	size_t nr = 0;
	char part[PATH_MAX + 80];
	out[0] = '\0';
	int ret = imgset_read_parts(dir, parts, 64, &nr);
	if (ret || !nr)
		return add_constraint(dir, only, out, len);
	for (size_t i = 0; !ret && i < nr; i++) {
		if ((size_t)snprintf(part, sizeof(part), "%.4000s/nodes/%.72s", dir, parts[i].node) >=
		    sizeof(part))
			return -ENAMETOOLONG;
		ret = add_constraint(part, only, out, len);
	}
	return ret;
}

static int scontrol(char *const argv[])
{
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		execvp("scontrol", argv);
		_exit(127);
	}
	int st = 0;
	if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -EIO;
	return 0;
}

/* Held while its Features change (a job's only while it is pending), so
 * that it cannot start between the requeue and the update. */
static int requeue_with(uint32_t job, const char *constraint)
{
	char id[16], jobid[32], features[4200];
	snprintf(id, sizeof(id), "%u", job);
	snprintf(jobid, sizeof(jobid), "JobId=%u", job);
	snprintf(features, sizeof(features), "Features=%s", constraint);
	char *hold[] = { "scontrol", "requeuehold", id, NULL };
	char *update[] = { "scontrol", "update", jobid, features, NULL };
	char *release[] = { "scontrol", "release", id, NULL };
	/* A vacate in the job (its wrapper's) is in what the requeue ends:
	 * SIGTERM, then SIGKILL after KillWait; the update and the release
	 * are done well within it, by us and the scontrol we run. */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGTERM, &ign, &old);
	if (scontrol(hold)) {
		sigaction(SIGTERM, &old, NULL);
		return -EIO;
	}
	int ret = scontrol(update);
	if (ret)
		fprintf(stderr, "ckptctl: job %u: cannot set its constraint %s (scontrol update): "
				"the requeue may land on a node that cannot restore it\n", job, constraint);
	else
		printf("job %u: requeued with the constraint %s (the flags its set needs that the "
		       "nodes' Features name)\n", job, constraint);
	ret = scontrol(release);
	sigaction(SIGTERM, &old, NULL);
	if (ret) {
		fprintf(stderr, "ckptctl: job %u: requeued but held (scontrol release %u)\n", job,
			job);
		return -EIO;
	}
	return 0;
}

int requeue_constrained(uint32_t job, const char *base)
{
	char only[4096], dir[PATH_MAX], c[4096], jobs[16];
	if (site_features(only, sizeof(only)) || !only[0])
		return 1; /* no node lists a Feature: nothing to narrow */
	snprintf(jobs, sizeof(jobs), "%u", job);
	if (ckpt_job_latest(jobs, base, dir, sizeof(dir)) ||
	    set_constraint(dir, only, c, sizeof(c)) || !c[0])
		return 1;
	return requeue_with(job, c);
}
