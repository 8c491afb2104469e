/*
 * restore-mem: the last step of restoring one process, run inside it (see
 * restore-mem.h and include/restorer-abi.h).  It lays out one "restore
 * area" where neither the dumped layout nor the current process has
 * anything:
 *
 *   blob | rst_args + arrays | stacks | sigframes | VMA slots
 *
 * Every dumped VMA gets a slot: private ones are premapped there (right
 * kind, RW) and filled from pages-PID.img, shared file mappings mapped
 * from their file, shared memory objects (MAP_SHARED anonymous, System V
 * shm, unlinked tmpfs files) duplicated (mremap with old size 0) from the driver's mapping of
 * the object, which this process inherited, so that every process that
 * maps it shares it again; the madvise/mlock state is set on the slot
 * (mremap keeps it).  The slot of a special mapping ([vdso], [vvar]...)
 * is where the restorer parks the current one.
 * Slots keep their dumped offset modulo 2 MiB, so that transparent huge
 * pages survive the final mremap, and never touch one another, so that
 * VMAs that were separate in the dump are not merged while premapped.
 *
 * Then rst_args is filled (threads and their signal frames, mm map, creds,
 * signals, fds to close, what to unmap) and the process jumps into the
 * blob, never to come back here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>

#include "aio.h"
#include "log.h"
#include "mem.h"
#include "file-change.h"
#include "restore-mem.h"
#include "restore-state.h"
#include "restorer-abi.h"
#include "sigframe.h"

extern const unsigned char restorer_blob[];
extern const unsigned long restorer_blob_size, restorer_blob_mem_size;
extern const unsigned long restorer_off_main;

#define PAGE 4096ULL
#define HUGE (2ULL << 20)
#define MAIN_STACK (64ULL << 10)
#define THREAD_STACK (16ULL << 10)
#define AREA_LOW (1ULL << 32)            /* keep the area off low addresses */
#define USER_TOP 0x7ffffffff000ULL       /* 47-bit user space */
#define MAX_SPECIALS 4

struct slot {
	const VmaEntry *e;
	uint64_t start, end;
	uint64_t addr;   /* in the area */
	uint64_t filled; /* bytes of dumped pages inside */
	int adopted;     /* the parent's premapped copy, inherited (adopt_slot) */
	int lazy;        /* left empty for the page server (mark_lazy) */
};

/* Shared memory objects the driver mapped (restore_mem_add_shared). */
struct shared_obj {
	VmaKind kind;
	uint64_t dev, id, base, len;
	int fd; /* an unlinked file's, for its private mappings; -1 */
	const char *path; /* another name of that file (restore_mem_add_name) */
};

static struct shared_obj *shared_objs;
static size_t nr_shared_objs, cap_shared_objs;

struct cur_special {
	VmaKind kind;
	uint64_t start, len;
	int used; /* also in the dump */
};

struct plan {
	const struct restore_mem_ctx *ctx;
	struct slot *slots;
	size_t nr_slots;
	struct cur_special cur[MAX_SPECIALS];
	int nr_cur;
	uint64_t area, area_len;
	uint64_t args_off, stacks_off, frames_off, frame_stride;
	size_t fd_cap;
	int exe_fd;
};

/* Carves rst_args and its arrays out of one region; with base == NULL
 * it only counts the bytes. */
struct carve {
	uint8_t *base;
	size_t off;
};

static void *carve(struct carve *c, size_t n)
{
	void *p = c->base ? c->base + c->off : NULL;
	c->off += (n + 15) & ~(size_t)15;
	return p;
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static int is_special(VmaKind k)
{
	return k == VMA_KIND__VMA_VDSO || k == VMA_KIND__VMA_VVAR || k == VMA_KIND__VMA_VVAR_VCLOCK;
}

static const char *special_name(VmaKind k)
{
	switch (k) {
	case VMA_KIND__VMA_VDSO: return "[vdso]";
	case VMA_KIND__VMA_VVAR: return "[vvar]";
	case VMA_KIND__VMA_VVAR_VCLOCK: return "[vvar_vclock]";
	default: return "?";
	}
}

/* ---- shared memory objects ---- */

int restore_mem_add_shared(VmaKind kind, uint64_t dev, uint64_t id, uint64_t base, uint64_t len,
			   int fd)
{
	if (nr_shared_objs == cap_shared_objs) {
		size_t cap = cap_shared_objs ? 2 * cap_shared_objs : 16;
		struct shared_obj *o = realloc(shared_objs, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		shared_objs = o;
		cap_shared_objs = cap;
	}
	shared_objs[nr_shared_objs++] = (struct shared_obj){ kind, dev, id, base, len, fd, NULL };
	return 0;
}

int restore_mem_add_name(uint64_t dev, uint64_t id, const char *path, int fd)
{
	int ret = restore_mem_add_shared(VMA_KIND__VMA_FILE_PRIVATE, dev, id, 0, 0, fd);
	if (!ret)
		shared_objs[nr_shared_objs - 1].path = path;
	return ret;
}

size_t restore_mem_shared_fds(int *fds, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < nr_shared_objs; i++)
		if (shared_objs[i].fd >= 0 && n++ < max)
			fds[n - 1] = shared_objs[i].fd;
	return n;
}

void restore_mem_clear_shared(void)
{
	free(shared_objs);
	shared_objs = NULL;
	nr_shared_objs = cap_shared_objs = 0;
}

static int is_shared_obj(VmaKind k)
{
	return k == VMA_KIND__VMA_ANON_SHARED || k == VMA_KIND__VMA_SYSV_SHM ||
	       k == VMA_KIND__VMA_SHMEM_FILE;
}

/* The object of a shared VMA, or the file a private mapping of an
 * unlinked file maps (mem.c: FILE_PRIVATE with a shmid). */
static const struct shared_obj *find_shared(const VmaEntry *e)
{
	/* a private mapping of shared anonymous memory (shmem.c) */
	int anon = e->kind == VMA_KIND__VMA_FILE_PRIVATE && e->has_shmem_anon && e->shmem_anon;
	int file = !anon && (e->kind == VMA_KIND__VMA_SHMEM_FILE || e->kind == VMA_KIND__VMA_FILE_PRIVATE);
	VmaKind kind = anon ? VMA_KIND__VMA_ANON_SHARED : file ? VMA_KIND__VMA_SHMEM_FILE : e->kind;
	uint64_t dev = file && e->has_dev ? e->dev : 0;
	for (size_t i = 0; file && e->path && i < nr_shared_objs; i++)
		if (shared_objs[i].path && shared_objs[i].id == e->shmid && shared_objs[i].dev == dev &&
		    !strcmp(shared_objs[i].path, e->path))
			return &shared_objs[i];
	for (size_t i = 0; i < nr_shared_objs; i++)
		if (shared_objs[i].kind == kind && shared_objs[i].id == e->shmid &&
		    shared_objs[i].dev == dev)
			return &shared_objs[i];
	return NULL;
}

/* ---- the dumped layout ---- */

static struct slot *find_slot(const struct plan *p, uint64_t addr)
{
	size_t lo = 0, hi = p->nr_slots;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct slot *s = &p->slots[mid];
		if (addr < s->start)
			hi = mid;
		else if (addr >= s->end)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

/* Guard ranges: page-aligned, ascending, inside their VMA (untrusted). */
static int check_guards(pid_t pid, const VmaEntry *e)
{
	uint64_t at = e->start;
	for (size_t i = 0; i < e->n_guards; i++) {
		const VmaGuardEntry *g = e->guards[i];
		if (g->start < at || g->end <= g->start || g->end > e->end ||
		    (g->start | g->end) % PAGE || is_special(e->kind)) {
			pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": guard pages 0x%" PRIx64
			       "-0x%" PRIx64 ": misplaced",
			       pid, e->start, e->end, g->start, g->end);
			return -EINVAL;
		}
		at = g->end;
	}
	return 0;
}

static int collect_slots(struct plan *p)
{
	const MmEntry *mm = p->ctx->mm;
	pid_t pid = p->ctx->pid;

	p->slots = calloc(mm->n_vmas ? mm->n_vmas : 1, sizeof(*p->slots));
	if (!p->slots)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		if (e->kind == VMA_KIND__VMA_VSYSCALL)
			continue;
		struct slot *prev = p->nr_slots ? &p->slots[p->nr_slots - 1] : NULL;
		if (e->start >= e->end || e->end > USER_TOP || (e->start | e->end) % PAGE ||
		    (prev && e->start < prev->end)) {
			pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": misplaced or out of order",
			       pid, e->start, e->end);
			return -EINVAL;
		}
		if ((e->kind == VMA_KIND__VMA_FILE_PRIVATE || e->kind == VMA_KIND__VMA_FILE_SHARED) &&
		    !e->path) {
			pr_err("pid %d: VMA 0x%" PRIx64 ": file mapping without a path", pid, e->start);
			return -EINVAL;
		}
		if (check_guards(pid, e))
			return -EINVAL;
		if (e->kind == VMA_KIND__VMA_AIO_RING && aio_ring_check(pid, e))
			return -EINVAL;
		if (is_shared_obj(e->kind) && !e->has_shmid) {
			pr_err("pid %d: VMA 0x%" PRIx64 ": shared memory without its object", pid,
			       e->start);
			return -EINVAL;
		}
		p->slots[p->nr_slots++] = (struct slot){ .e = e, .start = e->start, .end = e->end };
	}
	return 0;
}

