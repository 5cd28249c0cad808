/* config.c: the daemon's configuration: declared keys, a JSON file,
 * INFERD_* environment variables, explicit overrides.
 *
 * Owns inferd_config (validated props plus where each value came from).
 * Keys are declared once in config_keys[] below with inferd_prop_spec, the
 * same declarations elements use, so a bad config value gets the same kind of
 * message as a bad element property.
 */
#include "inferd/config.h"
#include "core/names.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* More than the daemon has keys: for the environment's did-you-mean. */
#define N_KEYS_MAX 128

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const device_classes[] = {"cpu", "gpu", NULL};

/* One entry of mqtt.profiles (a key left out takes mqtt.server's, or none). */
static const inferd_prop_spec mqtt_profile_fields[] = {
    {.name = "server", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "tcp://host[:port] (default: mqtt.server)"},
    {.name = "username", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL},
    {.name = "password", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL},
    {.name = "clientId", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "a prefix: each connection adds its own name"},
    {.name = "protocolVersion", .type = INFERD_PROP_TYPE_INT, .imin = 4, .imax = 5,
     .flags = INFERD_PROP_OPTIONAL, .description = "4 (MQTT 3.1.1) or 5"},
    {.name = "tlsCa", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "ssl:// servers: the CA file (default: mqtt.tls_ca)"},
    {.name = "tlsCert", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "ssl:// servers: a client certificate file (default: mqtt.tls_cert)"},
    {.name = "tlsKey", .type = INFERD_PROP_TYPE_STRING, .flags = INFERD_PROP_OPTIONAL,
     .description = "ssl:// servers: its key file (default: mqtt.tls_key)"},
    INFERD_PROP_END,
};

/* One entry of portable.limits (a key left out takes the portable.* one). */
static const inferd_prop_spec portable_limit_fields[] = {
    {.name = "memory_limit_mb", .type = INFERD_PROP_TYPE_UINT, .umax = 16777216,
     .flags = INFERD_PROP_OPTIONAL, .description = "as portable.memory_limit_mb"},
    {.name = "cpu_limit_s", .type = INFERD_PROP_TYPE_UINT, .umax = 31536000,
     .flags = INFERD_PROP_OPTIONAL, .description = "as portable.cpu_limit_s"},
    INFERD_PROP_END,
};

