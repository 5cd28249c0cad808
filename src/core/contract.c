/* core/contract.c: input contracts (inferd/contract.h): the declaration,
 * fitting a contract to a model's input, planning an area's geometry, and
 * filling a tensor row from an image. Owns nothing beyond a call: fill
 * resamples into a scratch image it frees before returning. */
#include "inferd/contract.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pixel.h"

/* ---- the declaration ------------------------------------------------------------------- */

static const inferd_prop_spec contract_props[] = {INFERD_CONTRACT_FIELDS, INFERD_PROP_END};
#define dtypes inferd__contract_dtypes
#define layouts inferd__contract_layouts
#define orders inferd__contract_orders
#define modes inferd__contract_resizes
#define positions inferd__contract_positions
#define samplings inferd__contract_samplings

const inferd_prop_spec *inferd_contract_props(void)
{
    return contract_props;
}

static int pick(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (name && strcmp(names[i], name) == 0)
            return i;
    return 0;
}

static const char *str(const inferd_value *o, const char *key, const char *def)
{
    return inferd_value_string_or(inferd_value_object_get(o, key), def);
}

static uint32_t num(const inferd_value *o, const char *key, uint32_t def)
{
    return (uint32_t)inferd_value_int_or(inferd_value_object_get(o, key), def);
}

/* One value, or one per channel, into v[3]. */
static inferd_status per_channel(const inferd_value *o, const char *key, double def, double *v,
                                 inferd_error *err)
{
    const inferd_value *list = inferd_value_object_get(o, key);
    size_t n = inferd_value_array_len(list);
    if (n != 0 && n != 1 && n != 3)
        return inferd_error_set(err, INFERD_EINVAL,
                                "property '%s': %zu values given; give one, or one per channel "
                                "(3)", key, n);
    for (size_t c = 0; c < 3; c++)
        v[c] = n ? inferd_value_double_or(inferd_value_array_get(list, n == 3 ? c : 0), def)
                 : def;
    return INFERD_OK;
}

inferd_status inferd_contract_from_value(const inferd_value *o, inferd_input_contract *c,
                                         inferd_error *err)
{
    static const inferd_dtype dt[] = {INFERD_DTYPE_INVALID, INFERD_DTYPE_FLOAT32,
                                      INFERD_DTYPE_FLOAT16, INFERD_DTYPE_UINT8};
    static const inferd_pixel_format po[] = {INFERD_PIXEL_RGB8, INFERD_PIXEL_BGR8,
                                             INFERD_PIXEL_GRAY8};
    memset(c, 0, sizeof *c);
    c->dtype = dt[pick(dtypes, str(o, "dtype", "auto"))];
    c->layout = (inferd_tensor_layout)pick(layouts, str(o, "layout", "auto"));
    c->order = po[pick(orders, str(o, "channelOrder", "rgb"))];
    c->scale = inferd_value_double_or(inferd_value_object_get(o, "scale"), 1.0 / 255.0);
    c->resize = (inferd_resize_mode)pick(modes, str(o, "resize", "auto"));
    c->width = num(o, "width", 0);
    c->height = num(o, "height", 0);
    c->limit = num(o, "limit", 0);
    c->multiple = num(o, "multiple", 1);
    c->short_side = num(o, "shortSide", 0);
    c->pad_value = (uint8_t)num(o, "padValue", 0);
    c->pad_top_left = strcmp(str(o, "padPosition", "center"), "topleft") == 0;
    c->nearest = strcmp(str(o, "interpolation", "bilinear"), "nearest") == 0;
    inferd_status st = per_channel(o, "mean", 0, c->mean, err);
    if (st == INFERD_OK)
        st = per_channel(o, "std", 1, c->std, err);
    if (st != INFERD_OK)
        return st;
    for (size_t k = 0; k < 3; k++)
        if (c->std[k] == 0)
            return inferd_error_set(err, INFERD_EINVAL, "property 'std': 0 is not allowed (it "
                                    "divides)");
    bool normalised = c->scale != 1.0 / 255.0 || c->mean[0] || c->mean[1] || c->mean[2] ||
                      c->std[0] != 1 || c->std[1] != 1 || c->std[2] != 1;
    if (c->dtype == INFERD_DTYPE_UINT8 && normalised)
        return inferd_error_set(err, INFERD_EINVAL,
                                "dtype uint8 takes the pixels as they are: scale, mean and std "
                                "apply to float types only (leave them unset)");
    if (c->resize == INFERD_RESIZE_SHORTCROP && !c->short_side)
        return inferd_error_set(err, INFERD_EINVAL,
                                "resize shortcrop needs shortSide (the shorter side's size before "
                                "the crop)");
    if (c->resize == INFERD_RESIZE_SHORTCROP &&
        (c->width > c->short_side || c->height > c->short_side))
        return inferd_error_set(err, INFERD_EINVAL,
                                "resize shortcrop: the crop %ux%u is larger than shortSide %u",
                                c->width, c->height, c->short_side);
    if (c->resize == INFERD_RESIZE_LIMIT && c->limit && c->limit < c->multiple)
        return inferd_error_set(err, INFERD_EINVAL, "resize limit: limit %u is below multiple %u",
                                c->limit, c->multiple);
    return INFERD_OK;
}

