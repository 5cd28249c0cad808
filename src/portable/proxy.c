/* portable/proxy.c: a portable plugin's components as registry components.
 *
 * Each declared component becomes an inferd_component of its kind whose ops
 * forward every call to the plugin's process (host.h), so the rest of
 * inferd (estimators, the event bus, background routes, rules) uses a
 * portable component exactly as it uses a C one. proxy.h.
 */
#include "core/build_value.h"
#include "portable/proxy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/image.h"
#include "inferd/log.h"
#include "inferd/props.h"
#include "plugin/http_exchange.h"

#define LOG "portable"

typedef struct proxy_inst proxy_inst;

struct portable_proxy {
    _Atomic(portable_host *) host; /* borrowed: set by proxy_bind, read by any instance */
    const portable_manifest *m;    /* borrowed */
    /* An upgrade (portable_proxy_move) holds swap for writing while it moves
     * every instance to the new process; a call holds it for reading only
     * while it picks its host and instance; opening and closing an
     * instance hold it throughout. insts: every instance, under list_mu. */
    pthread_rwlock_t swap;
    pthread_mutex_t list_mu;
    proxy_inst *insts;
    inferd_plugin desc;
    inferd_component *comps;       /* owned, one per decl */
    inferd_route_spec **routes;    /* owned, one array per decl (NULL when none) */
    char *version;                 /* owned */
};

/* A component's proxy is its user_data; its declaration has its index. */
static portable_proxy *proxy_of(const inferd_component *c, const portable_decl **decl)
{
    portable_proxy *p = c ? c->user_data : NULL;
    if (p)
        *decl = &p->m->decls[c - p->comps];
    return p;
}

static portable_host *host_of(const portable_proxy *p) { return atomic_load(&p->host); }

/* An instance's state. */
struct proxy_inst {
    portable_proxy *proxy;
    const portable_decl *decl;
    inferd_instance *self;      /* borrowed: the host instance */
    inferd_value *props;        /* owned: what it was opened with (an upgrade opens it again) */
    portable_inst *pi;          /* in host_of(proxy); changed under swap (write) */
    struct proxy_inst *next;    /* the proxy's list */
};

/* Where one call goes: the host and the plugin's instance, held until
 * leave (an upgrade's drain waits for it). */
typedef struct bound {
    portable_host *h;
    portable_inst *pi;
} bound;

static bound enter(proxy_inst *s)
{
    pthread_rwlock_rdlock(&s->proxy->swap);
    bound b = {host_of(s->proxy), s->pi};
    portable_host_enter(b.h);
    pthread_rwlock_unlock(&s->proxy->swap);
    return b;
}

static void leave(bound b) { portable_host_leave(b.h); }

/* The props as an object; NULL when it cannot be made whole. */
static inferd_value *props_value(const inferd_props *props)
{
    bool ok = true;
    inferd_value *o = inferd_value_object();
    const inferd_prop_spec *s = props ? inferd_props_specs(props) : NULL;
    for (; o && s && s->name; s++) {
        const inferd_value *v = inferd_props_get(props, s->name);
        if (v)
            inferd__put(o, s->name, inferd_value_copy(v), &ok);
    }
    if (!ok) {
        inferd_value_free(o);
        return NULL;
    }
    return o;
}

