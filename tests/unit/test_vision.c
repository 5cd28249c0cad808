/* test_vision.c: the built-in vision plugin (plugins/builtin/vision):
 * image_decoder, image_resize, image_crop and image_to_tensor, loaded as the
 * daemon loads them (the registry with a default config, which loads every
 * plugin in <libdir>/inferd/builtin) and driven through element instances
 * with a push collector. Every image is made here, in memory; results are
 * checked exactly (JPEG within a tolerance). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/registry.h"

static inferd_registry *reg;

static int load_builtins(void **state)
{
    reg = support_builtins();
    return reg ? 0 : -1;
}

static int unload_builtins(void **state)
{
    inferd_registry_free(reg);
    reg = NULL;
    return 0;
}

/* ---- instances and the push collector --------------------------------------- */

typedef struct sink {
    inferd_buffer *buf; /* the last buffer pushed (owned) */
    size_t port;
    int count;
} sink;

static inferd_status collect(void *ctx, inferd_instance *from, size_t port, inferd_buffer *buf,
                             inferd_error *err)
{
    sink *s = ctx;
    inferd_buffer_unref(s->buf);
    s->buf = buf;
    s->port = port;
    s->count++;
    return INFERD_OK;
}

typedef struct element {
    inferd_instance *inst;
    sink out;
} element;

static element *make(const char *component, const char *name, const char *json)
{
    inferd_value *props = NULL;
    if (json)
        assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &props, NULL), INFERD_OK);
    element *e = calloc(1, sizeof *e);
    assert_non_null(e);
    inferd_error err = {0};
    inferd_status st = inferd_instance_create(reg, component, name, props, &e->inst, &err);
    inferd_value_free(props);
    if (st != INFERD_OK)
        fail_msg("creating %s %s: %s", component, name, err.message);
    inferd_instance_set_push(e->inst, collect, &e->out);
    return e;
}

static void destroy(element *e)
{
    inferd_instance_destroy(e->inst);
    inferd_buffer_unref(e->out.buf);
    free(e);
}

static void make_fails(const char *component, const char *json, inferd_status code,
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

/* Processes in (borrowed) and returns what was pushed on port 0 (owned). */
static inferd_buffer *run(element *e, inferd_buffer *in)
{
    inferd_error err = {0};
    int before = e->out.count;
    inferd_status st = inferd_instance_process(e->inst, &in, 1, &err);
    if (st != INFERD_OK)
        fail_msg("process: %s", err.message);
    assert_int_equal(e->out.count, before + 1);
    assert_int_equal(e->out.port, 0);
    inferd_buffer *out = e->out.buf;
    e->out.buf = NULL;
    return out;
}

static void run_fails(element *e, inferd_buffer *in, inferd_status code, const char *needle)
{
    inferd_error err = {0};
    int before = e->out.count;
    inferd_status st = inferd_instance_process(e->inst, &in, 1, &err);
    if (st != code)
        fail_msg("process: got %s: %s", inferd_status_name(st), err.message);
    assert_int_equal(err.code, code);
    assert_contains(err.message, needle);
    assert_int_equal(e->out.count, before); /* nothing was pushed */
}

/* ---- images and buffers ------------------------------------------------------ */

static inferd_image *new_image(inferd_pixel_format fmt, uint32_t w, uint32_t h)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(fmt, w, h, &img, NULL), INFERD_OK);
    return img;
}

/* Every byte depends on (x, y, channel), so a swap or a shift shows. */
static uint8_t pattern(uint32_t x, uint32_t y, size_t c)
{
    return (uint8_t)(x * 7 + y * 13 + c * 61);
}

static inferd_image *pattern_image(inferd_pixel_format fmt, uint32_t w, uint32_t h)
{
    inferd_image *img = new_image(fmt, w, h);
    size_t ch = inferd_pixel_channels(fmt);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (size_t c = 0; c < ch; c++)
                img->data[y * img->stride + x * ch + c] = pattern(x, y, c);
    return img;
}

/* A smooth picture (JPEG keeps it well). */
static inferd_image *smooth_image(uint32_t w, uint32_t h)
{
    inferd_image *img = new_image(INFERD_PIXEL_RGB8, w, h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = img->data + y * img->stride + x * 3;
            p[0] = (uint8_t)(40 + x * 160 / w);
            p[1] = (uint8_t)(200 - y * 150 / h);
            p[2] = (uint8_t)(90 + (x + y) * 60 / (w + h));
        }
    return img;
}

static uint8_t px(const inferd_image *img, uint32_t x, uint32_t y, size_t c)
{
    assert_true(x < img->width && y < img->height);
    return img->data[y * img->stride + x * inferd_pixel_channels(img->format) + c];
}

static inferd_buffer *image_buffer(inferd_image *img)
{
    inferd_buffer *buf = inferd_buffer_new();
    assert_non_null(buf);
    inferd_buffer_set_frame(buf, 42, 3, 1000);
    assert_int_equal(inferd_buffer_set_image(buf, img, NULL), INFERD_OK);
    return buf;
}

static inferd_buffer *bytes_buffer(const char *format, const void *data, size_t len)
{
    inferd_buffer *buf = inferd_buffer_new();
    assert_non_null(buf);
    inferd_buffer_set_frame(buf, 42, 3, 1000);
    assert_int_equal(inferd_buffer_set_value(buf, format, inferd_value_bytes(data, len), NULL),
                     INFERD_OK);
    return buf;
}

static inferd_buffer *encoded_buffer(const inferd_image *img, inferd_image_codec codec,
                                     int quality)
{
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(inferd_image_encode(img, codec, quality, &data, &len, NULL), INFERD_OK);
    inferd_buffer *buf = bytes_buffer(inferd_image_codec_mime(codec), data, len);
    free(data);
    return buf;
}

static const inferd_value *find_meta(const inferd_buffer *buf, const char *producer,
                                     const char *format)
{
    inferd_meta m;
    if (!inferd_buffer_find_meta(buf, producer, format, &m))
        fail_msg("no %s entry of %s", format, producer);
    assert_non_null(m.value);
    return m.value;
}

static int64_t meta_int(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!inferd_value_is(v, INFERD_VALUE_INT))
        fail_msg("key %s is not an int", key);
    return inferd_value_int_or(v, -1);
}

static double meta_double(const inferd_value *obj, const char *key)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!v)
        fail_msg("no key %s", key);
    return inferd_value_double_or(v, NAN);
}

static const char *meta_string(const inferd_value *obj, const char *key)
{
    return inferd_value_string_or(inferd_value_object_get(obj, key), "(none)");
}

/* ---- the plugin --------------------------------------------------------------- */

