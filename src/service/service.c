/* service/service.c: the service's life: what starts in which order, and
 * what stops in which order.
 *
 * Start: metrics, the named estimators (their models load here), the KServe
 * models, the background and event components (created, not started), the
 * HTTP server, then the background components' start, then ready. Stop: not
 * ready; stop accepting and let in-flight requests finish (deadline); fail
 * what is still queued; close the server; close the background components
 * (after the last request that could reach their routes). Owns everything
 * in struct svc except the config and the registry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/log.h"
#include "core/clock.h"
#include "portable/portables.h"
#include "rules/rules.h"
#include "service/health.h"
#include "service/http.h"
#include "service/service.h"

#define LOG "serve"

uint16_t svc_port(const svc *s) { return inferd_http_port(s->http); }

bool svc_tls(const svc *s) { return inferd_http_is_tls(s->http); }

/* The keys svc_reconfigure applies; log.* apply in the CLI. */
static const char *const live_keys[] = {
    "http.max_body_bytes", "http.max_json_depth", "http.max_images", "image.max_pixels",
    "image.max_request_pixels", "image.max_inflight_pixels", "http.token", "http.token_loopback",
    NULL};

bool svc_key_is_live(const char *key)
{
    if (strncmp(key, "log.", 4) == 0)
        return true;
    for (size_t i = 0; live_keys[i]; i++)
        if (strcmp(live_keys[i], key) == 0)
            return true;
    return false;
}

static void set_live(svc *s, const inferd_config *cfg)
{
    s->max_body = (uint64_t)inferd_config_int(cfg, "http.max_body_bytes");
    s->max_json_depth = (size_t)inferd_config_int(cfg, "http.max_json_depth");
    s->max_images = (size_t)inferd_config_int(cfg, "http.max_images");
    s->max_pixels = (uint64_t)inferd_config_int(cfg, "image.max_pixels");
    s->max_request_pixels = (uint64_t)inferd_config_int(cfg, "image.max_request_pixels");
    s->max_inflight_pixels = (uint64_t)inferd_config_int(cfg, "image.max_inflight_pixels");
    char *token = strdup(inferd_config_string(cfg, "http.token"));
    pthread_mutex_lock(&s->live_mu);
    if (token) { /* out of memory keeps the one there was */
        free(s->token);
        s->token = token;
    }
    s->token_loopback = inferd_config_bool(cfg, "http.token_loopback");
    pthread_mutex_unlock(&s->live_mu);
}

void svc_reconfigure(svc *s, const inferd_config *fresh, inferd_value *restart)
{
    set_live(s, fresh);
    const inferd_prop_spec *keys = inferd_config_keys();
    for (size_t i = 0; restart && keys[i].name; i++) {
        const inferd_value *a = NULL, *b = NULL;
        inferd_config_get(s->cfg, keys[i].name, &a, NULL);
        inferd_config_get(fresh, keys[i].name, &b, NULL);
        if (!svc_key_is_live(keys[i].name) && !inferd_value_equal(a, b))
            inferd__push(restart, inferd_value_string(keys[i].name), NULL);
    }
}

static void svc_free(svc *s)
{
    if (!s)
        return;
    inferd_http_stop(s->http);
    s->http = NULL;
    svc_workers_free(s->workers); /* its handlers use everything below */
    s->workers = NULL;
    rules_engine_free(s->rules); /* before the estimators and functions its rules call */
    s->rules = NULL;
    svc_pipelines_free(s->pipelines); /* its elements may use the plugins below */
    s->pipelines = NULL;
    inferd_estimators_free(s->est);
    svc_kserve_free(s->kserve);
    if (s->background) {
        svc_background_stop(s->background);
        svc_background_free(s->background);
    }
    svc_functions_free();
    svc_metrics_free(s->metrics);
    svc_plugins_fini(s);
    free(s->token);
    pthread_mutex_destroy(&s->live_mu);
    free(s);
}

inferd_status svc_start(const inferd_config *cfg, inferd_registry *reg,
                        struct inferd_portables *portables, svc **out, bool *bad_config,
                        inferd_error *err)
{
    *bad_config = false;
    svc *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->started_ms = inferd__now_ms();
    s->cfg = cfg;
    s->reg = reg;
    s->portables = portables;
    svc_plugins_init(s);
    pthread_mutex_init(&s->live_mu, NULL);
    set_live(s, cfg);
    inferd_status st = s->token ? svc_metrics_new(&s->metrics) : INFERD_ENOMEM;
    if (st == INFERD_OK)
        st = svc_workers_new((size_t)inferd_config_int(cfg, "http.workers"),
                             (size_t)inferd_config_int(cfg, "http.worker_queue"), &s->workers,
                             err);
    if (st != INFERD_OK)
        st = inferd_error_set(err, st, "out of memory");
    if (st == INFERD_OK && (st = inferd_estimators_new(reg, cfg, &s->est, err)) != INFERD_OK) {
        inferd_error_prefix(err, "estimators");
        *bad_config = st != INFERD_ENOMEM && st != INFERD_EINTERNAL;
    }
    if (st == INFERD_OK && (st = svc_kserve_new(s, &s->kserve, err)) != INFERD_OK) {
        inferd_error_prefix(err, "KServe models");
        *bad_config = st != INFERD_ENOMEM && st != INFERD_EINTERNAL;
    }
    if (st == INFERD_OK)
        st = svc_background_new(s, &s->background, err);
    if (st == INFERD_OK) {
        /* Streams and rules persist next to the portable plugins. */
        char *db = NULL;
        const char *dir = portables ? inferd_portables_state_dir(portables) : NULL;
        if (dir && asprintf(&db, "%s/inferd.db", dir) < 0)
            db = NULL;
        st = rules_engine_open(cfg, reg, s->est, portables, db, &s->rules, err);
        if (st != INFERD_OK)
            inferd_error_prefix(err, "streams and rules");
        /* Pipelines persist in the same database. */
        if (st == INFERD_OK && (st = svc_pipelines_open(s, db, &s->pipelines, err)) != INFERD_OK)
            inferd_error_prefix(err, "pipelines");
        free(db);
    }
    if (st == INFERD_OK && (st = svc_health_check(s, err)) != INFERD_OK)
        *bad_config = true;
    if (st == INFERD_OK)
        st = inferd_http_start(s, &s->http, err);
    if (st == INFERD_OK)
        st = svc_background_start(s->background, err);
    if (st != INFERD_OK) {
        svc_free(s);
        return st;
    }
    s->ready = 1;
    *out = s;
    return INFERD_OK;
}

void svc_stop(svc *s, uint64_t timeout_ms)
{
    if (!s)
        return;
    s->ready = 0;
    /* Results streams last as long as their clients listen: end them, so
     * that the drain waits only for requests. */
    svc_pipelines_close_listeners(s->pipelines);
    inferd_http_drain(s->http, timeout_ms);
    /* The handlers on the pool use the rules and the plugins: done first. */
    svc_workers_free(s->workers);
    s->workers = NULL;
    /* Fail what is still queued, so every suspended request has its reply
     * before the server closes; handlers still find the estimators (they
     * answer 503 "stopping"). */
    rules_engine_free(s->rules); /* its rules call the estimators */
    s->rules = NULL;
    svc_pipelines_free(s->pipelines); /* answers the frames still waiting */
    s->pipelines = NULL;
    inferd_estimators_stop(s->est);
    svc_kserve_stop(s->kserve);
    svc_free(s);
}
