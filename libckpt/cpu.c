/*
 * cpu: the CPU a set needs (cpu.h).  One table names every user-visible
 * CPUID feature flag ckpt records, by the name Linux's /proc/cpuinfo and
 * Slurm node Features use; the recorded words are masked to it, so that
 * bits a hypervisor or the kernel varies (hypervisor, x2apic, monitor,
 * APIC ids) never make two equal CPUs differ.
 *
 * The restore needs two things of the CPU, compared as CRIU's
 * criu/arch/x86/cpu.c does:
 *   - the registers: each thread's xstate is restored with rt_sigreturn
 *     in the dumped XSAVE layout, so every component a task used must be
 *     enabled here (XCR0), lie at the same offset, and the kernel's
 *     signal-frame size must hold the layout — else the kernel drops the
 *     extended state to FXSAVE silently or refuses the frame;
 *   - the instructions: glibc picks its string and math routines by
 *     CPUID once, at start (ifunc), and programs do the same; a flag the
 *     set had and this CPU lacks is a SIGILL at some later call.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cpu.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "storage.h"

enum { EAX, EBX, ECX, EDX };

struct cpu_flag {
	uint32_t leaf, subleaf, reg, bit;
	const char *name;
};

static const struct cpu_flag flags[] = {
	{ 1, 0, EDX, 0, "fpu" },
	{ 1, 0, EDX, 4, "tsc" },
	{ 1, 0, EDX, 8, "cx8" },
	{ 1, 0, EDX, 15, "cmov" },
	{ 1, 0, EDX, 19, "clflush" },
	{ 1, 0, EDX, 23, "mmx" },
	{ 1, 0, EDX, 24, "fxsr" },
	{ 1, 0, EDX, 25, "sse" },
	{ 1, 0, EDX, 26, "sse2" },
	{ 1, 0, ECX, 0, "pni" },
	{ 1, 0, ECX, 1, "pclmulqdq" },
	{ 1, 0, ECX, 9, "ssse3" },
	{ 1, 0, ECX, 12, "fma" },
	{ 1, 0, ECX, 13, "cx16" },
	{ 1, 0, ECX, 19, "sse4_1" },
	{ 1, 0, ECX, 20, "sse4_2" },
	{ 1, 0, ECX, 22, "movbe" },
	{ 1, 0, ECX, 23, "popcnt" },
	{ 1, 0, ECX, 25, "aes" },
	{ 1, 0, ECX, 26, "xsave" },
	{ 1, 0, ECX, 28, "avx" },
	{ 1, 0, ECX, 29, "f16c" },
	{ 1, 0, ECX, 30, "rdrand" },
	{ 7, 0, EBX, 0, "fsgsbase" },
	{ 7, 0, EBX, 3, "bmi1" },
	{ 7, 0, EBX, 4, "hle" },
	{ 7, 0, EBX, 5, "avx2" },
	{ 7, 0, EBX, 8, "bmi2" },
	{ 7, 0, EBX, 9, "erms" },
	{ 7, 0, EBX, 11, "rtm" },
	{ 7, 0, EBX, 16, "avx512f" },
	{ 7, 0, EBX, 17, "avx512dq" },
	{ 7, 0, EBX, 18, "rdseed" },
	{ 7, 0, EBX, 19, "adx" },
	{ 7, 0, EBX, 21, "avx512ifma" },
	{ 7, 0, EBX, 23, "clflushopt" },
	{ 7, 0, EBX, 24, "clwb" },
	{ 7, 0, EBX, 26, "avx512pf" },
	{ 7, 0, EBX, 27, "avx512er" },
	{ 7, 0, EBX, 28, "avx512cd" },
	{ 7, 0, EBX, 29, "sha_ni" },
	{ 7, 0, EBX, 30, "avx512bw" },
	{ 7, 0, EBX, 31, "avx512vl" },
	{ 7, 0, ECX, 1, "avx512vbmi" },
	{ 7, 0, ECX, 3, "pku" },
	{ 7, 0, ECX, 5, "waitpkg" },
	{ 7, 0, ECX, 6, "avx512_vbmi2" },
	{ 7, 0, ECX, 8, "gfni" },
	{ 7, 0, ECX, 9, "vaes" },
	{ 7, 0, ECX, 10, "vpclmulqdq" },
	{ 7, 0, ECX, 11, "avx512_vnni" },
	{ 7, 0, ECX, 12, "avx512_bitalg" },
	{ 7, 0, ECX, 14, "avx512_vpopcntdq" },
	{ 7, 0, ECX, 22, "rdpid" },
	{ 7, 0, ECX, 27, "movdiri" },
	{ 7, 0, ECX, 28, "movdir64b" },
	{ 7, 0, EDX, 2, "avx512_4vnniw" },
	{ 7, 0, EDX, 3, "avx512_4fmaps" },
	{ 7, 0, EDX, 4, "fsrm" },
	{ 7, 0, EDX, 8, "avx512_vp2intersect" },
	{ 7, 0, EDX, 14, "serialize" },
	{ 7, 0, EDX, 22, "amx_bf16" },
	{ 7, 0, EDX, 23, "avx512_fp16" },
	{ 7, 0, EDX, 24, "amx_tile" },
	{ 7, 0, EDX, 25, "amx_int8" },
	{ 7, 1, EAX, 4, "avx_vnni" },
	{ 7, 1, EAX, 5, "avx512_bf16" },
	{ 7, 1, EAX, 7, "cmpccxadd" },
	{ 7, 1, EAX, 10, "fzrm" },
	{ 7, 1, EAX, 11, "fsrs" },
	{ 7, 1, EAX, 12, "fsrc" },
	{ 7, 1, EAX, 21, "amx_fp16" },
	{ 7, 1, EAX, 23, "avx_ifma" },
	{ 0xd, 1, EAX, 0, "xsaveopt" },
	{ 0xd, 1, EAX, 1, "xsavec" },
	{ 0xd, 1, EAX, 2, "xgetbv1" },
	{ 0x80000001, 0, ECX, 0, "lahf_lm" },
	{ 0x80000001, 0, ECX, 5, "abm" },
	{ 0x80000001, 0, ECX, 6, "sse4a" },
	{ 0x80000001, 0, ECX, 7, "misalignsse" },
	{ 0x80000001, 0, ECX, 8, "3dnowprefetch" },
	{ 0x80000001, 0, ECX, 11, "xop" },
	{ 0x80000001, 0, ECX, 16, "fma4" },
	{ 0x80000001, 0, ECX, 21, "tbm" },
	{ 0x80000001, 0, EDX, 11, "syscall" },
	{ 0x80000001, 0, EDX, 20, "nx" },
	{ 0x80000001, 0, EDX, 22, "mmxext" },
	{ 0x80000001, 0, EDX, 27, "rdtscp" },
	{ 0x80000001, 0, EDX, 29, "lm" },
	{ 0x80000001, 0, EDX, 30, "3dnowext" },
	{ 0x80000001, 0, EDX, 31, "3dnow" },
};
#define NR_FLAGS (sizeof(flags) / sizeof(flags[0]))

/* The registers the table reads: at most this many words in an image. */
#define MAX_WORDS 16

