/* actions.c: where a rule's results go. Each action of a running rule has
 * its own thread and bounded buffer (the rule's bufferLength), so a slow or
 * lost destination holds nothing else; what does not fit is dropped and
 * counted. Kinds: mqtt, http (the seeds' engine calls it rest), log, file,
 * and any sink component of a plugin (C or portable).
 *
 * Every action takes "sendSingle": true sends each result row as its own
 * message; false (the default) sends the rows of one emission as a JSON
 * array. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/footprint.h"
#include "inferd/log.h"
#include "rules/internal.h"

#define LOG "rules"

typedef struct raction_kind {
    const char *name;
    /* conf is the action's object; errors say which setting is wrong */
    inferd_status (*check)(rules_engine *e, const inferd_value *conf, inferd_error *err);
    inferd_status (*open)(raction *a, const inferd_value *conf, inferd_error *err);
    inferd_status (*send)(raction *a, const inferd_value *item, const char *json, size_t len,
                          inferd_error *err);
    void (*close)(raction *a);
    void (*describe)(raction *a, const char *prefix, inferd_value *obj);
} raction_kind;

/* ---- settings ---------------------------------------------------------------- */

/* The settings every action has (eKuiper's common sink properties):
 * sendSingle, and the disk cache of what its destination cannot take now
 * (enableCache, at most maxDiskCache results, resent resendInterval ms
 * apart once it takes them again). */
#define COMMON_KEYS "sendSingle", "enableCache", "maxDiskCache", "resendInterval"
#define MAX_DISK_CACHE_DEFAULT 1024000
#define CACHE_RETRY_MIN_MS 100
#define CACHE_RETRY_MAX_MS 30000

/* Checks every key of conf is one of keys (which list COMMON_KEYS). */
static inferd_status check_keys(const char *kind, const inferd_value *conf,
                                const char *const *keys, inferd_error *err)
{
    return rules_only_keys(conf, kind, "setting", keys, err);
}

static inferd_status get_string(const char *kind, const inferd_value *conf, const char *key,
                                bool required, const char **out, inferd_error *err)
{
    const inferd_value *v = inferd_value_object_get(conf, key);
    *out = NULL;
    if (!v) {
        if (required)
            return inferd_error_set(err, INFERD_EINVAL, "%s: \"%s\" is required", kind, key);
        return INFERD_OK;
    }
    if (inferd_value_get_string(v, out, NULL, NULL) != INFERD_OK || !(*out)[0])
        return inferd_error_set(err, INFERD_EINVAL, "%s: \"%s\" must be a non-empty string",
                                kind, key);
    return INFERD_OK;
}

static inferd_status get_int(const char *kind, const inferd_value *conf, const char *key,
                             int64_t lo, int64_t hi, int64_t fallback, int64_t *out,
                             inferd_error *err)
{
    const inferd_value *v = inferd_value_object_get(conf, key);
    *out = fallback;
    if (!v)
        return INFERD_OK;
    if (inferd_value_get_int(v, out, NULL) != INFERD_OK || *out < lo || *out > hi)
        return inferd_error_set(err, INFERD_EINVAL, "%s: \"%s\" must be an integer in %lld..%lld",
                                kind, key, (long long)lo, (long long)hi);
    return INFERD_OK;
}

static inferd_status get_bool(const char *kind, const inferd_value *conf, const char *key,
                              bool *out, inferd_error *err)
{
    const inferd_value *v = inferd_value_object_get(conf, key);
    if (v && inferd_value_get_bool(v, out, NULL) != INFERD_OK)
        return inferd_error_set(err, INFERD_EINVAL, "%s: \"%s\" must be true or false", kind,
                                key);
    return INFERD_OK;
}

/* ---- mqtt ------------------------------------------------------------------------ */

typedef struct mqtt_action {
    mqtt_client *client;
    const char *topic; /* borrowed from the definition */
    int qos;
    bool retain;
} mqtt_action;

