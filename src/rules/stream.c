/* stream.c: streams: their definitions (CREATE STREAM), decoding of raw
 * messages by FORMAT and schema, and their sources: MQTT, HTTP push, a
 * file, or a plugin's source component. A source runs while at least one
 * running rule reads the stream; every message is decoded once and shared
 * by those rules. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inferd/log.h"
#include "core/build_value.h"
#include "rules/internal.h"

#define LOG "rules"

/* ---- definitions ----------------------------------------------------------- */

/* The WITH options (eKuiper's names; the parser upper-cases them), declared
 * and checked by the one validator. */
typedef struct stream_decl {
    const char *datasource, *format, *type, *conf_key, *shared, *timestamp, *key, *strict;
    int64_t qos;
} stream_decl;

static const inferd_prop_spec option_specs[] = {
    {.name = "DATASOURCE", .type = INFERD_PROP_TYPE_STRING, .description = "the topic, push "
     "path, file or the source's setting (default: the stream's name)",
     INFERD_PROP_AT_OPTIONAL(stream_decl, datasource)},
    {.name = "FORMAT", .type = INFERD_PROP_TYPE_STRING, .default_value = "JSON",
     .description = "\"JSON\" or \"BINARY\"", INFERD_PROP_AT(stream_decl, format)},
    {.name = "TYPE", .type = INFERD_PROP_TYPE_STRING, .default_value = "mqtt",
     .description = "\"mqtt\", \"httppush\", \"file\" or a source component",
     INFERD_PROP_AT(stream_decl, type)},
    {.name = "CONF_KEY", .type = INFERD_PROP_TYPE_STRING, .description = "a profile of "
     "mqtt.profiles", INFERD_PROP_AT_OPTIONAL(stream_decl, conf_key)},
    {.name = "SHARED", .type = INFERD_PROP_TYPE_STRING, .description = "TRUE, or a group name: "
     "an MQTT 5 shared subscription", INFERD_PROP_AT_OPTIONAL(stream_decl, shared)},
    {.name = "QOS", .type = INFERD_PROP_TYPE_INT, .default_value = "0", .imin = 0, .imax = 2,
     .description = "of the subscription", INFERD_PROP_AT(stream_decl, qos)},
    {.name = "TIMESTAMP", .type = INFERD_PROP_TYPE_STRING, .description = "the field with a "
     "message's event time (ms)", INFERD_PROP_AT_OPTIONAL(stream_decl, timestamp)},
    {.name = "KEY", .type = INFERD_PROP_TYPE_STRING, .description = "the stream's key field, "
     "recorded and shown; reserved, as in the seed engine, where a stream's KEY is not used "
     "either", INFERD_PROP_AT_OPTIONAL(stream_decl, key)},
    {.name = "STRICT_VALIDATION", .type = INFERD_PROP_TYPE_STRING, .default_value = "true",
     .description = "TRUE: a value a column cannot take refuses the message; FALSE: it passes "
     "as it is", INFERD_PROP_AT(stream_decl, strict)},
    INFERD_PROP_END,
};

const inferd_prop_spec *rstream_specs(void) { return option_specs; }

static char *dup_or_null(const char *v) { return v ? strdup(v) : NULL; }

