/* test_tensor.c: dtypes, shapes and tensors (src/core/tensor.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "inferd/tensor.h"

/* Checks the status, the error's code, and that the message names the problem. */
static void expect_error(inferd_status st, const inferd_error *err, inferd_status code,
                         const char *needle)
{
    assert_int_equal(st, code);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", err->message, needle);
}

static const struct {
    inferd_dtype dtype;
    size_t size;
    const char *kserve, *numpy;
} all_dtypes[] = {
    {INFERD_DTYPE_BOOL, 1, "BOOL", "bool"},
    {INFERD_DTYPE_UINT8, 1, "UINT8", "uint8"},
    {INFERD_DTYPE_INT8, 1, "INT8", "int8"},
    {INFERD_DTYPE_UINT16, 2, "UINT16", "uint16"},
    {INFERD_DTYPE_INT16, 2, "INT16", "int16"},
    {INFERD_DTYPE_UINT32, 4, "UINT32", "uint32"},
    {INFERD_DTYPE_INT32, 4, "INT32", "int32"},
    {INFERD_DTYPE_UINT64, 8, "UINT64", "uint64"},
    {INFERD_DTYPE_INT64, 8, "INT64", "int64"},
    {INFERD_DTYPE_FLOAT16, 2, "FP16", "float16"},
    {INFERD_DTYPE_FLOAT32, 4, "FP32", "float32"},
    {INFERD_DTYPE_FLOAT64, 8, "FP64", "float64"},
};
#define NDTYPES (sizeof all_dtypes / sizeof all_dtypes[0])

/* --- dtypes ------------------------------------------------------------------ */

static void test_dtype_size_and_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDTYPES; i++) {
        assert_int_equal(inferd_dtype_size(all_dtypes[i].dtype), all_dtypes[i].size);
        assert_string_equal(inferd_dtype_name(all_dtypes[i].dtype), all_dtypes[i].kserve);
    }
    assert_int_equal(inferd_dtype_size(INFERD_DTYPE_INVALID), 0);
    assert_int_equal(inferd_dtype_size((inferd_dtype)99), 0);
    assert_string_equal(inferd_dtype_name(INFERD_DTYPE_INVALID), "INVALID");
    assert_string_equal(inferd_dtype_name((inferd_dtype)99), "INVALID");
}

static void test_dtype_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDTYPES; i++) {
        inferd_dtype d = INFERD_DTYPE_INVALID;
        inferd_error err;
        assert_int_equal(inferd_dtype_parse(all_dtypes[i].kserve, &d, &err), INFERD_OK);
        assert_int_equal(d, all_dtypes[i].dtype);
        d = INFERD_DTYPE_INVALID;
        assert_int_equal(inferd_dtype_parse(all_dtypes[i].numpy, &d, &err), INFERD_OK);
        assert_int_equal(d, all_dtypes[i].dtype);
        /* name -> parse round trip */
        assert_int_equal(inferd_dtype_parse(inferd_dtype_name(all_dtypes[i].dtype), &d, NULL),
                         INFERD_OK);
        assert_int_equal(d, all_dtypes[i].dtype);
    }
}

static void test_dtype_parse_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_dtype d = INFERD_DTYPE_UINT8;
    /* Names are case-sensitive. */
    expect_error(inferd_dtype_parse("fp32", &d, &err), &err, INFERD_EINVAL, "'fp32'");
    expect_error(inferd_dtype_parse("Float32", &d, &err), &err, INFERD_EINVAL, "'Float32'");
    expect_error(inferd_dtype_parse("", &d, &err), &err, INFERD_EINVAL, "unknown dtype");
    expect_error(inferd_dtype_parse("INVALID", &d, &err), &err, INFERD_EINVAL, "'INVALID'");
    /* Valid KServe dtypes that a tensor cannot hold. */
    expect_error(inferd_dtype_parse("BYTES", &d, &err), &err, INFERD_EUNSUPPORTED, "BYTES");
    expect_error(inferd_dtype_parse("BF16", &d, &err), &err, INFERD_EUNSUPPORTED, "BF16");
    expect_error(inferd_dtype_parse(NULL, &d, &err), &err, INFERD_EINVAL, "NULL");
    assert_int_equal(d, INFERD_DTYPE_UINT8); /* untouched on failure */
    /* A NULL err is allowed. */
    assert_int_equal(inferd_dtype_parse("nope", &d, NULL), INFERD_EINVAL);
}