static const char *const mqtt_keys[] = {"server", "topic", "qos", "retained", "clientId",
                                        "username", "password", "protocolVersion", "confKey",
                                        COMMON_KEYS, NULL};

/* *client_id: the action's own clientId, used as it is (NULL: none). */
static inferd_status mqtt_settings(rules_engine *e, const inferd_value *conf, mqtt_options *mo,
                                   const char **topic, int64_t *qos, bool *retain,
                                   const char **client_id, inferd_error *err)
{
    const char *conf_key, *s;
    int64_t proto;
    inferd_status st;
    if ((st = check_keys("mqtt", conf, mqtt_keys, err)) ||
        (st = get_string("mqtt", conf, "confKey", false, &conf_key, err)) ||
        (st = rules_mqtt_profile(e, conf_key, mo, err)) ||
        (st = get_string("mqtt", conf, "topic", true, topic, err)) ||
        (st = get_int("mqtt", conf, "qos", 0, 2, 0, qos, err)) ||
        (st = get_bool("mqtt", conf, "retained", retain, err)) ||
        (st = get_int("mqtt", conf, "protocolVersion", 4, 5, mo->protocol ? mo->protocol : 5,
                      &proto, err)))
        return st;
    if (strpbrk(*topic, "+#"))
        return inferd_error_set(err, INFERD_EINVAL, "mqtt: topic \"%s\": a topic to publish to "
                                "has no wildcards", *topic);
    mo->protocol = (int)proto;
    if ((st = get_string("mqtt", conf, "server", false, &s, err)))
        return st;
    if (s)
        mo->server = s;
    if ((st = get_string("mqtt", conf, "clientId", false, &s, err)))
        return st;
    *client_id = s;
    if ((st = get_string("mqtt", conf, "username", false, &s, err)))
        return st;
    if (s)
        mo->username = s;
    if ((st = get_string("mqtt", conf, "password", false, &s, err)))
        return st;
    if (s)
        mo->password = s;
    return rules_mqtt_check_server(mo->server, "mqtt: server", err);
}

static inferd_status mqtt_check(rules_engine *e, const inferd_value *conf, inferd_error *err)
{
    mqtt_options mo;
    const char *topic, *client_id;
    int64_t qos;
    bool retain = false;
    return mqtt_settings(e, conf, &mo, &topic, &qos, &retain, &client_id, err);
}

static inferd_status mqtt_open(raction *a, const inferd_value *conf, inferd_error *err)
{
    rules_engine *e = a->rule->e;
    mqtt_action *m = calloc(1, sizeof *m);
    if (!m)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    mqtt_options mo;
    int64_t qos;
    const char *own_id = NULL;
    inferd_status st = mqtt_settings(e, conf, &mo, &m->topic, &qos, &m->retain, &own_id, err);
    char name[300], id[300], who[280];
    snprintf(name, sizeof name, "rule %s action %zu", a->rule->id, a->index);
    snprintf(who, sizeof who, "rule-%s-%zu", a->rule->id, a->index);
    rules_mqtt_client_id(e, &mo, who, id, sizeof id);
    mo.client_id = own_id ? own_id : id;
    mo.name = name;
    mo.max_queued = a->rule->buffer_length;
    if (!inferd_value_object_get(conf, "qos"))
        qos = a->rule->qos;
    m->qos = (int)qos;
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
    inferd_value_object_set(obj, key, inferd_value_int(ms->connected ? 1 : 0), NULL);
    snprintf(key, sizeof key, "%s_connection_last_error", prefix);
    inferd_value_object_set(obj, key, inferd_value_string(ms->last_error), NULL);
    snprintf(key, sizeof key, "%s_connection_last_error_time", prefix);
    inferd_value_object_set(obj, key, inferd_value_int(ms->last_error_ms), NULL);
    snprintf(key, sizeof key, "%s_connects_total", prefix);
    inferd_value_object_set(obj, key, inferd_value_int((int64_t)ms->connects), NULL);
    snprintf(key, sizeof key, "%s_disconnects_total", prefix);
    inferd_value_object_set(obj, key, inferd_value_int((int64_t)ms->disconnects), NULL);
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
    inferd_value_object_set(obj, key, inferd_value_int((int64_t)ms.queued), NULL);
}

