/* inferd/registry.h: the plugin host: loading, checking, activating and
 * unloading plugins, the component registry, and component instances.
 *
 * This is the host side of inferd/plugin.h, used by the daemon, `inferd run`
 * and programs that embed inferd. Loading checks a plugin completely before
 * any of its components is registered; a failure leaves the registry as it
 * was and says what is wrong in words a plugin's user understands.
 */
#ifndef INFERD_REGISTRY_H
#define INFERD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "inferd/config.h"
#include "inferd/plugin.h"
#include "inferd/status.h"
#include "inferd/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct inferd_registry inferd_registry;

/* One loaded plugin, as the registry knows it (borrowed from the registry). */
typedef struct inferd_plugin_info {
    const char *name;
    const char *version;
    const char *path;        /* the shared object, or "(built in)" */
    const inferd_plugin *descriptor;
    unsigned abi_major, abi_minor;
} inferd_plugin_info;

/* The host's function table (one per process, static). */
INFERD_API const inferd_host_api *inferd_host_api_get(void);

INFERD_API inferd_status inferd_registry_new(inferd_registry **out, inferd_error *err);
/* Unloads every plugin in reverse load order. A plugin that still has live
 * instances is not unloaded (its code stays mapped; an error is logged). */
INFERD_API void inferd_registry_free(inferd_registry *reg);

/* Loads one shared object (dlopen RTLD_NOW | RTLD_LOCAL), calls its entry
 * point, checks the descriptor and registers its components. */
INFERD_API inferd_status inferd_registry_load_file(inferd_registry *reg, const char *path,
                                                   inferd_error *err);
/* Registers a descriptor that is already in memory (origin names it in
 * messages). The descriptor must outlive the registry. */
INFERD_API inferd_status inferd_registry_add(inferd_registry *reg, const inferd_plugin *desc,
                                             const char *origin, inferd_error *err);
/* Activates plugins from dir in the order of `active`: each name is a file
 * name in dir, with or without ".so" (dir/NAME.so or dir/NAME/NAME.so). A
 * name with no such file is an error that lists what dir holds. */
INFERD_API inferd_status inferd_registry_activate(inferd_registry *reg, const char *dir,
                                                  const char *const *active, size_t n_active,
                                                  inferd_error *err);
/* The folders next to libinferd: <libdir>/inferd/builtin (what inferd ships,
 * always loaded) and <libdir>/inferd/plugins (the default plugins.dir). */
INFERD_API const char *inferd_builtin_dir(void);
INFERD_API const char *inferd_default_plugin_dir(void);
/* <libdir>/../share/inferd/models: the default models. A model opened by a
 * bare file name ("dot_density.onnx") that is not in the working folder is
 * looked for here. */
INFERD_API const char *inferd_default_models_dir(void);
/* <libdir>/../share/inferd/python: the Python SDK that portable plugins
 * written in Python import (on their PYTHONPATH). */
INFERD_API const char *inferd_default_python_dir(void);
/* Whether a plugin was loaded from inferd_builtin_dir() (what inferd ships). */
INFERD_API bool inferd_plugin_is_builtin(const inferd_plugin_info *plugin);
/* Loads every plugin of inferd_builtin_dir(), in name order. */
INFERD_API inferd_status inferd_registry_load_builtins(inferd_registry *reg, inferd_error *err);
/* Loads the built-in plugins, then activates the config's active_plugins
 * from its plugins.dir. */
INFERD_API inferd_status inferd_registry_load_config(inferd_registry *reg, const inferd_config *cfg,
                                                     inferd_error *err);
/* The file of plugin name (a file name, with or without .so) in dir:
 * dir/NAME.so or dir/NAME/NAME.so, into path; false when there is none. */
INFERD_API bool inferd_registry_plugin_file(const char *dir, const char *name, char *path,
                                            size_t size);
/* Unloads one plugin by name: INFERD_EBUSY while any of its instances live
 * (the message names them). Its components are no longer found; its code
 * stays mapped and its info valid until the registry is freed. */
