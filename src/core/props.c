/* props.c: property declarations (inferd_prop_spec) and their validation.
 *
 * Owns inferd_props: one converted value per declared spec, in spec order.
 * Every error names the owner, the property, the value given and what is
 * allowed, because these messages are what a user sees when a pipeline file
 * or a config is refused.
 */
#include "core/names.h"
#include "inferd/props.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct inferd_props {
    const inferd_prop_spec *specs; /* borrowed: specs are static declarations */
    size_t n;
    inferd_value **values;         /* owned, values[i] belongs to specs[i] */
};

/* The faults of one document: every one goes into err's message, "; "
 * between them, as long as there is room (the owner said once while it is
 * the same); the rest are counted and said at the end. The code is the
 * first fault's. */
typedef struct faults {
    inferd_error *err;
    inferd_status first;
    size_t n, unsaid;
    const char *owner; /* of the last fault said */
} faults;

__attribute__((format(printf, 4, 5))) static void fault(faults *f, inferd_status code,
                                                         const char *owner, const char *fmt,
                                                         ...)
{
    char msg[INFERD_ERROR_MESSAGE_MAX];
    size_t at = 0;
    bool same = f->n && owner && f->owner && strcmp(owner, f->owner) == 0;
    if (owner && !same)
        at = (size_t)snprintf(msg, sizeof msg, "%s: ", owner);
    if (at >= sizeof msg)
        at = sizeof msg - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + at, sizeof msg - at, fmt, ap);
    va_end(ap);
    f->owner = owner;
    if (f->n++ == 0) {
        f->first = code;
        inferd_error_set(f->err, code, "%s", msg);
        return;
    }
    if (!f->err)
        return;
    size_t used = strlen(f->err->message), len = strlen(msg);
    /* Room for "; " and the message, and for " (and N more)" after. */
    if (used + 2 + len + 24 < sizeof f->err->message) {
        memcpy(f->err->message + used, "; ", 2);
        memcpy(f->err->message + used + 2, msg, len + 1);
    } else {
        f->unsaid++;
    }
}

static inferd_status faults_end(faults *f)
{
    if (f->unsaid && f->err) {
        size_t used = strlen(f->err->message);
        snprintf(f->err->message + used, sizeof f->err->message - used, " (and %zu more)",
                 f->unsaid);
    }
    return f->n ? f->first : INFERD_OK;
}

const char *inferd_prop_type_name(inferd_prop_type type)
{
    switch (type) {
    case INFERD_PROP_TYPE_STRING: return "string";
    case INFERD_PROP_TYPE_INT: return "int";
    case INFERD_PROP_TYPE_UINT: return "uint";
    case INFERD_PROP_TYPE_FLOAT: return "float";
    case INFERD_PROP_TYPE_DOUBLE: return "double";
    case INFERD_PROP_TYPE_BOOL: return "bool";
    case INFERD_PROP_TYPE_ENUM: return "enum";
    case INFERD_PROP_TYPE_STRLIST: return "strlist";
    case INFERD_PROP_TYPE_OBJECT: return "object";
    case INFERD_PROP_TYPE_SIZE: return "size";
    case INFERD_PROP_TYPE_DURATION: return "duration";
    case INFERD_PROP_TYPE_ARRAY: return "array";
    case INFERD_PROP_TYPE_MAP: return "map";
    case INFERD_PROP_TYPE_NUMLIST: return "numlist";
    case INFERD_PROP_TYPE_END: break;
    }
    return "invalid";
}

size_t inferd_prop_specs_count(const inferd_prop_spec *specs)
{
    size_t n = 0;
    while (specs && specs[n].type != INFERD_PROP_TYPE_END)
        n++;
    return n;
}

static bool has_irange(const inferd_prop_spec *s) { return s->imin != 0 || s->imax != 0; }
static bool has_urange(const inferd_prop_spec *s) { return s->umin != 0 || s->umax != 0; }
static bool has_drange(const inferd_prop_spec *s) { return s->dmin != 0 || s->dmax != 0; }

