/* text.c: the "text" estimator family: DB-style text detectors (PaddleOCR's
 * det models, DBNet) whose output is a probability map [N, 1, h, w] of the
 * text kernels; DB's post-processing (algorithms.h, pp_text_boxes) turns it
 * into rotated text boxes, expanded back by the unclip ratio, in reading
 * order, mapped back through the input contract (DB models want each side a
 * multiple of 32: "input": {"resize": "limit", "limit": 960, "multiple": 32}).
 *
 * Result per image: {"count": N, "texts": [{"points": [{"x", "y"} x 4],
 * "score", "x", "y", "width", "height"}...]}: the corners top-left first,
 * clockwise, in the pixels of the image sent (continuous coordinates,
 * rounded to 0.01), and their axis-aligned bounds (whole pixels).
 */
#include "algorithms.h"
#include "estimators.h"

#include <math.h>
#include <stdlib.h>

const inferd_prop_spec est_text_options[] = {INFERD_PROP_END};

const inferd_prop_spec est_text_props[] = {
    INFERD_PROP_STRING("modelPath", "the ONNX text detector: a probability map [N,1,h,w]", NULL),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_DOUBLE("binThreshold", "a pixel of the map above this is text", 0.3, 0, 1),
    INFERD_PROP_DOUBLE("boxThreshold", "a box whose mean probability is under this is dropped",
                       0.6, 0, 1),
    INFERD_PROP_DOUBLE("unclipRatio", "each box grows by area x ratio / perimeter on every side "
                       "(the kernel back to the text)", 1.5, 0, 100),
    INFERD_PROP_DOUBLE("minSize", "boxes with a shorter side under this (map pixels) are "
                       "dropped", 3, 0, 100000),
    INFERD_PROP_UINT("maxCandidates", "regions considered at most per image", 1000, 1, 1000000),
    INFERD_PROP_END,
};

typedef struct texter {
    est_model m; /* first: est_deinit frees it */
    double bin, box, unclip, min_size;
    size_t max_candidates;
} texter;

inferd_status est_text_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    texter *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->bin = inferd_props_double(p, "binThreshold");
    s->box = inferd_props_double(p, "boxThreshold");
    s->unclip = inferd_props_double(p, "unclipRatio");
    s->min_size = inferd_props_double(p, "minSize");
    s->max_candidates = (size_t)inferd_props_int(p, "maxCandidates");
    inferd_status st = est_model_open(self, p, &s->m, err);
    if (st != INFERD_OK) {
        free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

static double cents(double v)
{
    return round(v * 100) / 100;
}

static inferd_status text_value(const est_item *it, const pp_quad *q, double sx, double sy,
                                inferd_value *arr, inferd_error *err)
{
    inferd_value *o = inferd_value_object(), *pts = inferd_value_array();
    inferd_status st = o && pts ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 4 && st == INFERD_OK; k++) {
        double x, y;
        inferd_geometry_to_image(&it->geo, q->x[k] * sx, q->y[k] * sy, &x, &y);
        /* clamped into the area */
        x = fmin(fmax(x, (double)it->area.x), (double)(it->area.x + it->area.width));
        y = fmin(fmax(y, (double)it->area.y), (double)(it->area.y + it->area.height));
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
        inferd_value *p = inferd_value_object();
        if (!p || (st = est_set_double(p, "x", cents(x), err)) ||
            (st = est_set_double(p, "y", cents(y), err))) {
            inferd_value_free(p);
            st = st ? st : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        st = inferd_value_array_push(pts, p, err);
    }
    if (st == INFERD_OK) {
        st = inferd_value_object_set(o, "points", pts, err);
        pts = NULL; /* taken */
    }
    if (st == INFERD_OK && !(st = est_set_double(o, "score", q->score, err)) &&
        !(st = est_set_int(o, "x", (int64_t)floor(x0), err)) &&
        !(st = est_set_int(o, "y", (int64_t)floor(y0), err)) &&
        !(st = est_set_int(o, "width", (int64_t)ceil(x1) - (int64_t)floor(x0), err)))
        st = est_set_int(o, "height", (int64_t)ceil(y1) - (int64_t)floor(y0), err);
    inferd_value_free(pts);
    if (st != INFERD_OK) {
        inferd_value_free(o);
        return st;
    }
    return inferd_value_array_push(arr, o, err);
}

static inferd_status text_post(inferd_instance *self, const est_item *it, const est_output *out,
                               inferd_value **result, inferd_error *err)
{
    const texter *s = inferd_instance_state(self);
    if (out->ndim < 2 || out->ndim > 3 || (out->ndim == 3 && out->dims[0] != 1) ||
        out->dims[out->ndim - 2] < 1 || out->dims[out->ndim - 1] < 1)
        return inferd_error_set(err, INFERD_EPLUGIN,
                                "model %s: expected a probability map [N,1,h,w] per image",
                                s->m.path);
    size_t h = (size_t)out->dims[out->ndim - 2], w = (size_t)out->dims[out->ndim - 1];
    pp_quad *quads = NULL;
    size_t n = 0;
    inferd_status st = pp_text_boxes(out->v, h, w, s->bin, s->box, s->unclip, s->min_size,
                                     s->max_candidates, &quads, &n, err);
    /* The map may be smaller than the input row (a stride): its pixels in
     * the row's. */
    double sx = (double)it->geo.width / (double)w, sy = (double)it->geo.height / (double)h;
    inferd_value *res = inferd_value_object(), *arr = inferd_value_array();
    if (st == INFERD_OK && (!res || !arr))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && st == INFERD_OK; i++)
        st = text_value(it, &quads[i], sx, sy, arr, err);
    free(quads);
    if (st == INFERD_OK && !(st = est_set_int(res, "count", (int64_t)n, err))) {
        st = inferd_value_object_set(res, "texts", arr, err);
        arr = NULL; /* taken */
    }
    inferd_value_free(arr);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *result = res;
    return INFERD_OK;
}

inferd_status est_text_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                             inferd_error *err)
{
    const texter *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, text_post, err);
}
