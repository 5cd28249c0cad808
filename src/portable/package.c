/* portable/package.c: portable plugin packages: the manifest, safe zip
 * extraction, install.sh, and removing an installed folder.
 *
 * A package comes from outside (an upload), so everything in it is checked
 * before it touches the disk: the whole zip's table of entries is read and
 * checked first, and only then is anything written; a failure half-way
 * removes what was written. Owns the manifests it returns.
 */
#include "portable/package.h"

#include "inferd/props.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include "core/clock.h"
#include "inferd/log.h"

#define LOG_COMPONENT "portable"

#define PKG_MAX_ENTRIES 10000
#define PKG_MAX_TOTAL ((uint64_t)2 << 30) /* 2 GiB uncompressed in all */
#define PKG_MAX_PATH 1024                 /* bytes in one entry's name */
#define MANIFEST_MAX_BYTES (1u << 20)
#define NAME_MAX_LEN 64
#define REF_NAME_MAX_LEN 128 /* event and broker names: the registry's limit */

/* --- names and paths -------------------------------------------------------- */

static bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool portable_name_valid(const char *name)
{
    if (!name || !name[0] || !(is_alpha(name[0]) || is_digit(name[0])))
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++)
        if (n >= NAME_MAX_LEN || !(is_alpha(*p) || is_digit(*p) || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Component names are identifiers: rules call functions by them. */
static bool component_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN || !(is_alpha(s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* Event and broker names: the same rule the registry applies to a C
 * plugin's (src/plugin/registry.c), so a manifest it would refuse later is
 * refused now. */
static bool ref_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > REF_NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

/* Why a relative path inside a package is not acceptable, or NULL when it
 * is. path has len bytes, without a folder's trailing '/'. The same rules
 * serve zip entries and the manifest's executable. */
static const char *path_problem(const char *path, size_t len)
{
    if (len == 0)
        return "a path may not be empty";
    if (len > PKG_MAX_PATH)
        return "a path may be at most 1024 bytes long";
    if (path[0] == '/')
        return "a path must be relative (it may not start with /)";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '\\')
            return "a path may not contain a backslash";
        if (c < 0x20 || c == 0x7f)
            return "a path may not contain control characters";
    }
    /* ".." first: it is the one that matters most, say it when it is there. */
    const char *problem = NULL;
    for (size_t start = 0; start <= len;) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        size_t seg = end - start;
        if (seg == 2 && path[start] == '.' && path[start + 1] == '.')
            return "a path may not leave the package folder (no .. segment)";
        if (!problem && seg == 0)
            problem = "a path may not have an empty segment";
        if (!problem && seg == 1 && path[start] == '.')
            problem = "a path may not have a . segment";
        start = end + 1;
    }
    return problem;
}

/* A name fit for an error message: control bytes become '?', and a very
 * long name is cut. */
static const char *show_name(const char *name, char *buf, size_t size)
{
    size_t n = 0, len = strlen(name);
    size_t keep = len > 80 ? 72 : len;
    for (; n < keep && n + 1 < size; n++) {
        unsigned char c = (unsigned char)name[n];
        buf[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (keep < len && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* The last component of a path, for messages ("pyai.zip"). */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* --- the manifest ------------------------------------------------------------- */

static void decl_free(portable_decl *d)
{
    free(d->name);
    free(d->description);
    free(d->event);
    free(d->broker);
    for (size_t i = 0; i < d->n_routes; i++) {
        free(d->routes[i].method);
        free(d->routes[i].path);
    }
    free(d->routes);
    for (size_t i = 0; d->props && d->props[i].name; i++) {
        free((char *)d->props[i].name);
        free((char *)d->props[i].description);
        free((char *)d->props[i].default_value);
    }
    free(d->props);
}

void portable_manifest_free(portable_manifest *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->version);
    free(m->language);
    free(m->executable);
    free(m->description);
    for (size_t i = 0; i < m->n_decls; i++)
        decl_free(&m->decls[i]);
    free(m->decls);
    free(m);
}

static const char *type_of(const inferd_value *v)
{
    return inferd_value_type_name(inferd_value_type_of(v));
}

static inferd_status no_memory(inferd_error *err)
{
    return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

/* Reads obj[key] as a string into *out (a malloc'd copy). where names the
 * object in messages ("functions[1]: "). A missing key: an error when
 * required, else *out = a copy of fallback (NULL stays NULL). */
static inferd_status get_string(const inferd_value *obj, const char *key, const char *where,
                                bool required, const char *fallback, char **out,
                                const char **text, size_t *text_len, inferd_error *err)
{
    *out = NULL;
    const inferd_value *v = inferd_value_object_get(obj, key);
    const char *s = fallback;
    size_t len = fallback ? strlen(fallback) : 0;
    if (!v) {
        if (required)
            return inferd_error_set(err, INFERD_EINVAL, "%s%s is required", where, key);
    } else if (!inferd_value_is(v, INFERD_VALUE_STRING)) {
        return inferd_error_set(err, INFERD_ETYPE, "%s%s must be a string, not %s", where, key,
                                type_of(v));
    } else {
        inferd_value_get_string(v, &s, &len, NULL);
        if (strlen(s) != len)
            return inferd_error_set(err, INFERD_EINVAL, "%s%s may not contain a NUL character",
                                    where, key);
    }
    if (s && !(*out = strdup(s)))
        return no_memory(err);
    if (text)
        *text = *out;
    if (text_len)
        *text_len = len;
    return INFERD_OK;
}

/* Reads obj[key] as an int32 in [lo, hi] into *out; missing: *out unchanged. */
static inferd_status get_int32(const inferd_value *obj, const char *key, const char *where,
                               int64_t lo, int64_t hi, int32_t *out, inferd_error *err)
{
    const inferd_value *v = inferd_value_object_get(obj, key);
    if (!v)
        return INFERD_OK;
    if (!inferd_value_is(v, INFERD_VALUE_INT))
        return inferd_error_set(err, INFERD_ETYPE, "%s%s must be an integer, not %s", where, key,
                                type_of(v));
    int64_t i = 0;
    inferd_value_get_int(v, &i, NULL);
    if (i < lo || i > hi)
        return inferd_error_set(err, INFERD_ERANGE, "%s%s must be between %lld and %lld, not %lld",
                                where, key, (long long)lo, (long long)hi, (long long)i);
    *out = (int32_t)i;
    return INFERD_OK;
}

/* Refuses keys of obj that are not in allowed (NULL-terminated); keys that
 * start with "x-" are free for tools to use. A typo must not pass. */
static inferd_status check_keys(const inferd_value *obj, const char *const *allowed,
                                const char *where, inferd_error *err)
{
    const char *key;
    inferd_value *item;
    for (size_t i = 0; inferd_value_object_entry(obj, i, &key, &item); i++) {
        if (strncmp(key, "x-", 2) == 0)
            continue;
        bool known = false;
        for (size_t k = 0; allowed[k] && !known; k++)
            known = strcmp(key, allowed[k]) == 0;
        if (!known) {
            char shown[100];
            char list[256] = "";
            for (size_t k = 0; allowed[k]; k++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", allowed[k]);
            }
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%sunknown key '%s' (known: %s; keys starting with x- are free)",
                                    where, show_name(key, shown, sizeof shown), list);
        }
    }
    return INFERD_OK;
}

/* The component arrays of a manifest, in the order decls are kept. */
typedef struct kind_key {
    const char *key;
    inferd_component_kind kind;
    bool short_form; /* a plain name string is allowed */
    const char *const *keys;
} kind_key;

static const char *const function_keys[] = {"name", "description", "props", "minArgs", "maxArgs",
                                             "aggregate", NULL};
static const char *const plain_keys[] = {"name", "description", "props", NULL};
static const char *const event_keys[] = {"name", "event", "description", "props", NULL};
static const char *const background_keys[] = {"name", "routes", "description", "props", NULL};
static const char *const estimator_keys[] = {"name", "broker", "description", "props", NULL};
static const char *const route_keys[] = {"method", "path", NULL};

static const kind_key kind_keys[] = {
    {"functions", INFERD_KIND_FUNCTION, true, function_keys},
    {"sources", INFERD_KIND_SOURCE, true, plain_keys},
    {"sinks", INFERD_KIND_SINK, true, plain_keys},
    {"events", INFERD_KIND_EVENT, false, event_keys},
    {"backgrounds", INFERD_KIND_BACKGROUND, false, background_keys},
    {"estimators", INFERD_KIND_ESTIMATOR, false, estimator_keys},
};
#define N_KIND_KEYS (sizeof kind_keys / sizeof kind_keys[0])

static const char *const manifest_keys[] = {"version", "language", "executable", "description",
                                            "functions", "sources", "sinks", "events",
                                            "backgrounds", "estimators", NULL};

static const char *const http_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH",
                                           "HEAD", "OPTIONS", "*", NULL};

static inferd_status parse_routes(const inferd_value *arr, const char *where, portable_decl *d,
                                  inferd_error *err)
{
    if (!inferd_value_is(arr, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_ETYPE, "%sroutes must be an array, not %s", where,
                                type_of(arr));
    size_t n = inferd_value_array_len(arr);
    if (n == 0)
        return INFERD_OK;
    if (!(d->routes = calloc(n, sizeof *d->routes)))
        return no_memory(err);
    for (size_t i = 0; i < n; i++) {
        const inferd_value *r = inferd_value_array_get(arr, i);
        char here[96];
        snprintf(here, sizeof here, "%sroutes[%zu]: ", where, i);
        if (!inferd_value_is(r, INFERD_VALUE_OBJECT))
            return inferd_error_set(err, INFERD_ETYPE, "%sa route must be an object, not %s",
                                    here, type_of(r));
        inferd_status st = check_keys(r, route_keys, here, err);
        if (st != INFERD_OK)
            return st;
        portable_route *rt = &d->routes[d->n_routes++];
        const char *method, *path;
        size_t path_len;
        if ((st = get_string(r, "method", here, true, NULL, &rt->method, &method, NULL, err)) ||
            (st = get_string(r, "path", here, true, NULL, &rt->path, &path, &path_len, err)))
            return st;
        bool known = false;
        for (size_t k = 0; http_methods[k] && !known; k++)
            known = strcmp(method, http_methods[k]) == 0;
        char shown[100];
        if (!known)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%smethod '%s' is not one of GET, POST, PUT, DELETE, PATCH, "
                                    "HEAD, OPTIONS or *",
                                    here, show_name(method, shown, sizeof shown));
        bool bad = path[0] != '/';
        for (size_t k = 0; k < path_len && !bad; k++)
            bad = (unsigned char)path[k] <= 0x20 || path[k] == 0x7f || path[k] == '?';
        if (bad)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%spath '%s' must start with / and hold no spaces, control "
                                    "characters or ?",
                                    here, show_name(path, shown, sizeof shown));
        for (size_t k = 0; k + 1 < d->n_routes; k++)
            if (strcmp(d->routes[k].method, method) == 0 && strcmp(d->routes[k].path, path) == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%s%s %s is declared twice", here,
                                        method, path);
    }
    return INFERD_OK;
}

static const char *const prop_keys[] = {"name", "type", "default", "description", NULL};
static const char *const prop_types[] = {"string", "int", "double", "bool", NULL};

/* "props": [{"name", "type", "default"?, "description"?}] into d->props, the
 * declarations the host validates a component's settings against (a prop
 * without a default is required). */
static inferd_status parse_props(const inferd_value *arr, const char *where, portable_decl *d,
                                 inferd_error *err)
{
    if (!inferd_value_is(arr, INFERD_VALUE_ARRAY))
        return inferd_error_set(err, INFERD_ETYPE, "%sprops must be an array, not %s", where,
                                type_of(arr));
    size_t n = inferd_value_array_len(arr);
    if (!(d->props = calloc(n + 1, sizeof *d->props)))
        return no_memory(err);
    for (size_t i = 0; i < n; i++) {
        const inferd_value *p = inferd_value_array_get(arr, i);
        char here[96];
        snprintf(here, sizeof here, "%sprops[%zu]: ", where, i);
        if (!inferd_value_is(p, INFERD_VALUE_OBJECT))
            return inferd_error_set(err, INFERD_ETYPE, "%sa prop must be an object, not %s",
                                    here, type_of(p));
        inferd_prop_spec *ps = &d->props[i];
        char *name = NULL, *type = NULL, *desc = NULL;
        const char *tname, *pname;
        size_t pname_len;
        inferd_status st = check_keys(p, prop_keys, here, err);
        if (st == INFERD_OK)
            st = get_string(p, "name", here, true, NULL, &name, &pname, &pname_len, err);
        ps->name = name; /* owned by the array from here on (decl_free) */
        if (st == INFERD_OK)
            st = get_string(p, "description", here, false, "", &desc, NULL, NULL, err);
        ps->description = desc;
        if (st == INFERD_OK)
            st = get_string(p, "type", here, true, NULL, &type, &tname, NULL, err);
        if (st != INFERD_OK) {
            free(type);
            return st;
        }
        size_t t = 0;
        while (prop_types[t] && strcmp(prop_types[t], tname) != 0)
            t++;
        free(type);
        if (!prop_types[t])
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%stype must be string, int, double or bool", here);
        if (!component_name_valid(pname, pname_len))
            return inferd_error_set(err, INFERD_EINVAL, "%sname must be 1-64 characters of "
                                    "A-Z, a-z, 0-9 and _, not starting with a digit", here);
        static const inferd_prop_type types[] = {INFERD_PROP_TYPE_STRING, INFERD_PROP_TYPE_INT,
                                                 INFERD_PROP_TYPE_DOUBLE, INFERD_PROP_TYPE_BOOL};
        ps->type = types[t];
        ps->imin = INT64_MIN, ps->imax = INT64_MAX;
        ps->dmin = -DBL_MAX, ps->dmax = DBL_MAX;
        const inferd_value *def = inferd_value_object_get(p, "default");
        if (def) { /* written as a user writes it: the JSON text, a string bare */
            char *text = NULL;
            if (inferd_value_is(def, INFERD_VALUE_STRING))
                text = strdup(inferd_value_string_or(def, ""));
            else if ((st = inferd_value_to_json(def, 0, &text, NULL, err)) != INFERD_OK)
                return st;
            if (!text)
                return no_memory(err);
            ps->default_value = text;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(d->props[k].name, pname) == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%s'%s' is declared twice", here,
                                        pname);
    }
    return INFERD_OK;
}

/* One entry of a component array into d (zeroed by the caller). */
static inferd_status parse_decl(const kind_key *kk, const inferd_value *item, const char *where,
                                portable_decl *d, inferd_error *err)
{
    d->kind = kk->kind;
    d->min_args = 0;
    d->max_args = -1;
    const char *name;
    size_t name_len;
    inferd_status st;
    char shown[100];
    if (inferd_value_is(item, INFERD_VALUE_STRING) && kk->short_form) {
        inferd_value_get_string(item, &name, &name_len, NULL);
        if (!(d->name = strdup(name)) || !(d->description = strdup("")))
            return no_memory(err);
    } else if (inferd_value_is(item, INFERD_VALUE_OBJECT)) {
        if ((st = check_keys(item, kk->keys, where, err)) ||
            (st = get_string(item, "name", where, true, NULL, &d->name, &name, &name_len, err)) ||
            (st = get_string(item, "description", where, false, "", &d->description, NULL, NULL,
                             err)))
            return st;
    } else {
        return inferd_error_set(err, INFERD_ETYPE, "%sa component must be %s, not %s", where,
                                kk->short_form ? "a name string or an object" : "an object",
                                type_of(item));
    }
    if (!component_name_valid(name, name_len))
        return inferd_error_set(err, INFERD_EINVAL,
                                "%sname '%s' must be 1-64 characters of A-Z, a-z, 0-9 and _, "
                                "not starting with a digit",
                                where, show_name(name, shown, sizeof shown));
    if (!inferd_value_is(item, INFERD_VALUE_OBJECT))
        return INFERD_OK;
    const inferd_value *props = inferd_value_object_get(item, "props");
    if (props && (st = parse_props(props, where, d, err)))
        return st;

    const char *ref;
    size_t ref_len;
    switch (kk->kind) {
    case INFERD_KIND_FUNCTION: {
        if ((st = get_int32(item, "minArgs", where, 0, INT32_MAX, &d->min_args, err)) ||
            (st = get_int32(item, "maxArgs", where, -1, INT32_MAX, &d->max_args, err)))
            return st;
        if (d->max_args != -1 && d->max_args < d->min_args)
            return inferd_error_set(err, INFERD_ERANGE,
                                    "%smaxArgs (%d) must be -1 (any number) or >= minArgs (%d)",
                                    where, d->max_args, d->min_args);
        const inferd_value *agg = inferd_value_object_get(item, "aggregate");
        if (agg && !inferd_value_is(agg, INFERD_VALUE_BOOL))
            return inferd_error_set(err, INFERD_ETYPE, "%saggregate must be a bool, not %s",
                                    where, type_of(agg));
        d->aggregate = inferd_value_bool_or(agg, false);
        break;
    }
    case INFERD_KIND_EVENT:
        if ((st = get_string(item, "event", where, true, NULL, &d->event, &ref, &ref_len, err)))
            return st;
        if (!ref_name_valid(ref, ref_len))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%sevent '%s' must be 1-128 characters of A-Z, a-z, 0-9, _, - "
                                    "and .",
                                    where, show_name(ref, shown, sizeof shown));
        break;
    case INFERD_KIND_ESTIMATOR:
        if ((st = get_string(item, "broker", where, true, NULL, &d->broker, &ref, &ref_len, err)))
            return st;
        if (!ref_name_valid(ref, ref_len))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%sbroker '%s' must be 1-128 characters of A-Z, a-z, 0-9, _, "
                                    "- and .",
                                    where, show_name(ref, shown, sizeof shown));
        break;
    case INFERD_KIND_BACKGROUND: {
        /* A background without routes is fine: it may only do periodic work. */
        const inferd_value *routes = inferd_value_object_get(item, "routes");
        if (routes && (st = parse_routes(routes, where, d, err)))
            return st;
        break;
    }
    default:
        break;
    }
    return INFERD_OK;
}