/* XSAVE component names, as the kernel's xstate messages give them. */
static const char *const components[] = {
	[0] = "x87",
	[1] = "SSE",
	[2] = "AVX YMM_Hi128",
	[3] = "MPX bounds",
	[4] = "MPX CSR",
	[5] = "AVX-512 opmask",
	[6] = "AVX-512 ZMM_Hi256",
	[7] = "AVX-512 Hi16_ZMM",
	[8] = "PT",
	[9] = "PKRU",
	[11] = "CET user",
	[12] = "CET supervisor",
	[14] = "UINTR",
	[17] = "AMX TILECFG",
	[18] = "AMX TILEDATA",
	[19] = "APX",
};
#define AMX_BITS ((1ULL << 17) | (1ULL << 18)) /* not in default signal frames */
#define XSAVE_LEGACY 576u		       /* FXSAVE area + XSAVE header */

static int same_word(const struct cpu_flag *f, uint32_t leaf, uint32_t subleaf, uint32_t reg)
{
	return f->leaf == leaf && f->subleaf == subleaf && f->reg == reg;
}

/* The mask of the table's bits in one register. */
static uint32_t word_mask(uint32_t leaf, uint32_t subleaf, uint32_t reg)
{
	uint32_t m = 0;
	for (size_t i = 0; i < NR_FLAGS; i++)
		if (same_word(&flags[i], leaf, subleaf, reg))
			m |= 1u << flags[i].bit;
	return m;
}

/* This CPU's register, 0 for a leaf beyond its highest. */
static uint32_t cpuid_reg(uint32_t leaf, uint32_t subleaf, uint32_t reg)
{
	unsigned int r[4] = { 0, 0, 0, 0 };
	unsigned int max = __get_cpuid_max(leaf & 0x80000000u, NULL);
	if (leaf > max)
		return 0;
	__cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
	return r[reg] & word_mask(leaf, subleaf, reg);
}

