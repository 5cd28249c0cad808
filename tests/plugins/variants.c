/* Test plugins: one source, built once per VARIANT (see tests/CMakeLists.txt),
 * each a real shared object that the plugin host must load or refuse.
 *
 *   GOOD           an element with every property type, a function, a source
 *   BAD_MAGIC      a descriptor with the wrong magic
 *   NEWER_MINOR    built for ABI 1.(minor+1)
 *   OLDER_MAJOR    built for ABI 0.x
 *   NULL_NAME      a descriptor without a plugin name
 *   NULL_COMPONENT a component without a name
 *   DUP_A, DUP_B   two plugins that both register component test_dup
 *   NO_PROCESS     an element without its process callback
 *   BAD_PORT       a port with a malformed format
 *   MISSING_DEP    links a library that is not on the library path
 *   NO_ENTRY       exports no entry symbol at all
 *   BG             a background component with routes that echo, fail, or
 *                  set a bad status; its start fails when failStart is set
 *   BG_RESERVED    a background component that declares GET /metrics
 *   BG_CLASH       a background component that declares GET /teapot
 *   EV_RECORD      event components that append every plugin_failed,
 *                  estimation_done, config_reload, plugin_crashed,
 *                  plugin_restarted, rule_status, model_loaded or
 *                  model_unloaded event to the file named by
 *                  their property path, one JSON line each
 *   OWN_NAMES      defines and exports functions named like the daemon's own
 *                  private ones (proto_send, sql_eval, mqtt_client_new); its
 *                  function test_own_names says whose were called
 */
#include "inferd/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(GOOD) || defined(NO_PROCESS) || defined(BAD_PORT)

/* ---- an element ---------------------------------------------------------- */
static const char *const modes[] = {"fast", "exact", NULL};
static const inferd_prop_spec element_props[] = {
    INFERD_PROP_STRING("label", "a label", "none"),
    INFERD_PROP_INT("height", "a height", 640, 6, 4096),
    INFERD_PROP_UINT("count", "a count", 1, 1, 100),
    INFERD_PROP_FLOAT("threshold", "a threshold", 0.5, 0.0, 1.0),
    INFERD_PROP_DOUBLE("gain", "a gain", 1.0, -10.0, 10.0),
    INFERD_PROP_BOOL("failInit", "make init fail", false),
    INFERD_PROP_ENUM("mode", "a mode", "fast", modes),
    INFERD_PROP_STRLIST("tags", "tags", ""),
    INFERD_PROP_END,
};
static const inferd_port_spec element_in[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr", "text/plain"),
                                              INFERD_PORT_END};
#ifdef BAD_PORT
static const inferd_port_spec element_out[] = {INFERD_PORT_STATIC("not a format"), INFERD_PORT_END};
#else
static const inferd_port_spec element_out[] = {INFERD_PORT_STATIC("metadata/attribute"),
                                               INFERD_PORT_DYNAMIC("ANY"), INFERD_PORT_END};
#endif

typedef struct element_state {
    int64_t height;
    char *label;
    uint64_t processed;
} element_state;

static inferd_status element_init(inferd_instance *self, const inferd_props *props,
                                  inferd_error *err)
{
    if (inferd_props_bool(props, "failInit"))
        return inferd_error_set(err, INFERD_EINVAL, "failInit was set");
    element_state *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    s->height = inferd_props_int(props, "height");
    s->label = strdup(inferd_props_string(props, "label"));
    inferd_instance_set_state(self, s);
    return INFERD_OK;
}

/* Attaches {"label", "height", "seen"} under the instance's name and pushes
 * the buffer on port 0; a buffer whose value is "fail" makes it fail. */
static inferd_status element_process(inferd_instance *self, inferd_buffer *const *inputs,
                                     size_t n, inferd_error *err)
{
    element_state *s = inferd_instance_state(self);
    if (n < 1 || !inputs[0])
        return inferd_error_set(err, INFERD_EINVAL, "no input");
    const char *v = inferd_value_string_or(inferd_buffer_value(inputs[0]), "");
    if (strcmp(v, "fail") == 0)
        return inferd_error_set(err, INFERD_EINVAL, "asked to fail");
    s->processed++;
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "label", inferd_value_string(s->label), NULL);
    inferd_value_object_set(meta, "height", inferd_value_int(s->height), NULL);
    inferd_value_object_set(meta, "seen", inferd_value_int((int64_t)s->processed), NULL);
    inferd_status st = inferd_buffer_add_meta_value(inputs[0], inferd_instance_name(self),
                                                    "metadata/attribute", meta, err);
    if (st != INFERD_OK)
        return st;
    return inferd_instance_push(self, 0, inferd_buffer_ref(inputs[0]), err);
}

