/*
 * image-check: `ckptctl image verify DIR`, every checksum and every
 * cross-reference of a checkpoint set, read with storage's own readers
 * (the code restore runs), so that what verify accepts restore can read.
 *
 * Order: each file's structure first, with the reader that names the
 * file and the entry (chunk, fd, VMA...) at fault; then the links between
 * files (inventory -> core/mm/pagemap/pages/fdinfo of every task, fd ->
 * file id, pagemap -> VMAs and page chunks, pipe data -> pipes); last,
 * the manifest check restore itself does (img_set_open: every listed file
 * present, of its size and crc32c).  Every problem is one line on stderr;
 * the result is the number of problems found.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/user.h>

#include "cgroup.pb-c.h"
#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "manifest.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "saved.pb-c.h"

#define PAGE 4096ull

struct check {
	const char *dir;
	struct img_set *raw;
	ManifestEntry *man;
	InventoryEntry *inv;
	FileEntry **files;
	size_t nr_files;
	char *seen; /* per raw-set file: checked by someone */
	int errors;
	int verbose;
};

#define bad(c, name, fmt, ...)                                                               \
	do {                                                                                   \
		fprintf(stderr, "ckptctl: %s/%s: " fmt "\n", (c)->dir, name, ##__VA_ARGS__); \
		(c)->errors++;                                                                 \
	} while (0)

static void mark_seen(struct check *c, const char *name)
{
	for (size_t i = 0; i < img_set_nr_files(c->raw); i++)
		if (!strcmp(img_set_file(c->raw, i, NULL, NULL), name))
			c->seen[i] = 1;
}

static void free_all(ProtobufCMessage **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(v[i], NULL);
	free(v);
}

/* One message image, all entries; missing and damaged files count. */
static int read_all(struct check *c, enum img_kind kind, const char *name,
		    const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***out, size_t *nr)
{
	mark_seen(c, name);
	if (!img_exists(c->raw, name)) {
		bad(c, name, "missing");
		return -ENOENT;
	}
	if (img_read_all(c->raw, kind, name, desc, out, nr)) {
		c->errors++; /* storage named the file and the entry */
		return -EINVAL;
	}
	return 0;
}

static int read_one(struct check *c, enum img_kind kind, const char *name,
		    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	ProtobufCMessage **v;
	size_t n;

	if (read_all(c, kind, name, desc, &v, &n))
		return -EINVAL;
	if (n != 1) {
		bad(c, name, "%zu entries, expected one", n);
		free_all(v, n);
		return -EINVAL;
	}
	*out = v[0];
	free(v);
	return 0;
}

/* ---- inventory ---- */

static const TaskEntry *find_task(const InventoryEntry *inv, uint32_t pid, size_t before)
{
	for (size_t i = 0; i < before && i < inv->n_tasks; i++)
		if (inv->tasks[i]->pid == pid)
			return inv->tasks[i];
	return NULL;
}

static void check_inventory(struct check *c)
{
	const InventoryEntry *inv = c->inv;

	if (!inv->n_tasks || inv->tasks[0]->pid != inv->root_pid || inv->tasks[0]->ppid)
		bad(c, "inventory.img", "task 0 is not the root pid %u", inv->root_pid);
	if (c->man && inv->root_pid != c->man->root_pid)
		bad(c, "inventory.img", "root pid %u, the manifest says %u", inv->root_pid,
		    c->man->root_pid);
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *t = inv->tasks[i];
		if (!t->pid || find_task(inv, t->pid, i))
			bad(c, "inventory.img", "task %zu: pid %u is zero or repeated", i, t->pid);
		if (i && !find_task(inv, t->ppid, i))
			bad(c, "inventory.img", "task %zu (pid %u): parent %u is not listed before it",
			    i, t->pid, t->ppid);
		if (!t->n_tids || t->tids[0] != t->pid)
			bad(c, "inventory.img", "task %zu (pid %u): tids[0] is not the pid", i, t->pid);
	}
}

/* ---- one task ---- */

