/* Unit tests: property declarations and validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "inferd/props.h"

static const char *const layouts[] = {"nchw", "nhwc", NULL};

static const inferd_prop_spec specs[] = {
    INFERD_PROP_INT("resizeHeight", "height of the output", 640, 6, 4096),
    INFERD_PROP_UINT("batch", "max batch", 1, 1, 64),
    INFERD_PROP_FLOAT("threshold", "score threshold", 0.5, 0.0, 1.0),
    INFERD_PROP_DOUBLE("scale", "any scale", 1.0, 0, 0),
    INFERD_PROP_BOOL("keepAspect", "keep the aspect ratio", false),
    INFERD_PROP_ENUM("layout", "tensor layout", "nchw", layouts),
    INFERD_PROP_STRING("modelPath", "the model", NULL), /* required */
    INFERD_PROP_STRLIST("labels", "class names", ""),
    INFERD_PROP_INT("offset", "no range declared", -3, 0, 0),
    INFERD_PROP_END,
};

/* Validates the JSON text against these specs as owner; returns the status,
 * keeps err. */
static inferd_status validate_as(const inferd_prop_spec *these, const char *owner,
                                 const char *json, inferd_props **out, inferd_error *err)
{
    inferd_value *given = NULL;
    assert_int_equal(inferd_value_from_json(json, strlen(json), 0, &given, NULL), INFERD_OK);
    inferd_props *p = NULL;
    inferd_status st = inferd_props_validate(these, owner, given, &p, err);
    inferd_value_free(given);
    if (out)
        *out = p;
    else
        inferd_props_free(p);
    return st;
}

static inferd_status validate(const char *json, inferd_props **out, inferd_error *err)
{
    return validate_as(specs, "element resize", json, out, err);
}

static void declarations_are_checked(void **state)
{
    inferd_error err;
    assert_int_equal(inferd_prop_specs_check(specs, "resize", &err), INFERD_OK);
    assert_int_equal(inferd_prop_specs_count(specs), 9);

    static const inferd_prop_spec dup[] = {INFERD_PROP_BOOL("a", "", true),
                                           INFERD_PROP_BOOL("a", "", true), INFERD_PROP_END};
    assert_int_equal(inferd_prop_specs_check(dup, "x", &err), INFERD_EEXIST);
    assert_non_null(strstr(err.message, "'a' declared twice"));

    static const inferd_prop_spec bad_default[] = {INFERD_PROP_INT("w", "", 9000, 1, 100),
                                                   INFERD_PROP_END};
    assert_int_equal(inferd_prop_specs_check(bad_default, "x", &err), INFERD_ERANGE);
    assert_non_null(strstr(err.message, "invalid default"));
    assert_non_null(strstr(err.message, "9000"));

    static const inferd_prop_spec bad_range[] = {INFERD_PROP_INT("w", "", 5, 10, 1),
                                                 INFERD_PROP_END};
    assert_int_equal(inferd_prop_specs_check(bad_range, "x", &err), INFERD_EINVAL);
    assert_non_null(strstr(err.message, "min > max"));

    static const inferd_prop_spec no_enum[] = {
        {.name = "e", .type = INFERD_PROP_TYPE_ENUM, .default_value = "a"}, INFERD_PROP_END};
    assert_int_equal(inferd_prop_specs_check(no_enum, "x", &err), INFERD_EINVAL);
    static const inferd_prop_spec no_name[] = {INFERD_PROP_BOOL("", "", true), INFERD_PROP_END};
    assert_int_equal(inferd_prop_specs_check(no_name, "x", &err), INFERD_EINVAL);
}

