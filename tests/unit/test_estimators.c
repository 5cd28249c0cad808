/* test_estimators.c: the built-in estimators (plugins/builtin/estimators)
 * and the example replacement plugin people_count_onnx, driven through the
 * host's estimator runtime (src/estimators: inferd_estimators_submit, its
 * batcher and workers) the way the HTTP service drives them, on images drawn
 * here: white dots on black to count (the dot_density model's working range:
 * radius 3-5, >= 24 px apart, 16 px from the border), solid colours to label,
 * dark lines on light grey for defects. Checks exact counts, points near the
 * drawn dots, T1/T2, detect areas (counting only inside, results in the whole
 * image's coordinates), labels and topK, defect boxes, the mask PNG, batches
 * of mixed sizes in one submit, refused options and areas, bad component
 * settings and models that do not fit, and the replacement taking over
 * peopleCountEstimator with the same counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/registry.h"

/* ---- images ---------------------------------------------------------------------- */

typedef struct dot {
    double x, y, r; /* pixel (column x, row y) has its centre at (x, y) */
} dot;

static uint8_t *px(inferd_image *img, uint32_t x, uint32_t y)
{
    return img->data + (size_t)y * img->stride + (size_t)x * 3;
}

static inferd_image *solid(uint32_t w, uint32_t h, uint8_t r, uint8_t g, uint8_t b)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, w, h, &img, NULL), INFERD_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = px(img, x, y);
            p[0] = r;
            p[1] = g;
            p[2] = b;
        }
    return img;
}

/* White anti-aliased discs (4x4 samples a pixel) on a near-black background. */
static inferd_image *dots_image(uint32_t w, uint32_t h, const dot *d, size_t n)
{
    inferd_image *img = solid(w, h, 20, 20, 20);
    for (size_t k = 0; k < n; k++) {
        int x0 = (int)floor(d[k].x - d[k].r - 1), x1 = (int)ceil(d[k].x + d[k].r + 1);
        int y0 = (int)floor(d[k].y - d[k].r - 1), y1 = (int)ceil(d[k].y + d[k].r + 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                if (x < 0 || y < 0 || x >= (int)w || y >= (int)h)
                    continue;
                int in = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++) {
                        double dx = x + (sx + 0.5) / 4 - 0.5 - d[k].x;
                        double dy = y + (sy + 0.5) / 4 - 0.5 - d[k].y;
                        in += dx * dx + dy * dy <= d[k].r * d[k].r;
                    }
                uint8_t *p = px(img, (uint32_t)x, (uint32_t)y);
                uint8_t v = (uint8_t)lround(20 + (255 - 20) * in / 16.0);
                p[0] = p[1] = p[2] = v;
            }
    }
    return img;
}

/* Deterministic dart throwing: n centres >= 26 px apart and 16 px from the
 * border, radii 3..5. */
static void place_dots(uint32_t w, uint32_t h, size_t n, uint32_t seed, dot *out)
{
    uint64_t s = seed * 2654435761u + 1;
    size_t placed = 0;
    for (int tries = 0; placed < n; tries++) {
        assert_true(tries < 100000);
        s = s * 6364136223846793005u + 1442695040888963407u;
        double u = (double)(s >> 11) / 9007199254740992.0;
        s = s * 6364136223846793005u + 1442695040888963407u;
        double v = (double)(s >> 11) / 9007199254740992.0;
        dot c = {16 + u * (w - 33), 16 + v * (h - 33), 3 + (double)(tries % 5) * 0.5};
        bool ok = true;
        for (size_t k = 0; k < placed && ok; k++)
            ok = hypot(out[k].x - c.x, out[k].y - c.y) >= 26;
        if (ok)
            out[placed++] = c;
    }
}

/* A dark line (value 64 on 204), `width` px thick, from (x0,y0) to (x1,y1). */
static void draw_line(inferd_image *img, double x0, double y0, double x1, double y1, int width)
{
    double len = hypot(x1 - x0, y1 - y0);
    for (double t = 0; t <= len; t += 0.25) {
        int cx = (int)lround(x0 + (x1 - x0) * t / len), cy = (int)lround(y0 + (y1 - y0) * t / len);
        for (int dy = 0; dy < width; dy++)
            for (int dx = 0; dx < width; dx++) {
                uint8_t *p = px(img, (uint32_t)(cx + dx), (uint32_t)(cy + dy));
                p[0] = p[1] = p[2] = 64;
            }
    }
}

/* ---- the runtime -------------------------------------------------------------------- */

#define MAX_ITEMS 16

typedef struct collector {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t left;
    int calls[MAX_ITEMS];
    inferd_value *result[MAX_ITEMS]; /* owned */
    inferd_error err[MAX_ITEMS];
} collector;