static void check_core(struct check *c, const TaskEntry *t)
{
	CoreEntry *core;
	char name[64];

	snprintf(name, sizeof(name), "core-%u.img", t->pid);
	if (read_one(c, IMG_CORE, name, &core_entry__descriptor, (ProtobufCMessage **)&core))
		return;
	if (core->pid != t->pid)
		bad(c, name, "entry 0: pid %u, the inventory says %u", core->pid, t->pid);
	if (core->n_threads != t->n_tids)
		bad(c, name, "entry 0: %zu threads, the inventory lists %zu tids", core->n_threads,
		    t->n_tids);
	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadCoreEntry *th = core->threads[i];
		if (i < t->n_tids && th->tid != t->tids[i])
			bad(c, name, "entry 0: thread %zu: tid %u, the inventory says %u", i, th->tid,
			    t->tids[i]);
		if (th->gpregs.len != sizeof(struct user_regs_struct))
			bad(c, name, "entry 0: thread %zu: gpregs of %zu bytes", i, th->gpregs.len);
	}
	protobuf_c_message_free_unpacked(&core->base, NULL);
}

/* VMAs sorted, page aligned, not overlapping. */
static void check_vmas(struct check *c, const char *name, const MmEntry *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		if (v->start >= v->end || v->start % PAGE || v->end % PAGE)
			bad(c, name, "entry 0: vma %zu (0x%llx-0x%llx): bad bounds", i,
			    (unsigned long long)v->start, (unsigned long long)v->end);
		else if (i && v->start < mm->vmas[i - 1]->end)
			bad(c, name, "entry 0: vma %zu (0x%llx): overlaps the one before", i,
			    (unsigned long long)v->start);
	}
}

static const VmaEntry *vma_of(const MmEntry *mm, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start <= start && end <= mm->vmas[i]->end)
			return mm->vmas[i];
	return NULL;
}

/* Every chunk inside one VMA; the chunk data itself by the page reader. */
static void check_pages(struct check *c, const TaskEntry *t, const MmEntry *mm,
			PagemapEntry **pm, size_t n);

static void check_memory(struct check *c, const TaskEntry *t)
{
	char name[64];
	MmEntry *mm;
	PagemapEntry **pm;
	size_t n;

	snprintf(name, sizeof(name), "mm-%u.img", t->pid);
	if (read_one(c, IMG_MM, name, &mm_entry__descriptor, (ProtobufCMessage **)&mm)) {
		/* Not orphans: unreadable without their mm (already reported). */
		snprintf(name, sizeof(name), "pagemap-%u.img", t->pid);
		mark_seen(c, name);
		snprintf(name, sizeof(name), "pages-%u.img", t->pid);
		mark_seen(c, name);
		return;
	}
	check_vmas(c, name, mm);
	snprintf(name, sizeof(name), "pagemap-%u.img", t->pid);
	if (!read_all(c, IMG_PAGEMAP, name, &pagemap_entry__descriptor, (ProtobufCMessage ***)&pm,
		      &n)) {
		for (size_t i = 0; i < n; i++) {
			uint64_t end = pm[i]->vaddr + pm[i]->nr_pages * PAGE;
			if (end < pm[i]->vaddr || !vma_of(mm, pm[i]->vaddr, end))
				bad(c, name, "entry %zu (0x%llx, %u pages): not inside one mapping", i,
				    (unsigned long long)pm[i]->vaddr, pm[i]->nr_pages);
			else if (i && pm[i]->vaddr < pm[i - 1]->vaddr + pm[i - 1]->nr_pages * PAGE)
				bad(c, name, "entry %zu (0x%llx): overlaps the one before", i,
				    (unsigned long long)pm[i]->vaddr);
		}
		check_pages(c, t, mm, pm, n);
		free_all((ProtobufCMessage **)pm, n);
	}
	protobuf_c_message_free_unpacked(&mm->base, NULL);
}

static void *scratch_dest(void *ctx, uint64_t vaddr, size_t len)
{
	return len <= IMG_CHUNK_PAGES * PAGE ? ctx : NULL;
}

