/* estimator_inproc: the HTTP estimation path without HTTP. What
 * `POST /v1/estimators/{name}` does for a raw image body, minus the socket,
 * the HTTP parsing and the JSON reply: CLIENTS threads each keep one image
 * in flight, back to back (a closed loop, like wrk's connections): sniff,
 * probe and decode the encoded file to RGB8, inferd_estimators_submit it with
 * the options, wait for its completion, again. The estimators are made
 * exactly as `inferd serve` makes them: the config from INFERD_CONFIG and the
 * INFERD_* variables (INFERD_ESTIMATORS sets maxBatch, maxDelayUs...), the
 * built-in plugins and active_plugins, inferd_estimators_new. bench/http/run.sh
 * divides the daemon's requests/s by this program's images/s.
 *
 *   estimator_inproc [-e NAME] [-o OPTIONS_JSON] [-w WARMUP_S] IMAGE CLIENTS SECONDS
 *
 * NAME defaults to peopleCountEstimator, OPTIONS_JSON to {"targets": "T2"},
 * WARMUP_S to 2. Every client runs for WARMUP_S + SECONDS; the images whose
 * completion falls in the last SECONDS are counted (images/s), those that
 * also started there give the latency (submit time is before the decode, as
 * the daemon's clock starts before its own). Mean batch size: the
 * estimator's batched / batches counters over the measured window.
 * CPU ms per image: the process's CPU time (every thread, user + system:
 * decode, the batcher, ONNX Runtime's threads) from the window's start
 * until the last client is done, over the images completed in that time; a
 * figure that other load on the machine moves much less than images/s.
 * Every image must succeed, and give the same result as the first, or the
 * program fails.
 *
 * Output: a line describing the run, then one line of key=value pairs for
 * scripts:
 *   images_per_s=... p50_ms=... p99_ms=... mean_batch=... cpu_ms_per_image=...
 *   images=... result=<JSON>
 * Exit status: 0, 2 on an error.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "estimator_inproc"
#include "bench_args.h"
#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/image.h"
#include "inferd/log.h"
#include "inferd/registry.h"

#define MAX_CLIENTS 1024

/* What every client shares (read-only while they run). */
typedef struct shared {
    inferd_estimators *est;
    size_t index;               /* the estimator's */
    const inferd_value *options; /* borrowed */
    const void *file;           /* borrowed: the encoded image */
    size_t len;
    uint64_t max_pixels;
    double t_start, t_end;      /* the measured window */
    atomic_bool failed;
} shared;

typedef struct client {
    shared *sh;                 /* borrowed */
    pthread_t thread;
    /* The one item in flight, completed by on_done from a worker. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    inferd_value *result;       /* owned, until checked */
    inferd_error err;
    /* What the client measured. */
    double *lat;                /* owned: seconds, images started and done in the window */
    size_t n_lat, cap_lat;
    size_t in_window;           /* images completed in the window */
    size_t after_start;         /* images completed after the window's start */
    char *first;                /* owned: the first result as JSON */
    char msg[1200];             /* set on an error */
} client;

