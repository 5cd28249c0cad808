/* detections.c: object detection heads decoded into boxes, and non-maximum
 * suppression (algorithms.h). Plain arrays; nothing kept between calls. */
#include "algorithms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *layout_name(pp_det_layout l)
{
    return l == PP_DET_YOLOV8 ? "yolov8" : l == PP_DET_YOLOV5 ? "yolov5" : "boxes+scores";
}

pp_det_layout pp_detect_guess(const pp_tensor_view *outs, size_t n)
{
    if (n >= 2)
        return PP_DET_BOXES_SCORES;
    const pp_tensor_view *o = &outs[0];
    /* [4+C, A] has far fewer rows than anchors; [A, 5+C] the other way. */
    return o->ndim >= 2 && o->dims[o->ndim - 2] > o->dims[o->ndim - 1] ? PP_DET_YOLOV5
                                                                        : PP_DET_YOLOV8;
}

/* The last two dims of o (leading dims of 1 allowed), or false. */
static bool matrix(const pp_tensor_view *o, size_t *rows, size_t *cols)
{
    if (o->ndim < 2)
        return false;
    for (size_t i = 0; i + 2 < o->ndim; i++)
        if (o->dims[i] != 1)
            return false;
    if (o->dims[o->ndim - 2] < 1 || o->dims[o->ndim - 1] < 1)
        return false;
    *rows = (size_t)o->dims[o->ndim - 2];
    *cols = (size_t)o->dims[o->ndim - 1];
    return true;
}

static inferd_status bad_shape(pp_det_layout layout, const pp_tensor_view *outs, size_t n,
                               inferd_error *err)
{
    char a[160] = "", b[160] = "";
    inferd_shape_format(outs[0].ndim, outs[0].dims, a, sizeof a);
    if (n > 1)
        inferd_shape_format(outs[1].ndim, outs[1].dims, b, sizeof b);
    return inferd_error_set(err, INFERD_EINVAL,
                            "outputs %s%s%s (less the batch) are not a %s head: expected %s",
                            a, n > 1 ? " and " : "", b, layout_name(layout),
                            layout == PP_DET_YOLOV8   ? "[4+C, A]"
                            : layout == PP_DET_YOLOV5 ? "[A, 5+C]"
                                                      : "boxes [A, 4] and scores [A, C]");
}

/* Appends a box to *out (growing it). false: out of memory. */
static bool push(pp_box **out, size_t *n, size_t *cap, pp_box b)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        pp_box *g = realloc(*out, nc * sizeof *g);
        if (!g)
            return false;
        *out = g;
        *cap = nc;
    }
    (*out)[(*n)++] = b;
    return true;
}

static pp_box centre_box(float cx, float cy, float w, float h, float score, size_t cls)
{
    return (pp_box){cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, cls};
}

inferd_status pp_detect_decode(pp_det_layout layout, const pp_tensor_view *outs, size_t n,
                               double threshold, bool normalised, double width, double height,
                               pp_box **out, size_t *count, inferd_error *err)
{
    *out = NULL;
    *count = 0;
    size_t cap = 0, rows, cols, rows2 = 0, cols2 = 0;
    if (n < 1 || !matrix(&outs[0], &rows, &cols) ||
        (layout == PP_DET_BOXES_SCORES && (n < 2 || !matrix(&outs[1], &rows2, &cols2))))
        return bad_shape(layout, outs, n, err);
    const float *v = outs[0].v;
    bool ok = true;
    if (layout == PP_DET_YOLOV8) {
        if (rows < 5)
            return bad_shape(layout, outs, n, err);
        size_t A = cols, C = rows - 4;
        for (size_t i = 0; ok && i < A; i++) {
            size_t best = 0;
            float s = v[4 * A + i];
            for (size_t c = 1; c < C; c++)
                if (v[(4 + c) * A + i] > s) {
                    s = v[(4 + c) * A + i];
                    best = c;
                }
            if (s >= threshold)
                ok = push(out, count, &cap,
                          centre_box(v[i], v[A + i], v[2 * A + i], v[3 * A + i], s, best));
        }
    } else if (layout == PP_DET_YOLOV5) {
        if (cols < 6)
            return bad_shape(layout, outs, n, err);
        size_t A = rows, C = cols - 5;
        for (size_t i = 0; ok && i < A; i++) {
            const float *r = v + i * cols;
            if (!(r[4] >= threshold)) /* objectness x a score <= 1 cannot pass */
                continue;
            size_t best = 0;
            for (size_t c = 1; c < C; c++)
                if (r[5 + c] > r[5 + best])
                    best = c;
            float s = r[4] * r[5 + best];
            if (s >= threshold)
                ok = push(out, count, &cap, centre_box(r[0], r[1], r[2], r[3], s, best));
        }
    } else {
        if (cols != 4 || rows2 != rows || cols2 < 1)
            return bad_shape(layout, outs, n, err);
        const float *sc = outs[1].v;
        double sx = normalised ? width : 1, sy = normalised ? height : 1;
        for (size_t i = 0; ok && i < rows; i++) {
            const float *r = sc + i * cols2, *b = v + i * 4;
            size_t best = 0;
            for (size_t c = 1; c < cols2; c++)
                if (r[c] > r[best])
                    best = c;
            if (r[best] >= threshold) {
                pp_box box = {(float)(fmin(b[0], b[2]) * sx), (float)(fmin(b[1], b[3]) * sy),
                              (float)(fmax(b[0], b[2]) * sx), (float)(fmax(b[1], b[3]) * sy),
                              r[best], best};
                ok = push(out, count, &cap, box);
            }
        }
    }
    if (!ok) {
        free(*out);
        *out = NULL;
        *count = 0;
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    return INFERD_OK;
}

double pp_iou(const pp_box *a, const pp_box *b)
{
    double w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0);
    double h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
    if (w <= 0 || h <= 0)
        return 0;
    double inter = w * h;
    double ua = (double)(a->x1 - a->x0) * (a->y1 - a->y0) +
                (double)(b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return ua > 0 ? inter / ua : 0;
}

/* Best score first; ties by position then class, so that the order (and
 * what survives) never depends on the sort's stability. */
static int by_score(const void *pa, const void *pb)
{
    const pp_box *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->y0 != b->y0)
        return a->y0 < b->y0 ? -1 : 1;
    if (a->x0 != b->x0)
        return a->x0 < b->x0 ? -1 : 1;
    return a->cls < b->cls ? -1 : a->cls > b->cls ? 1 : 0;
}

size_t pp_nms(pp_box *boxes, size_t n, double iou, bool agnostic, size_t max)
{
    if (n > 1)
        qsort(boxes, n, sizeof *boxes, by_score);
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < max; i++) {
        bool keep = true;
        for (size_t k = 0; keep && k < kept; k++)
            if ((agnostic || boxes[k].cls == boxes[i].cls) && pp_iou(&boxes[k], &boxes[i]) > iou)
                keep = false;
        if (keep)
            boxes[kept++] = boxes[i];
    }
    return kept;
}
