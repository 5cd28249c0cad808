/* test_postprocess.c: the built-in "postprocess" plugin's elements
 * (plugins/builtin/postprocess): density_count, classify_topk and
 * segment_defects, loaded through the registry like the daemon loads them
 * (the built-in folder next to libinferd) and driven with tensors made here:
 * exact counts, peaks (plateaus, sub-cell centroids, the strongest kept),
 * coordinates mapped back through crop and resize transforms, top-k labels
 * (inline and from a file, softmax), connected components (4 vs 8, minArea,
 * the mask output), and every refusal with its code and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd/config.h"
#include "inferd/registry.h"

static inferd_registry *reg;

#define assert_near(a, b, tol)                                                                \
    do {                                                                                      \
        double a_ = (a), b_ = (b);                                                            \
        if (!(fabs(a_ - b_) <= (tol)))                                                        \
            fail_msg("%s = %.17g, want %.17g (within %g)", #a, a_, b_, (double)(tol));         \
    } while (0)

/* ---- harness ----------------------------------------------------------------- */

static int load_builtins(void **state)
{
    reg = support_builtins();
    return reg ? 0 : -1;
}

static int free_registry(void **state)
{
    inferd_registry_free(reg);
    return 0;
}

static inferd_instance *element(const char *component, const char *name, const char *json,
                                pushed *out)
{
    inferd_value *props = NULL;
    if (json)
        assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &props, NULL), INFERD_OK);
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    inferd_status st = inferd_instance_create(reg, component, name, props, &inst, &err);
    inferd_value_free(props);
    if (st != INFERD_OK)
        fail_msg("creating %s %s: %s", component, json ? json : "", err.message);
    inferd_instance_set_push(inst, collect_push, out);
    return inst;
}

/* Creating it fails with code, and the message holds needle. */
static void element_refused(const char *component, const char *json, inferd_status code,
                            const char *needle)
{
    inferd_value *props = NULL;
    assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &props, NULL), INFERD_OK);
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    inferd_status st = inferd_instance_create(reg, component, "bad", props, &inst, &err);
    inferd_value_free(props);
    if (st != code)
        fail_msg("%s %s: got %s: %s", component, json, inferd_status_name(st), err.message);
    assert_null(inst);
    assert_contains(err.message, needle);
}

/* A buffer (derived from parent when given) whose payload is one tensor. */
static inferd_buffer *tensor_buffer(inferd_buffer *parent, const char *name, inferd_dtype dtype,
                                    size_t ndim, const int64_t *shape, const void *data)
{
    inferd_tensor *t = NULL;
    assert_int_equal(inferd_tensor_new(dtype, ndim, shape, &t, NULL), INFERD_OK);
    memcpy(t->data, data, t->nbytes);
    if (name)
        assert_int_equal(inferd_tensor_set_name(t, name, NULL), INFERD_OK);
    inferd_buffer *buf = parent ? inferd_buffer_derive(parent) : inferd_buffer_new();
    assert_non_null(buf);
    inferd_tensor **list = malloc(sizeof *list);
    assert_non_null(list);
    list[0] = t;
    assert_int_equal(inferd_buffer_set_tensors(buf, list, 1, NULL), INFERD_OK);
    return buf;
}

static inferd_buffer *f32_buffer(inferd_buffer *parent, const char *name, size_t ndim,
                                 const int64_t *shape, const float *data)
{
    return tensor_buffer(parent, name, INFERD_DTYPE_FLOAT32, ndim, shape, data);
}

static void add_transform(inferd_buffer *buf, const char *producer, const char *json)
{
    inferd_value *v = NULL;
    assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &v, NULL), INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, producer, "metadata/transform", v, NULL),
                     INFERD_OK);
}

/* Processes buf; on success the element pushed buf itself on port 0 and its
 * result (format) is returned (borrowed from buf). */
static const inferd_value *run_ok(inferd_instance *inst, pushed *out, inferd_buffer *buf,
                                  const char *format)
{
    inferd_error err = {0};
    int before = out->count;
    if (inferd_instance_process(inst, &buf, 1, &err) != INFERD_OK)
        fail_msg("process: %s", err.message);
    assert_int_equal(out->count, before + 1);
    assert_ptr_equal(out->buf, buf);
    assert_int_equal(out->port, 0);
    /* The payload goes on untouched. */
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_TENSORS);
    inferd_meta m;
    assert_true(inferd_buffer_find_meta(buf, inferd_instance_name(inst), format, &m));
    assert_non_null(m.value);
    return m.value;
}

/* Processing fails with code and a message holding needle; nothing is
 * pushed and no result is attached. */
