/* image_resize.c: the image_resize element of the vision plugin, and its
 * resampling (bilinear and nearest, fixed point, separable).
 *
 * In and out: "image/rgb", "image/bgr", "image/gray" (the pixel format is
 * kept). Out (port 0) is a buffer derived from the input whose payload is
 * the resized image, with a metadata/transform entry under the element's
 * name (docs/metadata.md):
 *   {"type": "resize", "scale_x", "scale_y", "pad_x", "pad_y",
 *    "src_width", "src_height"}
 * where output (u, v) is input ((u - pad_x) / scale_x, (v - pad_y) / scale_y).
 *
 * Size: `resizeWidth` x `resizeHeight`. A 0 dimension is not resized:
 *   - keepAspect false: 0 keeps the source size in that dimension;
 *   - keepAspect true: the image is scaled by one factor to fit inside the
 *     box and centred in it, the rest filled with `padValue` (letterbox;
 *     pad_x, pad_y are the left and top pads). A 0 dimension leaves that
 *     side free: the image is scaled to the other dimension and nothing is
 *     padded, e.g. resizeWidth 320 on 640x480 gives 320x240.
 * Both 0 is refused at init. scale_x, scale_y are the factors actually used
 * (inner size / source size, which with keepAspect can differ from each
 * other by the rounding of the inner size).
 *
 * Sampling uses half-pixel centres: output pixel u samples the source at
 * (u + 0.5) / scale - 0.5, clamped to the edge. Bilinear weights are 11-bit
 * fixed point, computed once per output column and row; the horizontal pass
 * runs once per source row used (cached between output rows) and the
 * vertical pass blends two of them, so a pixel costs a few integer multiply
 * adds. Nearest takes the source pixel under the sample point. When the
 * output would equal the input (same size, no pad), the output shares the
 * input's pixels (the derived buffer keeps its parent alive).
 */
#include "vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const interpolations[] = {"bilinear", "nearest", NULL};

const inferd_prop_spec vision_resize_props[] = {
    INFERD_PROP_INT("resizeWidth",
                    "output width; 0 keeps the source width (with keepAspect: follows the "
                    "aspect ratio)",
                    0, 0, 16384),
    INFERD_PROP_INT("resizeHeight",
                    "output height; 0 keeps the source height (with keepAspect: follows the "
                    "aspect ratio)",
                    0, 0, 16384),
    INFERD_PROP_BOOL("keepAspect",
                     "scale by one factor to fit inside resizeWidth x resizeHeight, centred, "
                     "padding the rest with padValue",
                     false),
    INFERD_PROP_INT("padValue", "value of every channel of the padding (keepAspect)", 0, 0, 255),
    INFERD_PROP_ENUM("interpolation", "bilinear (half-pixel centres) or nearest", "bilinear",
                     interpolations),
    INFERD_PROP_END,
};
const inferd_port_spec vision_resize_in[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                             INFERD_PORT_END};
const inferd_port_spec vision_resize_out[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                              INFERD_PORT_END};

typedef struct resizer {
    uint32_t width, height; /* 0: see the file comment */
    bool keep_aspect;
    uint8_t pad;
    bool nearest;
} resizer;

inferd_status vision_resize_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    int64_t w = inferd_props_int(p, "resizeWidth"), h = inferd_props_int(p, "resizeHeight");
    if (w == 0 && h == 0)
        return inferd_error_set(err, INFERD_EINVAL,
                                "resizeWidth and resizeHeight are both 0: set at least one");
    resizer *r = calloc(1, sizeof *r);
    if (!r)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    r->width = (uint32_t)w;
    r->height = (uint32_t)h;
    r->keep_aspect = inferd_props_bool(p, "keepAspect");
    r->pad = (uint8_t)inferd_props_int(p, "padValue");
    r->nearest = strcmp(inferd_props_string(p, "interpolation"), "nearest") == 0;
    inferd_instance_set_state(self, r);
    return INFERD_OK;
}

void vision_resize_deinit(inferd_instance *self)
{
    free(inferd_instance_state(self));
}

/* ---- geometry -------------------------------------------------------------- */

typedef struct geometry {
    uint32_t out_w, out_h;     /* the output image */
    uint32_t inner_w, inner_h; /* the resampled image inside it */
    uint32_t pad_x, pad_y;     /* where the inner image starts */
} geometry;

static uint32_t scaled(uint32_t n, double s)
{
    double v = floor((double)n * s + 0.5);
    return v < 1 ? 1 : (uint32_t)v;
}

