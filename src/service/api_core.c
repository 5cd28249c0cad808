/* service/api_core.c: the service's own routes: /health, /ready,
 * /version, /metrics, and the seeds' stream engine's / and /ping. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "inferd/version.h"
#include "core/clock.h"
#include "service/health.h"
#include "service/service.h"

static void health(svc_request *r)
{
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, "status", "ok", &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

/* 200 when everything health.required names is up; else 503 with each
 * reason (a load balancer takes the daemon out meanwhile). */
static void ready(svc_request *r)
{
    inferd_value *reasons = svc_not_ready(svc_of(r));
    if (!reasons) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    bool ok = true;
    inferd_value *b = inferd_value_object();
    size_t n = inferd_value_array_len(reasons);
    if (n == 0) {
        inferd_value_free(reasons);
        inferd__put_str(b, "status", "ready", &ok);
        svc_reply_built(r, MHD_HTTP_OK, b, ok);
        return;
    }
    /* The error's usual shape, and every reason. */
    inferd_value *err = inferd_value_object();
    char msg[600];
    snprintf(msg, sizeof msg, "%.500s%s", inferd_value_string_or(inferd_value_array_get(reasons, 0), ""),
             n > 1 ? " (and more: see reasons)" : "");
    inferd__put_str(err, "code", "not_ready", &ok);
    inferd__put_str(err, "message", msg, &ok);
    inferd__put(b, "error", err, &ok);
    inferd__put(b, "reasons", reasons, &ok);
    svc_reply_built(r, MHD_HTTP_SERVICE_UNAVAILABLE, b, ok);
}

static void version(svc_request *r)
{
    svc *s = svc_of(r);
    uint64_t now_ms = inferd__now_ms();
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, "name", "inferd", &ok);
    inferd__put_str(b, "version", inferd_version(), &ok);
    char abi[16];
    snprintf(abi, sizeof abi, "%d.%d", INFERD_ABI_MAJOR, INFERD_ABI_MINOR);
    inferd__put_str(b, "plugin_abi", abi, &ok);
    inferd__put(b, "uptime_s", inferd_value_int((int64_t)((now_ms - s->started_ms) / 1000u)), &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

/* GET /: the seeds' stream engine's "getting information" (version, os,
 * arch, upTimeSeconds), for its clients and dashboards. */
static void root(svc_request *r)
{
    struct utsname u;
    bool ok = true, named = uname(&u) == 0;
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, "version", inferd_version(), &ok);
    inferd__put_str(b, "os", named ? u.sysname : "unknown", &ok);
    inferd__put_str(b, "arch", named ? u.machine : "unknown", &ok);
    inferd__put(b, "upTimeSeconds",
                inferd_value_int((int64_t)((inferd__now_ms() - svc_of(r)->started_ms) / 1000u)),
                &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

/* GET /ping: 200 and nothing else, as the seeds' stream engine answers. */
static void ping(svc_request *r) { svc_reply_bytes(r, MHD_HTTP_OK, "text/plain", NULL, 0); }

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
    {"GET", "/", root, 0},
    {"GET", "/ping", ping, 0},
    {NULL, NULL, NULL, 0},
};
