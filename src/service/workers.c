/* service/workers.c: a small pool for the handlers that may wait (a call
 * into a plugin, an install, stopping a rule's thread), so that they never
 * hold one of the few HTTP threads: /health and the estimations stay
 * answered while they wait.
 *
 * A route flagged SVC_ROUTE_WORKER is suspended by the dispatcher and its
 * handler runs here; the handler replies as usual (the reply resumes the
 * connection). The queue is bounded (http.worker_queue): beyond it the
 * request gets 503 at once. Owns its threads and its queue of jobs.
 */
#include "service/service.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"

#define LOG "http"

typedef struct job {
    svc_handler fn;
    svc_request *r; /* borrowed: suspended until fn replies */
    struct job *next;
} job;

struct svc_workers {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail; /* owned, under lock */
    size_t queued, max_queue;
    bool stopping;
    pthread_t *threads;
    size_t n_threads;
};

static void *work(void *arg)
{
    svc_workers *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->head)
            break; /* stopping and nothing left */
        job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);
        j->fn(j->r);
        free(j);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

inferd_status svc_workers_new(size_t threads, size_t max_queue, svc_workers **out,
                              inferd_error *err)
{
    svc_workers *w = calloc(1, sizeof *w);
    if (!w || !(w->threads = calloc(threads, sizeof *w->threads))) {
        free(w);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->max_queue = max_queue;
    for (; w->n_threads < threads; w->n_threads++)
        if (pthread_create(&w->threads[w->n_threads], NULL, work, w) != 0) {
            svc_workers_free(w);
            return inferd_error_set(err, INFERD_EINTERNAL, "cannot start an HTTP worker thread");
        }
    *out = w;
    return INFERD_OK;
}

bool svc_workers_submit(svc_workers *w, svc_handler fn, svc_request *r)
{
    job *j = malloc(sizeof *j);
    if (!j)
        return false;
    *j = (job){fn, r, NULL};
    pthread_mutex_lock(&w->lock);
    bool ok = !w->stopping && w->queued < w->max_queue;
    if (ok) {
        if (w->tail)
            w->tail->next = j;
        else
            w->head = j;
        w->tail = j;
        w->queued++;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->lock);
    if (!ok)
        free(j);
    return ok;
}

void svc_workers_free(svc_workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true; /* what is queued still runs: each has a client waiting */
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->n_threads; i++)
        pthread_join(w->threads[i], NULL);
    free(w->threads);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
