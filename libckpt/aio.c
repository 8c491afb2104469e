/*
 * aio: AIO contexts (io_setup).  A context is a ring mapped into the
 * process ("/[aio] (deleted)" in maps); its id (aio_context_t) is the
 * ring's address.  The ring starts with struct aio_ring (nr, head, tail,
 * ...) followed by nr io_event slots; completed events wait in
 * [head, tail).  The kernel keeps its own copy of tail and reads head
 * from the ring, which userland may also write.
 *
 * Dump (mem.c calls aio_ring_dump for the VMA): the mapping's bytes and
 * nr/head/tail go into vma_entry.aio (proto/mm.proto).  A mapping a fork
 * left in a child is no context there (core.c asks the task, and refuses
 * it).  Requests in flight (submitted, not completed) cannot be seen from
 * outside the kernel: no /proc file shows a context's requests, and a
 * probe by submitting would change the ring.  Most complete on their own
 * within milliseconds, frozen task or not (direct I/O, fsync): an event
 * that came in while the task's memory was dumped is refused
 * (aio_ring_recheck).  One that never completes by itself (IOCB_CMD_POLL
 * on a file that stays unready) is not seen: it is lost on restore.
 *
 * Restore (restore-mem.c calls aio_ring_restore for the VMA's slot, in
 * the restoring process, before it forks): io_setup with a request count
 * that gives a ring of the same nr, then the kernel's tail and the
 * ring's head are brought where they were by completing requests that
 * finish at once (a 1-byte write to /dev/null) and reaping them: first
 * `head` pairs of submit and reap, then tail - head submits left in the
 * ring, so that the kernel counts those slots as taken, as it did.  The
 * dumped bytes then go over the slots (the events themselves) and the
 * header but for its id (the kernel's index of the context in this mm).
 * The ring is moved into the slot with mremap: the kernel follows a
 * moved ring (aio_ring_mremap), and the restorer's last mremap to the
 * dumped address makes the old id work again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "aio.h"
#include "log.h"

#define PAGE 4096u
#define AIO_RING_MAGIC 0xa10a10a1u
#define AIO_RING_FS_MAGIC 0xa10a10a1 /* the aio file system's f_type */
#define HEADER 32u                   /* sizeof(struct aio_ring) */
#define EVENT 32u                    /* sizeof(struct io_event) */
#define BATCH 32

/* The kernel's struct aio_ring (fs/aio.c), the ABI of the mapping. */
struct ring_header {
	uint32_t id, nr, head, tail;
	uint32_t magic, compat_features, incompat_features, header_length;
};
_Static_assert(sizeof(struct ring_header) == HEADER, "struct aio_ring is 32 bytes");
_Static_assert(sizeof(struct io_event) == EVENT, "struct io_event is 32 bytes");

/* The kernel's nr for a ring mapping of len bytes (aio_setup_ring). */
static uint32_t ring_nr(uint64_t len)
{
	return (uint32_t)((len - HEADER) / EVENT);
}

/* ---- dump ---- */

static int read_ring(pid_t pid, uint64_t start, uint8_t *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, buf, len, (off_t)start);
	int err = errno;
	close(fd);
	return n == (ssize_t)len ? 0 : n < 0 ? -err : -EIO;
}

/* Is the mapping really an AIO ring, not a file named "/[aio]" that was
 * removed while mapped? */
int aio_is_ring(pid_t pid, const VmaEntry *e)
{
	char link[80];
	struct statfs sfs;
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, e->start,
		 e->end);
	return !statfs(link, &sfs) && (uint32_t)sfs.f_type == AIO_RING_FS_MAGIC;
}

static int refuse(pid_t pid, const VmaEntry *e, const char *why)
{
	pr_err("pid %d: AIO ring at %" PRIx64 "-%" PRIx64 ": %s: not supported", pid, e->start,
	       e->end, why);
	return -ENOTSUP;
}

