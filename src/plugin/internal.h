/* plugin/internal.h: what the plugin host's files share. Not installed. */
#ifndef INFERD_PLUGIN_INTERNAL_H
#define INFERD_PLUGIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdatomic.h>

#include "inferd/registry.h"

typedef struct plugin_entry {
    inferd_plugin_info info;  /* names borrowed from the descriptor; path owned */
    char *path;               /* owned */
    void *handle;             /* dlopen handle, NULL for in-memory descriptors */
    unsigned live_instances;  /* guarded by the registry lock */
    char *retired_name, *retired_version; /* owned, once unloaded (the descriptor may go) */
    struct plugin_entry *retired_next;
    atomic_uint_least64_t errors; /* failed calls into the plugin (for /metrics) */
} plugin_entry;

/* Counts a failed call into the plugin that registered info. */
void inferd__plugin_count_error(const inferd_plugin_info *info);

typedef struct model_entry model_entry;
typedef struct backend_entry backend_entry;

struct inferd_registry {
    pthread_mutex_t lock;     /* guards plugins[] and live_instances */
    plugin_entry **plugins;   /* owned, in load order */
    size_t n_plugins, cap;
    /* Loaded models and the backend instances that serve them (models.c).
     * models_lock is held across a load, so one model is never loaded twice. */
    pthread_mutex_t models_lock;
    model_entry *models;      /* owned list */
    backend_entry *backends;  /* owned list, one instance per backend component */
    struct inferd_instance *live; /* every instance (borrowed), under lock: their counters */
    /* Unloaded plugins, kept until the registry goes: what borrowed their
     * info (an estimator's last batch, an event) may still read it, and
     * their code stays mapped, as objects they made (option specs of queued
     * requests) may point into it. */
    plugin_entry *retired;
};

/* Unloads every model and destroys the backend instances (registry_free). */
void inferd__models_shutdown(inferd_registry *reg);

struct inferd_instance {
    inferd_registry *reg;               /* borrowed: outlives its instances */
    plugin_entry *plugin;               /* borrowed; counted in live_instances */
    const inferd_component *component;  /* borrowed from the plugin */
    inferd_prop_spec *merged_specs;     /* owned: element props + common props */
    char *name;                         /* owned */
    inferd_props *props;                /* owned */
    void *state;                        /* the plugin's */
    size_t batch_limit;                 /* estimators: set by init, 0 = none */
    bool initialized, started;
    inferd_push_fn push;
    void *push_ctx;
    const _Atomic bool *stopping;       /* borrowed, or NULL: inferd_instance_stopping */
    size_t n_outputs;                   /* in its pipeline: inferd_instance_output_count */
    pthread_mutex_t counters_lock;      /* guards adding a counter's name */
    struct {
        char name[32];
        _Atomic int64_t value;
    } counters[INFERD_INSTANCE_COUNTERS];
    _Atomic size_t n_counters;          /* names set (each before n_counters counts it) */
    inferd_emit_fn emit;
    void *emit_ctx;
    struct plugin_metrics *metrics;     /* owned; NULL until its first metric (metrics.c) */
    /* Where the models it opened run ("cuda:0", "cpu", "cpu,cuda:0": each
     * once), and why one runs elsewhere than asked; under counters_lock. */
    char device[64], device_why[512];
    struct inferd_instance *live_prev, *live_next; /* the registry's list, under its lock */
};

/* An estimator instance's batch limit (inferd_estimator_limit_batch). */
size_t inferd__instance_batch_limit(const inferd_instance *inst);
/* Records a device a model of inst runs on (inferd_model_open), and why
 * (NULL: as asked). */
void inferd__instance_set_device(inferd_instance *inst, const char *device, const char *why);
/* Copies where inst's models run into device ("" when no backend said)
 * and why one runs elsewhere than asked into why ("" for none). */
void inferd__instance_device(inferd_instance *inst, char *device, size_t dsize, char *why,
                             size_t wsize);

/* Ports (ports.c). The spec that governs port i (static ports by index,
 * then the trailing dynamic one for every index after), or NULL. */
const inferd_port_spec *inferd__port_spec(const inferd_port_spec *ports, size_t i);
/* The port's formats as "a, b" into buf; returns buf. */
char *inferd__port_formats(const inferd_port_spec *port, char *buf, size_t size);
/* Whether buf carries a format port takes: ANY, its payload's format, or
 * the format of one of its metadata entries (its ancestors' included). A
 * port that declares nothing takes everything. */
bool inferd__port_takes(const inferd_port_spec *port, const inferd_buffer *buf);
/* What buf carries, for messages: its payload's format, or "no payload". */
const char *inferd__buffer_formats(const inferd_buffer *buf, char *out, size_t size);

/* Checks props against what instance `name` of c would take (an element's
 * properties with the common ones), as inferd_instance_create does, without
 * creating anything: every fault of the document in err. */
inferd_status inferd__component_check_props(const inferd_component *c, const char *name,
                                            const inferd_value *props, inferd_error *err);

/* The plugin that registered comp; caller holds reg->lock. */
plugin_entry *inferd__registry_owner(inferd_registry *reg, const inferd_component *comp);

/* The flag inferd_instance_stopping reads (a pipeline's stopping flag). */
void inferd_instance_set_stop_flag(inferd_instance *inst, const _Atomic bool *flag);
void inferd_instance_set_output_count(inferd_instance *inst, size_t n);
/* The instance's own metrics go with it (metrics.c). */
void inferd__instance_metrics_free(inferd_instance *inst);

/* fn(ctx, name, value) for each of the instance's own counters. */
void inferd__instance_counters(inferd_instance *inst,
                               void (*fn)(void *ctx, const char *name, int64_t value), void *ctx);

#endif
