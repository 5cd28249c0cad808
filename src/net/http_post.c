/* net/http_post.c: one body to an HTTP endpoint, with retries (libcurl). */
#include "net/http_post.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"

#define RETRY_MAX_MS 30000

struct http_post {
    CURL *curl;
    struct curl_slist *headers;  /* the configured ones */
    char *url, *method, *who;
    bool has_type;               /* the headers give a Content-Type */
    long timeout_ms;
    int64_t retry_count, retry_interval_ms;
};

inferd_status http_post_check(const http_post_options *o, const char *who, inferd_error *err)
{
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "%s: url \"%s\" must start with http:// "
                                "or https://", who, o->url);
    if (strcasecmp(o->method, "POST") != 0 && strcasecmp(o->method, "PUT") != 0 &&
        strcasecmp(o->method, "PATCH") != 0)
        return inferd_error_set(err, INFERD_EINVAL, "%s: method must be POST, PUT or PATCH, "
                                "got \"%s\"", who, o->method);
    const char *key;
    inferd_value *v;
    for (size_t i = 0; inferd_value_object_entry(o->headers, i, &key, &v); i++)
        if (!inferd_value_is(v, INFERD_VALUE_STRING) || strpbrk(key, ":\r\n") ||
            strpbrk(inferd_value_string_or(v, ""), "\r\n"))
            return inferd_error_set(err, INFERD_EINVAL, "%s: header \"%s\" must be a string "
                                    "without line breaks", who, key);
    return INFERD_OK;
}

void http_post_free(http_post *h)
{
    if (!h)
        return;
    curl_slist_free_all(h->headers);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->url);
    free(h->method);
    free(h->who);
    free(h);
}

inferd_status http_post_new(const http_post_options *o, const char *who, http_post **out,
                            inferd_error *err)
{
    inferd_status st = http_post_check(o, who, err);
    if (st != INFERD_OK)
        return st;
    http_post *h = calloc(1, sizeof *h);
    if (!h || !(h->url = strdup(o->url)) || !(h->method = strdup(o->method)) ||
        !(h->who = strdup(who)) || !(h->curl = curl_easy_init())) {
        http_post_free(h);
        return inferd_error_set(err, INFERD_ENOMEM, "%s: out of memory", who);
    }
    for (size_t i = 0; i < strlen(h->method); i++) /* curl sends it as written */
        h->method[i] = (char)(h->method[i] >= 'a' && h->method[i] <= 'z' ? h->method[i] - 32
                                                                         : h->method[i]);
    h->timeout_ms = (long)o->timeout_ms;
    h->retry_count = o->retry_count;
    h->retry_interval_ms = o->retry_interval_ms;
    const char *key;
    inferd_value *v;
    for (size_t i = 0; o->headers && inferd_value_object_entry(o->headers, i, &key, &v); i++) {
        char line[2048];
        snprintf(line, sizeof line, "%s: %s", key, inferd_value_string_or(v, ""));
        h->has_type |= strcasecmp(key, "Content-Type") == 0;
        struct curl_slist *l = curl_slist_append(h->headers, line);
        if (!l) {
            http_post_free(h);
            return inferd_error_set(err, INFERD_ENOMEM, "%s: out of memory", who);
        }
        h->headers = l;
    }
    *out = h;
    return INFERD_OK;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

/* One try. *retry: whether the failure may pass. */
static inferd_status try_once(http_post *h, const void *body, size_t len,
                              struct curl_slist *headers, bool *retry, inferd_error *err)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    *retry = true;
    if (rc != CURLE_OK)
        return inferd_error_set(err, INFERD_EIO, "%s: %s %s: %s", h->who, h->method, h->url,
                                curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
        return INFERD_OK;
    *retry = code >= 500 || code == 408 || code == 429;
    /* EINVAL: the body's fault, never kept to send again */
    return inferd_error_set(err, *retry ? INFERD_EIO : INFERD_EINVAL,
                            "%s: %s %s: the server answered %ld", h->who, h->method, h->url,
                            code);
}

inferd_status http_post_send(http_post *h, const void *body, size_t len, const char *content_type,
                             bool (*give_up)(void *ctx), void *ctx, unsigned *retries,
                             inferd_error *err)
{
    /* The configured headers, then this body's type, unless they give one
     * (the user's word wins): a list node on the stack, linked for this
     * call only. */
    char type_line[256];
    snprintf(type_line, sizeof type_line, "Content-Type: %s",
             content_type ? content_type : "application/json");
    struct curl_slist type = {type_line, NULL}, *headers = h->headers, *last = NULL;
    if (!h->has_type) {
        for (last = h->headers; last && last->next; last = last->next)
            ;
        if (last)
            last->next = &type;
        else
            headers = &type;
    }
    uint64_t wait_ms = (uint64_t)h->retry_interval_ms;
    inferd_status st;
    unsigned tries = 0;
    for (int64_t attempt = 0;; attempt++) {
        bool retry = false;
        st = try_once(h, body, len, headers, &retry, err);
        if (st == INFERD_OK || !retry || attempt >= h->retry_count)
            break;
        bool stop = false;
        for (uint64_t end = inferd__now_us() + wait_ms * 1000; !stop && inferd__now_us() < end;) {
            stop = give_up && give_up(ctx);
            if (!stop)
                usleep(20000);
        }
        if (stop)
            break;
        tries++;
        wait_ms = wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
    }
    if (last)
        last->next = NULL; /* this call's type off again */
    if (retries)
        *retries = tries;
    return st;
}
