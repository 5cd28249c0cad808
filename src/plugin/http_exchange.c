/* plugin/http_exchange.c: accessors of the request and response that
 * background components' route handlers see (see http_exchange.h). */
#include "plugin/http_exchange.h"

#include <stdlib.h>
#include <string.h>

const char *inferd_http_request_method(const inferd_http_request *req) { return req->method; }
const char *inferd_http_request_path(const inferd_http_request *req) { return req->path; }

const char *inferd_http_request_query(const inferd_http_request *req, const char *key)
{
    return req->lookup && key ? req->lookup(req->ctx, INFERD_HTTP_LOOKUP_QUERY, key) : NULL;
}

const char *inferd_http_request_header(const inferd_http_request *req, const char *name)
{
    return req->lookup && name ? req->lookup(req->ctx, INFERD_HTTP_LOOKUP_HEADER, name) : NULL;
}

const void *inferd_http_request_body(const inferd_http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body_len ? req->body : "";
}

void inferd_http_response_init(inferd_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->status = 200;
}

void inferd_http_response_clear(inferd_http_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    free(resp->body);
    inferd_http_response_init(resp);
}

void inferd_http_response_set_status(inferd_http_response *resp, unsigned status)
{
    resp->status = status;
}

/* A header name or value must not split the response: no CR, LF or NUL, and
 * a name is a non-empty token. */
static bool header_text_ok(const char *s, bool name)
{
    if (!s || (name && !*s))
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || (name && (*s == ':' || *s == ' ')))
            return false;
    return true;
}

inferd_status inferd_http_response_set_header(inferd_http_response *resp, const char *name,
                                              const char *value, inferd_error *err)
{
    if (!header_text_ok(name, true) || !header_text_ok(value, false))
        return inferd_error_set(err, INFERD_EINVAL,
                                "header '%.64s': a name is a token, and neither name nor value "
                                "may hold CR or LF", name ? name : "(null)");
    inferd_http_header *h = realloc(resp->headers, (resp->n_headers + 1) * sizeof *h);
    if (!h)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    resp->headers = h;
    h = &resp->headers[resp->n_headers];
    if (!(h->name = strdup(name)) || !(h->value = strdup(value))) {
        free(h->name);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    resp->n_headers++;
    return INFERD_OK;
}

inferd_status inferd_http_response_set_body(inferd_http_response *resp, const void *data,
                                            size_t len, inferd_error *err)
{
    void *copy = NULL;
    if (len && !(copy = malloc(len)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (len)
        memcpy(copy, data, len);
    free(resp->body);
    resp->body = copy;
    resp->body_len = len;
    return INFERD_OK;
}
