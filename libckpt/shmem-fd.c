/*
 * shmem-fd: shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) opened as a
 * file through /proc/PID/map_files, FILE_SHMEM.  The fd reaches the same
 * shmem object ("/dev/zero (deleted)", nlink 0) as the VMAs that map it,
 * which mem.c dumps as VMA_ANON_SHARED with shmid = its inode; mappings
 * made through the fd show the same name (shared: VMA_ANON_SHARED too;
 * private: a file mapping of the task's fd).
 *
 * Dump: the entry names the object by inode (file_entry.shmem_id);
 * dump_tree stores each object an fd reaches that no VMA of the tree
 * stored, through a description of our own (the object may be mapped
 * nowhere any more, its contents only in the file).
 *
 * Restore: shmem.c makes the object again, once, before the VMAs' objects
 * (restore_shm_anon_file: the file pool is opened first) and keeps an fd
 * on it; each description is a fresh open of that fd, with the dumped
 * flags and offset, and the VMAs of the object are mapped from it, so
 * that the fd and the mappings share it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "shmem.h"

#define SHMEM_ANON_LINK "/dev/zero (deleted)"

static int shmem_fd_match(const struct fd_dump *f)
{
	return S_ISREG(f->st->st_mode) && f->st->st_nlink == 0 && !strcmp(f->link, SHMEM_ANON_LINK);
}

static int shmem_fd_dump(struct fd_dump *f, FileEntry *e)
{
	if (e->flags & O_PATH) {
		pr_err("pid %d: fd %d: O_PATH fd on shared anonymous memory: not supported", f->pid,
		       f->fd);
		return -ENOTSUP;
	}
	e->type = FILE_TYPE__FILE_SHMEM;
	e->has_shmem_id = 1;
	e->shmem_id = (uint64_t)f->st->st_ino;
	return 0;
}

/* A read-only description of our own on the task's fd: SEEK_DATA and
 * SEEK_HOLE move the offset of the one they are given. */
static int own_description(pid_t pid, int fd)
{
	char path[64];
	int dup = files_getfd(pid, fd);
	if (dup < 0)
		return dup;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dup);
	int own = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (own < 0 && errno == EPERM)
		own = open(path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	close(dup);
	return own < 0 ? -err : own;
}

static int dump_object(struct files_dump *fdump, const struct file_desc *d)
{
	ShmObjectEntry obj = SHM_OBJECT_ENTRY__INIT;
	struct mem_stats ms = { 0 };
	char name[64];

	obj.kind = SHM_KIND__SHM_ANON;
	obj.id = d->entry->shmem_id;
	shm_object_name(name, sizeof(name), "", &obj);
	if (img_exists(fdump->set, name))
		return 0; /* a VMA or an earlier fd of the tree stored it */
	int fd = own_description(d->pid, d->fd);
	if (fd < 0) {
		pr_err("pid %d: fd %d: shared anonymous memory %" PRIu64 ": cannot read it: %s",
		       d->pid, d->fd, obj.id, strerror(-fd));
		return fd;
	}
	int ret = dump_shm_object(fdump->set, d->pid, &obj, fd, &ms);
	close(fd);
	return ret;
}

static int shmem_fd_dump_tree(struct files_dump *fdump, void **priv)
{
	(void)priv;
	int ret = 0;
	for (size_t i = 0; !ret && i < fdump->nr; i++)
		if (fdump->descs[i].entry->type == FILE_TYPE__FILE_SHMEM)
			ret = dump_object(fdump, &fdump->descs[i]);
	return ret;
}

/* ---- restore ---- */

static int shmem_fd_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)rf;
	*priv = set; /* the objects' images are read when the pool opens */
	return 0;
}

static int shmem_fd_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	char path[64];
	if (!e->has_shmem_id) {
		pr_err("file %u: shared anonymous memory without its object", e->id);
		return -EINVAL;
	}
	int keeper = restore_shm_anon_file(priv, e->shmem_id);
	if (keeper < 0)
		return keeper;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", keeper);
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_NOFOLLOW |
				      O_TMPFILE | O_DIRECTORY | O_PATH);
	int fd = open(path, flags | O_CLOEXEC), ret = 0;
	if (fd < 0)
		ret = -errno;
	if (!ret && e->has_pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0)
		ret = -errno;
	if (ret) {
		pr_err("file %u: shared anonymous memory %" PRIu64 ": cannot open it again: %s",
		       e->id, e->shmem_id, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

const struct file_kind shmem_fd_kind = {
	.name = "shmem-fd",
	.types = 1ULL << FILE_TYPE__FILE_SHMEM,
	.match = shmem_fd_match,
	.dump = shmem_fd_dump,
	.dump_tree = shmem_fd_dump_tree,
	.read = shmem_fd_read,
	.open = shmem_fd_open,
	.alone_ok = 1,
};
