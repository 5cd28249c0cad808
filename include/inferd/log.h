/* inferd/log.h: leveled logging to stderr, as text or JSON lines.
 *
 * Every line names the component that wrote it ("core", "http", a plugin's
 * name). Levels can be set globally and per component with a spec such as
 * "info,onnxruntime=debug,http=warn". One line is written with one write(2)
 * call, so lines from many threads never interleave.
 */
#ifndef INFERD_LOG_H
#define INFERD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "inferd/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum inferd_log_level {
    INFERD_LOG_TRACE = 0,
    INFERD_LOG_DEBUG,
    INFERD_LOG_INFO,
    INFERD_LOG_WARN,
    INFERD_LOG_ERROR,
    INFERD_LOG_OFF
} inferd_log_level;

typedef enum inferd_log_format {
    INFERD_LOG_TEXT = 0, /* 2026-11-21T15:50:00.123Z INFO  [core] message */
    INFERD_LOG_JSON      /* {"time":"...","level":"info","component":"core","msg":"..."} */
} inferd_log_format;

/* Receives each finished line (with its trailing newline). The default sink
 * writes to stderr. Tests and embedders may capture lines instead. */
typedef void (*inferd_log_sink)(void *ctx, inferd_log_level level, const char *line, size_t len);

/* Parses a level name: trace, debug, info, warn (or warning), error, off. */
INFERD_API inferd_status inferd_log_level_parse(const char *name, inferd_log_level *out,
                                                inferd_error *err);
INFERD_API const char *inferd_log_level_name(inferd_log_level level);

/* Applies a spec "LEVEL[,COMPONENT=LEVEL...]". On error nothing changes. */
INFERD_API inferd_status inferd_log_configure(const char *spec, inferd_error *err);
INFERD_API void inferd_log_set_format(inferd_log_format format);
/* NULL restores the stderr sink. */
INFERD_API void inferd_log_set_sink(inferd_log_sink sink, void *ctx);

/* Whether a line at this level from this component would be written. */
INFERD_API bool inferd_log_enabled(inferd_log_level level, const char *component);

INFERD_API void inferd_log(inferd_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
INFERD_API void inferd_logv(inferd_log_level level, const char *component, const char *fmt,
                            va_list ap);

#define inferd_log_error(comp, ...) inferd_log(INFERD_LOG_ERROR, comp, __VA_ARGS__)
#define inferd_log_warn(comp, ...)  inferd_log(INFERD_LOG_WARN, comp, __VA_ARGS__)
#define inferd_log_info(comp, ...)  inferd_log(INFERD_LOG_INFO, comp, __VA_ARGS__)
#define inferd_log_debug(comp, ...) inferd_log(INFERD_LOG_DEBUG, comp, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* INFERD_LOG_H */
