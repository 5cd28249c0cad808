/* bench/portable/portable_bench.c: what a call into a Python portable plugin
 * costs, by payload and transport, in process (no HTTP).
 *
 *   build/bench/portable_bench [-o CSV] [-r ROW] [PACKAGE_DIR]
 *
 * -r runs only the rows whose payload name contains ROW ("1 KB", "base64"):
 * to profile one of them.
 *
 * Zips PACKAGE_DIR (default: this source tree's bench/portable/benchlen) with
 * libzip, installs it into a fresh state.dir under /tmp the way `inferd
 * plugin install` does (inferd_portables_install: unpack, start the plugin
 * process, handshake), and calls its function benchLen through
 * inferd_instance_exec, the proxy a daemon's functions go through:
 *
 *   1 KB JSON    a 1024-character string, in the frame's JSON header
 *   1 MiB bytes  1 MiB of bytes: a blob in a memfd (shared memory, >= 64 KiB)
 *   1 MiB base64 the same bytes as a base64 string inside the JSON header,
 *                decoded by the plugin (the eKuiper way of passing images)
 *
 * benchLen only measures its payload (and decodes the base64 one), so the
 * rows compare transport. The first row is the raw limit of a call's
 * round trip here: the same 1 KB written to a Python process (the same
 * interpreter) that reads it with a blocking recv and answers 8 bytes, over
 * a socketpair, with nothing else: no framing, no JSON, no event loop, no
 * thread pool. What a portable call costs beyond it is the protocol's and
 * the SDK's. Each row runs with 1 thread and with 4 threads
 * calling at once (one instance each, calls in flight together on the one
 * plugin connection), after a warm-up, and times every call with
 * CLOCK_MONOTONIC, and takes the CPU time per call of both processes (the
 * host's own clock, the plugin's through clock_getcpuclockid). Every answer
 * is checked (the payload's length). Prints a markdown table; -o also writes
 * it as CSV. The config comes from the
 * defaults and INFERD_* variables (INFERD_PORTABLE_PYTHON, ...), with
 * state.dir replaced by the temporary folder, which is removed at the end.
 */
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "inferd/config.h"
#include "inferd/log.h"
#include "inferd/registry.h"
#include "inferd/value.h"
#include "portable/portables.h"

#ifndef BENCHLEN_DIR
#define BENCHLEN_DIR "bench/portable/benchlen"
#endif

#define SMALL_LEN 1024
#define LARGE_LEN (1024 * 1024)
#define MAX_THREADS 4

typedef struct payload {
    const char *name, *transport;
    inferd_value *args[2]; /* owned: payload, encoding */
    int64_t expect;        /* benchLen's answer */
    int calls, warmup;     /* per row, over all threads */
} payload;

typedef struct worker {
    inferd_instance *inst; /* borrowed */
    const payload *pl;     /* borrowed */
    int warmup, calls;
    pthread_barrier_t *go; /* borrowed */
    double *lat_ms;        /* borrowed: calls slots */
    double start_ns, end_ns;
} worker;