static void run_refused(inferd_instance *inst, pushed *out, inferd_buffer *buf,
                        inferd_status code, const char *needle)
{
    inferd_error err = {0};
    int before = out->count;
    size_t metas = buf ? inferd_buffer_meta_count(buf) : 0;
    inferd_status st = inferd_instance_process(inst, &buf, 1, &err);
    if (st != code)
        fail_msg("got %s (%s), want %s", inferd_status_name(st), err.message,
                 inferd_status_name(code));
    assert_int_equal(err.code, code);
    assert_contains(err.message, "process failed");
    assert_contains(err.message, needle);
    assert_int_equal(out->count, before);
    if (buf)
        assert_int_equal(inferd_buffer_meta_count(buf), metas);
}

static double num(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!v)
        fail_msg("no key '%s'", key);
    return inferd_value_double_or(v, NAN);
}

static int64_t integer(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!inferd_value_is(v, INFERD_VALUE_INT))
        fail_msg("'%s' is not an int", key);
    return inferd_value_int_or(v, -1);
}

static void finish(inferd_instance *inst, pushed *out)
{
    inferd_instance_destroy(inst);
    inferd_buffer_unref(out->buf);
    out->buf = NULL;
}

/* ---- density_count ----------------------------------------------------------- */

#define DH 30
#define DW 40

static void put(float *m, int w, int i, int j, float v) { m[i * w + j] = v; }

/* Three unit masses: a symmetric blob at cell (5,7), a lopsided one at
 * (20,30) whose centroid is (20, 30.25), one on the border at (0,0) with
 * centroid (0, 0.25). Crop then resize before the model; the points must
 * come back in the original image. */
static void density_points_mapped_back(void **state)
{
    static float m[DH * DW];
    memset(m, 0, sizeof m);
    for (int di = -1; di <= 1; di++)
        for (int dj = -1; dj <= 1; dj++)
            put(m, DW, 5 + di, 7 + dj, 0.0625f);
    put(m, DW, 5, 7, 0.5f);
    put(m, DW, 20, 30, 0.5f);
    put(m, DW, 20, 31, 0.25f);
    put(m, DW, 21, 30, 0.125f);
    put(m, DW, 19, 30, 0.125f);
    put(m, DW, 0, 0, 0.75f);
    put(m, DW, 0, 1, 0.25f);

    /* The frame: original -> crop (x 100, y 50) -> resize (x0.5, y0.25,
     * padded 2 and 4) -> the model, each stage a derived buffer. */
    inferd_buffer *frame = inferd_buffer_new();
    add_transform(frame, "crop1",
                  "{\"type\":\"crop\",\"x\":100,\"y\":50,\"width\":200,\"height\":150}");
    inferd_buffer *resized = inferd_buffer_derive(frame);
    add_transform(resized, "resize1",
                  "{\"type\":\"resize\",\"scale_x\":0.5,\"scale_y\":0.25,\"pad_x\":2,"
                  "\"pad_y\":4,\"src_width\":200,\"src_height\":150}");
    int64_t shape[] = {1, 1, DH, DW};
    inferd_buffer *buf = f32_buffer(resized, "density", 4, shape, m);

    pushed out = {0};
    inferd_instance *dc = element("density_count", "dc", NULL, &out);
    const inferd_value *r = run_ok(dc, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 3);
    assert_near(num(r, "sum"), 3.0, 1e-12);
    const inferd_value *pts = inferd_value_object_get(r, "points");
    assert_int_equal(inferd_value_array_len(pts), 3);
    /* Strongest first; equal scores in raster order. Model space (stride 4):
     * x = 4 (j + 0.5); back: x = (x - 2) / 0.5 + 100, y = (y - 4) / 0.25 + 50. */
    static const double want[3][3] = {
        {102, 42, 0.75},  /* (0, 0.25): model (3, 2) */
        {156, 122, 0.5},  /* (5, 7): model (30, 22) */
        {342, 362, 0.5},  /* (20, 30.25): model (123, 82) */
    };
    for (size_t k = 0; k < 3; k++) {
        const inferd_value *p = inferd_value_array_get(pts, k);
        assert_near(num(p, "x"), want[k][0], 1e-9);
        assert_near(num(p, "y"), want[k][1], 1e-9);
        assert_near(num(p, "score"), want[k][2], 1e-12);
    }
    /* Without transforms, in the model input's space; another stride. */
    inferd_buffer *bare = f32_buffer(NULL, "density", 4, shape, m);
    inferd_instance *dc8 = element("density_count", "dc8", "{\"stride\": \"8\"}", &out);
    r = run_ok(dc8, &out, bare, "metadata/points");
    const inferd_value *p = inferd_value_array_get(inferd_value_object_get(r, "points"), 2);
    assert_near(num(p, "x"), 8 * 30.75, 1e-9);
    assert_near(num(p, "y"), 8 * 20.5, 1e-9);

    finish(dc, &out);
    finish(dc8, &out);
    inferd_buffer_unref(bare);
    inferd_buffer_unref(buf);
    inferd_buffer_unref(resized);
    inferd_buffer_unref(frame);
}

/* A flat top counts once, wherever its shape (a 2x2 square, a V that the
 * raster-order rule would split in two); a plateau with a higher neighbour
 * is no peak. */
