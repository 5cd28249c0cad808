/* service/api_estimators.c: the estimation API.
 *
 *   GET  /v1/estimators          the named estimators and who serves them
 *   GET  /v1/estimators/{name}   one of them
 *   POST /v1/estimators/{name}   estimate one or more images
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

/* ---- what a request carries --------------------------------------------------------- */

typedef struct part {
    void *data;          /* owned */
    size_t len, cap;
    bool has_area;
    inferd_rect area;
} part;

typedef struct parsed {
    part *parts;         /* owned */
    size_t n, cap;
    inferd_value *options; /* owned object */
    /* The first error met while parsing (HTTP status, code, message). */
    unsigned status;
    const char *code;
    char message[600];
} parsed;

static void parsed_free(parsed *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->parts[i].data);
    free(p->parts);
    inferd_value_free(p->options);
}

static bool fail(parsed *p, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(parsed *p, unsigned status, const char *code, const char *fmt, ...)
{
    if (p->status)
        return false; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    p->status = status;
    p->code = code;
    return false;
}

static part *new_part(parsed *p, size_t max_images)
{
    if (p->n >= max_images) {
        fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
             "more than http.max_images (%zu) images in one request", max_images);
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        part *np = realloc(p->parts, cap * sizeof *np);
        if (!np) {
            fail(p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            return NULL;
        }
        p->parts = np;
        p->cap = cap;
    }
    part *pt = &p->parts[p->n++];
    memset(pt, 0, sizeof *pt);
    return pt;
}

static bool part_append(parsed *p, part *pt, const char *data, size_t len)
{
    if (pt->len + len > pt->cap) {
        size_t cap = pt->cap ? pt->cap * 2 : 65536;
        while (cap < pt->len + len)
            cap *= 2;
        void *d = realloc(pt->data, cap);
        if (!d)
            return fail(p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        pt->data = d;
        pt->cap = cap;
    }
    memcpy((char *)pt->data + pt->len, data, len);
    pt->len += len;
    return true;
}

/* "x,y,width,height" */
static bool parse_area_text(const char *t, inferd_rect *a)
{
    long long v[4];
    int used = 0;
    if (sscanf(t, "%lld,%lld,%lld,%lld%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 ||
        t[used] != '\0')
        return false;
    *a = (inferd_rect){v[0], v[1], v[2], v[3]};
    return true;
}

/* An image given as an object in a JSON body, declared. */
static const inferd_prop_spec area_fields[] = {
    {.name = "x", .type = INFERD_PROP_TYPE_INT, INFERD_PROP_AT(inferd_rect, x)},
    {.name = "y", .type = INFERD_PROP_TYPE_INT, INFERD_PROP_AT(inferd_rect, y)},
    {.name = "width", .type = INFERD_PROP_TYPE_INT, INFERD_PROP_AT(inferd_rect, width)},
    {.name = "height", .type = INFERD_PROP_TYPE_INT, INFERD_PROP_AT(inferd_rect, height)},
    INFERD_PROP_END,
};

static const inferd_prop_spec image_fields[] = {
    {.name = "image", .type = INFERD_PROP_TYPE_STRING, .description = "the image, base64"},
    {.name = "detectArea", .type = INFERD_PROP_TYPE_OBJECT, .fields = area_fields,
     .flags = INFERD_PROP_OPTIONAL, .description = "where to look: {x, y, width, height}"},
    INFERD_PROP_END,
};

/* images[i] given as an object: its image text and detect area, checked by
 * the one validator (every fault of it in the 400's message). */
static bool parse_image_object(parsed *p, size_t i, const inferd_value *it, const char **text,
                               size_t *tlen, inferd_rect *area, bool *has_area)
{
    char owner[32];
    snprintf(owner, sizeof owner, "images[%zu]", i);
    inferd_props *props = NULL, *ap = NULL;
    inferd_error err = {0};
    if (inferd_props_validate(image_fields, owner, it, &props, &err) != INFERD_OK)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
    const inferd_value *given = inferd_props_get(props, "detectArea");
    *has_area = given != NULL;
    if (given && inferd_props_validate(area_fields, owner, given, &ap, NULL) == INFERD_OK)
        inferd_props_bind(ap, area);
    inferd_props_free(ap);
    /* The text stays in it (the caller's document), not in the props. */
    inferd_value_get_string(inferd_value_object_get(it, "image"), text, tlen, NULL);
    inferd_props_free(props);
    return true;
}

static void query_option(void *ctx, const char *k, const char *v)
{
    parsed *p = ctx;
    if (strcmp(k, "detectArea") == 0)
        return; /* not an option: read by the raw-body parser */
    inferd__put(p->options, k, inferd_value_string(v ? v : ""), NULL);
}

static bool parse_raw(svc_request *r, parsed *p)
{
    size_t len;
    const void *body = svc_body(r, &len);
    if (len == 0)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the request body is empty: send "
                                                            "an image");
    part *pt = new_part(p, 1);
    if (!pt || !part_append(p, pt, body, len))
        return false;
    const char *area = svc_query(r, "detectArea");
    if (area) {
        if (!parse_area_text(area, &pt->area))
            return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "query detectArea='%.64s': expected x,y,width,height (integers)", area);
        pt->has_area = true;
    }
    return true;
}

static bool parse_json(svc_request *r, parsed *p)
{
    svc *s = svc_of(r);
    size_t len;
    const char *body = svc_body(r, &len);
    inferd_value *doc = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(body, len, s->max_json_depth, &doc, &err) != INFERD_OK)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the JSON body: %s", err.message);
    bool ok = true;
    const inferd_value *images = inferd_value_object_get(doc, "images");
    if (!inferd_value_is(doc, INFERD_VALUE_OBJECT))
        ok = fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the JSON body must be an object "
                                                          "{\"images\": [...], options...}");
    else if (!inferd_value_is(images, INFERD_VALUE_ARRAY) || inferd_value_array_len(images) == 0)
        ok = fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                  "the JSON body needs \"images\": a non-empty array of base64 strings or "
                  "{\"image\": base64, \"detectArea\": {x, y, width, height}} objects");
    for (size_t i = 0; ok && i < inferd_value_array_len(images); i++) {
        const inferd_value *it = inferd_value_array_get(images, i);
        const char *text = NULL;
        size_t tlen = 0;
        inferd_rect area = {0};
        bool has_area = false;
        if (inferd_value_is(it, INFERD_VALUE_OBJECT))
            ok = parse_image_object(p, i, it, &text, &tlen, &area, &has_area);
        else if (inferd_value_get_string(it, &text, &tlen, NULL) != INFERD_OK)
            ok = fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                      "images[%zu]: expected a base64 string (or an object with \"image\")", i);
        part *pt = ok ? new_part(p, s->max_images) : NULL;
        if (!pt)
            ok = false;
        if (ok && inferd_base64_decode(text, tlen, &pt->data, &pt->len, &err) != INFERD_OK)
            ok = fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "images[%zu]: %s", i, err.message);
        if (ok && has_area) {
            pt->has_area = true;
            pt->area = area;
        }
    }
    const char *key;
    inferd_value *v;
    for (size_t k = 0; ok && inferd_value_object_entry(doc, k, &key, &v); k++)
        if (strcmp(key, "images") != 0)
            inferd__put(p->options, key, inferd_value_copy(v), NULL);
    inferd_value_free(doc);
    return ok;
}

