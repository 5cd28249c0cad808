/* video_source.c: the video_source element of the media plugin: a producer
 * that reads a video file or a network stream (rtsp, http, https, udp, tcp)
 * with FFmpeg and pushes its frames as RGB images, each with a
 * metadata/attribute entry {source, index, ptsMs, dropped, reconnects, lost}.
 *
 * Two threads share a ring of `queueFrames` decoded frames. The reader, a
 * thread of its own, opens the video, decodes it, keeps the frames the
 * `fps` gate lets through and puts them in the ring; for a network stream
 * it reconnects, with back-off, when the stream ends or fails. The process
 * call (the engine's thread for this producer) takes them out, converts
 * them to RGB and pushes them; when the pipeline is behind, the push waits.
 * What the reader does then is `behind`: "wait" waits for room in the ring
 * (nothing is lost: a file), "drop-oldest" drops the ring's oldest frame (a
 * live stream stays live, and the drops are counted).
 *
 * Stopping: the process call polls inferd_instance_stopping and then sets
 * quit; every blocking FFmpeg call of the reader is cut short by its
 * interrupt callback (quit, stopping, or the network timeout) and its
 * back-off wait wakes on quit, so a stop never waits for the network.
 *
 * Ownership: the instance owns its vs_config (its strings are the props',
 * which live as long as the instance). A run (one process call) owns the
 * ring and the frames in it; the reader owns its video_input; a frame taken
 * out of the ring is the pusher's until it is converted and freed.
 */
#include "media.h"
#include "video_input.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libavutil/time.h>

/* How often the process call looks at inferd_instance_stopping while it
 * waits for a frame. */
#define STOP_POLL_MS 50
/* The back-off between reconnections doubles up to this. */
#define MAX_BACKOFF_MS 10000

typedef struct vs_config {
    /* The props (strings borrowed from them). */
    const char *location;
    double fps;
    const char *behind;
    int64_t queue_frames;
    bool reconnect, realtime;
    int64_t reconnect_delay_ms;
    int64_t timeout_ms;
    /* Made by init. */
    char *shown;            /* owned: location with a URL's password hidden */
    bool network;           /* a URL: reconnects, timeouts */
    bool drop_oldest;       /* behind, "auto" resolved */
} vs_config;

static const char *const behind_values[] = {"auto", "wait", "drop-oldest", NULL};

const inferd_prop_spec media_video_source_props[] = {
    {.name = "location", .type = INFERD_PROP_TYPE_STRING,
     .description = "a video file, or a stream's URL: rtsp://, http://, https://, udp://, tcp://"},
    {.name = "fps", .type = INFERD_PROP_TYPE_DOUBLE,
     .description = "take at most this many frames a second of the stream's own time (by "
                    "their presentation times); 0 takes every frame",
     .default_value = "0", .dmin = 0, .dmax = 1000},
    {.name = "behind", .type = INFERD_PROP_TYPE_ENUM,
     .description = "when the pipeline is behind: wait (nothing is lost), drop-oldest (drop "
                    "the oldest decoded frame and count it: a live stream stays live), auto "
                    "(wait for a file, drop-oldest for a stream)",
     .default_value = "auto", .enum_values = behind_values},
    {.name = "queueFrames", .type = INFERD_PROP_TYPE_UINT,
     .description = "decoded frames kept waiting for the pipeline", .default_value = "2",
     .umin = 1, .umax = 64},
    {.name = "realtime", .type = INFERD_PROP_TYPE_BOOL,
     .description = "push each frame no sooner than its time in the video after the first "
                    "(as ffmpeg's -re): a file played at its own speed, as a camera would send "
                    "it; false: as fast as the pipeline takes it",
     .default_value = "false"},
    {.name = "reconnect", .type = INFERD_PROP_TYPE_BOOL,
     .description = "a stream that ends or fails (or cannot be opened) is opened again, with "
                    "back-off from reconnectDelay doubling up to 10 s, until the pipeline stops",
     .default_value = "true"},
    {.name = "reconnectDelay", .type = INFERD_PROP_TYPE_DURATION,
     .description = "the first wait before reconnecting", .default_value = "500ms", .umin = 1,
     .umax = MAX_BACKOFF_MS},
    {.name = "timeout", .type = INFERD_PROP_TYPE_DURATION,
     .description = "a stream that cannot be opened, or sends nothing, for this long has failed",
     .default_value = "5s", .umin = 1, .umax = 3600000},
    INFERD_PROP_END,
};

