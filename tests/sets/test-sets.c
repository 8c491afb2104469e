/*
 * test-sets: checkpoint sets at the storage level.
 *
 *   conf         the ckpt.conf loader: comments, sizes, a bad line named
 *                file:line, a missing file is empty
 *   crash        a set interrupted before its manifest, after any number
 *                of files, is never "latest", never opens, and is
 *                collected by the next set of the job; a set still being
 *                written (locked) is not
 *   retention    keep N, a parent an incremental child needs survives,
 *                removing it is refused, the per-user quota
 *   incremental  pages of this process: a full set, 5% of the pages
 *                changed, an incremental set (much smaller), a second
 *                incremental on top; each restores byte for byte through
 *                the chain; squash makes the last one self-contained; a
 *                parent of another user is refused
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "conf.h"
#include "internal.h"
#include "pagemap.pb-c.h"
#include "testutil.h"

#define PG 4096u

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

static void test_conf(const char *tmp)
{
	char path[512];
	struct conf *c;
	uint64_t v;

	snprintf(path, sizeof(path), "%s/ckpt.conf", tmp);
	write_file(path, "# comment\n\n  storage.base = /x/y  # trailing\n"
			 "retention.user_quota=2G\nretention.keep = 3\nstorage.base = /z\n"
			 "storage.local =\n");
	CHECK(conf_load(path, &c) == 0);
	CHECK(!strcmp(conf_get(c, "storage.base", "d"), "/z")); /* the last one wins */
	CHECK(!strcmp(conf_get(c, "storage.local", "d"), ""));
	CHECK(!strcmp(conf_get(c, "agent.socket", "d"), "d"));
	CHECK(conf_get_u64(c, "retention.user_quota", 0, &v) == 0 && v == 2ull << 30);
	CHECK(conf_get_u64(c, "retention.keep", 0, &v) == 0 && v == 3);
	CHECK(conf_get_u64(c, "missing", 7, &v) == 0 && v == 7);
	conf_free(c);

	write_file(path, "storage.base = /x\n# ok\nthis is not a setting\n");
	capture_begin();
	CHECK(conf_load(path, &c) == -EINVAL);
	CHECK(strstr(capture_end(), "ckpt.conf:3: expected key = value"));

	write_file(path, "retention.keep = many\n");
	CHECK(conf_load(path, &c) == 0);
	capture_begin();
	CHECK(conf_get_u64(c, "retention.keep", 0, &v) == -EINVAL);
	CHECK(strstr(capture_end(), "retention.keep = many"));
	conf_free(c);
	CHECK(conf_parse_size("4K", &v) == 0 && v == 4096);
	CHECK(conf_parse_size("4KB", &v) == -EINVAL && conf_parse_size("-1", &v) == -EINVAL);
	CHECK(conf_parse_size("99999999999999999999", &v) == -EINVAL);

	snprintf(path, sizeof(path), "%s/none.conf", tmp);
	CHECK(conf_load(path, &c) == 0 && !conf_get(c, "storage.base", NULL));
	conf_free(c);
}

/* A set of the job with `files` small images; committed when asked. */
static uint64_t make_set(const char *base, const char *job, int files, int commit,
			 const char *parent)
{
	struct img_set *set;
	uint64_t seq;
	char name[32];

	CHECK(img_set_create_job(base, job, -1, 0, &set, &seq) == 0);
	if (parent)
		CHECK(img_set_use_parent(set, parent, NULL) == 0);
	for (int i = 0; i < files; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		struct img *img;
		snprintf(name, sizeof(name), "file-%d.img", i);
		CHECK(img_create(set, IMG_PAGEMAP, name, &img) == 0);
		for (int k = 0; k < 100; k++)
			CHECK(img_write(img, &pe.base) == 0);
		CHECK(img_close_write(img) == 0);
	}
	if (commit) {
		CHECK(img_set_commit(set, 1) == 0);
		CHECK(imgset_set_latest(base, job, seq) == 0);
	}
	img_set_close(set);
	return seq;
}