/* multipart/form-data through libmicrohttpd's post processor: a part with a
 * file name or an image content type is an image; other fields are options. */
typedef struct mp_ctx {
    parsed *p;
    size_t max_images;
    part *cur;
    char cur_key[128];
    bool ok;
    char *field;          /* owned: the option field being read */
    size_t field_len;
    char field_key[128];
} mp_ctx;

static void mp_flush_field(mp_ctx *c)
{
    if (c->field_key[0]) {
        inferd__put(c->p->options, c->field_key,
                    inferd_value_string_n(c->field ? c->field : "", c->field_len), NULL);
        c->field_key[0] = '\0';
        free(c->field);
        c->field = NULL;
        c->field_len = 0;
    }
}

static enum MHD_Result mp_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    mp_ctx *c = cls;
    bool is_image = filename || (content_type && strncasecmp(content_type, "image/", 6) == 0);
    if (is_image) {
        if (off == 0 || !c->cur || strcmp(c->cur_key, key ? key : "") != 0) {
            mp_flush_field(c);
            if (!(c->cur = new_part(c->p, c->max_images)))
                return (c->ok = false), MHD_NO;
            snprintf(c->cur_key, sizeof c->cur_key, "%s", key ? key : "");
        }
        if (size && !part_append(c->p, c->cur, data, size))
            return (c->ok = false), MHD_NO;
        return MHD_YES;
    }
    c->cur = NULL;
    if (off == 0 || strcmp(c->field_key, key ? key : "") != 0) {
        mp_flush_field(c);
        snprintf(c->field_key, sizeof c->field_key, "%s", key ? key : "");
    }
    char *f = realloc(c->field, c->field_len + size + 1);
    if (!f)
        return (c->ok = false), MHD_NO;
    memcpy(f + c->field_len, data, size);
    c->field = f;
    c->field_len += size;
    return MHD_YES;
}

static bool parse_multipart(svc_request *r, parsed *p, struct MHD_Connection *conn)
{
    size_t len;
    const char *body = svc_body(r, &len);
    mp_ctx c = {.p = p, .max_images = svc_of(r)->max_images, .ok = true};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, 65536, mp_iter, &c);
    if (!pp)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                    "multipart/form-data without a boundary");
    enum MHD_Result res = MHD_post_process(pp, body, len);
    MHD_destroy_post_processor(pp);
    mp_flush_field(&c);
    free(c.field);
    if (!c.ok)
        return false;
    if (res != MHD_YES)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "malformed multipart/form-data body");
    if (p->n == 0)
        return fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                    "the multipart body has no image part (a part with a filename or an "
                    "image/* content type)");
    return true;
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

