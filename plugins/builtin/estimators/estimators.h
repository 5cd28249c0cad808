/* estimators.h: what the files of the built-in "estimators" plugin share
 * (internal, not installed): each estimator's declarations and callbacks,
 * and the machinery in common.c that all three use: opening the model on the
 * configured device, turning each item's image (cropped to its detect area)
 * into a float tensor, running the items whose processed size is equal as one
 * batch, and completing every item exactly once.
 *
 * The post-processing algorithms are those of the postprocess plugin
 * (plugins/builtin/postprocess/algorithms.h), linked in, not copied.
 */
#ifndef INFERD_BUILTIN_ESTIMATORS_H
#define INFERD_BUILTIN_ESTIMATORS_H

#include <inferd/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the estimators (one file each) ---------------------------------------------- */

extern const inferd_prop_spec est_people_props[], est_people_options[];
inferd_status est_people_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_people_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err);

extern const inferd_prop_spec est_label_props[], est_label_options[];
inferd_status est_label_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_label_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                              inferd_error *err);
void est_label_deinit(inferd_instance *self);

extern const inferd_prop_spec est_defect_props[], est_defect_options[];
inferd_status est_defect_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_defect_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err);

extern const inferd_prop_spec est_detect_props[], est_detect_options[];
inferd_status est_detect_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_detect_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err);
void est_detect_deinit(inferd_instance *self);

extern const inferd_prop_spec est_ctc_props[], est_ctc_options[];
inferd_status est_ctc_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_ctc_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                            inferd_error *err);
void est_ctc_deinit(inferd_instance *self);

extern const inferd_prop_spec est_text_props[], est_text_options[];
inferd_status est_text_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status est_text_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                             inferd_error *err);

/* The deinit of a state that starts with an est_model and owns nothing else
 * (people, defect). */
void est_deinit(inferd_instance *self);

/* ---- common.c --------------------------------------------------------------------- */

/* The properties every estimator has (modelPath's default differs): written
 * into each estimator's prop array by these macros. */
extern const char *const est_device_classes[];
#define EST_PROP_MODEL(def)                                                                   \
    INFERD_PROP_STRING("modelPath", "the ONNX model; a bare file name that is not in the "   \
                       "working folder is one of the default models", def)
#define EST_PROP_DEVICE                                                                       \
    INFERD_PROP_ENUM("deviceClass", "where the model runs: cpu, or gpu (CUDA, falling back "  \
                     "to cpu with a warning when it is not available); the config's "         \
                     "'global' is the daemon's device.class", "cpu", est_device_classes),     \
    INFERD_PROP_UINT("gpuDeviceId", "the GPU on deviceClass gpu (default: the daemon's "      \
                     "device.gpu_id)", 0, 0, 1024),                                           \
    INFERD_PROP_OBJECT("backendOptions", "options of the onnxruntime backend for this model "  \
                       "(docs/backends.md), e.g. {\"intra_op_threads\": 1}; the provider "    \
                       "comes from deviceClass", "{}")

/* The model an estimator runs, opened in init and closed in deinit. */
typedef struct est_model {
    inferd_model *model; /* owned: one reference on the host's shared model */
    char *path;          /* owned: modelPath as given, for messages */
    inferd_tensor_info input; /* the model's input (name borrowed from model) */
    size_t batch;        /* the input's fixed batch dimension; 0: dynamic */
    inferd_input_contract contract; /* the input property, fitted to the model */
} est_model;

/* The input contract as a property of every estimator (docs/models.md). */
extern const inferd_prop_spec est_input_fields[];
#define EST_PROP_INPUT                                                                        \
    {.name = "input", .type = INFERD_PROP_TYPE_OBJECT, .fields = est_input_fields,            \
     .description = "how an image becomes the model's input: dtype, layout, channelOrder, "   \
                    "scale, mean, std, resize (docs/models.md)"}

