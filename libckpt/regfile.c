/*
 * regfile: files reopened by path on restore: regular files, directories
 * the memory character devices (/dev/null, zero, full, random,
 * urandom) and the machine's consoles and virtual terminals, no
 * terminal of a session led from outside the tree (tty-system.c), each checked
 * to be the same device again.  The size and mtime are kept so that a restore can tell a file
 * that changed since the dump (refused unless --skip-file-check).  The
 * job's output (is_output) may have grown: it is cut back to its size at
 * the dump, so that a job restored from an older set does not write the
 * same lines twice; or have been cut (a requeue under Slurm), and maybe
 * written again by others: shorter, or not starting with what it held,
 * it is put back from the copy kept with the set (output-copy.c).  Both
 * happen once every description is open, none refused.
 * Unlinked files are the ghost kind's (memfd.c).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "file-change.h"
#include "file-kinds.h"
#include "ghost.h"
#include "log.h"
#include "output-copy.h"
#include "proc.h"
#include "tty.h"

int regfile_is_memory_device(dev_t rdev)
{
	/* Reopening these by path gives the same thing; terminals and
	 * other devices need more. */
	if (major(rdev) != 1)
		return 0;
	unsigned m = minor(rdev);
	return m == 3 || m == 5 || m == 7 || m == 8 || m == 9;
}

/* A symbolic link itself can only be held open with O_PATH | O_NOFOLLOW
 * (zdtm symlink): reopened the same way, it is the link again. */
static int regfile_match(const struct fd_dump *f)
{
	return f->link[0] == '/' && (S_ISREG(f->st->st_mode) || S_ISDIR(f->st->st_mode) ||
				     S_ISCHR(f->st->st_mode) || S_ISLNK(f->st->st_mode));
}

/* The job's output: a regular file it appends to and owns (its euid's),
 * as the job's stdout and stderr under Slurm.  Another user's file (a
 * shared log) is not. */
static int is_output(const struct fd_dump *f, uint32_t flags)
{
	char uids[64];
	unsigned ruid, euid;
	if (!S_ISREG(f->st->st_mode) || !(flags & O_APPEND) || (flags & O_ACCMODE) == O_RDONLY)
		return 0;
	if (proc_status_field(f->pid, "Uid", uids, sizeof(uids)) ||
	    sscanf(uids, "%u %u", &ruid, &euid) != 2)
		return 0;
	return f->st->st_uid == euid;
}

/* Whether the path /proc shows was removed, the file living on under
 * another link (nlink > 0: unlinked ones are the ghost kinds'): a copy would
 * be another file than the one the other names reach (zdtm unlink_fstat03).
 * The other name is looked for in the directory the removed one was in;
 * the restore links it at the removed name, opens it there and removes
 * that name again (CRIU instead links the file anew at the dump,
 * --link-remap, which changes the file system being dumped).  A name may
 * really end in " (deleted)": stat tells, not the suffix. */
static int removed_name(const struct fd_dump *f)
{
	struct stat st;
	size_t n = strlen(f->link), d = strlen(" (deleted)");
	if (n <= d || strcmp(f->link + n - d, " (deleted)"))
		return 0;
	if (!lstat(f->link, &st) && st.st_dev == f->st->st_dev && st.st_ino == f->st->st_ino)
		return 0;
	return 1;
}

/* Another name of the file in the directory its removed name was in (the
 * usual rename-by-link of editors and loggers): into other, or 0. */
static int find_other_link(const struct fd_dump *f, const char *name, char *other, size_t len)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", name);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*(slash == dir ? slash + 1 : slash) = '\0';
	DIR *dp = opendir(dir);
	struct dirent *de;
	int found = 0;
	while (dp && !found && (de = readdir(dp))) {
		struct stat st;
		found = !fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
			S_ISREG(st.st_mode) && st.st_dev == f->st->st_dev &&
			st.st_ino == f->st->st_ino;
		if (found && (size_t)snprintf(other, len, "%s%s%s", dir, slash == dir ? "" : "/",
					      de->d_name) >= len)
			found = 0;
	}
	if (dp)
		closedir(dp);
	return found;
}

/* A removed name of a file with another link: that link, or refused. */
static int dump_other_link(struct fd_dump *f, FileEntry *e)
{
	char name[PATH_MAX], other[PATH_MAX];
	size_t n = strlen(f->link) - strlen(" (deleted)");
	snprintf(name, sizeof(name), "%.*s", (int)n, f->link);
	if (!S_ISREG(f->st->st_mode) || !find_other_link(f, name, other, sizeof(other))) {
		pr_err("pid %d: fd %d: %s: its name was removed, and the file has %lu other link%s, "
		       "none in its directory: not supported",
		       f->pid, f->fd, f->link, (unsigned long)f->st->st_nlink,
		       f->st->st_nlink == 1 ? "" : "s");
		return -ENOTSUP;
	}
	e->path = arena_strdup(&f->fdump->a, name);
	e->other_link = arena_strdup(&f->fdump->a, other);
	return e->path && e->other_link ? 0 : -ENOMEM;
}

