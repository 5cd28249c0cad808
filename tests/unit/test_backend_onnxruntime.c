/* Unit tests: the built-in ONNX Runtime backend (plugins/builtin/onnxruntime)
 * and the tensor_infer element (plugins/builtin/inference), loaded as the
 * daemon loads them (the built-in folder next to libinferd, a default
 * config), on the default models (TEST_MODELS): results on synthetic images,
 * model sharing, loading from memory, every refusal with its code and
 * message, the CUDA fallback, and concurrent runs on one model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd/config.h"
#include "inferd/log.h"
#include "inferd/registry.h"

static const char *models_dir;

#define assert_status(call, want, err)                                                        \
    do {                                                                                      \
        inferd_status st_ = (call);                                                           \
        if (st_ != (want))                                                                    \
            fail_msg("%s: got %s, want %s: %s", #call, inferd_status_name(st_),               \
                     inferd_status_name(want), (err)->message);                              \
    } while (0)

static const char *model_path(const char *file)
{
    static _Thread_local char path[2048];
    snprintf(path, sizeof path, "%s/%s", models_dir, file);
    return path;
}

/* ---- log capture ------------------------------------------------------------ */

typedef struct captured_log {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
} captured_log;

static captured_log logs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture_line(void *ctx, inferd_log_level level, const char *line, size_t len)
{
    captured_log *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
}

static void capture_start(void)
{
    logs.len = 0;
    logs.text[0] = '\0';
    inferd_log_set_sink(capture_line, &logs);
}

static void capture_stop(void) { inferd_log_set_sink(NULL, NULL); }

static int count_lines_with(const char *text, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)len, line);
        if (strstr(buf, a) && strstr(buf, b))
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

/* ---- images ------------------------------------------------------------------ */

/* A [n,3,h,w] float image, every pixel of image k the colour rgb[k]. */
static inferd_tensor *solid_images(int n, int h, int w, const float (*rgb)[3])
{
    inferd_tensor *t = NULL;
    const int64_t shape[] = {n, 3, h, w};
    assert_int_equal(inferd_tensor_new(INFERD_DTYPE_FLOAT32, 4, shape, &t, NULL), INFERD_OK);
    float *px = t->data;
    for (int k = 0; k < n; k++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < h * w; i++)
                px[((size_t)k * 3 + c) * h * w + i] = rgb[k][c];
    return t;
}

/* [1,3,64,64]: three bright discs (7 px across, 30+ px apart, well inside the
 * border) on a dark background, as dot_density expects its dots. */
static inferd_tensor *three_discs(void)
{
    static const float bg[][3] = {{0.05f, 0.05f, 0.05f}};
    inferd_tensor *t = solid_images(1, 64, 64, bg);
    static const struct { int x, y; } centres[] = {{16, 16}, {48, 20}, {30, 48}};
    float *px = t->data;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (size_t k = 0; k < 3; k++) {
                int dx = x - centres[k].x, dy = y - centres[k].y;
                if (dx * dx + dy * dy <= 12)
                    for (int c = 0; c < 3; c++)
                        px[(size_t)c * 64 * 64 + (size_t)y * 64 + x] = 0.95f;
            }
    return t;
}

static inferd_tensor *tensor_of(inferd_dtype dtype, size_t ndim, const int64_t *shape)
{
    inferd_tensor *t = NULL;
    assert_int_equal(inferd_tensor_new(dtype, ndim, shape, &t, NULL), INFERD_OK);
    return t;
}

static double tensor_sum(const inferd_tensor *t)
{
    double s = 0;
    const float *v = t->data;
    for (size_t i = 0; i < inferd_tensor_count(t); i++)
        s += v[i];
    return s;
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* ---- driving tensor_infer ------------------------------------------------------ */

/* A tensor_infer instance; props is JSON. */
static inferd_status make_infer(inferd_registry *reg, const char *props_json,
                                inferd_instance **out, inferd_error *err)
{
    inferd_value *props = NULL;
    assert_int_equal(inferd_value_from_json(props_json, strlen(props_json), 0, &props, NULL),
                     INFERD_OK);
    *out = NULL;
    inferd_status st = inferd_instance_create(reg, "tensor_infer", "infer", props, out, err);
    inferd_value_free(props);
    return st;
}

static inferd_instance *infer_on(inferd_registry *reg, const char *file, pushed *sink)
{
    char json[2300];
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\"}", model_path(file));
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    assert_status(make_infer(reg, json, &inst, &err), INFERD_OK, &err);
    inferd_instance_set_push(inst, collect_push, sink);
    return inst;
}