static inferd_status parse_root(const char *name, const inferd_value *root, portable_manifest *m,
                                inferd_error *err)
{
    if (!inferd_value_is(root, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE, "the manifest must be a JSON object, not %s",
                                type_of(root));
    inferd_status st = check_keys(root, manifest_keys, "", err);
    if (st != INFERD_OK)
        return st;
    if (!(m->name = strdup(name)))
        return no_memory(err);

    const char *text;
    size_t len;
    if ((st = get_string(root, "version", "", true, NULL, &m->version, &text, &len, err)))
        return st;
    if (len == 0)
        return inferd_error_set(err, INFERD_EINVAL, "version may not be empty");
    if ((st = get_string(root, "language", "", true, NULL, &m->language, &text, NULL, err)))
        return st;
    char shown[100];
    if (strcmp(text, "python") != 0 && strcmp(text, "native") != 0)
        return inferd_error_set(err, INFERD_EINVAL, "language must be \"python\" or \"native\", not '%s'",
                                show_name(text, shown, sizeof shown));
    if ((st = get_string(root, "executable", "", true, NULL, &m->executable, &text, &len, err)))
        return st;
    const char *problem = path_problem(text, len);
    if (problem)
        return inferd_error_set(err, INFERD_EINVAL, "executable '%s': %s",
                                show_name(text, shown, sizeof shown), problem);
    if ((st = get_string(root, "description", "", false, "", &m->description, NULL, NULL, err)))
        return st;

    /* Count first, so decls is one allocation that never moves. */
    size_t total = 0;
    for (size_t k = 0; k < N_KIND_KEYS; k++) {
        const inferd_value *arr = inferd_value_object_get(root, kind_keys[k].key);
        if (arr && !inferd_value_is(arr, INFERD_VALUE_ARRAY))
            return inferd_error_set(err, INFERD_ETYPE, "%s must be an array, not %s",
                                    kind_keys[k].key, type_of(arr));
        total += inferd_value_array_len(arr);
    }
    if (total == 0)
        return inferd_error_set(err, INFERD_EINVAL,
                                "the package declares no component (functions, sources, sinks, "
                                "events, backgrounds or estimators)");
    if (!(m->decls = calloc(total, sizeof *m->decls)))
        return no_memory(err);
    for (size_t k = 0; k < N_KIND_KEYS; k++) {
        const inferd_value *arr = inferd_value_object_get(root, kind_keys[k].key);
        for (size_t i = 0; i < inferd_value_array_len(arr); i++) {
            char where[64];
            snprintf(where, sizeof where, "%s[%zu]: ", kind_keys[k].key, i);
            portable_decl *d = &m->decls[m->n_decls++];
            if ((st = parse_decl(&kind_keys[k], inferd_value_array_get(arr, i), where, d, err)))
                return st;
            /* Unique across kinds: the host's registry names them all. */
            for (size_t j = 0; j + 1 < m->n_decls; j++)
                if (strcmp(m->decls[j].name, d->name) == 0)
                    return inferd_error_set(err, INFERD_EEXIST,
                                            "%sname '%s' is declared twice in the package (also "
                                            "as a %s)",
                                            where, d->name,
                                            inferd_component_kind_name(m->decls[j].kind));
        }
    }
    return INFERD_OK;
}

inferd_status portable_manifest_parse(const char *name, const char *text, size_t len,
                                      portable_manifest **out, inferd_error *err)
{
    if (out)
        *out = NULL;
    if (!out || (!text && len))
        return inferd_error_set(err, INFERD_EINVAL, "manifest: NULL argument");
    char shown[100];
    if (!portable_name_valid(name))
        return inferd_error_set(err, INFERD_EINVAL,
                                "manifest: plugin name '%s' is not valid (1-64 characters of A-Z, "
                                "a-z, 0-9, _ and -, starting with a letter or digit)",
                                name ? show_name(name, shown, sizeof shown) : "(null)");
    inferd_value *root = NULL;
    inferd_status st = inferd_value_from_json(text, len, 0, &root, err);
    portable_manifest *m = NULL;
    if (st == INFERD_OK) {
        if (!(m = calloc(1, sizeof *m)))
            st = no_memory(err);
        else
            st = parse_root(name, root, m, err);
    }
    inferd_value_free(root);
    if (st != INFERD_OK) {
        portable_manifest_free(m);
        inferd_error_prefix(err, "manifest %s.json", name);
        return st;
    }
    *out = m;
    return INFERD_OK;
}

/* Checks that dir/rel (rel passed path_problem) is a regular file reached
 * through real folders only: no symbolic link on the way can lead out of
 * the package. Fills *sb with the file's lstat. */
static inferd_status check_inside(const char *dir, const char *rel, struct stat *sb,
                                  inferd_error *err)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/", dir);
    if (n < 0 || (size_t)n + strlen(rel) >= sizeof path)
        return inferd_error_set(err, INFERD_ERANGE, "executable %s: the path is too long", rel);
    char *tail = path + n;
    strcpy(tail, rel);
    /* Walk it one segment at a time: cut at each '/', lstat, restore. */
    for (char *p = tail;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        char saved = *p;
        *p = '\0';
        if (lstat(path, sb) != 0) {
            int e = errno;
            return inferd_error_set(err, e == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                    "executable %s: %s%s: %s", rel, last ? "" : "folder ", tail,
                                    e == ENOENT ? "not found in the package" : strerror(e));
        }
        if (S_ISLNK(sb->st_mode))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "executable %s: %s is a symbolic link (it must be a regular "
                                    "file inside the package)",
                                    rel, tail);
        if (last) {
            if (!S_ISREG(sb->st_mode))
                return inferd_error_set(err, INFERD_EINVAL, "executable %s: not a regular file",
                                        rel);
            return INFERD_OK;
        }
        if (!S_ISDIR(sb->st_mode))
            return inferd_error_set(err, INFERD_EINVAL, "executable %s: %s is not a folder", rel,
                                    tail);
        *p = saved;
    }
}

