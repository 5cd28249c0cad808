/* inferd/props.h: declared properties and their validation.
 *
 * A property is declared, never parsed by hand: name, type, description,
 * default, range, enum values. The host turns what a user wrote (a JSON object
 * from a pipeline file or a config, where every value may also be given as a
 * string, as the pipeline seed's users write "640") into typed values with the
 * defaults filled in, or refuses with a message naming the owner (an element,
 * a component, "config"), the property, the value given and what is allowed.
 * Unknown properties are errors. The same specs drive config keys, element
 * properties and `inferd plugin inspect`.
 */
#ifndef INFERD_PROPS_H
#define INFERD_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"
#include "inferd/value.h"

#ifdef __cplusplus
/* A declaration names only the fields it needs (designated initialisers,
 * the rest zero, as in C); g++ warns about every one left out. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
extern "C" {
#endif

typedef enum inferd_prop_type {
    INFERD_PROP_TYPE_END = 0, /* terminates a spec array */
    INFERD_PROP_TYPE_STRING,
    INFERD_PROP_TYPE_INT,     /* int64, range imin..imax */
    INFERD_PROP_TYPE_UINT,    /* 0..INT64_MAX, range umin..umax */
    INFERD_PROP_TYPE_FLOAT,   /* stored as double, range dmin..dmax, must fit a float */
    INFERD_PROP_TYPE_DOUBLE,  /* range dmin..dmax */
    INFERD_PROP_TYPE_BOOL,    /* true/false, also "true"/"false"/"1"/"0" */
    INFERD_PROP_TYPE_ENUM,    /* one of enum_values (a NULL-terminated list) */
    INFERD_PROP_TYPE_STRLIST, /* JSON array of strings, or "a,b,c" */
    INFERD_PROP_TYPE_OBJECT,  /* a JSON object, or its JSON text; with fields, checked by them */
    INFERD_PROP_TYPE_SIZE,    /* bytes, stored as an int: 65536, "64k", "64M", "1G" (1024-based);
                                 range umin..umax */
    INFERD_PROP_TYPE_DURATION, /* milliseconds, stored as an int: 250, "250ms", "30s", "5m",
                                  "1h"; range umin..umax */
    INFERD_PROP_TYPE_ARRAY,   /* a JSON array; with fields, each item an object checked by them */
    INFERD_PROP_TYPE_MAP,     /* an object of name -> object, each checked by fields */
    INFERD_PROP_TYPE_NUMLIST  /* numbers: a JSON array of numbers (or their text), one number,
                                 or "1,2.5,3"; each in dmin..dmax (when a range is given);
                                 stored as an array of doubles (ABI 2.1) */
} inferd_prop_type;

/* flags */
#define INFERD_PROP_BOUND 1u    /* inferd_props_bind writes the value at offset */
#define INFERD_PROP_OPTIONAL 2u /* no default and not required: when absent there is no value
                                   (inferd_props_get gives NULL, bind leaves the field as it is) */

typedef struct inferd_prop_spec {
    const char *name;
    inferd_prop_type type;
    const char *description;
    /* The default, written as a user would write it ("640", "true", "rgb",
     * "30s"). NULL makes the property required (OBJECT, ARRAY and MAP
     * with fields: NULL is "{}" or "[]", their fields' defaults apply). */
    const char *default_value;
    int64_t imin, imax;              /* INT */
    uint64_t umin, umax;             /* UINT, SIZE, DURATION */
    double dmin, dmax;               /* FLOAT, DOUBLE */
    const char *const *enum_values;  /* ENUM: NULL-terminated */
    /* OBJECT, ARRAY, MAP: the declaration of the nested objects (an END
     * terminated array); NULL takes any. */
    const struct inferd_prop_spec *fields;
    /* With flags INFERD_PROP_BOUND, where inferd_props_bind writes the value
     * in the caller's struct (INFERD_PROP_AT sets both): STRING and ENUM a
     * const char *, INT, UINT, SIZE and DURATION an int64_t, FLOAT and DOUBLE
     * a double, BOOL a bool, the others a const inferd_value *. Pointers are
     * borrowed from the props. */
    size_t offset;
    unsigned flags;
} inferd_prop_spec;

/* In a designated initialiser: bind the property to field of struct type
 * (INFERD_PROP_AT_OPTIONAL: and it may be absent). */
#define INFERD_PROP_AT(type, field) .offset = offsetof(type, field), .flags = INFERD_PROP_BOUND
#define INFERD_PROP_AT_OPTIONAL(type, field)                                                 \
    .offset = offsetof(type, field), .flags = INFERD_PROP_BOUND | INFERD_PROP_OPTIONAL

/* Declaration helpers (C99 designated initialisers; usable in static arrays). */
#define INFERD_PROP_STRING(n, desc, def) \
    { .name = (n), .type = INFERD_PROP_TYPE_STRING, .description = (desc), .default_value = (def) }
#define INFERD_PROP_INT(n, desc, def, lo, hi)                                               \
    { .name = (n), .type = INFERD_PROP_TYPE_INT, .description = (desc), .default_value = #def, \
      .imin = (lo), .imax = (hi) }
#define INFERD_PROP_UINT(n, desc, def, lo, hi)                                               \
    { .name = (n), .type = INFERD_PROP_TYPE_UINT, .description = (desc), .default_value = #def, \
      .umin = (lo), .umax = (hi) }
#define INFERD_PROP_FLOAT(n, desc, def, lo, hi)                                               \
    { .name = (n), .type = INFERD_PROP_TYPE_FLOAT, .description = (desc), .default_value = #def, \
      .dmin = (lo), .dmax = (hi) }
