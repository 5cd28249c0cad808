/* service/kserve_request.c: a KServe v2 inference request's body (JSON,
 * and Triton's binary tensor data extension) checked against the model's
 * declared inputs and decoded into tensors; see kserve.c for the protocol. */
#include "service/kserve_request.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *ks_io_name_at(const void *items, size_t i)
{
    return ((const inferd_tensor_info *)items)[i].name;
}

const char *ks_name_list(const void *items, size_t n, ks_name_at_fn at, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    if (n == 0)
        snprintf(buf, size, "(none)");
    for (size_t i = 0; i < n && pos < size; i++) {
        int w = snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", at(items, i));
        if (w < 0 || (size_t)w >= size - pos) {
            snprintf(buf + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
            break;
        }
        pos += (size_t)w;
    }
    return buf;
}

void ks_call_free(ks_call *c)
{
    for (size_t i = 0; c->in && i < c->m->n_in; i++)
        inferd_tensor_free(c->in[i]);
    for (size_t i = 0; c->out && i < c->m->n_out; i++)
        inferd_tensor_free(c->out[i]);
    free(c->in);
    free(c->out);
    free(c->binary);
    free(c->order);
    inferd_value_free(c->req);
}

/* The range of a JSON integer each integer dtype holds. (JSON integers
 * beyond int64 are refused by the parser, so UINT64 stops at INT64_MAX in
 * JSON; binary data carries the whole range.) */
static void int_range(inferd_dtype dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case INFERD_DTYPE_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case INFERD_DTYPE_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case INFERD_DTYPE_UINT16: *lo = 0; *hi = UINT16_MAX; break;
    case INFERD_DTYPE_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case INFERD_DTYPE_UINT32: *lo = 0; *hi = UINT32_MAX; break;
    case INFERD_DTYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case INFERD_DTYPE_UINT64: *lo = 0; *hi = INT64_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* Stores the JSON element v as element i of t. */
static inferd_status store(inferd_tensor *t, size_t i, const inferd_value *v, const char *input,
                           inferd_error *err)
{
    inferd_value_type ty = inferd_value_type_of(v);
    const char *dtn = inferd_dtype_name(t->dtype);
    if (t->dtype == INFERD_DTYPE_BOOL) {
        if (ty != INFERD_VALUE_BOOL)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': data[%zu] is %s %s; BOOL "
                                    "wants true or false", input, i,
                                    ty == INFERD_VALUE_INT ? "an" : "a", inferd_value_type_name(ty));
        ((uint8_t *)t->data)[i] = inferd_value_bool_or(v, false) ? 1 : 0;
        return INFERD_OK;
    }
    if (t->dtype == INFERD_DTYPE_FLOAT32 || t->dtype == INFERD_DTYPE_FLOAT64) {
        if (ty != INFERD_VALUE_INT && ty != INFERD_VALUE_DOUBLE)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': data[%zu] is a %s; %s wants "
                                    "a number", input, i, inferd_value_type_name(ty), dtn);
        double d = inferd_value_double_or(v, 0.0);
        if (t->dtype == INFERD_DTYPE_FLOAT64) {
            ((double *)t->data)[i] = d;
        } else {
            if (fabs(d) > FLT_MAX)
                return inferd_error_set(err, INFERD_ERANGE, "input '%s': data[%zu] = %g is out "
                                        "of range for FP32", input, i, d);
            ((float *)t->data)[i] = (float)d;
        }
        return INFERD_OK;
    }
    if (ty != INFERD_VALUE_INT)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': data[%zu] is a %s; %s wants an "
                                "integer", input, i, inferd_value_type_name(ty), dtn);
    int64_t x = inferd_value_int_or(v, 0), lo, hi;
    int_range(t->dtype, &lo, &hi);
    if (x < lo || x > hi)
        return inferd_error_set(err, INFERD_ERANGE, "input '%s': data[%zu] = %lld is out of range "
                                "for %s (%lld..%lld)", input, i, (long long)x, dtn, (long long)lo,
                                (long long)hi);
    switch (t->dtype) {
    case INFERD_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)x; break;
    case INFERD_DTYPE_INT8: ((int8_t *)t->data)[i] = (int8_t)x; break;
    case INFERD_DTYPE_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)x; break;
    case INFERD_DTYPE_INT16: ((int16_t *)t->data)[i] = (int16_t)x; break;
    case INFERD_DTYPE_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)x; break;
    case INFERD_DTYPE_INT32: ((int32_t *)t->data)[i] = (int32_t)x; break;
    case INFERD_DTYPE_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)x; break;
    case INFERD_DTYPE_INT64: ((int64_t *)t->data)[i] = x; break;
    default:
        return inferd_error_set(err, INFERD_EINTERNAL, "input '%s': no JSON conversion for %s",
                                input, dtn);
    }
    return INFERD_OK;
}

