/* image_to_tensor.c: the image_to_tensor element of the vision plugin.
 *
 * In: "image/rgb", "image/bgr", "image/gray". Out (port 0): "metadata/tensor",
 * a buffer derived from the input whose payload is one tensor named
 * `tensorName` (the model input it feeds), of shape [1, C, H, W] (layout
 * nchw) or [1, H, W, C] (nhwc), C = 3 for colour and 1 for gray, with a
 * metadata/attribute entry under the element's name:
 *   {"name", "layout", "dtype", "channelOrder", "shape": [...]}.
 *
 * The conversion is the core's input contract (inferd/contract.h, the same
 * the estimators use) with resize none: float32 value = (pixel * scale -
 * mean[c]) / std[c], c the tensor channel in `channelOrder`; uint8 takes the
 * pixels unchanged (reordered for the layout and channelOrder only). The
 * contract refuses at init what cannot be (2 means, a std of 0, a mean with
 * uint8). A gray image gives one channel.
 */
#include "vision.h"

#include <stdlib.h>
#include <string.h>

static const char *const layouts[] = {"nchw", "nhwc", NULL};
static const char *const dtypes[] = {"float32", "uint8", NULL};
static const char *const orders[] = {"rgb", "bgr", NULL};

const inferd_prop_spec vision_to_tensor_props[] = {
    INFERD_PROP_ENUM("layout", "nchw: [1,C,H,W]; nhwc: [1,H,W,C]", "nchw", layouts),
    INFERD_PROP_ENUM("dtype", "float32 (normalised) or uint8 (the pixels unchanged)", "float32",
                     dtypes),
    INFERD_PROP_DOUBLE("scale", "each pixel is multiplied by this first (float32)",
                       0.00392156862745098, -1e6, 1e6),
    INFERD_PROP_NUMLIST("mean",
                        "subtracted after scaling: one number, or one per channel in "
                        "channelOrder (float32; none = 0)",
                        ""),
    INFERD_PROP_NUMLIST("std",
                        "divides after the mean: one number, or one per channel in channelOrder "
                        "(float32; none = 1)",
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
    inferd_input_contract contract; /* resize none, the element's settings */
    size_t n_norm;                  /* most mean/std values given: 0, 1 or 3 */
    char *name;
} to_tensor;

/* The element's settings as a contract (the keys share their names). */
static inferd_status settings_contract(const inferd_props *p, inferd_input_contract *c,
                                       inferd_error *err)
{
    static const char *const keys[] = {"dtype", "layout", "channelOrder", "scale", "mean", "std"};
    inferd_value *o = inferd_value_object();
    inferd_status st = o ? inferd_value_object_set(o, "resize", inferd_value_string("none"), err)
                         : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; st == INFERD_OK && i < sizeof keys / sizeof keys[0]; i++)
        st = inferd_value_object_set(o, keys[i], inferd_value_copy(inferd_props_get(p, keys[i])),
                                     err);
    if (st == INFERD_OK)
        st = inferd_contract_from_value(o, c, err);
    inferd_value_free(o);
    return st;
}

inferd_status vision_to_tensor_init(inferd_instance *self, const inferd_props *p,
                                    inferd_error *err)
{
    const char *name = inferd_props_string(p, "tensorName");
    if (!name[0])
        return inferd_error_set(err, INFERD_EINVAL, "tensorName must not be empty");
    inferd_input_contract c;
    inferd_status st = settings_contract(p, &c, err);
    if (st != INFERD_OK)
        return st;
    to_tensor *t = calloc(1, sizeof *t);
    if (!t || !(t->name = vision_strdup(name))) {
        free(t);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    t->contract = c;
    size_t n_mean = inferd_value_array_len(inferd_props_get(p, "mean")),
           n_std = inferd_value_array_len(inferd_props_get(p, "std"));
    t->n_norm = n_mean > n_std ? n_mean : n_std;
    inferd_instance_set_state(self, t);
    return INFERD_OK;
}

void vision_to_tensor_deinit(inferd_instance *self)
{
    to_tensor *t = inferd_instance_state(self);
    free(t->name);
    free(t);
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
        vision_set_string(m, "layout",
                          t->contract.layout == INFERD_LAYOUT_NHWC ? "nhwc" : "nchw", err) ||
        vision_set_string(m, "dtype",
                          t->contract.dtype == INFERD_DTYPE_UINT8 ? "uint8" : "float32", err) ||
        vision_set_string(m, "channelOrder",
                          t->contract.order == INFERD_PIXEL_BGR8 ? "bgr" : "rgb", err) ||
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
    inferd_status st;
    if (!vision_begin(self, in_bufs, n, &in, &st, err))
        return st;
    if ((st = vision_input_image(in, &img, err)) != INFERD_OK)
        return st;

    const size_t C = inferd_pixel_channels(img->format);
    if (C == 1 && t->n_norm == 3)
        return inferd_error_set(err, INFERD_EINVAL,
                                "mean/std give 3 channels, but the image is gray (1 channel)");
    inferd_input_contract c = t->contract;
    if (C == 1)
        c.order = INFERD_PIXEL_GRAY8; /* a gray image gives one channel */
    inferd_geometry g;
    if ((st = inferd_contract_plan(&c, 0, 0, img->width, img->height, &g, err)) != INFERD_OK)
        return st;
    const size_t TC = C == 1 ? 1 : 3;
    int64_t shape[4] = {1, (int64_t)TC, img->height, img->width};
    if (c.layout == INFERD_LAYOUT_NHWC) {
        shape[1] = img->height;
        shape[2] = img->width;
        shape[3] = (int64_t)TC;
    }
    inferd_tensor *tensor = NULL;
    st = inferd_tensor_new(c.dtype, 4, shape, &tensor, err);
    if (st == INFERD_OK)
        st = inferd_tensor_set_name(tensor, t->name, err);
    if (st == INFERD_OK)
        st = inferd_contract_fill(&c, img, &g, tensor->data, err);
    if (st != INFERD_OK) {
        inferd_tensor_free(tensor);
        return st;
    }

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
