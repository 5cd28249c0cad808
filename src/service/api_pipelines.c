/* service/api_pipelines.c: pipelines as a service over REST.
 *
 *   GET    /v1/pipelines                  every pipeline: state and counters
 *   POST   /v1/pipelines                  create (and start) one
 *   GET    /v1/pipelines/{name}           one, with per-element counters
 *   PUT    /v1/pipelines/{name}           replace its document (drain, then swap)
 *   DELETE /v1/pipelines/{name}
 *   POST   /v1/pipelines/{name}/start|stop
 *   POST   /v1/pipelines/{name}/frames    an image in: its result, or 202 and a frame id
 *   GET    /v1/pipelines/{name}/results   every result, as Server-Sent Events
 *
 * Definitions are management (loopback or the bearer token, like plugins and
 * rules); frames and results are data, like estimations. docs/service.md is
 * the user's side; pipelines.c does the work.
 */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/image.h"
#include "inferd/props.h"
#include "service/service.h"

static svc_pipelines *manager(svc_request *r)
{
    svc_pipelines *m = svc_of(r)->pipelines;
    if (!m)
        svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                        "pipelines are not available in this daemon");
    return m;
}

/* Conflicts (a name taken, a change in progress) are 409, as for rules. */
static void reply_status(svc_request *r, inferd_status st, const inferd_error *err)
{
    if (st == INFERD_EEXIST || st == INFERD_EBUSY)
        svc_reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err->message);
    else
        svc_reply_status(r, st, err);
}

/* The pipeline as it is now, with the status given. */
static void reply_described(svc_request *r, svc_pipelines *m, const char *name, unsigned status)
{
    inferd_value *d = NULL;
    inferd_error err = {0};
    bool ok = true;
    inferd_status st = svc_pipelines_describe(m, name, &d, &ok, &err);
    if (st == INFERD_OK)
        svc_reply_built(r, status, d, ok);
    else
        reply_status(r, st, &err);
}

/* A definition body, declared: {"name", "pipeline", "start"}, or the
 * pipeline document itself (one key: the stream's name). */
static const inferd_prop_spec wrapped_fields[] = {
    {.name = "name", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "the pipeline's name in the service (default: the document's stream name)"},
    {.name = "pipeline", .type = INFERD_PROP_TYPE_OBJECT,
     .description = "the pipeline document, as in a pipeline file"},
    INFERD_PROP_BOOL("start", "start it now", true),
    INFERD_PROP_END,
};

typedef struct definition {
    char *name;     /* owned */
    char *json;     /* owned: the pipeline document */
    bool start;
} definition;

/* Reads the body as a definition; false after replying 400. */
static bool read_definition(svc_request *r, definition *d)
{
    inferd_value *doc = svc_body_object(r);
    if (!doc)
        return false;
    const inferd_value *pipe = doc;
    inferd_props *props = NULL;
    inferd_error err = {0};
    d->start = true;
    if (inferd_value_object_get(doc, "pipeline")) {
        if (inferd_props_validate(wrapped_fields, "the pipeline request", doc, &props, &err) !=
            INFERD_OK) {
            svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
            inferd_value_free(doc);
            return false;
        }
        pipe = inferd_value_object_get(doc, "pipeline");
        d->start = inferd_props_bool(props, "start");
        if (inferd_props_get(props, "name"))
            d->name = strdup(inferd_props_string(props, "name"));
    }
    const char *stream = NULL;
    inferd_value *ignored;
    if (inferd_value_object_len(pipe) != 1 ||
        !inferd_value_object_entry(pipe, 0, &stream, &ignored)) {
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "a pipeline document is an object with one key, the stream's name "
                        "(as in a pipeline file), or {\"name\": ..., \"pipeline\": {...}, "
                        "\"start\": true}");
    } else {
        if (!d->name)
            d->name = strdup(stream);
        if (d->name && inferd_value_to_json(pipe, INFERD_JSON_COMPACT, &d->json, NULL, NULL) !=
                           INFERD_OK)
            d->json = NULL;
        if (!d->name || !d->json)
            svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        else if (!d->name[0] || strchr(d->name, '/'))
            svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                            "a pipeline's name is not empty and has no '/': '%.100s'", d->name);
        else {
            inferd_props_free(props);
            inferd_value_free(doc);
            return true;
        }
    }
    inferd_props_free(props);
    inferd_value_free(doc);
    free(d->name);
    free(d->json);
    return false;
}

