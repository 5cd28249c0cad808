/* bench/rules/rules_bench.c: messages per second and latency through a rule,
 * end to end over a real MQTT broker, for four kinds of function.
 *
 *   rules_bench [-o CSV] [-w IN_FLIGHT] [-t SECONDS] [-q QOS] [-b BROKER_PID]
 *               [-c CASES] [-n CONCURRENCY] SERVER PYAI_ZIP IMAGES_DIR
 *
 * SERVER is a running broker ("tcp://127.0.0.1:PORT"; bench/rules/run.sh
 * starts a mosquitto on a free loopback port), PYAI_ZIP the packed pyai
 * example (plugins/examples/python/pack.py), IMAGES_DIR the output of
 * scripts/gen_images.py (truth.json and its images).
 *
 * Everything runs in this process, as `inferd serve` would run it minus
 * HTTP: the config (defaults and INFERD_* variables, with state.dir a fresh
 * folder under /tmp and mqtt.server SERVER), the built-in plugins, the
 * bench_scale C plugin (loaded with inferd_registry_load_file), the
 * estimators, the portable plugins (pyai installed into the fresh
 * state.dir) and the rules engine (rules_engine_open). Two JSON streams
 * over MQTT, then one rule at a time, each with an MQTT action:
 *
 *   built-in   SELECT seq, upper(name) AS u, x * 2 AS x2 FROM bench_json
 *   C plugin   SELECT seq, bench_scale(x, 3) AS y FROM bench_json
 *   Python     SELECT seq, labelImage(decode(image, "base64"))[0]->label AS label
 *              FROM bench_img   (pyai's labelImage: a portable plugin process)
 *   estimator  SELECT seq, people_count(image)->count AS count FROM bench_img
 *              (the built-in peopleCountEstimator through its batcher)
 *
 * bench_json messages are {"seq", "name": "sensor-<seq>", "x": <seq>};
 * bench_img messages {"seq", "image": "<base64>"}, the small images of
 * IMAGES_DIR in turn (labelImage: the 96x80 colour PNGs; people_count: the
 * dot images of at most 160x120). One MQTT client of this program publishes
 * to bench/in/... and subscribes to the rules' output topic: a result names
 * its message by seq, and its latency is the time it arrived (on the
 * client's network thread) minus the time its message was handed to
 * mqtt_client_publish, both CLOCK_MONOTONIC in this process.
 *
 * Per case: probe messages until one comes back (the rule's source is
 * subscribed), then a row with 1 message in flight (latency unloaded) and a
 * row with IN_FLIGHT (default 32) in flight (throughput: a closed loop that
 * never has more outstanding, so neither the broker nor the rule's buffer
 * has reason to drop), each after its own warm-up, which also sizes the row
 * to about SECONDS (default 6; the 1-in-flight row half that; never sending
 * for more than twice that). QOS (0, the default, or 1) is every publish's
 * and subscription's. CASES picks cases by key (default
 * "builtin,c,python,estimator"). Every result
 * is checked (built-in and C: the values; Python and estimator: the same
 * image always gives the same answer, and the first answers are compared
 * with the images' truth). A row counts results that never came (lost,
 * after 10 s without progress), duplicates and wrong ones; the rule's
 * dropped and exception counters are printed after the table. Exit status 1
 * when anything was lost or wrong.
 *
 * CPU per message over each row: this process (the engine, the plugin host,
 * the estimator, and this program's MQTT client and publisher), the broker
 * (-b PID) and the Python plugin process, by their CPU clocks.
 */
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/log.h"
#include "inferd/registry.h"
#include "inferd/value.h"
#include "mqtt/mqtt.h"
#include "portable/portables.h"
#include "rules/rules.h"

#ifndef BENCH_SCALE_SO
#define BENCH_SCALE_SO "bench_scale.so"
#endif

#define STALL_US 10000000u  /* no result for this long: what is out is lost */
#define PROBE_US 30000000u  /* how long a rule may take to answer its first message */
#define MAX_SMALL_PIXELS (160 * 120)

typedef enum { K_BUILTIN, K_C, K_PYTHON, K_ESTIMATOR } kind;

typedef struct bcase {
    kind kind;
    const char *key;  /* for -c */
    const char *name, *id, *stream, *sql, *field; /* field: the result's column */
} bcase;

