/* core/build_value.h: building a JSON-ready value without checking every
 * call. Internal to inferd (not installed).
 *
 * Each call takes v in every case. A failure (out of memory, a NULL
 * container) makes *ok false when ok is given, so that a builder checks
 * once at the end (a reply becomes a 500) instead of at every call; with ok
 * NULL a description may lose a field under memory pressure, never crash.
 */
#ifndef INFERD_CORE_BUILD_VALUE_H
#define INFERD_CORE_BUILD_VALUE_H

#include <stdbool.h>

#include "inferd/value.h"

static inline void inferd__put(inferd_value *obj, const char *key, inferd_value *v, bool *ok)
{
    if (!obj || !v || inferd_value_object_set(obj, key, v, NULL) != INFERD_OK) {
        if (!obj)
            inferd_value_free(v);
        if (ok)
            *ok = false;
    }
}

/* obj[key] = a copy of s; nothing when s is NULL. */
static inline void inferd__put_str(inferd_value *obj, const char *key, const char *s, bool *ok)
{
    if (s)
        inferd__put(obj, key, inferd_value_string(s), ok);
}

static inline void inferd__push(inferd_value *arr, inferd_value *v, bool *ok)
{
    if (!arr || !v || inferd_value_array_push(arr, v, NULL) != INFERD_OK) {
        if (!arr)
            inferd_value_free(v);
        if (ok)
            *ok = false;
    }
}

#endif
