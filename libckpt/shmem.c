/*
 * shmem: shared memory objects mapped by the tree (see shmem.h and
 * proto/ipc.proto), each dumped once and recreated once.
 *
 * Dump: the object is read through a file of its own (the
 * /proc/PID/map_files entry of a VMA, or of our own shmat): SEEK_DATA /
 * SEEK_HOLE find the pages it has (swapped ones included, whichever
 * process touched them), which are read from our own read-only mapping
 * of it by the page writer; chunk addresses are rewritten to offsets in
 * the object.
 *
 * Restore, in the driver: every object is created (a fresh
 * MAP_SHARED|MAP_ANONYMOUS area, the System V segment with its id, or
 * the unlinked file, created where it was and unlinked, with an fd kept
 * for private mappings of it),
 * filled from its pages and kept mapped: the restoring processes are
 * forks of the driver and inherit that mapping; restore-mem.c maps each
 * VMA from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"
#include "restore-mem.h"
#include "restore.h"
#include "shmem.h"
#include "sysvipc.h"

#define PAGE 4096ULL
#define TMPFS_MAGIC_NR 0x01021994
#define HUGETLBFS_MAGIC_NR 0x958458f6
#define SHM_MAX_SIZE (1ULL << 46) /* no object of a 47-bit address space is larger */
#define MAX_OBJECTS 4096

void shm_object_name(char *buf, size_t len, const char *prefix, const ShmObjectEntry *obj)
{
	if (obj->kind == SHM_KIND__SHM_FILE)
		snprintf(buf, len, "%sshm-file-%" PRIu64 "-%" PRIu64 ".img", prefix, obj->dev,
			 obj->id);
	else
		snprintf(buf, len, "%sshm-%s-%" PRIu64 ".img", prefix,
			 obj->kind == SHM_KIND__SHM_SYSV ? "sysv" : "anon", obj->id);
}

static const char *object_what(ShmKind kind)
{
	return kind == SHM_KIND__SHM_SYSV   ? "shm segment"
	       : kind == SHM_KIND__SHM_FILE ? "unlinked shared file"
					    : "shared anonymous memory";
}

/* The object of an object VMA (is_object_vma): a private mapping of an
 * unlinked file no fd holds maps the file object too (mem.c). */
static ShmKind shm_kind_of(VmaKind k)
{
	return k == VMA_KIND__VMA_SYSV_SHM ? SHM_KIND__SHM_SYSV
	       : k == VMA_KIND__VMA_SHMEM_FILE || k == VMA_KIND__VMA_FILE_PRIVATE
		       ? SHM_KIND__SHM_FILE
		       : SHM_KIND__SHM_ANON;
}

/* The object VMA e maps: a private mapping of shared anonymous memory
 * (vma_entry.shmem_anon) maps an anonymous object, not a file. */
static ShmKind vma_object_kind(const VmaEntry *e)
{
	if (e->kind == VMA_KIND__VMA_FILE_PRIVATE && e->has_shmem_anon && e->shmem_anon)
		return SHM_KIND__SHM_ANON;
	return shm_kind_of(e->kind);
}

static VmaKind vma_kind_of(ShmKind k)
{
	return k == SHM_KIND__SHM_SYSV	 ? VMA_KIND__VMA_SYSV_SHM
	       : k == SHM_KIND__SHM_FILE ? VMA_KIND__VMA_SHMEM_FILE
					 : VMA_KIND__VMA_ANON_SHARED;
}

/* ---- dump ---- */

