/* plugin/metrics.c: a plugin's own metrics (inferd_metric_*, ABI 2.3).
 *
 * Each instance owns its metrics (made at its first use, gone with it):
 * families by name, each with its kind, help, histogram bounds and its
 * series, one per label set. A label set is kept rendered as Prometheus
 * writes it (instance="x",k="v"), so that finding a series is one string
 * comparison and /metrics copies it as it is. One mutex per instance: a
 * plugin's metric calls are short and an instance's are few.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"
#include "plugin/internal.h"

#define LOG "plugin"
#define MAX_LABELS 8
#define MAX_NAME 63
#define MAX_VALUE 127
#define LABELS_CAP 2048

typedef struct pm_series {
    char *labels;          /* owned, rendered */
    double value;          /* counter, gauge; a histogram's sum */
    uint64_t count;        /* histogram */
    uint64_t *buckets;     /* owned: histogram, n_bounds + 1 */
} pm_series;

typedef struct pm_family {
    char name[MAX_NAME + 1];
    inferd_metric_kind kind;
    char *help;            /* owned, or NULL */
    double *bounds;        /* owned: histogram */
    size_t n_bounds;
    pm_series *series;     /* owned */
    size_t n_series;
} pm_family;

struct plugin_metrics {
    pthread_mutex_t mu;
    pm_family fam[INFERD_METRIC_FAMILIES];
    size_t n_fam;
    bool warned;           /* its first refusal is logged, not each */
};

/* Prometheus's default buckets. */
static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static bool valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > MAX_NAME || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Appends v to buf as a Prometheus label value (\\, \", \n escaped). */
static size_t put_escaped(char *buf, size_t pos, size_t cap, const char *v)
{
    for (; *v && pos + 2 < cap; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            buf[pos++] = '\\';
            buf[pos++] = *v == '\n' ? 'n' : *v;
        } else {
            buf[pos++] = *v;
        }
    }
    buf[pos < cap ? pos : cap - 1] = '\0';
    return pos;
}

/* instance="<name>" and the given pairs, into buf; false when a key or a
 * value is not one, or there are too many. */
static bool render_labels(const inferd_instance *self, const char *const *labels, char *buf,
                          size_t cap)
{
    size_t pos = (size_t)snprintf(buf, cap, "instance=\"");
    pos = put_escaped(buf, pos, cap, self->name);
    pos += (size_t)snprintf(buf + pos, cap - pos, "\"");
    size_t n = 0;
    for (; labels && labels[n]; n += 2) {
        const char *k = labels[n], *v = labels[n + 1];
        if (!v || n / 2 >= MAX_LABELS || !valid_name(k) || strcmp(k, "instance") == 0 ||
            strlen(v) > MAX_VALUE)
            return false;
        pos += (size_t)snprintf(buf + pos, cap - pos, ",%s=\"", k);
        pos = put_escaped(buf, pos, cap, v);
        pos += (size_t)snprintf(buf + pos, cap - pos, "\"");
    }
    return pos + 1 < cap;
}

static void refused(inferd_instance *self, struct plugin_metrics *m, const char *name,
                    const char *why)
{
    if (m && m->warned)
        return;
    if (m)
        m->warned = true;
    inferd_log_warn(LOG, "%s: metric %s refused: %s (later refusals of this instance are not "
                    "logged)", self->name, name ? name : "(null)", why);
}

/* The instance's metrics, made at the first use. */
static struct plugin_metrics *metrics_of(inferd_instance *self)
{
    pthread_mutex_lock(&self->counters_lock);
    if (!self->metrics && (self->metrics = calloc(1, sizeof *self->metrics)))
        pthread_mutex_init(&self->metrics->mu, NULL);
    pthread_mutex_unlock(&self->counters_lock);
    return self->metrics;
}

