/* bench/plugin_call.c: the cost of calls between the host and a plugin.
 *
 *   build/bench/plugin_call [build/bench/bench_nop.so] [iterations]
 *
 * Loads a real plugin shared object and times, per call: a plain indirect
 * call (the floor), process() on an element that does nothing, process() on
 * an element that pushes its input back to the host, and exec() of a
 * function that allocates its result through the host table (against the
 * same allocation made directly). Prints a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "inferd/registry.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inferd_status drop_push(void *ctx, inferd_instance *from, size_t port, inferd_buffer *buf,
                               inferd_error *err)
{
    inferd_buffer_unref(buf);
    return INFERD_OK;
}

static inferd_status __attribute__((noinline)) plain(inferd_instance *self,
                                                     inferd_buffer *const *in, size_t n,
                                                     inferd_error *err)
{
    __asm__ volatile("" ::: "memory");
    return INFERD_OK;
}

static void row(const char *what, double ns, long iters)
{
    printf("| %-46s | %9.1f | %12.0f |\n", what, ns / (double)iters, 1e9 * (double)iters / ns);
}

static void die(const char *what, const inferd_error *err)
{
    fprintf(stderr, "plugin_call: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/bench/bench_nop.so";
    long iters = argc > 2 ? atol(argv[2]) : 10000000;
    inferd_log_configure("warn", NULL);
    inferd_error err = {0};
    inferd_registry *reg = NULL;
    if (inferd_registry_new(&reg, &err) || inferd_registry_load_file(reg, path, &err))
        die("load", &err);
    inferd_instance *nop, *push, *fn;
    if (inferd_instance_create(reg, "bench_nop", NULL, NULL, &nop, &err) ||
        inferd_instance_create(reg, "bench_push", NULL, NULL, &push, &err) ||
        inferd_instance_create(reg, "bench_int", NULL, NULL, &fn, &err))
        die("create", &err);
    inferd_instance_set_push(push, drop_push, NULL);
    inferd_buffer *buf = inferd_buffer_new();

    printf("host -> plugin calls, %ld iterations each (%s)\n\n", iters, path);
    printf("| %-46s | %9s | %12s |\n", "call", "ns/call", "calls/s");
    printf("|%.48s|%.11s|%.14s|\n", "------------------------------------------------",
           "-----------", "--------------");

    inferd_status (*volatile fp)(inferd_instance *, inferd_buffer *const *, size_t,
                                 inferd_error *) = plain;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        fp(nop, &buf, 1, &err);
    row("plain indirect call (floor)", now_ns() - t0, iters);

    t0 = now_ns();
    for (long i = 0; i < iters; i++)
        if (inferd_instance_process(nop, &buf, 1, &err) != INFERD_OK)
            die("process", &err);
    row("process() on an element that does nothing", now_ns() - t0, iters);

    t0 = now_ns();
    for (long i = 0; i < iters; i++)
        if (inferd_instance_process(push, &buf, 1, &err) != INFERD_OK)
            die("process", &err);
    row("process() + push back to the host (ref/unref)", now_ns() - t0, iters);

    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        inferd_value *v = NULL;
        if (inferd_instance_exec(fn, NULL, 0, &v, &err) != INFERD_OK)
            die("exec", &err);
        inferd_value_free(v);
    }
    row("exec() of a function returning a new int", now_ns() - t0, iters);

    t0 = now_ns();
    for (long i = 0; i < iters; i++)
        inferd_value_free(inferd_value_int(42));
    row("the same int made directly (no plugin)", now_ns() - t0, iters);

    inferd_buffer_unref(buf);
    inferd_instance_destroy(nop);
    inferd_instance_destroy(push);
    inferd_instance_destroy(fn);
    inferd_registry_free(reg);
    return 0;
}