static const bcase cases[] = {
    {K_BUILTIN, "builtin", "built-in upper(), x * 2", "bench_builtin", "bench_json",
     "SELECT seq, upper(name) AS u, x * 2 AS x2 FROM bench_json", "u"},
    {K_C, "c", "C plugin bench_scale(x, 3)", "bench_c", "bench_json",
     "SELECT seq, bench_scale(x, 3) AS y FROM bench_json", "y"},
    {K_PYTHON, "python", "Python labelImage (pyai)", "bench_python", "bench_img",
     "SELECT seq, labelImage(decode(image, \"base64\"))[0]->label AS label FROM bench_img",
     "label"},
    {K_ESTIMATOR, "estimator", "estimator people_count", "bench_estimator", "bench_img",
     "SELECT seq, people_count(image)->count AS count FROM bench_img", "count"},
};

typedef struct image {
    char *file;           /* owned */
    char *b64;            /* owned: the encoded file as base64 */
    size_t b64_len;
    inferd_value *truth;  /* owned: the label (string) or the dot count (int) */
    inferd_value *first;  /* owned: the case's first answer for it, NULL until then */
} image;

typedef struct image_set {
    image *v;
    size_t n;
} image_set;

/* One row's messages. Everything here is under b->lock. */
typedef struct bench {
    mqtt_client *mq;          /* owned */
    int qos;
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* a result arrived */
    const bcase *c;           /* borrowed: the case running */
    image_set *images;        /* borrowed: its images (Python, estimator) */
    uint64_t base;            /* seq of the row's first message; rows never overlap */
    size_t n;                 /* messages in the row */
    uint64_t *sent_us, *recv_us; /* owned: n each, 0 until then */
    size_t sent, received, duplicates, wrong;
    char first_wrong[512];
} bench;

typedef struct row {
    size_t in_flight, n, received, duplicates, wrong;
    double rate, p50_ms, p99_ms;
    double proc_cpu_ms, broker_cpu_ms, plugin_cpu_ms; /* per message; < 0: not measured */
    bool stalled;
} row;

static char state_dir[] = "/tmp/inferd-rules-bench-XXXXXX"; /* made by main */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* atexit: the temporary state.dir goes, on errors too. */
static void remove_state_dir(void)
{
    nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "rules_bench: %s: %s\n", what, msg ? msg : "out of memory");
    exit(1);
}

static double cpu_ms(bool have, clockid_t clock)
{
    struct timespec ts;
    if (!have || clock_gettime(clock, &ts) != 0)
        return 0;
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 65536 + 1 > cap) {
            char *p = realloc(data, cap = cap ? cap * 2 : 131072);
            if (!p) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + *len, 1, cap - *len - 1, f);
        *len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    data[*len] = '\0';
    return data;
}

/* ---- results ------------------------------------------------------------------ */

/* Whether res (one result) is right for message seq; why says what is
 * wrong. */
static bool check_result(bench *b, uint64_t seq, const inferd_value *res, char *why, size_t size)
{
    const inferd_value *v = inferd_value_object_get(res, b->c->field);
    switch (b->c->kind) {
    case K_BUILTIN: {
        char want[64];
        snprintf(want, sizeof want, "SENSOR-%llu", (unsigned long long)seq);
        const char *u = inferd_value_string_or(v, "");
        int64_t x2 = inferd_value_int_or(inferd_value_object_get(res, "x2"), -1);
        if (strcmp(u, want) == 0 && x2 == (int64_t)(2 * seq))
            return true;
        snprintf(why, size, "u \"%s\" x2 %lld, want \"%s\" %llu", u, (long long)x2, want,
                 (unsigned long long)(2 * seq));
        return false;
    }
    case K_C: {
        int64_t y = inferd_value_int_or(v, -1);
        if (y == (int64_t)(3 * seq))
            return true;
        snprintf(why, size, "y %lld, want %llu", (long long)y, (unsigned long long)(3 * seq));
        return false;
    }
    case K_PYTHON:
    case K_ESTIMATOR: {
        image *im = &b->images->v[seq % b->images->n];
        if (!v || inferd_value_is(v, INFERD_VALUE_NULL)) {
            snprintf(why, size, "no %s for %s", b->c->field, im->file);
            return false;
        }
        if (!im->first)
            return (im->first = inferd_value_copy(v)) != NULL;
        if (inferd_value_equal(v, im->first))
            return true;
        snprintf(why, size, "%s: not the same answer as the first time", im->file);
        return false;
    }
    }
    return false;
}

