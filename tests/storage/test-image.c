/*
 * Message images and image sets, on real files in a scratch directory:
 * crc32c against known values and the plain table walk, a round trip of
 * message images through commit and open, and every way a set must be
 * refused (a flipped bit anywhere, a truncated file, no manifest, a missing
 * file, hostile entries with a valid checksum), each naming the file and,
 * for a flip or a cut, the entry (format 2: a crc per entry).
 */
#include <dirent.h>
#include <errno.h>

#include "internal.h"
#include "manifest.pb-c.h"
#include "pagemap.pb-c.h"
#include "storage.h"
#include "testutil.h"

static void test_crc(void)
{
	static uint8_t buf[200000];
	uint32_t seed = 1;

	CHECK(crc32c(0, "123456789", 9) == 0xe3069283);
	CHECK(crc32c_slow(0, "123456789", 9) == 0xe3069283);
	CHECK(crc32c(0, "", 0) == 0);
	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = seed >> 16;
	}
	for (size_t len = 0; len < sizeof(buf); len = len * 3 + 1) {
		for (size_t start = 0; start < 9; start++) {
			size_t n = len > sizeof(buf) - start ? sizeof(buf) - start : len;
			CHECK(crc32c(7, buf + start, n) == crc32c_slow(7, buf + start, n));
		}
	}
	for (size_t cut = 0; cut < sizeof(buf); cut += 12345) {
		uint32_t a = crc32c(0, buf, cut), b = crc32c(0, buf + cut, sizeof(buf) - cut);
		CHECK(crc32c(a, buf + cut, sizeof(buf) - cut) == crc32c(0, buf, sizeof(buf)));
		CHECK(crc32c_combine(a, b, sizeof(buf) - cut) == crc32c(0, buf, sizeof(buf)));
	}
}

static void write_pagemaps(struct img_set *set, const char *name, int count)
{
	struct img *img;

	CHECK(img_create(set, IMG_PAGEMAP, name, &img) == 0);
	for (int i = 0; i < count; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		pe.vaddr = 0x400000 + (uint64_t)i * 4096;
		pe.nr_pages = i + 1;
		pe.offset = 1000ull * i;
		pe.comp_len = 7 * i;
		pe.raw = i & 1;
		pe.crc = 0xdead0000 + i;
		CHECK(img_write(img, &pe.base) == 0);
	}
	CHECK(img_close_write(img) == 0);
}

static void check_pagemaps(struct img_set *set, const char *name, int count)
{
	ProtobufCMessage *msg;
	struct img *img;
	int i = 0;

	CHECK(img_open(set, IMG_PAGEMAP, name, &img) == 0);
	for (;;) {
		CHECK(img_read(img, &pagemap_entry__descriptor, &msg) == 0);
		if (!msg)
			break;
		PagemapEntry *pe = (PagemapEntry *)msg;
		CHECK(pe->vaddr == 0x400000 + (uint64_t)i * 4096 && pe->nr_pages == (uint32_t)i + 1);
		CHECK(pe->offset == 1000ull * i && pe->comp_len == 7u * i);
		CHECK(pe->raw == (i & 1) && pe->crc == 0xdead0000u + i);
		protobuf_c_message_free_unpacked(msg, NULL);
		i++;
	}
	CHECK(i == count);
	CHECK(img_read(img, &pagemap_entry__descriptor, &msg) == 0 && !msg);
	img_close(img);
}

/* One entry larger than the writer's buffer. */
static void write_big(struct img_set *set, size_t len)
{
	ManifestEntry me = MANIFEST_ENTRY__INIT;
	struct img *img;
	char *host = malloc(len + 1);

	memset(host, 'h', len);
	host[len] = '\0';
	me.hostname = host;
	me.kernel = "k";
	CHECK(img_create(set, IMG_INVENTORY, "big.img", &img) == 0);
	CHECK(img_write(img, &me.base) == 0);
	CHECK(img_close_write(img) == 0);
	free(host);
}