/* The media type without parameters, lower case. */
static void media_type(const char *ct, char *out, size_t size)
{
    size_t i = 0;
    for (; ct && ct[i] && ct[i] != ';' && i + 1 < size; i++)
        out[i] = (char)((ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] + 32 : ct[i]);
    while (i > 0 && out[i - 1] == ' ')
        i--;
    out[i] = '\0';
}

/* Probes every part's size: each within image.max_pixels, all together
 * within image.max_request_pixels (413), then reserves them from the
 * in-flight budget image.max_inflight_pixels (503: retry later), before
 * anything is decoded. *pixels: what was reserved (released in finish, or
 * by the caller on a later failure). */
static bool admit_all(svc *s, parsed *p, uint64_t *pixels)
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        part *pt = &p->parts[i];
        inferd_error err = {0};
        uint32_t w = 0, h = 0;
        if (inferd_image_sniff(pt->data, pt->len) == INFERD_CODEC_UNKNOWN) {
            fail(p, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                 "image %zu is neither JPEG nor PNG (%zu bytes)", i, pt->len);
        } else if (inferd_image_probe(pt->data, pt->len, &w, &h, &err) != INFERD_OK) {
            fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "image %zu: %s", i, err.message);
        } else if ((uint64_t)w * h > s->max_pixels) {
            fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                 "image %zu is %ux%u = %llu pixels, more than image.max_pixels (%llu)", i, w, h,
                 (unsigned long long)w * h, (unsigned long long)s->max_pixels);
        } else if ((total += (uint64_t)w * h) > s->max_request_pixels) {
            fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                 "the images of this request have %llu pixels or more (image %zu is %ux%u), "
                 "more than image.max_request_pixels (%llu)", (unsigned long long)total, i, w,
                 h, (unsigned long long)s->max_request_pixels);
        }
        if (p->status)
            return false;
    }
    uint64_t now = atomic_fetch_add(&s->inflight_pixels, total);
    if (now + total > s->max_inflight_pixels && now > 0) {
        /* One request alone always gets in (within max_request_pixels). */
        atomic_fetch_sub(&s->inflight_pixels, total);
        fail(p, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
             "%llu pixels of images are being estimated; this request's %llu would pass "
             "image.max_inflight_pixels (%llu): retry later", (unsigned long long)now,
             (unsigned long long)total, (unsigned long long)s->max_inflight_pixels);
        return false;
    }
    *pixels = total;
    return true;
}

/* Decodes every part (admitted by admit_all); frees the decoded images on
 * failure. */
static bool decode_all(svc *s, parsed *p, inferd_estimate_input *in)
{
    for (size_t i = 0; i < p->n; i++) {
        part *pt = &p->parts[i];
        inferd_error err = {0};
        if (inferd_image_decode(pt->data, pt->len, INFERD_PIXEL_RGB8, s->max_pixels,
                                &in[i].image, &err) != INFERD_OK) {
            fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "image %zu: %s", i, err.message);
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
    char mt[128];
    media_type(svc_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), mt, sizeof mt);
    parsed p = {.options = inferd_value_object()};
    if (!p.options) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    svc_query_each(r, query_option, &p);
    if (strcmp(mt, "image/jpeg") == 0 || strcmp(mt, "image/png") == 0)
        parse_raw(r, &p);
    else if (strcmp(mt, "application/json") == 0)
        parse_json(r, &p);
    else if (strcmp(mt, "multipart/form-data") == 0)
        parse_multipart(r, &p, svc_connection(r));
    else
        fail(&p, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
             "Content-Type '%s' is not supported: send image/jpeg, image/png, "
             "multipart/form-data or application/json", mt[0] ? mt : "(none)");
    inferd_estimate_input *in = NULL;
    if (!p.status && !(in = calloc(p.n, sizeof *in)))
        fail(&p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    uint64_t pixels = 0;
    if (!p.status && admit_all(s, &p, &pixels))
        decode_all(s, &p, in);
    pending *pd = NULL;
    if (!p.status && (!(pd = calloc(1, sizeof *pd)) ||
                      !(pd->results = calloc(p.n, sizeof *pd->results)) ||
                      !(pd->estimator = strdup(name)))) {
        fail(&p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
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
        parsed_free(&p);
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
    parsed_free(&p);
}

const svc_route svc_estimator_routes[] = {
    {"GET", "/v1/estimators", list, 0},
    {"GET", "/v1/estimators/*", get_one, 0},
    {"POST", "/v1/estimators/*", estimate, 0},
    {NULL, NULL, NULL, 0},
};