int aio_ring_dump(pid_t pid, VmaEntry *e, AioRingEntry *ae, uint8_t *buf)
{
	uint64_t len = e->end - e->start;
	struct ring_header h;

	if (len % PAGE || len > AIO_RING_MAX)
		return refuse(pid, e, "larger than 16 MiB");
	int ret = read_ring(pid, e->start, buf, len);
	if (ret) {
		pr_err("pid %d: AIO ring at %" PRIx64 ": cannot read it: %s", pid, e->start,
		       strerror(-ret));
		return ret;
	}
	memcpy(&h, buf, sizeof(h));
	/* Userland may write the ring: what the kernel would not have made
	 * cannot be made again through it. */
	if (h.magic != AIO_RING_MAGIC || h.header_length != HEADER || h.nr != ring_nr(len))
		return refuse(pid, e, "its header was overwritten");
	if (h.head >= h.nr || h.tail >= h.nr)
		return refuse(pid, e, "head or tail out of the ring (overwritten)");
	ae->nr = h.nr;
	ae->head = h.head;
	ae->tail = h.tail;
	ae->ring.data = buf;
	ae->ring.len = len;
	e->kind = VMA_KIND__VMA_AIO_RING;
	e->flags = MAP_SHARED;
	e->aio = ae;
	return 0;
}

int aio_ring_recheck(pid_t pid, const VmaEntry *e)
{
	struct ring_header h;
	int ret = read_ring(pid, e->start, (uint8_t *)&h, sizeof(h));
	if (ret) {
		pr_err("pid %d: AIO ring at %" PRIx64 ": cannot read it: %s", pid, e->start,
		       strerror(-ret));
		return ret;
	}
	if (h.tail != e->aio->tail || h.head != e->aio->head)
		return refuse(pid, e, "events came in during the dump (requests were in flight)");
	return 0;
}

/* ---- restore ---- */

int aio_ring_check(pid_t pid, const VmaEntry *e)
{
	const AioRingEntry *ae = e->aio;
	uint64_t len = e->end - e->start;

	if (!ae || len % PAGE || len > AIO_RING_MAX || len < PAGE || ae->ring.len != len ||
	    ae->nr != ring_nr(len) || ae->head >= ae->nr || ae->tail >= ae->nr || e->pgoff) {
		pr_err("pid %d: VMA 0x%" PRIx64 ": bad AIO ring record", pid, e->start);
		return -EINVAL;
	}
	return 0;
}

/* How many CPUs may ever be online (/sys/devices/system/cpu/possible:
 * "0-3,8"), 0 if unknown. */
static unsigned possible_cpus(void)
{
	char buf[256];
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned count = 0;
	for (char *p = buf; *p >= '0' && *p <= '9';) {
		unsigned long a = strtoul(p, &p, 10), b = a;
		if (*p == '-')
			b = strtoul(p + 1, &p, 10);
		count += b >= a ? (unsigned)(b - a + 1) : 0;
		if (*p == ',')
			p++;
	}
	return count;
}

/* The fewest slots io_setup gives here: 4 requests per possible CPU at
 * least, doubled, 2 more, in whole pages (fs/aio.c). */
static uint32_t min_ring_nr(unsigned cpus)
{
	uint64_t events = (uint64_t)cpus * 4 * 2 + 2;
	uint64_t len = (HEADER + events * EVENT + PAGE - 1) / PAGE * PAGE;
	return ring_nr(len);
}

int aio_rings_check(pid_t pid, const MmEntry *mm)
{
	unsigned cpus = possible_cpus();
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		if (e->kind != VMA_KIND__VMA_AIO_RING)
			continue;
		int ret = aio_ring_check(pid, e);
		if (ret)
			return ret;
		if (cpus && e->aio->nr < min_ring_nr(cpus)) {
			pr_err("pid %d: AIO ring at %" PRIx64 ": %u slots, but io_setup makes at least "
			       "%u on this machine (%u CPUs): not supported",
			       pid, e->start, e->aio->nr, min_ring_nr(cpus), cpus);
			return -ENOTSUP;
		}
	}
	return 0;
}

