/* Unit tests: the event bus (src/events/bus.c) and the host's timers
 * (src/plugin/timers.c), with an in-memory plugin registered in a real
 * registry: an event component that records what it is handed (and can be
 * made slow or failing), and a function component whose instances own
 * timers. No assertion depends on how fast anything runs: waits are for
 * conditions (with a generous cap that fails the test), and a publish that
 * blocked on a stuck handler would hang the test rather than pass it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events/bus.h"
#include "inferd/registry.h"
#include "plugin/timers.h"

/* ---- the test plugin ------------------------------------------------------ */

/* What the event component saw. Guarded by mu; changes broadcast on cv. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t seen[20000];   /* the "i" of each event, in delivery order */
    size_t n_seen;
    size_t batches, max_batch_seen;
    bool gate_closed;      /* handle waits while true */
    bool in_handle;        /* a handle call is waiting at the gate */
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inferd_status rec_handle(inferd_instance *self, const inferd_value *const *events,
                                size_t n, inferd_error *err)
{
    pthread_mutex_lock(&rec.mu);
    rec.in_handle = true;
    pthread_cond_broadcast(&rec.cv);
    while (rec.gate_closed)
        pthread_cond_wait(&rec.cv, &rec.mu);
    rec.in_handle = false;
    bool fail = false;
    for (size_t i = 0; i < n; i++) {
        rec.seen[rec.n_seen++ % 20000] = inferd_value_int_or(inferd_value_object_get(events[i], "i"), -1);
        fail = fail || inferd_value_bool_or(inferd_value_object_get(events[i], "fail"), false);
    }
    rec.batches++;
    if (n > rec.max_batch_seen)
        rec.max_batch_seen = n;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
    return fail ? inferd_error_set(err, INFERD_EIO, "asked to fail") : INFERD_OK;
}

/* A second event component of the same event, and one of another event. */
static size_t other_seen, unrelated_seen;
static inferd_status other_handle(inferd_instance *self, const inferd_value *const *events,
                                  size_t n, inferd_error *err)
{
    pthread_mutex_lock(&rec.mu);
    other_seen += n;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
    return INFERD_OK;
}
static inferd_status unrelated_handle(inferd_instance *self, const inferd_value *const *events,
                                      size_t n, inferd_error *err)
{
    pthread_mutex_lock(&rec.mu);
    unrelated_seen += n;
    pthread_mutex_unlock(&rec.mu);
    return INFERD_OK;
}

/* Timers: a function component; each instance's state is a ticker. */
typedef struct ticker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ticks;
    int cancel_at;          /* the callback cancels its own timer at this tick */
    uint64_t id;
    int sleep_ms;           /* each callback sleeps this long */
    bool in_callback, torn_down, ran_after_teardown;
} ticker;

static void tick(inferd_instance *self, void *user)
{
    ticker *t = user;
    pthread_mutex_lock(&t->mu);
    t->in_callback = true;
    if (t->torn_down)
        t->ran_after_teardown = true;
    int ticks = ++t->ticks;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->sleep_ms)
        usleep((useconds_t)t->sleep_ms * 1000);
    if (ticks == t->cancel_at)
        inferd_timer_cancel(self, t->id); /* from inside: must not wait for itself */
    pthread_mutex_lock(&t->mu);
    t->in_callback = false;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static ticker *fn_ticker; /* the ticker the next instance's init starts */
static inferd_status fn_init(inferd_instance *self, const inferd_props *props, inferd_error *err)
{
    inferd_instance_set_state(self, fn_ticker);
    return fn_ticker ? inferd_timer_start(self, 2, tick, fn_ticker, &fn_ticker->id, err)
                     : INFERD_OK;
}
static void fn_deinit(inferd_instance *self)
{
    ticker *t = inferd_instance_state(self);
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->torn_down = true;
    pthread_mutex_unlock(&t->mu);
}
static inferd_status fn_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                             inferd_value **result, inferd_error *err)
{
    return INFERD_OK;
}