static int regfile_dump(struct fd_dump *f, FileEntry *e)
{
	const struct stat *st = f->st;
	if (S_ISCHR(st->st_mode) && !regfile_is_memory_device(st->st_rdev) &&
	    !tty_is_system_terminal(f)) {
		pr_err("pid %d: fd %d: %s: character device %u:%u is not supported", f->pid, f->fd,
		       f->link, major(st->st_rdev), minor(st->st_rdev));
		return -ENOTSUP;
	}
	int removed = removed_name(f), ret;
	if (S_ISCHR(st->st_mode) && !regfile_is_memory_device(st->st_rdev) &&
	    (ret = tty_system_dump(f, e)))
		return ret;
	e->type = FILE_TYPE__FILE_REG;
	e->path = arena_strdup(&f->fdump->a, f->link);
	if (removed && (ret = dump_other_link(f, e)))
		return ret;
	e->has_rdev = S_ISCHR(st->st_mode);
	e->rdev = e->has_rdev ? (uint64_t)st->st_rdev : 0;
	e->has_size = e->has_mtime_ns = 1;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	e->has_output = 1;
	e->output = is_output(f, e->flags);
	if (!e->path)
		return -ENOMEM;
	return e->output ? output_copy_dump(f, e) : 0;
}

static long long mtime_ns(const struct stat *st)
{
	return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int is_job_output(const FileEntry *e)
{
	return e->type == FILE_TYPE__FILE_REG && e->has_output && e->output && e->has_size;
}

static int output_kept(const FileEntry *e)
{
	return e->has_output_kept && e->output_kept;
}

/* The job's output is shorter than at the dump (a requeue truncated it):
 * put back later from its copy, or, where none was kept, refused. */
static int shorter_output(const FileEntry *e, const struct stat *st)
{
	if (output_kept(e))
		return 0;
	pr_err("file %s: the job's output is %llu bytes, %llu at the dump, and no copy of it was "
	       "kept (over --output-copy-limit): under Slurm, sbatch --open-mode=append keeps "
	       "it at a requeue (--skip-file-check restores it as it is)",
	       e->path, (unsigned long long)st->st_size, (unsigned long long)e->size);
	return -ESTALE;
}

/* Is the file at the path still the one dumped?  A regular file must keep
 * its size and mtime; one only appended to (an O_APPEND writer, say the
 * job's log) may have grown.  Directories change with their entries and
 * are not checked, but the type must be the same. */
static int check_file(int fd, const FileEntry *e, int skip)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (e->has_mode && (st.st_mode & S_IFMT) != (e->mode & S_IFMT)) {
		pr_err("file %s: is no longer a %s", e->path,
		       S_ISDIR(e->mode) ? "directory" : S_ISREG(e->mode) ? "regular file" : S_ISLNK(e->mode) ? "symbolic link" : "device");
		return -ESTALE;
	}
	if (e->has_rdev && (!S_ISCHR(st.st_mode) || st.st_rdev != (dev_t)e->rdev)) {
		pr_err("file %s: is device %u:%u now, %u:%u at the dump", e->path,
		       major(st.st_rdev), minor(st.st_rdev), major((dev_t)e->rdev),
		       minor((dev_t)e->rdev));
		return -ESTALE;
	}
	if (skip || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) || !e->has_size ||
	    !e->has_mtime_ns)
		return 0;
	int grew = (e->flags & O_APPEND) && (e->flags & O_ACCMODE) != O_RDONLY &&
		   (uint64_t)st.st_size >= e->size;
	if (grew || ((uint64_t)st.st_size == e->size && mtime_ns(&st) == e->mtime_ns))
		return 0;
	if (is_job_output(e) && (uint64_t)st.st_size < e->size)
		return shorter_output(e, &st);
	char what[200];
	file_change(what, sizeof(what), &st, 1, e->size, 1, e->mtime_ns);
	pr_err("file %s: changed since the dump: %s (--skip-file-check restores it anyway)",
	       e->path, what);
	return -ESTALE;
}

/* Output the job wrote after the dump would come again from the restored
 * job: cut back to its size at the dump (--keep-later-output keeps it).
 * check_file let it through only if it grew. */
static int cut_back(int fd, const FileEntry *e, uint64_t now)
{
	if (ftruncate(fd, (off_t)e->size)) {
		int err = errno;
		pr_err("file %s: cannot cut it back to its size at the dump (%llu bytes, %llu now): "
		       "%s (--keep-later-output keeps what was written since)",
		       e->path, (unsigned long long)e->size, (unsigned long long)now,
		       strerror(err));
		return -err;
	}
	pr_info("file %s: cut back to its size at the dump, %llu bytes (%llu written since)",
		e->path, (unsigned long long)e->size, (unsigned long long)(now - e->size));
	return 0;
}

