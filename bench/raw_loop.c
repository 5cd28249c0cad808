/* raw_loop: the raw limit to hold the daemon's estimation API against. A
 * plain loop over the library calls the daemon makes for one raw-body
 * request, with nothing of inferd in between: read the JPEG's header and
 * decode it with libturbojpeg to RGB8 (the same flags as the daemon's
 * decoder), convert it to float32 CHW in [0,1], run the model with ONNX
 * Runtime's C API on a session of its own (bench/raw_session.h: all graph
 * optimisations), read the output (its sum: a density map's count). One
 * image at a time, back to back, in each of PROCS processes.
 *
 *   raw_loop [-t THREADS] [-p PROCS] [-w WARMUP_S] MODEL IMAGE SECONDS
 *
 * THREADS: ONNX Runtime's intra-op threads per session, 0 (the default) for
 * its default (one per core). PROCS (default 1): forked children, each with
 * its own session, all measured over the same window: -p 1 -t 0 is one
 * process using every core, -p NPROC -t 1 the per-core ceiling (no thread
 * pool, no sharing). WARMUP_S (default 1) is run before the window (arenas,
 * caches, the CPU's clock).
 *
 * Counted: the images each child finishes within the SECONDS window
 * (images/s is their total over SECONDS); CPU ms per image is each child's
 * CPU time (every thread, user + system, getrusage) from its first image
 * started in the window to the end of its last, over those images; peak RSS
 * is the largest child's ru_maxrss. Every image must give the same output
 * sum as the first (all children alike), or the program fails.
 *
 * Output: a line describing the run, then one line of key=value pairs for
 * scripts:
 *   images_per_s=... cpu_ms_per_image=... ms_per_image=... peak_rss_kib=...
 *   images=... processes=... threads=... output_sum=...
 * (ms_per_image: the wall time of one image in one process, SECONDS * PROCS /
 * images.) Exit status: 0, or 2 on an error.
 */
#define BENCH_NAME "raw_loop"
#include "bench_args.h"
#include "raw_session.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#define MAX_PROCS 256

/* What a child sends back when it is done. */
typedef struct report {
    int ok;
    long images;       /* finished in the window */
    long counted;      /* started in the window (CPU is over these) */
    double cpu;        /* seconds, over `counted` */
    long maxrss_kib;
    double output_sum; /* of the first image */
} report;

static float unit[256]; /* pixel value / 255 */

