/*
 * storage/: the one place that writes and reads checkpoint image files.
 *
 * An image directory holds one file per kind of image ("core-123.img",
 * "mm-123.img", "files.img", ...).  A message image file is:
 *
 *   header   "CKPTIMG\0" (8 bytes), u32 format version, u32 image kind
 *   entries  u32 length, u32 crc32c of the payload (little endian), then
 *            that many bytes of protobuf (the payload)
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

#define IMG_FORMAT_VERSION 2 /* 2: a crc per entry */
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
	IMG_SHM = 10, /* shm-*.img: one shm_object_entry (ipc.proto) */
	IMG_IPC = 11, /* ipc.img: one ipc_entry (ipc.proto) */
	IMG_SAVED = 12, /* saved.img: one saved_files_entry (saved.proto) */
	IMG_CGROUP = 13, /* cgroup.img: one cgroup_entry (cgroup.proto) */
};

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* A directory being written.  Tracks every file created in it, with its
 * size and crc32c, for the manifest. */
struct img_set;
int img_set_create(const char *dir, struct img_set **out);  /* mkdir -p (0700) if missing, no symlinks */
int img_set_open(const char *dir, struct img_set **out);    /* for reading: checks manifest + every file's crc */
/* The same, but the pages-*.img files are only checked for their size:
 * each chunk carries its own crc (in the pagemap, which is checked),
 * verified when it is read (pages-read.c).  What a restore opens: it
 * reads every page once, not twice (a 4 GiB set: 2 GB less to read
 * cold), and a bad chunk fails it there, killing what it made. */
int img_set_open_but_pages(const char *dir, struct img_set **out);
const char *img_set_dir(const struct img_set *set);
/* The directory of the parent set given to img_set_use_parent, or NULL. */
const char *img_set_parent_dir(const struct img_set *set);
int img_set_dirfd(const struct img_set *set);
/* Move the set's directory fd to the lowest free fd >= min_fd (restore
 * keeps it above the fds it installs); returns the new fd or -errno. */
int img_set_move_fd(struct img_set *set, int min_fd);
/* Bytes of all files listed in the manifest (restore), or written so far. */
uint64_t img_set_bytes(const struct img_set *set);
/* Files closed from now on are fsynced by the commit, not at their close:
 * a dump that thaws its tree before the commit (snapshots) keeps the
 * disk's latency out of the frozen window. */
void img_set_defer_sync(struct img_set *set);
/* Write the manifest (last step of a dump).  `root_pid` for the record. */
int img_set_commit(struct img_set *set, uint32_t root_pid);
/* Failed dump: remove what this set created (files, and the directories
 * made for it), each only if still the inode created (see created.h).
 * The set must still be closed with img_set_close(). */
void img_set_abort(struct img_set *set);
void img_set_close(struct img_set *set);
/* Read side: the root pid the manifest records. */
uint32_t img_set_root_pid(const struct img_set *set);
/* Read side without checking every file's crc (listing sets, parents). */
int img_set_open_manifest(const char *dir, struct img_set **out);
/* The parent as the manifest records it, or NULL (not incremental). */
const char *img_set_parent_path(const struct img_set *set);
uint32_t img_set_owner(const struct img_set *set);
uint64_t img_set_created_ns(const struct img_set *set);

/* Write side, before the commit: what the manifest records besides the
 * files.  With an owner, every file and the directory are chowned to it
 * (and its primary group) at commit; without, the owner is the root
 * process's uid. */
void img_set_set_owner(struct img_set *set, uid_t uid);
int img_set_set_job(struct img_set *set, const char *job, uint64_t seq);
int img_set_add_process(struct img_set *set, uint32_t pid, uint32_t ppid, const char *comm);
/* Incremental: pages equal to the committed set `parent_dir`'s at the
 * same address are not stored.  `record`: how the manifest names the
 * parent (NULL: "../NAME" when beside this set, else the absolute path). */
int img_set_use_parent(struct img_set *set, const char *parent_dir, const char *record);

/*
 * Page server (remote.c, page-server.c).  img_set_send_to(): this set's
 * pages files go to the page server at "HOST:PORT" as they are made,
 * authenticated with a munge credential of our uid; its other files stay
 * in its directory too and are sent at commit, then the manifest.  The
 * committed set is the server's directory; this one keeps the metadata
 * and no manifest.  Not with a parent (incremental): -EINVAL.
 */
int img_set_send_to(struct img_set *set, const char *where);
/* Serves on `address` (NULL: every address) port `port` (0: any; the
 * port is printed on stdout as "listening on ADDR:PORT") until one set
 * has been received and committed into `dir`.  A connection is accepted
 * when its munge credential's uid is ours or root (when we are root:
 * root only); the files are written as we are. 0 or -errno. */
int page_server_run(const char *dir, const char *address, int port);

