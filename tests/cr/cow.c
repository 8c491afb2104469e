/*
 * cr_cow: pages a forked child shares copy-on-write with its parent are
 * shared again after a restore, and each process still sees its own data.
 *
 * The parent fills an anonymous private mapping `anon` and a private
 * mapping `priv` of a file, then forks a child, which forks a grandchild.
 * Afterwards each side writes some pages (anon: A_*, priv: F_*):
 *   A_SHARED   written before the fork only: shared by all three
 *   A_CHILD    the child writes its own data
 *   A_PARENT   the parent writes its own data
 *   A_CZERO    the child clears it: zero in the child, data in the parent
 *   A_UNTOUCHED never written: zero
 *   A_CONLY    written by the child only
 *   F_FILE     never written: the file's bytes
 *   F_SHARED   written before the fork: a shared anonymous copy
 *   F_CZERO    written before the fork, cleared by the child
 *   F_ZERO     cleared before the fork: zero, not the file's bytes
 *   F_CHILD    written by the child only
 * After the restore every process checks its bytes, and the parent checks
 * with /proc/PID/pagemap (root sees page frame numbers) that the
 * A_SHARED, F_SHARED and F_ZERO pages are one page in all three.
 */
#include "crlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
enum { A_SHARED, A_CHILD, A_PARENT, A_CZERO, A_UNTOUCHED, A_CONLY, A_PAGES };
enum { F_FILE, F_SHARED, F_CZERO, F_ZERO, F_CHILD, F_PAGES };
enum { WHO_PARENT, WHO_CHILD, WHO_GRANDCHILD };

static unsigned char *anon, *priv;

static void fill(unsigned char *page, int seed)
{
	for (int i = 0; i < PAGE; i++)
		page[i] = (unsigned char)(seed * 37 + i * 7 + (i >> 8));
}

static int is_fill(const unsigned char *page, int seed)
{
	for (int i = 0; i < PAGE; i++)
		if (page[i] != (unsigned char)(seed * 37 + i * 7 + (i >> 8)))
			return 0;
	return 1;
}

static int is_zero(const unsigned char *page)
{
	for (int i = 0; i < PAGE; i++)
		if (page[i])
			return 0;
	return 1;
}

static void setup_file(void)
{
	char path[PATH_MAX];
	unsigned char page[PAGE];
	int fd;

	test_path(path, "priv.bin");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0, "creating %s", path);
	for (int i = 0; i < F_PAGES; i++) {
		fill(page, 100 + i);
		CHECK_SYS(write_full(fd, page, PAGE) == PAGE, "writing %s", path);
	}
	priv = mmap(NULL, F_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(priv != MAP_FAILED, "mmap %s", path);
	close(fd);
}

