/* log.c: leveled, per-component logging to a sink (stderr by default).
 *
 * Owns the global log settings. A line is formatted into a stack buffer and
 * handed to the sink in one call, so concurrent lines never interleave. The
 * settings are read under a read lock on every enabled check; they change
 * rarely (start-up, a config reload).
 */
#include "inferd/log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_MAX_OVERRIDES 32
#define LOG_COMPONENT_MAX 64

typedef struct log_override {
    char component[LOG_COMPONENT_MAX];
    inferd_log_level level;
} log_override;

static struct {
    pthread_rwlock_t lock;
    inferd_log_level level;
    inferd_log_format format;
    log_override overrides[LOG_MAX_OVERRIDES];
    size_t n_overrides;
    inferd_log_sink sink;
    void *sink_ctx;
} g_log = {
    .lock = PTHREAD_RWLOCK_INITIALIZER,
    .level = INFERD_LOG_INFO,
    .format = INFERD_LOG_TEXT,
};

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

const char *inferd_log_level_name(inferd_log_level level)
{
    return (unsigned)level <= INFERD_LOG_OFF ? level_names[level] : "?";
}

inferd_status inferd_log_level_parse(const char *name, inferd_log_level *out, inferd_error *err)
{
    for (int i = 0; i <= INFERD_LOG_OFF; i++) {
        if (name && strcasecmp(name, level_names[i]) == 0) {
            *out = (inferd_log_level)i;
            return INFERD_OK;
        }
    }
    if (name && strcasecmp(name, "warning") == 0) {
        *out = INFERD_LOG_WARN;
        return INFERD_OK;
    }
    return inferd_error_set(err, INFERD_EINVAL,
                            "unknown log level '%s' (use trace, debug, info, warn, error or off)",
                            name ? name : "(null)");
}

inferd_status inferd_log_configure(const char *spec, inferd_error *err)
{
    inferd_log_level level = INFERD_LOG_INFO;
    log_override ov[LOG_MAX_OVERRIDES];
    size_t n = 0;
    char *copy = strdup(spec ? spec : "");
    if (!copy)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        char *end = item + strlen(item);
        while (end > item && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*item == '\0')
            continue;
        char *eq = strchr(item, '=');
        if (!eq) {
            if ((st = inferd_log_level_parse(item, &level, err)) != INFERD_OK)
                break;
            continue;
        }
        *eq = '\0';
        if (*item == '\0' || strlen(item) >= LOG_COMPONENT_MAX) {
            st = inferd_error_set(err, INFERD_EINVAL,
                                  "log spec '%s': a component name must be 1..%d characters",
                                  spec, LOG_COMPONENT_MAX - 1);
            break;
        }
        if (n == LOG_MAX_OVERRIDES) {
            st = inferd_error_set(err, INFERD_ERANGE, "log spec '%s': more than %d components",
                                  spec, LOG_MAX_OVERRIDES);
            break;
        }
        if ((st = inferd_log_level_parse(eq + 1, &ov[n].level, err)) != INFERD_OK) {
            inferd_error_prefix(err, "log spec component '%s'", item);
            break;
        }
        snprintf(ov[n].component, sizeof ov[n].component, "%s", item);
        n++;
    }
    free(copy);
    if (st != INFERD_OK)
        return st;
    pthread_rwlock_wrlock(&g_log.lock);
    g_log.level = level;
    memcpy(g_log.overrides, ov, n * sizeof ov[0]);
    g_log.n_overrides = n;
    pthread_rwlock_unlock(&g_log.lock);
    return INFERD_OK;
}

void inferd_log_set_format(inferd_log_format format)
{
    pthread_rwlock_wrlock(&g_log.lock);
    g_log.format = format;
    pthread_rwlock_unlock(&g_log.lock);
}

void inferd_log_set_sink(inferd_log_sink sink, void *ctx)
{
    pthread_rwlock_wrlock(&g_log.lock);
    g_log.sink = sink;
    g_log.sink_ctx = ctx;
    pthread_rwlock_unlock(&g_log.lock);
}

/* Caller holds the lock (read). */
static inferd_log_level level_for(const char *component)
{
    for (size_t i = 0; component && i < g_log.n_overrides; i++)
        if (strcmp(g_log.overrides[i].component, component) == 0)
            return g_log.overrides[i].level;
    return g_log.level;
}

bool inferd_log_enabled(inferd_log_level level, const char *component)
{
    pthread_rwlock_rdlock(&g_log.lock);
    bool on = level < INFERD_LOG_OFF && level >= level_for(component);
    pthread_rwlock_unlock(&g_log.lock);
    return on;
}

/* Appends s to buf as JSON string content (without quotes). */
static size_t json_escape(char *buf, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c == '\n') {
            buf[pos++] = '\\';
            buf[pos++] = 'n';
        } else if (c < 0x20) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

static void write_stderr(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w <= 0)
            return; /* nowhere left to report a failing stderr */
        line += w;
        len -= (size_t)w;
    }
}

void inferd_logv(inferd_log_level level, const char *component, const char *fmt, va_list ap)
{
    if (!component)
        component = "core";
    pthread_rwlock_rdlock(&g_log.lock);
    if (level >= INFERD_LOG_OFF || level < level_for(component)) {
        pthread_rwlock_unlock(&g_log.lock);
        return;
    }
    inferd_log_format format = g_log.format;
    inferd_log_sink sink = g_log.sink;
    void *sink_ctx = g_log.sink_ctx;
    pthread_rwlock_unlock(&g_log.lock);

    char msg[LOG_LINE_MAX / 2];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));

    char line[LOG_LINE_MAX];
    size_t len;
    if (format == INFERD_LOG_JSON) {
        len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"",
                               when, level_names[level]);
        len = json_escape(line, len, sizeof line, component);
        len += (size_t)snprintf(line + len, sizeof line - len, "\",\"msg\":\"");
        len = json_escape(line, len, sizeof line, msg);
        len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
    } else {
        char upper[8];
        size_t i = 0;
        for (; level_names[level][i] && i < sizeof upper - 1; i++)
            upper[i] = (char)toupper((unsigned char)level_names[level][i]);
        upper[i] = '\0';
        len = (size_t)snprintf(line, sizeof line, "%s %-5s [%s] %s\n", when, upper, component, msg);
    }
    if (len >= sizeof line) { /* truncated: keep the newline */
        len = sizeof line - 1;
        line[len - 1] = '\n';
    }
    if (sink)
        sink(sink_ctx, level, line, len);
    else
        write_stderr(line, len);
}

void inferd_log(inferd_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    inferd_logv(level, component, fmt, ap);
    va_end(ap);
}
