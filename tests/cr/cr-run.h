/*
 * cr-run.h: what the two halves of the harness share.  cr-run.c holds the
 * main flows (start, dump, reap, restore, check; -R dumps, killed dumps,
 * occupied PIDs); cr-fail.c the flows that must fail cleanly (dumps of
 * what cannot be dumped, restores from damaged images).
 */
#ifndef CR_RUN_H
#define CR_RUN_H

#include "cr-proc.h"
#include "crlib.h"

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_OPTS 16
#define READY_MS (180 * 1000)
#define DUMP_MS (300 * 1000)
#define RESTORE_MS (300 * 1000)
#define FAIL_MS (60 * 1000)

struct run {
	const char *ckptctl;
	char **test_argv;
	char tmp[PATH_MAX];
	pid_t pid;       /* original root of the test tree */
	uint64_t shared; /* address of its cr_shared */
	pid_t tree[MAX_TREE];
	int tree_len;
	pid_t occupier;
	int step; /* numbers the ckptctl output files */
	/* options */
	int no_cr, lr_twice, occupy, expect_dump_fail, check_progress, kill_dumps, verbose;
	const char *corrupt, *bad_dump;
	const char *after_dump; /* --after-dump KIND:FILE */
	const char *expect_msg[MAX_OPTS];
	int nr_expect;
	const char *dump_opts[MAX_OPTS], *restore_opts[MAX_OPTS];
	int nr_dump_opts, nr_restore_opts;
	/* --helper: a peer outside the tree (cr-helper.c) */
	const char *helper, *helper_arg;
	int helper_pidfd;
	const char *inherit_unix; /* --inherit-unix PATH */
	/* cr-net.c: --helper-after-dump, --fail-first-opt, --expect-restore-out,
	 * --restore-after-exit, --own-netns, --net-sysctl */
	int helper_after_dump, restore_after_exit, own_netns, redump, redumped;
	int redump_refused; /* --redump-refused: the first redump must fail */
	int no_verify; /* --no-verify: restore without --verify */
	int expect_restore_fail; /* --expect-restore-fail (also after --restore-after-exit) */
	int delegate_cgroup; /* --delegate-cgroup (cr-cgroup.c) */
	int page_server; /* --page-server (cr-pagesrv.c) */
	int cold; /* --cold: the page cache of the images dropped before each restore */
	/* --dump-running: the cycle's dump is `dump -R` (a snapshot dump,
	 * libckpt/snapshot.c), then we kill the tree; --expect-dump-out S:
	 * every successful dump's stdout holds S; --no-snapshot (or
	 * $CR_NO_SNAPSHOT): every dump with --no-snapshot */
	int dump_running, no_snapshot;
	const char *expect_dump_out;
	const char *fail_first_opts[MAX_OPTS + 1];
	int nr_fail_first_opts;
	const char *expect_restore_out, *net_sysctl[MAX_OPTS];
	int nr_net_sysctl;
	/* --user: the test (and ckptctl) run as this user; --ckptctl-user:
	 * ckptctl runs as another one.  name NULL: root, as always. */
	struct run_user { const char *name; uid_t uid; gid_t gid; } user, ctl_user;
};

/* cr-cgroup.c: --delegate-cgroup, --after-dump rmcgroups:FILE and
 * undelegate:-; cgroup_after_dump returns 1 for a kind not its own. */
int delegate_cgroup(struct run *r);
int cgroup_after_dump(struct run *r, const char *kind, const char *file);
void cgroup_cleanup(struct run *r);

/* cr-helper.c */
int start_helper(struct run *r);
void stop_helper(struct run *r);
/* --inherit-unix: the restore gets a new connection to PATH as its fd 100
 * (pre_exec) and --inherit-fd fd[100]:RESOURCE (extra[0..1]) for the
 * RESOURCE the test wrote into its file inherit-resource. */
int inherit_unix(struct run *r, const char *extra[3], void (**pre_exec)(void *));

void path_in(const struct run *r, char *buf, size_t len, const char *name);
void print_file(const char *title, const char *path);
int output_has(const char *path, const char *want, const char *what);
void rm_tree(const char *path);
/* `ckptctl dump -t PID -D dir [extra]`: the wait status, or -1. */
int run_dump(struct run *r, const char *dir, const char *extra, char *errpath);
/* The failed command printed exactly one line holding every --expect-msg. */
int check_error_line(struct run *r, const char *what, const char *errpath);
int check_no_manifest(const char *dir);
/* A restore that must fail: one error line, nothing restored left. */
int restore_must_fail(struct run *r, const char *dir, const char *const *extra,
		      void (*pre_exec)(void *), const char *what);

/* The restore (with the restore options) of the images in dir: it must
 * run the restored test to its PASS. */
int restore_and_check(struct run *r, const char *dir);
/* Dump r->pid into dir (the tree is killed) and reap every process of it. */
int dump_and_reap(struct run *r, const char *dir);
/* `ckptctl dump -R` into tmp/name; the test runs on. */
int leave_running(struct run *r, const char *name);
/* Check signal to the live (not dumped) test; its exit status decides. */
int check_live_test(struct run *r);

/* cr-net.c */
/* --own-netns: this harness and all it starts in a fresh network
 * namespace, lo up, with the --net-sysctl NAME=VALUE (under
 * /proc/sys/net/) set there. */
int own_netns(struct run *r);
/* After the dump: --helper-after-dump starts the helper, --fail-first-opt
 * restores that must fail; after the restore, --expect-restore-out. */
int net_after_dump(struct run *r, const char *dir);
int net_after_restore(struct run *r);
/* --restore-after-exit: a -R dump, the test checks and exits, then the
 * dump is restored (and checks again). */
int restore_after_exit(struct run *r);
/* --redump: the restored tree `pid` (its restore: ckptctl `restore`) is
 * dumped again and that dump restored and checked. */
int redump_restored(struct run *r, pid_t restore, pid_t pid);

/* Start ckptctl with args; its output in tmp/NN-what.{out,err}, errpath
 * gets the .err path. */
pid_t start_ckptctl(struct run *r, const char *what, const char **args, int nr,
		    char *errpath, void (*pre_exec)(void *));

/* cr-pagesrv.c: --page-server.  start: a page server writing into
 * `served` (tmp/served), the dump options to use it (77: no munged,
 * skip); check, after the
 * dump: the set is on the server, `images` holds no manifest. */
int page_server_start(struct run *r, char *served, size_t len);
int page_server_check(const char *images, const char *served);
void page_server_done(struct run *r);

/* cr-fail.c */
int bad_dump(struct run *r);
int corrupt_and_restore(struct run *r, const char *dir);
/* --after-dump: change a file of $CR_DIR between the dump and the restore. */
int change_after_dump(struct run *r);

#endif
