/* families: what an estimator family adds to its model's run. For each
 * estimator named on the command line (defined in INFERD_ESTIMATORS, as
 * `inferd serve` reads it), times, in the same process and alternating one
 * by one:
 *   raw        the plain loop over the same library calls: the image's input
 *              contract planned and filled (inferd_contract_plan/_fill, the
 *              same contract the estimator fitted) and inferd_model_run on
 *              the same model, through the same onnxruntime backend;
 *              For a "pipeline" estimator, raw is the same pipeline file run
 *              in-process: push the image, pull its result.
 *   estimator  inferd_estimators_submit of the same decoded image, one in
 *              flight, waiting for its completion: the batcher's hand-over,
 *              the same preparation and run, and the family's
 *              post-processing (decode, NMS, mapping back, the result value).
 * The difference is the family's post-processing and the batcher's
 * hand-over; the table gives medians (ms per image) and the ratio.
 *
 *   INFERD_ESTIMATORS='{"v8": {"type": "detect", "modelPath": ..., "input": {...}}}' \
 *     families IMAGE RUNS NAME...
 *
 * The raw side opens the model with the estimator's modelPath and the
 * contract of its `input` settings (fitted to the model as the estimator
 * does). Exit status: 0, 2 on an error.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_NAME "families"
#include "bench_args.h"
#include "estimators/estimators.h"
#include "inferd/config.h"
#include "inferd/contract.h"
#include "inferd/image.h"
#include "inferd/log.h"
#include "inferd/pipeline.h"
#include "inferd/registry.h"

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    inferd_value *result;
    inferd_error err;
} waiter;

static void on_done(void *ctx, size_t index, inferd_value *result, const inferd_error *err,
                    const inferd_estimate_timing *t)
{
    (void)index;
    (void)t;
    waiter *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->result = result;
    if (!result)
        w->err = *err;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

/* The raw side of one estimator: its model and fitted contract, or (type
 * pipeline) its pipeline, run in-process. */
typedef struct raw {
    inferd_model *model;
    inferd_input_contract c;
    size_t n_out;
    inferd_pipeline *pipe;
} raw;

static int raw_open(inferd_registry *reg, const inferd_value *settings, raw *r)
{
    inferd_error err = {0};
    const char *type = inferd_value_string_or(inferd_value_object_get(settings, "type"), "");
    if (strcmp(type, "pipeline") == 0) {
        const char *file =
            inferd_value_string_or(inferd_value_object_get(settings, "pipeline"), "");
        if (inferd_pipeline_load(reg, file, &r->pipe, &err) != INFERD_OK ||
            inferd_pipeline_start(r->pipe, &err) != INFERD_OK)
            return die(file, err.message);
        return 0;
    }
    const char *path = inferd_value_string_or(inferd_value_object_get(settings, "modelPath"), "");
    const inferd_prop_spec specs[] = {
        {.name = "input", .type = INFERD_PROP_TYPE_OBJECT, .fields = inferd_contract_props(),
         .description = "the contract"},
        INFERD_PROP_END,
    };
    inferd_value *doc = inferd_value_object();
    inferd_value_object_set(doc, "input",
                            inferd_value_copy(inferd_value_object_get(settings, "input")), NULL);
    if (!inferd_value_object_get(doc, "input"))
        inferd_value_object_set(doc, "input", inferd_value_object(), NULL);
    inferd_props *p = NULL;
    inferd_tensor_info in;
    inferd_status st = inferd_props_validate(specs, "raw", doc, &p, &err);
    if (st == INFERD_OK)
        st = inferd_contract_from_value(inferd_props_get(p, "input"), &r->c, &err);
    inferd_props_free(p);
    inferd_value_free(doc);
    if (st == INFERD_OK)
        st = inferd_registry_model_open(reg, "onnxruntime", path, NULL, &r->model, &err);
    if (st == INFERD_OK)
        st = inferd_model_io(r->model, 0, 0, &in, &err);
    if (st == INFERD_OK)
        st = inferd_contract_fit(&r->c, path, in.dtype, in.ndim, in.shape, &err);
    if (st != INFERD_OK)
        return die(path, err.message);
    r->n_out = inferd_model_io_count(r->model, 1);
    return 0;
}

/* One image through the pipeline in-process: push it, pull its result; ms. */
static double pipe_once(const raw *r, const inferd_image *img, int *fail)
{
    double t0 = now_s();
    inferd_error err = {0};
    inferd_image *copy = NULL;
    inferd_buffer *buf = inferd_buffer_new(), *res = NULL;
    inferd_status st = inferd_image_new(img->format, img->width, img->height, &copy, &err);
    if (st == INFERD_OK) {
        memcpy(copy->data, img->data, img->stride * img->height);
        st = inferd_buffer_set_image(buf, copy, &err);
    }
    if (st == INFERD_OK)
        st = inferd_pipeline_push(r->pipe, NULL, buf, NULL, -1, &err);
    else
        inferd_buffer_unref(buf);
    if (st == INFERD_OK)
        st = inferd_pipeline_pull(r->pipe, NULL, 60000, &res, &err);
    double ms = (now_s() - t0) * 1e3;
    if (st != INFERD_OK || !res || inferd_buffer_error(res)) {
        fprintf(stderr, BENCH_NAME ": pipeline run: %s\n",
                st != INFERD_OK ? err.message : res ? inferd_buffer_error(res)->message : "end");
        *fail = 1;
    }
    inferd_buffer_unref(res);
    return ms;
}

