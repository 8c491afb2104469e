/*
 * rst-synthetic: the memory/thread half of restore, for real, without a
 * dumper.  A child builds a fake "dumped process" by hand (core and mm
 * entries, pages written with the real page writer) whose code is
 * rst-code.S, and restores it with restore_mem_prepare() and restore_mem_jump(); the parent
 * plays the driver: reads the notify pipe, runs restore_finish_task(),
 * checks the stopped process (/proc maps, exe, fds, creds, pending
 * signals, mm fields), releases it and checks its exit status (42 when
 * the code found every register, ymm0, fs base, mask, rseq, pdeathsig,
 * its memory and the second thread right) and what it wrote.
 *
 *   rst-synthetic ns     in a fresh PID namespace (pid 1, thread tid 5,
 *                        creds changed to nobody)
 *   rst-synthetic plain  in the current namespace, one thread
 */
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore-mem.h"
#include "restorer-abi.h"
#include "rst-layout.h"

extern const char rst_code_start[], rst_code_end[], rst_code_thread[];

#define FD_BASE 50
#define NOTIFY_FD 60
#define STRAY_FD 61
#define NOBODY 65534
#define TID2 5
#define STACK_LEN 0x10000

static char dir[256];
static int ns_mode, bench_mode;
static uint64_t big_pages = BIG_PAGES;
static struct timespec *bench_t0; /* shared with the child */

#define CHECK(cond, ...)                                         \
	do {                                                     \
		if (!(cond)) {                                   \
			fprintf(stderr, "FAIL: " __VA_ARGS__);   \
			fprintf(stderr, "\n");                   \
			exit(1);                                 \
		}                                                \
	} while (0)

static void write_file(const char *name, const void *buf, size_t len, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len && !close(fd), "write %s", path);
}

/* ---- the child: build the fake dump, restore it ---- */