static uint64_t node_xcr0(void)
{
	uint32_t lo, hi;
	if (!(cpuid_reg(1, 0, ECX) & (1u << 26)))
		return 3; /* no XSAVE: x87 and SSE (FXSAVE) */
	unsigned int a, b, c, d;
	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 27)))
		return 3; /* the kernel did not enable it (OSXSAVE) */
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* Where component nr lies in this CPU's standard XSAVE layout. */
static void node_component(uint32_t nr, uint32_t *offset, uint32_t *size)
{
	unsigned int a, b, c, d;
	__cpuid_count(0xd, nr, a, b, c, d);
	*size = a;
	*offset = b;
}

/* Bytes of the standard layout holding every component of xfeatures. */
static uint32_t xsave_size(uint64_t xfeatures)
{
	uint32_t size = XSAVE_LEGACY, off, len;
	for (uint32_t i = 2; i < 63; i++) {
		if (!(xfeatures & (1ULL << i)))
			continue;
		node_component(i, &off, &len);
		if (off + len > size)
			size = off + len;
	}
	return size;
}

/* The union of every dumped thread's XSTATE_BV (the XSAVE header's first
 * word): the components a thread holds in other than their initial
 * state.  A component back in its initial state (vzeroupper after AVX) is
 * not counted: the flags, not this, keep such a program's code paths. */
static uint64_t xstate_used(const struct frozen_tree *tree)
{
	uint64_t used = 3;
	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *t = &tree->tasks[i];
		if (t->zombie || t->step_client)
			continue;
		for (int j = 0; j < t->nr_threads; j++) {
			uint64_t bv;
			if (t->threads[j].xstate_len < XSAVE_LEGACY)
				continue;
			memcpy(&bv, t->threads[j].xstate + 512, 8);
			used |= bv;
		}
	}
	return used;
}

static int record_features(CpuEntry *e)
{
	e->features = calloc(MAX_WORDS, sizeof(*e->features));
	CpuidWord *w = calloc(MAX_WORDS, sizeof(*w));
	if (!e->features || !w) {
		free(w);
		return -ENOMEM;
	}
	for (size_t i = 0; i < NR_FLAGS; i++) {
		const struct cpu_flag *f = &flags[i];
		if (i && same_word(&flags[i - 1], f->leaf, f->subleaf, f->reg))
			continue; /* the table keeps a word's flags together */
		if (e->n_features == MAX_WORDS)
			return -E2BIG;
		CpuidWord *x = &w[e->n_features];
		cpuid_word__init(x);
		x->leaf = f->leaf;
		x->subleaf = f->subleaf;
		x->reg = f->reg;
		x->value = cpuid_reg(f->leaf, f->subleaf, f->reg);
		e->features[e->n_features++] = x;
	}
	return 0;
}

static int record_layout(CpuEntry *e)
{
	e->layout = calloc(63, sizeof(*e->layout));
	XsaveComponent *c = calloc(63, sizeof(*c));
	if (!e->layout || !c) {
		free(c);
		return -ENOMEM;
	}
	for (uint32_t nr = 2; nr < 63; nr++) {
		/* AMX is not in the signal frames the restore builds (sigframe.c) */
		if (!(e->xstate_used & (1ULL << nr) & ~AMX_BITS))
			continue;
		XsaveComponent *x = &c[e->n_layout];
		xsave_component__init(x);
		x->nr = nr;
		node_component(nr, &x->offset, &x->size);
		e->layout[e->n_layout++] = x;
	}
	return 0;
}

int cpu_record(const struct frozen_tree *tree, CpuEntry *e)
{
	cpu_entry__init(e);
	e->xcr0 = node_xcr0();
	e->xstate_used = xstate_used(tree) & e->xcr0;
	e->xsave_size = xsave_size(e->xcr0 & ~AMX_BITS);
	int ret = record_features(e);
	ret = ret ? ret : record_layout(e);
	ret = ret ? ret : placement_record(tree, e);
	if (ret) {
		pr_err("cpu: cannot record this CPU's features: %s", strerror(-ret));
		cpu_record_free(e);
	}
	return ret;
}

void cpu_record_free(CpuEntry *e)
{
	if (e->n_features)
		free(e->features[0]);
	free(e->features);
	if (e->n_layout)
		free(e->layout[0]);
	free(e->layout);
	placement_record_free(e);
	e->features = NULL;
	e->layout = NULL;
	e->n_features = e->n_layout = 0;
}

/* ---- restore side ---- */

