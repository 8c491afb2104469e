/*
 * test-policy: the per-job policy file (slurm-plugin/policy.h) round-trips,
 * a step's write does not replace the batch step's, and a damaged or
 * forged file is refused on read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

static int failures;

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond)) {                                           \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                      \
		}                                                        \
	} while (0)

static char dir[] = "/tmp/ckpt-test-policy.XXXXXX";

static void put(uint32_t job, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%u.policy", dir, job);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static int get(uint32_t job)
{
	struct job_policy p;
	uid_t uid;
	return policy_read(dir, job, &uid, &p);
}

static void round_trip(void)
{
	struct job_policy in = { .kind = POLICY_PERIODIC, .interval_min = 15 }, out;
	uid_t uid;

	strcpy(in.dir, "/shared/ckpt");
	CHECK(policy_write(dir, 7, 1000, &in, 0) == 0);
	CHECK(policy_read(dir, 7, &uid, &out) == 0);
	CHECK(uid == 1000 && out.kind == POLICY_PERIODIC && out.interval_min == 15);
	CHECK(!strcmp(out.dir, "/shared/ckpt"));

	/* An srun step after the batch step keeps the batch step's file. */
	in.kind = POLICY_MANUAL;
	in.interval_min = 0;
	CHECK(policy_write(dir, 7, 1000, &in, 1) == 0);
	CHECK(policy_read(dir, 7, &uid, &out) == 0 && out.kind == POLICY_PERIODIC);
	CHECK(policy_write(dir, 7, 1000, &in, 0) == 0);
	CHECK(policy_read(dir, 7, &uid, &out) == 0 && out.kind == POLICY_MANUAL);
	CHECK(out.timelimit.action == TIMELIMIT_STOP);

	in.timelimit = (struct timelimit){ TIMELIMIT_REQUEUE, 3 };
	CHECK(policy_write(dir, 7, 1000, &in, 0) == 0);
	CHECK(policy_read(dir, 7, &uid, &out) == 0 && out.timelimit.action == TIMELIMIT_REQUEUE &&
	      out.timelimit.requeues == 3);
}

static void hostile(void)
{
	char big[8192];

	CHECK(get(99) == -ENOENT);
	put(8, "job_id=9\nuid=0\npolicy=manual\ndir=\ninterval_min=0\n");
	CHECK(get(8) == -EINVAL); /* another job's file */
	put(8, "job_id=8\nuid=0\npolicy=always\ndir=\ninterval_min=0\n");
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\nuid=0\npolicy=manual\ndir=relative\ninterval_min=0\n");
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\nuid=-1\npolicy=manual\ndir=\ninterval_min=0\n");
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\npolicy=manual\n");
	CHECK(get(8) == -EINVAL); /* no uid */
	put(8, "job_id=8\nuid=0\npolicy=manual\ninterval_min=99999999999\n");
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\nuid=0\npolicy=manual"); /* cut short */
	CHECK(get(8) == -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "dir=/", 5);
	put(8, big);
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\nuid=0\npolicy=manual\ntimelimit=requeue\n");
	CHECK(get(8) == -EINVAL); /* a file says how many */
	put(8, "job_id=8\nuid=0\npolicy=manual\ntimelimit=requeue:0\n");
	CHECK(get(8) == -EINVAL);
	put(8, "job_id=8\nuid=5\npolicy=on-preempt\nfuture_key=x\n");
	CHECK(get(8) == 0); /* new keys are ignored */
}

static void options(void)
{
	struct job_policy p = { .kind = POLICY_PERIODIC };
	enum job_policy_kind k;
	const char *why;
	uint32_t min;

	CHECK(policy_parse_kind("on-preempt", &k) == 0 && k == POLICY_ON_PREEMPT);
	CHECK(policy_parse_kind("", &k) == -EINVAL);
	CHECK(policy_parse_interval("0", &min) == -EINVAL);
	CHECK(policy_parse_interval("5x", &min) == -EINVAL);
	CHECK(policy_parse_interval("-5", &min) == -EINVAL);
	CHECK(policy_parse_interval("60", &min) == 0 && min == 60);
	CHECK(policy_check_dir("/a\nb") == -EINVAL);
	CHECK(policy_check(&p, &why) == -EINVAL); /* periodic, no interval */
	p.interval_min = 5;
	CHECK(policy_check(&p, &why) == 0);
}

/* --checkpoint-timelimit and the plugstack's timelimit=: never forever. */
static void timelimit(void)
{
	struct timelimit t = { TIMELIMIT_STOP, 0 }, site = { TIMELIMIT_REQUEUE, 4 };
	char buf[32];

	CHECK(policy_parse_timelimit("requeue:2", &t) == 0 && t.action == TIMELIMIT_REQUEUE &&
	      t.requeues == 2);
	CHECK(!strcmp(policy_timelimit_name(&t, buf, sizeof(buf)), "requeue:2"));
	CHECK(policy_parse_timelimit("stop", &t) == 0 && t.action == TIMELIMIT_STOP);
	CHECK(!strcmp(policy_timelimit_name(&t, buf, sizeof(buf)), "stop"));
	/* A bare requeue: the site's number, else once. */
	CHECK(policy_parse_timelimit("requeue", &t) == 0 && t.requeues == 1);
	CHECK(policy_parse_timelimit("requeue", &site) == 0 && site.requeues == 4);
	CHECK(policy_parse_timelimit("requeue:0", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("requeue:-1", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("requeue:1001", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("requeue:99999999999", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("requeue:2x", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("requeue2", &t) == -EINVAL);
	CHECK(policy_parse_timelimit("forever", &t) == -EINVAL);
	CHECK(policy_parse_timelimit(NULL, &t) == -EINVAL);
}

int main(void)
{
	char cmd[128];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	round_trip();
	hostile();
	options();
	timelimit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	if (!failures)
		printf("ok: policy file\n");
	return failures ? 1 : 0;
}
