/* sensors: a C plugin for streams and rules (docs/rules.md, "A C plugin in
 * a rule"): one of each kind a rule uses.
 *
 *   source   simulated_sensor   every intervalMs, one reading per sensor:
 *                               {"sensor": "s<i>", "seq": k, "temperature": t}
 *                               with t = 20 + i + k / 2 (so that a reader can
 *                               check it), count ticks (0: for ever)
 *   function celsius_to_fahrenheit(c)   c * 9 / 5 + 32
 *   function in_range(x, lo, hi)        lo <= x <= hi; its validate refuses
 *                               literal bounds that are not numbers or not
 *                               in order, when the rule is created
 *   sink     csv_file           appends each result row to path as a CSV
 *                               line, the column names first when the file
 *                               is empty
 *
 *   INFERD_ACTIVE_PLUGINS=sensors \
 *   INFERD_PLUGIN_SETTINGS='{"simulated_sensor": {"intervalMs": 100, "count": 3}}' inferd serve
 */
#include <inferd/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the source ------------------------------------------------------------------ */

static const inferd_prop_spec sensor_props[] = {
    INFERD_PROP_UINT("intervalMs", "time between readings", 1000, 1, 3600000),
    INFERD_PROP_UINT("sensors", "readings per tick (sensors s0, s1, ...)", 2, 1, 1000),
    INFERD_PROP_UINT("count", "ticks before it falls silent (0: never)", 0, 0, 1000000000),
    INFERD_PROP_STRING("datasource", "the stream's DATASOURCE (unused: every sensor is simulated)",
                       ""),
    INFERD_PROP_END,
};

typedef struct sensor_source {
    uint64_t interval_ms, sensors, count, ticks;
    uint64_t timer;
} sensor_source;

static inferd_status sensor_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    sensor_source *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->interval_ms = (uint64_t)inferd_props_int(p, "intervalMs");
    s->sensors = (uint64_t)inferd_props_int(p, "sensors");
    s->count = (uint64_t)inferd_props_int(p, "count");
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

/* One tick, on the host's timer thread: emit hands each reading to the
 * stream (which owns it from then on) and never blocks. */
static void sensor_tick(inferd_instance *self, void *user)
{
    sensor_source *s = user;
    if (s->count && s->ticks >= s->count)
        return;
    uint64_t k = s->ticks++;
    for (uint64_t i = 0; i < s->sensors; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%llu", (unsigned long long)i);
        inferd_value *m = inferd_value_object();
        if (!m)
            return;
        inferd_error err = {0};
        if (inferd_value_object_set(m, "sensor", inferd_value_string(name), &err) ||
            inferd_value_object_set(m, "seq", inferd_value_int((int64_t)k), &err) ||
            inferd_value_object_set(m, "temperature",
                                    inferd_value_double(20.0 + (double)i + (double)k / 2.0), &err)) {
            inferd_value_free(m);
            return;
        }
        if (inferd_instance_emit(self, m, &err) != INFERD_OK)
            inferd_log_warn("sensors", "a reading was not taken: %s", err.message);
    }
}

static inferd_status sensor_start(inferd_instance *self, inferd_error *err)
{
    sensor_source *s = inferd_instance_state(self);
    return inferd_timer_start(self, s->interval_ms, sensor_tick, s, &s->timer, err);
}

static void sensor_stop(inferd_instance *self)
{
    sensor_source *s = inferd_instance_state(self);
    inferd_timer_cancel(self, s->timer); /* returns once a running tick has */
}

static void sensor_deinit(inferd_instance *self) { free(inferd_instance_state(self)); }

/* ---- the functions --------------------------------------------------------------------- */

static inferd_status number_arg(const char *fn, const inferd_value *const *args, size_t i,
                                double *out, inferd_error *err)
{
    if (inferd_value_get_double(args[i], out, NULL) != INFERD_OK)
        return inferd_error_set(err, INFERD_EINVAL, "%s: argument %zu must be a number, got %s",
                                fn, i + 1, inferd_value_type_name(inferd_value_type_of(args[i])));
    return INFERD_OK;
}

static inferd_status to_fahrenheit(inferd_instance *self, const inferd_value *const *args,
                                   size_t n, inferd_value **result, inferd_error *err)
{
    double c;
    if (inferd_value_is(args[0], INFERD_VALUE_NULL))
        return INFERD_OK; /* NULL in, NULL out (the host makes a NULL result) */
    inferd_status st = number_arg("celsius_to_fahrenheit", args, 0, &c, err);
    if (st == INFERD_OK)
        *result = inferd_value_double(c * 9.0 / 5.0 + 32.0);
    return st;
}

/* At rule creation: args that are literals in the rule have their values,
 * others (columns, expressions) are null. */