const inferd_port_spec media_video_source_out[] = {INFERD_PORT_STATIC("image/rgb"),
                                                   INFERD_PORT_END};

/* ---- init ------------------------------------------------------------------ */

static const char *const network_schemes[] = {"rtsp", "http", "https", "udp", "tcp", NULL};

/* Whether location is a URL of a stream (true), a file path (false), or a
 * URL of something else (an error). */
static inferd_status is_network(const char *location, bool *network, inferd_error *err)
{
    size_t len = strspn(location, "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    *network = false;
    if (len == 0 || strncmp(location + len, "://", 3) != 0)
        return INFERD_OK; /* a path (even one with a colon in it) */
    for (const char *const *s = network_schemes; *s; s++)
        if (strlen(*s) == len && strncasecmp(location, *s, len) == 0) {
            *network = true;
            return INFERD_OK;
        }
    return inferd_error_set(err, INFERD_EINVAL, "location \"%.*s://...\": not a file path, nor "
                            "an rtsp, http, https, udp or tcp URL", (int)len, location);
}

/* location as messages, logs and metadata show it: the password of a URL
 * (rtsp://user:secret@camera/...) replaced by "***". Malloc'd. */
static char *hide_password(const char *location)
{
    const char *auth = strstr(location, "://");
    if (auth) {
        auth += 3;
        const char *at = memrchr(auth, '@', strcspn(auth, "/?#"));
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        char *shown;
        if (colon)
            return asprintf(&shown, "%.*s***%s", (int)(colon + 1 - location), location, at) < 0
                       ? NULL
                       : shown;
    }
    return strdup(location);
}

inferd_status media_video_source_init(inferd_instance *self, const inferd_props *p,
                                      inferd_error *err)
{
    vs_config *c = calloc(1, sizeof *c);
    if (!c)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    /* By name: inferd_props_bind is not in the host table. */
    *c = (vs_config){
        .location = inferd_props_string(p, "location"),
        .fps = inferd_props_double(p, "fps"),
        .behind = inferd_props_string(p, "behind"),
        .queue_frames = inferd_props_int(p, "queueFrames"),
        .reconnect = inferd_props_bool(p, "reconnect"),
        .realtime = inferd_props_bool(p, "realtime"),
        .reconnect_delay_ms = inferd_props_int(p, "reconnectDelay"),
        .timeout_ms = inferd_props_int(p, "timeout"),
    };
    inferd_status st = *c->location
                           ? is_network(c->location, &c->network, err)
                           : inferd_error_set(err, INFERD_EINVAL, "location is empty: name a "
                                              "video file or a stream's URL");
    if (st == INFERD_OK && !(c->shown = hide_password(c->location)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st != INFERD_OK) {
        free(c);
        return st;
    }
    c->drop_oldest = strcmp(c->behind, "drop-oldest") == 0 ||
                     (strcmp(c->behind, "auto") == 0 && c->network);
    video_route_ffmpeg_log();
    inferd_instance_set_state(self, c);
    return INFERD_OK;
}

void media_video_source_deinit(inferd_instance *self)
{
    vs_config *c = inferd_instance_state(self);
    if (c)
        free(c->shown);
    free(c);
}

/* ---- the run: a ring between the reader and the pusher ---------------------- */

typedef struct vs_frame {
    AVFrame *frame;
    uint64_t index;         /* in the stream as read, frames the fps gate skipped counted */
    double pts_ms;
} vs_frame;

typedef struct vs_counts {
    uint64_t dropped, reconnects, lost;
} vs_counts;

typedef struct vs_run {
    inferd_instance *self;
    const vs_config *c;
    atomic_bool quit;       /* the pusher is done: the reader ends (set under lock) */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a frame in or out, the reader done, quit */
    /* Under lock: */
    vs_frame *ring;         /* c->queue_frames slots, count of them from head */
    size_t head, count;
    bool done;              /* the reader has ended; error says why when it failed */
    inferd_error error;
    vs_counts counts;
} vs_run;

/* The absolute CLOCK_MONOTONIC time ms from now (the cond's clock). */
static struct timespec after_ms(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Puts f (taken) in the ring. When it is full, drop-oldest drops the
 * oldest frame, wait waits for room. False when the run quits. */
static bool ring_put(vs_run *r, vs_frame f)
{
    size_t cap = (size_t)r->c->queue_frames;
    pthread_mutex_lock(&r->lock);
    while (r->count == cap && !r->c->drop_oldest && !atomic_load(&r->quit))
        pthread_cond_wait(&r->changed, &r->lock);
    bool ok = !atomic_load(&r->quit);
    if (ok) {
        if (r->count == cap) {
            av_frame_free(&r->ring[r->head].frame);
            r->head = (r->head + 1) % cap;
            r->count--;
            r->counts.dropped++;
        }
        r->ring[(r->head + r->count) % cap] = f;
        r->count++;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
    if (!ok)
        av_frame_free(&f.frame);
    return ok;
}

/* Takes the oldest frame and the counters as they are now, waiting for
 * one. False at the end: the reader is done and the ring empty, or the
 * pipeline stops (what the ring holds then is not pushed). */
static bool ring_take(vs_run *r, vs_frame *f, vs_counts *counts)
{
    bool got = false;
    pthread_mutex_lock(&r->lock);
    while (!inferd_instance_stopping(r->self)) {
        if (r->count) {
            *f = r->ring[r->head];
            r->ring[r->head].frame = NULL;
            r->head = (r->head + 1) % (size_t)r->c->queue_frames;
            r->count--;
            *counts = r->counts;
            pthread_cond_broadcast(&r->changed);
            got = true;
            break;
        }
        if (r->done)
            break;
        struct timespec until = after_ms(STOP_POLL_MS);
        pthread_cond_timedwait(&r->changed, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return got;
}

/* Waits ms, or less when the run quits; false then. */
static bool pause_unless_quit(vs_run *r, int64_t ms)
{
    struct timespec until = after_ms(ms);
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->quit) &&
           pthread_cond_timedwait(&r->changed, &r->lock, &until) != ETIMEDOUT)
        ;
    bool go_on = !atomic_load(&r->quit);
    pthread_mutex_unlock(&r->lock);
    return go_on;
}

static bool quitting(const vs_run *r)
{
    return atomic_load(&r->quit) || inferd_instance_stopping(r->self);
}

/* ---- the reader ------------------------------------------------------------- */

typedef struct vs_reader {
    vs_run *r;
    video_open_options open;
    bool connected;         /* a connection has been made before: the next is a reconnection */
    uint64_t index;         /* the next frame's */
    bool gate_fresh;        /* the fps gate takes the next frame and starts its clock there */
    double due_ms;          /* the fps gate: stream time when the next frame is due */
    double rate;            /* the stream's frame rate, once known */
    int64_t last_frame_us;  /* wall clock of the last frame read */
    bool gap;               /* the stream was lost after frames: lost frames to estimate */
} vs_reader;

/* Whether the fps gate lets the frame at stream time t through: one when
 * due, the next due a period later (1 ms slack for times rounded to the
 * millisecond); a clock that jumps back (a new connection) starts over. */
static bool gate_pass(vs_reader *rd, double t)
{
    double fps = rd->r->c->fps;
    if (fps <= 0)
        return true;
    double period = 1000.0 / fps;
    if (rd->gate_fresh || t < rd->due_ms - period) {
        rd->due_ms = t;
        rd->gate_fresh = false;
    }
    if (t + 1.0 < rd->due_ms)
        return false;
    rd->due_ms += period;
    if (rd->due_ms <= t) /* a jump ahead: due a period after this one */
        rd->due_ms = t + period;
    return true;
}

/* A frame arrived: after a gap in a live stream, the frames that the
 * source sent meanwhile are lost: the wall-clock gap times its frame rate. */
static void note_arrival(vs_reader *rd)
{
    int64_t now = av_gettime_relative();
    if (rd->gap && rd->rate > 0) {
        double missed = (double)(now - rd->last_frame_us) / 1e6 * rd->rate - 1;
        if (missed >= 0.5) {
            pthread_mutex_lock(&rd->r->lock);
            rd->r->counts.lost += (uint64_t)llround(missed);
            pthread_mutex_unlock(&rd->r->lock);
        }
    }
    rd->gap = false;
    rd->last_frame_us = now;
}

/* One connection (or the file): open, then every frame into the ring until
 * the end (INFERD_OK), a failure, or quit. *had_frames: any frame came. */
static inferd_status read_stream(vs_reader *rd, bool *had_frames, inferd_error *err)
{
    vs_run *r = rd->r;
    video_input *in = NULL;
    inferd_status st = video_input_open(&rd->open, &in, err);
    if (st != INFERD_OK)
        return st;
    if (rd->connected) {
        pthread_mutex_lock(&r->lock);
        r->counts.reconnects++;
        pthread_mutex_unlock(&r->lock);
        inferd_instance_log(r->self, INFERD_LOG_INFO, "reconnected to %s", r->c->shown);
    }
    rd->connected = true;
    double rate = video_input_frame_rate(in);
    if (rate > 0)
        rd->rate = rate;
    for (;;) {
        vs_frame f = {0};
        st = video_input_read(in, &f.frame, &f.pts_ms, err);
        if (st != INFERD_OK || !f.frame)
            break;
        *had_frames = true;
        note_arrival(rd);
        f.index = rd->index++;
        if (!gate_pass(rd, f.pts_ms))
            av_frame_free(&f.frame);
        else if (!ring_put(r, f))
            break;
    }
    video_input_close(in);
    rd->gap = *had_frames;
    return st;
}

/* The reader's whole work: a file once; a stream again and again while
 * reconnect says so. Returns how it ended (INFERD_OK: the end, or quit). */
static inferd_status read_all(vs_reader *rd, inferd_error *err)
{
    vs_run *r = rd->r;
    const vs_config *c = r->c;
    int64_t delay = c->reconnect_delay_ms;
    for (;;) {
        bool had_frames = false;
        inferd_status st = read_stream(rd, &had_frames, err);
        if (quitting(r))
            return INFERD_OK;
        if (!c->network || !c->reconnect)
            return st;
        if (had_frames)
            delay = c->reconnect_delay_ms;
        inferd_instance_log(r->self, INFERD_LOG_WARN, "%s%s; reconnecting in %.1f s",
                            st == INFERD_OK ? c->shown : err->message,
                            st == INFERD_OK ? ": the stream ended" : "", (double)delay / 1000);
        if (!pause_unless_quit(r, delay))
            return INFERD_OK;
        delay = delay * 2 < MAX_BACKOFF_MS ? delay * 2 : MAX_BACKOFF_MS;
    }
}

static void *reader_main(void *arg)
{
    vs_run *r = arg;
    vs_reader rd = {
        .r = r,
        .open = {.location = r->c->location, .shown = r->c->shown, .network = r->c->network,
                 .timeout_ms = r->c->timeout_ms, .self = r->self, .quit = &r->quit},
        .gate_fresh = true,
    };
    inferd_error err = {0};
    inferd_status st = read_all(&rd, &err);
    pthread_mutex_lock(&r->lock);
    r->done = true;
    if (st != INFERD_OK)
        r->error = err;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- the pusher: the producer's process call --------------------------------- */

/* The frame's metadata/attribute entry; NULL on ENOMEM. */
static inferd_value *frame_meta(const vs_config *c, const vs_frame *f, const vs_counts *n)
{
    struct {
        const char *key;
        inferd_value *value;
    } items[] = {
        {"source", inferd_value_string(c->shown)},
        {"index", inferd_value_int((int64_t)f->index)},
        {"ptsMs", inferd_value_int(llround(f->pts_ms))},
        {"dropped", inferd_value_int((int64_t)n->dropped)},
        {"reconnects", inferd_value_int((int64_t)n->reconnects)},
        {"lost", inferd_value_int((int64_t)n->lost)},
    };
    inferd_value *meta = inferd_value_object();
    bool ok = meta != NULL;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (ok && items[i].value)
            ok = inferd_value_object_set(meta, items[i].key, items[i].value, NULL) == INFERD_OK;
        else {
            ok = false;
            inferd_value_free(items[i].value);
        }
    }
    if (!ok) {
        inferd_value_free(meta);
        return NULL;
    }
    return meta;
}

/* Converts f's frame (freed here), makes its buffer and pushes it. */
static inferd_status push_frame(vs_run *r, video_rgb *rgb, vs_frame *f, const vs_counts *counts,
                                inferd_error *err)
{
    inferd_image *img = NULL;
    inferd_status st = video_rgb_convert(rgb, f->frame, &img, err);
    av_frame_free(&f->frame);
    if (st != INFERD_OK)
        return st;
    inferd_buffer *b = inferd_buffer_new();
    if (!b) {
        inferd_image_free(img);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    /* The engine numbers the frame; its timestamp is the frame's own time. */
    inferd_buffer_set_frame(b, 0, 0, llround(f->pts_ms * 1e6));
    st = inferd_buffer_set_image(b, img, err);
    if (st == INFERD_OK) {
        inferd_value *meta = frame_meta(r->c, f, counts);
        st = meta ? inferd_buffer_add_meta_value(b, inferd_instance_name(r->self),
                                                 "metadata/attribute", meta, err)
                  : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if (st != INFERD_OK) {
        inferd_buffer_unref(b);
        return st;
    }
    return inferd_instance_push(r->self, 0, b, err);
}

static void run_free(vs_run *r)
{
    for (size_t i = 0; r->ring && i < r->count; i++)
        av_frame_free(&r->ring[(r->head + i) % (size_t)r->c->queue_frames].frame);
    free(r->ring);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
}

/* The producer's one call: the reader decodes, this thread pushes, until
 * the video ends, fails, or the pipeline stops. */
inferd_status media_video_source_process(inferd_instance *self, inferd_buffer *const *in,
                                         size_t n, inferd_error *err)
{
    vs_run r = {.self = self, .c = inferd_instance_state(self)};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.changed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_t reader;
    if (!(r.ring = calloc((size_t)r.c->queue_frames, sizeof *r.ring)) ||
        pthread_create(&reader, NULL, reader_main, &r) != 0) {
        run_free(&r);
        return inferd_error_set(err, INFERD_ENOMEM, "cannot start the reader of %s", r.c->shown);
    }
    video_rgb rgb = {0};
    vs_frame f;
    vs_counts counts;
    inferd_status st = INFERD_OK;
    double first_pts = 0, t0_ms = 0;
    bool started = false;
    while (st == INFERD_OK && ring_take(&r, &f, &counts)) {
        if (r.c->realtime) { /* not before its time: the first frame's wall clock + its pts */
            if (!started) {
                first_pts = f.pts_ms;
                t0_ms = (double)av_gettime_relative() / 1e3;
                started = true;
            }
            double due = t0_ms + (f.pts_ms - first_pts), now;
            while (!inferd_instance_stopping(self) &&
                   (now = (double)av_gettime_relative() / 1e3) < due)
                av_usleep((unsigned)(fmin(due - now, STOP_POLL_MS) * 1000));
        }
        st = push_frame(&r, &rgb, &f, &counts, err);
    }
    pthread_mutex_lock(&r.lock);
    atomic_store(&r.quit, true);
    pthread_cond_broadcast(&r.changed);
    pthread_mutex_unlock(&r.lock);
    pthread_join(reader, NULL);
    video_rgb_release(&rgb);
    /* The reader's failure is the stream's, unless the pipeline stopped it. */
    if (st == INFERD_OK && r.error.code != INFERD_OK && !inferd_instance_stopping(self))
        st = inferd_error_set(err, r.error.code, "%s", r.error.message);
    run_free(&r);
    return st;
}
