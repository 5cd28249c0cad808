/* test_buffer.c: reference counting, payload, metadata and error of
 * inferd_buffer (src/core/buffer.c). Ownership is checked two ways: release
 * callbacks that count their calls, and the leak checker of the sanitizer
 * build for everything else. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/buffer.h"

static void expect_error(inferd_status st, const inferd_error *err, inferd_status code,
                         const char *needle)
{
    assert_int_equal(st, code);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", err->message, needle);
}

/* Counts how often the data it is attached to is released; atomic since the
 * threaded test releases from several threads. */
static void count_release(void *ctx, void *data)
{
    (void)data;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static uint8_t scratch[64]; /* pixels and tensor data that nobody frees */

static inferd_tensor *counted_tensor(atomic_int *released)
{
    inferd_tensor *t = NULL;
    int64_t shape[] = {4};
    assert_int_equal(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 1, shape, scratch, 16, count_release,
                                        released, &t, NULL),
                     INFERD_OK);
    return t;
}

static inferd_image *counted_image(inferd_pixel_format fmt, atomic_int *released)
{
    inferd_image *img = NULL;
    assert_int_equal(inferd_image_wrap(fmt, 2, 2, 0, scratch, count_release, released, &img, NULL),
                     INFERD_OK);
    return img;
}

static inferd_value *int_value(int64_t i)
{
    inferd_value *v = inferd_value_int(i);
    assert_non_null(v);
    return v;
}

static int64_t meta_int(const inferd_meta *m)
{
    int64_t i = -1;
    assert_non_null(m->value);
    assert_int_equal(inferd_value_get_int(m->value, &i, NULL), INFERD_OK);
    return i;
}

/* --- lifetime --------------------------------------------------------------- */

static void test_new(void **state)
{
    (void)state;
    inferd_buffer *buf = inferd_buffer_new();
    assert_non_null(buf);
    assert_int_equal(inferd_buffer_refcount(buf), 1);
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_NONE);
    assert_null(inferd_buffer_format(buf));
    assert_null(inferd_buffer_value(buf));
    assert_null(inferd_buffer_image(buf));
    assert_int_equal(inferd_buffer_tensor_count(buf), 0);
    assert_null(inferd_buffer_tensor(buf, 0));
    assert_int_equal(inferd_buffer_frame_id(buf), 0);
    assert_int_equal(inferd_buffer_stream_id(buf), 0);
    assert_int_equal(inferd_buffer_timestamp(buf), 0);
    assert_int_equal(inferd_buffer_meta_count(buf), 0);
    assert_false(inferd_buffer_meta_at(buf, 0, NULL));
    assert_null(inferd_buffer_error(buf));
    inferd_buffer_unref(buf);
}

static void test_refcount(void **state)
{
    (void)state;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_image(buf, counted_image(INFERD_PIXEL_RGB8, &released),
                                             NULL),
                     INFERD_OK);
    assert_ptr_equal(inferd_buffer_ref(buf), buf);
    assert_ptr_equal(inferd_buffer_ref(buf), buf);
    assert_int_equal(inferd_buffer_refcount(buf), 3);
    inferd_buffer_unref(buf);
    inferd_buffer_unref(buf);
    assert_int_equal(inferd_buffer_refcount(buf), 1);
    assert_int_equal(atomic_load(&released), 0); /* still referenced: nothing freed */
    inferd_buffer_unref(buf);
    assert_int_equal(atomic_load(&released), 1); /* the last unref frees the payload */

    /* NULL is allowed everywhere. */
    assert_null(inferd_buffer_ref(NULL));
    inferd_buffer_unref(NULL);
    assert_int_equal(inferd_buffer_refcount(NULL), 0);
    assert_int_equal(inferd_buffer_payload_kind(NULL), INFERD_PAYLOAD_NONE);
    assert_null(inferd_buffer_format(NULL));
    assert_int_equal(inferd_buffer_meta_count(NULL), 0);
    assert_false(inferd_buffer_find_meta(NULL, "a", NULL, NULL));
    assert_null(inferd_buffer_error(NULL));
}

