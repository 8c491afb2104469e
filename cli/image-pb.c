/*
 * image-pb: any protobuf-c message as JSON and back, walking the
 * message's descriptor, so every schema of proto/ (and any added later)
 * is covered without code per message type.
 *
 * JSON shape: an object per message with the .proto field names; present
 * fields only (optional fields that are absent are left out); repeated
 * fields as arrays; enums by value name (a number if the value has no
 * name); bytes as lowercase hex; 64-bit integers as exact numbers.
 * Fields this build does not know (from a newer schema) are kept under
 * "_unknown" as {tag, wire_type, data}, so a round trip keeps them.
 *
 * Built messages are allocated with malloc like protobuf-c's own unpack,
 * so protobuf_c_message_free_unpacked(msg, NULL) frees them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define MEMBER(msg, off, type) (*(type *)((char *)(msg) + (off)))

static void put_indent(FILE *f, int n)
{
	fprintf(f, "\n%*s", n, "");
}

static void put_hex(FILE *f, const uint8_t *p, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", p[i]);
	fputc('"', f);
}

static void put_enum(FILE *f, const ProtobufCEnumDescriptor *ed, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);

	if (ev)
		json_put_str(f, ev->name, strlen(ev->name));
	else
		fprintf(f, "%d", v);
}

/* One value of field `fd` stored at `p`. */
static void put_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p, int indent)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: fprintf(f, "%d", *(const int32_t *)p); break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: fprintf(f, "%u", *(const uint32_t *)p); break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: fprintf(f, "%lld", (long long)*(const int64_t *)p); break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT: fprintf(f, "%.9g", *(const float *)p); break;
	case PROTOBUF_C_TYPE_DOUBLE: fprintf(f, "%.17g", *(const double *)p); break;
	case PROTOBUF_C_TYPE_BOOL: fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f); break;
	case PROTOBUF_C_TYPE_ENUM: put_enum(f, fd->descriptor, *(const int *)p); break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		json_put_str(f, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		put_hex(f, b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: pb_to_json(f, *(ProtobufCMessage *const *)p, indent); break;
	}
}

static size_t value_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	default: return 4;
	}
}

/* Whether an optional field is set (NONE: proto3, written when set too). */
static int field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	if (fd->label == PROTOBUF_C_LABEL_REQUIRED || fd->label == PROTOBUF_C_LABEL_REPEATED)
		return 1;
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return MEMBER(msg, fd->offset, void *) != NULL;
	if (fd->quantifier_offset)
		return MEMBER(msg, fd->quantifier_offset, protobuf_c_boolean);
	return 1;
}

static void put_unknown(FILE *f, const ProtobufCMessage *msg, int indent)
{
	fputs("[", f);
	for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];
		put_indent(f, indent + 2);
		fprintf(f, "{ \"tag\": %u, \"wire_type\": %u, \"data\": ", u->tag, u->wire_type);
		put_hex(f, u->data, u->len);
		fprintf(f, " }%s", i + 1 < msg->n_unknown_fields ? "," : "");
	}
	put_indent(f, indent);
	fputs("]", f);
}

void pb_to_json(FILE *f, const ProtobufCMessage *msg, int indent)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *sep = "";

	fputs("{", f);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		if (!field_present(msg, fd))
			continue;
		fputs(sep, f);
		sep = ",";
		put_indent(f, indent + 2);
		fprintf(f, "\"%s\": ", fd->name);
		if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
			put_value(f, fd, (const char *)msg + fd->offset, indent + 2);
			continue;
		}
		size_t n = MEMBER(msg, fd->quantifier_offset, size_t);
		const char *arr = MEMBER(msg, fd->offset, const char *);
		fputs("[", f);
		for (size_t k = 0; k < n; k++) {
			if (k)
				fputs(",", f);
			if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
				put_indent(f, indent + 4);
			else if (k)
				fputs(" ", f);
			put_value(f, fd, arr + k * value_size(fd->type), indent + 4);
		}
		fputs("]", f);
	}
	if (msg->n_unknown_fields) {
		fprintf(f, "%s", sep);
		put_indent(f, indent + 2);
		fputs("\"_unknown\": ", f);
		put_unknown(f, msg, indent + 2);
	}
	put_indent(f, indent);
	fputs("}", f);
}

