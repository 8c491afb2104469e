/*
 * sigframe: build an x86-64 rt_sigframe that rt_sigreturn(2) turns back
 * into a thread's saved registers, FPU/AVX state, signal mask and
 * alternate signal stack.  Used for the parasite's self-cure and by the
 * restorer.
 */
#ifndef CKPT_SIGFRAME_H
#define CKPT_SIGFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

struct sigframe_altstack {
	uint64_t sp, size;
	uint32_t flags; /* SS_DISABLE when there is none */
};

/* Bytes needed for a frame with `xstate_len` bytes of XSAVE state. */
size_t sigframe_size(size_t xstate_len);

/*
 * Build the frame in `buf` (sigframe_size() bytes, any alignment is fixed
 * up inside) for use at address `target` in the thread's address space.
 * On return *sigreturn_rsp is the value rsp must have when the thread
 * executes rt_sigreturn.  A thread frozen inside an interrupted syscall
 * is made to restart it (rt_sigreturn itself never restarts). Returns 0 or
 * -EINVAL for an unusable xstate.
 */
int sigframe_build(void *buf, uint64_t target, const struct user_regs_struct *regs,
		   const void *xstate, size_t xstate_len, uint64_t sigmask,
		   const struct sigframe_altstack *altstack, uint64_t *sigreturn_rsp);

/* The restart fix-up alone: regs as they must be for a thread that is
 * resumed without the kernel's syscall-restart logic. */
void sigframe_fixup_restart(struct user_regs_struct *regs);

#endif