static void test_frame(void **state)
{
    (void)state;
    inferd_buffer *buf = inferd_buffer_new();
    inferd_buffer_set_frame(buf, UINT64_MAX - 1, 7, -123456789012345);
    assert_int_equal(inferd_buffer_frame_id(buf), UINT64_MAX - 1);
    assert_int_equal(inferd_buffer_stream_id(buf), 7);
    assert_int_equal(inferd_buffer_timestamp(buf), -123456789012345);
    inferd_buffer_set_frame(buf, 1, 2, 3);
    assert_int_equal(inferd_buffer_frame_id(buf), 1);
    assert_int_equal(inferd_buffer_stream_id(buf), 2);
    assert_int_equal(inferd_buffer_timestamp(buf), 3);
    inferd_buffer_set_frame(NULL, 1, 2, 3);
    inferd_buffer_unref(buf);
}

/* --- payload ---------------------------------------------------------------- */

static void test_payload_value(void **state)
{
    (void)state;
    inferd_error err;
    inferd_buffer *buf = inferd_buffer_new();
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xd9};
    inferd_value *bytes = inferd_value_bytes(jpeg, sizeof jpeg);
    char format[] = "image/jpeg";
    assert_int_equal(inferd_buffer_set_value(buf, format, bytes, &err), INFERD_OK);
    format[0] = 'X'; /* the buffer holds its own copy of the format */
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_VALUE);
    assert_string_equal(inferd_buffer_format(buf), "image/jpeg");
    assert_ptr_equal(inferd_buffer_value(buf), bytes);
    assert_null(inferd_buffer_image(buf));
    assert_int_equal(inferd_buffer_tensor_count(buf), 0);

    /* Replacing a value with a value frees the first (the leak checker sees it). */
    assert_int_equal(inferd_buffer_set_value(buf, "result/json", inferd_value_object(), &err),
                     INFERD_OK);
    assert_string_equal(inferd_buffer_format(buf), "result/json");
    assert_true(inferd_value_is(inferd_buffer_value(buf), INFERD_VALUE_OBJECT));
    inferd_buffer_unref(buf);
}

static void test_payload_value_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_buffer *buf = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_value(buf, "result/json", int_value(1), &err), INFERD_OK);
    /* Each failure takes (frees) the value and keeps the previous payload. */
    expect_error(inferd_buffer_set_value(buf, "", int_value(2), &err), &err, INFERD_EINVAL,
                 "format is empty");
    expect_error(inferd_buffer_set_value(buf, NULL, int_value(3), &err), &err, INFERD_EINVAL,
                 "format is empty");
    expect_error(inferd_buffer_set_value(buf, "result/json", NULL, &err), &err, INFERD_EINVAL,
                 "value is NULL");
    expect_error(inferd_buffer_set_value(NULL, "result/json", int_value(4), &err), &err,
                 INFERD_EINVAL, "NULL");
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_VALUE);
    assert_string_equal(inferd_buffer_format(buf), "result/json");
    int64_t i = 0;
    assert_int_equal(inferd_value_get_int(inferd_buffer_value(buf), &i, NULL), INFERD_OK);
    assert_int_equal(i, 1);
    inferd_buffer_unref(buf);
}

static void test_payload_image(void **state)
{
    (void)state;
    inferd_error err;
    static const struct {
        inferd_pixel_format fmt;
        const char *format;
    } want[] = {
        {INFERD_PIXEL_GRAY8, "image/gray"}, {INFERD_PIXEL_RGB8, "image/rgb"},
        {INFERD_PIXEL_BGR8, "image/bgr"},   {INFERD_PIXEL_RGBA8, "image/rgba"},
        {INFERD_PIXEL_BGRA8, "image/bgra"},
    };
    inferd_buffer *buf = inferd_buffer_new();
    atomic_int released = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        inferd_image *img = counted_image(want[i].fmt, &released);
        assert_int_equal(inferd_buffer_set_image(buf, img, &err), INFERD_OK);
        assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_IMAGE);
        assert_ptr_equal(inferd_buffer_image(buf), img);
        assert_string_equal(inferd_buffer_format(buf), want[i].format);
        assert_null(inferd_buffer_value(buf));
        /* every image but the current one has been freed by the replacement */
        assert_int_equal(atomic_load(&released), (int)i);
    }
    expect_error(inferd_buffer_set_image(buf, NULL, &err), &err, INFERD_EINVAL, "image is NULL");
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_IMAGE);
    /* set_image(NULL buffer) still takes the image */
    expect_error(inferd_buffer_set_image(NULL, counted_image(INFERD_PIXEL_RGB8, &released), &err),
                 &err, INFERD_EINVAL, "NULL");
    assert_int_equal(atomic_load(&released), 5);
    inferd_buffer_unref(buf);
    assert_int_equal(atomic_load(&released), 6);
}

