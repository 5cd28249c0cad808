/* rules/internal.h: what the files of the rules engine share. Not installed.
 *
 * Locking: e->lock guards the lists of streams and rules, every definition
 * and every rule's state transitions (start, stop). A stream's own lock
 * guards its subscribers and its source; a source thread delivering a
 * message takes only that. Order: e->lock, then a stream's lock, then a
 * rule's stats lock. Never call out to a plugin holding a stream's lock.
 */
#ifndef INFERD_RULES_INTERNAL_H
#define INFERD_RULES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/queue.h"
#include "mqtt/mqtt.h"
#include "rules/rules.h"
#include "sql/sql.h"
#include "state/store.h"

typedef struct rstream rstream;
typedef struct rrule rrule;
typedef struct raction raction;

/* Wall-clock milliseconds since the epoch: what windows align to and what
 * status timestamps show. */
int64_t rules_wall_ms(void);

/* ---- counters of one stage (source, the query, an action) ---------------- */

typedef struct rstats {
    _Atomic uint64_t in, out, exceptions, dropped;
    _Atomic uint64_t latency_us;     /* the last record's processing time */
    _Atomic int64_t last_invocation; /* wall ms */
    pthread_mutex_t lock;            /* guards last_exception */
    char last_exception[256];
    int64_t last_exception_ms;
} rstats;

