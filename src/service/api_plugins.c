/* service/api_plugins.c: the plugins of a running daemon. /v1/plugins
 * lists and describes them; POST /v1/plugins/{name}/activate and
 * /deactivate change the set while it serves (a C plugin of plugins.dir,
 * or an installed portable plugin). svc_plugin_attach and
 * svc_plugin_detach are what the service does when a plugin comes or goes,
 * whichever way (these routes, a portable install, removal or upgrade).
 *
 * Every change of the plugin set holds s->plugins_rw for writing, so that
 * a reader of the registry's plugin list (these routes, /metrics) never
 * sees one half made. An activation is not recorded: the next start takes
 * active_plugins again (docs/plugins.md says so). */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"
#include "portable/portables.h"
#include "rules/rules.h"
#include "service/service.h"

#define LOG "plugins"
/* How long a deactivation waits for the last instances of the plugin that
 * the service let go of (an estimator's batch in flight, an event drain). */
#define UNLOAD_WAIT_MS 2000

/* ---- what the service makes of a plugin ------------------------------------------ */

void svc_plugin_publish(const char *event, const char *plugin, const char *version)
{
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "plugin", plugin, &ok);
    inferd__put_str(ev, "version", version ? version : "", &ok);
    svc_publish_built(event, ev, ok);
}

inferd_status svc_plugin_attach(svc *s, const char *name, inferd_error *err)
{
    const inferd_plugin_info *info = inferd_registry_find_plugin(s->reg, name);
    if (!info)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no plugin named %s is loaded", name);
    size_t added = 0, taken = 0;
    inferd_status st = s->background ? svc_background_attach(s->background, name, &added, err)
                                     : INFERD_OK;
    if (st == INFERD_OK && s->est &&
        (st = inferd_estimators_attach(s->est, info, &taken, err)) != INFERD_OK && s->background)
        svc_background_detach(s->background, name);
    if (st != INFERD_OK)
        return st;
    inferd_log_info(LOG, "plugin %s %s is active: %zu background or event component%s, %zu "
                    "estimator name%s taken over", info->name, info->version, added,
                    added == 1 ? "" : "s", taken, taken == 1 ? "" : "s");
    return INFERD_OK;
}

inferd_status svc_plugin_detach(svc *s, const char *name, inferd_error *err)
{
    const inferd_plugin_info *info = inferd_registry_find_plugin(s->reg, name);
    if (!info)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no plugin named %s is loaded", name);
    inferd_status st = s->rules ? rules_plugin_in_use(s->rules, name, err) : INFERD_OK;
    size_t given_back = 0;
    if (st == INFERD_OK && s->est)
        st = inferd_estimators_detach(s->est, s->reg, info, &given_back, err);
    if (st != INFERD_OK)
        return st;
    size_t closed = s->background ? svc_background_detach(s->background, name) : 0;
    svc_functions_forget(name);
    inferd_log_info(LOG, "plugin %s %s let go: %zu background or event component%s closed, %zu "
                    "estimator name%s back to the built-in", info->name, info->version, closed,
                    closed == 1 ? "" : "s", given_back, given_back == 1 ? "" : "s");
    return INFERD_OK;
}

/* The portable plugins' hook: their install, removal and (de)activation. */
static inferd_status portable_hook(void *ctx, const char *plugin, bool active, inferd_error *err)
{
    return active ? svc_plugin_attach(ctx, plugin, err) : svc_plugin_detach(ctx, plugin, err);
}

void svc_plugins_init(svc *s)
{
    pthread_rwlock_init(&s->plugins_rw, NULL);
    if (s->portables)
        inferd_portables_set_hook(s->portables, portable_hook, s);
}

void svc_plugins_fini(svc *s)
{
    if (s->portables)
        inferd_portables_set_hook(s->portables, NULL, NULL);
    pthread_rwlock_destroy(&s->plugins_rw);
}

/* ---- /v1/plugins ---------------------------------------------------------------------- */

/* A plugin's description plus what the service made of it: the estimators
 * it serves and its error count; NULL when it cannot be made whole. */
static inferd_value *describe(svc *s, const inferd_plugin_info *p, bool full)
{
    bool ok = true;
    inferd_value *d = inferd_describe_plugin(p, full), *served = inferd_value_array();
    inferd__put(d, "builtIn", inferd_value_bool(inferd_plugin_is_builtin(p)), &ok);
    inferd__put(d, "errors", inferd_value_int((int64_t)inferd_registry_plugin_errors(p)), &ok);
    for (size_t i = 0; i < inferd_estimators_count(s->est); i++)
        if (inferd_estimators_plugin(s->est, i) == p)
            inferd__push(served, inferd_value_string(inferd_estimators_name(s->est, i)), &ok);
    inferd__put(d, "estimators", served, &ok);
    if (!ok) {
        inferd_value_free(d);
        return NULL;
    }
    return d;
}

