/* Unit tests: the plugin host, with real shared objects built from
 * tests/plugins/variants.c (TEST_PLUGIN_DIR): loading, every refusal,
 * activation, instances and their lifecycle, unloading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/registry.h"

static const char *plugin_dir;

static const char *plugin_path(const char *stem)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/test_%s.so", plugin_dir, stem);
    return path;
}

static inferd_registry *new_registry(void)
{
    inferd_registry *reg = NULL;
    assert_int_equal(inferd_registry_new(&reg, NULL), INFERD_OK);
    return reg;
}

static void good_plugin_loads_and_is_listed(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("good"), &err), INFERD_OK);
    assert_int_equal(inferd_registry_plugin_count(reg), 1);
    const inferd_plugin_info *p = inferd_registry_plugin_at(reg, 0);
    assert_string_equal(p->name, "test_good");
    assert_string_equal(p->version, "1.2.3");
    assert_string_equal(p->path, plugin_path("good"));
    assert_int_equal(p->abi_major, INFERD_ABI_MAJOR);
    assert_ptr_equal(inferd_registry_find_plugin(reg, "test_good"), p);

    const inferd_plugin_info *owner = NULL;
    const inferd_component *c = inferd_registry_find(reg, "test_element", &owner);
    assert_non_null(c);
    assert_ptr_equal(owner, p);
    assert_int_equal(c->kind, INFERD_KIND_ELEMENT);
    c = inferd_registry_find(reg, "test_sum", NULL);
    assert_non_null(c);
    assert_int_equal(c->kind, INFERD_KIND_FUNCTION);
    assert_null(inferd_registry_find(reg, "nope", NULL));

    /* What `inferd plugin inspect --json` prints. */
    inferd_value *d = inferd_describe_plugin(p, true);
    char *json = NULL;
    assert_int_equal(inferd_value_to_json(d, 0, &json, NULL, NULL), INFERD_OK);
    assert_contains(json, "\"name\":\"test_good\"");
    assert_contains(json, "\"name\":\"height\",\"type\":\"int\"");
    assert_contains(json, "\"default\":\"640\"");
    assert_contains(json, "\"min\":6,\"max\":4096");
    assert_contains(json, "\"values\":[\"fast\",\"exact\"]");
    assert_contains(json, "\"formats\":[\"image/rgb\",\"image/bgr\",\"text/plain\"]");
    assert_contains(json, "\"presence\":\"dynamic\"");
    assert_contains(json, "\"name\":\"dataSource\"");
    assert_contains(json, "\"min_args\":1,\"max_args\":-1");
    free(json);
    inferd_value_free(d);
    inferd_registry_free(reg);
}

/* Each bad plugin: the code it gets, what the message says, and the
 * registry left as it was. */