/* ---- fitting a model ------------------------------------------------------------------- */

/* A dtype as a contract's dtype key names it ("float32"), else its name. */
static const char *dtype_name(inferd_dtype d)
{
    return d == INFERD_DTYPE_FLOAT32   ? "float32"
           : d == INFERD_DTYPE_FLOAT16 ? "float16"
           : d == INFERD_DTYPE_UINT8   ? "uint8"
                                       : inferd_dtype_name(d);
}

static size_t channels(const inferd_input_contract *c)
{
    return c->order == INFERD_PIXEL_GRAY8 ? 1 : 3;
}

inferd_status inferd_contract_fit(inferd_input_contract *c, const char *model, inferd_dtype dtype,
                                  size_t ndim, const int64_t *shape, inferd_error *err)
{
    char s[160];
    inferd_shape_format(ndim, shape, s, sizeof s);
    if (ndim != 4)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s: its input is %s, rank %zu; an image input is rank 4 "
                                "([N,C,H,W] or [N,H,W,C], N the batch)", model, s, ndim);
    int64_t C = (int64_t)channels(c);
    if (c->layout == INFERD_LAYOUT_AUTO) {
        /* The channel axis is the one of C among 1 and 3; NCHW when both could be. */
        c->layout = shape[1] == C || (shape[1] < 0 && shape[3] != C) ? INFERD_LAYOUT_NCHW
                    : shape[3] == C                                  ? INFERD_LAYOUT_NHWC
                                                                     : INFERD_LAYOUT_NCHW;
    }
    bool nchw = c->layout == INFERD_LAYOUT_NCHW;
    int64_t mc = nchw ? shape[1] : shape[3], mh = nchw ? shape[2] : shape[1],
            mw = nchw ? shape[3] : shape[2];
    if (mc >= 0 && mc != C)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s: its input %s has %lld channels (%s); channelOrder %s "
                                "gives %lld", model, s, (long long)mc, nchw ? "nchw" : "nhwc",
                                inferd_pixel_format_name(c->order), (long long)C);
    if (dtype != INFERD_DTYPE_FLOAT32 && dtype != INFERD_DTYPE_FLOAT16 &&
        dtype != INFERD_DTYPE_UINT8)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s: its input is %s; an image input is float32, float16 "
                                "or uint8", model, dtype_name(dtype));
    if (c->dtype == INFERD_DTYPE_INVALID)
        c->dtype = dtype;
    if (c->dtype != dtype)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s: its input is %s, the contract says dtype %s", model,
                                dtype_name(dtype), dtype_name(c->dtype));
    if (c->resize == INFERD_RESIZE_AUTO) {
        /* A fixed size is stretched to (as DeepStream's nvinfer scales to the
         * network's size); a dynamic one takes the image as it is. */
        if ((mw > 0) != (mh > 0))
            return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                    "model %s: its input %s fixes one side only: give the "
                                    "contract's resize (and width and height)", model, s);
        c->resize = mw > 0 ? INFERD_RESIZE_STRETCH : INFERD_RESIZE_NONE;
    }
    bool sized = c->resize == INFERD_RESIZE_STRETCH || c->resize == INFERD_RESIZE_LETTERBOX ||
                 c->resize == INFERD_RESIZE_SHORTCROP;
    if (sized) {
        if (!c->width && mw > 0)
            c->width = (uint32_t)mw;
        if (!c->height && mh > 0)
            c->height = (uint32_t)mh;
        if (!c->width || !c->height)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "model %s: its input %s has no fixed size: resize %s needs "
                                    "width and height", model, s,
                                    modes[c->resize]);
        if ((mw > 0 && c->width != (uint32_t)mw) || (mh > 0 && c->height != (uint32_t)mh))
            return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                    "model %s: its input %s takes %lldx%lld; resize %s gives "
                                    "%ux%u", model, s, (long long)mw, (long long)mh,
                                    modes[c->resize], c->width, c->height);
        if (c->resize == INFERD_RESIZE_SHORTCROP &&
            (c->width > c->short_side || c->height > c->short_side))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "model %s: the crop %ux%u is larger than shortSide %u",
                                    model, c->width, c->height, c->short_side);
    } else if (mw > 0 || mh > 0) {
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "model %s: its input %s takes a fixed size, which resize %s "
                                "cannot always give: use stretch, letterbox or shortcrop (or "
                                "send images of that size with resize none)",
                                model, s, modes[c->resize]);
    }
    return INFERD_OK;
}

