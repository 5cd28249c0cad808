/* onnxruntime_run: what the backend layer costs. For each default model at
 * 256x256, times inferd_model_run (through the built-in onnxruntime plugin,
 * loaded from the built-in folder as the daemon loads it) against a raw
 * ONNX Runtime Run on its own session of the same model, same input and the
 * same session settings (the backend's defaults: all graph optimisations,
 * ONNX Runtime's default thread counts), and prints ms per run and runs/s.
 *
 *   onnxruntime_run MODELS_DIR [RUNS]
 *
 * Both sides wrap the caller's input without a copy and hand back ORT's
 * output memory; what differs is the layer: the host's checks, the backend's
 * input checks, and an inferd_tensor (with its name) around each output.
 * Runs alternate one by one so that drift and other load hit both sides
 * alike, and the table shows medians (robust to the odd slow run). A
 * second table repeats it on an 8x8 input, where the run itself is cheap and
 * the layer's fixed cost is what differs.
 * Exit status: 0, or 2 on an error.
 */
#include "raw_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/config.h"
#include "inferd/log.h"
#include "inferd/registry.h"

#define SIDE 256
#define WARMUP 10

static const char *const models[] = {"dot_density.onnx", "colour_classifier.onnx",
                                     "scratch_segmenter.onnx"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int die(const char *what, const char *msg)
{
    fprintf(stderr, "onnxruntime_run: %s: %s\n", what, msg);
    return 2;
}

/* One raw run: wrap the input, run, touch the output, release both. */
static int raw_run(const raw_session *r, const inferd_tensor *x)
{
    const OrtApi *api = r->api;
    OrtValue *in = NULL, *out = NULL;
    void *data = NULL;
    const char *in_names[] = {r->in_name}, *out_names[] = {r->out_name};
    int bad = raw_failed(api, api->CreateTensorWithDataAsOrtValue(
                                  r->cpu, x->data, x->nbytes, x->shape, x->ndim,
                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in), "input") ||
              raw_failed(api, api->Run(r->session, NULL, in_names, (const OrtValue *const *)&in, 1,
                                       out_names, 1, &out), "run") ||
              raw_failed(api, api->GetTensorMutableData(out, &data), "output");
    if (in)
        api->ReleaseValue(in);
    if (out)
        api->ReleaseValue(out);
    return bad;
}

static int inferd_run(inferd_model *m, const inferd_tensor *x)
{
    inferd_tensor *out = NULL;
    inferd_error err = {0};
    if (inferd_model_run(m, &x, 1, &out, 1, &err) != INFERD_OK)
        return die("inferd_model_run", err.message);
    inferd_tensor_free(out);
    return 0;
}

/* A [1,3,side,side] image: a dark noisy field with a few bright squares. */
static inferd_tensor *test_image(int side)
{
    const int64_t shape[] = {1, 3, side, side};
    inferd_tensor *t = NULL;
    if (inferd_tensor_new(INFERD_DTYPE_FLOAT32, 4, shape, &t, NULL) != INFERD_OK)
        return NULL;
    float *px = t->data;
    uint32_t seed = 12345;
    for (size_t i = 0; i < inferd_tensor_count(t); i++) {
        seed = seed * 1664525u + 1013904223u;
        size_t x = i % (size_t)side, y = (i / (size_t)side) % (size_t)side;
        float v = 0.05f + (float)(seed >> 24) / 2550.0f;
        px[i] = (x % 40 < 6 && y % 40 < 6) ? 0.9f : v;
    }
    return t;
}

typedef struct row {
    double inferd_ms, raw_ms; /* median per run */
} row;

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Times `runs` runs of each side, alternating run by run, on a [1,3,side,side] image. */
static int bench_model(inferd_registry *reg, const char *path, int side, int runs, row *out)
{
    char props_json[4200];
    snprintf(props_json, sizeof props_json, "{\"modelPath\": \"%s\"}", path);
    inferd_value *props = NULL;
    inferd_instance *inst = NULL;
    inferd_model *m = NULL;
    inferd_error err = {0};
    if (inferd_value_from_json(props_json, strlen(props_json), 0, &props, &err) != INFERD_OK ||
        inferd_instance_create(reg, "tensor_infer", "bench", props, &inst, &err) != INFERD_OK ||
        inferd_model_open(inst, "onnxruntime", path, NULL, 0, NULL, &m, &err) != INFERD_OK) {
        inferd_value_free(props);
        inferd_instance_destroy(inst);
        return die(path, err.message);
    }
    inferd_value_free(props);
    raw_session r = {0};
    inferd_tensor *x = test_image(side);
    double *t_inferd = calloc((size_t)runs, sizeof *t_inferd);
    double *t_raw = calloc((size_t)runs, sizeof *t_raw);
    int rc = !x || !t_inferd || !t_raw || raw_open(&r, path) ? 2 : 0;
    for (int i = 0; i < WARMUP && rc == 0; i++) /* arenas, caches */
        rc = inferd_run(m, x) || raw_run(&r, x);
    for (int i = 0; i < runs && rc == 0; i++) {
        double t0 = now_ms();
        rc = inferd_run(m, x);
        double t1 = now_ms();
        rc = rc || raw_run(&r, x);
        t_raw[i] = now_ms() - t1;
        t_inferd[i] = t1 - t0;
    }
    if (rc == 0) {
        out->inferd_ms = median(t_inferd, runs);
        out->raw_ms = median(t_raw, runs);
    }
    free(t_inferd);
    free(t_raw);
    if (r.api)
        raw_close(&r);
    inferd_tensor_free(x);
    inferd_model_close(m);
    inferd_instance_destroy(inst);
    return rc ? 2 : 0;
}

static int table(inferd_registry *reg, const char *dir, int side, int runs)
{
    printf("[1,3,%d,%d] float input, median of %d runs per side\n\n", side, side, runs);
    printf("| model                  | inferd ms/run | inferd runs/s | raw ORT ms/run | raw runs/s "
           "| overhead us/run |\n");
    printf("|------------------------|---------------|---------------|----------------|------------"
           "|-----------------|\n");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, models[i]);
        row r;
        int rc = bench_model(reg, path, side, runs, &r);
        if (rc)
            return rc;
        printf("| %-22s | %13.3f | %13.1f | %14.3f | %10.1f | %15.1f |\n", models[i],
               r.inferd_ms, 1e3 / r.inferd_ms, r.raw_ms, 1e3 / r.raw_ms,
               (r.inferd_ms - r.raw_ms) * 1e3);
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: onnxruntime_run MODELS_DIR [RUNS]\n");
        return 2;
    }
    int runs = argc == 3 ? atoi(argv[2]) : 200;
    if (runs < 1)
        runs = 1;
    inferd_log_configure("warn", NULL);
    inferd_registry *reg = NULL;
    inferd_error err = {0};
    if (inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_load_builtins(reg, &err) != INFERD_OK) {
        inferd_registry_free(reg);
        return die("loading the built-in plugins", err.message);
    }

    printf("ONNX Runtime %s, the backend's default session settings\n\n",
           OrtGetApiBase()->GetVersionString());
    /* The size asked for, then a tiny input, where the layer's fixed cost shows. */
    int rc = table(reg, argv[1], SIDE, runs);
    if (rc == 0)
        rc = table(reg, argv[1], 8, runs * 5);
    inferd_registry_free(reg);
    return rc;
}