/* Every chunk must lie inside one VMA (the dumper never writes one
 * across two); count what each VMA gets. */
static int check_chunks(struct plan *p)
{
	for (size_t i = 0; i < p->ctx->nr_chunks; i++) {
		const struct page_chunk *c = &p->ctx->chunks[i];
		uint64_t addr = c->vaddr, end = c->vaddr + (uint64_t)c->nr_pages * PAGE;
		struct slot *s = find_slot(p, addr);

		while (s && addr < end) {
			uint64_t upto = end < s->end ? end : s->end;
			s->filled += upto - addr;
			addr = upto;
			if (addr < end)
				s = NULL;
		}
		/* an AIO ring's bytes are its vma_entry's, never pages */
		if (addr < end || c->vaddr % PAGE || (s && s->e->kind == VMA_KIND__VMA_AIO_RING)) {
			pr_err("pid %d: pages at 0x%" PRIx64 " (%u pages): not inside the dumped VMAs",
			       p->ctx->pid, c->vaddr, c->nr_pages);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- the current process ---- */

struct maps_range {
	uint64_t start, end;
};

/* Calls fn for every line of /proc/self/maps. */
static int walk_maps(int (*fn)(void *arg, uint64_t start, uint64_t end, const char *name), void *arg)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	int ret = 0;

	if (!f) {
		pr_err("/proc/self/maps: %s", strerror(errno));
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		int name_at = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &start, &end, &name_at) < 2)
			continue;
		char *name = line + name_at;
		name[strcspn(name, "\n")] = 0;
		ret = fn(arg, start, end, name);
	}
	fclose(f);
	return ret;
}

static int note_special(void *arg, uint64_t start, uint64_t end, const char *name)
{
	struct plan *p = arg;
	VmaKind kinds[] = { VMA_KIND__VMA_VDSO, VMA_KIND__VMA_VVAR, VMA_KIND__VMA_VVAR_VCLOCK };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(name, special_name(kinds[i])) || p->nr_cur >= MAX_SPECIALS)
			continue;
		p->cur[p->nr_cur++] = (struct cur_special){ .kind = kinds[i], .start = start, .len = end - start };
	}
	return 0;
}

/* Each dumped special mapping must exist now with the same size: the
 * restorer moves the kernel's current one into its place. */
static int match_specials(struct plan *p)
{
	int ret = walk_maps(note_special, p);
	if (ret)
		return ret;
	for (size_t i = 0; i < p->nr_slots; i++) {
		struct slot *s = &p->slots[i];
		struct cur_special *c = NULL;
		if (!is_special(s->e->kind))
			continue;
		for (int j = 0; j < p->nr_cur; j++)
			if (p->cur[j].kind == s->e->kind)
				c = &p->cur[j];
		if (!c || c->used || c->len != s->end - s->start) {
			pr_err("pid %d: %s: 0x%" PRIx64 " bytes in the dump, 0x%" PRIx64
			       " on this kernel: cannot restore across these kernels",
			       p->ctx->pid, special_name(s->e->kind), s->end - s->start, c ? c->len : 0);
			return -EINVAL;
		}
		c->used = 1;
	}
	return 0;
}