static char *build_set(const char *base)
{
	char *dir = malloc(strlen(base) + 32);
	struct img_set *set;
	struct img *img;

	sprintf(dir, "%s/a/b/set", base); /* mkdir -p */
	CHECK(img_set_create(dir, &set) == 0);
	write_pagemaps(set, "pagemap-1.img", 100);
	write_pagemaps(set, "pagemap-2.img", 1);
	write_big(set, 300000);
	CHECK(img_create(set, IMG_FILES, "empty.img", &img) == 0);
	CHECK(img_close_write(img) == 0);
	CHECK(img_set_commit(set, getpid()) == 0);
	img_set_close(set);
	return dir;
}

/* img_set_defer_sync: the files' fsyncs wait for the commit, which does
 * them before the manifest names the files (one gone meanwhile cannot be
 * synced: no manifest), and the set reads back as any other. */
static void test_deferred_sync(const char *base)
{
	char dir[512], path[600];
	struct img_set *set;

	snprintf(dir, sizeof(dir), "%s/deferred", base);
	CHECK(img_set_create(dir, &set) == 0);
	img_set_defer_sync(set);
	write_pagemaps(set, "pagemap-1.img", 10);
	write_pagemaps(set, "pagemap-2.img", 10);
	snprintf(path, sizeof(path), "%s/pagemap-2.img", dir);
	CHECK(unlink(path) == 0);
	CHECK(img_set_commit(set, getpid()) == -ENOENT);
	snprintf(path, sizeof(path), "%s/manifest", dir);
	CHECK(access(path, F_OK) != 0);
	img_set_abort(set);
	img_set_close(set);

	CHECK(img_set_create(dir, &set) == 0);
	img_set_defer_sync(set);
	write_pagemaps(set, "pagemap-1.img", 10);
	CHECK(img_set_commit(set, getpid()) == 0);
	img_set_close(set);
	CHECK(img_set_open(dir, &set) == 0);
	img_set_close(set);
}

static void test_round_trip(const char *base)
{
	char *dir = build_set(base);
	ProtobufCMessage *msg;
	struct img_set *set;
	struct img *img;
	char path[512];

	CHECK((file_size(dir) >= 0));
	struct stat st;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/pagemap-1.img", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(path, sizeof(path), "%s/manifest", dir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

	CHECK(img_set_open(dir, &set) == 0);
	CHECK(img_set_root_pid(set) == (uint32_t)getpid());
	check_pagemaps(set, "pagemap-1.img", 100);
	check_pagemaps(set, "pagemap-2.img", 1);
	CHECK(img_exists(set, "empty.img") && !img_exists(set, "nope.img"));
	CHECK(!img_exists(set, "manifest"));
	CHECK(img_read_one(set, IMG_INVENTORY, "big.img", &manifest_entry__descriptor, &msg) == 0);
	CHECK(strlen(((ManifestEntry *)msg)->hostname) == 300000);
	protobuf_c_message_free_unpacked(msg, NULL);
	CHECK(img_open(set, IMG_FILES, "empty.img", &img) == 0);
	CHECK(img_read(img, &pagemap_entry__descriptor, &msg) == 0 && !msg);
	img_close(img);

	/* Wrong kind, more than one entry, a file not in the set. */
	capture_begin();
	CHECK(img_open(set, IMG_CORE, "pagemap-1.img", &img) == -EINVAL);
	CHECK(img_read_one(set, IMG_PAGEMAP, "pagemap-1.img", &pagemap_entry__descriptor, &msg) ==
	      -EINVAL);
	CHECK(img_open(set, IMG_FILES, "nope.img", &img) == -ENOENT);
	CHECK(img_open(set, IMG_FILES, "../x", &img) == -EINVAL);
	const char *err = capture_end();
	CHECK(strstr(err, "pagemap-1.img: image of kind 4, expected 2"));
	CHECK(strstr(err, "pagemap-1.img: more than one entry"));
	CHECK(strstr(err, "nope.img: not in the image set"));
	img_set_close(set);
	free(dir);
}