/* Reads a whole small regular file (not through a symbolic link). */
static inferd_status read_small_file(const char *path, size_t max, char **out, size_t *len,
                                     inferd_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return inferd_error_set(err, INFERD_ENOTFOUND, "not found (%s)", path);
        if (e == ELOOP)
            return inferd_error_set(err, INFERD_EINVAL, "%s is a symbolic link", path);
        return inferd_error_set(err, INFERD_EIO, "%s: %s", path, strerror(e));
    }
    struct stat sb;
    inferd_status st = INFERD_OK;
    char *buf = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = inferd_error_set(err, INFERD_EINVAL, "%s is not a regular file", path);
    else if ((uint64_t)sb.st_size > max)
        st = inferd_error_set(err, INFERD_ERANGE, "%s is %lld bytes, more than the %zu allowed",
                              path, (long long)sb.st_size, max);
    else if (!(buf = malloc((size_t)sb.st_size + 1)))
        st = no_memory(err);
    size_t got = 0;
    while (st == INFERD_OK) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = inferd_error_set(err, INFERD_EIO, "%s: %s", path, strerror(errno));
        if (r <= 0 || (got += (size_t)r) == (size_t)sb.st_size)
            break;
    }
    close(fd);
    if (st != INFERD_OK) {
        free(buf);
        return st;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return INFERD_OK;
}

