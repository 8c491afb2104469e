/*
 * Shared by the fuzz targets: a private directory on tmpfs where each
 * input is written as an image file (storage's readers read files, as
 * restore does), and the crc32c fix-ups that let the fuzzer get past the
 * checksums to the parsers behind them (an attacker can compute crcs too).
 */
#ifndef CKPT_FUZZ_UTIL_H
#define CKPT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The directory, made once per process. */
const char *fuzz_dir(void);
/* Write `len` bytes as fuzz_dir()/name (replacing it). */
void fuzz_write(const char *name, const uint8_t *data, size_t len);
/* A copy of a message image with the crc of every entry whose length
 * fits and the trailer crc made right (when it is long enough to have
 * one); malloc'd, caller frees. */
uint8_t *fuzz_fix_crcs(const uint8_t *data, size_t len);
/* Silence storage's one-line errors (they are expected here). */
void fuzz_quiet(void);

#endif
