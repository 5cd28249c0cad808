/* core/clock.h: the one monotonic clock of inferd, and condition variables
 * that wait on it. Not installed; header-only (libinferd and the service
 * binary both use it). Everything that measures time or waits with a
 * deadline uses these, so no deadline mixes clocks. */
#ifndef INFERD_CORE_CLOCK_H
#define INFERD_CORE_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic microseconds (an arbitrary origin). */
static inline uint64_t inferd__now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static inline uint64_t inferd__now_ms(void) { return inferd__now_us() / 1000u; }

/* A monotonic time in microseconds as the absolute timespec that
 * pthread_cond_timedwait wants on a condition made by inferd__cond_init. */
static inline struct timespec inferd__abs_us(uint64_t us)
{
    return (struct timespec){.tv_sec = (time_t)(us / 1000000u),
                             .tv_nsec = (long)(us % 1000000u) * 1000L};
}

/* A condition variable whose timed waits use the monotonic clock. */
static inline void inferd__cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

#endif
