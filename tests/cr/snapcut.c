/*
 * cr_snapshot_cut: a snapshot dump restores the frozen moment, not a mix.
 *
 * Four threads write their own 32 MiB region furiously, page after page:
 * in sweep g, page i gets g (at both ends).  The thread's position (g, k)
 * lives in its registers, so at every instant its region reads g for
 * pages [0, k) and g - 1 for pages [k, N).  A dump whose pages were read
 * while the threads ran (a mix of moments) breaks that pattern against
 * the restored registers; a copy of the frozen moment keeps it.  Each
 * thread checks its whole region whenever it notices a gap in time (its
 * process was frozen, or dumped and restored: the first thing it does
 * after a restore), every 64th sweep, and once more when the check is
 * asked for.  The
 * threads run on during the snapshot's read (cr-run --dump-running), so
 * that the copy-on-write has work to do.
 */
#include "crlib.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NR_WRITERS 4
#define REGION_PAGES 8192 /* 32 MiB */
#define WORDS (4096 / 8)
#define GAP_NS 30000000ull /* 30 ms: a freeze, a restore, or a busy machine */

struct writer {
	int idx;
	uint64_t (*pages)[WORDS];
	uint64_t g, k; /* where it stopped, for the final check */
	uint64_t checks;
	char error[200];
};

static struct writer writers[NR_WRITERS];
static volatile int stop;

/* 0, or the first page out of the pattern (g, k). */
static int check_region(struct writer *w, uint64_t g, uint64_t k)
{
	for (uint64_t i = 0; i < REGION_PAGES; i++) {
		uint64_t want = i < k ? g : g - 1;
		if (w->pages[i][0] != want || w->pages[i][WORDS - 1] != want) {
			snprintf(w->error, sizeof(w->error),
				 "writer %d at sweep %" PRIu64 " page %" PRIu64 ": page %" PRIu64
				 " holds %" PRIu64 "/%" PRIu64 ", not %" PRIu64,
				 w->idx, g, k, i, w->pages[i][0], w->pages[i][WORDS - 1], want);
			return -1;
		}
	}
	w->checks++;
	__atomic_fetch_add(&cr_shared.aux, 1, __ATOMIC_RELAXED);
	return 0;
}

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	uint64_t g = 2, k = 0, last = now_ns();

	while (!stop && !w->error[0]) {
		w->pages[k][0] = g;
		w->pages[k][WORDS - 1] = g;
		int swept = ++k == REGION_PAGES;
		if (swept) {
			k = 0;
			g++;
			__atomic_fetch_add(&cr_shared.progress, 1, __ATOMIC_RELAXED);
		}
		uint64_t t = now_ns();
		/* after a gap, and every 64th sweep (cr_shared.aux counts them) */
		if ((t - last > GAP_NS && t > last) || (swept && g % 64 == 0))
			check_region(w, g, k);
		last = t;
	}
	w->g = g;
	w->k = k;
	return NULL;
}

int main(void)
{
	pthread_t tids[NR_WRITERS];

	test_init();
	test_block_check();
	for (int i = 0; i < NR_WRITERS; i++) {
		struct writer *w = &writers[i];
		w->idx = i;
		w->pages = mmap(NULL, REGION_PAGES * 4096ul, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK_SYS(w->pages != MAP_FAILED, "mmap");
		for (uint64_t p = 0; p < REGION_PAGES; p++)
			w->pages[p][0] = w->pages[p][WORDS - 1] = 1; /* sweep 1 */
		CHECK(!pthread_create(&tids[i], NULL, write_loop, w), "pthread_create");
	}
	while (cr_shared.progress < 2 * NR_WRITERS)
		usleep(1000);
	test_ready();
	test_wait_check();
	stop = 1;
	uint64_t checks = 0;
	for (int i = 0; i < NR_WRITERS; i++) {
		struct writer *w = &writers[i];
		pthread_join(tids[i], NULL);
		CHECK(!w->error[0], "%s", w->error);
		CHECK(!check_region(w, w->g, w->k), "%s", w->error);
		checks += w->checks;
	}
	printf("%" PRIu64 " sweeps, %" PRIu64 " checks of a region\n", cr_shared.progress, checks);
	pass();
}