/* Queue the pages the object has, as runs of our mapping at `base`. */
static int queue_object_pages(struct page_writer *w, int fd, uint64_t base, uint64_t size)
{
	off_t at = 0;

	while ((uint64_t)at < size) {
		off_t data = lseek(fd, at, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		uint64_t start = (uint64_t)data & ~(PAGE - 1);
		uint64_t end = (uint64_t)hole < size ? (uint64_t)hole : size;
		end = (end + PAGE - 1) & ~(PAGE - 1);
		while (start < end) {
			uint64_t pages = (end - start) / PAGE;
			if (pages > UINT32_MAX / 2)
				pages = UINT32_MAX / 2;
			int ret = page_writer_add(w, base + start, (uint32_t)pages);
			if (ret)
				return ret;
			start += pages * PAGE;
		}
		at = (off_t)end;
	}
	return 0;
}

int dump_file_pages(struct img_set *set, const char *what, const char *pages,
		    const char *pagemap, int fd, uint64_t size, struct mem_stats *st)
{
	uint64_t len = (size + PAGE - 1) & ~(PAGE - 1), in = 0, out = 0;
	struct page_writer *w = NULL;
	struct page_chunk *chunks = NULL;
	size_t nr = 0;
	int ret;

	if (!len) /* an empty file: no pages */
		return pagemap_write(set, pagemap, NULL, 0);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		ret = -errno;
		pr_err("%s: cannot map it: %s", what, strerror(errno));
		return ret;
	}
	ret = page_writer_open(set, pages, getpid(), 0, &w);
	if (!ret && (ret = queue_object_pages(w, fd, (uint64_t)(uintptr_t)m, len))) {
		pr_err("%s: %s", what, strerror(-ret));
		page_writer_free(w);
	} else if (!ret) {
		ret = page_writer_finish(w, &chunks, &nr, &in, &out);
	}
	munmap(m, len);
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++)
		chunks[i].vaddr -= (uint64_t)(uintptr_t)m; /* offset in the object */
	ret = pagemap_write(set, pagemap, chunks, nr);
	page_chunks_free(chunks, nr);
	st->bytes_in += in;
	st->bytes_out += out;
	return ret;
}

static int dump_object_pages(struct img_set *set, pid_t pid, const ShmObjectEntry *obj, int fd,
			     struct mem_stats *st)
{
	char pages[64], pagemap[64], what[128];

	shm_object_name(pages, sizeof(pages), "pages-", obj);
	shm_object_name(pagemap, sizeof(pagemap), "pagemap-", obj);
	snprintf(what, sizeof(what), "pid %d: %s %" PRIu64, pid, object_what(obj->kind), obj->id);
	return dump_file_pages(set, what, pages, pagemap, fd, obj->size, st);
}

int dump_shm_object(struct img_set *set, pid_t pid, ShmObjectEntry *obj, int fd,
		    struct mem_stats *st)
{
	char name[64];
	struct statfs sfs;
	struct stat sb;
	struct img *img;
	int ret;

	if (fstat(fd, &sb) || fstatfs(fd, &sfs)) {
		pr_err("pid %d: %s %" PRIu64 ": %s", pid, object_what(obj->kind), obj->id,
		       strerror(errno));
		return -errno;
	}
	/* hugetlbfs objects (SHM_HUGETLB, MAP_HUGETLB) would need huge pages;
	 * an unlinked file may be on any other file system */
	if ((sfs.f_type != TMPFS_MAGIC_NR && obj->kind != SHM_KIND__SHM_FILE) ||
	    sfs.f_type == HUGETLBFS_MAGIC_NR || !S_ISREG(sb.st_mode)) {
		pr_err("pid %d: %s %" PRIu64 ": not on tmpfs (huge pages?): not supported", pid,
		       object_what(obj->kind), obj->id);
		return -ENOTSUP;
	}
	if (obj->kind != SHM_KIND__SHM_SYSV)
		obj->size = (uint64_t)sb.st_size;
	/* an anonymous object's owner and mode show through an fd on it
	 * (shmem-fd.c) */
	if (obj->kind != SHM_KIND__SHM_SYSV) {
		obj->has_mode = obj->has_uid = obj->has_gid = 1;
		obj->mode = sb.st_mode & 07777;
		obj->uid = sb.st_uid;
		obj->gid = sb.st_gid;
	}
	if ((ret = dump_object_pages(set, pid, obj, fd, st)))
		return ret;
	shm_object_name(name, sizeof(name), "", obj);
	if ((ret = img_create(set, IMG_SHM, name, &img)))
		return ret;
	ret = img_write(img, &obj->base);
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

int dump_shm_vma(struct img_set *set, pid_t pid, const VmaEntry *e, struct mem_stats *st)
{
	ShmObjectEntry obj = SHM_OBJECT_ENTRY__INIT;
	char name[64], link[80];
	int ret;

	obj.kind = vma_object_kind(e);
	obj.id = e->shmid;
	if (obj.kind == SHM_KIND__SHM_FILE) {
		obj.has_dev = 1;
		obj.dev = e->dev;
		obj.path = e->path;
	}
	shm_object_name(name, sizeof(name), "", &obj);
	if (img_exists(set, name))
		return 0; /* another VMA or process of the tree has it */
	if (obj.kind == SHM_KIND__SHM_SYSV && (ret = sysv_shm_stat(pid, &obj)))
		return ret;
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, e->start,
		 e->end);
	int fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("pid %d: %s %" PRIu64 " at %" PRIx64 ": %s: %s", pid, object_what(obj.kind),
		       obj.id, e->start, link, strerror(errno));
		return -errno;
	}
	ret = dump_shm_object(set, pid, &obj, fd, st);
	close(fd);
	return ret;
}

