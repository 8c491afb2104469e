/*
 * The client side of libpmix 4.2.2's connection handshake, done by the
 * proxy as a restored rank, because that rank believes it is still
 * connected and will never handshake again (docs/mpi.md, "Restore").
 *
 * The message, from openpmix v4.2.2 src/mca/ptl/base/ptl_base_fns.c
 * (pmix_ptl_base_construct_message) and read by
 * ptl_base_connection_hdlr.c, for a PMIX_SIMPLE_CLIENT over TCP:
 *
 *   header  int32 pindex = -1, uint32 tag = UINT32_MAX, uint32 nbytes,
 *           uint32 padding -- in HOST byte order (memcpy of the struct;
 *           only later messages convert their header with htonl)
 *   body    psec module name, NUL-terminated
 *           uint32 credential length (network order), the credential
 *             (native over TCP: uid_t euid, gid_t egid, host order;
 *              munge: the munge_encode string with its NUL; none: empty)
 *           uint8 flag = 0 (PMIX_SIMPLE_CLIENT)
 *           nspace NUL-terminated, uint32 rank (network order)
 *           the client's PMIX_VERSION, NUL-terminated
 *           bfrops module ("v41"...), NUL-terminated
 *           uint8 buffer type
 *           gds module, NUL-terminated
 *           one zero byte: the client counts a marker byte (send_connect_ack)
 *             that nothing fills; the server reads it as an empty blob
 *   reply   uint32 status (network order), then, on success, uint32 the
 *           peer's index in the server's client array.
 *
 * Nothing precedes the header on a TCP connection (pmix_ptl_base_connect
 * connects and send_connect_ack writes the message straight away).
 */
#include "step.h"

#include <arpa/inet.h>
#include <errno.h>
#include <munge.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PMIX_SIMPLE_CLIENT 0
#define PMIX_ERR_READY_FOR_HANDSHAKE (-1) /* asks for psec's extra round */

struct msg {
	char buf[4096];
	size_t len;
	bool overflow;
};