static char state_dir[] = "/tmp/inferd-bench-XXXXXX"; /* made by main */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* atexit: the temporary state.dir goes, on errors too. */
static void remove_state_dir(void)
{
    nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, const inferd_error *err)
{
    fprintf(stderr, "portable_bench: %s: %s\n", what, err ? err->message : "out of memory");
    exit(1);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One call, its answer checked: a wrong length means the payload did not
 * arrive whole, and the numbers would be worthless. */
static void call_once(inferd_instance *inst, const payload *pl)
{
    inferd_error err = {0};
    inferd_value *res = NULL;
    int64_t got = -1;
    if (inferd_instance_exec(inst, (const inferd_value *const *)pl->args, 2, &res, &err) !=
        INFERD_OK)
        die(pl->name, &err);
    if (inferd_value_get_int(res, &got, &err) != INFERD_OK)
        die(pl->name, &err);
    inferd_value_free(res);
    if (got != pl->expect) {
        fprintf(stderr, "portable_bench: %s: benchLen answered %lld, expected %lld\n", pl->name,
                (long long)got, (long long)pl->expect);
        exit(1);
    }
}

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->warmup; i++)
        call_once(w->inst, w->pl);
    pthread_barrier_wait(w->go);
    w->start_ns = now_ns();
    for (int i = 0; i < w->calls; i++) {
        double t0 = now_ns();
        call_once(w->inst, w->pl);
        w->lat_ms[i] = (now_ns() - t0) / 1e6;
    }
    w->end_ns = now_ns();
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double percentile(const double *sorted, int n, double p)
{
    int rank = (int)ceil(p * n);
    return sorted[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

static double cpu_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0; /* the plugin exited: its row fails on its own */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One row: pl->calls calls split over threads instances, all started
 * together. plugin_clock: the plugin process's CPU clock. */
static void run_row(inferd_instance *const *insts, int threads, const payload *pl,
                    clockid_t plugin_clock, FILE *csv)
{
    int per = pl->calls / threads;
    int n = per * threads;
    double *lat = malloc((size_t)n * sizeof *lat);
    worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    pthread_barrier_t go;
    if (!lat)
        die("latencies", NULL);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1); /* + this thread */
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){.inst = insts[t], .pl = pl, .warmup = pl->warmup / threads,
                        .calls = per, .go = &go, .lat_ms = lat + (size_t)t * per};
        if (pthread_create(&tid[t], NULL, work, &w[t]) != 0)
            die("pthread_create", NULL);
    }
    /* CPU time of both processes over the measured calls (the warm-up is
     * over when the barrier opens): on a shared machine wall-clock rates
     * move with the neighbours, CPU per call much less. */
    pthread_barrier_wait(&go);
    double host0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), plugin0 = cpu_ns(plugin_clock);
    double first = 0, last = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        first = t == 0 || w[t].start_ns < first ? w[t].start_ns : first;
        last = w[t].end_ns > last ? w[t].end_ns : last;
    }
    double host_ms = (cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - host0) / 1e6;
    double plugin_ms = (cpu_ns(plugin_clock) - plugin0) / 1e6;
    pthread_barrier_destroy(&go);
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    double rate = n / ((last - first) / 1e9);
    double p50 = percentile(lat, n, 0.50), p99 = percentile(lat, n, 0.99);
    printf("| %-13s | %-27s | %7d | %5d | %8.0f | %7.3f | %7.3f | %16.3f | %18.3f |\n",
           pl->name, pl->transport, threads, n, rate, p50, p99, host_ms / n, plugin_ms / n);
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,%s,%d,%d,%.1f,%.4f,%.4f,%.4f,%.4f\n", pl->name, pl->transport, threads,
                n, rate, p50, p99, host_ms / n, plugin_ms / n);
    free(lat);
}

