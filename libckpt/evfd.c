/*
 * evfd: the small anonymous-inode fds whose whole state /proc/PID/fdinfo
 * shows: eventfd (counter, EFD_SEMAPHORE), signalfd (mask) and timerfd
 * (clock, time left, interval, settime flags, expirations not yet read).
 * Each is one file kind (file-kinds.h); restore creates a fresh fd with the
 * same state in the driver's pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "file-kinds.h"
#include "log.h"
#include "proc.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* Keep the status flags the new fd can take; the creation flags are gone. */
static int set_status_flags(int fd, const FileEntry *e)
{
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static const char *value_of(const char *line, const char *key)
{
	size_t n = strlen(key);
	return strncmp(line, key, n) ? NULL : line + n;
}

/* ------------------------------ eventfd ------------------------------ */

static int eventfd_line(char *line, void *arg)
{
	EventfdEntry *ev = arg;
	const char *v;
	if ((v = value_of(line, "eventfd-count:")))
		ev->count = strtoull(v, NULL, 16); /* printed in hex */
	else if ((v = value_of(line, "eventfd-semaphore:")))
		ev->semaphore = strtoul(v, NULL, 10) != 0;
	return 0;
}

static int eventfd_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[eventfd]");
}

static int eventfd_dump(struct fd_dump *f, FileEntry *e)
{
	EventfdEntry *ev = arena_alloc(&f->fdump->a, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	eventfd_entry__init(ev);
	int ret = proc_each_line(f->fdinfo, eventfd_line, ev);
	if (ret < 0) {
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->fdinfo, strerror(-ret));
		return ret;
	}
	e->type = FILE_TYPE__FILE_EVENTFD;
	e->eventfd = ev;
	return 0;
}

