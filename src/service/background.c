/* service/background.c: background components, their HTTP routes, and the
 * event components' subscriptions (see service.h).
 *
 * Owns one instance of every background and every event component of the
 * active plugins (props from the config key plugin_settings, by component
 * name), the event subscriptions, and the table of plugin routes. The
 * routes are checked before any instance is made: a route on the built-in
 * API's paths, or a path that two components both declare, stops the
 * start-up (or refuses the activation of a plugin at run time).
 *
 * A plugin activated while the daemon runs joins with svc_background_attach:
 * its instances are made and started first, then its routes and
 * subscriptions appear at once. svc_background_detach takes them away at
 * once (new requests get 404), waits for the handlers that are running, and
 * closes the instances.
 *
 * A route handler runs on an HTTP thread without any lock held; a count of
 * running handlers per component lets stop and detach wait for them before
 * the component is closed, and a component that is not running (not
 * started yet, or stopping) answers 503. The list and the route table
 * change only under mu, which dispatch holds to find a route.
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
    struct bg_component *next;
} bg_component;

typedef struct bg_route {
    const inferd_route_spec *spec; /* borrowed from the component */
    bg_component *owner;           /* borrowed from b->list */
} bg_route;

struct svc_background {
    svc *s;                  /* borrowed */
    bg_component *list;      /* owned: background and event components, registry order */
    bg_route *routes;        /* owned: the routes of the components in list */
    size_t n_routes;
    pthread_mutex_t mu;      /* list, routes, started, in_flight, running */
    pthread_cond_t idle;     /* a handler returned */
    bool running;            /* started (attached components start at once) */
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

static size_t count_routes(const inferd_component *c)
{
    size_t n = 0;
    while (c->routes && c->routes[n].method)
        n++;
    return n;
}

/* Checks c's routes against the built-in API, against those of the live
 * components and of the fresh ones before c, and against each other. */
static inferd_status check_routes(const bg_component *c, const bg_component *live,
                                  const bg_component *fresh, inferd_error *err)
{
    for (const inferd_route_spec *rt = c->comp->routes; rt && rt->method; rt++) {
        if (svc_path_reserved(rt->path))
            return inferd_error_set(err, INFERD_EINVAL,
                                    WHO_FMT ": route %s %s: that path belongs to the "
                                    "built-in API (docs/service.md), which a plugin may not "
                                    "take", WHO(c), rt->method, rt->path);
        for (const inferd_route_spec *o = c->comp->routes; o != rt; o++)
            if (strcmp(o->path, rt->path) == 0 && strcasecmp(o->method, rt->method) == 0)
                return inferd_error_set(err, INFERD_EEXIST, WHO_FMT ": route %s %s is "
                                        "declared twice", WHO(c), rt->method, rt->path);
        /* The live ones, then the fresh ones before c: a clash is c's. */
        for (int pass = 0; pass < 2; pass++)
            for (const bg_component *o = pass ? fresh : live; o && o != c; o = o->next)
                for (const inferd_route_spec *ort = o->comp->routes; ort && ort->method; ort++)
                    if (strcmp(ort->path, rt->path) == 0)
                        return inferd_error_set(err, INFERD_EEXIST,
                                                WHO_FMT ": route %s %s: path %s is already "
                                                "declared by " WHO_FMT, WHO(c), rt->method,
                                                rt->path, rt->path, WHO(o));
    }
    return INFERD_OK;
}

/* The route table of b->list, made again (under mu). */
static inferd_status rebuild_routes(svc_background *b, inferd_error *err)
{
    size_t n = 0;
    for (bg_component *c = b->list; c; c = c->next)
        n += c->comp->kind == INFERD_KIND_BACKGROUND ? count_routes(c->comp) : 0;
    bg_route *routes = calloc(n + 1, sizeof *routes);
    if (!routes)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    n = 0;
    for (bg_component *c = b->list; c; c = c->next)
        for (const inferd_route_spec *rt = c->comp->routes;
             c->comp->kind == INFERD_KIND_BACKGROUND && rt && rt->method; rt++)
            routes[n++] = (bg_route){rt, c};
    free(b->routes);
    b->routes = routes;
    b->n_routes = n;
    return INFERD_OK;
}

/* Creates c's instance with its props from plugin_settings. */
static inferd_status create_instance(svc_background *b, bg_component *c, inferd_error *err)
{
    const inferd_value *settings =
        inferd_props_get(inferd_config_props(b->s->cfg), "plugin_settings");
    const inferd_value *props = inferd_value_object_get(settings, c->comp->name);
    if (props && !inferd_value_is(props, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE,
                                "plugin_settings.%s (the properties of " WHO_FMT ") must be a "
                                "JSON object, not %s", c->comp->name, WHO(c),
                                inferd_value_type_name(inferd_value_type_of(props)));
    return inferd_instance_create(b->s->reg, c->comp->name, NULL, props, &c->inst, err);
}

/* Warns about plugin_settings entries that name no background or event
 * component (a typo, or a plugin that is not active). */
static void check_settings_names(const svc_background *b)
{
    const inferd_value *settings =
        inferd_props_get(inferd_config_props(b->s->cfg), "plugin_settings");
    const char *key;
    inferd_value *item;
    for (size_t k = 0; inferd_value_object_entry(settings, k, &key, &item); k++) {
        bool known = false;
        for (const bg_component *c = b->list; c && !known; c = c->next)
            known = strcmp(c->comp->name, key) == 0;
        if (!known)
            inferd_log_warn(LOG, "plugin_settings.%s: no active background or event component "
                            "has that name; its settings are not used", key);
    }
}

/* Closes c: stops a background one, unsubscribes an event one (what is
 * queued for it is delivered first, up to EVENTS_DRAIN_MS), frees. */
static void close_component(bg_component *c)
{
    if (c->sub)
        inferd_events_unsubscribe(c->sub, EVENTS_DRAIN_MS);
    inferd_instance_destroy(c->inst);
    free(c);
}

/* Closes a list in reverse order, event components last, so that what a
 * closing component publishes is still delivered. */
static void close_list(bg_component *list)
{
    bg_component *rev = NULL;
    while (list) {
        bg_component *c = list;
        list = c->next;
        c->next = rev;
        rev = c;
    }
    for (int pass = 0; pass < 2; pass++)
        for (bg_component **pp = &rev; *pp;) {
            bg_component *c = *pp;
            if ((c->comp->kind == INFERD_KIND_EVENT) == (pass == 1)) {
                *pp = c->next;
                close_component(c);
            } else {
                pp = &c->next;
            }
        }
}

/* The background and event components of plugin (NULL: every plugin) not
 * in b->list yet, checked and made: instances, subscriptions. On failure
 * nothing is left. */
static inferd_status collect(svc_background *b, const char *plugin, bg_component **out,
                             inferd_error *err)
{
    bg_component *fresh = NULL, **tail = &fresh;
    inferd_status st = INFERD_OK;
    inferd_registry *reg = b->s->reg;
    for (size_t p = 0; p < inferd_registry_plugin_count(reg) && st == INFERD_OK; p++) {
        const inferd_plugin_info *info = inferd_registry_plugin_at(reg, p);
        if (plugin && strcmp(info->name, plugin) != 0)
            continue;
        for (size_t i = 0; i < info->descriptor->n_components && st == INFERD_OK; i++) {
            const inferd_component *comp = inferd_plugin_component(info->descriptor, i);
            if (comp->kind != INFERD_KIND_BACKGROUND && comp->kind != INFERD_KIND_EVENT)
                continue;
            bool have = false;
            pthread_mutex_lock(&b->mu);
            for (const bg_component *c = b->list; c && !have; c = c->next)
                have = c->comp == comp;
            pthread_mutex_unlock(&b->mu);
            bg_component *c = have ? NULL : calloc(1, sizeof *c);
            if (have)
                continue;
            if (!c) {
                st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
                break;
            }
            *c = (bg_component){.comp = comp, .plugin = info};
            *tail = c;
            tail = &c->next;
        }
    }
    /* Routes first: nothing is made for a set that cannot serve. */
    pthread_mutex_lock(&b->mu);
    for (bg_component *c = fresh; c && st == INFERD_OK; c = c->next)
        st = check_routes(c, b->list, fresh, err);
    pthread_mutex_unlock(&b->mu);
    for (bg_component *c = fresh; c && st == INFERD_OK; c = c->next)
        st = create_instance(b, c, err);
    inferd_event_sub_config ecfg = {
        .queue_size = (size_t)inferd_config_int(b->s->cfg, "events.queue_size"),
        .max_bytes = (size_t)inferd_config_int(b->s->cfg, "events.queue_max_bytes"),
        .max_batch = (size_t)inferd_config_int(b->s->cfg, "events.max_batch"),
        .flush_ms = (uint64_t)inferd_config_int(b->s->cfg, "events.flush_ms"),
    };
    for (bg_component *c = fresh; c && st == INFERD_OK; c = c->next)
        if (c->comp->kind == INFERD_KIND_EVENT &&
            (st = inferd_events_subscribe(c->inst, &ecfg, &c->sub, err)) == INFERD_OK)
            inferd_log_info(LOG, WHO_FMT " receives '%s' events", WHO(c), c->comp->event_name);
    if (st != INFERD_OK) {
        close_list(fresh);
        return st;
    }
    *out = fresh;
    return INFERD_OK;
}

/* Starts the background components of list; on failure the caller closes
 * the list (a background component's close stops it). */
static inferd_status start_list(svc_background *b, bg_component *list, inferd_error *err)
{
    for (bg_component *c = list; c; c = c->next) {
        if (c->comp->kind != INFERD_KIND_BACKGROUND)
            continue;
        inferd_status st = inferd_instance_start(c->inst, err);
        if (st != INFERD_OK)
            return st; /* closing the list stops those started before */
        inferd_log_info(LOG, WHO_FMT " started (%zu route%s)", WHO(c), count_routes(c->comp),
                        count_routes(c->comp) == 1 ? "" : "s");
    }
    pthread_mutex_lock(&b->mu);
    for (bg_component *c = list; c; c = c->next)
        c->started = c->comp->kind == INFERD_KIND_BACKGROUND;
    pthread_mutex_unlock(&b->mu);
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
    bg_component *all = NULL;
    inferd_status st = collect(b, NULL, &all, err);
    if (st == INFERD_OK) {
        b->list = all;
        check_settings_names(b);
        st = rebuild_routes(b, err);
    }
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "the daemon does not start");
        svc_background_free(b);
        return st;
    }
    *out = b;
    return INFERD_OK;
}

