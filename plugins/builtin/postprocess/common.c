/* common.c: helpers shared by the post-processing elements of the built-in
 * "postprocess" plugin: picking the input tensor by name, checking its shape,
 * reading it as floats (FP32 in place, FP64/FP16 converted), loading the
 * buffer's metadata/transform chain and mapping points back through it, and
 * attaching a result and pushing the buffer on. */
#include "postprocess.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pp_strdup(const char *s)
{
    size_t len = strlen(s);
    char *d = malloc(len + 1);
    if (d)
        memcpy(d, s, len + 1);
    return d;
}

const char *pp_tensor_label(const inferd_tensor *t)
{
    return t->name && *t->name ? t->name : "(unnamed)";
}

inferd_status pp_input_tensor(inferd_buffer *const *in, size_t n, const char *name,
                              inferd_buffer **buf, const inferd_tensor **t, inferd_error *err)
{
    if (n < 1 || !in || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "expected one input buffer, got none");
    inferd_buffer *b = in[0];
    if (inferd_buffer_payload_kind(b) != INFERD_PAYLOAD_TENSORS) {
        const char *fmt = inferd_buffer_format(b);
        return inferd_error_set(err, INFERD_ETYPE,
                                "expects a tensor payload (metadata/tensor, a model's output), "
                                "got %s", fmt ? fmt : "a buffer with no payload");
    }
    size_t count = inferd_buffer_tensor_count(b);
    if (count == 0)
        return inferd_error_set(err, INFERD_ETYPE,
                                "expects a tensor payload (metadata/tensor), got no tensor");
    if (!name || !*name) {
        *buf = b;
        *t = inferd_buffer_tensor(b, 0);
        return INFERD_OK;
    }
    for (size_t i = 0; i < count; i++) {
        const inferd_tensor *c = inferd_buffer_tensor(b, i);
        if (c->name && strcmp(c->name, name) == 0) {
            *buf = b;
            *t = c;
            return INFERD_OK;
        }
    }
    char have[256];
    size_t pos = 0;
    have[0] = '\0';
    for (size_t i = 0; i < count && pos < sizeof have; i++) {
        int w = snprintf(have + pos, sizeof have - pos, "%s%s", i ? ", " : "",
                         pp_tensor_label(inferd_buffer_tensor(b, i)));
        if (w < 0)
            break;
        pos += (size_t)w;
    }
    return inferd_error_set(err, INFERD_ENOTFOUND,
                            "tensorName '%s': no tensor of that name in the input (it has: %s)",
                            name, have);
}

static void shape_text(const inferd_tensor *t, char *buf, size_t size)
{
    inferd_shape_format(t->ndim, t->shape, buf, size);
}

inferd_status pp_plane_shape(const inferd_tensor *t, size_t *h, size_t *w, inferd_error *err)
{
    char s[160];
    shape_text(t, s, sizeof s);
    if (t->ndim < 2 || t->ndim > 4)
        return inferd_error_set(err, INFERD_EINVAL,
                                "tensor '%s' has shape %s (rank %zu): expects rank 2 to 4, "
                                "[N,1,H,W], [N,H,W] or [H,W]",
                                pp_tensor_label(t), s, t->ndim);
    if (t->ndim == 4 && t->shape[1] != 1)
        return inferd_error_set(err, INFERD_EINVAL,
                                "tensor '%s' has shape %s: expects one channel ([N,1,H,W]), "
                                "got %lld", pp_tensor_label(t), s, (long long)t->shape[1]);
    if (t->ndim >= 3 && t->shape[0] != 1)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "tensor '%s' has shape %s: a batch of %lld items; this element "
                                "handles one item per buffer (N = 1)",
                                pp_tensor_label(t), s, (long long)t->shape[0]);
    int64_t hh = t->shape[t->ndim - 2], ww = t->shape[t->ndim - 1];
    if (hh <= 0 || ww <= 0)
        return inferd_error_set(err, INFERD_EINVAL, "tensor '%s' has shape %s: the plane is empty",
                                pp_tensor_label(t), s);
    *h = (size_t)hh;
    *w = (size_t)ww;
    return INFERD_OK;
}

