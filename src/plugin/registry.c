/* plugin/registry.c: loading plugins, checking descriptors, the component
 * registry, activation and unloading.
 *
 * Owns every loaded plugin (its dlopen handle and a copy of its path) and the
 * index of components by name. Components and descriptors themselves live in
 * the plugins' memory and are borrowed until the plugin is unloaded. A plugin
 * is unloaded only when none of its instances is alive (live_instances).
 * May call core; never calls the service layer.
 */
#include "plugin/internal.h"

#include <ctype.h>
#include <stddef.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "inferd/log.h"

#define LOG "plugin"

const char *inferd_component_kind_name(inferd_component_kind kind)
{
    switch (kind) {
    case INFERD_KIND_ELEMENT: return "element";
    case INFERD_KIND_ESTIMATOR: return "estimator";
    case INFERD_KIND_EVENT: return "event";
    case INFERD_KIND_BACKGROUND: return "background";
    case INFERD_KIND_FUNCTION: return "function";
    case INFERD_KIND_SOURCE: return "source";
    case INFERD_KIND_SINK: return "sink";
    case INFERD_KIND_BACKEND: return "backend";
    case INFERD_KIND_INVALID: break;
    }
    return "invalid";
}

/* The smallest ops size this host accepts per kind (the v1.0 structs). */
static size_t ops_min_size(inferd_component_kind kind)
{
    switch (kind) {
    case INFERD_KIND_ELEMENT: return sizeof(inferd_element_ops);
    case INFERD_KIND_ESTIMATOR: return sizeof(inferd_estimator_ops);
    case INFERD_KIND_EVENT: return sizeof(inferd_event_ops);
    case INFERD_KIND_BACKGROUND: return sizeof(inferd_background_ops);
    case INFERD_KIND_FUNCTION: return sizeof(inferd_function_ops);
    case INFERD_KIND_SOURCE: return sizeof(inferd_source_ops);
    case INFERD_KIND_SINK: return sizeof(inferd_sink_ops);
    case INFERD_KIND_BACKEND: return offsetof(inferd_backend_ops, load); /* 1.0: init, deinit */
    case INFERD_KIND_INVALID: break;
    }
    return 0;
}

int inferd_port_format_valid(const char *f)
{
    if (!f)
        return 0;
    if (strcmp(f, "ANY") == 0)
        return 1;
    int levels = 0;
    const char *p = f;
    for (;;) {
        if (!isalpha((unsigned char)*p))
            return 0;
        while (isalnum((unsigned char)*p) || (*p && strchr("_-.+", *p)))
            p++;
        levels++;
        if (*p == '\0')
            return levels == 2;
        if (*p != '/' || levels == 2)
            return 0;
        p++;
    }
}

const inferd_component *inferd_plugin_component(const inferd_plugin *desc, size_t i)
{
    /* The array's stride is the plugin's struct size, which may be larger than ours. */
    if (!desc || !desc->components || i >= desc->n_components)
        return NULL;
    size_t stride = desc->components[0].size;
    return (const inferd_component *)((const char *)desc->components + i * stride);
}

static const inferd_prop_spec common_props[] = {
    INFERD_PROP_INT("status", "0: asynchronous (process when any input has data), "
                              "1: synchronous (when every input has the same frame)", 0, 0, 1),
    INFERD_PROP_INT("deviceId", "the device the element runs on (-1: the stream's deviceId)", -1,
                    -1, 1024),
    INFERD_PROP_STRING("dataSource", "the upstream element whose metadata this element reads "
                                     "(auto: the element linked to its input)", "auto"),
    INFERD_PROP_END,
};

const inferd_prop_spec *inferd_element_common_props(void) { return common_props; }

inferd_status inferd_registry_new(inferd_registry **out, inferd_error *err)
{
    inferd_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->models_lock, NULL);
    *out = reg;
    return INFERD_OK;
}

static void plugin_entry_free(plugin_entry *p)
{
    if (p->handle)
        dlclose(p->handle);
    free(p->retired_name);
    free(p->retired_version);
    free(p->path);
    free(p);
}

