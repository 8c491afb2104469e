/*
 * bpfmap: a BPF map whose contents are plain bytes (array, hash, LPM trie
 * and their per-CPU forms).  The dump reads the map's description with
 * BPF_OBJ_GET_INFO_BY_FD and fdinfo ("frozen:", "memlock:") on a copy of
 * the fd (pidfd_getfd), and every entry with BPF_MAP_GET_NEXT_KEY and
 * BPF_MAP_LOOKUP_ELEM; the restore makes the map again with
 * BPF_MAP_CREATE, fills it with BPF_MAP_UPDATE_ELEM and freezes it if it
 * was.  The new map has another id (ids are never given twice).
 *
 * Refused at dump, by name: maps that hold fds, programs, sockets or
 * per-object storage (their entries are not bytes), maps whose contents
 * cannot be read without changing them (queue, stack, bloom filter,
 * ring buffers), LRU maps (the LRU order cannot be set), maps with BTF,
 * offloaded, mmapable, or read-only/write-only to syscalls, and one map
 * reached through two descriptions (each would come back as its own map).
 *
 * bpf(BPF_MAP_CREATE) needs CAP_BPF unless kernel.unprivileged_bpf_disabled
 * is 0: a user's restore makes the map as that user, with none of the
 * capabilities lent to the worker effective, so the kernel alone decides.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

#define MAX_KEY_VALUE (64u << 10)  /* the kernel's KMALLOC_MAX_SIZE bound is larger */
#define MAX_CONTENTS (48u << 20)   /* a file_entry stays under IMG_MAX_ENTRY (64 MiB) */
/* Map flags whose map cannot be made again as it was from user space. */
#define REFUSED_FLAGS (BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_MMAPABLE)

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int type_supported(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LPM_TRIE:
		return 1;
	}
	return 0;
}

/* The kernel's names (enum bpf_map_type), for refusals. */
static const char *const type_names[] = {
	"unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
	"percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash",
	"lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap",
	"sockhash", "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue",
	"stack", "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage",
	"task_storage", "bloom_filter", "user_ringbuf", "cgrp_storage", "arena",
};

static const char *type_name(uint32_t type)
{
	return type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "?";
}