static void open_must_fail(const char *dir, const char *name, const char *what)
{
	struct img_set *set = NULL;
	const char *err;
	char needle[600];

	capture_begin();
	CHECK(img_set_open(dir, &set) < 0);
	err = capture_end();
	snprintf(needle, sizeof(needle), "%s/%s: %s", dir, name, what);
	if (!strstr(err, needle)) {
		fprintf(stderr, "expected \"%s\"\n", needle);
		CHECK(0);
	}
}

/* What the error for a flip at `off` of the message image `d` must name:
 * the entry it falls in, the trailer, or (header) just the file. */
static const char *flip_place(const uint8_t *d, size_t size, size_t off, char *buf, size_t len)
{
	size_t pos = IMG_HEADER_SIZE;
	uint32_t n = 0;

	if (off < IMG_HEADER_SIZE)
		return "";
	while (pos + IMG_TRAILER_SIZE < size) {
		size_t end = pos + IMG_ENTRY_HDR + get_le32(d + pos);
		if (off < end) {
			snprintf(buf, len, "entry %u: ", n);
			return buf;
		}
		pos = end;
		n++;
	}
	return "trailer";
}

static uint8_t *read_file(const char *path, size_t *size)
{
	off_t n = file_size(path);
	uint8_t *buf = malloc(n + 1);
	int fd = open(path, O_RDONLY);

	CHECK(buf && fd >= 0 && read(fd, buf, n) == n);
	close(fd);
	*size = n;
	return buf;
}

/* img_set_open(dir) must fail; what it printed (not echoed: thousands). */
static const char *open_fails_quietly(const char *dir)
{
	static char text[4096];
	FILE *f = tmpfile();
	int saved = dup(2), ret;
	struct img_set *bad = NULL;
	size_t n;

	CHECK(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	ret = img_set_open(dir, &bad);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	if (ret == 0) {
		img_set_close(bad);
		return NULL;
	}
	return text;
}

/* Every byte of every file, one bit each: the set must be refused, the
 * error naming the file and the entry the bit is in. */
static void test_bit_flips(const char *base)
{
	const char *names[] = { "manifest", "pagemap-1.img", "pagemap-2.img", "empty.img",
				"big.img" };
	char *dir = build_set(base);
	char path[512], place[64], needle[600];
	struct img_set *set;
	long flips = 0;

	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[n]);
		size_t size;
		uint8_t *good = read_file(path, &size);
		size_t step = size > 4096 ? 97 : 1;
		snprintf(needle, sizeof(needle), "%s/%s: ", dir, names[n]);
		for (size_t off = 0; off < size; off += step) {
			const char *what = flip_place(good, size, off, place, sizeof(place));
			flip_bit(path, off, off % 8);
			const char *err = open_fails_quietly(dir);
			if (!err || !strstr(err, needle) || !strstr(err, what)) {
				fprintf(stderr, "%s: flip at %zu: want \"%s\", got: %s\n", path, off,
					what, err ? err : "(accepted)");
				CHECK(0);
			}
			flip_bit(path, off, off % 8);
			flips++;
		}
		free(good);
	}
	/* The messages, for a few positions. */
	snprintf(path, sizeof(path), "%s/pagemap-1.img", dir);
	flip_bit(path, 100, 3);
	open_must_fail(dir, "pagemap-1.img", "entry 3: checksum mismatch");
	flip_bit(path, 100, 3);
	snprintf(path, sizeof(path), "%s/manifest", dir);
	flip_bit(path, 40, 0);
	open_must_fail(dir, "manifest", "entry 0: checksum mismatch");
	flip_bit(path, 40, 0);
	flip_bit(path, 0, 1);
	open_must_fail(dir, "manifest", "not an image file");
	flip_bit(path, 0, 1);
	flip_bit(path, 8, 0);
	open_must_fail(dir, "manifest", "image format version 3, expected 2");
	flip_bit(path, 8, 0);
	CHECK(img_set_open(dir, &set) == 0);
	img_set_close(set);
	printf("bit flips: %ld, all refused\n", flips);
	free(dir);
}

