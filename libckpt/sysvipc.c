/*
 * sysvipc: System V shm segments (identity) and semaphore sets (identity
 * and values) of a dumped tree; see sysvipc.h.  The tree lives in the
 * host's IPC namespace, as ckptctl does: its objects are read from
 * /proc/sysvipc/{shm,sem} and with IPC_STAT.  Which semaphore sets are
 * the tree's: those one of its processes operated on last (GETPID of any
 * semaphore).  Not restored: SEM_UNDO adjustments (the kernel shows them
 * nowhere).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "shmem.h"
#include "sysvipc.h"

#define SEM_MAX_NSEMS 32000 /* SEMMSL */
#define SEM_MAX_VALUE 32767 /* SEMVMX */
#define MAX_SETS 4096

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

/* ---- ids ---- */

/* The id the next shmget/semget creates ("shm", "sem"); -1: any. */
static int set_next_id(const char *what, long id)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", what);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int len = snprintf(buf, sizeof(buf), "%ld", id);
	int ret = fd >= 0 && write(fd, buf, (size_t)len) == len ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- shm segments ---- */

/* 1 if pid lives in our IPC namespace (where its ids mean what they
 * mean to us). */
static int same_ipc_ns(pid_t pid)
{
	struct stat self, st;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	return stat("/proc/self/ns/ipc", &self) || stat(path, &st) || st.st_ino == self.st_ino;
}

int sysv_shm_stat(pid_t pid, ShmObjectEntry *obj)
{
	struct shmid_ds ds;

	if (!same_ipc_ns(pid)) {
		pr_err("pid %d: shm segment %" PRIu64
		       ": in an IPC namespace of its own: not supported",
		       pid, obj->id);
		return -ENOTSUP;
	}
	if (obj->id > INT32_MAX || shmctl((int)obj->id, IPC_STAT, &ds) < 0) {
		pr_err("pid %d: shm segment %" PRIu64 ": %s (not in our IPC namespace?)", pid,
		       obj->id, strerror(errno));
		return -errno;
	}
	obj->size = ds.shm_segsz;
	obj->has_key = obj->has_mode = obj->has_uid = obj->has_gid = 1;
	obj->key = ds.shm_perm.__key;
	obj->mode = ds.shm_perm.mode;
	obj->uid = ds.shm_perm.uid;
	obj->gid = ds.shm_perm.gid;
	return 0;
}

/* The dumped segment is still there (same id, key and size, attached by
 * nobody: its tree is gone): reuse it.  Another one under its id, or
 * this one still in use, is refused. */
static int shm_still_there(const ShmObjectEntry *e, int *found)
{
	struct shmid_ds ds;

	*found = shmctl((int)e->id, IPC_STAT, &ds) == 0;
	if (!*found)
		return 0;
	if (ds.shm_perm.__key == e->key && ds.shm_segsz == e->size &&
	    !(ds.shm_perm.mode & SHM_DEST) && !(e->mode & SHM_DEST) && !ds.shm_nattch)
		return 0;
	if (ds.shm_perm.__key == e->key && ds.shm_segsz == e->size && ds.shm_nattch)
		pr_err("shm segment %" PRIu64
		       ": still attached by %lu processes (is the dumped tree "
		       "running?)",
		       e->id, (unsigned long)ds.shm_nattch);
	else
		pr_err("shm segment %" PRIu64 ": the id is taken by another segment (key 0x%x, %zu "
		       "bytes)",
		       e->id, (unsigned)ds.shm_perm.__key, (size_t)ds.shm_segsz);
	return -EEXIST;
}

int sysv_shm_check(const ShmObjectEntry *e)
{
	int found;
	if (e->id > INT32_MAX || !e->has_key || !e->has_mode || !e->has_uid || !e->has_gid) {
		pr_err("shm segment %" PRIu64 ": incomplete image", e->id);
		return -EINVAL;
	}
	return shm_still_there(e, &found);
}

static int shm_set_attrs(const ShmObjectEntry *e)
{
	struct shmid_ds ds;

	if (shmctl((int)e->id, IPC_STAT, &ds) < 0)
		return -errno;
	ds.shm_perm.uid = e->uid;
	ds.shm_perm.gid = e->gid;
	ds.shm_perm.mode = e->mode & 0777;
	if (shmctl((int)e->id, IPC_SET, &ds) < 0)
		return -errno;
	if ((e->mode & SHM_LOCKED) && shmctl((int)e->id, SHM_LOCK, NULL) < 0)
		return -errno;
	return 0;
}