/* One raw image: plan, fill a batch-1 input, run; ms. */
static double raw_once(const raw *r, const inferd_image *img, int *fail)
{
    if (r->pipe)
        return pipe_once(r, img, fail);
    double t0 = now_s();
    inferd_error err = {0};
    inferd_geometry g;
    inferd_tensor *in = NULL, *out[4] = {0};
    size_t C = r->c.order == INFERD_PIXEL_GRAY8 ? 1 : 3;
    inferd_status st = inferd_contract_plan(&r->c, 0, 0, img->width, img->height, &g, &err);
    if (st == INFERD_OK) {
        int64_t shape[4] = {1, (int64_t)C, g.height, g.width};
        if (r->c.layout == INFERD_LAYOUT_NHWC)
            shape[1] = g.height, shape[2] = g.width, shape[3] = (int64_t)C;
        st = inferd_tensor_new(r->c.dtype, 4, shape, &in, &err);
    }
    if (st == INFERD_OK)
        st = inferd_contract_fill(&r->c, img, &g, in->data, &err);
    if (st == INFERD_OK)
        st = inferd_model_run(r->model, (const inferd_tensor *const *)&in, 1, out,
                              r->n_out < 4 ? r->n_out : 4, &err);
    double ms = (now_s() - t0) * 1e3;
    for (size_t j = 0; j < 4; j++)
        inferd_tensor_free(out[j]);
    inferd_tensor_free(in);
    if (st != INFERD_OK) {
        fprintf(stderr, BENCH_NAME ": raw run: %s\n", err.message);
        *fail = 1;
    }
    return ms;
}

static double estimator_once(inferd_estimators *est, size_t i, const inferd_image *img,
                             int *fail)
{
    waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    inferd_error err = {0};
    inferd_estimate_input in = {0};
    double t0 = now_s();
    if (inferd_image_new(img->format, img->width, img->height, &in.image, &err) == INFERD_OK)
        memcpy(in.image->data, img->data, img->stride * img->height);
    if (!in.image ||
        inferd_estimators_submit(est, i, &in, 1, NULL, on_done, &w, &err) != INFERD_OK) {
        inferd_image_free(in.image);
        fprintf(stderr, BENCH_NAME ": submit: %s\n", err.message);
        *fail = 1;
        return 0;
    }
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    double ms = (now_s() - t0) * 1e3;
    if (!w.result) {
        fprintf(stderr, BENCH_NAME ": estimate: %s\n", w.err.message);
        *fail = 1;
    }
    inferd_value_free(w.result);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return ms;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return die("usage", "families IMAGE RUNS NAME... (names defined in INFERD_ESTIMATORS)");
    void *file = NULL;
    size_t len = 0;
    int rc = read_file(argv[1], &file, &len);
    if (rc)
        return rc;
    long runs = strtol(argv[2], NULL, 10);
    if (runs < 3 || runs > 100000)
        return die("RUNS", "between 3 and 100000");
    inferd_log_configure("warn", NULL);
    inferd_error err = {0};
    inferd_config *cfg = NULL;
    inferd_registry *reg = NULL;
    inferd_estimators *est = NULL;
    inferd_image *img = NULL;
    const inferd_value *all = NULL;
    if (inferd_config_load(NULL, NULL, &cfg, &err) != INFERD_OK ||
        inferd_registry_new(&reg, &err) != INFERD_OK ||
        inferd_registry_load_config(reg, cfg, &err) != INFERD_OK ||
        inferd_estimators_new(reg, cfg, &est, &err) != INFERD_OK ||
        inferd_config_get(cfg, "estimators", &all, &err) != INFERD_OK ||
        inferd_image_decode(file, len, INFERD_PIXEL_RGB8, INFERD_IMAGE_DEFAULT_MAX_PIXELS, &img,
                            &err) != INFERD_OK)
        return die("set-up", err.message);
    printf("%s, %ux%u; %ld runs each, alternating raw and estimator, medians\n\n", argv[1],
           img->width, img->height, runs);
    printf("| estimator (family)        | raw ms (contract + model run; a pipeline in-process) "
           "| estimator ms | post-processing + hand-over ms | ratio |\n");
    printf("|---------------------------|------------------------------------------------------"
           "|--------------|--------------------------------|-------|\n");
    double *a = calloc((size_t)runs, sizeof *a), *b = calloc((size_t)runs, sizeof *b);
    int fail = 0;
    for (int k = 3; k < argc && !fail; k++) {
        long i = inferd_estimators_find(est, argv[k]);
        if (i < 0)
            return die(argv[k], "no such estimator (define it in INFERD_ESTIMATORS)");
        raw r = {0};
        if ((rc = raw_open(reg, inferd_value_object_get(all, argv[k]), &r)))
            return rc;
        for (long n = 0; n < 3; n++) /* warm both */
            raw_once(&r, img, &fail), estimator_once(est, (size_t)i, img, &fail);
        for (long n = 0; n < runs && !fail; n++) {
            a[n] = raw_once(&r, img, &fail);
            b[n] = estimator_once(est, (size_t)i, img, &fail);
        }
        inferd_model_close(r.model);
        if (r.pipe) {
            inferd_pipeline_stop(r.pipe, false);
            inferd_pipeline_free(r.pipe);
        }
        double ma = median(a, (size_t)runs), mb = median(b, (size_t)runs);
        inferd_value *d = inferd_estimators_describe(est, (size_t)i);
        char label[64];
        snprintf(label, sizeof label, "%s (%s)", argv[k],
                 inferd_value_string_or(inferd_value_object_get(d, "component"), "?"));
        inferd_value_free(d);
        printf("| %-25s | %52.3f | %12.3f | %30.3f | %5.3f |\n", label, ma, mb, mb - ma,
               ma > 0 ? mb / ma : 0);
    }
    free(a);
    free(b);
    inferd_image_free(img);
    inferd_estimators_free(est);
    inferd_registry_free(reg);
    inferd_config_free(cfg);
    free(file);
    return fail ? 2 : 0;
}