void inferd_registry_free(inferd_registry *reg)
{
    if (!reg)
        return;
    inferd__models_shutdown(reg);
    for (size_t i = reg->n_plugins; i-- > 0;) {
        plugin_entry *p = reg->plugins[i];
        if (p->live_instances > 0) {
            /* Unmapping code that instances still point into would crash
             * them later: keep it mapped and say so. */
            inferd_log_error(LOG, "plugin %s still has %u live instance(s) at shutdown; "
                                  "leaving it loaded", p->info.name, p->live_instances);
            p->handle = NULL;
        }
        plugin_entry_free(p);
    }
    free(reg->plugins);
    while (reg->retired) {
        plugin_entry *p = reg->retired;
        reg->retired = p->retired_next;
        plugin_entry_free(p);
    }
    pthread_mutex_destroy(&reg->models_lock);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* Finds a component by name; caller holds the lock. */
static const inferd_component *find_locked(const inferd_registry *reg, const char *name,
                                           plugin_entry **owner)
{
    for (size_t i = 0; i < reg->n_plugins; i++) {
        const inferd_plugin *d = reg->plugins[i]->info.descriptor;
        for (size_t c = 0; c < d->n_components; c++) {
            const inferd_component *comp = inferd_plugin_component(d, c);
            if (strcmp(comp->name, name) == 0) {
                if (owner)
                    *owner = reg->plugins[i];
                return comp;
            }
        }
    }
    return NULL;
}

static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_-.", *s))
            return false;
    return true;
}

static inferd_status check_ports(const inferd_port_spec *ports, const char *what,
                                 const char *where, inferd_error *err)
{
    for (size_t i = 0; ports && ports[i].formats; i++) {
        if (!ports[i].formats[0])
            return inferd_error_set(err, INFERD_EINVAL, "%s: %s port %zu lists no format", where,
                                    what, i);
        for (size_t f = 0; ports[i].formats[f]; f++)
            if (!inferd_port_format_valid(ports[i].formats[f]))
                return inferd_error_set(err, INFERD_EINVAL,
                                        "%s: %s port %zu: format '%s' is not ANY or "
                                        "level1/level2 (letters, digits, _-.+)",
                                        where, what, i, ports[i].formats[f]);
        if (ports[i].dynamic > INFERD_PORT_DYNAMIC_KIND)
            return inferd_error_set(err, INFERD_EINVAL, "%s: %s port %zu: bad port kind %u",
                                    where, what, i, ports[i].dynamic);
    }
    return INFERD_OK;
}

void inferd__plugin_count_error(const inferd_plugin_info *info)
{
    /* info is the first member of its plugin_entry */
    atomic_fetch_add(&((plugin_entry *)(void *)info)->errors, 1);
}

uint64_t inferd_registry_plugin_errors(const inferd_plugin_info *info)
{
    return atomic_load(&((const plugin_entry *)(const void *)info)->errors);
}

const inferd_prop_spec *inferd_component_request_options(const inferd_component *c)
{
    return c->size >= offsetof(inferd_component, request_options) + sizeof c->request_options
               ? c->request_options
               : NULL;
}

/* The callbacks a kind cannot do without. */
static const char *missing_callback(const inferd_component *c)
{
    switch (c->kind) {
    case INFERD_KIND_ELEMENT:
        return ((const inferd_element_ops *)c->ops)->process ? NULL : "process";
    case INFERD_KIND_ESTIMATOR:
        return ((const inferd_estimator_ops *)c->ops)->estimate_batch ? NULL : "estimate_batch";
    case INFERD_KIND_EVENT:
        return ((const inferd_event_ops *)c->ops)->handle ? NULL : "handle";
    case INFERD_KIND_BACKGROUND:
        return ((const inferd_background_ops *)c->ops)->start ? NULL : "start";
    case INFERD_KIND_FUNCTION:
        return ((const inferd_function_ops *)c->ops)->exec ? NULL : "exec";
    case INFERD_KIND_SOURCE: {
        const inferd_source_ops *o = c->ops;
        return !o->start ? "start" : !o->stop ? "stop" : NULL;
    }
    case INFERD_KIND_SINK:
        return ((const inferd_sink_ops *)c->ops)->collect ? NULL : "collect";
    case INFERD_KIND_BACKEND: {
        /* A 1.0 backend has no model calls (the model code refuses it); from
         * 1.1 on, a backend must be able to load and run. */
        const inferd_backend_ops *o = c->ops;
        if (o->size < sizeof(inferd_backend_ops))
            return NULL;
        return !o->load ? "load" : !o->unload ? "unload" : !o->io_count ? "io_count"
             : !o->io_info ? "io_info" : !o->run ? "run" : NULL;
    }
    case INFERD_KIND_INVALID: break;
    }
    return "ops";
}