inferd_status svc_background_start(svc_background *b, inferd_error *err)
{
    inferd_status st = start_list(b, b->list, err);
    if (st != INFERD_OK)
        return inferd_error_prefix(err, "the daemon does not start");
    pthread_mutex_lock(&b->mu);
    b->running = true;
    pthread_mutex_unlock(&b->mu);
    return INFERD_OK;
}

inferd_status svc_background_attach(svc_background *b, const char *plugin, size_t *added,
                                    inferd_error *err)
{
    *added = 0;
    bg_component *fresh = NULL;
    inferd_status st = collect(b, plugin, &fresh, err);
    pthread_mutex_lock(&b->mu);
    bool running = b->running && !b->stopped;
    pthread_mutex_unlock(&b->mu);
    if (st == INFERD_OK && running)
        st = start_list(b, fresh, err);
    if (st != INFERD_OK) {
        close_list(fresh);
        return st;
    }
    /* Its routes and subscriptions are live from here on, all at once. */
    pthread_mutex_lock(&b->mu);
    bg_component **tail = &b->list;
    while (*tail)
        tail = &(*tail)->next;
    *tail = fresh;
    for (bg_component *c = fresh; c; c = c->next)
        (*added)++;
    st = rebuild_routes(b, err);
    if (st != INFERD_OK)
        *tail = NULL;
    pthread_mutex_unlock(&b->mu);
    if (st != INFERD_OK) {
        close_list(fresh);
        *added = 0;
    }
    return st;
}

