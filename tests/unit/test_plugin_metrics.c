/* tests/unit/test_plugin_metrics.c: a plugin's own metrics (inferd_metric_*,
 * ABI 2.3): what each kind records, the labels as Prometheus reads them,
 * every refusal, the limits, and that the series go with the instance. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "support.h"

static inferd_status fn_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                             inferd_value **result, inferd_error *err)
{
    return INFERD_OK;
}

static const inferd_component comps[] = {
    INFERD_FUNCTION("metered", 0, 0, NULL, NULL, fn_exec, NULL),
};
static const inferd_plugin plugin = {
    INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin), "my-plugin",
    "1.0", NULL, comps, 1};

/* What inferd_registry_each_metric gave, copied. */
typedef struct seen {
    char name[64], labels[512], help[128], plugin[64];
    inferd_metric_kind kind;
    double value;
    uint64_t count, buckets[16];
    double bounds[16];
    size_t n_bounds;
} seen;
typedef struct seen_all {
    seen s[128];
    size_t n;
} seen_all;

static void take(void *ctx, const inferd_metric_sample *smp)
{
    seen_all *a = ctx;
    seen *s = &a->s[a->n++];
    snprintf(s->name, sizeof s->name, "%s", smp->name);
    snprintf(s->labels, sizeof s->labels, "%s", smp->labels);
    snprintf(s->help, sizeof s->help, "%s", smp->help);
    snprintf(s->plugin, sizeof s->plugin, "%s", smp->plugin);
    s->kind = smp->kind;
    s->value = smp->value;
    s->count = smp->count;
    s->n_bounds = smp->n_bounds;
    for (size_t i = 0; i < smp->n_bounds && i < 15; i++)
        s->bounds[i] = smp->bounds[i];
    for (size_t i = 0; smp->buckets && i <= smp->n_bounds && i < 16; i++)
        s->buckets[i] = smp->buckets[i];
}

static const seen *find(const seen_all *a, const char *name, const char *labels)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->s[i].name, name) == 0 && strcmp(a->s[i].labels, labels) == 0)
            return &a->s[i];
    return NULL;
}

static inferd_registry *reg;
static inferd_instance *inst;

static int setup(void **state)
{
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_add(reg, &plugin, "test_plugin_metrics.c", &err) != INFERD_OK ||
        inferd_instance_create(reg, "metered", "meter \"one\"", NULL, &inst, &err) != INFERD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
    return 0;
}

static void each_kind_records(void **state)
{
    assert_int_equal(inferd_metric_add(inst, "calls_total", NULL, 1), 0);
    assert_int_equal(inferd_metric_add(inst, "calls_total", NULL, 2.5), 0);
    assert_int_equal(inferd_metric_add(inst, "calls_total", (const char *[]){"route", "/a", NULL}, 1),
                     0);
    assert_int_equal(inferd_metric_set(inst, "temperature", NULL, 21.5), 0);
    assert_int_equal(inferd_metric_set(inst, "temperature", NULL, -3), 0);
    assert_int_equal(inferd_metric_add(inst, "temperature", NULL, 1), 0); /* a gauge adds too */
    static const double bounds[] = {0.1, 1, 10};
    assert_int_equal(inferd_metric_describe(inst, "latency", INFERD_METRIC_HISTOGRAM, "how long",
                                            bounds, 3), 0);
    for (double v = 0.05; v < 20; v *= 3) /* 0.05 0.15 0.45 1.35 4.05 12.15 */
        assert_int_equal(inferd_metric_observe(inst, "latency", NULL, v), 0);
    assert_int_equal(inferd_metric_observe(inst, "defaults", NULL, 0.2), 0);

    seen_all a = {0};
    inferd_registry_each_metric(reg, take, &a);
    assert_int_equal(a.n, 5);
    const seen *c = find(&a, "calls_total", "instance=\"meter \\\"one\\\"\"");
    assert_non_null(c);
    assert_string_equal(c->plugin, "my-plugin");
    assert_int_equal(c->kind, INFERD_METRIC_COUNTER);
    assert_true(c->value == 3.5);
    c = find(&a, "calls_total", "instance=\"meter \\\"one\\\"\",route=\"/a\"");
    assert_non_null(c);
    assert_true(c->value == 1);
    c = find(&a, "temperature", "instance=\"meter \\\"one\\\"\"");
    assert_non_null(c);
    assert_int_equal(c->kind, INFERD_METRIC_GAUGE);
    assert_true(c->value == -2);
    c = find(&a, "latency", "instance=\"meter \\\"one\\\"\"");
    assert_non_null(c);
    assert_string_equal(c->help, "how long");
    assert_int_equal(c->count, 6);
    assert_int_equal(c->n_bounds, 3);
    assert_int_equal(c->buckets[0], 1); /* <= 0.1 */
    assert_int_equal(c->buckets[1], 2); /* <= 1 */
    assert_int_equal(c->buckets[2], 2); /* <= 10 */
    assert_int_equal(c->buckets[3], 1); /* +Inf */
    assert_true(fabs(c->value - 18.2) < 1e-9);
    c = find(&a, "defaults", "instance=\"meter \\\"one\\\"\"");
    assert_non_null(c);
    assert_int_equal(c->n_bounds, 11); /* Prometheus's default buckets */
    assert_true(c->bounds[0] == 0.005 && c->bounds[10] == 10);
}

