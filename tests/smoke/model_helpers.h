/* model_helpers.h: what the model smoke test (tests/smoke/test_models.c) and
 * the accuracy benchmark (bench/model_accuracy.c) share: ONNX Runtime through
 * its C API, images to float NCHW through inferd_image_decode, the ground
 * truth of scripts/gen_images.py (truth.json, read with jansson), and the
 * checks that turn a model output into a prediction.
 *
 * Header-only (static inline): each program includes it once. Functions that
 * can fail return 0 on success and -1 with a message in msg.
 */
#ifndef INFERD_MODEL_HELPERS_H
#define INFERD_MODEL_HELPERS_H

#include <jansson.h>
#include <math.h>
#include <onnxruntime_c_api.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/image.h"

#define MH_MSG 1024

/* The model files of models/generate.py and what they are checked against. */
#define MH_DOT_MODEL "dot_density.onnx"
#define MH_COLOUR_MODEL "colour_classifier.onnx"
#define MH_COLOUR_LABELS "colour_classifier.labels"
#define MH_SCRATCH_MODEL "scratch_segmenter.onnx"
#define MH_DOT_STRIDE 4
#define MH_PEAK_THRESHOLD 0.05f   /* a density peak below this is noise */
#define MH_PEAK_SLACK 3.0         /* a peak within dot radius + 3 px is on the dot */
#define MH_SPARSE_SPACING 24.0    /* dots this far apart give one peak each */
#define MH_MASK_THRESHOLD 0.5f
#define MH_MIN_COMPONENT 10       /* smaller mask regions are ignored */
#define MH_MAX_LABELS 64

/* snprintf that returns the length it wanted (truncating is fine here). */
static inline int mh_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int mh_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Sets msg and returns -1. */
static inline int mh_fail(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int mh_fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* ORT's functions must have their status looked at: this drops one. */
static inline void mh_ort_ignore(const OrtApi *api, OrtStatus *st)
{
    if (st != NULL)
        api->ReleaseStatus(st);
}

/* --- ONNX Runtime ----------------------------------------------------------- */

/* ONNX Runtime 1.29 leaks 14 bytes inside CreateEnv (a bare CreateEnv +
 * ReleaseEnv shows it): LeakSanitizer, under INFERD_SANITIZE, must not blame
 * this program for it. LSan calls this hook if it exists; elsewhere it is
 * just an unused function. (Defined here: the header is included once a program.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libonnxruntime.so\n";
}

typedef struct mh_ort {
    const OrtApi *api;
    OrtEnv *env;
    OrtSessionOptions *opts;
    OrtMemoryInfo *cpu;
} mh_ort;

/* Turns an OrtStatus into 0 (NULL) or -1 with "what: message [code N]"; releases it. */
static inline int mh_ort_check(const OrtApi *api, OrtStatus *st, const char *what, char *msg,
                               size_t size)
{
    if (st == NULL)
        return 0;
    mh_format(msg, size, "%s: %s [ORT error code %d]", what, api->GetErrorMessage(st),
              (int)api->GetErrorCode(st));
    api->ReleaseStatus(st);
    return -1;
}

static inline void mh_ort_close(mh_ort *o)
{
    if (o->api == NULL)
        return;
    if (o->cpu)
        o->api->ReleaseMemoryInfo(o->cpu);
    if (o->opts)
        o->api->ReleaseSessionOptions(o->opts);
    if (o->env)
        o->api->ReleaseEnv(o->env);
    memset(o, 0, sizeof *o);
}

static inline int mh_ort_init(mh_ort *o, int threads, char *msg, size_t size)
{
    memset(o, 0, sizeof *o);
    const OrtApiBase *base = OrtGetApiBase();
    o->api = base ? base->GetApi(ORT_API_VERSION) : NULL;
    if (o->api == NULL)
        return mh_fail(msg, size, "ONNX Runtime %s does not offer API version %d",
                       base ? base->GetVersionString() : "?", ORT_API_VERSION);
    const OrtApi *api = o->api;
    if (mh_ort_check(api, api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "inferd-models", &o->env),
                     "CreateEnv", msg, size) ||
        mh_ort_check(api, api->CreateSessionOptions(&o->opts), "CreateSessionOptions", msg,
                     size) ||
        mh_ort_check(api, api->SetIntraOpNumThreads(o->opts, threads), "SetIntraOpNumThreads",
                     msg, size) ||
        mh_ort_check(api, api->SetInterOpNumThreads(o->opts, 1), "SetInterOpNumThreads", msg,
                     size) ||
        mh_ort_check(api, api->SetSessionGraphOptimizationLevel(o->opts, ORT_ENABLE_ALL),
                     "SetSessionGraphOptimizationLevel", msg, size) ||
        mh_ort_check(api, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &o->cpu),
                     "CreateCpuMemoryInfo", msg, size)) {
        mh_ort_close(o);
        return -1;
    }
    return 0;
}