char *inferd_prop_spec_allowed(const inferd_prop_spec *s, char *buf, size_t size)
{
    size_t pos = 0;
    switch (s->type) {
    case INFERD_PROP_TYPE_INT:
        if (has_irange(s))
            snprintf(buf, size, "int in [%" PRId64 ", %" PRId64 "]", s->imin, s->imax);
        else
            snprintf(buf, size, "int");
        break;
    case INFERD_PROP_TYPE_UINT:
        if (has_urange(s))
            snprintf(buf, size, "uint in [%" PRIu64 ", %" PRIu64 "]", s->umin, s->umax);
        else
            snprintf(buf, size, "uint");
        break;
    case INFERD_PROP_TYPE_FLOAT:
    case INFERD_PROP_TYPE_DOUBLE:
        if (has_drange(s))
            snprintf(buf, size, "%s in [%g, %g]", inferd_prop_type_name(s->type), s->dmin, s->dmax);
        else
            snprintf(buf, size, "%s", inferd_prop_type_name(s->type));
        break;
    case INFERD_PROP_TYPE_ENUM:
        pos = (size_t)snprintf(buf, size, "one of");
        for (size_t i = 0; s->enum_values && s->enum_values[i] && pos < size; i++)
            pos += (size_t)snprintf(buf + pos, size - pos, "%s %s", i ? "," : "", s->enum_values[i]);
        break;
    case INFERD_PROP_TYPE_BOOL:
        snprintf(buf, size, "bool (true or false)");
        break;
    case INFERD_PROP_TYPE_STRLIST:
        snprintf(buf, size, "a list of strings (JSON array or \"a,b,c\")");
        break;
    case INFERD_PROP_TYPE_OBJECT:
        snprintf(buf, size, "a JSON object");
        break;
    case INFERD_PROP_TYPE_SIZE:
        if (has_urange(s))
            snprintf(buf, size, "a size in [%" PRIu64 ", %" PRIu64 "] bytes (65536, \"64k\", "
                     "\"64M\", \"1G\")", s->umin, s->umax);
        else
            snprintf(buf, size, "a size in bytes (65536, \"64k\", \"64M\", \"1G\")");
        break;
    case INFERD_PROP_TYPE_DURATION:
        if (has_urange(s))
            snprintf(buf, size, "a duration in [%" PRIu64 ", %" PRIu64 "] ms (250, \"250ms\", "
                     "\"30s\", \"5m\", \"1h\")", s->umin, s->umax);
        else
            snprintf(buf, size, "a duration in ms (250, \"250ms\", \"30s\", \"5m\", \"1h\")");
        break;
    case INFERD_PROP_TYPE_ARRAY:
        snprintf(buf, size, s->fields ? "a JSON array of objects" : "a JSON array");
        break;
    case INFERD_PROP_TYPE_MAP:
        snprintf(buf, size, "a JSON object of name -> object");
        break;
    case INFERD_PROP_TYPE_NUMLIST:
        if (has_drange(s))
            snprintf(buf, size, "numbers in [%g, %g] (a JSON array, or \"1,2,3\")", s->dmin,
                     s->dmax);
        else
            snprintf(buf, size, "numbers (a JSON array, or \"1,2,3\")");
        break;
    default:
        snprintf(buf, size, "%s", inferd_prop_type_name(s->type));
        break;
    }
    return buf;
}

/* Renders what the user gave, short, for error messages. */
static const char *given_text(const inferd_value *v, char *buf, size_t size)
{
    char *json = NULL;
    size_t len = 0;
    if (inferd_value_to_json(v, INFERD_JSON_COMPACT, &json, &len, NULL) != INFERD_OK) {
        snprintf(buf, size, "(%s)", inferd_value_type_name(inferd_value_type_of(v)));
        return buf;
    }
    if (len > 80)
        snprintf(buf, size, "%.77s...", json);
    else
        snprintf(buf, size, "%s", json);
    free(json);
    return buf;
}

/* "<owner>: property '<path>': <why> (got <value>; allowed: <what>)". */
static bool refuse(faults *f, const inferd_prop_spec *s, const char *owner, const char *path,
                   const inferd_value *given, inferd_status code, const char *why)
{
    char g[96], allowed[256];
    fault(f, code, owner, "property '%s': %s (got %s; allowed: %s)", path, why,
          given_text(given, g, sizeof g), inferd_prop_spec_allowed(s, allowed, sizeof allowed));
    return false;
}

static bool no_memory(faults *f)
{
    fault(f, INFERD_ENOMEM, NULL, "out of memory");
    return false;
}

