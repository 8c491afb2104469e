/*
 * cr_bpf_* and cr_fanotify*: BPF maps and fanotify instances survive a
 * checkpoint (libckpt/bpfmap.c, fanotify.c).  One program, one case per
 * argument:
 *
 *   bpf-array  a frozen array map with BPF_F_NUMA_NODE at fd 42 (zero and
 *              non-zero values), a per-CPU array at fd 43 and an LPM trie
 *              at 44
 *   bpf-hash   a hash map without preallocation at fd 42, dup'ed at 43 and
 *              shared with a child, which reads what the parent writes
 *              after the restore (one map, not three)
 *   fanotify   a fanotify at fd 42 with inode marks on a file and on a
 *              directory (events on children), an ignored mask that
 *              survives modify, and a mount mark on /dev/shm; O_NONBLOCK
 *              set after fanotify_init
 *   fanotify-fid  what a user may make: FID events, an inode mark
 *   bpf-queue, bpf-twice, bpf-pinned, bpf-prog, fanotify-queued: refused
 *              (bad_dump_*): a queue map (reading pops), one map at two
 *              open files (fd 42 and one of BPF_MAP_GET_FD_BY_ID), a map
 *              pinned in a bpffs, a map a pinned program uses, an event
 *              not yet read; the check then finds the state untouched.
 *
 * After the restore, each compares its fds' fdinfo with what it was
 * (but for ids the kernel gives anew) and checks that they still work.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FD 42

static pid_t child;
static int go[2]; /* bpf-hash: the parent tells the child to look */
static char path_a[PATH_MAX], path_b[PATH_MAX], path_d[PATH_MAX];

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags,
		      const char *name)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = max;
	a.map_flags = flags;
	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	int fd = sys_bpf(BPF_MAP_CREATE, &a);
	if (fd < 0 && errno == EPERM) {
		printf("SKIP: BPF_MAP_CREATE: EPERM\n");
		exit(77);
	}
	CHECK_SYS(fd >= 0, "BPF_MAP_CREATE %s", name);
	return fd;
}

static int map_op(int cmd, int fd, const void *key, void *value, uint64_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = flags;
	return sys_bpf(cmd, &a);
}

static void put(int fd, const void *key, const void *value)
{
	CHECK_SYS(!map_op(BPF_MAP_UPDATE_ELEM, fd, key, (void *)value, BPF_ANY), "update fd %d", fd);
}

static int nr_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	int a, b;
	if (f && fscanf(f, "%d-%d", &a, &b) == 2)
		n = b - a + 1;
	if (f)
		fclose(f);
	return (int)n;
}

/* fdinfo of fd without the lines of numbers the kernel gives anew. */
static const char *fdinfo(int fd, int slot)
{
	static char buf[4][8192];
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	const char *s = snapshot_file(path, slot);
	char *out = buf[slot];
	out[0] = '\0';
	for (const char *p = s; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
		if (strncmp(p, "map_id:", 7) && strncmp(p, "pos:", 4) && strlen(out) + n < 8191)
			strncat(out, p, n);
		p += n;
	}
	return out;
}

static void same_fdinfo(int fd, int slot)
{
	char before[8192];
	snprintf(before, sizeof(before), "%s", fdinfo(fd, slot));
	const char *now = fdinfo(fd, 3);
	CHECK(!strcmp(before, now), "fd %d: fdinfo was\n%s\nis\n%s", fd, before, now);
}

/* ------------------------------ bpf-array ---------------------------- */

struct lpm_key {
	uint32_t prefixlen;
	uint8_t addr[4];
};

static void bpf_array_setup(void)
{
	move_fd(map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 64, BPF_F_NUMA_NODE, "ckpt_array"), FD);
	for (uint32_t k = 0; k < 64; k += 3) {
		uint64_t v = k * 1000003ull + 1;
		put(FD, &k, &v);
	}
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = FD;
	CHECK_SYS(!sys_bpf(BPF_MAP_FREEZE, &a), "BPF_MAP_FREEZE");

	int cpus = nr_cpus();
	move_fd(map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 8, 0, "ckpt_percpu"), FD + 1);
	uint64_t vals[cpus]; /* each 4-byte value takes 8 bytes per CPU */
	for (int c = 0; c < cpus; c++)
		vals[c] = 100u + (unsigned)c;
	uint32_t k = 5;
	put(FD + 1, &k, vals);

	move_fd(map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct lpm_key), 4, 16, BPF_F_NO_PREALLOC,
			   "ckpt_lpm"), FD + 2);
	struct lpm_key k1 = { 8, { 10, 0, 0, 0 } }, k2 = { 24, { 10, 1, 2, 0 } };
	uint32_t v1 = 1, v2 = 2;
	put(FD + 2, &k1, &v1);
	put(FD + 2, &k2, &v2);
	for (int i = 0; i < 3; i++)
		fdinfo(FD + i, i);
}

