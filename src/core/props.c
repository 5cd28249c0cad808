/* props.c: property declarations (inferd_prop_spec) and their validation.
 *
 * Owns inferd_props: one converted value per declared spec, in spec order.
 * Every error names the owner, the property, the value given and what is
 * allowed, because these messages are what a user sees when a pipeline file
 * or a config is refused.
 */
#include "inferd/props.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inferd_props {
    const inferd_prop_spec *specs; /* borrowed: specs are static declarations */
    size_t n;
    inferd_value **values;         /* owned, values[i] belongs to specs[i] */
};

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

static inferd_status refuse(const inferd_prop_spec *s, const char *owner, const inferd_value *given,
                            inferd_error *err, inferd_status code, const char *why)
{
    char g[96], allowed[256];
    return inferd_error_set(err, code, "%s: property '%s': %s (got %s; allowed: %s)", owner,
                            s->name, why, given_text(given, g, sizeof g),
                            inferd_prop_spec_allowed(s, allowed, sizeof allowed));
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

static inferd_status convert_strlist(const inferd_prop_spec *s, const char *owner,
                                     const inferd_value *g, inferd_value **out, inferd_error *err)
{
    inferd_value *list = inferd_value_array();
    if (!list)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (inferd_value_is(g, INFERD_VALUE_ARRAY)) {
        for (size_t i = 0; i < inferd_value_array_len(g); i++) {
            const inferd_value *item = inferd_value_array_get(g, i);
            if (!inferd_value_is(item, INFERD_VALUE_STRING)) {
                inferd_value_free(list);
                return refuse(s, owner, g, err, INFERD_ETYPE, "every list item must be a string");
            }
            if (inferd_value_array_push(list, inferd_value_copy(item), err) != INFERD_OK) {
                inferd_value_free(list);
                return INFERD_ENOMEM;
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
                                                 err) != INFERD_OK) {
                inferd_value_free(list);
                return INFERD_ENOMEM;
            }
            p = comma ? comma + 1 : end;
        }
    } else {
        inferd_value_free(list);
        return refuse(s, owner, g, err, INFERD_ETYPE, "wrong type");
    }
    *out = list;
    return INFERD_OK;
}

inferd_status inferd_prop_convert(const inferd_prop_spec *s, const char *owner,
                                  const inferd_value *g, inferd_value **out, inferd_error *err)
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
        return refuse(s, owner, g, err, INFERD_EINVAL, "contains a NUL character");
    switch (s->type) {
    case INFERD_PROP_TYPE_STRING:
        if (!inferd_value_is(g, INFERD_VALUE_STRING))
            return refuse(s, owner, g, err, INFERD_ETYPE, "wrong type");
        v = inferd_value_copy(g);
        break;
    case INFERD_PROP_TYPE_INT:
        if (!given_int(g, &i))
            return refuse(s, owner, g, err, INFERD_ETYPE, "not an integer");
        if (has_irange(s) && (i < s->imin || i > s->imax))
            return refuse(s, owner, g, err, INFERD_ERANGE, "out of range");
        v = inferd_value_int(i);
        break;
    case INFERD_PROP_TYPE_UINT:
        if (!given_int(g, &i))
            return refuse(s, owner, g, err, INFERD_ETYPE, "not an integer");
        if (i < 0)
            return refuse(s, owner, g, err, INFERD_ERANGE, "negative");
        if (has_urange(s) && ((uint64_t)i < s->umin || (uint64_t)i > s->umax))
            return refuse(s, owner, g, err, INFERD_ERANGE, "out of range");
        v = inferd_value_int(i);
        break;
    case INFERD_PROP_TYPE_FLOAT:
    case INFERD_PROP_TYPE_DOUBLE:
        if (!given_double(g, &d))
            return refuse(s, owner, g, err, INFERD_ETYPE, "not a finite number");
        if (s->type == INFERD_PROP_TYPE_FLOAT && fabs(d) > FLT_MAX)
            return refuse(s, owner, g, err, INFERD_ERANGE, "too large for a float");
        if (has_drange(s) && (d < s->dmin || d > s->dmax))
            return refuse(s, owner, g, err, INFERD_ERANGE, "out of range");
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
                return refuse(s, owner, g, err, INFERD_ETYPE, "not a bool");
        } else {
            return refuse(s, owner, g, err, INFERD_ETYPE, "not a bool");
        }
        break;
    case INFERD_PROP_TYPE_ENUM: {
        const char *t = inferd_value_string_or(g, NULL);
        if (!t)
            return refuse(s, owner, g, err, INFERD_ETYPE, "wrong type");
        for (size_t k = 0; s->enum_values && s->enum_values[k]; k++)
            if (strcmp(t, s->enum_values[k]) == 0)
                v = inferd_value_string(t);
        if (!v)
            return refuse(s, owner, g, err, INFERD_EINVAL, "unknown value");
        break;
    }
    case INFERD_PROP_TYPE_STRLIST:
        return convert_strlist(s, owner, g, out, err);
    case INFERD_PROP_TYPE_OBJECT:
        if (inferd_value_is(g, INFERD_VALUE_STRING)) { /* JSON text: an env var, a flag */
            size_t len = 0;
            const char *t = NULL;
            if (inferd_value_get_string(g, &t, &len, NULL) != INFERD_OK ||
                inferd_value_from_json(t, len, 0, &v, NULL) != INFERD_OK)
                return refuse(s, owner, g, err, INFERD_EINVAL, "not valid JSON");
        } else {
            v = inferd_value_copy(g);
        }
        if (v && !inferd_value_is(v, INFERD_VALUE_OBJECT)) {
            inferd_value_free(v);
            return refuse(s, owner, g, err, INFERD_ETYPE, "not a JSON object");
        }
        break;
    default:
        return inferd_error_set(err, INFERD_EINTERNAL, "%s: property '%s' has an invalid type %d",
                                owner, s->name, (int)s->type);
    }
    if (!v)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    *out = v;
    return INFERD_OK;
}

