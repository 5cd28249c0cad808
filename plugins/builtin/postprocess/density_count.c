/* density_count.c: the density_count element of the built-in "postprocess"
 * plugin. It reads a density map (a counting model's output, e.g.
 * dot_density's [N,1,ceil(H/4),ceil(W/4)] at stride 4) and attaches
 * metadata/points {"count", "sum", "points"}: the count is the map's sum,
 * rounded and never negative; the points (target T1) are the map's local
 * maxima above peakThreshold, at most `count` of them, the strongest, each
 * placed by the weighted centroid of its 3x3 neighbourhood and mapped back to
 * the original image through the buffer's metadata/transform entries. */
#include "postprocess.h"

#include <math.h>
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

/* Sums within this of the next integer count as it under "floor": a map that
 * sums to 3 in exact arithmetic may sum to 2.9999998 in float. */
#define FLOOR_TOLERANCE 1e-4
/* Larger sums are not counts (a wrong tensor): refused before rounding. */
#define MAX_SUM 1e15

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

/* ---- peaks ------------------------------------------------------------------ */

typedef struct peak {
    size_t idx;  /* the cell (row-major); ties in strength keep raster order */
    float score; /* the map's value there */
    double ci, cj; /* sub-cell position (row, column) */
} peak;

typedef struct peaks {
    peak *p;
    size_t n, cap;
    /* Plateau work space, allocated on the first plateau only. */
    uint8_t *seen;
    size_t *queue;
} peaks;

static bool peaks_add(peaks *ps, size_t idx, float score)
{
    if (ps->n == ps->cap) {
        size_t ncap = ps->cap ? 2 * ps->cap : 64;
        peak *np = realloc(ps->p, ncap * sizeof *np);
        if (!np)
            return false;
        ps->p = np;
        ps->cap = ncap;
    }
    ps->p[ps->n++] = (peak){.idx = idx, .score = score};
    return true;
}

/* A plateau: the 8-connected cells equal to m[start] (> threshold, none of
 * whose neighbours is greater: checked here for every cell of it). It counts
 * as one peak, at its cell nearest the plateau's mean position (ties: the
 * first in raster order), if nothing around it is higher. Marks it seen. */
static bool plateau(const float *m, size_t h, size_t w, size_t start, peaks *ps)
{
    size_t hw = h * w;
    if (!ps->seen) {
        ps->seen = calloc(hw, 1);
        ps->queue = malloc(hw * sizeof *ps->queue);
        if (!ps->seen || !ps->queue)
            return false;
    }
    float v = m[start];
    size_t head = 0, tail = 0;
    bool maximal = true;
    double si = 0, sj = 0;
    ps->queue[tail++] = start;
    ps->seen[start] = 1;
    while (head < tail) {
        size_t q = ps->queue[head++], i = q / w, j = q % w;
        si += (double)i;
        sj += (double)j;
        size_t i0 = i ? i - 1 : 0, i1 = i + 1 < h ? i + 1 : i;
        size_t j0 = j ? j - 1 : 0, j1 = j + 1 < w ? j + 1 : j;
        for (size_t ii = i0; ii <= i1; ii++)
            for (size_t jj = j0; jj <= j1; jj++) {
                size_t r = ii * w + jj;
                float u = m[r];
                if (u > v)
                    maximal = false;
                else if (u == v && !ps->seen[r]) {
                    ps->seen[r] = 1;
                    ps->queue[tail++] = r;
                }
            }
    }
    if (!maximal)
        return true;
    double mi = si / (double)tail, mj = sj / (double)tail;
    size_t best = start;
    double best_d = INFINITY;
    for (size_t k = 0; k < tail; k++) {
        size_t q = ps->queue[k];
        double di = (double)(q / w) - mi, dj = (double)(q % w) - mj, dd = di * di + dj * dj;
        if (dd < best_d || (dd == best_d && q < best)) {
            best_d = dd;
            best = q;
        }
    }
    return peaks_add(ps, best, v);
}

/* Local maxima over 3x3 neighbourhoods, strictly above threshold: a cell
 * greater than all its neighbours, or one plateau (equal neighbours) that
 * nothing around is higher than, counted once. */