/* A buffer with the given tensors as payload (takes them). */
static inferd_buffer *tensor_buffer(inferd_tensor **tensors, size_t n)
{
    inferd_buffer *buf = inferd_buffer_new();
    inferd_tensor **array = malloc(n * sizeof *array);
    assert_non_null(array);
    memcpy(array, tensors, n * sizeof *array);
    assert_int_equal(inferd_buffer_set_tensors(buf, array, n, NULL), INFERD_OK);
    return buf;
}

/* Processes one buffer of these tensors (taken); returns the status. */
static inferd_status process_tensors(inferd_instance *inst, inferd_tensor **tensors, size_t n,
                                     inferd_error *err)
{
    inferd_buffer *buf = tensor_buffer(tensors, n);
    inferd_status st = inferd_instance_process(inst, &buf, 1, err);
    inferd_buffer_unref(buf);
    return st;
}

/* ---- tests ---------------------------------------------------------------------- */

static void builtins_register_backend_and_element(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    const inferd_plugin_info *owner = NULL;
    const inferd_component *c = inferd_registry_find(reg, "onnxruntime", &owner);
    assert_non_null(c);
    assert_int_equal(c->kind, INFERD_KIND_BACKEND);
    assert_string_equal(owner->name, "onnxruntime");
    assert_contains(owner->path, "/inferd/builtin/onnxruntime.so");
    /* Its options are declared properties, shown by `inferd plugin inspect`. */
    inferd_value *d = inferd_describe_component(c);
    char *json = NULL;
    assert_int_equal(inferd_value_to_json(d, 0, &json, NULL, NULL), INFERD_OK);
    assert_contains(json, "\"name\":\"provider\"");
    assert_contains(json, "\"values\":[\"cpu\",\"cuda\"]");
    assert_contains(json, "\"values\":[\"disable\",\"basic\",\"extended\",\"all\"]");
    assert_contains(json, "\"name\":\"gpu_mem_limit\"");
    assert_contains(json, "\"name\":\"cudnn_conv_algo_search\"");
    free(json);
    inferd_value_free(d);

    c = inferd_registry_find(reg, "tensor_infer", &owner);
    assert_non_null(c);
    assert_int_equal(c->kind, INFERD_KIND_ELEMENT);
    assert_string_equal(owner->name, "inference");
    assert_string_equal(c->inputs[0].formats[0], "metadata/tensor");
    assert_string_equal(c->outputs[0].formats[0], "metadata/tensor");
    inferd_registry_free(reg);
}

static void dot_density_counts_three_discs(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "dot_density.onnx", &out);
    inferd_tensor *img = three_discs();
    inferd_buffer *in = tensor_buffer(&img, 1);
    inferd_error err = {0};
    assert_status(inferd_instance_process(inst, &in, 1, &err), INFERD_OK, &err);
    assert_int_equal(out.count, 1);
    /* A derived buffer: the frame's earlier stage is its parent. */
    assert_ptr_equal(inferd_buffer_parent(out.buf), in);
    assert_int_equal(inferd_buffer_tensor_count(out.buf), 1);
    const inferd_tensor *density = inferd_buffer_tensor(out.buf, 0);
    assert_string_equal(density->name, "density");
    assert_int_equal(density->dtype, INFERD_DTYPE_FLOAT32);
    assert_int_equal(density->ndim, 4);
    const int64_t want[] = {1, 1, 16, 16};
    assert_memory_equal(density->shape, want, sizeof want);
    double sum = tensor_sum(density);
    if (sum < 2.7 || sum > 3.3)
        fail_msg("density sums to %g, want 3 +- 0.3", sum);
    inferd_buffer_unref(out.buf);
    inferd_buffer_unref(in);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

static void colour_classifier_names_red_also_in_a_batch(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "colour_classifier.onnx", &out);
    inferd_error err = {0};
    static const float red[][3] = {{1, 0, 0}};
    inferd_tensor *img = solid_images(1, 32, 32, red);
    assert_status(process_tensors(inst, &img, 1, &err), INFERD_OK, &err);
    const inferd_tensor *p = inferd_buffer_tensor(out.buf, 0);
    assert_string_equal(p->name, "probabilities");
    assert_int_equal(p->ndim, 2);
    assert_int_equal(p->shape[0], 1);
    assert_int_equal(p->shape[1], 8);
    assert_int_equal(argmax(p->data, 8), 2); /* black, white, red, ... */

    /* N = 2 runs as one batch: red, then blue. */
    static const float red_blue[][3] = {{1, 0, 0}, {0, 0, 1}};
    img = solid_images(2, 16, 16, red_blue);
    assert_status(process_tensors(inst, &img, 1, &err), INFERD_OK, &err);
    assert_int_equal(out.count, 2);
    p = inferd_buffer_tensor(out.buf, 0);
    assert_int_equal(p->shape[0], 2);
    assert_int_equal(argmax((const float *)p->data, 8), 2);
    assert_int_equal(argmax((const float *)p->data + 8, 8), 4);
    inferd_buffer_unref(out.buf);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

