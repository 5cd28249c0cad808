/* service/pipelines.c: pipelines as a service: named pipelines that the
 * daemon keeps, runs, and feeds from HTTP, with results to the requests
 * that wait for them and to every Server-Sent Events listener.
 *
 * An entry is a name, a pipeline document (kept in the state database with
 * whether it runs) and, while it runs, a run: the built pipeline, one
 * dispatcher thread per appsink, and the frames waiting for their results.
 * Frame ids are the pipeline's, plus the frames of the entry's earlier runs
 * (base), so they never repeat across a replace or a restart of the run.
 *
 * A frame pushed over HTTP is matched with its result (from the primary
 * sink: the pipeline's only appsink) by frame id. The push assigns the id,
 * so a result may come back before its push returned: the list of a run
 * keeps either the waiter or the early result, whichever comes first (as
 * the pipeline estimator does). An asynchronous frame's waiter has no
 * request: its result goes to the listeners only. A ticker answers waiters
 * past their deadline (504) and keeps listeners' connections alive.
 *
 * Replace (PUT) builds the new pipeline first (a bad document changes
 * nothing), then holds new pushes, lets the pushes in flight finish, drains
 * the old run (every frame it took gets its result), starts the new one and
 * lets the held pushes go to it: each frame is answered by the old or the
 * new pipeline, none is lost.
 *
 * Locking: m->lock guards the entries, their runs' waiter lists, their
 * listeners and their state; it is never held while pushing or waiting for
 * a pipeline. Ownership: m owns the entries; an entry owns its run and its
 * listeners' handles; a run owns its pipeline and its list.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "inferd/log.h"
#include "inferd/pipeline.h"
#include "service/health.h"
#include "service/service.h"
#include "state/store.h"

#define LOG "pipelines"
#define TICK_MS 100
#define HEARTBEAT_MS 15000
/* A listener may be this far behind before its events are dropped. */
#define LISTENER_MAX_BYTES (8u << 20)
/* An early result no waiter came for, or a timed-out waiter's marker, is
 * let go after this long. */
#define ORPHAN_MS 60000

typedef struct waiter {
    struct waiter *next;
    uint64_t frame;          /* the pipeline's frame id */
    svc_request *r;          /* waiting for the result; NULL: asynchronous or timed out */
    bool registered;         /* the push registered it (else: an early result) */
    inferd_buffer *result;   /* arrived before its waiter, or NULL */
    uint64_t deadline_ms, since_ms;
} waiter;

typedef struct entry entry;

typedef struct run {
    entry *e;
    inferd_pipeline *p;      /* owned */
    uint64_t base;           /* frames of the entry's earlier runs */
    const char *primary;     /* the only appsink's name (borrowed from p), or NULL */
    pthread_t *threads;      /* one dispatcher per appsink */
    size_t n_threads;
    atomic_bool stopping;
    waiter *waiters;         /* under m->lock */
} run;

struct entry {
    entry *next;
    char *name;              /* owned */
    char *definition;        /* owned: the pipeline document, JSON */
    run *run;                /* owned; NULL while stopped */
    bool failed;             /* the last start failed: error says why */
    char error[sizeof ((inferd_error *)0)->message];
    int pushing;             /* pushes in flight on run */
    bool swapping;           /* a replace, stop or delete holds new pushes */
    uint64_t frames_before;  /* frames of the runs before this one */
    svc_stream **listeners;  /* owned handles */
    size_t n_listeners;
    uint64_t listener_drops, frames_answered, frames_timed_out;
};

struct svc_pipelines {
    svc *s;                  /* borrowed */
    state_store *store;      /* owned; NULL: nothing persists */
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* pushing went down or swapping ended */
    entry *entries;          /* name order */
    pthread_t ticker;
    bool has_ticker;
    pthread_cond_t tick;     /* wakes the ticker before next_tick_ms */
    uint64_t next_tick_ms;   /* when the ticker wakes next */
    atomic_bool closing;
};

/* ---- results -------------------------------------------------------------------- */

/* A result as JSON fields: the buffer's value (an object's keys), or its
 * error, with the pipeline, sink and frame first. Caller frees. */
static inferd_value *result_value(const entry *e, const char *sink, uint64_t frame,
                                  const inferd_buffer *buf, bool *ok)
{
    inferd_value *o = inferd_value_object();
    inferd__put_str(o, "pipeline", e->name, ok);
    inferd__put_str(o, "sink", sink, ok);
    inferd__put(o, "frame", inferd_value_int((int64_t)frame), ok);
    const inferd_error *err = inferd_buffer_error(buf);
    if (err) {
        inferd_value *ev = inferd_value_object();
        inferd__put_str(ev, "code", inferd_status_name(err->code), ok);
        inferd__put_str(ev, "message", err->message, ok);
        inferd__put(o, "error", ev, ok);
        return o;
    }
    const inferd_value *v = inferd_buffer_value(buf);
    const char *key;
    inferd_value *item;
    if (inferd_value_is(v, INFERD_VALUE_OBJECT)) {
        for (size_t k = 0; inferd_value_object_entry(v, k, &key, &item); k++)
            if (strcmp(key, "frame") != 0)
                inferd__put(o, key, inferd_value_copy(item), ok);
    } else if (v) {
        inferd__put(o, "value", inferd_value_copy(v), ok);
    }
    inferd__put_str(o, "format", inferd_buffer_format(buf) ? inferd_buffer_format(buf) : "none",
                    ok);
    return o;
}

