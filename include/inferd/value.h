/* inferd/value.h: the dynamic value that requests, messages, properties,
 * configs and results are made of, and its JSON conversion.
 *
 * A value is a tree: null, bool, int (int64), double, string (UTF-8, with a
 * length), bytes (images travel as bytes), array, or object (keys keep their
 * insertion order; a key appears once). Ownership is strict: a container owns
 * what is put in it; inferd_value_free frees a whole tree. Getters that return
 * pointers return borrowed pointers that live as long as the value.
 */
#ifndef INFERD_VALUE_H
#define INFERD_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum inferd_value_type {
    INFERD_VALUE_NULL = 0,
    INFERD_VALUE_BOOL,
    INFERD_VALUE_INT,
    INFERD_VALUE_DOUBLE,
    INFERD_VALUE_STRING,
    INFERD_VALUE_BYTES,
    INFERD_VALUE_ARRAY,
    INFERD_VALUE_OBJECT
} inferd_value_type;

typedef struct inferd_value inferd_value;

/* "null", "bool", "int", "double", "string", "bytes", "array", "object". */
INFERD_API const char *inferd_value_type_name(inferd_value_type type);

/* Constructors return a new value (owned by the caller), or NULL when memory
 * is exhausted. Strings and bytes are copied. */
INFERD_API inferd_value *inferd_value_null(void);
INFERD_API inferd_value *inferd_value_bool(bool b);
INFERD_API inferd_value *inferd_value_int(int64_t i);
INFERD_API inferd_value *inferd_value_double(double d);
INFERD_API inferd_value *inferd_value_string(const char *s); /* NUL-terminated */
INFERD_API inferd_value *inferd_value_string_n(const char *s, size_t len); /* may hold NULs */
INFERD_API inferd_value *inferd_value_bytes(const void *data, size_t len);
/* Takes ownership of data, which must come from malloc; it is freed with the
 * value (also when this call fails). Avoids copying large payloads. */
INFERD_API inferd_value *inferd_value_bytes_take(void *data, size_t len);
INFERD_API inferd_value *inferd_value_array(void);
INFERD_API inferd_value *inferd_value_object(void);

/* Frees v and everything it contains. NULL is allowed. */
INFERD_API void inferd_value_free(inferd_value *v);
/* A deep copy, or NULL when memory is exhausted. */
INFERD_API inferd_value *inferd_value_copy(const inferd_value *v);
/* Deep equality (an int and a double are different values). */
INFERD_API bool inferd_value_equal(const inferd_value *a, const inferd_value *b);

INFERD_API inferd_value_type inferd_value_type_of(const inferd_value *v);
INFERD_API bool inferd_value_is(const inferd_value *v, inferd_value_type type);

/* Typed getters: INFERD_ETYPE with a message naming both types when v is not
 * of that type. get_double also accepts an int (numbers widen; never narrow). */
INFERD_API inferd_status inferd_value_get_bool(const inferd_value *v, bool *out, inferd_error *err);
INFERD_API inferd_status inferd_value_get_int(const inferd_value *v, int64_t *out,
                                              inferd_error *err);
INFERD_API inferd_status inferd_value_get_double(const inferd_value *v, double *out,
                                                 inferd_error *err);
/* *out is NUL-terminated; *len (optional) is the length without the NUL. */
INFERD_API inferd_status inferd_value_get_string(const inferd_value *v, const char **out,
                                                 size_t *len, inferd_error *err);
INFERD_API inferd_status inferd_value_get_bytes(const inferd_value *v, const void **out,
                                                size_t *len, inferd_error *err);

/* Convenience readers that return a fallback when v is NULL or of another type. */
INFERD_API const char *inferd_value_string_or(const inferd_value *v, const char *fallback);
INFERD_API int64_t inferd_value_int_or(const inferd_value *v, int64_t fallback);
INFERD_API double inferd_value_double_or(const inferd_value *v, double fallback);
INFERD_API bool inferd_value_bool_or(const inferd_value *v, bool fallback);

/* Arrays. push takes ownership of item (and frees it if the push fails). */
INFERD_API size_t inferd_value_array_len(const inferd_value *arr); /* 0 if not an array */
INFERD_API inferd_value *inferd_value_array_get(const inferd_value *arr, size_t i);
/*  borrowed, NULL if out of range */
INFERD_API inferd_status inferd_value_array_push(inferd_value *arr, inferd_value *item,
                                                 inferd_error *err);

/* Objects. set takes ownership of item (and frees it if the set fails) and
 * replaces an existing key in place. get returns a borrowed pointer or NULL. */
INFERD_API size_t inferd_value_object_len(const inferd_value *obj); /* 0 if not an object */
INFERD_API inferd_value *inferd_value_object_get(const inferd_value *obj, const char *key);
INFERD_API inferd_status inferd_value_object_set(inferd_value *obj, const char *key,
                                                 inferd_value *item, inferd_error *err);
/* Removes key and frees its value; INFERD_ENOTFOUND if absent. */
INFERD_API inferd_status inferd_value_object_remove(inferd_value *obj, const char *key,
                                                    inferd_error *err);
/* The i-th entry in insertion order; returns false when out of range. */
INFERD_API bool inferd_value_object_entry(const inferd_value *obj, size_t i, const char **key,
                                          inferd_value **item);
/* Follows a dotted path ("mqtt.server") through nested objects; NULL if absent. */
INFERD_API inferd_value *inferd_value_object_path(const inferd_value *obj, const char *path);

/* JSON.
 * Parsing refuses invalid JSON (the message gives line and column), duplicate
 * keys, integers outside int64, and nesting deeper than max_depth (0 means
 * INFERD_JSON_DEFAULT_MAX_DEPTH). JSON has no bytes: they never come out of a
 * parse; a JSON string stays a string. */
#define INFERD_JSON_DEFAULT_MAX_DEPTH 64
INFERD_API inferd_status inferd_value_from_json(const char *text, size_t len, size_t max_depth,
                                                inferd_value **out, inferd_error *err);

/* Serialising writes bytes as a base64 string (RFC 4648 with padding) and
 * non-finite doubles as null. Flags: */
enum {
    INFERD_JSON_COMPACT = 0,
    INFERD_JSON_PRETTY = 1 << 0, /* two-space indent */
    INFERD_JSON_SORT_KEYS = 1 << 1
};
/* Returns a malloc'd NUL-terminated string (free with free()); *len optional. */
INFERD_API inferd_status inferd_value_to_json(const inferd_value *v, unsigned flags, char **out,
                                              size_t *len, inferd_error *err);

/* Base64 (RFC 4648, standard alphabet, padding required on decode; ASCII
 * whitespace is skipped on decode). Results are malloc'd; free with free(). */
INFERD_API char *inferd_base64_encode(const void *data, size_t len, size_t *out_len);
INFERD_API inferd_status inferd_base64_decode(const char *text, size_t len, void **out,
                                              size_t *out_len, inferd_error *err);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_VALUE_H */