/* --- shapes ------------------------------------------------------------------ */

static void test_shape_count(void **state)
{
    (void)state;
    inferd_error err;
    size_t n = 99;
    assert_int_equal(inferd_shape_count(0, NULL, &n, &err), INFERD_OK);
    assert_int_equal(n, 1); /* a scalar */
    int64_t s[] = {1, 3, 224, 224};
    assert_int_equal(inferd_shape_count(4, s, &n, &err), INFERD_OK);
    assert_int_equal(n, 3 * 224 * 224);
    int64_t empty[] = {4, 0, 7};
    assert_int_equal(inferd_shape_count(3, empty, &n, &err), INFERD_OK);
    assert_int_equal(n, 0);
    int64_t full[INFERD_TENSOR_MAX_DIMS] = {1, 2, 1, 2, 1, 2, 1, 2};
    assert_int_equal(inferd_shape_count(INFERD_TENSOR_MAX_DIMS, full, &n, &err), INFERD_OK);
    assert_int_equal(n, 16);
    /* count is optional: validation only */
    assert_int_equal(inferd_shape_count(4, s, NULL, &err), INFERD_OK);
}

static void test_shape_count_bad(void **state)
{
    (void)state;
    inferd_error err;
    size_t n = 42;
    int64_t neg[] = {2, -3, 4};
    expect_error(inferd_shape_count(3, neg, &n, &err), &err, INFERD_ERANGE, "dimension 1");
    assert_non_null(strstr(err.message, "-3"));
    /* The negative dim is reported even after a zero dim. */
    int64_t zero_neg[] = {0, -1};
    expect_error(inferd_shape_count(2, zero_neg, &n, &err), &err, INFERD_ERANGE, "dimension 1");

    int64_t big[] = {INT64_MAX, 3};
    expect_error(inferd_shape_count(2, big, &n, &err), &err, INFERD_ERANGE, "too many elements");
    assert_non_null(strstr(err.message, "[9223372036854775807,3]"));
    int64_t big2[] = {(int64_t)1 << 32, (int64_t)1 << 32};
    expect_error(inferd_shape_count(2, big2, &n, &err), &err, INFERD_ERANGE, "too many elements");

    int64_t nine[INFERD_TENSOR_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_error(inferd_shape_count(INFERD_TENSOR_MAX_DIMS + 1, nine, &n, &err), &err,
                 INFERD_ERANGE, "9 dimensions");
    expect_error(inferd_shape_count(2, NULL, &n, &err), &err, INFERD_EINVAL, "shape is NULL");
    assert_int_equal(n, 42); /* untouched on failure */
}

static void test_shape_format(void **state)
{
    (void)state;
    char buf[64];
    int64_t s[] = {1, 3, 224, 224};
    assert_ptr_equal(inferd_shape_format(4, s, buf, sizeof buf), buf);
    assert_string_equal(buf, "[1,3,224,224]");
    assert_string_equal(inferd_shape_format(0, NULL, buf, sizeof buf), "[]");
    int64_t neg[] = {-1, 5};
    assert_string_equal(inferd_shape_format(2, neg, buf, sizeof buf), "[-1,5]");
    int64_t one[] = {7};
    assert_string_equal(inferd_shape_format(1, one, buf, sizeof buf), "[7]");

    /* Truncation always leaves a terminated prefix. */
    char small[6];
    memset(small, 'x', sizeof small);
    inferd_shape_format(4, s, small, sizeof small);
    assert_string_equal(small, "[1,3,");
    char one_byte[1] = {'x'};
    inferd_shape_format(4, s, one_byte, sizeof one_byte);
    assert_int_equal(one_byte[0], '\0');
    /* size 0: nothing is written */
    char untouched = 'x';
    assert_ptr_equal(inferd_shape_format(4, s, &untouched, 0), &untouched);
    assert_int_equal(untouched, 'x');
}

/* --- tensors ----------------------------------------------------------------- */

static void test_tensor_new(void **state)
{
    (void)state;
    inferd_error err;
    inferd_tensor *t = NULL;
    int64_t s[] = {2, 3};
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_FLOAT32, 2, s, &t, &err), INFERD_OK);
    assert_non_null(t);
    assert_int_equal(t->dtype, INFERD_DTYPE_FLOAT32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->nbytes, 24);
    assert_int_equal(inferd_tensor_count(t), 6);
    assert_null(t->name);
    assert_non_null(t->data);
    assert_int_equal((uintptr_t)t->data % 64, 0);
    const uint8_t *bytes = t->data;
    for (size_t i = 0; i < t->nbytes; i++)
        assert_int_equal(bytes[i], 0);
    /* The data is writable over its whole size (ASan checks the bounds). */
    float *f = t->data;
    for (size_t i = 0; i < 6; i++)
        f[i] = (float)i;
    inferd_tensor_free(t);
}