static inferd_status in_range_validate(inferd_instance *self, const inferd_value *const *args,
                                       size_t n, inferd_error *err)
{
    double lo, hi;
    for (size_t i = 1; i < 3; i++)
        if (!inferd_value_is(args[i], INFERD_VALUE_NULL) &&
            number_arg("in_range", args, i, i == 1 ? &lo : &hi, err) != INFERD_OK)
            return INFERD_EINVAL;
    if (!inferd_value_is(args[1], INFERD_VALUE_NULL) &&
        !inferd_value_is(args[2], INFERD_VALUE_NULL) && lo > hi)
        return inferd_error_set(err, INFERD_EINVAL, "in_range: lo (%g) is above hi (%g)", lo, hi);
    return INFERD_OK;
}

static inferd_status in_range(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    double x, lo, hi;
    inferd_status st;
    if ((st = number_arg("in_range", args, 0, &x, err)) ||
        (st = number_arg("in_range", args, 1, &lo, err)) ||
        (st = number_arg("in_range", args, 2, &hi, err)))
        return st;
    *result = inferd_value_bool(lo <= x && x <= hi);
    return INFERD_OK;
}

/* ---- the sink -------------------------------------------------------------------------- */

static const inferd_prop_spec csv_props[] = {
    INFERD_PROP_STRING("path", "the CSV file results are appended to", NULL),
    INFERD_PROP_END,
};

typedef struct csv_sink {
    FILE *f;
    char *path;
} csv_sink;

static inferd_status csv_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    const char *path = inferd_props_string(p, "path");
    csv_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    /* Appended to; at its end, so that ftell says whether it is empty. */
    if (!(s->f = fopen(path, "a")) || fseek(s->f, 0, SEEK_END) != 0) {
        if (s->f)
            fclose(s->f);
        inferd_status st = inferd_error_set(err, INFERD_EIO, "csv_file: cannot open %s: %s", path,
                                            strerror(errno));
        free(s->path);
        free(s);
        return st;
    }
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

/* A value as one CSV field: numbers and bools as JSON writes them, strings
 * quoted when they hold a comma, a quote or a line break. */
static void csv_field(FILE *f, const inferd_value *v)
{
    const char *s;
    size_t len;
    if (inferd_value_get_string(v, &s, &len, NULL) == INFERD_OK) {
        if (!strpbrk(s, ",\"\r\n")) {
            fwrite(s, 1, len, f);
            return;
        }
        fputc('"', f);
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '"')
                fputc('"', f);
            fputc(s[i], f);
        }
        fputc('"', f);
        return;
    }
    if (inferd_value_is(v, INFERD_VALUE_NULL))
        return;
    char *json = NULL;
    if (inferd_value_to_json(v, INFERD_JSON_COMPACT, &json, &len, NULL) == INFERD_OK)
        fwrite(json, 1, len, f);
    free(json);
}

static inferd_status csv_row(csv_sink *s, const inferd_value *row, inferd_error *err)
{
    if (!inferd_value_is(row, INFERD_VALUE_OBJECT))
        return inferd_error_set(err, INFERD_EINVAL, "csv_file: a result row must be an object");
    const char *key;
    inferd_value *v;
    if (ftell(s->f) == 0) { /* a new file: the header first */
        for (size_t i = 0; inferd_value_object_entry(row, i, &key, &v); i++)
            fprintf(s->f, "%s%s", i ? "," : "", key);
        fputc('\n', s->f);
    }
    for (size_t i = 0; inferd_value_object_entry(row, i, &key, &v); i++) {
        if (i)
            fputc(',', s->f);
        csv_field(s->f, v);
    }
    fputc('\n', s->f);
    /* Flushed: a reader sees every row as soon as it is collected. */
    if (ferror(s->f) || fflush(s->f) != 0)
        return inferd_error_set(err, INFERD_EIO, "csv_file: writing %s: %s", s->path,
                                strerror(errno));
    return INFERD_OK;
}

/* One result row, or the array of rows of one emission (sendSingle false). */
static inferd_status csv_collect(inferd_instance *self, const inferd_value *item, inferd_error *err)
{
    csv_sink *s = inferd_instance_state(self);
    if (!inferd_value_is(item, INFERD_VALUE_ARRAY))
        return csv_row(s, item, err);
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < inferd_value_array_len(item) && st == INFERD_OK; i++)
        st = csv_row(s, inferd_value_array_get(item, i), err);
    return st;
}

static void csv_deinit(inferd_instance *self)
{
    csv_sink *s = inferd_instance_state(self);
    fclose(s->f);
    free(s->path);
    free(s);
}

INFERD_PLUGIN("sensors", "1.0.0",
              INFERD_SOURCE("simulated_sensor", sensor_props, sensor_init, sensor_start,
                            sensor_stop, sensor_deinit),
              INFERD_FUNCTION("celsius_to_fahrenheit", 1, 1, NULL, NULL, to_fahrenheit, NULL),
              INFERD_FUNCTION("in_range", 3, 3, NULL, in_range_validate, in_range, NULL),
              INFERD_SINK("csv_file", csv_props, csv_init, csv_collect, csv_deinit))
