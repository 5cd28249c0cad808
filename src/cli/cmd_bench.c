/* cli/cmd_bench.c: `inferd bench`: a load generator for the daemon's HTTP
 * API (an estimator, a KServe model, a pipeline, any route), as Triton's
 * users have perf_analyzer.
 *
 * Each concurrency level of the sweep runs `c` threads, each with its own
 * libcurl handle (keep-alive: one connection each). Closed loop (the
 * default): each thread sends its next request when the last is answered.
 * Open loop (--rate R): requests are due at fixed times, R a second over
 * all threads, and a request's latency counts from when it was due, so a
 * server that falls behind shows in the latency instead of slowing the
 * sender (no coordinated omission). A level runs for --duration or until
 * --requests have been sent, after --warmup, which is not counted.
 */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "inferd/image.h"
#include "core/clock.h"

#define MAX_LEVELS 16
#define MAX_STATUS 600

static const char help_text[] =
    "usage: inferd bench URL [OPTIONS]\n"
    "       inferd bench --estimator NAME | --model NAME | --pipeline NAME [OPTIONS]\n\n"
    "Load for the daemon's HTTP API: a concurrency sweep, closed loop (each client sends\n"
    "its next request when the last is answered) or open loop (--rate), with each level's\n"
    "requests, 2xx answers a second, their p50, p90, p99 and max latency, and the others\n"
    "by status: a table on stdout, a progress line on stderr (a line every 10 s when\n"
    "stderr is not a terminal).\n\n"
    "Options:\n"
    "  --url BASE            the daemon (default http://127.0.0.1:8080) for --estimator,\n"
    "                        --model, --pipeline\n"
    "  --estimator NAME      POST BASE/v1/estimators/NAME\n"
    "  --model NAME          POST BASE/v2/models/NAME/infer (give the KServe JSON with --body)\n"
    "  --pipeline NAME       POST BASE/v1/pipelines/NAME/frames\n"
    "  --body FILE           the request body (POST; without it: GET)\n"
    "  --type TYPE           its Content-Type (default: image/png, image/jpeg or\n"
    "                        application/json by the body's first bytes)\n"
    "  --header 'K: V'       another header (repeatable; a bearer token, ...)\n"
    "  --cacert FILE         the CA of an HTTPS daemon (default: $INFERD_CACERT)\n"
    "  --cert FILE, --key FILE  a client certificate and its key (default:\n"
    "                        $INFERD_CLIENT_CERT, $INFERD_CLIENT_KEY)\n"
    "  -c, --concurrency L   clients at once: one number or a list, 1,2,4 (default 1)\n"
    "  -d, --duration T      each level's length, in seconds (default 10)\n"
    "  -n, --requests N      or: each level's number of requests\n"
    "  --warmup T            seconds first, not counted (default 1)\n"
    "  --rate R              open loop: R requests a second over all clients\n"
    "  --csv FILE            the table as CSV too\n"
    "  --timeout T           one request's limit in seconds (default 60)\n"
    "  -h, --help            this text\n\n"
    "Exit status 0 when every request was answered 2xx, 1 when some were not (or no\n"
    "request went through), 2 for a usage error.\n";

typedef struct opts {
    char url[2048];
    void *body;
    size_t body_len;
    char type[128];
    struct curl_slist *headers;
    int levels[MAX_LEVELS];
    size_t n_levels;
    double duration_s, warmup_s, rate, timeout_s;
    long requests;
    const char *csv;
    cli_tls tls;
} opts;

/* One level's shared state. */
typedef struct run {
    const opts *o;
    uint64_t start_us, measure_us, end_us; /* warm-up ends at measure_us */
    atomic_long next;                      /* open loop: the next slot; closed: requests sent */
    atomic_long measured;                  /* --requests: the measured requests taken */
    atomic_bool stop;
    atomic_int exited;                     /* clients that have ended */
    pthread_mutex_t mu;
    double *lat_ms;                        /* measured latencies of the 2xx answers */
    size_t n, cap;
    uint64_t status[MAX_STATUS];           /* answers by status (0: no answer) */
    uint64_t sent_measured;
    uint64_t last_done_us;                 /* when the last measured request ended */
    char last_error[256];
} run;

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p, (void)ctx;
    return size * n;
}

