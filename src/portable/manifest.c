/* portable/manifest.c: a portable package's manifest (<name>.json): read,
 * checked field by field, described back. Owns the manifests it returns. */
#include "portable/package.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <stddef.h>
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

/* --- the declaration -------------------------------------------------------- */

/* What the one validator binds a manifest into; the checks no declaration
 * can say (names, paths, arities, duplicates) follow it. */
typedef struct prop_decl {
    const char *name, *type, *def, *description;
} prop_decl;

typedef struct route_decl {
    const char *method, *path;
} route_decl;

typedef struct comp_decl {
    const char *name, *description, *event, *broker;
    const inferd_value *props, *routes;
    int64_t min_args, max_args;
    bool aggregate;
} comp_decl;

typedef struct root_decl {
    const char *version, *language, *executable, *description;
    const inferd_value *arrays[6]; /* in kind_keys' order */
} root_decl;

static const char *const prop_types[] = {"string", "int", "double", "bool", NULL};
static const char *const http_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH",
                                           "HEAD", "OPTIONS", "*", NULL};
static const char *const languages[] = {"python", "native", NULL};

static const inferd_prop_spec prop_specs[] = {
    {.name = "name", .type = INFERD_PROP_TYPE_STRING, .description = "an identifier",
     INFERD_PROP_AT(prop_decl, name)},
    {.name = "type", .type = INFERD_PROP_TYPE_ENUM, .enum_values = prop_types,
     INFERD_PROP_AT(prop_decl, type)},
    {.name = "default", .type = INFERD_PROP_TYPE_STRING, .description = "any JSON value; "
     "absent: the property is required", INFERD_PROP_AT_OPTIONAL(prop_decl, def)},
    {.name = "description", .type = INFERD_PROP_TYPE_STRING, .default_value = "",
     INFERD_PROP_AT(prop_decl, description)},
    INFERD_PROP_END,
};

static const inferd_prop_spec route_specs[] = {
    {.name = "method", .type = INFERD_PROP_TYPE_ENUM, .enum_values = http_methods,
     INFERD_PROP_AT(route_decl, method)},
    {.name = "path", .type = INFERD_PROP_TYPE_STRING, .description = "starts with /",
     INFERD_PROP_AT(route_decl, path)},
    INFERD_PROP_END,
};

/* What every component declares, then each kind's own. */
#define COMP_SPECS                                                                           \
    {.name = "name", .type = INFERD_PROP_TYPE_STRING, .description = "an identifier",        \
     INFERD_PROP_AT(comp_decl, name)},                                                       \
    {.name = "description", .type = INFERD_PROP_TYPE_STRING, .default_value = "",            \
     INFERD_PROP_AT(comp_decl, description)},                                                \
    {.name = "props", .type = INFERD_PROP_TYPE_ARRAY, .fields = prop_specs,                  \
     .description = "its properties", INFERD_PROP_AT(comp_decl, props)}

static const inferd_prop_spec function_specs[] = {
    COMP_SPECS,
    {.name = "minArgs", .type = INFERD_PROP_TYPE_INT, .default_value = "0", .imin = 0,
     .imax = INT32_MAX, INFERD_PROP_AT(comp_decl, min_args)},
    {.name = "maxArgs", .type = INFERD_PROP_TYPE_INT, .default_value = "-1", .imin = -1,
     .imax = INT32_MAX, .description = "-1: any number", INFERD_PROP_AT(comp_decl, max_args)},
    {.name = "aggregate", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     INFERD_PROP_AT(comp_decl, aggregate)},
    INFERD_PROP_END,
};
static const inferd_prop_spec plain_specs[] = {COMP_SPECS, INFERD_PROP_END};
static const inferd_prop_spec event_specs[] = {
    COMP_SPECS,
    {.name = "event", .type = INFERD_PROP_TYPE_STRING, .description = "the event it receives",
     INFERD_PROP_AT(comp_decl, event)},
    INFERD_PROP_END,
};
static const inferd_prop_spec background_specs[] = {
    COMP_SPECS,
    {.name = "routes", .type = INFERD_PROP_TYPE_ARRAY, .fields = route_specs,
     .description = "its HTTP routes", INFERD_PROP_AT(comp_decl, routes)},
    INFERD_PROP_END,
};
static const inferd_prop_spec estimator_specs[] = {
    COMP_SPECS,
    {.name = "broker", .type = INFERD_PROP_TYPE_STRING, .description = "the estimator it serves "
     "or replaces", INFERD_PROP_AT(comp_decl, broker)},
    INFERD_PROP_END,
};