static void list(svc_request *r)
{
    svc_pipelines *m = manager(r);
    if (!m)
        return;
    bool ok = true;
    inferd_value *o = inferd_value_object();
    inferd__put(o, "pipelines", svc_pipelines_list(m, &ok), &ok);
    svc_reply_built(r, MHD_HTTP_OK, o, ok);
}

static void create(svc_request *r)
{
    svc_pipelines *m = manager(r);
    definition d = {0};
    if (!m || !read_definition(r, &d))
        return;
    inferd_error err = {0};
    inferd_status st = svc_pipelines_create(m, d.name, d.json, d.start, &err);
    /* A document that built but failed to start is kept (stopped, with
     * the reason): 201 says it exists, its state says the rest. */
    if (st == INFERD_OK || st == INFERD_EINTERNAL || st == INFERD_ENOMEM)
        reply_described(r, m, d.name, MHD_HTTP_CREATED);
    else
        reply_status(r, st, &err);
    free(d.name);
    free(d.json);
}

static void get_one(svc_request *r)
{
    svc_pipelines *m = manager(r);
    if (m)
        reply_described(r, m, svc_param(r, 0), MHD_HTTP_OK);
}

static void replace(svc_request *r)
{
    svc_pipelines *m = manager(r);
    definition d = {0};
    if (!m || !read_definition(r, &d))
        return;
    inferd_error err = {0};
    /* The path names the pipeline; the document's stream name is its own. */
    inferd_status st = svc_pipelines_replace(m, svc_param(r, 0), d.json, &err);
    if (st == INFERD_OK)
        reply_described(r, m, svc_param(r, 0), MHD_HTTP_OK);
    else
        reply_status(r, st, &err);
    free(d.name);
    free(d.json);
}

