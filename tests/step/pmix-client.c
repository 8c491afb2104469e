/*
 * A real libpmix 4.2.2 client for tests/step: what an MPI rank does with
 * PMIx, from PMIx_Init (whose handshake step-harness --old-server
 * answered) to PMIx_Finalize, all of it served by ckpt-step's server
 * through its splice.
 *
 * Checks the job size the proxy registered, puts a key, fences with data
 * collection, reads the other rank's key (the fence_nb upcall's data),
 * fences without data as OpenMPI's MPI_Finalize does, finalizes.
 * Prints "client RANK ok" and exits 0; exits 2 naming the failing call.
 */
#include <pmix.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void check(pmix_status_t rc, const char *what, const pmix_proc_t *me)
{
	if (rc == PMIX_SUCCESS)
		return;
	fprintf(stderr, "client %u: %s: %s\n", me->rank, what, PMIx_Error_string(rc));
	exit(2);
}

int main(void)
{
	pmix_proc_t me, all, peer;
	pmix_value_t v, *got = NULL;
	pmix_info_t collect;
	bool yes = true;
	uint32_t mine;

	alarm(30);
	check(PMIx_Init(&me, NULL, 0), "PMIx_Init", &me);
	PMIX_LOAD_PROCID(&all, me.nspace, PMIX_RANK_WILDCARD);
	check(PMIx_Get(&all, PMIX_JOB_SIZE, NULL, 0, &got), "PMIx_Get job size", &me);
	if (got->data.uint32 != 2) {
		fprintf(stderr, "client %u: job size %u\n", me.rank, got->data.uint32);
		return 2;
	}
	PMIX_VALUE_RELEASE(got);
	mine = 100 + me.rank;
	PMIX_VALUE_LOAD(&v, &mine, PMIX_UINT32);
	check(PMIx_Put(PMIX_GLOBAL, "ckpt.test", &v), "PMIx_Put", &me);
	check(PMIx_Commit(), "PMIx_Commit", &me);
	PMIX_INFO_LOAD(&collect, PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
	check(PMIx_Fence(&all, 1, &collect, 1), "PMIx_Fence (collect)", &me);
	PMIX_LOAD_PROCID(&peer, me.nspace, 1 - me.rank);
	check(PMIx_Get(&peer, "ckpt.test", NULL, 0, &got), "PMIx_Get peer key", &me);
	if (got->data.uint32 != 100 + peer.rank) {
		fprintf(stderr, "client %u: peer key %u\n", me.rank, got->data.uint32);
		return 2;
	}
	PMIX_VALUE_RELEASE(got);
	check(PMIx_Fence(NULL, 0, NULL, 0), "PMIx_Fence", &me);
	check(PMIx_Finalize(NULL, 0), "PMIx_Finalize", &me);
	printf("client %u ok\n", me.rank);
	return 0;
}
