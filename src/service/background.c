/* service/background.c: background components, their HTTP routes, and the
 * event components' subscriptions (see service.h).
 *
 * Owns one instance of every background and every event component of the
 * registry (props from the config key plugin_settings, by component name),
 * the event subscriptions, and the table of plugin routes. The routes are
 * checked before any instance is made: a route on the built-in API's paths,
 * or a path that two components both declare, stops the start-up.
 *
 * A route handler runs on an HTTP thread without any lock held; a count of
 * running handlers per component lets stop wait for them before the
 * component is closed, and a component that is not running (not started yet,
 * or stopping) answers 503.
 */
#include "service/service.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events/bus.h"
#include "inferd/log.h"

#define LOG "background"
/* How long stopping waits for an event component to handle what is queued. */
#define EVENTS_DRAIN_MS 2000

typedef struct bg_component {
    const inferd_component *comp;     /* borrowed from the registry */
    const inferd_plugin_info *plugin; /* borrowed from the registry */
    inferd_instance *inst;            /* owned; NULL once closed */
    inferd_event_sub *sub;            /* owned: event components only */
    bool started;                     /* guarded by b->mu */
    unsigned in_flight;               /* guarded by b->mu: its handlers running now */
} bg_component;

typedef struct bg_route {
    const inferd_route_spec *spec; /* borrowed from the component */
    bg_component *owner;           /* borrowed from b->bg */
} bg_route;

struct svc_background {
    svc *s;                  /* borrowed */
    bg_component *bg, *ev;   /* owned: background and event components, registry order */
    size_t n_bg, n_ev;
    bg_route *routes;        /* owned */
    size_t n_routes;
    pthread_mutex_t mu;
    pthread_cond_t idle;     /* a handler returned */
    bool stopped;
};

/* "background teapot (plugin teapot 1.0)": how messages name a component. */
#define WHO_FMT "%s %s (plugin %s %s)"
#define WHO(c) inferd_component_kind_name((c)->comp->kind), (c)->comp->name, \
               (c)->plugin->name, (c)->plugin->version

/* Whether a request's method is served by a route's method. */
static bool method_matches(const char *route, const char *req)
{
    return strcasecmp(route, req) == 0 ||
           (strcasecmp(req, "HEAD") == 0 && strcasecmp(route, "GET") == 0);
}

/* Adds c's routes to b->routes, refusing reserved paths and clashes. */
static inferd_status add_routes(svc_background *b, bg_component *c, inferd_error *err)
{
    for (const inferd_route_spec *rt = c->comp->routes; rt && rt->method; rt++) {
        if (svc_path_reserved(rt->path))
            return inferd_error_set(err, INFERD_EINVAL,
                                    WHO_FMT ": route %s %s: that path belongs to the "
                                    "built-in API (docs/service.md), which a plugin may not "
                                    "take", WHO(c), rt->method, rt->path);
        for (size_t i = 0; i < b->n_routes; i++) {
            const bg_route *o = &b->routes[i];
            if (strcmp(o->spec->path, rt->path) != 0)
                continue;
            if (o->owner != c)
                return inferd_error_set(err, INFERD_EEXIST,
                                        WHO_FMT ": route %s %s: path %s is already declared by "
                                        WHO_FMT, WHO(c), rt->method, rt->path, rt->path,
                                        WHO(o->owner));
            if (strcasecmp(o->spec->method, rt->method) == 0)
                return inferd_error_set(err, INFERD_EEXIST,
                                        WHO_FMT ": route %s %s is declared twice", WHO(c),
                                        rt->method, rt->path);
        }
        b->routes[b->n_routes++] = (bg_route){rt, c};
    }
    return INFERD_OK;
}

static size_t count_routes(const inferd_component *c)
{
    size_t n = 0;
    while (c->routes && c->routes[n].method)
        n++;
    return n;
}

