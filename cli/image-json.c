/*
 * image-json: the JSON the image tool reads and writes.  A recursive
 * descent parser into a tree of struct json (depth-limited: the input may
 * be hostile), numbers kept as their literal text so that 64-bit values
 * survive exactly, and a string writer.
 *
 * Strings are bytes: image paths need not be UTF-8.  The writer passes
 * valid UTF-8 through and writes any other byte as \u0080-\u00ff; the
 * reader turns \u0000-\u00ff back into that one byte (\u0000 is refused:
 * protobuf-c strings end at NUL) and other \u escapes into UTF-8.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

struct parser {
	const char *p, *end;
	int depth;
	char *err;
	size_t errlen;
	int failed;
};

static void fail(struct parser *ps, const char *what)
{
	if (!ps->failed)
		snprintf(ps->err, ps->errlen, "%s", what);
	ps->failed = 1;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->nr; i++)
		json_free(j->items[i]);
	free(j->items);
	free(j->key);
	free(j->text);
	free(j);
}

static int push(struct json *j, struct json *item)
{
	if ((j->nr & (j->nr - 1)) == 0) { /* 0, 1, 2, 4...: grow to the next power */
		struct json **v = realloc(j->items, (j->nr ? 2 * j->nr : 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		j->items = v;
	}
	j->items[j->nr++] = item;
	return 0;
}

static int hex4(struct parser *ps, unsigned *out)
{
	unsigned v = 0;

	if (ps->end - ps->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* One escape after the backslash, appended to buf. */
static int unescape(struct parser *ps, char *buf, size_t *n)
{
	char c = *ps->p++;
	unsigned u;

	switch (c) {
	case '"': case '\\': case '/': buf[(*n)++] = c; return 0;
	case 'b': buf[(*n)++] = '\b'; return 0;
	case 'f': buf[(*n)++] = '\f'; return 0;
	case 'n': buf[(*n)++] = '\n'; return 0;
	case 'r': buf[(*n)++] = '\r'; return 0;
	case 't': buf[(*n)++] = '\t'; return 0;
	case 'u': break;
	default: return -1;
	}
	if (hex4(ps, &u) || u == 0 || (u >= 0xd800 && u <= 0xdfff))
		return -1; /* no NUL, no surrogate pairs: we never write them */
	if (u < 0x100) {
		buf[(*n)++] = (char)u;
	} else if (u < 0x800) {
		buf[(*n)++] = (char)(0xc0 | u >> 6);
		buf[(*n)++] = (char)(0x80 | (u & 0x3f));
	} else {
		buf[(*n)++] = (char)(0xe0 | u >> 12);
		buf[(*n)++] = (char)(0x80 | ((u >> 6) & 0x3f));
		buf[(*n)++] = (char)(0x80 | (u & 0x3f));
	}
	return 0;
}

/* A string literal, the opening quote already consumed. */
static char *parse_string(struct parser *ps, size_t *len)
{
	const char *q = ps->p;
	char *buf;
	size_t n = 0;

	while (q < ps->end && *q != '"')
		q += *q == '\\' ? 2 : 1;
	if (q >= ps->end) {
		fail(ps, "unterminated string");
		return NULL;
	}
	/* An escape never yields more bytes than its own text. */
	buf = malloc(q - ps->p + 1);
	if (!buf) {
		fail(ps, "out of memory");
		return NULL;
	}
	while (*ps->p != '"') {
		if ((unsigned char)*ps->p < 0x20) {
			fail(ps, "control character in a string");
			goto bad;
		}
		if (*ps->p != '\\') {
			buf[n++] = *ps->p++;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end || unescape(ps, buf, &n)) {
			fail(ps, "bad escape");
			goto bad;
		}
		if (ps->p > q) { /* an escape ran past the quote we found */
			fail(ps, "bad escape");
			goto bad;
		}
	}
	ps->p++;
	buf[n] = '\0';
	*len = n;
	return buf;
bad:
	free(buf);
	return NULL;
}

static int parse_number(struct parser *ps, struct json *j)
{
	const char *s = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return -1;
	while (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' ||
				   *ps->p == 'e' || *ps->p == 'E' || *ps->p == '+' || *ps->p == '-'))
		ps->p++;
	j->text = strndup(s, ps->p - s);
	return j->text ? 0 : -1;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return -1;
	ps->p += n;
	return 0;
}

static struct json *parse_value(struct parser *ps);

/* Array or object members, the opening bracket consumed. */
static int parse_members(struct parser *ps, struct json *j, char close)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		struct json *item;

		skip_ws(ps);
		if (close == '}') {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "expected a member name"), -1;
			ps->p++;
			if (!(key = parse_string(ps, &klen)))
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				return fail(ps, "expected ':'"), -1;
			}
			ps->p++;
		}
		item = parse_value(ps);
		if (!item) {
			free(key);
			return -1;
		}
		item->key = key;
		if (push(j, item)) {
			json_free(item);
			return fail(ps, "out of memory"), -1;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return fail(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
	}
}

