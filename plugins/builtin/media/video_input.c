/* video_input.c: opening, reading and decoding a video with FFmpeg, and
 * converting its frames to RGB (video_input.h).
 */
#include "video_input.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* What FFmpeg may open for us. A local file must not reach the network nor
 * other files through a playlist or a concat list; a stream gets the
 * network protocols and nothing local (a remote playlist naming file:
 * would read the daemon's files). */
#define FILE_PROTOCOLS "file"
#define NETWORK_PROTOCOLS "http,https,tcp,tls,udp,rtp,srtp,crypto,data,httpproxy"

struct video_input {
    const video_open_options *o; /* borrowed */
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;              /* what the decoder gives, moved out to the caller */
    int stream;                  /* the video stream's index */
    AVRational time_base;
    int64_t start_pts;           /* time 0 of ptsMs; AV_NOPTS_VALUE until known */
    uint64_t decoded;            /* frames given out (the time of those without pts) */
    uint64_t invalid;            /* packets refused as invalid data */
};

/* FFmpeg calls this while it blocks (about every 100 ms in a network
 * read): non-zero ends the call with AVERROR_EXIT, so that a stop never
 * waits for the network. (Silence is FFmpeg's own timeouts' business.) */
static int interrupted(void *opaque)
{
    const video_open_options *o = opaque;
    return atomic_load(o->quit) || inferd_instance_stopping(o->self);
}

/* err = "<what> <location>: <FFmpeg's reason>". Returns its code. */
static inferd_status fail(const video_input *in, int averr, const char *what, inferd_error *err)
{
    char why[AV_ERROR_MAX_STRING_SIZE];
    if (av_strerror(averr, why, sizeof why) < 0)
        snprintf(why, sizeof why, "FFmpeg error %d", averr);
    inferd_status code = averr == AVERROR_INVALIDDATA    ? INFERD_EINVAL
                         : averr == AVERROR(ETIMEDOUT) ? INFERD_ETIMEOUT
                                                       : INFERD_EIO;
    return inferd_error_set(err, code, "%s %s: %s", what, in->o->shown, why);
}

void video_input_close(video_input *in)
{
    if (!in)
        return;
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fmt); /* also frees a context that was never opened */
    av_packet_free(&in->pkt);
    av_frame_free(&in->frame);
    free(in);
}