/* Opens dir/name. */
static inline int mh_session_open(mh_ort *o, const char *dir, const char *name, OrtSession **out,
                                  char *msg, size_t size)
{
    char path[4096];
    *out = NULL;
    if (mh_format(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return mh_fail(msg, size, "path too long: %s/%s", dir, name);
    return mh_ort_check(o->api, o->api->CreateSession(o->env, path, o->opts, out), path, msg,
                        size);
}

/* A float tensor owned by the caller (free data with free()). */
typedef struct mh_tensor {
    float *data;
    int64_t shape[8];
    size_t ndim;
    size_t count;
} mh_tensor;

static inline void mh_tensor_free(mh_tensor *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Runs a session on one float input and copies out one float output. */
static inline int mh_run(mh_ort *o, OrtSession *session, const char *in_name, float *x,
                         const int64_t *shape, size_t ndim, const char *out_name, mh_tensor *out,
                         char *msg, size_t size)
{
    const OrtApi *api = o->api;
    OrtValue *input = NULL, *output = NULL;
    OrtTensorTypeAndShapeInfo *info = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    if (mh_ort_check(api,
                     api->CreateTensorWithDataAsOrtValue(o->cpu, x, count * sizeof(float), shape,
                                                         ndim, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                         &input),
                     "CreateTensorWithDataAsOrtValue", msg, size))
        goto done;
    const char *in_names[1] = {in_name};
    const char *out_names[1] = {out_name};
    const OrtValue *inputs[1] = {input};
    if (mh_ort_check(api, api->Run(session, NULL, in_names, inputs, 1, out_names, 1, &output),
                     "Run", msg, size))
        goto done;
    ONNXTensorElementDataType type;
    size_t dims;
    if (mh_ort_check(api, api->GetTensorTypeAndShape(output, &info), "GetTensorTypeAndShape",
                     msg, size) ||
        mh_ort_check(api, api->GetTensorElementType(info, &type), "GetTensorElementType", msg,
                     size) ||
        mh_ort_check(api, api->GetDimensionsCount(info, &dims), "GetDimensionsCount", msg,
                     size) ||
        mh_ort_check(api, api->GetTensorShapeElementCount(info, &out->count),
                     "GetTensorShapeElementCount", msg, size))
        goto done;
    if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || dims > 8) {
        mh_fail(msg, size, "output %s: element type %d, %zu dims; want float, at most 8",
                out_name, (int)type, dims);
        goto done;
    }
    out->ndim = dims;
    if (mh_ort_check(api, api->GetDimensions(info, out->shape, dims), "GetDimensions", msg, size))
        goto done;
    float *p = NULL;
    if (mh_ort_check(api, api->GetTensorMutableData(output, (void **)&p), "GetTensorMutableData",
                     msg, size))
        goto done;
    out->data = malloc((out->count ? out->count : 1) * sizeof(float));
    if (out->data == NULL) {
        mh_fail(msg, size, "out of memory");
        goto done;
    }
    if (out->count)
        memcpy(out->data, p, out->count * sizeof(float));
    rc = 0;
done:
    if (info)
        api->ReleaseTensorTypeAndShapeInfo(info);
    if (output)
        api->ReleaseValue(output);
    if (input)
        api->ReleaseValue(input);
    if (rc != 0)
        mh_tensor_free(out);
    return rc;
}

/* Looks up a metadata_props entry of a session; *value is malloc'd (NULL if absent). */
static inline int mh_session_metadata(mh_ort *o, OrtSession *session, const char *key,
                                      char **value, char *msg, size_t size)
{
    const OrtApi *api = o->api;
    OrtModelMetadata *meta = NULL;
    OrtAllocator *alloc = NULL;
    char *v = NULL;
    *value = NULL;
    if (mh_ort_check(api, api->GetAllocatorWithDefaultOptions(&alloc), "GetAllocator", msg, size) ||
        mh_ort_check(api, api->SessionGetModelMetadata(session, &meta), "SessionGetModelMetadata",
                     msg, size))
        return -1;
    int rc = mh_ort_check(api, api->ModelMetadataLookupCustomMetadataMap(meta, alloc, key, &v),
                          "ModelMetadataLookupCustomMetadataMap", msg, size);
    if (rc == 0 && v != NULL) {
        *value = strdup(v);
        mh_ort_ignore(api, api->AllocatorFree(alloc, v));
        if (*value == NULL)
            rc = mh_fail(msg, size, "out of memory");
    }
    api->ReleaseModelMetadata(meta);
    return rc;
}

/* The name of a session's input or output `index`, copied into buf. */
static inline int mh_session_io_name(mh_ort *o, OrtSession *session, bool output, size_t index,
                                     char *buf, size_t bufsize, char *msg, size_t size)
{
    const OrtApi *api = o->api;
    OrtAllocator *alloc = NULL;
    char *name = NULL;
    if (mh_ort_check(api, api->GetAllocatorWithDefaultOptions(&alloc), "GetAllocator", msg, size))
        return -1;
    OrtStatus *st = output ? api->SessionGetOutputName(session, index, alloc, &name)
                           : api->SessionGetInputName(session, index, alloc, &name);
    if (mh_ort_check(api, st, "SessionGet*Name", msg, size))
        return -1;
    mh_format(buf, bufsize, "%s", name);
    mh_ort_ignore(api, api->AllocatorFree(alloc, name));
    return 0;
}

/* --- files and images -------------------------------------------------------- */

static inline int mh_read_file(const char *path, void **data, size_t *len, char *msg, size_t size)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return mh_fail(msg, size, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (buf == NULL)
        return mh_fail(msg, size, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return mh_fail(msg, size, "%s: read error", path);
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Decodes dir/file (JPEG or PNG) into a malloc'd float [1,3,H,W] RGB tensor in [0,1]. */
static inline int mh_load_image(const char *dir, const char *file, float **out, uint32_t *width,
                                uint32_t *height, char *msg, size_t size)
{
    char path[4096];
    void *bytes = NULL;
    size_t len = 0;
    *out = NULL;
    mh_format(path, sizeof path, "%s/%s", dir, file);
    if (mh_read_file(path, &bytes, &len, msg, size))
        return -1;
    inferd_image *img = NULL;
    inferd_error err;
    memset(&err, 0, sizeof err);
    inferd_status st = inferd_image_decode(bytes, len, INFERD_PIXEL_RGB8, 0, &img, &err);
    free(bytes);
    if (st != INFERD_OK)
        return mh_fail(msg, size, "%s: inferd_image_decode: %s: %s", path,
                       inferd_status_name(st), err.message);
    if (img == NULL || img->format != INFERD_PIXEL_RGB8 || img->width == 0 || img->height == 0) {
        inferd_image_free(img);
        return mh_fail(msg, size, "%s: decoder returned no RGB image", path);
    }
    size_t w = img->width, h = img->height, plane = w * h;
    float *x = malloc(3 * plane * sizeof(float));
    if (x == NULL) {
        inferd_image_free(img);
        return mh_fail(msg, size, "%s: out of memory", path);
    }
    for (size_t y = 0; y < h; y++) {
        const uint8_t *row = img->data + y * img->stride;
        for (size_t i = 0; i < w; i++)
            for (size_t c = 0; c < 3; c++)
                x[c * plane + y * w + i] = (float)row[3 * i + c] * (1.0f / 255.0f);
    }
    *width = img->width;
    *height = img->height;
    inferd_image_free(img);
    *out = x;
    return 0;
}

/* Reads a labels file (one label a line) into labels[]; returns the count or -1. */
static inline int mh_read_labels(const char *dir, const char *file, char labels[][32], int max,
                                 char *msg, size_t size)
{
    char path[4096];
    mh_format(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return mh_fail(msg, size, "%s: cannot open", path);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (n == max) {
            fclose(f);
            return mh_fail(msg, size, "%s: more than %d labels", path, max);
        }
        mh_format(labels[n++], 32, "%s", line);
    }
    fclose(f);
    return n;
}

/* --- ground truth (truth.json of scripts/gen_images.py) ----------------------------- */

typedef struct mh_dot {
    double x, y, r;
} mh_dot;

typedef struct mh_box {
    int x0, y0, x1, y1; /* inclusive */
} mh_box;

typedef struct mh_item {
    char file[256];
    int width, height;
    int count;          /* dots, scratches */
    char label[32];     /* colours */
    double fraction;    /* colours: share of the dominant colour */
    mh_dot *dots;       /* count of them */
    mh_box *boxes;      /* count of them */
} mh_item;

typedef struct mh_truth {
    mh_item *dots, *colours, *scratches;
    size_t ndots, ncolours, nscratches;
} mh_truth;

static inline void mh_items_free(mh_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].dots);
        free(items[i].boxes);
    }
    free(items);
}

static inline void mh_truth_free(mh_truth *t)
{
    mh_items_free(t->dots, t->ndots);
    mh_items_free(t->colours, t->ncolours);
    mh_items_free(t->scratches, t->nscratches);
    memset(t, 0, sizeof *t);
}

static inline int mh_parse_items(json_t *root, const char *key, mh_item **out, size_t *n,
                                 char *msg, size_t size)
{
    json_t *arr = json_object_get(root, key);
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return mh_fail(msg, size, "truth.json: \"%s\" is not a non-empty array", key);
    size_t len = json_array_size(arr);
    mh_item *items = calloc(len, sizeof *items);
    if (items == NULL)
        return mh_fail(msg, size, "out of memory");
    *out = items;
    *n = len;
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        mh_item *it = &items[i];
        const char *file = json_string_value(json_object_get(e, "file"));
        if (file == NULL || !json_is_integer(json_object_get(e, "width")) ||
            !json_is_integer(json_object_get(e, "height")))
            return mh_fail(msg, size, "truth.json: %s[%zu]: no file, width or height", key, i);
        mh_format(it->file, sizeof it->file, "%s", file);
        it->width = (int)json_integer_value(json_object_get(e, "width"));
        it->height = (int)json_integer_value(json_object_get(e, "height"));
        const char *label = json_string_value(json_object_get(e, "label"));
        if (label != NULL) {
            mh_format(it->label, sizeof it->label, "%s", label);
            it->fraction = json_number_value(json_object_get(e, "fraction"));
        }
        it->count = (int)json_integer_value(json_object_get(e, "count"));
        json_t *dots = json_object_get(e, "dots");
        json_t *boxes = json_object_get(e, "boxes");
        if (json_is_array(dots)) {
            if (json_array_size(dots) != (size_t)it->count)
                return mh_fail(msg, size, "truth.json: %s: count %d but %zu dots", it->file,
                               it->count, json_array_size(dots));
            it->dots = calloc(json_array_size(dots) + 1, sizeof *it->dots);
            if (it->dots == NULL)
                return mh_fail(msg, size, "out of memory");
            for (size_t k = 0; k < json_array_size(dots); k++) {
                json_t *d = json_array_get(dots, k);
                it->dots[k].x = json_number_value(json_object_get(d, "x"));
                it->dots[k].y = json_number_value(json_object_get(d, "y"));
                it->dots[k].r = json_number_value(json_object_get(d, "r"));
            }
        }
        if (json_is_array(boxes)) {
            if (json_array_size(boxes) != (size_t)it->count)
                return mh_fail(msg, size, "truth.json: %s: count %d but %zu boxes", it->file,
                               it->count, json_array_size(boxes));
            it->boxes = calloc(json_array_size(boxes) + 1, sizeof *it->boxes);
            if (it->boxes == NULL)
                return mh_fail(msg, size, "out of memory");
            for (size_t k = 0; k < json_array_size(boxes); k++) {
                json_t *b = json_array_get(boxes, k);
                if (!json_is_array(b) || json_array_size(b) != 4)
                    return mh_fail(msg, size, "truth.json: %s: box %zu is not [x0,y0,x1,y1]",
                                   it->file, k);
                it->boxes[k].x0 = (int)json_integer_value(json_array_get(b, 0));
                it->boxes[k].y0 = (int)json_integer_value(json_array_get(b, 1));
                it->boxes[k].x1 = (int)json_integer_value(json_array_get(b, 2));
                it->boxes[k].y1 = (int)json_integer_value(json_array_get(b, 3));
            }
        }
    }
    return 0;
}

