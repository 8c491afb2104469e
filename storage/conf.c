/*
 * conf: a small "key = value" file loader (see conf.h).  The whole file
 * is read into a list of (key, value, line) kept in file order; a key
 * set twice takes its last value, as in most configuration files.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define CONF_MAX_LINE 4096

struct conf_item {
	char *key, *value;
};

struct conf {
	char *path;
	struct conf_item *items;
	size_t nr, cap;
};

const char *conf_path(void)
{
	const char *p = getenv("CKPT_CONF");

	return p && *p ? p : CONF_DEFAULT_PATH;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int valid_key(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && !strchr("._-", *k))
			return 0;
	return 1;
}

static int conf_add(struct conf *c, const char *key, const char *value)
{
	struct conf_item *it;

	for (size_t i = 0; i < c->nr; i++) {
		if (strcmp(c->items[i].key, key))
			continue;
		char *v = strdup(value);
		if (!v)
			return -ENOMEM;
		free(c->items[i].value);
		c->items[i].value = v;
		return 0;
	}
	if (c->nr == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		it = realloc(c->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		c->items = it;
		c->cap = cap;
	}
	it = &c->items[c->nr];
	it->key = strdup(key);
	it->value = strdup(value);
	if (!it->key || !it->value) {
		free(it->key);
		free(it->value);
		return -ENOMEM;
	}
	c->nr++;
	return 0;
}

/* One line: 0, or -EINVAL with *why set. */
static int parse_line(struct conf *c, char *line, const char **why)
{
	char *hash = strchr(line, '#'), *eq, *key;

	if (hash)
		*hash = '\0';
	line = trim(line);
	if (!*line)
		return 0;
	eq = strchr(line, '=');
	if (!eq) {
		*why = "expected key = value";
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	if (!valid_key(key)) {
		*why = "bad key";
		return -EINVAL;
	}
	return conf_add(c, key, trim(eq + 1));
}

static int parse_file(struct conf *c, FILE *f)
{
	char line[CONF_MAX_LINE];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		const char *why = "out of memory";
		size_t len = strlen(line);
		int ret;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			fprintf(stderr, "ckpt: %s:%u: line too long\n", c->path, lineno);
			return -EINVAL;
		}
		ret = parse_line(c, line, &why);
		if (ret) {
			fprintf(stderr, "ckpt: %s:%u: %s\n", c->path, lineno, why);
			return ret;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "ckpt: %s: read error\n", c->path);
		return -EIO;
	}
	return 0;
}

int conf_load(const char *path, struct conf **out)
{
	struct conf *c = calloc(1, sizeof(*c));
	FILE *f;
	int ret = 0;

	if (!c || !(c->path = strdup(path))) {
		free(c);
		return -ENOMEM;
	}
	f = fopen(path, "re");
	if (f) {
		ret = parse_file(c, f);
		fclose(f);
	} else if (errno != ENOENT) {
		ret = -errno;
		fprintf(stderr, "ckpt: %s: %s\n", path, strerror(-ret));
	}
	if (ret) {
		conf_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

const char *conf_get(const struct conf *c, const char *key, const char *def)
{
	for (size_t i = 0; c && i < c->nr; i++)
		if (!strcmp(c->items[i].key, key))
			return c->items[i].value;
	return def;
}

int conf_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	char *end;
	unsigned long long v;
	const char *u;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u || end[1])
			return -EINVAL;
		for (int shift = 10 * (int)(u - units + 1); shift; shift -= 10) {
			if (v > UINT64_MAX >> 10)
				return -EINVAL;
			v <<= 10;
		}
	}
	*out = v;
	return 0;
}

int conf_get_u64(const struct conf *c, const char *key, uint64_t def, uint64_t *out)
{
	const char *s = conf_get(c, key, NULL);

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	if (conf_parse_size(s, out)) {
		fprintf(stderr, "ckpt: %s: %s = %s: not a number\n", c->path, key, s);
		return -EINVAL;
	}
	return 0;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nr; i++) {
		free(c->items[i].key);
		free(c->items[i].value);
	}
	free(c->items);
	free(c->path);
	free(c);
}