/* ---- restore (in the driver) ---- */

struct object {
	ShmKind kind;
	uint64_t dev, id;
	void *base;
	uint64_t len;	   /* mapped */
	uint64_t data_len; /* the object's size, page aligned: pages go there */
	int created;	   /* sysv: we made the segment (remove it on failure) */
	int fd;		   /* file: kept for its private mappings, or -1 */
};

static struct object *objects;
static size_t nr_objects;

/* Anonymous objects an fd reaches (FILE_SHMEM, shmem-fd.c): made before
 * the VMAs' objects (the file pool is opened first), kept open here. */
struct anon_file {
	uint64_t id;
	int fd;
};

static struct anon_file *anon_files;
static size_t nr_anon_files;

static int find_anon_file(uint64_t id)
{
	for (size_t i = 0; i < nr_anon_files; i++)
		if (anon_files[i].id == id)
			return anon_files[i].fd;
	return -1;
}

struct dest {
	char *base;
	uint64_t len;
};

static void *dest_of(void *arg, uint64_t off, size_t len)
{
	const struct dest *d = arg;
	return off <= d->len && len <= d->len - off ? d->base + off : NULL;
}

int load_file_pages(struct img_set *set, const char *pages, const char *pagemap, void *base,
		    uint64_t len)
{
	struct dest d = { base, len };
	struct page_chunk *chunks;
	size_t nr;

	int ret = pagemap_read(set, pagemap, 0, &chunks, &nr);
	if (ret)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		if (!dest_of(&d, chunks[i].vaddr, (size_t)chunks[i].nr_pages * PAGE) ||
		    chunks[i].vaddr % PAGE) {
			pr_err("%s/%s: entry %zu: outside the object", img_set_dir(set), pagemap,
			       i);
			page_chunks_free(chunks, nr);
			return -EINVAL;
		}
	}
	if (nr)
		ret = page_reader_load(set, pages, chunks, nr, 0, dest_of, &d);
	page_chunks_free(chunks, nr);
	return ret;
}

static int fill_object(struct img_set *set, const ShmObjectEntry *e, const struct object *o)
{
	char pages[64], pagemap[64];

	shm_object_name(pages, sizeof(pages), "pages-", e);
	shm_object_name(pagemap, sizeof(pagemap), "pagemap-", e);
	return load_file_pages(set, pages, pagemap, o->base, o->data_len);
}

static int load_object_entry(struct img_set *set, const ShmObjectEntry *want, ShmObjectEntry **out)
{
	char name[64];
	shm_object_name(name, sizeof(name), "", want);
	int ret = img_read_one(set, IMG_SHM, name, &shm_object_entry__descriptor,
			       (ProtobufCMessage **)out);
	if (ret)
		return ret;
	const ShmObjectEntry *e = *out;
	int file_ok = e->kind != SHM_KIND__SHM_FILE ||
		      (e->path && e->path[0] == '/' && !strstr(e->path, "/../") && e->has_mode &&
		       e->has_dev && e->dev == want->dev);
	if (e->kind != want->kind || e->id != want->id || e->size > SHM_MAX_SIZE || !file_ok ||
	    (!e->size && e->kind == SHM_KIND__SHM_SYSV)) {
		pr_err("%s/%s: does not describe this object", img_set_dir(set), name);
		protobuf_c_message_free_unpacked(&(*out)->base, NULL);
		return -EINVAL;
	}
	return 0;
}

static int is_object_vma(const VmaEntry *e)
{
	return e->kind == VMA_KIND__VMA_ANON_SHARED || e->kind == VMA_KIND__VMA_SYSV_SHM ||
	       e->kind == VMA_KIND__VMA_SHMEM_FILE ||
	       (e->kind == VMA_KIND__VMA_FILE_PRIVATE && e->has_shmid);
}

