/*
 * The tiny syscall layer of the blobs (parasite/, restorer/): raw x86-64
 * syscalls through inline asm, and the few libc-like helpers a freestanding
 * blob needs.  Nothing here may touch libc, TLS or SSE registers.
 */
#ifndef CKPT_SYS_H
#define CKPT_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <asm/unistd.h>

static inline long sys_call6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 asm("r10") = a4;
	register long r8 asm("r8") = a5;
	register long r9 asm("r9") = a6;
	asm volatile("syscall"
		     : "=a"(ret)
		     : "0"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
		     : "rcx", "r11", "memory");
	return ret;
}

#define sys_call0(nr) sys_call6(nr, 0, 0, 0, 0, 0, 0)
#define sys_call1(nr, a) sys_call6(nr, (long)(a), 0, 0, 0, 0, 0)
#define sys_call2(nr, a, b) sys_call6(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys_call3(nr, a, b, c) sys_call6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys_call4(nr, a, b, c, d) sys_call6(nr, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys_call5(nr, a, b, c, d, e) sys_call6(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static inline long sys_read(int fd, void *buf, size_t n) { return sys_call3(__NR_read, fd, buf, n); }
static inline long sys_write(int fd, const void *buf, size_t n) { return sys_call3(__NR_write, fd, buf, n); }
static inline long sys_close(int fd) { return sys_call1(__NR_close, fd); }
static inline long sys_getpid(void) { return sys_call0(__NR_getpid); }
static inline long sys_gettid(void) { return sys_call0(__NR_gettid); }
static inline long sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return sys_call6(__NR_mmap, (long)addr, (long)len, prot, flags, fd, off);
}
static inline long sys_munmap(void *addr, size_t len) { return sys_call2(__NR_munmap, addr, len); }
static inline long sys_mprotect(void *addr, size_t len, int prot) { return sys_call3(__NR_mprotect, addr, len, prot); }
static inline long sys_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	return sys_call5(__NR_mremap, old, old_len, new_len, flags, new_addr);
}
static inline long sys_prctl(int opt, long a2, long a3, long a4, long a5) { return sys_call5(__NR_prctl, opt, a2, a3, a4, a5); }
static inline long sys_arch_prctl(int code, unsigned long addr) { return sys_call2(__NR_arch_prctl, code, addr); }
static inline long sys_exit_group(int code) { return sys_call1(__NR_exit_group, code); }
static inline long sys_exit(int code) { return sys_call1(__NR_exit, code); }

static inline void *blob_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

static inline void *blob_memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

#endif