static void on_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                    const inferd_estimate_timing *t)
{
    collector *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (index < MAX_ITEMS) {
        c->calls[index]++;
        inferd_value_free(c->result[index]);
        c->result[index] = result;
        if (err)
            c->err[index] = *err;
    } else {
        inferd_value_free(result);
    }
    c->left--;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void collector_free(collector *c)
{
    for (size_t i = 0; i < MAX_ITEMS; i++)
        inferd_value_free(c->result[i]);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

typedef struct item {
    inferd_image *image; /* taken by submit */
    bool has_area;
    inferd_rect area;
} item;

/* Submits n items with options (JSON or NULL) and waits for every callback:
 * each item is completed exactly once. */
static collector *run(inferd_estimators *est, const char *name, item *items, size_t n,
                      const char *options)
{
    assert_true(n <= MAX_ITEMS);
    long i = inferd_estimators_find(est, name);
    if (i < 0)
        fail_msg("no estimator %s", name);
    inferd_estimate_input in[MAX_ITEMS];
    for (size_t k = 0; k < n; k++)
        in[k] = (inferd_estimate_input){items[k].image, items[k].has_area, items[k].area};
    inferd_value *opts = NULL;
    if (options)
        assert_int_equal(inferd_value_from_json(options, strlen(options), 0, &opts, NULL),
                         INFERD_OK);
    collector *c = calloc(1, sizeof *c);
    assert_non_null(c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->left = n;
    inferd_error err = {0};
    inferd_status st = inferd_estimators_submit(est, (size_t)i, in, n, opts, on_done, c, &err);
    inferd_value_free(opts);
    if (st != INFERD_OK)
        fail_msg("submit %s: %s", name, err.message);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    pthread_mutex_lock(&c->lock);
    while (c->left > 0)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) != 0)
            break;
    size_t left = c->left;
    pthread_mutex_unlock(&c->lock);
    if (left)
        fail_msg("%s: %zu of %zu items not completed within 60 s", name, left, n);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(c->calls[k], 1);
    return c;
}

/* The result of item k, which must have succeeded. */
static const inferd_value *ok(const collector *c, size_t k)
{
    if (!c->result[k])
        fail_msg("item %zu failed: %s", k, c->err[k].message);
    return c->result[k];
}

/* Submitting is refused with code, the message holding needle; the images
 * stay the caller's. */
static void refused(inferd_estimators *est, const char *name, item *it, const char *options,
                    inferd_status code, const char *needle)
{
    long i = inferd_estimators_find(est, name);
    assert_true(i >= 0);
    inferd_estimate_input in = {it->image, it->has_area, it->area};
    inferd_value *opts = NULL;
    if (options)
        assert_int_equal(inferd_value_from_json(options, strlen(options), 0, &opts, NULL),
                         INFERD_OK);
    inferd_error err = {0};
    inferd_status st = inferd_estimators_submit(est, (size_t)i, &in, 1, opts, on_done, NULL, &err);
    inferd_value_free(opts);
    if (st != code)
        fail_msg("%s %s: got %s: %s", name, options ? options : "", inferd_status_name(st),
                 err.message);
    assert_contains(err.message, needle);
    assert_ptr_equal(in.image, it->image); /* not taken */
}

static inferd_config *config(const char *estimators_json)
{
    char *const no_env[] = {NULL};
    inferd_config *cfg = NULL;
    inferd_error err = {0};
    if (inferd_config_load(NULL, no_env, &cfg, &err) != INFERD_OK)
        fail_msg("config: %s", err.message);
    if (estimators_json &&
        inferd_config_set(cfg, "estimators", estimators_json, "test", &err) != INFERD_OK)
        fail_msg("config estimators: %s", err.message);
    return cfg;
}

/* The runtime over reg with estimators_json settings; NULL and *err on failure. */
static inferd_estimators *estimators(inferd_registry *reg, const char *estimators_json,
                                     inferd_error *err)
{
    inferd_config *cfg = config(estimators_json);
    inferd_estimators *est = NULL;
    inferd_status st = inferd_estimators_new(reg, cfg, &est, err);
    inferd_config_free(cfg);
    return st == INFERD_OK ? est : NULL;
}

typedef struct fixture {
    inferd_registry *reg;
    inferd_estimators *est;
} fixture;

/* The built-ins, batching up to 8 images waiting up to 20 ms. */
static int builtins_up(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    inferd_error err = {0};
    if (!f || !(f->reg = support_builtins()))
        return -1;
    f->est = estimators(f->reg,
                        "{\"peopleCountEstimator\": {\"maxBatch\": 8, \"maxDelayUs\": 20000}, "
                        "\"imageLabelEstimator\": {\"maxBatch\": 8}, "
                        "\"defectEstimator\": {\"maxBatch\": 8}}", &err);
    if (!f->est) {
        fprintf(stderr, "estimators: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int builtins_down(void **state)
{
    fixture *f = *state;
    inferd_estimators_free(f->est);
    inferd_registry_free(f->reg);
    free(f);
    return 0;
}

/* ---- result checks ------------------------------------------------------------------- */

static int64_t int_at(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!v || !inferd_value_is(v, INFERD_VALUE_INT))
        fail_msg("'%s' is missing or not an int", key);
    return inferd_value_int_or(v, 0);
}

static double num_at(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!v || !(inferd_value_is(v, INFERD_VALUE_DOUBLE) || inferd_value_is(v, INFERD_VALUE_INT)))
        fail_msg("'%s' is missing or not a number", key);
    return inferd_value_double_or(v, 0);
}

/* Every point lies within tol px of a distinct dot (offset by ox, oy), and
 * there are exactly as many points as dots. */
static void assert_points_on_dots(const inferd_value *res, const dot *d, size_t n, double ox,
                                  double oy, double tol)
{
    const inferd_value *pts = inferd_value_object_get(res, "points");
    assert_non_null(pts);
    assert_int_equal(inferd_value_array_len(pts), n);
    bool used[64] = {false};
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        const inferd_value *p = inferd_value_array_get(pts, i);
        double x = (double)int_at(p, "x"), y = (double)int_at(p, "y");
        size_t best = n;
        double best_d = INFINITY;
        for (size_t k = 0; k < n; k++) {
            double dd = hypot(d[k].x + ox - x, d[k].y + oy - y);
            if (!used[k] && dd < best_d) {
                best_d = dd;
                best = k;
            }
        }
        if (best == n || best_d > tol)
            fail_msg("point %zu (%g, %g) is %.1f px from the nearest free dot (want <= %g)", i,
                     x, y, best_d, tol);
        used[best] = true;
    }
}

/* ---- peopleCountEstimator ------------------------------------------------------------- */

static void people_counts_and_points(void **state)
{
    fixture *f = *state;
    static const struct { uint32_t w, h; size_t n; } cases[] = {
        {64, 64, 0}, {64, 64, 1}, {97, 83, 1}, {160, 120, 5}, {333, 257, 12}, {256, 192, 20}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dot d[32];
        place_dots(cases[c].w, cases[c].h, cases[c].n, (uint32_t)c + 1, d);
        item it = {.image = dots_image(cases[c].w, cases[c].h, d, cases[c].n)};
        collector *col = run(f->est, "peopleCountEstimator", &it, 1, NULL); /* T1 by default */
        const inferd_value *res = ok(col, 0);
        if (int_at(res, "count") != (int64_t)cases[c].n)
            fail_msg("%ux%u with %zu dots: count %lld", cases[c].w, cases[c].h, cases[c].n,
                     (long long)int_at(res, "count"));
        assert_points_on_dots(res, d, cases[c].n, 0, 0, 3);
        collector_free(col);
    }
}

static void people_t2_has_no_points(void **state)
{
    fixture *f = *state;
    dot d[5];
    place_dots(160, 120, 5, 7, d);
    item it = {.image = dots_image(160, 120, d, 5)};
    collector *c = run(f->est, "peopleCountEstimator", &it, 1, "{\"targets\": \"T2\"}");
    assert_int_equal(int_at(ok(c, 0), "count"), 5);
    assert_null(inferd_value_object_get(ok(c, 0), "points"));
    assert_int_equal(inferd_value_object_len(ok(c, 0)), 1);
    collector_free(c);
}

/* Dots inside and outside a detect area: only those inside count, and the
 * points come back in the whole image's coordinates. */
static const dot area_dots[] = {
    {140, 90, 4}, {180, 100, 3.5}, {150, 140, 5}, {200, 150, 4}, /* inside */
    {30, 30, 4},  {40, 200, 3},    {300, 40, 4.5}, {290, 210, 4} /* outside */
};
static const inferd_rect dots_area = {110, 60, 120, 120};

static void people_detect_area(void **state)
{
    fixture *f = *state;
    item it = {dots_image(340, 240, area_dots, 8), true, dots_area};
    collector *c = run(f->est, "peopleCountEstimator", &it, 1, "{\"targets\": \"T1\"}");
    const inferd_value *res = ok(c, 0);
    assert_int_equal(int_at(res, "count"), 4);
    assert_points_on_dots(res, area_dots, 4, 0, 0, 3);
    collector_free(c);
    /* The whole image counts all eight. */
    item whole = {.image = dots_image(340, 240, area_dots, 8)};
    c = run(f->est, "peopleCountEstimator", &whole, 1, NULL);
    assert_int_equal(int_at(ok(c, 0), "count"), 8);
    collector_free(c);
}

/* One submit of mixed sizes (grouped into batches by size inside the
 * estimator): every item gets its own, right result, and the host ran them
 * as one batch. */
static void people_mixed_batch(void **state)
{
    fixture *f = *state;
    static const struct { uint32_t w, h; size_t n; } cases[] = {
        {160, 120, 5}, {200, 150, 3}, {160, 120, 8}, {97, 83, 1}, {160, 120, 0}, {200, 150, 6}};
    enum { N = sizeof cases / sizeof cases[0] };
    dot d[N][16];
    item items[N];
    for (size_t k = 0; k < N; k++) {
        place_dots(cases[k].w, cases[k].h, cases[k].n, 100 + (uint32_t)k, d[k]);
        items[k] = (item){.image = dots_image(cases[k].w, cases[k].h, d[k], cases[k].n)};
    }
    /* The last one: its 200x150 dots in a detect area of a larger image, so
     * that it runs in the same batch tensor as item 1 (same processed size). */
    for (size_t i = 0; i < cases[5].n; i++) {
        d[5][i].x += 30;
        d[5][i].y += 25;
    }
    inferd_image_free(items[5].image);
    items[5] = (item){dots_image(260, 200, d[5], cases[5].n), true, {30, 25, 200, 150}};
    long idx = inferd_estimators_find(f->est, "peopleCountEstimator");
    inferd_estimator_stats before, after;
    inferd_estimators_stats(f->est, (size_t)idx, &before);
    collector *c = run(f->est, "peopleCountEstimator", items, N, NULL);
    inferd_estimators_stats(f->est, (size_t)idx, &after);
    for (size_t k = 0; k < N; k++) {
        const inferd_value *res = ok(c, k);
        if (int_at(res, "count") != (int64_t)cases[k].n)
            fail_msg("item %zu (%ux%u, %zu dots): count %lld", k, cases[k].w, cases[k].h,
                     cases[k].n, (long long)int_at(res, "count"));
        assert_points_on_dots(res, d[k], cases[k].n, 0, 0, 3);
    }
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.items - before.items, N);
    collector_free(c);
}

