/* inferd/plugin.h: the plugin ABI, version 1.
 *
 * A plugin is a shared object that exports one symbol, inferd_plugin_entry.
 * The host calls it once, explicitly, with a table of the functions plugins
 * may call (inferd_host_api); the plugin returns a descriptor: magic, ABI
 * version, size, name, version, and its components. Each component has a
 * kind (element, estimator, event, background, function, source, sink,
 * backend), declarations (properties, ports, arity, names) and the ops table
 * of its kind. Everything inferd ships is built on this same ABI.
 *
 * Calling the host: a plugin calls the core functions by their usual names
 * (inferd_value_object, inferd_buffer_unref, inferd_log_info, ...). In a
 * plugin build, this header maps each of those names onto the host table, so
 * a plugin never links against libinferd and never fails on an undefined
 * symbol: `cc $(pkg-config --cflags inferd-plugin) -shared -fPIC x.c` builds
 * one. (The host itself compiles with INFERD_HOST_BUILD, which turns the
 * mapping off.)
 *
 * Compatibility: the host refuses a descriptor with a wrong magic, another
 * ABI major, or a minor newer than its own. Structs and tables only grow at
 * their end; every one starts with its size, and a reader touches a field
 * only where that size covers it. See docs/plugins.md.
 *
 * Requires GCC or Clang (__typeof__ and visibility attributes).
 */
#ifndef INFERD_PLUGIN_H
#define INFERD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "inferd/buffer.h"
#include "inferd/contract.h"
#include "inferd/image.h"
#include "inferd/log.h"
#include "inferd/props.h"
#include "inferd/status.h"
#include "inferd/tensor.h"
#include "inferd/value.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INFERD_PLUGIN_MAGIC 0x44464e49u /* "INFD" little-endian */
#define INFERD_ABI_MAJOR 2
#define INFERD_ABI_MINOR 4
#define INFERD_PLUGIN_ENTRY_SYMBOL "inferd_plugin_entry"

/* ---- components ---------------------------------------------------------- */

typedef enum inferd_component_kind {
    INFERD_KIND_INVALID = 0,
    INFERD_KIND_ELEMENT,    /* a pipeline stage: init / process / deinit */
    INFERD_KIND_ESTIMATOR,  /* a named estimation service, batch interface */
    INFERD_KIND_EVENT,      /* receives batches of one event type */
    INFERD_KIND_BACKGROUND, /* start / close, periodic work, HTTP routes */
    INFERD_KIND_FUNCTION,   /* a function callable from rules: exec(args) */
    INFERD_KIND_SOURCE,     /* emits messages into streams */
    INFERD_KIND_SINK,       /* collects results of rules */
    INFERD_KIND_BACKEND     /* an inference engine: load / run models */
} inferd_component_kind;

/* "element", "estimator", ...; "invalid" for anything else. */
INFERD_API const char *inferd_component_kind_name(inferd_component_kind kind);

/* A running instance of a component. Opaque: the host owns it. The plugin
 * keeps its own data in the instance's state pointer. */
typedef struct inferd_instance inferd_instance;

/* A port: the data formats it accepts or produces ("image/rgb",
 * "metadata/object", "ANY", or a custom "level1/level2"), static (created
 * with the element, must be linked) or dynamic (instantiated 0..n times by
 * the pipeline file, e.g. the inputs of a synchronizer). */
enum { INFERD_PORT_STATIC_KIND = 0, INFERD_PORT_DYNAMIC_KIND = 1 };
typedef struct inferd_port_spec {
    const char *const *formats; /* NULL-terminated; NULL formats ends a port array */
    uint32_t dynamic;           /* INFERD_PORT_STATIC_KIND or INFERD_PORT_DYNAMIC_KIND */
} inferd_port_spec;

/* A static array of T holding the initialisers, as an expression: a
 * compound literal in C; in C++ (which cannot take a temporary's address) a
 * function-local static made when the plugin is loaded. Used at file scope
 * by the declaration macros below, so that a plugin reads the same in C
 * and in C++ (C++20 designated initialisers, in declaration order). */
#ifdef __cplusplus
#define INFERD__STATIC_OF(T, ...) ([]() -> T * { static T v_[] = {__VA_ARGS__}; return v_; }())
#else
#define INFERD__STATIC_OF(T, ...) ((T[]){__VA_ARGS__})
#endif

#define INFERD_PORT_STATIC(...)                                                              \
    { .formats = INFERD__STATIC_OF(const char *const, __VA_ARGS__, NULL),                    \
      .dynamic = INFERD_PORT_STATIC_KIND }
#define INFERD_PORT_DYNAMIC(...)                                                             \
    { .formats = INFERD__STATIC_OF(const char *const, __VA_ARGS__, NULL),                    \
      .dynamic = INFERD_PORT_DYNAMIC_KIND }
#define INFERD_PORT_END { .formats = NULL }

/* Whether a port format is well formed: "ANY", or "level1/level2" where each
 * level starts with a letter and holds letters, digits, '_', '-', '.', '+'. */
