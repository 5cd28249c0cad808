/* service/api_rules.c: streams and rules over REST, in the shape of the
 * seeds' stream engine: /streams, /rules, /rules/{id}/start|stop|restart,
 * /rules/{id}/status, /rules/validate; and POST /push/<path> for HTTP push
 * streams. Definitions are management (loopback or the bearer token);
 * pushing data is not. docs/rules.md is the user's side. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"
#include "service/service.h"

/* The engine's status codes as HTTP: what exists already or is in use is a
 * conflict (409); the rest as everywhere else. */
static void reply_status(svc_request *r, inferd_status st, const inferd_error *err)
{
    if (st == INFERD_EEXIST || st == INFERD_EBUSY)
        svc_reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err->message);
    else
        svc_reply_status(r, st, err);
}

static rules_engine *engine(svc_request *r)
{
    rules_engine *e = svc_of(r)->rules;
    if (!e)
        svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                        "streams and rules are not available in this daemon");
    return e;
}

/* The body as a JSON object, or a 400 (NULL). */
static inferd_value *object_body(svc_request *r)
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

/* {"sql": "CREATE STREAM ..."} -> the statement (borrowed from doc), or a 400. */
static const char *stream_sql(svc_request *r, const inferd_value *doc)
{
    const char *sql = inferd_value_string_or(inferd_value_object_get(doc, "sql"), NULL);
    if (!sql || inferd_value_object_len(doc) != 1)
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "the body must be {\"sql\": \"CREATE STREAM name () WITH "
                        "(DATASOURCE=\\\"topic\\\")\"}");
    return sql;
}

static void reply_message(svc_request *r, unsigned status, const char *key, const char *value,
                          const char *message)
{
    inferd_value *b = inferd_value_object();
    inferd_value_object_set(b, key, inferd_value_string(value), NULL);
    inferd_value_object_set(b, "message", inferd_value_string(message), NULL);
    svc_reply_json(r, status, b);
}

/* ---- streams ------------------------------------------------------------------------ */

static void stream_create(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? object_body(r) : NULL;
    const char *sql = doc ? stream_sql(r, doc) : NULL;
    if (sql) {
        char *name = NULL, msg[300];
        inferd_error err = {0};
        inferd_status st = rules_stream_create(e, sql, &name, &err);
        if (st == INFERD_OK) {
            snprintf(msg, sizeof msg, "Stream %s is created.", name);
            reply_message(r, MHD_HTTP_CREATED, "name", name, msg);
        } else {
            reply_status(r, st, &err);
        }
        free(name);
    }
    inferd_value_free(doc);
}

static void stream_list(svc_request *r)
{
    rules_engine *e = engine(r);
    if (e)
        svc_reply_json(r, MHD_HTTP_OK, rules_stream_list(e));
}

static void stream_get(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *d = NULL;
    inferd_error err = {0};
    inferd_status st = e ? rules_stream_describe(e, svc_param(r, 0), &d, &err) : INFERD_OK;
    if (!e)
        return;
    if (st == INFERD_OK)
        svc_reply_json(r, MHD_HTTP_OK, d);
    else
        reply_status(r, st, &err);
}

static void stream_put(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? object_body(r) : NULL;
    const char *sql = doc ? stream_sql(r, doc) : NULL;
    if (sql) {
        inferd_error err = {0};
        char msg[300];
        inferd_status st = rules_stream_update(e, svc_param(r, 0), sql, &err);
        snprintf(msg, sizeof msg, "Stream %s is updated.", svc_param(r, 0));
        if (st == INFERD_OK)
            reply_message(r, MHD_HTTP_OK, "name", svc_param(r, 0), msg);
        else
            reply_status(r, st, &err);
    }
    inferd_value_free(doc);
}

static void stream_delete(svc_request *r)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    inferd_error err = {0};
    char msg[300];
    inferd_status st = rules_stream_delete(e, svc_param(r, 0), &err);
    snprintf(msg, sizeof msg, "Stream %s is dropped.", svc_param(r, 0));
    if (st == INFERD_OK)
        reply_message(r, MHD_HTTP_OK, "name", svc_param(r, 0), msg);
    else
        reply_status(r, st, &err);
}

/* POST /push/<path>: one message (or a JSON array of them) for the HTTP push
 * stream whose DATASOURCE is /<path>. */
static void stream_push(svc_request *r)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    size_t len;
    const char *body = svc_body(r, &len);
    inferd_error err = {0};
    inferd_status st = rules_stream_push(e, svc_path(r) + strlen("/push"), body, len, &err);
    if (st == INFERD_OK) {
        inferd_value *b = inferd_value_object();
        inferd_value_object_set(b, "accepted", inferd_value_bool(true), NULL);
        svc_reply_json(r, MHD_HTTP_ACCEPTED, b);
    } else {
        svc_reply_status(r, st, &err);
    }
}

/* ---- rules --------------------------------------------------------------------------- */

static void rule_create(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? object_body(r) : NULL;
    if (!doc)
        return;
    inferd_error err = {0};
    inferd_status st = rules_rule_create(e, doc, &err);
    const char *id = inferd_value_string_or(inferd_value_object_get(doc, "id"), "");
    char msg[300];
    snprintf(msg, sizeof msg, "Rule %s was created successfully.", id);
    if (st == INFERD_OK)
        reply_message(r, MHD_HTTP_CREATED, "id", id, msg);
    else
        reply_status(r, st, &err);
    inferd_value_free(doc);
}