static void defaults_fill_in(void **state)
{
    inferd_props *p = NULL;
    inferd_error err;
    assert_int_equal(validate("{\"modelPath\": \"m.onnx\"}", &p, &err), INFERD_OK);
    assert_int_equal(inferd_props_int(p, "resizeHeight"), 640);
    assert_int_equal(inferd_props_int(p, "batch"), 1);
    assert_true(fabs(inferd_props_double(p, "threshold") - 0.5) < 1e-12);
    assert_false(inferd_props_bool(p, "keepAspect"));
    assert_string_equal(inferd_props_string(p, "layout"), "nchw");
    assert_string_equal(inferd_props_string(p, "modelPath"), "m.onnx");
    assert_int_equal(inferd_props_list_len(p, "labels"), 0);
    assert_int_equal(inferd_props_int(p, "offset"), -3);
    assert_ptr_equal(inferd_props_specs(p), specs);
    assert_null(inferd_props_get(p, "nope"));
    inferd_props_free(p);
}

static void strings_numbers_and_bools_are_accepted(void **state)
{
    inferd_props *p = NULL;
    inferd_error err;
    /* The pipeline seed writes every value as a string; JSON types work too. */
    assert_int_equal(validate("{\"modelPath\":\"m\",\"resizeHeight\":\" 320 \",\"batch\":8.0,"
                              "\"threshold\":\"0.25\",\"scale\":-2,\"keepAspect\":\"true\","
                              "\"layout\":\"nhwc\",\"labels\":\" a, b ,,c \"}", &p, &err),
                     INFERD_OK);
    assert_int_equal(inferd_props_int(p, "resizeHeight"), 320);
    assert_int_equal(inferd_props_int(p, "batch"), 8);
    assert_true(fabs(inferd_props_double(p, "threshold") - 0.25) < 1e-12);
    assert_true(fabs(inferd_props_double(p, "scale") + 2.0) < 1e-12);
    assert_true(inferd_props_bool(p, "keepAspect"));
    assert_string_equal(inferd_props_string(p, "layout"), "nhwc");
    assert_int_equal(inferd_props_list_len(p, "labels"), 3);
    assert_string_equal(inferd_props_list_at(p, "labels", 0), "a");
    assert_string_equal(inferd_props_list_at(p, "labels", 1), "b");
    assert_string_equal(inferd_props_list_at(p, "labels", 2), "c");
    assert_null(inferd_props_list_at(p, "labels", 3));

    assert_int_equal(inferd_props_set_text(p, "override", "resizeHeight", "100", &err), INFERD_OK);
    assert_int_equal(inferd_props_int(p, "resizeHeight"), 100);
    assert_int_equal(inferd_props_set_text(p, "override", "resizeHeight", "1", &err), INFERD_ERANGE);
    assert_int_equal(inferd_props_int(p, "resizeHeight"), 100); /* unchanged */
    assert_int_equal(inferd_props_set_text(p, "override", "nope", "1", &err), INFERD_ENOTFOUND);
    inferd_props_free(p);

    assert_int_equal(validate("{\"modelPath\":\"m\",\"labels\":[\"x\",\"y\"],\"keepAspect\":1}",
                              &p, &err), INFERD_OK);
    assert_int_equal(inferd_props_list_len(p, "labels"), 2);
    assert_true(inferd_props_bool(p, "keepAspect"));
    inferd_props_free(p);
}

