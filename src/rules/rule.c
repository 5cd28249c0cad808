/* rule.c: one rule: its definition, checked whole before it is accepted,
 * and its run: a thread that waits for the portable plugins its functions
 * come from, binds its functions (each running rule has its own function
 * instances), opens its actions, reads its stream, and feeds every message
 * through the query (or hands messages to options.concurrency workers and
 * sends their results in order). A rule that fails to start is tried again
 * by its restartStrategy; a message that fails is counted and the rule goes
 * on. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/build_value.h"
#include "inferd/log.h"
#include "rules/internal.h"

#define LOG "rules"

static const char *const state_names[] = {"stopped", "starting", "running", "failed"};

void rrule_set_message(rrule *r, const char *fmt, ...)
{
    pthread_mutex_lock(&r->msg_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&r->msg_lock);
}

/* A rule's state, and a rule_status event on the bus when it changed
 * (set the message first: the event carries it). */
static void set_state(rrule *r, rrule_state state)
{
    if ((rrule_state)atomic_exchange(&r->state, state) == state)
        return;
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "rule", r->id, &ok);
    inferd__put_str(ev, "status", state_names[state], &ok);
    pthread_mutex_lock(&r->msg_lock);
    inferd__put_str(ev, "message", r->message, &ok);
    pthread_mutex_unlock(&r->msg_lock);
    inferd_error e = {0};
    if (!ok)
        inferd_value_free(ev);
    else if (inferd_event_publish("rule_status", ev, &e) != INFERD_OK)
        inferd_log_warn(LOG, "rule %s: event rule_status: %s", r->id, e.message);
}

void rrule_source_exception(rrule *r, const char *msg)
{
    rstats_exception(&r->source_stats, "%s", msg);
}

bool rrule_offer(rrule *r, rmsg *m, bool wait)
{
    atomic_fetch_add(&r->source_stats.in, 1);
    atomic_store(&r->source_stats.last_invocation, m->wall_ms);
    atomic_fetch_add(&m->refs, 1);
    if (inferd_queue_push_sized(r->in, m, m->bytes, wait ? -1 : 0) == INFERD_OK)
        return true;
    rmsg_unref(m);
    atomic_fetch_add(&r->source_stats.dropped, 1);
    return false;
}

/* ---- the definition ------------------------------------------------------------- */

/* The rule's definition and its options, declared (eKuiper's names and
 * ranges); checked by the one validator. */
typedef struct rule_decl {
    const char *id, *sql;
    const inferd_value *actions, *options;
    bool triggered;
} rule_decl;

typedef struct options_decl {
    int64_t buffer, qos, concurrency, late_ms;
    bool event_time, send_error, send_nil;
    const inferd_value *restart;
} options_decl;

typedef struct restart_decl {
    int64_t attempts, delay_ms, max_delay_ms;
    double multiplier, jitter;
} restart_decl;

static const inferd_prop_spec restart_specs[] = {
    {.name = "attempts", .type = INFERD_PROP_TYPE_UINT, .default_value = "0", .umax = 1000000,
     .description = "restarts after a failure (0: none)", INFERD_PROP_AT(restart_decl, attempts)},
    {.name = "delay", .type = INFERD_PROP_TYPE_DURATION, .default_value = "1000", .umax = 3600000,
     .description = "before the first restart (ms)", INFERD_PROP_AT(restart_decl, delay_ms)},
    {.name = "multiplier", .type = INFERD_PROP_TYPE_DOUBLE, .default_value = "2", .dmin = 1,
     .dmax = 100, .description = "each delay is the last times this",
     INFERD_PROP_AT(restart_decl, multiplier)},
    {.name = "maxDelay", .type = INFERD_PROP_TYPE_DURATION, .default_value = "30000",
     .umax = 3600000, .description = "the longest delay (ms)",
     INFERD_PROP_AT(restart_decl, max_delay_ms)},
    {.name = "jitterFactor", .type = INFERD_PROP_TYPE_DOUBLE, .default_value = "0.1", .dmin = 0,
     .dmax = 1, .description = "each delay +- this fraction",
     INFERD_PROP_AT(restart_decl, jitter)},
    INFERD_PROP_END,
};

static const inferd_prop_spec option_specs[] = {
    {.name = "bufferLength", .type = INFERD_PROP_TYPE_UINT, .default_value = "1024", .umin = 1,
     .umax = 1000000, .description = "messages the rule's input and each action's buffer hold",
     INFERD_PROP_AT(options_decl, buffer)},
    {.name = "qos", .type = INFERD_PROP_TYPE_INT, .default_value = "0", .imin = 0, .imax = 2,
     .description = "the MQTT QoS of its actions", INFERD_PROP_AT(options_decl, qos)},
    {.name = "concurrency", .type = INFERD_PROP_TYPE_UINT, .default_value = "1", .umin = 1,
     .umax = 64, .description = "messages through the query at once (no window)",
     INFERD_PROP_AT(options_decl, concurrency)},
    {.name = "isEventTime", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     .description = "windows on the stream's TIMESTAMP field",
     INFERD_PROP_AT(options_decl, event_time)},
    {.name = "lateTolerance", .type = INFERD_PROP_TYPE_DURATION, .default_value = "0",
     .umax = 86400000, .description = "how late an event may be (ms)",
     INFERD_PROP_AT(options_decl, late_ms)},
    {.name = "sendError", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     .description = "send a message's error to the actions", INFERD_PROP_AT(options_decl, send_error)},
    {.name = "sendNilField", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     .description = "keep a result column whose value is NULL (left out by default)",
     INFERD_PROP_AT(options_decl, send_nil)},
    {.name = "restartStrategy", .type = INFERD_PROP_TYPE_OBJECT, .fields = restart_specs,
     .description = "restarts after a failure", INFERD_PROP_AT(options_decl, restart)},
    INFERD_PROP_END,
};

