/*
 * lazy-serve: the page server of a lazy restore (docs/lazy-restore.md).
 * A process the driver forks once the tree exists.  Each restored process
 * sends it, from its restorer, a userfaultfd on which its private
 * anonymous VMAs are registered, still empty (struct rst_lazy in
 * restorer-abi.h).  The server then:
 *
 *   - serves every missing-page fault with the whole chunk of
 *     pages-PID.img around it (UFFDIO_COPY; UFFDIO_ZEROPAGE where the dump
 *     stored nothing: a page that was zero);
 *   - streams every other chunk in the background while no fault waits;
 *   - follows the job: a fork gives one more uffd (the child misses the
 *     same pages), an mremap moves pending pages, a munmap or
 *     MADV_DONTNEED drops them (they must never be filled later);
 *   - exits once every uffd is done and every process sent its own.
 *
 * Main structure: one struct lazy_mm per uffd, holding the ranges still
 * to fill ("pending": current address, image address).  A chunk that
 * cannot be read (file truncated, EIO, a bad block) is fatal: one line
 * naming the process and the pages, the whole tree SIGKILLed, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazy-serve.h"
#include "log.h"
#include "proc.h"
#include "shmem.h"
#include "restore-mem.h"
#include "restorer-abi.h"

#define PAGE 4096ULL
#define MAX_FAULTS 256

struct lazy_range {
	uint64_t start, end; /* where the pages are now */
	uint64_t img;        /* where they were dumped (start's) */
};

struct lazy_mm {
	int uffd;
	size_t task;    /* c->tasks[] whose image it reads */
	pid_t host_pid; /* 0: a process forked since the restore */
	struct lazy_range *r;
	size_t n, cap;
	uint64_t faults[MAX_FAULTS]; /* read, not yet answered (EAGAIN) */
	size_t nr_faults;
};

/* Shared with the watchdog (below): the server ended the tree's story. */
static volatile int *watch_done; /* [0] all in or said, [1] the tree ran */
static int watch_go_r = -1; /* the server's go_r, in the fd table both share */

struct server {
	struct restore_ctx *c;
	int sock;
	pid_t root;
	struct lazy_mm *mms;
	size_t nr_mms, cap_mms;
	uint8_t *buf;
	size_t buf_len;
	uint64_t buf_vaddr; /* chunk loaded into buf */
	uint64_t t0, bytes, nr_faults;
	int report;
	int go_r;     /* the driver writes (or closes) it once the tree runs */
	int released; /* the tree runs */
};

/* ---- pending ranges ---- */

static int add_range(struct lazy_mm *m, uint64_t start, uint64_t end, uint64_t img)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct lazy_range *r = realloc(m->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		m->r = r;
		m->cap = cap;
	}
	m->r[m->n++] = (struct lazy_range){ start, end, img };
	return 0;
}

/* No range crosses addr afterwards. */
static int split_at(struct lazy_mm *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++) {
		struct lazy_range *r = &m->r[i];
		if (r->start < addr && addr < r->end) {
			uint64_t end = r->end, img = r->img + (addr - r->start);
			r->end = addr;
			return add_range(m, addr, end, img);
		}
	}
	return 0;
}

/* munmap, MADV_DONTNEED, or filled: [start, end) is no longer pending. */
static int cut_range(struct lazy_mm *m, uint64_t start, uint64_t end)
{
	int ret = split_at(m, start);
	if (!ret)
		ret = split_at(m, end);
	for (size_t i = 0; !ret && i < m->n;) {
		if (m->r[i].start >= start && m->r[i].end <= end)
			m->r[i] = m->r[--m->n];
		else
			i++;
	}
	return ret;
}

/* mremap: what was pending at [from, from + len) is now at to. */
static int move_range(struct lazy_mm *m, uint64_t from, uint64_t to, uint64_t len)
{
	int ret = split_at(m, from);
	if (!ret)
		ret = split_at(m, from + len);
	for (size_t i = 0; !ret && i < m->n; i++) {
		struct lazy_range *r = &m->r[i];
		if (r->start >= from && r->end <= from + len) {
			r->start = r->start - from + to;
			r->end = r->end - from + to;
		}
	}
	return ret;
}

