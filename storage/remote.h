/*
 * remote: the wire of the page server (remote.c: the dumping side,
 * page-server.c: the receiving side).  Internal to storage/.
 *
 * One TCP connection carries one set.  Every frame is a 24-byte header,
 * little endian:
 *
 *   u32 type, u32 name length, u64 offset, u32 data length, u32 0
 *
 * then the name, then the data.  The first frame is AUTH (data: a munge
 * credential); the server answers REPLY.  Then DATA frames write `data`
 * at `offset` of file `name` of the set (pages files as they are made,
 * the other files at commit), and COMMIT carries the manifest: the server
 * checks that every file it lists came with its size, makes the set
 * durable, renames the manifest into place and answers REPLY (offset:
 * 0 or a negative errno; data: a one-line reason).
 */
#ifndef CKPT_STORAGE_REMOTE_H
#define CKPT_STORAGE_REMOTE_H

#include <stdint.h>

enum remote_frame {
	REMOTE_AUTH = 1,
	REMOTE_DATA = 2,
	REMOTE_COMMIT = 3,
	REMOTE_REPLY = 4,
};

#define REMOTE_HDR 24u
#define REMOTE_MAX_NAME 255u
#define REMOTE_MAX_CRED 4000u
#define REMOTE_MAX_DATA (8u << 20) /* a compressed chunk is at most ~4 MiB */
#define REMOTE_MAX_MANIFEST (64u << 20)

struct remote_hdr {
	uint32_t type, name_len;
	uint64_t offset;
	uint32_t len;
};

void remote_hdr_pack(uint8_t out[REMOTE_HDR], const struct remote_hdr *h);
void remote_hdr_unpack(const uint8_t in[REMOTE_HDR], struct remote_hdr *h);
/* Exactly len bytes, or -errno (-EPIPE: the peer closed). */
int remote_recv_full(int fd, void *buf, size_t len);
int remote_send_frame(int fd, const struct remote_hdr *h, const char *name, const void *data);

#endif