static void people_refusals(void **state)
{
    fixture *f = *state;
    item it = {.image = solid(64, 64, 0, 0, 0)};
    refused(f->est, "peopleCountEstimator", &it, "{\"targets\": \"T3\"}", INFERD_EINVAL,
            "targets");
    refused(f->est, "peopleCountEstimator", &it, "{\"targets\": \"T3\"}", INFERD_EINVAL, "T3");
    refused(f->est, "peopleCountEstimator", &it, "{\"target\": \"T1\"}", INFERD_EINVAL,
            "target");
    it.has_area = true;
    it.area = (inferd_rect){40, 40, 30, 10}; /* past the right edge */
    refused(f->est, "peopleCountEstimator", &it, NULL, INFERD_EINVAL, "detect area");
    it.area = (inferd_rect){-1, 0, 10, 10};
    refused(f->est, "peopleCountEstimator", &it, NULL, INFERD_EINVAL, "not inside");
    it.area = (inferd_rect){0, 0, 0, 10};
    refused(f->est, "peopleCountEstimator", &it, NULL, INFERD_EINVAL, "detect area");
    inferd_image_free(it.image);
}

/* ---- imageLabelEstimator ---------------------------------------------------------------- */

static const struct { const char *label; uint8_t r, g, b; } colours[] = {
    {"red", 230, 20, 10},   {"green", 15, 240, 30},  {"blue", 20, 10, 220},
    {"yellow", 240, 235, 25}, {"cyan", 10, 230, 240}, {"white", 245, 245, 240},
    {"black", 10, 12, 8},   {"magenta", 235, 20, 230}};

