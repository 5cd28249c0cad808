/* actions.c: where a rule's results go. Each action of a running rule has
 * its own thread and bounded buffer (the rule's bufferLength), so a slow or
 * lost destination holds nothing else; what does not fit is dropped and
 * counted. Kinds: mqtt, http (the seeds' engine calls it rest), log, file,
 * and any sink component of a plugin (C or portable).
 *
 * Every action takes "sendSingle": true sends each result row as its own
 * message; false (the default) sends the rows of one emission as a JSON
 * array. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/build_value.h"
#include "core/footprint.h"
#include "inferd/log.h"
#include "net/http_post.h"
#include "rules/internal.h"

#define LOG "rules"

/* Every setting of the built-in kinds, one struct: what read_settings binds
 * an action's declared settings into (each kind declares its own). */
typedef struct settings {
    bool send_single, enable_cache;
    int64_t max_disk_cache, resend_interval_ms;
    const char *topic, *server, *client_id, *username, *password, *conf_key; /* mqtt */
    int64_t qos, protocol; /* -1 and 0 when not given: the rule's qos, the profile's version */
    bool retained;
    const char *url, *method; /* http */
    const inferd_value *headers;
    int64_t timeout_ms, retry_count, retry_interval_ms;
    const char *path; /* file */
} settings;

typedef struct raction_kind {
    const char *name;
    const inferd_prop_spec *specs; /* its settings, the common ones included */
    /* What the declaration cannot say (a topic without wildcards, a URL's
     * scheme, a file inside rules.file_dirs); errors name the setting. */
    inferd_status (*check)(rules_engine *e, const settings *s, inferd_error *err);
    inferd_status (*open)(raction *a, const settings *s, inferd_error *err);
    inferd_status (*send)(raction *a, const inferd_value *item, const char *json, size_t len,
                          inferd_error *err);
    void (*close)(raction *a);
    void (*describe)(raction *a, const char *prefix, inferd_value *obj);
} raction_kind;

/* ---- settings ---------------------------------------------------------------- */

#define CACHE_RETRY_MIN_MS 100
#define CACHE_RETRY_MAX_MS 30000

/* The settings every action has (eKuiper's common sink properties):
 * sendSingle, and the disk cache of what its destination cannot take now
 * (enableCache, at most maxDiskCache results, resent resendInterval ms
 * apart once it takes them again). */
#define COMMON_SPECS                                                                         \
    {.name = "sendSingle", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",          \
     .description = "each result row as its own message",                                    \
     INFERD_PROP_AT(settings, send_single)},                                                 \
    {.name = "enableCache", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",         \
     .description = "keep what the destination cannot take on disk, resend it in order",     \
     INFERD_PROP_AT(settings, enable_cache)},                                                \
    {.name = "maxDiskCache", .type = INFERD_PROP_TYPE_UINT, .default_value = "1024000",      \
     .umin = 1, .umax = 100000000, .description = "results the cache holds at most",         \
     INFERD_PROP_AT(settings, max_disk_cache)},                                              \
    {.name = "resendInterval", .type = INFERD_PROP_TYPE_DURATION, .default_value = "0",      \
     .umax = 3600000, .description = "between two cached results sent again (ms)",          \
     INFERD_PROP_AT(settings, resend_interval_ms)}

static const inferd_prop_spec common_specs[] = {COMMON_SPECS, INFERD_PROP_END};

/* Checks conf against the kind's declaration and binds it into *s; *props
 * holds the strings *s borrows. A sink component's own properties are its
 * to check when it starts: only the common ones are checked here. */
