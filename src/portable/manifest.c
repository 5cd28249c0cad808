/* portable/manifest.c: a portable package's manifest (<name>.json): read,
 * checked field by field, described back. Owns the manifests it returns. */
#include "portable/package.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferd/props.h"
#include "core/build_value.h"
#include "portable/paths.h"

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
        return pkg_no_memory(err);
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
                                    where, pkg_show_name(key, shown, sizeof shown), list);
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
        return pkg_no_memory(err);
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
                                    here, pkg_show_name(method, shown, sizeof shown));
        bool bad = path[0] != '/';
        for (size_t k = 0; k < path_len && !bad; k++)
            bad = (unsigned char)path[k] <= 0x20 || path[k] == 0x7f || path[k] == '?';
        if (bad)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%spath '%s' must start with / and hold no spaces, control "
                                    "characters or ?",
                                    here, pkg_show_name(path, shown, sizeof shown));
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
        return pkg_no_memory(err);
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
                return pkg_no_memory(err);
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
            return pkg_no_memory(err);
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
                                where, pkg_show_name(name, shown, sizeof shown));
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
                                    where, pkg_show_name(ref, shown, sizeof shown));
        break;
    case INFERD_KIND_ESTIMATOR:
        if ((st = get_string(item, "broker", where, true, NULL, &d->broker, &ref, &ref_len, err)))
            return st;
        if (!ref_name_valid(ref, ref_len))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%sbroker '%s' must be 1-128 characters of A-Z, a-z, 0-9, _, "
                                    "- and .",
                                    where, pkg_show_name(ref, shown, sizeof shown));
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
        return pkg_no_memory(err);

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
                                pkg_show_name(text, shown, sizeof shown));
    if ((st = get_string(root, "executable", "", true, NULL, &m->executable, &text, &len, err)))
        return st;
    const char *problem = pkg_path_problem(text, len);
    if (problem)
        return inferd_error_set(err, INFERD_EINVAL, "executable '%s': %s",
                                pkg_show_name(text, shown, sizeof shown), problem);
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
        return pkg_no_memory(err);
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
                                name ? pkg_show_name(name, shown, sizeof shown) : "(null)");
    inferd_value *root = NULL;
    inferd_status st = inferd_value_from_json(text, len, 0, &root, err);
    portable_manifest *m = NULL;
    if (st == INFERD_OK) {
        if (!(m = calloc(1, sizeof *m)))
            st = pkg_no_memory(err);
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
        st = pkg_no_memory(err);
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
                                name ? pkg_show_name(name, shown, sizeof shown) : "(null)");
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

static inferd_value *describe_decl(const portable_decl *d)
{
    inferd_value *o = inferd_value_object();
    inferd__put_str(o, "name", d->name, NULL);
    inferd__put_str(o, "description", d->description ? d->description : "", NULL);
    if (d->props && d->props[0].name) {
        inferd_value *props = inferd_value_array();
        for (const inferd_prop_spec *ps = d->props; ps->name; ps++) {
            inferd_value *pv = inferd_value_object();
            inferd__put_str(pv, "name", ps->name, NULL);
            inferd__put_str(pv, "type", inferd_prop_type_name(ps->type), NULL);
            if (ps->default_value)
                inferd__put_str(pv, "default", ps->default_value, NULL);
            inferd__put_str(pv, "description", ps->description, NULL);
            inferd_value_array_push(props, pv, NULL);
        }
        inferd__put(o, "props", props, NULL);
    }
    switch (d->kind) {
    case INFERD_KIND_FUNCTION:
        inferd__put(o, "minArgs", inferd_value_int(d->min_args), NULL);
        inferd__put(o, "maxArgs", inferd_value_int(d->max_args), NULL);
        inferd__put(o, "aggregate", inferd_value_bool(d->aggregate), NULL);
        break;
    case INFERD_KIND_EVENT:
        inferd__put_str(o, "event", d->event, NULL);
        break;
    case INFERD_KIND_ESTIMATOR:
        inferd__put_str(o, "broker", d->broker, NULL);
        break;
    case INFERD_KIND_BACKGROUND: {
        inferd_value *routes = inferd_value_array();
        for (size_t r = 0; r < d->n_routes; r++) {
            inferd_value *rt = inferd_value_object();
            inferd__put_str(rt, "method", d->routes[r].method, NULL);
            inferd__put_str(rt, "path", d->routes[r].path, NULL);
            inferd_value_array_push(routes, rt, NULL);
        }
        inferd__put(o, "routes", routes, NULL);
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
    inferd__put_str(o, "name", m->name, NULL);
    inferd__put_str(o, "version", m->version, NULL);
    inferd__put_str(o, "language", m->language, NULL);
    inferd__put_str(o, "executable", m->executable, NULL);
    inferd__put_str(o, "description", m->description ? m->description : "", NULL);
    for (size_t k = 0; k < N_KIND_KEYS; k++) {
        inferd_value *arr = inferd_value_array();
        for (size_t i = 0; i < m->n_decls; i++)
            if (m->decls[i].kind == kind_keys[k].kind)
                inferd_value_array_push(arr, describe_decl(&m->decls[i]), NULL);
        inferd__put(o, kind_keys[k].key, arr, NULL);
    }
    return o;
}
