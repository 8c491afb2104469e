/*
 * fpu-spin.S: the register part of cr_fpu.
 *
 * void fpu_spin(const struct fpu_regs *in, struct fpu_regs *out,
 *               volatile int *entered, volatile int *go, int level);
 *
 * Loads vector registers (level 1: ymm0-15; level 2: zmm0-31 and k1-7) and
 * two x87 stack slots from `in`, sets *entered, spins until *go becomes
 * non-zero (the checkpoint happens here, with the values only in
 * registers), then stores the same registers to `out`.  Layout of struct
 * fpu_regs: 32 vectors of 64 bytes, 8 mask words of 8 bytes at 2048, two
 * doubles at 2112.  Every vector register is caller-saved in the SysV ABI,
 * and the x87 stack is empty again on return.
 */
	.text
	.globl	fpu_spin
	.type	fpu_spin, @function
fpu_spin:
	fldl	2112(%rdi)
	fldl	2120(%rdi)
	cmpl	$2, %r8d
	je	.Lzmm

	vmovdqu	0(%rdi), %ymm0
	vmovdqu	64(%rdi), %ymm1
	vmovdqu	128(%rdi), %ymm2
	vmovdqu	192(%rdi), %ymm3
	vmovdqu	256(%rdi), %ymm4
	vmovdqu	320(%rdi), %ymm5
	vmovdqu	384(%rdi), %ymm6
	vmovdqu	448(%rdi), %ymm7
	vmovdqu	512(%rdi), %ymm8
	vmovdqu	576(%rdi), %ymm9
	vmovdqu	640(%rdi), %ymm10
	vmovdqu	704(%rdi), %ymm11
	vmovdqu	768(%rdi), %ymm12
	vmovdqu	832(%rdi), %ymm13
	vmovdqu	896(%rdi), %ymm14
	vmovdqu	960(%rdi), %ymm15
	movl	$1, (%rdx)
1:	pause
	cmpl	$0, (%rcx)
	je	1b
	vmovdqu	%ymm0, 0(%rsi)
	vmovdqu	%ymm1, 64(%rsi)
	vmovdqu	%ymm2, 128(%rsi)
	vmovdqu	%ymm3, 192(%rsi)
	vmovdqu	%ymm4, 256(%rsi)
	vmovdqu	%ymm5, 320(%rsi)
	vmovdqu	%ymm6, 384(%rsi)
	vmovdqu	%ymm7, 448(%rsi)
	vmovdqu	%ymm8, 512(%rsi)
	vmovdqu	%ymm9, 576(%rsi)
	vmovdqu	%ymm10, 640(%rsi)
	vmovdqu	%ymm11, 704(%rsi)
	vmovdqu	%ymm12, 768(%rsi)
	vmovdqu	%ymm13, 832(%rsi)
	vmovdqu	%ymm14, 896(%rsi)
	vmovdqu	%ymm15, 960(%rsi)
	jmp	.Lout
.Lzmm:
	vmovdqu64	0(%rdi), %zmm0
	vmovdqu64	64(%rdi), %zmm1
	vmovdqu64	128(%rdi), %zmm2
	vmovdqu64	192(%rdi), %zmm3
	vmovdqu64	256(%rdi), %zmm4
	vmovdqu64	320(%rdi), %zmm5
	vmovdqu64	384(%rdi), %zmm6
	vmovdqu64	448(%rdi), %zmm7
	vmovdqu64	512(%rdi), %zmm8
	vmovdqu64	576(%rdi), %zmm9
	vmovdqu64	640(%rdi), %zmm10
	vmovdqu64	704(%rdi), %zmm11
	vmovdqu64	768(%rdi), %zmm12
	vmovdqu64	832(%rdi), %zmm13
	vmovdqu64	896(%rdi), %zmm14
	vmovdqu64	960(%rdi), %zmm15
	vmovdqu64	1024(%rdi), %zmm16
	vmovdqu64	1088(%rdi), %zmm17
	vmovdqu64	1152(%rdi), %zmm18
	vmovdqu64	1216(%rdi), %zmm19
	vmovdqu64	1280(%rdi), %zmm20
	vmovdqu64	1344(%rdi), %zmm21
	vmovdqu64	1408(%rdi), %zmm22
	vmovdqu64	1472(%rdi), %zmm23
	vmovdqu64	1536(%rdi), %zmm24
	vmovdqu64	1600(%rdi), %zmm25
	vmovdqu64	1664(%rdi), %zmm26
	vmovdqu64	1728(%rdi), %zmm27
	vmovdqu64	1792(%rdi), %zmm28
	vmovdqu64	1856(%rdi), %zmm29
	vmovdqu64	1920(%rdi), %zmm30
	vmovdqu64	1984(%rdi), %zmm31
	kmovw	2056(%rdi), %k1
	kmovw	2064(%rdi), %k2
	kmovw	2072(%rdi), %k3
	kmovw	2080(%rdi), %k4
	kmovw	2088(%rdi), %k5
	kmovw	2096(%rdi), %k6
	kmovw	2104(%rdi), %k7
	movl	$1, (%rdx)
2:	pause
	cmpl	$0, (%rcx)
	je	2b
	vmovdqu64	%zmm0, 0(%rsi)
	vmovdqu64	%zmm1, 64(%rsi)
	vmovdqu64	%zmm2, 128(%rsi)
	vmovdqu64	%zmm3, 192(%rsi)
	vmovdqu64	%zmm4, 256(%rsi)
	vmovdqu64	%zmm5, 320(%rsi)
	vmovdqu64	%zmm6, 384(%rsi)
	vmovdqu64	%zmm7, 448(%rsi)
	vmovdqu64	%zmm8, 512(%rsi)
	vmovdqu64	%zmm9, 576(%rsi)
	vmovdqu64	%zmm10, 640(%rsi)
	vmovdqu64	%zmm11, 704(%rsi)
	vmovdqu64	%zmm12, 768(%rsi)
	vmovdqu64	%zmm13, 832(%rsi)
	vmovdqu64	%zmm14, 896(%rsi)
	vmovdqu64	%zmm15, 960(%rsi)
	vmovdqu64	%zmm16, 1024(%rsi)
	vmovdqu64	%zmm17, 1088(%rsi)
	vmovdqu64	%zmm18, 1152(%rsi)
	vmovdqu64	%zmm19, 1216(%rsi)
	vmovdqu64	%zmm20, 1280(%rsi)
	vmovdqu64	%zmm21, 1344(%rsi)
	vmovdqu64	%zmm22, 1408(%rsi)
	vmovdqu64	%zmm23, 1472(%rsi)
	vmovdqu64	%zmm24, 1536(%rsi)
	vmovdqu64	%zmm25, 1600(%rsi)
	vmovdqu64	%zmm26, 1664(%rsi)
	vmovdqu64	%zmm27, 1728(%rsi)
	vmovdqu64	%zmm28, 1792(%rsi)
	vmovdqu64	%zmm29, 1856(%rsi)
	vmovdqu64	%zmm30, 1920(%rsi)
	vmovdqu64	%zmm31, 1984(%rsi)
	kmovw	%k1, 2056(%rsi)
	kmovw	%k2, 2064(%rsi)
	kmovw	%k3, 2072(%rsi)
	kmovw	%k4, 2080(%rsi)
	kmovw	%k5, 2088(%rsi)
	kmovw	%k6, 2096(%rsi)
	kmovw	%k7, 2104(%rsi)
.Lout:
	fstpl	2120(%rsi)
	fstpl	2112(%rsi)
	vzeroupper
	ret
	.size	fpu_spin, .-fpu_spin
	.section .note.GNU-stack,"",@progbits