/* On the client's network thread: one result. */
static void on_result(void *ctx, const char *topic, const void *payload, size_t len)
{
    bench *b = ctx;
    uint64_t now = inferd__now_us();
    inferd_value *res = NULL;
    (void)topic;
    int64_t seq = -1;
    if (inferd_value_from_json(payload, len, 0, &res, NULL) == INFERD_OK)
        seq = inferd_value_int_or(inferd_value_object_get(res, "seq"), -1);
    pthread_mutex_lock(&b->lock);
    /* Outside the row: a late answer to a probe or an earlier row (ignored). */
    bool in_row = seq >= 0 && (uint64_t)seq >= b->base && (uint64_t)seq - b->base < b->n;
    size_t i = in_row ? (size_t)((uint64_t)seq - b->base) : 0;
    char why[400];
    if (in_row && (b->recv_us[i] || !b->sent_us[i])) {
        b->duplicates++;
    } else if (in_row) {
        b->recv_us[i] = now;
        b->received++;
        if (!check_result(b, (uint64_t)seq, res, why, sizeof why) && b->wrong++ == 0)
            snprintf(b->first_wrong, sizeof b->first_wrong, "seq %lld: %s", (long long)seq, why);
        pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
    inferd_value_free(res);
}

/* ---- rows ------------------------------------------------------------------------- */

static char *message(const bench *b, uint64_t seq, size_t *len)
{
    char *text = NULL;
    int n;
    if (b->c->kind == K_BUILTIN || b->c->kind == K_C) {
        n = asprintf(&text, "{\"seq\":%llu,\"name\":\"sensor-%llu\",\"x\":%llu}",
                     (unsigned long long)seq, (unsigned long long)seq, (unsigned long long)seq);
    } else {
        const image *im = &b->images->v[seq % b->images->n];
        n = asprintf(&text, "{\"seq\":%llu,\"image\":\"%s\"}", (unsigned long long)seq, im->b64);
    }
    if (n < 0)
        die("message", NULL);
    *len = (size_t)n;
    return text;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    return sorted[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

/* Sends up to n messages, never more than in_flight unanswered, for at
 * most max_us (0: no limit) of sending, then waits for what is out. A
 * result that does not come within stall_us of the last one is lost.
 * Fills r (the rate: results over first send to last result). */
static void run_row(bench *b, uint64_t *next_seq, size_t n, size_t in_flight, uint64_t max_us,
                    uint64_t stall_us, row *r)
{
    pthread_mutex_lock(&b->lock);
    free(b->sent_us), free(b->recv_us);
    b->sent_us = calloc(n, sizeof *b->sent_us);
    b->recv_us = calloc(n, sizeof *b->recv_us);
    if (!b->sent_us || !b->recv_us)
        die("row", NULL);
    b->base = *next_seq;
    b->n = n;
    b->sent = b->received = b->duplicates = b->wrong = 0;
    b->first_wrong[0] = '\0';
    pthread_mutex_unlock(&b->lock);
    *next_seq += n;

    uint64_t start = inferd__now_us(), last_progress = start;
    size_t seen = 0;
    bool stalled = false;
    char topic[64];
    snprintf(topic, sizeof topic, "bench/in/%s", b->c->stream);
    for (size_t i = 0; i < n && !stalled; i++) {
        if (max_us && inferd__now_us() - start >= max_us)
            break;
        size_t len;
        char *text = message(b, b->base + i, &len); /* made before its clock starts */
        pthread_mutex_lock(&b->lock);
        while (b->sent - b->received >= in_flight && !stalled) {
            if (b->received != seen)
                seen = b->received, last_progress = inferd__now_us();
            struct timespec until = inferd__abs_us(last_progress + stall_us);
            if (pthread_cond_timedwait(&b->cond, &b->lock, &until) != 0 &&
                b->received == seen)
                stalled = true;
        }
        if (stalled) {
            pthread_mutex_unlock(&b->lock);
            free(text);
            break;
        }
        b->sent_us[i] = inferd__now_us();
        b->sent++;
        pthread_mutex_unlock(&b->lock);
        inferd_error err = {0};
        if (mqtt_client_publish(b->mq, topic, text, len, b->qos, false, &err) != INFERD_OK)
            die("publish", err.message); /* the client's queue is far larger than in_flight */
        free(text);
    }
    /* What is out: until it is all back or nothing more comes. */
    pthread_mutex_lock(&b->lock);
    seen = b->received, last_progress = inferd__now_us();
    while (b->received < b->sent) {
        struct timespec until = inferd__abs_us(last_progress + stall_us);
        if (pthread_cond_timedwait(&b->cond, &b->lock, &until) != 0 && b->received == seen) {
            stalled = true;
            break;
        }
        if (b->received != seen)
            seen = b->received, last_progress = inferd__now_us();
    }
    size_t sent = b->sent;
    double *lat = malloc((sent ? sent : 1) * sizeof *lat);
    if (!lat)
        die("row", NULL);
    size_t k = 0;
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < sent; i++) {
        if (b->sent_us[i] && b->sent_us[i] < first)
            first = b->sent_us[i];
        if (!b->recv_us[i])
            continue;
        lat[k++] = (double)(b->recv_us[i] - b->sent_us[i]) / 1e3;
        if (b->recv_us[i] > last)
            last = b->recv_us[i];
    }
    *r = (row){.in_flight = in_flight, .n = sent, .received = b->received,
               .duplicates = b->duplicates, .wrong = b->wrong, .stalled = stalled,
               .proc_cpu_ms = -1, .broker_cpu_ms = -1, .plugin_cpu_ms = -1};
    if (b->wrong)
        fprintf(stderr, "rules_bench: %s: %zu wrong results, the first: %s\n", b->c->name,
                b->wrong, b->first_wrong);
    pthread_mutex_unlock(&b->lock);
    qsort(lat, k, sizeof *lat, cmp_double);
    if (k) {
        r->p50_ms = percentile(lat, k, 0.50);
        r->p99_ms = percentile(lat, k, 0.99);
        r->rate = last > first ? (double)k / ((double)(last - first) / 1e6) : 0;
    }
    free(lat);
}

/* ---- the engine's side ---------------------------------------------------------------- */

static inferd_value *json(const char *text)
{
    inferd_value *v = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(text, strlen(text), 0, &v, &err) != INFERD_OK)
        die("JSON", err.message);
    return v;
}

static inferd_value *rule_status(rules_engine *e, const char *id)
{
    inferd_value *st = NULL;
    inferd_error err = {0};
    if (rules_rule_status(e, id, &st, &err) != INFERD_OK)
        die(id, err.message);
    return st;
}

/* Waits until the rule runs (a Python function's rule waits for its plugin). */
static void wait_running(rules_engine *e, const char *id)
{
    for (int i = 0; i < 600; i++) {
        inferd_value *st = rule_status(e, id);
        const char *s = inferd_value_string_or(inferd_value_object_get(st, "status"), "");
        bool running = strcmp(s, "running") == 0;
        if (strcmp(s, "failed") == 0) {
            fprintf(stderr, "rules_bench: rule %s failed: %s\n", id,
                    inferd_value_string_or(inferd_value_object_get(st, "message"), ""));
            exit(1);
        }
        inferd_value_free(st);
        if (running)
            return;
        usleep(50000);
    }
    die(id, "not running after 30 s");
}

static int64_t counter(const inferd_value *st, const char *key)
{
    return inferd_value_int_or(inferd_value_object_get(st, key), -1);
}

/* The rule's status once its action has counted every row the query gave
 * (at most a second): the action counts a message once the library has
 * written it, which can be just after its result reached us. */
static inferd_value *settled_status(rules_engine *e, const char *id)
{
    inferd_value *st = rule_status(e, id);
    for (int i = 0; i < 20 && counter(st, "sink_mqtt_0_0_records_out_total") <
                                  counter(st, "op_1_select_0_records_out_total");
         i++) {
        inferd_value_free(st);
        usleep(50000);
        st = rule_status(e, id);
    }
    return st;
}

/* Sums the rule's counters whose names end in suffix (every stage's). */
static uint64_t sum_counters(const inferd_value *st, const char *suffix)
{
    const char *key;
    inferd_value *v;
    uint64_t total = 0;
    size_t sl = strlen(suffix);
    for (size_t i = 0; inferd_value_object_entry(st, i, &key, &v); i++) {
        size_t kl = strlen(key);
        if (kl >= sl && strcmp(key + kl - sl, suffix) == 0)
            total += (uint64_t)inferd_value_int_or(v, 0);
    }
    return total;
}

/* ---- images -------------------------------------------------------------------------- */

/* The images of truth.json's section (colours or dots) of at most
 * MAX_SMALL_PIXELS, base64-encoded, with truth key (label or count). */
static void load_images(const char *dir, const inferd_value *truth, const char *section,
                        const char *key, image_set *out)
{
    const inferd_value *arr = inferd_value_object_get(truth, section);
    size_t n = inferd_value_array_len(arr);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    out->n = 0;
    if (!out->v)
        die("images", NULL);
    for (size_t i = 0; i < n; i++) {
        const inferd_value *e = inferd_value_array_get(arr, i);
        const char *file = inferd_value_string_or(inferd_value_object_get(e, "file"), NULL);
        int64_t w = inferd_value_int_or(inferd_value_object_get(e, "width"), 0);
        int64_t h = inferd_value_int_or(inferd_value_object_get(e, "height"), 0);
        const inferd_value *t = inferd_value_object_get(e, key);
        if (!file || !t || w * h > MAX_SMALL_PIXELS)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        size_t len;
        char *data = read_whole(path, &len);
        if (!data)
            die(path, "cannot read it");
        image *im = &out->v[out->n++];
        im->file = strdup(file);
        im->b64 = inferd_base64_encode(data, len, &im->b64_len);
        im->truth = inferd_value_copy(t);
        free(data);
        if (!im->file || !im->b64 || !im->truth)
            die("images", NULL);
    }
    if (out->n == 0)
        die(dir, "truth.json lists no small images (run scripts/gen_images.py --out DIR)");
}

static void free_images(image_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].file), free(s->v[i].b64);
        inferd_value_free(s->v[i].truth), inferd_value_free(s->v[i].first);
    }
    free(s->v);
}

