/*
 * cgroup-props: the controller settings of the job's cgroup directories
 * (cgroup_prop_entry).  Only the files of the table below are read at
 * dump, accepted from an image and written at restore, in the table's
 * order (a memory limit before the memory+swap one, which may not be
 * below it), and only into a directory the restore made: an existing
 * cgroup (a batch system's step cgroup, in relative mode) keeps its own
 * limits.  A user's restore writes them as the user: the kernel refuses
 * what she could not set herself (the device list needs CAP_SYS_ADMIN).
 *
 * To add a setting: one line in `props`, where it must come in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "cgroup.h"
#include "log.h"

#define PROP_MAX 65536

static const char *const props[] = {
	"cpuset.cpus",
	"cpuset.mems",
	"cpu.shares",
	"cpu.cfs_period_us",
	"cpu.cfs_quota_us",
	"cpu.weight",
	"cpu.max",
	"memory.limit_in_bytes",
	"memory.soft_limit_in_bytes",
	"memory.memsw.limit_in_bytes",
	"memory.swappiness",
	"memory.min",
	"memory.low",
	"memory.high",
	"memory.max",
	"memory.swap.max",
	"pids.max",
	"blkio.weight",
	"io.weight",
	"devices.list", /* written as "a" into devices.deny, then each line into devices.allow */
};
_Static_assert(sizeof(props) / sizeof(props[0]) <= CG_MAX_PROPS, "CG_MAX_PROPS");

int cg_prop_known(const char *name)
{
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (!strcmp(props[i], name))
			return 1;
	return 0;
}

static int read_prop(int dfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	ssize_t n;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	while (got && buf[got - 1] == '\n')
		got--;
	buf[got] = 0;
	return (int)got;
}

int cg_dump_props(struct arena *a, CgroupDirEntry *e, int dfd)
{
	char *buf = malloc(PROP_MAX);
	int ret = buf ? 0 : -ENOMEM;
	for (size_t i = 0; !ret && i < sizeof(props) / sizeof(props[0]); i++) {
		if (read_prop(dfd, props[i], buf, PROP_MAX) <= 0)
			continue; /* not this hierarchy's, or empty */
		CgroupPropEntry *p = arena_alloc(a, sizeof(*p));
		if (!e->props)
			e->props = arena_alloc(a, CG_MAX_PROPS * sizeof(*e->props));
		if (!p || !e->props)
			ret = -ENOMEM;
		if (ret)
			break;
		cgroup_prop_entry__init(p);
		p->name = (char *)props[i];
		p->value = arena_strdup(a, buf);
		e->props[e->n_props++] = p;
		ret = p->value ? 0 : -ENOMEM;
	}
	free(buf);
	return ret;
}

static int write_value(int dfd, const char *name, const char *value, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	int ret = fd < 0 || write(fd, value, len) != (ssize_t)len ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The device list: deny all, then allow each dumped line. */
static int write_devices(int dfd, const char *list)
{
	int ret = write_value(dfd, "devices.deny", "a", 1);
	for (const char *p = list; !ret && *p;) {
		size_t n = strcspn(p, "\n");
		if (n)
			ret = write_value(dfd, "devices.allow", p, n);
		p += n + (p[n] == '\n');
	}
	return ret;
}

int cg_restore_props(int dfd, const CgroupDirEntry *e, const char **what)
{
	int ret = 0;
	for (size_t i = 0; !ret && i < sizeof(props) / sizeof(props[0]); i++)
		for (size_t k = 0; !ret && k < e->n_props; k++) {
			const CgroupPropEntry *p = e->props[k];
			if (strcmp(p->name, props[i]))
				continue;
			*what = p->name;
			if (!strcmp(p->name, "devices.list"))
				ret = write_devices(dfd, p->value);
			else
				ret = write_value(dfd, p->name, p->value, strlen(p->value));
		}
	return ret;
}
