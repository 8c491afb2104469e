/*
 * sk-unix: unix sockets (stream, dgram, seqpacket).
 *
 * Dump: sock_diag (sk-diag.c) tells each socket's type, state, name, peer
 * and shutdown state; the receive queue is read without being consumed,
 * through a duplicate of the target's fd (sk-queue.c).
 * A socket whose peer is outside the tree is refused by name unless
 * --ext-unix-sk allows it.  Fds in flight (SCM_RIGHTS) land in the dumper
 * with the peek; files.c finds their descriptions (kcmp), dumping those
 * that only the queue holds, and the queue records which message carries
 * which files (queue_fds, sk-queue.c).
 *
 * Restore: sockets are rebuilt in the driver's pool.  A connected pair
 * whose both ends are in the tree is connected again through its listener
 * when that is in the tree (so that both ends keep their names), else it
 * becomes a socketpair; the second end waits in `slots` until its
 * description is opened.  Listeners and bound sockets are bound again
 * (sk-unix-bind.c: a stale socket file left by the dumped process is
 * removed first; a name whose file was gone at dump time is bound all the
 * same, and reached through a private link while the restore runs); a
 * dgram socket connected to a named one is connected to it.  Queues are
 * refilled (through the peer, or sent to the socket's name before it
 * connects), then shutdown states are applied.  A queue whose messages
 * carry fds waits, with its shutdown states and options, until every
 * description is in the pool (pool_ready): they go with SCM_RIGHTS, so the
 * receiver gets the descriptions the tree shares, or the only copy of
 * one that only the queue held (the pool's closes once handed out).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/tcp.h>

#include "file-kinds.h"
#include "log.h"
#include "sk-diag.h"
#include "sk-opts.h"
#include "sk-queue.h"
#include "sk-unix-bind.h"
#include "ckpt/ckpt.h"

struct unix_dump {
	struct unix_diag_table diag;
	int loaded;
};

static int unix_match(const struct fd_dump *f)
{
	return S_ISSOCK(f->st->st_mode) && sk_domain(f->pid, f->fd) == AF_UNIX;
}

/* The dump's state, in its arena. */
static int load_diag(struct fd_dump *f, struct unix_dump **out)
{
	struct unix_dump *u = *f->priv;
	if (!u) {
		u = arena_alloc(&f->fdump->a, sizeof(*u));
		if (!u)
			return -ENOMEM;
		*f->priv = u;
	}
	if (!u->loaded) {
		int ret = sk_diag_unix(&u->diag, &f->fdump->a);
		if (ret)
			return ret;
		u->loaded = 1;
	}
	*out = u;
	return 0;
}

static int get_int(int sk, int opt)
{
	int v = 0;
	socklen_t len = sizeof(v);
	getsockopt(sk, SOL_SOCKET, opt, &v, &len);
	return v;
}

static int dump_options(struct fd_dump *f, UnixSkEntry *u)
{
	int sk = files_getfd(f->pid, f->fd), ret = 0;
	if (sk < 0) {
		pr_err("pid %d: fd %d: pidfd_getfd: %s", f->pid, f->fd, strerror(-sk));
		return sk;
	}
	u->has_rcvbuf = u->has_sndbuf = u->has_passcred = 1;
	u->rcvbuf = (uint32_t)get_int(sk, SO_RCVBUF);
	u->sndbuf = (uint32_t)get_int(sk, SO_SNDBUF);
	u->passcred = get_int(sk, SO_PASSCRED) != 0;
	/* Every other SOL_SOCKET option, from sk-opts.c's table. */
	char why[256];
	InetSkEntry view = INET_SK_ENTRY__INIT;
	view.family = AF_UNIX;
	view.type = u->type;
	view.state = u->state;
	ret = sk_opts_dump(&f->fdump->a, sk, &view, why, sizeof(why));
	if (ret) {
		if (ret == -ENOTSUP)
			pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->link, why);
		close(sk);
		return ret;
	}
	u->n_opts = view.n_opts;
	u->opts = view.opts;
	/* Only a connected stream or seqpacket socket, or a dgram, has a
	 * queue.  A check (no set) leaves it alone: the program runs, and a
	 * peek would move the SO_PEEK_OFF its own MSG_PEEK reads use. */
	if ((u->state == TCP_ESTABLISHED || u->type == SOCK_DGRAM) && f->fdump->set)
		ret = sk_queue_peek(f->fdump, sk, f->pid, f->fd, u);
	close(sk);
	return ret;
}