static void put(struct msg *m, const void *p, size_t n)
{
	if (m->len + n > sizeof(m->buf)) {
		m->overflow = true;
		return;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void put_string(struct msg *m, const char *str)
{
	put(m, str, strlen(str) + 1);
}

static void put_u32(struct msg *m, uint32_t v)
{
	uint32_t n = htonl(v);

	put(m, &n, sizeof(n));
}

static int put_credential(struct msg *m, const char *security)
{
	if (!strcmp(security, "native")) {
		uid_t euid = geteuid();
		gid_t egid = getegid();

		put_u32(m, sizeof(euid) + sizeof(egid));
		put(m, &euid, sizeof(euid));
		put(m, &egid, sizeof(egid));
		return 0;
	}
	if (!strcmp(security, "munge")) {
		char *cred = NULL;
		munge_err_t e = munge_encode(&cred, NULL, NULL, 0);

		if (e != EMUNGE_SUCCESS) {
			fprintf(stderr, "ckpt-step: munge credential: %s\n", munge_strerror(e));
			free(cred);
			return -EACCES;
		}
		put_u32(m, strlen(cred) + 1);
		put_string(m, cred);
		free(cred);
		return 0;
	}
	put_u32(m, 0); /* none */
	return 0;
}

static int build_message(const struct step *s, uint32_t rank, struct msg *m)
{
	struct {
		int32_t pindex;
		uint32_t tag, nbytes, padding;
	} hdr = { -1, UINT32_MAX, 0, 0 };
	const struct pmix_choice *c = &s->pmix;
	uint8_t flag = PMIX_SIMPLE_CLIENT, zero = 0;
	int rc;

	m->len = sizeof(hdr);
	put_string(m, c->security);
	rc = put_credential(m, c->security);
	if (rc)
		return rc;
	put(m, &flag, 1);
	put_string(m, s->nspace);
	put_u32(m, rank);
	put_string(m, c->version);
	put_string(m, c->bfrops);
	put(m, &c->buffer_type, 1);
	put_string(m, c->gds);
	put(m, &zero, 1);
	if (m->overflow)
		return -E2BIG;
	hdr.nbytes = m->len - sizeof(hdr);
	memcpy(m->buf, &hdr, sizeof(hdr));
	return 0;
}

static int read_full(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		c += r;
		n -= r;
	}
	return 0;
}

int write_full(int fd, const void *p, size_t n);

static int exchange(int fd, const struct msg *m, uint32_t rank)
{
	uint32_t status, index;
	int rc = write_full(fd, m->buf, m->len);

	if (!rc)
		rc = read_full(fd, &status, sizeof(status));
	if (rc) {
		fprintf(stderr, "ckpt-step: rank %u: PMIx handshake: %s\n", rank, strerror(-rc));
		return rc;
	}
	if ((int32_t)ntohl(status) != 0) {
		/* READY_FOR_HANDSHAKE would ask for a psec round we do not speak */
		fprintf(stderr, "ckpt-step: rank %u: PMIx server refused the handshake: status %d\n",
			rank, (int32_t)ntohl(status));
		return -EACCES;
	}
	rc = read_full(fd, &index, sizeof(index));
	if (rc) {
		fprintf(stderr, "ckpt-step: rank %u: PMIx handshake index: %s\n", rank, strerror(-rc));
		return rc;
	}
	return 0;
}

/* Connects to our server at 127.0.0.1:port as `rank`; returns the fd. */
int handshake_connect(const struct step *s, uint32_t rank, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct msg m = { .len = 0 };
	int fd, rc;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = build_message(s, rank, &m);
	if (rc) {
		fprintf(stderr, "ckpt-step: rank %u: PMIx handshake message: %s\n", rank, strerror(-rc));
		return rc;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		rc = -errno;
		fprintf(stderr, "ckpt-step: rank %u: connect to 127.0.0.1:%d: %s\n", rank, port,
			strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	/*
	 * Fault injection for tests/step: a plain connection, to show that
	 * the server drops a rank nobody handshook for.
	 */
	if (getenv("CKPT_STEP_FAULT") && !strcmp(getenv("CKPT_STEP_FAULT"), "no-handshake"))
		return fd;
	rc = exchange(fd, &m, rank);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/*
 * The client picks, among the modules listed in its environment, the
 * active one of highest priority (pmix_psec_base_assign_module,
 * pmix_gds_base_assign_module); these are 4.2.2's priorities.
 */
static int choose(const char *list, const char *const *by_priority, const char **out)
{
	for (int i = 0; by_priority[i]; i++) {
		const char *p = list;
		size_t n = strlen(by_priority[i]);

		while (p && *p) {
			if (!strncmp(p, by_priority[i], n) && (p[n] == ',' || p[n] == '\0')) {
				*out = by_priority[i];
				return 0;
			}
			p = strchr(p, ',');
			p = p ? p + 1 : NULL;
		}
	}
	return -EINVAL;
}

int choose_security(const char *list, const char **out)
{
	static const char *const prio[] = { "munge", "native", "none", NULL };

	return choose(list, prio, out);
}

int choose_gds(const char *list, const char **out)
{
	static const char *const prio[] = { "ds21", "ds12", "hash", NULL };

	return choose(list, prio, out);
}

/* PMIX_BFROP_BUFFER_TYPE as PMIx_server_setup_fork writes it, or a number. */
int choose_buffer_type(const char *value, uint8_t *out)
{
	if (!strcmp(value, "PMIX_BFROP_BUFFER_NON_DESC") || !strcmp(value, "1"))
		*out = 1;
	else if (!strcmp(value, "PMIX_BFROP_BUFFER_FULLY_DESC") || !strcmp(value, "2"))
		*out = 2;
	else
		return -EINVAL;
	return 0;
}