static inferd_status read_settings(const raction_kind *kind, const char *type, size_t i,
                                   const inferd_value *conf, inferd_props **props, settings *s,
                                   inferd_error *err)
{
    char owner[200];
    snprintf(owner, sizeof owner, "actions[%zu] (%.100s)", i, type);
    inferd_value *common = NULL;
    if (kind->specs == common_specs && strcmp(kind->name, "sink") == 0) {
        if (!(common = inferd_value_object()))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        for (const inferd_prop_spec *c = common_specs; c->name; c++) {
            const inferd_value *v = inferd_value_object_get(conf, c->name);
            if (v)
                inferd__put(common, c->name, inferd_value_copy(v), NULL);
        }
        conf = common;
    }
    *s = (settings){.qos = -1};
    *props = NULL;
    inferd_status st = inferd_props_validate(kind->specs, owner, conf, props, err);
    inferd_value_free(common);
    if (st != INFERD_OK && st != INFERD_ENOMEM)
        st = inferd_error_recode(err, INFERD_EINVAL); /* the definition's fault, a 400 */
    if (st == INFERD_OK)
        inferd_props_bind(*props, s);
    return st;
}

/* ---- mqtt ------------------------------------------------------------------------ */

typedef struct mqtt_action {
    mqtt_client *client;
    const char *topic; /* borrowed from the definition */
    int qos;
    bool retain;
} mqtt_action;

static const inferd_prop_spec mqtt_specs[] = {
    {.name = "topic", .type = INFERD_PROP_TYPE_STRING, .description = "no wildcards",
     INFERD_PROP_AT(settings, topic)},
    {.name = "server", .type = INFERD_PROP_TYPE_STRING, .description = "tcp://host[:port] "
     "(default: mqtt.server, or the profile's)", INFERD_PROP_AT_OPTIONAL(settings, server)},
    {.name = "confKey", .type = INFERD_PROP_TYPE_STRING, .description = "a profile of "
     "mqtt.profiles", INFERD_PROP_AT_OPTIONAL(settings, conf_key)},
    {.name = "qos", .type = INFERD_PROP_TYPE_INT, .imin = 0, .imax = 2, .description = "0, 1 or 2 "
     "(default: the rule's qos)", INFERD_PROP_AT_OPTIONAL(settings, qos)},
    {.name = "retained", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     .description = "the retain flag", INFERD_PROP_AT(settings, retained)},
    {.name = "clientId", .type = INFERD_PROP_TYPE_STRING, .description = "used as it is",
     INFERD_PROP_AT_OPTIONAL(settings, client_id)},
    {.name = "username", .type = INFERD_PROP_TYPE_STRING, .description = "(default: the "
     "profile's)", INFERD_PROP_AT_OPTIONAL(settings, username)},
    {.name = "password", .type = INFERD_PROP_TYPE_STRING, .description = "(default: the "
     "profile's)", INFERD_PROP_AT_OPTIONAL(settings, password)},
    {.name = "protocolVersion", .type = INFERD_PROP_TYPE_INT, .imin = 4, .imax = 5,
     .description = "4 (MQTT 3.1.1) or 5 (default: the profile's, else 5)",
     INFERD_PROP_AT_OPTIONAL(settings, protocol)},
    COMMON_SPECS,
    INFERD_PROP_END,
};

/* The connection's options from the profile and the action's own. */
static inferd_status mqtt_settings(rules_engine *e, const settings *s, mqtt_options *mo,
                                   inferd_error *err)
{
    inferd_status st = mqtt_profile(e->cfg, s->conf_key, mo, err);
    if (st != INFERD_OK)
        return st;
    if (!s->topic[0] || strpbrk(s->topic, "+#"))
        return inferd_error_set(err, INFERD_EINVAL, "mqtt: topic \"%s\": a topic to publish to "
                                "is not empty and has no wildcards", s->topic);
    mo->protocol = s->protocol ? (int)s->protocol : mo->protocol ? mo->protocol : 5;
    if (s->server)
        mo->server = s->server;
    if (s->username)
        mo->username = s->username;
    if (s->password)
        mo->password = s->password;
    return mqtt_check_server(mo->server, "mqtt: server", err);
}

static inferd_status mqtt_check(rules_engine *e, const settings *s, inferd_error *err)
{
    mqtt_options mo;
    return mqtt_settings(e, s, &mo, err);
}