static int eventfd_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	const EventfdEntry *ev = e->eventfd;
	/* The kernel refuses a write of the largest value: the counter
	 * never holds it. */
	if (!ev || ev->count == UINT64_MAX) {
		pr_err("file %u: eventfd without a valid state", e->id);
		return -EINVAL;
	}
	int fd = eventfd(0, EFD_CLOEXEC | (ev->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0 || (ev->count && write(fd, &ev->count, 8) != 8)) {
		int err = errno;
		pr_err("file %u: cannot recreate the eventfd: %s", e->id, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	return set_status_flags(fd, e);
}

const struct file_kind eventfd_kind = {
	.name = "eventfd",
	.types = 1ULL << FILE_TYPE__FILE_EVENTFD,
	.match = eventfd_match,
	.dump = eventfd_dump,
	.open = eventfd_open,
	.alone_ok = 1,
};

/* ------------------------------ signalfd ----------------------------- */

static int signalfd_line(char *line, void *arg)
{
	SignalfdEntry *sf = arg;
	const char *v = value_of(line, "sigmask:");
	if (v)
		sf->sigmask = strtoull(v, NULL, 16);
	return 0;
}

static int signalfd_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(struct fd_dump *f, FileEntry *e)
{
	SignalfdEntry *sf = arena_alloc(&f->fdump->a, sizeof(*sf));
	if (!sf)
		return -ENOMEM;
	signalfd_entry__init(sf);
	int ret = proc_each_line(f->fdinfo, signalfd_line, sf);
	if (ret < 0) {
		pr_err("pid %d: fd %d: %s: %s", f->pid, f->fd, f->fdinfo, strerror(-ret));
		return ret;
	}
	e->type = FILE_TYPE__FILE_SIGNALFD;
	e->signalfd = sf;
	return 0;
}

static int signalfd_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	sigset_t mask;
	if (!e->signalfd) {
		pr_err("file %u: signalfd without a mask", e->id);
		return -EINVAL;
	}
	sigemptyset(&mask);
	for (int sig = 1; sig <= 64; sig++)
		if ((e->signalfd->sigmask >> (sig - 1)) & 1)
			sigaddset(&mask, sig);
	int fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (fd < 0) {
		pr_err("file %u: cannot recreate the signalfd: %s", e->id, strerror(errno));
		return -errno;
	}
	return set_status_flags(fd, e);
}

const struct file_kind signalfd_kind = {
	.name = "signalfd",
	.types = 1ULL << FILE_TYPE__FILE_SIGNALFD,
	.match = signalfd_match,
	.dump = signalfd_dump,
	.open = signalfd_open,
};

/* ------------------------------ timerfd ------------------------------ */

static int timerfd_line(char *line, void *arg)
{
	TimerfdEntry *t = arg;
	const char *v;
	long long s, ns;
	if ((v = value_of(line, "clockid:")))
		t->clockid = (int32_t)strtol(v, NULL, 10);
	else if ((v = value_of(line, "ticks:")))
		t->ticks = strtoull(v, NULL, 10);
	else if ((v = value_of(line, "settime flags:")))
		t->settime_flags = (uint32_t)strtoul(v, NULL, 8);
	else if ((v = value_of(line, "it_value:")) && sscanf(v, " (%lld, %lld)", &s, &ns) == 2) {
		t->value_sec = s;
		t->value_nsec = ns;
	} else if ((v = value_of(line, "it_interval:")) && sscanf(v, " (%lld, %lld)", &s, &ns) == 2) {
		t->interval_sec = s;
		t->interval_nsec = ns;
	}
	return 0;
}

static int timerfd_match(const struct fd_dump *f)
{
	return !strcmp(f->link, "anon_inode:[timerfd]");
}

static struct timespec ts_add(struct timespec a, int64_t sec, int64_t nsec)
{
	a.tv_sec += sec;
	a.tv_nsec += nsec;
	if (a.tv_nsec >= 1000000000L) {
		a.tv_sec++;
		a.tv_nsec -= 1000000000L;
	}
	return a;
}

/* The _ALARM clocks read as their plain counterparts. */
static clockid_t readable_clock(int32_t id)
{
	if (id == CLOCK_REALTIME_ALARM)
		return CLOCK_REALTIME;
	if (id == CLOCK_BOOTTIME_ALARM)
		return CLOCK_BOOTTIME;
	return id;
}

static int is_wall_clock(int32_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_REALTIME_ALARM || id == CLOCK_TAI;
}

static int timerfd_dump(struct fd_dump *f, FileEntry *e)
{
	TimerfdEntry *t = arena_alloc(&f->fdump->a, sizeof(*t));
	struct timespec now;
	if (!t)
		return -ENOMEM;
	timerfd_entry__init(t);
	t->clockid = -1;
	int ret = proc_each_line(f->fdinfo, timerfd_line, t);
	if (ret < 0 || t->clockid < 0) {
		pr_err("pid %d: fd %d: %s: no timer state", f->pid, f->fd, f->fdinfo);
		return ret < 0 ? ret : -EINVAL;
	}
	/* fdinfo shows the time left; an absolute timer on a wall clock
	 * keeps its absolute expiry (the time did not stop meanwhile). */
	if ((t->settime_flags & TFD_TIMER_ABSTIME) && is_wall_clock(t->clockid) &&
	    (t->value_sec || t->value_nsec) && !clock_gettime(readable_clock(t->clockid), &now)) {
		now = ts_add(now, t->value_sec, t->value_nsec);
		t->has_abs_sec = t->has_abs_nsec = 1;
		t->abs_sec = now.tv_sec;
		t->abs_nsec = now.tv_nsec;
	}
	e->type = FILE_TYPE__FILE_TIMERFD;
	e->timerfd = t;
	return 0;
}

static int bad_ts(int64_t sec, int64_t nsec)
{
	return sec < 0 || nsec < 0 || nsec >= 1000000000L;
}

/* The itimerspec to arm now, and its flags. */
static int timer_spec(const TimerfdEntry *t, struct itimerspec *its, int *flags)
{
	struct timespec now;
	its->it_interval = (struct timespec){ t->interval_sec, t->interval_nsec };
	its->it_value = (struct timespec){ t->value_sec, t->value_nsec };
	*flags = (int)(t->settime_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET));
	/* A periodic timer that expired and was not read yet shows no time
	 * left: start its next period now. */
	if (!t->value_sec && !t->value_nsec && t->ticks)
		its->it_value = its->it_interval;
	if (!its->it_value.tv_sec && !its->it_value.tv_nsec)
		return 0;
	if (!(*flags & TFD_TIMER_ABSTIME))
		return 0;
	if (t->has_abs_sec && t->has_abs_nsec && !bad_ts(t->abs_sec, t->abs_nsec)) {
		its->it_value = (struct timespec){ t->abs_sec, t->abs_nsec };
		return 0;
	}
	if (clock_gettime(readable_clock(t->clockid), &now))
		return -errno;
	its->it_value = ts_add(now, its->it_value.tv_sec, its->it_value.tv_nsec);
	return 0;
}

static int timerfd_open(struct restore_files *rf, void *priv, const FileEntry *e)
{
	(void)rf;
	(void)priv;
	const TimerfdEntry *t = e->timerfd;
	struct itimerspec its;
	int flags, fd = -1, ret;

	if (!t || bad_ts(t->value_sec, t->value_nsec) || bad_ts(t->interval_sec, t->interval_nsec)) {
		pr_err("file %u: timerfd without a valid state", e->id);
		return -EINVAL;
	}
	if ((ret = timer_spec(t, &its, &flags)))
		goto err;
	fd = timerfd_create(t->clockid, TFD_CLOEXEC);
	if (fd < 0 || timerfd_settime(fd, flags, &its, NULL) < 0) {
		ret = -errno;
		goto err;
	}
	/* Arming cleared the count: put back the expirations not read. */
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks) < 0) {
		ret = -errno;
		goto err;
	}
	return set_status_flags(fd, e);
err:
	pr_err("file %u: cannot recreate the timerfd on clock %d: %s", e->id, t->clockid,
	       strerror(-ret));
	if (fd >= 0)
		close(fd);
	return ret;
}

const struct file_kind timerfd_kind = {
	.name = "timerfd",
	.types = 1ULL << FILE_TYPE__FILE_TIMERFD,
	.match = timerfd_match,
	.dump = timerfd_dump,
	.open = timerfd_open,
};