static void check_pages(struct check *c, const TaskEntry *t, const MmEntry *mm,
			PagemapEntry **pm, size_t n)
{
	struct page_chunk *chunks = calloc(n + 1, sizeof(*chunks));
	void *scratch = malloc(IMG_CHUNK_PAGES * PAGE);
	char name[64];

	snprintf(name, sizeof(name), "pages-%u.img", t->pid);
	mark_seen(c, name);
	if (!chunks || !scratch) {
		bad(c, name, "out of memory");
		goto out;
	}
	if (!img_exists(c->raw, name)) {
		bad(c, name, "missing");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		/* Incremental sets: pages kept in the parent set are not
		 * here (they are checked with the parent). */
		if (pm[i]->has_in_parent && pm[i]->in_parent)
			continue;
		chunks[k].vaddr = pm[i]->vaddr;
		chunks[k].nr_pages = pm[i]->nr_pages;
		chunks[k].offset = pm[i]->offset;
		chunks[k].comp_len = pm[i]->comp_len;
		chunks[k].raw = pm[i]->raw;
		chunks[k].crc = pm[i]->crc;
		pagemap_entry_block(pm[i], &chunks[k]);
		k++;
	}
	/* One thread: the scratch buffer is the destination of every chunk. */
	if (page_reader_load(c->raw, name, chunks, k, 1, scratch_dest, scratch))
		c->errors++; /* storage named the file and the chunk */
out:
	free(chunks);
	free(scratch);
}

static const FileEntry *find_file(const struct check *c, uint32_t id)
{
	for (size_t i = 0; i < c->nr_files; i++)
		if (c->files[i]->id == id)
			return c->files[i];
	return NULL;
}