static const inferd_component test_components[] = {
    INFERD_EVENT("test_recorder", "test_event", NULL, NULL, rec_handle, NULL),
    INFERD_EVENT("test_other", "test_event", NULL, NULL, other_handle, NULL),
    INFERD_EVENT("test_unrelated", "test_unrelated_event", NULL, NULL, unrelated_handle, NULL),
    INFERD_FUNCTION("test_timer_owner", 0, 0, fn_init, NULL, fn_exec, fn_deinit),
};
static const inferd_plugin test_plugin = {
    INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin), "test_events",
    "1.0", NULL, test_components, sizeof test_components / sizeof test_components[0]};

/* ---- helpers ---------------------------------------------------------------- */

static inferd_registry *reg;

static int setup(void **state)
{
    rec.n_seen = rec.batches = rec.max_batch_seen = 0;
    rec.gate_closed = rec.in_handle = false;
    other_seen = unrelated_seen = 0;
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_add(reg, &test_plugin, "test_events.c", &err) != INFERD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    inferd_registry_free(reg);
    return 0;
}

static inferd_instance *instance(const char *component)
{
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    if (inferd_instance_create(reg, component, NULL, NULL, &inst, &err) != INFERD_OK)
        fail_msg("%s", err.message);
    return inst;
}

static inferd_event_sub *subscribe_bytes(inferd_instance *inst, size_t queue, size_t batch,
                                         uint64_t flush_ms, size_t max_bytes)
{
    inferd_event_sub_config cfg = {queue, batch, flush_ms, max_bytes};
    inferd_event_sub *sub = NULL;
    inferd_error err = {0};
    if (inferd_events_subscribe(inst, &cfg, &sub, &err) != INFERD_OK)
        fail_msg("%s", err.message);
    return sub;
}

static inferd_event_sub *subscribe(inferd_instance *inst, size_t queue, size_t batch,
                                   uint64_t flush_ms)
{
    return subscribe_bytes(inst, queue, batch, flush_ms, 0);
}

static void publish(const char *name, int64_t i, bool fail)
{
    inferd_value *v = inferd_value_object();
    inferd_value_object_set(v, "i", inferd_value_int(i), NULL);
    if (fail)
        inferd_value_object_set(v, "fail", inferd_value_bool(true), NULL);
    inferd_error err = {0};
    assert_int_equal(inferd_event_publish(name, v, &err), INFERD_OK);
}

static struct timespec deadline_in(int seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    return ts;
}

/* Waits (under rec.mu) until cond holds; fails after 10 s. */
#define WAIT_REC(cond)                                                                     \
    do {                                                                                   \
        struct timespec until_ = deadline_in(10);                                          \
        pthread_mutex_lock(&rec.mu);                                                       \
        while (!(cond))                                                                    \
            if (pthread_cond_timedwait(&rec.cv, &rec.mu, &until_) != 0) {                  \
                pthread_mutex_unlock(&rec.mu);                                             \
                fail_msg("timed out waiting for %s", #cond);                               \
            }                                                                              \
        pthread_mutex_unlock(&rec.mu);                                                     \
    } while (0)

static void gate(bool closed)
{
    pthread_mutex_lock(&rec.mu);
    rec.gate_closed = closed;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
}

static inferd_event_sub_stats stats_of(const inferd_event_sub *sub)
{
    inferd_event_sub_stats st;
    inferd_events_stats(sub, &st);
    return st;
}

/* ---- the bus ------------------------------------------------------------------ */

/* Events arrive in order, in batches of at most max_batch; a lone event is
 * flushed without waiting for more. */
static void batches_arrive_in_order_and_bounded(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    inferd_event_sub *sub = subscribe(inst, 1000, 4, 20);
    for (int64_t i = 0; i < 50; i++)
        publish("test_event", i, false);
    WAIT_REC(rec.n_seen == 50);
    for (size_t i = 0; i < 50; i++)
        assert_int_equal(rec.seen[i], (int64_t)i);
    assert_true(rec.max_batch_seen <= 4);
    assert_true(rec.batches >= 13); /* 50 events, 4 at most each */

    publish("test_event", 50, false); /* alone: flush_ms lets it go */
    WAIT_REC(rec.n_seen == 51);
    inferd_event_sub_stats st = stats_of(sub);
    assert_string_equal(st.event, "test_event");
    assert_string_equal(st.instance, "test_recorder");
    assert_int_equal(st.published, 51);
    assert_int_equal(st.delivered, 51);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.queued, 0);
    inferd_events_unsubscribe(sub, 1000);
    inferd_instance_destroy(inst);
}

