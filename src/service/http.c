/* service/http.c: the HTTP server on libmicrohttpd: connections, bodies,
 * routing, management access, replies now or later (suspend / resume).
 *
 * Threads: MHD runs an epoll listener with a pool of worker threads. A
 * handler runs on one of them, parses, and either replies at once or hands
 * the work off and suspends the connection; the reply then comes from any
 * thread (under the request's lock) and resumes it. No thread waits for
 * inference. Owns the MHD daemon and every svc_request.
 */
#include "service/http.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "inferd/log.h"
#include "inferd/value.h"
#include "service/service.h"
#include "core/utf8.h"
#include "net/address.h"
#include "net/linger.h"

#define LOG "http"
#define MAX_PARAMS 4

struct inferd_http {
    struct MHD_Daemon *mhd;
    uint16_t port;
    svc *s;
    char *tls_cert, *tls_key, *tls_ca; /* owned: the PEM texts (NULL: plain HTTP; no CA) */
    net_linger *linger;                /* owned: closes what would end in a reset */
};

struct svc_request {
    svc *s;
    struct MHD_Connection *conn;
    char method[16];
    char *path;                      /* owned */
    char *segments;                  /* owned: path split for the params */
    const char *params[MAX_PARAMS];  /* into segments */
    const char *route;               /* the matched pattern (static), or NULL */
    char *estimator;                 /* owned, may be NULL */
    char *body;                      /* owned */
    size_t body_len, body_cap;
    bool too_large, dispatched;
    char cert_refused[200];          /* why a client certificate was refused ("" none) */
    uint64_t started_us, decode_us, queue_us, infer_us;

    pthread_mutex_t lock;            /* guards the reply and suspended */
    bool want_suspend, suspended, replied;
    unsigned status;
    char *content_type;              /* owned */
    void *data;                      /* owned (malloc) */
    size_t data_len;
    inferd_http_header *headers;     /* owned */
    size_t n_headers;
    svc_stream *stream;              /* a streamed body; the response owns a reference */
};

/* A body written while it is sent (svc_reply_stream): bytes wait in buf
 * until MHD's reader takes them. Two references: the writer's (until
 * svc_stream_close) and the response's (until MHD frees it, when the
 * connection ends: then `gone`, and conn must not be touched again). */
struct svc_stream {
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    char *buf;                       /* owned: bytes [off, len) not yet sent */
    size_t off, len, cap, max;
    bool closed, gone, waiting;      /* waiting: the connection is suspended for data */
    int refs;
};

/* ---- request accessors ------------------------------------------------------ */

const char *svc_method(const svc_request *r) { return r->method; }
const char *svc_path(const svc_request *r) { return r->path; }
const char *svc_param(const svc_request *r, size_t i) { return i < MAX_PARAMS ? r->params[i] : NULL; }
svc *svc_of(const svc_request *r) { return r->s; }
struct MHD_Connection *svc_connection(const svc_request *r) { return r->conn; }
uint64_t svc_started_us(const svc_request *r) { return r->started_us; }

const char *svc_query(const svc_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *svc_header(const svc_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct query_iter {
    void (*fn)(void *ctx, const char *k, const char *v);
    void *ctx;
} query_iter;

static enum MHD_Result each_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    query_iter *it = cls;
    it->fn(it->ctx, key, value);
    return MHD_YES;
}

void svc_query_each(const svc_request *r, void (*fn)(void *ctx, const char *k, const char *v),
                    void *ctx)
{
    query_iter it = {fn, ctx};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_query, &it);
}

