/*
 * pagemap: the chunk table of one process's pages ("pagemap-PID.img", one
 * pagemap_entry per chunk, see proto/pagemap.proto) to and from struct
 * page_chunk, and the page hashes an incremental dump compares against.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pagemap.pb-c.h"

int pagemap_name_of(const char *pages_name, char *out, size_t len)
{
	size_t n = strlen(pages_name);

	if (n <= 6 || strncmp(pages_name, "pages-", 6) ||
	    (size_t)snprintf(out, len, "pagemap-%s", pages_name + 6) >= len)
		return -EINVAL;
	return 0;
}

int pagemap_write(struct img_set *set, const char *name, const struct page_chunk *c, size_t nr)
{
	struct img *img = NULL;
	int ret = img_create(set, IMG_PAGEMAP, name, &img);

	for (size_t i = 0; !ret && i < nr; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		pe.vaddr = c[i].vaddr;
		pe.nr_pages = c[i].nr_pages;
		pe.offset = c[i].offset;
		pe.comp_len = c[i].comp_len;
		pe.raw = c[i].raw;
		pe.crc = c[i].crc;
		pe.has_in_parent = c[i].in_parent;
		pe.in_parent = c[i].in_parent;
		/* a chunk that is its own block says nothing more */
		if (c[i].block_pages && c[i].block_pages != c[i].nr_pages) {
			pe.has_block_pages = pe.has_block_skip = 1;
			pe.block_pages = c[i].block_pages;
			pe.block_skip = c[i].block_skip;
		}
		if (c[i].hashes) {
			pe.has_hashes = 1;
			pe.hashes.len = (size_t)c[i].nr_pages * 8;
			pe.hashes.data = (uint8_t *)c[i].hashes; /* x86-64: little endian */
		}
		ret = img_write(img, &pe.base);
	}
	if (!img)
		return ret;
	int cret = img_close_write(img);
	return ret ? ret : cret;
}

void pagemap_entry_block(const PagemapEntry *pe, struct page_chunk *c)
{
	c->block_pages = pe->has_block_pages ? pe->block_pages : 0;
	c->block_skip = pe->has_block_skip ? pe->block_skip : 0;
}

static int entry_to_chunk(const PagemapEntry *pe, struct page_chunk *c)
{
	*c = (struct page_chunk){
		.vaddr = pe->vaddr, .nr_pages = pe->nr_pages, .offset = pe->offset,
		.comp_len = pe->comp_len, .raw = pe->raw, .crc = pe->crc,
		.in_parent = pe->has_in_parent && pe->in_parent,
	};
	pagemap_entry_block(pe, c);
	/* Hashes of the wrong length are ignored: those pages are stored
	 * again by the next incremental dump. */
	if (!pe->has_hashes || pe->nr_pages > IMG_CHUNK_PAGES ||
	    pe->hashes.len != (size_t)pe->nr_pages * 8)
		return 0;
	c->hashes = malloc(pe->hashes.len);
	if (!c->hashes)
		return -ENOMEM;
	memcpy(c->hashes, pe->hashes.data, pe->hashes.len);
	return 0;
}

int pagemap_read(struct img_set *set, const char *name, int with_hashes,
		 struct page_chunk **out, size_t *nr_out)
{
	PagemapEntry **pe;
	struct page_chunk *c;
	size_t nr;
	int ret = img_read_all(set, IMG_PAGEMAP, name, &pagemap_entry__descriptor,
			       (ProtobufCMessage ***)&pe, &nr);

	if (ret)
		return ret;
	c = calloc(nr + 1, sizeof(*c));
	ret = c ? 0 : -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		if (!ret) {
			ret = entry_to_chunk(pe[i], &c[i]);
			if (!with_hashes) {
				free(c[i].hashes);
				c[i].hashes = NULL;
			}
		}
		protobuf_c_message_free_unpacked(&pe[i]->base, NULL);
	}
	free(pe);
	if (ret) {
		page_chunks_free(c, nr);
		return ret;
	}
	*out = c;
	*nr_out = nr;
	return 0;
}

void page_hashes_free(struct page_hashes *ph)
{
	free(ph->vaddr);
	free(ph->hash);
	memset(ph, 0, sizeof(*ph));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Pairs (vaddr, hash) sorted by vaddr, kept as two arrays for the lookup. */
static int hashes_fill(struct page_hashes *ph, const struct page_chunk *c, size_t nr)
{
	size_t pages = 0, k = 0;
	uint64_t *pairs;

	for (size_t i = 0; i < nr; i++)
		if (c[i].hashes && c[i].vaddr % PAGE_SIZE_ == 0)
			pages += c[i].nr_pages;
	pairs = malloc((pages + 1) * 16);
	ph->vaddr = malloc((pages + 1) * 8);
	ph->hash = malloc((pages + 1) * 8);
	if (!pairs || !ph->vaddr || !ph->hash) {
		free(pairs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nr; i++) {
		if (!c[i].hashes || c[i].vaddr % PAGE_SIZE_)
			continue;
		for (uint32_t p = 0; p < c[i].nr_pages; p++, k++) {
			pairs[2 * k] = c[i].vaddr + (uint64_t)p * PAGE_SIZE_;
			pairs[2 * k + 1] = c[i].hashes[p];
		}
	}
	qsort(pairs, pages, 16, cmp_u64);
	for (size_t i = 0; i < pages; i++) {
		ph->vaddr[i] = pairs[2 * i];
		ph->hash[i] = pairs[2 * i + 1];
	}
	ph->nr = pages;
	free(pairs);
	return 0;
}

int page_hashes_load(struct img_set *parent, const char *pages_name, struct page_hashes *out)
{
	char name[NAME_MAX + 1];
	struct page_chunk *c;
	size_t nr;
	int ret;

	memset(out, 0, sizeof(*out));
	if (pagemap_name_of(pages_name, name, sizeof(name)))
		return -EINVAL;
	if (!img_exists(parent, name))
		return 0; /* a process the parent did not have: everything is new */
	ret = pagemap_read(parent, name, 1, &c, &nr);
	if (ret)
		return ret;
	ret = hashes_fill(out, c, nr);
	page_chunks_free(c, nr);
	if (ret)
		page_hashes_free(out);
	return ret;
}
