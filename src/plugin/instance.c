/* plugin/instance.c: component instances: property validation, the kind's
 * lifecycle calls, and the services a plugin calls on its instance.
 *
 * Owns inferd_instance. Every error coming back from a plugin is prefixed
 * with the instance, the component and the plugin, so the caller (a pipeline,
 * an HTTP client) learns which plugin failed, not just that something did.
 */
#include "plugin/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"
#include "plugin/http_exchange.h"
#include "plugin/timers.h"

#define LOG "plugin"

const char *inferd_instance_name(const inferd_instance *self) { return self->name; }
const inferd_component *inferd_instance_component(const inferd_instance *self)
{
    return self->component;
}
void *inferd_instance_state(const inferd_instance *self) { return self->state; }

inferd_status inferd_filter_run(inferd_instance *self, inferd_buffer *const *inputs,
                                size_t n_inputs, inferd_filter_fn transform, inferd_error *err)
{
    const inferd_component *c = self->component;
    if (n_inputs != 1 || !inputs || !inputs[0])
        return inferd_error_set(err, INFERD_EINVAL, "%s: a filter takes one buffer, got %zu",
                                c->name, n_inputs);
    if (!inferd__port_takes(inferd__port_spec(c->inputs, 0), inputs[0])) {
        char want[256], got[128];
        return inferd_error_set(err, INFERD_ETYPE, "%s: input 0 takes %s; the buffer is %s",
                                c->name, inferd__port_formats(&c->inputs[0], want, sizeof want),
                                inferd__buffer_formats(inputs[0], got, sizeof got));
    }
    inferd_status st = transform(self, inputs[0], err);
    if (st != INFERD_OK)
        return st;
    return inferd_instance_push(self, 0, inferd_buffer_ref(inputs[0]), err);
}

