/*
 * Message images: a header, entries (length, crc32c of the payload,
 * protobuf payload), a trailer with the entry count and a crc32c of
 * everything before it (the layout is in storage.h).
 *
 * The writer packs entries into a small buffer and keeps a running crc;
 * closing it writes the trailer, fsyncs (or leaves that to the commit:
 * img_set_defer_sync) and records the file (size, crc)
 * in the set for the manifest.  The reader loads the whole file, checks
 * header, trailer and crc before handing out anything, then checks every
 * entry's bounds and crc as it goes: the file may have been crafted by
 * someone who wants the restorer (root) to misbehave.  When the whole-file
 * crc is wrong, img_damage() walks the entries to say which one is hurt:
 * the per-entry crcs exist so that a flipped bit is named by entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define WRITE_BUF_SIZE (64u << 10)

struct img {
	struct img_set *set;
	char *name;
	enum img_kind kind;
	int fd;
	int track; /* a file of the set (not the manifest itself) */

	/* write side */
	uint8_t *buf;
	size_t used;
	uint64_t written;
	uint32_t crc;
	uint32_t count;
	int err;

	/* read side: the whole file */
	uint8_t *data;
	size_t size;
	size_t pos;
	uint32_t entry;
	int at_end;
};

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* At least `need` of the `len` bytes at `off`: a read that may go past
 * the end of the file (O_DIRECT's aligned reads, pages-read.c). */
int pread_least(int fd, void *buf, size_t len, uint64_t off, size_t need)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < need) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return pread_least(fd, buf, len, off, len);
}

void img_header_fill(uint8_t hdr[IMG_HEADER_SIZE], enum img_kind kind)
{
	memcpy(hdr, IMG_MAGIC, 8);
	put_le32(hdr + 8, IMG_FORMAT_VERSION);
	put_le32(hdr + 12, kind);
}

int img_header_check(const struct img_set *set, const char *name, const uint8_t *hdr,
		     size_t len, enum img_kind kind)
{
	if (len < IMG_HEADER_SIZE || memcmp(hdr, IMG_MAGIC, 8)) {
		st_err("%s/%s: not an image file (bad magic)", set->dir, name);
		return -EINVAL;
	}
	if (get_le32(hdr + 8) != IMG_FORMAT_VERSION) {
		st_err("%s/%s: image format version %u, expected %u: %s", set->dir, name,
		       get_le32(hdr + 8), IMG_FORMAT_VERSION,
		       get_le32(hdr + 8) > IMG_FORMAT_VERSION
			       ? "written by a newer ckpt, read it with that version"
			       : "an older format this ckpt has no reader for");
		return -EINVAL;
	}
	if (get_le32(hdr + 12) != (uint32_t)kind) {
		st_err("%s/%s: image of kind %u, expected %u", set->dir, name, get_le32(hdr + 12),
		       (unsigned)kind);
		return -EINVAL;
	}
	return 0;
}

static void img_free(struct img *img)
{
	if (img->fd >= 0)
		close(img->fd);
	free(img->buf);
	free(img->data);
	free(img->name);
	free(img);
}

static struct img *img_alloc(struct img_set *set, enum img_kind kind, const char *name)
{
	struct img *img = calloc(1, sizeof(*img));

	if (!img)
		return NULL;
	img->fd = -1;
	img->set = set;
	img->kind = kind;
	img->name = strdup(name);
	if (!img->name) {
		free(img);
		return NULL;
	}
	return img;
}

static int img_flush(struct img *img)
{
	int ret;

	if (img->err || !img->used)
		return img->err;
	img->crc = crc32c(img->crc, img->buf, img->used);
	ret = write_full(img->fd, img->buf, img->used);
	if (ret) {
		st_err("%s/%s: write: %s", img->set->dir, img->name, strerror(-ret));
		img->err = ret;
		return ret;
	}
	img->written += img->used;
	img->used = 0;
	return 0;
}

int img_create_file(struct img_set *set, enum img_kind kind, const char *name, int track,
		    struct img **out)
{
	struct img *img;
	int ret;