/* Creates c's instance with its props from plugin_settings. */
static inferd_status create_instance(svc_background *b, bg_component *c,
                                     const inferd_value *settings, inferd_error *err)
{
    const inferd_value *props = inferd_value_object_get(settings, c->comp->name);
    if (props && !inferd_value_is(props, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE,
                                "plugin_settings.%s (the properties of " WHO_FMT ") must be a "
                                "JSON object, not %s", c->comp->name, WHO(c),
                                inferd_value_type_name(inferd_value_type_of(props)));
    inferd_status st = inferd_instance_create(b->s->reg, c->comp->name, NULL, props, &c->inst,
                                              err);
    return st == INFERD_OK ? st : inferd_error_prefix(err, "the daemon does not start");
}

/* Warns about plugin_settings entries that name no background or event
 * component (a typo, or a plugin that is not active). */
static void check_settings_names(const svc_background *b, const inferd_value *settings)
{
    const char *key;
    inferd_value *item;
    for (size_t k = 0; inferd_value_object_entry(settings, k, &key, &item); k++) {
        bool known = false;
        for (size_t i = 0; i < b->n_bg && !known; i++)
            known = strcmp(b->bg[i].comp->name, key) == 0;
        for (size_t i = 0; i < b->n_ev && !known; i++)
            known = strcmp(b->ev[i].comp->name, key) == 0;
        if (!known)
            inferd_log_warn(LOG, "plugin_settings.%s: no active background or event component "
                            "has that name; its settings are not used", key);
    }
}

/* Fills a new b; on failure, svc_background_free closes what was made. */
static inferd_status setup(svc_background *b, inferd_error *err)
{
    svc *s = b->s;

    /* Count, then collect, the components (registry order). */
    size_t n_bg = 0, n_ev = 0, n_routes = 0;
    for (size_t p = 0; p < inferd_registry_plugin_count(s->reg); p++) {
        const inferd_plugin *d = inferd_registry_plugin_at(s->reg, p)->descriptor;
        for (size_t i = 0; i < d->n_components; i++) {
            const inferd_component *c = inferd_plugin_component(d, i);
            n_bg += c->kind == INFERD_KIND_BACKGROUND;
            n_ev += c->kind == INFERD_KIND_EVENT;
            n_routes += c->kind == INFERD_KIND_BACKGROUND ? count_routes(c) : 0;
        }
    }
    b->bg = calloc(n_bg + 1, sizeof *b->bg);
    b->ev = calloc(n_ev + 1, sizeof *b->ev);
    b->routes = calloc(n_routes + 1, sizeof *b->routes);
    if (!b->bg || !b->ev || !b->routes)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    for (size_t p = 0; p < inferd_registry_plugin_count(s->reg) && st == INFERD_OK; p++) {
        const inferd_plugin_info *info = inferd_registry_plugin_at(s->reg, p);
        for (size_t i = 0; i < info->descriptor->n_components && st == INFERD_OK; i++) {
            const inferd_component *c = inferd_plugin_component(info->descriptor, i);
            if (c->kind == INFERD_KIND_BACKGROUND) {
                b->bg[b->n_bg] = (bg_component){.comp = c, .plugin = info};
                st = add_routes(b, &b->bg[b->n_bg++], err);
            } else if (c->kind == INFERD_KIND_EVENT) {
                b->ev[b->n_ev++] = (bg_component){.comp = c, .plugin = info};
            }
        }
    }
    if (st != INFERD_OK)
        return st;

    /* Instances: props from plugin_settings; a failing init stops the start. */
    const inferd_value *settings = inferd_props_get(inferd_config_props(s->cfg), "plugin_settings");
    check_settings_names(b, settings);
    for (size_t i = 0; i < b->n_bg && st == INFERD_OK; i++)
        st = create_instance(b, &b->bg[i], settings, err);
    for (size_t i = 0; i < b->n_ev && st == INFERD_OK; i++)
        st = create_instance(b, &b->ev[i], settings, err);
    if (st != INFERD_OK)
        return st;

    inferd_event_sub_config ecfg = {
        .queue_size = (size_t)inferd_config_int(s->cfg, "events.queue_size"),
        .max_bytes = (size_t)inferd_config_int(s->cfg, "events.queue_max_bytes"),
        .max_batch = (size_t)inferd_config_int(s->cfg, "events.max_batch"),
        .flush_ms = (uint64_t)inferd_config_int(s->cfg, "events.flush_ms"),
    };
    for (size_t i = 0; i < b->n_ev; i++) {
        if ((st = inferd_events_subscribe(b->ev[i].inst, &ecfg, &b->ev[i].sub, err)) != INFERD_OK)
            return st;
        inferd_log_info(LOG, WHO_FMT " receives '%s' events", WHO(&b->ev[i]),
                        b->ev[i].comp->event_name);
    }
    return INFERD_OK;
}

inferd_status svc_background_new(svc *s, svc_background **out, inferd_error *err)
{
    svc_background *b = calloc(1, sizeof *b);
    if (!b)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    b->s = s;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->idle, NULL);
    inferd_status st = setup(b, err);
    if (st != INFERD_OK) {
        svc_background_free(b);
        return st;
    }
    *out = b;
    return INFERD_OK;
}

inferd_status svc_background_start(svc_background *b, inferd_error *err)
{
    for (size_t i = 0; i < b->n_bg; i++) {
        bg_component *c = &b->bg[i];
        inferd_status st = inferd_instance_start(c->inst, err);
        if (st != INFERD_OK)
            return inferd_error_prefix(err, "the daemon does not start");
        pthread_mutex_lock(&b->mu);
        c->started = true;
        pthread_mutex_unlock(&b->mu);
        inferd_log_info(LOG, WHO_FMT " started (%zu route%s)", WHO(c), count_routes(c->comp),
                        count_routes(c->comp) == 1 ? "" : "s");
    }
    return INFERD_OK;
}