/* ---- planning ---------------------------------------------------------------------------- */

static uint32_t scaled(uint32_t n, double s)
{
    double v = floor((double)n * s + 0.5);
    return v < 1 ? 1 : v > INFERD_IMAGE_MAX_DIM ? INFERD_IMAGE_MAX_DIM + 1u : (uint32_t)v;
}

/* n to the nearest multiple of m, at least m (DB-style detectors). */
static uint32_t round_to(uint32_t n, uint32_t m)
{
    uint32_t r = (n + m / 2) / m * m;
    return r < m ? m : r;
}

inferd_status inferd_contract_plan(const inferd_input_contract *c, int64_t x, int64_t y,
                                   uint32_t w, uint32_t h, inferd_geometry *g, inferd_error *err)
{
    memset(g, 0, sizeof *g);
    g->src_x = x;
    g->src_y = y;
    g->src_w = w;
    g->src_h = h;
    if (!w || !h)
        return inferd_error_set(err, INFERD_ERANGE, "an empty area (%ux%u)", w, h);
    double s;
    switch (c->resize) {
    case INFERD_RESIZE_AUTO: /* not fitted to a model: nothing to follow */
    case INFERD_RESIZE_NONE:
        g->inner_w = w;
        g->inner_h = h;
        break;
    case INFERD_RESIZE_STRETCH:
        g->inner_w = c->width;
        g->inner_h = c->height;
        break;
    case INFERD_RESIZE_LETTERBOX: {
        double sx = (double)c->width / w, sy = (double)c->height / h;
        s = sx < sy ? sx : sy;
        g->inner_w = sx <= sy ? c->width : scaled(w, s);
        g->inner_h = sy <= sx ? c->height : scaled(h, s);
        if (g->inner_w > c->width)
            g->inner_w = c->width;
        if (g->inner_h > c->height)
            g->inner_h = c->height;
        if (!c->pad_top_left) {
            g->off_x = (c->width - g->inner_w) / 2;
            g->off_y = (c->height - g->inner_h) / 2;
        }
        g->width = c->width;
        g->height = c->height;
        break;
    }
    case INFERD_RESIZE_LIMIT: {
        uint32_t longer = w > h ? w : h;
        s = c->limit && longer > c->limit ? (double)c->limit / longer : 1.0;
        g->inner_w = round_to(scaled(w, s), c->multiple);
        g->inner_h = round_to(scaled(h, s), c->multiple);
        break;
    }
    case INFERD_RESIZE_SHORTCROP: {
        uint32_t shorter = w < h ? w : h;
        s = (double)c->short_side / shorter;
        g->inner_w = w == shorter ? c->short_side : scaled(w, s);
        g->inner_h = h == shorter ? c->short_side : scaled(h, s);
        g->off_x = -(int64_t)((g->inner_w - c->width) / 2);
        g->off_y = -(int64_t)((g->inner_h - c->height) / 2);
        g->width = c->width;
        g->height = c->height;
        break;
    }
    }
    if (!g->width) {
        g->width = g->inner_w;
        g->height = g->inner_h;
    }
    if (g->inner_w > INFERD_IMAGE_MAX_DIM || g->inner_h > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE,
                                "a %ux%u area resized gives %ux%u, above %u", w, h, g->inner_w,
                                g->inner_h, INFERD_IMAGE_MAX_DIM);
    g->scale_x = (double)g->inner_w / w;
    g->scale_y = (double)g->inner_h / h;
    return INFERD_OK;
}

