/* service/api_estimators.c: the estimation API.
 *
 *   GET  /v1/estimators          the named estimators and who serves them
 *   GET  /v1/estimators/{name}   one of them
 *   POST /v1/estimators/{name}   estimate one or more images
 *   POST /v1/estimators/{name}/reload   read its model again (management)
 *
 * A POST body is raw image bytes (image/jpeg, image/png), multipart/form-data
 * with one or more image parts (other fields are options), or JSON
 * {"images": ["<base64>" | {"image": "<base64>", "detectArea": {...}}], ...options}.
 * Query parameters are options too (detectArea=x,y,width,height for a raw
 * body). The handler parses and decodes on the HTTP thread, submits the
 * images to the estimator's batcher and suspends; the last completion
 * builds the reply {"estimator", "results": [one per image, in order]}.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "inferd/image.h"
#include "core/build_value.h"
#include "core/clock.h"
#include "service/service.h"

static long find_estimator(svc_request *r)
{
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    long i = inferd_estimators_find(s->est, name);
    if (i < 0) {
        char names[512] = "";
        for (size_t k = 0, pos = 0; k < inferd_estimators_count(s->est) && pos < sizeof names; k++)
            pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s%s", k ? ", " : "",
                                    inferd_estimators_name(s->est, k));
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                        "no estimator named '%s' (there are: %s)", name, names);
    }
    return i;
}

static void list(svc_request *r)
{
    svc *s = svc_of(r);
    bool ok = true;
    inferd_value *arr = inferd_value_array(), *b = inferd_value_object();
    for (size_t i = 0; i < inferd_estimators_count(s->est); i++)
        inferd__push(arr, inferd_estimators_describe(s->est, i), &ok);
    inferd__put(b, "estimators", arr, &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

static void get_one(svc_request *r)
{
    long i = find_estimator(r);
    if (i >= 0)
        svc_reply_json(r, MHD_HTTP_OK, inferd_estimators_describe(svc_of(r)->est, (size_t)i));
}

/* ---- the estimation itself ------------------------------------------------------------ */

typedef struct pending {
    svc_request *r;          /* borrowed: suspended until the last completion replies */
    char *estimator;         /* owned */
    size_t n;
    atomic_size_t left;
    pthread_mutex_t lock;    /* guards results and the timings */
    inferd_value **results;  /* owned, one per image */
    size_t n_ok;
    inferd_status first_st;
    inferd_error first_err;
    uint64_t decode_us, queue_us, run_us;
    uint64_t pixels;         /* reserved from svc's in-flight budget until finish */
    svc *s;                  /* borrowed */
} pending;

static inferd_value *item_error(const inferd_error *err)
{
    bool ok = true;
    inferd_value *o = inferd_value_object(), *e = inferd_value_object();
    inferd__put_str(e, "code", inferd_status_name(err->code), &ok);
    inferd__put_str(e, "message", err->message, &ok);
    inferd__put(o, "error", e, &ok);
    if (!ok) { /* the reply is built with it: a NULL item makes it a 500 */
        inferd_value_free(o);
        return NULL;
    }
    return o;
}

/* The estimation_done event: one per request, after its last image. */
static void publish_done(const pending *pd)
{
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "estimator", pd->estimator, &ok);
    inferd__put(ev, "images", inferd_value_int((int64_t)pd->n), &ok);
    inferd__put(ev, "failed", inferd_value_int((int64_t)(pd->n - pd->n_ok)), &ok);
    inferd__put(ev, "decode_ms", inferd_value_double((double)pd->decode_us / 1e3), &ok);
    inferd__put(ev, "queue_ms", inferd_value_double((double)pd->queue_us / 1e3), &ok);
    inferd__put(ev, "inference_ms", inferd_value_double((double)pd->run_us / 1e3), &ok);
    if (pd->n_ok < pd->n)
        inferd__put_str(ev, "error", pd->first_err.message, &ok);
    svc_publish_built("estimation_done", ev, ok);
}

static void finish(pending *pd)
{
    svc_request *r = pd->r;
    /* Before the reply: a client that sends its next request on it must
     * find the budget back. */
    atomic_fetch_sub(&pd->s->inflight_pixels, pd->pixels);
    svc_set_timings(r, pd->decode_us, pd->queue_us, pd->run_us);
    publish_done(pd);
    if (pd->n_ok == 0) {
        svc_reply_status(r, pd->first_st, &pd->first_err);
    } else {
        bool ok = true;
        inferd_value *arr = inferd_value_array(), *b = inferd_value_object();
        for (size_t i = 0; i < pd->n; i++) {
            inferd__push(arr, pd->results[i], &ok);
            pd->results[i] = NULL;
        }
        inferd__put_str(b, "estimator", pd->estimator, &ok);
        inferd__put(b, "results", arr, &ok);
        svc_reply_built(r, MHD_HTTP_OK, b, ok);
    }
    for (size_t i = 0; i < pd->n; i++)
        inferd_value_free(pd->results[i]);
    free(pd->results);
    free(pd->estimator);
    pthread_mutex_destroy(&pd->lock);
    free(pd);
}