static void test_tensor_new_scalar_and_empty(void **state)
{
    (void)state;
    inferd_tensor *t = NULL;
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_INT64, 0, NULL, &t, NULL), INFERD_OK);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->nbytes, 8);
    assert_int_equal(inferd_tensor_count(t), 1);
    *(int64_t *)t->data = -5;
    inferd_tensor_free(t);

    int64_t s[] = {0, 3};
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_UINT8, 2, s, &t, NULL), INFERD_OK);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(inferd_tensor_count(t), 0);
    assert_non_null(t->data); /* owned data is never NULL */
    inferd_tensor_free(t);
}

static void test_tensor_new_bad(void **state)
{
    (void)state;
    inferd_error err;
    inferd_tensor sentinel;
    inferd_tensor *t = &sentinel; /* must be reset to NULL on failure */
    int64_t neg[] = {1, 3, -224, 224};
    expect_error(inferd_tensor_new(INFERD_DTYPE_FLOAT32, 4, neg, &t, &err), &err, INFERD_ERANGE,
                 "dimension 2");
    assert_null(t);

    int64_t s[INFERD_TENSOR_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_error(inferd_tensor_new(INFERD_DTYPE_FLOAT32, INFERD_TENSOR_MAX_DIMS + 1, s, &t, &err),
                 &err, INFERD_ERANGE, "at most 8");
    expect_error(inferd_tensor_new(INFERD_DTYPE_INVALID, 1, s, &t, &err), &err, INFERD_EINVAL,
                 "dtype");
    expect_error(inferd_tensor_new((inferd_dtype)99, 1, s, &t, &err), &err, INFERD_EINVAL, "dtype");

    /* The element count fits, count * 8 bytes does not. */
    int64_t huge[] = {(int64_t)1 << 62};
    expect_error(inferd_tensor_new(INFERD_DTYPE_FLOAT64, 1, huge, &t, &err), &err, INFERD_ERANGE,
                 "too large");
    assert_non_null(strstr(err.message, "FP64"));
    int64_t over[] = {INT64_MAX, INT64_MAX};
    expect_error(inferd_tensor_new(INFERD_DTYPE_UINT8, 2, over, &t, &err), &err, INFERD_ERANGE,
                 "too many elements");
    expect_error(inferd_tensor_new(INFERD_DTYPE_UINT8, 1, s, NULL, &err), &err, INFERD_EINVAL,
                 "out");
    assert_null(t);
}

struct release_probe {
    int calls;
    void *data;
};

static void count_release(void *ctx, void *data)
{
    struct release_probe *p = ctx;
    p->calls++;
    p->data = data;
}

static void test_tensor_wrap(void **state)
{
    (void)state;
    inferd_error err;
    float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[] = {2, 3};
    struct release_probe probe = {0};
    inferd_tensor *t = NULL;
    assert_int_equal(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 2, s, data, sizeof data,
                                        count_release, &probe, &t, &err),
                     INFERD_OK);
    assert_ptr_equal(t->data, data); /* no copy */
    assert_int_equal(t->nbytes, 24);
    assert_int_equal(inferd_tensor_count(t), 6);
    assert_int_equal(probe.calls, 0);
    inferd_tensor_free(t);
    assert_int_equal(probe.calls, 1);
    assert_ptr_equal(probe.data, data);

    /* No release callback: the data is simply not the tensor's. */
    assert_int_equal(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 2, s, data, sizeof data, NULL, NULL,
                                        &t, &err),
                     INFERD_OK);
    inferd_tensor_free(t);
    assert_float_equal(data[5], 6.0f, 0.0f);

    /* Scalar and empty tensors. */
    int64_t scalar = 7;
    assert_int_equal(inferd_tensor_wrap(INFERD_DTYPE_INT64, 0, NULL, &scalar, sizeof scalar, NULL,
                                        NULL, &t, &err),
                     INFERD_OK);
    assert_int_equal(inferd_tensor_count(t), 1);
    inferd_tensor_free(t);
    int64_t zero[] = {0};
    assert_int_equal(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 1, zero, NULL, 0, NULL, NULL, &t,
                                        &err),
                     INFERD_OK);
    inferd_tensor_free(t);
}