static bool parse_int_text(const char *t, int64_t *out)
{
    while (isspace((unsigned char)*t))
        t++;
    if (*t == '\0')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_double_text(const char *t, double *out)
{
    while (isspace((unsigned char)*t))
        t++;
    if (*t == '\0')
        return false;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (errno == ERANGE || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Reads an integer from an int, an integral double, or a decimal string. */
static bool given_int(const inferd_value *g, int64_t *out)
{
    switch (inferd_value_type_of(g)) {
    case INFERD_VALUE_INT:
        return inferd_value_get_int(g, out, NULL) == INFERD_OK;
    case INFERD_VALUE_DOUBLE: {
        double d = inferd_value_double_or(g, NAN);
        if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return false;
        *out = (int64_t)d;
        return true;
    }
    case INFERD_VALUE_STRING:
        return parse_int_text(inferd_value_string_or(g, ""), out);
    default:
        return false;
    }
}

static bool given_double(const inferd_value *g, double *out)
{
    switch (inferd_value_type_of(g)) {
    case INFERD_VALUE_INT:
    case INFERD_VALUE_DOUBLE:
        return inferd_value_get_double(g, out, NULL) == INFERD_OK && isfinite(*out);
    case INFERD_VALUE_STRING:
        return parse_double_text(inferd_value_string_or(g, ""), out);
    default:
        return false;
    }
}

/* The unit at *p of a size, in bytes ("k", "M", "GiB", "B", none: 1024-based),
 * moving *p past it. */
static double size_unit(const char **p)
{
    const char *e = *p;
    double unit = 1;
    switch (tolower((unsigned char)*e)) {
    case 'k': unit = 1024.0; e++; break;
    case 'm': unit = 1024.0 * 1024; e++; break;
    case 'g': unit = 1024.0 * 1024 * 1024; e++; break;
    case 't': unit = 1024.0 * 1024 * 1024 * 1024; e++; break;
    default: break;
    }
    if (unit > 1 && (*e == 'i' || *e == 'I'))
        e++; /* "MiB" */
    if (*e == 'b' || *e == 'B')
        e++;
    *p = e;
    return unit;
}

/* The unit at *p of a duration, in milliseconds ("us", "ms", "s", "m", "h",
 * "d", none), moving *p past it. */
static double duration_unit(const char **p)
{
    static const struct {
        const char *name;
        double ms;
    } units[] = {{"ms", 1}, {"us", 0.001}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strncmp(*p, units[i].name, strlen(units[i].name)) == 0) {
            *p += strlen(units[i].name);
            return units[i].ms;
        }
    return 1;
}

/* "64M", "1.5s": a number, a unit, and nothing else, as a whole count of
 * the base unit (bytes, milliseconds). */
static bool parse_quantity(const char *t, double (*unit)(const char **), int64_t *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*t))
        t++;
    if (!isdigit((unsigned char)*t))
        return false;
    double v = strtod(t, &end);
    if (errno || end == t)
        return false;
    while (isspace((unsigned char)*end))
        end++;
    const char *rest = end;
    v *= unit(&rest);
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest || !isfinite(v) || v > 9.2e18 || v != floor(v))
        return false;
    *out = (int64_t)v;
    return true;
}

static bool convert(const inferd_prop_spec *s, const char *owner, const char *path,
                    const inferd_value *g, inferd_value **out, faults *f);
static bool validate_into(const inferd_prop_spec *specs, size_t n, const char *owner,
                          const char *prefix, const inferd_value *given, inferd_value **values,
                          faults *f);

static bool convert_strlist(const inferd_prop_spec *s, const char *owner, const char *path,
                            const inferd_value *g, inferd_value **out, faults *f)
{
    inferd_value *list = inferd_value_array();
    if (!list)
        return no_memory(f);
    if (inferd_value_is(g, INFERD_VALUE_ARRAY)) {
        for (size_t i = 0; i < inferd_value_array_len(g); i++) {
            const inferd_value *item = inferd_value_array_get(g, i);
            if (!inferd_value_is(item, INFERD_VALUE_STRING)) {
                inferd_value_free(list);
                return refuse(f, s, owner, path, g, INFERD_ETYPE,
                              "every list item must be a string");
            }
            if (inferd_value_array_push(list, inferd_value_copy(item), NULL) != INFERD_OK) {
                inferd_value_free(list);
                return no_memory(f);
            }
        }
    } else if (inferd_value_is(g, INFERD_VALUE_STRING)) {
        const char *p = inferd_value_string_or(g, "");
        while (*p) {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            const char *a = p, *b = end;
            while (a < b && isspace((unsigned char)*a))
                a++;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            if (b > a && inferd_value_array_push(list, inferd_value_string_n(a, (size_t)(b - a)),
                                                 NULL) != INFERD_OK) {
                inferd_value_free(list);
                return no_memory(f);
            }
            p = comma ? comma + 1 : end;
        }
    } else {
        inferd_value_free(list);
        return refuse(f, s, owner, path, g, INFERD_ETYPE, "wrong type");
    }
    *out = list;
    return true;
}

/* A list of numbers: an array (numbers or their text), one number, or the
 * text "1,2.5,3"; each checked against the range. */