static uint64_t vma_dev(const VmaEntry *e)
{
	return vma_object_kind(e) == SHM_KIND__SHM_FILE && e->has_dev ? e->dev : 0;
}

static int same_name(const VmaEntry *a, const VmaEntry *b)
{
	return is_object_vma(a) && vma_object_kind(a) == vma_object_kind(b) &&
	       a->shmid == b->shmid && vma_dev(a) == vma_dev(b) && a->path && b->path &&
	       !strcmp(a->path, b->path);
}

/* Did a VMA of the tree before task t's VMA i name the object as it does? */
static int name_seen(struct restore_ctx *c, size_t t, size_t i)
{
	const VmaEntry *e = c->tasks[t].mm->vmas[i];
	for (size_t u = 0; u <= t; u++)
		for (size_t j = 0; c->tasks[u].mm && j < (u < t ? c->tasks[u].mm->n_vmas : i); j++)
			if (same_name(c->tasks[u].mm->vmas[j], e))
				return 1;
	return 0;
}

/* One other name of file object `obj`, made at `path` as a link of the
 * file `made` while it still has one: an fd for the VMAs mapped through
 * that name (zdtm unlink_mmap01: one file mapped through two links, both
 * removed), which /proc then names as it did. */
static int link_name(struct restore_ctx *c, const ShmObjectEntry *obj, const char *made,
		     const char *path)
{
	int ret = 0;
	if (link(made, path) < 0) {
		pr_err("%s (unlinked shared file, also %s): cannot link it again: %s", obj->path,
		       path, strerror(errno));
		return -errno;
	}
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC), kfd = -1;
	if (fd < 0 || (kfd = fcntl(fd, F_DUPFD_CLOEXEC, c->fd_base)) < 0)
		ret = -errno;
	if (unlink(path) < 0 && !ret)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (!ret)
		ret = restore_mem_add_name(obj->dev, obj->id, path, kfd);
	if (ret) {
		pr_err("%s: cannot open it again: %s", path, strerror(-ret));
		if (kfd >= 0)
			close(kfd);
	}
	return ret;
}

static int link_other_names(struct restore_ctx *c, const ShmObjectEntry *obj, const char *made)
{
	int ret = 0;
	for (size_t t = 0; !ret && t < c->nr_tasks; t++)
		for (size_t i = 0; !ret && c->tasks[t].mm && i < c->tasks[t].mm->n_vmas; i++) {
			const VmaEntry *e = c->tasks[t].mm->vmas[i];
			if (!is_object_vma(e) || vma_object_kind(e) != SHM_KIND__SHM_FILE ||
			    e->shmid != obj->id || vma_dev(e) != obj->dev || !e->path ||
			    !strcmp(e->path, obj->path) || name_seen(c, t, i))
				continue;
			ret = link_name(c, obj, made, e->path);
		}
	return ret;
}

#define MEMFD_PREFIX "/memfd:"

/* The unlinked file again, sized, with its mode and owner: created where
 * it was (or beside it when the name is taken), as whoever restores, its
 * other names linked, and unlinked at once; a memfd (its /proc name is
 * "/memfd:NAME") made with memfd_create.  An fd, or -errno. */