static void plugin_is_built_in(void **state)
{
    const inferd_plugin_info *p = inferd_registry_find_plugin(reg, "vision");
    assert_non_null(p);
    assert_contains(p->path, "inferd/builtin/vision.so");
    const char *names[] = {"image_decoder", "image_resize", "image_crop", "image_to_tensor"};
    for (size_t i = 0; i < 4; i++) {
        const inferd_plugin_info *owner = NULL;
        const inferd_component *c = inferd_registry_find(reg, names[i], &owner);
        assert_non_null(c);
        assert_ptr_equal(owner, p);
        assert_int_equal(c->kind, INFERD_KIND_ELEMENT);
        assert_non_null(c->description);
    }
    /* What `inferd plugin inspect` shows: declared properties with ranges. */
    inferd_value *d = inferd_describe_component(inferd_registry_find(reg, "image_resize", NULL));
    char *json = NULL;
    assert_int_equal(inferd_value_to_json(d, 0, &json, NULL, NULL), INFERD_OK);
    assert_contains(json, "\"name\":\"resizeWidth\",\"type\":\"int\"");
    assert_contains(json, "\"min\":0,\"max\":16384");
    assert_contains(json, "\"values\":[\"bilinear\",\"nearest\"]");
    free(json);
    inferd_value_free(d);
}

/* ---- image_decoder ------------------------------------------------------------- */

static void decoder_png_is_exact_in_every_format(void **state)
{
    inferd_image *src = pattern_image(INFERD_PIXEL_RGB8, 7, 5);
    inferd_buffer *in = encoded_buffer(src, INFERD_CODEC_PNG, 0);

    element *rgb = make("image_decoder", "d_rgb", NULL);
    inferd_buffer *out = run(rgb, in);
    assert_string_equal(inferd_buffer_format(out), "image/rgb");
    assert_ptr_equal(inferd_buffer_parent(out), in);
    assert_int_equal(inferd_buffer_frame_id(out), 42);
    assert_int_equal(inferd_buffer_stream_id(out), 3);
    const inferd_image *img = inferd_buffer_image(out);
    assert_int_equal(img->width, 7);
    assert_int_equal(img->height, 5);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 7; x++)
            for (size_t c = 0; c < 3; c++)
                assert_int_equal(px(img, x, y, c), pattern(x, y, c));
    const inferd_value *m = find_meta(out, "d_rgb", "metadata/attribute");
    assert_string_equal(meta_string(m, "codec"), "png");
    assert_int_equal(meta_int(m, "width"), 7);
    assert_int_equal(meta_int(m, "height"), 5);
    assert_string_equal(meta_string(m, "format"), "rgb");
    inferd_buffer_unref(out);
    destroy(rgb);

    element *bgr = make("image_decoder", "d_bgr", "{\"format\": \"bgr\"}");
    out = run(bgr, in);
    assert_string_equal(inferd_buffer_format(out), "image/bgr");
    img = inferd_buffer_image(out);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 7; x++)
            for (size_t c = 0; c < 3; c++)
                assert_int_equal(px(img, x, y, c), pattern(x, y, 2 - c));
    inferd_buffer_unref(out);
    destroy(bgr);

    element *gray = make("image_decoder", "d_gray", "{\"format\": \"gray\"}");
    out = run(gray, in);
    assert_string_equal(inferd_buffer_format(out), "image/gray");
    img = inferd_buffer_image(out);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 7; x++) {
            /* BT.601 luma in 16-bit fixed point (image_codec.c). */
            unsigned r = pattern(x, y, 0), g = pattern(x, y, 1), b = pattern(x, y, 2);
            assert_int_equal(px(img, x, y, 0),
                             (19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
        }
    inferd_buffer_unref(out);
    destroy(gray);

    inferd_buffer_unref(in);
    inferd_image_free(src);
}

static void decoder_jpeg_within_tolerance(void **state)
{
    inferd_image *src = smooth_image(64, 48);
    inferd_buffer *in = encoded_buffer(src, INFERD_CODEC_JPEG, 95);

    element *rgb = make("image_decoder", "d_rgb", "{\"format\": \"rgb\"}");
    element *bgr = make("image_decoder", "d_bgr", "{\"format\": \"bgr\"}");
    inferd_buffer *out_rgb = run(rgb, in), *out_bgr = run(bgr, in);
    const inferd_image *a = inferd_buffer_image(out_rgb), *b = inferd_buffer_image(out_bgr);
    assert_string_equal(meta_string(find_meta(out_rgb, "d_rgb", "metadata/attribute"), "codec"),
                        "jpeg");
    assert_int_equal(a->width, 64);
    assert_int_equal(a->height, 48);
    int max_diff = 0;
    double sum = 0;
    for (uint32_t y = 0; y < 48; y++)
        for (uint32_t x = 0; x < 64; x++)
            for (size_t c = 0; c < 3; c++) {
                int d = abs((int)px(a, x, y, c) - (int)px(src, x, y, c));
                max_diff = d > max_diff ? d : max_diff;
                sum += d;
                /* The same decode, the other order. */
                assert_int_equal(px(b, x, y, 2 - c), px(a, x, y, c));
            }
    if (max_diff > 12 || sum / (64 * 48 * 3) > 2.0)
        fail_msg("JPEG decode too far from the source: max %d, mean %.2f", max_diff,
                 sum / (64 * 48 * 3));
    inferd_buffer_unref(out_rgb);
    inferd_buffer_unref(out_bgr);
    destroy(rgb);
    destroy(bgr);

    element *gray = make("image_decoder", "d_gray", "{\"format\": \"gray\"}");
    inferd_buffer *out = run(gray, in);
    const inferd_image *g = inferd_buffer_image(out);
    assert_int_equal(g->format, INFERD_PIXEL_GRAY8);
    for (uint32_t y = 0; y < 48; y++)
        for (uint32_t x = 0; x < 64; x++) {
            double luma = 0.299 * px(src, x, y, 0) + 0.587 * px(src, x, y, 1) +
                          0.114 * px(src, x, y, 2);
            if (fabs(px(g, x, y, 0) - luma) > 8)
                fail_msg("gray at %u,%u: %u, expected about %.1f", x, y, px(g, x, y, 0), luma);
        }
    inferd_buffer_unref(out);
    destroy(gray);
    inferd_buffer_unref(in);
    inferd_image_free(src);
}

static void decoder_refuses_bad_input(void **state)
{
    element *d = make("image_decoder", "d1", "{\"maxPixels\": 100}");

    const char garbage[] = "this is not an image at all";
    inferd_buffer *in = bytes_buffer("image/jpeg", garbage, sizeof garbage);
    run_fails(d, in, INFERD_EUNSUPPORTED,
              "element d1 (image_decoder, plugin vision 1.0.0): process failed: decoding "
              "image/jpeg (28 bytes): not a JPEG or PNG image");
    inferd_buffer_unref(in);

    /* Truncated: a real PNG header, then nothing. */
    inferd_image *small = pattern_image(INFERD_PIXEL_RGB8, 8, 8);
    void *png = NULL;
    size_t len = 0;
    assert_int_equal(inferd_image_encode(small, INFERD_CODEC_PNG, 0, &png, &len, NULL), INFERD_OK);
    in = bytes_buffer("image/png", png, 40);
    inferd_error err = {0};
    assert_int_not_equal(inferd_instance_process(d->inst, &in, 1, &err), INFERD_OK);
    assert_contains(err.message, "decoding image/png (40 bytes)");
    inferd_buffer_unref(in);
    free(png);
    inferd_image_free(small);

    /* Over maxPixels: refused from the header. */
    inferd_image *big = pattern_image(INFERD_PIXEL_RGB8, 20, 10);
    in = encoded_buffer(big, INFERD_CODEC_PNG, 0);
    run_fails(d, in, INFERD_ERANGE, "image 20x10 (200 pixels) exceeds the limit of 100 pixels");
    inferd_buffer_unref(in);
    in = encoded_buffer(big, INFERD_CODEC_JPEG, 90);
    run_fails(d, in, INFERD_ERANGE, "exceeds the limit of 100 pixels");
    inferd_buffer_unref(in);

    /* Not bytes at all. */
    in = image_buffer(big);
    run_fails(d, in, INFERD_ETYPE, "expected image/jpeg or image/png bytes, got image/rgb image");
    inferd_buffer_unref(in);
    in = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_value(in, "image/jpeg", inferd_value_string("abc"), NULL),
                     INFERD_OK);
    run_fails(d, in, INFERD_ETYPE, "got image/jpeg string");
    inferd_buffer_unref(in);
    in = inferd_buffer_new();
    run_fails(d, in, INFERD_ETYPE, "got no payload");
    inferd_error e2 = {0};
    assert_int_equal(inferd_instance_process(d->inst, NULL, 0, &e2), INFERD_EINVAL);
    assert_contains(e2.message, "expected one input buffer, got 0");
    inferd_buffer_unref(in);
    destroy(d);

    make_fails("image_decoder", "{\"format\": \"yuv\"}", INFERD_EINVAL, "one of rgb, bgr, gray");
    make_fails("image_decoder", "{\"maxPixels\": 0}", INFERD_ERANGE, "property 'maxPixels'");
}