static bool convert_numlist(const inferd_prop_spec *s, const char *owner, const char *path,
                            const inferd_value *g, inferd_value **out, faults *f)
{
    inferd_value *owned = NULL;
    const inferd_value *items = g;
    if (inferd_value_is(g, INFERD_VALUE_STRING)) {
        if (!convert_strlist(s, owner, path, g, &owned, f))
            return false;
        items = owned;
    } else if (inferd_value_is(g, INFERD_VALUE_INT) || inferd_value_is(g, INFERD_VALUE_DOUBLE)) {
        if (!(owned = inferd_value_array()) ||
            inferd_value_array_push(owned, inferd_value_copy(g), NULL) != INFERD_OK) {
            inferd_value_free(owned);
            return no_memory(f);
        }
        items = owned;
    } else if (!inferd_value_is(g, INFERD_VALUE_ARRAY)) {
        return refuse(f, s, owner, path, g, INFERD_ETYPE, "wrong type");
    }
    inferd_value *list = inferd_value_array();
    bool ok = list ? true : no_memory(f);
    for (size_t i = 0; ok && i < inferd_value_array_len(items); i++) {
        double d;
        if (!given_double(inferd_value_array_get(items, i), &d))
            ok = refuse(f, s, owner, path, g, INFERD_ETYPE, "every list item must be a number");
        else if (has_drange(s) && (d < s->dmin || d > s->dmax))
            ok = refuse(f, s, owner, path, g, INFERD_ERANGE, "an item is out of range");
        else if (inferd_value_array_push(list, inferd_value_double(d), NULL) != INFERD_OK)
            ok = no_memory(f);
    }
    inferd_value_free(owned);
    if (!ok) {
        inferd_value_free(list);
        return false;
    }
    *out = list;
    return true;
}

/* One object checked against fields: a new object, field order, defaults in. */
static bool convert_fields(const inferd_prop_spec *fields, const char *owner, const char *path,
                           const inferd_value *g, inferd_value **out, faults *f)
{
    size_t n = inferd_prop_specs_count(fields);
    inferd_value **vals = calloc(n ? n : 1, sizeof *vals);
    inferd_value *obj = inferd_value_object();
    bool ok = vals && obj ? validate_into(fields, n, owner, path, g, vals, f) : no_memory(f);
    for (size_t i = 0; i < n; i++)
        if (ok && vals[i] && inferd_value_object_set(obj, fields[i].name, vals[i], NULL) ==
                                 INFERD_OK)
            vals[i] = NULL;
        else if (ok && vals[i])
            ok = no_memory(f);
    for (size_t i = 0; vals && i < n; i++)
        inferd_value_free(vals[i]);
    free(vals);
    if (!ok) {
        inferd_value_free(obj);
        return false;
    }
    *out = obj;
    return true;
}

/* JSON text given for a structured property (an environment variable, a
 * flag) is read first. *owned is what the caller frees. */
static const inferd_value *structured(const inferd_prop_spec *s, const char *owner,
                                      const char *path, const inferd_value *g,
                                      inferd_value **owned, faults *f)
{
    *owned = NULL;
    if (!inferd_value_is(g, INFERD_VALUE_STRING))
        return g;
    size_t len = 0;
    const char *t = NULL;
    if (inferd_value_get_string(g, &t, &len, NULL) != INFERD_OK ||
        inferd_value_from_json(t, len, 0, owned, NULL) != INFERD_OK) {
        refuse(f, s, owner, path, g, INFERD_EINVAL, "not valid JSON");
        return NULL;
    }
    return *owned;
}

/* One entry of a map or an item of an array: checked against the fields
 * when there are (its faults reported, *conv NULL), else copied. False
 * only when memory ran out. */
static bool convert_item(const inferd_prop_spec *s, const char *owner, const char *path,
                         const inferd_value *item, inferd_value **conv, faults *f)
{
    *conv = NULL;
    if (!s->fields)
        return (*conv = inferd_value_copy(item)) ? true : no_memory(f);
    if (!inferd_value_is(item, INFERD_VALUE_OBJECT))
        refuse(f, s, owner, path, item, INFERD_ETYPE, "not a JSON object");
    else
        convert_fields(s->fields, owner, path, item, conv, f);
    return f->first != INFERD_ENOMEM;
}

static bool convert_structured(const inferd_prop_spec *s, const char *owner, const char *path,
                               const inferd_value *given, inferd_value **out, faults *f)
{
    inferd_value *owned = NULL;
    const inferd_value *g = structured(s, owner, path, given, &owned, f);
    if (!g)
        return false;
    bool ok = true;
    inferd_value *v = NULL;
    char sub[256];
    switch (s->type) {
    case INFERD_PROP_TYPE_OBJECT:
        if (!inferd_value_is(g, INFERD_VALUE_OBJECT))
            ok = refuse(f, s, owner, path, given, INFERD_ETYPE, "not a JSON object");
        else if (s->fields)
            ok = convert_fields(s->fields, owner, path, g, &v, f);
        else if (!(v = inferd_value_copy(g)))
            ok = no_memory(f);
        break;
    case INFERD_PROP_TYPE_MAP:
        if (!inferd_value_is(g, INFERD_VALUE_OBJECT)) {
            ok = refuse(f, s, owner, path, given, INFERD_ETYPE, "not a JSON object");
            break;
        }
        if (!(v = inferd_value_object()))
            ok = no_memory(f);
        for (size_t i = 0; ok && i < inferd_value_object_len(g); i++) {
            const char *key;
            inferd_value *item, *conv = NULL;
            inferd_value_object_entry(g, i, &key, &item);
            snprintf(sub, sizeof sub, "%s.%s", path, key);
            ok = convert_item(s, owner, sub, item, &conv, f);
            if (conv && inferd_value_object_set(v, key, conv, NULL) != INFERD_OK)
                ok = no_memory(f);
        }
        break;
    case INFERD_PROP_TYPE_ARRAY:
        if (!inferd_value_is(g, INFERD_VALUE_ARRAY)) {
            ok = refuse(f, s, owner, path, given, INFERD_ETYPE, "not a JSON array");
            break;
        }
        if (!(v = inferd_value_array()))
            ok = no_memory(f);
        for (size_t i = 0; ok && i < inferd_value_array_len(g); i++) {
            const inferd_value *item = inferd_value_array_get(g, i);
            inferd_value *conv = NULL;
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            ok = convert_item(s, owner, sub, item, &conv, f);
            if (conv && inferd_value_array_push(v, conv, NULL) != INFERD_OK)
                ok = no_memory(f);
        }
        break;
    default:
        break;
    }
    inferd_value_free(owned);
    if (!ok || !v) {
        inferd_value_free(v);
        return false;
    }
    *out = v;
    return true;
}