void inferd_instance_log(const inferd_instance *self, inferd_log_level level, const char *fmt,
                         ...)
{
    const char *plugin = self && self->plugin ? self->plugin->info.name : "plugin";
    if (!self || !inferd_log_enabled(level, plugin))
        return;
    char msg[INFERD_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *comp = self->component ? self->component->name : "?";
    if (self->name && strcmp(self->name, comp) != 0)
        inferd_log(level, plugin, "%s (%s): %s", self->name, comp, msg);
    else
        inferd_log(level, plugin, "%s: %s", comp, msg);
}
void inferd_instance_set_state(inferd_instance *self, void *state) { self->state = state; }

void inferd_estimator_limit_batch(inferd_instance *self, size_t max_items)
{
    if (self && self->component->kind == INFERD_KIND_ESTIMATOR)
        self->batch_limit = max_items;
}

size_t inferd__instance_batch_limit(const inferd_instance *inst) { return inst->batch_limit; }

void inferd__instance_set_device(inferd_instance *inst, const char *device, const char *why)
{
    pthread_mutex_lock(&inst->counters_lock);
    /* Each device once, in the order first seen. */
    size_t n = strlen(inst->device), k = strlen(device);
    bool seen = false;
    for (const char *p = inst->device; *p && !seen;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        seen = len == k && memcmp(p, device, k) == 0;
        p += len + (comma != NULL);
    }
    if (!seen && n + (n > 0) + k < sizeof inst->device) {
        if (n)
            inst->device[n++] = ',';
        memcpy(inst->device + n, device, k + 1);
    }
    if (why && !inst->device_why[0])
        snprintf(inst->device_why, sizeof inst->device_why, "%s", why);
    pthread_mutex_unlock(&inst->counters_lock);
}

void inferd__instance_device(inferd_instance *inst, char *device, size_t dsize, char *why,
                             size_t wsize)
{
    pthread_mutex_lock(&inst->counters_lock);
    snprintf(device, dsize, "%s", inst->device);
    snprintf(why, wsize, "%s", inst->device_why);
    pthread_mutex_unlock(&inst->counters_lock);
}
const inferd_props *inferd_instance_props(const inferd_instance *inst) { return inst->props; }

void inferd_instance_set_push(inferd_instance *inst, inferd_push_fn fn, void *ctx)
{
    inst->push = fn;
    inst->push_ctx = ctx;
}

void inferd_instance_set_stop_flag(inferd_instance *inst, const _Atomic bool *flag)
{
    inst->stopping = flag;
}

void inferd_instance_set_output_count(inferd_instance *inst, size_t n) { inst->n_outputs = n; }
size_t inferd_instance_output_count(const inferd_instance *self) { return self->n_outputs; }

void inferd_instance_count(inferd_instance *self, const char *name, int64_t delta)
{
    if (!self || !name)
        return;
    size_t n = atomic_load(&self->n_counters);
    for (size_t i = 0; i < n; i++)
        if (strcmp(self->counters[i].name, name) == 0) {
            atomic_fetch_add(&self->counters[i].value, delta);
            return;
        }
    /* A new name: made under the lock, published by n_counters. */
    pthread_mutex_lock(&self->counters_lock);
    n = atomic_load(&self->n_counters);
    size_t i = 0;
    while (i < n && strcmp(self->counters[i].name, name) != 0)
        i++;
    if (i == n && n < INFERD_INSTANCE_COUNTERS) {
        snprintf(self->counters[i].name, sizeof self->counters[i].name, "%s", name);
        atomic_store(&self->n_counters, n + 1);
    }
    pthread_mutex_unlock(&self->counters_lock);
    if (i < INFERD_INSTANCE_COUNTERS)
        atomic_fetch_add(&self->counters[i].value, delta);
}

void inferd__instance_counters(inferd_instance *inst,
                               void (*fn)(void *ctx, const char *name, int64_t value), void *ctx)
{
    size_t n = atomic_load(&inst->n_counters);
    for (size_t i = 0; i < n; i++)
        fn(ctx, inst->counters[i].name, atomic_load(&inst->counters[i].value));
}

void inferd_registry_each_count(inferd_registry *reg, inferd_count_fn fn, void *ctx)
{
    pthread_mutex_lock(&reg->lock);
    for (inferd_instance *i = reg->live; i; i = i->live_next) {
        size_t n = atomic_load(&i->n_counters);
        for (size_t k = 0; k < n; k++)
            fn(ctx, i->plugin->info.name, i->name, i->counters[k].name,
               atomic_load(&i->counters[k].value));
    }
    pthread_mutex_unlock(&reg->lock);
}

bool inferd_instance_stopping(const inferd_instance *self)
{
    return self && self->stopping && atomic_load(self->stopping);
}

void inferd_instance_set_emit(inferd_instance *inst, inferd_emit_fn fn, void *ctx)
{
    inst->emit = fn;
    inst->emit_ctx = ctx;
}

static size_t count_ports(const inferd_port_spec *ports)
{
    size_t n = 0;
    while (ports && ports[n].formats)
        n++;
    return n;
}

inferd_status inferd_instance_push(inferd_instance *self, size_t port, inferd_buffer *buf,
                                   inferd_error *err)
{
    if (self->component->kind != INFERD_KIND_ELEMENT) {
        inferd_buffer_unref(buf);
        return inferd_error_set(err, INFERD_ESTATE, "%s: only elements push buffers", self->name);
    }
    size_t n = count_ports(self->component->outputs);
    bool dynamic = n > 0 && self->component->outputs[n - 1].dynamic;
    if (port >= n && !dynamic) {
        inferd_buffer_unref(buf);
        return inferd_error_set(err, INFERD_ERANGE, "%s: output port %zu does not exist (it has %zu)",
                                self->name, port, n);
    }
    if (!self->push) {
        inferd_buffer_unref(buf);
        return inferd_error_set(err, INFERD_ESTATE, "%s: output port %zu is not linked", self->name,
                                port);
    }
    return self->push(self->push_ctx, self, port, buf, err);
}

inferd_status inferd_instance_emit(inferd_instance *self, inferd_value *msg, inferd_error *err)
{
    if (self->component->kind != INFERD_KIND_SOURCE || !self->emit) {
        inferd_value_free(msg);
        return inferd_error_set(err, INFERD_ESTATE, "%s: not a started source", self->name);
    }
    return self->emit(self->emit_ctx, self, msg, err);
}

/* The element's own specs followed by the common ones, in one END-terminated array. */
static inferd_prop_spec *merge_element_specs(const inferd_prop_spec *own)
{
    size_t a = inferd_prop_specs_count(own);
    size_t b = inferd_prop_specs_count(inferd_element_common_props());
    inferd_prop_spec *m = calloc(a + b + 1, sizeof *m);
    if (!m)
        return NULL;
    if (a)
        memcpy(m, own, a * sizeof *m);
    memcpy(m + a, inferd_element_common_props(), b * sizeof *m);
    return m; /* calloc left the END entry zeroed */
}

typedef inferd_status (*init_fn)(inferd_instance *, const inferd_props *, inferd_error *);
typedef void (*fini_fn)(inferd_instance *);

/* The kind's init and its teardown (deinit, or close for background). */
static void kind_hooks(const inferd_component *c, init_fn *init, fini_fn *fini)
{
#define HOOKS(type, i, f)                  \
    do {                                   \
        const type *o = c->ops;            \
        *init = o->i;                      \
        *fini = o->f;                      \
    } while (0)
    switch (c->kind) {
    case INFERD_KIND_ELEMENT: HOOKS(inferd_element_ops, init, deinit); break;
    case INFERD_KIND_ESTIMATOR: HOOKS(inferd_estimator_ops, init, deinit); break;
    case INFERD_KIND_EVENT: HOOKS(inferd_event_ops, init, deinit); break;
    case INFERD_KIND_BACKGROUND: HOOKS(inferd_background_ops, init, close); break;
    case INFERD_KIND_FUNCTION: HOOKS(inferd_function_ops, init, deinit); break;
    case INFERD_KIND_SOURCE: HOOKS(inferd_source_ops, init, deinit); break;
    case INFERD_KIND_SINK: HOOKS(inferd_sink_ops, init, deinit); break;
    case INFERD_KIND_BACKEND: HOOKS(inferd_backend_ops, init, deinit); break;
    case INFERD_KIND_INVALID: *init = NULL; *fini = NULL; break;
    }
#undef HOOKS
}

/* Makes a plugin's failure into an error that names who failed. */
static inferd_status plugin_failed(const inferd_instance *inst, const char *call, inferd_status st,
                                   inferd_error *err)
{
    if (err && (err->code == INFERD_OK || err->message[0] == '\0'))
        inferd_error_set(err, st, "no message");
    if (st == INFERD_OK) /* a plugin that failed without saying how */
        st = INFERD_EPLUGIN;
    atomic_fetch_add(&inst->plugin->errors, 1);
    if (err)
        err->code = st;
    inferd_error_prefix(err, "%s %s (%s, plugin %s %s): %s failed",
                        inferd_component_kind_name(inst->component->kind), inst->name,
                        inst->component->name, inst->plugin->info.name, inst->plugin->info.version,
                        call);
    return st;
}

inferd_status inferd__component_check_props(const inferd_component *c, const char *name,
                                            const inferd_value *props, inferd_error *err)
{
    inferd_prop_spec *merged = NULL;
    const inferd_prop_spec *specs = c->props;
    if (c->kind == INFERD_KIND_ELEMENT) {
        if (!(merged = merge_element_specs(c->props)))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        specs = merged;
    }
    char owner[300];
    snprintf(owner, sizeof owner, "%s %s (%s)", inferd_component_kind_name(c->kind), name,
             c->name);
    static const inferd_prop_spec none[] = {INFERD_PROP_END};
    inferd_props *checked = NULL;
    inferd_status st = inferd_props_validate(specs ? specs : none, owner, props, &checked, err);
    inferd_props_free(checked);
    free(merged);
    return st;
}

inferd_status inferd_instance_create(inferd_registry *reg, const char *component,
                                     const char *name, const inferd_value *props,
                                     inferd_instance **out, inferd_error *err)
{
    const inferd_plugin_info *pinfo = NULL;
    const inferd_component *c = inferd_registry_find(reg, component, &pinfo);
    if (!c)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "no component named '%s' is registered (is its plugin active? "
                                "`inferd plugin list` shows what is loaded)",
                                component ? component : "(null)");
    inferd_instance *inst = calloc(1, sizeof *inst);
    if (!inst || !(inst->name = strdup(name ? name : c->name))) {
        free(inst);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inst->reg = reg;
    inst->component = c;
    /* Statically initialised: the early returns below need no destroy. */
    inst->counters_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    const inferd_prop_spec *specs = c->props;
    if (c->kind == INFERD_KIND_ELEMENT) {
        if (!(inst->merged_specs = merge_element_specs(c->props))) {
            free(inst->name);
            free(inst);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        specs = inst->merged_specs;
    }
    char owner[300];
    snprintf(owner, sizeof owner, "%s %s (%s)", inferd_component_kind_name(c->kind), inst->name,
             c->name);
    static const inferd_prop_spec none[] = {INFERD_PROP_END};
    inferd_status st = inferd_props_validate(specs ? specs : none, owner, props, &inst->props, err);
    if (st != INFERD_OK) {
        free(inst->merged_specs);
        free(inst->name);
        free(inst);
        return st;
    }
    pthread_mutex_lock(&reg->lock);
    inst->plugin = inferd__registry_owner(reg, c);
    inst->plugin->live_instances++;
    inst->live_next = reg->live;
    if (reg->live)
        reg->live->live_prev = inst;
    reg->live = inst;
    pthread_mutex_unlock(&reg->lock);

    inferd_error_clear(err);
    init_fn init;
    fini_fn fini;
    kind_hooks(c, &init, &fini);
    st = init ? init(inst, inst->props, err) : INFERD_OK;
    if (st != INFERD_OK) {
        plugin_failed(inst, "init", st, err);
        inst->state = NULL; /* never call deinit after a failed init */
        inferd_instance_destroy(inst);
        return err ? err->code : INFERD_EPLUGIN;
    }
    inst->initialized = true;
    *out = inst;
    return INFERD_OK;
}

void inferd_instance_destroy(inferd_instance *inst)
{
    if (!inst)
        return;
    /* No timer callback may run into a torn-down instance. */
    inferd__timers_cancel_all(inst);
    if (inst->initialized) {
        /* A started source is stopped before it is torn down. */
        if (inst->started && inst->component->kind == INFERD_KIND_SOURCE)
            ((const inferd_source_ops *)inst->component->ops)->stop(inst);
        init_fn init;
        fini_fn fini;
        kind_hooks(inst->component, &init, &fini);
        if (fini)
            fini(inst);
    }
    pthread_mutex_lock(&inst->reg->lock);
    inst->plugin->live_instances--;
    if (inst->live_prev)
        inst->live_prev->live_next = inst->live_next;
    else
        inst->reg->live = inst->live_next;
    if (inst->live_next)
        inst->live_next->live_prev = inst->live_prev;
    pthread_mutex_unlock(&inst->reg->lock);
    inferd_props_free(inst->props);
    inferd__instance_metrics_free(inst);
    pthread_mutex_destroy(&inst->counters_lock);
    free(inst->merged_specs);
    free(inst->name);
    free(inst);
}

inferd_status inferd_instance_process(inferd_instance *inst, inferd_buffer *const *inputs,
                                      size_t n, inferd_error *err)
{
    if (inst->component->kind != INFERD_KIND_ELEMENT)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not an element", inst->name,
                                inferd_component_kind_name(inst->component->kind));
    const inferd_element_ops *o = inst->component->ops;
    inferd_error_clear(err);
    inferd_status st = o->process(inst, inputs, n, err);
    return st == INFERD_OK ? st : plugin_failed(inst, "process", st, err);
}

inferd_status inferd_instance_exec(inferd_instance *inst, const inferd_value *const *args,
                                   size_t n, inferd_value **result, inferd_error *err)
{
    const inferd_component *c = inst->component;
    if (c->kind != INFERD_KIND_FUNCTION)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not a function", inst->name,
                                inferd_component_kind_name(c->kind));
    if ((int64_t)n < c->min_args || (c->max_args >= 0 && (int64_t)n > c->max_args)) {
        if (c->max_args < 0)
            return inferd_error_set(err, INFERD_EINVAL, "function %s takes at least %d argument%s, "
                                    "got %zu", c->name, c->min_args, c->min_args == 1 ? "" : "s", n);
        return inferd_error_set(err, INFERD_EINVAL, "function %s takes %d..%d arguments, got %zu",
                                c->name, c->min_args, c->max_args, n);
    }
    const inferd_function_ops *o = c->ops;
    inferd_error_clear(err);
    *result = NULL;
    inferd_status st = o->exec(inst, args, n, result, err);
    if (st != INFERD_OK) {
        inferd_value_free(*result);
        *result = NULL;
        return plugin_failed(inst, "exec", st, err);
    }
    if (!*result && !(*result = inferd_value_null()))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    return INFERD_OK;
}