static const inferd_prop_spec config_keys[] = {
    INFERD_PROP_STRING("listen", "address:port the HTTP API listens on", "127.0.0.1:8080"),
    INFERD_PROP_STRING("log.level",
                       "log level, with optional per-component levels: info,http=debug",
                       "info"),
    INFERD_PROP_ENUM("log.format", "log line format: text or json lines", "text", log_formats),
    INFERD_PROP_UINT("http.threads", "HTTP worker threads (0: one per core)", 0, 0, 1024),
    INFERD_PROP_UINT("http.workers", "threads for the requests that may wait (function calls "
                     "into plugins, installs, rule and stream changes), off the HTTP threads", 2,
                     1, 256),
    INFERD_PROP_UINT("http.worker_queue", "such requests waiting for a worker before new ones "
                     "get 503", 64, 1, 100000),
    INFERD_PROP_UINT("http.max_connections", "open connections in all; beyond, new ones are "
                     "closed at once", 4096, 16, 1000000),
    INFERD_PROP_STRING("http.tls_cert", "PEM file of the server's certificate (chain): with "
                       "http.tls_key, the API is served over HTTPS only", ""),
    INFERD_PROP_STRING("http.tls_key", "PEM file of the server certificate's private key", ""),
    INFERD_PROP_STRING("http.tls_client_ca", "PEM file of the CA that signs clients' "
                       "certificates: with it, only clients that present one are served "
                       "(mutual TLS)", ""),
    INFERD_PROP_UINT("http.max_connections_per_ip", "open connections from one address (0: no "
                     "limit), so that one client cannot hold every connection (slowloris)", 256,
                     0, 1000000),
    INFERD_PROP_UINT("http.idle_timeout_s", "a connection that sends nothing for this long is "
                     "closed", 30, 1, 86400),
    INFERD_PROP_UINT("http.shutdown_grace_ms",
                     "how long a stopping daemon still takes new requests while /ready answers "
                     "503, so that a load balancer's health check sees it go first (a second "
                     "SIGTERM cuts it short)", 0, 0, 600000),
    INFERD_PROP_UINT("http.shutdown_timeout_ms",
                     "how long a stopping daemon waits for in-flight requests", 10000, 0, 3600000),
    INFERD_PROP_STRING("plugins.dir",
                       "the plugin folder ('': <libdir>/inferd/plugins next to libinferd)", ""),
    INFERD_PROP_STRLIST("active_plugins",
                        "plugins to activate from plugins.dir, in order (file names)", ""),
    INFERD_PROP_STRLIST("plugins.isolated",
                        "C plugins of plugins.dir (file names) that run each in a worker process "
                        "of its own, supervised as portable plugins are (a crash takes down the "
                        "worker, not the daemon); function components only", ""),
    INFERD_PROP_UINT("http.max_body_bytes", "largest request body accepted (413 beyond)",
                     67108864, 1024, 4294967296),
    INFERD_PROP_UINT("http.max_json_depth", "deepest nesting of a JSON request body (400 beyond)",
                     32, 2, 1000),
    INFERD_PROP_UINT("http.max_images", "most images in one estimation request (413 beyond)",
                     64, 1, 100000),
    INFERD_PROP_STRING("http.token",
                       "bearer token for the management routes (/v1/plugins...) from addresses "
                       "other than loopback; '' refuses them there", ""),
    INFERD_PROP_BOOL("http.token_loopback", "management routes need the bearer token on "
                     "loopback too (every local user is otherwise an administrator)", false),
    INFERD_PROP_STRLIST("http.allowed_origins", "web origins (scheme://host[:port]) whose pages "
                        "may call the management routes; a request with any other Origin "
                        "header gets 403", ""),
    INFERD_PROP_STRLIST("http.allowed_hosts", "Host header names the management routes answer "
                        "besides IP addresses and localhost (a DNS rebinding guard)", ""),
    INFERD_PROP_STRLIST("health.required", "what must be up for /ready to answer 200: "
                        "portables (every portable plugin's process), models (every model of "
                        "models.dir loads), rules (every rule that should run), pipelines "
                        "(every pipeline that should run), or one of them: portable:NAME, "
                        "model:NAME, rule:ID, pipeline:NAME", "portables,models"),
    INFERD_PROP_UINT("image.max_pixels", "largest image accepted, width x height (413 beyond)",
                     67108864, 1, 1073741824),
    INFERD_PROP_UINT("image.max_request_pixels", "most pixels of all the images of one "
                     "estimation request together (413 beyond)", 67108864, 1, 1073741824),
    INFERD_PROP_UINT("image.max_inflight_pixels", "most decoded pixels of all estimation "
                     "requests in flight together; a request that would pass it gets 503 "
                     "overloaded (3 bytes a pixel decoded, 12 as the model's input)", 67108864,
                     1, 17179869184),
    INFERD_PROP_ENUM("device.class", "the daemon's default device class: what an estimator "
                     "with deviceClass 'global' uses", "cpu", device_classes),
    INFERD_PROP_UINT("device.gpu_id", "the GPU estimators use on device class gpu", 0, 0, 1024),
    INFERD_PROP_OBJECT("estimators",
                       "per-estimator settings by name: {\"peopleCountEstimator\": "
                       "{\"deviceClass\": \"cpu|gpu|global\", \"maxBatch\": 8, "
                       "\"maxBatchBytes\": 16777216, \"maxDelayUs\": 0, \"workers\": 0, "
                       "\"maxQueue\": 1024, \"backendOptions\": {...}, ...the component's "
                       "properties}} (docs/service.md)", "{}"),
    INFERD_PROP_STRING("models.dir", "the model repository the KServe v2 API serves: every "
                       "NAME.onnx, and every folder NAME/<version>/model.onnx with an optional "
                       "NAME/config.json ('': the default models, "
                       "<libdir>/../share/inferd/models)", ""),
    INFERD_PROP_OBJECT("models.backend_options", "the onnxruntime backend's options for every "
                       "model of models.dir, e.g. {\"intra_op_threads\": 1} "
                       "(docs/backends.md)", "{}"),
    INFERD_PROP_UINT("events.queue_size", "events queued per event component (drops beyond)",
                     4096, 1, 1048576),
    INFERD_PROP_UINT("events.queue_max_bytes", "bytes of events queued per event component "
                     "(drops beyond; 0: no bound)", 67108864, 0, INT64_MAX),
    INFERD_PROP_UINT("events.max_batch", "most events handed to an event component at once", 64,
                     1, 65536),
    INFERD_PROP_UINT("events.flush_ms", "longest an event waits for its batch to fill", 100, 0,
                     60000),
    INFERD_PROP_OBJECT("plugin_settings",
                       "properties of background and event components by component name: "
                       "{\"monitoring\": {\"url\": \"http://127.0.0.1:5020/1/buckets\"}}",
                       "{}"),
    INFERD_PROP_STRING("state.dir", "where inferd keeps what must outlive it: installed portable "
                       "plugins and the state database ('': $XDG_STATE_HOME/inferd, else "
                       "~/.local/state/inferd)", ""),
    INFERD_PROP_STRING("portable.python", "the interpreter of Python portable plugins (a name "
                       "looked up in /usr/local/bin:/usr/bin:/bin, or a path)", "python3"),
    INFERD_PROP_STRING("portable.sdk_dir", "the Python SDK put on portable plugins' PYTHONPATH "
                       "('': <libdir>/../share/inferd/python)", ""),
    INFERD_PROP_UINT("portable.start_timeout_ms", "how long a portable plugin may take from its "
                     "start to its handshake (models load here)", 60000, 100, 3600000),
    INFERD_PROP_UINT("portable.call_timeout_ms", "how long one call into a portable plugin may "
                     "take", 30000, 10, 3600000),
    INFERD_PROP_UINT("portable.heartbeat_ms", "how often a portable plugin is pinged", 2000, 10,
                     3600000),
    INFERD_PROP_UINT("portable.heartbeat_timeout_ms", "a portable plugin that does not answer a "
                     "ping this long is killed and restarted", 10000, 10, 3600000),
    INFERD_PROP_UINT("portable.stop_timeout_ms", "how long a stopping portable plugin gets "
                     "between SIGTERM and SIGKILL", 5000, 0, 600000),
    INFERD_PROP_UINT("portable.log_lines_per_s", "lines of a portable plugin's output logged "
                     "a second at most; beyond, they are dropped and counted (0: no bound)", 100,
                     0, 1000000),
    INFERD_PROP_UINT("portable.memory_limit_mb", "private writable memory a portable plugin's "
                     "process may hold (RLIMIT_DATA: heap, anonymous mappings, thread stacks); "
                     "past it allocations fail and the Python SDK exits to be restarted (0: no "
                     "bound)", 4096, 0, 16777216),
    INFERD_PROP_UINT("portable.cpu_limit_s", "CPU seconds a portable plugin's process may use "
                     "over its life (RLIMIT_CPU); past it the process is killed and restarted "
                     "(0: no bound)", 0, 0, 31536000),
    {.name = "portable.limits", .type = INFERD_PROP_TYPE_MAP, .fields = portable_limit_fields,
     .default_value = "{}", .description = "portable.memory_limit_mb and portable.cpu_limit_s "
     "for one package, by its name: {\"pyai\": {\"memory_limit_mb\": 8192}}"},
    INFERD_PROP_UINT("portable.install_timeout_ms", "how long a package's install.sh may run",
                     300000, 100, 86400000),
    INFERD_PROP_STRLIST("rules.file_dirs", "the folders file streams may read and file "
                        "actions may write in ('': <state.dir>/files)", ""),
    INFERD_PROP_UINT("rules.file_max_bytes", "largest file a file stream reads", 67108864, 1,
                     INT64_MAX),
    INFERD_PROP_UINT("rules.buffer_max_bytes", "bytes a rule's input buffer, and each of its "
                     "actions' buffers, may hold besides bufferLength messages (drops beyond, "
                     "counted; 0: no bound)", 67108864, 0, INT64_MAX),
    INFERD_PROP_UINT("rules.push_max_bytes", "largest message POST /push/... takes (413 "
                     "beyond): with bufferLength 1024 a rule then holds at most 1 GiB of them",
                     1048576, 1, INT64_MAX),
    INFERD_PROP_STRING("mqtt.server", "the MQTT broker of streams and rules that name no other "
                       "(tcp://host:port, or ssl://host:port for TLS)", "tcp://127.0.0.1:1883"),
    INFERD_PROP_STRING("mqtt.tls_ca", "ssl:// brokers: the PEM file of the CA that signs their "
                       "certificates ('': the system's, /etc/ssl/certs)", ""),
    INFERD_PROP_STRING("mqtt.tls_cert", "ssl:// brokers that ask for one: the client "
                       "certificate (PEM)", ""),
    INFERD_PROP_STRING("mqtt.tls_key", "the client certificate's key (PEM)", ""),
    {.name = "mqtt.profiles", .type = INFERD_PROP_TYPE_MAP, .fields = mqtt_profile_fields,
     .default_value = "{}", .description = "named MQTT connections chosen with CONF_KEY "
     "(streams) or confKey (actions): {\"edge\": {\"server\": \"tcp://10.0.0.2:1883\", "
     "\"username\": \"u\", \"password\": \"p\", \"clientId\": \"c\", \"protocolVersion\": "
     "5}}"},
    INFERD_PROP_END,
};