static void density_plateaus(void **state)
{
    enum { H = 12, W = 12 };
    float m[H * W] = {0};
    for (int i = 2; i <= 3; i++)
        for (int j = 2; j <= 3; j++)
            put(m, W, i, j, 0.25f);
    put(m, W, 7, 6, 0.2f); /* a V: (7,6) and (7,8) meet at (8,7) */
    put(m, W, 8, 7, 0.2f);
    put(m, W, 7, 8, 0.2f);
    put(m, W, 10, 1, 0.1f); /* a plateau below (10,3) */
    put(m, W, 10, 2, 0.1f);
    put(m, W, 10, 3, 0.15f);
    /* Mass under the threshold, so that the count (3) allows every peak. */
    for (int k = 0; k < 14; k++)
        put(m, W, k < 7 ? 0 : 11, 4 + (k % 7), 0.04f);
    int64_t shape[] = {1, 1, H, W};
    inferd_buffer *buf = f32_buffer(NULL, NULL, 4, shape, m);
    pushed out = {0};
    inferd_instance *dc = element("density_count", "dc", NULL, &out);
    const inferd_value *r = run_ok(dc, &out, buf, "metadata/points");
    assert_near(num(r, "sum"), 1.0 + 0.6 + 0.35 + 14 * 0.04, 1e-5);
    assert_int_equal(integer(r, "count"), 3);
    const inferd_value *pts = inferd_value_object_get(r, "points");
    assert_int_equal(inferd_value_array_len(pts), 3);
    /* The square: centroid (2.5, 2.5) -> 4 * 3 = 12. */
    const inferd_value *p = inferd_value_array_get(pts, 0);
    assert_near(num(p, "x"), 12.0, 1e-9);
    assert_near(num(p, "y"), 12.0, 1e-9);
    assert_near(num(p, "score"), 0.25, 1e-12);
    /* The V: its cell nearest its mean is (8,7); the 3x3 there holds all
     * three cells: centroid (22/3, 7). */
    p = inferd_value_array_get(pts, 1);
    assert_near(num(p, "x"), 4 * 7.5, 1e-9);
    assert_near(num(p, "y"), 4 * (22.0 / 3 + 0.5), 1e-9);
    assert_near(num(p, "score"), 0.2f, 1e-12);
    /* The single cell above the low plateau: centroid of its 0.1 and 0.15
     * cells and the 0.04 cell (11,4) that touches it. */
    p = inferd_value_array_get(pts, 2);
    assert_near(num(p, "score"), 0.15f, 1e-12);
    double lo = 0.1f, top = 0.15f, far = 0.04f, w = lo + top + far;
    assert_near(num(p, "x"), 4 * ((2 * lo + 3 * top + 4 * far) / w + 0.5), 1e-9);
    assert_near(num(p, "y"), 4 * ((10 * (lo + top) + 11 * far) / w + 0.5), 1e-9);
    finish(dc, &out);
    inferd_buffer_unref(buf);
}

/* Four isolated peaks of 0.9, 0.7, 0.625, 0.4 (sum 2.625): nearest keeps the
 * strongest 3, floor the strongest 2; T2 reports no points at all. */
static void density_count_and_rounding(void **state)
{
    enum { H = 10, W = 10 };
    float m[H * W] = {0};
    put(m, W, 1, 1, 0.4f);
    put(m, W, 1, 8, 0.7f);
    put(m, W, 8, 1, 0.9f);
    put(m, W, 8, 8, 0.625f);
    int64_t shape[] = {H, W}; /* rank 2 is a plane too */
    inferd_buffer *buf = f32_buffer(NULL, "d", 2, shape, m);
    pushed out = {0};

    inferd_instance *near = element("density_count", "near", NULL, &out);
    const inferd_value *r = run_ok(near, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 3);
    assert_near(num(r, "sum"), 2.625, 1e-6);
    const inferd_value *pts = inferd_value_object_get(r, "points");
    assert_int_equal(inferd_value_array_len(pts), 3);
    static const double want[3][3] = {{6, 34, 0.9f}, {34, 6, 0.7f}, {34, 34, 0.625}};
    for (size_t k = 0; k < 3; k++) {
        const inferd_value *p = inferd_value_array_get(pts, k);
        assert_near(num(p, "x"), want[k][0], 1e-9);
        assert_near(num(p, "y"), want[k][1], 1e-9);
        assert_near(num(p, "score"), want[k][2], 1e-12);
    }

    inferd_instance *fl = element("density_count", "fl", "{\"round\": \"floor\"}", &out);
    r = run_ok(fl, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 2);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "points")), 2);

    inferd_instance *t2 = element("density_count", "t2", "{\"target\": \"T2\"}", &out);
    r = run_ok(t2, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 3);
    assert_near(num(r, "sum"), 2.625, 1e-6);
    assert_null(inferd_value_object_get(r, "points"));
    assert_int_equal(inferd_value_object_len(r), 2);

    /* A higher peakThreshold leaves fewer points than the count. */
    inferd_instance *hi = element("density_count", "hi", "{\"peakThreshold\": 0.65}", &out);
    r = run_ok(hi, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 3);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "points")), 2);
    /* The threshold is strict: a peak equal to it is not one. */
    inferd_instance *eq = element("density_count", "eq", "{\"peakThreshold\": 0.625}", &out);
    r = run_ok(eq, &out, buf, "metadata/points");
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "points")), 2);
    inferd_buffer_unref(buf);

    /* A float sum a hair under an integer floors to it; a negative sum is 0. */
    float almost[H * W] = {0};
    put(almost, W, 2, 2, 1.0f);
    put(almost, W, 2, 6, 1.0f);
    put(almost, W, 6, 2, 0.99999f);
    buf = f32_buffer(NULL, "d", 2, shape, almost);
    r = run_ok(fl, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 3);
    inferd_buffer_unref(buf);
    float negative[H * W] = {0};
    put(negative, W, 3, 3, -0.75f);
    put(negative, W, 5, 5, 0.25f);
    buf = f32_buffer(NULL, "d", 2, shape, negative);
    r = run_ok(near, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 0);
    assert_near(num(r, "sum"), -0.5, 1e-12);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "points")), 0);
    inferd_buffer_unref(buf);

    finish(near, &out);
    finish(fl, &out);
    finish(t2, &out);
    finish(hi, &out);
    finish(eq, &out);
}