static inferd_status check_component(const inferd_component *c, size_t index, const char *plugin,
                                     inferd_error *err)
{
    char where[256];
    snprintf(where, sizeof where, "plugin %s: component #%zu", plugin, index);
    if (c->size < INFERD_COMPONENT_SIZE_1_0)
        return inferd_error_set(err, INFERD_EINVAL, "%s: struct size %u is smaller than ABI 1.0's %zu",
                                where, c->size, (size_t)INFERD_COMPONENT_SIZE_1_0);
    if (!c->name || !*c->name)
        return inferd_error_set(err, INFERD_EINVAL, "%s has no name", where);
    if (!valid_name(c->name))
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: name '%s' must be 1..128 letters, digits, '_', '-' or '.'",
                                where, c->name);
    snprintf(where, sizeof where, "plugin %s: component %s", plugin, c->name);
    if (ops_min_size(c->kind) == 0)
        return inferd_error_set(err, INFERD_EINVAL, "%s: unknown kind %d", where, (int)c->kind);
    if (!c->ops)
        return inferd_error_set(err, INFERD_EINVAL, "%s: no %s ops", where,
                                inferd_component_kind_name(c->kind));
    uint32_t ops_size = *(const uint32_t *)c->ops;
    if (ops_size < ops_min_size(c->kind))
        return inferd_error_set(err, INFERD_EINVAL, "%s: %s ops size %u is smaller than ABI 1.0's %zu",
                                where, inferd_component_kind_name(c->kind), ops_size,
                                ops_min_size(c->kind));
    const char *missing = missing_callback(c);
    if (missing)
        return inferd_error_set(err, INFERD_EINVAL, "%s: the %s callback is missing (NULL)", where,
                                missing);
    inferd_status st = inferd_prop_specs_check(c->props, where, err);
    if (st != INFERD_OK)
        return st;
    if (c->kind == INFERD_KIND_ELEMENT) {
        for (size_t i = 0; c->props && c->props[i].name; i++)
            for (size_t k = 0; common_props[k].name; k++)
                if (strcmp(c->props[i].name, common_props[k].name) == 0)
                    return inferd_error_set(err, INFERD_EINVAL,
                                            "%s: property '%s' is reserved: every element has it",
                                            where, c->props[i].name);
        if ((st = check_ports(c->inputs, "input", where, err)) != INFERD_OK ||
            (st = check_ports(c->outputs, "output", where, err)) != INFERD_OK)
            return st;
    }
    bool family = c->flags & INFERD_COMPONENT_FAMILY;
    if (c->kind == INFERD_KIND_ESTIMATOR && !family && !valid_name(c->broker_name))
        return inferd_error_set(err, INFERD_EINVAL, "%s: an estimator needs a broker name (or "
                                "the family flag)", where);
    if (family && (c->kind != INFERD_KIND_ESTIMATOR || c->broker_name))
        return inferd_error_set(err, INFERD_EINVAL, "%s: a family is an estimator without a "
                                "broker name", where);
    if (c->kind == INFERD_KIND_ESTIMATOR) {
        char opt_where[300];
        snprintf(opt_where, sizeof opt_where, "%s: request options", where);
        if ((st = inferd_prop_specs_check(inferd_component_request_options(c), opt_where, err)))
            return st;
    }
    if (c->kind == INFERD_KIND_EVENT && !valid_name(c->event_name))
        return inferd_error_set(err, INFERD_EINVAL, "%s: an event component needs an event name",
                                where);
    if (c->kind == INFERD_KIND_FUNCTION &&
        (c->min_args < 0 || (c->max_args != -1 && c->max_args < c->min_args)))
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: arity %d..%d is not valid (min >= 0, max >= min or -1)",
                                where, c->min_args, c->max_args);
    for (size_t r = 0; c->routes && c->routes[r].method; r++) {
        const inferd_route_spec *rt = &c->routes[r];
        if (!rt->path || rt->path[0] != '/' || !rt->handler)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%s: route %zu needs a path starting with '/' and a handler",
                                    where, r);
    }
    return INFERD_OK;
}