inferd_status pp_vector_shape(const inferd_tensor *t, size_t *k, inferd_error *err)
{
    char s[160];
    shape_text(t, s, sizeof s);
    bool ok = t->ndim >= 1;
    for (size_t d = 2; d < t->ndim; d++)
        ok = ok && t->shape[d] == 1;
    if (!ok)
        return inferd_error_set(err, INFERD_EINVAL,
                                "tensor '%s' has shape %s (rank %zu): expects scores [N,K] "
                                "(or [K], or [N,K,1,1])",
                                pp_tensor_label(t), s, t->ndim);
    if (t->ndim >= 2 && t->shape[0] != 1)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "tensor '%s' has shape %s: a batch of %lld items; this element "
                                "handles one item per buffer (N = 1)",
                                pp_tensor_label(t), s, (long long)t->shape[0]);
    int64_t kk = t->shape[t->ndim >= 2 ? 1 : 0];
    if (kk <= 0)
        return inferd_error_set(err, INFERD_EINVAL, "tensor '%s' has shape %s: no score",
                                pp_tensor_label(t), s);
    *k = (size_t)kk;
    return INFERD_OK;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

inferd_status pp_floats_get(const inferd_tensor *t, pp_floats *out, inferd_error *err)
{
    size_t n = inferd_tensor_count(t);
    out->n = n;
    out->owned = NULL;
    out->v = NULL;
    switch (t->dtype) {
    case INFERD_DTYPE_FLOAT32:
        out->v = t->data;
        return INFERD_OK;
    case INFERD_DTYPE_FLOAT64:
    case INFERD_DTYPE_FLOAT16:
        break;
    default:
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "tensor '%s' holds %s: expects FP32, FP64 or FP16",
                                pp_tensor_label(t), inferd_dtype_name(t->dtype));
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    if (!f)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (t->dtype == INFERD_DTYPE_FLOAT64) {
        const double *d = t->data;
        for (size_t i = 0; i < n; i++)
            f[i] = (float)d[i];
    } else {
        const uint16_t *hf = t->data;
        for (size_t i = 0; i < n; i++)
            f[i] = half_to_float(hf[i]);
    }
    out->owned = f;
    out->v = f;
    return INFERD_OK;
}

void pp_floats_free(pp_floats *f)
{
    free(f->owned);
    f->owned = NULL;
    f->v = NULL;
}

/* A finite number field of a transform entry; missing is `fallback` when
 * optional is set, an error otherwise. */
static inferd_status xform_field(const inferd_value *v, const char *producer, const char *type,
                                 const char *key, bool optional, double fallback, double *out,
                                 inferd_error *err)
{
    const inferd_value *f = inferd_value_object_get(v, key);
    if (!f && optional) {
        *out = fallback;
        return INFERD_OK;
    }
    if (!f || (!inferd_value_is(f, INFERD_VALUE_INT) && !inferd_value_is(f, INFERD_VALUE_DOUBLE)))
        return inferd_error_set(err, INFERD_EINVAL,
                                "metadata/transform of '%s' (%s): '%s' %s", producer, type, key,
                                f ? "is not a number" : "is missing");
    double d = inferd_value_double_or(f, NAN);
    if (!isfinite(d))
        return inferd_error_set(err, INFERD_EINVAL,
                                "metadata/transform of '%s' (%s): '%s' is not finite", producer,
                                type, key);
    *out = d;
    return INFERD_OK;
}

