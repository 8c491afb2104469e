/*
 * page-server: the receiving end of a dump sent with img_set_send_to()
 * (remote.c; the wire is in remote.h).  `ckptctl page-server` runs it.
 *
 * It listens, and serves one connection at a time until a set has been
 * committed into its directory.  A connection first proves who it is
 * with a munge credential; the server accepts its own uid or root (a
 * root server: root only) and writes as itself, never as anyone the
 * credential names, so a remote user gets no more than they could write
 * themselves.  Nothing is created before the credential is accepted.
 *
 * Files are written into an img_set opened for writing (flock, old
 * manifest removed first, every created file recorded), exactly as a
 * local dump writes: the set becomes a checkpoint only when the manifest
 * the dumper sends last has been checked against what arrived (every
 * listed file, with its size, and nothing else), every file fsynced,
 * and "manifest.tmp" renamed to "manifest".  A dumper that vanishes, a
 * bad frame, a failed write: img_set_abort() removes what was created,
 * and a server killed outright leaves files without a manifest, which
 * is not a set.  The crc of each file is checked by the restore (as for
 * any set), not here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <munge.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "internal.h"
#include "manifest.pb-c.h"
#include "remote.h"

#define AUTH_TIMEOUT_S 10
/* The dumper freezes and walks the tree between frames. */
#define FRAME_TIMEOUT_S 600
#define MAX_INCOMING 100000
#define MAX_FILE_END (1ull << 44)

struct incoming {
	char *name;
	int fd;
};

struct receiver {
	int conn;
	const char *peer;
	struct img_set *set;
	struct incoming *files;
	size_t nr, cap;
	uint8_t *buf; /* one frame's data */
};

