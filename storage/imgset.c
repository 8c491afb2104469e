/*
 * The image set: one checkpoint directory.
 *
 * Write side: img_set_create() makes the directory (0700) and removes an
 * old manifest at once, so that a dump that fails half-way never leaves a
 * "committed" set made of old and new files.  Every file written is
 * tracked (name, size, crc32c); img_set_commit() writes them into the
 * manifest via a tmp file, fsync, rename, fsync of the directory.
 *
 * A set being written holds an exclusive flock on its directory (dropped
 * when the set is closed, or when the last process sharing the fd exits):
 * two dumps never write the same directory, and the garbage collector of
 * job sets (jobset.c) tells an abandoned set from one being written.
 *
 * Incremental sets name their parent in the manifest; img_set_use_parent()
 * sets it on the write side (the page writer compares against it), and
 * set_parent() opens it on the read side, relative to the set's directory
 * fd.
 *
 * Read side: img_set_open() reads the manifest and checks every file it
 * lists (present, size, crc32c) before anything else reads them; the crcs
 * are computed over 64 MiB slices on all CPUs and joined per file.
 * img_set_open_but_pages(), a restore's, leaves out the page data, whose
 * chunks are checked as they are loaded.  A
 * file that fails is explained by imgset-damage.c: the entry (message
 * image) or the chunk (pages file) where the damage is.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "manifest.pb-c.h"

int set_valid_name(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	return len > 0 && len <= NAME_MAX && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

static struct set_file *set_lookup(struct img_set *set, const char *name)
{
	for (size_t i = 0; i < set->nr_files; i++)
		if (!strcmp(set->files[i].name, name))
			return &set->files[i];
	return NULL;
}

const struct set_file *set_find(struct img_set *set, const char *name)
{
	const struct set_file *f;

	pthread_mutex_lock(&set->lock);
	f = set_lookup(set, name);
	if (f && !f->done)
		f = NULL;
	pthread_mutex_unlock(&set->lock);
	return f;
}

static int set_add(struct img_set *set, const char *name, uint64_t size, uint32_t crc, int done)
{
	struct set_file *f;

	if (set->nr_files == set->cap_files) {
		size_t cap = set->cap_files ? 2 * set->cap_files : 16;
		f = realloc(set->files, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		set->files = f;
		set->cap_files = cap;
	}
	f = &set->files[set->nr_files];
	f->name = strdup(name);
	if (!f->name)
		return -ENOMEM;
	f->size = size;
	f->crc = crc;
	f->done = done;
	f->sent = 0;
	set->nr_files++;
	return 0;
}

int set_track(struct img_set *set, const char *name)
{
	int ret = 0;

	pthread_mutex_lock(&set->lock);
	if (set_lookup(set, name)) {
		st_err("%s/%s: written twice", set->dir, name);
		ret = -EEXIST;
	} else {
		ret = set_add(set, name, 0, 0, 0);
	}
	pthread_mutex_unlock(&set->lock);
	return ret;
}

void set_track_done(struct img_set *set, const char *name, uint64_t size, uint32_t crc)
{
	struct set_file *f;

	pthread_mutex_lock(&set->lock);
	f = set_lookup(set, name);
	if (f) {
		f->size = size;
		f->crc = crc;
		f->done = 1;
		f->unsynced = set->defer_sync;
	}
	pthread_mutex_unlock(&set->lock);
}

void img_set_defer_sync(struct img_set *set)
{
	set->defer_sync = 1;
}

/* The files closed without their fsync, before the manifest names them
 * (fsync through another fd of the file: the same inode's data).  One
 * sent to a page server is the server's to sync. */