static struct lazy_range *range_at(struct lazy_mm *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->r[i].start <= addr && addr < m->r[i].end)
			return &m->r[i];
	return NULL;
}

/* ---- reading the image ---- */

#define MAX_SPAN (64ULL << 20)
/* Background streaming reads this much of the image at once, with two
 * threads: reading and checking the stored bytes (pread, crc32c) costs
 * more than decompressing them. */
#define STREAM_SPAN (16ULL << 20)
#define STREAM_THREADS 2

static uint64_t chunk_end(const struct page_chunk *ch)
{
	return ch->vaddr + (uint64_t)ch->nr_pages * PAGE;
}

/* Chunks that share one stored block (a fragmented heap's runs, pages.c)
 * are loaded together: the block is decompressed once, not per run. */
static int same_block(const struct page_chunk *a, const struct page_chunk *b)
{
	return !a->in_parent && !b->in_parent && a->offset == b->offset &&
	       chunk_end(b) - a->vaddr <= MAX_SPAN;
}

/* The first and last chunks of ch's block.  They need not be its
 * neighbours: a batch's raw pages and its compressed ones are two blocks
 * whose chunks alternate (pages.c); the chunks between are loaded too. */
static void block_bounds(const struct rst_task *t, const struct page_chunk *ch,
			 const struct page_chunk **first, const struct page_chunk **last)
{
	const struct page_chunk *end = t->chunks + t->nr_chunks;

	*first = *last = ch;
	for (const struct page_chunk *p = ch; p > t->chunks && chunk_end(ch) - p[-1].vaddr <= MAX_SPAN;
	     p--)
		if (same_block(p - 1, ch))
			*first = p - 1;
	for (const struct page_chunk *p = ch + 1; p < end && chunk_end(p) - (*first)->vaddr <= MAX_SPAN;
	     p++)
		if (same_block(*first, p))
			*last = p;
}

static const struct page_chunk *chunk_of(const struct rst_task *t, uint64_t img)
{
	size_t lo = 0, hi = t->nr_chunks;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct page_chunk *ch = &t->chunks[mid];
		if (img < ch->vaddr)
			hi = mid;
		else if (img >= ch->vaddr + (uint64_t)ch->nr_pages * PAGE)
			lo = mid + 1;
		else
			return ch;
	}
	return NULL;
}

static void *chunk_dest(void *arg, uint64_t vaddr, size_t len)
{
	struct server *s = arg;
	(void)len; /* page_reader_load keeps each piece inside its chunk */
	return s->buf + (vaddr - s->buf_vaddr);
}

static void kill_tree(struct server *s);

/* Chunks ch[0..n) into buf, from ch->vaddr. */
static int load_chunk(struct server *s, const struct lazy_mm *m, const struct page_chunk *ch,
		      size_t n, int threads)
{
	const struct rst_task *t = &s->c->tasks[m->task];
	size_t len = (size_t)(chunk_end(&ch[n - 1]) - ch->vaddr);
	char name[64];
	int ret;

	if (len > s->buf_len) {
		uint8_t *b = realloc(s->buf, len);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->buf_len = len;
	}
	s->buf_vaddr = ch->vaddr;
	snprintf(name, sizeof(name), "pages-%u.img", t->te->pid);
	/* the test's fault: a read fails once the tree runs */
	ret = ckpt_test_fault("lazy-read") && s->released ? -EIO :
	      page_reader_load(s->c->set, name, ch, n, threads, chunk_dest, s);
	if (ret) {
		pr_err("pid %u: lazy restore: pages 0x%" PRIx64 "-0x%" PRIx64 " of %s cannot be read: "
		       "%s; killing the restored tree",
		       t->te->pid, ch->vaddr, ch->vaddr + len, name, strerror(-ret));
		kill_tree(s);
		_exit(1);
	}
	return 0;
}

/* ---- filling ---- */

/* 0: done (or the range is gone: ENOENT), -EAGAIN: the job's mm is
 * changing (events to read first), -ESRCH: the process is gone. */
