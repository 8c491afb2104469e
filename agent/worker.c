/*
 * worker: `ckptd --worker dump|restore UID GID`, one process per
 * operation, started by the agent with the packed request on fd 3, a
 * report pipe on fd 4 (struct worker_msg records) and its stderr going to
 * the agent's log.
 *
 * The worker acts for the requesting user: its fs uid/gid are the user's,
 * so the images are written and read with the user's permissions (a user
 * cannot make the agent write into, or read from, a place they could
 * not).  For a user, a restore is refused unless every process in the
 * images has only that user's uids, the user's groups, no capabilities,
 * and no setuid/setgid program: the restorer sets exactly the dumped
 * credentials, so this keeps a restore from granting more than the user
 * has.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ckpt/ckpt.h"
#include "core.pb-c.h"
#include "created.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "storage.h"
#include "wire.h"

static void send_msg(const struct worker_msg *m)
{
	if (write(WORKER_REPORT_FD, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(3);
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	(void)arg;
	struct worker_msg m = { .type = WMSG_PROGRESS, .done = done, .total = total };
	snprintf(m.phase, sizeof(m.phase), "%s", phase);
	send_msg(&m);
}

/* Each creation goes to the agent, which journals it: a worker killed
 * half-way (cancel, the agent killed) leaves the agent a list of exactly
 * what to remove.  Storage calls this for a file before the file has a
 * name; waiting until the agent has read the record (the pipe is empty)
 * keeps the window where a kill of the agent loses a record to the few
 * instructions between its read and its journal write. */
static void on_created(void *arg, const struct created *c)
{
	struct worker_msg m = { .type = WMSG_CREATED, .dev = c->dev, .ino = c->ino,
				.pdev = c->pdev, .pino = c->pino, .is_dir = (uint32_t)c->dir };
	int queued = 0;
	(void)arg;
	if (strlen(c->path) >= sizeof(m.path) || strchr(c->path, '\n')) {
		/* Unreportable: die before the file gets its name. */
		fprintf(stderr, "%.200s...: path too long to report to the agent\n", c->path);
		_exit(3);
	}
	strcpy(m.path, c->path);
	send_msg(&m);
	for (int i = 0; i < 20000 && !ioctl(WORKER_REPORT_FD, FIONREAD, &queued) && queued > 0; i++)
		usleep(50);
}

static int do_dump(const RpcDump *d, uid_t uid)
{
	struct ckpt_dump_opts o = { 0 };
	struct ckpt_dump_stats st;
	o.pid = (pid_t)d->pid;
	o.dir = d->dir;
	o.leave_running = d->leave_running;
	o.leave_stopped = d->leave_stopped;
	o.ext_unix_sk_all = d->ext_unix_sk_all;
	o.ext_unix_sk = d->ext_unix_sk;
	o.nr_ext_unix_sk = d->n_ext_unix_sk;
	o.tcp_established = d->tcp_established;
	o.shell_job = d->shell_job;
	o.ghost_limit = d->ghost_limit;
	o.parent = d->parent;
	o.verbose = (int)d->verbose;
	o.progress = on_progress;
	o.job = d->set_job;
	o.base = d->set_base;
	/* For a user, checked by the engine on the frozen tree. */
	o.only_uid_set = d->has_only_uid;
	o.only_uid = (uid_t)d->only_uid;
	/* A set belongs to the job's user, whoever asked for it. */
	o.has_uid = d->set_job && d->has_owner;
	o.uid = (uid_t)d->owner;
	(void)uid;
	created_hook(on_created, NULL);
	int ret = ckpt_dump(&o, &st);
	struct worker_msg m = { .type = WMSG_RESULT, .result = ret };
	if (!ret) {
		m.frozen_ns = st.frozen_ns;
		m.total_ns = st.total_ns;
		m.memory_bytes = st.memory_bytes;
		m.written_bytes = st.written_bytes;
		m.tasks = st.nr_tasks;
		m.threads = st.nr_threads;
		m.seq = st.seq;
	}
	send_msg(&m);
	return ret ? 1 : 0;
}

