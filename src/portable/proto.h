/* portable/proto.h: frames of the portable plugin protocol (docs/portable-protocol.md).
 *
 * A frame is a JSON header plus blobs (bytes), the blobs in the frame's body
 * or, from PROTO_SHM_MIN bytes on, in one memfd passed with SCM_RIGHTS.
 * Values cross as JSON where bytes become {"$blob": i}. Internal to libinferd.
 */
#ifndef INFERD_PORTABLE_PROTO_H
#define INFERD_PORTABLE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"
#include "inferd/value.h"

#define PROTO_VERSION 1
#define PROTO_MAX_HEADER (16u << 20)
#define PROTO_MAX_BODY (256u << 20)
#define PROTO_SHM_MIN (64u << 10) /* blobs from this total on go through a memfd */

typedef struct proto_blob {
    const void *data; /* borrowed */
    size_t size;
} proto_blob;

/* Blobs gathered while encoding a message (pointers borrowed from the values). */
typedef struct proto_blobs {
    proto_blob *v; /* owned array */
    size_t n, cap;
} proto_blobs;
void proto_blobs_clear(proto_blobs *b);
/* Appends one blob; its index, or -1 when memory ran out. */
long proto_blobs_add(proto_blobs *b, const void *data, size_t size);

/* A copy of v where every bytes value is {"$blob": i}, the bytes added to
 * blobs (borrowed from v: keep v alive until the frame is sent). NULL when
 * memory ran out. */
inferd_value *proto_encode_value(const inferd_value *v, proto_blobs *blobs);

/* A received frame (owns everything it points to). */
typedef struct proto_frame {
    inferd_value *header; /* the JSON header, "$blob" objects left as they are */
    void *body;           /* malloc'd body, or NULL */
    void *map;            /* the memfd's read-only mapping, or NULL */
    size_t map_len;
    proto_blob *blobs;    /* owned array; data inside body or map */
    size_t n_blobs;
} proto_frame;
void proto_frame_clear(proto_frame *f);
/* A copy of v (from f's header) where {"$blob": i} is bytes (copied) and
 * {"$image": ...} stays as it is. Errors name a blob index out of range. */
inferd_status proto_decode_value(const inferd_value *v, const proto_frame *f, inferd_value **out,
                                 inferd_error *err);

/* Sends one frame: header (borrowed; "blobs" and "shm" are added to a copy)
 * and blobs. fd may be non-blocking: a full socket is waited for until
 * deadline_us (monotonic; 0: forever). The caller serialises senders.
 * shm_fd >= 0: blobs that go through shared memory are written into that
 * memfd (from offset 0; it may be larger) instead of a new one, and it stays
 * the caller's: a memfd used again once the plugin has answered the call
 * that carried it (docs/portable-protocol.md). */
inferd_status proto_send(int fd, const inferd_value *header, const proto_blob *blobs, size_t n,
                         int shm_fd, uint64_t deadline_us, inferd_error *err);
/* The total of blobs' sizes; whether it goes through shared memory. */
size_t proto_blobs_total(const proto_blob *blobs, size_t n);

/* Incremental reader for a non-blocking socket. */
typedef struct proto_reader {
    uint8_t *buf; /* owned */
    size_t len, cap;
    int fds[16];  /* descriptors received and not yet taken by a frame */
    size_t n_fds;
    size_t last_room; /* what the last fill could have taken: less came, the socket is empty */
} proto_reader;
void proto_reader_init(proto_reader *r);
void proto_reader_clear(proto_reader *r); /* frees the buffer, closes queued fds */
/* Reads what the socket has: >0 bytes read, 0 at end of stream, -1 with
 * errno (EAGAIN: nothing now). */
long proto_reader_fill(proto_reader *r, int fd);
/* Takes the next whole frame: 1 (filled *f), 0 (not yet), or an error for a
 * frame that breaks the protocol (the connection is then unusable). */
inferd_status proto_reader_next(proto_reader *r, proto_frame *f, int *got, inferd_error *err);

#endif
