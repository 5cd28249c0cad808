/* test_batcher.c: the host's estimator batcher (src/estimators) with a
 * recording estimator registered here: every batch it is handed stays within
 * the model's batch limit (inferd_estimator_limit_batch), maxBatch and
 * maxBatchBytes (one image larger than the bound still runs, alone); an idle
 * worker takes an item at once (no delay wait is counted, and an item's
 * queue time is far below maxDelayUs's scale) while maxDelayUs > 0 does
 * wait and is counted; items that queued while the workers were busy are
 * grouped. The recorder holds each batch at a gate the test opens, so what
 * queues meanwhile is decided by the test, not by timing. */
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

#include "estimators/estimators.h"
#include "inferd/config.h"

/* ---- the recording estimator --------------------------------------------------------- */

#define MAX_BATCHES 256

static struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t n_batches;
    size_t items[MAX_BATCHES];
    size_t bytes[MAX_BATCHES];
    size_t running;       /* batches inside estimate_batch now */
    bool gate_closed;     /* estimate_batch waits while true */
} rec = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, {0}, 0, false};

static const inferd_prop_spec rec_props[] = {
    INFERD_PROP_UINT("modelBatch", "the batch limit init declares (0: none)", 0, 0, 1024),
    INFERD_PROP_END,
};

static inferd_status rec_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    inferd_estimator_limit_batch(self, (size_t)inferd_props_int(p, "modelBatch"));
    return INFERD_OK;
}

static inferd_status rec_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err)
{
    size_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        const inferd_image *img = inferd_estimate_image(items[k]);
        bytes += (size_t)img->width * img->height * 3 * sizeof(float);
    }
    pthread_mutex_lock(&rec.lock);
    if (rec.n_batches < MAX_BATCHES) {
        rec.items[rec.n_batches] = n;
        rec.bytes[rec.n_batches] = bytes;
    }
    rec.n_batches++;
    rec.running++;
    pthread_cond_broadcast(&rec.cond);
    while (rec.gate_closed)
        pthread_cond_wait(&rec.cond, &rec.lock);
    rec.running--;
    pthread_mutex_unlock(&rec.lock);
    for (size_t k = 0; k < n; k++) {
        inferd_value *r = inferd_value_object();
        inferd_value_object_set(r, "batch", inferd_value_int((int64_t)n), NULL);
        inferd_estimate_done(items[k], r, NULL);
    }
    return INFERD_OK;
}

static const inferd_component rec_components[] = {
    INFERD_ESTIMATOR("test_recorder", "testEstimator", rec_props, NULL, rec_init, rec_batch, NULL),
};
static const inferd_plugin rec_plugin = {
    INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin),
    "test_batcher", "1.0", NULL, rec_components, 1};

static void gate(bool closed)
{
    pthread_mutex_lock(&rec.lock);
    rec.gate_closed = closed;
    pthread_cond_broadcast(&rec.cond);
    pthread_mutex_unlock(&rec.lock);
}

/* Waits until `running` batches are held at the gate. */
static void wait_running(size_t running)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&rec.lock);
    while (rec.running != running)
        if (pthread_cond_timedwait(&rec.cond, &rec.lock, &deadline) != 0)
            break;
    size_t now = rec.running;
    pthread_mutex_unlock(&rec.lock);
    if (now != running)
        fail_msg("%zu batches running after 30 s, want %zu", now, running);
}

/* ---- submitting ------------------------------------------------------------------------ */

typedef struct done {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t left, failed;
    uint64_t max_queue_us;
} done;