static int in_groups(uint32_t gid, const gid_t *groups, int nr)
{
	for (int i = 0; i < nr; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

static int creds_allowed(const char *dir, uint32_t pid, const CredsEntry *c, uid_t uid,
			 const gid_t *groups, int nr)
{
	const char *why = NULL;
	if (c->uid != uid || c->euid != uid || c->suid != uid || c->fsuid != uid)
		why = "runs as another user";
	else if (!in_groups(c->gid, groups, nr) || !in_groups(c->egid, groups, nr) ||
		 !in_groups(c->sgid, groups, nr) || !in_groups(c->fsgid, groups, nr))
		why = "has a group the user is not in";
	else if (c->cap_eff || c->cap_prm || c->cap_inh || (c->has_cap_amb && c->cap_amb))
		why = "has capabilities";
	for (size_t i = 0; !why && i < c->n_groups; i++)
		if (!in_groups(c->groups[i], groups, nr))
			why = "has a supplementary group the user is not in";
	if (why)
		fprintf(stderr, "%s: pid %u %s: uid %u may not restore it\n", dir, pid, why, uid);
	return why ? -EPERM : 0;
}

static int exe_allowed(struct img_set *set, uint32_t pid, uid_t uid)
{
	char name[64];
	MmEntry **mm = NULL;
	size_t n = 0;
	struct stat st;
	snprintf(name, sizeof(name), "mm-%u.img", pid);
	int ret = img_read_all(set, IMG_MM, name, &mm_entry__descriptor, (ProtobufCMessage ***)&mm,
			       &n);
	if (ret)
		return ret;
	if (n && !stat(mm[0]->exe_path, &st) && (st.st_mode & (S_ISUID | S_ISGID))) {
		fprintf(stderr, "%s: pid %u runs set-id program %s: uid %u may not restore it\n",
			img_set_dir(set), pid, mm[0]->exe_path, uid);
		ret = -EPERM;
	}
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&mm[i]->base, NULL);
	free(mm);
	return ret;
}

static int task_allowed(struct img_set *set, uint32_t pid, uid_t uid, const gid_t *groups, int nr)
{
	char name[64];
	CoreEntry **core = NULL;
	size_t n = 0;
	snprintf(name, sizeof(name), "core-%u.img", pid);
	int ret = img_read_all(set, IMG_CORE, name, &core_entry__descriptor,
			       (ProtobufCMessage ***)&core, &n);
	if (!ret && n != 1)
		ret = -EINVAL;
	if (!ret)
		ret = creds_allowed(img_set_dir(set), pid, core[0]->creds, uid, groups, nr);
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&core[i]->base, NULL);
	free(core);
	return ret ? ret : exe_allowed(set, pid, uid);
}

/* May `uid` restore the images in dir?  Read with the user's fs creds. */
static int restore_allowed(const char *dir, uid_t uid, gid_t gid)
{
	gid_t groups[256];
	int nr = 256;
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (!getpwuid_r(uid, &pw, buf, sizeof(buf), &res) && res)
		getgrouplist(res->pw_name, gid, groups, &nr);
	else
		groups[0] = gid, nr = 1;
	struct img_set *set;
	InventoryEntry **inv = NULL;
	size_t n = 0;
	int ret = img_set_open(dir, &set);
	if (ret)
		return ret;
	ret = img_read_all(set, IMG_INVENTORY, "inventory.img", &inventory_entry__descriptor,
			   (ProtobufCMessage ***)&inv, &n);
	if (!ret && n != 1)
		ret = -EINVAL;
	for (size_t i = 0; !ret && i < inv[0]->n_tasks; i++)
		ret = task_allowed(set, inv[0]->tasks[i]->pid, uid, groups, nr);
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&inv[i]->base, NULL);
	free(inv);
	img_set_close(set);
	return ret;
}

static pid_t restored_root;

/* Without detach the tree lives as long as the client waits for it: the
 * agent sends SIGTERM when the client goes away. */
static void on_term(int sig)
{
	(void)sig;
	if (restored_root > 0)
		kill(restored_root, SIGKILL);
}