static void *map_at(uint64_t addr, size_t len)
{
	void *m = mmap((void *)addr, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(m == (void *)addr, "mmap 0x%" PRIx64, addr);
	return m;
}

static void fill_memory(void)
{
	uint64_t *data = map_at(DATA_ADDR, 0x2000), sum = 0;
	uint64_t *big = map_at(BIG_ADDR, big_pages * 4096ULL);

	for (uint64_t i = 0; i < big_pages * 512ULL; i++)
		big[i] = i * 0x9e3779b97f4a7c15ULL;
	for (uint64_t i = 0; i < big_pages; i++)
		sum += big[i * 512];
	data[0] = DATA_ADDR; /* fs:0, as glibc's TCB */
	data[1] = FS_MAGIC;
	data[FLAG_OFF / 8] = ns_mode ? 0 : 1; /* no second thread in plain mode */
	uint32_t *rseq = (uint32_t *)((char *)data + RSEQ_OFF);
	rseq[0] = 0;
	rseq[1] = (uint32_t)-1; /* cpu_id: unregistered */
	data[0x1000 / 8] = PAGE2_MAGIC;
	data[0x1008 / 8] = sum;
	data[0x1010 / 8] = big_pages;
}

static struct img_set *write_pages(pid_t pid, struct page_chunk **chunks, size_t *nr)
{
	char img[400], name[64];
	struct img_set *set;
	struct page_writer *w;
	uint64_t in, out;

	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(name, sizeof(name), "pages-%d.img", pid);
	CHECK(!img_set_create(img, &set), "img_set_create");
	CHECK(!page_writer_open(set, name, getpid(), 0, &w), "page_writer_open");
	CHECK(!page_writer_add(w, DATA_ADDR, 2) && !page_writer_add(w, BIG_ADDR, (uint32_t)big_pages),
	      "page_writer_add");
	CHECK(!page_writer_finish(w, chunks, nr, &in, &out), "page_writer_finish");
	CHECK(!img_set_commit(set, (uint32_t)pid), "img_set_commit");
	img_set_close(set);
	CHECK(!img_set_open(img, &set), "img_set_open");
	return set;
}

static void xstate_with_ymm0(ProtobufCBinaryData *out)
{
	unsigned int eax, ebx, ecx, edx, lo, hi;
	__cpuid_count(0xd, 0, eax, ebx, ecx, edx);
	size_t size = ebx;
	uint8_t *buf = aligned_alloc(64, (size + 63) & ~(size_t)63);
	CHECK(buf, "alloc");
	memset(buf, 0, size);
	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	asm volatile("xsave (%0)" : : "r"(buf), "a"(lo), "d"(hi) : "memory");
	uint64_t xcr0 = ((uint64_t)hi << 32) | lo, q[4] = { YMM_Q0, YMM_Q1, YMM_Q2, YMM_Q3 };
	memcpy(buf + 464, &xcr0, 8); /* as ptrace reports it */
	memcpy(buf + 160, q, 16);    /* xmm0 */
	__cpuid_count(0xd, 2, eax, ebx, ecx, edx);
	memcpy(buf + ebx, q + 2, 16); /* upper half of ymm0 */
	buf[512] |= 6;                /* XSTATE_BV: SSE, AVX */
	out->data = buf;
	out->len = size;
}

static ThreadCoreEntry *thread_entry(uint32_t tid, uint64_t rip, uint64_t rsp, uint64_t mask)
{
	ThreadCoreEntry *t = calloc(1, sizeof(*t));
	struct user_regs_struct *r = calloc(1, sizeof(*r));
	thread_core_entry__init(t);
	r->rip = rip;
	r->rsp = rsp;
	r->rbx = WANT_RBX;
	r->r12 = WANT_R12;
	r->r13 = WANT_R13;
	r->cs = 0x33;
	r->ss = 0x2b;
	r->eflags = 0x202;
	r->orig_rax = (uint64_t)-1;
	r->fs_base = DATA_ADDR;
	t->tid = tid;
	t->gpregs.data = (uint8_t *)r;
	t->gpregs.len = sizeof(*r);
	xstate_with_ymm0(&t->xstate);
	t->blocked = mask;
	return t;
}

static SiginfoEntry *siginfo_entry(int sig, int code)
{
	SiginfoEntry *e = calloc(1, sizeof(*e));
	siginfo_t *si = calloc(1, 128);
	siginfo_entry__init(e);
	si->si_signo = sig;
	si->si_code = code;
	si->si_pid = 1;
	e->siginfo.data = (uint8_t *)si;
	e->siginfo.len = 128;
	return e;
}

static CoreEntry *make_core(pid_t pid)
{
	CoreEntry *c = calloc(1, sizeof(*c));
	CredsEntry *cr = calloc(1, sizeof(*cr));
	core_entry__init(c);
	creds_entry__init(cr);
	c->pid = (uint32_t)pid;
	c->n_threads = ns_mode ? 2 : 1;
	c->threads = calloc(2, sizeof(*c->threads));
	c->threads[0] = thread_entry((uint32_t)pid, CODE_ADDR, STACK_ADDR + STACK_LEN - 64, MAIN_MASK);
	c->threads[0]->has_rseq_addr = c->threads[0]->has_rseq_len = c->threads[0]->has_rseq_sig = 1;
	c->threads[0]->rseq_addr = DATA_ADDR + RSEQ_OFF;
	c->threads[0]->rseq_len = 32;
	c->threads[0]->rseq_sig = 0x53053053;
	c->threads[1] = thread_entry(TID2, CODE_ADDR + (rst_code_thread - rst_code_start),
				     TSTACK_ADDR + STACK_LEN - 64, THREAD_MASK);
	c->threads[1]->n_pending = 1;
	c->threads[1]->pending = calloc(1, sizeof(SiginfoEntry *));
	c->threads[1]->pending[0] = siginfo_entry(SIGUSR1, SI_TKILL);
	c->n_shared_pending = 1;
	c->shared_pending = calloc(1, sizeof(SiginfoEntry *));
	c->shared_pending[0] = siginfo_entry(SIGUSR2, SI_QUEUE);
	c->pdeathsig = PDEATHSIG;
	uint32_t id = ns_mode ? NOBODY : 0;
	cr->uid = cr->euid = cr->suid = cr->fsuid = id;
	cr->gid = cr->egid = cr->sgid = cr->fsgid = id;
	static uint32_t groups[1] = { NOBODY };
	cr->n_groups = ns_mode ? 1 : 0;
	cr->groups = groups;
	c->creds = cr;
	return c;
}

static VmaEntry *vma(uint64_t start, uint64_t end, uint32_t prot, uint32_t flags, VmaKind kind)
{
	VmaEntry *v = calloc(1, sizeof(*v));
	vma_entry__init(v);
	v->start = start;
	v->end = end;
	v->prot = prot;
	v->flags = flags;
	v->kind = kind;
	return v;
}

static VmaEntry *file_vma(uint64_t start, uint32_t prot, uint32_t flags, VmaKind kind, const char *name)
{
	VmaEntry *v = vma(start, start + 4096, prot, flags, kind);
	struct stat st;
	char *path = malloc(512);
	snprintf(path, 512, "%s/%s", dir, name);
	CHECK(!stat(path, &st), "stat %s", path);
	v->path = path;
	v->has_file_size = v->has_mtime_ns = v->has_open_flags = 1;
	v->file_size = (uint64_t)st.st_size;
	v->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	v->open_flags = O_RDWR;
	return v;
}

/* The current [vvar]... [vdso], "dumped" at SPECIAL_ADDR with the same
 * relative layout. */
static size_t add_specials(VmaEntry **v)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	uint64_t base = 0;
	size_t n = 0;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char name[64] = "";
		sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &s, &e, name);
		VmaKind k = !strcmp(name, "[vdso]") ? VMA_KIND__VMA_VDSO :
			    !strcmp(name, "[vvar]") ? VMA_KIND__VMA_VVAR :
			    !strcmp(name, "[vvar_vclock]") ? VMA_KIND__VMA_VVAR_VCLOCK : 0;
		if (!k)
			continue;
		if (!base)
			base = s;
		v[n++] = vma(SPECIAL_ADDR + s - base, SPECIAL_ADDR + e - base,
			     k == VMA_KIND__VMA_VDSO ? PROT_READ | PROT_EXEC : PROT_READ, MAP_PRIVATE, k);
	}
	fclose(f);
	CHECK(n >= 2, "no [vdso]/[vvar] here");
	return n;
}

