/* people_count_onnx: the C counterpart of the seed's estimator replacement
 * plugin (people_count_onnx_plugin.py).
 *
 * One estimator component, onnxPeopleCountEstimator, whose broker name is
 * peopleCountEstimator: once the plugin is activated it serves that name in
 * place of the built-in one, with the same request options (targets T1|T2)
 * and the same response ({"count": N, "points": [{"x", "y"}...]} for T1,
 * {"count": N} for T2). Its algorithm is the seed's, as the seed writes it:
 * count = int(sum of the density map), never negative (with a float
 * tolerance: see postprocess below); the T1 points are the `count` highest
 * cells of the map (np.argsort(map)[-count:], weakest of them first), scaled
 * from the map to the processed image (x = int(xMap / mapW * imgW)) and
 * shifted by the detect area. Each image runs on its own, as in the seed.
 * Its model, people_density.onnx (a prop, modelName), lies beside the
 * plugin's own .so (the seed's Path(__file__).parent), found with dladdr.
 *
 * Build it out of the tree (see README.md):
 *   cc -std=c17 -O2 -fPIC -shared $(pkg-config --cflags inferd-plugin) \
 *      people_count_onnx.c -o people_count_onnx.so
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <inferd/plugin.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const targets[] = {"T1", "T2", NULL};
static const char *const device_classes[] = {"cpu", "gpu", NULL};

/* The built-in peopleCountEstimator's request options: a replacement takes the same. */
static const inferd_prop_spec options[] = {
    INFERD_PROP_ENUM("targets", "T1: the count and the points, T2: the count only", "T1",
                     targets),
    INFERD_PROP_END,
};
static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("modelName", "the model file, in the plugin's own folder",
                       "people_density.onnx"),
    INFERD_PROP_ENUM("deviceClass", "cpu or gpu (the config's 'global' is the daemon's)", "cpu",
                     device_classes),
    INFERD_PROP_UINT("gpuDeviceId", "the GPU on deviceClass gpu", 0, 0, 1024),
    INFERD_PROP_END,
};

static inferd_status pc_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    /* The model lies beside this plugin's own file. */
    Dl_info info;
    if (!dladdr((void *)pc_init, &info) || !info.dli_fname || !strrchr(info.dli_fname, '/'))
        return inferd_error_set(err, INFERD_EINTERNAL, "cannot find the plugin's own folder");
    char path[4096];
    const char *so = info.dli_fname;
    snprintf(path, sizeof path, "%.*s/%s", (int)(strrchr(so, '/') - so), so,
             inferd_props_string(p, "modelName"));
    /* The seed's providers: CUDA (with its options) then CPU, or CPU only. */
    bool gpu = strcmp(inferd_props_string(p, "deviceClass"), "gpu") == 0;
    char json[256];
    snprintf(json, sizeof json,
             gpu ? "{\"provider\": \"cuda\", \"device_id\": %lld, \"gpu_mem_limit\": 2147483648, "
                   "\"arena_extend_strategy\": \"kNextPowerOfTwo\", "
                   "\"cudnn_conv_algo_search\": \"EXHAUSTIVE\"}"
                 : "{\"provider\": \"cpu\"}",
             (long long)inferd_props_int(p, "gpuDeviceId"));
    inferd_value *opts = NULL;
    inferd_model *model = NULL;
    inferd_status st = inferd_value_from_json(json, strlen(json), 0, &opts, err);
    if (st == INFERD_OK)
        st = inferd_model_open(self, "onnxruntime", path, NULL, 0, opts, &model, err);
    inferd_value_free(opts);
    if (st == INFERD_OK && (inferd_model_io_count(model, 0) != 1 ||
                            inferd_model_io_count(model, 1) != 1)) {
        inferd_model_close(model);
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "%s: expected one input (the image) and one output (the density "
                              "map)", path);
    }
    if (st == INFERD_OK)
        inferd_instance_set_state(self, model);
    return st;
}

static void pc_deinit(inferd_instance *self) { inferd_model_close(inferd_instance_state(self)); }

typedef struct cell {
    float v;
    size_t idx;
} cell;

