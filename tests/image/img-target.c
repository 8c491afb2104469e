/*
 * img-target: a small process tree that gives a dump one of every image
 * kind: two processes (inventory, core, mm, pagemap, pages, fdinfo per
 * task), a second thread, a regular file and a pipe holding data (files,
 * pipes-data).  It writes "ready" to argv[1] once set up, then sleeps
 * until killed.  Used by image-test.sh; not a test by itself.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	static char heap_text[1 << 16];
	int p[2], fd;
	pthread_t t;
	FILE *f;

	if (argc != 2 || pipe(p))
		return 2;
	if (write(p[1], "bytes in flight", 15) != 15)
		return 2;
	fd = open("/proc/self/exe", O_RDONLY);
	if (fd < 0 || pthread_create(&t, NULL, sleeper, NULL))
		return 2;
	/* Pages worth compressing, and some that are not. */
	for (size_t i = 0; i < sizeof(heap_text); i++)
		heap_text[i] = "checkpoint "[i % 11] ^ (i % 4093 == 0 ? rand() : 0);
	if (fork() == 0) {
		for (;;)
			pause();
	}
	f = fopen(argv[1], "w");
	if (!f || fputs("ready\n", f) < 0 || fclose(f))
		return 2;
	for (;;)
		pause();
}
