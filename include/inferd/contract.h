/* inferd/contract.h: a model's input contract: how an image becomes one row
 * (one batch item) of the model's input tensor, and how a point of that row
 * maps back to the image.
 *
 * In order: the source area is resampled (resize), placed in the row's
 * spatial size (padded or cropped), its channels put in the tensor's order
 * (RGB, BGR or GRAY), each value v turned into (v * scale - mean[c]) / std[c]
 * (float32 and float16; uint8 takes the pixels as they are) and written in
 * the tensor's layout (NCHW or NHWC). One implementation serves the
 * estimators, the vision elements and any plugin (through the host API), so
 * that a model is fed the same way wherever it runs.
 *
 * Resize modes (docs/models.md):
 *   auto       (the default) stretch to the model's fixed size, none when
 *              its height and width are dynamic
 *   none       the area's own size
 *   stretch    to width x height, each axis its own factor
 *   letterbox  one factor to fit inside width x height, the rest pad_value;
 *              the image centred, or at the top-left (pad right and bottom)
 *   limit      one factor so that the longer side is at most `limit` (never
 *              enlarged; 0: no bound), then each side rounded to a multiple
 *              of `multiple` (each axis then has its own factor)
 *   shortcrop  one factor that makes the shorter side `short_side`, then the
 *              centre width x height
 * Sampling uses half-pixel centres (bilinear or nearest), as image_resize.
 *
 * Thread safety: a contract and a geometry are plain values; every function
 * here is reentrant.
 */
#ifndef INFERD_CONTRACT_H
#define INFERD_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd/image.h"
#include "inferd/props.h"
#include "inferd/status.h"
#include "inferd/tensor.h"
#include "inferd/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum inferd_resize_mode {
    INFERD_RESIZE_NONE = 0,
    INFERD_RESIZE_STRETCH,
    INFERD_RESIZE_LETTERBOX,
    INFERD_RESIZE_LIMIT,
    INFERD_RESIZE_SHORTCROP,
    INFERD_RESIZE_AUTO /* resolved by inferd_contract_fit */
} inferd_resize_mode;

typedef enum inferd_tensor_layout {
    INFERD_LAYOUT_AUTO = 0, /* from the model's shape: [N,C,H,W] or [N,H,W,C] */
    INFERD_LAYOUT_NCHW,
    INFERD_LAYOUT_NHWC
} inferd_tensor_layout;

typedef struct inferd_input_contract {
    inferd_dtype dtype;          /* FLOAT32, FLOAT16 or UINT8; INVALID: the model's */
    inferd_tensor_layout layout;
    inferd_pixel_format order;   /* RGB8, BGR8 or GRAY8: the tensor's channels */
    double scale;                /* v * scale first (float types) */
    double mean[3], std[3];      /* per channel of the tensor (GRAY: [0]) */
    inferd_resize_mode resize;
    uint32_t width, height;      /* stretch, letterbox, shortcrop; 0: the model's fixed size */
    uint32_t limit;              /* limit: the longer side's bound, 0 none */
    uint32_t multiple;           /* limit: each side a multiple of this (>= 1) */
    uint32_t short_side;         /* shortcrop */
    uint8_t pad_value;           /* letterbox: every channel of the padding */
    bool pad_top_left;           /* letterbox: image at the top-left (else centred) */
    bool nearest;                /* nearest sampling (else bilinear) */
} inferd_input_contract;

/* Where a prepared row came from: the row is width x height; the resampled
 * area (inner_w x inner_h, factors scale_x, scale_y) starts at (off_x,
 * off_y) in it (negative when cropped); the area is at (src_x, src_y) in
 * the whole image and src_w x src_h. */
typedef struct inferd_geometry {
    uint32_t width, height;
    uint32_t inner_w, inner_h;
    int64_t off_x, off_y;
    double scale_x, scale_y;
    int64_t src_x, src_y;
    uint32_t src_w, src_h;
} inferd_geometry;