static const inferd_prop_spec rule_specs[] = {
    {.name = "id", .type = INFERD_PROP_TYPE_STRING, .description = "the rule's name: letters, "
     "digits, _ - and ., at most 128", INFERD_PROP_AT(rule_decl, id)},
    {.name = "sql", .type = INFERD_PROP_TYPE_STRING, .description = "SELECT ... FROM <stream>",
     INFERD_PROP_AT(rule_decl, sql)},
    {.name = "actions", .type = INFERD_PROP_TYPE_ARRAY, .description = "where the results go: "
     "[{\"mqtt\": {...}}, {\"log\": {}}]", INFERD_PROP_AT(rule_decl, actions)},
    {.name = "options", .type = INFERD_PROP_TYPE_OBJECT, .fields = option_specs,
     .description = "how it runs", INFERD_PROP_AT(rule_decl, options)},
    {.name = "triggered", .type = INFERD_PROP_TYPE_BOOL, .default_value = "true",
     .description = "runs once created", INFERD_PROP_AT(rule_decl, triggered)},
    INFERD_PROP_END,
};

const inferd_prop_spec *rrule_specs(void) { return rule_specs; }

/* The options (checked already) into r; written back into the definition
 * with every default, so that GET /rules/{id} shows what the rule runs with. */
static void take_options(rrule *r, const inferd_value *checked)
{
    options_decl o = {0};
    restart_decl rs = {0};
    inferd_props *p = NULL, *rp = NULL;
    /* Checked values check again; the defaults when the definition is a
     * recorded one that no longer does (rrule_broken), which keeps its own. */
    bool valid = inferd_props_validate(option_specs, "options", checked, &p, NULL) == INFERD_OK;
    if (!valid)
        inferd_props_validate(option_specs, "options", NULL, &p, NULL);
    inferd_props_bind(p, &o);
    if (inferd_props_validate(restart_specs, "restartStrategy", o.restart, &rp, NULL) != INFERD_OK)
        inferd_props_validate(restart_specs, "restartStrategy", NULL, &rp, NULL);
    inferd_props_bind(rp, &rs);
    r->buffer_length = (size_t)o.buffer;
    r->concurrency = (size_t)o.concurrency;
    r->event_time = o.event_time;
    r->late_ms = o.late_ms;
    r->qos = (int)o.qos;
    r->send_error = o.send_error;
    r->send_nil = o.send_nil;
    r->restart = (rrestart){.attempts = (int)rs.attempts, .delay_ms = rs.delay_ms,
                            .max_delay_ms = rs.max_delay_ms < rs.delay_ms ? rs.delay_ms
                                                                          : rs.max_delay_ms,
                            .multiplier = rs.multiplier, .jitter = rs.jitter};
    inferd_value *shown = valid ? inferd_props_to_value(p) : NULL;
    if (shown)
        inferd__put(r->def, "options", shown, NULL);
    inferd_props_free(rp);
    inferd_props_free(p);
}

/* Parses and binds the rule's SQL against its stream: the names and arity
 * of its functions, the columns of a stream with a schema. Unlocked (the
 * first check, rrule_new), the functions' own validate callbacks run: they
 * call into plugins and may take a portable call's whole timeout, so they
 * bind against a copy of the stream's definition taken under e->lock, never
 * holding it. Locked (rrule_recheck, just before the rule is inserted), names
 * only, against the live stream: cheap, and it sees a stream replaced or
 * deleted in between. */