static int count_fds(int fd_base, size_t *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d) {
		pr_err("/proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	*n = 0;
	while ((de = readdir(d)))
		if (atoi(de->d_name) >= fd_base)
			(*n)++;
	closedir(d);
	return 0;
}

/* ---- layout ---- */

static size_t carve_args(const struct plan *p, struct carve *c, struct rst_args **out)
{
	const CoreEntry *core = p->ctx->core;
	struct rst_args *a = carve(c, sizeof(*a));

	if (a) {
		*out = a;
		a->unmap = carve(c, (MAX_SPECIALS + 2) * sizeof(struct rst_range));
		a->vmas = carve(c, p->nr_slots * sizeof(struct rst_vma));
		a->specials = carve(c, MAX_SPECIALS * sizeof(struct rst_special));
		a->close_fds = carve(c, p->fd_cap * sizeof(int32_t));
		a->shared_pending = carve(c, core->n_shared_pending * sizeof(struct rst_siginfo));
		a->threads = carve(c, core->n_threads * sizeof(struct rst_thread));
		for (size_t i = 0; i < core->n_threads; i++)
			a->threads[i].pending = carve(c, core->threads[i]->n_pending * sizeof(struct rst_siginfo));
		a->mm.auxv = (uint64_t)carve(c, p->ctx->mm->n_auxv * sizeof(uint64_t));
		a->lazy = carve(c, p->nr_slots * sizeof(struct rst_range));
		return c->off;
	}
	carve(c, (MAX_SPECIALS + 2) * sizeof(struct rst_range));
	carve(c, p->nr_slots * sizeof(struct rst_vma));
	carve(c, MAX_SPECIALS * sizeof(struct rst_special));
	carve(c, p->fd_cap * sizeof(int32_t));
	carve(c, core->n_shared_pending * sizeof(struct rst_siginfo));
	carve(c, core->n_threads * sizeof(struct rst_thread));
	for (size_t i = 0; i < core->n_threads; i++)
		carve(c, core->threads[i]->n_pending * sizeof(struct rst_siginfo));
	carve(c, p->ctx->mm->n_auxv * sizeof(uint64_t));
	carve(c, p->nr_slots * sizeof(struct rst_range));
	return c->off;
}

static int layout(struct plan *p)
{
	const CoreEntry *core = p->ctx->core;
	size_t xstate_max = 0;
	struct carve c = { 0 };
	uint64_t off;
	int ret;

	if (core->n_threads < 1) {
		pr_err("pid %d: core image has no threads", p->ctx->pid);
		return -EINVAL;
	}
	if ((ret = count_fds(p->ctx->fd_base, &p->fd_cap)))
		return ret;
	p->fd_cap += 64;

	off = round_up(restorer_blob_mem_size, PAGE);
	p->args_off = off;
	off = round_up(off + carve_args(p, &c, NULL), PAGE);
	p->stacks_off = off;
	off += MAIN_STACK + THREAD_STACK * (core->n_threads - 1);
	for (size_t i = 0; i < core->n_threads; i++)
		if (core->threads[i]->xstate.len > xstate_max)
			xstate_max = core->threads[i]->xstate.len;
	p->frames_off = off;
	p->frame_stride = round_up(sigframe_size(xstate_max), 64);
	off = round_up(off + p->frame_stride * core->n_threads, HUGE);
	for (size_t i = 0; i < p->nr_slots; i++) {
		struct slot *s = &p->slots[i];
		/* A gap between every two slots: premapped side by side, two
		 * VMAs that were separate in the dump would merge into one. */
		off += (s->start - off) & (HUGE - 1);
		if (i && s->start == s[-1].end)
			off += HUGE;
		s->addr = off; /* relative until the area is placed */
		off += s->end - s->start;
	}
	p->area_len = round_up(off, HUGE);
	return 0;
}

struct busy {
	struct maps_range *r;
	size_t n, cap;
};

static int add_busy(void *arg, uint64_t start, uint64_t end, const char *name)
{
	struct busy *b = arg;
	(void)name;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		struct maps_range *r = realloc(b->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->r = r;
		b->cap = cap;
	}
	b->r[b->n++] = (struct maps_range){ start, end };
	return 0;
}

static int cmp_range(const void *x, const void *y)
{
	const struct maps_range *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* Lowest 2 MiB aligned address above AREA_LOW where neither the dumped
 * layout nor the current process has anything for area_len bytes. */
static int find_gap(struct plan *p, uint64_t *out)
{
	struct busy b = { 0 };
	uint64_t at = AREA_LOW;
	int ret = walk_maps(add_busy, &b);

	for (size_t i = 0; !ret && i < p->nr_slots; i++)
		ret = add_busy(&b, p->slots[i].start, p->slots[i].end, NULL);
	if (ret) {
		free(b.r);
		return ret;
	}
	qsort(b.r, b.n, sizeof(*b.r), cmp_range);
	for (size_t i = 0; i <= b.n; i++) {
		uint64_t next = i < b.n ? b.r[i].start : USER_TOP;
		if (next > at && next - at >= p->area_len)
			break;
		if (i < b.n && round_up(b.r[i].end, HUGE) > at)
			at = round_up(b.r[i].end, HUGE);
	}
	free(b.r);
	if (at + p->area_len > USER_TOP) {
		pr_err("pid %d: no room for a restore area of 0x%" PRIx64 " bytes", p->ctx->pid, p->area_len);
		return -ENOMEM;
	}
	*out = at;
	return 0;
}

static int map_area(struct plan *p)
{
	uint64_t at;
	int ret = find_gap(p, &at);
	if (ret)
		return ret;
	void *m = mmap((void *)at, p->area_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED || m != (void *)at) {
		ret = m == MAP_FAILED ? -errno : -EEXIST;
		pr_err("pid %d: restore area at 0x%" PRIx64 ": %s", p->ctx->pid, at, strerror(-ret));
		if (m != MAP_FAILED)
			munmap(m, p->area_len);
		return ret;
	}
	p->area = at;
	for (size_t i = 0; i < p->nr_slots; i++)
		p->slots[i].addr += at;
	memcpy(m, restorer_blob, restorer_blob_size);
	if (mprotect(m, round_up(restorer_blob_mem_size, PAGE), PROT_READ | PROT_WRITE | PROT_EXEC)) {
		ret = -errno;
		pr_err("pid %d: restore area: mprotect: %s", p->ctx->pid, strerror(errno));
		return ret;
	}
	return 0;
}

/* ---- premapping ---- */

/*
 * A mapping of a file only an fd holds (memfd, ghost: mem.c records
 * /proc/self/fd/N) maps a duplicate of that fd when its access mode allows
 * (it is the task's own description, restored already): a second open
 * would count as one more writer of a memfd, which memfd_create()'s own
 * description is not, and execveat() of the memfd would fail with ETXTBSY.
 */
static int open_fd_path(const char *path, int flags)
{
	char *end;
	const char *prefix = "/proc/self/fd/";
	if (strncmp(path, prefix, strlen(prefix)))
		return open(path, flags | O_CLOEXEC);
	long n = strtol(path + strlen(prefix), &end, 10);
	int fl = (*end || n < 0 || n > INT_MAX) ? -1 : fcntl((int)n, F_GETFL);
	if (fl < 0 || ((fl & O_ACCMODE) != O_RDWR && (fl & O_ACCMODE) != (flags & O_ACCMODE)))
		return open(path, flags | O_CLOEXEC);
	return fcntl((int)n, F_DUPFD_CLOEXEC, 0);
}

/* Open a mapped file and check it is the one that was dumped. */
static int open_vma_file(const struct plan *p, const VmaEntry *e, int flags)
{
	struct stat st;
	int fd = open_fd_path(e->path, flags);

	if (fd < 0 || fstat(fd, &st)) {
		int err = errno;
		pr_err("pid %d: %s: cannot open: %s", p->ctx->pid, e->path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (!p->ctx->skip_file_check &&
	    ((e->has_file_size && (uint64_t)st.st_size != e->file_size) ||
	     (e->has_mtime_ns && mtime != e->mtime_ns))) {
		char what[200];
		file_change(what, sizeof(what), &st, e->has_file_size, e->file_size,
			    e->has_mtime_ns, e->mtime_ns);
		pr_err("pid %d: %s (mapped at 0x%" PRIx64 "): changed since the dump: %s "
		       "(--skip-file-check restores it anyway)",
		       p->ctx->pid, e->path, e->start, what);
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* A private mapping of an unlinked file no fd held: the file made again
 * by the driver (shmem.c), through the fd it kept. */
static int object_file(const struct plan *p, const struct slot *s)
{
	const struct shared_obj *o = find_shared(s->e);
	int fd = o && o->fd >= 0 ? fcntl(o->fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (fd < 0)
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 " %s: unlinked file %" PRIu64 " %s",
		       p->ctx->pid, s->start, s->end, s->e->path ? s->e->path : "", s->e->shmid,
		       o ? strerror(errno) : "was not restored");
	return fd < 0 ? -EINVAL : fd;
}

static int is_other_name(const VmaEntry *e)
{
	const struct shared_obj *o = find_shared(e);
	return o && o->path;
}

/* Move fd to the first free number >= fd_base, out of the restored fds' way. */
static int fd_above_base(const struct plan *p, int fd)
{
	if (fd >= p->ctx->fd_base)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, p->ctx->fd_base);
	int err = errno;
	close(fd);
	if (nfd < 0) {
		pr_err("pid %d: fd above %d: %s", p->ctx->pid, p->ctx->fd_base, strerror(err));
		return -err;
	}
	return nfd;
}

/* A view of the shared object, from the driver's mapping of it. */
static int premap_shared(const struct plan *p, const struct slot *s)
{
	const VmaEntry *e = s->e;
	const struct shared_obj *o = find_shared(e);
	uint64_t len = s->end - s->start;

	if (!o || e->pgoff > o->len || len > o->len - e->pgoff) {
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": %s %" PRIu64 " %s", p->ctx->pid,
		       s->start, s->end,
		       e->kind == VMA_KIND__VMA_SYSV_SHM ? "shm segment" : "shared memory object",
		       e->shmid, o ? "is smaller than the VMA" : "was not restored");
		return -EINVAL;
	}
	void *m = mremap((void *)(o->base + e->pgoff), 0, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			 (void *)s->addr);
	if (m == MAP_FAILED) {
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": shared memory %" PRIu64 ": %s",
		       p->ctx->pid, s->start, s->end, e->shmid, strerror(errno));
		return -errno;
	}
	return 0;
}

static const struct {
	uint32_t advice;
	int madv;
} slot_advice[] = {
	{ VMA_ADVICE__VMA_ADV_DONTFORK, MADV_DONTFORK },
	{ VMA_ADVICE__VMA_ADV_WIPEONFORK, MADV_WIPEONFORK },
	{ VMA_ADVICE__VMA_ADV_HUGEPAGE, MADV_HUGEPAGE },
	{ VMA_ADVICE__VMA_ADV_NOHUGEPAGE, MADV_NOHUGEPAGE },
	{ VMA_ADVICE__VMA_ADV_DONTDUMP, MADV_DONTDUMP },
	{ VMA_ADVICE__VMA_ADV_SEQUENTIAL, MADV_SEQUENTIAL },
	{ VMA_ADVICE__VMA_ADV_RANDOM, MADV_RANDOM },
	{ VMA_ADVICE__VMA_ADV_MERGEABLE, MADV_MERGEABLE },
};

/* madvise state: VMA flags that the restorer's mremap keeps (mlock: lock_slots). */
static int advise_slot(const struct plan *p, const struct slot *s)
{
	uint32_t adv = s->e->has_advice ? s->e->advice : 0;
	void *addr = (void *)s->addr;
	size_t len = s->end - s->start;
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(slot_advice) / sizeof(slot_advice[0]); i++)
		if ((adv & slot_advice[i].advice) && madvise(addr, len, slot_advice[i].madv))
			ret = -errno;
	if (ret)
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": madvise state 0x%x: %s",
		       p->ctx->pid, s->start, s->end, adv, strerror(-ret));
	return ret;
}

static int premap_slot(const struct plan *p, struct slot *s)
{
	const VmaEntry *e = s->e;
	uint64_t len = s->end - s->start;
	/* Only what gets filled needs to be writable now. */
	int prot = (int)e->prot | (s->filled ? PROT_READ | PROT_WRITE : 0);
	int flags = MAP_FIXED | (int)(e->flags & (MAP_GROWSDOWN | MAP_NORESERVE)), fd = -1;
	void *m;

	switch (e->kind) {
	case VMA_KIND__VMA_ANON_PRIVATE:
		flags |= MAP_ANONYMOUS |
			 ((e->flags & MAP_TYPE) == VMA_MAP_DROPPABLE ? VMA_MAP_DROPPABLE : MAP_PRIVATE);
		break;
	case VMA_KIND__VMA_SHMEM_FILE:
		if (!is_other_name(e))
			return premap_shared(p, s);
		/* through the name it was mapped by: the same file */
		flags |= MAP_SHARED;
		if ((fd = object_file(p, s)) < 0)
			return fd;
		prot = (int)e->prot;
		break;
	case VMA_KIND__VMA_ANON_SHARED:
	case VMA_KIND__VMA_SYSV_SHM:
		return premap_shared(p, s);
	case VMA_KIND__VMA_AIO_RING:
		return aio_ring_restore(p->ctx->pid, e, s->addr);
	case VMA_KIND__VMA_FILE_PRIVATE:
		flags |= MAP_PRIVATE;
		fd = e->has_shmid ? object_file(p, s) : open_vma_file(p, e, O_RDONLY);
		if (fd < 0)
			return fd;
		break;
	case VMA_KIND__VMA_FILE_SHARED:
		flags |= MAP_SHARED;
		fd = open_vma_file(p, e, e->has_open_flags ? (int)(e->open_flags & O_ACCMODE) : O_RDONLY);
		if (fd < 0)
			return fd;
		prot = (int)e->prot; /* nothing to fill: the file has the data */
		break;
	default:
		return 0; /* specials: the slot is where the restorer parks them */
	}
	m = mmap((void *)s->addr, len, prot, flags, fd, fd < 0 ? 0 : (off_t)e->pgoff);
	int err = errno;
	if (fd >= 0)
		close(fd);
	if (m == MAP_FAILED) {
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 "%s%s: premap: %s", p->ctx->pid, s->start,
		       s->end, e->path ? " " : "", e->path ? e->path : "", strerror(err));
		return -err;
	}
	return 0;
}