static MmEntry *make_mm(void)
{
	MmEntry *mm = calloc(1, sizeof(*mm));
	static uint64_t auxv[128];
	char *exe = malloc(512);
	mm_entry__init(mm);
	mm->vmas = calloc(16, sizeof(*mm->vmas));
	size_t n = 0;
	mm->vmas[n++] = file_vma(CODE_ADDR, PROT_READ | PROT_EXEC, MAP_PRIVATE, VMA_KIND__VMA_FILE_PRIVATE, "code.bin");
	mm->vmas[n++] = vma(DATA_ADDR, DATA_ADDR + 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    VMA_KIND__VMA_ANON_PRIVATE);
	mm->vmas[n++] = file_vma(SHARED_ADDR, PROT_READ | PROT_WRITE, MAP_SHARED, VMA_KIND__VMA_FILE_SHARED, "shared.bin");
	mm->vmas[n++] = vma(STACK_ADDR, STACK_ADDR + STACK_LEN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, VMA_KIND__VMA_ANON_PRIVATE);
	mm->vmas[n++] = vma(TSTACK_ADDR, TSTACK_ADDR + STACK_LEN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, VMA_KIND__VMA_ANON_PRIVATE);
	mm->vmas[n++] = vma(BIG_ADDR, BIG_ADDR + big_pages * 4096ULL, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, VMA_KIND__VMA_ANON_PRIVATE);
	n += add_specials(mm->vmas + n);
	mm->vmas[n++] = vma(0xffffffffff600000ULL, 0xffffffffff601000ULL, PROT_EXEC, MAP_PRIVATE,
			    VMA_KIND__VMA_VSYSCALL);
	mm->n_vmas = n;
	mm->start_code = CODE_ADDR;
	mm->end_code = CODE_ADDR + (uint64_t)(rst_code_end - rst_code_start);
	mm->start_data = DATA_ADDR;
	mm->end_data = DATA_ADDR + 0x2000;
	mm->start_brk = mm->brk = 0x500000000;
	mm->start_stack = STACK_ADDR + STACK_LEN - 64;
	mm->arg_start = mm->arg_end = mm->env_start = mm->env_end = STACK_ADDR + STACK_LEN - 32;
	int fd = open("/proc/self/auxv", O_RDONLY);
	ssize_t len = read(fd, auxv, sizeof(auxv));
	close(fd);
	CHECK(len > 0, "auxv");
	mm->auxv = auxv;
	mm->n_auxv = (size_t)len / 8;
	snprintf(exe, 512, "%s/code.bin", dir);
	mm->exe_path = exe;
	return mm;
}