static void delete_one(svc_request *r)
{
    svc_pipelines *m = manager(r);
    if (!m)
        return;
    inferd_error err = {0};
    inferd_status st = svc_pipelines_delete(m, svc_param(r, 0), &err);
    if (st != INFERD_OK) {
        reply_status(r, st, &err);
        return;
    }
    bool ok = true;
    char msg[300];
    snprintf(msg, sizeof msg, "Pipeline %s is deleted.", svc_param(r, 0));
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, "name", svc_param(r, 0), &ok);
    inferd__put_str(b, "message", msg, &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

static void set_running(svc_request *r, bool start)
{
    svc_pipelines *m = manager(r);
    if (!m)
        return;
    inferd_error err = {0};
    inferd_status st = svc_pipelines_set_running(m, svc_param(r, 0), start, &err);
    if (st == INFERD_OK)
        reply_described(r, m, svc_param(r, 0), MHD_HTTP_OK);
    else
        reply_status(r, st, &err);
}

static void start(svc_request *r) { set_running(r, true); }
static void stop(svc_request *r) { set_running(r, false); }

/* ---- frames ------------------------------------------------------------------------------ */

/* The query of a frames request, declared (options an estimator would take
 * are not for a pipeline: unknown keys are refused). */
static const inferd_prop_spec frame_options[] = {
    INFERD_PROP_BOOL("async", "answer 202 with the frame ids at once; results go to /results",
                     false),
    INFERD_PROP_DURATION("timeout", "how long to wait for room in the pipeline and for the "
                         "result", "30s", 1, 600000),
    {.name = "source", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "the appsrc to feed (default: the only one)"},
    INFERD_PROP_END,
};

static void frames(svc_request *r)
{
    svc_pipelines *m = manager(r);
    if (!m)
        return;
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    svc_images p = {.options = inferd_value_object()};
    if (!p.options) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    svc_images_parse(r, &p);
    inferd_props *opts = NULL;
    inferd_error err = {0};
    if (!p.status && inferd_props_validate(frame_options, "the frames request", p.options, &opts,
                                           &err) != INFERD_OK)
        svc_images_fail(&p, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
    bool async = !p.status && inferd_props_bool(opts, "async");
    for (size_t i = 0; !p.status && i < p.n; i++)
        if (p.parts[i].has_area)
            svc_images_fail(&p, MHD_HTTP_BAD_REQUEST, "bad_request",
                            "image %zu has a detectArea: that is an estimator's option; crop "
                            "in the pipeline (image_crop)", i);
    if (!p.status && !async && p.n != 1)
        svc_images_fail(&p, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "a frame that waits for its result is one image (this request has "
                        "%zu); send several with ?async=true", p.n);
    uint64_t pixels = 0;
    if (!p.status)
        svc_images_admit(s, &p, &pixels);
    /* Only checked here: the pipeline decodes, and its queues bound it. */
    atomic_fetch_sub(&s->inflight_pixels, pixels);
    if (p.status) {
        svc_reply_error(r, p.status, p.code, "%s", p.message);
        inferd_props_free(opts);
        svc_images_free(&p);
        return;
    }
    int timeout = (int)inferd_props_int(opts, "timeout");
    const char *source = inferd_props_get(opts, "source") ? inferd_props_string(opts, "source")
                                                          : NULL;
    bool ok = true;
    inferd_value *ids = inferd_value_array();
    inferd_status st = INFERD_OK;
    for (size_t i = 0; st == INFERD_OK && i < p.n; i++) {
        inferd_buffer *buf = inferd_buffer_new();
        svc_image_part *pt = &p.parts[i];
        const char *mime = inferd_image_codec_mime(inferd_image_sniff(pt->data, pt->len));
        if (!buf || inferd_buffer_set_value(buf, mime ? mime : "application/octet-stream",
                                            inferd_value_bytes_take(pt->data, pt->len),
                                            &err) != INFERD_OK) {
            inferd_buffer_unref(buf);
            st = inferd_error_set(&err, INFERD_ENOMEM, "out of memory");
            break;
        }
        pt->data = NULL; /* the buffer's now */
        uint64_t frame = 0;
        st = svc_pipelines_push(m, name, source, buf, async ? NULL : r, timeout, &frame, &err);
        if (st == INFERD_OK)
            inferd__push(ids, inferd_value_int((int64_t)frame), &ok);
    }
    if (st != INFERD_OK && inferd_value_array_len(ids) > 0) {
        /* Some frames went in: say which, with why the rest did not. */
        inferd_value *b = inferd_value_object();
        inferd__put(b, "frames", ids, &ok);
        inferd__put_str(b, "error", err.message, &ok);
        svc_reply_built(r, MHD_HTTP_ACCEPTED, b, ok);
    } else if (st != INFERD_OK) {
        inferd_value_free(ids);
        svc_reply_status(r, st, &err); /* a full pipeline (EBUSY) is 503 overloaded */
    } else if (async) {
        inferd_value *b = inferd_value_object();
        inferd__put_str(b, "pipeline", name, &ok);
        inferd__put(b, "frames", ids, &ok);
        svc_reply_built(r, MHD_HTTP_ACCEPTED, b, ok);
    } else {
        inferd_value_free(ids); /* the result answers r */
    }
    inferd_props_free(opts);
    svc_images_free(&p);
}

static void results(svc_request *r)
{
    svc_pipelines *m = manager(r);
    if (!m)
        return;
    inferd_error err = {0};
    inferd_status st = svc_pipelines_listen(m, svc_param(r, 0), r, &err);
    if (st != INFERD_OK)
        reply_status(r, st, &err);
}

const svc_route svc_pipeline_routes[] = {
    {"GET", "/v1/pipelines", list, SVC_ROUTE_MANAGEMENT},
    {"POST", "/v1/pipelines", create, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/v1/pipelines/*", get_one, SVC_ROUTE_MANAGEMENT},
    {"PUT", "/v1/pipelines/*", replace, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"DELETE", "/v1/pipelines/*", delete_one, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v1/pipelines/*/start", start, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v1/pipelines/*/stop", stop, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v1/pipelines/*/frames", frames, SVC_ROUTE_WORKER},
    {"GET", "/v1/pipelines/*/results", results, 0},
    {NULL, NULL, NULL, 0},
};