/* The variable that names the config file; not a key itself. */
#define CONFIG_PATH_ENV "INFERD_CONFIG"
/* Not keys either: what the CLI clients (inferd pipeline, model, plugin,
 * bench) read, which a shell that runs both may have set. */
static const char *const client_env[] = {CONFIG_PATH_ENV, "INFERD_URL", "INFERD_TOKEN",
                                         "INFERD_CACERT", "INFERD_CLIENT_CERT",
                                         "INFERD_CLIENT_KEY", NULL};
#define MAX_CONFIG_BYTES (4u << 20)

struct inferd_config {
    inferd_props *props;  /* owned */
    char **sources;       /* owned, one per key: "default", "file X", "env Y", ... */
    size_t n;
};

const inferd_prop_spec *inferd_config_keys(void) { return config_keys; }

char *inferd_config_env_name(const char *key, char *buf, size_t size)
{
    size_t pos = (size_t)snprintf(buf, size, "INFERD_");
    for (; *key && pos + 1 < size; key++)
        buf[pos++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    buf[pos < size ? pos : size - 1] = '\0';
    return buf;
}

void inferd_config_free(inferd_config *cfg)
{
    if (!cfg)
        return;
    inferd_props_free(cfg->props);
    for (size_t i = 0; i < cfg->n; i++)
        free(cfg->sources[i]);
    free(cfg->sources);
    free(cfg);
}

static long key_index(const char *key)
{
    for (size_t i = 0; key && config_keys[i].name; i++)
        if (strcmp(config_keys[i].name, key) == 0)
            return (long)i;
    return -1;
}

static inferd_status set_source(inferd_config *cfg, long i, const char *what, const char *where)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", what, where ? " " : "", where ? where : "") < 0)
        return INFERD_ENOMEM;
    free(cfg->sources[i]);
    cfg->sources[i] = s;
    return INFERD_OK;
}

