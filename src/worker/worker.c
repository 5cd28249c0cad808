/* worker/worker.c: a C plugin in its own process, behind the portable
 * protocol (worker.h).
 *
 * One thread: the worker reads a frame, answers it, reads the next. Calls
 * run one at a time, pings included, so portable.heartbeat_timeout_ms must
 * be longer than the plugin's longest call. What the plugin publishes,
 * counts or measures stays in the worker; what it logs goes to its stderr,
 * which the daemon logs under the plugin's name.
 *
 * It isolates the components the protocol carries whose calls a worker can
 * make on its own: functions, sinks, event components and background
 * components with their routes. A plugin with an element (pipelines call
 * it buffer by buffer, in process), an estimator or a source is refused with
 * the reason when the daemon describes it.
 */
#include "worker/worker.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/build_value.h"
#include "core/clock.h"
#include "inferd/log.h"
#include "inferd/registry.h"
#include "plugin/http_exchange.h"
#include "portable/proto.h"

#define LOG "worker"
#define SEND_TIMEOUT_US (30u * 1000 * 1000)

/* One open instance, by the host's id ("i3"). */
typedef struct winst {
    char *id;
    inferd_instance *inst;
    struct winst *next;
} winst;

typedef struct worker {
    inferd_registry *reg;
    const inferd_plugin_info *plugin;
    int fd;
    winst *insts;
} worker;

