/*
 * progress-bar: see progress-bar.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress-bar.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void bar_init(struct progress_bar *b)
{
	b->start_ns = now_ns();
	b->shown = 0;
	b->tty = isatty(2);
}

void bar_update(struct progress_bar *b, const char *phase, uint64_t done, uint64_t total)
{
	uint64_t el = now_ns() - b->start_ns;
	if (!b->tty || el < 1000000000ULL || !total)
		return;
	const int width = 30;
	int fill = (int)((double)done / (double)total * width);
	char bar[64];
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(width - fill));
	bar[width] = '\0';
	double mbs = (double)done / 1e6 / ((double)el / 1e9);
	double left = mbs > 0 ? (double)(total - done) / 1e6 / mbs : 0;
	fprintf(stderr, "\r%-8s [%s] %6.0f/%.0f MiB %7.1f MB/s ETA %d:%02d ", phase, bar,
		(double)done / 1048576.0, (double)total / 1048576.0, mbs, (int)left / 60,
		(int)left % 60);
	b->shown = 1;
}

void bar_done(struct progress_bar *b)
{
	if (b->shown)
		fprintf(stderr, "\r%*s\r", 79, "");
	b->shown = 0;
}

void bar_callback(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	bar_update(arg, phase, done, total);
}
