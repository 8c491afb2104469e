/*
 * Machine code of the synthetic "dumped process" of rst-synthetic.c.  The
 * test copies the bytes between rst_code_start and rst_code_end into a
 * file and maps it at CODE (a file-backed private VMA).  Addresses of the
 * other fake VMAs are absolute (see rst-layout.h); everything else is
 * rip-relative.
 *
 * Main thread: checks the registers and state the restore must have set up
 * and exits with 42 if all is well, with a number naming the first
 * failed check otherwise.  Second thread: checks r13, sets a flag, sleeps.
 */
#include "rst-layout.h"

	.section .rodata
	.globl rst_code_start, rst_code_end, rst_code_thread
	.balign 64
rst_code_start:
	/* 1, 2: general registers from gpregs */
	movabs $WANT_RBX, %rax
	cmp %rax, %rbx
	jne fail1
	movabs $WANT_R12, %rax
	cmp %rax, %r12
	jne fail2
	/* 3: ymm0 from the xstate */
	sub $64, %rsp
	vmovdqu %ymm0, (%rsp)
	mov %rsp, %rdi
	lea pattern(%rip), %rsi
	mov $32, %ecx
	repe cmpsb
	jne fail3
	add $64, %rsp
	/* 4: fs base */
	mov %fs:8, %rax
	movabs $FS_MAGIC, %rdx
	cmp %rdx, %rax
	jne fail4
	/* 6: signal mask */
	sub $16, %rsp
	mov $14, %eax		/* rt_sigprocmask(SIG_BLOCK, NULL, &old, 8) */
	xor %edi, %edi
	xor %esi, %esi
	mov %rsp, %rdx
	mov $8, %r10d
	syscall
	mov (%rsp), %rax
	add $16, %rsp
	movabs $MAIN_MASK, %rdx
	cmp %rdx, %rax
	jne fail6
	/* 7: the shared file mapping shows the file; write into it */
	movabs $SHARED_ADDR, %rdi
	mov (%rdi), %rax
	movabs $SHARED_WORD, %rdx
	cmp %rdx, %rax
	jne fail7
	movl $0x4b4f5257, 100(%rdi)	/* "WROK" */
	/* 8: second data page */
	movabs $DATA_ADDR, %rdi
	mov 0x1000(%rdi), %rax
	movabs $PAGE2_MAGIC, %rdx
	cmp %rdx, %rax
	jne fail8
	/* 9: the big VMA: sum of one qword per page */
	movabs $BIG_ADDR, %rsi
	mov 0x1010(%rdi), %ecx
	xor %eax, %eax
1:	add (%rsi), %rax
	add $4096, %rsi
	dec %ecx
	jnz 1b
	cmp 0x1008(%rdi), %rax
	jne fail9
	/* 10: rseq registered: the kernel filled in cpu_id */
	cmpl $-1, RSEQ_OFF+4(%rdi)
	je fail10
	/* 11: pdeathsig */
	sub $16, %rsp
	mov $157, %eax		/* prctl(PR_GET_PDEATHSIG, &sig) */
	mov $2, %edi
	mov %rsp, %rsi
	syscall
	mov (%rsp), %eax
	add $16, %rsp
	cmp $PDEATHSIG, %eax
	jne fail11
	/* message on fd 1 */
	mov $1, %eax
	mov $1, %edi
	lea msg(%rip), %rsi
	mov $msg_end - msg, %edx
	syscall
	/* 5: wait for the second thread's flag */
	movabs $DATA_ADDR, %rdi
	mov $100000, %ecx
2:	cmpl $1, FLAG_OFF(%rdi)
	je 3f
	push %rcx
	push %rdi
	mov $24, %eax		/* sched_yield */
	syscall
	pop %rdi
	pop %rcx
	dec %ecx
	jnz 2b
	mov FLAG_OFF(%rdi), %edi
	add $20, %edi		/* 20: never set, 22: thread saw a bad r13 */
	jmp exit
3:	mov $42, %edi
	jmp exit
fail1:	mov $1, %edi
	jmp exit
fail2:	mov $2, %edi
	jmp exit
fail3:	mov $3, %edi
	jmp exit
fail4:	mov $4, %edi
	jmp exit
fail6:	mov $6, %edi
	jmp exit
fail7:	mov $7, %edi
	jmp exit
fail8:	mov $8, %edi
	jmp exit
fail9:	mov $9, %edi
	jmp exit
fail10:	mov $10, %edi
	jmp exit
fail11:	mov $11, %edi
exit:	mov $231, %eax		/* exit_group */
	syscall
	ud2

rst_code_thread:
	movabs $DATA_ADDR, %rdi
	movabs $WANT_R13, %rax
	mov $1, %edx
	mov $2, %ecx
	cmp %rax, %r13
	cmovne %ecx, %edx
	mov %edx, FLAG_OFF(%rdi)
4:	mov $34, %eax		/* pause */
	syscall
	jmp 4b

	.balign 32
pattern:
	.quad YMM_Q0, YMM_Q1, YMM_Q2, YMM_Q3
msg:
	.ascii "restored process says hello\n"
msg_end:
rst_code_end:

	.section .note.GNU-stack, "", @progbits