/* A handler that does not return never holds a publisher up: with a queue of
 * 3, everything beyond is dropped, and counted exactly. */
static void stuck_handler_drops_and_counts(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    inferd_event_sub *sub = subscribe(inst, 3, 1, 0);
    gate(true);
    publish("test_event", 0, false);
    WAIT_REC(rec.in_handle); /* event 0 is in the handler, stuck */
    for (int64_t i = 1; i <= 10000; i++)
        publish("test_event", i, false); /* would hang here if publish waited */
    inferd_event_sub_stats st = stats_of(sub);
    assert_int_equal(st.published, 10001);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.dropped, 10001 - 1 - 3);
    gate(false);
    WAIT_REC(rec.n_seen == 4);
    assert_int_equal(rec.seen[1], 1); /* the first three after the stuck one were kept */
    assert_int_equal(rec.seen[3], 3);
    st = stats_of(sub);
    assert_int_equal(st.delivered, 4);
    assert_int_equal(st.dropped, 9997);
    assert_int_equal(st.published, st.delivered + st.dropped + st.queued);
    inferd_events_unsubscribe(sub, 1000);
    inferd_instance_destroy(inst);
}

/* Bounded in bytes too: with room for 1000 events but 2 KiB, a stuck
 * handler holds a few small events queued and the rest are dropped. */
static void queue_bounded_in_bytes(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    inferd_event_sub *sub = subscribe_bytes(inst, 1000, 1, 0, 2048);
    gate(true);
    publish("test_event", 0, false);
    WAIT_REC(rec.in_handle);
    for (int64_t i = 1; i <= 1000; i++)
        publish("test_event", i, false);
    inferd_event_sub_stats st = stats_of(sub);
    assert_true(st.queued > 1 && st.queued < 100); /* each event is some tens of bytes */
    assert_int_equal(st.dropped, 1000 - st.queued);
    size_t kept = st.queued;
    gate(false);
    WAIT_REC(rec.n_seen == 1 + kept);
    assert_int_equal(rec.seen[kept], (int64_t)kept); /* the oldest were kept, in order */
    inferd_events_unsubscribe(sub, 1000);
    inferd_instance_destroy(inst);
}

/* A failing batch is counted; the next batches still arrive. */
static void failing_handler_is_counted_and_goes_on(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    inferd_event_sub *sub = subscribe(inst, 100, 1, 0);
    publish("test_event", 0, true);
    WAIT_REC(rec.n_seen == 1);
    /* The count is updated right after handle returns: wait for it. */
    for (int i = 0; i < 10000 && stats_of(sub).failures < 1; i++)
        usleep(1000);
    assert_int_equal(stats_of(sub).failures, 1);
    publish("test_event", 1, false);
    publish("test_event", 2, true);
    publish("test_event", 3, false);
    WAIT_REC(rec.n_seen == 4);
    assert_int_equal(rec.seen[3], 3);
    for (int i = 0; i < 10000 && stats_of(sub).failures < 2; i++)
        usleep(1000);
    inferd_event_sub_stats st = stats_of(sub);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.delivered, 4);
    assert_int_equal(st.dropped, 0);
    inferd_events_unsubscribe(sub, 1000);
    inferd_instance_destroy(inst);
}

/* Unsubscribing hands over what is queued before it returns. */
static void unsubscribe_drains_the_queue(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    /* A long flush: without the drain, the last events would wait 60 s. */
    inferd_event_sub *sub = subscribe(inst, 1000, 8, 60000);
    for (int64_t i = 0; i < 100; i++)
        publish("test_event", i, false);
    inferd_events_unsubscribe(sub, 10000);
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.n_seen, 100);
    assert_int_equal(rec.seen[99], 99);
    pthread_mutex_unlock(&rec.mu);
    inferd_instance_destroy(inst);
}

