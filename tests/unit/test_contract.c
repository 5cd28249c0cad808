/* test_contract.c: input contracts (src/core/contract.c) and the resampler
 * (src/core/resample.c): every option with exact pixel values, the geometry
 * and the mapping back, fitting to model shapes, and what each bad contract
 * gets. Images are made here, with patterns whose resampled values are
 * exact (pairs of equal columns halve exactly under half-pixel centres). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/contract.h"
#include "support.h"

/* The contract of a JSON text, validated by the one validator (defaults in). */
static inferd_status contract_of(const char *json, inferd_input_contract *c, inferd_error *err)
{
    static const inferd_prop_spec *fields;
    fields = inferd_contract_props();
    const inferd_prop_spec specs[] = {
        {.name = "input", .type = INFERD_PROP_TYPE_OBJECT, .fields = fields,
         .description = "the contract"},
        INFERD_PROP_END,
    };
    inferd_value *doc = NULL, *given = inferd_value_object();
    char text[1024];
    snprintf(text, sizeof text, "{\"input\": %s}", json);
    assert_int_equal(inferd_value_from_json(text, strlen(text), 0, &doc, NULL), INFERD_OK);
    inferd_props *p = NULL;
    inferd_status st = inferd_props_validate(specs, "estimator e", doc, &p, err);
    if (st == INFERD_OK)
        st = inferd_contract_from_value(inferd_props_get(p, "input"), c, err);
    inferd_props_free(p);
    inferd_value_free(doc);
    inferd_value_free(given);
    return st;
}

static inferd_input_contract fitted(const char *json, inferd_dtype dtype, int64_t d1, int64_t d2,
                                    int64_t d3)
{
    inferd_input_contract c;
    inferd_error err = {0};
    const int64_t shape[4] = {1, d1, d2, d3};
    if (contract_of(json, &c, &err) != INFERD_OK ||
        inferd_contract_fit(&c, "m.onnx", dtype, 4, shape, &err) != INFERD_OK)
        fail_msg("%s: %s", json, err.message);
    return c;
}

/* An image whose pixel (x, y) channel k is f(x, y, k). */
static inferd_image *image(inferd_pixel_format fmt, uint32_t w, uint32_t h,
                           uint8_t (*f)(uint32_t, uint32_t, size_t))
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(fmt, w, h, &img, NULL), INFERD_OK);
    size_t C = inferd_pixel_channels(fmt);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (size_t k = 0; k < C; k++)
                img->data[y * img->stride + x * C + k] = f(x, y, k);
    return img;
}

static uint8_t distinct(uint32_t x, uint32_t y, size_t k)
{
    return (uint8_t)(10 * (y * 4 + x) + k + 1);
}

/* Columns in pairs: 10, 10, 20, 20, 30, 30, ...; channel k adds k. */
static uint8_t pairs(uint32_t x, uint32_t y, size_t k)
{
    (void)y;
    return (uint8_t)(10 * (x / 2 + 1) + k);
}

static void *fill(const inferd_input_contract *c, const inferd_image *img, int64_t x, int64_t y,
                  uint32_t w, uint32_t h, inferd_geometry *g)
{
    inferd_error err = {0};
    assert_int_equal(inferd_contract_plan(c, x, y, w, h, g, &err), INFERD_OK);
    size_t C = c->order == INFERD_PIXEL_GRAY8 ? 1 : 3;
    void *row = calloc(C * g->width * g->height, inferd_dtype_size(c->dtype));
    if (inferd_contract_fill(c, img, g, row, &err) != INFERD_OK)
        fail_msg("fill: %s", err.message);
    return row;
}

static void test_defaults_rgb_over_255_nchw(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{}", INFERD_DTYPE_FLOAT32, 3, -1, -1);
    assert_int_equal(c.layout, INFERD_LAYOUT_NCHW);
    assert_int_equal(c.dtype, INFERD_DTYPE_FLOAT32);
    inferd_image *img = image(INFERD_PIXEL_RGB8, 4, 3, distinct);
    inferd_geometry g;
    /* The area (1, 1) 2x2 of the image, as three planes in [0,1]. */
    float *row = fill(&c, img, 1, 1, 2, 2, &g);
    assert_int_equal(g.width, 2);
    assert_int_equal(g.height, 2);
    for (uint32_t k = 0; k < 3; k++)
        for (uint32_t v = 0; v < 2; v++)
            for (uint32_t u = 0; u < 2; u++)
                assert_true(row[k * 4 + v * 2 + u] == (float)(distinct(u + 1, v + 1, k) / 255.0));
    double x, y;
    inferd_geometry_to_image(&g, 0.5, 1.5, &x, &y);
    assert_true(x == 1.5 && y == 2.5);
    free(row);
    inferd_image_free(img);
}

