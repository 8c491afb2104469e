/*
 * ckptctl image: the image tool (show, decode, encode, verify, x, info).
 *
 * image-json.c   a small JSON reader (into a tree) and string writer
 * image-pb.c     any protobuf-c message <-> JSON, driven by its descriptor
 * image-file.c   image files <-> JSON documents (decode, encode)
 * image-check.c  verify: every checksum and every cross-reference of a set
 * image.c        the subcommands and their output
 */
#ifndef CKPT_CLI_IMAGE_H
#define CKPT_CLI_IMAGE_H

#include <stdint.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

#include "storage.h"

int cmd_image(int argc, char **argv);

/* ---- JSON ---- */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	char *key;  /* member of an object: its name */
	char *text; /* NUM: the literal as written; STR: the bytes (NUL-terminated) */
	size_t len; /* STR: number of bytes */
	int boolean;
	struct json **items; /* ARR, OBJ */
	size_t nr;
};

#define JSON_MAX_DEPTH 64

/* NULL on error, with a message naming the line in `err`. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json *j);
const struct json *json_get(const struct json *obj, const char *key);
/* A JSON string literal of `len` bytes: valid UTF-8 as is, other bytes as
 * \u0080-\u00ff, which json_parse() reads back as single raw bytes. */
void json_put_str(FILE *f, const char *s, size_t len);
int json_uint(const struct json *j, uint64_t max, uint64_t *out);
int json_int(const struct json *j, int64_t min, int64_t max, int64_t *out);

/* ---- protobuf-c <-> JSON ---- */
/* Writes `msg` as a JSON object; `indent` spaces deep. */
void pb_to_json(FILE *f, const ProtobufCMessage *msg, int indent);
/* A message of type `desc` from a JSON object; NULL after printing one
 * line naming the field (`where` prefixes it). */
ProtobufCMessage *pb_from_json(const ProtobufCMessageDescriptor *desc, const struct json *j,
			       const char *where);
/* Frees what pb_from_json() built. */
void pb_free_built(ProtobufCMessage *msg);

/* ---- image kinds ---- */
struct image_kind {
	enum img_kind kind;
	const char *name; /* "core", "pagemap", ... */
	const ProtobufCMessageDescriptor *desc; /* NULL: page data */
};
const struct image_kind *image_kind_by_num(uint32_t kind);
const struct image_kind *image_kind_by_name(const char *name);
/* Reads the header of `path`: 0 and the kind, or -errno after a message. */
int image_peek(const char *path, uint32_t *version, uint32_t *kind);

/* decode FILE to `out` as JSON; encode a JSON document to `path`. */
int image_decode(const char *path, FILE *out);
int image_encode(const char *json_path, const char *path);
/* The file bytes a JSON document stands for (malloc'd); `what` names it in errors. */
int image_build_json(const char *text, size_t len, const char *what, uint8_t **out,
		     size_t *out_len);

/* verify DIR: 0 if sound, else -errno after naming the file and entry. */
int image_verify(const char *dir, int verbose);

#endif