/* How many first answers equal the truth (the estimator's count is
 * compared as a number). */
static size_t truth_agrees(const image_set *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const inferd_value *a = s->v[i].first, *t = s->v[i].truth;
        if (inferd_value_is(t, INFERD_VALUE_STRING))
            k += inferd_value_equal(a, t);
        else
            k += a && inferd_value_double_or(a, NAN) == inferd_value_double_or(t, NAN);
    }
    return k;
}

static size_t total_bytes(const image_set *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->v[i].b64_len;
    return total;
}

/* ---- main ------------------------------------------------------------------------------ */

static void print_row(FILE *csv, const bcase *c, const row *r)
{
    char lost[32], cpu[3][16];
    size_t missing = r->n - r->received;
    snprintf(lost, sizeof lost, "%zu%s", missing + r->wrong + r->duplicates,
             r->stalled ? " (stall)" : "");
    const double v[3] = {r->proc_cpu_ms, r->broker_cpu_ms, r->plugin_cpu_ms};
    for (int i = 0; i < 3; i++)
        snprintf(cpu[i], sizeof cpu[i], v[i] < 0 ? "-" : "%.3f", v[i]);
    printf("| %-26s | %9zu | %8zu | %8.0f | %7.2f | %7.2f | %-11s | %14s | %13s | %13s |\n",
           c->name, r->in_flight, r->n, r->rate, r->p50_ms, r->p99_ms, lost, cpu[0], cpu[1],
           cpu[2]);
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,%zu,%zu,%zu,%zu,%zu,%.1f,%.4f,%.4f,%s,%s,%s\n", c->name, r->in_flight,
                r->n, missing, r->wrong, r->duplicates, r->rate, r->p50_ms, r->p99_ms, cpu[0],
                cpu[1], cpu[2]);
}