/* ---- image_resize ---------------------------------------------------------------- */

static inferd_image *gray_2x2(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    inferd_image *img = new_image(INFERD_PIXEL_GRAY8, 2, 2);
    img->data[0] = a, img->data[1] = b;
    img->data[img->stride] = c, img->data[img->stride + 1] = d;
    return img;
}

static void resize_bilinear_known_values(void **state)
{
    /* 2x2 -> 4x4 with half-pixel centres: output u samples (u + 0.5) / 2 - 0.5,
     * i.e. -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1). */
    inferd_buffer *in = image_buffer(gray_2x2(0, 100, 200, 40));
    element *r = make("image_resize", "r1", "{\"resizeWidth\": 4, \"resizeHeight\": \"4\"}");
    inferd_buffer *out = run(r, in);
    const inferd_image *img = inferd_buffer_image(out);
    assert_int_equal(img->width, 4);
    assert_int_equal(img->height, 4);
    static const uint8_t want[4][4] = {
        {0, 25, 75, 100},
        {50, 59, 76, 85},   /* 0.75 * row 0 + 0.25 * row 1, rounded */
        {150, 126, 79, 55}, /* 0.25 * row 0 + 0.75 * row 1 */
        {200, 160, 80, 40},
    };
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 4; x++)
            if (px(img, x, y, 0) != want[y][x])
                fail_msg("at %u,%u: %u, want %u", x, y, px(img, x, y, 0), want[y][x]);
    const inferd_value *t = find_meta(out, "r1", "metadata/transform");
    assert_string_equal(meta_string(t, "type"), "resize");
    assert_true(meta_double(t, "scale_x") == 2.0);
    assert_true(meta_double(t, "scale_y") == 2.0);
    assert_int_equal(meta_int(t, "pad_x"), 0);
    assert_int_equal(meta_int(t, "pad_y"), 0);
    assert_int_equal(meta_int(t, "src_width"), 2);
    assert_int_equal(meta_int(t, "src_height"), 2);
    assert_int_equal(inferd_buffer_frame_id(out), 42);
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);
    destroy(r);
}

/* A double-precision reference for bilinear with half-pixel centres. */
static double ref_bilinear(const inferd_image *src, double sx, double sy, size_t c)
{
    if (sx < 0)
        sx = 0;
    if (sy < 0)
        sy = 0;
    uint32_t x0 = (uint32_t)sx, y0 = (uint32_t)sy;
    if (x0 >= src->width - 1)
        x0 = src->width - 1, sx = x0;
    if (y0 >= src->height - 1)
        y0 = src->height - 1, sy = y0;
    uint32_t x1 = x0 + (x0 < src->width - 1), y1 = y0 + (y0 < src->height - 1);
    double fx = sx - x0, fy = sy - y0;
    double top = px(src, x0, y0, c) * (1 - fx) + px(src, x1, y0, c) * fx;
    double bot = px(src, x0, y1, c) * (1 - fx) + px(src, x1, y1, c) * fx;
    return top * (1 - fy) + bot * fy;
}

static void resize_rgb_matches_reference(void **state)
{
    /* Down in x, up in y, through a padded stride; 11-bit weights stay
     * within one level of the exact result. */
    inferd_image *pix = pattern_image(INFERD_PIXEL_RGB8, 37, 11);
    uint8_t *padded = calloc(1, 130 * 11);
    for (uint32_t y = 0; y < 11; y++)
        memcpy(padded + y * 130, pix->data + y * pix->stride, 37 * 3);
    inferd_image *src = NULL;
    assert_int_equal(inferd_image_wrap(INFERD_PIXEL_RGB8, 37, 11, 130, padded, NULL, NULL, &src,
                                       NULL), INFERD_OK);
    inferd_buffer *in = image_buffer(src);
    element *r = make("image_resize", "r1", "{\"resizeWidth\": 16, \"resizeHeight\": 29}");
    inferd_buffer *out = run(r, in);
    const inferd_image *img = inferd_buffer_image(out);
    assert_int_equal(img->format, INFERD_PIXEL_RGB8);
    assert_int_equal(img->width, 16);
    assert_int_equal(img->height, 29);
    for (uint32_t y = 0; y < 29; y++)
        for (uint32_t x = 0; x < 16; x++)
            for (size_t c = 0; c < 3; c++) {
                double want = ref_bilinear(inferd_buffer_image(in), (x + 0.5) * 37 / 16 - 0.5,
                                           (y + 0.5) * 11 / 29 - 0.5, c);
                if (fabs(px(img, x, y, c) - want) > 1.0)
                    fail_msg("at %u,%u,%zu: %u, want %.2f", x, y, c, px(img, x, y, c), want);
            }
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);
    inferd_image_free(pix);
    free(padded);
    destroy(r);
}

