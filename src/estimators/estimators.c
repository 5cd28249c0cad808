/* estimators/estimators.c: named estimators, their instances and their
 * dynamic batchers; the estimate items plugins see (inferd_estimate_*).
 *
 * Owns one entry per broker name: the component chosen for it (a
 * replacement from a plugin that is not built in wins over the built-in),
 * its instance, and its batcher (a queue of items plus worker threads).
 *
 * The batcher follows the model and never waits for nothing (as Triton's
 * dynamic batcher does by default): an idle worker takes what is queued at
 * once, so only images that queued while every worker was busy are grouped.
 * A batch holds at most the model's batch limit (the instance's
 * inferd_estimator_limit_batch: 1 for a model fixed at batch 1), maxBatch
 * items, and maxBatchBytes of model input (one larger item still runs
 * alone). maxDelayUs > 0 is an opt-in wait for a fuller batch.
 *
 * An item has two references: the worker's (dropped when estimate_batch has
 * returned) and the completion's (dropped by inferd_estimate_done). So a
 * plugin may complete an item later from its own thread, and the worker can
 * still fail the items a failing estimate_batch left open.
 */
#include "estimators/estimators.h"
#include "core/build_value.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inferd/log.h"
#include "plugin/internal.h"

#define LOG "estimator"

typedef struct est_entry est_entry;

/* The instance serving an entry, counted by the batches running on it: a
 * reload puts a new one in, and the old one goes when its last batch has
 * returned. users is under the entry's lock. */
typedef struct est_inst {
    inferd_instance *inst;              /* owned */
    const inferd_component *comp;       /* borrowed: what inst is of */
    unsigned users;
} est_inst;

/* One submit: its callback and its validated options, shared by its items. */
typedef struct job {
    inferd_estimate_cb cb;
    void *ctx;
    inferd_props *options;      /* owned */
    atomic_size_t open;         /* items not yet completed */
} job;

struct inferd_estimate {
    est_entry *owner;
    job *job;
    size_t index;
    inferd_image *image;        /* owned */
    bool has_area;
    inferd_rect area;
    size_t bytes;               /* what it adds to a batch's model input (item_bytes) */
    uint64_t submitted_us, started_us;
    atomic_int refs;
    atomic_bool done;
    inferd_estimate *next;      /* queue link */
};

struct est_entry {
    char *name;                         /* owned: the broker name */
    const inferd_component *comp;       /* borrowed from its plugin */
    const inferd_plugin_info *plugin;   /* borrowed from the registry */
    bool builtin, replaces;
    est_inst *cur;                      /* owned, under lock: what new batches run on */
    inferd_registry *reg;               /* borrowed: a reload makes the instance again */
    const inferd_config *cfg;           /* borrowed: a rebind configures again */
    inferd_value *given;                /* owned: estimators.<name> as configured (or NULL) */
    inferd_value *props;                /* owned: the instance's properties */
    const char *device_class;           /* "cpu" or "gpu" (static) */
    size_t max_batch;                   /* effective: min(config maxBatch, model_batch) */
    size_t batch_cap;                   /* the workers' batch arrays: max_batch at start */
    size_t config_batch, model_batch;   /* maxBatch as configured; the model's (0: any) */
    size_t workers, max_queue, max_batch_bytes;
    uint64_t max_delay_us;
    const inferd_prop_spec *options;    /* borrowed, never NULL */

    pthread_mutex_t lock;               /* guards the queue, stopping and stats */
    pthread_cond_t cond;
    inferd_estimate *head, *tail;
    size_t queued, queued_bytes;
    bool stopping;
    pthread_t *threads;                 /* owned */
    size_t n_threads;
    inferd_estimator_stats stats;
};

struct inferd_estimators {
    est_entry **e;                      /* owned, in name order */
    size_t n;
};

static const inferd_prop_spec no_options[] = {INFERD_PROP_END};

/* ---- items (the ABI accessors) --------------------------------------------- */

const inferd_image *inferd_estimate_image(const inferd_estimate *item) { return item->image; }

int inferd_estimate_area(const inferd_estimate *item, inferd_rect *area)
{
    if (item->has_area && area)
        *area = item->area;
    return item->has_area ? 1 : 0;
}

const inferd_props *inferd_estimate_options(const inferd_estimate *item)
{
    return item->job->options;
}

static void job_release(job *j)
{
    inferd_props_free(j->options);
    free(j);
}

static void item_unref(inferd_estimate *item)
{
    if (atomic_fetch_sub(&item->refs, 1) != 1)
        return;
    inferd_image_free(item->image);
    free(item);
}

static void bucket_add(inferd_estimator_stats *s, size_t n)
{
    size_t b = 0;
    for (size_t lim = 1; n > lim && b < 7; lim *= 2)
        b++;
    s->batch_hist[b]++;
}

/* A failure on the plugin's side (not the request's): counted for the
 * plugin and published as plugin_failed. */
static void plugin_failed(const est_entry *e, const char *message)
{
    inferd__plugin_count_error(e->plugin);
    inferd_value *ev = inferd_value_object();
    inferd__put(ev, "plugin", inferd_value_string(e->plugin->name), NULL);
    inferd__put(ev, "component", inferd_value_string(e->comp->name), NULL);
    inferd__put(ev, "message", inferd_value_string(message), NULL);
    inferd_event_publish("plugin_failed", ev, NULL);
}