INFERD_API int inferd_port_format_valid(const char *format);

/* Ops of each kind. Every ops struct starts with its size: set it with
 * sizeof, or use the INFERD_* declaration macros below. Callbacks return a
 * status and fill err on failure; the host turns that into the caller's
 * error and keeps running. NULL optional callbacks are skipped. */

/* element: init once with validated properties, process per input, deinit
 * once. inputs[i] is the buffer on input port i (borrowed: take a reference
 * with inferd_buffer_ref to keep it); in async mode entries may be NULL.
 * Results go downstream with inferd_instance_push. */
typedef struct inferd_element_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*process)(inferd_instance *self, inferd_buffer *const *inputs, size_t n_inputs,
                             inferd_error *err);
    void (*deinit)(inferd_instance *self);
} inferd_element_ops;

/* estimator: a batch of requests (the host's dynamic batcher gathers
 * concurrent requests up to the estimator's maxBatch / maxDelayUs). Each item
 * has a decoded image, an optional detect area and the request's options
 * (validated against the component's request_options); each is completed
 * exactly once, now or later, from any thread, with inferd_estimate_done.
 * estimate_batch runs on one of the estimator's worker threads, never on an
 * HTTP thread. If it returns an error, the host fails every item it has not
 * completed with that error. */
typedef struct inferd_estimate inferd_estimate;
typedef struct inferd_estimator_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*estimate_batch)(inferd_instance *self, inferd_estimate *const *items, size_t n,
                                    inferd_error *err);
    void (*deinit)(inferd_instance *self);
} inferd_estimator_ops;

/* event: a batch of events of the declared event name, on the bus's thread
 * (never a request's). events[i] are borrowed objects. */
typedef struct inferd_event_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*handle)(inferd_instance *self, const inferd_value *const *events, size_t n,
                            inferd_error *err);
    void (*deinit)(inferd_instance *self);
} inferd_event_ops;

/* background: init, then start after the service is up; close before it
 * stops. Routes are declared in the component (inferd_route_spec). */
typedef struct inferd_http_request inferd_http_request;
typedef struct inferd_http_response inferd_http_response;
typedef inferd_status (*inferd_route_handler)(inferd_instance *self, const inferd_http_request *req,
                                              inferd_http_response *resp, inferd_error *err);
/* A route: one entry per method of a path (a handler "class" with get,
 * post, ...), or method "*" for a plain function that takes every method.
 * A path is exact ("/teapot", "/teapot/version"). The routes of the built-in
 * API (/health, /ready, /version, /metrics, /v1/..., /v2/...) cannot be
 * shadowed: a background component that declares one does not start. The
 * handler runs on an HTTP thread: keep it short. A request without a
 * matching method gets 405 from the host. */
typedef struct inferd_route_spec {
    const char *method; /* "GET", "POST", ..., or "*"; NULL ends the array */
    const char *path;   /* e.g. "/teapot" */
    inferd_route_handler handler;
} inferd_route_spec;
#define INFERD_ROUTE_END { .method = NULL }

typedef struct inferd_background_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*start)(inferd_instance *self, inferd_error *err);
    void (*close)(inferd_instance *self);
} inferd_background_ops;

/* function: exec with borrowed arguments; *result is a new value owned by
 * the host. validate (optional) checks a call's arguments when a rule that
 * makes it is created: literals as their values, any other argument (a
 * column, an expression) as a null value; an error refuses the rule. */
typedef struct inferd_function_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*validate)(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_error *err);
    inferd_status (*exec)(inferd_instance *self, const inferd_value *const *args, size_t n,
                          inferd_value **result, inferd_error *err);
    void (*deinit)(inferd_instance *self);
} inferd_function_ops;

/* source: emits messages with inferd_instance_emit between start and stop. */
typedef struct inferd_source_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*start)(inferd_instance *self, inferd_error *err);
    void (*stop)(inferd_instance *self);
    void (*deinit)(inferd_instance *self);
} inferd_source_ops;

/* sink: collects one result (borrowed) per call. */
typedef struct inferd_sink_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    inferd_status (*collect)(inferd_instance *self, const inferd_value *item, inferd_error *err);
    void (*deinit)(inferd_instance *self);
} inferd_sink_ops;

/* backend: an inference engine. One instance per backend component serves
 * every model; `load` gets the model's options validated against the
 * component's declared properties (providers, threads, ...). The model
 * pointer is the backend's own. `run` may be called from many threads at
 * once on the same model. (ABI 1.1 appended load..run.) */
typedef struct inferd_tensor_info {
    const char *name;   /* borrowed from the backend, valid while the model is loaded */
    inferd_dtype dtype;
    size_t ndim;
    int64_t shape[INFERD_TENSOR_MAX_DIMS]; /* -1 for a dynamic dimension */
} inferd_tensor_info;

