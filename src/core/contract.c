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

static const char *const dtypes[] = {"auto", "float32", "float16", "uint8", NULL};
static const char *const layouts[] = {"auto", "nchw", "nhwc", NULL};
static const char *const orders[] = {"rgb", "bgr", "gray", NULL};
static const char *const modes[] = {"none", "stretch", "letterbox", "limit", "shortcrop", NULL};
static const char *const positions[] = {"center", "topleft", NULL};
static const char *const samplings[] = {"bilinear", "nearest", NULL};

static const inferd_prop_spec contract_props[] = {
    INFERD_PROP_ENUM("dtype", "the tensor's element type (auto: the model's)", "auto", dtypes),
    INFERD_PROP_ENUM("layout", "nchw [N,C,H,W] or nhwc [N,H,W,C] (auto: from the model's shape)",
                     "auto", layouts),
    INFERD_PROP_ENUM("channelOrder", "the tensor's channels", "rgb", orders),
    INFERD_PROP_DOUBLE("scale", "each pixel value is multiplied by this first (float types; "
                       "the default is 1/255)", 0.00392156862745098, -1e6, 1e6),
    {.name = "mean", .type = INFERD_PROP_TYPE_NUMLIST, .default_value = "0",
     .description = "subtracted after scale: one value, or one per channel"},
    {.name = "std", .type = INFERD_PROP_TYPE_NUMLIST, .default_value = "1",
     .description = "divides after mean: one value, or one per channel (never 0)"},
    INFERD_PROP_ENUM("resize", "none (the image's size), stretch or letterbox (to width x "
                     "height), limit (keep the aspect, the longer side at most limit, each "
                     "side a multiple of multiple), shortcrop (the shorter side to shortSide, "
                     "then the centre width x height)",
                     "none", modes),
    INFERD_PROP_UINT("width", "stretch, letterbox, shortcrop: the width (0: the model's)", 0, 0,
                     INFERD_IMAGE_MAX_DIM),
    INFERD_PROP_UINT("height", "stretch, letterbox, shortcrop: the height (0: the model's)", 0, 0,
                     INFERD_IMAGE_MAX_DIM),
    INFERD_PROP_UINT("limit", "limit: the longer side's bound (0: none; never enlarged)", 0, 0,
                     INFERD_IMAGE_MAX_DIM),
    INFERD_PROP_UINT("multiple", "limit: each side rounded to a multiple of this", 1, 1, 4096),
    INFERD_PROP_UINT("shortSide", "shortcrop: the shorter side's size before the crop", 0, 0,
                     INFERD_IMAGE_MAX_DIM),
    INFERD_PROP_UINT("padValue", "letterbox: the value of every channel of the padding", 0, 0,
                     255),
    INFERD_PROP_ENUM("padPosition", "letterbox: the image centred, or at the top-left (pad "
                     "right and bottom)", "center", positions),
    INFERD_PROP_ENUM("interpolation", "bilinear or nearest (half-pixel centres)", "bilinear",
                     samplings),
    INFERD_PROP_END,
};

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
    c->resize = (inferd_resize_mode)pick(modes, str(o, "resize", "none"));
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
    const size_t C = channels(c), W = g->width, H = g->height, plane = W * H;
    int map[3];
    channel_map(c, img->format, map);
    float lut[3][256];
    for (size_t k = 0; k < C; k++)
        for (int v = 0; v < 256; v++)
            lut[k][v] = (float)((v * c->scale - c->mean[k]) / c->std[k]);
    const uint8_t pad[3] = {c->pad_value, c->pad_value, c->pad_value};
    const bool nchw = c->layout != INFERD_LAYOUT_NHWC;
    float *f32 = row;
    uint16_t *f16 = row;
    uint8_t *u8 = row;
    for (size_t v = 0; v < H; v++) {
        int64_t iv = (int64_t)v - g->off_y;
        const uint8_t *srow = iv >= 0 && iv < (int64_t)inner->height
                                  ? inner->data + (size_t)iv * inner->stride
                                  : NULL;
        for (size_t u = 0; u < W; u++) {
            int64_t iu = (int64_t)u - g->off_x;
            uint8_t px[3];
            if (srow && iu >= 0 && iu < (int64_t)inner->width) {
                const uint8_t *p = srow + (size_t)iu * sc;
                if (map[0] < 0) {
                    px[0] = inferd__luma(p[map[1]], p[1], p[map[2]]);
                } else {
                    for (size_t k = 0; k < C; k++)
                        px[k] = p[map[k]];
                }
            } else {
                memcpy(px, pad, sizeof px);
            }
            for (size_t k = 0; k < C; k++) {
                size_t at = nchw ? k * plane + v * W + u : (v * W + u) * C + k;
                switch (c->dtype) {
                case INFERD_DTYPE_UINT8: u8[at] = px[k]; break;
                case INFERD_DTYPE_FLOAT16: f16[at] = half(lut[k][px[k]]); break;
                default: f32[at] = lut[k][px[k]]; break;
                }
            }
        }
    }
    inferd_image_free(scratch);
    return INFERD_OK;
}