	if (!set->writing || !set_valid_name(name))
		return -EINVAL;
	if (track) {
		ret = set_track(set, name);
		if (ret)
			return ret;
	}
	img = img_alloc(set, kind, name);
	if (!img || !(img->buf = malloc(WRITE_BUF_SIZE))) {
		if (img)
			img_free(img);
		return -ENOMEM;
	}
	img->track = track;
	img->fd = set_create_fd(set, name);
	if (img->fd < 0) {
		ret = img->fd;
		st_err("%s/%s: create: %s", set->dir, name, strerror(-ret));
		img_free(img);
		return ret;
	}
	img_header_fill(img->buf, kind);
	img->used = IMG_HEADER_SIZE;
	*out = img;
	return 0;
}

int img_create(struct img_set *set, enum img_kind kind, const char *name, struct img **out)
{
	if (!strcmp(name, MANIFEST_NAME) || !strcmp(name, MANIFEST_TMP))
		return -EINVAL;
	return img_create_file(set, kind, name, 1, out);
}

void img_entry_pack(uint8_t *dst, const ProtobufCMessage *msg, size_t len)
{
	protobuf_c_message_pack(msg, dst + IMG_ENTRY_HDR);
	put_le32(dst, len);
	put_le32(dst + 4, crc32c(0, dst + IMG_ENTRY_HDR, len));
}

/* An entry larger than the buffer: packed on its own. */
static int img_write_big(struct img *img, const ProtobufCMessage *msg, size_t len)
{
	uint8_t *tmp = malloc(len + IMG_ENTRY_HDR);
	int ret;

	if (!tmp)
		return img->err = -ENOMEM;
	img_entry_pack(tmp, msg, len);
	img->crc = crc32c(img->crc, tmp, len + IMG_ENTRY_HDR);
	ret = write_full(img->fd, tmp, len + IMG_ENTRY_HDR);
	free(tmp);
	if (ret) {
		st_err("%s/%s: write: %s", img->set->dir, img->name, strerror(-ret));
		return img->err = ret;
	}
	img->written += len + IMG_ENTRY_HDR;
	return 0;
}

int img_write(struct img *img, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	int ret;

	if (img->err)
		return img->err;
	if (len > IMG_MAX_ENTRY) {
		st_err("%s/%s: entry %u: %zu bytes, over the limit", img->set->dir, img->name,
		       img->count, len);
		return img->err = -EFBIG;
	}
	if (img->used + IMG_ENTRY_HDR + len > WRITE_BUF_SIZE && (ret = img_flush(img)))
		return ret;
	if (IMG_ENTRY_HDR + len > WRITE_BUF_SIZE) {
		ret = img_write_big(img, msg, len);
	} else {
		img_entry_pack(img->buf + img->used, msg, len);
		img->used += IMG_ENTRY_HDR + len;
		ret = 0;
	}
	if (!ret)
		img->count++;
	return ret;
}

/* Trailer, fsync; on success *size and *crc describe the whole file. */
static int img_finish_write(struct img *img, uint64_t *size, uint32_t *crc)
{
	int ret;

	if (img->err)
		return img->err;
	if (img->used + IMG_TRAILER_SIZE > WRITE_BUF_SIZE && (ret = img_flush(img)))
		return ret;
	put_le32(img->buf + img->used, IMG_TRAILER_MARK);
	put_le32(img->buf + img->used + 4, img->count);
	img->used += 8;
	img->crc = crc32c(img->crc, img->buf, img->used);
	put_le32(img->buf + img->used, img->crc);
	*crc = crc32c(img->crc, img->buf + img->used, 4);
	img->used += 4;
	ret = write_full(img->fd, img->buf, img->used);
	/* a tracked file's fsync may wait for the commit (img_set_defer_sync) */
	if (!ret && !(img->track && img->set->defer_sync) && fsync(img->fd))
		ret = -errno;
	if (ret) {
		st_err("%s/%s: write: %s", img->set->dir, img->name, strerror(-ret));
		return ret;
	}
	*size = img->written + img->used;
	return 0;
}

int img_close_write(struct img *img)
{
	uint64_t size = 0;
	uint32_t crc = 0;
	int ret = img_finish_write(img, &size, &crc);

	if (!ret && img->track)
		set_track_done(img->set, img->name, size, crc);
	img_free(img);
	return ret;
}