/* Replies to a frame's request: bytes as they are (an encoded picture, with
 * its format as the type), else the JSON result; an errored frame with the
 * error's status. Takes nothing. */
static void reply_result(const entry *e, svc_request *r, uint64_t frame, const inferd_buffer *buf)
{
    const inferd_error *err = inferd_buffer_error(buf);
    if (err) {
        svc_reply_status(r, err->code, err);
        return;
    }
    const void *bytes;
    size_t len;
    if (inferd_value_get_bytes(inferd_buffer_value(buf), &bytes, &len, NULL) == INFERD_OK) {
        void *copy = malloc(len ? len : 1);
        if (!copy) {
            svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            return;
        }
        memcpy(copy, bytes, len);
        char id[32];
        snprintf(id, sizeof id, "%llu", (unsigned long long)frame);
        svc_reply_header(r, "X-Inferd-Frame", id);
        const char *fmt = inferd_buffer_format(buf);
        svc_reply_bytes(r, MHD_HTTP_OK, fmt ? fmt : "application/octet-stream", copy, len);
        return;
    }
    bool ok = true;
    inferd_value *o = result_value(e, NULL, frame, buf, &ok);
    svc_reply_built(r, MHD_HTTP_OK, o, ok);
}

/* Writes text to every listener of e; drops the ones that went away. Under
 * m->lock. */
static void broadcast(entry *e, const char *text, size_t len)
{
    for (size_t i = 0; i < e->n_listeners;) {
        int rc = svc_stream_write(e->listeners[i], text, len);
        if (rc < 0) {
            svc_stream_close(e->listeners[i]);
            e->listeners[i] = e->listeners[--e->n_listeners];
            continue;
        }
        if (rc > 0)
            e->listener_drops++;
        i++;
    }
}

/* ---- matching frames and results ----------------------------------------------------- */

/* Unlinks and returns the waiter of frame in ru, or NULL. Under m->lock. */
static waiter *take_waiter(run *ru, uint64_t frame)
{
    for (waiter **at = &ru->waiters; *at; at = &(*at)->next)
        if ((*at)->frame == frame) {
            waiter *w = *at;
            *at = w->next;
            return w;
        }
    return NULL;
}

/* A request waiting on a frame of ru, answered outside the lock. */
typedef struct answer {
    svc_request *r;
    uint64_t frame;
    inferd_buffer *buf;      /* owned reference */
} answer;

/* The result of frame arrived from the primary sink (buf: a reference,
 * taken). Under m->lock; *out gets a request to answer, if any. */
static void result_arrived(run *ru, uint64_t frame, inferd_buffer *buf, answer *out)
{
    waiter *w = take_waiter(ru, frame);
    if (w && w->registered) {
        if (w->r) {
            *out = (answer){w->r, ru->base + frame, buf};
            ru->e->frames_answered++;
        }
        else
            inferd_buffer_unref(buf); /* asynchronous or timed out: the listeners had it */
        free(w);
        return;
    }
    if (w) { /* the same frame twice at the primary sink: keep the newer */
        inferd_buffer_unref(w->result);
        w->result = buf;
        w->next = ru->waiters;
        ru->waiters = w;
        return;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        inferd_buffer_unref(buf);
        return;
    }
    *w = (waiter){.next = ru->waiters, .frame = frame, .result = buf,
                  .since_ms = inferd__now_ms()};
    ru->waiters = w;
}

/* The push of frame returned: r waits for it (NULL: asynchronous). Under
 * m->lock; *out gets the answer when the result came first. */
static bool waiter_registered(svc_pipelines *m, run *ru, uint64_t frame, svc_request *r, int timeout_ms,
                              answer *out)
{
    waiter *w = take_waiter(ru, frame);
    if (w) { /* its result came first */
        if (r) {
            *out = (answer){r, ru->base + frame, w->result};
            ru->e->frames_answered++;
        } else
            inferd_buffer_unref(w->result);
        free(w);
        return true;
    }
    if (!(w = calloc(1, sizeof *w)))
        return false;
    uint64_t now = inferd__now_ms();
    *w = (waiter){.next = ru->waiters, .frame = frame, .r = r, .registered = true,
                  .deadline_ms = now + (uint64_t)timeout_ms, .since_ms = now};
    ru->waiters = w;
    if (r && w->deadline_ms < m->next_tick_ms) /* sooner than the ticker would look */
        pthread_cond_signal(&m->tick);
    return true;
}

