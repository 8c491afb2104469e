/*
 * placement: the topology a set's CPU bindings and memory policies refer
 * to, and what becomes of them on the node that restores the set
 * (docs/placement.md).
 *
 * Dump: hwloc gives the node's PUs, cores and NUMA nodes (each with its
 * CPUs); the job's CPUs are the cpuset of the root task's cgroup (the
 * Slurm allocation), or every CPU of the node where no cpuset restricts
 * it.  All in cpu_entry (cpu.proto).
 *
 * Restore, before anything is created: each thread's affinity (core
 * image, sched_entry.affinity) and each task's memory-policy nodes are
 * compared with what this process may use here (hwloc's allowed cpuset,
 * i.e. node and cgroup, and our own affinity; the mems we are allowed).
 *   - within it: kept as dumped;
 *   - covering every CPU of the dumped job (the thread was not bound):
 *     it gets every CPU allowed here — still unbound within its job;
 *   - else refused naming the thread, unless --cpu-map=job: then each
 *     dumped CPU maps onto an allowed one, the same one for every thread,
 *     in the NUMA node of the same rank where there is one, distinct as
 *     long as there are enough, so that a binding keeps its count and its
 *     locality; nodes map the same way.
 */
#include <errno.h>
#include <hwloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpu.h"
#include "log.h"
#include "restorer-abi.h"

#define MAX_CPUS (RST_CPU_WORDS * 64)
#define MAX_NODES (RST_NODE_WORDS * 64)
#define MPOL_F_MEMS_ALLOWED_ (1 << 2)

/* ---- small mask helpers: 64 CPUs (or nodes) a word ---- */

static int bit_of(const uint64_t *w, size_t n, unsigned i)
{
	return i / 64 < n && (w[i / 64] >> (i % 64)) & 1;
}

static int subset_of(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	for (size_t i = 0; i < na; i++)
		if (a[i] & ~(i < nb ? b[i] : 0))
			return 0;
	return 1;
}

static int any_bit(const uint64_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i])
			return 1;
	return 0;
}

/* "0-3,8" for people; at most len bytes. */
static void mask_text(const uint64_t *w, size_t n, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (unsigned i = 0; i < n * 64 && o + 24 < len; i++) {
		if (!bit_of(w, n, i))
			continue;
		unsigned j = i;
		while (bit_of(w, n, j + 1))
			j++;
		o += (size_t)snprintf(buf + o, len - o, j > i ? "%s%u-%u" : "%s%u", o ? "," : "", i,
				      j);
		i = j;
	}
}

static void bitmap_words(hwloc_const_bitmap_t b, uint64_t *w, unsigned nr)
{
	unsigned long tmp[RST_CPU_WORDS];
	memset(w, 0, nr * sizeof(*w));
	if (hwloc_bitmap_to_ulongs(b, nr, tmp) == 0)
		for (unsigned i = 0; i < nr; i++)
			w[i] = tmp[i];
}

/* ---- dump ---- */

/* Words up to the last non-zero one: an image holds no trailing zeros. */
static size_t used_words(const uint64_t *w, size_t n)
{
	while (n && !w[n - 1])
		n--;
	return n;
}

/* "0-3,8\n" into words; -EINVAL for anything else. */
static int parse_cpu_list(const char *s, uint64_t *w)
{
	memset(w, 0, RST_CPU_WORDS * sizeof(*w));
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s)
			return -EINVAL;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		if (b >= MAX_CPUS || a > b)
			return -EINVAL;
		for (unsigned long i = a; i <= b; i++)
			w[i / 64] |= 1ULL << (i % 64);
		s = *end == ',' ? end + 1 : end;
	}
	return any_bit(w, RST_CPU_WORDS) ? 0 : -ENOENT;
}

/* The cpuset of pid's cgroup (v2): the nearest cpuset.cpus.effective at
 * or above it.  -ENOENT where none is. */
static int cgroup_cpus(pid_t pid, uint64_t *w)
{
	char path[4200], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	int found = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3) && (found = 1))
			break;
	if (f)
		fclose(f);
	if (!found)
		return -ENOENT;
	line[strcspn(line, "\n")] = 0;
	char *rel = line + 3;
	for (;;) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpuset.cpus.effective",
			 strcmp(rel, "/") ? rel : "");
		char buf[4096];
		FILE *c = fopen(path, "re");
		char *got = c ? fgets(buf, sizeof(buf), c) : NULL;
		if (c)
			fclose(c);
		if (got && !parse_cpu_list(buf, w))
			return 0;
		char *slash = strrchr(rel, '/');
		if (!slash || slash == rel)
			return -ENOENT;
		*slash = 0;
	}
}