/* One image: decode, convert, run, read. *sum is the output's sum. */
static int one_image(const raw_session *r, const unsigned char *jpeg, size_t len, double *sum)
{
    const OrtApi *api = r->api;
    /* The daemon probes, then decodes with a decompressor of its own. */
    int w = 0, h = 0, subsamp = -1, cs = -1;
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return die("tjInitDecompress", tjGetErrorStr2(NULL));
    int bad = tjDecompressHeader3(tj, jpeg, (unsigned long)len, &w, &h, &subsamp, &cs) != 0;
    tjDestroy(tj);
    if (bad || w <= 0 || h <= 0)
        return die("the JPEG's header", "unreadable");
    if (!(tj = tjInitDecompress()))
        return die("tjInitDecompress", tjGetErrorStr2(NULL));
    size_t stride = (size_t)w * 3, plane = (size_t)w * (size_t)h;
    unsigned char *rgb = malloc(stride * (size_t)h);
    float *chw = malloc(3 * plane * sizeof *chw);
    if (!rgb || !chw) {
        tjDestroy(tj);
        free(rgb);
        free(chw);
        return die("image", "out of memory");
    }
    if (tjDecompress2(tj, jpeg, (unsigned long)len, rgb, w, (int)stride, h, TJPF_RGB,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
        fprintf(stderr, "raw_loop: decode: %s\n", tjGetErrorStr2(tj));
        tjDestroy(tj);
        free(rgb);
        free(chw);
        return 2;
    }
    tjDestroy(tj);
    /* RGB8 -> three planes R, G, B in [0,1]. */
    float *pr = chw, *pg = chw + plane, *pb = chw + 2 * plane;
    const unsigned char *px = rgb;
    for (size_t i = 0; i < plane; i++, px += 3) {
        pr[i] = unit[px[0]];
        pg[i] = unit[px[1]];
        pb[i] = unit[px[2]];
    }
    free(rgb);

    const int64_t shape[4] = {1, 3, h, w};
    OrtValue *in = NULL, *out = NULL;
    OrtTensorTypeAndShapeInfo *info = NULL;
    float *data = NULL;
    size_t count = 0;
    const char *in_names[] = {r->in_name}, *out_names[] = {r->out_name};
    bad = raw_failed(api, api->CreateTensorWithDataAsOrtValue(
                              r->cpu, chw, 3 * plane * sizeof *chw, shape, 4,
                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in), "input") ||
          raw_failed(api, api->Run(r->session, NULL, in_names, (const OrtValue *const *)&in, 1,
                                   out_names, 1, &out), "run") ||
          raw_failed(api, api->GetTensorTypeAndShape(out, &info), "output shape") ||
          raw_failed(api, api->GetTensorShapeElementCount(info, &count), "output count") ||
          raw_failed(api, api->GetTensorMutableData(out, (void **)&data), "output");
    if (!bad) {
        double s = 0;
        for (size_t i = 0; i < count; i++)
            s += data[i];
        *sum = s;
    }
    if (info)
        api->ReleaseTensorTypeAndShapeInfo(info);
    if (in)
        api->ReleaseValue(in);
    if (out)
        api->ReleaseValue(out);
    free(chw);
    return bad ? 2 : 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A child: open the session, say so on `ready`, read the window from `go`,
 * loop, write its report to `ready`. */
static int child(const char *model, int threads, const unsigned char *jpeg, size_t len,
                 int ready, int go)
{
    report rep = {0};
    raw_session r;
    char byte = 'R';
    if (raw_open_threads(&r, model, threads) != 0) {
        write_all(ready, &byte, 1);
        write_all(ready, &rep, sizeof rep);
        return 2;
    }
    double window[2]; /* start, end */
    if (write_all(ready, &byte, 1) != 0 || read_all(go, window, sizeof window) != 0) {
        raw_close(&r);
        return 2;
    }
    int rc = 0;
    bool first = true, counting = false;
    double cpu0 = 0, t;
    while ((t = now_s()) < window[1]) {
        if (!counting && t >= window[0]) {
            counting = true;
            cpu0 = cpu_s();
        }
        double sum = 0;
        if ((rc = one_image(&r, jpeg, len, &sum)) != 0)
            break;
        if (first) {
            rep.output_sum = sum;
            first = false;
        } else if (sum != rep.output_sum) {
            fprintf(stderr, "raw_loop: the output changed between runs of the same image: sum "
                            "%.9g, then %.9g\n", rep.output_sum, sum);
            rc = 2;
            break;
        }
        double done = now_s();
        if (counting)
            rep.counted++;
        if (done >= window[0] && done <= window[1])
            rep.images++;
    }
    if (counting)
        rep.cpu = cpu_s() - cpu0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rep.maxrss_kib = ru.ru_maxrss;
    rep.ok = rc == 0;
    raw_close(&r);
    return write_all(ready, &rep, sizeof rep) != 0 ? 2 : rc;
}


static long parse_int(const char *what, const char *text, long lo, long hi, int *rc)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < lo || v > hi) {
        char msg[80];
        snprintf(msg, sizeof msg, "an integer in [%ld, %ld]", lo, hi);
        *rc = die(what, msg);
    }
    return v;
}

