/* service/image_request.c: the images a request carries, for the estimation
 * API and for pipeline frames: raw bytes (image/jpeg, image/png), a
 * multipart/form-data body with image parts (other fields are options), or
 * JSON {"images": ["<base64>" | {"image": "<base64>", "detectArea": {...}}],
 * ...options}; query parameters are options too. Then admission: each
 * image's size within image.max_pixels, the request's within
 * image.max_request_pixels, and a reservation from image.max_inflight_pixels,
 * all before anything is decoded. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inferd/image.h"
#include "service/service.h"

void svc_images_free(svc_images *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->parts[i].data);
    free(p->parts);
    inferd_value_free(p->options);
}

bool svc_images_fail(svc_images *p, unsigned status, const char *code, const char *fmt, ...)
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

static svc_image_part *new_part(svc_images *p, size_t max_images)
{
    if (p->n >= max_images) {
        svc_images_fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
             "more than http.max_images (%zu) images in one request", max_images);
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        svc_image_part *np = realloc(p->parts, cap * sizeof *np);
        if (!np) {
            svc_images_fail(p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            return NULL;
        }
        p->parts = np;
        p->cap = cap;
    }
    svc_image_part *pt = &p->parts[p->n++];
    memset(pt, 0, sizeof *pt);
    return pt;
}

static bool part_append(svc_images *p, svc_image_part *pt, const char *data, size_t len)
{
    if (pt->len + len > pt->cap) {
        size_t cap = pt->cap ? pt->cap * 2 : 65536;
        while (cap < pt->len + len)
            cap *= 2;
        void *d = realloc(pt->data, cap);
        if (!d)
            return svc_images_fail(p, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
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
static bool parse_image_object(svc_images *p, size_t i, const inferd_value *it, const char **text,
                               size_t *tlen, inferd_rect *area, bool *has_area)
{
    char owner[32];
    snprintf(owner, sizeof owner, "images[%zu]", i);
    inferd_props *props = NULL, *ap = NULL;
    inferd_error err = {0};
    if (inferd_props_validate(image_fields, owner, it, &props, &err) != INFERD_OK)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
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
    svc_images *p = ctx;
    if (strcmp(k, "detectArea") == 0)
        return; /* not an option: read by the raw-body parser */
    inferd__put(p->options, k, inferd_value_string(v ? v : ""), NULL);
}

static bool parse_raw(svc_request *r, svc_images *p)
{
    size_t len;
    const void *body = svc_body(r, &len);
    if (len == 0)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the request body is empty: send "
                                                            "an image");
    svc_image_part *pt = new_part(p, 1);
    if (!pt || !part_append(p, pt, body, len))
        return false;
    const char *area = svc_query(r, "detectArea");
    if (area) {
        if (!parse_area_text(area, &pt->area))
            return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "query detectArea='%.64s': expected x,y,width,height (integers)", area);
        pt->has_area = true;
    }
    return true;
}

static bool parse_json(svc_request *r, svc_images *p)
{
    svc *s = svc_of(r);
    size_t len;
    const char *body = svc_body(r, &len);
    inferd_value *doc = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(body, len, s->max_json_depth, &doc, &err) != INFERD_OK)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the JSON body: %s", err.message);
    bool ok = true;
    const inferd_value *images = inferd_value_object_get(doc, "images");
    if (!inferd_value_is(doc, INFERD_VALUE_OBJECT))
        ok = svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "the JSON body must be an object "
                                                          "{\"images\": [...], options...}");
    else if (!inferd_value_is(images, INFERD_VALUE_ARRAY) || inferd_value_array_len(images) == 0)
        ok = svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
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
            ok = svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                      "images[%zu]: expected a base64 string (or an object with \"image\")", i);
        svc_image_part *pt = ok ? new_part(p, s->max_images) : NULL;
        if (!pt)
            ok = false;
        if (ok && inferd_base64_decode(text, tlen, &pt->data, &pt->len, &err) != INFERD_OK)
            ok = svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "images[%zu]: %s", i, err.message);
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
    svc_images *p;
    size_t max_images;
    svc_image_part *cur;
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

static bool parse_multipart(svc_request *r, svc_images *p, struct MHD_Connection *conn)
{
    size_t len;
    const char *body = svc_body(r, &len);
    mp_ctx c = {.p = p, .max_images = svc_of(r)->max_images, .ok = true};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, 65536, mp_iter, &c);
    if (!pp)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                    "multipart/form-data without a boundary");
    enum MHD_Result res = MHD_post_process(pp, body, len);
    MHD_destroy_post_processor(pp);
    mp_flush_field(&c);
    free(c.field);
    if (!c.ok)
        return false;
    if (res != MHD_YES)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "malformed multipart/form-data body");
    if (p->n == 0)
        return svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request",
                    "the multipart body has no image part (a part with a filename or an "
                    "image/* content type)");
    return true;
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
bool svc_images_admit(svc *s, svc_images *p, uint64_t *pixels)
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        svc_image_part *pt = &p->parts[i];
        inferd_error err = {0};
        uint32_t w = 0, h = 0;
        if (inferd_image_sniff(pt->data, pt->len) == INFERD_CODEC_UNKNOWN) {
            svc_images_fail(p, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                 "image %zu is neither JPEG nor PNG (%zu bytes)", i, pt->len);
        } else if (inferd_image_probe(pt->data, pt->len, &w, &h, &err) != INFERD_OK) {
            svc_images_fail(p, MHD_HTTP_BAD_REQUEST, "bad_request", "image %zu: %s", i, err.message);
        } else if ((uint64_t)w * h > s->max_pixels) {
            svc_images_fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                 "image %zu is %ux%u = %llu pixels, more than image.max_pixels (%llu)", i, w, h,
                 (unsigned long long)w * h, (unsigned long long)s->max_pixels);
        } else if ((total += (uint64_t)w * h) > s->max_request_pixels) {
            svc_images_fail(p, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
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
        svc_images_fail(p, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
             "%llu pixels of images are being estimated; this request's %llu would pass "
             "image.max_inflight_pixels (%llu): retry later", (unsigned long long)now,
             (unsigned long long)total, (unsigned long long)s->max_inflight_pixels);
        return false;
    }
    *pixels = total;
    return true;
}


void svc_images_parse(svc_request *r, svc_images *p)
{
    char mt[128];
    media_type(svc_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), mt, sizeof mt);
    svc_query_each(r, query_option, p);
    if (strcmp(mt, "image/jpeg") == 0 || strcmp(mt, "image/png") == 0)
        parse_raw(r, p);
    else if (strcmp(mt, "application/json") == 0)
        parse_json(r, p);
    else if (strcmp(mt, "multipart/form-data") == 0)
        parse_multipart(r, p, svc_connection(r));
    else
        svc_images_fail(p, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                        "Content-Type '%s' is not supported: send image/jpeg, image/png, "
                        "multipart/form-data or application/json", mt[0] ? mt : "(none)");
}