static void setup_fds(int notify_w, int out_w)
{
	CHECK(dup2(notify_w, NOTIFY_FD) == NOTIFY_FD && dup2(out_w, 1) == 1, "dup2");
	int fd = open("/dev/null", O_RDONLY);
	CHECK(fd >= 0 && dup2(fd, STRAY_FD) == STRAY_FD, "stray fd");
	close_range(3, NOTIFY_FD - 1, 0);
	close_range(STRAY_FD + 1, ~0U, 0);
}

static void child(int notify_w, int out_w)
{
	/* PID 1 of a fresh namespace: /proc must be our own for the page
	 * writer to reach our memory through /proc/PID/mem. */
	if (getpid() == 1 && (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
			      mount("proc", "/proc", "proc", 0, NULL))) {
		fprintf(stderr, "FAIL: cannot mount /proc in the new namespace: %s\n", strerror(errno));
		_exit(1);
	}
	sigset_t all;
	pid_t pid = getpid();
	struct page_chunk *chunks;
	size_t nr;
	uint64_t bytes = 0;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setup_fds(notify_w, out_w);
	fill_memory();
	/* The restorer's own fds (the image set's) must live >= FD_BASE, as
	 * in the real restore: fill the holes below while opening them. */
	for (int fd = 3; fd < FD_BASE; fd++)
		CHECK(dup2(0, fd) == fd, "dup2 %d", fd);
	struct img_set *set = write_pages(pid, &chunks, &nr);
	close_range(3, FD_BASE - 1, 0);
	struct restore_mem_ctx ctx = {
		.pid = pid,
		.core = make_core(pid),
		.mm = make_mm(),
		.chunks = chunks,
		.nr_chunks = nr,
		.set = set,
		.fd_base = FD_BASE,
		.notify_fd = NOTIFY_FD,
		.lazy_fd = -1, /* no lazy restore */
		.page_threads = 0,
		.memory_bytes = &bytes,
	};
	clock_gettime(CLOCK_MONOTONIC, bench_t0);
	struct restore_mem_plan *plan = NULL;
	int ret = restore_mem_prepare(&ctx, &plan);
	if (!ret)
		ret = restore_mem_jump(plan);
	fprintf(stderr, "restore_mem_prepare/jump returned %d\n", ret);
	_exit(3);
}

/* ---- the parent: the driver ---- */

