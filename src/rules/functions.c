/* functions.c: the functions a rule can call besides the built-in ones:
 * function components of C and portable plugins (each running rule has its
 * own instance), and every named estimator, by its name
 * ("peopleCountEstimator") or its short name ("people_count").
 *
 * An estimator called as a function takes an encoded image (bytes, or a
 * base64 string as JSON messages carry them) and optionally an object of
 * request options, and returns the estimator's result object. The call
 * goes through the estimator's batcher like an HTTP request, and waits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "portable/portables.h"
#include "rules/internal.h"

struct rfunc {
    rfunc *next;
    rules_engine *e;
    char *name;
    inferd_instance *inst; /* owned; NULL for an estimator or while validating */
    long estimator;        /* index in e->est, or -1 */
};

/* The short names of the built-in estimators, as rules call them. */
static const struct {
    const char *alias, *name;
} estimator_aliases[] = {
    {"people_count", "peopleCountEstimator"},
    {"label_image", "imageLabelEstimator"},
    {"defects", "defectEstimator"},
};

static long find_estimator(rules_engine *e, const char *name)
{
    if (!e->est)
        return -1;
    for (size_t i = 0; i < sizeof estimator_aliases / sizeof *estimator_aliases; i++)
        if (strcmp(name, estimator_aliases[i].alias) == 0)
            name = estimator_aliases[i].name;
    return inferd_estimators_find(e->est, name);
}

/* ---- estimator calls ------------------------------------------------------------ */

typedef struct est_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    inferd_value *result;
    inferd_error err;
} est_wait;

