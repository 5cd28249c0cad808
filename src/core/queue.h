/* core/queue.h: a bounded, blocking, multi-producer multi-consumer queue of
 * pointers. Internal to inferd (not installed).
 *
 * Every queue in inferd is bounded: a producer waits for room (back-pressure)
 * or gives up after its deadline; closing a queue wakes everyone. What a
 * closed queue refuses is the caller's to count.
 */
#ifndef INFERD_CORE_QUEUE_H
#define INFERD_CORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "inferd/status.h"

typedef struct inferd_queue inferd_queue;

/* capacity >= 1. NULL on ENOMEM. */
INFERD_API inferd_queue *inferd_queue_new(size_t capacity);
/* Bounded in bytes as well: the items' sizes (given to push_sized) add up
 * to max_bytes at most (0: no bound), except that one item always fits an
 * empty queue (a larger one waits for it to empty). */
INFERD_API inferd_queue *inferd_queue_new_bytes(size_t capacity, size_t max_bytes);
/* Frees the queue; items still in it are passed to drop (may be NULL). */
INFERD_API void inferd_queue_free(inferd_queue *q, void (*drop)(void *item));

/* Waits up to timeout_ms (-1: forever, 0: not at all) for room.
 * INFERD_OK, INFERD_ETIMEOUT (full), or INFERD_ESTATE (closed). The item is
 * the caller's again when this fails. */
INFERD_API inferd_status inferd_queue_push(inferd_queue *q, void *item, int timeout_ms);
/* push, counting bytes against max_bytes until the item is popped. */
INFERD_API inferd_status inferd_queue_push_sized(inferd_queue *q, void *item, size_t bytes,
                                                 int timeout_ms);
/* Waits up to timeout_ms for an item. INFERD_OK, INFERD_ETIMEOUT, or
 * INFERD_ESTATE once the queue is closed and empty. */
INFERD_API inferd_status inferd_queue_pop(inferd_queue *q, void **item, int timeout_ms);
/* After close, pushes fail and pops drain what is left, then fail. */
INFERD_API void inferd_queue_close(inferd_queue *q);
INFERD_API size_t inferd_queue_length(inferd_queue *q);
INFERD_API size_t inferd_queue_bytes(inferd_queue *q); /* of the items in it now */
INFERD_API size_t inferd_queue_capacity(const inferd_queue *q);

#endif