static int parse_into(struct parser *ps, struct json *j)
{
	char c = *ps->p;

	if (c == '{' || c == '[') {
		int ret;
		if (++ps->depth > JSON_MAX_DEPTH)
			return fail(ps, "nested too deep"), -1;
		ps->p++;
		j->type = c == '{' ? JSON_OBJ : JSON_ARR;
		ret = parse_members(ps, j, c == '{' ? '}' : ']');
		ps->depth--;
		return ret;
	}
	if (c == '"') {
		ps->p++;
		j->type = JSON_STR;
		j->text = parse_string(ps, &j->len);
		return j->text ? 0 : -1;
	}
	if (!literal(ps, "true") || !literal(ps, "false")) {
		j->type = JSON_BOOL;
		j->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
		return 0;
	}
	if (!literal(ps, "null")) {
		j->type = JSON_NULL;
		return 0;
	}
	j->type = JSON_NUM;
	if (parse_number(ps, j))
		return fail(ps, "unexpected character"), -1;
	return 0;
}

static struct json *parse_value(struct parser *ps)
{
	struct json *j;

	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end");
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		fail(ps, "out of memory");
		return NULL;
	}
	if (parse_into(ps, j)) {
		json_free(j);
		return NULL;
	}
	return j;
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser ps = { .p = text, .end = text + len, .err = err, .errlen = errlen };
	struct json *j = parse_value(&ps);

	if (j) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			fail(&ps, "trailing characters");
			json_free(j);
			j = NULL;
		}
	}
	if (!j && ps.failed) {
		/* Report the position as a line number: easier to find. */
		size_t line = 1;
		for (const char *q = text; q < ps.p && q < ps.end; q++)
			line += *q == '\n';
		size_t used = strnlen(err, errlen);
		snprintf(err + used, errlen - used, " on line %zu", line);
	}
	return j;
}

const struct json *json_get(const struct json *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->nr; i++)
		if (!strcmp(obj->items[i]->key, key))
			return obj->items[i];
	return NULL;
}

int json_uint(const struct json *j, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!j || j->type != JSON_NUM || j->text[0] == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(j->text, &end, 10);
	if (*end || errno || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int json_int(const struct json *j, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!j || j->type != JSON_NUM)
		return -EINVAL;
	errno = 0;
	v = strtoll(j->text, &end, 10);
	if (*end || errno || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Length of a valid UTF-8 sequence (no overlongs, no surrogates) at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n > left)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_put_str(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	for (size_t i = 0; i < len;) {
		size_t n;
		if (s[i] == '"' || s[i] == '\\') {
			fprintf(f, "\\%c", s[i++]);
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			fprintf(f, "\\u%04x", s[i++]);
		} else if (s[i] < 0x80) {
			fputc(s[i++], f);
		} else if ((n = utf8_len(s + i, len - i)) && n != 2) {
			/* Two-byte sequences are U+0080-U+07FF; those below
			 * U+0100 would read back as one raw byte, so every
			 * two-byte sequence goes out as its two raw bytes
			 * escaped, which reads back the same. */
			fwrite(s + i, 1, n, f);
			i += n;
		} else {
			fprintf(f, "\\u%04x", s[i++]);
		}
	}
	fputc('"', f);
}
