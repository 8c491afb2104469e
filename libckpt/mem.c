/*
 * mem: dump of one process's memory.  Every VMA of /proc/PID/maps becomes
 * a vma_entry; which pages are stored depends on its kind:
 *   anonymous private   present or swapped pages
 *   file private        pages COWed away from the file (present, not
 *                       file-backed, per pagemap bit 61) or swapped
 *   anonymous shared    the shmem object, once for the tree (shmem.c)
 *   System V shm        the segment, once for the tree (shmem.c)
 *   unlinked tmpfs file the file, once for the tree (shmem.c), when
 *     mapped shared     no fd holds it (else memfd.c's ghost file has it)
 *   file shared         nothing: the file has the data
 *   vdso/vvar/vsyscall  nothing: the kernel provides them
 *   AIO ring            its bytes and head/tail, in the vma_entry (aio.c)
 * Runs of such pages go to the page writer, which drops zero pages and
 * compresses the rest on all cores.  The madvise/mlock state of each VMA
 * (VmFlags of smaps) goes with it, as vma_entry.advice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aio.h"
#include "arena.h"
#include "log.h"
#include "mem.h"
#include "pagemap-scan.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "proc.h"
#include "shmem.h"
#include "track.h"
#include "sk-packet.h"

#define PAGE_SIZE ((uint64_t)4096)
#define PME_PRESENT (1ULL << 63)
#define PME_SWAP (1ULL << 62)
#define PME_FILE (1ULL << 61)
#define PAGEMAP_BATCH 65536

/* Runs of pages to store, found in the task's pagemap while it is frozen
 * and read afterwards, from the task or from its snapshot (snapshot.c). */
struct page_run_list {
	struct mem_run {
		uint64_t vaddr;
		uint32_t pages, flags;
	} *v;
	size_t n, cap;
};

struct vma_list {
	struct arena *a;
	pid_t pid;
	VmaEntry **v;
	size_t n, cap;
	int err;
	const VmaEntry *uffd_missing; /* the first VMA with "um" in VmFlags */
};

static VmaKind special_kind(const char *path, int *is_special)
{
	*is_special = 1;
	if (!strcmp(path, "[vdso]"))
		return VMA_KIND__VMA_VDSO;
	if (!strcmp(path, "[vvar]"))
		return VMA_KIND__VMA_VVAR;
	if (!strcmp(path, "[vvar_vclock]"))
		return VMA_KIND__VMA_VVAR_VCLOCK;
	if (!strcmp(path, "[vsyscall]"))
		return VMA_KIND__VMA_VSYSCALL;
	*is_special = 0;
	return 0;
}

/* An fd of the task on the (unlinked) file st, or -1.  Such files (memfds,
 * ghost files) are recreated by their file kind (memfd.c) and installed
 * before memory is restored, so the mapping reopens /proc/self/fd/N. */
