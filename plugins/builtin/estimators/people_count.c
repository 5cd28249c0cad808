/* people_count.c: peopleCountEstimator, the built-in estimator that counts
 * (the seed's people counter; here the dot_density model's bright dots).
 *
 * The model gives a density map at stride `stride` whose sum is the count.
 * Result per image: target T1 {"count": N, "points": [{"x", "y"}...]}, T2
 * {"count": N}. The count is the sum rounded, never negative; the points are
 * the map's peaks (the postprocess plugin's peak finder: local maxima above
 * peakThreshold, the strongest `count` of them, each at the centroid of its
 * 3x3), strongest first, as pixel indices in the whole image: mapped back
 * through the input contract's resize and the detect area.
 */
#include "algorithms.h"
#include "estimators.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const targets[] = {"T1", "T2", NULL};

const inferd_prop_spec est_people_options[] = {
    INFERD_PROP_ENUM("targets", "T1: the count and the points, T2: the count only", "T1",
                     targets),
    INFERD_PROP_END,
};

const inferd_prop_spec est_people_props[] = {
    EST_PROP_MODEL("dot_density.onnx"),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_DOUBLE("stride", "image pixels per density map cell (cell j covers pixels "
                       "[stride*j, stride*(j+1)))", 4, 0.001, 4096),
    INFERD_PROP_DOUBLE("peakThreshold", "a point's density map value must be above this", 0.05,
                       0, 1e9),
    INFERD_PROP_END,
};

typedef struct people {
    est_model m; /* first: est_deinit frees it */
    double stride, threshold;
} people;

inferd_status est_people_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    people *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->stride = inferd_props_double(p, "stride");
    s->threshold = inferd_props_double(p, "peakThreshold");
    inferd_status st = est_model_open(self, p, &s->m, err);
    if (st != INFERD_OK) {
        free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

static inferd_status points_value(const people *s, const est_item *it, const float *map,
                                  size_t h, size_t w, int64_t count, inferd_value *res,
                                  inferd_error *err)
{
    pp_peak *peaks = NULL;
    size_t n = 0;
    inferd_value *arr = inferd_value_array();
    inferd_status st = arr && pp_density_peaks(map, h, w, s->threshold, (size_t)count, &peaks, &n)
                           ? INFERD_OK
                           : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t k = 0; k < n && st == INFERD_OK; k++) {
        /* Cell j covers [stride*j, stride*(j+1)) of the input row: its centre
         * is stride*(j+0.5), mapped back through the contract's resize. */
        int64_t x, y;
        est_map_point(it, s->stride * (peaks[k].cj + 0.5), s->stride * (peaks[k].ci + 0.5), &x,
                      &y);
        inferd_value *pt = inferd_value_object();
        if (!pt || (st = est_set_int(pt, "x", x, err)) || (st = est_set_int(pt, "y", y, err))) {
            inferd_value_free(pt);
            st = st ? st : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        st = inferd_value_array_push(arr, pt, err);
    }
    free(peaks);
    if (st != INFERD_OK) {
        inferd_value_free(arr);
        return st;
    }
    return inferd_value_object_set(res, "points", arr, err);
}

static inferd_status people_post(inferd_instance *self, const est_item *it,
                                 const est_output *out, inferd_value **result, inferd_error *err)
{
    const people *s = inferd_instance_state(self);
    /* [1,h,w] (or [h,w]): one map per image. */
    if (out->ndim < 2 || (out->ndim == 3 && out->dims[0] != 1) || out->ndim > 3)
        return inferd_error_set(err, INFERD_EPLUGIN,
                                "model %s: expected a density map [N,1,h,w] per image", s->m.path);
    size_t h = (size_t)out->dims[out->ndim - 2], w = (size_t)out->dims[out->ndim - 1];
    double sum;
    int64_t count;
    inferd_status st = pp_density_count(out->v, h, w, false, &sum, &count, err);
    if (st != INFERD_OK)
        return est_model_fault(&s->m, st, err);
    inferd_value *res = inferd_value_object();
    if (!res)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    st = est_set_int(res, "count", count, err);
    if (st == INFERD_OK && strcmp(inferd_props_string(it->options, "targets"), "T1") == 0)
        st = points_value(s, it, out->v, h, w, count, res, err);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *result = res;
    return INFERD_OK;
}

inferd_status est_people_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err)
{
    const people *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, people_post, err);
}