int sysv_shm_create(const ShmObjectEntry *e, int *created)
{
	int ret;

	*created = 0;
	if ((ret = sysv_shm_check(e)))
		return ret;
	if (shmctl((int)e->id, IPC_STAT, &(struct shmid_ds){ 0 }) == 0)
		return 0; /* the dumped one, reused */
	key_t key = (e->mode & SHM_DEST) ? IPC_PRIVATE : e->key;
	if ((ret = set_next_id("shm", (long)e->id))) {
		pr_err("shm segment %" PRIu64 ": shm_next_id: %s", e->id, strerror(-ret));
		return ret;
	}
	int id = shmget(key, e->size, IPC_CREAT | IPC_EXCL | (int)(e->mode & 0777));
	int err = errno;
	set_next_id("shm", -1);
	if (id < 0) {
		pr_err("shm segment %" PRIu64 ": cannot create it (key 0x%x): %s", e->id,
		       (unsigned)key,
		       err == EEXIST ? "the key is taken by another segment" : strerror(err));
		return -err;
	}
	if ((uint64_t)id != e->id) {
		shmctl(id, IPC_RMID, NULL);
		pr_err("shm segment %" PRIu64 ": the kernel gave id %d instead", e->id, id);
		return -EEXIST;
	}
	*created = 1;
	if ((ret = shm_set_attrs(e)))
		pr_err("shm segment %" PRIu64 ": cannot set its owner and mode: %s", e->id,
		       strerror(-ret));
	return ret;
}

int sysv_shm_finish(const ShmObjectEntry *e)
{
	if ((e->mode & SHM_DEST) && shmctl((int)e->id, IPC_RMID, NULL) < 0) {
		pr_err("shm segment %" PRIu64 ": IPC_RMID: %s", e->id, strerror(errno));
		return -errno;
	}
	return 0;
}

void sysv_shm_remove(uint64_t id)
{
	shmctl((int)id, IPC_RMID, NULL);
}

/* ---- dump ---- */

static int in_tree(const struct frozen_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_tasks; i++)
		if (tree->tasks[i].pid == pid)
			return 1;
	return 0;
}

/* The tree must see the IPC objects we see. */
static int check_ipc_ns(const struct frozen_tree *tree)
{
	for (int i = 0; i < tree->nr_tasks; i++) {
		if (!tree->tasks[i].zombie && !same_ipc_ns(tree->tasks[i].pid)) {
			pr_err("pid %d: an IPC namespace of its own is not supported",
			       tree->tasks[i].pid);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int dump_sem_set(int id, int nsems, const struct frozen_tree *tree, IpcEntry *ipc)
{
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	int ours = 0;

	for (int i = 0; i < nsems && !ours; i++)
		ours = in_tree(tree, semctl(id, i, GETPID));
	if (!ours)
		return 0;
	if (semctl(id, 0, IPC_STAT, arg) < 0) {
		pr_err("semaphore set %d: %s", id, strerror(errno));
		return -errno;
	}
	SemSetEntry *s = calloc(1, sizeof(*s));
	unsigned short *vals = calloc((size_t)nsems + 1, sizeof(*vals));
	uint32_t *values = calloc((size_t)nsems + 1, sizeof(*values));
	if (!s || !vals || !values) {
		free(s), free(vals), free(values);
		return -ENOMEM;
	}
	sem_set_entry__init(s);
	arg.array = vals;
	int ret = semctl(id, 0, GETALL, arg) < 0 ? -errno : 0;
	for (int i = 0; i < nsems; i++)
		values[i] = vals[i];
	free(vals);
	s->id = id;
	s->key = ds.sem_perm.__key;
	s->mode = ds.sem_perm.mode & 0777;
	s->uid = ds.sem_perm.uid;
	s->gid = ds.sem_perm.gid;
	s->values = values;
	s->n_values = (size_t)nsems;
	ipc->sems[ipc->n_sems++] = s;
	if (ret)
		pr_err("semaphore set %d: GETALL: %s", id, strerror(-ret));
	return ret;
}

static int dump_sems(const struct frozen_tree *tree, IpcEntry *ipc)
{
	FILE *f = fopen("/proc/sysvipc/sem", "re");
	char line[512];
	int ret = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		int key, id, nsems;
		unsigned perms;
		if (sscanf(line, "%d %d %o %d", &key, &id, &perms, &nsems) != 4)
			continue; /* the header */
		if (ipc->n_sems == MAX_SETS) {
			pr_err("more than %d semaphore sets", MAX_SETS);
			ret = -E2BIG;
			break;
		}
		ret = dump_sem_set(id, nsems, tree, ipc);
	}
	fclose(f);
	return ret;
}

/* A segment the tree created and does not attach: stored like an
 * attached one, through an attachment of ours. */
static int dump_unattached_shm(struct img_set *set, int id, pid_t cpid, IpcEntry *ipc,
			       struct mem_stats *st)
{
	ShmObjectEntry obj = SHM_OBJECT_ENTRY__INIT;
	char name[64], link[80];
	int ret;

	obj.kind = SHM_KIND__SHM_SYSV;
	obj.id = (uint64_t)id;
	shm_object_name(name, sizeof(name), "", &obj);
	if (img_exists(set, name))
		return 0; /* attached by the tree: dumped with its memory */
	if ((ret = sysv_shm_stat(cpid, &obj)))
		return ret;
	void *m = shmat(id, NULL, SHM_RDONLY);
	if (m == (void *)-1) {
		pr_err("pid %d: shm segment %d: cannot attach it to read it: %s", cpid, id,
		       strerror(errno));
		return -errno;
	}
	uint64_t len = (obj.size + 4095) & ~4095ULL;
	snprintf(link, sizeof(link), "/proc/self/map_files/%" PRIxPTR "-%" PRIxPTR, (uintptr_t)m,
		 (uintptr_t)m + len);
	int fd = open(link, O_RDONLY | O_CLOEXEC);
	ret = fd < 0 ? -errno : dump_shm_object(set, cpid, &obj, fd, st);
	if (fd < 0)
		pr_err("pid %d: shm segment %d: %s: %s", cpid, id, link, strerror(-ret));
	else
		close(fd);
	shmdt(m);
	if (!ret)
		ipc->unattached_shm[ipc->n_unattached_shm++] = (uint64_t)id;
	return ret;
}

/* When pid started, in ms since the epoch (0: unknown).  Its start is in
 * clock ticks of CLOCK_BOOTTIME; the offset to the wall clock is taken
 * now, to the ns (btime of /proc/stat is whole seconds: a second lost). */
static long long start_time_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec real, boot;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* field 22, starttime: clock ticks after boot */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
				"%*d %*d %*d %*d %llu", &ticks) != 1 || hz <= 0)
		return 0;
	if (clock_gettime(CLOCK_REALTIME, &real) || clock_gettime(CLOCK_BOOTTIME, &boot))
		return 0;
	long long offset_ms = (real.tv_sec - boot.tv_sec) * 1000LL +
			      (real.tv_nsec - boot.tv_nsec) / 1000000;
	return offset_ms + (long long)(ticks * 1000 / (unsigned long long)hz);
}