static void model_inputs_and_outputs_are_described(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "dot_density.onnx", &out);
    inferd_model *m = NULL;
    inferd_error err = {0};
    assert_status(inferd_model_open(inst, "onnxruntime", model_path("dot_density.onnx"), NULL, 0,
                                    NULL, &m, &err), INFERD_OK, &err);
    assert_int_equal(inferd_model_io_count(m, 0), 1);
    assert_int_equal(inferd_model_io_count(m, 1), 1);
    inferd_tensor_info info;
    assert_status(inferd_model_io(m, 0, 0, &info, &err), INFERD_OK, &err);
    assert_string_equal(info.name, "image");
    assert_int_equal(info.dtype, INFERD_DTYPE_FLOAT32);
    const int64_t in_shape[] = {-1, 3, -1, -1};
    assert_int_equal(info.ndim, 4);
    assert_memory_equal(info.shape, in_shape, sizeof in_shape);
    assert_status(inferd_model_io(m, 1, 0, &info, &err), INFERD_OK, &err);
    assert_string_equal(info.name, "density");
    const int64_t out_shape[] = {-1, 1, -1, -1};
    assert_memory_equal(info.shape, out_shape, sizeof out_shape);
    assert_status(inferd_model_io(m, 1, 1, &info, &err), INFERD_ERANGE, &err);
    inferd_model_close(m);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

/* Every opener of the same (backend, file, options) shares one session. */
static void the_model_is_shared(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    capture_start();
    pushed out1 = {0}, out2 = {0};
    inferd_instance *a = infer_on(reg, "dot_density.onnx", &out1);
    inferd_instance *b = infer_on(reg, "dot_density.onnx", &out2);
    inferd_model *m1 = NULL, *m2 = NULL, *m3 = NULL;
    inferd_error err = {0};
    const char *path = model_path("dot_density.onnx");
    /* The options tensor_infer gives ONNX Runtime (its pool threads do not
     * spin in a pipeline): the same options share the session. */
    inferd_value *same = inferd_value_object();
    inferd_value_object_set(same, "allow_spinning", inferd_value_bool(false), NULL);
    assert_status(inferd_model_open(a, "onnxruntime", path, NULL, 0, same, &m1, &err), INFERD_OK,
                  &err);
    assert_status(inferd_model_open(b, "onnxruntime", path, NULL, 0, same, &m2, &err), INFERD_OK,
                  &err);
    inferd_value_free(same);
    assert_ptr_equal(m1, m2);
    /* Two elements and two opens: one load. */
    pthread_mutex_lock(&logs.lock);
    int loads = count_lines_with(logs.text, "loaded", "dot_density.onnx");
    pthread_mutex_unlock(&logs.lock);
    assert_int_equal(loads, 1);
    /* Other options are another session. */
    inferd_value *opts = inferd_value_object();
    inferd_value_object_set(opts, "graph_optimization_level", inferd_value_string("basic"), NULL);
    assert_status(inferd_model_open(a, "onnxruntime", path, NULL, 0, opts, &m3, &err), INFERD_OK,
                  &err);
    inferd_value_free(opts);
    assert_ptr_not_equal(m1, m3);
    capture_stop();
    assert_int_equal(count_lines_with(logs.text, "loaded", "dot_density.onnx"), 2);
    inferd_model_close(m3);
    inferd_model_close(m2);
    inferd_model_close(m1);
    inferd_instance_destroy(b);
    inferd_instance_destroy(a);
    inferd_registry_free(reg);
}

