/* service/service.h: what the files of the HTTP service share. Not installed.
 *
 * The service (`inferd serve`) owns the registry, the named estimators, the
 * KServe model list, the event subscribers, the background components and
 * the HTTP server. Requests reach handlers through a route table; a handler
 * replies exactly once, now (svc_reply_*) or later from another thread
 * (svc_suspend, then svc_reply_* from any thread: the connection is resumed
 * and the reply sent; no thread waits meanwhile).
 *
 * Errors always have the body {"error": {"code": "...", "message": "..."}}:
 * svc_reply_error. Codes: bad_request 400, unauthorized 401, not_found 404,
 * method_not_allowed 405, too_large 413, unsupported_media_type 415,
 * not_ready / overloaded 503, internal 500.
 */
#ifndef INFERD_SERVICE_H
#define INFERD_SERVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/registry.h"
#include "core/build_value.h"
#include "inferd/value.h"

typedef struct svc svc;                 /* the service */
typedef struct svc_request svc_request; /* one request (owned by the server) */
typedef struct svc_kserve svc_kserve;   /* kserve.c */
typedef struct svc_workers svc_workers; /* workers.c */
typedef struct svc_background svc_background; /* background.c */
typedef struct svc_metrics svc_metrics; /* metrics.c */
typedef struct svc_pipelines svc_pipelines; /* pipelines.c */

struct svc {
    const inferd_config *cfg;   /* borrowed */
    inferd_registry *reg;       /* borrowed */
    inferd_estimators *est;     /* owned */
    svc_kserve *kserve;         /* owned */
    svc_workers *workers;       /* owned: runs the SVC_ROUTE_WORKER handlers */
    svc_background *background; /* owned */
    svc_metrics *metrics;       /* owned */
    struct inferd_portables *portables; /* borrowed; NULL: no portable plugins */
    struct rules_engine *rules; /* owned: streams and rules */
    svc_pipelines *pipelines;   /* owned: the pipelines it keeps and runs */
    pthread_rwlock_t plugins_rw; /* written by a change of the plugin set (api_plugins.c) */
    struct inferd_http *http;   /* owned */
    uint64_t started_ms;        /* monotonic */
    volatile int ready;         /* 1 between start and stop: /ready answers 200 */
    /* What SIGHUP changes while serving (svc_reconfigure): the limits,
     * read by any thread, and the management token, under live_mu. */
    _Atomic size_t max_json_depth, max_images;
    _Atomic uint64_t max_body, max_pixels;
    _Atomic uint64_t max_request_pixels, max_inflight_pixels;
    pthread_mutex_t live_mu;
    char *token;                /* owned: http.token ("" none) */
    bool token_loopback;        /* http.token_loopback */
    _Atomic uint64_t inflight_pixels; /* decoded pixels of estimation requests in flight */
};

/* ---- a request, as handlers see it ------------------------------------------ */

const char *svc_method(const svc_request *r);
/* The path, without the query. */
const char *svc_path(const svc_request *r);
/* The i-th '*' segment of the route's pattern ("/v2/models/{*}" -> the name). */
const char *svc_param(const svc_request *r, size_t i);
/* A query parameter's decoded value, or NULL. */
const char *svc_query(const svc_request *r, const char *key);
/* Every query parameter: fn(ctx, key, value) (value may be NULL for "?a"). */
void svc_query_each(const svc_request *r, void (*fn)(void *ctx, const char *k, const char *v),
                    void *ctx);
/* A header's value (case-insensitive name), or NULL. */
const char *svc_header(const svc_request *r, const char *name);
/* The whole body (the server reads it all before calling the handler, and
 * has already refused one over http.max_body_bytes with 413). */
const void *svc_body(const svc_request *r, size_t *len);
svc *svc_of(const svc_request *r);
/* The libmicrohttpd connection (for its post processor). */
struct MHD_Connection;
struct MHD_Connection *svc_connection(const svc_request *r);
/* Monotonic microseconds when the request's headers arrived. */
uint64_t svc_started_us(const svc_request *r);
/* Labels for /metrics and the monitoring event: the route's pattern (set by
 * the router) and, for estimations, the estimator. */
