/*
 * `ckptctl demo`: checkpoint a running program, kill it, restore it, and
 * show that it continues from where it stopped.
 *
 * The program is ckpt-counter (examples/counter.c), which prints one
 * numbered line every 0.3 s into a log file in a temp directory.  The demo
 * drives ckptctl itself -- `ckptctl dump` and `ckptctl restore` run as
 * child processes (/proc/self/exe), exactly the commands a user would
 * type -- and reads the log to check the result: the first line after the
 * restore must be the one after the last line before the dump, with the
 * counter's memory intact.  Exit 0 when it is, 1 otherwise.
 *
 * We are a child subreaper: the restored counter is re-parented to us when
 * `ckptctl restore -d` exits, so we can kill and reap it ourselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"

#define COUNT_SECONDS 2
#define SHOW_LINES 5

struct demo {
	char dir[64];		/* temp directory holding everything below */
	char log[PATH_MAX];	/* the counter's stdout and stderr */
	char images[PATH_MAX];	/* the checkpoint */
	char pidfile[PATH_MAX]; /* written by restore --pidfile */
	pid_t counter;		/* the running counter, 0 when none */
	int keep;		/* --keep: leave the temp directory */
};

/* What the log says: counts of the lines from a byte offset on. */
struct log_summary {
	long first, last; /* first and last count seen, 0 if none */
	int lines, gaps;  /* gaps: a count that is not previous + 1 */
	int corrupt;	  /* the counter reported a checksum mismatch */
	long end;	  /* file size, the offset for the next look */
};

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Sleep, but come back early on Ctrl-C so we can clean up. */
static void pause_seconds(int seconds)
{
	struct timespec step = { 0, 100 * 1000 * 1000 };

	for (int i = 0; i < seconds * 10 && !interrupted; i++)
		nanosleep(&step, NULL);
}

static int is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* $CKPT_COUNTER, else next to our own binary: installed
 * (<prefix>/bin/ckptctl -> <prefix>/libexec/ckpt/ckpt-counter) or in the
 * build tree (build/cli/ckptctl -> build/examples/ckpt-counter). */
static int find_counter(char *out, size_t len)
{
	static const char *const rel[] = { "../libexec/ckpt/ckpt-counter",
					   "../examples/ckpt-counter" };
	const char *env = getenv("CKPT_COUNTER");
	char self[PATH_MAX - 64]; /* room left in out[] for rel[] */
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		if (is_executable(out))
			return 0;
		fprintf(stderr, "demo: CKPT_COUNTER=%s: not an executable file\n", env);
		return -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", self, rel[i]);
		if (is_executable(path) && realpath(path, out))
			return 0;
	}
	fprintf(stderr,
		"demo: ckpt-counter not found in %s/../libexec/ckpt or "
		"%s/../examples; set CKPT_COUNTER=/path/to/ckpt-counter\n",
		self, self);
	return -ENOENT;
}

/* The counter runs in its own session (no terminal, so Ctrl-C does not
 * reach it and nothing ties it to ours), stdin from /dev/null, stdout and
 * stderr appended to the log: files, which ckpt can checkpoint, and no
 * other fd. */
static pid_t start_counter(const char *path, const char *log)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int in = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (in < 0 || out < 0 || setsid() < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(out, 2) < 0)
		_exit(127);
	/* Nothing else of ours: an inherited pipe to a process outside the
	 * tree (a CI runner's, a shell's) would make the dump refuse it. */
	close_range(3, ~0U, 0);
	execl(path, "ckpt-counter", (char *)NULL);
	_exit(127);
}

/* Run `ckptctl ARGS...` (our own binary).  0 when it exits 0; otherwise
 * -1, after one line saying how it ended. */