static void read_notify(int fd, struct rst_ready *r)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	union {
		struct rst_ready r;
		struct rst_error e;
	} u;
	CHECK(poll(&p, 1, 30000) == 1, "no word from the restorer in 30 s");
	ssize_t n = read(fd, &u, sizeof(u.r));
	CHECK(n > 0, "notify pipe: EOF, the child died before the restorer reported");
	if (u.r.tag == 'E') {
		CHECK(read(fd, (char *)&u + n, sizeof(u.e) - (size_t)n) == (ssize_t)(sizeof(u.e) - (size_t)n),
		      "short rst_error");
		CHECK(0, "restorer failed: pid %d step %d err %" PRId64 " at 0x%" PRIx64, u.e.pid,
		      u.e.step, u.e.err, u.e.addr);
	}
	CHECK(n == sizeof(*r) && u.r.tag == 'R', "bad rst_ready");
	*r = u.r;
}

static int count_maps_lines(pid_t pid, const MmEntry *mm)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	int n = 0;
	CHECK(f, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		int found = 0;
		sscanf(line, "%llx-%llx", &s, &e);
		for (size_t i = 0; i < mm->n_vmas; i++)
			found |= mm->vmas[i]->start == s && mm->vmas[i]->end == e;
		CHECK(found, "unexpected mapping in the restored process: %s", line);
		if (strstr(line, "[vdso]"))
			CHECK(s >= SPECIAL_ADDR, "[vdso] not moved: %s", line);
		n++;
	}
	fclose(f);
	return n;
}