/* Each bad input: the code, and a message with owner, property, value, allowed. */
static void bad_values_are_refused_with_a_clear_message(void **state)
{
    static const struct {
        const char *json;
        inferd_status code;
        const char *needles[3];
    } cases[] = {
        {"{\"modelPath\":\"m\",\"resizeHeight\":5000}", INFERD_ERANGE,
         {"element resize: property 'resizeHeight'", "got 5000", "int in [6, 4096]"}},
        {"{\"modelPath\":\"m\",\"resizeHeight\":\"tall\"}", INFERD_ETYPE,
         {"'resizeHeight'", "not an integer", "got \"tall\""}},
        {"{\"modelPath\":\"m\",\"resizeHeight\":6.5}", INFERD_ETYPE, {"not an integer", "6.5", ""}},
        {"{\"modelPath\":\"m\",\"batch\":-1}", INFERD_ERANGE, {"'batch'", "negative", ""}},
        {"{\"modelPath\":\"m\",\"batch\":65}", INFERD_ERANGE, {"uint in [1, 64]", "got 65", ""}},
        {"{\"modelPath\":\"m\",\"threshold\":1.5}", INFERD_ERANGE, {"float in [0, 1]", "1.5", ""}},
        {"{\"modelPath\":\"m\",\"threshold\":\"nan\"}", INFERD_ETYPE, {"not a finite number", "", ""}},
        {"{\"modelPath\":\"m\",\"scale\":1e400}", INFERD_EINVAL, {"", "", ""}}, /* JSON parse */
        {"{\"modelPath\":\"m\",\"keepAspect\":\"maybe\"}", INFERD_ETYPE, {"not a bool", "maybe", ""}},
        {"{\"modelPath\":\"m\",\"layout\":\"chw\"}", INFERD_EINVAL,
         {"unknown value", "\"chw\"", "one of nchw, nhwc"}},
        {"{\"modelPath\":\"m\",\"layout\":3}", INFERD_ETYPE, {"'layout'", "wrong type", ""}},
        {"{\"modelPath\":7}", INFERD_ETYPE, {"'modelPath'", "wrong type", "got 7"}},
        {"{\"modelPath\":\"m\",\"labels\":[1]}", INFERD_ETYPE, {"every list item must be a string", "", ""}},
        {"{\"modelPath\":\"m\",\"resizeWidth\":3}", INFERD_ENOTFOUND,
         {"unknown property 'resizeWidth'", "known: resizeHeight, batch", ""}},
        {"{}", INFERD_EINVAL, {"missing required property 'modelPath'", "", ""}},
        /* A NUL inside would make C readers see "nchw": refused, not cut. */
        {"{\"modelPath\":\"m\",\"layout\":\"nchw\\u0000x\"}", INFERD_EINVAL,
         {"'layout'", "contains a NUL character", ""}},
        {"{\"modelPath\":\"m\\u0000/etc/passwd\"}", INFERD_EINVAL,
         {"'modelPath'", "contains a NUL character", ""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        inferd_value *given = NULL;
        inferd_error err = {0};
        inferd_status st = inferd_value_from_json(cases[i].json, strlen(cases[i].json), 0, &given,
                                                  &err);
        if (st == INFERD_OK) {
            inferd_props *p = NULL;
            st = inferd_props_validate(specs, "element resize", given, &p, &err);
            assert_null(p);
        }
        inferd_value_free(given);
        if (st != cases[i].code)
            fail_msg("case %zu (%s): got %s: %s", i, cases[i].json, inferd_status_name(st),
                     err.message);
        for (int k = 0; k < 3; k++)
            if (!strstr(err.message, cases[i].needles[k]))
                fail_msg("case %zu: message '%s' lacks '%s'", i, err.message, cases[i].needles[k]);
    }
}

static void properties_must_be_an_object(void **state)
{
    inferd_value *arr = inferd_value_array();
    inferd_props *p = NULL;
    inferd_error err;
    assert_int_equal(inferd_props_validate(specs, "element x", arr, &p, &err), INFERD_ETYPE);
    assert_non_null(strstr(err.message, "must be a JSON object, got array"));
    inferd_value_free(arr);
    /* NULL means "none given": fine when nothing is required. */
    static const inferd_prop_spec optional[] = {INFERD_PROP_BOOL("b", "", true), INFERD_PROP_END};
    assert_int_equal(inferd_props_validate(optional, "x", NULL, &p, &err), INFERD_OK);
    assert_true(inferd_props_bool(p, "b"));
    inferd_props_free(p);
}

static void allowed_text(void **state)
{
    char buf[128];
    assert_string_equal(inferd_prop_spec_allowed(&specs[0], buf, sizeof buf), "int in [6, 4096]");
    assert_string_equal(inferd_prop_spec_allowed(&specs[3], buf, sizeof buf), "double");
    assert_string_equal(inferd_prop_spec_allowed(&specs[5], buf, sizeof buf), "one of nchw, nhwc");
    assert_string_equal(inferd_prop_type_name(INFERD_PROP_TYPE_STRLIST), "strlist");
}


/* ---- nested declarations, sizes and durations, every fault at once, binding ---- */

typedef struct restart_opts {
    int64_t attempts, delay_ms;
    double multiplier;
} restart_opts;

typedef struct rule_opts {
    int64_t buffer, max_bytes, timeout_ms;
    bool send_error;
    const char *mode;
    const inferd_value *restart, *profiles, *routes;
} rule_opts;

static const char *const modes[] = {"fast", "safe", NULL};

static const inferd_prop_spec restart_fields[] = {
    {.name = "attempts", .type = INFERD_PROP_TYPE_UINT, .default_value = "0", .umin = 0,
     .umax = 1000, INFERD_PROP_AT(restart_opts, attempts)},
    {.name = "delay", .type = INFERD_PROP_TYPE_DURATION, .default_value = "1s", .umin = 0,
     .umax = 3600000, INFERD_PROP_AT(restart_opts, delay_ms)},
    {.name = "multiplier", .type = INFERD_PROP_TYPE_DOUBLE, .default_value = "2", .dmin = 1,
     .dmax = 100, INFERD_PROP_AT(restart_opts, multiplier)},
    INFERD_PROP_END,
};

static const inferd_prop_spec profile_fields[] = {
    INFERD_PROP_STRING("server", "the broker", NULL),
    INFERD_PROP_INT("qos", "the QoS", 0, 0, 2),
    INFERD_PROP_END,
};

static const char *const methods[] = {"GET", "POST", NULL};
static const inferd_prop_spec route_fields[] = {
    INFERD_PROP_ENUM("method", "the method", "GET", methods),
    INFERD_PROP_STRING("path", "the path", NULL),
    INFERD_PROP_END,
};

static const inferd_prop_spec nested_specs[] = {
    {.name = "bufferLength", .type = INFERD_PROP_TYPE_UINT, .default_value = "1024", .umin = 1,
     .umax = 1000000, INFERD_PROP_AT(rule_opts, buffer)},
    {.name = "maxBytes", .type = INFERD_PROP_TYPE_SIZE, .default_value = "64M",
     INFERD_PROP_AT(rule_opts, max_bytes)},
    {.name = "timeout", .type = INFERD_PROP_TYPE_DURATION, .default_value = "30s", .umin = 1,
     .umax = 600000, INFERD_PROP_AT(rule_opts, timeout_ms)},
    {.name = "sendError", .type = INFERD_PROP_TYPE_BOOL, .default_value = "false",
     INFERD_PROP_AT(rule_opts, send_error)},
    {.name = "mode", .type = INFERD_PROP_TYPE_ENUM, .default_value = "safe", .enum_values = modes,
     INFERD_PROP_AT(rule_opts, mode)},
    {.name = "restartStrategy", .type = INFERD_PROP_TYPE_OBJECT, .fields = restart_fields,
     INFERD_PROP_AT(rule_opts, restart)},
    {.name = "profiles", .type = INFERD_PROP_TYPE_MAP, .fields = profile_fields,
     INFERD_PROP_AT(rule_opts, profiles)},
    {.name = "routes", .type = INFERD_PROP_TYPE_ARRAY, .fields = route_fields,
     INFERD_PROP_AT(rule_opts, routes)},
    INFERD_PROP_END,
};

static inferd_status validate_nested(const char *json, inferd_props **out, inferd_error *err)
{
    return validate_as(nested_specs, "rule r1: options", json, out, err);
}

static void nested_defaults_and_binding(void **state)
{
    inferd_error err = {0};
    assert_int_equal(inferd_prop_specs_check(nested_specs, "test", &err), INFERD_OK);
    inferd_props *p = NULL;
    assert_int_equal(validate_nested("{\"maxBytes\": \"2M\", \"timeout\": \"1.5s\", "
                                     "\"restartStrategy\": {\"attempts\": 3}, "
                                     "\"profiles\": {\"edge\": {\"server\": \"tcp://e:1883\"}}, "
                                     "\"routes\": [{\"path\": \"/a\"}, {\"method\": \"POST\", "
                                     "\"path\": \"/b\"}]}",
                                     &p, &err),
                     INFERD_OK);
    rule_opts o = {0};
    inferd_props_bind(p, &o);
    assert_int_equal(o.buffer, 1024);
    assert_int_equal(o.max_bytes, 2 << 20);
    assert_int_equal(o.timeout_ms, 1500);
    assert_false(o.send_error);
    assert_string_equal(o.mode, "safe");
    /* The nested object has its own defaults filled in... */
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(o.restart, "attempts"), -1), 3);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(o.restart, "delay"), -1), 1000);
    /* ...and a nested declaration binds too. */
    inferd_props *rp = NULL;
    assert_int_equal(inferd_props_validate(restart_fields, "restart", o.restart, &rp, &err),
                     INFERD_OK);
    restart_opts r = {0};
    inferd_props_bind(rp, &r);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.delay_ms, 1000);
    assert_true(r.multiplier == 2.0);
    inferd_props_free(rp);
    const inferd_value *edge = inferd_value_object_get(o.profiles, "edge");
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(edge, "server"), ""),
                        "tcp://e:1883");
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(edge, "qos"), -1), 0);
    assert_int_equal(inferd_value_array_len(o.routes), 2);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(
                            inferd_value_array_get(o.routes, 0), "method"), ""), "GET");
    /* What a user is shown back: every key, defaults in. */
    inferd_value *shown = inferd_props_to_value(p);
    assert_int_equal(inferd_value_object_len(shown), 8);
    assert_int_equal(inferd_value_int_or(inferd_value_object_get(shown, "maxBytes"), 0),
                     2 << 20);
    inferd_value_free(shown);
    inferd_props_free(p);
}

