/* monitoring: the request monitoring event plugin of the plugin seed, in C.
 *
 * An event component, monitoring, that receives the monitoring_event the
 * service publishes for every finished request: a point {"series",
 * "tags": {route, method, status, estimator}, "fields": {decode_ms, queue_ms,
 * inference_ms, total_ms}, "time"}. init creates the bucket with
 * POST {url}?bucket={bucket} (201 created, or 409 already there); handle
 * posts each point of a batch as {"tags", "fields", "series", "time"} to
 * {url}/{bucket}/objects. It runs on the event bus's thread, never on a
 * request's, so a slow or absent monitoring service slows no request: the
 * bus counts the failed batches (and the dropped events if it falls behind).
 *
 *   INFERD_ACTIVE_PLUGINS=monitoring \
 *   INFERD_PLUGIN_SETTINGS='{"monitoring": {"url": "http://127.0.0.1:5020/1/buckets"}}' \
 *   inferd serve
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf */
#endif
#include <inferd/plugin.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("url", "the monitoring service's buckets URL",
                       "http://127.0.0.1:5020/1/buckets"),
    INFERD_PROP_STRING("bucket", "the bucket the points go to", "plugin_test_bucket"),
    INFERD_PROP_UINT("timeoutMs", "longest one request to the monitoring service may take", 5000,
                     1, 600000),
    INFERD_PROP_END,
};

#define REPLY_MAX 512 /* what is kept of an answer, for messages */

typedef struct monitoring {
    CURL *curl;                  /* owned: one handle, reused (keeps the connection) */
    struct curl_slist *json;     /* owned: the Content-Type header */
    char *bucket_url;            /* owned: {url}?bucket={bucket} */
    char *objects_url;           /* owned: {url}/{bucket}/objects */
    char reply[REPLY_MAX + 1];   /* the start of the last answer's body */
    size_t reply_len;
} monitoring;

static size_t keep_reply(char *data, size_t size, size_t n, void *ctx)
{
    monitoring *m = ctx;
    size_t len = size * n, room = REPLY_MAX - m->reply_len;
    memcpy(m->reply + m->reply_len, data, len < room ? len : room);
    m->reply_len += len < room ? len : room;
    m->reply[m->reply_len] = '\0';
    return len;
}

/* POSTs body (may be empty) to url; *status gets the HTTP status. */
static inferd_status post(monitoring *m, const char *url, const char *body, size_t len,
                          long *status, inferd_error *err)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    m->reply_len = 0;
    m->reply[0] = '\0';
    curl_easy_setopt(m->curl, CURLOPT_URL, url);
    curl_easy_setopt(m->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(m->curl, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(m->curl, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(m->curl);
    curl_easy_setopt(m->curl, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK)
        return inferd_error_set(err, INFERD_EIO, "POST %s: %s", url,
                                curl_err[0] ? curl_err : curl_easy_strerror(rc));
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, status);
    return INFERD_OK;
}

static void monitoring_deinit(inferd_instance *self)
{
    monitoring *m = inferd_instance_state(self);
    if (!m)
        return;
    curl_easy_cleanup(m->curl);
    curl_slist_free_all(m->json);
    free(m->bucket_url);
    free(m->objects_url);
    free(m);
    curl_global_cleanup();
}

static inferd_status monitoring_init(inferd_instance *self, const inferd_props *p,
                                     inferd_error *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return inferd_error_set(err, INFERD_EINTERNAL, "libcurl did not initialise");
    monitoring *m = calloc(1, sizeof *m);
    if (!m) {
        curl_global_cleanup();
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_instance_set_state(self, m);
    const char *url = inferd_props_string(p, "url");
    const char *bucket = inferd_props_string(p, "bucket");
    char *escaped = NULL;
    if (!(m->curl = curl_easy_init()) || !(escaped = curl_easy_escape(m->curl, bucket, 0)) ||
        !(m->json = curl_slist_append(NULL, "Content-Type: application/json")) ||
        asprintf(&m->bucket_url, "%s?bucket=%s", url, escaped) < 0 ||
        asprintf(&m->objects_url, "%s/%s/objects", url, escaped) < 0) {
        curl_free(escaped);
        monitoring_deinit(self);
        inferd_instance_set_state(self, NULL);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    curl_free(escaped);
    long timeout = (long)inferd_props_int(p, "timeoutMs");
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(m->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, keep_reply);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, m);

    long status = 0;
    inferd_status st = post(m, m->bucket_url, "", 0, &status, err);
    if (st == INFERD_OK && status != 201 && status != 409)
        st = inferd_error_set(err, INFERD_EIO, "failed to create bucket %s: POST %s answered %ld, "
                              "response: %s", bucket, m->bucket_url, status, m->reply);
    else if (st != INFERD_OK)
        inferd_error_prefix(err, "failed to create bucket %s", bucket);
    if (st != INFERD_OK) {
        monitoring_deinit(self);
        inferd_instance_set_state(self, NULL);
        return st;
    }
    curl_easy_setopt(m->curl, CURLOPT_HTTPHEADER, m->json); /* the points are JSON */
    return INFERD_OK;
}

/* One point as the monitoring service takes it. */
static inferd_status flush_point(monitoring *m, const inferd_value *point, inferd_error *err)
{
    if (!inferd_value_is(point, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE, "a point is a JSON object, not %s",
                                inferd_value_type_name(inferd_value_type_of(point)));
    static const char *const keys[] = {"tags", "fields", "series", "time"};
    inferd_value *msg = inferd_value_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const inferd_value *v = inferd_value_object_get(point, keys[i]);
        if (v)
            inferd_value_object_set(msg, keys[i], inferd_value_copy(v), NULL);
    }
    char *json = NULL;
    size_t len = 0;
    inferd_status st = inferd_value_to_json(msg, INFERD_JSON_COMPACT, &json, &len, err);
    inferd_value_free(msg);
    if (st != INFERD_OK)
        return st;
    long status = 0;
    st = post(m, m->objects_url, json, len, &status, err);
    free(json);
    const char *series = inferd_value_string_or(inferd_value_object_get(point, "series"), "?");
    if (st == INFERD_OK && (status < 200 || status > 299))
        st = inferd_error_set(err, INFERD_EIO, "POST %s answered %ld: %s", m->objects_url,
                              status, m->reply);
    if (st == INFERD_OK && inferd_log_enabled(INFERD_LOG_DEBUG, "monitoring"))
        inferd_log_debug("monitoring", "point series %s, time %.3f: %ld %s", series,
                         inferd_value_double_or(inferd_value_object_get(point, "time"), 0),
                         status, m->reply);
    return st;
}

/* A batch: every point in order; the first that fails fails the batch (the
 * rest would most likely meet the same dead service, one timeout each). */
static inferd_status monitoring_handle(inferd_instance *self, const inferd_value *const *points,
                                       size_t n, inferd_error *err)
{
    monitoring *m = inferd_instance_state(self);
    for (size_t i = 0; i < n; i++)
        if (flush_point(m, points[i], err) != INFERD_OK)
            return inferd_error_prefix(err, "point %zu of %zu", i + 1, n);
    return INFERD_OK;
}

INFERD_PLUGIN("monitoring", "1.0.0",
              INFERD_EVENT("monitoring", "monitoring_event", props, monitoring_init,
                           monitoring_handle, monitoring_deinit))
