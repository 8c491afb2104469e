/*
 * crc32c (Castagnoli), the checksum of every image file and page chunk.
 *
 * Restore verifies every byte of a checkpoint before it touches anything,
 * so this must run at memory speed: on x86 with SSE4.2 it uses the crc32
 * instruction on three interleaved streams (the instruction has a latency
 * of three cycles but issues every cycle), then joins the three results
 * with a multiplication by x^(8n) mod P.  A table walk is the fallback.
 *
 * Values are the usual conditioned crc (inverted in and out), so that
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b) and crc32c(0, "123456789")
 * == 0xe3069283.  Internally `state` is the unconditioned register, in the
 * reflected bit order where bit 31 is the coefficient of x^0.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define POLY 0x82f63b78u     /* reflected Castagnoli polynomial */
#define STRIPE 8192u          /* bytes per stream in one interleaved block */

static uint32_t byte_table[256];
/* Multiplication by x^(8*STRIPE) and x^(16*STRIPE), one table per byte of
 * the multiplicand (multiplication by a constant is linear). */
static uint32_t shift1[4][256], shift2[4][256];
static int have_sse42;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* a * b mod P, both in reflected order. */
static uint32_t mult_mod_p(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	if (!a)
		return 0;
	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

/* x^(8 * len) mod P. */
static uint32_t x8n_mod_p(uint64_t len)
{
	uint32_t p = 1u << 31;         /* x^0 */
	uint32_t sq = 1u << 23;        /* x^8 */

	while (len) {
		if (len & 1)
			p = mult_mod_p(sq, p);
		sq = mult_mod_p(sq, sq);
		len >>= 1;
	}
	return p;
}

static void fill_shift_table(uint32_t t[4][256], uint32_t k)
{
	for (int i = 0; i < 4; i++)
		for (uint32_t v = 0; v < 256; v++)
			t[i][v] = mult_mod_p(v << (8 * i), k);
}

static inline uint32_t shift_by(uint32_t t[4][256], uint32_t s)
{
	return t[0][s & 0xff] ^ t[1][(s >> 8) & 0xff] ^ t[2][(s >> 16) & 0xff] ^ t[3][s >> 24];
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		byte_table[i] = c;
	}
	fill_shift_table(shift1, x8n_mod_p(STRIPE));
	fill_shift_table(shift2, x8n_mod_p(2 * (uint64_t)STRIPE));
	__builtin_cpu_init();
	have_sse42 = __builtin_cpu_supports("sse4.2");
}

static uint32_t crc_table(uint32_t s, const uint8_t *p, size_t len)
{
	while (len--)
		s = byte_table[(s ^ *p++) & 0xff] ^ (s >> 8);
	return s;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw_one(uint32_t s, const uint8_t *p,
							       size_t len)
{
	uint64_t s64 = s;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		s64 = __builtin_ia32_crc32di(s64, v);
		p += 8;
		len -= 8;
	}
	s = s64;
	while (len--)
		s = __builtin_ia32_crc32qi(s, *p++);
	return s;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t s, const uint8_t *p, size_t len)
{
	while (len >= 3 * STRIPE) {
		uint64_t a = s, b = 0, c = 0;
		const uint8_t *pa = p, *pb = p + STRIPE, *pc = p + 2 * STRIPE;

		for (size_t i = 0; i < STRIPE; i += 8) {
			uint64_t va, vb, vc;
			memcpy(&va, pa + i, 8);
			memcpy(&vb, pb + i, 8);
			memcpy(&vc, pc + i, 8);
			a = __builtin_ia32_crc32di(a, va);
			b = __builtin_ia32_crc32di(b, vb);
			c = __builtin_ia32_crc32di(c, vc);
		}
		s = shift_by(shift2, a) ^ shift_by(shift1, b) ^ (uint32_t)c;
		p += 3 * STRIPE;
		len -= 3 * STRIPE;
	}
	return crc_hw_one(s, p, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t s = ~crc;

	pthread_once(&init_once, crc_init);
	if (have_sse42)
		s = crc_hw(s, buf, len);
	else
		s = crc_table(s, buf, len);
	return ~s;
}

uint32_t crc32c_slow(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&init_once, crc_init);
	return ~crc_table(~crc, buf, len);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	return mult_mod_p(x8n_mod_p(len_b), crc_a) ^ crc_b;
}