static bool plugin_side(inferd_status st)
{
    return st == INFERD_EPLUGIN || st == INFERD_EBACKEND || st == INFERD_EINTERNAL;
}

static void complete(inferd_estimate *item, inferd_value *result, const inferd_error *err,
                     bool count_failure);

void inferd_estimate_done(inferd_estimate *item, inferd_value *result, const inferd_error *err)
{
    complete(item, result, err, true);
}

/* count_failure: an item the plugin failed is its error (not when the host
 * fails the items of a batch whose failure it has already counted). */
static void complete(inferd_estimate *item, inferd_value *result, const inferd_error *err,
                     bool count_failure)
{
    if (!item)
        return;
    if (atomic_exchange(&item->done, true)) {
        inferd_log_error(LOG, "%s: an item was completed twice (a bug in %s); the second "
                              "result is dropped", item->owner->name, item->owner->plugin->name);
        inferd_value_free(result);
        return;
    }
    est_entry *e = item->owner;
    inferd_estimate_timing t = {.queue_us = item->started_us - item->submitted_us,
                                .run_us = inferd__now_us() - item->started_us};
    inferd_error fallback = {0};
    if (!result && !err)
        err = &fallback, inferd_error_set(&fallback, INFERD_EPLUGIN, "%s returned no result",
                                          e->comp->name);
    pthread_mutex_lock(&e->lock);
    e->stats.items++;
    if (!result)
        e->stats.failed++;
    pthread_mutex_unlock(&e->lock);
    if (!result && count_failure && plugin_side(err->code))
        plugin_failed(e, err->message);
    job *j = item->job;
    j->cb(j->ctx, item->index, result, result ? NULL : err, &t);
    if (atomic_fetch_sub(&j->open, 1) == 1)
        job_release(j);
    item_unref(item);
}

/* ---- batcher ------------------------------------------------------------------ */

static void est_inst_free(est_inst *ei)
{
    if (ei)
        inferd_instance_destroy(ei->inst);
    free(ei);
}

/* A batch is done with ei (under e->lock): an instance a reload put out
 * goes with its last batch. Returns what to free once unlocked, or NULL. */
static est_inst *inst_release(est_entry *e, est_inst *ei)
{
    return --ei->users == 0 && ei != e->cur ? ei : NULL;
}

static void run_batch(est_entry *e, est_inst *ei, inferd_estimate **items, size_t n)
{
    const inferd_estimator_ops *ops = ei->comp->ops;
    uint64_t t0 = inferd__now_us();
    for (size_t i = 0; i < n; i++)
        items[i]->started_us = t0;
    inferd_error err = {0};
    inferd_status st = ops->estimate_batch(ei->inst, items, n, &err);
    if (st != INFERD_OK) {
        if (!err.message[0])
            inferd_error_set(&err, st, "no message");
        inferd_error_prefix(&err, "estimator %s (%s)", e->name, ei->comp->name);
        inferd_log_warn(LOG, "%s", err.message);
        plugin_failed(e, err.message);
    }
    for (size_t i = 0; i < n; i++) {
        /* Read done before dropping our reference: after it the item may be gone. */
        if (st != INFERD_OK && !atomic_load(&items[i]->done))
            complete(items[i], NULL, &err, false);
        item_unref(items[i]);
    }
}

/* Moves the next batch off the queue into batch[]: at least one item, then
 * while the batch stays within max_batch items and max_batch_bytes. Caller
 * holds the lock and has checked the queue is not empty. */
static size_t take_batch(est_entry *e, inferd_estimate **batch)
{
    size_t n = 0, bytes = 0;
    while (e->head && n < e->max_batch &&
           (n == 0 || bytes + e->head->bytes <= e->max_batch_bytes)) {
        bytes += e->head->bytes;
        batch[n++] = e->head;
        e->head = e->head->next;
    }
    if (!e->head)
        e->tail = NULL;
    e->queued -= n;
    e->queued_bytes -= bytes;
    return n;
}

/* Whether the queue already holds a full batch (nothing to wait for). */
static bool batch_full(const est_entry *e)
{
    return e->queued >= e->max_batch || e->queued_bytes >= e->max_batch_bytes;
}

static void *worker(void *arg)
{
    est_entry *e = arg;
    inferd_estimate **batch = malloc(e->max_batch * sizeof *batch);
    if (!batch) {
        inferd_log_error(LOG, "%s: out of memory starting a worker", e->name);
        return NULL;
    }
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && e->queued == 0)
            pthread_cond_wait(&e->cond, &e->lock);
        if (e->queued == 0)
            break; /* stopping, and nothing left */
        /* Opt-in (maxDelayUs > 0): wait up to max_delay after the oldest item
         * for the batch to fill. With 0 an idle worker never waits. */
        if (e->max_delay_us > 0 && !e->stopping && !batch_full(e)) {
            uint64_t deadline = e->head->submitted_us + e->max_delay_us;
            if (inferd__now_us() < deadline)
                e->stats.delay_waits++;
            while (!e->stopping && !batch_full(e)) {
                if (inferd__now_us() >= deadline)
                    break;
                struct timespec ts = inferd__abs_us(deadline);
                pthread_cond_timedwait(&e->cond, &e->lock, &ts);
                if (e->queued == 0)
                    break; /* another worker took them */
            }
            if (e->queued == 0)
                continue;
        }
        size_t n = take_batch(e, batch);
        e->stats.batches++;
        e->stats.batched += n;
        bucket_add(&e->stats, n);
        est_inst *use = e->cur;
        use->users++;
        pthread_mutex_unlock(&e->lock);
        run_batch(e, use, batch, n);
        pthread_mutex_lock(&e->lock);
        est_inst *gone = inst_release(e, use);
        if (gone) { /* replaced while this batch ran: its last batch destroys it */
            pthread_mutex_unlock(&e->lock);
            est_inst_free(gone);
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    free(batch);
    return NULL;
}