/* Opens modelPath through the onnxruntime backend, on the CUDA provider
 * (device gpuDeviceId) for deviceClass gpu, else on the CPU, with the
 * backendOptions property, and checks it takes one image input that the
 * `input` contract fits (inferd_contract_fit) and gives a float32 output
 * first. A fixed batch dimension N becomes the
 * host batcher's limit (inferd_estimator_limit_batch); est_run_batch pads a
 * smaller group to N. */
inferd_status est_model_open(inferd_instance *self, const inferd_props *p, est_model *m,
                             inferd_error *err);
void est_model_close(est_model *m);

/* A file an estimator reads (a labels file): a path with a '/', or a bare
 * name in the working folder, is used as it is; another bare name is looked
 * for beside the model (the model's folder, or the default models for a
 * model named without one). Returns buf. */
const char *est_resolve_beside_model(const char *name, const char *model_path, char *buf,
                                     size_t size);

/* One item as the post-processing sees it. */
typedef struct est_item {
    inferd_estimate *item;       /* borrowed until completed */
    const inferd_image *image;   /* the whole image, RGB8 */
    inferd_rect area;            /* what ran through the model: the detect area, or the
                                    whole image */
    inferd_geometry geo;         /* how the area became the model's input row */
    const inferd_props *options; /* the request's options, validated */
} est_item;

/* One item's share of one model output: float32 with the output's shape
 * less its batch dimension (dims[0..ndim)). post gets an array of them, one
 * per output in the model's order (out[0] the first; n_outputs in each). */
typedef struct est_output {
    const float *v;
    size_t count;
    size_t ndim;
    const int64_t *dims;
    size_t n_outputs;
} est_output;

/* Turns one item's output into its result (a new value), or fails with err. */
typedef inferd_status (*est_post_fn)(inferd_instance *self, const est_item *it,
                                     const est_output *out, inferd_value **result,
                                     inferd_error *err);

/* The estimate_batch all three share: prepares every item's area under the
 * model's contract, groups the items of equal prepared size into batch
 * tensors (padded with zero rows to a fixed batch N), runs each through the
 * model once, hands each item its output to post, and completes every item
 * exactly once (a failure fails only the items it concerns, with a message
 * naming the estimator and the model). An area the contract cannot prepare
 * fails its item as bad input (EINVAL); a failing model run is the server's
 * (EBACKEND), never the request's. */
inferd_status est_run_batch(inferd_instance *self, const est_model *m,
                            inferd_estimate *const *items, size_t n, est_post_fn post,
                            inferd_error *err);

/* A point (u, v) of the item's input row, in continuous coordinates, as the
 * image pixel under it, clamped into the area. */
void est_map_point(const est_item *it, double u, double v, int64_t *x, int64_t *y);
/* A box [u0, u1) x [v0, v1) of the input row as the image pixels it covers
 * (x0, y0 floored, x1, y1 ceiled), clamped into the area. */
void est_map_box(const est_item *it, double u0, double v0, double u1, double v1, int64_t *x0,
                 int64_t *y0, int64_t *x1, int64_t *y1);

/* A post-processing failure that is the model's (what its output holds),
 * not the request's: prefixed with the model, recoded EPLUGIN (a 500);
 * INFERD_OK and ENOMEM pass as they are. */
inferd_status est_model_fault(const est_model *m, inferd_status st, inferd_error *err);

/* *result = {"count": count, key: arr}; takes arr (also on failure). */
inferd_status est_counted(int64_t count, const char *key, inferd_value *arr,
                          inferd_value **result, inferd_error *err);

/* Value building: obj[key] = an int / a double; the status of object_set. */
inferd_status est_set_int(inferd_value *obj, const char *key, int64_t i, inferd_error *err);
inferd_status est_set_double(inferd_value *obj, const char *key, double d, inferd_error *err);

#endif /* INFERD_BUILTIN_ESTIMATORS_H */