void inferd_geometry_to_image(const inferd_geometry *g, double u, double v, double *x, double *y)
{
    *x = (double)g->src_x + (u - (double)g->off_x) / g->scale_x;
    *y = (double)g->src_y + (v - (double)g->off_y) / g->scale_y;
}

/* ---- filling ----------------------------------------------------------------------------- */

/* IEEE 754 binary16 of f, rounded to nearest even; overflow to infinity. */
static uint16_t half(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    uint32_t sign = (b >> 16) & 0x8000u, e = (b >> 23) & 0xffu, m = b & 0x7fffffu;
    if (e == 0xffu)
        return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
    int32_t he = (int32_t)e - 127 + 15;
    if (he >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (he <= 0) { /* subnormal or zero */
        if (he < -10)
            return (uint16_t)sign;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - he), r = m >> shift, rem = m & ((1u << shift) - 1),
                 mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (sign | ((uint32_t)he << 10) | (m >> 13));
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1)))
        r++; /* may carry into the exponent: that is the right rounding */
    return (uint16_t)r;
}

/* Where each tensor channel comes from in a pixel of fmt (GRAY from colour:
 * map[0] is -1, and the luma of the red and blue map[1], map[2]). */
static void channel_map(const inferd_input_contract *c, inferd_pixel_format fmt, int *map)
{
    bool bgr_src = fmt == INFERD_PIXEL_BGR8 || fmt == INFERD_PIXEL_BGRA8;
    if (fmt == INFERD_PIXEL_GRAY8) {
        map[0] = map[1] = map[2] = 0;
    } else if (c->order == INFERD_PIXEL_GRAY8) {
        map[0] = -1; /* luma of red map[1], green 1, blue map[2] */
        map[1] = bgr_src ? 2 : 0;
        map[2] = bgr_src ? 0 : 2;
    } else {
        bool bgr_dst = c->order == INFERD_PIXEL_BGR8;
        int r = bgr_src ? 2 : 0, b = bgr_src ? 0 : 2;
        map[0] = bgr_dst ? b : r;
        map[1] = 1;
        map[2] = bgr_dst ? r : b;
    }
}

/* One output row's run of n image pixels (from p, sc bytes apart) or, with
 * p NULL, of padding; each value through the channel's table. dst steps by
 * `step` a pixel and `plane` a channel (NCHW: 1 and H*W; NHWC: C and 1). */