/* Unlinks the components of plugin from b->list (under mu): no request
 * reaches them from here on. */
static bg_component *unlink_plugin(svc_background *b, const char *plugin)
{
    bg_component *gone = NULL, **gtail = &gone;
    for (bg_component **pp = &b->list; *pp;) {
        bg_component *c = *pp;
        if (plugin && strcmp(c->plugin->name, plugin) != 0) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->next = NULL;
        c->started = false;
        *gtail = c;
        gtail = &c->next;
    }
    return gone;
}

/* Waits for the handlers still running on the components of list (mu held). */
static void wait_idle(svc_background *b, const bg_component *list)
{
    for (const bg_component *c = list; c; c = c->next)
        while (c->in_flight)
            pthread_cond_wait(&b->idle, &b->mu);
}

size_t svc_background_detach(svc_background *b, const char *plugin)
{
    pthread_mutex_lock(&b->mu);
    bg_component *gone = unlink_plugin(b, plugin);
    inferd_error err = {0};
    if (rebuild_routes(b, &err) != INFERD_OK) { /* out of memory: no route at all */
        free(b->routes);
        b->routes = NULL;
        b->n_routes = 0;
        inferd_log_error(LOG, "%s: every plugin route is down until the next change", err.message);
    }
    wait_idle(b, gone);
    pthread_mutex_unlock(&b->mu);
    size_t n = 0;
    for (bg_component *c = gone; c; c = c->next)
        n++;
    close_list(gone);
    return n;
}