/* FP16 and FP64 maps are read too ([N,H,W] layout). */
static void density_other_dtypes(void **state)
{
    uint16_t half[9] = {0, 0x3400, 0, 0x3400, 0x3800, 0, 0, 0, 0}; /* 0.25, 0.5 */
    int64_t shape[] = {1, 3, 3};
    inferd_buffer *buf = tensor_buffer(NULL, "h", INFERD_DTYPE_FLOAT16, 3, shape, half);
    pushed out = {0};
    inferd_instance *dc = element("density_count", "dc", NULL, &out);
    const inferd_value *r = run_ok(dc, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 1);
    assert_near(num(r, "sum"), 1.0, 0);
    const inferd_value *p = inferd_value_array_get(inferd_value_object_get(r, "points"), 0);
    assert_near(num(p, "x"), 4 * (0.75 + 0.5), 1e-12); /* (0 * 0.25 + 1 * 0.25 + 1 * 0.5) / 1 */
    assert_near(num(p, "y"), 4 * (0.75 + 0.5), 1e-12);
    inferd_buffer_unref(buf);
    double dbl[9] = {0, 0, 0, 0, 1.5, 0, 0, 0, 0.25};
    buf = tensor_buffer(NULL, "d", INFERD_DTYPE_FLOAT64, 3, shape, dbl);
    r = run_ok(dc, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 2);
    assert_near(num(r, "sum"), 1.75, 0);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "points")), 1);
    inferd_buffer_unref(buf);
    finish(dc, &out);
}

/* ---- classify_topk ----------------------------------------------------------- */

#define COLOURS "black,white,red,green,blue,yellow,cyan,magenta"

static void classify_inline_labels(void **state)
{
    float probs[8] = {0.05f, 0.1f, 0.4f, 0.05f, 0.2f, 0.1f, 0.05f, 0.05f};
    int64_t shape[] = {1, 8};
    inferd_buffer *buf = f32_buffer(NULL, "probabilities", 2, shape, probs);
    pushed out = {0};
    inferd_instance *ct = element("classify_topk", "ct",
                                  "{\"labels\": \"" COLOURS "\", \"topK\": 3}", &out);
    const inferd_value *r = run_ok(ct, &out, buf, "metadata/class");
    const inferd_value *labels = inferd_value_object_get(r, "labels");
    assert_int_equal(inferd_value_array_len(labels), 3);
    /* white (1) and yellow (5) tie at 0.1: the lower index first. */
    static const struct { const char *label; int index; float score; } want[] = {
        {"red", 2, 0.4f}, {"blue", 4, 0.2f}, {"white", 1, 0.1f}};
    for (size_t k = 0; k < 3; k++) {
        const inferd_value *l = inferd_value_array_get(labels, k);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(l, "label"), ""),
                            want[k].label);
        assert_int_equal(integer(l, "index"), want[k].index);
        assert_true(num(l, "score") == (double)want[k].score);
    }
    /* Default topK 1; the tensor picked by name among two. */
    inferd_tensor *a = NULL, *b = NULL;
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_FLOAT32, 2, shape, &a, NULL), INFERD_OK);
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_FLOAT32, 2, shape, &b, NULL), INFERD_OK);
    inferd_tensor_set_name(a, "other", NULL);
    inferd_tensor_set_name(b, "probabilities", NULL);
    ((float *)a->data)[0] = 1;
    memcpy(b->data, probs, sizeof probs);
    inferd_tensor **list = malloc(2 * sizeof *list);
    list[0] = a;
    list[1] = b;
    inferd_buffer *two = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_tensors(two, list, 2, NULL), INFERD_OK);
    inferd_instance *top1 = element("classify_topk", "top1",
                                    "{\"labels\": [\"black\",\"white\",\"red\",\"green\","
                                    "\"blue\",\"yellow\",\"cyan\",\"magenta\"],"
                                    "\"tensorName\": \"probabilities\"}", &out);
    r = run_ok(top1, &out, two, "metadata/class");
    labels = inferd_value_object_get(r, "labels");
    assert_int_equal(inferd_value_array_len(labels), 1);
    assert_string_equal(
        inferd_value_string_or(inferd_value_object_get(inferd_value_array_get(labels, 0),
                                                       "label"), ""), "red");
    finish(ct, &out);
    finish(top1, &out);
    inferd_buffer_unref(buf);
    inferd_buffer_unref(two);
}

