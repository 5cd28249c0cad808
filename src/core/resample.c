/* core/resample.c: inferd_image_resample: bilinear and nearest resampling
 * with half-pixel centres, fixed point, separable. The one resampler of the
 * vision elements and of input contracts (inferd/contract.h).
 *
 * Output pixel u samples the source at (u + 0.5) / scale - 0.5, clamped to
 * the edge. Bilinear weights are 11-bit fixed point, computed once per
 * output column and row; the horizontal pass runs once per source row used
 * (cached between output rows) and the vertical pass blends two of them, so
 * a pixel costs a few integer multiply adds. Nearest takes the source pixel
 * under the sample point.
 */
#include "inferd/contract.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

inferd_status inferd_image_resample(const inferd_image *src, inferd_image *dst, bool nearest,
                                    inferd_error *err)
{
    if (!src || !dst || !src->data || !dst->data || src->format != dst->format ||
        !inferd_pixel_channels(src->format) || !src->width || !src->height || !dst->width ||
        !dst->height)
        return inferd_error_set(err, INFERD_EINVAL,
                                "resample: two non-empty images of the same pixel format needed");
    return nearest ? resize_nearest(src, dst->data, dst->stride, dst->width, dst->height, err)
                   : resize_bilinear(src, dst->data, dst->stride, dst->width, dst->height, err);
}