static void bad_plugins_are_refused(void **state)
{
    char newer_minor_text[96];
    snprintf(newer_minor_text, sizeof newer_minor_text,
             "needs plugin ABI %d.%d, newer than this inferd's %d.%d", INFERD_ABI_MAJOR,
             INFERD_ABI_MINOR + 1, INFERD_ABI_MAJOR, INFERD_ABI_MINOR);
    const struct {
        const char *stem;
        inferd_status code;
        const char *needle1, *needle2;
    } cases[] = {
        {"bad_magic", INFERD_EINVAL, "bad magic 0x12345678", "not an inferd plugin"},
        {"newer_minor", INFERD_EUNSUPPORTED, newer_minor_text, "upgrade inferd"},
        {"older_major", INFERD_EUNSUPPORTED, "built for plugin ABI 0.9", "rebuild the plugin"},
        {"null_name", INFERD_EINVAL, "has no plugin name", "test_null_name.so"},
        {"null_component", INFERD_EINVAL, "component #0 has no name", "test_null_component"},
        {"no_process", INFERD_EINVAL, "the process callback is missing", "test_broken"},
        {"bad_port", INFERD_EINVAL, "format 'not a format'", "output port 0"},
        {"missing_dep", INFERD_ENOTFOUND, "needs the library libinferd_testdep.so",
         "not installed"},
        {"no_entry", INFERD_EINVAL, "exports no inferd_plugin_entry symbol", "INFERD_PLUGIN"},
        {"does_not_exist", INFERD_ENOTFOUND, "does not exist", "test_does_not_exist.so"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        inferd_registry *reg = new_registry();
        inferd_error err = {0};
        inferd_status st = inferd_registry_load_file(reg, plugin_path(cases[i].stem), &err);
        if (st != cases[i].code)
            fail_msg("%s: got %s: %s", cases[i].stem, inferd_status_name(st), err.message);
        assert_contains(err.message, cases[i].needle1);
        assert_contains(err.message, cases[i].needle2);
        assert_int_equal(inferd_registry_plugin_count(reg), 0);
        inferd_registry_free(reg);
    }
}

static void same_component_twice_is_refused(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("dup_a"), &err), INFERD_OK);
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("dup_b"), &err), INFERD_EEXIST);
    assert_contains(err.message, "component test_dup of plugin test_dup_b");
    assert_contains(err.message, "test_dup_b.so");
    assert_contains(err.message, "already registered by plugin test_dup_a");
    assert_contains(err.message, "test_dup_a.so");
    assert_int_equal(inferd_registry_plugin_count(reg), 1);
    /* The same file twice is the same plugin name twice. */
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("dup_a"), &err), INFERD_EEXIST);
    assert_contains(err.message, "a plugin named test_dup_a is already loaded");
    inferd_registry_free(reg);
}

static void activation_follows_the_active_list(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    const char *active[] = {"test_dup_a", "test_good.so"};
    assert_int_equal(inferd_registry_activate(reg, plugin_dir, active, 2, &err), INFERD_OK);
    assert_int_equal(inferd_registry_plugin_count(reg), 2);
    /* In the list's order. */
    assert_string_equal(inferd_registry_plugin_at(reg, 0)->name, "test_dup_a");
    assert_string_equal(inferd_registry_plugin_at(reg, 1)->name, "test_good");
    /* A plugin in the folder but not in the list is not loaded. */
    assert_null(inferd_registry_find_plugin(reg, "test_dup_b"));
    inferd_instance *inst = NULL;
    assert_int_equal(inferd_instance_create(reg, "test_broken", NULL, NULL, &inst, &err),
                     INFERD_ENOTFOUND);
    assert_contains(err.message, "no component named 'test_broken' is registered");
    assert_contains(err.message, "is its plugin active?");
    inferd_registry_free(reg);

    reg = new_registry();
    const char *missing[] = {"test_good", "nope"};
    assert_int_equal(inferd_registry_activate(reg, plugin_dir, missing, 2, &err),
                     INFERD_ENOTFOUND);
    assert_contains(err.message, "active plugin 'nope' is not in the plugin folder");
    assert_contains(err.message, "test_good");
    const char *bad[] = {"../etc/x"};
    assert_int_equal(inferd_registry_activate(reg, plugin_dir, bad, 1, &err), INFERD_EINVAL);
    const char *refused[] = {"test_bad_magic"};
    assert_int_equal(inferd_registry_activate(reg, plugin_dir, refused, 1, &err), INFERD_EINVAL);
    assert_contains(err.message, "activating 'test_bad_magic'");
    inferd_registry_free(reg);
}

