/* value.c: the dynamic value tree, its accessors, and JSON conversion.
 *
 * Ownership: a value owns its string/bytes buffer; an array owns its items;
 * an object owns its keys, its items and its hash index. Parsing goes through
 * jansson; writing is done here, so that doubles come out in their shortest
 * round-tripping form and bytes are base64-encoded without an extra tree. */
#include "inferd/value.h"
#include "core/footprint.h"
#include "core/utf8.h"

#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more keys than this get a hash index; below it a linear scan
 * over the (cache-friendly) entry array is as fast. */
#define OBJ_INDEX_THRESHOLD 16
#define OBJ_INDEX_MIN_SLOTS 32

struct obj_entry {
    char *key; /* owned, NUL-terminated */
    size_t key_len;
    uint64_t hash;
    inferd_value *item; /* owned */
};

struct value_array {
    inferd_value **items;
    size_t len, cap;
};

/* Entries stay in insertion order in a dense array. The index, once built,
 * is an open-addressing (linear probing) table of entry positions + 1 (0 is
 * an empty slot), kept at most half full so every probe ends. */
struct value_object {
    struct obj_entry *entries;
    size_t len, cap;
    size_t *slots; /* NULL until the object grows past OBJ_INDEX_THRESHOLD */
    size_t nslots; /* a power of two */
};

struct inferd_value {
    inferd_value_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *data; /* never NULL; strings also keep a NUL at data[len] */
            size_t len;
        } buf;
        struct value_array arr;
        struct value_object obj;
    } u;
};

/* --- construction ------------------------------------------------------- */

const char *inferd_value_type_name(inferd_value_type type)
{
    switch (type) {
    case INFERD_VALUE_NULL: return "null";
    case INFERD_VALUE_BOOL: return "bool";
    case INFERD_VALUE_INT: return "int";
    case INFERD_VALUE_DOUBLE: return "double";
    case INFERD_VALUE_STRING: return "string";
    case INFERD_VALUE_BYTES: return "bytes";
    case INFERD_VALUE_ARRAY: return "array";
    case INFERD_VALUE_OBJECT: return "object";
    }
    return "unknown";
}

static inferd_value *value_new(inferd_value_type type)
{
    inferd_value *v = calloc(1, sizeof *v);
    if (v)
        v->type = type;
    return v;
}

inferd_value *inferd_value_null(void) { return value_new(INFERD_VALUE_NULL); }
inferd_value *inferd_value_array(void) { return value_new(INFERD_VALUE_ARRAY); }
inferd_value *inferd_value_object(void) { return value_new(INFERD_VALUE_OBJECT); }

inferd_value *inferd_value_bool(bool b)
{
    inferd_value *v = value_new(INFERD_VALUE_BOOL);
    if (v)
        v->u.b = b;
    return v;
}

inferd_value *inferd_value_int(int64_t i)
{
    inferd_value *v = value_new(INFERD_VALUE_INT);
    if (v)
        v->u.i = i;
    return v;
}