static inferd_status check_options(rstream *s, inferd_error *err)
{
    /* SQL's TRUE and FALSE (SHARED=TRUE) are the words. */
    inferd_value *opts = inferd_value_copy(s->def->options);
    static const char *const words[] = {"SHARED", "STRICT_VALIDATION"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        const inferd_value *b = inferd_value_object_get(opts, words[i]);
        if (inferd_value_is(b, INFERD_VALUE_BOOL))
            inferd__put_str(opts, words[i], inferd_value_bool_or(b, false) ? "true" : "false",
                            NULL);
    }
    char owner[200];
    snprintf(owner, sizeof owner, "stream %.128s: WITH", s->name);
    inferd_props *props = NULL;
    inferd_status st = opts ? inferd_props_validate(option_specs, owner, opts, &props, err)
                            : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_value_free(opts);
    if (st != INFERD_OK && st != INFERD_ENOMEM)
        st = inferd_error_recode(err, INFERD_EINVAL); /* the statement's fault, a 400 */
    if (st != INFERD_OK)
        return st;
    stream_decl d = {0};
    inferd_props_bind(props, &d);
    s->timestamp = dup_or_null(d.timestamp);
    s->conf_key = dup_or_null(d.conf_key);
    s->type = strdup(d.type);
    /* The seeds' streams leave DATASOURCE out only where it is the name. */
    s->datasource = strdup(d.datasource ? d.datasource : s->name);
    s->qos = (int)d.qos;
    const char *format = d.format, *g = d.shared;
    if (strcasecmp(d.strict, "false") == 0)
        s->lenient = true;
    else if (strcasecmp(d.strict, "true") != 0)
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: STRICT_VALIDATION must be TRUE or "
                              "FALSE", s->name);
    if (g && (strcasecmp(g, "true") == 0))
        g = "inferd";
    else if (g && strcasecmp(g, "false") == 0)
        g = NULL;
    if (g && (!g[0] || strpbrk(g, "/+#")))
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: SHARED must be TRUE or a group "
                              "name without / + #", s->name);
    else if (g && !(s->shared = strdup(g)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && (!s->type || !s->datasource || (d.timestamp && !s->timestamp) ||
                            (d.conf_key && !s->conf_key)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && (!s->datasource[0] || !s->type[0]))
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: DATASOURCE and TYPE may not be "
                              "empty", s->name);
    if (st == INFERD_OK && s->timestamp && strcasecmp(format, "binary") == 0)
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: TIMESTAMP names a field: a BINARY "
                              "stream has none", s->name);
    bool declared = s->def->n_columns == 0;
    for (size_t i = 0; s->timestamp && !declared && i < s->def->n_columns; i++)
        declared = strcmp(s->def->columns[i].name, s->timestamp) == 0;
    if (st == INFERD_OK && s->timestamp && !declared)
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: TIMESTAMP \"%s\" is not one of its "
                              "columns", s->name, s->timestamp);
    bool key_declared = s->def->n_columns == 0;
    for (size_t i = 0; d.key && !key_declared && i < s->def->n_columns; i++)
        key_declared = strcmp(s->def->columns[i].name, d.key) == 0;
    if (st == INFERD_OK && d.key && !key_declared)
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: KEY \"%s\" is not one of its "
                              "columns", s->name, d.key);
    if (st == INFERD_OK && strcasecmp(format, "json") == 0)
        s->format = RFMT_JSON;
    else if (st == INFERD_OK && strcasecmp(format, "binary") == 0)
        s->format = RFMT_BINARY;
    else if (st == INFERD_OK)
        st = inferd_error_set(err, INFERD_EINVAL, "stream %s: FORMAT must be \"JSON\" or "
                              "\"BINARY\", got \"%s\"", s->name, format);
    inferd_props_free(props);
    if (st)
        return st;
    for (char *p = s->type; *p && (strcasecmp(s->type, "mqtt") == 0 ||
                                   strcasecmp(s->type, "httppush") == 0 ||
                                   strcasecmp(s->type, "file") == 0); p++)
        *p = (char)tolower((unsigned char)*p);
    rules_engine *e = s->e;
    if (strcmp(s->type, "mqtt") == 0) {
        mqtt_options mo;
        if ((st = mqtt_profile(e->cfg, s->conf_key, &mo, err)))
            return inferd_error_prefix(err, "stream %s", s->name);
        return INFERD_OK;
    }
    if (s->conf_key)
        return inferd_error_set(err, INFERD_EINVAL, "stream %s: CONF_KEY is for TYPE=\"mqtt\" "
                                "only", s->name);
    if (s->shared)
        return inferd_error_set(err, INFERD_EINVAL, "stream %s: SHARED is for TYPE=\"mqtt\" "
                                "only", s->name);
    if (strcmp(s->type, "httppush") == 0) {
        bool ok = s->datasource[0] == '/' && s->datasource[1];
        for (const char *p = s->datasource + 1; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
        if (!ok)
            return inferd_error_set(err, INFERD_EINVAL, "stream %s: an httppush DATASOURCE is "
                                    "one path segment such as \"/sensors\" (messages are "
                                    "POSTed to /push/sensors), got \"%s\"", s->name,
                                    s->datasource);
        for (rstream *o = e->streams; o; o = o->next)
            if (strcmp(o->name, s->name) != 0 && strcmp(o->type, "httppush") == 0 &&
                strcmp(o->datasource, s->datasource) == 0)
                return inferd_error_set(err, INFERD_EEXIST, "stream %s: stream %s already "
                                        "takes pushes on %s", s->name, o->name, s->datasource);
        return INFERD_OK;
    }
    if (strcmp(s->type, "file") == 0) {
        char what[160];
        snprintf(what, sizeof what, "stream %s: DATASOURCE", s->name);
        return rules_file_allowed(e, what, s->datasource, err);
    }
    const inferd_component *c = inferd_registry_find(e->reg, s->type, NULL);
    if (!c || c->kind != INFERD_KIND_SOURCE)
        return inferd_error_set(err, INFERD_EINVAL, "stream %s: unknown TYPE \"%s\": "
                                "\"mqtt\", \"httppush\", \"file\" or a source component of a "
                                "plugin", s->name, s->type);
    return INFERD_OK;
}