/* A segment no process attaches belongs to the tree when one of its
 * tasks created it: its creator pid is in the tree, and it was not made
 * (ctime) before that task started, by an earlier process whose pid was
 * reused. */
static int created_by_tree(const struct frozen_tree *tree, pid_t cpid, long long ctime)
{
	if (!in_tree(tree, cpid))
		return 0;
	/* ctime is whole seconds: the segment was made before ctime + 1;
	 * the start is known to a tick (10 ms), and 50 ms of slack */
	long long started = start_time_ms(cpid);
	return !started || (ctime + 1) * 1000 + 50 >= started;
}

static int dump_shms(struct img_set *set, const struct frozen_tree *tree, IpcEntry *ipc,
		     struct mem_stats *st)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char line[512];
	int ret = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		int key, id, cpid;
		unsigned perms;
		unsigned long long size;
		long long ctime;
		/* key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime */
		if (sscanf(line, "%d %d %o %llu %d %*d %*d %*u %*u %*u %*u %*d %*d %lld", &key, &id,
			   &perms, &size, &cpid, &ctime) != 6)
			continue;
		if (!created_by_tree(tree, cpid, ctime))
			continue;
		if (ipc->n_unattached_shm == MAX_SETS) {
			pr_err("more than %d shm segments", MAX_SETS);
			ret = -E2BIG;
			break;
		}
		ret = dump_unattached_shm(set, id, cpid, ipc, st);
	}
	fclose(f);
	return ret;
}

static void free_ipc(IpcEntry *ipc)
{
	for (size_t i = 0; i < ipc->n_sems; i++) {
		free(ipc->sems[i]->values);
		free(ipc->sems[i]);
	}
	free(ipc->sems);
	free(ipc->unattached_shm);
}

int dump_sysvipc(struct img_set *set, const struct frozen_tree *tree, struct mem_stats *st)
{
	IpcEntry ipc = IPC_ENTRY__INIT;
	struct img *img;
	int ret;

	if ((ret = check_ipc_ns(tree)))
		return ret;
	ipc.sems = calloc(MAX_SETS, sizeof(*ipc.sems));
	ipc.unattached_shm = calloc(MAX_SETS, sizeof(*ipc.unattached_shm));
	if (!ipc.sems || !ipc.unattached_shm)
		ret = -ENOMEM;
	if (!ret)
		ret = dump_sems(tree, &ipc);
	if (!ret)
		ret = dump_shms(set, tree, &ipc, st);
	if (!ret && !(ret = img_create(set, IMG_IPC, "ipc.img", &img))) {
		ret = img_write(img, &ipc.base);
		int cret = img_close_write(img);
		ret = ret ? ret : cret;
	}
	free_ipc(&ipc);
	return ret;
}

