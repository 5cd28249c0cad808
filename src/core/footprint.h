/* core/footprint.h: about how many bytes of memory a value holds. Internal
 * to inferd (not installed).
 *
 * What bounds a queue in bytes counts: the value's nodes, strings and
 * bytes, and its containers' tables; not the allocator's own overhead.
 */
#ifndef INFERD_CORE_FOOTPRINT_H
#define INFERD_CORE_FOOTPRINT_H

#include <stddef.h>

#include "inferd/value.h"

INFERD_API size_t inferd__value_footprint(const inferd_value *v);

#endif
