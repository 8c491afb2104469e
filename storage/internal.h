/*
 * Shared between the files of storage/ only: the image set's list of
 * files (what the manifest will hold), the image header, and small I/O
 * helpers.  Users of storage/ include storage.h, never this.
 */
#ifndef CKPT_STORAGE_INTERNAL_H
#define CKPT_STORAGE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#include "created.h"
#include "manifest.pb-c.h"
#include "storage.h"

#define st_err(fmt, ...) fprintf(stderr, "ckpt: " fmt "\n", ##__VA_ARGS__)

#define IMG_MAGIC "CKPTIMG" /* 8 bytes with its NUL */
#define IMG_HEADER_SIZE 16u
#define IMG_TRAILER_SIZE 12u
#define IMG_TRAILER_MARK 0xffffffffu
#define IMG_ENTRY_HDR 8u /* u32 length, u32 crc32c of the payload */
#define MANIFEST_NAME "manifest"
#define MANIFEST_TMP "manifest.tmp"

/* One file of the set: written by us (write side) or listed in the
 * manifest (read side). */
struct set_process {
	uint32_t pid, ppid;
	char comm[32];
};

struct set_file {
	char *name;
	uint64_t size;
	uint32_t crc;
	int done; /* closed and recorded (write side); always 1 on read */
	int sent; /* written on the page server as it was made (remote.c) */
	int unsynced; /* closed without its fsync (img_set_defer_sync) */
};

struct img_set {
	char *dir;
	int dirfd;
	int writing;
	int defer_sync; /* img_set_defer_sync: the commit fsyncs the files */
	uint32_t root_pid; /* read side, from the manifest */
	uint64_t created_ns; /* read side */
	char *parent_path; /* incremental: as the manifest has it ("../SEQ" or absolute) */
	struct img_set *parent; /* write side: the parent the page writer compares with */
	/* write side, for the manifest */
	int64_t owner_uid; /* -1: the owner of the root process */
	char *job;
	uint64_t seq;
	struct set_process *procs;
	size_t nr_procs;
	pthread_mutex_t lock;
	struct set_file *files;
	size_t nr_files, cap_files;
	struct created_log created; /* write side: what we made, for abort (under lock) */
	struct set_remote *remote; /* write side: pages go to a page server (remote.c) */
	size_t nr_parts; /* read side: a multi-node set's parts (jobparts.c) */
};

/* jobparts.c's commit: the manifest of a multi-node set, its parts and
 * ranks instead of files. */
int img_set_commit_parts(struct img_set *set, ManifestPart **parts, size_t nr,
			 ManifestRank **ranks, size_t nr_ranks);

/* Page server, dumping side (remote.c).  remote_write: from any thread;
 * the first error sticks.  remote_commit: the files not sent yet, then
 * the manifest written locally as `tmp`; 0 once the server committed. */
int remote_write(struct img_set *set, const char *name, const void *data, size_t len,
		 uint64_t off);
int remote_write_empty(struct img_set *set, const char *name);
int remote_commit(struct img_set *set, const char *tmp);
void remote_close(struct set_remote *r);
/* Write side: `name` went to the page server, not to the directory. */
void set_mark_sent(struct img_set *set, const char *name);

/* Write side: the file `name` created (O_WRONLY) and recorded. */
int set_create_fd(struct img_set *set, const char *name);
/* img_set_create, with `pre` (directories made for it) moved first into
 * the set's record of what it created; `parents` as dir_create_nofollow. */
int set_create_with(const char *dir, int parents, struct created_log *pre, struct img_set **out);

/* Write side: `name` is being written (abort removes it from now on). */
int set_track(struct img_set *set, const char *name);
/* Write side: `name` is complete with this size and crc. */
void set_track_done(struct img_set *set, const char *name, uint64_t size, uint32_t crc);
/* The complete file `name`, or NULL. */
const struct set_file *set_find(struct img_set *set, const char *name);
/* A name that may live in the directory: no '/', not "." or "..". */
int set_valid_name(const char *name);

/* img_create/img_open/img_read_one with a choice: `track` records the
 * file in the set, `listed` requires it to be there (both off: manifest). */
int img_create_file(struct img_set *set, enum img_kind kind, const char *name, int track,
		    struct img **out);
int img_open_file(struct img_set *set, enum img_kind kind, const char *name, int listed,
		  struct img **out);
int img_read_one_file(struct img_set *set, enum img_kind kind, const char *name, int listed,
		      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);

void img_header_fill(uint8_t hdr[IMG_HEADER_SIZE], enum img_kind kind);
/* One entry at dst: length, crc32c of the payload, `msg` packed (`len`
 * bytes, its packed size). */
void img_entry_pack(uint8_t *dst, const ProtobufCMessage *msg, size_t len);
/* Where a message image in memory is damaged: 1 with a phrase in `why`
 * ("entry 3: checksum mismatch", "header damaged", "trailer truncated"),
 * 0 when its framing and every crc are right. */
int img_damage(const uint8_t *data, size_t size, char *why, size_t len);
/* Prints "DIR/NAME: WHAT: where" for a file of a set being opened that
 * failed its size check (`fd` open on it, `size` its real size), or with
 * `what` NULL "DIR/NAME: where" for a crc mismatch ("entry 3: checksum
 * mismatch"): the entry of a message image, the chunk of a pages file. */
void set_explain_damage(struct img_set *set, const char *name, int fd, uint64_t size,
			const char *what);
/* 0 or -EINVAL after printing what is wrong with the header of `name`. */
int img_header_check(const struct img_set *set, const char *name, const uint8_t *hdr,
		     size_t len, enum img_kind kind);

#define PAGE_SIZE_ 4096u
#define CHUNK_BYTES (IMG_CHUNK_PAGES * PAGE_SIZE_)
#define MAX_THREADS 64
#define MAX_PARENT_DEPTH 64
#define MAX_SET_PARTS 4096 /* nodes of a multi-node set */

/* Worker threads to use: `threads` <= 0 means one per online CPU. */
int page_threads(int threads);

/* The page hashes of one process in a parent set, sorted by address. */
struct page_hashes {
	uint64_t *vaddr, *hash;
	size_t nr;
};
/* From the parent's pagemap matching the pages file `pages_name`; a
 * process the parent does not have gives an empty table. */
int page_hashes_load(struct img_set *parent, const char *pages_name, struct page_hashes *out);
void page_hashes_free(struct page_hashes *ph);
/* "pages-X.img" -> "pagemap-X.img"; -EINVAL for another name. */
int pagemap_name_of(const char *pages_name, char *out, size_t len);
/* Opens the parent set of a set being read; the caller closes it. */
int set_parent(struct img_set *set, struct img_set **out);

/* Copies file `name` of `from` (`size` bytes) to `to_name` in `to`, fsynced. */
int set_copy_file(struct img_set *from, struct img_set *to, const char *name, uint64_t size,
		  const char *to_name);

int write_full(int fd, const void *buf, size_t len);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* Reads exactly `len` bytes; -EIO on a short file. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pread_least(int fd, void *buf, size_t len, uint64_t off, size_t need);

/* crc32c(A || B) from crc32c(A), crc32c(B) and the length of B. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
/* The table walk, for tests to check the fast path against. */
uint32_t crc32c_slow(uint32_t crc, const void *buf, size_t len);

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
