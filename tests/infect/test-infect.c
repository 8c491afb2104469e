/*
 * test-infect: freeze + infect + cure, end to end, against infect-target.
 *
 *   test-infect PATH_TO_INFECT_TARGET
 *
 * 1. refusals: pid 1, pid 2 (kthreadd), a pid that does not exist, the
 *    caller and its parent each fail with one line on stderr;
 * 2. the target tree (target + its child) is frozen: BFS order, ppids,
 *    four threads with the leader blocked in read();
 * 3. twice: infect, every query checked against what the target wrote
 *    about itself, cure; after the cure the registers, fds and maps of the
 *    task are exactly what freeze_tree() saw;
 *    a SIGUSR1 sent to the task while infected is delivered once, later;
 * 4. resume, "go1" down the pipe: the target checks itself and exits 0;
 * 5. UNFREEZE_LEAVE_STOPPED and UNFREEZE_KILL on a sleep(1) process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <asm/unistd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "freeze.h"
#include "infect.h"

static pid_t target;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			if (target > 0)                                        \
				kill(target, SIGKILL);                         \
			fprintf(stderr, "test-infect:%d: FAIL: ", __LINE__);   \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

static char expect_path[] = "/tmp/infect-expect-XXXXXX";

/* freeze_tree(pid) must fail and print exactly one line naming pid. */
static void check_refusal(pid_t pid)
{
	char path[] = "/tmp/infect-err-XXXXXX", buf[1024] = "", name[32];
	int fd = mkstemp(path), saved = dup(2);
	struct frozen_tree tree;
	dup2(fd, 2);
	int ret = freeze_tree(pid, &tree);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	snprintf(name, sizeof(name), "pid %d", pid);
	CHECK(ret < 0, "freeze_tree(%d) succeeded", pid);
	CHECK(strchr(buf, '\n') && !strchr(buf, '\n')[1], "pid %d: not one line: '%s'", pid, buf);
	CHECK(strstr(buf, name), "pid %d: message does not name it: %s", pid, buf);
	printf("refused: %s", buf);
}

static pid_t free_pid(void)
{
	for (pid_t p = 4000000; p > 1000; p -= 7) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d", p);
		if (access(path, F_OK))
			return p;
	}
	return 99999;
}

static char *read_text(const char *path)
{
	static char bufs[4][65536];
	static int next;
	char *buf = bufs[next++ % 4];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, 65535, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	return buf;
}

static char *fd_list(pid_t pid)
{
	static char buf[4096];
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | sort -n | tr '\\n' ' '", pid);
	FILE *p = popen(cmd, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	return strdup(buf);
}

static void check_sigactions(struct infect_ctl *ctl)
{
	struct parasite_sigaction sa[64];
	char line[256];
	CHECK(infect_get_sigactions(ctl, sa) == 0, "get_sigactions");
	FILE *f = fopen(expect_path, "r");
	int checked = 0;
	while (fgets(line, sizeof(line), f)) {
		int sig;
		unsigned long h, fl, r, m;
		if (sscanf(line, "sig %d %lx %lx %lx %lx", &sig, &h, &fl, &r, &m) != 5)
			continue;
		const struct parasite_sigaction *s = &sa[sig - 1];
		CHECK(s->handler == h && s->flags == fl && s->restorer == r && s->mask == m,
		      "signal %d: got %lx %lx %lx %lx want %lx %lx %lx %lx", sig, s->handler,
		      s->flags, s->restorer, s->mask, h, fl, r, m);
		checked++;
	}
	fclose(f);
	CHECK(checked == 62, "expect file has %d sigactions", checked);
	CHECK(sa[SIGUSR1 - 1].handler > 1 && (sa[SIGUSR1 - 1].flags & SA_RESTART),
	      "SIGUSR1 handler not seen");
	CHECK(sa[SIGKILL - 1].handler == 0 && sa[SIGSTOP - 1].handler == 0, "SIGKILL/STOP not zero");
}

static void check_misc_and_threads(struct infect_ctl *ctl, const struct frozen_task *t)
{
	struct parasite_misc misc;
	char line[256];
	CHECK(infect_get_misc(ctl, &misc) == 0, "get_misc");
	FILE *f = fopen(expect_path, "r");
	int threads = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long brk, addr, sp, size;
		int pdeath, tid;
		unsigned flags;
		if (sscanf(line, "misc %lx %d", &brk, &pdeath) == 2) {
			CHECK(misc.brk == brk && misc.pdeathsig == (uint64_t)pdeath,
			      "misc: got brk %lx pdeathsig %lu", misc.brk, misc.pdeathsig);
			continue;
		}
		if (sscanf(line, "thread %d %lx %lx %lx %x", &tid, &addr, &sp, &size, &flags) != 5)
			continue;
		int idx = -1;
		for (int i = 0; i < t->nr_threads; i++)
			if (t->threads[i].tid == tid)
				idx = i;
		CHECK(idx >= 0, "thread %d not frozen", tid);
		uint64_t got, gsp, gsize;
		uint32_t gflags;
		CHECK(infect_get_tid_address(ctl, idx, &got) == 0, "tid address of %d", tid);
		CHECK(got == addr, "tid %d: tid address %lx want %lx", tid, got, addr);
		CHECK(infect_get_sigaltstack(ctl, idx, &gsp, &gsize, &gflags) == 0, "altstack %d", tid);
		CHECK(gsp == sp && gsize == size && gflags == flags,
		      "tid %d: altstack %lx %lx %x want %lx %lx %x", tid, gsp, gsize, gflags, sp, size,
		      flags);
		threads++;
	}
	fclose(f);
	CHECK(threads == 3, "%d threads checked", threads);
}