typedef struct inferd_backend_ops {
    uint32_t size;
    inferd_status (*init)(inferd_instance *self, const inferd_props *props, inferd_error *err);
    void (*deinit)(inferd_instance *self);
    /* ABI 1.1. Loads from path, or from data/len when path is NULL. */
    inferd_status (*load)(inferd_instance *self, const char *path, const void *data, size_t len,
                          const inferd_props *options, void **model, inferd_error *err);
    void (*unload)(inferd_instance *self, void *model);
    /* Number of inputs (output 0) or outputs (output 1); info of the i-th. */
    size_t (*io_count)(inferd_instance *self, void *model, int output);
    inferd_status (*io_info)(inferd_instance *self, void *model, int output, size_t i,
                             inferd_tensor_info *info, inferd_error *err);
    /* inputs in the model's input order; outputs[i] receives a new tensor
     * (owned by the caller) for each of the model's n_out outputs. */
    inferd_status (*run)(inferd_instance *self, void *model, const inferd_tensor *const *inputs,
                         size_t n_in, inferd_tensor **outputs, size_t n_out, inferd_error *err);
    /* ABI 2.1, optional (NULL: none). The model's metadata (ONNX
     * metadata_props) as a new object of name -> string, owned by the
     * caller. */
    inferd_status (*metadata)(inferd_instance *self, void *model, inferd_value **out,
                              inferd_error *err);
    /* ABI 2.4, optional (NULL: the backend does not say). Where the model
     * runs: "cpu", "cuda:0", ... and, in *why, NULL, or why it runs
     * somewhere else than its options asked (the library missing, no
     * device). Both borrowed, valid while the model is loaded. */
    const char *(*device)(inferd_instance *self, void *model, const char **why);
} inferd_backend_ops;

/* A component: kind, name, declarations, and the ops of its kind. */
enum {
    INFERD_COMPONENT_AGGREGATE = 1u << 0, /* function: aggregates over a window */
    /* element without inputs that makes its own data (a file reader): the
     * host calls its process once, with no inputs, when the pipeline starts;
     * it pushes what it produces (the host numbers the frames) and returns
     * at its end, which ends its stream. */
    INFERD_COMPONENT_PRODUCER = 1u << 1,
    /* estimator without a broker name: a family (ABI 2.1). It serves the
     * names the config defines with "type": "<component name>", one
     * instance each (estimators.textDetector = {"type": "text", ...}). */
    INFERD_COMPONENT_FAMILY = 1u << 2,
    /* element: process is called with buffers that carry an error too (the
     * engine otherwise passes them on unseen): a join that must account for
     * every part of a frame (ABI 2.1). */
    INFERD_COMPONENT_TAKES_ERRORS = 1u << 3
};
typedef struct inferd_component {
    uint32_t size;                   /* sizeof(inferd_component) */
    inferd_component_kind kind;
    const char *name;                /* unique across all plugins: the pipeline "factory",
                                        the function name, the estimator implementation */
    const char *description;
    const inferd_prop_spec *props;   /* END-terminated, or NULL for none */
    const inferd_port_spec *inputs;  /* element: END-terminated, or NULL for none */
    const inferd_port_spec *outputs; /* element: END-terminated, or NULL for none */
    const char *broker_name;         /* estimator: the estimator name it serves or replaces
                                        (NULL for a family: INFERD_COMPONENT_FAMILY) */
    const char *event_name;          /* event: the event type it receives */
    int32_t min_args, max_args;      /* function: arity; max_args -1 for any number */
    uint32_t flags;                  /* INFERD_COMPONENT_* */
    const inferd_route_spec *routes; /* background: END-terminated, or NULL */
    const void *ops;                 /* inferd_<kind>_ops, its size first */
    /* ABI 1.2. estimator: the options a request may give (query parameters
     * or JSON fields, e.g. "targets"), END-terminated or NULL for none. A
     * replacement declares the same ones as the estimator it replaces. */
    const inferd_prop_spec *request_options;
    /* ABI 2.0. The plugin's own data for the component (a table, a C++
     * object), the same for all its instances: a callback reads it back
     * with inferd_instance_component(self)->user_data. The host never
     * touches it. */
    void *user_data;
} inferd_component;

/* The plugin descriptor returned by the entry point. */
typedef struct inferd_plugin {
    uint32_t magic;        /* INFERD_PLUGIN_MAGIC */
    uint16_t abi_major;    /* INFERD_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;    /* INFERD_ABI_MINOR the plugin was built against */
    uint32_t size;         /* sizeof(inferd_plugin) */
    const char *name;
    const char *version;
    const char *description;
    const inferd_component *components;
    size_t n_components;
} inferd_plugin;

/* ---- the host table ------------------------------------------------------- */

/* Functions plugins may call. The order is the ABI: append only. Each entry
 * has exactly the type of the public function of the same name. */
