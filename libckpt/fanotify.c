/*
 * fanotify: a fanotify instance (fanotify_init's flags and event_f_flags)
 * and its marks, all read from fdinfo.  An inode mark gives a file handle:
 * the dump turns it into a path as inotify.c does; a mount mark gives a
 * mount id: the dump takes that mount's mount point from mountinfo and
 * checks that the path reaches that very mount.  Restore calls
 * fanotify_init and fanotify_mark again, marks in the reverse of fdinfo's
 * order (the kernel lists the newest first), then reads its own fdinfo
 * back: each mark's flags and masks must be what was dumped.
 *
 * Refused at dump, by name: events queued and not read (they cannot be
 * read without taking them away, nor queued again), the permission
 * classes (an event read and not answered holds a process of someone
 * else), filesystem and mount-namespace marks.  fanotify_init and mount
 * marks need CAP_SYS_ADMIN: a user's restore calls them as the user, so
 * the kernel alone decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fanotify.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

#define MAX_HANDLE 128
#define MARK_FLAGS (FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)
#define INIT_FLAGS                                                                           \
	(FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS |            \
	 FAN_ENABLE_AUDIT | FAN_REPORT_PIDFD | FAN_REPORT_TID | FAN_REPORT_FID |             \
	 FAN_REPORT_DIR_FID | FAN_REPORT_NAME | FAN_REPORT_TARGET_FID)
/* The kernel adds its own O_LARGEFILE (0100000 on x86-64, where glibc's
 * is 0) to event_f_flags on 64-bit. */
#define KERNEL_O_LARGEFILE 0100000
#define EVENT_FLAGS                                                                          \
	(O_ACCMODE | KERNEL_O_LARGEFILE | O_CLOEXEC | O_APPEND | O_DSYNC | O_NOATIME | O_NONBLOCK | \
	 O_SYNC)

struct fanotify_scan {
	const struct fd_dump *f;
	FanotifyEntry *fa;
	size_t cap;
	int seen_flags;
};

static int add_mark(struct fanotify_scan *s, const char *path, int mount, unsigned mflags,
		    unsigned mask, unsigned ignored)
{
	struct arena *a = &s->f->fdump->a;
	FanotifyEntry *fa = s->fa;
	if (fa->n_marks == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		FanotifyMarkEntry **v = arena_alloc(a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (fa->n_marks)
			memcpy(v, fa->marks, fa->n_marks * sizeof(*v));
		fa->marks = v;
		s->cap = cap;
	}
	FanotifyMarkEntry *m = arena_alloc(a, sizeof(*m));
	if (!m)
		return -ENOMEM;
	fanotify_mark_entry__init(m);
	m->path = arena_strdup(a, path);
	m->has_mount = mount;
	m->mount = mount;
	m->mflags = mflags;
	m->mask = mask;
	m->ignored_mask = ignored;
	fa->marks[fa->n_marks++] = m;
	return m->path ? 0 : -ENOMEM;
}

struct mount_by_id {
	unsigned id;
	char path[PATH_MAX];
	int found;
};

/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
static int mount_by_id_line(char *line, void *arg)
{
	struct mount_by_id *m = arg;
	unsigned id;
	char point[PATH_MAX];
	if (sscanf(line, "%u %*u %*u:%*u %*s %4095s", &id, point) != 2 || id != m->id)
		return 0;
	snprintf(m->path, sizeof(m->path), "%s", point);
	m->found = 1;
	return 0;
}

/* The mount point of mount `id`, if that path reaches that mount (not one
 * mounted over it). */
static int mount_path(unsigned id, char *path, size_t len)
{
	struct mount_by_id m = { .id = id };
	struct statx stx;
	int ret = proc_each_line("/proc/self/mountinfo", mount_by_id_line, &m);
	if (ret < 0)
		return ret;
	if (!m.found || strchr(m.path, '\\')) /* not ours, or an escaped name */
		return -ENOENT;
	if (statx(AT_FDCWD, m.path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx))
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id != id)
		return -EBUSY;
	snprintf(path, len, "%s", m.path);
	return 0;
}