/* "data" may be flat or nested (row-major): its leaves, in order, are the
 * elements. */
static size_t count_leaves(const inferd_value *v)
{
    if (!inferd_value_is(v, INFERD_VALUE_ARRAY))
        return 1;
    size_t n = 0;
    for (size_t i = 0; i < inferd_value_array_len(v); i++)
        n += count_leaves(inferd_value_array_get(v, i));
    return n;
}

static inferd_status fill(inferd_tensor *t, const inferd_value *v, size_t *i, const char *input,
                          inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_ARRAY))
        return store(t, (*i)++, v, input, err);
    for (size_t j = 0; j < inferd_value_array_len(v); j++) {
        inferd_status st = fill(t, inferd_value_array_get(v, j), i, input, err);
        if (st != INFERD_OK)
            return st;
    }
    return INFERD_OK;
}

/* A strict KServe datatype name (inferd_dtype_parse also takes numpy's). */
static inferd_status parse_datatype(const char *input, const char *name, inferd_dtype *out,
                                    inferd_error *err)
{
    if (strcmp(name, "BYTES") == 0)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': datatype BYTES is not supported: "
                                "inferd's models take numeric tensors (" KS_DATATYPES ")", input);
    if (inferd_dtype_parse(name, out, NULL) != INFERD_OK ||
        strcmp(inferd_dtype_name(*out), name) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': unknown datatype '%s' (one of "
                                KS_DATATYPES ")", input, name);
    return INFERD_OK;
}

/* The shape of input (array of dims >= 0) into ndim/shape. */
static inferd_status parse_shape(const char *input, const inferd_value *v, size_t *ndim,
                                 int64_t *shape, inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' needs \"shape\": an array of "
                                "dimensions", input);
    *ndim = inferd_value_array_len(v);
    if (*ndim > INFERD_TENSOR_MAX_DIMS)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': shape has %zu dimensions; at most "
                                "%d are supported", input, *ndim, INFERD_TENSOR_MAX_DIMS);
    for (size_t d = 0; d < *ndim; d++) {
        const inferd_value *dim = inferd_value_array_get(v, d);
        if (!inferd_value_is(dim, INFERD_VALUE_INT) || inferd_value_int_or(dim, -1) < 0)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': shape[%zu] must be an "
                                    "integer >= 0", input, d);
        shape[d] = inferd_value_int_or(dim, 0);
    }
    return INFERD_OK;
}

/* The request's shape against the model's (rank, and every static dim). */
static inferd_status check_shape(const ks_model *m, const inferd_tensor_info *io, size_t ndim,
                                 const int64_t *shape, inferd_error *err)
{
    char want[160], got[160];
    inferd_shape_format(io->ndim, io->shape, want, sizeof want);
    inferd_shape_format(ndim, shape, got, sizeof got);
    if (ndim != io->ndim)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model '%s' has %zu dimensions "
                                "%s (-1: any size); the request's shape %s has %zu", io->name,
                                m->name, io->ndim, want, got, ndim);
    for (size_t d = 0; d < ndim; d++)
        if (io->shape[d] >= 0 && shape[d] != io->shape[d])
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model '%s': dimension %zu "
                                    "of the request's shape %s is %lld where the model's shape %s "
                                    "needs %lld", io->name, m->name, d, got,
                                    (long long)shape[d], want, (long long)io->shape[d]);
    return INFERD_OK;
}