void rstats_init(rstats *s);
void rstats_destroy(rstats *s);
void rstats_reset(rstats *s);
void rstats_exception(rstats *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds prefix_records_in_total, ... to obj. */
void rstats_describe(rstats *s, const char *prefix, inferd_value *obj);

/* ---- a message shared by the rules that read a stream ------------------- */

typedef struct rmsg {
    _Atomic int refs;
    inferd_value *value;  /* owned: an object (JSON) or bytes (BINARY) */
    int64_t wall_ms;      /* when it arrived */
    uint64_t mono_us;
    size_t bytes;         /* what it holds (a queue's byte bound counts it) */
} rmsg;

rmsg *rmsg_new(inferd_value *value); /* takes value; NULL on ENOMEM (value freed) */
void rmsg_unref(rmsg *m);

/* ---- streams ---------------------------------------------------------------- */

typedef enum { RFMT_JSON, RFMT_BINARY } rformat;

struct rstream {
    rstream *next;
    rules_engine *e;
    char *name, *sql;          /* owned */
    sql_stream_def *def;       /* owned */
    rformat format;
    char *type;                /* "mqtt", "httppush", "file", or a source component */
    char *datasource;          /* topic, push path, file path, or the component's setting */
    int qos;
    char *conf_key;            /* NULL or the mqtt.profiles / plugin_settings key */
    char *shared;              /* NULL or the shared subscription group */
    char *timestamp;           /* NULL or the field with a message's event time (ms) */
    bool lenient;              /* STRICT_VALIDATION false: unconvertible values pass as they are */

    pthread_mutex_t source_lock; /* serialises starting and stopping the source */
    pthread_mutex_t lock;      /* subs, the mqtt pointer */
    rrule **subs;              /* borrowed: running rules reading it */
    size_t n_subs, cap_subs;
    mqtt_client *mqtt;         /* owned while running (type mqtt) */
    struct inferd_instance *src; /* owned while running (a source component) */
    pthread_t file_thread;     /* while running (type file) */
    bool file_thread_on;
    atomic_bool stopping;

    rstats stats;              /* records in (decoded), exceptions (malformed messages) */
    char *broken;              /* NULL, or why it cannot run (see rstream_new) */
};

/* Parses and checks a CREATE STREAM; *out is not in any list yet. With
 * keep_broken (a recorded stream at start-up) a statement that parses but no
 * longer checks (its source plugin is gone, say) gives a stream whose
 * source refuses to start, with the reason in `broken`, so that it can be
 * seen, replaced and deleted. */
inferd_status rstream_new(rules_engine *e, const char *sql, bool keep_broken, rstream **out,
                          inferd_error *err);
void rstream_free(rstream *s);
inferd_value *rstream_describe(rstream *s);
/* Adds r to the readers, starting the source for the first. */
inferd_status rstream_subscribe(rstream *s, rrule *r, inferd_error *err);
/* Removes r; the last one stops the source. */
void rstream_unsubscribe(rstream *s, rrule *r);
/* The stream's MQTT connection, when it has one running. */
bool rstream_connection(rstream *s, mqtt_stats *out);
/* Decodes one raw payload by the stream's FORMAT and delivers it. */
inferd_status rstream_deliver_raw(rstream *s, const void *payload, size_t len, bool wait,
                                  inferd_error *err);

/* ---- rules ------------------------------------------------------------------ */

typedef enum { RRULE_STOPPED, RRULE_STARTING, RRULE_RUNNING, RRULE_FAILED } rrule_state;

typedef struct rrestart {
    int attempts;          /* 0: a rule that fails to start is not tried again */
    int64_t delay_ms, max_delay_ms;
    double multiplier, jitter;
} rrestart;

typedef struct rfunc rfunc;   /* functions.c: one resolved function of a running rule */

struct rrule {
    rrule *next;
    rules_engine *e;
    char *id;                  /* owned */
    inferd_value *def;         /* owned: the definition, options with defaults */
    char *sql;                 /* borrowed from def */
    char *stream_name;         /* owned: FROM */
    size_t buffer_length;
    size_t concurrency;        /* messages through the query at once (no window) */
    bool event_time;           /* windows on the stream's TIMESTAMP field */
    int64_t late_ms;           /* how far behind the latest event time a message may be */
    int qos;
    bool send_error;
    bool send_nil;             /* sendNilField: keep NULL columns in results */
    rrestart restart;
    bool want_running;         /* recorded in the store */
    bool broken;               /* recorded, but no longer makes a rule (rrule_broken): not
                                  started again at start-up */
    bool busy;                 /* under e->lock: a call works on it (it may have let go of
                                  e->lock to wait for the rule's thread); others wait */

    /* runtime; under e->lock except what the thread owns */
    _Atomic int state;         /* rrule_state */
    pthread_mutex_t msg_lock;  /* guards message, actions and in against status readers */
    char message[512];         /* why it failed, or what it waits for */
    pthread_t thread;
    bool has_thread;
    atomic_bool stop;
    pthread_mutex_t wake_lock; /* for the back-off sleep */
    pthread_cond_t wake;
    inferd_queue *in;          /* rmsg*; owned while the thread runs */
    rstream *stream;           /* borrowed while subscribed */
    raction *actions;          /* owned while running */
    size_t n_actions;
    int64_t last_start_ms, last_stop_ms;
    _Atomic uint64_t starts;
    _Atomic size_t held;       /* messages held in open windows */

    rstats source_stats, op_stats;
};

/* Checks a definition whole (see rules_rule_create), its functions' own
 * validate included; *out is stopped. Never under e->lock (it takes it
 * briefly): a plugin's validate may take a portable call's timeout. */
inferd_status rrule_new(rules_engine *e, const inferd_value *def, rrule **out, inferd_error *err);
/* The declarations (rules_declaration). */
const inferd_prop_spec *rrule_specs(void);
const inferd_prop_spec *rstream_specs(void);
const inferd_prop_spec *raction_specs(const char *kind);
/* Under e->lock: binds r's SQL again, names only, against its stream as it
 * is now (replaced or deleted since rrule_new). */
inferd_status rrule_recheck(rrule *r, inferd_error *err);
void rrule_free(rrule *r); /* a stopped rule */
/* A recorded rule that no longer checks: failed with message, not started
 * (NULL on ENOMEM). */
rrule *rrule_broken(rules_engine *e, const char *id, const inferd_value *def, const char *message);
/* Under e->lock: start (a no-op while starting or running), stop (waits
 * for the thread, with held, e->lock or NULL, released meanwhile: the rule
 * must be claimed, see busy). */
inferd_status rrule_start(rrule *r, inferd_error *err);
void rrule_stop(rrule *r, pthread_mutex_t *held);
const char *rrule_state_name(rrule *r);
inferd_value *rrule_status(rrule *r);
void rrule_set_message(rrule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Delivery from a stream: takes a reference; full buffer: dropped, counted. */
bool rrule_offer(rrule *r, rmsg *m, bool wait);
/* Records a malformed message of its stream. */
void rrule_source_exception(rrule *r, const char *msg);

/* ---- functions (functions.c) ------------------------------------------------- */

/* Resolves names for sql_query_bind: function components (C and portable)
 * and estimators. With instances false only names and arity are checked
 * (validation); with true each function gets its own instance (running). */
typedef struct rfuncs {
    rules_engine *e;
    bool instances;
    rfunc *list;               /* owned */
} rfuncs;
inferd_status rfuncs_resolve(void *ctx, const char *name, sql_function *out, inferd_error *err);
/* The same without the plugins' validate (nothing is called in them). */
inferd_status rfuncs_resolve_names(void *ctx, const char *name, sql_function *out,
                                   inferd_error *err);
void rfuncs_free(rfuncs *f);
/* Whether portable plugin's process runs (answers calls); state (optional)
 * gets its status ("removed" when it is gone), last (optional) its last
 * error. */
bool rfuncs_plugin_running(rules_engine *e, const char *plugin, char *state, size_t size,
                           char *last, size_t last_size);
/* The portable plugin a function comes from, or NULL (C, estimator, unknown). */
const char *rfuncs_portable_plugin(rules_engine *e, const char *name);

/* ---- actions (actions.c) ------------------------------------------------------ */

/* ---- an action's disk cache (cache.c) ------------------------------------------ */

typedef struct rcache rcache;
/* Opens (creating) <dir>/<rule>.<index>.jsonl, with what an earlier run
 * left unsent; at most max lines pending. */
inferd_status rcache_open(const char *dir, const char *rule, size_t index, size_t max,
                          rcache **out, inferd_error *err);
void rcache_free(rcache *c);
size_t rcache_pending(const rcache *c);
/* EBUSY when max lines are pending already. */
inferd_status rcache_append(rcache *c, const char *json, size_t len, inferd_error *err);
/* The oldest unsent line (borrowed until the next call); ENOTFOUND when none. */
inferd_status rcache_peek(rcache *c, const char **json, size_t *len, inferd_error *err);
/* The line rcache_peek returned is sent (or given up): the next one. */
void rcache_pop(rcache *c);
/* Deletes the files of a rule's first n_actions actions. */
void rcache_remove(const char *dir, const char *rule, size_t n_actions);

struct raction {
    rrule *rule;               /* borrowed */
    size_t index;
    char *type;                /* "mqtt", "http", "log", "file", or a sink component */
    inferd_value *conf;        /* borrowed from the rule's definition */
    bool send_single;
    inferd_queue *q;           /* inferd_value* (a row or an array of rows) */
    pthread_t thread;
    bool has_thread;
    _Atomic uint64_t drain_deadline_us; /* set by stop: what is left after it is dropped */
    rstats stats;
    void *impl;                /* the type's state */
    const struct raction_kind *kind;
    rcache *cache;             /* owned; NULL unless enableCache */
    struct inferd_props *props; /* owned: its settings, checked (the kind borrows strings) */
    int64_t resend_interval_ms;
};

/* Checks one action of a definition ({"mqtt": {...}}); "actions[i]: ..." errors. */
inferd_status raction_check(rules_engine *e, const inferd_value *action, size_t i,
                            inferd_error *err);
/* Creates and starts a's thread from its definition. */
inferd_status raction_start(raction *a, rrule *r, size_t i, const inferd_value *action,
                            inferd_error *err);
/* Takes rows (an array of row objects): sent as one message, or one each. */
void raction_offer(raction *a, const inferd_value *rows);
/* Sends what is queued (bounded wait), stops, frees what start made. */
void raction_stop(raction *a);
void raction_describe(raction *a, inferd_value *obj);
/* prefix_connection_status, _connection_last_error, ... of an MQTT connection. */
void rules_describe_connection(const char *prefix, const mqtt_stats *ms, inferd_value *obj);


/* ---- the engine ---------------------------------------------------------------- */

struct rules_engine {
    const inferd_config *cfg;  /* borrowed */
    inferd_registry *reg;      /* borrowed */
    inferd_estimators *est;    /* borrowed, may be NULL */
    struct inferd_portables *portables; /* borrowed, may be NULL */
    state_store *store;        /* owned; NULL: nothing persists */
    pthread_mutex_t lock;
    pthread_cond_t changed;    /* a rule stopped being busy */
    rstream *streams;          /* owned, name order */
    rrule *rules;              /* owned, id order */
    char **file_dirs;          /* owned: rules.file_dirs, resolved (files.c) */
    char *cache_dir;           /* owned: <state dir>/cache (actions' enableCache); NULL: none */
    size_t n_file_dirs;
    pthread_t restorer;        /* starts the recorded running rules */
    bool has_restorer;
    atomic_bool closing;
    _Atomic uint64_t client_seq; /* MQTT client ids */
    /* What rules and actions counted before their counters were reset (a
     * restart) or freed (a delete): /metrics' totals only go up. */
    _Atomic uint64_t retired_in, retired_out, retired_exceptions, retired_dropped;
};

/* Adds the counts of a rule's own stages to the engine's retired totals
 * (before they are reset or freed); rules_retire_action for an action's. */
void rules_retire_rule(rrule *r);
void rules_retire_action(raction *a);

rstream *rules_find_stream(rules_engine *e, const char *name);
/* rules.buffer_max_bytes: each rule queue's byte bound (0: none). */
size_t rules_buffer_max_bytes(const rules_engine *e);
/* The client id of one connection: "<profile clientId>-<who>", or
 * "inferd-<pid>-<who>-<n>" (who: "stream-tfdemo", "rule-r1-0"). */
void rules_mqtt_client_id(rules_engine *e, const mqtt_options *opts, const char *who, char *buf,
                          size_t size);

/* files.c: the folders file streams and file actions are confined to. */
inferd_status rules_files_open(rules_engine *e, const char *state_dir, inferd_error *err);
void rules_files_free(rules_engine *e);
/* INFERD_OK when path may be read or written; else EINVAL naming `what`,
 * the path and the folders. */
inferd_status rules_file_allowed(const rules_engine *e, const char *what, const char *path,
                                 inferd_error *err);

#endif