static int set_exists(const char *base, const char *job, uint64_t seq)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%llu", base, job, (unsigned long long)seq);
	return access(path, F_OK) == 0;
}

static void check_latest(const char *base, const char *job, uint64_t seq)
{
	char path[512], want[512];

	CHECK(imgset_latest(base, job, path, sizeof(path)) == 0);
	snprintf(want, sizeof(want), "%s/%s/%llu", base, job, (unsigned long long)seq);
	CHECK(!strcmp(path, want));
}

static void test_crash(const char *tmp)
{
	char base[512], path[512];
	struct img_set *set, *busy;
	uint64_t seq, busy_seq;

	snprintf(base, sizeof(base), "%s/crash", tmp);
	capture_begin();
	CHECK(imgset_latest(base, "j", path, sizeof(path)) == -ENOENT);
	capture_end();
	CHECK(make_set(base, "j", 3, 1, NULL) == 1);
	check_latest(base, "j", 1);
	for (int files = 0; files <= 3; files++) {
		/* A dumper that dies after `files` files (the set's lock goes
		 * with it). */
		pid_t pid = fork();
		int status;
		if (pid == 0) {
			make_set(base, "j", files, 0, NULL);
			_exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status));
		CHECK(set_exists(base, "j", 2));
		check_latest(base, "j", 1);
		snprintf(path, sizeof(path), "%s/j/2", base);
		capture_begin();
		CHECK(img_set_open(path, &set) == -ENOENT);
		CHECK(strstr(capture_end(), "no manifest"));
		/* The next set of the job collects it and takes its SEQ. */
		CHECK(img_set_create_job(base, "j", -1, 0, &set, &seq) == 0 && seq == 2);
		img_set_abort(set);
		img_set_close(set);
	}
	/* A half-written manifest is no manifest either. */
	CHECK(img_set_create_job(base, "j", -1, 0, &set, &seq) == 0);
	snprintf(path, sizeof(path), "%s/j/%llu/%s", base, (unsigned long long)seq, MANIFEST_TMP);
	write_file(path, "CKPTIMG");
	img_set_close(set);
	CHECK(imgset_gc(base, "j") == 0 && !set_exists(base, "j", seq));

	/* A set being written is not garbage; a second writer is refused. */
	CHECK(img_set_create_job(base, "j", -1, 0, &busy, &busy_seq) == 0);
	CHECK(imgset_gc(base, "j") == 0 && set_exists(base, "j", busy_seq));
	snprintf(path, sizeof(path), "%s/j/%llu", base, (unsigned long long)busy_seq);
	capture_begin();
	CHECK(img_set_create(path, &set) == -EBUSY);
	CHECK(strstr(capture_end(), "being written by another dump"));
	CHECK(img_set_create_job(base, "j", -1, 0, &set, &seq) == 0 && seq == busy_seq + 1);
	img_set_close(set);
	img_set_close(busy);
	CHECK(imgset_gc(base, "j") == 0);
	CHECK(!set_exists(base, "j", busy_seq) && !set_exists(base, "j", seq));
	check_latest(base, "j", 1);

	capture_begin();
	CHECK(img_set_create_job(base, "../x", -1, 0, &set, &seq) == -EINVAL);
	CHECK(strstr(capture_end(), "not a valid name"));
}

static void set_dir(char *out, size_t len, const char *base, const char *job, uint64_t seq)
{
	snprintf(out, len, "%s/%s/%llu", base, job, (unsigned long long)seq);
}

static void check_sets(const char *base, const char *job, const char *want)
{
	struct set_info *v;
	size_t n;
	char got[256] = "";

	CHECK(imgset_list(base, job, &v, &n) == 0);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu", i ? "," : "",
			 (unsigned long long)v[i].seq);
	free(v);
	if (strcmp(got, want))
		fprintf(stderr, "%s/%s: sets %s, want %s\n", base, job, got, want);
	CHECK(!strcmp(got, want));
}

