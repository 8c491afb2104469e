/*
 * image-file: one image file as a JSON document and back.
 *
 *   { "kind": "core", "version": 2, "type": "core_entry",
 *     "entries": [ { ...one object per entry... } ] }
 *   { "kind": "pages", "version": 2, "data": "<hex of every byte after the header>" }
 *
 * decode reads the file through storage's own reader (header, trailer,
 * crc and every entry checked, as on restore); encode packs the entries
 * with storage's img_build(), so the header, lengths, entry crcs and trailer crc are
 * recomputed and an unchanged document gives back the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "cgroup.pb-c.h"
#include "ipc.pb-c.h"
#include "manifest.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "saved.pb-c.h"

static const struct image_kind kinds[] = {
	{ IMG_INVENTORY, "inventory", &inventory_entry__descriptor },
	{ IMG_CORE, "core", &core_entry__descriptor },
	{ IMG_MM, "mm", &mm_entry__descriptor },
	{ IMG_PAGEMAP, "pagemap", &pagemap_entry__descriptor },
	{ IMG_PAGES, "pages", NULL },
	{ IMG_FILES, "files", &file_entry__descriptor },
	{ IMG_FDINFO, "fdinfo", &fd_entry__descriptor },
	{ IMG_PIPES_DATA, "pipes-data", &pipe_data_entry__descriptor },
	{ IMG_MANIFEST, "manifest", &manifest_entry__descriptor },
	{ IMG_SHM, "shm", &shm_object_entry__descriptor },
	{ IMG_IPC, "ipc", &ipc_entry__descriptor },
	{ IMG_SAVED, "saved", &saved_files_entry__descriptor },
	{ IMG_CGROUP, "cgroup", &cgroup_entry__descriptor },
};

const struct image_kind *image_kind_by_num(uint32_t kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}

const struct image_kind *image_kind_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

static int read_whole(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st)) {
		int ret = -errno;
		fprintf(stderr, "ckptctl: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, st.st_size);
	close(fd);
	if (n != st.st_size) {
		fprintf(stderr, "ckptctl: %s: short read\n", path);
		free(buf);
		return -EIO;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

int image_peek(const char *path, uint32_t *version, uint32_t *kind)
{
	uint8_t hdr[IMG_HEADER_LEN];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, hdr, sizeof(hdr)) : -1;

	if (fd < 0) {
		fprintf(stderr, "ckptctl: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	close(fd);
	if (n < 0 || img_peek(hdr, n, version, kind)) {
		fprintf(stderr, "ckptctl: %s: not an image file (bad magic)\n", path);
		return -EINVAL;
	}
	return 0;
}

/* Splits path into a directory and a name (both malloc'd). */
static int split_path(const char *path, char **dir, char **name)
{
	char *a = strdup(path), *b = strdup(path);

	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	*dir = strdup(dirname(a));
	*name = strdup(basename(b));
	free(a);
	free(b);
	return *dir && *name ? 0 : -ENOMEM;
}

static int decode_pages(const char *path, uint32_t version, FILE *out)
{
	uint8_t *buf;
	size_t len;
	int ret = read_whole(path, &buf, &len);

	if (ret)
		return ret;
	fprintf(out, "{\n  \"kind\": \"pages\",\n  \"version\": %u,\n  \"data\": \"", version);
	for (size_t i = IMG_HEADER_LEN; i < len; i++)
		fprintf(out, "%02x", buf[i]);
	fputs("\"\n}\n", out);
	free(buf);
	return 0;
}

