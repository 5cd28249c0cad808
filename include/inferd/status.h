/* inferd/status.h: status codes and the error type every call returns.
 *
 * A call that can fail returns an inferd_status and, when given a non-NULL
 * inferd_error, fills it with the code and a message that says what went
 * wrong and where. The message lives inside the struct (no allocation), so an
 * error can be set from any depth, on any thread, even when memory is short.
 */
#ifndef INFERD_STATUS_H
#define INFERD_STATUS_H

#include <stdarg.h>
#include <stddef.h>

/* What libinferd exports. The library is built with hidden visibility, so
 * a function leaves it only when its declaration in a public header carries
 * this mark; a program or plugin that declares a function of the same name
 * as one of libinferd's private ones keeps its own. */
#if defined(__GNUC__) || defined(__clang__)
#define INFERD_API __attribute__((visibility("default")))
#else
#define INFERD_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum inferd_status {
    INFERD_OK = 0,
    INFERD_EINVAL,       /* the caller's input is wrong (bad argument, bad JSON, ...) */
    INFERD_ETYPE,        /* a value has the wrong type */
    INFERD_ERANGE,       /* a number or size is outside what is allowed */
    INFERD_ENOTFOUND,    /* a named thing does not exist */
    INFERD_EEXIST,       /* a named thing exists already */
    INFERD_ENOMEM,       /* out of memory */
    INFERD_EIO,          /* a file, socket or device failed */
    INFERD_EUNSUPPORTED, /* valid, but not supported (format, dtype, feature) */
    INFERD_EBACKEND,     /* an inference backend (ONNX Runtime, ...) failed */
    INFERD_ETIMEOUT,     /* a deadline passed */
    INFERD_EBUSY,        /* a bounded queue is full, or a resource is in use */
    INFERD_ESTATE,       /* the call is not valid in the current state */
    INFERD_EPLUGIN,      /* a plugin failed */
    INFERD_EINTERNAL     /* a bug in inferd */
} inferd_status;

#define INFERD_ERROR_MESSAGE_MAX 2048

typedef struct inferd_error {
    inferd_status code;
    char message[INFERD_ERROR_MESSAGE_MAX]; /* NUL-terminated, truncated if longer */
} inferd_error;

/* A short stable name for a code: "ok", "invalid", "type", ... (never NULL). */
INFERD_API const char *inferd_status_name(inferd_status code);

/* Sets err (if not NULL) to code and the formatted message; returns code, so
 * that `return inferd_error_set(err, INFERD_EINVAL, "...")` reads naturally. */
INFERD_API inferd_status inferd_error_set(inferd_error *err, inferd_status code, const char *fmt,
                                          ...) __attribute__((format(printf, 3, 4)));
INFERD_API inferd_status inferd_error_setv(inferd_error *err, inferd_status code, const char *fmt,
                                           va_list ap);

/* Prepends "prefix: " to err's message (keeps its code); returns err's code,
 * or INFERD_OK when err is NULL, so callers return their own status after it.
 * Used to add context on the way up: "config.json: listen: ...". */
INFERD_API inferd_status inferd_error_prefix(inferd_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Gives err (if not NULL) another code, keeping its message; returns code.
 * For a caller that knows better whose fault it is (a definition's unknown
 * key is the request's, a 400, not a missing thing). */
INFERD_API inferd_status inferd_error_recode(inferd_error *err, inferd_status code);

/* Resets err to INFERD_OK with an empty message. */
INFERD_API void inferd_error_clear(inferd_error *err);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_STATUS_H */