void svc_background_stop(svc_background *b)
{
    if (!b || b->stopped)
        return;
    /* No new handler from here on; the running ones finish first. */
    pthread_mutex_lock(&b->mu);
    b->stopped = true;
    bg_component *all = unlink_plugin(b, NULL);
    free(b->routes);
    b->routes = NULL;
    b->n_routes = 0;
    wait_idle(b, all);
    pthread_mutex_unlock(&b->mu);
    close_list(all);
}

void svc_background_free(svc_background *b)
{
    if (!b)
        return;
    svc_background_stop(b); /* closes what a failed new had made, too */
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->mu);
    free(b->routes);
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

/* The methods path has (for Allow), and who serves it; under mu. */
static void allowed_methods(const svc_background *b, const char *path, char *allow, size_t cap)
{
    size_t len = 0;
    bool get = false;
    allow[0] = '\0';
    for (size_t i = 0; i < b->n_routes; i++) {
        const inferd_route_spec *rt = b->routes[i].spec;
        if (strcmp(rt->path, path) != 0 || len >= cap)
            continue;
        get = get || strcasecmp(rt->method, "GET") == 0;
        len += (size_t)snprintf(allow + len, cap - len, "%s%s", len ? ", " : "", rt->method);
    }
    if (get && len < cap)
        snprintf(allow + len, cap - len, ", HEAD");
}

bool svc_background_dispatch(svc_background *b, svc_request *r)
{
    if (!b)
        return false;
    const char *path = svc_path(r), *method = svc_method(r);
    pthread_mutex_lock(&b->mu);
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
    if (!seen) {
        pthread_mutex_unlock(&b->mu);
        return false;
    }
    const bg_route *rt = exact ? exact : any;
    char who[400];
    bg_component *c = rt ? rt->owner : seen->owner;
    snprintf(who, sizeof who, WHO_FMT, WHO(c));
    if (!rt) {
        char allow[256];
        allowed_methods(b, path, allow, sizeof allow);
        pthread_mutex_unlock(&b->mu);
        svc_reply_header(r, "Allow", allow);
        svc_reply_error(r, 405, "method_not_allowed", "%s %s: %s allows only %s", method, path,
                        who, allow);
        return true;
    }
    bool running = c->started;
    c->in_flight += running;
    inferd_route_handler handler = rt->spec->handler;
    pthread_mutex_unlock(&b->mu);
    if (!running) {
        svc_reply_error(r, 503, "not_ready", "%s is not running (starting or stopping)", who);
        return true;
    }

    inferd_http_request req;
    svc_exchange_request(r, &req);
    inferd_http_response resp;
    inferd_http_response_init(&resp);
    inferd_error err = {0};
    inferd_status st = inferd_instance_route(c->inst, handler, &req, &resp, &err);
    if (st != INFERD_OK) {
        inferd_http_response_clear(&resp);
        handler_failed(r, c, &err);
    } else {
        svc_reply_exchange(r, &resp);
    }
    /* c may go (detach) once this count is down. */
    pthread_mutex_lock(&b->mu);
    if (--c->in_flight == 0)
        pthread_cond_broadcast(&b->idle);
    pthread_mutex_unlock(&b->mu);
    return true;
}
