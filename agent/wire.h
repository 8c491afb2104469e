/*
 * wire: frames on a stream socket, shared by ckptd and its clients.  A
 * frame is a 4-byte little-endian length and that many bytes (one packed
 * protobuf-c message).  Frames longer than the caller's limit are refused
 * without reading them (the connection is then unusable).
 */
#ifndef CKPT_WIRE_H
#define CKPT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define WIRE_MAX_FRAME (1u << 20)

/* 0, or -errno; -EPIPE when the peer has gone. */
int wire_send(int fd, const void *buf, size_t len);
int wire_send_msg(int fd, const ProtobufCMessage *m);
/* 0 with a malloc'ed *buf; -ENODATA on a clean EOF before a frame;
 * -EMSGSIZE for a frame over max; -EPROTO for EOF inside a frame. */
int wire_recv(int fd, void **buf, size_t *len, size_t max);
/* wire_recv, the whole frame by deadline_ns (wire_clock_ns; 0: no
 * deadline), however its bytes trickle in: -ETIMEDOUT past it. */
int wire_recv_by(int fd, void **buf, size_t *len, size_t max, uint64_t deadline_ns);
uint64_t wire_clock_ns(void); /* CLOCK_MONOTONIC */

#endif