static inferd_status check_sql(rrule *r, bool locked, inferd_error *err)
{
    sql_query *q = NULL;
    inferd_status st = sql_parse_select(r->sql, &q, err);
    if (st != INFERD_OK)
        return inferd_error_prefix(err, "sql");
    free(r->stream_name);
    if (!(r->stream_name = strdup(sql_query_stream(q)))) {
        sql_query_free(q);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    sql_stream_def *copy = NULL;
    const sql_stream_def *def = NULL;
    bool has_timestamp = false;
    if (!locked)
        pthread_mutex_lock(&r->e->lock);
    rstream *s = rules_find_stream(r->e, r->stream_name);
    char *stream_sql = s && !locked ? strdup(s->sql) : NULL;
    if (s) {
        def = s->def;
        has_timestamp = s->timestamp != NULL;
    }
    if (!locked)
        pthread_mutex_unlock(&r->e->lock);
    if (!s) {
        sql_query_free(q);
        return inferd_error_set(err, INFERD_EINVAL, "sql: stream \"%s\" does not exist (create "
                                "it with POST /streams)", r->stream_name);
    }
    if (!locked) {
        st = stream_sql ? sql_parse_stream(stream_sql, &copy, err)
                        : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        free(stream_sql);
        def = copy;
    }
    rfuncs fs = {.e = r->e, .instances = false};
    if (st == INFERD_OK)
        st = sql_query_bind(q, def, locked ? rfuncs_resolve_names : rfuncs_resolve, &fs, err);
    rfuncs_free(&fs);
    sql_stream_def_free(copy);
    bool window = st == INFERD_OK && sql_query_has_window(q);
    sql_query_free(q);
    if (st != INFERD_OK)
        return inferd_error_prefix(err, "sql");
    if (window && r->concurrency > 1)
        return inferd_error_set(err, INFERD_EINVAL, "options.concurrency: a query with a window "
                                "takes its messages one at a time, in order (concurrency 1)");
    if (r->event_time && !has_timestamp)
        return inferd_error_set(err, INFERD_EINVAL, "options.isEventTime: stream %s has no "
                                "TIMESTAMP field to take event time from", r->stream_name);
    if (r->event_time && !window)
        return inferd_error_set(err, INFERD_EINVAL, "options.isEventTime: event time is for "
                                "queries with a window");
    return INFERD_OK;
}

inferd_status rrule_recheck(rrule *r, inferd_error *err)
{
    inferd_status st = check_sql(r, true, err);
    if (st != INFERD_OK && strncmp(err->message, "rule ", 5) != 0)
        inferd_error_prefix(err, "rule %s", r->id);
    return st;
}

static rrule *rule_alloc(rules_engine *e, const char *id, const inferd_value *def)
{
    rrule *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->e = e;
    pthread_mutex_init(&r->msg_lock, NULL);
    pthread_mutex_init(&r->wake_lock, NULL);
    inferd__cond_init(&r->wake);
    rstats_init(&r->source_stats);
    rstats_init(&r->op_stats);
    atomic_init(&r->state, RRULE_STOPPED); /* no event: it is being made */
    r->buffer_length = 1024;
    r->concurrency = 1;
    if (!(r->id = strdup(id)) || !(r->def = inferd_value_copy(def)) ||
        !(r->stream_name = strdup(""))) {
        rrule_free(r);
        return NULL;
    }
    r->sql = (char *)inferd_value_string_or(inferd_value_object_get(r->def, "sql"), "");
    return r;
}

rrule *rrule_broken(rules_engine *e, const char *id, const inferd_value *def, const char *message)
{
    rrule *r = rule_alloc(e, id, def);
    if (!r)
        return NULL;
    inferd_error ignored = {0};
    take_options(r, inferd_value_object_get(def, "options")); /* what it can; else defaults */
    sql_query *q = NULL;
    if (sql_parse_select(r->sql, &q, &ignored) == INFERD_OK) {
        char *from = strdup(sql_query_stream(q));
        if (from) {
            free(r->stream_name);
            r->stream_name = from;
        }
    }
    sql_query_free(q);
    r->broken = true;
    rrule_set_message(r, "%s", message);
    set_state(r, RRULE_FAILED);
    return r;
}

inferd_status rrule_new(rules_engine *e, const inferd_value *def, rrule **out, inferd_error *err)
{
    if (!inferd_value_is(def, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "a rule is a JSON object {\"id\", \"sql\", "
                                "\"actions\", \"options\"}");
    /* Named in the errors when it has a usable id. */
    const char *given_id = inferd_value_string_or(inferd_value_object_get(def, "id"), NULL);
    char owner[160];
    snprintf(owner, sizeof owner, "rule%s%.128s", given_id ? " " : "", given_id ? given_id : "");
    inferd_props *p = NULL;
    inferd_status st = inferd_props_validate(rule_specs, owner, def, &p, err);
    if (st != INFERD_OK && st != INFERD_ENOMEM)
        st = inferd_error_recode(err, INFERD_EINVAL); /* an unknown key too: the definition's fault, a 400 */
    rule_decl d = {0};
    inferd_props_bind(p, &d);
    if (st == INFERD_OK && !d.id[0])
        st = inferd_error_set(err, INFERD_EINVAL, "rule: \"id\" must be a non-empty string");
    for (const char *c = d.id; st == INFERD_OK && *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.'))
            st = inferd_error_set(err, INFERD_EINVAL, "rule: id \"%s\" may only have letters, "
                                  "digits, _ - and .", d.id);
    if (st == INFERD_OK && strlen(d.id) > 128)
        st = inferd_error_set(err, INFERD_EINVAL, "rule: id is longer than 128 characters");
    if (st == INFERD_OK && !d.sql[0])
        st = inferd_error_set(err, INFERD_EINVAL, "rule %s: \"sql\" must be a non-empty "
                              "string", d.id);
    if (st == INFERD_OK && inferd_value_array_len(d.actions) == 0)
        st = inferd_error_set(err, INFERD_EINVAL, "rule %s: \"actions\" must be a non-empty "
                              "array: [{\"mqtt\": {...}}, {\"log\": {}}]", d.id);
    const inferd_value *actions = inferd_value_object_get(def, "actions");
    rrule *r = st == INFERD_OK ? rule_alloc(e, d.id, def) : NULL;
    if (st == INFERD_OK && !r)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK) {
        r->want_running = d.triggered;
        inferd_value_object_remove(r->def, "triggered", NULL);
        take_options(r, d.options);
    }
    inferd_props_free(p);
    if (st != INFERD_OK)
        return st;
    if (st == INFERD_OK)
        st = check_sql(r, false, err);
    for (size_t i = 0; st == INFERD_OK && i < inferd_value_array_len(actions); i++)
        st = raction_check(e, inferd_value_array_get(actions, i), i, err);
    if (st != INFERD_OK) {
        if (r->id && strncmp(err->message, "rule ", 5) != 0)
            inferd_error_prefix(err, "rule %s", r->id);
        rrule_free(r);
        return st;
    }
    *out = r;
    return INFERD_OK;
}

void rrule_free(rrule *r)
{
    if (!r)
        return;
    rules_retire_rule(r);
    free(r->id);
    free(r->stream_name);
    inferd_value_free(r->def);
    rstats_destroy(&r->source_stats);
    rstats_destroy(&r->op_stats);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->wake_lock);
    pthread_mutex_destroy(&r->msg_lock);
    free(r);
}

/* ---- running ---------------------------------------------------------------------- */

typedef struct rrun rrun;
struct rrun {
    sql_query *q;
    sql_run *run;
    rfuncs funcs;
    bool subscribed;
    /* event time: windows close when the watermark (the latest event time
     * seen, less lateTolerance) passes their end; older messages are late */
    int64_t watermark;
    bool seen_event;
    rrun **workers;        /* owned: concurrency > 1, workers[0] is this run */
    size_t n_workers;
};

/* Sleeps ms unless the rule is stopped first. */
static void nap(rrule *r, int64_t ms)
{
    struct timespec until = inferd__abs_us(inferd__now_us() + (uint64_t)ms * 1000u);
    pthread_mutex_lock(&r->wake_lock);
    while (!atomic_load(&r->stop) &&
           pthread_cond_timedwait(&r->wake, &r->wake_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&r->wake_lock);
}

/* A rule never starts against a function whose portable plugin is not
 * running yet (after a restart they start together). */
static inferd_status wait_plugins(rrule *r, const sql_query *q, inferd_error *err)
{
    rules_engine *e = r->e;
    if (!e->portables)
        return INFERD_OK;
    uint64_t limit = (uint64_t)inferd_config_int(e->cfg, "portable.start_timeout_ms") * 1000u;
    uint64_t t0 = inferd__now_us();
    for (size_t i = 0; i < sql_query_function_count(q); i++) {
        const char *plugin = rfuncs_portable_plugin(e, sql_query_function_name(q, i));
        while (plugin && !atomic_load(&r->stop)) {
            char state[32], last[300];
            if (rfuncs_plugin_running(e, plugin, state, sizeof state, last, sizeof last))
                break;
            if (inferd__now_us() - t0 > limit)
                return inferd_error_set(err, INFERD_ETIMEOUT, "portable plugin %s (function %s) "
                                        "is still %s%s%s", plugin,
                                        sql_query_function_name(q, i), state,
                                        last[0] ? ": " : "", last);
            rrule_set_message(r, "waiting for portable plugin %s (%s)", plugin, state);
            nap(r, 100);
        }
    }
    return INFERD_OK;
}

static void stop_actions(rrule *r)
{
    pthread_mutex_lock(&r->msg_lock);
    raction *as = r->actions;
    size_t n = r->n_actions;
    r->actions = NULL, r->n_actions = 0;
    pthread_mutex_unlock(&r->msg_lock);
    for (size_t i = 0; i < n; i++) {
        raction_stop(&as[i]);
        rules_retire_action(&as[i]);
    }
    free(as);
}

static void teardown(rrule *r, rrun *run)
{
    pthread_mutex_lock(&r->msg_lock);
    inferd_queue *in = r->in;
    pthread_mutex_unlock(&r->msg_lock);
    if (in)
        inferd_queue_close(in); /* a source blocked on a full buffer lets go */
    if (run->subscribed)
        rstream_unsubscribe(r->stream, r);
    run->subscribed = false;
    pthread_mutex_lock(&r->msg_lock);
    r->in = NULL;
    pthread_mutex_unlock(&r->msg_lock);
    if (in) {
        /* What was still waiting in the buffer is dropped, and counted. */
        void *m;
        while (inferd_queue_pop(in, &m, 0) == INFERD_OK) {
            rmsg_unref(m);
            atomic_fetch_add(&r->source_stats.dropped, 1);
        }
        inferd_queue_free(in, NULL);
    }
    stop_actions(r);
    for (size_t i = 1; i < run->n_workers; i++) {
        rrun *w = run->workers[i];
        if (!w)
            continue;
        sql_run_free(w->run);
        rfuncs_free(&w->funcs);
        sql_query_free(w->q);
        free(w);
    }
    free(run->workers);
    sql_run_free(run->run);
    rfuncs_free(&run->funcs);
    sql_query_free(run->q);
    *run = (rrun){0};
}

static inferd_status setup(rrule *r, rrun *run, inferd_error *err)
{
    rules_engine *e = r->e;
    rstream *s = r->stream;
    inferd_status st = sql_parse_select(r->sql, &run->q, err);
    if (st != INFERD_OK)
        return inferd_error_prefix(err, "sql");
    /* Names first (no instances), to know which plugins to wait for. */
    run->funcs = (rfuncs){.e = e, .instances = false};
    if ((st = sql_query_bind(run->q, s->def, rfuncs_resolve, &run->funcs, err)) != INFERD_OK)
        return inferd_error_prefix(err, "sql");
    if ((st = wait_plugins(r, run->q, err)) != INFERD_OK || atomic_load(&r->stop))
        return st;
    rfuncs_free(&run->funcs);
    sql_query_free(run->q);
    run->q = NULL;
    run->funcs = (rfuncs){.e = e, .instances = true};
    if ((st = sql_parse_select(r->sql, &run->q, err)) != INFERD_OK)
        return st;
    sql_query_omit_nil(run->q, !r->send_nil);
    if ((st = sql_query_bind(run->q, s->def, rfuncs_resolve, &run->funcs, err)) != INFERD_OK ||
        (st = sql_run_new(run->q, &run->run, err)) != INFERD_OK)
        return st;
    if (r->concurrency > 1) {
        /* Each worker its own run and function instances. */
        if (!(run->workers = calloc(r->concurrency, sizeof *run->workers)))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        run->n_workers = r->concurrency;
        run->workers[0] = run;
        for (size_t i = 1; i < r->concurrency; i++) {
            rrun *w = calloc(1, sizeof *w);
            if (!(run->workers[i] = w))
                return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            w->funcs = (rfuncs){.e = e, .instances = true};
            if ((st = sql_parse_select(r->sql, &w->q, err)) != INFERD_OK)
                return st;
            sql_query_omit_nil(w->q, !r->send_nil);
            if ((st = sql_query_bind(w->q, s->def, rfuncs_resolve, &w->funcs, err)) != INFERD_OK ||
                (st = sql_run_new(w->q, &w->run, err)) != INFERD_OK)
                return st;
        }
    }

    const inferd_value *defs = inferd_value_object_get(r->def, "actions");
    size_t n = inferd_value_array_len(defs);
    raction *as = calloc(n, sizeof *as);
    if (!as)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    size_t made = 0;
    for (; made < n; made++)
        if ((st = raction_start(&as[made], r, made, inferd_value_array_get(defs, made), err)))
            break;
    pthread_mutex_lock(&r->msg_lock);
    r->actions = as, r->n_actions = made;
    pthread_mutex_unlock(&r->msg_lock);
    if (st != INFERD_OK)
        return st;

    inferd_queue *in = inferd_queue_new_bytes(r->buffer_length, rules_buffer_max_bytes(r->e));
    if (!in)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    pthread_mutex_lock(&r->msg_lock);
    r->in = in;
    pthread_mutex_unlock(&r->msg_lock);
    if ((st = rstream_subscribe(s, r, err)) != INFERD_OK)
        return inferd_error_prefix(err, "stream %s", s->name);
    run->subscribed = true;
    return INFERD_OK;
}

static void emit_rows(rrule *r, const inferd_value *rows)
{
    size_t n = inferd_value_array_len(rows);
    if (n == 0)
        return;
    atomic_fetch_add(&r->op_stats.out, n);
    pthread_mutex_lock(&r->msg_lock);
    for (size_t i = 0; i < r->n_actions; i++)
        raction_offer(&r->actions[i], rows);
    pthread_mutex_unlock(&r->msg_lock);
}

/* An error reaches the actions too when the rule says sendError. */
static void emit_error(rrule *r, const char *message)
{
    if (!r->send_error)
        return;
    inferd_value *rows = inferd_value_array(), *row = inferd_value_object();
    if (row && inferd_value_object_set(row, "error", inferd_value_string(message), NULL) ==
                   INFERD_OK &&
        inferd_value_array_push(rows, row, NULL) == INFERD_OK)
        emit_rows(r, rows);
    inferd_value_free(rows);
}

/* A message's event time: its stream's TIMESTAMP field, in milliseconds. */
static inferd_status event_time_of(rrule *r, const inferd_value *msg, int64_t *ts,
                                   inferd_error *err)
{
    const char *field = r->stream->timestamp;
    const inferd_value *v = inferd_value_object_get(msg, field);
    double d;
    if (inferd_value_get_int(v, ts, NULL) == INFERD_OK)
        return INFERD_OK;
    if (inferd_value_get_double(v, &d, NULL) == INFERD_OK && d >= -9.2e18 && d <= 9.2e18) {
        *ts = (int64_t)d;
        return INFERD_OK;
    }
    return inferd_error_set(err, INFERD_EINVAL, "event time: field %s must be milliseconds since "
                            "the epoch, got %s", field,
                            v ? inferd_value_type_name(inferd_value_type_of(v)) : "nothing");
}

static void tick(rrule *r, rrun *run, int64_t now);

static void process(rrule *r, rrun *run, rmsg *m)
{
    inferd_value *rows = inferd_value_array();
    inferd_error err = {0};
    atomic_fetch_add(&r->source_stats.out, 1);
    atomic_fetch_add(&r->op_stats.in, 1);
    atomic_store(&r->op_stats.last_invocation, rules_wall_ms());
    int64_t ts = m->wall_ms;
    if (r->event_time) {
        if (event_time_of(r, m->value, &ts, &err) != INFERD_OK) {
            rstats_exception(&r->op_stats, "%s", err.message);
            inferd_value_free(rows);
            return;
        }
        if (run->seen_event && ts < run->watermark) {
            /* Its window may have closed: late, dropped and counted. */
            atomic_fetch_add(&r->op_stats.dropped, 1);
            inferd_value_free(rows);
            return;
        }
    }
    inferd_status st = rows ? sql_run_push(run->run, m->value, ts, rows, &err)
                            : inferd_error_set(&err, INFERD_ENOMEM, "out of memory");
    if (st != INFERD_OK) {
        rstats_exception(&r->op_stats, "%s", err.message);
        emit_error(r, err.message);
    } else {
        emit_rows(r, rows);
    }
    inferd_value_free(rows);
    if (r->event_time && st == INFERD_OK) {
        int64_t mark = ts - r->late_ms;
        if (!run->seen_event || mark > run->watermark)
            run->watermark = mark;
        run->seen_event = true;
        tick(r, run, run->watermark); /* the windows the watermark passed close */
    }
    /* From arrival to the rows being handed to the actions, waiting included. */
    atomic_store(&r->op_stats.latency_us, inferd__now_us() - m->mono_us);
    atomic_store(&r->held, sql_run_held(run->run));
}

static void tick(rrule *r, rrun *run, int64_t now)
{
    inferd_value *rows = inferd_value_array();
    inferd_error err = {0};
    if (!rows)
        return;
    /* A failing window does not hold back the rows of those that closed well. */
    if (sql_run_tick(run->run, now, rows, &err) != INFERD_OK) {
        rstats_exception(&r->op_stats, "%s", err.message);
        emit_error(r, err.message);
    }
    emit_rows(r, rows);
    inferd_value_free(rows);
    atomic_store(&r->held, sql_run_held(run->run));
}

static void loop(rrule *r, rrun *run)
{
    while (!atomic_load(&r->stop)) {
        /* With event time only messages move the clock (process ticks). */
        int64_t deadline = r->event_time ? -1 : sql_run_next_deadline(run->run);
        int64_t now = rules_wall_ms();
        int timeout = 200; /* also how soon a stop is seen if nothing arrives */
        if (deadline >= 0)
            timeout = deadline <= now ? 0 : (int)(deadline - now < 200 ? deadline - now : 200);
        void *m = NULL;
        inferd_status st = inferd_queue_pop(r->in, &m, timeout);
        if (st == INFERD_OK) {
            process(r, run, m);
            rmsg_unref(m);
        } else if (st == INFERD_ESTATE) {
            break;
        }
        if (deadline >= 0 && rules_wall_ms() >= deadline)
            tick(r, run, rules_wall_ms());
    }
}

/* ---- concurrency: several messages through the query at once -------------------- */

/* With options.concurrency N > 1 (queries without a window only: a window
 * needs its messages in order, one at a time) N workers, each with its
 * own query run and function instances, take the rule's messages; the
 * rule's thread hands them out and sends the results in arrival order. */
typedef struct rjob {
    rmsg *m;               /* owned while the job lives */
    inferd_value *rows;    /* owned: the result, or NULL after an error */
    char error[INFERD_ERROR_MESSAGE_MAX];
    bool done;
} rjob;

typedef struct rpool {
    rrule *r;
    rrun *const *runs;     /* borrowed: one per worker */
    size_t n;
    pthread_t *threads;    /* owned */
    size_t started;
    pthread_mutex_t lock;
    pthread_cond_t work, finished;
    rjob *ring;            /* owned, cap jobs: [head, tail) in flight, next to hand out */
    size_t cap, head, next, tail;
    bool closing;
    bool emitting;         /* a worker is sending the finished jobs at the head */
} rpool;

typedef struct rworker {
    rpool *p;
    rrun *run;
} rworker;

/* Sends the finished jobs at the head, in order. Whoever finishes a job
 * calls it; one at a time sends (the others leave it to that one), so the
 * order holds and a result never waits for the next message. */
static void pool_emit(rpool *p)
{
    rrule *r = p->r;
    pthread_mutex_lock(&p->lock);
    if (p->emitting) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->emitting = true;
    while (p->head < p->tail && p->ring[p->head % p->cap].done) {
        rjob job = p->ring[p->head % p->cap];
        p->ring[p->head % p->cap] = (rjob){0};
        p->head++;
        pthread_cond_signal(&p->finished);
        pthread_mutex_unlock(&p->lock);
        if (!job.rows) {
            rstats_exception(&r->op_stats, "%s", job.error);
            emit_error(r, job.error);
        } else {
            emit_rows(r, job.rows);
        }
        atomic_store(&r->op_stats.latency_us, inferd__now_us() - job.m->mono_us);
        inferd_value_free(job.rows);
        rmsg_unref(job.m);
        pthread_mutex_lock(&p->lock);
    }
    p->emitting = false;
    pthread_mutex_unlock(&p->lock);
}

static void *worker_thread(void *arg)
{
    rworker *w = arg;
    rpool *p = w->p;
    rrule *r = p->r;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->closing && p->next == p->tail)
            pthread_cond_wait(&p->work, &p->lock);
        if (p->closing) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        rjob *job = &p->ring[p->next++ % p->cap];
        pthread_mutex_unlock(&p->lock);
        inferd_error err = {0};
        inferd_value *rows = inferd_value_array();
        atomic_fetch_add(&r->op_stats.in, 1);
        atomic_store(&r->op_stats.last_invocation, rules_wall_ms());
        inferd_status st = rows ? sql_run_push(w->run->run, job->m->value, job->m->wall_ms, rows,
                                               &err)
                                : inferd_error_set(&err, INFERD_ENOMEM, "out of memory");
        pthread_mutex_lock(&p->lock);
        if (st != INFERD_OK) {
            inferd_value_free(rows);
            rows = NULL;
            snprintf(job->error, sizeof job->error, "%s", err.message);
        }
        job->rows = rows;
        job->done = true;
        pthread_mutex_unlock(&p->lock);
        pool_emit(p);
    }
    free(w);
    return NULL;
}

