/* inferd/config.h: the daemon's configuration.
 *
 * Keys are declared (name, type, default, range: inferd_prop_spec) in one
 * table; values come, each overriding the one before, from the declared
 * defaults, a JSON config file (nested objects or dotted keys), INFERD_*
 * environment variables (the key upper-cased, '.' -> '_': INFERD_LISTEN,
 * INFERD_LOG_LEVEL), then explicit overrides such as command-line flags.
 * An unknown key, in the file or as an INFERD_* variable, is an error.
 */
#ifndef INFERD_CONFIG_H
#define INFERD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/props.h"
#include "inferd/status.h"
#include "inferd/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inferd_config inferd_config;

/* The declared keys (END-terminated). */
INFERD_API const inferd_prop_spec *inferd_config_keys(void);
/* The environment variable for a key: "log.level" -> "INFERD_LOG_LEVEL". */
INFERD_API char *inferd_config_env_name(const char *key, char *buf, size_t size);

/* Loads defaults, then path (NULL: none), then the INFERD_* variables of envp
 * (NULL: the process environment). Errors name the file or variable, the key
 * and the reason. */
INFERD_API inferd_status inferd_config_load(const char *path, char *const *envp,
                                            inferd_config **out, inferd_error *err);
INFERD_API void inferd_config_free(inferd_config *cfg);

/* Overrides one key from text (a command-line flag); source names it in
 * `inferd_config_source` ("--listen"). */
INFERD_API inferd_status inferd_config_set(inferd_config *cfg, const char *key, const char *text,
                                           const char *source, inferd_error *err);

/* The value of a key (borrowed); INFERD_ENOTFOUND for an undeclared key. */
INFERD_API inferd_status inferd_config_get(const inferd_config *cfg, const char *key,
                                           const inferd_value **out, inferd_error *err);
/* Where the value of key came from: "default", "file /etc/inferd.json",
 * "env INFERD_LISTEN", "--listen"; NULL for an undeclared key. */
INFERD_API const char *inferd_config_source(const inferd_config *cfg, const char *key);
/* Typed readers (the key's declared type is guaranteed). */
INFERD_API const inferd_props *inferd_config_props(const inferd_config *cfg);
INFERD_API const char *inferd_config_string(const inferd_config *cfg, const char *key);
INFERD_API int64_t inferd_config_int(const inferd_config *cfg, const char *key);
INFERD_API double inferd_config_double(const inferd_config *cfg, const char *key);
INFERD_API bool inferd_config_bool(const inferd_config *cfg, const char *key);

/* The effective configuration as a nested JSON-ready object (owned by caller). */
INFERD_API inferd_value *inferd_config_to_value(const inferd_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_CONFIG_H */