/* The directory a relative name (ours, or the peer's we connect to) was
 * bound in: the holder's cwd is our best knowledge of it. */
static int dump_dir(struct arena *a, pid_t pid, UnixSkEntry *u)
{
	char path[64], dir[4096];
	if (u->dir ||
	    !((u->has_name && unix_name_relative(&u->name)) ||
	      (u->has_peer_name && unix_name_relative(&u->peer_name))))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	ssize_t n = readlink(path, dir, sizeof(dir) - 1);
	if (n <= 0)
		return -errno;
	dir[n] = '\0';
	u->dir = arena_strdup(a, dir);
	return u->dir ? 0 : -ENOMEM;
}

/* Is the socket file at the name still this socket's (UNIX_DIAG_VFS)? */
static void check_file(const struct unix_diag *d, UnixSkEntry *u)
{
	char path[PATH_MAX];
	struct stat st;
	if (!d->name_len || !d->name[0])
		return;
	unix_socket_path(u, d->name, d->name_len, path);
	/* the kernel's dev_t: 12 bits of major, 20 of minor */
	dev_t dev = makedev(d->vfs_dev >> 20, d->vfs_dev & 0xfffff);
	u->has_unlinked = 1;
	u->unlinked = stat(path, &st) || st.st_ino != d->vfs_ino || st.st_dev != dev;
	if (u->unlinked)
		return;
	u->has_file_uid = u->has_file_gid = u->has_file_mode = 1;
	u->file_uid = st.st_uid;
	u->file_gid = st.st_gid;
	u->file_mode = st.st_mode & 07777;
}

/*
 * A listener's connections not accepted yet: UNIX_DIAG_ICONS lists their
 * clients (the listener's own ends have no inode yet).  Kept as that list,
 * which the restore connects again in the same order.  A client that sent
 * data already (its write memory: the bytes wait in the end no fd holds)
 * is refused by name; whether each client is in the tree is checked once
 * every fd is seen (check_pending).
 */
static int dump_pending(struct fd_dump *f, const struct unix_dump *ud, const struct unix_diag *d,
			UnixSkEntry *u)
{
	const char *why = NULL;

	if (!d->name_len)
		why = "it has no name to connect to";
	u->pending = arena_alloc(&f->fdump->a, d->nr_icons * sizeof(*u->pending));
	if (!u->pending)
		return -ENOMEM;
	for (uint32_t i = 0; !why && i < d->nr_icons; i++) {
		uint32_t ino = ud->diag.icons[d->icons_at + i];
		const struct unix_diag *c = sk_diag_unix_find(&ud->diag, ino);
		if (!c)
			why = "a client is not found by sock_diag";
		else if (c->wqlen)
			why = "a client has sent data on it already";
		else
			u->pending[u->n_pending++] = ino;
	}
	if (!why)
		return 0;
	pr_err("pid %d: fd %d: %s: listening socket with %u connections not accepted yet: "
	       "%s: not supported",
	       f->pid, f->fd, f->link, d->nr_icons, why);
	return -ENOTSUP;
}

static int unix_dump(struct fd_dump *f, FileEntry *e)
{
	struct unix_dump *ud;
	int ret = load_diag(f, &ud);
	if (ret)
		return ret;
	const struct unix_diag *d = sk_diag_unix_find(&ud->diag, f->st->st_ino);
	if (!d) {
		pr_err("pid %d: fd %d: %s: not found by sock_diag", f->pid, f->fd, f->link);
		return -ENOENT;
	}
	UnixSkEntry *u = arena_alloc(&f->fdump->a, sizeof(*u));
	if (!u)
		return -ENOMEM;
	unix_sk_entry__init(u);
	e->type = FILE_TYPE__FILE_UNIX_SK;
	e->unix_sk = u;
	u->ino = d->ino;
	u->type = d->type;
	u->state = d->state;
	u->has_peer = u->has_shutdown = 1;
	u->peer = d->peer;
	u->shutdown = d->shutdown;
	if (d->state == TCP_LISTEN) {
		u->has_backlog = 1;
		u->backlog = d->wqlen;
	}
	if (d->name_len) {
		u->has_name = 1;
		u->name.len = d->name_len;
		if (!(u->name.data = arena_alloc(&f->fdump->a, d->name_len)))
			return -ENOMEM;
		memcpy(u->name.data, d->name, d->name_len);
	}
	if ((ret = dump_dir(&f->fdump->a, f->pid, u)))
		return ret;
	if (d->nr_icons && (ret = dump_pending(f, ud, d, u)))
		return ret;
	check_file(d, u);
	return dump_options(f, u);
}