/* Answers a request whose frame's result is here (outside m->lock; e
 * stays: its run, or the push, is still going). */
static void answer_send(const entry *e, answer *a)
{
    if (!a->r)
        return;
    reply_result(e, a->r, a->frame, a->buf);
    inferd_buffer_unref(a->buf);
    a->r = NULL;
}

/* ---- runs ----------------------------------------------------------------------------- */

typedef struct dispatcher_arg {
    svc_pipelines *m;
    run *ru;
    const char *sink;        /* borrowed from the pipeline */
} dispatcher_arg;

/* "event: result\ndata: {json}\n\n" of a result (*out malloc'd): its
 * length, or -1 when it could not be made. */
static int result_event(const entry *e, const char *sink, uint64_t frame, const inferd_buffer *buf,
                        char **out)
{
    bool ok = true;
    inferd_value *v = result_value(e, sink, frame, buf, &ok);
    char *json = NULL;
    if (ok)
        inferd_value_to_json(v, INFERD_JSON_COMPACT, &json, NULL, NULL);
    inferd_value_free(v);
    int len = json ? asprintf(out, "event: result\ndata: %s\n\n", json) : -1;
    if (len < 0)
        *out = NULL;
    free(json);
    return len;
}

/* One appsink's results: to the listeners, and the primary sink's to the
 * frames' waiters. Ends at the end of the stream, or when the run stops. */
static void *dispatch(void *arg)
{
    dispatcher_arg a = *(dispatcher_arg *)arg;
    free(arg);
    run *ru = a.ru;
    entry *e = ru->e;
    bool primary = ru->primary && strcmp(ru->primary, a.sink) == 0;
    for (;;) {
        inferd_buffer *buf = NULL;
        inferd_error err = {0};
        inferd_status st = inferd_pipeline_pull(ru->p, a.sink, 200, &buf, &err);
        if (st == INFERD_ETIMEOUT) {
            if (atomic_load(&ru->stopping))
                break;
            continue;
        }
        if (st != INFERD_OK || !buf)
            break;
        uint64_t frame = inferd_buffer_frame_id(buf);
        /* The event text only when someone listens: a result nobody reads
         * is not turned into JSON. (A listener that comes meanwhile misses
         * this one frame, as one coming a moment later would.) */
        pthread_mutex_lock(&a.m->lock);
        bool listened = e->n_listeners > 0;
        pthread_mutex_unlock(&a.m->lock);
        char *event = NULL;
        int len = listened ? result_event(e, a.sink, ru->base + frame, buf, &event) : 0;
        answer ans = {0};
        pthread_mutex_lock(&a.m->lock);
        if (len > 0)
            broadcast(e, event, (size_t)len);
        if (primary)
            result_arrived(ru, frame, buf, &ans);
        else
            inferd_buffer_unref(buf);
        pthread_mutex_unlock(&a.m->lock);
        free(event);
        if (len < 0)
            inferd_log_warn(LOG, "%s: frame %llu's result could not be made into an event",
                            e->name, (unsigned long long)(ru->base + frame));
        answer_send(e, &ans);
    }
    return NULL;
}

/* Stops ru (drain: every frame taken gets its result; else discarded),
 * answers what still waits, frees it. Returns the frames it took. Never
 * under m->lock, and ru is no entry's run any more. */
static uint64_t run_stop(svc_pipelines *m, run *ru, bool drain)
{
    if (!ru)
        return 0;
    if (!drain)
        atomic_store(&ru->stopping, true);
    inferd_pipeline_stop(ru->p, drain); /* a drain ends when the dispatchers took it all */
    atomic_store(&ru->stopping, true);
    for (size_t i = 0; i < ru->n_threads; i++)
        pthread_join(ru->threads[i], NULL);
    free(ru->threads);
    pthread_mutex_lock(&m->lock);
    waiter *list = ru->waiters;
    ru->waiters = NULL;
    pthread_mutex_unlock(&m->lock);
    while (list) {
        waiter *w = list;
        list = w->next;
        if (w->r) {
            inferd_error e = {0};
            inferd_error_set(&e, INFERD_ESTATE, "pipeline %s stopped before frame %llu's result",
                             ru->e->name, (unsigned long long)(ru->base + w->frame));
            svc_reply_status(w->r, e.code, &e);
        }
        inferd_buffer_unref(w->result);
        free(w);
    }
    inferd_pipeline_stats stats;
    inferd_pipeline_get_stats(ru->p, &stats);
    inferd_pipeline_free(ru->p);
    free(ru);
    return stats.pushed;
}