inferd_status portable_manifest_load(const char *dir, const char *name, portable_manifest **out,
                                     inferd_error *err)
{
    if (out)
        *out = NULL;
    if (!dir || !out)
        return inferd_error_set(err, INFERD_EINVAL, "manifest: NULL argument");
    char shown[100];
    if (!portable_name_valid(name))
        return inferd_error_set(err, INFERD_EINVAL, "manifest: plugin name '%s' is not valid",
                                name ? show_name(name, shown, sizeof shown) : "(null)");
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s.json", dir, name) >= (int)sizeof path)
        return inferd_error_set(err, INFERD_ERANGE, "manifest %s.json: the path is too long",
                                name);
    char *text = NULL;
    size_t len = 0;
    inferd_status st = read_small_file(path, MANIFEST_MAX_BYTES, &text, &len, err);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "manifest %s.json", name);
        return st;
    }
    portable_manifest *m = NULL;
    st = portable_manifest_parse(name, text, len, &m, err);
    free(text);
    if (st != INFERD_OK)
        return st;
    struct stat sb;
    st = check_inside(dir, m->executable, &sb, err);
    if (st == INFERD_OK && strcmp(m->language, "native") == 0 && !(sb.st_mode & S_IXUSR))
        st = inferd_error_set(err, INFERD_EINVAL,
                              "executable %s: not executable (a native plugin needs its x bit)",
                              m->executable);
    if (st != INFERD_OK) {
        portable_manifest_free(m);
        inferd_error_prefix(err, "manifest %s.json", name);
        return st;
    }
    *out = m;
    return INFERD_OK;
}