static inline int mh_truth_load(const char *dir, mh_truth *t, char *msg, size_t size)
{
    char path[4096];
    json_error_t jerr;
    memset(t, 0, sizeof *t);
    mh_format(path, sizeof path, "%s/truth.json", dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        return mh_fail(msg, size, "%s:%d: %s", path, jerr.line, jerr.text);
    int rc = 0;
    if (mh_parse_items(root, "dots", &t->dots, &t->ndots, msg, size) ||
        mh_parse_items(root, "colours", &t->colours, &t->ncolours, msg, size) ||
        mh_parse_items(root, "scratches", &t->scratches, &t->nscratches, msg, size)) {
        mh_truth_free(t);
        rc = -1;
    }
    json_decref(root);
    return rc;
}

/* --- evaluation ------------------------------------------------------------------- */

typedef struct mh_point {
    double x, y;
    float value;
} mh_point;

/* Local maxima of a [h,w] map above threshold: a cell >= its 8 neighbours (>
 * for those before it in raster order, so a flat top counts once). Returns a
 * malloc'd array of image-space points (cell centre: stride * index + (stride-1)/2). */
static inline mh_point *mh_find_peaks(const float *d, int h, int w, float threshold, int stride,
                                      size_t *n)
{
    mh_point *pts = malloc(((size_t)h * (size_t)w + 1) * sizeof *pts);
    *n = 0;
    if (pts == NULL)
        return NULL;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float v = d[(size_t)y * w + x];
            if (!(v > threshold))
                continue;
            bool peak = true;
            for (int dy = -1; dy <= 1 && peak; dy++) {
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if ((dy == 0 && dx == 0) || yy < 0 || yy >= h || xx < 0 || xx >= w)
                        continue;
                    float u = d[(size_t)yy * w + xx];
                    bool before = dy < 0 || (dy == 0 && dx < 0);
                    if (before ? !(v > u) : !(v >= u)) {
                        peak = false;
                        break;
                    }
                }
            }
            if (peak) {
                double c = (stride - 1) / 2.0;
                pts[*n] = (mh_point){stride * (double)x + c, stride * (double)y + c, v};
                (*n)++;
            }
        }
    }
    return pts;
}

