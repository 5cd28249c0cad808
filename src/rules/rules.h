/* rules/rules.h: the streams and rules engine. Not installed; used by the
 * service (src/service/api_rules.c) and bench/rules.
 *
 * A stream is a named source of messages (CREATE STREAM ... WITH (TYPE=...)):
 * MQTT, HTTP push, a file, or a source component of a plugin. A rule is a
 * SELECT over one stream whose result rows go to actions (MQTT, HTTP, log,
 * file, sink components). A stream's source runs while a running rule reads
 * it, and its messages are shared by every such rule. Each rule runs on its
 * own thread (plus options.concurrency workers) with a bounded input buffer;
 * each action on its own thread with its own buffer, so a slow action does
 * not hold the rule.
 *
 * Definitions live in the state database (<state.dir>/inferd.db, tables
 * streams and rules) and come back with rules_engine_open; rules that were
 * running start again once the plugins their functions come from are
 * running. docs/rules.md is the user's side of all this.
 */
#ifndef INFERD_RULES_H
#define INFERD_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/registry.h"
#include "inferd/status.h"
#include "inferd/value.h"

struct inferd_portables;
typedef struct rules_engine rules_engine;

/* Opens the engine over cfg's state database and restores its streams and
 * rules; rules recorded as running are started on a thread of the engine
 * (they wait for their plugins). est and portables may be NULL (no
 * estimator functions, no waiting for portable plugins). All borrowed and
 * must outlive the engine. db_path NULL: <state.dir>/inferd.db. */
inferd_status rules_engine_open(const inferd_config *cfg, inferd_registry *reg,
                                inferd_estimators *est, struct inferd_portables *portables,
                                const char *db_path, rules_engine **out, inferd_error *err);
/* Stops every rule and source (definitions and their running state stay
 * recorded), frees. NULL is fine. */
void rules_engine_free(rules_engine *e);

/* ---- streams ---------------------------------------------------------------- */

/* CREATE STREAM sql: parsed, its options checked, recorded. EEXIST when the
 * name is taken, EINVAL with the position or option otherwise. *name_out
 * (optional, malloc'd) is the stream's name. */
inferd_status rules_stream_create(rules_engine *e, const char *sql, char **name_out,
                                  inferd_error *err);
/* Replaces stream name's definition (the statement must name the same
 * stream); running rules that read it restart on the new one. */
inferd_status rules_stream_update(rules_engine *e, const char *name, const char *sql,
                                  inferd_error *err);
/* EBUSY (naming them) while rules read it. */
inferd_status rules_stream_delete(rules_engine *e, const char *name, inferd_error *err);
/* ["name", ...] in name order. */
inferd_value *rules_stream_list(rules_engine *e);
/* {"name", "sql", "fields": [{"name","type"}], "options": {...}, "type", "format",
 *  "datasource", "running": bool, "recordsIn", "exceptions", "lastException"} */
inferd_status rules_stream_describe(rules_engine *e, const char *name, inferd_value **out,
                                    inferd_error *err);
/* A message POSTed to an HTTP push stream: path is the request path after
 * "/push" ("/sensors"). ENOTFOUND when no HTTP push stream has that
 * DATASOURCE; ESTATE when no running rule reads it (nothing would see it);
 * EINVAL when the body does not parse as the stream's FORMAT; EBUSY when a
 * rule's buffer is full (the message is counted as dropped there). */
inferd_status rules_stream_push(rules_engine *e, const char *path, const void *body, size_t len,
                                inferd_error *err);

/* ---- rules ------------------------------------------------------------------ */

/* def: {"id", "sql", "actions": [{"mqtt": {...}}, ...], "options": {...},
 * "triggered": bool (default true: start now)}. Checked whole (SQL, stream,
 * functions and their arity, actions and their settings, options) before
 * anything is recorded. EEXIST when the id is taken. */