void rules_describe_connection(const char *prefix, const mqtt_stats *ms, inferd_value *obj)
{
    put_conn(obj, prefix, ms);
}

/* ---- http ------------------------------------------------------------------------ */

typedef struct http_action {
    CURL *curl;
    struct curl_slist *headers;
    const char *url, *method;
    long timeout_ms;
    int64_t retry_count, retry_interval_ms; /* eKuiper's sink properties */
} http_action;

static const char *const http_keys[] = {"url", "method", "headers", "timeout", "retryCount",
                                        "retryInterval", COMMON_KEYS, NULL};

static inferd_status http_settings(const inferd_value *conf, http_action *h, inferd_error *err)
{
    inferd_status st;
    int64_t timeout;
    if ((st = check_keys("http", conf, http_keys, err)) ||
        (st = get_string("http", conf, "url", true, &h->url, err)) ||
        (st = get_string("http", conf, "method", false, &h->method, err)) ||
        (st = get_int("http", conf, "timeout", 1, 600000, 5000, &timeout, err)) ||
        (st = get_int("http", conf, "retryCount", 0, 1000, 3, &h->retry_count, err)) ||
        (st = get_int("http", conf, "retryInterval", 1, 3600000, 1000, &h->retry_interval_ms,
                      err)))
        return st;
    h->timeout_ms = (long)timeout;
    if (strncmp(h->url, "http://", 7) != 0 && strncmp(h->url, "https://", 8) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "http: url \"%s\" must start with http:// "
                                "or https://", h->url);
    if (!h->method)
        h->method = "POST";
    if (strcasecmp(h->method, "POST") != 0 && strcasecmp(h->method, "PUT") != 0 &&
        strcasecmp(h->method, "PATCH") != 0)
        return inferd_error_set(err, INFERD_EINVAL, "http: method must be POST, PUT or PATCH, "
                                "got \"%s\"", h->method);
    const inferd_value *hd = inferd_value_object_get(conf, "headers");
    if (hd && !inferd_value_is(hd, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "http: headers must be an object of "
                                "strings");
    const char *key;
    inferd_value *v;
    for (size_t i = 0; hd && inferd_value_object_entry(hd, i, &key, &v); i++)
        if (!inferd_value_is(v, INFERD_VALUE_STRING) || strpbrk(key, ":\r\n") ||
            strpbrk(inferd_value_string_or(v, ""), "\r\n"))
            return inferd_error_set(err, INFERD_EINVAL, "http: header \"%s\" must be a string "
                                    "without line breaks", key);
    return INFERD_OK;
}

static inferd_status http_check(rules_engine *e, const inferd_value *conf, inferd_error *err)
{
    http_action h = {0};
    (void)e;
    return http_settings(conf, &h, err);
}

static inferd_status http_open(raction *a, const inferd_value *conf, inferd_error *err)
{
    http_action *h = calloc(1, sizeof *h);
    if (!h)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = http_settings(conf, h, err);
    if (st == INFERD_OK && !(h->curl = curl_easy_init()))
        st = inferd_error_set(err, INFERD_ENOMEM, "http: cannot make a curl handle");
    const inferd_value *hd = inferd_value_object_get(conf, "headers");
    const char *key;
    inferd_value *v;
    bool has_type = false;
    for (size_t i = 0; st == INFERD_OK && hd && inferd_value_object_entry(hd, i, &key, &v); i++) {
        char line[2048];
        snprintf(line, sizeof line, "%s: %s", key, inferd_value_string_or(v, ""));
        has_type |= strcasecmp(key, "Content-Type") == 0;
        struct curl_slist *l = curl_slist_append(h->headers, line);
        if (!l)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else
            h->headers = l;
    }
    if (st == INFERD_OK && !has_type) {
        struct curl_slist *l = curl_slist_append(h->headers, "Content-Type: application/json");
        if (!l)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else
            h->headers = l;
    }
    if (st != INFERD_OK) {
        curl_slist_free_all(h->headers);
        if (h->curl)
            curl_easy_cleanup(h->curl);
        free(h);
        return st;
    }
    a->impl = h;
    return INFERD_OK;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

/* One try. *retry: whether the failure may pass (the far end unreachable,
 * a timeout, 5xx, 408, 429); a 4xx is the message's and is not retried. */
static inferd_status http_try(http_action *h, const char *json, size_t len, bool *retry,
                              inferd_error *err)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    *retry = true;
    if (rc != CURLE_OK)
        return inferd_error_set(err, INFERD_EIO, "http: %s %s: %s", h->method, h->url,
                                curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return INFERD_OK;
    *retry = code >= 500 || code == 408 || code == 429;
    /* EINVAL: the message's fault, never kept in a cache to send again */
    return inferd_error_set(err, *retry ? INFERD_EIO : INFERD_EINVAL,
                            "http: %s %s: the server answered %ld", h->method, h->url, code);
}

/* Tries 1 + retryCount times, waiting retryInterval and then twice as long
 * each time (30 s at most) between tries, so that a receiver that is down
 * for a while loses nothing. A stopping rule gives up at its drain
 * deadline. */
static inferd_status http_send(raction *a, const inferd_value *item, const char *json, size_t len,
                               inferd_error *err)
{
    http_action *h = a->impl;
    (void)item;
    uint64_t wait_ms = (uint64_t)h->retry_interval_ms;
    for (int64_t attempt = 0;; attempt++) {
        bool retry = false;
        inferd_status st = http_try(h, json, len, &retry, err);
        if (st == INFERD_OK || !retry || attempt >= h->retry_count)
            return st;
        inferd_log_debug(LOG, "rule %s: %s; trying again in %llu ms (%lld of %lld)",
                         a->rule->id, err->message, (unsigned long long)wait_ms,
                         (long long)attempt + 1, (long long)h->retry_count);
        for (uint64_t end = inferd__now_us() + wait_ms * 1000; inferd__now_us() < end;) {
            uint64_t deadline = atomic_load(&a->drain_deadline_us);
            if (deadline && inferd__now_us() > deadline)
                return st; /* stopping, and out of time */
            usleep(20000);
        }
        wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
    }
}

static void http_close(raction *a)
{
    http_action *h = a->impl;
    if (!h)
        return;
    curl_slist_free_all(h->headers);
    curl_easy_cleanup(h->curl);
    free(h);
    a->impl = NULL;
}

/* ---- log ------------------------------------------------------------------------- */

static const char *const log_keys[] = {COMMON_KEYS, NULL};

static inferd_status log_check(rules_engine *e, const inferd_value *conf, inferd_error *err)
{
    (void)e;
    return check_keys("log", conf, log_keys, err);
}

static inferd_status log_open(raction *a, const inferd_value *conf, inferd_error *err)
{
    (void)a, (void)conf, (void)err;
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

static const char *const file_keys[] = {"path", COMMON_KEYS, NULL};

static inferd_status file_check(rules_engine *e, const inferd_value *conf, inferd_error *err)
{
    const char *path;
    inferd_status st;
    if ((st = check_keys("file", conf, file_keys, err)) ||
        (st = get_string("file", conf, "path", true, &path, err)))
        return st;
    return rules_file_allowed(e, "file action: path", path, err);
}

static inferd_status file_open(raction *a, const inferd_value *conf, inferd_error *err)
{
    const char *path;
    inferd_status st = get_string("file", conf, "path", true, &path, err);
    if (st != INFERD_OK)
        return st;
    FILE *f = fopen(path, "a");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "file: cannot open %s for appending: %s", path,
                                strerror(errno));
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
    static const char *const common[] = {COMMON_KEYS};
    inferd_value *p = inferd_value_copy(conf);
    for (size_t i = 0; p && i < sizeof common / sizeof *common; i++)
        if (inferd_value_object_get(p, common[i]))
            inferd_value_object_remove(p, common[i], NULL);
    return p;
}

static inferd_status sink_check(rules_engine *e, const inferd_value *conf, inferd_error *err)
{
    (void)e, (void)conf, (void)err;
    return INFERD_OK; /* the component checks its properties when it starts */
}

static inferd_status sink_open(raction *a, const inferd_value *conf, inferd_error *err)
{
    inferd_value *props = sink_props(conf);
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
    {"mqtt", mqtt_check, mqtt_open, mqtt_send, mqtt_close, mqtt_describe},
    {"http", http_check, http_open, http_send, http_close, NULL},
    {"rest", http_check, http_open, http_send, http_close, NULL},
    {"log", log_check, log_open, log_send, log_close, NULL},
    {"file", file_check, file_open, file_send, file_close, NULL},
};
static const raction_kind sink_kind = {"sink", sink_check, sink_open, sink_send, sink_close,
                                       NULL};

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
    inferd_status st = find_kind(e, action, i, &type, &conf, &kind, err);
    bool single = false, cache = false;
    int64_t n;
    if (st == INFERD_OK &&
        ((st = get_bool(type, conf, "sendSingle", &single, err)) ||
         (st = get_bool(type, conf, "enableCache", &cache, err)) ||
         (st = get_int(type, conf, "maxDiskCache", 1, 100000000, 1, &n, err)) ||
         (st = get_int(type, conf, "resendInterval", 0, 3600000, 0, &n, err)) ||
         (st = kind->check(e, conf, err))))
        inferd_error_prefix(err, "actions[%zu]", i);
    if (st == INFERD_OK && cache && !e->cache_dir)
        st = inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: %s: enableCache needs a state "
                              "folder to keep the cache in", i, type);
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
    get_bool(type, conf, "sendSingle", &a->send_single, NULL);
    bool cache = false;
    int64_t max_cache = MAX_DISK_CACHE_DEFAULT;
    get_bool(type, conf, "enableCache", &cache, NULL);
    get_int(type, conf, "maxDiskCache", 1, 100000000, MAX_DISK_CACHE_DEFAULT, &max_cache, NULL);
    get_int(type, conf, "resendInterval", 0, 3600000, 0, &a->resend_interval_ms, NULL);
    if (cache && !r->e->cache_dir)
        return inferd_error_set(err, INFERD_EINVAL, "actions[%zu]: enableCache needs a state "
                                "folder", i);
    if (cache && (st = rcache_open(r->e->cache_dir, r->id, i, (size_t)max_cache, &a->cache,
                                   err)) != INFERD_OK)
        return inferd_error_prefix(err, "actions[%zu]", i);
    if (!(a->type = strdup(type)) || !(a->q = inferd_queue_new_bytes(r->buffer_length,
                                                                 rules_buffer_max_bytes(r->e)))) {
        free(a->type);
        rcache_free(a->cache);
        a->type = NULL, a->cache = NULL;
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if ((st = kind->open(a, conf, err)) != INFERD_OK) {
        inferd_error_prefix(err, "actions[%zu]", i);
    } else if (pthread_create(&a->thread, NULL, action_thread, a) != 0) {
        kind->close(a);
        st = inferd_error_set(err, INFERD_EIO, "actions[%zu]: cannot start a thread", i);
    }
    if (st != INFERD_OK) {
        inferd_queue_free(a->q, NULL);
        rcache_free(a->cache);
        free(a->type);
        a->q = NULL, a->type = NULL, a->cache = NULL;
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
    inferd_value_object_set(obj, key, inferd_value_int((int64_t)(a->q ? inferd_queue_length(a->q)
                                                                       : 0)),
                            NULL);
    if (a->cache) {
        snprintf(key, sizeof key, "%s_cache_length", prefix);
        inferd_value_object_set(obj, key, inferd_value_int((int64_t)rcache_pending(a->cache)),
                                NULL);
    }
    if (a->kind && a->kind->describe)
        a->kind->describe(a, prefix, obj);
}