inferd_value *inferd_value_double(double d)
{
    inferd_value *v = value_new(INFERD_VALUE_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

/* A malloc'd copy of s[0..len) with a NUL after it; NULL on failure. */
static char *dup_n(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = malloc(len + 1);
    if (p) {
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Strings and bytes share one layout; both get a trailing NUL (harmless for
 * bytes, and it means data is never a zero-size allocation). */
static inferd_value *buf_value(inferd_value_type type, const void *data, size_t len)
{
    if (!data && len)
        return NULL;
    inferd_value *v = value_new(type);
    if (!v)
        return NULL;
    v->u.buf.data = dup_n(data, len);
    if (!v->u.buf.data) {
        free(v);
        return NULL;
    }
    v->u.buf.len = len;
    return v;
}

inferd_value *inferd_value_string(const char *s)
{
    return s ? buf_value(INFERD_VALUE_STRING, s, strlen(s)) : NULL;
}

inferd_value *inferd_value_string_n(const char *s, size_t len)
{
    return buf_value(INFERD_VALUE_STRING, s, len);
}

inferd_value *inferd_value_bytes(const void *data, size_t len)
{
    return buf_value(INFERD_VALUE_BYTES, data, len);
}

inferd_value *inferd_value_bytes_take(void *data, size_t len)
{
    if (!data) /* nothing to take: an empty buffer is still a valid value */
        return len ? NULL : inferd_value_bytes(NULL, 0);
    inferd_value *v = value_new(INFERD_VALUE_BYTES);
    if (!v) {
        free(data);
        return NULL;
    }
    v->u.buf.data = data;
    v->u.buf.len = len;
    return v;
}

size_t inferd__value_footprint(const inferd_value *v)
{
    if (!v)
        return 0;
    size_t n = sizeof *v;
    switch (v->type) {
    case INFERD_VALUE_STRING:
    case INFERD_VALUE_BYTES:
        n += v->u.buf.len + 1;
        break;
    case INFERD_VALUE_ARRAY:
        n += v->u.arr.cap * sizeof *v->u.arr.items;
        for (size_t i = 0; i < v->u.arr.len; i++)
            n += inferd__value_footprint(v->u.arr.items[i]);
        break;
    case INFERD_VALUE_OBJECT:
        n += v->u.obj.cap * sizeof *v->u.obj.entries + v->u.obj.nslots * sizeof(size_t);
        for (size_t i = 0; i < v->u.obj.len; i++)
            n += v->u.obj.entries[i].key_len + 1 +
                 inferd__value_footprint(v->u.obj.entries[i].item);
        break;
    default:
        break;
    }
    return n;
}

void inferd_value_free(inferd_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case INFERD_VALUE_STRING:
    case INFERD_VALUE_BYTES:
        free(v->u.buf.data);
        break;
    case INFERD_VALUE_ARRAY:
        for (size_t i = 0; i < v->u.arr.len; i++)
            inferd_value_free(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case INFERD_VALUE_OBJECT:
        for (size_t i = 0; i < v->u.obj.len; i++) {
            free(v->u.obj.entries[i].key);
            inferd_value_free(v->u.obj.entries[i].item);
        }
        free(v->u.obj.entries);
        free(v->u.obj.slots);
        break;
    default:
        break;
    }
    free(v);
}

/* --- object internals --------------------------------------------------- */

/* FNV-1a: short, and good enough for config and request keys. It is not
 * seeded, so crafted keys could collide; request size limits bound that. */
static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211u;
    }
    return h;
}

static bool entry_is(const struct obj_entry *e, const char *key, size_t len, uint64_t h)
{
    return e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0;
}

/* Position of key among o's entries, or SIZE_MAX. */
static size_t obj_find(const struct value_object *o, const char *key, size_t len, uint64_t h)
{
    if (o->slots) {
        size_t mask = o->nslots - 1;
        for (size_t s = h & mask; o->slots[s]; s = (s + 1) & mask)
            if (entry_is(&o->entries[o->slots[s] - 1], key, len, h))
                return o->slots[s] - 1;
        return SIZE_MAX;
    }
    for (size_t i = 0; i < o->len; i++)
        if (entry_is(&o->entries[i], key, len, h))
            return i;
    return SIZE_MAX;
}

static void obj_index_put(struct value_object *o, size_t pos)
{
    size_t mask = o->nslots - 1;
    size_t s = o->entries[pos].hash & mask;
    while (o->slots[s])
        s = (s + 1) & mask;
    o->slots[s] = pos + 1;
}

/* Refills the existing table from the entries. Needs no memory, so removal
 * (which shifts positions) can always keep the index correct. */
static void obj_index_refill(struct value_object *o)
{
    memset(o->slots, 0, o->nslots * sizeof *o->slots);
    for (size_t i = 0; i < o->len; i++)
        obj_index_put(o, i);
}

/* Replaces the table with one at most half full when holding `count`. */
static bool obj_index_resize(struct value_object *o, size_t count)
{
    size_t n = OBJ_INDEX_MIN_SLOTS;
    while (n / 2 < count)
        n *= 2;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return false;
    free(o->slots);
    o->slots = slots;
    o->nslots = n;
    obj_index_refill(o);
    return true;
}

/* Appends a new key (the caller checked it is absent). Takes ownership of
 * key and item only on success. */
static bool obj_append(struct value_object *o, char *key, size_t len, uint64_t h,
                       inferd_value *item)
{
    if (o->len == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4;
        struct obj_entry *e = realloc(o->entries, cap * sizeof *e);
        if (!e)
            return false;
        o->entries = e;
        o->cap = cap;
    }
    bool need_index = o->slots ? (o->len + 1) > o->nslots / 2 : o->len + 1 > OBJ_INDEX_THRESHOLD;
    if (need_index && !obj_index_resize(o, o->len + 1))
        return false;
    o->entries[o->len] = (struct obj_entry){key, len, h, item};
    if (o->slots)
        obj_index_put(o, o->len);
    o->len++;
    return true;
}

static inferd_status type_error(inferd_error *err, inferd_value_type want, const inferd_value *got)
{
    return inferd_error_set(err, INFERD_ETYPE, "expected %s, got %s",
                            inferd_value_type_name(want),
                            inferd_value_type_name(inferd_value_type_of(got)));
}

/* --- copy and equality -------------------------------------------------- */

inferd_value *inferd_value_copy(const inferd_value *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case INFERD_VALUE_STRING:
    case INFERD_VALUE_BYTES:
        return buf_value(v->type, v->u.buf.data, v->u.buf.len);
    case INFERD_VALUE_ARRAY: {
        inferd_value *c = inferd_value_array();
        for (size_t i = 0; c && i < v->u.arr.len; i++)
            if (inferd_value_array_push(c, inferd_value_copy(v->u.arr.items[i]), NULL)) {
                inferd_value_free(c);
                return NULL;
            }
        return c;
    }
    case INFERD_VALUE_OBJECT: {
        inferd_value *c = inferd_value_object();
        for (size_t i = 0; c && i < v->u.obj.len; i++) {
            const struct obj_entry *e = &v->u.obj.entries[i];
            if (inferd_value_object_set(c, e->key, inferd_value_copy(e->item), NULL)) {
                inferd_value_free(c);
                return NULL;
            }
        }
        return c;
    }
    default: { /* scalars: the union holds everything */
        inferd_value *c = value_new(v->type);
        if (c)
            c->u = v->u;
        return c;
    }
    }
}

bool inferd_value_equal(const inferd_value *a, const inferd_value *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->type != b->type)
        return false;
    switch (a->type) {
    case INFERD_VALUE_NULL: return true;
    case INFERD_VALUE_BOOL: return a->u.b == b->u.b;
    case INFERD_VALUE_INT: return a->u.i == b->u.i;
    case INFERD_VALUE_DOUBLE: /* NaN equals NaN, so a copy always equals its original */
        return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
    case INFERD_VALUE_STRING:
    case INFERD_VALUE_BYTES:
        return a->u.buf.len == b->u.buf.len &&
               memcmp(a->u.buf.data, b->u.buf.data, a->u.buf.len) == 0;
    case INFERD_VALUE_ARRAY:
        if (a->u.arr.len != b->u.arr.len)
            return false;
        for (size_t i = 0; i < a->u.arr.len; i++)
            if (!inferd_value_equal(a->u.arr.items[i], b->u.arr.items[i]))
                return false;
        return true;
    case INFERD_VALUE_OBJECT: /* same keys and values; order does not matter */
        if (a->u.obj.len != b->u.obj.len)
            return false;
        for (size_t i = 0; i < a->u.obj.len; i++) {
            const struct obj_entry *e = &a->u.obj.entries[i];
            size_t j = obj_find(&b->u.obj, e->key, e->key_len, e->hash);
            if (j == SIZE_MAX || !inferd_value_equal(e->item, b->u.obj.entries[j].item))
                return false;
        }
        return true;
    }
    return false;
}

