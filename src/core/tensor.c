/* tensor.c: dtypes, shapes and tensors.
 *
 * Ownership: a tensor owns its struct and its name. Its data is released
 * through t->release: for inferd_tensor_new that is owned_release (free), for
 * inferd_tensor_wrap it is the caller's callback (or nothing when NULL).
 */
#include "inferd/tensor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Owned data is aligned for AVX-512 loads; aligned_alloc wants a size that is
 * a multiple of the alignment. */
#define TENSOR_ALIGN 64u

static const struct {
    inferd_dtype dtype;
    size_t size;
    const char *kserve; /* the KServe v2 name */
    const char *numpy;  /* the numpy name, also accepted by parse */
} dtypes[] = {
    {INFERD_DTYPE_BOOL, 1, "BOOL", "bool"},
    {INFERD_DTYPE_UINT8, 1, "UINT8", "uint8"},
    {INFERD_DTYPE_INT8, 1, "INT8", "int8"},
    {INFERD_DTYPE_UINT16, 2, "UINT16", "uint16"},
    {INFERD_DTYPE_INT16, 2, "INT16", "int16"},
    {INFERD_DTYPE_UINT32, 4, "UINT32", "uint32"},
    {INFERD_DTYPE_INT32, 4, "INT32", "int32"},
    {INFERD_DTYPE_UINT64, 8, "UINT64", "uint64"},
    {INFERD_DTYPE_INT64, 8, "INT64", "int64"},
    {INFERD_DTYPE_FLOAT16, 2, "FP16", "float16"},
    {INFERD_DTYPE_FLOAT32, 4, "FP32", "float32"},
    {INFERD_DTYPE_FLOAT64, 8, "FP64", "float64"},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

size_t inferd_dtype_size(inferd_dtype dtype)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].size;
    return 0;
}

const char *inferd_dtype_name(inferd_dtype dtype)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].kserve;
    /* Never NULL, so that callers can print it unconditionally. */
    return "INVALID";
}

inferd_status inferd_dtype_parse(const char *name, inferd_dtype *out, inferd_error *err)
{
    if (!name || !out)
        return inferd_error_set(err, INFERD_EINVAL, "dtype name is NULL");
    for (size_t i = 0; i < NDTYPES; i++) {
        if (strcmp(name, dtypes[i].kserve) == 0 || strcmp(name, dtypes[i].numpy) == 0) {
            *out = dtypes[i].dtype;
            return INFERD_OK;
        }
    }
    /* KServe v2 names that are valid but that inferd cannot hold in a tensor. */
    if (strcmp(name, "BYTES") == 0 || strcmp(name, "BF16") == 0)
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "dtype %s is not supported", name);
    return inferd_error_set(err, INFERD_EINVAL, "unknown dtype '%s'", name);
}

inferd_status inferd_shape_count(size_t ndim, const int64_t *shape, size_t *count,
                                 inferd_error *err)
{
    if (ndim > INFERD_TENSOR_MAX_DIMS)
        return inferd_error_set(err, INFERD_ERANGE, "shape has %zu dimensions, at most %d allowed",
                                ndim, INFERD_TENSOR_MAX_DIMS);
    if (ndim > 0 && !shape)
        return inferd_error_set(err, INFERD_EINVAL, "shape is NULL");
    /* Check every dim for sign first, so that [0,-1] reports the negative dim
     * rather than a count of 0. */
    for (size_t i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return inferd_error_set(err, INFERD_ERANGE, "dimension %zu is negative (%" PRId64 ")",
                                    i, shape[i]);
    size_t n = 1; /* a scalar (ndim 0) has one element */
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d > SIZE_MAX || (d != 0 && n > SIZE_MAX / (size_t)d)) {
            char buf[256];
            return inferd_error_set(err, INFERD_ERANGE, "shape %s has too many elements",
                                    inferd_shape_format(ndim, shape, buf, sizeof buf));
        }
        n *= (size_t)d;
    }
    if (count)
        *count = n;
    return INFERD_OK;
}