static void element_lifecycle(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("good"), &err), INFERD_OK);

    inferd_value *props = NULL;
    const char *json = "{\"height\": \"320\", \"label\": \"cat\", \"tags\": \"a,b\", \"status\": 1}";
    assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &props, NULL), INFERD_OK);
    inferd_instance *inst = NULL;
    assert_int_equal(inferd_instance_create(reg, "test_element", "e1", props, &inst, &err),
                     INFERD_OK);
    inferd_value_free(props);
    assert_string_equal(inferd_instance_name(inst), "e1");
    const inferd_props *p = inferd_instance_props(inst);
    assert_int_equal(inferd_props_int(p, "height"), 320);
    assert_int_equal(inferd_props_int(p, "status"), 1);
    assert_string_equal(inferd_props_string(p, "dataSource"), "auto");
    assert_int_equal(inferd_props_list_len(p, "tags"), 2);

    /* Not linked yet: the push fails and the plugin's error names it. */
    inferd_buffer *buf = inferd_buffer_new();
    assert_int_equal(inferd_buffer_set_value(buf, "text/plain", inferd_value_string("x"), NULL),
                     INFERD_OK);
    assert_int_equal(inferd_instance_process(inst, &buf, 1, &err), INFERD_ESTATE);
    assert_contains(err.message, "element e1 (test_element, plugin test_good 1.2.3): process failed");
    assert_contains(err.message, "output port 0 is not linked");

    pushed out = {0};
    inferd_instance_set_push(inst, collect_push, &out);
    assert_int_equal(inferd_instance_process(inst, &buf, 1, &err), INFERD_OK);
    assert_int_equal(out.count, 1);
    assert_ptr_equal(out.buf, buf);
    assert_int_equal(inferd_buffer_refcount(buf), 2);
    inferd_meta m;
    assert_true(inferd_buffer_find_meta(buf, "e1", "metadata/attribute", &m));
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(m.value, "label"), ""), "cat");
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(m.value, "height"), 0), 320);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(m.value, "seen"), 0), 2);

    /* A plugin error reaches the caller with who failed. */
    inferd_buffer *bad = inferd_buffer_new();
    inferd_buffer_set_value(bad, "text/plain", inferd_value_string("fail"), NULL);
    assert_int_equal(inferd_instance_process(inst, &bad, 1, &err), INFERD_EINVAL);
    assert_contains(err.message, "element e1 (test_element, plugin test_good 1.2.3): process "
                                 "failed: asked to fail");
    inferd_buffer_unref(bad);

    /* The plugin cannot be unloaded under a live instance. */
    assert_int_equal(inferd_registry_unload(reg, "test_good", &err), INFERD_EBUSY);
    assert_contains(err.message, "in use by 1 instance");
    inferd_instance_destroy(inst);
    inferd_buffer_unref(out.buf);
    inferd_buffer_unref(buf);
    assert_int_equal(inferd_registry_unload(reg, "test_good", &err), INFERD_OK);
    assert_int_equal(inferd_registry_plugin_count(reg), 0);
    assert_int_equal(inferd_registry_unload(reg, "test_good", &err), INFERD_ENOTFOUND);
    inferd_registry_free(reg);
}

static void bad_properties_and_failing_init(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("good"), &err), INFERD_OK);
    static const struct {
        const char *json;
        inferd_status code;
        const char *needle;
    } cases[] = {
        {"{\"height\": 5}", INFERD_ERANGE, "element e2 (test_element): property 'height'"},
        {"{\"mode\": \"slow\"}", INFERD_EINVAL, "one of fast, exact"},
        {"{\"status\": 2}", INFERD_ERANGE, "property 'status'"},
        {"{\"colour\": 1}", INFERD_ENOTFOUND, "unknown property 'colour'"},
        {"{\"failInit\": true}", INFERD_EINVAL,
         "element e2 (test_element, plugin test_good 1.2.3): init failed: failInit was set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        inferd_value *props = NULL;
        assert_int_equal(inferd_value_from_json(cases[i].json, strlen(cases[i].json), 0, &props,
                                                NULL), INFERD_OK);
        inferd_instance *inst = NULL;
        inferd_status st = inferd_instance_create(reg, "test_element", "e2", props, &inst, &err);
        inferd_value_free(props);
        if (st != cases[i].code)
            fail_msg("case %zu: got %s: %s", i, inferd_status_name(st), err.message);
        assert_null(inst);
        assert_contains(err.message, cases[i].needle);
    }
    /* Nothing leaked a live-instance count: the plugin unloads. */
    assert_int_equal(inferd_registry_unload(reg, "test_good", &err), INFERD_OK);
    inferd_registry_free(reg);
}

