/* core/names.h: the closest of a list of names to a misspelt one, for "did
 * you mean" hints (properties, elements, factories). Internal. */
#ifndef INFERD_CORE_NAMES_H
#define INFERD_CORE_NAMES_H

#include <stddef.h>

/* items: n structs of stride bytes, each beginning with its name (a const
 * char *; NULL skipped). The one closest to name when close enough to be a
 * typo (a third of its letters wrong, two for short names; case counts
 * half), or a longer name it begins; else NULL. */
const char *inferd__closest_name(const void *items, size_t stride, size_t n, const char *name);

#endif