int restore_mem_vma_lazy(const VmaEntry *e)
{
	uint32_t locked = VMA_ADVICE__VMA_ADV_LOCKED | VMA_ADVICE__VMA_ADV_LOCKONFAULT;
	/* mlock would fault every page in, as zeros, before the uffd exists */
	return e->kind == VMA_KIND__VMA_ANON_PRIVATE && (e->flags & MAP_TYPE) != VMA_MAP_DROPPABLE &&
	       !((e->has_advice ? e->advice : 0) & locked);
}

/* Left empty here and filled by the driver's page server (lazy restore). */
static int slot_lazy(const struct plan *p, const struct slot *s)
{
	(void)p;
	return s->lazy;
}

static void *page_dest(void *arg, uint64_t vaddr, size_t len)
{
	struct plan *p = arg;
	struct slot *s = find_slot(p, vaddr);
	(void)len; /* check_chunks made sure the whole chunk fits */
	return s ? (void *)(s->addr + (vaddr - s->start)) : NULL;
}

static int page_keep(void *arg, uint64_t vaddr, size_t len)
{
	struct slot *s = find_slot(arg, vaddr);
	(void)len;
	return s && s->adopted;
}

/*
 * A mapping of a file only one of the task's fds holds (/proc/self/fd/N,
 * see open_fd_path) is premapped late, once the fds are installed; every
 * other slot before the task forks its children (restore_mem_prepare).
 */
