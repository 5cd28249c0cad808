/* events/bus.c: the process-wide event bus (see bus.h).
 *
 * Owns the subscribers (inferd_event_sub) and the events queued in them.
 * The list of subscribers is guarded by a read-write lock: publishers only
 * read it, so they never wait for one another; each subscriber has its own
 * mutex around its ring of queued events and its counters. A publisher holds
 * a subscriber's mutex only to put one pointer in its ring: it never waits
 * for room (a full ring drops the event) nor for a plugin. The subscriber's
 * thread takes a batch out under its mutex and calls the plugin without any
 * lock held.
 */
#include "events/bus.h"
#include "core/footprint.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/log.h"
#include "inferd/registry.h"

#define LOG "events"
/* A handle that keeps failing is logged when it starts failing, then once
 * every this many failures (not once per batch), and when it recovers. */
#define FAILURE_LOG_EVERY 100

typedef struct slot {
    inferd_value *event; /* owned */
    uint64_t at_ms;      /* monotonic time it was queued */
    size_t bytes;
} slot;

struct inferd_event_sub {
    inferd_event_sub *next;   /* in the bus's list (guarded by bus_lock) */
    inferd_instance *inst;    /* borrowed: outlives the subscription */
    const char *event;        /* borrowed from the component */
    inferd_event_sub_config cfg;
    pthread_t thread;
    const inferd_value **batch; /* owned: cfg.max_batch entries, the thread's */
    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t wake;      /* the thread waits on it (monotonic clock) */
    slot *ring;               /* owned: cfg.queue_size slots */
    size_t head, count, bytes;
    bool stopping;
    uint64_t stop_by_ms;
    uint64_t published, delivered, dropped, failures;
    bool failing;             /* the thread's: the last batch failed */
};

/* Writers (subscribe, unsubscribe) go first: a steady stream of publishers
 * must not hold a stopping daemon off. */
static pthread_rwlock_t bus_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static inferd_event_sub *subs; /* guarded by bus_lock */
static uint64_t unrouted;      /* guarded by unrouted_mu */
static pthread_mutex_t unrouted_mu = PTHREAD_MUTEX_INITIALIZER;

/* Puts one event (taken) in s's ring, or drops it. Never waits for room. */
static void offer(inferd_event_sub *s, inferd_value *event)
{
    size_t bytes = s->cfg.max_bytes ? inferd__value_footprint(event) : 0;
    pthread_mutex_lock(&s->mu);
    s->published++;
    if (!event || s->stopping || s->count == s->cfg.queue_size ||
        (s->cfg.max_bytes && s->count && s->bytes + bytes > s->cfg.max_bytes)) {
        s->dropped++;
        pthread_mutex_unlock(&s->mu);
        inferd_value_free(event);
        return;
    }
    s->ring[(s->head + s->count) % s->cfg.queue_size] = (slot){event, inferd__now_ms(), bytes};
    s->count++;
    s->bytes += bytes;
    /* The thread waits either for a first event or for a full batch. */
    if (s->count == 1 || s->count == s->cfg.max_batch)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

inferd_status inferd_event_publish(const char *name, inferd_value *payload, inferd_error *err)
{
    if (!name || !*name || !payload) {
        inferd_value_free(payload);
        return inferd_error_set(err, INFERD_EINVAL, "an event needs a name and a payload");
    }
    pthread_rwlock_rdlock(&bus_lock);
    size_t matches = 0;
    for (inferd_event_sub *s = subs; s; s = s->next)
        matches += strcmp(s->event, name) == 0;
    bool routed = matches > 0;
    /* Each subscriber gets its own copy; the last one gets the original. */
    for (inferd_event_sub *s = subs; s && matches; s = s->next)
        if (strcmp(s->event, name) == 0)
            offer(s, --matches == 0 ? payload : inferd_value_copy(payload));
    pthread_rwlock_unlock(&bus_lock);
    if (!routed) {
        inferd_value_free(payload);
        pthread_mutex_lock(&unrouted_mu);
        unrouted++;
        pthread_mutex_unlock(&unrouted_mu);
    }
    return INFERD_OK;
}

uint64_t inferd_events_unrouted(void)
{
    pthread_mutex_lock(&unrouted_mu);
    uint64_t n = unrouted;
    pthread_mutex_unlock(&unrouted_mu);
    return n;
}

/* One handle call with n events taken from the ring (outside any lock). */
static void deliver(inferd_event_sub *s, size_t n)
{
    inferd_error err = {0};
    inferd_status st = inferd_instance_handle(s->inst, s->batch, n, &err);
    for (size_t i = 0; i < n; i++)
        inferd_value_free((inferd_value *)s->batch[i]);

    pthread_mutex_lock(&s->mu);
    uint64_t failures = s->failures += st != INFERD_OK;
    pthread_mutex_unlock(&s->mu);

    if (st != INFERD_OK && (!s->failing || failures % FAILURE_LOG_EVERY == 0))
        inferd_log_warn(LOG, "'%s' events to %s: a batch of %zu failed (%llu failed so far): %s",
                        s->event, inferd_instance_name(s->inst), n,
                        (unsigned long long)failures, err.message);
    else if (st == INFERD_OK && s->failing)
        inferd_log_info(LOG, "'%s' events to %s: handled again after %llu failed batches",
                        s->event, inferd_instance_name(s->inst), (unsigned long long)failures);
    s->failing = st != INFERD_OK;
}

/* The subscriber's thread: waits for a batch (full, or flush_ms after its
 * oldest event was queued), hands it over, repeats; when stopping, hands
 * over what is left until the stop deadline, then drops the rest. */
static void *sub_thread(void *arg)
{
    inferd_event_sub *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->count == 0 && !s->stopping)
            pthread_cond_wait(&s->wake, &s->mu);
        if (s->count == 0)
            break; /* stopping, and nothing left */
        if (s->stopping && inferd__now_ms() >= s->stop_by_ms) {
            s->dropped += s->count;
            for (; s->count; s->count--, s->head = (s->head + 1) % s->cfg.queue_size)
                inferd_value_free(s->ring[s->head].event);
            s->bytes = 0;
            break;
        }
        uint64_t due = s->ring[s->head].at_ms + s->cfg.flush_ms;
        while (s->count < s->cfg.max_batch && !s->stopping && inferd__now_ms() < due) {
            struct timespec ts = inferd__abs_us(due * 1000u);
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        }
        size_t n = s->count < s->cfg.max_batch ? s->count : s->cfg.max_batch;
        for (size_t i = 0; i < n; i++) {
            s->batch[i] = s->ring[s->head].event;
            s->bytes -= s->ring[s->head].bytes;
            s->head = (s->head + 1) % s->cfg.queue_size;
        }
        s->count -= n;
        s->delivered += n; /* counted when taken: published = delivered + dropped + queued */
        pthread_mutex_unlock(&s->mu);
        deliver(s, n);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sub_free(inferd_event_sub *s)
{
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s->batch);
    free(s);
}

