/*
 * img_set_copy: a committed set into another directory being written,
 * the way the storage tiers flush a set from node-local storage to the
 * shared file system.  Every file the manifest lists is copied (with
 * copy_file_range: in the kernel, no trip through user memory), fsynced
 * and checked against the manifest's size; the manifest comes last, via
 * a tmp file, fsync and rename, so the copy is committed only once whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int copy_fd(int in, int out, uint64_t size)
{
	uint64_t done = 0;
	char buf[65536];

	while (done < size) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, size - done, 0);
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
			      errno == ENOSYS)) {
			n = read(in, buf, sizeof(buf));
			if (n > 0 && write_full(out, buf, (size_t)n))
				return -errno;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the source shrank */
		done += (uint64_t)n;
	}
	return fsync(out) ? -errno : 0;
}

int set_copy_file(struct img_set *from, struct img_set *to, const char *name, uint64_t size,
		  const char *to_name)
{
	int in = openat(from->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1, ret;

	if (in < 0) {
		ret = -errno;
		st_err("%s/%s: open: %s", from->dir, name, strerror(-ret));
		return ret;
	}
	out = set_create_fd(to, to_name);
	if (out < 0) {
		ret = out;
		st_err("%s/%s: create: %s", to->dir, to_name, strerror(-ret));
		close(in);
		return ret;
	}
	ret = copy_fd(in, out, size);
	if (ret)
		st_err("%s/%s: copy: %s", to->dir, to_name, strerror(-ret));
	close(in);
	close(out);
	return ret;
}

static int copy_manifest(struct img_set *from, struct img_set *to)
{
	struct stat st;
	int ret;

	if (fstatat(from->dirfd, MANIFEST_NAME, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	ret = set_copy_file(from, to, MANIFEST_NAME, (uint64_t)st.st_size, MANIFEST_TMP);
	if (!ret && to->owner_uid >= 0 &&
	    fchownat(to->dirfd, MANIFEST_TMP, (uid_t)to->owner_uid, -1, AT_SYMLINK_NOFOLLOW))
		ret = -errno;
	if (!ret && (renameat(to->dirfd, MANIFEST_TMP, to->dirfd, MANIFEST_NAME) || fsync(to->dirfd)))
		ret = -errno;
	if (ret)
		st_err("%s: committing the manifest: %s", to->dir, strerror(-ret));
	return ret;
}

int img_set_copy(struct img_set *from, struct img_set *to)
{
	int ret = 0;

	if (from->writing || !to->writing)
		return -EINVAL;
	for (size_t i = 0; !ret && i < from->nr_files; i++) {
		const struct set_file *f = &from->files[i];
		ret = set_track(to, f->name);
		if (!ret)
			ret = set_copy_file(from, to, f->name, f->size, f->name);
		if (!ret)
			set_track_done(to, f->name, f->size, f->crc);
		if (!ret && to->owner_uid >= 0 &&
		    fchownat(to->dirfd, f->name, (uid_t)to->owner_uid, -1, AT_SYMLINK_NOFOLLOW))
			ret = -errno;
	}
	return ret ? ret : copy_manifest(from, to);
}
