/*
 * fuzz-manifest: the manifest parser and the set check behind it, as
 * restore runs them (img_set_open: manifest header, trailer, entry,
 * version, file names, then every listed file's presence, size and crc).
 * Two small files sit beside the manifest so that listings can name real
 * files.  The manifest's entry and trailer crcs are made right first.
 */
#include <stdlib.h>

#include "fuzz-util.h"
#include "storage.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fuzz_write("a.img", (const uint8_t *)"CKPTIMG\0abcdefgh", 16);
	fuzz_write("b.img", (const uint8_t *)"", 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed = fuzz_fix_crcs(data, size);
	struct img_set *set;

	fuzz_write("manifest", fixed, size);
	free(fixed);
	if (!img_set_open(fuzz_dir(), &set)) {
		img_set_bytes(set);
		img_set_close(set);
	}
	return 0;
}
