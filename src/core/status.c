/* status.c: status names and the inferd_error helpers. Owns nothing. */
#include "inferd/status.h"

#include <stdio.h>
#include <string.h>

const char *inferd_status_name(inferd_status code)
{
    switch (code) {
    case INFERD_OK: return "ok";
    case INFERD_EINVAL: return "invalid";
    case INFERD_ETYPE: return "type";
    case INFERD_ERANGE: return "range";
    case INFERD_ENOTFOUND: return "not_found";
    case INFERD_EEXIST: return "exists";
    case INFERD_ENOMEM: return "no_memory";
    case INFERD_EIO: return "io";
    case INFERD_EUNSUPPORTED: return "unsupported";
    case INFERD_EBACKEND: return "backend";
    case INFERD_ETIMEOUT: return "timeout";
    case INFERD_EBUSY: return "busy";
    case INFERD_ESTATE: return "state";
    case INFERD_EPLUGIN: return "plugin";
    case INFERD_EINTERNAL: return "internal";
    }
    return "unknown";
}

inferd_status inferd_error_setv(inferd_error *err, inferd_status code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return code;
}

inferd_status inferd_error_set(inferd_error *err, inferd_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    inferd_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

inferd_status inferd_error_prefix(inferd_error *err, const char *fmt, ...)
{
    if (!err)
        return INFERD_OK;
    char prefix[INFERD_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    size_t plen = n < 0 ? 0 : strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    /* Shift the message right (it may be truncated at the end), then prefix. */
    size_t mlen = strnlen(err->message, sizeof err->message - 1);
    if (plen >= sizeof err->message)
        plen = sizeof err->message - 1;
    if (mlen > sizeof err->message - 1 - plen)
        mlen = sizeof err->message - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
    return err->code;
}

void inferd_error_clear(inferd_error *err)
{
    if (err) {
        err->code = INFERD_OK;
        err->message[0] = '\0';
    }
}

inferd_status inferd_error_recode(inferd_error *err, inferd_status code)
{
    if (err)
        err->code = code;
    return code;
}