static void function_exec_and_arity(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("good"), &err), INFERD_OK);
    inferd_instance *fn = NULL;
    assert_int_equal(inferd_instance_create(reg, "test_sum", NULL, NULL, &fn, &err), INFERD_OK);
    inferd_value *a = inferd_value_int(1), *b = inferd_value_double(2.5), *s = inferd_value_string("x");
    const inferd_value *args[] = {a, b, s};
    inferd_value *result = NULL;
    assert_int_equal(inferd_instance_exec(fn, args, 2, &result, &err), INFERD_OK);
    assert_true(inferd_value_double_or(result, 0) == 3.5);
    inferd_value_free(result);
    assert_int_equal(inferd_instance_exec(fn, args, 0, &result, &err), INFERD_EINVAL);
    assert_contains(err.message, "function test_sum takes at least 1 argument, got 0");
    assert_int_equal(inferd_instance_exec(fn, args, 3, &result, &err), INFERD_ETYPE);
    assert_contains(err.message, "function test_sum (test_sum, plugin test_good 1.2.3): exec "
                                 "failed: argument 3");
    assert_null(result);
    /* A function is not an element. */
    inferd_buffer *buf = inferd_buffer_new();
    assert_int_equal(inferd_instance_process(fn, &buf, 1, &err), INFERD_ESTATE);
    assert_int_equal(inferd_instance_start(fn, &err), INFERD_ESTATE);
    inferd_buffer_unref(buf);
    inferd_value_free(a);
    inferd_value_free(b);
    inferd_value_free(s);
    inferd_instance_destroy(fn);
    inferd_registry_free(reg);
}

/* The host side of a source: collects the events it emits. */
static inferd_status collect_emit(void *ctx, inferd_instance *from, inferd_value *msg,
                                  inferd_error *err)
{
    inferd_value *events = ctx;
    inferd_value_array_push(events, inferd_value_copy(inferd_value_object_get(msg, "event")), NULL);
    inferd_value_free(msg);
    return INFERD_OK;
}

static void source_start_emit_stop(void **state)
{
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_load_file(reg, plugin_path("good"), &err), INFERD_OK);
    inferd_instance *src = NULL;
    assert_int_equal(inferd_instance_create(reg, "test_source", "s1", NULL, &src, &err), INFERD_OK);
    /* Not wired to a stream yet: its start fails, naming the source. */
    assert_int_equal(inferd_instance_start(src, &err), INFERD_ESTATE);
    assert_contains(err.message, "source s1 (test_source, plugin test_good 1.2.3): start failed");
    inferd_value *events = inferd_value_array();
    inferd_instance_set_emit(src, collect_emit, events);
    assert_int_equal(inferd_instance_start(src, &err), INFERD_OK);
    inferd_instance_destroy(src); /* stops it first */
    assert_int_equal(inferd_value_array_len(events), 2);
    assert_string_equal(inferd_value_string_or(inferd_value_array_get(events, 0), ""), "started");
    assert_string_equal(inferd_value_string_or(inferd_value_array_get(events, 1), ""), "stopped");
    inferd_value_free(events);
    inferd_registry_free(reg);
}

/* An in-memory descriptor goes through the same checks as a file. */
static inferd_status nop_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    *result = inferd_value_string(inferd_instance_name(self));
    return INFERD_OK;
}

/* File scope: the declaration macros use compound literals, which are
 * constant only outside functions. */
static const inferd_component comps[] = {INFERD_FUNCTION("mem_fn", 0, 0, NULL, NULL, nop_exec, NULL)};