static void labels_top1_and_topk(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof colours / sizeof colours[0]; i++) {
        item it = {.image = solid(64, 48, colours[i].r, colours[i].g, colours[i].b)};
        collector *c = run(f->est, "imageLabelEstimator", &it, 1, NULL);
        const inferd_value *labels = inferd_value_object_get(ok(c, 0), "labels");
        assert_int_equal(inferd_value_array_len(labels), 1); /* topK 1 by default */
        const inferd_value *best = inferd_value_array_get(labels, 0);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(best, "label"), ""),
                            colours[i].label);
        assert_true(num_at(best, "score") > 0.9);
        collector_free(c);
    }
    /* topK 3: three, best first; 1000 (more than the 8 labels): all of them. */
    for (int k = 0; k < 2; k++) {
        item it = {.image = solid(40, 30, 230, 20, 10)};
        collector *c = run(f->est, "imageLabelEstimator", &it, 1,
                           k == 0 ? "{\"topK\": 3}" : "{\"topK\": \"1000\"}");
        const inferd_value *labels = inferd_value_object_get(ok(c, 0), "labels");
        size_t n = inferd_value_array_len(labels);
        assert_int_equal(n, k == 0 ? 3 : 8);
        double total = 0, prev = INFINITY;
        for (size_t j = 0; j < n; j++) {
            const inferd_value *l = inferd_value_array_get(labels, j);
            double s = num_at(l, "score");
            assert_true(s <= prev);
            prev = s;
            total += s;
            for (size_t m = 0; m < j; m++)
                assert_string_not_equal(
                    inferd_value_string_or(inferd_value_object_get(l, "label"), ""),
                    inferd_value_string_or(
                        inferd_value_object_get(inferd_value_array_get(labels, m), "label"), ""));
        }
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(
                                inferd_value_array_get(labels, 0), "label"), ""), "red");
        if (k == 1)
            assert_true(fabs(total - 1.0) < 1e-3); /* the model's fractions */
        collector_free(c);
    }
}

