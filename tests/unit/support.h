/* tests/unit/support.h: what several unit tests share. Include after
 * <cmocka.h>. */
#ifndef INFERD_TEST_SUPPORT_H
#define INFERD_TEST_SUPPORT_H

#include <stdio.h>
#include <string.h>

#include "inferd/registry.h"

#define assert_contains(haystack, needle)                                                     \
    do {                                                                                      \
        if (!strstr((haystack), (needle)))                                                    \
            fail_msg("'%s' does not contain '%s'", (haystack), (needle));                     \
    } while (0)

/* A registry with the built-in plugins (the folder next to libinferd).
 * NULL (and the reason on stderr) when they cannot be loaded. */
static inline inferd_registry *support_builtins(void)
{
    inferd_registry *reg = NULL;
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_load_builtins(reg, &err) != INFERD_OK) {
        fprintf(stderr, "loading the built-in plugins: %s\n", err.message);
        inferd_registry_free(reg);
        reg = NULL;
    }
    return reg;
}

/* The pipeline's side of an element's push: keeps the last buffer, its
 * port, and how many came. */
typedef struct pushed {
    inferd_buffer *buf;
    size_t port;
    int count;
} pushed;

static inline inferd_status collect_push(void *ctx, inferd_instance *from, size_t port,
                                         inferd_buffer *buf, inferd_error *err)
{
    pushed *p = ctx;
    inferd_buffer_unref(p->buf);
    p->buf = buf;
    p->port = port;
    p->count++;
    return INFERD_OK;
}

#endif