/* ---- restore of semaphore sets ---- */

static int created_sets[MAX_SETS];
static size_t nr_created_sets;

static int check_sem_entry(const SemSetEntry *s)
{
	if (s->id < 0 || !s->n_values || s->n_values > SEM_MAX_NSEMS) {
		pr_err("ipc.img: semaphore set %d: bad id or size", s->id);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_values; i++)
		if (s->values[i] > SEM_MAX_VALUE) {
			pr_err("ipc.img: semaphore set %d: bad value", s->id);
			return -EINVAL;
		}
	return 0;
}

/* 1: the dumped set is still there (same id, key, size), 0: its id is
 * free, <0: another set has it. */
static int sem_still_there(const SemSetEntry *s)
{
	struct semid_ds ds;
	union semun arg = { .buf = &ds };

	if (semctl(s->id, 0, IPC_STAT, arg) < 0)
		return 0;
	if (ds.sem_perm.__key == s->key && ds.sem_nsems == s->n_values)
		return 1;
	pr_err("semaphore set %d: the id is taken by another set (key 0x%x, %lu semaphores)", s->id,
	       (unsigned)ds.sem_perm.__key, (unsigned long)ds.sem_nsems);
	return -EEXIST;
}

/* The set with its id: the dumped one still there, or a new one. */
static int sem_get(const SemSetEntry *s)
{
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	int there = sem_still_there(s);

	if (there)
		return there < 0 ? there : 0;
	int ret = set_next_id("sem", s->id);
	if (ret) {
		pr_err("semaphore set %d: sem_next_id: %s", s->id, strerror(-ret));
		return ret;
	}
	int id = semget(s->key, (int)s->n_values, IPC_CREAT | IPC_EXCL | (int)(s->mode & 0777));
	int err = errno;
	set_next_id("sem", -1);
	if (id < 0) {
		pr_err("semaphore set %d: cannot create it (key 0x%x): %s", s->id, (unsigned)s->key,
		       err == EEXIST ? "the key is taken by another set" : strerror(err));
		return -err;
	}
	if (id != s->id) {
		semctl(id, 0, IPC_RMID);
		pr_err("semaphore set %d: the kernel gave id %d instead", s->id, id);
		return -EEXIST;
	}
	created_sets[nr_created_sets++] = id;
	if (semctl(id, 0, IPC_STAT, arg) < 0)
		return -errno;
	ds.sem_perm.uid = s->uid;
	ds.sem_perm.gid = s->gid;
	ds.sem_perm.mode = s->mode & 0777;
	return semctl(id, 0, IPC_SET, arg) < 0 ? -errno : 0;
}

static int restore_sem_set(const SemSetEntry *s)
{
	int ret = sem_get(s);
	if (ret)
		return ret;
	unsigned short *vals = calloc(s->n_values, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_values; i++)
		vals[i] = (unsigned short)s->values[i];
	union semun arg = { .array = vals };
	ret = semctl(s->id, 0, SETALL, arg) < 0 ? -errno : 0;
	free(vals);
	if (ret)
		pr_err("semaphore set %d: SETALL: %s", s->id, strerror(-ret));
	return ret;
}

int sysv_ipc_load(struct img_set *set, IpcEntry **out)
{
	int ret;

	*out = NULL;
	nr_created_sets = 0;
	if (!img_exists(set, "ipc.img"))
		return 0;
	ret = img_read_one(set, IMG_IPC, "ipc.img", &ipc_entry__descriptor,
			   (ProtobufCMessage **)out);
	if (ret)
		return ret;
	if ((*out)->n_sems > MAX_SETS || (*out)->n_unattached_shm > MAX_SETS) {
		pr_err("%s/ipc.img: too many objects", img_set_dir(set));
		return -EINVAL;
	}
	for (size_t i = 0; !ret && i < (*out)->n_sems; i++)
		if (!(ret = check_sem_entry((*out)->sems[i])))
			ret = sem_still_there((*out)->sems[i]) < 0 ? -EEXIST : 0;
	return ret;
}

int restore_sysv_sems(const IpcEntry *ipc)
{
	int ret = 0;
	for (size_t i = 0; ipc && !ret && i < ipc->n_sems; i++)
		ret = restore_sem_set(ipc->sems[i]);
	return ret;
}

void sysv_sems_done(int ret)
{
	for (size_t i = 0; ret && i < nr_created_sets; i++)
		semctl(created_sets[i], 0, IPC_RMID);
	nr_created_sets = 0;
}