static int copy_in(struct server *s, struct lazy_mm *m, uint64_t dst, const uint8_t *src,
		   uint64_t len)
{
	while (len) {
		struct uffdio_copy cp = { .dst = dst, .src = (uint64_t)src, .len = len };
		if (!ioctl(m->uffd, UFFDIO_COPY, &cp)) {
			s->bytes += len;
			return 0;
		}
		int64_t done = cp.copy > 0 ? cp.copy : 0;
		int err = cp.copy < 0 ? (int)-cp.copy : errno;
		if (!done && err == EEXIST)
			done = PAGE; /* this page is in: the job's own or filled already */
		else if (!done && err == ENOENT)
			return 0;
		else if (!done)
			return -err;
		s->bytes += cp.copy > 0 ? (uint64_t)cp.copy : 0;
		dst += (uint64_t)done, src += done, len -= (uint64_t)done;
	}
	return 0;
}

/* Fill what m still misses of image range [cstart, cend) (loaded in buf). */
static int fill_from_buf(struct server *s, struct lazy_mm *m, uint64_t cstart, uint64_t cend)
{

	for (size_t i = 0; i < m->n; i++) {
		struct lazy_range r = m->r[i];
		uint64_t from = r.img > cstart ? r.img : cstart;
		uint64_t to = r.img + (r.end - r.start) < cend ? r.img + (r.end - r.start) : cend;
		if (from >= to)
			continue;
		uint64_t at = r.start + (from - r.img);
		int ret = copy_in(s, m, at, s->buf + (from - s->buf_vaddr), to - from);
		if (ret)
			return ret;
		if ((ret = cut_range(m, at, at + (to - from))))
			return ret;
		i = (size_t)-1; /* the table changed: again from the start */
	}
	return 0;
}

/* Load the chunk of pending range r of m and fill it in every process
 * that misses it (a forked child reads the same image). */
static int fill_chunk(struct server *s, struct lazy_mm *m, const struct lazy_range *r,
		      uint64_t addr, int wide)
{
	const struct rst_task *t = &s->c->tasks[m->task];
	const struct page_chunk *ch = chunk_of(t, r->img + (addr - r->start));
	const struct page_chunk *first, *last, *end = t->chunks + t->nr_chunks;
	int ret;

	if (!ch) /* not from this image: cannot happen, ranges come from chunks */
		return cut_range(m, r->start, r->end);
	block_bounds(t, ch, &first, &last);
	while (last + 1 < end && (same_block(first, last + 1) ||
				  (wide && chunk_end(last + 1) - first->vaddr <= STREAM_SPAN)))
		last++;
	if ((ret = load_chunk(s, m, first, (size_t)(last - first) + 1, wide ? STREAM_THREADS : 1)))
		return ret;
	uint64_t from = first->vaddr, to = chunk_end(last);
	ret = fill_from_buf(s, m, from, to);
	for (size_t i = 0; !ret && i < s->nr_mms; i++)
		if (&s->mms[i] != m && s->mms[i].task == m->task && s->mms[i].uffd >= 0 &&
		    fill_from_buf(s, &s->mms[i], from, to) == -ESRCH)
			s->mms[i].n = 0;
	return ret;
}

static void wake(struct lazy_mm *m, uint64_t addr)
{
	struct uffdio_range r = { .start = addr, .len = PAGE };
	ioctl(m->uffd, UFFDIO_WAKE, &r);
}

