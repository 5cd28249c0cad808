/* media.c: the built-in "media" plugin: elements that read audio-visual
 * media with FFmpeg's libraries. Today one: video_source (video_source.c),
 * a producer that decodes a video file or a network stream into frames.
 */
#include "media.h"

INFERD_PLUGIN("media", "1.0.0",
              INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = "video_source",
                               .description = "decodes a video file or a network stream "
                                              "(RTSP, HTTP, UDP, TCP) into RGB frames, "
                                              "reconnecting to a stream that ends or fails",
                               .props = media_video_source_props,
                               .outputs = media_video_source_out,
                               .flags = INFERD_COMPONENT_PRODUCER,
                               .ops = INFERD_ELEMENT_OPS(media_video_source_init,
                                                         media_video_source_process,
                                                         media_video_source_deinit)))
