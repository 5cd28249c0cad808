/* inferd/tensor.h: n-dimensional arrays for inference inputs and outputs.
 *
 * A tensor has a dtype, a shape (up to INFERD_TENSOR_MAX_DIMS dimensions, all
 * known: a concrete tensor has no dynamic dimension), an optional name, and
 * contiguous row-major data. The data has an owner: either the tensor itself
 * (inferd_tensor_new) or someone else, who is told through a release callback
 * when the tensor no longer needs it (inferd_tensor_wrap): this is how an
 * ONNX Runtime output or a shared-memory region becomes a tensor without a copy.
 */
#ifndef INFERD_TENSOR_H
#define INFERD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INFERD_TENSOR_MAX_DIMS 8

typedef enum inferd_dtype {
    INFERD_DTYPE_INVALID = 0,
    INFERD_DTYPE_BOOL,    /* 1 byte */
    INFERD_DTYPE_UINT8,
    INFERD_DTYPE_INT8,
    INFERD_DTYPE_UINT16,
    INFERD_DTYPE_INT16,
    INFERD_DTYPE_UINT32,
    INFERD_DTYPE_INT32,
    INFERD_DTYPE_UINT64,
    INFERD_DTYPE_INT64,
    INFERD_DTYPE_FLOAT16, /* IEEE half, stored as uint16_t bits */
    INFERD_DTYPE_FLOAT32,
    INFERD_DTYPE_FLOAT64
} inferd_dtype;

/* Size of one element in bytes; 0 for INFERD_DTYPE_INVALID. */
INFERD_API size_t inferd_dtype_size(inferd_dtype dtype);
/* The KServe v2 names: "BOOL", "UINT8", ..., "FP16", "FP32", "FP64". */
INFERD_API const char *inferd_dtype_name(inferd_dtype dtype);
/* Accepts the KServe names and the numpy-style ones ("float32", "uint8", ...). */
INFERD_API inferd_status inferd_dtype_parse(const char *name, inferd_dtype *out, inferd_error *err);

typedef void (*inferd_release_fn)(void *ctx, void *data);

typedef struct inferd_tensor {
    inferd_dtype dtype;
    size_t ndim;
    int64_t shape[INFERD_TENSOR_MAX_DIMS];
    void *data;        /* contiguous, row-major; aligned to 64 bytes when owned */
    size_t nbytes;     /* == element count * dtype size */
    char *name;        /* optional (NULL), owned; e.g. the model output's name */
    /* private: who frees data */
    inferd_release_fn release;
    void *release_ctx;
} inferd_tensor;

/* Element count of a shape; INFERD_ERANGE on a negative dim or overflow. */
INFERD_API inferd_status inferd_shape_count(size_t ndim, const int64_t *shape, size_t *count,
                                            inferd_error *err);
/* Writes "[1,3,224,224]" into buf (always NUL-terminated); returns buf. */
INFERD_API char *inferd_shape_format(size_t ndim, const int64_t *shape, char *buf, size_t size);

/* A new tensor with zeroed, owned, 64-byte-aligned data. */
INFERD_API inferd_status inferd_tensor_new(inferd_dtype dtype, size_t ndim, const int64_t *shape,
                                           inferd_tensor **out, inferd_error *err);
/* A tensor over data owned elsewhere. nbytes must equal the shape's element
 * count times the dtype size, else INFERD_EINVAL says both numbers. release
 * (may be NULL) is called once with (release_ctx, data) when the tensor is
 * freed. On failure release is NOT called: the caller keeps ownership. */
INFERD_API inferd_status inferd_tensor_wrap(inferd_dtype dtype, size_t ndim, const int64_t *shape,
                                            void *data, size_t nbytes, inferd_release_fn release,
                                            void *release_ctx, inferd_tensor **out,
                                            inferd_error *err);
/* Sets (copies) the tensor's name; NULL clears it. */
INFERD_API inferd_status inferd_tensor_set_name(inferd_tensor *t, const char *name,
                                                inferd_error *err);
INFERD_API size_t inferd_tensor_count(const inferd_tensor *t);
/* Frees the tensor and releases its data. NULL is allowed. */
INFERD_API void inferd_tensor_free(inferd_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_TENSOR_H */