inferd_status rules_rule_create(rules_engine *e, const inferd_value *def, inferd_error *err);
/* The same checks as create, nothing recorded or started. */
inferd_status rules_rule_validate(rules_engine *e, const inferd_value *def, inferd_error *err);
/* Replaces rule id's definition; restarts it if it was running. */
inferd_status rules_rule_update(rules_engine *e, const char *id, const inferd_value *def,
                                inferd_error *err);
inferd_status rules_rule_delete(rules_engine *e, const char *id, inferd_error *err);
inferd_status rules_rule_start(rules_engine *e, const char *id, inferd_error *err);
inferd_status rules_rule_stop(rules_engine *e, const char *id, inferd_error *err);
inferd_status rules_rule_restart(rules_engine *e, const char *id, inferd_error *err);
/* [{"id", "status"}] in id order. */
inferd_value *rules_rule_list(rules_engine *e);
/* The definition as given (with defaults applied to options). */
inferd_status rules_rule_describe(rules_engine *e, const char *id, inferd_value **out,
                                  inferd_error *err);
/* {"status": "running"|"stopped"|"starting"|"failed", "message"?, "lastStartTimestamp",
 *  "lastStopTimestamp", then per stage source_<stream>_0_*, op_<n>_<name>_0_*,
 *  sink_<type>_<i>_0_*: records_in_total, records_out_total, exceptions_total,
 *  last_exception, last_exception_time, process_latency_us, buffer_length,
 *  last_invocation, and for connections connection_status (1/0),
 *  connection_last_error, dropped_total} */
inferd_status rules_rule_status(rules_engine *e, const char *id, inferd_value **out,
                                inferd_error *err);
/* Every rule's status, as rules_rule_status gives it, by id ({"r1": {...}}). */
inferd_value *rules_rule_status_all(rules_engine *e);
/* The rule's stages as the seeds' engine draws them: {"sources":
 * ["source_<stream>"], "edges": {"source_<stream>": ["op_1_select"],
 * "op_1_select": ["sink_<kind>_<i>", ...]}}, named as in its status. */
inferd_status rules_rule_topo(rules_engine *e, const char *id, inferd_value **out,
                              inferd_error *err);

/* EBUSY naming them when streams (a source component) or rules (a function
 * or a sink component) use a component of plugin; a plugin is not removed
 * from under them. */
inferd_status rules_plugin_in_use(rules_engine *e, const char *plugin, inferd_error *err);

/* Totals for /metrics. */
typedef struct rules_totals {
    size_t streams, rules, rules_running;
    uint64_t records_in, records_out, exceptions, dropped;
} rules_totals;
/* /metrics must never wait on a change of streams or rules (one may hold
 * the engine for a plugin's call): these give up, returning false with
 * nothing filled or called, when the engine stays busy for 50 ms. */
/* Readiness: down(ctx, reason) for each rule (id NULL: every one; else
 * that one) that should run and does not ("rule r1 is failed: ..."). A rule
 * that was stopped on purpose is not down. ENOTFOUND for an unknown id. */
inferd_status rules_engine_health(rules_engine *e, const char *id,
                                 void (*down)(void *ctx, const char *reason), void *ctx);
bool rules_engine_totals(rules_engine *e, rules_totals *out);
/* Each rule's counters since it last started, in id order (for /metrics). */
typedef struct rules_rule_counts {
    const char *id;            /* borrowed for the call */
    bool running;
    uint64_t records_in, records_out, exceptions, dropped;
} rules_rule_counts;
bool rules_engine_each(rules_engine *e, void (*fn)(void *ctx, const rules_rule_counts *c),
                       void *ctx);

/* The declaration of a surface users write ("rule", "stream", an action
 * kind "mqtt", "http", "rest", "log", "file", or "sink" for the settings
 * every sink has), as the one validator checks it; NULL for another name
 * (`inferd describe`). */
const inferd_prop_spec *rules_declaration(const char *surface);

#endif
