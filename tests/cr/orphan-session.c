/*
 * cr_orphan_session: processes whose session leader is gone keep their
 * session and process groups.
 *
 * The root is a child subreaper.  S calls setsid(), forks D (in group S)
 * and D2 (which leads a group of its own) and exits; D and D2 are
 * reparented to the root but stay in session S, which no process of the
 * tree leads.  After the restore both are still the root's children in
 * session S, D in group S and D2 leading its group.
 */
#include "crlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t s, d[2];

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	int ppid = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	CHECK_SYS(f && fgets(buf, sizeof(buf), f), "%s", path);
	fclose(f);
	char *close = strrchr(buf, ')');
	CHECK(close && sscanf(close + 2, "%*c %d", &ppid) == 1, "cannot parse %s", path);
	return ppid;
}

static void check_state(const char *when)
{
	for (int i = 0; i < 2; i++) {
		CHECK(getsid(d[i]) == s, "%s: D%d: session %d, expected %d", when, i + 1,
		      getsid(d[i]), s);
		CHECK(ppid_of(d[i]) == getpid(), "%s: D%d: parent %d", when, i + 1, ppid_of(d[i]));
	}
	CHECK(getpgid(d[0]) == s && getpgid(d[1]) == d[1], "%s: groups %d %d, expected %d %d",
	      when, getpgid(d[0]), getpgid(d[1]), s, d[1]);
}

int main(void)
{
	int p[2], status;

	test_init();
	CHECK_SYS(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper");
	CHECK_SYS(!pipe(p), "pipe");
	s = fork();
	CHECK_SYS(s >= 0, "fork");
	if (s == 0) {
		if (setsid() < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				if (i == 1)
					setpgid(0, 0);
				for (;;)
					pause();
			}
			if (pid < 0 || write(p[1], &pid, sizeof(pid)) != sizeof(pid))
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	CHECK_SYS(read_full(p[0], d, sizeof(d)) == sizeof(d), "read");
	CHECK_SYS(waitpid(s, &status, 0) == s && WIFEXITED(status) && !WEXITSTATUS(status), "S");
	for (int t = 0; t < 1000 && (ppid_of(d[0]) != getpid() || getpgid(d[1]) != d[1]); t++)
		usleep(1000);
	check_state("before");
	test_ready();
	test_wait_check();
	check_state("after the restore");
	for (int i = 0; i < 2; i++) {
		CHECK_SYS(!kill(d[i], SIGKILL), "kill D%d", i + 1);
		CHECK_SYS(waitpid(d[i], &status, 0) == d[i], "waitpid D%d", i + 1);
	}
	pass();
}
