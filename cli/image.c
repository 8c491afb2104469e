/*
 * ckptctl image: look inside checkpoint sets (like criu's crit).
 *
 *   show DIR|FILE        a set: its summary and files; a file: its entries
 *   decode FILE          the file as JSON on stdout
 *   encode JSON FILE     the JSON back into an image file (checksums recomputed)
 *   verify DIR           every checksum and cross-reference; exit 1 if bad
 *   x DIR ps|fds|mems    process list, each task's fds, its memory map
 *   info DIR             who, when, where, tasks, bytes, compression
 *
 * show, x and info read a set without trusting its manifest (a damaged
 * set can still be looked at); every file is still checked by storage's
 * readers as it is read.  The JSON mapping is in image-pb.c and
 * image-file.c, verify in image-check.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "image.h"
#include "image-sets.h"
#include "inventory.pb-c.h"
#include "manifest.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"

#define PAGE 4096ull
#define IMAGE_SUBS "show, decode, encode, verify, x, info, squash, gc, rm or ls"

/* The set's inventory (NULL after a message). */
static InventoryEntry *load_inventory(struct img_set *set)
{
	ProtobufCMessage *m = NULL;

	if (img_read_one(set, IMG_INVENTORY, "inventory.img", &inventory_entry__descriptor, &m))
		return NULL;
	return (InventoryEntry *)m;
}

static ManifestEntry *load_manifest(struct img_set *set)
{
	ProtobufCMessage *m = NULL;

	if (!img_exists(set, "manifest") ||
	    img_read_one(set, IMG_MANIFEST, "manifest", &manifest_entry__descriptor, &m))
		return NULL;
	return (ManifestEntry *)m;
}

static int read_task_one(struct img_set *set, enum img_kind kind, const char *prefix, uint32_t pid,
			 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-%u.img", prefix, pid);
	return img_read_one(set, kind, name, desc, m);
}

static int read_task_all(struct img_set *set, enum img_kind kind, const char *prefix, uint32_t pid,
			 const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***v, size_t *n)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-%u.img", prefix, pid);
	return img_read_all(set, kind, name, desc, v, n);
}

static void free_all(ProtobufCMessage **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(v[i], NULL);
	free(v);
}

/* ---- x ps ---- */

static int x_ps(struct img_set *set, InventoryEntry *inv)
{
	printf("%7s %7s %7s %7s %4s  %s\n", "PID", "PPID", "PGID", "SID", "THR", "COMM");
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *t = inv->tasks[i];
		printf("%7u %7u %7u %7u %4zu  %s\n", t->pid, t->ppid, t->pgid, t->sid, t->n_tids,
		       t->comm);
	}
	return 0;
}

/* ---- x fds ---- */

static const char *file_type_name(int type)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&file_type__descriptor, type);

	return v ? v->name + 5 : "?"; /* without "FILE_" */
}

static void print_file(const FileEntry *f)
{
	static const char *acc[] = { "r", "w", "rw", "?" };

	printf("%-9s %-2s", file_type_name(f->type), acc[f->flags & 3]);
	if (f->type == FILE_TYPE__FILE_PIPE)
		printf(" pipe:[%llu]", (unsigned long long)f->pipe_id);
	else if (f->path)
		printf(" %s", f->path);
	if (f->has_pos)
		printf(" pos %llu", (unsigned long long)f->pos);
	putchar('\n');
}

static int x_fds(struct img_set *set, InventoryEntry *inv)
{
	FileEntry **files = NULL;
	size_t nr_files = 0;
	int ret = 0;

	if (img_exists(set, "files.img") &&
	    img_read_all(set, IMG_FILES, "files.img", &file_entry__descriptor,
			 (ProtobufCMessage ***)&files, &nr_files))
		return 1;
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *t = inv->tasks[i];
		FdEntry **fds;
		size_t n;

		printf("%u %s\n", t->pid, t->comm);
		if (t->has_files_shared_with) { /* the table is dumped once, with its owner */
			printf("  (shares the fd table of pid %u)\n", t->files_shared_with);
			continue;
		}
		if (read_task_all(set, IMG_FDINFO, "fdinfo", t->pid, &fd_entry__descriptor,
				  (ProtobufCMessage ***)&fds, &n)) {
			ret = 1;
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			const FileEntry *f = NULL;
			for (size_t j = 0; j < nr_files && !f; j++)
				if (files[j]->id == fds[k]->file_id)
					f = files[j];
			printf("  %5u%s ", fds[k]->fd, fds[k]->cloexec ? "e" : " ");
			if (f)
				print_file(f);
			else
				printf("file id %u (missing)\n", fds[k]->file_id);
		}
		free_all((ProtobufCMessage **)fds, n);
	}
	free_all((ProtobufCMessage **)files, nr_files);
	return ret;
}

/* ---- x mems ---- */

static uint64_t pages_in(PagemapEntry **pm, size_t n, uint64_t start, uint64_t end)
{
	uint64_t pages = 0;

	for (size_t i = 0; i < n; i++)
		if (pm[i]->vaddr >= start && pm[i]->vaddr < end)
			pages += pm[i]->nr_pages;
	return pages;
}