const void *svc_body(const svc_request *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

void svc_set_estimator(svc_request *r, const char *name)
{
    free(r->estimator);
    r->estimator = name ? strdup(name) : NULL;
}

void svc_set_timings(svc_request *r, uint64_t decode_us, uint64_t queue_us, uint64_t infer_us)
{
    r->decode_us = decode_us;
    r->queue_us = queue_us;
    r->infer_us = infer_us;
}

static const char *exchange_lookup(void *ctx, int kind, const char *key)
{
    svc_request *r = ctx;
    return kind == INFERD_HTTP_LOOKUP_QUERY ? svc_query(r, key) : svc_header(r, key);
}

static void exchange_each(void *ctx, int kind,
                          void (*fn)(void *fn_ctx, const char *k, const char *v), void *fn_ctx)
{
    svc_request *r = ctx;
    query_iter it = {fn, fn_ctx};
    MHD_get_connection_values(r->conn, kind == INFERD_HTTP_LOOKUP_QUERY ? MHD_GET_ARGUMENT_KIND
                                                                        : MHD_HEADER_KIND,
                              each_query, &it);
}

void svc_exchange_request(svc_request *r, inferd_http_request *out)
{
    *out = (inferd_http_request){.method = r->method, .path = r->path, .body = r->body,
                                 .body_len = r->body_len, .lookup = exchange_lookup,
                                 .each = exchange_each, .ctx = r};
}

/* ---- replies ------------------------------------------------------------------- */

void svc_suspend(svc_request *r)
{
    pthread_mutex_lock(&r->lock);
    r->want_suspend = true;
    pthread_mutex_unlock(&r->lock);
}

void svc_reply_header(svc_request *r, const char *name, const char *value)
{
    pthread_mutex_lock(&r->lock);
    inferd_http_header *h = realloc(r->headers, (r->n_headers + 1) * sizeof *h);
    if (h) {
        r->headers = h;
        h[r->n_headers].name = strdup(name);
        h[r->n_headers].value = strdup(value);
        if (h[r->n_headers].name && h[r->n_headers].value)
            r->n_headers++;
        else {
            free(h[r->n_headers].name);
            free(h[r->n_headers].value);
        }
    }
    pthread_mutex_unlock(&r->lock);
}

/* Stores the reply (taking data) and resumes a suspended connection. */
static void reply_set(svc_request *r, unsigned status, const char *content_type, void *data,
                      size_t len)
{
    pthread_mutex_lock(&r->lock);
    if (r->replied) {
        pthread_mutex_unlock(&r->lock);
        inferd_log_error(LOG, "%s %s: replied twice (a bug); the second reply is dropped",
                         r->method, r->path);
        free(data);
        return;
    }
    r->replied = true;
    r->status = status;
    r->content_type = content_type ? strdup(content_type) : NULL;
    r->data = data;
    r->data_len = len;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
}

void svc_reply_bytes(svc_request *r, unsigned status, const char *content_type, void *data,
                     size_t len)
{
    reply_set(r, status, content_type, data, len);
}

inferd_value *svc_body_object(svc_request *r)
{
    size_t len;
    const char *body = svc_body(r, &len);
    inferd_value *doc = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(body, len, svc_of(r)->max_json_depth, &doc, &err) != INFERD_OK) {
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "the body is not JSON: %s",
                        err.message);
        return NULL;
    }
    if (!inferd_value_is(doc, INFERD_VALUE_OBJECT)) {
        inferd_value_free(doc);
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

void svc_reply_json(svc_request *r, unsigned status, inferd_value *body)
{
    char *text = NULL;
    size_t len = 0;
    inferd_error err = {0};
    if (!body)
        body = inferd_value_object();
    if (!body || inferd_value_to_json(body, INFERD_JSON_COMPACT, &text, &len, &err) != INFERD_OK) {
        inferd_value_free(body);
        inferd_log_error(LOG, "%s %s: cannot write the reply: %s", r->method, r->path,
                         err.message);
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"cannot write "
                                  "the reply\"}}";
        text = strdup(oom);
        reply_set(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", text,
                  text ? strlen(text) : 0);
        return;
    }
    inferd_value_free(body);
    reply_set(r, status, "application/json", text, len);
}

void svc_reply_built(svc_request *r, unsigned status, inferd_value *body, bool ok)
{
    if (ok) {
        svc_reply_json(r, status, body);
        return;
    }
    inferd_value_free(body);
    inferd_log_error(LOG, "%s %s: out of memory building the reply", r->method, r->path);
    svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                    "out of memory building the reply");
}

void svc_publish_built(const char *name, inferd_value *payload, bool ok)
{
    if (!ok) {
        inferd_value_free(payload);
        inferd_log_warn(LOG, "event %s dropped: out of memory building it", name);
        return;
    }
    inferd_event_publish(name, payload, NULL);
}

/* An error body; a field lost to memory pressure leaves svc_reply_json's
 * fallback to say it (the body would be {}). */
static inferd_value *error_body(const char *code, const char *message)
{
    inferd_value *body = inferd_value_object(), *e = inferd_value_object();
    inferd__put_str(e, "code", code, NULL);
    inferd__put_str(e, "message", message, NULL);
    inferd__put(body, "error", e, NULL);
    return body;
}