static void test_bgr_mean_std_nhwc_float(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{\"channelOrder\": \"bgr\", \"scale\": 1, \"mean\": "
                                     "[103.5, 116.25, 123.75], \"std\": \"57.5, 57.0, 58.5\"}",
                                     INFERD_DTYPE_FLOAT32, -1, -1, 3);
    assert_int_equal(c.layout, INFERD_LAYOUT_NHWC);
    inferd_image *img = image(INFERD_PIXEL_RGB8, 2, 1, distinct);
    inferd_geometry g;
    float *row = fill(&c, img, 0, 0, 2, 1, &g);
    const double mean[3] = {103.5, 116.25, 123.75}, sd[3] = {57.5, 57.0, 58.5};
    for (uint32_t u = 0; u < 2; u++)
        for (size_t k = 0; k < 3; k++) /* tensor channel k is B, G, R: image channel 2-k */
            assert_true(row[u * 3 + k] == (float)((distinct(u, 0, 2 - k) - mean[k]) / sd[k]));
    free(row);
    inferd_image_free(img);
}

static void test_uint8_nhwc_takes_pixels_as_they_are(void **state)
{
    (void)state;
    /* A BGR image into an RGB uint8 model: channels swapped, values kept. */
    inferd_input_contract c = fitted("{}", INFERD_DTYPE_UINT8, -1, -1, 3);
    assert_int_equal(c.dtype, INFERD_DTYPE_UINT8);
    assert_int_equal(c.layout, INFERD_LAYOUT_NHWC);
    inferd_image *img = image(INFERD_PIXEL_BGR8, 3, 2, distinct);
    inferd_geometry g;
    uint8_t *row = fill(&c, img, 0, 0, 3, 2, &g);
    for (uint32_t v = 0; v < 2; v++)
        for (uint32_t u = 0; u < 3; u++)
            for (size_t k = 0; k < 3; k++)
                assert_int_equal(row[(v * 3 + u) * 3 + k], distinct(u, v, 2 - k));
    free(row);
    inferd_image_free(img);
}

static void test_gray_is_bt601_luma(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{\"channelOrder\": \"gray\", \"dtype\": \"uint8\"}",
                                     INFERD_DTYPE_UINT8, 1, -1, -1);
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 1, 1, &img, NULL), INFERD_OK);
    img->data[0] = 10, img->data[1] = 20, img->data[2] = 30;
    inferd_geometry g;
    uint8_t *row = fill(&c, img, 0, 0, 1, 1, &g);
    assert_int_equal(row[0], 18); /* (19595*10 + 38470*20 + 7471*30 + 32768) >> 16 */
    free(row);
    inferd_image_free(img);
}

static void test_float16_rounds_to_nearest_even(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{}", INFERD_DTYPE_FLOAT16, 3, -1, -1);
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 2, 1, &img, NULL), INFERD_OK);
    const uint8_t px[6] = {0, 1, 128, 255, 255, 255};
    memcpy(img->data, px, sizeof px);
    inferd_geometry g;
    uint16_t *row = fill(&c, img, 0, 0, 2, 1, &g);
    /* Planes R (0, 255), G (1, 255), B (128, 255); numpy's float16 of v/255. */
    const uint16_t want[6] = {0x0000, 0x3c00, 0x1c04, 0x3c00, 0x3804, 0x3c00};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(row[i], want[i]);
    free(row);
    inferd_image_free(img);
}