inferd_status rstream_new(rules_engine *e, const char *sql, bool keep_broken, rstream **out,
                          inferd_error *err)
{
    rstream *s = calloc(1, sizeof *s);
    if (!s || !(s->sql = strdup(sql))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    s->e = e;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->source_lock, NULL);
    rstats_init(&s->stats);
    inferd_status st = sql_parse_stream(sql, &s->def, err);
    if (st == INFERD_OK && !(s->name = strdup(s->def->name)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && (st = check_options(s, err)) != INFERD_OK && keep_broken) {
        s->broken = strdup(err->message);
        if (!s->type)
            s->type = strdup("mqtt");
        if (!s->datasource)
            s->datasource = strdup(s->name);
        st = s->broken && s->type && s->datasource
                 ? INFERD_OK
                 : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if (st != INFERD_OK) {
        rstream_free(s);
        return st;
    }
    *out = s;
    return INFERD_OK;
}

void rstream_free(rstream *s)
{
    if (!s)
        return;
    free(s->name), free(s->sql), free(s->type), free(s->datasource), free(s->conf_key);
    free(s->shared), free(s->subs), free(s->broken), free(s->timestamp);
    sql_stream_def_free(s->def);
    rstats_destroy(&s->stats);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->source_lock);
    free(s);
}

inferd_value *rstream_describe(rstream *s)
{
    inferd_value *o = inferd_value_object(), *fields = inferd_value_array();
    for (size_t i = 0; i < s->def->n_columns; i++) {
        inferd_value *f = inferd_value_object();
        inferd__put(f, "name", inferd_value_string(s->def->columns[i].name), NULL);
        inferd__put(f, "type",
                    inferd_value_string(sql_type_name(s->def->columns[i].type)), NULL);
        inferd__push(fields, f, NULL);
    }
    inferd__put(o, "name", inferd_value_string(s->name), NULL);
    inferd__put(o, "sql", inferd_value_string(s->sql), NULL);
    inferd__put(o, "fields", fields, NULL);
    inferd__put(o, "options", inferd_value_copy(s->def->options), NULL);
    inferd__put(o, "type", inferd_value_string(s->type), NULL);
    inferd__put(o, "format",
                inferd_value_string(s->format == RFMT_JSON ? "JSON" : "BINARY"), NULL);
    inferd__put(o, "datasource", inferd_value_string(s->datasource), NULL);
    if (s->timestamp)
        inferd__put(o, "timestamp", inferd_value_string(s->timestamp), NULL);
    if (s->broken)
        inferd__put(o, "error", inferd_value_string(s->broken), NULL);
    pthread_mutex_lock(&s->lock);
    size_t readers = s->n_subs;
    bool is_mqtt = s->mqtt != NULL;
    mqtt_stats ms = {0};
    if (s->mqtt)
        mqtt_client_stats(s->mqtt, &ms);
    pthread_mutex_unlock(&s->lock);
    inferd__put(o, "running", inferd_value_bool(readers > 0), NULL);
    inferd__put(o, "readers", inferd_value_int((int64_t)readers), NULL);
    if (is_mqtt) {
        inferd__put(o, "connected", inferd_value_bool(ms.connected), NULL);
        inferd__put(o, "connectionLastError", inferd_value_string(ms.last_error), NULL);
    }
    inferd__put(o, "recordsIn", inferd_value_int((int64_t)atomic_load(&s->stats.in)), NULL);
    inferd__put(o, "exceptions",
                inferd_value_int((int64_t)atomic_load(&s->stats.exceptions)), NULL);
    pthread_mutex_lock(&s->stats.lock);
    inferd__put(o, "lastException", inferd_value_string(s->stats.last_exception), NULL);
    pthread_mutex_unlock(&s->stats.lock);
    return o;
}

/* ---- decoding and delivery ---------------------------------------------------- */

/* Applies the declared columns: each converted to its type, missing ones
 * NULL, undeclared fields dropped. Takes obj. */
static inferd_status apply_schema(rstream *s, inferd_value *obj, inferd_value **out,
                                  inferd_error *err)
{
    if (s->def->n_columns == 0) {
        *out = obj;
        return INFERD_OK;
    }
    inferd_value *row = inferd_value_object();
    inferd_status st = row ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->def->n_columns && st == INFERD_OK; i++) {
        const sql_column *col = &s->def->columns[i];
        const inferd_value *v = inferd_value_object_get(obj, col->name);
        inferd_value *c = v ? inferd_value_copy(v) : inferd_value_null();
        inferd_error why = {0};
        if (!c)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else if ((st = sql_coerce(col, &c, &why)) != INFERD_OK && s->lenient &&
                 st != INFERD_ENOMEM)
            st = INFERD_OK; /* STRICT_VALIDATION=FALSE: c is the value as it came */
        else if (st != INFERD_OK)
            inferd_error_set(err, st, "%s", why.message);
        if (st != INFERD_OK)
            inferd_value_free(c);
        else
            st = inferd_value_object_set(row, col->name, c, err);
    }
    inferd_value_free(obj);
    if (st != INFERD_OK) {
        inferd_value_free(row);
        return st;
    }
    *out = row;
    return INFERD_OK;
}