void svc_reply_error(svc_request *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A message may quote what the client sent (a path of %ff bytes), or be
     * cut inside a character: JSON must be UTF-8. */
    inferd__utf8_scrub(msg);
    inferd_log_debug(LOG, "%s %s -> %u %s: %s", r->method, r->path, status, code, msg);
    svc_reply_json(r, status, error_body(code, msg));
}

void svc_reply_status(svc_request *r, inferd_status st, const inferd_error *err)
{
    const char *msg = err && err->message[0] ? err->message : inferd_status_name(st);
    switch (st) {
    case INFERD_EINVAL:
    case INFERD_ETYPE:
    case INFERD_ERANGE:
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", msg);
        break;
    case INFERD_ENOTFOUND:
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s", msg);
        break;
    case INFERD_EUNSUPPORTED:
        svc_reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "%s", msg);
        break;
    case INFERD_EBUSY:
        svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", "%s", msg);
        break;
    case INFERD_ESTATE:
        svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", "%s", msg);
        break;
    case INFERD_ETIMEOUT:
        svc_reply_error(r, MHD_HTTP_GATEWAY_TIMEOUT, "timeout", "%s", msg);
        break;
    default:
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        st == INFERD_EPLUGIN ? "plugin_error" : "internal", "%s", msg);
        break;
    }
}

void svc_reply_exchange(svc_request *r, inferd_http_response *resp)
{
    const char *ctype = NULL;
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, "Content-Type") == 0)
            ctype = resp->headers[i].value;
        else
            svc_reply_header(r, resp->headers[i].name, resp->headers[i].value);
    }
    void *body = resp->body;
    size_t len = resp->body_len;
    resp->body = NULL;
    resp->body_len = 0;
    unsigned status = resp->status >= 100 && resp->status <= 599 ? resp->status : 500;
    reply_set(r, status, ctype, body, len);
    inferd_http_response_clear(resp);
}

/* ---- routing --------------------------------------------------------------------- */