static int usage(void)
{
    fprintf(stderr, "usage: raw_loop [-t THREADS] [-p PROCS] [-w WARMUP_S] MODEL IMAGE SECONDS\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *threads_text = "0", *procs_text = "1", *warmup_text = "1";
    int opt, rc = 0;
    while ((opt = getopt(argc, argv, "t:p:w:")) != -1) {
        if (opt == 't')
            threads_text = optarg;
        else if (opt == 'p')
            procs_text = optarg;
        else if (opt == 'w')
            warmup_text = optarg;
        else
            return usage();
    }
    if (argc - optind != 3)
        return usage();
    const char *model = argv[optind], *image = argv[optind + 1];
    int threads = (int)parse_int("THREADS", threads_text, 0, 1024, &rc);
    int procs = (int)parse_int("PROCS", procs_text, 1, MAX_PROCS, &rc);
    double warmup = parse_seconds("WARMUP_S", warmup_text, &rc);
    double seconds = parse_seconds("SECONDS", argv[optind + 2], &rc);
    if (rc)
        return rc;
    if (!(seconds > 0))
        return die("SECONDS", "must be above 0");
    for (int v = 0; v < 256; v++)
        unit[v] = (float)(v / 255.0);
    void *file = NULL;
    size_t len = 0;
    if ((rc = read_file(image, &file, &len)) != 0)
        return rc;
    unsigned char *jpeg = file;

    printf("raw_loop: %s, %s (%zu bytes), %d process(es) x %d intra-op thread(s)%s, %g s after "
           "%g s of warm-up, ONNX Runtime %s\n",
           model, image, len, procs, threads, threads ? "" : " (ORT default)", seconds, warmup,
           OrtGetApiBase()->GetVersionString());
    fflush(stdout);

    /* Children: one pipe back each (ready byte, then the report), one
     * shared pipe to them (the window, 16 bytes a child: atomic writes). */
    int go[2];
    int back[MAX_PROCS];
    pid_t pids[MAX_PROCS];
    int started = 0;
    if (pipe(go) != 0) {
        free(jpeg);
        return die("pipe", strerror(errno));
    }
    for (; started < procs; started++) {
        int p[2];
        if (pipe(p) != 0) {
            rc = die("pipe", strerror(errno));
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            rc = die("fork", strerror(errno));
            break;
        }
        if (pid == 0) {
            close(p[0]);
            close(go[1]);
            for (int k = 0; k < started; k++)
                close(back[k]);
            int crc = child(model, threads, jpeg, len, p[1], go[0]);
            _exit(crc);
        }
        close(p[1]);
        back[started] = p[0];
        pids[started] = pid;
    }
    close(go[0]);
    /* Every child's session is open (or failed): start the window. */
    for (int k = 0; k < started && rc == 0; k++) {
        char byte;
        if (read_all(back[k], &byte, 1) != 0)
            rc = die("a child", "exited before its session was open");
    }
    if (rc == 0) {
        double window[2];
        window[0] = now_s() + warmup;
        window[1] = window[0] + seconds;
        for (int k = 0; k < started; k++)
            if (write_all(go[1], window, sizeof window) != 0)
                rc = die("pipe", "cannot start the children");
    }
    close(go[1]); /* children still waiting (after an error) read EOF and stop */

    long images = 0, counted = 0, maxrss = 0;
    double cpu = 0, sum0 = NAN;
    for (int k = 0; k < started; k++) {
        report rep;
        if (read_all(back[k], &rep, sizeof rep) != 0) {
            if (rc == 0)
                rc = die("a child", "exited without a report");
        } else if (!rep.ok) {
            if (rc == 0)
                rc = die("a child", "failed (above)");
        } else {
            images += rep.images;
            counted += rep.counted;
            cpu += rep.cpu;
            if (rep.maxrss_kib > maxrss)
                maxrss = rep.maxrss_kib;
            if (isnan(sum0))
                sum0 = rep.output_sum;
            else if (rep.output_sum != sum0 && rc == 0)
                rc = die("children", "two children got different outputs for the same image");
        }
        close(back[k]);
    }
    for (int k = 0; k < started; k++) {
        int status = 0;
        while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
            ;
        if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && rc == 0)
            rc = die("a child", "exited with an error");
    }
    free(jpeg);
    if (rc == 0 && (images == 0 || counted == 0))
        rc = die("SECONDS", "no image finished in the window: raise it");
    if (rc)
        return rc;
    printf("images_per_s=%.2f cpu_ms_per_image=%.2f ms_per_image=%.2f peak_rss_kib=%ld images=%ld "
           "processes=%d threads=%d output_sum=%.6g\n",
           (double)images / seconds, cpu * 1e3 / (double)counted,
           seconds * procs * 1e3 / (double)images, maxrss, images, procs, threads, sum0);
    return 0;
}
