/*
 * fuzz-image: one message image kind (FUZZ_KIND, set at build time) read
 * the way restore reads it: img_set_open_raw + img_read_all (header,
 * trailer, entry framing, protobuf-c unpack of every entry).  The entry and
 * trailer crcs are made right first, so the fuzzer reaches the parsers.
 *
 * Every entry that decodes then goes through the image tool's JSON both
 * ways (image-pb.c, image-json.c): pack(entry) must equal
 * pack(from_json(to_json(entry))), or the target aborts.
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

static void json_round_trip(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m), jlen = 0;
	uint8_t *a = malloc(len + 1), *b;
	char *text = NULL, err[128];
	FILE *f = open_memstream(&text, &jlen);
	struct json *j;
	ProtobufCMessage *back;

	if (!a || !f)
		abort();
	protobuf_c_message_pack(m, a);
	pb_to_json(f, m, 0);
	fclose(f);
	j = json_parse(text, jlen, err, sizeof(err));
	if (!j)
		abort(); /* our own output must parse */
	back = pb_from_json(m->descriptor, j, "entry");
	if (!back || protobuf_c_message_get_packed_size(back) != len) {
		fprintf(stderr, "JSON that does not read back:\n%.*s\n", (int)jlen, text);
		abort();
	}
	b = malloc(len + 1);
	protobuf_c_message_pack(back, b);
	if (memcmp(a, b, len))
		abort();
	free(a);
	free(b);
	pb_free_built(back);
	json_free(j);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct image_kind *k = image_kind_by_num(FUZZ_KIND);
	uint8_t *fixed = fuzz_fix_crcs(data, size);
	struct img_set *set;
	ProtobufCMessage **v;
	size_t n;

	fuzz_write("x.img", fixed, size);
	free(fixed);
	if (img_set_open_raw(fuzz_dir(), &set))
		abort();
	if (!img_read_all(set, k->kind, "x.img", k->desc, &v, &n)) {
		for (size_t i = 0; i < n; i++) {
			json_round_trip(v[i]);
			protobuf_c_message_free_unpacked(v[i], NULL);
		}
		free(v);
	}
	img_set_close(set);
	return 0;
}
