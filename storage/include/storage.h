/*
 * storage/: the one place that writes and reads checkpoint image files.
 *
 * An image directory holds one file per kind of image ("core-123.img",
 * "mm-123.img", "files.img", ...).  A message image file is:
 *
 *   header   "CKPTIMG\0" (8 bytes), u32 format version, u32 image kind
 *   entries  u32 length (little endian) + that many bytes of protobuf
 *   trailer  u32 0xffffffff, u32 number of entries, u32 crc32c of every
 *            byte before this field
 *
 * A page data file ("pages-PID.img") is a header like the above (kind
 * IMG_PAGES) followed by chunks placed by the writer; the chunk table lives
 * in the matching pagemap image (offset, length, raw/lz4, crc32c per chunk).
 *
 * The set is committed by writing "manifest" (a message image with one
 * manifest_entry listing every file, its size and crc32c) last: tmp file,
 * fsync, rename, fsync of the directory.  A directory without a manifest is
 * not a checkpoint.
 *
 * Every reader treats its input as hostile: lengths, counts and offsets are
 * bounds-checked, and a bad file is reported with its name and the entry
 * number.  Functions return 0 or a negative errno and print one line to
 * stderr naming the file where the problem is.
 */
#ifndef CKPT_STORAGE_H
#define CKPT_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#define IMG_FORMAT_VERSION 1
#define IMG_MAX_ENTRY (64u << 20) /* no single message is larger */

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_CORE = 2,
	IMG_MM = 3,
	IMG_PAGEMAP = 4,
	IMG_PAGES = 5,
	IMG_FILES = 6,
	IMG_FDINFO = 7,
	IMG_PIPES_DATA = 8,
	IMG_MANIFEST = 9,
};

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* A directory being written.  Tracks every file created in it, with its
 * size and crc32c, for the manifest. */
struct img_set;
int img_set_create(const char *dir, struct img_set **out);  /* mkdir -p (0700) if missing */
int img_set_open(const char *dir, struct img_set **out);    /* for reading: checks manifest + every file's crc */
const char *img_set_dir(const struct img_set *set);
int img_set_dirfd(const struct img_set *set);
/* Move the set's directory fd to the lowest free fd >= min_fd (restore
 * keeps it above the fds it installs); returns the new fd or -errno. */
int img_set_move_fd(struct img_set *set, int min_fd);
/* Bytes of all files listed in the manifest (restore), or written so far. */
uint64_t img_set_bytes(const struct img_set *set);
/* Write the manifest (last step of a dump).  `root_pid` for the record. */
int img_set_commit(struct img_set *set, uint32_t root_pid);
/* Remove every file written so far and the manifest if any (failed dump).
 * The set must still be closed with img_set_close(). */
void img_set_abort(struct img_set *set);
void img_set_close(struct img_set *set);
/* Read side: the root pid the manifest records. */
uint32_t img_set_root_pid(const struct img_set *set);

/* Message images. */
struct img;
int img_create(struct img_set *set, enum img_kind kind, const char *name, struct img **out);
int img_write(struct img *img, const ProtobufCMessage *msg);
int img_close_write(struct img *img); /* trailer, fsync, record in the set; frees img */

int img_open(struct img_set *set, enum img_kind kind, const char *name, struct img **out);
/* Next message, unpacked with `desc`; 0 with *msg == NULL at the end.
 * Errors name the entry, counting from 0. Free
 * with protobuf_c_message_free_unpacked(msg, NULL). */
int img_read(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);
/* Exactly one message (core, mm, inventory images). */
int img_read_one(struct img_set *set, enum img_kind kind, const char *name,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);
void img_close(struct img *img);
/* Every message of an image: *out is a malloc'd array of *nr unpacked
 * messages (free each with protobuf_c_message_free_unpacked). */
int img_read_all(struct img_set *set, enum img_kind kind, const char *name,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***out, size_t *nr);
/* True if the set has a file of that name (optional images). */
int img_exists(struct img_set *set, const char *name);

/*
 * Page data.  The dumper hands the writer runs of present pages of a
 * stopped process; worker threads (one per CPU) read them straight from
 * the process (pread of /proc/PID/mem: unlike process_vm_readv it does not
 * copy pages the process shares copy-on-write, and it reads PROT_NONE
 * mappings; the caller needs ptrace access), drop pages that are all zero (they
 * become holes), compress the rest with lz4 (stored raw when that does not
 * shrink them) and write them to the pages file.  Each stored run of
 * non-zero pages comes back as one chunk (the pagemap_entry fields), split
 * at IMG_CHUNK_PAGES.
 */
#define IMG_CHUNK_PAGES 1024 /* 4 MiB */

struct page_chunk {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint64_t offset;   /* in the pages file */
	uint32_t comp_len; /* stored bytes */
	int raw;           /* stored uncompressed */
	uint32_t crc;      /* crc32c of the stored bytes */
};

struct page_writer;
/* `threads` <= 0: one per online CPU. */
int page_writer_open(struct img_set *set, const char *name, pid_t pid, int threads,
		     struct page_writer **out);
int page_writer_add(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages);
/* Wait for every queued run; the chunk table comes back sorted by vaddr
 * (malloc'd, the caller frees it). bytes_in: non-zero page bytes read,
 * bytes_out: bytes stored. Closes the file and frees `w`, also when it
 * fails (then the file is left for img_set_abort()). */
int page_writer_finish(struct page_writer *w, struct page_chunk **chunks, size_t *nr_chunks,
		       uint64_t *bytes_in, uint64_t *bytes_out);
void page_writer_free(struct page_writer *w); /* giving up before finish: stops workers */

/* Restore: decompress every chunk into memory. `dest(vaddr)` maps a dumped
 * address to where the bytes go now; called from worker threads. */
typedef void *(*page_dest_fn)(void *ctx, uint64_t vaddr, size_t len);
int page_reader_load(struct img_set *set, const char *name, const struct page_chunk *chunks,
		     size_t nr_chunks, int threads, page_dest_fn dest, void *ctx);

#endif