static void print_vma(const VmaEntry *v, PagemapEntry **pm, size_t n)
{
	const char *kind = "?";
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(&vma_kind__descriptor, v->kind);

	if (ev)
		kind = ev->name + 4; /* without "VMA_" */
	printf("  %012llx-%012llx %c%c%c%c %-13s %6llu ", (unsigned long long)v->start,
	       (unsigned long long)v->end, v->prot & 1 ? 'r' : '-', v->prot & 2 ? 'w' : '-',
	       v->prot & 4 ? 'x' : '-', v->flags & 1 ? 's' : 'p', kind,
	       (unsigned long long)pages_in(pm, n, v->start, v->end));
	if (v->path)
		printf("%s +0x%llx", v->path, (unsigned long long)v->pgoff);
	else if (v->name)
		printf("%s", v->name);
	putchar('\n');
}

static int x_mems(struct img_set *set, InventoryEntry *inv)
{
	int ret = 0;

	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *t = inv->tasks[i];
		MmEntry *mm;
		PagemapEntry **pm;
		size_t n;

		printf("%u %s\n", t->pid, t->comm);
		if (read_task_one(set, IMG_MM, "mm", t->pid, &mm_entry__descriptor,
				  (ProtobufCMessage **)&mm)) {
			ret = 1;
			continue;
		}
		if (read_task_all(set, IMG_PAGEMAP, "pagemap", t->pid, &pagemap_entry__descriptor,
				  (ProtobufCMessage ***)&pm, &n)) {
			pm = NULL;
			n = 0;
			ret = 1;
		}
		printf("  exe %s\n  %-25s %-4s %-13s %6s\n", mm->exe_path, "range", "prot", "kind",
		       "pages");
		for (size_t k = 0; k < mm->n_vmas; k++)
			print_vma(mm->vmas[k], pm, n);
		free_all((ProtobufCMessage **)pm, n);
		protobuf_c_message_free_unpacked(&mm->base, NULL);
	}
	return ret;
}

/* ---- info ---- */

struct mem_totals {
	uint64_t pages, stored, raw_blocks, chunks, blocks;
	size_t threads;
};

static void count_memory(struct img_set *set, InventoryEntry *inv, struct mem_totals *m)
{
	for (size_t i = 0; i < inv->n_tasks; i++) {
		PagemapEntry **pm;
		size_t n;

		m->threads += inv->tasks[i]->n_tids;
		if (read_task_all(set, IMG_PAGEMAP, "pagemap", inv->tasks[i]->pid,
				  &pagemap_entry__descriptor, (ProtobufCMessage ***)&pm, &n))
			continue;
		for (size_t k = 0; k < n; k++) {
			/* a block shared by several entries counts once, with
			 * its first entry (block_skip 0) */
			int first = (!pm[k]->has_block_skip || !pm[k]->block_skip) &&
				    !(pm[k]->has_in_parent && pm[k]->in_parent);
			m->pages += pm[k]->nr_pages;
			m->stored += first ? pm[k]->comp_len : 0;
			m->raw_blocks += first && pm[k]->raw;
			m->blocks += first;
		}
		m->chunks += n;
		free_all((ProtobufCMessage **)pm, n);
	}
}

static void print_when(uint64_t ns)
{
	time_t t = ns / 1000000000ull;
	struct tm tm;
	char buf[64];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("created:   %s\n", buf);
}

static void print_manifest(const ManifestEntry *me)
{
	struct passwd *pw = getpwuid(me->owner_uid);
	uint64_t bytes = 0;

	for (size_t i = 0; i < me->n_files; i++)
		bytes += me->files[i]->size;
	printf("format:    %u\n", me->format_version);
	print_when(me->created_ns);
	printf("host:      %s (kernel %s)\n", me->hostname, me->kernel);
	printf("owner:     uid %u%s%s%s\n", me->owner_uid, pw ? " (" : "", pw ? pw->pw_name : "",
	       pw ? ")" : "");
	printf("files:     %zu, %llu bytes\n", me->n_files, (unsigned long long)bytes);
}

static int info(struct img_set *set, InventoryEntry *inv)
{
	ManifestEntry *me = load_manifest(set);
	struct mem_totals m = { 0 };

	printf("set:       %s\n", img_set_dir(set));
	if (me)
		print_manifest(me);
	else
		printf("manifest:  none (not a committed checkpoint)\n");
	count_memory(set, inv, &m);
	printf("root pid:  %u\n", inv->root_pid);
	printf("tasks:     %zu (%zu threads)\n", inv->n_tasks, m.threads);
	printf("memory:    %llu pages stored (%llu bytes) as %llu bytes in %llu chunks, %llu blocks",
	       (unsigned long long)m.pages, (unsigned long long)(m.pages * PAGE),
	       (unsigned long long)m.stored, (unsigned long long)m.chunks,
	       (unsigned long long)m.blocks);
	if (m.pages)
		printf(": lz4, %.1f%% of the original, %llu blocks raw",
		       100.0 * (double)m.stored / (double)(m.pages * PAGE),
		       (unsigned long long)m.raw_blocks);
	putchar('\n');
	if (me)
		protobuf_c_message_free_unpacked(&me->base, NULL);
	return 0;
}