/* np.argsort order: ascending values (ties: the lower index first). */
static int ascending(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The seed's _postprocessModelOutput and extractCoordinatesFromDensityMap. */
static inferd_status postprocess(const inferd_tensor *map, const inferd_rect *area, bool t1,
                                 inferd_value *res, inferd_error *err)
{
    size_t mh = (size_t)map->shape[map->ndim - 2], mw = (size_t)map->shape[map->ndim - 1];
    size_t cells = mh * mw;
    const float *m = map->data;
    double sum = 0;
    for (size_t i = 0; i < cells; i++)
        sum += m[i];
    /* int() truncates, max(0, count) keeps it non-negative. Within 1e-4 under
     * an integer counts as it: a map of 12 dots sums to 11.9999995 in float,
     * which the seed's bare int() would count as 11. */
    int64_t count = sum > 0 ? (int64_t)(sum + 1e-4) : 0;
    inferd_status st = inferd_value_object_set(res, "count", inferd_value_int(count), err);
    if (st != INFERD_OK || !t1)
        return st;
    cell *sorted = malloc((cells ? cells : 1) * sizeof *sorted);
    inferd_value *points = inferd_value_array();
    if (!sorted || !points) {
        free(sorted);
        inferd_value_free(points);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cells; i++)
        sorted[i] = (cell){m[i], i};
    qsort(sorted, cells, sizeof *sorted, ascending);
    size_t keep = (uint64_t)count < cells ? (size_t)count : cells;
    for (size_t k = cells - keep; k < cells && st == INFERD_OK; k++) {
        /* Scaled from the map to the processed image, then shifted by the area. */
        double x_map = (double)(sorted[k].idx % mw), y_map = (double)(sorted[k].idx / mw);
        int64_t x = area->x + (int64_t)(x_map / (double)mw * (double)area->width);
        int64_t y = area->y + (int64_t)(y_map / (double)mh * (double)area->height);
        inferd_value *pt = inferd_value_object();
        st = pt ? inferd_value_object_set(pt, "x", inferd_value_int(x), err)
                : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        if (st == INFERD_OK)
            st = inferd_value_object_set(pt, "y", inferd_value_int(y), err);
        if (st == INFERD_OK)
            st = inferd_value_array_push(points, pt, err);
        else
            inferd_value_free(pt);
    }
    free(sorted);
    if (st != INFERD_OK) {
        inferd_value_free(points);
        return st;
    }
    return inferd_value_object_set(res, "points", points, err);
}

/* One image: crop, [1,3,h,w] floats in [0,1], run, post-process. */
static inferd_status estimate(inferd_model *model, inferd_estimate *item, inferd_value **out,
                              inferd_error *err)
{
    const inferd_image *img = inferd_estimate_image(item);
    inferd_rect a = {0, 0, img->width, img->height};
    inferd_estimate_area(item, &a); /* processedImage = vlImage.crop(detectArea) */
    int64_t shape[4] = {1, 3, a.height, a.width};
    inferd_tensor *in = NULL, *map = NULL;
    inferd_status st = inferd_tensor_new(INFERD_DTYPE_FLOAT32, 4, shape, &in, err);
    if (st != INFERD_OK)
        return st;
    float *f = in->data;
    size_t plane = (size_t)(a.width * a.height);
    for (int64_t y = 0; y < a.height; y++)
        for (int64_t x = 0; x < a.width; x++)
            for (size_t c = 0; c < 3; c++)
                f[c * plane + (size_t)(y * a.width + x)] =
                    img->data[(size_t)(a.y + y) * img->stride + (size_t)(a.x + x) * 3 + c] / 255.0f;
    st = inferd_model_run(model, (const inferd_tensor *const *)&in, 1, &map, 1, err);
    inferd_tensor_free(in);
    if (st == INFERD_OK && (map->dtype != INFERD_DTYPE_FLOAT32 || map->ndim < 2))
        st = inferd_error_set(err, INFERD_EUNSUPPORTED, "the model's output is not a float "
                              "density map");
    inferd_value *res = st == INFERD_OK ? inferd_value_object() : NULL;
    if (st == INFERD_OK && !res)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK) {
        bool t1 = strcmp(inferd_props_string(inferd_estimate_options(item), "targets"), "T1") == 0;
        st = postprocess(map, &a, t1, res, err);
    }
    inferd_tensor_free(map);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *out = res;
    return INFERD_OK;
}

/* The seed's estimateBatch: every image of the batch, each completed once. */
static inferd_status pc_estimate_batch(inferd_instance *self, inferd_estimate *const *items,
                                       size_t n, inferd_error *err)
{
    (void)err; /* each item is completed here with its own error: the batch never fails */
    for (size_t i = 0; i < n; i++) {
        inferd_value *result = NULL;
        inferd_error e = {0};
        if (estimate(inferd_instance_state(self), items[i], &result, &e) == INFERD_OK)
            inferd_estimate_done(items[i], result, NULL);
        else
            inferd_estimate_done(items[i], NULL, &e);
    }
    return INFERD_OK;
}

INFERD_PLUGIN("people_count_onnx", "1.0.0",
              INFERD_ESTIMATOR("onnxPeopleCountEstimator", "peopleCountEstimator", props, options,
                               pc_init, pc_estimate_batch, pc_deinit))