static void resize_nearest(void **state)
{
    inferd_buffer *in = image_buffer(gray_2x2(10, 20, 30, 40));
    element *r = make("image_resize", "r1",
                      "{\"resizeWidth\": 4, \"resizeHeight\": 4, \"interpolation\": \"nearest\"}");
    inferd_buffer *out = run(r, in);
    const inferd_image *img = inferd_buffer_image(out);
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 4; x++)
            assert_int_equal(px(img, x, y, 0), 10 + 10 * (x / 2) + 20 * (y / 2));
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);
    destroy(r);

    /* 6x6 -> 3x2: columns sample 1, 3, 5; rows 1.5 -> 1 and 4.5 -> 4. */
    in = image_buffer(pattern_image(INFERD_PIXEL_BGR8, 6, 6));
    r = make("image_resize", "r2",
             "{\"resizeWidth\": 3, \"resizeHeight\": 2, \"interpolation\": \"nearest\"}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_string_equal(inferd_buffer_format(out), "image/bgr");
    const uint32_t xs[3] = {1, 3, 5}, ys[2] = {1, 4};
    for (uint32_t y = 0; y < 2; y++)
        for (uint32_t x = 0; x < 3; x++)
            for (size_t c = 0; c < 3; c++)
                assert_int_equal(px(img, x, y, c), pattern(xs[x], ys[y], c));
    const inferd_value *t = find_meta(out, "r2", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 0.5);
    assert_true(fabs(meta_double(t, "scale_y") - 1.0 / 3) < 1e-12);
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);
    destroy(r);
}

static void resize_keep_aspect_pads(void **state)
{
    /* 8x4 into 6x6: scale 0.75, a 6x3 image centred: 1 row of pad above, 2 below. */
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 8, 4));
    element *r = make("image_resize", "letterbox",
                      "{\"resizeWidth\": 6, \"resizeHeight\": 6, \"keepAspect\": true, "
                      "\"padValue\": 7}");
    inferd_buffer *out = run(r, in);
    const inferd_image *img = inferd_buffer_image(out);
    assert_int_equal(img->width, 6);
    assert_int_equal(img->height, 6);
    for (uint32_t x = 0; x < 6; x++)
        for (size_t c = 0; c < 3; c++) {
            assert_int_equal(px(img, x, 0, c), 7);
            assert_int_equal(px(img, x, 4, c), 7);
            assert_int_equal(px(img, x, 5, c), 7);
        }
    const inferd_value *t = find_meta(out, "letterbox", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 0.75);
    assert_true(meta_double(t, "scale_y") == 0.75);
    assert_int_equal(meta_int(t, "pad_x"), 0);
    assert_int_equal(meta_int(t, "pad_y"), 1);
    assert_int_equal(meta_int(t, "src_width"), 8);
    assert_int_equal(meta_int(t, "src_height"), 4);
    /* The inner rows are the resampled image: output (u, v) is input
     * ((u - pad_x) / sx, (v - pad_y) / sy), sampled at pixel centres. */
    const inferd_image *src = inferd_buffer_image(in);
    for (uint32_t v = 1; v < 4; v++)
        for (uint32_t u = 0; u < 6; u++)
            for (size_t c = 0; c < 3; c++) {
                double want = ref_bilinear(src, (u + 0.5) / 0.75 - 0.5, (v - 1 + 0.5) / 0.75 - 0.5,
                                           c);
                assert_true(fabs(px(img, u, v, c) - want) <= 1.0);
            }
    inferd_buffer_unref(out);
    destroy(r);

    /* Only a width with keepAspect: the height follows, nothing is padded. */
    r = make("image_resize", "r2", "{\"resizeWidth\": 4, \"keepAspect\": true}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_int_equal(img->width, 4);
    assert_int_equal(img->height, 2);
    t = find_meta(out, "r2", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 0.5);
    assert_true(meta_double(t, "scale_y") == 0.5);
    assert_int_equal(meta_int(t, "pad_x"), 0);
    inferd_buffer_unref(out);
    destroy(r);

    /* Without keepAspect, 0 keeps the source size in that dimension. */
    r = make("image_resize", "r3", "{\"resizeHeight\": 2}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_int_equal(img->width, 8);
    assert_int_equal(img->height, 2);
    inferd_buffer_unref(out);
    destroy(r);

    /* The same size: nothing resampled, the pixels are shared, the transform is there. */
    r = make("image_resize", "r4", "{\"resizeWidth\": 8, \"resizeHeight\": 4}");
    out = run(r, in);
    assert_ptr_equal(inferd_buffer_image(out)->data, src->data);
    t = find_meta(out, "r4", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 1.0);
    inferd_buffer_unref(out);
    destroy(r);
    inferd_buffer_unref(in);
}

/* The contract's modes in the element: top-left letterbox, limit with a
 * multiple, short side then centre crop; exact sizes and transforms. */
static void resize_contract_modes(void **state)
{
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 8, 4));
    element *r = make("image_resize", "tl",
                      "{\"resizeWidth\": 6, \"resizeHeight\": 6, \"keepAspect\": true, "
                      "\"padValue\": 7, \"padPosition\": \"topleft\"}");
    inferd_buffer *out = run(r, in);
    const inferd_image *img = inferd_buffer_image(out);
    for (uint32_t x = 0; x < 6; x++) /* the 6x3 image on top: rows 3..5 are pad */
        for (uint32_t y = 3; y < 6; y++)
            assert_int_equal(px(img, x, y, 1), 7);
    const inferd_value *t = find_meta(out, "tl", "metadata/transform");
    assert_int_equal(meta_int(t, "pad_x"), 0);
    assert_int_equal(meta_int(t, "pad_y"), 0);
    inferd_buffer_unref(out);
    destroy(r);

    /* 8x4, longer side at most 6 (factor 0.75: 6x3), each side a multiple of 4: 8x4. */
    r = make("image_resize", "lim", "{\"limit\": 6, \"multiple\": 4}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_int_equal(img->width, 8);
    assert_int_equal(img->height, 4);
    inferd_buffer_unref(out);
    destroy(r);
    r = make("image_resize", "lim2", "{\"multiple\": 3}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_int_equal(img->width, 9); /* 8 -> 9, 4 -> 3 */
    assert_int_equal(img->height, 3);
    t = find_meta(out, "lim2", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 9.0 / 8 && meta_double(t, "scale_y") == 0.75);
    inferd_buffer_unref(out);
    destroy(r);

    /* Short side 2 (factor 0.5: 4x2), then the centre 2x2: a crop, pad_x -1. */
    r = make("image_resize", "sc",
             "{\"shortSide\": 2, \"resizeWidth\": 2, \"resizeHeight\": 2}");
    out = run(r, in);
    img = inferd_buffer_image(out);
    assert_int_equal(img->width, 2);
    assert_int_equal(img->height, 2);
    t = find_meta(out, "sc", "metadata/transform");
    assert_true(meta_double(t, "scale_x") == 0.5);
    assert_int_equal(meta_int(t, "pad_x"), -1);
    assert_int_equal(meta_int(t, "pad_y"), 0);
    inferd_buffer_unref(out);
    destroy(r);
    inferd_buffer_unref(in);

    make_fails("image_resize", "{\"shortSide\": 4, \"resizeWidth\": 8, \"resizeHeight\": 2}",
               INFERD_EINVAL, "shortSide 4 takes the centre resizeWidth x resizeHeight");
    make_fails("image_resize", "{\"limit\": 2, \"multiple\": 32}", INFERD_EINVAL,
               "limit 2 is below multiple 32");
}

/* image_encoder: PNG decodes back to the same pixels; JPEG to nearly them;
 * its attribute says what it made. */
static void encoder_round_trips(void **state)
{
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 9, 7));
    const inferd_image *src = inferd_buffer_image(in);
    element *e = make("image_encoder", "enc", "{\"codec\": \"png\"}");
    inferd_buffer *out = run(e, in);
    assert_string_equal(inferd_buffer_format(out), "image/png");
    const void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(inferd_value_get_bytes(inferd_buffer_value(out), &bytes, &len, NULL),
                     INFERD_OK);
    inferd_image *back = NULL;
    assert_int_equal(inferd_image_decode(bytes, len, INFERD_PIXEL_RGB8, 0, &back, NULL),
                     INFERD_OK);
    for (uint32_t y = 0; y < 7; y++)
        assert_memory_equal(back->data + y * back->stride, src->data + y * src->stride, 9 * 3);
    inferd_image_free(back);
    const inferd_value *t = find_meta(out, "enc", "metadata/attribute");
    assert_int_equal(meta_int(t, "bytes"), (int64_t)len);
    assert_int_equal(meta_int(t, "width"), 9);
    inferd_buffer_unref(out);
    destroy(e);

    e = make("image_encoder", "jpg", "{\"quality\": 95}");
    out = run(e, in);
    assert_string_equal(inferd_buffer_format(out), "image/jpeg");
    assert_int_equal(inferd_value_get_bytes(inferd_buffer_value(out), &bytes, &len, NULL),
                     INFERD_OK);
    assert_int_equal(inferd_image_sniff(bytes, len), INFERD_CODEC_JPEG);
    inferd_buffer_unref(out);
    destroy(e);
    inferd_buffer_unref(in);

    make_fails("image_encoder", "{\"codec\": \"gif\"}", INFERD_EINVAL, "one of jpeg, png");
    make_fails("image_encoder", "{\"quality\": 0}", INFERD_ERANGE, "property 'quality'");
}