static int make_file(struct restore_ctx *c, const ShmObjectEntry *e)
{
	char path[4096 + 64];
	int memfd = !strncmp(e->path, MEMFD_PREFIX, strlen(MEMFD_PREFIX)), fd, ret = 0;

	snprintf(path, sizeof(path), "%s", e->path);
	if (memfd)
		fd = memfd_create(e->path + strlen(MEMFD_PREFIX), MFD_CLOEXEC | MFD_ALLOW_SEALING);
	else if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 &&
		 errno == EEXIST) {
		snprintf(path, sizeof(path), "%s.ckpt-shm-%" PRIu64, e->path, e->id);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -errno;
	/* A memfd is its maker's, as when the process made it: an srun
	 * step's PMIx store (mem.c keep_step_files) was slurmstepd's, in
	 * root's group, which a user's restore cannot give it. */
	if (ftruncate(fd, (off_t)e->size) || fchmod(fd, e->mode & 07777) ||
	    (!memfd && e->has_uid && e->has_gid && fchown(fd, e->uid, e->gid)))
		ret = -errno;
	if (!ret && !memfd)
		ret = link_other_names(c, e, path);
	if (!memfd)
		unlink(path);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* The file made again and mapped shared at *base; an fd of it
 * is kept at or above fd_base (the restorer closes those) for the private
 * mappings of it to map. */
static int create_file(struct restore_ctx *c, const ShmObjectEntry *e, uint64_t len, void **base,
		       int *keep)
{
	int fd = make_file(c, e), ret = fd < 0 ? fd : 0;
	if (!ret) {
		*base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		ret = *base == MAP_FAILED ? -errno : 0;
	}
	if (!ret && (*keep = fcntl(fd, F_DUPFD_CLOEXEC, c->fd_base)) < 0) {
		ret = -errno;
		munmap(*base, len);
	}
	if (fd >= 0)
		close(fd);
	if (ret) {
		*base = MAP_FAILED;
		pr_err("%s (unlinked shared file): cannot create it again: %s", e->path,
		       strerror(-ret));
	}
	return ret;
}

/* Does a VMA of the tree map anonymous object `id` privately? */
static int mapped_privately(struct restore_ctx *c, uint64_t id)
{
	for (size_t t = 0; t < c->nr_tasks; t++)
		for (size_t i = 0; c->tasks[t].mm && i < c->tasks[t].mm->n_vmas; i++) {
			const VmaEntry *e = c->tasks[t].mm->vmas[i];
			if (e->kind == VMA_KIND__VMA_FILE_PRIVATE && e->has_shmid && e->shmid == id &&
			    vma_object_kind(e) == SHM_KIND__SHM_ANON)
				return 1;
		}
	return 0;
}

/* The object's fd, kept at or above fd_base (the restorer closes those)
 * for the private mappings of it to map (restore-mem.c object_file). */
static int keep_anon_fd(struct restore_ctx *c, struct object *o, int fd)
{
	o->fd = fcntl(fd, F_DUPFD_CLOEXEC, c->fd_base);
	if (o->fd >= 0)
		return 0;
	int ret = -errno;
	pr_err("shared anonymous memory %" PRIu64 ": %s", o->id, strerror(errno));
	munmap(o->base, o->len);
	o->base = NULL;
	return ret;
}

static int create_object(struct restore_ctx *c, const ShmObjectEntry *e, uint64_t extent,
			 struct object *o)
{
	int ret;

	o->fd = -1;
	o->kind = e->kind;
	o->id = e->id;
	o->dev = e->dev;
	o->data_len = (e->size + PAGE - 1) & ~(PAGE - 1);
	o->len = o->data_len;
	/* A VMA may reach past the end of the object (mremap grew it, or
	 * the file is shorter): map as far as the VMAs go. */
	if (e->kind != SHM_KIND__SHM_SYSV && extent > o->len)
		o->len = extent;
	int anon_fd = e->kind == SHM_KIND__SHM_ANON ? find_anon_file(e->id) : -1;
	/* a private mapping maps the object as a file: made as one */
	if (anon_fd < 0 && e->kind == SHM_KIND__SHM_ANON && mapped_privately(c, e->id) &&
	    (anon_fd = restore_shm_anon_file(c->set, e->id)) < 0)
		return anon_fd;
	if (anon_fd >= 0) {
		/* made and filled as a file (restore_shm_anon_file) */
		o->base = mmap(NULL, o->len, PROT_READ | PROT_WRITE, MAP_SHARED, anon_fd, 0);
		if (o->base != MAP_FAILED)
			return keep_anon_fd(c, o, anon_fd);
	} else if (e->kind == SHM_KIND__SHM_ANON) {
		o->base = mmap(NULL, o->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			       0);
	} else if (e->kind == SHM_KIND__SHM_FILE) {
		if ((ret = create_file(c, e, o->len, &o->base, &o->fd)))
			return ret;
	} else {
		if ((ret = sysv_shm_create(e, &o->created)))
			return ret;
		o->base = shmat((int)e->id, NULL, 0);
	}
	if (o->base == MAP_FAILED || o->base == (void *)-1) {
		o->base = NULL;
		pr_err("%s %" PRIu64 ": cannot map %" PRIu64 " bytes: %s", object_what(e->kind),
		       e->id, o->len, strerror(errno));
		return -errno;
	}
	if ((ret = fill_object(c->set, e, o)))
		return ret;
	/* Marked for removal at the dump: it lives on as long as someone
	 * has it attached (we do, and the tree will), under no key. */
	return e->kind == SHM_KIND__SHM_SYSV ? sysv_shm_finish(e) : 0;
}

/* Create, fill and (keep_mapped) register object `want` once. */
static int restore_object(struct restore_ctx *c, const ShmObjectEntry *want, uint64_t extent,
			  int keep_mapped)
{
	ShmObjectEntry *e;

	for (size_t i = 0; i < nr_objects; i++)
		if (objects[i].kind == want->kind && objects[i].id == want->id &&
		    objects[i].dev == want->dev)
			return 0;
	if (nr_objects == MAX_OBJECTS) {
		pr_err("more than %d shared memory objects", MAX_OBJECTS);
		return -E2BIG;
	}
	int ret = load_object_entry(c->set, want, &e);
	if (ret)
		return ret;
	struct object *o = &objects[nr_objects++];
	ret = create_object(c, e, extent, o);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	if (!ret && keep_mapped)
		ret = restore_mem_add_shared(vma_kind_of(want->kind), want->dev, want->id,
					     (uint64_t)(uintptr_t)o->base, o->len, o->fd);
	if (!ret && !keep_mapped && o->base) {
		shmdt(o->base);
		o->base = NULL;
	}
	return ret;
}

/* How far into object (kind, dev, id) the tree's VMAs reach. */
static uint64_t object_extent(struct restore_ctx *c, const VmaEntry *like)
{
	uint64_t ext = 0;
	for (size_t t = 0; t < c->nr_tasks; t++)
		for (size_t i = 0; c->tasks[t].mm && i < c->tasks[t].mm->n_vmas; i++) {
			const VmaEntry *e = c->tasks[t].mm->vmas[i];
			if (!is_object_vma(e) || vma_object_kind(e) != vma_object_kind(like) ||
			    e->shmid != like->shmid ||
			    vma_dev(e) != vma_dev(like) || e->end <= e->start ||
			    e->pgoff > SHM_MAX_SIZE || e->end - e->start > SHM_MAX_SIZE)
				continue;
			if (e->pgoff + (e->end - e->start) > ext)
				ext = e->pgoff + (e->end - e->start);
		}
	return ext;
}

static int restore_task_objects(struct restore_ctx *c, const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		ShmObjectEntry want = SHM_OBJECT_ENTRY__INIT;
		if (!is_object_vma(e))
			continue;
		if (!e->has_shmid) {
			pr_err("%s: VMA 0x%" PRIx64 ": shared memory without its object",
			       img_set_dir(c->set), e->start);
			return -EINVAL;
		}
		want.kind = vma_object_kind(e);
		want.id = e->shmid;
		want.dev = vma_dev(e);
		int ret = restore_object(c, &want, object_extent(c, e), 1);
		if (ret)
			return ret;
	}
	return 0;
}

