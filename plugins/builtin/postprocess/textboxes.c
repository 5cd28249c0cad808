/* textboxes.c: DB text detection post-processing (algorithms.h): the
 * probability map thresholded, each 8-connected region's minimum-area
 * rectangle (its shrunk kernel), scored, expanded back by DB's unclip, and
 * the boxes put in reading order. Plain arrays; nothing kept between calls.
 *
 * Geometry is continuous: pixel (x, y) covers [x, x+1) x [y, y+1), so a
 * region's hull is built from its pixels' corners (each row's leftmost and
 * rightmost pixel give four). The minimum-area rectangle is found over the
 * hull's edge directions (the optimum has a side on one of them). Unclip of
 * a rectangle by DB's distance d = area * ratio / perimeter is the same
 * rectangle grown by d on every side (the minimum-area rectangle of the
 * rounded offset polygon DB computes with Clipper).
 */
#include "algorithms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pt {
    double x, y;
} pt;

static double cross(pt o, pt a, pt b)
{
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

static int by_xy(const void *pa, const void *pb)
{
    const pt *a = pa, *b = pb;
    return a->x < b->x ? -1 : a->x > b->x ? 1 : a->y < b->y ? -1 : a->y > b->y;
}

/* Andrew's monotone chain: the hull of p[n] into h (room for n + 1), counter
 * clockwise in a y-up frame; returns its size. p is sorted in place. */
static size_t hull(pt *p, size_t n, pt *h)
{
    qsort(p, n, sizeof *p, by_xy);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        while (k >= 2 && cross(h[k - 2], h[k - 1], p[i]) <= 0)
            k--;
        h[k++] = p[i];
    }
    for (size_t i = n - 1, lo = k + 1; i-- > 0;) {
        while (k >= lo && cross(h[k - 2], h[k - 1], p[i]) <= 0)
            k--;
        h[k++] = p[i];
    }
    return k > 1 ? k - 1 : k;
}

/* The minimum-area rectangle of a hull: centre, unit axis u (the other is
 * its normal), half extents along u and the normal. */
typedef struct rect {
    pt c, u;
    double hu, hv;
} rect;

static rect min_rect(const pt *h, size_t n)
{
    rect best = {{h[0].x, h[0].y}, {1, 0}, 0, 0};
    double best_area = INFINITY;
    for (size_t i = 0; i < n; i++) {
        pt a = h[i], b = h[(i + 1) % n];
        double len = hypot(b.x - a.x, b.y - a.y);
        if (len == 0)
            continue;
        pt u = {(b.x - a.x) / len, (b.y - a.y) / len};
        double umin = INFINITY, umax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
        for (size_t k = 0; k < n; k++) {
            double pu = h[k].x * u.x + h[k].y * u.y, pv = -h[k].x * u.y + h[k].y * u.x;
            umin = fmin(umin, pu), umax = fmax(umax, pu);
            vmin = fmin(vmin, pv), vmax = fmax(vmax, pv);
        }
        double area = (umax - umin) * (vmax - vmin);
        if (area < best_area) {
            double cu = (umin + umax) / 2, cv = (vmin + vmax) / 2;
            best_area = area;
            best = (rect){{cu * u.x - cv * u.y, cu * u.y + cv * u.x}, u, (umax - umin) / 2,
                          (vmax - vmin) / 2};
        }
    }
    return best;
}

static void corners(const rect *r, pt *c)
{
    pt v = {-r->u.y, r->u.x};
    const double su[4] = {-1, 1, 1, -1}, sv[4] = {-1, -1, 1, 1};
    for (int k = 0; k < 4; k++)
        c[k] = (pt){r->c.x + su[k] * r->hu * r->u.x + sv[k] * r->hv * v.x,
                    r->c.y + su[k] * r->hu * r->u.y + sv[k] * r->hv * v.y};
}

