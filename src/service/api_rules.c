/* service/api_rules.c: streams and rules over REST, in the shape of the
 * seeds' stream engine: /streams, /rules, /rules/{id}/start|stop|restart,
 * /rules/{id}/status, /rules/{id}/topo, /rules/status/all, /rules/validate; and POST /push/<path> for HTTP push
 * streams. Definitions are management (loopback or the bearer token);
 * pushing data is not. docs/rules.md is the user's side. */
#include <ctype.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_file.h"
#include "rules/rules.h"
#include "service/service.h"

/* The most a ruleset to import may hold (a body is bounded by
 * http.max_body_bytes already; this bounds a file). */
#define RULESET_MAX_BYTES (16u << 20)

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

/* A done change: {"<key>": name, "message": "<What> <name> <done>."} with
 * status, or the error. The messages are the seeds' engine's. */
static void reply_done(svc_request *r, inferd_status st, const inferd_error *err, unsigned status,
                       const char *key, const char *name, const char *what, const char *done)
{
    if (st != INFERD_OK) {
        reply_status(r, st, err);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "%s %s %s.", what, name, done);
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, key, name, &ok);
    inferd__put_str(b, "message", msg, &ok);
    svc_reply_built(r, status, b, ok);
}

/* GET of one stream or rule by the path's name. */
typedef inferd_status (*lookup_fn)(rules_engine *e, const char *name, inferd_value **out,
                                   inferd_error *err);
static void reply_lookup(svc_request *r, lookup_fn fn)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    inferd_value *d = NULL;
    inferd_error err = {0};
    inferd_status st = fn(e, svc_param(r, 0), &d, &err);
    if (st == INFERD_OK)
        svc_reply_json(r, MHD_HTTP_OK, d);
    else
        reply_status(r, st, &err);
}

/* ---- streams ------------------------------------------------------------------------ */

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

/* POST /streams, and PUT /streams/{name} (update true). */
static void stream_define(svc_request *r, bool update)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? svc_body_object(r) : NULL;
    const char *sql = doc ? stream_sql(r, doc) : NULL;
    if (sql) {
        char *name = NULL;
        inferd_error err = {0};
        inferd_status st = update ? rules_stream_update(e, svc_param(r, 0), sql, &err)
                                  : rules_stream_create(e, sql, &name, &err);
        reply_done(r, st, &err, update ? MHD_HTTP_OK : MHD_HTTP_CREATED, "name",
                   update ? svc_param(r, 0) : name, "Stream", update ? "is updated" : "is created");
        free(name);
    }
    inferd_value_free(doc);
}

static void stream_create(svc_request *r) { stream_define(r, false); }
static void stream_put(svc_request *r) { stream_define(r, true); }
static void stream_get(svc_request *r) { reply_lookup(r, rules_stream_describe); }

/* GET /streams/{name}/schema: {"<field>": {"type": "<type>"}, ...} in the
 * declared order, as the seed engine answers; {} for a schemaless stream. */
static void stream_schema(svc_request *r)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    inferd_value *d = NULL;
    inferd_error err = {0};
    inferd_status st = rules_stream_describe(e, svc_param(r, 0), &d, &err);
    if (st != INFERD_OK) {
        reply_status(r, st, &err);
        return;
    }
    bool ok = true;
    inferd_value *schema = inferd_value_object();
    const inferd_value *fields = inferd_value_object_get(d, "fields");
    for (size_t i = 0; i < inferd_value_array_len(fields); i++) {
        const inferd_value *f = inferd_value_array_get(fields, i);
        /* The seed engine writes the types in lower case ("bigint"). */
        char type[64];
        snprintf(type, sizeof type, "%s",
                 inferd_value_string_or(inferd_value_object_get(f, "type"), ""));
        for (char *p = type; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        inferd_value *t = inferd_value_object();
        inferd__put_str(t, "type", type, &ok);
        inferd__put(schema, inferd_value_string_or(inferd_value_object_get(f, "name"), ""), t,
                    &ok);
    }
    inferd_value_free(d);
    svc_reply_built(r, MHD_HTTP_OK, schema, ok);
}

static void stream_list(svc_request *r)
{
    rules_engine *e = engine(r);
    if (e)
        svc_reply_json(r, MHD_HTTP_OK, rules_stream_list(e));
}

