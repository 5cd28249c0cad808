/* portable/paths.c: how names and paths that come in a package are checked
 * and shown in messages (paths.h). */
#include "portable/paths.h"

#include <stdio.h>
#include <string.h>

/* Why a relative path inside a package is not acceptable, or NULL when it
 * is. path has len bytes, without a folder's trailing '/'. The same rules
 * serve zip entries and the manifest's executable. */
const char *pkg_path_problem(const char *path, size_t len)
{
    if (len == 0)
        return "a path may not be empty";
    if (len > PKG_MAX_PATH)
        return "a path may be at most 1024 bytes long";
    if (path[0] == '/')
        return "a path must be relative (it may not start with /)";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '\\')
            return "a path may not contain a backslash";
        if (c < 0x20 || c == 0x7f)
            return "a path may not contain control characters";
    }
    /* ".." first: it is the one that matters most, say it when it is there. */
    const char *problem = NULL;
    for (size_t start = 0; start <= len;) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - path) : len;
        size_t seg = end - start;
        if (seg == 2 && path[start] == '.' && path[start + 1] == '.')
            return "a path may not leave the package folder (no .. segment)";
        if (!problem && seg == 0)
            problem = "a path may not have an empty segment";
        if (!problem && seg == 1 && path[start] == '.')
            problem = "a path may not have a . segment";
        start = end + 1;
    }
    return problem;
}

/* A name fit for an error message: control bytes become '?', and a very
 * long name is cut. */
const char *pkg_show_name(const char *name, char *buf, size_t size)
{
    size_t n = 0, len = strlen(name);
    size_t keep = len > 80 ? 72 : len;
    for (; n < keep && n + 1 < size; n++) {
        unsigned char c = (unsigned char)name[n];
        buf[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (keep < len && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* The last component of a path, for messages ("pyai.zip"). */
const char *pkg_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

inferd_status pkg_no_memory(inferd_error *err)
{
    return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}