typedef struct unsub_arg {
    inferd_event_sub *sub;
    uint64_t deadline_ms;
} unsub_arg;
static void *unsubscribe_thread(void *arg)
{
    unsub_arg *a = arg;
    inferd_events_unsubscribe(a->sub, a->deadline_ms);
    return NULL;
}
static bool sub_listed_cb_found;
static void find_test_event(void *ctx, const inferd_event_sub_stats *s)
{
    if (strcmp(s->event, "test_event") == 0)
        sub_listed_cb_found = true;
}
static bool subscriber_listed(void)
{
    sub_listed_cb_found = false;
    inferd_events_foreach(find_test_event, NULL);
    return sub_listed_cb_found;
}

/* Past its deadline, unsubscribing drops what is left instead of handing it
 * over (a stuck handler is waited for, but starts nothing more). */
static void unsubscribe_deadline_drops_the_rest(void **state)
{
    inferd_instance *inst = instance("test_recorder");
    inferd_event_sub *sub = subscribe(inst, 100, 1, 0);
    gate(true);
    publish("test_event", 0, false);
    WAIT_REC(rec.in_handle);
    for (int64_t i = 1; i <= 20; i++)
        publish("test_event", i, false);
    pthread_t t;
    unsub_arg a = {sub, 0};
    assert_int_equal(pthread_create(&t, NULL, unsubscribe_thread, &a), 0);
    /* The subscriber leaves the list first, then is told to stop at once;
     * give that a moment before the handler returns. */
    for (int i = 0; i < 10000 && subscriber_listed(); i++)
        usleep(1000);
    assert_false(subscriber_listed());
    usleep(100 * 1000);
    gate(false);
    pthread_join(t, NULL);
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.n_seen, 1); /* only the one that was in the handler */
    pthread_mutex_unlock(&rec.mu);
    inferd_instance_destroy(inst);
}

/* Every subscriber of a name gets every event (its own copy); a subscriber
 * of another name gets none; a name nobody listens to is counted. */
static void subscribers_get_their_names_only(void **state)
{
    inferd_instance *a = instance("test_recorder"), *b = instance("test_other"),
                    *c = instance("test_unrelated");
    inferd_event_sub *sa = subscribe(a, 100, 10, 1), *sb = subscribe(b, 100, 10, 1),
                     *sc = subscribe(c, 100, 10, 1);
    for (int64_t i = 0; i < 30; i++)
        publish("test_event", i, false);
    WAIT_REC(rec.n_seen == 30 && other_seen == 30);
    uint64_t before = inferd_events_unrouted();
    publish("nobody_listens", 0, false);
    assert_int_equal(inferd_events_unrouted(), before + 1);
    inferd_error err = {0};
    assert_int_equal(inferd_event_publish(NULL, inferd_value_null(), &err), INFERD_EINVAL);
    assert_contains(err.message, "needs a name");
    inferd_events_unsubscribe(sc, 1000);
    inferd_events_unsubscribe(sb, 1000);
    inferd_events_unsubscribe(sa, 1000);
    assert_int_equal(unrelated_seen, 0);
    inferd_instance_destroy(c);
    inferd_instance_destroy(b);
    inferd_instance_destroy(a);
}

static void subscribe_refuses_bad_input(void **state)
{
    inferd_instance *fn = instance("test_timer_owner");
    inferd_event_sub_config cfg = {10, 1, 0, 0};
    inferd_event_sub *sub = NULL;
    inferd_error err = {0};
    assert_int_equal(inferd_events_subscribe(fn, &cfg, &sub, &err), INFERD_EINVAL);
    assert_contains(err.message, "test_timer_owner is not an event component");
    inferd_instance_destroy(fn);
    inferd_instance *ev = instance("test_recorder");
    cfg.queue_size = 0;
    assert_int_equal(inferd_events_subscribe(ev, &cfg, &sub, &err), INFERD_EINVAL);
    assert_contains(err.message, "queue_size and max_batch must be at least 1");
    inferd_instance_destroy(ev);
}

/* ---- timers ------------------------------------------------------------------- */

static ticker *new_ticker(void)
{
    ticker *t = calloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    return t;
}