static void check_fds(struct check *c, const TaskEntry *t)
{
	char name[64];
	FdEntry **fds;
	size_t n;

	if (t->has_files_shared_with) /* its table is its owner's (libckpt/fdtable.c) */
		return;
	snprintf(name, sizeof(name), "fdinfo-%u.img", t->pid);
	if (read_all(c, IMG_FDINFO, name, &fd_entry__descriptor, (ProtobufCMessage ***)&fds, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		if (!find_file(c, fds[i]->file_id))
			bad(c, name, "entry %zu: fd %u: file id %u is not in files.img", i, fds[i]->fd,
			    fds[i]->file_id);
		for (size_t k = 0; k < i; k++)
			if (fds[k]->fd == fds[i]->fd)
				bad(c, name, "entry %zu: fd %u listed twice", i, fds[i]->fd);
	}
	free_all((ProtobufCMessage **)fds, n);
}

/* ---- files shared by the tree ---- */

/* A unix socket's fds in flight: messages of its queue, in order, each
 * naming files of files.img. */
static void check_queue_fds(struct check *c, size_t i, const UnixSkEntry *u)
{
	for (size_t m = 0; m < u->n_queue_fds; m++) {
		const UnixQueueFds *q = u->queue_fds[m];
		if (q->msg >= u->n_queue || (m && q->msg <= u->queue_fds[m - 1]->msg))
			bad(c, "files.img", "entry %zu: fds in flight on message %u, not in its queue "
			    "order", i, q->msg);
		for (size_t k = 0; k < q->n_file_ids; k++)
			if (!find_file(c, q->file_ids[k]))
				bad(c, "files.img", "entry %zu: message %u: fd in flight: file id %u is "
				    "not in files.img", i, q->msg, q->file_ids[k]);
	}
}

static void check_output_copy(struct check *c, size_t i, const FileEntry *f);

static void check_files(struct check *c)
{
	for (size_t i = 0; i < c->nr_files; i++) {
		const FileEntry *f = c->files[i];
		if (!protobuf_c_enum_descriptor_get_value(&file_type__descriptor, f->type))
			bad(c, "files.img", "entry %zu: id %u: unknown file type %d", i, f->id, f->type);
		for (size_t k = 0; k < i; k++)
			if (c->files[k]->id == f->id)
				bad(c, "files.img", "entry %zu: id %u listed twice", i, f->id);
		if (f->unix_sk)
			check_queue_fds(c, i, f->unix_sk);
		check_output_copy(c, i, f);
	}
}

static int is_pipe_of(const FileEntry *f, uint64_t pipe_id)
{
	return (f->type == FILE_TYPE__FILE_PIPE || f->type == FILE_TYPE__FILE_FIFO) &&
	       f->pipe_id == pipe_id;
}

static void check_pipes(struct check *c)
{
	PipeDataEntry **pd;
	size_t n;

	if (!img_exists(c->raw, "pipes-data.img"))
		return;
	if (read_all(c, IMG_PIPES_DATA, "pipes-data.img", &pipe_data_entry__descriptor,
		     (ProtobufCMessage ***)&pd, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < c->nr_files && !is_pipe_of(c->files[k], pd[i]->pipe_id))
			k++;
		if (k == c->nr_files)
			bad(c, "pipes-data.img", "entry %zu: pipe %llu is not in files.img", i,
			    (unsigned long long)pd[i]->pipe_id);
		if (pd[i]->data.len > pd[i]->pipe_size)
			bad(c, "pipes-data.img", "entry %zu: %zu bytes in a pipe of %u", i,
			    pd[i]->data.len, pd[i]->pipe_size);
	}
	free_all((ProtobufCMessage **)pd, n);
}

/* ---- files kept with the set (saved.img) ---- */

/* The pages of a file's contents kept with the set ("pages-X.img" and
 * "pagemap-X.img", X = name): none past its size. */
static void check_file_pages(struct check *c, const char *name, uint64_t size)
{
	char pagemap[96], pages[96];
	PagemapEntry **pm;
	size_t n;

	snprintf(pagemap, sizeof(pagemap), "pagemap-%s.img", name);
	snprintf(pages, sizeof(pages), "pages-%s.img", name);
	mark_seen(c, pages);
	if (read_all(c, IMG_PAGEMAP, pagemap, &pagemap_entry__descriptor,
		     (ProtobufCMessage ***)&pm, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t end = pm[i]->vaddr + pm[i]->nr_pages * PAGE;
		if (end < pm[i]->vaddr || end > ((size + PAGE - 1) & ~(PAGE - 1)))
			bad(c, pagemap, "entry %zu (offset 0x%llx, %u pages): past the file's %llu bytes",
			    i, (unsigned long long)pm[i]->vaddr, pm[i]->nr_pages,
			    (unsigned long long)size);
	}
	free_all((ProtobufCMessage **)pm, n);
}

static void check_saved_pages(struct check *c, const SavedFile *f)
{
	char name[64];
	snprintf(name, sizeof(name), "saved-%llu-%llu", (unsigned long long)f->dev,
		 (unsigned long long)f->ino);
	check_file_pages(c, name, f->size);
}

/* A copy of the job's output (output-copy.c): only of an output file. */
static void check_output_copy(struct check *c, size_t i, const FileEntry *f)
{
	char name[32];
	if (!f->has_output_kept || !f->output_kept)
		return;
	if (f->type != FILE_TYPE__FILE_REG || !f->output || !f->has_size) {
		bad(c, "files.img", "entry %zu: id %u: a copy kept, but not of the job's output", i,
		    f->id);
		return;
	}
	snprintf(name, sizeof(name), "output-%u", f->id);
	check_file_pages(c, name, f->size);
}

static void check_saved(struct check *c)
{
	SavedFilesEntry *all;

	if (!img_exists(c->raw, "saved.img") ||
	    read_one(c, IMG_SAVED, "saved.img", &saved_files_entry__descriptor,
		     (ProtobufCMessage **)&all))
		return;
	for (size_t i = 0; i < all->n_files; i++) {
		const SavedFile *f = all->files[i];
		if (f->path[0] != '/' || strstr(f->path, "/../") ||
		    !(S_ISREG(f->mode) || S_ISFIFO(f->mode)))
			bad(c, "saved.img", "entry %zu: %s: not a file to keep", i, f->path);
		else if (S_ISREG(f->mode))
			check_saved_pages(c, f);
	}
	protobuf_c_message_free_unpacked(&all->base, NULL);
}

/* ---- cgroup.img: every thread of the inventory, and only those ---- */

static int has_tid(const TaskEntry *t, uint32_t tid)
{
	for (size_t k = 0; t && k < t->n_tids; k++)
		if (t->tids[k] == tid)
			return 1;
	return 0;
}

static int has_cgroup(const CgroupEntry *cg, uint32_t pid, uint32_t tid)
{
	for (size_t i = 0; i < cg->n_threads; i++)
		if (cg->threads[i]->pid == pid && cg->threads[i]->tid == tid)
			return 1;
	return 0;
}

static void check_cgroups(struct check *c)
{
	CgroupEntry *cg;
	if (!img_exists(c->raw, "cgroup.img") ||
	    read_one(c, IMG_CGROUP, "cgroup.img", &cgroup_entry__descriptor,
		     (ProtobufCMessage **)&cg))
		return;
	for (size_t i = 0; i < cg->n_threads; i++) {
		const CgroupThreadEntry *t = cg->threads[i];
		if (!has_tid(find_task(c->inv, t->pid, c->inv->n_tasks), t->tid) ||
		    t->set >= cg->n_sets)
			bad(c, "cgroup.img", "entry 0: thread %u of pid %u: not in the inventory, or "
			    "no set %u", t->tid, t->pid, t->set);
	}
	for (size_t i = 0; i < c->inv->n_tasks; i++) {
		const TaskEntry *t = c->inv->tasks[i];
		for (size_t k = 0; !(t->has_zombie && t->zombie) && k < t->n_tids; k++)
			if (!has_cgroup(cg, t->pid, t->tids[k]))
				bad(c, "cgroup.img", "entry 0: no cgroups for thread %u of pid %u",
				    t->tids[k], t->pid);
	}
	protobuf_c_message_free_unpacked(&cg->base, NULL);
}

/* ---- the manifest against the directory ---- */

static void check_listing(struct check *c)
{
	for (size_t i = 0; c->man && i < c->man->n_files; i++) {
		const ManifestFile *f = c->man->files[i];
		if (!img_exists(c->raw, f->name))
			bad(c, "manifest", "file %zu: %s is missing", i, f->name);
	}
	for (size_t i = 0; i < img_set_nr_files(c->raw); i++) {
		const char *name = img_set_file(c->raw, i, NULL, NULL);
		size_t k = 0;
		while (c->man && k < c->man->n_files && strcmp(c->man->files[k]->name, name))
			k++;
		if (strcmp(name, "manifest") && c->man && k == c->man->n_files)
			fprintf(stderr, "ckptctl: %s/%s: not in the manifest (ignored)\n", c->dir, name);
		else if (strcmp(name, "manifest") && !c->seen[i])
			fprintf(stderr, "ckptctl: %s/%s: not checked: no task refers to it\n", c->dir,
				name);
	}
}

static void check_set(struct check *c)
{
	if (read_one(c, IMG_MANIFEST, "manifest", &manifest_entry__descriptor,
		     (ProtobufCMessage **)&c->man))
		c->man = NULL;
	if (read_one(c, IMG_INVENTORY, "inventory.img", &inventory_entry__descriptor,
		     (ProtobufCMessage **)&c->inv))
		return;
	if (c->inv->format_version != IMG_FORMAT_VERSION)
		bad(c, "inventory.img", "entry 0: format version %u, this ckptctl reads %u",
		    c->inv->format_version, IMG_FORMAT_VERSION);
	check_inventory(c);
	if (img_exists(c->raw, "files.img") &&
	    !read_all(c, IMG_FILES, "files.img", &file_entry__descriptor,
		      (ProtobufCMessage ***)&c->files, &c->nr_files))
		check_files(c);
	check_pipes(c);
	check_saved(c);
	check_cgroups(c);
	for (size_t i = 0; i < c->inv->n_tasks; i++) {
		check_core(c, c->inv->tasks[i]);
		check_memory(c, c->inv->tasks[i]);
		check_fds(c, c->inv->tasks[i]);
	}
}

int image_verify(const char *dir, int verbose)
{
	struct check c = { .dir = dir, .verbose = verbose };
	struct img_set *set;
	int ret = img_set_open_raw(dir, &c.raw);

	if (ret)
		return 1;
	c.seen = calloc(img_set_nr_files(c.raw) + 1, 1);
	if (!c.seen) {
		img_set_close(c.raw);
		return 1;
	}
	check_set(&c);
	check_listing(&c);
	/* Last, exactly what restore checks first. */
	if (img_set_open(dir, &set))
		c.errors++;
	else
		img_set_close(set);
	if (c.man)
		protobuf_c_message_free_unpacked(&c.man->base, NULL);
	if (c.inv)
		protobuf_c_message_free_unpacked(&c.inv->base, NULL);
	free_all((ProtobufCMessage **)c.files, c.nr_files);
	free(c.seen);
	img_set_close(c.raw);
	if (verbose || c.errors)
		fprintf(c.errors ? stderr : stdout, "%s: %s (%d problem%s)\n", dir,
			c.errors ? "BAD" : "ok", c.errors, c.errors == 1 ? "" : "s");
	return c.errors;
}