static void pool_loop(rrule *r, rrun *const *runs, size_t n)
{
    rpool p = {.r = r, .runs = runs, .n = n, .cap = 2 * n};
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.work, NULL);
    inferd__cond_init(&p.finished);
    p.ring = calloc(p.cap, sizeof *p.ring);
    p.threads = calloc(n, sizeof *p.threads);
    for (size_t i = 0; p.ring && p.threads && i < n; i++) {
        rworker *w = malloc(sizeof *w);
        if (!w)
            break;
        *w = (rworker){&p, runs[i]};
        if (pthread_create(&p.threads[i], NULL, worker_thread, w) != 0) {
            free(w);
            break;
        }
        p.started++;
    }
    if (p.started == 0) {
        rrule_set_message(r, "cannot start its worker threads");
        atomic_store(&r->stop, true);
    }
    while (!atomic_load(&r->stop)) {
        pthread_mutex_lock(&p.lock);
        bool room = p.tail - p.head < p.cap;
        if (!room) {
            struct timespec until = inferd__abs_us(inferd__now_us() + 200000u);
            pthread_cond_timedwait(&p.finished, &p.lock, &until);
        }
        pthread_mutex_unlock(&p.lock);
        if (!room)
            continue;
        void *m = NULL;
        inferd_status st = inferd_queue_pop(r->in, &m, 20);
        if (st == INFERD_ESTATE)
            break;
        atomic_fetch_add(&r->source_stats.out, st == INFERD_OK);
        if (st != INFERD_OK)
            continue;
        pthread_mutex_lock(&p.lock);
        p.ring[p.tail++ % p.cap] = (rjob){.m = m};
        pthread_cond_signal(&p.work);
        pthread_mutex_unlock(&p.lock);
    }
    /* Stopping: the workers finish the message each holds; what was handed
     * out but not sent is dropped and counted, like the buffer's rest. */
    pthread_mutex_lock(&p.lock);
    p.closing = true;
    pthread_cond_broadcast(&p.work);
    pthread_mutex_unlock(&p.lock);
    for (size_t i = 0; i < p.started; i++)
        pthread_join(p.threads[i], NULL);
    pool_emit(&p);
    for (size_t i = p.head; i < p.tail; i++) {
        rjob *job = &p.ring[i % p.cap];
        inferd_value_free(job->rows);
        rmsg_unref(job->m);
        atomic_fetch_add(&r->source_stats.dropped, 1);
    }
    free(p.ring);
    free(p.threads);
    pthread_cond_destroy(&p.finished);
    pthread_cond_destroy(&p.work);
    pthread_mutex_destroy(&p.lock);
}