/* ---- JSON -> message ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int get_hex(const struct json *j, uint8_t **data, size_t *len)
{
	if (j->type != JSON_STR || j->len % 2)
		return -EINVAL;
	*len = j->len / 2;
	*data = malloc(*len + 1);
	if (!*data)
		return -ENOMEM;
	for (size_t i = 0; i < *len; i++) {
		int hi = hexval(j->text[2 * i]), lo = hexval(j->text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(*data);
			*data = NULL;
			return -EINVAL;
		}
		(*data)[i] = hi << 4 | lo;
	}
	return 0;
}

static int get_enum(const ProtobufCEnumDescriptor *ed, const struct json *j, int *out)
{
	int64_t v;

	if (j->type == JSON_STR) {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, j->text);
		if (!ev)
			return -EINVAL;
		*out = ev->value;
		return 0;
	}
	if (json_int(j, INT32_MIN, INT32_MAX, &v))
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* One value of field `fd` from `j` into `p`. */
static int get_value(const ProtobufCFieldDescriptor *fd, const struct json *j, void *p,
		     const char *where)
{
	uint64_t u;
	int64_t s;
	char *end;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		if (json_int(j, INT32_MIN, INT32_MAX, &s))
			return -EINVAL;
		*(int32_t *)p = (int32_t)s;
		return 0;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		if (json_uint(j, UINT32_MAX, &u))
			return -EINVAL;
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		if (json_int(j, INT64_MIN, INT64_MAX, &s))
			return -EINVAL;
		*(int64_t *)p = s;
		return 0;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		if (json_uint(j, UINT64_MAX, &u))
			return -EINVAL;
		*(uint64_t *)p = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		if (j->type != JSON_NUM)
			return -EINVAL;
		double d = strtod(j->text, &end);
		if (*end)
			return -EINVAL;
		if (fd->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)d;
		else
			*(double *)p = d;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (j->type != JSON_BOOL)
			return -EINVAL;
		*(protobuf_c_boolean *)p = j->boolean;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: return get_enum(fd->descriptor, j, (int *)p);
	case PROTOBUF_C_TYPE_STRING:
		if (j->type != JSON_STR || strlen(j->text) != j->len)
			return -EINVAL;
		*(char **)p = strdup(j->text);
		return *(char **)p ? 0 : -ENOMEM;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		return get_hex(j, &b->data, &b->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)p = pb_from_json(fd->descriptor, j, where);
		return *(ProtobufCMessage **)p ? 0 : -EEXIST; /* EEXIST: already reported */
	}
	return -EINVAL;
}

static int get_repeated(const ProtobufCFieldDescriptor *fd, const struct json *j,
			ProtobufCMessage *msg, const char *where)
{
	size_t sz = value_size(fd->type);
	char *arr;

	if (j->type != JSON_ARR)
		return -EINVAL;
	arr = calloc(j->nr ? j->nr : 1, sz);
	if (!arr)
		return -ENOMEM;
	MEMBER(msg, fd->offset, char *) = arr;
	for (size_t k = 0; k < j->nr; k++) {
		char sub[256];
		int ret;
		if (snprintf(sub, sizeof(sub), "%s[%zu]", where, k) >= (int)sizeof(sub))
			strcpy(sub + sizeof(sub) - 4, "...");
		ret = get_value(fd, j->items[k], arr + k * sz, sub);
		if (ret)
			return ret;
		/* Counted as we go, so that a failure frees what was built. */
		MEMBER(msg, fd->quantifier_offset, size_t) = k + 1;
	}
	if (!j->nr) {
		free(arr);
		MEMBER(msg, fd->offset, char *) = NULL;
	}
	return 0;
}