static int type_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static int type_array(uint32_t type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* Possible CPUs, as the kernel sizes per-CPU values: "0-N" or a list. */
static int possible_cpus(void)
{
	char buf[256];
	ssize_t n = read_small_file(AT_FDCWD, "/sys/devices/system/cpu/possible", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	int nr = 0;
	for (char *p = buf; *p && *p != '\n';) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (end == p)
			return -EIO;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		nr += (int)(b - a + 1);
		p = *end == ',' ? end + 1 : end;
	}
	return nr > 0 ? nr : -EIO;
}

/* One NUMA node: a map made with BPF_F_NUMA_NODE can only have node 0. */
static int single_node(void)
{
	char buf[32] = "";
	int fd = open("/sys/devices/system/node/online", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT; /* no NUMA support: one node */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && !strncmp(buf, "0\n", 2);
}

/* Bytes of one value as the syscalls read and write it. */
static uint64_t value_stride(uint32_t value_size, uint32_t nr_cpus)
{
	return nr_cpus ? (uint64_t)((value_size + 7) & ~7u) * nr_cpus : value_size;
}

/* ------------------------------- dump -------------------------------- */

struct map_fdinfo {
	int frozen;
	uint64_t memlock;
};

static int map_fdinfo_line(char *line, void *arg)
{
	struct map_fdinfo *m = arg;
	if (!strncmp(line, "frozen:", 7))
		m->frozen = atoi(line + 7);
	else if (!strncmp(line, "memlock:", 8))
		m->memlock = strtoull(line + 8, NULL, 10);
	return 0;
}

/* Map ids seen in this dump, to refuse one map behind two descriptions. */
struct seen_maps {
	uint32_t *ids;
	pid_t *pids;
	int *fds;
	size_t nr, cap;
};

static int note_map(struct fd_dump *f, uint32_t id)
{
	struct seen_maps *s = *f->priv;
	if (!s) {
		if (!(s = arena_alloc(&f->fdump->a, sizeof(*s))))
			return -ENOMEM;
		memset(s, 0, sizeof(*s));
		*f->priv = s;
	}
	for (size_t i = 0; i < s->nr; i++)
		if (s->ids[i] == id) {
			pr_err("pid %d: fd %d: BPF map id %u is also pid %d's fd %d, another open "
			       "file: not supported", f->pid, f->fd, id, s->pids[i], s->fds[i]);
			return -ENOTSUP;
		}
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		uint32_t *ids = arena_alloc(&f->fdump->a, cap * sizeof(*ids));
		pid_t *pids = arena_alloc(&f->fdump->a, cap * sizeof(*pids));
		int *fds = arena_alloc(&f->fdump->a, cap * sizeof(*fds));
		if (!ids || !pids || !fds)
			return -ENOMEM;
		if (s->nr) {
			memcpy(ids, s->ids, s->nr * sizeof(*ids));
			memcpy(pids, s->pids, s->nr * sizeof(*pids));
			memcpy(fds, s->fds, s->nr * sizeof(*fds));
		}
		s->ids = ids, s->pids = pids, s->fds = fds, s->cap = cap;
	}
	s->ids[s->nr] = id, s->pids[s->nr] = f->pid, s->fds[s->nr] = f->fd;
	s->nr++;
	return 0;
}

/* What cannot come back as it was, named; 0 if the map can. */
static const char *refusal(const struct bpf_map_info *info, uint32_t flags)
{
	if (!type_supported(info->type))
		return "of a type whose entries are not plain bytes or cannot be read as they are";
	if (info->btf_id || info->btf_vmlinux_value_type_id)
		return "with BTF";
	if (info->ifindex)
		return "offloaded to a device";
	if (info->map_flags & REFUSED_FLAGS)
		return "mmapable, or read-only or write-only to syscalls";
	if ((info->map_flags & BPF_F_NUMA_NODE) && !single_node())
		return "on a NUMA node of several (the node cannot be read back)";
	if ((flags & O_ACCMODE) != O_RDWR)
		return "open read-only or write-only";
	if (info->key_size == 0 || info->key_size > MAX_KEY_VALUE || info->value_size == 0 ||
	    info->value_size > MAX_KEY_VALUE)
		return "with keys or values over 64 KiB";
	return NULL;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	union bpf_attr attr;
	memset(info, 0, sizeof(*info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(*info);
	attr.info.info = (uint64_t)(uintptr_t)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) ? -errno : 0;
}

static int is_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Every entry of the map into keys/values (malloc'd by the caller, room
 * for max_entries); *nr gets the count. */
static int read_entries(int fd, const struct bpf_map_info *info, uint64_t stride, uint8_t *keys,
			uint8_t *values, uint32_t *nr)
{
	union bpf_attr attr;
	uint8_t *prev = NULL;
	*nr = 0;
	for (uint32_t seen = 0;; seen++) {
		uint8_t *key = keys + (uint64_t)*nr * info->key_size;
		uint8_t *val = values + (uint64_t)*nr * stride;
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = (uint64_t)(uintptr_t)prev;
		attr.next_key = (uint64_t)(uintptr_t)key;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr))
			return errno == ENOENT ? 0 : -errno;
		if (seen >= info->max_entries) /* the map changed under us */
			return -EAGAIN;
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = (uint64_t)(uintptr_t)key;
		attr.value = (uint64_t)(uintptr_t)val;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr))
			return -errno;
		/* A new array is all zeros: only the rest is kept.  The key
		 * goes on being the iteration's cursor, moved past the slot. */
		if (type_array(info->type) && is_zero(val, stride)) {
			memcpy(keys + (uint64_t)info->max_entries * info->key_size, key, info->key_size);
			prev = keys + (uint64_t)info->max_entries * info->key_size;
			continue;
		}
		prev = key;
		(*nr)++;
	}
}

static int fill_entry(struct fd_dump *f, int fd, const struct bpf_map_info *info,
		      BpfMapEntry *m)
{
	int cpus = type_percpu(info->type) ? possible_cpus() : 0;
	if (cpus < 0)
		return cpus;
	uint64_t stride = value_stride(info->value_size, (uint32_t)cpus);
	if ((uint64_t)info->max_entries * (info->key_size + stride) > MAX_CONTENTS) {
		pr_err("pid %d: fd %d: BPF map \"%s\" may hold over %u MiB: not supported", f->pid,
		       f->fd, info->name, MAX_CONTENTS >> 20);
		return -ENOTSUP;
	}
	/* One spare key past the end: the cursor over skipped array slots. */
	uint8_t *keys = arena_alloc(&f->fdump->a, ((uint64_t)info->max_entries + 1) * info->key_size);
	uint8_t *values = arena_alloc(&f->fdump->a, (uint64_t)info->max_entries * stride + 1);
	uint32_t nr;
	if (!keys || !values)
		return -ENOMEM;
	int ret = read_entries(fd, info, stride, keys, values, &nr);
	if (ret) {
		pr_err("pid %d: fd %d: cannot read BPF map \"%s\": %s", f->pid, f->fd, info->name,
		       ret == -EAGAIN ? "more entries than max_entries" : strerror(-ret));
		return ret;
	}
	m->nr_cpus = (uint32_t)cpus;
	m->has_nr_cpus = cpus > 0;
	m->keys.data = keys;
	m->keys.len = (size_t)nr * info->key_size;
	m->values.data = values;
	m->values.len = (size_t)(nr * stride);
	return 0;
}

