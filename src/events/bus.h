/* events/bus.h: the in-process event bus. Not installed.
 *
 * Publishers (the service, plugins through inferd_event_publish) never
 * block: each subscriber (an event component's instance) has its own bounded
 * queue and its own thread, which hands it batches (up to max_batch events,
 * or what arrived within flush_ms) through its handle callback. A full queue
 * drops the event and counts it; a failing handle is logged and counted.
 * The bus is process-wide (a plugin publishes without a handle to it).
 *
 * A subscriber receives exactly the events whose name equals its component's
 * event_name; there is no wildcard (the registry only accepts plain names
 * for event_name, so "*" cannot be declared). Each event is delivered as the
 * payload that was published (every subscriber of a name gets its own copy).
 * No lock is held while a plugin's handle runs.
 */
#ifndef INFERD_EVENTS_BUS_H
#define INFERD_EVENTS_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "inferd/plugin.h"

typedef struct inferd_event_sub inferd_event_sub;

typedef struct inferd_event_sub_config {
    size_t queue_size; /* events queued before drops (>= 1) */
    size_t max_batch;  /* most events per handle call (>= 1) */
    uint64_t flush_ms; /* longest a queued event waits for its batch to fill */
    size_t max_bytes;  /* bytes queued before drops (inferd__value_footprint; 0: no bound) */
} inferd_event_sub_config;

/* Subscribes inst (an event component's instance, borrowed: it must outlive
 * the subscription) to its component's event_name and starts its thread. */
INFERD_API inferd_status inferd_events_subscribe(inferd_instance *inst,
                                                 const inferd_event_sub_config *cfg,
                                                 inferd_event_sub **out, inferd_error *err);
/* Unsubscribes, delivers what is still queued (up to a deadline of
 * deadline_ms; the rest is dropped and counted), joins the thread, frees.
 * The deadline bounds when the last batch starts: a handle call that is
 * running is waited for. Afterwards inst may be destroyed. */
INFERD_API void inferd_events_unsubscribe(inferd_event_sub *sub, uint64_t deadline_ms);

/* Counters of one subscriber (for /metrics). */
typedef struct inferd_event_sub_stats {
    const char *instance, *event; /* borrowed */
    uint64_t published;           /* offered to this subscriber */
    uint64_t delivered;           /* taken out for handle (whether it succeeded or not);
                                     published = delivered + dropped + queued */
    uint64_t dropped;             /* queue full, or left at unsubscribe */
    uint64_t failures;            /* handle calls that returned an error */
    size_t queued;                /* now */
} inferd_event_sub_stats;
/* The counters of one subscriber now. */
INFERD_API void inferd_events_stats(const inferd_event_sub *sub, inferd_event_sub_stats *out);
/* Calls fn for every live subscriber, under the bus lock (keep fn short, and
 * do not publish or subscribe from it). */
INFERD_API void inferd_events_foreach(void (*fn)(void *ctx, const inferd_event_sub_stats *s),
                                      void *ctx);
/* Events published with no subscriber for their name (counted, not an error). */
INFERD_API uint64_t inferd_events_unrouted(void);

#endif