static bool convert(const inferd_prop_spec *s, const char *owner, const char *path,
                    const inferd_value *g, inferd_value **out, faults *f)
{
    inferd_value *v = NULL;
    int64_t i;
    double d;
    /* JSON may carry "T1\u0000x": every C reader of the value would see
     * "T1", which is not what was sent. */
    const char *given = NULL;
    size_t given_len = 0;
    if (inferd_value_get_string(g, &given, &given_len, NULL) == INFERD_OK &&
        strlen(given) != given_len)
        return refuse(f, s, owner, path, g, INFERD_EINVAL, "contains a NUL character");
    switch (s->type) {
    case INFERD_PROP_TYPE_STRING:
        if (!inferd_value_is(g, INFERD_VALUE_STRING))
            return refuse(f, s, owner, path, g, INFERD_ETYPE, "wrong type");
        v = inferd_value_copy(g);
        break;
    case INFERD_PROP_TYPE_INT:
        if (!given_int(g, &i))
            return refuse(f, s, owner, path, g, INFERD_ETYPE, "not an integer");
        if (has_irange(s) && (i < s->imin || i > s->imax))
            return refuse(f, s, owner, path, g, INFERD_ERANGE, "out of range");
        v = inferd_value_int(i);
        break;
    case INFERD_PROP_TYPE_UINT:
    case INFERD_PROP_TYPE_SIZE:
    case INFERD_PROP_TYPE_DURATION: {
        bool text = inferd_value_is(g, INFERD_VALUE_STRING);
        bool read = s->type == INFERD_PROP_TYPE_SIZE && text
                        ? parse_quantity(inferd_value_string_or(g, ""), size_unit, &i)
                    : s->type == INFERD_PROP_TYPE_DURATION && text
                        ? parse_quantity(inferd_value_string_or(g, ""), duration_unit, &i)
                        : given_int(g, &i);
        if (!read)
            return refuse(f, s, owner, path, g, INFERD_ETYPE,
                          s->type == INFERD_PROP_TYPE_UINT ? "not an integer"
                          : s->type == INFERD_PROP_TYPE_SIZE ? "not a size"
                                                             : "not a duration");
        if (i < 0)
            return refuse(f, s, owner, path, g, INFERD_ERANGE, "negative");
        if (has_urange(s) && ((uint64_t)i < s->umin || (uint64_t)i > s->umax))
            return refuse(f, s, owner, path, g, INFERD_ERANGE, "out of range");
        v = inferd_value_int(i);
        break;
    }
    case INFERD_PROP_TYPE_FLOAT:
    case INFERD_PROP_TYPE_DOUBLE:
        if (!given_double(g, &d))
            return refuse(f, s, owner, path, g, INFERD_ETYPE, "not a finite number");
        if (s->type == INFERD_PROP_TYPE_FLOAT && fabs(d) > FLT_MAX)
            return refuse(f, s, owner, path, g, INFERD_ERANGE, "too large for a float");
        if (has_drange(s) && (d < s->dmin || d > s->dmax))
            return refuse(f, s, owner, path, g, INFERD_ERANGE, "out of range");
        v = inferd_value_double(d);
        break;
    case INFERD_PROP_TYPE_BOOL:
        if (inferd_value_is(g, INFERD_VALUE_BOOL)) {
            v = inferd_value_copy(g);
        } else if (inferd_value_is(g, INFERD_VALUE_STRING) || inferd_value_is(g, INFERD_VALUE_INT)) {
            const char *t = inferd_value_string_or(g, NULL);
            int64_t n = inferd_value_int_or(g, -1);
            if ((t && (strcmp(t, "true") == 0 || strcmp(t, "1") == 0)) || (!t && n == 1))
                v = inferd_value_bool(true);
            else if ((t && (strcmp(t, "false") == 0 || strcmp(t, "0") == 0)) || (!t && n == 0))
                v = inferd_value_bool(false);
            else
                return refuse(f, s, owner, path, g, INFERD_ETYPE, "not a bool");
        } else {
            return refuse(f, s, owner, path, g, INFERD_ETYPE, "not a bool");
        }
        break;
    case INFERD_PROP_TYPE_ENUM: {
        const char *t = inferd_value_string_or(g, NULL);
        if (!t)
            return refuse(f, s, owner, path, g, INFERD_ETYPE, "wrong type");
        for (size_t k = 0; s->enum_values && s->enum_values[k]; k++)
            if (strcmp(t, s->enum_values[k]) == 0)
                v = inferd_value_string(t);
        if (!v)
            return refuse(f, s, owner, path, g, INFERD_EINVAL, "unknown value");
        break;
    }
    case INFERD_PROP_TYPE_STRLIST:
        return convert_strlist(s, owner, path, g, out, f);
    case INFERD_PROP_TYPE_NUMLIST:
        return convert_numlist(s, owner, path, g, out, f);
    case INFERD_PROP_TYPE_OBJECT:
    case INFERD_PROP_TYPE_MAP:
    case INFERD_PROP_TYPE_ARRAY:
        return convert_structured(s, owner, path, g, out, f);
    default:
        fault(f, INFERD_EINTERNAL, owner, "property '%s' has an invalid type %d", path,
              (int)s->type);
        return false;
    }
    if (!v)
        return no_memory(f);
    *out = v;
    return true;
}

