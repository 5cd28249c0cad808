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

/* A corner from the map's pixels to the image's: into the input row's (the
 * map may be at a stride), back through the contract, clamped into the area. */
typedef struct to_image {
    const est_item *it;
    double sx, sy;
} to_image;

static void map_corner(void *ctx, double *x, double *y)
{
    const to_image *m = ctx;
    const inferd_rect *a = &m->it->area;
    inferd_geometry_to_image(&m->it->geo, *x * m->sx, *y * m->sy, x, y);
    *x = fmin(fmax(*x, (double)a->x), (double)(a->x + a->width));
    *y = fmin(fmax(*y, (double)a->y), (double)(a->y + a->height));
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
    to_image m = {it, (double)it->geo.width / (double)w, (double)it->geo.height / (double)h};
    inferd_value *arr = inferd_value_array();
    if (st == INFERD_OK && !arr)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && st == INFERD_OK; i++) {
        inferd_value *o = NULL;
        if ((st = pp_quad_value(&quads[i], map_corner, &m, &o, err)) == INFERD_OK)
            st = inferd_value_array_push(arr, o, err);
    }
    free(quads);
    if (st != INFERD_OK) {
        inferd_value_free(arr);
        return st;
    }
    return est_counted((int64_t)n, "texts", arr, result, err);
}

inferd_status est_text_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                             inferd_error *err)
{
    const texter *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, text_post, err);
}