typedef struct mh_dot_eval {
    double sum;          /* the predicted count */
    size_t peaks;        /* local maxima of the density map */
    int missed;          /* true dots with no peak within r + MH_PEAK_SLACK */
    double worst;        /* largest (distance to nearest peak - radius) over the dots */
    bool sparse;         /* all true dots >= MH_SPARSE_SPACING apart: peaks must equal count */
} mh_dot_eval;

static inline int mh_eval_dots(const mh_tensor *density, const mh_item *truth, mh_dot_eval *ev,
                               char *msg, size_t size)
{
    memset(ev, 0, sizeof *ev);
    int want_h = (truth->height + MH_DOT_STRIDE - 1) / MH_DOT_STRIDE;
    int want_w = (truth->width + MH_DOT_STRIDE - 1) / MH_DOT_STRIDE;
    if (density->ndim != 4 || density->shape[0] != 1 || density->shape[1] != 1 ||
        density->shape[2] != want_h || density->shape[3] != want_w)
        return mh_fail(msg, size,
                       "%s: density shape [%lld,%lld,%lld,%lld], want [1,1,%d,%d]", truth->file,
                       (long long)density->shape[0], (long long)density->shape[1],
                       (long long)(density->ndim > 2 ? density->shape[2] : -1),
                       (long long)(density->ndim > 3 ? density->shape[3] : -1), want_h, want_w);
    for (size_t i = 0; i < density->count; i++)
        ev->sum += density->data[i];
    size_t np = 0;
    mh_point *pts = mh_find_peaks(density->data, want_h, want_w, MH_PEAK_THRESHOLD, MH_DOT_STRIDE,
                                  &np);
    if (pts == NULL)
        return mh_fail(msg, size, "out of memory");
    ev->peaks = np;
    ev->sparse = true;
    for (int k = 0; k < truth->count; k++) {
        const mh_dot *t = &truth->dots[k];
        double best = INFINITY;
        for (size_t p = 0; p < np; p++) {
            double dist = hypot(pts[p].x - t->x, pts[p].y - t->y);
            if (dist < best)
                best = dist;
        }
        if (best - t->r > ev->worst)
            ev->worst = best - t->r;
        if (!(best <= t->r + MH_PEAK_SLACK))
            ev->missed++;
        for (int j = 0; j < k; j++)
            if (hypot(truth->dots[j].x - t->x, truth->dots[j].y - t->y) < MH_SPARSE_SPACING)
                ev->sparse = false;
    }
    free(pts);
    return 0;
}