static inferd_status proxy_init(inferd_instance *self, const inferd_props *props,
                                inferd_error *err)
{
    const portable_decl *decl = NULL;
    portable_proxy *p = proxy_of(inferd_instance_component(self), &decl);
    if (!p || !host_of(p))
        return inferd_error_set(err, INFERD_ESTATE, "portable plugin %s is not started",
                                p ? p->m->name : "?");
    proxy_inst *s = calloc(1, sizeof *s);
    inferd_value *pv = props_value(props);
    if (!s || !pv) {
        free(s);
        inferd_value_free(pv);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    s->proxy = p;
    s->decl = decl;
    s->self = self;
    s->props = pv;
    pthread_rwlock_rdlock(&p->swap);
    inferd_status st = portable_host_open(host_of(p), decl, pv, self, &s->pi, err);
    if (st == INFERD_OK) {
        pthread_mutex_lock(&p->list_mu);
        s->next = p->insts;
        p->insts = s;
        pthread_mutex_unlock(&p->list_mu);
    }
    pthread_rwlock_unlock(&p->swap);
    if (st != INFERD_OK) {
        inferd_value_free(pv);
        free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

static void proxy_deinit(inferd_instance *self)
{
    proxy_inst *s = inferd_instance_state(self);
    if (!s)
        return;
    portable_proxy *p = s->proxy;
    pthread_rwlock_rdlock(&p->swap);
    pthread_mutex_lock(&p->list_mu);
    for (proxy_inst **pp = &p->insts; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&p->list_mu);
    portable_host_close(host_of(p), s->pi);
    pthread_rwlock_unlock(&p->swap);
    inferd_value_free(s->props);
    free(s);
    inferd_instance_set_state(self, NULL);
}

static inferd_status proxy_start(inferd_instance *self, inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    bound b = enter(s);
    inferd_status st = portable_host_start_inst(b.h, b.pi, err);
    leave(b);
    return st;
}

static void proxy_stop(inferd_instance *self)
{
    proxy_inst *s = inferd_instance_state(self);
    if (s) {
        bound b = enter(s);
        portable_host_stop_inst(b.h, b.pi);
        leave(b);
    }
}

static void proxy_close(inferd_instance *self) /* background: stop and deinit */
{
    proxy_stop(self);
    proxy_deinit(self);
}

/* {"args": [...]} with bytes as blobs. */
static inferd_value *args_fields(const inferd_value *const *args, size_t n, proto_blobs *blobs)
{
    inferd_value *f = inferd_value_object(), *arr = inferd_value_array();
    for (size_t i = 0; f && arr && i < n; i++) {
        inferd_value *enc = proto_encode_value(args[i], blobs);
        if (!enc || inferd_value_array_push(arr, enc, NULL) != INFERD_OK) {
            inferd_value_free(enc);
            break;
        }
    }
    if (!f || !arr || inferd_value_array_len(arr) != n ||
        inferd_value_object_set(f, "args", arr, NULL) != INFERD_OK) {
        inferd_value_free(f);
        inferd_value_free(arr);
        return NULL;
    }
    return f;
}

/* Calls op with args and decodes the reply's result into *result (optional). */
static inferd_status call_args(inferd_instance *self, const char *op,
                               const inferd_value *const *args, size_t n, inferd_value **result,
                               inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    proto_blobs blobs = {0};
    inferd_value *fields = args_fields(args, n, &blobs);
    if (!fields) {
        proto_blobs_clear(&blobs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    proto_frame reply = {0};
    bound b = enter(s);
    inferd_status st = portable_host_call(b.h, b.pi, op, fields, blobs.v, blobs.n, &reply, err);
    leave(b);
    proto_blobs_clear(&blobs);
    if (st == INFERD_OK && result) {
        const inferd_value *r = inferd_value_object_get(reply.header, "result");
        st = r ? proto_decode_value(r, &reply, result, err)
               : ((*result = inferd_value_null()) ? INFERD_OK : INFERD_ENOMEM);
    }
    proto_frame_clear(&reply);
    return st;
}

static inferd_status proxy_validate(inferd_instance *self, const inferd_value *const *args,
                                    size_t n, inferd_error *err)
{
    return call_args(self, "validate", args, n, NULL, err);
}

static inferd_status proxy_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                                inferd_value **result, inferd_error *err)
{
    return call_args(self, "exec", args, n, result, err);
}

static inferd_status proxy_collect(inferd_instance *self, const inferd_value *item,
                                   inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    proto_blobs blobs = {0};
    inferd_value *fields = inferd_value_object();
    inferd_value *enc = proto_encode_value(item, &blobs);
    if (!fields || !enc || inferd_value_object_set(fields, "item", enc, err) != INFERD_OK) {
        inferd_value_free(fields);
        proto_blobs_clear(&blobs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    bound b = enter(s);
    inferd_status st = portable_host_call(b.h, b.pi, "collect", fields, blobs.v, blobs.n, NULL,
                                          err);
    leave(b);
    proto_blobs_clear(&blobs);
    return st;
}

static inferd_status proxy_handle(inferd_instance *self, const inferd_value *const *events,
                                  size_t n, inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    proto_blobs blobs = {0};
    inferd_value *fields = args_fields(events, n, &blobs);
    inferd_value *arr = NULL;
    inferd_status st = fields ? INFERD_OK : INFERD_ENOMEM;
    if (st == INFERD_OK) { /* rename "args" to "events" */
        arr = inferd_value_copy(inferd_value_object_get(fields, "args"));
        inferd_value_object_remove(fields, "args", NULL);
        st = inferd_value_object_set(fields, "events", arr, err);
        if (st == INFERD_OK)
            st = inferd_value_object_set(fields, "event", inferd_value_string(s->decl->event),
                                         err);
    }
    if (st != INFERD_OK) {
        inferd_value_free(fields);
        proto_blobs_clear(&blobs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    bound b = enter(s);
    st = portable_host_call(b.h, b.pi, "events", fields, blobs.v, blobs.n, NULL, err);
    leave(b);
    proto_blobs_clear(&blobs);
    return st;
}

/* ---- estimator --------------------------------------------------------------- */

typedef struct est_call {
    inferd_estimate **items; /* owned array; the items are borrowed until done */
    size_t n;
    uint8_t **packed;        /* owned: images repacked without row padding */
} est_call;

static void est_call_free(est_call *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->packed[i]);
    free(c->packed);
    free(c->items);
    free(c);
}

static void est_fail_all(est_call *c, const inferd_error *err)
{
    for (size_t i = 0; i < c->n; i++)
        inferd_estimate_done(c->items[i], NULL, err);
}

static void est_reply(void *ctx, proto_frame *reply, inferd_status st, const inferd_error *err)
{
    est_call *c = ctx;
    if (st != INFERD_OK) {
        est_fail_all(c, err);
        est_call_free(c);
        return;
    }
    const inferd_value *res = inferd_value_object_get(reply->header, "result");
    if (inferd_value_array_len(res) != c->n || !inferd_value_is(res, INFERD_VALUE_ARRAY)) {
        inferd_error e = {0};
        inferd_error_set(&e, INFERD_EPLUGIN,
                         "the plugin answered %zu results for %zu images",
                         inferd_value_array_len(res), c->n);
        est_fail_all(c, &e);
        est_call_free(c);
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        const inferd_value *r = inferd_value_array_get(res, i);
        inferd_error e = {0};
        inferd_value *value = NULL;
        if (inferd_value_bool_or(inferd_value_object_get(r, "ok"), false)) {
            if (proto_decode_value(inferd_value_object_get(r, "value"), reply, &value, &e) ==
                INFERD_OK && value) {
                inferd_estimate_done(c->items[i], value, NULL);
                continue;
            }
        } else {
            inferd_error_set(&e, INFERD_EPLUGIN, "%s",
                             inferd_value_string_or(
                                 inferd_value_object_get(inferd_value_object_get(r, "error"),
                                                         "message"),
                                 "the plugin failed this image without a message"));
        }
        inferd_estimate_done(c->items[i], NULL, &e);
    }
    est_call_free(c);
}

static void put_rect(inferd_value *o, const char *key, const inferd_rect *r, bool *ok)
{
    inferd_value *v = inferd_value_object();
    inferd__put(v, "x", inferd_value_int(r->x), ok);
    inferd__put(v, "y", inferd_value_int(r->y), ok);
    inferd__put(v, "width", inferd_value_int(r->width), ok);
    inferd__put(v, "height", inferd_value_int(r->height), ok);
    inferd__put(o, key, v, ok);
}

static void put_image_ref(inferd_value *o, const char *key, const inferd_image *img, long blob,
                          bool *ok)
{
    inferd_value *ref = inferd_value_object(), *d = inferd_value_object();
    inferd__put(d, "blob", inferd_value_int(blob), ok);
    inferd__put(d, "width", inferd_value_int(img->width), ok);
    inferd__put(d, "height", inferd_value_int(img->height), ok);
    inferd__put_str(d, "format", "rgb8", ok);
    inferd__put(ref, "$image", d, ok);
    inferd__put(o, key, ref, ok);
}

static inferd_status proxy_estimate(inferd_instance *self, inferd_estimate *const *items,
                                    size_t n, inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    est_call *c = calloc(1, sizeof *c);
    proto_blobs blobs = {0};
    inferd_value *fields = inferd_value_object(), *arr = inferd_value_array();
    inferd_status st = c && fields && arr ? INFERD_OK : INFERD_ENOMEM;
    if (st == INFERD_OK) {
        c->items = calloc(n, sizeof *c->items);
        c->packed = calloc(n, sizeof *c->packed);
        st = c->items && c->packed ? INFERD_OK : INFERD_ENOMEM;
    }
    for (size_t i = 0; st == INFERD_OK && i < n; i++) {
        const inferd_image *img = inferd_estimate_image(items[i]);
        size_t row = (size_t)img->width * 3;
        const uint8_t *data = img->data;
        if (img->stride != row) { /* the protocol's images have no padding */
            uint8_t *buf = malloc(row * img->height);
            if (!buf) {
                st = INFERD_ENOMEM;
                break;
            }
            for (uint32_t y = 0; y < img->height; y++)
                memcpy(buf + y * row, img->data + y * img->stride, row);
            c->packed[i] = buf;
            data = buf;
        }
        c->items[i] = items[i];
        c->n = i + 1;
        long b = proto_blobs_add(&blobs, data, row * img->height);
        bool ok = b >= 0;
        inferd_value *item = inferd_value_object();
        inferd_rect area;
        put_image_ref(item, "image", img, b, &ok);
        if (inferd_estimate_area(items[i], &area))
            put_rect(item, "area", &area, &ok);
        else
            inferd__put(item, "area", inferd_value_null(), &ok);
        inferd__put(item, "options", props_value(inferd_estimate_options(items[i])), &ok);
        inferd__push(arr, item, &ok);
        st = ok ? INFERD_OK : INFERD_ENOMEM;
    }
    if (st == INFERD_OK) {
        st = inferd_value_object_set(fields, "items", arr, NULL);
        arr = NULL;
    }
    if (st != INFERD_OK) {
        inferd_value_free(fields);
        inferd_value_free(arr);
        proto_blobs_clear(&blobs);
        if (c) {
            c->n = 0;
            est_call_free(c);
        }
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    /* The reply completes the items from the host's thread; a refused call
     * leaves them to the host's batcher, which fails them with err. */
    bound b = enter(s);
    st = portable_host_call_async(b.h, b.pi, "estimate", fields, blobs.v, blobs.n, est_reply, c,
                                  err);
    leave(b);
    proto_blobs_clear(&blobs);
    if (st != INFERD_OK) {
        c->n = 0;
        est_call_free(c);
    }
    return st;
}

/* ---- background routes ---------------------------------------------------------- */

/* An object being built by callbacks, and whether it is whole. */
typedef struct built {
    inferd_value *obj;
    bool ok;
} built;

static void add_pair(void *ctx, const char *k, const char *v)
{
    built *b = ctx;
    char low[256];
    size_t i = 0;
    for (; k[i] && i < sizeof low - 1; i++)
        low[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
    low[i] = '\0';
    inferd__put_str(b->obj, low, v ? v : "", &b->ok);
}

static void add_query(void *ctx, const char *k, const char *v)
{
    built *b = ctx;
    inferd__put_str(b->obj, k, v ? v : "", &b->ok);
}

static inferd_status proxy_route(inferd_instance *self, const inferd_http_request *req,
                                 inferd_http_response *resp, inferd_error *err)
{
    proxy_inst *s = inferd_instance_state(self);
    inferd_value *fields = inferd_value_object(), *query = inferd_value_object(),
                 *headers = inferd_value_object();
    proto_blobs blobs = {0};
    long b = proto_blobs_add(&blobs, req->body ? req->body : "", req->body_len);
    inferd_value *body = b < 0 ? NULL : inferd_value_object();
    if (!fields || !query || !headers || !body) {
        inferd_value_free(fields), inferd_value_free(query), inferd_value_free(headers);
        inferd_value_free(body);
        proto_blobs_clear(&blobs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    built q = {query, true}, h = {headers, true};
    if (req->each) {
        req->each(req->ctx, INFERD_HTTP_LOOKUP_QUERY, add_query, &q);
        req->each(req->ctx, INFERD_HTTP_LOOKUP_HEADER, add_pair, &h);
    }
    bool ok = q.ok && h.ok;
    inferd__put(body, "$blob", inferd_value_int(b), &ok);
    inferd__put_str(fields, "method", req->method, &ok);
    inferd__put_str(fields, "path", req->path, &ok);
    inferd__put(fields, "query", query, &ok);
    inferd__put(fields, "headers", headers, &ok);
    inferd__put(fields, "body", body, &ok);
    if (!ok) {
        inferd_value_free(fields);
        proto_blobs_clear(&blobs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    proto_frame reply = {0};
    bound bd = enter(s);
    inferd_status st = portable_host_call(bd.h, bd.pi, "route", fields, blobs.v, blobs.n, &reply,
                                          err);
    leave(bd);
    proto_blobs_clear(&blobs);
    if (st != INFERD_OK)
        return st;
    inferd_value *res = NULL;
    st = proto_decode_value(inferd_value_object_get(reply.header, "result"), &reply, &res, err);
    proto_frame_clear(&reply);
    if (st != INFERD_OK)
        return st;
    int64_t status = inferd_value_int_or(inferd_value_object_get(res, "status"), 200);
    inferd_http_response_set_status(resp, (unsigned)(status < 0 ? 0 : status));
    const inferd_value *hdrs = inferd_value_object_get(res, "headers");
    const char *key;
    inferd_value *val;
    for (size_t i = 0; st == INFERD_OK && inferd_value_object_entry(hdrs, i, &key, &val); i++)
        st = inferd_http_response_set_header(resp, key, inferd_value_string_or(val, ""), err);
    const inferd_value *bv = inferd_value_object_get(res, "body");
    const void *data = NULL;
    size_t len = 0;
    if (st == INFERD_OK && inferd_value_is(bv, INFERD_VALUE_BYTES))
        inferd_value_get_bytes(bv, &data, &len, NULL);
    else if (st == INFERD_OK && inferd_value_is(bv, INFERD_VALUE_STRING))
        inferd_value_get_string(bv, (const char **)&data, &len, NULL);
    if (st == INFERD_OK && len)
        st = inferd_http_response_set_body(resp, data, len, err);
    inferd_value_free(res);
    return st;
}

/* ---- the descriptor ----------------------------------------------------------------- */

static const inferd_function_ops function_ops = {sizeof function_ops, proxy_init, proxy_validate,
                                                 proxy_exec, proxy_deinit};
static const inferd_estimator_ops estimator_ops = {sizeof estimator_ops, proxy_init,
                                                   proxy_estimate, proxy_deinit};
static const inferd_event_ops event_ops = {sizeof event_ops, proxy_init, proxy_handle,
                                           proxy_deinit};
static const inferd_background_ops background_ops = {sizeof background_ops, proxy_init,
                                                     proxy_start, proxy_close};
static const inferd_source_ops source_ops = {sizeof source_ops, proxy_init, proxy_start,
                                             proxy_stop, proxy_deinit};
static const inferd_sink_ops sink_ops = {sizeof sink_ops, proxy_init, proxy_collect,
                                         proxy_deinit};

static const void *ops_of(inferd_component_kind k)
{
    switch (k) {
    case INFERD_KIND_FUNCTION: return &function_ops;
    case INFERD_KIND_ESTIMATOR: return &estimator_ops;
    case INFERD_KIND_EVENT: return &event_ops;
    case INFERD_KIND_BACKGROUND: return &background_ops;
    case INFERD_KIND_SOURCE: return &source_ops;
    case INFERD_KIND_SINK: return &sink_ops;
    default: return NULL;
    }
}

inferd_status portable_proxy_new(const portable_manifest *m, const inferd_registry *reg,
                                 portable_proxy **out, inferd_error *err)
{
    *out = NULL;
    portable_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    p->m = m;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A steady stream of calls must not keep an upgrade waiting forever. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&p->swap, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&p->list_mu, NULL);
    p->comps = calloc(m->n_decls ? m->n_decls : 1, sizeof *p->comps);
    p->routes = calloc(m->n_decls ? m->n_decls : 1, sizeof *p->routes);
    if (!p->comps || !p->routes) {
        portable_proxy_free(p);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_decls; i++) {
        const portable_decl *d = &m->decls[i];
        inferd_component *c = &p->comps[i];
        *c = (inferd_component){.size = sizeof *c, .kind = d->kind, .name = d->name,
                                .description = d->description, .props = d->props,
                                .broker_name = d->broker, .event_name = d->event,
                                .min_args = d->min_args, .max_args = d->max_args,
                                .flags = d->aggregate ? INFERD_COMPONENT_AGGREGATE : 0,
                                .ops = ops_of(d->kind), .user_data = p};
        if (d->kind == INFERD_KIND_ESTIMATOR && reg) {
            /* A replacement takes the same request options as what it replaces. */
            const inferd_plugin_info *owner = NULL;
            for (size_t k = 0; k < inferd_registry_plugin_count(reg); k++) {
                const inferd_plugin_info *pl = inferd_registry_plugin_at(reg, k);
                for (size_t j = 0; j < pl->descriptor->n_components; j++) {
                    const inferd_component *o = inferd_plugin_component(pl->descriptor, j);
                    if (o->kind == INFERD_KIND_ESTIMATOR && o->broker_name && d->broker &&
                        strcmp(o->broker_name, d->broker) == 0 && !owner) {
                        owner = pl;
                        c->request_options = inferd_component_request_options(o);
                    }
                }
            }
        }
        if (d->n_routes) {
            inferd_route_spec *r = calloc(d->n_routes + 1, sizeof *r);
            if (!r) {
                portable_proxy_free(p);
                return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            }
            for (size_t k = 0; k < d->n_routes; k++)
                r[k] = (inferd_route_spec){d->routes[k].method, d->routes[k].path, proxy_route};
            p->routes[i] = r;
            c->routes = r;
        }
    }
    p->version = strdup(m->version);
    p->desc = (inferd_plugin){.magic = INFERD_PLUGIN_MAGIC, .abi_major = INFERD_ABI_MAJOR,
                              .abi_minor = INFERD_ABI_MINOR, .size = sizeof p->desc,
                              .name = m->name, .version = p->version,
                              .description = m->description, .components = p->comps,
                              .n_components = m->n_decls};
    *out = p;
    return INFERD_OK;
}

const inferd_plugin *portable_proxy_descriptor(const portable_proxy *p) { return &p->desc; }

void portable_proxy_bind(portable_proxy *p, portable_host *h) { atomic_store(&p->host, h); }

void portable_proxy_free(portable_proxy *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->routes && i < p->m->n_decls; i++)
        free(p->routes[i]);
    free(p->routes);
    free(p->comps);
    free(p->version);
    pthread_rwlock_destroy(&p->swap);
    pthread_mutex_destroy(&p->list_mu);
    free(p);
}

inferd_status portable_proxy_move(portable_proxy *p, portable_host *to, inferd_error *err)
{
    pthread_rwlock_wrlock(&p->swap);
    portable_host *from = host_of(p);
    size_t n = 0;
    for (proxy_inst *s = p->insts; s; s = s->next)
        n++;
    portable_inst **fresh = calloc(n ? n : 1, sizeof *fresh);
    inferd_status st = fresh ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    size_t done = 0;
    for (proxy_inst *s = p->insts; s && st == INFERD_OK; s = s->next, done++) {
        st = portable_host_open(to, s->decl, s->props, s->self, &fresh[done], err);
        if (st == INFERD_OK && portable_host_inst_started(from, s->pi) &&
            (st = portable_host_start_inst(to, fresh[done], err)) != INFERD_OK)
            portable_host_close(to, fresh[done]);
        if (st != INFERD_OK)
            inferd_error_prefix(err, "its %s %s (instance %s)",
                                inferd_component_kind_name(s->decl->kind), s->decl->name,
                                inferd_instance_name(s->self));
    }
    if (st != INFERD_OK) {
        /* The last one failed and is closed; the ones before it go. */
        for (size_t i = 0; i + 1 < done; i++)
            portable_host_close(to, fresh[i]);
    } else {
        size_t i = 0;
        for (proxy_inst *s = p->insts; s; s = s->next)
            s->pi = fresh[i++];
        atomic_store(&p->host, to);
    }
    pthread_rwlock_unlock(&p->swap);
    free(fresh);
    return st;
}