static void sizes_and_durations(void **state)
{
    static const struct {
        const char *json;
        int64_t bytes, ms;
    } ok[] = {
        {"{\"maxBytes\": 65536, \"timeout\": 250}", 65536, 250},
        {"{\"maxBytes\": \"64k\", \"timeout\": \"250ms\"}", 65536, 250},
        {"{\"maxBytes\": \"1G\", \"timeout\": \"5m\"}", 1 << 30, 300000},
        {"{\"maxBytes\": \"3MiB\", \"timeout\": \"2s\"}", 3 << 20, 2000},
        {"{\"maxBytes\": \"10 MB\", \"timeout\": \"0.5s\"}", 10 << 20, 500},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        inferd_props *p = NULL;
        inferd_error err = {0};
        assert_int_equal(validate_nested(ok[i].json, &p, &err), INFERD_OK);
        rule_opts o = {0};
        inferd_props_bind(p, &o);
        assert_int_equal(o.max_bytes, ok[i].bytes);
        assert_int_equal(o.timeout_ms, ok[i].ms);
        inferd_props_free(p);
    }
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"maxBytes\": \"lots\"}", "property 'maxBytes': not a size (got \"lots\""},
        {"{\"maxBytes\": \"1.5\"}", "property 'maxBytes': not a size"},
        {"{\"maxBytes\": -1}", "property 'maxBytes': negative"},
        {"{\"timeout\": \"10 parsecs\"}", "property 'timeout': not a duration"},
        {"{\"timeout\": \"11m\"}", "property 'timeout': out of range (got \"11m\"; allowed: a "
                                   "duration in [1, 600000] ms"},
        {"{\"timeout\": 0}", "property 'timeout': out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        inferd_error err = {0};
        assert_int_not_equal(validate_nested(bad[i].json, NULL, &err), INFERD_OK);
        if (!strstr(err.message, bad[i].needle))
            fail_msg("%s: %s", bad[i].json, err.message);
    }
}

