/* Unit tests: pipeline files (every refusal names the place) and the engine
 * (frames in and out, errors travelling with buffers, sync joins,
 * back-pressure, drain and discard), with the built-in pipeline elements and
 * the test plugins (TEST_PLUGIN_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd/pipeline.h"

static inferd_registry *reg;

static int setup(void **state)
{
    const char *dir = getenv("TEST_PLUGIN_DIR");
    inferd_error err = {0};
    assert_non_null(dir);
    inferd_log_configure("warn", NULL);
    reg = support_builtins();
    assert_non_null(reg);
    const char *active[] = {"test_good"};
    if (inferd_registry_activate(reg, dir, active, 1, &err) != INFERD_OK)
        fail_msg("%s", err.message);
    return 0;
}

static int teardown(void **state)
{
    inferd_registry_free(reg);
    return 0;
}

static inferd_pipeline *build(const char *json)
{
    inferd_pipeline *p = NULL;
    inferd_error err = {0};
    if (inferd_pipeline_new(reg, json, strlen(json), "test.json", &p, &err) != INFERD_OK)
        fail_msg("pipeline refused: %s", err.message);
    return p;
}

static inferd_buffer *text_buffer(const char *text)
{
    inferd_buffer *b = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_value(b, "text/plain", inferd_value_string(text), NULL),
                     INFERD_OK);
    return b;
}

static void frames_in_and_out(void **state)
{
    inferd_pipeline *p = build("{\"s\": {\"stream_config\": {\"deviceId\": \"0\"},"
                               " \"in\": {\"factory\": \"appsrc\", \"next\": \"e\"},"
                               " \"e\": {\"factory\": \"test_element\", \"props\": {\"label\": "
                               "\"cat\", \"height\": \"100\"}, \"next\": \"json\"},"
                               " \"json\": {\"factory\": \"json_serialize\", \"next\": \"out\"},"
                               " \"out\": {\"factory\": \"appsink\"}}}");
    inferd_error err = {0};
    assert_string_equal(inferd_pipeline_name(p), "s");
    assert_int_equal(inferd_pipeline_source_count(p), 1);
    assert_string_equal(inferd_pipeline_source_name(p, 0), "in");
    assert_non_null(inferd_pipeline_sink_name(p, 0));
    assert_int_equal(inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, -1, &err),
                     INFERD_ESTATE); /* not started */
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    for (int i = 0; i < 5; i++) {
        uint64_t id = 99;
        assert_int_equal(inferd_pipeline_push(p, "in", text_buffer(i == 2 ? "fail" : "x"), &id,
                                              -1, &err), INFERD_OK);
        assert_int_equal(id, (uint64_t)i);
    }
    inferd_pipeline_end(p, NULL);
    for (int i = 0; i < 5; i++) {
        inferd_buffer *r = NULL;
        assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
        assert_non_null(r);
        assert_int_equal(inferd_buffer_frame_id(r), (uint64_t)i);
        if (i == 2) {
            /* The failed frame reaches the sink with who failed and why. */
            const inferd_error *e = inferd_buffer_error(r);
            assert_non_null(e);
            assert_contains(e->message, "element e (test_element, plugin test_good 1.2.3): "
                                        "process failed: asked to fail");
        } else {
            assert_null(inferd_buffer_error(r));
            assert_string_equal(inferd_buffer_format(r), "result/json");
            const inferd_value *v = inferd_buffer_value(r);
            assert_int_equal(inferd_value_int_or(inferd_value_object_get(v, "frame"), -1), i);
            const inferd_value *e = inferd_value_object_get(v, "e");
            assert_string_equal(inferd_value_string_or(inferd_value_object_get(e, "label"), ""),
                                "cat");
            assert_int_equal(inferd_value_int_or(inferd_value_object_get(e, "height"), 0), 100);
        }
        inferd_buffer_unref(r);
    }
    inferd_buffer *end = (inferd_buffer *)1;
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &end, &err), INFERD_OK);
    assert_null(end);
    assert_int_equal(inferd_pipeline_pull(p, "out", 10, &end, &err), INFERD_OK);
    assert_null(end); /* still the end */
    inferd_pipeline_stats s;
    inferd_pipeline_get_stats(p, &s);
    assert_int_equal(s.pushed, 5);
    assert_int_equal(s.delivered, 5);
    assert_int_equal(s.errors, 1);
    assert_int_equal(inferd_pipeline_push(p, "in", text_buffer("late"), NULL, -1, &err),
                     INFERD_ESTATE);
    assert_contains(err.message, "not accepting input");
    inferd_pipeline_free(p);
}