/* The declaration of a contract, as the fields of an object property; one
 * list, in this header so that a plugin's static property table can nest it
 * (C and C++):
 *   static const inferd_prop_spec input_fields[] = {INFERD_CONTRACT_FIELDS,
 *                                                   INFERD_PROP_END};
 *   {.name = "input", .type = INFERD_PROP_TYPE_OBJECT, .fields = input_fields}
 * inferd_contract_props() is the same list. */
static const char *const inferd__contract_dtypes[] = {"auto", "float32", "float16", "uint8", NULL};
static const char *const inferd__contract_layouts[] = {"auto", "nchw", "nhwc", NULL};
static const char *const inferd__contract_orders[] = {"rgb", "bgr", "gray", NULL};
/* In the order of inferd_resize_mode. */
static const char *const inferd__contract_resizes[] = {"none",  "stretch",   "letterbox", "limit",
                                                       "shortcrop", "auto", NULL};
static const char *const inferd__contract_positions[] = {"center", "topleft", NULL};
static const char *const inferd__contract_samplings[] = {"bilinear", "nearest", NULL};
/* Each key is optional (absent: its default, said in its description), so
 * that a contract can be laid over another: the config's over the model's
 * metadata. */
#define INFERD__CONTRACT_KEY(n, t, desc, ...)                                                   \
    { .name = (n), .type = (t), .description = (desc), __VA_ARGS__,                            \
      .flags = INFERD_PROP_OPTIONAL }
#define INFERD_CONTRACT_FIELDS                                                                  \
    INFERD__CONTRACT_KEY("dtype", INFERD_PROP_TYPE_ENUM,                                        \
                         "the tensor's element type (default auto: the model's)",             \
                         .enum_values = inferd__contract_dtypes),                               \
    INFERD__CONTRACT_KEY("layout", INFERD_PROP_TYPE_ENUM,                                       \
                         "nchw [N,C,H,W] or nhwc [N,H,W,C] (default auto: from the model's "    \
                         "shape)", .enum_values = inferd__contract_layouts),                    \
    INFERD__CONTRACT_KEY("channelOrder", INFERD_PROP_TYPE_ENUM,                                 \
                         "the tensor's channels (default rgb)",                                 \
                         .enum_values = inferd__contract_orders),                               \
    INFERD__CONTRACT_KEY("scale", INFERD_PROP_TYPE_DOUBLE,                                      \
                         "each pixel value is multiplied by this first (float types; default "  \
                         "1/255)", .dmin = -1e6, .dmax = 1e6),                                  \
    INFERD__CONTRACT_KEY("mean", INFERD_PROP_TYPE_NUMLIST,                                      \
                         "subtracted after scale: one value, or one per channel (default 0)",   \
                         .dmin = 0, .dmax = 0),                                                 \
    INFERD__CONTRACT_KEY("std", INFERD_PROP_TYPE_NUMLIST,                                       \
                         "divides after mean: one value, or one per channel, never 0 (default " \
                         "1)", .dmin = 0, .dmax = 0),                                           \
    INFERD__CONTRACT_KEY("resize", INFERD_PROP_TYPE_ENUM,                                       \
                         "auto (the default: stretch to the model's fixed size, else none), "   \
                         "none (the image's size), stretch or letterbox (to width x height), "  \
                         "limit (keep the aspect, the longer side at most limit, each side a "  \
                         "multiple of multiple), shortcrop (the shorter side to shortSide, "    \
                         "then the centre width x height)",                                     \
                         .enum_values = inferd__contract_resizes),                              \
    INFERD__CONTRACT_KEY("width", INFERD_PROP_TYPE_UINT,                                        \
                         "stretch, letterbox, shortcrop: the width (default 0: the model's)",   \
                         .umin = 0, .umax = INFERD_IMAGE_MAX_DIM),                              \
    INFERD__CONTRACT_KEY("height", INFERD_PROP_TYPE_UINT,                                       \
                         "stretch, letterbox, shortcrop: the height (default 0: the model's)",  \
                         .umin = 0, .umax = INFERD_IMAGE_MAX_DIM),                              \
    INFERD__CONTRACT_KEY("limit", INFERD_PROP_TYPE_UINT,                                        \
                         "limit: the longer side's bound (default 0: none; never enlarged)",    \
                         .umin = 0, .umax = INFERD_IMAGE_MAX_DIM),                              \
    INFERD__CONTRACT_KEY("multiple", INFERD_PROP_TYPE_UINT,                                     \
                         "limit: each side rounded to a multiple of this (default 1)",          \
                         .umin = 1, .umax = 4096),                                              \
    INFERD__CONTRACT_KEY("shortSide", INFERD_PROP_TYPE_UINT,                                    \
                         "shortcrop: the shorter side's size before the crop",                  \
                         .umin = 1, .umax = INFERD_IMAGE_MAX_DIM),                              \
    INFERD__CONTRACT_KEY("padValue", INFERD_PROP_TYPE_UINT,                                     \
                         "letterbox: the value of every channel of the padding (default 0)",    \
                         .umin = 0, .umax = 255),                                               \
    INFERD__CONTRACT_KEY("padPosition", INFERD_PROP_TYPE_ENUM,                                  \
                         "letterbox: the image centred (the default: center), or at the "       \
                         "top-left (topleft: pad right and bottom)",                            \
                         .enum_values = inferd__contract_positions),                            \
    INFERD__CONTRACT_KEY("interpolation", INFERD_PROP_TYPE_ENUM,                                \
                         "bilinear (the default) or nearest (half-pixel centres)",              \
                         .enum_values = inferd__contract_samplings)