/* Where the binary part of the body stands while the inputs are read. */
typedef struct ks_binary {
    bool present;     /* the request has Inference-Header-Content-Length */
    const char *body; /* borrowed: the whole body */
    size_t at, len;   /* next unread byte; the body's length */
} ks_binary;

static inferd_status parse_input(ks_call *c, size_t idx, const inferd_value *v, ks_binary *bin,
                                 inferd_error *err)
{
    const ks_model *m = c->m;
    const char *name = inferd_value_string_or(inferd_value_object_get(v, "name"), NULL);
    if (!inferd_value_is(v, INFERD_VALUE_OBJECT) || !name)
        return inferd_error_set(err, INFERD_EINVAL, "inputs[%zu] must be an object with a "
                                "\"name\" string", idx);
    size_t j = 0;
    while (j < m->n_in && strcmp(m->in[j].name, name) != 0)
        j++;
    char list[320];
    if (j == m->n_in)
        return inferd_error_set(err, INFERD_EINVAL, "model '%s' has no input '%s'; its inputs are: "
                                "%s", m->name, name, ks_name_list(m->in, m->n_in, ks_io_name_at, list,
                                                               sizeof list));
    if (c->in[j])
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' is given twice", name);
    const inferd_tensor_info *io = &m->in[j];

    const char *dtname = inferd_value_string_or(inferd_value_object_get(v, "datatype"), NULL);
    if (!dtname)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' needs \"datatype\" (one of "
                                KS_DATATYPES ")", name);
    inferd_dtype dt;
    if (parse_datatype(name, dtname, &dt, err) != INFERD_OK)
        return INFERD_EINVAL;
    if (dt != io->dtype)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model '%s' is %s; the request "
                                "gives %s", name, m->name, inferd_dtype_name(io->dtype), dtname);
    size_t ndim = 0, count = 0;
    int64_t shape[INFERD_TENSOR_MAX_DIMS] = {0};
    char shape_text[160];
    if (parse_shape(name, inferd_value_object_get(v, "shape"), &ndim, shape, err) != INFERD_OK ||
        check_shape(m, io, ndim, shape, err) != INFERD_OK)
        return INFERD_EINVAL;
    if (inferd_shape_count(ndim, shape, &count, err) != INFERD_OK ||
        count > SIZE_MAX / inferd_dtype_size(dt))
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': shape %s is too large", name,
                                inferd_shape_format(ndim, shape, shape_text, sizeof shape_text));
    inferd_shape_format(ndim, shape, shape_text, sizeof shape_text);
    /* The backends fail on empty tensors, or answer nonsense (a mean of
     * nothing): a request's mistake, said as such. */
    if (count == 0)
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': shape %s has no elements", name,
                                shape_text);
    size_t nbytes = count * inferd_dtype_size(dt);

    const inferd_value *params = inferd_value_object_get(v, "parameters");
    if (params && !inferd_value_is(params, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': \"parameters\" must be an "
                                "object", name);
    if (inferd_value_object_get(params, "shared_memory_region"))
        return inferd_error_set(err, INFERD_EINVAL, "input '%s': shared memory inputs are not "
                                "supported; send \"data\" or binary data", name);
    const inferd_value *size_v = inferd_value_object_get(params, "binary_data_size");
    const inferd_value *data = inferd_value_object_get(v, "data");
    inferd_tensor *t = NULL;
    if (size_v) {
        int64_t size = inferd_value_int_or(size_v, -1);
        if (!inferd_value_is(size_v, INFERD_VALUE_INT) || size < 0)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': binary_data_size must be an "
                                    "integer >= 0", name);
        if (!bin->present)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' has binary_data_size but the "
                                    "request has no " KS_BINARY_HEADER " header to say where its "
                                    "JSON ends", name);
        if (data)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' has both \"data\" and "
                                    "binary_data_size; give one", name);
        if ((uint64_t)size != nbytes)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': binary_data_size is %lld "
                                    "bytes; shape %s of %s needs %zu", name, (long long)size,
                                    shape_text, dtname, nbytes);
        if (nbytes > bin->len - bin->at)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': binary_data_size %zu goes "
                                    "past the end of the body (%zu byte(s) of binary data left)",
                                    name, nbytes, bin->len - bin->at);
        if (inferd_tensor_new(dt, ndim, shape, &t, err) != INFERD_OK)
            return inferd_error_prefix(err, "input '%s'", name);
        memcpy(t->data, bin->body + bin->at, nbytes);
        bin->at += nbytes;
        /* ONNX Runtime reads a bool as a byte that must be 0 or 1. */
        for (size_t i = 0; dt == INFERD_DTYPE_BOOL && i < count; i++)
            if (((const uint8_t *)t->data)[i] > 1) {
                inferd_tensor_free(t);
                return inferd_error_set(err, INFERD_EINVAL, "input '%s': BOOL element %zu is "
                                        "byte %u; it must be 0 or 1", name, i,
                                        ((const uint8_t *)bin->body)[bin->at - nbytes + i]);
            }
    } else {
        if (!data)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' has no \"data\" (nor "
                                    "parameters.binary_data_size)", name);
        if (dt == INFERD_DTYPE_FLOAT16)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' is FP16, which JSON cannot "
                                    "carry: send it as binary data (parameters.binary_data_size "
                                    "with the " KS_BINARY_HEADER " header)", name);
        size_t n = count_leaves(data);
        if (n != count)
            return inferd_error_set(err, INFERD_EINVAL, "input '%s': \"data\" has %zu element(s); "
                                    "shape %s needs %zu", name, n, shape_text, count);
        if (inferd_tensor_new(dt, ndim, shape, &t, err) != INFERD_OK)
            return inferd_error_prefix(err, "input '%s'", name);
        size_t i = 0;
        if (fill(t, data, &i, name, err) != INFERD_OK) {
            inferd_tensor_free(t);
            return INFERD_EINVAL;
        }
    }
    c->in[j] = t;
    return INFERD_OK;
}