/* REPLY to the dumper; best effort (it may be gone). */
static void reply(int conn, int err, const char *why)
{
	struct remote_hdr h = { .type = REMOTE_REPLY,
				.offset = (uint64_t)(int64_t)err,
				.len = why ? strlen(why) : 0 };

	remote_send_frame(conn, &h, "", why ? why : "");
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The uid a credential names, if it may write here. */
static int authenticate(struct receiver *r)
{
	uint8_t hdr[REMOTE_HDR];
	char cred[REMOTE_MAX_CRED + 1], why[256];
	struct remote_hdr h;
	uid_t uid;
	gid_t gid;
	int ret = remote_recv_full(r->conn, hdr, sizeof(hdr));

	if (!ret) {
		remote_hdr_unpack(hdr, &h);
		if (h.type != REMOTE_AUTH || h.name_len || !h.len || h.len > REMOTE_MAX_CRED)
			ret = -EACCES;
	}
	if (!ret)
		ret = remote_recv_full(r->conn, cred, h.len);
	if (ret) {
		snprintf(why, sizeof(why), "the first message must be a munge credential");
		goto refuse;
	}
	cred[h.len] = '\0';
	munge_err_t e = munge_decode(cred, NULL, NULL, NULL, &uid, &gid);
	if (e != EMUNGE_SUCCESS) {
		snprintf(why, sizeof(why), "munge: %s", munge_strerror(e));
		goto refuse;
	}
	if (uid != geteuid() && uid != 0) {
		snprintf(why, sizeof(why), "uid %u may not write here (the server's uid is %u)",
			 (unsigned)uid, (unsigned)geteuid());
		goto refuse;
	}
	reply(r->conn, 0, NULL);
	return 0;
refuse:
	st_err("page server: %s refused: %s", r->peer, why);
	reply(r->conn, -EACCES, why);
	return -EACCES;
}

static struct incoming *incoming_find(struct receiver *r, const char *name)
{
	for (size_t i = 0; i < r->nr; i++)
		if (!strcmp(r->files[i].name, name))
			return &r->files[i];
	return NULL;
}

/* The file `name` of the set, created at its first frame. */
static int incoming_fd(struct receiver *r, const char *name)
{
	struct incoming *f = incoming_find(r, name);

	if (f)
		return f->fd;
	if (r->nr == MAX_INCOMING)
		return -EMFILE;
	if (r->nr == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct incoming *n = realloc(r->files, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->files = n;
		r->cap = cap;
	}
	f = &r->files[r->nr];
	f->fd = set_create_fd(r->set, name);
	if (f->fd < 0)
		return f->fd;
	f->name = strdup(name);
	if (!f->name) {
		close(f->fd);
		return -ENOMEM;
	}
	r->nr++;
	return f->fd;
}

static int receive_data(struct receiver *r, const struct remote_hdr *h, char *why, size_t len)
{
	char name[REMOTE_MAX_NAME + 1];
	int fd, ret;

	if (!h->name_len || h->name_len > REMOTE_MAX_NAME || h->len > REMOTE_MAX_DATA ||
	    h->offset > MAX_FILE_END - h->len) {
		snprintf(why, len, "a bad data frame");
		return -EPROTO;
	}
	ret = remote_recv_full(r->conn, name, h->name_len);
	if (!ret)
		ret = remote_recv_full(r->conn, r->buf, h->len);
	if (ret)
		return ret;
	name[h->name_len] = '\0';
	if (strlen(name) != h->name_len || !set_valid_name(name) || !strcmp(name, MANIFEST_NAME) ||
	    !strcmp(name, MANIFEST_TMP)) {
		snprintf(why, len, "a file name that is not one of a set");
		return -EPROTO;
	}
	fd = incoming_fd(r, name);
	ret = fd < 0 ? fd : pwrite_full(fd, r->buf, h->len, h->offset);
	if (ret)
		snprintf(why, len, "%s/%s: %s", r->set->dir, name, strerror(-ret));
	return ret;
}

/* Every listed file arrived with its size, and nothing else did. */
static int check_arrived(struct receiver *r, const ManifestEntry *me, char *why, size_t len)
{
	struct stat st;

	for (size_t i = 0; i < me->n_files; i++) {
		const ManifestFile *mf = me->files[i];
		struct incoming *f = incoming_find(r, mf->name);
		if (!f) {
			snprintf(why, len, "%s: in the manifest, never sent", mf->name);
			return -EPROTO;
		}
		if (fstat(f->fd, &st) || (uint64_t)st.st_size != mf->size) {
			snprintf(why, len, "%s: %lld bytes arrived, the manifest says %llu",
				 mf->name, (long long)st.st_size, (unsigned long long)mf->size);
			return -EPROTO;
		}
	}
	if (r->nr != me->n_files) {
		snprintf(why, len, "files sent that the manifest does not list");
		return -EPROTO;
	}
	return 0;
}

static int write_manifest(struct receiver *r, uint32_t len)
{
	int fd = set_create_fd(r->set, MANIFEST_TMP);
	int ret = fd < 0 ? fd : pwrite_full(fd, r->buf, len, 0);

	if (!ret && fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

static int commit(struct receiver *r, const struct remote_hdr *h, char *why, size_t len)
{
	ProtobufCMessage *msg = NULL;
	int ret;

	if (h->name_len || h->len > REMOTE_MAX_MANIFEST) {
		snprintf(why, len, "a bad manifest frame");
		return -EPROTO;
	}
	free(r->buf);
	r->buf = malloc(h->len ? h->len : 1);
	if (!r->buf)
		return -ENOMEM;
	if ((ret = remote_recv_full(r->conn, r->buf, h->len)))
		return ret;
	ret = write_manifest(r, h->len);
	if (!ret)
		ret = img_read_one_file(r->set, IMG_MANIFEST, MANIFEST_TMP, 0,
					&manifest_entry__descriptor, &msg);
	if (ret) {
		snprintf(why, len, "%s: the manifest: %s", r->set->dir, strerror(-ret));
		return ret;
	}
	ret = check_arrived(r, (ManifestEntry *)msg, why, len);
	protobuf_c_message_free_unpacked(msg, NULL);
	for (size_t i = 0; !ret && i < r->nr; i++)
		if (fsync(r->files[i].fd))
			ret = -errno;
	if (!ret && (renameat(r->set->dirfd, MANIFEST_TMP, r->set->dirfd, MANIFEST_NAME) ||
		     fsync(r->set->dirfd)))
		ret = -errno;
	if (ret && !why[0])
		snprintf(why, len, "%s: committing: %s", r->set->dir, strerror(-ret));
	return ret;
}

/* Frames until COMMIT: 0 when the set is committed. */
static int receive(struct receiver *r, char *why, size_t len)
{
	uint8_t hdr[REMOTE_HDR];
	struct remote_hdr h;
	int ret;

	for (;;) {
		if ((ret = remote_recv_full(r->conn, hdr, sizeof(hdr))))
			return ret;
		remote_hdr_unpack(hdr, &h);
		if (h.type == REMOTE_COMMIT)
			return commit(r, &h, why, len);
		if (h.type != REMOTE_DATA) {
			snprintf(why, len, "an unknown frame (type %u)", h.type);
			return -EPROTO;
		}
		if ((ret = receive_data(r, &h, why, len)))
			return ret;
	}
}

static void receiver_free(struct receiver *r)
{
	for (size_t i = 0; i < r->nr; i++) {
		close(r->files[i].fd);
		free(r->files[i].name);
	}
	free(r->files);
	free(r->buf);
}

/* One connection: 0 when it committed a set into `dir`. */
static int serve(const char *dir, int conn, const char *peer)
{
	struct receiver r = { .conn = conn, .peer = peer };
	char why[512] = "";
	int ret;

	set_timeout(conn, AUTH_TIMEOUT_S);
	if ((ret = authenticate(&r)))
		return ret;
	set_timeout(conn, FRAME_TIMEOUT_S);
	r.buf = malloc(REMOTE_MAX_DATA);
	ret = r.buf ? img_set_create(dir, &r.set) : -ENOMEM;
	if (!ret)
		ret = receive(&r, why, sizeof(why));
	if (ret) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s",
				 ret == -EPIPE	     ? "the dumper went away"
				 : ret == -ETIMEDOUT ? "nothing from the dumper for too long"
						     : strerror(-ret));
		st_err("page server: %s: set not committed: %s", peer, why);
		reply(conn, ret, why);
		if (r.set)
			img_set_abort(r.set);
	} else {
		printf("committed %s from %s\n", dir, peer);
		fflush(stdout);
		reply(conn, 0, NULL);
	}
	receiver_free(&r);
	img_set_close(r.set);
	return ret;
}

static int listen_on(const char *address, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	char serv[16];
	int one = 1, fd, ret;

	snprintf(serv, sizeof(serv), "%d", port);
	if (!address)
		hints.ai_family = AF_INET6; /* :: takes IPv4 too */
	ret = getaddrinfo(address, serv, &hints, &res);
	if (ret) {
		st_err("page server: %s: %s", address ? address : "::", gai_strerror(ret));
		return -EADDRNOTAVAIL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 8)) {
		ret = -errno;
		st_err("page server: %s port %d: %s", address ? address : "::", port,
		       strerror(-ret));
		if (fd >= 0)
			close(fd);
		fd = ret;
	}
	freeaddrinfo(res);
	return fd;
}

static void name_of(const struct sockaddr_storage *a, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?", serv[16] = "?";

	getnameinfo((const struct sockaddr *)a, sizeof(*a), host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(out, len, "%s:%s", host, serv);
}

int page_server_run(const char *dir, const char *address, int port)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	char peer[INET6_ADDRSTRLEN + 24];
	int lfd = listen_on(address, port), ret = -1;

	if (lfd < 0)
		return lfd;
	if (!getsockname(lfd, (struct sockaddr *)&a, &alen)) {
		name_of(&a, peer, sizeof(peer));
		printf("listening on %s\n", peer);
		fflush(stdout);
	}
	while (ret) {
		alen = sizeof(a);
		int conn = accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			ret = -errno;
			st_err("page server: accept: %s", strerror(-ret));
			break;
		}
		name_of(&a, peer, sizeof(peer));
		ret = serve(dir, conn, peer);
		close(conn);
	}
	close(lfd);
	return ret;
}
