/*
 * step-fds: the fds of an srun step's task whose other end slurmstepd
 * holds (docs/mpi.md): stdin, stdout and stderr (pipes) and the PMIx
 * connection (TCP to slurmstepd's PMIx server, the port of the task's
 * PMIX_SERVER_URI).  slurmstepd is gone at restore; the step proxy,
 * ckpt-step, stands in for it.  So the dump records only what the fd is
 * to the task (its role), once nothing is in flight on it; the restore
 * makes a pipe or a socket pair per fd, gives the task its end and keeps
 * the other for the proxy (step_proxy_exec).
 *
 * What changes for the task, by design: its PMIx connection is a unix
 * socket pair (the proxy splices it to its own PMIx server), and the
 * pipes are new ones.  Nothing is in flight on them at the dump.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "step.h"

/* ------------------------------ dump ------------------------------ */

static int is_step_task(const struct fd_dump *f)
{
	const struct frozen_task *t = step_task(f->fdump->tree, f->pid);
	return t && t->step && !t->step_client;
}

/* Is fd (ours) a TCP connection to 127.0.0.1:port? */
static int connected_to(int fd, unsigned port)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	int type = 0;
	socklen_t tlen = sizeof(type);
	return port && !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) && type == SOCK_STREAM &&
	       !getpeername(fd, (struct sockaddr *)&peer, &len) && peer.sin_family == AF_INET &&
	       peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(peer.sin_port) == port;
}

static StepRole role_of(const struct fd_dump *f)
{
	if (f->fd <= 2 && S_ISFIFO(f->st->st_mode) && !strncmp(f->link, "pipe:", 5))
		return f->fd == 0 ? STEP_ROLE__STEP_STDIN :
		       f->fd == 1 ? STEP_ROLE__STEP_STDOUT :
				    STEP_ROLE__STEP_STDERR;
	if (!S_ISSOCK(f->st->st_mode))
		return 0;
	int fd = files_getfd(f->pid, f->fd);
	int pmix = fd >= 0 && connected_to(fd, step_pmix_port(f->pid));
	if (fd >= 0)
		close(fd);
	return pmix ? STEP_ROLE__STEP_PMIX : 0;
}

static int step_match(const struct fd_dump *f)
{
	return is_step_task(f) && role_of(f) != 0;
}

/* Bytes queued on the fd (a pipe: FIONREAD; a socket: both ways). */
static int in_flight(const struct fd_dump *f, StepRole role, int *n)
{
	int fd = files_getfd(f->pid, f->fd), in = 0, out = 0, ret = 0;
	if (fd < 0)
		return fd;
	if (ioctl(fd, role == STEP_ROLE__STEP_PMIX ? SIOCINQ : FIONREAD, &in) ||
	    (role == STEP_ROLE__STEP_PMIX && ioctl(fd, SIOCOUTQ, &out)))
		ret = -errno;
	close(fd);
	*n = in + out;
	return ret;
}

static int step_dump(struct fd_dump *f, FileEntry *e)
{
	static const char *const names[] = { "", "stdin", "stdout", "stderr", "PMIx connection" };
	StepRole role = role_of(f);
	int n = 0, ret = in_flight(f, role, &n);
	if (ret) {
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->link, strerror(-ret));
		return ret;
	}
	/* A check sees the step running: a queue there is a moment's.  A
	 * dump froze the tasks and let their output drain (steps_drained). */
	if (n && f->fdump->set) {
		pr_err("pid %d: fd %d: the step's %s to slurmstepd has %d bytes in flight: not "
		       "supported (try again)",
		       f->pid, f->fd, names[role], n);
		return -EAGAIN;
	}
	e->type = FILE_TYPE__FILE_STEP_END;
	e->has_step_role = 1;
	e->step_role = role;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

struct proxy_end {
	uint32_t file_id;
	StepRole role;
	int fd; /* the proxy's end, in the driver's pool range (O_CLOEXEC) */
};

struct step_restore {
	struct proxy_end *ends;
	size_t nr, cap;
};

/* The inventory entry of pid, or NULL. */
static const TaskEntry *task_of(const InventoryEntry *inv, uint32_t pid)
{
	for (size_t k = 0; inv && k < inv->n_tasks; k++)
		if (inv->tasks[k]->pid == pid)
			return inv->tasks[k];
	return NULL;
}

