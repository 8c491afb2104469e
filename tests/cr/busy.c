/*
 * killdump_20: the busy target of the kill-the-dumper test.
 *
 * 256 MiB of patterned memory and two threads that never rest: a counter
 * (register counter + shadow, like cr_counter) that also rewrites a 1 MiB
 * scratch area and checks every page it rewrites, and a verifier that
 * recomputes the checksum of the 256 MiB over and over.  Both publish in
 * cr_shared (progress: counter, aux: verified passes, failed: what broke),
 * which cr-run reads from outside after each killed dump.  After the check
 * signal: fds and mappings as when it got ready (nothing of a killed dumper
 * left behind), then the threads stop and everything is verified again.
 */
#include "crlib.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (256ull << 20)
#define SCRATCH_PAGES 256
#define PAGE_WORDS 512

static unsigned char *area;
static uint64_t sum;
static uint64_t scratch[SCRATCH_PAGES][PAGE_WORDS] __attribute__((aligned(4096)));
static uint64_t stamps[SCRATCH_PAGES];
static volatile int stop;

static void *count(void *arg)
{
	uint64_t c = 0, shadow = 7, p, w;

	(void)arg;
	test_block_check();
	while (!stop) {
		c++;
		shadow += 3;
		__asm__ volatile("" : "+r"(c), "+r"(shadow));
		if (c & 0xfff)
			continue;
		if (shadow != 3 * c + 7)
			cr_shared.failed = 1;
		p = (c >> 12) % SCRATCH_PAGES;
		for (w = 0; w < PAGE_WORDS; w++)
			if (scratch[p][w] != stamps[p])
				cr_shared.failed = 2;
		stamps[p] = c;
		for (w = 0; w < PAGE_WORDS; w++)
			scratch[p][w] = c;
		cr_shared.progress = c;
	}
	return NULL;
}

static uint64_t checksum(void)
{
	return hash64(HASH64_INIT, area, SIZE);
}

static void *verify(void *arg)
{
	(void)arg;
	test_block_check();
	while (!stop) {
		if (checksum() != sum)
			cr_shared.failed = 3;
		cr_shared.aux++;
	}
	return NULL;
}

/* The first line of `now` that `was` lacks, NULL when none.  A parasite
 * that cured itself after its dumper was killed leaves its anonymous rwx
 * area behind (documented in include/parasite-abi.h): that one is
 * allowed; any other change is not. */
static const char *maps_changed(const char *was, const char *now)
{
	static char line[512];
	while (*now) {
		size_t n = strcspn(now, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)n, now);
		now += n + (now[n] == '\n');
		if (strstr(was, line))
			continue;
		if (strstr(line, " rwxp 00000000 00:00 0") && !strpbrk(line, "/["))
			continue;
		return line;
	}
	return NULL;
}

int main(void)
{
	pthread_t counter, verifier;
	const char *fds_was, *maps_was;
	uint64_t seed = 42, i;

	test_init();
	area = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(area != MAP_FAILED, "mmap");
	for (i = 0; i < SIZE / 8; i++) {
		/* a quarter of the pages stay zero */
		uint64_t v = ((i / 512) % 4 == 3) ? 0 : xorshift64(&seed) & 0x00ff00ff00ff00ffull;
		memcpy(area + i * 8, &v, 8);
	}
	sum = checksum();
	test_block_check(); /* inherited by the threads */
	CHECK(!pthread_create(&counter, NULL, count, NULL), "pthread_create");
	CHECK(!pthread_create(&verifier, NULL, verify, NULL), "pthread_create");
	fds_was = snapshot_fds(0);
	maps_was = snapshot_file("/proc/self/maps", 0);
	test_ready();
	test_wait_check();
	/* one full pass over 256 MiB takes a while: the check may come first */
	while (!__atomic_load_n(&cr_shared.aux, __ATOMIC_RELAXED) && !cr_shared.failed)
		usleep(1000);
	stop = 1;
	/* nothing of the killed dumpers (parasite area, socket) left in us */
	CHECK(!strcmp(snapshot_fds(1), fds_was), "fds changed:\n%s\nwere:\n%s", snapshot_fds(1),
	      fds_was);
	const char *maps_now = snapshot_file("/proc/self/maps", 1);
	const char *bad = maps_changed(maps_was, maps_now);
	CHECK(!bad, "mapping changed or added: %.200s", bad);
	CHECK(!pthread_join(counter, NULL) && !pthread_join(verifier, NULL), "pthread_join");
	CHECK(!cr_shared.failed, "self-check failed: %" PRIu64
	      " (1: registers, 2: scratch page, 3: checksum)", cr_shared.failed);
	CHECK(checksum() == sum, "checksum of the 256 MiB changed");
	CHECK(cr_shared.aux > 0, "the verifier never finished a pass");
	printf("counter %" PRIu64 ", %" PRIu64 " verified passes\n", cr_shared.progress,
	       cr_shared.aux);
	pass();
}