static void resize_refuses_bad_input(void **state)
{
    element *r = make("image_resize", "r1", "{\"resizeWidth\": 4}");
    const char jpeg[] = "\xff\xd8\xff\xe0 not really";
    inferd_buffer *in = bytes_buffer("image/jpeg", jpeg, sizeof jpeg);
    run_fails(r, in, INFERD_ETYPE,
              "element r1 (image_resize, plugin vision 1.0.0): process failed: expected an image "
              "payload, got image/jpeg bytes");
    inferd_buffer_unref(in);
    /* A pixel format the ports do not promise. */
    in = image_buffer(new_image(INFERD_PIXEL_RGBA8, 2, 2));
    run_fails(r, in, INFERD_EUNSUPPORTED, "expected an rgb, bgr or gray image, got rgba");
    inferd_buffer_unref(in);
    destroy(r);

    make_fails("image_resize", "{\"resizeWidth\": 20000}", INFERD_ERANGE,
               "element bad (image_resize): property 'resizeWidth'");
    make_fails("image_resize", "{\"interpolation\": \"cubic\"}", INFERD_EINVAL,
               "one of bilinear, nearest");
    make_fails("image_resize", "{\"padValue\": 256}", INFERD_ERANGE, "property 'padValue'");
    make_fails("image_resize", "{}", INFERD_EINVAL,
               "init failed: resizeWidth and resizeHeight are both 0");
}

static void expect_float(float got, double want)
{
    if (fabs(got - want) > 1e-6)
        fail_msg("got %.9g, want %.9g", got, want);
}

/* ---- image_crop -------------------------------------------------------------------- */

static void expect_crop(const inferd_buffer *out, const char *producer, const inferd_image *src,
                        uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    const inferd_image *img = inferd_buffer_image(out);
    assert_non_null(img);
    assert_int_equal(img->format, src->format);
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    size_t ch = inferd_pixel_channels(src->format);
    for (uint32_t v = 0; v < h; v++)
        for (uint32_t u = 0; u < w; u++)
            for (size_t c = 0; c < ch; c++)
                assert_int_equal(px(img, u, v, c), px(src, u + x, v + y, c));
    const inferd_value *t = find_meta(out, producer, "metadata/transform");
    assert_string_equal(meta_string(t, "type"), "crop");
    assert_int_equal(meta_int(t, "x"), x);
    assert_int_equal(meta_int(t, "y"), y);
    assert_int_equal(meta_int(t, "width"), w);
    assert_int_equal(meta_int(t, "height"), h);
}

static void crop_by_properties_and_clamping(void **state)
{
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 10, 8));
    const inferd_image *src = inferd_buffer_image(in);

    element *c = make("image_crop", "c1",
                      "{\"x\": 2, \"y\": 3, \"width\": 4, \"height\": \"2\"}");
    inferd_buffer *out = run(c, in);
    expect_crop(out, "c1", src, 2, 3, 4, 2);
    /* A view of the input's pixels, not a copy. */
    assert_ptr_equal(inferd_buffer_image(out)->data, src->data + 3 * src->stride + 2 * 3);
    assert_int_equal(inferd_buffer_image(out)->stride, src->stride);
    assert_int_equal(inferd_buffer_frame_id(out), 42);
    /* The view's stride is honoured downstream. */
    element *t = make("image_to_tensor", "t", "{\"dtype\": \"uint8\", \"layout\": \"nhwc\"}");
    element *t2 = make("image_to_tensor", "t2", "{\"channelOrder\": \"bgr\"}");
    inferd_buffer *tensor = run(t, out), *tensor2 = run(t2, out);
    const uint8_t *u = inferd_buffer_tensor(tensor, 0)->data;
    const float *f = inferd_buffer_tensor(tensor2, 0)->data;
    for (uint32_t y = 0; y < 2; y++)
        for (uint32_t x = 0; x < 4; x++)
            for (size_t ch = 0; ch < 3; ch++) {
                assert_int_equal(u[(y * 4 + x) * 3 + ch], px(src, x + 2, y + 3, ch));
                expect_float(f[(ch * 2 + y) * 4 + x], px(src, x + 2, y + 3, 2 - ch) / 255.0);
            }
    inferd_buffer_unref(tensor);
    inferd_buffer_unref(tensor2);
    destroy(t);
    destroy(t2);
    inferd_buffer_unref(out);
    destroy(c);

    /* width/height 0: to the edge. */
    c = make("image_crop", "c2", "{\"x\": 7, \"y\": 1}");
    out = run(c, in);
    expect_crop(out, "c2", src, 7, 1, 3, 7);
    inferd_buffer_unref(out);
    destroy(c);

    /* Past the edge: clamped. */
    c = make("image_crop", "c3", "{\"x\": 8, \"y\": 6, \"width\": 10, \"height\": 10}");
    out = run(c, in);
    expect_crop(out, "c3", src, 8, 6, 2, 2);
    inferd_buffer_unref(out);
    destroy(c);

    /* Wholly outside: an error naming both rectangles. */
    c = make("image_crop", "c4", "{\"x\": 20, \"width\": 5, \"height\": 5}");
    run_fails(c, in, INFERD_ERANGE,
              "element c4 (image_crop, plugin vision 1.0.0): process failed: crop area (x 20, y "
              "0, width 5, height 5; from the properties) lies outside the image (x 0, y 0, width "
              "10, height 8)");
    destroy(c);
    c = make("image_crop", "c5", "{\"y\": 8}");
    run_fails(c, in, INFERD_ERANGE, "crop area (x 0, y 8, width to the edge, height to the edge");
    destroy(c);
    inferd_buffer_unref(in);

    /* A gray image, and a payload that is not an image. */
    in = image_buffer(pattern_image(INFERD_PIXEL_GRAY8, 5, 5));
    c = make("image_crop", "c6", "{\"x\": 1, \"y\": 1, \"width\": 3, \"height\": 3}");
    out = run(c, in);
    expect_crop(out, "c6", inferd_buffer_image(in), 1, 1, 3, 3);
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);
    in = bytes_buffer("image/png", "x", 1);
    run_fails(c, in, INFERD_ETYPE, "expected an image payload, got image/png bytes");
    inferd_buffer_unref(in);
    destroy(c);

    make_fails("image_crop", "{\"x\": -1}", INFERD_ERANGE, "property 'x'");
    make_fails("image_crop", "{\"width\": \"wide\"}", INFERD_ETYPE, "property 'width'");
}