static void plugins_list(svc_request *r)
{
    svc *s = svc_of(r);
    bool ok = true;
    inferd_value *arr = inferd_value_array(), *b = inferd_value_object();
    pthread_rwlock_rdlock(&s->plugins_rw);
    for (size_t i = 0; i < inferd_registry_plugin_count(s->reg); i++)
        inferd__push(arr, describe(s, inferd_registry_plugin_at(s->reg, i), false), &ok);
    pthread_rwlock_unlock(&s->plugins_rw);
    inferd__put(b, "plugins", arr, &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

static void reply_described(svc_request *r, unsigned status, const char *name)
{
    svc *s = svc_of(r);
    const inferd_plugin_info *p = inferd_registry_find_plugin(s->reg, name);
    if (!p) {
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                        "no plugin named '%s' is loaded (GET /v1/plugins lists them)", name);
        return;
    }
    inferd_value *d = describe(s, p, true);
    svc_reply_built(r, status, d, d != NULL);
}

static void plugin_get(svc_request *r)
{
    svc *s = svc_of(r);
    pthread_rwlock_rdlock(&s->plugins_rw);
    reply_described(r, MHD_HTTP_OK, svc_param(r, 0));
    pthread_rwlock_unlock(&s->plugins_rw);
}

/* An error of a change, as HTTP: in use or taken is 409. */
static void reply_change_failed(svc_request *r, inferd_status st, const inferd_error *err)
{
    if (st == INFERD_EBUSY || st == INFERD_EEXIST)
        svc_reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err->message);
    else if (st == INFERD_ENOTFOUND)
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s", err->message);
    else if (st == INFERD_ENOMEM || st == INFERD_EINTERNAL)
        svc_reply_status(r, st, err);
    else
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_plugin", "%s", err->message);
}

/* A C plugin of plugins.dir: loaded, then attached; a failing attach
 * unloads it again. */
static inferd_status activate_c(svc *s, const char *name, inferd_error *err)
{
    const char *dir = inferd_config_string(s->cfg, "plugins.dir");
    const char *one[] = {name};
    inferd_status st = inferd_registry_activate(s->reg, dir && *dir ? dir
                                                                    : inferd_default_plugin_dir(),
                                                one, 1, err);
    if (st != INFERD_OK)
        return st;
    /* The registry names a plugin by its descriptor, the folder by its file. */
    const inferd_plugin_info *last =
        inferd_registry_plugin_at(s->reg, inferd_registry_plugin_count(s->reg) - 1);
    st = svc_plugin_attach(s, last->name, err);
    if (st != INFERD_OK) {
        inferd_error e2 = {0};
        inferd_registry_unload_wait(s->reg, last->name, UNLOAD_WAIT_MS, &e2);
        inferd_error_prefix(err, "plugin %s was not activated", last->name);
    }
    return st;
}

static void plugin_activate(svc_request *r)
{
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    inferd_error err = {0};
    inferd_status st = INFERD_OK;
    pthread_rwlock_wrlock(&s->plugins_rw);
    const inferd_plugin_info *have = inferd_registry_find_plugin(s->reg, name);
    if (have)
        st = inferd_error_set(&err, INFERD_EEXIST, "plugin %s is active already (%s)", name,
                              have->path ? have->path : "built in");
    else if (s->portables && inferd_portables_has(s->portables, name))
        st = inferd_portables_set_active(s->portables, name, true, &err);
    else
        st = activate_c(s, name, &err);
    if (st == INFERD_OK) {
        const inferd_plugin_info *p = inferd_registry_find_plugin(s->reg, name);
        if (!p) /* a C plugin whose file and descriptor names differ */
            p = inferd_registry_plugin_at(s->reg, inferd_registry_plugin_count(s->reg) - 1);
        svc_plugin_publish("plugin_activated", p->name, p->version);
        reply_described(r, MHD_HTTP_OK, p->name);
    } else {
        reply_change_failed(r, st, &err);
    }
    pthread_rwlock_unlock(&s->plugins_rw);
}

static void plugin_deactivate(svc_request *r)
{
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    inferd_error err = {0};
    inferd_status st = INFERD_OK;
    pthread_rwlock_wrlock(&s->plugins_rw);
    const inferd_plugin_info *p = inferd_registry_find_plugin(s->reg, name);
    bool portable = s->portables && inferd_portables_has(s->portables, name);
    if (!p && !portable)
        st = inferd_error_set(&err, INFERD_ENOTFOUND, "no plugin named '%s' is active (GET "
                              "/v1/plugins lists them)", name);
    else if (portable)
        st = inferd_portables_set_active(s->portables, name, false, &err);
    else if (inferd_plugin_is_builtin(p))
        st = inferd_error_set(&err, INFERD_EINVAL, "plugin %s is built in: it cannot be "
                              "deactivated (a plugin that replaces its components can be "
                              "activated beside it)", name);
    else if ((st = svc_plugin_detach(s, name, &err)) == INFERD_OK &&
             (st = inferd_registry_unload_wait(s->reg, name, UNLOAD_WAIT_MS, &err)) != INFERD_OK) {
        inferd_error e2 = {0};
        if (svc_plugin_attach(s, name, &e2) != INFERD_OK)
            inferd_log_error(LOG, "plugin %s: %s", name, e2.message);
        inferd_error_prefix(&err, "plugin %s stays active", name);
    }
    if (st == INFERD_OK) {
        svc_plugin_publish("plugin_deactivated", name, NULL);
        bool ok = true;
        inferd_value *b = inferd_value_object();
        inferd__put_str(b, "name", name, &ok);
        inferd__put(b, "active", inferd_value_bool(false), &ok);
        svc_reply_built(r, MHD_HTTP_OK, b, ok);
    } else {
        reply_change_failed(r, st, &err);
    }
    pthread_rwlock_unlock(&s->plugins_rw);
}

const svc_route svc_plugin_routes[] = {
    {"GET", "/v1/plugins", plugins_list, SVC_ROUTE_MANAGEMENT},
    {"GET", "/v1/plugins/*", plugin_get, SVC_ROUTE_MANAGEMENT},
    {"POST", "/v1/plugins/*/activate", plugin_activate, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v1/plugins/*/deactivate", plugin_deactivate,
     SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {NULL, NULL, NULL, 0},
};
