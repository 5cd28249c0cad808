/* density_count.c: the density_count element of the built-in "postprocess"
 * plugin. It reads a density map (a counting model's output, e.g.
 * dot_density's [N,1,ceil(H/4),ceil(W/4)] at stride 4) and attaches
 * metadata/points {"count", "sum", "points"}: the count is the map's sum,
 * rounded and never negative; the points (target T1) are the map's local
 * maxima above peakThreshold, at most `count` of them, the strongest, each
 * placed by the weighted centroid of its 3x3 neighbourhood and mapped back to
 * the original image through the buffer's metadata/transform entries. The
 * counting and the peaks are algorithms.c's (shared with the estimators). */
#include "algorithms.h"
#include "postprocess.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const targets[] = {"T1", "T2", NULL};
static const char *const roundings[] = {"nearest", "floor", NULL};

const inferd_prop_spec pp_density_props[] = {
    INFERD_PROP_STRING("tensorName", "the model output to read; \"\" = the first tensor", ""),
    INFERD_PROP_ENUM("target", "T1 = count and points, T2 = count only", "T1", targets),
    INFERD_PROP_DOUBLE("stride", "model input pixels per map cell (cell j covers "
                       "[stride*j, stride*(j+1)))", 4, 0.001, 4096),
    INFERD_PROP_DOUBLE("peakThreshold", "a peak's value must be strictly above this", 0.05, 0,
                       1e9),
    INFERD_PROP_ENUM("round", "how the sum becomes the count: nearest, or floor", "nearest",
                     roundings),
    INFERD_PROP_END,
};

typedef struct density {
    char *tensor_name;
    bool points;     /* T1 */
    bool floor_mode; /* round = floor */
    double stride, threshold;
} density;

inferd_status pp_density_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    density *d = calloc(1, sizeof *d);
    if (!d || !(d->tensor_name = pp_strdup(inferd_props_string(p, "tensorName")))) {
        free(d);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    d->points = strcmp(inferd_props_string(p, "target"), "T1") == 0;
    d->floor_mode = strcmp(inferd_props_string(p, "round"), "floor") == 0;
    d->stride = inferd_props_double(p, "stride");
    d->threshold = inferd_props_double(p, "peakThreshold");
    inferd_instance_set_state(self, d);
    return INFERD_OK;
}

void pp_density_deinit(inferd_instance *self)
{
    density *d = inferd_instance_state(self);
    if (d) {
        free(d->tensor_name);
        free(d);
    }
}

/* ---- process ----------------------------------------------------------------- */

static inferd_status points_value(const density *d, const float *m, size_t h, size_t w,
                                  int64_t count, const pp_chain *chain, inferd_value *out,
                                  inferd_error *err)
{
    pp_peak *peaks = NULL;
    size_t n = 0;
    inferd_status st = INFERD_OK;
    inferd_value *arr = inferd_value_array();
    if (!arr || !pp_density_peaks(m, h, w, d->threshold, (size_t)count, &peaks, &n)) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n && st == INFERD_OK; k++) {
        const pp_peak *p = &peaks[k];
        /* Continuous coordinates: cell j covers [stride*j, stride*(j+1)), so
         * its centre (pixel index stride*j + (stride-1)/2) is stride*(j+0.5). */
        double x = d->stride * (p->cj + 0.5), y = d->stride * (p->ci + 0.5);
        pp_chain_map(chain, &x, &y);
        inferd_value *pt = inferd_value_object();
        if (!pt) {
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        if ((st = pp_set_double(pt, "x", x, err)) || (st = pp_set_double(pt, "y", y, err)) ||
            (st = pp_set_double(pt, "score", p->score, err))) {
            inferd_value_free(pt);
            break;
        }
        st = inferd_value_array_push(arr, pt, err);
    }
done:
    free(peaks);
    if (st == INFERD_OK)
        return inferd_value_object_set(out, "points", arr, err);
    inferd_value_free(arr);
    return st;
}

inferd_status pp_density_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err)
{
    const density *d = inferd_instance_state(self);
    inferd_buffer *buf;
    const inferd_tensor *t;
    size_t h, w;
    inferd_status st;
    if ((st = pp_input_tensor(in, n, d->tensor_name, &buf, &t, err)) ||
        (st = pp_plane_shape(t, &h, &w, err)))
        return st;
    pp_floats f;
    if ((st = pp_floats_get(t, &f, err)))
        return st;
    const float *m = f.v;
    double sum = 0;
    int64_t count = 0;
    if ((st = pp_density_count(m, h, w, d->floor_mode, &sum, &count, err))) {
        pp_floats_free(&f);
        inferd_error_prefix(err, "tensor '%s'", pp_tensor_label(t));
        return st;
    }

    pp_chain chain = {0};
    inferd_value *meta = inferd_value_object();
    if (!meta)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (!st && !(st = pp_set_int(meta, "count", count, err)) &&
        !(st = pp_set_double(meta, "sum", sum, err)) && d->points &&
        !(st = pp_chain_load(buf, &chain, err)))
        st = points_value(d, m, h, w, count, &chain, meta, err);
    pp_chain_free(&chain);
    pp_floats_free(&f);
    if (st) {
        inferd_value_free(meta);
        return st;
    }
    return pp_attach_and_push(self, buf, "metadata/points", meta, err);
}