static int sync_deferred(struct img_set *set)
{
	int ret = 0;
	int *fds = malloc((set->nr_files + 1) * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	/* Writeback of every file first, then the fsyncs: the files' data
	 * go to the disk together, and the first fsync's journal commit
	 * takes the others' metadata with it (a dozen commits were half of
	 * a small dump's commit time). */
	for (size_t i = 0; i < set->nr_files; i++) {
		const struct set_file *f = &set->files[i];
		fds[i] = -1;
		if (ret || !f->unsynced || f->sent)
			continue;
		fds[i] = openat(set->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fds[i] < 0) {
			ret = -errno;
			st_err("%s/%s: fsync: %s", set->dir, f->name, strerror(-ret));
		} else {
			sync_file_range(fds[i], 0, 0, SYNC_FILE_RANGE_WRITE);
		}
	}
	for (size_t i = 0; i < set->nr_files; i++) {
		struct set_file *f = &set->files[i];
		if (fds[i] < 0)
			continue;
		if (!ret && fsync(fds[i])) {
			ret = -errno;
			st_err("%s/%s: fsync: %s", set->dir, f->name, strerror(-ret));
		}
		if (!ret)
			f->unsynced = 0;
		close(fds[i]);
	}
	free(fds);
	return ret;
}

void set_mark_sent(struct img_set *set, const char *name)
{
	struct set_file *f;

	pthread_mutex_lock(&set->lock);
	f = set_lookup(set, name);
	if (f)
		f->sent = 1;
	pthread_mutex_unlock(&set->lock);
}

static struct img_set *set_alloc(const char *dir, int writing)
{
	struct img_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->dir = strdup(dir);
	if (!set->dir) {
		free(set);
		return NULL;
	}
	set->dirfd = -1;
	set->writing = writing;
	set->owner_uid = -1;
	pthread_mutex_init(&set->lock, NULL);
	return set;
}

void img_set_close(struct img_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->nr_files; i++)
		free(set->files[i].name);
	free(set->files);
	remote_close(set->remote);
	img_set_close(set->parent);
	free(set->parent_path);
	free(set->job);
	free(set->procs);
	if (set->dirfd >= 0)
		close(set->dirfd);
	created_log_free(&set->created);
	pthread_mutex_destroy(&set->lock);
	free(set->dir);
	free(set);
}

const char *img_set_dir(const struct img_set *set)
{
	return set->dir;
}

const char *img_set_parent_dir(const struct img_set *set)
{
	return set->parent ? set->parent->dir : NULL;
}

int img_set_dirfd(const struct img_set *set)
{
	return set->dirfd;
}

uint32_t img_set_root_pid(const struct img_set *set)
{
	return set->root_pid;
}

int img_exists(struct img_set *set, const char *name)
{
	return set_find(set, name) != NULL;
}

/* An old manifest goes first, durably: from now on the directory is not a
 * checkpoint until we commit. */
static int remove_old_manifest(struct img_set *set)
{
	int removed = 0;

	if (!unlinkat(set->dirfd, MANIFEST_NAME, 0))
		removed = 1;
	else if (errno != ENOENT)
		goto fail;
	if (unlinkat(set->dirfd, MANIFEST_TMP, 0) && errno != ENOENT)
		goto fail;
	if (removed && fsync(set->dirfd))
		goto fail;
	return 0;
fail:
	st_err("%s: removing the old manifest: %s", set->dir, strerror(errno));
	return -errno;
}

