/*
 * fuzz-pages: the page reader behind a pagemap, as restore runs it.
 * Input: u32 length L, L bytes of a pagemap image, then the pages file.
 * The pagemap's entry and trailer crcs are made right; when the first
 * byte of the pages file part is odd, each chunk's crc is made right too
 * (when the chunk lies inside the file), so that the lz4 decoder gets
 * fuzzed.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "pagemap.pb-c.h"
#include "storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *scratch;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	scratch = malloc(IMG_CHUNK_PAGES * 4096);
	return scratch ? 0 : -1;
}

/* Every chunk lands in the one scratch buffer (one reader thread). */
static void *dest(void *ctx, uint64_t vaddr, size_t len)
{
	return len <= IMG_CHUNK_PAGES * 4096 ? scratch : NULL;
}

static void load(struct img_set *set, PagemapEntry **pm, size_t n, const uint8_t *pages,
		 size_t pages_len)
{
	struct page_chunk *c = calloc(n + 1, sizeof(*c));
	int fix = pages_len > IMG_HEADER_LEN && (pages[IMG_HEADER_LEN] & 1);

	if (!c)
		abort();
	for (size_t i = 0; i < n; i++) {
		c[i].vaddr = pm[i]->vaddr;
		c[i].nr_pages = pm[i]->nr_pages;
		c[i].offset = pm[i]->offset;
		c[i].comp_len = pm[i]->comp_len;
		c[i].raw = pm[i]->raw;
		c[i].crc = pm[i]->crc;
		pagemap_entry_block(pm[i], &c[i]);
		if (fix && c[i].offset <= pages_len && c[i].comp_len <= pages_len - c[i].offset)
			c[i].crc = crc32c(0, pages + c[i].offset, c[i].comp_len);
	}
	page_reader_load(set, "pages-1.img", c, n, 1, dest, NULL);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img_set *set;
	PagemapEntry **pm;
	uint32_t len;
	uint8_t *fixed;
	size_t n;

	if (size < 4)
		return 0;
	memcpy(&len, data, 4);
	if (len > size - 4)
		return 0;
	fixed = fuzz_fix_crcs(data + 4, len);
	fuzz_write("pagemap-1.img", fixed, len);
	free(fixed);
	fuzz_write("pages-1.img", data + 4 + len, size - 4 - len);
	if (img_set_open_raw(fuzz_dir(), &set))
		abort();
	if (!img_read_all(set, IMG_PAGEMAP, "pagemap-1.img", &pagemap_entry__descriptor,
			  (ProtobufCMessage ***)&pm, &n)) {
		load(set, pm, n, data + 4 + len, size - 4 - len);
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(&pm[i]->base, NULL);
		free(pm);
	}
	img_set_close(set);
	return 0;
}