/* Starts p (taken) as e's run. */
static inferd_status run_start(svc_pipelines *m, entry *e, inferd_pipeline *p, uint64_t base,
                               run **out, inferd_error *err)
{
    run *ru = calloc(1, sizeof *ru);
    size_t sinks = inferd_pipeline_sink_count(p);
    if (!ru || (sinks && !(ru->threads = calloc(sinks, sizeof *ru->threads)))) {
        free(ru);
        inferd_pipeline_free(p);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    ru->e = e;
    ru->p = p;
    ru->base = base;
    ru->primary = sinks == 1 ? inferd_pipeline_sink_name(p, 0) : NULL;
    inferd_status st = inferd_pipeline_start(p, err);
    for (size_t i = 0; st == INFERD_OK && i < sinks; i++) {
        dispatcher_arg *a = malloc(sizeof *a);
        if (a)
            *a = (dispatcher_arg){m, ru, inferd_pipeline_sink_name(p, i)};
        if (!a || pthread_create(&ru->threads[i], NULL, dispatch, a) != 0) {
            free(a);
            st = inferd_error_set(err, INFERD_ENOMEM, "cannot start a dispatcher thread");
            break;
        }
        ru->n_threads++;
    }
    if (st != INFERD_OK) {
        run_stop(m, ru, false);
        return st;
    }
    *out = ru;
    return INFERD_OK;
}

/* ---- entries -------------------------------------------------------------------------- */

static entry *find(svc_pipelines *m, const char *name)
{
    for (entry *e = m->entries; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* Builds (checks) a pipeline from a definition. What the document asks
 * for and cannot be (an unknown factory, a model file that is not there)
 * is the document's fault: EINVAL, a 400, not the daemon's. */
static inferd_status build(svc_pipelines *m, const char *name, const char *definition,
                           inferd_pipeline **out, inferd_error *err)
{
    char origin[160];
    snprintf(origin, sizeof origin, "pipeline %s", name);
    inferd_status st =
        inferd_pipeline_new(m->s->reg, definition, strlen(definition), origin, out, err);
    if (st != INFERD_OK && st != INFERD_ENOMEM && st != INFERD_EINTERNAL)
        err->code = st = INFERD_EINVAL;
    return st;
}

/* Holds new pushes to e and waits for those in flight. Under m->lock (it
 * waits on it). false when another change holds e already (EBUSY). */
static bool hold(svc_pipelines *m, entry *e)
{
    if (e->swapping)
        return false;
    e->swapping = true;
    while (e->pushing > 0)
        pthread_cond_wait(&m->changed, &m->lock);
    return true;
}

static void release(svc_pipelines *m, entry *e)
{
    e->swapping = false;
    pthread_cond_broadcast(&m->changed);
}

static void entry_free(entry *e)
{
    for (size_t i = 0; i < e->n_listeners; i++)
        svc_stream_close(e->listeners[i]);
    free(e->listeners);
    free(e->name);
    free(e->definition);
    free(e);
}

/* Records how the last start went. Under m->lock. */
static void set_outcome(entry *e, inferd_status st, const inferd_error *err)
{
    e->failed = st != INFERD_OK;
    if (e->failed)
        memcpy(e->error, err->message, sizeof e->error);
    else
        e->error[0] = '\0';
}

static inferd_status busy(const char *name, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EBUSY, "pipeline %s is being changed by another request; "
                            "retry when it is done", name);
}

/* Finds name and holds it (*out) for a change; ENOTFOUND, or EBUSY while
 * another change holds it. */
static inferd_status hold_named(svc_pipelines *m, const char *name, entry **out,
                                inferd_error *err)
{
    pthread_mutex_lock(&m->lock);
    entry *e = find(m, name);
    bool held = e && hold(m, e);
    pthread_mutex_unlock(&m->lock);
    *out = held ? e : NULL;
    return held ? INFERD_OK
           : e  ? busy(name, err)
                : inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s", name);
}

/* Starts e's stored definition (it is held: swapping). Never under m->lock. */
static inferd_status entry_start(svc_pipelines *m, entry *e, inferd_error *err)
{
    inferd_pipeline *p = NULL;
    run *ru = NULL;
    inferd_status st = build(m, e->name, e->definition, &p, err);
    if (st == INFERD_OK)
        st = run_start(m, e, p, e->frames_before, &ru, err);
    pthread_mutex_lock(&m->lock);
    e->run = ru;
    set_outcome(e, st, err);
    pthread_mutex_unlock(&m->lock);
    return st;
}

/* Stops e's run (e is held), counting its frames into e's base. Never
 * under m->lock. */
static void entry_stop(svc_pipelines *m, entry *e, bool drain)
{
    pthread_mutex_lock(&m->lock);
    run *ru = e->run;
    e->run = NULL; /* from now on it is seen stopped; nothing else reaches ru */
    pthread_mutex_unlock(&m->lock);
    uint64_t frames = run_stop(m, ru, drain);
    pthread_mutex_lock(&m->lock);
    e->frames_before += frames;
    pthread_mutex_unlock(&m->lock);
}

inferd_status svc_pipelines_create(svc_pipelines *m, const char *name, const char *definition,
                                   bool start, inferd_error *err)
{
    inferd_pipeline *p = NULL;
    inferd_status st = build(m, name, definition, &p, err);
    if (st != INFERD_OK)
        return st;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name)) || !(e->definition = strdup(definition))) {
        if (e) {
            free(e->name);
            free(e);
        }
        inferd_pipeline_free(p);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&m->lock);
    if (find(m, name)) {
        pthread_mutex_unlock(&m->lock);
        entry_free(e);
        inferd_pipeline_free(p);
        return inferd_error_set(err, INFERD_EEXIST, "pipeline %s exists already: PUT "
                                "/v1/pipelines/%s replaces it", name, name);
    }
    e->swapping = true; /* held until it runs */
    entry **at = &m->entries;
    while (*at && strcmp((*at)->name, name) < 0)
        at = &(*at)->next;
    e->next = *at;
    *at = e;
    pthread_mutex_unlock(&m->lock);
    if (m->store && (st = state_put(m->store, STATE_PIPELINES, name, definition, start, err)) !=
                        INFERD_OK) {
        inferd_pipeline_free(p);
        pthread_mutex_lock(&m->lock);
        for (at = &m->entries; *at != e; at = &(*at)->next)
            ;
        *at = e->next;
        pthread_mutex_unlock(&m->lock);
        entry_free(e);
        return st;
    }
    run *ru = NULL;
    if (start)
        st = run_start(m, e, p, 0, &ru, err);
    else
        inferd_pipeline_free(p);
    pthread_mutex_lock(&m->lock);
    e->run = ru;
    set_outcome(e, st, err);
    release(m, e);
    pthread_mutex_unlock(&m->lock);
    return st;
}

