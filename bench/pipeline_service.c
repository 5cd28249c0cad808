/* pipeline_service: what running a pipeline as a service costs, in two
 * tables.
 *
 *   pipeline_service video VIDEO MODEL ROUNDS
 *   pipeline_service http BASE IMAGE MODEL SECONDS
 *
 * video: a video file through video_source -> image_to_tensor ->
 * tensor_infer(MODEL) -> density_count -> overlay -> image_encoder(jpeg),
 * run by the pipeline engine (a thread per element, bounded queues, the
 * hand-over checks) against the plain loop of the same work: the same
 * element instances called one after the other on one thread (each one's
 * push calls the next one's process), nothing of the engine. ROUNDS rounds
 * alternate the two over the whole file; medians of frames/s and the ratio
 * (engine / plain: the engine can pass 1.0, its elements overlapping on
 * several cores).
 *
 * http: the frame API's overhead per frame. The pipeline appsrc ->
 * image_decoder -> image_to_tensor -> tensor_infer(MODEL) -> density_count
 * -> json_serialize -> appsink, one frame in flight, in this process
 * (inferd_pipeline_push, then pull) against the same document created in a
 * running daemon at BASE and fed POST /v1/pipelines/bench/frames (libcurl,
 * one kept-alive connection); the two alternate for SECONDS each; medians
 * and p90 of the round trip, the difference and the ratio. Both must give
 * the same count for IMAGE.
 *
 * Exit status 0, or 2 on an error (said on stderr).
 */
#define BENCH_NAME "pipeline_service"
#include "bench_args.h"

#include <curl/curl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "inferd/buffer.h"
#include "inferd/image.h"
#include "inferd/log.h"
#include "inferd/pipeline.h"
#include "inferd/registry.h"