static inferd_status plan(const resizer *r, uint32_t sw, uint32_t sh, geometry *g,
                          inferd_error *err)
{
    memset(g, 0, sizeof *g);
    if (!r->keep_aspect) {
        g->out_w = g->inner_w = r->width ? r->width : sw;
        g->out_h = g->inner_h = r->height ? r->height : sh;
        return INFERD_OK;
    }
    double s;
    if (r->width && r->height) {
        double sx = (double)r->width / sw, sy = (double)r->height / sh;
        s = sx < sy ? sx : sy;
        g->inner_w = sx <= sy ? r->width : scaled(sw, s);
        g->inner_h = sy <= sx ? r->height : scaled(sh, s);
        if (g->inner_w > r->width)
            g->inner_w = r->width;
        if (g->inner_h > r->height)
            g->inner_h = r->height;
        g->out_w = r->width;
        g->out_h = r->height;
        g->pad_x = (r->width - g->inner_w) / 2;
        g->pad_y = (r->height - g->inner_h) / 2;
    } else if (r->width) {
        s = (double)r->width / sw;
        g->out_w = g->inner_w = r->width;
        double h = floor((double)sh * s + 0.5);
        if (h > INFERD_IMAGE_MAX_DIM)
            return inferd_error_set(err, INFERD_ERANGE,
                                    "keeping the aspect of a %ux%u image at width %u gives a "
                                    "height of %.0f, above %u",
                                    sw, sh, r->width, h, INFERD_IMAGE_MAX_DIM);
        g->out_h = g->inner_h = scaled(sh, s);
    } else {
        s = (double)r->height / sh;
        g->out_h = g->inner_h = r->height;
        double w = floor((double)sw * s + 0.5);
        if (w > INFERD_IMAGE_MAX_DIM)
            return inferd_error_set(err, INFERD_ERANGE,
                                    "keeping the aspect of a %ux%u image at height %u gives a "
                                    "width of %.0f, above %u",
                                    sw, sh, r->height, w, INFERD_IMAGE_MAX_DIM);
        g->out_w = g->inner_w = scaled(sw, s);
    }
    return INFERD_OK;
}

/* ---- resampling ------------------------------------------------------------ */

#define WBITS 11
#define WONE (1u << WBITS)

/* One output column (or row) of bilinear sampling: the two source indices
 * (already multiplied by the channel count for columns, by nothing for rows)
 * and the weight of the second, 0..WONE. */
typedef struct tap {
    uint32_t i0, i1;
    uint32_t w;
} tap;

/* Half-pixel centres, clamped to the edge. */
static void bilinear_taps(uint32_t src, uint32_t dst, uint32_t mul, tap *t)
{
    double ratio = (double)src / dst;
    for (uint32_t i = 0; i < dst; i++) {
        double f = ((double)i + 0.5) * ratio - 0.5;
        if (f < 0)
            f = 0;
        uint32_t i0 = (uint32_t)f;
        if (i0 >= src - 1) {
            t[i].i0 = t[i].i1 = (src - 1) * mul;
            t[i].w = 0;
            continue;
        }
        t[i].i0 = i0 * mul;
        t[i].i1 = (i0 + 1) * mul;
        t[i].w = (uint32_t)floor((f - i0) * WONE + 0.5);
    }
}

static void nearest_index(uint32_t src, uint32_t dst, uint32_t mul, uint32_t *idx)
{
    double ratio = (double)src / dst;
    for (uint32_t i = 0; i < dst; i++) {
        double f = floor(((double)i + 0.5) * ratio);
        uint32_t k = f >= src ? src - 1 : (uint32_t)f;
        idx[i] = k * mul;
    }
}

/* Horizontal pass of one source row into out (dst_w * C values scaled by
 * WONE). C is a constant at each call site; 1 and 3 are written out, since
 * the compiler does not unroll a 3-iteration loop at -O2. */
static inline __attribute__((always_inline)) void hpass(const uint8_t *row, const tap *cols,
                                                         uint32_t dst_w, uint32_t C,
                                                         uint32_t *out)
{
    if (C == 3) {
        for (uint32_t x = 0; x < dst_w; x++, out += 3) {
            const uint8_t *a = row + cols[x].i0, *b = row + cols[x].i1;
            const uint32_t w1 = cols[x].w, w0 = WONE - w1;
            out[0] = a[0] * w0 + b[0] * w1;
            out[1] = a[1] * w0 + b[1] * w1;
            out[2] = a[2] * w0 + b[2] * w1;
        }
    } else if (C == 1) {
        for (uint32_t x = 0; x < dst_w; x++) {
            const uint32_t w1 = cols[x].w;
            out[x] = row[cols[x].i0] * (WONE - w1) + row[cols[x].i1] * w1;
        }
    } else {
        for (uint32_t x = 0; x < dst_w; x++, out += C) {
            const uint8_t *a = row + cols[x].i0, *b = row + cols[x].i1;
            const uint32_t w1 = cols[x].w, w0 = WONE - w1;
            for (uint32_t c = 0; c < C; c++)
                out[c] = a[c] * w0 + b[c] * w1;
        }
    }
}