#define INFERD_HOST_API_V1_0(X)                                                            \
    /* status and log */                                                                  \
    X(status_name) X(error_set) X(error_prefix) X(log) X(log_enabled)                      \
    /* values */                                                                          \
    X(value_type_name) X(value_null) X(value_bool) X(value_int) X(value_double)            \
    X(value_string) X(value_string_n) X(value_bytes) X(value_bytes_take) X(value_array)    \
    X(value_object) X(value_free) X(value_copy) X(value_equal) X(value_type_of)            \
    X(value_is) X(value_get_bool) X(value_get_int) X(value_get_double) X(value_get_string) \
    X(value_get_bytes) X(value_string_or) X(value_int_or) X(value_double_or)               \
    X(value_bool_or) X(value_array_len) X(value_array_get) X(value_array_push)             \
    X(value_object_len) X(value_object_get) X(value_object_set) X(value_object_remove)     \
    X(value_object_entry) X(value_object_path) X(value_from_json) X(value_to_json)         \
    X(base64_encode) X(base64_decode)                                                      \
    /* tensors */                                                                         \
    X(dtype_size) X(dtype_name) X(dtype_parse) X(shape_count) X(shape_format)              \
    X(tensor_new) X(tensor_wrap) X(tensor_set_name) X(tensor_count) X(tensor_free)         \
    /* images */                                                                          \
    X(pixel_channels) X(pixel_format_name) X(pixel_format_parse) X(image_new)              \
    X(image_wrap) X(image_free) X(image_sniff) X(image_codec_mime) X(image_probe)          \
    X(image_decode) X(image_encode)                                                        \
    /* buffers */                                                                         \
    X(buffer_new) X(buffer_ref) X(buffer_unref) X(buffer_refcount) X(buffer_set_frame)     \
    X(buffer_frame_id) X(buffer_stream_id) X(buffer_timestamp) X(buffer_set_value)         \
    X(buffer_set_image) X(buffer_set_tensors) X(buffer_payload_kind) X(buffer_format)      \
    X(buffer_value) X(buffer_image) X(buffer_tensor_count) X(buffer_tensor)                \
    X(buffer_add_meta_value) X(buffer_add_meta_tensor) X(buffer_add_meta_image)            \
    X(buffer_find_meta) X(buffer_meta_count) X(buffer_meta_at) X(buffer_set_error)         \
    X(buffer_error)                                                                        \
    /* properties */                                                                      \
    X(props_get) X(props_string) X(props_int) X(props_double) X(props_bool)                \
    X(props_list_len) X(props_list_at)                                                     \
    /* instances */                                                                       \
    X(instance_name) X(instance_component) X(instance_state) X(instance_set_state)         \
    X(instance_push) X(instance_emit)

/* Appended in ABI 1.1: models through backends; derived buffers. */
#define INFERD_HOST_API_V1_1(X)                                                            \
    X(model_open) X(model_close) X(model_io_count) X(model_io) X(model_run)                \
    X(buffer_derive) X(buffer_parent)

/* Appended in ABI 1.2: estimates, HTTP routes, timers, events. */
#define INFERD_HOST_API_V1_2(X)                                                            \
    X(estimate_image) X(estimate_area) X(estimate_options) X(estimate_done)                \
    X(http_request_method) X(http_request_path) X(http_request_query)                      \
    X(http_request_header) X(http_request_body) X(http_response_set_status)                \
    X(http_response_set_header) X(http_response_set_body)                                  \
    X(timer_start) X(timer_cancel) X(event_publish)

/* Appended in ABI 1.3: an estimator's batch limit (its model's batch). */
#define INFERD_HOST_API_V1_3(X) X(estimator_limit_batch)

/* Appended in ABI 2.0: an instance's own log lines; 1-in/1-out filters. */
#define INFERD_HOST_API_V2_0(X) X(instance_log) X(filter_run)

/* Appended in ABI 2.1: input contracts (inferd/contract.h), the resampler, a
 * model's metadata, and the one validator for what a plugin reads itself. */
#define INFERD_HOST_API_V2_1(X)                                                            \
    X(contract_props) X(contract_from_value) X(contract_fit) X(contract_plan)              \
    X(contract_fill) X(geometry_to_image) X(image_resample) X(model_metadata)                 \
    X(props_validate) X(props_free)

/* Appended in ABI 2.2: whether a producer should end (its pipeline stops);
 * how many outputs an element has in its pipeline (a tee's branches); an
 * instance's own counters; a model's own input contract. */
#define INFERD_HOST_API_V2_2(X)                                                            \
    X(instance_stopping) X(instance_output_count) X(instance_count) X(contract_from_model)

/* Appended in ABI 2.3: a plugin's own metrics (counters, gauges and
 * histograms with labels) on /metrics. */
#define INFERD_HOST_API_V2_3(X)                                                            \
    X(metric_describe) X(metric_add) X(metric_set) X(metric_observe)

/* Appended in ABI 2.4: where a model runs (its backend's device). */
#define INFERD_HOST_API_V2_4(X) X(model_device)

/* Instance services (also in the table). */
/* The instance's name (the pipeline element's name, or the component's). */
INFERD_API const char *inferd_instance_name(const inferd_instance *self);
INFERD_API const inferd_component *inferd_instance_component(const inferd_instance *self);
/* The plugin's own data for this instance; NULL until set. */
INFERD_API void *inferd_instance_state(const inferd_instance *self);
/* True once the host wants the instance's work to end: a producer's pipeline
 * is stopping (drained or not), so its process call should return soon, also
 * while it waits for a camera or a network (ABI 2.2). False outside a
 * pipeline. */
