/*
 * tier: dumping into job sets (BASE/JOB/SEQ) with the storage policy of
 * ckpt.conf: an optional node-local tier flushed to shared storage, the
 * latest pointer, retention.  libckpt's dump calls these around the
 * engine's own steps:
 *
 *   set_policy_load → job_dump_begin → (write into job_dump_set()) →
 *   job_dump_commit → (release the tree) → job_dump_finish → job_dump_free
 *
 * and job_dump_abort instead of the commit when the dump fails.
 */
#ifndef CKPT_TIER_H
#define CKPT_TIER_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage.h"

#define SET_DEFAULT_BASE "/var/lib/ckpt"

struct set_policy {
	char base[PATH_MAX];
	char local[PATH_MAX]; /* "": no local tier */
	int background;       /* storage.flush = background */
	uint64_t keep;        /* retention.keep, 0: all */
	uint64_t quota;       /* retention.user_quota in bytes, 0: none */
	uint64_t ended_keep_s; /* retention.ended_keep_s: an ended job's sets, kept */
};

/* From conf_path(); `base` (if not NULL) overrides storage.base. */
int set_policy_load(struct set_policy *p, const char *base);

struct job_dump;
/* Takes the next SEQ; `uid` >= 0 owns the set; `parent`: "latest", a SEQ
 * of the job or a set directory, NULL for a full dump. */
int job_dump_begin(const struct set_policy *p, const char *job, int64_t uid, const char *parent,
		   struct job_dump **out);
struct img_set *job_dump_set(struct job_dump *jd);
uint64_t job_dump_seq(const struct job_dump *jd);
/* The manifest, in the set written (the local one when there is a tier). */
int job_dump_commit(struct job_dump *jd, uint32_t root_pid);
/* Flush (sync, or in a child process whose pid comes back in *flusher),
 * latest pointer, retention. */
int job_dump_finish(struct job_dump *jd, pid_t *flusher);
/* Failed dump: removes the partial sets, directories included. */
void job_dump_abort(struct job_dump *jd);
void job_dump_free(struct job_dump *jd);

#endif