typedef struct mh_colour_eval {
    int best;            /* argmax */
    float prob;          /* its probability */
    float sum;           /* of the row */
} mh_colour_eval;

static inline int mh_eval_colour(const mh_tensor *probs, int nlabels, const mh_item *truth,
                                 mh_colour_eval *ev, char *msg, size_t size)
{
    memset(ev, 0, sizeof *ev);
    if (probs->ndim != 2 || probs->shape[0] != 1 || probs->shape[1] != nlabels)
        return mh_fail(msg, size, "%s: probabilities have %zu dims [%lld,%lld], want [1,%d]",
                       truth->file, probs->ndim, (long long)probs->shape[0],
                       (long long)(probs->ndim > 1 ? probs->shape[1] : -1), nlabels);
    for (int k = 0; k < nlabels; k++) {
        ev->sum += probs->data[k];
        if (probs->data[k] > probs->data[ev->best])
            ev->best = k;
    }
    ev->prob = probs->data[ev->best];
    return 0;
}

typedef struct mh_scratch_eval {
    int components;      /* 8-connected regions of mask > 0.5, at least MH_MIN_COMPONENT px */
    int small;           /* smaller regions, ignored */
    int stray;           /* regions whose box overlaps no true box */
    int unfound;         /* true boxes that no region overlaps */
} mh_scratch_eval;

