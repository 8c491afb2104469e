/*
 * ckpt-counter: the smallest program worth checkpointing.
 *
 * Every 0.3 s it prints one line -- a count, the time, and its PID -- and
 * flushes it, so a log shows exactly where it was when it was dumped and
 * where it went on after a restore.  It also keeps state that only survives
 * if memory is restored faithfully: a 1 MiB table it rewrites a little each
 * step, and a running checksum of that table it verifies every step.  If
 * the table and the checksum ever disagree it says so and exits 2.
 *
 * `ckptctl demo` runs it; it is also the first program to try by hand:
 *   ckpt-counter > /tmp/c.log 2>&1 < /dev/null &
 *   ckptctl dump -t $! -D /tmp/c.img && ckptctl restore -D /tmp/c.img
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define TABLE_WORDS (1u << 17) /* 1 MiB of uint64_t */
#define STEP_NS 300000000L

static uint64_t table[TABLE_WORDS];

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Order-independent checksum, so a step can update it in O(1). */
static uint64_t table_checksum(void)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < TABLE_WORDS; i++)
		sum += mix(table[i] ^ i);
	return sum;
}

static void now_text(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (long)tv.tv_usec / 1000);
}

int main(int argc, char **argv)
{
	long limit = argc > 1 ? atol(argv[1]) : 0; /* 0: count forever */
	uint64_t sum;
	char when[32];

	for (uint32_t i = 0; i < TABLE_WORDS; i++)
		table[i] = mix(i + 1);
	sum = table_checksum();

	for (long count = 1; limit == 0 || count <= limit; count++) {
		uint32_t slot = mix(count) % TABLE_WORDS;

		/* Rewrite one slot, keeping the checksum in step with it. */
		sum -= mix(table[slot] ^ slot);
		table[slot] = mix(table[slot] + count);
		sum += mix(table[slot] ^ slot);

		if (table_checksum() != sum) {
			printf("count %ld: STATE CORRUPT (checksum mismatch)\n", count);
			fflush(stdout);
			return 2;
		}
		now_text(when, sizeof(when));
		printf("count %ld  at %s  pid %d  state ok\n", count, when, (int)getpid());
		fflush(stdout);

		struct timespec step = { 0, STEP_NS };
		while (nanosleep(&step, &step) != 0)
			; /* a signal (or a restore) cut the sleep short: finish it */
	}
	return 0;
}