static int record_numa(hwloc_topology_t topo, CpuEntry *e)
{
	int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	if (n < 0 || n > MAX_NODES)
		return -E2BIG;
	e->numa_nodes = calloc((size_t)n + 1, sizeof(*e->numa_nodes));
	NumaNodeEntry *nodes = calloc((size_t)n + 1, sizeof(*nodes));
	uint64_t *words = calloc((size_t)n + 1, RST_CPU_WORDS * sizeof(*words));
	if (!e->numa_nodes || !nodes || !words) {
		free(nodes);
		free(words);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
		numa_node_entry__init(&nodes[i]);
		nodes[i].os_index = o->os_index;
		nodes[i].cpus = words + (size_t)i * RST_CPU_WORDS;
		nodes[i].n_cpus = RST_CPU_WORDS;
		bitmap_words(o->cpuset, nodes[i].cpus, RST_CPU_WORDS);
		nodes[i].n_cpus = used_words(nodes[i].cpus, RST_CPU_WORDS);
		e->numa_nodes[i] = &nodes[i];
	}
	e->n_numa_nodes = (size_t)n;
	return 0;
}

/* The node's topology, loaded by placement_load before a dump freezes
 * its tree: hwloc reads sysfs and loads its plugins, milliseconds that
 * the job would spend frozen; nothing of it depends on the tree. */
static _Thread_local hwloc_topology_t loaded;

/* hwloc dlopens every plugin it finds as it starts: XML through libxml2
 * and ICU, OpenCL, GL through X11, PCI.  From a cold page cache (a
 * restore on a requeued job's node) that was 50 ms before a 256 MiB
 * restore could begin, for I/O objects placement never looks at.  A
 * site's own HWLOC_PLUGINS_BLACKLIST is left as it is. */
static int topology_init(hwloc_topology_t *topo)
{
	setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_xml_libxml,hwloc_opencl,hwloc_gl,hwloc_pci", 0);
	return hwloc_topology_init(topo);
}

static int load_topology(hwloc_topology_t *topo)
{
	if (topology_init(topo))
		return -ENOMEM;
	if (!hwloc_topology_load(*topo))
		return 0;
	hwloc_topology_destroy(*topo);
	return -EIO;
}

void placement_load(void)
{
	if (!loaded && load_topology(&loaded))
		loaded = NULL; /* placement_record tries again, and says why */
}

void placement_unload(void)
{
	if (loaded)
		hwloc_topology_destroy(loaded);
	loaded = NULL;
}

int placement_record(const struct frozen_tree *tree, CpuEntry *e)
{
	hwloc_topology_t topo = loaded;
	int ret = topo ? 0 : load_topology(&topo);
	if (!ret) {
		e->nr_pus = (uint32_t)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
		e->nr_cores = (uint32_t)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
		ret = record_numa(topo, e);
	}
	e->job_cpus = ret ? NULL : calloc(RST_CPU_WORDS, sizeof(*e->job_cpus));
	if (!ret && !e->job_cpus)
		ret = -ENOMEM;
	if (!ret) {
		e->n_job_cpus = RST_CPU_WORDS;
		if (cgroup_cpus(tree->tasks[0].pid, e->job_cpus))
			bitmap_words(hwloc_topology_get_topology_cpuset(topo), e->job_cpus,
				     RST_CPU_WORDS);
		e->n_job_cpus = used_words(e->job_cpus, RST_CPU_WORDS);
	}
	if (!ret && topo != loaded)
		hwloc_topology_destroy(topo);
	return ret;
}

void placement_record_free(CpuEntry *e)
{
	if (e->n_numa_nodes) {
		free(e->numa_nodes[0]->cpus);
		free(e->numa_nodes[0]);
	}
	free(e->numa_nodes);
	free(e->job_cpus);
	e->numa_nodes = NULL;
	e->job_cpus = NULL;
	e->n_numa_nodes = e->n_job_cpus = 0;
}

/* ---- restore ---- */

int placement_validate(const CpuEntry *e)
{
	int bad = e->nr_pus > MAX_CPUS || e->nr_cores > e->nr_pus || e->n_numa_nodes > MAX_NODES ||
		  e->n_job_cpus > RST_CPU_WORDS;
	for (size_t i = 0; !bad && i < e->n_numa_nodes; i++)
		bad = e->numa_nodes[i]->os_index >= MAX_NODES ||
		      e->numa_nodes[i]->n_cpus > RST_CPU_WORDS;
	if (bad) {
		pr_err("inventory.img: cpu: topology out of range (%u PUs, %u cores, %zu NUMA "
		       "nodes, "
		       "%zu words of job CPUs; at most %d CPUs and nodes)",
		       e->nr_pus, e->nr_cores, e->n_numa_nodes, e->n_job_cpus, MAX_CPUS);
		return -EINVAL;
	}
	return 0;
}