static void test_letterbox_centre_and_top_left(void **state)
{
    (void)state;
    /* 8x4 into 4x4: factor 1/2, the image 4x2; centred it starts at row 1. */
    inferd_image *img = image(INFERD_PIXEL_RGB8, 8, 4, pairs);
    inferd_input_contract c = fitted("{\"resize\": \"letterbox\", \"padValue\": 114, \"dtype\": "
                                     "\"uint8\"}", INFERD_DTYPE_UINT8, 3, 4, 4);
    assert_int_equal(c.width, 4); /* the model's fixed size */
    inferd_geometry g;
    uint8_t *row = fill(&c, img, 0, 0, 8, 4, &g);
    assert_int_equal(g.inner_w, 4);
    assert_int_equal(g.inner_h, 2);
    assert_int_equal(g.off_y, 1);
    for (size_t k = 0; k < 3; k++)
        for (uint32_t v = 0; v < 4; v++)
            for (uint32_t u = 0; u < 4; u++)
                assert_int_equal(row[k * 16 + v * 4 + u],
                                 v == 0 || v == 3 ? 114 : 10 * (u + 1) + k);
    double x, y;
    inferd_geometry_to_image(&g, 1, 1, &x, &y); /* the inner image's (1, 0) */
    assert_true(x == 2 && y == 0);
    inferd_geometry_to_image(&g, 4, 3, &x, &y); /* its bottom-right corner */
    assert_true(x == 8 && y == 4);
    free(row);

    c = fitted("{\"resize\": \"letterbox\", \"padValue\": 114, \"padPosition\": \"topleft\", "
               "\"width\": 4, \"height\": 4}", INFERD_DTYPE_UINT8, 3, -1, -1);
    row = fill(&c, img, 0, 0, 8, 4, &g);
    assert_int_equal(g.off_x, 0);
    assert_int_equal(g.off_y, 0);
    for (uint32_t v = 0; v < 4; v++)
        for (uint32_t u = 0; u < 4; u++)
            assert_int_equal(row[v * 4 + u], v >= 2 ? 114 : 10 * (u + 1));
    inferd_geometry_to_image(&g, 1, 1, &x, &y);
    assert_true(x == 2 && y == 2);
    free(row);
    inferd_image_free(img);
}

static void test_stretch_and_nearest(void **state)
{
    (void)state;
    inferd_image *img = image(INFERD_PIXEL_RGB8, 8, 4, pairs);
    inferd_input_contract c = fitted("{\"resize\": \"stretch\", \"width\": 4, \"height\": 1, "
                                     "\"interpolation\": \"nearest\"}", INFERD_DTYPE_UINT8, 3,
                                     -1, -1);
    inferd_geometry g;
    uint8_t *row = fill(&c, img, 0, 0, 8, 4, &g);
    assert_true(g.scale_x == 0.5 && g.scale_y == 0.25);
    for (uint32_t u = 0; u < 4; u++)
        assert_int_equal(row[u], 10 * (u + 1));
    double x, y;
    inferd_geometry_to_image(&g, 2, 1, &x, &y);
    assert_true(x == 4 && y == 4);
    free(row);
    inferd_image_free(img);
}

static void test_limit_rounds_each_side_to_a_multiple(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{\"resize\": \"limit\", \"multiple\": 32}",
                                     INFERD_DTYPE_FLOAT32, 3, -1, -1);
    inferd_geometry g;
    inferd_error err = {0};
    assert_int_equal(inferd_contract_plan(&c, 0, 0, 600, 450, &g, &err), INFERD_OK);
    assert_int_equal(g.width, 608); /* 600 -> 19 * 32 */
    assert_int_equal(g.height, 448); /* 450 -> 14 * 32 */
    assert_true(g.scale_x == 608.0 / 600 && g.scale_y == 448.0 / 450);
    c = fitted("{\"resize\": \"limit\", \"limit\": 320, \"multiple\": 32}", INFERD_DTYPE_FLOAT32,
               3, -1, -1);
    assert_int_equal(inferd_contract_plan(&c, 0, 0, 600, 450, &g, &err), INFERD_OK);
    assert_int_equal(g.width, 320);
    assert_int_equal(g.height, 256); /* 450 * 320/600 = 240, halfway: up */
    assert_int_equal(inferd_contract_plan(&c, 0, 0, 100, 20, &g, &err), INFERD_OK);
    assert_int_equal(g.width, 96); /* never enlarged: 100 -> 96, 20 -> at least 32 */
    assert_int_equal(g.height, 32);
    double x, y;
    inferd_geometry_to_image(&g, 96, 32, &x, &y);
    assert_true(fabs(x - 100) < 1e-9 && fabs(y - 20) < 1e-9);
}