#define INFERD_PROP_DOUBLE(n, desc, def, lo, hi)                                               \
    { .name = (n), .type = INFERD_PROP_TYPE_DOUBLE, .description = (desc), .default_value = #def, \
      .dmin = (lo), .dmax = (hi) }
#define INFERD_PROP_BOOL(n, desc, def) \
    { .name = (n), .type = INFERD_PROP_TYPE_BOOL, .description = (desc), .default_value = #def }
#define INFERD_PROP_ENUM(n, desc, def, values)                                                  \
    { .name = (n), .type = INFERD_PROP_TYPE_ENUM, .description = (desc), .default_value = (def), \
      .enum_values = (values) }
#define INFERD_PROP_STRLIST(n, desc, def) \
    { .name = (n), .type = INFERD_PROP_TYPE_STRLIST, .description = (desc), .default_value = (def) }
#define INFERD_PROP_NUMLIST(n, desc, def) \
    { .name = (n), .type = INFERD_PROP_TYPE_NUMLIST, .description = (desc), .default_value = (def) }
#define INFERD_PROP_OBJECT(n, desc, def) \
    { .name = (n), .type = INFERD_PROP_TYPE_OBJECT, .description = (desc), .default_value = (def) }
#define INFERD_PROP_SIZE(n, desc, def, lo, hi)                                              \
    { .name = (n), .type = INFERD_PROP_TYPE_SIZE, .description = (desc), .default_value = (def), \
      .umin = (lo), .umax = (hi) }
#define INFERD_PROP_DURATION(n, desc, def, lo, hi)                                            \
    { .name = (n), .type = INFERD_PROP_TYPE_DURATION, .description = (desc),                  \
      .default_value = (def), .umin = (lo), .umax = (hi) }
#define INFERD_PROP_END { .name = NULL, .type = INFERD_PROP_TYPE_END }

/* "string", "int", "uint", "float", "double", "bool", "enum", "strlist", "object", "size",
 * "duration", "array", "map". */
INFERD_API const char *inferd_prop_type_name(inferd_prop_type type);
/* Number of specs before the END entry. */
INFERD_API size_t inferd_prop_specs_count(const inferd_prop_spec *specs);
/* Checks a declaration itself: names present and unique, a known type, a
 * sane range, enum values present, and a default that passes validation. */
INFERD_API inferd_status inferd_prop_specs_check(const inferd_prop_spec *specs, const char *owner,
                                                 inferd_error *err);
/* Describes what a spec allows, e.g. "int in [6, 4096]" or "one of rgb, bgr". */
INFERD_API char *inferd_prop_spec_allowed(const inferd_prop_spec *spec, char *buf, size_t size);

/* Validated, typed properties. Values are stored as inferd_values: STRING and
 * ENUM as strings, INT and UINT as ints, FLOAT and DOUBLE as doubles, BOOL as
 * bools, STRLIST as an array of strings, OBJECT as an object. */
typedef struct inferd_props inferd_props;

/* Converts one user-given value (any JSON type, or a string) for spec.
 * On success *out is a new value owned by the caller. owner names who has
 * the property in the error message ("element resize", "config"). */
INFERD_API inferd_status inferd_prop_convert(const inferd_prop_spec *spec, const char *owner,
                                             const inferd_value *given, inferd_value **out,
                                             inferd_error *err);

/* Validates a JSON object of properties (NULL means none given) against specs:
 * fills defaults, refuses unknown names (with the closest known one),
 * missing required ones, wrong types, out-of-range numbers and unknown enum
 * values, in nested objects too. Every fault of the document is reported,
 * in err's message, one after the other ("; "); the code is the first's.
 * Each reads "<owner>: property '<path>': <why> (got <value>; allowed:
 * <what>)", the path naming nested keys and items ("restartStrategy.delay",
 * "profiles.edge.qos", "routes[2].method"). *out is owned by the caller. */
INFERD_API inferd_status inferd_props_validate(const inferd_prop_spec *specs, const char *owner,
                                               const inferd_value *given, inferd_props **out,
                                               inferd_error *err);
INFERD_API void inferd_props_free(inferd_props *props);
/* The spec array these props were validated against (borrowed). */
INFERD_API const inferd_prop_spec *inferd_props_specs(const inferd_props *props);
/* Borrowed; NULL when name is not declared. */
INFERD_API const inferd_value *inferd_props_get(const inferd_props *props, const char *name);
/* Replaces one property after converting text for its spec (a later override:
 * an environment variable, a command-line flag). */
INFERD_API inferd_status inferd_props_set_text(inferd_props *props, const char *owner,
                                               const char *name, const char *text,
                                               inferd_error *err);
/* Typed readers for declared properties; the declared type is guaranteed by
 * validation, so these do not fail (a wrong name or type returns 0/""/false). */
INFERD_API const char *inferd_props_string(const inferd_props *props, const char *name);
INFERD_API int64_t inferd_props_int(const inferd_props *props, const char *name);
INFERD_API double inferd_props_double(const inferd_props *props, const char *name);
INFERD_API bool inferd_props_bool(const inferd_props *props, const char *name);
/* Writes every bound property (INFERD_PROP_AT) into the struct at base; see
 * inferd_prop_spec.offset for the C type of each. */
INFERD_API void inferd_props_bind(const inferd_props *props, void *base);
/* The props as one JSON object, name -> converted value, defaults filled in
 * (what a user is shown back). NULL on ENOMEM. */
INFERD_API inferd_value *inferd_props_to_value(const inferd_props *props);
/* STRLIST: count and i-th item. */
INFERD_API size_t inferd_props_list_len(const inferd_props *props, const char *name);
INFERD_API const char *inferd_props_list_at(const inferd_props *props, const char *name, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_PROPS_H */