/* --- type and getters --------------------------------------------------- */

inferd_value_type inferd_value_type_of(const inferd_value *v)
{
    return v ? v->type : INFERD_VALUE_NULL;
}

bool inferd_value_is(const inferd_value *v, inferd_value_type type)
{
    return inferd_value_type_of(v) == type;
}

inferd_status inferd_value_get_bool(const inferd_value *v, bool *out, inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_BOOL))
        return type_error(err, INFERD_VALUE_BOOL, v);
    if (out)
        *out = v->u.b;
    return INFERD_OK;
}

inferd_status inferd_value_get_int(const inferd_value *v, int64_t *out, inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_INT))
        return type_error(err, INFERD_VALUE_INT, v);
    if (out)
        *out = v->u.i;
    return INFERD_OK;
}

inferd_status inferd_value_get_double(const inferd_value *v, double *out, inferd_error *err)
{
    if (inferd_value_is(v, INFERD_VALUE_INT)) {
        if (out)
            *out = (double)v->u.i;
        return INFERD_OK;
    }
    if (!inferd_value_is(v, INFERD_VALUE_DOUBLE))
        return type_error(err, INFERD_VALUE_DOUBLE, v);
    if (out)
        *out = v->u.d;
    return INFERD_OK;
}

inferd_status inferd_value_get_string(const inferd_value *v, const char **out, size_t *len,
                                      inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_STRING))
        return type_error(err, INFERD_VALUE_STRING, v);
    if (out)
        *out = v->u.buf.data;
    if (len)
        *len = v->u.buf.len;
    return INFERD_OK;
}

