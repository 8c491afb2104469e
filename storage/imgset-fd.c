/*
 * imgset-fd: two small accessors of an image set used by restore: moving
 * the directory fd out of the way of the fds being restored, and the
 * set's size for statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "internal.h"

int img_set_move_fd(struct img_set *set, int min_fd)
{
	if (set->dirfd >= min_fd)
		return set->dirfd;
	int fd = fcntl(set->dirfd, F_DUPFD_CLOEXEC, min_fd);
	if (fd < 0)
		return -errno;
	close(set->dirfd);
	set->dirfd = fd;
	return fd;
}

uint64_t img_set_bytes(const struct img_set *set)
{
	uint64_t total = 0;
	for (size_t i = 0; i < set->nr_files; i++)
		if (set->files[i].done)
			total += set->files[i].size;
	return total;
}
