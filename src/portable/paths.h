/* portable/paths.h: what the package code (manifest.c, extract.c,
 * install.c) shares: the limits on what a package holds, and how names and
 * paths from a package are checked and shown. Internal. */
#ifndef INFERD_PORTABLE_PATHS_H
#define INFERD_PORTABLE_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include "inferd/status.h"

#define LOG_COMPONENT "portable"

#define PKG_MAX_ENTRIES 10000
#define PKG_MAX_TOTAL ((uint64_t)2 << 30) /* 2 GiB uncompressed in all */
#define PKG_MAX_PATH 1024                 /* bytes in one entry's name */

/* Why a relative path from a package is unsafe (absolute, "..", empty
 * segment, control characters, too long), or NULL when it is fine. */
const char *pkg_path_problem(const char *path, size_t len);
/* name as it may be shown in a message (odd bytes escaped, cut), in buf. */
const char *pkg_show_name(const char *name, char *buf, size_t size);
/* The last segment of path (borrowed). */
const char *pkg_base_name(const char *path);
inferd_status pkg_no_memory(inferd_error *err);

#endif