static void *rule_thread(void *arg)
{
    rrule *r = arg;
    int attempt = 0;
    double delay = (double)r->restart.delay_ms;
    while (!atomic_load(&r->stop)) {
        rrun run = {0};
        inferd_error err = {0};
        inferd_status st = setup(r, &run, &err);
        if (st == INFERD_OK && !atomic_load(&r->stop)) {
            rrule_set_message(r, "%s", "");
            set_state(r, RRULE_RUNNING);
            inferd_log_info(LOG, "rule %s: running, reading stream %s", r->id, r->stream->name);
            if (run.n_workers > 1)
                pool_loop(r, run.workers, run.n_workers);
            else
                loop(r, &run);
            teardown(r, &run);
            break;
        }
        teardown(r, &run);
        if (atomic_load(&r->stop))
            break;
        if (attempt >= r->restart.attempts) {
            rrule_set_message(r, "%s", err.message);
            inferd_log_error(LOG, "rule %s: failed to start: %s", r->id, err.message);
            set_state(r, RRULE_FAILED);
            return NULL;
        }
        attempt++;
        double jitter = r->restart.jitter * delay * ((double)rand() / RAND_MAX * 2.0 - 1.0);
        int64_t wait = (int64_t)(delay + jitter);
        rrule_set_message(r, "%s; trying again in %lld ms (attempt %d of %d)", err.message,
                          (long long)wait, attempt, r->restart.attempts);
        inferd_log_warn(LOG, "rule %s: failed to start: %s; trying again in %lld ms", r->id,
                        err.message, (long long)wait);
        nap(r, wait);
        delay = fmin(delay * r->restart.multiplier, (double)r->restart.max_delay_ms);
    }
    set_state(r, RRULE_STOPPED);
    return NULL;
}