/* The family called name (made with kind when new); NULL with why. Under mu. */
static pm_family *family(struct plugin_metrics *m, const char *name, inferd_metric_kind kind,
                         bool gauge_or_counter, const char **why)
{
    for (size_t i = 0; i < m->n_fam; i++) {
        pm_family *f = &m->fam[i];
        if (strcmp(f->name, name) != 0)
            continue;
        bool fits = f->kind == kind ||
                    (gauge_or_counter && (f->kind == INFERD_METRIC_COUNTER ||
                                          f->kind == INFERD_METRIC_GAUGE));
        if (!fits)
            *why = "it is a metric of another kind";
        return fits ? f : NULL;
    }
    if (m->n_fam == INFERD_METRIC_FAMILIES) {
        *why = "the instance has INFERD_METRIC_FAMILIES metrics already";
        return NULL;
    }
    pm_family *f = &m->fam[m->n_fam];
    *f = (pm_family){.kind = kind};
    snprintf(f->name, sizeof f->name, "%s", name);
    if (kind == INFERD_METRIC_HISTOGRAM) {
        size_t n = sizeof default_bounds / sizeof default_bounds[0];
        if (!(f->bounds = malloc(sizeof default_bounds))) {
            *why = "out of memory";
            return NULL;
        }
        memcpy(f->bounds, default_bounds, sizeof default_bounds);
        f->n_bounds = n;
    }
    m->n_fam++;
    return f;
}