static long io_setup_(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

static long io_destroy_(aio_context_t ctx)
{
	return syscall(SYS_io_destroy, ctx);
}

/* Submit n requests that complete at once; reap them too if `reap`. */
static int complete_some(aio_context_t ctx, int fd, long n, int reap)
{
	static char byte;
	struct iocb cb = { .aio_fildes = (uint32_t)fd, .aio_lio_opcode = IOCB_CMD_PWRITE,
			   .aio_buf = (uint64_t)(uintptr_t)&byte, .aio_nbytes = 1 };
	struct iocb *cbs[BATCH];
	struct io_event ev[BATCH];

	for (int i = 0; i < BATCH; i++)
		cbs[i] = &cb;
	while (n > 0) {
		long k = n < BATCH ? n : BATCH;
		long done = syscall(SYS_io_submit, ctx, k, cbs);
		if (done <= 0)
			return done < 0 ? -errno : -EAGAIN;
		long got = reap ? syscall(SYS_io_getevents, ctx, done, done, ev, NULL) : done;
		if (got != done)
			return got < 0 ? -errno : -EIO;
		n -= done;
	}
	return 0;
}

/* Bring the new ring's head and tail to the dumped ones (see the top).
 * On one CPU: the kernel hands free slots to each CPU in batches, and
 * those left on another CPU would be missing for the last submits of a
 * nearly full ring (EAGAIN). */
static int wind_ring(aio_context_t ctx, const AioRingEntry *ae)
{
	cpu_set_t was, one;
	int cpu = sched_getcpu(), pinned = 0;
	if (cpu >= 0 && !sched_getaffinity(0, sizeof(was), &was)) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pinned = !sched_setaffinity(0, sizeof(one), &one);
	}
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC), ret = fd < 0 ? -errno : 0;
	long ahead = ((long)ae->tail - (long)ae->head + ae->nr) % ae->nr;
	if (!ret)
		ret = complete_some(ctx, fd, ae->head, 1);
	if (!ret)
		ret = complete_some(ctx, fd, ahead, 0);
	if (fd >= 0)
		close(fd);
	if (pinned && sched_setaffinity(0, sizeof(was), &was) && !ret)
		ret = -errno;
	const volatile struct ring_header *h = (void *)ctx;
	if (!ret && (h->head != ae->head || h->tail != ae->tail))
		ret = -EIO;
	return ret;
}

int aio_ring_restore(pid_t pid, const VmaEntry *e, uint64_t addr)
{
	const AioRingEntry *ae = e->aio;
	uint64_t len = e->end - e->start;
	aio_context_t ctx = 0;
	/* The kernel makes nr = max(n, 4 * CPUs) * 2 + 2 slots, rounded up
	 * to whole pages: this n gives back the dumped ring unless this
	 * machine has many more CPUs than the ring was sized for. */
	unsigned want = (ae->nr - 2) / 2;

	if (io_setup_(want, &ctx) < 0) {
		int err = errno;
		pr_err("pid %d: AIO ring at %" PRIx64 ": io_setup(%u): %s", pid, e->start, want,
		       strerror(err));
		return -err;
	}
	const struct ring_header *h = (void *)ctx;
	if (h->nr != ae->nr) {
		pr_err("pid %d: AIO ring at %" PRIx64 ": io_setup gives %u slots here, the dump "
		       "had %u (more CPUs?)",
		       pid, e->start, h->nr, ae->nr);
		io_destroy_(ctx);
		return -ENOTSUP;
	}
	int ret = wind_ring(ctx, ae);
	if (ret) {
		pr_err("pid %d: AIO ring at %" PRIx64 ": cannot bring head %u, tail %u back: %s",
		       pid, e->start, ae->head, ae->tail, strerror(-ret));
		io_destroy_(ctx);
		return ret;
	}
	/* the events and the header fields userland sees, all but id */
	memcpy((uint8_t *)ctx + 16, ae->ring.data + 16, len - 16);
	if (mremap((void *)ctx, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)addr) ==
	    MAP_FAILED) {
		ret = -errno;
		pr_err("pid %d: AIO ring at %" PRIx64 ": moving it: %s", pid, e->start,
		       strerror(errno));
		io_destroy_(ctx);
	}
	return ret;
}