/* ---- submit ------------------------------------------------------------------ */

/* An item's share of a batch's model input: the pixels that run through the
 * model (the detect area, or the whole image) as float32, 3 channels: what
 * the built-in estimators and most vision models take. maxBatchBytes bounds
 * the sum of these over a batch. */
static size_t item_bytes(const inferd_image *img, const inferd_rect *area, bool has_area)
{
    size_t w = has_area ? (size_t)area->width : img->width;
    size_t h = has_area ? (size_t)area->height : img->height;
    return w * h * 3 * sizeof(float);
}

inferd_status inferd_estimators_submit(inferd_estimators *est, size_t i,
                                       inferd_estimate_input *inputs, size_t n,
                                       const inferd_value *options, inferd_estimate_cb cb,
                                       void *ctx, inferd_error *err)
{
    if (i >= est->n || n == 0 || !cb)
        return inferd_error_set(err, INFERD_EINVAL, "submit needs an estimator, items and a "
                                                    "callback");
    est_entry *e = est->e[i];
    for (size_t k = 0; k < n; k++) {
        const inferd_image *img = inputs[k].image;
        const inferd_rect *a = &inputs[k].area;
        if (!img)
            return inferd_error_set(err, INFERD_EINVAL, "image %zu: missing", k);
        if (inputs[k].has_area &&
            (a->x < 0 || a->y < 0 || a->width < 1 || a->height < 1 ||
             a->x + a->width > (int64_t)img->width || a->y + a->height > (int64_t)img->height))
            return inferd_error_set(err, INFERD_EINVAL,
                                    "image %zu: detect area {x: %lld, y: %lld, width: %lld, "
                                    "height: %lld} is not inside the %ux%u image (width and "
                                    "height must be >= 1)", k, (long long)a->x, (long long)a->y,
                                    (long long)a->width, (long long)a->height, img->width,
                                    img->height);
    }
    job *j = calloc(1, sizeof *j);
    inferd_estimate **items = calloc(n, sizeof *items);
    if (!j || !items) {
        free(j);
        free(items);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    char owner[200];
    snprintf(owner, sizeof owner, "estimator %s", e->name);
    pthread_mutex_lock(&e->lock); /* a rebind changes them */
    inferd_status st = inferd_props_validate(e->options, owner, options, &j->options, err);
    pthread_mutex_unlock(&e->lock);
    /* Any bad option (unknown, wrong type, out of range) is bad input. */
    if (st == INFERD_ENOTFOUND || st == INFERD_ETYPE || st == INFERD_ERANGE) {
        st = INFERD_EINVAL;
        if (err)
            err->code = st;
    }
    for (size_t k = 0; st == INFERD_OK && k < n; k++)
        if (!(items[k] = calloc(1, sizeof **items)))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st != INFERD_OK) {
        for (size_t k = 0; k < n; k++)
            free(items[k]);
        free(items);
        job_release(j);
        return st;
    }
    j->cb = cb;
    j->ctx = ctx;
    atomic_init(&j->open, n);
    uint64_t t = inferd__now_us();
    for (size_t k = 0; k < n; k++) {
        inferd_estimate *it = items[k];
        it->owner = e;
        it->job = j;
        it->index = k;
        it->has_area = inputs[k].has_area;
        it->area = inputs[k].area;
        it->bytes = item_bytes(inputs[k].image, &inputs[k].area, inputs[k].has_area);
        it->submitted_us = t;
        atomic_init(&it->refs, 2);
        atomic_init(&it->done, false);
        if (k + 1 < n)
            it->next = items[k + 1];
    }
    pthread_mutex_lock(&e->lock);
    if (e->stopping || e->queued + n > e->max_queue) {
        bool stopping = e->stopping;
        if (!stopping)
            e->stats.rejected += n;
        size_t queued = e->queued;
        pthread_mutex_unlock(&e->lock);
        for (size_t k = 0; k < n; k++)
            free(items[k]);
        free(items);
        job_release(j);
        if (stopping)
            return inferd_error_set(err, INFERD_ESTATE, "estimator %s is stopping", e->name);
        return inferd_error_set(err, INFERD_EBUSY,
                                "estimator %s is overloaded: %zu items queued (maxQueue %zu); "
                                "retry later", e->name, queued, e->max_queue);
    }
    for (size_t k = 0; k < n; k++) {
        items[k]->image = inputs[k].image; /* taken only now, when nothing can fail */
        inputs[k].image = NULL;
    }
    if (e->tail)
        e->tail->next = items[0];
    else
        e->head = items[0];
    e->tail = items[n - 1];
    e->queued += n;
    for (size_t k = 0; k < n; k++)
        e->queued_bytes += items[k]->bytes;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    free(items);
    return INFERD_OK;
}