typedef struct bilinear_work {
    tap *cols, *rows;
    uint32_t *h[2];      /* two horizontally resampled source rows */
    uint32_t h_row[2];   /* which source row each holds (UINT32_MAX: none) */
} bilinear_work;

static inline __attribute__((always_inline)) void bilinear_run(const inferd_image *src,
                                                                uint8_t *dst, size_t dst_stride,
                                                                uint32_t dst_w, uint32_t dst_h,
                                                                uint32_t C, bilinear_work *wk)
{
    const uint32_t n = dst_w * C;
    for (uint32_t y = 0; y < dst_h; y++) {
        const tap *ty = &wk->rows[y];
        /* Slot 0 holds the upper source row, slot 1 the lower one. */
        if (wk->h_row[0] != ty->i0) {
            if (wk->h_row[1] == ty->i0) {
                uint32_t *t = wk->h[0];
                wk->h[0] = wk->h[1];
                wk->h[1] = t;
                wk->h_row[1] = wk->h_row[0];
            } else {
                hpass(src->data + (size_t)ty->i0 * src->stride, wk->cols, dst_w, C, wk->h[0]);
            }
            wk->h_row[0] = ty->i0;
        }
        if (ty->i1 != ty->i0 && wk->h_row[1] != ty->i1) {
            hpass(src->data + (size_t)ty->i1 * src->stride, wk->cols, dst_w, C, wk->h[1]);
            wk->h_row[1] = ty->i1;
        }
        uint8_t *o = dst + (size_t)y * dst_stride;
        const uint32_t w1 = ty->w, w0 = WONE - w1;
        const uint32_t *h0 = wk->h[0], *h1 = ty->i1 != ty->i0 ? wk->h[1] : wk->h[0];
        if (w1 == 0) {
            for (uint32_t i = 0; i < n; i++)
                o[i] = (uint8_t)((h0[i] + (WONE >> 1)) >> WBITS);
        } else {
            for (uint32_t i = 0; i < n; i++)
                o[i] = (uint8_t)((h0[i] * w0 + h1[i] * w1 + (1u << (2 * WBITS - 1))) >>
                                 (2 * WBITS));
        }
    }
}

static inferd_status resize_bilinear(const inferd_image *src, uint8_t *dst, size_t dst_stride,
                                     uint32_t dst_w, uint32_t dst_h, inferd_error *err)
{
    const uint32_t C = (uint32_t)inferd_pixel_channels(src->format);
    bilinear_work wk = {0};
    wk.cols = malloc(sizeof(tap) * dst_w);
    wk.rows = malloc(sizeof(tap) * dst_h);
    wk.h[0] = malloc(sizeof(uint32_t) * dst_w * C);
    wk.h[1] = malloc(sizeof(uint32_t) * dst_w * C);
    inferd_status st = INFERD_OK;
    if (!wk.cols || !wk.rows || !wk.h[0] || !wk.h[1]) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory resizing to %ux%u", dst_w, dst_h);
    } else {
        bilinear_taps(src->width, dst_w, C, wk.cols);
        bilinear_taps(src->height, dst_h, 1, wk.rows);
        wk.h_row[0] = wk.h_row[1] = UINT32_MAX;
        switch (C) {
        case 1: bilinear_run(src, dst, dst_stride, dst_w, dst_h, 1, &wk); break;
        case 3: bilinear_run(src, dst, dst_stride, dst_w, dst_h, 3, &wk); break;
        default: bilinear_run(src, dst, dst_stride, dst_w, dst_h, C, &wk); break;
        }
    }
    free(wk.cols);
    free(wk.rows);
    free(wk.h[0]);
    free(wk.h[1]);
    return st;
}