/* Labels from a file (CRLF, a trailing blank line), logits through softmax,
 * topK above the class count, an FP64 [K] vector. */
static void classify_labels_file_softmax(void **state)
{
    char path[] = "/tmp/inferd_pp_labels_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "cat\r\ndog\nbird\n\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char json[256];
    snprintf(json, sizeof json, "{\"labelsFile\": \"%s\", \"topK\": 5, \"softmax\": true}",
             path);
    pushed out = {0};
    inferd_instance *ct = element("classify_topk", "ct", json, &out);
    unlink(path);
    double logits[3] = {1.0, 2.0, 3.0};
    int64_t shape[] = {3};
    inferd_buffer *buf = tensor_buffer(NULL, "logits", INFERD_DTYPE_FLOAT64, 1, shape, logits);
    const inferd_value *r = run_ok(ct, &out, buf, "metadata/class");
    const inferd_value *labels = inferd_value_object_get(r, "labels");
    assert_int_equal(inferd_value_array_len(labels), 3);
    double z = 1 + exp(-1) + exp(-2);
    static const char *names[] = {"bird", "dog", "cat"};
    for (size_t k = 0; k < 3; k++) {
        const inferd_value *l = inferd_value_array_get(labels, k);
        assert_string_equal(inferd_value_string_or(inferd_value_object_get(l, "label"), ""),
                            names[k]);
        assert_int_equal(integer(l, "index"), 2 - (int64_t)k);
        assert_near(num(l, "score"), exp(-(double)k) / z, 1e-12);
    }
    finish(ct, &out);
    inferd_buffer_unref(buf);
}

static void classify_refusals(void **state)
{
    element_refused("classify_topk", "{}", INFERD_EINVAL,
                    "neither labels nor labelsFile is set");
    element_refused("classify_topk", "{\"labels\": \"a,b\", \"labelsFile\": \"/tmp/x\"}",
                    INFERD_EINVAL, "both labels (2 names) and labelsFile ('/tmp/x') are set");
    element_refused("classify_topk", "{\"labelsFile\": \"/nonexistent/inferd/labels.txt\"}",
                    INFERD_ENOTFOUND,
                    "labelsFile '/nonexistent/inferd/labels.txt': No such file or directory");
    element_refused("classify_topk", "{\"labels\": \"a\", \"topK\": 0}", INFERD_ERANGE,
                    "property 'topK'");

    char path[] = "/tmp/inferd_pp_empty_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\n\n", 2), 2);
    close(fd);
    char json[128];
    snprintf(json, sizeof json, "{\"labelsFile\": \"%s\"}", path);
    element_refused("classify_topk", json, INFERD_EINVAL, "holds no label");
    unlink(path);

    pushed out = {0};
    inferd_instance *ct = element("classify_topk", "ct", "{\"labels\": \"a,b,c,d,e,f,g\"}", &out);
    float probs[16] = {0};
    int64_t shape[] = {1, 8};
    inferd_buffer *buf = f32_buffer(NULL, "probabilities", 2, shape, probs);
    run_refused(ct, &out, buf, INFERD_EINVAL,
                "7 labels for tensor 'probabilities' of 8 scores");
    inferd_buffer_unref(buf);
    finish(ct, &out);

    inferd_instance *c8 = element("classify_topk", "c8", "{\"labels\": \"" COLOURS "\"}", &out);
    int64_t batch[] = {2, 8};
    buf = f32_buffer(NULL, "probabilities", 2, batch, probs);
    run_refused(c8, &out, buf, INFERD_EUNSUPPORTED, "a batch of 2 items");
    inferd_buffer_unref(buf);
    int64_t cube[] = {1, 8, 2};
    buf = f32_buffer(NULL, "probabilities", 3, cube, probs);
    run_refused(c8, &out, buf, INFERD_EINVAL, "has shape [1,8,2] (rank 3): expects scores");
    inferd_buffer_unref(buf);
    probs[3] = NAN;
    buf = f32_buffer(NULL, "probabilities", 2, shape, probs);
    run_refused(c8, &out, buf, INFERD_EINVAL, "score 3 (green) is NaN");
    inferd_buffer_unref(buf);
    finish(c8, &out);
}

