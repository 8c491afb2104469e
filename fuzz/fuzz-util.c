/* Helpers of the fuzz targets (see fuzz-util.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "storage.h"

static char dir[64];

/* At exit (libFuzzer exits normally at the end of a run): no litter. */
static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

const char *fuzz_dir(void)
{
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/dev/shm/ckpt-fuzz-%d", getpid());
		if (mkdir(dir, 0700) && access(dir, W_OK))
			abort();
		atexit(remove_dir);
	}
	return dir;
}

void fuzz_write(const char *name, const uint8_t *data, size_t len)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
		abort();
	close(fd);
}

/* Format 2 entries: u32 length, u32 crc32c of the payload, payload. */
static void fix_entries(uint8_t *d, size_t len)
{
	size_t pos = IMG_HEADER_LEN, end = len - 12;
	uint32_t n, crc;

	while (end - pos >= 8) {
		memcpy(&n, d + pos, 4); /* x86-64: little endian, as stored */
		if (n > end - pos - 8)
			break;
		crc = crc32c(0, d + pos + 8, n);
		memcpy(d + pos + 4, &crc, 4);
		pos += 8 + n;
	}
}

uint8_t *fuzz_fix_crcs(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len + 1);
	uint32_t crc;

	if (!copy)
		abort();
	memcpy(copy, data, len);
	if (len >= IMG_HEADER_LEN + 12) {
		fix_entries(copy, len);
		crc = crc32c(0, copy, len - 4);
		memcpy(copy + len - 4, &crc, 4);
	}
	return copy;
}

void fuzz_quiet(void)
{
	/* Only the stdio stream: libFuzzer keeps its own FILE for its output,
	 * and the sanitizers write(2) to fd 2, which stays as it is. */
	FILE *null = fopen("/dev/null", "w");

	if (null && !getenv("FUZZ_VERBOSE"))
		stderr = null;
}