/* Every fault of a document in one message, the path of nested ones, the
 * closest known name for a typo. */
static void every_fault_at_once(void **state)
{
    inferd_error err = {0};
    assert_int_equal(validate_nested("{\"bufferLenght\": 5, \"timeout\": \"x\", "
                                     "\"restartStrategy\": {\"attempts\": -1, \"delai\": 5}, "
                                     "\"profiles\": {\"edge\": {\"qos\": 7}}, "
                                     "\"routes\": [{\"path\": \"/a\"}, {\"method\": \"PUT\"}, 3]}",
                                     NULL, &err),
                     INFERD_ENOTFOUND); /* the first fault's code */
    const char *want[] = {
        "rule r1: options: unknown property 'bufferLenght' (did you mean 'bufferLength'?",
        "property 'timeout': not a duration",
        "property 'restartStrategy.attempts': negative",
        "unknown property 'restartStrategy.delai' (did you mean 'delay'?",
        "property 'profiles.edge.qos': out of range (got 7",
        "missing required property 'profiles.edge.server'",
        "property 'routes[1].method': unknown value (got \"PUT\"; allowed: one of GET, POST)",
        "missing required property 'routes[1].path'",
        "property 'routes[2]': not a JSON object",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(err.message, want[i]))
            fail_msg("lacks '%s': %s", want[i], err.message);
    /* No hint when nothing is close. */
    assert_int_not_equal(validate_nested("{\"zzzzzz\": 1}", NULL, &err), INFERD_OK);
    assert_null(strstr(err.message, "did you mean"));
    /* Past the room of one message, the rest are counted. */
    char big[4096] = "{";
    for (int i = 0; i < 40; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"unknown_key_%d\": 1",
                 i ? ", " : "", i);
    strcat(big, "}");
    assert_int_not_equal(validate_nested(big, NULL, &err), INFERD_OK);
    assert_non_null(strstr(err.message, " more)"));
}