bool svc_path_reserved(const char *path)
{
    static const char *const exact[] = {"/", "/health", "/ready", "/version", "/metrics", "/ping"};
    static const char *const trees[] = {"/v1", "/v2", "/plugins", "/streams", "/rules",
                                        "/ruleset", "/push"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(path, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
        size_t n = strlen(trees[i]);
        if (strncmp(path, trees[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return true;
    }
    return false;
}

/* Matches path against a pattern whose '*' segments are parameters; fills
 * r->params from r->segments (a copy of the path split at '/'). */
static bool match(const char *pattern, svc_request *r)
{
    const char *p = pattern, *s = r->path;
    size_t n = 0;
    while (*p && *s) {
        if (*p == '*') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            if (len == 0 || n >= MAX_PARAMS)
                return false;
            char *seg = r->segments + (s - r->path);
            seg[len] = '\0';
            r->params[n++] = seg;
            s += len;
            p++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

static const svc_route *const route_tables[] = {svc_core_routes, svc_plugin_routes,
                                                svc_portable_routes, svc_rules_routes,
                                                svc_estimator_routes, svc_kserve_routes,
                                                svc_pipeline_routes};

static bool loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* Constant-time comparison: the token check leaks no prefix length. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0 && lb > 0;
}

/* Whether name (a Host header, or an entry of a list) equals one of the
 * strings of config list key, case-insensitively. */
static bool listed(const svc_request *r, const char *key, const char *name, size_t len)
{
    const inferd_props *p = inferd_config_props(r->s->cfg);
    size_t n = inferd_props_list_len(p, key);
    for (size_t i = 0; i < n; i++) {
        const char *v = inferd_props_list_at(p, key, i);
        if (strlen(v) == len && strncasecmp(v, name, len) == 0)
            return true;
    }
    return false;
}

/* DNS rebinding: a page of evil.example whose name now resolves to
 * 127.0.0.1 sends Host: evil.example. The management routes answer only an
 * IP address, localhost, or a name of http.allowed_hosts (port ignored). */
static bool host_allowed(const svc_request *r, const char *host)
{
    if (!host || !host[0])
        return true; /* HTTP/1.0 without Host: no browser sends that */
    char name[256];
    int port;
    const char *rest;
    if (net_split_hostport(host, strlen(host), 0, 0, name, sizeof name, &port, &rest) !=
            NET_ADDRESS_OK ||
        !name[0])
        return false;
    size_t len = strlen(name);
    if (host[0] == '[') { /* an IPv6 literal, [::1]:8080: it must be one */
        struct in6_addr addr;
        return inet_pton(AF_INET6, name, &addr) == 1;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1 || strcasecmp(name, "localhost") == 0)
        return true;
    return listed(r, "http.allowed_hosts", name, len);
}

/* A JSON body (or a package's zip), or none. curl -d's form type is taken from clients that are
 * not browsers (no Origin, no Sec-Fetch-*): eKuiper's users post JSON so.
 * text/plain and multipart/form-data, which any web page may send without
 * asking, are refused. */
static bool json_body_type(const svc_request *r, bool browser)
{
    const char *type = svc_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!type || !type[0])
        return true;
    size_t len = strcspn(type, "; \t");
    if ((len == 16 && strncasecmp(type, "application/json", len) == 0))
        return true;
    /* A package upload. Like JSON, not a type a page may send without the
     * browser asking the server first (CORS preflight), which it refuses. */
    if ((len == 15 && strncasecmp(type, "application/zip", len) == 0) ||
        (len == 24 && strncasecmp(type, "application/octet-stream", len) == 0))
        return true;
    return !browser && len == 33 &&
           strncasecmp(type, "application/x-www-form-urlencoded", len) == 0;
}

/* Management routes: open on loopback (unless http.token_loopback);
 * elsewhere they need the bearer token. Wherever they come from, what a
 * web page can make a browser send is refused: a foreign Origin, a
 * cross-site fetch, a Host name that is not ours, a body that is not JSON. */
static bool check_token(svc_request *r, const char *token, bool token_loopback);

static bool management_allowed(svc_request *r)
{
    const char *origin = svc_header(r, "Origin");
    const char *site = svc_header(r, "Sec-Fetch-Site");
    bool origin_ok = origin && listed(r, "http.allowed_origins", origin, strlen(origin));
    if (origin && !origin_ok) {
        svc_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                        "management routes refuse requests from web pages (Origin %.200s is "
                        "not in http.allowed_origins)", origin);
        return false;
    }
    if (site && !origin_ok && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
        svc_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                        "management routes refuse %.40s requests from web pages", site);
        return false;
    }
    const char *host = svc_header(r, MHD_HTTP_HEADER_HOST);
    if (!host_allowed(r, host)) {
        svc_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                        "management routes answer Host names in http.allowed_hosts only (or an "
                        "IP address, or localhost), not %.200s", host);
        return false;
    }
    if (r->body_len > 0 && !json_body_type(r, origin || site)) {
        svc_reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                        "management routes take a JSON body: send Content-Type: "
                        "application/json");
        return false;
    }
    /* The token as it is now (SIGHUP may change it): a copy, compared below. */
    svc *s = r->s;
    pthread_mutex_lock(&s->live_mu);
    bool token_loopback = s->token_loopback;
    char *token = strdup(s->token ? s->token : "");
    pthread_mutex_unlock(&s->live_mu);
    if (!token) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return false;
    }
    bool allowed = check_token(r, token, token_loopback);
    free(token);
    return allowed;
}

/* The bearer token's part of management_allowed (replies when it refuses). */
static bool check_token(svc_request *r, const char *token, bool token_loopback)
{
    if (loopback(r->conn) && !token_loopback)
        return true;
    if (!token[0]) {
        svc_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                        loopback(r->conn)
                            ? "http.token_loopback is set but http.token is empty: management "
                              "routes are closed"
                            : "management routes are open on loopback only; set http.token to "
                              "allow them from other addresses with a bearer token");
        return false;
    }
    const char *auth = svc_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !same_secret(auth + 7, token)) {
        svc_reply_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        svc_reply_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                        "this route needs 'Authorization: Bearer <http.token>'");
        return false;
    }
    return true;
}

static void dispatch(svc_request *r)
{
    if (r->cert_refused[0]) {
        svc_reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "%s", r->cert_refused);
        return;
    }
    if (r->too_large) {
        svc_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                        "the request body is larger than http.max_body_bytes (%llu bytes)",
                        (unsigned long long)r->s->max_body);
        return;
    }
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    char allowed[128] = "";
    size_t pos = 0;
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
        for (const svc_route *rt = route_tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, r))
                continue;
            if (strcmp(rt->method, method) != 0) {
                if (pos < sizeof allowed && !strstr(allowed, rt->method))
                    pos += (size_t)snprintf(allowed + pos, sizeof allowed - pos, "%s%s",
                                            pos ? ", " : "", rt->method);
                continue;
            }
            r->route = rt->pattern;
            if ((rt->flags & SVC_ROUTE_MANAGEMENT) && !management_allowed(r))
                return;
            if (rt->flags & SVC_ROUTE_WORKER) {
                svc_suspend(r); /* before submit: the worker may reply at once */
                if (!svc_workers_submit(r->s->workers, rt->handler, r))
                    svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                    "every HTTP worker is busy and http.worker_queue is full: "
                                    "retry later");
                return;
            }
            rt->handler(r);
            return;
        }
    }
    if (allowed[0]) {
        svc_reply_header(r, MHD_HTTP_HEADER_ALLOW, allowed);
        svc_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                        "method %s is not allowed on %s (allowed: %s)", r->method, r->path,
                        allowed);
        return;
    }
    if (r->s->background && svc_background_dispatch(r->s->background, r)) {
        r->route = "plugin";
        return;
    }
    svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no route for %s %.500s", r->method,
                    r->path);
}