static void stream_delete(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_error err = {0};
    if (e)
        reply_done(r, rules_stream_delete(e, svc_param(r, 0), &err), &err, MHD_HTTP_OK, "name",
                   svc_param(r, 0), "Stream", "is dropped");
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
    /* An open route feeding rules' buffers (bufferLength messages each):
     * its messages are bounded on their own. */
    uint64_t max = (uint64_t)inferd_config_int(svc_of(r)->cfg, "rules.push_max_bytes");
    if (len > max) {
        svc_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                        "a pushed message has %zu bytes, more than rules.push_max_bytes (%llu)",
                        len, (unsigned long long)max);
        return;
    }
    inferd_error err = {0};
    inferd_status st = rules_stream_push(e, svc_path(r) + strlen("/push"), body, len, &err);
    if (st == INFERD_OK) {
        bool ok = true;
        inferd_value *b = inferd_value_object();
        inferd__put(b, "accepted", inferd_value_bool(true), &ok);
        svc_reply_built(r, MHD_HTTP_ACCEPTED, b, ok);
    } else {
        svc_reply_status(r, st, &err);
    }
}

/* ---- rules --------------------------------------------------------------------------- */

/* POST /rules, PUT /rules/{id} (update true), POST /rules/validate (check). */
static void rule_define(svc_request *r, bool update, bool check)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? svc_body_object(r) : NULL;
    if (!doc)
        return;
    /* PUT may leave the id out of the body: it is in the path. */
    if (update && !inferd_value_object_get(doc, "id"))
        inferd__put_str(doc, "id", svc_param(r, 0), NULL); /* lost: "id" is missing, said */
    inferd_error err = {0};
    inferd_status st = check    ? rules_rule_validate(e, doc, &err)
                       : update ? rules_rule_update(e, svc_param(r, 0), doc, &err)
                                : rules_rule_create(e, doc, &err);
    if (check && st == INFERD_OK) {
        bool ok = true;
        inferd_value *b = inferd_value_object();
        inferd__put(b, "valid", inferd_value_bool(true), &ok);
        svc_reply_built(r, MHD_HTTP_OK, b, ok);
    } else {
        reply_done(r, st, &err, update ? MHD_HTTP_OK : MHD_HTTP_CREATED, "id",
                   update ? svc_param(r, 0)
                          : inferd_value_string_or(inferd_value_object_get(doc, "id"), ""),
                   "Rule", update ? "was updated successfully" : "was created successfully");
    }
    inferd_value_free(doc);
}

static void rule_create(svc_request *r) { rule_define(r, false, false); }
static void rule_put(svc_request *r) { rule_define(r, true, false); }
static void rule_validate(svc_request *r) { rule_define(r, false, true); }
static void rule_get(svc_request *r) { reply_lookup(r, rules_rule_describe); }
static void rule_status(svc_request *r) { reply_lookup(r, rules_rule_status); }
static void rule_topo(svc_request *r) { reply_lookup(r, rules_rule_topo); }

static void rule_status_all(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *all = e ? rules_rule_status_all(e) : NULL;
    if (all)
        svc_reply_json(r, MHD_HTTP_OK, all);
    else if (e)
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
}

static void rule_list(svc_request *r)
{
    rules_engine *e = engine(r);
    if (e)
        svc_reply_json(r, MHD_HTTP_OK, rules_rule_list(e));
}

/* DELETE /rules/{id} and POST /rules/{id}/start|stop|restart. */
static void rule_control(svc_request *r, const char *done,
                         inferd_status (*fn)(rules_engine *, const char *, inferd_error *))
{
    rules_engine *e = engine(r);
    inferd_error err = {0};
    if (e)
        reply_done(r, fn(e, svc_param(r, 0), &err), &err, MHD_HTTP_OK, "id", svc_param(r, 0),
                   "Rule", done);
}

static void rule_delete(svc_request *r) { rule_control(r, "is dropped", rules_rule_delete); }
static void rule_start(svc_request *r) { rule_control(r, "was started", rules_rule_start); }
static void rule_stop(svc_request *r) { rule_control(r, "was stopped", rules_rule_stop); }
static void rule_restart(svc_request *r) { rule_control(r, "was restarted", rules_rule_restart); }

/* ---- rulesets: export and import (the seed engine's /ruleset) -------------------------- */

/* POST /ruleset/export: {"streams": {"<name>": "CREATE STREAM ..."}, "tables": {},
 * "rules": {"<id>": "<the rule's JSON as a string>"}}, as a file to keep.
 * Secrets come out as "***", as GET /rules/{id} shows them: fill them in
 * before importing elsewhere. A rule stopped on purpose says "triggered":
 * false, so that an import leaves it stopped. */