/* After the cure every thread must have exactly its frozen registers. */
static void check_regs_back(const struct frozen_task *t)
{
	for (int i = 0; i < t->nr_threads; i++) {
		struct user_regs_struct r;
		uint64_t mask;
		CHECK(ptrace(PTRACE_GETREGS, t->threads[i].tid, 0, &r) == 0, "getregs");
		CHECK(!memcmp(&r, &t->threads[i].regs, sizeof(r)), "tid %d: registers differ (rip %llx/%llx)",
		      t->threads[i].tid, r.rip, t->threads[i].regs.rip);
		CHECK(ptrace(PTRACE_GETSIGMASK, t->threads[i].tid, (void *)8, &mask) == 0, "getsigmask");
		CHECK(mask == t->threads[i].sigmask, "tid %d: sigmask differs", t->threads[i].tid);
	}
}

/* The 16 KiB below the leader's stack pointer (infect borrows some). */
static void read_below_stack(const struct frozen_task *t, uint8_t *buf, size_t len)
{
	struct iovec local = { buf, len };
	struct iovec remote = { (void *)(t->threads[0].regs.rsp - len), len };
	CHECK(process_vm_readv(t->pid, &local, 1, &remote, 1, 0) == (ssize_t)len, "read stack");
}

/*
 * full: the task is infect-target's leader process (else its child).
 * A SIGUSR1 sent while infected must stay pending (delivered later).
 */
static void infect_round(const struct frozen_task *t, int full, int send_usr1)
{
	static uint8_t stack_before[16384], stack_after[16384];
	char maps_path[64];
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", t->pid);
	char *maps = strdup(read_text(maps_path)), *fds = fd_list(t->pid);
	struct infect_ctl *ctl;
	read_below_stack(t, stack_before, sizeof(stack_before));
	CHECK(infect_start(t, &ctl) == 0, "infect_start");
	if (send_usr1)
		kill(t->pid, SIGUSR1);
	check_sigactions(ctl);
	if (full) {
		check_misc_and_threads(ctl, t);
	} else {
		uint64_t addr;
		CHECK(infect_get_tid_address(ctl, 0, &addr) == 0 && addr, "child tid address");
	}
	CHECK(infect_cure(ctl) == 0, "infect_cure");
	check_regs_back(t);
	read_below_stack(t, stack_after, sizeof(stack_after));
	CHECK(!memcmp(stack_before, stack_after, sizeof(stack_before)), "stack bytes not put back");
	CHECK(!strcmp(maps, read_text(maps_path)), "maps changed by infect+cure");
	char *after = fd_list(t->pid);
	CHECK(!strcmp(fds, after), "fds changed: %s -> %s", fds, after);
	free(maps);
	free(fds);
	free(after);
}

static char state_of(pid_t pid)
{
	char path[64], *s;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	s = strrchr(read_text(path), ')');
	return s ? s[2] : '?';
}