/* What this node lets us use, and how its NUMA nodes hold it. */
struct here {
	uint64_t cpus[RST_CPU_WORDS];
	uint64_t mems[RST_NODE_WORDS];
	int node_of[MAX_CPUS];	 /* rank of the NUMA node of each CPU here, -1 */
	int cpu_map[MAX_CPUS];	 /* dumped CPU → CPU here (--cpu-map=job), -1 */
	int node_map[MAX_NODES]; /* dumped node → node here, -1 */
	uint64_t taken[RST_CPU_WORDS];
	uint64_t nodes_taken[RST_NODE_WORDS];
};

static int load_here(struct here *h)
{
	hwloc_topology_t topo;
	cpu_set_t mine;
	memset(h->node_of, 0xff, sizeof(h->node_of));
	memset(h->cpu_map, 0xff, sizeof(h->cpu_map));
	memset(h->node_map, 0xff, sizeof(h->node_map));
	CPU_ZERO(&mine);
	if (sched_getaffinity(0, sizeof(mine), &mine)) {
		int err = errno;
		pr_err("cpu: sched_getaffinity: %s", strerror(err));
		return -err;
	}
	if (topology_init(&topo))
		return -ENOMEM;
	if (hwloc_topology_load(topo)) {
		hwloc_topology_destroy(topo);
		pr_err("cpu: hwloc cannot read this node's topology");
		return -EIO;
	}
	bitmap_words(hwloc_topology_get_allowed_cpuset(topo), h->cpus, RST_CPU_WORDS);
	for (int i = 0; i < RST_CPU_WORDS; i++)
		h->cpus[i] &= ((const uint64_t *)&mine)[i];
	int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	for (int k = 0; k < n; k++) {
		hwloc_obj_t o = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)k);
		int cpu;
		hwloc_bitmap_foreach_begin(cpu, o->cpuset)
		{
			if (cpu < MAX_CPUS)
				h->node_of[cpu] = k;
		}
		hwloc_bitmap_foreach_end();
	}
	hwloc_topology_destroy(topo);
	if (syscall(SYS_get_mempolicy, NULL, h->mems, MAX_NODES, NULL, MPOL_F_MEMS_ALLOWED_))
		h->mems[0] = 1; /* no NUMA: node 0 */
	return 0;
}

/* Rank of dumped CPU c's NUMA node in the set, -1. */
static int dumped_node(const CpuEntry *e, unsigned c)
{
	for (size_t k = 0; k < e->n_numa_nodes; k++)
		if (bit_of(e->numa_nodes[k]->cpus, e->numa_nodes[k]->n_cpus, c))
			return (int)k;
	return -1;
}

/* The first allowed CPU not taken yet, in NUMA node `rank` (-1: any);
 * -1 when none is. */
static int free_cpu(struct here *h, int rank)
{
	for (unsigned c = 0; c < MAX_CPUS; c++)
		if (bit_of(h->cpus, RST_CPU_WORDS, c) && !bit_of(h->taken, RST_CPU_WORDS, c) &&
		    (rank < 0 || h->node_of[c] == rank))
			return (int)c;
	return -1;
}

/* Dumped CPU c here: the same for every thread of the set. */
static int map_cpu(struct here *h, const CpuEntry *e, unsigned c)
{
	if (h->cpu_map[c] >= 0)
		return h->cpu_map[c];
	int rank = dumped_node(e, c);
	int to = rank >= 0 ? free_cpu(h, rank) : -1;
	if (to < 0)
		to = free_cpu(h, -1);
	if (to < 0) { /* fewer CPUs here than the bindings name: share */
		memset(h->taken, 0, sizeof(h->taken));
		to = free_cpu(h, -1);
	}
	h->taken[to / 64] |= 1ULL << (to % 64);
	return h->cpu_map[c] = to;
}