static int fd_on_file(pid_t pid, const struct stat *st)
{
	char path[300];
	struct stat fst;
	struct dirent *de;
	int found = -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *dir = opendir(path);
	while (dir && found < 0 && (de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		if (de->d_name[0] != '.' && !stat(path, &fst) && fst.st_dev == st->st_dev &&
		    fst.st_ino == st->st_ino)
			found = atoi(de->d_name);
	}
	if (dir)
		closedir(dir);
	return found;
}

/* Is `path`, taken as it is, the file `st`?  A name may really end in
 * " (deleted)"; one that was removed is not there. */
static int is_at(const char *path, const struct stat *st)
{
	struct stat now;
	return !lstat(path, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* A mapping of an unlinked regular file no fd holds (POSIX shm after
 * shm_unlink, a file mapped, closed and removed): the file is stored once
 * as a shared memory object (shmem.c), made again and removed at restore;
 * a shared mapping maps that object, so that processes sharing it still
 * share it, and a private one maps the file (its own changes are pages
 * of the VMA, as for any private file mapping). */
static int fill_shmem_file_vma(struct vma_list *l, VmaEntry *e, const char *path,
			       const struct stat *st, int shared)
{
	size_t n = strlen(path) - strlen(" (deleted)");
	e->kind = shared ? VMA_KIND__VMA_SHMEM_FILE : VMA_KIND__VMA_FILE_PRIVATE;
	e->flags = shared ? MAP_SHARED : MAP_PRIVATE;
	e->has_shmid = e->has_dev = e->has_ino = 1;
	e->shmid = e->ino = st->st_ino;
	e->dev = st->st_dev;
	/* Not checked (the object is the file): a reader that knows no
	 * object for a private mapping would check another file found at
	 * the path, and refuse it. */
	e->has_file_size = e->has_mtime_ns = 1;
	e->file_size = (uint64_t)st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	e->path = arena_alloc(l->a, n + 1);
	if (!e->path)
		return -ENOMEM;
	memcpy(e->path, path, n);
	e->path[n] = 0;
	return 0;
}

/* Shared anonymous memory mapped privately through an fd (map_files)
 * since closed: no file of that name to make again; the object is the
 * anonymous one (shmem.c), made as a file for this mapping. */
static int fill_anon_private_vma(VmaEntry *e, const struct stat *st)
{
	e->kind = VMA_KIND__VMA_FILE_PRIVATE;
	e->flags = MAP_PRIVATE;
	e->has_shmid = e->has_shmem_anon = e->shmem_anon = 1;
	e->shmid = st->st_ino;
	e->path = "/dev/zero"; /* for messages: nothing is opened by it */
	return 0;
}

/* Fill the file fields of a file-backed VMA; refuse what cannot be
 * reopened by path. */
static int fill_file_vma(struct vma_list *l, VmaEntry *e, const char *path, int shared)
{
	char link[64], fdpath[64];
	struct stat st;
	int deleted = strstr(path, " (deleted)") != NULL;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, l->pid, e->start,
		 e->end);
	if (stat(link, &st)) {
		pr_err("pid %d: mapping of %s: %s", l->pid, path, strerror(errno));
		return -errno;
	}
	deleted = deleted && !is_at(path, &st);
	if (deleted) {
		int fd = S_ISREG(st.st_mode) ? fd_on_file(l->pid, &st) : -1;
		if (fd < 0 && !strcmp(path, "/dev/zero (deleted)") && S_ISREG(st.st_mode) &&
		    st.st_nlink == 0)
			return fill_anon_private_vma(e, &st);
		if (fd < 0 && S_ISREG(st.st_mode) && st.st_nlink == 0)
			return fill_shmem_file_vma(l, e, path, &st, shared);
		if (fd < 0) {
			pr_err("pid %d: mapping %" PRIx64 "-%" PRIx64 " of %s: unlinked files are "
			       "supported only while the process has them open",
			       l->pid, e->start, e->end, path);
			return -ENOTSUP;
		}
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
		path = fdpath;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("pid %d: mapping %" PRIx64 "-%" PRIx64 " of %s: only regular files are supported",
		       l->pid, e->start, e->end, path);
		return -ENOTSUP;
	}
	e->path = arena_strdup(l->a, path);
	e->has_dev = e->has_ino = e->has_file_size = e->has_mtime_ns = e->has_open_flags = 1;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->file_size = (uint64_t)st.st_size;
	e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	e->has_mtime_ns = !deleted; /* recreated on restore: a new mtime */
	e->open_flags = (shared && (e->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
	e->kind = shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	e->flags = shared ? MAP_SHARED : MAP_PRIVATE;
	return e->path ? 0 : -ENOMEM;
}

/* A mapping of a socket: the rings of a packet socket (PACKET_RX_RING,
 * PACKET_TX_RING) that the task holds at an fd.  Restored as a mapping of
 * that fd (/proc/self/fd/N: restore-mem.c maps a duplicate of it, once
 * the fds are in place, where the packet socket's ring is made again). */
static int fill_socket_vma(struct vma_list *l, VmaEntry *e, const char *path, int shared)
{
	char link[64], fdpath[64];
	struct stat st;
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, l->pid, e->start,
		 e->end);
	if (stat(link, &st)) {
		pr_err("pid %d: mapping of %s: %s", l->pid, path, strerror(errno));
		return -errno;
	}
	int fd = fd_on_file(l->pid, &st);
	if (fd < 0) {
		pr_err("pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s): a socket's mapping is "
		       "supported only while the process holds the socket at an fd",
		       l->pid, e->start, e->end, path);
		return -ENOTSUP;
	}
	int ret = packet_map_check(l->pid, fd, st.st_ino, e->pgoff, e->end - e->start);
	if (ret)
		return ret;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	e->path = arena_strdup(l->a, fdpath);
	e->has_dev = e->has_ino = e->has_open_flags = 1;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->open_flags = O_RDWR;
	e->kind = shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	e->flags = shared ? MAP_SHARED : MAP_PRIVATE;
	return e->path ? 0 : -ENOMEM;
}

/* "/SYSV%08x (deleted)": an attached System V shm segment. */
static int is_sysv_shm(const char *path)
{
	size_t n = strlen(path);
	return !strncmp(path, "/SYSV", 5) && n == 5 + 8 + 10 && !strcmp(path + 13, " (deleted)") &&
	       strspn(path + 5, "0123456789abcdef") == 8;
}

/* "/[aio] (deleted)", shared: an io_setup ring (aio.c), or a removed
 * file of that name, a file mapping like any other. */
static int fill_aio_vma(struct vma_list *l, VmaEntry *e, const char *path)
{
	uint64_t len = e->end - e->start;
	if (!aio_is_ring(l->pid, e))
		return fill_file_vma(l, e, path, 1);
	if (len > AIO_RING_MAX) {
		pr_err("pid %d: AIO ring at %" PRIx64 "-%" PRIx64 ": larger than %u bytes: not "
		       "supported",
		       l->pid, e->start, e->end, AIO_RING_MAX);
		return -ENOTSUP;
	}
	AioRingEntry *ae = arena_alloc(l->a, sizeof(*ae));
	uint8_t *buf = arena_alloc(l->a, len);
	if (!ae || !buf)
		return -ENOMEM;
	aio_ring_entry__init(ae);
	return aio_ring_dump(l->pid, e, ae, buf);
}

static int classify_vma(struct vma_list *l, VmaEntry *e, const char *perms, uint64_t ino,
			const char *path)
{
	int shared = perms[3] == 's', special;

	e->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	e->kind = special_kind(path, &special);
	if (special) {
		e->flags = MAP_PRIVATE | MAP_ANONYMOUS;
		return 0;
	}
	if (path[0] == '/' && !strcmp(path, "/dev/zero (deleted)") && shared) {
		e->kind = VMA_KIND__VMA_ANON_SHARED;
		e->flags = MAP_SHARED | MAP_ANONYMOUS;
		e->has_shmid = 1;
		e->shmid = ino;
		return 0;
	}
	if (shared && is_sysv_shm(path)) {
		e->kind = VMA_KIND__VMA_SYSV_SHM;
		e->flags = MAP_SHARED;
		e->has_shmid = 1;
		e->shmid = ino; /* the segment id */
		return 0;
	}
	if (shared && !strcmp(path, "/[aio] (deleted)"))
		return fill_aio_vma(l, e, path);
	if (path[0] == '/')
		return fill_file_vma(l, e, path, shared);
	if (!strncmp(path, "socket:[", 8))
		return fill_socket_vma(l, e, path, shared);
	if (path[0] && path[0] != '[') {
		pr_err("pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s) is not supported", l->pid, e->start,
		       e->end, path);
		return -ENOTSUP;
	}
	if (shared) {
		pr_err("pid %d: shared mapping %" PRIx64 "-%" PRIx64 " %s is not supported", l->pid,
		       e->start, e->end, path);
		return -ENOTSUP;
	}
	e->kind = VMA_KIND__VMA_ANON_PRIVATE;
	e->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (path[0])
		e->name = arena_strdup(l->a, path);
	return 0;
}

static const struct {
	char name[3];
	uint32_t advice;
} vm_advice[] = {
	{ "dc", VMA_ADVICE__VMA_ADV_DONTFORK },	  { "wf", VMA_ADVICE__VMA_ADV_WIPEONFORK },
	{ "hg", VMA_ADVICE__VMA_ADV_HUGEPAGE },	  { "nh", VMA_ADVICE__VMA_ADV_NOHUGEPAGE },
	{ "lo", VMA_ADVICE__VMA_ADV_LOCKED },	  { "lf", VMA_ADVICE__VMA_ADV_LOCKONFAULT },
	{ "dd", VMA_ADVICE__VMA_ADV_DONTDUMP },	  { "sr", VMA_ADVICE__VMA_ADV_SEQUENTIAL },
	{ "rr", VMA_ADVICE__VMA_ADV_RANDOM },	  { "mg", VMA_ADVICE__VMA_ADV_MERGEABLE },
};

/* One two-letter flag of smaps' VmFlags into the entry; 1 for "um"
 * (userfaultfd missing-page tracking, which the dump refuses). */
static int apply_vmflag(VmaEntry *e, const char *f)
{
	if (!strncmp(f, "nr", 2))
		e->flags |= MAP_NORESERVE;
	if (!strncmp(f, "gd", 2))
		e->flags |= MAP_GROWSDOWN;
	/* may write: a shared file mapping that mprotect may make writable
	 * needs its file open for writing */
	if (!strncmp(f, "mw", 2) && e->kind == VMA_KIND__VMA_FILE_SHARED)
		e->open_flags = O_RDWR;
	/* droppable (Linux 6.11): a type of its own, not private */
	if (!strncmp(f, "dp", 2))
		e->flags = (e->flags & ~(uint32_t)MAP_TYPE) | VMA_MAP_DROPPABLE;
	for (size_t i = 0; i < sizeof(vm_advice) / sizeof(vm_advice[0]); i++)
		if (!strncmp(f, vm_advice[i].name, 2))
			e->advice |= vm_advice[i].advice;
	return !strncmp(f, "um", 2);
}

/* VmFlags of smaps: the mmap flags that maps does not show, and the
 * madvise/mlock state; 1 if it has "um". */
static int apply_vmflags(VmaEntry *e, const char *flags)
{
	int um = 0;
	for (const char *f = flags + strspn(flags, " "); *f; f += strspn(f, " ")) {
		size_t len = strcspn(f, " ");
		if (len == 2)
			um |= apply_vmflag(e, f);
		f += len;
	}
	e->has_advice = e->advice != 0;
	return um;
}

static int parse_maps_line(char *line, void *arg)
{
	struct vma_list *l = arg;
	uint64_t start, end, pgoff, ino;

	/* smaps: a maps-style header per VMA, then "Key: value" lines. */
	if (!strncmp(line, "VmFlags:", 8)) {
		const char *flags = line + 8 + strspn(line + 8, " ");
		if (l->n && apply_vmflags(l->v[l->n - 1], flags) && !l->uffd_missing)
			l->uffd_missing = l->v[l->n - 1];
		return 0;
	}
	if (!((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')))
		return 0;
	char perms[8], dev[16];
	int pos = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %15s %" SCNu64 " %n", &start, &end,
		   perms, &pgoff, dev, &ino, &pos) < 6) {
		pr_err("pid %d: cannot parse maps line '%s'", l->pid, line);
		return l->err = -EINVAL;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		VmaEntry **v = arena_alloc(l->a, cap * sizeof(*v));
		if (!v)
			return l->err = -ENOMEM;
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	VmaEntry *e = arena_alloc(l->a, sizeof(*e));
	if (!e)
		return l->err = -ENOMEM;
	vma_entry__init(e);
	e->start = start;
	e->end = end;
	e->pgoff = pgoff;
	int ret = classify_vma(l, e, perms, ino, pos ? line + pos : "");
	if (ret)
		return l->err = ret;
	l->v[l->n++] = e;
	return 0;
}

/* The mm_struct fields /proc/PID/stat shows to a ptracer (man 5 proc). */
static int dump_mm_fields(pid_t pid, MmEntry *mm)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	ssize_t n = read_small_file(AT_FDCWD, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	uint64_t f[53] = { 0 };
	int field = 3; /* p + 2 starts at field 3 (state) */
	char *save, *tok = strtok_r(p + 2, " ", &save);
	for (; tok && field <= 52; tok = strtok_r(NULL, " ", &save), field++)
		f[field] = strtoull(tok, NULL, 10);
	mm->start_code = f[26];
	mm->end_code = f[27];
	mm->start_stack = f[28];
	mm->start_data = f[45];
	mm->end_data = f[46];
	mm->start_brk = f[47];
	mm->arg_start = f[48];
	mm->arg_end = f[49];
	mm->env_start = f[50];
	mm->env_end = f[51];
	return 0;
}

static int dump_auxv(struct arena *a, pid_t pid, MmEntry *mm)
{
	char path[64];
	static uint64_t auxv[512];
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, auxv, sizeof(auxv));
	close(fd);
	if (n < 0)
		return -errno;
	mm->n_auxv = (size_t)n / sizeof(uint64_t);
	mm->auxv = arena_alloc(a, (size_t)n + 8);
	if (!mm->auxv)
		return -ENOMEM;
	memcpy(mm->auxv, auxv, (size_t)n);
	return 0;
}

static int page_wanted(const VmaEntry *e, uint64_t pme)
{
	if (pme & PME_SWAP)
		return 1;
	if (!(pme & PME_PRESENT))
		return 0;
	if (e->kind == VMA_KIND__VMA_FILE_PRIVATE)
		return !(pme & PME_FILE);
	return 1;
}

/* A droppable mapping's contents are the kernel's to drop at any time: a
 * program cannot count on them, and they are not stored (as CRIU). */
static int vma_has_contents(const VmaEntry *e)
{
	if ((e->flags & MAP_TYPE) == VMA_MAP_DROPPABLE)
		return 0;
	return e->kind == VMA_KIND__VMA_ANON_PRIVATE || e->kind == VMA_KIND__VMA_FILE_PRIVATE;
}

#define SCAN_REGIONS 512

static int scan_region_wanted(const VmaEntry *e, uint64_t cat)
{
	if (cat & PAGE_IS_SWAPPED)
		return 1;
	if (cat & PAGE_IS_PFNZERO)
		return 0; /* the shared zero page: a hole */
	if (e->kind == VMA_KIND__VMA_FILE_PRIVATE)
		return !(cat & PAGE_IS_FILE);
	return 1;
}

/* A zero page COWed away from a private file mapping is kept: as a hole
 * it would come back as the file's bytes. */
static int add_run(struct page_run_list *w, const VmaEntry *e, uint64_t vaddr, uint64_t pages)
{
	uint32_t flags = e->kind == VMA_KIND__VMA_FILE_PRIVATE ? PAGE_RUN_KEEP_ZERO : 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 1024;
		struct mem_run *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct mem_run){ vaddr, (uint32_t)pages, flags };
	return 0;
}

/* A kernel before 6.14 refuses PAGE_IS_GUARD in the return mask: then
 * there are no guard pages to see. */
static long scan_ioctl(int pagemap_fd, struct pm_scan_arg *arg)
{
	static int no_guard;
	arg->return_mask |= no_guard ? 0 : PAGE_IS_GUARD;
	long n = ioctl(pagemap_fd, PAGEMAP_SCAN_IOCTL, arg);
	if (n < 0 && errno == EINVAL && !no_guard) {
		no_guard = 1;
		arg->return_mask &= ~(uint64_t)PAGE_IS_GUARD;
		n = ioctl(pagemap_fd, PAGEMAP_SCAN_IOCTL, arg);
	}
	return n;
}

static void scan_arg(struct pm_scan_arg *arg, uint64_t start, uint64_t end,
		     struct page_region *regs, size_t nr, uint64_t anyof, uint64_t want)
{
	memset(arg, 0, sizeof(*arg));
	arg->size = sizeof(*arg);
	arg->start = start;
	arg->end = end;
	arg->vec = (uint64_t)(uintptr_t)regs;
	arg->vec_len = nr;
	arg->category_anyof_mask = anyof;
	arg->return_mask = want;
}

/* 1: done with PAGEMAP_SCAN; 0: not supported here; <0: error. */
static int scan_vma_pages(struct page_run_list *w, int pagemap_fd, pid_t pid, const VmaEntry *e)
{
	static struct page_region regs[SCAN_REGIONS];
	struct pm_scan_arg arg;
	uint64_t start = e->start;

	while (start < e->end) {
		scan_arg(&arg, start, e->end, regs, SCAN_REGIONS, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			 PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | PAGE_IS_PFNZERO);
		long n = scan_ioctl(pagemap_fd, &arg);
		if (n < 0 && (errno == ENOTTY || errno == EINVAL) && start == e->start)
			return 0;
		if (n < 0) {
			pr_err("pid %d: PAGEMAP_SCAN at %" PRIx64 ": %s", pid, start, strerror(errno));
			return -errno;
		}
		for (long i = 0; i < n; i++) {
			if (regs[i].categories & PAGE_IS_GUARD)
				continue; /* no data: read_guards records them */
			if (!scan_region_wanted(e, regs[i].categories))
				continue;
			uint64_t a = regs[i].start;
			while (a < regs[i].end) {
				uint64_t pages = (regs[i].end - a) / PAGE_SIZE;
				if (pages > UINT32_MAX / 2)
					pages = UINT32_MAX / 2;
				int ret = add_run(w, e, a, pages);
				if (ret)
					return ret;
				a += pages * PAGE_SIZE;
			}
		}
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return 1;
}

/* Walk pagemap for one VMA and queue runs of wanted pages. */
static int queue_vma_pages(struct page_run_list *w, int pagemap_fd, pid_t pid, const VmaEntry *e,
			   uint64_t *buf)
{
	uint64_t nr = (e->end - e->start) / PAGE_SIZE, run_start = 0, run_len = 0;
	int scanned = scan_vma_pages(w, pagemap_fd, pid, e);

	if (scanned)
		return scanned < 0 ? scanned : 0;
	for (uint64_t done = 0; done < nr;) {
		uint64_t batch = nr - done < PAGEMAP_BATCH ? nr - done : PAGEMAP_BATCH;
		off_t off = (off_t)((e->start / PAGE_SIZE + done) * 8);
		ssize_t n = pread(pagemap_fd, buf, batch * 8, off);
		if (n != (ssize_t)(batch * 8)) {
			pr_err("pid %d: pagemap at %" PRIx64 ": %s", pid, e->start + done * PAGE_SIZE,
			       n < 0 ? strerror(errno) : "short read");
			return n < 0 ? -errno : -EIO;
		}
		for (uint64_t i = 0; i < batch; i++) {
			uint64_t addr = e->start + (done + i) * PAGE_SIZE;
			if (page_wanted(e, buf[i])) {
				if (!run_len)
					run_start = addr;
				run_len++;
				continue;
			}
			if (run_len) {
				int ret = add_run(w, e, run_start, run_len);
				if (ret)
					return ret;
				run_len = 0;
			}
		}
		done += batch;
	}
	return run_len ? add_run(w, e, run_start, run_len) : 0;
}

/* Which pages to store, from the frozen task's pagemap. */
static int find_pages(pid_t pid, const MmEntry *mm, struct page_run_list *runs)
{
	char path[64];
	uint64_t *buf = malloc(PAGEMAP_BATCH * 8);
	int ret = 0, fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf) {
		ret = fd < 0 ? -errno : -ENOMEM;
		pr_err("pid %d: %s: %s", pid, path, strerror(-ret));
		free(buf);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	for (size_t i = 0; !ret && i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		if (!vma_has_contents(e))
			continue;
		/* /proc/PID/mem reads PROT_NONE pages too. */
		ret = queue_vma_pages(runs, fd, pid, e, buf);
	}
	close(fd);
	free(buf);
	return ret;
}

/* 1 if addr lies in one of the sorted ranges r (*until: its end), else 0
 * (*until: the next range's start, or UINT64_MAX). */
static int in_ranges(const struct track_range *r, size_t n, uint64_t addr, uint64_t *until)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && r[lo].start <= addr) {
		*until = r[lo].end;
		return 1;
	}
	*until = lo < n ? r[lo].start : UINT64_MAX;
	return 0;
}

/* A run, its pages in tracked mappings not written since the parent
 * marked PAGE_RUN_UNWRITTEN (the writer takes them from the parent). */
static int add_tracked_run(struct page_writer *w, const struct track_task *t,
			   const struct mem_run *run)
{
	uint64_t a = run->vaddr, end = run->vaddr + run->pages * PAGE_SIZE;
	int ret = 0;
	while (!ret && a < end) {
		uint64_t until, wuntil;
		uint32_t flags = run->flags;
		if (in_ranges(t->tracked, t->nr_tracked, a, &until) &&
		    !in_ranges(t->written, t->nr_written, a, &wuntil)) {
			flags |= PAGE_RUN_UNWRITTEN;
			until = wuntil < until ? wuntil : until;
		} else if (in_ranges(t->tracked, t->nr_tracked, a, &until)) {
			in_ranges(t->written, t->nr_written, a, &wuntil);
			until = wuntil < until ? wuntil : until;
		}
		until = until < end ? until : end;
		ret = page_writer_add_flags(w, a, (uint32_t)((until - a) / PAGE_SIZE), flags);
		a = until;
	}
	return ret;
}

/* The pages of `runs`, read from process `src` (the task, or its
 * snapshot), into pages-VPID.img. */
static int dump_pages(struct img_set *set, pid_t src, pid_t vpid, int threads,
		      const struct page_run_list *runs, const struct track_task *track,
		      struct mem_stats *st,
		      struct page_chunk **out, size_t *nr_out)
{
	char name[64];
	struct page_writer *w = NULL;
	int ret;

	snprintf(name, sizeof(name), "pages-%d.img", vpid);
	ret = page_writer_open(set, name, src, threads, &w);
	for (size_t i = 0; !ret && i < runs->n; i++)
		ret = track ? add_tracked_run(w, track, &runs->v[i])
			    : page_writer_add_flags(w, runs->v[i].vaddr, runs->v[i].pages,
						    runs->v[i].flags);
	if (ret) {
		page_writer_free(w);
		return ret;
	}
	st->unread_pages = page_writer_unread_pages(w);
	return page_writer_finish(w, out, nr_out, &st->bytes_in, &st->bytes_out);
}

static int write_images(struct img_set *set, pid_t pid, MmEntry *mm, const struct page_chunk *pm,
			size_t nr)
{
	char name[64];
	struct img *img;
	int ret;

	snprintf(name, sizeof(name), "mm-%d.img", pid);
	if ((ret = img_create(set, IMG_MM, name, &img)))
		return ret;
	ret = img_write(img, &mm->base);
	int cret = img_close_write(img);
	if (ret || cret)
		return ret ? ret : cret;

	snprintf(name, sizeof(name), "pagemap-%d.img", pid);
	return pagemap_write(set, name, pm, nr);
}

static int has_page_tables(const VmaEntry *e)
{
	return e->kind != VMA_KIND__VMA_VDSO && e->kind != VMA_KIND__VMA_VVAR &&
	       e->kind != VMA_KIND__VMA_VVAR_VCLOCK && e->kind != VMA_KIND__VMA_VSYSCALL;
}

static int add_guard(struct arena *a, VmaEntry *e, uint64_t start, uint64_t end)
{
	if (e->n_guards && e->guards[e->n_guards - 1]->end == start) {
		e->guards[e->n_guards - 1]->end = end;
		return 0;
	}
	/* the array doubles in the arena: guard runs are few */
	if (!(e->n_guards & (e->n_guards - 1))) {
		VmaGuardEntry **v = arena_alloc(a, (e->n_guards ? 2 * e->n_guards : 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (e->n_guards)
			memcpy(v, e->guards, e->n_guards * sizeof(*v));
		e->guards = v;
	}
	VmaGuardEntry *g = arena_alloc(a, sizeof(*g));
	if (!g)
		return -ENOMEM;
	vma_guard_entry__init(g);
	g->start = start;
	g->end = end;
	e->guards[e->n_guards++] = g;
	return 0;
}

/*
 * Guard pages (madvise MADV_GUARD_INSTALL, Linux 6.13) are markers in the
 * page tables that fault any access.  They hold no data and appear in no
 * /proc text, only to PAGEMAP_SCAN; they are recorded per VMA, and the
 * restore installs them again (mremap moves them with the page tables).
 * A kernel without PAGEMAP_SCAN or PAGE_IS_GUARD has none to record.
 */
static int read_vma_guards(struct arena *a, int pagemap_fd, pid_t pid, VmaEntry *e)
{
	struct page_region regs[64];
	struct pm_scan_arg arg;
	uint64_t start = e->start;

	while (start < e->end) {
		scan_arg(&arg, start, e->end, regs, sizeof(regs) / sizeof(regs[0]), PAGE_IS_GUARD,
			 PAGE_IS_GUARD);
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN_IOCTL, &arg);
		if (n < 0 && (errno == ENOTTY || errno == EINVAL))
			return 0;
		if (n < 0) {
			pr_err("pid %d: PAGEMAP_SCAN for guard pages at %" PRIx64 ": %s", pid, start,
			       strerror(errno));
			return -errno;
		}
		for (long i = 0; i < n; i++)
			if (add_guard(a, e, regs[i].start, regs[i].end))
				return -ENOMEM;
		if (arg.walk_end <= start)
			break;
		start = arg.walk_end;
	}
	return 0;
}

static int read_guards(struct arena *a, pid_t pid, MmEntry *mm)
{
	char path[64];
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("pid %d: %s: %s", pid, path, strerror(errno));
		return -errno;
	}
	for (size_t i = 0; !ret && i < mm->n_vmas; i++)
		if (has_page_tables(mm->vmas[i]))
			ret = read_vma_guards(a, fd, pid, mm->vmas[i]);
	close(fd);
	return ret;
}

static int read_vmas(struct arena *a, pid_t pid, MmEntry *mm, const VmaEntry **uffd_missing)
{
	struct vma_list l = { .a = a, .pid = pid };
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	int ret = proc_each_line(path, parse_maps_line, &l);
	if (ret < 0 && !l.err)
		pr_err("pid %d: %s: %s", pid, path, strerror(-ret));
	if (ret)
		return ret;
	*uffd_missing = l.uffd_missing;
	mm->vmas = l.v;
	mm->n_vmas = l.n;
	if ((ret = read_guards(a, pid, mm)))
		return ret;
	if ((ret = dump_mm_fields(pid, mm)))
		pr_err("pid %d: cannot read mm fields: %s", pid, strerror(-ret));
	return ret;
}

int mm_read_proc(struct arena *a, pid_t pid, MmEntry *mm)
{
	const VmaEntry *lazy;
	return read_vmas(a, pid, mm, &lazy);
}

/*
 * The dump's read: missing pages of a userfaultfd registration are not in
 * the process yet (a lazy restore's page server still filling it): neither
 * pagemap nor a read sees them, and the set would keep zeros.
 */
static int mm_read_dump(struct arena *a, pid_t pid, MmEntry *mm)
{
	const VmaEntry *lazy = NULL;
	int ret = read_vmas(a, pid, mm, &lazy);
	if (!ret && lazy) {
		pr_err("pid %d: memory at %" PRIx64 "-%" PRIx64 " is still being filled through a "
		       "userfaultfd (a lazy restore's page server): checkpoint it once all its "
		       "memory is in", pid, lazy->start, lazy->end);
		ret = -EBUSY;
	}
	return ret;
}

/* An srun step's own files (docs/mpi.md): the PMIx data store slurmstepd
 * keeps under the step's directory `dir`, gone with the step.  Mapped
 * shared, they are kept as unlinked files are (shmem.c) and made again as
 * memfds of the same name, shared by the step's tasks as before. */
static int keep_step_files(struct arena *a, MmEntry *mm, const char *dir)
{
	size_t len = strlen(dir);
	for (size_t i = 0; len > 1 && dir[len - 1] == '/' && i < mm->n_vmas; i++) {
		VmaEntry *e = mm->vmas[i];
		if (e->kind != VMA_KIND__VMA_FILE_SHARED || !e->path || strncmp(e->path, dir, len))
			continue;
		const char *base = strrchr(e->path, '/') + 1;
		char *name = arena_alloc(a, strlen(base) + sizeof("/memfd:"));
		if (!name)
			return -ENOMEM;
		sprintf(name, "/memfd:%s", base);
		e->path = name;
		e->kind = VMA_KIND__VMA_SHMEM_FILE;
		e->has_shmid = 1;
		e->shmid = e->ino;
	}
	return 0;
}

/* One task's memory dump between its frozen part and its pages. */
struct mm_dump {
	struct arena a;
	MmEntry mm;
	pid_t pid, vpid;
	int threads;
	struct page_run_list runs;
	const struct track_task *track; /* pages written since the parent, or NULL */
	char exe[PATH_MAX];
};

void mm_dump_set_track(struct mm_dump *d, const struct track_task *t)
{
	d->track = t;
}

void mm_dump_free(struct mm_dump *d)
{
	if (!d)
		return;
	arena_free(&d->a);
	free(d->runs.v);
	free(d);
}

/* What a fork does not carry into the snapshot as it is: a
 * MADV_DONTFORK mapping is not in the child, a MADV_WIPEONFORK one is
 * zero there.  NULL: the snapshot holds every page to store. */
const char *mm_dump_snapshot_gap(const struct mm_dump *d)
{
	for (size_t i = 0; i < d->mm.n_vmas; i++) {
		const VmaEntry *e = d->mm.vmas[i];
		if (!vma_has_contents(e))
			continue;
		if (e->advice & VMA_ADVICE__VMA_ADV_DONTFORK)
			return "a MADV_DONTFORK mapping";
		if (e->advice & VMA_ADVICE__VMA_ADV_WIPEONFORK)
			return "a MADV_WIPEONFORK mapping";
	}
	return NULL;
}

static int mm_dump_read(struct img_set *set, struct mm_dump *d, uint64_t brk,
			const char *step_dir, struct mem_stats *st)
{
	MmEntry *mm = &d->mm;
	pid_t pid = d->pid;
	int ret;

	if ((ret = mm_read_dump(&d->a, pid, mm)))
		return ret;
	if (step_dir && (ret = keep_step_files(&d->a, mm, step_dir)))
		return ret;
	mm->brk = brk;
	if ((ret = dump_auxv(&d->a, pid, mm))) {
		pr_err("pid %d: cannot read mm fields: %s", pid, strerror(-ret));
		return ret;
	}
	if ((ret = proc_readlink(pid, "exe", d->exe, sizeof(d->exe)))) {
		pr_err("pid %d: cannot read exe link: %s", pid, strerror(-ret));
		return ret;
	}
	mm->exe_path = d->exe;
	char thp[16];
	if (!proc_status_field(pid, "THP_enabled", thp, sizeof(thp)) && !strcmp(thp, "0"))
		mm->has_thp_disabled = mm->thp_disabled = 1;
	/* shared memory is no snapshot's: copied now */
	for (size_t i = 0; i < mm->n_vmas && !ret; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_ANON_SHARED ||
		    mm->vmas[i]->kind == VMA_KIND__VMA_SYSV_SHM ||
		    mm->vmas[i]->kind == VMA_KIND__VMA_SHMEM_FILE ||
		    (mm->vmas[i]->kind == VMA_KIND__VMA_FILE_PRIVATE && mm->vmas[i]->has_shmid))
			ret = dump_shm_vma(set, pid, mm->vmas[i], st);
	if (ret)
		return ret;
	for (size_t i = 0; i < mm->n_vmas && !ret; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_AIO_RING)
			ret = aio_ring_recheck(pid, mm->vmas[i]);
	return ret;
}

int dump_mm_start(struct img_set *set, pid_t pid, pid_t vpid, uint64_t brk, int threads,
		  const char *step_dir, struct mem_stats *st, struct mm_dump **out)
{
	struct mm_dump *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	mm_entry__init(&d->mm);
	d->pid = pid;
	d->vpid = vpid;
	d->threads = threads;
	int ret = mm_dump_read(set, d, brk, step_dir, st);
	if (ret) {
		mm_dump_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

/*
 * Which pages to store comes from the pagemap of the process read: a
 * snapshot's page tables are a copy of the task's as frozen (fork copies
 * every page table entry of a mapping that has anonymous pages, swap
 * entries and the zero page included; MADV_DONTFORK and MADV_WIPEONFORK
 * mappings are not read from a snapshot, mm_dump_snapshot_gap), so its
 * pagemap is the task's, read after the thaw instead of while frozen
 * (tens of ms per GiB).  Nothing in it moves but what the kernel may do
 * to any process (swap out, which is still wanted; khugepaged filling a
 * hole with zeros, which the writer drops again as zero pages).
 */
int dump_mm_pages(struct img_set *set, struct mm_dump *d, pid_t src, struct mem_stats *st)
{
	struct page_chunk *pm = NULL;
	size_t nr_pm = 0;
	src = src ? src : d->pid;
	int ret = find_pages(src, &d->mm, &d->runs);
	if (!ret)
		ret = dump_pages(set, src, d->vpid, d->threads, &d->runs, d->track, st, &pm,
				 &nr_pm);
	if (!ret)
		ret = write_images(set, d->vpid, &d->mm, pm, nr_pm);
	page_chunks_free(pm, nr_pm);
	mm_dump_free(d);
	return ret;
}

int dump_mm(struct img_set *set, pid_t pid, pid_t vpid, uint64_t brk, int threads,
	    const char *step_dir, struct mem_stats *st)
{
	struct mm_dump *d;
	int ret = dump_mm_start(set, pid, vpid, brk, threads, step_dir, st, &d);
	return ret ? ret : dump_mm_pages(set, d, 0, st);
}

/* maps, not smaps: what is refused depends on no VmFlags, and smaps walks
 * every page table of the process for its counters (milliseconds per GiB,
 * while the tree is frozen). */
int check_mm(pid_t pid)
{
	struct arena a = { 0 };
	struct vma_list l = { .a = &a, .pid = pid };
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int ret = proc_each_line(path, parse_maps_line, &l);
	if (ret < 0 && !l.err)
		pr_err("pid %d: %s: %s", pid, path, strerror(-ret));
	arena_free(&a);
	return ret;
}
