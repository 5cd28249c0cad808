/* core/json_file.h: a JSON file read whole, bounded (internal, for the
 * daemon's modules: the model repository's config.json, a ruleset to
 * import). Inline, as core/secrets.h is: libinferd exports only inferd_
 * names, and this is not one of its calls. */
#ifndef INFERD_CORE_JSON_FILE_H
#define INFERD_CORE_JSON_FILE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/status.h"
#include "inferd/value.h"

/* path's JSON into *out (the caller frees it). A file that does not exist
 * leaves *out NULL and returns INFERD_OK: the caller says whether that is
 * wrong. A file larger than max_bytes or unreadable is EIO, one that is not
 * JSON EINVAL, with the path in the message. */
static inline inferd_status inferd__json_file_read(const char *path, size_t max_bytes,
                                                   inferd_value **out, inferd_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? INFERD_OK
                               : inferd_error_set(err, INFERD_EIO, "%s: %s", path,
                                                  strerror(errno));
    /* One byte more than allowed tells a file that is too large. */
    char *text = (char *)malloc(max_bytes + 1);
    size_t len = text ? fread(text, 1, max_bytes + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    inferd_status st;
    if (!text)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    else if (failed)
        st = inferd_error_set(err, INFERD_EIO, "%s: read error", path);
    else if (len > max_bytes)
        st = inferd_error_set(err, INFERD_EIO, "%s: larger than %zu bytes", path, max_bytes);
    else if ((st = inferd_value_from_json(text, len, 0, out, err)) != INFERD_OK)
        inferd_error_prefix(err, "%s", path);
    free(text);
    return st;
}

#endif