/* ---- show ---- */

static int stat_at(struct img_set *set, const char *name, struct stat *st)
{
	return fstatat(img_set_dirfd(set), name, st, AT_SYMLINK_NOFOLLOW);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int show_files(struct img_set *set)
{
	size_t n = img_set_nr_files(set);
	const char **names = calloc(n + 1, sizeof(*names));

	if (!names)
		return 1;
	for (size_t i = 0; i < n; i++)
		names[i] = img_set_file(set, i, NULL, NULL);
	qsort(names, n, sizeof(*names), cmp_name);
	printf("%-24s %-11s %12s\n", "file", "kind", "bytes");
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		struct stat st;
		uint64_t size = stat_at(set, name, &st) ? 0 : (uint64_t)st.st_size;
		char path[4096];
		uint32_t version, kind;
		const struct image_kind *k = NULL;

		snprintf(path, sizeof(path), "%s/%s", img_set_dir(set), name);
		if (!image_peek(path, &version, &kind))
			k = image_kind_by_num(kind);
		printf("%-24s %-11s %12llu\n", name, k ? k->name : "?", (unsigned long long)size);
	}
	free(names);
	return 0;
}

static int show_file(const char *path)
{
	uint32_t version, kind;
	const struct image_kind *k;

	if (image_peek(path, &version, &kind))
		return 1;
	k = image_kind_by_num(kind);
	printf("%s: %s image, format %u\n", path, k ? k->name : "unknown", version);
	if (k && !k->desc) {
		printf("(page data: see the pagemap image of the same pid, or `x DIR mems`)\n");
		return 0;
	}
	return image_decode(path, stdout) ? 1 : 0;
}

/* ---- dispatch ---- */

typedef int (*set_cmd)(struct img_set *set, InventoryEntry *inv);

static int on_set(const char *dir, set_cmd fn)
{
	struct img_set *set;
	InventoryEntry *inv;
	int ret;

	if (img_set_open_raw(dir, &set))
		return 1;
	inv = load_inventory(set);
	ret = inv ? fn(set, inv) : 1;
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_set_close(set);
	return ret;
}

static int cmd_show(const char *path)
{
	struct stat st;

	if (stat(path, &st)) {
		fprintf(stderr, "ckptctl: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return show_file(path);
	if (on_set(path, info))
		return 1;
	putchar('\n');
	if (on_set(path, x_ps))
		return 1;
	putchar('\n');
	struct img_set *set;
	if (img_set_open_raw(path, &set))
		return 1;
	show_files(set);
	img_set_close(set);
	return 0;
}

static int cmd_x(int argc, char **argv)
{
	if (argc != 4)
		goto usage;
	if (!strcmp(argv[3], "ps"))
		return on_set(argv[2], x_ps);
	if (!strcmp(argv[3], "fds"))
		return on_set(argv[2], x_fds);
	if (!strcmp(argv[3], "mems"))
		return on_set(argv[2], x_mems);
usage:
	fprintf(stderr, "ckptctl: image x: '%s' is not ps, fds or mems\n", argc > 3 ? argv[3] : "");
	return 1;
}

/* `image SUB ...` with the wrong arguments: one line, the right ones. */
static int sub_usage(const char *sub)
{
	static const struct { const char *sub, *args; } subs[] = {
		{ "show", "DIR|FILE" },	 { "decode", "FILE" }, { "encode", "JSON FILE" },
		{ "verify", "[-v] DIR" }, { "x", "DIR ps|fds|mems" }, { "info", "DIR" },
	};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(sub, subs[i].sub)) {
			fprintf(stderr, "ckptctl: image %s: usage: ckptctl image %s %s\n", sub, sub,
				subs[i].args);
			return 1;
		}
	if (!*sub)
		fprintf(stderr, "ckptctl: image: missing subcommand (" IMAGE_SUBS ")\n");
	else
		fprintf(stderr, "ckptctl: image: unknown subcommand '%s' (" IMAGE_SUBS ")\n", sub);
	return 1;
}

int cmd_image(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	if (image_sets_cmd(sub))
		return cmd_image_sets(argc, argv);

	/* Our output is data: make failed writes (a full disk) an error. */
	if (!strcmp(sub, "show") && argc == 3)
		return cmd_show(argv[2]);
	if (!strcmp(sub, "decode") && argc == 3)
		return image_decode(argv[2], stdout) || fflush(stdout) || ferror(stdout) ? 1 : 0;
	if (!strcmp(sub, "encode") && argc == 4)
		return image_encode(argv[2], argv[3]) ? 1 : 0;
	if (!strcmp(sub, "verify") && argc == 3)
		return image_verify(argv[2], 0) ? 1 : 0;
	if (!strcmp(sub, "verify") && argc == 4 && !strcmp(argv[2], "-v"))
		return image_verify(argv[3], 1) ? 1 : 0;
	if (!strcmp(sub, "x") && argc == 4)
		return cmd_x(argc, argv);
	if (!strcmp(sub, "info") && argc == 3)
		return on_set(argv[2], info);
	return sub_usage(sub);
}
