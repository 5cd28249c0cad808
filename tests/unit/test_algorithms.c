/* test_algorithms.c: the post-processing algorithms the estimator families
 * and the postprocess elements share (plugins/builtin/postprocess:
 * detections.c, sequences.c, textboxes.c), on arrays made here with known
 * answers: every detection head's layout, class-aware and class-agnostic
 * NMS, greedy CTC, DB text boxes and unclip. The algorithms are plugin code
 * (they call the host through its table): the test hands them the host's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algorithms.h"
#include "inferd/registry.h"

const inferd_host_api *inferd__api;

static int setup(void **state)
{
    (void)state;
    inferd__api = inferd_host_api_get();
    return 0;
}

/* Two boxes of class 0 overlapping, one of class 1 on top of them. */
static pp_box boxes[3];
static void three_boxes(void)
{
    boxes[0] = (pp_box){0, 0, 10, 10, 0.9f, 0};
    boxes[1] = (pp_box){1, 1, 11, 11, 0.8f, 0};   /* IoU 0.68 with [0] */
    boxes[2] = (pp_box){0, 1, 10, 11, 0.7f, 1};   /* IoU 0.82 with [0], another class */
}

static void nms_class_aware_and_agnostic(void **state)
{
    (void)state;
    three_boxes();
    size_t kept = pp_nms(boxes, 3, 0.5, false, 100);
    assert_int_equal(kept, 2); /* [1] goes; [2] stays: another class */
    assert_true(boxes[0].score == 0.9f && boxes[1].cls == 1);
    three_boxes();
    assert_int_equal(pp_nms(boxes, 3, 0.5, true, 100), 1); /* agnostic: only the best */
    three_boxes();
    assert_int_equal(pp_nms(boxes, 3, 0.9, false, 100), 3); /* a looser threshold keeps all */
    three_boxes();
    assert_int_equal(pp_nms(boxes, 3, 0.9, false, 2), 2);   /* maxDetections */
    assert_int_equal(pp_nms(NULL, 0, 0.5, false, 10), 0);
    pp_box a = {0, 0, 2, 2, 1, 0}, b = {1, 0, 3, 2, 1, 0}, e = {5, 5, 5, 6, 1, 0};
    assert_true(fabs(pp_iou(&a, &b) - 1.0 / 3) < 1e-9);
    assert_true(pp_iou(&a, &e) == 0);
}

static void decode_every_head(void **state)
{
    (void)state;
    inferd_error err = {0};
    pp_box *out = NULL;
    size_t n = 0;
    /* YOLOv8 [4+2, 3]: anchors in columns; anchor 1 is class 1 at 0.8. */
    const float v8[] = {10, 20, 30,  10, 20, 30,  4, 4, 4,  2, 2, 2,
                        0.1f, 0.2f, 0.3f,  0.0f, 0.8f, 0.1f};
    const int64_t v8d[] = {6, 3};
    pp_tensor_view tv = {v8, 2, v8d};
    /* The guess goes by the shape: [84, 8400] is YOLOv8, [25200, 85] YOLOv5. */
    const int64_t wide[] = {84, 8400}, tall[] = {25200, 85};
    pp_tensor_view gw = {NULL, 2, wide}, gt = {NULL, 2, tall};
    assert_int_equal(pp_detect_guess(&gw, 1), PP_DET_YOLOV8);
    assert_int_equal(pp_detect_guess(&gt, 1), PP_DET_YOLOV5);
    assert_int_equal(pp_detect_decode(PP_DET_YOLOV8, &tv, 1, 0.5, false, 0, 0, &out, &n, &err),
                     INFERD_OK);
    assert_int_equal(n, 1);
    assert_true(out[0].x0 == 18 && out[0].y0 == 19 && out[0].x1 == 22 && out[0].y1 == 21);
    assert_int_equal(out[0].cls, 1);
    free(out);
    /* YOLOv5 [2 anchors, 5+2]: score = objectness x class. */
    const float v5[] = {5, 5, 2, 2, 0.9f, 0.1f, 0.6f,   8, 8, 2, 2, 0.5f, 0.9f, 0.1f};
    const int64_t v5d[] = {1, 2, 7};
    pp_tensor_view t5 = {v5, 3, v5d};
    assert_int_equal(pp_detect_decode(PP_DET_YOLOV5, &t5, 1, 0.5, false, 0, 0, &out, &n, &err),
                     INFERD_OK);
    assert_int_equal(n, 1); /* 0.9 x 0.6 = 0.54 passes, 0.5 x 0.9 = 0.45 does not */
    assert_true(fabsf(out[0].score - 0.54f) < 1e-6f && out[0].cls == 1);
    free(out);
    /* Boxes and scores, normalised, in a 100x50 input. */
    const float bx[] = {0.1f, 0.2f, 0.3f, 0.4f}, sc[] = {0.2f, 0.7f};
    const int64_t bd[] = {1, 4}, sd[] = {1, 2};
    pp_tensor_view two[2] = {{bx, 2, bd}, {sc, 2, sd}};
    assert_int_equal(pp_detect_guess(two, 2), PP_DET_BOXES_SCORES);
    assert_int_equal(pp_detect_decode(PP_DET_BOXES_SCORES, two, 2, 0.5, true, 100, 50, &out, &n,
                                      &err), INFERD_OK);
    assert_int_equal(n, 1);
    assert_true(fabsf(out[0].x0 - 10) < 1e-4f && fabsf(out[0].y1 - 20) < 1e-4f);
    free(out);
    /* A shape that is not the head named: EINVAL naming it. */
    assert_int_equal(pp_detect_decode(PP_DET_YOLOV5, &tv, 1, 0.5, false, 0, 0, &out, &n, &err),
                     INFERD_EINVAL);
    assert_non_null(strstr(err.message, "not a yolov5 head: expected [A, 5+C]"));
}

