/* plugin/timers.c: PLACEHOLDER until the timer thread lands (refuses). */
#include "plugin/timers.h"

inferd_status inferd_timer_start(inferd_instance *self, uint64_t interval_ms, inferd_timer_fn fn,
                                 void *user, uint64_t *id, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EUNSUPPORTED, "timers are not implemented yet");
}
void inferd_timer_cancel(inferd_instance *self, uint64_t id) {}
void inferd__timers_cancel_all(inferd_instance *inst) {}