static void sync_joins_frames(void **state)
{
    inferd_pipeline *p = build("{\"s\": {"
                               " \"a\": {\"factory\": \"appsrc\", \"next\": \"ea\"},"
                               " \"b\": {\"factory\": \"appsrc\", \"next\": \"eb\"},"
                               " \"ea\": {\"factory\": \"test_element\", \"props\": {\"label\": "
                               "\"A\"}, \"next\": \"sync\"},"
                               " \"eb\": {\"factory\": \"test_element\", \"props\": {\"label\": "
                               "\"B\"}, \"next\": \"sync:1\"},"
                               " \"sync\": {\"factory\": \"synchronize\", \"props\": {\"status\": "
                               "1}, \"next\": \"json\"},"
                               " \"json\": {\"factory\": \"json_serialize\", \"next\": \"out\"},"
                               " \"out\": {\"factory\": \"appsink\"}}}");
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_source_count(p), 2);
    assert_int_equal(inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, -1, &err),
                     INFERD_EINVAL);
    assert_contains(err.message, "has 2 sources: name the one to use");
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    /* b's frames arrive first and out of step: the join waits for a's. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(inferd_pipeline_push(p, "b", text_buffer("x"), NULL, -1, &err),
                         INFERD_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(inferd_pipeline_push(p, "a", text_buffer("x"), NULL, -1, &err),
                         INFERD_OK);
    for (int i = 0; i < 3; i++) {
        inferd_buffer *r = NULL;
        assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
        assert_non_null(r);
        assert_null(inferd_buffer_error(r));
        const inferd_value *v = inferd_buffer_value(r);
        assert_string_equal(
            inferd_value_string_or(inferd_value_object_path(v, "ea.label"), ""), "A");
        assert_string_equal(
            inferd_value_string_or(inferd_value_object_path(v, "eb.label"), ""), "B");
        inferd_buffer_unref(r);
    }
    /* A frame that only one side ever sends goes on with an error at the end. */
    assert_int_equal(inferd_pipeline_push(p, "a", text_buffer("x"), NULL, -1, &err), INFERD_OK);
    inferd_pipeline_end(p, NULL);
    inferd_buffer *r = NULL;
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    assert_non_null(inferd_buffer_error(r));
    assert_contains(inferd_buffer_error(r)->message, "sync: frame 3 incomplete: input port(s) 1");
    inferd_buffer_unref(r);
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_null(r);
    inferd_pipeline_free(p);
}

/* The join's output carries its first input's payload (a value copied, an
 * image shown as it is), and every branch's metadata. */
static void sync_carries_the_first_payload(void **state)
{
    inferd_pipeline *p = build("{\"s\": {"
                               " \"a\": {\"factory\": \"appsrc\", \"next\": \"ea\"},"
                               " \"b\": {\"factory\": \"appsrc\", \"next\": \"eb\"},"
                               " \"ea\": {\"factory\": \"test_element\", \"props\": {\"label\": "
                               "\"A\"}, \"next\": \"sync\"},"
                               " \"eb\": {\"factory\": \"test_element\", \"props\": {\"label\": "
                               "\"B\"}, \"next\": \"sync:1\"},"
                               " \"sync\": {\"factory\": \"synchronize\", \"props\": {\"status\": "
                               "1}, \"next\": \"out\"},"
                               " \"out\": {\"factory\": \"appsink\"}}}");
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    assert_int_equal(inferd_pipeline_push(p, "a", text_buffer("first"), NULL, -1, &err), INFERD_OK);
    assert_int_equal(inferd_pipeline_push(p, "b", text_buffer("second"), NULL, -1, &err),
                     INFERD_OK);
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 5, 3, &img, &err), INFERD_OK);
    img->data[7] = 99;
    inferd_buffer *ib = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_image(ib, img, &err), INFERD_OK);
    assert_int_equal(inferd_pipeline_push(p, "a", ib, NULL, -1, &err), INFERD_OK);
    assert_int_equal(inferd_pipeline_push(p, "b", text_buffer("other"), NULL, -1, &err), INFERD_OK);

    inferd_buffer *r = NULL;
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    assert_string_equal(inferd_buffer_format(r), "text/plain");
    assert_string_equal(inferd_value_string_or(inferd_buffer_value(r), ""), "first");
    assert_true(inferd_buffer_find_meta(r, "ea", NULL, NULL));
    assert_true(inferd_buffer_find_meta(r, "eb", NULL, NULL));
    inferd_buffer_unref(r);
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    const inferd_image *got = inferd_buffer_image(r);
    assert_non_null(got);
    assert_int_equal(got->width, 5);
    assert_int_equal(got->height, 3);
    assert_int_equal(got->data[7], 99);
    inferd_buffer_unref(r);
    inferd_pipeline_end(p, NULL);
    inferd_pipeline_free(p);
}

