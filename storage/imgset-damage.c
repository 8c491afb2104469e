/*
 * imgset-damage: when the check of a set at open (imgset.c: every file's
 * size and crc against the manifest) finds a bad file, say where in the
 * file the damage is, so that a flipped bit or a cut is reported by entry
 * and not only by file:
 *   message images   walked by img_damage() (the crc of each entry)
 *   page data        the chunk table of the matching pagemap image (each
 *                    chunk has its crc), then the header
 * Only runs on the error path; it prints the one line of the failure.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Larger message images are not loaded just to explain an error. */
#define EXPLAIN_MAX (256ull << 20)

static int explain_message(int fd, uint64_t size, char *why, size_t len)
{
	uint8_t *data;
	int found = 0;

	if (size > EXPLAIN_MAX || !(data = malloc(size + 1)))
		return 0;
	if (!pread_full(fd, data, size, 0))
		found = img_damage(data, size, why, len);
	free(data);
	return found;
}

/* The first chunk whose stored bytes do not match its crc (or are cut). */
static int explain_chunks(int fd, uint64_t size, const struct page_chunk *c, size_t nr,
			  char *why, size_t len)
{
	uint8_t *buf = NULL;
	int found = 0;

	for (size_t i = 0; i < nr && !found; i++) {
		if (c[i].in_parent)
			continue;
		/* chunks sharing a block (the one before checked it) */
		if (i && c[i].offset == c[i - 1].offset && c[i].comp_len == c[i - 1].comp_len &&
		    c[i].crc == c[i - 1].crc && !c[i - 1].in_parent)
			continue;
		if (c[i].offset > size || c[i].comp_len > size - c[i].offset) {
			snprintf(why, len, "chunk %zu (0x%llx, offset %llu): cut off", i,
				 (unsigned long long)c[i].vaddr, (unsigned long long)c[i].offset);
			found = 1;
			break;
		}
		uint8_t *nb = realloc(buf, c[i].comp_len + 1);
		if (!nb)
			break;
		buf = nb;
		if (pread_full(fd, buf, c[i].comp_len, c[i].offset))
			break;
		if (crc32c(0, buf, c[i].comp_len) != c[i].crc) {
			snprintf(why, len, "chunk %zu (0x%llx, offset %llu): checksum mismatch", i,
				 (unsigned long long)c[i].vaddr, (unsigned long long)c[i].offset);
			found = 1;
		}
	}
	free(buf);
	return found;
}

/* The file `name` of the set has the size and crc the manifest lists. */
static int file_matches(struct img_set *set, const char *name)
{
	const struct set_file *f = set_find(set, name);
	int fd = f ? openat(set->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	uint8_t *buf = malloc(1u << 20);
	uint64_t off = 0;
	uint32_t crc = 0;
	struct stat st;
	int ok = fd >= 0 && buf && !fstat(fd, &st) && (uint64_t)st.st_size == f->size;

	while (ok && off < f->size) {
		size_t n = f->size - off < (1u << 20) ? f->size - off : (1u << 20);
		ok = !pread_full(fd, buf, n, off);
		crc = crc32c(crc, buf, n);
		off += n;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok && crc == f->crc;
}

static int explain_pages(struct img_set *set, const char *name, int fd, uint64_t size,
			 char *why, size_t len)
{
	uint8_t hdr[IMG_HEADER_SIZE];
	struct page_chunk *chunks;
	char map[PATH_MAX];
	size_t nr;
	int found;

	if (size < IMG_HEADER_SIZE || pread_full(fd, hdr, IMG_HEADER_SIZE, 0) ||
	    memcmp(hdr, IMG_MAGIC, 8) || get_le32(hdr + 8) != IMG_FORMAT_VERSION ||
	    get_le32(hdr + 12) != IMG_PAGES)
		return snprintf(why, len, "header damaged"), 1;
	/* Only a pagemap that matches the manifest is read: a damaged one
	 * would print its own error, a second line. */
	if (pagemap_name_of(name, map, sizeof(map)) || !file_matches(set, map))
		return 0;
	int ret = pagemap_read(set, map, 0, &chunks, &nr);
	if (ret)
		return 0;
	found = explain_chunks(fd, size, chunks, nr, why, len);
	page_chunks_free(chunks, nr);
	return found;
}

void set_explain_damage(struct img_set *set, const char *name, int fd, uint64_t size,
			const char *what)
{
	char why[200];
	int found;

	if (!strncmp(name, "pages-", 6))
		found = explain_pages(set, name, fd, size, why, sizeof(why));
	else
		found = explain_message(fd, size, why, sizeof(why));
	if (found && what)
		st_err("%s/%s: %s: %s", set->dir, name, what, why);
	else if (found)
		st_err("%s/%s: %s", set->dir, name, why);
	else
		st_err("%s/%s: %s", set->dir, name, what ? what : "checksum mismatch");
}