static int slot_late(const struct slot *s)
{
	const char *fd_prefix = "/proc/self/fd/";
	return s->e->path && !strncmp(s->e->path, fd_prefix, strlen(fd_prefix));
}

/* Load the chunks of the early (late = 0) or the late slots. */
static int load_pages(struct plan *p, int late)
{
	const struct restore_mem_ctx *ctx = p->ctx;
	struct page_chunk *mine = malloc((ctx->nr_chunks ? ctx->nr_chunks : 1) * sizeof(*mine));
	size_t n = 0;
	char name[64];
	int ret = 0;

	if (!mine)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nr_chunks; i++) {
		const struct slot *s = find_slot(p, ctx->chunks[i].vaddr);
		if (s && slot_late(s) == late && !slot_lazy(p, s))
			mine[n++] = ctx->chunks[i];
	}
	snprintf(name, sizeof(name), "pages-%d.img", ctx->pid);
	if (n)
		ret = page_reader_load_keep(ctx->set, name, mine, n, ctx->page_threads, page_dest,
					    page_keep, p);
	free(mine);
	return ret;
}

static void count_pages(const struct plan *p)
{
	const struct restore_mem_ctx *ctx = p->ctx;
	uint64_t bytes = 0;

	for (size_t i = 0; i < ctx->nr_chunks; i++)
		bytes += (uint64_t)ctx->chunks[i].nr_pages * PAGE;
	if (ctx->memory_bytes)
		*ctx->memory_bytes = bytes;
}

/*
 * Copy-on-write sharing with the parent.  The parent premaps and fills
 * its memory before it forks its children (restore_mem_prepare), so a
 * child inherits the parent's slots with their pages, shared.  Where the
 * child's dumped VMA is the same mapping as the parent's, the child moves
 * the parent's slot into its own: the loader then writes only the pages
 * that differ (page_keep), and the pages the child's dump does not have
 * are dropped (zap_uncovered), so that what both hold alike is shared
 * again, as it was before the dump (zdtm cow00/cow01: a forked job's
 * memory would otherwise double).
 */
static const struct plan *parent_plan;

static uint32_t advice_of(const VmaEntry *e)
{
	return e->has_advice ? e->advice : 0;
}

static int same_mapping(const VmaEntry *a, const VmaEntry *b)
{
	uint32_t no_fork = VMA_ADVICE__VMA_ADV_DONTFORK | VMA_ADVICE__VMA_ADV_WIPEONFORK;

	if (a->kind != b->kind || a->prot != b->prot || a->flags != b->flags ||
	    advice_of(a) != advice_of(b) || (advice_of(a) & no_fork) ||
	    (a->flags & MAP_TYPE) == VMA_MAP_DROPPABLE)
		return 0;
	if (a->kind == VMA_KIND__VMA_ANON_PRIVATE)
		return 1;
	/* (an object's shmid too: "/dev/zero" names every anonymous one) */
	return a->kind == VMA_KIND__VMA_FILE_PRIVATE && a->path && b->path &&
	       !strcmp(a->path, b->path) && a->pgoff == b->pgoff &&
	       a->has_shmid == b->has_shmid && a->shmid == b->shmid &&
	       a->has_mtime_ns == b->has_mtime_ns && a->mtime_ns == b->mtime_ns &&
	       a->has_file_size == b->has_file_size && a->file_size == b->file_size;
}

static struct slot *find_slot(const struct plan *p, uint64_t addr);

/* The same mapping as one of the parent's or of a child's: the pages
 * they share copy-on-write are shared again only if both are filled
 * here (adopt_slot), so such a VMA is not lazy. */
static int shared_with_kin(const struct plan *p, const struct slot *s)
{
	const struct slot *ps = parent_plan ? find_slot((struct plan *)parent_plan, s->start) : NULL;
	if (ps && ps->start == s->start && ps->end == s->end && same_mapping(ps->e, s->e))
		return 1;
	for (size_t i = 0; i < p->ctx->nr_child_mms; i++) {
		const MmEntry *mm = p->ctx->child_mms[i];
		for (size_t v = 0; mm && v < mm->n_vmas; v++)
			if (mm->vmas[v]->start == s->start && mm->vmas[v]->end == s->end &&
			    same_mapping(mm->vmas[v], s->e))
				return 1;
	}
	return 0;
}

/* Decided once, in restore_mem_prepare (parent_plan changes after it). */
static void mark_lazy(struct plan *p)
{
	for (size_t i = 0; p->ctx->lazy_fd >= 0 && i < p->nr_slots; i++) {
		struct slot *s = &p->slots[i];
		s->lazy = s->filled && restore_mem_vma_lazy(s->e) && !shared_with_kin(p, s);
	}
}