/* object_crop fans a frame out into one part per object (a view of the
 * frame's image), object_join gathers the parts back: each object with its
 * part's result, a part that failed with its error, a frame without
 * objects with count 0; frames in order. */
static void fan_out_and_join(void **state)
{
    inferd_pipeline *p = build("{\"s\": {"
                               " \"in\": {\"factory\": \"appsrc\", \"next\": \"crop\"},"
                               " \"crop\": {\"factory\": \"object_crop\", \"props\": "
                               "{\"dataSource\": \"in\"}, \"next\": \"size\"},"
                               " \"size\": {\"factory\": \"image_resize\", \"props\": "
                               "{\"resizeWidth\": 2}, \"next\": \"join\"},"
                               " \"join\": {\"factory\": \"object_join\", \"props\": "
                               "{\"resultSource\": \"size\"}, \"next\": \"out\"},"
                               " \"out\": {\"factory\": \"appsink\"}}}");
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    const char *lists[2] = {
        "{\"objects\": [{\"x\": 1, \"y\": 1, \"width\": 4, \"height\": 2},"
        " {\"x\": 500, \"y\": 500, \"width\": 4, \"height\": 4},"
        " {\"x\": 0, \"y\": 0, \"width\": 8, \"height\": 6, \"tag\": \"all\"}]}",
        "{\"objects\": []}"};
    for (int f = 0; f < 2; f++) {
        inferd_image *img = NULL;
        assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 8, 6, &img, &err), INFERD_OK);
        inferd_buffer *b = inferd_buffer_new();
        assert_int_equal(inferd_buffer_set_image(b, img, &err), INFERD_OK);
        inferd_value *v = NULL;
        assert_int_equal(inferd_value_from_json(lists[f], strlen(lists[f]), 0, &v, &err),
                         INFERD_OK);
        assert_int_equal(inferd_buffer_add_meta_value(b, "in", "metadata/object", v, &err),
                         INFERD_OK);
        assert_int_equal(inferd_pipeline_push(p, NULL, b, NULL, -1, &err), INFERD_OK);
    }
    inferd_buffer *r = NULL;
    inferd_meta m;
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    assert_null(inferd_buffer_error(r));
    assert_int_equal(inferd_buffer_frame_id(r), 0);
    assert_true(inferd_buffer_find_meta(r, "join", "metadata/object", &m));
    const inferd_value *objs = inferd_value_object_get(m.value, "objects");
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(m.value, "count"), -1), 3);
    assert_int_equal(inferd_value_array_len(objs), 3);
    /* Part 0: a 4x2 view resized to 2 wide: the resize's transform is its result. */
    const inferd_value *o0 = inferd_value_array_get(objs, 0);
    assert_true(inferd_value_double_or(inferd_value_object_path(o0, "size.scale_x"), 0) == 0.5);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(o0, "x"), -1), 1);
    /* Part 1 lies outside the image: no pixels, so image_resize failed on it. */
    const inferd_value *o1 = inferd_value_array_get(objs, 1);
    assert_non_null(inferd_value_object_get(o1, "error"));
    assert_contains(inferd_value_string_or(inferd_value_object_path(o1, "error.message"), ""),
                    "element size (image_resize): input 0 takes image/rgb, image/bgr, image/gray; element crop gave no payload");
    /* Part 2: the whole 8x6 frame, its own keys kept. */
    const inferd_value *o2 = inferd_value_array_get(objs, 2);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(o2, "tag"), ""), "all");
    assert_true(inferd_value_double_or(inferd_value_object_path(o2, "size.scale_x"), 0) == 0.25);
    inferd_buffer_unref(r);
    /* The frame without objects still answers. */
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    assert_int_equal(inferd_buffer_frame_id(r), 1);
    assert_true(inferd_buffer_find_meta(r, "join", "metadata/object", &m));
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(m.value, "count"), -1), 0);
    inferd_buffer_unref(r);
    inferd_pipeline_end(p, NULL);
    assert_int_equal(inferd_pipeline_pull(p, "out", 5000, &r, &err), INFERD_OK);
    assert_null(r);
    inferd_pipeline_free(p);
}