/* Which outputs to reply, in which order, and which of them as binary. */
static inferd_status parse_outputs(ks_call *c, bool binary_default, inferd_error *err)
{
    const ks_model *m = c->m;
    const inferd_value *outs = inferd_value_object_get(c->req, "outputs");
    if (outs && !inferd_value_is(outs, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL, "\"outputs\" must be an array of "
                                "{\"name\": ...}");
    if (inferd_value_array_len(outs) == 0) {
        for (size_t j = 0; j < m->n_out; j++) {
            c->order[c->n_order++] = j;
            c->binary[j] = binary_default;
        }
    }
    char list[320];
    for (size_t i = 0; i < inferd_value_array_len(outs); i++) {
        const inferd_value *o = inferd_value_array_get(outs, i);
        const char *name = inferd_value_string_or(inferd_value_object_get(o, "name"), NULL);
        if (!name)
            return inferd_error_set(err, INFERD_EINVAL, "outputs[%zu] must be an object with a "
                                    "\"name\" string", i);
        size_t j = 0;
        while (j < m->n_out && strcmp(m->out[j].name, name) != 0)
            j++;
        if (j == m->n_out)
            return inferd_error_set(err, INFERD_EINVAL, "model '%s' has no output '%s'; its "
                                    "outputs are: %s", m->name, name,
                                    ks_name_list(m->out, m->n_out, ks_io_name_at, list, sizeof list));
        for (size_t k = 0; k < c->n_order; k++)
            if (c->order[k] == j)
                return inferd_error_set(err, INFERD_EINVAL, "output '%s' is asked for twice",
                                        name);
        const inferd_value *params = inferd_value_object_get(o, "parameters");
        const inferd_value *bd = inferd_value_object_get(params, "binary_data");
        if ((params && !inferd_value_is(params, INFERD_VALUE_OBJECT)) ||
            (bd && !inferd_value_is(bd, INFERD_VALUE_BOOL)))
            return inferd_error_set(err, INFERD_EINVAL, "output '%s': \"parameters\" must be an "
                                    "object and binary_data true or false", name);
        if (inferd_value_object_get(params, "classification"))
            return inferd_error_set(err, INFERD_EINVAL, "output '%s': the classification "
                                    "extension is not supported; ask for the tensor", name);
        if (inferd_value_object_get(params, "shared_memory_region"))
            return inferd_error_set(err, INFERD_EINVAL, "output '%s': shared memory outputs are "
                                    "not supported", name);
        c->binary[j] = inferd_value_bool_or(bd, binary_default);
        c->order[c->n_order++] = j;
    }
    for (size_t k = 0; k < c->n_order; k++) {
        const inferd_tensor_info *io = &m->out[c->order[k]];
        if (io->dtype == INFERD_DTYPE_FLOAT16 && !c->binary[c->order[k]])
            return inferd_error_set(err, INFERD_EINVAL, "output '%s' is FP16, which JSON cannot "
                                    "carry: ask for it with parameters.binary_data = true",
                                    io->name);
    }
    return INFERD_OK;
}

inferd_status ks_parse_request(ks_call *c, const char *body, size_t len, const char *enc,
                               const char *header, unsigned max_depth, inferd_error *err)
{
    const ks_model *m = c->m;
    if (enc && strcasecmp(enc, "identity") != 0)
        return inferd_error_set(err, INFERD_EINVAL, "Content-Encoding '%s' is not supported; send "
                                "the request uncompressed", enc);
    ks_binary bin = {.present = false, .body = body, .at = len, .len = len};
    if (header) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(header, &end, 10);
        if (header[0] < '0' || header[0] > '9' || *end || errno || n > len)
            return inferd_error_set(err, INFERD_EINVAL, KS_BINARY_HEADER " is '%s'; it must be the "
                                    "byte count of the JSON at the start of the body (%zu "
                                    "bytes)", header, len);
        bin.present = true;
        bin.at = (size_t)n;
    }
    size_t json_len = bin.at;
    if (json_len == 0)
        return inferd_error_set(err, INFERD_EINVAL, "the request has no body; it must be a JSON "
                                "inference request {\"inputs\": [...]}");
    if (inferd_value_from_json(body, json_len, max_depth, &c->req, err) !=
        INFERD_OK)
        return inferd_error_prefix(err, "the request is not valid JSON");
    if (!inferd_value_is(c->req, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "the request must be a JSON object "
                                "{\"inputs\": [...]}, not %s",
                                inferd_value_type_name(inferd_value_type_of(c->req)));
    const inferd_value *id = inferd_value_object_get(c->req, "id");
    if (id && !inferd_value_is(id, INFERD_VALUE_STRING))
        return inferd_error_set(err, INFERD_EINVAL, "\"id\" must be a string");
    const inferd_value *params = inferd_value_object_get(c->req, "parameters");
    const inferd_value *bdo = inferd_value_object_get(params, "binary_data_output");
    if ((params && !inferd_value_is(params, INFERD_VALUE_OBJECT)) ||
        (bdo && !inferd_value_is(bdo, INFERD_VALUE_BOOL)))
        return inferd_error_set(err, INFERD_EINVAL, "\"parameters\" must be an object and "
                                "binary_data_output true or false");

    const inferd_value *inputs = inferd_value_object_get(c->req, "inputs");
    if (!inferd_value_is(inputs, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_EINVAL, "the request needs \"inputs\": an array of "
                                "{\"name\", \"shape\", \"datatype\", \"data\"}");
    for (size_t i = 0; i < inferd_value_array_len(inputs); i++)
        if (parse_input(c, i, inferd_value_array_get(inputs, i), &bin, err) != INFERD_OK)
            return INFERD_EINVAL;
    for (size_t j = 0; j < m->n_in; j++)
        if (!c->in[j]) {
            char list[320];
            return inferd_error_set(err, INFERD_EINVAL, "input '%s' of model '%s' is missing (its "
                                    "inputs are: %s)", m->in[j].name, m->name,
                                    ks_name_list(m->in, m->n_in, ks_io_name_at, list, sizeof list));
        }
    if (bin.at != bin.len)
        return inferd_error_set(err, INFERD_EINVAL, "binary data: the inputs' binary_data_size "
                                "add up to %zu byte(s) but the body has %zu after its %zu-byte "
                                "JSON", bin.at - json_len, bin.len - json_len, json_len);
    return parse_outputs(c, inferd_value_bool_or(bdo, false), err);
}