static int inode_mark(struct fanotify_scan *s, const char *line)
{
	const struct fd_dump *f = s->f;
	unsigned long ino, sdev;
	unsigned mflags, mask, ignored, bytes;
	int type;
	char hex[2 * MAX_HANDLE + 2], path[PATH_MAX];
	if (sscanf(line, "fanotify ino:%lx sdev:%lx mflags:%x mask:%x ignored_mask:%x "
			 "fhandle-bytes:%x fhandle-type:%x f_handle:%257s",
		   &ino, &sdev, &mflags, &mask, &ignored, &bytes, &type, hex) != 8) {
		pr_err("pid %d: fd %d: unexpected fanotify line \"%s\"", f->pid, f->fd, line);
		return -EINVAL;
	}
	int ret = fhandle_to_path(sdev, type, hex, bytes, path, sizeof(path));
	if (ret) {
		/* open_by_handle_at needs CAP_DAC_READ_SEARCH, which a
		 * user's dump is not lent. */
		pr_err("pid %d: fd %d: fanotify mark on inode %lu: cannot find its path: %s%s",
		       f->pid, f->fd, ino, strerror(-ret),
		       ret == -EPERM ? " (file handles need CAP_DAC_READ_SEARCH)" : "");
		return ret;
	}
	return add_mark(s, path, 0, mflags, mask, ignored);
}

static int mount_mark(struct fanotify_scan *s, const char *line)
{
	const struct fd_dump *f = s->f;
	unsigned id, mflags, mask, ignored;
	char path[PATH_MAX];
	if (sscanf(line, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &id, &mflags,
		   &mask, &ignored) != 4) {
		pr_err("pid %d: fd %d: unexpected fanotify line \"%s\"", f->pid, f->fd, line);
		return -EINVAL;
	}
	int ret = mount_path(id, path, sizeof(path));
	if (ret) {
		pr_err("pid %d: fd %d: fanotify mark on mount %u: %s", f->pid, f->fd, id,
		       ret == -EBUSY ? "another mount covers its mount point" :
				       "no path reaches it");
		return ret;
	}
	return add_mark(s, path, 1, mflags, mask, ignored);
}

static int fanotify_line(char *line, void *arg)
{
	struct fanotify_scan *s = arg;
	const struct fd_dump *f = s->f;
	unsigned flags, event_flags;
	if (sscanf(line, "fanotify flags:%x event-flags:%x", &flags, &event_flags) == 2) {
		s->fa->flags = flags;
		s->fa->event_flags = event_flags;
		s->seen_flags = 1;
		if (!(flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)))
			return 0;
		pr_err("pid %d: fd %d: fanotify of a permission class (flags %#x): not supported",
		       f->pid, f->fd, flags);
		return -ENOTSUP;
	}
	if (!strncmp(line, "fanotify ino:", 13))
		return inode_mark(s, line);
	if (!strncmp(line, "fanotify mnt_id:", 16))
		return mount_mark(s, line);
	if (strncmp(line, "fanotify ", 9))
		return 0;
	pr_err("pid %d: fd %d: fanotify mark \"%s\" (filesystem or namespace): not supported",
	       f->pid, f->fd, line + 9);
	return -ENOTSUP;
}

static int fanotify_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[fanotify]");
}

static int fanotify_dump(struct fd_dump *f, FileEntry *e)
{
	FanotifyEntry *fa = arena_alloc(&f->fdump->a, sizeof(*fa));
	if (!fa)
		return -ENOMEM;
	fanotify_entry__init(fa);
	int queued = files_refuse_queued(f, "fanotify");
	if (queued)
		return queued;
	struct fanotify_scan s = { .f = f, .fa = fa };
	int ret = proc_each_line(f->fdinfo, fanotify_line, &s);
	if (ret < 0)
		return ret;
	if (!s.seen_flags) {
		pr_err("pid %d: fd %d: fanotify without its flags in fdinfo", f->pid, f->fd);
		return -EINVAL;
	}
	e->type = FILE_TYPE__FILE_FANOTIFY;
	e->fanotify = fa;
	return 0;
}

/* ------------------------------ restore ------------------------------ */

static const char *entry_problem(const FanotifyEntry *fa)
{
	if ((fa->flags & ~INIT_FLAGS) || (fa->event_flags & ~EVENT_FLAGS))
		return "flags that are not restored";
	for (size_t i = 0; i < fa->n_marks; i++) {
		const FanotifyMarkEntry *m = fa->marks[i];
		if (!m->path || m->path[0] != '/' || (m->mflags & ~MARK_FLAGS))
			return "a mark without an absolute path, or with bad flags";
	}
	return NULL;
}