/* The decoder of the best video stream, opened. */
static inferd_status open_decoder(video_input *in, inferd_error *err)
{
    const AVCodec *codec = NULL;
    int r = av_find_best_stream(in->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND)
        return inferd_error_set(err, INFERD_EINVAL, "%s has no video stream", in->o->shown);
    if (r < 0) {
        enum AVCodecID id = AV_CODEC_ID_NONE;
        for (unsigned i = 0; i < in->fmt->nb_streams && id == AV_CODEC_ID_NONE; i++)
            if (in->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
                id = in->fmt->streams[i]->codecpar->codec_id;
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "%s: this FFmpeg has no decoder for "
                                "its video (%s)", in->o->shown, avcodec_get_name(id));
    }
    in->stream = r;
    AVStream *st = in->fmt->streams[r];
    for (unsigned i = 0; i < in->fmt->nb_streams; i++) /* demux only the video */
        if ((int)i != r)
            in->fmt->streams[i]->discard = AVDISCARD_ALL;
    in->time_base = st->time_base;
    in->start_pts = st->start_time;
    if (!(in->dec = avcodec_alloc_context3(codec)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if ((r = avcodec_parameters_to_context(in->dec, st->codecpar)) < 0)
        return fail(in, r, "cannot decode", err);
    in->dec->thread_count = 0; /* as many as FFmpeg sees fit: a live stream must keep up */
    if ((r = avcodec_open2(in->dec, codec, NULL)) < 0)
        return fail(in, r, "cannot decode", err);
    return INFERD_OK;
}

inferd_status video_input_open(const video_open_options *o, video_input **out,
                               inferd_error *err)
{
    *out = NULL;
    video_input *in = calloc(1, sizeof *in);
    if (!in)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    in->o = o;
    in->start_pts = AV_NOPTS_VALUE;
    in->fmt = avformat_alloc_context();
    in->pkt = av_packet_alloc();
    in->frame = av_frame_alloc();
    if (!in->fmt || !in->pkt || !in->frame) {
        video_input_close(in);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    in->fmt->interrupt_callback = (AVIOInterruptCB){interrupted, (void *)o};
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", o->network ? NETWORK_PROTOCOLS : FILE_PROTOCOLS,
                0);
    if (o->network) {
        /* In microseconds, a limit on silence (a connection, a read):
         * "timeout" of tcp (connecting too), http, udp and rtsp sockets,
         * "rw_timeout" of any protocol's reads. Not on a whole call: a
         * live stream's probing may read for seconds, and must. */
        av_dict_set_int(&opts, "timeout", o->timeout_ms * 1000, 0);
        av_dict_set_int(&opts, "rw_timeout", o->timeout_ms * 1000, 0);
    }
    int r = avformat_open_input(&in->fmt, o->location, NULL, &opts);
    av_dict_free(&opts);
    inferd_status st = r < 0 ? fail(in, r, "cannot open", err) : INFERD_OK;
    if (st == INFERD_OK && (r = avformat_find_stream_info(in->fmt, NULL)) < 0)
        st = fail(in, r, "cannot read", err);
    if (st == INFERD_OK)
        st = open_decoder(in, err);
    if (st != INFERD_OK) {
        video_input_close(in);
        return st;
    }
    *out = in;
    return INFERD_OK;
}

/* The frame just received, moved into a new AVFrame, with its time. */
static inferd_status take_frame(video_input *in, AVFrame **frame, double *pts_ms,
                                inferd_error *err)
{
    AVFrame *f = av_frame_alloc();
    if (!f) {
        av_frame_unref(in->frame);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    av_frame_move_ref(f, in->frame);
    int64_t pts = f->best_effort_timestamp;
    if (pts != AV_NOPTS_VALUE) {
        if (in->start_pts == AV_NOPTS_VALUE)
            in->start_pts = pts;
        *pts_ms = (double)(pts - in->start_pts) * av_q2d(in->time_base) * 1000.0;
    } else { /* no time at all: the frame's place at the stream's rate */
        double rate = video_input_frame_rate(in);
        *pts_ms = rate > 0 ? (double)in->decoded * 1000.0 / rate : 0;
    }
    in->decoded++;
    *frame = f;
    return INFERD_OK;
}

inferd_status video_input_read(video_input *in, AVFrame **frame, double *pts_ms,
                               inferd_error *err)
{
    *frame = NULL;
    for (;;) {
        int r = avcodec_receive_frame(in->dec, in->frame);
        if (r == 0)
            return take_frame(in, frame, pts_ms, err);
        if (r == AVERROR_EOF) /* drained after the last packet: the end */
            return INFERD_OK;
        if (r != AVERROR(EAGAIN))
            return fail(in, r, "cannot decode", err);
        /* The decoder wants a packet. */
        r = av_read_frame(in->fmt, in->pkt);
        if (r == AVERROR_EOF) {
            if ((r = avcodec_send_packet(in->dec, NULL)) < 0 && r != AVERROR_EOF)
                return fail(in, r, "cannot decode", err);
            continue;
        }
        if (r < 0)
            return fail(in, r, "cannot read", err);
        r = in->pkt->stream_index == in->stream ? avcodec_send_packet(in->dec, in->pkt) : 0;
        av_packet_unref(in->pkt);
        if (r == AVERROR_INVALIDDATA) { /* a damaged packet: the next key frame recovers */
            if (in->invalid++ == 0)
                inferd_instance_log(in->o->self, INFERD_LOG_WARN, "%s: skipping packets the "
                                    "decoder refuses as invalid data", in->o->shown);
            continue;
        }
        if (r < 0)
            return fail(in, r, "cannot decode", err);
    }
}

double video_input_frame_rate(const video_input *in)
{
    AVRational r = av_guess_frame_rate(in->fmt, in->fmt->streams[in->stream], NULL);
    return r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
}

/* ---- RGB ------------------------------------------------------------------ */

/* The "J" formats are FFmpeg's old way of saying full range (JPEG, MJPEG):
 * swscale wants the plain format and the range said apart. */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full_range)
{
    static const enum AVPixelFormat j[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P},
    };
    for (size_t i = 0; i < sizeof j / sizeof j[0]; i++)
        if (f == j[i][0]) {
            *full_range = 1;
            return j[i][1];
        }
    return f;
}

inferd_status video_rgb_convert(video_rgb *c, const AVFrame *frame, inferd_image **out,
                                 inferd_error *err)
{
    *out = NULL;
    int full = frame->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = plain_format(frame->format, &full);
    int space = frame->colorspace;
    if (!c->sws || c->width != frame->width || c->height != frame->height ||
        c->format != (int)fmt || c->full_range != full || c->colorspace != space) {
        c->sws = sws_getCachedContext(c->sws, frame->width, frame->height, fmt, frame->width,
                                      frame->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL,
                                      NULL);
        if (!c->sws) {
            c->width = 0;
            const char *name = av_get_pix_fmt_name(fmt);
            return inferd_error_set(err, INFERD_EUNSUPPORTED, "cannot convert %dx%d %s frames "
                                    "to RGB", frame->width, frame->height, name ? name : "?");
        }
        /* The frame's own YUV matrix and range (BT.601 when it does not
         * say); swscale ignores this for sources that are RGB already. */
        sws_setColorspaceDetails(c->sws, sws_getCoefficients(space), full,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
        *c = (video_rgb){c->sws, frame->width, frame->height, fmt, full, space};
    }
    inferd_image *img = NULL;
    inferd_status st = inferd_image_new(INFERD_PIXEL_RGB8, (uint32_t)frame->width,
                                        (uint32_t)frame->height, &img, err);
    if (st != INFERD_OK)
        return st;
    uint8_t *dst[4] = {img->data};
    int dst_stride[4] = {(int)img->stride};
    if (sws_scale(c->sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height,
                  dst, dst_stride) < 0) {
        inferd_image_free(img);
        return inferd_error_set(err, INFERD_EIO, "cannot convert a %dx%d frame to RGB",
                                frame->width, frame->height);
    }
    *out = img;
    return INFERD_OK;
}

void video_rgb_release(video_rgb *c)
{
    sws_freeContext(c->sws);
    *c = (video_rgb){0};
}

/* ---- FFmpeg's log ---------------------------------------------------------- */

static void ffmpeg_log(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > av_log_get_level() || !inferd_log_enabled(INFERD_LOG_DEBUG, "ffmpeg"))
        return;
    char line[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* Debug: what FFmpeg says also reaches our errors (av_strerror), worded for
     * the pipeline; its own lines are for digging. */
    if (n)
        inferd_log(INFERD_LOG_DEBUG, "ffmpeg", "%s", line);
}

static void route(void) { av_log_set_callback(ffmpeg_log); }

/* The plugin is never unloaded (linked with -z nodelete), so FFmpeg may
 * keep this callback for the life of the process. */
void video_route_ffmpeg_log(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, route);
}