/* Our child in the tree: the restored root, or the init of its PID
 * namespace (which passes the root's status on). */
static pid_t direct_child(pid_t root)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", root);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid = 0;
	if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid != getpid() && ppid > 1)
		return ppid;
	return root;
}

static int wait_tree(pid_t root, int *status)
{
	struct sigaction sa = { .sa_handler = on_term };
	pid_t child = direct_child(root);
	restored_root = root;
	sigaction(SIGTERM, &sa, NULL);
	while (waitpid(child, status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int do_restore(const RpcRestore *r, uid_t uid, gid_t gid)
{
	struct ckpt_restore_opts o = { 0 };
	struct ckpt_restore_stats st;
	int status = 0;
	o.dir = r->dir;
	o.detach = 1; /* the worker waits for the tree itself */
	o.pidns = (enum ckpt_pidns_mode)(r->pidns <= CKPT_PIDNS_ALWAYS ? r->pidns : 0);
	o.skip_file_check = r->skip_file_check;
	o.inherit_fd = (const char *const *)r->inherit_fd;
	o.nr_inherit_fd = r->n_inherit_fd;
	o.verbose = (int)r->verbose;
	o.progress = on_progress;
	int ret = uid ? restore_allowed(r->dir, uid, gid) : 0;
	if (!ret)
		ret = ckpt_restore(&o, &st, &status);
	restored_root = ret ? 0 : st.root_pid;
	struct worker_msg m = { .type = WMSG_RESULT, .result = ret };
	if (!ret) {
		m.total_ns = st.total_ns;
		m.memory_bytes = st.memory_bytes;
		m.image_bytes = st.image_bytes;
		m.pidns = (uint32_t)st.used_pidns;
		m.pid = st.root_pid;
	}
	if (!ret && !r->detach) {
		m.type = WMSG_STARTED;
		send_msg(&m);
		m.type = WMSG_RESULT;
		m.status_valid = !wait_tree(st.root_pid, &m.status);
	}
	send_msg(&m);
	return ret ? 1 : 0;
}

/* Act with the user's file-system credentials from here on. */
static int become_fs_user(uid_t uid, gid_t gid)
{
	if (!uid)
		return 0;
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
		fprintf(stderr, "cannot take the fs credentials of uid %u\n", uid);
		return -EPERM;
	}
	return 0;
}

/* Die with the agent.  Changing the fs uid cleared the parent-death
 * signal the agent set, so it is set again here: SIGKILL for a dump (the
 * parasite cures itself), SIGTERM for a restore (on_term ends the tree
 * the worker waits for). */
static int follow_agent(pid_t agent_pid, int sig)
{
	prctl(PR_SET_PDEATHSIG, sig);
	return getppid() == agent_pid ? 0 : -ESRCH;
}

int worker_main(int argc, char **argv)
{
	void *buf;
	size_t len;
	if (argc != 5)
		return 2;
	uid_t uid = (uid_t)strtoul(argv[3], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[4], NULL, 10);
	pid_t agent_pid = getppid();
	int is_dump = !strcmp(argv[2], "dump");
	if (wire_recv(WORKER_REQ_FD, &buf, &len, WIRE_MAX_FRAME))
		return 2;
	close(WORKER_REQ_FD);
	if (become_fs_user(uid, gid) || follow_agent(agent_pid, is_dump ? SIGKILL : SIGTERM))
		return 2;
	int ret = 2;
	if (!strcmp(argv[2], "dump")) {
		RpcDump *d = rpc_dump__unpack(NULL, len, buf);
		if (d && d->has_pid && (d->dir || d->set_job))
			ret = do_dump(d, uid);
		if (d)
			rpc_dump__free_unpacked(d, NULL);
	} else if (!strcmp(argv[2], "restore")) {
		RpcRestore *r = rpc_restore__unpack(NULL, len, buf);
		if (r && r->dir)
			ret = do_restore(r, uid, gid);
		if (r)
			rpc_restore__free_unpacked(r, NULL);
	}
	free(buf);
	return ret;
}