static int decode_messages(const char *path, const struct image_kind *k, FILE *out)
{
	struct img_set *set = NULL;
	struct img *img = NULL;
	char *dir = NULL, *name = NULL;
	ProtobufCMessage *m;
	int ret = split_path(path, &dir, &name);

	if (!ret)
		ret = img_set_open_raw(dir, &set);
	if (!ret)
		ret = img_open(set, k->kind, name, &img);
	if (!ret)
		fprintf(out, "{\n  \"kind\": \"%s\",\n  \"version\": %u,\n  \"type\": \"%s\",\n"
			"  \"entries\": [", k->name, IMG_FORMAT_VERSION, k->desc->name);
	for (int first = 1; !ret && !(ret = img_read(img, k->desc, &m)) && m; first = 0) {
		fputs(first ? "\n    " : ",\n    ", out);
		pb_to_json(out, m, 4);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (!ret)
		fputs("\n  ]\n}\n", out);
	img_close(img);
	img_set_close(set);
	free(dir);
	free(name);
	return ret;
}

static int decode_any(const char *path, FILE *out)
{
	uint32_t version, kind;
	const struct image_kind *k;
	int ret = image_peek(path, &version, &kind);

	if (ret)
		return ret;
	k = image_kind_by_num(kind);
	if (!k) {
		fprintf(stderr, "ckptctl: %s: unknown image kind %u\n", path, kind);
		return -EINVAL;
	}
	if (version != IMG_FORMAT_VERSION) {
		fprintf(stderr, "ckptctl: %s: image format version %u, this ckptctl reads %u\n", path,
			version, IMG_FORMAT_VERSION);
		return -EINVAL;
	}
	return k->desc ? decode_messages(path, k, out) : decode_pages(path, version, out);
}

/* Into memory first: a file that fails half-way gives no half document. */
int image_decode(const char *path, FILE *out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int ret;

	if (!mem)
		return -ENOMEM;
	ret = decode_any(path, mem);
	if (fclose(mem) && !ret)
		ret = -ENOMEM;
	if (!ret && fwrite(text, 1, len, out) != len)
		ret = -EIO;
	free(text);
	return ret;
}

/* ---- encode ---- */

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex_body(const struct json *data, uint8_t **body, size_t *len)
{
	if (!data || data->type != JSON_STR || data->len % 2)
		return -EINVAL;
	*len = data->len / 2;
	*body = malloc(*len + 1);
	if (!*body)
		return -ENOMEM;
	for (size_t i = 0; i < *len; i++) {
		int hi = hex_digit(data->text[2 * i]), lo = hex_digit(data->text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(*body);
			*body = NULL;
			return -EINVAL;
		}
		(*body)[i] = hi << 4 | lo;
	}
	return 0;
}

/* The entries of a document, built; *msgs malloc'd. */
static int build_entries(const struct image_kind *k, const struct json *doc,
			 ProtobufCMessage ***msgs, size_t *n)
{
	const struct json *entries = json_get(doc, "entries");
	const struct json *type = json_get(doc, "type");

	if (type && (type->type != JSON_STR || strcmp(type->text, k->desc->name))) {
		fprintf(stderr, "ckptctl: a %s image holds %s entries\n", k->name, k->desc->name);
		return -EINVAL;
	}
	if (!entries || entries->type != JSON_ARR) {
		fprintf(stderr, "ckptctl: the document has no \"entries\" array\n");
		return -EINVAL;
	}
	*msgs = calloc(entries->nr + 1, sizeof(**msgs));
	if (!*msgs)
		return -ENOMEM;
	for (*n = 0; *n < entries->nr; (*n)++) {
		char where[32];
		snprintf(where, sizeof(where), "entry %zu", *n);
		(*msgs)[*n] = pb_from_json(k->desc, entries->items[*n], where);
		if (!(*msgs)[*n])
			return -EINVAL;
	}
	return 0;
}

static int build_doc(const struct json *doc, uint8_t **out, size_t *len)
{
	const struct json *kind = json_get(doc, "kind");
	const struct image_kind *k = kind && kind->type == JSON_STR ? image_kind_by_name(kind->text) : NULL;
	ProtobufCMessage **msgs = NULL;
	uint64_t version;
	uint8_t *body = NULL;
	size_t n = 0, body_len = 0;
	int ret;

	if (!k) {
		fprintf(stderr, "ckptctl: \"kind\" is missing or not an image kind\n");
		return -EINVAL;
	}
	if (json_uint(json_get(doc, "version"), UINT32_MAX, &version) ||
	    version != IMG_FORMAT_VERSION) {
		fprintf(stderr, "ckptctl: \"version\" must be %u, the format this ckptctl writes\n",
			IMG_FORMAT_VERSION);
		return -EINVAL;
	}
	if (k->desc)
		ret = build_entries(k, doc, &msgs, &n);
	else if ((ret = hex_body(json_get(doc, "data"), &body, &body_len)))
		fprintf(stderr, "ckptctl: \"data\" must be a hex string\n");
	if (!ret)
		ret = img_build(k->kind, (const ProtobufCMessage *const *)msgs, n, body, body_len,
				out, len);
	for (size_t i = 0; msgs && msgs[i]; i++)
		pb_free_built(msgs[i]);
	free(msgs);
	free(body);
	return ret;
}

/* Write `buf` to `path` through a tmp file and a rename: never half a file. */
static int write_file(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[4096];
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd))
		ret = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		fprintf(stderr, "ckptctl: %s: %s\n", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

int image_build_json(const char *text, size_t len, const char *what, uint8_t **out,
		     size_t *out_len)
{
	char err[128] = "";
	struct json *doc = json_parse(text, len, err, sizeof(err));
	int ret;

	if (!doc) {
		fprintf(stderr, "ckptctl: %s: %s\n", what, err);
		return -EINVAL;
	}
	ret = build_doc(doc, out, out_len);
	json_free(doc);
	return ret;
}

int image_encode(const char *json_path, const char *path)
{
	uint8_t *text, *out = NULL;
	size_t len, out_len;
	int ret = read_whole(json_path, &text, &len);

	if (ret)
		return ret;
	ret = image_build_json((const char *)text, len, json_path, &out, &out_len);
	free(text);
	if (!ret)
		ret = write_file(path, out, out_len);
	free(out);
	return ret;
}