static void ruleset_export(svc_request *r)
{
    rules_engine *e = engine(r);
    if (!e)
        return;
    bool ok = true;
    inferd_value *set = inferd_value_object(), *streams = inferd_value_object(),
                 *rules = inferd_value_object(), *names = rules_stream_list(e),
                 *list = rules_rule_list(e);
    for (size_t i = 0; ok && i < inferd_value_array_len(names); i++) {
        const char *name = inferd_value_string_or(inferd_value_array_get(names, i), "");
        inferd_value *d = NULL;
        if (rules_stream_describe(e, name, &d, NULL) == INFERD_OK) /* else dropped meanwhile */
            inferd__put_str(streams, name,
                            inferd_value_string_or(inferd_value_object_get(d, "sql"), ""), &ok);
        inferd_value_free(d);
    }
    for (size_t i = 0; ok && i < inferd_value_array_len(list); i++) {
        const inferd_value *brief = inferd_value_array_get(list, i);
        const char *id = inferd_value_string_or(inferd_value_object_get(brief, "id"), "");
        bool stopped = strcmp(inferd_value_string_or(inferd_value_object_get(brief, "status"), ""),
                              "stopped") == 0;
        inferd_value *d = NULL;
        char *json = NULL;
        if (rules_rule_describe(e, id, &d, NULL) == INFERD_OK &&
            inferd_value_object_set(d, "triggered", inferd_value_bool(!stopped), NULL) ==
                INFERD_OK &&
            inferd_value_to_json(d, INFERD_JSON_COMPACT, &json, NULL, NULL) == INFERD_OK)
            inferd__put_str(rules, id, json, &ok);
        free(json);
        inferd_value_free(d);
    }
    inferd_value_free(names);
    inferd_value_free(list);
    inferd__put(set, "streams", streams, &ok);
    inferd__put(set, "tables", inferd_value_object(), &ok);
    inferd__put(set, "rules", rules, &ok);
    svc_reply_built(r, MHD_HTTP_OK, set, ok);
}

static const char ruleset_body_help[] =
    "the body must be {\"content\": \"<the ruleset's JSON as a string>\"} or {\"file\": "
    "\"file:///path/ruleset.json\"}";

/* The ruleset an import names: its "content", or the file of its "file"
 * URL. NULL after replying 400. */
static inferd_value *ruleset_of(svc_request *r, const inferd_value *doc)
{
    const char *content = inferd_value_string_or(inferd_value_object_get(doc, "content"), NULL);
    const char *file = inferd_value_string_or(inferd_value_object_get(doc, "file"), NULL);
    inferd_value *set = NULL;
    inferd_error err = {0};
    inferd_status st = INFERD_OK;
    if (inferd_value_object_len(doc) != 1 || (!content && !file)) {
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", ruleset_body_help);
        return NULL;
    }
    if (file && (strncmp(file, "file://", 7) != 0 || file[7] != '/')) {
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "\"file\" must be a file:/// "
                        "URL of a file on this machine, not \"%s\"", file);
        return NULL;
    }
    if (content)
        st = inferd_value_from_json(content, strlen(content), 0, &set, &err);
    else if ((st = inferd__json_file_read(file + 7, RULESET_MAX_BYTES, &set, &err)) ==
                 INFERD_OK && !set)
        st = inferd_error_set(&err, INFERD_ENOTFOUND, "%s does not exist", file + 7);
    if (st == INFERD_OK && !inferd_value_is(set, INFERD_VALUE_OBJECT))
        st = inferd_error_set(&err, INFERD_EINVAL, "a ruleset is a JSON object of \"streams\", "
                              "\"tables\" and \"rules\"");
    if (st != INFERD_OK) {
        inferd_value_free(set);
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "the ruleset: %s", err.message);
        return NULL;
    }
    return set;
}

/* One entry the import did not create: why, under "<kind> <name>". */
static void import_failed(inferd_value *failed, const char *kind, const char *name,
                          const char *why, bool *ok)
{
    char key[300];
    snprintf(key, sizeof key, "%s %.200s", kind, name);
    inferd__put_str(failed, key, why, ok);
}

/* POST /ruleset/import: the streams first (each "CREATE STREAM"), then the
 * rules (each its JSON as a string, or an object); one that exists already
 * is left as it is, one that fails is named with why, and the others are
 * created. 200 {"streams": n, "tables": 0, "rules": n, "skipped": [...],
 * "failed": {...}}. */