static void check_unfreeze_modes(void)
{
	pid_t p = fork();
	if (p == 0) {
		execlp("sleep", "sleep", "100", NULL);
		_exit(127);
	}
	usleep(100 * 1000);
	struct frozen_tree tree;
	CHECK(freeze_tree(p, &tree) == 0, "freeze sleep");
	unfreeze_tree(&tree, UNFREEZE_LEAVE_STOPPED);
	CHECK(state_of(p) == 'T', "LEAVE_STOPPED: state %c", state_of(p));
	frozen_tree_free(&tree);
	/* A stopped task is frozen, marked stopped, and stays stopped. */
	CHECK(freeze_tree(p, &tree) == 0, "freeze stopped sleep");
	CHECK(tree.tasks[0].stopped, "stopped sleep not marked stopped");
	unfreeze_tree(&tree, UNFREEZE_RESUME);
	frozen_tree_free(&tree);
	usleep(50 * 1000);
	CHECK(state_of(p) == 'T', "stopped sleep after unfreeze: state %c", state_of(p));
	kill(p, SIGCONT);
	usleep(50 * 1000);
	CHECK(freeze_tree(p, &tree) == 0, "freeze sleep again");
	unfreeze_tree(&tree, UNFREEZE_KILL);
	frozen_tree_free(&tree);
	int status;
	CHECK(waitpid(p, &status, 0) == p && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "UNFREEZE_KILL: status %x", status);
}

int main(int argc, char **argv)
{
	int ready[2], ctl[2], status;
	CHECK(argc == 2, "usage: test-infect PATH_TO_INFECT_TARGET");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setvbuf(stdout, NULL, _IONBF, 0);

	check_refusal(1);
	check_refusal(2);
	check_refusal(free_pid());
	check_refusal(getpid());
	check_refusal(getppid());

	close(mkstemp(expect_path));
	CHECK(pipe(ready) == 0 && pipe(ctl) == 0, "pipe");
	pid_t pid = target = fork();
	if (pid == 0) {
		char r[16], c[16];
		close(ready[0]);
		close(ctl[1]);
		snprintf(r, sizeof(r), "%d", ready[1]);
		snprintf(c, sizeof(c), "%d", ctl[0]);
		execl(argv[1], argv[1], r, c, expect_path, NULL);
		_exit(127);
	}
	close(ready[1]);
	close(ctl[0]);
	char b;
	CHECK(read(ready[0], &b, 1) == 1, "target did not get ready");
	usleep(100 * 1000); /* let the leader block in read() */

	struct frozen_tree tree;
	CHECK(freeze_tree(pid, &tree) == 0, "freeze_tree");
	CHECK(tree.nr_tasks == 2, "%d tasks", tree.nr_tasks);
	CHECK(tree.tasks[0].pid == pid && tree.tasks[0].ppid == 0, "root");
	CHECK(tree.tasks[1].ppid == pid, "child ppid %d", tree.tasks[1].ppid);
	CHECK(tree.tasks[0].nr_threads == 3, "%d threads", tree.tasks[0].nr_threads);
	CHECK(!strcmp(tree.tasks[0].comm, "infect-target"), "comm %s", tree.tasks[0].comm);
	const struct thread_regs *lead = &tree.tasks[0].threads[0];
	CHECK(lead->tid == pid && lead->regs.orig_rax == __NR_read &&
	      (long)lead->regs.rax == -512, "leader not in read(): orig_rax %lld rax %lld",
	      lead->regs.orig_rax, lead->regs.rax);
	printf("frozen: %d tasks, %d threads, xstate %zu bytes\n", tree.nr_tasks,
	       tree.tasks[0].nr_threads, lead->xstate_len);

	infect_round(&tree.tasks[0], 1, 1);
	infect_round(&tree.tasks[0], 1, 0);
	infect_round(&tree.tasks[1], 0, 0);
	printf("infect/cure: ok\n");

	unfreeze_tree(&tree, UNFREEZE_RESUME);
	frozen_tree_free(&tree);
	usleep(300 * 1000); /* the sleeper must complete sleeps across the freeze */
	CHECK(write(ctl[1], "go1", 3) == 3, "write go");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "target failed: status %x", status);

	check_unfreeze_modes();
	unlink(expect_path);
	printf("test-infect: PASS\n");
	return 0;
}