/* The mean of map over the pixels whose centres are inside r. */
static double rect_score(const float *map, size_t h, size_t w, const rect *r)
{
    pt c[4];
    corners(r, c);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 4; k++)
        x0 = fmin(x0, c[k].x), x1 = fmax(x1, c[k].x), y0 = fmin(y0, c[k].y), y1 = fmax(y1, c[k].y);
    size_t ya = y0 < 0 ? 0 : (size_t)y0, yb = y1 >= (double)h ? h : (size_t)ceil(y1);
    size_t xa = x0 < 0 ? 0 : (size_t)x0, xb = x1 >= (double)w ? w : (size_t)ceil(x1);
    double sum = 0;
    size_t n = 0;
    for (size_t y = ya; y < yb; y++)
        for (size_t x = xa; x < xb; x++) {
            double dx = x + 0.5 - r->c.x, dy = y + 0.5 - r->c.y;
            double pu = dx * r->u.x + dy * r->u.y, pv = -dx * r->u.y + dy * r->u.x;
            if (fabs(pu) <= r->hu && fabs(pv) <= r->hv) {
                sum += map[y * w + x];
                n++;
            }
        }
    return n ? sum / (double)n : 0;
}

/* Corners from the one nearest the top-left (least x + y), clockwise on
 * screen (y down): top-left, top-right, bottom-right, bottom-left. */
static void order_quad(const pt *c, pp_quad *q)
{
    pt m = {(c[0].x + c[1].x + c[2].x + c[3].x) / 4, (c[0].y + c[1].y + c[2].y + c[3].y) / 4};
    pt s[4];
    memcpy(s, c, sizeof s);
    /* by angle around the centre, increasing on screen = clockwise */
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && atan2(s[j].y - m.y, s[j].x - m.x) <
                                     atan2(s[j - 1].y - m.y, s[j - 1].x - m.x);
             j--) {
            pt t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    int first = 0;
    for (int k = 1; k < 4; k++)
        if (s[k].x + s[k].y < s[first].x + s[first].y)
            first = k;
    for (int k = 0; k < 4; k++) {
        q->x[k] = s[(first + k) % 4].x;
        q->y[k] = s[(first + k) % 4].y;
    }
}

static double quad_top(const pp_quad *q)
{
    return fmin(fmin(q->y[0], q->y[1]), fmin(q->y[2], q->y[3]));
}

static double quad_left(const pp_quad *q)
{
    return fmin(fmin(q->x[0], q->x[1]), fmin(q->x[2], q->x[3]));
}

static int by_top(const void *pa, const void *pb)
{
    double a = quad_top(pa), b = quad_top(pb);
    return a < b ? -1 : a > b;
}

