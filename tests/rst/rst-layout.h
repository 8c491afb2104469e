/* Address layout and magic values of rst-synthetic's fake dumped process,
 * shared by the C driver and the machine code (rst-code.S). */
#ifndef RST_LAYOUT_H
#define RST_LAYOUT_H

#define CODE_ADDR 0x300000000
#define DATA_ADDR 0x300010000 /* 2 pages, from pages-PID.img */
#define SHARED_ADDR 0x300020000 /* 1 page, MAP_SHARED file */
#define STACK_ADDR 0x300100000 /* 64 KiB, MAP_GROWSDOWN, main thread */
#define TSTACK_ADDR 0x300200000 /* 64 KiB, second thread */
#define BIG_ADDR 0x300400000
#define BIG_PAGES 4096 /* 16 MiB (1 GiB in bench mode): takes the THP path */
#define SPECIAL_ADDR 0x400000000 /* where [vvar]...[vdso] were "dumped" */

#define FLAG_OFF 16   /* in DATA: set to 1 by the second thread */
#define RSEQ_OFF 0x100 /* in DATA: main thread's struct rseq */

#define WANT_RBX 0x1122334455667788
#define WANT_R12 0x99aabbccddeeff00
#define WANT_R13 0x5a5a5a5a12345678
#define FS_MAGIC 0x0123456789abcdef
#define PAGE2_MAGIC 0x7777666655554444
#define SHARED_WORD 0x4b4f2d4445524148 /* "HARED-OK" */
#define YMM_Q0 0x1111111111111111
#define YMM_Q1 0x2222222222222222
#define YMM_Q2 0x3333333333333333
#define YMM_Q3 0x4444444444444444
#define MAIN_MASK 0x0000000000000a00 /* SIGUSR1 | SIGUSR2 */
#define THREAD_MASK 0x0000000000004a00 /* + SIGTERM */
#define PDEATHSIG 9

#endif