/* --- describe ------------------------------------------------------------------- */

/* Ignores allocation failures of single fields like plugin/describe.c, but
 * reports a lost top-level object as NULL. */
static void put(inferd_value *obj, const char *key, inferd_value *v)
{
    inferd_value_object_set(obj, key, v, NULL);
}

static void put_str(inferd_value *obj, const char *key, const char *s)
{
    if (s)
        put(obj, key, inferd_value_string(s));
}

static inferd_value *describe_decl(const portable_decl *d)
{
    inferd_value *o = inferd_value_object();
    put_str(o, "name", d->name);
    put_str(o, "description", d->description ? d->description : "");
    if (d->props && d->props[0].name) {
        inferd_value *props = inferd_value_array();
        for (const inferd_prop_spec *ps = d->props; ps->name; ps++) {
            inferd_value *pv = inferd_value_object();
            put_str(pv, "name", ps->name);
            put_str(pv, "type", inferd_prop_type_name(ps->type));
            if (ps->default_value)
                put_str(pv, "default", ps->default_value);
            put_str(pv, "description", ps->description);
            inferd_value_array_push(props, pv, NULL);
        }
        put(o, "props", props);
    }
    switch (d->kind) {
    case INFERD_KIND_FUNCTION:
        put(o, "minArgs", inferd_value_int(d->min_args));
        put(o, "maxArgs", inferd_value_int(d->max_args));
        put(o, "aggregate", inferd_value_bool(d->aggregate));
        break;
    case INFERD_KIND_EVENT:
        put_str(o, "event", d->event);
        break;
    case INFERD_KIND_ESTIMATOR:
        put_str(o, "broker", d->broker);
        break;
    case INFERD_KIND_BACKGROUND: {
        inferd_value *routes = inferd_value_array();
        for (size_t r = 0; r < d->n_routes; r++) {
            inferd_value *rt = inferd_value_object();
            put_str(rt, "method", d->routes[r].method);
            put_str(rt, "path", d->routes[r].path);
            inferd_value_array_push(routes, rt, NULL);
        }
        put(o, "routes", routes);
        break;
    }
    default:
        break;
    }
    return o;
}

inferd_value *portable_manifest_describe(const portable_manifest *m)
{
    if (!m)
        return NULL;
    inferd_value *o = inferd_value_object();
    if (!o)
        return NULL;
    put_str(o, "name", m->name);
    put_str(o, "version", m->version);
    put_str(o, "language", m->language);
    put_str(o, "executable", m->executable);
    put_str(o, "description", m->description ? m->description : "");
    for (size_t k = 0; k < N_KIND_KEYS; k++) {
        inferd_value *arr = inferd_value_array();
        for (size_t i = 0; i < m->n_decls; i++)
            if (m->decls[i].kind == kind_keys[k].kind)
                inferd_value_array_push(arr, describe_decl(&m->decls[i]), NULL);
        put(o, kind_keys[k].key, arr);
    }
    return o;
}

/* --- removing a tree ------------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    /* FTW_PHYS: a link is reported as FTW_SL and removed itself, never followed. */
    int r = type == FTW_DP || type == FTW_DNR ? rmdir(path) : unlink(path);
    return r != 0 && errno != ENOENT ? -1 : 0;
}

int portable_remove_tree(const char *path)
{
    struct stat sb;
    if (!path || !path[0]) {
        errno = EINVAL;
        return -1;
    }
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
    /* nftw keeps errno from the callback's failing call when it stops. */
    return nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) == 0 ? 0 : -1;
}

/* --- extracting a zip ---------------------------------------------------------- */

typedef struct pkg_entry {
    zip_uint64_t index;
    char *name;        /* owned: the zip name without a folder's trailing '/' */
    bool dir;
    bool exec;         /* the zip records the owner-execute bit */
    zip_uint64_t size; /* declared uncompressed size */
} pkg_entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const pkg_entry *)a)->name, ((const pkg_entry *)b)->name);
}

static const char *file_kind(mode_t type)
{
    switch (type) {
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a named pipe";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "not a regular file or folder";
    }
}