static void record(run *r, uint64_t due_us, uint64_t done_us, long status, const char *why)
{
    pthread_mutex_lock(&r->mu);
    /* Only answers count for the rate and the latencies: a refused
     * connection or a quick 404 would make a failing server look fast. */
    if (due_us >= r->measure_us && status >= 200 && status < 300) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            double *grown = realloc(r->lat_ms, cap * sizeof *grown);
            if (grown) {
                r->lat_ms = grown;
                r->cap = cap;
            }
        }
        if (r->n < r->cap)
            r->lat_ms[r->n++] = (double)(done_us - due_us) / 1000.0;
    }
    if (due_us >= r->measure_us) {
        r->status[status > 0 && status < MAX_STATUS ? status : 0]++;
        r->sent_measured++;
        if (done_us > r->last_done_us)
            r->last_done_us = done_us;
        if (why && why[0])
            snprintf(r->last_error, sizeof r->last_error, "%s", why);
    }
    pthread_mutex_unlock(&r->mu);
}

static void *client(void *arg)
{
    run *r = arg;
    const opts *o = r->o;
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    char err[CURL_ERROR_SIZE];
    curl_easy_setopt(h, CURLOPT_URL, o->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    if (o->headers)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, o->headers);
    cli_tls_apply(h, &o->tls);
    if (o->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    }
    while (!atomic_load(&r->stop)) {
        long slot = atomic_fetch_add(&r->next, 1);
        uint64_t due = inferd__now_us();
        if (o->rate > 0) { /* open loop: this slot's time, however late we are */
            due = r->start_us + (uint64_t)((double)slot * 1e6 / o->rate);
            uint64_t now = inferd__now_us();
            if (due > now) {
                uint64_t wait = due - now;
                struct timespec ts = {(time_t)(wait / 1000000), (long)(wait % 1000000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
        if (due >= r->end_us)
            break;
        /* --requests: exactly that many measured, over all clients. */
        if (o->requests > 0 && due >= r->measure_us &&
            atomic_fetch_add(&r->measured, 1) >= o->requests)
            break;
        err[0] = '\0';
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        record(r, due, inferd__now_us(), status, rc == CURLE_OK ? NULL
                                                 : err[0] ? err : curl_easy_strerror(rc));
        /* No answer (refused, reset): 10 ms before the next try, not a
         * spin of connection attempts. */
        if (rc != CURLE_OK && !atomic_load(&r->stop)) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    curl_easy_cleanup(h);
    atomic_fetch_add(&r->exited, 1);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)ceil(p * (double)n);
    return v[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

/* One level; prints its row (and CSV). Returns the requests not answered 2xx. */
static uint64_t level(const opts *o, int clients, FILE *csv, bool *any)
{
    run r = {.o = o};
    pthread_mutex_init(&r.mu, NULL);
    r.start_us = inferd__now_us();
    r.measure_us = r.start_us + (uint64_t)(o->warmup_s * 1e6);
    r.end_us = o->requests > 0 ? UINT64_MAX : r.measure_us + (uint64_t)(o->duration_s * 1e6);
    pthread_t tid[256];
    int started = 0;
    for (; started < clients && started < 256; started++)
        if (pthread_create(&tid[started], NULL, client, &r) != 0)
            break;
    /* The progress line, 5 times a second on a terminal (rewritten in
     * place), else a line every 10 s (a log a long run can keep). */
    bool tty = isatty(STDERR_FILENO);
    uint64_t next_line = r.start_us + 10000000u;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t now = inferd__now_us();
        pthread_mutex_lock(&r.mu);
        uint64_t done = r.sent_measured;
        pthread_mutex_unlock(&r.mu);
        /* Open loop: every request due before the end is sent, however late
         * (a server falling behind shows as latency, not as fewer
         * requests); the clients end themselves at the first slot past it. */
        bool over = o->requests > 0 ? (long)done >= o->requests
                    : o->rate > 0   ? atomic_load(&r.exited) == started
                                    : now >= r.end_us;
        double secs = now > r.measure_us ? (double)(now - r.measure_us) / 1e6 : 0;
        if (tty || now >= next_line) {
            fprintf(stderr, "%s  %d client%s: %s %.1f s, %llu requests, %.0f/s   %s",
                    tty ? "\r" : "", clients, clients == 1 ? "" : "s",
                    now < r.measure_us ? "warming up" : "measuring", secs,
                    (unsigned long long)done, secs > 0 ? (double)done / secs : 0.0,
                    tty ? "" : "\n");
            next_line = now + 10000000u;
        }
        if (over) {
            atomic_store(&r.stop, true);
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    /* The level's time ends with its last answer, not when this loop saw
     * it (up to 200 ms later). */
    uint64_t end = r.last_done_us ? r.last_done_us : inferd__now_us();
    if (tty)
        fprintf(stderr, "\r%80s\r", "");
    if (r.n) /* qsort takes no NULL, even for nothing */
        qsort(r.lat_ms, r.n, sizeof *r.lat_ms, cmp_double);
    double secs = (double)(end - r.measure_us) / 1e6;
    double rps = secs > 0 ? (double)r.n / secs : 0;
    uint64_t bad = 0;
    char errors[256] = "";
    size_t pos = 0;
    for (int s = 0; s < MAX_STATUS; s++) {
        if (!r.status[s] || (s >= 200 && s < 300))
            continue;
        bad += r.status[s];
        if (pos < sizeof errors)
            pos += (size_t)snprintf(errors + pos, sizeof errors - pos, "%s%s%d x%llu",
                                    pos ? " " : "", s ? "" : "no answer/", s,
                                    (unsigned long long)r.status[s]);
    }
    printf("| %7d | %8llu | %9.1f | %8.3f | %8.3f | %8.3f | %8.3f | %s\n", clients,
           (unsigned long long)r.sent_measured, rps,
           pct(r.lat_ms, r.n, 0.50), pct(r.lat_ms, r.n, 0.90), pct(r.lat_ms, r.n, 0.99),
           r.n ? r.lat_ms[r.n - 1] : 0.0, errors[0] ? errors : "none");
    fflush(stdout);
    if (csv)
        fprintf(csv, "%d,%llu,%.2f,%.4f,%.4f,%.4f,%.4f,%llu\n", clients,
                (unsigned long long)r.sent_measured, rps,
                pct(r.lat_ms, r.n, 0.50), pct(r.lat_ms, r.n, 0.90), pct(r.lat_ms, r.n, 0.99),
                r.n ? r.lat_ms[r.n - 1] : 0.0, (unsigned long long)bad);
    if (r.last_error[0])
        fprintf(stderr, "  last error: %s\n", r.last_error);
    *any = *any || r.n > 0;
    free(r.lat_ms);
    pthread_mutex_destroy(&r.mu);
    return bad;
}

/* An image's type by its codec (the daemon's own sniffing), else JSON or bytes. */
static const char *sniff_type(const unsigned char *b, size_t n)
{
    inferd_image_codec codec = inferd_image_sniff(b, n);
    if (codec != INFERD_CODEC_UNKNOWN)
        return inferd_image_codec_mime(codec);
    if (n >= 1 && (b[0] == '{' || b[0] == '['))
        return "application/json";
    return "application/octet-stream";
}

/* A plain number (seconds, a count, a rate): "10s" is refused, not read
 * as 10. 0, or a usage error. */
static int number(const char *option, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d)) {
        char msg[256];
        snprintf(msg, sizeof msg, "bench: %s '%.80s' is not a number (seconds, a count or a "
                 "rate, without units)", option, v);
        return cli_usage_error("%s", msg);
    }
    *out = d;
    return 0;
}

static bool parse_levels(const char *s, opts *o)
{
    o->n_levels = 0;
    while (*s && o->n_levels < MAX_LEVELS) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256)
            return false;
        o->levels[o->n_levels++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return o->n_levels > 0 && !*s;
}

int cmd_bench(int argc, char **argv)
{
    opts o = {.duration_s = 10, .warmup_s = 1, .timeout_s = 60, .levels = {1}, .n_levels = 1,
              .tls = cli_tls_from_env()};
    const char *base = "http://127.0.0.1:8080", *target = NULL, *kind = NULL, *body = NULL;
    const char *type = NULL;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(help_text, stdout);
            curl_slist_free_all(o.headers);
            return 0;
        } else if (a[0] != '-') {
            takes = false;
            if (target)
                rc = cli_usage_error("bench: a second URL '%s'", a);
            target = a, kind = "url";
        } else if (!v) {
            rc = cli_usage_error("bench: %s needs a value (inferd bench --help)", a);
        } else if (strcmp(a, "--url") == 0) {
            base = v;
        } else if (!strcmp(a, "--estimator") || !strcmp(a, "--model") || !strcmp(a, "--pipeline")) {
            target = v, kind = a + 2;
        } else if (strcmp(a, "--body") == 0) {
            body = v;
        } else if (strcmp(a, "--type") == 0) {
            type = v;
        } else if (strcmp(a, "--header") == 0) {
            o.headers = curl_slist_append(o.headers, v);
        } else if (cli_tls_option(&o.tls, a, v)) {
            /* taken */
        } else if (!strcmp(a, "-c") || !strcmp(a, "--concurrency")) {
            if (!parse_levels(v, &o))
                rc = cli_usage_error("bench: --concurrency '%s' is not a list of 1 to 256 "
                                     "clients (1,2,4)", v);
        } else if (!strcmp(a, "-d") || !strcmp(a, "--duration")) {
            rc = number(a, v, &o.duration_s);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--requests")) {
            double n = 0;
            rc = number(a, v, &n);
            o.requests = (long)n;
            if (rc == 0 && (double)o.requests != n)
                rc = cli_usage_error("bench: %s needs a whole number", a);
        } else if (strcmp(a, "--warmup") == 0) {
            rc = number(a, v, &o.warmup_s);
        } else if (strcmp(a, "--rate") == 0) {
            rc = number(a, v, &o.rate);
        } else if (strcmp(a, "--csv") == 0) {
            o.csv = v;
        } else if (strcmp(a, "--timeout") == 0) {
            rc = number(a, v, &o.timeout_s);
        } else {
            rc = cli_usage_error("bench: unknown option '%s' (inferd bench --help)", a);
        }
        i += takes;
    }
    if (rc == 0 && !target)
        rc = cli_usage_error("%s", "bench needs a URL, or --estimator, --model or --pipeline "
                                   "NAME (inferd bench --help)");
    if (rc == 0 && (o.duration_s <= 0 || o.warmup_s < 0 || o.rate < 0 || o.timeout_s <= 0 ||
                    o.requests < 0))
        rc = cli_usage_error("%s", "bench: --duration, --timeout must be above 0; --warmup, "
                                   "--rate, --requests not below");
    if (rc == 0 && body && !(o.body = cli_read_file(body, &o.body_len)))
        rc = 1;
    if (rc != 0) {
        curl_slist_free_all(o.headers);
        return rc;
    }
    if (strcmp(kind, "url") == 0)
        snprintf(o.url, sizeof o.url, "%s", target);
    else
        snprintf(o.url, sizeof o.url, "%s/%s/%s%s", base,
                 strcmp(kind, "estimator") == 0 ? "v1/estimators"
                 : strcmp(kind, "model") == 0   ? "v2/models"
                                                : "v1/pipelines",
                 target,
                 strcmp(kind, "model") == 0      ? "/infer"
                 : strcmp(kind, "pipeline") == 0 ? "/frames"
                                                 : "");
    if (o.body) {
        snprintf(o.type, sizeof o.type, "Content-Type: %s",
                 type ? type : sniff_type(o.body, o.body_len));
        o.headers = curl_slist_append(o.headers, o.type);
        o.headers = curl_slist_append(o.headers, "Expect:"); /* no 100-continue round trip */
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    FILE *csv = o.csv ? fopen(o.csv, "w") : NULL;
    if (o.csv && !csv) {
        fprintf(stderr, "inferd: bench: cannot write %s: %s\n", o.csv, strerror(errno));
        free(o.body);
        curl_slist_free_all(o.headers);
        return 1;
    }
    if (csv)
        fprintf(csv, "clients,requests,requests_per_s,p50_ms,p90_ms,p99_ms,max_ms,errors\n");
    printf("%s %s, %s", o.body ? "POST" : "GET", o.url,
           o.rate > 0 ? "open loop" : "closed loop");
    if (o.rate > 0)
        printf(" at %.1f requests/s", o.rate);
    if (o.requests > 0)
        printf(", %ld requests a level", o.requests);
    else
        printf(", %.1f s a level", o.duration_s);
    printf(" after %.1f s of warm-up\n\n", o.warmup_s);
    printf("| clients | requests | requests/s |  p50 ms  |  p90 ms  |  p99 ms  |  max ms  | "
           "errors\n|---------|----------|------------|----------|----------|----------|---------"
           "-|-------\n");
    uint64_t bad = 0;
    bool any = false;
    for (size_t i = 0; i < o.n_levels; i++)
        bad += level(&o, o.levels[i], csv, &any);
    if (csv)
        fclose(csv);
    free(o.body);
    curl_slist_free_all(o.headers);
    curl_global_cleanup();
    return bad == 0 && any ? 0 : 1;
}