static inferd_status convert_text(const inferd_prop_spec *s, const char *owner, const char *text,
                                  inferd_value **out, inferd_error *err)
{
    inferd_value *g = inferd_value_string(text);
    if (!g)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = inferd_prop_convert(s, owner, g, out, err);
    inferd_value_free(g);
    return st;
}

inferd_status inferd_prop_specs_check(const inferd_prop_spec *specs, const char *owner,
                                      inferd_error *err)
{
    size_t n = inferd_prop_specs_count(specs);
    for (size_t i = 0; i < n; i++) {
        const inferd_prop_spec *s = &specs[i];
        if (!s->name || !*s->name)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property #%zu has no name", owner, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(specs[j].name, s->name) == 0)
                return inferd_error_set(err, INFERD_EEXIST, "%s: property '%s' declared twice",
                                        owner, s->name);
        if (s->type < INFERD_PROP_TYPE_STRING || s->type > INFERD_PROP_TYPE_OBJECT)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property '%s' has an invalid type %d",
                                    owner, s->name, (int)s->type);
        if (s->type == INFERD_PROP_TYPE_ENUM && (!s->enum_values || !s->enum_values[0]))
            return inferd_error_set(err, INFERD_EINVAL, "%s: enum property '%s' lists no values",
                                    owner, s->name);
        if (s->imin > s->imax || s->umin > s->umax || s->dmin > s->dmax)
            return inferd_error_set(err, INFERD_EINVAL, "%s: property '%s' has min > max", owner,
                                    s->name);
        if (s->default_value) {
            inferd_value *v = NULL;
            inferd_status st = convert_text(s, owner, s->default_value, &v, err);
            if (st != INFERD_OK) {
                inferd_error_prefix(err, "invalid default");
                return st;
            }
            inferd_value_free(v);
        }
    }
    return INFERD_OK;
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

static inferd_status unknown_property(const inferd_prop_spec *specs, size_t n, const char *owner,
                                      const char *name, inferd_error *err)
{
    char known[320];
    size_t pos = 0;
    known[0] = '\0';
    for (size_t i = 0; i < n && pos < sizeof known; i++)
        pos += (size_t)snprintf(known + pos, sizeof known - pos, "%s%s", i ? ", " : "",
                                specs[i].name);
    return inferd_error_set(err, INFERD_ENOTFOUND, "%s: unknown property '%s' (known: %s)", owner,
                            name, n ? known : "none");
}

inferd_status inferd_props_validate(const inferd_prop_spec *specs, const char *owner,
                                    const inferd_value *given, inferd_props **out,
                                    inferd_error *err)
{
    size_t n = inferd_prop_specs_count(specs);
    if (given && !inferd_value_is(given, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE, "%s: properties must be a JSON object, got %s",
                                owner, inferd_value_type_name(inferd_value_type_of(given)));
    inferd_props *p = calloc(1, sizeof *p);
    if (!p || !(p->values = calloc(n ? n : 1, sizeof *p->values))) {
        free(p);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    p->specs = specs;
    p->n = n;
    inferd_status st = INFERD_OK;
    const char *key;
    inferd_value *item;
    for (size_t k = 0; st == INFERD_OK && inferd_value_object_entry(given, k, &key, &item); k++) {
        long i = spec_index(specs, n, key);
        if (i < 0)
            st = unknown_property(specs, n, owner, key, err);
        else
            st = inferd_prop_convert(&specs[i], owner, item, &p->values[i], err);
    }
    for (size_t i = 0; st == INFERD_OK && i < n; i++) {
        if (p->values[i])
            continue;
        if (!specs[i].default_value)
            st = inferd_error_set(err, INFERD_EINVAL, "%s: missing required property '%s' (%s)",
                                  owner, specs[i].name, specs[i].description ? specs[i].description : "");
        else
            st = convert_text(&specs[i], owner, specs[i].default_value, &p->values[i], err);
    }
    if (st != INFERD_OK) {
        inferd_props_free(p);
        return st;
    }
    *out = p;
    return INFERD_OK;
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
    long i = spec_index(p->specs, p->n, name);
    if (i < 0)
        return unknown_property(p->specs, p->n, owner, name, err);
    inferd_value *v = NULL;
    inferd_status st = convert_text(&p->specs[i], owner, text, &v, err);
    if (st != INFERD_OK)
        return st;
    inferd_value_free(p->values[i]);
    p->values[i] = v;
    return INFERD_OK;
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