static int fanotify_read(struct img_set *set, struct restore_files *rf, void **priv)
{
	(void)priv;
	for (size_t i = 0; i < rf->nr_files; i++) {
		const FileEntry *e = rf->files[i];
		if (e->type != FILE_TYPE__FILE_FANOTIFY)
			continue;
		const char *why = e->fanotify ? entry_problem(e->fanotify) : "no marks";
		if (why) {
			pr_err("%s/files.img: file %u: fanotify with %s", img_set_dir(set), e->id, why);
			return -EINVAL;
		}
	}
	return 0;
}

static int mark_once(int fd, const FileEntry *e, const FanotifyMarkEntry *m, unsigned flags,
		     unsigned mask)
{
	flags |= FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW | (m->mount ? FAN_MARK_MOUNT : 0) |
		 (m->mflags & FAN_MARK_EVICTABLE);
	if (fanotify_mark(fd, flags, mask, AT_FDCWD, m->path) == 0)
		return 0;
	int err = errno;
	pr_err("file %u: fanotify %s mark on %s (mask %#x): %s", e->id, m->mount ? "mount" : "inode",
	       m->path, mask, strerror(err));
	return -err;
}

static int add_marks(int fd, const FileEntry *e, const FanotifyEntry *fa)
{
	/* fdinfo lists the newest mark first: add the last one first. */
	for (size_t i = fa->n_marks; i-- > 0;) {
		const FanotifyMarkEntry *m = fa->marks[i];
		unsigned ign = m->mflags & FAN_MARK_IGNORE ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
		int ret = 0;
		if (m->mask || !m->ignored_mask)
			ret = mark_once(fd, e, m, 0, m->mask);
		if (!ret && m->ignored_mask)
			ret = mark_once(fd, e, m, ign | (m->mflags & FAN_MARK_IGNORED_SURV_MODIFY),
					m->ignored_mask);
		if (ret)
			return ret;
	}
	return 0;
}

struct mark_check {
	const FanotifyEntry *fa;
	size_t next;
	int bad;
};

static int check_line(char *line, void *arg)
{
	struct mark_check *c = arg;
	unsigned mflags, mask, ignored;
	const char *p = strstr(line, " mflags:");
	if (strncmp(line, "fanotify ", 9) || !strncmp(line, "fanotify flags:", 15))
		return 0;
	if (!p || sscanf(p, " mflags:%x mask:%x ignored_mask:%x", &mflags, &mask, &ignored) != 3 ||
	    c->next >= c->fa->n_marks)
		return c->bad = 1, 0;
	const FanotifyMarkEntry *m = c->fa->marks[c->next++];
	if (m->mflags != mflags || m->mask != mask || m->ignored_mask != ignored)
		c->bad = 1;
	return 0;
}

/* The marks as the kernel took them: the same flags and masks, in order. */
static int check_marks(int fd, const FileEntry *e, const FanotifyEntry *fa)
{
	char path[64];
	struct mark_check c = { .fa = fa };
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int ret = proc_each_line(path, check_line, &c);
	if (ret < 0)
		return ret;
	if (c.bad || c.next != fa->n_marks) {
		pr_err("file %u: fanotify marks do not come back as they were dumped", e->id);
		return -EINVAL;
	}
	return 0;
}

static int fanotify_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	const FanotifyEntry *fa = e->fanotify;
	int fd = fanotify_init(fa->flags, fa->event_flags);
	if (fd < 0) {
		pr_err("file %u: cannot create the fanotify (flags %#x): %s", e->id, fa->flags,
		       strerror(errno));
		return -errno;
	}
	int ret = add_marks(fd, e, fa);
	if (!ret)
		ret = check_marks(fd, e, fa);
	/* FAN_CLOEXEC and FAN_NONBLOCK were only the first fd flags. */
	if (!ret && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		     fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

const struct file_kind fanotify_kind = {
	.name = "fanotify",
	.types = 1ULL << FILE_TYPE__FILE_FANOTIFY,
	.match = fanotify_match,
	.dump = fanotify_dump,
	.read = fanotify_read,
	.open = fanotify_open,
};