/* The component arrays of a manifest, in the order decls are kept. */
typedef struct kind_key {
    const char *key;
    inferd_component_kind kind;
    bool short_form; /* a plain name string is allowed */
    const inferd_prop_spec *specs;
} kind_key;

static const kind_key kind_keys[] = {
    {"functions", INFERD_KIND_FUNCTION, true, function_specs},
    {"sources", INFERD_KIND_SOURCE, true, plain_specs},
    {"sinks", INFERD_KIND_SINK, true, plain_specs},
    {"events", INFERD_KIND_EVENT, false, event_specs},
    {"backgrounds", INFERD_KIND_BACKGROUND, false, background_specs},
    {"estimators", INFERD_KIND_ESTIMATOR, false, estimator_specs},
};
#define N_KIND_KEYS (sizeof kind_keys / sizeof kind_keys[0])

/* A kind's array: its items are checked against the kind's declaration. */
#define KIND_ARRAY(i, key, specs)                                                            \
    {.name = (key), .type = INFERD_PROP_TYPE_ARRAY, .fields = (specs),                       \
     .offset = offsetof(root_decl, arrays) + (i) * sizeof(const inferd_value *),            \
     .flags = INFERD_PROP_BOUND | INFERD_PROP_OPTIONAL}
static const inferd_prop_spec root_specs[] = {
    {.name = "version", .type = INFERD_PROP_TYPE_STRING, .description = "the package's version",
     INFERD_PROP_AT(root_decl, version)},
    {.name = "language", .type = INFERD_PROP_TYPE_ENUM, .enum_values = languages,
     INFERD_PROP_AT(root_decl, language)},
    {.name = "executable", .type = INFERD_PROP_TYPE_STRING, .description = "a path inside the "
     "package", INFERD_PROP_AT(root_decl, executable)},
    {.name = "description", .type = INFERD_PROP_TYPE_STRING, .default_value = "",
     INFERD_PROP_AT(root_decl, description)},
    /* in kind_keys' order */
    KIND_ARRAY(0, "functions", function_specs), KIND_ARRAY(1, "sources", plain_specs),
    KIND_ARRAY(2, "sinks", plain_specs), KIND_ARRAY(3, "events", event_specs),
    KIND_ARRAY(4, "backgrounds", background_specs),
    KIND_ARRAY(5, "estimators", estimator_specs),
    INFERD_PROP_END,
};

const inferd_prop_spec *portable_manifest_specs(void) { return root_specs; }

/* The manifest as the declaration reads it: keys starting with "x-" (free
 * for tools) left out at every level, a component given by its name alone
 * ("functions": ["f"]) as {"name": "f"}, and a property's default of any
 * JSON type as its JSON text (as a user writes it: a string bare). NULL on
 * ENOMEM. */