#define DEFINE_RUN(name, T)                                                                   \
    static void name(T *dst, size_t step, size_t plane, size_t C, const T (*tab)[256],      \
                     const uint8_t *p, size_t sc, const int *map, uint8_t pad, size_t n)     \
    {                                                                                         \
        if (!p) {                                                                             \
            for (size_t k = 0; k < C; k++)                                                    \
                for (size_t u = 0; u < n; u++)                                                \
                    dst[u * step + k * plane] = tab[k][pad];                                  \
        } else if (map[0] < 0) {                                                              \
            for (size_t u = 0; u < n; u++, p += sc)                                           \
                dst[u * step] = tab[0][inferd__luma(p[map[1]], p[1], p[map[2]])];             \
        } else if (C == 3 && step == 1) { /* NCHW: three planes */                          \
            const T *t0 = tab[0], *t1 = tab[1], *t2 = tab[2];                                 \
            const size_t m0 = (size_t)map[0], m1 = (size_t)map[1], m2 = (size_t)map[2]; \
            T *d0 = dst, *d1 = dst + plane, *d2 = dst + 2 * plane;                            \
            for (size_t u = 0; u < n; u++, p += sc) {                                         \
                d0[u] = t0[p[m0]];                                                            \
                d1[u] = t1[p[m1]];                                                            \
                d2[u] = t2[p[m2]];                                                            \
            }                                                                                 \
        } else if (C == 3) { /* NHWC: interleaved */                                        \
            const T *t0 = tab[0], *t1 = tab[1], *t2 = tab[2];                                 \
            const size_t m0 = (size_t)map[0], m1 = (size_t)map[1], m2 = (size_t)map[2]; \
            for (size_t u = 0; u < n; u++, p += sc, dst += 3) {                               \
                dst[0] = t0[p[m0]];                                                           \
                dst[1] = t1[p[m1]];                                                           \
                dst[2] = t2[p[m2]];                                                           \
            }                                                                                 \
        } else {                                                                              \
            const T *t0 = tab[0];                                                             \
            const size_t m0 = (size_t)map[0];                                                 \
            for (size_t u = 0; u < n; u++, p += sc)                                           \
                dst[u] = t0[p[m0]];                                                           \
        }                                                                                     \
    }
DEFINE_RUN(run_f32, float)
DEFINE_RUN(run_f16, uint16_t)
DEFINE_RUN(run_u8, uint8_t)

/* Per channel and pixel value, the tensor's value, in the tensor's type. */
typedef union tables {
    float f32[3][256];
    uint16_t f16[3][256];
    uint8_t u8[3][256];
} tables;

static void make_tables(const inferd_input_contract *c, size_t C, tables *t)
{
    for (size_t k = 0; k < C; k++)
        for (int v = 0; v < 256; v++) {
            float f = (float)((v * c->scale - c->mean[k]) / c->std[k]);
            if (c->dtype == INFERD_DTYPE_UINT8)
                t->u8[k][v] = (uint8_t)v;
            else if (c->dtype == INFERD_DTYPE_FLOAT16)
                t->f16[k][v] = half(f);
            else
                t->f32[k][v] = f;
        }
}

static void run(const inferd_input_contract *c, const tables *t, void *row, size_t at,
                size_t step, size_t plane, size_t C, const uint8_t *p, size_t sc, const int *map,
                size_t n)
{
    switch (c->dtype) {
    case INFERD_DTYPE_UINT8:
        run_u8((uint8_t *)row + at, step, plane, C, t->u8, p, sc, map, c->pad_value, n);
        break;
    case INFERD_DTYPE_FLOAT16:
        run_f16((uint16_t *)row + at, step, plane, C, t->f16, p, sc, map, c->pad_value, n);
        break;
    default:
        run_f32((float *)row + at, step, plane, C, t->f32, p, sc, map, c->pad_value, n);
        break;
    }
}

/* Whether the row is the image's own bytes (uint8, channels last, the
 * image's channel order) with the resampled area wholly inside it: then it
 * is resampled (or copied) straight into the row, no scratch image. */
static bool direct(const inferd_input_contract *c, inferd_pixel_format fmt,
                   const inferd_geometry *g)
{
    return c->dtype == INFERD_DTYPE_UINT8 && c->layout == INFERD_LAYOUT_NHWC &&
           c->order == fmt && g->off_x >= 0 && g->off_y >= 0 &&
           (uint64_t)g->off_x + g->inner_w <= g->width &&
           (uint64_t)g->off_y + g->inner_h <= g->height;
}

