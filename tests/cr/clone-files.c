/*
 * bad_dump_clone_files: a parent and a child made with clone(CLONE_FILES)
 * share one fd table; a restore would give each its own, so the dump must
 * be refused by name ("fd table"), the two left running and sharing: an
 * fd the child opens after the refused dump is the parent's too.
 */
#include "crlib.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK (64 * 1024)
#define CHILD_FD 77

static int go[2];

static int child(void *arg)
{
	(void)arg;
	char c;
	/* wait for the word, then open CHILD_FD for the parent to see */
	if (read(go[0], &c, 1) != 1)
		_exit(1);
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, CHILD_FD) != CHILD_FD)
		_exit(2);
	for (;;)
		pause();
}

int main(void)
{
	test_init();
	CHECK_SYS(!pipe(go), "pipe");
	char *stack = malloc(STACK);
	CHECK_SYS(stack != NULL, "malloc");
	pid_t pid = clone(child, stack + STACK, CLONE_FILES | SIGCHLD, NULL);
	CHECK_SYS(pid > 0, "clone CLONE_FILES");
	test_ready();
	test_wait_check();
	CHECK_SYS(write(go[1], "x", 1) == 1, "write");
	int shared = 0;
	for (int i = 0; i < 5000 && !shared; i++) {
		shared = fcntl(CHILD_FD, F_GETFD) >= 0;
		usleep(1000);
	}
	CHECK(shared, "fd %d the child opened is not in our table: no longer shared", CHILD_FD);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	pass();
}