static void test_shortcrop_takes_the_centre(void **state)
{
    (void)state;
    inferd_image *img = image(INFERD_PIXEL_RGB8, 8, 4, pairs);
    inferd_input_contract c = fitted("{\"resize\": \"shortcrop\", \"shortSide\": 2, \"dtype\": "
                                     "\"uint8\"}", INFERD_DTYPE_UINT8, 3, 2, 2);
    inferd_geometry g;
    uint8_t *row = fill(&c, img, 0, 0, 8, 4, &g);
    assert_int_equal(g.inner_w, 4);
    assert_int_equal(g.inner_h, 2);
    assert_int_equal(g.off_x, -1);
    for (uint32_t v = 0; v < 2; v++)
        for (uint32_t u = 0; u < 2; u++)
            assert_int_equal(row[v * 2 + u], 10 * (u + 2)); /* inner columns 1, 2 */
    double x, y;
    inferd_geometry_to_image(&g, 0, 0, &x, &y);
    assert_true(x == 2 && y == 0);
    free(row);
    inferd_image_free(img);
}

static void test_resample_exact_halving(void **state)
{
    (void)state;
    inferd_image *src = image(INFERD_PIXEL_GRAY8, 8, 2, pairs), *dst = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_GRAY8, 4, 1, &dst, NULL), INFERD_OK);
    assert_int_equal(inferd_image_resample(src, dst, false, NULL), INFERD_OK);
    for (uint32_t u = 0; u < 4; u++)
        assert_int_equal(dst->data[u], 10 * (u + 1));
    inferd_image *rgb = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 4, 1, &rgb, NULL), INFERD_OK);
    inferd_error err = {0};
    assert_int_equal(inferd_image_resample(src, rgb, false, &err), INFERD_EINVAL);
    assert_contains(err.message, "same pixel format");
    inferd_image_free(rgb);
    inferd_image_free(dst);
    inferd_image_free(src);
}

/* What each bad contract gets. */
static void expect_refused(const char *json, inferd_status code, const char *needle)
{
    inferd_input_contract c;
    inferd_error err = {0};
    inferd_status st = contract_of(json, &c, &err);
    if (st == INFERD_OK)
        fail_msg("%s was accepted", json);
    assert_int_equal(st, code);
    assert_contains(err.message, needle);
}

static void test_bad_contracts(void **state)
{
    (void)state;
    expect_refused("{\"mean\": [1, 2]}", INFERD_EINVAL, "'mean': 2 values given");
    expect_refused("{\"std\": [1, 0, 1]}", INFERD_EINVAL, "'std': 0 is not allowed");
    expect_refused("{\"mean\": [1, \"x\", 2]}", INFERD_ETYPE,
                   "property 'input.mean': every list item must be a number");
    expect_refused("{\"dtype\": \"uint8\", \"mean\": 0.5}", INFERD_EINVAL,
                   "dtype uint8 takes the pixels as they are");
    expect_refused("{\"resize\": \"shortcrop\"}", INFERD_EINVAL, "shortcrop needs shortSide");
    expect_refused("{\"resize\": \"shortcrop\", \"shortSide\": 4, \"width\": 8}", INFERD_EINVAL,
                   "the crop 8x0 is larger than shortSide 4");
    expect_refused("{\"resize\": \"limit\", \"limit\": 16, \"multiple\": 32}", INFERD_EINVAL,
                   "limit 16 is below multiple 32");
    expect_refused("{\"channelorder\": \"bgr\", \"resize\": \"fit\"}", INFERD_ENOTFOUND,
                   "unknown property 'input.channelorder' (did you mean 'channelOrder'?");
}

static void expect_misfit(const char *json, inferd_dtype dtype, size_t ndim,
                          const int64_t *shape, const char *needle)
{
    inferd_input_contract c;
    inferd_error err = {0};
    assert_int_equal(contract_of(json, &c, &err), INFERD_OK);
    inferd_status st = inferd_contract_fit(&c, "m.onnx", dtype, ndim, shape, &err);
    if (st == INFERD_OK)
        fail_msg("%s fitted", json);
    assert_contains(err.message, needle);
    assert_contains(err.message, "model m.onnx");
}