static void test_payload_tensors(void **state)
{
    (void)state;
    inferd_error err;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    inferd_tensor **ts = malloc(2 * sizeof *ts);
    assert_non_null(ts);
    ts[0] = counted_tensor(&released);
    ts[1] = counted_tensor(&released);
    assert_int_equal(inferd_buffer_set_tensors(buf, ts, 2, &err), INFERD_OK);
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_TENSORS);
    assert_string_equal(inferd_buffer_format(buf), "metadata/tensor");
    assert_int_equal(inferd_buffer_tensor_count(buf), 2);
    assert_ptr_equal(inferd_buffer_tensor(buf, 0), ts[0]);
    assert_ptr_equal(inferd_buffer_tensor(buf, 1), ts[1]);
    assert_null(inferd_buffer_tensor(buf, 2));
    assert_null(inferd_buffer_value(buf));
    assert_null(inferd_buffer_image(buf));

    /* Replacing tensors by a value frees both tensors and the array. */
    assert_int_equal(inferd_buffer_set_value(buf, "result/json", int_value(1), &err), INFERD_OK);
    assert_int_equal(atomic_load(&released), 2);
    assert_int_equal(inferd_buffer_tensor_count(buf), 0);
    assert_null(inferd_buffer_tensor(buf, 0));
    /* and a value by an image, an image by tensors */
    assert_int_equal(inferd_buffer_set_image(buf, counted_image(INFERD_PIXEL_RGB8, &released),
                                             &err),
                     INFERD_OK);
    ts = malloc(sizeof *ts);
    assert_non_null(ts);
    ts[0] = counted_tensor(&released);
    assert_int_equal(inferd_buffer_set_tensors(buf, ts, 1, &err), INFERD_OK);
    assert_int_equal(atomic_load(&released), 3);
    assert_null(inferd_buffer_image(buf));
    inferd_buffer_unref(buf);
    assert_int_equal(atomic_load(&released), 4);
}

static void test_payload_tensors_bad(void **state)
{
    (void)state;
    inferd_error err;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();

    /* A NULL among the tensors: the others and the array are freed. */
    inferd_tensor **ts = malloc(3 * sizeof *ts);
    assert_non_null(ts);
    ts[0] = counted_tensor(&released);
    ts[1] = NULL;
    ts[2] = counted_tensor(&released);
    expect_error(inferd_buffer_set_tensors(buf, ts, 3, &err), &err, INFERD_EINVAL,
                 "tensor 1 of 3 is NULL");
    assert_int_equal(atomic_load(&released), 2);

    ts = malloc(sizeof *ts);
    assert_non_null(ts);
    expect_error(inferd_buffer_set_tensors(buf, ts, 0, &err), &err, INFERD_EINVAL, "0 tensors");
    expect_error(inferd_buffer_set_tensors(buf, NULL, 2, &err), &err, INFERD_EINVAL,
                 "tensor array is NULL");
    ts = malloc(sizeof *ts);
    assert_non_null(ts);
    ts[0] = counted_tensor(&released);
    expect_error(inferd_buffer_set_tensors(NULL, ts, 1, &err), &err, INFERD_EINVAL, "NULL");
    assert_int_equal(atomic_load(&released), 3);
    assert_int_equal(inferd_buffer_payload_kind(buf), INFERD_PAYLOAD_NONE);
    inferd_buffer_unref(buf);
}

/* --- metadata --------------------------------------------------------------- */