static inferd_status mqtt_open(raction *a, const settings *s, inferd_error *err)
{
    rules_engine *e = a->rule->e;
    mqtt_action *m = calloc(1, sizeof *m);
    if (!m)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    mqtt_options mo;
    inferd_status st = mqtt_settings(e, s, &mo, err);
    m->topic = s->topic;
    m->retain = s->retained;
    const char *own_id = s->client_id;
    char name[300], id[300], who[280];
    snprintf(name, sizeof name, "rule %s action %zu", a->rule->id, a->index);
    snprintf(who, sizeof who, "rule-%s-%zu", a->rule->id, a->index);
    rules_mqtt_client_id(e, &mo, who, id, sizeof id);
    mo.client_id = own_id ? own_id : id;
    mo.name = name;
    mo.max_queued = a->rule->buffer_length;
    m->qos = s->qos >= 0 ? (int)s->qos : a->rule->qos;
    if (st == INFERD_OK)
        st = mqtt_client_new(&mo, &m->client, err);
    if (st != INFERD_OK) {
        free(m);
        return st;
    }
    a->impl = m;
    return INFERD_OK;
}

static inferd_status mqtt_send(raction *a, const inferd_value *item, const char *json, size_t len,
                               inferd_error *err)
{
    mqtt_action *m = a->impl;
    (void)item;
    if (a->cache) {
        /* Not into the client's memory queue while the broker is away: into
         * the disk cache, which a restart keeps. */
        mqtt_stats ms;
        mqtt_client_stats(m->client, &ms);
        if (!ms.connected)
            return inferd_error_set(err, INFERD_ESTATE, "mqtt: not connected to the broker%s%s",
                                    ms.last_error[0] ? ": " : "", ms.last_error);
    }
    return mqtt_client_publish(m->client, m->topic, json, len, m->qos, m->retain, err);
}

static void mqtt_close(raction *a)
{
    mqtt_action *m = a->impl;
    if (!m)
        return;
    mqtt_client_free(m->client);
    free(m);
    a->impl = NULL;
}

static void put_conn(inferd_value *obj, const char *prefix, const mqtt_stats *ms)
{
    char key[300];
    snprintf(key, sizeof key, "%s_connection_status", prefix);
    inferd__put(obj, key, inferd_value_int(ms->connected ? 1 : 0), NULL);
    snprintf(key, sizeof key, "%s_connection_last_error", prefix);
    inferd__put(obj, key, inferd_value_string(ms->last_error), NULL);
    snprintf(key, sizeof key, "%s_connection_last_error_time", prefix);
    inferd__put(obj, key, inferd_value_int(ms->last_error_ms), NULL);
    snprintf(key, sizeof key, "%s_connects_total", prefix);
    inferd__put(obj, key, inferd_value_int((int64_t)ms->connects), NULL);
    snprintf(key, sizeof key, "%s_disconnects_total", prefix);
    inferd__put(obj, key, inferd_value_int((int64_t)ms->disconnects), NULL);
}

static void mqtt_describe(raction *a, const char *prefix, inferd_value *obj)
{
    mqtt_action *m = a->impl;
    if (!m)
        return;
    mqtt_stats ms;
    mqtt_client_stats(m->client, &ms);
    put_conn(obj, prefix, &ms);
    char key[300];
    snprintf(key, sizeof key, "%s_connection_queued", prefix);
    inferd__put(obj, key, inferd_value_int((int64_t)ms.queued), NULL);
}

void rules_describe_connection(const char *prefix, const mqtt_stats *ms, inferd_value *obj)
{
    put_conn(obj, prefix, ms);
}

/* ---- http ------------------------------------------------------------------------ */