/* Under e->lock. */
inferd_status rrule_start(rrule *r, inferd_error *err)
{
    int state = atomic_load(&r->state);
    if (r->has_thread && (state == RRULE_STARTING || state == RRULE_RUNNING))
        return INFERD_OK;
    if (r->has_thread) {
        pthread_join(r->thread, NULL); /* it ended: failed */
        r->has_thread = false;
    }
    rstream *s = rules_find_stream(r->e, r->stream_name);
    if (!s) {
        rrule_set_message(r, "stream \"%s\" does not exist", r->stream_name);
        set_state(r, RRULE_FAILED);
        return inferd_error_set(err, INFERD_ESTATE, "rule %s: stream \"%s\" does not exist",
                                r->id, r->stream_name);
    }
    r->stream = s;
    rules_retire_rule(r);
    rstats_reset(&r->source_stats);
    rstats_reset(&r->op_stats);
    atomic_store(&r->stop, false);
    rrule_set_message(r, "%s", "starting");
    set_state(r, RRULE_STARTING);
    r->last_start_ms = rules_wall_ms();
    atomic_fetch_add(&r->starts, 1);
    if (pthread_create(&r->thread, NULL, rule_thread, r) != 0) {
        rrule_set_message(r, "cannot start a thread");
        set_state(r, RRULE_FAILED);
        return inferd_error_set(err, INFERD_EIO, "rule %s: cannot start a thread", r->id);
    }
    r->has_thread = true;
    return INFERD_OK;
}

