/* model_accuracy: runs the three default models over the synthetic images
 * and prints, per image, truth against prediction, then the totals.
 *
 *   model_accuracy MODELS_DIR DATA_DIR [--threads N] [--repeat R]
 *
 * MODELS_DIR holds what models/generate.py writes; DATA_DIR what
 * scripts/gen_images.py writes (with truth.json). Timings are the mean
 * ONNX Runtime Run() time over R runs (default 5) after one warm-up run, on
 * N intra-op threads (default 1); decoding is timed separately.
 * Exit status: 0 if every prediction passes the smoke test's criteria, 1 if
 * not, 2 on an error.
 */
#include <time.h>

#include "model_helpers.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct bench {
    mh_ort ort;
    const char *data_dir;
    int repeat;
    double decode_ms, infer_ms; /* totals */
    int images;
} bench;

static int die(const char *msg)
{
    fprintf(stderr, "model_accuracy: %s\n", msg);
    return 2;
}

/* Decodes item, runs session `repeat` times (after a warm-up), keeps the last output. */
static int timed_run(bench *b, OrtSession *s, const mh_item *it, const char *output,
                     mh_tensor *out, double *decode_ms, double *infer_ms, char *msg, size_t size)
{
    float *x = NULL;
    uint32_t w, h;
    double t0 = now_ms();
    if (mh_load_image(b->data_dir, it->file, &x, &w, &h, msg, size))
        return -1;
    *decode_ms = now_ms() - t0;
    int64_t shape[4] = {1, 3, h, w};
    if (mh_run(&b->ort, s, "image", x, shape, 4, output, out, msg, size)) {
        free(x);
        return -1;
    }
    double total = 0;
    for (int r = 0; r < b->repeat; r++) {
        mh_tensor_free(out);
        t0 = now_ms();
        int rc = mh_run(&b->ort, s, "image", x, shape, 4, output, out, msg, size);
        total += now_ms() - t0;
        if (rc) {
            free(x);
            return -1;
        }
    }
    free(x);
    *infer_ms = total / b->repeat;
    b->decode_ms += *decode_ms;
    b->infer_ms += *infer_ms;
    b->images++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *models_dir = NULL;
    bench b = {.repeat = 5};
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            b.repeat = atoi(argv[++i]);
        else if (models_dir == NULL)
            models_dir = argv[i];
        else if (b.data_dir == NULL)
            b.data_dir = argv[i];
        else
            models_dir = NULL, i = argc;
    }
    if (models_dir == NULL || b.data_dir == NULL || threads < 1 || b.repeat < 1) {
        fprintf(stderr, "usage: %s MODELS_DIR DATA_DIR [--threads N] [--repeat R]\n", argv[0]);
        return 2;
    }

    char msg[MH_MSG];
    mh_truth truth;
    char labels[MH_MAX_LABELS][32];
    OrtSession *dots = NULL, *colours = NULL, *scratches = NULL;
    int nlabels;
    if (mh_ort_init(&b.ort, threads, msg, sizeof msg) ||
        mh_session_open(&b.ort, models_dir, MH_DOT_MODEL, &dots, msg, sizeof msg) ||
        mh_session_open(&b.ort, models_dir, MH_COLOUR_MODEL, &colours, msg, sizeof msg) ||
        mh_session_open(&b.ort, models_dir, MH_SCRATCH_MODEL, &scratches, msg, sizeof msg) ||
        (nlabels = mh_read_labels(models_dir, MH_COLOUR_LABELS, labels, MH_MAX_LABELS, msg,
                                  sizeof msg)) < 0 ||
        mh_truth_load(b.data_dir, &truth, msg, sizeof msg))
        return die(msg);

    int failures = 0;
    printf("ONNX Runtime %s, %d intra-op thread(s), mean of %d runs\n\n",
           OrtGetApiBase()->GetVersionString(), threads, b.repeat);

    /* --- counting --- */
    printf("%-18s %9s %5s %9s %8s %5s %6s %7s %7s\n", "dot image", "size", "true", "predicted",
           "error", "peaks", "missed", "dec ms", "run ms");
    double abs_err_sum = 0, dec, run, dot_ms = 0;
    int counted = 0;
    for (size_t i = 0; i < truth.ndots; i++) {
        const mh_item *it = &truth.dots[i];
        mh_tensor d;
        mh_dot_eval ev;
        if (timed_run(&b, dots, it, "density", &d, &dec, &run, msg, sizeof msg) ||
            mh_eval_dots(&d, it, &ev, msg, sizeof msg))
            return die(msg);
        mh_tensor_free(&d);
        double rel = it->count ? 100.0 * (ev.sum - it->count) / it->count : 0.0;
        double tol = it->count ? 0.10 * it->count : 0.5;
        bool ok = fabs(ev.sum - it->count) <= tol && ev.missed == 0 &&
                  (!ev.sparse || ev.peaks == (size_t)it->count);
        failures += !ok;
        if (it->count) {
            abs_err_sum += fabs(rel);
            counted++;
        }
        dot_ms += run;
        char size[32];
        snprintf(size, sizeof size, "%dx%d", it->width, it->height);
        printf("%-18s %9s %5d %9.3f %+7.2f%% %5zu %6d %7.2f %7.2f%s\n", it->file, size, it->count,
               ev.sum, rel, ev.peaks, ev.missed, dec, run, ok ? "" : "  FAIL");
    }
    printf("counting: mean |error| %.3f%% over %d images with dots; %.2f ms per image\n\n",
           counted ? abs_err_sum / counted : 0.0, counted, dot_ms / (double)truth.ndots);

    /* --- colours --- */
    printf("%-22s %-8s %-9s %6s %6s %7s %7s\n", "colour image", "true", "predicted", "p",
           "share", "dec ms", "run ms");
    int right = 0;
    double colour_ms = 0;
    for (size_t i = 0; i < truth.ncolours; i++) {
        const mh_item *it = &truth.colours[i];
        mh_tensor p;
        mh_colour_eval ev;
        if (timed_run(&b, colours, it, "probabilities", &p, &dec, &run, msg, sizeof msg) ||
            mh_eval_colour(&p, nlabels, it, &ev, msg, sizeof msg))
            return die(msg);
        mh_tensor_free(&p);
        bool ok = strcmp(labels[ev.best], it->label) == 0 && fabsf(ev.sum - 1.0f) < 1e-3f;
        right += ok;
        failures += !ok;
        colour_ms += run;
        printf("%-22s %-8s %-9s %6.3f %6.3f %7.2f %7.2f%s\n", it->file, it->label, labels[ev.best],
               (double)ev.prob, it->fraction, dec, run, ok ? "" : "  FAIL");
    }
    printf("colours: accuracy %d/%zu = %.1f%%; %.2f ms per image\n\n", right, truth.ncolours,
           100.0 * right / (double)truth.ncolours, colour_ms / (double)truth.ncolours);

    /* --- scratches --- */
    printf("%-20s %9s %5s %9s %5s %7s %7s %7s\n", "scratch image", "size", "true", "predicted",
           "stray", "unfound", "dec ms", "run ms");
    int exact = 0;
    double scratch_ms = 0;
    for (size_t i = 0; i < truth.nscratches; i++) {
        const mh_item *it = &truth.scratches[i];
        mh_tensor m;
        mh_scratch_eval ev;
        if (timed_run(&b, scratches, it, "mask", &m, &dec, &run, msg, sizeof msg) ||
            mh_eval_scratches(&m, it, &ev, msg, sizeof msg))
            return die(msg);
        mh_tensor_free(&m);
        bool ok = ev.components == it->count && ev.stray == 0 && ev.unfound == 0;
        exact += ev.components == it->count;
        failures += !ok;
        scratch_ms += run;
        char size[32];
        snprintf(size, sizeof size, "%dx%d", it->width, it->height);
        printf("%-20s %9s %5d %9d %5d %7d %7.2f %7.2f%s\n", it->file, size, it->count,
               ev.components, ev.stray, ev.unfound, dec, run, ok ? "" : "  FAIL");
    }
    printf("scratches: exact count %d/%zu = %.1f%%; %.2f ms per image\n\n", exact,
           truth.nscratches, 100.0 * exact / (double)truth.nscratches,
           scratch_ms / (double)truth.nscratches);

    printf("all: %d images, %.2f ms decode + %.2f ms run per image; %d failing\n", b.images,
           b.decode_ms / b.images, b.infer_ms / b.images, failures);

    b.ort.api->ReleaseSession(dots);
    b.ort.api->ReleaseSession(colours);
    b.ort.api->ReleaseSession(scratches);
    mh_ort_close(&b.ort);
    mh_truth_free(&truth);
    return failures ? 1 : 0;
}
