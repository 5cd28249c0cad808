/* tests/plugins/crasher.c: a C plugin that crashes on request, for
 * plugins.isolated (tests/integration/test_plugin_isolation.sh).
 *
 * crash(what): "segv" dereferences NULL, "abort" aborts, "spin" never
 * returns; anything else answers {"pid": its process, "echo": what}.
 * bytes(b): answers b reversed (bytes in and out of the worker). */
#include <inferd/plugin.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inferd_status crash_exec(inferd_instance *self, const inferd_value *const *args,
                                size_t n, inferd_value **result, inferd_error *err)
{
    const char *what = inferd_value_string_or(args[0], "");
    if (strcmp(what, "segv") == 0) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    }
    if (strcmp(what, "abort") == 0)
        abort();
    while (strcmp(what, "spin") == 0)
        pause();
    if (strcmp(what, "fail") == 0)
        return inferd_error_set(err, INFERD_EPLUGIN, "asked to fail");
    inferd_value *o = inferd_value_object();
    if (!o || inferd_value_object_set(o, "pid", inferd_value_int(getpid()), err) != INFERD_OK ||
        inferd_value_object_set(o, "echo", inferd_value_string(what), err) != INFERD_OK) {
        inferd_value_free(o);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    *result = o;
    return INFERD_OK;
}

static inferd_status bytes_exec(inferd_instance *self, const inferd_value *const *args,
                                size_t n, inferd_value **result, inferd_error *err)
{
    const void *data = NULL;
    size_t len = 0;
    if (inferd_value_get_bytes(args[0], &data, &len, err) != INFERD_OK)
        return INFERD_EINVAL;
    unsigned char *rev = malloc(len ? len : 1);
    if (!rev)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++)
        rev[i] = ((const unsigned char *)data)[len - 1 - i];
    *result = inferd_value_bytes_take(rev, len);
    return *result ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

INFERD_PLUGIN("crasher", "1.0.0",
              INFERD_FUNCTION("crash", 1, 1, NULL, NULL, crash_exec, NULL),
              INFERD_FUNCTION("bytes", 1, 1, NULL, NULL, bytes_exec, NULL));