/* Reads and checks entry i into *e (e->name owned by e once set). */
static inferd_status check_entry(zip_t *za, zip_uint64_t i, pkg_entry *e, uint64_t *total,
                                 inferd_error *err)
{
    char shown[100];
    const char *raw = zip_get_name(za, i, ZIP_FL_ENC_GUESS);
    if (!raw)
        return inferd_error_set(err, INFERD_EINVAL, "entry %llu: no readable name: %s",
                                (unsigned long long)i, zip_strerror(za));
    show_name(raw, shown, sizeof shown);
    size_t len = strlen(raw);
    bool slash = len > 0 && raw[len - 1] == '/';
    if (len > PKG_MAX_PATH)
        return inferd_error_set(err, INFERD_EINVAL,
                                "entry %s: the name is %zu bytes long, more than the %d allowed",
                                shown, len, PKG_MAX_PATH);
    const char *problem = path_problem(raw, slash ? len - 1 : len);
    if (problem)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, problem);

    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, i, 0, &zs) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    if ((zs.valid & ZIP_STAT_ENCRYPTION_METHOD) && zs.encryption_method != ZIP_EM_NONE)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "entry %s: encrypted entries are not supported", shown);
    if ((zs.valid & ZIP_STAT_COMP_METHOD) && !zip_compression_method_supported(zs.comp_method, 0))
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "entry %s: compression method %d is not supported", shown,
                                (int)zs.comp_method);
    if (!(zs.valid & ZIP_STAT_SIZE))
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: no size recorded", shown);

    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    if (zip_file_get_external_attributes(za, i, 0, &opsys, &attr) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    bool dir = slash;
    bool exec = false;
    if (opsys == ZIP_OPSYS_UNIX) {
        mode_t mode = (mode_t)(attr >> 16);
        mode_t type = mode & S_IFMT;
        if (type == S_IFDIR)
            dir = true;
        else if (type == S_IFREG && slash)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "entry %s: a regular file whose name ends with /", shown);
        else if (type != 0 && type != S_IFREG)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "entry %s: %s is not allowed in a package (only regular "
                                    "files and folders)",
                                    shown, file_kind(type));
        exec = (mode & S_IXUSR) != 0;
    }
    if (dir && zs.size > 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: a folder entry that holds data",
                                shown);
    if (zs.size > PKG_MAX_TOTAL - *total)
        return inferd_error_set(err, INFERD_ERANGE,
                                "entry %s: the package would hold more than 2 GiB uncompressed",
                                shown);
    *total += zs.size;
    if (!(e->name = strndup(raw, slash ? len - 1 : len)))
        return no_memory(err);
    e->index = i;
    e->dir = dir;
    e->exec = exec;
    e->size = zs.size;
    return INFERD_OK;
}

/* Checks the set of entries (sorted by name): no name twice, and no entry
 * under a name that another entry makes a file. */
static inferd_status check_entry_set(pkg_entry *entries, size_t n, inferd_error *err)
{
    char shown[100];
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(entries[i].name, entries[i + 1].name) == 0)
            return inferd_error_set(err, INFERD_EINVAL, "entry %s: appears twice in the package",
                                    show_name(entries[i].name, shown, sizeof shown));
    char prefix[PKG_MAX_PATH + 1]; /* names passed path_problem: never longer */
    for (size_t i = 0; i < n; i++) {
        const char *name = entries[i].name;
        for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
            memcpy(prefix, name, (size_t)(p - name));
            prefix[p - name] = '\0';
            pkg_entry key = {.name = prefix};
            const pkg_entry *parent = bsearch(&key, entries, n, sizeof *entries, entry_cmp);
            if (parent && !parent->dir)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "entry %s: lies under %s, which is a file in the package",
                                        show_name(name, shown, sizeof shown), parent->name);
        }
    }
    return INFERD_OK;
}

/* mkdir -p of dest/rel's folders (rel's last segment excluded unless
 * whole). Every folder made is 0755 whatever the umask. */
static inferd_status make_folders(const char *dest, const char *rel, bool whole,
                                  inferd_error *err)
{
    char path[PATH_MAX];
    int base = snprintf(path, sizeof path, "%s/", dest);
    if (base < 0 || (size_t)base + strlen(rel) >= sizeof path)
        return inferd_error_set(err, INFERD_ERANGE, "entry %s: the path is too long", rel);
    strcpy(path + base, rel);
    for (char *p = path + base;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !(end && whole)) {
            if (end)
                break;
            continue;
        }
        *p = '\0';
        if (mkdir(path, 0755) == 0) {
            chmod(path, 0755);
        } else {
            int e = errno;
            struct stat sb;
            if (e != EEXIST || lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
                return inferd_error_set(err, INFERD_EIO, "entry %s: making folder %s: %s", rel,
                                        path + base, strerror(e == EEXIST ? ENOTDIR : e));
        }
        if (end)
            break;
        *p = '/';
    }
    return INFERD_OK;
}

static inferd_status write_all(int fd, const char *data, size_t len, const char *shown,
                               inferd_error *err)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return inferd_error_set(err, INFERD_EIO, "entry %s: writing: %s", shown,
                                    strerror(errno));
        data += w;
        len -= (size_t)w;
    }
    return INFERD_OK;
}