/* ---------------------------- across the tree ------------------------ */

static const struct file_desc *find_ino(const struct files_dump *fd, uint64_t ino)
{
	for (size_t i = 0; i < fd->nr; i++) {
		const FileEntry *e = fd->descs[i].entry;
		if (e->type == FILE_TYPE__FILE_UNIX_SK && e->unix_sk->ino == ino)
			return &fd->descs[i];
	}
	return NULL;
}

static int allowed_external(const struct ckpt_dump_opts *o, const UnixSkEntry *u)
{
	if (!o)
		return 0;
	if (o->ext_unix_sk_all)
		return 1;
	for (size_t i = 0; i < o->nr_ext_unix_sk; i++)
		if (o->ext_unix_sk[i] == u->ino || o->ext_unix_sk[i] == u->peer)
			return 1;
	return 0;
}

static void name_str(const char *name, size_t len, char *out, size_t size)
{
	if (!len) {
		snprintf(out, size, "(unnamed)");
		return;
	}
	snprintf(out, size, "%s%.*s", name[0] ? "" : "@", (int)(name[0] ? len : len - 1),
		 name[0] ? name : name + 1);
}

/* The peer of d is not in the tree: refuse, or record it as external. */
static int check_external(struct files_dump *fdump, struct unix_dump *ud, const struct file_desc *d)
{
	UnixSkEntry *u = d->entry->unix_sk;
	const struct unix_diag *p = sk_diag_unix_find(&ud->diag, u->peer);
	char pname[256];
	pid_t holder = sk_outside_holder(fdump->tree, u->peer);
	char who[32] = "no process";

	name_str(p ? p->name : "", p ? p->name_len : 0, pname, sizeof(pname));
	if (holder)
		snprintf(who, sizeof(who), "pid %d", holder);
	/* A check reads no queue: a peer that no process holds may be in
	 * flight (SCM_RIGHTS) in a queue of the tree, which the dump reads
	 * (there, it is a file of the tree by now). */
	if (!holder && !fdump->set)
		return 0;
	if (!allowed_external(fdump->opts, u)) {
		pr_err("pid %d: fd %d: socket:[%llu] is connected to socket:[%llu] %s held by %s, "
		       "outside the dumped tree (see --ext-unix-sk)",
		       d->pid, d->fd, (unsigned long long)u->ino, (unsigned long long)u->peer,
		       pname, who);
		return -ENOTSUP;
	}
	if (u->type == SOCK_DGRAM && (!p || !p->name_len)) {
		pr_err("pid %d: fd %d: socket:[%llu]: its external peer socket:[%llu] has no name "
		       "to reconnect to",
		       d->pid, d->fd, (unsigned long long)u->ino, (unsigned long long)u->peer);
		return -ENOTSUP;
	}
	u->has_external = 1;
	u->external = 1;
	if (p && p->name_len) {
		u->has_peer_name = 1;
		u->peer_name.len = p->name_len;
		if (!(u->peer_name.data = arena_alloc(&fdump->a, p->name_len)))
			return -ENOMEM;
		memcpy(u->peer_name.data, p->name, p->name_len);
	}
	return dump_dir(&fdump->a, d->pid, u);
}

/* An unnamed dgram socket connected elsewhere cannot be refilled. */
static int check_refill(const struct file_desc *d, const struct files_dump *fdump)
{
	const UnixSkEntry *u = d->entry->unix_sk;
	if (u->type == SOCK_DGRAM && u->n_queue && !u->peer && !u->has_name &&
	    u->state != TCP_ESTABLISHED) {
		pr_err("pid %d: fd %d: socket:[%llu]: an unnamed, unconnected datagram socket "
		       "with queued data is not supported",
		       d->pid, d->fd, (unsigned long long)u->ino);
		return -ENOTSUP;
	}
	if (u->type != SOCK_DGRAM || !u->n_queue || !u->peer || u->has_name)
		return 0;
	const struct file_desc *p = find_ino(fdump, u->peer);
	if (p && p->entry->unix_sk->peer == u->ino)
		return 0;
	pr_err("pid %d: fd %d: socket:[%llu]: an unnamed datagram socket with queued data "
	       "connected to a named one is not supported",
	       d->pid, d->fd, (unsigned long long)u->ino);
	return -ENOTSUP;
}

/* Fds in flight come back with the queue once every description is in
 * the pool: from the peer (a pair), or sent to the socket's name from
 * a socket it accepts datagrams from.  An external peer is not ours to
 * send from, and only it may send to a socket connected to it. */