/* Several colours and sizes in one submit: each item reads its own row of
 * the batch's output. */
static void labels_mixed_batch(void **state)
{
    fixture *f = *state;
    static const size_t pick[] = {0, 1, 2, 4, 3, 7};
    static const uint32_t sizes[][2] = {{64, 48}, {64, 48}, {32, 32}, {64, 48}, {32, 32}, {50, 70}};
    enum { N = 6 };
    item items[N];
    for (size_t k = 0; k < N; k++)
        items[k] = (item){.image = solid(sizes[k][0], sizes[k][1], colours[pick[k]].r,
                                         colours[pick[k]].g, colours[pick[k]].b)};
    /* Item 5: a green area inside a magenta image. */
    for (uint32_t y = 10; y < 40; y++)
        for (uint32_t x = 5; x < 45; x++) {
            uint8_t *p = px(items[5].image, x, y);
            p[0] = colours[1].r, p[1] = colours[1].g, p[2] = colours[1].b;
        }
    items[5].has_area = true;
    items[5].area = (inferd_rect){5, 10, 40, 30};
    collector *c = run(f->est, "imageLabelEstimator", items, N, "{\"topK\": 2}");
    for (size_t k = 0; k < N; k++) {
        const inferd_value *labels = inferd_value_object_get(ok(c, k), "labels");
        assert_int_equal(inferd_value_array_len(labels), 2);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(
                                inferd_value_array_get(labels, 0), "label"), ""),
                            k == 5 ? "green" : colours[pick[k]].label);
    }
    collector_free(c);
}

static void labels_refusals(void **state)
{
    fixture *f = *state;
    item it = {.image = solid(16, 16, 0, 0, 0)};
    refused(f->est, "imageLabelEstimator", &it, "{\"topK\": \"x\"}", INFERD_EINVAL, "topK");
    refused(f->est, "imageLabelEstimator", &it, "{\"topK\": 0}", INFERD_EINVAL, "topK");
    refused(f->est, "imageLabelEstimator", &it, "{\"topK\": 1001}", INFERD_EINVAL, "topK");
    inferd_image_free(it.image);
}

/* ---- defectEstimator ---------------------------------------------------------------------- */

/* Three scratches on a 240x180 grey plate, and their inclusive pixel boxes. */
typedef struct scratch {
    double x0, y0, x1, y1;
    int width;
} scratch;
static const scratch plate[] = {
    {20, 30, 110, 30, 2},  /* horizontal, 91 px */
    {180, 40, 180, 150, 3}, /* vertical, 111 px */
    {30, 80, 100, 140, 2}, /* diagonal */
};

static inferd_image *plate_image(void)
{
    inferd_image *img = solid(240, 180, 204, 204, 204);
    for (size_t i = 0; i < 3; i++)
        draw_line(img, plate[i].x0, plate[i].y0, plate[i].x1, plate[i].y1, plate[i].width);
    return img;
}

/* The defect's box holds the scratch's pixels and exceeds them by <= 3 px. */
static void assert_box_on(const inferd_value *d, const scratch *s)
{
    int64_t x = int_at(d, "x"), y = int_at(d, "y"), w = int_at(d, "width"),
            h = int_at(d, "height");
    double sx0 = fmin(s->x0, s->x1), sy0 = fmin(s->y0, s->y1);
    double sx1 = fmax(s->x0, s->x1) + s->width - 1, sy1 = fmax(s->y0, s->y1) + s->width - 1;
    if (!(x <= sx0 && y <= sy0 && x + w - 1 >= sx1 && y + h - 1 >= sy1 && sx0 - x <= 3 &&
          sy0 - y <= 3 && x + w - 1 - sx1 <= 3 && y + h - 1 - sy1 <= 3))
        fail_msg("box {%lld, %lld, %lld x %lld} does not fit the scratch [%g..%g] x [%g..%g]",
                 (long long)x, (long long)y, (long long)w, (long long)h, sx0, sx1, sy0, sy1);
    assert_true(int_at(d, "area") >= 20);
    double score = num_at(d, "score");
    assert_true(score > 0.5 && score <= 1.0);
}