static void bpf_array_check(void)
{
	for (int i = 0; i < 3; i++)
		same_fdinfo(FD + i, i);
	CHECK(strstr(fdinfo(FD, 3), "frozen:\t1"), "not frozen:\n%s", fdinfo(FD, 3));
	for (uint32_t k = 0; k < 64; k++) {
		uint64_t v = 7, want = k % 3 ? 0 : k * 1000003ull + 1;
		CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD, &k, &v, 0), "lookup %u", k);
		CHECK(v == want, "array[%u] = %llu, want %llu", k, (unsigned long long)v,
		      (unsigned long long)want);
	}
	uint32_t k = 1;
	uint64_t v = 1;
	CHECK(map_op(BPF_MAP_UPDATE_ELEM, FD, &k, &v, BPF_ANY) && errno == EPERM,
	      "a frozen map took an update");

	int cpus = nr_cpus();
	uint64_t vals[cpus];
	k = 5;
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 1, &k, vals, 0), "percpu lookup");
	for (int c = 0; c < cpus; c++)
		CHECK((uint32_t)vals[c] == 100u + (unsigned)c, "cpu %d: %llu", c,
		      (unsigned long long)vals[c]);
	k = 4;
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 1, &k, vals, 0) && !vals[0], "percpu slot 4");

	struct lpm_key q = { 32, { 10, 1, 2, 9 } }, r = { 32, { 10, 9, 9, 9 } };
	uint32_t got = 0;
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 2, &q, &got, 0) && got == 2, "lpm 10.1.2.9: %u",
		  got);
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 2, &r, &got, 0) && got == 1, "lpm 10.9.9.9: %u",
		  got);
}

/* ------------------------------ bpf-hash ----------------------------- */

static _Noreturn void hash_child(void)
{
	char c;
	uint32_t k = 777;
	uint64_t v = 0;
	close(go[1]);
	if (read(go[0], &c, 1) != 1)
		_exit(2);
	_exit(map_op(BPF_MAP_LOOKUP_ELEM, FD, &k, &v, 0) || v != 4242 ? 1 : 0);
}

static void bpf_hash_setup(void)
{
	move_fd(map_create(BPF_MAP_TYPE_HASH, 4, 8, 1000, BPF_F_NO_PREALLOC, "ckpt_hash"), FD);
	for (uint32_t k = 1; k <= 500; k++) {
		uint64_t v = (uint64_t)k << 32 | (k ^ 0x5a5a);
		put(FD, &k, &v);
	}
	CHECK_SYS(dup2(FD, FD + 1) == FD + 1, "dup2");
	fdinfo(FD, 0);
	CHECK_SYS(!pipe(go), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child)
		hash_child();
	close(go[0]);
}

static void bpf_hash_check(void)
{
	int st;
	same_fdinfo(FD, 0);
	uint32_t k, n = 0;
	for (k = 1; k <= 500; k++) {
		uint64_t v = 0;
		CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 1, &k, &v, 0), "lookup %u", k);
		CHECK(v == ((uint64_t)k << 32 | (k ^ 0x5a5a)), "hash[%u] = %llx", k,
		      (unsigned long long)v);
	}
	union bpf_attr a;
	uint32_t prev, next;
	for (int first = 1;; first = 0, prev = next, n++) {
		memset(&a, 0, sizeof(a));
		a.map_fd = FD;
		a.key = first ? 0 : (uint64_t)(uintptr_t)&prev;
		a.next_key = (uint64_t)(uintptr_t)&next;
		if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a))
			break;
	}
	CHECK(n == 500, "%u entries, want 500", n);
	/* One map for fd 42, fd 43 and the child's fd 42. */
	k = 777;
	uint64_t v = 4242;
	put(FD + 1, &k, &v);
	CHECK_SYS(write(go[1], "x", 1) == 1, "write");
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	child = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child does not see the parent's entry (%#x)",
	      st);
}

/* ------------------------------ fanotify ----------------------------- */

static void make_file(const char *path)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK_SYS(fd >= 0, "create %s", path);
	close(fd);
}

/* Events name their files by absolute path. */
static void absolute(char *path)
{
	char buf[PATH_MAX];
	CHECK_SYS(realpath(path, buf), "realpath %s", path);
	snprintf(path, PATH_MAX, "%s", buf);
}