static void read_status(pid_t pid, pid_t tid, const char *key, char *out, size_t len)
{
	char path[96], line[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	FILE *f = fopen(path, "re");
	CHECK(f, "open %s", path);
	out[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			snprintf(out, len, "%s", line + strlen(key));
	fclose(f);
}

/* Host tids of the child's threads, main first. */
static int host_tids(pid_t pid, pid_t *tids, int max)
{
	char path[64];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	struct dirent *de;
	CHECK(d, "open %s", path);
	tids[n++] = pid;
	while ((de = readdir(d)))
		if (atoi(de->d_name) > 0 && atoi(de->d_name) != pid && n < max)
			tids[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

static void check_stopped(pid_t pid, const MmEntry *mm)
{
	char buf[512], path[64];
	int lines = count_maps_lines(pid, mm);
	CHECK(lines == (int)mm->n_vmas, "%d mappings, want %zu", lines, mm->n_vmas);

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	CHECK(n > 0, "readlink exe");
	buf[n] = 0;
	CHECK(!strcmp(buf, mm->exe_path), "exe is %s, want %s", buf, mm->exe_path);

	for (int fd = 3; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		CHECK(access(path, F_OK), "fd %d still open in the restored process", fd);
	}

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	CHECK(f && fgets(buf, sizeof(buf), f), "read stat");
	fclose(f);
	char *p = strrchr(buf, ')') + 2, *save = NULL;
	unsigned long long field[60] = { 0 };
	int i = 3;
	for (char *tok = strtok_r(p, " ", &save); tok && i < 60; tok = strtok_r(NULL, " ", &save))
		field[i++] = strtoull(tok, NULL, 10);
	CHECK(field[26] == mm->start_code && field[47] == mm->start_brk && field[48] == mm->arg_start,
	      "mm fields: start_code 0x%llx start_brk 0x%llx arg_start 0x%llx in %s", field[26], field[47],
	      field[48], buf);

	pid_t tids[2];
	int nt = host_tids(pid, tids, 2);
	CHECK(nt == (ns_mode ? 2 : 1), "%d threads", nt);
	read_status(pid, pid, "ShdPnd:", buf, sizeof(buf));
	CHECK(strtoull(buf, NULL, 16) == 1ULL << (SIGUSR2 - 1), "shared pending %s", buf);
	for (int i = 0; i < nt; i++) {
		read_status(pid, tids[i], "Uid:", buf, sizeof(buf));
		unsigned u[4];
		sscanf(buf, "%u %u %u %u", &u[0], &u[1], &u[2], &u[3]);
		unsigned want = ns_mode ? NOBODY : 0;
		CHECK(u[0] == want && u[1] == want && u[2] == want && u[3] == want, "tid %d: Uid %s",
		      tids[i], buf);
		read_status(pid, tids[i], "SigBlk:", buf, sizeof(buf));
		CHECK(strtoull(buf, NULL, 16) == (uint64_t)(i ? THREAD_MASK : MAIN_MASK), "tid %d: SigBlk %s",
		      tids[i], buf);
	}
	if (nt == 2) {
		read_status(pid, tids[1], "SigPnd:", buf, sizeof(buf));
		CHECK(strtoull(buf, NULL, 16) == 1ULL << (SIGUSR1 - 1), "thread pending %s", buf);
	}
}

static void check_outputs(int out_r)
{
	char buf[256] = "", path[512];
	ssize_t n = read(out_r, buf, sizeof(buf) - 1);
	CHECK(n > 0 && strstr(buf, "restored process says hello"), "stdout of the restored process: '%s'", buf);
	snprintf(path, sizeof(path), "%s/shared.bin", dir);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 4, 100) == 4 && !memcmp(buf, "WROK", 4),
	      "the write through the shared mapping did not reach the file");
	close(fd);
}

static void make_files(void)
{
	static uint8_t page[4096];
	size_t len = (size_t)(rst_code_end - rst_code_start);
	CHECK(len <= sizeof(page), "code too big");
	memcpy(page, rst_code_start, len);
	write_file("code.bin", page, sizeof(page), 0755);
	memset(page, 0, sizeof(page));
	uint64_t w = SHARED_WORD;
	memcpy(page, &w, 8);
	write_file("shared.bin", page, sizeof(page), 0644);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	int notify[2], out[2], st;
	struct rst_ready r;
	struct rst_finished *fin;

	ns_mode = argc > 1 && !strcmp(argv[1], "ns");
	bench_mode = argc > 1 && !strcmp(argv[1], "bench");
	if (bench_mode)
		big_pages = 1ULL << 18; /* 1 GiB */
	bench_t0 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(bench_t0 != MAP_FAILED, "mmap");
	snprintf(dir, sizeof(dir), "/tmp/rst-synthetic.XXXXXX");
	CHECK(mkdtemp(dir), "mkdtemp");
	make_files();
	CHECK(!pipe(notify) && !pipe(out), "pipe");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (ns_mode)
		CHECK(!unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID): %s", strerror(errno));
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid)
		child(notify[1], out[1]);
	close(notify[1]);
	close(out[1]);
	read_notify(notify[0], &r);
	struct timespec t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(r.pid == (ns_mode ? 1 : pid), "rst_ready for pid %d", r.pid);

	int ret = restore_finish_task(pid, r.args, &fin);
	if (ret) {
		restore_finish_abort(fin);
		waitpid(pid, NULL, 0);
		CHECK(0, "restore_finish_task: %d", ret);
	}
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (bench_mode) {
		double load = (double)(t1.tv_sec - bench_t0->tv_sec) + (t1.tv_nsec - bench_t0->tv_nsec) / 1e9;
		double fin = (double)(t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) / 1e9;
		printf("bench: %.0f MiB: restore_mem_prepare+jump to ready %.3f s (%.2f GB/s), finish %.4f s\n",
		       big_pages * 4096.0 / (1 << 20), load, big_pages * 4096.0 / load / 1e9, fin);
	}
	/* The mm we compare with: rebuilt the same way as in the child. */
	MmEntry *mm = make_mm();
	check_stopped(pid, mm);
	restore_finish_release(fin);

	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42, "restored process: status 0x%x (exit %d)", st,
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	check_outputs(out[0]);
	printf("rst-synthetic %s: OK\n", argc > 1 ? argv[1] : "plain");
	/* No system("rm"): the PID namespace is dead, fork would fail. */
	if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "could not remove %s\n", dir);
	return 0;
}