/* Checks a descriptor completely; registers nothing. */
static inferd_status check_descriptor(const inferd_registry *reg, const inferd_plugin *d,
                                      const char *origin, inferd_error *err)
{
    if (!d)
        return inferd_error_set(err, INFERD_EINVAL, "%s: the entry point returned no descriptor",
                                origin);
    if (d->magic != INFERD_PLUGIN_MAGIC)
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: bad magic 0x%08x (want 0x%08x): not an inferd plugin "
                                "descriptor", origin, d->magic, INFERD_PLUGIN_MAGIC);
    if (d->abi_major != INFERD_ABI_MAJOR)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "%s was built for plugin ABI %u.%u, but this inferd speaks ABI "
                                "%d.%d: rebuild the plugin against this inferd's headers",
                                origin, d->abi_major, d->abi_minor, INFERD_ABI_MAJOR,
                                INFERD_ABI_MINOR);
    if (d->abi_minor > INFERD_ABI_MINOR)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "%s needs plugin ABI %u.%u, newer than this inferd's %d.%d: "
                                "upgrade inferd (or rebuild the plugin against these headers)",
                                origin, d->abi_major, d->abi_minor, INFERD_ABI_MAJOR,
                                INFERD_ABI_MINOR);
    if (d->size < sizeof(inferd_plugin))
        return inferd_error_set(err, INFERD_EINVAL, "%s: descriptor size %u is smaller than %zu",
                                origin, d->size, sizeof(inferd_plugin));
    if (!d->name || !*d->name)
        return inferd_error_set(err, INFERD_EINVAL, "%s: the descriptor has no plugin name", origin);
    if (!valid_name(d->name))
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: plugin name '%s' must be letters, digits, '_', '-' or '.'",
                                origin, d->name);
    if (!d->version || !*d->version)
        return inferd_error_set(err, INFERD_EINVAL, "%s: plugin %s has no version", origin, d->name);
    if (!d->components || d->n_components == 0)
        return inferd_error_set(err, INFERD_EINVAL, "%s: plugin %s declares no component", origin,
                                d->name);
    for (size_t i = 0; i < reg->n_plugins; i++)
        if (strcmp(reg->plugins[i]->info.name, d->name) == 0)
            return inferd_error_set(err, INFERD_EEXIST,
                                    "%s: a plugin named %s is already loaded from %s", origin,
                                    d->name, reg->plugins[i]->info.path);
    for (size_t i = 0; i < d->n_components; i++) {
        const inferd_component *c = inferd_plugin_component(d, i);
        inferd_status st = check_component(c, i, d->name, err);
        if (st != INFERD_OK) {
            inferd_error_prefix(err, "%s", origin);
            return st;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(inferd_plugin_component(d, j)->name, c->name) == 0)
                return inferd_error_set(err, INFERD_EEXIST,
                                        "%s: plugin %s declares component %s twice", origin,
                                        d->name, c->name);
        plugin_entry *other = NULL;
        if (find_locked(reg, c->name, &other))
            return inferd_error_set(err, INFERD_EEXIST,
                                    "component %s of plugin %s (%s) is already registered by "
                                    "plugin %s (%s): the same component cannot be registered twice",
                                    c->name, d->name, origin, other->info.name, other->info.path);
    }
    return INFERD_OK;
}

static inferd_status register_entry(inferd_registry *reg, plugin_entry *p, inferd_error *err)
{
    if (reg->n_plugins == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        plugin_entry **grown = realloc(reg->plugins, cap * sizeof *grown);
        if (!grown)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        reg->plugins = grown;
        reg->cap = cap;
    }
    reg->plugins[reg->n_plugins++] = p;
    return INFERD_OK;
}

