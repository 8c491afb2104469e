/*
 * cr_fpu: FPU/vector state in registers survives the checkpoint.
 *
 * Two threads each load distinct values into every vector register (zmm0-31
 * and k1-7 with AVX-512, else ymm0-15) and two x87 stack slots, set a
 * non-default MXCSR (round toward zero, flush to zero) and x87 control
 * word, then spin in assembly (fpu-spin.S) until the main thread, after
 * the check signal, sets a flag in memory.  The dump happens while the
 * values exist only in registers; afterwards each thread stores them and
 * compares.
 */
#include "crlib.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct fpu_regs {
	unsigned char vec[32][64];
	uint64_t k[8];
	double x87[2];
};

_Static_assert(offsetof(struct fpu_regs, k) == 2048, "layout shared with fpu-spin.S");
_Static_assert(offsetof(struct fpu_regs, x87) == 2112, "layout shared with fpu-spin.S");

void fpu_spin(const struct fpu_regs *in, struct fpu_regs *out, volatile int *entered,
	      volatile int *go, int level);

#define NR_THREADS 2
#define MY_MXCSR 0xff80u /* masked exceptions, round toward zero, FTZ */
#define MY_FPUCW 0x0c7fu /* masked exceptions, round toward zero, 24-bit precision */

struct spinner {
	int idx;
	pthread_t thread;
	volatile int entered;
	struct fpu_regs in, out;
	unsigned mxcsr;
	unsigned short fpucw;
};

static struct spinner spinners[NR_THREADS];
static volatile int go;
static int level;

static void *spin(void *arg)
{
	struct spinner *s = arg;
	unsigned mxcsr = MY_MXCSR;
	unsigned short cw = MY_FPUCW;

	test_block_check();
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	__asm__ volatile("fldcw %0" : : "m"(cw));
	fpu_spin(&s->in, &s->out, &s->entered, &go, level);
	__asm__ volatile("stmxcsr %0" : "=m"(s->mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(s->fpucw));
	return NULL;
}

static void make_values(struct spinner *s)
{
	uint64_t seed = 0x1234abcdull + s->idx * 0x9e3779b97f4a7c15ull;
	size_t i;

	for (i = 0; i < sizeof(s->in.vec); i += 8) {
		uint64_t v = xorshift64(&seed);
		memcpy(&s->in.vec[0][0] + i, &v, 8);
	}
	for (i = 1; i < 8; i++)
		s->in.k[i] = xorshift64(&seed) & 0xffff;
	s->in.x87[0] = 3.25 + s->idx;
	s->in.x87[1] = -1.0 / 3 - s->idx;
}

static void compare(const struct spinner *s)
{
	int nr_vec = level == 2 ? 32 : 16, width = level == 2 ? 64 : 32, i, j;

	for (i = 0; i < nr_vec; i++)
		for (j = 0; j < width; j++)
			CHECK(s->in.vec[i][j] == s->out.vec[i][j],
			      "thread %d: %cmm%d byte %d is 0x%02x, was 0x%02x", s->idx,
			      level == 2 ? 'z' : 'y', i, j, s->out.vec[i][j], s->in.vec[i][j]);
	for (i = 1; level == 2 && i < 8; i++)
		CHECK(s->in.k[i] == s->out.k[i], "thread %d: k%d is 0x%llx, was 0x%llx", s->idx, i,
		      (unsigned long long)s->out.k[i], (unsigned long long)s->in.k[i]);
	for (i = 0; i < 2; i++)
		CHECK(!memcmp(&s->in.x87[i], &s->out.x87[i], sizeof(double)),
		      "thread %d: x87 value %d is %g, was %g", s->idx, i, s->out.x87[i],
		      s->in.x87[i]);
	CHECK(s->mxcsr == MY_MXCSR, "thread %d: MXCSR 0x%x", s->idx, s->mxcsr);
	CHECK(s->fpucw == MY_FPUCW, "thread %d: x87 control word 0x%x", s->idx, s->fpucw);
}

int main(void)
{
	int i;

	test_init();
	__builtin_cpu_init();
	level = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx") ? 1 : 0;
	CHECK(level, "this CPU has no AVX");
	test_block_check(); /* inherited by the threads */
	for (i = 0; i < NR_THREADS; i++) {
		spinners[i].idx = i;
		make_values(&spinners[i]);
		CHECK(!pthread_create(&spinners[i].thread, NULL, spin, &spinners[i]),
		      "pthread_create");
	}
	/* ready only once every value is in registers */
	for (i = 0; i < NR_THREADS; i++)
		while (!spinners[i].entered)
			__asm__ volatile("pause");
	test_ready();
	test_wait_check();
	go = 1;
	for (i = 0; i < NR_THREADS; i++) {
		CHECK(!pthread_join(spinners[i].thread, NULL), "pthread_join");
		compare(&spinners[i]);
	}
	printf("%s registers intact in %d threads\n", level == 2 ? "AVX-512" : "AVX", NR_THREADS);
	pass();
}