/* Writes one regular file entry; never writes more than it declared. */
static inferd_status extract_file(zip_t *za, const pkg_entry *e, const char *dest, char *buf,
                                  size_t buf_size, inferd_error *err)
{
    char shown[100];
    show_name(e->name, shown, sizeof shown);
    inferd_status st = make_folders(dest, e->name, false, err);
    if (st != INFERD_OK)
        return st;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dest, e->name); /* length checked by make_folders */
    /* O_EXCL | O_NOFOLLOW: never write through anything already there. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return inferd_error_set(err, INFERD_EIO, "entry %s: creating: %s", shown,
                                strerror(errno));
    zip_file_t *zf = zip_fopen_index(za, e->index, 0);
    if (!zf) {
        close(fd);
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    }
    zip_uint64_t got = 0;
    for (;;) {
        zip_int64_t n = zip_fread(zf, buf, buf_size);
        if (n < 0) {
            st = inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown,
                                  zip_file_strerror(zf));
            break;
        }
        if (n == 0)
            break;
        got += (zip_uint64_t)n;
        if (got > e->size) {
            st = inferd_error_set(err, INFERD_EINVAL,
                                  "entry %s: holds more data than the %llu bytes it declares",
                                  shown, (unsigned long long)e->size);
            break;
        }
        if ((st = write_all(fd, buf, (size_t)n, shown, err)) != INFERD_OK)
            break;
    }
    zip_fclose(zf);
    if (st == INFERD_OK && got != e->size)
        st = inferd_error_set(err, INFERD_EINVAL, "entry %s: holds %llu bytes, not the %llu it "
                              "declares", shown, (unsigned long long)got,
                              (unsigned long long)e->size);
    if (st == INFERD_OK && fchmod(fd, e->exec ? 0755 : 0644) != 0)
        st = inferd_error_set(err, INFERD_EIO, "entry %s: chmod: %s", shown, strerror(errno));
    if (close(fd) != 0 && st == INFERD_OK)
        st = inferd_error_set(err, INFERD_EIO, "entry %s: writing: %s", shown, strerror(errno));
    return st;
}

static inferd_status extract_checked(const char *zip_path, const char *dest, inferd_error *err)
{
    struct stat sb;
    if (lstat(dest, &sb) == 0)
        return inferd_error_set(err, INFERD_EEXIST, "destination %s exists already", dest);
    if (stat(zip_path, &sb) != 0)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO, "%s: %s",
                                zip_path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return inferd_error_set(err, INFERD_EINVAL, "%s is not a regular file", zip_path);

    int zerr = 0;
    zip_t *za = zip_open(zip_path, ZIP_RDONLY, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        inferd_status st = inferd_error_set(err, zerr == ZIP_ER_NOZIP ? INFERD_EINVAL : INFERD_EIO,
                                            "not a readable zip file: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    inferd_status st = INFERD_OK;
    pkg_entry *entries = NULL;
    size_t n = 0;
    char *buf = NULL;
    zip_int64_t count = zip_get_num_entries(za, 0);
    if (count < 0 || count > PKG_MAX_ENTRIES) {
        st = inferd_error_set(err, INFERD_ERANGE, "%lld entries, more than the %d allowed",
                              (long long)count, PKG_MAX_ENTRIES);
        goto done;
    }
    if (count > 0 && !(entries = calloc((size_t)count, sizeof *entries))) {
        st = no_memory(err);
        goto done;
    }
    uint64_t total = 0;
    for (; n < (size_t)count; n++)
        if ((st = check_entry(za, n, &entries[n], &total, err)) != INFERD_OK)
            goto done;
    qsort(entries, n, sizeof *entries, entry_cmp);
    if ((st = check_entry_set(entries, n, err)) != INFERD_OK)
        goto done;

    /* Everything checked: now write. The parent must exist (no mkdir -p of
     * a destination someone mistyped). */
    if (mkdir(dest, 0755) != 0) {
        int e = errno;
        st = inferd_error_set(err,
                              e == EEXIST   ? INFERD_EEXIST
                              : e == ENOENT ? INFERD_ENOTFOUND
                                            : INFERD_EIO,
                              "creating %s: %s", dest, strerror(e));
        goto done;
    }
    chmod(dest, 0755);
    size_t buf_size = 64 << 10;
    if (!(buf = malloc(buf_size))) {
        st = no_memory(err);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        st = entries[i].dir ? make_folders(dest, entries[i].name, true, err)
                            : extract_file(za, &entries[i], dest, buf, buf_size, err);
        if (st != INFERD_OK)
            goto cleanup;
    }
    goto done;
cleanup:
    if (portable_remove_tree(dest) != 0)
        inferd_log_error(LOG_COMPONENT, "removing %s after a failed extraction: %s", dest,
                         strerror(errno));
done:
    for (size_t i = 0; i < n && entries; i++)
        free(entries[i].name);
    /* check_entry may have set a name before failing on entry n. */
    if (entries && n < (size_t)count)
        free(entries[n].name);
    free(entries);
    free(buf);
    zip_discard(za);
    return st;
}

inferd_status portable_package_extract(const char *zip_path, const char *dest, inferd_error *err)
{
    if (!zip_path || !dest || !dest[0])
        return inferd_error_set(err, INFERD_EINVAL, "package: NULL argument");
    inferd_status st = extract_checked(zip_path, dest, err);
    if (st != INFERD_OK)
        inferd_error_prefix(err, "package %s", base_name(zip_path));
    return st;
}

/* --- what an install leaves running --------------------------------------------- */

size_t portable_sweep_marked(const char *marker)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t killed = 0, mlen = strlen(marker);
    char path[64], *env = malloc(65536);
    struct dirent *de;
    while (env && (de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == (long)getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, env, 65535);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strnlen(env + i, (size_t)(n - i)) + 1)
            if ((size_t)(n - i) >= mlen && memcmp(env + i, marker, mlen) == 0 &&
                (i + (ssize_t)mlen == n || env[i + (ssize_t)mlen] == '\0')) {
                if (kill((pid_t)pid, SIGKILL) == 0)
                    killed++;
                break;
            }
    }
    free(env);
    closedir(d);
    return killed;
}

/* --- install.sh ---------------------------------------------------------------- */

#define INSTALL_LINE_MAX 2048 /* longer lines are logged in pieces */
#define INSTALL_TAIL_MAX 1024 /* the output kept for the error message */

typedef struct install_output {
    const char *name;
    char line[INSTALL_LINE_MAX];
    size_t line_len;
    char tail[INSTALL_TAIL_MAX]; /* the last lines, each ending with '\n' */
    size_t tail_len;
} install_output;

static void output_line(install_output *o)
{
    size_t len = o->line_len;
    if (len > 0 && o->line[len - 1] == '\r')
        len--;
    o->line_len = 0;
    inferd_log_info(LOG_COMPONENT, "[install %s] %.*s", o->name, (int)len, o->line);
    /* Keep the tail: drop whole lines from the front until this one fits. */
    if (len + 1 > sizeof o->tail)
        len = sizeof o->tail - 1;
    while (o->tail_len + len + 1 > sizeof o->tail) {
        char *nl = memchr(o->tail, '\n', o->tail_len);
        size_t drop = nl ? (size_t)(nl - o->tail) + 1 : o->tail_len;
        memmove(o->tail, o->tail + drop, o->tail_len - drop);
        o->tail_len -= drop;
    }
    memcpy(o->tail + o->tail_len, o->line, len);
    o->tail[o->tail_len + len] = '\n';
    o->tail_len += len + 1;
}

static void output_feed(install_output *o, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            output_line(o);
            continue;
        }
        /* Control bytes (a NUL would cut the log line) become '?'. */
        unsigned char c = (unsigned char)data[i];
        o->line[o->line_len++] = (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f ? '?' : (char)c;
        if (o->line_len == sizeof o->line)
            output_line(o);
    }
}

/* Sets err to "install NAME: what; last output: a | b" (what e.g.
 * "install.sh exited with status 3") with as many of the last lines of
 * output as fit in the message: the end matters most, so it is never the
 * part cut. */