INFERD_API inferd_status inferd_registry_unload(inferd_registry *reg, const char *plugin_name,
                                                inferd_error *err);
/* The same, waiting up to timeout_ms for the plugin's last instances to go. */
INFERD_API inferd_status inferd_registry_unload_wait(inferd_registry *reg, const char *plugin_name,
                                                     uint64_t timeout_ms, inferd_error *err);
/* A plugin upgraded in place (a portable one): the version it reports from
 * now on (borrowed: it must outlive the plugin's registration). */
INFERD_API void inferd_registry_set_plugin_version(inferd_registry *reg, const char *plugin_name,
                                                  const char *version);

/* Failed calls into a plugin's components so far (init, process, exec,
 * estimate_batch, handle, start, ...). */
INFERD_API uint64_t inferd_registry_plugin_errors(const inferd_plugin_info *plugin);

INFERD_API size_t inferd_registry_plugin_count(const inferd_registry *reg);
INFERD_API const inferd_plugin_info *inferd_registry_plugin_at(const inferd_registry *reg,
                                                               size_t i);
INFERD_API const inferd_plugin_info *inferd_registry_find_plugin(const inferd_registry *reg,
                                                                 const char *name);
/* A registered component by name, and (optional) its plugin. */
INFERD_API const inferd_component *inferd_registry_find(const inferd_registry *reg,
                                                        const char *name,
                                                        const inferd_plugin_info **plugin);
/* The i-th component of a plugin (descriptors may have larger structs than
 * this host knows: never index desc->components directly). */
INFERD_API const inferd_component *inferd_plugin_component(const inferd_plugin *desc, size_t i);

/* The size of an ABI 1.0/1.1 component (before request_options). */
#define INFERD_COMPONENT_SIZE_1_0 offsetof(inferd_component, request_options)
/* An estimator's request options, NULL when none (or an older plugin). */
INFERD_API const inferd_prop_spec *inferd_component_request_options(const inferd_component *c);

/* Opens a model for the host itself (the KServe API, tools): as
 * inferd_model_open, without a calling instance. */
INFERD_API inferd_status inferd_registry_model_open(inferd_registry *reg, const char *backend,
                                                    const char *path, const inferd_value *options,
                                                    inferd_model **out, inferd_error *err);
/* The same, reading the file again even when a session of it is open with
 * the same options (a reload: requests on the old session finish there,
 * new ones get the file as it is now). Later opens may share it. */
INFERD_API inferd_status inferd_registry_model_load(inferd_registry *reg, const char *backend,
                                                    const char *path, const inferd_value *options,
                                                    inferd_model **out, inferd_error *err);
/* fn for every counter of every live instance (inferd_instance_count):
 * its plugin, its instance, the counter's name and value; /metrics' plugin
 * series. Holds the registry's lock: fn must not call back into it. */
typedef void (*inferd_count_fn)(void *ctx, const char *plugin, const char *instance,
                                const char *counter, int64_t value);
INFERD_API void inferd_registry_each_count(inferd_registry *reg, inferd_count_fn fn, void *ctx);
/* One series of a plugin's own metrics (inferd_metric_*), as fn sees it. */
typedef struct inferd_metric_sample {
    const char *plugin, *instance, *name, *help; /* help "" when none */
    inferd_metric_kind kind;
    const char *labels;        /* the instance's and the given ones, rendered:
                                  instance="x",route="/a" (escaped for Prometheus) */
    double value;              /* counter, gauge; a histogram's sum */
    uint64_t count;            /* a histogram's observations */
    const double *bounds;      /* a histogram's bucket bounds (n_bounds, ascending) */
    const uint64_t *buckets;   /* its counts per bucket (not cumulative), n_bounds + 1 */
    size_t n_bounds;
} inferd_metric_sample;
typedef void (*inferd_metric_fn)(void *ctx, const inferd_metric_sample *s);
/* fn for every series of every live instance; holds the registry's lock. */
INFERD_API void inferd_registry_each_metric(inferd_registry *reg, inferd_metric_fn fn, void *ctx);
/* Every model open now is read from its file again at its next open (its
 * current users keep their session): before a reload, when files may have
 * changed. */
