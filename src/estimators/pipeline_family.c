/* estimators/pipeline_family.c: the "pipeline" estimator family: a pipeline
 * file served as a named estimator
 * (`"estimators": {"reader": {"type": "pipeline", "pipeline": "ocr.json"}}`).
 *
 * The host registers it with the built-in plugins (a descriptor in memory,
 * plugin "pipelines"): a pipeline is built by the host's own engine, which
 * plugins cannot reach. Each instance builds its pipeline (one appsrc, one
 * appsink) and starts it; estimate_batch pushes each item's image (decoded
 * RGB, cropped to its detect area, a view: the item outlives its frame) into
 * the appsrc and returns; a collector thread pulls the appsink and completes
 * each item with its frame's result, so concurrent requests flow through the
 * pipeline's queues together, and a full pipeline holds the batcher's worker
 * back (back-pressure).
 *
 * The result is the appsink buffer's value (json_serialize's object) less
 * its "frame" key; a frame that carries an error completes its item with
 * that error. Frame ids are assigned by inferd_pipeline_push, so a result
 * may come back before its push returned: the pending list keeps either the
 * item waiting for its result or the result waiting for its item.
 *
 * Ownership: the instance state owns the pipeline, the collector thread and
 * the pending entries; items are the host's, borrowed until completed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "estimators/estimators.h"
#include "inferd/log.h"
#include "inferd/pipeline.h"
#include "plugin/internal.h"

#define LOG "estimator"

typedef struct pending {
    uint64_t frame;
    inferd_estimate *item;   /* waiting for its result, or NULL */
    inferd_buffer *result;   /* arrived first, or NULL */
    struct pending *next;
} pending;

typedef struct piped {
    inferd_pipeline *pipe;
    char *path;
    int timeout_ms;
    pthread_t collector;
    bool collector_started;
    atomic_bool stopping;
    pthread_mutex_t lock; /* guards list */
    pending *list;
} piped;

static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("pipeline", "the pipeline file: one appsrc (the image enters it decoded, "
                       "image/rgb) and one appsink (its value is the result)", NULL),
    INFERD_PROP_DURATION("pushTimeout", "how long a request waits for room in the pipeline "
                         "before it fails as overloaded", "30s", 1, 3600000),
    INFERD_PROP_END,
};
static const inferd_prop_spec no_options[] = {INFERD_PROP_END};

/* The result of a frame's buffer: its value less "frame", or its error. */
static void finish(inferd_estimate *item, inferd_buffer *buf)
{
    const inferd_error *e = inferd_buffer_error(buf);
    if (e) {
        inferd_estimate_done(item, NULL, e);
    } else {
        inferd_value *v = inferd_value_copy(inferd_buffer_value(buf));
        inferd_value_object_remove(v, "frame", NULL); /* absent in a non-object: fine */
        inferd_error none = {0};
        if (!v)
            inferd_error_set(&none, INFERD_EPLUGIN, "the pipeline's result is not a value (%s): "
                             "end it with json_serialize",
                             inferd_buffer_format(buf) ? inferd_buffer_format(buf) : "nothing");
        inferd_estimate_done(item, v, v ? NULL : &none);
    }
    inferd_buffer_unref(buf);
}

/* Matches frame with its item or its result; completes when both are here.
 * Takes buf. */
static void meet(piped *s, uint64_t frame, inferd_estimate *item, inferd_buffer *buf)
{
    pthread_mutex_lock(&s->lock);
    pending **at = &s->list;
    while (*at && (*at)->frame != frame)
        at = &(*at)->next;
    pending *p = *at;
    if (p) {
        *at = p->next;
        pthread_mutex_unlock(&s->lock);
        finish(item ? item : p->item, buf ? buf : p->result);
        free(p);
        return;
    }
    p = calloc(1, sizeof *p);
    if (p) {
        *p = (pending){frame, item, buf, s->list};
        s->list = p;
    }
    pthread_mutex_unlock(&s->lock);
    if (!p) {
        inferd_error e = {0};
        inferd_error_set(&e, INFERD_ENOMEM, "out of memory");
        if (item)
            inferd_estimate_done(item, NULL, &e);
        inferd_buffer_unref(buf); /* its item will wait for the stop: rare, and said */
        if (buf)
            inferd_log_error(LOG, "pipeline %s: out of memory: frame %llu's result is lost",
                             s->path, (unsigned long long)frame);
    }
}

