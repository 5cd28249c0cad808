/* plugin/timers.c: the host's timer thread (inferd_timer_start/cancel).
 *
 * One thread for every timer of the process, started with the first timer
 * and kept for the process's life. Owns the timer table. The table and the
 * "which callback is running" fields are guarded by one mutex, which is
 * never held while a callback runs; a cancel that finds its timer's callback
 * running waits for it on `done`, unless the cancel comes from the timer
 * thread itself (a callback cancelling its own timer, or an instance being
 * destroyed from a callback), which would otherwise wait for itself.
 */
#include "plugin/timers.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct timer {
    uint64_t id;
    inferd_instance *inst; /* borrowed: destroying it cancels its timers */
    uint64_t interval_ms, due_ms;
    inferd_timer_fn fn;
    void *user;
} timer;

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread waits on it (monotonic clock) */
    pthread_cond_t done; /* a callback returned */
    bool running;        /* the thread has been started */
    pthread_t thread;
    timer *t;            /* owned */
    size_t n, cap;
    uint64_t last_id;
    /* The callback running now: its timer's id and instance (0, NULL: none). */
    uint64_t running_id;
    inferd_instance *running_inst;
} T = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER};

static void init_conds(void)
{
    inferd__cond_init(&T.wake);
    pthread_cond_init(&T.done, NULL);
}

static void *timer_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&T.mu);
    for (;;) {
        timer *next = NULL;
        for (size_t i = 0; i < T.n; i++)
            if (!next || T.t[i].due_ms < next->due_ms)
                next = &T.t[i];
        uint64_t now = inferd__now_ms();
        if (!next) {
            pthread_cond_wait(&T.wake, &T.mu);
            continue;
        }
        if (next->due_ms > now) {
            struct timespec ts = inferd__abs_us(next->due_ms * 1000u);
            pthread_cond_timedwait(&T.wake, &T.mu, &ts);
            continue; /* the table may have changed meanwhile */
        }
        /* Next run one interval after this one was due; a callback that ran
         * late (or long) does not cause a burst of catch-up calls. */
        next->due_ms += next->interval_ms;
        if (next->due_ms <= now)
            next->due_ms = now + next->interval_ms;
        timer run = *next; /* the entry may be removed while it runs */
        T.running_id = run.id;
        T.running_inst = run.inst;
        pthread_mutex_unlock(&T.mu);
        run.fn(run.inst, run.user);
        pthread_mutex_lock(&T.mu);
        T.running_id = 0;
        T.running_inst = NULL;
        pthread_cond_broadcast(&T.done);
    }
    return NULL;
}

inferd_status inferd_timer_start(inferd_instance *self, uint64_t interval_ms, inferd_timer_fn fn,
                                 void *user, uint64_t *id, inferd_error *err)
{
    if (!self || !fn || interval_ms == 0)
        return inferd_error_set(err, INFERD_EINVAL,
                                "a timer needs an instance, a callback and an interval >= 1 ms");
    if (interval_ms > UINT64_MAX / 4) /* far beyond any real timer; keeps due_ms from overflowing */
        interval_ms = UINT64_MAX / 4;
    pthread_once(&T.once, init_conds);
    pthread_mutex_lock(&T.mu);
    if (!T.running) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&T.thread, &attr, timer_thread, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pthread_mutex_unlock(&T.mu);
            return inferd_error_set(err, INFERD_ENOMEM, "cannot start the timer thread: %s",
                                    strerror(rc));
        }
        pthread_setname_np(T.thread, "inferd-timers");
        T.running = true;
    }
    if (T.n == T.cap) {
        size_t cap = T.cap ? T.cap * 2 : 8;
        timer *grown = realloc(T.t, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&T.mu);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        T.t = grown;
        T.cap = cap;
    }
    uint64_t new_id = ++T.last_id;
    T.t[T.n++] = (timer){.id = new_id, .inst = self, .interval_ms = interval_ms,
                         .due_ms = inferd__now_ms() + interval_ms, .fn = fn, .user = user};
    pthread_cond_signal(&T.wake);
    pthread_mutex_unlock(&T.mu);
    if (id)
        *id = new_id;
    return INFERD_OK;
}

/* Removes the timers of inst (only id's when id != 0), then waits until no
 * callback of them runs, unless this is the timer thread. */
static void cancel(inferd_instance *inst, uint64_t id)
{
    pthread_once(&T.once, init_conds);
    pthread_mutex_lock(&T.mu);
    for (size_t i = 0; i < T.n;)
        if (T.t[i].inst == inst && (id == 0 || T.t[i].id == id))
            T.t[i] = T.t[--T.n]; /* order does not matter: the thread looks for the earliest */
        else
            i++;
    bool on_timer_thread = T.running && pthread_equal(pthread_self(), T.thread);
    while (!on_timer_thread && T.running_inst == inst && (id == 0 || T.running_id == id))
        pthread_cond_wait(&T.done, &T.mu);
    pthread_mutex_unlock(&T.mu);
}

void inferd_timer_cancel(inferd_instance *self, uint64_t id)
{
    if (self && id)
        cancel(self, id);
}

void inferd__timers_cancel_all(inferd_instance *inst)
{
    if (inst)
        cancel(inst, 0);
}