static void add_area(inferd_buffer *buf, const char *producer, const char *json)
{
    inferd_value *v = NULL;
    assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &v, NULL), INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, producer, "metadata/attribute", v, NULL),
                     INFERD_OK);
}

static void crop_by_area_source(void **state)
{
    inferd_image *pix = pattern_image(INFERD_PIXEL_RGB8, 10, 8);
    element *c = make("image_crop", "c1",
                      "{\"dataSource\": \"req\", \"x\": 5, \"y\": 5, \"width\": 1, \"height\": 1}");

    inferd_image *copy = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 10, 8, &copy, NULL), INFERD_OK);
    memcpy(copy->data, pix->data, copy->stride * 8);
    inferd_buffer *in = image_buffer(copy);

    /* No entry of req on this frame: the properties. */
    inferd_buffer *out = run(c, in);
    expect_crop(out, "c1", pix, 5, 5, 1, 1);
    inferd_buffer_unref(out);

    /* The request's detect area, per frame. */
    add_area(in, "req", "{\"x\": 1, \"y\": 2, \"width\": 3, \"height\": 4}");
    out = run(c, in);
    expect_crop(out, "c1", pix, 1, 2, 3, 4);
    inferd_buffer_unref(out);

    /* Fractional edges widen to the pixels they touch; 1.5 + 2 = 3.5 -> 4. */
    add_area(in, "req", "{\"x\": 1.5, \"y\": 0.2, \"width\": 2, \"height\": 1}");
    out = run(c, in);
    expect_crop(out, "c1", pix, 1, 0, 3, 2);
    inferd_buffer_unref(out);

    /* Negative origin: clamped; missing width: to the edge. */
    add_area(in, "req", "{\"x\": -3, \"y\": 6, \"height\": 5}");
    out = run(c, in);
    expect_crop(out, "c1", pix, 0, 6, 10, 2);
    inferd_buffer_unref(out);

    /* Seen through a derived buffer (an earlier stage's metadata). */
    add_area(in, "req", "{\"x\": 4, \"y\": 4, \"width\": 2, \"height\": 2}");
    inferd_buffer *child = inferd_buffer_derive(in);
    inferd_image *copy2 = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 10, 8, &copy2, NULL), INFERD_OK);
    memcpy(copy2->data, pix->data, copy2->stride * 8);
    assert_int_equal(inferd_buffer_set_image(child, copy2, NULL), INFERD_OK);
    out = run(c, child);
    expect_crop(out, "c1", pix, 4, 4, 2, 2);
    inferd_buffer_unref(out);
    inferd_buffer_unref(child);

    /* Outside, from the metadata. */
    add_area(in, "req", "{\"x\": 100, \"y\": 2, \"width\": 3, \"height\": 4}");
    run_fails(c, in, INFERD_ERANGE,
              "crop area (x 100, y 2, width 3, height 4; from dataSource req) lies outside the "
              "image (x 0, y 0, width 10, height 8)");
    /* Not numbers, or negative sizes. */
    add_area(in, "req", "{\"x\": \"left\", \"y\": 2}");
    run_fails(c, in, INFERD_ETYPE,
              "dataSource req: metadata/attribute key 'x' must be a number, got a string");
    add_area(in, "req", "{\"x\": 1, \"width\": -2}");
    run_fails(c, in, INFERD_ERANGE, "must not be negative");
    add_area(in, "req", "{\"x\": 1e12}");
    run_fails(c, in, INFERD_ERANGE, "dataSource req: metadata/attribute key 'x' is 1e+12");
    /* An entry that is not an object. */
    inferd_buffer_add_meta_value(in, "req", "metadata/attribute", inferd_value_int(3), NULL);
    run_fails(c, in, INFERD_ETYPE,
              "expected a metadata/attribute object {x, y, width, height}, got an int");
    inferd_buffer_unref(in);
    inferd_image_free(pix);
    destroy(c);
}

/* ---- image_to_tensor ------------------------------------------------------------------ */

static const inferd_tensor *only_tensor(const inferd_buffer *out)
{
    assert_string_equal(inferd_buffer_format(out), "metadata/tensor");
    assert_int_equal(inferd_buffer_tensor_count(out), 1);
    return inferd_buffer_tensor(out, 0);
}

static void expect_shape(const inferd_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], a);
    assert_int_equal(t->shape[1], b);
    assert_int_equal(t->shape[2], c);
    assert_int_equal(t->shape[3], d);
}

static void to_tensor_layouts(void **state)
{
    /* 3 wide, 2 high, rgb. */
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 3, 2));
    element *e = make("image_to_tensor", "t1", NULL);
    inferd_buffer *out = run(e, in);
    const inferd_tensor *t = only_tensor(out);
    assert_string_equal(t->name, "image");
    assert_int_equal(t->dtype, INFERD_DTYPE_FLOAT32);
    expect_shape(t, 1, 3, 2, 3);
    const float *f = t->data;
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 2; y++)
            for (uint32_t x = 0; x < 3; x++)
                expect_float(f[(c * 2 + y) * 3 + x], pattern(x, y, c) * 0.00392156862745098);
    /* A spot check written out: channel 2 (blue), y 1, x 2. */
    expect_float(f[2 * 6 + 1 * 3 + 2], (2 * 7 + 13 + 122) / 255.0);
    const inferd_value *m = find_meta(out, "t1", "metadata/attribute");
    assert_string_equal(meta_string(m, "name"), "image");
    assert_string_equal(meta_string(m, "layout"), "nchw");
    assert_string_equal(meta_string(m, "dtype"), "float32");
    assert_int_equal(inferd_value_array_len(inferd_value_object_get(m, "shape")), 4);
    assert_int_equal(inferd_buffer_frame_id(out), 42);
    inferd_buffer_unref(out);
    destroy(e);

    e = make("image_to_tensor", "t2", "{\"layout\": \"nhwc\", \"tensorName\": \"input_1\"}");
    out = run(e, in);
    t = only_tensor(out);
    assert_string_equal(t->name, "input_1");
    expect_shape(t, 1, 2, 3, 3);
    f = t->data;
    for (uint32_t y = 0; y < 2; y++)
        for (uint32_t x = 0; x < 3; x++)
            for (uint32_t c = 0; c < 3; c++)
                expect_float(f[(y * 3 + x) * 3 + c], pattern(x, y, c) / 255.0);
    inferd_buffer_unref(out);
    destroy(e);
    inferd_buffer_unref(in);
}