/* ---- set-up -------------------------------------------------------------------- */

static const char *const device_classes[] = {"cpu", "gpu", "global", NULL};
/* The batcher's settings under estimators.<name>; other keys there are the
 * component's properties. */
static const inferd_prop_spec batcher_specs[] = {
    INFERD_PROP_ENUM("deviceClass", "cpu, gpu, or global (the daemon's device.class)", "global",
                     device_classes),
    INFERD_PROP_UINT("maxBatch", "most images in one model run (never more than the model's "
                     "batch dimension takes)", 8, 1, 1024),
    INFERD_PROP_UINT("maxBatchBytes", "most bytes of model input (width x height x 3 x 4 per "
                     "image) in one model run; one larger image still runs alone", 2097152, 1,
                     INT64_MAX),
    INFERD_PROP_UINT("maxDelayUs", "extra wait for a fuller batch after the first image (0: an "
                     "idle worker takes what is queued at once)", 0, 0, 10000000),
    INFERD_PROP_UINT("workers", "threads running this estimator's batches (0: one per core)", 1,
                     0, 64),
    INFERD_PROP_UINT("maxQueue", "images queued before requests get 503", 1024, 1, 1048576),
    {.name = "type", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "defines this name: the estimator family that serves it (density, "
                    "classify, segment, ...: `inferd plugin list`)"},
    INFERD_PROP_END,
};

/* workers 0: one per online core, so that a model fixed at batch 1 keeps
 * every core busy under concurrent requests. */
static size_t default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (size_t)n;
}

static bool is_batcher_key(const char *key)
{
    for (size_t i = 0; batcher_specs[i].name; i++)
        if (strcmp(batcher_specs[i].name, key) == 0)
            return true;
    return false;
}

static bool spec_declared(const inferd_prop_spec *specs, const char *name)
{
    for (size_t i = 0; specs && specs[i].name; i++)
        if (strcmp(specs[i].name, name) == 0)
            return true;
    return false;
}

static void entry_stop(est_entry *e)
{
    pthread_mutex_lock(&e->lock);
    if (e->stopping) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    e->stopping = true;
    inferd_estimate *rest = e->head;
    e->head = e->tail = NULL;
    e->queued = e->queued_bytes = 0;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    /* Fail what never started, then let running batches finish. */
    inferd_error stop = {0};
    inferd_error_set(&stop, INFERD_ESTATE, "estimator %s is stopping", e->name);
    while (rest) {
        inferd_estimate *next = rest->next;
        complete(rest, NULL, &stop, false);
        item_unref(rest); /* the worker's reference it never took */
        rest = next;
    }
    for (size_t t = 0; t < e->n_threads; t++)
        pthread_join(e->threads[t], NULL);
}

static void entry_free(est_entry *e)
{
    if (!e)
        return;
    entry_stop(e);
    free(e->threads);
    est_inst_free(e->cur);
    inferd_value_free(e->props);
    inferd_value_free(e->given);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e->name);
    free(e);
}

void inferd_estimators_stop(inferd_estimators *est)
{
    for (size_t i = 0; est && i < est->n; i++)
        entry_stop(est->e[i]);
}

void inferd_estimators_free(inferd_estimators *est)
{
    if (!est)
        return;
    for (size_t i = 0; i < est->n; i++)
        entry_free(est->e[i]);
    free(est->e);
    free(est);
}

/* Splits estimators.<name> into batcher settings and component properties,
 * resolving deviceClass "global" and filling gpuDeviceId. */
static inferd_status configure(est_entry *e, const inferd_component *comp,
                               const inferd_config *cfg, const inferd_value *given,
                               inferd_value **props_out, inferd_error *err)
{
    inferd_value *batcher = inferd_value_object(), *props = inferd_value_object();
    inferd_status st = (!batcher || !props) ? inferd_error_set(err, INFERD_ENOMEM, "out of memory")
                                            : INFERD_OK;
    const char *key;
    inferd_value *v;
    for (size_t k = 0; st == INFERD_OK && inferd_value_object_entry(given, k, &key, &v); k++)
        st = inferd_value_object_set(is_batcher_key(key) ? batcher : props, key,
                                     inferd_value_copy(v), err);
    char owner[200];
    snprintf(owner, sizeof owner, "config estimators.%s", e->name);
    inferd_props *b = NULL;
    if (st == INFERD_OK)
        st = inferd_props_validate(batcher_specs, owner, batcher, &b, err);
    if (st == INFERD_OK) {
        const char *dc = inferd_props_string(b, "deviceClass");
        if (strcmp(dc, "global") == 0)
            dc = inferd_config_string(cfg, "device.class");
        e->device_class = strcmp(dc, "gpu") == 0 ? "gpu" : "cpu";
        e->config_batch = (size_t)inferd_props_int(b, "maxBatch");
        e->max_batch_bytes = (size_t)inferd_props_int(b, "maxBatchBytes");
        e->max_delay_us = (uint64_t)inferd_props_int(b, "maxDelayUs");
        e->workers = (size_t)inferd_props_int(b, "workers");
        if (e->workers == 0)
            e->workers = default_workers();
        e->max_queue = (size_t)inferd_props_int(b, "maxQueue");
        if (spec_declared(comp->props, "deviceClass"))
            st = inferd_value_object_set(props, "deviceClass",
                                         inferd_value_string(e->device_class), err);
        if (st == INFERD_OK && spec_declared(comp->props, "gpuDeviceId") &&
            !inferd_value_object_get(props, "gpuDeviceId"))
            st = inferd_value_object_set(props, "gpuDeviceId",
                                         inferd_value_int(inferd_config_int(cfg, "device.gpu_id")),
                                         err);
    }
    inferd_props_free(b);
    inferd_value_free(batcher);
    if (st != INFERD_OK) {
        inferd_value_free(props);
        return st;
    }
    *props_out = props;
    return INFERD_OK;
}