static void element_deinit(inferd_instance *self)
{
    element_state *s = inferd_instance_state(self);
    if (s) {
        free(s->label);
        free(s);
    }
}

#ifdef NO_PROCESS
#define PROCESS_FN NULL
#else
#define PROCESS_FN element_process
#endif
#endif

#if defined(GOOD) || defined(DUP_A) || defined(DUP_B) || defined(NULL_COMPONENT)
/* ---- a function: sum of numbers ----------------------------------------- */
static inferd_status sum_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double d;
        if (inferd_value_get_double(args[i], &d, err) != INFERD_OK)
            return inferd_error_prefix(err, "argument %zu", i + 1);
        total += d;
    }
    *result = inferd_value_double(total);
    return INFERD_OK;
}

#endif

#if defined(GOOD)
/* ---- a source: says what happens to it through its own messages --------- */
static inferd_status source_say(inferd_instance *self, const char *what, inferd_error *err)
{
    inferd_value *msg = inferd_value_object();
    inferd_value_object_set(msg, "event", inferd_value_string(what), NULL);
    return inferd_instance_emit(self, msg, err);
}
static inferd_status source_start(inferd_instance *self, inferd_error *err)
{
    return source_say(self, "started", err);
}
static void source_stop(inferd_instance *self) { source_say(self, "stopped", NULL); }

/* ---- a two-input element: says which inputs it was called with ---------- */
static const inferd_port_spec two_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_STATIC("ANY"),
                                          INFERD_PORT_END};
static const inferd_port_spec one_out[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};

static inferd_status merge_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                   inferd_error *err)
{
    inferd_value *ports = inferd_value_array();
    inferd_buffer *first = NULL;
    for (size_t i = 0; i < n; i++)
        if (in[i]) {
            inferd_value_array_push(ports, inferd_value_int((int64_t)i), NULL);
            first = first ? first : in[i];
        }
    inferd_buffer *out = inferd_buffer_derive(first);
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "ports", ports, NULL);
    inferd_buffer_add_meta_value(out, inferd_instance_name(self), "metadata/attribute", meta, NULL);
    return inferd_instance_push(self, 0, out, err);
}

INFERD_PLUGIN("test_good", "1.2.3",
              INFERD_ELEMENT("test_element", element_props, element_in, element_out, element_init,
                             element_process, element_deinit),
              INFERD_FUNCTION("test_sum", 1, -1, NULL, NULL, sum_exec, NULL),
              INFERD_SOURCE("test_source", NULL, NULL, source_start, source_stop, NULL),
              INFERD_ELEMENT("test_merge", NULL, two_in, one_out, NULL, merge_process, NULL))
#elif defined(DUP_A)
INFERD_PLUGIN("test_dup_a", "1.0", INFERD_FUNCTION("test_dup", 0, 2, NULL, NULL, sum_exec, NULL))
#elif defined(DUP_B)
INFERD_PLUGIN("test_dup_b", "1.0", INFERD_FUNCTION("test_dup", 0, 2, NULL, NULL, sum_exec, NULL))
#elif defined(MISSING_DEP)
extern int inferd_testdep_answer(void);
static inferd_status dep_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    *result = inferd_value_int(inferd_testdep_answer());
    return INFERD_OK;
}
INFERD_PLUGIN("test_missing_dep", "1.0",
              INFERD_FUNCTION("test_dep", 0, 0, NULL, NULL, dep_exec, NULL))
#elif defined(NO_PROCESS) || defined(BAD_PORT)
#ifdef NO_PROCESS
static inferd_status (*const unused_process)(inferd_instance *, inferd_buffer *const *, size_t,
                                             inferd_error *) __attribute__((unused)) = element_process;
#endif
INFERD_PLUGIN("test_broken_element", "1.0",
              INFERD_ELEMENT("test_broken", element_props, element_in, element_out, element_init,
                             PROCESS_FN, element_deinit))
#elif defined(NULL_COMPONENT)
INFERD_PLUGIN("test_null_component", "1.0",
              INFERD_FUNCTION(NULL, 0, 0, NULL, NULL, sum_exec, NULL))
