/* algorithms.c: the post-processing algorithms on plain arrays (see
 * algorithms.h), shared by the built-in "postprocess" and "estimators"
 * plugins. */
#include "algorithms.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- density maps ------------------------------------------------------------- */

/* Sums within this of the next integer count as it under floor_mode. */
#define FLOOR_TOLERANCE 1e-4
/* Larger sums are not counts (a wrong tensor): refused before rounding. */
#define MAX_SUM 1e15

inferd_status pp_density_count(const float *m, size_t h, size_t w, bool floor_mode,
                               double *sum_out, int64_t *count, inferd_error *err)
{
    double sum = 0;
    for (size_t i = 0; i < h * w; i++)
        sum += m[i];
    if (!isfinite(sum)) { /* a NaN or an infinity somewhere: say where */
        size_t i = 0;
        while (i < h * w && isfinite(m[i]))
            i++;
        if (i == h * w) /* finite values whose sum overflows */
            return inferd_error_set(err, INFERD_ERANGE, "the density map's sum overflows");
        return inferd_error_set(err, INFERD_EINVAL,
                                "the density map holds %s at row %zu, column %zu",
                                isnan(m[i]) ? "NaN" : "an infinity", i / w, i % w);
    }
    if (sum > MAX_SUM)
        return inferd_error_set(err, INFERD_ERANGE, "the density map sums to %g, not a count",
                                sum);
    double rounded = floor_mode ? floor(sum + FLOOR_TOLERANCE) : round(sum);
    *sum_out = sum;
    *count = rounded > 0 ? (int64_t)rounded : 0;
    return INFERD_OK;
}

typedef struct peaks {
    pp_peak *p;
    size_t n, cap;
    /* Plateau work space, allocated on the first plateau only. */
    uint8_t *seen;
    size_t *queue;
} peaks;

static bool peaks_add(peaks *ps, size_t idx, float score)
{
    if (ps->n == ps->cap) {
        size_t ncap = ps->cap ? 2 * ps->cap : 64;
        pp_peak *np = realloc(ps->p, ncap * sizeof *np);
        if (!np)
            return false;
        ps->p = np;
        ps->cap = ncap;
    }
    ps->p[ps->n++] = (pp_peak){.idx = idx, .score = score};
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
static void centroid(const float *m, size_t h, size_t w, pp_peak *p)
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
    const pp_peak *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

bool pp_density_peaks(const float *m, size_t h, size_t w, double threshold, size_t keep,
                      pp_peak **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (keep == 0)
        return true;
    peaks ps = {0};
    bool ok = find_peaks(m, h, w, threshold, &ps);
    free(ps.seen);
    free(ps.queue);
    if (!ok) {
        free(ps.p);
        return false;
    }
    if (ps.n > 1)
        qsort(ps.p, ps.n, sizeof *ps.p, by_strength);
    if (ps.n > keep)
        ps.n = keep;
    for (size_t k = 0; k < ps.n; k++)
        centroid(m, h, w, &ps.p[k]);
    *out = ps.p;
    *n = ps.n;
    return true;
}

/* ---- classifier scores ----------------------------------------------------------- */

static int best_first(const void *a, const void *b)
{
    const pp_scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

bool pp_rank_scores(const float *scores, size_t k, bool softmax, pp_scored *s, size_t *bad)
{
    double max = -INFINITY;
    for (size_t i = 0; i < k; i++) {
        s[i] = (pp_scored){i, scores[i]};
        if (!isfinite(s[i].score)) {
            *bad = i;
            return false;
        }
        if (s[i].score > max)
            max = s[i].score;
    }
    if (softmax) { /* shifted by the max: exp never overflows */
        double total = 0;
        for (size_t i = 0; i < k; i++)
            total += (s[i].score = exp(s[i].score - max));
        for (size_t i = 0; i < k; i++)
            s[i].score /= total;
    }
    if (k > 1)
        qsort(s, k, sizeof *s, best_first);
    return true;
}

/* A labels file larger than this is not a labels file. */
#define MAX_LABELS_FILE (16u << 20)

inferd_status pp_labels_add(char ***labels, size_t *n, size_t *cap, const char *s, size_t len,
                            inferd_error *err)
{
    if (*n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        char **nl = realloc(*labels, ncap * sizeof *nl);
        if (!nl)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        *labels = nl;
        *cap = ncap;
    }
    char *l = malloc(len + 1);
    if (!l)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    memcpy(l, s, len);
    l[len] = '\0';
    (*labels)[(*n)++] = l;
    return INFERD_OK;
}

void pp_labels_free(char **labels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
}

inferd_status pp_labels_read(const char *key, const char *path, char ***labels_out,
                             size_t *n_out, inferd_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                "%s '%s': %s", key, path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap_text = 0;
    inferd_status st = INFERD_OK;
    for (;;) { /* read it whole, growing the buffer: also works on a pipe */
        if (len == cap_text) {
            size_t ncap = cap_text ? 2 * cap_text : 4096;
            if (ncap > MAX_LABELS_FILE + 1)
                ncap = MAX_LABELS_FILE + 1;
            char *nt = realloc(text, ncap);
            if (!nt) {
                st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
                break;
            }
            text = nt;
            cap_text = ncap;
        }
        size_t got = fread(text + len, 1, cap_text - len, fp);
        len += got;
        if (len > MAX_LABELS_FILE) {
            st = inferd_error_set(err, INFERD_ERANGE, "%s '%s' is larger than %u bytes", key,
                                  path, MAX_LABELS_FILE);
            break;
        }
        if (got == 0) {
            if (ferror(fp))
                st = inferd_error_set(err, INFERD_EIO, "%s '%s': read error", key, path);
            break;
        }
    }
    fclose(fp);
    char **labels = NULL;
    size_t n = 0, cap = 0, start = 0;
    while (st == INFERD_OK && start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len, stop = end;
        if (stop > start && text[stop - 1] == '\r')
            stop--;
        st = pp_labels_add(&labels, &n, &cap, text + start, stop - start, err);
        start = end + 1;
    }
    free(text);
    while (st == INFERD_OK && n > 0 && labels[n - 1][0] == '\0')
        free(labels[--n]);
    if (st == INFERD_OK && n == 0)
        st = inferd_error_set(err, INFERD_EINVAL, "%s '%s' holds no label", key, path);
    if (st != INFERD_OK) {
        pp_labels_free(labels, n);
        return st;
    }
    *labels_out = labels;
    *n_out = n;
    return INFERD_OK;
}

/* ---- segmentation masks ------------------------------------------------------------ */

float pp_mask_threshold(double t)
{
    float f = (float)t;
    if ((double)f > t)
        f = nextafterf(f, -INFINITY);
    return f;
}

/* Restrict pointers and blocks of a fixed 16 so that GCC's -O2 (the "very
 * cheap" cost model, which wants no scalar remainder) vectorises the inner
 * loop. */
void pp_threshold_plane(const float *restrict v, uint8_t *restrict state, size_t n, float t)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++)
            state[i + k] = v[i + k] > t ? PP_FG : PP_BG;
    for (; i < n; i++)
        state[i] = v[i] > t ? PP_FG : PP_BG;
}

