/* image_to_tensor.c: the image_to_tensor element of the vision plugin.
 *
 * In: "image/rgb", "image/bgr", "image/gray". Out (port 0): "metadata/tensor",
 * a buffer derived from the input whose payload is one tensor named
 * `tensorName` (the model input it feeds), of shape [1, C, H, W] (layout
 * nchw) or [1, H, W, C] (nhwc), C = 3 for colour and 1 for gray, with a
 * metadata/attribute entry under the element's name:
 *   {"name", "layout", "dtype", "channelOrder", "shape": [...]}.
 *
 * float32: value = (pixel * scale - mean[c]) / std[c], c the tensor channel
 * (in `channelOrder`). mean and std hold 0 values (0 and 1), one value (every
 * channel) or one per channel; they are checked at init. A colour image in
 * the other order than `channelOrder` has its channels swapped on the way.
 * The arithmetic is done once per channel and pixel value into a 256-entry
 * table at init; a pixel then costs one table load.
 *
 * uint8: the pixels unchanged (reordered for the layout and channelOrder
 * only): scale, mean and std apply to float32 only, and init refuses them
 * with uint8 unless they are the defaults (scale may also be 1).
 */
#include "vision.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SCALE 0.00392156862745098

static const char *const layouts[] = {"nchw", "nhwc", NULL};
static const char *const dtypes[] = {"float32", "uint8", NULL};
static const char *const orders[] = {"rgb", "bgr", NULL};

const inferd_prop_spec vision_to_tensor_props[] = {
    INFERD_PROP_ENUM("layout", "nchw: [1,C,H,W]; nhwc: [1,H,W,C]", "nchw", layouts),
    INFERD_PROP_ENUM("dtype", "float32 (normalised) or uint8 (the pixels unchanged)", "float32",
                     dtypes),
    INFERD_PROP_DOUBLE("scale", "each pixel is multiplied by this first (float32)",
                       0.00392156862745098, -1e6, 1e6),
    INFERD_PROP_STRLIST("mean",
                        "subtracted after scaling: one number, or one per channel in "
                        "channelOrder (float32; \"\" = 0)",
                        ""),
    INFERD_PROP_STRLIST("std",
                        "divides after the mean: one number, or one per channel in channelOrder "
                        "(float32; \"\" = 1)",
                        ""),
    INFERD_PROP_STRING("tensorName", "name of the tensor: the model input it feeds", "image"),
    INFERD_PROP_ENUM("channelOrder", "channel order of the tensor (colour images are converted)",
                     "rgb", orders),
    INFERD_PROP_END,
};
const inferd_port_spec vision_to_tensor_in[] = {INFERD_PORT_STATIC(VISION_IMAGE_FORMATS),
                                                INFERD_PORT_END};
const inferd_port_spec vision_to_tensor_out[] = {INFERD_PORT_STATIC("metadata/tensor"),
                                                 INFERD_PORT_END};

typedef struct to_tensor {
    bool nhwc;
    bool uint8;
    bool bgr;            /* the tensor's channel order */
    size_t n_norm;       /* how many mean/std values were given: 0, 1 or 3 (the larger) */
    char *name;
    float lut[3][256];   /* float32: value of pixel value p in tensor channel c */
} to_tensor;

/* Parses a strlist of numbers into vals (at most 3); *count is how many. */
static inferd_status parse_numbers(const inferd_props *p, const char *prop, double *vals,
                                   size_t *count, inferd_error *err)
{
    size_t n = inferd_props_list_len(p, prop);
    if (n != 0 && n != 1 && n != 3)
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: %zu values given; give one, or one per channel (3)", prop, n);
    for (size_t i = 0; i < n; i++) {
        const char *text = inferd_props_list_at(p, prop, i);
        char *end = NULL;
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
            return inferd_error_set(err, INFERD_EINVAL, "%s: '%s' is not a number", prop, text);
        vals[i] = v;
    }
    *count = n;
    return INFERD_OK;
}

