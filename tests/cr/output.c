/*
 * output: the job's output after a restore from an older checkpoint
 * (run with cr-run --restore-after-exit: dump -R, this process checks,
 * writes on and exits, then the dump is restored and checks again).
 *
 *   cr-output [cut]   appends lines 1..100 to its log (O_APPEND, its own
 *                     file, like the job's stdout under Slurm), then waits.
 *                     At each check its log must hold exactly lines
 *                     1..100: in the run that goes on after the dump, and
 *                     in the restored one, where the lines the first run
 *                     wrote after the dump (101..200) must be gone, cut
 *                     back by the restore.  Then it appends 101..200.
 *   cr-output keep    the same restored with --keep-later-output: the
 *                     restored run finds 200 lines (the marker file
 *                     "ran-on", written by the first run, tells them apart).
 *   cr-output shared  the log belongs to another user (mode 0666): it is
 *                     not the job's own and is left alone: 200 lines.
 *   cr-output requeue the first run, after writing 101..200, truncates the
 *                     log and writes a wrapper's line, as Slurm's requeue
 *                     does without --open-mode=append: the restore puts
 *                     lines 1..100 back from the copy kept with the set;
 *                     the restored run appends 101..200 and must then
 *                     find every line once, in order.
 *   cr-output requeue-short  the same, the log cut to 300 bytes (mid-line).
 *   cr-output requeue-long   the same, the wrapper writing more than the
 *                     log held at the dump: longer than at the dump, but
 *                     not starting with it, the log is put back all the
 *                     same (a cut back would leave the wrapper's lines).
 *   cr-output over-cap       as requeue, dumped with a copy limit below the
 *                     log's size: the restore must refuse, naming the log.
 */
#include "crlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_DUMP 100
#define OTHER_UID 65534 /* nobody */

static void append_lines(int fd, int from, int to)
{
	char line[32];
	for (int i = from; i <= to; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		CHECK_SYS(write_full(fd, line, (size_t)n) == n, "write line %d", i);
	}
}

/* What Slurm does to the output at a requeue without --open-mode=append
 * (the new batch step opens it with O_TRUNC, the wrapper writes), or
 * someone cutting the log short. */
static void cut_log(const char *path, int fd, const char *mode)
{
	static const char wrapper[] = "ckpt-batch: restoring the job's checkpoint\n";
	if (!strcmp(mode, "requeue-short")) {
		CHECK_SYS(ftruncate(fd, 300) == 0, "cut %s to 300 bytes", path);
		return;
	}
	int t = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK_SYS(t >= 0, "truncate %s", path);
	for (int i = 0; i < (strcmp(mode, "requeue-long") ? 1 : 40); i++)
		CHECK_SYS(write_full(t, wrapper, sizeof(wrapper) - 1) ==
				  (ssize_t)sizeof(wrapper) - 1,
			  "write the wrapper's line");
	close(t);
}

static int is_requeue(const char *mode)
{
	return !strncmp(mode, "requeue", 7) || !strcmp(mode, "over-cap");
}

/* How many lines the log holds; each must be "line N" in order. */
static int count_lines(const char *path)
{
	FILE *f = fopen(path, "re");
	char buf[64];
	int n = 0, k;
	CHECK_SYS(f != NULL, "open %s", path);
	while (fgets(buf, sizeof(buf), f)) {
		CHECK(sscanf(buf, "line %d", &k) == 1 && k == n + 1,
		      "line %d of the log is \"%.*s\"", n + 1, (int)strcspn(buf, "\n"), buf);
		n++;
	}
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "cut";
	char log[4096], marker[4096];
	test_init();
	snprintf(log, sizeof(log), "%s/out.log", test_dir());
	snprintf(marker, sizeof(marker), "%s/ran-on", test_dir());
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	CHECK_SYS(fd >= 0, "open %s", log);
	if (!strcmp(mode, "shared"))
		CHECK_SYS(fchown(fd, OTHER_UID, OTHER_UID) == 0 && fchmod(fd, 0666) == 0,
			  "give %s to uid %d", log, OTHER_UID);
	append_lines(fd, 1, AT_DUMP);
	test_ready();
	test_wait_check();
	int restored = access(marker, F_OK) == 0;
	int later = !strcmp(mode, "keep") || !strcmp(mode, "shared");
	int want = restored && later ? 2 * AT_DUMP : AT_DUMP;
	int got = count_lines(log);
	CHECK(got == want, "%s run: the log holds %d lines, wanted %d (%d at the dump)",
	      restored ? "restored" : "first", got, want, AT_DUMP);
	if (!restored) {
		int m = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		CHECK_SYS(m >= 0, "create %s", marker);
		close(m);
		append_lines(fd, AT_DUMP + 1, 2 * AT_DUMP);
		if (is_requeue(mode))
			cut_log(log, fd, mode);
	} else if (is_requeue(mode)) {
		append_lines(fd, AT_DUMP + 1, 2 * AT_DUMP);
		got = count_lines(log);
		CHECK(got == 2 * AT_DUMP, "restored run: the log holds %d lines after it wrote "
		      "%d..%d, wanted %d", got, AT_DUMP + 1, 2 * AT_DUMP, 2 * AT_DUMP);
	}
	printf("%s run: the log held %d lines\n", restored ? "restored" : "first", got);
	pass();
}