#elif defined(BG)
static const inferd_prop_spec bg_props[] = {
    INFERD_PROP_BOOL("failStart", "make start fail", false),
    INFERD_PROP_END,
};
static bool fail_start;
static inferd_status bg_init(inferd_instance *self, const inferd_props *props, inferd_error *err)
{
    fail_start = inferd_props_bool(props, "failStart");
    return INFERD_OK;
}
static inferd_status bg_start(inferd_instance *self, inferd_error *err)
{
    return fail_start ? inferd_error_set(err, INFERD_EIO, "failStart was set") : INFERD_OK;
}
static inferd_status bg_fail(inferd_instance *self, const inferd_http_request *req,
                             inferd_http_response *resp, inferd_error *err)
{
    return inferd_error_set(err, INFERD_EIO, "asked to fail");
}
static inferd_status bg_bad_status(inferd_instance *self, const inferd_http_request *req,
                                   inferd_http_response *resp, inferd_error *err)
{
    inferd_http_response_set_status(resp, 42);
    return INFERD_OK;
}
/* {"method", "path", "q": ?q, "header": X-Test, "body"} */
static inferd_status bg_echo(inferd_instance *self, const inferd_http_request *req,
                             inferd_http_response *resp, inferd_error *err)
{
    size_t len = 0;
    const char *body = inferd_http_request_body(req, &len);
    const char *q = inferd_http_request_query(req, "q");
    const char *h = inferd_http_request_header(req, "x-test");
    inferd_value *o = inferd_value_object();
    inferd_value_object_set(o, "method", inferd_value_string(inferd_http_request_method(req)), NULL);
    inferd_value_object_set(o, "path", inferd_value_string(inferd_http_request_path(req)), NULL);
    inferd_value_object_set(o, "q", q ? inferd_value_string(q) : inferd_value_null(), NULL);
    inferd_value_object_set(o, "header", h ? inferd_value_string(h) : inferd_value_null(), NULL);
    inferd_value_object_set(o, "body", inferd_value_string_n(body, len), NULL);
    char *json = NULL;
    size_t json_len = 0;
    inferd_status st = inferd_value_to_json(o, 0, &json, &json_len, err);
    inferd_value_free(o);
    if (st == INFERD_OK) {
        inferd_http_response_set_status(resp, 201);
        st = inferd_http_response_set_header(resp, "Content-Type", "application/json", err);
    }
    if (st == INFERD_OK)
        st = inferd_http_response_set_body(resp, json, json_len, err);
    free(json);
    return st;
}
static const inferd_route_spec bg_routes[] = {
    {"GET", "/test_bg/fail", bg_fail},
    {"GET", "/test_bg/badstatus", bg_bad_status},
    {"*", "/test_bg/echo", bg_echo},
    INFERD_ROUTE_END,
};
INFERD_PLUGIN("test_bg", "1.0",
              INFERD_BACKGROUND("test_bg", bg_props, bg_routes, bg_init, bg_start, NULL))
#elif defined(BG_RESERVED) || defined(BG_CLASH)
static inferd_status bg_start(inferd_instance *self, inferd_error *err) { return INFERD_OK; }
static inferd_status bg_nop(inferd_instance *self, const inferd_http_request *req,
                            inferd_http_response *resp, inferd_error *err)
{
    return INFERD_OK;
}
#ifdef BG_RESERVED
static const inferd_route_spec bg_routes[] = {{"GET", "/metrics", bg_nop}, INFERD_ROUTE_END};
INFERD_PLUGIN("test_bg_reserved", "1.0",
              INFERD_BACKGROUND("test_bg_reserved", NULL, bg_routes, NULL, bg_start, NULL))
#else
static const inferd_route_spec bg_routes[] = {{"GET", "/teapot", bg_nop}, INFERD_ROUTE_END};
INFERD_PLUGIN("test_bg_clash", "1.0",
              INFERD_BACKGROUND("test_bg_clash", NULL, bg_routes, NULL, bg_start, NULL))