int set_create_with(const char *dir, int parents, struct created_log *pre, struct img_set **out)
{
	struct img_set *set;
	int ret;

	if (!*dir)
		return -EINVAL;
	set = set_alloc(dir, 1);
	if (!set)
		return -ENOMEM;
	if (pre) {
		set->created = *pre;
		memset(pre, 0, sizeof(*pre));
	}
	/* The directory a user named, levels made by us recorded: nothing
	 * through a symlink (the client sent a realpath). */
	set->dirfd = dir_create_nofollow(dir, 0700, parents, &set->created);
	if (set->dirfd < 0) {
		ret = set->dirfd;
		st_err("%s: %s: %s", dir, ret == -ELOOP ? "a symlink on the way" : "mkdir",
		       strerror(-ret));
		img_set_abort(set);
		img_set_close(set);
		return ret;
	}
	if (flock(set->dirfd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		st_err("%s: %s", dir, ret == -EBUSY ? "being written by another dump" : strerror(-ret));
		img_set_abort(set);
		img_set_close(set);
		return ret;
	}
	ret = remove_old_manifest(set);
	if (ret) {
		img_set_abort(set);
		img_set_close(set);
		return ret;
	}
	*out = set;
	return 0;
}

int img_set_create(const char *dir, struct img_set **out)
{
	return set_create_with(dir, 1, NULL, out);
}

void img_set_set_owner(struct img_set *set, uid_t uid)
{
	set->owner_uid = uid;
}

int img_set_set_job(struct img_set *set, const char *job, uint64_t seq)
{
	free(set->job);
	set->job = strdup(job);
	set->seq = seq;
	return set->job ? 0 : -ENOMEM;
}

int img_set_add_process(struct img_set *set, uint32_t pid, uint32_t ppid, const char *comm)
{
	struct set_process *p = realloc(set->procs, (set->nr_procs + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	set->procs = p;
	p += set->nr_procs++;
	p->pid = pid;
	p->ppid = ppid;
	snprintf(p->comm, sizeof(p->comm), "%s", comm ? comm : "");
	return 0;
}

/* "../NAME" when the parent sits beside the set, else its absolute path. */
static char *parent_record(const char *set_dir, const char *parent_dir)
{
	char a[PATH_MAX], b[PATH_MAX], *sa, *sb, *out = NULL;

	if (!realpath(set_dir, a) || !realpath(parent_dir, b))
		return NULL;
	sa = strrchr(a, '/');
	sb = strrchr(b, '/');
	if (sa - a == sb - b && !strncmp(a, b, sa - a) && sb[1]) {
		if (asprintf(&out, "..%s", sb) < 0)
			out = NULL;
		return out;
	}
	return strdup(b);
}

int img_set_use_parent(struct img_set *set, const char *parent_dir, const char *record)
{
	struct img_set *parent;
	int ret;

	if (!set->writing || set->parent)
		return -EINVAL;
	if (set->remote) {
		/* The parent would have to lie beside the set on the server. */
		st_err("%s: --parent: not with a page server", set->dir);
		return -EOPNOTSUPP;
	}
	ret = img_set_open_manifest(parent_dir, &parent);
	if (ret)
		return ret;
	set->parent_path = record ? strdup(record) : parent_record(set->dir, parent_dir);
	if (!set->parent_path) {
		st_err("%s: parent %s: %s", set->dir, parent_dir, strerror(errno ? errno : ENOMEM));
		img_set_close(parent);
		return -ENOMEM;
	}
	set->parent = parent;
	return 0;
}

static uint32_t owner_of(uint32_t pid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%u", pid);
	if (pid && !stat(path, &st))
		return st.st_uid;
	return geteuid();
}

/* Every file and the directory go to the job's user: the sets are
 * theirs (to read, to delete), not root's. */
static int set_chown(struct img_set *set, uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	gid_t gid = pw ? pw->pw_gid : (gid_t)-1;

	for (size_t i = 0; i < set->nr_files; i++) {
		if (fchownat(set->dirfd, set->files[i].name, uid, gid, AT_SYMLINK_NOFOLLOW))
			goto fail;
	}
	if (!fchown(set->dirfd, uid, gid))
		return 0;
fail:
	st_err("%s: chown to uid %u: %s", set->dir, (unsigned)uid, strerror(errno));
	return -errno;
}

static int manifest_write(struct img_set *set, ManifestEntry *me)
{
	struct img *img;
	int ret;

	ret = img_create_file(set, IMG_MANIFEST, MANIFEST_TMP, 0, &img);
	if (ret)
		return ret;
	img_write(img, &me->base);
	ret = img_close_write(img);
	if (!ret && set->owner_uid >= 0 &&
	    fchownat(set->dirfd, MANIFEST_TMP, me->owner_uid, -1, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	if (ret)
		return ret;
	if (set->remote) {
		/* The set is on the server; here only its metadata, no manifest
		 * (once the server committed, a failure to tidy up here is no
		 * failure of the dump: manifest.tmp makes no set). */
		ret = remote_commit(set, MANIFEST_TMP);
		if (!ret && !unlinkat(set->dirfd, MANIFEST_TMP, 0))
			fsync(set->dirfd);
		return ret;
	}
	if (renameat(set->dirfd, MANIFEST_TMP, set->dirfd, MANIFEST_NAME) || fsync(set->dirfd)) {
		ret = -errno;
		st_err("%s: committing the manifest: %s", set->dir, strerror(-ret));
	}
	return ret;
}

/* Processes (and the empty rank list) into the manifest. */
static ManifestProcess **manifest_procs(struct img_set *set, ManifestProcess **store)
{
	ManifestProcess *p = calloc(set->nr_procs + 1, sizeof(*p));
	ManifestProcess **ptrs = calloc(set->nr_procs + 1, sizeof(*ptrs));

	if (!p || !ptrs) {
		free(p);
		free(ptrs);
		return NULL;
	}
	for (size_t i = 0; i < set->nr_procs; i++) {
		manifest_process__init(&p[i]);
		p[i].pid = set->procs[i].pid;
		p[i].ppid = set->procs[i].ppid;
		p[i].comm = set->procs[i].comm;
		ptrs[i] = &p[i];
	}
	*store = p;
	return ptrs;
}

static void manifest_fill(struct img_set *set, ManifestEntry *me, struct utsname *un)
{
	struct timespec ts;
	struct passwd *pw;

	uname(un);
	clock_gettime(CLOCK_REALTIME, &ts);
	me->format_version = IMG_FORMAT_VERSION;
	me->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	me->hostname = un->nodename;
	me->kernel = un->release;
	me->owner_uid = set->owner_uid >= 0 ? (uint32_t)set->owner_uid : owner_of(me->root_pid);
	pw = getpwuid(me->owner_uid);
	me->owner_user = pw ? pw->pw_name : NULL;
	me->parent = set->parent_path;
	me->job = set->job;
	me->has_seq = set->job != NULL;
	me->seq = set->seq;
}

int img_set_commit(struct img_set *set, uint32_t root_pid)
{
	ManifestEntry me = MANIFEST_ENTRY__INIT;
	ManifestFile *files, **ptrs;
	ManifestProcess *procs = NULL, **proc_ptrs;
	struct utsname un;
	int ret;

	if (!set->writing)
		return -EINVAL;
	for (size_t i = 0; i < set->nr_files; i++) {
		if (!set->files[i].done) {
			st_err("%s/%s: not written completely", set->dir, set->files[i].name);
			return -EBUSY;
		}
	}
	if ((ret = sync_deferred(set)))
		return ret;
	files = calloc(set->nr_files + 1, sizeof(*files));
	ptrs = calloc(set->nr_files + 1, sizeof(*ptrs));
	proc_ptrs = manifest_procs(set, &procs);
	if (!files || !ptrs || !proc_ptrs) {
		free(files);
		free(ptrs);
		free(procs);
		free(proc_ptrs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < set->nr_files; i++) {
		manifest_file__init(&files[i]);
		files[i].name = set->files[i].name;
		files[i].size = set->files[i].size;
		files[i].crc = set->files[i].crc;
		ptrs[i] = &files[i];
	}
	me.root_pid = root_pid;
	manifest_fill(set, &me, &un);
	me.n_files = set->nr_files;
	me.files = ptrs;
	me.n_processes = set->nr_procs;
	me.processes = proc_ptrs;
	/* Restore refuses a parent of another user: refuse it now. */
	if (set->parent && set->parent->owner_uid != (int64_t)me.owner_uid) {
		st_err("%s: parent set %s belongs to uid %lld, this set to %u", set->dir,
		       set->parent->dir, (long long)set->parent->owner_uid, me.owner_uid);
		ret = -EPERM;
	} else {
		ret = set->owner_uid >= 0 ? set_chown(set, (uid_t)set->owner_uid) : 0;
	}
	if (!ret)
		ret = manifest_write(set, &me);
	free(files);
	free(ptrs);
	free(procs);
	free(proc_ptrs);
	return ret;
}

int img_set_commit_parts(struct img_set *set, ManifestPart **parts, size_t nr,
			 ManifestRank **ranks, size_t nr_ranks)
{
	ManifestEntry me = MANIFEST_ENTRY__INIT;
	struct utsname un;

	if (!set->writing)
		return -EINVAL;
	manifest_fill(set, &me, &un);
	me.n_parts = nr;
	me.parts = parts;
	me.n_ranks = nr_ranks;
	me.ranks = ranks;
	return manifest_write(set, &me);
}

/* Only what this set created, each still the inode it made (a file of
 * the user's with an image-like name is not ours), newest first: the
 * files, then the directories made for it if they are empty. */
void img_set_abort(struct img_set *set)
{
	if (!set->writing)
		return;
	for (size_t i = 0; i < set->nr_files; i++)
		free(set->files[i].name);
	set->nr_files = 0;
	pthread_mutex_lock(&set->lock);
	for (size_t i = 0; i < set->created.nr; i++) {
		/* A commit that renamed its manifest.tmp, then failed. */
		struct created c = set->created.v[i];
		char *base = strrchr(c.path, '/');
		if (base && !strcmp(base + 1, MANIFEST_TMP)) {
			strcpy(base + 1, MANIFEST_NAME);
			created_remove(&c);
		}
	}
	created_log_remove(&set->created);
	pthread_mutex_unlock(&set->lock);
	if (set->dirfd >= 0)
		fsync(set->dirfd);
}

/* ---- read side: the manifest and the check of every file ---- */

#define VERIFY_SLICE (64ull << 20)
#define VERIFY_BUF (1u << 20)

struct verify_slice {
	size_t file;
	uint64_t off, len;
	uint32_t crc;
};

#define VERIFY_BUT_PAGES 2 /* set_open: every file's crc but the page data's */

struct verify {
	struct img_set *set;
	int *fds;
	struct verify_slice *slices;
	size_t nr_slices;
	size_t next; /* under lock */
	pthread_mutex_t lock;
	int err;
	int skip_pages; /* img_set_open_but_pages: page data is checked per chunk, when read */
};

/* A file whose bytes the verify does not read (its size it does check). */
static int verify_skips(const struct verify *v, size_t i)
{
	return v->skip_pages && !strncmp(v->set->files[i].name, "pages-", 6);
}

static int verify_one(struct verify *v, struct verify_slice *s, uint8_t *buf)
{
	uint64_t off = s->off, left = s->len;
	uint32_t crc = 0;

	while (left) {
		size_t n = left < VERIFY_BUF ? left : VERIFY_BUF;
		int ret = pread_full(v->fds[s->file], buf, n, off);
		if (ret) {
			st_err("%s/%s: read: %s", v->set->dir, v->set->files[s->file].name,
			       ret == -EIO ? "file shrank" : strerror(-ret));
			return ret;
		}
		crc = crc32c(crc, buf, n);
		off += n;
		left -= n;
	}
	s->crc = crc;
	return 0;
}

static void *verify_worker(void *arg)
{
	struct verify *v = arg;
	uint8_t *buf = malloc(VERIFY_BUF);

	for (;;) {
		struct verify_slice *s = NULL;
		int ret;

		pthread_mutex_lock(&v->lock);
		if (!v->err && v->next < v->nr_slices)
			s = &v->slices[v->next++];
		if (!buf && !v->err)
			v->err = -ENOMEM;
		pthread_mutex_unlock(&v->lock);
		if (!s)
			break;
		ret = verify_one(v, s, buf);
		if (ret) {
			pthread_mutex_lock(&v->lock);
			if (!v->err)
				v->err = ret;
			pthread_mutex_unlock(&v->lock);
		}
	}
	free(buf);
	return NULL;
}

/* Open every listed file and check its size; cut the files into slices. */
static int verify_prepare(struct verify *v)
{
	struct img_set *set = v->set;
	size_t nr = 0;

	for (size_t i = 0; i < set->nr_files; i++) {
		const struct set_file *f = &set->files[i];
		struct stat st;

		v->fds[i] = openat(set->dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (v->fds[i] < 0) {
			int ret = -errno;
			st_err("%s/%s: %s", set->dir, f->name,
			       ret == -ENOENT ? "missing (listed in the manifest)" : strerror(-ret));
			return ret;
		}
		if (fstat(v->fds[i], &st) || !S_ISREG(st.st_mode)) {
			st_err("%s/%s: not a regular file", set->dir, f->name);
			return -EINVAL;
		}
		if ((uint64_t)st.st_size != f->size) {
			char what[96];
			snprintf(what, sizeof(what), "%lld bytes, the manifest says %llu",
				 (long long)st.st_size, (unsigned long long)f->size);
			set_explain_damage(set, f->name, v->fds[i], st.st_size, what);
			return -EINVAL;
		}
		posix_fadvise(v->fds[i], 0, 0, POSIX_FADV_SEQUENTIAL);
		nr += f->size / VERIFY_SLICE + 1;
	}
	v->slices = calloc(nr, sizeof(*v->slices));
	if (!v->slices)
		return -ENOMEM;
	for (size_t i = 0; i < set->nr_files; i++) {
		uint64_t off = 0;
		if (verify_skips(v, i))
			continue;
		do {
			struct verify_slice *s = &v->slices[v->nr_slices++];
			s->file = i;
			s->off = off;
			s->len = set->files[i].size - off < VERIFY_SLICE ? set->files[i].size - off
									 : VERIFY_SLICE;
			off += s->len;
		} while (off < set->files[i].size);
	}
	return 0;
}

static int verify_run(struct verify *v)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nr = cpus > 0 ? (size_t)cpus : 1;
	pthread_t tids[64];
	size_t started = 0;

	if (nr > 64)
		nr = 64;
	if (nr > v->nr_slices)
		nr = v->nr_slices;
	for (size_t i = 1; i < nr; i++)
		if (!pthread_create(&tids[started], NULL, verify_worker, v))
			started++;
	verify_worker(v);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return v->err;
}

/* Join the slices of each file and compare with the manifest. */
static int verify_compare(struct verify *v)
{
	size_t s = 0;

	for (size_t i = 0; i < v->set->nr_files; i++) {
		uint32_t crc = 0;
		for (; s < v->nr_slices && v->slices[s].file == i; s++)
			crc = crc32c_combine(crc, v->slices[s].crc, v->slices[s].len);
		if (!verify_skips(v, i) && crc != v->set->files[i].crc) {
			set_explain_damage(v->set, v->set->files[i].name, v->fds[i],
					   v->set->files[i].size, NULL);
			return -EBADMSG;
		}
	}
	return 0;
}

static int set_verify(struct img_set *set, int skip_pages)
{
	struct verify v = { .set = set, .skip_pages = skip_pages };
	int ret;

	v.fds = malloc((set->nr_files + 1) * sizeof(int));
	if (!v.fds)
		return -ENOMEM;
	for (size_t i = 0; i < set->nr_files; i++)
		v.fds[i] = -1;
	pthread_mutex_init(&v.lock, NULL);
	ret = verify_prepare(&v);
	if (!ret)
		ret = verify_run(&v);
	if (!ret)
		ret = verify_compare(&v);
	for (size_t i = 0; i < set->nr_files; i++)
		if (v.fds[i] >= 0)
			close(v.fds[i]);
	pthread_mutex_destroy(&v.lock);
	free(v.slices);
	free(v.fds);
	return ret;
}

static int manifest_load(struct img_set *set, ManifestEntry *me)
{
	if (me->format_version != IMG_FORMAT_VERSION) {
		st_err("%s/%s: format version %u, expected %u: %s", set->dir, MANIFEST_NAME,
		       me->format_version, IMG_FORMAT_VERSION,
		       me->format_version > IMG_FORMAT_VERSION
			       ? "written by a newer ckpt, read it with that version"
			       : "an older format this ckpt has no reader for");
		return -EINVAL;
	}
	set->root_pid = me->root_pid;
	set->owner_uid = me->owner_uid;
	set->created_ns = me->created_ns;
	if (me->parent && !(set->parent_path = strdup(me->parent)))
		return -ENOMEM;
	if (me->n_parts > MAX_SET_PARTS || (me->n_parts && me->n_files)) {
		st_err("%s/%s: %zu parts%s", set->dir, MANIFEST_NAME, me->n_parts,
		       me->n_files ? " and files" : ": too many");
		return -EINVAL;
	}
	for (size_t i = 0; i < me->n_parts; i++) {
		const char *node = me->parts[i]->node;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(me->parts[k]->node, node))
				node = "";
		if (!set_valid_name(node) || node[0] == '.') {
			st_err("%s/%s: part %zu: bad or repeated node name", set->dir, MANIFEST_NAME,
			       i);
			return -EINVAL;
		}
	}
	set->nr_parts = me->n_parts;
	for (size_t i = 0; i < me->n_files; i++) {
		const char *name = me->files[i]->name;
		if (!set_valid_name(name) || !strcmp(name, MANIFEST_NAME) ||
		    set_lookup(set, name)) {
			st_err("%s/%s: file %zu: bad or repeated name", set->dir, MANIFEST_NAME, i);
			return -EINVAL;
		}
		if (set_add(set, name, me->files[i]->size, me->files[i]->crc, 1))
			return -ENOMEM;
	}
	return 0;
}

/* `path` relative to `atfd` (AT_FDCWD: to the cwd); `dir` names the set
 * in messages. */
static int set_open(int atfd, const char *path, const char *dir, int verify,
		    struct img_set **out)
{
	ProtobufCMessage *msg = NULL;
	struct img_set *set = set_alloc(dir, 0);
	int ret;

	if (!set)
		return -ENOMEM;
	set->dirfd = openat(atfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (set->dirfd < 0) {
		ret = -errno;
		st_err("%s: open: %s", dir, strerror(-ret));
		goto out;
	}
	if (faccessat(set->dirfd, MANIFEST_NAME, F_OK, AT_SYMLINK_NOFOLLOW) && errno == ENOENT) {
		st_err("%s: no manifest: not a checkpoint or an incomplete one", dir);
		ret = -ENOENT;
		goto out;
	}
	ret = img_read_one_file(set, IMG_MANIFEST, MANIFEST_NAME, 0, &manifest_entry__descriptor,
				&msg);
	if (!ret)
		ret = manifest_load(set, (ManifestEntry *)msg);
	if (!ret && verify)
		ret = set_verify(set, verify == VERIFY_BUT_PAGES);
out:
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	if (ret)
		img_set_close(set);
	else
		*out = set;
	return ret;
}

/* Every parent of the chain opens (and belongs to the same user): a
 * missing parent fails now, before a restore creates anything.  They are
 * closed again: the page reader opens them when it reads (restore closes
 * every fd it does not know of before it loads pages). */
static int check_chain(struct img_set *set)
{
	struct img_set *cur = set, *p;
	int depth = 0, ret = 0;

	while (!ret && cur->parent_path) {
		if (++depth > MAX_PARENT_DEPTH) {
			st_err("%s: more than %d parent sets", set->dir, MAX_PARENT_DEPTH);
			ret = -ELOOP;
			break;
		}
		ret = set_parent(cur, &p);
		if (cur != set)
			img_set_close(cur);
		cur = ret ? set : p;
	}
	if (cur != set)
		img_set_close(cur);
	return ret;
}

static int open_checked(const char *dir, int verify, struct img_set **out)
{
	int ret = set_open(AT_FDCWD, dir, dir, verify, out);

	if (!ret && (*out)->nr_parts) {
		st_err("%s: a multi-node set: restore each node's part, %s/nodes/NODE", dir, dir);
		img_set_close(*out);
		*out = NULL;
		return -EISDIR;
	}
	if (!ret && (ret = check_chain(*out))) {
		img_set_close(*out);
		*out = NULL;
	}
	return ret;
}

int img_set_open(const char *dir, struct img_set **out)
{
	return open_checked(dir, 1, out);
}

/* The parts a multi-node set's manifest names (none: a set of one node). */
static void copy_parts(const ManifestEntry *me, struct set_part_info *parts, size_t max,
		       size_t *nr)
{
	*nr = 0;
	for (size_t i = 0; i < me->n_parts && *nr < max; i++) {
		struct set_part_info *p = &parts[(*nr)++];
		const ManifestPart *mp = me->parts[i];
		snprintf(p->node, sizeof(p->node), "%s", mp->node);
		snprintf(p->address, sizeof(p->address), "%s", mp->address ? mp->address : "");
		p->batch = mp->has_batch && mp->batch;
		p->manifest_crc = mp->manifest_crc;
	}
}

int imgset_read_parts(const char *dir, struct set_part_info *parts, size_t max, size_t *nr)
{
	ProtobufCMessage *msg = NULL;
	struct img_set *set = NULL;
	int ret = set_open(AT_FDCWD, dir, dir, 0, &set);
	if (!ret)
		ret = img_read_one_file(set, IMG_MANIFEST, MANIFEST_NAME, 0,
					&manifest_entry__descriptor, &msg);
	if (!ret && ((ManifestEntry *)msg)->n_parts > max) {
		st_err("%s: %zu parts: at most %zu", dir, ((ManifestEntry *)msg)->n_parts, max);
		ret = -E2BIG;
	}
	if (!ret)
		copy_parts((ManifestEntry *)msg, parts, max, nr);
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	if (set)
		img_set_close(set);
	return ret;
}

int img_set_open_but_pages(const char *dir, struct img_set **out)
{
	return open_checked(dir, VERIFY_BUT_PAGES, out);
}

int img_set_open_manifest(const char *dir, struct img_set **out)
{
	return set_open(AT_FDCWD, dir, dir, 0, out);
}

/* The parent of an incremental set, opened with its manifest only (the
 * caller closes it): its page chunks carry their own crcs and its pagemap
 * a trailer crc.  A relative parent path is relative to the set's
 * directory fd, not to a path: restore may have changed the cwd.  It must
 * belong to the same user: a manifest cannot make one user's restore read
 * another user's memory. */
int set_parent(struct img_set *set, struct img_set **out)
{
	char path[PATH_MAX];
	struct img_set *p;
	int ret;

	if (!set->parent_path) {
		st_err("%s: pages in the parent set, but the manifest names none", set->dir);
		return -EINVAL;
	}
	if (set->parent_path[0] == '/')
		ret = snprintf(path, sizeof(path), "%s", set->parent_path);
	else
		ret = snprintf(path, sizeof(path), "%s/%s", set->dir, set->parent_path);
	if (ret < 0 || (size_t)ret >= sizeof(path))
		return -ENAMETOOLONG;
	/* Messages name it as seen from the child ("DIR/../1"). */
	ret = set_open(set->dirfd, set->parent_path, path, 0, &p);
	if (ret)
		return ret;
	if (p->owner_uid != set->owner_uid) {
		st_err("%s: parent set %s belongs to uid %lld, not %lld", set->dir, path,
		       (long long)p->owner_uid, (long long)set->owner_uid);
		img_set_close(p);
		return -EPERM;
	}
	*out = p;
	return 0;
}

const char *img_set_parent_path(const struct img_set *set)
{
	return set->parent_path;
}

uint32_t img_set_owner(const struct img_set *set)
{
	return (uint32_t)set->owner_uid;
}

uint64_t img_set_created_ns(const struct img_set *set)
{
	return set->created_ns;
}