char *inferd_shape_format(size_t ndim, const int64_t *shape, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    if (!shape)
        ndim = 0;
    /* snprintf returns the length it wanted, so used can pass size on
     * truncation; it always NUL-terminates within size. */
    size_t used = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

/* Validates dtype and shape and computes the byte size, for new and wrap. */
static inferd_status tensor_nbytes(inferd_dtype dtype, size_t ndim, const int64_t *shape,
                                   size_t *nbytes, inferd_error *err)
{
    size_t esize = inferd_dtype_size(dtype);
    if (esize == 0)
        return inferd_error_set(err, INFERD_EINVAL, "invalid dtype %d", (int)dtype);
    size_t count;
    inferd_status st = inferd_shape_count(ndim, shape, &count, err);
    if (st != INFERD_OK)
        return st;
    if (count > SIZE_MAX / esize) {
        char buf[256];
        return inferd_error_set(err, INFERD_ERANGE, "tensor %s of %s is too large",
                                inferd_shape_format(ndim, shape, buf, sizeof buf),
                                inferd_dtype_name(dtype));
    }
    *nbytes = count * esize;
    return INFERD_OK;
}

/* A tensor struct with the shape copied and no data yet. */
static inferd_tensor *tensor_alloc(inferd_dtype dtype, size_t ndim, const int64_t *shape)
{
    inferd_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->shape, shape, ndim * sizeof shape[0]);
    return t;
}

static void owned_release(void *ctx, void *data)
{
    (void)ctx;
    free(data);
}

inferd_status inferd_tensor_new(inferd_dtype dtype, size_t ndim, const int64_t *shape,
                                inferd_tensor **out, inferd_error *err)
{
    if (!out)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    size_t nbytes;
    inferd_status st = tensor_nbytes(dtype, ndim, shape, &nbytes, err);
    if (st != INFERD_OK)
        return st;
    /* Round up to the alignment; an empty tensor still gets a real (non-NULL)
     * block so that data is valid for every owned tensor. */
    size_t alloc = nbytes == 0 ? TENSOR_ALIGN : nbytes;
    if (alloc > SIZE_MAX - (TENSOR_ALIGN - 1))
        return inferd_error_set(err, INFERD_ERANGE, "tensor of %zu bytes is too large", nbytes);
    alloc = (alloc + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;

    inferd_tensor *t = tensor_alloc(dtype, ndim, shape);
    void *data = t ? aligned_alloc(TENSOR_ALIGN, alloc) : NULL;
    if (!data) {
        free(t);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory allocating a tensor of %zu bytes",
                                nbytes);
    }
    memset(data, 0, alloc);
    t->data = data;
    t->nbytes = nbytes;
    t->release = owned_release;
    *out = t;
    return INFERD_OK;
}

inferd_status inferd_tensor_wrap(inferd_dtype dtype, size_t ndim, const int64_t *shape, void *data,
                                 size_t nbytes, inferd_release_fn release, void *release_ctx,
                                 inferd_tensor **out, inferd_error *err)
{
    if (!out)
        return inferd_error_set(err, INFERD_EINVAL, "out is NULL");
    *out = NULL;
    size_t need;
    inferd_status st = tensor_nbytes(dtype, ndim, shape, &need, err);
    if (st != INFERD_OK)
        return st;
    if (nbytes != need) {
        char buf[256];
        return inferd_error_set(err, INFERD_EINVAL, "tensor %s of %s needs %zu bytes, got %zu",
                                inferd_shape_format(ndim, shape, buf, sizeof buf),
                                inferd_dtype_name(dtype), need, nbytes);
    }
    if (!data && nbytes > 0)
        return inferd_error_set(err, INFERD_EINVAL, "tensor data is NULL");
    inferd_tensor *t = tensor_alloc(dtype, ndim, shape);
    if (!t)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory allocating a tensor");
    t->data = data;
    t->nbytes = nbytes;
    t->release = release;
    t->release_ctx = release_ctx;
    *out = t;
    return INFERD_OK;
}

inferd_status inferd_tensor_set_name(inferd_tensor *t, const char *name, inferd_error *err)
{
    if (!t)
        return inferd_error_set(err, INFERD_EINVAL, "tensor is NULL");
    char *copy = NULL;
    if (name && !(copy = strdup(name)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory copying a tensor name");
    free(t->name); /* only after the copy succeeded: a failure keeps the old name */
    t->name = copy;
    return INFERD_OK;
}

size_t inferd_tensor_count(const inferd_tensor *t)
{
    if (!t)
        return 0;
    size_t esize = inferd_dtype_size(t->dtype);
    return esize ? t->nbytes / esize : 0;
}

void inferd_tensor_free(inferd_tensor *t)
{
    if (!t)
        return;
    if (t->release)
        t->release(t->release_ctx, t->data);
    free(t->name);
    free(t);
}