/* Two inputs, status 0: each arrival is processed alone; status 1: the two
 * of a frame together. */
static void async_versus_sync_inputs(void **state)
{
    for (int sync = 0; sync <= 1; sync++) {
        char json[600];
        snprintf(json, sizeof json,
                 "{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"m\"},"
                 " \"b\": {\"factory\": \"appsrc\", \"next\": \"m:1\"},"
                 " \"m\": {\"factory\": \"test_merge\", \"props\": {\"status\": %d}, "
                 "\"next\": \"json\"},"
                 " \"json\": {\"factory\": \"json_serialize\", \"props\": {\"dataSource\": "
                 "\"m\"}, \"next\": \"out\"},"
                 " \"out\": {\"factory\": \"appsink\"}}}", sync);
        inferd_pipeline *p = build(json);
        inferd_error err = {0};
        assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
        assert_int_equal(inferd_pipeline_push(p, "a", text_buffer("x"), NULL, -1, &err), INFERD_OK);
        assert_int_equal(inferd_pipeline_push(p, "b", text_buffer("y"), NULL, -1, &err), INFERD_OK);
        inferd_pipeline_end(p, NULL);
        char seen[64] = "";
        inferd_buffer *r = NULL;
        while (inferd_pipeline_pull(p, "out", 5000, &r, &err) == INFERD_OK && r) {
            char *text = NULL;
            inferd_value_to_json(inferd_value_object_path(inferd_buffer_value(r), "m.ports"), 0,
                                 &text, NULL, NULL);
            strncat(seen, text, sizeof seen - strlen(seen) - 1);
            /* dataSource m: only m's entry is serialised. */
            assert_int_equal(inferd_value_object_len(inferd_buffer_value(r)), 2);
            free(text);
            inferd_buffer_unref(r);
        }
        if (sync)
            assert_string_equal(seen, "[0,1]");
        else
            assert_true(strcmp(seen, "[0][1]") == 0 || strcmp(seen, "[1][0]") == 0);
        inferd_pipeline_free(p);
    }
}

static const char *simple = "{\"s\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"json\"},"
                            " \"json\": {\"factory\": \"json_serialize\", \"next\": \"out\"},"
                            " \"out\": {\"factory\": \"appsink\"}}}";

static void back_pressure_and_discard(void **state)
{
    inferd_pipeline *p = build(simple);
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    /* Nobody pulls: the queues fill up and a push with a deadline gives up. */
    int accepted = 0;
    inferd_status st = INFERD_OK;
    while (st == INFERD_OK && accepted < 1000) {
        st = inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, 50, &err);
        accepted += st == INFERD_OK;
    }
    assert_int_equal(st, INFERD_ETIMEOUT);
    assert_contains(err.message, "stayed full for 50 ms");
    assert_true(accepted > 8 && accepted < 200);
    inferd_pipeline_stop(p, false);
    inferd_pipeline_stats s;
    inferd_pipeline_get_stats(p, &s);
    assert_int_equal(s.pushed, (uint64_t)accepted);
    /* What was accepted and not delivered was dropped, and counted; the
     * refused push is the caller's (it got ETIMEOUT), not a drop. */
    assert_int_equal(s.delivered + s.dropped, s.pushed);
    assert_true(s.dropped > 0);
    inferd_pipeline_free(p);
}