/* --------------------- holders outside the tree ---------------------- */

/* A map a program or a bpffs pin also holds would come back as a copy
 * that they no longer see.  Programs are listed by id (BPF_PROG_GET_NEXT_ID
 * needs CAP_SYS_ADMIN: a user's dump cannot list them, and a user cannot
 * load a program that uses a map where unprivileged_bpf_disabled is set);
 * pins are files of the bpf mounts of our mount namespace and of the
 * tree's. */

#define MAX_PROG_MAPS 64
#define MAX_PIN_DEPTH 8

static int seen_map(const struct seen_maps *s, uint32_t id, size_t *at)
{
	for (size_t i = 0; s && i < s->nr; i++)
		if (s->ids[i] == id)
			return *at = i, 1;
	return 0;
}

/* A program's maps that are maps of the tree: -ENOTSUP after one line. */
static int check_prog(const struct seen_maps *s, int fd, const char *where)
{
	uint32_t ids[MAX_PROG_MAPS];
	struct bpf_prog_info info;
	union bpf_attr attr;
	size_t at;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = MAX_PROG_MAPS;
	info.map_ids = (uint64_t)(uintptr_t)ids;
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (uint64_t)(uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr))
		return 0; /* gone */
	for (uint32_t i = 0; i < info.nr_map_ids && i < MAX_PROG_MAPS; i++)
		if (seen_map(s, ids[i], &at)) {
			pr_err("pid %d: fd %d: BPF map id %u is used by BPF program id %u \"%s\"%s: "
			       "not supported", s->pids[at], s->fds[at], ids[i], info.id, info.name,
			       where);
			return -ENOTSUP;
		}
	return info.nr_map_ids > MAX_PROG_MAPS ? -E2BIG : 0;
}

static int check_progs(const struct seen_maps *s)
{
	union bpf_attr attr;
	uint32_t id = 0;
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.start_id = id;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &attr))
			return errno == ENOENT || errno == EPERM ? 0 : -errno;
		id = attr.next_id;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = id;
		int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (fd < 0)
			continue; /* gone since */
		int ret = check_prog(s, fd, "");
		close(fd);
		if (ret == -E2BIG)
			pr_err("BPF program id %u uses over %d maps: cannot tell whether it uses "
			       "a map of the tree", id, MAX_PROG_MAPS);
		if (ret)
			return ret;
	}
}

/* One pinned object: a map of the tree, or a program that uses one. */
static int check_pin(const struct seen_maps *s, const char *path)
{
	union bpf_attr attr;
	char link[64], what[32];
	size_t at;
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (uint64_t)(uintptr_t)path;
	int fd = sys_bpf(BPF_OBJ_GET, &attr);
	if (fd < 0)
		return 0; /* not ours to see, or not an object */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, what, sizeof(what) - 1);
	what[n > 0 ? n : 0] = '\0';
	int ret = 0;
	struct bpf_map_info info;
	if (!strcmp(what, "anon_inode:bpf-map") && !map_info(fd, &info) && seen_map(s, info.id, &at)) {
		pr_err("pid %d: fd %d: BPF map id %u is pinned at %s: not supported", s->pids[at],
		       s->fds[at], info.id, path);
		ret = -ENOTSUP;
	} else if (!strcmp(what, "anon_inode:bpf-prog")) {
		char where[PATH_MAX + 16];
		snprintf(where, sizeof(where), " pinned at %s", path);
		ret = check_prog(s, fd, where);
		ret = ret == -E2BIG ? 0 : ret; /* check_progs says so */
	}
	close(fd);
	return ret;
}

static int check_pins_in(const struct seen_maps *s, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		char path[PATH_MAX];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (de->d_type == DT_DIR && depth < MAX_PIN_DEPTH)
			ret = check_pins_in(s, path, depth + 1);
		else if (de->d_type == DT_REG)
			ret = check_pin(s, path);
	}
	closedir(d);
	return ret;
}

struct pin_scan {
	const struct seen_maps *s;
	const char *root; /* "" (ours), or /proc/PID/root */
};