INFERD_API const inferd_prop_spec *inferd_contract_props(void);

/* The contract of obj, an object checked against inferd_contract_props()
 * (defaults in), or NULL for the defaults: RGB, scale 1/255, no mean or
 * std, no resize, the model's dtype and layout. Refuses what the fields
 * cannot say alone (mean or std of 2 values, a std of 0, mean/std with
 * uint8, a mode without its sizes): EINVAL naming the key. */
INFERD_API inferd_status inferd_contract_from_value(const inferd_value *obj,
                                                    inferd_input_contract *out,
                                                    inferd_error *err);

/* Fits c to a model input of dtype and shape (rank 4, batch first, -1 for a
 * dynamic dimension): resolves the model's dtype and layout and a stretch,
 * letterbox or shortcrop size of 0 from fixed dimensions. Refuses (EUNSUPPORTED,
 * naming `model`, the shape and the key) a rank other than 4, a channel
 * count other than the order's, a dtype other than the model's, and fixed
 * height or width that the resize cannot always produce. */
INFERD_API inferd_status inferd_contract_fit(inferd_input_contract *c, const char *model,
                                             inferd_dtype dtype, size_t ndim,
                                             const int64_t *shape, inferd_error *err);

/* The geometry of the area (x, y, w, h) of an image prepared under c. ERANGE
 * when a side would be 0 or above INFERD_IMAGE_MAX_DIM. */
INFERD_API inferd_status inferd_contract_plan(const inferd_input_contract *c, int64_t x,
                                              int64_t y, uint32_t w, uint32_t h,
                                              inferd_geometry *g, inferd_error *err);

/* Writes the planned area of img (RGB8, BGR8, GRAY8, RGBA8 or BGRA8) into
 * row: channels * g->height * g->width values of c->dtype in c->layout. */
INFERD_API inferd_status inferd_contract_fill(const inferd_input_contract *c,
                                              const inferd_image *img, const inferd_geometry *g,
                                              void *row, inferd_error *err);

/* A point (u, v) of the row, in continuous coordinates (pixel u spans
 * [u, u+1)), as a continuous point of the whole image. */
INFERD_API void inferd_geometry_to_image(const inferd_geometry *g, double u, double v, double *x,
                                         double *y);

/* Resamples src into dst (the same pixel format; dst's width, height, data
 * and stride say where), with half-pixel centres: bilinear (11-bit fixed
 * point) or nearest. */
INFERD_API inferd_status inferd_image_resample(const inferd_image *src, inferd_image *dst,
                                               bool nearest, inferd_error *err);

#ifdef __cplusplus
}
#endif

#endif /* INFERD_CONTRACT_H */