static void drain_delivers_everything(void **state)
{
    inferd_pipeline *p = build(simple);
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, -1, &err),
                         INFERD_OK);
    inferd_pipeline_stop(p, true);
    int n = 0;
    inferd_buffer *r = NULL;
    while (inferd_pipeline_pull(p, NULL, 1000, &r, &err) == INFERD_OK && r) {
        assert_int_equal(inferd_buffer_frame_id(r), (uint64_t)n);
        n++;
        inferd_buffer_unref(r);
    }
    assert_int_equal(n, 20);
    inferd_pipeline_free(p);
}

/* tee: every frame on every branch, each branch with a buffer of its own
 * (the payload shared, the metadata apart); the element counters count. */
static void tee_branches(void **state)
{
    inferd_pipeline *p = build("{\"s\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"t\"},"
                               " \"t\": {\"factory\": \"tee\", \"next\": [\"a\", \"b\"]},"
                               " \"a\": {\"factory\": \"appsink\"},"
                               " \"b\": {\"factory\": \"appsink\"}}}");
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, -1, &err),
                         INFERD_OK);
    for (int i = 0; i < 3; i++) {
        inferd_buffer *a = NULL, *b = NULL;
        assert_int_equal(inferd_pipeline_pull(p, "a", 5000, &a, &err), INFERD_OK);
        assert_int_equal(inferd_pipeline_pull(p, "b", 5000, &b, &err), INFERD_OK);
        assert_non_null(a);
        assert_non_null(b);
        assert_true(a != b);
        assert_int_equal(inferd_buffer_frame_id(a), (uint64_t)i);
        assert_int_equal(inferd_buffer_frame_id(b), (uint64_t)i);
        assert_string_equal(inferd_value_string_or(inferd_buffer_value(b), ""), "x");
        /* What branch a adds is not on branch b's buffer. */
        assert_int_equal(inferd_buffer_add_meta_value(a, "only_a", "metadata/class",
                                                      inferd_value_int(1), &err), INFERD_OK);
        assert_false(inferd_buffer_find_meta(b, "only_a", NULL, NULL));
        inferd_buffer_unref(a);
        inferd_buffer_unref(b);
    }
    /* A call is counted when it returns, after its pushes: the threads are
     * joined first. */
    inferd_pipeline_stop(p, true);
    inferd_pipeline_element_stats es;
    assert_int_equal(inferd_pipeline_element_count(p), 4);
    assert_true(inferd_pipeline_element_stats_at(p, 1, &es));
    assert_string_equal(es.name, "t");
    assert_string_equal(es.factory, "tee");
    assert_int_equal(es.in, 3);
    assert_int_equal(es.out, 6);
    assert_int_equal(es.process_calls, 3);
    assert_false(inferd_pipeline_element_stats_at(p, 4, &es));
    inferd_pipeline_free(p);
}

/* overlay on a black 64x48 picture: pixels checked where the box's outline,
 * the point, the mask and the count's text must be, and where nothing is. */
static bool lit(const inferd_image *im, uint32_t x, uint32_t y)
{
    const uint8_t *p = im->data + y * im->stride + x * 3;
    return p[0] || p[1] || p[2];
}