/* Counts a malformed message on the stream and on every rule reading it
 * (their status shows it). */
static void malformed(rstream *s, const char *msg)
{
    rstats_exception(&s->stats, "%s", msg);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_subs; i++)
        rrule_source_exception(s->subs[i], msg);
    pthread_mutex_unlock(&s->lock);
}

/* Hands one decoded message to every reader. false when a reader's buffer
 * was full (it counted the drop). */
static bool deliver(rstream *s, inferd_value *value, bool wait)
{
    rmsg *m = rmsg_new(value);
    if (!m)
        return false;
    atomic_fetch_add(&s->stats.in, 1);
    bool all = true;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_subs; i++)
        all &= rrule_offer(s->subs[i], m, wait);
    pthread_mutex_unlock(&s->lock);
    rmsg_unref(m);
    return all;
}

/* One decoded value (an object for JSON, an array of objects is one message
 * each) goes through the schema and out. Takes v. */
static inferd_status deliver_value(rstream *s, inferd_value *v, bool wait, inferd_error *err)
{
    if (s->format == RFMT_BINARY || inferd_value_is(v, INFERD_VALUE_OBJECT)) {
        inferd_value *row = v;
        inferd_status st = s->format == RFMT_JSON ? apply_schema(s, v, &row, err) : INFERD_OK;
        if (st != INFERD_OK)
            return st;
        return deliver(s, row, wait) ? INFERD_OK
                                     : inferd_error_set(err, INFERD_EBUSY, "a rule's buffer is "
                                                        "full: the message was dropped there");
    }
    if (!inferd_value_is(v, INFERD_VALUE_ARRAY)) {
        inferd_status st = inferd_error_set(err, INFERD_EINVAL, "a JSON message must be an object "
                                            "(or an array of objects), got %s",
                                            inferd_value_type_name(inferd_value_type_of(v)));
        inferd_value_free(v);
        return st;
    }
    size_t n = inferd_value_array_len(v);
    for (size_t i = 0; i < n; i++)
        if (!inferd_value_is(inferd_value_array_get(v, i), INFERD_VALUE_OBJECT)) {
            inferd_status st = inferd_error_set(err, INFERD_EINVAL, "element %zu of a JSON "
                                                "message array is not an object", i);
            inferd_value_free(v);
            return st;
        }
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < n && st == INFERD_OK; i++) {
        inferd_value *item = inferd_value_copy(inferd_value_array_get(v, i));
        st = item ? deliver_value(s, item, wait, err)
                  : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_value_free(v);
    return st;
}

inferd_status rstream_deliver_raw(rstream *s, const void *payload, size_t len, bool wait,
                                  inferd_error *err)
{
    inferd_value *v = NULL;
    inferd_status st;
    if (s->format == RFMT_BINARY)
        st = (v = inferd_value_bytes(payload, len)) ? INFERD_OK
                                                    : inferd_error_set(err, INFERD_ENOMEM,
                                                                       "out of memory");
    else
        st = inferd_value_from_json(payload, len, 0, &v, err);
    if (st == INFERD_OK)
        st = deliver_value(s, v, wait, err);
    if (st != INFERD_OK && st != INFERD_EBUSY)
        malformed(s, err->message);
    return st;
}

/* ---- sources ------------------------------------------------------------------ */