static void label_values_are_escaped(void **state)
{
    assert_int_equal(inferd_metric_add(inst, "x", (const char *[]){"k", "a\\b\"c\nd", NULL}, 1), 0);
    seen_all a = {0};
    inferd_registry_each_metric(reg, take, &a);
    assert_non_null(find(&a, "x", "instance=\"meter \\\"one\\\"\",k=\"a\\\\b\\\"c\\nd\""));
}

static void refusals(void **state)
{
    assert_int_equal(inferd_metric_add(inst, "c", NULL, 1), 0);
    assert_int_equal(inferd_metric_add(inst, "c", NULL, -1), -1);      /* a counter goes up */
    assert_int_equal(inferd_metric_set(inst, "c", NULL, 5), -1);       /* not a gauge */
    assert_int_equal(inferd_metric_observe(inst, "c", NULL, 5), -1);   /* not a histogram */
    assert_int_equal(inferd_metric_add(inst, "c", NULL, NAN), -1);
    assert_int_equal(inferd_metric_add(inst, "9lives", NULL, 1), -1);  /* not a name */
    assert_int_equal(inferd_metric_add(inst, "a-b", NULL, 1), -1);
    assert_int_equal(inferd_metric_add(inst, "", NULL, 1), -1);
    assert_int_equal(inferd_metric_add(inst, NULL, NULL, 1), -1);
    assert_int_equal(inferd_metric_add(NULL, "c", NULL, 1), -1);
    assert_int_equal(inferd_metric_add(inst, "c", (const char *[]){"instance", "x", NULL}, 1), -1);
    assert_int_equal(inferd_metric_add(inst, "c", (const char *[]){"bad key", "x", NULL}, 1), -1);
    assert_int_equal(inferd_metric_add(inst, "c", (const char *[]){"k", NULL}, 1), -1);
    const char *nine[19] = {"a", "1", "b", "1", "c", "1", "d", "1", "e", "1",
                            "f", "1", "g", "1", "h", "1", "i", "1", NULL};
    assert_int_equal(inferd_metric_add(inst, "c", nine, 1), -1);        /* 9 labels */
    char longv[200];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(inferd_metric_add(inst, "c", (const char *[]){"k", longv, NULL}, 1), -1);
    static const double down[] = {1, 0.5};
    assert_int_equal(inferd_metric_describe(inst, "h", INFERD_METRIC_HISTOGRAM, "", down, 2), -1);
    assert_int_equal(inferd_metric_describe(inst, "g", INFERD_METRIC_GAUGE, "", down, 1), -1);
    assert_int_equal(inferd_metric_describe(inst, "k", (inferd_metric_kind)7, "", NULL, 0), -1);
    assert_int_equal(inferd_metric_observe(inst, "h2", NULL, 1), 0);
    static const double up[] = {1, 2};
    assert_int_equal(inferd_metric_describe(inst, "h2", INFERD_METRIC_HISTOGRAM, "", up, 2), -1);
    seen_all a = {0};
    inferd_registry_each_metric(reg, take, &a);
    const seen *c = find(&a, "c", "instance=\"meter \\\"one\\\"\"");
    assert_non_null(c);
    assert_true(c->value == 1); /* none of the refused calls changed it */
}

static void limits(void **state)
{
    char name[16];
    for (int i = 0; i < INFERD_METRIC_FAMILIES; i++) {
        snprintf(name, sizeof name, "m%d", i);
        assert_int_equal(inferd_metric_set(inst, name, NULL, i), 0);
    }
    assert_int_equal(inferd_metric_set(inst, "one_more", NULL, 1), -1);
    char v[16];
    for (int i = 1; i < INFERD_METRIC_SERIES; i++) { /* m0 has one series already */
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(inferd_metric_set(inst, "m0", (const char *[]){"k", v, NULL}, i), 0);
    }
    assert_int_equal(inferd_metric_set(inst, "m0", (const char *[]){"k", "last", NULL}, 1), -1);
    seen_all a = {0};
    inferd_registry_each_metric(reg, take, &a);
    assert_int_equal(a.n, INFERD_METRIC_FAMILIES - 1 + INFERD_METRIC_SERIES);
}

static void series_go_with_the_instance(void **state)
{
    inferd_instance *other = NULL;
    inferd_error err = {0};
    assert_int_equal(inferd_instance_create(reg, "metered", "other", NULL, &other, &err), INFERD_OK);
    assert_int_equal(inferd_metric_add(other, "calls_total", NULL, 1), 0);
    assert_int_equal(inferd_metric_add(inst, "calls_total", NULL, 1), 0);
    seen_all a = {0};
    inferd_registry_each_metric(reg, take, &a);
    assert_int_equal(a.n, 2);
    inferd_instance_destroy(other);
    a.n = 0;
    inferd_registry_each_metric(reg, take, &a);
    assert_int_equal(a.n, 1);
    assert_non_null(find(&a, "calls_total", "instance=\"meter \\\"one\\\"\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_kind_records, setup, teardown),
        cmocka_unit_test_setup_teardown(label_values_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(limits, setup, teardown),
        cmocka_unit_test_setup_teardown(series_go_with_the_instance, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