static inferd_value *normalised(const inferd_value *v, int depth, const char *key)
{
    if (inferd_value_is(v, INFERD_VALUE_OBJECT)) {
        inferd_value *o = inferd_value_object();
        const char *k;
        inferd_value *item;
        for (size_t i = 0; o && inferd_value_object_entry(v, i, &k, &item); i++) {
            if (strncmp(k, "x-", 2) == 0)
                continue;
            inferd_value *n = NULL;
            if (strcmp(k, "default") == 0 && depth == 4 && !inferd_value_is(item, INFERD_VALUE_STRING)) {
                char *text = NULL;
                if (inferd_value_to_json(item, 0, &text, NULL, NULL) == INFERD_OK)
                    n = inferd_value_string(text);
                free(text);
            } else {
                n = normalised(item, depth + 1, k);
            }
            if (!n || inferd_value_object_set(o, k, n, NULL) != INFERD_OK) {
                inferd_value_free(o);
                return NULL;
            }
        }
        return o;
    }
    if (inferd_value_is(v, INFERD_VALUE_ARRAY)) {
        bool short_form = false;
        for (size_t k = 0; depth == 1 && key && k < N_KIND_KEYS; k++)
            short_form = short_form || (strcmp(key, kind_keys[k].key) == 0 && kind_keys[k].short_form);
        inferd_value *a = inferd_value_array();
        for (size_t i = 0; a && i < inferd_value_array_len(v); i++) {
            const inferd_value *item = inferd_value_array_get(v, i);
            inferd_value *n;
            if (short_form && inferd_value_is(item, INFERD_VALUE_STRING)) {
                n = inferd_value_object();
                if (n && inferd_value_object_set(n, "name", inferd_value_copy(item), NULL) !=
                             INFERD_OK) {
                    inferd_value_free(n);
                    n = NULL;
                }
            } else {
                n = normalised(item, depth + 1, key);
            }
            if (!n || inferd_value_array_push(a, n, NULL) != INFERD_OK) {
                inferd_value_free(a);
                return NULL;
            }
        }
        return a;
    }
    return inferd_value_copy(v);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* "props": their declarations for the host to validate a component's
 * settings against (a prop without a default is required). */
static inferd_status take_props(const inferd_value *arr, const char *where, portable_decl *d,
                                inferd_error *err)
{
    size_t n = inferd_value_array_len(arr);
    if (!(d->props = calloc(n + 1, sizeof *d->props)))
        return pkg_no_memory(err);
    static const inferd_prop_type types[] = {INFERD_PROP_TYPE_STRING, INFERD_PROP_TYPE_INT,
                                             INFERD_PROP_TYPE_DOUBLE, INFERD_PROP_TYPE_BOOL};
    for (size_t i = 0; i < n; i++) {
        prop_decl pd = {0};
        inferd_props *p = NULL;
        if (inferd_props_validate(prop_specs, "props", inferd_value_array_get(arr, i), &p, err) !=
            INFERD_OK)
            return INFERD_EINVAL; /* checked already: cannot happen */
        inferd_props_bind(p, &pd);
        inferd_prop_spec *ps = &d->props[i];
        size_t t = 0;
        while (prop_types[t] && strcmp(prop_types[t], pd.type) != 0)
            t++;
        ps->type = types[t];
        ps->imin = INT64_MIN, ps->imax = INT64_MAX;
        ps->dmin = -DBL_MAX, ps->dmax = DBL_MAX;
        ps->name = strdup(pd.name); /* owned by the array from here on (decl_free) */
        ps->description = strdup(pd.description);
        ps->default_value = dup_or_null(pd.def);
        bool ok = ps->name && ps->description && (!pd.def || ps->default_value);
        bool valid = component_name_valid(pd.name, strlen(pd.name));
        inferd_props_free(p);
        if (!ok)
            return pkg_no_memory(err);
        if (!valid)
            return inferd_error_set(err, INFERD_EINVAL, "%sprops[%zu]: name must be 1-64 "
                                    "characters of A-Z, a-z, 0-9 and _, not starting with a "
                                    "digit", where, i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(d->props[k].name, ps->name) == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%sprops[%zu]: '%s' is declared "
                                        "twice", where, i, ps->name);
    }
    return INFERD_OK;
}

static inferd_status take_routes(const inferd_value *arr, const char *where, portable_decl *d,
                                 inferd_error *err)
{
    size_t n = inferd_value_array_len(arr);
    if (n && !(d->routes = calloc(n, sizeof *d->routes)))
        return pkg_no_memory(err);
    char shown[100];
    for (size_t i = 0; i < n; i++) {
        route_decl rd = {0};
        inferd_props *p = NULL;
        if (inferd_props_validate(route_specs, "routes", inferd_value_array_get(arr, i), &p,
                                  err) != INFERD_OK)
            return INFERD_EINVAL; /* checked already */
        inferd_props_bind(p, &rd);
        portable_route *rt = &d->routes[d->n_routes++];
        rt->method = strdup(rd.method);
        rt->path = strdup(rd.path);
        inferd_props_free(p);
        if (!rt->method || !rt->path)
            return pkg_no_memory(err);
        bool bad = rt->path[0] != '/';
        for (const char *c = rt->path; *c && !bad; c++)
            bad = (unsigned char)*c <= 0x20 || *c == 0x7f || *c == '?';
        if (bad)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%sroutes[%zu]: path '%s' must start with / and hold no "
                                    "spaces, control characters or ?",
                                    where, i, pkg_show_name(rt->path, shown, sizeof shown));
        for (size_t k = 0; k + 1 < d->n_routes; k++)
            if (strcmp(d->routes[k].method, rt->method) == 0 &&
                strcmp(d->routes[k].path, rt->path) == 0)
                return inferd_error_set(err, INFERD_EINVAL, "%sroutes[%zu]: %s %s is declared "
                                        "twice", where, i, rt->method, rt->path);
    }
    return INFERD_OK;
}