static inline __attribute__((always_inline)) void nearest_run(const inferd_image *src,
                                                               uint8_t *dst, size_t dst_stride,
                                                               uint32_t dst_w, uint32_t dst_h,
                                                               uint32_t C, const uint32_t *cols,
                                                               const uint32_t *rows)
{
    for (uint32_t y = 0; y < dst_h; y++) {
        const uint8_t *s = src->data + (size_t)rows[y] * src->stride;
        uint8_t *o = dst + (size_t)y * dst_stride;
        if (C == 3) {
            for (uint32_t x = 0; x < dst_w; x++, o += 3) {
                const uint8_t *p = s + cols[x];
                o[0] = p[0];
                o[1] = p[1];
                o[2] = p[2];
            }
        } else if (C == 1) {
            for (uint32_t x = 0; x < dst_w; x++)
                o[x] = s[cols[x]];
        } else {
            for (uint32_t x = 0; x < dst_w; x++, o += C)
                memcpy(o, s + cols[x], C);
        }
    }
}

static inferd_status resize_nearest(const inferd_image *src, uint8_t *dst, size_t dst_stride,
                                    uint32_t dst_w, uint32_t dst_h, inferd_error *err)
{
    const uint32_t C = (uint32_t)inferd_pixel_channels(src->format);
    uint32_t *cols = malloc(sizeof(uint32_t) * dst_w);
    uint32_t *rows = malloc(sizeof(uint32_t) * dst_h);
    inferd_status st = INFERD_OK;
    if (!cols || !rows) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory resizing to %ux%u", dst_w, dst_h);
    } else {
        nearest_index(src->width, dst_w, C, cols);
        nearest_index(src->height, dst_h, 1, rows);
        switch (C) {
        case 1: nearest_run(src, dst, dst_stride, dst_w, dst_h, 1, cols, rows); break;
        case 3: nearest_run(src, dst, dst_stride, dst_w, dst_h, 3, cols, rows); break;
        default: nearest_run(src, dst, dst_stride, dst_w, dst_h, C, cols, rows); break;
        }
    }
    free(cols);
    free(rows);
    return st;
}

/* ---- the element ----------------------------------------------------------- */

static inferd_value *transform_entry(const inferd_image *src, const geometry *g,
                                     inferd_error *err)
{
    inferd_value *t = inferd_value_object();
    if (!t) {
        inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        return NULL;
    }
    if (vision_set_string(t, "type", "resize", err) ||
        vision_set_double(t, "scale_x", (double)g->inner_w / src->width, err) ||
        vision_set_double(t, "scale_y", (double)g->inner_h / src->height, err) ||
        vision_set_int(t, "pad_x", g->pad_x, err) || vision_set_int(t, "pad_y", g->pad_y, err) ||
        vision_set_int(t, "src_width", src->width, err) ||
        vision_set_int(t, "src_height", src->height, err)) {
        inferd_value_free(t);
        return NULL;
    }
    return t;
}

inferd_status vision_resize_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                    size_t n, inferd_error *err)
{
    const resizer *r = inferd_instance_state(self);
    inferd_buffer *in;
    const inferd_image *src;
    inferd_status st = vision_one_input(in_bufs, n, &in, err);
    if (st != INFERD_OK)
        return st;
    if (vision_forward_error(self, in, &st, err))
        return st;
    if ((st = vision_input_image(in, &src, err)) != INFERD_OK)
        return st;

    geometry g;
    if ((st = plan(r, src->width, src->height, &g, err)) != INFERD_OK)
        return st;
    inferd_value *transform = transform_entry(src, &g, err);
    if (!transform)
        return err ? err->code : INFERD_ENOMEM; /* transform_entry said why */

    inferd_image *out = NULL;
    if (g.out_w == src->width && g.out_h == src->height && g.inner_w == g.out_w &&
        g.inner_h == g.out_h) {
        /* Nothing to resample: share the input's pixels. */
        st = inferd_image_wrap(src->format, src->width, src->height, src->stride, src->data, NULL,
                               NULL, &out, err);
    } else {
        st = inferd_image_new(src->format, g.out_w, g.out_h, &out, err);
        if (st == INFERD_OK) {
            const size_t C = inferd_pixel_channels(src->format);
            if ((g.inner_w != g.out_w || g.inner_h != g.out_h) && r->pad != 0)
                memset(out->data, r->pad, out->stride * g.out_h);
            uint8_t *dst = out->data + (size_t)g.pad_y * out->stride + (size_t)g.pad_x * C;
            st = r->nearest ? resize_nearest(src, dst, out->stride, g.inner_w, g.inner_h, err)
                            : resize_bilinear(src, dst, out->stride, g.inner_w, g.inner_h, err);
        }
    }
    if (st != INFERD_OK) {
        inferd_image_free(out);
        inferd_value_free(transform);
        return st;
    }
    return vision_push_image(self, in, out, "metadata/transform", transform, err);
}
