/* service/api_core.c: the service's own routes: /health, /ready,
 * /version, /metrics, and plugin management (/v1/plugins). */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/version.h"
#include "core/clock.h"
#include "service/service.h"

static inferd_value *obj(void) { return inferd_value_object(); }

static void set(inferd_value *o, const char *k, inferd_value *v)
{
    inferd_value_object_set(o, k, v, NULL);
}

static void health(svc_request *r)
{
    inferd_value *b = obj();
    set(b, "status", inferd_value_string("ok"));
    svc_reply_json(r, MHD_HTTP_OK, b);
}

static void ready(svc_request *r)
{
    svc *s = svc_of(r);
    if (!s->ready) {
        svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                        "the service is starting or stopping");
        return;
    }
    inferd_value *b = obj();
    set(b, "status", inferd_value_string("ready"));
    svc_reply_json(r, MHD_HTTP_OK, b);
}

static void version(svc_request *r)
{
    svc *s = svc_of(r);
    uint64_t now_ms = inferd__now_ms();
    inferd_value *b = obj();
    set(b, "name", inferd_value_string("inferd"));
    set(b, "version", inferd_value_string(inferd_version()));
    char abi[16];
    snprintf(abi, sizeof abi, "%d.%d", INFERD_ABI_MAJOR, INFERD_ABI_MINOR);
    set(b, "plugin_abi", inferd_value_string(abi));
    set(b, "uptime_s", inferd_value_int((int64_t)((now_ms - s->started_ms) / 1000u)));
    svc_reply_json(r, MHD_HTTP_OK, b);
}

static void metrics(svc_request *r)
{
    size_t len = 0;
    char *text = svc_metrics_render(svc_of(r), &len);
    if (!text) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    svc_reply_bytes(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

const svc_route svc_core_routes[] = {
    {"GET", "/health", health, 0},
    {"GET", "/ready", ready, 0},
    {"GET", "/version", version, 0},
    {"GET", "/metrics", metrics, 0},
    {NULL, NULL, NULL, 0},
};

/* ---- plugin management ------------------------------------------------------------ */

/* A plugin's description plus what the service made of it: the estimators
 * it serves and its error count. */
static inferd_value *describe(svc *s, const inferd_plugin_info *p, bool full)
{
    inferd_value *d = inferd_describe_plugin(p, full);
    if (!d)
        return NULL;
    set(d, "builtIn", inferd_value_bool(inferd_plugin_is_builtin(p)));
    set(d, "errors", inferd_value_int((int64_t)inferd_registry_plugin_errors(p)));
    inferd_value *served = inferd_value_array();
    for (size_t i = 0; i < inferd_estimators_count(s->est); i++)
        if (inferd_estimators_plugin(s->est, i) == p)
            inferd_value_array_push(served, inferd_value_string(inferd_estimators_name(s->est, i)),
                                    NULL);
    set(d, "estimators", served);
    return d;
}

static void plugins_list(svc_request *r)
{
    svc *s = svc_of(r);
    inferd_value *arr = inferd_value_array();
    for (size_t i = 0; i < inferd_registry_plugin_count(s->reg); i++)
        inferd_value_array_push(arr, describe(s, inferd_registry_plugin_at(s->reg, i), false),
                                NULL);
    inferd_value *b = obj();
    set(b, "plugins", arr);
    svc_reply_json(r, MHD_HTTP_OK, b);
}

static void plugin_get(svc_request *r)
{
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    const inferd_plugin_info *p = inferd_registry_find_plugin(s->reg, name);
    if (!p) {
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                        "no plugin named '%s' is loaded (GET /v1/plugins lists them)", name);
        return;
    }
    svc_reply_json(r, MHD_HTTP_OK, describe(s, p, true));
}

const svc_route svc_plugin_routes[] = {
    {"GET", "/v1/plugins", plugins_list, SVC_ROUTE_MANAGEMENT},
    {"GET", "/v1/plugins/*", plugin_get, SVC_ROUTE_MANAGEMENT},
    {NULL, NULL, NULL, 0},
};