static void defects_boxes(void **state)
{
    fixture *f = *state;
    item it = {.image = plate_image()};
    collector *c = run(f->est, "defectEstimator", &it, 1, NULL);
    const inferd_value *res = ok(c, 0);
    assert_int_equal(int_at(res, "count"), 3);
    assert_null(inferd_value_object_get(res, "mask")); /* only when asked */
    const inferd_value *ds = inferd_value_object_get(res, "defects");
    assert_int_equal(inferd_value_array_len(ds), 3);
    /* Largest first: the vertical (3 px wide), then the horizontal and diagonal. */
    assert_box_on(inferd_value_array_get(ds, 0), &plate[1]);
    int64_t a0 = int_at(inferd_value_array_get(ds, 0), "area");
    for (size_t i = 1; i < 3; i++)
        assert_true(int_at(inferd_value_array_get(ds, i), "area") <= a0);
    const inferd_value *d1 = inferd_value_array_get(ds, 1), *d2 = inferd_value_array_get(ds, 2);
    bool horizontal_first = int_at(d1, "height") < int_at(d2, "height");
    assert_box_on(horizontal_first ? d1 : d2, &plate[0]);
    assert_box_on(horizontal_first ? d2 : d1, &plate[2]);
    collector_free(c);

    /* A clean plate has none. */
    item clean = {.image = solid(128, 96, 204, 204, 204)};
    c = run(f->est, "defectEstimator", &clean, 1, "{\"mask\": false}");
    assert_int_equal(int_at(ok(c, 0), "count"), 0);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(ok(c, 0), "defects")), 0);
    collector_free(c);
}

/* Checks the mask PNG: w x h, 0/255, dark where the scratch is. */
static void assert_mask(const inferd_value *res, uint32_t w, uint32_t h, const scratch *s,
                        double ox, double oy)
{
    const void *png = NULL;
    size_t len = 0;
    const inferd_value *m = inferd_value_object_get(res, "mask");
    assert_non_null(m);
    assert_int_equal(inferd_value_get_bytes(m, &png, &len, NULL), INFERD_OK);
    assert_int_equal(inferd_image_sniff(png, len), INFERD_CODEC_PNG);
    inferd_image *img = NULL;
    inferd_error err = {0};
    if (inferd_image_decode(png, len, INFERD_PIXEL_GRAY8, 0, &img, &err) != INFERD_OK)
        fail_msg("mask: %s", err.message);
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    size_t on = 0;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t v = img->data[(size_t)y * img->stride + x];
            assert_true(v == 0 || v == 255);
            on += v == 255;
        }
    /* The scratch's middle pixel is set; the mask is not all set. */
    uint32_t mx = (uint32_t)((s->x0 + s->x1) / 2 - ox), my = (uint32_t)((s->y0 + s->y1) / 2 - oy);
    assert_int_equal(img->data[(size_t)my * img->stride + mx], 255);
    assert_true(on > 20 && on < (size_t)w * h / 4);
    inferd_image_free(img);
}

static void defects_area_and_mask(void **state)
{
    fixture *f = *state;
    /* The area holds only the vertical scratch. */
    item it = {plate_image(), true, {150, 20, 70, 150}};
    collector *c = run(f->est, "defectEstimator", &it, 1, "{\"mask\": true}");
    const inferd_value *res = ok(c, 0);
    assert_int_equal(int_at(res, "count"), 1);
    assert_box_on(inferd_value_array_get(inferd_value_object_get(res, "defects"), 0), &plate[1]);
    assert_mask(res, 70, 150, &plate[1], 150, 20); /* the processed area's mask */
    /* The JSON writer renders the mask as base64 text. */
    char *json = NULL;
    assert_int_equal(inferd_value_to_json(res, 0, &json, NULL, NULL), INFERD_OK);
    assert_contains(json, "\"mask\":\"iVBORw0KGgo");
    free(json);
    collector_free(c);

    /* Whole image with the mask: its size. */
    item whole = {.image = plate_image()};
    c = run(f->est, "defectEstimator", &whole, 1, "{\"mask\": \"true\"}");
    assert_int_equal(int_at(ok(c, 0), "count"), 3);
    assert_mask(ok(c, 0), 240, 180, &plate[0], 0, 0);
    collector_free(c);
}

static void defects_refusals(void **state)
{
    fixture *f = *state;
    item it = {.image = solid(16, 16, 0, 0, 0)};
    refused(f->est, "defectEstimator", &it, "{\"mask\": \"maybe\"}", INFERD_EINVAL, "mask");
    it.has_area = true;
    it.area = (inferd_rect){0, 10, 16, 7};
    refused(f->est, "defectEstimator", &it, NULL, INFERD_EINVAL, "detect area");
    inferd_image_free(it.image);
}

/* ---- settings ------------------------------------------------------------------------------ */

static void describe_builtins(void **state)
{
    fixture *f = *state;
    static const char *const names[] = {"defectEstimator", "imageLabelEstimator",
                                        "peopleCountEstimator"};
    for (size_t i = 0; i < 3; i++) {
        long idx = inferd_estimators_find(f->est, names[i]);
        assert_true(idx >= 0);
        inferd_value *d = inferd_estimators_describe(f->est, (size_t)idx);
        assert_non_null(d);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(d, "component"), ""),
                            names[i]);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(d, "plugin"), ""),
                            "estimators");
        assert_true(inferd_value_bool_or(inferd_value_object_get(d, "builtIn"), false));
        inferd_value_free(d);
    }
}