void svc_background_stop(svc_background *b)
{
    if (!b || b->stopped || !b->bg || !b->ev)
        return;
    b->stopped = true;
    /* No new handler from here on; the running ones finish first. */
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_bg; i++)
        b->bg[i].started = false;
    for (size_t i = 0; i < b->n_bg; i++)
        while (b->bg[i].in_flight)
            pthread_cond_wait(&b->idle, &b->mu);
    pthread_mutex_unlock(&b->mu);
    /* close (the kind's teardown) in reverse order; event components last,
     * so what a closing component publishes is still delivered. */
    for (size_t i = b->n_bg; i-- > 0;) {
        inferd_instance_destroy(b->bg[i].inst);
        b->bg[i].inst = NULL;
    }
    for (size_t i = b->n_ev; i-- > 0;) {
        inferd_events_unsubscribe(b->ev[i].sub, EVENTS_DRAIN_MS);
        b->ev[i].sub = NULL;
        inferd_instance_destroy(b->ev[i].inst);
        b->ev[i].inst = NULL;
    }
}

void svc_background_free(svc_background *b)
{
    if (!b)
        return;
    svc_background_stop(b); /* closes what a failed new had made, too */
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->mu);
    free(b->routes);
    free(b->bg);
    free(b->ev);
    free(b);
}

/* A handler's failure (err names the component, plugin, method and path):
 * logged, published as a plugin_failed event, and answered 500 plugin_error. */
static void handler_failed(svc_request *r, const bg_component *c, const inferd_error *err)
{
    inferd_log_warn(LOG, "%s", err->message);
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "plugin", c->plugin->name, &ok);
    inferd__put_str(ev, "component", c->comp->name, &ok);
    inferd__put_str(ev, "message", err->message, &ok);
    svc_publish_built("plugin_failed", ev, ok);
    svc_reply_error(r, 500, "plugin_error", "%s", err->message);
}

/* 405 with the methods the path has (an Allow header and the message). */
static void reply_not_allowed(svc_background *b, svc_request *r, const bg_component *owner)
{
    char allow[256] = "";
    size_t len = 0;
    bool get = false;
    for (size_t i = 0; i < b->n_routes; i++) {
        const inferd_route_spec *rt = b->routes[i].spec;
        if (strcmp(rt->path, svc_path(r)) != 0 || len >= sizeof allow)
            continue;
        get = get || strcasecmp(rt->method, "GET") == 0;
        len += (size_t)snprintf(allow + len, sizeof allow - len, "%s%s", len ? ", " : "",
                                rt->method);
    }
    if (get && len < sizeof allow)
        snprintf(allow + len, sizeof allow - len, ", HEAD");
    svc_reply_header(r, "Allow", allow);
    svc_reply_error(r, 405, "method_not_allowed", "%s %s: " WHO_FMT " allows only %s",
                    svc_method(r), svc_path(r), WHO(owner), allow);
}

bool svc_background_dispatch(svc_background *b, svc_request *r)
{
    if (!b)
        return false;
    const char *path = svc_path(r), *method = svc_method(r);
    const bg_route *exact = NULL, *any = NULL, *seen = NULL;
    for (size_t i = 0; i < b->n_routes; i++) {
        const bg_route *rt = &b->routes[i];
        if (strcmp(rt->spec->path, path) != 0)
            continue;
        seen = rt;
        if (strcmp(rt->spec->method, "*") == 0)
            any = rt;
        else if (method_matches(rt->spec->method, method) &&
                 (!exact || strcasecmp(rt->spec->method, method) == 0))
            exact = rt; /* HEAD takes a HEAD route before a GET one */
    }
    if (!seen)
        return false;
    const bg_route *rt = exact ? exact : any;
    if (!rt) {
        reply_not_allowed(b, r, seen->owner);
        return true;
    }
    bg_component *c = rt->owner;
    pthread_mutex_lock(&b->mu);
    bool running = c->started;
    c->in_flight += running;
    pthread_mutex_unlock(&b->mu);
    if (!running) {
        svc_reply_error(r, 503, "not_ready", WHO_FMT " is not running (starting or stopping)",
                        WHO(c));
        return true;
    }

    inferd_http_request req;
    svc_exchange_request(r, &req);
    inferd_http_response resp;
    inferd_http_response_init(&resp);
    inferd_error err = {0};
    inferd_status st = inferd_instance_route(c->inst, rt->spec->handler, &req, &resp, &err);
    pthread_mutex_lock(&b->mu);
    if (--c->in_flight == 0)
        pthread_cond_broadcast(&b->idle);
    pthread_mutex_unlock(&b->mu);
    if (st != INFERD_OK) {
        inferd_http_response_clear(&resp);
        handler_failed(r, c, &err);
        return true;
    }
    svc_reply_exchange(r, &resp);
    return true;
}