inferd_status svc_pipelines_replace(svc_pipelines *m, const char *name, const char *definition,
                                    inferd_error *err)
{
    pthread_mutex_lock(&m->lock);
    bool exists = find(m, name) != NULL;
    pthread_mutex_unlock(&m->lock);
    if (!exists)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s (POST /v1/pipelines "
                                "creates one)", name);
    inferd_pipeline *p = NULL;
    inferd_status st = build(m, name, definition, &p, err);
    if (st != INFERD_OK)
        return st;
    char *def = strdup(definition);
    pthread_mutex_lock(&m->lock);
    entry *e = find(m, name);
    if (!def || !e || !hold(m, e)) {
        pthread_mutex_unlock(&m->lock);
        free(def);
        inferd_pipeline_free(p);
        return !def ? inferd_error_set(err, INFERD_ENOMEM, "out of memory")
               : !e ? inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s", name)
                    : busy(name, err);
    }
    bool running = e->run != NULL;
    pthread_mutex_unlock(&m->lock);
    if (m->store && (st = state_put(m->store, STATE_PIPELINES, name, definition, running, err)) !=
                        INFERD_OK) {
        inferd_pipeline_free(p);
        free(def);
        pthread_mutex_lock(&m->lock);
        release(m, e);
        pthread_mutex_unlock(&m->lock);
        return st;
    }
    entry_stop(m, e, true);
    run *ru = NULL;
    if (running)
        st = run_start(m, e, p, e->frames_before, &ru, err);
    else
        inferd_pipeline_free(p);
    pthread_mutex_lock(&m->lock);
    free(e->definition);
    e->definition = def;
    e->run = ru;
    set_outcome(e, st, err);
    release(m, e);
    pthread_mutex_unlock(&m->lock);
    return st;
}

inferd_status svc_pipelines_delete(svc_pipelines *m, const char *name, inferd_error *err)
{
    entry *e = NULL;
    inferd_status st = hold_named(m, name, &e, err);
    if (st != INFERD_OK)
        return st;
    st = m->store ? state_delete(m->store, STATE_PIPELINES, name, err) : INFERD_OK;
    if (st != INFERD_OK) {
        pthread_mutex_lock(&m->lock);
        release(m, e);
        pthread_mutex_unlock(&m->lock);
        return st;
    }
    entry_stop(m, e, false);
    pthread_mutex_lock(&m->lock);
    entry **at = &m->entries;
    while (*at != e)
        at = &(*at)->next;
    *at = e->next;
    release(m, e); /* pushes held on it find no entry: 404 */
    pthread_mutex_unlock(&m->lock);
    entry_free(e);
    return INFERD_OK;
}