void svc_set_estimator(svc_request *r, const char *name);
/* Timings for the monitoring event (microseconds). */
void svc_set_timings(svc_request *r, uint64_t decode_us, uint64_t queue_us, uint64_t infer_us);

/* ---- replying (exactly once per request) ------------------------------------- */

/* Adds a header to the reply (before the reply call). */
void svc_reply_header(svc_request *r, const char *name, const char *value);
/* body is taken (NULL: {}). */
void svc_reply_json(svc_request *r, unsigned status, inferd_value *body);
/* A body made with the builder (core/build_value.h): sent when ok, else a
 * 500 (out of memory building it) instead of a body with fields missing.
 * body is taken. */
void svc_reply_built(svc_request *r, unsigned status, inferd_value *body, bool ok);
/* Publishes an event made with the builder; one that could not be made
 * whole is dropped (and said in the log) instead of going out partial. */
void svc_publish_built(const char *name, inferd_value *payload, bool ok);
/* The body as a JSON object (the caller frees it), or NULL after replying
 * 400: not JSON (with where), or not an object. */
inferd_value *svc_body_object(svc_request *r);
/* data (malloc'd) is taken. */
void svc_reply_bytes(svc_request *r, unsigned status, const char *content_type, void *data,
                     size_t len);
void svc_reply_error(svc_request *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* From an inferd_status: EINVAL/ETYPE/ERANGE 400, ENOTFOUND 404, EBUSY 503
 * overloaded, ESTATE 503 not_ready, EUNSUPPORTED 415... with err's message. */
void svc_reply_status(svc_request *r, inferd_status st, const inferd_error *err);
/* The handler returns without replying; a later svc_reply_* (any thread)
 * resumes the connection and sends it. */
void svc_suspend(svc_request *r);

/* A streamed reply (Server-Sent Events): the status and headers go now,
 * the body is written later from any thread, for as long as the client
 * listens. Returns the writer's handle (NULL: a 500 was sent instead). At
 * most max_buffered bytes wait for a slow client. */
typedef struct svc_stream svc_stream;
svc_stream *svc_reply_stream(svc_request *r, unsigned status, const char *content_type,
                             size_t max_buffered);
/* 0: queued; 1: dropped (the client is max_buffered behind, or out of
 * memory); -1: the client has gone (close the handle). */
int svc_stream_write(svc_stream *st, const void *data, size_t len);
/* Ends the body after what is queued, and lets go of the handle. */
void svc_stream_close(svc_stream *st);

/* For plugin route handlers: a request view of r (valid while r is) and a
 * reply from a handler's response (its contents are taken). */
#include "plugin/http_exchange.h"
void svc_exchange_request(svc_request *r, inferd_http_request *out);
void svc_reply_exchange(svc_request *r, inferd_http_response *resp);

/* ---- the images a request carries (image_request.c) --------------------------- */

typedef struct svc_image_part {
    void *data;          /* owned: the encoded image */
    size_t len, cap;
    bool has_area;
    inferd_rect area;
} svc_image_part;

typedef struct svc_images {
    svc_image_part *parts; /* owned */
    size_t n, cap;
    inferd_value *options; /* owned object: the caller makes it */
    /* The first error met (HTTP status, code, message); 0: none. */
    unsigned status;
    const char *code;
    char message[600];
} svc_images;

/* Reads r's images and options by its Content-Type (raw image, multipart,
 * JSON); a fault is left in p->status. */
void svc_images_parse(svc_request *r, svc_images *p);
/* Checks every image's size before decoding (max_pixels, max_request_pixels,
 * 413) and reserves them from max_inflight_pixels (503); *pixels: what was
 * reserved (the caller gives it back). false with p->status set. */
bool svc_images_admit(svc *s, svc_images *p, uint64_t *pixels);
/* Records the first fault; returns false. */
bool svc_images_fail(svc_images *p, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void svc_images_free(svc_images *p);

/* ---- routes ----------------------------------------------------------------- */

enum {
    SVC_ROUTE_MANAGEMENT = 1u << 0, /* loopback, or a bearer token (http.token) */
    SVC_ROUTE_WORKER = 1u << 1,     /* may wait (a plugin, an install, a rule's thread):
                                       runs on svc's worker pool, not an HTTP thread */
};
typedef void (*svc_handler)(svc_request *r);

/* workers.c: the pool of SVC_ROUTE_WORKER handlers. */
inferd_status svc_workers_new(size_t threads, size_t max_queue, svc_workers **out,
                              inferd_error *err);
/* Queues fn(r) for a worker (r already suspended); false when the queue is
 * full or the pool stops (the caller answers 503). */
bool svc_workers_submit(svc_workers *w, svc_handler fn, svc_request *r);
/* Runs what is queued, then joins the threads and frees. */
void svc_workers_free(svc_workers *w);
typedef struct svc_route {
    const char *method;  /* "GET", "POST", ...; HEAD is served by GET */
    const char *pattern; /* "/v2/models/{*}/infer" written with a * for the segment */
    svc_handler handler;
    unsigned flags;
} svc_route;
/* Each file's routes, {NULL}-terminated. */
extern const svc_route svc_core_routes[];       /* api_core.c: health, ready, version, metrics */
extern const svc_route svc_plugin_routes[];     /* api_plugins.c: /v1/plugins */
extern const svc_route svc_estimator_routes[];  /* api_estimators.c */
extern const svc_route svc_kserve_routes[];     /* kserve.c */
extern const svc_route svc_portable_routes[];   /* api_portables.c: /plugins/portables, functions */
extern const svc_route svc_rules_routes[];      /* api_rules.c: /streams, /rules, /push */
extern const svc_route svc_pipeline_routes[];   /* api_pipelines.c: /v1/pipelines */
/* api_portables.c: destroys the function instances made for exec calls. */
void svc_functions_free(void);
/* Lets go of those of plugin's functions (one in a call goes after it). */
void svc_functions_forget(const char *plugin);

/* service.c: the keys a running service takes from a configuration read
 * again (SIGHUP): the request limits and the management token. The names
 * of the others that differ from the running ones go into *restart (an
 * array, may be NULL): they need a restart. */
void svc_reconfigure(svc *s, const inferd_config *fresh, inferd_value *restart);
/* Whether a config key is one svc_reconfigure applies (or the log's). */
bool svc_key_is_live(const char *key);

/* api_plugins.c: what the service makes of a plugin that comes or goes at
 * run time (a C plugin activated, a portable one installed, upgraded,
 * removed): its background and event components, routes and
 * subscriptions, the estimator names it replaces, the function instances
 * of /v1/functions. attach: all or nothing. detach: EBUSY (nothing
 * changed) while a stream or rule uses it, or when an estimator name would
 * be left without a component. Callers hold plugins_rw for writing. */
inferd_status svc_plugin_attach(svc *s, const char *plugin, inferd_error *err);
inferd_status svc_plugin_detach(svc *s, const char *plugin, inferd_error *err);
/* The events plugin_activated, plugin_deactivated, plugin_upgraded. */
void svc_plugin_publish(const char *event, const char *plugin, const char *version);
/* plugins_rw, and the portable plugins' hook (svc_start / svc_free). */
void svc_plugins_init(svc *s);
void svc_plugins_fini(svc *s);

/* Whether a path belongs to the built-in API (a plugin route may not take it). */
bool svc_path_reserved(const char *path);

/* ---- parts ------------------------------------------------------------------- */

/* kserve.c: the models of models.dir (kserve_repo.h), loaded at start. */
inferd_status svc_kserve_new(svc *s, svc_kserve **out, inferd_error *err);
/* Fails the queued inference requests (503) and waits for the running ones:
 * after it every request it took has its reply. Called after the drain,
 * before the server closes; svc_kserve_free calls it too. */
void svc_kserve_stop(svc_kserve *k);
void svc_kserve_free(svc_kserve *k);
/* Appends the per-model series of /metrics to *buf (*len bytes used of
 * *cap, NUL-terminated; it may grow it). false when out of memory. */
bool svc_kserve_metrics(svc_kserve *k, char **buf, size_t *len, size_t *cap);

/* background.c: background components (started after the server is up,
 * closed before it stops), their routes, and the event subscribers. */
inferd_status svc_background_new(svc *s, svc_background **out, inferd_error *err);
inferd_status svc_background_start(svc_background *b, inferd_error *err);
void svc_background_stop(svc_background *b);
void svc_background_free(svc_background *b);
/* A plugin activated at run time: makes and starts (when the others run)
 * its background and event components, then its routes and subscriptions
 * appear at once. *added: how many. A route clash or a failing start
 * leaves nothing of it. */
inferd_status svc_background_attach(svc_background *b, const char *plugin, size_t *added,
                                    inferd_error *err);
/* Takes plugin's components away: its routes answer 404 from now on, the
 * running handlers finish, then they are closed. Returns how many. */
size_t svc_background_detach(svc_background *b, const char *plugin);
/* Serves r if a plugin route has its path: true when it took it (replied). */
bool svc_background_dispatch(svc_background *b, svc_request *r);

/* pipelines.c: named pipelines kept in the state database (db_path NULL:
 * nothing persists); the recorded ones come back (running ones started). */
inferd_status svc_pipelines_open(svc *s, const char *db_path, svc_pipelines **out,
                                 inferd_error *err);
/* Ends every results stream (before the server drains its connections). */
void svc_pipelines_close_listeners(svc_pipelines *m);
/* Stops every pipeline (discarding what is in flight) and frees m. */
void svc_pipelines_free(svc_pipelines *m);
/* definition: a pipeline document (JSON text), checked by building it.
 * EEXIST when the name is taken. start: run it now. */
inferd_status svc_pipelines_create(svc_pipelines *m, const char *name, const char *definition,
                                   bool start, inferd_error *err);
/* Builds the new definition, then drains the old run and starts the new
 * one (when it ran): each frame is answered by the old or the new. */
inferd_status svc_pipelines_replace(svc_pipelines *m, const char *name, const char *definition,
                                    inferd_error *err);
inferd_status svc_pipelines_delete(svc_pipelines *m, const char *name, inferd_error *err);
/* start true: start it (recorded as running); false: drain and stop it. */
inferd_status svc_pipelines_set_running(svc_pipelines *m, const char *name, bool start,
                                        inferd_error *err);
/* Pushes buf (taken) into the pipeline's source (NULL: its only appsrc).
 * r non-NULL: r (suspended) is answered with the frame's result, or 504
 * after timeout_ms; NULL: asynchronous. *frame: the frame's id. A full
 * pipeline waits up to timeout_ms (EBUSY then). */
inferd_status svc_pipelines_push(svc_pipelines *m, const char *name, const char *source,
                                 inferd_buffer *buf, svc_request *r, int timeout_ms,
                                 uint64_t *frame, inferd_error *err);
/* Replies to r with a Server-Sent Events stream of the pipeline's results. */
inferd_status svc_pipelines_listen(svc_pipelines *m, const char *name, svc_request *r,
                                   inferd_error *err);
inferd_value *svc_pipelines_list(svc_pipelines *m, bool *ok);
inferd_status svc_pipelines_describe(svc_pipelines *m, const char *name, inferd_value **out,
                                     bool *ok, inferd_error *err);

/* metrics.c */
inferd_status svc_metrics_new(svc_metrics **out);
void svc_metrics_free(svc_metrics *m);
/* One finished request: route pattern ("" when none matched), status, time. */
void svc_metrics_request(svc_metrics *m, const char *route, const char *method, unsigned status,
                         uint64_t total_us);
/* Prometheus text exposition of everything (malloc'd). */
char *svc_metrics_render(svc *s, size_t *len);

/* service.c: lifecycle. On failure *bad_config says whether the
 * configuration is to blame (an estimator's settings or model: exit 2, as
 * for every other configuration error) rather than the run time. */
inferd_status svc_start(const inferd_config *cfg, inferd_registry *reg,
                        struct inferd_portables *portables, svc **out, bool *bad_config,
                        inferd_error *err);
uint16_t svc_port(const svc *s);
/* Whether the API is served over HTTPS (http.tls_cert). */
bool svc_tls(const svc *s);
void svc_stop(svc *s, uint64_t timeout_ms);

#endif