/* One component (checked against its kind's declaration already) into d. */
static inferd_status take_decl(const kind_key *kk, const inferd_value *item, const char *where,
                               portable_decl *d, inferd_error *err)
{
    comp_decl c = {0};
    inferd_props *p = NULL;
    if (inferd_props_validate(kk->specs, "component", item, &p, err) != INFERD_OK)
        return INFERD_EINVAL; /* checked already */
    inferd_props_bind(p, &c);
    d->kind = kk->kind;
    d->min_args = (int32_t)c.min_args;
    d->max_args = (int32_t)c.max_args;
    d->aggregate = c.aggregate;
    d->name = strdup(c.name);
    d->description = strdup(c.description);
    d->event = dup_or_null(c.event);
    d->broker = dup_or_null(c.broker);
    inferd_status st = INFERD_OK;
    char shown[100];
    if (!d->name || !d->description || (c.event && !d->event) || (c.broker && !d->broker))
        st = pkg_no_memory(err);
    else if (!component_name_valid(c.name, strlen(c.name)))
        st = inferd_error_set(err, INFERD_EINVAL, "%sname '%s' must be 1-64 characters of A-Z, "
                              "a-z, 0-9 and _, not starting with a digit",
                              where, pkg_show_name(c.name, shown, sizeof shown));
    else if (c.event && !ref_name_valid(c.event, strlen(c.event)))
        st = inferd_error_set(err, INFERD_EINVAL, "%sevent '%s' must be 1-128 characters of "
                              "A-Z, a-z, 0-9, _, - and .",
                              where, pkg_show_name(c.event, shown, sizeof shown));
    else if (c.broker && !ref_name_valid(c.broker, strlen(c.broker)))
        st = inferd_error_set(err, INFERD_EINVAL, "%sbroker '%s' must be 1-128 characters of "
                              "A-Z, a-z, 0-9, _, - and .",
                              where, pkg_show_name(c.broker, shown, sizeof shown));
    else if (kk->kind == INFERD_KIND_FUNCTION && c.max_args != -1 && c.max_args < c.min_args)
        st = inferd_error_set(err, INFERD_ERANGE, "%smaxArgs (%lld) must be -1 (any number) or "
                              ">= minArgs (%lld)", where, (long long)c.max_args,
                              (long long)c.min_args);
    if (st == INFERD_OK && inferd_value_array_len(c.props) > 0)
        st = take_props(c.props, where, d, err);
    /* A background without routes is fine: it may only do periodic work. */
    if (st == INFERD_OK && c.routes)
        st = take_routes(c.routes, where, d, err);
    inferd_props_free(p);
    return st;
}

