/* test_value.c: unit tests for inferd/value.h (values, JSON, base64). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/value.h"

/* Asserts that `msg` contains `needle`, and says what it got when not. */
#define assert_contains(msg, needle)                                                    \
    do {                                                                                \
        if (!strstr((msg), (needle)))                                                   \
            fail_msg("message \"%s\" does not contain \"%s\"", (msg), (needle));        \
    } while (0)

static inferd_value *parse_ok(const char *text)
{
    inferd_value *v = NULL;
    inferd_error err = {0};
    inferd_status st = inferd_value_from_json(text, strlen(text), 0, &v, &err);
    if (st != INFERD_OK)
        fail_msg("parsing %s failed: %s", text, err.message);
    assert_non_null(v);
    return v;
}

/* Parses text, expects failure with code, returns the message in err. */
static void parse_fail(const char *text, size_t max_depth, inferd_status code, inferd_error *err)
{
    inferd_value *v = (inferd_value *)1; /* must be reset to NULL */
    inferd_status st = inferd_value_from_json(text, strlen(text), max_depth, &v, err);
    if (st != code)
        fail_msg("parsing %.60s: got status %d (%s), want %d", text, st, err->message, code);
    assert_int_equal(err->code, code);
    assert_null(v);
}

static char *dump(const inferd_value *v, unsigned flags)
{
    char *out = NULL;
    size_t len = 0;
    inferd_error err = {0};
    inferd_status st = inferd_value_to_json(v, flags, &out, &len, &err);
    if (st != INFERD_OK)
        fail_msg("to_json failed: %s", err.message);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void assert_dump(const inferd_value *v, unsigned flags, const char *want)
{
    char *got = dump(v, flags);
    assert_string_equal(got, want);
    free(got);
}

/* xorshift64: deterministic pseudo-random data for the round-trip tests. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* --- types and scalars ---------------------------------------------------- */

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_NULL), "null");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_BOOL), "bool");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_INT), "int");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_DOUBLE), "double");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_STRING), "string");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_BYTES), "bytes");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_ARRAY), "array");
    assert_string_equal(inferd_value_type_name(INFERD_VALUE_OBJECT), "object");
    assert_string_equal(inferd_value_type_name((inferd_value_type)99), "unknown");
}

static void test_scalars(void **state)
{
    (void)state;
    inferd_error err = {0};
    inferd_value *n = inferd_value_null();
    inferd_value *t = inferd_value_bool(true);
    inferd_value *f = inferd_value_bool(false);
    inferd_value *imin = inferd_value_int(INT64_MIN);
    inferd_value *imax = inferd_value_int(INT64_MAX);
    inferd_value *d = inferd_value_double(-2.5);

    assert_int_equal(inferd_value_type_of(n), INFERD_VALUE_NULL);
    assert_int_equal(inferd_value_type_of(t), INFERD_VALUE_BOOL);
    assert_int_equal(inferd_value_type_of(imin), INFERD_VALUE_INT);
    assert_int_equal(inferd_value_type_of(d), INFERD_VALUE_DOUBLE);
    assert_true(inferd_value_is(n, INFERD_VALUE_NULL));
    assert_true(inferd_value_is(d, INFERD_VALUE_DOUBLE));
    assert_false(inferd_value_is(d, INFERD_VALUE_INT));

    bool b = false;
    assert_int_equal(inferd_value_get_bool(t, &b, &err), INFERD_OK);
    assert_true(b);
    assert_int_equal(inferd_value_get_bool(f, &b, &err), INFERD_OK);
    assert_false(b);

    int64_t i = 0;
    assert_int_equal(inferd_value_get_int(imin, &i, &err), INFERD_OK);
    assert_true(i == INT64_MIN);
    assert_int_equal(inferd_value_get_int(imax, &i, &err), INFERD_OK);
    assert_true(i == INT64_MAX);

    double x = 0;
    assert_int_equal(inferd_value_get_double(d, &x, &err), INFERD_OK);
    assert_true(x == -2.5);
    /* numbers widen: an int reads as a double */
    inferd_value *seven = inferd_value_int(7);
    assert_int_equal(inferd_value_get_double(seven, &x, &err), INFERD_OK);
    assert_true(x == 7.0);
    /* out may be NULL: the call then only checks the type */
    assert_int_equal(inferd_value_get_int(seven, NULL, NULL), INFERD_OK);

    inferd_value *vals[] = {n, t, f, imin, imax, d, seven};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        inferd_value_free(vals[k]);
}

