/*
 * restore-load: read and check every image of a set before anything is
 * created.  Images are hostile input: every count, id and size that the
 * rest of restore relies on is checked here, with a message naming the
 * file and the entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>
#include <unistd.h>

#include "aio.h"
#include "cgroup.h"
#include "cpu.h"
#include "dump-set.h"
#include "fdtable.h"
#include "log.h"
#include "pagemap.pb-c.h"
#include "priv.h"
#include "restore.h"

#define PID_LIMIT (1 << 22) /* the kernel's PID_MAX_LIMIT on 64-bit */

/* An srun step's client (the proxy) and tasks (docs/mpi.md): the proxy
 * is no root (but a node's part of a step on several nodes, whose root
 * its coordinator's stand-in was), no zombie, one thread, and runs
 * ckpt-step as the restoring user, who must be the step's; a step's task
 * is a proxy's child. */
static int check_step(struct restore_ctx *c, size_t i)
{
	const InventoryEntry *inv = c->inv;
	const TaskEntry *t = inv->tasks[i];
	const StepEntry *st = t->step;
	if (st && c->opts->unprivileged && (st->uid != geteuid() || st->gid != getegid())) {
		pr_err("inventory.img: pid %u: an srun step of uid %u, gid %u: not the restoring "
		       "user's",
		       t->pid, st->uid, st->gid);
		return -EPERM;
	}
	if (st && ((!i && !(st->has_nodes && st->nodes > 1)) || (t->has_zombie && t->zombie) ||
		   t->n_tids != 1 ||
		   (st->nspace && (!st->nspace[0] || strlen(st->nspace) > 255)) || !st->job_size ||
		   st->job_size > (1u << 16))) {
		pr_err("inventory.img: pid %u: a bad srun step's client", t->pid);
		return -EINVAL;
	}
	if (!t->has_step_rank)
		return 0;
	for (size_t j = 0; j < i; j++)
		if (inv->tasks[j]->pid == t->ppid && inv->tasks[j]->step &&
		    t->step_rank < inv->tasks[j]->step->job_size && !t->step)
			return 0;
	pr_err("inventory.img: pid %u: a task of an srun step (rank %u) whose parent is no "
	       "step's client",
	       t->pid, t->step_rank);
	return -EINVAL;
}