static void free_ticker(ticker *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void wait_ticks(ticker *t, int n)
{
    struct timespec until = deadline_in(10);
    pthread_mutex_lock(&t->mu);
    while (t->ticks < n)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &until) != 0) {
            pthread_mutex_unlock(&t->mu);
            fail_msg("timer: %d ticks after 10 s, want %d", t->ticks, n);
        }
    pthread_mutex_unlock(&t->mu);
}

static int ticks_of(ticker *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->ticks;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static void timer_fires_repeatedly_until_cancelled(void **state)
{
    inferd_instance *inst = instance("test_timer_owner");
    ticker *t = new_ticker();
    inferd_error err = {0};
    assert_int_equal(inferd_timer_start(inst, 3, tick, t, &t->id, &err), INFERD_OK);
    assert_true(t->id != 0);
    wait_ticks(t, 5);
    inferd_timer_cancel(inst, t->id);
    int after = ticks_of(t);
    usleep(50 * 1000); /* ~16 intervals: none may come */
    assert_int_equal(ticks_of(t), after);
    inferd_instance_destroy(inst);
    free_ticker(t);
}

static void timer_cancelled_from_its_callback(void **state)
{
    inferd_instance *inst = instance("test_timer_owner");
    ticker *t = new_ticker();
    t->cancel_at = 2;
    inferd_error err = {0};
    assert_int_equal(inferd_timer_start(inst, 2, tick, t, &t->id, &err), INFERD_OK);
    wait_ticks(t, 2);
    usleep(50 * 1000);
    assert_int_equal(ticks_of(t), 2);
    inferd_instance_destroy(inst);
    free_ticker(t);
}

/* A cancel returns only after a running callback of that timer has. */
static void cancel_waits_for_a_running_callback(void **state)
{
    inferd_instance *inst = instance("test_timer_owner");
    ticker *t = new_ticker();
    t->sleep_ms = 100;
    inferd_error err = {0};
    assert_int_equal(inferd_timer_start(inst, 1, tick, t, &t->id, &err), INFERD_OK);
    wait_ticks(t, 1); /* the callback is sleeping now (it set ticks first) */
    inferd_timer_cancel(inst, t->id);
    pthread_mutex_lock(&t->mu);
    assert_false(t->in_callback);
    pthread_mutex_unlock(&t->mu);
    inferd_instance_destroy(inst);
    free_ticker(t);
}

/* Destroying an instance cancels its timers before its deinit: no callback
 * runs into a torn-down instance, even one that was running meanwhile. */
static void destroying_the_instance_cancels_its_timers(void **state)
{
    ticker *t = new_ticker();
    t->sleep_ms = 20;
    fn_ticker = t;
    inferd_instance *inst = instance("test_timer_owner"); /* its init starts the timer */
    fn_ticker = NULL;
    wait_ticks(t, 3);
    inferd_instance_destroy(inst);
    int after = ticks_of(t);
    usleep(50 * 1000);
    assert_int_equal(ticks_of(t), after);
    assert_true(t->torn_down);
    assert_false(t->ran_after_teardown);
    assert_false(t->in_callback);
    free_ticker(t);
}

static void timer_refuses_bad_input(void **state)
{
    inferd_instance *inst = instance("test_timer_owner");
    uint64_t id = 0;
    inferd_error err = {0};
    assert_int_equal(inferd_timer_start(inst, 0, tick, NULL, &id, &err), INFERD_EINVAL);
    assert_contains(err.message, "interval >= 1 ms");
    assert_int_equal(inferd_timer_start(inst, 10, NULL, NULL, &id, &err), INFERD_EINVAL);
    inferd_timer_cancel(inst, 987654); /* unknown: nothing happens */
    inferd_instance_destroy(inst);
}

int main(void)
{
    alarm(120); /* a hang (a publish that blocked, a deadlocked cancel) fails the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(batches_arrive_in_order_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(stuck_handler_drops_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_bounded_in_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_handler_is_counted_and_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(unsubscribe_drains_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(unsubscribe_deadline_drops_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(subscribers_get_their_names_only, setup, teardown),
        cmocka_unit_test_setup_teardown(subscribe_refuses_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(timer_fires_repeatedly_until_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(timer_cancelled_from_its_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_waits_for_a_running_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(destroying_the_instance_cancels_its_timers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(timer_refuses_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