inferd_status inferd_prop_convert(const inferd_prop_spec *s, const char *owner,
                                  const inferd_value *g, inferd_value **out, inferd_error *err)
{
    faults f = {.err = err};
    convert(s, owner, s->name, g, out, &f);
    return faults_end(&f);
}

/* A structured property's default when none is written: empty, so that its
 * fields' own defaults apply. */
static const char *default_text(const inferd_prop_spec *s)
{
    if (s->default_value || !s->fields)
        return s->default_value;
    return s->type == INFERD_PROP_TYPE_ARRAY ? "[]" : "{}";
}

static bool convert_text(const inferd_prop_spec *s, const char *owner, const char *path,
                         const char *text, inferd_value **out, faults *f)
{
    inferd_value *g = inferd_value_string(text);
    if (!g)
        return no_memory(f);
    bool ok = convert(s, owner, path, g, out, f);
    inferd_value_free(g);
    return ok;
}

static inferd_status check_specs(const inferd_prop_spec *specs, const char *owner,
                                 unsigned depth, inferd_error *err)
{
    size_t n = inferd_prop_specs_count(specs);
    if (depth > 8)
        return inferd_error_set(err, INFERD_EINVAL, "%s: properties nest deeper than 8", owner);
    for (size_t i = 0; i < n; i++) {
        const inferd_prop_spec *s = &specs[i];
        if (!s->name || !*s->name)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property #%zu has no name", owner, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(specs[j].name, s->name) == 0)
                return inferd_error_set(err, INFERD_EEXIST, "%s: property '%s' declared twice",
                                        owner, s->name);
        if (s->type < INFERD_PROP_TYPE_STRING || s->type > INFERD_PROP_TYPE_NUMLIST)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property '%s' has an invalid type %d",
                                    owner, s->name, (int)s->type);
        if (s->type == INFERD_PROP_TYPE_ENUM && (!s->enum_values || !s->enum_values[0]))
            return inferd_error_set(err, INFERD_EINVAL, "%s: enum property '%s' lists no values",
                                    owner, s->name);
        if (s->imin > s->imax || s->umin > s->umax || s->dmin > s->dmax)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property '%s' has min > max", owner,
                                    s->name);
        if (s->fields && s->type != INFERD_PROP_TYPE_OBJECT && s->type != INFERD_PROP_TYPE_ARRAY &&
            s->type != INFERD_PROP_TYPE_MAP)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property '%s' has fields but is a "
                                    "%s", owner, s->name, inferd_prop_type_name(s->type));
        if (s->fields) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s: property '%s'", owner, s->name);
            inferd_status st = check_specs(s->fields, sub, depth + 1, err);
            if (st != INFERD_OK)
                return st;
        }
        const char *def = default_text(s);
        if (def) {
            inferd_value *v = NULL;
            faults f = {.err = err};
            convert_text(s, owner, s->name, def, &v, &f);
            inferd_value_free(v);
            if (f.n) {
                inferd_error_prefix(err, "invalid default");
                return faults_end(&f);
            }
        }
    }
    return INFERD_OK;
}

inferd_status inferd_prop_specs_check(const inferd_prop_spec *specs, const char *owner,
                                      inferd_error *err)
{
    return check_specs(specs, owner, 0, err);
}

void inferd_props_free(inferd_props *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        inferd_value_free(p->values[i]);
    free(p->values);
    free(p);
}