inferd_status inferd_value_get_bytes(const inferd_value *v, const void **out, size_t *len,
                                     inferd_error *err)
{
    if (!inferd_value_is(v, INFERD_VALUE_BYTES))
        return type_error(err, INFERD_VALUE_BYTES, v);
    if (out)
        *out = v->u.buf.data;
    if (len)
        *len = v->u.buf.len;
    return INFERD_OK;
}

const char *inferd_value_string_or(const inferd_value *v, const char *fallback)
{
    return inferd_value_is(v, INFERD_VALUE_STRING) ? v->u.buf.data : fallback;
}

int64_t inferd_value_int_or(const inferd_value *v, int64_t fallback)
{
    return inferd_value_is(v, INFERD_VALUE_INT) ? v->u.i : fallback;
}

double inferd_value_double_or(const inferd_value *v, double fallback)
{
    double d;
    return inferd_value_get_double(v, &d, NULL) == INFERD_OK ? d : fallback;
}

bool inferd_value_bool_or(const inferd_value *v, bool fallback)
{
    return inferd_value_is(v, INFERD_VALUE_BOOL) ? v->u.b : fallback;
}

/* --- arrays ------------------------------------------------------------- */

size_t inferd_value_array_len(const inferd_value *arr)
{
    return inferd_value_is(arr, INFERD_VALUE_ARRAY) ? arr->u.arr.len : 0;
}

inferd_value *inferd_value_array_get(const inferd_value *arr, size_t i)
{
    return i < inferd_value_array_len(arr) ? arr->u.arr.items[i] : NULL;
}

inferd_status inferd_value_array_push(inferd_value *arr, inferd_value *item, inferd_error *err)
{
    /* NULL is what a constructor returns when memory ran out; callers often
     * pass a constructor's result straight in. */
    if (!item)
        return inferd_error_set(err, INFERD_ENOMEM, "array push: no item (out of memory?)");
    if (!inferd_value_is(arr, INFERD_VALUE_ARRAY)) {
        inferd_value_free(item);
        return type_error(err, INFERD_VALUE_ARRAY, arr);
    }
    struct value_array *a = &arr->u.arr;
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        inferd_value **items = realloc(a->items, cap * sizeof *items);
        if (!items) {
            inferd_value_free(item);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory growing an array");
        }
        a->items = items;
        a->cap = cap;
    }
    a->items[a->len++] = item;
    return INFERD_OK;
}

/* --- objects ------------------------------------------------------------ */

size_t inferd_value_object_len(const inferd_value *obj)
{
    return inferd_value_is(obj, INFERD_VALUE_OBJECT) ? obj->u.obj.len : 0;
}

static inferd_value *object_get_n(const inferd_value *obj, const char *key, size_t len)
{
    if (!obj || obj->type != INFERD_VALUE_OBJECT || !key)
        return NULL;
    size_t i = obj_find(&obj->u.obj, key, len, hash_key(key, len));
    return i == SIZE_MAX ? NULL : obj->u.obj.entries[i].item;
}

inferd_value *inferd_value_object_get(const inferd_value *obj, const char *key)
{
    return key ? object_get_n(obj, key, strlen(key)) : NULL;
}