/* ---- segment_defects --------------------------------------------------------- */

#define SH 48
#define SW 60

/* Two blobs (36 px of 0.6; 20 px alternating 0.9 and 0.7), a diagonal line
 * of 12 px (8-connected, not 4-connected), a 4 px speck (under minArea), a
 * pixel exactly at the threshold (background). */
static void make_mask(float *m)
{
    for (int i = 0; i < SH * SW; i++)
        m[i] = 0.1f;
    for (int i = 5; i <= 10; i++)
        for (int j = 40; j <= 45; j++)
            put(m, SW, i, j, 0.6f);
    for (int i = 20; i <= 23; i++)
        for (int j = 5; j <= 9; j++)
            put(m, SW, i, j, (i + j) % 2 ? 0.9f : 0.7f);
    put(m, SW, 24, 5, 0.5f);
    for (int k = 0; k < 12; k++)
        put(m, SW, 30 + k, 20 + k, 1.0f);
    for (int i = 44; i <= 45; i++)
        for (int j = 50; j <= 51; j++)
            put(m, SW, i, j, 0.95f);
}

static void expect_box(const inferd_value *o, double x0, double y0, double x1, double y1,
                       int64_t area, double score)
{
    assert_near(num(o, "x0"), x0, 1e-9);
    assert_near(num(o, "y0"), y0, 1e-9);
    assert_near(num(o, "x1"), x1, 1e-9);
    assert_near(num(o, "y1"), y1, 1e-9);
    assert_int_equal(integer(o, "area"), area);
    assert_near(num(o, "score"), score, 1e-9);
}

static void segment_components(void **state)
{
    static float m[SH * SW];
    make_mask(m);
    /* original -> crop (10, 20) -> resize by 0.5: x = 2u + 10, y = 2v + 20. */
    inferd_buffer *frame = inferd_buffer_new();
    add_transform(frame, "crop", "{\"type\":\"crop\",\"x\":10,\"y\":20,\"width\":120,"
                                 "\"height\":96}");
    add_transform(frame, "resize", "{\"type\":\"resize\",\"scale_x\":0.5,\"scale_y\":0.5,"
                                   "\"pad_x\":0,\"pad_y\":0}");
    int64_t shape[] = {1, 1, SH, SW};
    inferd_buffer *buf = f32_buffer(frame, "mask", 4, shape, m);
    pushed out = {0};
    inferd_instance *s8 = element("segment_defects", "s8", "{\"maskOutput\": true}", &out);
    const inferd_value *r = run_ok(s8, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 3);
    const inferd_value *objs = inferd_value_object_get(r, "objects");
    assert_int_equal(inferd_value_array_len(objs), 3);
    /* Largest first; boxes are continuous: pixels x0..x1 are [x0, x1+1). */
    expect_box(inferd_value_array_get(objs, 0), 90, 30, 102, 42, 36, 0.6f);
    expect_box(inferd_value_array_get(objs, 1), 20, 60, 30, 68, 20,
               ((double)0.9f + (double)0.7f) / 2);
    expect_box(inferd_value_array_get(objs, 2), 50, 80, 74, 104, 12, 1.0);

    /* The thresholded mask, in the model's output space. */
    inferd_meta mm;
    assert_true(inferd_buffer_find_meta(buf, "s8", "metadata/semanticseg", &mm));
    assert_non_null(mm.image);
    assert_int_equal(mm.image->format, INFERD_PIXEL_GRAY8);
    assert_int_equal(mm.image->width, SW);
    assert_int_equal(mm.image->height, SH);
    size_t on = 0;
    for (uint32_t y = 0; y < SH; y++)
        for (uint32_t x = 0; x < SW; x++) {
            uint8_t v = mm.image->data[y * mm.image->stride + x];
            assert_true(v == 0 || v == 255);
            on += v == 255;
        }
    assert_int_equal(on, 36 + 20 + 12 + 4);
    assert_int_equal(mm.image->data[24 * mm.image->stride + 5], 0);
    assert_int_equal(mm.image->data[5 * mm.image->stride + 40], 255);

    /* 4-connected: the line falls apart into single pixels, all dropped. */
    inferd_instance *s4 = element("segment_defects", "s4", "{\"connectivity\": \"4\"}", &out);
    r = run_ok(s4, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 2);
    objs = inferd_value_object_get(r, "objects");
    assert_int_equal(integer(inferd_value_array_get(objs, 0), "area"), 36);
    assert_int_equal(integer(inferd_value_array_get(objs, 1), "area"), 20);
    assert_false(inferd_buffer_find_meta(buf, "s4", "metadata/semanticseg", NULL));

    /* minArea 1: the speck and the 12 pixels of the line count too. */
    inferd_instance *all = element("segment_defects", "all",
                                   "{\"connectivity\": \"4\", \"minArea\": 1}", &out);
    r = run_ok(all, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 2 + 1 + 12);
    objs = inferd_value_object_get(r, "objects");
    expect_box(inferd_value_array_get(objs, 2), 110, 108, 114, 112, 4, 0.95f);
    expect_box(inferd_value_array_get(objs, 3), 50, 80, 52, 82, 1, 1.0);

    /* A higher threshold keeps only the bright pixels (blob A's 0.9s are
     * diagonal neighbours: one 8-connected region of 10). */
    inferd_instance *hi = element("segment_defects", "hi", "{\"threshold\": 0.8}", &out);
    r = run_ok(hi, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 2);
    objs = inferd_value_object_get(r, "objects");
    expect_box(inferd_value_array_get(objs, 0), 50, 80, 74, 104, 12, 1.0);
    expect_box(inferd_value_array_get(objs, 1), 20, 60, 30, 68, 10, 0.9f);

    finish(s8, &out);
    finish(s4, &out);
    finish(all, &out);
    finish(hi, &out);
    inferd_buffer_unref(buf);
    inferd_buffer_unref(frame);
}