static void est_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                     const inferd_estimate_timing *t)
{
    est_wait *w = ctx;
    (void)index, (void)t;
    pthread_mutex_lock(&w->lock);
    w->result = result;
    if (!result && err)
        w->err = *err;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static inferd_status call_estimator(void *ctx, const inferd_value *const *args, size_t n,
                                    inferd_value **result, inferd_error *err)
{
    rfunc *f = ctx;
    rules_engine *e = f->e;
    const void *data = NULL;
    size_t len = 0;
    void *decoded = NULL;
    const char *text;
    if (inferd_value_get_bytes(args[0], &data, &len, NULL) != INFERD_OK) {
        if (inferd_value_get_string(args[0], &text, &len, NULL) != INFERD_OK)
            return inferd_error_set(err, INFERD_ETYPE, "%s: argument 1 must be an image (bytes "
                                    "or a base64 string), got %s", f->name,
                                    inferd_value_type_name(inferd_value_type_of(args[0])));
        if (inferd_base64_decode(text, len, &decoded, &len, err) != INFERD_OK)
            return inferd_error_prefix(err, "%s: argument 1 is a string but not base64",
                                       f->name);
        data = decoded;
    }
    const inferd_value *options = n > 1 ? args[1] : NULL;
    if (options && !inferd_value_is(options, INFERD_VALUE_OBJECT) &&
        !inferd_value_is(options, INFERD_VALUE_NULL)) {
        free(decoded);
        return inferd_error_set(err, INFERD_ETYPE, "%s: argument 2 (options) must be an object, "
                                "got %s", f->name,
                                inferd_value_type_name(inferd_value_type_of(options)));
    }
    inferd_estimate_input in = {0};
    inferd_status st = inferd_image_decode(data, len, INFERD_PIXEL_RGB8,
                                           (uint64_t)inferd_config_int(e->cfg, "image.max_pixels"),
                                           &in.image, err);
    free(decoded);
    if (st != INFERD_OK)
        return inferd_error_prefix(err, "%s", f->name);
    est_wait w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    st = inferd_estimators_submit(e->est, (size_t)f->estimator, &in, 1,
                                  inferd_value_is(options, INFERD_VALUE_OBJECT) ? options : NULL,
                                  est_done, &w, err);
    if (st != INFERD_OK) {
        inferd_image_free(in.image);
    } else {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        if (w.result)
            *result = w.result;
        else
            st = inferd_error_set(err, w.err.code ? w.err.code : INFERD_EPLUGIN, "%s",
                                  w.err.message);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return st == INFERD_OK ? st : inferd_error_prefix(err, "%s", f->name);
}

/* ---- function components --------------------------------------------------------- */

static inferd_status call_component(void *ctx, const inferd_value *const *args, size_t n,
                                    inferd_value **result, inferd_error *err)
{
    rfunc *f = ctx;
    return inferd_instance_exec(f->inst, args, n, result, err);
}

bool rfuncs_plugin_running(rules_engine *e, const char *plugin, char *state, size_t size,
                           char *last, size_t last_size)
{
    inferd_value *d = inferd_portables_describe(e->portables, plugin);
    const char *status = inferd_value_string_or(inferd_value_object_get(d, "status"), "");
    if (state)
        snprintf(state, size, "%s", d ? status : "removed");
    if (last)
        snprintf(last, last_size, "%s",
                 inferd_value_string_or(inferd_value_object_get(d, "lastError"), ""));
    bool up = strcmp(status, "running") == 0;
    inferd_value_free(d);
    return up;
}

/* The component's validate at bind time, with an instance of its own when
 * the rule is only being checked. Arguments that are not literals (NULL
 * here) reach the plugin as null values. A portable plugin that is not up
 * yet (the daemon is starting) validates when its rules start, which waits
 * for it. */
static inferd_status validate_component(void *ctx, const inferd_value *const *args, size_t n,
                                        inferd_error *err)
{
    rfunc *f = ctx;
    const char *plugin = rfuncs_portable_plugin(f->e, f->name);
    if (!f->inst && plugin && !rfuncs_plugin_running(f->e, plugin, NULL, 0, NULL, 0))
        return INFERD_OK;
    inferd_value *null = inferd_value_null();
    const inferd_value **all = calloc(n ? n : 1, sizeof *all);
    inferd_instance *inst = f->inst;
    inferd_status st = null && all ? INFERD_OK
                                   : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; st == INFERD_OK && i < n; i++)
        all[i] = args[i] ? args[i] : null;
    if (st == INFERD_OK && !inst)
        st = inferd_instance_create(f->e->reg, f->name, NULL, NULL, &inst, err);
    /* What the plugin's validate refuses is the rule's fault: a 400. */
    if (st == INFERD_OK && (st = inferd_instance_validate(inst, all, n, err)) == INFERD_EPLUGIN)
        st = inferd_error_recode(err, INFERD_EINVAL);
    if (inst && inst != f->inst)
        inferd_instance_destroy(inst);
    free(all);
    inferd_value_free(null);
    return st;
}

inferd_status rfuncs_resolve(void *ctx, const char *name, sql_function *out, inferd_error *err)
{
    rfuncs *fs = ctx;
    rules_engine *e = fs->e;
    const inferd_component *c = inferd_registry_find(e->reg, name, NULL);
    long est = -1;
    if (!c || c->kind != INFERD_KIND_FUNCTION) {
        if ((est = find_estimator(e, name)) < 0)
            return INFERD_ENOTFOUND;
        c = NULL;
    }
    rfunc *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    f->e = e;
    f->estimator = est;
    if (c && fs->instances) {
        inferd_status st = inferd_instance_create(e->reg, name, NULL, NULL, &f->inst, err);
        if (st != INFERD_OK) {
            free(f->name);
            free(f);
            return st;
        }
    }
    f->next = fs->list;
    fs->list = f;
    *out = (sql_function){
        .min_args = c ? c->min_args : 1,
        .max_args = c ? c->max_args : 2,
        .aggregate = c && (c->flags & INFERD_COMPONENT_AGGREGATE),
        .call = c ? call_component : call_estimator,
        .validate = c && ((const inferd_function_ops *)c->ops)->validate ? validate_component
                                                                           : NULL,
        .ctx = f,
    };
    return INFERD_OK;
}

inferd_status rfuncs_resolve_names(void *ctx, const char *name, sql_function *out,
                                   inferd_error *err)
{
    inferd_status st = rfuncs_resolve(ctx, name, out, err);
    if (st == INFERD_OK)
        out->validate = NULL;
    return st;
}

void rfuncs_free(rfuncs *fs)
{
    for (rfunc *f = fs->list, *next; f; f = next) {
        next = f->next;
        if (f->inst)
            inferd_instance_destroy(f->inst);
        free(f->name);
        free(f);
    }
    fs->list = NULL;
}

const char *rfuncs_portable_plugin(rules_engine *e, const char *name)
{
    const inferd_plugin_info *p = NULL;
    const inferd_component *c = inferd_registry_find(e->reg, name, &p);
    if (!c || !p || !e->portables || !inferd_portables_has(e->portables, p->name))
        return NULL;
    return p->name;
}