static void rule_validate(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? object_body(r) : NULL;
    if (!doc)
        return;
    inferd_error err = {0};
    inferd_status st = rules_rule_validate(e, doc, &err);
    if (st == INFERD_OK) {
        inferd_value *b = inferd_value_object();
        inferd_value_object_set(b, "valid", inferd_value_bool(true), NULL);
        svc_reply_json(r, MHD_HTTP_OK, b);
    } else {
        reply_status(r, st, &err);
    }
    inferd_value_free(doc);
}

static void rule_list(svc_request *r)
{
    rules_engine *e = engine(r);
    if (e)
        svc_reply_json(r, MHD_HTTP_OK, rules_rule_list(e));
}

static void rule_get(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *d = NULL;
    inferd_error err = {0};
    inferd_status st = e ? rules_rule_describe(e, svc_param(r, 0), &d, &err) : INFERD_OK;
    if (!e)
        return;
    if (st == INFERD_OK)
        svc_reply_json(r, MHD_HTTP_OK, d);
    else
        reply_status(r, st, &err);
}

static void rule_status(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *d = NULL;
    inferd_error err = {0};
    inferd_status st = e ? rules_rule_status(e, svc_param(r, 0), &d, &err) : INFERD_OK;
    if (!e)
        return;
    if (st == INFERD_OK)
        svc_reply_json(r, MHD_HTTP_OK, d);
    else
        reply_status(r, st, &err);
}

static void rule_put(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? object_body(r) : NULL;
    if (!doc)
        return;
    /* The id may be left out of the body: it is in the path. */
    if (!inferd_value_object_get(doc, "id"))
        inferd_value_object_set(doc, "id", inferd_value_string(svc_param(r, 0)), NULL);
    inferd_error err = {0};
    char msg[300];
    inferd_status st = rules_rule_update(e, svc_param(r, 0), doc, &err);
    snprintf(msg, sizeof msg, "Rule %s was updated successfully.", svc_param(r, 0));
    if (st == INFERD_OK)
        reply_message(r, MHD_HTTP_OK, "id", svc_param(r, 0), msg);
    else
        reply_status(r, st, &err);
    inferd_value_free(doc);
}

static void rule_delete(svc_request *r)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    inferd_error err = {0};
    char msg[300];
    inferd_status st = rules_rule_delete(e, svc_param(r, 0), &err);
    snprintf(msg, sizeof msg, "Rule %s is dropped.", svc_param(r, 0));
    if (st == INFERD_OK)
        reply_message(r, MHD_HTTP_OK, "id", svc_param(r, 0), msg);
    else
        reply_status(r, st, &err);
}

static void rule_control(svc_request *r, const char *what,
                         inferd_status (*fn)(rules_engine *, const char *, inferd_error *))
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    inferd_error err = {0};
    char msg[300];
    inferd_status st = fn(e, svc_param(r, 0), &err);
    snprintf(msg, sizeof msg, "Rule %s was %s.", svc_param(r, 0), what);
    if (st == INFERD_OK)
        reply_message(r, MHD_HTTP_OK, "id", svc_param(r, 0), msg);
    else
        reply_status(r, st, &err);
}

static void rule_start(svc_request *r) { rule_control(r, "started", rules_rule_start); }
static void rule_stop(svc_request *r) { rule_control(r, "stopped", rules_rule_stop); }
static void rule_restart(svc_request *r) { rule_control(r, "restarted", rules_rule_restart); }

const svc_route svc_rules_routes[] = {
    {"POST", "/streams", stream_create, SVC_ROUTE_MANAGEMENT},
    {"GET", "/streams", stream_list, SVC_ROUTE_MANAGEMENT},
    {"GET", "/streams/*", stream_get, SVC_ROUTE_MANAGEMENT},
    {"PUT", "/streams/*", stream_put, SVC_ROUTE_MANAGEMENT},
    {"DELETE", "/streams/*", stream_delete, SVC_ROUTE_MANAGEMENT},
    {"POST", "/push/*", stream_push, 0},
    {"POST", "/rules/validate", rule_validate, SVC_ROUTE_MANAGEMENT},
    {"POST", "/rules", rule_create, SVC_ROUTE_MANAGEMENT},
    {"GET", "/rules", rule_list, SVC_ROUTE_MANAGEMENT},
    {"GET", "/rules/*", rule_get, SVC_ROUTE_MANAGEMENT},
    {"PUT", "/rules/*", rule_put, SVC_ROUTE_MANAGEMENT},
    {"DELETE", "/rules/*", rule_delete, SVC_ROUTE_MANAGEMENT},
    {"GET", "/rules/*/status", rule_status, SVC_ROUTE_MANAGEMENT},
    {"POST", "/rules/*/start", rule_start, SVC_ROUTE_MANAGEMENT},
    {"POST", "/rules/*/stop", rule_stop, SVC_ROUTE_MANAGEMENT},
    {"POST", "/rules/*/restart", rule_restart, SVC_ROUTE_MANAGEMENT},
    {NULL, NULL, NULL, 0},
};