/* The owner and mode an fd shows, where the kernel gave the new object
 * others (a user's restore cannot give it away: refused, not wrong).
 * The owner first: a chown clears the set-id bits. */
static int set_owner(int fd, const ShmObjectEntry *e)
{
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	if (e->has_uid && e->has_gid && (st.st_uid != e->uid || st.st_gid != e->gid) &&
	    fchown(fd, e->uid, e->gid))
		return -errno;
	if (e->has_mode && fstat(fd, &st))
		return -errno;
	if (e->has_mode && (st.st_mode & 07777) != (e->mode & 07777) &&
	    fchmod(fd, e->mode & 07777))
		return -errno;
	return 0;
}

/* A new MAP_SHARED|MAP_ANONYMOUS object like e, filled, as an fd: the
 * kernel makes such objects only for a mapping, and gives a file of one
 * only through /proc/PID/map_files (CAP_CHECKPOINT_RESTORE, which the
 * restore keeps). */
static int make_anon_file(struct img_set *set, const ShmObjectEntry *e)
{
	char pages[64], pagemap[64], link[80];
	uint64_t data = (e->size + PAGE - 1) & ~(PAGE - 1), len = data ? data : PAGE;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	shm_object_name(pages, sizeof(pages), "pages-", e);
	shm_object_name(pagemap, sizeof(pagemap), "pagemap-", e);
	int ret = load_file_pages(set, pages, pagemap, m, data), fd = -1;
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + len);
	if (!ret && (fd = open(link, O_RDWR | O_CLOEXEC)) < 0)
		ret = -errno;
	if (!ret && ftruncate(fd, (off_t)e->size))
		ret = -errno;
	if (!ret)
		ret = set_owner(fd, e);
	munmap(m, len);
	if (ret && fd >= 0)
		close(fd);
	return ret ? ret : fd;
}