static int check_fds_refill(const struct file_desc *d)
{
	const UnixSkEntry *u = d->entry->unix_sk;
	if (!u->n_queue_fds || !u->external)
		return 0;
	pr_err("pid %d: fd %d: socket:[%llu]: fds in flight (SCM_RIGHTS) on a socket connected "
	       "outside the tree are not supported",
	       d->pid, d->fd, (unsigned long long)u->ino);
	return -ENOTSUP;
}

/* Each client of a connection not accepted yet is a socket of the tree,
 * which then names the listener (dump_pending). */
static int check_pending(struct files_dump *fdump, const struct file_desc *d)
{
	const UnixSkEntry *l = d->entry->unix_sk;
	for (size_t i = 0; i < l->n_pending; i++) {
		const struct file_desc *c = find_ino(fdump, l->pending[i]);
		if (!c) {
			pr_err("pid %d: fd %d: socket:[%llu]: a connection not accepted yet comes "
			       "from socket:[%llu], outside the tree: not supported",
			       d->pid, d->fd, (unsigned long long)l->ino,
			       (unsigned long long)l->pending[i]);
			return -ENOTSUP;
		}
		c->entry->unix_sk->has_pending_on = 1;
		c->entry->unix_sk->pending_on = l->ino;
	}
	return 0;
}

static int unix_dump_tree(struct files_dump *fdump, void **priv)
{
	struct unix_dump *ud = *priv;
	int ret = 0;
	for (size_t i = 0; ud && !ret && i < fdump->nr; i++)
		if (fdump->descs[i].entry->type == FILE_TYPE__FILE_UNIX_SK &&
		    fdump->descs[i].entry->unix_sk->n_pending)
			ret = check_pending(fdump, &fdump->descs[i]);
	for (size_t i = 0; ud && !ret && i < fdump->nr; i++) {
		const struct file_desc *d = &fdump->descs[i];
		if (d->entry->type != FILE_TYPE__FILE_UNIX_SK)
			continue;
		const UnixSkEntry *u = d->entry->unix_sk;
		if (u->peer && !u->has_pending_on && !find_ino(fdump, u->peer))
			ret = check_external(fdump, ud, d);
		if (!ret)
			ret = check_refill(d, fdump);
		if (!ret)
			ret = check_fds_refill(d);
	}
	*priv = NULL; /* ud lives in the arena */
	return ret;
}

/* ------------------------------ restore ------------------------------ */

struct unix_slot {
	const FileEntry *e;
	const UnixSkEntry *u;
	int fd; /* created, not handed out yet */
	int created;
	int paired; /* made with its peer (create_pair) */
	int later;  /* queue, shutdown and options wait for the pool (fds in flight) */
	int sender; /* a closed peer's end, kept to refill the queue later */
	struct unix_reach reach; /* unlinked at dump: where it is reached */
};

struct unix_restore {
	struct unix_slot *slots;
	size_t nr;
};

/* The view of u that sk-opts.c takes (sk-opts.h). */
static InetSkEntry opts_view(const UnixSkEntry *u)
{
	InetSkEntry v = INET_SK_ENTRY__INIT;
	v.family = AF_UNIX;
	v.type = u->type;
	v.state = u->state;
	v.n_opts = u->n_opts;
	v.opts = u->opts;
	return v;
}

static int valid_entry(const FileEntry *e, size_t nr_files)
{
	const UnixSkEntry *u = e->unix_sk;
	if (!u || (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET))
		return 0;
	if (u->peer == u->ino && u->type != SOCK_DGRAM) /* a dgram may talk to itself */
		return 0;
	if (u->has_name &&
	    (!u->name.len || u->name.len > sizeof(((struct sockaddr_un *)0)->sun_path)))
		return 0;
	if (u->has_peer_name &&
	    (!u->peer_name.len || u->peer_name.len > sizeof(((struct sockaddr_un *)0)->sun_path)))
		return 0;
	InetSkEntry v = opts_view(u);
	if (!sk_opts_valid(&v))
		return 0;
	if (!sk_queue_valid(u, nr_files))
		return 0;
	return u->state == TCP_LISTEN || u->state == TCP_ESTABLISHED || u->state == TCP_CLOSE;
}