static int say(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "inferd worker: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* Loads the plugin's file into a registry of its own. */
static inferd_status load(const char *path, worker *w, inferd_error *err)
{
    inferd_status st = inferd_registry_new(&w->reg, err);
    if (st == INFERD_OK)
        st = inferd_registry_load_file(w->reg, path, err);
    if (st == INFERD_OK)
        w->plugin = inferd_registry_plugin_at(w->reg, 0);
    return st;
}

/* ---- --describe -------------------------------------------------------------- */

/* A component's properties as a manifest declares them (string, int,
 * double, bool); a type the manifest has not puts why. */
static inferd_value *manifest_props(const inferd_component *c, char *why, size_t cap)
{
    inferd_value *arr = inferd_value_array();
    bool ok = true;
    for (const inferd_prop_spec *s = c->props; s && s->name && !why[0]; s++) {
        const char *type = NULL;
        switch (s->type) {
        case INFERD_PROP_TYPE_STRING:
        case INFERD_PROP_TYPE_ENUM:
            type = "string";
            break;
        case INFERD_PROP_TYPE_INT:
        case INFERD_PROP_TYPE_UINT:
            type = "int";
            break;
        case INFERD_PROP_TYPE_FLOAT:
        case INFERD_PROP_TYPE_DOUBLE:
            type = "double";
            break;
        case INFERD_PROP_TYPE_BOOL:
            type = "bool";
            break;
        default:
            snprintf(why, cap, "property %s of %s is a %s, which a worker's manifest cannot "
                     "declare (string, int, double, bool)", s->name, c->name,
                     inferd_prop_type_name(s->type));
            continue;
        }
        inferd_value *p = inferd_value_object();
        inferd__put_str(p, "name", s->name, &ok);
        inferd__put_str(p, "type", type, &ok);
        if (s->default_value)
            inferd__put_str(p, "default", s->default_value, &ok);
        inferd__put_str(p, "description", s->description ? s->description : "", &ok);
        inferd__push(arr, p, &ok);
    }
    return arr;
}

static int describe(const char *path)
{
    worker w = {.fd = -1};
    inferd_error err = {0};
    if (load(path, &w, &err) != INFERD_OK) {
        inferd_registry_free(w.reg);
        return say("%s%s", err.message, "");
    }
    const inferd_plugin *d = w.plugin->descriptor;
    bool ok = true;
    inferd_value *m = inferd_value_object(), *fns = inferd_value_array();
    inferd__put_str(m, "version", d->version, &ok);
    inferd__put_str(m, "language", "native", &ok);
    inferd__put_str(m, "executable", "inferd", &ok); /* the daemon's own binary */
    inferd__put_str(m, "description", d->description ? d->description : "", &ok);
    inferd_value *sinks = inferd_value_array(), *events = inferd_value_array(),
                 *bgs = inferd_value_array();
    char why[512] = "";
    for (size_t i = 0; i < d->n_components && !why[0]; i++) {
        const inferd_component *c = inferd_plugin_component(d, i);
        inferd_value *f = inferd_value_object();
        inferd__put_str(f, "name", c->name, &ok);
        inferd__put_str(f, "description", c->description ? c->description : "", &ok);
        inferd__put(f, "props", manifest_props(c, why, sizeof why), &ok);
        if (c->kind == INFERD_KIND_FUNCTION) {
            inferd__put(f, "minArgs", inferd_value_int(c->min_args), &ok);
            inferd__put(f, "maxArgs", inferd_value_int(c->max_args), &ok);
            inferd__put(f, "aggregate", inferd_value_bool(c->flags & INFERD_COMPONENT_AGGREGATE),
                        &ok);
            inferd__push(fns, f, &ok);
        } else if (c->kind == INFERD_KIND_SINK) {
            inferd__push(sinks, f, &ok);
        } else if (c->kind == INFERD_KIND_EVENT) {
            inferd__put_str(f, "event", c->event_name, &ok);
            inferd__push(events, f, &ok);
        } else if (c->kind == INFERD_KIND_BACKGROUND) {
            inferd_value *routes = inferd_value_array();
            for (const inferd_route_spec *rt = c->routes; rt && rt->method; rt++) {
                inferd_value *r = inferd_value_object();
                inferd__put_str(r, "method", rt->method, &ok);
                inferd__put_str(r, "path", rt->path, &ok);
                inferd__push(routes, r, &ok);
            }
            inferd__put(f, "routes", routes, &ok);
            inferd__push(bgs, f, &ok);
        } else {
            inferd_value_free(f);
            snprintf(why, sizeof why, "component %s is a%s %s, which cannot run isolated "
                     "(functions, sinks, event and background components can)", c->name,
                     c->kind == INFERD_KIND_ELEMENT || c->kind == INFERD_KIND_ESTIMATOR ? "n" : "",
                     inferd_component_kind_name(c->kind));
        }
    }
    inferd__put(m, "functions", fns, &ok);
    inferd__put(m, "sinks", sinks, &ok);
    inferd__put(m, "events", events, &ok);
    inferd__put(m, "backgrounds", bgs, &ok);
    if (why[0]) {
        fprintf(stderr, "inferd worker: plugin %s: %s: activate it in the daemon instead\n",
                d->name, why);
        inferd_value_free(m);
        inferd_registry_free(w.reg); /* the names were the plugin's */
        return 1;
    }
    inferd_value *out = inferd_value_object();
    inferd__put_str(out, "name", d->name, &ok);
    inferd__put(out, "manifest", m, &ok);
    char *text = NULL;
    if (ok)
        inferd_value_to_json(out, 0, &text, NULL, NULL);
    inferd_value_free(out);
    inferd_registry_free(w.reg);
    if (!text)
        return say("%s%s", "out of memory", "");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- serving ------------------------------------------------------------------- */

static winst *find(worker *w, const char *id)
{
    for (winst *i = w->insts; i; i = i->next)
        if (strcmp(i->id, id) == 0)
            return i;
    return NULL;
}

/* A reply: result (taken; NULL: null) when err is NULL, else the error. */
static bool reply(worker *w, int64_t id, inferd_value *result, const inferd_error *err)
{
    bool ok = true;
    inferd_value *h = inferd_value_object();
    proto_blobs blobs = {0};
    inferd__put_str(h, "type", "reply", &ok);
    inferd__put(h, "id", inferd_value_int(id), &ok);
    inferd__put(h, "ok", inferd_value_bool(err == NULL), &ok);
    if (err) {
        inferd_value *e = inferd_value_object();
        inferd__put_str(e, "code", err->code == INFERD_EUNSUPPORTED ? "unsupported" : "plugin",
                        &ok);
        inferd__put_str(e, "message", err->message[0] ? err->message : "failed", &ok);
        inferd__put(h, "error", e, &ok);
    } else {
        inferd_value *enc = result ? proto_encode_value(result, &blobs) : inferd_value_null();
        ok = ok && enc != NULL;
        inferd__put(h, "result", enc, &ok);
    }
    inferd_error e2 = {0};
    bool sent = ok && proto_send(w->fd, h, blobs.v, blobs.n, -1,
                                 inferd__now_us() + SEND_TIMEOUT_US, &e2) == INFERD_OK;
    proto_blobs_clear(&blobs);
    inferd_value_free(h);
    inferd_value_free(result); /* the blobs pointed into it until sent */
    return sent;
}

static inferd_value *call_open(worker *w, const inferd_value *h, inferd_error *err)
{
    const char *id = inferd_value_string_or(inferd_value_object_get(h, "instance"), "");
    const char *kind = inferd_value_string_or(inferd_value_object_get(h, "kind"), "");
    const char *comp = inferd_value_string_or(inferd_value_object_get(h, "component"), "");
    const inferd_value *props = inferd_value_object_get(h, "props");
    if (strcmp(kind, "function") != 0 && strcmp(kind, "sink") != 0 &&
        strcmp(kind, "event") != 0 && strcmp(kind, "background") != 0) {
        inferd_error_set(err, INFERD_EUNSUPPORTED, "a %s cannot run isolated", kind);
        return NULL;
    }
    winst *wi = calloc(1, sizeof *wi);
    if (!wi || !(wi->id = strdup(id))) {
        free(wi);
        inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        return NULL;
    }
    if (inferd_instance_create(w->reg, comp, NULL, inferd_value_object_len(props) ? props : NULL,
                               &wi->inst, err) != INFERD_OK) {
        free(wi->id);
        free(wi);
        return NULL;
    }
    wi->next = w->insts;
    w->insts = wi;
    return inferd_value_null();
}

static void call_close(worker *w, const char *id)
{
    for (winst **p = &w->insts; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            winst *wi = *p;
            *p = wi->next;
            inferd_instance_destroy(wi->inst);
            free(wi->id);
            free(wi);
            return;
        }
}

/* validate and exec: the frame's args (blobs as bytes) into the instance. */
static inferd_value *call_args(worker *w, const proto_frame *f, bool exec, inferd_error *err)
{
    const char *id = inferd_value_string_or(inferd_value_object_get(f->header, "instance"), "");
    winst *wi = find(w, id);
    if (!wi) {
        inferd_error_set(err, INFERD_ENOTFOUND, "no open instance %s", id);
        return NULL;
    }
    inferd_value *args = NULL;
    if (proto_decode_value(inferd_value_object_get(f->header, "args"), f, &args, err) !=
            INFERD_OK ||
        !inferd_value_is(args, INFERD_VALUE_ARRAY)) {
        inferd_value_free(args);
        if (!err->message[0])
            inferd_error_set(err, INFERD_EINVAL, "the call has no args array");
        return NULL;
    }
    size_t n = inferd_value_array_len(args);
    const inferd_value **argv = calloc(n ? n : 1, sizeof *argv);
    for (size_t i = 0; argv && i < n; i++)
        argv[i] = inferd_value_array_get(args, i);
    inferd_value *result = NULL;
    inferd_status st = !argv ? inferd_error_set(err, INFERD_ENOMEM, "out of memory")
                       : exec ? inferd_instance_exec(wi->inst, argv, n, &result, err)
                              : inferd_instance_validate(wi->inst, argv, n, err);
    free(argv);
    inferd_value_free(args);
    if (st != INFERD_OK) {
        inferd_value_free(result);
        return NULL;
    }
    return result ? result : inferd_value_null();
}

static winst *instance_of(worker *w, const inferd_value *h, inferd_error *err)
{
    const char *id = inferd_value_string_or(inferd_value_object_get(h, "instance"), "");
    winst *wi = find(w, id);
    if (!wi)
        inferd_error_set(err, INFERD_ENOTFOUND, "no open instance %s", id);
    return wi;
}

/* collect (a sink's item) and events (an event component's batch). */
static inferd_value *call_items(worker *w, const proto_frame *f, bool events, inferd_error *err)
{
    winst *wi = instance_of(w, f->header, err);
    inferd_value *v = NULL;
    if (!wi || proto_decode_value(inferd_value_object_get(f->header, events ? "events" : "item"),
                                  f, &v, err) != INFERD_OK)
        return NULL;
    inferd_status st;
    if (events) {
        size_t n = inferd_value_array_len(v);
        const inferd_value **ev = calloc(n ? n : 1, sizeof *ev);
        for (size_t i = 0; ev && i < n; i++)
            ev[i] = inferd_value_array_get(v, i);
        st = ev ? inferd_instance_handle(wi->inst, ev, n, err)
                : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        free(ev);
    } else {
        st = inferd_instance_collect(wi->inst, v, err);
    }
    inferd_value_free(v);
    return st == INFERD_OK ? inferd_value_null() : NULL;
}

/* A route call's request, as a handler reads it: lookups in its objects. */
typedef struct route_req {
    const inferd_value *query, *headers;
} route_req;

static const char *route_lookup(void *ctx, int kind, const char *key)
{
    route_req *r = ctx;
    const inferd_value *o = kind == INFERD_HTTP_LOOKUP_QUERY ? r->query : r->headers;
    const char *k;
    inferd_value *v;
    for (size_t i = 0; inferd_value_object_entry(o, i, &k, &v); i++)
        if (kind == INFERD_HTTP_LOOKUP_QUERY ? strcmp(k, key) == 0 : strcasecmp(k, key) == 0)
            return inferd_value_string_or(v, NULL);
    return NULL;
}

static void route_each(void *ctx, int kind, void (*fn)(void *, const char *, const char *),
                       void *fn_ctx)
{
    route_req *r = ctx;
    const inferd_value *o = kind == INFERD_HTTP_LOOKUP_QUERY ? r->query : r->headers;
    const char *k;
    inferd_value *v;
    for (size_t i = 0; inferd_value_object_entry(o, i, &k, &v); i++)
        fn(fn_ctx, k, inferd_value_string_or(v, ""));
}

/* A background component's route: its handler for the method and path;
 * the result {"status", "headers", "body"} as the daemon's proxy reads it. */
static inferd_value *call_route(worker *w, const proto_frame *f, inferd_error *err)
{
    winst *wi = instance_of(w, f->header, err);
    if (!wi)
        return NULL;
    const inferd_value *h = f->header;
    const char *method = inferd_value_string_or(inferd_value_object_get(h, "method"), "");
    const char *path = inferd_value_string_or(inferd_value_object_get(h, "path"), "");
    const inferd_component *c = inferd_instance_component(wi->inst);
    const inferd_route_spec *rt = NULL, *any = NULL;
    for (const inferd_route_spec *r = c->routes; r && r->method; r++) {
        if (strcmp(r->path, path) != 0)
            continue;
        if (strcasecmp(r->method, method) == 0 ||
            (strcasecmp(method, "HEAD") == 0 && strcasecmp(r->method, "GET") == 0 && !rt))
            rt = r;
        else if (strcmp(r->method, "*") == 0)
            any = r;
    }
    rt = rt ? rt : any;
    if (!rt) {
        inferd_error_set(err, INFERD_ENOTFOUND, "no route %s %s", method, path);
        return NULL;
    }
    inferd_value *body = NULL;
    if (proto_decode_value(inferd_value_object_get(h, "body"), f, &body, err) != INFERD_OK)
        return NULL;
    const void *data = NULL;
    size_t len = 0;
    inferd_value_get_bytes(body, &data, &len, NULL);
    route_req rr = {inferd_value_object_get(h, "query"), inferd_value_object_get(h, "headers")};
    inferd_http_request req = {.method = method, .path = path, .body = data, .body_len = len,
                               .lookup = route_lookup, .each = route_each, .ctx = &rr};
    inferd_http_response resp;
    inferd_http_response_init(&resp);
    inferd_status st = inferd_instance_route(wi->inst, rt->handler, &req, &resp, err);
    inferd_value_free(body);
    inferd_value *out = NULL;
    if (st == INFERD_OK) {
        bool ok = true;
        inferd_value *hdrs = inferd_value_object();
        out = inferd_value_object();
        inferd__put(out, "status", inferd_value_int(resp.status), &ok);
        for (size_t i = 0; i < resp.n_headers; i++)
            inferd__put_str(hdrs, resp.headers[i].name, resp.headers[i].value, &ok);
        inferd__put(out, "headers", hdrs, &ok);
        inferd__put(out, "body", inferd_value_bytes(resp.body ? resp.body : "", resp.body_len),
                    &ok);
        if (!ok) {
            inferd_value_free(out);
            out = NULL;
            inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
    }
    inferd_http_response_clear(&resp);
    return out;
}

/* One frame from the host: false ends the worker. */
static bool handle(worker *w, const proto_frame *f)
{
    const char *type = inferd_value_string_or(inferd_value_object_get(f->header, "type"), "");
    if (strcmp(type, "welcome") == 0)
        return true;
    if (strcmp(type, "refused") == 0) {
        fprintf(stderr, "inferd worker: the daemon refused it: %s\n",
                inferd_value_string_or(inferd_value_object_get(f->header, "message"), "?"));
        return false;
    }
    if (strcmp(type, "call") != 0)
        return true;
    int64_t id = inferd_value_int_or(inferd_value_object_get(f->header, "id"), 0);
    const char *op = inferd_value_string_or(inferd_value_object_get(f->header, "op"), "");
    inferd_error err = {0};
    inferd_value *result = NULL;
    if (strcmp(op, "ping") == 0 || strcmp(op, "stop") == 0) {
        result = inferd_value_null(); /* a background's stop is part of its close */
    } else if (strcmp(op, "start") == 0) {
        winst *wi = instance_of(w, f->header, &err);
        if (wi && inferd_instance_start(wi->inst, &err) == INFERD_OK)
            result = inferd_value_null();
    } else if (strcmp(op, "collect") == 0 || strcmp(op, "events") == 0) {
        result = call_items(w, f, strcmp(op, "events") == 0, &err);
    } else if (strcmp(op, "route") == 0) {
        result = call_route(w, f, &err);
    } else if (strcmp(op, "open") == 0) {
        result = call_open(w, f->header, &err);
    } else if (strcmp(op, "close") == 0) {
        call_close(w, inferd_value_string_or(inferd_value_object_get(f->header, "instance"), ""));
        result = inferd_value_null();
    } else if (strcmp(op, "exec") == 0 || strcmp(op, "validate") == 0) {
        result = call_args(w, f, strcmp(op, "exec") == 0, &err);
    } else {
        inferd_error_set(&err, INFERD_EUNSUPPORTED, "an isolated C plugin has no op '%s'", op);
    }
    return reply(w, id, result, result ? NULL : &err);
}

static int serve(const char *path)
{
    const char *sock = getenv("INFERD_SOCKET");
    if (!sock || !*sock)
        return say("%s%s", "INFERD_SOCKET is not set: the daemon starts workers, not people "
                   "(plugins.isolated in docs/plugins.md)", "");
    worker w = {.fd = -1};
    inferd_error err = {0};
    if (load(path, &w, &err) != INFERD_OK) {
        inferd_registry_free(w.reg);
        return say("%s%s", err.message, "");
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
    w.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (w.fd < 0 || connect(w.fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        inferd_registry_free(w.reg);
        return say("cannot connect to %s: %s", sock, strerror(e));
    }
    /* The hello: its name and components, as the daemon's manifest has them. */
    bool ok = true;
    const inferd_plugin *d = w.plugin->descriptor;
    inferd_value *hello = inferd_value_object(), *comps = inferd_value_array();
    inferd__put_str(hello, "type", "hello", &ok);
    inferd__put(hello, "protocol", inferd_value_int(PROTO_VERSION), &ok);
    inferd__put_str(hello, "name", d->name, &ok);
    inferd__put_str(hello, "version", d->version, &ok);
    for (size_t i = 0; i < d->n_components; i++) {
        const inferd_component *c = inferd_plugin_component(d, i);
        inferd_value *e = inferd_value_object();
        inferd__put_str(e, "kind", inferd_component_kind_name(c->kind), &ok);
        inferd__put_str(e, "name", c->name, &ok);
        inferd__put(e, "aggregate", inferd_value_bool(c->flags & INFERD_COMPONENT_AGGREGATE), &ok);
        inferd__push(comps, e, &ok);
    }
    inferd__put(hello, "components", comps, &ok);
    bool running = ok && proto_send(w.fd, hello, NULL, 0, -1,
                                    inferd__now_us() + SEND_TIMEOUT_US, &err) == INFERD_OK;
    inferd_value_free(hello);
    proto_reader rd;
    proto_reader_init(&rd);
    while (running) {
        struct pollfd p = {.fd = w.fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
        long got = proto_reader_fill(&rd, w.fd);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
            break; /* the daemon closed the connection: the end */
        for (;;) {
            proto_frame f = {0};
            int have = 0;
            if (proto_reader_next(&rd, &f, &have, &err) != INFERD_OK) {
                fprintf(stderr, "inferd worker: %s\n", err.message);
                running = false;
                break;
            }
            if (!have)
                break;
            running = handle(&w, &f);
            proto_frame_clear(&f);
            if (!running)
                break;
        }
    }
    proto_reader_clear(&rd);
    while (w.insts)
        call_close(&w, w.insts->id);
    close(w.fd);
    inferd_registry_free(w.reg);
    return 0;
}

int worker_main(int argc, char **argv)
{
    bool describe_only = argc == 3 && strcmp(argv[1], "--describe") == 0;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: inferd worker [--describe] PLUGIN.so\n\n"
               "Runs a C plugin in a process of its own, for a daemon whose plugins.isolated\n"
               "names it (the daemon starts it; docs/plugins.md). --describe prints the\n"
               "plugin as a portable manifest, or says why it cannot run isolated.\n");
        return 0;
    }
    if (!describe_only && argc != 2)
        return say("%s%s", "usage: inferd worker [--describe] PLUGIN.so", "") + 1;
    /* Its stderr is the daemon's log of the plugin; describing says only
     * what goes wrong. */
    if (describe_only)
        inferd_log_configure("warn", NULL);
    return describe_only ? describe(argv[2]) : serve(argv[1]);
}