static void on_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                    const inferd_estimate_timing *t)
{
    done *d = ctx;
    inferd_value_free(result);
    pthread_mutex_lock(&d->lock);
    d->left--;
    d->failed += result == NULL;
    if (t->queue_us > d->max_queue_us)
        d->max_queue_us = t->queue_us;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Submits n images of w x h each as one request (the items queue together). */
static void submit(inferd_estimators *est, done *d, size_t n, uint32_t w, uint32_t h)
{
    inferd_estimate_input in[64];
    assert_true(n <= 64);
    for (size_t k = 0; k < n; k++) {
        in[k] = (inferd_estimate_input){0};
        assert_int_equal(inferd_image_new(INFERD_PIXEL_RGB8, w, h, &in[k].image, NULL), INFERD_OK);
    }
    pthread_mutex_lock(&d->lock);
    d->left += n;
    pthread_mutex_unlock(&d->lock);
    inferd_error err = {0};
    if (inferd_estimators_submit(est, 0, in, n, NULL, on_done, d, &err) != INFERD_OK)
        fail_msg("submit: %s", err.message);
}

static void wait_done(done *d)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&d->lock);
    while (d->left > 0)
        if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) != 0)
            break;
    size_t left = d->left;
    pthread_mutex_unlock(&d->lock);
    if (left)
        fail_msg("%zu items not completed within 30 s", left);
    assert_int_equal(d->failed, 0);
}

static inferd_registry *reg;

static inferd_estimators *start(const char *settings)
{
    rec.n_batches = 0;
    rec.gate_closed = false;
    char *const no_env[] = {NULL};
    inferd_config *cfg = NULL;
    inferd_error err = {0};
    char json[512];
    snprintf(json, sizeof json, "{\"testEstimator\": %s}", settings);
    if (inferd_config_load(NULL, no_env, &cfg, &err) != INFERD_OK ||
        inferd_config_set(cfg, "estimators", json, "test", &err) != INFERD_OK)
        fail_msg("config: %s", err.message);
    inferd_estimators *est = NULL;
    inferd_status st = inferd_estimators_new(reg, cfg, &est, &err);
    inferd_config_free(cfg);
    if (st != INFERD_OK)
        fail_msg("estimators: %s", err.message);
    return est;
}