inferd_status inferd_instance_validate(inferd_instance *inst, const inferd_value *const *args,
                                       size_t n, inferd_error *err)
{
    const inferd_component *c = inst->component;
    if (c->kind != INFERD_KIND_FUNCTION)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not a function", inst->name,
                                inferd_component_kind_name(c->kind));
    const inferd_function_ops *o = c->ops;
    if (!o->validate)
        return INFERD_OK;
    inferd_error_clear(err);
    inferd_status st = o->validate(inst, args, n, err);
    return st == INFERD_OK ? st : plugin_failed(inst, "validate", st, err);
}

inferd_status inferd_instance_collect(inferd_instance *inst, const inferd_value *item,
                                      inferd_error *err)
{
    if (inst->component->kind != INFERD_KIND_SINK)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not a sink", inst->name,
                                inferd_component_kind_name(inst->component->kind));
    const inferd_sink_ops *o = inst->component->ops;
    inferd_error_clear(err);
    inferd_status st = o->collect(inst, item, err);
    return st == INFERD_OK ? st : plugin_failed(inst, "collect", st, err);
}

inferd_status inferd_instance_start(inferd_instance *inst, inferd_error *err)
{
    const inferd_component *c = inst->component;
    inferd_status st;
    inferd_error_clear(err);
    if (c->kind == INFERD_KIND_BACKGROUND)
        st = ((const inferd_background_ops *)c->ops)->start(inst, err);
    else if (c->kind == INFERD_KIND_SOURCE)
        st = ((const inferd_source_ops *)c->ops)->start(inst, err);
    else
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s: it has no start", inst->name,
                                inferd_component_kind_name(c->kind));
    if (st != INFERD_OK)
        return plugin_failed(inst, "start", st, err);
    inst->started = true;
    return INFERD_OK;
}