static void in_memory_descriptors(void **state)
{
    static const inferd_plugin good = {INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR,
                                       sizeof(inferd_plugin), "mem", "0.1", NULL, comps, 1};
    static const inferd_plugin empty = {INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR,
                                        sizeof(inferd_plugin), "empty", "0.1", NULL, NULL, 0};
    static const inferd_plugin small = {INFERD_PLUGIN_MAGIC, INFERD_ABI_MAJOR, INFERD_ABI_MINOR,
                                        8, "small", "0.1", NULL, comps, 1};
    inferd_registry *reg = new_registry();
    inferd_error err = {0};
    assert_int_equal(inferd_registry_add(reg, &empty, "test", &err), INFERD_EINVAL);
    assert_contains(err.message, "declares no component");
    assert_int_equal(inferd_registry_add(reg, &small, "test", &err), INFERD_EINVAL);
    assert_contains(err.message, "descriptor size 8");
    assert_int_equal(inferd_registry_add(reg, NULL, "test", &err), INFERD_EINVAL);
    assert_int_equal(inferd_registry_add(reg, &good, "test", &err), INFERD_OK);
    inferd_instance *fn = NULL;
    assert_int_equal(inferd_instance_create(reg, "mem_fn", "named", NULL, &fn, &err), INFERD_OK);
    inferd_value *result = NULL;
    assert_int_equal(inferd_instance_exec(fn, NULL, 0, &result, &err), INFERD_OK);
    assert_string_equal(inferd_value_string_or(result, ""), "named");
    inferd_value_free(result);
    inferd_instance_destroy(fn);
    inferd_registry_free(reg);
}

static void host_table_is_complete(void **state)
{
    const inferd_host_api *api = inferd_host_api_get();
    assert_int_equal(api->size, sizeof(inferd_host_api));
    assert_int_equal(api->abi_major, INFERD_ABI_MAJOR);
    assert_int_equal(api->abi_minor, INFERD_ABI_MINOR);
    /* Every function slot after the header is filled. */
    const char *p = (const char *)&api->status_name;
    const char *end = (const char *)api + api->size;
    size_t n = 0;
    for (; p < end; p += sizeof(void (*)(void)), n++) {
        void (*fnp)(void);
        memcpy(&fnp, p, sizeof fnp);
        assert_non_null(fnp);
    }
    assert_true(n > 90);
    assert_true(INFERD_HOST_HAS(api, instance_emit));
    assert_true(api->value_int == inferd_value_int);
}

static void port_formats(void **state)
{
    assert_true(inferd_port_format_valid("ANY"));
    assert_true(inferd_port_format_valid("image/rgb"));
    assert_true(inferd_port_format_valid("metadata/feature-vector"));
    assert_true(inferd_port_format_valid("result/json"));
    assert_true(inferd_port_format_valid("video/x-h264"));
    assert_false(inferd_port_format_valid("image"));
    assert_false(inferd_port_format_valid("image/"));
    assert_false(inferd_port_format_valid("/rgb"));
    assert_false(inferd_port_format_valid("a/b/c"));
    assert_false(inferd_port_format_valid("1image/rgb"));
    assert_false(inferd_port_format_valid("image/r gb"));
    assert_false(inferd_port_format_valid(NULL));
    assert_string_equal(inferd_component_kind_name(INFERD_KIND_BACKEND), "backend");
    assert_string_equal(inferd_component_kind_name((inferd_component_kind)99), "invalid");
}

int main(void)
{
    plugin_dir = getenv("TEST_PLUGIN_DIR");
    if (!plugin_dir) {
        fprintf(stderr, "TEST_PLUGIN_DIR is not set (run through ctest)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_plugin_loads_and_is_listed),
        cmocka_unit_test(bad_plugins_are_refused),
        cmocka_unit_test(same_component_twice_is_refused),
        cmocka_unit_test(activation_follows_the_active_list),
        cmocka_unit_test(element_lifecycle),
        cmocka_unit_test(bad_properties_and_failing_init),
        cmocka_unit_test(function_exec_and_arity),
        cmocka_unit_test(source_start_emit_stop),
        cmocka_unit_test(in_memory_descriptors),
        cmocka_unit_test(host_table_is_complete),
        cmocka_unit_test(port_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