static void ctc_greedy_and_text(void **state)
{
    (void)state;
    /* Classes: 0 blank, 1 "a", 2 "é" (two bytes). Steps: a a _ a é é _ */
    const float s[] = {0, 1, 0,  0, 1, 0,  1, 0, 0,  0, 1, 0,  0, 0, 1,  0, 0, 1,  1, 0, 0};
    char *charset[] = {"a", "\xc3\xa9"};
    inferd_value *v = NULL;
    size_t bad = 0;
    inferd_error err = {0};
    assert_int_equal(pp_ctc_read(s, 7, 3, 0, false, charset, &v, &bad, &err), INFERD_OK);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(v, "text"), ""),
                        "aa\xc3\xa9");
    assert_true(inferd_value_double_or(inferd_value_object_get(v, "confidence"), 0) == 1.0);
    inferd_value_free(v);
    /* The blank at the end of the classes (index 2): "a" is 0, "é" is 1. */
    const float t[] = {1, 0, 0,  0, 0, 1,  0, 1, 0};
    assert_int_equal(pp_ctc_read(t, 3, 3, 2, false, charset, &v, &bad, &err), INFERD_OK);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(v, "text"), ""),
                        "a\xc3\xa9");
    inferd_value_free(v);
    /* Logits: the confidence is the softmax's. */
    const float l[] = {0, 2, 0};
    assert_int_equal(pp_ctc_read(l, 1, 3, 0, true, charset, &v, &bad, &err), INFERD_OK);
    double want = exp(2) / (exp(2) + 2);
    assert_true(fabs(inferd_value_double_or(inferd_value_object_get(v, "confidence"), 0) - want)
                < 1e-9);
    inferd_value_free(v);
    const float nan_s[] = {0, NAN, 0};
    assert_int_equal(pp_ctc_read(nan_s, 1, 3, 0, false, charset, &v, &bad, &err), INFERD_EINVAL);
    assert_int_equal(bad, 0);
}

static void text_boxes_unclip(void **state)
{
    (void)state;
    /* A 20x40 map with a 4x20 kernel at rows 8..11, columns 10..29, and a
     * 2x2 speck (under minSize 3) at rows 1..2, columns 1..2. */
    enum { H = 20, W = 40 };
    float map[H * W] = {0};
    for (int y = 8; y < 12; y++)
        for (int x = 10; x < 30; x++)
            map[y * W + x] = 1;
    map[1 * W + 1] = map[1 * W + 2] = map[2 * W + 1] = map[2 * W + 2] = 1;
    pp_quad *q = NULL;
    size_t n = 0;
    inferd_error err = {0};
    /* minSize 2: the speck passes the first check (2) but not the one after
     * unclip (minSize + 2 = 4), which the kernel's 4 rows just pass. */
    assert_int_equal(pp_text_boxes(map, H, W, 0.3, 0.6, 0, 2, 100, &q, &n, &err), INFERD_OK);
    assert_int_equal(n, 1);
    /* Unclip 0: the kernel's own rectangle, top-left first, clockwise. */
    assert_true(fabs(q[0].x[0] - 10) < 1e-9 && fabs(q[0].y[0] - 8) < 1e-9);
    assert_true(fabs(q[0].x[2] - 30) < 1e-9 && fabs(q[0].y[2] - 12) < 1e-9);
    assert_true(q[0].score == 1);
    free(q);
    /* Unclip 1.5: d = area x 1.5 / perimeter = 80 x 1.5 / 48 = 2.5 on every side. */
    assert_int_equal(pp_text_boxes(map, H, W, 0.3, 0.6, 1.5, 3, 100, &q, &n, &err), INFERD_OK);
    assert_int_equal(n, 1);
    assert_true(fabs(q[0].x[0] - 7.5) < 1e-9 && fabs(q[0].y[0] - 5.5) < 1e-9);
    assert_true(fabs(q[0].x[2] - 32.5) < 1e-9 && fabs(q[0].y[2] - 14.5) < 1e-9);
    free(q);
    /* A box score under boxThreshold: nothing. */
    for (int y = 8; y < 12; y++)
        for (int x = 10; x < 30; x++)
            map[y * W + x] = 0.5f;
    assert_int_equal(pp_text_boxes(map, H, W, 0.3, 0.6, 1.5, 3, 100, &q, &n, &err), INFERD_OK);
    assert_int_equal(n, 0);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nms_class_aware_and_agnostic),
        cmocka_unit_test(decode_every_head),
        cmocka_unit_test(ctc_greedy_and_text),
        cmocka_unit_test(text_boxes_unclip),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
