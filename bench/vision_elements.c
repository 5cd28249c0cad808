/* bench/vision_elements.c: the built-in vision plugin's elements, per call.
 *
 *   build/bench/vision_elements [seconds per row, default 0.5] [FILTER]
 *
 * (FILTER: only the rows whose name contains it.)
 * Loads the built-in plugins as the daemon does (the registry with a default
 * config: <libdir>/inferd/builtin), makes a 640x480 picture in memory
 * (gradients, shapes and a little noise, so that the codecs have real work),
 * and times through inferd_instance_process, one input buffer per call with
 * the pushed buffer dropped: image_decoder on JPEG and PNG, image_resize
 * 640x480 -> 224x224 (bilinear, nearest, letterbox), image_crop, and
 * image_to_tensor on 224x224 (float32 nchw/nhwc, uint8), then the whole
 * decoder -> resize -> to_tensor chain. Prints a table.
 *
 * Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that other
 * work on a shared machine does not count, and each row reports the best of
 * five rounds (each of about a fifth of the time given): a round that
 * another process's cache traffic slowed down does not count either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/registry.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const inferd_error *err)
{
    fprintf(stderr, "vision_elements: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* The last buffer pushed, kept (the chain feeds it to the next element). */
static inferd_status keep_push(void *ctx, inferd_instance *from, size_t port, inferd_buffer *buf,
                               inferd_error *err)
{
    inferd_buffer **slot = ctx;
    inferd_buffer_unref(*slot);
    *slot = buf;
    return INFERD_OK;
}

typedef struct element {
    inferd_instance *inst;
    inferd_buffer *out;
} element;

static element make(inferd_registry *reg, const char *component, const char *json)
{
    element e = {0};
    inferd_value *props = NULL;
    inferd_error err = {0};
    if (json && inferd_value_from_json(json, strlen(json), 0, &props, &err))
        die(json, &err);
    if (inferd_instance_create(reg, component, NULL, props, &e.inst, &err))
        die(component, &err);
    inferd_value_free(props);
    return e;
}

static void process(element *e, inferd_buffer *in)
{
    inferd_error err = {0};
    inferd_instance_set_push(e->inst, keep_push, &e->out);
    if (inferd_instance_process(e->inst, &in, 1, &err))
        die("process", &err);
}

static const char *filter;

static void row(const char *what, double per_call_s, long iters)
{
    printf("| %-47s | %9.1f | %9.0f | %7ld |\n", what, per_call_s * 1e6, 1.0 / per_call_s, iters);
}

#define ROUNDS 5

/* Runs e on in for five rounds of seconds / 5 each (after a warm-up) and
 * reports the fastest round. */
static void bench(const char *what, element *e, inferd_buffer *in, double seconds)
{
    if (filter && !strstr(what, filter))
        return;
    for (int i = 0; i < 3; i++)
        process(e, in);
    double best = 0;
    long total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        long iters = 0;
        double t0 = now_s(), t;
        do {
            process(e, in);
            iters++;
            t = now_s() - t0;
        } while (t < seconds / ROUNDS);
        if (r == 0 || t / (double)iters < best)
            best = t / (double)iters;
        total += iters;
    }
    row(what, best, total);
}

static inferd_image *picture(uint32_t w, uint32_t h)
{
    inferd_image *img = NULL;
    if (inferd_image_new(INFERD_PIXEL_RGB8, w, h, &img, NULL))
        die("image", NULL);
    uint32_t seed = 12345;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = img->data + y * img->stride + x * 3;
            seed = seed * 1664525u + 1013904223u;
            int noise = (int)(seed >> 28) - 8;
            int r = 30 + (int)(x * 180 / w), g = 220 - (int)(y * 170 / h), b = 90;
            int dx = (int)x - 320, dy = (int)y - 240;
            if (dx * dx + dy * dy < 120 * 120)
                r = 230, g = 60, b = 40 + (int)(x % 64);
            if (x > 60 && x < 200 && y > 300 && y < 420)
                r = g = b = (x / 8 + y / 8) % 2 ? 250 : 20;
            const int v[3] = {r + noise, g + noise, b + noise};
            for (int c = 0; c < 3; c++)
                p[c] = (uint8_t)(v[c] < 0 ? 0 : v[c] > 255 ? 255 : v[c]);
        }
    return img;
}

static inferd_buffer *encoded(const inferd_image *img, inferd_image_codec codec, size_t *len)
{
    void *data = NULL;
    inferd_error err = {0};
    if (inferd_image_encode(img, codec, 90, &data, len, &err))
        die("encode", &err);
    inferd_buffer *buf = inferd_buffer_new();
    if (inferd_buffer_set_value(buf, inferd_image_codec_mime(codec),
                                inferd_value_bytes_take(data, *len), &err))
        die("buffer", &err);
    return buf;
}

