/*
 * Entry stubs of the restorer blob (see include/restorer-abi.h).  They sit
 * first in the blob, in .head.text, so that the host finds them at the
 * offsets exported as restorer_off_main / restorer_off_syscall.
 *
 *   restorer_export_main     rdi = struct rst_args *, rsp = args->main_stack
 *   restorer_export_syscall  a lone `syscall`: the driver points a stopped
 *                            thread here to inject rt_sigreturn and munmap
 *
 * rst_clone_thread is the raw clone3 a thread needs: the child wakes up on
 * its own stack, where no C frame of the parent exists, so it must not
 * return through C code; it calls fn(arg) and never comes back.
 */
	.section .head.text, "ax"
	.globl blob_head
blob_head:
	.globl restorer_export_main
restorer_export_main:
	xor %ebp, %ebp
	call restorer_main
	ud2

	.globl restorer_export_syscall
restorer_export_syscall:
	syscall
	ud2

	.text
/* long rst_clone_thread(struct clone_args *ca, size_t size,
 *                       void (*fn)(void *), void *arg) */
	.globl rst_clone_thread
	.hidden rst_clone_thread
	.type rst_clone_thread, @function
rst_clone_thread:
	mov %rdx, %r8		/* syscall preserves r8/r9: the child has them too */
	mov %rcx, %r9
	mov $435, %eax		/* __NR_clone3 */
	syscall
	test %rax, %rax
	jnz 1f
	/* Child: rsp = the new stack's top (16-byte aligned). */
	xor %ebp, %ebp
	mov %r9, %rdi
	call *%r8
	ud2
1:
	ret
	.size rst_clone_thread, . - rst_clone_thread

	.section .note.GNU-stack, "", @progbits