/* Under e->lock. Waits for the thread (a function call in progress, and
 * what the actions hold is flushed, for at most a second each), with held
 * (e->lock, or NULL) released meanwhile. */
void rrule_stop(rrule *r, pthread_mutex_t *held)
{
    if (!r->has_thread) {
        set_state(r, RRULE_STOPPED);
        return;
    }
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->wake_lock);
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->wake_lock);
    pthread_mutex_lock(&r->msg_lock);
    if (r->in)
        inferd_queue_close(r->in);
    pthread_mutex_unlock(&r->msg_lock);
    if (held)
        pthread_mutex_unlock(held);
    pthread_join(r->thread, NULL);
    if (held)
        pthread_mutex_lock(held);
    r->has_thread = false;
    rrule_set_message(r, "%s", "");
    set_state(r, RRULE_STOPPED);
    r->last_stop_ms = rules_wall_ms();
    r->stream = NULL;
}

const char *rrule_state_name(rrule *r) { return state_names[atomic_load(&r->state)]; }

/* Under e->lock. */
inferd_value *rrule_status(rrule *r)
{
    inferd_value *o = inferd_value_object();
    inferd__put(o, "status", inferd_value_string(rrule_state_name(r)), NULL);
    pthread_mutex_lock(&r->msg_lock);
    if (r->message[0])
        inferd__put(o, "message", inferd_value_string(r->message), NULL);
    pthread_mutex_unlock(&r->msg_lock);
    inferd__put(o, "lastStartTimestamp", inferd_value_int(r->last_start_ms), NULL);
    inferd__put(o, "lastStopTimestamp", inferd_value_int(r->last_stop_ms), NULL);
    inferd__put(o, "starts", inferd_value_int((int64_t)atomic_load(&r->starts)), NULL);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "source_%s_0", r->stream_name);
    rstats_describe(&r->source_stats, prefix, o);
    char key[340];
    pthread_mutex_lock(&r->msg_lock);
    size_t buffered = r->in ? inferd_queue_length(r->in) : 0;
    pthread_mutex_unlock(&r->msg_lock);
    snprintf(key, sizeof key, "%s_buffer_length", prefix);
    inferd__put(o, key, inferd_value_int((int64_t)buffered), NULL);
    mqtt_stats ms;
    if (r->stream && atomic_load(&r->state) == RRULE_RUNNING &&
        rstream_connection(r->stream, &ms)) {
        rules_describe_connection(prefix, &ms, o);
        /* 1 once the broker granted the stream's subscription: from then
         * on what is published to the topic reaches the rule. */
        snprintf(key, sizeof key, "%s_subscribed", prefix);
        inferd__put(o, key, inferd_value_int(ms.subscribed > 0), NULL);
    }
    rstats_describe(&r->op_stats, "op_1_select_0", o);
    inferd__put(o, "op_1_select_0_held_in_windows",
                inferd_value_int((int64_t)atomic_load(&r->held)), NULL);
    pthread_mutex_lock(&r->msg_lock);
    for (size_t i = 0; i < r->n_actions; i++)
        raction_describe(&r->actions[i], o);
    pthread_mutex_unlock(&r->msg_lock);
    return o;
}