static inferd_status add_entry(inferd_registry *reg, const inferd_plugin *d, const char *path,
                               void *handle, inferd_error *err)
{
    pthread_mutex_lock(&reg->lock);
    inferd_status st = check_descriptor(reg, d, path, err);
    plugin_entry *p = NULL;
    if (st == INFERD_OK) {
        p = calloc(1, sizeof *p);
        if (!p || !(p->path = strdup(path))) {
            free(p);
            p = NULL;
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
    }
    if (st == INFERD_OK) {
        p->handle = handle;
        p->info = (inferd_plugin_info){.name = d->name, .version = d->version, .path = p->path,
                                       .descriptor = d, .abi_major = d->abi_major,
                                       .abi_minor = d->abi_minor};
        st = register_entry(reg, p, err);
        if (st != INFERD_OK) {
            p->handle = NULL; /* the caller closes it */
            plugin_entry_free(p);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    /* What inferd ships loads every time: only a user's plugins are news. */
    if (st == INFERD_OK)
        inferd_log(strncmp(path, inferd_builtin_dir(), strlen(inferd_builtin_dir())) == 0
                       ? INFERD_LOG_DEBUG
                       : INFERD_LOG_INFO,
                   LOG, "loaded plugin %s %s (%zu component%s) from %s", d->name, d->version,
                   d->n_components, d->n_components == 1 ? "" : "s", path);
    return st;
}

inferd_status inferd_registry_add(inferd_registry *reg, const inferd_plugin *desc,
                                  const char *origin, inferd_error *err)
{
    return add_entry(reg, desc, origin ? origin : "(built in)", NULL, err);
}

/* Turns dlerror()'s text into what a plugin's user needs to hear. */
static inferd_status explain_dlopen(const char *path, const char *why, inferd_error *err)
{
    const char *cannot = strstr(why, ": cannot open shared object file");
    if (cannot) {
        /* "<lib>: cannot open shared object file: ..." where <lib> follows the path's ": " */
        const char *lib = why;
        size_t plen = strlen(path);
        if (strncmp(why, path, plen) == 0 && why[plen] == ':' && why[plen + 1] == ' ')
            lib = why + plen + 2;
        if (lib != cannot && strncmp(lib, path, (size_t)(cannot - lib)) != 0)
            return inferd_error_set(err, INFERD_ENOTFOUND,
                                    "plugin %s needs the library %.*s, which is not installed or "
                                    "not on the library path (dlopen: %s)",
                                    path, (int)(cannot - lib), lib, why);
    }
    const char *undef = strstr(why, "undefined symbol: ");
    if (undef)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "plugin %s uses the symbol %s, which neither inferd nor the "
                                "plugin's libraries provide (plugins call inferd only through "
                                "the host table of inferd/plugin.h)",
                                path, undef + strlen("undefined symbol: "));
    return inferd_error_set(err, INFERD_EIO, "cannot load plugin %s: %s", path, why);
}

inferd_status inferd_registry_load_file(inferd_registry *reg, const char *path, inferd_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return inferd_error_set(err, INFERD_ENOTFOUND, "plugin file %s does not exist", path);
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return explain_dlopen(path, why ? why : "unknown error", err);
    }
    inferd_plugin_entry_fn entry;
    *(void **)&entry = dlsym(handle, INFERD_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(handle);
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s is not an inferd plugin: it exports no %s symbol (declare "
                                "the plugin with INFERD_PLUGIN from inferd/plugin.h)",
                                path, INFERD_PLUGIN_ENTRY_SYMBOL);
    }
    const inferd_plugin *d = entry(inferd_host_api_get());
    inferd_status st = add_entry(reg, d, path, handle, err);
    if (st != INFERD_OK)
        dlclose(handle);
    return st;
}

bool inferd_registry_plugin_file(const char *dir, const char *name, char *path, size_t size)
{
    struct stat sb;
    size_t n = strlen(name);
    bool has_so = n > 3 && strcmp(name + n - 3, ".so") == 0;
    int stem = (int)(has_so ? n - 3 : n);
    snprintf(path, size, "%s/%.*s.so", dir, stem, name);
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        return true;
    snprintf(path, size, "%s/%.*s/%.*s.so", dir, stem, name, stem, name);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Lists the plugin files of dir into buf, for "not found" messages. */
static void list_dir(const char *dir, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(buf, size, "the folder cannot be read");
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) && pos + 1 < size) {
        size_t n = strlen(e->d_name);
        if (n > 3 && strcmp(e->d_name + n - 3, ".so") == 0)
            pos += (size_t)snprintf(buf + pos, size - pos, "%s%.*s", pos ? ", " : "",
                                    (int)(n - 3), e->d_name);
    }
    closedir(d);
    if (pos == 0)
        snprintf(buf, size, "no plugin files");
}

inferd_status inferd_registry_activate(inferd_registry *reg, const char *dir,
                                       const char *const *active, size_t n_active,
                                       inferd_error *err)
{
    for (size_t i = 0; i < n_active; i++) {
        char path[4096];
        if (!active[i] || !*active[i] || strchr(active[i], '/')) {
            return inferd_error_set(err, INFERD_EINVAL,
                                    "active plugin name '%s' must be a plain file name",
                                    active[i] ? active[i] : "");
        }
        if (!inferd_registry_plugin_file(dir, active[i], path, sizeof path)) {
            char have[512];
            list_dir(dir, have, sizeof have);
            return inferd_error_set(err, INFERD_ENOTFOUND,
                                    "active plugin '%s' is not in the plugin folder %s (it has: %s)",
                                    active[i], dir, have);
        }
        inferd_status st = inferd_registry_load_file(reg, path, err);
        if (st != INFERD_OK) {
            inferd_error_prefix(err, "activating '%s'", active[i]);
            return st;
        }
    }
    return INFERD_OK;
}

