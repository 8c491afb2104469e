/*
 * track-prog DIR: the workload of track-cr.sh (dirty-page tracking).
 *
 * Holds 64 MiB of anonymous memory (every page tells its number and the
 * phase it was last written in), a private file mapping, a region to be
 * unmapped and one to be moved.  Writes "PID" to DIR/ready, then waits.
 *
 * SIGUSR2, phase p += 1: rewrites every 20th page (5%), drops pages
 * i % 97 == 3 (MADV_DONTNEED: zero from now on) and reads every other of
 * them back in (the zero page), maps a new 2 MiB region, unmaps the 4 MiB
 * one, moves the other 4 MiB (mremap) and writes a page of it, writes a
 * page of the file mapping (copy-on-write); then "p" to DIR/dirtied.
 *
 * SIGUSR1: checks every page against the phase the script wrote to
 * DIR/phase (not against memory of its own, which a bad restore could
 * have made agree) and writes "ok" or "bad PAGE WHAT" to DIR/check.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define NPAGES (64UL * 256)
#define SIDE (4UL << 20)

static char *dir;
static uint8_t *mem, *filemap, *gone, *moved, *fresh;
static volatile sig_atomic_t got;

static void on_signal(int sig)
{
	got = sig;
}

static void fill(uint8_t *p, uint64_t tag, uint64_t phase)
{
	for (size_t i = 0; i < PAGE / 8; i++)
		((uint64_t *)p)[i] = tag * 0x9e3779b97f4a7c15ULL + phase * 1000003 + i;
}

static int same(const uint8_t *p, uint64_t tag, uint64_t phase)
{
	for (size_t i = 0; i < PAGE / 8; i++)
		if (((const uint64_t *)p)[i] != tag * 0x9e3779b97f4a7c15ULL + phase * 1000003 + i)
			return 0;
	return 1;
}

static int is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < PAGE; i++)
		if (p[i])
			return 0;
	return 1;
}

static void put(const char *name, const char *text)
{
	char tmp[4096], path[4096];
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

/* The phase page i of mem was last written in, given the current one. */
static uint64_t page_phase(size_t i, uint64_t phase)
{
	return i % 20 == 0 ? phase : 0;
}

static void mutate(uint64_t phase)
{
	for (size_t i = 0; i < NPAGES; i += 20)
		fill(mem + i * PAGE, i, phase);
	for (size_t i = 3, n = 0; i < NPAGES; i += 97, n++) {
		madvise(mem + i * PAGE, PAGE, MADV_DONTNEED);
		if (n % 2)
			(void)*(volatile uint8_t *)(mem + i * PAGE);
	}
	if (phase == 1) {
		fresh = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (size_t i = 0; i < (2 << 20) / PAGE; i++)
			fill(fresh + i * PAGE, 500000 + i, 1);
		munmap(gone, SIDE);
		gone = NULL;
		moved = mremap(moved, SIDE, SIDE, MREMAP_MAYMOVE | MREMAP_FIXED, moved + 64 * SIDE);
	}
	fill(moved + 5 * PAGE, 700005, phase);
	fill(filemap + 3 * PAGE, 800003, phase);
}

static const char *check(uint64_t phase, size_t *bad)
{
	for (size_t i = 0; i < NPAGES; i++) {
		*bad = i;
		int dropped = phase > 0 && i % 97 == 3;
		if (dropped ? !is_zero(mem + i * PAGE) : !same(mem + i * PAGE, i, page_phase(i, phase)))
			return "anonymous";
	}
	for (size_t i = 0; i < SIDE / PAGE; i++) {
		*bad = i;
		if (!same(moved + i * PAGE, 700000 + i, i == 5 ? phase : 0))
			return "moved";
		if (gone && !same(gone + i * PAGE, 600000 + i, 0))
			return "to unmap";
	}
	for (size_t i = 0; fresh && i < (2 << 20) / PAGE; i++) {
		*bad = i;
		if (!same(fresh + i * PAGE, 500000 + i, 1))
			return "new mapping";
	}
	*bad = 3;
	if (phase > 0 ? !same(filemap + 3 * PAGE, 800003, phase) : filemap[3 * PAGE] != 'f')
		return "file";
	return NULL;
}

static uint64_t read_phase(void)
{
	char path[4096];
	unsigned long long p = 0;
	snprintf(path, sizeof(path), "%s/phase", dir);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &p) != 1)
		p = ~0ULL;
	if (f)
		fclose(f);
	return p;
}

static uint8_t *map_file(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/data", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	char buf[PAGE];
	memset(buf, 'f', sizeof(buf));
	for (int i = 0; i < 256; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			exit(2);
	uint8_t *p = mmap(NULL, 256 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	return p;
}

int main(int argc, char **argv)
{
	char line[128];
	uint64_t phase = 0;
	if (argc != 2)
		return 2;
	dir = argv[1];
	/* fds of whoever started us (a pipe to a test runner) would make
	 * the tree undumpable */
	syscall(SYS_close_range, 3, ~0U, 0);
	mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gone = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	filemap = map_file();
	if (mem == MAP_FAILED || gone == MAP_FAILED || moved == MAP_FAILED || filemap == MAP_FAILED)
		return 2;
	for (size_t i = 0; i < NPAGES; i++)
		fill(mem + i * PAGE, i, 0);
	for (size_t i = 0; i < SIDE / PAGE; i++) {
		fill(gone + i * PAGE, 600000 + i, 0);
		fill(moved + i * PAGE, 700000 + i, 0);
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t both, none;
	sigemptyset(&both);
	sigemptyset(&none);
	sigaddset(&both, SIGUSR1);
	sigaddset(&both, SIGUSR2);
	sigprocmask(SIG_BLOCK, &both, NULL); /* a signal before we wait waits */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	snprintf(line, sizeof(line), "%d\n", getpid());
	put("ready", line);
	for (;;) {
		while (!got)
			sigsuspend(&none);
		int sig = got;
		got = 0;
		if (sig == SIGUSR2) {
			mutate(++phase);
			snprintf(line, sizeof(line), "%llu\n", (unsigned long long)phase);
			put("dirtied", line);
		} else {
			size_t bad = 0;
			const char *what = check(read_phase(), &bad);
			if (what)
				snprintf(line, sizeof(line), "bad %zu %s\n", bad, what);
			else
				snprintf(line, sizeof(line), "ok\n");
			put("check", line);
		}
	}
}