static void test_tensor_wrap_bad(void **state)
{
    (void)state;
    inferd_error err;
    float data[6] = {0};
    int64_t s[] = {2, 3};
    struct release_probe probe = {0};
    inferd_tensor *t = NULL;

    /* Shape that does not match the byte size: the message gives both sizes. */
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 2, s, data, 20, count_release, &probe,
                                    &t, &err),
                 &err, INFERD_EINVAL, "tensor [2,3] of FP32 needs 24 bytes, got 20");
    assert_null(t);
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_FLOAT64, 2, s, data, sizeof data, count_release,
                                    &probe, &t, &err),
                 &err, INFERD_EINVAL, "tensor [2,3] of FP64 needs 48 bytes, got 24");
    int64_t neg[] = {2, -3};
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 2, neg, data, sizeof data, count_release,
                                    &probe, &t, &err),
                 &err, INFERD_ERANGE, "dimension 1 is negative (-3)");
    int64_t nine[INFERD_TENSOR_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_UINT8, 9, nine, data, 1, count_release, &probe,
                                    &t, &err),
                 &err, INFERD_ERANGE, "9 dimensions");
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_FLOAT32, 2, s, NULL, 24, count_release, &probe,
                                    &t, &err),
                 &err, INFERD_EINVAL, "data is NULL");
    expect_error(inferd_tensor_wrap(INFERD_DTYPE_INVALID, 2, s, data, 24, count_release, &probe,
                                    &t, &err),
                 &err, INFERD_EINVAL, "dtype");
    /* On failure the caller keeps ownership: release was never called. */
    assert_int_equal(probe.calls, 0);
    assert_null(t);
}

static void test_tensor_set_name(void **state)
{
    (void)state;
    inferd_error err;
    inferd_tensor *t = NULL;
    int64_t s[] = {1};
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_UINT8, 1, s, &t, &err), INFERD_OK);
    char name[] = "logits";
    assert_int_equal(inferd_tensor_set_name(t, name, &err), INFERD_OK);
    name[0] = 'X'; /* the tensor holds a copy */
    assert_string_equal(t->name, "logits");
    assert_int_equal(inferd_tensor_set_name(t, "probs", &err), INFERD_OK);
    assert_string_equal(t->name, "probs");
    assert_int_equal(inferd_tensor_set_name(t, NULL, &err), INFERD_OK);
    assert_null(t->name);
    assert_int_equal(inferd_tensor_set_name(t, "out", &err), INFERD_OK);
    inferd_tensor_free(t); /* frees the name too (ASan: no leak) */

    expect_error(inferd_tensor_set_name(NULL, "x", &err), &err, INFERD_EINVAL, "tensor is NULL");
}

static void test_tensor_null_safe(void **state)
{
    (void)state;
    assert_int_equal(inferd_tensor_count(NULL), 0);
    inferd_tensor_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_size_and_name),
        cmocka_unit_test(test_dtype_parse),
        cmocka_unit_test(test_dtype_parse_bad),
        cmocka_unit_test(test_shape_count),
        cmocka_unit_test(test_shape_count_bad),
        cmocka_unit_test(test_shape_format),
        cmocka_unit_test(test_tensor_new),
        cmocka_unit_test(test_tensor_new_scalar_and_empty),
        cmocka_unit_test(test_tensor_new_bad),
        cmocka_unit_test(test_tensor_wrap),
        cmocka_unit_test(test_tensor_wrap_bad),
        cmocka_unit_test(test_tensor_set_name),
        cmocka_unit_test(test_tensor_null_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