/* Component settings come from the config; bad ones fail at start, naming
 * what is wrong. */
static void settings(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    inferd_error err = {0};
    inferd_estimators *est = estimators(
        reg, "{\"peopleCountEstimator\": {\"modelPath\": \"/nonexistent/people.onnx\"}}", &err);
    assert_null(est);
    assert_int_equal(err.code, INFERD_ENOTFOUND);
    assert_contains(err.message, "/nonexistent/people.onnx");

    est = estimators(reg, "{\"imageLabelEstimator\": {\"labelsFile\": \"missing.labels\"}}",
                     &err);
    assert_null(est);
    assert_contains(err.message, "labelsFile");
    assert_contains(err.message, "missing.labels");

    est = estimators(reg, "{\"defectEstimator\": {\"minArea\": 0}}", &err);
    assert_null(est);
    assert_contains(err.message, "minArea");

    /* A model given by its path finds its labels file beside it; deviceClass
     * gpu runs (on CUDA, or on the CPU with a warning where there is none). */
    const char *models = getenv("TEST_MODELS");
    assert_non_null(models);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"imageLabelEstimator\": {\"modelPath\": \"%s/colour_classifier.onnx\", "
             "\"labelsFile\": \"colour_classifier.labels\"}, "
             "\"peopleCountEstimator\": {\"deviceClass\": \"gpu\", \"peakThreshold\": 0.1}, "
             "\"defectEstimator\": {\"minArea\": 100000}}", models);
    est = estimators(reg, json, &err);
    if (!est)
        fail_msg("estimators: %s", err.message);
    item blue = {.image = solid(20, 20, 20, 10, 220)};
    collector *c = run(est, "imageLabelEstimator", &blue, 1, NULL);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(inferd_value_array_get(
                            inferd_value_object_get(ok(c, 0), "labels"), 0), "label"), ""),
                        "blue");
    collector_free(c);
    dot d[5];
    place_dots(160, 120, 5, 9, d);
    item dots = {.image = dots_image(160, 120, d, 5)};
    c = run(est, "peopleCountEstimator", &dots, 1, NULL);
    assert_int_equal(int_at(ok(c, 0), "count"), 5);
    collector_free(c);
    inferd_value *desc = inferd_estimators_describe(
        est, (size_t)inferd_estimators_find(est, "peopleCountEstimator"));
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(desc, "deviceClass"), ""),
                        "gpu");
    inferd_value_free(desc);
    /* minArea above every scratch: none left. */
    item p = {.image = plate_image()};
    c = run(est, "defectEstimator", &p, 1, NULL);
    assert_int_equal(int_at(ok(c, 0), "count"), 0);
    collector_free(c);
    inferd_estimators_free(est);

    /* Models that do not fit: each item fails, with the reason. */
    char labels[] = "/tmp/inferd_test_labels_XXXXXX";
    int fd = mkstemp(labels);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\nb\nc\n", 6), 6);
    close(fd);
    snprintf(json, sizeof json,
             "{\"peopleCountEstimator\": {\"modelPath\": \"colour_classifier.onnx\"}, "
             "\"imageLabelEstimator\": {\"labelsFile\": \"%s\"}}", labels);
    est = estimators(reg, json, &err);
    unlink(labels);
    if (!est)
        fail_msg("estimators: %s", err.message);
    item two[2] = {{.image = solid(32, 32, 0, 0, 0)}, {.image = solid(40, 30, 0, 0, 0)}};
    c = run(est, "peopleCountEstimator", two, 2, NULL);
    for (size_t k = 0; k < 2; k++) {
        assert_null(c->result[k]);
        assert_int_equal(c->err[k].code, INFERD_EPLUGIN); /* the model, not the request */
        assert_contains(c->err[k].message, "estimator peopleCountEstimator");
        assert_contains(c->err[k].message, "colour_classifier.onnx");
        assert_contains(c->err[k].message, "density map");
    }
    collector_free(c);
    item one = {.image = solid(32, 32, 0, 0, 0)};
    c = run(est, "imageLabelEstimator", &one, 1, NULL);
    assert_null(c->result[0]);
    assert_int_equal(c->err[0].code, INFERD_EPLUGIN);
    assert_contains(c->err[0].message, "8 scores per image and labelsFile names 3 classes");
    collector_free(c);
    inferd_estimators_free(est);
    inferd_registry_free(reg);
}

/* ---- the replacement plugin ------------------------------------------------------------------ */

/* people_count_onnx activated from the default plugin folder (where the
 * build puts the example plugins, with people_density.onnx beside it) takes
 * over peopleCountEstimator; its counts equal the built-in's. */
