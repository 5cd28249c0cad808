/* engine.c: the streams and rules of a daemon: their lists, their records
 * in the state database, and the calls the REST API makes (rules.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferd/log.h"
#include "core/build_value.h"
#include "rules/internal.h"
#include "core/secrets.h"

#define LOG "rules"

/* ---- lookups (under e->lock) ------------------------------------------------------- */

size_t rules_buffer_max_bytes(const rules_engine *e)
{
    return (size_t)inferd_config_int(e->cfg, "rules.buffer_max_bytes");
}

rstream *rules_find_stream(rules_engine *e, const char *name)
{
    for (rstream *s = e->streams; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static rrule *find_rule(rules_engine *e, const char *id)
{
    for (rrule *r = e->rules; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

/* Stopping a rule waits for its thread, which may be in a slow function
 * call: that wait lets go of e->lock, so that the rest of the API goes on.
 * The rule is marked busy meanwhile, and calls on it wait their turn. */

/* Under e->lock: rule id, marked busy, once no other call works on it; NULL
 * when there is none (any more). */
static rrule *claim_rule(rules_engine *e, const char *id)
{
    for (;;) {
        rrule *r = find_rule(e, id);
        if (!r || !r->busy) {
            if (r)
                r->busy = true;
            return r;
        }
        pthread_cond_wait(&e->changed, &e->lock);
    }
}

static void release_rule(rules_engine *e, rrule *r)
{
    if (r)
        r->busy = false;
    pthread_cond_broadcast(&e->changed);
}

/* Under e->lock: until no call works on a rule (of stream, or any). What
 * follows then keeps e->lock throughout. */
static void wait_idle(rules_engine *e, const char *stream)
{
    for (;;) {
        bool busy = false;
        for (rrule *r = e->rules; r && !busy; r = r->next)
            busy = r->busy && (!stream || strcmp(r->stream_name, stream) == 0);
        if (!busy)
            return;
        pthread_cond_wait(&e->changed, &e->lock);
    }
}

/* Inserts in name order (GET /streams and the status pages list in order). */
static void insert_stream(rules_engine *e, rstream *s)
{
    rstream **p = &e->streams;
    while (*p && strcmp((*p)->name, s->name) < 0)
        p = &(*p)->next;
    s->next = *p;
    *p = s;
}

static void insert_rule(rules_engine *e, rrule *r)
{
    rrule **p = &e->rules;
    while (*p && strcmp((*p)->id, r->id) < 0)
        p = &(*p)->next;
    r->next = *p;
    *p = r;
}

static void unlink_rule(rules_engine *e, rrule *r)
{
    for (rrule **p = &e->rules; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void unlink_stream(rules_engine *e, rstream *s)
{
    for (rstream **p = &e->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            return;
        }
}

/* ---- MQTT profiles ------------------------------------------------------------------ */

void rules_mqtt_client_id(rules_engine *e, const mqtt_options *opts, const char *who, char *buf,
                          size_t size)
{
    /* A profile's clientId is a prefix: streams and actions that share a
     * profile each have their own connection, and a broker drops one of
     * two connections with the same id. */
    if (opts->client_id)
        snprintf(buf, size, "%s-%s", opts->client_id, who);
    else
        snprintf(buf, size, "inferd-%d-%s-%llu", (int)getpid(), who,
                 (unsigned long long)atomic_fetch_add(&e->client_seq, 1));
}

/* ---- open and close ----------------------------------------------------------------- */

static void restore_stream(void *ctx, const char *name, const char *sql)
{
    rules_engine *e = ctx;
    rstream *s = NULL;
    inferd_error err = {0};
    if (rstream_new(e, sql, true, &s, &err) != INFERD_OK) {
        inferd_log_error(LOG, "stream %s was recorded but cannot be read back: %s (it stays "
                         "in the database)", name, err.message);
        return;
    }
    if (s->broken)
        inferd_log_error(LOG, "stream %s no longer works: %s (GET /streams/%s shows it; "
                         "replace it with PUT or delete it)", name, s->broken, name);
    insert_stream(e, s);
}

static void restore_rule(void *ctx, const char *id, const char *definition, bool running)
{
    rules_engine *e = ctx;
    inferd_value *def = NULL;
    inferd_error err = {0};
    rrule *r = NULL;
    if (inferd_value_from_json(definition, strlen(definition), 0, &def, &err) != INFERD_OK) {
        inferd_log_error(LOG, "rule %s was recorded but cannot be read back: %s (it stays in "
                         "the database)", id, err.message);
        return;
    }
    if (rrule_new(e, def, &r, &err) == INFERD_OK) {
        r->want_running = running;
    } else {
        /* Kept, failed, with the reason: it can be seen, replaced, deleted. */
        inferd_log_error(LOG, "rule %s no longer works: %s (GET /rules/%s/status shows it; "
                         "replace it with PUT or delete it)", id, err.message, id);
        r = rrule_broken(e, id, def, err.message);
        if (r) /* what it should do, for readiness; it cannot start */
            r->want_running = running;
    }
    inferd_value_free(def);
    if (r)
        insert_rule(e, r);
}

inferd_status rules_engine_open(const inferd_config *cfg, inferd_registry *reg,
                                inferd_estimators *est, struct inferd_portables *portables,
                                const char *db_path, rules_engine **out, inferd_error *err)
{
    rules_engine *e = calloc(1, sizeof *e);
    if (!e)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    e->cfg = cfg, e->reg = reg, e->est = est, e->portables = portables;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->changed, NULL);
    inferd_status st = INFERD_OK;
    /* The state folder is the database's. */
    char state_dir[4096] = "";
    const char *slash = db_path ? strrchr(db_path, '/') : NULL;
    if (slash)
        snprintf(state_dir, sizeof state_dir, "%.*s", (int)(slash - db_path), db_path);
    st = rules_files_open(e, state_dir[0] ? state_dir : NULL, err);
    if (st == INFERD_OK && state_dir[0]) {
        /* Actions' disk caches (enableCache); private, like the database. */
        if (asprintf(&e->cache_dir, "%s/cache", state_dir) < 0)
            e->cache_dir = NULL, st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else if (mkdir(e->cache_dir, 0700) != 0 && errno != EEXIST)
            st = inferd_error_set(err, INFERD_EIO, "cannot create %s: %s", e->cache_dir,
                                  strerror(errno));
    }
    if (st == INFERD_OK && db_path && (st = state_store_open(db_path, &e->store, err)) == INFERD_OK &&
        (st = state_load_streams(e->store, restore_stream, e, err)) == INFERD_OK)
        st = state_load(e->store, STATE_RULES, restore_rule, e, err);
    if (st != INFERD_OK) {
        rules_engine_free(e);
        return st;
    }
    /* Rules that were running start again; each waits, on its own thread,
     * for the portable plugins it calls. */
    pthread_mutex_lock(&e->lock);
    size_t started = 0;
    for (rrule *r = e->rules; r; r = r->next) {
        inferd_error e2 = {0};
        if (r->want_running && !r->broken && rrule_start(r, &e2) == INFERD_OK)
            started++;
        else if (r->want_running && !r->broken)
            inferd_log_error(LOG, "%s", e2.message);
    }
    size_t ns = 0, nr = 0;
    for (rstream *s = e->streams; s; s = s->next)
        ns++;
    for (rrule *r = e->rules; r; r = r->next)
        nr++;
    pthread_mutex_unlock(&e->lock);
    if (ns || nr)
        inferd_log_info(LOG, "restored %zu stream%s and %zu rule%s (%zu starting)", ns,
                        ns == 1 ? "" : "s", nr, nr == 1 ? "" : "s", started);
    *out = e;
    return INFERD_OK;
}

void rules_engine_free(rules_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    wait_idle(e, NULL);
    for (rrule *r = e->rules, *next; r; r = next) {
        next = r->next;
        rrule_stop(r, NULL);
        rrule_free(r);
    }
    for (rstream *s = e->streams, *next; s; s = next) {
        next = s->next;
        rstream_free(s);
    }
    e->rules = NULL, e->streams = NULL;
    pthread_mutex_unlock(&e->lock);
    state_store_close(e->store);
    rules_files_free(e);
    free(e->cache_dir);
    pthread_cond_destroy(&e->changed);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* ---- streams -------------------------------------------------------------------------- */

inferd_status rules_stream_create(rules_engine *e, const char *sql, char **name_out,
                                  inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rstream *s = NULL;
    inferd_status st = rstream_new(e, sql, false, &s, err);
    if (st == INFERD_OK && rules_find_stream(e, s->name))
        st = inferd_error_set(err, INFERD_EEXIST, "stream %s already exists (PUT "
                              "/streams/%s replaces it)", s->name, s->name);
    if (st == INFERD_OK && e->store)
        st = state_put_stream(e->store, s->name, s->sql, err);
    if (st == INFERD_OK && name_out && !(*name_out = strdup(s->name)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st != INFERD_OK) {
        rstream_free(s);
    } else {
        insert_stream(e, s);
        inferd_log_info(LOG, "stream %s created (%s, %s, %s)", s->name, s->type,
                        s->format == RFMT_JSON ? "JSON" : "BINARY", s->datasource);
    }
    pthread_mutex_unlock(&e->lock);
    return st;
}

inferd_status rules_stream_update(rules_engine *e, const char *name, const char *sql,
                                  inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    /* First until no call works on a rule of it (a rule stopping lets go of
     * e->lock meanwhile, and a DELETE may take the stream then): only after
     * that is `old` looked up, and e->lock is kept from here on. */
    wait_idle(e, name);
    rstream *old = rules_find_stream(e, name), *s = NULL;
    inferd_status st = old ? rstream_new(e, sql, false, &s, err)
                           : inferd_error_set(err, INFERD_ENOTFOUND, "no stream %s", name);
    if (st == INFERD_OK && strcmp(s->name, name) != 0)
        st = inferd_error_set(err, INFERD_EINVAL, "the statement creates stream %s, not %s",
                              s->name, name);
    if (st == INFERD_OK && e->store)
        st = state_put_stream(e->store, s->name, s->sql, err);
    if (st != INFERD_OK) {
        rstream_free(s);
        pthread_mutex_unlock(&e->lock);
        return st;
    }
    /* The rules that read it stop, the stream is swapped, they start again,
     * all under e->lock. */
    size_t n = 0;
    for (rrule *r = e->rules; r; r = r->next)
        n += r->stream_name && strcmp(r->stream_name, name) == 0;
    rrule **restart = calloc(n ? n : 1, sizeof *restart);
    size_t k = 0;
    for (rrule *r = e->rules; r && restart; r = r->next)
        if (r->stream_name && strcmp(r->stream_name, name) == 0 && r->has_thread) {
            int state = atomic_load(&r->state);
            rrule_stop(r, NULL);
            if (state == RRULE_RUNNING || state == RRULE_STARTING)
                restart[k++] = r;
        }
    unlink_stream(e, old);
    rstream_free(old);
    insert_stream(e, s);
    for (size_t i = 0; i < k; i++) {
        inferd_error e2 = {0};
        if (rrule_start(restart[i], &e2) != INFERD_OK)
            inferd_log_error(LOG, "%s", e2.message);
    }
    free(restart);
    inferd_log_info(LOG, "stream %s replaced (%zu rule%s restarted)", name, k, k == 1 ? "" : "s");
    pthread_mutex_unlock(&e->lock);
    return INFERD_OK;
}

inferd_status rules_stream_delete(rules_engine *e, const char *name, inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    wait_idle(e, name); /* a rule being deleted lets go of it first */
    rstream *s = rules_find_stream(e, name);
    inferd_status st = s ? INFERD_OK
                         : inferd_error_set(err, INFERD_ENOTFOUND, "no stream %s", name);
    char users[512] = "";
    size_t pos = 0;
    for (rrule *r = e->rules; st == INFERD_OK && r; r = r->next)
        if (r->stream_name && strcmp(r->stream_name, name) == 0 && pos < sizeof users)
            pos += (size_t)snprintf(users + pos, sizeof users - pos, "%s%s", pos ? ", " : "",
                                    r->id);
    if (st == INFERD_OK && pos)
        st = inferd_error_set(err, INFERD_EBUSY, "stream %s is read by rule%s %s: delete them "
                              "first", name, strchr(users, ',') ? "s" : "", users);
    if (st == INFERD_OK && e->store)
        st = state_delete_stream(e->store, name, err);
    if (st == INFERD_OK) {
        unlink_stream(e, s);
        rstream_free(s);
        inferd_log_info(LOG, "stream %s deleted", name);
    }
    pthread_mutex_unlock(&e->lock);
    return st;
}

inferd_value *rules_stream_list(rules_engine *e)
{
    inferd_value *a = inferd_value_array();
    pthread_mutex_lock(&e->lock);
    for (rstream *s = e->streams; s && a; s = s->next)
        inferd__push(a, inferd_value_string(s->name), NULL);
    pthread_mutex_unlock(&e->lock);
    return a;
}

inferd_status rules_stream_describe(rules_engine *e, const char *name, inferd_value **out,
                                    inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rstream *s = rules_find_stream(e, name);
    if (s)
        *out = rstream_describe(s);
    pthread_mutex_unlock(&e->lock);
    return s ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no stream %s", name);
}

inferd_status rules_stream_push(rules_engine *e, const char *path, const void *body, size_t len,
                                inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rstream *s = e->streams;
    while (s && !(strcmp(s->type, "httppush") == 0 && strcmp(s->datasource, path) == 0))
        s = s->next;
    inferd_status st = INFERD_OK;
    if (!s) {
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no httppush stream has DATASOURCE "
                              "\"%s\"", path);
    } else {
        pthread_mutex_lock(&s->lock);
        size_t readers = s->n_subs;
        pthread_mutex_unlock(&s->lock);
        if (readers == 0)
            st = inferd_error_set(err, INFERD_ESTATE, "stream %s has no running rule: the "
                                  "message would be lost", s->name);
        else
            st = rstream_deliver_raw(s, body, len, false, err);
    }
    pthread_mutex_unlock(&e->lock);
    return st;
}

/* ---- rules ------------------------------------------------------------------------------ */

static inferd_status record_rule(rules_engine *e, rrule *r, inferd_error *err)
{
    if (!e->store)
        return INFERD_OK;
    char *json = NULL;
    inferd_status st = inferd_value_to_json(r->def, INFERD_JSON_COMPACT, &json, NULL, err);
    if (st == INFERD_OK)
        st = state_put(e->store, STATE_RULES, r->id, json, r->want_running, err);
    free(json);
    return st;
}

/* Each checks the definition first without e->lock (rrule_new: a plugin's
 * validate runs then), and again, names only, under it (rrule_recheck), so
 * a slow plugin holds no other call into the engine. */
inferd_status rules_rule_validate(rules_engine *e, const inferd_value *def, inferd_error *err)
{
    rrule *r = NULL;
    inferd_status st = rrule_new(e, def, &r, err);
    rrule_free(r);
    return st;
}

inferd_status rules_rule_create(rules_engine *e, const inferd_value *def, inferd_error *err)
{
    rrule *r = NULL;
    inferd_status st = rrule_new(e, def, &r, err);
    if (st != INFERD_OK)
        return st;
    pthread_mutex_lock(&e->lock);
    st = rrule_recheck(r, err);
    if (st == INFERD_OK && find_rule(e, r->id))
        st = inferd_error_set(err, INFERD_EEXIST, "rule %s already exists (PUT /rules/%s "
                              "replaces it)", r->id, r->id);
    if (st == INFERD_OK)
        st = record_rule(e, r, err);
    if (st != INFERD_OK) {
        rrule_free(r);
        pthread_mutex_unlock(&e->lock);
        return st;
    }
    insert_rule(e, r);
    inferd_log_info(LOG, "rule %s created on stream %s", r->id, r->stream_name);
    if (r->want_running)
        st = rrule_start(r, err);
    pthread_mutex_unlock(&e->lock);
    return st;
}

inferd_status rules_rule_update(rules_engine *e, const char *id, const inferd_value *def,
                                inferd_error *err)
{
    /* A rule that does not exist is that, whatever the definition. */
    pthread_mutex_lock(&e->lock);
    bool exists = find_rule(e, id) != NULL;
    pthread_mutex_unlock(&e->lock);
    if (!exists)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
    rrule *r = NULL;
    inferd_status st = rrule_new(e, def, &r, err);
    if (st == INFERD_OK && strcmp(r->id, id) != 0)
        st = inferd_error_set(err, INFERD_EINVAL, "the definition's id is %s, not %s", r->id, id);
    pthread_mutex_lock(&e->lock);
    rrule *old = NULL;
    if (st == INFERD_OK && !(old = claim_rule(e, id)))
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
    if (st == INFERD_OK)
        st = rrule_recheck(r, err);
    if (st == INFERD_OK) {
        /* Running stays running; "triggered" in the new definition decides
         * otherwise only when given. */
        if (!inferd_value_object_get(def, "triggered"))
            r->want_running = old->want_running;
        st = record_rule(e, r, err);
    }
    if (st != INFERD_OK) {
        rrule_free(r);
        if (old)
            release_rule(e, old);
        pthread_mutex_unlock(&e->lock);
        return st;
    }
    /* The old one stops (listed and busy meanwhile, so that its stream
     * stays while its thread lets go of it), then the new one takes its
     * place. */
    rrule_stop(old, &e->lock);
    unlink_rule(e, old);
    rrule_free(old);
    r->busy = true;
    insert_rule(e, r);
    inferd_log_info(LOG, "rule %s replaced", id);
    if (r->want_running)
        st = rrule_start(r, err);
    release_rule(e, r);
    pthread_mutex_unlock(&e->lock);
    return st;
}

inferd_status rules_rule_delete(rules_engine *e, const char *id, inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rrule *r = claim_rule(e, id);
    inferd_status st = r ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
    if (st == INFERD_OK && e->store)
        st = state_delete(e->store, STATE_RULES, id, err);
    if (st == INFERD_OK) {
        /* Listed and busy while it stops (its stream stays until its thread
         * lets go of it); calls waiting for it then find no rule. */
        rrule_stop(r, &e->lock);
        unlink_rule(e, r);
        /* What its actions still held for their destinations goes with it. */
        rcache_remove(e->cache_dir, r->id,
                      inferd_value_array_len(inferd_value_object_get(r->def, "actions")));
        rrule_free(r);
        inferd_log_info(LOG, "rule %s deleted", id);
        r = NULL;
    }
    release_rule(e, r);
    pthread_mutex_unlock(&e->lock);
    return st;
}

static inferd_status set_running(rules_engine *e, const char *id, bool stop, bool start,
                                 inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rrule *r = claim_rule(e, id);
    inferd_status st = r ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
    if (st == INFERD_OK && e->store)
        st = state_set_running(e->store, STATE_RULES, id, start, err);
    if (st == INFERD_OK) {
        r->want_running = start;
        if (stop)
            rrule_stop(r, &e->lock);
        if (start)
            st = rrule_start(r, err);
        inferd_log_info(LOG, "rule %s %s", id, start && stop ? "restarted"
                                              : start        ? "started"
                                                             : "stopped");
    }
    release_rule(e, r);
    pthread_mutex_unlock(&e->lock);
    return st;
}

inferd_status rules_rule_start(rules_engine *e, const char *id, inferd_error *err)
{
    return set_running(e, id, false, true, err);
}

inferd_status rules_rule_stop(rules_engine *e, const char *id, inferd_error *err)
{
    return set_running(e, id, true, false, err);
}

inferd_status rules_rule_restart(rules_engine *e, const char *id, inferd_error *err)
{
    return set_running(e, id, true, true, err);
}

inferd_value *rules_rule_list(rules_engine *e)
{
    inferd_value *a = inferd_value_array();
    pthread_mutex_lock(&e->lock);
    for (rrule *r = e->rules; r && a; r = r->next) {
        inferd_value *o = inferd_value_object();
        inferd__put(o, "id", inferd_value_string(r->id), NULL);
        inferd__put(o, "status", inferd_value_string(rrule_state_name(r)), NULL);
        inferd__push(a, o, NULL);
    }
    pthread_mutex_unlock(&e->lock);
    return a;
}

inferd_status rules_rule_describe(rules_engine *e, const char *id, inferd_value **out,
                                  inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rrule *r = find_rule(e, id);
    if (r && (*out = inferd_value_copy(r->def)))
        inferd__mask_secrets(*out); /* an action's password is never returned */
    pthread_mutex_unlock(&e->lock);
    return r ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
}

inferd_status rules_rule_status(rules_engine *e, const char *id, inferd_value **out,
                                inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rrule *r = find_rule(e, id);
    if (r)
        *out = rrule_status(r);
    pthread_mutex_unlock(&e->lock);
    return r ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
}

inferd_value *rules_rule_status_all(rules_engine *e)
{
    inferd_value *all = inferd_value_object();
    bool ok = all != NULL;
    pthread_mutex_lock(&e->lock);
    for (rrule *r = e->rules; r && ok; r = r->next)
        inferd__put(all, r->id, rrule_status(r), &ok);
    pthread_mutex_unlock(&e->lock);
    if (!ok) {
        inferd_value_free(all);
        return NULL;
    }
    return all;
}

inferd_status rules_rule_topo(rules_engine *e, const char *id, inferd_value **out,
                              inferd_error *err)
{
    pthread_mutex_lock(&e->lock);
    rrule *r = find_rule(e, id);
    if (!r) {
        pthread_mutex_unlock(&e->lock);
        return inferd_error_set(err, INFERD_ENOTFOUND, "no rule %s", id);
    }
    /* One select stage between the stream and the actions; the sinks by
     * their kind and place in "actions", as in the rule's status. */
    char source[300];
    snprintf(source, sizeof source, "source_%s", r->stream_name ? r->stream_name : "");
    bool ok = true;
    inferd_value *topo = inferd_value_object(), *sources = inferd_value_array(),
                 *edges = inferd_value_object(), *from_source = inferd_value_array(),
                 *sinks = inferd_value_array();
    inferd__push(sources, inferd_value_string(source), &ok);
    inferd__push(from_source, inferd_value_string("op_1_select"), &ok);
    const inferd_value *actions = inferd_value_object_get(r->def, "actions");
    for (size_t i = 0; i < inferd_value_array_len(actions); i++) {
        const char *kind;
        inferd_value *conf;
        if (!inferd_value_object_entry(inferd_value_array_get(actions, i), 0, &kind, &conf))
            continue;
        char sink[300];
        snprintf(sink, sizeof sink, "sink_%s_%zu", kind, i);
        inferd__push(sinks, inferd_value_string(sink), &ok);
    }
    pthread_mutex_unlock(&e->lock);
    inferd__put(edges, source, from_source, &ok);
    inferd__put(edges, "op_1_select", sinks, &ok);
    inferd__put(topo, "sources", sources, &ok);
    inferd__put(topo, "edges", edges, &ok);
    if (!ok) {
        inferd_value_free(topo);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    *out = topo;
    return INFERD_OK;
}

/* Whether component name (a function, source or sink) comes from plugin. */
static bool from_plugin(rules_engine *e, const char *name, const char *plugin)
{
    const inferd_plugin_info *p = NULL;
    return inferd_registry_find(e->reg, name, &p) && p && strcmp(p->name, plugin) == 0;
}

/* Whether rule r calls a function of plugin or sends to one of its sinks. */
static bool rule_uses(rules_engine *e, rrule *r, const char *plugin)
{
    const inferd_value *actions = inferd_value_object_get(r->def, "actions");
    for (size_t i = 0; i < inferd_value_array_len(actions); i++) {
        const char *kind;
        inferd_value *conf;
        if (inferd_value_object_entry(inferd_value_array_get(actions, i), 0, &kind, &conf) &&
            from_plugin(e, kind, plugin))
            return true;
    }
    sql_query *q = NULL;
    rstream *s = r->stream_name ? rules_find_stream(e, r->stream_name) : NULL;
    rfuncs fs = {.e = e, .instances = false};
    bool uses = false;
    /* Names only: validate callbacks would call into the plugins. */
    if (s && sql_parse_select(r->sql, &q, NULL) == INFERD_OK &&
        sql_query_bind(q, s->def, rfuncs_resolve_names, &fs, NULL) == INFERD_OK)
        for (size_t i = 0; i < sql_query_function_count(q) && !uses; i++)
            uses = from_plugin(e, sql_query_function_name(q, i), plugin);
    rfuncs_free(&fs);
    sql_query_free(q);
    return uses;
}

inferd_status rules_plugin_in_use(rules_engine *e, const char *plugin, inferd_error *err)
{
    char users[512] = "";
    size_t pos = 0;
    pthread_mutex_lock(&e->lock);
    for (rstream *s = e->streams; s && pos < sizeof users; s = s->next)
        if (from_plugin(e, s->type, plugin))
            pos += (size_t)snprintf(users + pos, sizeof users - pos, "%sstream %s",
                                    pos ? ", " : "", s->name);
    for (rrule *r = e->rules; r && pos < sizeof users; r = r->next)
        if (rule_uses(e, r, plugin))
            pos += (size_t)snprintf(users + pos, sizeof users - pos, "%srule %s",
                                    pos ? ", " : "", r->id);
    pthread_mutex_unlock(&e->lock);
    if (!pos)
        return INFERD_OK;
    return inferd_error_set(err, INFERD_EBUSY, "plugin %s is used by %s: delete or change them "
                            "first", plugin, users);
}

void rules_retire_rule(rrule *r)
{
    rules_engine *e = r->e;
    atomic_fetch_add(&e->retired_in, atomic_exchange(&r->source_stats.in, 0));
    atomic_fetch_add(&e->retired_out, atomic_exchange(&r->op_stats.out, 0));
    atomic_fetch_add(&e->retired_exceptions, atomic_exchange(&r->op_stats.exceptions, 0) +
                                                 atomic_exchange(&r->source_stats.exceptions, 0));
    atomic_fetch_add(&e->retired_dropped, atomic_exchange(&r->source_stats.dropped, 0));
}

void rules_retire_action(raction *a)
{
    rules_engine *e = a->rule->e;
    atomic_fetch_add(&e->retired_exceptions, atomic_exchange(&a->stats.exceptions, 0));
    atomic_fetch_add(&e->retired_dropped, atomic_exchange(&a->stats.dropped, 0));
}

/* A rule's counters: its source and query, and its actions' drops and
 * failed sends. Under e->lock. */
static rules_rule_counts rule_counts(rrule *r)
{
    rules_rule_counts c = {
        .id = r->id,
        .running = atomic_load(&r->state) == RRULE_RUNNING,
        .records_in = atomic_load(&r->source_stats.in),
        .records_out = atomic_load(&r->op_stats.out),
        .exceptions = atomic_load(&r->op_stats.exceptions) +
                      atomic_load(&r->source_stats.exceptions),
        .dropped = atomic_load(&r->source_stats.dropped),
    };
    pthread_mutex_lock(&r->msg_lock);
    for (size_t i = 0; i < r->n_actions; i++) {
        c.dropped += atomic_load(&r->actions[i].stats.dropped);
        c.exceptions += atomic_load(&r->actions[i].stats.exceptions);
    }
    pthread_mutex_unlock(&r->msg_lock);
    return c;
}

/* e->lock, waiting at most 50 ms. */
static bool lock_briefly(rules_engine *e)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 50 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&e->lock, &until) == 0;
}

bool rules_engine_each(rules_engine *e, void (*fn)(void *ctx, const rules_rule_counts *c),
                       void *ctx)
{
    if (!lock_briefly(e))
        return false;
    for (rrule *r = e->rules; r; r = r->next) {
        rules_rule_counts c = rule_counts(r);
        fn(ctx, &c);
    }
    pthread_mutex_unlock(&e->lock);
    return true;
}

inferd_status rules_engine_health(rules_engine *e, const char *id,
                                 void (*down)(void *ctx, const char *reason), void *ctx)
{
    /* A /ready probe never waits behind a long change of the rules: then
     * it cannot tell, and says nothing. */
    if (!lock_briefly(e))
        return INFERD_OK;
    bool found = false;
    for (rrule *r = e->rules; r; r = r->next) {
        if (id && strcmp(r->id, id) != 0)
            continue;
        found = true;
        if (!r->want_running || atomic_load(&r->state) == RRULE_RUNNING)
            continue;
        char reason[1200];
        pthread_mutex_lock(&r->msg_lock);
        snprintf(reason, sizeof reason, "rule %s is %s%s%.1000s", r->id, rrule_state_name(r),
                 r->message[0] ? ": " : "", r->message);
        pthread_mutex_unlock(&r->msg_lock);
        down(ctx, reason);
    }
    pthread_mutex_unlock(&e->lock);
    return found || !id ? INFERD_OK : INFERD_ENOTFOUND;
}

bool rules_engine_totals(rules_engine *e, rules_totals *out)
{
    memset(out, 0, sizeof *out);
    if (!lock_briefly(e))
        return false;
    out->records_in = atomic_load(&e->retired_in);
    out->records_out = atomic_load(&e->retired_out);
    out->exceptions = atomic_load(&e->retired_exceptions);
    out->dropped = atomic_load(&e->retired_dropped);
    for (rstream *s = e->streams; s; s = s->next)
        out->streams++;
    for (rrule *r = e->rules; r; r = r->next) {
        rules_rule_counts c = rule_counts(r);
        out->rules++;
        out->rules_running += c.running;
        out->records_in += c.records_in;
        out->records_out += c.records_out;
        out->exceptions += c.exceptions;
        out->dropped += c.dropped;
    }
    pthread_mutex_unlock(&e->lock);
    return true;
}

const inferd_prop_spec *rules_declaration(const char *surface)
{
    if (!surface)
        return NULL;
    if (strcmp(surface, "rule") == 0)
        return rrule_specs();
    if (strcmp(surface, "stream") == 0)
        return rstream_specs();
    return raction_specs(surface);
}
