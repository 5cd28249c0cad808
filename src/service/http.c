/* service/http.c: routes and request handling on libmicrohttpd.
 *
 * Threads: MHD runs an epoll listener with a pool of worker threads; handlers
 * here are short (they parse and answer or hand off), so no request parks a
 * thread. Owns the MHD daemon. May call core; never called by core.
 */
#include "service/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inferd/log.h"
#include "inferd/value.h"
#include "inferd/version.h"

#define LOG "http"

struct inferd_http {
    struct MHD_Daemon *mhd;
    uint16_t port;
    struct timespec started;
};

typedef struct route {
    const char *method;
    const char *path;
    /* Returns an HTTP status and sets *body (owned by the caller). */
    unsigned (*handler)(inferd_http *http, inferd_value **body);
} route;

static unsigned handle_health(inferd_http *http, inferd_value **body)
{
    *body = inferd_value_object();
    inferd_value_object_set(*body, "status", inferd_value_string("ok"), NULL);
    return MHD_HTTP_OK;
}

static unsigned handle_version(inferd_http *http, inferd_value **body)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    *body = inferd_value_object();
    inferd_value_object_set(*body, "name", inferd_value_string("inferd"), NULL);
    inferd_value_object_set(*body, "version", inferd_value_string(inferd_version()), NULL);
    inferd_value_object_set(*body, "uptime_s",
                            inferd_value_int((int64_t)(now.tv_sec - http->started.tv_sec)), NULL);
    return MHD_HTTP_OK;
}

static const route routes[] = {
    {"GET", "/health", handle_health},
    {"GET", "/version", handle_version},
};

static inferd_value *error_body(const char *code, const char *message)
{
    inferd_value *body = inferd_value_object();
    inferd_value *e = inferd_value_object();
    inferd_value_object_set(e, "code", inferd_value_string(code), NULL);
    inferd_value_object_set(e, "message", inferd_value_string(message), NULL);
    inferd_value_object_set(body, "error", e, NULL);
    return body;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, inferd_value *body)
{
    char *text = NULL;
    size_t len = 0;
    if (!body || inferd_value_to_json(body, INFERD_JSON_COMPACT, &text, &len, NULL) != INFERD_OK) {
        inferd_value_free(body);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
        if (!text)
            return MHD_NO;
        len = strlen(text);
    } else {
        inferd_value_free(body);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_ctx)
{
    inferd_http *http = cls;
    /* First call per request: headers only. These routes take no body, so
     * answer on the second call after MHD has seen the whole request. */
    if (*req_ctx == NULL) {
        *req_ctx = http;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a body nobody reads: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, url) != 0)
            continue;
        path_known = true;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            inferd_value *body = NULL;
            unsigned status = routes[i].handler(http, &body);
            inferd_log_debug(LOG, "%s %s -> %u", method, url, status);
            return send_json(conn, status, body);
        }
    }
    char msg[600];
    if (path_known) {
        snprintf(msg, sizeof msg, "method %s is not allowed on %s", method, url);
        return send_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED, error_body("method_not_allowed", msg));
    }
    snprintf(msg, sizeof msg, "no route for %s %.500s", method, url);
    return send_json(conn, MHD_HTTP_NOT_FOUND, error_body("not_found", msg));
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
    const char *colon;
    const char *h = text, *h_end;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return inferd_error_set(err, INFERD_EINVAL,
                                    "listen address '%s': expected [IPv6]:PORT", text);
        h = text + 1;
        h_end = close;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "listen address '%s': expected HOST:PORT (e.g. 127.0.0.1:8080)",
                                    text);
        h_end = colon;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return inferd_error_set(err, INFERD_EINVAL,
                                "listen address '%s': port must be a number in 0..65535", text);
    size_t hl = (size_t)(h_end - h);
    if (hl >= host_size)
        return inferd_error_set(err, INFERD_EINVAL, "listen address '%s': host too long", text);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return INFERD_OK;
}

inferd_status inferd_http_start(const inferd_config *cfg, inferd_http **out, inferd_error *err)
{
    const char *listen = inferd_config_string(cfg, "listen");
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
    clock_gettime(CLOCK_MONOTONIC, &http->started);
    unsigned threads = (unsigned)inferd_config_int(cfg, "http.threads");
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (unsigned)cores : 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first so that MHD never writes to stderr itself. */
    http->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, http,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                 MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!http->mhd) {
        free(http);
        return inferd_error_set(err, INFERD_EIO,
                                "cannot listen on %s (address in use, or not an address of "
                                "this machine?)", listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : port;
    *out = http;
    return INFERD_OK;
}

uint16_t inferd_http_port(const inferd_http *http) { return http->port; }

void inferd_http_stop(inferd_http *http, uint64_t timeout_ms)
{
    if (!http)
        return;
    /* Stop accepting, then give in-flight requests until the deadline. */
    MHD_quiesce_daemon(http->mhd);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!info || info->num_connections == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t ms = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000u +
                      (uint64_t)((now.tv_nsec - t0.tv_nsec) / 1000000);
        if (ms >= timeout_ms) {
            inferd_log_warn(LOG, "%u connection(s) still open after %llu ms; closing them",
                            info->num_connections, (unsigned long long)timeout_ms);
            break;
        }
        usleep(10000);
    }
    MHD_stop_daemon(http->mhd);
    free(http);
}
