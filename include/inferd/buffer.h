/* inferd/buffer.h: the unit of data that flows through inferd.
 *
 * A buffer is created once and reference-counted; it is never copied to cross
 * an element or a thread. It carries:
 *   - a payload, with the data format a port speaks ("image/jpeg",
 *     "image/rgb", "metadata/tensor", "result/json", ...). The payload is one
 *     of: a value (encoded images are bytes values, results are objects), a
 *     decoded image, or a list of tensors;
 *   - typed metadata, each entry filed under the name of the element that
 *     produced it and a format ("metadata/object", "metadata/class", ...), so
 *     that downstream elements read it by the producer's name (dataSource);
 *   - a frame id, a stream (channel) id, a timestamp;
 *   - an error that travels with the buffer to the sink instead of vanishing.
 *
 * An element that makes a new payload (a decoder, a tensor converter) derives
 * a new buffer from its input, so the frame's metadata follows it.
 *
 * Thread safety: ref/unref are atomic. Metadata may be added and read from
 * several threads (an internal lock); the payload is set by the buffer's
 * creator before it is shared and is read-only afterwards.
 */
#ifndef INFERD_BUFFER_H
#define INFERD_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/image.h"
#include "inferd/status.h"
#include "inferd/tensor.h"
#include "inferd/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inferd_buffer inferd_buffer;

typedef enum inferd_payload_kind {
    INFERD_PAYLOAD_NONE = 0,
    INFERD_PAYLOAD_VALUE,   /* inferd_value (bytes for encoded images, objects for results) */
    INFERD_PAYLOAD_IMAGE,   /* inferd_image */
    INFERD_PAYLOAD_TENSORS  /* one or more inferd_tensor */
} inferd_payload_kind;

/* What one metadata entry holds: exactly one of value, tensor, image. */
typedef struct inferd_meta {
    const char *producer;   /* element name, borrowed from the buffer */
    const char *format;     /* "metadata/object", ..., borrowed from the buffer */
    const inferd_value *value;   /* or NULL */
    const inferd_tensor *tensor; /* or NULL */
    const inferd_image *image;   /* or NULL */
} inferd_meta;

/* A new buffer with one reference, no payload, frame id 0. NULL on ENOMEM. */
INFERD_API inferd_buffer *inferd_buffer_new(void);
INFERD_API inferd_buffer *inferd_buffer_ref(inferd_buffer *buf); /* returns buf */
/* A new buffer for the next stage of the same frame: same frame id, stream
 * and timestamp, the parent's error, no payload, and the parent's metadata
 * visible through it (find_meta looks in the buffer, then its ancestors;
 * meta_at lists ancestors' entries first). Holds a reference to parent, so
 * nothing of the frame is copied. NULL on ENOMEM or a NULL parent. */
INFERD_API inferd_buffer *inferd_buffer_derive(inferd_buffer *parent);
/* The buffer this one was derived from (borrowed), or NULL. */
INFERD_API const inferd_buffer *inferd_buffer_parent(const inferd_buffer *buf);
/* Drops one reference; the last one frees payload, metadata and error. NULL ok. */
INFERD_API void inferd_buffer_unref(inferd_buffer *buf);
/* Current reference count (for tests and diagnostics; racy by nature). */
INFERD_API unsigned inferd_buffer_refcount(const inferd_buffer *buf);

INFERD_API void inferd_buffer_set_frame(inferd_buffer *buf, uint64_t frame_id, uint32_t stream_id,
                                        int64_t timestamp_ns);
INFERD_API uint64_t inferd_buffer_frame_id(const inferd_buffer *buf);
INFERD_API uint32_t inferd_buffer_stream_id(const inferd_buffer *buf);
INFERD_API int64_t inferd_buffer_timestamp(const inferd_buffer *buf);

/* Payload setters take ownership of what they are given, also on failure,
 * and replace (free) any previous payload. format must be non-empty. */
INFERD_API inferd_status inferd_buffer_set_value(inferd_buffer *buf, const char *format,
                                                 inferd_value *value, inferd_error *err);
INFERD_API inferd_status inferd_buffer_set_image(inferd_buffer *buf, inferd_image *image,
                                                 inferd_error *err);
/* Takes the n tensors and the array itself (malloc'd). Format "metadata/tensor". */
INFERD_API inferd_status inferd_buffer_set_tensors(inferd_buffer *buf, inferd_tensor **tensors,
                                                   size_t n, inferd_error *err);

INFERD_API inferd_payload_kind inferd_buffer_payload_kind(const inferd_buffer *buf);
/* The payload's data format, or NULL when there is no payload. For an image
 * payload it is derived from the pixel format ("image/rgb", ...). */
INFERD_API const char *inferd_buffer_format(const inferd_buffer *buf);
/* Borrowed views of the payload; NULL when the payload is of another kind. */
INFERD_API const inferd_value *inferd_buffer_value(const inferd_buffer *buf);
INFERD_API const inferd_image *inferd_buffer_image(const inferd_buffer *buf);
INFERD_API size_t inferd_buffer_tensor_count(const inferd_buffer *buf);
INFERD_API const inferd_tensor *inferd_buffer_tensor(const inferd_buffer *buf, size_t i);

/* Metadata. Adding takes ownership of the item (also on failure). A buffer
 * holds at most one entry per (producer, format): adding again replaces it. */
INFERD_API inferd_status inferd_buffer_add_meta_value(inferd_buffer *buf, const char *producer,
                                                      const char *format, inferd_value *value,
                                                      inferd_error *err);
INFERD_API inferd_status inferd_buffer_add_meta_tensor(inferd_buffer *buf, const char *producer,
                                                       const char *format, inferd_tensor *tensor,
                                                       inferd_error *err);
INFERD_API inferd_status inferd_buffer_add_meta_image(inferd_buffer *buf, const char *producer,
                                                      const char *format, inferd_image *image,
                                                      inferd_error *err);
/* Finds the entry of producer (and format, or any format when format is NULL).
 * Returns false if none. The entry's pointers live as long as the buffer. */
INFERD_API bool inferd_buffer_find_meta(const inferd_buffer *buf, const char *producer,
                                        const char *format, inferd_meta *out);
INFERD_API size_t inferd_buffer_meta_count(const inferd_buffer *buf);
/* The i-th entry in the order added; false when out of range. */
INFERD_API bool inferd_buffer_meta_at(const inferd_buffer *buf, size_t i, inferd_meta *out);

/* The error that travels with the buffer. Setting one where one exists keeps
 * the first (the cause), since later errors are usually consequences. */
INFERD_API void inferd_buffer_set_error(inferd_buffer *buf, const inferd_error *err);
/* NULL when the buffer carries no error; borrowed. */
INFERD_API const inferd_error *inferd_buffer_error(const inferd_buffer *buf);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_BUFFER_H */