static int get_unknown(ProtobufCMessage *msg, const struct json *j)
{
	if (j->type != JSON_ARR)
		return -EINVAL;
	msg->unknown_fields = calloc(j->nr ? j->nr : 1, sizeof(*msg->unknown_fields));
	if (!msg->unknown_fields)
		return -ENOMEM;
	for (size_t i = 0; i < j->nr; i++) {
		ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];
		uint64_t tag, wt;
		if (json_uint(json_get(j->items[i], "tag"), UINT32_MAX, &tag) ||
		    json_uint(json_get(j->items[i], "wire_type"), 5, &wt) ||
		    !json_get(j->items[i], "data") ||
		    get_hex(json_get(j->items[i], "data"), &u->data, &u->len))
			return -EINVAL;
		u->tag = tag;
		u->wire_type = wt;
		msg->n_unknown_fields = i + 1;
	}
	return 0;
}

static int get_member(ProtobufCMessage *msg, const struct json *m, const char *where)
{
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, m->key);
	char sub[256];
	int ret;

	if (!strcmp(m->key, "_unknown") && !msg->unknown_fields)
		return get_unknown(msg, m);
	if (!fd || m->type == JSON_NULL) {
		fprintf(stderr, "ckptctl: %s: %s has no field '%s'\n", where, msg->descriptor->name,
			m->key);
		return -EEXIST;
	}
	if (snprintf(sub, sizeof(sub), "%s.%s", where, fd->name) >= (int)sizeof(sub))
		strcpy(sub + sizeof(sub) - 4, "...");
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		if (MEMBER(msg, fd->offset, void *))
			return -EINVAL; /* given twice */
		return get_repeated(fd, m, msg, sub);
	}
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset &&
	    fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE) {
		if (MEMBER(msg, fd->quantifier_offset, protobuf_c_boolean))
			return -EINVAL;
		MEMBER(msg, fd->quantifier_offset, protobuf_c_boolean) = 1;
	}
	if ((fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) &&
	    MEMBER(msg, fd->offset, void *))
		return -EINVAL;
	ret = get_value(fd, m, (char *)msg + fd->offset, sub);
	return ret;
}

/* Every required field given? */
static int check_required(const ProtobufCMessage *msg, const struct json *j, const char *where)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !json_get(j, d->fields[i].name)) {
			fprintf(stderr, "ckptctl: %s: %s needs field '%s'\n", where, d->name,
				d->fields[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

/* A member name given twice is refused (the second would leak the first,
 * and which one wins is a guess): one flag per field, plus "_unknown". */
static int repeated_key(const ProtobufCMessageDescriptor *desc, const struct json *m, char *seen)
{
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field_by_name(desc, m->key);
	size_t i = fd ? (size_t)(fd - desc->fields) : desc->n_fields;

	if (!fd && strcmp(m->key, "_unknown"))
		return 0; /* get_member() names it */
	if (seen[i])
		return 1;
	seen[i] = 1;
	return 0;
}

ProtobufCMessage *pb_from_json(const ProtobufCMessageDescriptor *desc, const struct json *j,
			       const char *where)
{
	ProtobufCMessage *msg;
	char *seen;

	if (!j || j->type != JSON_OBJ) {
		fprintf(stderr, "ckptctl: %s: expected an object (%s)\n", where, desc->name);
		return NULL;
	}
	msg = calloc(1, desc->sizeof_message);
	seen = calloc(desc->n_fields + 1, 1);
	if (!msg || !seen) {
		free(msg);
		free(seen);
		return NULL;
	}
	desc->message_init(msg);
	for (size_t i = 0; i < j->nr; i++) {
		int ret = repeated_key(desc, j->items[i], seen) ? -EINVAL
								: get_member(msg, j->items[i], where);
		if (ret && ret != -EEXIST)
			fprintf(stderr, "ckptctl: %s.%s: bad or repeated value\n", where,
				j->items[i]->key);
		if (ret) {
			free(seen);
			pb_free_built(msg);
			return NULL;
		}
	}
	free(seen);
	if (check_required(msg, j, where)) {
		pb_free_built(msg);
		return NULL;
	}
	return msg;
}

void pb_free_built(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}