INFERD_API bool inferd_instance_stopping(const inferd_instance *self);
/* The number of output ports the element has in its pipeline: its static
 * ones and the dynamic ones its links made (a tee pushes to each); 0
 * outside a pipeline (ABI 2.2). */
INFERD_API size_t inferd_instance_output_count(const inferd_instance *self);
/* Adds delta to the instance's counter `name` (made at its first use; at
 * most INFERD_INSTANCE_COUNTERS names, a name of up to 31 bytes): what an
 * element wants its users to see (a sink's retries and drops, a camera's
 * reconnects), shown with its pipeline element's counters (GET
 * /v1/pipelines/{name}). Thread-safe (ABI 2.2). */
#define INFERD_INSTANCE_COUNTERS 8
INFERD_API void inferd_instance_count(inferd_instance *self, const char *name, int64_t delta);

/* ---- a plugin's own metrics (ABI 2.3) ----------------------------------------
 * Prometheus series on /metrics named inferd_plugin_<plugin>_<name> (the
 * plugin's name with anything but letters and digits as '_'), labelled
 * instance="<the instance's name>" and with the labels given: a NULL-ended
 * array of key, value strings ({"route", "/a", "status", "200", NULL}), or
 * NULL for none. A metric is made at its first use, with the kind of the
 * function that uses it; inferd_metric_describe gives it its help text and,
 * for a histogram, its bucket bounds (ascending; default: Prometheus's
 * 0.005 .. 10) before that. Names and label keys are [a-zA-Z_][a-zA-Z0-9_]*
 * (at most 63 bytes), values at most 127 bytes; an instance has at most
 * INFERD_METRIC_FAMILIES metrics, each at most INFERD_METRIC_SERIES label
 * sets, at most 8 labels. Each returns 0, or -1 when refused (a bad name, a
 * kind other than the metric's, a counter decreased, a limit reached: the
 * first refusal of an instance is logged). Thread-safe. The series go with
 * the instance. */
typedef enum inferd_metric_kind {
    INFERD_METRIC_COUNTER,   /* only goes up: inferd_metric_add */
    INFERD_METRIC_GAUGE,     /* any value: inferd_metric_set, inferd_metric_add */
    INFERD_METRIC_HISTOGRAM, /* observations into buckets: inferd_metric_observe */
} inferd_metric_kind;
#define INFERD_METRIC_FAMILIES 32
#define INFERD_METRIC_SERIES 64
INFERD_API int inferd_metric_describe(inferd_instance *self, const char *name,
                                      inferd_metric_kind kind, const char *help,
                                      const double *buckets, size_t n_buckets);
/* A counter (made as one when new) or a gauge: adds delta (>= 0 for a counter). */
INFERD_API int inferd_metric_add(inferd_instance *self, const char *name,
                                 const char *const *labels, double delta);
/* A gauge: sets it. */
INFERD_API int inferd_metric_set(inferd_instance *self, const char *name,
                                 const char *const *labels, double value);
/* A histogram: one observation. */
INFERD_API int inferd_metric_observe(inferd_instance *self, const char *name,
                                     const char *const *labels, double value);
/* A filter: an element with one input and one output that changes each
 * buffer (its payload or metadata) in place; the host does the rest (as
 * GStreamer's base transform): it checks there is one buffer and that its
 * format is one the input port declares (a grey image at an image/rgb port
 * is refused here, not read out of bounds), calls transform, and pushes the
 * buffer on output 0 when it succeeds. Write the element's process with
 * INFERD_FILTER_PROCESS(name, transform). */
typedef inferd_status (*inferd_filter_fn)(inferd_instance *self, inferd_buffer *buf,
                                          inferd_error *err);
INFERD_API inferd_status inferd_filter_run(inferd_instance *self, inferd_buffer *const *inputs,
                                           size_t n_inputs, inferd_filter_fn transform,
                                           inferd_error *err);
#define INFERD_FILTER_PROCESS(name, transform)                                                \
    static inferd_status name(inferd_instance *self, inferd_buffer *const *inputs, size_t n,   \
                              inferd_error *err)                                               \
    {                                                                                          \
        return inferd_filter_run(self, inputs, n, (transform), err);                           \
    }
/* A log line of this instance, at level: "<instance> (<component>): <message>"
 * under the plugin's name, so a plugin never spells its own names. */