static const inferd_prop_spec http_specs[] = {
    {.name = "url", .type = INFERD_PROP_TYPE_STRING, .description = "http:// or https://",
     INFERD_PROP_AT(settings, url)},
    {.name = "method", .type = INFERD_PROP_TYPE_STRING, .default_value = "POST",
     .description = "POST, PUT or PATCH", INFERD_PROP_AT(settings, method)},
    {.name = "headers", .type = INFERD_PROP_TYPE_OBJECT, .default_value = "{}",
     .description = "an object of strings", INFERD_PROP_AT(settings, headers)},
    {.name = "timeout", .type = INFERD_PROP_TYPE_DURATION, .default_value = "5000", .umin = 1,
     .umax = 600000, .description = "one try (ms)", INFERD_PROP_AT(settings, timeout_ms)},
    {.name = "retryCount", .type = INFERD_PROP_TYPE_UINT, .default_value = "3", .umax = 1000,
     .description = "tries after a failure that may pass", INFERD_PROP_AT(settings, retry_count)},
    {.name = "retryInterval", .type = INFERD_PROP_TYPE_DURATION, .default_value = "1000",
     .umin = 1, .umax = 3600000, .description = "before the first retry, doubled each time (ms)",
     INFERD_PROP_AT(settings, retry_interval_ms)},
    COMMON_SPECS,
    INFERD_PROP_END,
};

static http_post_options http_options(const settings *s)
{
    return (http_post_options){s->url, s->method, s->headers, s->timeout_ms, s->retry_count,
                               s->retry_interval_ms};
}

static inferd_status http_check(rules_engine *e, const settings *s, inferd_error *err)
{
    (void)e;
    http_post_options o = http_options(s);
    return http_post_check(&o, "http", err);
}

static inferd_status http_open(raction *a, const settings *s, inferd_error *err)
{
    http_post_options o = http_options(s);
    return http_post_new(&o, "http", (http_post **)&a->impl, err);
}

/* A stopping rule gives up retrying at its drain deadline. */
static bool past_drain_deadline(void *ctx)
{
    raction *a = ctx;
    uint64_t deadline = atomic_load(&a->drain_deadline_us);
    return deadline && inferd__now_us() > deadline;
}

static inferd_status http_send(raction *a, const inferd_value *item, const char *json, size_t len,
                               inferd_error *err)
{
    (void)item;
    unsigned retries = 0;
    inferd_status st = http_post_send(a->impl, json, len, NULL, past_drain_deadline, a, &retries,
                                      err);
    if (retries)
        inferd_log_debug(LOG, "rule %s: http: sent after %u retries (%s)", a->rule->id, retries,
                         st == INFERD_OK ? "ok" : err->message);
    return st;
}

static void http_close(raction *a)
{
    http_post_free(a->impl);
    a->impl = NULL;
}

/* ---- log ------------------------------------------------------------------------- */

static inferd_status log_check(rules_engine *e, const settings *s, inferd_error *err)
{
    (void)e, (void)s, (void)err;
    return INFERD_OK;
}

static inferd_status log_open(raction *a, const settings *s, inferd_error *err)
{
    (void)a, (void)s, (void)err;
    return INFERD_OK;
}

static inferd_status log_send(raction *a, const inferd_value *item, const char *json, size_t len,
                              inferd_error *err)
{
    (void)item, (void)err;
    inferd_log_info(LOG, "rule %s: %.*s", a->rule->id, (int)len, json);
    return INFERD_OK;
}

static void log_close(raction *a) { (void)a; }

/* ---- file ------------------------------------------------------------------------ */

static const inferd_prop_spec file_specs[] = {
    {.name = "path", .type = INFERD_PROP_TYPE_STRING, .description = "an absolute path inside "
     "rules.file_dirs", INFERD_PROP_AT(settings, path)},
    COMMON_SPECS,
    INFERD_PROP_END,
};

static inferd_status file_check(rules_engine *e, const settings *s, inferd_error *err)
{
    return rules_file_allowed(e, "file action: path", s->path, err);
}

static inferd_status file_open(raction *a, const settings *s, inferd_error *err)
{
    FILE *f = fopen(s->path, "a");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "file: cannot open %s for appending: %s",
                                s->path, strerror(errno));
    a->impl = f;
    return INFERD_OK;
}