static int unix_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	struct unix_restore *ur = calloc(1, sizeof(*ur));
	if (!ur)
		return -ENOMEM;
	*priv = ur;
	ur->slots = calloc(rf->nr_files + 1, sizeof(*ur->slots));
	if (!ur->slots)
		return -ENOMEM;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_UNIX_SK)
			continue;
		if (!valid_entry(e, rf->nr_files)) {
			pr_err("%s/files.img: entry %zu: bad unix socket", img_set_dir(set), i);
			return -EINVAL;
		}
		ur->slots[ur->nr++] =
			(struct unix_slot){ .e = e, .u = e->unix_sk, .fd = -1, .sender = -1, .reach.dir = -1 };
	}
	return 0;
}

static struct unix_slot *find_slot(struct unix_restore *ur, uint64_t ino)
{
	for (size_t i = 0; ino && i < ur->nr; i++)
		if (ur->slots[i].u->ino == ino)
			return &ur->slots[i];
	return NULL;
}

static void set_buf(int sk, int force, int plain, uint32_t v)
{
	int half = (int)(v / 2); /* the kernel doubles what it is given */
	if (v && setsockopt(sk, SOL_SOCKET, force, &half, sizeof(half)))
		setsockopt(sk, SOL_SOCKET, plain, &half, sizeof(half));
}