static void nested_declarations_are_checked(void **state)
{
    static const inferd_prop_spec bad_field[] = {
        INFERD_PROP_INT("n", "", 5, 10, 20), /* default out of range */
        INFERD_PROP_END,
    };
    static const inferd_prop_spec outer[] = {
        {.name = "inner", .type = INFERD_PROP_TYPE_OBJECT, .fields = bad_field},
        INFERD_PROP_END,
    };
    inferd_error err = {0};
    assert_int_not_equal(inferd_prop_specs_check(outer, "test", &err), INFERD_OK);
    assert_non_null(strstr(err.message, "property 'n'"));
    static const inferd_prop_spec fields_on_int[] = {
        {.name = "x", .type = INFERD_PROP_TYPE_INT, .default_value = "1", .fields = bad_field},
        INFERD_PROP_END,
    };
    assert_int_not_equal(inferd_prop_specs_check(fields_on_int, "test", &err), INFERD_OK);
    assert_non_null(strstr(err.message, "has fields but is a int"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(declarations_are_checked),
        cmocka_unit_test(defaults_fill_in),
        cmocka_unit_test(strings_numbers_and_bools_are_accepted),
        cmocka_unit_test(bad_values_are_refused_with_a_clear_message),
        cmocka_unit_test(properties_must_be_an_object),
        cmocka_unit_test(allowed_text),
        cmocka_unit_test(nested_defaults_and_binding),
        cmocka_unit_test(sizes_and_durations),
        cmocka_unit_test(every_fault_at_once),
        cmocka_unit_test(nested_declarations_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