/* ---- samples ---------------------------------------------------------------- */

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void add(samples *s, double x)
{
    if (s->n == s->cap) {
        double *v = realloc(s->v, (s->cap = s->cap ? 2 * s->cap : 256) * sizeof *v);
        if (!v)
            exit(die("samples", "out of memory"));
        s->v = v;
    }
    s->v[s->n++] = x;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(samples *s, double q)
{
    qsort(s->v, s->n, sizeof *s->v, by_value);
    return s->n ? s->v[(size_t)(q * (double)(s->n - 1) + 0.5)] : NAN;
}

/* ---- the elements ----------------------------------------------------------------------- */

typedef struct stage {
    const char *name, *factory, *props; /* props: JSON */
} stage;

static int video_stages(const char *video, const char *model, stage *st, char *buf,
                        size_t size)
{
    snprintf(buf, size, "{\"location\": \"%s\"}", video);
    st[0] = (stage){"src", "video_source", buf};
    st[1] = (stage){"tensor", "image_to_tensor", "{}"};
    static char infer[4200];
    snprintf(infer, sizeof infer, "{\"modelPath\": \"%s\"}", model);
    st[2] = (stage){"infer", "tensor_infer", infer};
    st[3] = (stage){"count", "density_count", "{}"};
    st[4] = (stage){"draw", "overlay", "{}"};
    st[5] = (stage){"jpeg", "image_encoder", "{\"quality\": 85}"};
    return 6;
}

/* The pipeline document of stages, with an appsink at the end (and an
 * appsrc first when the first stage is not a producer). malloc'd. */
static char *document(const stage *st, int n, bool appsrc)
{
    size_t cap = 16384, len = 0;
    char *d = malloc(cap);
    if (!d)
        return NULL;
    len += (size_t)snprintf(d + len, cap - len, "{\"bench\": {");
    if (appsrc)
        len += (size_t)snprintf(d + len, cap - len,
                                "\"in\": {\"factory\": \"appsrc\", \"next\": \"%s\"}, ",
                                st[0].name);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(d + len, cap - len,
                                "\"%s\": {\"factory\": \"%s\", \"props\": %s, \"next\": \"%s\"}, ",
                                st[i].name, st[i].factory, st[i].props,
                                i + 1 < n ? st[i + 1].name : "out");
    snprintf(d + len, cap - len, "\"out\": {\"factory\": \"appsink\"}}}");
    return d;
}

/* ---- video: the engine against the plain chain ---------------------------------------------- */

typedef struct link {
    inferd_instance *next; /* NULL: the end of the chain */
    uint64_t *frames;
} link;

/* The plain chain: each element's push runs the next element right here. */
static inferd_status chain_push(void *ctx, inferd_instance *from, size_t port, inferd_buffer *buf,
                                inferd_error *err)
{
    (void)from, (void)port;
    link *l = ctx;
    inferd_status st = INFERD_OK;
    if (inferd_buffer_error(buf))
        st = inferd_error_set(err, INFERD_EIO, "frame error: %s", inferd_buffer_error(buf)->message);
    else if (l->next)
        st = inferd_instance_process(l->next, &buf, 1, err);
    else
        (*l->frames)++;
    inferd_buffer_unref(buf);
    return st;
}

static int plain_run(inferd_registry *reg, const stage *st, int n, double *fps, uint64_t *frames)
{
    inferd_instance *inst[8] = {0};
    link links[8];
    inferd_error err = {0};
    int rc = 0;
    *frames = 0;
    for (int i = 0; i < n && !rc; i++) {
        inferd_value *props = NULL;
        if (inferd_value_from_json(st[i].props, strlen(st[i].props), 0, &props, &err) ||
            inferd_instance_create(reg, st[i].factory, st[i].name, props, &inst[i], &err))
            rc = die(st[i].name, err.message);
        inferd_value_free(props);
    }
    for (int i = 0; i < n && !rc; i++) {
        links[i] = (link){i + 1 < n ? inst[i + 1] : NULL, frames};
        inferd_instance_set_push(inst[i], chain_push, &links[i]);
    }
    double t0 = now_s();
    if (!rc && inferd_instance_process(inst[0], NULL, 0, &err) != INFERD_OK)
        rc = die("plain chain", err.message);
    *fps = (double)*frames / (now_s() - t0);
    for (int i = 0; i < n; i++)
        inferd_instance_destroy(inst[i]);
    return rc;
}

static int engine_run(inferd_registry *reg, const char *doc, double *fps, uint64_t *frames)
{
    inferd_pipeline *p = NULL;
    inferd_error err = {0};
    if (inferd_pipeline_new(reg, doc, strlen(doc), "bench", &p, &err) != INFERD_OK)
        return die("pipeline", err.message);
    *frames = 0;
    double t0 = now_s();
    int rc = 0;
    if (inferd_pipeline_start(p, &err) != INFERD_OK)
        rc = die("pipeline start", err.message);
    inferd_buffer *r = NULL;
    while (!rc && inferd_pipeline_pull(p, NULL, -1, &r, &err) == INFERD_OK && r) {
        if (inferd_buffer_error(r))
            rc = die("pipeline frame", inferd_buffer_error(r)->message);
        (*frames)++;
        inferd_buffer_unref(r);
    }
    *fps = (double)*frames / (now_s() - t0);
    inferd_pipeline_free(p);
    return rc;
}

static int bench_video(inferd_registry *reg, const char *video, const char *model, int rounds)
{
    stage st[8];
    char props[4200];
    int n = video_stages(video, model, st, props, sizeof props);
    char *doc = document(st, n, false);
    if (!doc)
        return die("document", "out of memory");
    samples plain = {0}, engine = {0};
    uint64_t pf = 0, ef = 0;
    int rc = 0;
    double fps;
    /* A warm-up of each (the model's first runs, the page cache). */
    rc = plain_run(reg, st, n, &fps, &pf) || engine_run(reg, doc, &fps, &ef);
    for (int r = 0; r < rounds && !rc; r++) {
        rc = plain_run(reg, st, n, &fps, &pf);
        add(&plain, fps);
        if (!rc)
            rc = engine_run(reg, doc, &fps, &ef);
        add(&engine, fps);
    }
    if (!rc && pf != ef)
        rc = die("frames", "the plain chain and the engine saw different frame counts");
    if (!rc) {
        double p = quantile(&plain, 0.5), e = quantile(&engine, 0.5);
        printf("video %s: %llu frames, %d rounds each, medians\n\n", video,
               (unsigned long long)pf, rounds);
        printf("| %-58s | %9s | %7s |\n", "run", "frames/s", "ratio");
        printf("|%s|%s|%s|\n", "------------------------------------------------------------",
               "-----------", "---------");
        printf("| %-58s | %9.1f | %7s |\n", "plain chain: the same elements, one thread", p, "1.00");
        printf("| %-58s | %9.1f | %7.2f |\n", "pipeline engine: a thread per element, queues", e,
               e / p);
    }
    free(plain.v);
    free(engine.v);
    free(doc);
    return rc;
}

/* ---- http: the frame API against push/pull in this process ---------------------------------- */

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t on_body(char *d, size_t size, size_t n, void *ctx)
{
    body *b = ctx;
    char *g = realloc(b->data, b->len + size * n + 1);
    if (!g)
        return 0;
    memcpy(g + b->len, d, size * n);
    b->data = g;
    b->len += size * n;
    g[b->len] = '\0';
    return size * n;
}

/* One request; the status, the body in *b (reset first). */
static long request(CURL *c, const char *method, const char *url, const char *type,
                    const void *data, size_t len, body *b)
{
    b->len = 0;
    struct curl_slist *h = NULL;
    char line[128];
    snprintf(line, sizeof line, "Content-Type: %s", type);
    h = curl_slist_append(h, line);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    return code;
}

/* The count in a result's JSON text ("count":{"count":N), or -1. */
static long count_in(const char *json)
{
    const char *at = json ? strstr(json, "\"count\":{\"count\":") : NULL;
    return at ? strtol(at + 17, NULL, 10) : -1;
}

static int bench_http(inferd_registry *reg, const char *base, const char *image,
                      const char *model, double seconds)
{
    void *png = NULL;
    size_t png_len = 0;
    if (read_file(image, &png, &png_len))
        return 2;
    char infer[4200];
    snprintf(infer, sizeof infer, "{\"modelPath\": \"%s\"}", model);
    const stage st[] = {{"decode", "image_decoder", "{\"format\": \"rgb\"}"},
                        {"tensor", "image_to_tensor", "{}"},
                        {"infer", "tensor_infer", infer},
                        {"count", "density_count", "{\"target\": \"T2\"}"},
                        {"json", "json_serialize", "{}"}};
    char *doc = document(st, 5, true);
    inferd_pipeline *p = NULL;
    inferd_error err = {0};
    CURL *c = curl_easy_init();
    body b = {0};
    char url[1024];
    int rc = 0;
    if (!doc || !c)
        rc = die("setup", "out of memory");
    else if (inferd_pipeline_new(reg, doc, strlen(doc), "bench", &p, &err) ||
             inferd_pipeline_start(p, &err))
        rc = die("pipeline", err.message);
    snprintf(url, sizeof url, "%s/v1/pipelines/bench", base);
    if (!rc) {
        request(c, "DELETE", url, "application/json", "", 0, &b); /* a previous run's */
        snprintf(url, sizeof url, "%s/v1/pipelines", base);
        long code = request(c, "POST", url, "application/json", doc, strlen(doc), &b);
        if (code != 201)
            rc = die("POST /v1/pipelines", b.data ? b.data : "no answer");
    }
    snprintf(url, sizeof url, "%s/v1/pipelines/bench/frames", base);
    samples local = {0}, remote = {0};
    long local_count = -1, remote_count = -1;
    double end = now_s() + 2 * seconds + 1;
    for (int i = 0; !rc && (now_s() < end || i < 20); i++) {
        /* In this process: push one frame, pull its result. */
        inferd_buffer *buf = inferd_buffer_new();
        void *copy = malloc(png_len);
        memcpy(copy, png, png_len);
        double t0 = now_s();
        inferd_buffer_set_value(buf, "image/png", inferd_value_bytes_take(copy, png_len), NULL);
        inferd_buffer *r = NULL;
        if (inferd_pipeline_push(p, NULL, buf, NULL, -1, &err) ||
            inferd_pipeline_pull(p, NULL, -1, &r, &err) || !r) {
            rc = die("in-process frame", err.message);
            break;
        }
        double t1 = now_s();
        char *text = NULL;
        inferd_value_to_json(inferd_buffer_value(r), INFERD_JSON_COMPACT, &text, NULL, NULL);
        local_count = count_in(text);
        free(text);
        inferd_buffer_unref(r);
        /* Over HTTP. */
        long code = request(c, "POST", url, "image/png", png, png_len, &b);
        double t2 = now_s();
        if (code != 200) {
            rc = die("POST frames", b.data ? b.data : "no answer");
            break;
        }
        remote_count = count_in(b.data);
        if (i >= 3) { /* after a warm-up */
            add(&local, (t1 - t0) * 1e3);
            add(&remote, (t2 - t1) * 1e3);
        }
    }
    if (!rc && (local_count < 0 || local_count != remote_count))
        rc = die("counts", "the daemon and this process counted differently");
    if (!rc) {
        double lm = quantile(&local, 0.5), lp = quantile(&local, 0.9);
        double hm = quantile(&remote, 0.5), hp = quantile(&remote, 0.9);
        printf("frames of %s (%zu bytes, %ld dots), one in flight, %zu each\n\n", image,
               png_len, local_count, local.n);
        printf("| %-48s | %8s | %8s | %7s |\n", "round trip", "p50 ms", "p90 ms", "ratio");
        printf("|%s|%s|%s|%s|\n", "--------------------------------------------------",
               "----------", "----------", "---------");
        printf("| %-48s | %8.3f | %8.3f | %7s |\n", "inferd_pipeline_push + pull, in process",
               lm, lp, "1.00");
        printf("| %-48s | %8.3f | %8.3f | %7.2f |\n", "POST /v1/pipelines/bench/frames (HTTP)",
               hm, hp, hm / lm);
        printf("\nthe frame API's overhead: %.3f ms a frame at the median\n", hm - lm);
        snprintf(url, sizeof url, "%s/v1/pipelines/bench", base);
        request(c, "DELETE", url, "application/json", "", 0, &b);
    }
    free(local.v);
    free(remote.v);
    free(b.data);
    if (c)
        curl_easy_cleanup(c);
    inferd_pipeline_free(p);
    free(doc);
    free(png);
    return rc;
}

int main(int argc, char **argv)
{
    const char *usage = "usage: pipeline_service video VIDEO MODEL ROUNDS\n"
                        "       pipeline_service http BASE IMAGE MODEL SECONDS\n";
    bool video = argc == 5 && strcmp(argv[1], "video") == 0;
    bool http = argc == 6 && strcmp(argv[1], "http") == 0;
    if (!video && !http) {
        fputs(usage, stderr);
        return 2;
    }
    inferd_log_configure("warn", NULL);
    inferd_registry *reg = NULL;
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) || inferd_registry_load_builtins(reg, &err))
        return die("registry", err.message);
    int rc;
    if (video) {
        int rounds = atoi(argv[4]);
        rc = rounds >= 1 && rounds <= 100 ? bench_video(reg, argv[2], argv[3], rounds)
                                          : die("ROUNDS", "a number in [1, 100]");
    } else {
        rc = 0;
        double seconds = parse_seconds("SECONDS", argv[5], &rc);
        if (!rc)
            rc = bench_http(reg, argv[2], argv[3], argv[4], seconds);
    }
    inferd_registry_free(reg);
    return rc;
}