INFERD_API void inferd_instance_log(const inferd_instance *self, inferd_log_level level,
                                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
INFERD_API void inferd_instance_set_state(inferd_instance *self, void *state);
/* element: sends buf downstream on output port `port`. Takes the caller's
 * reference to buf (also on failure). */
INFERD_API inferd_status inferd_instance_push(inferd_instance *self, size_t port,
                                              inferd_buffer *buf, inferd_error *err);
/* source: emits one message (takes ownership of msg, also on failure). */
INFERD_API inferd_status inferd_instance_emit(inferd_instance *self, inferd_value *msg,
                                              inferd_error *err);

/* Models (also in the table). A model is opened through a backend component
 * by name ("onnxruntime"); the host shares one loaded model between every
 * caller that opens the same backend, file and options, and unloads it when
 * the last one closes it. options (may be NULL) are checked against the
 * backend component's properties. */
typedef struct inferd_model inferd_model;
/* self: the calling instance (the model comes from its host's backends). */
INFERD_API inferd_status inferd_model_open(inferd_instance *self, const char *backend,
                                           const char *path, const void *data, size_t len,
                                           const inferd_value *options, inferd_model **out,
                                           inferd_error *err);
INFERD_API void inferd_model_close(inferd_model *model);
INFERD_API size_t inferd_model_io_count(const inferd_model *model, int output);
INFERD_API inferd_status inferd_model_io(const inferd_model *model, int output, size_t i,
                                         inferd_tensor_info *info, inferd_error *err);
INFERD_API inferd_status inferd_model_run(inferd_model *model, const inferd_tensor *const *inputs,
                                          size_t n_in, inferd_tensor **outputs, size_t n_out,
                                          inferd_error *err);
/* The model's metadata (ONNX metadata_props) as a new object of name ->
 * string, owned by the caller; empty when the backend has none (ABI 2.1). */
/* Where the model runs, as its backend says ("cpu", "cuda:0"), or NULL
 * when the backend does not say; *why (why may be NULL) as the backend's
 * device op gives it. Borrowed, valid while the model is open (ABI 2.4).
 * The host also shows it for the instance that opened the model (an
 * estimator's "device" in /v1/estimators). */
INFERD_API const char *inferd_model_device(const inferd_model *model, const char **why);
INFERD_API inferd_status inferd_model_metadata(const inferd_model *model, inferd_value **out,
                                               inferd_error *err);

/* The input contract a model asks for: its metadata's "inferd.input" (a JSON
 * object of contract keys, inferd/contract.h) with `given` laid over it key
 * by key (NULL: nothing), checked by the contract's declaration (errors name
 * the model and the key); the defaults where neither says. Not yet fitted
 * to the model's input: inferd_contract_fit does that (ABI 2.2). */
INFERD_API inferd_status inferd_contract_from_model(const inferd_model *model, const char *name,
                                                    const inferd_value *given,
                                                    inferd_input_contract *out,
                                                    inferd_error *err);

/* Estimates (ABI 1.2). An item is borrowed by the estimator from the call
 * of estimate_batch until it is completed. */
typedef struct inferd_rect {
    int64_t x, y, width, height;
} inferd_rect;
/* The item's image, decoded to RGB8, whole (not cropped to the area). */
INFERD_API const inferd_image *inferd_estimate_image(const inferd_estimate *item);
/* 1 and *area when the request gave a detect area (checked to lie inside the
 * image, width and height >= 1), else 0. Results are in the whole image's
 * coordinates: map what is found in the area back by its x, y. */
INFERD_API int inferd_estimate_area(const inferd_estimate *item, inferd_rect *area);
/* The request's options, validated against the component's request_options
 * with their defaults filled in. */
INFERD_API const inferd_props *inferd_estimate_options(const inferd_estimate *item);
/* Completes an item: result (owned, taken) on success, or NULL result and
 * err saying why (err NULL: "no result"). Exactly once per item; any thread.
 * After it, the item is gone. */
INFERD_API void inferd_estimate_done(inferd_estimate *item, inferd_value *result,
                                     const inferd_error *err);
/* Called from an estimator's init (ABI 1.3): the most items one call of
 * estimate_batch can take, as its model decides (a model whose batch
 * dimension is fixed at N takes N). The host's batcher never hands more, so
 * a model that runs one image at a time is never given a group. 0 (or never
 * calling it): no limit of the model's; the config's maxBatch applies. */
INFERD_API void inferd_estimator_limit_batch(inferd_instance *self, size_t max_items);

/* HTTP routes of background components (ABI 1.2). The request and response
 * are borrowed for the handler's call. */
INFERD_API const char *inferd_http_request_method(const inferd_http_request *req);
INFERD_API const char *inferd_http_request_path(const inferd_http_request *req);
/* A query parameter's value (decoded), or NULL when absent. */
INFERD_API const char *inferd_http_request_query(const inferd_http_request *req, const char *key);
/* A header's value (name case-insensitive), or NULL when absent. */
INFERD_API const char *inferd_http_request_header(const inferd_http_request *req, const char *name);
/* The body (may be empty: *len 0). */
INFERD_API const void *inferd_http_request_body(const inferd_http_request *req, size_t *len);
/* Defaults: status 200, no body. */
INFERD_API void inferd_http_response_set_status(inferd_http_response *resp, unsigned status);
INFERD_API inferd_status inferd_http_response_set_header(inferd_http_response *resp,
                                                         const char *name, const char *value,
                                                         inferd_error *err);
/* Copies data. */
INFERD_API inferd_status inferd_http_response_set_body(inferd_http_response *resp, const void *data,
                                                       size_t len, inferd_error *err);

/* Timers (ABI 1.2): fn(self, user) every interval_ms on the host's timer
 * thread (one thread for all timers: keep callbacks short). *id names it for
 * inferd_timer_cancel; an instance's timers are cancelled when it is
 * destroyed, and a cancel returns after a running callback has returned. */
typedef void (*inferd_timer_fn)(inferd_instance *self, void *user);
INFERD_API inferd_status inferd_timer_start(inferd_instance *self, uint64_t interval_ms,
                                            inferd_timer_fn fn, void *user, uint64_t *id,
                                            inferd_error *err);
INFERD_API void inferd_timer_cancel(inferd_instance *self, uint64_t id);

/* Events (ABI 1.2): publishes payload (owned, taken, also on failure) as an
 * event named name ("monitoring_event", or a plugin's own) to every event
 * component subscribed to it. Never blocks: a subscriber whose queue is
 * full drops it and counts the drop. */
INFERD_API inferd_status inferd_event_publish(const char *name, inferd_value *payload,
                                              inferd_error *err);

#define INFERD__API_FIELD(n) __typeof__(inferd_##n) *n;
typedef struct inferd_host_api {
    uint32_t size;      /* sizeof the host's table: fields past it are absent */
    uint16_t abi_major; /* the host's ABI */
    uint16_t abi_minor;
    INFERD_HOST_API_V1_0(INFERD__API_FIELD)
    INFERD_HOST_API_V1_1(INFERD__API_FIELD)
    INFERD_HOST_API_V1_2(INFERD__API_FIELD)
    INFERD_HOST_API_V1_3(INFERD__API_FIELD)
    INFERD_HOST_API_V2_0(INFERD__API_FIELD)
    INFERD_HOST_API_V2_1(INFERD__API_FIELD)
    INFERD_HOST_API_V2_2(INFERD__API_FIELD)
    INFERD_HOST_API_V2_3(INFERD__API_FIELD)
    INFERD_HOST_API_V2_4(INFERD__API_FIELD)
} inferd_host_api;
#undef INFERD__API_FIELD

/* Whether the host's table has a field (for plugins that want to use a newer
 * function when the host has it). */
#define INFERD_HOST_HAS(api, field) \
    (offsetof(inferd_host_api, field) + sizeof((api)->field) <= (api)->size)

typedef const inferd_plugin *(*inferd_plugin_entry_fn)(const inferd_host_api *host);

/* ---- declaring a plugin ---------------------------------------------------- */

/* Use these at file scope (as INFERD_PLUGIN is): the ops tables they create
 * are compound literals, which have static storage only outside functions. */

#define INFERD__OPS(T, ...) INFERD__STATIC_OF(const T, {sizeof(T), __VA_ARGS__})

/* The full form: a component as designated initialisers (every field of
 * inferd_component, in its order: .name, .description, .props, .inputs,
 * .outputs, .broker_name, .event_name, .min_args, .max_args, .flags,
 * .routes, .ops, .request_options, .user_data), its ops from the kind's
 * INFERD_<KIND>_OPS(callbacks...). The short forms below are this. */
#define INFERD_COMPONENT(ckind, ...)                                                         \
    { .size = sizeof(inferd_component), .kind = (ckind), __VA_ARGS__ }
#define INFERD_ELEMENT_OPS(finit, fprocess, fdeinit)                                         \
    INFERD__OPS(inferd_element_ops, (finit), (fprocess), (fdeinit))
#define INFERD_FUNCTION_OPS(finit, fvalidate, fexec, fdeinit)                                \
    INFERD__OPS(inferd_function_ops, (finit), (fvalidate), (fexec), (fdeinit))
#define INFERD_BACKGROUND_OPS(finit, fstart, fclose)                                         \
    INFERD__OPS(inferd_background_ops, (finit), (fstart), (fclose))
#define INFERD_EVENT_OPS(finit, fhandle, fdeinit)                                            \
    INFERD__OPS(inferd_event_ops, (finit), (fhandle), (fdeinit))
#define INFERD_ESTIMATOR_OPS(finit, fbatch, fdeinit)                                         \
    INFERD__OPS(inferd_estimator_ops, (finit), (fbatch), (fdeinit))
#define INFERD_SOURCE_OPS(finit, fstart, fstop, fdeinit)                                     \
    INFERD__OPS(inferd_source_ops, (finit), (fstart), (fstop), (fdeinit))
#define INFERD_SINK_OPS(finit, fcollect, fdeinit)                                            \
    INFERD__OPS(inferd_sink_ops, (finit), (fcollect), (fdeinit))
/* ... is run, then optionally metadata (ABI 2.1). */
#define INFERD_BACKEND_OPS(finit, fdeinit, fload, funload, fio_count, fio_info, ...)          \
    INFERD__OPS(inferd_backend_ops, (finit), (fdeinit), (fload), (funload), (fio_count),     \
                (fio_info), __VA_ARGS__)

/* The short forms, positional. */

#define INFERD_ELEMENT(cname, cprops, cin, cout, finit, fprocess, fdeinit)                    \
    INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = (cname), .props = (cprops), .inputs = (cin),  \
                     .outputs = (cout), .ops = INFERD_ELEMENT_OPS(finit, fprocess, fdeinit))