static void fanotify_setup(void)
{
	test_path(path_a, "fan-a");
	test_path(path_b, "fan-b");
	test_path(path_d, "fan-d");
	make_file(path_a);
	make_file(path_b);
	CHECK_SYS(!mkdir(path_d, 0700) || errno == EEXIST, "mkdir");
	absolute(path_a);
	absolute(path_b);
	absolute(path_d);
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE,
			       O_RDONLY | O_LARGEFILE);
	CHECK_SYS(fd >= 0, "fanotify_init");
	move_fd(fd, FD);
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, path_a),
		  "mark a");
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD | FAN_ONDIR,
				 AT_FDCWD, path_d), "mark d");
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, path_b), "mark b");
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK |
					     FAN_MARK_IGNORED_SURV_MODIFY, FAN_MODIFY, AT_FDCWD, path_b),
		  "ignore b");
	/* Nobody runs programs from /dev/shm: no event while frozen. */
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_EXEC, AT_FDCWD,
				 "/dev/shm"), "mount mark");
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK |
					     FAN_MARK_IGNORED_SURV_MODIFY, FAN_MODIFY | FAN_ACCESS,
				 AT_FDCWD, "/dev/shm"), "mount ignore");
	CHECK_SYS(fcntl(FD, F_SETFL, O_NONBLOCK) == 0, "F_SETFL");
	fdinfo(FD, 0);
}

/* The next event: its mask, and the path its fd reaches. */
static uint64_t next_event(char *path, size_t len)
{
	char buf[4096], link[64];
	ssize_t n = read(FD, buf, sizeof(buf));
	CHECK_SYS(n >= (ssize_t)sizeof(struct fanotify_event_metadata), "no event");
	struct fanotify_event_metadata *m = (void *)buf;
	CHECK(m->vers == FANOTIFY_METADATA_VERSION && m->fd >= 0, "bad event");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
	ssize_t l = readlink(link, path, len - 1);
	CHECK_SYS(l > 0, "readlink");
	path[l] = '\0';
	close(m->fd);
	CHECK(n == m->event_len, "%zd bytes of events, one wanted", n);
	return m->mask;
}

static void fanotify_check(void)
{
	char path[PATH_MAX], inner[PATH_MAX + 8];
	same_fdinfo(FD, 0);
	CHECK(fcntl(FD, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	char nothing[256];
	CHECK(read(FD, nothing, sizeof(nothing)) < 0 && errno == EAGAIN, "events right after restore");

	int fd = open(path_a, O_WRONLY);
	CHECK_SYS(fd >= 0 && write(fd, "x", 1) == 1, "write a");
	close(fd);
	uint64_t mask = next_event(path, sizeof(path));
	CHECK(mask == (FAN_MODIFY | FAN_CLOSE_WRITE) && !strcmp(path, path_a),
	      "event %#llx on %s, want modify|close_write on %s", (unsigned long long)mask, path,
	      path_a);
	fd = open(path_b, O_WRONLY);
	CHECK_SYS(fd >= 0 && write(fd, "x", 1) == 1, "write b");
	close(fd);
	mask = next_event(path, sizeof(path));
	CHECK(mask == FAN_CLOSE_WRITE && !strcmp(path, path_b), "event %#llx on %s",
	      (unsigned long long)mask, path);
	snprintf(inner, sizeof(inner), "%s/x", path_d);
	make_file(inner);
	mask = next_event(path, sizeof(path));
	CHECK(mask == FAN_OPEN && !strcmp(path, inner), "event %#llx on %s, want open of %s",
	      (unsigned long long)mask, path, inner);
	unlink(inner);
	/* The ignored mask survived modify: no FAN_MODIFY of b above. */
}

/* What a user may make (FID events, no fd in them): an inode mark. */
static void fanotify_fid_setup(void)
{
	test_path(path_a, "fan-fid");
	make_file(path_a);
	absolute(path_a);
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_NONBLOCK, O_RDONLY);
	CHECK_SYS(fd >= 0, "fanotify_init");
	move_fd(fd, FD);
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, path_a),
		  "mark");
	fdinfo(FD, 0);
}

static void fanotify_fid_check(void)
{
	char buf[4096];
	same_fdinfo(FD, 0);
	int fd = open(path_a, O_WRONLY);
	CHECK_SYS(fd >= 0 && write(fd, "x", 1) == 1, "write");
	close(fd);
	ssize_t n = read(FD, buf, sizeof(buf));
	CHECK_SYS(n >= (ssize_t)sizeof(struct fanotify_event_metadata), "no event");
	struct fanotify_event_metadata *m = (void *)buf;
	CHECK(m->mask == (FAN_MODIFY | FAN_CLOSE_WRITE) && m->fd == FAN_NOFD,
	      "event %#llx, fd %d", (unsigned long long)m->mask, m->fd);
}

/* ------------------------------ refusals ----------------------------- */

static void bpf_queue_setup(void)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_QUEUE;
	a.value_size = 4;
	a.max_entries = 4;
	int fd = sys_bpf(BPF_MAP_CREATE, &a);
	if (fd < 0 && errno == EPERM)
		exit(77);
	CHECK_SYS(fd >= 0, "queue map");
	move_fd(fd, FD);
	uint32_t v = 99;
	CHECK_SYS(!map_op(BPF_MAP_UPDATE_ELEM, FD, NULL, &v, BPF_ANY), "push");
}