static void a_model_loads_from_memory(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "colour_classifier.onnx", &out);
    FILE *f = fopen(model_path("colour_classifier.onnx"), "rb");
    assert_non_null(f);
    static char bytes[1 << 20];
    size_t len = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    assert_true(len > 0 && len < sizeof bytes);
    inferd_model *m = NULL;
    inferd_error err = {0};
    assert_status(inferd_model_open(inst, "onnxruntime", NULL, bytes, len, NULL, &m, &err),
                  INFERD_OK, &err);
    static const float green[][3] = {{0, 1, 0}};
    inferd_tensor *img = solid_images(1, 8, 8, green);
    inferd_tensor *probs = NULL;
    assert_status(inferd_model_run(m, (const inferd_tensor *const *)&img, 1, &probs, 1, &err),
                  INFERD_OK, &err);
    assert_int_equal(argmax(probs->data, 8), 3);
    inferd_tensor_free(probs);
    inferd_tensor_free(img);
    /* Garbage in memory is no model. */
    inferd_model *bad = NULL;
    assert_status(inferd_model_open(inst, "onnxruntime", NULL, "garbage", 7, NULL, &bad, &err),
                  INFERD_EINVAL, &err);
    assert_contains(err.message, "cannot load the model from memory");
    assert_contains(err.message, "protobuf parsing failed");
    assert_null(bad);
    inferd_model_close(m);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

/* tensor_infer's init with these properties fails with this code and text. */
static void expect_init_failure(inferd_registry *reg, const char *props_json, inferd_status code,
                                const char *needle1, const char *needle2)
{
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    inferd_status st = make_infer(reg, props_json, &inst, &err);
    if (st != code)
        fail_msg("%s: got %s, want %s: %s", props_json, inferd_status_name(st),
                 inferd_status_name(code), err.message);
    assert_null(inst);
    assert_contains(err.message, needle1);
    assert_contains(err.message, needle2);
}

static void bad_models_backends_and_options_are_refused(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    char json[4096];
    /* No such file. */
    expect_init_failure(reg, "{\"modelPath\": \"/nonexistent/x.onnx\"}", INFERD_ENOTFOUND,
                        "element infer (tensor_infer, plugin inference 1.0.0): init failed",
                        "model file /nonexistent/x.onnx does not exist");
    /* A file that is not a model. */
    char junk[] = "/tmp/inferd_not_a_model_XXXXXX";
    int fd = mkstemp(junk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "this is not an ONNX model", 25), 25);
    close(fd);
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\"}", junk);
    expect_init_failure(reg, json, INFERD_EINVAL, junk, "Protobuf parsing failed");
    unlink(junk);
    /* A folder. */
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\"}", models_dir);
    expect_init_failure(reg, json, INFERD_EINVAL, models_dir, "is not a regular file");
    /* modelPath is required. */
    expect_init_failure(reg, "{}", INFERD_EINVAL, "modelPath", "required");

    const char *dot = model_path("dot_density.onnx");
    /* An unknown backend; a component that is not a backend. */
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backend\": \"tensorrt\"}", dot);
    expect_init_failure(reg, json, INFERD_ENOTFOUND, "no backend named 'tensorrt'",
                        "is its plugin active?");
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backend\": \"tensor_infer\"}", dot);
    expect_init_failure(reg, json, INFERD_EINVAL, "'tensor_infer' is not a backend", "its kind is element");
    /* A bad option value names the option and what it allows. */
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": "
             "\"{\\\"graph_optimization_level\\\": \\\"fastest\\\"}\"}", dot);
    expect_init_failure(reg, json, INFERD_EINVAL, "property 'graph_optimization_level'",
                        "one of disable, basic, extended, all");
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": "
             "\"{\\\"intra_op_threads\\\": -2}\"}", dot);
    expect_init_failure(reg, json, INFERD_ERANGE, "property 'intra_op_threads'", "-2");
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": "
             "\"{\\\"colour\\\": 1}\"}", dot);
    expect_init_failure(reg, json, INFERD_ENOTFOUND, "backend onnxruntime, model", "'colour'");
    /* backendOptions must be a JSON object. */
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": \"[1]\"}", dot);
    expect_init_failure(reg, json, INFERD_EINVAL, "'backendOptions' must be a JSON object",
                        "[1]");
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": \"{nope\"}", dot);
    expect_init_failure(reg, json, INFERD_EINVAL, "property 'backendOptions'", "init failed");
    inferd_registry_free(reg);
}