/* One JSON document per line (JSON Lines): appended and flushed, so a
 * reader sees every result as soon as it is sent. */
static inferd_status file_send(raction *a, const inferd_value *item, const char *json, size_t len,
                               inferd_error *err)
{
    FILE *f = a->impl;
    (void)item;
    if (fwrite(json, 1, len, f) != len || fputc('\n', f) == EOF || fflush(f) != 0)
        return inferd_error_set(err, INFERD_EIO, "file: write failed: %s", strerror(errno));
    return INFERD_OK;
}

static void file_close(raction *a)
{
    if (a->impl)
        fclose(a->impl);
    a->impl = NULL;
}

/* ---- sink components ------------------------------------------------------------- */

/* The action's settings without the common ones are the component's
 * properties. */
static inferd_value *sink_props(const inferd_value *conf)
{
    inferd_value *p = inferd_value_copy(conf);
    for (const inferd_prop_spec *c = common_specs; p && c->name; c++)
        if (inferd_value_object_get(p, c->name))
            inferd_value_object_remove(p, c->name, NULL);
    return p;
}

static inferd_status sink_check(rules_engine *e, const settings *s, inferd_error *err)
{
    (void)e, (void)s, (void)err;
    return INFERD_OK; /* the component checks its properties when it starts */
}

static inferd_status sink_open(raction *a, const settings *s, inferd_error *err)
{
    (void)s;
    inferd_value *props = sink_props(a->conf);
    if (!props)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance *inst = NULL;
    inferd_status st = inferd_instance_create(a->rule->e->reg, a->type, NULL, props, &inst, err);
    inferd_value_free(props);
    if (st == INFERD_OK)
        a->impl = inst;
    return st;
}

static inferd_status sink_send(raction *a, const inferd_value *item, const char *json, size_t len,
                               inferd_error *err)
{
    (void)json, (void)len;
    return inferd_instance_collect(a->impl, item, err);
}

static void sink_close(raction *a)
{
    if (a->impl)
        inferd_instance_destroy(a->impl);
    a->impl = NULL;
}

/* ---- the kinds ------------------------------------------------------------------- */

static const raction_kind kinds[] = {
    {"mqtt", mqtt_specs, mqtt_check, mqtt_open, mqtt_send, mqtt_close, mqtt_describe},
    {"http", http_specs, http_check, http_open, http_send, http_close, NULL},
    {"rest", http_specs, http_check, http_open, http_send, http_close, NULL},
    {"log", common_specs, log_check, log_open, log_send, log_close, NULL},
    {"file", file_specs, file_check, file_open, file_send, file_close, NULL},
};
static const raction_kind sink_kind = {"sink", common_specs, sink_check, sink_open, sink_send,
                                       sink_close, NULL};

const inferd_prop_spec *raction_specs(const char *kind)
{
    for (size_t k = 0; kind && k < sizeof kinds / sizeof *kinds; k++)
        if (strcmp(kinds[k].name, kind) == 0)
            return kinds[k].specs;
    return kind && strcmp(kind, "sink") == 0 ? sink_kind.specs : NULL;
}

static inferd_status find_kind(rules_engine *e, const inferd_value *action, size_t i,
                               const char **type, const inferd_value **conf,
                               const raction_kind **kind, inferd_error *err)
{
    if (!inferd_value_is(action, INFERD_VALUE_OBJECT) || inferd_value_object_len(action) != 1)
        return inferd_error_set(err, INFERD_EINVAL, "actions[%zu] must be an object with one "
                                "key, the action's kind: {\"mqtt\": {...}}", i);
    inferd_value *c;
    inferd_value_object_entry(action, 0, type, &c);
    if (!inferd_value_is(c, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: the settings of \"%s\" must "
                                "be an object", i, *type);
    *conf = c;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        if (strcmp(kinds[k].name, *type) == 0) {
            *kind = &kinds[k];
            return INFERD_OK;
        }
    const inferd_component *comp = inferd_registry_find(e->reg, *type, NULL);
    if (!comp || comp->kind != INFERD_KIND_SINK)
        return inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: unknown action \"%s\": mqtt, "
                                "http, rest, log, file or a sink component of a plugin", i,
                                *type);
    *kind = &sink_kind;
    return INFERD_OK;
}