inferd_status inferd_events_subscribe(inferd_instance *inst, const inferd_event_sub_config *cfg,
                                      inferd_event_sub **out, inferd_error *err)
{
    const inferd_component *c = inst ? inferd_instance_component(inst) : NULL;
    if (!c || c->kind != INFERD_KIND_EVENT || !c->event_name)
        return inferd_error_set(err, INFERD_EINVAL, "%s is not an event component's instance",
                                inst ? inferd_instance_name(inst) : "(null)");
    if (!cfg || cfg->queue_size < 1 || cfg->max_batch < 1)
        return inferd_error_set(err, INFERD_EINVAL,
                                "events for %s: queue_size and max_batch must be at least 1",
                                inferd_instance_name(inst));
    inferd_event_sub *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->inst = inst;
    s->event = c->event_name;
    s->cfg = *cfg;
    s->ring = calloc(cfg->queue_size, sizeof *s->ring);
    s->batch = calloc(cfg->max_batch, sizeof *s->batch);
    inferd__cond_init(&s->wake);
    pthread_mutex_init(&s->mu, NULL);
    if (!s->ring || !s->batch) {
        sub_free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory (event queue of %zu)",
                                cfg->queue_size);
    }
    int rc = pthread_create(&s->thread, NULL, sub_thread, s);
    if (rc != 0) {
        sub_free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "events for %s: cannot start a thread: %s",
                                inferd_instance_name(inst), strerror(rc));
    }
    pthread_setname_np(s->thread, "inferd-events");
    pthread_rwlock_wrlock(&bus_lock);
    inferd_event_sub **tail = &subs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    pthread_rwlock_unlock(&bus_lock);
    *out = s;
    return INFERD_OK;
}

void inferd_events_unsubscribe(inferd_event_sub *sub, uint64_t deadline_ms)
{
    if (!sub)
        return;
    /* Out of the list first: once the write lock is ours, no publisher is
     * inside offer() on this subscriber, and none will be. */
    pthread_rwlock_wrlock(&bus_lock);
    for (inferd_event_sub **p = &subs; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    pthread_rwlock_unlock(&bus_lock);

    pthread_mutex_lock(&sub->mu);
    sub->stopping = true;
    sub->stop_by_ms = inferd__now_ms() + deadline_ms;
    pthread_cond_signal(&sub->wake);
    pthread_mutex_unlock(&sub->mu);
    pthread_join(sub->thread, NULL);
    if (sub->dropped)
        inferd_log_info(LOG, "'%s' events to %s: %llu delivered, %llu dropped",
                        sub->event, inferd_instance_name(sub->inst),
                        (unsigned long long)sub->delivered, (unsigned long long)sub->dropped);
    sub_free(sub);
}

void inferd_events_stats(const inferd_event_sub *sub, inferd_event_sub_stats *out)
{
    inferd_event_sub *s = (inferd_event_sub *)sub; /* its mutex, not its data, changes */
    *out = (inferd_event_sub_stats){.instance = inferd_instance_name(s->inst), .event = s->event};
    pthread_mutex_lock(&s->mu);
    out->published = s->published;
    out->delivered = s->delivered;
    out->dropped = s->dropped;
    out->failures = s->failures;
    out->queued = s->count;
    pthread_mutex_unlock(&s->mu);
}

void inferd_events_foreach(void (*fn)(void *ctx, const inferd_event_sub_stats *s), void *ctx)
{
    pthread_rwlock_rdlock(&bus_lock);
    for (inferd_event_sub *s = subs; s; s = s->next) {
        inferd_event_sub_stats st;
        inferd_events_stats(s, &st);
        fn(ctx, &st);
    }
    pthread_rwlock_unlock(&bus_lock);
}