/* Tools (ckptctl image, fuzzers): every regular file of `dir` is a member,
 * with its current size; no manifest is read or checked.  Never for
 * restore.  The files of any set: name, size and crc (0 in a raw set). */
int img_set_open_raw(const char *dir, struct img_set **out);
size_t img_set_nr_files(const struct img_set *set);
const char *img_set_file(const struct img_set *set, size_t i, uint64_t *size, uint32_t *crc);

/* Tools: the fixed header of every image file; -EINVAL without the magic. */
#define IMG_HEADER_LEN 16
int img_peek(const uint8_t *buf, size_t len, uint32_t *version, uint32_t *kind);
/* A whole image file in memory, malloc'd, byte for byte what the writer
 * makes: message entries and trailer, or for IMG_PAGES `body` after the
 * header. */
int img_build(enum img_kind kind, const ProtobufCMessage *const *msgs, size_t n, const void *body,
	      size_t body_len, uint8_t **out, size_t *out_len);

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
 * at IMG_CHUNK_PAGES; the runs a worker takes at once (a run longer than
 * PAGE_BATCH_PAGES alone, else up to PAGE_BATCH_PAGES pages of runs) are
 * stored as one block that their chunks share.
 */
#define IMG_CHUNK_PAGES 1024 /* 4 MiB */
/* 512 KiB: the buffers of a batch stay in the CPU's L2 cache, in the
 * writer (read, hashed, compressed) and in the reader (decompressed, then
 * copied to each chunk's place); lz4 looks back 64 KiB only, so a larger
 * block would compress no better. */
#define PAGE_BATCH_PAGES 128

struct page_chunk {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint64_t offset;   /* in the pages file */
	uint32_t comp_len; /* stored bytes */
	int raw;           /* stored uncompressed */
	uint32_t crc;      /* crc32c of the stored bytes */
	int in_parent;     /* nothing stored: the parent set's pages (incremental) */
	uint64_t *hashes;  /* writer: XXH3-64 of each page (malloc'd), else NULL */
	/* Several chunks may share one stored block (one lz4 block, at
	 * offset, comp_len long, crc and raw alike): a fragmented heap's
	 * runs of a few pages are compressed and written together.  The block
	 * holds block_pages pages once decompressed (0: nr_pages, a block of
	 * its own); this chunk's pages are the nr_pages from page block_skip. */
	uint32_t block_pages;
	uint32_t block_skip;
};

struct page_writer;
/* `threads` <= 0: one per online CPU. */
int page_writer_open(struct img_set *set, const char *name, pid_t pid, int threads,
		     struct page_writer **out);
int page_writer_add(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages);
/* A zero page of a private file mapping is not a hole: the file shows
 * through a hole.  Runs added with PAGE_RUN_KEEP_ZERO store them too. */
#define PAGE_RUN_KEEP_ZERO 1u
/* Dirty-page tracking (libckpt/track.c) says these pages were not
 * written since the parent set was taken: each page the parent holds is
 * in_parent (with the parent's hash) without being read; the others are
 * read as usual.  Only with a parent. */
#define PAGE_RUN_UNWRITTEN 2u
int page_writer_add_flags(struct page_writer *w, uint64_t vaddr, uint32_t nr_pages, uint32_t flags);
/* Wait for every queued run; the chunk table comes back sorted by vaddr
 * (malloc'd, the caller frees it). bytes_in: non-zero page bytes read,
 * bytes_out: bytes stored. Closes the file and frees `w`, also when it
 * fails (then the file is left for img_set_abort()). */
int page_writer_finish(struct page_writer *w, struct page_chunk **chunks, size_t *nr_chunks,
		       uint64_t *bytes_in, uint64_t *bytes_out);
/* Pages of PAGE_RUN_UNWRITTEN runs taken from the parent unread (not in
 * bytes_in); call before page_writer_finish. */
uint64_t page_writer_unread_pages(const struct page_writer *w);
void page_writer_free(struct page_writer *w); /* giving up before finish: stops workers */
/* Frees a chunk table from page_writer_finish() or pagemap_read(). */
void page_chunks_free(struct page_chunk *chunks, size_t nr);

/* The chunk table of a process ("pagemap-PID.img"), hashes included when
 * `with_hashes`.  Entries are not checked here: page_reader_load() does. */
int pagemap_write(struct img_set *set, const char *name, const struct page_chunk *chunks,
		  size_t nr);
/* The block fields of a pagemap_entry (0 when absent) into c. */
struct PagemapEntry;
void pagemap_entry_block(const struct PagemapEntry *pe, struct page_chunk *c);
int pagemap_read(struct img_set *set, const char *name, int with_hashes,
		 struct page_chunk **chunks, size_t *nr);

/* Restore: decompress every chunk into memory. `dest(vaddr)` maps a dumped
 * address to where the bytes go now; called from worker threads.  Chunks
 * marked in_parent are read through the chain of parent sets: the parent's
 * "pagemap-X.img" (X from `name`, "pages-X.img") tells where its pages are. */