/* The series of f with these labels (made when new); NULL with why. Under mu. */
static pm_series *series(pm_family *f, const char *labels, const char **why)
{
    for (size_t i = 0; i < f->n_series; i++)
        if (strcmp(f->series[i].labels, labels) == 0)
            return &f->series[i];
    if (f->n_series == INFERD_METRIC_SERIES) {
        *why = "the metric has INFERD_METRIC_SERIES label sets already";
        return NULL;
    }
    if (f->n_series == 0 && !(f->series = calloc(INFERD_METRIC_SERIES, sizeof *f->series))) {
        *why = "out of memory";
        return NULL;
    }
    pm_series *s = &f->series[f->n_series];
    *s = (pm_series){.labels = strdup(labels)};
    if (f->kind == INFERD_METRIC_HISTOGRAM)
        s->buckets = calloc(f->n_bounds + 1, sizeof *s->buckets);
    if (!s->labels || (f->kind == INFERD_METRIC_HISTOGRAM && !s->buckets)) {
        free(s->labels);
        free(s->buckets);
        *why = "out of memory";
        return NULL;
    }
    f->n_series++;
    return s;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static int update(inferd_instance *self, const char *name, const char *const *labels,
                  double v, enum op op)
{
    if (!self)
        return -1;
    struct plugin_metrics *m = metrics_of(self);
    char rendered[LABELS_CAP];
    const char *why = NULL;
    if (!m)
        why = "out of memory";
    else if (!valid_name(name))
        why = "a name is [a-zA-Z_][a-zA-Z0-9_]*, at most 63 bytes";
    else if (!render_labels(self, labels, rendered, sizeof rendered))
        why = "labels are key, value pairs (at most 8; keys as names, not \"instance\"; values "
              "of at most 127 bytes), NULL-ended";
    else if (!isfinite(v) && op != OP_SET)
        why = "the value is not finite";
    if (why) {
        refused(self, m, name, why);
        return -1;
    }
    inferd_metric_kind kind = op == OP_SET       ? INFERD_METRIC_GAUGE
                              : op == OP_OBSERVE ? INFERD_METRIC_HISTOGRAM
                                                 : INFERD_METRIC_COUNTER;
    pthread_mutex_lock(&m->mu);
    pm_family *f = family(m, name, kind, op == OP_ADD, &why);
    if (f && op == OP_ADD && f->kind == INFERD_METRIC_COUNTER && v < 0)
        why = "a counter only goes up";
    pm_series *s = f && !why ? series(f, rendered, &why) : NULL;
    if (s && op == OP_ADD) {
        s->value += v;
    } else if (s && op == OP_SET) {
        s->value = v;
    } else if (s) {
        size_t b = 0;
        while (b < f->n_bounds && v > f->bounds[b])
            b++;
        s->buckets[b]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&m->mu);
    if (!s) {
        refused(self, m, name, why);
        return -1;
    }
    return 0;
}

int inferd_metric_add(inferd_instance *self, const char *name, const char *const *labels,
                      double delta)
{
    return update(self, name, labels, delta, OP_ADD);
}

int inferd_metric_set(inferd_instance *self, const char *name, const char *const *labels,
                      double value)
{
    return update(self, name, labels, value, OP_SET);
}

int inferd_metric_observe(inferd_instance *self, const char *name, const char *const *labels,
                          double value)
{
    return update(self, name, labels, value, OP_OBSERVE);
}

int inferd_metric_describe(inferd_instance *self, const char *name, inferd_metric_kind kind,
                           const char *help, const double *buckets, size_t n_buckets)
{
    if (!self)
        return -1;
    struct plugin_metrics *m = metrics_of(self);
    const char *why = NULL;
    if (!m)
        why = "out of memory";
    else if (!valid_name(name))
        why = "a name is [a-zA-Z_][a-zA-Z0-9_]*, at most 63 bytes";
    else if (kind != INFERD_METRIC_COUNTER && kind != INFERD_METRIC_GAUGE &&
             kind != INFERD_METRIC_HISTOGRAM)
        why = "not a metric kind";
    for (size_t i = 1; !why && buckets && i < n_buckets; i++)
        if (!(buckets[i] > buckets[i - 1]))
            why = "bucket bounds must ascend";
    if (!why && buckets && (n_buckets == 0 || n_buckets > 64 || kind != INFERD_METRIC_HISTOGRAM))
        why = "buckets are for a histogram, 1 to 64 of them";
    pm_family *f = NULL;
    if (!why) {
        pthread_mutex_lock(&m->mu);
        f = family(m, name, kind, false, &why);
        if (f && f->n_series > 0 && buckets)
            why = "its buckets are fixed by its first observation";
        char *h = f && !why && help ? strdup(help) : NULL;
        double *b = f && !why && buckets ? malloc(n_buckets * sizeof *b) : NULL;
        if (f && !why && ((help && !h) || (buckets && !b)))
            why = "out of memory";
        if (f && !why) {
            if (h) {
                free(f->help);
                f->help = h;
                h = NULL;
            }
            if (b) {
                memcpy(b, buckets, n_buckets * sizeof *b);
                free(f->bounds);
                f->bounds = b;
                f->n_bounds = n_buckets;
                b = NULL;
            }
        }
        free(h);
        free(b);
        pthread_mutex_unlock(&m->mu);
    }
    if (why) {
        refused(self, m, name, why);
        return -1;
    }
    return 0;
}

void inferd__instance_metrics_free(inferd_instance *inst)
{
    struct plugin_metrics *m = inst->metrics;
    if (!m)
        return;
    for (size_t i = 0; i < m->n_fam; i++) {
        pm_family *f = &m->fam[i];
        for (size_t k = 0; k < f->n_series; k++) {
            free(f->series[k].labels);
            free(f->series[k].buckets);
        }
        free(f->series);
        free(f->bounds);
        free(f->help);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
    inst->metrics = NULL;
}

void inferd_registry_each_metric(inferd_registry *reg, inferd_metric_fn fn, void *ctx)
{
    pthread_mutex_lock(&reg->lock);
    for (inferd_instance *i = reg->live; i; i = i->live_next) {
        pthread_mutex_lock(&i->counters_lock);
        struct plugin_metrics *m = i->metrics;
        pthread_mutex_unlock(&i->counters_lock);
        if (!m)
            continue;
        pthread_mutex_lock(&m->mu);
        for (size_t f = 0; f < m->n_fam; f++) {
            const pm_family *fa = &m->fam[f];
            for (size_t k = 0; k < fa->n_series; k++) {
                const pm_series *s = &fa->series[k];
                inferd_metric_sample smp = {
                    .plugin = i->plugin->info.name, .instance = i->name, .name = fa->name,
                    .help = fa->help ? fa->help : "", .kind = fa->kind, .labels = s->labels,
                    .value = s->value, .count = s->count, .bounds = fa->bounds,
                    .buckets = s->buckets, .n_bounds = fa->n_bounds};
                fn(ctx, &smp);
            }
        }
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&reg->lock);
}