static int known_word(const CpuidWord *w)
{
	for (size_t i = 0; i < NR_FLAGS; i++)
		if (same_word(&flags[i], w->leaf, w->subleaf, w->reg))
			return 1;
	return 0;
}

static int validate_words(const CpuEntry *e)
{
	if (e->n_features > MAX_WORDS) {
		pr_err("inventory.img: cpu: %zu feature words, at most %d", e->n_features,
		       MAX_WORDS);
		return -EINVAL;
	}
	for (size_t i = 0; i < e->n_features; i++) {
		const CpuidWord *w = e->features[i];
		int dup = 0;
		for (size_t j = 0; j < i; j++)
			dup |= w->leaf == e->features[j]->leaf &&
			       w->subleaf == e->features[j]->subleaf &&
			       w->reg == e->features[j]->reg;
		if (!known_word(w) || dup || (w->value & ~word_mask(w->leaf, w->subleaf, w->reg))) {
			pr_err("inventory.img: cpu: feature word %zu (leaf %#x.%u reg %u = %#x): "
			       "unknown, repeated or with unknown bits",
			       i, w->leaf, w->subleaf, w->reg, w->value);
			return -EINVAL;
		}
	}
	return 0;
}

static int validate_layout(const CpuEntry *e)
{
	uint64_t seen = 0;
	for (size_t i = 0; i < e->n_layout; i++) {
		const XsaveComponent *x = e->layout[i];
		if (x->nr < 2 || x->nr > 62 || !(e->xstate_used & (1ULL << x->nr) & ~AMX_BITS) ||
		    (seen & (1ULL << x->nr)) || x->offset < XSAVE_LEGACY || x->size > 65536 ||
		    (uint64_t)x->offset + x->size > e->xsave_size) {
			pr_err("inventory.img: cpu: xsave layout entry %zu (component %u at %u, %u "
			       "bytes): out of range",
			       i, x->nr, x->offset, x->size);
			return -EINVAL;
		}
		seen |= 1ULL << x->nr;
	}
	uint64_t need = e->xstate_used & ~3ULL & ~AMX_BITS;
	if (need & ~seen) {
		pr_err("inventory.img: cpu: xsave components %#llx used without a layout",
		       (unsigned long long)(need & ~seen));
		return -EINVAL;
	}
	return 0;
}

int cpu_validate(const CpuEntry *e)
{
	if ((e->xcr0 & 3) != 3 || (e->xcr0 >> 63) || (e->xstate_used & ~e->xcr0) ||
	    e->xsave_size < XSAVE_LEGACY || e->xsave_size > 65536) {
		pr_err("inventory.img: cpu: xcr0 %#llx, xstate used %#llx, xsave size %u: out of "
		       "range",
		       (unsigned long long)e->xcr0, (unsigned long long)e->xstate_used,
		       e->xsave_size);
		return -EINVAL;
	}
	int ret = validate_words(e);
	ret = ret ? ret : validate_layout(e);
	return ret ? ret : placement_validate(e);
}

/* Appends ", what" (or "what" first) to buf. */
static void add_name(char *buf, size_t len, const char *what)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s%s", n ? ", " : "", what);
}

static void missing_flags(const CpuEntry *e, char *buf, size_t len)
{
	for (size_t i = 0; i < e->n_features; i++) {
		const CpuidWord *w = e->features[i];
		uint32_t lack = w->value & ~cpuid_reg(w->leaf, w->subleaf, w->reg);
		for (size_t f = 0; lack && f < NR_FLAGS; f++)
			if (same_word(&flags[f], w->leaf, w->subleaf, w->reg) &&
			    (lack & (1u << flags[f].bit)))
				add_name(buf, len, flags[f].name);
	}
}

static const char *component_name(uint32_t nr)
{
	const char *n = nr < sizeof(components) / sizeof(components[0]) ? components[nr] : NULL;
	return n ? n : "unknown";
}

/* Components used that are not enabled here, or lie elsewhere. */
static void missing_components(const CpuEntry *e, char *buf, size_t len)
{
	uint64_t here = node_xcr0();
	char what[96];
	for (uint32_t nr = 0; nr < 63; nr++) {
		if ((e->xstate_used & (1ULL << nr)) && !(here & (1ULL << nr))) {
			snprintf(what, sizeof(what), "xsave component %u: %s", nr,
				 component_name(nr));
			add_name(buf, len, what);
		}
	}
	for (size_t i = 0; i < e->n_layout; i++) {
		const XsaveComponent *x = e->layout[i];
		uint32_t off, size;
		node_component(x->nr, &off, &size);
		if ((here & (1ULL << x->nr)) && (off != x->offset || size != x->size)) {
			snprintf(what, sizeof(what), "xsave component %u at offset %u (%u here)",
				 x->nr, x->offset, off);
			add_name(buf, len, what);
		}
	}
	/* The frame the restore builds is as large as the dumped layout; one
	 * larger than this kernel's is restored as FXSAVE only (x87, SSE):
	 * exact for threads that held nothing else, not for the others. */
	if ((e->xstate_used & ~3ULL) && e->xsave_size > xsave_size(here & ~AMX_BITS)) {
		snprintf(what, sizeof(what), "an xsave area of %u bytes (%u here)", e->xsave_size,
			 xsave_size(here & ~AMX_BITS));
		add_name(buf, len, what);
	}
}