static inferd_status parse_root(const char *name, const inferd_value *given, portable_manifest *m,
                                inferd_error *err)
{
    if (!inferd_value_is(given, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE, "the manifest must be a JSON object, not %s",
                                inferd_value_type_name(inferd_value_type_of(given)));
    inferd_value *root = normalised(given, 0, NULL);
    inferd_props *p = NULL;
    inferd_status st = root ? inferd_props_validate(root_specs, "declaration", root, &p, err)
                            : pkg_no_memory(err);
    if (st != INFERD_OK && st != INFERD_ENOMEM) {
        /* "manifest x.json: declaration: ..." reads as "manifest x.json: ..." */
        const char *at = err ? strstr(err->message, "declaration: ") : NULL;
        if (at && at == err->message)
            memmove(err->message, at + 13, strlen(at + 13) + 1);
        st = inferd_error_recode(err, INFERD_EINVAL);
    }
    root_decl r = {0};
    inferd_props_bind(p, &r);
    char shown[100];
    if (st == INFERD_OK && !r.version[0])
        st = inferd_error_set(err, INFERD_EINVAL, "version may not be empty");
    const char *problem = st == INFERD_OK ? pkg_path_problem(r.executable, strlen(r.executable))
                                          : NULL;
    if (problem)
        st = inferd_error_set(err, INFERD_EINVAL, "executable '%s': %s",
                              pkg_show_name(r.executable, shown, sizeof shown), problem);
    if (st == INFERD_OK && (!(m->name = strdup(name)) || !(m->version = strdup(r.version)) ||
                            !(m->language = strdup(r.language)) ||
                            !(m->executable = strdup(r.executable)) ||
                            !(m->description = strdup(r.description))))
        st = pkg_no_memory(err);
    size_t total = 0;
    for (size_t k = 0; st == INFERD_OK && k < N_KIND_KEYS; k++)
        total += inferd_value_array_len(r.arrays[k]);
    if (st == INFERD_OK && total == 0)
        st = inferd_error_set(err, INFERD_EINVAL,
                              "the package declares no component (functions, sources, sinks, "
                              "events, backgrounds or estimators)");
    if (st == INFERD_OK && !(m->decls = calloc(total, sizeof *m->decls)))
        st = pkg_no_memory(err);
    for (size_t k = 0; st == INFERD_OK && k < N_KIND_KEYS; k++) {
        for (size_t i = 0; st == INFERD_OK && i < inferd_value_array_len(r.arrays[k]); i++) {
            char where[64];
            snprintf(where, sizeof where, "%s[%zu]: ", kind_keys[k].key, i);
            portable_decl *d = &m->decls[m->n_decls++];
            st = take_decl(&kind_keys[k], inferd_value_array_get(r.arrays[k], i), where, d, err);
            /* Unique across kinds: the host's registry names them all. */
            for (size_t j = 0; st == INFERD_OK && j + 1 < m->n_decls; j++)
                if (strcmp(m->decls[j].name, d->name) == 0)
                    st = inferd_error_set(err, INFERD_EEXIST,
                                          "%sname '%s' is declared twice in the package (also "
                                          "as a %s)",
                                          where, d->name,
                                          inferd_component_kind_name(m->decls[j].kind));
        }
    }
    inferd_props_free(p);
    inferd_value_free(root);
    return st;
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
            inferd__push(props, pv, NULL);
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
            inferd__push(routes, rt, NULL);
        }
        inferd__put(o, "routes", routes, NULL);
        break;
    }
    default:
        break;
    }
    return o;
}

/* What a declaration promises its users (its description aside). */
static inferd_value *decl_shape(const portable_decl *d)
{
    inferd_value *o = describe_decl(d);
    inferd_value_object_remove(o, "description", NULL);
    inferd_value *props = (inferd_value *)inferd_value_object_get(o, "props");
    for (size_t i = 0; i < inferd_value_array_len(props); i++)
        inferd_value_object_remove((inferd_value *)inferd_value_array_get(props, i),
                                   "description", NULL);
    return o;
}

bool portable_manifest_same_decls(const portable_manifest *a, const portable_manifest *b,
                                  char *why, size_t cap)
{
    for (size_t i = 0; i < a->n_decls; i++) {
        const portable_decl *da = &a->decls[i], *db = NULL;
        for (size_t j = 0; j < b->n_decls && !db; j++)
            if (strcmp(b->decls[j].name, da->name) == 0)
                db = &b->decls[j];
        if (!db) {
            snprintf(why, cap, "%s %s is gone", inferd_component_kind_name(da->kind), da->name);
            return false;
        }
        inferd_value *sa = decl_shape(da), *sb = decl_shape(db);
        bool same = da->kind == db->kind && sa && sb && inferd_value_equal(sa, sb);
        inferd_value_free(sa);
        inferd_value_free(sb);
        if (!same) {
            snprintf(why, cap, "%s %s is declared otherwise (its kind, arguments, properties, "
                     "routes, event or estimator)", inferd_component_kind_name(da->kind),
                     da->name);
            return false;
        }
    }
    for (size_t j = 0; j < b->n_decls; j++) {
        bool known = false;
        for (size_t i = 0; i < a->n_decls && !known; i++)
            known = strcmp(a->decls[i].name, b->decls[j].name) == 0;
        if (!known) {
            snprintf(why, cap, "%s %s is new", inferd_component_kind_name(b->decls[j].kind),
                     b->decls[j].name);
            return false;
        }
    }
    return true;
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
                inferd__push(arr, describe_decl(&m->decls[i]), NULL);
        inferd__put(o, kind_keys[k].key, arr, NULL);
    }
    return o;
}