static int run_ckptctl(char *const args[], double *ms)
{
	double start = now_ms();
	int status;
	pid_t pid;

	printf("    $ ckptctl");
	for (int i = 1; args[i]; i++)
		printf(" %s", args[i]);
	printf("\n");
	fflush(stdout);

	pid = fork();
	if (pid < 0) {
		printf("demo: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execv("/proc/self/exe", args);
		fprintf(stderr, "demo: exec /proc/self/exe: %s\n", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	*ms = now_ms() - start;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		printf("demo: ckptctl %s was killed by signal %d (%s)\n", args[1], WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	else
		printf("demo: ckptctl %s failed (exit %d)\n", args[1], WEXITSTATUS(status));
	return -1;
}

/* Wait up to `seconds` for a child to exit; its wait status, or -1. */
static int reap(pid_t pid, int seconds)
{
	int status;

	for (int i = 0; i <= seconds * 20; i++) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid)
			return status;
		if (got < 0 && errno != EINTR)
			return -1;
		usleep(50 * 1000);
	}
	return -1;
}

/* Collect every child that is left (the restored tree was re-parented to
 * us), waiting a little for the ones we just killed. */
static void reap_all(void)
{
	for (int i = 0; i < 40; i++) {
		pid_t got = waitpid(-1, NULL, WNOHANG);
		if (got < 0 && errno == ECHILD)
			return;
		if (got <= 0)
			usleep(50 * 1000);
	}
}

/* Read the log from `from` on; print the last few lines when `show`. */
static void read_log(const char *log, long from, int show, struct log_summary *sum)
{
	char ring[SHOW_LINES][256], line[256];
	FILE *f = fopen(log, "r");
	long count, prev = 0;

	memset(sum, 0, sizeof(*sum));
	sum->end = from;
	if (!f)
		return;
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof(line), f)) {
		snprintf(ring[sum->lines % SHOW_LINES], sizeof(ring[0]), "%s", line);
		sum->lines++;
		if (strstr(line, "CORRUPT"))
			sum->corrupt = 1;
		if (sscanf(line, "count %ld", &count) != 1)
			continue;
		if (!sum->first)
			sum->first = count;
		else if (count != prev + 1)
			sum->gaps++;
		sum->last = prev = count;
	}
	sum->end = ftell(f);
	fclose(f);
	if (!show)
		return;
	if (sum->lines > SHOW_LINES)
		printf("    | ... (%d lines before)\n", sum->lines - SHOW_LINES);
	for (int i = sum->lines > SHOW_LINES ? sum->lines - SHOW_LINES : 0; i < sum->lines; i++)
		printf("    | %s", ring[i % SHOW_LINES]);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void clean_up(struct demo *d)
{
	if (d->counter > 0) {
		kill(d->counter, SIGKILL);
		reap(d->counter, 2);
		d->counter = 0;
	}
	reap_all();
	if (d->keep)
		printf("\nkept %s (counter.log, images/)\n", d->dir);
	else if (d->dir[0])
		nftw(d->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int prepare(struct demo *d, int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_interrupt };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-k") || !strcmp(argv[i], "--keep")) {
			d->keep = 1;
		} else {
			fprintf(stderr, "ckptctl: demo: unexpected argument '%s' (only -k, --keep)\n",
				argv[i]);
			return -EINVAL;
		}
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		fprintf(stderr, "demo: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return -errno;
	}
	snprintf(d->dir, sizeof(d->dir), "/tmp/ckpt-demo.XXXXXX");
	if (!mkdtemp(d->dir)) {
		fprintf(stderr, "demo: mkdtemp %s: %s\n", d->dir, strerror(errno));
		d->dir[0] = '\0';
		return -errno;
	}
	snprintf(d->log, sizeof(d->log), "%s/counter.log", d->dir);
	snprintf(d->images, sizeof(d->images), "%s/images", d->dir);
	snprintf(d->pidfile, sizeof(d->pidfile), "%s/restored.pid", d->dir);
	return 0;
}

/* Steps 1-2: start the counter and let it count. */
static int step_start(struct demo *d)
{
	char path[PATH_MAX];
	struct log_summary sum;

	if (find_counter(path, sizeof(path)))
		return -1;
	d->counter = start_counter(path, d->log);
	if (d->counter < 0) {
		fprintf(stderr, "demo: fork: %s\n", strerror(errno));
		return -1;
	}
	printf("[1/5] Start a program: %s (pid %d)\n", path, d->counter);
	printf("      It prints a count every 0.3 s to %s and checks its memory each step.\n",
	       d->log);
	pause_seconds(COUNT_SECONDS);
	printf("\n[2/5] Let it count for %d s:\n", COUNT_SECONDS);
	read_log(d->log, 0, 1, &sum);
	if (interrupted)
		return -1;
	if (reap(d->counter, 0) != -1) {
		d->counter = 0;
		printf("demo: the counter exited; see its log above\n");
		return -1;
	}
	if (sum.lines == 0) {
		printf("demo: the counter printed nothing in %d s\n", COUNT_SECONDS);
		return -1;
	}
	return 0;
}

/* Step 3: checkpoint it; by default ckptctl kills the tree once dumped. */
static int step_dump(struct demo *d, struct log_summary *before)
{
	char pid[16];
	char *args[] = { "ckptctl", "dump", "-t", pid, "-D", d->images, NULL };
	double ms;
	int status;

	snprintf(pid, sizeof(pid), "%d", d->counter);
	printf("\n[3/5] Checkpoint it into %s (the program is killed once dumped):\n", d->images);
	if (run_ckptctl(args, &ms))
		return -1;
	status = reap(d->counter, 2);
	if (status == -1) {
		printf("demo: pid %d is still running after the dump\n", d->counter);
		return -1;
	}
	d->counter = 0;
	read_log(d->log, 0, 0, before);
	printf("      dumped in %.0f ms; pid %s is gone (%s %d). Last line it wrote: count %ld\n",
	       ms, pid, WIFSIGNALED(status) ? "killed by signal" : "exited with",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), before->last);
	return 0;
}