/* mountinfo: ... MOUNTPOINT ... - FSTYPE SOURCE OPTIONS */
static int bpf_mount_line(char *line, void *arg)
{
	const struct pin_scan *p = arg;
	char point[PATH_MAX], path[PATH_MAX], type[16];
	const char *dash = strstr(line, " - ");
	if (!dash || sscanf(dash, " - %15s", type) != 1 || strcmp(type, "bpf") ||
	    sscanf(line, "%*u %*u %*u:%*u %*s %4095s", point) != 1 || strchr(point, '\\'))
		return 0;
	if (snprintf(path, sizeof(path), "%s%s", p->root, point) >= (int)sizeof(path))
		return 0;
	return check_pins_in(p->s, path, 0);
}

/* The bpf mounts of our mount namespace, then of each other one a task of
 * the tree is in (through /proc/PID/root, which walks its mounts). */
static int check_pins(const struct seen_maps *s, const struct frozen_tree *tree)
{
	struct pin_scan p = { s, "" };
	struct stat self, ns;
	ino_t seen[16];
	size_t nr_seen = 0;
	int ret = proc_each_line("/proc/self/mountinfo", bpf_mount_line, &p);
	if (ret || stat("/proc/self/ns/mnt", &self))
		return ret;
	for (int i = 0; !ret && tree && i < tree->nr_tasks; i++) {
		char path[64], root[64];
		pid_t pid = tree->tasks[i].pid;
		size_t k = 0;
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
		if (tree->tasks[i].zombie || stat(path, &ns) || ns.st_ino == self.st_ino)
			continue;
		while (k < nr_seen && seen[k] != ns.st_ino)
			k++;
		if (k < nr_seen || nr_seen == sizeof(seen) / sizeof(seen[0]))
			continue;
		seen[nr_seen++] = ns.st_ino;
		snprintf(root, sizeof(root), "/proc/%d/root", pid);
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
		p.root = root;
		ret = proc_each_line(path, bpf_mount_line, &p);
	}
	return ret;
}

static int bpfmap_dump_tree(struct files_dump *fdump, void **priv)
{
	const struct seen_maps *s = *priv;
	if (!s || !s->nr)
		return 0;
	int ret = check_progs(s);
	if (!ret)
		ret = check_pins(s, fdump->tree);
	return ret < 0 ? ret : 0;
}

static int bpfmap_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:bpf-map");
}

static int dump_map(struct fd_dump *f, FileEntry *e, int fd, BpfMapEntry *m)
{
	struct bpf_map_info info;
	struct map_fdinfo fi = { 0, 0 };
	int ret = map_info(fd, &info);
	if (!ret)
		ret = proc_each_line(f->fdinfo, map_fdinfo_line, &fi);
	if (ret) {
		pr_err("pid %d: fd %d: cannot read the BPF map: %s", f->pid, f->fd, strerror(-ret));
		return ret;
	}
	const char *why = refusal(&info, e->flags);
	if (why) {
		pr_err("pid %d: fd %d: BPF map \"%s\" (%s, flags %#x) %s: not supported", f->pid,
		       f->fd, info.name, type_name(info.type), info.map_flags, why);
		return -ENOTSUP;
	}
	if ((ret = note_map(f, info.id)) || (ret = fill_entry(f, fd, &info, m)))
		return ret;
	m->map_type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->map_flags = info.map_flags;
	m->name = arena_strdup(&f->fdump->a, info.name);
	m->has_map_extra = info.map_extra != 0;
	m->map_extra = info.map_extra;
	m->frozen = fi.frozen != 0;
	m->memlock = fi.memlock;
	return m->name ? 0 : -ENOMEM;
}

static int bpfmap_dump(struct fd_dump *f, FileEntry *e)
{
	BpfMapEntry *m = arena_alloc(&f->fdump->a, sizeof(*m));
	if (!m)
		return -ENOMEM;
	bpf_map_entry__init(m);
	int fd = files_getfd(f->pid, f->fd);
	if (fd < 0) {
		pr_err("pid %d: fd %d: BPF map: %s", f->pid, f->fd, strerror(-fd));
		return fd;
	}
	int ret = dump_map(f, e, fd, m);
	close(fd);
	if (ret)
		return ret;
	e->type = FILE_TYPE__FILE_BPF_MAP;
	e->bpf_map = m;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

static int name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n >= BPF_OBJ_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '.'))
			return 0;
	return 1;
}