#endif
#elif defined(EV_RECORD)
static const inferd_prop_spec ev_props[] = {
    INFERD_PROP_STRING("path", "the file the events are appended to", ""),
    INFERD_PROP_END,
};
static inferd_status ev_init(inferd_instance *self, const inferd_props *props, inferd_error *err)
{
    const char *path = inferd_props_string(props, "path");
    inferd_instance_set_state(self, *path ? strdup(path) : NULL); /* no path: record nothing */
    return INFERD_OK;
}
static inferd_status ev_handle(inferd_instance *self, const inferd_value *const *events, size_t n,
                               inferd_error *err)
{
    if (!inferd_instance_state(self))
        return INFERD_OK;
    FILE *f = fopen(inferd_instance_state(self), "a");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "cannot open %s",
                                (const char *)inferd_instance_state(self));
    for (size_t i = 0; i < n; i++) {
        char *json = NULL;
        if (inferd_value_to_json(events[i], 0, &json, NULL, err) == INFERD_OK)
            fprintf(f, "%s\n", json);
        free(json);
    }
    fclose(f);
    return INFERD_OK;
}
static void ev_deinit(inferd_instance *self) { free(inferd_instance_state(self)); }
INFERD_PLUGIN("test_ev_record", "1.0",
              INFERD_EVENT("test_ev_record", "plugin_failed", ev_props, ev_init, ev_handle,
                           ev_deinit),
              INFERD_EVENT("test_ev_record_done", "estimation_done", ev_props, ev_init,
                           ev_handle, ev_deinit),
              INFERD_EVENT("test_ev_record_reload", "config_reload", ev_props, ev_init,
                           ev_handle, ev_deinit),
              INFERD_EVENT("test_ev_record_crashed", "plugin_crashed", ev_props, ev_init,
                           ev_handle, ev_deinit),
              INFERD_EVENT("test_ev_record_restarted", "plugin_restarted", ev_props, ev_init,
                           ev_handle, ev_deinit),
              INFERD_EVENT("test_ev_record_rule", "rule_status", ev_props, ev_init, ev_handle,
                           ev_deinit),
              INFERD_EVENT("test_ev_record_loaded", "model_loaded", ev_props, ev_init, ev_handle,
                           ev_deinit),
              INFERD_EVENT("test_ev_record_unloaded", "model_unloaded", ev_props, ev_init,
                           ev_handle, ev_deinit))
#elif defined(OWN_NAMES)
/* Exported on purpose (the worst case): the plugin's calls must still reach
 * these, not the daemon's functions of the same names. */
__attribute__((visibility("default"))) const char *proto_send(void);
__attribute__((visibility("default"))) const char *sql_eval(void);
__attribute__((visibility("default"))) const char *mqtt_client_new(void);
const char *proto_send(void) { return "plugin"; }
const char *sql_eval(void) { return "plugin"; }
const char *mqtt_client_new(void) { return "plugin"; }
static inferd_status own_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    char says[64];
    snprintf(says, sizeof says, "%s %s %s", proto_send(), sql_eval(), mqtt_client_new());
    *result = inferd_value_string(says);
    return INFERD_OK;
}
INFERD_PLUGIN("test_own_names", "1.0",
              INFERD_FUNCTION("test_own_names", 0, 0, NULL, NULL, own_exec, NULL))
#elif defined(NO_ENTRY)
int inferd_test_not_a_plugin(void);
int inferd_test_not_a_plugin(void) { return 42; }
#else
/* Hand-written descriptors with one thing wrong each. */
static inferd_status nop_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    return INFERD_OK;
}
static const inferd_component components[] = {
    INFERD_FUNCTION("test_nop", 0, 0, NULL, NULL, nop_exec, NULL)};
#if defined(BAD_MAGIC)
#define MAGIC 0x12345678u
#else
#define MAGIC INFERD_PLUGIN_MAGIC
#endif
#if defined(NEWER_MINOR)
#define MAJOR INFERD_ABI_MAJOR
#define MINOR (INFERD_ABI_MINOR + 1)
#elif defined(OLDER_MAJOR)
#define MAJOR 0
#define MINOR 9
#else
#define MAJOR INFERD_ABI_MAJOR
#define MINOR INFERD_ABI_MINOR
#endif
#if defined(NULL_NAME)
#define NAME NULL
#else
#define NAME "test_handmade"
#endif
static const inferd_plugin descriptor = {MAGIC, MAJOR, MINOR, sizeof(inferd_plugin), NAME, "1.0",
                                         NULL, components, 1};
__attribute__((visibility("hidden"))) const inferd_host_api *inferd__api;
__attribute__((visibility("default"))) const inferd_plugin *
inferd_plugin_entry(const inferd_host_api *host);
const inferd_plugin *inferd_plugin_entry(const inferd_host_api *host)
{
    inferd__api = host;
    return &descriptor;
}
#endif
