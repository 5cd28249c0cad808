/* events/bus.c: PLACEHOLDER until the bus lands (counts everything as unrouted). */
#include "events/bus.h"

#include <stdatomic.h>

static atomic_uint_fast64_t unrouted;

inferd_status inferd_event_publish(const char *name, inferd_value *payload, inferd_error *err)
{
    inferd_value_free(payload);
    atomic_fetch_add(&unrouted, 1);
    return INFERD_OK;
}
inferd_status inferd_events_subscribe(inferd_instance *inst, const inferd_event_sub_config *cfg,
                                      inferd_event_sub **out, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EUNSUPPORTED, "the event bus is not implemented yet");
}
void inferd_events_unsubscribe(inferd_event_sub *sub, uint64_t deadline_ms) {}
void inferd_events_foreach(void (*fn)(void *ctx, const inferd_event_sub_stats *s), void *ctx) {}
uint64_t inferd_events_unrouted(void) { return atomic_load(&unrouted); }