double pp_component_score(const pp_component *c) { return c->sum / (double)c->area; }

static int largest_first(const void *a, const void *b)
{
    const pp_component *x = a, *y = b;
    if (x->area != y->area)
        return x->area > y->area ? -1 : 1;
    double sx = pp_component_score(x), sy = pp_component_score(y);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

bool pp_label_components(const float *m, uint8_t *state, size_t h, size_t w, bool eight,
                         int64_t min_area, pp_component **out_c, size_t *out_n)
{
    static const int d4[4][2] = {{-1, 0}, {0, -1}, {0, 1}, {1, 0}};
    static const int d8[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1},
                                 {0, 1},   {1, -1}, {1, 0},  {1, 1}};
    const int(*dirs)[2] = eight ? d8 : d4;
    int ndirs = eight ? 8 : 4;
    *out_c = NULL;
    *out_n = 0;
    size_t hw = h * w;
    size_t *queue = malloc((hw ? hw : 1) * sizeof *queue);
    if (!queue)
        return false;
    pp_component *cs = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (size_t start = 0; start < hw && ok; start++) {
        /* The next unlabelled foreground pixel (memchr: a vectorised scan). */
        const uint8_t *next = memchr(state + start, PP_FG, hw - start);
        if (!next)
            break;
        start = (size_t)(next - state);
        pp_component c = {.first = start, .x0 = SIZE_MAX, .y0 = SIZE_MAX};
        size_t head = 0, tail = 0;
        queue[tail++] = start;
        state[start] = PP_DONE;
        while (head < tail) {
            size_t q = queue[head++], y = q / w, x = q % w;
            c.area++;
            c.sum += m[q];
            if (x < c.x0) c.x0 = x;
            if (x > c.x1) c.x1 = x;
            if (y < c.y0) c.y0 = y;
            if (y > c.y1) c.y1 = y;
            for (int k = 0; k < ndirs; k++) {
                /* Unsigned wrap-around makes -1 huge: one bound check each. */
                size_t yy = y + (size_t)(ptrdiff_t)dirs[k][0];
                size_t xx = x + (size_t)(ptrdiff_t)dirs[k][1];
                if (yy >= h || xx >= w)
                    continue;
                size_t r = yy * w + xx;
                if (state[r] == PP_FG) {
                    state[r] = PP_DONE;
                    queue[tail++] = r;
                }
            }
        }
        if ((int64_t)c.area < min_area)
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            pp_component *nc = realloc(cs, ncap * sizeof *nc);
            if (!nc) {
                ok = false;
                break;
            }
            cs = nc;
            cap = ncap;
        }
        cs[n++] = c;
    }
    free(queue);
    if (!ok) {
        free(cs);
        return false;
    }
    if (n > 1)
        qsort(cs, n, sizeof *cs, largest_first);
    *out_c = cs;
    *out_n = n;
    return true;
}

inferd_status pp_mask_image(const uint8_t *state, size_t h, size_t w, inferd_image **out,
                            inferd_error *err)
{
    if (h > INFERD_IMAGE_MAX_DIM || w > INFERD_IMAGE_MAX_DIM)
        return inferd_error_set(err, INFERD_ERANGE,
                                "a %zux%zu mask is larger than an image may be (%u per side)", w,
                                h, INFERD_IMAGE_MAX_DIM);
    inferd_image *img = NULL;
    inferd_status st = inferd_image_new(INFERD_PIXEL_GRAY8, (uint32_t)w, (uint32_t)h, &img, err);
    if (st != INFERD_OK)
        return st;
    for (size_t y = 0; y < h; y++)
        memcpy(img->data + y * img->stride, state + y * w, w);
    *out = img;
    return INFERD_OK;
}