inferd_status vision_to_tensor_init(inferd_instance *self, const inferd_props *p,
                                    inferd_error *err)
{
    double mean[3] = {0, 0, 0}, stdev[3] = {1, 1, 1};
    size_t n_mean = 0, n_std = 0;
    inferd_status st = parse_numbers(p, "mean", mean, &n_mean, err);
    if (st == INFERD_OK)
        st = parse_numbers(p, "std", stdev, &n_std, err);
    if (st != INFERD_OK)
        return st;
    if (n_mean == 1)
        mean[1] = mean[2] = mean[0];
    if (n_std == 1)
        stdev[1] = stdev[2] = stdev[0];
    for (size_t c = 0; c < 3; c++)
        if (stdev[c] == 0)
            return inferd_error_set(err, INFERD_EINVAL, "std: 0 is not allowed (it divides)");

    const char *name = inferd_props_string(p, "tensorName");
    if (!name[0])
        return inferd_error_set(err, INFERD_EINVAL, "tensorName must not be empty");
    double scale = inferd_props_double(p, "scale");
    bool uint8 = strcmp(inferd_props_string(p, "dtype"), "uint8") == 0;
    if (uint8 && (n_mean || n_std || (scale != DEFAULT_SCALE && scale != 1.0)))
        return inferd_error_set(err, INFERD_EINVAL,
                                "dtype uint8 copies the pixels unchanged: scale, mean and std "
                                "apply to float32 only (leave them unset)");

    to_tensor *t = calloc(1, sizeof *t);
    if (!t || !(t->name = vision_strdup(name))) {
        free(t);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    t->nhwc = strcmp(inferd_props_string(p, "layout"), "nhwc") == 0;
    t->uint8 = uint8;
    t->bgr = strcmp(inferd_props_string(p, "channelOrder"), "bgr") == 0;
    t->n_norm = n_mean > n_std ? n_mean : n_std;
    for (size_t c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            t->lut[c][v] = (float)((v * scale - mean[c]) / stdev[c]);
    inferd_instance_set_state(self, t);
    return INFERD_OK;
}

void vision_to_tensor_deinit(inferd_instance *self)
{
    to_tensor *t = inferd_instance_state(self);
    free(t->name);
    free(t);
}

/* ---- conversion ------------------------------------------------------------ */

/* src_c[c]: the image channel that feeds tensor channel c. */
static void fill_float(const to_tensor *t, const inferd_image *img, size_t C, const size_t *src_c,
                       float *out)
{
    const size_t W = img->width, H = img->height;
    if (C == 1) {
        const float *lut = t->lut[0];
        for (size_t y = 0; y < H; y++) {
            const uint8_t *s = img->data + y * img->stride;
            float *o = out + y * W;
            for (size_t x = 0; x < W; x++)
                o[x] = lut[s[x]];
        }
        return;
    }
    const float *l0 = t->lut[0], *l1 = t->lut[1], *l2 = t->lut[2];
    const size_t s0 = src_c[0], s1 = src_c[1], s2 = src_c[2];
    for (size_t y = 0; y < H; y++) {
        const uint8_t *s = img->data + y * img->stride;
        if (t->nhwc) {
            float *o = out + y * W * 3;
            for (size_t x = 0; x < W; x++, s += 3, o += 3) {
                o[0] = l0[s[s0]];
                o[1] = l1[s[s1]];
                o[2] = l2[s[s2]];
            }
        } else {
            float *o0 = out + y * W, *o1 = o0 + H * W, *o2 = o1 + H * W;
            for (size_t x = 0; x < W; x++, s += 3) {
                o0[x] = l0[s[s0]];
                o1[x] = l1[s[s1]];
                o2[x] = l2[s[s2]];
            }
        }
    }
}

static void fill_uint8(const to_tensor *t, const inferd_image *img, size_t C, const size_t *src_c,
                       uint8_t *out)
{
    const size_t W = img->width, H = img->height;
    if (C == 1 || (t->nhwc && src_c[0] == 0)) {
        /* Same bytes in the same order: copy rows. */
        for (size_t y = 0; y < H; y++)
            memcpy(out + y * W * C, img->data + y * img->stride, W * C);
        return;
    }
    const size_t s0 = src_c[0], s1 = src_c[1], s2 = src_c[2];
    for (size_t y = 0; y < H; y++) {
        const uint8_t *s = img->data + y * img->stride;
        if (t->nhwc) {
            uint8_t *o = out + y * W * 3;
            for (size_t x = 0; x < W; x++, s += 3, o += 3) {
                o[0] = s[s0];
                o[1] = s[s1];
                o[2] = s[s2];
            }
        } else {
            uint8_t *o0 = out + y * W, *o1 = o0 + H * W, *o2 = o1 + H * W;
            for (size_t x = 0; x < W; x++, s += 3) {
                o0[x] = s[s0];
                o1[x] = s[s1];
                o2[x] = s[s2];
            }
        }
    }
}

static inferd_value *tensor_meta(const to_tensor *t, const inferd_tensor *tensor,
                                 inferd_error *err)
{
    inferd_value *m = inferd_value_object(), *shape = inferd_value_array();
    if (!m || !shape) {
        inferd_value_free(m);
        inferd_value_free(shape);
        inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < tensor->ndim; i++) {
        if (inferd_value_array_push(shape, inferd_value_int(tensor->shape[i]), err) != INFERD_OK) {
            inferd_value_free(m);
            inferd_value_free(shape);
            return NULL;
        }
    }
    if (vision_set_string(m, "name", t->name, err) ||
        vision_set_string(m, "layout", t->nhwc ? "nhwc" : "nchw", err) ||
        vision_set_string(m, "dtype", t->uint8 ? "uint8" : "float32", err) ||
        vision_set_string(m, "channelOrder", t->bgr ? "bgr" : "rgb", err) ||
        inferd_value_object_set(m, "shape", shape, err)) {
        inferd_value_free(m);
        return NULL;
    }
    return m;
}

inferd_status vision_to_tensor_process(inferd_instance *self, inferd_buffer *const *in_bufs,
                                       size_t n, inferd_error *err)
{
    const to_tensor *t = inferd_instance_state(self);
    inferd_buffer *in;
    const inferd_image *img;
    inferd_status st = vision_one_input(in_bufs, n, &in, err);
    if (st != INFERD_OK)
        return st;
    if (vision_forward_error(self, in, &st, err))
        return st;
    if ((st = vision_input_image(in, &img, err)) != INFERD_OK)
        return st;

    const size_t C = inferd_pixel_channels(img->format);
    if (C == 1 && t->n_norm == 3)
        return inferd_error_set(err, INFERD_EINVAL,
                                "mean/std give 3 channels, but the image is gray (1 channel)");
    /* Swap red and blue when the image's order is not the tensor's. */
    const bool swap = C == 3 && ((img->format == INFERD_PIXEL_BGR8) != t->bgr);
    const size_t src_c[3] = {swap ? 2 : 0, 1, swap ? 0 : 2};

    int64_t shape[4] = {1, (int64_t)C, img->height, img->width};
    if (t->nhwc) {
        shape[1] = img->height;
        shape[2] = img->width;
        shape[3] = (int64_t)C;
    }
    inferd_tensor *tensor = NULL;
    st = inferd_tensor_new(t->uint8 ? INFERD_DTYPE_UINT8 : INFERD_DTYPE_FLOAT32, 4, shape, &tensor,
                           err);
    if (st == INFERD_OK)
        st = inferd_tensor_set_name(tensor, t->name, err);
    if (st != INFERD_OK) {
        inferd_tensor_free(tensor);
        return st;
    }
    if (t->uint8)
        fill_uint8(t, img, C, src_c, tensor->data);
    else
        fill_float(t, img, C, src_c, tensor->data);

    inferd_value *meta = tensor_meta(t, tensor, err);
    inferd_tensor **list = meta ? malloc(sizeof *list) : NULL;
    inferd_buffer *out = list ? inferd_buffer_derive(in) : NULL;
    if (!out) {
        inferd_value_free(meta);
        free(list);
        inferd_tensor_free(tensor);
        return meta || !err ? inferd_error_set(err, INFERD_ENOMEM, "out of memory") : err->code;
    }
    list[0] = tensor;
    st = inferd_buffer_set_tensors(out, list, 1, err);
    if (st == INFERD_OK)
        st = inferd_buffer_add_meta_value(out, inferd_instance_name(self), "metadata/attribute",
                                          meta, err);
    else
        inferd_value_free(meta);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}