/* An empty mask gives no object; a mask with no transform stays in its own
 * pixels. */
static void segment_empty_and_untransformed(void **state)
{
    float m[4 * 5] = {0};
    int64_t shape[] = {4, 5};
    inferd_buffer *buf = f32_buffer(NULL, NULL, 2, shape, m);
    pushed out = {0};
    inferd_instance *s = element("segment_defects", "s", "{\"minArea\": 2}", &out);
    const inferd_value *r = run_ok(s, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 0);
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(r, "objects")), 0);
    inferd_buffer_unref(buf);
    m[1 * 5 + 3] = m[2 * 5 + 3] = 1; /* touching the right and bottom edges */
    m[3 * 5 + 4] = 1;
    buf = f32_buffer(NULL, NULL, 2, shape, m);
    r = run_ok(s, &out, buf, "metadata/object");
    assert_int_equal(integer(r, "count"), 1);
    expect_box(inferd_value_array_get(inferd_value_object_get(r, "objects"), 0), 3, 1, 5, 4, 3,
               1.0);
    inferd_buffer_unref(buf);
    finish(s, &out);
}

/* ---- refusals common to all three ------------------------------------------------ */

static void bad_inputs(void **state)
{
    pushed out = {0};
    inferd_instance *dc = element("density_count", "dc", NULL, &out);
    inferd_instance *sd = element("segment_defects", "sd", NULL, &out);
    inferd_instance *named = element("density_count", "named", "{\"tensorName\": \"nope\"}",
                                     &out);
    inferd_instance *elems[] = {dc, sd};

    /* Not tensors: an encoded image; a buffer with no payload. */
    inferd_buffer *jpeg = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_value(jpeg, "image/jpeg", inferd_value_bytes("\xff\xd8",
                                                                                     2), NULL),
                     INFERD_OK);
    inferd_buffer *empty = inferd_buffer_new();
    for (size_t i = 0; i < 2; i++) {
        run_refused(elems[i], &out, jpeg, INFERD_ETYPE,
                    "expects a tensor payload (metadata/tensor, a model's output), got "
                    "image/jpeg");
        run_refused(elems[i], &out, empty, INFERD_ETYPE, "got a buffer with no payload");
    }
    inferd_buffer_unref(jpeg);
    inferd_buffer_unref(empty);

    float data[2 * 2 * 4 * 4] = {0};
    /* Rank 5 and rank 1. */
    int64_t r5[] = {1, 1, 1, 4, 4};
    inferd_buffer *buf = f32_buffer(NULL, "density", 5, r5, data);
    run_refused(dc, &out, buf, INFERD_EINVAL,
                "tensor 'density' has shape [1,1,1,4,4] (rank 5): expects rank 2 to 4");
    inferd_buffer_unref(buf);
    int64_t r1[] = {16};
    buf = f32_buffer(NULL, "mask", 1, r1, data);
    run_refused(sd, &out, buf, INFERD_EINVAL, "tensor 'mask' has shape [16] (rank 1)");
    inferd_buffer_unref(buf);
    /* Two channels. */
    int64_t c2[] = {1, 2, 4, 4};
    buf = f32_buffer(NULL, "density", 4, c2, data);
    run_refused(dc, &out, buf, INFERD_EINVAL, "expects one channel ([N,1,H,W]), got 2");
    inferd_buffer_unref(buf);
    /* A batch. */
    int64_t n2[] = {2, 1, 4, 4};
    buf = f32_buffer(NULL, "density", 4, n2, data);
    for (size_t i = 0; i < 2; i++)
        run_refused(elems[i], &out, buf, INFERD_EUNSUPPORTED,
                    "has shape [2,1,4,4]: a batch of 2 items; this element handles one item "
                    "per buffer (N = 1)");
    inferd_buffer_unref(buf);
    /* An empty plane. */
    int64_t e0[] = {1, 1, 0, 4};
    buf = f32_buffer(NULL, "density", 4, e0, data);
    run_refused(dc, &out, buf, INFERD_EINVAL, "the plane is empty");
    inferd_buffer_unref(buf);
    /* No tensor of that name. */
    int64_t ok[] = {1, 1, 4, 4};
    buf = f32_buffer(NULL, "density", 4, ok, data);
    run_refused(named, &out, buf, INFERD_ENOTFOUND,
                "tensorName 'nope': no tensor of that name in the input (it has: density)");
    inferd_buffer_unref(buf);
    /* An integer tensor. */
    int32_t ints[16] = {0};
    buf = tensor_buffer(NULL, "density", INFERD_DTYPE_INT32, 4, ok, ints);
    run_refused(dc, &out, buf, INFERD_EUNSUPPORTED,
                "tensor 'density' holds INT32: expects FP32, FP64 or FP16");
    inferd_buffer_unref(buf);
    /* NaN in a density map. */
    data[1 * 4 + 2] = NAN;
    buf = f32_buffer(NULL, "density", 4, ok, data);
    run_refused(dc, &out, buf, INFERD_EINVAL,
                "tensor 'density': the density map holds NaN at row 1, column 2");
    inferd_buffer_unref(buf);
    data[1 * 4 + 2] = 0;

    /* Bad transforms: an unknown type, a zero scale, a missing field. */
    static const struct {
        const char *json;
        inferd_status code;
        const char *needle;
    } xf[] = {
        {"{\"type\":\"rotate\",\"angle\":90}", INFERD_EUNSUPPORTED,
         "metadata/transform of 'geo': unknown type 'rotate' (known: crop, resize)"},
        {"{\"type\":\"resize\",\"scale_x\":0,\"scale_y\":1}", INFERD_EINVAL,
         "a zero scale (scale_x 0, scale_y 1) cannot be inverted"},
        {"{\"type\":\"crop\",\"x\":5}", INFERD_EINVAL,
         "metadata/transform of 'geo' (crop): 'y' is missing"},
        {"{\"type\":\"crop\",\"x\":5,\"y\":\"7\"}", INFERD_EINVAL, "'y' is not a number"},
        {"[1,2]", INFERD_EINVAL, "metadata/transform of 'geo' is not an object"},
    };
    data[5] = 1.0f;
    for (size_t i = 0; i < sizeof xf / sizeof xf[0]; i++) {
        inferd_buffer *frame = inferd_buffer_new();
        add_transform(frame, "geo", xf[i].json);
        buf = f32_buffer(frame, "density", 4, ok, data);
        for (size_t e = 0; e < 2; e++)
            run_refused(elems[e], &out, buf, xf[i].code, xf[i].needle);
        inferd_buffer_unref(buf);
        inferd_buffer_unref(frame);
    }
    /* T2 never maps a point: a bad transform does not matter to it. */
    inferd_instance *t2 = element("density_count", "t2", "{\"target\": \"T2\"}", &out);
    inferd_buffer *frame = inferd_buffer_new();
    add_transform(frame, "geo", xf[0].json);
    buf = f32_buffer(frame, "density", 4, ok, data);
    const inferd_value *r = run_ok(t2, &out, buf, "metadata/points");
    assert_int_equal(integer(r, "count"), 1);
    inferd_buffer_unref(buf);
    inferd_buffer_unref(frame);

    /* Property values outside what is declared are refused by the host. */
    element_refused("segment_defects", "{\"connectivity\": \"6\"}", INFERD_EINVAL,
                    "one of 4, 8");
    element_refused("density_count", "{\"target\": \"T3\"}", INFERD_EINVAL, "one of T1, T2");
    element_refused("density_count", "{\"stride\": 0}", INFERD_ERANGE, "property 'stride'");

    finish(dc, &out);
    finish(sd, &out);
    finish(named, &out);
    finish(t2, &out);
}

static void plugin_is_built_in(void **state)
{
    const inferd_plugin_info *owner = NULL;
    static const char *names[] = {"density_count", "classify_topk", "segment_defects"};
    for (size_t i = 0; i < 3; i++) {
        const inferd_component *c = inferd_registry_find(reg, names[i], &owner);
        assert_non_null(c);
        assert_int_equal(c->kind, INFERD_KIND_ELEMENT);
        assert_string_equal(owner->name, "postprocess");
        assert_non_null(c->description);
        assert_string_equal(c->inputs[0].formats[0], "metadata/tensor");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plugin_is_built_in),
        cmocka_unit_test(density_points_mapped_back),
        cmocka_unit_test(density_plateaus),
        cmocka_unit_test(density_count_and_rounding),
        cmocka_unit_test(density_other_dtypes),
        cmocka_unit_test(classify_inline_labels),
        cmocka_unit_test(classify_labels_file_softmax),
        cmocka_unit_test(classify_refusals),
        cmocka_unit_test(segment_components),
        cmocka_unit_test(segment_empty_and_untransformed),
        cmocka_unit_test(bad_inputs),
    };
    return cmocka_run_group_tests(tests, load_builtins, free_registry);
}