#define INFERD_FUNCTION(cname, amin, amax, finit, fvalidate, fexec, fdeinit)                  \
    INFERD_COMPONENT(INFERD_KIND_FUNCTION, .name = (cname), .min_args = (amin),                \
                     .max_args = (amax),                                                      \
                     .ops = INFERD_FUNCTION_OPS(finit, fvalidate, fexec, fdeinit))
#define INFERD_BACKGROUND(cname, cprops, croutes, finit, fstart, fclose)                      \
    INFERD_COMPONENT(INFERD_KIND_BACKGROUND, .name = (cname), .props = (cprops),               \
                     .routes = (croutes), .ops = INFERD_BACKGROUND_OPS(finit, fstart, fclose))
#define INFERD_EVENT(cname, cevent, cprops, finit, fhandle, fdeinit)                          \
    INFERD_COMPONENT(INFERD_KIND_EVENT, .name = (cname), .props = (cprops),                    \
                     .event_name = (cevent), .ops = INFERD_EVENT_OPS(finit, fhandle, fdeinit))
#define INFERD_ESTIMATOR(cname, cbroker, cprops, copts, finit, fbatch, fdeinit)               \
    INFERD_COMPONENT(INFERD_KIND_ESTIMATOR, .name = (cname), .props = (cprops),                \
                     .broker_name = (cbroker), .ops = INFERD_ESTIMATOR_OPS(finit, fbatch, fdeinit), \
                     .request_options = (copts))
