/* pipeline_elements.h: the elements of the built-in pipeline plugin that
 * live in their own files (object_join.c); pipeline.c declares the plugin.
 * Internal. */
#ifndef INFERD_BUILTIN_PIPELINE_ELEMENTS_H
#define INFERD_BUILTIN_PIPELINE_ELEMENTS_H

#include "inferd/plugin.h"

extern const inferd_prop_spec pipeline_join_props[];
inferd_status pipeline_join_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pipeline_join_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                    inferd_error *err);
void pipeline_join_deinit(inferd_instance *self);

#endif
