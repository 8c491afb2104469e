/*
 * cr_counter: a counting loop keeps going from where it was.
 *
 * The counter and a shadow (3 * counter + 7) live in registers; every 64Ki
 * steps the counter is also stored to memory (cr_shared.progress).  After
 * the restore the registers must match each other and the memory copy: lost
 * or stale registers, or memory from another moment, break the relations.
 */
#include "crlib.h"

#include <inttypes.h>
#include <stdio.h>

#define STEP_MASK 0xffffull

int main(void)
{
	uint64_t c = 0, shadow = 7, at_ready;

	test_init();
	for (; c < 4000000; c++) {
		shadow += 3;
		__asm__ volatile("" : "+r"(c), "+r"(shadow));
	}
	at_ready = c;
	cr_shared.progress = c;
	test_ready();
	while (!test_check_requested()) {
		c++;
		shadow += 3;
		__asm__ volatile("" : "+r"(c), "+r"(shadow));
		if ((c & STEP_MASK) == 0)
			cr_shared.progress = c;
	}
	CHECK(shadow == 3 * c + 7, "shadow %" PRIu64 " != 3 * %" PRIu64 " + 7", shadow, c);
	CHECK(c >= at_ready, "counter %" PRIu64 " went back below %" PRIu64, c, at_ready);
	CHECK(c >= cr_shared.progress && c - cr_shared.progress <= STEP_MASK + 1,
	      "counter %" PRIu64 " and its memory copy %" PRIu64 " disagree", c,
	      cr_shared.progress);
	/* and it goes on counting after the restore */
	at_ready = c;
	for (; c < at_ready + 1000000; c++) {
		shadow += 3;
		__asm__ volatile("" : "+r"(c), "+r"(shadow));
	}
	CHECK(shadow == 3 * c + 7, "shadow broken after the restore");
	printf("counted to %" PRIu64 "\n", c);
	pass();
}