/* The raw limit: n round trips of SMALL_LEN bytes to a bare Python echo. */
extern char **environ;
static void raw_row(int n, FILE *csv)
{
    static const char script[] =
        "import socket, sys\n"
        "s = socket.socket(fileno=int(sys.argv[1]))\n"
        "buf = bytearray(%d)\n"
        "while True:\n"
        "    if s.recv_into(buf, len(buf), socket.MSG_WAITALL) < len(buf): break\n"
        "    s.sendall(b'01234567')\n";
    char code[512], fdarg[16];
    snprintf(code, sizeof code, script, SMALL_LEN);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair", NULL);
    const char *py = getenv("INFERD_PORTABLE_PYTHON");
    py = py && *py ? py : "python3";
    int child_fd = dup(sv[1]); /* without CLOEXEC: the child's */
    snprintf(fdarg, sizeof fdarg, "%d", child_fd);
    char *argv[] = {(char *)py, "-c", code, fdarg, NULL};
    pid_t pid;
    if (child_fd < 0 || posix_spawnp(&pid, py, NULL, NULL, argv, environ) != 0)
        die("spawning python", NULL);
    close(child_fd);
    close(sv[1]);
    char msg[SMALL_LEN], ans[8];
    memset(msg, 'a', sizeof msg);
    double *lat = malloc((size_t)n * sizeof *lat);
    if (!lat)
        die("latencies", NULL);
    double first = 0;
    for (int i = -200; i < n; i++) { /* 200 to warm up */
        double t0 = now_ns();
        if (i == 0)
            first = t0;
        if (send(sv[0], msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg ||
            recv(sv[0], ans, sizeof ans, MSG_WAITALL) != (ssize_t)sizeof ans)
            die("the raw echo", NULL);
        if (i >= 0)
            lat[i] = (now_ns() - t0) / 1e6;
    }
    double rate = n / ((now_ns() - first) / 1e9);
    close(sv[0]);
    waitpid(pid, NULL, 0);
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    double p50 = percentile(lat, n, 0.50), p99 = percentile(lat, n, 0.99);
    printf("| %-13s | %-27s | %7d | %5d | %8.0f | %7.3f | %7.3f | %16s | %18s |\n", "1 KB raw",
           "bare socket echo (limit)", 1, n, rate, p50, p99, "-", "-");
    if (csv)
        fprintf(csv, "1 KB raw,bare socket echo (limit),1,%d,%.1f,%.4f,%.4f,,\n", n, rate, p50,
                p99);
    free(lat);
}

/* Zips the regular files at the top of dir (the manifest, main.py, ...) into
 * zip_path, as `inferd plugin install` expects a package. */
static void write_package(const char *dir, const char *zip_path)
{
    int zerr = 0;
    zip_t *z = zip_open(zip_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    DIR *d = opendir(dir);
    if (!z || !d) {
        fprintf(stderr, "portable_bench: cannot %s %s\n", z ? "read" : "create",
                z ? dir : zip_path);
        exit(1);
    }
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* ., .., __pycache__ */
        zip_source_t *src = zip_source_file(z, path, 0, -1) /* to its end */;
        zip_int64_t i = src ? zip_file_add(z, e->d_name, src, ZIP_FL_ENC_UTF_8) : -1;
        if (i < 0) {
            zip_source_free(src);
            fprintf(stderr, "portable_bench: zip %s: %s\n", path, zip_strerror(z));
            exit(1);
        }
        zip_file_set_external_attributes(z, (zip_uint64_t)i, 0, ZIP_OPSYS_UNIX,
                                         (zip_uint32_t)(S_IFREG | (st.st_mode & 0777)) << 16);
        files++;
    }
    closedir(d);
    if (files == 0 || zip_close(z) != 0) {
        fprintf(stderr, "portable_bench: %s: %s\n", zip_path,
                files ? zip_strerror(z) : "no files in the package folder");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *csv_path = NULL, *pkg_dir = BENCHLEN_DIR, *only = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "o:r:h")) != -1) {
        if (opt == 'o') {
            csv_path = optarg;
        } else if (opt == 'r') {
            only = optarg;
        } else {
            fprintf(stderr, "usage: portable_bench [-o CSV] [-r ROW] [PACKAGE_DIR]\n");
            return 2;
        }
    }
    if (optind < argc)
        pkg_dir = argv[optind];
    inferd_error err = {0};
    if (inferd_log_configure("warn", &err) != INFERD_OK)
        die("log", &err);

    if (!mkdtemp(state_dir)) {
        perror("portable_bench: mkdtemp");
        return 1;
    }
    atexit(remove_state_dir);
    char zip_path[sizeof state_dir + 32];
    snprintf(zip_path, sizeof zip_path, "%s/benchlen.zip", state_dir);
    write_package(pkg_dir, zip_path);

    inferd_config *cfg = NULL;
    inferd_registry *reg = NULL;
    inferd_portables *port = NULL;
    if (inferd_config_load(NULL, NULL, &cfg, &err) != INFERD_OK ||
        inferd_config_set(cfg, "state.dir", state_dir, "portable_bench", &err) != INFERD_OK)
        die("config", &err);
    if (inferd_registry_new(&reg, &err) != INFERD_OK)
        die("registry", &err);
    if (inferd_portables_open(cfg, reg, true, &port, &err) != INFERD_OK)
        die("state.dir", &err);
    double t0 = now_ns();
    if (inferd_portables_install(port, "benchlen", zip_path, NULL, &err) != INFERD_OK)
        die("install", &err);
    double install_ms = (now_ns() - t0) / 1e6;
    /* The plugin process's CPU clock (Linux lets a process read another's). */
    inferd_value *desc = inferd_portables_describe(port, "benchlen");
    pid_t pid = (pid_t)inferd_value_int_or(inferd_value_object_get(desc, "pid"), 0);
    inferd_value_free(desc);
    clockid_t plugin_clock;
    if (pid <= 0 || clock_getcpuclockid(pid, &plugin_clock) != 0) {
        fprintf(stderr, "portable_bench: no CPU clock for the plugin process (pid %d)\n",
                (int)pid);
        return 1;
    }
    inferd_instance *insts[MAX_THREADS];
    for (int t = 0; t < MAX_THREADS; t++)
        if (inferd_instance_create(reg, "benchLen", NULL, NULL, &insts[t], &err) != INFERD_OK)
            die("benchLen instance", &err);

    /* The 1 MiB payload: pixel-like bytes that are not all alike. */
    unsigned char *pixels = malloc(LARGE_LEN);
    char small[SMALL_LEN + 1];
    if (!pixels)
        die("payload", NULL);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < LARGE_LEN; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        pixels[i] = (unsigned char)x;
    }
    for (int i = 0; i < SMALL_LEN; i++)
        small[i] = (char)('a' + i % 26);
    small[SMALL_LEN] = '\0';
    size_t b64_len = 0;
    char *b64 = inferd_base64_encode(pixels, LARGE_LEN, &b64_len);
    if (!b64)
        die("base64", NULL);

    payload pls[] = {
        {"1 KB JSON", "JSON string in the header", {inferd_value_string(small), NULL}, SMALL_LEN,
         2000, 200},
        {"1 MiB bytes", "blob in a memfd (shm)", {inferd_value_bytes_take(pixels, LARGE_LEN), NULL},
         LARGE_LEN, 300, 40},
        {"1 MiB base64", "base64 string in the header",
         {inferd_value_string_n(b64, b64_len), NULL}, LARGE_LEN, 300, 40},
    };
    free(b64);
    for (size_t i = 0; i < sizeof pls / sizeof pls[0]; i++) {
        pls[i].args[1] = inferd_value_string(i == 2 ? "base64" : "raw");
        if (!pls[i].args[0] || !pls[i].args[1])
            die("payload", NULL);
    }

    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !csv) {
        perror(csv_path);
        return 1;
    }
    if (csv)
        fprintf(csv, "payload,transport,threads,calls,calls_per_s,p50_ms,p99_ms,host_cpu_ms_per_call,"
                     "plugin_cpu_ms_per_call\n");
    printf("benchLen (Python portable plugin) through inferd_instance_exec; installed and "
           "started in %.0f ms; base64 payload %zu characters\n\n",
           install_ms, b64_len);
    printf("| payload       | transport                   | threads | calls | calls/s  | p50 ms  "
           "| p99 ms  | host CPU ms/call | plugin CPU ms/call |\n");
    printf("|---------------|-----------------------------|---------|-------|----------|---------"
           "|---------|------------------|--------------------|\n");
    if (!only || strstr("1 KB raw", only))
        raw_row(2000, csv);
    int thread_counts[] = {1, MAX_THREADS};
    for (size_t i = 0; i < sizeof pls / sizeof pls[0]; i++)
        for (size_t t = 0; t < 2 && (!only || strstr(pls[i].name, only)); t++)
            run_row(insts, thread_counts[t], &pls[i], plugin_clock, csv);
    if (csv)
        fclose(csv);

    for (size_t i = 0; i < sizeof pls / sizeof pls[0]; i++)
        inferd_value_free(pls[i].args[0]), inferd_value_free(pls[i].args[1]);
    for (int t = 0; t < MAX_THREADS; t++)
        inferd_instance_destroy(insts[t]);
    inferd_portables_free(port); /* stops the plugin process */
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    return 0;
}