static inferd_image *overlay_run(const char *props)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"s\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"draw\"},"
             " \"draw\": {\"factory\": \"overlay\", \"props\": %s, \"next\": \"out\"},"
             " \"out\": {\"factory\": \"appsink\"}}}", props);
    inferd_pipeline *p = build(json);
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    inferd_image *img = NULL, *mask = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 64, 48, &img, &err), INFERD_OK);
    assert_int_equal(inferd_image_new(INFERD_PIXEL_GRAY8, 2, 2, &mask, &err), INFERD_OK);
    mask->data[0] = 255; /* the top-left quarter */
    inferd_buffer *b = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_image(b, img, &err), INFERD_OK);
    const char *objects = "{\"count\": 1, \"objects\": [{\"x\": 40, \"y\": 26, \"width\": 20,"
                          " \"height\": 16, \"label\": \"a\", \"score\": 0.5}]}";
    const char *points = "{\"count\": 1, \"points\": [{\"x\": 50.5, \"y\": 10.5}]}";
    inferd_value *v = NULL;
    assert_int_equal(inferd_value_from_json(objects, strlen(objects), 0, &v, &err), INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(b, "det", "metadata/object", v, &err), INFERD_OK);
    assert_int_equal(inferd_value_from_json(points, strlen(points), 0, &v, &err), INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(b, "cnt", "metadata/points", v, &err), INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_image(b, "seg", "metadata/semanticseg", mask, &err),
                     INFERD_OK);
    assert_int_equal(inferd_pipeline_push(p, NULL, b, NULL, -1, &err), INFERD_OK);
    inferd_buffer *r = NULL;
    assert_int_equal(inferd_pipeline_pull(p, NULL, 5000, &r, &err), INFERD_OK);
    assert_non_null(r);
    assert_null(inferd_buffer_error(r));
    const inferd_image *drawn = inferd_buffer_image(r);
    assert_non_null(drawn);
    inferd_image *copy = NULL;
    assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, 64, 48, &copy, &err), INFERD_OK);
    for (uint32_t y = 0; y < 48; y++)
        memcpy(copy->data + y * copy->stride, drawn->data + y * drawn->stride, 64 * 3);
    /* The metadata follows the drawn picture. */
    assert_true(inferd_buffer_find_meta(r, "det", "metadata/object", NULL));
    inferd_buffer_unref(r);
    inferd_pipeline_free(p);
    return copy;
}

static void overlay_draws(void **state)
{
    inferd_image *im = overlay_run("{\"counts\": false, \"labels\": false, "
                                   "\"lineWidth\": 2, \"pointRadius\": 2}");
    /* The box [40, 60) x [26, 42), 2 px wide: its edges lit, its inside not. */
    assert_true(lit(im, 40, 30) && lit(im, 41, 30) && lit(im, 59, 30) && lit(im, 50, 26) &&
                lit(im, 50, 41));
    assert_false(lit(im, 42, 30) || lit(im, 50, 34) || lit(im, 57, 39));
    /* The point at (50.5, 10.5), radius 2: its centre and neighbours lit. */
    assert_true(lit(im, 50, 10) && lit(im, 51, 10) && lit(im, 50, 12));
    assert_false(lit(im, 54, 10) || lit(im, 50, 14));
    /* The mask's top-left quarter: tinted at half strength; the rest not. */
    assert_true(lit(im, 5, 5) && lit(im, 31, 23));
    assert_false(lit(im, 32, 5) || lit(im, 5, 24) || lit(im, 20, 40));
    inferd_image_free(im);
    /* With counts and labels: the text's background at the top left, the
     * label over the box; still nothing far from everything. */
    im = overlay_run("{\"maskOpacity\": 0}");
    assert_true(lit(im, 0, 0) && lit(im, 1, 17));
    assert_true(lit(im, 40, 9)); /* the label's background, above the box */
    assert_false(lit(im, 35, 45));
    inferd_image_free(im);
}

static void filesink_writes_lines(void **state)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/inferd-filesink-%d.jsonl", (int)getpid());
    char json[512];
    snprintf(json, sizeof json,
             "{\"s\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"json\"},"
             " \"json\": {\"factory\": \"json_serialize\", \"next\": \"file\"},"
             " \"file\": {\"factory\": \"filesink\", \"props\": {\"location\": \"%s\"}}}}", path);
    inferd_pipeline *p = build(json);
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_sink_count(p), 0);
    assert_int_equal(inferd_pipeline_start(p, &err), INFERD_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(inferd_pipeline_push(p, NULL, text_buffer("x"), NULL, -1, &err),
                         INFERD_OK);
    inferd_pipeline_stop(p, true);
    inferd_pipeline_free(p);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[128];
    for (int i = 0; i < 3; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        char want[32];
        snprintf(want, sizeof want, "{\"frame\":%d}\n", i);
        assert_string_equal(line, want);
    }
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
    unlink(path);
}