static void before_fork(void)
{
	anon = mmap(NULL, A_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	CHECK_SYS(anon != MAP_FAILED, "mmap");
	for (int i = A_SHARED; i <= A_CZERO; i++)
		fill(anon + i * PAGE, 1 + i);
	setup_file();
	fill(priv + F_SHARED * PAGE, 200);
	fill(priv + F_CZERO * PAGE, 201);
	memset(priv + F_ZERO * PAGE, 0, PAGE);
}

static void child_writes(void)
{
	fill(anon + A_CHILD * PAGE, 50);
	memset(anon + A_CZERO * PAGE, 0, PAGE);
	fill(anon + A_CONLY * PAGE, 51);
	memset(priv + F_CZERO * PAGE, 0, PAGE);
	fill(priv + F_CHILD * PAGE, 52);
}

#define EXPECT(cond, what) CHECK(cond, "%s: %s", who_name, what)

static void check_bytes(int who)
{
	const char *who_name = who == WHO_PARENT ? "parent" : who == WHO_CHILD ? "child" : "grandchild";
	int parent = who == WHO_PARENT;

	EXPECT(is_fill(anon + A_SHARED * PAGE, 1 + A_SHARED), "A_SHARED");
	EXPECT(is_fill(anon + A_CHILD * PAGE, parent ? 1 + A_CHILD : 50), "A_CHILD");
	EXPECT(is_fill(anon + A_PARENT * PAGE, parent ? 60 : 1 + A_PARENT), "A_PARENT");
	EXPECT(parent ? is_fill(anon + A_CZERO * PAGE, 1 + A_CZERO) : is_zero(anon + A_CZERO * PAGE),
	       "A_CZERO");
	EXPECT(is_zero(anon + A_UNTOUCHED * PAGE), "A_UNTOUCHED");
	EXPECT(parent ? is_zero(anon + A_CONLY * PAGE) : is_fill(anon + A_CONLY * PAGE, 51),
	       "A_CONLY");
	EXPECT(is_fill(priv + F_FILE * PAGE, 100 + F_FILE), "F_FILE");
	EXPECT(is_fill(priv + F_SHARED * PAGE, 200), "F_SHARED");
	EXPECT(parent ? is_fill(priv + F_CZERO * PAGE, 201) : is_zero(priv + F_CZERO * PAGE),
	       "F_CZERO");
	EXPECT(is_zero(priv + F_ZERO * PAGE), "F_ZERO (the file's bytes came back?)");
	EXPECT(is_fill(priv + F_CHILD * PAGE, parent ? 100 + F_CHILD : 52), "F_CHILD");
}

/* Page frame number of addr in pid, 0 if not present. */
static uint64_t pfn(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t e = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	CHECK_SYS(fd >= 0, "open %s", path);
	CHECK_SYS(pread(fd, &e, 8, (off_t)((uintptr_t)addr / PAGE * 8)) == 8, "read %s", path);
	close(fd);
	return (e >> 63) ? e & ((1ULL << 55) - 1) : 0;
}

static void check_shared(pid_t child, pid_t grandchild)
{
	const struct {
		const unsigned char *addr;
		const char *name;
		int grandchild_too;
	} pages[] = {
		{ anon + A_SHARED * PAGE, "A_SHARED", 1 },
		{ priv + F_SHARED * PAGE, "F_SHARED", 1 },
		{ priv + F_ZERO * PAGE, "F_ZERO", 1 },
	};

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		uint64_t mine = pfn(getpid(), pages[i].addr), theirs = pfn(child, pages[i].addr);
		CHECK(mine, "%s: no page frame number (not root?)", pages[i].name);
		CHECK(mine == theirs, "%s: not shared with the child (pfn %#llx, child %#llx)",
		      pages[i].name, (unsigned long long)mine, (unsigned long long)theirs);
		theirs = pfn(grandchild, pages[i].addr);
		CHECK(mine == theirs, "%s: not shared with the grandchild (pfn %#llx, %#llx)",
		      pages[i].name, (unsigned long long)mine, (unsigned long long)theirs);
	}
}

/* Child and grandchild: wait for SIGUSR1, check, exit 0 (1 from fail()). */
static _Noreturn void wait_and_check(int who, pid_t kid)
{
	sigset_t usr1;
	int st;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	while (sigwaitinfo(&usr1, NULL) < 0)
		;
	check_bytes(who);
	if (kid > 0) {
		kill(kid, SIGUSR1);
		CHECK_SYS(waitpid(kid, &st, 0) == kid, "waitpid grandchild");
		CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "the grandchild failed its check");
	}
	_exit(0);
}

int main(void)
{
	int pids[2], st;
	pid_t child, grandchild = 0;
	sigset_t usr1;

	test_init();
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	before_fork();
	CHECK_SYS(!pipe(pids), "pipe");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (!child) {
		child_writes();
		grandchild = fork();
		CHECK_SYS(grandchild >= 0, "fork");
		if (!grandchild)
			wait_and_check(WHO_GRANDCHILD, 0);
		CHECK_SYS(write_full(pids[1], &grandchild, sizeof(grandchild)) == sizeof(grandchild),
			  "pipe");
		wait_and_check(WHO_CHILD, grandchild);
	}
	CHECK_SYS(read_full(pids[0], &grandchild, sizeof(grandchild)) == sizeof(grandchild), "pipe");
	close(pids[0]);
	close(pids[1]);
	fill(anon + A_PARENT * PAGE, 60);
	check_shared(child, grandchild); /* the test's own premise, before the dump */
	test_ready();
	test_wait_check();
	check_bytes(WHO_PARENT);
	check_shared(child, grandchild);
	kill(child, SIGUSR1);
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid child");
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "the child failed its check");
	pass();
}