static inferd_status install_failed(inferd_error *err, inferd_status code, const char *what,
                                    const install_output *o)
{
    char head[256];
    snprintf(head, sizeof head, "install %s: %s", o->name, what);
    if (o->tail_len == 0)
        return inferd_error_set(err, code, "%s (no output)", head);
    const char *sep = "; last output: ";
    size_t used = strlen(head) + strlen(sep);
    size_t room = INFERD_ERROR_MESSAGE_MAX - 1 > used ? INFERD_ERROR_MESSAGE_MAX - 1 - used : 0;
    /* The first line start from which the rest fits (each '\n' but the
     * last becomes " | ", 2 bytes more). */
    size_t start = 0;
    for (;;) {
        size_t lines = 0;
        for (size_t i = start; i < o->tail_len; i++)
            lines += o->tail[i] == '\n';
        if (o->tail_len - start - 1 + 2 * (lines - 1) <= room)
            break;
        const char *nl = memchr(o->tail + start, '\n', o->tail_len - start);
        if ((size_t)(nl - o->tail) + 1 >= o->tail_len) {
            /* The last line alone is longer than the room: keep its end. */
            start = o->tail_len - 1 - room;
            break;
        }
        start = (size_t)(nl - o->tail) + 1;
    }
    char joined[INFERD_ERROR_MESSAGE_MAX];
    size_t j = 0;
    for (size_t i = start; i + 1 < o->tail_len && j + 4 < sizeof joined; i++) {
        if (o->tail[i] == '\n') {
            memcpy(joined + j, " | ", 3);
            j += 3;
        } else {
            joined[j++] = o->tail[i];
        }
    }
    joined[j] = '\0';
    return inferd_error_set(err, code, "%s%s%s", head, sep, joined);
}

inferd_status portable_package_run_install(const char *dir, const char *name, uint64_t timeout_ms,
                                           inferd_error *err)
{
    if (!dir || !name)
        return inferd_error_set(err, INFERD_EINVAL, "install: NULL argument");
    char *home = realpath(dir, NULL); /* owned: HOME and the working directory */
    if (!home)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                "install %s: folder %s: %s", name, dir, strerror(errno));
    char script[PATH_MAX], home_env[PATH_MAX + 8];
    snprintf(script, sizeof script, "%s/install.sh", home);
    snprintf(home_env, sizeof home_env, "HOME=%s", home);
    struct stat sb;
    if (lstat(script, &sb) != 0) {
        int e = errno;
        free(home);
        if (e == ENOENT)
            return INFERD_OK;
        return inferd_error_set(err, INFERD_EIO, "install %s: install.sh: %s", name,
                                strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        free(home);
        return inferd_error_set(err, INFERD_EINVAL, "install %s: install.sh is not a regular file",
                                name);
    }

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        free(home);
        return inferd_error_set(err, INFERD_EIO, "install %s: pipe: %s", name, strerror(errno));
    }
    /* posix_spawn, not fork: the daemon has threads, and the child must
     * start clean: its own process group, default signals, no inherited
     * descriptors. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, home);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    char *const argv[] = {"sh", "install.sh", NULL};
    /* Everything install.sh starts inherits this entry: how it is found
     * again when it left the process group (portable_sweep_marked). */
    static atomic_uint installs;
    char marker[96];
    snprintf(marker, sizeof marker, "INFERD_INSTALL_ID=%d-%u-%llu", (int)getpid(),
             atomic_fetch_add(&installs, 1), (unsigned long long)inferd__now_us());
    char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", home_env, "LANG=C.UTF-8", marker,
                          NULL};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pfd[1]);
    free(home);
    if (rc != 0) {
        close(pfd[0]);
        return inferd_error_set(err, INFERD_EIO, "install %s: starting /bin/sh install.sh: %s",
                                name, strerror(rc));
    }
    inferd_log_info(LOG_COMPONENT, "[install %s] running install.sh (pid %d, at most %llu ms)",
                    name, (int)pid, (unsigned long long)timeout_ms);

    install_output o = {.name = name};
    uint64_t deadline = inferd__now_ms() + timeout_ms;
    bool eof = false, exited = false, timed_out = false;
    char buf[4096];
    for (;;) {
        if (!exited) {
            /* WNOWAIT: the zombie keeps its pid, so its group id cannot go
             * to another process before the group is killed. */
            siginfo_t si = {0};
            int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
            if ((w == 0 && si.si_pid == pid) || (w != 0 && errno == ECHILD)) {
                exited = true;
                /* What it left running, in its group or not, would hold the
                 * pipe (and outlive the install). */
                kill(-pid, SIGKILL);
                /* Twice, a moment apart: a process caught between fork and
                 * exec, or leaving the group right then, is seen the second
                 * time. */
                size_t swept = portable_sweep_marked(marker);
                usleep(20000);
                swept += portable_sweep_marked(marker);
                if (swept)
                    inferd_log_warn(LOG_COMPONENT, "[install %s] install.sh left %zu process%s "
                                    "running outside its group: killed", name, swept,
                                    swept == 1 ? "" : "es");
            }
        }
        if (exited && eof)
            break;
        uint64_t now = inferd__now_ms();
        if (now >= deadline) {
            timed_out = !exited;
            kill(-pid, SIGKILL);
            portable_sweep_marked(marker);
            break;
        }
        uint64_t left = deadline - now;
        int wait_ms = eof ? 10 : 100; /* how often the exit is looked at */
        if (left < (uint64_t)wait_ms)
            wait_ms = (int)left;
        struct pollfd p = {.fd = eof ? -1 : pfd[0], .events = POLLIN};
        if (poll(&p, 1, wait_ms) > 0 && !eof) {
            ssize_t n = read(pfd[0], buf, sizeof buf);
            if (n > 0)
                output_feed(&o, buf, (size_t)n);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                eof = true;
        }
    }
    close(pfd[0]);
    if (o.line_len > 0)
        output_line(&o);

    int status = 0;
    pid_t w;
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);

    char what[128];
    inferd_status st = INFERD_OK;
    if (timed_out) {
        snprintf(what, sizeof what, "install.sh did not finish within %llu ms",
                 (unsigned long long)timeout_ms);
        st = install_failed(err, INFERD_ETIMEOUT, what, &o);
    } else if (w != pid) {
        st = inferd_error_set(err, INFERD_EINTERNAL,
                              "install %s: install.sh's exit status was lost (waitpid: %s)", name,
                              strerror(errno));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(what, sizeof what, "install.sh exited with status %d", WEXITSTATUS(status));
        st = install_failed(err, INFERD_EPLUGIN, what, &o);
    } else if (WIFSIGNALED(status)) {
        const char *sig = sigabbrev_np(WTERMSIG(status));
        snprintf(what, sizeof what, "install.sh was killed by signal %d (SIG%s)",
                 WTERMSIG(status), sig ? sig : "?");
        st = install_failed(err, INFERD_EPLUGIN, what, &o);
    }
    if (st == INFERD_OK)
        inferd_log_info(LOG_COMPONENT, "[install %s] install.sh finished", name);
    return st;
}
