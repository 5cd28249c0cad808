/* postprocess.h: what the files of the built-in "postprocess" plugin share
 * (internal to the plugin, not installed): each element's declarations and
 * callbacks, and the helpers in common.c (picking the input tensor, reading
 * it as floats, mapping coordinates back through metadata/transform entries,
 * attaching the result and pushing the buffer on). */
#ifndef INFERD_POSTPROCESS_H
#define INFERD_POSTPROCESS_H

#include <inferd/plugin.h>

#include <stdbool.h>
#include <stddef.h>

/* ---- the elements (one file each) ----------------------------------------- */

extern const inferd_prop_spec pp_density_props[];
inferd_status pp_density_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pp_density_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err);
void pp_density_deinit(inferd_instance *self);

extern const inferd_prop_spec pp_classify_props[];
inferd_status pp_classify_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pp_classify_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err);
void pp_classify_deinit(inferd_instance *self);

extern const inferd_prop_spec pp_segment_props[];
inferd_status pp_segment_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pp_segment_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err);
void pp_segment_deinit(inferd_instance *self);

/* ---- common.c ---------------------------------------------------------------- */

extern const inferd_prop_spec pp_text_props[];
inferd_status pp_text_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pp_text_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                              inferd_error *err);
void pp_text_deinit(inferd_instance *self);

extern const inferd_prop_spec pp_ctc_props[];
inferd_status pp_ctc_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status pp_ctc_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                             inferd_error *err);
void pp_ctc_deinit(inferd_instance *self);

/* A copy of s (malloc'd), or NULL on ENOMEM. */
char *pp_strdup(const char *s);

/* The input buffer (in[0]) and its tensor: the one named `name`, or the first
 * when name is "". Errors: no input (EINVAL), a payload that is not tensors
 * (ETYPE), no tensor of that name (ENOTFOUND, listing the names it has). */
inferd_status pp_input_tensor(inferd_buffer *const *in, size_t n, const char *name,
                              inferd_buffer **buf, const inferd_tensor **t, inferd_error *err);
/* The tensor's name for messages ("density", or "#0" style when unnamed). */
const char *pp_tensor_label(const inferd_tensor *t);

/* A 2-D plane: [H,W], [N,H,W] or [N,1,H,W] with N = 1. A rank other than
 * 2..4 or a channel count other than 1 is EINVAL, N > 1 is EUNSUPPORTED,
 * an empty plane EINVAL. */
inferd_status pp_plane_shape(const inferd_tensor *t, size_t *h, size_t *w, inferd_error *err);
/* A vector of scores: [K], [N,K] or [N,K,1,...] with N = 1. */
inferd_status pp_vector_shape(const inferd_tensor *t, size_t *k, inferd_error *err);

/* The tensor's elements as floats: FP32 is read in place; FP64 and FP16 are
 * converted into a copy (owned). Other dtypes are EUNSUPPORTED. */
typedef struct pp_floats {
    const float *v;
    float *owned;
    size_t n;
} pp_floats;
inferd_status pp_floats_get(const inferd_tensor *t, pp_floats *out, inferd_error *err);
void pp_floats_free(pp_floats *f);

/* The buffer's metadata/transform entries (its ancestors' first), kept last
 * to first as the inverse maps they describe: x_in = (x_out - ox) / sx. */
typedef struct pp_xform {
    double sx, sy, ox, oy;
} pp_xform;
typedef struct pp_chain {
    pp_xform *t;
    size_t n;
} pp_chain;
/* Errors name the producer of the bad entry: an unknown type (EUNSUPPORTED),
 * a missing or non-finite field, a zero scale, an entry that is not an
 * object (EINVAL). */
inferd_status pp_chain_load(const inferd_buffer *buf, pp_chain *out, inferd_error *err);
/* Maps a point from the model input's space to the original image's. */
void pp_chain_map(const pp_chain *c, double *x, double *y);
void pp_chain_free(pp_chain *c);

/* Value building: set obj[key]; the status of inferd_value_object_set. */
inferd_status pp_set_int(inferd_value *obj, const char *key, int64_t i, inferd_error *err);
inferd_status pp_set_double(inferd_value *obj, const char *key, double d, inferd_error *err);

/* Adds meta (taken, also on failure) under the instance's name with format,
 * then pushes a new reference to buf on port 0. */
inferd_status pp_attach_and_push(inferd_instance *self, inferd_buffer *buf, const char *format,
                                 inferd_value *meta, inferd_error *err);

#endif /* INFERD_POSTPROCESS_H */