static inferd_buffer *image_buffer(inferd_image *img)
{
    inferd_buffer *buf = inferd_buffer_new();
    inferd_error err = {0};
    if (inferd_buffer_set_image(buf, img, &err))
        die("buffer", &err);
    return buf;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    if (seconds <= 0)
        seconds = 0.5;
    filter = argc > 2 ? argv[2] : NULL;
    inferd_log_configure("warn", NULL);
    inferd_error err = {0};
    inferd_registry *reg = NULL;
    if (inferd_registry_new(&reg, &err) || inferd_registry_load_builtins(reg, &err))
        die("loading the built-in plugins", &err);
    if (!inferd_registry_find(reg, "image_decoder", NULL))
        die("the vision plugin is not in the built-in folder", NULL);

    inferd_image *pic = picture(640, 480);
    size_t jpeg_len, png_len;
    inferd_buffer *jpeg = encoded(pic, INFERD_CODEC_JPEG, &jpeg_len);
    inferd_buffer *png = encoded(pic, INFERD_CODEC_PNG, &png_len);
    inferd_buffer *rgb = image_buffer(pic);

    element dec = make(reg, "image_decoder", NULL);
    element bil = make(reg, "image_resize", "{\"resizeWidth\": 224, \"resizeHeight\": 224}");
    element nea = make(reg, "image_resize", "{\"resizeWidth\": 224, \"resizeHeight\": 224, "
                                            "\"interpolation\": \"nearest\"}");
    element box = make(reg, "image_resize", "{\"resizeWidth\": 224, \"resizeHeight\": 224, "
                                            "\"keepAspect\": true, \"padValue\": 114}");
    element crop = make(reg, "image_crop", "{\"x\": 100, \"y\": 50, \"width\": 300, "
                                           "\"height\": 300}");
    element nchw = make(reg, "image_to_tensor", "{\"mean\": \"0.485,0.456,0.406\", "
                                                "\"std\": \"0.229,0.224,0.225\"}");
    element nhwc = make(reg, "image_to_tensor", "{\"layout\": \"nhwc\"}");
    element u8 = make(reg, "image_to_tensor", "{\"dtype\": \"uint8\"}");
    element to_bgr = make(reg, "image_to_tensor", "{\"channelOrder\": \"bgr\"}");

    /* A 224x224 rgb image, as the resize makes it, for the tensor rows. */
    process(&bil, rgb);
    inferd_buffer *small = inferd_buffer_ref(bil.out);

    printf("vision elements, per call through inferd_instance_process; input 640x480 rgb\n"
           "(JPEG quality 90: %zu bytes, PNG: %zu bytes); CPU time, best of %d rounds, %.3g s per "
           "row\n\n",
           jpeg_len, png_len, ROUNDS, seconds);
    printf("| %-47s | %9s | %9s | %7s |\n", "element (input -> output)", "us/call", "calls/s",
           "calls");
    printf("|%.49s|%.11s|%.11s|%.9s|\n", "-------------------------------------------------",
           "-----------", "-----------", "---------");
    bench("image_decoder JPEG 640x480 -> rgb", &dec, jpeg, seconds);
    bench("image_decoder PNG 640x480 -> rgb", &dec, png, seconds);
    bench("image_resize 640x480 -> 224x224 bilinear", &bil, rgb, seconds);
    bench("image_resize 640x480 -> 224x224 nearest", &nea, rgb, seconds);
    bench("image_resize 640x480 -> 224x224 keepAspect", &box, rgb, seconds);
    bench("image_crop 300x300 of 640x480 (a view)", &crop, rgb, seconds);
    bench("image_to_tensor 224x224 float32 nchw mean/std", &nchw, small, seconds);
    bench("image_to_tensor 224x224 float32 nhwc", &nhwc, small, seconds);
    bench("image_to_tensor 224x224 float32 rgb->bgr", &to_bgr, small, seconds);
    bench("image_to_tensor 224x224 uint8 nchw", &u8, small, seconds);
    bench("image_to_tensor 640x480 float32 nchw", &nchw, rgb, seconds);

    /* The chain, one frame at a time. */
    const char *chain = "chain JPEG -> decode -> resize -> to_tensor";
    if (!filter || strstr(chain, filter)) {
        for (int i = 0; i < 3; i++) {
            process(&dec, jpeg);
            process(&bil, dec.out);
            process(&nchw, bil.out);
        }
        double best = 0;
        long total = 0;
        for (int r = 0; r < ROUNDS; r++) {
            long iters = 0;
            double t0 = now_s(), t;
            do {
                process(&dec, jpeg);
                process(&bil, dec.out);
                process(&nchw, bil.out);
                iters++;
                t = now_s() - t0;
            } while (t < seconds / ROUNDS);
            if (r == 0 || t / (double)iters < best)
                best = t / (double)iters;
            total += iters;
        }
        row(chain, best, total);
    }

    element *all[] = {&dec, &bil, &nea, &box, &crop, &nchw, &nhwc, &u8, &to_bgr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        inferd_buffer_unref(all[i]->out);
        inferd_instance_destroy(all[i]->inst);
    }
    inferd_buffer_unref(small);
    inferd_buffer_unref(jpeg);
    inferd_buffer_unref(png);
    inferd_buffer_unref(rgb);
    inferd_registry_free(reg);
    return 0;
}
