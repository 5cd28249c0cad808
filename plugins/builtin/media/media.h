/* media.h: the elements of the built-in "media" plugin (media.c holds its
 * descriptor): video_source, in video_source.c.
 */
#ifndef INFERD_MEDIA_H
#define INFERD_MEDIA_H

#include "inferd/plugin.h"

extern const inferd_prop_spec media_video_source_props[];
extern const inferd_port_spec media_video_source_out[];
inferd_status media_video_source_init(inferd_instance *self, const inferd_props *p,
                                      inferd_error *err);
inferd_status media_video_source_process(inferd_instance *self, inferd_buffer *const *in,
                                         size_t n, inferd_error *err);
void media_video_source_deinit(inferd_instance *self);

#endif /* INFERD_MEDIA_H */