static bool find_peaks(const float *m, size_t h, size_t w, double threshold, peaks *ps)
{
    for (size_t i = 0; i < h; i++) {
        size_t i0 = i ? i - 1 : 0, i1 = i + 1 < h ? i + 1 : i;
        for (size_t j = 0; j < w; j++) {
            size_t idx = i * w + j;
            float v = m[idx];
            if (!(v > threshold))
                continue;
            size_t j0 = j ? j - 1 : 0, j1 = j + 1 < w ? j + 1 : j;
            bool higher = false, equal = false;
            for (size_t ii = i0; ii <= i1 && !higher; ii++)
                for (size_t jj = j0; jj <= j1; jj++) {
                    float u = m[ii * w + jj];
                    if (u > v) {
                        higher = true;
                        break;
                    }
                    if (u == v && (ii != i || jj != j))
                        equal = true;
                }
            if (higher)
                continue;
            if (!equal) {
                if (!peaks_add(ps, idx, v))
                    return false;
            } else if (!(ps->seen && ps->seen[idx]) && !plateau(m, h, w, idx, ps)) {
                return false;
            }
        }
    }
    return true;
}

/* The weighted centroid of the 3x3 around the peak (negative values weigh 0;
 * the peak itself is > threshold >= 0, so the weights never sum to 0). */
static void centroid(const float *m, size_t h, size_t w, peak *p)
{
    size_t i = p->idx / w, j = p->idx % w;
    size_t i0 = i ? i - 1 : 0, i1 = i + 1 < h ? i + 1 : i;
    size_t j0 = j ? j - 1 : 0, j1 = j + 1 < w ? j + 1 : j;
    double sw = 0, si = 0, sj = 0;
    for (size_t ii = i0; ii <= i1; ii++)
        for (size_t jj = j0; jj <= j1; jj++) {
            double u = m[ii * w + jj];
            if (u > 0) {
                sw += u;
                si += u * (double)ii;
                sj += u * (double)jj;
            }
        }
    p->ci = sw > 0 ? si / sw : (double)i;
    p->cj = sw > 0 ? sj / sw : (double)j;
}

static int by_strength(const void *a, const void *b)
{
    const peak *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ---- process ----------------------------------------------------------------- */

static inferd_status points_value(const density *d, const float *m, size_t h, size_t w,
                                  int64_t count, const pp_chain *chain, inferd_value *out,
                                  inferd_error *err)
{
    peaks ps = {0};
    inferd_status st = INFERD_OK;
    inferd_value *arr = inferd_value_array();
    if (!arr || (count > 0 && !find_peaks(m, h, w, d->threshold, &ps))) {
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        goto done;
    }
    if (ps.n > 1)
        qsort(ps.p, ps.n, sizeof *ps.p, by_strength);
    size_t keep = ps.n < (uint64_t)count ? ps.n : (size_t)count;
    for (size_t k = 0; k < keep && st == INFERD_OK; k++) {
        peak *p = &ps.p[k];
        centroid(m, h, w, p);
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
    free(ps.p);
    free(ps.seen);
    free(ps.queue);
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
    for (size_t i = 0; i < h * w; i++)
        sum += m[i];
    if (!isfinite(sum)) { /* a NaN or an infinity somewhere: say where */
        size_t i = 0;
        while (i < h * w && isfinite(m[i]))
            i++;
        pp_floats_free(&f);
        return inferd_error_set(err, INFERD_EINVAL,
                                "tensor '%s': the density map holds %s at row %zu, column %zu",
                                pp_tensor_label(t), isnan(m[i]) ? "NaN" : "an infinity", i / w,
                                i % w);
    }
    if (sum > MAX_SUM) {
        pp_floats_free(&f);
        return inferd_error_set(err, INFERD_ERANGE,
                                "tensor '%s': the density map sums to %g, not a count",
                                pp_tensor_label(t), sum);
    }
    double rounded = d->floor_mode ? floor(sum + FLOOR_TOLERANCE) : round(sum);
    int64_t count = rounded > 0 ? (int64_t)rounded : 0;

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