inferd_status inferd_value_object_set(inferd_value *obj, const char *key, inferd_value *item,
                                      inferd_error *err)
{
    if (!item)
        return inferd_error_set(err, INFERD_ENOMEM, "object set: no item (out of memory?)");
    if (!obj || obj->type != INFERD_VALUE_OBJECT) {
        inferd_value_free(item);
        return type_error(err, INFERD_VALUE_OBJECT, obj);
    }
    if (!key) {
        inferd_value_free(item);
        return inferd_error_set(err, INFERD_EINVAL, "object set: key is NULL");
    }
    struct value_object *o = &obj->u.obj;
    size_t len = strlen(key);
    uint64_t h = hash_key(key, len);
    size_t i = obj_find(o, key, len, h);
    if (i != SIZE_MAX) { /* replace in place: the key keeps its position */
        if (o->entries[i].item != item) {
            inferd_value_free(o->entries[i].item);
            o->entries[i].item = item;
        }
        return INFERD_OK;
    }
    char *k = dup_n(key, len);
    if (!k || !obj_append(o, k, len, h, item)) {
        free(k);
        inferd_value_free(item);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory adding key \"%s\"", key);
    }
    return INFERD_OK;
}

inferd_status inferd_value_object_remove(inferd_value *obj, const char *key, inferd_error *err)
{
    if (!obj || obj->type != INFERD_VALUE_OBJECT)
        return type_error(err, INFERD_VALUE_OBJECT, obj);
    if (!key)
        return inferd_error_set(err, INFERD_EINVAL, "object remove: key is NULL");
    struct value_object *o = &obj->u.obj;
    size_t len = strlen(key);
    size_t i = obj_find(o, key, len, hash_key(key, len));
    if (i == SIZE_MAX)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no key \"%s\" in the object", key);
    free(o->entries[i].key);
    inferd_value_free(o->entries[i].item);
    memmove(&o->entries[i], &o->entries[i + 1], (o->len - i - 1) * sizeof *o->entries);
    o->len--;
    if (o->slots) /* later entries moved down one position */
        obj_index_refill(o);
    return INFERD_OK;
}

bool inferd_value_object_entry(const inferd_value *obj, size_t i, const char **key,
                               inferd_value **item)
{
    if (i >= inferd_value_object_len(obj))
        return false;
    if (key)
        *key = obj->u.obj.entries[i].key;
    if (item)
        *item = obj->u.obj.entries[i].item;
    return true;
}

inferd_value *inferd_value_object_path(const inferd_value *obj, const char *path)
{
    if (!path)
        return NULL;
    const inferd_value *v = obj;
    for (;;) { /* every '.' separates two keys; an empty segment is the key "" */
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        v = object_get_n(v, path, len);
        if (!v || !dot)
            return (inferd_value *)v;
        path = dot + 1;
    }
}

/* --- JSON parsing ------------------------------------------------------- */

/* Refuses nesting deeper than max_depth before jansson builds anything, so a
 * hostile "[[[[..." costs neither a deep tree nor deep recursion. Brackets
 * inside strings do not count. */
static inferd_status json_check_depth(const char *text, size_t len, size_t max_depth,
                                      inferd_error *err)
{
    size_t depth = 0, line = 1, line_start = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "JSON nested deeper than %zu levels (at line %zu, "
                                        "column %zu)",
                                        max_depth, line, i - line_start + 1);
        } else if (c == ']' || c == '}') {
            if (depth)
                depth--;
        } else if (c == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    return INFERD_OK;
}

/* Converts a parsed jansson tree; NULL only when memory ran out (jansson
 * has already refused duplicate keys and invalid UTF-8). */
static inferd_value *from_jansson(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        inferd_value *obj = inferd_value_object();
        const char *key;
        json_t *child;
        json_object_foreach(j, key, child) { /* jansson keeps insertion order */
            if (!obj || inferd_value_object_set(obj, key, from_jansson(child), NULL)) {
                inferd_value_free(obj);
                return NULL;
            }
        }
        return obj;
    }
    case JSON_ARRAY: {
        inferd_value *arr = inferd_value_array();
        size_t i;
        json_t *child;
        json_array_foreach(j, i, child) {
            if (!arr || inferd_value_array_push(arr, from_jansson(child), NULL)) {
                inferd_value_free(arr);
                return NULL;
            }
        }
        return arr;
    }
    case JSON_STRING: return inferd_value_string_n(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return inferd_value_int(json_integer_value(j));
    case JSON_REAL: return inferd_value_double(json_real_value(j));
    case JSON_TRUE: return inferd_value_bool(true);
    case JSON_FALSE: return inferd_value_bool(false);
    case JSON_NULL: return inferd_value_null();
    }
    return NULL;
}