static int64_t described(inferd_estimators *est, const char *key)
{
    inferd_value *d = inferd_estimators_describe(est, 0);
    int64_t v = inferd_value_int_or(inferd_value_object_get(d, key), -1);
    inferd_value_free(d);
    return v;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Large images: no batch holds more than maxBatchBytes of input, except a
 * single image that is larger by itself, which runs alone. */
static void bytes_bound(void **state)
{
    /* 1 MiB of input a batch: 200x200 images are 480,000 bytes each. */
    inferd_estimators *est = start("{\"maxBatch\": 64, \"maxBatchBytes\": 1048576, "
                                   "\"workers\": 1}");
    done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    gate(true);
    submit(est, &d, 1, 16, 16); /* takes the worker and holds it at the gate */
    wait_running(1);
    submit(est, &d, 7, 200, 200);
    submit(est, &d, 1, 640, 480); /* 3,686,400 bytes: more than the bound alone */
    submit(est, &d, 3, 200, 200);
    gate(false);
    wait_done(&d);
    /* In queue order: the gate's | 2, 2, 2, 1 (the next is too large to
     * join) | the large one alone | 2, 1. */
    static const size_t want_items[] = {1, 2, 2, 2, 1, 1, 2, 1};
    assert_int_equal(rec.n_batches, 8);
    for (size_t b = 0; b < rec.n_batches; b++) {
        assert_int_equal(rec.items[b], want_items[b]);
        if (rec.items[b] > 1 && rec.bytes[b] > 1048576)
            fail_msg("batch %zu: %zu images, %zu bytes > maxBatchBytes", b, rec.items[b],
                     rec.bytes[b]);
    }
    /* The large image ran alone. */
    bool large_alone = false;
    for (size_t b = 0; b < rec.n_batches; b++)
        large_alone |= rec.bytes[b] == 640u * 480 * 12 && rec.items[b] == 1;
    assert_true(large_alone);
    inferd_estimators_free(est);
}

/* A model fixed at batch 1 is never given two images, whatever maxBatch
 * says; a limit of 4 caps maxBatch 8; describe says both. */
static void model_limit(void **state)
{
    static const struct { const char *settings; size_t limit, effective; } cases[] = {
        {"{\"maxBatch\": 8, \"modelBatch\": 1, \"workers\": 1}", 1, 1},
        {"{\"maxBatch\": 8, \"modelBatch\": 4, \"workers\": 1}", 4, 4},
        {"{\"maxBatch\": 2, \"modelBatch\": 4, \"workers\": 1}", 4, 2},
        {"{\"maxBatch\": 8, \"workers\": 1}", 0, 8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        inferd_estimators *est = start(cases[c].settings);
        assert_int_equal(described(est, "modelBatch"), (int64_t)cases[c].limit);
        assert_int_equal(described(est, "maxBatch"), (int64_t)cases[c].effective);
        done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
        gate(true);
        submit(est, &d, 1, 8, 8);
        wait_running(1);
        for (int k = 0; k < 5; k++)
            submit(est, &d, 3, 8, 8); /* 15 images queue while the worker is busy */
        gate(false);
        wait_done(&d);
        size_t most = 0, total = 0;
        for (size_t b = 0; b < rec.n_batches; b++) {
            most = rec.items[b] > most ? rec.items[b] : most;
            total += rec.items[b];
        }
        assert_int_equal(total, 16);
        /* Everything that queued was grouped as far as the limit allows. */
        assert_int_equal(most, cases[c].effective);
        assert_int_equal(rec.n_batches, 1 + (15 + cases[c].effective - 1) / cases[c].effective);
        inferd_estimators_free(est);
    }
}

/* maxDelayUs 0 (the default): an item that finds a worker idle starts at
 * once; no wait is counted. maxDelayUs > 0: the worker waits for more and
 * counts it. */
static void no_waiting_for_nothing(void **state)
{
    inferd_estimators *est = start("{\"workers\": 1}");
    assert_int_equal(described(est, "maxDelayUs"), 0);
    done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    for (int k = 0; k < 50; k++) { /* one connection: one request at a time */
        submit(est, &d, 1, 8, 8);
        wait_done(&d);
    }
    inferd_estimator_stats st;
    inferd_estimators_stats(est, 0, &st);
    assert_int_equal(st.batches, 50);
    assert_int_equal(st.delay_waits, 0);
    inferd_estimators_free(est);

    est = start("{\"workers\": 1, \"maxDelayUs\": 20000}");
    done d2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    submit(est, &d2, 1, 8, 8);
    wait_done(&d2);
    inferd_estimators_stats(est, 0, &st);
    assert_int_equal(st.delay_waits, 1);
    /* It waited for the delay: its queue time is the delay (give or take). */
    assert_true(d2.max_queue_us >= 15000);
    inferd_estimators_free(est);
}

/* Bad batcher settings are refused at start, naming the key. */
static void refusals(void **state)
{
    static const struct { const char *settings, *needle; } cases[] = {
        {"{\"maxBatchBytes\": 0}", "maxBatchBytes"},
        {"{\"maxBatch\": 0}", "maxBatch"},
        {"{\"workers\": 65}", "workers"},
        {"{\"maxDelayUs\": -1}", "maxDelayUs"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *const no_env[] = {NULL};
        inferd_config *cfg = NULL;
        inferd_error err = {0};
        char json[256];
        snprintf(json, sizeof json, "{\"testEstimator\": %s}", cases[c].settings);
        assert_int_equal(inferd_config_load(NULL, no_env, &cfg, &err), INFERD_OK);
        assert_int_equal(inferd_config_set(cfg, "estimators", json, "test", &err), INFERD_OK);
        inferd_estimators *est = NULL;
        assert_int_not_equal(inferd_estimators_new(reg, cfg, &est, &err), INFERD_OK);
        assert_null(est);
        assert_contains(err.message, "estimators.testEstimator");
        assert_contains(err.message, cases[c].needle);
        inferd_config_free(cfg);
    }
}

static int setup(void **state)
{
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_add(reg, &rec_plugin, "test_batcher.c", &err) != INFERD_OK) {
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_bound),
        cmocka_unit_test(model_limit),
        cmocka_unit_test(no_waiting_for_nothing),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