static void to_tensor_mean_std_and_uint8(void **state)
{
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 4, 3));
    element *e = make("image_to_tensor", "t1",
                      "{\"scale\": 0.5, \"mean\": \"1, 2.5, -3\", "
                      "\"std\": [\"2\", \"0.5\", \"4\"]}");
    inferd_buffer *out = run(e, in);
    const float *f = only_tensor(out)->data;
    const double mean[3] = {1, 2.5, -3}, sd[3] = {2, 0.5, 4};
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 3; y++)
            for (uint32_t x = 0; x < 4; x++)
                expect_float(f[(c * 3 + y) * 4 + x], (pattern(x, y, c) * 0.5 - mean[c]) / sd[c]);
    inferd_buffer_unref(out);
    destroy(e);

    /* One value: every channel. */
    e = make("image_to_tensor", "t2", "{\"mean\": \"0.5\", \"std\": \"0.25\"}");
    out = run(e, in);
    f = only_tensor(out)->data;
    for (uint32_t c = 0; c < 3; c++)
        expect_float(f[(c * 3 + 2) * 4 + 3], (pattern(3, 2, c) / 255.0 - 0.5) / 0.25);
    inferd_buffer_unref(out);
    destroy(e);

    /* uint8: the pixels themselves, in the layout. */
    e = make("image_to_tensor", "t3", "{\"dtype\": \"uint8\"}");
    out = run(e, in);
    const inferd_tensor *t = only_tensor(out);
    assert_int_equal(t->dtype, INFERD_DTYPE_UINT8);
    expect_shape(t, 1, 3, 3, 4);
    const uint8_t *u = t->data;
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 3; y++)
            for (uint32_t x = 0; x < 4; x++)
                assert_int_equal(u[(c * 3 + y) * 4 + x], pattern(x, y, c));
    inferd_buffer_unref(out);
    destroy(e);
    e = make("image_to_tensor", "t4", "{\"dtype\": \"uint8\", \"layout\": \"nhwc\"}");
    out = run(e, in);
    u = only_tensor(out)->data;
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 4; x++)
            for (uint32_t c = 0; c < 3; c++)
                assert_int_equal(u[(y * 4 + x) * 3 + c], pattern(x, y, c));
    inferd_buffer_unref(out);
    destroy(e);
    inferd_buffer_unref(in);

    make_fails("image_to_tensor", "{\"dtype\": \"uint8\", \"mean\": \"1\"}", INFERD_EINVAL,
               "dtype uint8 takes the pixels as they are");
    make_fails("image_to_tensor", "{\"mean\": \"0.5, x, 1\"}", INFERD_ETYPE,
               "property 'mean': every list item must be a number (got \"0.5, x, 1\"");
    make_fails("image_to_tensor", "{\"std\": \"1,2\"}", INFERD_EINVAL, "'std': 2 values given");
    make_fails("image_to_tensor", "{\"std\": \"0\"}", INFERD_EINVAL, "'std': 0 is not allowed");
    make_fails("image_to_tensor", "{\"layout\": \"chw\"}", INFERD_EINVAL, "one of nchw, nhwc");
    make_fails("image_to_tensor", "{\"scale\": \"big\"}", INFERD_ETYPE, "property 'scale'");
    make_fails("image_to_tensor", "{\"tensorName\": \"\"}", INFERD_EINVAL,
               "tensorName must not be empty");
}

static void to_tensor_channel_order_and_gray(void **state)
{
    /* A bgr image into an rgb tensor: tensor channel c is image channel 2 - c. */
    inferd_buffer *in = image_buffer(pattern_image(INFERD_PIXEL_BGR8, 3, 2));
    element *e = make("image_to_tensor", "t1", "{\"dtype\": \"uint8\"}");
    inferd_buffer *out = run(e, in);
    const uint8_t *u = only_tensor(out)->data;
    for (uint32_t c = 0; c < 3; c++)
        for (uint32_t y = 0; y < 2; y++)
            for (uint32_t x = 0; x < 3; x++)
                assert_int_equal(u[(c * 2 + y) * 3 + x], pattern(x, y, 2 - c));
    inferd_buffer_unref(out);
    destroy(e);

    /* ... and into a bgr tensor: unchanged, with the mean in tensor order. */
    e = make("image_to_tensor", "t2",
             "{\"channelOrder\": \"bgr\", \"layout\": \"nhwc\", \"scale\": 1, "
             "\"mean\": \"100, 0, 0\"}");
    out = run(e, in);
    const float *f = only_tensor(out)->data;
    for (uint32_t y = 0; y < 2; y++)
        for (uint32_t x = 0; x < 3; x++)
            for (uint32_t c = 0; c < 3; c++)
                expect_float(f[(y * 3 + x) * 3 + c], pattern(x, y, c) - (c == 0 ? 100.0 : 0.0));
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);

    /* An rgb image into a bgr tensor: swapped. */
    in = image_buffer(pattern_image(INFERD_PIXEL_RGB8, 3, 2));
    out = run(e, in);
    f = only_tensor(out)->data;
    expect_float(f[(1 * 3 + 2) * 3 + 0], pattern(2, 1, 2) - 100.0);
    expect_float(f[(1 * 3 + 2) * 3 + 2], pattern(2, 1, 0));
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);

    /* Gray: one channel; three means do not fit it. */
    in = image_buffer(pattern_image(INFERD_PIXEL_GRAY8, 3, 2));
    run_fails(e, in, INFERD_EINVAL, "mean/std give 3 channels, but the image is gray");
    destroy(e);
    e = make("image_to_tensor", "t3", "{\"std\": \"2\"}");
    out = run(e, in);
    const inferd_tensor *t = only_tensor(out);
    expect_shape(t, 1, 1, 2, 3);
    f = t->data;
    expect_float(f[1 * 3 + 2], pattern(2, 1, 0) / 255.0 / 2);
    inferd_buffer_unref(out);
    inferd_buffer_unref(in);

    /* Not an image. */
    in = bytes_buffer("image/jpeg", "x", 1);
    run_fails(e, in, INFERD_ETYPE,
              "element t3 (image_to_tensor, plugin vision 1.0.0): process failed: expected an "
              "image payload, got image/jpeg bytes");
    inferd_buffer_unref(in);
    destroy(e);
}