inferd_status inferd_value_from_json(const char *text, size_t len, size_t max_depth,
                                     inferd_value **out, inferd_error *err)
{
    if (out)
        *out = NULL;
    if (!out || (!text && len))
        return inferd_error_set(err, INFERD_EINVAL, "JSON parse: NULL argument");
    if (!text)
        text = "";
    if (max_depth == 0)
        max_depth = INFERD_JSON_DEFAULT_MAX_DEPTH;
    inferd_status st = json_check_depth(text, len, max_depth, err);
    if (st != INFERD_OK)
        return st;

    json_error_t jerr;
    json_t *root =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        /* jansson's own text is e.g. "too big integer near '1e99999...'". */
        const char *what = json_error_code(&jerr) == json_error_numeric_overflow &&
                                   strstr(jerr.text, "integer")
                               ? "integer outside the int64 range: "
                               : "";
        return inferd_error_set(err, INFERD_EINVAL, "invalid JSON at line %d, column %d: %s%s",
                                jerr.line, jerr.column, what, jerr.text);
    }
    *out = from_jansson(root);
    json_decref(root);
    if (!*out)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory converting JSON");
    return INFERD_OK;
}

/* --- JSON writing ------------------------------------------------------- */

/* A growing output buffer; the first allocation failure sticks and is
 * reported once at the end, which keeps the writers free of checks. */
struct writer {
    char *buf;
    size_t len, cap; /* cap > len always leaves room for the final NUL */
    bool oom;
    unsigned flags;
};

static void w_put(struct writer *w, const char *s, size_t n)
{
    if (w->oom || n == 0)
        return;
    if (w->cap - w->len <= n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len <= n) {
            if (cap > SIZE_MAX / 2) {
                w->oom = true;
                return;
            }
            cap *= 2;
        }
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void w_str(struct writer *w, const char *s) { w_put(w, s, strlen(s)); }

static void w_newline(struct writer *w, size_t depth)
{
    if (!(w->flags & INFERD_JSON_PRETTY))
        return;
    w_put(w, "\n", 1);
    for (size_t i = 0; i < depth; i++)
        w_put(w, "  ", 2);
}


/* Writes a quoted, escaped JSON string; EINVAL if s is not valid UTF-8. */
static inferd_status w_string(struct writer *w, const char *s, size_t n, inferd_error *err)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes not yet written */
    w_put(w, "\"", 1);
    for (size_t i = 0; i < n;) {
        if (p[i] >= 0x80) {
            size_t k = inferd__utf8_seq_len(p + i, n - i);
            if (!k)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "string is not valid UTF-8 (at byte %zu)", i);
            i += k;
            continue;
        }
        if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\') {
            i++;
            continue;
        }
        char esc[8];
        switch (p[i]) {
        case '"': strcpy(esc, "\\\""); break;
        case '\\': strcpy(esc, "\\\\"); break;
        case '\b': strcpy(esc, "\\b"); break;
        case '\f': strcpy(esc, "\\f"); break;
        case '\n': strcpy(esc, "\\n"); break;
        case '\r': strcpy(esc, "\\r"); break;
        case '\t': strcpy(esc, "\\t"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", p[i]); break;
        }
        w_put(w, s + run, i - run);
        w_str(w, esc);
        run = ++i;
    }
    w_put(w, s + run, n - run);
    w_put(w, "\"", 1);
    return INFERD_OK;
}

/* The shortest of %.15g..%.17g that reads back as exactly d, so 0.1 is
 * written "0.1" yet every double round-trips. Always looks like a real
 * ("1.0", not "1") so that it parses back as a double. */