inferd_status inferd_registry_unload(inferd_registry *reg, const char *name, inferd_error *err)
{
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->n_plugins; i++) {
        plugin_entry *p = reg->plugins[i];
        if (strcmp(p->info.name, name) != 0)
            continue;
        if (p->live_instances > 0) {
            unsigned n = p->live_instances;
            char users[256] = "";
            size_t len = 0;
            for (const inferd_instance *in = reg->live; in && len < sizeof users; in = in->live_next)
                if (in->plugin == p)
                    len += (size_t)snprintf(users + len, sizeof users - len, "%s%s",
                                            len ? ", " : "", in->name);
            pthread_mutex_unlock(&reg->lock);
            return inferd_error_set(err, INFERD_EBUSY,
                                    "plugin %s is in use by %u instance%s (%s): stop what uses "
                                    "them first (a pipeline, a rule)", name, n, n == 1 ? "" : "s",
                                    users);
        }
        char *rn = strdup(p->info.name), *rv = strdup(p->info.version ? p->info.version : "");
        if (!rn || !rv) {
            pthread_mutex_unlock(&reg->lock);
            free(rn);
            free(rv);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        memmove(&reg->plugins[i], &reg->plugins[i + 1],
                (reg->n_plugins - i - 1) * sizeof reg->plugins[0]);
        reg->n_plugins--;
        /* Retired, not freed (see struct inferd_registry): its names are
         * its own now, as the descriptor of a portable plugin goes. */
        p->retired_name = rn;
        p->retired_version = rv;
        p->info.name = rn;
        p->info.version = rv;
        p->retired_next = reg->retired;
        reg->retired = p;
        pthread_mutex_unlock(&reg->lock);
        inferd_log_info(LOG, "unloaded plugin %s", name);
        return INFERD_OK;
    }
    pthread_mutex_unlock(&reg->lock);
    return inferd_error_set(err, INFERD_ENOTFOUND, "no plugin named %s is loaded", name);
}

inferd_status inferd_registry_unload_wait(inferd_registry *reg, const char *name,
                                          uint64_t timeout_ms, inferd_error *err)
{
    /* What a plugin's last users let go of goes soon (an estimator's last
     * batch, an event subscriber's drain): a short poll, bounded. */
    for (uint64_t waited = 0;; waited += 5) {
        inferd_status st = inferd_registry_unload(reg, name, err);
        if (st != INFERD_EBUSY || waited >= timeout_ms)
            return st;
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    }
}

void inferd_registry_set_plugin_version(inferd_registry *reg, const char *name, const char *version)
{
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->n_plugins; i++)
        if (strcmp(reg->plugins[i]->info.name, name) == 0)
            reg->plugins[i]->info.version = version;
    pthread_mutex_unlock(&reg->lock);
}

size_t inferd_registry_plugin_count(const inferd_registry *reg) { return reg->n_plugins; }

const inferd_plugin_info *inferd_registry_plugin_at(const inferd_registry *reg, size_t i)
{
    return i < reg->n_plugins ? &reg->plugins[i]->info : NULL;
}

const inferd_plugin_info *inferd_registry_find_plugin(const inferd_registry *reg, const char *name)
{
    for (size_t i = 0; name && i < reg->n_plugins; i++)
        if (strcmp(reg->plugins[i]->info.name, name) == 0)
            return &reg->plugins[i]->info;
    return NULL;
}

const inferd_component *inferd_registry_find(const inferd_registry *reg, const char *name,
                                             const inferd_plugin_info **plugin)
{
    if (!name)
        return NULL;
    inferd_registry *r = (inferd_registry *)reg; /* the lock is not part of the value */
    pthread_mutex_lock(&r->lock);
    plugin_entry *owner = NULL;
    const inferd_component *c = find_locked(reg, name, &owner);
    pthread_mutex_unlock(&r->lock);
    if (c && plugin)
        *plugin = &owner->info;
    return c;
}

plugin_entry *inferd__registry_owner(inferd_registry *reg, const inferd_component *comp)
{
    for (size_t i = 0; i < reg->n_plugins; i++) {
        const inferd_plugin *d = reg->plugins[i]->info.descriptor;
        for (size_t c = 0; c < d->n_components; c++)
            if (inferd_plugin_component(d, c) == comp)
                return reg->plugins[i];
    }
    return NULL;
}
