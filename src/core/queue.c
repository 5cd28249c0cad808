/* core/queue.c: the bounded blocking queue (a ring buffer under one mutex
 * with two condition variables). Owns its ring; the items are the caller's. */
#include "core/queue.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct inferd_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **ring;
    size_t *sizes;          /* per slot; NULL when not bounded in bytes */
    size_t cap, head, len;
    size_t bytes, max_bytes;
    bool closed;
};

inferd_queue *inferd_queue_new(size_t capacity) { return inferd_queue_new_bytes(capacity, 0); }

inferd_queue *inferd_queue_new_bytes(size_t capacity, size_t max_bytes)
{
    if (capacity == 0)
        return NULL;
    inferd_queue *q = calloc(1, sizeof *q);
    if (!q || !(q->ring = calloc(capacity, sizeof *q->ring)) ||
        (max_bytes && !(q->sizes = calloc(capacity, sizeof *q->sizes)))) {
        if (q)
            free(q->ring);
        free(q);
        return NULL;
    }
    q->cap = capacity;
    q->max_bytes = max_bytes;
    pthread_mutex_init(&q->lock, NULL);
    inferd__cond_init(&q->not_empty);
    inferd__cond_init(&q->not_full);
    return q;
}

void inferd_queue_free(inferd_queue *q, void (*drop)(void *item))
{
    if (!q)
        return;
    for (size_t i = 0; drop && i < q->len; i++)
        drop(q->ring[(q->head + i) % q->cap]);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q->sizes);
    free(q);
}

/* Waits on cond until ready(q, bytes) or closed or the deadline; caller
 * holds the lock. */
static bool wait_for(inferd_queue *q, pthread_cond_t *cond,
                     bool (*ready)(const inferd_queue *, size_t), size_t bytes, int timeout_ms)
{
    struct timespec deadline =
        inferd__abs_us(inferd__now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u);
    while (!ready(q, bytes) && !q->closed) {
        if (timeout_ms == 0)
            return false;
        if (timeout_ms < 0)
            pthread_cond_wait(cond, &q->lock);
        else if (pthread_cond_timedwait(cond, &q->lock, &deadline) == ETIMEDOUT)
            return ready(q, bytes) || q->closed;
    }
    return true;
}

static bool has_room(const inferd_queue *q, size_t bytes)
{
    return q->len < q->cap &&
           (!q->max_bytes || q->len == 0 || q->bytes + bytes <= q->max_bytes);
}
static bool has_item(const inferd_queue *q, size_t bytes) { return (void)bytes, q->len > 0; }

inferd_status inferd_queue_push_sized(inferd_queue *q, void *item, size_t bytes, int timeout_ms)
{
    pthread_mutex_lock(&q->lock);
    bool woke = wait_for(q, &q->not_full, has_room, bytes, timeout_ms);
    inferd_status st = q->closed                      ? INFERD_ESTATE
                       : !woke || !has_room(q, bytes) ? INFERD_ETIMEOUT
                                                      : INFERD_OK;
    if (st == INFERD_OK) {
        size_t at = (q->head + q->len) % q->cap;
        q->ring[at] = item;
        if (q->sizes) {
            q->sizes[at] = bytes;
            q->bytes += bytes;
        }
        q->len++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

inferd_status inferd_queue_push(inferd_queue *q, void *item, int timeout_ms)
{
    return inferd_queue_push_sized(q, item, 0, timeout_ms);
}

inferd_status inferd_queue_pop(inferd_queue *q, void **item, int timeout_ms)
{
    pthread_mutex_lock(&q->lock);
    wait_for(q, &q->not_empty, has_item, 0, timeout_ms);
    inferd_status st = INFERD_OK;
    if (q->len > 0) {
        *item = q->ring[q->head];
        if (q->sizes)
            q->bytes -= q->sizes[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        /* Bounded in bytes, what left may make room for more than one. */
        if (q->sizes)
            pthread_cond_broadcast(&q->not_full);
        else
            pthread_cond_signal(&q->not_full);
    } else {
        st = q->closed ? INFERD_ESTATE : INFERD_ETIMEOUT;
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

void inferd_queue_close(inferd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}

size_t inferd_queue_length(inferd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t inferd_queue_bytes(inferd_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->bytes;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t inferd_queue_capacity(const inferd_queue *q) { return q->cap; }