static int set_options(int sk, const UnixSkEntry *u)
{
	int one = 1;
	set_buf(sk, SO_RCVBUFFORCE, SO_RCVBUF, u->rcvbuf);
	set_buf(sk, SO_SNDBUFFORCE, SO_SNDBUF, u->sndbuf);
	if (u->passcred && setsockopt(sk, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		return -errno;
	return 0;
}

/* Put u's queued messages back, sent from `from` (to `to_name` if set);
 * pool: the pool's fds, for the fds in flight (NULL: none yet). */
static int refill(int from, const UnixSkEntry *u, const ProtobufCBinaryData *to_name,
		  const int *pool)
{
	struct sockaddr_un sa;
	socklen_t len = to_name ? unix_make_addr(&sa, to_name) : 0;
	return sk_queue_refill(from, u, to_name ? &sa : NULL, len, pool);
}

/* Refill a named socket's queue, sent to it (its name, or its reach)
 * from `from` (-1: a socket of our own). */
static int refill_by_name(const struct unix_slot *s, int from, const int *pool)
{
	const UnixSkEntry *u = s->u;
	if (!u->n_queue)
		return 0;
	int tmp = from >= 0 ? from : socket(AF_UNIX, (int)u->type | SOCK_CLOEXEC, 0);
	if (tmp < 0)
		return -errno;
	struct sockaddr_un sa;
	socklen_t len;
	int cwd, big = 1 << 22;
	if (from < 0)
		setsockopt(tmp, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	int ret = unix_enter_reach(u, &s->reach, &sa, &len, &cwd);
	if (!ret)
		ret = unix_leave_reach(cwd, sk_queue_refill(tmp, u, &sa, len, pool));
	if (from < 0)
		close(tmp);
	return ret;
}

/* connect() sk to the socket of slot l (a listener, or a named dgram). */
static int connect_slot(const struct unix_slot *l, int sk)
{
	return unix_connect_reach(l->u, &l->reach, sk);
}

static int bind_name(int sk, struct unix_slot *s)
{
	return unix_bind_name(sk, s->u, &s->reach);
}

/* Last, once bound, connected, refilled and shut down as dumped (a filter
 * set before the refill could drop the queued data): the options of the
 * table, both phases. */
static int restore_opts(int sk, const UnixSkEntry *u)
{
	char why[256];
	InetSkEntry v = opts_view(u);
	int ret = sk_opts_restore(sk, &v, SK_OPTS_NEW, why, sizeof(why));
	if (!ret)
		ret = sk_opts_restore(sk, &v, SK_OPTS_LATE, why, sizeof(why));
	if (ret)
		pr_err("socket:[%llu]: %s", (unsigned long long)u->ino, why);
	return ret;
}

static int do_shutdown(int sk, const UnixSkEntry *u)
{
	static const int how[] = { 0, SHUT_RD, SHUT_WR, SHUT_RDWR };
	if (!(u->shutdown & 3))
		return 0;
	if (shutdown(sk, how[u->shutdown & 3]) && errno != ENOTCONN)
		return -errno;
	return 0;
}

static int create_slot(struct unix_restore *ur, struct unix_slot *s);

/* The listener of the tree bound to the name that `s` has, if any. */
static struct unix_slot *listener_of(struct unix_restore *ur, const UnixSkEntry *u)
{
	for (size_t i = 0; u->has_name && i < ur->nr; i++) {
		const UnixSkEntry *l = ur->slots[i].u;
		if (l->state == TCP_LISTEN && l->type == u->type && l->name.len == u->name.len &&
		    !memcmp(l->name.data, u->name.data, u->name.len) &&
		    (!unix_name_relative(&u->name) || (l->dir && u->dir && !strcmp(l->dir, u->dir))))
			return &ur->slots[i];
	}
	return NULL;
}

/* sv[1] connects to listener l and sv[0] is what l accepts: both ends get
 * the names they had (the accepted end shares the listener's name). */
static int connect_through(struct unix_restore *ur, struct unix_slot *l, struct unix_slot *client,
			   int sv[2])
{
	int ret = create_slot(ur, l);
	if (ret || l->fd < 0)
		return ret ? ret : -EBADF;
	sv[1] = socket(AF_UNIX, (int)client->u->type | SOCK_CLOEXEC, 0);
	if (sv[1] < 0)
		return -errno;
	if (client->u->has_name)
		ret = bind_name(sv[1], client);
	if (!ret)
		ret = connect_slot(l, sv[1]);
	sv[0] = ret ? -1 : accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (!ret && sv[0] < 0)
		ret = -errno;
	if (ret)
		close(sv[1]);
	return ret;
}

/* Queues refilled each through the other end, then shutdown states and
 * options (sv[0] is u's, sv[1] its peer pu's, NULL: closed). */
static int finish_pair(const int sv[2], const UnixSkEntry *u, const UnixSkEntry *pu)
{
	int ret;
	if ((ret = refill(sv[1], u, NULL, NULL)) || (pu && (ret = refill(sv[0], pu, NULL, NULL))))
		return ret;
	if ((ret = do_shutdown(sv[0], u)) || (pu && (ret = do_shutdown(sv[1], pu))))
		return ret;
	if ((ret = restore_opts(sv[0], u)) || (pu && (ret = restore_opts(sv[1], pu))))
		return ret;
	return 0;
}

/* Datagram sockets connected to each other keep the names they were
 * bound to (a stream pair's name comes through its listener). */
static int bind_dgram_pair(int sv[2], struct unix_slot *s, struct unix_slot *p)
{
	int ret = 0;
	if (s->u->type == SOCK_DGRAM && s->u->has_name)
		ret = bind_name(sv[0], s);
	if (!ret && p && p->u->type == SOCK_DGRAM && p->u->has_name)
		ret = bind_name(sv[1], p);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
	}
	return ret;
}

/* Both ends in the tree (or the peer gone): a socketpair, or a connection
 * through their listener when it is in the tree too. */
static int create_pair(struct unix_restore *ur, struct unix_slot *s, struct unix_slot *p)
{
	int sv[2], t[2], ret;
	struct unix_slot *ls = listener_of(ur, s->u), *lp = p ? listener_of(ur, p->u) : NULL;
	if (p && ls && !lp) {
		ret = connect_through(ur, ls, p, sv); /* s was accepted */
	} else if (p && lp && !ls) {
		ret = connect_through(ur, lp, s, t); /* p was accepted */
		sv[0] = t[1];
		sv[1] = t[0];
	} else {
		ret = socketpair(AF_UNIX, (int)s->u->type | SOCK_CLOEXEC, 0, sv) ? -errno : 0;
		if (!ret)
			ret = bind_dgram_pair(sv, s, p);
	}
	if (ret)
		return ret;
	if ((ret = set_options(sv[0], s->u)) || (p && (ret = set_options(sv[1], p->u))))
		goto fail;
	int later = s->u->n_queue_fds || (p && p->u->n_queue_fds);
	if (!later && (ret = finish_pair(sv, s->u, p ? p->u : NULL)))
		goto fail;
	s->fd = sv[0];
	s->paired = 1;
	s->later = later;
	if (p) {
		p->fd = sv[1];
		p->created = p->paired = 1;
		p->later = later;
	} else if (later) {
		s->sender = sv[1]; /* to refill s once the pool is there */
	} else {
		close(sv[1]); /* the peer was closed at dump time */
	}
	return 0;
fail:
	close(sv[0]);
	close(sv[1]);
	return ret;
}

/* A socket of its own: bind, listen, connect to a name as dumped. */
static int create_single(struct unix_restore *ur, struct unix_slot *s)
{
	const UnixSkEntry *u = s->u;
	struct unix_slot *p = find_slot(ur, u->peer);
	int ret = 0;

	if (u->peer && !u->external && (!p || !p->u->has_name))
		return -ENOTCONN;
	if (p && (ret = create_slot(ur, p))) /* the server must be bound first */
		return ret;
	int sk = socket(AF_UNIX, (int)u->type | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	ret = set_options(sk, u);
	if (!ret && u->has_name)
		ret = bind_name(sk, s);
	if (!ret && u->state == TCP_LISTEN && listen(sk, (int)u->backlog))
		ret = -errno;
	s->later = u->n_queue_fds > 0;
	if (!ret && u->has_name && !s->later)
		ret = refill_by_name(s, -1, NULL);
	if (!ret && p && u->state != TCP_LISTEN)
		ret = connect_slot(p, sk);
	else if (!ret && u->external && u->state != TCP_LISTEN)
		ret = unix_at_dir(u, &u->peer_name, sk, connect);
	if (!ret && !s->later)
		ret = do_shutdown(sk, u);
	if (!ret && !s->later)
		ret = restore_opts(sk, u);
	if (ret) {
		close(sk);
		return ret;
	}
	s->fd = sk;
	return 0;
}

/* The connections accepted from listener l are made now, while l is
 * still ours (once handed out to the pool, it is gone from its slot). */
static int create_accepted(struct unix_restore *ur, struct unix_slot *l)
{
	for (size_t i = 0; i < ur->nr; i++) {
		struct unix_slot *s = &ur->slots[i];
		if (s->created || s->u->state != TCP_ESTABLISHED || s->u->type == SOCK_DGRAM ||
		    s->u->external || listener_of(ur, s->u) != l)
			continue;
		struct unix_slot *p = find_slot(ur, s->u->peer);
		if (!p || p->created || listener_of(ur, p->u))
			continue;
		s->created = 1;
		int ret = create_pair(ur, s, p);
		if (ret)
			return ret;
	}
	return 0;
}

/* An unnamed dgram socket still connected to a peer that was closed
 * (sock_diag: no peer): it comes back as one end of a socketpair whose
 * other end is closed once its queue is refilled from there. */
static int lone_dgram(const UnixSkEntry *u)
{
	return u->type == SOCK_DGRAM && u->state == TCP_ESTABLISHED && !u->peer &&
	       !u->has_name && !u->external;
}

/* The client of a connection not accepted yet: made and bound now, it
 * connects once every socket is in the pool (connect_pending). */
static int create_pending_client(struct unix_slot *s)
{
	const UnixSkEntry *u = s->u;
	int sk = socket(AF_UNIX, (int)u->type | SOCK_CLOEXEC, 0), ret;

	if (sk < 0)
		return -errno;
	ret = set_options(sk, u);
	if (!ret && u->has_name)
		ret = bind_name(sk, s);
	if (ret) {
		close(sk);
		return ret;
	}
	s->fd = sk;
	return 0;
}

static int create_slot(struct unix_restore *ur, struct unix_slot *s)
{
	if (s->created)
		return 0;
	s->created = 1;
	const UnixSkEntry *u = s->u;
	if (u->has_pending_on)
		return create_pending_client(s);
	struct unix_slot *p = find_slot(ur, u->peer);
	if (u->state == TCP_ESTABLISHED && u->type != SOCK_DGRAM && !u->external)
		return create_pair(ur, s, p); /* p NULL: the peer was closed */
	if (p && p != s && p->u->peer == u->ino)
		return create_pair(ur, s, p); /* dgram socketpair */
	if (lone_dgram(u))
		return create_pair(ur, s, NULL);
	int ret = create_single(ur, s);
	if (!ret && u->state == TCP_LISTEN)
		ret = create_accepted(ur, s);
	return ret;
}

static int unix_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	struct unix_restore *ur = priv;
	struct unix_slot *s = find_slot(ur, e->unix_sk->ino);
	char name[256];
	(void)rf;
	if (!s)
		return -EINVAL;
	if (s->u->external && s->u->type != SOCK_DGRAM) {
		pr_err("socket:[%llu]: a %s socket connected outside the tree: hand it in with "
		       "--inherit-fd fd[N]:socket:[%llu]",
		       (unsigned long long)s->u->ino,
		       s->u->type == SOCK_STREAM ? "stream" : "seqpacket",
		       (unsigned long long)s->u->ino);
		return -ENOTSUP;
	}
	int ret = create_slot(ur, s);
	if (!ret && s->fd < 0)
		ret = -EBADF; /* opened twice: files.img has a duplicate */
	if (ret) {
		name_str(s->u->has_name ? (const char *)s->u->name.data : "", s->u->name.len, name,
			 sizeof(name));
		pr_err("socket:[%llu] %s: cannot recreate: %s", (unsigned long long)s->u->ino, name,
		       strerror(-ret));
		return ret;
	}
	int fd = s->fd;
	s->fd = -1;
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* The queue of a socket whose messages carry fds, now that every
 * description is in the pool: through its peer (a pair), or to its name
 * from the socket it is connected to (only that one may send to it), or
 * from one of our own. */
static int refill_later(struct restore_files *rf, struct unix_restore *ur, struct unix_slot *s)
{
	struct unix_slot *p = find_slot(ur, s->u->peer);
	int from = s->sender;
	if (s->paired && from < 0)
		from = p ? rf->pool[p->e->id] : -1;
	if (s->paired)
		return from < 0 ? -EBADF : refill(from, s->u, NULL, rf->pool);
	if (!s->u->has_name)
		return s->u->n_queue ? -ENOTCONN : 0;
	return refill_by_name(s, p && p->created ? rf->pool[p->e->id] : -1, rf->pool);
}

/*
 * A listener's connections not accepted yet, once every socket is in the
 * pool (after every accept of the restore, which would take one of them):
 * its clients connect to its name, in the dumped queue order, then get
 * their shutdown state and options.
 */
static int connect_pending(struct restore_files *rf, struct unix_restore *ur,
			   const struct unix_slot *l)
{
	for (size_t i = 0; i < l->u->n_pending; i++) {
		struct unix_slot *c = find_slot(ur, l->u->pending[i]);
		int fd = c && c->u->has_pending_on && c->u->pending_on == l->u->ino
				 ? rf->pool[c->e->id]
				 : -1;
		int ret = fd < 0 ? -EBADF : connect_slot(l, fd);
		if (!ret)
			ret = do_shutdown(fd, c->u);
		if (!ret)
			ret = restore_opts(fd, c->u);
		if (ret) {
			pr_err("socket:[%llu]: its connection not accepted yet from socket:[%llu]: %s",
			       (unsigned long long)l->u->ino, (unsigned long long)l->u->pending[i],
			       strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int unix_pool_ready(struct restore_files *rf, void *priv)
{
	struct unix_restore *ur = priv;
	int ret = 0, fd;
	for (size_t i = 0; !ret && i < ur->nr; i++)
		if (ur->slots[i].u->n_pending && ur->slots[i].created)
			ret = connect_pending(rf, ur, &ur->slots[i]);
	/* every queue first: a shutdown could stop a peer's refill */
	for (size_t i = 0; !ret && i < ur->nr; i++)
		if (ur->slots[i].later && (ret = refill_later(rf, ur, &ur->slots[i])))
			pr_err("socket:[%llu]: cannot refill its queue with its fds in flight: %s",
			       (unsigned long long)ur->slots[i].u->ino, strerror(-ret));
	for (size_t i = 0; !ret && i < ur->nr; i++) {
		struct unix_slot *s = &ur->slots[i];
		if (!s->later)
			continue;
		if ((fd = rf->pool[s->e->id]) < 0 || (ret = do_shutdown(fd, s->u)))
			pr_err("socket:[%llu]: cannot shut it down: %s",
			       (unsigned long long)s->u->ino, strerror(fd < 0 ? EBADF : -ret));
		if (fd < 0)
			ret = -EBADF;
		if (!ret)
			ret = restore_opts(fd, s->u);
		if (s->sender >= 0)
			close(s->sender);
		s->sender = -1;
	}
	/* every socket is made: the reaches of those whose file was gone at
	 * dump time go, nothing reaches them any more (sk-unix-bind.c) */
	for (size_t i = 0; i < ur->nr; i++)
		unix_drop_reach(&ur->slots[i].reach);
	return ret;
}

static void unix_free(void *priv)
{
	struct unix_restore *ur = priv;
	for (size_t i = 0; ur->slots && i < ur->nr; i++) {
		if (ur->slots[i].fd >= 0)
			close(ur->slots[i].fd);
		if (ur->slots[i].sender >= 0)
			close(ur->slots[i].sender);
		unix_drop_reach(&ur->slots[i].reach);
	}
	free(ur->slots);
	free(ur);
}

const struct file_kind unix_sk_kind = {
	.name = "unix socket",
	.types = 1ULL << FILE_TYPE__FILE_UNIX_SK,
	.match = unix_match,
	.dump = unix_dump,
	.dump_tree = unix_dump_tree,
	.check_tree = unix_dump_tree, /* checks only, nothing written */
	.read = unix_read,
	.open = unix_open,
	.pool_ready = unix_pool_ready,
	.free = unix_free,
	.alone_ok = 1,
};
