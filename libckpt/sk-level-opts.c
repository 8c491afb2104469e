/*
 * sk-level-opts: a family's own integer socket options from a small
 * table (see sk-level-opts.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sk-level-opts.h"

static int get_int(int sk, const struct level_opt *r, int *v)
{
	socklen_t len = sizeof(*v);
	*v = 0;
	return getsockopt(sk, r->level, r->opt, v, &len) ? -errno : 0;
}

int level_opts_dump(struct arena *a, int sk, const struct level_opts *t, SkOpt ***out, size_t *nr)
{
	SkOpt *all = arena_alloc(a, (t->nr + 1) * sizeof(*all));
	SkOpt **v = arena_alloc(a, (t->nr + 1) * sizeof(*v));
	if (!all || !v)
		return -ENOMEM;
	*nr = 0;
	for (size_t i = 0; i < t->nr; i++) {
		int val;
		if (get_int(sk, &t->rows[i], &val))
			continue; /* this kernel or this socket type has none */
		sk_opt__init(&all[i]);
		all[i].level = (uint32_t)t->rows[i].level;
		all[i].name = (uint32_t)t->rows[i].opt;
		all[i].has_value = 1;
		all[i].value = val;
		v[(*nr)++] = &all[i];
	}
	*out = v;
	return 0;
}

static const struct level_opt *row_of(const struct level_opts *t, const SkOpt *o)
{
	for (size_t i = 0; o && i < t->nr; i++)
		if ((uint32_t)t->rows[i].level == o->level && (uint32_t)t->rows[i].opt == o->name)
			return &t->rows[i];
	return NULL;
}

int level_opts_valid(SkOpt *const *o, size_t nr, const struct level_opts *t)
{
	for (size_t i = 0; i < nr; i++) {
		if (!row_of(t, o[i]) || !o[i]->has_value || o[i]->has_data ||
		    o[i]->value < -2147483648LL || o[i]->value > 2147483647LL)
			return 0;
		for (size_t j = 0; j < i; j++)
			if (o[j]->level == o[i]->level && o[j]->name == o[i]->name)
				return 0;
	}
	return 1;
}

static const SkOpt *find(SkOpt *const *o, size_t nr, const struct level_opt *r)
{
	for (size_t i = 0; i < nr; i++)
		if (o[i]->level == (uint32_t)r->level && o[i]->name == (uint32_t)r->opt)
			return o[i];
	return NULL;
}

int level_opts_restore(int sk, SkOpt *const *o, size_t nr, const struct level_opts *t, char *err,
		       size_t errlen)
{
	for (size_t i = 0; i < t->nr; i++) {
		const struct level_opt *r = &t->rows[i];
		const SkOpt *want = find(o, nr, r);
		int now, e;
		if (!want || (!get_int(sk, r, &now) && now == want->value))
			continue;
		int v = (int)want->value;
		e = setsockopt(sk, r->level, r->opt, &v, sizeof(v)) ? -errno : 0;
		if (e) {
			snprintf(err, errlen, "%s %d: %s", r->name, v, strerror(-e));
			return e;
		}
		if (get_int(sk, r, &now) || now != v) {
			snprintf(err, errlen, "%s: set to %d, reads %d", r->name, v, now);
			return -EINVAL;
		}
	}
	return 0;
}

int level_opts_verify(int sk, SkOpt *const *o, size_t nr, const struct level_opts *t,
		      sk_opts_diff_fn fn, void *arg)
{
	int n = 0;
	for (size_t i = 0; i < t->nr; i++) {
		const SkOpt *want = find(o, nr, &t->rows[i]);
		int now, e;
		if (!want || (!(e = get_int(sk, &t->rows[i], &now)) && now == want->value))
			continue;
		char a[48], b[48];
		snprintf(a, sizeof(a), "%d", now);
		if (e)
			snprintf(a, sizeof(a), "unreadable (%s)", strerror(-e));
		snprintf(b, sizeof(b), "%lld", (long long)want->value);
		fn(arg, t->rows[i].name, a, b);
		n++;
	}
	return n;
}