/* 0: answered; -EAGAIN: try again after the events. */
static int answer_fault(struct server *s, struct lazy_mm *m, uint64_t addr)
{
	struct lazy_range *r = range_at(m, addr);
	int ret;

	s->nr_faults++;
	if (r) {
		ret = fill_chunk(s, m, r, addr, 0);
	} else {
		/* never dumped, dropped or already in: zero unless present */
		struct uffdio_zeropage z = { .range = { .start = addr, .len = PAGE } };
		ret = ioctl(m->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
		if (ret == -EEXIST || ret == -ENOENT)
			ret = 0;
	}
	if (ret == -EAGAIN)
		return ret;
	wake(m, addr);
	return ret == -ESRCH ? 0 : ret;
}

static void retry_faults(struct server *s, struct lazy_mm *m)
{
	size_t n = m->nr_faults;
	m->nr_faults = 0;
	for (size_t i = 0; i < n; i++)
		if (answer_fault(s, m, m->faults[i]) == -EAGAIN)
			m->faults[m->nr_faults++] = m->faults[i];
}

/* ---- events ---- */

static struct lazy_mm *new_mm(struct server *s, int uffd, size_t task, pid_t host_pid)
{
	if (s->nr_mms == s->cap_mms) {
		size_t cap = s->cap_mms ? 2 * s->cap_mms : 16;
		struct lazy_mm *mms = realloc(s->mms, cap * sizeof(*mms));
		if (!mms)
			return NULL;
		s->mms = mms;
		s->cap_mms = cap;
	}
	struct lazy_mm *m = &s->mms[s->nr_mms++];
	memset(m, 0, sizeof(*m));
	m->uffd = uffd;
	m->task = task;
	m->host_pid = host_pid;
	return m;
}

static int on_fork(struct server *s, size_t parent, int uffd)
{
	struct lazy_mm *m = new_mm(s, uffd, s->mms[parent].task, 0);
	struct lazy_mm *p = &s->mms[parent];
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++)
		if (add_range(m, p->r[i].start, p->r[i].end, p->r[i].img))
			return -ENOMEM;
	return 0;
}

static int on_event(struct server *s, size_t idx, const struct uffd_msg *msg)
{
	struct lazy_mm *m = &s->mms[idx];

	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT: {
		uint64_t addr = msg->arg.pagefault.address & ~(PAGE - 1);
		if (answer_fault(s, m, addr) == -EAGAIN && m->nr_faults < MAX_FAULTS)
			m->faults[m->nr_faults++] = addr;
		return 0;
	}
	case UFFD_EVENT_FORK:
		return on_fork(s, idx, (int)msg->arg.fork.ufd);
	case UFFD_EVENT_REMAP:
		return move_range(m, msg->arg.remap.from, msg->arg.remap.to, msg->arg.remap.len);
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		return cut_range(m, msg->arg.remove.start, msg->arg.remove.end);
	default:
		return 0;
	}
}

static int read_events(struct server *s, size_t idx)
{
	struct uffd_msg msg;
	for (;;) {
		ssize_t n = read(s->mms[idx].uffd, &msg, sizeof(msg));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(msg))
			return 0; /* EAGAIN: all read */
		int ret = on_event(s, idx, &msg);
		if (ret)
			return ret;
	}
}

/* One restored process's uffd (struct rst_lazy). 0; 1 at EOF: every
 * process sent its own (or died). */