static void test_meta_add_find(void **state)
{
    (void)state;
    inferd_error err;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    inferd_tensor *boxes = counted_tensor(&released);
    inferd_image *crop = counted_image(INFERD_PIXEL_RGB8, &released);
    assert_int_equal(inferd_buffer_add_meta_value(buf, "detector", "metadata/object", int_value(10),
                                                  &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_tensor(buf, "detector", "metadata/tensor", boxes, &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_image(buf, "cropper", "metadata/image", crop, &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, "classifier", "metadata/class",
                                                  int_value(30), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_meta_count(buf), 4);

    inferd_meta m;
    assert_true(inferd_buffer_find_meta(buf, "detector", "metadata/tensor", &m));
    assert_string_equal(m.producer, "detector");
    assert_string_equal(m.format, "metadata/tensor");
    assert_ptr_equal(m.tensor, boxes);
    assert_null(m.value);
    assert_null(m.image);
    assert_true(inferd_buffer_find_meta(buf, "cropper", "metadata/image", &m));
    assert_ptr_equal(m.image, crop);
    assert_null(m.tensor);
    /* format NULL: the producer's first entry */
    assert_true(inferd_buffer_find_meta(buf, "detector", NULL, &m));
    assert_string_equal(m.format, "metadata/object");
    assert_int_equal(meta_int(&m), 10);
    /* out is optional: a presence check */
    assert_true(inferd_buffer_find_meta(buf, "classifier", "metadata/class", NULL));
    /* absent producer, absent format, NULL producer */
    assert_false(inferd_buffer_find_meta(buf, "tracker", NULL, &m));
    assert_false(inferd_buffer_find_meta(buf, "cropper", "metadata/object", &m));
    assert_false(inferd_buffer_find_meta(buf, NULL, "metadata/object", &m));
    /* lookups are exact, not prefixes */
    assert_false(inferd_buffer_find_meta(buf, "detect", NULL, &m));

    /* The order added. */
    const char *order[][2] = {{"detector", "metadata/object"},
                              {"detector", "metadata/tensor"},
                              {"cropper", "metadata/image"},
                              {"classifier", "metadata/class"}};
    for (size_t i = 0; i < 4; i++) {
        assert_true(inferd_buffer_meta_at(buf, i, &m));
        assert_string_equal(m.producer, order[i][0]);
        assert_string_equal(m.format, order[i][1]);
    }
    assert_false(inferd_buffer_meta_at(buf, 4, &m));
    assert_false(inferd_buffer_meta_at(buf, SIZE_MAX, &m));
    assert_false(inferd_buffer_meta_at(NULL, 0, &m));

    assert_int_equal(atomic_load(&released), 0);
    inferd_buffer_unref(buf);
    assert_int_equal(atomic_load(&released), 2);
}

static void test_meta_replace(void **state)
{
    (void)state;
    inferd_error err;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    assert_int_equal(inferd_buffer_add_meta_value(buf, "a", "metadata/x", int_value(1), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_tensor(buf, "b", "metadata/x",
                                                   counted_tensor(&released), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, "c", "metadata/x", int_value(3), &err),
                     INFERD_OK);

    /* Keep a view of b's entry, then replace it (with another kind of item). */
    inferd_meta old;
    assert_true(inferd_buffer_find_meta(buf, "b", "metadata/x", &old));
    assert_int_equal(inferd_buffer_add_meta_value(buf, "b", "metadata/x", int_value(20), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_meta_count(buf), 3); /* replaced, not added */
    inferd_meta m;
    assert_true(inferd_buffer_meta_at(buf, 1, &m)); /* keeps its place */
    assert_string_equal(m.producer, "b");
    assert_int_equal(meta_int(&m), 20);
    assert_null(m.tensor);
    /* The replaced item stays alive until the buffer goes (buffer.h: entry
     * pointers live as long as the buffer); another thread may hold it. */
    assert_int_equal(atomic_load(&released), 0);
    assert_int_equal(inferd_tensor_count(old.tensor), 4);

    /* Same producer, other format: a new entry; same format, other producer: too. */
    assert_int_equal(inferd_buffer_add_meta_value(buf, "b", "metadata/y", int_value(21), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, "d", "metadata/x", int_value(4), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_meta_count(buf), 5);
    /* Replace twice more; the last wins. */
    assert_int_equal(inferd_buffer_add_meta_value(buf, "a", "metadata/x", int_value(100), &err),
                     INFERD_OK);
    assert_int_equal(inferd_buffer_add_meta_value(buf, "a", "metadata/x", int_value(101), &err),
                     INFERD_OK);
    assert_true(inferd_buffer_find_meta(buf, "a", "metadata/x", &m));
    assert_int_equal(meta_int(&m), 101);
    assert_true(inferd_buffer_meta_at(buf, 0, &m));
    assert_int_equal(meta_int(&m), 101);
    assert_int_equal(inferd_buffer_meta_count(buf), 5);
    inferd_buffer_unref(buf);
    assert_int_equal(atomic_load(&released), 1); /* the retired tensor, freed at the end */
}

static void test_meta_bad(void **state)
{
    (void)state;
    inferd_error err;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    /* Every failure frees the item it was given. */
    expect_error(inferd_buffer_add_meta_tensor(buf, "", "metadata/x", counted_tensor(&released),
                                               &err),
                 &err, INFERD_EINVAL, "producer is empty");
    expect_error(inferd_buffer_add_meta_tensor(buf, NULL, "metadata/x", counted_tensor(&released),
                                               &err),
                 &err, INFERD_EINVAL, "producer is empty");
    expect_error(inferd_buffer_add_meta_image(buf, "det", "", counted_image(INFERD_PIXEL_GRAY8,
                                                                            &released),
                                              &err),
                 &err, INFERD_EINVAL, "format of 'det' is empty");
    expect_error(inferd_buffer_add_meta_image(buf, "det", NULL,
                                              counted_image(INFERD_PIXEL_GRAY8, &released), &err),
                 &err, INFERD_EINVAL, "format of 'det' is empty");
    expect_error(inferd_buffer_add_meta_tensor(NULL, "det", "metadata/x",
                                               counted_tensor(&released), &err),
                 &err, INFERD_EINVAL, "NULL");
    assert_int_equal(atomic_load(&released), 5);
    /* A NULL item, also where it would replace an entry. */
    assert_int_equal(inferd_buffer_add_meta_value(buf, "det", "metadata/x", int_value(1), &err),
                     INFERD_OK);
    expect_error(inferd_buffer_add_meta_value(buf, "det", "metadata/x", NULL, &err), &err,
                 INFERD_EINVAL, "item is NULL");
    expect_error(inferd_buffer_add_meta_tensor(buf, "det", "metadata/x", NULL, &err), &err,
                 INFERD_EINVAL, "item is NULL");
    expect_error(inferd_buffer_add_meta_image(buf, "det", "metadata/x", NULL, &err), &err,
                 INFERD_EINVAL, "item is NULL");
    /* A failed replace leaves the entry as it was. */
    inferd_meta m;
    assert_int_equal(inferd_buffer_meta_count(buf), 1);
    assert_true(inferd_buffer_find_meta(buf, "det", "metadata/x", &m));
    assert_int_equal(meta_int(&m), 1);
    inferd_buffer_unref(buf);
}

/* --- error ------------------------------------------------------------------ */

static void test_error_keeps_first(void **state)
{
    (void)state;
    inferd_buffer *buf = inferd_buffer_new();
    inferd_error ok;
    inferd_error_clear(&ok);
    inferd_buffer_set_error(buf, &ok); /* INFERD_OK is no error */
    inferd_buffer_set_error(buf, NULL);
    assert_null(inferd_buffer_error(buf));

    inferd_error first, second;
    inferd_error_set(&first, INFERD_EBACKEND, "model failed: shape mismatch");
    inferd_error_set(&second, INFERD_ETIMEOUT, "deadline passed");
    inferd_buffer_set_error(buf, &first);
    inferd_error_set(&first, INFERD_EIO, "overwritten"); /* the buffer holds a copy */
    inferd_buffer_set_error(buf, &second);
    const inferd_error *e = inferd_buffer_error(buf);
    assert_non_null(e);
    assert_int_equal(e->code, INFERD_EBACKEND);
    assert_string_equal(e->message, "model failed: shape mismatch");
    assert_ptr_equal(inferd_buffer_error(buf), e); /* stable */

    /* A hand-built error without its terminator is cut, not overrun. */
    inferd_buffer *buf2 = inferd_buffer_new();
    inferd_error raw;
    raw.code = INFERD_EIO;
    memset(raw.message, 'x', sizeof raw.message);
    inferd_buffer_set_error(buf2, &raw);
    assert_int_equal(strlen(inferd_buffer_error(buf2)->message), sizeof raw.message - 1);
    inferd_buffer_set_error(NULL, &raw);
    inferd_buffer_unref(buf2);
    inferd_buffer_unref(buf);
}

/* --- threads ---------------------------------------------------------------- */

#define NTHREADS 8
#define NROUNDS 400
#define NFORMATS 5

struct worker {
    inferd_buffer *buf;
    int id;
    atomic_int *released;
    int failures; /* checked by the main thread; cmocka asserts are not thread-safe */
};

/* Each worker holds its own reference, adds and replaces its own entries,
 * reads everybody's, tries to set the error, and drops its reference. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    inferd_buffer *buf = inferd_buffer_ref(w->buf);
    char producer[32], format[32];
    snprintf(producer, sizeof producer, "worker%d", w->id);
    for (int i = 0; i < NROUNDS; i++) {
        snprintf(format, sizeof format, "metadata/f%d", i % NFORMATS);
        inferd_buffer *extra = inferd_buffer_ref(buf); /* refcount churn */
        if (i % 7 == 0) {
            if (inferd_buffer_add_meta_tensor(buf, producer, format, counted_tensor(w->released),
                                              NULL) != INFERD_OK)
                w->failures++;
        } else if (inferd_buffer_add_meta_value(buf, producer, format, inferd_value_int(i),
                                                NULL) != INFERD_OK) {
            w->failures++;
        }
        /* Read back our own entry and somebody else's, and walk the list;
         * the items seen may be replaced meanwhile but stay valid. */
        inferd_meta m;
        if (!inferd_buffer_find_meta(buf, producer, format, &m))
            w->failures++;
        else if (m.value && inferd_value_int_or(m.value, -1) < 0)
            w->failures++;
        char other[32];
        snprintf(other, sizeof other, "worker%d", (w->id + 1) % NTHREADS);
        if (inferd_buffer_find_meta(buf, other, NULL, &m) && !m.value && !m.tensor)
            w->failures++;
        size_t n = inferd_buffer_meta_count(buf);
        for (size_t k = 0; k < n; k++)
            if (inferd_buffer_meta_at(buf, k, &m) && (!m.producer || !m.format))
                w->failures++;
        if (i == NROUNDS / 2) {
            inferd_error e;
            inferd_error_set(&e, INFERD_EBACKEND, "worker %d failed", w->id);
            inferd_buffer_set_error(buf, &e);
            const inferd_error *got = inferd_buffer_error(buf);
            if (!got || got->code != INFERD_EBACKEND)
                w->failures++;
        }
        inferd_buffer_unref(extra);
    }
    inferd_buffer_unref(buf);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    atomic_int released = 0;
    inferd_buffer *buf = inferd_buffer_new();
    pthread_t threads[NTHREADS];
    struct worker workers[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        workers[i] = (struct worker){.buf = buf, .id = i, .released = &released};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].failures, 0);
    }
    assert_int_equal(inferd_buffer_refcount(buf), 1);
    /* One entry per (worker, format), each holding the worker's last write. */
    assert_int_equal(inferd_buffer_meta_count(buf), NTHREADS * NFORMATS);
    for (int t = 0; t < NTHREADS; t++) {
        for (int f = 0; f < NFORMATS; f++) {
            char producer[32], format[32];
            snprintf(producer, sizeof producer, "worker%d", t);
            snprintf(format, sizeof format, "metadata/f%d", f);
            inferd_meta m;
            assert_true(inferd_buffer_find_meta(buf, producer, format, &m));
            int last = NROUNDS - NFORMATS + f; /* the last round that wrote format f */
            if (last % 7 == 0)
                assert_non_null(m.tensor);
            else
                assert_int_equal(meta_int(&m), last);
        }
    }
    /* The error is the first worker's that got there, intact. */
    const inferd_error *e = inferd_buffer_error(buf);
    assert_non_null(e);
    assert_int_equal(e->code, INFERD_EBACKEND);
    assert_non_null(strstr(e->message, "failed"));
    inferd_buffer_unref(buf);
    /* Every tensor added was released exactly once, replaced or not. */
    int added = 0;
    for (int i = 0; i < NROUNDS; i++)
        added += i % 7 == 0;
    assert_int_equal(atomic_load(&released), added * NTHREADS);
}

/* A derived buffer: same frame, the parent's metadata seen through it. */
static void test_derive(void **state)
{
    inferd_buffer *a = inferd_buffer_new();
    inferd_buffer_set_frame(a, 7, 2, 1234);
    assert_int_equal(inferd_buffer_add_meta_value(a, "crop", "metadata/transform",
                                                  inferd_value_int(1), NULL), INFERD_OK);
    inferd_error e;
    inferd_error_set(&e, INFERD_EIO, "decoder said no");
    inferd_buffer_set_error(a, &e);

    inferd_buffer *b = inferd_buffer_derive(a);
    assert_non_null(b);
    assert_ptr_equal(inferd_buffer_parent(b), a);
    assert_int_equal(inferd_buffer_refcount(a), 2);
    assert_int_equal(inferd_buffer_frame_id(b), 7);
    assert_int_equal(inferd_buffer_stream_id(b), 2);
    assert_int_equal(inferd_buffer_timestamp(b), 1234);
    assert_string_equal(inferd_buffer_error(b)->message, "decoder said no");
    assert_int_equal(inferd_buffer_payload_kind(b), INFERD_PAYLOAD_NONE);

    assert_int_equal(inferd_buffer_add_meta_value(b, "resize", "metadata/transform",
                                                  inferd_value_int(2), NULL), INFERD_OK);
    /* The child's entry for the same key shadows the parent's in find... */
    assert_int_equal(inferd_buffer_add_meta_value(b, "crop", "metadata/transform",
                                                  inferd_value_int(3), NULL), INFERD_OK);
    inferd_meta m;
    assert_true(inferd_buffer_find_meta(b, "crop", "metadata/transform", &m));
    assert_int_equal(inferd_value_int_or(m.value, 0), 3);
    assert_true(inferd_buffer_find_meta(b, "resize", NULL, &m));
    assert_false(inferd_buffer_find_meta(b, "nobody", NULL, &m));
    /* ... while meta_at lists the ancestors' entries first, in order. */
    assert_int_equal(inferd_buffer_meta_count(b), 3);
    assert_true(inferd_buffer_meta_at(b, 0, &m));
    assert_int_equal(inferd_value_int_or(m.value, 0), 1);
    assert_true(inferd_buffer_meta_at(b, 1, &m));
    assert_int_equal(inferd_value_int_or(m.value, 0), 2);
    assert_true(inferd_buffer_meta_at(b, 2, &m));
    assert_int_equal(inferd_value_int_or(m.value, 0), 3);
    assert_false(inferd_buffer_meta_at(b, 3, &m));
    /* The parent is unchanged and stays alive while the child does. */
    assert_int_equal(inferd_buffer_meta_count(a), 1);
    inferd_buffer_unref(a);
    assert_true(inferd_buffer_find_meta(b, "crop", NULL, &m));
    inferd_buffer *c = inferd_buffer_derive(b);
    assert_int_equal(inferd_buffer_meta_count(c), 3);
    inferd_buffer_unref(b);
    inferd_buffer_unref(c); /* frees c, b and a: the sanitizer run checks it */
    assert_null(inferd_buffer_derive(NULL));
    assert_null(inferd_buffer_parent(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_payload_value),
        cmocka_unit_test(test_payload_value_bad),
        cmocka_unit_test(test_payload_image),
        cmocka_unit_test(test_payload_tensors),
        cmocka_unit_test(test_payload_tensors_bad),
        cmocka_unit_test(test_meta_add_find),
        cmocka_unit_test(test_meta_replace),
        cmocka_unit_test(test_meta_bad),
        cmocka_unit_test(test_error_keeps_first),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_derive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
