/* net/http_post.h: sending one body to an HTTP endpoint, with retries: the
 * rules' http action and the pipelines' http_sink both send through it.
 * Internal to the daemon.
 *
 * A failure that may pass (the far end unreachable, a timeout, 5xx, 408,
 * 429) is tried again after retry_interval_ms, then twice as long each time
 * (30 s at most), retry_count times; a 4xx is the body's fault and is not
 * retried. Not thread-safe: one sender per thread. */
#ifndef INFERD_NET_HTTP_POST_H
#define INFERD_NET_HTTP_POST_H

#include <stdbool.h>
#include <stdint.h>

#include "inferd/status.h"
#include "inferd/value.h"

typedef struct http_post http_post;

typedef struct http_post_options {
    const char *url;               /* http:// or https:// */
    const char *method;            /* POST, PUT or PATCH */
    const inferd_value *headers;   /* an object of strings, or NULL */
    int64_t timeout_ms;            /* one try */
    int64_t retry_count;           /* tries after a failure that may pass */
    int64_t retry_interval_ms;     /* before the first retry */
} http_post_options;

/* EINVAL naming who ("http", "element out (http_sink)") and the setting: a
 * URL that is not http(s), another method, a header that is not a string
 * or has a line break. */
inferd_status http_post_check(const http_post_options *o, const char *who, inferd_error *err);
/* Checks o and makes a sender (o's strings are copied). */
inferd_status http_post_new(const http_post_options *o, const char *who, http_post **out,
                            inferd_error *err);
void http_post_free(http_post *h);

/* Sends body with content_type (NULL: the headers' Content-Type, else
 * application/json), trying again as above. give_up(ctx) is asked while
 * waiting between tries (NULL: never): true ends the wait with the last
 * failure. *retries (optional): the tries made after the first. */
inferd_status http_post_send(http_post *h, const void *body, size_t len, const char *content_type,
                             bool (*give_up)(void *ctx), void *ctx, unsigned *retries,
                             inferd_error *err);

#endif