static void on_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                    const inferd_estimate_timing *t)
{
    pending *pd = ctx;
    pthread_mutex_lock(&pd->lock);
    if (result) {
        pd->results[index] = result;
        pd->n_ok++;
    } else {
        pd->results[index] = item_error(err);
        if (pd->first_st == INFERD_OK) {
            pd->first_st = err->code ? err->code : INFERD_EPLUGIN;
            pd->first_err = *err;
        }
    }
    if (t->queue_us > pd->queue_us)
        pd->queue_us = t->queue_us;
    if (t->run_us > pd->run_us)
        pd->run_us = t->run_us;
    pthread_mutex_unlock(&pd->lock);
    if (atomic_fetch_sub(&pd->left, 1) == 1)
        finish(pd);
}

/* Decodes every part (admitted by admit_all); frees the decoded images on
 * failure. */
static bool decode_all(svc *s, svc_images *p, inferd_estimate_input *in)
{
    for (size_t i = 0; i < p->n; i++) {
        svc_image_part *pt = &p->parts[i];
        inferd_error err = {0};
        if (inferd_image_decode(pt->data, pt->len, INFERD_PIXEL_RGB8, s->max_pixels,
                                &in[i].image, &err) != INFERD_OK) {
            svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "image %zu: %s", i, err.message);
            for (size_t k = 0; k < i; k++)
                inferd_image_free(in[k].image);
            return false;
        }
        in[i].has_area = pt->has_area;
        in[i].area = pt->area;
        free(pt->data); /* the encoded bytes are not needed any more */
        pt->data = NULL;
    }
    return true;
}

static void estimate(svc_request *r)
{
    svc *s = svc_of(r);
    long idx = find_estimator(r);
    if (idx < 0)
        return;
    const char *name = inferd_estimators_name(s->est, (size_t)idx);
    svc_set_estimator(r, name);
    uint64_t t0 = inferd__now_us();
    svc_images p = {.options = inferd_value_object()};
    if (!p.options) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    svc_images_parse(r, &p);
    inferd_estimate_input *in = NULL;
    if (!p.status && !(in = calloc(p.n, sizeof *in)))
        svc_images_fail(&p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    uint64_t pixels = 0;
    if (!p.status && svc_images_admit(s, &p, &pixels))
        decode_all(s, &p, in);
    pending *pd = NULL;
    if (!p.status && (!(pd = calloc(1, sizeof *pd)) ||
                      !(pd->results = calloc(p.n, sizeof *pd->results)) ||
                      !(pd->estimator = strdup(name)))) {
        svc_images_fail(&p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        for (size_t k = 0; k < p.n; k++)
            inferd_image_free(in[k].image);
    }
    if (p.status) {
        atomic_fetch_sub(&s->inflight_pixels, pixels);
        svc_reply_error(r, p.status, p.code, "%s", p.message);
        if (pd) {
            free(pd->results);
            free(pd);
        }
        free(in);
        svc_images_free(&p);
        return;
    }
    pd->r = r;
    pd->s = s;
    pd->pixels = pixels;
    pixels = 0; /* pd's now */
    pd->n = p.n;
    atomic_init(&pd->left, p.n);
    pthread_mutex_init(&pd->lock, NULL);
    pd->decode_us = inferd__now_us() - t0;
    inferd_error err = {0};
    svc_suspend(r); /* before submit: a completion may reply at once */
    inferd_status st =
        inferd_estimators_submit(s->est, (size_t)idx, in, p.n, p.options, on_done, pd, &err);
    if (st != INFERD_OK) {
        for (size_t k = 0; k < p.n; k++)
            inferd_image_free(in[k].image);
        svc_reply_status(r, st, &err);
        atomic_fetch_sub(&s->inflight_pixels, pd->pixels);
        free(pd->results);
        free(pd->estimator);
        pthread_mutex_destroy(&pd->lock);
        free(pd);
    }
    free(in);
    svc_images_free(&p);
}

/* POST /v1/estimators/{name}/reload: its model read again (a new file in
 * place); requests running finish on the old, new ones use the new. */
static void reload(svc_request *r)
{
    svc *s = svc_of(r);
    long idx = find_estimator(r);
    if (idx < 0)
        return;
    inferd_error err = {0};
    inferd_status st = inferd_estimators_reload(s->est, (size_t)idx, &err);
    if (st == INFERD_OK)
        svc_reply_json(r, MHD_HTTP_OK, inferd_estimators_describe(s->est, (size_t)idx));
    else if (st == INFERD_ENOMEM || st == INFERD_EINTERNAL)
        svc_reply_status(r, st, &err);
    else /* what the model or the settings do not allow: the files' fault */
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
}

const svc_route svc_estimator_routes[] = {
    {"GET", "/v1/estimators", list, 0},
    {"GET", "/v1/estimators/*", get_one, 0},
    {"POST", "/v1/estimators/*", estimate, 0},
    {"POST", "/v1/estimators/*/reload", reload, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {NULL, NULL, NULL, 0},
};
