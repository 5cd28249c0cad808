/* video_input.h: one video, a file or a network stream, opened and decoded
 * with FFmpeg's libraries (libavformat, libavcodec), and its frames made
 * into RGB images (libswscale): the media plugin's FFmpeg side.
 *
 * A video_input is used by one thread at a time. Every blocking FFmpeg call
 * it makes ends soon once the pipeline stops (or quit is set), through
 * FFmpeg's interrupt callback; a network stream's silence ends one after
 * its timeout.
 */
#ifndef INFERD_MEDIA_VIDEO_INPUT_H
#define INFERD_MEDIA_VIDEO_INPUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libavutil/frame.h>

#include "inferd/plugin.h"

typedef struct video_input video_input;

typedef struct video_open_options {
    const char *location;  /* a path, or a URL (borrowed) */
    const char *shown;     /* location as messages name it (a password hidden) */
    bool network;          /* a URL: the timeout applies, network protocols allowed */
    int64_t timeout_ms;    /* network only: connecting or reading gives up after this much
                              silence */
    /* Any blocking call returns soon once this instance stops or *quit is set. */
    const inferd_instance *self;
    const atomic_bool *quit;
} video_open_options;

/* Opens o->location and its best video stream's decoder. o must outlive
 * the input. On failure err says why, naming o->shown and FFmpeg's reason:
 * EINVAL for what is not a decodable video, EIO for what cannot be read. */
inferd_status video_input_open(const video_open_options *o, video_input **out,
                               inferd_error *err);
void video_input_close(video_input *in);

/* The next decoded frame (a new reference: the caller frees it with
 * av_frame_free) and its presentation time in ms from the stream's start;
 * *frame NULL at the end of the stream. Packets the decoder refuses as
 * invalid data are skipped (a warning for the first), as FFmpeg's tools do. */
inferd_status video_input_read(video_input *in, AVFrame **frame, double *pts_ms,
                               inferd_error *err);

/* The stream's frame rate (frames a second), or 0 when it does not say. */
double video_input_frame_rate(const video_input *in);

/* Converts frames to RGB, reusing its swscale context while the frames'
 * size and format stay the same. Zero-initialise; free with
 * video_rgb_release. Owned by the one thread that converts. */
typedef struct video_rgb {
    struct SwsContext *sws;
    int width, height, format, full_range, colorspace; /* what sws was made for */
} video_rgb;

/* A new RGB8 image (the caller's) of frame. */
inferd_status video_rgb_convert(video_rgb *c, const AVFrame *frame, inferd_image **out,
                                inferd_error *err);
void video_rgb_release(video_rgb *c);

/* Routes FFmpeg's own log lines into inferd's log (debug level, component
 * "ffmpeg") instead of the daemon's standard error: a JSON log stays JSON.
 * Idempotent. */
void video_route_ffmpeg_log(void);

#endif /* INFERD_MEDIA_VIDEO_INPUT_H */
