/*
 * Entry stubs of the parasite blob, first in the blob (section .head.text).
 * The host jumps to these by their parasite_off_* offsets; see
 * include/parasite-abi.h.
 */
	.section .head.text, "ax"
	.globl blob_head
blob_head:

/* rsp = daemon stack top.  Serve commands; when the daemon returns (EOF,
 * error), cure the thread. */
	.globl parasite_export_daemon
parasite_export_daemon:
	andq	$-16, %rsp
	call	parasite_daemon
	jmp	parasite_export_self_cure

/* Injected syscalls: rax and the arguments are set by the host, which
 * stops the thread at syscall exit.  A thread that gets here with nobody
 * tracing it (the host died) falls through into the self-cure. */
	.globl parasite_export_syscall
parasite_export_syscall:
	syscall

	.globl parasite_export_self_cure
parasite_export_self_cure:
	andq	$-16, %rsp
	call	parasite_self_cure
	ud2