/* "6.18.1-foo" → 6, 18, 1; missing parts are 0. */
static void parse_release(const char *s, unsigned v[3])
{
	v[0] = v[1] = v[2] = 0;
	if (s)
		sscanf(s, "%u.%u.%u", &v[0], &v[1], &v[2]);
}

/* An older kernel is a warning, not a refusal: what the engine needs of
 * it (clone3 set_tid, rseq, the syscalls that rebuild each resource) is
 * refused by the restore itself, by name; what the program probed at
 * start (an io_uring opcode, a madvise flag) would fail it later with an
 * errno, which a program handles — a CPU flag would be a SIGILL. */
static void check_kernel(const char *kernel)
{
	struct utsname un;
	unsigned a[3], b[3];
	if (!kernel || uname(&un))
		return;
	parse_release(kernel, a);
	parse_release(un.release, b);
	for (int i = 0; i < 3; i++) {
		if (a[i] == b[i])
			continue;
		if (a[i] > b[i])
			pr_err("warning: kernel: the set was dumped on %s, this node runs the "
			       "older %s: "
			       "a system call the job found at start may fail after the restore",
			       kernel, un.release);
		return;
	}
}

int cpu_check(const CpuEntry *e, const char *kernel, enum ckpt_cpu_cap cap)
{
	char lack[1024] = "";
	if (e && cap == CKPT_CPU_CAP_ALL)
		missing_flags(e, lack, sizeof(lack));
	if (e)
		missing_components(e, lack, sizeof(lack));
	check_kernel(kernel);
	if (!lack[0])
		return 0;
	if (cap == CKPT_CPU_CAP_NONE) {
		pr_err("warning: cpu: the set needs %s which this CPU lacks (--cpu-cap=none)",
		       lack);
		return 0;
	}
	pr_err("cpu: the set needs %s which this CPU lacks", lack);
	return -EOPNOTSUPP;
}

/* Whether name is one of the comma-separated list. */
static int name_in_list(const char *name, const char *list)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

int cpu_feature_names(const CpuEntry *e, const char *sep, const char *only, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t f = 0; f < NR_FLAGS; f++) {
		uint32_t v = 0;
		for (size_t i = 0; e && i < e->n_features; i++)
			if (same_word(&flags[f], e->features[i]->leaf, e->features[i]->subleaf,
				      e->features[i]->reg))
				v = e->features[i]->value;
		if (!e)
			v = cpuid_reg(flags[f].leaf, flags[f].subleaf, flags[f].reg);
		if (!(v & (1u << flags[f].bit)))
			continue;
		if (only && !name_in_list(flags[f].name, only))
			continue;
		int w = snprintf(buf + n, len - n, "%s%s", n ? sep : "", flags[f].name);
		if (w < 0 || (size_t)w >= len - n)
			return -ENOSPC;
		n += (size_t)w;
	}
	return 0;
}

int ckpt_cpu_features(char *buf, size_t len)
{
	return cpu_feature_names(NULL, ",", NULL, buf, len);
}

int ckpt_set_constraint(const char *dir, const char *only, char *buf, size_t len)
{
	struct img_set *set;
	InventoryEntry *inv = NULL;
	int ret = img_set_open_but_pages(dir, &set); /* the inventory is what counts */
	if (ret)
		return ret;
	ret = img_read_one(set, IMG_INVENTORY, "inventory.img", &inventory_entry__descriptor,
			   (ProtobufCMessage **)&inv);
	if (!ret && inv->cpu)
		ret = cpu_validate(inv->cpu);
	if (!ret && !inv->cpu) {
		pr_err("%s: the set records no CPU (made before placement)", dir);
		ret = -ENOENT;
	}
	if (!ret && (ret = cpu_feature_names(inv->cpu, "&", only, buf, len)))
		pr_err("%s: the constraint does not fit %zu bytes", dir, len);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_set_close(set);
	return ret;
}