static void test_truncated_missing(const char *base)
{
	char *dir = build_set(base);
	char path[512], moved[520];
	struct img_set *set;
	struct img *img;

	snprintf(path, sizeof(path), "%s/pagemap-1.img", dir);
	off_t size = file_size(path);
	size_t len;
	uint8_t *good = read_file(path, &len);
	char place[64], what[128];
	CHECK(truncate(path, size - 1) == 0);
	snprintf(what, sizeof(what), "%lld bytes, the manifest says %lld: trailer truncated",
		 (long long)size - 1, (long long)size);
	open_must_fail(dir, "pagemap-1.img", what);
	/* Cut in the middle of an entry: that entry is named. */
	flip_place(good, len, len / 2, place, sizeof(place));
	CHECK(truncate(path, size / 2) == 0);
	snprintf(what, sizeof(what), "%lld bytes, the manifest says %lld: %slength",
		 (long long)size / 2, (long long)size, place);
	open_must_fail(dir, "pagemap-1.img", what);
	free(good);
	CHECK(truncate(path, 10) == 0);
	open_must_fail(dir, "pagemap-1.img", "10 bytes, the manifest says");
	free(dir);

	/* Truncated after the set was verified: the reader notices too. */
	dir = build_set(base);
	snprintf(path, sizeof(path), "%s/pagemap-1.img", dir);
	CHECK(img_set_open(dir, &set) == 0);
	CHECK(truncate(path, size - 12) == 0);
	capture_begin();
	CHECK(img_open(set, IMG_PAGEMAP, "pagemap-1.img", &img) == -EINVAL);
	CHECK(strstr(capture_end(), "pagemap-1.img: "));
	img_set_close(set);
	free(dir);

	/* A listed file that is not there. */
	dir = build_set(base);
	snprintf(path, sizeof(path), "%s/pagemap-2.img", dir);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	CHECK(rename(path, moved) == 0);
	open_must_fail(dir, "pagemap-2.img", "missing (listed in the manifest)");
	CHECK(rename(moved, path) == 0);

	/* No manifest: not a checkpoint. */
	snprintf(path, sizeof(path), "%s/manifest", dir);
	CHECK(unlink(path) == 0);
	capture_begin();
	CHECK(img_set_open(dir, &set) == -ENOENT);
	snprintf(path, sizeof(path), "%s: no manifest: not a checkpoint or an incomplete one", dir);
	CHECK(strstr(capture_end(), path));
	free(dir);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	CHECK(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_abort_and_recreate(const char *base)
{
	char *dir = build_set(base);
	struct img_set *set, *old;
	struct img *img;

	CHECK(count_entries(dir) == 5);
	/* A new dump into the same directory: the old manifest goes at once. */
	CHECK(img_set_create(dir, &set) == 0);
	capture_begin();
	CHECK(img_set_open(dir, &old) == -ENOENT);
	capture_end();
	write_pagemaps(set, "pagemap-1.img", 3);
	write_pagemaps(set, "new.img", 3);
	/* One still open: commit is refused. */
	CHECK(img_create(set, IMG_CORE, "core-1.img", &img) == 0);
	capture_begin();
	CHECK(img_set_commit(set, 1) == -EBUSY);
	CHECK(strstr(capture_end(), "core-1.img: not written completely"));
	CHECK(img_close_write(img) == 0);
	capture_begin();
	CHECK(img_create(set, IMG_CORE, "core-1.img", &img) == -EEXIST); /* twice */
	capture_end();
	img_set_abort(set);
	img_set_close(set);
	/* Left: the old files the new dump did not touch. */
	CHECK(count_entries(dir) == 3);
	char path[600];
	snprintf(path, sizeof(path), "%s/new.img", dir);
	CHECK(access(path, F_OK) == -1);

	/* Abort after commit takes the manifest with it. */
	CHECK(img_set_create(dir, &set) == 0);
	write_pagemaps(set, "x.img", 2);
	CHECK(img_set_commit(set, 1) == 0);
	img_set_abort(set);
	img_set_close(set);
	CHECK(count_entries(dir) == 3);
	free(dir);
}

/* Write raw bytes as a file of the set, with a correct header, trailer
 * and checksums: only the entries are hostile. */
static void put_crafted(struct img_set *set, const char *name, const uint8_t *body, size_t len,
			uint32_t count)
{
	uint8_t *buf = malloc(len + 28);
	size_t n = 0;
	int fd;

	img_header_fill(buf, IMG_PAGEMAP);
	n = IMG_HEADER_SIZE;
	memcpy(buf + n, body, len);
	n += len;
	put_le32(buf + n, IMG_TRAILER_MARK);
	put_le32(buf + n + 4, count);
	put_le32(buf + n + 8, crc32c(0, buf, n + 8));
	n += 12;
	fd = openat(img_set_dirfd(set), name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, buf, n) == (ssize_t)n);
	close(fd);
	CHECK(set_track(set, name) == 0);
	set_track_done(set, name, n, crc32c(0, buf, n));
	free(buf);
}

static void read_must_fail(struct img_set *set, const char *name, const char *what)
{
	ProtobufCMessage *msg;
	struct img *img;
	int ret;

	CHECK(img_open(set, IMG_PAGEMAP, name, &img) == 0);
	capture_begin();
	do {
		ret = img_read(img, &pagemap_entry__descriptor, &msg);
		if (msg)
			protobuf_c_message_free_unpacked(msg, NULL);
	} while (!ret && msg);
	const char *err = capture_end();
	CHECK(ret < 0);
	CHECK(strstr(err, name) && strstr(err, what));
	img_close(img);
}

static void test_hostile(const char *base)
{
	char dir[512];
	struct img_set *set;
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;
	uint8_t good[64], body[256];
	size_t glen = protobuf_c_message_pack(&pe.base, good + 8);
	size_t gl = glen + 8; /* the whole entry */

	put_le32(good, glen);
	put_le32(good + 4, crc32c(0, good + 8, glen));
	snprintf(dir, sizeof(dir), "%s/hostile", base);
	CHECK(img_set_create(dir, &set) == 0);
	memcpy(body, good, gl);
	put_le32(body + gl, IMG_MAX_ENTRY + 1);
	put_le32(body + gl + 4, 0);
	put_crafted(set, "huge.img", body, gl + 8, 2);
	memcpy(body, good, gl);
	put_le32(body + gl, 1000);
	memset(body + gl + 4, 0, 24);
	put_crafted(set, "past-end.img", body, gl + 28, 2);
	put_le32(body, 5);
	memset(body + 8, 0xff, 5);
	put_le32(body + 4, crc32c(0, body + 8, 5));
	put_crafted(set, "garbage.img", body, 13, 1);
	put_crafted(set, "count.img", good, gl, 7);
	put_crafted(set, "short-len.img", good, 6, 0);
	/* A message with a required field missing. */
	put_le32(body, 2);
	body[8] = 0x08; /* field 1 (vaddr) varint */
	body[9] = 0x01;
	put_le32(body + 4, crc32c(0, body + 8, 2));
	put_crafted(set, "missing-field.img", body, 10, 1);
	/* The entry's own crc wrong, the file's crc right (crafted). */
	memcpy(body, good, gl);
	body[4] ^= 1;
	put_crafted(set, "entry-crc.img", body, gl, 1);
	CHECK(img_set_commit(set, 1) == 0);
	img_set_close(set);

	CHECK(img_set_open(dir, &set) == 0); /* checksums are all fine */
	read_must_fail(set, "huge.img", "entry 1: length 67108865 over the limit");
	read_must_fail(set, "past-end.img", "entry 1: truncated");
	read_must_fail(set, "garbage.img", "entry 0: cannot decode a pagemap_entry");
	read_must_fail(set, "count.img", "trailer says 7 entries, the file holds 1");
	read_must_fail(set, "short-len.img", "entry 0: truncated");
	read_must_fail(set, "missing-field.img", "entry 0: cannot decode");
	read_must_fail(set, "entry-crc.img", "entry 0: checksum mismatch");
	img_set_close(set);

	/* A manifest of another format version. */
	struct img *img;
	ManifestEntry me = MANIFEST_ENTRY__INIT;
	me.format_version = IMG_FORMAT_VERSION + 1;
	me.hostname = me.kernel = "x";
	CHECK(img_set_create(dir, &set) == 0);
	CHECK(img_create_file(set, IMG_MANIFEST, "manifest", 0, &img) == 0);
	CHECK(img_write(img, &me.base) == 0);
	CHECK(img_close_write(img) == 0);
	img_set_close(set);
	open_must_fail(dir, "manifest", "format version 3, expected 2: written by a newer ckpt");
}

/* Every entry crc that can be found made right, then the file's. */
static void fix_crcs(uint8_t *d, size_t size)
{
	size_t pos = IMG_HEADER_SIZE, end = size - IMG_TRAILER_SIZE;

	while (end - pos >= IMG_ENTRY_HDR) {
		uint32_t len = get_le32(d + pos);
		if (len > end - pos - IMG_ENTRY_HDR)
			break;
		put_le32(d + pos + 4, crc32c(0, d + pos + IMG_ENTRY_HDR, len));
		pos += IMG_ENTRY_HDR + len;
	}
	put_le32(d + size - 4, crc32c(0, d, size - 4));
}

/* Random damage to the entries of a valid image, with header, trailer and
 * crc made right again: reading must fail cleanly or succeed, never crash
 * (run under ASan/UBSan with -DCKPT_SANITIZE=ON). */
static void test_mutations(const char *base)
{
	char dir[512], path[600];
	struct img_set *set;
	uint32_t seed = 12345;
	int failed = 0;

	snprintf(dir, sizeof(dir), "%s/mutate", base);
	CHECK(img_set_create(dir, &set) == 0);
	write_pagemaps(set, "good.img", 20);
	snprintf(path, sizeof(path), "%s/good.img", dir);
	size_t size = file_size(path);
	uint8_t *good = malloc(size), *bad = malloc(size);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && read(fd, good, size) == (ssize_t)size);
	close(fd);
	snprintf(path, sizeof(path), "%s/bad.img", dir);
	for (int round = 0; round < 3000; round++) {
		size_t body = size - IMG_HEADER_SIZE - IMG_TRAILER_SIZE;
		memcpy(bad, good, size);
		for (int k = 0; k <= round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			bad[IMG_HEADER_SIZE + (seed >> 8) % body] ^= 1u << ((seed >> 3) % 8);
		}
		fix_crcs(bad, size);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0 && write(fd, bad, size) == (ssize_t)size);
		close(fd);

		struct img *img;
		ProtobufCMessage *msg;
		int ret;
		int null = open("/dev/null", O_WRONLY), saved = dup(2);
		dup2(null, 2);
		CHECK(img_open_file(set, IMG_PAGEMAP, "bad.img", 0, &img) == 0);
		do {
			ret = img_read(img, &pagemap_entry__descriptor, &msg);
			if (msg)
				protobuf_c_message_free_unpacked(msg, NULL);
		} while (!ret && msg);
		img_close(img);
		dup2(saved, 2);
		close(saved);
		close(null);
		failed += ret < 0;
	}
	printf("mutations: 3000, %d refused\n", failed);
	CHECK(failed > 0);
	free(good);
	free(bad);
	img_set_abort(set);
	img_set_close(set);
}

int main(void)
{
	char *base = make_tmpdir();

	test_crc();
	test_round_trip(base);
	test_deferred_sync(base);
	test_bit_flips(base);
	test_truncated_missing(base);
	test_abort_and_recreate(base);
	test_hostile(base);
	test_mutations(base);
	remove_tree(base);
	free(base);
	printf("test-image: ok\n");
	return 0;
}