static int map_node(struct here *h, unsigned n)
{
	if (h->node_map[n] >= 0)
		return h->node_map[n];
	int to = -1;
	if (bit_of(h->mems, RST_NODE_WORDS, n) && !bit_of(h->nodes_taken, RST_NODE_WORDS, n))
		to = (int)n;
	for (unsigned k = 0; to < 0 && k < MAX_NODES; k++)
		if (bit_of(h->mems, RST_NODE_WORDS, k) &&
		    !bit_of(h->nodes_taken, RST_NODE_WORDS, k))
			to = (int)k;
	if (to < 0) {
		memset(h->nodes_taken, 0, sizeof(h->nodes_taken));
		return map_node(h, n);
	}
	h->nodes_taken[to / 64] |= 1ULL << (to % 64);
	return h->node_map[n] = to;
}

/* The loaded mask words replaced by `words` (RST words, malloc'ed). */
static int set_words(uint64_t **field, size_t *n, const uint64_t *words, size_t nr)
{
	uint64_t *w = malloc(nr * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memcpy(w, words, nr * sizeof(*w));
	free(*field);
	*field = w;
	*n = nr;
	return 0;
}

static int place_thread(struct restore_ctx *c, struct here *h, const CpuEntry *e, pid_t pid,
			SchedEntry *s, uint32_t tid)
{
	uint64_t to[RST_CPU_WORDS] = { 0 };
	char was[256], ok[256];
	if (!s->n_affinity || s->n_affinity > RST_CPU_WORDS ||
	    subset_of(s->affinity, s->n_affinity, h->cpus, RST_CPU_WORDS))
		return 0; /* nothing, or kept (more words: refused at restore) */
	if (any_bit(e->job_cpus, e->n_job_cpus) &&
	    subset_of(e->job_cpus, e->n_job_cpus, s->affinity, s->n_affinity))
		return set_words(&s->affinity, &s->n_affinity, h->cpus, RST_CPU_WORDS);
	if (c->opts->cpu_map != CKPT_CPU_MAP_JOB) {
		mask_text(s->affinity, s->n_affinity, was, sizeof(was));
		mask_text(h->cpus, RST_CPU_WORDS, ok, sizeof(ok));
		pr_err("pid %d: thread %u: bound to CPUs %s, not all allowed here (%s): "
		       "--cpu-map=job maps the binding",
		       pid, tid, was, ok);
		return -EINVAL;
	}
	for (unsigned i = 0; i < s->n_affinity * 64; i++)
		if (bit_of(s->affinity, s->n_affinity, i)) {
			int m = map_cpu(h, e, i);
			to[m / 64] |= 1ULL << (m % 64);
		}
	return set_words(&s->affinity, &s->n_affinity, to, RST_CPU_WORDS);
}

static int place_memory(struct restore_ctx *c, struct here *h, CoreEntry *core, pid_t pid)
{
	uint64_t to[RST_NODE_WORDS] = { 0 };
	char was[256];
	if (!core->has_mempolicy_mode || core->mempolicy_mode < 0 || !core->n_mempolicy_nodes ||
	    core->n_mempolicy_nodes > RST_NODE_WORDS ||
	    subset_of(core->mempolicy_nodes, core->n_mempolicy_nodes, h->mems, RST_NODE_WORDS))
		return 0;
	if (c->opts->cpu_map != CKPT_CPU_MAP_JOB) {
		mask_text(core->mempolicy_nodes, core->n_mempolicy_nodes, was, sizeof(was));
		pr_err("pid %d: memory policy on NUMA nodes %s, not all allowed here: "
		       "--cpu-map=job maps it",
		       pid, was);
		return -EINVAL;
	}
	for (unsigned i = 0; i < core->n_mempolicy_nodes * 64; i++)
		if (bit_of(core->mempolicy_nodes, core->n_mempolicy_nodes, i)) {
			int m = map_node(h, i);
			to[m / 64] |= 1ULL << (m % 64);
		}
	return set_words(&core->mempolicy_nodes, &core->n_mempolicy_nodes, to, RST_NODE_WORDS);
}

int placement_check(struct restore_ctx *c)
{
	const CpuEntry *e = c->inv->cpu;
	if (!e)
		return 0; /* a set from before placement: restore-state.c as ever */
	struct here *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	int ret = load_here(h);
	for (size_t i = 0; !ret && i < c->nr_tasks; i++) {
		CoreEntry *core = c->tasks[i].core;
		pid_t pid = (pid_t)c->tasks[i].te->pid;
		for (size_t t = 0; core && !ret && t < core->n_threads; t++)
			if (core->threads[t]->sched)
				ret = place_thread(c, h, e, pid, core->threads[t]->sched,
						   core->threads[t]->tid);
		if (core && !ret)
			ret = place_memory(c, h, core, pid);
	}
	free(h);
	return ret;
}