inferd_status raction_check(rules_engine *e, const inferd_value *action, size_t i,
                            inferd_error *err)
{
    const char *type;
    const inferd_value *conf;
    const raction_kind *kind;
    inferd_props *props = NULL;
    settings s;
    inferd_status st = find_kind(e, action, i, &type, &conf, &kind, err);
    if (st == INFERD_OK)
        st = read_settings(kind, type, i, conf, &props, &s, err);
    if (st == INFERD_OK && (st = kind->check(e, &s, err)) != INFERD_OK)
        inferd_error_prefix(err, "actions[%zu]", i);
    if (st == INFERD_OK && s.enable_cache && !e->cache_dir)
        st = inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: %s: enableCache needs a state "
                              "folder to keep the cache in", i, type);
    inferd_props_free(props);
    return st;
}

/* ---- running ----------------------------------------------------------------------- */

/* Whether a failed send is the destination's (unreachable, busy, not
 * ready: worth keeping for later) rather than the message's (a 4xx, a value
 * it refuses: sending it again would fail again). */
static bool far_end_failed(inferd_status st)
{
    return st == INFERD_EIO || st == INFERD_ETIMEOUT || st == INFERD_EBUSY || st == INFERD_ESTATE;
}

/* Sends one item (json: its text when the caller has it). Counts what
 * happened, except a failure that cached is true for: the caller keeps
 * the item and counts it when it is finally sent or given up. */
static inferd_status send_one(raction *a, const inferd_value *item, const char *json, size_t len,
                              bool cached)
{
    char *owned = NULL;
    inferd_error err = {0};
    uint64_t t0 = inferd__now_us();
    if (!cached)
        atomic_fetch_add(&a->stats.in, 1);
    atomic_store(&a->stats.last_invocation, rules_wall_ms());
    inferd_status st = INFERD_OK;
    if (!json && (st = inferd_value_to_json(item, INFERD_JSON_COMPACT, &owned, &len, &err)) ==
                     INFERD_OK)
        json = owned;
    if (st == INFERD_OK)
        st = a->kind->send(a, item, json, len, &err);
    if (st == INFERD_OK)
        atomic_fetch_add(&a->stats.out, 1);
    else if (a->cache && far_end_failed(st))
        ; /* kept */
    else if (st == INFERD_EBUSY)
        atomic_fetch_add(&a->stats.dropped, 1);
    else
        rstats_exception(&a->stats, "%s", err.message);
    if (st != INFERD_OK && a->cache && far_end_failed(st))
        inferd_log_debug(LOG, "rule %s: actions[%zu]: %s (kept in its cache)", a->rule->id,
                         a->index, err.message);
    atomic_store(&a->stats.latency_us, inferd__now_us() - t0);
    free(owned);
    return st;
}

/* Into the cache, behind what is there: dropped and counted when it is
 * full or cannot be written. arrived: not counted in yet (not tried). */
static void keep(raction *a, const inferd_value *item, bool arrived)
{
    if (arrived)
        atomic_fetch_add(&a->stats.in, 1);
    char *json = NULL;
    size_t len = 0;
    inferd_error err = {0};
    inferd_status st = inferd_value_to_json(item, INFERD_JSON_COMPACT, &json, &len, &err);
    if (st == INFERD_OK)
        st = rcache_append(a->cache, json, len, &err);
    free(json);
    if (st == INFERD_EBUSY)
        atomic_fetch_add(&a->stats.dropped, 1);
    else if (st != INFERD_OK)
        rstats_exception(&a->stats, "%s", err.message);
}

/* The oldest cached result, once: sent (next), the message's fault
 * (counted, next), or the destination still down (kept; false). */