static inferd_status entry_start(est_entry *e, inferd_registry *reg, const inferd_config *cfg,
                                 const inferd_value *settings, inferd_error *err)
{
    e->reg = reg;
    e->cfg = cfg;
    if (settings && !(e->given = inferd_value_copy(settings)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = configure(e, e->comp, cfg, settings, &e->props, err);
    if (st == INFERD_OK && !(e->cur = calloc(1, sizeof *e->cur)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK) {
        e->cur->comp = e->comp;
        st = inferd_instance_create(reg, e->comp->name, e->name, e->props, &e->cur->inst, err);
    }
    if (st != INFERD_OK)
        return st;
    /* The model decides: a batch never holds more than it takes. */
    e->model_batch = inferd__instance_batch_limit(e->cur->inst);
    e->max_batch = e->model_batch && e->model_batch < e->config_batch ? e->model_batch
                                                                       : e->config_batch;
    e->batch_cap = e->max_batch;
    if (!(e->threads = calloc(e->workers, sizeof *e->threads)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (; e->n_threads < e->workers; e->n_threads++) {
        int rc = pthread_create(&e->threads[e->n_threads], NULL, worker, e);
        if (rc != 0)
            return inferd_error_set(err, INFERD_EINTERNAL, "estimator %s: cannot start a worker: "
                                    "%s", e->name, strerror(rc));
    }
    char model_batch[32] = "any", device[64], why[512], runs[80] = "";
    if (e->model_batch)
        snprintf(model_batch, sizeof model_batch, "%zu", e->model_batch);
    inferd__instance_device(e->cur->inst, device, sizeof device, why, sizeof why);
    if (device[0])
        snprintf(runs, sizeof runs, ", runs on %s", device);
    inferd_log_info(LOG, "%s: %s (plugin %s%s), device %s%s, batch %zu (maxBatch %zu, model %s, "
                    "maxBatchBytes %zu), maxDelayUs %llu, workers %zu", e->name, e->comp->name,
                    e->plugin->name, e->replaces ? ", replacing the built-in" : "",
                    e->device_class, runs, e->max_batch, e->config_batch, model_batch,
                    e->max_batch_bytes, (unsigned long long)e->max_delay_us, e->workers);
    return INFERD_OK;
}

static int by_entry_name(const void *a, const void *b)
{
    return strcmp((*(est_entry *const *)a)->name, (*(est_entry *const *)b)->name);
}

/* A new entry serving name with comp. */
static inferd_status add_entry(inferd_estimators *est, const char *name,
                               const inferd_component *comp, const inferd_plugin_info *plugin,
                               inferd_error *err)
{
    est_entry *e = calloc(1, sizeof *e);
    est_entry **grown = realloc(est->e, (est->n + 1) * sizeof *grown);
    if (!e || !grown || !(e->name = strdup(name))) {
        free(e);
        if (grown)
            est->e = grown;
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    est->e = grown;
    e->comp = comp;
    e->plugin = plugin;
    e->builtin = inferd_plugin_is_builtin(plugin);
    pthread_mutex_init(&e->lock, NULL);
    inferd__cond_init(&e->cond);
    est->e[est->n++] = e;
    return INFERD_OK;
}

/* Adds comp under its broker name, or lets it replace the one there. */
static inferd_status consider(inferd_estimators *est, const inferd_component *comp,
                              const inferd_plugin_info *plugin, inferd_error *err)
{
    bool builtin = inferd_plugin_is_builtin(plugin);
    for (size_t i = 0; i < est->n; i++) {
        est_entry *e = est->e[i];
        if (strcmp(e->name, comp->broker_name) != 0)
            continue;
        if (builtin == e->builtin)
            return inferd_error_set(err, INFERD_EEXIST,
                                    "estimator %s: both %s (plugin %s) and %s (plugin %s) serve "
                                    "it; activate only one of them", e->name, e->comp->name,
                                    e->plugin->name, comp->name, plugin->name);
        if (!builtin) { /* the replacement takes over the name */
            e->comp = comp;
            e->plugin = plugin;
            e->builtin = false;
        }
        e->replaces = true;
        return INFERD_OK;
    }
    return add_entry(est, comp->broker_name, comp, plugin, err);
}

/* The family component called type, or NULL; names lists every family. */
static const inferd_component *find_family(inferd_registry *reg, const char *type,
                                           const inferd_plugin_info **plugin, char *names,
                                           size_t size)
{
    const inferd_component *found = NULL;
    size_t pos = 0;
    names[0] = '\0';
    for (size_t p = 0; p < inferd_registry_plugin_count(reg); p++) {
        const inferd_plugin_info *info = inferd_registry_plugin_at(reg, p);
        for (size_t c = 0; c < info->descriptor->n_components; c++) {
            const inferd_component *comp = inferd_plugin_component(info->descriptor, c);
            if (comp->kind != INFERD_KIND_ESTIMATOR || !(comp->flags & INFERD_COMPONENT_FAMILY))
                continue;
            if (pos < size)
                pos += (size_t)snprintf(names + pos, size - pos, "%s%s", pos ? ", " : "",
                                        comp->name);
            if (type && strcmp(comp->name, type) == 0 && !found) {
                found = comp;
                *plugin = info;
            }
        }
    }
    return found;
}

/* estimators.<key> = given: a setting of an estimator there is, or a new
 * name with its "type" (a family). Anything else is a typo: say so. */
static inferd_status define(inferd_estimators *est, inferd_registry *reg, const char *key,
                            const inferd_value *given, inferd_error *err)
{
    if (!inferd_value_is(given, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_ETYPE, "config estimators.%s: must be an object", key);
    const inferd_value *tv = inferd_value_object_get(given, "type");
    const char *type = inferd_value_string_or(tv, NULL);
    if (tv && !type)
        return inferd_error_set(err, INFERD_ETYPE, "config estimators.%s: property 'type': not a "
                                "string (a family: `inferd plugin list`)", key);
    long at = inferd_estimators_find(est, key);
    if (at >= 0 && type)
        return inferd_error_set(err, INFERD_EINVAL,
                                "config estimators.%s: served by %s (plugin %s); \"type\" "
                                "defines new names only", key, est->e[at]->comp->name,
                                est->e[at]->plugin->name);
    if (at >= 0)
        return INFERD_OK;
    char families[512], names[512] = "";
    const inferd_plugin_info *plugin = NULL;
    const inferd_component *family = find_family(reg, type, &plugin, families, sizeof families);
    if (family)
        return add_entry(est, key, family, plugin, err);
    for (size_t i = 0, pos = 0; i < est->n && pos < sizeof names; i++)
        pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s%s", i ? ", " : "",
                                est->e[i]->name);
    if (type)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "config estimators.%s: type '%s' is no estimator family (there "
                                "are: %s)", key, type, families[0] ? families : "none");
    return inferd_error_set(err, INFERD_ENOTFOUND,
                            "config estimators.%s: no such estimator (there are: %s); to define "
                            "one, give its \"type\" (a family: %s)", key,
                            est->n ? names : "none", families[0] ? families : "none");
}

inferd_status inferd_estimators_new(inferd_registry *reg, const inferd_config *cfg,
                                    inferd_estimators **out, inferd_error *err)
{
    inferd_estimators *est = calloc(1, sizeof *est);
    if (!est)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    for (size_t p = 0; st == INFERD_OK && p < inferd_registry_plugin_count(reg); p++) {
        const inferd_plugin_info *info = inferd_registry_plugin_at(reg, p);
        for (size_t c = 0; st == INFERD_OK && c < info->descriptor->n_components; c++) {
            const inferd_component *comp = inferd_plugin_component(info->descriptor, c);
            if (comp->kind == INFERD_KIND_ESTIMATOR && !(comp->flags & INFERD_COMPONENT_FAMILY))
                st = consider(est, comp, info, err);
        }
    }
    const inferd_value *all = NULL;
    if (st == INFERD_OK)
        st = inferd_config_get(cfg, "estimators", &all, err);
    const char *key;
    inferd_value *v;
    for (size_t k = 0; st == INFERD_OK && inferd_value_object_entry(all, k, &key, &v); k++)
        st = define(est, reg, key, v, err);
    if (est->n > 1)
        qsort(est->e, est->n, sizeof *est->e, by_entry_name);
    for (size_t i = 0; st == INFERD_OK && i < est->n; i++) {
        est_entry *e = est->e[i];
        const inferd_prop_spec *o = inferd_component_request_options(e->comp);
        e->options = o ? o : no_options;
        st = entry_start(e, reg, cfg, inferd_value_object_get(all, e->name), err);
    }
    if (st != INFERD_OK) {
        inferd_estimators_free(est);
        return st;
    }
    *out = est;
    return INFERD_OK;
}

/* A new instance's batch limit (under e->lock): the batch follows it, up to
 * maxBatch and what the workers' arrays hold (a model taking more than the
 * one the daemon started with keeps the start's batch). */
static void set_model_batch(est_entry *e, size_t limit)
{
    e->model_batch = limit;
    e->max_batch = limit && limit < e->config_batch ? limit : e->config_batch;
    if (e->max_batch > e->batch_cap)
        e->max_batch = e->batch_cap;
}

inferd_status inferd_estimators_reload(inferd_estimators *est, size_t i, inferd_error *err)
{
    if (i >= est->n)
        return inferd_error_set(err, INFERD_ENOTFOUND, "no estimator %zu", i);
    est_entry *e = est->e[i];
    /* Its model files are read again, not shared from what is open. */
    inferd_registry_models_refresh(e->reg);
    est_inst *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    pthread_mutex_lock(&e->lock);
    fresh->comp = e->comp;
    pthread_mutex_unlock(&e->lock);
    inferd_status st = inferd_instance_create(e->reg, fresh->comp->name, e->name, e->props,
                                              &fresh->inst, err);
    if (st != INFERD_OK) { /* the old instance goes on serving */
        free(fresh);
        inferd_error_prefix(err, "estimator %s was not reloaded (it serves on as it was)",
                            e->name);
        return st;
    }
    size_t limit = inferd__instance_batch_limit(fresh->inst);
    pthread_mutex_lock(&e->lock);
    est_inst *old = e->cur;
    e->cur = fresh;
    set_model_batch(e, limit);
    size_t max_batch = e->max_batch;
    bool unused = old->users == 0; /* else its last batch frees it */
    pthread_mutex_unlock(&e->lock);
    if (unused)
        est_inst_free(old);
    inferd_log_info(LOG, "%s: reloaded (model batch %zu, batch %zu)", e->name, limit, max_batch);
    return INFERD_OK;
}

/* ---- plugins activated and deactivated at run time ---------------------------------- */

/* Makes e served by comp of plugin: its properties for comp, a new
 * instance; the old instance goes after its last batch (as a reload). */
static inferd_status rebind(est_entry *e, const inferd_component *comp,
                            const inferd_plugin_info *plugin, bool replaces, inferd_error *err)
{
    inferd_value *props = NULL;
    est_inst *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    fresh->comp = comp;
    inferd_status st = configure(e, comp, e->cfg, e->given, &props, err);
    if (st == INFERD_OK)
        st = inferd_instance_create(e->reg, comp->name, e->name, props, &fresh->inst, err);
    if (st != INFERD_OK) {
        inferd_value_free(props);
        free(fresh);
        return inferd_error_prefix(err, "estimator %s stays with %s (plugin %s)", e->name,
                                   e->comp->name, e->plugin->name);
    }
    size_t limit = inferd__instance_batch_limit(fresh->inst);
    const inferd_prop_spec *o = inferd_component_request_options(comp);
    pthread_mutex_lock(&e->lock);
    est_inst *old = e->cur;
    inferd_value *old_props = e->props;
    e->cur = fresh;
    e->props = props;
    e->comp = comp;
    e->plugin = plugin;
    e->builtin = inferd_plugin_is_builtin(plugin);
    e->replaces = replaces;
    e->options = o ? o : no_options;
    set_model_batch(e, limit);
    bool unused = old->users == 0; /* else its last batch frees it */
    pthread_mutex_unlock(&e->lock);
    inferd_value_free(old_props);
    if (unused)
        est_inst_free(old);
    inferd_log_info(LOG, "%s: now served by %s (plugin %s %s%s)", e->name, comp->name,
                    plugin->name, plugin->version, replaces ? ", replacing the built-in" : "");
    return INFERD_OK;
}

/* The built-in component that serves name, or NULL. */
static const inferd_component *builtin_for(inferd_registry *reg, const char *name,
                                           const inferd_plugin_info **plugin)
{
    for (size_t p = 0; p < inferd_registry_plugin_count(reg); p++) {
        const inferd_plugin_info *info = inferd_registry_plugin_at(reg, p);
        for (size_t c = 0; inferd_plugin_is_builtin(info) && c < info->descriptor->n_components;
             c++) {
            const inferd_component *comp = inferd_plugin_component(info->descriptor, c);
            if (comp->kind == INFERD_KIND_ESTIMATOR && !(comp->flags & INFERD_COMPONENT_FAMILY) &&
                comp->broker_name && strcmp(comp->broker_name, name) == 0) {
                *plugin = info;
                return comp;
            }
        }
    }
    return NULL;
}

inferd_status inferd_estimators_attach(inferd_estimators *est, const inferd_plugin_info *plugin,
                                       size_t *taken, inferd_error *err)
{
    *taken = 0;
    const inferd_plugin *d = plugin->descriptor;
    /* Every name first: a clash changes nothing. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t c = 0; c < d->n_components; c++) {
            const inferd_component *comp = inferd_plugin_component(d, c);
            if (comp->kind != INFERD_KIND_ESTIMATOR || (comp->flags & INFERD_COMPONENT_FAMILY))
                continue;
            long i = inferd_estimators_find(est, comp->broker_name);
            if (i < 0) {
                if (pass == 1)
                    inferd_log_warn(LOG, "%s (plugin %s) serves %s, a name this daemon did not "
                                    "start with: it serves it from the next start", comp->name,
                                    plugin->name, comp->broker_name);
                continue;
            }
            est_entry *e = est->e[i];
            pthread_mutex_lock(&e->lock);
            bool other = !e->builtin && e->plugin != plugin;
            char who[200];
            snprintf(who, sizeof who, "%s (plugin %s)", e->comp->name, e->plugin->name);
            pthread_mutex_unlock(&e->lock);
            if (pass == 0 && other)
                return inferd_error_set(err, INFERD_EEXIST, "estimator %s: %s serves it "
                                        "already; %s (plugin %s) cannot replace it too: "
                                        "deactivate that one first", e->name, who, comp->name,
                                        plugin->name);
            if (pass == 1) {
                inferd_status st = rebind(e, comp, plugin, true, err);
                if (st != INFERD_OK)
                    return st;
                (*taken)++;
            }
        }
    return INFERD_OK;
}

inferd_status inferd_estimators_detach(inferd_estimators *est, inferd_registry *reg,
                                       const inferd_plugin_info *plugin, size_t *given_back,
                                       inferd_error *err)
{
    *given_back = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < est->n; i++) {
            est_entry *e = est->e[i];
            pthread_mutex_lock(&e->lock);
            bool ours = e->plugin == plugin;
            pthread_mutex_unlock(&e->lock);
            if (!ours)
                continue;
            const inferd_plugin_info *bp = NULL;
            const inferd_component *bc = builtin_for(reg, e->name, &bp);
            if (!bc)
                return inferd_error_set(err, INFERD_EBUSY, "estimator %s is served by plugin %s "
                                        "alone (no built-in serves that name): it would be "
                                        "gone; plugin %s stays", e->name, plugin->name,
                                        plugin->name);
            if (pass == 1) {
                inferd_status st = rebind(e, bc, bp, false, err);
                if (st != INFERD_OK)
                    return st;
                (*given_back)++;
            }
        }
    return INFERD_OK;
}

/* ---- queries ----------------------------------------------------------------------- */

size_t inferd_estimators_count(const inferd_estimators *est) { return est ? est->n : 0; }

const char *inferd_estimators_name(const inferd_estimators *est, size_t i)
{
    return i < est->n ? est->e[i]->name : NULL;
}

long inferd_estimators_find(const inferd_estimators *est, const char *name)
{
    for (size_t i = 0; name && i < est->n; i++)
        if (strcmp(est->e[i]->name, name) == 0)
            return (long)i;
    return -1;
}

const inferd_plugin_info *inferd_estimators_plugin(const inferd_estimators *est, size_t i)
{
    if (i >= est->n)
        return NULL;
    pthread_mutex_lock(&est->e[i]->lock);
    const inferd_plugin_info *p = est->e[i]->plugin;
    pthread_mutex_unlock(&est->e[i]->lock);
    return p;
}

const inferd_prop_spec *inferd_estimators_options(const inferd_estimators *est, size_t i)
{
    return i < est->n ? est->e[i]->options : no_options;
}

void inferd_estimators_stats(const inferd_estimators *est, size_t i, inferd_estimator_stats *out)
{
    est_entry *e = est->e[i];
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    out->queued = e->queued;
    pthread_mutex_unlock(&e->lock);
}

static inferd_value *describe_locked(const est_entry *e);

inferd_value *inferd_estimators_describe(const inferd_estimators *est, size_t i)
{
    est_entry *e = est->e[i];
    pthread_mutex_lock(&e->lock); /* a rebind changes what serves it */
    inferd_value *o = describe_locked(e);
    pthread_mutex_unlock(&e->lock);
    return o;
}

/* "device": where its models run as their backend says (absent when no
 * backend said: a portable plugin, a model-less estimator), and
 * "deviceFallback": why not where deviceClass asked. Nonzero on failure. */
static int set_device(inferd_value *o, const est_entry *e)
{
    char device[64], why[512];
    inferd__instance_device(e->cur->inst, device, sizeof device, why, sizeof why);
    if (device[0] && inferd_value_object_set(o, "device", inferd_value_string(device), NULL))
        return -1;
    if (why[0] && inferd_value_object_set(o, "deviceFallback", inferd_value_string(why), NULL))
        return -1;
    return 0;
}

static inferd_value *describe_locked(const est_entry *e)
{
    inferd_value *o = inferd_value_object();
    inferd_value *comp = inferd_describe_component(e->comp);
    inferd_value *opts = comp ? inferd_value_copy(inferd_value_object_get(comp, "request_options"))
                              : NULL;
    inferd_value_free(comp);
    if (!o || inferd_value_object_set(o, "name", inferd_value_string(e->name), NULL) ||
        inferd_value_object_set(o, "component", inferd_value_string(e->comp->name), NULL) ||
        inferd_value_object_set(o, "plugin", inferd_value_string(e->plugin->name), NULL) ||
        inferd_value_object_set(o, "pluginVersion", inferd_value_string(e->plugin->version),
                                NULL) ||
        inferd_value_object_set(o, "builtIn", inferd_value_bool(e->builtin), NULL) ||
        inferd_value_object_set(o, "replaced", inferd_value_bool(e->replaces && !e->builtin),
                                NULL) ||
        inferd_value_object_set(o, "deviceClass", inferd_value_string(e->device_class), NULL) ||
        set_device(o, e) ||
        inferd_value_object_set(o, "maxBatch", inferd_value_int((int64_t)e->max_batch), NULL) ||
        inferd_value_object_set(o, "modelBatch", inferd_value_int((int64_t)e->model_batch),
                                NULL) ||
        inferd_value_object_set(o, "maxBatchBytes", inferd_value_int((int64_t)e->max_batch_bytes),
                                NULL) ||
        inferd_value_object_set(o, "maxDelayUs", inferd_value_int((int64_t)e->max_delay_us),
                                NULL) ||
        inferd_value_object_set(o, "workers", inferd_value_int((int64_t)e->workers), NULL) ||
        inferd_value_object_set(o, "options", opts ? opts : inferd_value_array(), NULL)) {
        inferd_value_free(o);
        return NULL;
    }
    return o;
}