typedef void *(*page_dest_fn)(void *ctx, uint64_t vaddr, size_t len);
int page_reader_load(struct img_set *set, const char *name, const struct page_chunk *chunks,
		     size_t nr_chunks, int threads, page_dest_fn dest, void *ctx);
/* The same, but where `keep(vaddr, len)` says so the destination already
 * holds pages (inherited copy-on-write from a parent): only the pages
 * that differ are written, so that the others stay shared. */
typedef int (*page_keep_fn)(void *ctx, uint64_t vaddr, size_t len);
int page_reader_load_keep(struct img_set *set, const char *name, const struct page_chunk *chunks,
			  size_t nr_chunks, int threads, page_dest_fn dest, page_keep_fn keep,
			  void *ctx);

/*
 * Job sets (jobset.c): the checkpoints of a batch job live in
 * BASE/JOB/SEQ/, SEQ = 1, 2, ...; BASE/JOB/latest is a symlink to the SEQ
 * of the last committed set, replaced atomically (rename) after each
 * commit.  A SEQ directory without a manifest and not locked by a writer
 * is garbage, removed by the next dump of the job or imgset_gc().
 * Directories are 0700 and, like every file, owned by the job's user.
 */
struct set_info {
	uint64_t seq;
	int committed;
	uint64_t created_ns, bytes;
	uint32_t owner_uid;
	int64_t parent_seq; /* -1: not incremental, or a parent outside the job */
};

/* A new set BASE/JOB/SEQ with SEQ = `seq`, or the next free one when 0;
 * *seq_out tells which.  `uid` >= 0: the owner of the set. */
int img_set_create_job(const char *base, const char *job, int64_t uid, uint64_t seq,
		       struct img_set **out, uint64_t *seq_out);
/* The directory of the latest committed set; -ENOENT when there is none. */
int imgset_latest(const char *base, const char *job, char *path, size_t len);
int imgset_set_latest(const char *base, const char *job, uint64_t seq);
/* The SEQ the next set of the job would take (BASE/JOB made if missing,
 * owned by `uid` >= 0). */
int imgset_next_seq(const char *base, const char *job, int64_t uid, uint64_t *seq);
/*
 * Multi-node sets (jobparts.c, docs/coordinator.md): BASE/JOB/SEQ/nodes/
 * NODE/ is one node's part, a whole set with its own manifest; the set's
 * own manifest names each part with its manifest's crc32c, and the ranks.
 */
struct set_part {
	const char *node;
	uint32_t manifest_crc;
	uint32_t rank, root_pid;
	int batch;           /* the part with the job's batch script */
	const char *address; /* the node's address at the dump, or NULL */
};
/* Checks every part's manifest against its crc, writes BASE/JOB/SEQ's
 * manifest (owned by `uid` >= 0), then `latest`. */
int imgset_commit_parts(const char *base, const char *job, uint64_t seq, int64_t uid,
			const struct set_part *parts, size_t nr);
/* A multi-node set's parts as its manifest names them, for its restore. */
struct set_part_info {
	char node[72];
	char address[64]; /* "" if the dump did not record it */
	int batch;
	uint32_t manifest_crc;
};
/* dir's parts into parts[max] (*nr 0: a set of one node). */
int imgset_read_parts(const char *dir, struct set_part_info *parts, size_t max, size_t *nr);
/* crc32c of a set's manifest file, as written. */
int img_set_manifest_crc(struct img_set *set, uint32_t *crc);
/* Every SEQ directory of the job, sorted by SEQ (free *out). */
int imgset_list(const char *base, const char *job, struct set_info **out, size_t *nr);
/* Removes the job's abandoned sets (no manifest, no writer). */
int imgset_gc(const char *base, const char *job);
/* Removes the whole job directory (a job that is over): its sets, the
 * manifest of each first, `latest` and the files beside them. */
int imgset_remove_job(const char *base, const char *job);
/* Removes one set; -EBUSY when an incremental child still needs it. */
int imgset_remove(const char *base, const char *job, uint64_t seq);
/* After a commit: keep the last `keep` sets of the job (0: all), then
 * remove the oldest sets of user `uid` in all of BASE while they hold
 * more than `quota` bytes (0: no quota).  Never removes `protect` (the set
 * just committed) nor a set an incremental child needs. */
int imgset_retain(const char *base, const char *job, uint64_t keep, uint64_t quota, uint32_t uid,
		  uint64_t protect);
/* Copies the committed set `from` into the set being written `to`, the
 * manifest last (tmp, fsync, rename): `to` is committed when this returns
 * 0.  On failure `to` has no manifest. */
int img_set_copy(struct img_set *from, struct img_set *to);
/* Makes the incremental set `dir` self-contained: every page of its chain
 * stored in it, no parent.  Written beside it, committed, then swapped
 * in atomically (rename with RENAME_EXCHANGE); its children stay valid. */
int imgset_squash(const char *dir);

#endif
