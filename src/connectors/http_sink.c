/* connectors/http_sink.c: http_sink, a pipeline element that sends each
 * frame's result to a URL (net/http_post: the rules' sender, with retries
 * and back-off).
 *
 * The pipeline never waits for the network: process puts the body in a
 * bounded queue (`queueFrames`) and returns; a sender thread of the
 * element's own sends them in order. A receiver that is down is retried
 * (`retries`, from `retryDelay` doubling to 30 s); while it is, the queue
 * fills, and then the oldest waiting body is dropped for the new one: a
 * live stream's newest results matter most. Everything is counted on the
 * element (GET /v1/pipelines/{name}): sent, retries, failed (a 4xx, or out
 * of retries), dropped. At the end, what is queued gets up to `timeout` to
 * go out; what is left then is dropped and counted.
 */
#include "connectors/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "inferd/log.h"
#include "net/http_post.h"

static const char *const methods[] = {"POST", "PUT", "PATCH", NULL};

static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("url", "where to send each frame's result: http:// or https://", NULL),
    INFERD_PROP_ENUM("method", "the request's method", "POST", methods),
    INFERD_PROP_OBJECT("headers", "extra request headers, an object of strings (a "
                       "Content-Type given here replaces the body's own)", "{}"),
    INFERD_PROP_DURATION("timeout", "one try's time limit", "5s", 1, 600000),
    INFERD_PROP_INT("retries", "tries after a failure that may pass (unreachable, 5xx, 408, "
                    "429)", 3, 0, 1000),
    INFERD_PROP_DURATION("retryDelay", "the wait before the first retry, doubled each time "
                         "(30 s at most)", "200ms", 1, 3600000),
    INFERD_PROP_INT("queueFrames", "results waiting to be sent; when full the oldest is dropped",
                    64, 1, 100000),
    INFERD_PROP_END,
};

typedef struct item {
    char *body;
    size_t len;
    char type[128];
} item;

typedef struct hsink {
    inferd_instance *self;
    http_post *post;           /* the sender thread's */
    int64_t timeout_ms;
    pthread_t thread;
    bool has_thread;
    pthread_mutex_t lock;      /* guards the ring and closing */
    pthread_cond_t changed;
    item *ring;
    size_t cap, head, n;
    bool closing;              /* deinit: send what is queued, then end */
    _Atomic uint64_t give_up_us; /* after closing: when to stop trying */
} hsink;

static bool giving_up(void *ctx)
{
    hsink *h = ctx;
    uint64_t t = atomic_load(&h->give_up_us);
    return t && inferd__now_us() >= t;
}

static void *sender(void *arg)
{
    hsink *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->n == 0 && !h->closing)
            pthread_cond_wait(&h->changed, &h->lock);
        if (h->n == 0 || giving_up(h))
            break;
        item it = h->ring[h->head];
        h->head = (h->head + 1) % h->cap;
        h->n--;
        pthread_mutex_unlock(&h->lock);
        inferd_error err = {0};
        unsigned retries = 0;
        inferd_status st = http_post_send(h->post, it.body, it.len, it.type, giving_up, h,
                                          &retries, &err);
        free(it.body);
        if (retries)
            inferd_instance_count(h->self, "retries", retries);
        inferd_instance_count(h->self, st == INFERD_OK ? "sent" : "failed", 1);
        if (st != INFERD_OK)
            inferd_instance_log(h->self, INFERD_LOG_WARN, "a result was not delivered: %s",
                                err.message);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void hsink_free(hsink *h)
{
    if (!h)
        return;
    if (h->has_thread) {
        atomic_store(&h->give_up_us, inferd__now_us() + (uint64_t)h->timeout_ms * 1000u);
        pthread_mutex_lock(&h->lock);
        h->closing = true;
        pthread_cond_signal(&h->changed);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
    }
    if (h->n > 0) {
        inferd_instance_count(h->self, "dropped", (int64_t)h->n);
        inferd_instance_log(h->self, INFERD_LOG_WARN, "%zu result(s) still queued at the end "
                            "were dropped", h->n);
    }
    for (size_t i = 0; i < h->n; i++)
        free(h->ring[(h->head + i) % h->cap].body);
    http_post_free(h->post);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h->ring);
    free(h);
}

static void deinit(inferd_instance *self) { hsink_free(inferd_instance_state(self)); }

static inferd_status init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    hsink *h = calloc(1, sizeof *h);
    size_t cap = (size_t)inferd_props_int(p, "queueFrames");
    if (!h || !(h->ring = calloc(cap, sizeof *h->ring))) {
        free(h);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    h->self = self;
    h->cap = cap;
    h->timeout_ms = inferd_props_int(p, "timeout");
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    http_post_options o = {inferd_props_string(p, "url"), inferd_props_string(p, "method"),
                           inferd_props_get(p, "headers"), h->timeout_ms,
                           inferd_props_int(p, "retries"), inferd_props_int(p, "retryDelay")};
    char who[200];
    snprintf(who, sizeof who, "element %s (http_sink)", inferd_instance_name(self));
    inferd_status st = http_post_new(&o, who, &h->post, err);
    if (st == INFERD_OK) {
        if (pthread_create(&h->thread, NULL, sender, h) != 0)
            st = inferd_error_set(err, INFERD_ENOMEM, "cannot start the sender thread");
        h->has_thread = st == INFERD_OK;
    }
    if (st != INFERD_OK) {
        hsink_free(h);
        return st;
    }
    inferd_instance_set_state(self, h);
    return INFERD_OK;
}

static inferd_status process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                             inferd_error *err)
{
    hsink *h = inferd_instance_state(self);
    if (n < 1 || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "no input buffer");
    item it = {0};
    const char *type;
    inferd_status st = connectors_body(in[0], inferd_instance_name(self), &it.body, &it.len,
                                       &type, err);
    if (st != INFERD_OK)
        return st;
    snprintf(it.type, sizeof it.type, "%s", type);
    pthread_mutex_lock(&h->lock);
    if (h->n == h->cap) { /* the receiver is behind: the oldest goes */
        free(h->ring[h->head].body);
        h->head = (h->head + 1) % h->cap;
        h->n--;
        inferd_instance_count(self, "dropped", 1);
    }
    h->ring[(h->head + h->n) % h->cap] = it;
    h->n++;
    pthread_cond_signal(&h->changed);
    pthread_mutex_unlock(&h->lock);
    return INFERD_OK;
}

static const inferd_port_spec any_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};

const inferd_component connectors_http_sink = INFERD_COMPONENT(
    INFERD_KIND_ELEMENT, .name = "http_sink",
    .description = "sends each frame's result (JSON, or an encoded picture) to a URL: a bounded "
                   "queue, retries with back-off, drops counted",
    .props = props, .inputs = any_in, .flags = INFERD_COMPONENT_TAKES_ERRORS,
    .ops = INFERD_ELEMENT_OPS(init, process, deinit));