/* What is wrong with an image's map, or NULL. */
static const char *entry_problem(const BpfMapEntry *m, int cpus)
{
	if (!type_supported(m->map_type))
		return "a map type that is not restored";
	if (!m->name || !name_ok(m->name))
		return "a bad name";
	if (!m->key_size || m->key_size > MAX_KEY_VALUE || !m->value_size ||
	    m->value_size > MAX_KEY_VALUE || !m->max_entries)
		return "bad key_size, value_size or max_entries";
	if (m->map_flags & REFUSED_FLAGS)
		return "flags that are not restored";
	if ((m->map_flags & BPF_F_NUMA_NODE) && !single_node())
		return "BPF_F_NUMA_NODE on a machine of several nodes";
	if (type_percpu(m->map_type) ? m->nr_cpus != (uint32_t)cpus : m->nr_cpus != 0)
		return "values for another number of CPUs than this machine's";
	uint64_t stride = value_stride(m->value_size, m->nr_cpus);
	if (m->keys.len % m->key_size || m->values.len != m->keys.len / m->key_size * stride ||
	    m->keys.len / m->key_size > m->max_entries)
		return "keys and values that do not match its sizes";
	return NULL;
}

static int bpfmap_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)priv;
	int cpus = -1;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_BPF_MAP)
			continue;
		if (cpus < 0 && (cpus = possible_cpus()) < 0)
			return cpus;
		const char *why = e->bpf_map ? entry_problem(e->bpf_map, cpus) : "no map";
		if (why) {
			pr_err("%s/files.img: file %u: BPF map with %s", img_set_dir(set), e->id, why);
			return -EINVAL;
		}
	}
	return 0;
}

static int create_map(const FileEntry *e, const BpfMapEntry *m)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.map_type = m->map_type;
	attr.key_size = m->key_size;
	attr.value_size = m->value_size;
	attr.max_entries = m->max_entries;
	attr.map_flags = m->map_flags;
	attr.numa_node = 0; /* BPF_F_NUMA_NODE: the only node (checked) */
	attr.map_extra = m->map_extra;
	memcpy(attr.map_name, m->name, strlen(m->name));
	int fd = sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0) {
		int err = errno;
		pr_err("file %u: cannot create BPF map \"%s\": %s%s", e->id, m->name, strerror(err),
		       err == EPERM ? " (needs CAP_BPF, or kernel.unprivileged_bpf_disabled=0)" : "");
		return -err;
	}
	return fd;
}

static int fill_map(int fd, const FileEntry *e, const BpfMapEntry *m)
{
	uint64_t stride = value_stride(m->value_size, m->nr_cpus);
	size_t nr = m->keys.len / m->key_size;
	union bpf_attr attr;
	for (size_t i = 0; i < nr; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		attr.key = (uint64_t)(uintptr_t)(m->keys.data + i * m->key_size);
		attr.value = (uint64_t)(uintptr_t)(m->values.data + i * stride);
		/* Every slot of an array exists; a key twice in a hash is a
		 * crafted image. */
		attr.flags = type_array(m->map_type) ? BPF_ANY : BPF_NOEXIST;
		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr)) {
			int err = errno;
			pr_err("file %u: BPF map \"%s\": cannot put entry %zu back: %s", e->id, m->name, i,
			       strerror(err));
			return -err;
		}
	}
	return 0;
}

/* The new map must cost what the old one did (same kernel accounting). */
static int check_memlock(int fd, const FileEntry *e, const BpfMapEntry *m)
{
	char path[64];
	struct map_fdinfo fi = { 0, 0 };
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int ret = proc_each_line(path, map_fdinfo_line, &fi);
	if (ret)
		return ret;
	if (fi.memlock != m->memlock) {
		pr_err("file %u: BPF map \"%s\" comes back with memlock %llu, was %llu", e->id, m->name,
		       (unsigned long long)fi.memlock, (unsigned long long)m->memlock);
		return -EINVAL;
	}
	return 0;
}

static int bpfmap_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	const BpfMapEntry *m = e->bpf_map;
	int fd = create_map(e, m);
	if (fd < 0)
		return fd;
	int ret = fill_map(fd, e, m);
	if (!ret)
		ret = check_memlock(fd, e, m);
	if (!ret && m->frozen) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)fd;
		if (sys_bpf(BPF_MAP_FREEZE, &attr)) {
			ret = -errno;
			pr_err("file %u: cannot freeze BPF map \"%s\": %s", e->id, m->name, strerror(errno));
		}
	}
	if (!ret && fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

const struct file_kind bpfmap_kind = {
	.name = "bpf-map",
	.types = 1ULL << FILE_TYPE__FILE_BPF_MAP,
	.match = bpfmap_match,
	.dump = bpfmap_dump,
	.dump_tree = bpfmap_dump_tree,
	.check_tree = bpfmap_dump_tree, /* checks only, nothing kept */
	.read = bpfmap_read,
	.open = bpfmap_open,
};