/* Copies nested objects into flat "a.b" keys of out. */
static inferd_status flatten(const inferd_value *obj, const char *prefix, inferd_value *out,
                             inferd_error *err)
{
    const char *key;
    inferd_value *item;
    for (size_t k = 0; inferd_value_object_entry(obj, k, &key, &item); k++) {
        char path[256];
        int len = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (len < 0 || (size_t)len >= sizeof path)
            return inferd_error_set(err, INFERD_EINVAL, "key '%s.%s' is too long", prefix, key);
        inferd_status st;
        if (inferd_value_is(item, INFERD_VALUE_OBJECT) && key_index(path) < 0)
            st = flatten(item, path, out, err);
        else
            st = inferd_value_object_set(out, path, inferd_value_copy(item), err);
        if (st != INFERD_OK)
            return st;
    }
    return INFERD_OK;
}

static inferd_status read_file(const char *path, char **text, size_t *len, inferd_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "cannot open config file %s: %s", path,
                                strerror(errno));
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    if (!buf) {
        fclose(f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > MAX_CONFIG_BYTES) {
        free(buf);
        return inferd_error_set(err, failed ? INFERD_EIO : INFERD_ERANGE,
                                "config file %s: %s", path,
                                failed ? "read error" : "larger than 4 MiB");
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return INFERD_OK;
}

static inferd_status load_file(const char *path, inferd_value **flat, inferd_error *err)
{
    char *text = NULL;
    size_t len = 0;
    inferd_status st = read_file(path, &text, &len, err);
    if (st != INFERD_OK)
        return st;
    inferd_value *doc = NULL;
    st = inferd_value_from_json(text, len, 0, &doc, err);
    free(text);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "config file %s", path);
        return st;
    }
    if (!inferd_value_is(doc, INFERD_VALUE_OBJECT)) {
        inferd_value_free(doc);
        return inferd_error_set(err, INFERD_ETYPE, "config file %s: must hold a JSON object", path);
    }
    *flat = inferd_value_object();
    st = *flat ? flatten(doc, "", *flat, err) : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_value_free(doc);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "config file %s", path);
        return st;
    }
    return INFERD_OK;
}