/* Is pid a step's task or a descendant of one (below a proxy)? */
static int under_proxy(const InventoryEntry *inv, uint32_t pid)
{
	const TaskEntry *te = task_of(inv, pid);
	for (size_t hops = 0; te && hops < inv->n_tasks; hops++) {
		const TaskEntry *parent = task_of(inv, te->ppid);
		if (parent && parent->step)
			return !te->step;
		te = parent;
	}
	return 0;
}

/* Only a step's tasks and their children hold step ends (their proxy
 * holds the others). */
static int held_by_step_tasks(const struct restore_files *rf, uint32_t id)
{
	for (size_t t = 0; t < rf->nr_tasks; t++)
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			if (rf->tasks[t].fds[i]->file_id == id &&
			    !under_proxy(rf->inv, (uint32_t)rf->tasks[t].pid)) {
				pr_err("pid %d: fd %u: a step's fd in a process that is no step's task",
				       rf->tasks[t].pid, rf->tasks[t].fds[i]->fd);
				return 0;
			}
	return 1;
}

static int step_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)set;
	int any = 0;
	for (size_t i = 0; i < rf->nr_files; i++)
		if (rf->files[i]->type == FILE_TYPE__FILE_STEP_END) {
			if (!held_by_step_tasks(rf, rf->files[i]->id))
				return -EINVAL;
			any = 1;
		}
	if (any && !(*priv = calloc(1, sizeof(struct step_restore))))
		return -ENOMEM;
	return 0;
}

static int add_end(struct step_restore *s, const FileEntry *e, int fd, int base)
{
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct proxy_end *n = realloc(s->ends, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->ends = n;
		s->cap = cap;
	}
	int high = fcntl(fd, F_DUPFD_CLOEXEC, base);
	if (high < 0)
		return -errno;
	s->ends[s->nr++] = (struct proxy_end){ e->id, e->step_role, high };
	return 0;
}

static int step_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	int p[2], ret = 0, task_end, proxy_end;
	if (!priv || !e->has_step_role || e->step_role < STEP_ROLE__STEP_STDIN ||
	    e->step_role > STEP_ROLE__STEP_PMIX) {
		pr_err("file %u: a step's fd without a valid role", e->id);
		return -EINVAL;
	}
	if (e->step_role == STEP_ROLE__STEP_PMIX ?
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) :
		    pipe2(p, O_CLOEXEC))
		return -errno;
	/* stdin: the task reads; the rest: the task writes (pipe) or both */
	task_end = e->step_role == STEP_ROLE__STEP_STDIN ? p[0] :
		   e->step_role == STEP_ROLE__STEP_PMIX	 ? p[0] :
							   p[1];
	proxy_end = task_end == p[0] ? p[1] : p[0];
	/* above every fd a task restores: the proxy's, until it execs */
	ret = add_end(priv, e, proxy_end, rf->max_fd + 1 + 3 * (int)rf->nr_files);
	close(proxy_end);
	if (!ret && fcntl(task_end, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0)
		ret = -errno;
	if (ret) {
		close(task_end);
		pr_err("file %u: the step's %s: %s", e->id,
		       e->step_role == STEP_ROLE__STEP_PMIX ? "socket pair" : "pipe", strerror(-ret));
		return ret;
	}
	return task_end;
}

static void step_free(void *priv)
{
	struct step_restore *s = priv;
	for (size_t i = 0; i < s->nr; i++)
		if (s->ends[i].fd >= 0)
			close(s->ends[i].fd);
	free(s->ends);
	free(s);
}

const struct file_kind step_end_kind = {
	.name = "srun step fd",
	.types = 1ULL << FILE_TYPE__FILE_STEP_END,
	.match = step_match,
	.dump = step_dump,
	.read = step_read,
	.open = step_open,
	.free = step_free,
};

/* ------------------------------ the proxy ------------------------------ */

/* The proxy's end of role `role` of task `pid`: -1 if none. */
int step_proxy_end(const struct restore_files *rf, uint32_t pid, int role)
{
	const struct step_restore *s = files_kind_priv(rf, &step_end_kind);
	for (size_t t = 0; s && t < rf->nr_tasks; t++) {
		if ((uint32_t)rf->tasks[t].pid != pid)
			continue;
		for (size_t i = 0; i < rf->tasks[t].nr; i++)
			for (size_t k = 0; k < s->nr; k++)
				if (s->ends[k].file_id == rf->tasks[t].fds[i]->file_id &&
				    (int)s->ends[k].role == role)
					return s->ends[k].fd;
	}
	return -1;
}