static void test_contracts_that_do_not_fit_the_model(void **state)
{
    (void)state;
    const int64_t rank3[3] = {1, 3, 8}, gray[4] = {1, 1, -1, -1}, fixed[4] = {1, 3, 640, 640},
                  dyn[4] = {-1, 3, -1, -1};
    expect_misfit("{}", INFERD_DTYPE_FLOAT32, 3, rank3, "rank 3");
    expect_misfit("{}", INFERD_DTYPE_FLOAT32, 4, gray, "has 1 channels (nchw); channelOrder rgb");
    expect_misfit("{\"dtype\": \"float32\"}", INFERD_DTYPE_UINT8, 4, dyn,
                  "its input is uint8, the contract says dtype float32");
    expect_misfit("{}", INFERD_DTYPE_INT64, 4, dyn, "an image input is float32, float16 or uint8");
    expect_misfit("{\"resize\": \"none\"}", INFERD_DTYPE_FLOAT32, 4, fixed,
                  "takes a fixed size, which resize none");
    const int64_t one_side[4] = {1, 3, 32, -1};
    expect_misfit("{}", INFERD_DTYPE_FLOAT32, 4, one_side, "fixes one side only");
    expect_misfit("{\"resize\": \"limit\", \"multiple\": 32}", INFERD_DTYPE_FLOAT32, 4, fixed,
                  "resize limit cannot always give");
    expect_misfit("{\"resize\": \"stretch\", \"width\": 320, \"height\": 320}",
                  INFERD_DTYPE_FLOAT32, 4, fixed, "takes 640x640; resize stretch gives 320x320");
    expect_misfit("{\"resize\": \"letterbox\"}", INFERD_DTYPE_FLOAT32, 4, dyn,
                  "no fixed size: resize letterbox needs width and height");
}

static void test_auto_resize_follows_the_model(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{}", INFERD_DTYPE_FLOAT32, 3, 224, 200);
    assert_int_equal(c.resize, INFERD_RESIZE_STRETCH);
    assert_int_equal(c.width, 200);
    assert_int_equal(c.height, 224);
    c = fitted("{}", INFERD_DTYPE_FLOAT32, 3, -1, -1);
    assert_int_equal(c.resize, INFERD_RESIZE_NONE);
}

static void test_area_outside_the_image(void **state)
{
    (void)state;
    inferd_input_contract c = fitted("{}", INFERD_DTYPE_FLOAT32, 3, -1, -1);
    inferd_image *img = image(INFERD_PIXEL_RGB8, 4, 3, distinct);
    inferd_geometry g;
    inferd_error err = {0};
    float row[3 * 4];
    assert_int_equal(inferd_contract_plan(&c, 3, 2, 2, 2, &g, &err), INFERD_OK);
    assert_int_equal(inferd_contract_fill(&c, img, &g, row, &err), INFERD_ERANGE);
    assert_contains(err.message, "outside the 4x3 image");
    assert_int_equal(inferd_contract_plan(&c, 0, 0, 0, 2, &g, &err), INFERD_ERANGE);
    inferd_image_free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_rgb_over_255_nchw),
        cmocka_unit_test(test_bgr_mean_std_nhwc_float),
        cmocka_unit_test(test_uint8_nhwc_takes_pixels_as_they_are),
        cmocka_unit_test(test_gray_is_bt601_luma),
        cmocka_unit_test(test_float16_rounds_to_nearest_even),
        cmocka_unit_test(test_letterbox_centre_and_top_left),
        cmocka_unit_test(test_stretch_and_nearest),
        cmocka_unit_test(test_limit_rounds_each_side_to_a_multiple),
        cmocka_unit_test(test_shortcrop_takes_the_centre),
        cmocka_unit_test(test_resample_exact_halving),
        cmocka_unit_test(test_bad_contracts),
        cmocka_unit_test(test_contracts_that_do_not_fit_the_model),
        cmocka_unit_test(test_auto_resize_follows_the_model),
        cmocka_unit_test(test_area_outside_the_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
