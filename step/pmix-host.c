/*
 * The proxy's PMIx server: libpmix 4.2.2 with this process as its host,
 * on one node.  PMIx_server_init with the tmpdir ours (session and system
 * tmpdir both: no rendezvous file outside it), no tool or system support,
 * so libpmix listens on loopback TCP only; the step's namespace and ranks
 * are registered as slurmstepd's mpi/pmix plugin registers them, so that a
 * rank's later PMIx_Get of job-level keys finds them.
 *
 * Upcalls run on libpmix's progress thread.  fence_nb: every participant
 * is local, so the data libpmix hands in is the fence's result, as any
 * one-node host does; with --fence-relay the other nodes' come through
 * this node's ckpt-coord (relay.c).  abort: recorded, and one byte on abort_fd wakes
 * the main loop, which kills the ranks (main.c).  client_connected and
 * client_finalized: acknowledged.  Nothing else is offered: libpmix then
 * answers PMIX_ERR_NOT_SUPPORTED to the rank itself.
 */
#include "step.h"

#include <errno.h>
#include <pmix.h>
#include <pmix_server.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int abort_pipe = -1;

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	pmix_status_t status;
};

static void waiter_release(pmix_status_t status, void *cbdata)
{
	struct waiter *w = cbdata;

	pthread_mutex_lock(&w->lock);
	w->status = status;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static pmix_status_t waiter_wait(struct waiter *w, pmix_status_t rc)
{
	if (rc == PMIX_OPERATION_SUCCEEDED)
		return PMIX_SUCCESS;
	if (rc != PMIX_SUCCESS)
		return rc;
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return w->status;
}

#define WAITER_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, PMIX_SUCCESS }

static pmix_status_t on_connected(const pmix_proc_t *proc, void *server_object,
				  pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	return PMIX_SUCCESS;
}

static pmix_status_t on_finalized(const pmix_proc_t *proc, void *server_object,
				  pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t on_abort(const pmix_proc_t *proc, void *server_object, int status,
			      const char msg[], pmix_proc_t procs[], size_t nprocs,
			      pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	char c = 1;

	fprintf(stderr, "ckpt-step: rank %u called PMIx_Abort (status %d)%s%s\n", proc->rank,
		status, msg ? ": " : "", msg ? msg : "");
	if (write(abort_pipe, &c, 1) < 0)
		fprintf(stderr, "ckpt-step: abort pipe: %s\n", strerror(errno));
	return PMIX_OPERATION_SUCCEEDED;
}

static bool relayed; /* --fence-relay: ranks on other nodes too */

struct fence_call {
	pmix_modex_cbfunc_t cbfunc;
	void *cbdata;
};

/* The relay's answer: every node's contributions (malloc'd), which
 * libpmix hands back to free through the release callback. */
static void relay_done(int status, char *data, size_t len, void *arg)
{
	struct fence_call *fc = arg;

	if (status) {
		fprintf(stderr, "ckpt-step: a fence across nodes failed: %s\n", strerror(-status));
		fc->cbfunc(PMIX_ERROR, NULL, 0, fc->cbdata, NULL, NULL);
	} else {
		fc->cbfunc(PMIX_SUCCESS, data, len, fc->cbdata, free, data);
	}
	free(fc);
}

static pmix_status_t on_fence(const pmix_proc_t procs[], size_t nprocs, const pmix_info_t info[],
			      size_t ninfo, char *data, size_t ndata, pmix_modex_cbfunc_t cbfunc,
			      void *cbdata)
{
	if (!relayed) {
		/* all participants are ours: their contributions are the result */
		if (cbfunc)
			cbfunc(PMIX_SUCCESS, data, ndata, cbdata, NULL, NULL);
		return PMIX_SUCCESS;
	}
	struct fence_call *fc = malloc(sizeof(*fc));
	if (!fc || !cbfunc) {
		free(fc);
		return PMIX_ERR_NOMEM;
	}
	*fc = (struct fence_call){ cbfunc, cbdata };
	int rc = relay_fence(data, ndata, relay_done, fc);
	if (rc) {
		fprintf(stderr, "ckpt-step: fence relay: %s\n", strerror(-rc));
		free(fc);
		return PMIX_ERROR;
	}
	return PMIX_SUCCESS;
}

static pmix_server_module_t host_module = {
	.client_connected = on_connected,
	.client_finalized = on_finalized,
	.abort = on_abort,
	.fence_nb = on_fence,
};

static int server_init(const char *tmpdir)
{
	pmix_info_t info[5];
	bool no = false;
	pmix_status_t rc;

	PMIX_INFO_LOAD(&info[0], PMIX_SERVER_TMPDIR, tmpdir, PMIX_STRING);
	PMIX_INFO_LOAD(&info[1], PMIX_SYSTEM_TMPDIR, tmpdir, PMIX_STRING);
	PMIX_INFO_LOAD(&info[2], PMIX_SERVER_TOOL_SUPPORT, &no, PMIX_BOOL);
	PMIX_INFO_LOAD(&info[3], PMIX_SERVER_SYSTEM_SUPPORT, &no, PMIX_BOOL);
	PMIX_INFO_LOAD(&info[4], PMIX_SERVER_REMOTE_CONNECTIONS, &no, PMIX_BOOL);
	rc = PMIx_server_init(&host_module, info, 5);
	for (int i = 0; i < 5; i++)
		PMIX_INFO_DESTRUCT(&info[i]);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-step: PMIx_server_init: %s\n", PMIx_Error_string(rc));
		return -EIO;
	}
	return 0;
}

/* "0,1,2": the local ranks, as PMIX_LOCAL_PEERS wants them. */
static char *local_peers(const struct step *s)
{
	size_t cap = (size_t)s->ntasks * 11 + 1;
	char *p = calloc(1, cap);
	size_t n = 0;

	for (int i = 0; p && i < s->ntasks; i++)
		n += snprintf(p + n, cap - n, "%s%u", i ? "," : "", s->tasks[i].rank);
	return p;
}

/* PMIX_PROC_DATA for one rank: its rank, local and node rank, host. */
static void proc_data(pmix_info_t *out, const struct step *s, int i, const char *host)
{
	pmix_data_array_t *darray;
	pmix_info_t *d;
	uint16_t local = i;
	pmix_rank_t rank = s->tasks[i].rank;

	PMIX_DATA_ARRAY_CREATE(darray, 5, PMIX_INFO);
	d = darray->array;
	PMIX_INFO_LOAD(&d[0], PMIX_RANK, &rank, PMIX_PROC_RANK);
	PMIX_INFO_LOAD(&d[1], PMIX_GLOBAL_RANK, &rank, PMIX_PROC_RANK);
	PMIX_INFO_LOAD(&d[2], PMIX_LOCAL_RANK, &local, PMIX_UINT16);
	PMIX_INFO_LOAD(&d[3], PMIX_NODE_RANK, &local, PMIX_UINT16);
	PMIX_INFO_LOAD(&d[4], PMIX_HOSTNAME, host, PMIX_STRING);
	PMIX_INFO_LOAD(out, PMIX_PROC_DATA, darray, PMIX_DATA_ARRAY);
	PMIX_DATA_ARRAY_FREE(darray);
}

/* A rank on another node (--fence-relay): libpmix's job data holds
 * every rank's, though we know only its number there. */
static void remote_proc_data(pmix_info_t *out, pmix_rank_t rank)
{
	pmix_data_array_t *darray;
	pmix_info_t *d;

	PMIX_DATA_ARRAY_CREATE(darray, 2, PMIX_INFO);
	d = darray->array;
	PMIX_INFO_LOAD(&d[0], PMIX_RANK, &rank, PMIX_PROC_RANK);
	PMIX_INFO_LOAD(&d[1], PMIX_GLOBAL_RANK, &rank, PMIX_PROC_RANK);
	PMIX_INFO_LOAD(out, PMIX_PROC_DATA, darray, PMIX_DATA_ARRAY);
	PMIX_DATA_ARRAY_FREE(darray);
}

static bool is_local(const struct step *s, uint32_t rank)
{
	for (int i = 0; i < s->ntasks; i++)
		if (s->tasks[i].rank == rank)
			return true;
	return false;
}

#define JOB_KEYS 11

static int register_nspace(const struct step *s)
{
	struct waiter w = WAITER_INIT;
	uint32_t size = s->size, local = s->ntasks, zero = 0, one = 1;
	char host[256] = "localhost", *peers = local_peers(s);
	size_t n = JOB_KEYS + (relayed ? s->size : (uint32_t)s->ntasks);
	pmix_info_t *info;
	pmix_status_t rc;

	gethostname(host, sizeof(host) - 1);
	PMIX_INFO_CREATE(info, n);
	if (!info || !peers) {
		free(peers);
		return -ENOMEM;
	}
	PMIX_INFO_LOAD(&info[0], PMIX_UNIV_SIZE, &size, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[1], PMIX_JOB_SIZE, &size, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[2], PMIX_MAX_PROCS, &size, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[3], PMIX_LOCAL_SIZE, &local, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[4], PMIX_NODE_SIZE, &local, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[5], PMIX_LOCAL_PEERS, peers, PMIX_STRING);
	PMIX_INFO_LOAD(&info[6], PMIX_APPNUM, &zero, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[7], PMIX_NUM_NODES, &one, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[8], PMIX_NODEID, &zero, PMIX_UINT32);
	PMIX_INFO_LOAD(&info[9], PMIX_HOSTNAME, host, PMIX_STRING);
	PMIX_INFO_LOAD(&info[10], PMIX_JOBID, s->nspace, PMIX_STRING);
	for (int i = 0; i < s->ntasks; i++)
		proc_data(&info[JOB_KEYS + i], s, i, host);
	size_t k = JOB_KEYS + (size_t)s->ntasks;
	for (uint32_t r = 0; relayed && r < s->size; r++)
		if (!is_local(s, r))
			remote_proc_data(&info[k++], r);
	rc = PMIx_server_register_nspace(s->nspace, s->ntasks, info, n, waiter_release, &w);
	rc = waiter_wait(&w, rc);
	PMIX_INFO_FREE(info, n);
	free(peers);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-step: nspace %s: register: %s\n", s->nspace,
			PMIx_Error_string(rc));
		return -EIO;
	}
	return 0;
}

