/*
 * image-mem: image files built and inspected in memory, for tools
 * (ckptctl image encode/decode) that must produce exactly the bytes the
 * dump writes (img_create/img_write/img_close_write in image.c) without
 * a set being written around them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_Static_assert(IMG_HEADER_LEN == IMG_HEADER_SIZE, "one header size");

int img_peek(const uint8_t *buf, size_t len, uint32_t *version, uint32_t *kind)
{
	if (len < IMG_HEADER_SIZE || memcmp(buf, IMG_MAGIC, 8))
		return -EINVAL;
	*version = get_le32(buf + 8);
	*kind = get_le32(buf + 12);
	return 0;
}

static size_t build_size(enum img_kind kind, const ProtobufCMessage *const *msgs, size_t n,
			 size_t body_len)
{
	size_t len = IMG_HEADER_SIZE;

	if (kind == IMG_PAGES)
		return len + body_len;
	for (size_t i = 0; i < n; i++) {
		size_t m = protobuf_c_message_get_packed_size(msgs[i]);
		if (m > IMG_MAX_ENTRY)
			return 0;
		len += IMG_ENTRY_HDR + m;
	}
	return len + IMG_TRAILER_SIZE;
}

int img_build(enum img_kind kind, const ProtobufCMessage *const *msgs, size_t n, const void *body,
	      size_t body_len, uint8_t **out, size_t *out_len)
{
	size_t len = build_size(kind, msgs, n, body_len), pos = IMG_HEADER_SIZE;
	uint8_t *buf;

	if (!len || n > UINT32_MAX)
		return -EFBIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	img_header_fill(buf, kind);
	if (kind == IMG_PAGES) {
		if (body_len)
			memcpy(buf + pos, body, body_len);
	} else {
		for (size_t i = 0; i < n; i++) {
			size_t m = protobuf_c_message_get_packed_size(msgs[i]);
			img_entry_pack(buf + pos, msgs[i], m);
			pos += IMG_ENTRY_HDR + m;
		}
		put_le32(buf + pos, IMG_TRAILER_MARK);
		put_le32(buf + pos + 4, n);
		put_le32(buf + pos + 8, crc32c(0, buf, pos + 8));
	}
	*out = buf;
	*out_len = len;
	return 0;
}