static pid_t read_pidfile(const char *path)
{
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* Step 4: restore it in the background and let it count again. */
static int step_restore(struct demo *d, const struct log_summary *before, struct log_summary *after)
{
	char *args[] = {
		"ckptctl", "restore", "-D", d->images, "-d", "--pidfile", d->pidfile, NULL
	};
	double ms;

	printf("\n[4/5] Restore it from the checkpoint:\n");
	if (run_ckptctl(args, &ms))
		return -1;
	d->counter = read_pidfile(d->pidfile);
	if (d->counter <= 0) {
		printf("demo: restore wrote no pid to %s\n", d->pidfile);
		return -1;
	}
	printf("      restored in %.0f ms as pid %d; let it count for %d s more:\n", ms, d->counter,
	       COUNT_SECONDS);
	pause_seconds(COUNT_SECONDS);
	read_log(d->log, before->end, 1, after);
	return interrupted ? -1 : 0;
}

/* Step 5: the verdict, from the log alone. */
static int step_verdict(const struct log_summary *before, const struct log_summary *after)
{
	printf("\n[5/5] ");
	if (after->corrupt) {
		printf("FAILED: the restored counter found its memory corrupted.\n");
		return -1;
	}
	if (after->first == 0 || after->lines < 2) {
		printf("FAILED: the restored counter stopped (%d new lines in %d s).\n",
		       after->lines, COUNT_SECONDS);
		return -1;
	}
	if (after->first != before->last + 1 || after->gaps) {
		printf("FAILED: the count went %ld -> %ld after the restore (expected %ld).\n",
		       before->last, after->first, before->last + 1);
		return -1;
	}
	printf("OK: the counter went on from %ld to %ld, with its memory intact,\n"
	       "      instead of starting again from 1.\n",
	       before->last, after->last);
	return 0;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = { .counter = 0 };
	struct log_summary before, after;
	int ok;

	if (prepare(&d, argc, argv)) {
		clean_up(&d);
		return 1;
	}
	printf("ckpt demo: checkpoint a running program, kill it, restore it.\n\n");
	ok = step_start(&d) == 0 && step_dump(&d, &before) == 0 &&
	     step_restore(&d, &before, &after) == 0 && step_verdict(&before, &after) == 0;
	if (interrupted)
		printf("\ndemo: interrupted\n");
	clean_up(&d);
	if (ok)
		printf("\nNext: ckptctl check -v; ckptctl dump -t PID -D DIR; ckptctl restore -D "
		       "DIR\n");
	return ok ? 0 : 1;
}
