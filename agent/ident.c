/*
 * ident: whom a worker becomes (see worker.c): the asking client as the
 * kernel saw it (SO_PEERCRED, SO_PEERGROUPS), or a job's user from the
 * user database; and the fds a client hands a restore for --inherit-fd,
 * which are the only fds of anyone's the restore may name.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

static void groups_to_str(const gid_t *g, int n, struct ident *id)
{
	size_t off = 0;
	snprintf(id->groups, sizeof(id->groups), "-");
	for (int i = 0; i < n && off + 12 < sizeof(id->groups); i++)
		off += (size_t)snprintf(id->groups + off, sizeof(id->groups) - off, "%s%u",
					i ? "," : "", g[i]);
}

/* The user `uid` as a job of theirs runs: gid (or their primary group
 * when (gid_t)-1) and the groups of their entry. */
int ident_of_user(uid_t uid, gid_t gid, struct ident *id)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = 256;
	memset(id, 0, sizeof(*id));
	id->uid = uid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res) {
		id->gid = gid == (gid_t)-1 ? uid : gid;
		groups_to_str(&id->gid, 1, id);
		return 0;
	}
	id->gid = gid == (gid_t)-1 ? res->pw_gid : gid;
	if (getgrouplist(res->pw_name, id->gid, groups, &n) < 0)
		return -E2BIG;
	groups_to_str(groups, n, id);
	return 0;
}

/* The asking client as it is now: SO_PEERCRED's uid and gid and
 * SO_PEERGROUPS (over TCP: the user's entry). */
int ident_of_peer(const struct conn *c, struct ident *id)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);
	if (c->tcp || c->fd < 0 || getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return ident_of_user(c->peer.uid, c->peer.gid, id);
	memset(id, 0, sizeof(*id));
	id->uid = c->peer.uid;
	id->gid = c->peer.gid;
	id->peer = c->peer.pid;
	groups_to_str(groups, (int)(len / sizeof(gid_t)), id);
	return 0;
}

int in_groups(gid_t gid, const char *groups)
{
	for (const char *s = groups; *s && *s != '-';) {
		char *end;
		if ((gid_t)strtoul(s, &end, 10) == gid)
			return 1;
		s = *end ? end + 1 : end;
	}
	return 0;
}

long status_number(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t len = strlen(key);
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':' && sscanf(line + len + 1, "%ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

gid_t gid_of(pid_t pid)
{
	return (gid_t)status_number(pid, "Gid");
}

/* ---- --inherit-fd ---- */

void fds_close(struct fd_list *l)
{
	for (size_t i = 0; i < l->nr; i++)
		close(l->fd[i]);
	l->nr = 0;
}

/* The fds a client sends after a restore request with --inherit-fd
 * (ckpt_conn_send_fds): exactly one per spec, over the unix socket. */
int recv_inherit(struct conn *c, const RpcRestore *r, struct fd_list *l, char *err,
			size_t errlen)
{
	union {
		char buf[CMSG_SPACE(CKPT_MAX_INHERIT_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	memset(l, 0, sizeof(*l));
	if (!r->n_inherit_fd)
		return 0;
	if (c->tcp || r->n_inherit_fd > CKPT_MAX_INHERIT_FDS) {
		snprintf(err, errlen, "--inherit-fd: %s", c->tcp ? "not over TCP" : "too many");
		return -EINVAL;
	}
	ssize_t n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
	struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		l->nr = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(l->fd, CMSG_DATA(cm), l->nr * sizeof(int));
	}
	if (l->nr != r->n_inherit_fd || (m.msg_flags & MSG_CTRUNC)) {
		fds_close(l);
		snprintf(err, errlen, "--inherit-fd: the client sent no fd for each of its %zu "
			 "--inherit-fd", r->n_inherit_fd);
		return -EBADF;
	}
	for (size_t i = 0; i < l->nr; i++) {
		const char *res = strchr(r->inherit_fd[i], ':');
		if (strncmp(r->inherit_fd[i], "fd[", 3) || !res) {
			fds_close(l);
			snprintf(err, errlen, "--inherit-fd %.200s: expected fd[N]:RESOURCE",
				 r->inherit_fd[i]);
			return -EINVAL;
		}
		snprintf(l->text[i], sizeof(l->text[i]), "fd[%zu]%.*s", WORKER_FD_BASE + i,
			 PATH_MAX, res);
		l->spec[i] = l->text[i];
	}
	return 0;
}