static inferd_status apply_env(inferd_config *cfg, char *const *envp, inferd_error *err)
{
    for (size_t e = 0; envp && envp[e]; e++) {
        const char *eq = strchr(envp[e], '=');
        if (strncmp(envp[e], "INFERD_", 7) != 0 || !eq)
            continue;
        size_t name_len = (size_t)(eq - envp[e]);
        bool not_key = false;
        for (size_t i = 0; client_env[i] && !not_key; i++)
            not_key = strlen(client_env[i]) == name_len &&
                      strncmp(envp[e], client_env[i], name_len) == 0;
        if (not_key)
            continue;
        long found = -1;
        char env_name[128];
        for (size_t i = 0; found < 0 && config_keys[i].name; i++) {
            inferd_config_env_name(config_keys[i].name, env_name, sizeof env_name);
            if (strlen(env_name) == name_len && strncmp(env_name, envp[e], name_len) == 0)
                found = (long)i;
        }
        if (found < 0) {
            /* The variable of the closest key, when it looks like a typo of one. */
            char names[N_KEYS_MAX][64], given[128];
            const char *table[N_KEYS_MAX];
            size_t n = 0;
            for (size_t i = 0; config_keys[i].name && n < N_KEYS_MAX; i++, n++) {
                inferd_config_env_name(config_keys[i].name, names[n], sizeof names[n]);
                table[n] = names[n];
            }
            snprintf(given, sizeof given, "%.*s", (int)name_len, envp[e]);
            const char *near = inferd__closest_name(table, sizeof table[0], n, given);
            return inferd_error_set(err, INFERD_ENOTFOUND,
                                    "unknown environment variable %s: no such config key "
                                    "(%s%s%srun `inferd config` for the keys)", given,
                                    near ? "did you mean " : "", near ? near : "",
                                    near ? "? " : "");
        }
        snprintf(env_name, sizeof env_name, "%.*s", (int)name_len, envp[e]);
        inferd_status st = inferd_config_set(cfg, config_keys[found].name, eq + 1, NULL, err);
        if (st != INFERD_OK) {
            inferd_error_prefix(err, "environment variable %s", env_name);
            return st;
        }
        if (set_source(cfg, found, "env", env_name) != INFERD_OK)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    return INFERD_OK;
}

inferd_status inferd_config_load(const char *path, char *const *envp, inferd_config **out,
                                 inferd_error *err)
{
    inferd_value *given = NULL;
    inferd_status st;
    if (path && (st = load_file(path, &given, err)) != INFERD_OK)
        return st;

    inferd_config *cfg = calloc(1, sizeof *cfg);
    size_t n = inferd_prop_specs_count(config_keys);
    if (!cfg || !(cfg->sources = calloc(n, sizeof *cfg->sources))) {
        free(cfg);
        inferd_value_free(given);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    cfg->n = n;
    char owner[300];
    snprintf(owner, sizeof owner, "config file %s", path ? path : "(none)");
    st = inferd_props_validate(config_keys, owner, given, &cfg->props, err);
    for (size_t i = 0; st == INFERD_OK && i < n; i++) {
        bool from_file = inferd_value_object_get(given, config_keys[i].name) != NULL;
        if (set_source(cfg, (long)i, from_file ? "file" : "default", from_file ? path : NULL))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_value_free(given);
    if (st == INFERD_OK)
        st = apply_env(cfg, envp ? envp : environ, err);
    if (st != INFERD_OK) {
        inferd_config_free(cfg);
        return st;
    }
    *out = cfg;
    return INFERD_OK;
}

inferd_status inferd_config_set(inferd_config *cfg, const char *key, const char *text,
                                const char *source, inferd_error *err)
{
    long i = key_index(key);
    if (i < 0)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "unknown config key '%s' (run `inferd config` for the keys)",
                                key ? key : "(null)");
    inferd_status st = inferd_props_set_text(cfg->props, "config", key, text, err);
    if (st == INFERD_OK && source && set_source(cfg, i, source, NULL) != INFERD_OK)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    return st;
}

inferd_status inferd_config_get(const inferd_config *cfg, const char *key,
                                const inferd_value **out, inferd_error *err)
{
    if (key_index(key) < 0)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "unknown config key '%s' (run `inferd config` for the keys)",
                                key ? key : "(null)");
    *out = inferd_props_get(cfg->props, key);
    return INFERD_OK;
}

const char *inferd_config_source(const inferd_config *cfg, const char *key)
{
    long i = key_index(key);
    return i < 0 ? NULL : cfg->sources[i];
}

const inferd_props *inferd_config_props(const inferd_config *cfg) { return cfg->props; }

const char *inferd_config_string(const inferd_config *cfg, const char *key)
{
    return inferd_props_string(cfg->props, key);
}

int64_t inferd_config_int(const inferd_config *cfg, const char *key)
{
    return inferd_props_int(cfg->props, key);
}

double inferd_config_double(const inferd_config *cfg, const char *key)
{
    return inferd_props_double(cfg->props, key);
}

bool inferd_config_bool(const inferd_config *cfg, const char *key)
{
    return inferd_props_bool(cfg->props, key);
}

inferd_value *inferd_config_to_value(const inferd_config *cfg)
{
    inferd_value *root = inferd_value_object();
    for (size_t i = 0; root && i < cfg->n; i++) {
        /* Walk/create the nested objects of "a.b.c". */
        inferd_value *node = root;
        char path[256];
        snprintf(path, sizeof path, "%s", config_keys[i].name);
        char *part = path, *dot;
        while ((dot = strchr(part, '.'))) {
            *dot = '\0';
            inferd_value *child = inferd_value_object_get(node, part);
            if (!child) {
                if (inferd_value_object_set(node, part, inferd_value_object(), NULL) != INFERD_OK)
                    goto oom;
                child = inferd_value_object_get(node, part);
            }
            node = child;
            part = dot + 1;
        }
        if (inferd_value_object_set(node, part, inferd_value_copy(inferd_props_get(cfg->props,
                                    config_keys[i].name)), NULL) != INFERD_OK)
            goto oom;
    }
    return root;
oom:
    inferd_value_free(root);
    return NULL;
}