static long spec_index(const inferd_prop_spec *specs, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Edits (insert, delete, substitute; case counts half) from a to b, at
 * most 64 characters each; SIZE_MAX beyond. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j * 2;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i * 2;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = a[i - 1] == b[j - 1]                                   ? 0
                         : tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 1
                                                                                    : 2;
            size_t best = diag + sub;
            if (up + 2 < best)
                best = up + 2;
            if (row[j - 1] + 2 < best)
                best = row[j - 1] + 2;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *inferd__closest_name(const void *items, size_t stride, size_t n, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)((const char *)items + i * stride);
        size_t d = cand ? distance(name, cand) : SIZE_MAX;
        if (d < best_d)
            best_d = d, best = cand;
    }
    /* up to a third of the name's letters wrong (two for short ones) */
    size_t limit = len < 6 ? 2 * 2 : (len / 3) * 2;
    if (best && best_d <= limit)
        return best;
    /* or the start of a longer name ("memory" for "memory_limit_mb") */
    for (size_t i = 0; len >= 3 && i < n; i++) {
        const char *cand = *(const char *const *)((const char *)items + i * stride);
        if (cand && strncasecmp(cand, name, len) == 0)
            return cand;
    }
    return NULL;
}

/* The declared name closest to name, when close enough to be a typo. */
static const char *closest(const inferd_prop_spec *specs, size_t n, const char *name)
{
    return inferd__closest_name(specs, sizeof *specs, n, name);
}

/* The names of specs that start with prefix (all when it is ""), ", "
 * between them, into buf: as many as fit, then "and N more". Returns how
 * many were left out. */
static size_t list_names(const inferd_prop_spec *specs, size_t n, const char *prefix,
                         size_t plen, char *buf, size_t cap)
{
    size_t pos = 0, left = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (strncmp(specs[i].name, prefix, plen) != 0)
            continue;
        int w = left ? -1 : snprintf(buf + pos, cap - 24 - pos, "%s%s", pos ? ", " : "",
                                     specs[i].name);
        if (w < 0 || (size_t)w >= cap - 24 - pos) {
            buf[pos] = '\0';
            left++;
            continue;
        }
        pos += (size_t)w;
    }
    if (left)
        snprintf(buf + pos, cap - pos, ", and %zu more", left);
    return left;
}

static void unknown_property(const inferd_prop_spec *specs, size_t n, const char *owner,
                             const char *path, const char *name, faults *f)
{
    /* The known names when they fit in a message; when there are too many
     * (the daemon's config keys), those of name's group ("portable." for
     * "portable.memory"), else how many there are: never a list cut short. */
    char known[240], hint[160] = "", what[300];
    const char *dot = strchr(name, '.');
    size_t plen = dot ? (size_t)(dot - name) + 1 : 0;
    if (n == 0)
        snprintf(what, sizeof what, "known: none");
    else if (list_names(specs, n, "", 0, known, sizeof known) == 0)
        snprintf(what, sizeof what, "known: %s", known);
    else if (plen && (list_names(specs, n, name, plen, known, sizeof known), known[0]))
        snprintf(what, sizeof what, "known under '%.*s': %s", (int)plen, name, known);
    else
        snprintf(what, sizeof what, "%zu properties are known", n);
    const char *near = closest(specs, n, name);
    if (near)
        snprintf(hint, sizeof hint, "did you mean '%s'? ", near);
    fault(f, INFERD_ENOTFOUND, owner, "unknown property '%s%s%s' (%s%s)", path ? path : "",
          path ? "." : "", name, hint, what);
}

/* Fills values[i] for each spec from given (an object, or NULL): every
 * fault reported, the others still converted. prefix: the path of the
 * object ("" or NULL at the top). */
