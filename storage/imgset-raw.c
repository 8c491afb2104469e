/*
 * imgset-raw: open a directory of image files for reading without a
 * manifest, for tools (ckptctl image show/decode, the fuzzers) that look
 * at one file or at a set that is incomplete or damaged.
 *
 * Every regular file in the directory becomes a member of the set with
 * the size it has now (no crc: nothing to check it against), so that the
 * usual readers (img_open, img_read_all, page_reader_load) work on it and
 * still check each file's own header, trailer, crc and entries.  Restore
 * never uses this: it opens sets with img_set_open().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "manifest.pb-c.h"

static int add_dir_files(struct img_set *set)
{
	int fd = dup(set->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int ret = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!ret && (de = readdir(d))) {
		struct stat st;

		if (!set_valid_name(de->d_name) ||
		    fstatat(set->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		ret = set_track(set, de->d_name);
		if (!ret)
			set_track_done(set, de->d_name, st.st_size, 0);
	}
	closedir(d);
	return ret;
}

/* What the manifest says about the set, when there is a readable one:
 * the root pid, the owner and the parent of an incremental set (so that
 * the page reader can follow in_parent chunks).  A bad manifest is
 * reported and otherwise ignored here: verify reports it again. */
static void raw_manifest(struct img_set *set)
{
	ProtobufCMessage *msg = NULL;
	ManifestEntry *me;

	if (!set_find(set, MANIFEST_NAME) ||
	    img_read_one_file(set, IMG_MANIFEST, MANIFEST_NAME, 0, &manifest_entry__descriptor,
			      &msg))
		return;
	me = (ManifestEntry *)msg;
	set->root_pid = me->root_pid;
	set->owner_uid = me->owner_uid;
	set->created_ns = me->created_ns;
	if (me->parent)
		set->parent_path = strdup(me->parent);
	protobuf_c_message_free_unpacked(msg, NULL);
}

int img_set_open_raw(const char *dir, struct img_set **out)
{
	struct img_set *set = calloc(1, sizeof(*set));
	int ret;

	if (!set)
		return -ENOMEM;
	pthread_mutex_init(&set->lock, NULL);
	set->dirfd = -1;
	set->owner_uid = -1;
	set->dir = strdup(dir);
	if (!set->dir) {
		img_set_close(set);
		return -ENOMEM;
	}
	set->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = set->dirfd < 0 ? -errno : add_dir_files(set);
	if (ret) {
		st_err("%s: %s", dir, strerror(-ret));
		img_set_close(set);
		return ret;
	}
	raw_manifest(set);
	*out = set;
	return 0;
}

size_t img_set_nr_files(const struct img_set *set)
{
	return set->nr_files;
}

const char *img_set_file(const struct img_set *set, size_t i, uint64_t *size, uint32_t *crc)
{
	if (i >= set->nr_files)
		return NULL;
	if (size)
		*size = set->files[i].size;
	if (crc)
		*crc = set->files[i].crc;
	return set->files[i].name;
}