static void on_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                    const inferd_estimate_timing *t)
{
    (void)index;
    (void)t;
    client *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->result = result;
    if (!result)
        c->err = *err;
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static bool client_fail(client *c, const char *fmt, const char *detail)
{
    snprintf(c->msg, sizeof c->msg, fmt, detail);
    atomic_store(&c->sh->failed, true);
    return false;
}

/* One image, as the HTTP handler does it for a raw body: sniff, probe,
 * decode, submit, then wait for the completion. */
static bool one_image(client *c)
{
    shared *sh = c->sh;
    inferd_error err = {0};
    uint32_t w, h;
    inferd_estimate_input in = {0};
    if (inferd_image_sniff(sh->file, sh->len) == INFERD_CODEC_UNKNOWN)
        return client_fail(c, "%s", "the image is neither JPEG nor PNG");
    if (inferd_image_probe(sh->file, sh->len, &w, &h, &err) != INFERD_OK ||
        inferd_image_decode(sh->file, sh->len, INFERD_PIXEL_RGB8, sh->max_pixels, &in.image,
                            &err) != INFERD_OK)
        return client_fail(c, "decode: %.900s", err.message);
    c->done = false;
    if (inferd_estimators_submit(sh->est, sh->index, &in, 1, sh->options, on_done, c, &err) !=
        INFERD_OK) {
        inferd_image_free(in.image);
        return client_fail(c, "submit: %.900s", err.message);
    }
    pthread_mutex_lock(&c->lock);
    while (!c->done)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    if (!c->result)
        return client_fail(c, "an image failed: %.900s", c->err.message);
    char *json = NULL;
    size_t jlen = 0;
    inferd_status st = inferd_value_to_json(c->result, 0, &json, &jlen, &err);
    inferd_value_free(c->result);
    c->result = NULL;
    if (st != INFERD_OK)
        return client_fail(c, "result: %.900s", err.message);
    if (!c->first) {
        c->first = json;
        return true;
    }
    bool same = strcmp(json, c->first) == 0;
    if (!same)
        snprintf(c->msg, sizeof c->msg, "the result changed between runs of the same image: "
                 "%.500s, then %.500s", c->first, json);
    free(json);
    if (!same)
        atomic_store(&sh->failed, true);
    return same;
}

static void *client_run(void *arg)
{
    client *c = arg;
    shared *sh = c->sh;
    double t;
    while ((t = now_s()) < sh->t_end && !atomic_load(&sh->failed)) {
        if (!one_image(c))
            return NULL;
        double done = now_s();
        if (done < sh->t_start)
            continue;
        c->after_start++;
        if (done > sh->t_end)
            continue;
        c->in_window++;
        if (t < sh->t_start)
            continue;
        if (c->n_lat == c->cap_lat) {
            size_t cap = c->cap_lat ? 2 * c->cap_lat : 1024;
            double *v = realloc(c->lat, cap * sizeof *v);
            if (!v) {
                client_fail(c, "%s", "out of memory");
                return NULL;
            }
            c->lat = v;
            c->cap_lat = cap;
        }
        c->lat[c->n_lat++] = done - t;
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, p in (0, 100]. */
static double percentile(const double *v, size_t n, double p)
{
    size_t k = (size_t)ceil(p / 100 * (double)n);
    return v[k ? k - 1 : 0];
}


static int usage(void)
{
    fprintf(stderr, "usage: estimator_inproc [-e NAME] [-o OPTIONS_JSON] [-w WARMUP_S] IMAGE "
                    "CLIENTS SECONDS\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *name = "peopleCountEstimator", *options_json = "{\"targets\": \"T2\"}";
    const char *warmup_text = "2";
    int opt, rc = 0;
    while ((opt = getopt(argc, argv, "e:o:w:")) != -1) {
        if (opt == 'e')
            name = optarg;
        else if (opt == 'o')
            options_json = optarg;
        else if (opt == 'w')
            warmup_text = optarg;
        else
            return usage();
    }
    if (argc - optind != 3)
        return usage();
    const char *image_path = argv[optind];
    char *end;
    long clients = strtol(argv[optind + 1], &end, 10);
    if (end == argv[optind + 1] || *end || clients < 1 || clients > MAX_CLIENTS)
        return die("CLIENTS", "an integer in [1, 1024]");
    double seconds = parse_seconds("SECONDS", argv[optind + 2], &rc);
    double warmup = parse_seconds("WARMUP_S", warmup_text, &rc);
    if (rc)
        return rc;
    if (!(seconds > 0))
        return die("SECONDS", "must be above 0");

    inferd_log_configure("warn", NULL);
    inferd_error err = {0};
    inferd_value *options = NULL;
    if (inferd_value_from_json(options_json, strlen(options_json), 0, &options, &err) !=
        INFERD_OK)
        return die("OPTIONS_JSON", err.message);
    void *file = NULL;
    size_t len = 0;
    if ((rc = read_file(image_path, &file, &len)) != 0) {
        inferd_value_free(options);
        return rc;
    }

    /* The estimators, made as `inferd serve` makes them. */
    const char *cfg_path = getenv("INFERD_CONFIG");
    inferd_config *cfg = NULL;
    inferd_registry *reg = NULL;
    inferd_estimators *est = NULL;
    if (inferd_config_load(cfg_path && *cfg_path ? cfg_path : NULL, NULL, &cfg, &err) !=
            INFERD_OK ||
        inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_load_config(reg, cfg, &err) != INFERD_OK ||
        inferd_estimators_new(reg, cfg, &est, &err) != INFERD_OK) {
        rc = die("set-up", err.message);
        goto out;
    }
    long index = inferd_estimators_find(est, name);
    if (index < 0) {
        rc = die(name, "no estimator of that name");
        goto out;
    }
    inferd_value *desc = inferd_estimators_describe(est, (size_t)index);
    printf("estimator_inproc: %s (maxBatch %lld, maxDelayUs %lld, workers %lld), %s (%zu "
           "bytes), %ld clients, %g s after %g s of warm-up\n",
           name, (long long)inferd_value_int_or(inferd_value_object_get(desc, "maxBatch"), -1),
           (long long)inferd_value_int_or(inferd_value_object_get(desc, "maxDelayUs"), -1),
           (long long)inferd_value_int_or(inferd_value_object_get(desc, "workers"), -1),
           image_path, len, clients, seconds, warmup);
    inferd_value_free(desc);
    fflush(stdout);

    shared sh = {.est = est, .index = (size_t)index, .options = options, .file = file,
                 .len = len, .max_pixels = (uint64_t)inferd_config_int(cfg, "image.max_pixels")};
    atomic_init(&sh.failed, false);
    sh.t_start = now_s() + warmup;
    sh.t_end = sh.t_start + seconds;
    client *cs = calloc((size_t)clients, sizeof *cs);
    if (!cs) {
        rc = die("clients", "out of memory");
        goto out;
    }
    long started = 0;
    for (; started < clients; started++) {
        client *c = &cs[started];
        c->sh = &sh;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        if (pthread_create(&c->thread, NULL, client_run, c) != 0) {
            pthread_mutex_destroy(&c->lock);
            pthread_cond_destroy(&c->cond);
            atomic_store(&sh.failed, true);
            rc = die("pthread_create", "failed");
            break;
        }
    }
    /* The counters at the window's start. */
    double wait = sh.t_start - now_s();
    if (wait > 0)
        usleep((useconds_t)(wait * 1e6));
    inferd_estimator_stats before, after;
    inferd_estimators_stats(est, (size_t)index, &before);
    double cpu0 = cpu_s();
    for (long k = 0; k < started; k++)
        pthread_join(cs[k].thread, NULL);
    double cpu1 = cpu_s();
    inferd_estimators_stats(est, (size_t)index, &after);

    size_t n_lat = 0, in_window = 0, after_start = 0;
    for (long k = 0; k < started; k++) {
        if (cs[k].msg[0] && rc == 0)
            rc = die("client", cs[k].msg);
        n_lat += cs[k].n_lat;
        in_window += cs[k].in_window;
        after_start += cs[k].after_start;
    }
    for (long k = 0; k < started && rc == 0; k++)
        if (cs[k].first && cs[0].first && strcmp(cs[k].first, cs[0].first) != 0)
            rc = die("clients", "two clients got different results for the same image");
    double *lat = rc == 0 ? malloc((n_lat ? n_lat : 1) * sizeof *lat) : NULL;
    if (rc == 0 && !lat)
        rc = die("latency", "out of memory");
    if (rc == 0 && n_lat == 0)
        rc = die("latency", "no image both started and finished in the window: raise SECONDS");
    if (rc == 0) {
        size_t pos = 0;
        for (long k = 0; k < started; k++) {
            memcpy(lat + pos, cs[k].lat, cs[k].n_lat * sizeof *lat);
            pos += cs[k].n_lat;
        }
        qsort(lat, n_lat, sizeof *lat, by_value);
        uint64_t batches = after.batches - before.batches, batched = after.batched - before.batched;
        printf("images_per_s=%.1f p50_ms=%.2f p99_ms=%.2f mean_batch=%.2f cpu_ms_per_image=%.2f "
               "images=%zu result=%s\n",
               (double)in_window / seconds, percentile(lat, n_lat, 50) * 1e3,
               percentile(lat, n_lat, 99) * 1e3,
               batches ? (double)batched / (double)batches : 0.0,
               (cpu1 - cpu0) * 1e3 / (double)after_start, in_window, cs[0].first);
    }
    free(lat);
    for (long k = 0; k < started; k++) {
        free(cs[k].lat);
        free(cs[k].first);
        pthread_mutex_destroy(&cs[k].lock);
        pthread_cond_destroy(&cs[k].cond);
    }
    free(cs);
out:
    inferd_estimators_free(est);
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    inferd_value_free(options);
    free(file);
    return rc;
}
