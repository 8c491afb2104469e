/*
 * image-all: every message of a message image at once, for the small
 * images a restore keeps whole (files, fds, pipe data, pagemap).
 */
#include <errno.h>
#include <stdlib.h>

#include "storage.h"

int img_read_all(struct img_set *set, enum img_kind kind, const char *name,
		    const ProtobufCMessageDescriptor *desc, ProtobufCMessage ***out, size_t *nr)
{
	struct img *img;
	size_t n = 0, cap = 16;
	ProtobufCMessage **v = malloc(cap * sizeof(*v)), *m;
	int ret = v ? img_open(set, kind, name, &img) : -ENOMEM;
	if (ret) {
		free(v);
		return ret;
	}
	while (!(ret = img_read(img, desc, &m)) && m) {
		if (n == cap) {
			ProtobufCMessage **nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv) {
				protobuf_c_message_free_unpacked(m, NULL);
				ret = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = m;
	}
	img_close(img);
	if (ret) {
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(v[i], NULL);
		free(v);
		return ret;
	}
	*out = v;
	*nr = n;
	return 0;
}
