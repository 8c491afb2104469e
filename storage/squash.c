/*
 * squash: an incremental set made self-contained (see storage.h).
 *
 * For each process, every page of the chain is read into one buffer (the
 * page reader resolves the parents) and written again with the ordinary
 * page writer, which reads it from our own memory: the buffer holds the
 * set's chunks one after another, and the chunks the writer returns are
 * mapped back from buffer offsets to the dumped addresses.  The other
 * files are copied as they are.  The new set is written in a sibling
 * directory, committed, and exchanged with the old one in one rename.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

struct squash_buf {
	const struct page_chunk *chunks; /* sorted by vaddr */
	size_t nr;
	uint64_t *first_page; /* chunk i starts at page first_page[i] of mem */
	uint8_t *mem;
	uint64_t pages;
};

/* The chunk holding `vaddr`, or -1. */
static ssize_t chunk_of(const struct squash_buf *b, uint64_t vaddr)
{
	size_t lo = 0, hi = b->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct page_chunk *c = &b->chunks[mid];
		if (vaddr < c->vaddr)
			hi = mid;
		else if (vaddr >= c->vaddr + (uint64_t)c->nr_pages * PAGE_SIZE_)
			lo = mid + 1;
		else
			return (ssize_t)mid;
	}
	return -1;
}

static void *squash_dest(void *ctx, uint64_t vaddr, size_t len)
{
	struct squash_buf *b = ctx;
	ssize_t i = chunk_of(b, vaddr);

	if (i < 0 || vaddr + len > b->chunks[i].vaddr + (uint64_t)b->chunks[i].nr_pages * PAGE_SIZE_)
		return NULL;
	return b->mem + (b->first_page[i] * PAGE_SIZE_ + (vaddr - b->chunks[i].vaddr));
}

static int cmp_vaddr(const void *a, const void *b)
{
	const struct page_chunk *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Buffer offsets back to dumped addresses. */
static int unmap_chunks(const struct squash_buf *b, struct page_chunk *out, size_t nr)
{
	for (size_t k = 0; k < nr; k++) {
		uint64_t off = out[k].vaddr - (uint64_t)(uintptr_t)b->mem;
		size_t lo = 0, hi = b->nr;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (b->first_page[mid] * PAGE_SIZE_ <= off)
				lo = mid;
			else
				hi = mid;
		}
		out[k].vaddr = b->chunks[lo].vaddr + (off - b->first_page[lo] * PAGE_SIZE_);
	}
	return 0;
}

static int rewrite_pages(struct squash_buf *b, struct img_set *to, const char *name,
			 const char *map)
{
	struct page_writer *w;
	struct page_chunk *out = NULL;
	size_t nr_out = 0;
	uint64_t in, stored;
	int ret = page_writer_open(to, name, getpid(), 0, &w);

	for (size_t i = 0; !ret && i < b->nr; i++)
		ret = page_writer_add(w, (uint64_t)(uintptr_t)b->mem + b->first_page[i] * PAGE_SIZE_,
				      b->chunks[i].nr_pages);
	if (ret) {
		if (w)
			page_writer_free(w);
		return ret;
	}
	if ((ret = page_writer_finish(w, &out, &nr_out, &in, &stored)))
		return ret;
	unmap_chunks(b, out, nr_out);
	if (nr_out)
		qsort(out, nr_out, sizeof(*out), cmp_vaddr);
	ret = pagemap_write(to, map, out, nr_out);
	page_chunks_free(out, nr_out);
	return ret;
}

static int squash_pages(struct img_set *from, struct img_set *to, const char *name)
{
	struct squash_buf b = { 0 };
	struct page_chunk *c;
	char map[NAME_MAX + 1];
	int ret;

	if ((ret = pagemap_name_of(name, map, sizeof(map))) ||
	    (ret = pagemap_read(from, map, 0, &c, &b.nr)))
		return ret;
	qsort(c, b.nr, sizeof(*c), cmp_vaddr);
	b.chunks = c;
	b.first_page = malloc((b.nr + 1) * sizeof(*b.first_page));
	for (size_t i = 0; b.first_page && i < b.nr; i++) {
		b.first_page[i] = b.pages;
		b.pages += c[i].nr_pages;
	}
	b.mem = b.first_page ? mmap(NULL, b.pages * PAGE_SIZE_ + PAGE_SIZE_, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
			     : MAP_FAILED;
	if (b.mem == MAP_FAILED) {
		ret = -ENOMEM;
		b.mem = NULL;
	}
	if (!ret && b.nr)
		ret = page_reader_load(from, name, c, b.nr, 0, squash_dest, &b);
	if (!ret)
		ret = rewrite_pages(&b, to, name, map);
	if (b.mem)
		munmap(b.mem, b.pages * PAGE_SIZE_ + PAGE_SIZE_);
	free(b.first_page);
	page_chunks_free(c, b.nr);
	return ret;
}

static int squash_files(struct img_set *from, struct img_set *to)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < from->nr_files; i++) {
		const struct set_file *f = &from->files[i];
		if (!strncmp(f->name, "pagemap-", 8))
			continue; /* written with its pages */
		if (!strncmp(f->name, "pages-", 6)) {
			ret = squash_pages(from, to, f->name);
			continue;
		}
		ret = set_track(to, f->name);
		if (!ret)
			ret = set_copy_file(from, to, f->name, f->size, f->name);
		if (!ret)
			set_track_done(to, f->name, f->size, f->crc);
	}
	return ret;
}

/* Every entry of a flat set directory (the old set, after the swap). */
static void empty_dir(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;

	if (!d)
		return;
	rewinddir(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

static int tmp_path(const char *dir, char *tmp, size_t len)
{
	const char *slash = strrchr(dir, '/');
	int n = slash ? snprintf(tmp, len, "%.*s/.%s.squash", (int)(slash - dir), dir, slash + 1)
		      : snprintf(tmp, len, ".%s.squash", dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int imgset_squash(const char *dir)
{
	char tmp[PATH_MAX];
	struct img_set *from, *to = NULL;
	int ret = img_set_open(dir, &from), swapped = 0;

	if (ret)
		return ret;
	if (!from->parent_path) {
		img_set_close(from);
		return 0; /* already self-contained */
	}
	ret = tmp_path(dir, tmp, sizeof(tmp));
	if (!ret)
		ret = img_set_create(tmp, &to);
	if (!ret) {
		to->owner_uid = from->owner_uid;
		ret = squash_files(from, to);
	}
	if (!ret)
		ret = img_set_commit(to, from->root_pid);
	if (!ret && renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE)) {
		ret = -errno;
		st_err("%s: swapping in the squashed set: %s", dir, strerror(-ret));
	}
	swapped = !ret;
	if (swapped) {
		/* The directory fds followed their directories: `from` is the
		 * old set, now at tmp. */
		empty_dir(from->dirfd);
	} else if (to) {
		img_set_abort(to);
	}
	img_set_close(from);
	img_set_close(to);
	if (to)
		rmdir(tmp);
	return ret;
}
