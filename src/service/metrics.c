/* service/metrics.c: counters and histograms, rendered as Prometheus text.
 *
 * Owns the request series (by route pattern, method and status, with a
 * latency histogram per route). The other series are read at scrape time
 * from their owners: the estimators (queue depth, batch sizes), the event
 * bus (drops, failures) and the registry (plugin errors), so nothing here
 * has to be told about them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/bus.h"
#include "core/clock.h"
#include "inferd/version.h"
#include "portable/portables.h"
#include "rules/rules.h"
#include "service/service.h"

/* Latency buckets, seconds (upper bounds; +Inf is implied). */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct req_series {
    char *route, *method;       /* owned */
    unsigned status;
    uint64_t count;
} req_series;

typedef struct lat_series {
    char *route;                /* owned */
    uint64_t counts[N_BUCKETS + 1];
    uint64_t total;
    double sum;
} lat_series;

struct svc_metrics {
    pthread_mutex_t lock;
    char *rules_text;   /* owned: the streams and rules section of the last scrape that got it */
    req_series *req;
    size_t n_req, cap_req;
    lat_series *lat;
    size_t n_lat, cap_lat;
};

inferd_status svc_metrics_new(svc_metrics **out)
{
    svc_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return INFERD_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return INFERD_OK;
}

void svc_metrics_free(svc_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_req; i++) {
        free(m->req[i].route);
        free(m->req[i].method);
    }
    for (size_t i = 0; i < m->n_lat; i++)
        free(m->lat[i].route);
    free(m->req);
    free(m->lat);
    free(m->rules_text);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Grows an array by one zeroed element; NULL when out of memory. */
static void *grow(void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *a = realloc(*arr, ncap * size);
        if (!a)
            return NULL;
        *arr = a;
        *cap = ncap;
    }
    void *slot = (char *)*arr + (*n)++ * size;
    memset(slot, 0, size);
    return slot;
}

/* The method as a label value: the methods of HTTP, or "other". A client
 * chooses the method: each distinct one would be a new series (and bytes
 * that are not UTF-8 would break every scrape). Routes are our patterns and
 * statuses our replies, so those stay bounded by themselves. */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                        "OPTIONS", "CONNECT", "TRACE", NULL};
    for (size_t i = 0; known[i]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "other";
}