INFERD_API void inferd_registry_models_refresh(inferd_registry *reg);
/* The path a model was loaded from (NULL from memory); its backend's name. */
INFERD_API const char *inferd_model_path(const inferd_model *model);
INFERD_API const char *inferd_model_backend(const inferd_model *model);

/* The properties every element has (status, deviceId, dataSource). */
INFERD_API const inferd_prop_spec *inferd_element_common_props(void);

/* A description of a plugin or a component as a JSON-ready object: what
 * `inferd plugin list --json` and `inferd plugin inspect --json` print. */
INFERD_API inferd_value *inferd_describe_plugin(const inferd_plugin_info *plugin,
                                                bool with_components);
INFERD_API inferd_value *inferd_describe_component(const inferd_component *comp);
/* Property declarations as a JSON-ready array: name, type, allowed, default
 * or required, description, ranges, enum values, and nested fields. */
INFERD_API inferd_value *inferd_describe_props(const inferd_prop_spec *specs);

/* ---- instances ------------------------------------------------------------ */

/* Where an element's pushed buffers go (set by the pipeline). Takes buf. */
typedef inferd_status (*inferd_push_fn)(void *ctx, inferd_instance *from, size_t port,
                                        inferd_buffer *buf, inferd_error *err);
/* Where a source's messages go. Takes msg. */
typedef inferd_status (*inferd_emit_fn)(void *ctx, inferd_instance *from, inferd_value *msg,
                                        inferd_error *err);

/* Creates an instance of a component: validates props (for elements with
 * the common element properties added), then calls the kind's init. name
 * NULL means the component's name. The instance holds its plugin loaded. */
INFERD_API inferd_status inferd_instance_create(inferd_registry *reg, const char *component,
                                                const char *name, const inferd_value *props,
                                                inferd_instance **out, inferd_error *err);
/* Calls deinit (or close/stop as the kind has it) and frees the instance. */
INFERD_API void inferd_instance_destroy(inferd_instance *inst);
/* The validated properties (borrowed). */
INFERD_API const inferd_props *inferd_instance_props(const inferd_instance *inst);
INFERD_API void inferd_instance_set_push(inferd_instance *inst, inferd_push_fn fn, void *ctx);
INFERD_API void inferd_instance_set_emit(inferd_instance *inst, inferd_emit_fn fn, void *ctx);

/* Calls into the instance's ops; errors name the instance and its plugin. */
INFERD_API inferd_status inferd_instance_process(inferd_instance *inst,
                                                 inferd_buffer *const *inputs, size_t n,
                                                 inferd_error *err);
INFERD_API inferd_status inferd_instance_exec(inferd_instance *inst,
                                              const inferd_value *const *args, size_t n,
                                              inferd_value **result, inferd_error *err);
INFERD_API inferd_status inferd_instance_start(inferd_instance *inst, inferd_error *err);
/* A function component's validate (OK when it has none) with the arguments
 * of a call as a rule writes them (borrowed). */
INFERD_API inferd_status inferd_instance_validate(inferd_instance *inst,
                                                  const inferd_value *const *args, size_t n,
                                                  inferd_error *err);
/* A sink component's collect with one borrowed item (a result row, or an
 * array of rows). */
INFERD_API inferd_status inferd_instance_collect(inferd_instance *inst, const inferd_value *item,
                                                 inferd_error *err);
/* A background component's route handler with the request and response
 * (borrowed for the call). A status the handler sets outside 100..599 is
 * an error too. Errors name the instance, its plugin, the method and path. */
INFERD_API inferd_status inferd_instance_route(inferd_instance *inst, inferd_route_handler handler,
                                               const inferd_http_request *req,
                                               inferd_http_response *resp, inferd_error *err);
/* An event component's handle with a batch of borrowed events. */
INFERD_API inferd_status inferd_instance_handle(inferd_instance *inst,
                                                const inferd_value *const *events, size_t n,
                                                inferd_error *err);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_REGISTRY_H */