static inferd_status fill_direct(const inferd_input_contract *c, const inferd_image *area,
                                 const inferd_geometry *g, void *row, inferd_error *err)
{
    const size_t C = inferd_pixel_channels(area->format), stride = (size_t)g->width * C;
    if (g->inner_w != g->width || g->inner_h != g->height)
        memset(row, c->pad_value, stride * g->height);
    inferd_image dst = *area;
    dst.data = (uint8_t *)row + (size_t)g->off_y * stride + (size_t)g->off_x * C;
    dst.width = g->inner_w;
    dst.height = g->inner_h;
    dst.stride = stride;
    if (g->inner_w != g->src_w || g->inner_h != g->src_h)
        return inferd_image_resample(area, &dst, c->nearest, err);
    for (size_t y = 0; y < g->inner_h; y++)
        memcpy(dst.data + y * stride, area->data + y * area->stride, (size_t)g->inner_w * C);
    return INFERD_OK;
}

static size_t clampu(int64_t v, size_t hi)
{
    return v < 0 ? 0 : (size_t)v > hi ? hi : (size_t)v;
}

inferd_status inferd_contract_fill(const inferd_input_contract *c, const inferd_image *img,
                                   const inferd_geometry *g, void *row, inferd_error *err)
{
    size_t sc = inferd_pixel_channels(img ? img->format : INFERD_PIXEL_INVALID);
    if (!sc || !row)
        return inferd_error_set(err, INFERD_EINVAL, "contract fill: no image or no row");
    if (g->src_x < 0 || g->src_y < 0 || (uint64_t)g->src_x + g->src_w > img->width ||
        (uint64_t)g->src_y + g->src_h > img->height)
        return inferd_error_set(err, INFERD_ERANGE,
                                "the area %ux%u at (%lld, %lld) is outside the %ux%u image",
                                g->src_w, g->src_h, (long long)g->src_x, (long long)g->src_y,
                                img->width, img->height);
    /* The area, and the area resampled to inner_w x inner_h. */
    inferd_image area = *img, *scratch = NULL;
    area.data = img->data + (size_t)g->src_y * img->stride + (size_t)g->src_x * sc;
    area.width = g->src_w;
    area.height = g->src_h;
    if (direct(c, img->format, g))
        return fill_direct(c, &area, g, row, err);
    const inferd_image *inner = &area;
    if (g->inner_w != g->src_w || g->inner_h != g->src_h) {
        inferd_status st = inferd_image_new(img->format, g->inner_w, g->inner_h, &scratch, err);
        if (st == INFERD_OK)
            st = inferd_image_resample(&area, scratch, c->nearest, err);
        if (st != INFERD_OK) {
            inferd_image_free(scratch);
            return st;
        }
        inner = scratch;
    }
    const size_t C = channels(c), W = g->width, H = g->height;
    const bool nchw = c->layout != INFERD_LAYOUT_NHWC;
    const size_t step = nchw ? 1 : C, plane = nchw ? W * H : 1;
    int map[3];
    channel_map(c, img->format, map);
    tables *t = malloc(sizeof *t);
    if (!t) {
        inferd_image_free(scratch);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    make_tables(c, C, t);
    /* Row v: padding [0, u0), the image [u0, u1), padding [u1, W). */
    const size_t u0 = clampu(g->off_x, W), u1 = clampu(g->off_x + (int64_t)inner->width, W);
    for (size_t v = 0; v < H; v++) {
        int64_t iv = (int64_t)v - g->off_y;
        size_t first = v * W * (nchw ? 1 : C);
        if (iv < 0 || iv >= (int64_t)inner->height || u1 <= u0) {
            run(c, t, row, first, step, plane, C, NULL, sc, map, W);
            continue;
        }
        const uint8_t *p = inner->data + (size_t)iv * inner->stride +
                           (size_t)((int64_t)u0 - g->off_x) * sc;
        run(c, t, row, first, step, plane, C, NULL, sc, map, u0);
        run(c, t, row, first + u0 * step, step, plane, C, p, sc, map, u1 - u0);
        run(c, t, row, first + u1 * step, step, plane, C, NULL, sc, map, W - u1);
    }
    free(t);
    inferd_image_free(scratch);
    return INFERD_OK;
}