static void bad_inputs_are_refused(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "dot_density.onnx", &out);
    inferd_error err = {0};
    static const struct {
        inferd_dtype dtype;
        size_t ndim;
        int64_t shape[4];
        inferd_status code;
        const char *text;
    } cases[] = {
        {INFERD_DTYPE_UINT8, 4, {1, 3, 4, 4}, INFERD_ETYPE,
         "input 'image' of model dot_density.onnx expects FP32 [-1,3,-1,-1], got UINT8 [1,3,4,4]"},
        {INFERD_DTYPE_FLOAT32, 3, {3, 4, 4}, INFERD_EINVAL,
         "expects FP32 [-1,3,-1,-1], got FP32 [3,4,4] (3 dimensions where the model has 4)"},
        {INFERD_DTYPE_FLOAT32, 4, {1, 4, 8, 8}, INFERD_EINVAL,
         "got FP32 [1,4,8,8] (dimension 1 is 4 where the model needs 3)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Through the element: the error names it, then the backend and the file. */
        inferd_tensor *t = tensor_of(cases[i].dtype, cases[i].ndim, cases[i].shape);
        assert_status(process_tensors(inst, &t, 1, &err), cases[i].code, &err);
        assert_contains(err.message, "element infer (tensor_infer, plugin inference 1.0.0): "
                                     "process failed: backend onnxruntime: ");
        assert_contains(err.message, cases[i].text);
    }
    assert_int_equal(out.count, 0);

    /* Two tensors for a model of one input. */
    const int64_t shape[] = {1, 3, 8, 8};
    inferd_tensor *two[] = {tensor_of(INFERD_DTYPE_FLOAT32, 4, shape),
                            tensor_of(INFERD_DTYPE_FLOAT32, 4, shape)};
    assert_status(process_tensors(inst, two, 2, &err), INFERD_EINVAL, &err);
    assert_contains(err.message, "has 1 input(s) ('image'); the buffer carries 2 tensor(s)");
    /* The same, straight to the model. */
    inferd_model *m = NULL;
    assert_status(inferd_model_open(inst, "onnxruntime", model_path("dot_density.onnx"), NULL, 0,
                                    NULL, &m, &err), INFERD_OK, &err);
    two[0] = tensor_of(INFERD_DTYPE_FLOAT32, 4, shape);
    two[1] = tensor_of(INFERD_DTYPE_FLOAT32, 4, shape);
    inferd_tensor *outputs[1];
    assert_status(inferd_model_run(m, (const inferd_tensor *const *)two, 2, outputs, 1, &err),
                  INFERD_EINVAL, &err);
    assert_contains(err.message, "takes 1 input(s) and gives 1 output(s)");
    inferd_tensor_free(two[0]);
    inferd_tensor_free(two[1]);
    inferd_model_close(m);

    /* A named tensor that is not the model's input is matched by position. */
    inferd_tensor *named = three_discs();
    assert_int_equal(inferd_tensor_set_name(named, "pixels", NULL), INFERD_OK);
    assert_status(process_tensors(inst, &named, 1, &err), INFERD_OK, &err);
    assert_int_equal(out.count, 1);

    /* Not a tensor payload. */
    inferd_buffer *buf = inferd_buffer_new();
    assert_status(inferd_instance_process(inst, &buf, 1, &err), INFERD_EINVAL, &err);
    assert_contains(err.message, "the input buffer carries no payload; tensor_infer needs "
                                 "metadata/tensor");
    inferd_buffer_unref(buf);
    inferd_buffer_unref(out.buf);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

/* provider cuda where the GPU cannot be used (no CUDA provider, a library
 * or the driver missing, no device: whatever this machine lacks) loads on
 * the CPU, warns once with the reason the model's device reports, and
 * runs; where the GPU can be used, the model says cuda:0 and warns not. */
static void cuda_falls_back_to_cpu_with_a_warning(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    capture_start();
    char json[2400];
    snprintf(json, sizeof json, "{\"modelPath\": \"%s\", \"backendOptions\": \"{\\\"provider\\\": "
             "\\\"cuda\\\", \\\"device_id\\\": 0, \\\"gpu_mem_limit\\\": 2147483648, "
             "\\\"cudnn_conv_algo_search\\\": \\\"HEURISTIC\\\"}\"}",
             model_path("colour_classifier.onnx"));
    inferd_instance *inst = NULL;
    inferd_error err = {0};
    assert_status(make_infer(reg, json, &inst, &err), INFERD_OK, &err);
    /* The same options, opened directly: the model says where it runs. */
    inferd_value *opts = NULL;
    static const char opts_json[] = "{\"provider\": \"cuda\", \"device_id\": 0, "
                                    "\"gpu_mem_limit\": 2147483648, "
                                    "\"cudnn_conv_algo_search\": \"HEURISTIC\"}";
    assert_status(inferd_value_from_json(opts_json, sizeof opts_json - 1,
                                         INFERD_JSON_DEFAULT_MAX_DEPTH, &opts, &err),
                  INFERD_OK, &err);
    inferd_model *m = NULL;
    assert_status(inferd_registry_model_open(reg, "onnxruntime",
                                             model_path("colour_classifier.onnx"), opts, &m, &err),
                  INFERD_OK, &err);
    capture_stop();
    const char *why = NULL, *device = inferd_model_device(m, &why);
    assert_non_null(device);
    if (strcmp(device, "cpu") == 0) {
        assert_non_null(why);
        char line[1400];
        snprintf(line, sizeof line, "[onnxruntime] model colour_classifier.onnx: provider cuda is "
                 "not available (%s); falling back to cpu", why);
        /* Once per load (the element's and this one are two loads). */
        int loads = count_lines_with(logs.text, "loaded", "colour_classifier.onnx");
        assert_true(loads >= 1);
        assert_int_equal(count_lines_with(logs.text, "WARN", line), loads);
    } else {
        assert_string_equal(device, "cuda:0");
        assert_null(why);
        assert_int_equal(count_lines_with(logs.text, "WARN", "provider cuda"), 0);
    }
    inferd_model_close(m);
    inferd_value_free(opts);
    pushed out = {0};
    inferd_instance_set_push(inst, collect_push, &out);
    static const float red[][3] = {{0.9f, 0.1f, 0.1f}};
    inferd_tensor *img = solid_images(1, 16, 16, red);
    assert_status(process_tensors(inst, &img, 1, &err), INFERD_OK, &err);
    assert_int_equal(argmax(inferd_buffer_tensor(out.buf, 0)->data, 8), 2);
    inferd_buffer_unref(out.buf);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

/* Two threads run one model at once, each checking every result. */
typedef struct runner {
    inferd_model *model;
    pthread_barrier_t *start;
    float rgb[3];
    size_t want;
    int runs, wrong;
    inferd_error err;
} runner;

static void *run_many(void *arg)
{
    runner *r = arg;
    const float rgb[][3] = {{r->rgb[0], r->rgb[1], r->rgb[2]}};
    inferd_tensor *img = solid_images(1, 24, 24, rgb);
    pthread_barrier_wait(r->start);
    for (int i = 0; i < r->runs; i++) {
        inferd_tensor *probs = NULL;
        if (inferd_model_run(r->model, (const inferd_tensor *const *)&img, 1, &probs, 1,
                             &r->err) != INFERD_OK || argmax(probs->data, 8) != r->want)
            r->wrong++;
        inferd_tensor_free(probs);
    }
    inferd_tensor_free(img);
    return NULL;
}

static void concurrent_runs_on_one_model(void **state)
{
    inferd_registry *reg = support_builtins();
    assert_non_null(reg);
    pushed out = {0};
    inferd_instance *inst = infer_on(reg, "colour_classifier.onnx", &out);
    inferd_model *m = NULL;
    inferd_error err = {0};
    assert_status(inferd_model_open(inst, "onnxruntime", model_path("colour_classifier.onnx"),
                                    NULL, 0, NULL, &m, &err), INFERD_OK, &err);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    runner r[2] = {{.model = m, .start = &start, .rgb = {1, 0, 0}, .want = 2, .runs = 200},
                   {.model = m, .start = &start, .rgb = {0, 0, 1}, .want = 4, .runs = 200}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_many, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++)
        if (r[i].wrong)
            fail_msg("thread %d: %d of %d runs wrong: %s", i, r[i].wrong, r[i].runs,
                     r[i].err.message);
    inferd_model_close(m);
    inferd_instance_destroy(inst);
    inferd_registry_free(reg);
}

int main(void)
{
    models_dir = getenv("TEST_MODELS");
    if (!models_dir) {
        fprintf(stderr, "TEST_MODELS is not set (run through ctest)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtins_register_backend_and_element),
        cmocka_unit_test(dot_density_counts_three_discs),
        cmocka_unit_test(colour_classifier_names_red_also_in_a_batch),
        cmocka_unit_test(model_inputs_and_outputs_are_described),
        cmocka_unit_test(the_model_is_shared),
        cmocka_unit_test(a_model_loads_from_memory),
        cmocka_unit_test(bad_models_backends_and_options_are_refused),
        cmocka_unit_test(bad_inputs_are_refused),
        cmocka_unit_test(cuda_falls_back_to_cpu_with_a_warning),
        cmocka_unit_test(concurrent_runs_on_one_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