int main(int argc, char **argv)
{
    const char *csv_path = NULL, *only = "builtin,c,python,estimator";
    long in_flight = 32, broker_pid = 0, qos = 0, concurrency = 1;
    double seconds = 6;
    int opt;
    bool ok = true;
    while ((opt = getopt(argc, argv, "o:w:t:q:b:c:n:")) != -1 && ok) {
        char *end = NULL;
        switch (opt) {
        case 'o': csv_path = optarg, end = optarg + strlen(optarg); break;
        case 'w': in_flight = strtol(optarg, &end, 10); break;
        case 't': seconds = strtod(optarg, &end); break;
        case 'q': qos = strtol(optarg, &end, 10); break;
        case 'b': broker_pid = strtol(optarg, &end, 10); break;
        case 'c': only = optarg, end = optarg + strlen(optarg); break;
        case 'n': concurrency = strtol(optarg, &end, 10); break;
        default: break;
        }
        ok = end && !*end;
    }
    if (!ok || argc - optind != 3 || in_flight < 1 || in_flight > 100000 || !(seconds > 0) ||
        qos < 0 || qos > 1 || broker_pid < 0 || concurrency < 1 || concurrency > 64) {
        fprintf(stderr, "usage: rules_bench [-o CSV] [-w IN_FLIGHT] [-t SECONDS] [-q 0|1] "
                        "[-b BROKER_PID] [-c CASES] [-n CONCURRENCY] SERVER PYAI_ZIP IMAGES_DIR\n");
        return 2;
    }
    /* -c: a comma-separated list of case keys. */
    bool wanted[sizeof cases / sizeof cases[0]] = {false};
    for (const char *p = only; *p;) {
        size_t len = strcspn(p, ",");
        size_t ci = 0;
        while (ci < sizeof cases / sizeof cases[0] &&
               (strlen(cases[ci].key) != len || strncmp(p, cases[ci].key, len) != 0))
            ci++;
        if (ci == sizeof cases / sizeof cases[0]) {
            fprintf(stderr, "rules_bench: -c: unknown case \"%.*s\" (known: builtin, c, python, "
                            "estimator)\n", (int)len, p);
            return 2;
        }
        wanted[ci] = true;
        p += len + (p[len] == ',');
    }
    const char *server = argv[optind], *pyai_zip = argv[optind + 1], *images_dir = argv[optind + 2];
    inferd_error err = {0};
    if (inferd_log_configure("warn", &err) != INFERD_OK)
        die("log", err.message);

    /* The images and their truth. */
    char path[4096];
    snprintf(path, sizeof path, "%s/truth.json", images_dir);
    size_t len;
    char *text = read_whole(path, &len);
    if (!text)
        die(path, "cannot read it (run scripts/gen_images.py --out IMAGES_DIR)");
    inferd_value *truth = NULL;
    if (inferd_value_from_json(text, len, 0, &truth, &err) != INFERD_OK)
        die(path, err.message);
    free(text);
    image_set colours, dots;
    load_images(images_dir, truth, "colours", "label", &colours);
    load_images(images_dir, truth, "dots", "count", &dots);
    inferd_value_free(truth);

    /* The daemon's parts, in process. */
    if (!mkdtemp(state_dir))
        die("mkdtemp", "cannot make a state.dir under /tmp");
    atexit(remove_state_dir);
    inferd_config *cfg = NULL;
    inferd_registry *reg = NULL;
    inferd_estimators *est = NULL;
    inferd_portables *port = NULL;
    rules_engine *e = NULL;
    if (inferd_config_load(NULL, NULL, &cfg, &err) != INFERD_OK ||
        inferd_config_set(cfg, "state.dir", state_dir, "rules_bench", &err) != INFERD_OK ||
        inferd_config_set(cfg, "mqtt.server", server, "rules_bench", &err) != INFERD_OK)
        die("config", err.message);
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_load_config(reg, cfg, &err) != INFERD_OK)
        die("plugins", err.message);
    if (inferd_registry_load_file(reg, BENCH_SCALE_SO, &err) != INFERD_OK)
        die(BENCH_SCALE_SO, err.message);
    if (inferd_estimators_new(reg, cfg, &est, &err) != INFERD_OK)
        die("estimators", err.message);
    if (inferd_portables_open(cfg, reg, true, &port, &err) != INFERD_OK)
        die("portable plugins", err.message);
    uint64_t t0 = inferd__now_us();
    if (inferd_portables_install(port, "pyai", pyai_zip, NULL, &err) != INFERD_OK)
        die(pyai_zip, err.message);
    double install_ms = (double)(inferd__now_us() - t0) / 1e3;
    inferd_value *desc = inferd_portables_describe(port, "pyai");
    pid_t plugin_pid = (pid_t)inferd_value_int_or(inferd_value_object_get(desc, "pid"), 0);
    inferd_value_free(desc);
    clockid_t plugin_clock, broker_clock;
    bool have_plugin = plugin_pid > 0 && clock_getcpuclockid(plugin_pid, &plugin_clock) == 0;
    bool have_broker = broker_pid > 0 &&
                       clock_getcpuclockid((pid_t)broker_pid, &broker_clock) == 0;
    if (broker_pid > 0 && !have_broker)
        die("-b", "no CPU clock for that process");
    snprintf(path, sizeof path, "%s/inferd.db", state_dir);
    if (rules_engine_open(cfg, reg, est, port, path, &e, &err) != INFERD_OK)
        die("rules engine", err.message);
    const char *streams[] = {"bench_json", "bench_img"};
    for (int i = 0; i < 2; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "CREATE STREAM %s () WITH (DATASOURCE=\"bench/in/%s\", "
                 "QOS=%ld)", streams[i], streams[i], qos);
        if (rules_stream_create(e, sql, NULL, &err) != INFERD_OK)
            die("streams", err.message);
    }

    /* This program's one MQTT connection: publishes messages, takes results. */
    bench b = {.qos = (int)qos};
    pthread_mutex_init(&b.lock, NULL);
    inferd__cond_init(&b.cond);
    mqtt_options mo = {.server = server, .name = "rules_bench", .max_queued = 4096};
    if (mqtt_client_new(&mo, &b.mq, &err) != INFERD_OK ||
        mqtt_client_subscribe(b.mq, "bench/out/#", (int)qos, on_result, &b, &err) != INFERD_OK ||
        mqtt_client_wait_connected(b.mq, 10000, &err) != INFERD_OK)
        die(server, err.message);

    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !csv)
        die(csv_path, "cannot write it");
    if (csv)
        fprintf(csv, "case,in_flight,messages,lost,wrong,duplicates,msgs_per_s,p50_ms,p99_ms,"
                     "process_cpu_ms_per_msg,broker_cpu_ms_per_msg,plugin_cpu_ms_per_msg\n");
    printf("rules_bench: broker %s, QoS %ld, in process (rules_engine_open); pyai installed "
           "and started in %.0f ms; %zu colour images for labelImage (%zu base64 bytes in "
           "all), %zu dot images for people_count (%zu); %.3g s per row at %ld in flight\n\n",
           server, qos, install_ms, colours.n, total_bytes(&colours), dots.n,
           total_bytes(&dots), seconds, in_flight);
    printf("| case                       | in flight | messages | msgs/s   | p50 ms  | p99 ms  "
           "| lost/wrong  | process CPU ms | broker CPU ms | plugin CPU ms |\n");
    printf("|----------------------------|-----------|----------|----------|---------|---------"
           "|-------------|----------------|---------------|---------------|\n");
    fflush(stdout);

    uint64_t next_seq = 1;
    bool bad = false;
    char counters[4][512] = {{0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const bcase *c = &cases[ci];
        if (!wanted[ci])
            continue;
        char def[512];
        snprintf(def, sizeof def,
                 "{\"id\": \"%s\", \"actions\": [{\"mqtt\": {\"topic\": \"bench/out/%s\", "
                 "\"sendSingle\": true, \"qos\": %ld}}], \"options\": {\"concurrency\": %ld}}",
                 c->id, c->id, qos, concurrency);
        inferd_value *d = json(def);
        if (inferd_value_object_set(d, "sql", inferd_value_string(c->sql), &err) != INFERD_OK)
            die(c->id, err.message);
        if (rules_rule_create(e, d, &err) != INFERD_OK)
            die(c->id, err.message);
        inferd_value_free(d);
        wait_running(e, c->id);
        pthread_mutex_lock(&b.lock);
        b.c = c;
        b.images = c->kind == K_PYTHON ? &colours : c->kind == K_ESTIMATOR ? &dots : NULL;
        pthread_mutex_unlock(&b.lock);

        /* Probes until one comes back: the source is subscribed and the
         * function answers (its model loaded, its plugin up). */
        row r;
        uint64_t probe_start = inferd__now_us();
        size_t probes = 0, sent = 0, received = 0; /* sent, received: after the probes */
        do {
            run_row(&b, &next_seq, 1, 1, 0, 500000, &r);
            probes++;
            if (inferd__now_us() - probe_start > PROBE_US)
                die(c->id, "no result within 30 s of the rule running");
        } while (r.received == 0);

        /* Each row after a warm-up at its own in-flight count, which also
         * sizes it: about `seconds` (half at 1 in flight), never sending for more
         * than twice that. */
        size_t flights[2] = {1, (size_t)in_flight};
        double row_s[2] = {seconds / 2, seconds};
        for (int fi = 0; fi < 2; fi++) {
            row warm;
            run_row(&b, &next_seq, 1000000, flights[fi], 1000000, STALL_US, &warm);
            sent += warm.n, received += warm.received;
            if (warm.received != warm.n || warm.wrong)
                fprintf(stderr, "rules_bench: %s, warm-up at %zu in flight: %zu of %zu results "
                        "never came, %zu wrong\n", c->name, flights[fi], warm.n - warm.received,
                        warm.n, warm.wrong);
            size_t n = (size_t)(warm.rate * row_s[fi]);
            n = n < 50 ? 50 : n;
            double p0 = cpu_ms(true, CLOCK_PROCESS_CPUTIME_ID);
            double br0 = cpu_ms(have_broker, broker_clock);
            double pl0 = cpu_ms(have_plugin, plugin_clock);
            run_row(&b, &next_seq, n, flights[fi], (uint64_t)(row_s[fi] * 2e6), STALL_US, &r);
            sent += r.n, received += r.received;
            double dn = r.n ? (double)r.n : 1;
            r.proc_cpu_ms = (cpu_ms(true, CLOCK_PROCESS_CPUTIME_ID) - p0) / dn;
            if (have_broker)
                r.broker_cpu_ms = (cpu_ms(true, broker_clock) - br0) / dn;
            if (have_plugin && c->kind == K_PYTHON)
                r.plugin_cpu_ms = (cpu_ms(true, plugin_clock) - pl0) / dn;
            print_row(csv, c, &r);
            bad |= r.received != r.n || r.wrong || r.duplicates || warm.received != warm.n ||
                   warm.wrong;
        }

        /* The rule's own counters: every message it was handed (probes
         * that reached it included) should have come out of the action. */
        inferd_value *st = settled_status(e, c->id);
        char key[128];
        snprintf(key, sizeof key, "source_%s_0_records_in_total", c->stream);
        snprintf(counters[ci], sizeof counters[ci],
                 "%s: %zu probes, then %zu messages sent, %zu results back; the rule: source "
                 "in %lld, select out %lld, mqtt action out %lld, dropped %llu, exceptions "
                 "%llu (all stages)",
                 c->id, probes, sent, received, (long long)counter(st, key),
                 (long long)counter(st, "op_1_select_0_records_out_total"),
                 (long long)counter(st, "sink_mqtt_0_0_records_out_total"),
                 (unsigned long long)sum_counters(st, "_dropped_total"),
                 (unsigned long long)sum_counters(st, "_exceptions_total"));
        bad |= sum_counters(st, "_dropped_total") || sum_counters(st, "_exceptions_total");
        inferd_value_free(st);
        if (rules_rule_delete(e, c->id, &err) != INFERD_OK)
            die(c->id, err.message);
    }
    printf("\n");
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        if (counters[ci][0])
            printf("%s\n", counters[ci]);
    printf("first answers equal to the truth: labelImage %zu of %zu images, people_count %zu "
           "of %zu\n",
           truth_agrees(&colours), colours.n, truth_agrees(&dots), dots.n);
    if (csv)
        fclose(csv);

    mqtt_client_free(b.mq);
    rules_engine_free(e); /* before the estimators and the functions its rules call */
    inferd_estimators_free(est);
    inferd_portables_free(port);
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    free(b.sent_us), free(b.recv_us);
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
    free_images(&colours);
    free_images(&dots);
    if (bad)
        fprintf(stderr, "rules_bench: results were lost, duplicated or wrong, or the rule "
                        "dropped messages (see above)\n");
    return bad ? 1 : 0;
}