static bool validate_into(const inferd_prop_spec *specs, size_t n, const char *owner,
                          const char *prefix, const inferd_value *given, inferd_value **values,
                          faults *f)
{
    size_t before = f->n;
    const char *key;
    inferd_value *item;
    char path[256];
    if (given && !inferd_value_is(given, INFERD_VALUE_OBJECT)) {
        fault(f, INFERD_ETYPE, owner, "%s%s%smust be a JSON object, got %s",
              prefix ? "property '" : "", prefix ? prefix : "", prefix ? "' " : "properties ",
              inferd_value_type_name(inferd_value_type_of(given)));
        return false;
    }
    for (size_t k = 0; inferd_value_object_entry(given, k, &key, &item); k++) {
        long i = spec_index(specs, n, key);
        snprintf(path, sizeof path, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", key);
        if (i < 0)
            unknown_property(specs, n, owner, prefix, key, f);
        else
            convert(&specs[i], owner, path, item, &values[i], f);
    }
    for (size_t i = 0; i < n; i++) {
        if (values[i])
            continue;
        snprintf(path, sizeof path, "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                 specs[i].name);
        const char *def = default_text(&specs[i]);
        if (inferd_value_object_get(given, specs[i].name))
            continue; /* given, and refused above */
        if (!def && (specs[i].flags & INFERD_PROP_OPTIONAL))
            continue; /* absent, and that is allowed */
        if (!def)
            fault(f, INFERD_EINVAL, owner, "missing required property '%s' (%s)", path,
                  specs[i].description ? specs[i].description : "");
        else
            convert_text(&specs[i], owner, path, def, &values[i], f);
    }
    return f->n == before;
}

inferd_status inferd_props_validate(const inferd_prop_spec *specs, const char *owner,
                                    const inferd_value *given, inferd_props **out,
                                    inferd_error *err)
{
    size_t n = inferd_prop_specs_count(specs);
    inferd_props *p = calloc(1, sizeof *p);
    if (!p || !(p->values = calloc(n ? n : 1, sizeof *p->values))) {
        free(p);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    p->specs = specs;
    p->n = n;
    faults f = {.err = err};
    validate_into(specs, n, owner, NULL, given, p->values, &f);
    inferd_status st = faults_end(&f);
    if (st != INFERD_OK) {
        inferd_props_free(p);
        return st;
    }
    *out = p;
    return INFERD_OK;
}

void inferd_props_bind(const inferd_props *p, void *base)
{
    for (size_t i = 0; p && base && i < p->n; i++) {
        const inferd_prop_spec *s = &p->specs[i];
        if (!(s->flags & INFERD_PROP_BOUND) || !p->values[i])
            continue;
        char *at = (char *)base + s->offset;
        const inferd_value *v = p->values[i];
        switch (s->type) {
        case INFERD_PROP_TYPE_STRING:
        case INFERD_PROP_TYPE_ENUM: {
            const char *str = inferd_value_string_or(v, "");
            memcpy(at, &str, sizeof str);
            break;
        }
        case INFERD_PROP_TYPE_INT:
        case INFERD_PROP_TYPE_UINT:
        case INFERD_PROP_TYPE_SIZE:
        case INFERD_PROP_TYPE_DURATION: {
            int64_t n = inferd_value_int_or(v, 0);
            memcpy(at, &n, sizeof n);
            break;
        }
        case INFERD_PROP_TYPE_FLOAT:
        case INFERD_PROP_TYPE_DOUBLE: {
            double d = inferd_value_double_or(v, 0.0);
            memcpy(at, &d, sizeof d);
            break;
        }
        case INFERD_PROP_TYPE_BOOL: {
            bool b = inferd_value_bool_or(v, false);
            memcpy(at, &b, sizeof b);
            break;
        }
        default:
            memcpy(at, &v, sizeof v);
            break;
        }
    }
}

inferd_value *inferd_props_to_value(const inferd_props *p)
{
    inferd_value *o = inferd_value_object();
    for (size_t i = 0; o && p && i < p->n; i++) {
        if (!p->values[i])
            continue; /* optional, absent */
        inferd_value *v = inferd_value_copy(p->values[i]);
        if (!v || inferd_value_object_set(o, p->specs[i].name, v, NULL) != INFERD_OK) {
            inferd_value_free(o);
            return NULL;
        }
    }
    return o;
}

const inferd_prop_spec *inferd_props_specs(const inferd_props *p) { return p ? p->specs : NULL; }

const inferd_value *inferd_props_get(const inferd_props *p, const char *name)
{
    long i = p ? spec_index(p->specs, p->n, name) : -1;
    return i < 0 ? NULL : p->values[i];
}

inferd_status inferd_props_set_text(inferd_props *p, const char *owner, const char *name,
                                    const char *text, inferd_error *err)
{
    faults f = {.err = err};
    long i = spec_index(p->specs, p->n, name);
    inferd_value *v = NULL;
    if (i < 0)
        unknown_property(p->specs, p->n, owner, NULL, name, &f);
    else if (convert_text(&p->specs[i], owner, name, text, &v, &f)) {
        inferd_value_free(p->values[i]);
        p->values[i] = v;
    }
    return faults_end(&f);
}

const char *inferd_props_string(const inferd_props *p, const char *name)
{
    return inferd_value_string_or(inferd_props_get(p, name), "");
}

int64_t inferd_props_int(const inferd_props *p, const char *name)
{
    return inferd_value_int_or(inferd_props_get(p, name), 0);
}

double inferd_props_double(const inferd_props *p, const char *name)
{
    return inferd_value_double_or(inferd_props_get(p, name), 0.0);
}

bool inferd_props_bool(const inferd_props *p, const char *name)
{
    return inferd_value_bool_or(inferd_props_get(p, name), false);
}

size_t inferd_props_list_len(const inferd_props *p, const char *name)
{
    return inferd_value_array_len(inferd_props_get(p, name));
}

const char *inferd_props_list_at(const inferd_props *p, const char *name, size_t i)
{
    return inferd_value_string_or(inferd_value_array_get(inferd_props_get(p, name), i), NULL);
}