inferd_status pp_text_boxes(const float *map, size_t h, size_t w, double bin_threshold,
                            double box_threshold, double unclip_ratio, double min_size,
                            size_t max_candidates, pp_quad **out, size_t *count,
                            inferd_error *err)
{
    *out = NULL;
    *count = 0;
    const size_t cells = h * w > 0 ? h * w : 1;
    uint8_t *state = malloc(cells);
    size_t *queue = malloc(cells * sizeof *queue);
    size_t *row_min = malloc((h ? h : 1) * sizeof *row_min),
           *row_max = malloc((h ? h : 1) * sizeof *row_max);
    pt *pts = malloc((4 * h + 1) * sizeof *pts), *hl = malloc((4 * h + 2) * sizeof *hl);
    pp_quad *quads = NULL;
    size_t n = 0, cap = 0, candidates = 0;
    bool ok = state && queue && row_min && row_max && pts && hl;
    if (ok)
        pp_threshold_plane(map, state, h * w, pp_mask_threshold(bin_threshold));
    for (size_t start = 0; ok && start < h * w && candidates < max_candidates; start++) {
        if (state[start] != PP_FG)
            continue;
        candidates++;
        /* The region's pixels, breadth first (8-connected), each row's extent. */
        size_t head = 0, tail = 0, ytop = start / w, ybot = ytop;
        state[start] = PP_DONE;
        queue[tail++] = start;
        row_min[ytop] = row_max[ytop] = start % w;
        while (head < tail) {
            size_t i = queue[head++], y = i / w, x = i % w;
            if (y < ytop) /* never: raster order finds the top row first */
                ytop = y;
            if (y > ybot) {
                for (size_t r = ybot + 1; r <= y; r++)
                    row_min[r] = SIZE_MAX, row_max[r] = 0;
                ybot = y;
            }
            if (x < row_min[y])
                row_min[y] = x;
            if (x > row_max[y])
                row_max[y] = x;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    if ((!dx && !dy) || (y == 0 && dy < 0) || (y + 1 == h && dy > 0) ||
                        (x == 0 && dx < 0) || (x + 1 == w && dx > 0))
                        continue;
                    size_t j = (size_t)((long)i + dy * (long)w + dx);
                    if (state[j] == PP_FG) {
                        state[j] = PP_DONE;
                        queue[tail++] = j;
                    }
                }
        }
        size_t np = 0;
        for (size_t y = ytop; y <= ybot; y++) {
            if (row_min[y] == SIZE_MAX)
                continue;
            double l = (double)row_min[y], r = (double)row_max[y] + 1;
            pts[np++] = (pt){l, (double)y};
            pts[np++] = (pt){l, (double)y + 1};
            pts[np++] = (pt){r, (double)y};
            pts[np++] = (pt){r, (double)y + 1};
        }
        rect rc = min_rect(hl, hull(pts, np, hl));
        if (2 * fmin(rc.hu, rc.hv) < min_size)
            continue;
        double score = rect_score(map, h, w, &rc);
        if (score < box_threshold)
            continue;
        double area = 4 * rc.hu * rc.hv, perimeter = 4 * (rc.hu + rc.hv);
        double d = perimeter > 0 ? area * unclip_ratio / perimeter : 0;
        rc.hu += d;
        rc.hv += d;
        if (2 * fmin(rc.hu, rc.hv) < min_size + 2)
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            pp_quad *g = realloc(quads, nc * sizeof *g);
            if (!(ok = g != NULL))
                break;
            quads = g;
            cap = nc;
        }
        pt c[4];
        corners(&rc, c);
        order_quad(c, &quads[n]);
        quads[n++].score = score;
    }
    free(state);
    free(queue);
    free(row_min);
    free(row_max);
    free(pts);
    free(hl);
    if (!ok) {
        free(quads);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    /* Reading order: by top; boxes whose tops are within 10 px (a line)
     * left to right (as PaddleOCR sorts). */
    if (n > 1)
        qsort(quads, n, sizeof *quads, by_top);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && fabs(quad_top(&quads[j]) - quad_top(&quads[j - 1])) < 10 &&
                           quad_left(&quads[j]) < quad_left(&quads[j - 1]);
             j--) {
            pp_quad t = quads[j];
            quads[j] = quads[j - 1];
            quads[j - 1] = t;
        }
    *out = quads;
    *count = n;
    return INFERD_OK;
}

inferd_status pp_quad_value(const pp_quad *q, void (*map)(void *ctx, double *x, double *y),
                            void *ctx, inferd_value **out, inferd_error *err)
{
    inferd_value *o = inferd_value_object(), *pts = inferd_value_array();
    inferd_status st = o && pts ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 4 && st == INFERD_OK; k++) {
        double x = q->x[k], y = q->y[k];
        map(ctx, &x, &y);
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
        inferd_value *corner = inferd_value_object();
        if (!corner ||
            (st = inferd_value_object_set(corner, "x", inferd_value_double(round(x * 100) / 100),
                                          err)) ||
            (st = inferd_value_object_set(corner, "y", inferd_value_double(round(y * 100) / 100),
                                          err))) {
            inferd_value_free(corner);
            st = st ? st : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        st = inferd_value_array_push(pts, corner, err);
    }
    const int64_t bx = (int64_t)floor(x0), by = (int64_t)floor(y0);
    if (st == INFERD_OK && !(st = inferd_value_object_set(o, "points", pts, err))) {
        pts = NULL; /* taken */
        if (!(st = inferd_value_object_set(o, "x", inferd_value_int(bx), err)) &&
            !(st = inferd_value_object_set(o, "y", inferd_value_int(by), err)) &&
            !(st = inferd_value_object_set(o, "width", inferd_value_int((int64_t)ceil(x1) - bx),
                                           err)) &&
            !(st = inferd_value_object_set(o, "height", inferd_value_int((int64_t)ceil(y1) - by),
                                           err)))
            st = inferd_value_object_set(o, "score", inferd_value_double(q->score), err);
    }
    inferd_value_free(pts);
    if (st != INFERD_OK) {
        inferd_value_free(o);
        return st;
    }
    *out = o;
    return INFERD_OK;
}
