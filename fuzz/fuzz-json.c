/*
 * fuzz-json: the image tool's JSON reader and encoder (what `ckptctl
 * image encode` runs on a document): json_parse, then pb_from_json and
 * img_build for any image kind.  What builds must decode again (through
 * storage's reader) and encode to the same bytes, or the target aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "image.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL, *again = NULL;
	size_t len, len2, tlen = 0;
	char path[128], *text = NULL;
	FILE *f;

	if (image_build_json((const char *)data, size, "input", &out, &len))
		return 0;
	fuzz_write("j.img", out, len);
	snprintf(path, sizeof(path), "%s/j.img", fuzz_dir());
	f = open_memstream(&text, &tlen);
	if (!f)
		abort();
	if (image_decode(path, f))
		abort(); /* what encode writes, decode must read */
	fclose(f);
	if (image_build_json(text, tlen, "decoded", &again, &len2) || len2 != len ||
	    memcmp(out, again, len))
		abort();
	free(text);
	free(out);
	free(again);
	return 0;
}