static void format_double(double d, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* printf follows LC_NUMERIC; JSON always wants '.'. */
    const char *point = localeconv()->decimal_point;
    size_t plen = strlen(point);
    char *at = plen && strcmp(point, ".") != 0 ? strstr(buf, point) : NULL;
    if (at) {
        *at = '.';
        memmove(at + 1, at + plen, strlen(at + plen) + 1);
    }
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

static int entry_key_cmp(const void *a, const void *b)
{
    const struct obj_entry *x = *(const struct obj_entry *const *)a;
    const struct obj_entry *y = *(const struct obj_entry *const *)b;
    return strcmp(x->key, y->key);
}

static inferd_status w_value(struct writer *w, const inferd_value *v, size_t depth,
                             inferd_error *err);

static inferd_status w_array(struct writer *w, const struct value_array *a, size_t depth,
                             inferd_error *err)
{
    if (a->len == 0) {
        w_str(w, "[]");
        return INFERD_OK;
    }
    w_put(w, "[", 1);
    for (size_t i = 0; i < a->len; i++) {
        if (i)
            w_put(w, ",", 1);
        w_newline(w, depth + 1);
        inferd_status st = w_value(w, a->items[i], depth + 1, err);
        if (st != INFERD_OK) {
            inferd_error_prefix(err, "[%zu]", i);
            return st;
        }
    }
    w_newline(w, depth);
    w_put(w, "]", 1);
    return INFERD_OK;
}

static inferd_status w_object(struct writer *w, const struct value_object *o, size_t depth,
                              inferd_error *err)
{
    if (o->len == 0) {
        w_str(w, "{}");
        return INFERD_OK;
    }
    /* Sorting permutes pointers; the object itself is left untouched. */
    const struct obj_entry **sorted = NULL;
    if (w->flags & INFERD_JSON_SORT_KEYS) {
        sorted = malloc(o->len * sizeof *sorted);
        if (!sorted)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory sorting keys");
        for (size_t i = 0; i < o->len; i++)
            sorted[i] = &o->entries[i];
        qsort(sorted, o->len, sizeof *sorted, entry_key_cmp);
    }
    inferd_status st = INFERD_OK;
    w_put(w, "{", 1);
    for (size_t i = 0; i < o->len && st == INFERD_OK; i++) {
        const struct obj_entry *e = sorted ? sorted[i] : &o->entries[i];
        if (i)
            w_put(w, ",", 1);
        w_newline(w, depth + 1);
        st = w_string(w, e->key, e->key_len, err);
        if (st != INFERD_OK) { /* don't echo a broken key back */
            inferd_error_prefix(err, "object key");
            break;
        }
        w_str(w, w->flags & INFERD_JSON_PRETTY ? ": " : ":");
        st = w_value(w, e->item, depth + 1, err);
        if (st != INFERD_OK)
            inferd_error_prefix(err, "%s", e->key);
    }
    free(sorted);
    if (st != INFERD_OK)
        return st;
    w_newline(w, depth);
    w_put(w, "}", 1);
    return INFERD_OK;
}

static inferd_status w_value(struct writer *w, const inferd_value *v, size_t depth,
                             inferd_error *err)
{
    char num[64];
    switch (v->type) {
    case INFERD_VALUE_NULL: w_str(w, "null"); break;
    case INFERD_VALUE_BOOL: w_str(w, v->u.b ? "true" : "false"); break;
    case INFERD_VALUE_INT:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        w_str(w, num);
        break;
    case INFERD_VALUE_DOUBLE:
        if (!isfinite(v->u.d)) { /* JSON has no NaN or infinity */
            w_str(w, "null");
            break;
        }
        format_double(v->u.d, num, sizeof num);
        w_str(w, num);
        break;
    case INFERD_VALUE_STRING: return w_string(w, v->u.buf.data, v->u.buf.len, err);
    case INFERD_VALUE_BYTES: {
        size_t n;
        char *b64 = inferd_base64_encode(v->u.buf.data, v->u.buf.len, &n);
        if (!b64)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory encoding bytes");
        w_put(w, "\"", 1);
        w_put(w, b64, n);
        w_put(w, "\"", 1);
        free(b64);
        break;
    }
    case INFERD_VALUE_ARRAY: return w_array(w, &v->u.arr, depth, err);
    case INFERD_VALUE_OBJECT: return w_object(w, &v->u.obj, depth, err);
    }
    return INFERD_OK;
}

inferd_status inferd_value_to_json(const inferd_value *v, unsigned flags, char **out, size_t *len,
                                   inferd_error *err)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!v || !out)
        return inferd_error_set(err, INFERD_EINVAL, "JSON write: NULL argument");
    struct writer w = {.flags = flags};
    inferd_status st = w_value(&w, v, 0, err);
    if (st == INFERD_OK && w.oom)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory writing JSON");
    if (st != INFERD_OK) {
        free(w.buf);
        return st;
    }
    w.buf[w.len] = '\0'; /* every value writes something, so buf exists */
    *out = w.buf;
    if (len)
        *len = w.len;
    return INFERD_OK;
}
