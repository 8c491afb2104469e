/*
 * pagemap-scan: PAGEMAP_SCAN (Linux 6.7), the ioctl of /proc/PID/pagemap,
 * which our headers may lack.  The kernel walks the page tables and
 * returns ranges of pages by category, skipping holes; reading pagemap
 * entry by entry costs 8 bytes per page of address space, which is
 * hopeless for huge sparse mappings (sanitizer shadows, big
 * reservations).  Used by mem.c (which pages to store, guard pages) and
 * track.c (pages written since the last dump).
 */
#ifndef CKPT_PAGEMAP_SCAN_H
#define CKPT_PAGEMAP_SCAN_H

#include <stdint.h>
#include <sys/ioctl.h>

#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct pm_scan_arg)
/* flags */
#define PM_SCAN_WP_MATCHING (1 << 0)   /* write-protect the pages found */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* EPERM unless all WP_ASYNC-registered */
/* categories */
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1) /* uffd-wp protection cleared by a write */
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_GUARD (1 << 8) /* Linux 6.14 */

struct page_region {
	uint64_t start, end, categories;
};

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#endif
