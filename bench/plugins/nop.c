/* bench/plugins/nop.c: the smallest components, to measure what a call
 * from the host into a plugin (and back through the host table) costs. */
#include "inferd/plugin.h"

static const inferd_port_spec any_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};
static const inferd_port_spec any_out[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};

static inferd_status nop_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err)
{
    return INFERD_OK;
}

/* Sends the input on: one host-table call and one push back into the host. */
static inferd_status push_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err)
{
    return inferd_instance_push(self, 0, inferd_buffer_ref(in[0]), err);
}

/* Returns a new int: one allocation through the host table. */
static inferd_status int_exec(inferd_instance *self, const inferd_value *const *args, size_t n,
                              inferd_value **result, inferd_error *err)
{
    *result = inferd_value_int(42);
    return INFERD_OK;
}

INFERD_PLUGIN("bench_nop", "1.0",
              INFERD_ELEMENT("bench_nop", NULL, any_in, any_out, NULL, nop_process, NULL),
              INFERD_ELEMENT("bench_push", NULL, any_in, any_out, NULL, push_process, NULL),
              INFERD_FUNCTION("bench_int", 0, 0, NULL, NULL, int_exec, NULL))