/* The job's output at fd (a pool fd: every description is open, none
 * was refused) back to what it was at the dump: where a copy was kept
 * and the file is shorter or does not start with it, written again from
 * it (whatever --keep-later-output says: what follows is not what the job
 * wrote after the dump, but what others wrote once it was cut); else cut
 * back where it grew. */
static int fix_output(struct img_set *set, const struct restore_files *rf, int fd,
		      const FileEntry *e)
{
	struct stat st;
	int keep_later = rf->opts && rf->opts->keep_later_output, ret = 0;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return 0;
	uint64_t now = (uint64_t)st.st_size;
	if (output_kept(e))
		ret = output_copy_restore(set, fd, e, now);
	if (!ret && now > e->size && !keep_later)
		return cut_back(fd, e, now);
	if (ret > 0 && e->has_pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0) {
		ret = -errno;
		pr_err("file %s: cannot seek to %llu: %s", e->path, (unsigned long long)e->pos,
		       strerror(-ret));
	}
	return ret < 0 ? ret : 0;
}

struct regfile_restore {
	struct img_set *set; /* where the copies of the job's output are */
};

/* Before anything is created: every copy of the job's output is sound. */
static int regfile_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	for (size_t i = 0; i < rf->nr_files; i++) {
		int ret = output_copy_check(set, rf->files[i]);
		if (!ret)
			ret = tty_system_valid(rf, rf->files[i]);
		if (ret)
			return ret;
	}
	struct regfile_restore *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->set = set;
	*priv = r;
	return 0;
}

static int regfile_pool_ready(struct restore_files *rf, void *priv)
{
	const struct regfile_restore *r = priv;
	int ret = 0;
	for (size_t i = 0; !ret && i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (is_job_output(e) && rf->pool[i] >= 0 && !files_inherited(rf, e))
			ret = fix_output(r->set, rf, rf->pool[i], e);
	}
	return ret;
}

/* A system terminal that controls a session of the tree (tty-system.c). */
static int regfile_dump_tree(struct files_dump *fdump, void **priv)
{
	(void)priv;
	return tty_system_dump_tree(fdump);
}

static int regfile_post_install(struct restore_files *rf, void *priv, size_t idx)
{
	(void)priv;
	return tty_system_post_install(rf, idx);
}

static void regfile_free(void *priv)
{
	free(priv);
}

/* The file through its other name, linked at its removed name for the
 * open (as whoever restores: the kernel decides), then removed again: the
 * fd is the same file, at its removed name, " (deleted)". */
static int open_removed_name(const FileEntry *e, int flags)
{
	if (e->path[0] != '/' || e->other_link[0] != '/' || strstr(e->path, "/../") ||
	    strstr(e->other_link, "/../")) {
		errno = EINVAL;
		return -1;
	}
	if (link(e->other_link, e->path) < 0) {
		if (errno == EEXIST)
			pr_err("file %s: its removed name is taken again: not restored", e->path);
		return -1;
	}
	int fd = open(e->path, flags | O_NOFOLLOW);
	int err = errno;
	if (unlink(e->path) < 0 && fd >= 0) {
		err = errno;
		close(fd);
		fd = -1;
	}
	errno = err;
	return fd;
}

static int regfile_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)priv;
	int flags = (int)e->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	/* A file made with O_TMPFILE, then linked: its O_DIRECTORY is not one */
	if (S_ISREG(e->mode) && (flags & O_TMPFILE) == O_TMPFILE)
		flags &= ~O_TMPFILE;
	if (!e->path)
		return -EINVAL;
	if (S_ISLNK(e->mode))
		flags |= O_PATH | O_NOFOLLOW;
	/* never the opener's controlling terminal: a console reopened */
	int fd = e->other_link ? open_removed_name(e, flags | O_CLOEXEC)
			       : open(e->path, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		pr_err("file %s: cannot reopen: %s", e->path, strerror(errno));
		return -errno;
	}
	int ret = check_file(fd, e, rf->opts && rf->opts->skip_file_check);
	if (ret) {
		close(fd);
		return ret;
	}
	if (!(flags & O_PATH) && e->has_pos && lseek(fd, (off_t)e->pos, SEEK_SET) < 0 &&
	    errno != ESPIPE && S_ISREG(e->mode)) {
		int err = errno;
		pr_err("file %s: cannot seek to %llu: %s", e->path, (unsigned long long)e->pos,
		       strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

const struct file_kind regfile_kind = {
	.name = "file",
	.types = 1ULL << FILE_TYPE__FILE_REG,
	.match = regfile_match,
	.dump = regfile_dump,
	.dump_tree = regfile_dump_tree,
	.check_tree = regfile_dump_tree, /* checks only, nothing written */
	.read = regfile_read,
	.post_install = regfile_post_install,
	.open = regfile_open,
	.pool_ready = regfile_pool_ready,
	.free = regfile_free,
	.alone_ok = 1,
};