/* 1: adopted; 0: not the parent's mapping; <0: error. */
static int adopt_slot(const struct plan *p, struct slot *s)
{
	const struct slot *ps = parent_plan ? find_slot((struct plan *)parent_plan, s->start) : NULL;
	uint64_t len = s->end - s->start;
	int prot = (int)s->e->prot | (s->filled ? PROT_READ | PROT_WRITE : 0);

	/* a lazy slot is empty in the parent too: nothing to share */
	if (!ps || ps->start != s->start || ps->end != s->end || slot_late(s) || slot_lazy(p, s) ||
	    !same_mapping(ps->e, s->e))
		return 0;
	if (mremap((void *)ps->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)s->addr) ==
	    MAP_FAILED) {
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": taking the parent's copy: %s",
		       p->ctx->pid, s->start, s->end, strerror(errno));
		return -errno;
	}
	if (mprotect((void *)s->addr, len, prot)) {
		pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": mprotect: %s", p->ctx->pid,
		       s->start, s->end, strerror(errno));
		return -errno;
	}
	s->adopted = 1;
	return 1;
}

static int zap(const struct plan *p, const struct slot *s, uint64_t from, uint64_t to)
{
	if (from >= to || !madvise((void *)(s->addr + (from - s->start)), to - from, MADV_DONTNEED))
		return 0;
	pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": dropping the parent's pages: %s",
	       p->ctx->pid, s->start, s->end, strerror(errno));
	return -errno;
}

/* In an adopted slot, a page the child's dump does not store is not the
 * parent's: zero (anonymous) or the file's (private file mapping). */
static int zap_uncovered(const struct plan *p)
{
	const struct restore_mem_ctx *ctx = p->ctx;
	size_t c = 0;

	for (size_t i = 0; i < p->nr_slots; i++) {
		const struct slot *s = &p->slots[i];
		uint64_t at = s->start;
		int ret = 0;

		if (!s->adopted)
			continue;
		while (c < ctx->nr_chunks && ctx->chunks[c].vaddr < s->start)
			c++;
		for (; !ret && c < ctx->nr_chunks && ctx->chunks[c].vaddr < s->end; c++) {
			ret = zap(p, s, at, ctx->chunks[c].vaddr);
			at = ctx->chunks[c].vaddr + (uint64_t)ctx->chunks[c].nr_pages * PAGE;
		}
		if (ret || (ret = zap(p, s, at, s->end)))
			return ret;
	}
	return 0;
}