static bool resend_head(raction *a)
{
    const char *json;
    size_t len;
    inferd_error err = {0};
    if (rcache_peek(a->cache, &json, &len, &err) != INFERD_OK) {
        rstats_exception(&a->stats, "%s", err.message);
        return false;
    }
    inferd_value *item = NULL;
    inferd_status st = inferd_value_from_json(json, len, 0, &item, &err);
    if (st != INFERD_OK) { /* a line this daemon did not write */
        rstats_exception(&a->stats, "cache: %s", err.message);
        rcache_pop(a->cache);
        return true;
    }
    st = send_one(a, item, json, len, true);
    inferd_value_free(item);
    if (st != INFERD_OK && far_end_failed(st))
        return false;
    rcache_pop(a->cache);
    return true;
}

/* While anything is cached, everything goes through the cache, in order:
 * what arrives is appended, and the head is tried again, retryInterval
 * doubling from 100 ms to 30 s while the destination is down,
 * resendInterval apart once it is up. Returns when the cache is empty
 * (false) or the queue is closed (true: the rest stays cached). */
static bool drain_cache(raction *a)
{
    uint64_t next_try = 0, backoff_ms = CACHE_RETRY_MIN_MS;
    for (;;) {
        void *item;
        inferd_status st;
        while ((st = inferd_queue_pop(a->q, &item, 0)) == INFERD_OK) {
            keep(a, item, true);
            inferd_value_free(item);
        }
        if (st == INFERD_ESTATE)
            return true;
        if (rcache_pending(a->cache) == 0)
            return false;
        uint64_t now = inferd__now_us();
        if (now >= next_try) {
            if (resend_head(a)) {
                backoff_ms = CACHE_RETRY_MIN_MS;
                next_try = now + (uint64_t)a->resend_interval_ms * 1000u;
                continue;
            }
            next_try = now + backoff_ms * 1000u;
            backoff_ms = backoff_ms * 2 > CACHE_RETRY_MAX_MS ? CACHE_RETRY_MAX_MS : backoff_ms * 2;
        }
        /* Until the next try, or something new to append. */
        uint64_t wait_ms = (next_try - inferd__now_us()) / 1000u + 1;
        st = inferd_queue_pop(a->q, &item, (int)(wait_ms > 1000 ? 1000 : wait_ms));
        if (st == INFERD_OK) {
            keep(a, item, true);
            inferd_value_free(item);
        } else if (st == INFERD_ESTATE) {
            return true;
        }
    }
}

static void *action_thread(void *arg)
{
    raction *a = arg;
    void *item;
    if (a->cache && rcache_pending(a->cache) > 0 && drain_cache(a))
        return NULL; /* stopped while an earlier run's results were still cached */
    while (inferd_queue_pop(a->q, &item, -1) == INFERD_OK) {
        uint64_t deadline = atomic_load(&a->drain_deadline_us);
        if (deadline && inferd__now_us() > deadline && a->cache) {
            keep(a, item, true); /* stopping: for the next run */
        } else if (deadline && inferd__now_us() > deadline) {
            atomic_fetch_add(&a->stats.dropped, 1); /* stopping, and out of time */
        } else {
            inferd_status st = send_one(a, item, NULL, 0, false);
            if (st != INFERD_OK && a->cache && far_end_failed(st)) {
                keep(a, item, false);
                inferd_value_free(item);
                if (drain_cache(a))
                    return NULL;
                continue;
            }
        }
        inferd_value_free(item);
    }
    return NULL;
}

static void drop_item(void *item) { inferd_value_free(item); }