inferd_status svc_pipelines_set_running(svc_pipelines *m, const char *name, bool start,
                                        inferd_error *err)
{
    entry *e = NULL;
    inferd_status st = hold_named(m, name, &e, err);
    if (st != INFERD_OK)
        return st;
    pthread_mutex_lock(&m->lock);
    bool running = e->run != NULL;
    pthread_mutex_unlock(&m->lock);
    if (start && !running)
        st = entry_start(m, e, err);
    else if (!start && running)
        entry_stop(m, e, true); /* what it took is answered */
    if (st == INFERD_OK && m->store)
        st = state_set_running(m->store, STATE_PIPELINES, name, start, err);
    pthread_mutex_lock(&m->lock);
    if (!start)
        e->failed = false;
    release(m, e);
    pthread_mutex_unlock(&m->lock);
    return st;
}

/* ---- frames and listeners ---------------------------------------------------------------- */

inferd_status svc_pipelines_push(svc_pipelines *m, const char *name, const char *source,
                                 inferd_buffer *buf, svc_request *r, int timeout_ms,
                                 uint64_t *frame, inferd_error *err)
{
    pthread_mutex_lock(&m->lock);
    entry *e;
    while ((e = find(m, name)) && e->swapping && !atomic_load(&m->closing))
        pthread_cond_wait(&m->changed, &m->lock);
    inferd_status st = INFERD_OK;
    run *ru = e ? e->run : NULL;
    if (!e)
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s", name);
    else if (!ru)
        st = inferd_error_set(err, INFERD_ESTATE, "pipeline %s is stopped%s%s: POST "
                              "/v1/pipelines/%s/start", name, e->failed ? ": " : "",
                              e->failed ? e->error : "", name);
    else if (r && !ru->primary)
        st = inferd_error_set(err, INFERD_EINVAL, "pipeline %s has %zu appsinks: a frame can wait "
                              "for its result only with one; send it with ?async=true and read "
                              "the results from /v1/pipelines/%s/results", name,
                              inferd_pipeline_sink_count(ru->p), name);
    if (st != INFERD_OK) {
        pthread_mutex_unlock(&m->lock);
        inferd_buffer_unref(buf);
        return st;
    }
    e->pushing++;
    pthread_mutex_unlock(&m->lock);
    uint64_t id = 0;
    st = inferd_pipeline_push(ru->p, source, buf, &id, timeout_ms, err);
    if (st == INFERD_ETIMEOUT)
        st = inferd_error_set(err, INFERD_EBUSY, "pipeline %s stayed full for %d ms: retry later",
                              name, timeout_ms);
    answer ans = {0};
    pthread_mutex_lock(&m->lock);
    if (st == INFERD_OK) {
        *frame = ru->base + id;
        if (!waiter_registered(m, ru, id, r, timeout_ms, &ans))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&m->lock);
    answer_send(e, &ans); /* e stays while this push counts */
    pthread_mutex_lock(&m->lock);
    if (--e->pushing == 0)
        pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return st;
}

inferd_status svc_pipelines_listen(svc_pipelines *m, const char *name, svc_request *r,
                                   inferd_error *err)
{
    pthread_mutex_lock(&m->lock);
    entry *e = find(m, name);
    svc_stream **l = e ? realloc(e->listeners, (e->n_listeners + 1) * sizeof *l) : NULL;
    if (!e || !l) {
        pthread_mutex_unlock(&m->lock);
        return e ? inferd_error_set(err, INFERD_ENOMEM, "out of memory")
                 : inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s", name);
    }
    e->listeners = l;
    svc_reply_header(r, "X-Accel-Buffering", "no");
    svc_stream *st = svc_reply_stream(r, MHD_HTTP_OK, "text/event-stream", LISTENER_MAX_BYTES);
    if (st) {
        /* A comment first: the client sees the stream open at once. */
        static const char hello[] = ": listening\n\n";
        svc_stream_write(st, hello, sizeof hello - 1);
        e->listeners[e->n_listeners++] = st;
    }
    pthread_mutex_unlock(&m->lock);
    return INFERD_OK;
}

inferd_status svc_pipelines_health(svc_pipelines *m, const char *name,
                                   void (*down)(void *ctx, const char *reason), void *ctx)
{
    pthread_mutex_lock(&m->lock);
    bool found = false;
    for (entry *e = m->entries; e; e = e->next) {
        if (name && strcmp(e->name, name) != 0)
            continue;
        found = true;
        if (!e->failed)
            continue; /* running, stopped on purpose, or at the end of its input */
        char reason[sizeof e->error + 64];
        snprintf(reason, sizeof reason, "pipeline %s failed: %s", e->name, e->error);
        down(ctx, reason);
    }
    pthread_mutex_unlock(&m->lock);
    return found || !name ? INFERD_OK : INFERD_ENOTFOUND;
}

/* ---- what it looks like ------------------------------------------------------------------ */

static double ms(uint64_t us) { return (double)us / 1000.0; }

typedef struct counters_ctx {
    inferd_value *obj;
    bool *ok;
} counters_ctx;