#define INFERD_SOURCE(cname, cprops, finit, fstart, fstop, fdeinit)                           \
    INFERD_COMPONENT(INFERD_KIND_SOURCE, .name = (cname), .props = (cprops),                   \
                     .ops = INFERD_SOURCE_OPS(finit, fstart, fstop, fdeinit))
#define INFERD_BACKEND(cname, cprops, finit, fdeinit, fload, funload, fio_count, fio_info, ...) \
    INFERD_COMPONENT(INFERD_KIND_BACKEND, .name = (cname), .props = (cprops),                    \
                     .ops = INFERD_BACKEND_OPS(finit, fdeinit, fload, funload, fio_count,        \
                                               fio_info, __VA_ARGS__))
#define INFERD_SINK(cname, cprops, finit, fcollect, fdeinit)                                  \
    INFERD_COMPONENT(INFERD_KIND_SINK, .name = (cname), .props = (cprops),                     \
                     .ops = INFERD_SINK_OPS(finit, fcollect, fdeinit))

#define INFERD__ENTRY_ATTR __attribute__((visibility("default")))
/* The entry point and the table pointer have C linkage in C++ too: the
 * host looks the entry up by its C name. */
#ifdef __cplusplus
#define INFERD__C_BEGIN extern "C" {
#define INFERD__C_END }
#else
#define INFERD__C_BEGIN
#define INFERD__C_END
#endif

/* Declares the plugin: its name, version, and its components (one or more
 * INFERD_ELEMENT(...), INFERD_FUNCTION(...), ... or designated initialisers
 * of inferd_component). Use once per shared object. */
#define INFERD_PLUGIN(pname, pversion, ...)                                                    \
    INFERD__C_BEGIN                                                                            \
    __attribute__((visibility("hidden"))) const inferd_host_api *inferd__api;                  \
    INFERD__C_END                                                                              \
    static const inferd_component inferd__components[] = {__VA_ARGS__};                        \
    static const inferd_plugin inferd__plugin = {                                              \
        INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR, sizeof(inferd_plugin),       \
        (pname), (pversion), NULL, inferd__components,                                         \
        sizeof inferd__components / sizeof inferd__components[0]};                             \
    INFERD__C_BEGIN                                                                            \
    INFERD__ENTRY_ATTR const inferd_plugin *inferd_plugin_entry(const inferd_host_api *host); \
    INFERD__ENTRY_ATTR const inferd_plugin *inferd_plugin_entry(const inferd_host_api *host)  \
    {                                                                                          \
        inferd__api = host;                                                                    \
        return &inferd__plugin;                                                                \
    }                                                                                          \
    INFERD__C_END

#ifdef __cplusplus
}
#endif

/* ---- in a plugin build, the core names call through the host table -------- */
#if !defined(INFERD_HOST_BUILD)
#ifdef __cplusplus
extern "C" __attribute__((visibility("hidden"))) const inferd_host_api *inferd__api;
#else
extern __attribute__((visibility("hidden"))) const inferd_host_api *inferd__api;
#endif
#include "inferd/plugin_api_map.h"
#endif

#endif /* INFERD_PLUGIN_H */
