/*
 * coord-rpc: the coordinator's requests to ckptd, one at a time, as a
 * user could send them by hand (coord-test.sh's refusals):
 *
 *   coord-rpc held JOB NODE          a held dump; answers "abort" at its first gate
 *   coord-rpc commit JOB SEQ NODE:CRC...   the commit of a multi-node set
 *   coord-rpc gate ACTION            a gate word with no held dump
 *
 * Prints ckptd's final reply ("result N: error") and exits 0 when the
 * request went through, 1 when ckptd refused it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/client.h"
#include "rpc.pb-c.h"

static int send_req(struct ckpt_conn *c, const RpcRequest *q)
{
	size_t len = rpc_request__get_packed_size(q);
	void *buf = malloc(len + 1);
	rpc_request__pack(q, buf);
	int ret = ckpt_conn_send(c, buf, len);
	free(buf);
	return ret;
}

/* Replies until the final one; a gate is answered "abort". */
static int finish(struct ckpt_conn *c)
{
	for (;;) {
		void *buf;
		size_t len;
		if (ckpt_conn_recv(c, &buf, &len, 1u << 20)) {
			printf("connection closed\n");
			return 1;
		}
		RpcReply *r = rpc_reply__unpack(NULL, len, buf);
		free(buf);
		if (!r)
			return 1;
		if (r->gate) {
			printf("gate %s\n", r->gate->phase);
			RpcRequest q = RPC_REQUEST__INIT;
			RpcGate g = RPC_GATE__INIT;
			g.action = "abort";
			q.req_case = RPC_REQUEST__REQ_GATE;
			q.gate = &g;
			send_req(c, &q);
		}
		if (r->done) {
			int res = r->has_result ? r->result : -1;
			printf("result %d: %s\n", res, r->error ? r->error : "ok");
			rpc_reply__free_unpacked(r, NULL);
			return res ? 1 : 0;
		}
		rpc_reply__free_unpacked(r, NULL);
	}
}

int main(int argc, char **argv)
{
	RpcRequest q = RPC_REQUEST__INIT;
	RpcDump d = RPC_DUMP__INIT;
	RpcCommitSet cs = RPC_COMMIT_SET__INIT;
	RpcGate g = RPC_GATE__INIT;
	RpcPart parts[16], *ptrs[16];
	struct ckpt_conn *c;
	if (argc >= 4 && !strcmp(argv[1], "held")) {
		d.has_job_id = d.has_held = 1;
		d.job_id = (uint32_t)atoi(argv[2]);
		d.held = 1;
		d.node = argv[3];
		q.req_case = RPC_REQUEST__REQ_DUMP;
		q.dump = &d;
	} else if (argc >= 5 && argc < 20 && !strcmp(argv[1], "commit")) {
		cs.job_id = (uint32_t)atoi(argv[2]);
		cs.seq = strtoull(argv[3], NULL, 10);
		for (int i = 4; i < argc; i++) {
			char *colon = strchr(argv[i], ':');
			rpc_part__init(&parts[i - 4]);
			if (colon)
				*colon = '\0';
			parts[i - 4].node = argv[i];
			parts[i - 4].manifest_crc = colon ? (uint32_t)strtoul(colon + 1, NULL, 16) : 0;
			ptrs[i - 4] = &parts[i - 4];
		}
		cs.n_parts = (size_t)(argc - 4);
		cs.parts = ptrs;
		q.req_case = RPC_REQUEST__REQ_COMMIT_SET;
		q.commit_set = &cs;
	} else if (argc == 3 && !strcmp(argv[1], "gate")) {
		g.action = argv[2];
		q.req_case = RPC_REQUEST__REQ_GATE;
		q.gate = &g;
	} else {
		fprintf(stderr, "usage: coord-rpc held JOB NODE | commit JOB SEQ NODE:CRC... | "
				"gate ACTION\n");
		return 2;
	}
	if (ckpt_conn_open(ckpt_client_socket(), &c) || send_req(c, &q)) {
		printf("no ckptd\n");
		return 2;
	}
	int ret = finish(c);
	ckpt_conn_close(c);
	return ret;
}