static int register_clients(const struct step *s)
{
	for (int i = 0; i < s->ntasks; i++) {
		struct waiter w = WAITER_INIT;
		pmix_proc_t proc;
		pmix_status_t rc;

		PMIX_LOAD_PROCID(&proc, s->nspace, s->tasks[i].rank);
		rc = PMIx_server_register_client(&proc, s->uid, s->gid, NULL, waiter_release, &w);
		rc = waiter_wait(&w, rc);
		if (rc != PMIX_SUCCESS) {
			fprintf(stderr, "ckpt-step: rank %u: register client: %s\n",
				s->tasks[i].rank, PMIx_Error_string(rc));
			return -EIO;
		}
	}
	return 0;
}

int host_start(struct step *s, int abort_fd)
{
	int rc;

	abort_pipe = abort_fd;
	if (s->relay && (rc = relay_connect(s)))
		return rc;
	relayed = s->relay != NULL;
	rc = server_init(s->tmpdir);
	if (rc)
		return rc;
	rc = register_nspace(s);
	if (!rc)
		rc = register_clients(s);
	return rc;
}

/*
 * Our server's TCP port, read from the URI PMIx_server_setup_fork gives a
 * child ("NSPACE.RANK;tcp4://127.0.0.1:PORT"): libpmix has no other public
 * way to tell it.
 */
int host_server_port(struct step *s)
{
	char **env = NULL, *uri = NULL;
	pmix_proc_t proc;
	int port = -ENOENT;

	PMIX_LOAD_PROCID(&proc, s->nspace, s->tasks[0].rank);
	if (PMIx_server_setup_fork(&proc, &env) != PMIX_SUCCESS) {
		fprintf(stderr, "ckpt-step: PMIx_server_setup_fork failed\n");
		return -EIO;
	}
	for (int i = 0; env && env[i]; i++)
		if (!strncmp(env[i], "PMIX_SERVER_URI41=", 18))
			uri = env[i] + 18;
	if (uri && (uri = strstr(uri, "tcp4://127.0.0.1:")))
		port = atoi(uri + 17);
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "ckpt-step: no loopback tcp4 URI from libpmix\n");
		port = -ENOENT;
	}
	for (int i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
	return port;
}
