/* Unit tests: status/error helpers and logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"
#include "inferd/status.h"
#include "inferd/value.h"

/* A capturing sink: keeps the lines written. */
typedef struct capture {
    pthread_mutex_t lock;
    char text[1 << 16];
    size_t len;
    int lines;
} capture;

static void capture_sink(void *ctx, inferd_log_level level, const char *line, size_t len)
{
    capture *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    c->lines++;
    pthread_mutex_unlock(&c->lock);
}

static capture cap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int setup(void **state)
{
    cap.len = 0;
    cap.lines = 0;
    cap.text[0] = '\0';
    inferd_log_set_sink(capture_sink, &cap);
    inferd_log_set_format(INFERD_LOG_TEXT);
    assert_int_equal(inferd_log_configure("info", NULL), INFERD_OK);
    return 0;
}

static int teardown(void **state)
{
    inferd_log_set_sink(NULL, NULL);
    return 0;
}

static void error_set_and_prefix(void **state)
{
    inferd_error err = {0};
    assert_int_equal(inferd_error_set(&err, INFERD_ERANGE, "value %d too big", 7), INFERD_ERANGE);
    assert_int_equal(err.code, INFERD_ERANGE);
    assert_string_equal(err.message, "value 7 too big");
    assert_int_equal(inferd_error_prefix(&err, "file %s", "a.json"), INFERD_ERANGE);
    assert_string_equal(err.message, "file a.json: value 7 too big");
    inferd_error_clear(&err);
    assert_int_equal(err.code, INFERD_OK);
    assert_string_equal(err.message, "");
    /* A NULL error is allowed everywhere and the code still comes back. */
    assert_int_equal(inferd_error_set(NULL, INFERD_EIO, "x"), INFERD_EIO);
}

static void error_truncates_long_messages(void **state)
{
    char big[INFERD_ERROR_MESSAGE_MAX * 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    inferd_error err;
    inferd_error_set(&err, INFERD_EINVAL, "%s", big);
    assert_int_equal(strlen(err.message), INFERD_ERROR_MESSAGE_MAX - 1);
    inferd_error_prefix(&err, "p");
    assert_int_equal(strlen(err.message), INFERD_ERROR_MESSAGE_MAX - 1);
    assert_memory_equal(err.message, "p: aaa", 6);
}

static void status_names(void **state)
{
    assert_string_equal(inferd_status_name(INFERD_OK), "ok");
    assert_string_equal(inferd_status_name(INFERD_EINVAL), "invalid");
    assert_string_equal(inferd_status_name(INFERD_ENOTFOUND), "not_found");
    assert_string_equal(inferd_status_name((inferd_status)999), "unknown");
    for (int c = INFERD_OK; c <= INFERD_EINTERNAL; c++)
        assert_string_not_equal(inferd_status_name((inferd_status)c), "unknown");
}

static void levels_filter_lines(void **state)
{
    inferd_log_info("core", "hello %d", 1);
    inferd_log_debug("core", "hidden");
    assert_int_equal(cap.lines, 1);
    assert_non_null(strstr(cap.text, "INFO  [core] hello 1\n"));
    assert_null(strstr(cap.text, "hidden"));
    assert_true(inferd_log_enabled(INFERD_LOG_WARN, "core"));
    assert_false(inferd_log_enabled(INFERD_LOG_DEBUG, "core"));
}

static void per_component_levels(void **state)
{
    inferd_error err;
    assert_int_equal(inferd_log_configure("warn, http=debug ,onnx=off", &err), INFERD_OK);
    inferd_log_info("core", "core-info");
    inferd_log_debug("http", "http-debug");
    inferd_log_error("onnx", "onnx-error");
    inferd_log_warn("other", "other-warn");
    assert_null(strstr(cap.text, "core-info"));
    assert_non_null(strstr(cap.text, "[http] http-debug"));
    assert_null(strstr(cap.text, "onnx-error"));
    assert_non_null(strstr(cap.text, "[other] other-warn"));
    assert_int_equal(cap.lines, 2);
}

static void bad_specs_change_nothing(void **state)
{
    inferd_error err;
    assert_int_equal(inferd_log_configure("verbose", &err), INFERD_EINVAL);
    assert_non_null(strstr(err.message, "unknown log level 'verbose'"));
    assert_int_equal(inferd_log_configure("debug,http=loud", &err), INFERD_EINVAL);
    assert_non_null(strstr(err.message, "component 'http'"));
    assert_non_null(strstr(err.message, "'loud'"));
    assert_int_equal(inferd_log_configure("debug,=info", &err), INFERD_EINVAL);
    /* Still at info from setup: the failed specs were not half-applied. */
    assert_false(inferd_log_enabled(INFERD_LOG_DEBUG, "core"));
    assert_true(inferd_log_enabled(INFERD_LOG_INFO, "http"));
}

static void json_lines_are_valid_json(void **state)
{
    inferd_log_set_format(INFERD_LOG_JSON);
    inferd_log_warn("plug\"in", "quote \" backslash \\ newline \n tab \t end");
    inferd_log_set_format(INFERD_LOG_TEXT);
    assert_int_equal(cap.lines, 1);
    assert_true(cap.len > 0 && cap.text[cap.len - 1] == '\n');
    inferd_value *v = NULL;
    inferd_error err;
    assert_int_equal(inferd_value_from_json(cap.text, cap.len, 0, &v, &err), INFERD_OK);
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(v, "level"), ""), "warn");
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(v, "component"), ""),
                        "plug\"in");
    assert_string_equal(inferd_value_string_or(inferd_value_object_get(v, "msg"), ""),
                        "quote \" backslash \\ newline \n tab \t end");
    assert_non_null(inferd_value_object_get(v, "time"));
    inferd_value_free(v);
}

static void level_names_round_trip(void **state)
{
    for (int l = INFERD_LOG_TRACE; l <= INFERD_LOG_OFF; l++) {
        inferd_log_level out;
        assert_int_equal(inferd_log_level_parse(inferd_log_level_name((inferd_log_level)l), &out,
                                                NULL), INFERD_OK);
        assert_int_equal(out, l);
    }
    inferd_log_level out;
    assert_int_equal(inferd_log_level_parse("WARNING", &out, NULL), INFERD_OK);
    assert_int_equal(out, INFERD_LOG_WARN);
}

static void *log_many(void *arg)
{
    for (int i = 0; i < 200; i++)
        inferd_log_info("thread", "line %d from %s", i, (const char *)arg);
    return NULL;
}

static void lines_do_not_interleave(void **state)
{
    pthread_t t[4];
    const char *names[4] = {"A", "B", "C", "D"};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, log_many, (void *)names[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cap.lines, 800);
    /* Every line is whole: it starts with a timestamp and ends where the next begins. */
    int count = 0;
    for (char *line = cap.text; *line; count++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_non_null(strstr(line, "[thread] line "));
        assert_true(strstr(line, "[thread] line ") < nl);
        line = nl + 1;
    }
    assert_int_equal(count, 800);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_set_and_prefix),
        cmocka_unit_test(error_truncates_long_messages),
        cmocka_unit_test(status_names),
        cmocka_unit_test_setup_teardown(levels_filter_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(per_component_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_specs_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(json_lines_are_valid_json, setup, teardown),
        cmocka_unit_test(level_names_round_trip),
        cmocka_unit_test_setup_teardown(lines_do_not_interleave, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