static void test_retention(const char *tmp)
{
	char base[512], p[512];
	struct set_info *v;
	size_t n;
	uint64_t one;

	snprintf(base, sizeof(base), "%s/ret", tmp);
	make_set(base, "a", 1, 1, NULL);
	set_dir(p, sizeof(p), base, "a", 1);
	make_set(base, "a", 1, 1, p); /* 2, incremental on 1 */
	make_set(base, "a", 1, 1, NULL);
	make_set(base, "a", 1, 1, NULL);
	CHECK(imgset_list(base, "a", &v, &n) == 0 && n == 4 && v[1].parent_seq == 1 &&
	      v[0].parent_seq == -1 && v[1].committed && v[1].bytes > 0);
	one = v[0].bytes;
	free(v);
	/* Removing a parent a child needs is refused. */
	capture_begin();
	CHECK(imgset_remove(base, "a", 1) == -EBUSY);
	CHECK(strstr(capture_end(), "an incremental set needs it"));
	/* keep 2: 2 goes, which frees 1. */
	CHECK(imgset_retain(base, "a", 2, 0, 0, 4) == 0);
	check_sets(base, "a", "3,4");
	/* 5 on 4: keep 1 keeps 4 too, since 5 needs it. */
	set_dir(p, sizeof(p), base, "a", 4);
	make_set(base, "a", 1, 1, p);
	CHECK(imgset_retain(base, "a", 1, 0, 0, 5) == 0);
	check_sets(base, "a", "4,5");
	check_latest(base, "a", 5);

	/* Quota over two jobs of the same user: the oldest sets go first,
	 * never the one just committed nor a needed parent. */
	make_set(base, "b", 1, 1, NULL);
	make_set(base, "b", 1, 1, NULL);
	make_set(base, "a", 1, 1, NULL); /* a/6 */
	CHECK(imgset_retain(base, "a", 0, 3 * one + one / 2, (uint32_t)geteuid(), 6) == 0);
	/* a/4 is the oldest but a/5 needs it: a/5 goes, then a/4. */
	check_sets(base, "a", "6");
	check_sets(base, "b", "1,2");
	capture_begin();
	CHECK(imgset_retain(base, "a", 0, one / 2, (uint32_t)geteuid(), 6) == 0);
	CHECK(strstr(capture_end(), "over the quota"));
	check_sets(base, "a", "6");
	check_sets(base, "b", "");
	/* Another user's quota leaves these alone. */
	CHECK(imgset_retain(base, "a", 0, 1, 12345, 0) == 0);
	check_sets(base, "a", "6");
}

/* ---- incremental pages, read from this process ---- */

static uint64_t rng = 7;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_page(uint8_t *p)
{
	for (size_t i = 0; i < PG / 8; i++)
		((uint64_t *)p)[i] = next_rand();
}

struct dest {
	uint8_t *from, *to;
	size_t len;
};

static void *to_copy(void *ctx, uint64_t vaddr, size_t len)
{
	struct dest *d = ctx;
	uint64_t off = vaddr - (uint64_t)(uintptr_t)d->from;

	return off > d->len || len > d->len - off ? NULL : d->to + off;
}

static uint64_t dump_mem(const char *dir, const char *parent, uint8_t *mem, size_t len,
			 size_t *in_parent)
{
	struct img_set *set;
	struct page_writer *w;
	struct page_chunk *c;
	size_t nr;
	uint64_t in, out;

	CHECK(img_set_create(dir, &set) == 0);
	if (parent)
		CHECK(img_set_use_parent(set, parent, NULL) == 0);
	CHECK(page_writer_open(set, "pages-1.img", getpid(), 2, &w) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem, len / PG) == 0);
	CHECK(page_writer_finish(w, &c, &nr, &in, &out) == 0);
	*in_parent = 0;
	for (size_t i = 0; i < nr; i++)
		*in_parent += c[i].in_parent ? c[i].nr_pages : 0;
	CHECK(pagemap_write(set, "pagemap-1.img", c, nr) == 0);
	page_chunks_free(c, nr);
	CHECK(img_set_commit(set, getpid()) == 0);
	img_set_close(set);
	return out;
}