/* Each bad pipeline: the code, and a message naming the place. */
static void bad_pipelines_are_refused(void **state)
{
    static const struct {
        const char *json;
        inferd_status code;
        const char *needle;
    } cases[] = {
        {"[1]", INFERD_EINVAL, "test.json: a pipeline file is an object with one stream"},
        {"{\"a\": {}, \"b\": {}}", INFERD_EINVAL, "an object with one stream"},
        {"{\"s\": {}}", INFERD_EINVAL, "test.json: stream s has no elements"},
        {"{\"s\": {\"x\": {\"factory\": \"nope\"}}}", INFERD_ENOTFOUND,
         "element x: unknown factory \"nope\""},
        {"{\"s\": {\"x\": {\"factory\": \"test_sum\"}}}", INFERD_EINVAL,
         "factory \"test_sum\" is a function, not an element"},
        {"{\"s\": {\"x\": {\"props\": {}}}}", INFERD_EINVAL,
         "element x: missing required property 'factory'"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"nxt\": \"y\"}}}", INFERD_EINVAL,
         "element x: unknown property 'nxt' (did you mean 'next'? known: factory, props, next)"},
        /* every element's faults at once */
        {"{\"s\": {\"x\": {\"factory\": \"nope\"}, \"y\": {\"factroy\": \"appsrc\"}}}",
         INFERD_ENOTFOUND, "element x: unknown factory \"nope\" (no such component is "
         "registered; `inferd plugin list` shows what is); test.json: element y: unknown "
         "property 'factroy' (did you mean 'factory'?"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"next\": \"y\"}}}", INFERD_ENOTFOUND,
         "element x: output 0 links to \"y\", which is not an element"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"next\": \"y:z\"}, \"y\": {\"factory\": "
         "\"appsink\"}}}", INFERD_EINVAL, "next \"y:z\": the port after ':' must be a number"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"next\": \"y:3\"}, \"y\": {\"factory\": "
         "\"appsink\"}}}", INFERD_ERANGE, "link x:0 -> y:3: y (appsink) has no input port 3"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"next\": [\"y\", \"y\"]}, \"y\": "
         "{\"factory\": \"appsink\"}}}", INFERD_ERANGE, "element x (appsrc) has 1 output port"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\", \"next\": \"j\"}, \"j\": {\"factory\": "
         "\"json_serialize\", \"next\": \"e\"}, \"e\": {\"factory\": \"test_element\", \"next\": "
         "\"o\"}, \"o\": {\"factory\": \"appsink\"}}}", INFERD_EINVAL,
         "link j:0 -> e:0: formats cannot meet: j output 0 gives result/json; e input 0 takes "
         "image/rgb, image/bgr"},
        {"{\"s\": {\"x\": {\"factory\": \"appsrc\"}}}", INFERD_EINVAL,
         "element x (appsrc): static output port 0 is not linked"},
        {"{\"s\": {\"j\": {\"factory\": \"json_serialize\", \"next\": \"o\"}, \"o\": "
         "{\"factory\": \"appsink\"}}}", INFERD_EINVAL,
         "element j (json_serialize): static input port 0 is not linked"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"o\"}, \"b\": {\"factory\": "
         "\"appsrc\", \"next\": \"o\"}, \"o\": {\"factory\": \"appsink\"}}}", INFERD_EINVAL,
         "element o: input port 0 is linked more than once"},
        {"{\"s\": {\"a\": {\"factory\": \"json_serialize\", \"next\": \"b\"}, \"b\": "
         "{\"factory\": \"json_serialize\", \"next\": \"a\"}}}", INFERD_EINVAL,
         "the links form a cycle through element"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"y\"}, \"y\": {\"factory\": "
         "\"synchronize\", \"props\": {\"status\": 1}, \"next\": \"o\"}, \"o\": {\"factory\": "
         "\"appsink\"}, \"b\": {\"factory\": \"appsrc\", \"next\": \"y:2\"}}}", INFERD_EINVAL,
         "element y (synchronize): dynamic input port 1 is not linked"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"y\", \"props\": {\"speed\": 1}},"
         " \"y\": {\"factory\": \"appsink\"}}}", INFERD_ENOTFOUND,
         "test.json: element a (appsrc): unknown property 'speed'"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"e\"}, \"e\": {\"factory\": "
         "\"test_element\", \"props\": {\"height\": 5}, \"next\": \"o\"}, \"o\": {\"factory\": "
         "\"appsink\"}}}", INFERD_ERANGE,
         "element e (test_element): property 'height': out of range (got 5; allowed: int in "
         "[6, 4096])"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"e\"}, \"e\": {\"factory\": "
         "\"test_element\", \"props\": {\"failInit\": true}, \"next\": \"o\"}, \"o\": "
         "{\"factory\": \"appsink\"}}}", INFERD_EINVAL, "init failed: failInit was set"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"y\"}, \"y\": {\"factory\": "
         "\"synchronize\", \"next\": \"o\"}, \"o\": {\"factory\": \"appsink\"}}}", INFERD_EINVAL,
         "synchronize needs \"status\": 1"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"f\"}, \"f\": {\"factory\": "
         "\"filesink\", \"props\": {\"location\": \"/nonexistent/dir/x\"}}}}", INFERD_EIO,
         "cannot open /nonexistent/dir/x"},
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": 3}}}", INFERD_EINVAL,
         "element a: property 'next': wrong type (got 3; allowed: a list of strings"},
        /* Every element's property faults at once, element by element. */
        {"{\"s\": {\"a\": {\"factory\": \"appsrc\", \"next\": \"e\"}, \"e\": {\"factory\": "
         "\"test_element\", \"props\": {\"height\": 5}, \"next\": \"o\"}, \"o\": "
         "{\"factory\": \"appsink\"}, \"b\": {\"factory\": \"appsrc\", \"next\": \"r\"}, "
         "\"r\": {\"factory\": \"image_resize\", \"props\": {\"resizeWidht\": 8}, \"next\": "
         "\"p\"}, \"p\": {\"factory\": \"appsink\"}}}", INFERD_ERANGE,
         "test.json: element e (test_element): property 'height': out of range (got 5; allowed: "
         "int in [6, 4096]); element r (image_resize): unknown property 'resizeWidht' (did you "
         "mean 'resizeWidth'?"},
        /* dataSource: an element upstream, every fault at once. */
        {"{\"s\": {\"in\": {\"factory\": \"appsrc\", \"next\": \"j\"}, \"j\": {\"factory\": "
         "\"json_serialize\", \"props\": {\"dataSource\": \"inn\"}, \"next\": \"k\"}, \"k\": "
         "{\"factory\": \"json_serialize\", \"props\": {\"dataSource\": \"o\"}, \"next\": "
         "\"o\"}, \"o\": {\"factory\": \"appsink\"}}}", INFERD_EINVAL,
         "test.json: element j: dataSource \"inn\" names no element of this pipeline (did you "
         "mean 'in'?); element k: dataSource \"o\" is not upstream of it: its metadata never "
         "reaches k"},
        {"{\"s\": ", INFERD_EINVAL, "test.json: invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        inferd_pipeline *p = NULL;
        inferd_error err = {0};
        inferd_status st = inferd_pipeline_new(reg, cases[i].json, strlen(cases[i].json),
                                               "test.json", &p, &err);
        if (st != cases[i].code)
            fail_msg("case %zu: got %s: %s", i, inferd_status_name(st), err.message);
        assert_null(p);
        assert_contains(err.message, cases[i].needle);
    }
    inferd_pipeline *p = NULL;
    inferd_error err = {0};
    assert_int_equal(inferd_pipeline_load(reg, "/nonexistent.json", &p, &err), INFERD_EIO);
    assert_contains(err.message, "cannot open pipeline file /nonexistent.json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_in_and_out),
        cmocka_unit_test(sync_joins_frames),
        cmocka_unit_test(sync_carries_the_first_payload),
        cmocka_unit_test(fan_out_and_join),
        cmocka_unit_test(async_versus_sync_inputs),
        cmocka_unit_test(back_pressure_and_discard),
        cmocka_unit_test(drain_delivers_everything),
        cmocka_unit_test(filesink_writes_lines),
        cmocka_unit_test(tee_branches),
        cmocka_unit_test(overlay_draws),
        cmocka_unit_test(bad_pipelines_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
