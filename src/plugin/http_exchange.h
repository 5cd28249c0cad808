/* plugin/http_exchange.h: the request and response a background component's
 * route handler sees (inferd_http_request / inferd_http_response of
 * plugin.h). Not installed.
 *
 * They live in libinferd because the host table points at their accessors;
 * the HTTP server (src/service) fills a request from its connection and
 * turns the response into a reply. Lookups of query parameters and headers
 * go back to the server through `lookup`, so nothing is copied up front.
 */
#ifndef INFERD_PLUGIN_HTTP_EXCHANGE_H
#define INFERD_PLUGIN_HTTP_EXCHANGE_H

#include <stddef.h>

#include "inferd/plugin.h"

enum { INFERD_HTTP_LOOKUP_QUERY = 0, INFERD_HTTP_LOOKUP_HEADER = 1 };

struct inferd_http_request {
    const char *method, *path;      /* borrowed */
    const void *body;               /* borrowed, may be NULL when body_len is 0 */
    size_t body_len;
    /* kind INFERD_HTTP_LOOKUP_*; returns NULL when absent. */
    const char *(*lookup)(void *ctx, int kind, const char *key);
    /* Every query parameter or header (kind) as fn(fn_ctx, key, value); may be
     * NULL. Used by portable plugins, which get them all. */
    void (*each)(void *ctx, int kind, void (*fn)(void *fn_ctx, const char *k, const char *v),
                 void *fn_ctx);
    void *ctx;
};

typedef struct inferd_http_header {
    char *name, *value;             /* owned */
} inferd_http_header;

struct inferd_http_response {
    unsigned status;                /* 200 unless set */
    inferd_http_header *headers;    /* owned */
    size_t n_headers;
    void *body;                     /* owned (malloc), may be NULL */
    size_t body_len;
};

/* A response with status 200, nothing else. */
INFERD_API void inferd_http_response_init(inferd_http_response *resp);
/* Frees what the response owns (not resp itself). */
INFERD_API void inferd_http_response_clear(inferd_http_response *resp);

#endif