static void ruleset_import(svc_request *r)
{
    rules_engine *e = engine(r);
    inferd_value *doc = e ? svc_body_object(r) : NULL;
    inferd_value *set = doc ? ruleset_of(r, doc) : NULL;
    inferd_value_free(doc);
    if (!set)
        return;
    bool ok = true;
    int64_t n_streams = 0, n_rules = 0;
    inferd_value *skipped = inferd_value_array(), *failed = inferd_value_object();
    const inferd_value *group;
    const char *name;
    inferd_value *item;
    group = inferd_value_object_get(set, "streams");
    for (size_t i = 0; ok && inferd_value_object_entry(group, i, &name, &item); i++) {
        const char *sql = inferd_value_string_or(item, NULL);
        inferd_error err = {0};
        inferd_status st = sql ? rules_stream_create(e, sql, NULL, &err)
                               : inferd_error_set(&err, INFERD_EINVAL, "not a CREATE STREAM "
                                                  "statement as a string");
        if (st == INFERD_OK)
            n_streams++;
        else if (st == INFERD_EEXIST)
            inferd__push(skipped, inferd_value_string(name), &ok);
        else
            import_failed(failed, "stream", name, err.message, &ok);
    }
    group = inferd_value_object_get(set, "tables");
    for (size_t i = 0; ok && inferd_value_object_entry(group, i, &name, &item); i++)
        import_failed(failed, "table", name, "tables are not supported (CREATE TABLE)", &ok);
    group = inferd_value_object_get(set, "rules");
    for (size_t i = 0; ok && inferd_value_object_entry(group, i, &name, &item); i++) {
        const char *text = inferd_value_string_or(item, NULL);
        inferd_value *def = NULL;
        inferd_error err = {0};
        inferd_status st = INFERD_OK;
        if (text)
            st = inferd_value_from_json(text, strlen(text), 0, &def, &err);
        else if (!(def = inferd_value_copy(item)))
            st = inferd_error_set(&err, INFERD_ENOMEM, "out of memory");
        if (st == INFERD_OK && !inferd_value_is(def, INFERD_VALUE_OBJECT))
            st = inferd_error_set(&err, INFERD_EINVAL, "not a rule's JSON object");
        /* The key names the rule where its JSON does not. */
        if (st == INFERD_OK && !inferd_value_object_get(def, "id"))
            st = inferd_value_object_set(def, "id", inferd_value_string(name), &err);
        if (st == INFERD_OK)
            st = rules_rule_create(e, def, &err);
        inferd_value_free(def);
        if (st == INFERD_OK)
            n_rules++;
        else if (st == INFERD_EEXIST)
            inferd__push(skipped, inferd_value_string(name), &ok);
        else
            import_failed(failed, "rule", name, err.message, &ok);
    }
    inferd_value_free(set);
    char msg[160];
    snprintf(msg, sizeof msg, "imported %lld streams, 0 tables and %lld rules",
             (long long)n_streams, (long long)n_rules);
    inferd_value *b = inferd_value_object();
    inferd__put(b, "streams", inferd_value_int(n_streams), &ok);
    inferd__put(b, "tables", inferd_value_int(0), &ok);
    inferd__put(b, "rules", inferd_value_int(n_rules), &ok);
    inferd__put(b, "skipped", skipped, &ok);
    inferd__put(b, "failed", failed, &ok);
    inferd__put_str(b, "message", msg, &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

const svc_route svc_rules_routes[] = {
    {"POST", "/streams", stream_create, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/streams", stream_list, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/streams/*", stream_get, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/streams/*/schema", stream_schema, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"PUT", "/streams/*", stream_put, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"DELETE", "/streams/*", stream_delete, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/push/*", stream_push, 0},
    {"POST", "/rules/validate", rule_validate, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/ruleset/export", ruleset_export, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/ruleset/import", ruleset_import, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/rules", rule_create, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/rules", rule_list, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/rules/*", rule_get, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"PUT", "/rules/*", rule_put, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"DELETE", "/rules/*", rule_delete, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/rules/status/all", rule_status_all, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/rules/*/status", rule_status, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/rules/*/topo", rule_topo, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/rules/*/start", rule_start, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/rules/*/stop", rule_stop, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/rules/*/restart", rule_restart, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {NULL, NULL, NULL, 0},
};