static void put_counter(void *ctx, const char *name, int64_t value)
{
    counters_ctx *c = ctx;
    inferd__put(c->obj, name, inferd_value_int(value), c->ok);
}

static inferd_value *describe(entry *e, bool full, bool *ok)
{
    inferd_value *o = inferd_value_object();
    inferd__put_str(o, "name", e->name, ok);
    /* ended: its producers reached the end of their input (a video file). */
    inferd__put_str(o, "state", e->run ? (inferd_pipeline_ended(e->run->p) ? "ended" : "running")
                                : e->failed ? "failed"
                                            : "stopped",
                    ok);
    if (e->failed)
        inferd__put_str(o, "error", e->error, ok);
    inferd__put(o, "listeners", inferd_value_int((int64_t)e->n_listeners), ok);
    inferd__put(o, "listener_drops", inferd_value_int((int64_t)e->listener_drops), ok);
    inferd__put(o, "frames_answered", inferd_value_int((int64_t)e->frames_answered), ok);
    inferd__put(o, "frames_timed_out", inferd_value_int((int64_t)e->frames_timed_out), ok);
    if (e->run) {
        inferd_pipeline_stats s;
        inferd_pipeline_get_stats(e->run->p, &s);
        inferd_value *c = inferd_value_object();
        inferd__put(c, "pushed", inferd_value_int((int64_t)s.pushed), ok);
        inferd__put(c, "delivered", inferd_value_int((int64_t)s.delivered), ok);
        inferd__put(c, "errors", inferd_value_int((int64_t)s.errors), ok);
        inferd__put(c, "dropped", inferd_value_int((int64_t)s.dropped), ok);
        inferd__put(o, "counters", c, ok);
    }
    if (!full)
        return o;
    if (e->run) {
        inferd_value *els = inferd_value_array();
        inferd_pipeline_element_stats es;
        for (size_t i = 0; inferd_pipeline_element_stats_at(e->run->p, i, &es); i++) {
            inferd_value *x = inferd_value_object();
            inferd__put_str(x, "name", es.name, ok);
            inferd__put_str(x, "factory", es.factory, ok);
            inferd__put(x, "in", inferd_value_int((int64_t)es.in), ok);
            inferd__put(x, "out", inferd_value_int((int64_t)es.out), ok);
            inferd__put(x, "errors", inferd_value_int((int64_t)es.errors), ok);
            inferd__put(x, "dropped", inferd_value_int((int64_t)es.dropped), ok);
            inferd__put(x, "queue_depth", inferd_value_int((int64_t)es.queue_depth), ok);
            inferd__put(x, "queue_capacity", inferd_value_int((int64_t)es.queue_capacity), ok);
            inferd__put(x, "process_calls", inferd_value_int((int64_t)es.process_calls), ok);
            inferd__put(x, "latency_avg_ms",
                        inferd_value_double(es.process_calls
                                                ? ms(es.process_us) / (double)es.process_calls
                                                : 0.0), ok);
            inferd__put(x, "latency_last_ms", inferd_value_double(ms(es.last_process_us)), ok);
            counters_ctx cc = {inferd_value_object(), ok};
            inferd_pipeline_element_counters(e->run->p, i, put_counter, &cc);
            if (inferd_value_object_len(cc.obj) > 0)
                inferd__put(x, "counters", cc.obj, ok);
            else
                inferd_value_free(cc.obj);
            inferd__push(els, x, ok);
        }
        inferd__put(o, "elements", els, ok);
    }
    inferd_value *def = NULL;
    if (inferd_value_from_json(e->definition, strlen(e->definition), 64, &def, NULL) == INFERD_OK)
        inferd__put(o, "pipeline", def, ok);
    return o;
}

inferd_value *svc_pipelines_list(svc_pipelines *m, bool *ok)
{
    inferd_value *arr = inferd_value_array();
    pthread_mutex_lock(&m->lock);
    for (entry *e = m->entries; e; e = e->next)
        inferd__push(arr, describe(e, false, ok), ok);
    pthread_mutex_unlock(&m->lock);
    return arr;
}

inferd_status svc_pipelines_describe(svc_pipelines *m, const char *name, inferd_value **out,
                                     bool *ok, inferd_error *err)
{
    pthread_mutex_lock(&m->lock);
    entry *e = find(m, name);
    if (e)
        *out = describe(e, true, ok);
    pthread_mutex_unlock(&m->lock);
    return e ? INFERD_OK : inferd_error_set(err, INFERD_ENOTFOUND, "no pipeline %s", name);
}

/* ---- the ticker: deadlines, heartbeats, orphans ------------------------------------------- */

