/* stats.c: the counters every stage of a rule keeps (in the seeds' engine's
 * naming), and the reference-counted message the rules of a stream share. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/build_value.h"
#include "rules/internal.h"
#include "core/footprint.h"

int64_t rules_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void rstats_init(rstats *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
}

void rstats_destroy(rstats *s) { pthread_mutex_destroy(&s->lock); }

void rstats_reset(rstats *s)
{
    atomic_store(&s->in, 0);
    atomic_store(&s->out, 0);
    atomic_store(&s->exceptions, 0);
    atomic_store(&s->dropped, 0);
    atomic_store(&s->latency_us, 0);
    atomic_store(&s->last_invocation, 0);
    pthread_mutex_lock(&s->lock);
    s->last_exception[0] = '\0';
    s->last_exception_ms = 0;
    pthread_mutex_unlock(&s->lock);
}

void rstats_exception(rstats *s, const char *fmt, ...)
{
    atomic_fetch_add(&s->exceptions, 1);
    pthread_mutex_lock(&s->lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_exception, sizeof s->last_exception, fmt, ap);
    va_end(ap);
    s->last_exception_ms = rules_wall_ms();
    pthread_mutex_unlock(&s->lock);
}

static void put_int(inferd_value *obj, const char *prefix, const char *name, int64_t v)
{
    char key[256];
    snprintf(key, sizeof key, "%s_%s", prefix, name);
    inferd__put(obj, key, inferd_value_int(v), NULL);
}

void rstats_describe(rstats *s, const char *prefix, inferd_value *obj)
{
    put_int(obj, prefix, "records_in_total", (int64_t)atomic_load(&s->in));
    put_int(obj, prefix, "records_out_total", (int64_t)atomic_load(&s->out));
    put_int(obj, prefix, "exceptions_total", (int64_t)atomic_load(&s->exceptions));
    put_int(obj, prefix, "dropped_total", (int64_t)atomic_load(&s->dropped));
    put_int(obj, prefix, "process_latency_us", (int64_t)atomic_load(&s->latency_us));
    put_int(obj, prefix, "last_invocation", atomic_load(&s->last_invocation));
    char key[256];
    pthread_mutex_lock(&s->lock);
    snprintf(key, sizeof key, "%s_last_exception", prefix);
    inferd__put(obj, key, inferd_value_string(s->last_exception), NULL);
    int64_t when = s->last_exception_ms;
    pthread_mutex_unlock(&s->lock);
    put_int(obj, prefix, "last_exception_time", when);
}

rmsg *rmsg_new(inferd_value *value)
{
    rmsg *m = malloc(sizeof *m);
    if (!m) {
        inferd_value_free(value);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->value = value;
    m->bytes = sizeof *m + inferd__value_footprint(value);
    m->wall_ms = rules_wall_ms();
    m->mono_us = inferd__now_us();
    return m;
}

void rmsg_unref(rmsg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        inferd_value_free(m->value);
        free(m);
    }
}