static void *collect(void *arg)
{
    piped *s = arg;
    while (!atomic_load(&s->stopping)) {
        inferd_buffer *buf = NULL;
        inferd_error err = {0};
        inferd_status st = inferd_pipeline_pull(s->pipe, NULL, 200, &buf, &err);
        if (st == INFERD_ETIMEOUT)
            continue;
        if (st != INFERD_OK || !buf)
            break; /* the end of the stream: stopping */
        meet(s, inferd_buffer_frame_id(buf), NULL, buf);
    }
    return NULL;
}

static void piped_free(piped *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    if (s->pipe)
        inferd_pipeline_stop(s->pipe, false);
    if (s->collector_started)
        pthread_join(s->collector, NULL);
    inferd_error stop = {0};
    inferd_error_set(&stop, INFERD_ESTATE, "pipeline %s stopped before this image's result",
                     s->path ? s->path : "?");
    for (pending *p = s->list, *next; p; p = next) {
        next = p->next;
        if (p->item)
            inferd_estimate_done(p->item, NULL, &stop);
        inferd_buffer_unref(p->result);
        free(p);
    }
    inferd_pipeline_free(s->pipe);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
}

static void pipe_deinit(inferd_instance *self)
{
    piped_free(inferd_instance_state(self));
}

static inferd_status pipe_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    piped *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(inferd_props_string(p, "pipeline")))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    s->timeout_ms = (int)inferd_props_int(p, "pushTimeout");
    inferd_status st = inferd_pipeline_load(self->reg, s->path, &s->pipe, err);
    if (st == INFERD_OK && (inferd_pipeline_source_count(s->pipe) != 1 ||
                            inferd_pipeline_sink_count(s->pipe) != 1))
        st = inferd_error_set(err, INFERD_EINVAL,
                              "pipeline %s has %zu source(s) and %zu sink(s): an estimator's "
                              "pipeline has one appsrc (the image) and one appsink (the result)",
                              s->path, inferd_pipeline_source_count(s->pipe),
                              inferd_pipeline_sink_count(s->pipe));
    if (st == INFERD_OK)
        st = inferd_pipeline_start(s->pipe, err);
    if (st == INFERD_OK) {
        int rc = pthread_create(&s->collector, NULL, collect, s);
        if (rc != 0)
            st = inferd_error_set(err, INFERD_EINTERNAL, "cannot start the collector: %s",
                                  strerror(rc));
        s->collector_started = rc == 0;
    }
    if (st != INFERD_OK) {
        piped_free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

static inferd_status pipe_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                                inferd_error *err)
{
    (void)err;
    piped *s = inferd_instance_state(self);
    for (size_t i = 0; i < n; i++) {
        const inferd_image *img = inferd_estimate_image(items[i]);
        inferd_rect a = {0, 0, img->width, img->height};
        inferd_estimate_area(items[i], &a);
        const size_t C = inferd_pixel_channels(img->format);
        inferd_image *view = NULL;
        inferd_buffer *buf = inferd_buffer_new();
        inferd_error e = {0};
        uint64_t frame = 0;
        inferd_status st =
            buf ? inferd_image_wrap(img->format, (uint32_t)a.width, (uint32_t)a.height,
                                    img->stride,
                                    img->data + (size_t)a.y * img->stride + (size_t)a.x * C, NULL,
                                    NULL, &view, &e)
                : inferd_error_set(&e, INFERD_ENOMEM, "out of memory");
        if (st == INFERD_OK)
            st = inferd_buffer_set_image(buf, view, &e);
        else
            inferd_buffer_unref(buf);
        if (st == INFERD_OK) /* takes buf */
            st = inferd_pipeline_push(s->pipe, NULL, buf, &frame, s->timeout_ms, &e);
        if (st == INFERD_ETIMEOUT)
            e.code = INFERD_EBUSY; /* the pipeline stayed full: overloaded */
        if (st != INFERD_OK) {
            inferd_error_prefix(&e, "pipeline %s", s->path);
            inferd_estimate_done(items[i], NULL, &e);
            continue;
        }
        meet(s, frame, items[i], NULL);
    }
    return INFERD_OK;
}

static const inferd_component components[] = {
    INFERD_COMPONENT(INFERD_KIND_ESTIMATOR, .name = "pipeline",
                     .description = "a pipeline file as an estimator: the image enters its "
                                    "appsrc, its appsink's value is the result",
                     .props = props, .flags = INFERD_COMPONENT_FAMILY,
                     .ops = INFERD_ESTIMATOR_OPS(pipe_init, pipe_batch, pipe_deinit),
                     .request_options = no_options),
};

static const inferd_plugin descriptor = {
    INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin), "pipelines",
    "1.0.0", "the host's own estimator families", components,
    sizeof components / sizeof components[0]};

const inferd_plugin *inferd__pipeline_family(void)
{
    return &descriptor;
}
