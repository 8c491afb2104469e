/*
 * file-change: how a file found at restore differs from the one dumped,
 * in words ("mtime 2026-12-06 03:20:11.123456789, was ...; size 8, was
 * 4"), for the "changed since the dump" refusals of regfile.c (open
 * files) and restore-mem.c (mapped files).  Only what differs is named.
 */
#ifndef CKPT_FILE_CHANGE_H
#define CKPT_FILE_CHANGE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

static inline void file_change_time(char *buf, size_t len, int64_t ns)
{
	time_t s = (time_t)(ns / 1000000000);
	struct tm tm;
	char day[32] = "?";

	if (gmtime_r(&s, &tm))
		strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09lld UTC", day, (long long)(ns % 1000000000));
}

/* Into buf: what of (size, mtime) differs between st and the dump. */
static inline void file_change(char *buf, size_t len, const struct stat *st, int has_size,
			       uint64_t size, int has_mtime, int64_t mtime_ns)
{
	int64_t now = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	char a[64], b[64];
	size_t n = 0;

	buf[0] = 0;
	if (has_size && (uint64_t)st->st_size != size)
		n += (size_t)snprintf(buf, len, "size %lld, was %llu", (long long)st->st_size,
				      (unsigned long long)size);
	if (has_mtime && now != mtime_ns && n < len) {
		file_change_time(a, sizeof(a), now);
		file_change_time(b, sizeof(b), mtime_ns);
		snprintf(buf + n, len - n, "%smtime %s, was %s", n ? "; " : "", a, b);
	}
}

#endif