/* ---- chains ------------------------------------------------------------------------- */

static void chain_keeps_every_stage_metadata(void **state)
{
    /* decoder -> resize -> to_tensor on a JPEG. */
    inferd_image *src = smooth_image(64, 48);
    inferd_buffer *jpeg = encoded_buffer(src, INFERD_CODEC_JPEG, 90);
    inferd_buffer_set_frame(jpeg, 7, 1, 123);
    add_area(jpeg, "req", "{\"user\": \"ok\"}");
    element *d = make("image_decoder", "dec", NULL);
    element *r = make("image_resize", "rs",
                      "{\"resizeWidth\": 32, \"resizeHeight\": 32, \"keepAspect\": true}");
    element *t = make("image_to_tensor", "tt", NULL);
    inferd_buffer *b1 = run(d, jpeg);
    inferd_buffer *b2 = run(r, b1);
    inferd_buffer *b3 = run(t, b2);
    expect_shape(only_tensor(b3), 1, 3, 32, 32);
    assert_int_equal(inferd_buffer_frame_id(b3), 7);
    assert_int_equal(inferd_buffer_timestamp(b3), 123);
    assert_ptr_equal(inferd_buffer_parent(b3), b2);
    assert_ptr_equal(inferd_buffer_parent(b2), b1);
    assert_ptr_equal(inferd_buffer_parent(b1), jpeg);
    /* Every stage's entries, in the order they were added. */
    static const char *const order[][2] = {
        {"req", "metadata/attribute"},
        {"dec", "metadata/attribute"},
        {"rs", "metadata/transform"},
        {"tt", "metadata/attribute"},
    };
    assert_int_equal(inferd_buffer_meta_count(b3), 4);
    for (size_t i = 0; i < 4; i++) {
        inferd_meta m;
        assert_true(inferd_buffer_meta_at(b3, i, &m));
        assert_string_equal(m.producer, order[i][0]);
        assert_string_equal(m.format, order[i][1]);
    }
    assert_int_equal(meta_int(find_meta(b3, "dec", "metadata/attribute"), "width"), 64);
    const inferd_value *tr = find_meta(b3, "rs", "metadata/transform");
    assert_true(meta_double(tr, "scale_x") == 0.5);
    assert_int_equal(meta_int(tr, "pad_y"), 4); /* 64x48 -> 32x24 in 32x32 */
    inferd_buffer_unref(b1);
    inferd_buffer_unref(b2);
    inferd_buffer_unref(b3);
    inferd_buffer_unref(jpeg);
    destroy(r);
    destroy(t);

    /* decoder -> crop -> resize -> to_tensor on a PNG: the transforms in
     * order, and a point mapped back through them lands where it came from. */
    inferd_buffer *png = encoded_buffer(src, INFERD_CODEC_PNG, 0);
    element *c = make("image_crop", "cr", "{\"x\": 16, \"y\": 8, \"width\": 32, \"height\": 32}");
    r = make("image_resize", "rs", "{\"resizeWidth\": 64, \"resizeHeight\": 64, "
                                   "\"interpolation\": \"nearest\"}");
    t = make("image_to_tensor", "tt", "{\"dtype\": \"uint8\", \"layout\": \"nhwc\"}");
    b1 = run(d, png);
    b2 = run(c, b1);
    b3 = run(r, b2);
    inferd_buffer *b4 = run(t, b3);
    size_t n = inferd_buffer_meta_count(b4), k = 0;
    const inferd_value *transforms[2];
    for (size_t i = 0; i < n; i++) {
        inferd_meta m;
        assert_true(inferd_buffer_meta_at(b4, i, &m));
        if (strcmp(m.format, "metadata/transform") == 0) {
            assert_true(k < 2);
            transforms[k++] = m.value;
        }
    }
    assert_int_equal(k, 2);
    assert_string_equal(meta_string(transforms[0], "type"), "crop");
    assert_string_equal(meta_string(transforms[1], "type"), "resize");
    /* Tensor pixel (u, v) = (41, 13): back through resize, then crop. */
    double u = 41.5, v = 13.5; /* the pixel's centre */
    u = (u - meta_int(transforms[1], "pad_x")) / meta_double(transforms[1], "scale_x");
    v = (v - meta_int(transforms[1], "pad_y")) / meta_double(transforms[1], "scale_y");
    u += meta_int(transforms[0], "x");
    v += meta_int(transforms[0], "y");
    const uint8_t *pixels = only_tensor(b4)->data;
    for (size_t ch = 0; ch < 3; ch++)
        assert_int_equal(pixels[(13 * 64 + 41) * 3 + ch],
                         px(src, (uint32_t)u, (uint32_t)v, ch));
    inferd_buffer_unref(b1);
    inferd_buffer_unref(b2);
    inferd_buffer_unref(b3);
    inferd_buffer_unref(b4);
    inferd_buffer_unref(png);
    destroy(d);
    destroy(c);
    destroy(r);
    destroy(t);
    inferd_image_free(src);
}

/* A buffer that carries an earlier stage's error is passed on unchanged, so
 * that the error reaches the sink. */
static void errors_travel_through(void **state)
{
    const char *names[][2] = {{"image_decoder", NULL},
                              {"image_resize", "{\"resizeWidth\": 4}"},
                              {"image_crop", NULL},
                              {"image_to_tensor", NULL}};
    inferd_buffer *in = bytes_buffer("image/jpeg", "x", 1);
    inferd_error cause;
    inferd_error_set(&cause, INFERD_EIO, "camera unplugged");
    inferd_buffer_set_error(in, &cause);
    for (size_t i = 0; i < 4; i++) {
        element *e = make(names[i][0], "e", names[i][1]);
        inferd_buffer *out = run(e, in);
        assert_ptr_equal(out, in);
        assert_string_equal(inferd_buffer_error(out)->message, "camera unplugged");
        inferd_buffer_unref(out);
        destroy(e);
    }
    inferd_buffer_unref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plugin_is_built_in),
        cmocka_unit_test(decoder_png_is_exact_in_every_format),
        cmocka_unit_test(decoder_jpeg_within_tolerance),
        cmocka_unit_test(decoder_refuses_bad_input),
        cmocka_unit_test(resize_bilinear_known_values),
        cmocka_unit_test(resize_rgb_matches_reference),
        cmocka_unit_test(resize_nearest),
        cmocka_unit_test(resize_keep_aspect_pads),
        cmocka_unit_test(resize_contract_modes),
        cmocka_unit_test(encoder_round_trips),
        cmocka_unit_test(resize_refuses_bad_input),
        cmocka_unit_test(crop_by_properties_and_clamping),
        cmocka_unit_test(crop_by_area_source),
        cmocka_unit_test(to_tensor_layouts),
        cmocka_unit_test(to_tensor_mean_std_and_uint8),
        cmocka_unit_test(to_tensor_channel_order_and_gray),
        cmocka_unit_test(chain_keeps_every_stage_metadata),
        cmocka_unit_test(errors_travel_through),
    };
    return cmocka_run_group_tests(tests, load_builtins, unload_builtins);
}
