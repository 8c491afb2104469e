/*
 * cr_cpu_bind: a process bound to one CPU (cpu 1, or the highest it may
 * use when it may not use 1) keeps its binding (docs/placement.md).
 *
 *   exact  the same single CPU after the restore
 *   one    exactly one CPU, one it may use (a binding that --cpu-map=job
 *          mapped onto this node: cpu-craft.sh cpu5)
 */
#include "crlib.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

static int bound;

static int the_cpu(void)
{
	cpu_set_t s;
	int last = -1;
	CHECK_SYS(!sched_getaffinity(0, sizeof(s), &s), "sched_getaffinity");
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &s))
			last = i;
	return CPU_ISSET(1, &s) ? 1 : last;
}

static void bind_one(void)
{
	cpu_set_t s;
	bound = the_cpu();
	CPU_ZERO(&s);
	CPU_SET(bound, &s);
	CHECK_SYS(!sched_setaffinity(0, sizeof(s), &s), "sched_setaffinity %d", bound);
	printf("bound to cpu %d\n", bound);
}

static int only_cpu(void)
{
	cpu_set_t s;
	CHECK_SYS(!sched_getaffinity(0, sizeof(s), &s), "sched_getaffinity");
	CHECK(CPU_COUNT(&s) == 1, "bound to %d CPUs after the restore, not one", CPU_COUNT(&s));
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &s))
			return i;
	return -1;
}

static void check_exact(void)
{
	int now = only_cpu();
	CHECK(now == bound, "bound to cpu %d after the restore, %d before", now, bound);
}

static void check_one(void)
{
	printf("bound to cpu %d after the restore\n", only_cpu());
}

int main(int argc, char **argv)
{
	static const struct cr_case cases[] = {
		{ "exact", bind_one, check_exact },
		{ "one", bind_one, check_one },
	};
	test_init();
	run_case(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
	pass();
}