static void *tick(void *arg)
{
    svc_pipelines *m = arg;
    uint64_t last_beat = inferd__now_ms();
    pthread_mutex_lock(&m->lock);
    while (!atomic_load(&m->closing)) {
        uint64_t now = inferd__now_ms();
        bool beat = now - last_beat >= HEARTBEAT_MS;
        if (beat)
            last_beat = now;
        /* Requests past their deadline, answered outside the lock. */
        svc_request *late[64];
        uint64_t late_frame[64];
        size_t n_late = 0;
        uint64_t next = now + TICK_MS;
        for (entry *e = m->entries; e; e = e->next) {
            if (beat) {
                static const char ping[] = ": ping\n\n";
                broadcast(e, ping, sizeof ping - 1);
            }
            for (waiter **at = e->run ? &e->run->waiters : NULL; at && *at;) {
                waiter *w = *at;
                if (w->r && now >= w->deadline_ms && n_late < 64) {
                    late[n_late] = w->r;
                    late_frame[n_late++] = e->run->base + w->frame;
                    w->r = NULL; /* a marker: its late result is dropped */
                    w->since_ms = now;
                    e->frames_timed_out++;
                } else if (!w->r && now - w->since_ms > ORPHAN_MS) {
                    *at = w->next;
                    inferd_buffer_unref(w->result);
                    free(w);
                    continue;
                }
                if (w->r && w->deadline_ms < next)
                    next = w->deadline_ms;
                at = &w->next;
            }
        }
        m->next_tick_ms = next;
        pthread_mutex_unlock(&m->lock);
        for (size_t i = 0; i < n_late; i++)
            svc_reply_error(late[i], MHD_HTTP_GATEWAY_TIMEOUT, "timeout",
                            "frame %llu: no result within its timeout; it goes on, and its "
                            "result reaches the listeners of /results",
                            (unsigned long long)late_frame[i]);
        pthread_mutex_lock(&m->lock);
        if (!atomic_load(&m->closing) && n_late == 0) {
            struct timespec until = inferd__abs_us(m->next_tick_ms * 1000u);
            pthread_cond_timedwait(&m->tick, &m->lock, &until);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the manager's life ------------------------------------------------------------------- */

static void restore_one(void *ctx, const char *id, const char *definition, bool running)
{
    svc_pipelines *m = ctx;
    inferd_error err = {0};
    /* Recorded entries come back as they were, also when they no longer
     * build (a model gone): then stopped with the reason, to be fixed by PUT. */
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(id)) || !(e->definition = strdup(definition))) {
        if (e)
            free(e->name);
        free(e);
        inferd_log_error(LOG, "pipeline %s: out of memory: not restored (it stays in the "
                         "database)", id);
        return;
    }
    pthread_mutex_lock(&m->lock);
    entry **at = &m->entries;
    while (*at)
        at = &(*at)->next;
    *at = e; /* loaded in id order */
    pthread_mutex_unlock(&m->lock);
    if (running && entry_start(m, e, &err) != INFERD_OK) {
        inferd_log_error(LOG, "pipeline %s did not start again: %s", id, err.message);
    } else if (running) {
        inferd_log_info(LOG, "pipeline %s started again", id);
    }
}

inferd_status svc_pipelines_open(svc *s, const char *db_path, svc_pipelines **out,
                                 inferd_error *err)
{
    svc_pipelines *m = calloc(1, sizeof *m);
    if (!m)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    m->s = s;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->changed, NULL);
    inferd__cond_init(&m->tick);
    inferd_status st = INFERD_OK;
    if (db_path && (st = state_store_open(db_path, &m->store, err)) == INFERD_OK) {
        st = state_load(m->store, STATE_PIPELINES, restore_one, m, err);
    }
    if (st == INFERD_OK) {
        if (pthread_create(&m->ticker, NULL, tick, m) != 0)
            st = inferd_error_set(err, INFERD_ENOMEM, "cannot start the pipelines' ticker");
        m->has_ticker = st == INFERD_OK;
    }
    if (st != INFERD_OK) {
        svc_pipelines_free(m);
        return st;
    }
    *out = m;
    return INFERD_OK;
}

void svc_pipelines_close_listeners(svc_pipelines *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    for (entry *e = m->entries; e; e = e->next) {
        for (size_t i = 0; i < e->n_listeners; i++)
            svc_stream_close(e->listeners[i]);
        e->n_listeners = 0;
    }
    pthread_mutex_unlock(&m->lock);
}

void svc_pipelines_free(svc_pipelines *m)
{
    if (!m)
        return;
    atomic_store(&m->closing, true);
    pthread_mutex_lock(&m->lock);
    pthread_cond_broadcast(&m->changed);
    pthread_cond_signal(&m->tick);
    pthread_mutex_unlock(&m->lock);
    if (m->has_ticker)
        pthread_join(m->ticker, NULL);
    while (m->entries) {
        entry *e = m->entries;
        m->entries = e->next;
        run_stop(m, e->run, false);
        entry_free(e);
    }
    state_store_close(m->store);
    pthread_cond_destroy(&m->changed);
    pthread_cond_destroy(&m->tick);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
