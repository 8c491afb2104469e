/*
 * fence: the coordinator's agreement between nodes, through PMIx only
 * (no network protocol of ours): each node Puts its status for a phase
 * under the key "ckpt.PHASE", Commits, and a Fence over the whole job
 * step with PMIX_COLLECT_DATA makes every node's value local; each then
 * Gets every rank's.  A node gone or a fence past its timeout fails the
 * exchange, and the caller aborts its node.
 *
 * A status is one line: "ok NODE SEQ CRC ROOT TASKS" or "fail NODE WHY".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmix.h>

#include "coord.h"

struct fence {
	pmix_proc_t me;
	uint32_t size;
};

int fence_init(struct fence **out, uint32_t *rank, uint32_t *size)
{
	struct fence *f = calloc(1, sizeof(*f));
	pmix_value_t *v = NULL;
	pmix_proc_t wild;
	if (!f)
		return -ENOMEM;
	pmix_status_t rc = PMIx_Init(&f->me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-coord: PMIx_Init: %s (run as a PMIx job step: srun "
			"--mpi=pmix, or mpirun)\n", PMIx_Error_string(rc));
		free(f);
		return -ENOTCONN;
	}
	PMIX_LOAD_PROCID(&wild, f->me.nspace, PMIX_RANK_WILDCARD);
	rc = PMIx_Get(&wild, PMIX_JOB_SIZE, NULL, 0, &v);
	if (rc != PMIX_SUCCESS || !v || v->type != PMIX_UINT32) {
		fprintf(stderr, "ckpt-coord: PMIx_Get(job size): %s\n", PMIx_Error_string(rc));
		PMIx_Finalize(NULL, 0);
		free(f);
		return -EPROTO;
	}
	f->size = v->data.uint32;
	PMIX_VALUE_RELEASE(v);
	*rank = f->me.rank;
	*size = f->size;
	*out = f;
	return 0;
}

static void format_status(const struct node_status *s, char *buf, size_t len)
{
	if (s->ok)
		snprintf(buf, len, "ok %s %llu %u %u %u %d %s", s->node, (unsigned long long)s->seq,
			 s->crc, s->root, s->tasks, s->batch, s->address[0] ? s->address : "-");
	else
		snprintf(buf, len, "fail %s %s", s->node[0] ? s->node : "-", s->why);
}

static int parse_status(const char *line, struct node_status *s)
{
	unsigned long long seq;
	int n = 0;
	memset(s, 0, sizeof(*s));
	if (sscanf(line, "ok %71s %llu %u %u %u %d %63s", s->node, &seq, &s->crc, &s->root,
		   &s->tasks, &s->batch, s->address) == 7) {
		s->ok = 1;
		s->seq = seq;
		if (!strcmp(s->address, "-"))
			s->address[0] = '\0';
		return 0;
	}
	if (sscanf(line, "fail %71s %n", s->node, &n) == 1 && n > 0) {
		snprintf(s->why, sizeof(s->why), "%s", line + n);
		return 0;
	}
	return -EPROTO;
}

static int put_status(const char *key, const struct node_status *mine)
{
	char line[512];
	pmix_value_t val;
	format_status(mine, line, sizeof(line));
	PMIX_VALUE_LOAD(&val, line, PMIX_STRING);
	pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key, &val);
	PMIX_VALUE_DESTRUCT(&val);
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Commit();
	return rc == PMIX_SUCCESS ? 0 : -EPROTO;
}

static int fence_all(const struct fence *f, int timeout_s)
{
	pmix_proc_t wild;
	pmix_info_t info[2];
	bool collect = true;
	PMIX_LOAD_PROCID(&wild, f->me.nspace, PMIX_RANK_WILDCARD);
	PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
	PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &timeout_s, PMIX_INT);
	/* no timeout (0): a relayed fence waits for the job's own ranks */
	size_t ninfo = timeout_s > 0 ? 2 : 1;
	pmix_status_t rc = PMIx_Fence(&wild, 1, info, ninfo);
	PMIX_INFO_DESTRUCT(&info[0]);
	PMIX_INFO_DESTRUCT(&info[1]);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-coord: rank %u: fence: %s\n", f->me.rank,
			PMIx_Error_string(rc));
		return rc == PMIX_ERR_TIMEOUT ? -ETIMEDOUT : -EPROTO;
	}
	return 0;
}

int fence_exchange(struct fence *f, const char *phase, const struct node_status *mine,
		   struct node_status *v, int timeout_s)
{
	char key[64];
	snprintf(key, sizeof(key), "ckpt.%s", phase);
	int ret = put_status(key, mine);
	if (!ret)
		ret = fence_all(f, timeout_s);
	for (uint32_t r = 0; !ret && r < f->size; r++) {
		pmix_proc_t p;
		pmix_value_t *val = NULL;
		PMIX_LOAD_PROCID(&p, f->me.nspace, r);
		pmix_status_t rc = PMIx_Get(&p, key, NULL, 0, &val);
		if (rc != PMIX_SUCCESS || !val || val->type != PMIX_STRING ||
		    parse_status(val->data.string, &v[r]))
			ret = -EPROTO;
		if (val)
			PMIX_VALUE_RELEASE(val);
	}
	return ret;
}

/* The blob of every rank under "ckpt.relay.SEQ", concatenated in rank
 * order: every node's fence contribution, for relay.c. */
static int gather_blobs(const struct fence *f, const char *key, char **out, size_t *outlen)
{
	char *all = NULL;
	size_t len = 0;
	int ret = 0;
	for (uint32_t r = 0; !ret && r < f->size; r++) {
		pmix_proc_t p;
		pmix_value_t *val = NULL;
		PMIX_LOAD_PROCID(&p, f->me.nspace, r);
		pmix_status_t rc = PMIx_Get(&p, key, NULL, 0, &val);
		if (rc != PMIX_SUCCESS || !val || val->type != PMIX_BYTE_OBJECT) {
			fprintf(stderr, "ckpt-coord: rank %u: the relayed fence's data of rank %u: "
				"%s\n", f->me.rank, r, PMIx_Error_string(rc));
			ret = -EPROTO;
		} else if (val->data.bo.size) {
			char *n = realloc(all, len + val->data.bo.size);
			if (!n)
				ret = -ENOMEM;
			else {
				memcpy(n + len, val->data.bo.bytes, val->data.bo.size);
				all = n;
				len += val->data.bo.size;
			}
		}
		if (val)
			PMIX_VALUE_RELEASE(val);
	}
	if (ret)
		free(all);
	else
		*out = all, *outlen = len;
	return ret;
}

int fence_blob(struct fence *f, uint64_t seq, const char *data, size_t len, char **out,
	       size_t *outlen)
{
	char key[64];
	pmix_value_t val;
	pmix_byte_object_t bo = { .bytes = (char *)data, .size = len };
	snprintf(key, sizeof(key), "ckpt.relay.%llu", (unsigned long long)seq);
	PMIX_VALUE_LOAD(&val, &bo, PMIX_BYTE_OBJECT);
	pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key, &val);
	PMIX_VALUE_DESTRUCT(&val);
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Commit();
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-coord: rank %u: put of a relayed fence: %s\n", f->me.rank,
			PMIx_Error_string(rc));
		return -EPROTO;
	}
	int ret = fence_all(f, 0);
	return ret ? ret : gather_blobs(f, key, out, outlen);
}

void fence_fini(struct fence *f)
{
	PMIx_Finalize(NULL, 0);
	free(f);
}
