/*
 * dump-set: the dump's target set, a plain directory or a job set (see
 * dump-set.h).  The engine writes into the img_set either way.
 */
#include <errno.h>
#include <string.h>

#include "dump-set.h"
#include "log.h"

static int open_job(const struct ckpt_dump_opts *o, struct dump_target *t)
{
	struct set_policy p;
	int ret = set_policy_load(&p, o->base);

	if (ret)
		return ret;
	ret = job_dump_begin(&p, o->job, o->has_uid ? (int64_t)o->uid : -1, o->parent, &t->job);
	if (ret)
		return ret;
	pr_info("job %s: set %s", o->job, img_set_dir(job_dump_set(t->job)));
	return 0;
}

static int open_dir(const struct ckpt_dump_opts *o, struct dump_target *t)
{
	int ret = img_set_create(o->dir, &t->set);

	if (!ret && o->has_uid)
		img_set_set_owner(t->set, o->uid);
	if (!ret && o->page_server)
		ret = img_set_send_to(t->set, o->page_server);
	if (!ret && o->parent)
		ret = img_set_use_parent(t->set, o->parent, NULL);
	if (ret && t->set) {
		img_set_abort(t->set);
		img_set_close(t->set);
		t->set = NULL;
	}
	return ret;
}

int dump_target_open(const struct ckpt_dump_opts *o, struct dump_target *t, struct img_set **set)
{
	int ret;

	memset(t, 0, sizeof(*t));
	if (o->job && o->dir) {
		pr_err("dump: a job set (--job) or an image directory (-D), not both");
		return -EINVAL;
	}
	/* A parent must lie beside the set, and a job set is committed by
	 * the job's own rules (latest, retention): both on this node only. */
	if (o->page_server && (o->job || o->parent)) {
		pr_err("dump: --page-server: not with %s", o->job ? "--job" : "--parent");
		return -EINVAL;
	}
	ret = o->job ? open_job(o, t) : open_dir(o, t);
	if (!ret)
		*set = t->job ? job_dump_set(t->job) : t->set;
	return ret;
}

int dump_target_commit(struct dump_target *t, const struct frozen_tree *tree, uint32_t root_pid)
{
	struct img_set *set = t->job ? job_dump_set(t->job) : t->set;

	for (int i = 0; i < tree->nr_tasks; i++) {
		const struct frozen_task *ft = &tree->tasks[i];
		int ret = img_set_add_process(set, (uint32_t)ft->pid, (uint32_t)ft->ppid, ft->comm);
		if (ret)
			return ret;
	}
	return t->job ? job_dump_commit(t->job, root_pid) : img_set_commit(set, root_pid);
}

void dump_target_abort(struct dump_target *t)
{
	if (t->job)
		job_dump_abort(t->job);
	else if (t->set)
		img_set_abort(t->set);
}

int dump_target_finish(struct dump_target *t, struct ckpt_dump_stats *st)
{
	if (!t->job)
		return 0;
	st->seq = job_dump_seq(t->job);
	return job_dump_finish(t->job, &st->flusher);
}

void dump_target_close(struct dump_target *t)
{
	job_dump_free(t->job);
	img_set_close(t->set);
	memset(t, 0, sizeof(*t));
}

int ckpt_job_latest(const char *job, const char *base, char *dir, size_t len)
{
	struct set_policy p;
	int ret = set_policy_load(&p, base);

	return ret ? ret : imgset_latest(p.base, job, dir, len);
}

int restore_open_set(const struct ckpt_restore_opts *o, struct img_set **set)
{
	char dir[PATH_MAX];
	int ret;

	if (!o->job)
		return img_set_open_but_pages(o->dir, set);
	if (o->dir) {
		pr_err("restore: a job (--job) or an image directory (-D), not both");
		return -EINVAL;
	}
	if ((ret = ckpt_job_latest(o->job, o->base, dir, sizeof(dir))))
		return ret;
	pr_info("job %s: restoring %s", o->job, dir);
	return img_set_open_but_pages(dir, set);
}

int ckpt_job_next_seq(const char *job, const char *base, uint64_t *seq)
{
	struct set_policy p;
	int ret = set_policy_load(&p, base);

	return ret ? ret : imgset_next_seq(p.base, job, -1, seq);
}

int ckpt_job_commit_parts(const char *job, const char *base, uint64_t seq, int64_t uid,
			  const struct ckpt_part *parts, size_t nr)
{
	struct set_policy p;
	struct set_part v[64];
	int ret = set_policy_load(&p, base);

	if (ret)
		return ret;
	if (nr > sizeof(v) / sizeof(v[0])) {
		pr_err("job %s: %zu nodes: at most %zu in a set", job, nr, sizeof(v) / sizeof(v[0]));
		return -E2BIG;
	}
	for (size_t i = 0; i < nr; i++)
		v[i] = (struct set_part){ parts[i].node, parts[i].manifest_crc, parts[i].rank,
					  parts[i].root_pid, parts[i].batch, parts[i].address };
	return imgset_commit_parts(p.base, job, seq, uid, v, nr);
}

int ckpt_job_dir(const char *job, const char *base, char *dir, size_t len)
{
	struct set_policy p;
	int ret = set_policy_load(&p, base);

	if (ret)
		return ret;
	return (size_t)snprintf(dir, len, "%s/%s", p.base, job) >= len ? -ENAMETOOLONG : 0;
}