static void bpf_queue_check(void)
{
	uint32_t v = 0;
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD, NULL, &v, 0) && v == 99, "peek %u", v);
}

static void bpf_twice_setup(void)
{
	struct bpf_map_info info;
	union bpf_attr a;
	move_fd(map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "ckpt_twice"), FD);
	memset(&info, 0, sizeof(info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = FD;
	a.info.info_len = sizeof(info);
	a.info.info = (uint64_t)(uintptr_t)&info;
	CHECK_SYS(!sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a), "info");
	memset(&a, 0, sizeof(a));
	a.map_id = info.id;
	int fd = sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
	CHECK_SYS(fd >= 0, "BPF_MAP_GET_FD_BY_ID");
	move_fd(fd, FD + 1);
}

static void bpf_twice_check(void)
{
	uint32_t k = 1, v = 5, got = 0;
	put(FD, &k, &v);
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD + 1, &k, &got, 0) && got == 5, "not one map");
}

/* A bpffs of our own under the test directory, where `what` is pinned. */
static char bpffs[PATH_MAX], pin[PATH_MAX + 8];

static void pin_fd(int fd, const char *what)
{
	union bpf_attr a;
	test_path(bpffs, "bpffs");
	CHECK_SYS(!mkdir(bpffs, 0700) || errno == EEXIST, "mkdir");
	/* In a mount namespace of ours: the mount goes with the process,
	 * however the case ends (the dump looks there too). */
	CHECK_SYS(!unshare(CLONE_NEWNS), "unshare");
	CHECK_SYS(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "private /");
	CHECK_SYS(!mount("bpf", bpffs, "bpf", 0, NULL), "mount bpffs");
	snprintf(pin, sizeof(pin), "%s/%s", bpffs, what);
	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)pin;
	a.bpf_fd = (uint32_t)fd;
	CHECK_SYS(!sys_bpf(BPF_OBJ_PIN, &a), "BPF_OBJ_PIN");
}

static void unpin(void)
{
	CHECK_SYS(!unlink(pin), "unlink %s", pin);
	CHECK_SYS(!umount2(bpffs, MNT_DETACH), "umount");
}

static void bpf_pinned_setup(void)
{
	move_fd(map_create(BPF_MAP_TYPE_HASH, 4, 4, 4, 0, "ckpt_pinned"), FD);
	pin_fd(FD, "map");
}

/* A program that uses the map (loads its address, returns 0), pinned
 * and closed: only bpffs holds it. */
static void bpf_prog_setup(void)
{
	move_fd(map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 4, 0, "ckpt_progmap"), FD);
	struct bpf_insn insns[] = {
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD,
		  .imm = FD },
		{ .code = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	a.license = (uint64_t)(uintptr_t)"GPL";
	int fd = sys_bpf(BPF_PROG_LOAD, &a);
	CHECK_SYS(fd >= 0, "BPF_PROG_LOAD");
	pin_fd(fd, "prog");
	close(fd);
}

static void bpf_held_check(void)
{
	uint32_t k = 1, v = 5, got = 0;
	put(FD, &k, &v);
	CHECK_SYS(!map_op(BPF_MAP_LOOKUP_ELEM, FD, &k, &got, 0) && got == 5, "the map");
	unpin();
}

static void fanotify_queued_setup(void)
{
	test_path(path_a, "fan-q");
	make_file(path_a);
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	CHECK_SYS(fd >= 0, "fanotify_init");
	move_fd(fd, FD);
	CHECK_SYS(!fanotify_mark(FD, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, path_a), "mark");
	make_file(path_a);
}

static void fanotify_queued_check(void)
{
	char path[PATH_MAX];
	CHECK(next_event(path, sizeof(path)) == FAN_CLOSE_WRITE, "the queued event is gone");
}

static const struct cr_case cases[] = {
	{ "bpf-array", bpf_array_setup, bpf_array_check },
	{ "bpf-hash", bpf_hash_setup, bpf_hash_check },
	{ "fanotify", fanotify_setup, fanotify_check },
	{ "fanotify-fid", fanotify_fid_setup, fanotify_fid_check },
	{ "bpf-queue", bpf_queue_setup, bpf_queue_check },
	{ "bpf-twice", bpf_twice_setup, bpf_twice_check },
	{ "bpf-pinned", bpf_pinned_setup, bpf_held_check },
	{ "bpf-prog", bpf_prog_setup, bpf_held_check },
	{ "fanotify-queued", fanotify_queued_setup, fanotify_queued_check },
};

int main(int argc, char **argv)
{
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	pass();
}