/* Restores the set into fresh memory and compares with `mem`. */
static int restore_equal(const char *dir, uint8_t *mem, size_t len)
{
	struct img_set *set;
	struct page_chunk *c;
	size_t nr;
	struct dest d = { mem, NULL, len };
	int ret;

	d.to = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(d.to != MAP_FAILED);
	ret = img_set_open(dir, &set);
	if (!ret) {
		CHECK(pagemap_read(set, "pagemap-1.img", 0, &c, &nr) == 0);
		ret = page_reader_load(set, "pages-1.img", c, nr, 2, to_copy, &d);
		page_chunks_free(c, nr);
		img_set_close(set);
	}
	if (!ret)
		ret = memcmp(d.to, mem, len) ? -EBADMSG : 0;
	munmap(d.to, len);
	return ret;
}

static void change_pages(uint8_t *mem, size_t pages, unsigned percent)
{
	for (size_t i = 0; i < pages; i++)
		if (next_rand() % 100 < percent)
			fill_page(mem + i * PG);
}

static void test_incremental(const char *tmp)
{
	const size_t pages = 8192, len = pages * PG; /* 32 MiB */
	char d1[512], d2[512], d3[512], moved[512];
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t s1, s2, s3;
	size_t same;
	struct img_set *set;

	CHECK(mem != MAP_FAILED);
	for (size_t i = 0; i < pages; i++)
		fill_page(mem + i * PG);
	memset(mem + 5 * PG, 0, PG); /* a hole */
	snprintf(d1, sizeof(d1), "%s/inc/1", tmp);
	snprintf(d2, sizeof(d2), "%s/inc/2", tmp);
	snprintf(d3, sizeof(d3), "%s/inc/3", tmp);
	s1 = dump_mem(d1, NULL, mem, len, &same);
	CHECK(same == 0 && s1 >= len - 2 * PG);

	change_pages(mem, pages, 5);
	memset(mem + 7 * PG, 0, PG); /* a page that became zero */
	fill_page(mem + 5 * PG);     /* a hole that got data */
	s2 = dump_mem(d2, d1, mem, len, &same);
	printf("full set %llu bytes, incremental after 5%% changed: %llu bytes (%.1f%%), %zu pages "
	       "in the parent\n",
	       (unsigned long long)s1, (unsigned long long)s2, 100.0 * s2 / s1, same);
	CHECK(s2 < s1 / 10 && same > pages * 9 / 10);
	CHECK(restore_equal(d2, mem, len) == 0);

	change_pages(mem, pages, 5);
	s3 = dump_mem(d3, d2, mem, len, &same);
	CHECK(s3 < s1 / 10);
	CHECK(restore_equal(d3, mem, len) == 0);
	CHECK(img_set_open_manifest(d3, &set) == 0);
	CHECK(!strcmp(img_set_parent_path(set), "../2"));
	img_set_close(set);

	/* A parent of another user is refused at commit. */
	snprintf(moved, sizeof(moved), "%s/inc/other", tmp);
	CHECK(img_set_create(moved, &set) == 0);
	img_set_set_owner(set, 12345);
	CHECK(img_set_use_parent(set, d1, NULL) == 0);
	capture_begin();
	CHECK(img_set_commit(set, getpid()) == -EPERM);
	CHECK(strstr(capture_end(), "belongs to uid 0, this set to 12345"));
	img_set_abort(set);
	img_set_close(set);

	/* Without its parent the child fails cleanly, naming it. */
	snprintf(moved, sizeof(moved), "%s/inc/moved", tmp);
	CHECK(rename(d1, moved) == 0);
	capture_begin();
	CHECK(restore_equal(d3, mem, len) == -ENOENT);
	CHECK(strstr(capture_end(), "inc/3/../2/../1: open"));
	CHECK(rename(moved, d1) == 0);

	/* Squash: self-contained, same memory, the chain no longer needed. */
	CHECK(imgset_squash(d3) == 0);
	CHECK(img_set_open_manifest(d3, &set) == 0 && !img_set_parent_path(set));
	printf("squashed set: %llu bytes\n", (unsigned long long)img_set_bytes(set));
	CHECK(img_set_bytes(set) > s1 - s1 / 10);
	img_set_close(set);
	CHECK(rename(d1, moved) == 0 && rename(d2, d1) == 0); /* parents gone */
	CHECK(restore_equal(d3, mem, len) == 0);
	munmap(mem, len);
}