/* ---- the MHD side ----------------------------------------------------------------- */

static void stream_done(void *cls);

static void request_free(svc_request *r)
{
    if (r->stream) /* never sent: the response's reference is still here */
        stream_done(r->stream);
    free(r->path);
    free(r->segments);
    free(r->estimator);
    free(r->body);
    free(r->content_type);
    free(r->data);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- streamed bodies --------------------------------------------------------------- */

static void stream_unref(svc_stream *st)
{
    pthread_mutex_lock(&st->lock);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (!last)
        return;
    free(st->buf);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* Resumes the connection when the reader waits for data. Under st->lock. */
static void stream_wake(svc_stream *st)
{
    if (st->waiting && !st->gone) {
        st->waiting = false;
        MHD_resume_connection(st->conn);
    }
}

/* MHD's reader: what is buffered, the end after a close, or nothing yet, in
 * which case the connection sleeps (suspended) until a write or the close:
 * no thread and no poll spins for a quiet stream. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    svc_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    size_t n = st->len - st->off;
    if (n > 0) {
        if (n > max)
            n = max;
        memcpy(out, st->buf + st->off, n);
        st->off += n;
        if (st->off == st->len)
            st->off = st->len = 0;
        pthread_mutex_unlock(&st->lock);
        return (ssize_t)n;
    }
    if (st->closed) {
        pthread_mutex_unlock(&st->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    st->waiting = true;
    MHD_suspend_connection(st->conn);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

static void stream_done(void *cls)
{
    svc_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    st->gone = true;
    st->waiting = false;
    pthread_mutex_unlock(&st->lock);
    stream_unref(st);
}

svc_stream *svc_reply_stream(svc_request *r, unsigned status, const char *content_type,
                             size_t max_buffered)
{
    svc_stream *st = calloc(1, sizeof *st);
    if (!st) {
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&st->lock, NULL);
    st->conn = r->conn;
    st->max = max_buffered;
    st->refs = 2;
    pthread_mutex_lock(&r->lock);
    r->stream = st;
    pthread_mutex_unlock(&r->lock);
    reply_set(r, status, content_type, NULL, 0);
    return st;
}

int svc_stream_write(svc_stream *st, const void *data, size_t len)
{
    pthread_mutex_lock(&st->lock);
    int rc = 0;
    if (st->gone || st->closed) {
        rc = -1;
    } else if (st->len - st->off + len > st->max && st->len > st->off) {
        rc = 1; /* a slow client: this piece is dropped, the stream goes on */
    } else {
        if (st->len + len > st->cap) {
            if (st->off > 0) { /* reclaim what was sent */
                memmove(st->buf, st->buf + st->off, st->len - st->off);
                st->len -= st->off;
                st->off = 0;
            }
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < st->len + len)
                cap *= 2;
            char *b = cap > st->cap ? realloc(st->buf, cap) : st->buf;
            if (!b)
                rc = 1;
            else {
                st->buf = b;
                st->cap = cap;
            }
        }
        if (rc == 0) {
            memcpy(st->buf + st->len, data, len);
            st->len += len;
            stream_wake(st);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void svc_stream_close(svc_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->closed = true;
    stream_wake(st);
    pthread_mutex_unlock(&st->lock);
    stream_unref(st);
}

static enum MHD_Result send_reply(svc_request *r)
{
    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, r->stream, stream_done);
        if (!resp) {
            stream_done(r->stream); /* the response's reference */
            r->stream = NULL;
            return MHD_NO;
        }
        r->stream = NULL; /* the response holds its reference now */
        if (r->content_type)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        for (size_t i = 0; i < r->n_headers; i++)
            MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
        enum MHD_Result ok = MHD_queue_response(r->conn, r->status, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->data_len, r->data, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->data = NULL; /* the response owns it now */
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (size_t i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ok = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static bool body_append(svc_request *r, const char *data, size_t len)
{
    if (r->too_large || r->body_len + len > r->s->max_body) {
        r->too_large = true; /* keep reading (and dropping) so the reply can be sent */
        return true;
    }
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return false;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0'; /* handlers may read a JSON body as a string */
    return true;
}

/* Mutual TLS: the client's certificate must verify against
 * http.tls_client_ca (libmicrohttpd asks for one but takes a connection
 * without). why: "" when it does. */
static void check_client_cert(struct MHD_Connection *conn, char *why, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned status = 0;
    int rc = session ? gnutls_certificate_verify_peers2(session, &status) : GNUTLS_E_INTERNAL_ERROR;
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND)
        snprintf(why, cap, "this server takes clients with a certificate signed by "
                 "http.tls_client_ca; none was presented");
    else if (rc != GNUTLS_E_SUCCESS)
        snprintf(why, cap, "the client certificate could not be checked (%s)",
                 gnutls_strerror(rc));
    else if (status != 0)
        snprintf(why, cap, "the client certificate is not signed by http.tls_client_ca%s",
                 status & GNUTLS_CERT_EXPIRED ? " (or has expired)" : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_ctx)
{
    inferd_http *http = cls;
    svc_request *r = *req_ctx;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || !(r->path = strdup(url)) || !(r->segments = strdup(url))) {
            if (r) {
                free(r->path);
                free(r);
            }
            return MHD_NO;
        }
        pthread_mutex_init(&r->lock, NULL);
        r->s = http->s;
        r->conn = conn;
        r->started_us = inferd__now_us();
        snprintf(r->method, sizeof r->method, "%s", method);
        *req_ctx = r;
        /* A declared length over the limit is refused before reading it: the
         * 413 is queued now, so MHD sends no "100 Continue", reads none of
         * the body and closes the connection after the reply. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > r->s->max_body)
            r->too_large = true;
        if (http->tls_ca)
            check_client_cert(conn, r->cert_refused, sizeof r->cert_refused);
        if (!r->too_large && !r->cert_refused[0])
            return MHD_YES;
    } else if (*upload_size > 0) {
        if (!body_append(r, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->dispatched) {
        r->dispatched = true;
        dispatch(r);
    }
    pthread_mutex_lock(&r->lock);
    if (!r->replied) {
        if (!r->want_suspend) { /* a handler that neither replied nor suspended: a bug */
            pthread_mutex_unlock(&r->lock);
            svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                            "the handler of %s %s gave no reply", r->method, r->path);
            pthread_mutex_lock(&r->lock);
        } else {
            r->suspended = true;
            MHD_suspend_connection(conn);
            pthread_mutex_unlock(&r->lock);
            return MHD_YES;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return send_reply(r);
}

static double ms(uint64_t us) { return (double)us / 1000.0; }

/* One monitoring_event per finished request (see docs/service.md). */
static void publish_point(const svc_request *r, unsigned status, uint64_t total_us)
{
    inferd_value *p = inferd_value_object(), *tags = inferd_value_object(),
                 *fields = inferd_value_object();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char st[8];
    snprintf(st, sizeof st, "%u", status);
    bool ok = true;
    inferd__put(tags, "route", inferd_value_string(r->route ? r->route : "unmatched"), &ok);
    /* What the client sent, as valid UTF-8 (the event becomes JSON). */
    char *path = strdup(r->path), method[64];
    snprintf(method, sizeof method, "%s", r->method);
    inferd__put(tags, "path", inferd_value_string(path ? inferd__utf8_scrub(path)
                                                                   : ""), &ok);
    free(path);
    inferd__put(tags, "method", inferd_value_string(inferd__utf8_scrub(method)), &ok);
    inferd__put(tags, "status", inferd_value_string(st), &ok);
    if (r->estimator)
        inferd__put(tags, "estimator", inferd_value_string(r->estimator), &ok);
    inferd__put(fields, "decode_ms", inferd_value_double(ms(r->decode_us)), &ok);
    inferd__put(fields, "queue_ms", inferd_value_double(ms(r->queue_us)), &ok);
    inferd__put(fields, "inference_ms", inferd_value_double(ms(r->infer_us)), &ok);
    inferd__put(fields, "total_ms", inferd_value_double(ms(total_us)), &ok);
    inferd__put(p, "series", inferd_value_string("request"), &ok);
    inferd__put(p, "tags", tags, &ok);
    inferd__put(p, "fields", fields, &ok);
    inferd__put(p, "time", inferd_value_double((double)tv.tv_sec + (double)tv.tv_usec / 1e6), &ok);
    svc_publish_built("monitoring_event", p, ok);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_ctx,
                         enum MHD_RequestTerminationCode toe)
{
    svc_request *r = *req_ctx;
    if (!r)
        return;
    *req_ctx = NULL;
    uint64_t total = inferd__now_us() - r->started_us;
    unsigned status = r->replied ? r->status : 0; /* 0: the client went away */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->replied)
        inferd_log_debug(LOG, "%s %s: connection ended early (%d)", r->method, r->path, (int)toe);
    svc_metrics_request(r->s->metrics, r->route ? r->route : "unmatched", r->method, status,
                        total);
    publish_point(r, status, total);
    inferd_log_debug(LOG, "%s %s -> %u in %.3f ms", r->method, r->path, status, ms(total));
    /* A request that is completed while its handoff still runs (the client
     * went away, or the daemon is closing): the reply arrives later and must
     * find the request; the worker owns it then. Only happens on shutdown
     * deadlines, where the callback has already been refused a resume. */
    request_free(r);
}

/* A connection that ends with the client's bytes unread (a body refused
 * before it was read) would end in a reset that can wipe the reply from
 * the client's buffer: its socket lingers instead (net/linger.h). MHD
 * closes its own descriptor right after this call; the duplicate keeps
 * the connection open. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    inferd_http *http = cls;
    (void)socket_ctx;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED || !http->linger)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || ci->connect_fd < 0 || !net_linger_needed(ci->connect_fd))
        return;
    int fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0)
        net_linger_add(http->linger, fd);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    inferd_log_warn(LOG, "libmicrohttpd: %s", msg);
}

inferd_status inferd_http_parse_listen(const char *text, char *host, size_t host_size,
                                       uint16_t *port, inferd_error *err)
{
    int p = 0;
    const char *rest;
    switch (net_split_hostport(text, strlen(text), 0, -1, host, host_size, &p, &rest)) {
    case NET_ADDRESS_OK:
        *port = (uint16_t)p;
        return INFERD_OK;
    case NET_ADDRESS_BAD_PORT:
        return inferd_error_set(err, INFERD_EINVAL,
                                "listen address '%s': port must be a number in 0..65535", text);
    case NET_ADDRESS_TOO_LONG:
        return inferd_error_set(err, INFERD_EINVAL, "listen address '%s': host too long", text);
    case NET_ADDRESS_BAD_V6:
        return inferd_error_set(err, INFERD_EINVAL, "listen address '%s': expected [IPv6]:PORT",
                                text);
    default:
        return inferd_error_set(err, INFERD_EINVAL,
                                "listen address '%s': expected HOST:PORT (e.g. 127.0.0.1:8080)",
                                text);
    }
}

static void free_http(inferd_http *http)
{
    net_linger_stop(http->linger);
    free(http->tls_cert);
    free(http->tls_key);
    free(http->tls_ca);
    free(http);
}

/* The text of a PEM file named by config key (NULL when the key is empty). */
static inferd_status read_pem(const inferd_config *cfg, const char *key, char **out,
                              inferd_error *err)
{
    *out = NULL;
    const char *path = inferd_config_string(cfg, key);
    if (!path || !path[0])
        return INFERD_OK;
    FILE *f = fopen(path, "rb");
    if (!f)
        return inferd_error_set(err, INFERD_EINVAL, "%s: %s: %s", key, path, strerror(errno));
    char *text = malloc((1u << 20) + 1);
    size_t n = text ? fread(text, 1, 1u << 20, f) : 0;
    bool bad = ferror(f) || n == 0 || n == 1u << 20;
    fclose(f);
    if (!text)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    text[n] = '\0';
    if (bad || !strstr(text, "-----BEGIN ")) {
        free(text);
        return inferd_error_set(err, INFERD_EINVAL, "%s: %s is not a PEM file (-----BEGIN ...)",
                                key, path);
    }
    *out = text;
    return INFERD_OK;
}

/* HTTPS: http.tls_cert and http.tls_key together, http.tls_client_ca with them. */
static inferd_status read_tls(inferd_http *http, const inferd_config *cfg, inferd_error *err)
{
    inferd_status st = read_pem(cfg, "http.tls_cert", &http->tls_cert, err);
    if (st == INFERD_OK)
        st = read_pem(cfg, "http.tls_key", &http->tls_key, err);
    if (st == INFERD_OK)
        st = read_pem(cfg, "http.tls_client_ca", &http->tls_ca, err);
    if (st == INFERD_OK && !http->tls_cert != !http->tls_key)
        st = inferd_error_set(err, INFERD_EINVAL, "http.tls_cert and http.tls_key go together: "
                              "HTTPS needs the certificate and its key");
    if (st == INFERD_OK && http->tls_ca && !http->tls_cert)
        st = inferd_error_set(err, INFERD_EINVAL, "http.tls_client_ca needs HTTPS: set "
                              "http.tls_cert and http.tls_key too");
    return st;
}

inferd_status inferd_http_start(svc *s, inferd_http **out, inferd_error *err)
{
    const char *listen = inferd_config_string(s->cfg, "listen");
    char host[256];
    uint16_t port;
    inferd_status st = inferd_http_parse_listen(listen, host, sizeof host, &port, err);
    if (st != INFERD_OK)
        return st;

    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", port);
    int gai = getaddrinfo(host[0] ? host : NULL, port_text, &hints, &ai);
    if (gai != 0)
        return inferd_error_set(err, INFERD_EINVAL, "listen address '%s': %s", listen,
                                gai_strerror(gai));

    inferd_http *http = calloc(1, sizeof *http);
    if (!http) {
        freeaddrinfo(ai);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    http->s = s;
    /* Each connection holds a descriptor: with the usual soft limit of 1024
     * a few hundred idle connections would lock every client out long
     * before http.max_connections. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    unsigned threads = (unsigned)inferd_config_int(s->cfg, "http.threads");
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (unsigned)cores : 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    inferd_status tls = read_tls(http, s->cfg, err);
    if (tls != INFERD_OK) {
        freeaddrinfo(ai);
        free_http(http);
        return tls;
    }
    if (http->tls_cert)
        flags |= MHD_USE_TLS;
    /* [::] means every address, IPv4 ones included (as 0.0.0.0 does for
     * IPv4): the socket then takes both. */
    if (ai->ai_family == AF_INET6)
        flags |= IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr)
                     ? MHD_USE_DUAL_STACK
                     : MHD_USE_IPv6;
    /* Up to 64 sockets for up to 5 s each, as a web server's lingering
     * close: enough for refused uploads, bounded against abuse. */
    http->linger = net_linger_start(64, 5000);
    /* The logger goes first so that MHD never writes to stderr itself. */
    http->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, http,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, http,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)inferd_config_int(s->cfg, "http.max_connections"),
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                 (unsigned)inferd_config_int(s->cfg,
                                                             "http.max_connections_per_ip"),
                                 MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)inferd_config_int(s->cfg, "http.idle_timeout_s"),
                                 MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                 /* Ignored without MHD_USE_TLS; NULL ends no list here. */
                                 http->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
                                 http->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, http->tls_key,
                                 http->tls_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
                                 http->tls_ca, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!http->mhd) {
        bool with_tls = http->tls_cert != NULL;
        free_http(http);
        return inferd_error_set(err, INFERD_EIO,
                                with_tls ? "cannot listen on %s with TLS (address in use, or "
                                           "http.tls_cert and http.tls_key not a certificate "
                                           "and its key?)"
                                         : "cannot listen on %s (address in use, or not an "
                                           "address of this machine?)",
                                listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : port;
    *out = http;
    return INFERD_OK;
}

uint16_t inferd_http_port(const inferd_http *http) { return http->port; }

void inferd_http_drain(inferd_http *http, uint64_t timeout_ms)
{
    /* Stop accepting, then give in-flight requests until the deadline. */
    MHD_quiesce_daemon(http->mhd);
    uint64_t t0 = inferd__now_us();

    for (;;) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!info || info->num_connections == 0)
            break;
        if (inferd__now_us() - t0 >= timeout_ms * 1000u) {
            inferd_log_warn(LOG, "%u connection(s) still open after %llu ms; closing them",
                            info->num_connections, (unsigned long long)timeout_ms);
            break;
        }
        usleep(10000);
    }
}

void inferd_http_stop(inferd_http *http)
{
    if (!http)
        return;
    MHD_stop_daemon(http->mhd);
    free_http(http);
}

bool inferd_http_is_tls(const inferd_http *http) { return http && http->tls_cert; }