inferd_status inferd_instance_handle(inferd_instance *inst, const inferd_value *const *events,
                                     size_t n, inferd_error *err)
{
    if (inst->component->kind != INFERD_KIND_EVENT)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not an event component",
                                inst->name, inferd_component_kind_name(inst->component->kind));
    const inferd_event_ops *o = inst->component->ops;
    inferd_error_clear(err);
    inferd_status st = o->handle(inst, events, n, err);
    return st == INFERD_OK ? st : plugin_failed(inst, "handle", st, err);
}

inferd_status inferd_instance_route(inferd_instance *inst, inferd_route_handler handler,
                                    const inferd_http_request *req, inferd_http_response *resp,
                                    inferd_error *err)
{
    if (inst->component->kind != INFERD_KIND_BACKGROUND)
        return inferd_error_set(err, INFERD_ESTATE, "%s is a %s, not a background component",
                                inst->name, inferd_component_kind_name(inst->component->kind));
    inferd_error_clear(err);
    inferd_status st = handler(inst, req, resp, err);
    if (st == INFERD_OK && (resp->status < 100 || resp->status > 599))
        st = inferd_error_set(err, INFERD_EPLUGIN,
                              "it set status %u, which is not an HTTP status (100..599)",
                              resp->status);
    if (st == INFERD_OK)
        return st;
    char call[256];
    snprintf(call, sizeof call, "%s %.200s", req->method, req->path);
    return plugin_failed(inst, call, st, err);
}
