/*
 * cr-pagesrv: --page-server, the full cycle through `ckptctl page-server`
 * (issue 13).  The server runs as our child on 127.0.0.1, a free port (it
 * prints the one it got), writing into tmp/served; the dump gets
 * `--page-server 127.0.0.1:PORT` and keeps its metadata in tmp/images,
 * which must then hold no manifest (it is not a set); the restore (with
 * --verify, as always) reads tmp/served.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cr-run.h"

/* The port the server printed ("listening on ADDR:PORT"), or 0. */
static int server_port(const char *out)
{
	char line[256];
	int port = 0;
	FILE *f = fopen(out, "re");

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) && !strncmp(line, "listening on ", 13)) {
		char *colon = strrchr(line, ':');
		if (colon)
			port = atoi(colon + 1);
	}
	fclose(f);
	return port;
}

int page_server_start(struct run *r, char *served, size_t len)
{
	static char where[64];
	const char *args[] = { "page-server", "--port", "0",   "--address",
			       "127.0.0.1",   "--dir",	served };
	char err[PATH_MAX + 64], out[PATH_MAX + 64];
	uint64_t end = clock_ms() + budget_ms(10000);
	int port = 0;

	path_in(r, served, len, "served");
	/* The node's munged (scripts/slurm-cluster starts one): without it
	 * no dump can authenticate, nothing to test. */
	if (system("munge -n >/dev/null 2>&1")) {
		say("SKIP: munged does not answer");
		return 77;
	}
	if (start_ckptctl(r, "page-server", args, 7, err, NULL) < 0)
		return -1;
	/* start_ckptctl's stdout: the .err path with .out */
	snprintf(out, sizeof(out), "%.*s.out", (int)(strlen(err) - 4), err);
	while (!(port = server_port(out)) && clock_ms() < end)
		sleep_ms(10);
	if (!port) {
		say("ckptctl page-server did not say its port");
		print_file("page-server stderr", err);
		return -1;
	}
	snprintf(where, sizeof(where), "127.0.0.1:%d", port);
	if (r->nr_dump_opts + 2 > MAX_OPTS)
		return -1;
	r->dump_opts[r->nr_dump_opts++] = "--page-server";
	r->dump_opts[r->nr_dump_opts++] = where;
	say("page server on %s, writing %s", where, served);
	return 0;
}

int page_server_check(const char *images, const char *served)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/manifest", served);
	if (access(path, F_OK)) {
		say("no committed set on the page server: %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/manifest", images);
	if (!access(path, F_OK)) {
		say("the dumper's directory looks like a set: %s", path);
		return -1;
	}
	return 0;
}

/* The server took one dump and is gone: later dumps of the case (a
 * --redump of the restored tree) write their own directory. */
void page_server_done(struct run *r)
{
	for (int i = 0; i + 1 < r->nr_dump_opts; i++)
		if (!strcmp(r->dump_opts[i], "--page-server")) {
			for (int k = i; k + 2 < r->nr_dump_opts; k++)
				r->dump_opts[k] = r->dump_opts[k + 2];
			r->nr_dump_opts -= 2;
			return;
		}
}