static void test_getters_wrong_type(void **state)
{
    (void)state;
    inferd_error err = {0};
    inferd_value *s = inferd_value_string("hi");
    inferd_value *d = inferd_value_double(1.5);
    inferd_value *i = inferd_value_int(3);
    inferd_value *b = inferd_value_bytes("x", 1);

    int64_t iv = 42;
    assert_int_equal(inferd_value_get_int(s, &iv, &err), INFERD_ETYPE);
    assert_int_equal(err.code, INFERD_ETYPE);
    assert_string_equal(err.message, "expected int, got string");
    assert_int_equal(iv, 42); /* untouched on failure */

    /* numbers never narrow: a double is not an int */
    assert_int_equal(inferd_value_get_int(d, &iv, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected int, got double");

    bool bv;
    assert_int_equal(inferd_value_get_bool(i, &bv, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected bool, got int");

    double dv;
    assert_int_equal(inferd_value_get_double(s, &dv, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected double, got string");

    const char *sv;
    assert_int_equal(inferd_value_get_string(b, &sv, NULL, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected string, got bytes");

    const void *bp;
    size_t bl;
    assert_int_equal(inferd_value_get_bytes(s, &bp, &bl, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected bytes, got string");

    /* a missing value reads as null */
    assert_int_equal(inferd_value_get_string(NULL, &sv, NULL, &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected string, got null");

    /* err may be NULL */
    assert_int_equal(inferd_value_get_bool(s, &bv, NULL), INFERD_ETYPE);

    inferd_value_free(s);
    inferd_value_free(d);
    inferd_value_free(i);
    inferd_value_free(b);
}

static void test_or_helpers(void **state)
{
    (void)state;
    inferd_value *s = inferd_value_string("name");
    inferd_value *i = inferd_value_int(-5);
    inferd_value *d = inferd_value_double(0.25);
    inferd_value *b = inferd_value_bool(true);

    assert_string_equal(inferd_value_string_or(s, "fb"), "name");
    assert_string_equal(inferd_value_string_or(i, "fb"), "fb");
    assert_string_equal(inferd_value_string_or(NULL, "fb"), "fb");
    assert_null(inferd_value_string_or(NULL, NULL));

    assert_int_equal(inferd_value_int_or(i, 9), -5);
    assert_int_equal(inferd_value_int_or(d, 9), 9); /* never narrows */
    assert_int_equal(inferd_value_int_or(NULL, 9), 9);

    assert_true(inferd_value_double_or(d, 9.0) == 0.25);
    assert_true(inferd_value_double_or(i, 9.0) == -5.0); /* widens */
    assert_true(inferd_value_double_or(s, 9.0) == 9.0);
    assert_true(inferd_value_double_or(NULL, 9.0) == 9.0);

    assert_true(inferd_value_bool_or(b, false));
    assert_false(inferd_value_bool_or(i, false));
    assert_true(inferd_value_bool_or(NULL, true));

    inferd_value_free(s);
    inferd_value_free(i);
    inferd_value_free(d);
    inferd_value_free(b);
}

/* --- strings and bytes ---------------------------------------------------- */

static void test_strings(void **state)
{
    (void)state;
    inferd_error err = {0};
    const char *out = NULL;
    size_t len = 99;

    /* the value owns a copy */
    char src[] = "hello";
    inferd_value *s = inferd_value_string(src);
    src[0] = 'J';
    assert_int_equal(inferd_value_get_string(s, &out, &len, &err), INFERD_OK);
    assert_string_equal(out, "hello");
    assert_int_equal(len, 5);
    inferd_value_free(s);

    /* embedded NULs survive, and a NUL follows the data */
    inferd_value *z = inferd_value_string_n("a\0b\0", 4);
    assert_int_equal(inferd_value_get_string(z, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "a\0b\0", 4);
    assert_int_equal(out[4], '\0');
    inferd_value_free(z);

    /* UTF-8 is stored byte for byte: e-acute, euro sign, G clef (4 bytes) */
    const char *u = "h\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e";
    inferd_value *uv = inferd_value_string(u);
    assert_int_equal(inferd_value_get_string(uv, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 10);
    assert_string_equal(out, u);
    inferd_value_free(uv);

    /* empty strings are real strings */
    inferd_value *e = inferd_value_string_n(NULL, 0);
    assert_int_equal(inferd_value_get_string(e, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    inferd_value_free(e);

    assert_null(inferd_value_string(NULL));
    assert_null(inferd_value_string_n(NULL, 3));
}

static void test_bytes(void **state)
{
    (void)state;
    inferd_error err = {0};
    const void *out = NULL;
    size_t len = 0;

    unsigned char data[] = {0, 1, 2, 255, 0};
    inferd_value *b = inferd_value_bytes(data, sizeof data);
    data[0] = 77; /* copied, so this does not show */
    assert_int_equal(inferd_value_get_bytes(b, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "\0\1\2\377\0", 5);
    assert_int_equal(inferd_value_type_of(b), INFERD_VALUE_BYTES);
    inferd_value_free(b);

    /* bytes_take keeps the very buffer; freeing the value frees it (ASan
     * would report a leak or a double free otherwise) */
    unsigned char *heap = malloc(3);
    memcpy(heap, "xyz", 3);
    inferd_value *t = inferd_value_bytes_take(heap, 3);
    assert_int_equal(inferd_value_get_bytes(t, &out, &len, &err), INFERD_OK);
    assert_ptr_equal(out, heap);
    assert_int_equal(len, 3);
    inferd_value_free(t);

    inferd_value *empty = inferd_value_bytes(NULL, 0);
    assert_int_equal(inferd_value_get_bytes(empty, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 0);
    assert_non_null(out);
    inferd_value_free(empty);

    inferd_value *empty2 = inferd_value_bytes_take(NULL, 0);
    assert_true(inferd_value_is(empty2, INFERD_VALUE_BYTES));
    inferd_value_free(empty2);

    assert_null(inferd_value_bytes(NULL, 4));
    assert_null(inferd_value_bytes_take(NULL, 4));
}

/* --- NULL safety ---------------------------------------------------------- */

static void test_null_safety(void **state)
{
    (void)state;
    inferd_error err = {0};
    inferd_value_free(NULL);
    assert_int_equal(inferd_value_type_of(NULL), INFERD_VALUE_NULL);
    assert_true(inferd_value_is(NULL, INFERD_VALUE_NULL));
    assert_false(inferd_value_is(NULL, INFERD_VALUE_OBJECT));
    assert_int_equal(inferd_value_array_len(NULL), 0);
    assert_int_equal(inferd_value_object_len(NULL), 0);
    assert_null(inferd_value_array_get(NULL, 0));
    assert_null(inferd_value_object_get(NULL, "a"));
    assert_null(inferd_value_object_path(NULL, "a.b"));
    assert_false(inferd_value_object_entry(NULL, 0, NULL, NULL));
    assert_null(inferd_value_copy(NULL));
    assert_true(inferd_value_equal(NULL, NULL));

    /* containers of the wrong kind */
    inferd_value *i = inferd_value_int(1);
    inferd_value *obj = inferd_value_object();
    inferd_value *arr = inferd_value_array();
    assert_int_equal(inferd_value_array_len(i), 0);
    assert_int_equal(inferd_value_array_len(obj), 0);
    assert_int_equal(inferd_value_object_len(arr), 0);
    assert_null(inferd_value_object_get(arr, "a"));
    assert_null(inferd_value_object_get(obj, NULL));
    assert_false(inferd_value_equal(i, NULL));

    /* push/set on a non-container: ETYPE, and the item is freed (a leak
     * would show under the sanitizer run) */
    assert_int_equal(inferd_value_array_push(i, inferd_value_string("x"), &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected array, got int");
    assert_int_equal(inferd_value_array_push(obj, inferd_value_int(2), &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected array, got object");
    assert_int_equal(inferd_value_array_push(NULL, inferd_value_int(2), &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected array, got null");
    assert_int_equal(inferd_value_object_set(arr, "k", inferd_value_int(2), &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected object, got array");
    assert_int_equal(inferd_value_object_set(NULL, "k", inferd_value_int(2), &err), INFERD_ETYPE);
    assert_int_equal(inferd_value_object_remove(i, "k", &err), INFERD_ETYPE);
    assert_string_equal(err.message, "expected object, got int");

    /* a NULL key is the caller's mistake; the item is still freed */
    assert_int_equal(inferd_value_object_set(obj, NULL, inferd_value_int(2), &err), INFERD_EINVAL);
    assert_contains(err.message, "key");
    assert_int_equal(inferd_value_object_remove(obj, NULL, &err), INFERD_EINVAL);

    /* a NULL item is what a constructor returns when memory ran out */
    assert_int_equal(inferd_value_array_push(arr, NULL, &err), INFERD_ENOMEM);
    assert_int_equal(inferd_value_object_set(obj, "k", NULL, &err), INFERD_ENOMEM);
    assert_int_equal(inferd_value_array_len(arr), 0);
    assert_int_equal(inferd_value_object_len(obj), 0);

    /* err may be NULL everywhere */
    assert_int_equal(inferd_value_array_push(i, inferd_value_int(1), NULL), INFERD_ETYPE);

    inferd_value_free(i);
    inferd_value_free(obj);
    inferd_value_free(arr);
}

/* --- arrays --------------------------------------------------------------- */

static void test_array(void **state)
{
    (void)state;
    inferd_error err = {0};
    inferd_value *arr = inferd_value_array();
    assert_int_equal(inferd_value_array_len(arr), 0);
    assert_null(inferd_value_array_get(arr, 0));
    for (int64_t k = 0; k < 100; k++)
        assert_int_equal(inferd_value_array_push(arr, inferd_value_int(k * 3), &err), INFERD_OK);
    assert_int_equal(inferd_value_array_len(arr), 100);
    for (size_t k = 0; k < 100; k++)
        assert_int_equal(inferd_value_int_or(inferd_value_array_get(arr, k), -1), (int64_t)k * 3);
    assert_null(inferd_value_array_get(arr, 100));
    assert_null(inferd_value_array_get(arr, SIZE_MAX));

    /* nested containers are owned by the array */
    inferd_value *inner = inferd_value_object();
    assert_int_equal(inferd_value_object_set(inner, "k", inferd_value_string("v"), &err),
                     INFERD_OK);
    assert_int_equal(inferd_value_array_push(arr, inner, &err), INFERD_OK);
    assert_ptr_equal(inferd_value_array_get(arr, 100), inner);
    inferd_value_free(arr);
}

/* --- objects -------------------------------------------------------------- */

/* Checks that obj's keys, in order, are exactly `keys`. */
static void assert_keys(const inferd_value *obj, const char *const *keys, size_t n)
{
    assert_int_equal(inferd_value_object_len(obj), n);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        inferd_value *item = NULL;
        assert_true(inferd_value_object_entry(obj, i, &k, &item));
        assert_string_equal(k, keys[i]);
        assert_ptr_equal(inferd_value_object_get(obj, keys[i]), item);
    }
    assert_false(inferd_value_object_entry(obj, n, NULL, NULL));
}

static void test_object_basic(void **state)
{
    (void)state;
    inferd_error err = {0};
    inferd_value *obj = inferd_value_object();
    assert_int_equal(inferd_value_object_set(obj, "b", inferd_value_int(1), &err), INFERD_OK);
    assert_int_equal(inferd_value_object_set(obj, "a", inferd_value_int(2), &err), INFERD_OK);
    assert_int_equal(inferd_value_object_set(obj, "c", inferd_value_int(3), &err), INFERD_OK);
    assert_int_equal(inferd_value_object_set(obj, "", inferd_value_int(4), &err), INFERD_OK);
    static const char *const order1[] = {"b", "a", "c", ""};
    assert_keys(obj, order1, 4);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(obj, "a"), 0), 2);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(obj, ""), 0), 4);
    assert_null(inferd_value_object_get(obj, "d"));
    assert_null(inferd_value_object_get(obj, "aa"));

    /* replacing keeps the key's position and the count */
    assert_int_equal(inferd_value_object_set(obj, "a", inferd_value_string("two"), &err),
                     INFERD_OK);
    assert_keys(obj, order1, 4);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(obj, "a"), ""), "two");

    /* setting the very same item again is harmless */
    inferd_value *same = inferd_value_object_get(obj, "a");
    assert_int_equal(inferd_value_object_set(obj, "a", same, &err), INFERD_OK);
    assert_ptr_equal(inferd_value_object_get(obj, "a"), same);

    /* removal keeps the order of the others */
    assert_int_equal(inferd_value_object_remove(obj, "b", &err), INFERD_OK);
    static const char *const order2[] = {"a", "c", ""};
    assert_keys(obj, order2, 3);
    assert_null(inferd_value_object_get(obj, "b"));

    assert_int_equal(inferd_value_object_remove(obj, "b", &err), INFERD_ENOTFOUND);
    assert_int_equal(err.code, INFERD_ENOTFOUND);
    assert_contains(err.message, "\"b\"");

    /* a removed key comes back at the end */
    assert_int_equal(inferd_value_object_set(obj, "b", inferd_value_null(), &err), INFERD_OK);
    static const char *const order3[] = {"a", "c", "", "b"};
    assert_keys(obj, order3, 4);

    /* entry() outputs are optional */
    const char *k = NULL;
    assert_true(inferd_value_object_entry(obj, 1, &k, NULL));
    assert_string_equal(k, "c");
    inferd_value *item = NULL;
    assert_true(inferd_value_object_entry(obj, 0, NULL, &item));
    assert_true(inferd_value_is(item, INFERD_VALUE_STRING));
    inferd_value_free(obj);
}

/* Many keys: the hash index must agree with a plain reference model through
 * inserts, replacements, removals and re-inserts. */
static void test_object_hash_index(void **state)
{
    (void)state;
    enum { N = 1000 };
    inferd_error err = {0};
    inferd_value *obj = inferd_value_object();
    static bool present[N];
    static int64_t expect[N];
    char key[32];

    for (int k = 0; k < N; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(inferd_value_object_set(obj, key, inferd_value_int(k), &err), INFERD_OK);
        present[k] = true;
        expect[k] = k;
    }
    assert_int_equal(inferd_value_object_len(obj), N);

    /* replace every 7th, remove every 3rd (in a scattered order) */
    for (int k = 0; k < N; k += 7) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(inferd_value_object_set(obj, key, inferd_value_int(-k), &err),
                         INFERD_OK);
        expect[k] = -k;
    }
    for (int step = 0; step < N; step++) {
        int k = (step * 389) % N; /* 389 is coprime with 1000: visits all */
        if (k % 3 != 0)
            continue;
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(inferd_value_object_remove(obj, key, &err), INFERD_OK);
        present[k] = false;
    }
    size_t count = 0;
    for (int k = 0; k < N; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        inferd_value *v = inferd_value_object_get(obj, key);
        if (present[k]) {
            count++;
            assert_non_null(v);
            assert_int_equal(inferd_value_int_or(v, INT64_MIN), expect[k]);
        } else {
            assert_null(v);
            assert_int_equal(inferd_value_object_remove(obj, key, &err), INFERD_ENOTFOUND);
        }
    }
    assert_int_equal(inferd_value_object_len(obj), count);

    /* insertion order of the survivors is unchanged */
    size_t pos = 0;
    for (int k = 0; k < N; k++) {
        if (!present[k])
            continue;
        const char *got = NULL;
        assert_true(inferd_value_object_entry(obj, pos++, &got, NULL));
        snprintf(key, sizeof key, "key-%d", k);
        assert_string_equal(got, key);
    }

    /* re-insert the removed keys: they go to the end, no duplicates */
    for (int k = 0; k < N; k += 3) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(inferd_value_object_set(obj, key, inferd_value_int(k + 5000), &err),
                         INFERD_OK);
    }
    assert_int_equal(inferd_value_object_len(obj), N);
    for (int k = 0; k < N; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        int64_t want = k % 3 == 0 ? k + 5000 : expect[k];
        assert_int_equal(inferd_value_int_or(inferd_value_object_get(obj, key), INT64_MIN), want);
    }
    assert_null(inferd_value_object_get(obj, "key-1000"));
    assert_null(inferd_value_object_get(obj, "key-"));

    /* shrink below the index threshold and grow again across it */
    for (int k = 0; k < N - 5; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(inferd_value_object_remove(obj, key, &err), INFERD_OK);
    }
    assert_int_equal(inferd_value_object_len(obj), 5);
    for (int k = N - 5; k < N; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_non_null(inferd_value_object_get(obj, key));
    }
    for (int k = 0; k < 40; k++) {
        snprintf(key, sizeof key, "new-%d", k);
        assert_int_equal(inferd_value_object_set(obj, key, inferd_value_int(k), &err), INFERD_OK);
    }
    assert_int_equal(inferd_value_object_len(obj), 45);
    for (int k = 0; k < 40; k++) {
        snprintf(key, sizeof key, "new-%d", k);
        assert_int_equal(inferd_value_int_or(inferd_value_object_get(obj, key), -1), k);
    }

    /* a copy of a big object finds every key too, and is equal */
    inferd_value *copy = inferd_value_copy(obj);
    assert_true(inferd_value_equal(obj, copy));
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(copy, "new-39"), -1), 39);
    inferd_value_free(copy);
    inferd_value_free(obj);
}

/* Crossing the index threshold one key at a time, checking every key at
 * every size (catches an off-by-one when the index is first built). */
static void test_object_threshold(void **state)
{
    (void)state;
    inferd_value *obj = inferd_value_object();
    char key[16];
    for (int n = 0; n < 80; n++) {
        snprintf(key, sizeof key, "%c%d", 'a' + n % 26, n);
        assert_int_equal(inferd_value_object_set(obj, key, inferd_value_int(n), NULL), INFERD_OK);
        for (int k = 0; k <= n; k++) {
            snprintf(key, sizeof key, "%c%d", 'a' + k % 26, k);
            assert_int_equal(inferd_value_int_or(inferd_value_object_get(obj, key), -1), k);
        }
    }
    inferd_value_free(obj);
}

static void test_object_path(void **state)
{
    (void)state;
    inferd_value *root = parse_ok("{\"mqtt\":{\"server\":\"broker\",\"tls\":{\"on\":true}},"
                                  "\"list\":[1],\"\":{\"x\":1},\"a\":{\"\":2}}");
    assert_string_equal(inferd_value_string_or(inferd_value_object_path(root, "mqtt.server"), ""),
                        "broker");
    assert_true(inferd_value_bool_or(inferd_value_object_path(root, "mqtt.tls.on"), false));
    assert_true(inferd_value_is(inferd_value_object_path(root, "mqtt"), INFERD_VALUE_OBJECT));
    assert_null(inferd_value_object_path(root, "mqtt.port"));
    assert_null(inferd_value_object_path(root, "mqtt.server.x")); /* through a string */
    assert_null(inferd_value_object_path(root, "list.0"));       /* arrays are not walked */
    assert_null(inferd_value_object_path(root, "nope.server"));
    assert_null(inferd_value_object_path(root, NULL));
    /* empty segments name the empty key */
    assert_int_equal(inferd_value_int_or(inferd_value_object_path(root, ".x"), -1), 1);
    assert_int_equal(inferd_value_int_or(inferd_value_object_path(root, "a."), -1), 2);
    /* a prefix of a key is not the key */
    assert_null(inferd_value_object_path(root, "mqt.server"));
    inferd_value_free(root);
}

/* --- copy and equality ---------------------------------------------------- */

static void test_copy_equal(void **state)
{
    (void)state;
    inferd_value *a = parse_ok("{\"s\":\"t\\u0000x\",\"n\":null,\"b\":false,\"i\":-3,\"d\":0.5,"
                               "\"arr\":[1,[2,{\"k\":\"v\"}]],\"o\":{}}");
    assert_int_equal(inferd_value_object_set(a, "bytes", inferd_value_bytes("\0\1", 2), NULL),
                     INFERD_OK);
    inferd_value *c = inferd_value_copy(a);
    assert_non_null(c);
    assert_ptr_not_equal(a, c);
    assert_true(inferd_value_equal(a, c));
    assert_true(inferd_value_equal(c, a));

    /* the copy is deep: changing it leaves the original alone */
    inferd_value *inner = inferd_value_array_get(inferd_value_object_get(c, "arr"), 1);
    assert_int_equal(inferd_value_array_push(inner, inferd_value_null(), NULL), INFERD_OK);
    assert_false(inferd_value_equal(a, c));
    assert_int_equal(inferd_value_array_len(
                         inferd_value_array_get(inferd_value_object_get(a, "arr"), 1)),
                     2);
    inferd_value_free(c);

    /* object equality ignores key order; array equality does not */
    inferd_value *x = parse_ok("{\"a\":1,\"b\":[1,2]}");
    inferd_value *y = parse_ok("{\"b\":[1,2],\"a\":1}");
    inferd_value *z = parse_ok("{\"b\":[2,1],\"a\":1}");
    inferd_value *w = parse_ok("{\"b\":[1,2],\"a\":1,\"c\":1}");
    inferd_value *u = parse_ok("{\"b\":[1,2],\"c\":1}");
    assert_true(inferd_value_equal(x, y));
    assert_false(inferd_value_equal(x, z));
    assert_false(inferd_value_equal(x, w));
    assert_false(inferd_value_equal(w, x));
    assert_false(inferd_value_equal(u, x)); /* same size, different keys */

    /* types matter: 1 != 1.0, "ab" (string) != "ab" (bytes) */
    inferd_value *one = inferd_value_int(1), *onef = inferd_value_double(1.0);
    inferd_value *str = inferd_value_string("ab"), *byt = inferd_value_bytes("ab", 2);
    inferd_value *str2 = inferd_value_string_n("ab\0", 3);
    assert_false(inferd_value_equal(one, onef));
    assert_false(inferd_value_equal(str, byt));
    assert_false(inferd_value_equal(str, str2)); /* length counts, NULs too */

    /* a NaN equals itself so that copies compare equal */
    inferd_value *nan = inferd_value_double(NAN);
    inferd_value *nan2 = inferd_value_copy(nan);
    assert_true(inferd_value_equal(nan, nan2));
    assert_false(inferd_value_equal(nan, onef));

    inferd_value *vals[] = {a, x, y, z, w, u, one, onef, str, byt, str2, nan, nan2};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        inferd_value_free(vals[k]);
}

/* --- JSON parsing --------------------------------------------------------- */

static void test_json_parse_types(void **state)
{
    (void)state;
    inferd_value *v = parse_ok(" {\"n\":null,\"t\":true,\"f\":false,\"i\":-12,\"d\":2.5e-3,"
                               "\"e\":1E2,\"s\":\"x\",\"a\":[],\"o\":{}} ");
    static const char *const keys[] = {"n", "t", "f", "i", "d", "e", "s", "a", "o"};
    assert_keys(v, keys, 9); /* insertion order from the text */
    assert_true(inferd_value_is(inferd_value_object_get(v, "n"), INFERD_VALUE_NULL));
    assert_true(inferd_value_bool_or(inferd_value_object_get(v, "t"), false));
    assert_false(inferd_value_bool_or(inferd_value_object_get(v, "f"), true));
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(v, "i"), 0), -12);
    assert_true(inferd_value_double_or(inferd_value_object_get(v, "d"), 0) == 2.5e-3);
    /* an exponent makes a double even without a point */
    assert_true(inferd_value_is(inferd_value_object_get(v, "e"), INFERD_VALUE_DOUBLE));
    assert_true(inferd_value_is(inferd_value_object_get(v, "a"), INFERD_VALUE_ARRAY));
    assert_true(inferd_value_is(inferd_value_object_get(v, "o"), INFERD_VALUE_OBJECT));
    inferd_value_free(v);

    /* any value may be the top level */
    inferd_value *i = parse_ok("42");
    assert_int_equal(inferd_value_int_or(i, 0), 42);
    inferd_value_free(i);

    /* int64 limits parse exactly */
    inferd_value *mx = parse_ok("[9223372036854775807,-9223372036854775808]");
    assert_true(inferd_value_int_or(inferd_value_array_get(mx, 0), 0) == INT64_MAX);
    assert_true(inferd_value_int_or(inferd_value_array_get(mx, 1), 0) == INT64_MIN);
    inferd_value_free(mx);

    /* len is honoured: the text need not end in a NUL */
    inferd_value *part = NULL;
    assert_int_equal(inferd_value_from_json("[1,2]garbage", 5, 0, &part, NULL), INFERD_OK);
    assert_int_equal(inferd_value_array_len(part), 2);
    inferd_value_free(part);

    /* JSON strings stay strings, even when they look like base64 */
    inferd_value *s = parse_ok("\"AAEC\"");
    assert_true(inferd_value_is(s, INFERD_VALUE_STRING));
    inferd_value_free(s);
}

static void test_json_parse_unicode(void **state)
{
    (void)state;
    /* escapes decode to UTF-8; \u0000 is allowed and kept */
    inferd_value *v = parse_ok("\"a\\u0000b\\u00e9\\ud834\\udd1e\\n\\\"\"");
    const char *s = NULL;
    size_t len = 0;
    assert_int_equal(inferd_value_get_string(v, &s, &len, NULL), INFERD_OK);
    assert_int_equal(len, 11);
    assert_memory_equal(s, "a\0b\xc3\xa9\xf0\x9d\x84\x9e\n\"", 11);
    inferd_value_free(v);

    /* raw UTF-8 passes through */
    inferd_value *r = parse_ok("{\"cl\xc3\xa9\":\"\xe2\x82\xac\"}");
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(r, "cl\xc3\xa9"), ""),
                        "\xe2\x82\xac");
    inferd_value_free(r);

    inferd_error err = {0};
    parse_fail("\"\\ud800\"", 0, INFERD_EINVAL, &err); /* lone surrogate */
    assert_contains(err.message, "invalid JSON at line 1");
    parse_fail("\"\xff\"", 0, INFERD_EINVAL, &err); /* raw invalid UTF-8 */
    assert_contains(err.message, "invalid JSON");
}

static void test_json_invalid(void **state)
{
    (void)state;
    inferd_error err = {0};
    parse_fail("[1,,2]", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON at line 1, column 4: ");
    assert_contains(err.message, "unexpected token");

    parse_fail("{\n  \"a\": tru\n}", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON at line 2, column ");
    assert_contains(err.message, "tru");

    parse_fail("[1] x", 0, INFERD_EINVAL, &err); /* trailing garbage */
    assert_contains(err.message, "invalid JSON at line 1, column 5");

    parse_fail("", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON at line 1");
    parse_fail("{\"a\":1", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON");
    parse_fail("[1, 2", 0, INFERD_EINVAL, &err);
    parse_fail("{'a':1}", 0, INFERD_EINVAL, &err);
    parse_fail("[NaN]", 0, INFERD_EINVAL, &err);
    parse_fail("1e400", 0, INFERD_EINVAL, &err); /* does not fit a double */
    assert_contains(err.message, "overflow");

    /* a NUL byte in the text ends nothing: it is an error */
    inferd_value *v = NULL;
    assert_int_equal(inferd_value_from_json("[1]\0", 4, 0, &v, &err), INFERD_EINVAL);
    assert_null(v);

    /* NUL bytes in keys cannot be represented by C-string keys */
    parse_fail("{\"a\\u0000\":1}", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "NUL");

    /* bad arguments */
    assert_int_equal(inferd_value_from_json(NULL, 3, 0, &v, &err), INFERD_EINVAL);
    assert_int_equal(inferd_value_from_json("1", 1, 0, NULL, &err), INFERD_EINVAL);
    assert_int_equal(inferd_value_from_json(NULL, 0, 0, &v, &err), INFERD_EINVAL); /* empty */
    assert_null(v);
}

static void test_json_duplicate_keys(void **state)
{
    (void)state;
    inferd_error err = {0};
    parse_fail("{\"a\":1,\"b\":2,\"a\":3}", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON at line 1, column ");
    assert_contains(err.message, "duplicate object key");
    assert_contains(err.message, "\"a\"");
    /* the same key in different objects is fine */
    inferd_value *v = parse_ok("{\"a\":{\"a\":1}}");
    inferd_value_free(v);
}

static void test_json_big_integers(void **state)
{
    (void)state;
    inferd_error err = {0};
    parse_fail("9223372036854775808", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "integer outside the int64 range");
    assert_contains(err.message, "9223372036854775808");
    parse_fail("{\"x\":-9223372036854775809}", 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "integer outside the int64 range");
    assert_contains(err.message, "line 1, column");
    /* written as a real, the same number is a double */
    inferd_value *v = parse_ok("9223372036854775808.0");
    assert_true(inferd_value_is(v, INFERD_VALUE_DOUBLE));
    inferd_value_free(v);
}

static char *nested(size_t depth, char open, char close)
{
    char *s = malloc(2 * depth + 2);
    memset(s, open, depth);
    s[depth] = '1';
    memset(s + depth + 1, close, depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static void test_json_depth(void **state)
{
    (void)state;
    inferd_error err = {0};
    char *ok = nested(INFERD_JSON_DEFAULT_MAX_DEPTH, '[', ']');
    inferd_value *v = parse_ok(ok);
    inferd_value_free(v);
    free(ok);

    char *deep = nested(INFERD_JSON_DEFAULT_MAX_DEPTH + 1, '[', ']');
    parse_fail(deep, 0, INFERD_EINVAL, &err);
    assert_contains(err.message, "JSON nested deeper than 64 levels");
    assert_contains(err.message, "column 65");
    free(deep);

    /* a caller's limit; objects count like arrays */
    parse_fail("{\"a\":[{\"b\":1}]}", 2, INFERD_EINVAL, &err);
    assert_contains(err.message, "JSON nested deeper than 2 levels");
    const char *three = "{\"a\":[{\"b\":1}]}";
    v = NULL;
    assert_int_equal(inferd_value_from_json(three, strlen(three), 3, &v, &err), INFERD_OK);
    inferd_value_free(v);
    /* siblings do not add up */
    const char *siblings = "[[1],[2],{\"a\":[3]}]";
    assert_int_equal(inferd_value_from_json(siblings, strlen(siblings), 3, &v, &err), INFERD_OK);
    inferd_value_free(v);

    /* brackets inside strings (also after an escaped quote) do not count */
    const char *s = "[\"[[[\\\"{{{\"]";
    assert_int_equal(inferd_value_from_json(s, strlen(s), 1, &v, &err), INFERD_OK);
    inferd_value_free(v);

    /* the deep line is reported */
    parse_fail("[\n [\n  [1]]]", 2, INFERD_EINVAL, &err);
    assert_contains(err.message, "line 3, column 3");

    /* beyond jansson's own limit the parse still fails cleanly */
    char *huge = nested(5000, '[', ']');
    parse_fail(huge, 10000, INFERD_EINVAL, &err);
    assert_contains(err.message, "invalid JSON");
    free(huge);
}

/* --- JSON writing --------------------------------------------------------- */

static inferd_value *sample(void)
{
    inferd_value *v = parse_ok("{\"b\":1,\"a\":[true,null,1.5,\"x\"],\"c\":{\"z\":{},\"y\":[]}}");
    return v;
}

static void test_json_write_formats(void **state)
{
    (void)state;
    inferd_value *v = sample();
    assert_dump(v, INFERD_JSON_COMPACT,
                "{\"b\":1,\"a\":[true,null,1.5,\"x\"],\"c\":{\"z\":{},\"y\":[]}}");
    assert_dump(v, INFERD_JSON_SORT_KEYS,
                "{\"a\":[true,null,1.5,\"x\"],\"b\":1,\"c\":{\"y\":[],\"z\":{}}}");
    assert_dump(v, INFERD_JSON_PRETTY,
                "{\n"
                "  \"b\": 1,\n"
                "  \"a\": [\n"
                "    true,\n"
                "    null,\n"
                "    1.5,\n"
                "    \"x\"\n"
                "  ],\n"
                "  \"c\": {\n"
                "    \"z\": {},\n"
                "    \"y\": []\n"
                "  }\n"
                "}");
    assert_dump(v, INFERD_JSON_PRETTY | INFERD_JSON_SORT_KEYS,
                "{\n"
                "  \"a\": [\n"
                "    true,\n"
                "    null,\n"
                "    1.5,\n"
                "    \"x\"\n"
                "  ],\n"
                "  \"b\": 1,\n"
                "  \"c\": {\n"
                "    \"y\": [],\n"
                "    \"z\": {}\n"
                "  }\n"
                "}");
    /* sorting leaves the object's own order alone */
    const char *k = NULL;
    assert_true(inferd_value_object_entry(v, 0, &k, NULL));
    assert_string_equal(k, "b");
    inferd_value_free(v);

    inferd_value *empty = inferd_value_array();
    assert_dump(empty, INFERD_JSON_PRETTY, "[]");
    inferd_value_free(empty);

    /* the length output is optional */
    inferd_value *n = inferd_value_int(-9);
    char *out = NULL;
    assert_int_equal(inferd_value_to_json(n, 0, &out, NULL, NULL), INFERD_OK);
    assert_string_equal(out, "-9");
    free(out);
    inferd_value_free(n);
}

static void test_json_write_scalars(void **state)
{
    (void)state;
    struct {
        double d;
        const char *want;
    } doubles[] = {
        {0.1, "0.1"},         {1.0, "1.0"},       {-0.0, "-0.0"},
        {2.5, "2.5"},         {1e300, "1e+300"},  {-1.25e-7, "-1.25e-07"},
        {NAN, "null"},        {INFINITY, "null"}, {-INFINITY, "null"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    for (size_t k = 0; k < sizeof doubles / sizeof doubles[0]; k++) {
        inferd_value *v = inferd_value_double(doubles[k].d);
        assert_dump(v, 0, doubles[k].want);
        inferd_value_free(v);
    }

    inferd_value *imin = inferd_value_int(INT64_MIN);
    assert_dump(imin, 0, "-9223372036854775808");
    inferd_value_free(imin);

    inferd_value *t = inferd_value_bool(true), *f = inferd_value_bool(false);
    inferd_value *n = inferd_value_null();
    assert_dump(t, 0, "true");
    assert_dump(f, 0, "false");
    assert_dump(n, 0, "null");
    inferd_value_free(t);
    inferd_value_free(f);
    inferd_value_free(n);

    /* escapes: quote, backslash, controls, NUL; UTF-8 and '/' stay as they are */
    inferd_value *s = inferd_value_string_n("q\"b\\n\nt\tc\x01z\0/\xc3\xa9\x7f", 16);
    assert_dump(s, 0, "\"q\\\"b\\\\n\\nt\\tc\\u0001z\\u0000/\xc3\xa9\x7f\"");
    inferd_value_free(s);

    /* bytes become base64 */
    inferd_value *obj = inferd_value_object();
    assert_int_equal(inferd_value_object_set(obj, "img", inferd_value_bytes("foob", 4), NULL),
                     INFERD_OK);
    assert_int_equal(inferd_value_object_set(obj, "none", inferd_value_bytes(NULL, 0), NULL),
                     INFERD_OK);
    assert_dump(obj, 0, "{\"img\":\"Zm9vYg==\",\"none\":\"\"}");
    inferd_value_free(obj);
}

static void test_json_write_errors(void **state)
{
    (void)state;
    inferd_error err = {0};
    char *out = (char *)1;
    assert_int_equal(inferd_value_to_json(NULL, 0, &out, NULL, &err), INFERD_EINVAL);
    assert_null(out);
    inferd_value *i = inferd_value_int(1);
    assert_int_equal(inferd_value_to_json(i, 0, NULL, NULL, &err), INFERD_EINVAL);
    inferd_value_free(i);

    /* strings must be UTF-8 to be written; the message says where */
    inferd_value *obj = parse_ok("{\"list\":[1,{}]}");
    inferd_value *inner = inferd_value_array_get(inferd_value_object_get(obj, "list"), 1);
    assert_int_equal(inferd_value_object_set(inner, "name", inferd_value_string("ab\xff"), NULL),
                     INFERD_OK);
    out = (char *)1;
    assert_int_equal(inferd_value_to_json(obj, 0, &out, NULL, &err), INFERD_EINVAL);
    assert_null(out);
    assert_string_equal(err.message, "list: [1]: name: string is not valid UTF-8 (at byte 2)");

    /* overlong encodings and surrogates are not UTF-8 either */
    const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        inferd_value *s = inferd_value_string(bad[k]);
        assert_int_equal(inferd_value_to_json(s, 0, &out, NULL, &err), INFERD_EINVAL);
        assert_contains(err.message, "not valid UTF-8");
        inferd_value_free(s);
    }

    /* a bad key is reported without echoing it */
    inferd_value *bk = inferd_value_object();
    assert_int_equal(inferd_value_object_set(bk, "k\xfe", inferd_value_int(1), NULL), INFERD_OK);
    assert_int_equal(inferd_value_to_json(bk, INFERD_JSON_SORT_KEYS, &out, NULL, &err),
                     INFERD_EINVAL);
    assert_string_equal(err.message, "object key: string is not valid UTF-8 (at byte 1)");
    inferd_value_free(bk);
    inferd_value_free(obj);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    /* canonical compact texts come back byte for byte */
    static const char *const texts[] = {
        "null",
        "true",
        "0",
        "-1",
        "3.25",
        "\"\"",
        "[]",
        "{}",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\u0000 \\\"q\\\"\"",
        "[1,-2.5,\"s\",null,false,[[]],{\"k\":{}}]",
        "{\"z\":1,\"a\":{\"y\":[1,2,3],\"b\":\"c\"},\"m\":null}",
        "{\"big\":9223372036854775807,\"small\":-9223372036854775808,\"tiny\":1e-300}",
    };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        inferd_value *v = parse_ok(texts[k]);
        char *out = dump(v, 0);
        assert_string_equal(out, texts[k]);
        /* and the pretty form parses back to an equal value */
        char *pretty = dump(v, INFERD_JSON_PRETTY | INFERD_JSON_SORT_KEYS);
        inferd_value *back = parse_ok(pretty);
        assert_true(inferd_value_equal(v, back));
        inferd_value_free(back);
        free(pretty);
        free(out);
        inferd_value_free(v);
    }

    /* doubles round-trip bit for bit, types included */
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int k = 0; k < 20000; k++) {
        uint64_t bits = rng_next(&seed);
        double d;
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            continue;
        inferd_value *v = inferd_value_double(d);
        char *out = dump(v, 0);
        inferd_value *back = parse_ok(out);
        assert_true(inferd_value_is(back, INFERD_VALUE_DOUBLE));
        double got = inferd_value_double_or(back, NAN);
        if (memcmp(&got, &d, sizeof d) != 0)
            fail_msg("%.17g written as %s read back as %.17g", d, out, got);
        inferd_value_free(back);
        free(out);
        inferd_value_free(v);
    }

    /* bytes come back as their base64 string */
    inferd_value *b = inferd_value_bytes("\xff\x00\x10", 3);
    char *out = dump(b, 0);
    inferd_value *back = parse_ok(out);
    const char *s = NULL;
    assert_int_equal(inferd_value_get_string(back, &s, NULL, NULL), INFERD_OK);
    void *raw = NULL;
    size_t rawlen = 0;
    assert_int_equal(inferd_base64_decode(s, strlen(s), &raw, &rawlen, NULL), INFERD_OK);
    assert_int_equal(rawlen, 3);
    assert_memory_equal(raw, "\xff\x00\x10", 3);
    free(raw);
    inferd_value_free(back);
    free(out);
    inferd_value_free(b);
}

/* --- base64 --------------------------------------------------------------- */

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648, section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};
    for (size_t k = 0; k < 7; k++) {
        size_t n = 99;
        char *enc = inferd_base64_encode(plain[k], strlen(plain[k]), &n);
        assert_non_null(enc);
        assert_string_equal(enc, coded[k]);
        assert_int_equal(n, strlen(coded[k]));
        free(enc);

        void *dec = NULL;
        size_t dlen = 99;
        assert_int_equal(inferd_base64_decode(coded[k], strlen(coded[k]), &dec, &dlen, NULL),
                         INFERD_OK);
        assert_non_null(dec);
        assert_int_equal(dlen, strlen(plain[k]));
        assert_memory_equal(dec, plain[k], dlen);
        free(dec);
    }
    /* every digit of the alphabet, both ways */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    void *dec = NULL;
    size_t dlen = 0;
    assert_int_equal(inferd_base64_decode(alphabet, 64, &dec, &dlen, NULL), INFERD_OK);
    assert_int_equal(dlen, 48);
    char *enc = inferd_base64_encode(dec, dlen, NULL);
    assert_string_equal(enc, alphabet);
    free(enc);
    free(dec);

    char *full = inferd_base64_encode("\xfb\xff\xbf", 3, NULL);
    assert_string_equal(full, "+/+/");
    free(full);
    assert_null(inferd_base64_encode(NULL, 3, NULL));
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    unsigned char data[1024];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (unsigned char)rng_next(&seed);

    size_t lens[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000, 1024};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k], elen = 0;
        char *enc = inferd_base64_encode(data, n, &elen);
        assert_non_null(enc);
        assert_int_equal(elen, (n + 2) / 3 * 4);
        assert_int_equal(strlen(enc), elen);

        void *dec = NULL;
        size_t dlen = 99;
        assert_int_equal(inferd_base64_decode(enc, elen, &dec, &dlen, NULL), INFERD_OK);
        assert_int_equal(dlen, n);
        if (n)
            assert_memory_equal(dec, data, n);
        free(dec);

        /* whitespace anywhere is skipped: a line break every 3 chars */
        char *spaced = malloc(elen * 2 + 4);
        size_t o = 0;
        spaced[o++] = ' ';
        for (size_t i = 0; i < elen; i++) {
            spaced[o++] = enc[i];
            if (i % 3 == 2)
                spaced[o++] = (i % 2) ? '\n' : '\t';
        }
        spaced[o++] = '\r';
        spaced[o++] = '\n';
        assert_int_equal(inferd_base64_decode(spaced, o, &dec, &dlen, NULL), INFERD_OK);
        assert_int_equal(dlen, n);
        if (n)
            assert_memory_equal(dec, data, n);
        free(dec);
        free(spaced);
        free(enc);
    }
}

static void test_base64_bad(void **state)
{
    (void)state;
    struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"Zm9v!A==", "invalid base64 character '!' at offset 4"},
        {"Zm9v\x01", "invalid base64 character 0x01 at offset 4"},
        {"Zm-_", "invalid base64 character '-' at offset 2"}, /* URL-safe alphabet */
        {"Zg=", "truncated base64"},
        {"Zm9", "truncated base64"},
        {"Z", "1 digit left over"},
        {"Z===", "misplaced base64 padding '=' at offset 1"},
        {"====", "misplaced base64 padding '=' at offset 0"},
        {"Zg=a", "base64 data after padding at offset 3"},
        {"Zg==Zg==", "base64 data after padding at offset 4"},
        {"Zm8==", "base64 data after padding at offset 4"},
        {"Zg== x", "base64 data after padding at offset 5"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        inferd_error err = {0};
        void *out = (void *)1;
        size_t len = 99;
        inferd_status st =
            inferd_base64_decode(cases[k].text, strlen(cases[k].text), &out, &len, &err);
        if (st != INFERD_EINVAL)
            fail_msg("decoding \"%s\": status %d, want EINVAL", cases[k].text, st);
        assert_int_equal(err.code, INFERD_EINVAL);
        assert_null(out);
        assert_int_equal(len, 0);
        assert_contains(err.message, cases[k].msg);
    }
    /* a NUL inside the given length is data, not an end */
    void *out = NULL;
    inferd_error err = {0};
    assert_int_equal(inferd_base64_decode("Zg==\0", 5, &out, NULL, &err), INFERD_EINVAL);
    assert_contains(err.message, "offset 4");
    /* bad arguments */
    assert_int_equal(inferd_base64_decode(NULL, 4, &out, NULL, &err), INFERD_EINVAL);
    assert_int_equal(inferd_base64_decode("Zg==", 4, NULL, NULL, &err), INFERD_EINVAL);
    /* trailing whitespace after padding is fine */
    assert_int_equal(inferd_base64_decode("Zg==\n", 5, &out, NULL, &err), INFERD_OK);
    assert_memory_equal(out, "f", 1);
    free(out);
    /* an empty (or all-blank) text is zero bytes */
    size_t len = 99;
    assert_int_equal(inferd_base64_decode(" \n", 2, &out, &len, &err), INFERD_OK);
    assert_int_equal(len, 0);
    assert_non_null(out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_getters_wrong_type),
        cmocka_unit_test(test_or_helpers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_object_basic),
        cmocka_unit_test(test_object_hash_index),
        cmocka_unit_test(test_object_threshold),
        cmocka_unit_test(test_object_path),
        cmocka_unit_test(test_copy_equal),
        cmocka_unit_test(test_json_parse_types),
        cmocka_unit_test(test_json_parse_unicode),
        cmocka_unit_test(test_json_invalid),
        cmocka_unit_test(test_json_duplicate_keys),
        cmocka_unit_test(test_json_big_integers),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_write_formats),
        cmocka_unit_test(test_json_write_scalars),
        cmocka_unit_test(test_json_write_errors),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_base64_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