static int receive_uffd(struct server *s)
{
	struct rst_lazy msg;
	struct iovec iov = { &msg, sizeof(msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	int uffd = -1;
	pid_t host_pid = 0;

	ssize_t n = recvmsg(s->sock, &h, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return 1;
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
		if (c->cmsg_type == SCM_RIGHTS)
			memcpy(&uffd, CMSG_DATA(c), sizeof(uffd));
		if (c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cr;
			memcpy(&cr, CMSG_DATA(c), sizeof(cr));
			host_pid = cr.pid;
		}
	}
	for (size_t i = 0; uffd >= 0 && n == sizeof(msg) && msg.tag == 'U' && i < s->c->nr_tasks; i++) {
		const struct rst_task *t = &s->c->tasks[i];
		if (t->te->pid != (uint32_t)msg.pid || !t->mm)
			continue;
		struct lazy_mm *m = new_mm(s, uffd, i, host_pid);
		if (!m)
			return -ENOMEM;
		for (size_t k = 0; k < t->nr_chunks; k++) {
			const struct page_chunk *ch = &t->chunks[k];
			for (size_t v = 0; v < t->mm->n_vmas; v++) {
				const VmaEntry *e = t->mm->vmas[v];
				if (e->start <= ch->vaddr && ch->vaddr < e->end && restore_mem_vma_lazy(e) &&
				    add_range(m, ch->vaddr, ch->vaddr + (uint64_t)ch->nr_pages * PAGE,
					      ch->vaddr))
					return -ENOMEM;
			}
		}
		return 0;
	}
	pr_err("lazy restore: a message from pid %d that is not a restored process's", host_pid);
	if (uffd >= 0)
		close(uffd);
	return 0;
}

/* ---- the loop ---- */

static void kill_descendants_of(pid_t pid)
{
	pid_t *kids;
	size_t n = 0;
	if (pid <= 0 || proc_children(pid, &kids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		kill_descendants_of(kids[i]);
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	}
	free(kids);
}

/* The tree's state can no longer be exact: all of it goes. */
static void kill_tree(struct server *s)
{
	if (watch_done)
		*watch_done = 1; /* said once, here */
	for (size_t i = 0; i < s->nr_mms; i++)
		if (s->mms[i].host_pid > 0)
			kill(s->mms[i].host_pid, SIGKILL);
	kill_descendants_of(s->root);
	if (s->root > 0)
		kill(s->root, SIGKILL);
}

/* Close and forget the uffds that have nothing left to fill. */
static void drop_done(struct server *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->nr_mms; i++) {
		struct lazy_mm *m = &s->mms[i];
		if (m->n || m->nr_faults) {
			s->mms[k++] = *m;
			continue;
		}
		close(m->uffd);
		free(m->r);
	}
	s->nr_mms = k;
}

/* Background: one chunk of the first process that still misses pages. */
static int stream_one(struct server *s)
{
	/* the test's fault: the server killed (the OOM killer, an admin) */
	if (ckpt_test_fault("lazy-die") && s->released)
		raise(SIGKILL);
	/* the test's slow storage: nothing streamed for the first 2 s the
	 * tree runs (faults are still served) */
	static uint64_t slow_until;
	if (ckpt_test_fault("lazy-slow") && s->released) {
		if (!slow_until)
			slow_until = now_ns() + 2000000000ull;
		if (now_ns() < slow_until) {
			nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
			return 0;
		}
	}
	for (size_t i = 0; i < s->nr_mms; i++) {
		struct lazy_mm *m = &s->mms[i];
		if (!m->n)
			continue;
		struct lazy_range r = m->r[m->n - 1];
		int ret = fill_chunk(s, m, &r, r.start, 1);
		if (ret == -ESRCH)
			m->n = 0; /* the process is gone */
		return ret == -ESRCH || ret == -EAGAIN ? 0 : ret;
	}
	return 0;
}

/*
 * The driver's word on go_r: a byte once the tree runs; EOF without one
 * when the restore failed (it kills the tree and says why itself) or the
 * driver died before the tree ran.
 */
static int restore_went_on(int go_r)
{
	char b;
	ssize_t n;
	while ((n = read(go_r, &b, 1)) < 0 && errno == EINTR)
		;
	return n == 1;
}

static int serve(struct server *s)
{
	int sock_open = 1;
	struct pollfd *pfd = NULL;
	size_t cap = 0;

	while (sock_open || s->nr_mms) {
		int work = 0;
		if (cap < s->nr_mms + 1) {
			cap = 2 * (s->nr_mms + 1);
			struct pollfd *p = realloc(pfd, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			pfd = p;
		}
		pfd[0] = (struct pollfd){ .fd = sock_open ? s->sock : s->go_r, .events = POLLIN };
		for (size_t i = 0; i < s->nr_mms; i++) {
			pfd[i + 1] = (struct pollfd){ .fd = s->mms[i].uffd, .events = POLLIN };
			/* streaming waits for the tree to run: until then it
			 * would only take the CPUs the restore needs */
			work |= s->released && s->mms[i].n != 0;
		}
		size_t nr = s->nr_mms;
		int n = poll(pfd, nr + 1, work ? 0 : 1000);
		if (n < 0 && errno != EINTR)
			return -errno;
		int ret = 0;
		if (n > 0 && !sock_open && (pfd[0].revents & (POLLIN | POLLHUP))) {
			if (!restore_went_on(s->go_r))
				return -ECANCELED;
			close(s->go_r); /* the tree runs */
			s->go_r = -1;
			s->released = 1;
			watch_done[1] = 1; /* the watchdog's go_r is no longer ours */
		} else if (n > 0 && (pfd[0].revents & (POLLIN | POLLHUP))) {
			ret = receive_uffd(s);
			if (ret == 1)
				sock_open = 0, ret = 0;
		}
		for (size_t i = 0; !ret && n > 0 && i < nr; i++)
			if (pfd[i + 1].revents & POLLIN)
				ret = read_events(s, i);
		for (size_t i = 0; !ret && i < s->nr_mms; i++)
			if (s->mms[i].nr_faults)
				retry_faults(s, &s->mms[i]);
		if (!ret && n == 0)
			ret = stream_one(s);
		if (ret)
			return ret;
		drop_done(s);
	}
	free(pfd);
	return 0;
}

/* ---- the watchdog ----
 *
 * When the server dies, its uffds close, the kernel unregisters their
 * ranges, and a page not filled yet reads as zeros: the job would run on
 * with a zeroed heap, the worst kind of difference.  So the server runs
 * as the child of a watchdog that shares its fd table (CLONE_FILES):
 * while the watchdog lives the uffds stay open (a touched missing page
 * waits), and when the server dies without having said it is done (a
 * word in shared memory), it SIGKILLs the tree.  It then exits with the
 * server's status.  The watchdog is the process the driver forked and
 * waits for, so that when the restore returns, neither is left (a
 * watchdog that was the server's child outlived a failed restore by a
 * moment: a process left behind).  It starts before the server makes any
 * thread. */
static _Noreturn void watch(pid_t server, pid_t root)
{
	int ws = 0;
	prctl(PR_SET_NAME, "ckpt-lazy-watch");
	while (waitpid(server, &ws, 0) < 0 && errno == EINTR)
		;
	/* the server killed with the failed restore, before it read the
	 * driver's EOF on the shared go_r: the restore says why */
	int failed = !watch_done[1] && watch_go_r >= 0 &&
		     poll(&(struct pollfd){ .fd = watch_go_r, .events = POLLIN }, 1, 0) == 1 &&
		     !restore_went_on(watch_go_r);
	if (failed) {
		kill_descendants_of(root);
		if (root > 0)
			kill(root, SIGKILL);
	} else if (!*watch_done) {
		pr_err("lazy restore: the page server (pid %d) died before every page was in: "
		       "killing the restored tree (pid %d)", server, root);
		kill_descendants_of(root);
		if (root > 0)
			kill(root, SIGKILL);
	}
	_exit(WIFEXITED(ws) && *watch_done ? WEXITSTATUS(ws) : 1);
}

/* Returns in the server, the watchdog's child. */
static int start_watchdog(pid_t root)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	watch_done = m;
	/* like fork(), with the fd table shared */
	long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		return -errno;
	if (pid > 0)
		watch((pid_t)pid, root);
	return 0;
}

pid_t lazy_serve_start(struct restore_ctx *c, int sock, int go_r, pid_t root, uint64_t t0,
		       int report)
{
	int one = 1;
	if (setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one))) {
		pr_err("lazy restore: SO_PASSCRED: %s", strerror(errno));
		return -errno;
	}
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	/* the server: nothing of the driver's but the images and the socket;
	 * not its attachments of the job's System V segments either, which
	 * the job would see in their shm_nattch */
	restore_shm_detach();
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "ckpt-lazy"); /* what ps shows, and cr-run looks for */
	int keep[] = { c->notify_r, c->release_w, c->step_go_w, c->log_fd, c->lazy_go };
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (keep[i] >= 0 && keep[i] != STDERR_FILENO)
			close(keep[i]);
	struct server s = { .c = c, .sock = sock, .root = root, .t0 = t0, .report = report,
			    .go_r = go_r };
	watch_go_r = go_r;
	int ret = start_watchdog(root);
	if (ret)
		pr_err("lazy restore: no watchdog: %s", strerror(-ret));
	else
		ret = serve(&s);
	if (ret == -ECANCELED) {
		kill_tree(&s); /* the restore failed: it says why */
		_exit(1);
	}
	if (ret) {
		pr_err("lazy restore: page server: %s; killing the restored tree", strerror(-ret));
		kill_tree(&s);
		_exit(1);
	}
	*watch_done = 1;
	if (report)
		fprintf(stderr, "lazy_streamed_ms: %.1f\nlazy_bytes: %" PRIu64 "\nlazy_faults: %" PRIu64 "\n",
			(double)(now_ns() - t0) / 1e6, s.bytes, s.nr_faults);
	_exit(0);
}