inferd_status raction_start(raction *a, rrule *r, size_t i, const inferd_value *action,
                            inferd_error *err)
{
    const char *type;
    const inferd_value *conf;
    const raction_kind *kind;
    memset(a, 0, sizeof *a);
    rstats_init(&a->stats);
    a->rule = r;
    a->index = i;
    inferd_status st = find_kind(r->e, action, i, &type, &conf, &kind, err);
    if (st != INFERD_OK)
        return st;
    a->kind = kind;
    a->conf = (inferd_value *)conf;
    settings s;
    if ((st = read_settings(kind, type, i, conf, &a->props, &s, err)) != INFERD_OK)
        return st;
    a->send_single = s.send_single;
    a->resend_interval_ms = s.resend_interval_ms;
    if (s.enable_cache && !r->e->cache_dir)
        st = inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: enableCache needs a state "
                              "folder", i);
    if (st == INFERD_OK && s.enable_cache &&
        (st = rcache_open(r->e->cache_dir, r->id, i, (size_t)s.max_disk_cache, &a->cache,
                          err)) != INFERD_OK)
        inferd_error_prefix(err, "actions[%zu]", i);
    if (st != INFERD_OK) {
        inferd_props_free(a->props);
        a->props = NULL;
        return st;
    }
    if (!(a->type = strdup(type)) || !(a->q = inferd_queue_new_bytes(r->buffer_length,
                                                                 rules_buffer_max_bytes(r->e)))) {
        free(a->type);
        rcache_free(a->cache);
        inferd_props_free(a->props);
        a->type = NULL, a->cache = NULL, a->props = NULL;
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if ((st = kind->open(a, &s, err)) != INFERD_OK) {
        inferd_error_prefix(err, "actions[%zu]", i);
    } else if (pthread_create(&a->thread, NULL, action_thread, a) != 0) {
        kind->close(a);
        st = inferd_error_set(err, INFERD_EIO, "actions[%zu]: cannot start a thread", i);
    }
    if (st != INFERD_OK) {
        inferd_queue_free(a->q, NULL);
        rcache_free(a->cache);
        inferd_props_free(a->props);
        free(a->type);
        a->q = NULL, a->type = NULL, a->cache = NULL, a->props = NULL;
        return st;
    }
    a->has_thread = true;
    return INFERD_OK;
}

static void offer(raction *a, const inferd_value *item)
{
    inferd_value *copy = inferd_value_copy(item);
    if (!copy ||
        inferd_queue_push_sized(a->q, copy, inferd__value_footprint(copy), 0) != INFERD_OK) {
        inferd_value_free(copy);
        atomic_fetch_add(&a->stats.dropped, 1);
    }
}

void raction_offer(raction *a, const inferd_value *rows)
{
    if (!a->has_thread)
        return;
    if (!a->send_single) {
        offer(a, rows);
        return;
    }
    for (size_t i = 0; i < inferd_value_array_len(rows); i++)
        offer(a, inferd_value_array_get(rows, i));
}

void raction_stop(raction *a)
{
    if (a->has_thread) {
        /* What is queued is still sent (the thread drains a closed queue),
         * for at most a second: a lost destination must not hold a stop. */
        atomic_store(&a->drain_deadline_us, inferd__now_us() + 1000000u);
        inferd_queue_close(a->q);
        pthread_join(a->thread, NULL);
        a->has_thread = false;
        a->kind->close(a);
    }
    if (a->q)
        inferd_queue_free(a->q, drop_item);
    a->q = NULL;
    rcache_free(a->cache);
    a->cache = NULL;
    inferd_props_free(a->props); /* after close: the kind borrowed its strings */
    a->props = NULL;
    free(a->type);
    a->type = NULL;
    rstats_destroy(&a->stats);
}

void raction_describe(raction *a, inferd_value *obj)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "sink_%s_%zu_0", a->type, a->index);
    rstats_describe(&a->stats, prefix, obj);
    char key[340];
    snprintf(key, sizeof key, "%s_buffer_length", prefix);
    inferd__put(obj, key, inferd_value_int((int64_t)(a->q ? inferd_queue_length(a->q) : 0)),
                NULL);
    if (a->cache) {
        snprintf(key, sizeof key, "%s_cache_length", prefix);
        inferd__put(obj, key, inferd_value_int((int64_t)rcache_pending(a->cache)), NULL);
    }
    if (a->kind && a->kind->describe)
        a->kind->describe(a, prefix, obj);
}
