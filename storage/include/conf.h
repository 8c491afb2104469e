/*
 * conf: the ckpt configuration file, /etc/ckpt/ckpt.conf (or $CKPT_CONF).
 *
 * One setting per line, "key = value"; '#' starts a comment, blank lines
 * are skipped, surrounding blanks are trimmed.  Keys are dotted names
 * ("storage.base", "agent.socket"); each part of ckpt reads its own keys
 * with conf_get*() and a default.  The example with every key documented
 * is etc/ckpt.conf in the source tree.
 */
#ifndef CKPT_CONF_H
#define CKPT_CONF_H

#include <stdint.h>

#define CONF_DEFAULT_PATH "/etc/ckpt/ckpt.conf"

struct conf;

/* The path to use: $CKPT_CONF if set, else CONF_DEFAULT_PATH. */
const char *conf_path(void);
/* A missing file is an empty configuration.  A bad line fails with
 * -EINVAL after one message naming file:line. */
int conf_load(const char *path, struct conf **out);
/* The value of `key`, or `def` when it is not set. */
const char *conf_get(const struct conf *c, const char *key, const char *def);
/* Numbers: decimal with an optional K, M, G or T suffix (powers of 1024).
 * -EINVAL (after a message naming the key) if the value is not one. */
int conf_get_u64(const struct conf *c, const char *key, uint64_t def, uint64_t *out);
/* The number syntax conf_get_u64 accepts: "123", "4K", "2G". */
int conf_parse_size(const char *s, uint64_t *out);
void conf_free(struct conf *c);

#endif
