/*
 * bad_restore_deleted_file: the program holds held-file open; cr-run
 * deletes the file after the dump, so the restore must fail, naming it.
 * Without the deletion (selfcheck) the fd and its data are checked.
 */
#include "crlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char path[PATH_MAX], buf[6] = { 0 };
	int fd;

	test_init();
	snprintf(path, sizeof(path), "%s/held-file", test_dir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0 && write_full(fd, "hello", 5) == 5, "creating %s", path);
	test_ready();
	test_wait_check();
	CHECK_SYS(pread(fd, buf, 5, 0) == 5, "pread");
	CHECK(!strcmp(buf, "hello"), "held-file holds \"%s\"", buf);
	CHECK(lseek(fd, 0, SEEK_CUR) == 5, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
	pass();
}