/*
 * PAGE_RUN_UNWRITTEN (dirty-page tracking, libckpt/track.c): the pages a
 * run so flagged holds in the parent are taken from it unread, with its
 * hashes (so that a child of this set can still compare); a page the
 * parent lacks (a hole there) is read.  Pages 0-99 are rewritten and
 * added as written; the rest as unwritten, page 5 of which was a hole in
 * the parent and holds data now.
 */
static void test_unwritten(const char *tmp)
{
	const size_t pages = 1024, len = pages * PG;
	char d1[512], d2[512], d3[512];
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct img_set *set;
	struct page_writer *w;
	struct page_chunk *c;
	size_t nr, same;
	uint64_t in, out;

	CHECK(mem != MAP_FAILED);
	for (size_t i = 0; i < pages; i++)
		fill_page(mem + i * PG);
	memset(mem + 500 * PG, 0, PG);
	snprintf(d1, sizeof(d1), "%s/unw/1", tmp);
	snprintf(d2, sizeof(d2), "%s/unw/2", tmp);
	snprintf(d3, sizeof(d3), "%s/unw/3", tmp);
	dump_mem(d1, NULL, mem, len, &same);
	for (size_t i = 0; i < 100; i++)
		fill_page(mem + i * PG);
	fill_page(mem + 500 * PG);

	CHECK(img_set_create(d2, &set) == 0);
	CHECK(img_set_use_parent(set, d1, NULL) == 0);
	CHECK(page_writer_open(set, "pages-1.img", getpid(), 2, &w) == 0);
	CHECK(page_writer_add(w, (uintptr_t)mem, 100) == 0);
	CHECK(page_writer_add_flags(w, (uintptr_t)mem + 100 * PG, pages - 100, PAGE_RUN_UNWRITTEN) == 0);
	uint64_t unread = page_writer_unread_pages(w);
	CHECK(page_writer_finish(w, &c, &nr, &in, &out) == 0);
	printf("unwritten runs: %llu pages unread, %llu bytes read\n", (unsigned long long)unread,
	       (unsigned long long)in);
	CHECK(unread == pages - 101 && in == 101 * PG);
	CHECK(pagemap_write(set, "pagemap-1.img", c, nr) == 0);
	page_chunks_free(c, nr);
	CHECK(img_set_commit(set, getpid()) == 0);
	img_set_close(set);
	CHECK(restore_equal(d2, mem, len) == 0);

	/* the hashes came along: a hashed child of set 2 finds the same pages */
	fill_page(mem + 900 * PG);
	dump_mem(d3, d2, mem, len, &same);
	CHECK(same == pages - 1);
	CHECK(restore_equal(d3, mem, len) == 0);
	munmap(mem, len);
}

int main(void)
{
	char *tmp = make_tmpdir();

	test_conf(tmp);
	test_crash(tmp);
	test_retention(tmp);
	test_incremental(tmp);
	test_unwritten(tmp);
	remove_tree(tmp);
	free(tmp);
	printf("test-sets: ok\n");
	return 0;
}