static inline bool mh_boxes_overlap(mh_box a, mh_box b)
{
    return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;
}

static inline int mh_eval_scratches(const mh_tensor *mask, const mh_item *truth,
                                     mh_scratch_eval *ev, char *msg, size_t size)
{
    memset(ev, 0, sizeof *ev);
    if (mask->ndim != 4 || mask->shape[0] != 1 || mask->shape[1] != 1 ||
        mask->shape[2] != truth->height || mask->shape[3] != truth->width)
        return mh_fail(msg, size, "%s: mask shape is not [1,1,%d,%d]", truth->file,
                       truth->height, truth->width);
    int h = truth->height, w = truth->width;
    size_t n = (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; i++)
        if (!(mask->data[i] >= 0.0f && mask->data[i] <= 1.0f))
            return mh_fail(msg, size, "%s: mask value %g outside [0,1]", truth->file,
                           (double)mask->data[i]);
    unsigned char *seen = calloc(n, 1);
    size_t *stack = malloc(n * sizeof *stack);
    bool *found = calloc((size_t)truth->count + 1, sizeof *found);
    if (seen == NULL || stack == NULL || found == NULL) {
        free(seen);
        free(stack);
        free(found);
        return mh_fail(msg, size, "out of memory");
    }
    for (size_t start = 0; start < n; start++) {
        if (seen[start] || !(mask->data[start] > MH_MASK_THRESHOLD))
            continue;
        size_t top = 0, area = 0;
        mh_box b = {w, h, -1, -1};
        stack[top++] = start;
        seen[start] = 1;
        while (top > 0) {
            size_t i = stack[--top];
            int y = (int)(i / (size_t)w), x = (int)(i % (size_t)w);
            area++;
            if (x < b.x0) b.x0 = x;
            if (x > b.x1) b.x1 = x;
            if (y < b.y0) b.y0 = y;
            if (y > b.y1) b.y1 = y;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                        continue;
                    size_t j = (size_t)yy * w + xx;
                    if (!seen[j] && mask->data[j] > MH_MASK_THRESHOLD) {
                        seen[j] = 1;
                        stack[top++] = j;
                    }
                }
        }
        if (area < MH_MIN_COMPONENT) {
            ev->small++;
            continue;
        }
        ev->components++;
        bool hit = false;
        for (int k = 0; k < truth->count; k++)
            if (mh_boxes_overlap(b, truth->boxes[k])) {
                hit = true;
                found[k] = true;
            }
        if (!hit)
            ev->stray++;
    }
    for (int k = 0; k < truth->count; k++)
        if (!found[k])
            ev->unfound++;
    free(seen);
    free(stack);
    free(found);
    return 0;
}

#endif /* INFERD_MODEL_HELPERS_H */
