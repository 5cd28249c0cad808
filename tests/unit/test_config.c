/* Unit tests: the config loader (defaults, file, INFERD_* variables, overrides). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd/config.h"

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/inferd-config-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Writes text to DIR/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *const no_env[] = {"PATH=/bin", NULL};

static void defaults(void **state)
{
    inferd_config *cfg = NULL;
    inferd_error err;
    assert_int_equal(inferd_config_load(NULL, no_env, &cfg, &err), INFERD_OK);
    assert_string_equal(inferd_config_string(cfg, "listen"), "127.0.0.1:8080");
    assert_string_equal(inferd_config_string(cfg, "log.format"), "text");
    assert_string_equal(inferd_config_source(cfg, "listen"), "default");
    const inferd_value *v = NULL;
    assert_int_equal(inferd_config_get(cfg, "log.level", &v, &err), INFERD_OK);
    assert_string_equal(inferd_value_string_or(v, ""), "info");
    inferd_config_free(cfg);
}

static void file_then_env_then_flag(void **state)
{
    const char *path = write_file("a.json", "{\"listen\": \"0.0.0.0:9000\", "
                                            "\"log\": {\"level\": \"debug\"}, "
                                            "\"http.threads\": \"4\"}");
    char *const env[] = {"INFERD_LOG_FORMAT=json", "INFERD_LISTEN=127.0.0.1:7000",
                         "INFERD_CONFIG=ignored-here", "HOME=/root", NULL};
    inferd_config *cfg = NULL;
    inferd_error err;
    assert_int_equal(inferd_config_load(path, env, &cfg, &err), INFERD_OK);
    assert_string_equal(inferd_config_string(cfg, "log.level"), "debug");
    assert_int_equal(inferd_config_int(cfg, "http.threads"), 4);
    assert_string_equal(inferd_config_string(cfg, "log.format"), "json");
    assert_string_equal(inferd_config_string(cfg, "listen"), "127.0.0.1:7000");
    assert_string_equal(inferd_config_source(cfg, "listen"), "env INFERD_LISTEN");
    char expect[200];
    snprintf(expect, sizeof expect, "file %s", path);
    assert_string_equal(inferd_config_source(cfg, "log.level"), expect);
    assert_string_equal(inferd_config_source(cfg, "http.shutdown_timeout_ms"), "default");

    assert_int_equal(inferd_config_set(cfg, "listen", ":1234", "--listen", &err), INFERD_OK);
    assert_string_equal(inferd_config_string(cfg, "listen"), ":1234");
    assert_string_equal(inferd_config_source(cfg, "listen"), "--listen");

    inferd_value *all = inferd_config_to_value(cfg);
    assert_string_equal(
        inferd_value_string_or(inferd_value_object_path(all, "log.format"), ""), "json");
    assert_int_equal(inferd_value_int_or(inferd_value_object_path(all, "http.threads"), -1), 4);
    inferd_value_free(all);
    inferd_config_free(cfg);
}

static void env_names(void **state)
{
    char buf[64];
    assert_string_equal(inferd_config_env_name("log.level", buf, sizeof buf), "INFERD_LOG_LEVEL");
    assert_string_equal(inferd_config_env_name("http.shutdown_timeout_ms", buf, sizeof buf),
                        "INFERD_HTTP_SHUTDOWN_TIMEOUT_MS");
    assert_string_equal(inferd_config_env_name("listen", buf, 10), "INFERD_LI");
}

/* Each bad input, the code it gets and what its message must say. */
static void bad_configs_are_refused(void **state)
{
    static const struct {
        const char *file;     /* NULL: no file */
        const char *env;      /* NULL: none */
        inferd_status code;
        const char *needle1, *needle2;
    } cases[] = {
        {"{\"listen\": \"x\", ", NULL, INFERD_EINVAL, "bad.json", "line"},
        {"[1, 2]", NULL, INFERD_ETYPE, "bad.json", "must hold a JSON object"},
        {"{\"lisen\": \"a:1\"}", NULL, INFERD_ENOTFOUND, "unknown property 'lisen'", "bad.json"},
        {"{\"log\": {\"colour\": true}}", NULL, INFERD_ENOTFOUND, "'log.colour'", "known under 'log.': log.level, log.format"},
        {"{\"http\": {\"threads\": -2}}", NULL, INFERD_ERANGE, "'http.threads'", "negative"},
        {"{\"http.threads\": 5000}", NULL, INFERD_ERANGE, "uint in [0, 1024]", "5000"},
        {"{\"log.format\": \"xml\"}", NULL, INFERD_EINVAL, "one of text, json", "\"xml\""},
        {"{\"listen\": 8080}", NULL, INFERD_ETYPE, "'listen'", "wrong type"},
        {NULL, "INFERD_LISTN=1.2.3.4:5", INFERD_ENOTFOUND, "INFERD_LISTN", "no such config key"},
        {NULL, "INFERD_HTTP_THREADS=many", INFERD_ETYPE, "INFERD_HTTP_THREADS", "not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = cases[i].file ? write_file("bad.json", cases[i].file) : NULL;
        char *env[] = {(char *)cases[i].env, NULL};
        inferd_config *cfg = NULL;
        inferd_error err = {0};
        inferd_status st = inferd_config_load(path, env, &cfg, &err);
        assert_null(cfg);
        if (st != cases[i].code)
            fail_msg("case %zu: got %s: %s", i, inferd_status_name(st), err.message);
        if (!strstr(err.message, cases[i].needle1) || !strstr(err.message, cases[i].needle2))
            fail_msg("case %zu: message '%s' lacks '%s' or '%s'", i, err.message,
                     cases[i].needle1, cases[i].needle2);
    }
}

/* The CLI clients' variables are not config keys, and a shell that runs
 * clients and the daemon may have them set: the daemon starts. */
static void client_variables_are_not_keys(void **state)
{
    char *env[] = {"INFERD_URL=https://h:8080", "INFERD_TOKEN=t", "INFERD_CACERT=/ca.pem",
                   "INFERD_CLIENT_CERT=/c.pem", "INFERD_CLIENT_KEY=/c.key", "INFERD_LOG_LEVEL=warn",
                   NULL};
    inferd_config *cfg = NULL;
    inferd_error err = {0};
    assert_int_equal(inferd_config_load(NULL, env, &cfg, &err), INFERD_OK);
    assert_string_equal(inferd_config_string(cfg, "log.level"), "warn");
    inferd_config_free(cfg);
}

static void missing_file_and_unknown_key(void **state)
{
    inferd_config *cfg = NULL;
    inferd_error err;
    assert_int_equal(inferd_config_load("/nonexistent/inferd.json", no_env, &cfg, &err),
                     INFERD_EIO);
    assert_non_null(strstr(err.message, "/nonexistent/inferd.json"));
    assert_non_null(strstr(err.message, "No such file"));

    assert_int_equal(inferd_config_load(NULL, no_env, &cfg, &err), INFERD_OK);
    const inferd_value *v = NULL;
    assert_int_equal(inferd_config_get(cfg, "does.not.exist", &v, &err), INFERD_ENOTFOUND);
    assert_non_null(strstr(err.message, "unknown config key 'does.not.exist'"));
    assert_int_equal(inferd_config_set(cfg, "nope", "1", "--nope", &err), INFERD_ENOTFOUND);
    assert_int_equal(inferd_config_set(cfg, "http.threads", "-1", "--threads", &err),
                     INFERD_ERANGE);
    assert_int_equal(inferd_config_int(cfg, "http.threads"), 0); /* unchanged */
    assert_null(inferd_config_source(cfg, "nope"));
    inferd_config_free(cfg);
}

static void every_key_is_declared_well(void **state)
{
    inferd_error err;
    assert_int_equal(inferd_prop_specs_check(inferd_config_keys(), "config", &err), INFERD_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(file_then_env_then_flag),
        cmocka_unit_test(env_names),
        cmocka_unit_test(bad_configs_are_refused),
        cmocka_unit_test(client_variables_are_not_keys),
        cmocka_unit_test(missing_file_and_unknown_key),
        cmocka_unit_test(every_key_is_declared_well),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