void svc_metrics_request(svc_metrics *m, const char *route, const char *method, unsigned status,
                         uint64_t total_us)
{
    if (!m)
        return;
    method = method_label(method);
    double secs = (double)total_us / 1e6;
    pthread_mutex_lock(&m->lock);
    req_series *rs = NULL;
    for (size_t i = 0; i < m->n_req && !rs; i++)
        if (m->req[i].status == status && strcmp(m->req[i].route, route) == 0 &&
            strcmp(m->req[i].method, method) == 0)
            rs = &m->req[i];
    if (!rs && (rs = grow((void **)&m->req, &m->n_req, &m->cap_req, sizeof *rs))) {
        rs->route = strdup(route);
        rs->method = strdup(method);
        rs->status = status;
        if (!rs->route || !rs->method) {
            free(rs->route);
            free(rs->method);
            m->n_req--;
            rs = NULL;
        }
    }
    if (rs)
        rs->count++;
    lat_series *ls = NULL;
    for (size_t i = 0; i < m->n_lat && !ls; i++)
        if (strcmp(m->lat[i].route, route) == 0)
            ls = &m->lat[i];
    if (!ls && (ls = grow((void **)&m->lat, &m->n_lat, &m->cap_lat, sizeof *ls))) {
        if (!(ls->route = strdup(route))) {
            m->n_lat--;
            ls = NULL;
        }
    }
    if (ls) {
        size_t b = 0;
        while (b < N_BUCKETS && secs > buckets[b])
            b++;
        ls->counts[b]++;
        ls->total++;
        ls->sum += secs;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- rendering ------------------------------------------------------------------ */

typedef struct out {
    char *buf;
    size_t len, cap;
    bool failed;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = o->cap * 2 + (size_t)n + 1;
        char *b = realloc(o->buf, ncap);
        if (!b) {
            o->failed = true;
            return;
        }
        o->buf = b;
        o->cap = ncap;
    }
}

/* A label value with '\\', '"' and newlines escaped, as the format asks. */
static const char *esc(const char *s, char *buf, size_t size)
{
    size_t j = 0;
    for (; *s && j + 2 < size; s++) {
        if (*s == '\\' || *s == '"') {
            buf[j++] = '\\';
            buf[j++] = *s;
        } else if (*s == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = *s;
        }
    }
    buf[j] = '\0';
    return buf;
}

static void help(out *o, const char *name, const char *type, const char *text)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void render_requests(out *o, svc_metrics *m)
{
    char a[256], b[32];
    pthread_mutex_lock(&m->lock);
    help(o, "inferd_http_requests_total", "counter",
         "HTTP requests by route pattern, method and status (status 0: the client went away)");
    for (size_t i = 0; i < m->n_req; i++)
        put(o, "inferd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %" PRIu64
               "\n", esc(m->req[i].route, a, sizeof a), esc(m->req[i].method, b, sizeof b),
            m->req[i].status, m->req[i].count);
    help(o, "inferd_http_request_duration_seconds", "histogram",
         "time from a request's headers to its reply being done, by route pattern");
    for (size_t i = 0; i < m->n_lat; i++) {
        const lat_series *ls = &m->lat[i];
        esc(ls->route, a, sizeof a);
        uint64_t cum = 0;
        for (size_t k = 0; k < N_BUCKETS; k++) {
            cum += ls->counts[k];
            put(o, "inferd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64
                   "\n", a, buckets[k], cum);
        }
        put(o, "inferd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64
               "\n", a, ls->total);
        put(o, "inferd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", a, ls->sum);
        put(o, "inferd_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", a,
            ls->total);
    }
    pthread_mutex_unlock(&m->lock);
}

static void render_estimators(out *o, const inferd_estimators *est)
{
    size_t n = inferd_estimators_count(est);
    inferd_estimator_stats *st = calloc(n ? n : 1, sizeof *st);
    if (!st) {
        o->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        inferd_estimators_stats(est, i, &st[i]);
    char a[256];
#define EACH(fmt, expr)                                                                   \
    for (size_t i = 0; i < n; i++)                                                        \
        put(o, fmt "{estimator=\"%s\"} %" PRIu64 "\n",                                    \
            esc(inferd_estimators_name(est, i), a, sizeof a), (uint64_t)(expr))
    help(o, "inferd_estimator_queue_depth", "gauge", "images waiting for a batch");
    EACH("inferd_estimator_queue_depth", st[i].queued);
    help(o, "inferd_estimator_items_total", "counter", "images estimated (done or failed)");
    EACH("inferd_estimator_items_total", st[i].items);
    help(o, "inferd_estimator_failed_total", "counter", "images whose estimation failed");
    EACH("inferd_estimator_failed_total", st[i].failed);
    help(o, "inferd_estimator_rejected_total", "counter",
         "images refused because the queue was full (503 overloaded)");
    EACH("inferd_estimator_rejected_total", st[i].rejected);
    help(o, "inferd_estimator_delay_waits_total", "counter",
         "batches that waited maxDelayUs for more images (0 unless maxDelayUs is set)");
    EACH("inferd_estimator_delay_waits_total", st[i].delay_waits);
#undef EACH
    static const char *const les[] = {"1", "2", "4", "8", "16", "32", "64"};
    help(o, "inferd_estimator_batch_size", "histogram", "images per batch run");
    for (size_t i = 0; i < n; i++) {
        esc(inferd_estimators_name(est, i), a, sizeof a);
        uint64_t cum = 0;
        for (size_t k = 0; k < 7; k++) {
            cum += st[i].batch_hist[k];
            put(o, "inferd_estimator_batch_size_bucket{estimator=\"%s\",le=\"%s\"} %" PRIu64 "\n",
                a, les[k], cum);
        }
        put(o, "inferd_estimator_batch_size_bucket{estimator=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
            a, st[i].batches);
        put(o, "inferd_estimator_batch_size_sum{estimator=\"%s\"} %" PRIu64 "\n", a,
            st[i].batched);
        put(o, "inferd_estimator_batch_size_count{estimator=\"%s\"} %" PRIu64 "\n", a,
            st[i].batches);
    }
    free(st);
}

typedef struct ev_ctx {
    out *o;
    int pass;
} ev_ctx;

static void render_sub(void *ctx, const inferd_event_sub_stats *s)
{
    ev_ctx *c = ctx;
    static const char *const names[] = {"inferd_event_published_total",
                                        "inferd_event_delivered_total",
                                        "inferd_event_dropped_total",
                                        "inferd_event_failures_total", "inferd_event_queue_depth"};
    uint64_t v[] = {s->published, s->delivered, s->dropped, s->failures, s->queued};
    char a[256], b[256];
    put(c->o, "%s{subscriber=\"%s\",event=\"%s\"} %" PRIu64 "\n", names[c->pass],
        esc(s->instance, a, sizeof a), esc(s->event, b, sizeof b), v[c->pass]);
}

static void render_events(out *o)
{
    static const char *const helps[][3] = {
        {"inferd_event_published_total", "counter", "events offered to an event component"},
        {"inferd_event_delivered_total", "counter", "events handed to an event component"},
        {"inferd_event_dropped_total", "counter",
         "events dropped: the component's queue was full, or it was stopping"},
        {"inferd_event_failures_total", "counter", "batches an event component failed"},
        {"inferd_event_queue_depth", "gauge", "events waiting for an event component"},
    };
    for (int pass = 0; pass < 5; pass++) {
        help(o, helps[pass][0], helps[pass][1], helps[pass][2]);
        ev_ctx c = {o, pass};
        inferd_events_foreach(render_sub, &c);
    }
    help(o, "inferd_events_unrouted_total", "counter", "events published with no subscriber");
    put(o, "inferd_events_unrouted_total %" PRIu64 "\n", inferd_events_unrouted());
}

static void render_plugins(out *o, const inferd_registry *reg)
{
    char a[256];
    help(o, "inferd_plugin_errors_total", "counter",
         "failed calls into a plugin's components (init, process, estimate, handle, ...)");
    for (size_t i = 0; i < inferd_registry_plugin_count(reg); i++) {
        const inferd_plugin_info *p = inferd_registry_plugin_at(reg, i);
        put(o, "inferd_plugin_errors_total{plugin=\"%s\"} %" PRIu64 "\n", esc(p->name, a, sizeof a),
            inferd_registry_plugin_errors(p));
    }
}

typedef struct count_ctx {
    out *o;
} count_ctx;

static void render_count(void *ctx, const char *plugin, const char *instance,
                         const char *counter, int64_t value)
{
    count_ctx *c = ctx;
    char a[256], b[256], d[128];
    put(c->o, "inferd_plugin_count{plugin=\"%s\",instance=\"%s\",name=\"%s\"} %" PRId64 "\n",
        esc(plugin, a, sizeof a), esc(instance, b, sizeof b), esc(counter, d, sizeof d), value);
}

/* What plugins count themselves (inferd_instance_count), per instance. */
static void render_counts(out *o, inferd_registry *reg)
{
    help(o, "inferd_plugin_count", "gauge",
         "what a plugin's instance counts itself (a sink's sent and dropped, a camera's "
         "reconnects), by plugin, instance and name");
    count_ctx c = {o};
    inferd_registry_each_count(reg, render_count, &c);
}

/* ---- a plugin's own metrics (inferd_metric_*) ---------------------------------------- */

/* One series, its lines rendered, under its family's full name. */
typedef struct own_entry {
    char *family;               /* owned: inferd_plugin_<plugin>_<name> */
    char *help, *lines;         /* owned */
    inferd_metric_kind kind;
} own_entry;

typedef struct own_ctx {
    own_entry *e;
    size_t n, cap;
    bool failed;
} own_ctx;

static void collect_own(void *ctx, const inferd_metric_sample *s)
{
    own_ctx *c = ctx;
    own_entry *e = c->failed ? NULL : grow((void **)&c->e, &c->n, &c->cap, sizeof *e);
    if (!e) {
        c->failed = true;
        return;
    }
    /* The plugin's name as a metric name's part: letters and digits, else '_'. */
    char plugin[128];
    size_t k = 0;
    for (; s->plugin[k] && k < sizeof plugin - 1; k++) {
        char ch = s->plugin[k];
        plugin[k] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                        ? ch : '_';
    }
    plugin[k] = '\0';
    e->kind = s->kind;
    out o = {.buf = malloc(256), .cap = 256};
    if (asprintf(&e->family, "inferd_plugin_%s_%s", plugin, s->name) < 0)
        e->family = NULL;
    /* HELP text escapes a backslash and a line end (Prometheus's text format). */
    e->help = malloc(2 * strlen(s->help) + 1);
    for (size_t i = 0, j = 0; e->help; i++) {
        char ch = s->help[i];
        if (ch == '\\' || ch == '\n')
            e->help[j++] = '\\';
        e->help[j++] = ch == '\n' ? 'n' : ch;
        if (!ch)
            break;
    }
    if (o.buf && e->family && s->kind != INFERD_METRIC_HISTOGRAM) {
        put(&o, "%s{%s} %.15g\n", e->family, s->labels, s->value);
    } else if (o.buf && e->family) {
        uint64_t cum = 0;
        for (size_t b = 0; b < s->n_bounds; b++) {
            cum += s->buckets[b];
            put(&o, "%s_bucket{%s,le=\"%.15g\"} %" PRIu64 "\n", e->family, s->labels,
                s->bounds[b], cum);
        }
        put(&o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", e->family, s->labels, s->count);
        put(&o, "%s_sum{%s} %.15g\n", e->family, s->labels, s->value);
        put(&o, "%s_count{%s} %" PRIu64 "\n", e->family, s->labels, s->count);
    }
    e->lines = o.buf;
    if (!e->family || !e->help || !o.buf || o.failed)
        c->failed = true;
}

static int by_family(const void *a, const void *b)
{
    return strcmp(((const own_entry *)a)->family, ((const own_entry *)b)->family);
}

/* Every plugin's own metrics, each family's series together under one HELP
 * and TYPE (instances of a plugin share the names). */
static void render_own(out *o, inferd_registry *reg)
{
    own_ctx c = {0};
    inferd_registry_each_metric(reg, collect_own, &c);
    if (!c.failed && c.n > 1)
        qsort(c.e, c.n, sizeof *c.e, by_family); /* a family's series in any order */
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; !c.failed && i < c.n; i++) {
        if (i == 0 || strcmp(c.e[i].family, c.e[i - 1].family) != 0)
            help(o, c.e[i].family, kinds[c.e[i].kind],
                 c.e[i].help[0] ? c.e[i].help : "a plugin's own metric");
        put(o, "%s", c.e[i].lines);
    }
    o->failed |= c.failed;
    for (size_t i = 0; i < c.n; i++) {
        free(c.e[i].family);
        free(c.e[i].help);
        free(c.e[i].lines);
    }
    free(c.e);
}

/* Per portable plugin: whether it runs, its restarts, calls and failures. */
static void render_portables(out *o, inferd_portables *p)
{
    static const char *const rows[][4] = {
        {"inferd_portable_up", "gauge", "1 when the portable plugin's process runs (handshake "
         "or heartbeat answered)", "status"},
        {"inferd_portable_restarts_total", "counter", "restarts of the plugin's process",
         "restarts"},
        {"inferd_portable_calls_total", "counter", "calls into the plugin", "calls"},
        {"inferd_portable_call_failures_total", "counter",
         "calls into the plugin that failed (its errors, timeouts, crashes)", "callFailures"},
    };
    if (!p)
        return;
    inferd_value *all = inferd_portables_list(p);
    char a[256];
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        help(o, rows[r][0], rows[r][1], rows[r][2]);
        for (size_t i = 0; i < inferd_value_array_len(all); i++) {
            const inferd_value *d = inferd_value_array_get(all, i);
            const inferd_value *v = inferd_value_object_get(d, rows[r][3]);
            int64_t n = r == 0 ? strcmp(inferd_value_string_or(v, ""), "running") == 0
                               : inferd_value_int_or(v, 0);
            put(o, "%s{plugin=\"%s\"} %" PRId64 "\n", rows[r][0],
                esc(inferd_value_string_or(inferd_value_object_get(d, "name"), ""), a, sizeof a),
                n);
        }
    }
    inferd_value_free(all);
}

typedef struct rule_pass {
    out *o;
    int pass;
} rule_pass;

static void render_rule(void *ctx, const rules_rule_counts *c)
{
    static const char *const names[] = {"in", "out", "exceptions", "dropped"};
    rule_pass *p = ctx;
    char a[256];
    if (p->pass == 0) {
        put(p->o, "inferd_rule_running{rule=\"%s\"} %d\n", esc(c->id, a, sizeof a),
            c->running ? 1 : 0);
        return;
    }
    const uint64_t v[] = {c->records_in, c->records_out, c->exceptions, c->dropped};
    put(p->o, "inferd_rule_records{rule=\"%s\",counter=\"%s\"} %" PRIu64 "\n",
        esc(c->id, a, sizeof a), names[p->pass - 1], v[p->pass - 1]);
}

/* Streams and rules: totals since the daemon started, and each rule's
 * counters since it last started (GET /rules/{id}/status has every stage). */
static bool render_rules(out *o, rules_engine *e)
{
    rules_totals t;
    if (!rules_engine_totals(e, &t))
        return false;
    help(o, "inferd_streams", "gauge", "streams defined");
    put(o, "inferd_streams %zu\n", t.streams);
    help(o, "inferd_rules", "gauge", "rules defined, by state");
    put(o, "inferd_rules{state=\"running\"} %zu\n", t.rules_running);
    put(o, "inferd_rules{state=\"other\"} %zu\n", t.rules - t.rules_running);
    help(o, "inferd_rule_records_in_total", "counter", "messages that reached a rule");
    put(o, "inferd_rule_records_in_total %" PRIu64 "\n", t.records_in);
    help(o, "inferd_rule_records_out_total", "counter", "result rows rules produced");
    put(o, "inferd_rule_records_out_total %" PRIu64 "\n", t.records_out);
    help(o, "inferd_rule_exceptions_total", "counter",
         "malformed messages, failed evaluations and failed sends");
    put(o, "inferd_rule_exceptions_total %" PRIu64 "\n", t.exceptions);
    help(o, "inferd_rule_dropped_total", "counter",
         "messages and results dropped because a rule's or an action's buffer was full");
    put(o, "inferd_rule_dropped_total %" PRIu64 "\n", t.dropped);
    help(o, "inferd_rule_running", "gauge", "1 when the rule runs");
    rule_pass p = {o, 0};
    if (!rules_engine_each(e, render_rule, &p))
        return false;
    help(o, "inferd_rule_records", "gauge",
         "a rule's counters since it last started: messages in, rows out, exceptions, dropped");
    for (p.pass = 1; p.pass <= 4; p.pass++)
        if (!rules_engine_each(e, render_rule, &p))
            return false;
    return true;
}

/* The streams and rules section, fresh, or (while a change holds the
 * engine) the last one rendered: a scrape never waits on a change. */
static void render_rules_or_last(out *o, svc_metrics *m, rules_engine *e)
{
    if (!e)
        return;
    out fresh = {.buf = malloc(4096), .cap = 4096};
    bool ok = fresh.buf && render_rules(&fresh, e) && !fresh.failed;
    pthread_mutex_lock(&m->lock);
    if (ok) {
        free(m->rules_text);
        m->rules_text = strndup(fresh.buf, fresh.len);
    }
    if (m->rules_text)
        put(o, "%s", m->rules_text);
    pthread_mutex_unlock(&m->lock);
    free(fresh.buf);
}

char *svc_metrics_render(svc *s, size_t *len)
{
    out o = {.buf = malloc(8192), .cap = 8192};
    if (!o.buf)
        return NULL;
    uint64_t now_ms = inferd__now_ms();
    help(&o, "inferd_build_info", "gauge", "the running version");
    put(&o, "inferd_build_info{version=\"%s\"} 1\n", inferd_version());
    help(&o, "inferd_uptime_seconds", "gauge", "seconds since the service started");
    put(&o, "inferd_uptime_seconds %.3f\n", (double)(now_ms - s->started_ms) / 1000.0);
    help(&o, "inferd_ready", "gauge", "1 when the service takes requests");
    put(&o, "inferd_ready %d\n", s->ready ? 1 : 0);
    render_requests(&o, s->metrics);
    render_estimators(&o, s->est);
    o.failed |= !o.failed && !svc_kserve_metrics(s->kserve, &o.buf, &o.len, &o.cap);
    render_events(&o);
    pthread_rwlock_rdlock(&s->plugins_rw); /* no plugin comes or goes meanwhile */
    render_plugins(&o, s->reg);
    pthread_rwlock_unlock(&s->plugins_rw);
    render_counts(&o, s->reg);
    render_own(&o, s->reg);
    render_portables(&o, s->portables);
    render_rules_or_last(&o, s->metrics, s->rules);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