static int premap_some(struct plan *p, int late)
{
	for (size_t i = 0; i < p->nr_slots; i++) {
		struct slot *s = &p->slots[i];
		int ret = 0;

		if (slot_late(s) != late)
			continue;
		if (!late)
			ret = adopt_slot(p, s);
		if (ret == 0)
			ret = premap_slot(p, s);
		if (ret >= 0 && !is_special(s->e->kind))
			ret = advise_slot(p, s);
		if (ret < 0)
			return ret;
	}
	return 0;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/*
 * Guard pages go in once every page is loaded (installing one drops what
 * the page held) and after this process forked its children, which keep
 * their own; mremap then moves the markers with the slot.  Before mlock:
 * MADV_GUARD_INSTALL refuses a locked VMA.
 */
static int install_guards(const struct plan *p)
{
	for (size_t i = 0; i < p->nr_slots; i++) {
		const struct slot *s = &p->slots[i];
		for (size_t j = 0; j < s->e->n_guards; j++) {
			const VmaGuardEntry *g = s->e->guards[j];
			if (madvise((void *)(s->addr + (g->start - s->start)), g->end - g->start,
				    MADV_GUARD_INSTALL)) {
				int e = errno;
				pr_err("pid %d: guard pages 0x%" PRIx64 "-0x%" PRIx64 ": %s",
				       p->ctx->pid, g->start, g->end, strerror(e));
				return -e;
			}
		}
	}
	return 0;
}

/* mlock last: not inherited by a child, and under the task's own rlimits. */
static int lock_slots(const struct plan *p)
{
	for (size_t i = 0; i < p->nr_slots; i++) {
		const struct slot *s = &p->slots[i];
		uint32_t adv = advice_of(s->e);
		void *addr = (void *)s->addr;
		size_t len = s->end - s->start;
		int ret = 0;

		if (adv & VMA_ADVICE__VMA_ADV_LOCKONFAULT)
			ret = mlock2(addr, len, MLOCK_ONFAULT) ? -errno : 0;
		else if (adv & VMA_ADVICE__VMA_ADV_LOCKED)
			/* the syscall: sanitizers make mlock() a no-op */
			ret = syscall(SYS_mlock, addr, len) ? -errno : 0;
		if (ret) {
			pr_err("pid %d: VMA 0x%" PRIx64 "-0x%" PRIx64 ": mlock: %s", p->ctx->pid,
			       s->start, s->end, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* ---- the restorer's arguments ---- */

static void fill_vmas(const struct plan *p, struct rst_args *a)
{
	for (size_t i = 0; i < p->nr_slots; i++) {
		const struct slot *s = &p->slots[i];
		const VmaEntry *e = s->e;
		uint64_t len = s->end - s->start;

		if (is_special(e->kind)) {
			for (int j = 0; j < p->nr_cur; j++)
				if (p->cur[j].kind == e->kind)
					a->specials[a->nr_specials++] = (struct rst_special){
						.cur = p->cur[j].start, .tmp = s->addr,
						.target = s->start, .len = len };
		} else {
			if (slot_lazy(p, s))
				a->lazy[a->nr_lazy++] = (struct rst_range){ s->start, len };
			a->vmas[a->nr_vmas++] = (struct rst_vma){
				.start = s->start, .len = len, .src = s->addr, .fd = -1,
				.how = RST_VMA_MOVE, .prot = e->prot };
		}
	}
}

/* Everything below USER_TOP but the area and the kept special mappings. */
static void fill_unmap(const struct plan *p, struct rst_args *a)
{
	struct maps_range keep[MAX_SPECIALS + 1];
	size_t n = 0;
	uint64_t at = 0;

	keep[n++] = (struct maps_range){ p->area, p->area + p->area_len };
	for (int i = 0; i < p->nr_cur; i++)
		if (p->cur[i].used)
			keep[n++] = (struct maps_range){ p->cur[i].start, p->cur[i].start + p->cur[i].len };
	qsort(keep, n, sizeof(keep[0]), cmp_range);
	for (size_t i = 0; i <= n; i++) {
		uint64_t next = i < n ? keep[i].start : USER_TOP;
		if (next > at)
			a->unmap[a->nr_unmap++] = (struct rst_range){ at, next - at };
		if (i < n)
			at = keep[i].end;
	}
}

static int fill_mm(struct plan *p, struct rst_args *a)
{
	const MmEntry *mm = p->ctx->mm;
	struct rst_mm_map *m = &a->mm;
	size_t n = mm->n_auxv & ~(size_t)1;

	m->start_code = mm->start_code;
	m->end_code = mm->end_code;
	m->start_data = mm->start_data;
	m->end_data = mm->end_data;
	m->start_brk = mm->start_brk;
	m->brk = mm->brk;
	m->start_stack = mm->start_stack;
	m->arg_start = mm->arg_start;
	m->arg_end = mm->arg_end;
	m->env_start = mm->env_start;
	m->env_end = mm->env_end;
	memcpy((void *)m->auxv, mm->auxv, n * sizeof(uint64_t));
	m->auxv_size = (uint32_t)(n * sizeof(uint64_t));
	m->exe_fd = (uint32_t)-1;
	if (!mm->exe_path || !*mm->exe_path)
		return 0;
	int fd = open(mm->exe_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	/* /proc/PID/exe is set with a capability we only lend: never to a
	 * set-id program, which a user's process cannot be running. */
	if (fd >= 0 && p->ctx->unprivileged &&
	    (fstat(fd, &st) || (st.st_mode & (S_ISUID | S_ISGID)))) {
		pr_err("pid %d: exe %s is a set-id program: a user may not restore it", p->ctx->pid,
		       mm->exe_path);
		close(fd);
		return -EPERM;
	}
	if (fd >= 0)
		fd = fd_above_base(p, fd);
	if (fd < 0) {
		/* Not fatal: only /proc/PID/exe shows the wrong file. */
		pr_err("pid %d: exe %s: cannot open, /proc/%d/exe will be wrong", p->ctx->pid,
		       mm->exe_path, p->ctx->pid);
		return 0;
	}
	p->exe_fd = fd;
	m->exe_fd = (uint32_t)fd;
	return 0;
}

static int fill_creds(const struct plan *p, struct rst_creds *rc)
{
	const CredsEntry *ce = p->ctx->core->creds;
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[64];

	if (!ce)
		return 0;
	if (ce->n_groups > 64) {
		pr_err("pid %d: %zu supplementary groups, at most 64 supported", p->ctx->pid, ce->n_groups);
		return -E2BIG;
	}
	rc->uid = ce->uid, rc->euid = ce->euid, rc->suid = ce->suid, rc->fsuid = ce->fsuid;
	rc->gid = ce->gid, rc->egid = ce->egid, rc->sgid = ce->sgid, rc->fsgid = ce->fsgid;
	rc->nr_groups = (uint32_t)ce->n_groups;
	if (ce->n_groups)
		memcpy(rc->groups, ce->groups, ce->n_groups * sizeof(uint32_t));

	int ng = getgroups(64, groups);
	if (getresuid(&r, &e, &s) || getresgid(&rg, &eg, &sg) || ng < 0) {
		rc->set = 1;
		return 0;
	}
	rc->set = r != ce->uid || e != ce->euid || s != ce->suid ||
		  (uint32_t)setfsuid(-1) != ce->fsuid || rg != ce->gid || eg != ce->egid ||
		  sg != ce->sgid || (uint32_t)setfsgid(-1) != ce->fsgid ||
		  (size_t)ng != ce->n_groups ||
		  (ng && memcmp(groups, ce->groups, ng * sizeof(gid_t)));
	return 0;
}

static int copy_siginfo(const struct plan *p, struct rst_siginfo *dst, const SiginfoEntry *se)
{
	if (se->siginfo.len != sizeof(dst->raw)) {
		pr_err("pid %d: pending signal: siginfo of %zu bytes", p->ctx->pid, se->siginfo.len);
		return -EINVAL;
	}
	memcpy(dst->raw, se->siginfo.data, sizeof(dst->raw));
	return 0;
}

/*
 * Pending signals, but SIGSTOP: queued in the restorer, where every other
 * signal is blocked, it would stop the process there for good (zdtm
 * stopped01/02/12: their stopped child had one pending, and the restore
 * hung).  A process dumped stopped loses nothing without it (SIGCONT
 * flushes it); any other is sent SIGSTOP at its release, before it runs
 * any of its code (restore_finish_release), as the pending one would.
 */
static int copy_pending(const struct plan *p, struct rst_siginfo *dst, uint32_t *nr,
			SiginfoEntry *const *src, size_t n, int *sigstop)
{
	int ret;

	*nr = 0;
	for (size_t i = 0; i < n; i++) {
		int32_t signo = 0;
		if (src[i]->siginfo.len >= sizeof(signo))
			memcpy(&signo, src[i]->siginfo.data, sizeof(signo));
		if (signo == SIGSTOP) {
			*sigstop = 1;
			continue;
		}
		if ((ret = copy_siginfo(p, &dst[(*nr)++], src[i])))
			return ret;
	}
	return 0;
}

static int fill_thread(const struct plan *p, size_t i, struct rst_thread *t, int *sigstop)
{
	const ThreadCoreEntry *te = p->ctx->core->threads[i];
	uint64_t frame = p->area + p->frames_off + i * p->frame_stride;
	struct user_regs_struct regs;
	struct sigframe_altstack alt = { .flags = SS_DISABLE };
	int ret;

	if (te->gpregs.len != sizeof(regs)) {
		pr_err("pid %d: thread %u: gpregs of %zu bytes", p->ctx->pid, te->tid, te->gpregs.len);
		return -EINVAL;
	}
	memcpy(&regs, te->gpregs.data, sizeof(regs));
	if (te->has_altstack_sp || te->has_altstack_flags) {
		alt.sp = te->altstack_sp;
		alt.size = te->altstack_size;
		alt.flags = te->altstack_flags;
	}
	ret = sigframe_build((void *)frame, frame, &regs, te->xstate.data, te->xstate.len,
			     te->blocked, &alt, &t->sigreturn_rsp);
	if (ret) {
		pr_err("pid %d: thread %u: unusable xstate (%zu bytes)", p->ctx->pid, te->tid, te->xstate.len);
		return ret;
	}
	t->tid = (int32_t)te->tid;
	t->stack_top = p->area + p->stacks_off + MAIN_STACK + i * THREAD_STACK;
	t->fs_base = regs.fs_base;
	t->gs_base = regs.gs_base;
	t->clear_tid_addr = te->clear_tid_addr;
	t->robust_list = te->robust_list;
	t->robust_len = te->robust_len;
	if (te->has_rseq_addr && te->has_rseq_len && te->rseq_len) {
		t->rseq_addr = te->rseq_addr;
		t->rseq_len = te->rseq_len;
		t->rseq_sig = te->rseq_sig;
	}
	return copy_pending(p, t->pending, &t->nr_pending, te->pending, te->n_pending, sigstop);
}

/* Every fd >= fd_base goes at step 5, but the notify fd (the restorer
 * closes it last) and the exe fd (closed after the mm map). */
static int fill_close_fds(const struct plan *p, struct rst_args *a)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int ret = 0;

	if (!d) {
		pr_err("/proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd < p->ctx->fd_base || fd == dirfd(d) ||
		    fd == p->ctx->notify_fd || fd == p->exe_fd || (a->nr_lazy && fd == a->lazy_fd))
			continue;
		if (a->nr_close_fds == p->fd_cap) {
			pr_err("pid %d: more fds opened than planned", p->ctx->pid);
			ret = -EMFILE;
			break;
		}
		a->close_fds[a->nr_close_fds++] = fd;
	}
	closedir(d);
	return ret;
}

static int fill_args(struct plan *p, struct rst_args **out)
{
	const CoreEntry *core = p->ctx->core;
	struct carve c = { .base = (uint8_t *)(p->area + p->args_off) };
	struct rst_args *a;
	int ret, sigstop = 0;

	carve_args(p, &c, &a);
	a->magic = RST_MAGIC;
	a->area_start = p->area;
	a->area_len = p->area_len;
	a->main_stack = p->area + p->stacks_off + MAIN_STACK;
	fill_vmas(p, a);
	fill_unmap(p, a);
	if ((ret = fill_mm(p, a)) || (ret = fill_creds(p, &a->creds)))
		return ret;
	a->pdeathsig = core->pdeathsig;
	if ((ret = copy_pending(p, a->shared_pending, &a->nr_shared_pending, core->shared_pending,
				core->n_shared_pending, &sigstop)))
		return ret;
	for (size_t i = 0; i < core->n_threads; i++)
		if ((ret = fill_thread(p, i, &a->threads[i], &sigstop)))
			return ret;
	if ((ret = restore_fill_task_state(core, a, p->ctx->pid, p->ctx->unprivileged,
					   p->ctx->inherited_seccomp)))
		return ret;
	if (sigstop && !a->stopped)
		a->stopped = SIGSTOP; /* sent at the release (copy_pending) */
	a->notify_fd = p->ctx->notify_fd;
	a->lazy_fd = a->nr_lazy ? p->ctx->lazy_fd : -1;
	a->nr_threads = (int32_t)core->n_threads;
	a->threads_left = a->nr_threads;
	/* A shared table: the others may still be using the fds above
	 * fd_base (the notify fd, their exe fd); the driver closes them. */
	a->shared_fdt_from = p->ctx->shared_fdt ? p->ctx->fd_base : 0;
	if (!p->ctx->shared_fdt && (ret = fill_close_fds(p, a)))
		return ret;
	*out = a;
	return 0;
}

/* prctl(PR_SET_THP_DISABLE): a flag of the mm, which the restorer keeps. */
static int set_thp_disable(const struct plan *p)
{
	if (!p->ctx->mm->has_thp_disabled || !p->ctx->mm->thp_disabled)
		return 0;
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) {
		pr_err("pid %d: PR_SET_THP_DISABLE: %s", p->ctx->pid, strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- the jump ---- */

/* The dumped root, last of all that reads /proc (zdtm chroot: with the
 * root first, the cwd and the /proc/self files were looked up inside it). */
static int enter_root(const struct plan *p)
{
	const char *root = p->ctx->root;

	if (!root || !strcmp(root, "/") || !chroot(root))
		return 0;
	pr_err("pid %d: chroot %s: %s", p->ctx->pid, root, strerror(errno));
	return -errno;
}

/* glibc registered rseq at its TLS: once the restorer unmaps that, the
 * kernel must not write there any more. */
static int unregister_rseq(const struct plan *p)
{
	uint64_t tp;
	long ret = 0;

	if (!__rseq_size)
		return 0;
	asm volatile("mov %%fs:0, %0" : "=r"(tp));
	void *area = (void *)(tp + __rseq_offset);
	ret = syscall(__NR_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (ret && errno == EINVAL && __rseq_size != 32)
		ret = syscall(__NR_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (ret && errno != EINVAL) { /* EINVAL: not registered (here) */
		pr_err("pid %d: rseq unregister: %s", p->ctx->pid, strerror(errno));
		return -errno;
	}
	return 0;
}

__attribute__((noreturn)) static void jump(uint64_t entry, uint64_t stack, struct rst_args *a)
{
	asm volatile("mov %0, %%rsp\n\t"
		     "xor %%ebp, %%ebp\n\t"
		     "jmp *%1"
		     :
		     : "r"(stack), "r"(entry), "D"(a)
		     : "memory");
	__builtin_unreachable();
}

static void undo(struct plan *p)
{
	if (p->exe_fd >= 0)
		close(p->exe_fd);
	if (p->area)
		munmap((void *)p->area, p->area_len);
	free(p->slots);
}

struct restore_mem_plan {
	struct plan p;
};

int restore_mem_prepare(const struct restore_mem_ctx *ctx, struct restore_mem_plan **out)
{
	struct restore_mem_plan *rp = calloc(1, sizeof(*rp));
	struct plan *p = &rp->p;
	int ret;

	if (!rp)
		return -ENOMEM;
	*p = (struct plan){ .ctx = ctx, .exe_fd = -1 };
	count_pages(p);
	if ((ret = collect_slots(p)) || (ret = check_chunks(p)) || (mark_lazy(p), 0) ||
	    (ret = match_specials(p)) ||
	    (ret = layout(p)) || (ret = map_area(p)) || (ret = premap_some(p, 0)) ||
	    (ret = load_pages(p, 0)) || (ret = zap_uncovered(p))) {
		undo(p);
		free(rp);
		return ret;
	}
	/* what the children this process forks next inherit */
	parent_plan = p;
	*out = rp;
	return 0;
}

int restore_mem_jump(struct restore_mem_plan *rp)
{
	struct plan *p = &rp->p;
	struct rst_args *a = NULL;
	int ret;

	if ((ret = premap_some(p, 1)) || (ret = load_pages(p, 1)) || (ret = install_guards(p)) ||
	    (ret = lock_slots(p)) ||
	    (ret = set_thp_disable(p)) || (ret = fill_args(p, &a)) || (ret = unregister_rseq(p)) ||
	    (ret = enter_root(p))) {
		undo(p);
		return ret;
	}
	/* No malloc, no mmap from here on: the unmap list is final. */
	jump(p->area + restorer_off_main, a->main_stack, a);
}