static int img_load(struct img *img)
{
	struct stat st;
	int ret;

	if (fstat(img->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		st_err("%s/%s: not a regular file", img->set->dir, img->name);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < IMG_HEADER_SIZE) {
		st_err("%s/%s: truncated: %lld bytes", img->set->dir, img->name,
		       (long long)st.st_size);
		return -EINVAL;
	}
	img->size = st.st_size;
	img->data = malloc(img->size);
	if (!img->data)
		return -ENOMEM;
	ret = pread_full(img->fd, img->data, img->size, 0);
	if (ret) {
		st_err("%s/%s: read: %s", img->set->dir, img->name, strerror(-ret));
		return ret;
	}
	return 0;
}

static int is_message_kind(uint32_t kind)
{
	return kind >= IMG_INVENTORY && kind <= IMG_CGROUP && kind != IMG_PAGES;
}

/* The end of a walk that found no entry: the file stops at `pos`. */
static void damage_end(const uint8_t *d, size_t size, size_t pos, uint32_t n, char *why,
		       size_t len)
{
	int mark = 1;

	for (size_t i = pos; i < size; i++)
		mark &= d[i] == 0xff;
	if (pos < size && mark) /* the mark, or a length starting with 0xff */
		snprintf(why, len, "entry %u or the trailer: truncated", n);
	else if (pos < size)
		snprintf(why, len, "entry %u: truncated", n);
	else if (n)
		snprintf(why, len, "truncated after entry %u: no trailer", n - 1);
	else
		snprintf(why, len, "truncated before entry 0: no trailer");
}

/* The trailer at `pos` after `n` good entries. */
static int damage_trailer(const uint8_t *d, size_t size, size_t pos, uint32_t n, char *why,
			  size_t len)
{
	if (size - pos < IMG_TRAILER_SIZE)
		return snprintf(why, len, "trailer truncated"), 1;
	if (size - pos > IMG_TRAILER_SIZE)
		return snprintf(why, len, "%zu bytes after the trailer of entry %u",
				size - pos - IMG_TRAILER_SIZE, n), 1;
	if (get_le32(d + pos + 4) != n)
		return snprintf(why, len, "trailer damaged: it says %u entries, the file holds %u",
				get_le32(d + pos + 4), n), 1;
	if (crc32c(0, d, size - 4) != get_le32(d + size - 4))
		return snprintf(why, len, "header or trailer damaged: checksum mismatch"), 1;
	return 0;
}

int img_damage(const uint8_t *d, size_t size, char *why, size_t len)
{
	size_t pos = IMG_HEADER_SIZE;
	uint32_t n;

	if (size < IMG_HEADER_SIZE || memcmp(d, IMG_MAGIC, 8) ||
	    get_le32(d + 8) != IMG_FORMAT_VERSION || !is_message_kind(get_le32(d + 12)))
		return snprintf(why, len, "header damaged"), 1;
	for (n = 0;; n++) {
		uint32_t l;

		if (size - pos < 4)
			return damage_end(d, size, pos, n, why, len), 1;
		l = get_le32(d + pos);
		if (l == IMG_TRAILER_MARK)
			break;
		if (l > IMG_MAX_ENTRY && size - pos == IMG_TRAILER_SIZE)
			return snprintf(why, len, "trailer damaged (its mark)"), 1;
		if (l > IMG_MAX_ENTRY)
			return snprintf(why, len, "entry %u: length %u damaged (over the limit)", n,
					l), 1;
		if (size - pos < IMG_ENTRY_HDR || size - pos - IMG_ENTRY_HDR < l)
			return snprintf(why, len,
					"entry %u: length %u runs past the end of the file "
					"(truncated or damaged)", n, l), 1;
		if (crc32c(0, d + pos + IMG_ENTRY_HDR, l) != get_le32(d + pos + 4))
			return snprintf(why, len, "entry %u: checksum mismatch", n), 1;
		pos += IMG_ENTRY_HDR + l;
	}
	return damage_trailer(d, size, pos, n, why, len);
}

static int img_check_whole(struct img *img)
{
	const uint8_t *d = img->data;
	char why[160];
	int ret = img_header_check(img->set, img->name, d, img->size, img->kind);

	if (ret)
		return ret;
	if (img->size < IMG_HEADER_SIZE + IMG_TRAILER_SIZE ||
	    get_le32(d + img->size - IMG_TRAILER_SIZE) != IMG_TRAILER_MARK ||
	    crc32c(0, d, img->size - 4) != get_le32(d + img->size - 4)) {
		if (!img_damage(d, img->size, why, sizeof(why)))
			snprintf(why, sizeof(why), "checksum mismatch");
		st_err("%s/%s: %s", img->set->dir, img->name, why);
		return -EBADMSG;
	}
	img->pos = IMG_HEADER_SIZE;
	return 0;
}

int img_open_file(struct img_set *set, enum img_kind kind, const char *name, int listed,
		  struct img **out)
{
	const struct set_file *f = NULL;
	struct img *img;
	int ret;

	if (!set_valid_name(name))
		return -EINVAL;
	if (listed && !(f = set_find(set, name))) {
		st_err("%s/%s: not in the image set", set->dir, name);
		return -ENOENT;
	}
	img = img_alloc(set, kind, name);
	if (!img)
		return -ENOMEM;
	img->fd = openat(set->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (img->fd < 0) {
		ret = -errno;
		st_err("%s/%s: open: %s", set->dir, name, strerror(-ret));
		img_free(img);
		return ret;
	}
	ret = img_load(img);
	if (!ret && f && img->size != f->size) {
		st_err("%s/%s: %zu bytes, the manifest says %llu", set->dir, name, img->size,
		       (unsigned long long)f->size);
		ret = -EINVAL;
	}
	if (!ret)
		ret = img_check_whole(img);
	if (ret) {
		img_free(img);
		return ret;
	}
	*out = img;
	return 0;
}

int img_open(struct img_set *set, enum img_kind kind, const char *name, struct img **out)
{
	return img_open_file(set, kind, name, 1, out);
}

/* At the trailer: the count must match what we read. */
static int img_read_end(struct img *img)
{
	uint32_t count = get_le32(img->data + img->size - 8);

	if (count != img->entry) {
		st_err("%s/%s: trailer says %u entries, the file holds %u", img->set->dir,
		       img->name, count, img->entry);
		return -EINVAL;
	}
	img->at_end = 1;
	return 0;
}

int img_read(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	size_t end = img->size - IMG_TRAILER_SIZE;
	const uint8_t *payload;
	uint32_t len;

	*msg = NULL;
	if (img->at_end)
		return 0;
	if (img->pos == end)
		return img_read_end(img);
	if (end - img->pos < IMG_ENTRY_HDR) {
		st_err("%s/%s: entry %u: truncated", img->set->dir, img->name, img->entry);
		return -EINVAL;
	}
	len = get_le32(img->data + img->pos);
	if (len > IMG_MAX_ENTRY) {
		st_err("%s/%s: entry %u: length %u over the limit", img->set->dir, img->name,
		       img->entry, len);
		return -EINVAL;
	}
	if (len > end - img->pos - IMG_ENTRY_HDR) {
		st_err("%s/%s: entry %u: truncated", img->set->dir, img->name, img->entry);
		return -EINVAL;
	}
	payload = img->data + img->pos + IMG_ENTRY_HDR;
	if (crc32c(0, payload, len) != get_le32(img->data + img->pos + 4)) {
		st_err("%s/%s: entry %u: checksum mismatch", img->set->dir, img->name, img->entry);
		return -EBADMSG;
	}
	*msg = protobuf_c_message_unpack(desc, NULL, len, payload);
	if (!*msg) {
		st_err("%s/%s: entry %u: cannot decode a %s", img->set->dir, img->name, img->entry,
		       desc->name);
		return -EINVAL;
	}
	img->pos += IMG_ENTRY_HDR + len;
	img->entry++;
	return 0;
}

void img_close(struct img *img)
{
	if (img)
		img_free(img);
}

int img_read_one_file(struct img_set *set, enum img_kind kind, const char *name, int listed,
		      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	ProtobufCMessage *extra = NULL;
	struct img *img;
	int ret;

	*msg = NULL;
	ret = img_open_file(set, kind, name, listed, &img);
	if (ret)
		return ret;
	ret = img_read(img, desc, msg);
	if (!ret && !*msg) {
		st_err("%s/%s: no entry", set->dir, name);
		ret = -EINVAL;
	}
	if (!ret)
		ret = img_read(img, desc, &extra);
	if (!ret && extra) {
		st_err("%s/%s: more than one entry", set->dir, name);
		protobuf_c_message_free_unpacked(extra, NULL);
		ret = -EINVAL;
	}
	img_close(img);
	if (ret && *msg) {
		protobuf_c_message_free_unpacked(*msg, NULL);
		*msg = NULL;
	}
	return ret;
}

int img_read_one(struct img_set *set, enum img_kind kind, const char *name,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	return img_read_one_file(set, kind, name, 1, desc, msg);
}