static void on_mqtt(void *ctx, const char *topic, const void *payload, size_t len)
{
    rstream *s = ctx;
    inferd_error err = {0};
    (void)topic;
    rstream_deliver_raw(s, payload, len, false, &err);
}

/* The file source: the whole file is one BINARY message; a JSON file is an
 * array of messages or one message per line. Read once, then done. */
static void *file_thread(void *arg)
{
    rstream *s = arg;
    char msg[600];
    /* O_NONBLOCK: a FIFO with no writer must not hold the open (and so a
     * stop) forever; only regular files are read, so /dev/zero and the
     * like cannot feed it without end. */
    int fd = open(s->datasource, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    FILE *f = NULL;
    uint64_t max = (uint64_t)inferd_config_int(s->e->cfg, "rules.file_max_bytes");
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(msg, sizeof msg, "file %s: %s", s->datasource, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        snprintf(msg, sizeof msg, "file %s is not a regular file (a FIFO, a device, a folder): "
                 "not read", s->datasource);
    } else if ((uint64_t)sb.st_size > max) {
        snprintf(msg, sizeof msg, "file %s has %llu bytes, more than rules.file_max_bytes "
                 "(%llu): not read", s->datasource, (unsigned long long)sb.st_size,
                 (unsigned long long)max);
    } else if (!(f = fdopen(fd, "rb"))) {
        snprintf(msg, sizeof msg, "file %s: %s", s->datasource, strerror(errno));
    }
    if (!f) {
        if (fd >= 0)
            close(fd);
        malformed(s, msg);
        return NULL;
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    /* The file may grow while it is read: never past the bound. */
    while (len <= max && !atomic_load(&s->stopping)) {
        if (len + 65536 > cap) {
            char *p = realloc(data, cap = (cap ? cap * 2 : 131072));
            if (!p)
                break;
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    inferd_error err = {0};
    if (!data)
        return NULL;
    const char *p = data, *end = data + len;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (s->format == RFMT_BINARY || (p < end && *p == '[')) {
        rstream_deliver_raw(s, data, len, true, &err);
    } else {
        while (p < end && !atomic_load(&s->stopping)) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            const char *q = p;
            while (q < stop && isspace((unsigned char)*q))
                q++;
            if (q < stop)
                rstream_deliver_raw(s, q, (size_t)(stop - q), true, &err);
            p = nl ? nl + 1 : end;
        }
    }
    free(data);
    return NULL;
}

static inferd_status on_source_emit(void *ctx, inferd_instance *from, inferd_value *msg,
                                    inferd_error *err)
{
    rstream *s = ctx;
    (void)from;
    const void *data;
    size_t len;
    const char *text;
    /* A source may emit decoded values or raw payloads: raw ones are decoded
     * by the stream's FORMAT like any other. */
    if (inferd_value_get_bytes(msg, &data, &len, NULL) == INFERD_OK ||
        (s->format == RFMT_JSON &&
         inferd_value_get_string(msg, &text, &len, NULL) == INFERD_OK && (data = text))) {
        inferd_status st = rstream_deliver_raw(s, data, len, false, err);
        inferd_value_free(msg);
        return st;
    }
    if (s->format == RFMT_BINARY) {
        inferd_value_free(msg);
        malformed(s, "a BINARY stream's source emitted something other than bytes");
        return inferd_error_set(err, INFERD_EINVAL, "stream %s is BINARY: emit bytes", s->name);
    }
    inferd_status st = deliver_value(s, msg, false, err);
    if (st != INFERD_OK && st != INFERD_EBUSY)
        malformed(s, err->message);
    return st;
}

static inferd_status source_start(rstream *s, inferd_error *err)
{
    rules_engine *e = s->e;
    if (s->broken)
        return inferd_error_set(err, INFERD_ESTATE, "%s", s->broken);
    atomic_store(&s->stopping, false);
    if (strcmp(s->type, "mqtt") == 0) {
        mqtt_options mo;
        inferd_status st = mqtt_profile(e->cfg, s->conf_key, &mo, err);
        char name[300], id[300], who[280];
        snprintf(name, sizeof name, "stream %s", s->name);
        snprintf(who, sizeof who, "stream-%s", s->name);
        rules_mqtt_client_id(e, &mo, who, id, sizeof id);
        mo.client_id = id;
        mo.name = name;
        mqtt_client *c = NULL;
        if (st == INFERD_OK)
            st = mqtt_client_new(&mo, &c, err);
        char topic[1024];
        if (s->shared)
            snprintf(topic, sizeof topic, "$share/%s/%s", s->shared, s->datasource);
        else
            snprintf(topic, sizeof topic, "%s", s->datasource);
        if (st == INFERD_OK &&
            (st = mqtt_client_subscribe(c, topic, s->qos, on_mqtt, s, err)) != INFERD_OK) {
            mqtt_client_free(c);
            c = NULL;
        }
        pthread_mutex_lock(&s->lock);
        s->mqtt = c;
        pthread_mutex_unlock(&s->lock);
        return st;
    }
    if (strcmp(s->type, "httppush") == 0)
        return INFERD_OK;
    if (strcmp(s->type, "file") == 0) {
        if (pthread_create(&s->file_thread, NULL, file_thread, s) != 0)
            return inferd_error_set(err, INFERD_EIO, "stream %s: cannot start a thread", s->name);
        s->file_thread_on = true;
        return INFERD_OK;
    }
    /* A source component: its settings are plugin_settings.<TYPE>, and
     * DATASOURCE its "datasource" property when it declares one. */
    const inferd_value *settings = NULL;
    inferd_config_get(e->cfg, "plugin_settings", &settings, NULL);
    const inferd_value *given = settings ? inferd_value_object_get(settings, s->type) : NULL;
    inferd_value *props = given ? inferd_value_copy(given) : inferd_value_object();
    const inferd_component *c = inferd_registry_find(e->reg, s->type, NULL);
    for (const inferd_prop_spec *p = c ? c->props : NULL; p && p->name; p++)
        if (strcmp(p->name, "datasource") == 0 && props)
            inferd__put(props, "datasource", inferd_value_string(s->datasource), NULL);
    if (!props)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance *src = NULL;
    inferd_status st = inferd_instance_create(e->reg, s->type, s->name, props, &src, err);
    inferd_value_free(props);
    if (st != INFERD_OK)
        return st;
    s->src = src;
    inferd_instance_set_emit(s->src, on_source_emit, s);
    if ((st = inferd_instance_start(s->src, err)) != INFERD_OK) {
        inferd_instance_destroy(s->src);
        s->src = NULL;
    }
    return st;
}

static void source_stop(rstream *s)
{
    atomic_store(&s->stopping, true);
    pthread_mutex_lock(&s->lock);
    mqtt_client *c = s->mqtt;
    s->mqtt = NULL;
    pthread_mutex_unlock(&s->lock);
    if (c)
        mqtt_client_free(c); /* outside s->lock: its callback takes it */
    if (s->file_thread_on) {
        pthread_join(s->file_thread, NULL);
        s->file_thread_on = false;
    }
    if (s->src) {
        inferd_instance_destroy(s->src);
        s->src = NULL;
    }
}

inferd_status rstream_subscribe(rstream *s, rrule *r, inferd_error *err)
{
    pthread_mutex_lock(&s->source_lock);
    pthread_mutex_lock(&s->lock);
    if (s->n_subs == s->cap_subs) {
        size_t cap = s->cap_subs ? s->cap_subs * 2 : 4;
        rrule **p = realloc(s->subs, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&s->lock);
            pthread_mutex_unlock(&s->source_lock);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        s->subs = p, s->cap_subs = cap;
    }
    s->subs[s->n_subs++] = r;
    bool first = s->n_subs == 1;
    pthread_mutex_unlock(&s->lock);
    inferd_status st = INFERD_OK;
    /* Started outside s->lock: a source may deliver from inside its start. */
    if (first && (st = source_start(s, err)) != INFERD_OK) {
        pthread_mutex_lock(&s->lock);
        s->n_subs--;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&s->source_lock);
    return st;
}

void rstream_unsubscribe(rstream *s, rrule *r)
{
    pthread_mutex_lock(&s->source_lock);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_subs; i++)
        if (s->subs[i] == r) {
            memmove(&s->subs[i], &s->subs[i + 1], (s->n_subs - i - 1) * sizeof *s->subs);
            s->n_subs--;
            break;
        }
    bool last = s->n_subs == 0;
    pthread_mutex_unlock(&s->lock);
    /* Stopped outside s->lock: its callbacks take it until they are done. */
    if (last)
        source_stop(s);
    pthread_mutex_unlock(&s->source_lock);
}

/* The MQTT connection a running stream holds, for its rules' status. */
bool rstream_connection(rstream *s, mqtt_stats *out)
{
    pthread_mutex_lock(&s->lock);
    bool has = s->mqtt != NULL;
    if (has)
        mqtt_client_stats(s->mqtt, out);
    pthread_mutex_unlock(&s->lock);
    return has;
}