static void replacement(void **state)
{
    fixture *f = *state;
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    inferd_error err = {0};
    const char *active[] = {"people_count_onnx"};
    if (inferd_registry_activate(reg, inferd_default_plugin_dir(), active, 1, &err) != INFERD_OK)
        fail_msg("activating people_count_onnx: %s", err.message);
    inferd_estimators *est = estimators(reg, "{\"peopleCountEstimator\": {\"maxBatch\": 8}}", &err);
    if (!est)
        fail_msg("estimators: %s", err.message);
    long idx = inferd_estimators_find(est, "peopleCountEstimator");
    assert_true(idx >= 0);
    assert_int_equal(inferd_estimators_count(est), 3); /* replaced, not added */
    inferd_value *d = inferd_estimators_describe(est, (size_t)idx);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(d, "component"), ""),
                        "onnxPeopleCountEstimator");
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(d, "plugin"), ""),
                        "people_count_onnx");
    assert_false(inferd_value_bool_or(inferd_value_object_get(d, "builtIn"), true));
    assert_true(inferd_value_bool_or(inferd_value_object_get(d, "replaced"), false));
    inferd_value_free(d);

    /* The same images through both: equal counts; the replacement's T1
     * points (the seed's top cells) lie on dots, inside the area. */
    static const struct { uint32_t w, h; size_t n; } cases[] = {
        {64, 64, 0}, {64, 64, 1}, {160, 120, 5}, {200, 150, 3}, {333, 257, 12}, {256, 192, 20}};
    enum { N = sizeof cases / sizeof cases[0] };
    dot dd[N][32];
    item mine[N + 1], theirs[N + 1];
    for (size_t k = 0; k < N; k++) {
        place_dots(cases[k].w, cases[k].h, cases[k].n, 200 + (uint32_t)k, dd[k]);
        mine[k] = (item){.image = dots_image(cases[k].w, cases[k].h, dd[k], cases[k].n)};
        theirs[k] = (item){.image = dots_image(cases[k].w, cases[k].h, dd[k], cases[k].n)};
    }
    mine[N] = (item){dots_image(340, 240, area_dots, 8), true, dots_area};
    theirs[N] = (item){dots_image(340, 240, area_dots, 8), true, dots_area};
    collector *a = run(f->est, "peopleCountEstimator", mine, N + 1, NULL);
    collector *b = run(est, "peopleCountEstimator", theirs, N + 1, NULL);
    for (size_t k = 0; k <= N; k++) {
        int64_t want = k < N ? (int64_t)cases[k].n : 4;
        assert_int_equal(int_at(ok(a, k), "count"), want);
        if (int_at(ok(b, k), "count") != want)
            fail_msg("replacement, item %zu: count %lld, the built-in's %lld", k,
                     (long long)int_at(ok(b, k), "count"), (long long)want);
        const inferd_value *pts = inferd_value_object_get(ok(b, k), "points");
        assert_int_equal(inferd_value_array_len(pts), want);
        const dot *on = k < N ? dd[k] : area_dots;
        size_t n_on = k < N ? cases[k].n : 4;
        for (size_t i = 0; i < (size_t)want; i++) {
            const inferd_value *p = inferd_value_array_get(pts, i);
            double x = (double)int_at(p, "x"), y = (double)int_at(p, "y"), best = INFINITY;
            for (size_t j = 0; j < n_on; j++)
                best = fmin(best, hypot(on[j].x - x, on[j].y - y));
            if (best > 8)
                fail_msg("replacement, item %zu: point (%g, %g) is %.1f px from every dot", k,
                         x, y, best);
        }
    }
    collector_free(a);
    collector_free(b);

    /* Same request options: T2 gives the count only; T3 is refused. */
    dot d5[5];
    place_dots(160, 120, 5, 11, d5);
    item t2 = {.image = dots_image(160, 120, d5, 5)};
    collector *c = run(est, "peopleCountEstimator", &t2, 1, "{\"targets\": \"T2\"}");
    assert_int_equal(int_at(ok(c, 0), "count"), 5);
    assert_null(inferd_value_object_get(ok(c, 0), "points"));
    collector_free(c);
    item bad = {.image = solid(32, 32, 0, 0, 0)};
    refused(est, "peopleCountEstimator", &bad, "{\"targets\": \"T3\"}", INFERD_EINVAL, "targets");
    inferd_image_free(bad.image);

    inferd_estimators_free(est);
    inferd_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(people_counts_and_points),
        cmocka_unit_test(people_t2_has_no_points),
        cmocka_unit_test(people_detect_area),
        cmocka_unit_test(people_mixed_batch),
        cmocka_unit_test(people_refusals),
        cmocka_unit_test(labels_top1_and_topk),
        cmocka_unit_test(labels_mixed_batch),
        cmocka_unit_test(labels_refusals),
        cmocka_unit_test(defects_boxes),
        cmocka_unit_test(defects_area_and_mask),
        cmocka_unit_test(defects_refusals),
        cmocka_unit_test(describe_builtins),
        cmocka_unit_test(settings),
        cmocka_unit_test(replacement),
    };
    return cmocka_run_group_tests(tests, builtins_up, builtins_down);
}