static int check_inventory(struct restore_ctx *c)
{
	const InventoryEntry *inv = c->inv;
	const char *dir = img_set_dir(c->set);

	if (!inv->n_tasks || inv->tasks[0]->pid != inv->root_pid) {
		pr_err("%s/inventory.img: no root task", dir);
		return -EINVAL;
	}
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *t = inv->tasks[i];
		int parent_ok = i == 0;
		int zombie = t->has_zombie && t->zombie; /* no threads */
		if (!t->pid || t->pid >= PID_LIMIT || (zombie ? t->n_tids || !i :
					 !t->n_tids || t->tids[0] != t->pid)) {
			pr_err("%s/inventory.img: task %zu: bad pid or threads", dir, i);
			return -EINVAL;
		}
		for (size_t k = 0; k < t->n_tids; k++)
			if (!t->tids[k] || t->tids[k] >= PID_LIMIT) {
				pr_err("%s/inventory.img: task %u: bad thread id", dir, t->pid);
				return -EINVAL;
			}
		for (size_t j = 0; j < i; j++) {
			if (inv->tasks[j]->pid == t->pid) {
				pr_err("%s/inventory.img: pid %u listed twice", dir, t->pid);
				return -EINVAL;
			}
			parent_ok |= inv->tasks[j]->pid == t->ppid;
		}
		if (!parent_ok) {
			pr_err("%s/inventory.img: pid %u: parent %u is not before it", dir, t->pid, t->ppid);
			return -EINVAL;
		}
		int ret = check_step(c, i);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_core(struct restore_ctx *c, const struct rst_task *t)
{
	const CoreEntry *core = t->core;
	const char *dir = img_set_dir(c->set);

	if (core->pid != t->te->pid || core->n_threads != t->te->n_tids) {
		pr_err("%s/core-%u.img: does not match the inventory", dir, t->te->pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadCoreEntry *th = core->threads[i];
		if (th->tid != t->te->tids[i] || th->gpregs.len != sizeof(struct user_regs_struct) ||
		    th->xstate.len < 576 || th->xstate.len > 65536) {
			pr_err("%s/core-%u.img: thread %zu: bad registers", dir, t->te->pid, i);
			return -EINVAL;
		}
		for (size_t k = 0; k < th->n_pending; k++)
			if (th->pending[k]->siginfo.len != 128)
				return -EINVAL;
	}
	for (size_t k = 0; k < core->n_shared_pending; k++)
		if (core->shared_pending[k]->siginfo.len != 128)
			return -EINVAL;
	if (core->creds->n_groups > 64) {
		pr_err("%s/core-%u.img: too many groups", dir, t->te->pid);
		return -EINVAL;
	}
	return 0;
}

static int load_pagemap(struct restore_ctx *c, struct rst_task *t)
{
	char name[64];
	PagemapEntry **pe;
	size_t nr;

	snprintf(name, sizeof(name), "pagemap-%u.img", t->te->pid);
	int ret = img_read_all(c->set, IMG_PAGEMAP, name, &pagemap_entry__descriptor,
			       (ProtobufCMessage ***)&pe, &nr);
	if (ret)
		return ret;
	t->chunks = malloc((nr + 1) * sizeof(*t->chunks));
	for (size_t i = 0; i < nr; i++) {
		if (t->chunks)
			t->chunks[i] = (struct page_chunk){
				.vaddr = pe[i]->vaddr, .nr_pages = pe[i]->nr_pages,
				.offset = pe[i]->offset, .comp_len = pe[i]->comp_len,
				.raw = pe[i]->raw, .crc = pe[i]->crc,
				.in_parent = pe[i]->has_in_parent && pe[i]->in_parent,
			};
		if (t->chunks)
			pagemap_entry_block(pe[i], &t->chunks[i]);
		protobuf_c_message_free_unpacked(&pe[i]->base, NULL);
	}
	free(pe);
	t->nr_chunks = t->chunks ? nr : 0;
	return t->chunks ? 0 : -ENOMEM;
}

static int load_task(struct restore_ctx *c, struct rst_task *t)
{
	char name[64];
	int ret;

	if ((t->te->has_zombie && t->te->zombie) || restore_task_proxy(t))
		return 0; /* nothing but its inventory entry (and a proxy's fds) */
	snprintf(name, sizeof(name), "core-%u.img", t->te->pid);
	ret = img_read_one(c->set, IMG_CORE, name, &core_entry__descriptor,
			   (ProtobufCMessage **)&t->core);
	if (ret)
		return ret;
	if ((ret = check_core(c, t)))
		return ret;
	/* Checked here, on what will be restored, and nowhere else. */
	if (c->opts->unprivileged && (ret = priv_check_identity(t->core->creds, t->te->pid)))
		return ret;
	if (c->opts->nr_confine &&
	    (ret = priv_check_confined(t->core, c->opts->confine, c->opts->nr_confine, t->te->pid)))
		return ret;
	snprintf(name, sizeof(name), "mm-%u.img", t->te->pid);
	ret = img_read_one(c->set, IMG_MM, name, &mm_entry__descriptor, (ProtobufCMessage **)&t->mm);
	if (!ret)
		ret = aio_rings_check((pid_t)t->te->pid, t->mm);
	return ret ? ret : load_pagemap(c, t);
}

int restore_load(struct restore_ctx *c)
{
	/* the page data is checked chunk by chunk as it is loaded (or, lazy,
	 * as the server reads it) */
	int ret = restore_open_set(c->opts, &c->set);
	if (ret)
		return ret;
	ret = img_read_one(c->set, IMG_INVENTORY, "inventory.img", &inventory_entry__descriptor,
			   (ProtobufCMessage **)&c->inv);
	if (ret || (ret = check_inventory(c)))
		return ret;
	/* The CPU first (docs/placement.md): a set this node cannot run is
	 * refused before anything else is read, let alone created. */
	if (c->inv->cpu && (ret = cpu_validate(c->inv->cpu)))
		return ret;
	if ((ret = cpu_check(c->inv->cpu, c->inv->kernel, c->opts->cpu_cap)))
		return ret;
	c->nr_tasks = c->inv->n_tasks;
	c->tasks = calloc(c->nr_tasks, sizeof(*c->tasks));
	if (!c->tasks)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_tasks; i++) {
		c->tasks[i].te = c->inv->tasks[i];
		if ((ret = load_task(c, &c->tasks[i])))
			return ret;
	}
	if ((ret = placement_check(c)) || (ret = cgroups_load(c->set, &c->cgroups)) ||
	    (ret = fdtable_load(c)))
		return ret;
	return files_read(c->set, c->inv, c->opts, &c->files);
}

void restore_unload(struct restore_ctx *c)
{
	for (size_t i = 0; c->tasks && i < c->nr_tasks; i++) {
		if (c->tasks[i].core)
			protobuf_c_message_free_unpacked(&c->tasks[i].core->base, NULL);
		if (c->tasks[i].mm)
			protobuf_c_message_free_unpacked(&c->tasks[i].mm->base, NULL);
		free(c->tasks[i].chunks);
	}
	free(c->tasks);
	c->tasks = NULL;
	files_free(&c->files);
	if (c->cgroups)
		protobuf_c_message_free_unpacked(&c->cgroups->base, NULL);
	c->cgroups = NULL;
	if (c->inv)
		protobuf_c_message_free_unpacked(&c->inv->base, NULL);
	c->inv = NULL;
	if (c->set)
		img_set_close(c->set);
	c->set = NULL;
}