int restore_shm_anon_file(struct img_set *set, uint64_t id)
{
	ShmObjectEntry want = SHM_OBJECT_ENTRY__INIT, *e;
	int fd = find_anon_file(id);
	if (fd >= 0)
		return fd;
	struct anon_file *v = realloc(anon_files, (nr_anon_files + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	anon_files = v;
	want.kind = SHM_KIND__SHM_ANON;
	want.id = id;
	int ret = load_object_entry(set, &want, &e);
	if (ret)
		return ret;
	fd = make_anon_file(set, e);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	if (fd < 0) {
		pr_err("shared anonymous memory %" PRIu64 " (opened as a file): cannot make it "
		       "again: %s",
		       id, strerror(-fd));
		return fd;
	}
	anon_files[nr_anon_files++] = (struct anon_file){ id, fd };
	return fd;
}

/* Every System V segment to restore, checked before anything changes:
 * a failed restore must not have touched a live segment. */
static int check_task_segments(struct restore_ctx *c, const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		ShmObjectEntry want = SHM_OBJECT_ENTRY__INIT, *obj;
		if (e->kind != VMA_KIND__VMA_SYSV_SHM)
			continue;
		want.kind = SHM_KIND__SHM_SYSV;
		want.id = e->shmid;
		int ret = load_object_entry(c->set, &want, &obj);
		if (ret)
			return ret;
		ret = sysv_shm_check(obj);
		protobuf_c_message_free_unpacked(&obj->base, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int restore_unattached(struct restore_ctx *c, const IpcEntry *ipc, int check_only)
{
	int ret = 0;
	for (size_t i = 0; ipc && !ret && i < ipc->n_unattached_shm; i++) {
		ShmObjectEntry want = SHM_OBJECT_ENTRY__INIT, *obj;
		want.kind = SHM_KIND__SHM_SYSV;
		want.id = ipc->unattached_shm[i];
		if (!check_only) {
			ret = restore_object(c, &want, 0, 0);
		} else if (!(ret = load_object_entry(c->set, &want, &obj))) {
			ret = sysv_shm_check(obj);
			protobuf_c_message_free_unpacked(&obj->base, NULL);
		}
	}
	return ret;
}

int restore_shm_prepare(struct restore_ctx *c)
{
	IpcEntry *ipc = NULL;
	int ret;

	objects = calloc(MAX_OBJECTS, sizeof(*objects));
	if (!objects)
		return -ENOMEM;
	ret = sysv_ipc_load(c->set, &ipc);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		if (c->tasks[i].mm)
			ret = check_task_segments(c, c->tasks[i].mm);
	if (!ret)
		ret = restore_unattached(c, ipc, 1);
	if (!ret)
		ret = restore_sysv_sems(ipc);
	if (!ret)
		ret = restore_unattached(c, ipc, 0);
	if (ipc)
		protobuf_c_message_free_unpacked(&ipc->base, NULL);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++)
		if (c->tasks[i].mm)
			ret = restore_task_objects(c, c->tasks[i].mm);
	return ret;
}

void restore_shm_detach(void)
{
	for (size_t i = 0; i < nr_objects; i++) {
		struct object *o = &objects[i];
		if (o->base && o->kind == SHM_KIND__SHM_SYSV)
			shmdt(o->base);
		else if (o->base)
			munmap(o->base, o->len);
		o->base = NULL;
	}
}

void restore_shm_done(struct restore_ctx *c, int ret)
{
	(void)c;
	for (size_t i = 0; i < nr_anon_files; i++)
		close(anon_files[i].fd);
	free(anon_files);
	anon_files = NULL;
	nr_anon_files = 0;
	restore_shm_detach();
	for (size_t i = 0; i < nr_objects; i++) {
		if (ret && objects[i].created)
			sysv_shm_remove(objects[i].id);
		if (objects[i].fd >= 0)
			close(objects[i].fd);
	}
	sysv_sems_done(ret);
	restore_mem_clear_shared();
	free(objects);
	objects = NULL;
	nr_objects = 0;
}
