/*
 * sigframe: the x86-64 rt_sigframe that rt_sigreturn(2) consumes, built
 * from registers and XSAVE state read with ptrace.  Layout (kernel's
 * arch/x86/include/asm/sigframe.h):
 *
 *   pretcode (8) | ucontext | siginfo (128) | ... | fpstate (64-aligned)
 *
 * rt_sigreturn finds the frame at rsp - 8, restores the general registers
 * from uc_mcontext, the FPU/AVX state from the XSAVE image that
 * uc_mcontext.fpstate points to, the signal mask from uc_sigmask and the
 * alternate stack from uc_stack.
 */
#include <errno.h>
#include <string.h>
#include <asm/unistd.h>
#include <cpuid.h>

#include "sigframe.h"

#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define FXSAVE_SIZE 512
#define XSAVE_HDR_SIZE 64
#define SW_BYTES_OFFSET 464

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

struct frame_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate;
	uint64_t reserved1[8];
};

struct frame_stack {
	uint64_t ss_sp;
	int32_t ss_flags;
	int32_t pad;
	uint64_t ss_size;
};

struct frame_ucontext {
	uint64_t uc_flags;
	uint64_t uc_link;
	struct frame_stack uc_stack;
	struct frame_sigcontext uc_mcontext;
	uint64_t uc_sigmask;
};

struct rt_sigframe {
	uint64_t pretcode;
	struct frame_ucontext uc;
	uint8_t info[128];
};

struct fpx_sw_bytes {
	uint32_t magic1;
	uint32_t extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size;
	uint32_t padding[7];
};

_Static_assert(sizeof(struct frame_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct fpx_sw_bytes) == 48, "sw bytes layout");

#define FPSTATE_OFFSET ((sizeof(struct rt_sigframe) + 63) & ~(size_t)63)

size_t sigframe_size(size_t xstate_len)
{
	/* 63 bytes of slack so the fpstate can be aligned wherever buf is. */
	return FPSTATE_OFFSET + xstate_len + 4 + 64;
}

void sigframe_fixup_restart(struct user_regs_struct *regs)
{
	long orig = (long)regs->orig_rax;
	long ret = (long)regs->rax;

	if (orig < 0)
		return;
	switch (-ret) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		regs->rax = regs->orig_rax;
		regs->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		/* The kernel's restart block does not survive; sleeps and
		 * poll (whose arguments are still in rdi/rsi/rdx) are issued
		 * again with their full timeout, anything else sees EINTR. */
		if (orig == __NR_nanosleep || orig == __NR_clock_nanosleep || orig == __NR_poll) {
			regs->rax = regs->orig_rax;
			regs->rip -= 2;
		} else {
			regs->rax = (uint64_t)-EINTR;
		}
		break;
	}
	regs->orig_rax = (uint64_t)-1;
}

/* Bytes of the standard-format XSAVE image that hold the features in
 * `xfeatures` (CPUID leaf 0xD gives each component's offset and size). */
static uint32_t xsave_size_for(uint64_t xfeatures)
{
	uint32_t size = FXSAVE_SIZE + XSAVE_HDR_SIZE;
	for (int i = 2; i < 63; i++) {
		unsigned int eax, ebx, ecx, edx;
		if (!(xfeatures & (1ULL << i)))
			continue;
		__cpuid_count(0xd, i, eax, ebx, ecx, edx);
		if (eax + ebx > size)
			size = eax + ebx;
	}
	return size;
}

static void fill_sigcontext(struct frame_sigcontext *sc, const struct user_regs_struct *r)
{
	sc->r8 = r->r8; sc->r9 = r->r9; sc->r10 = r->r10; sc->r11 = r->r11;
	sc->r12 = r->r12; sc->r13 = r->r13; sc->r14 = r->r14; sc->r15 = r->r15;
	sc->rdi = r->rdi; sc->rsi = r->rsi; sc->rbp = r->rbp; sc->rbx = r->rbx;
	sc->rdx = r->rdx; sc->rax = r->rax; sc->rcx = r->rcx; sc->rsp = r->rsp;
	sc->rip = r->rip; sc->eflags = r->eflags;
	sc->cs = (uint16_t)r->cs;
	sc->ss = (uint16_t)r->ss;
}

int sigframe_build(void *buf, uint64_t target, const struct user_regs_struct *regs,
		   const void *xstate, size_t xstate_len, uint64_t sigmask,
		   const struct sigframe_altstack *altstack, uint64_t *sigreturn_rsp)
{
	struct user_regs_struct r = *regs;
	/* Work relative to an aligned frame start inside buf. */
	uint64_t pad = (64 - (target & 63)) & 63;
	uint8_t *base = (uint8_t *)buf + pad;
	uint64_t frame_addr = target + pad;
	struct rt_sigframe *f = (struct rt_sigframe *)base;
	uint8_t *fp = base + FPSTATE_OFFSET;

	if (xstate_len < FXSAVE_SIZE + XSAVE_HDR_SIZE)
		return -EINVAL;
	memset(base, 0, FPSTATE_OFFSET + xstate_len + 4);
	sigframe_fixup_restart(&r);

	f->uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	if (altstack && !(altstack->flags & 2 /* SS_DISABLE */)) {
		f->uc.uc_stack.ss_sp = altstack->sp;
		f->uc.uc_stack.ss_size = altstack->size;
		f->uc.uc_stack.ss_flags = (int32_t)altstack->flags;
	} else {
		f->uc.uc_stack.ss_flags = 2;
	}
	fill_sigcontext(&f->uc.uc_mcontext, &r);
	f->uc.uc_mcontext.fpstate = frame_addr + FPSTATE_OFFSET;
	f->uc.uc_sigmask = sigmask;

	/* ptrace puts XCR0 in the first word of the software-reserved bytes;
	 * the signal frame wants struct _fpx_sw_bytes there instead. */
	uint64_t xcr0;
	memcpy(&xcr0, (const uint8_t *)xstate + SW_BYTES_OFFSET, 8);
	if (!xcr0)
		memcpy(&xcr0, (const uint8_t *)xstate + FXSAVE_SIZE, 8);
	xcr0 &= ~((1ULL << 17) | (1ULL << 18)); /* AMX tiles are not in default frames */
	uint32_t size = xsave_size_for(xcr0);
	if (size > xstate_len)
		return -EINVAL;
	memcpy(fp, xstate, size);
	struct fpx_sw_bytes sw = {
		.magic1 = FP_XSTATE_MAGIC1,
		.extended_size = size + 4,
		.xfeatures = xcr0,
		.xstate_size = size,
	};
	memcpy(fp + SW_BYTES_OFFSET, &sw, sizeof(sw));
	uint64_t bv;
	memcpy(&bv, fp + FXSAVE_SIZE, 8);
	bv &= xcr0;
	memcpy(fp + FXSAVE_SIZE, &bv, 8);
	uint32_t magic2 = FP_XSTATE_MAGIC2;
	memcpy(fp + size, &magic2, 4);

	*sigreturn_rsp = frame_addr + 8;
	return 0;
}
