/*
 * ckptctl image squash|gc|rm|ls: the checkpoint sets of jobs.
 *
 *   image squash DIR                 make an incremental set self-contained
 *   image gc [--base DIR] JOB        remove the job's incomplete sets
 *   image gc --ended [--base DIR]    remove the sets of Slurm jobs over for
 *                                    retention.ended_keep_s (ended-gc.c)
 *   image rm [--base DIR] JOB SEQ    remove a set (refused while an
 *                                    incremental set needs it)
 *   image ls [--base DIR] JOB        the job's sets: SEQ, committed, bytes,
 *                                    parent
 *
 * BASE is storage.base of ckpt.conf unless --base says otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image-sets.h"
#include "storage.h"
#include "tier.h"

int image_sets_cmd(const char *sub)
{
	return !strcmp(sub, "squash") || !strcmp(sub, "gc") || !strcmp(sub, "rm") ||
	       !strcmp(sub, "ls");
}

static int usage(void)
{
	fprintf(stderr, "ckptctl: image squash DIR | image gc|ls [--base DIR] JOB | "
			"image gc --ended [--base DIR] | image rm [--base DIR] JOB SEQ\n");
	return 1;
}

static int list(const char *base, const char *job)
{
	struct set_info *v;
	size_t n;

	if (imgset_list(base, job, &v, &n)) {
		fprintf(stderr, "ckptctl: %s/%s: no such job\n", base, job);
		return 1;
	}
	printf("%-8s %-10s %14s  %s\n", "seq", "state", "bytes", "parent");
	for (size_t i = 0; i < n; i++) {
		char parent[32] = "-";
		if (v[i].parent_seq >= 0)
			snprintf(parent, sizeof(parent), "%lld", (long long)v[i].parent_seq);
		printf("%-8llu %-10s %14llu  %s\n", (unsigned long long)v[i].seq,
		       v[i].committed ? "committed" : "incomplete", (unsigned long long)v[i].bytes,
		       parent);
	}
	free(v);
	return 0;
}

int cmd_image_sets(int argc, char **argv)
{
	const char *sub = argv[1], *base = NULL;
	struct set_policy p;
	char *end;
	int i = 2;

	if (!strcmp(sub, "squash"))
		return argc == 3 ? (imgset_squash(argv[2]) ? 1 : 0) : usage();
	/* gc --ended [--base DIR] */
	if (argc > 2 && !strcmp(argv[2], "--ended")) {
		for (int k = 2; k < argc - 1; k++)
			argv[k] = argv[k + 1];
		argv[argc - 1] = "--ended";
	}
	if (argc > 3 && !strcmp(argv[2], "--base")) {
		base = argv[3];
		i = 4;
	}
	if (i >= argc || set_policy_load(&p, base))
		return i >= argc ? usage() : 1;
	if (!strcmp(sub, "gc") && argc == i + 1 && !strcmp(argv[i], "--ended"))
		return gc_ended(p.base, p.ended_keep_s);
	if (!strcmp(sub, "gc") && argc == i + 1)
		return imgset_gc(p.base, argv[i]) ? 1 : 0;
	if (!strcmp(sub, "ls") && argc == i + 1)
		return list(p.base, argv[i]);
	if (!strcmp(sub, "rm") && argc == i + 2) {
		unsigned long long seq = strtoull(argv[i + 1], &end, 10);
		if (!seq || *end)
			return usage();
		return imgset_remove(p.base, argv[i], seq) ? 1 : 0;
	}
	return usage();
}
