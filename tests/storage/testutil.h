/*
 * Small helpers for the storage tests: checks that stop the test with the
 * line number, a scratch directory, stderr capture (to check that an error
 * names the right file) and in-place file damage.
 */
#ifndef CKPT_TEST_UTIL_H
#define CKPT_TEST_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

static inline char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/ckpt-storage-test.XXXXXX");

	CHECK(dir && mkdtemp(dir));
	return dir;
}

static inline void remove_tree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

/* stderr goes to a file between capture_begin() and capture_end(), which
 * returns what was written (static buffer) and echoes it. */
static int saved_stderr = -1;
static FILE *capture_file;

static inline void capture_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	CHECK(capture_file);
	saved_stderr = dup(2);
	CHECK(dup2(fileno(capture_file), 2) == 2);
}

static inline const char *capture_end(void)
{
	static char text[8192];
	size_t n;

	fflush(stderr);
	CHECK(dup2(saved_stderr, 2) == 2);
	close(saved_stderr);
	rewind(capture_file);
	n = fread(text, 1, sizeof(text) - 1, capture_file);
	text[n] = '\0';
	fclose(capture_file);
	fputs(text, stderr);
	return text;
}

static inline off_t file_size(const char *path)
{
	struct stat st;

	CHECK(stat(path, &st) == 0);
	return st.st_size;
}

static inline void flip_bit(const char *path, off_t off, int bit)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	CHECK(fd >= 0);
	CHECK(pread(fd, &c, 1, off) == 1);
	c ^= 1u << bit;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
}

#endif