static inferd_status xform_parse(const inferd_meta *m, pp_xform *x, inferd_error *err)
{
    const char *producer = m->producer ? m->producer : "?";
    if (!m->value || !inferd_value_is(m->value, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL,
                                "metadata/transform of '%s' is not an object", producer);
    const char *type = inferd_value_string_or(inferd_value_object_get(m->value, "type"), NULL);
    if (!type)
        return inferd_error_set(err, INFERD_EINVAL,
                                "metadata/transform of '%s' has no \"type\" string", producer);
    inferd_status st;
    if (strcmp(type, "crop") == 0) {
        double cx, cy;
        if ((st = xform_field(m->value, producer, type, "x", false, 0, &cx, err)) ||
            (st = xform_field(m->value, producer, type, "y", false, 0, &cy, err)))
            return st;
        *x = (pp_xform){1.0, 1.0, -cx, -cy};
        return INFERD_OK;
    }
    if (strcmp(type, "resize") == 0) {
        double sx, sy, px, py;
        if ((st = xform_field(m->value, producer, type, "scale_x", false, 0, &sx, err)) ||
            (st = xform_field(m->value, producer, type, "scale_y", false, 0, &sy, err)) ||
            (st = xform_field(m->value, producer, type, "pad_x", true, 0, &px, err)) ||
            (st = xform_field(m->value, producer, type, "pad_y", true, 0, &py, err)))
            return st;
        if (sx == 0 || sy == 0)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "metadata/transform of '%s' (resize): a zero scale "
                                    "(scale_x %g, scale_y %g) cannot be inverted",
                                    producer, sx, sy);
        *x = (pp_xform){sx, sy, px, py};
        return INFERD_OK;
    }
    return inferd_error_set(err, INFERD_EUNSUPPORTED,
                            "metadata/transform of '%s': unknown type '%s' (known: crop, resize)",
                            producer, type);
}

inferd_status pp_chain_load(const inferd_buffer *buf, pp_chain *out, inferd_error *err)
{
    out->t = NULL;
    out->n = 0;
    pp_xform *t = NULL;
    size_t n = 0, cap = 0;
    inferd_meta m;
    for (size_t i = 0; inferd_buffer_meta_at(buf, i, &m); i++) {
        if (!m.format || strcmp(m.format, "metadata/transform") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 4;
            pp_xform *nt = realloc(t, ncap * sizeof *nt);
            if (!nt) {
                free(t);
                return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            }
            t = nt;
            cap = ncap;
        }
        inferd_status st = xform_parse(&m, &t[n], err);
        if (st != INFERD_OK) {
            free(t);
            return st;
        }
        n++;
    }
    /* Kept last to first: t[0] is the transform nearest the model. */
    for (size_t i = 0; i < n / 2; i++) {
        pp_xform tmp = t[i];
        t[i] = t[n - 1 - i];
        t[n - 1 - i] = tmp;
    }
    out->t = t;
    out->n = n;
    return INFERD_OK;
}

void pp_chain_map(const pp_chain *c, double *x, double *y)
{
    for (size_t i = 0; i < c->n; i++) {
        *x = (*x - c->t[i].ox) / c->t[i].sx;
        *y = (*y - c->t[i].oy) / c->t[i].sy;
    }
}

void pp_chain_free(pp_chain *c)
{
    free(c->t);
    c->t = NULL;
    c->n = 0;
}

inferd_status pp_set_int(inferd_value *obj, const char *key, int64_t i, inferd_error *err)
{
    return inferd_value_object_set(obj, key, inferd_value_int(i), err);
}

inferd_status pp_set_double(inferd_value *obj, const char *key, double d, inferd_error *err)
{
    return inferd_value_object_set(obj, key, inferd_value_double(d), err);
}

inferd_status pp_attach_and_push(inferd_instance *self, inferd_buffer *buf, const char *format,
                                 inferd_value *meta, inferd_error *err)
{
    inferd_status st =
        inferd_buffer_add_meta_value(buf, inferd_instance_name(self), format, meta, err);
    if (st != INFERD_OK)
        return st;
    return inferd_instance_push(self, 0, inferd_buffer_ref(buf), err);
}
